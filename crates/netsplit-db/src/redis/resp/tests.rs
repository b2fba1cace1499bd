use super::*;

#[test]
fn commands_are_arrays_of_bulk_strings() {
    assert_eq!(
        encode(&["SET", "k", "v 1"]),
        b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$3\r\nv 1\r\n".to_vec()
    );
    assert_eq!(encode::<&str>(&[]), b"*0\r\n".to_vec());
}

#[test]
fn parses_every_reply_type() {
    let one = |b: &[u8]| parse(b).unwrap().unwrap();
    assert_eq!(one(b"+OK\r\n"), (Reply::Simple("OK".into()), 5));
    assert_eq!(
        one(b"-READONLY You can't write against a read only replica.\r\n").0,
        Reply::Error("READONLY You can't write against a read only replica.".into())
    );
    assert_eq!(one(b":-12\r\n").0, Reply::Int(-12));
    assert_eq!(one(b"$3\r\na\r\n\r\n").0, Reply::Bulk(b"a\r\n".to_vec()));
    assert_eq!(one(b"$0\r\n\r\n").0, Reply::Bulk(Vec::new()));
    assert_eq!(one(b"$-1\r\n").0, Reply::Nil);
    assert_eq!(one(b"*-1\r\n").0, Reply::Nil);
    assert_eq!(
        one(b"*3\r\n:1\r\n$1\r\nx\r\n*0\r\n+tail").0,
        Reply::Array(vec![
            Reply::Int(1),
            Reply::Bulk(b"x".to_vec()),
            Reply::Array(vec![])
        ])
    );
    assert_eq!(
        Reply::Error("LOADING x".into()).error_code(),
        Some("LOADING")
    );
}

#[test]
fn partial_replies_wait_for_more_and_garbage_is_an_error() {
    for partial in [&b""[..], b"+O", b"$5\r\nab", b"*2\r\n:1\r\n", b"$2\r\nab\r"] {
        assert_eq!(parse(partial).unwrap(), None, "{partial:?}");
    }
    assert!(parse(b"?what\r\n").is_err());
    assert!(parse(b":x\r\n").is_err());
    assert!(parse(b"$2\r\nabcd\r\n").is_err());
    assert!(parse(b"$-7\r\n").is_err());
}

#[test]
fn only_connect_errors_are_never_sent() {
    assert!(RespError::Connect("refused".into()).never_sent());
    assert!(!RespError::Io("reset".into()).never_sent());
    assert!(!RespError::Timeout("t".into()).never_sent());
    assert!(!RespError::Protocol("p".into()).never_sent());
}

#[test]
fn info_lines_split_into_fields() {
    let f = info_fields("# Replication\r\nrole:slave\r\nmaster_link_status:up\r\n");
    assert_eq!(f, vec![("role", "slave"), ("master_link_status", "up")]);
    assert_eq!(addr("fd00::1", 6379), "[fd00::1]:6379");
    assert_eq!(addr("10.0.0.1", 6379), "10.0.0.1:6379");
}

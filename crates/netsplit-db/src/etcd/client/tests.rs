use super::*;
use crate::opts::Preset;

fn server(http: u16, code: i64, msg: &str) -> EtcdError {
    EtcdError::Server {
        http,
        code: Some(code),
        message: msg.into(),
    }
}

#[test]
fn connection_refused_is_definite_timeouts_and_resets_are_not() {
    assert!(EtcdError::Connect("Connection refused".into()).is_definite());
    assert!(!EtcdError::Timeout("operation timed out".into()).is_definite());
    assert!(!EtcdError::Transport("connection reset by peer".into()).is_definite());
    assert!(!EtcdError::Decode("eof".into()).is_definite());
}

#[test]
fn etcd_unavailable_and_timeouts_are_ambiguous_rejections_are_definite() {
    assert!(!server(503, 14, "etcdserver: request timed out").is_definite());
    assert!(!server(503, 14, "etcdserver: leader changed").is_definite());
    assert!(!server(503, 14, "etcdserver: no leader").is_definite());
    assert!(!server(504, 4, "context deadline exceeded").is_definite());
    assert!(!server(500, 2, "unknown").is_definite());
    // Refused by the gateway's closing gRPC connection before any stream was opened.
    assert!(server(408, 1, "grpc: the client connection is closing").is_definite());
    // The same text on a call that was in flight when the connection closed: ambiguous.
    assert!(!server(503, 14, "grpc: the client connection is closing").is_definite());
    assert!(!server(503, 14, "error reading from server: transport is closing").is_definite());
    assert!(server(400, 3, "etcdserver: key is not provided").is_definite());
    assert!(server(429, 8, "etcdserver: too many requests").is_definite());
    assert!(server(
        400,
        11,
        "etcdserver: mvcc: required revision has been compacted"
    )
    .is_definite());
    // A rejection code whose message nevertheless says "timed out" stays ambiguous.
    assert!(!server(400, 9, "etcdserver: request timed out").is_definite());
    let no_code = EtcdError::Server {
        http: 502,
        code: None,
        message: "bad gateway".into(),
    };
    assert!(!no_code.is_definite());
}

#[test]
fn reads_fail_on_any_error_writes_are_info_unless_definite() {
    let t = EtcdError::Timeout("x".into());
    assert!(matches!(Outcome::read_error(&t), Outcome::Fail(_)));
    assert!(matches!(Outcome::write_error(&t), Outcome::Info(_)));
    let c = EtcdError::Connect("refused".into());
    assert!(matches!(Outcome::write_error(&c), Outcome::Fail(_)));
}

#[test]
fn parses_gateway_answers_with_string_numbers_and_omitted_defaults() {
    let range = json!({"header":{"revision":"7"},"kvs":[{"key":"Zm9v","create_revision":"2",
            "mod_revision":"3","version":"2","value":"YmF6"}],"count":"1"});
    let r = parse_range(&range).unwrap();
    assert_eq!(r.revision, 7);
    assert_eq!(r.kvs[0].key, b"foo");
    assert_eq!(r.kvs[0].value, b"baz");
    assert_eq!(r.kvs[0].mod_revision, 3);
    assert!(parse_range(&json!({"header":{"revision":"1"}}))
        .unwrap()
        .kvs
        .is_empty());

    let failed = json!({"header":{"revision":"3"},"responses":[{"response_range":
            {"header":{"revision":"3"},"kvs":[{"key":"Zm9v","value":"YmF6","mod_revision":"3"}]}}]});
    let t = parse_txn(&failed).unwrap();
    assert!(!t.succeeded, "an omitted `succeeded` means false");
    assert_eq!(t.ranges.len(), 1);
    let ok = json!({"header":{"revision":"4"},"succeeded":true,
            "responses":[{"response_put":{"header":{"revision":"4"}}}]});
    assert!(parse_txn(&ok).unwrap().succeeded);

    let st = json!({"header":{"member_id":"3319814642761637952"},"version":"3.4.23",
            "leader":"3319814642761637952","raftIndex":"8","raftTerm":"2"});
    let s = parse_status(&st).unwrap();
    assert_eq!(s.member_id, s.leader);
    assert_eq!(s.raft_term, 2);

    let bad = json!({"kvs":[{"key":"!!!!"}]});
    assert!(matches!(parse_range(&bad), Err(EtcdError::Decode(_))));
}

#[test]
fn txn_body_compares_mod_revisions_and_marks_serializable_ranges() {
    let b = txn_body(
        &[Compare::ModRevision(b"k".to_vec(), 0)],
        &[TxnOp::Range {
            key: b"k".to_vec(),
            range_end: None,
        }],
        true,
    );
    assert_eq!(b["compare"][0]["target"], "MOD");
    assert_eq!(b["compare"][0]["mod_revision"], "0");
    assert_eq!(b["compare"][0]["key"], "aw==");
    assert_eq!(b["success"][0]["request_range"]["serializable"], true);
}

#[test]
fn prefix_end_increments_the_last_byte_below_0xff() {
    assert_eq!(prefix_end(b"set/"), b"set0");
    assert_eq!(prefix_end(b"a\xff"), b"b");
    assert_eq!(prefix_end(b"\xff"), vec![0]);
}

#[test]
fn keys_are_integers_and_strings_as_text() {
    assert_eq!(key_text(&json!(5)), "5");
    assert_eq!(key_text(&json!("a")), "a");
    assert_eq!(key_text(&json!([1])), "[1]");
}

#[test]
fn the_client_implements_what_the_target_declares() {
    let mut c = EtcdClient::new("n1", "http://127.0.0.1:1", &EtcdOpts::preset().unwrap()).unwrap();
    assert_eq!(
        crate::vocab::implemented(&mut c),
        super::super::VOCABULARIES
    );
    // A request that does not fit its vocabulary is refused before anything is sent.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let o = rt.block_on(c.invoke(Vocabulary::ListAppend, "txn", &json!([["w", 1, 2]])));
    assert!(
        matches!(&o, Outcome::Fail(e) if e.contains("(not sent)")),
        "{o:?}"
    );
}

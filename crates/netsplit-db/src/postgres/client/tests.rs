use super::*;
use crate::history::OpType;

fn db(code: &str, severity: &str) -> PgError {
    PgError::Db {
        code: code.into(),
        severity: severity.into(),
        message: "m".into(),
    }
}

#[test]
fn reads_and_anything_before_the_commit_fail_the_commit_decides_writes() {
    let req = json!([1, 5]);
    let kind = |e, s, err: &PgError| classify(e, s, err, &req).kind;
    let every = [
        PgError::Connect("refused".into()),
        PgError::Timeout("t".into()),
        db("40001", "ERROR"),
        db("57P01", "FATAL"),
        PgError::Closed("reset".into()),
        PgError::Decode("?".into()),
    ];
    for e in &every {
        assert_eq!(kind(Effect::Read, Stage::Commit, e), OpType::Fail, "{e}");
        assert_eq!(
            kind(Effect::Write, Stage::BeforeCommit, e),
            OpType::Fail,
            "{e}"
        );
    }
    // At the commit: the server's ERROR means rolled back; a lost answer is unknown.
    assert_eq!(
        kind(Effect::Write, Stage::Commit, &db("40001", "ERROR")),
        OpType::Fail
    );
    assert_eq!(
        kind(Effect::Write, Stage::Commit, &db("40P01", "ERROR")),
        OpType::Fail
    );
    assert_eq!(
        kind(Effect::Write, Stage::Commit, &db("23505", "ERROR")),
        OpType::Fail
    );
    assert_eq!(
        kind(Effect::Write, Stage::Commit, &db("57P01", "FATAL")),
        OpType::Info
    );
    assert_eq!(
        kind(Effect::Write, Stage::Commit, &db("XX000", "PANIC")),
        OpType::Info
    );
    for e in [
        PgError::Timeout("t".into()),
        PgError::Closed("reset".into()),
        PgError::Decode("?".into()),
    ] {
        assert_eq!(kind(Effect::Write, Stage::Commit, &e), OpType::Info, "{e}");
    }
    assert_eq!(
        kind(
            Effect::Write,
            Stage::Commit,
            &PgError::Connect("refused".into())
        ),
        OpType::Fail
    );
    let c = classify(Effect::Write, Stage::Commit, &db("40001", "ERROR"), &req);
    assert_eq!(c.value, req);
    assert_eq!(c.error.as_deref(), Some("ERROR 40001: m"));
}

#[test]
fn only_an_error_report_keeps_the_session() {
    assert!(db("40001", "ERROR").session_survives());
    assert!(!db("57P01", "FATAL").session_survives());
    assert!(!PgError::Closed("x".into()).session_survives());
    assert!(!PgError::Timeout("x".into()).session_survives());
}

#[test]
fn sessions_carry_the_isolation_level_and_schema() {
    let o = PgOpts {
        password: "pw".into(),
        ..crate::opts::Preset::preset().unwrap()
    };
    let s = ConnSettings::of(&o);
    assert_eq!(
        s.startup_options(Isolation::RepeatableRead),
        "-c default_transaction_isolation=repeatable\\ read -c search_path=netsplit"
    );
    assert_eq!(
        s.startup_options(Isolation::Serializable),
        "-c default_transaction_isolation=serializable -c search_path=netsplit"
    );
}

#[test]
fn the_client_implements_what_the_target_declares_with_a_table_for_each() {
    let o = PgOpts {
        password: "pw".into(),
        ..crate::opts::Preset::preset().unwrap()
    };
    let mut c = PgClient::new(
        "n1",
        "127.0.0.1",
        "127.0.0.1",
        ClientSettings::of(&o, false),
    );
    assert_eq!(
        crate::vocab::implemented(&mut c),
        super::super::VOCABULARIES
    );
    let sql = schema_sql("s1");
    for t in [
        "register",
        "set_elems",
        "counter",
        "accounts",
        "lists",
        "rw",
    ] {
        assert!(sql.contains(&format!("CREATE TABLE s1.{t} ")), "{t}");
    }
    assert_eq!(key_text(&json!(3)), "3");
    assert_eq!(key_text(&json!("a")), "a");
}

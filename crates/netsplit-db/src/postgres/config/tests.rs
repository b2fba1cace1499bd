use super::*;
use crate::opts::Preset;

use crate::test_nodes as nodes;

fn setting<'a>(conf: &'a str, name: &str) -> Option<&'a str> {
    conf.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} = ")))
}

fn opts() -> PgOpts {
    PgOpts {
        password: "pw".into(),
        ..PgOpts::preset().unwrap()
    }
}

#[test]
fn embedded_preset_parses_to_the_documented_defaults() {
    let o = PgOpts::preset().unwrap();
    assert_eq!(o.port, 5432);
    assert_eq!(o.bin_dir, "/usr/lib/postgresql/15/bin");
    assert_eq!(o.packages, vec!["postgresql".to_string()]);
    assert_eq!(o.os_user, "postgres");
    assert_eq!(o.replicas, Replicas::Async);
    assert_eq!(o.isolation, Isolation::ReadCommitted);
    assert_eq!(o.read, ReadMode::Primary);
    assert_eq!(o.transfer, Transfer::ReadWrite);
    assert_eq!(o.faketime, Faketime::Auto);
    assert!(o.fsync);
    assert_eq!(o.log_file, "postgres/postgres.log");
    assert_eq!(o.bin("initdb"), "/usr/lib/postgresql/15/bin/initdb");
}

#[test]
fn primary_conf_listens_on_its_address_and_follows_nobody() {
    let ns = nodes(3);
    let c = postgresql_conf(0, &ns, &opts()).unwrap();
    assert_eq!(setting(&c, "listen_addresses"), Some("'10.77.0.11'"));
    assert_eq!(setting(&c, "port"), Some("5432"));
    assert_eq!(
        setting(&c, "hba_file"),
        Some("'/var/lib/netsplit/c/n1/postgres/pg_hba.conf'")
    );
    assert_eq!(
        setting(&c, "unix_socket_directories"),
        Some("'/var/lib/netsplit/c/n1/postgres/run'")
    );
    assert_eq!(setting(&c, "wal_level"), Some("replica"));
    assert_eq!(setting(&c, "fsync"), Some("on"));
    assert_eq!(setting(&c, "synchronous_commit"), Some("on"));
    assert_eq!(setting(&c, "synchronous_standby_names"), Some("''"));
    assert_eq!(setting(&c, "primary_conninfo"), None);
    assert_eq!(setting(&c, "cluster_name"), Some("'n1'"));
}

#[test]
fn replicas_stream_from_the_first_node_and_sync_waits_for_any_one() {
    let ns = nodes(3);
    let c = postgresql_conf(2, &ns, &opts()).unwrap();
    assert_eq!(
        setting(&c, "primary_conninfo"),
        Some(
            "'host=''10.77.0.11'' port=5432 user=''netsplit'' \
                 passfile=''/var/lib/netsplit/c/n3/postgres/pgpass'' application_name=''n3'' \
                 connect_timeout=2'"
        )
    );
    let mut o = opts();
    o.replicas = Replicas::Sync;
    let c = postgresql_conf(0, &ns, &o).unwrap();
    assert_eq!(
        setting(&c, "synchronous_standby_names"),
        Some(r#"'ANY 1 ("n2", "n3")'"#)
    );
    // One node: nobody to wait for.
    assert_eq!(synchronous_standby_names(&ns[..1], &o), "");
}

#[test]
fn quoting_survives_quotes_backslashes_and_colons() {
    assert_eq!(conf_quote(r"a'b\c"), r"'a''b\\c'");
    assert_eq!(conninfo_quote(r"a'b\c"), r"'a\'b\\c'");
    let mut o = opts();
    o.password = r"p:a\ss".into();
    assert_eq!(pgpass(&o), "*:5432:*:netsplit:p\\:a\\\\ss\n");
    let mut ns = nodes(2);
    ns[0].host = "db1.example".into();
    let c = postgresql_conf(0, &ns, &o).unwrap();
    assert_eq!(setting(&c, "listen_addresses"), Some("'*'"));
}

#[test]
fn hba_asks_the_run_role_for_its_password_everywhere() {
    let h = pg_hba_conf(&nodes(1)[0], &opts()).unwrap();
    let rules: Vec<&str> = h
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .collect();
    assert_eq!(rules.len(), 5, "{h}");
    assert!(rules
        .iter()
        .all(|r| r.contains("netsplit") && r.trim_end().ends_with("scram-sha-256")));
    assert!(!h.contains("trust"));
}

/// Options as `--target-opt` gives them (text), through the same path as a run.
fn from_flags(pairs: &[(&str, &str)]) -> anyhow::Result<PgOpts> {
    use crate::DbType;
    let mut plan = crate::plan::DbPlan::default();
    for (k, v) in pairs {
        plan.target.opts.insert(k.to_string(), serde_json::json!(v));
    }
    let o = super::super::PgCluster::options(&plan)?;
    super::super::opts_from_plan(&plan, o)
}

#[test]
fn target_opts_override_the_preset_and_bad_ones_are_bad_input() {
    let o = from_flags(&[
        ("isolation", "serializable"),
        ("replicas", "sync"),
        ("read", "replica"),
        ("transfer", "atomic"),
        ("fsync", "off"),
        ("port", "15432"),
        ("timeout-ms", "500"),
        ("password", "s3cret"),
    ])
    .unwrap();
    assert_eq!(o.isolation, Isolation::Serializable);
    assert_eq!(o.replicas, Replicas::Sync);
    assert_eq!(o.read, ReadMode::Replica);
    assert_eq!(o.transfer, Transfer::Atomic);
    assert!(!o.fsync);
    assert_eq!(o.port, 15432);
    assert_eq!(o.password, "s3cret");
    assert_eq!(o.request_timeout, Duration::from_millis(500));
    assert_eq!(
        from_flags(&[("isolation", "repeatable_read")])
            .unwrap()
            .isolation,
        Isolation::RepeatableRead
    );
    assert!(from_flags(&[]).unwrap().password.starts_with("ns"));

    for (pairs, needle) in [
        (&[("isolation", "snapshot")][..], "read-committed"),
        (&[("replicas", "semi")][..], "async"),
        (&[("read", "replica"), ("replicas", "none")][..], "replicas"),
        (&[("schema", "Robert'); DROP")][..], "schema"),
        (&[("os-user", "root")][..], "root"),
        (&[("bin-dir", "usr/lib")][..], "absolute"),
        (&[("port", "0")][..], "port"),
        (&[("timeout_ms", "0")][..], "positive"),
        (&[("user", "App User")][..], "target.opts.user"),
        (&[("password", "")][..], "target.opts.password"),
        (
            &[("sslmode", "bogus")][..],
            "one of disable, prefer, require",
        ),
        (
            &[
                ("sslmode", "verify-ca"),
                ("sslrootcert", "/nonexistent/ca.crt"),
            ][..],
            "sslrootcert /nonexistent/ca.crt: cannot read",
        ),
        (
            &[("isolatoin", "serializable")][..],
            "target.opts.isolatoin",
        ),
    ] {
        let e = from_flags(pairs).unwrap_err();
        assert!(e.to_string().contains(needle), "{pairs:?}: {e}");
        assert_eq!(crate::error::exit_code_for(&e), 254, "{e}");
    }
}

#[test]
fn fresh_passwords_differ() {
    let (a, b) = (fresh_password(), fresh_password());
    assert_ne!(a, b);
    assert_eq!(a.len(), 34);
}

#[test]
fn standbys_read_at_repeatable_read_at_most() {
    assert_eq!(
        Isolation::Serializable.on_standby(),
        Isolation::RepeatableRead
    );
    assert_eq!(
        Isolation::ReadCommitted.on_standby(),
        Isolation::ReadCommitted
    );
}

#[test]
fn preset_with_unknown_key_is_bad_input_naming_the_file() {
    let bad = PRESET_YAML.replace("bin_dir:", "bin_dirr:");
    let (none, origins) = (Default::default(), Default::default());
    let e = crate::opts::from_layers::<PgOpts>(&bad, "my.yaml", &none, "", &origins).unwrap_err();
    assert!(e.to_string().starts_with("my.yaml: line 15 "), "{e}");
    assert_eq!(crate::error::exit_code_for(&e), 254);
}

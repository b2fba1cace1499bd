use super::*;
use serde_json::json;

fn typed(plan: &DbPlan) -> Result<PgOpts> {
    PgCluster::options(plan)
}

fn plan_of(pairs: &[(&str, &str)]) -> DbPlan {
    let mut plan = DbPlan::default();
    plan.target.name = "postgres".into();
    for (k, v) in pairs {
        plan.target.opts.insert(k.to_string(), json!(v));
        plan.origins
            .set(&format!("target.opts.{k}"), format!("--target-opt {k}={v}"));
    }
    plan
}

fn flags(pairs: &[(&str, &str)]) -> (DbPlan, PgOpts) {
    let plan = plan_of(pairs);
    let t = typed(&plan).unwrap();
    (plan, t)
}

#[test]
fn a_deployed_postgres_takes_the_operators_connection_and_refuses_install_options() {
    let id = "20261203T160418-1a2b3c";
    assert_eq!(run_schema(id), "netsplit_20261203t160418_1a2b3c");
    let env = |k: &str| match k {
        "PGPASSWORD" => Some("envpw".to_string()),
        "PGUSER" => Some("envuser".to_string()),
        _ => None,
    };
    let (plan, t) = flags(&[]);
    let o = opts_for_existing(&plan, t, id, env).unwrap();
    assert!(o.existing);
    assert_eq!(o.schema, "netsplit_20261203t160418_1a2b3c");
    assert_eq!(
        (o.user.as_str(), o.database.as_str(), o.password.as_str()),
        ("envuser", "envuser", "envpw")
    );
    // No environment: libpq's defaults, and no password.
    let (plan, t) = flags(&[]);
    let o = opts_for_existing(&plan, t, id, |_| None).unwrap();
    assert_eq!(
        (o.user.as_str(), o.database.as_str(), o.password.as_str()),
        ("postgres", "postgres", "")
    );
    // Options win; the password file's first line; any role and database name.
    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("pw");
    std::fs::write(&pw, "s3cret\nignored\n").unwrap();
    let pwopt = pw.display().to_string();
    let (plan, t) = flags(&[
        ("user", "App User"),
        ("database", "AppDB"),
        ("password-file", &pwopt),
        ("sslmode", "prefer"),
        ("isolation", "serializable"),
        ("read", "replica"),
    ]);
    let o = opts_for_existing(&plan, t, id, env).unwrap();
    assert_eq!(
        (o.user.as_str(), o.database.as_str(), o.password.as_str()),
        ("App User", "AppDB", "s3cret")
    );
    assert_eq!(o.sslmode, config::SslMode::Prefer);
    assert_eq!(o.isolation, Isolation::Serializable);
    assert_eq!(o.read, ReadMode::Replica);

    for (pairs, needle) in [
        (
            &[("replicas", "sync")][..],
            "target.opts.replicas: only with deploy: install",
        ),
        (&[("schema", "mine")][..], "netsplit_<run id>"),
        (
            &[("os-user", "pg")][..],
            "target.opts.os-user: only with deploy: install",
        ),
        (&[("fsync", "off")][..], "only with deploy: install"),
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
            &[("password", "a"), ("password-file", "/x")][..],
            "not both",
        ),
        (
            &[("password-file", "/nonexistent/pw")][..],
            "/nonexistent/pw",
        ),
    ] {
        let plan = plan_of(pairs);
        let e = typed(&plan)
            .and_then(|t| opts_for_existing(&plan, t, id, env))
            .unwrap_err();
        assert_eq!(crate::error::exit_code_for(&e), 254, "{e}");
        let e = crate::error::one_line(&e);
        assert!(e.contains(needle), "{pairs:?}: {e}");
        assert!(!e.contains('\n'));
    }
    let (plan, t) = flags(&[("replicas", "sync")]);
    let e = opts_for_existing(&plan, t, id, env)
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("--target-opt replicas=sync: "), "{e}");
}

#[test]
fn plan_options_reach_the_settings_and_bad_ones_are_bad_input() {
    let mut plan = DbPlan::default();
    plan.target.name = "postgres".into();
    plan.target
        .opts
        .insert("isolation".into(), json!("serializable"));
    plan.target.opts.insert("replicas".into(), json!("sync"));
    let o = opts_from_plan(&plan, typed(&plan).unwrap()).unwrap();
    assert_eq!(o.isolation, Isolation::Serializable);
    assert_eq!(o.replicas, Replicas::Sync);
    assert!(o.password.starts_with("ns"), "a fresh password");
    let o2 = opts_from_plan(&plan, typed(&plan).unwrap()).unwrap();
    assert_ne!(o.password, o2.password, "fresh for every run");

    plan.target.opts.insert("bogus".into(), json!(1));
    let e = typed(&plan).unwrap_err();
    assert_eq!(crate::error::exit_code_for(&e), 254);

    let mut plan = DbPlan::default();
    plan.target.version = Some("15.6".into());
    assert!(opts_from_plan(&plan, typed(&plan).unwrap()).is_ok());
    plan.target.version = Some("16".into());
    let e = opts_from_plan(&plan, typed(&plan).unwrap()).unwrap_err();
    assert_eq!(crate::error::exit_code_for(&e), 254);
    let mut plan = DbPlan::default();
    plan.target.install_url = Some("https://example.org/pg.tgz".into());
    let e = opts_from_plan(&plan, typed(&plan).unwrap()).unwrap_err();
    assert_eq!(crate::error::exit_code_for(&e), 254);
}

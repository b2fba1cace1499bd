use super::*;

/// A plan file in a fresh temporary directory (removed when the returned guard drops).
fn write_tmp(_name: &str, text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("plan.yaml");
    std::fs::write(&p, text).unwrap();
    (dir, p)
}

#[test]
fn unknown_key_is_an_error_naming_key_and_line() {
    let text = "target:\n  name: noop\nrun:\n  concurrency: 3\n  bogus_key: 1\n";
    let err = Plan::from_yaml(text, "p.yaml").unwrap_err();
    let msg = crate::error::one_line(&err);
    assert!(msg.contains("bogus_key"), "{msg}");
    assert!(msg.starts_with("p.yaml: line 5 column 3: "), "{msg}");
    assert!(
        !msg.contains("error"),
        "the CLI adds the one `error:`: {msg}"
    );
    assert_eq!(crate::error::exit_code_for(&err), 254);
}

#[test]
fn durations_beyond_a_year_are_bad_input_not_a_panic() {
    for key in [
        "run:\n  time_limit",
        "run:\n  op_timeout",
        "run:\n  final_time_limit",
        "workload:\n  name: register\n  check_time_limit",
    ] {
        let text = format!("{key}: 1e300\n");
        let err = Plan::from_yaml(&text, "p.yaml").and_then(|p| p.validate().map(|_| p));
        let err = err.expect_err(&text);
        let msg = crate::error::one_line(&err);
        assert!(msg.contains("at most 31536000 seconds"), "{msg}");
        assert!(msg.len() < 200, "one short line: {msg}");
        assert_eq!(crate::error::exit_code_for(&err), 254);
    }
    let ok = Plan::from_yaml("run:\n  time_limit: 86400\n", "p.yaml").unwrap();
    ok.validate().unwrap();
}

#[test]
fn the_yaml_reader_s_limits_are_said_in_the_user_s_words() {
    let ov = Overrides::default();
    let res = |text: &str| {
        resolve_text(Some((text.to_string(), "p.yaml".to_string())), &ov)
            .unwrap_err()
            .to_string()
    };
    let e = res("run:\n  concurrency: 2\n---\nrun: {}\n");
    assert!(
        e.starts_with("p.yaml: line 4") && e.contains("more than one YAML document"),
        "{e}"
    );
    let deep = format!(
        "target:\n  opts:\n    x: {}{}\n",
        "[".repeat(3000),
        "]".repeat(3000)
    );
    let e = res(&deep);
    assert!(
        e.contains("line 3") && e.contains("nested too deeply"),
        "{e}"
    );
    let e = res("run:\n  rate: .inf\n");
    assert!(
        e.contains("line 2") && e.contains("not a finite number"),
        "{e}"
    );
    assert!(!e.contains("policy"), "{e}");
    let e = res("run:\n  concurrency: \"3\"\n");
    assert!(
        e.starts_with("p.yaml: line 2") && e.contains("run.concurrency"),
        "{e}"
    );
    assert_eq!(
        plain_yaml_limit("line 9 column 18: budget breached: Nodes { nodes: 250001 }"),
        "line 9 column 18: too many values (aliases that expand to a huge tree, or a file \
             far larger than any plan)"
    );
}

#[test]
fn one_target_option_spelled_two_ways_is_refused_naming_both() {
    let ov = |opts: &[(&str, &str)]| Overrides {
        target: Some("noop".into()),
        target_opt: opts.iter().map(|(k, v)| format!("{k}={v}")).collect(),
        ..Overrides::default()
    };
    let e = resolve(None, &ov(&[("read-mode", "1"), ("read_mode", "2")]))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("read-mode=1") && e.contains("read_mode=2"),
        "{e}"
    );
    let e = resolve(None, &ov(&[("a", "1"), ("a", "2")]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("given twice"), "{e}");
    let p = resolve(None, &ov(&[("read-mode", "1"), ("write_mode", "2")])).unwrap();
    assert_eq!(p.target.opts.len(), 2);
}

#[test]
fn duplicate_keys_are_named_without_the_parser_s_advice() {
    let text = "run:\n  time_limit: 3\nrun:\n  time_limit: 4\n";
    let err = Plan::from_yaml(text, "p.yaml").unwrap_err();
    let msg = crate::error::one_line(&err);
    assert!(msg.starts_with("p.yaml: line 3"), "{msg}");
    assert!(msg.contains("duplicate") && msg.contains("run"), "{msg}");
    assert!(!msg.contains("DuplicateKeyPolicy"), "{msg}");
    assert_eq!(crate::error::exit_code_for(&err), 254);
}

#[test]
fn bad_value_is_an_error_naming_the_line_and_key() {
    let text = "run:\n  concurrency: lots\n";
    let msg = crate::error::one_line(&Plan::from_yaml(text, "p.yaml").unwrap_err());
    assert!(msg.contains("line 2"), "{msg}");
    assert!(msg.contains("concurrency: lots"), "{msg}");
}

#[test]
fn resolved_plan_round_trips_through_yaml() {
    let (_tmp, p) = write_tmp(
        "rt",
        "name: rt\ntarget:\n  name: noop\n  opts:\n    lie: 1\nworkload:\n  name: bank\n  \
             accounts: 7\nrun:\n  concurrency: 3\n  rate: 0\n",
    );
    let plan = resolve(Some(&p), &Overrides::default()).unwrap();
    assert_eq!(plan.workload.opts["accounts"], 7);
    assert_eq!(plan.workload.name, "bank");
    assert!(plan.run.seed.is_some(), "a seed is always chosen");
    let yaml = plan.to_yaml().unwrap();
    let again = Plan::from_yaml(&yaml, "plan.yaml").unwrap();
    assert_eq!(plan, again);
    let (_tmp2, p2) = write_tmp("rt2", &yaml);
    let replay = resolve(Some(&p2), &Overrides::default()).unwrap();
    assert_eq!(plan, replay);
}

#[test]
fn flags_override_the_plan_file() {
    let (_tmp, p) = write_tmp(
        "ov",
        "target:\n  name: noop\nworkload:\n  name: set\nrun:\n  concurrency: 3\n  seed: 5\n",
    );
    let ov = Overrides {
        concurrency: Some(8),
        workload: Some("counter".into()),
        target_opt: vec!["read=serializable".into()],
        seed: Some(9),
        nemesis: Some("none".into()),
        ..Overrides::default()
    };
    let plan = resolve(Some(&p), &ov).unwrap();
    assert_eq!(plan.run.concurrency, 8);
    assert_eq!(plan.workload.name, "counter");
    assert_eq!(plan.run.seed, Some(9));
    assert_eq!(plan.target_opt("read").as_deref(), Some("serializable"));
    assert!(plan.nemesis.faults.is_empty());
}

#[test]
fn expect_defaults_to_valid_and_the_flag_overrides_the_file() {
    use crate::report::verdict::Expect;
    let (_t1, p) = write_tmp("ex", "expect: invalid\ntarget:\n  name: liar\n");
    let plan = resolve(Some(&p), &Overrides::default()).unwrap();
    assert_eq!(plan.expect, Expect::Invalid);
    assert!(plan.to_yaml().unwrap().contains("expect: invalid"));
    let ov = Overrides {
        expect: Some(Expect::Any),
        ..Overrides::default()
    };
    assert_eq!(resolve(Some(&p), &ov).unwrap().expect, Expect::Any);
    let (_t2, p) = write_tmp("ex2", "target:\n  name: noop\n");
    assert_eq!(
        resolve(Some(&p), &Overrides::default()).unwrap().expect,
        Expect::Valid
    );
    let e = Plan::from_yaml("expect: sometimes\n", "p.yaml").unwrap_err();
    let msg = crate::error::one_line(&e);
    assert!(msg.contains("line 1") && msg.contains("sometimes"), "{msg}");
}

#[test]
fn bad_ranges_name_the_key() {
    let ov = Overrides {
        concurrency: Some(0),
        target: Some("noop".into()),
        ..Overrides::default()
    };
    let msg = crate::error::one_line(&resolve(None, &ov).unwrap_err());
    assert!(msg.contains("run.concurrency"), "{msg}");
}

#[test]
fn nemesis_list_takes_presets_and_fault_names() {
    let ov = Overrides {
        nemesis: Some("none,partition".into()),
        target: Some("noop".into()),
        ..Overrides::default()
    };
    let plan = resolve(None, &ov).unwrap();
    assert_eq!(plan.nemesis.faults, vec!["partition".to_string()]);
}

#[test]
fn nemesis_schedule_defaults_to_overlap_and_names_bad_values() {
    let plan = Plan::from_yaml("nemesis:\n  faults: [partition]\n", "p.yaml").unwrap();
    assert_eq!(plan.nemesis.schedule, NemesisSchedule::Overlap);
    let plan = Plan::from_yaml("nemesis:\n  schedule: sequential\n", "p.yaml").unwrap();
    assert_eq!(plan.nemesis.schedule, NemesisSchedule::Sequential);
    let e = Plan::from_yaml("nemesis:\n  schedule: sometimes\n", "p.yaml").unwrap_err();
    let msg = crate::error::one_line(&e);
    assert!(msg.contains("p.yaml") && msg.contains("sometimes"), "{msg}");
    assert!(msg.contains("line 2"), "{msg}");
}

#[test]
fn deploy_mode_comes_from_the_plan_or_the_flag_and_defaults_to_install() {
    let plan = Plan::from_yaml("target:\n  name: etcd\n  deploy: existing\n", "p.yaml").unwrap();
    assert_eq!(plan.target.deploy, Deploy::Existing);
    assert_eq!(Plan::default().target.deploy, Deploy::Install);
    let e = Plan::from_yaml("target:\n  deploy: borrowed\n", "p.yaml").unwrap_err();
    let msg = crate::error::one_line(&e);
    assert!(msg.contains("line 2") && msg.contains("borrowed"), "{msg}");
    let ov = Overrides {
        deploy: Some(Deploy::Existing),
        leave_data: true,
        no_ssh: true,
        target: Some("noop".into()),
        ..Overrides::default()
    };
    let plan = resolve(None, &ov).unwrap();
    assert_eq!(plan.target.deploy, Deploy::Existing);
    assert!(plan.run.leave_data && plan.nodes.no_ssh);
    assert_eq!(plan.origins.get("target.deploy"), Some("--deploy existing"));
    let again = Plan::from_yaml(&plan.to_yaml().unwrap(), "plan.yaml").unwrap();
    assert_eq!(again, plan);
    assert_eq!("existing".parse::<Deploy>(), Ok(Deploy::Existing));
    assert!("borrowed".parse::<Deploy>().is_err());
}

#[test]
fn consistency_models_flag_goes_to_the_workloads_own_key() {
    let ov = |w: &str| Overrides {
        workload: Some(w.into()),
        target: Some("noop".into()),
        consistency_models: Some(vec!["causal".into(), "sequential".into()]),
        ..Overrides::default()
    };
    let plan = resolve(None, &ov("register")).unwrap();
    assert_eq!(
        plan.workload.opts["checker"],
        serde_json::json!({"models": ["causal", "sequential"]})
    );
    let plan = resolve(None, &ov("list-append")).unwrap();
    assert_eq!(
        plan.workload.opts["consistency_models"],
        serde_json::json!(["causal", "sequential"])
    );
    let e = resolve(None, &ov("bank")).unwrap_err();
    assert_eq!(crate::error::exit_code_for(&e), 254);
    assert!(e.to_string().contains("not bank"), "{e}");
}

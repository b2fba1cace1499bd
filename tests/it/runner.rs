//! End-to-end tests of `netsplit test` / `netsplit analyze` through the binary, with the
//! in-memory `noop` target (valid), the test-only `liar` target (invalid), interruption by
//! SIGINT, per-op timeouts, and malformed plans.

use crate::support::{self, bin, history, netsplit, results, tmp_dir};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

fn tmp_store(name: &str) -> PathBuf {
    tmp_dir("runner", name)
}

/// The run a test just made: it must exist.
fn latest(store: &Path) -> PathBuf {
    support::latest(store).expect("store/latest")
}

fn run_noop(target: &str, workload: &str, store: &Path, extra: &[&str]) -> (Output, PathBuf) {
    let s = store.to_str().unwrap();
    let base = [
        ("--target", target),
        ("--workload", workload),
        ("--time-limit", "1"),
        ("--rate", "400"),
        ("--concurrency", "4"),
        ("--seed", "7"),
        ("--store", s),
    ];
    let mut args = vec!["test"];
    for (k, v) in base {
        if !extra.contains(&k) {
            args.extend([k, v]);
        }
    }
    args.extend_from_slice(extra);
    let out = netsplit(&args);
    let run = latest(store);
    (out, run)
}

fn assert_complete_run(run: &Path) {
    for f in ["plan.yaml", "history.jsonl", "results.json", "netsplit.log"] {
        assert!(run.join(f).is_file(), "{} missing in {}", f, run.display());
    }
    let r = results(run);
    let events = history(run).len() as u64;
    assert_eq!(r["events"].as_u64(), Some(events));
    assert_eq!(r["ops"].as_u64().unwrap() * 2, events, "every op completed");
}

fn check_valid_pipeline(workload: &str, checker: &str) {
    let store = tmp_store(&format!("valid-{workload}"));
    let (out, run) = run_noop("noop", workload, &store, &[]);
    let r = results(&run);
    assert_complete_run(&run);
    let c = &r["checkers"][checker];
    if c["valid"] == "unknown" && c["error"].as_str().is_some_and(|e| e.contains("not built")) {
        // The linearizability / transactional checkers land from other work; until then the
        // verdict must be unknown (never true) and the exit code 2.
        support::skip(
            &format!("{workload} verdict"),
            format!("checker {checker} not built yet: {}", c["error"]),
        );
        assert_eq!(r["valid"], "unknown");
        assert_eq!(out.status.code(), Some(2));
        return;
    }
    assert_eq!(c["valid"], true, "{workload}: {c}");
    assert_eq!(r["valid"], true, "{}", String::from_utf8_lossy(&out.stdout));
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("VALID") && stdout.contains(run.to_str().unwrap()),
        "{stdout}"
    );
}

#[test]
fn noop_set_pipeline_is_valid() {
    check_valid_pipeline("set", "set");
}

#[test]
fn noop_counter_pipeline_is_valid() {
    check_valid_pipeline("counter", "counter");
}

#[test]
fn noop_bank_pipeline_is_valid() {
    check_valid_pipeline("bank", "bank");
}

#[test]
fn noop_register_pipeline_is_valid() {
    check_valid_pipeline("register", "linear");
}

#[test]
fn noop_list_append_pipeline_is_valid() {
    check_valid_pipeline("list-append", "txn");
}

#[test]
fn final_reads_run_on_every_worker() {
    let store = tmp_store("final");
    let (_, run) = run_noop("noop", "set", &store, &["--concurrency", "6"]);
    let h = history(&run);
    // the final phase: the last 6 invocations are reads, one per worker
    let invokes: Vec<&Value> = h.iter().filter(|e| e["type"] == "invoke").collect();
    let tail = &invokes[invokes.len() - 6..];
    assert!(tail.iter().all(|e| e["f"] == "read"));
    let mut procs: Vec<u64> = tail
        .iter()
        .map(|e| e["process"].as_u64().unwrap() % 6)
        .collect();
    procs.sort();
    assert_eq!(procs, vec![0, 1, 2, 3, 4, 5]);
}

#[test]
fn lying_client_makes_the_verdict_invalid() {
    for (workload, checker) in [("set", "set"), ("counter", "counter"), ("bank", "bank")] {
        let store = tmp_store(&format!("liar-{workload}"));
        let (out, run) = run_noop("liar", workload, &store, &[]);
        let r = results(&run);
        assert_eq!(r["checkers"][checker]["valid"], false, "{workload}: {r}");
        assert_eq!(r["valid"], false);
        assert_eq!(out.status.code(), Some(1), "{workload}");
    }
    // the same lie through the noop target's option
    let store = tmp_store("liar-opt");
    let (out, _) = run_noop("noop", "set", &store, &["--target-opt", "lie=3"]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn lying_register_is_not_valid() {
    let store = tmp_store("liar-register");
    let (out, run) = run_noop("liar", "register", &store, &[]);
    let r = results(&run);
    // never true: false once the linearizability checker lands, unknown before
    assert_ne!(r["valid"], true, "{r}");
    assert_ne!(out.status.code(), Some(0));
}

#[test]
fn op_timeout_gives_info_and_a_new_process() {
    let store = tmp_store("timeout");
    let plan = store.join("p.yaml");
    std::fs::write(
        &plan,
        "target:\n  name: noop\n  opts:\n    hang_every: 50\nworkload:\n  name: counter\n\
         run:\n  concurrency: 3\n  rate: 300\n  time_limit: 1\n  op_timeout: 0.2\n",
    )
    .unwrap();
    let out = netsplit(&[
        "test",
        "--plan",
        plan.to_str().unwrap(),
        "--store",
        store.to_str().unwrap(),
    ]);
    let run = latest(&store);
    let h = history(&run);
    let infos: Vec<&Value> = h.iter().filter(|e| e["type"] == "info").collect();
    assert!(!infos.is_empty(), "some ops hung and timed out");
    // A worker whose op timed out goes on as a new process (numbered from 3 up: the workers
    // start as 0..3), and the timed-out process never appears again.
    assert!(
        h.iter()
            .any(|x| x["process"].as_u64().is_some_and(|p| p >= 3)),
        "a worker went on as a new process after a timeout"
    );
    assert!(infos
        .iter()
        .all(|e| e["error"].as_str().unwrap().contains("timed out")));
    for e in &infos {
        let p = e["process"].as_u64().unwrap();
        let idx = e["index"].as_u64().unwrap();
        assert!(!h
            .iter()
            .any(|x| x["process"] == p && x["index"].as_u64().unwrap() > idx));
    }
    // Each process has at most one open invocation (no number is reused).
    support::assert_processes_unique(&h);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn interrupted_run_leaves_history_and_results_and_analyze_works() {
    let store = tmp_store("interrupt");
    let child = Command::new(bin())
        .args([
            "test",
            "--target",
            "noop",
            "--workload",
            "set",
            "--time-limit",
            "30",
            "--rate",
            "200",
            "--store",
            store.to_str().unwrap(),
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(2));
    // SAFETY: kill(2) with the pid of a child this test spawned and still owns.
    let rc = unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    assert_eq!(rc, 0);
    let t0 = std::time::Instant::now();
    let out = child.wait_with_output().unwrap();
    assert!(t0.elapsed() < Duration::from_secs(20), "stopped promptly");
    let run = latest(&store);
    let r = results(&run);
    assert_eq!(r["interrupted"], true);
    assert_eq!(r["checkers"]["set"]["valid"], true, "{r}");
    assert_eq!(out.status.code(), Some(0));
    let n = r["ops"].as_u64().unwrap();
    assert!((100..1000).contains(&n), "~2 s at 200/s, got {n}");
    assert_complete_run(&run);

    // simulate a harness killed mid-write: cut the history in the middle of a line
    let hist = std::fs::read_to_string(run.join("history.jsonl")).unwrap();
    let cut = hist.len() - 10;
    std::fs::write(run.join("history.jsonl"), &hist[..cut]).unwrap();
    std::fs::remove_file(run.join("results.json")).unwrap();
    let out = netsplit(&["analyze", run.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r2 = results(&run);
    assert_eq!(r2["analyzed"], true);
    assert_eq!(r2["checkers"]["set"]["valid"], true);
    assert!(r2["history_truncated_at_line"].as_u64().is_some());
}

#[test]
fn analyze_rechecks_a_stored_run_with_the_same_verdict() {
    let store = tmp_store("analyze");
    let (_, run) = run_noop("liar", "counter", &store, &[]);
    let before = results(&run);
    let out = netsplit(&["analyze", run.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let after = results(&run);
    assert_eq!(before["checkers"]["counter"], after["checkers"]["counter"]);
    // The run's duration survives re-checking; the analysis has its own.
    assert_eq!(before["elapsed_s"], after["elapsed_s"]);
    assert!(after["analysis_s"].is_f64(), "{after}");
    let out = netsplit(&["analyze", "/nonexistent/run"]);
    assert_eq!(out.status.code(), Some(254));
}

#[test]
fn stored_plan_replays_the_same_op_stream() {
    let store = tmp_store("replay");
    let s = store.to_str().unwrap();
    // a bounded workload (register with few keys) so the op stream ends by itself
    let plan = store.join("p.yaml");
    std::fs::write(
        &plan,
        "target: {name: noop}\nworkload: {name: register, keys: 3, ops_per_key: 20}\n\
         run: {concurrency: 2, rate: 0, time_limit: 10, seed: 11}\n",
    )
    .unwrap();
    netsplit(&["test", "--plan", plan.to_str().unwrap(), "--store", s]);
    let first = latest(&store);
    netsplit(&[
        "test",
        "--plan",
        first.join("plan.yaml").to_str().unwrap(),
        "--store",
        s,
    ]);
    let second = latest(&store);
    assert_ne!(first, second);
    let ops = |run: &Path| -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = history(run)
            .iter()
            .filter(|e| e["type"] == "invoke")
            .map(|e| {
                // A cas expects what its worker last saw, which follows the database's answers
                // (and their timing): the rest of the stream replays exactly, and so does the
                // cas's key and new value.
                let v = if e["f"] == "cas" {
                    serde_json::json!([e["value"][0], e["value"][1][1]])
                } else {
                    e["value"].clone()
                };
                (e["f"].to_string(), v.to_string())
            })
            .collect();
        v.sort();
        v
    };
    assert_eq!(ops(&first).len(), 60);
    assert_eq!(ops(&first), ops(&second));
}

#[test]
fn malformed_plan_names_key_and_line_and_exits_254() {
    let store = tmp_store("malformed");
    let plan = store.join("bad.yaml");
    std::fs::write(&plan, "target:\n  name: noop\nrun:\n  concurency: 3\n").unwrap();
    let out = netsplit(&["test", "--plan", plan.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(254));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("concurency") && err.contains("line 4"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "one-line error: {err}");
    assert!(
        err.starts_with(&format!(
            "netsplit: error: {}: line 4 column 3: ",
            plan.display()
        )),
        "says `error` once, then the file and position: {err}"
    );

    std::fs::write(&plan, "run:\n  rate: fast\n").unwrap();
    let out = netsplit(&["test", "--plan", plan.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(254));
    assert!(String::from_utf8_lossy(&out.stderr).contains("line 2"));
}

#[test]
fn unknown_target_is_bad_input_listing_known_targets() {
    let out = netsplit(&["test", "--target", "nosuchdb", "--time-limit", "1"]);
    assert_eq!(out.status.code(), Some(254));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("nosuchdb") && err.contains("noop"), "{err}");
}

#[test]
fn test_count_repeats_the_run() {
    let store = tmp_store("count");
    let (out, _) = run_noop(
        "noop",
        "counter",
        &store,
        &["--test-count", "2", "--time-limit", "0.3"],
    );
    assert_eq!(out.status.code(), Some(0));
    let runs = std::fs::read_dir(store.join("noop-counter"))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_name() != "latest")
        .count();
    assert_eq!(runs, 2);
}

// ---- the nemesis seam, in process -------------------------------------------------------------

mod seam {
    use netsplit::control::Remote;
    use netsplit::generator::rng::Rng;
    use netsplit::nemesis::{Cx, Fault, FaultDef};
    use netsplit::plan::Plan;
    use netsplit::registry::Registry;
    use netsplit::runner::{self, Emergency, Interrupt};
    use serde_json::{json, Value};
    use std::sync::Arc;

    /// A fault family that needs nothing from the target and touches nothing: it records
    /// that it ran (or panics, to prove a panicking nemesis cannot skip the heal).
    struct Fake {
        panic_on_invoke: bool,
    }

    impl Fault for Fake {
        fn ops(&self) -> &[&'static str] {
            &["fake-on", "fake-off"]
        }
        fn draw(&self, _rng: &mut Rng) -> (String, Value) {
            ("fake-on".into(), json!({}))
        }
        fn stop_op(&self) -> &'static str {
            "fake-off"
        }
        fn invoke(&self, _cx: &Cx, op: &str, _request: &Value) -> anyhow::Result<Value> {
            if self.panic_on_invoke {
                panic!("nemesis exploded");
            }
            Ok(json!({ "did": op }))
        }
        fn heal(&self, _cx: &Cx, _n: &str, _r: &dyn Remote) -> anyhow::Result<Vec<String>> {
            Ok(Vec::new())
        }
        fn leftovers(&self, _cx: &Cx, _n: &str, _r: &dyn Remote) -> anyhow::Result<Vec<String>> {
            Ok(Vec::new())
        }
    }

    fn registry(panic_on_invoke: bool) -> Registry {
        Registry::builtin().fault(FaultDef::new("fake", "test only", &[], move |_| {
            Ok(Arc::new(Fake { panic_on_invoke }) as Arc<dyn Fault>)
        }))
    }

    fn plan(name: &str) -> Plan {
        let mut p = Plan {
            name: Some(name.into()),
            ..Plan::default()
        };
        p.target.name = "noop".into();
        p.workload.name = "counter".into();
        p.nemesis.faults = vec!["fake".into()];
        p.nemesis.interval = 0.3;
        p.run.time_limit = 1.5;
        p.run.rate = 200.0;
        p.run.concurrency = 3;
        p.run.quiesce = 0.1;
        p.run.seed = Some(3);
        p.run.store = super::tmp_store(name).display().to_string();
        p
    }

    fn run(p: &Plan, registry: &Registry) -> runner::RunOutcome {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(runner::run_once(
            p,
            registry,
            &Interrupt::default(),
            &Emergency::default(),
        ))
        .unwrap()
    }

    #[test]
    fn nemesis_events_share_the_history_and_heal_runs() {
        let p = plan("seam");
        let out = run(&p, &registry(false));
        assert_eq!(out.exit_code(), 0, "{}", out.results);
        let h = super::history(&out.run_dir);
        let nem: Vec<&Value> = h.iter().filter(|e| e["process"] == "nemesis").collect();
        let fs: Vec<&str> = nem.iter().map(|e| e["f"].as_str().unwrap()).collect();
        // each scheduled op is recorded twice (invocation, completion); then the final heal
        assert!(
            fs.contains(&"start-fake") && fs.contains(&"stop-fake"),
            "{fs:?}"
        );
        assert_eq!(fs.last(), Some(&"heal"));
        assert!(nem.iter().all(|e| e["type"] == "info"));
        // the completion says what the family did, which operation, and its label
        assert!(
            nem.iter()
                .any(|e| e["value"]["did"] == "fake-on" && e["value"]["op"] == "fake-on"),
            "{nem:?}"
        );
        assert!(nem.iter().any(|e| e["value"]["did"] == "fake-off"));
        // client events are interleaved with nemesis events in one dense index
        assert!(h.iter().enumerate().all(|(i, e)| e["index"] == i));
    }

    #[test]
    fn a_panicking_phase_still_heals_and_stores_results() {
        let p = plan("seam-panic");
        let out = run(&p, &registry(true));
        // the panic happens inside the nemesis's blocking call: recorded as an error event, the
        // run goes on; heal still runs at the end
        assert!(out.run_dir.join("results.json").is_file());
        let h = super::history(&out.run_dir);
        assert!(h.iter().any(|e| e["process"] == "nemesis"
            && e["error"].as_str().is_some_and(|s| s.contains("panicked"))));
        let nem: Vec<&str> = h
            .iter()
            .filter(|e| e["process"] == "nemesis")
            .map(|e| e["f"].as_str().unwrap())
            .collect();
        assert_eq!(nem.last(), Some(&"heal"), "{nem:?}");
    }

    #[test]
    fn fault_schedule_ends_when_the_client_ops_run_out() {
        // a bounded workload (2 keys × 10 ops) under a 60 s limit: the run must not sit out
        // the time limit just because the fault schedule would go on
        let mut p = plan("seam-bounded");
        p.workload.name = "register".into();
        for (k, v) in [("keys", 2), ("ops_per_key", 10), ("threads_per_key", 1)] {
            p.workload.opts.insert(k.into(), json!(v));
        }
        p.run.time_limit = 60.0;
        p.run.rate = 0.0;
        let out = run(&p, &registry(false));
        assert_eq!(out.results["ops"], 20);
        let elapsed = out.results["elapsed_s"].as_f64().unwrap();
        assert!(
            elapsed < 30.0,
            "the run waited for the time limit: {elapsed} s"
        );
    }

    #[test]
    fn unknown_faults_and_faults_the_target_cannot_take_are_bad_input() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let run = |p: &Plan| {
            rt.block_on(runner::run_once(
                p,
                &Registry::builtin(),
                &Interrupt::default(),
                &Emergency::default(),
            ))
            .unwrap_err()
        };
        let err = run(&plan("seam-none"));
        assert_eq!(netsplit::error::exit_code_for(&err), 254);
        assert!(err.to_string().contains("fake"), "{err}");
        // noop has no processes and no nodes: a kill cannot be planned against it
        let mut p = plan("seam-kill");
        p.nemesis.faults = vec!["kill".into()];
        let err = run(&p);
        assert_eq!(netsplit::error::exit_code_for(&err), 254);
        assert!(err.to_string().contains("need nodes"), "{err}");
    }
}

#[test]
fn shipped_plans_and_presets_parse() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut n = 0;
    // tests/deployed: plans for a database started by tests/it/deploy.rs.
    for dir in ["plans", "nemeses", "tests/deployed"] {
        for e in std::fs::read_dir(root.join(dir)).unwrap() {
            let p = e.unwrap().path();
            let text = std::fs::read_to_string(&p).unwrap();
            let origin = p.display().to_string();
            match dir {
                "plans" | "tests/deployed" => {
                    // Resolved and checked against the registry, as `netsplit test --plan`.
                    let plan = netsplit::plan::resolve(Some(&p), &Default::default())
                        .unwrap_or_else(|e| panic!("{origin}: {e}"));
                    netsplit::registry::Registry::builtin()
                        .prepare(&plan)
                        .unwrap_or_else(|e| panic!("{origin}: {e}"));
                }
                _ => {
                    let n = serde_saphyr::from_str::<netsplit::plan::NemesisPlan>(&text)
                        .unwrap_or_else(|e| panic!("{origin}: {e}"));
                    let known = netsplit::registry::Registry::builtin();
                    for f in n.faults.iter().chain(n.opts.keys()) {
                        assert!(
                            known.faults().iter().any(|d| &d.name == f),
                            "{origin}: unknown fault {f}"
                        );
                    }
                }
            }
            n += 1;
        }
    }
    assert!(n >= 9, "{n} files");
}

#[test]
fn a_shipped_noop_plan_runs_and_the_liar_plan_fails() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let store = tmp_store("shipped");
    let s = store.to_str().unwrap();
    let ok = root.join("plans/noop-smoke.yaml");
    let out = netsplit(&[
        "test",
        "--plan",
        ok.to_str().unwrap(),
        "--time-limit",
        "1",
        "--store",
        s,
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bad = root.join("plans/noop-liar-bank.yaml");
    let out = netsplit(&[
        "test",
        "--plan",
        bad.to_str().unwrap(),
        "--time-limit",
        "1",
        "--store",
        s,
    ]);
    assert_eq!(out.status.code(), Some(1));
}

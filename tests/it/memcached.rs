//! The memcached example database (`examples/memcached.rs`, included here so this test runs its
//! code, not a copy) on a one-node local cluster, through the whole command line: valid with no
//! faults; INVALID when it is killed, since memcached keeps nothing across a restart.

#[path = "../../examples/memcached.rs"]
#[allow(dead_code)]
mod example;

use crate::support::{root_or_skip, tmp_dir};
use serde_json::Value;

const CLUSTER: &str = "t-mc";

/// Runs `test --cluster t-mc --target memcached` with `args`; the exit code and results.json.
fn run(name: &str, args: &[&str]) -> (u8, Value) {
    let store = tmp_dir("memcached", name);
    let mut argv = vec![
        "memcached",
        "test",
        "--cluster",
        CLUSTER,
        "--target",
        "memcached",
        "--seed",
        "1",
        "--store",
        store.to_str().unwrap(),
    ];
    argv.extend_from_slice(args);
    let code = netsplit::cli::run_with_args(example::registry(), argv);
    let results = std::fs::read_to_string(store.join("latest").join("results.json"))
        .unwrap_or_else(|e| panic!("{name}: no results.json ({e}), exit {code}"));
    (code, serde_json::from_str(&results).unwrap())
}

#[test]
fn memcached_is_valid_without_faults_and_loses_everything_when_killed() {
    if !root_or_skip(
        "memcached::memcached_is_valid_without_faults_and_loses_everything_when_killed",
        "needs root to make a local namespace cluster",
    ) {
        return;
    }
    netsplit::cluster::ensure_up(CLUSTER, 1).expect("local cluster t-mc");

    for workload in ["counter", "register"] {
        let (code, r) = run(workload, &["--workload", workload, "--time-limit", "3"]);
        let checker = if workload == "counter" {
            "counter"
        } else {
            "linear"
        };
        assert_eq!(code, 0, "{workload} without faults: {}", r["checkers"]);
        assert_eq!(r["checkers"][checker]["valid"], true, "{}", r["checkers"]);
    }

    // Killed, the counter starts again from nothing: reads below what was acknowledged, named
    // by index with the bounds they broke.
    // `--expect invalid`: the console says PASS for the loss it must find (the exit code stays
    // the verdict's).
    let faulted = [
        "--nemesis",
        "kill",
        "--nemesis-interval",
        "1.5",
        "--expect",
        "invalid",
    ];
    let mut args = vec!["--workload", "counter", "--time-limit", "6"];
    args.extend(faulted);
    let (code, r) = run("counter-kill", &args);
    let c = &r["checkers"]["counter"];
    assert_eq!(code, 1, "{c}");
    assert_eq!(c["valid"], false, "{c}");
    let e = &c["errors"][0];
    assert!(e["value"].as_i64() < e["lower"].as_i64(), "{c}");

    // Registers: keys that live across the kill (many ops per key, reads weighted up), so a
    // worker's first successful op on its key after the restart is most likely a read of
    // nothing where an acknowledged write was.
    let dir = tmp_dir("memcached", "plan");
    let plan = dir.join("register-kill.yaml");
    std::fs::write(
        &plan,
        "workload:\n  name: register\n  ops_per_key: 100000\n  read: 2\n  write: 1\n  cas: 1\n\
         run:\n  concurrency: 10\n",
    )
    .unwrap();
    let mut args = vec!["--plan", plan.to_str().unwrap(), "--time-limit", "10"];
    args.extend(faulted);
    let (code, r) = run("register-kill", &args);
    let l = &r["checkers"]["linear"];
    assert_eq!(code, 1, "{}", r["checkers"]);
    assert_eq!(l["valid"], false, "{l}");
    assert!(!l["failures"].as_array().unwrap().is_empty(), "{l}");
}

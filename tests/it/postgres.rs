//! The postgres target against REAL PostgreSQL (Debian's postgresql, 15) on the local namespace
//! cluster `t-pg` (3 nodes: n1 primary, n2 and n3 streaming replicas), made or reused by the
//! first test and left up for reuse. Root only; without root, or without the package (as root
//! it is installed by the target itself), a loud SKIP.
//!
//! The tests take a lock and run one at a time on the shared cluster (they would fight over its
//! ports), and every run tears PostgreSQL down again, so no server outlives a test. The
//! end-to-end tests run the reference plans in `plans/postgres-*.yaml` — the nightly suite —
//! with shorter time limits, so the plans themselves are what is tested.

use crate::support::{history, proc_state, results, show, tmp_dir};
use netsplit::db::postgres::Postgres;
use netsplit::db::{Db, Kill, LogFiles, Pause, Primaries};
use netsplit::history::OpType;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const CLUSTER: &str = "t-pg";
/// One test at a time on the shared cluster.
static CLUSTER_LOCK: Mutex<()> = Mutex::new(());

/// The 3-node cluster `t-pg`, or None (after a loud SKIP) when not root.
fn local_cluster(test: &str) -> Option<&'static netsplit::cluster::ClusterInfo> {
    crate::support::local_cluster(&format!("postgres::{test}"), CLUSTER, || true)
}

fn alive(pid: u32) -> bool {
    matches!(proc_state(pid), Some(s) if s != 'Z' && s != 'X')
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Tears PostgreSQL down even when the test panics.
struct Teardown<'a>(&'a Postgres);
impl Drop for Teardown<'_> {
    fn drop(&mut self) {
        if let Err(e) = self.0.teardown() {
            eprintln!("postgres teardown failed: {e:#}");
        }
    }
}

fn ok(c: netsplit::db::Completion) -> Value {
    assert_eq!(c.kind, OpType::Ok, "expected ok: {c:?}");
    c.value
}

#[test]
fn cluster_replicates_survives_kill_and_pause_of_whole_process_trees_and_teardown_leaves_nothing() {
    let Some(info) = local_cluster("cluster_lifecycle") else {
        return;
    };
    let _g = CLUSTER_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let pg: Postgres = crate::support::db_on_cluster(info, CLUSTER, &[]);
    let _td = Teardown(&pg);
    let c = &pg;
    let t = Instant::now();
    pg.setup().expect("setup");
    eprintln!(
        "postgres: primary + 2 streaming replicas ready in {:.2}s",
        t.elapsed().as_secs_f64()
    );
    assert_eq!(pg.primaries().unwrap(), vec!["n1".to_string()]);
    let trees: Vec<Vec<u32>> = (0..3).map(|i| pg.pids(i).unwrap()).collect();
    for (i, t) in trees.iter().enumerate() {
        assert!(
            t.len() > 1,
            "n{}: a postmaster and its children: {t:?}",
            i + 1
        );
        assert_eq!(Some(t[0]), c.pid(i).unwrap(), "the postmaster comes first");
    }

    let rt = rt();
    // A write through a client on n3 goes to n1; with read=primary (the default) so does the
    // read, and a cas that does not match is a fail.
    rt.block_on(async {
        let mut w = pg.client(Some(2)).await.unwrap();
        assert_eq!(ok(w.invoke("write", &json!([1, 7])).await), json!([1, 7]));
        assert_eq!(ok(w.invoke("read", &json!([1, null])).await), json!([1, 7]));
        let miss = w.invoke("cas", &json!([1, [3, 4]])).await;
        assert_eq!(miss.kind, OpType::Fail, "{miss:?}");
        assert_eq!(
            ok(w.invoke("cas", &json!([1, [7, 8]])).await),
            json!([1, [7, 8]])
        );
    });

    // Kill a replica: its whole tree dies; started again it streams again.
    pg.kill(2).expect("kill");
    for p in &trees[2] {
        assert!(!alive(*p), "pid {p} of n3's tree survived the kill");
    }
    assert!(!pg.running(2).unwrap());
    pg.start(2).expect("restart");
    c.wait_serving(Duration::from_secs(60))
        .expect("ready after restart");

    // Pause the primary: every process of its tree is stopped (T) until resumed; a write
    // meanwhile cannot commit, and its lost answer is info.
    let tree = pg.pids(0).unwrap();
    pg.pause(0).expect("pause");
    for p in &tree {
        wait_until("state T", || matches!(proc_state(*p), Some('T') | None));
    }
    let during = rt.block_on(async {
        let mut w = pg.client(Some(1)).await.unwrap();
        w.invoke("write", &json!([2, 1])).await
    });
    assert_ne!(during.kind, OpType::Ok, "{during:?}");
    pg.resume(0).expect("resume");
    wait_until(
        "not T",
        || matches!(proc_state(tree[0]), Some(s) if s != 'T'),
    );
    c.wait_serving(Duration::from_secs(60))
        .expect("ready after resume");

    for i in 0..3 {
        let files = pg.log_files(i);
        assert!(
            std::fs::metadata(&files[0]).is_ok_and(|m| m.len() > 0),
            "n{}'s log {}",
            i + 1,
            files[0]
        );
    }
    let all: Vec<u32> = (0..3).flat_map(|i| pg.pids(i).unwrap()).collect();
    pg.teardown().expect("teardown");
    for pid in &all {
        assert!(!alive(*pid), "postgres pid {pid} survived teardown");
    }
    for n in &c.nodes {
        assert!(!Path::new(&c.opts.pid_on(n)).exists(), "pid file left");
        assert!(!Path::new(&c.opts.data_dir_on(n)).exists(), "data dir left");
    }
}

/// A reference plan of the repository.
fn plan_file(name: &str) -> String {
    format!("{}/plans/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// Runs `netsplit test --cluster t-pg --plan plans/<plan>` with `args`, in a fresh store;
/// returns the output, the run directory and the wall-clock seconds.
fn run_plan(name: &str, plan: &str, args: &[&str]) -> (std::process::Output, PathBuf) {
    let store = tmp_dir("postgres-e2e", name);
    let p = plan_file(plan);
    let base = ["--cluster", CLUSTER, "--plan", &p];
    let (out, run, _) = crate::support::run_test_in("postgres", &store, &[&base, args].concat());
    let run = crate::support::run_dir(&out, run);
    (out, run)
}

/// Counts of a run's client completions by type, for one `f`.
fn counts(run: &Path, f: &str) -> (usize, usize, usize) {
    let ops = history(run);
    let n = |t: &str| {
        ops.iter()
            .filter(|o| o["type"] == t && o["f"] == f && o["process"].is_number())
            .count()
    };
    (n("ok"), n("fail"), n("info"))
}

#[test]
fn e2e_list_append_serializable_under_kills_pauses_and_partitions_is_valid() {
    let test = "e2e_list_append_serializable_under_kills_pauses_and_partitions_is_valid";
    if local_cluster(test).is_none() {
        return;
    }
    let _g = CLUSTER_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let (out, run) = run_plan(
        "la-ser",
        "postgres-list-append-serializable.yaml",
        &["--time-limit", "20"],
    );
    assert_eq!(out.status.code(), Some(0), "expected VALID\n{}", show(&out));
    let r = results(&run);
    assert_eq!(r["valid"], Value::Bool(true), "{r}");
    let (ok, fail, info) = counts(&run, "txn");
    assert!(ok > 100, "the workload made progress: {ok} ok");
    // The faults happened and hit the database.
    let log = std::fs::read_to_string(run.join("history.jsonl")).unwrap();
    for f in ["start-kill", "start-pause", "start-partition"] {
        assert!(log.contains(f), "{f} in the history");
    }
    eprintln!("postgres: serializable list-append under faults: ok {ok} fail {fail} info {info}");
    crate::support::remove_tmp_dirs("postgres-e2e", "la-ser");
}

#[test]
fn e2e_list_append_repeatable_read_is_snapshot_isolation_and_not_serializable() {
    let test = "e2e_list_append_repeatable_read_is_snapshot_isolation_and_not_serializable";
    if local_cluster(test).is_none() {
        return;
    }
    let _g = CLUSTER_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let (out, run) = run_plan(
        "la-rr",
        "postgres-list-append-repeatable-read.yaml",
        &["--time-limit", "10"],
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "expected INVALID\n{}",
        show(&out)
    );
    let txn = &results(&run)["checkers"]["txn"];
    assert_eq!(txn["valid"], Value::Bool(false), "{txn}");
    let types: Vec<&str> = txn["anomaly_types"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    // Write skew, and nothing snapshot isolation forbids.
    assert!(types.contains(&"G2-item"), "write skew named: {types:?}");
    for forbidden in ["G0", "G1a", "G1b", "G1c", "G-single", "lost-update"] {
        assert!(
            !types.contains(&forbidden),
            "{forbidden} under SI: {types:?}"
        );
    }
    let not: Vec<&str> = txn["not"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(not.contains(&"serializable"), "{not:?}");
    assert!(!not.contains(&"snapshot-isolation"), "{not:?}");
    eprintln!(
        "postgres: repeatable read: {types:?}, {} G2-item cycles, not {not:?}",
        txn["anomalies"]["G2-item"].as_array().map_or(0, Vec::len)
    );
    crate::support::remove_tmp_dirs("postgres-e2e", "la-rr");
}

#[test]
fn e2e_list_append_read_committed_is_invalid_with_anomalies_named() {
    let test = "e2e_list_append_read_committed_is_invalid_with_anomalies_named";
    if local_cluster(test).is_none() {
        return;
    }
    let _g = CLUSTER_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let (out, run) = run_plan(
        "la-rc",
        "postgres-list-append-read-committed.yaml",
        &["--time-limit", "10"],
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "expected INVALID\n{}",
        show(&out)
    );
    let txn = &results(&run)["checkers"]["txn"];
    assert_eq!(txn["valid"], Value::Bool(false), "{txn}");
    let types = txn["anomaly_types"].as_array().unwrap();
    assert!(!types.is_empty(), "anomalies named: {txn}");
    // Read committed forbids dirty writes and reads (G0, G1a, G1b): never seen.
    for forbidden in ["G0", "G1a", "G1b"] {
        assert!(!types.contains(&json!(forbidden)), "{forbidden}: {types:?}");
    }
    assert!(txn["not"]
        .as_array()
        .unwrap()
        .contains(&json!("serializable")));
    eprintln!("postgres: read committed: {types:?}, not {}", txn["not"]);
    crate::support::remove_tmp_dirs("postgres-e2e", "la-rc");
}

#[test]
fn e2e_bank_read_then_write_under_read_committed_changes_the_total() {
    let test = "e2e_bank_read_then_write_under_read_committed_changes_the_total";
    if local_cluster(test).is_none() {
        return;
    }
    let _g = CLUSTER_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let (out, run) = run_plan(
        "bank-rc",
        "postgres-bank-read-committed.yaml",
        &["--time-limit", "10"],
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "expected INVALID\n{}",
        show(&out)
    );
    let bank = &results(&run)["checkers"]["bank"];
    assert_eq!(bank["valid"], Value::Bool(false), "{bank}");
    let wrong = bank["error_counts"]["wrong-total"].as_u64().unwrap_or(0);
    assert!(wrong > 0, "wrong-total reads counted: {bank}");
    let first = &bank["errors"][0];
    assert_eq!(first["kind"], "wrong-total", "{first}");
    assert!(
        first["balances"].is_object() && first["total"].is_number(),
        "{first}"
    );
    eprintln!(
        "postgres: read committed bank: {wrong} reads with a wrong total, e.g. {first}; \
         transfers ok/fail/info {:?}",
        counts(&run, "transfer")
    );
    crate::support::remove_tmp_dirs("postgres-e2e", "bank-rc");
}

#[test]
fn e2e_bank_read_then_write_under_serializable_is_valid_and_aborts_are_fail() {
    let test = "e2e_bank_read_then_write_under_serializable_is_valid_and_aborts_are_fail";
    if local_cluster(test).is_none() {
        return;
    }
    let _g = CLUSTER_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let (out, run) = run_plan(
        "bank-ser",
        "postgres-bank-serializable.yaml",
        &["--time-limit", "10"],
    );
    assert_eq!(out.status.code(), Some(0), "expected VALID\n{}", show(&out));
    let bank = &results(&run)["checkers"]["bank"];
    assert_eq!(bank["valid"], Value::Bool(true), "{bank}");
    let ops = history(&run);
    let aborted = ops
        .iter()
        .filter(|o| {
            o["f"] == "transfer"
                && o["type"] == "fail"
                && o["error"]
                    .as_str()
                    .is_some_and(|e| e.contains("40001") || e.contains("40P01"))
        })
        .count();
    assert!(aborted > 0, "serialization failures recorded as fail");
    let (ok, fail, info) = counts(&run, "transfer");
    eprintln!(
        "postgres: serializable bank: transfers ok {ok}, fail {fail} ({aborted} by 40001/40P01), info {info}"
    );
    crate::support::remove_tmp_dirs("postgres-e2e", "bank-ser");
}

#[test]
fn e2e_register_with_replica_reads_under_partitions_is_stale_and_with_primary_reads_valid() {
    let test =
        "e2e_register_with_replica_reads_under_partitions_is_stale_and_with_primary_reads_valid";
    if local_cluster(test).is_none() {
        return;
    }
    let _g = CLUSTER_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    // Asynchronous replicas answer reads from their own copy; the plan cuts the primary off
    // from every replica, so for a whole partition the workers on replicas read keys that the
    // others go on writing: certain in one run (plans/postgres-register-replica-reads.yaml).
    let (out, run) = run_plan(
        "reg-replica",
        "postgres-register-replica-reads.yaml",
        &["--consistency-models", "all"],
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "expected INVALID\n{}",
        show(&out)
    );
    // Not even read-your-writes: a worker's write goes to the primary, its next read to a
    // replica cut off from it (docs/consistency-models.md).
    let ryw = &results(&run)["models"]["read-your-writes"];
    assert_eq!(ryw["valid"], Value::Bool(false), "{ryw}");
    assert!(!ryw["witness"].as_array().unwrap().is_empty(), "{ryw}");
    let linear = &results(&run)["checkers"]["linear"];
    assert_eq!(linear["valid"], Value::Bool(false), "{linear}");
    assert!(
        !linear["failures"].as_array().unwrap().is_empty(),
        "the key that is not linearizable is named: {linear}"
    );
    eprintln!(
        "postgres: replica reads INVALID, keys {}",
        linear["failures"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["key"].to_string())
            .collect::<Vec<_>>()
            .join(",")
    );
    {
        crate::support::remove_tmp_dirs("postgres-e2e", "reg-replica");
    }

    let (out, run) = run_plan(
        "reg-primary",
        "postgres-register-primary-reads.yaml",
        &["--time-limit", "10"],
    );
    assert_eq!(out.status.code(), Some(0), "expected VALID\n{}", show(&out));
    assert_eq!(results(&run)["valid"], Value::Bool(true));
    crate::support::remove_tmp_dirs("postgres-e2e", "reg-primary");
}

/// The crashes of a run's disk faults that dropped something, and the bytes they dropped.
fn lost_bytes(run: &Path) -> (usize, u64) {
    let ops = history(run);
    let mut crashes = 0;
    let mut bytes = 0;
    for o in ops
        .iter()
        .filter(|o| o["f"] == "start-lose-unsynced" && o["type"] == "info")
    {
        if let Some(m) = o["value"]["lost"].as_object() {
            crashes += 1;
            bytes += m
                .values()
                .filter_map(|v| v["lost_bytes"].as_u64())
                .sum::<u64>();
        }
    }
    (crashes, bytes)
}

#[test]
fn e2e_crashes_that_lose_unsynced_writes_lose_commits_only_when_postgres_does_not_flush_them() {
    let test =
        "e2e_crashes_that_lose_unsynced_writes_lose_commits_only_when_postgres_does_not_flush_them";
    if local_cluster(test).is_none() {
        return;
    }
    let _g = CLUSTER_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    // Positive controls (docs/faults.md, "Disk faults"): with synchronous_commit = off, and with
    // fsync = off, a crash that drops every unsynced write loses acknowledged adds, named as
    // lost; with the defaults it loses nothing. Every crash is aimed at the one node while adds
    // are acknowledged (plans/postgres-*-lose-unsynced.yaml; the fsync = off plan crashes once,
    // as its header explains).
    for (name, plan) in [
        ("async-commit", "postgres-async-commit-lose-unsynced.yaml"),
        ("fsync-off", "postgres-fsync-off-lose-unsynced.yaml"),
    ] {
        let (out, run) = run_plan(name, plan, &[]);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{plan}: expected INVALID\n{}",
            show(&out)
        );
        let set = &results(&run)["checkers"]["set"];
        assert_eq!(set["valid"], Value::Bool(false), "{set}");
        assert!(
            !set["lost"].as_array().unwrap().is_empty(),
            "lost elements named: {set}"
        );
        let (crashes, bytes) = lost_bytes(&run);
        assert!(crashes > 0 && bytes > 0, "{crashes} crashes, {bytes} bytes");
        eprintln!(
            "postgres {name}: lose-unsynced found INVALID: lost_count {} of {} acknowledged, \
             e.g. {}; {crashes} crashes dropped {bytes} unsynced bytes",
            set["lost_count"], set["acknowledged_count"], set["lost"]
        );
    }
    let (out, run) = run_plan("defaults", "postgres-lose-unsynced.yaml", &[]);
    assert_eq!(out.status.code(), Some(0), "expected VALID\n{}", show(&out));
    let set = &results(&run)["checkers"]["set"];
    assert!(
        set["acknowledged_count"].as_u64().unwrap_or(0) > 100,
        "{set}"
    );
    let (crashes, bytes) = lost_bytes(&run);
    assert!(crashes > 0, "the crashes happened");
    eprintln!("postgres defaults: {crashes} crashes dropped {bytes} unsynced bytes, nothing lost");
    crate::support::remove_tmp_dirs("postgres-e2e", "async-commit");
    crate::support::remove_tmp_dirs("postgres-e2e", "fsync-off");
    crate::support::remove_tmp_dirs("postgres-e2e", "defaults");
}

#[test]
fn e2e_a_full_disk_and_io_errors_refuse_adds_lose_nothing_and_show_as_an_outage() {
    let test = "e2e_a_full_disk_and_io_errors_refuse_adds_lose_nothing_and_show_as_an_outage";
    if local_cluster(test).is_none() {
        return;
    }
    let _g = CLUSTER_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    // Negative controls (docs/faults.md, "Disk faults"): under ENOSPC and under EIO PostgreSQL
    // refuses or crashes, never acknowledging what it could not write, so nothing acknowledged
    // is lost; the outage shows in the availability section: fewer ops ok inside the fault's
    // windows than outside (plans/postgres-disk-full.yaml, plans/postgres-disk-error.yaml).
    for (name, plan) in [
        ("full", "postgres-disk-full.yaml"),
        ("error", "postgres-disk-error.yaml"),
    ] {
        let (out, run) = run_plan(name, plan, &[]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{plan}: expected VALID\n{}",
            show(&out)
        );
        let r = results(&run);
        let set = &r["checkers"]["set"];
        assert!(
            set["acknowledged_count"].as_u64().unwrap_or(0) > 100,
            "{set}"
        );
        assert_eq!(set["lost_count"].as_u64(), Some(0), "{set}");
        let av = &r["checkers"]["availability"];
        let inside = av["by_fault"][format!("start-{name}")]["ok_share"].as_f64();
        let outside = av["outside_faults"]["ok_share"].as_f64();
        let (Some(inside), Some(outside)) = (inside, outside) else {
            panic!("{plan}: no ok share inside and outside the {name} windows: {av}");
        };
        // EIO fails every operation in the window: the outage is certain. ENOSPC fails only
        // what needs a new block, and PostgreSQL extends a table by many blocks at once when
        // writers wait on it, so a 3 s `full` window may need none (measured ok shares inside:
        // 0.70, 0.19 and 1.00): that the server lost nothing is what this control asserts.
        if name == "error" {
            assert!(
                inside < outside,
                "{plan}: ok share inside {inside:.2}, outside {outside:.2}"
            );
        }
        let restarted = history(&run)
            .iter()
            .filter(|o| o["value"]["restarted"].is_array())
            .count();
        eprintln!(
            "postgres {name}: VALID, {} acknowledged, ok share {inside:.2} inside the {name} \
             windows and {outside:.2} outside; restarted after {restarted} of them",
            set["acknowledged_count"]
        );
        crate::support::remove_tmp_dirs("postgres-e2e", name);
    }
}

//! What the test modules share: running the `netsplit` binary, saying loudly that a test is
//! skipped, fresh temporary directories, and reading a stored run (`latest`, `results.json`,
//! `history.jsonl`). One copy each, so every module skips, names its files and reads runs the
//! same way.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The `netsplit` binary under test.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_netsplit")
}

/// Runs `netsplit args…` to completion, stdin closed, and returns what it left.
pub fn netsplit(args: &[&str]) -> Output {
    Command::new(bin())
        .args(args)
        .output()
        .expect("running netsplit")
}

/// Exit status, stdout and stderr of an [`Output`], for assertions and failure messages.
pub fn show(out: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

pub fn is_root() -> bool {
    // SAFETY: no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Says on stderr that `test` (named with its module, `nodes::exec_…`) is skipped, and why.
/// Written to the process's stderr directly, not with `eprintln!`, which the test harness
/// captures and shows only for failing tests: a skip must be seen, or it passes for a success.
pub fn skip(test: &str, why: impl std::fmt::Display) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "SKIP {test}: {why}");
}

/// True as root; otherwise skips `test` (see [`skip`]) with `why` ("needs root to …").
pub fn root_or_skip(test: &str, why: &str) -> bool {
    if is_root() {
        return true;
    }
    skip(test, why);
    false
}

/// The state letter of a local process (`R`, `S`, `T`, `Z`, …), None when it does not exist.
pub fn proc_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The state follows the parenthesised command name (which may itself hold parentheses).
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

/// A fresh, empty directory for one test, `<tmp>/netsplit-it-<area>-<name>-XXXXXX` (made by
/// `tempfile`, so concurrent runs never share one). It is kept after the test: tests that pass
/// remove their stores themselves, and a failed test's store is left to read.
pub fn tmp_dir(area: &str, name: &str) -> PathBuf {
    tempfile::Builder::new()
        .prefix(&tmp_prefix(area, name))
        .tempdir()
        .expect("a temporary directory")
        .keep()
}

/// `netsplit-it-<area>-<name>-`, the name made safe for a file name.
fn tmp_prefix(area: &str, name: &str) -> String {
    let safe: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(60)
        .collect();
    format!("netsplit-it-{area}-{safe}-")
}

/// Removes every directory [`tmp_dir`] made for `area` and `name` (what a passing test leaves).
pub fn remove_tmp_dirs(area: &str, name: &str) {
    let prefix = tmp_prefix(area, name);
    if let Ok(rd) = std::fs::read_dir(std::env::temp_dir()) {
        for e in rd.flatten() {
            if e.file_name().to_string_lossy().starts_with(&prefix) {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
}

/// The newest run of a store (`<store>/latest`), if there is one yet.
pub fn latest(store: &Path) -> Option<PathBuf> {
    std::fs::canonicalize(store.join("latest")).ok()
}

/// A run's `results.json`.
pub fn results(run: &Path) -> Value {
    let text = std::fs::read_to_string(run.join("results.json")).expect("results.json");
    serde_json::from_str(&text).expect("results.json is JSON")
}

/// A finished run's history: every line must be an event.
pub fn history(run: &Path) -> Vec<Value> {
    std::fs::read_to_string(run.join("history.jsonl"))
        .expect("history.jsonl")
        .lines()
        .map(|l| serde_json::from_str(l).expect("each history line is JSON"))
        .collect()
}

/// The events of a history so far, while its run may still be writing it: a missing file is
/// empty, and a line not yet complete is left out.
pub fn history_so_far(run: &Path) -> Vec<Value> {
    std::fs::read_to_string(run.join("history.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Asserts that client process numbers are never reused: each process has at most one open
/// invocation, and every completion follows an invocation of its process.
pub fn assert_processes_unique(ops: &[Value]) {
    let mut open = std::collections::BTreeSet::new();
    for x in ops.iter().filter(|x| x["process"].is_u64()) {
        let p = x["process"].as_u64().unwrap();
        if x["type"] == "invoke" {
            assert!(
                open.insert(p),
                "process {p} invoked twice without completing"
            );
        } else {
            assert!(
                open.remove(&p),
                "process {p} completed without an invocation"
            );
        }
    }
}

/// The local namespace cluster `name` (3 nodes) for the test `test` (`module::test`), brought
/// up once per test binary; None, after a loud SKIP, when not root or when `also` (a check of
/// the database's binaries, run after the root check and before the cluster comes up) says so.
/// A cluster that cannot come up fails the test.
pub fn local_cluster(
    test: &str,
    name: &'static str,
    also: impl FnOnce() -> bool,
) -> Option<&'static netsplit::cluster::ClusterInfo> {
    if !root_or_skip(test, "needs root to make a local namespace cluster") || !also() {
        return None;
    }
    type Up = Result<netsplit::cluster::ClusterInfo, String>;
    static UP: std::sync::Mutex<Vec<(&str, &'static Up)>> = std::sync::Mutex::new(Vec::new());
    let mut up = UP.lock().unwrap_or_else(|e| e.into_inner());
    let info: &'static Up = match up.iter().find(|(n, _)| *n == name) {
        Some((_, i)) => i,
        None => {
            let i = Box::leak(Box::new(
                netsplit::cluster::ensure_up(name, 3).map_err(|e| format!("{e:#}")),
            ));
            up.push((name, i));
            i
        }
    };
    match info {
        Ok(i) => Some(i),
        Err(e) => panic!("cannot bring up local cluster {name}: {e}"),
    }
}

/// Runs `netsplit test args… --store <store>`, echoing the command, its exit code, its wall
/// time and its stdout to stderr under `label`; (output, the newest run directory of the store,
/// the wall time).
pub fn run_test_in(
    label: &str,
    store: &Path,
    args: &[&str],
) -> (Output, Option<PathBuf>, std::time::Duration) {
    let s = store.display().to_string();
    let mut all = vec!["test"];
    all.extend_from_slice(args);
    all.extend(["--store", &s]);
    let t0 = std::time::Instant::now();
    let out = netsplit(&all);
    let took = t0.elapsed();
    eprintln!(
        "{label}: netsplit {} → {:?} in {:.1}s\n{}",
        all.join(" "),
        out.status.code(),
        took.as_secs_f64(),
        String::from_utf8_lossy(&out.stdout)
    );
    (out, latest(store), took)
}

/// The run directory [`run_test_in`] found, or a failure showing the output.
pub fn run_dir(out: &Output, run: Option<PathBuf>) -> PathBuf {
    run.unwrap_or_else(|| panic!("no run directory\n{}", show(out)))
}

/// The database `T`, built as a run builds it for the register workload with these target
/// options, on the nodes of local cluster `name` (`info`), with SSH to each.
pub fn db_on_cluster<T: netsplit::db::DbType>(
    info: &netsplit::cluster::ClusterInfo,
    name: &str,
    opts: &[(&str, &str)],
) -> T {
    let resolved = netsplit::nodes::ResolvedNodes::from_cluster(info);
    let remotes = netsplit::nodes::connect_all(&resolved).expect("ssh to the cluster");
    let mut plan = netsplit::plan::Plan::default();
    plan.target.name = T::NAME.into();
    plan.workload.name = "register".into();
    plan.nodes.cluster = Some(name.into());
    for (k, v) in opts {
        plan.target.opts.insert(k.to_string(), Value::from(*v));
    }
    netsplit::registry::Registry::builtin()
        .build_db_as::<T>(&plan, resolved.nodes, remotes)
        .unwrap_or_else(|e| panic!("{} target: {e:#}", T::NAME))
}

/// A set run that must have lost acknowledged adds: exit 1 (INVALID), the set checker invalid
/// with the lost elements counted and named. Returns the set checker's result, after printing
/// `what` with how many of how many were lost.
pub fn assert_lost_adds(out: &Output, run: &Path, what: &str) -> Value {
    assert_eq!(
        out.status.code(),
        Some(1),
        "{what}: expected INVALID\n{}",
        show(out)
    );
    let set = results(run)["checkers"]["set"].clone();
    assert_eq!(set["valid"], Value::Bool(false), "{what}: {set}");
    assert!(
        set["lost_count"].as_u64().unwrap_or(0) > 0,
        "{what}: lost elements: {set}"
    );
    assert!(
        set["lost"].as_array().is_some_and(|l| !l.is_empty()),
        "{what}: lost elements named: {set}"
    );
    eprintln!(
        "{what} found INVALID: lost_count {} of {} acknowledged, e.g. {}",
        set["lost_count"], set["acknowledged_count"], set["lost"]
    );
    set
}

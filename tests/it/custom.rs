//! `target: custom` end to end (docs/custom-clients.md): client programs written for these tests
//! (tests/custom/) and the examples of the docs (docs/examples/custom-clients/) run by the
//! `netsplit` binary against a small server each test starts on loopback
//! (tests/custom/server.py: a key-value store speaking part of etcd's JSON gateway and a queue,
//! each with `--lose-writes N`). Also YAML workloads (`total-queue`, `unique-ids`), a client that
//! crashes, answers garbage or hangs, `netsplit client-check`, and bad input.
//!
//! Runs are short (3-4 s each) and at concurrency 3: every worker's program is a Python
//! interpreter, and ten of them starting at once on a loaded 2-core machine take seconds.

use crate::support::{history, latest, netsplit, remove_tmp_dirs, results, show, tmp_dir};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// A file of the repository.
fn repo(path: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(path)
        .to_string_lossy()
        .into_owned()
}

/// tests/custom/server.py, running; killed on drop.
struct Server {
    child: Child,
    port: u16,
}

impl Server {
    /// Starts the server; `lose_writes`: acknowledge and drop every N-th write (0: none).
    fn start(lose_writes: u32) -> Server {
        let mut child = Command::new("python3")
            .arg(repo("tests/custom/server.py"))
            .args(["--lose-writes", &lose_writes.to_string()])
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 tests/custom/server.py");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .expect("the server's PORT line");
        let port = line
            .trim()
            .strip_prefix("PORT ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("server said {line:?}, not PORT <n>"));
        Server { child, port }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `netsplit test` with a plan written from `plan` into a fresh store; returns the exit
/// code and the run's directory.
fn run_plan(name: &str, plan: &str) -> (i32, PathBuf, String) {
    let dir = tmp_dir("custom", name);
    let file = dir.join("plan.yaml");
    std::fs::write(&file, plan).unwrap();
    let store = dir.join("store");
    let out = netsplit(&[
        "test",
        "--plan",
        file.to_str().unwrap(),
        "--store",
        store.to_str().unwrap(),
        "--seed",
        "1",
        "-q",
    ]);
    let run = latest(&store).unwrap_or_else(|| panic!("no run: {}", show(&out)));
    (out.status.code().unwrap_or(-1), run, show(&out))
}

/// A plan for the custom target with `client` (a command line) and the server's port.
fn plan(client: &str, port: u16, workload: &str, run: &str) -> String {
    format!(
        "target: {{name: custom, opts: {{client: '{client}', port: {port}}}}}\n\
         workload: {workload}\n\
         run: {{concurrency: 3, {run}}}\n"
    )
}

fn python_register() -> String {
    format!(
        "python3 {}",
        repo("docs/examples/custom-clients/etcd_register.py")
    )
}

#[test]
fn python_register_client_is_valid_on_a_correct_store_and_invalid_on_a_lossy_one() {
    let good = Server::start(0);
    let (code, run, out) = run_plan(
        "register-good",
        &plan(
            &python_register(),
            good.port,
            "{name: register}",
            "time_limit: 4",
        ),
    );
    let r = results(&run);
    assert_eq!((code, &r["valid"]), (0, &Value::Bool(true)), "{out}");
    let oks =
        r["by_f"]["write"]["ok"].as_u64().unwrap() + r["by_f"]["read"]["ok"].as_u64().unwrap();
    assert!(oks > 30, "the client did work: {}", r["by_f"]);
    // one log per process, stderr of the programs
    assert!(run.join("clients/0.log").is_file() && run.join("clients/2.log").is_file());

    let lossy = Server::start(4);
    let (code, run, out) = run_plan(
        "register-lossy",
        &plan(
            &python_register(),
            lossy.port,
            "{name: register}",
            "time_limit: 4",
        ),
    );
    let r = results(&run);
    assert_eq!(code, 1, "{out}");
    assert_eq!(
        r["checkers"]["linear"]["valid"], false,
        "{}",
        r["checkers"]["linear"]
    );
    remove_tmp_dirs("custom", "register-good");
    remove_tmp_dirs("custom", "register-lossy");
}

#[test]
fn node_register_client_of_the_docs_is_valid() {
    let good = Server::start(0);
    let client = format!(
        "node {}",
        repo("docs/examples/custom-clients/etcd_register.js")
    );
    let (code, run, out) = run_plan(
        "register-node",
        &plan(&client, good.port, "{name: register}", "time_limit: 3"),
    );
    let r = results(&run);
    assert_eq!((code, &r["valid"]), (0, &Value::Bool(true)), "{out}");
    assert!(
        r["by_f"]["read"]["ok"].as_u64().unwrap() > 10,
        "{}",
        r["by_f"]
    );
    remove_tmp_dirs("custom", "register-node");
}

const QUEUE: &str =
    "\n  name: my-queue\n  ops:\n    - {f: enqueue, value: unique, weight: 2}\n    \
                     - {f: dequeue, weight: 1}\n  final: [{f: drain}]\n  checker: total-queue";

#[test]
fn yaml_queue_workload_is_valid_on_a_correct_queue_and_names_lost_elements_on_a_lossy_one() {
    let client = format!("python3 {}", repo("tests/custom/queue_client.py"));
    let good = Server::start(0);
    let (code, run, out) = run_plan(
        "queue-good",
        &plan(&client, good.port, QUEUE, "time_limit: 4"),
    );
    let q = &results(&run)["checkers"]["total-queue"];
    assert_eq!((code, &q["valid"]), (0, &Value::Bool(true)), "{out}");
    assert!(q["acknowledged_count"].as_u64().unwrap() > 20, "{q}");
    assert_eq!(q["drained"], true, "{q}");
    // the section is recorded whole, so `netsplit analyze` can re-check it
    let recorded = std::fs::read_to_string(run.join("plan.yaml")).unwrap();
    assert!(
        recorded.contains("total-queue") && recorded.contains("drain"),
        "{recorded}"
    );

    let lossy = Server::start(3);
    let (code, run, out) = run_plan(
        "queue-lossy",
        &plan(&client, lossy.port, QUEUE, "time_limit: 4"),
    );
    let q = &results(&run)["checkers"]["total-queue"];
    assert_eq!((code, &q["valid"]), (1, &Value::Bool(false)), "{out}");
    // every 3rd enqueue to reach the server was acknowledged and dropped: a third are lost,
    // each named
    let (acked, lost) = (
        q["acknowledged_count"].as_u64().unwrap(),
        q["lost_count"].as_u64().unwrap(),
    );
    assert!(lost * 3 >= acked - 3 && lost * 3 <= acked + 3, "{q}");
    let named = q["lost"].as_array().unwrap();
    assert_eq!(named.len() as u64, lost.min(32), "{q}");
    let first = named[0].to_string();
    assert!(
        out.contains(&format!("{lost} lost ({first}, ")),
        "the report names them: {out}"
    );
    remove_tmp_dirs("custom", "queue-good");
    remove_tmp_dirs("custom", "queue-lossy");
}

#[test]
fn shell_id_client_gets_its_environment_and_unique_ids_finds_duplicates() {
    let ids = repo("tests/custom/ids.sh");
    let wl = "{name: ids, ops: [{f: generate}], checker: unique-ids}";
    let (code, run, out) = run_plan(
        "ids-good",
        &format!(
            "target: {{name: custom, opts: {{client: '{ids}', read-mode: quorum}}}}\n\
             workload: {wl}\nrun: {{concurrency: 3, time_limit: 2}}\n"
        ),
    );
    let u = &results(&run)["checkers"]["unique-ids"];
    assert_eq!((code, &u["valid"]), (0, &Value::Bool(true)), "{out}\n{u}");
    let env = std::fs::read_to_string(run.join("clients/1.log")).unwrap();
    for want in [
        "NETSPLIT_PROCESS=1\n".to_string(),
        "NETSPLIT_NODE=\n".to_string(),
        "NETSPLIT_NODE_INDEX=\n".to_string(),
        "NETSPLIT_OPT_READ_MODE=quorum\n".to_string(),
        format!("NETSPLIT_RUN_DIR={}\n", run.display()),
        "NETSPLIT_WORKLOAD=ids\n".to_string(),
    ] {
        assert!(env.contains(&want), "{want:?} not in\n{env}");
    }

    let (code, run, out) = run_plan(
        "ids-dup",
        &format!(
            "target: {{name: custom, opts: {{client: '{ids} --dup 10'}}}}\n\
             workload: {wl}\nrun: {{concurrency: 3, time_limit: 2}}\n"
        ),
    );
    let u = &results(&run)["checkers"]["unique-ids"];
    assert_eq!((code, &u["valid"]), (1, &Value::Bool(false)), "{out}\n{u}");
    assert!(
        u["duplicated"].as_object().unwrap().contains_key("\"0-9\""),
        "{u}"
    );
    remove_tmp_dirs("custom", "ids-good");
    remove_tmp_dirs("custom", "ids-dup");
}

/// The info errors of a run's history, and the processes it used.
fn infos_and_processes(run: &Path) -> (Vec<String>, usize) {
    let h = history(run);
    let errors = h
        .iter()
        .filter(|e| e["type"] == "info")
        .map(|e| e["error"].as_str().unwrap_or("").to_string())
        .collect();
    let procs: std::collections::BTreeSet<u64> =
        h.iter().filter_map(|e| e["process"].as_u64()).collect();
    (errors, procs.len())
}

#[test]
fn a_client_that_crashes_answers_garbage_or_hangs_is_info_with_the_reason_and_restarted() {
    let good = Server::start(0);
    let misbehave = |mode: &str| {
        format!(
            "python3 {} {mode} -- {}",
            repo("tests/custom/misbehave.py"),
            python_register()
        )
    };
    for (mode, op_timeout, reason) in [
        ("crash=20", 5, "client crashed: exited with status 3 (stderr: misbehave: crashing on purpose) before answering"),
        ("garbage=15", 5, "client answered garbage: not JSON"),
        ("hang=10", 2, "timed out after 2s"),
    ] {
        let name = format!("misbehave-{mode}");
        let (code, run, out) = run_plan(
            &name,
            &plan(
                &misbehave(mode),
                good.port,
                "{name: register}",
                &format!("time_limit: 5, op_timeout: {op_timeout}"),
            ),
        );
        let (infos, processes) = infos_and_processes(&run);
        assert!(
            infos.iter().any(|e| e.starts_with(reason)),
            "{mode}: no info {reason:?} in {infos:?}\n{out}"
        );
        // the register workload keeps two of the three workers busy (threads_per_key 2): a
        // process beyond those two is a restarted program that went on working
        assert!(processes > 2, "{mode}: restarted as new processes: {processes}");
        assert_eq!(code, 0, "{mode}: still VALID\n{out}");
        assert_eq!(results(&run)["checkers"]["linear"]["valid"], true, "{mode}");
        remove_tmp_dirs("custom", &name);
    }
}

#[test]
fn client_check_shows_each_answer_and_fails_on_garbage() {
    let good = Server::start(0);
    let port = format!("port={}", good.port);
    let ok = netsplit(&[
        "client-check",
        "--target-opt",
        &format!("client={}", python_register()),
        "--target-opt",
        &port,
        "--workload",
        "register",
        "--requests",
        "4",
    ]);
    let text = show(&ok);
    assert_eq!(ok.status.code(), Some(0), "{text}");
    assert!(
        text.contains("sent     {\"f\":\"write\",\"value\":[0,1]}"),
        "{text}"
    );
    assert!(text.contains("well formed: ok"), "{text}");
    assert!(
        text.contains("4 requests: 4 ok, 0 fail, 0 info, 0 not well formed"),
        "{text}"
    );

    let bad = netsplit(&[
        "client-check",
        "--target-opt",
        &format!(
            "client=python3 {} garbage=2 -- {}",
            repo("tests/custom/misbehave.py"),
            python_register()
        ),
        "--target-opt",
        &port,
        "--workload",
        "register",
        "--requests",
        "3",
    ]);
    let text = show(&bad);
    assert_eq!(bad.status.code(), Some(1), "{text}");
    assert!(text.contains("answered hello, this is not JSON"), "{text}");
    assert!(
        text.contains("NOT WELL FORMED: client answered garbage"),
        "{text}"
    );
    assert!(
        text.contains("#3 (main, process 1)"),
        "restarted as a new process: {text}"
    );
}

#[test]
fn bad_input_is_one_line_and_254_before_any_run() {
    let dir = tmp_dir("custom", "bad-input");
    let store = dir.join("store");
    let s = store.to_str().unwrap();
    let plan_file = dir.join("p.yaml");
    let cases: Vec<(Vec<String>, Option<&str>, &str)> = vec![
        (
            ["--target-opt", "client=cat", "--nemesis", "partition"].map(String::from).to_vec(),
            None,
            "gets them from --cluster or --nodes",
        ),
        (vec!["--target-opt".into(), "x=1".into()], None, "needs target.opts.client"),
        (
            vec!["--target-opt".into(), "client=pythonnnn3 c.py".into()],
            None,
            "pythonnnn3: command not found",
        ),
        (
            vec![],
            Some("target: {name: custom, opts: {client: cat}}\nworkload:\n  name: q\n  ops: [{f: enqueue, value: uniq}]\n  checker: total-queue\n"),
            "line 4",
        ),
        (
            vec![],
            Some("target: {name: custom, opts: {client: cat}}\nworkload:\n  name: q\n  ops: [{f: enqueue}]\n  checker: total-queues\n"),
            "unknown checker \"total-queues\"",
        ),
    ];
    for (flags, plan_text, want) in cases {
        let mut args: Vec<String> = vec!["test".into(), "--store".into(), s.into(), "-q".into()];
        match plan_text {
            Some(p) => {
                std::fs::write(&plan_file, p).unwrap();
                args.extend(["--plan".into(), plan_file.to_string_lossy().into_owned()]);
            }
            None => args.extend([
                "--target".into(),
                "custom".into(),
                "--workload".into(),
                "register".into(),
            ]),
        }
        args.extend(flags);
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = netsplit(&argv);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(254), "{want}: {}", show(&out));
        assert!(err.contains(want), "{want:?} not in {err}");
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
        assert!(latest(&store).is_none(), "no run was made");
    }
    remove_tmp_dirs("custom", "bad-input");
}

/// Brings local cluster `cus1` down when dropped (only this test uses it).
struct ClusterDown;

impl Drop for ClusterDown {
    fn drop(&mut self) {
        let _ = netsplit(&["cluster", "down", "--name", "cus1", "-q"]);
    }
}

#[test]
fn python_register_client_against_real_etcd_on_a_local_cluster_with_partitions_is_valid() {
    const TEST: &str = "custom::python_register_client_against_real_etcd_on_a_local_cluster";
    if !crate::support::root_or_skip(TEST, "needs root to make a local namespace cluster") {
        return;
    }
    if !Path::new("/usr/bin/etcd").exists() {
        crate::support::skip(TEST, "no /usr/bin/etcd (apt-get install etcd-server)");
        return;
    }
    let up = netsplit(&["cluster", "up", "--name", "cus1", "--nodes", "3", "-q"]);
    assert_eq!(up.status.code(), Some(0), "{}", show(&up));
    let _down = ClusterDown;
    let dir = tmp_dir("custom", "etcd-cluster");
    let store = dir.join("store");
    let s = store.to_str().unwrap();
    // etcd started on the cluster by the built-in target and left running: the user's database
    let start = netsplit(&[
        "test",
        "--target",
        "etcd",
        "--cluster",
        "cus1",
        "--workload",
        "register",
        "--time-limit",
        "1",
        "--nemesis",
        "none",
        "--leave-db-running",
        "--store",
        s,
        "-q",
    ]);
    assert_eq!(start.status.code(), Some(0), "{}", show(&start));
    let client = format!("client={}", python_register());
    let out = netsplit(&[
        "test",
        "--target",
        "custom",
        "--target-opt",
        &client,
        "--cluster",
        "cus1",
        "--workload",
        "register",
        "--nemesis",
        "partition",
        "--nemesis-interval",
        "3",
        "--time-limit",
        "10",
        "--concurrency",
        "3",
        "--store",
        s,
        "--seed",
        "1",
        "-q",
    ]);
    let run = latest(&store).unwrap();
    let r = results(&run);
    assert_eq!(
        (out.status.code(), &r["valid"]),
        (Some(0), &Value::Bool(true)),
        "{}",
        show(&out)
    );
    let h = history(&run);
    assert!(
        h.iter()
            .any(|e| e["f"] == "start-partition" && e["value"]["grudge"].is_object()),
        "a partition ran"
    );
    assert!(
        r["by_f"]["read"]["ok"].as_u64().unwrap() > 20,
        "{}",
        r["by_f"]
    );
    remove_tmp_dirs("custom", "etcd-cluster");
}

#[test]
fn the_python_client_shown_in_the_docs_is_the_one_tested() {
    let doc = std::fs::read_to_string(repo("docs/custom-clients.md")).unwrap();
    let file =
        std::fs::read_to_string(repo("docs/examples/custom-clients/etcd_register.py")).unwrap();
    let block = doc
        .split("```python\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("a python block in docs/custom-clients.md");
    for line in block.lines().filter(|l| !l.trim().is_empty()) {
        assert!(
            file.lines().any(|f| f == line),
            "docs line not in the example: {line:?}"
        );
    }
    assert!(
        block.lines().count() >= 30,
        "the complete client, not an excerpt"
    );
}

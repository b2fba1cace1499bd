//! `--deploy existing` against a PostgreSQL the TEST starts as an operator would
//! (`scripts/pg-operator`, run on the nodes of the local cluster `deppg` with `netsplit exec`):
//! a primary on n1 and a streaming replica on n2 cloned from it, each with its own data
//! directory, the operator's roles and database `appdb` with a table `orders` of three rows, TLS
//! on with a self-signed certificate, and the role `app` allowed over TLS only.
//! One test shares the deployed servers between its cases (they leave them as they found them):
//!
//! - a role that may not create a schema in `appdb` stops in preflight: one line naming the
//!   grant, exit 254;
//! - `app` without TLS (`sslmode=disable`) stops in preflight: one line, the server's refusal;
//! - bank at serializable with read-then-write transfers and reads from the replica, under
//!   partitions, kills and pauses of whole process trees (`process=postgres`, started again from
//!   the recorded command line as the OS user postgres), over TLS (`sslmode=require`) → VALID;
//! - register, set, counter, list-append and rw-register at serializable, a few seconds each
//!   without faults, the certificate checked (`sslmode=verify-ca`) → VALID;
//! - bank at read committed with read-then-write transfers (the aimed control of
//!   plans/postgres-bank-read-committed.yaml), the certificate and the host checked
//!   (`sslmode=verify-full`) → INVALID with wrong totals;
//! - afterwards both servers run (n1 the primary, n2 in recovery and streaming from it), the
//!   operator's table and rows are as they were, and no `netsplit_` schema is left.
//!
//! Needs root and Debian's postgresql (/usr/lib/postgresql/15/bin); without them a loud SKIP.

use crate::support::{history, netsplit, results, root_or_skip, show, skip, tmp_dir};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

const CLUSTER: &str = "deppg";
const BIN: &str = "/usr/lib/postgresql/15/bin";

/// `sh -c script` on node `node` through `netsplit exec`; its output without the node prefix.
fn on_node(node: &str, script: &str) -> String {
    let out = netsplit(&[
        "exec",
        "--cluster",
        CLUSTER,
        "--node",
        node,
        "--timeout",
        "120",
        "--",
        "sh",
        "-c",
        script,
    ]);
    assert!(out.status.success(), "on {node}: {script}\n{}", show(&out));
    let prefix = format!("{node}: ");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.strip_prefix(&prefix).unwrap_or(l).to_string() + "\n")
        .collect()
}

/// Prints `pid ppid` of each process named postgres in this node's network namespace.
const MINE: &str = r#"me=$(stat -L -c %i /proc/self/ns/net)
for p in $(pgrep -x postgres); do
  [ "$(stat -L -c %i /proc/$p/ns/net 2>/dev/null)" = "$me" ] || continue
  echo "$p $(sed 's/.*) //' /proc/$p/stat | cut -d' ' -f2)"
done"#;

/// The operator's PostgreSQL on n1 (primary) and n2 (replica); killed (by pid, in the nodes'
/// namespaces) on drop.
struct OperatorPg {
    nodes: Vec<(String, String)>,
    dir: String,
}

impl OperatorPg {
    fn start(nodes: &[(String, String)]) -> OperatorPg {
        let pg = OperatorPg {
            nodes: nodes.to_vec(),
            dir: format!("/var/lib/netsplit-user-pg/{}", std::process::id()),
        };
        pg.stop_all();
        let script = format!("{}/scripts/pg-operator", env!("CARGO_MANIFEST_DIR"));
        let (n1, a1) = &nodes[0];
        let (n2, a2) = &nodes[1];
        on_node(
            n1,
            &format!(
                "TLS_SAN=IP:{a1},IP:{a2} sh {script} primary {}/{n1} {a1}",
                pg.dir
            ),
        );
        on_node(
            n2,
            &format!("sh {script} replica {}/{n2} {a2} {a1}", pg.dir),
        );
        pg
    }

    /// `psql` as the superuser through node `i`'s Unix socket: rows, `|`-separated.
    fn sql(&self, i: usize, db: &str, query: &str) -> String {
        let (n, _) = &self.nodes[i];
        on_node(
            n,
            &format!(
                "{BIN}/psql -h {}/{n}/run -U postgres -d {db} -At -v ON_ERROR_STOP=1 -c \"{query}\"",
                self.dir
            ),
        )
    }

    /// The postmasters on node `i`: postgres processes whose parent is no postgres.
    fn postmasters(&self, i: usize) -> Vec<u32> {
        let procs: Vec<(u32, u32)> = on_node(&self.nodes[i].0, MINE)
            .lines()
            .filter_map(|l| {
                let (p, pp) = l.split_once(' ')?;
                Some((p.parse().ok()?, pp.trim().parse().ok()?))
            })
            .collect();
        procs
            .iter()
            .filter(|(_, pp)| !procs.iter().any(|(p, _)| p == pp))
            .map(|(p, _)| *p)
            .collect()
    }

    /// Until n1 is the primary and streams to n2 (60 s).
    fn wait_streaming(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let ok = netsplit(&[
                "exec", "--cluster", CLUSTER, "--node", &self.nodes[0].0, "--", "sh", "-c",
                &format!(
                    "{BIN}/psql -h {}/{}/run -U postgres -d postgres -At -c \
                     \"SELECT pg_is_in_recovery(), count(*) FROM pg_stat_replication WHERE state = 'streaming'\"",
                    self.dir, self.nodes[0].0
                ),
            ]);
            if String::from_utf8_lossy(&ok.stdout).contains("f|1") {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the operator's primary did not stream to its replica within 60s\n{}",
                show(&ok)
            );
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    /// Kills every postgres process in the nodes' namespaces, by pid.
    fn stop_all(&self) {
        let kill = format!("{MINE}\n");
        for (n, _) in &self.nodes {
            let script = kill.replace(
                "echo \"$p $(sed 's/.*) //' /proc/$p/stat | cut -d' ' -f2)\"",
                "kill -CONT \"$p\"; kill -KILL \"$p\"",
            ) + "\nexit 0";
            let _ = netsplit(&[
                "exec",
                "--cluster",
                CLUSTER,
                "--node",
                n,
                "--",
                "sh",
                "-c",
                &script,
            ]);
        }
    }
}

impl Drop for OperatorPg {
    fn drop(&mut self) {
        self.stop_all();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `netsplit test --cluster deppg --target postgres --deploy existing` with `extra`.
fn test_existing(store: &Path, extra: &[&str]) -> (Output, Option<PathBuf>) {
    let base = [
        "--cluster",
        CLUSTER,
        "--target",
        "postgres",
        "--deploy",
        "existing",
    ];
    let (out, run, _) = crate::support::run_test_in("deploy_pg", store, &[&base, extra].concat());
    (out, run)
}

/// A bank run on `appdb` with these `--target-opt`s, which must stop in preflight (exit 254)
/// with one line on stderr: that line.
fn refused_in_preflight(store: &Path, opts: &[&str]) -> String {
    let mut args = vec!["--target-opt", "database=appdb"];
    for o in opts {
        args.extend(["--target-opt", o]);
    }
    args.extend([
        "--workload",
        "bank",
        "--nemesis",
        "none",
        "--time-limit",
        "3",
    ]);
    let (out, _) = test_existing(store, &args);
    assert_eq!(out.status.code(), Some(254), "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line\n{err}");
    lines[0].to_string()
}

fn injected(run: &Path, f: &str) -> usize {
    history(run)
        .iter()
        .filter(|o| {
            o["process"] == "nemesis" && o["f"] == format!("start-{f}") && o["value"].is_object()
        })
        .count()
}

#[test]
fn postgres_started_by_an_operator_is_tested_in_its_own_schema_and_left_as_it_was() {
    let test = "deploy_pg::postgres_started_by_an_operator";
    if !root_or_skip(test, "needs root (network namespaces, iptables, signals)") {
        return;
    }
    if !Path::new(&format!("{BIN}/postgres")).exists() {
        skip(
            test,
            format!("{BIN}/postgres is not installed (Debian postgresql)"),
        );
        return;
    }
    let t0 = Instant::now();
    let info = netsplit::cluster::ensure_up(CLUSTER, 2)
        .unwrap_or_else(|e| panic!("cannot bring up local cluster {CLUSTER}: {e:#}"));
    let nodes: Vec<(String, String)> = info
        .nodes
        .iter()
        .map(|n| (n.name.clone(), n.address.clone()))
        .collect();
    let pg = OperatorPg::start(&nodes);
    pg.wait_streaming();
    let orders = "SELECT id, item FROM public.orders ORDER BY id";
    let before = pg.sql(0, "appdb", orders);
    assert_eq!(before, "1|apples\n2|pears\n3|plums\n");
    let masters: Vec<Vec<u32>> = (0..2).map(|i| pg.postmasters(i)).collect();
    eprintln!(
        "deploy_pg: operator's PostgreSQL up in {:.1}s",
        t0.elapsed().as_secs_f64()
    );
    let store = tmp_dir("deploy-pg", "operator");
    let pwfile = store.join("apppw");
    std::fs::write(&pwfile, "apppw\n").unwrap();
    let pwfile_opt = format!("password-file={}", pwfile.display());

    // A role that may not create a schema: preflight, one line naming the grant, nothing done.
    let line = refused_in_preflight(&store, &["user=readonly", "password=ropw"]);
    assert!(
        line.contains("preflight: n1:")
            && line.contains("GRANT CREATE ON DATABASE appdb TO readonly"),
        "{line}"
    );
    assert_eq!(
        (0..2).map(|i| pg.postmasters(i)).collect::<Vec<_>>(),
        masters
    );

    // The role `app` may connect over TLS only (`hostnossl … reject`): without TLS the
    // preflight stops with one line naming the node and the server's refusal.
    let line = refused_in_preflight(&store, &["user=app", &pwfile_opt, "sslmode=disable"]);
    assert!(
        line.contains("n1") && line.contains("no encryption"),
        "{line}"
    );

    // Serializable read-then-write transfers, reads from the replica, under partitions, kills
    // and pauses of the whole server trees: VALID.
    let (out, run) = test_existing(
        &store,
        &[
            "--target-opt",
            "user=app",
            "--target-opt",
            &pwfile_opt,
            "--target-opt",
            "database=appdb",
            "--target-opt",
            "sslmode=require",
            "--target-opt",
            "isolation=serializable",
            "--target-opt",
            "transfer=read-write",
            "--target-opt",
            "read=replica",
            "--target-opt",
            "process=postgres",
            "--workload",
            "bank",
            "--nemesis",
            "partition,kill,pause",
            "--nemesis-interval",
            "3",
            "--time-limit",
            "20",
        ],
    );
    let run = run.unwrap_or_else(|| panic!("no run directory\n{}", show(&out)));
    assert_eq!(out.status.code(), Some(0), "expected VALID\n{}", show(&out));
    let r = results(&run);
    assert_eq!(r["checkers"]["bank"]["valid"], Value::Bool(true), "{r}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    for (n, _) in &nodes {
        assert!(
            stderr.contains(&format!("preflight: {n}: process postgres pid"))
                && stderr.contains("(user postgres)"),
            "the preflight says what it found on {n}\n{stderr}"
        );
    }
    assert!(
        stderr.contains("PostgreSQL 15") && stderr.contains("primary"),
        "{stderr}"
    );
    for f in ["kill", "pause", "partition"] {
        assert!(injected(&run, f) > 0, "a {f} was injected");
    }
    let ops = history(&run);
    let ok_reads = ops
        .iter()
        .filter(|o| o["f"] == "read" && o["type"] == "ok" && o["process"].is_number())
        .count();
    let ok_transfers = ops
        .iter()
        .filter(|o| o["f"] == "transfer" && o["type"] == "ok" && o["process"].is_number())
        .count();
    assert!(
        ok_reads > 20 && ok_transfers > 20,
        "progress: {ok_reads} reads, {ok_transfers} transfers"
    );
    eprintln!("deploy_pg: serializable: {ok_transfers} transfers and {ok_reads} reads ok");

    // The other workloads, each a few seconds without faults at serializable (read committed,
    // the default, is rightly INVALID for list-append and rw-register), over TLS checked against
    // the operator's certificate (its subjectAltName names both servers): VALID, with progress.
    let rootcert = format!("sslrootcert={}/{}/data/server.crt", pg.dir, nodes[0].0);
    for w in ["register", "set", "counter", "list-append", "rw-register"] {
        let (out, run) = test_existing(
            &store,
            &[
                "--target-opt",
                "user=app",
                "--target-opt",
                &pwfile_opt,
                "--target-opt",
                "database=appdb",
                "--target-opt",
                "sslmode=verify-ca",
                "--target-opt",
                &rootcert,
                "--target-opt",
                "isolation=serializable",
                "--workload",
                w,
                "--nemesis",
                "none",
                "--time-limit",
                "3",
            ],
        );
        let run = run.unwrap_or_else(|| panic!("{w}: no run directory\n{}", show(&out)));
        assert_eq!(
            out.status.code(),
            Some(0),
            "{w}: expected VALID\n{}",
            show(&out)
        );
        let ok = history(&run)
            .iter()
            .filter(|o| o["type"] == "ok" && o["process"].is_number())
            .count();
        assert!(ok > 20, "{w}: {ok} ops ok");
        eprintln!("deploy_pg: {w}: VALID, {ok} ops ok");
    }

    // Read committed with read-then-write transfers, aimed (10 workers on 5 accounts at 300/s):
    // lost updates change the total.
    let plan = format!(
        "{}/plans/postgres-bank-read-committed.yaml",
        env!("CARGO_MANIFEST_DIR")
    );
    let (out, run) = test_existing(
        &store,
        &[
            "--plan",
            &plan,
            "--target-opt",
            "user=app",
            "--target-opt",
            "password=apppw",
            "--target-opt",
            "database=appdb",
            "--target-opt",
            "sslmode=verify-full",
            "--target-opt",
            &rootcert,
            "--time-limit",
            "8",
        ],
    );
    let run = run.unwrap_or_else(|| panic!("no run directory\n{}", show(&out)));
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
    eprintln!("deploy_pg: read committed: {wrong} reads with a wrong total");

    // Both servers run again (n2 streaming from n1), the operator's rows are as they were, and
    // no schema of netsplit's is left on either.
    pg.wait_streaming();
    for (i, (n, _)) in nodes.iter().enumerate() {
        assert_eq!(pg.postmasters(i).len(), 1, "one postmaster on {n}");
    }
    assert_eq!(pg.sql(1, "postgres", "SELECT pg_is_in_recovery()"), "t\n");
    assert_eq!(pg.sql(0, "appdb", orders), before);
    let leftover = "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'netsplit%'";
    assert_eq!(pg.sql(0, "appdb", leftover), "");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !pg.sql(1, "appdb", leftover).is_empty() {
        assert!(
            Instant::now() < deadline,
            "the replica still has a netsplit schema"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(pg.sql(1, "appdb", orders), before);
    eprintln!("deploy_pg: whole test {:.1}s", t0.elapsed().as_secs_f64());
    crate::support::remove_tmp_dirs("deploy-pg", "operator");
}

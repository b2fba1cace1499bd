//! The redis target against REAL redis-server.
//!
//! Client tests start their own redis-server processes on loopback addresses (a primary on
//! 127.0.x.1 and a replica on 127.0.x.2, one random free port, configs rendered by the target's
//! own [`redis_conf`], a temporary directory), as children of the test, and kill them by pid at
//! the end (never by name: other tests and users may run Redis here). They need
//! `/usr/bin/redis-server`: as root they install Debian's `redis-server` when it is missing,
//! otherwise they print a loud SKIP.
//!
//! Cluster tests (the `Db` and `netsplit test` on the local namespace cluster `t-redis`,
//! 3 nodes, made or reused by the first test and left up for reuse) need root; without it they
//! print a loud SKIP. They take a lock and run one at a time, and every run tears Redis down
//! again, so no redis-server outlives a test.

use crate::support::{assert_lost_adds, is_root, proc_state, results, show, skip, tmp_dir};
use netsplit::control::Node;
use netsplit::db::redis::client::RedisClient;
use netsplit::db::redis::{redis_conf, Redis, RedisOpts};
use netsplit::db::vocab::{Typed, Vocabulary};
use netsplit::db::{Client, Completion, Db, Kill, LogFiles, Pause, Primaries};
use netsplit::history::OpType;
use netsplit::opts::Preset;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

const BIN: &str = "/usr/bin/redis-server";

/// True when redis-server is there (installing Debian's package when root and missing);
/// otherwise a loud SKIP naming `test`.
fn redis_or_skip(test: &str) -> bool {
    static FOUND: OnceLock<Result<(), String>> = OnceLock::new();
    let r = FOUND.get_or_init(|| {
        if Path::new(BIN).exists() {
            return Ok(());
        }
        if !is_root() {
            return Err("redis-server is not installed and installing it needs root".into());
        }
        let ok = Command::new("sh")
            .args([
                "-c",
                "DEBIAN_FRONTEND=noninteractive apt-get install -y -q redis-server || \
                 { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q redis-server; }",
            ])
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if ok && Path::new(BIN).exists() {
            Ok(())
        } else {
            Err("apt-get install redis-server failed".into())
        }
    });
    match r {
        Ok(()) => true,
        Err(why) => {
            skip(&format!("redis::{test}"), why);
            false
        }
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn ok(c: Completion) -> Value {
    assert_eq!(c.kind, OpType::Ok, "expected ok: {c:?}");
    c.value
}

/// A primary and a replica started by this test on loopback; killed by pid on drop.
struct LocalRedis {
    nodes: Vec<Node>,
    opts: RedisOpts,
    children: Vec<Child>,
    dir: PathBuf,
}

impl LocalRedis {
    fn start(test: &str) -> Option<LocalRedis> {
        if !redis_or_skip(test) {
            return None;
        }
        let dir = tmp_dir("redis", test);
        // A distinct loopback /24 per test keeps concurrently running tests apart.
        let net = 10 + (std::process::id() as usize + test.len() * 7) % 200;
        let nodes: Vec<Node> = (0..2)
            .map(|i| Node {
                name: format!("n{}", i + 1),
                host: format!("127.{net}.0.{}", 1 + i),
                ssh_port: 22,
                workdir: dir.join(format!("n{}", i + 1)).display().to_string(),
            })
            .collect();
        let mut opts = RedisOpts::preset().unwrap();
        opts.port = std::net::TcpListener::bind((nodes[0].host.as_str(), 0))
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        opts.request_timeout = Duration::from_millis(800);
        opts.connect_timeout = Duration::from_millis(500);
        let mut children = Vec::new();
        for (i, n) in nodes.iter().enumerate() {
            std::fs::create_dir_all(opts.data_dir_on(n)).unwrap();
            let conf = opts.conf_on(n);
            std::fs::write(&conf, redis_conf(i, &nodes, &opts).unwrap()).unwrap();
            children.push(
                Command::new(BIN)
                    .arg(&conf)
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .expect("spawning redis-server"),
            );
        }
        let me = LocalRedis {
            nodes,
            opts,
            children,
            dir,
        };
        me.wait_ready();
        Some(me)
    }

    fn log(&self, i: usize) -> String {
        std::fs::read_to_string(self.opts.log_on(&self.nodes[i])).unwrap_or_default()
    }

    /// Until the replica's link to the primary is up.
    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let up = netsplit::db::redis::resp::SyncConn::connect(
                &self.nodes[1].host,
                self.opts.port,
                Duration::from_secs(1),
            )
            .ok()
            .and_then(|mut c| c.call(&["INFO", "replication"]).ok())
            .is_some_and(|r| match r {
                netsplit::db::redis::resp::Reply::Bulk(b) => {
                    String::from_utf8_lossy(&b).contains("master_link_status:up")
                }
                _ => false,
            });
            if up {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "local redis did not become ready\nn1 log:\n{}\nn2 log:\n{}",
                self.log(0),
                self.log(1)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A client bound to node `i` (`primary_host` overrides where writes go).
    fn client(
        &self,
        i: usize,
        w: Vocabulary,
        read: &str,
        primary: Option<usize>,
    ) -> Typed<RedisClient> {
        let mut o = self.opts.clone();
        o.read = serde_json::from_value(serde_json::json!(read)).unwrap();
        let n = &self.nodes[i];
        let p = &self.nodes[primary.unwrap_or(0)];
        Typed::new("redis", w, RedisClient::new(&n.name, &n.host, &p.host, &o)).unwrap()
    }

    fn signal(&self, i: usize, sig: i32) {
        // SAFETY: plain kill(2) on our own child's pid.
        assert_eq!(unsafe { libc::kill(self.children[i].id() as i32, sig) }, 0);
    }
}

impl Drop for LocalRedis {
    fn drop(&mut self) {
        for c in &mut self.children {
            // SAFETY: kill(2) on our own child's pid; a stopped one must be continued to die.
            unsafe { libc::kill(c.id() as i32, libc::SIGCONT) };
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Until a read through `c` returns `want` (replication is asynchronous).
async fn read_until(c: &mut Typed<RedisClient>, f: &str, req: &Value, want: &Value) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let got = c.invoke(f, req).await;
        if got.kind == OpType::Ok && &got.value == want {
            return;
        }
        assert!(Instant::now() < deadline, "never read {want}: last {got:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[test]
fn register_set_and_counter_ops_follow_their_semantics_on_real_redis() {
    let Some(db) = LocalRedis::start("semantics") else {
        return;
    };
    rt().block_on(async {
        // Register, reads from the primary.
        let mut c = db.client(1, Vocabulary::Register, "primary", None);
        assert_eq!(
            ok(c.invoke("read", &json!([1, null])).await),
            json!([1, null])
        );
        assert_eq!(ok(c.invoke("write", &json!([1, 3])).await), json!([1, 3]));
        assert_eq!(ok(c.invoke("read", &json!([1, null])).await), json!([1, 3]));
        assert_eq!(
            ok(c.invoke("cas", &json!([1, [3, 4]])).await),
            json!([1, [3, 4]])
        );
        let lost = c.invoke("cas", &json!([1, [3, 5]])).await;
        assert_eq!(lost.kind, OpType::Fail, "{lost:?}");
        assert_eq!(ok(c.invoke("read", &json!([1, null])).await), json!([1, 4]));
        // A cas on an absent key cannot match.
        let absent = c.invoke("cas", &json!([2, [0, 1]])).await;
        assert_eq!(absent.kind, OpType::Fail, "{absent:?}");
        // An op the workload does not have is never sent.
        let nope = c.invoke("add", &json!(1)).await;
        assert_eq!(nope.kind, OpType::Fail);
        // The replica (read=replica on node 2) catches up with the primary.
        let mut r = db.client(1, Vocabulary::Register, "replica", None);
        read_until(&mut r, "read", &json!([1, null]), &json!([1, 4])).await;

        // Set: adds, then a read of all of them (sorted), from the primary and the replica.
        let mut s = db.client(0, Vocabulary::Set, "primary", None);
        for e in [3, 1, 2, 10] {
            assert_eq!(ok(s.invoke("add", &json!(e)).await), json!(e));
        }
        assert_eq!(
            ok(s.invoke("read", &Value::Null).await),
            json!([1, 2, 3, 10])
        );
        let mut sr = db.client(1, Vocabulary::Set, "replica", None);
        read_until(&mut sr, "read", &Value::Null, &json!([1, 2, 3, 10])).await;

        // Counter: absent reads 0, INCRBY adds.
        let mut n = db.client(0, Vocabulary::Counter, "primary", None);
        assert_eq!(ok(n.invoke("read", &Value::Null).await), json!(0));
        for d in [1, 5, 0] {
            assert_eq!(ok(n.invoke("add", &json!(d)).await), json!(d));
        }
        assert_eq!(ok(n.invoke("read", &Value::Null).await), json!(6));

        // List-append: a transaction reads its own earlier appends; reads of empty keys are [].
        let mut l = db.client(0, Vocabulary::ListAppend, "primary", None);
        let t = json!([
            ["r", 1, null],
            ["append", 1, 5],
            ["append", 1, 6],
            ["r", 1, null]
        ]);
        assert_eq!(
            ok(l.invoke("txn", &t).await),
            json!([
                ["r", 1, []],
                ["append", 1, 5],
                ["append", 1, 6],
                ["r", 1, [5, 6]]
            ])
        );
    });
}

#[test]
fn writes_to_a_replica_fail_readonly_refused_connections_fail_and_a_paused_primary_makes_writes_info(
) {
    let Some(db) = LocalRedis::start("errors") else {
        return;
    };
    rt().block_on(async {
        // A client that believes the replica is the primary: Redis refuses the write.
        let mut c = db.client(1, Vocabulary::Set, "primary", Some(1));
        let w = c.invoke("add", &json!(1)).await;
        assert_eq!(w.kind, OpType::Fail, "{w:?}");
        assert!(w.error.as_deref().unwrap().starts_with("READONLY"), "{w:?}");
        assert_eq!(w.value, json!(1), "fail echoes the request");
        // Same for the register's EVAL and the counter's INCRBY.
        let mut r = db.client(1, Vocabulary::Register, "primary", Some(1));
        let cas = r.invoke("cas", &json!([1, [0, 1]])).await;
        assert_eq!(cas.kind, OpType::Fail, "{cas:?}");
        let mut n = db.client(1, Vocabulary::Counter, "primary", Some(1));
        assert_eq!(n.invoke("add", &json!(1)).await.kind, OpType::Fail);

        // Nothing listening: the connection is refused, nothing was sent: fail.
        let mut o = db.opts.clone();
        o.port = std::net::TcpListener::bind((db.nodes[0].host.as_str(), 0))
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        let h = &db.nodes[0].host;
        let dead = RedisClient::new("n1", h, h, &o);
        let mut dead = Typed::new("redis", Vocabulary::Counter, dead).unwrap();
        let d = dead.invoke("add", &json!(1)).await;
        assert_eq!(d.kind, OpType::Fail, "{d:?}");
        assert!(d.error.as_deref().unwrap().starts_with("connect"), "{d:?}");

        // A paused primary accepts connections (the kernel does) and never answers: a write is
        // unknown (info), a read certainly had no effect (fail).
        let mut w = db.client(0, Vocabulary::Counter, "primary", None);
        assert_eq!(ok(w.invoke("add", &json!(1)).await), json!(1));
        db.signal(0, libc::SIGSTOP);
        let t = w.invoke("add", &json!(1)).await;
        let rd = w.invoke("read", &Value::Null).await;
        db.signal(0, libc::SIGCONT);
        assert_eq!(t.kind, OpType::Info, "{t:?}");
        assert!(t.error.as_deref().unwrap().starts_with("timeout"), "{t:?}");
        assert_eq!(rd.kind, OpType::Fail, "{rd:?}");
        // The timed-out add ran after the resume: the counter shows it (it was not lost, it was
        // unknown), and the client reconnected by itself.
        let mut seen = Value::Null;
        for _ in 0..50 {
            seen = ok(w.invoke("read", &Value::Null).await);
            if seen == json!(2) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(seen, json!(2));
    });
}

// ---------------------------------------------------------------------------------------------
// The Db and `netsplit test` on the local namespace cluster (root only).

const CLUSTER: &str = "t-redis";
/// One test at a time on the shared cluster (they would fight over its ports).
static CLUSTER_LOCK: Mutex<()> = Mutex::new(());

/// The 3-node cluster `t-redis`, or None (after a loud SKIP) when not root or no redis.
fn local_cluster(test: &str) -> Option<&'static netsplit::cluster::ClusterInfo> {
    crate::support::local_cluster(&format!("redis::{test}"), CLUSTER, || redis_or_skip(test))
}

fn alive(pid: u32) -> bool {
    matches!(proc_state(pid), Some(s) if s != 'Z' && s != 'X')
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Tears Redis down even when the test panics.
struct Teardown<'a>(&'a Redis);
impl Drop for Teardown<'_> {
    fn drop(&mut self) {
        if let Err(e) = self.0.teardown() {
            eprintln!("redis teardown failed: {e:#}");
        }
    }
}

#[test]
fn cluster_starts_replicates_survives_kill_and_pause_and_teardown_leaves_no_process() {
    let Some(info) = local_cluster("cluster_lifecycle") else {
        return;
    };
    let _g = CLUSTER_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let redis: Redis = crate::support::db_on_cluster(info, CLUSTER, &[]);
    let _td = Teardown(&redis);
    let c = &redis;
    assert!(c.faketime, "local nodes run redis-server under libfaketime");
    let t = Instant::now();
    redis.setup().expect("setup");
    eprintln!(
        "redis: primary + 2 replicas ready in {:.2}s",
        t.elapsed().as_secs_f64()
    );
    let pids: Vec<u32> = (0..3)
        .map(|i| c.pid(i).unwrap().expect("running"))
        .collect();
    assert!(pids.iter().all(|p| alive(*p)));
    // Started under libfaketime, so clock faults reach it.
    // (Its maps, not its environ: redis-server rewrites that area for its process title.)
    let maps = std::fs::read_to_string(format!("/proc/{}/maps", pids[1])).unwrap();
    assert!(
        maps.contains("libfaketime"),
        "libfaketime not loaded into redis-server"
    );
    assert_eq!(redis.primaries().unwrap(), vec!["n1".to_string()]);
    // A clock fault reaches it: an hour ahead in n2's offset file, and Redis's TIME follows.
    let rc = netsplit::nemesis::clock::rc_path(&c.nodes[1].workdir);
    std::fs::write(&rc, "+3600.000s\n").unwrap();
    let time = netsplit::db::redis::resp::SyncConn::connect(
        &c.nodes[1].host,
        c.opts.port,
        Duration::from_secs(2),
    )
    .and_then(|mut k| k.call(&["TIME"]));
    let _ = std::fs::remove_file(&rc);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let redis_now = match time {
        Ok(netsplit::db::redis::resp::Reply::Array(a)) => match &a[0] {
            netsplit::db::redis::resp::Reply::Bulk(b) => {
                String::from_utf8_lossy(b).parse::<i64>().unwrap()
            }
            other => panic!("TIME answered {other:?}"),
        },
        other => panic!("TIME answered {other:?}"),
    };
    assert!(
        (redis_now - now - 3600).abs() < 30,
        "redis-server's clock did not move: {redis_now} vs {now}"
    );

    let rt = rt();
    rt.block_on(async {
        let mut w = redis.client(Some(2)).await.unwrap();
        assert_eq!(ok(w.invoke("write", &json!([1, 7])).await), json!([1, 7]));
    });

    // Kill a replica and start it again: it reloads, reconnects and catches up.
    redis.kill(2).expect("kill");
    assert!(!alive(pids[2]));
    assert_eq!(c.pid(2).unwrap(), None);
    rt.block_on(async {
        let mut w = redis.client(Some(0)).await.unwrap();
        assert_eq!(ok(w.invoke("write", &json!([1, 8])).await), json!([1, 8]));
    });
    redis.start(2).expect("restart");
    c.wait_serving(Duration::from_secs(30))
        .expect("ready after restart");
    rt.block_on(async {
        let mut r = redis.client(Some(2)).await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let got = r.invoke("read", &json!([1, null])).await;
            if got.value == json!([1, 8]) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "replica never caught up: {got:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });

    // Pause the primary: stopped (T) until resumed.
    let p = c.pid(0).unwrap().unwrap();
    redis.pause(0).expect("pause");
    wait_until("state T", || proc_state(p) == Some('T'));
    redis.resume(0).expect("resume");
    wait_until("not T", || matches!(proc_state(p), Some(s) if s != 'T'));
    c.wait_serving(Duration::from_secs(30))
        .expect("ready after resume");

    for i in 0..3 {
        let files = redis.log_files(i);
        assert!(std::fs::metadata(&files[0])
            .map(|m| m.len() > 0)
            .unwrap_or(false));
    }
    let all: Vec<u32> = (0..3).map(|i| c.pid(i).unwrap().unwrap()).collect();
    redis.teardown().expect("teardown");
    for (i, pid) in all.iter().enumerate() {
        assert!(
            !alive(*pid),
            "redis pid {pid} on n{} survived teardown",
            i + 1
        );
        let n = &c.nodes[i];
        assert!(!Path::new(&c.opts.pid_on(n)).exists(), "pid file left");
        assert!(!Path::new(&c.opts.data_dir_on(n)).exists(), "data dir left");
    }
}

/// Runs `netsplit test --cluster t-redis --target redis` with `args`, in a fresh store;
/// returns the output and the run directory.
fn run_test(name: &str, args: &[&str]) -> (std::process::Output, PathBuf) {
    let store = tmp_dir("redis-e2e", name);
    let base = ["--cluster", CLUSTER, "--target", "redis"];
    let (out, run, _) = crate::support::run_test_in("redis", &store, &[&base, args].concat());
    let run = crate::support::run_dir(&out, run);
    (out, run)
}

/// Ok operations per second of a run's main phase.
fn ok_rate(run: &Path, secs: f64) -> f64 {
    let oks = crate::support::history(run)
        .iter()
        .filter(|o| o["type"] == "ok" && o["process"].is_number())
        .count();
    oks as f64 / secs
}

#[test]
fn e2e_register_with_primary_reads_and_no_faults_is_valid() {
    let test = "e2e_register_with_primary_reads_and_no_faults_is_valid";
    if local_cluster(test).is_none() {
        return;
    }
    let _g = CLUSTER_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let (out, run) = run_test(
        "register",
        &[
            "--workload",
            "register",
            "--nemesis",
            "none",
            "--time-limit",
            "5",
            "--target-opt",
            "read=primary",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "expected VALID\n{}", show(&out));
    let r = results(&run);
    assert_eq!(r["valid"], Value::Bool(true), "{r}");
    eprintln!(
        "redis: register, read=primary: {:.0} ok ops/s",
        ok_rate(&run, 5.0)
    );
    for n in ["n1", "n2", "n3"] {
        assert!(
            run.join("nodes").join(n).join("redis.log").exists(),
            "{n}'s log fetched"
        );
    }
    crate::support::remove_tmp_dirs("redis-e2e", "register");
}

#[test]
fn e2e_set_with_replica_reads_under_partitions_is_found_invalid() {
    let test = "e2e_set_with_replica_reads_under_partitions_is_found_invalid";
    if local_cluster(test).is_none() {
        return;
    }
    let _g = CLUSTER_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    // Stale reads count as invalid (`linearizable: true`): a replica cut off from the primary
    // goes on answering reads from its old copy (replica-serve-stale-data), so an element whose
    // add was acknowledged is missing from a later read. The plan cuts the primary off from
    // every replica, which makes that certain in one run
    // (plans/redis-replica-reads-partition.yaml).
    let plan = plan_file("redis-replica-reads-partition.yaml");
    let (out, run) = run_test("set", &["--plan", &plan]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "expected INVALID\n{}",
        show(&out)
    );
    let r = results(&run);
    assert_eq!(r["valid"], Value::Bool(false), "{r}");
    let set = &r["checkers"]["set"];
    assert_eq!(set["valid"], Value::Bool(false), "{set}");
    let named =
        set["stale"].as_array().map_or(0, Vec::len) + set["lost"].as_array().map_or(0, Vec::len);
    assert!(named > 0, "the anomalous elements are named: {set}");
    eprintln!(
        "redis: set under partitions found INVALID: stale_count {}, \
         lost_count {}, e.g. stale {}, lost {}; {:.0} ok ops/s",
        set["stale_count"],
        set["lost_count"],
        set["stale"],
        set["lost"],
        ok_rate(&run, 12.0)
    );
    crate::support::remove_tmp_dirs("redis-e2e", "set");
}

#[test]
fn e2e_register_with_replica_reads_under_partitions_breaks_read_your_writes() {
    let test = "e2e_register_with_replica_reads_under_partitions_breaks_read_your_writes";
    if local_cluster(test).is_none() {
        return;
    }
    let _g = CLUSTER_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    // Below linearizability: a worker writes through the primary and reads from its replica,
    // which the partition has cut off, so it reads a value older than its own write
    // (plans/redis-register-replica-reads.yaml, docs/consistency-models.md).
    let plan = plan_file("redis-register-replica-reads.yaml");
    let (out, run) = run_test("ryw", &["--plan", &plan]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "expected INVALID\n{}",
        show(&out)
    );
    let r = results(&run);
    let ryw = &r["models"]["read-your-writes"];
    assert_eq!(ryw["valid"], Value::Bool(false), "{ryw}");
    assert!(!ryw["witness"].as_array().unwrap().is_empty(), "{ryw}");
    assert_eq!(r["models"]["linearizable"]["valid"], Value::Bool(false));
    eprintln!("redis: read-your-writes violated: {}", ryw["reason"]);
    crate::support::remove_tmp_dirs("redis-e2e", "ryw");
}

#[test]
fn e2e_set_with_an_unpersisted_primary_under_kills_loses_acknowledged_adds() {
    let test = "e2e_set_with_an_unpersisted_primary_under_kills_loses_acknowledged_adds";
    if local_cluster(test).is_none() {
        return;
    }
    let _g = CLUSTER_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    // Without an append-only file (and with RDB snapshots off) a primary that is killed comes
    // back empty, and its replicas resynchronise to the empty data set: every acknowledged add
    // before the crash is gone, even from the final reads. The plan aims every kill at the
    // primary, which makes the loss certain (plans/redis-unpersisted-primary-kill.yaml).
    let plan = plan_file("redis-unpersisted-primary-kill.yaml");
    let (out, run) = run_test("kill", &["--plan", &plan]);
    assert_lost_adds(&out, &run, "redis: kills of an unpersisted primary");
    crate::support::remove_tmp_dirs("redis-e2e", "kill");
}

/// A reference plan of the repository.
fn plan_file(name: &str) -> String {
    format!("{}/plans/{name}", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn e2e_sentinel_failover_under_long_partitions_loses_acknowledged_adds_and_short_ones_lose_nothing()
{
    let test = "e2e_sentinel_failover_under_long_partitions_loses_acknowledged_adds_and_short_ones_lose_nothing";
    if local_cluster(test).is_none() {
        return;
    }
    let _g = CLUSTER_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    // The primary is cut off for 8 s, longer than down-after-ms (2 s): the other Sentinels
    // promote a replica while clients keep writing to the old primary, which drops those writes
    // when it rejoins as a replica. One partition cycle in 20 s; 8 s against 2 s makes the
    // failover, and so the loss, certain (10 of 10 runs, docs/ci.md).
    let plan = plan_file("redis-sentinel-failover-loses-writes.yaml");
    let (out, run) = run_test("sentinel-long", &["--plan", &plan]);
    assert_lost_adds(&out, &run, "redis: Sentinel failover");
    // A failover happened: some Sentinel log says it promoted a replica.
    let promoted = ["n1", "n2", "n3"].iter().any(|n| {
        std::fs::read_to_string(run.join("nodes").join(n).join("sentinel.log"))
            .is_ok_and(|l| l.contains("+switch-master"))
    });
    assert!(promoted, "a Sentinel logged +switch-master");
    crate::support::remove_tmp_dirs("redis-e2e", "sentinel-long");

    // Partitions of 2 s against down-after-ms 8 s: no failover, nothing lost.
    let plan = plan_file("redis-sentinel-short-partitions.yaml");
    let (out, run) = run_test("sentinel-short", &["--plan", &plan, "--time-limit", "15"]);
    assert_eq!(out.status.code(), Some(0), "expected VALID\n{}", show(&out));
    let set = &results(&run)["checkers"]["set"];
    assert_eq!(set["lost_count"].as_u64(), Some(0), "{set}");
    crate::support::remove_tmp_dirs("redis-e2e", "sentinel-short");
}

/// The unsynced bytes the crashes of a run dropped (`start-lose-unsynced` ops), and how many.
fn lost_bytes(run: &Path) -> (usize, u64) {
    let mut crashes = 0;
    let mut bytes = 0;
    for o in crate::support::history(run)
        .iter()
        .filter(|o| o["f"] == "start-lose-unsynced" && o["value"]["lost"].is_object())
    {
        crashes += 1;
        bytes += o["value"]["lost"]
            .as_object()
            .unwrap()
            .values()
            .filter_map(|v| v["lost_bytes"].as_u64())
            .sum::<u64>();
    }
    (crashes, bytes)
}

#[test]
fn e2e_crashes_that_lose_unsynced_writes_lose_adds_with_appendfsync_no_and_none_with_always() {
    let test =
        "e2e_crashes_that_lose_unsynced_writes_lose_adds_with_appendfsync_no_and_none_with_always";
    if local_cluster(test).is_none() {
        return;
    }
    let _g = CLUSTER_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    // A positive control (docs/faults.md, "Disk faults"): with `appendfsync no` nothing the
    // workload writes to the append-only file is ever synced, so a crash of the primary that
    // drops every unsynced write takes it back to what setup left: every add acknowledged
    // before it is lost, named. Certain: every crash is aimed at the primary, and the replicas
    // resynchronise to the restarted primary's empty set
    // (plans/redis-appendfsync-no-lose-unsynced.yaml).
    let plan = plan_file("redis-appendfsync-no-lose-unsynced.yaml");
    let (out, run) = run_test("fsync-no", &["--plan", &plan]);
    assert_lost_adds(&out, &run, "redis appendfsync=no: lose-unsynced");
    let (crashes, bytes) = lost_bytes(&run);
    assert!(crashes > 0 && bytes > 0, "{crashes} crashes, {bytes} bytes");
    eprintln!("redis appendfsync=no: {crashes} crashes dropped {bytes} unsynced bytes");
    crate::support::remove_tmp_dirs("redis-e2e", "fsync-no");

    // A negative control: `appendfsync always` syncs before it replies, so nothing
    // acknowledged is lost (plans/redis-appendfsync-always-lose-unsynced.yaml).
    let plan = plan_file("redis-appendfsync-always-lose-unsynced.yaml");
    let (out, run) = run_test("fsync-always", &["--plan", &plan]);
    assert_eq!(out.status.code(), Some(0), "expected VALID\n{}", show(&out));
    let set = &results(&run)["checkers"]["set"];
    assert!(
        set["acknowledged_count"].as_u64().unwrap_or(0) > 100,
        "{set}"
    );
    assert_eq!(set["lost_count"].as_u64(), Some(0), "{set}");
    let (crashes, _) = lost_bytes(&run);
    assert!(crashes > 0, "the crashes happened");
    crate::support::remove_tmp_dirs("redis-e2e", "fsync-always");
}

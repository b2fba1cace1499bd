//! The etcd target against REAL etcd.
//!
//! Client tests start their own etcd members on loopback addresses (127.0.0.x, random free
//! ports, a temporary data dir), as children of the test, and kill them by pid at the end
//! (never by name: other tests and other users may run etcd on this machine). They need the
//! `etcd` binary: as root they install Debian's `etcd-server` when it is missing, otherwise they
//! print a loud SKIP.
//!
//! Cluster tests (the `Db` on a local namespace cluster over SSH) need root; without it they
//! print a loud SKIP.

use crate::support::{is_root, proc_state, skip, tmp_dir};
use netsplit::control::Node;
use netsplit::db::etcd::client::{EtcdClient, Outcome};
use netsplit::db::etcd::config::{etcd_args, fresh_cluster_token, EtcdOpts, ReadMode};
use netsplit::db::vocab::Vocabulary;
use netsplit::opts::Preset;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The etcd binary, installing Debian's package when root and missing; None (after a loud SKIP)
/// when it cannot be had.
fn etcd_binary(test: &str) -> Option<&'static str> {
    static FOUND: OnceLock<Result<(), String>> = OnceLock::new();
    const BIN: &str = "/usr/bin/etcd";
    let r = FOUND.get_or_init(|| {
        if Path::new(BIN).exists() {
            return Ok(());
        }
        if !is_root() {
            return Err("etcd is not installed and installing it needs root".into());
        }
        let ok = Command::new("sh")
            .args([
                "-c",
                "DEBIAN_FRONTEND=noninteractive apt-get install -y -q etcd-server || \
                 { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q etcd-server; }",
            ])
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if ok && Path::new(BIN).exists() {
            Ok(())
        } else {
            Err("apt-get install etcd-server failed".into())
        }
    });
    match r {
        Ok(()) => Some(BIN),
        Err(why) => {
            skip(&format!("etcd::{test}"), why);
            None
        }
    }
}

/// Two distinct free ports on `host` (both listeners live until both ports are known).
fn free_ports(host: &str) -> (u16, u16) {
    let a = std::net::TcpListener::bind((host, 0)).expect("a free port");
    let b = std::net::TcpListener::bind((host, 0)).expect("a free port");
    let port = |l: &std::net::TcpListener| l.local_addr().expect("bound").port();
    (port(&a), port(&b))
}

/// etcd members started by this test on loopback addresses; killed by pid on drop.
struct LocalEtcd {
    nodes: Vec<Node>,
    opts: EtcdOpts,
    children: Vec<Option<Child>>,
    dir: PathBuf,
}

impl LocalEtcd {
    /// `n` members on 127.0.0.{base}, 127.0.0.{base+1}, … sharing two random ports.
    fn start(test: &str, n: usize) -> Option<LocalEtcd> {
        let bin = etcd_binary(test)?;
        let dir = tmp_dir("etcd", &format!("{test}-{}", fresh_cluster_token()));
        // A distinct loopback address per test keeps concurrently running tests apart.
        let base = 10 + (std::process::id() as usize + test.len() * 7) % 200;
        let nodes: Vec<Node> = (0..n)
            .map(|i| Node {
                name: format!("n{}", i + 1),
                host: format!("127.0.{}.{}", base % 250, 1 + i),
                ssh_port: 22,
                workdir: dir.join(format!("n{}", i + 1)).display().to_string(),
            })
            .collect();
        let mut opts = EtcdOpts::preset().unwrap();
        opts.binary = bin.to_string();
        (opts.client_port, opts.peer_port) = free_ports(&nodes[0].host);
        opts.cluster_token = fresh_cluster_token();
        opts.request_timeout = Duration::from_secs(2);
        opts.connect_timeout = Duration::from_millis(500);
        let mut me = LocalEtcd {
            nodes,
            opts,
            children: Vec::new(),
            dir,
        };
        for i in 0..n {
            let c = me.spawn(i);
            me.children.push(Some(c));
        }
        me.wait_ready();
        Some(me)
    }

    fn spawn(&self, i: usize) -> Child {
        let node = &self.nodes[i];
        std::fs::create_dir_all(&node.workdir).unwrap();
        let argv = etcd_args(i, &self.nodes, &self.opts);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.opts.log_on(node))
            .or_else(|_| {
                std::fs::create_dir_all(format!("{}/etcd", node.workdir))?;
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(self.opts.log_on(node))
            })
            .unwrap();
        Command::new(&argv[0])
            .args(&argv[1..])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("spawning etcd")
    }

    fn client(&self, i: usize) -> EtcdClient {
        let n = &self.nodes[i];
        EtcdClient::new(&n.name, &self.opts.client_url(n), &self.opts).unwrap()
    }

    fn serializable_client(&self, i: usize) -> EtcdClient {
        let mut o = self.opts.clone();
        o.read = ReadMode::Serializable;
        let n = &self.nodes[i];
        EtcdClient::new(&n.name, &o.client_url(n), &o).unwrap()
    }

    fn log(&self, i: usize) -> String {
        std::fs::read_to_string(self.opts.log_on(&self.nodes[i])).unwrap_or_default()
    }

    /// Until every member reports a leader and a put through member 0 succeeds.
    fn wait_ready(&self) {
        let rt = rt();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ready = rt.block_on(async {
                for i in 0..self.nodes.len() {
                    match self.client(i).status().await {
                        Ok(s) if s.leader != 0 => {}
                        _ => return false,
                    }
                }
                self.client(0).put(b"ready", b"1").await.is_ok()
            });
            if ready {
                return;
            }
            if Instant::now() > deadline {
                panic!("local etcd did not become ready; n1 log:\n{}", self.log(0));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn pid(&self, i: usize) -> i32 {
        self.children[i].as_ref().expect("member running").id() as i32
    }

    fn signal(&self, i: usize, sig: i32) {
        // SAFETY: plain kill(2) on our own child's pid.
        assert_eq!(unsafe { libc::kill(self.pid(i), sig) }, 0);
    }

    /// SIGKILL member i (by its pid) and reap it.
    fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.children[i].take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for LocalEtcd {
    fn drop(&mut self) {
        for i in 0..self.children.len() {
            if let Some(c) = &self.children[i] {
                // A stopped process must be continued to die cleanly when reaped.
                // SAFETY: kill(2) on our own child's pid.
                unsafe { libc::kill(c.id() as i32, libc::SIGCONT) };
            }
            self.kill(i);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn ok(o: Outcome) -> Value {
    match o {
        Outcome::Ok(v) => v,
        other => panic!("expected ok, got {other:?}"),
    }
}

#[test]
fn register_reads_writes_and_cas_follow_register_semantics() {
    let Some(db) = LocalEtcd::start("register", 1) else {
        return;
    };
    let c = db.client(0);
    let w = Vocabulary::Register;
    rt().block_on(async {
        assert_eq!(
            ok(c.invoke(w, "read", &json!([1, null])).await),
            json!([1, null])
        );
        assert_eq!(
            ok(c.invoke(w, "write", &json!([1, 3])).await),
            json!([1, 3])
        );
        assert_eq!(
            ok(c.invoke(w, "read", &json!([1, null])).await),
            json!([1, 3])
        );
        assert_eq!(
            ok(c.invoke(w, "cas", &json!([1, [3, 4]])).await),
            json!([1, [3, 4]])
        );
        let lost = c.invoke(w, "cas", &json!([1, [3, 5]])).await;
        assert!(matches!(lost, Outcome::Fail(_)), "{lost:?}");
        assert_eq!(
            ok(c.invoke(w, "read", &json!([1, null])).await),
            json!([1, 4])
        );
        // A cas on an absent key cannot match.
        let absent = c.invoke(w, "cas", &json!([2, [0, 1]])).await;
        assert!(matches!(absent, Outcome::Fail(_)), "{absent:?}");
        assert_eq!(
            ok(c.invoke(w, "read", &json!([2, null])).await),
            json!([2, null])
        );
        // An op the workload does not have is never sent.
        assert!(matches!(
            c.invoke(w, "add", &json!(1)).await,
            Outcome::Fail(_)
        ));
    });
}

#[test]
fn list_append_txns_read_their_own_and_earlier_appends_and_failed_appends_never_appear() {
    let Some(db) = LocalEtcd::start("listappend", 1) else {
        return;
    };
    let w = Vocabulary::ListAppend;
    let rt = rt();
    rt.block_on(async {
        let c = db.client(0);
        let r = ok(c
            .invoke(
                w,
                "txn",
                &json!([["append", 1, 1], ["r", 1, null], ["r", 2, null]]),
            )
            .await);
        assert_eq!(r, json!([["append", 1, 1], ["r", 1, [1]], ["r", 2, null]]));
        let r = ok(c
            .invoke(
                w,
                "txn",
                &json!([
                    ["r", 1, null],
                    ["append", 1, 2],
                    ["append", 2, 9],
                    ["r", 1, null]
                ]),
            )
            .await);
        assert_eq!(
            r,
            json!([
                ["r", 1, [1]],
                ["append", 1, 2],
                ["append", 2, 9],
                ["r", 1, [1, 2]]
            ])
        );
    });
    // Concurrent appends to one key: the ok ones all appear exactly once, the failed ones never.
    let results: Vec<(i64, Outcome)> = rt.block_on(async {
        let mut handles = Vec::new();
        for t in 0..8i64 {
            let c = db.client(0);
            handles.push(tokio::spawn(async move {
                let mut out = Vec::new();
                for j in 0..15i64 {
                    let v = 100 + t * 100 + j;
                    let o = c
                        .invoke(
                            Vocabulary::ListAppend,
                            "txn",
                            &json!([["append", 7, v], ["r", 7, null]]),
                        )
                        .await;
                    out.push((v, o));
                }
                out
            }));
        }
        let mut all = Vec::new();
        for h in handles {
            all.extend(h.await.unwrap());
        }
        all
    });
    let acked: BTreeSet<i64> = results
        .iter()
        .filter(|(_, o)| matches!(o, Outcome::Ok(_)))
        .map(|(v, _)| *v)
        .collect();
    let failed: BTreeSet<i64> = results
        .iter()
        .filter(|(_, o)| matches!(o, Outcome::Fail(_)))
        .map(|(v, _)| *v)
        .collect();
    assert!(results.iter().all(|(_, o)| !matches!(o, Outcome::Info(_))));
    assert!(!acked.is_empty());
    let fin = ok(rt.block_on(db.client(0).invoke(w, "txn", &json!([["r", 7, null]]))));
    let list: Vec<i64> = fin[0][2]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect();
    let seen: BTreeSet<i64> = list.iter().copied().collect();
    assert_eq!(seen.len(), list.len(), "duplicates in {list:?}");
    assert_eq!(seen, acked, "failed: {failed:?}");
}

#[test]
fn bank_transfers_conserve_the_total_and_refuse_overdrafts() {
    let Some(db) = LocalEtcd::start("bank", 1) else {
        return;
    };
    let rt = rt();
    let balances = netsplit::workload::bank::initial_balances(5, 100);
    rt.block_on(db.client(0).bank_init(&balances)).unwrap();
    // A second init (another client) changes nothing.
    rt.block_on(db.client(0).bank_init(&[(0, 1000)])).unwrap();
    let over = rt.block_on(db.client(0).invoke(
        Vocabulary::Bank,
        "transfer",
        &json!({"from": 1, "to": 2, "amount": 1000}),
    ));
    assert!(
        matches!(over, Outcome::Fail(ref e) if e.contains("insufficient")),
        "{over:?}"
    );
    let oks: usize = rt.block_on(async {
        let mut hs = Vec::new();
        for t in 0..8u64 {
            let c = db.client(0);
            hs.push(tokio::spawn(async move {
                let mut n = 0;
                for j in 0..25u64 {
                    let (from, to) = ((t + j) % 5, (t * 3 + j * 7 + 1) % 5);
                    let v = json!({"from": from, "to": to, "amount": 1 + (j % 7)});
                    match c.invoke(Vocabulary::Bank, "transfer", &v).await {
                        Outcome::Ok(_) => n += 1,
                        Outcome::Fail(_) => {}
                        Outcome::Info(e) => panic!("info on a healthy server: {e}"),
                    }
                }
                n
            }));
        }
        let mut n = 0;
        for h in hs {
            n += h.await.unwrap();
        }
        n
    });
    assert!(oks > 0);
    let read = ok(rt.block_on(db.client(0).invoke(Vocabulary::Bank, "read", &Value::Null)));
    let m = read.as_object().unwrap();
    assert_eq!(m.len(), 5, "{read}");
    let total: i64 = m.values().map(|v| v.as_i64().unwrap()).sum();
    assert_eq!(total, 100, "{read}");
    assert!(m.values().all(|v| v.as_i64().unwrap() >= 0), "{read}");
}

#[test]
fn counter_counts_exactly_the_acknowledged_increments() {
    let Some(db) = LocalEtcd::start("counter", 1) else {
        return;
    };
    let rt = rt();
    assert_eq!(
        ok(rt.block_on(
            db.client(0)
                .invoke(Vocabulary::Counter, "read", &Value::Null)
        )),
        json!(0)
    );
    let (oks, fails) = rt.block_on(async {
        let mut hs = Vec::new();
        for _ in 0..8 {
            let c = db.client(0);
            hs.push(tokio::spawn(async move {
                let (mut o, mut f) = (0i64, 0i64);
                for _ in 0..25 {
                    match c.invoke(Vocabulary::Counter, "add", &json!(1)).await {
                        Outcome::Ok(_) => o += 1,
                        Outcome::Fail(_) => f += 1,
                        Outcome::Info(e) => panic!("info on a healthy server: {e}"),
                    }
                }
                (o, f)
            }));
        }
        let (mut o, mut f) = (0, 0);
        for h in hs {
            let (a, b) = h.await.unwrap();
            o += a;
            f += b;
        }
        (o, f)
    });
    assert_eq!(oks + fails, 200);
    assert!(oks > 0);
    assert_eq!(
        ok(rt.block_on(
            db.client(0)
                .invoke(Vocabulary::Counter, "read", &Value::Null)
        )),
        json!(oks),
        "{fails} adds lost their compare"
    );
}

#[test]
fn set_reads_return_every_added_element() {
    let Some(db) = LocalEtcd::start("set", 1) else {
        return;
    };
    let rt = rt();
    let c = db.client(0);
    rt.block_on(async {
        for e in [5, -3, 12, 7] {
            assert_eq!(
                ok(c.invoke(Vocabulary::Set, "add", &json!(e)).await),
                json!(e)
            );
        }
        let got = ok(c.invoke(Vocabulary::Set, "read", &Value::Null).await);
        let got: BTreeSet<i64> = got
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_i64().unwrap())
            .collect();
        assert_eq!(got, BTreeSet::from([5, -3, 12, 7]));
    });
}

#[test]
fn serializable_reads_answer_without_quorum_while_linearizable_reads_fail_and_writes_are_info() {
    let Some(mut db) = LocalEtcd::start("serializable", 2) else {
        return;
    };
    let rt = rt();
    let w = Vocabulary::Register;
    assert_eq!(
        ok(rt.block_on(db.client(0).invoke(w, "write", &json!([1, 42])))),
        json!([1, 42])
    );
    // Both members have applied the write once a linearizable read through n2 sees it.
    assert_eq!(
        ok(rt.block_on(db.client(1).invoke(w, "read", &json!([1, null])))),
        json!([1, 42])
    );
    // Without n2, n1 has no quorum: it can only answer from its own (possibly stale) state.
    db.kill(1);
    let s = rt.block_on(
        db.serializable_client(0)
            .invoke(w, "read", &json!([1, null])),
    );
    assert_eq!(ok(s), json!([1, 42]));
    let l = rt.block_on(db.client(0).invoke(w, "read", &json!([1, null])));
    assert!(matches!(l, Outcome::Fail(_)), "linearizable read: {l:?}");
    // A write may have been proposed before the timeout: unknown.
    let wr = rt.block_on(db.client(0).invoke(w, "write", &json!([1, 43])));
    assert!(
        matches!(wr, Outcome::Info(_)),
        "write without quorum: {wr:?}"
    );
    // Writes to a member that is down were never sent: fail.
    let down = rt.block_on(db.client(1).invoke(w, "write", &json!([1, 44])));
    assert!(
        matches!(down, Outcome::Fail(ref e) if e.starts_with("connect")),
        "{down:?}"
    );
}

#[test]
fn a_paused_member_makes_writes_info_and_reads_fail_and_a_stopped_one_fails_both() {
    let Some(mut db) = LocalEtcd::start("classify", 1) else {
        return;
    };
    let rt = rt();
    let w = Vocabulary::Register;
    let c = db.client(0);
    ok(rt.block_on(c.invoke(w, "write", &json!([1, 1]))));
    db.signal(0, libc::SIGSTOP);
    let wr = rt.block_on(c.invoke(w, "write", &json!([1, 2])));
    assert!(
        matches!(wr, Outcome::Info(ref e) if e.starts_with("timeout")),
        "{wr:?}"
    );
    let cas = rt.block_on(c.invoke(w, "cas", &json!([1, [1, 3]])));
    assert!(matches!(cas, Outcome::Info(_)), "{cas:?}");
    let rd = rt.block_on(c.invoke(w, "read", &json!([1, null])));
    assert!(matches!(rd, Outcome::Fail(_)), "{rd:?}");
    // The read phase of a counter add fails before anything is written: fail, not info.
    let add = rt.block_on(c.invoke(Vocabulary::Counter, "add", &json!(1)));
    assert!(matches!(add, Outcome::Fail(_)), "{add:?}");
    db.signal(0, libc::SIGCONT);
    db.kill(0);
    for (f, v) in [
        ("read", json!([1, null])),
        ("write", json!([1, 5])),
        ("cas", json!([1, [1, 2]])),
    ] {
        let o = rt.block_on(c.invoke(w, f, &v));
        assert!(
            matches!(o, Outcome::Fail(ref e) if e.starts_with("connect")),
            "{f} to a stopped member: {o:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The Db on a local namespace cluster (root only).

use netsplit::db::etcd::Etcd;
use netsplit::db::{Db, Kill, LogFiles, Pause, Primaries};
use netsplit::plan::Plan;

const CLUSTER: &str = "t-etcd";

/// The shared 3-node cluster for etcd tests, or None (after a loud SKIP) when not root.
fn local_cluster(test: &str) -> Option<&'static netsplit::cluster::ClusterInfo> {
    crate::support::local_cluster(&format!("etcd::{test}"), CLUSTER, || {
        etcd_binary(test).is_some()
    })
}

/// Serialises the tests that use the shared cluster (they would fight over its ports).
fn cluster_lock() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

fn target_on(info: &netsplit::cluster::ClusterInfo, opts: &[(&str, &str)]) -> Etcd {
    crate::support::db_on_cluster(info, CLUSTER, opts)
}

/// Tears the cluster's etcd down even when the test panics.
struct Teardown<'a>(&'a Etcd);
impl Drop for Teardown<'_> {
    fn drop(&mut self) {
        if let Err(e) = self.0.teardown() {
            eprintln!("etcd teardown failed: {e:#}");
        }
    }
}

fn alive(pid: u32) -> bool {
    matches!(proc_state(pid), Some(s) if s != 'Z' && s != 'X')
}

fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn cluster_starts_survives_kill_and_pause_of_members_and_teardown_leaves_no_process() {
    let Some(info) = local_cluster("cluster_lifecycle") else {
        return;
    };
    let _g = cluster_lock();
    let etcd = target_on(info, &[]);
    let _td = Teardown(&etcd);
    let c = &etcd;
    let t = Instant::now();
    etcd.setup().expect("setup");
    eprintln!(
        "3-member etcd cluster healthy in {:.2}s",
        t.elapsed().as_secs_f64()
    );
    let pids: Vec<u32> = (0..3)
        .map(|i| c.pid(i).unwrap().expect("member running"))
        .collect();
    assert!(pids.iter().all(|p| alive(*p)));

    let leaders = etcd.primaries().expect("members answer");
    assert_eq!(leaders.len(), 1, "{leaders:?}");
    let leader = c.nodes.iter().position(|n| n.name == leaders[0]).unwrap();

    let rt = rt();
    let w = rt.block_on(async {
        let mut cl = etcd.client(Some(0)).await.unwrap();
        cl.invoke("write", &json!([1, 7])).await
    });
    assert_eq!(w.kind, netsplit::history::OpType::Ok, "{w:?}");
    let r = rt.block_on(async {
        let mut cl = etcd.client(Some(2)).await.unwrap();
        cl.invoke("read", &json!([1, null])).await
    });
    assert_eq!(r.value, json!([1, 7]), "{r:?}");

    // Kill the leader: its process is gone, the others elect a new one.
    etcd.kill(leader).expect("kill");
    assert!(!alive(pids[leader]), "killed member still alive");
    assert_eq!(c.pid(leader).unwrap(), None);
    wait_until(
        "a new leader",
        Duration::from_secs(30),
        || matches!(etcd.primaries(), Ok(ls) if ls.len() == 1 && ls[0] != leaders[0]),
    );
    // Restart over its data dir: it rejoins and still knows the write.
    etcd.start(leader).expect("restart");
    c.wait_serving(Duration::from_secs(30))
        .expect("healthy after restart");
    let r = rt.block_on(async {
        let mut cl = etcd.client(Some(leader)).await.unwrap();
        cl.invoke("read", &json!([1, null])).await
    });
    assert_eq!(r.value, json!([1, 7]), "{r:?}");
    let restarted = c.pid(leader).unwrap().expect("restarted");
    assert_ne!(restarted, pids[leader]);
    let log = std::fs::read_to_string(c.opts.log_on(&c.nodes[leader])).unwrap();
    assert!(
        log.contains("existing") || log.contains("restarting"),
        "restart not over existing data"
    );

    // Pause a member: stopped (T) until resumed.
    let p = c.pid(1).unwrap().unwrap();
    etcd.pause(1).expect("pause");
    wait_until("state T", Duration::from_secs(5), || {
        proc_state(p) == Some('T')
    });
    etcd.resume(1).expect("resume");
    wait_until(
        "not T",
        Duration::from_secs(5),
        || matches!(proc_state(p), Some(s) if s != 'T'),
    );
    c.wait_serving(Duration::from_secs(30))
        .expect("healthy after resume");

    for i in 0..3 {
        let files = etcd.log_files(i);
        assert_eq!(files.len(), 1);
        assert!(std::fs::metadata(&files[0])
            .map(|m| m.len() > 0)
            .unwrap_or(false));
    }

    let all: Vec<u32> = (0..3).map(|i| c.pid(i).unwrap().unwrap()).collect();
    etcd.teardown().expect("teardown");
    for (i, pid) in all.iter().enumerate() {
        assert!(
            !alive(*pid),
            "etcd pid {pid} on n{} survived teardown",
            i + 1
        );
        let n = &c.nodes[i];
        assert!(!Path::new(&c.opts.pid_on(n)).exists(), "pid file left");
        assert!(!Path::new(&c.opts.data_dir_on(n)).exists(), "data dir left");
    }
}

#[test]
fn setup_failure_names_the_node_and_quotes_its_log() {
    let Some(info) = local_cluster("setup_failure") else {
        return;
    };
    let _g = cluster_lock();
    let etcd = target_on(
        info,
        &[("binary", "/nonexistent/etcd"), ("start-timeout-s", "20")],
    );
    let _td = Teardown(&etcd);
    let t = Instant::now();
    let e = format!("{:#}", etcd.setup().unwrap_err());
    eprintln!("setup error as users see it: {e}");
    assert!(e.contains("etcd on n"), "{e}");
    assert!(e.contains("not running"), "{e}");
    assert!(
        e.contains("/nonexistent/etcd"),
        "the log's reason is quoted: {e}"
    );
    assert!(
        t.elapsed() < Duration::from_secs(20),
        "a dead member is reported at once"
    );
}

// ---------------------------------------------------------------------------------------------
// End to end through the runner (no faults) on the local cluster.

/// Runs `workload` against etcd on the local cluster for a few seconds; returns the verdict, the
/// results and the history.
fn run_e2e(
    test: &str,
    workload: &str,
    opts: &[(&str, &str)],
) -> Option<(
    netsplit::checker::Validity,
    Value,
    Vec<netsplit::history::Op>,
)> {
    local_cluster(test)?;
    let _g = cluster_lock();
    let store = tmp_dir("etcd-e2e", test);
    let mut plan = Plan {
        name: Some(format!("etcd-{workload}")),
        ..Plan::default()
    };
    plan.target.name = "etcd".into();
    for (k, v) in opts {
        plan.target.opts.insert(k.to_string(), json!(v));
    }
    plan.workload.name = workload.into();
    if workload == "list-append" {
        plan.workload.opts.insert("keys".into(), json!(8));
        // etcd's serializable reads may be served stale by a follower: that is allowed by
        // serializability, not by strict serializability (a real-time anomaly), so ask for the
        // model that mode promises.
        if opts.contains(&("read", "serializable")) {
            plan.workload
                .opts
                .insert("consistency_models".into(), json!(["serializable"]));
        }
    }
    plan.nodes.cluster = Some(CLUSTER.into());
    plan.run.concurrency = 6;
    plan.run.time_limit = 5.0;
    plan.run.store = store.display().to_string();
    plan.run.seed = Some(7);
    let rt = rt();
    let outs = rt
        .block_on(netsplit::runner::run_tests(
            &plan,
            &netsplit::registry::Registry::builtin(),
            &netsplit::runner::Interrupt::default(),
            &netsplit::runner::Emergency::default(),
        ))
        .expect("run");
    let out = outs.into_iter().next().expect("one run");
    assert_eq!(out.error, None, "harness error");
    let f = std::fs::File::open(out.run_dir.join("history.jsonl")).unwrap();
    let (ops, _) = netsplit::history::read_jsonl(std::io::BufReader::new(f)).unwrap();
    // The members' logs were fetched into the run.
    for n in ["n1", "n2", "n3"] {
        let dir = out.run_dir.join("nodes").join(n);
        let has_log = std::fs::read_dir(&dir)
            .map(|d| d.flatten().count() > 0)
            .unwrap_or(false);
        assert!(has_log, "no log fetched into {}", dir.display());
    }
    let _ = std::fs::remove_dir_all(&store);
    Some((out.valid, out.results, ops))
}

fn count(ops: &[netsplit::history::Op], f: &str, kind: netsplit::history::OpType) -> usize {
    ops.iter().filter(|o| o.f == f && o.kind == kind).count()
}

use netsplit::checker::Validity;
use netsplit::history::OpType;

#[test]
fn e2e_set_on_a_healthy_cluster_is_valid() {
    let Some((valid, results, ops)) = run_e2e("e2e_set", "set", &[]) else {
        return;
    };
    assert!(count(&ops, "add", OpType::Ok) > 0);
    assert_eq!(valid, Validity::True, "{results}");
}

#[test]
fn e2e_counter_on_a_healthy_cluster_is_valid() {
    let Some((valid, results, ops)) = run_e2e("e2e_counter", "counter", &[]) else {
        return;
    };
    assert!(count(&ops, "add", OpType::Ok) > 0);
    assert_eq!(valid, Validity::True, "{results}");
}

#[test]
fn e2e_bank_on_a_healthy_cluster_is_valid() {
    let Some((valid, results, ops)) = run_e2e("e2e_bank", "bank", &[]) else {
        return;
    };
    assert!(count(&ops, "transfer", OpType::Ok) > 0);
    assert!(count(&ops, "read", OpType::Ok) > 0);
    assert_eq!(valid, Validity::True, "{results}");
}

#[test]
fn e2e_register_on_a_healthy_cluster_is_not_invalid() {
    let Some((valid, results, ops)) = run_e2e("e2e_register", "register", &[]) else {
        return;
    };
    assert!(count(&ops, "write", OpType::Ok) > 0);
    assert!(count(&ops, "read", OpType::Ok) > 0);
    // Valid once the linearizability checker is in the build; unknown before, never false.
    assert_ne!(valid, Validity::False, "{results}");
}

#[test]
fn e2e_list_append_with_serializable_reads_keeps_every_read_a_prefix_of_the_final_list() {
    let Some((valid, results, ops)) = run_e2e(
        "e2e_list_append",
        "list-append",
        &[("read", "serializable")],
    ) else {
        return;
    };
    assert!(count(&ops, "txn", OpType::Ok) > 0);
    assert_ne!(valid, Validity::False, "{results}");
    // Appends commit through compares on every involved key, so the lists only grow: all reads
    // of a key are prefixes of its longest read.
    let mut longest: std::collections::BTreeMap<String, Vec<Value>> = Default::default();
    let mut reads = Vec::new();
    for o in ops.iter().filter(|o| o.kind == OpType::Ok && o.f == "txn") {
        for m in o.value.as_array().unwrap() {
            if m[0] == "r" {
                let l = m[2].as_array().cloned().unwrap_or_default();
                let k = m[1].to_string();
                let best = longest.entry(k.clone()).or_default();
                if l.len() > best.len() {
                    *best = l.clone();
                }
                reads.push((k, l));
            }
        }
    }
    assert!(!reads.is_empty());
    for (k, l) in &reads {
        assert!(
            longest[k].starts_with(l),
            "key {k}: {l:?} is not a prefix of {:?}",
            longest[k]
        );
    }
}

#[test]
fn e2e_set_under_crashes_that_lose_unsynced_writes_loses_nothing() {
    let test = "e2e_set_under_crashes_that_lose_unsynced_writes_loses_nothing";
    if local_cluster(test).is_none() {
        return;
    }
    let _g = cluster_lock();
    // A negative control (docs/faults.md, "Disk faults"): etcd fsyncs its WAL before it
    // acknowledges, so crashes of a minority and of every member at once that drop every
    // unsynced write lose nothing acknowledged (plans/etcd-lose-unsynced.yaml).
    let store = tmp_dir("etcd-e2e", "lose-unsynced");
    let plan = format!(
        "{}/plans/etcd-lose-unsynced.yaml",
        env!("CARGO_MANIFEST_DIR")
    );
    let s = store.display().to_string();
    let out =
        crate::support::netsplit(&["test", "--cluster", CLUSTER, "--plan", &plan, "--store", &s]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "expected VALID\n{}",
        crate::support::show(&out)
    );
    let run = crate::support::latest(&store).expect("a run");
    let set = &crate::support::results(&run)["checkers"]["set"];
    assert!(
        set["acknowledged_count"].as_u64().unwrap_or(0) > 50,
        "{set}"
    );
    let ops = crate::support::history(&run);
    let crashes: Vec<&Value> = ops
        .iter()
        .filter(|o| o["f"] == "start-lose-unsynced" && o["value"]["lost"].is_object())
        .collect();
    assert!(!crashes.is_empty(), "the crashes happened");
    eprintln!(
        "etcd: {} crashes (e.g. {}), acknowledged {}, nothing lost",
        crashes.len(),
        crashes[0]["value"]["label"],
        set["acknowledged_count"]
    );
    let _ = std::fs::remove_dir_all(&store);
}

#[test]
fn e2e_kill_9_of_netsplit_during_a_disk_fault_then_heal_leaves_no_mount_and_etcd_serves_its_data() {
    let test =
        "e2e_kill_9_of_netsplit_during_a_disk_fault_then_heal_leaves_no_mount_and_etcd_serves_its_data";
    let Some(info) = local_cluster(test) else {
        return;
    };
    let _g = cluster_lock();
    // docs/faults.md, "Disk faults", Healing: netsplit is SIGKILLed while every node's data
    // directory is on the fault file system and a `slow` fault is in force; `netsplit heal`
    // must write back what it holds, unmount it, and start etcd again on its own data.
    let store = tmp_dir("etcd-e2e", "kill9-disk");
    let s = store.display().to_string();
    let mut child = std::process::Command::new(crate::support::bin())
        .args([
            "test",
            "--cluster",
            CLUSTER,
            "--target",
            "etcd",
            "--workload",
            "set",
        ])
        .args([
            "--nemesis",
            "slow",
            "--nemesis-interval",
            "2",
            "--time-limit",
            "60",
        ])
        .args(["--store", &s])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawning netsplit test");
    let t0 = Instant::now();
    loop {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "no slow fault in force within 60 s"
        );
        if let Ok(Some(st)) = child.try_wait() {
            panic!("netsplit test ended early with {st:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
        let Some(run) = crate::support::latest(&store) else {
            continue;
        };
        // The last nemesis op is a completed start-slow: the fault is in force.
        let ops = crate::support::history_so_far(&run);
        let last = ops.iter().rev().find(|o| o["process"] == "nemesis");
        if last.is_some_and(|o| o["f"] == "start-slow" && o["value"]["nodes"].is_array()) {
            break;
        }
    }
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    let _ = child.wait();
    let killed_at = t0.elapsed();
    let mounts = |what: &str| -> String {
        let out = crate::support::netsplit(&[
            "exec",
            "--cluster",
            CLUSTER,
            "--",
            "grep",
            "-c",
            "netsplit-diskfs",
            "/proc/self/mountinfo",
        ]);
        eprintln!("etcd: fault file systems {what}: {}", show_out(&out));
        show_out(&out)
    };
    let before = mounts("after the SIGKILL");
    let heal = crate::support::netsplit(&["heal", "--cluster", CLUSTER, "--target", "etcd"]);
    assert_eq!(
        heal.status.code(),
        Some(0),
        "heal\n{}",
        crate::support::show(&heal)
    );
    let healed = String::from_utf8_lossy(&heal.stdout).to_string();
    for n in ["n1", "n2", "n3"] {
        assert!(
            healed.contains(&format!("{n}: found: a fault file system is mounted over"))
                && healed.contains(&format!("{n}: healed")),
            "the heal found and healed {n}'s fault file system: {healed}"
        );
    }
    let after = mounts("after the heal");
    // `grep -c` prints each node's count of netsplit-diskfs mounts (and exits 1 at 0).
    for n in ["n1", "n2", "n3"] {
        assert!(
            before.lines().any(|l| l == format!("{n}: 1")),
            "{n} had its fault file system mounted when netsplit was killed: {before}"
        );
        assert!(
            after.lines().any(|l| l == format!("{n}: 0")),
            "{n} still has a fault file system mounted: {after}"
        );
    }
    let status = crate::support::netsplit(&["cluster", "status", "--name", CLUSTER]);
    assert!(
        !String::from_utf8_lossy(&status.stdout).contains("fault file system"),
        "{}",
        crate::support::show(&status)
    );
    // etcd was started again by the heal, on its own data: every member answers.
    let etcd = target_on(info, &[]);
    for i in 0..3 {
        assert!(etcd.running(i).unwrap(), "n{} runs after the heal", i + 1);
    }
    etcd.wait_serving(Duration::from_secs(30))
        .expect("etcd serves after the heal");
    etcd.teardown().unwrap();
    eprintln!(
        "etcd: SIGKILL of netsplit {:.1}s into the run during a slow fault; mounts before the \
         heal: {before}; heal: {healed}",
        killed_at.as_secs_f64()
    );
    let _ = std::fs::remove_dir_all(&store);
}

fn show_out(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Disk faults on nodes reached over SSH as machines (docs/faults.md, "Real nodes"): given the
/// local cluster's addresses and key with `--nodes`, netsplit treats them as machines — it
/// uploads its own binary to each node's directory, runs the fault file system from that copy
/// under etcd's data, crashes etcd dropping what was not synced, and unmounts at the end.
#[test]
fn e2e_disk_faults_on_nodes_reached_over_ssh_run_an_uploaded_netsplit_and_leave_no_mount() {
    let test =
        "e2e_disk_faults_on_nodes_reached_over_ssh_run_an_uploaded_netsplit_and_leave_no_mount";
    let Some(info) = local_cluster(test) else {
        return;
    };
    let _g = cluster_lock();
    let store = tmp_dir("etcd-e2e", "ssh-disk");
    // Host keys go to this run's own ~/.ssh/known_hosts, not root's.
    let home = tmp_dir("etcd-e2e", "ssh-disk-home");
    let addrs: Vec<&str> = info.nodes.iter().map(|n| n.address.as_str()).collect();
    let uploaded = |a: &str| PathBuf::from(format!("/var/lib/netsplit/{a}/netsplit/bin/netsplit"));
    for a in &addrs {
        let _ = std::fs::remove_file(uploaded(a));
    }
    let out = std::process::Command::new(crate::support::bin())
        .env("HOME", &home)
        .args(["test", "--nodes", &addrs.join(",")])
        .arg("--ssh-private-key")
        .arg(&info.private_key)
        .args(["--target", "etcd", "--workload", "set"])
        .args(["--nemesis", "lose-unsynced", "--nemesis-interval", "3"])
        .args(["--time-limit", "12", "--concurrency", "6"])
        .arg("--store")
        .arg(&store)
        .output()
        .expect("running netsplit test");
    assert_eq!(
        out.status.code(),
        Some(0),
        "expected VALID\n{}",
        crate::support::show(&out)
    );
    let run = crate::support::latest(&store).expect("a run");
    let ops = crate::support::history(&run);
    let crashes = ops
        .iter()
        .filter(|o| o["f"] == "start-lose-unsynced" && o["value"]["lost"].is_object())
        .count();
    assert!(crashes > 0, "a crash dropped unsynced writes");
    let me = std::fs::metadata(crate::support::bin()).unwrap().len();
    for a in &addrs {
        let copy = std::fs::metadata(uploaded(a))
            .unwrap_or_else(|e| panic!("no netsplit uploaded to {a}: {e}"));
        assert_eq!(copy.len(), me, "{a}: the uploaded copy is this netsplit");
    }
    // No fault file system left in any node's mount table (each node's sshd's namespace).
    let out = crate::support::netsplit(&[
        "exec",
        "--cluster",
        CLUSTER,
        "--",
        "sh",
        "-c",
        "grep -c netsplit-diskfs /proc/self/mountinfo || true",
    ]);
    let text = show_out(&out);
    assert_eq!(
        text.lines().filter(|l| l.trim().ends_with(": 0")).count(),
        addrs.len(),
        "a fault file system left mounted:\n{text}"
    );
    eprintln!(
        "etcd over SSH: {crashes} crashes on the uploaded fault file system, VALID, no mount left"
    );
    let _ = std::fs::remove_dir_all(&store);
    let _ = std::fs::remove_dir_all(&home);
}

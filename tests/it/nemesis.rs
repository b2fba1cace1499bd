//! Faults on real (namespace) nodes: each fault's effect is visible on the nodes while active
//! and gone after heal. Needs root (namespaces, iptables, tc); skips loudly otherwise.
//!
//! The fixture builds its own small cluster — namespaces on a private bridge, reached through
//! `control::netns::NetnsRemote` — and tears it down on drop, so these tests do not depend on
//! `netsplit cluster up`. The last test (`over_ssh`) goes through the runner's seam over SSH on
//! a real local cluster `t-nemesis` (3 nodes), brought up once and left up for reuse
//! (`netsplit cluster down --name t-nemesis` removes it).

use netsplit::control::netns::NetnsRemote;
use netsplit::control::util::{self, Daemon};
use netsplit::control::{Cmd, Node, Remote};
use netsplit::db::daemon::{self, PidFileProcesses};
use netsplit::db::{BoxFuture, Client, Clock, Db, Kill, Pause, Primaries};
use netsplit::nemesis::process;
use netsplit::nemesis::{clock, packet, partition, Nemesis, NemesisEnv};
use netsplit::plan::Plan;
use netsplit::registry::Registry;
use serde_json::{json, Value};
use std::net::{IpAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

static NEXT: AtomicU32 = AtomicU32::new(0);

fn sh(args: &[&str]) -> std::process::Output {
    std::process::Command::new(args[0])
        .args(&args[1..])
        .output()
        .expect("run host command")
}

fn ok(args: &[&str]) {
    let o = sh(args);
    assert!(
        o.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

fn root_or_skip(test: &str) -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let tools = ["ip", "iptables", "tc"].iter().all(|t| {
        sh(&["sh", "-c", &format!("command -v {t}")])
            .status
            .success()
    });
    if !root || !tools {
        eprintln!("SKIP {test}: needs root with ip, iptables and tc (root={root}, tools={tools})");
        return false;
    }
    true
}

/// A few namespace nodes on a private bridge; removed on drop.
struct Cluster {
    tag: String,
    bridge: String,
    nodes: Vec<(Node, String)>,
    control: IpAddr,
    dir: std::path::PathBuf,
}

impl Cluster {
    fn new(n: usize) -> Cluster {
        let k = (std::process::id() % 100) * 10 + NEXT.fetch_add(1, Ordering::SeqCst) % 10;
        let tag = format!("nm{k}");
        let subnet = format!("10.187.{}", k % 250);
        let bridge = format!("{tag}br");
        let dir = tempfile::Builder::new()
            .prefix(&format!("netsplit-nemesis-{tag}-"))
            .tempdir()
            .unwrap()
            .keep();
        let mut c = Cluster {
            tag: tag.clone(),
            bridge: bridge.clone(),
            nodes: Vec::new(),
            control: format!("{subnet}.254").parse().unwrap(),
            dir: dir.clone(),
        };
        c.cleanup();
        ok(&["ip", "link", "add", &bridge, "type", "bridge"]);
        ok(&[
            "ip",
            "addr",
            "add",
            &format!("{subnet}.254/24"),
            "dev",
            &bridge,
        ]);
        ok(&["ip", "link", "set", &bridge, "up"]);
        // Bridged traffic may traverse the host's FORWARD chain (bridge netfilter).
        ok(&[
            "iptables", "-w", "-I", "FORWARD", "-i", &bridge, "-o", &bridge, "-j", "ACCEPT",
        ]);
        for i in 1..=n {
            let ns = format!("{tag}n{i}");
            let veth = format!("{tag}v{i}");
            ok(&["ip", "netns", "add", &ns]);
            ok(&[
                "ip", "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", &ns,
            ]);
            ok(&["ip", "link", "set", &veth, "master", &bridge, "up"]);
            ok(&[
                "ip",
                "netns",
                "exec",
                &ns,
                "ip",
                "addr",
                "add",
                &format!("{subnet}.{i}/24"),
                "dev",
                "eth0",
            ]);
            ok(&[
                "ip", "netns", "exec", &ns, "ip", "link", "set", "eth0", "up",
            ]);
            ok(&["ip", "netns", "exec", &ns, "ip", "link", "set", "lo", "up"]);
            let workdir = dir.join(format!("n{i}"));
            std::fs::create_dir_all(&workdir).unwrap();
            c.nodes.push((
                Node {
                    name: format!("n{i}"),
                    host: format!("{subnet}.{i}"),
                    ssh_port: 22,
                    workdir: workdir.to_string_lossy().into_owned(),
                },
                ns,
            ));
        }
        c
    }

    fn remotes(&self) -> Vec<Arc<dyn Remote>> {
        self.nodes
            .iter()
            .map(|(n, ns)| {
                Arc::new(NetnsRemote::new(n.clone(), Some(ns.clone()))) as Arc<dyn Remote>
            })
            .collect()
    }

    fn remote(&self, i: usize) -> NetnsRemote {
        let (n, ns) = &self.nodes[i];
        NetnsRemote::new(n.clone(), Some(ns.clone()))
    }

    fn ip(&self, i: usize) -> String {
        self.nodes[i].0.host.clone()
    }

    fn cleanup(&self) {
        for i in 1..=9 {
            let _ = sh(&["ip", "netns", "del", &format!("{}n{i}", self.tag)]);
        }
        let _ = sh(&[
            "iptables",
            "-w",
            "-D",
            "FORWARD",
            "-i",
            &self.bridge,
            "-o",
            &self.bridge,
            "-j",
            "ACCEPT",
        ]);
        let _ = sh(&["ip", "link", "del", &self.bridge]);
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // A failed test may leave its sleepers (even stopped ones) behind: kill them by pid file.
        for (n, _) in &self.nodes {
            let pf = std::path::Path::new(&n.workdir).join("sleeper.pid");
            if let Ok(pid) = std::fs::read_to_string(&pf) {
                let _ = sh(&["kill", "-KILL", pid.trim()]);
            }
        }
        self.cleanup();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A test-only target: one `sleep` daemon per node, by pid file, under libfaketime — like a
/// real database, with every ability the fault families use.
struct SleepTarget {
    nodes: Vec<Node>,
    remotes: Vec<Arc<dyn Remote>>,
}

impl SleepTarget {
    fn new(nodes: Vec<Node>, remotes: Vec<Arc<dyn Remote>>) -> Arc<SleepTarget> {
        Arc::new(SleepTarget { nodes, remotes })
    }
    fn pidfile(&self, i: usize) -> String {
        format!("{}/sleeper/sleeper.pid", self.nodes[i].workdir)
    }
    fn remote(&self, i: usize) -> &dyn Remote {
        self.remotes[i].as_ref()
    }
}

impl Db for SleepTarget {
    fn name(&self) -> &str {
        "sleeper"
    }
    fn setup(&self) -> anyhow::Result<()> {
        (0..self.nodes.len()).try_for_each(|i| self.start(i))
    }
    fn teardown(&self) -> anyhow::Result<()> {
        for i in 0..self.nodes.len() {
            daemon::stop(
                self.remote(i),
                &self.pidfile(i),
                "sleeper",
                Duration::from_secs(2),
            )?;
        }
        Ok(())
    }
    fn client(&self, _node: Option<usize>) -> BoxFuture<'_, anyhow::Result<Box<dyn Client>>> {
        Box::pin(async { Err(anyhow::anyhow!("the sleeper target has no clients")) })
    }
    fn as_kill(&self) -> Option<&dyn Kill> {
        Some(self)
    }
    fn as_pause(&self) -> Option<&dyn Pause> {
        Some(self)
    }
    fn as_primaries(&self) -> Option<&dyn Primaries> {
        Some(self)
    }
    fn clock(&self) -> Clock {
        Clock::Faketime
    }
}

impl PidFileProcesses for SleepTarget {
    fn process_name(&self) -> &str {
        "sleeper"
    }
    fn process_remote(&self, i: usize) -> anyhow::Result<&dyn Remote> {
        Ok(self.remote(i))
    }
    fn pid_file(&self, i: usize) -> anyhow::Result<String> {
        Ok(self.pidfile(i))
    }
    fn start_process(&self, i: usize) -> anyhow::Result<()> {
        let dir = format!("{}/sleeper", self.nodes[i].workdir);
        util::start_daemon(
            self.remote(i),
            &Daemon {
                name: "sleeper".into(),
                argv: vec!["sleep".into(), "3600".into()],
                env: clock::faketime_env(&self.nodes[i].workdir),
                cwd: dir.clone(),
                pidfile: self.pidfile(i),
                logfile: format!("{dir}/sleeper.log"),
            },
        )?;
        Ok(())
    }
}

impl Primaries for SleepTarget {
    fn primaries(&self) -> anyhow::Result<Vec<String>> {
        Ok(vec!["n2".into()])
    }
}

/// The nemesis of a run on these nodes with every built-in family scheduled (`plan` may set
/// options), set up.
fn nemesis_for(
    nodes: Vec<Node>,
    remotes: Vec<Arc<dyn Remote>>,
    target: Arc<SleepTarget>,
    control: Option<IpAddr>,
    mut plan: Plan,
) -> Nemesis {
    // Namespace nodes share this filesystem: the built binary is the emulation helper.
    std::env::set_var("NETSPLIT_NETEM_HELPER", env!("CARGO_BIN_EXE_netsplit"));
    if plan.nemesis.faults.is_empty() {
        plan.nemesis.faults = vec!["all".into()];
    }
    let reg = Registry::builtin();
    let n = Nemesis::build(NemesisEnv {
        plan: &plan,
        nodes,
        remotes,
        target,
        defs: reg.faults(),
        local_nodes: true,
        control_ip: control,
    })
    .unwrap();
    n.setup().unwrap();
    n
}

fn faults(c: &Cluster, target: Arc<SleepTarget>) -> Nemesis {
    nemesis_for(
        c.nodes.iter().map(|(n, _)| n.clone()).collect(),
        c.remotes(),
        target,
        Some(c.control),
        Plan::default(),
    )
}

fn sleeper(c: &Cluster) -> Arc<SleepTarget> {
    SleepTarget::new(
        c.nodes.iter().map(|(n, _)| n.clone()).collect(),
        c.remotes(),
    )
}

/// Performs a nemesis operation that must succeed; its completion value.
fn inv(f: &Nemesis, op: &str, v: &Value) -> Value {
    let out = f.invoke(op, v);
    assert_eq!(out.error, None, "{op}: {}", out.value);
    out.value
}

/// Runs a TCP listener inside namespace `ns` (a thread that joined it) and returns its port.
fn listen_in(ns: &str) -> u16 {
    let path = format!("/var/run/netns/{ns}");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let f = std::fs::File::open(&path).unwrap();
        use std::os::fd::AsRawFd;
        // SAFETY: setns on this thread only; the fd is a valid netns file.
        let rc = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns {path}");
        let l = TcpListener::bind("0.0.0.0:0").unwrap();
        tx.send(l.local_addr().unwrap().port()).unwrap();
        for s in l.incoming() {
            drop(s);
        }
    });
    rx.recv().unwrap()
}

/// Whether a TCP connection from namespace `from` to `ip:port` succeeds within a second.
fn connects_from(from: &str, ip: &str, port: u16) -> bool {
    connect_time(from, ip, port, Duration::from_millis(1000)).is_some()
}

/// How long a TCP connection from namespace `from` to `ip:port` takes (None: not within
/// `limit`).
fn connect_time(from: &str, ip: &str, port: u16, limit: Duration) -> Option<Duration> {
    let path = format!("/var/run/netns/{from}");
    let addr = format!("{ip}:{port}").parse().unwrap();
    std::thread::spawn(move || {
        let f = std::fs::File::open(&path).unwrap();
        use std::os::fd::AsRawFd;
        // SAFETY: as above.
        assert_eq!(unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) }, 0);
        let t0 = std::time::Instant::now();
        TcpStream::connect_timeout(&addr, limit)
            .ok()
            .map(|_| t0.elapsed())
    })
    .join()
    .unwrap()
}

/// The median of five connection times (None when most fail).
fn median_connect(from: &str, ip: &str, port: u16) -> Option<Duration> {
    let mut ts: Vec<Duration> = (0..5)
        .filter_map(|_| connect_time(from, ip, port, Duration::from_millis(1500)))
        .collect();
    ts.sort();
    (ts.len() >= 3).then(|| ts[ts.len() / 2])
}

#[test]
fn partition_rules_block_traffic_while_active_and_heal_removes_them() {
    if !root_or_skip("partition_rules_block_traffic_while_active_and_heal_removes_them") {
        return;
    }
    let c = Cluster::new(3);
    let f = faults(&c, sleeper(&c));
    let port = listen_in(&c.nodes[1].1);
    assert!(
        connects_from(&c.nodes[0].1, &c.ip(1), port),
        "no traffic before the fault"
    );

    // n1 alone against n2, n3.
    let v = inv(
        &f,
        "start-partition",
        &json!({"grudge": {"n1": ["n2", "n3"], "n2": ["n1"], "n3": ["n1"]}}),
    );
    assert_eq!(v["grudge"]["n1"], json!(["n2", "n3"]));
    let rules = partition::active_rules(&c.remote(0), false).unwrap();
    assert_eq!(rules.len(), 2, "{rules:?}");
    assert!(rules.iter().all(|r| r.contains("-j DROP")), "{rules:?}");
    assert!(
        !connects_from(&c.nodes[0].1, &c.ip(1), port),
        "n1 reached n2 while partitioned"
    );
    // n3 and n2 are on the same side.
    assert!(connects_from(&c.nodes[2].1, &c.ip(1), port));
    // The control node is never cut off: it still reaches the isolated node.
    let ctl = listen_in(&c.nodes[0].1);
    assert!(TcpStream::connect_timeout(
        &format!("{}:{ctl}", c.ip(0)).parse().unwrap(),
        Duration::from_secs(1)
    )
    .is_ok());

    inv(&f, "stop-partition", &json!({}));
    for i in 0..3 {
        assert!(partition::active_rules(&c.remote(i), false)
            .unwrap()
            .is_empty());
    }
    assert!(
        connects_from(&c.nodes[0].1, &c.ip(1), port),
        "still blocked after heal"
    );
    f.set_expect_running(false);
    assert!(f.verify_clean().is_clean(), "{:?}", f.verify_clean());
    f.teardown();
}

#[test]
fn asymmetric_partition_drops_one_direction_only() {
    if !root_or_skip("asymmetric_partition_drops_one_direction_only") {
        return;
    }
    let c = Cluster::new(2);
    let f = faults(&c, sleeper(&c));
    let p1 = listen_in(&c.nodes[0].1);
    let p2 = listen_in(&c.nodes[1].1);
    // n2 drops what n1 sends; n1 still hears n2. Only n2 holds a rule, and n1's SYNs to n2
    // are lost (a TCP connection needs both directions, so n2 → n1 fails too: its SYN-ACKs
    // from n1 are dropped at n2; the rule listing is what shows the one-way shape).
    inv(&f, "start-partition", &json!({"grudge": {"n2": ["n1"]}}));
    assert_eq!(
        partition::active_rules(&c.remote(1), false).unwrap().len(),
        1
    );
    assert!(partition::active_rules(&c.remote(0), false)
        .unwrap()
        .is_empty());
    assert!(!connects_from(&c.nodes[0].1, &c.ip(1), p2));
    inv(&f, "stop-partition", &json!({}));
    assert!(connects_from(&c.nodes[0].1, &c.ip(1), p2));
    assert!(connects_from(&c.nodes[1].1, &c.ip(0), p1));
    f.teardown();
}

#[test]
fn packet_fault_installs_netsplit_qdiscs_and_heal_removes_only_them() {
    if !root_or_skip("packet_fault_installs_netsplit_qdiscs_and_heal_removes_only_them") {
        return;
    }
    let c = Cluster::new(2);
    let f = faults(&c, sleeper(&c));
    // Rate limiting needs only HTB; delay/loss need netem, which some kernels lack.
    let netem = {
        let r = c.remote(0);
        let probe = r
            .exec(&Cmd::new("tc").args([
                "qdisc", "add", "dev", "lo", "root", "handle", "7a5d:", "netem", "delay", "1ms",
            ]))
            .unwrap();
        let _ = r.exec(&Cmd::new("tc").args(["qdisc", "del", "dev", "lo", "root"]));
        probe.status == 0
    };
    // Without sch_netem the delay is emulated through NFQUEUE; the rate stays with HTB.
    let behaviour = json!({"delay": {"time_ms": 100}, "rate": "1mbit"});
    let v = inv(
        &f,
        "start-packet",
        &json!({"nodes": ["n1"], "behaviour": behaviour}),
    );
    assert_eq!(v["nodes"], json!(["n1"]));
    let q = packet::leftovers(&c.remote(0)).unwrap();
    assert!(q.iter().any(|l| l.contains("htb 7a5b:")), "{q:?}");
    if netem {
        assert_eq!(v["emulation"]["n1"], "netem", "{v}");
        assert!(
            q.iter()
                .any(|l| l.contains("netem 7a5c:") && l.contains("delay 100")),
            "{q:?}"
        );
    } else {
        eprintln!(
            "packet: this kernel has no sch_netem; the delay goes through the NFQUEUE emulation"
        );
        assert_eq!(v["emulation"]["n1"], "nfqueue", "{v}");
        let e = netsplit::nemesis::nfq::leftovers(&c.remote(0), false).unwrap();
        assert!(
            e.iter().any(|l| l.contains("NFQUEUE")) && e.iter().any(|l| l.contains("helper")),
            "{e:?}"
        );
    }
    assert!(
        packet::leftovers(&c.remote(1)).unwrap().is_empty(),
        "n2 untouched"
    );
    let filters = c
        .remote(0)
        .exec_ok(&Cmd::new("tc").args(["filter", "show", "dev", "eth0"]))
        .unwrap()
        .stdout;
    assert!(filters.contains("flowid 7a5b:2"), "{filters}");

    inv(&f, "stop-packet", &json!({}));
    assert!(packet::leftovers(&c.remote(0)).unwrap().is_empty());
    assert!(netsplit::nemesis::nfq::leftovers(&c.remote(0), false)
        .unwrap()
        .is_empty());
    // Idempotent: a second heal with nothing active is fine.
    inv(&f, "stop-packet", &json!({}));
    f.set_expect_running(false);
    assert!(f.verify_clean().is_clean(), "{:?}", f.verify_clean());
    f.teardown();
}

fn state(procs: &SleepTarget, i: usize) -> char {
    let pid = procs.pids(i).unwrap()[0];
    process::state_of(procs.remote(i), pid).unwrap().unwrap()
}

#[test]
fn paused_process_is_in_state_t_until_resumed_and_killed_one_restarts() {
    if !root_or_skip("paused_process_is_in_state_t_until_resumed_and_killed_one_restarts") {
        return;
    }
    let c = Cluster::new(3);
    let procs = sleeper(&c);
    let f = faults(&c, procs.clone());
    for i in 0..3 {
        procs.start(i).unwrap();
    }
    assert!(f.verify_clean().is_clean(), "{:?}", f.verify_clean());

    inv(&f, "pause", &json!({"nodes": ["n2"]}));
    assert_eq!(state(&procs, 1), 'T');
    assert_ne!(state(&procs, 0), 'T');
    let dirty = f.verify_clean();
    assert!(
        dirty
            .problems
            .iter()
            .any(|p| p.contains("n2") && p.contains("stopped")),
        "{dirty:?}"
    );
    inv(&f, "resume", &json!({}));
    assert_ne!(state(&procs, 1), 'T');

    let before = procs.pids(2).unwrap();
    inv(&f, "kill", &json!({"nodes": ["n3"]}));
    assert!(procs.pids(2).unwrap().is_empty());
    assert!(f
        .verify_clean()
        .problems
        .iter()
        .any(|p| p.contains("n3") && p.contains("not running")));
    inv(&f, "start", &json!({}));
    let after = procs.pids(2).unwrap();
    assert_eq!(after.len(), 1);
    assert_ne!(after, before, "a new process after restart");
    assert!(f.verify_clean().is_clean(), "{:?}", f.verify_clean());
    for i in 0..3 {
        procs.kill(i).unwrap();
    }
    f.teardown();
}

fn faked_now(r: &dyn Remote) -> i64 {
    let mut cmd = Cmd::new("date").arg("+%s");
    cmd.env = clock::faketime_env(&r.node().workdir);
    r.exec_ok(&cmd).unwrap().stdout.trim().parse().unwrap()
}

#[test]
fn clock_bump_is_seen_under_libfaketime_on_that_node_only() {
    if !root_or_skip("clock_bump_is_seen_under_libfaketime_on_that_node_only") {
        return;
    }
    if clock::preload_file(clock::LIBFAKETIME).is_none() {
        eprintln!("SKIP clock_bump_is_seen_under_libfaketime_on_that_node_only: {} missing (apt install libfaketime)", clock::LIBFAKETIME);
        return;
    }
    let c = Cluster::new(2);
    let f = faults(&c, sleeper(&c));
    let real = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
    };
    let v = inv(
        &f,
        "bump-clock",
        &json!({"nodes": ["n1"], "delta_ms": 3_600_000}),
    );
    assert_eq!(v["offsets"]["n1"]["offset_ms"], json!(3_600_000.0));
    assert_eq!(v["offsets"]["n2"]["offset_ms"], json!(0.0));
    let skew1 = faked_now(&c.remote(0)) - real();
    let skew2 = faked_now(&c.remote(1)) - real();
    assert!((3595..=3605).contains(&skew1), "n1 skew {skew1}");
    assert!(skew2.abs() <= 5, "n2 skew {skew2}");
    assert!(f
        .verify_clean()
        .problems
        .iter()
        .any(|p| p.contains("n1") && p.contains("clock offset")));

    // Backwards, then reset.
    inv(
        &f,
        "bump-clock",
        &json!({"nodes": ["n1"], "delta_ms": -7_200_000}),
    );
    let skew1 = faked_now(&c.remote(0)) - real();
    assert!((-3605..=-3595).contains(&skew1), "n1 skew {skew1}");
    inv(&f, "reset-clock", &json!({}));
    assert!((faked_now(&c.remote(0)) - real()).abs() <= 5);

    // A strobe flips n2's clock back and forth while it runs (sampled from the side), and
    // ends where it started.
    let (v, skews) = std::thread::scope(|s| {
        let h = s.spawn(|| {
            f.invoke(
                "strobe-clock",
                &json!({"nodes": ["n2"], "delta_ms": 3_600_000, "period_ms": 150, "duration_ms": 3000}),
            )
        });
        let mut skews = Vec::new();
        std::thread::sleep(Duration::from_millis(100));
        while !h.is_finished() && skews.len() < 40 {
            skews.push(faked_now(&c.remote(1)) - real());
            std::thread::sleep(Duration::from_millis(37));
        }
        let out = h.join().unwrap();
        assert_eq!(out.error, None, "{}", out.value);
        (out.value, skews)
    });
    assert!(v["flips"]["n2"].as_u64().unwrap() >= 2, "{v}");
    assert_eq!(v["offsets"]["n2"]["offset_ms"], json!(0.0));
    assert!(
        skews.iter().any(|s| (3595..=3605).contains(s)),
        "never ahead: {skews:?}"
    );
    assert!(skews.iter().any(|s| s.abs() <= 5), "never back: {skews:?}");
    assert!((faked_now(&c.remote(1)) - real()).abs() <= 5);
    f.set_expect_running(false);
    assert!(f.verify_clean().is_clean(), "{:?}", f.verify_clean());
    f.teardown();
}

/// Delay, loss and corruption each have their effect on TCP between two nodes — through
/// netem where the kernel has it, else through the NFQUEUE emulation — and heal removes every
/// trace (qdiscs, rules, the helper).
#[test]
fn packet_faults_delay_drop_and_corrupt_traffic_until_healed() {
    if !root_or_skip("packet_faults_delay_drop_and_corrupt_traffic_until_healed") {
        return;
    }
    let c = Cluster::new(2);
    let f = faults(&c, sleeper(&c));
    let (n1, n2) = (c.nodes[0].1.clone(), c.nodes[1].1.clone());
    let port = listen_in(&n2);
    let base = median_connect(&n1, &c.ip(1), port).expect("n1 reaches n2 before any fault");

    // delay: 200 ms on n1's packets towards n2 (the SYN), nothing else.
    let v = inv(
        &f,
        "start-packet",
        &json!({"nodes": ["n1"], "behaviour": {"delay": {"time_ms": 200}}}),
    );
    let how = v["emulation"]["n1"].as_str().unwrap_or("?").to_string();
    assert!(["netem", "nfqueue"].contains(&how.as_str()), "{v}");
    let delayed = median_connect(&n1, &c.ip(1), port).expect("delayed, not cut");
    assert!(
        delayed >= Duration::from_millis(180),
        "{how}: connect took {delayed:?} under a 200 ms delay (baseline {base:?})"
    );
    assert!(
        !f.verify_clean().is_clean(),
        "the fault shows as a leftover"
    );
    // Traffic from the control node to n2 is untouched.
    inv(&f, "stop-packet", &json!({}));
    let healed = median_connect(&n1, &c.ip(1), port).expect("healed");
    assert!(
        healed < Duration::from_millis(100),
        "{how}: still slow after heal: {healed:?}"
    );

    // loss 100%: nothing gets through; heal restores it.
    inv(
        &f,
        "start-packet",
        &json!({"nodes": ["n1"], "behaviour": {"loss": {"percent": 100}}}),
    );
    assert!(
        connect_time(&n1, &c.ip(1), port, Duration::from_millis(1000)).is_none(),
        "{how}: connected through 100% loss"
    );
    inv(&f, "stop-packet", &json!({}));
    assert!(connects_from(&n1, &c.ip(1), port), "after heal");

    // corrupt 100%: every segment fails its checksum at n2 and is dropped there.
    inv(
        &f,
        "start-packet",
        &json!({"nodes": ["n1"], "behaviour": {"corrupt": {"percent": 100}}}),
    );
    assert!(
        connect_time(&n1, &c.ip(1), port, Duration::from_millis(1000)).is_none(),
        "{how}: connected through 100% corruption"
    );
    inv(&f, "stop-packet", &json!({}));
    assert!(connects_from(&n1, &c.ip(1), port), "after heal");

    // reorder and duplicate install and heal (their effect is on ordering and copies, which
    // TCP hides; the emulation's share of each is unit-tested).
    inv(
        &f,
        "start-packet",
        &json!({"nodes": ["n1"], "behaviour": {"reorder": {"percent": 50}, "duplicate": {"percent": 50}}}),
    );
    assert!(
        connects_from(&n1, &c.ip(1), port),
        "reorder/duplicate still connect"
    );
    f.heal_all();
    f.set_expect_running(false);
    assert!(f.verify_clean().is_clean(), "{:?}", f.verify_clean());
    let q = packet::leftovers(&c.remote(0)).unwrap();
    assert!(q.is_empty(), "{q:?}");
    assert!(netsplit::nemesis::nfq::leftovers(&c.remote(0), false)
        .unwrap()
        .is_empty());
    eprintln!(
        "packet faults via {how}: connect baseline {base:?}, under 200 ms delay {delayed:?}, \
         after heal {healed:?}"
    );
    f.teardown();
}

#[test]
fn heal_all_clears_every_fault_at_once_and_is_idempotent() {
    if !root_or_skip("heal_all_clears_every_fault_at_once_and_is_idempotent") {
        return;
    }
    let c = Cluster::new(3);
    let procs = sleeper(&c);
    let f = faults(&c, procs.clone());
    for i in 0..3 {
        procs.start(i).unwrap();
    }
    inv(&f, "start-partition", &json!({"shape": "majority"}));
    inv(
        &f,
        "start-packet",
        &json!({"nodes": ["n1", "n2"], "behaviour": {"rate": "1mbit", "delay": {"time_ms": 20}}}),
    );
    inv(&f, "pause", &json!({"nodes": ["n1"]}));
    inv(&f, "kill", &json!({"nodes": ["n2"]}));
    inv(
        &f,
        "bump-clock",
        &json!({"nodes": ["n3"], "delta_ms": 60_000}),
    );
    let dirty = f.verify_clean();
    assert!(dirty.problems.len() >= 5, "{dirty:?}");

    let t0 = std::time::Instant::now();
    let rep = f.heal_all();
    let healed = t0.elapsed();
    assert!(rep.is_ok(), "{rep:?}");
    let t0 = std::time::Instant::now();
    assert!(f.verify_clean().is_clean(), "{:?}", f.verify_clean());
    eprintln!(
        "heal_all of 5 faults on 3 netns nodes: {:.0} ms; verify_clean: {:.0} ms",
        healed.as_secs_f64() * 1e3,
        t0.elapsed().as_secs_f64() * 1e3
    );
    let again = f.heal_all();
    assert!(again.is_ok(), "{again:?}");
    assert!(f.verify_clean().is_clean());
    for i in 0..3 {
        procs.kill(i).unwrap();
    }
    let rep = f.teardown();
    assert!(rep.is_ok(), "{rep:?}");
    // Teardown removes the chain itself.
    let out = c.remote(0).exec(&partition::list_cmd(false)).unwrap();
    assert_ne!(out.status, 0, "chain still exists: {}", out.stdout);
}

// ---------------------------------------------------------------------------------------------
// Through the runner's seam, over SSH, on a `netsplit cluster up` cluster.

mod over_ssh {
    use super::*;
    use netsplit::cluster;
    use netsplit::control::ssh;
    use std::time::Instant;

    const CLUSTER: &str = "t-nemesis";

    #[test]
    fn interrupted_partition_and_pause_heal_clean_through_the_runner_seam() {
        if !root_or_skip("interrupted_partition_and_pause_heal_clean_through_the_runner_seam") {
            return;
        }
        let t0 = Instant::now();
        let info = cluster::ensure_up(CLUSTER, 3).expect("local cluster");
        eprintln!("cluster {CLUSTER} up in {:.2}s", t0.elapsed().as_secs_f64());
        let nodes = info.nodes();
        let remotes = ssh::connect_nodes(&nodes, &info.ssh_options()).expect("ssh");
        let t0 = Instant::now();
        for _ in 0..10 {
            remotes[0].exec_ok(&Cmd::new("true")).unwrap();
        }
        eprintln!(
            "one SSH exec takes {:.0} ms here",
            t0.elapsed().as_secs_f64() * 100.0
        );
        let target = SleepTarget::new(nodes.clone(), remotes.clone());
        target.setup().unwrap();
        let mut plan = Plan::default();
        plan.nodes.cluster = Some(CLUSTER.into());
        plan.nemesis.faults = vec!["partition".into(), "pause".into()];
        plan.nemesis
            .opts
            .insert("partition".into(), json!({"shapes": ["primaries"]}));
        plan.nemesis
            .opts
            .insert("pause".into(), json!({"targets": ["one"]}));
        let t0 = Instant::now();
        // No control address given: over SSH it comes from $SSH_CLIENT.
        let nem = nemesis_for(nodes.clone(), remotes.clone(), target.clone(), None, plan);
        eprintln!("nemesis setup in {:.2}s", t0.elapsed().as_secs_f64());
        let t0 = Instant::now();

        // The runner's generic names, no values: the nemesis draws from the plan's options.
        let p = nem.invoke("start-partition", &Value::Null);
        assert_eq!(p.error, None, "{:?}", p.value);
        assert_eq!(p.value["op"], "start-partition");
        assert_eq!(p.value["components"][0], json!(["n2"]), "{}", p.value);
        assert!(
            p.value["label"]
                .as_str()
                .unwrap()
                .starts_with("partition primaries: n2 |"),
            "{}",
            p.value
        );
        let n2 = remotes[1].as_ref();
        assert_eq!(partition::active_rules(n2, false).unwrap().len(), 2);
        // Over SSH the control node's address came from $SSH_CLIENT, and it still reaches n2.
        assert!(n2.exec(&Cmd::new("true")).unwrap().status == 0);
        let q = nem.invoke("start-pause", &Value::Null);
        assert_eq!(q.value["op"], "pause");
        let paused = q.value["nodes"][0].as_str().unwrap().to_string();
        let i = nodes.iter().position(|n| n.name == paused).unwrap();
        let pid = target.pids(i).unwrap()[0];
        assert_eq!(
            process::state_of(remotes[i].as_ref(), pid).unwrap(),
            Some('T')
        );

        eprintln!("partition + pause in {:.2}s", t0.elapsed().as_secs_f64());
        // "Ctrl-C" now: the runner's exit path heals and verifies.
        let t0 = Instant::now();
        nem.heal_and_verify().expect("healed and verified clean");
        eprintln!("heal_all + verify in {:.2}s", t0.elapsed().as_secs_f64());
        for r in &remotes {
            assert!(partition::active_rules(r.as_ref(), false)
                .unwrap()
                .is_empty());
        }
        assert_ne!(
            process::state_of(remotes[i].as_ref(), pid).unwrap(),
            Some('T')
        );
        nem.heal_and_verify().expect("idempotent");
        assert!(nem.teardown().is_ok());
        target.teardown().unwrap();
    }
}

use super::*;
use crate::control::{Node, Output, RemoteError};
use std::path::Path;
use std::sync::Mutex;

/// A node that refuses every command and counts them: the skipped faults must not touch
/// any node.
pub(super) struct Refuses {
    node: Node,
    calls: Mutex<u32>,
}

impl Remote for Refuses {
    fn node(&self) -> &Node {
        &self.node
    }
    fn exec(&self, cmd: &Cmd) -> Result<Output, RemoteError> {
        *self.calls.lock().unwrap() += 1;
        Err(RemoteError::Other {
            node: self.node.name.clone(),
            msg: format!("no commands in this test: {}", cmd.argv.join(" ")),
        })
    }
    fn upload(&self, _: &Path, _: &str) -> Result<(), RemoteError> {
        unreachable!("no uploads in this test")
    }
    fn download(&self, _: &str, _: &Path) -> Result<(), RemoteError> {
        unreachable!("no downloads in this test")
    }
}

/// A target with no leader right now, whose processes must never be touched.
struct Leaderless;

impl Db for Leaderless {
    fn name(&self) -> &str {
        "leaderless"
    }
    fn setup(&self) -> anyhow::Result<()> {
        Ok(())
    }
    fn teardown(&self) -> anyhow::Result<()> {
        Ok(())
    }
    fn client(
        &self,
        _: Option<usize>,
    ) -> crate::db::BoxFuture<'_, anyhow::Result<Box<dyn crate::db::Client>>> {
        Box::pin(async { anyhow::bail!("no clients") })
    }
    fn as_kill(&self) -> Option<&dyn crate::db::Kill> {
        Some(self)
    }
    fn as_pause(&self) -> Option<&dyn crate::db::Pause> {
        Some(self)
    }
    fn as_primaries(&self) -> Option<&dyn crate::db::Primaries> {
        Some(self)
    }
}

impl crate::db::Kill for Leaderless {
    fn kill(&self, _: usize) -> anyhow::Result<()> {
        anyhow::bail!("kill reached a node")
    }
    fn start(&self, _: usize) -> anyhow::Result<()> {
        Ok(())
    }
    fn running(&self, _: usize) -> anyhow::Result<bool> {
        Ok(true)
    }
}

impl crate::db::Pause for Leaderless {
    fn pause(&self, _: usize) -> anyhow::Result<()> {
        anyhow::bail!("pause reached a node")
    }
    fn resume(&self, _: usize) -> anyhow::Result<()> {
        Ok(())
    }
    fn pids(&self, _: usize) -> anyhow::Result<Vec<u32>> {
        Ok(vec![1])
    }
}

impl crate::db::Primaries for Leaderless {
    fn primaries(&self) -> anyhow::Result<Vec<String>> {
        Ok(Vec::new())
    }
}

#[test]
fn every_builtin_family_ends_its_starts_with_its_own_stop() {
    let target: Arc<dyn crate::db::Db> = Arc::new(Leaderless);
    let args = crate::nemesis::fault::FaultArgs {
        opts: &serde_json::Value::Null,
        origins: &Default::default(),
        local_nodes: true,
        target: &target,
    };
    let stops: Vec<(String, &str)> = families::builtin()
        .iter()
        .map(|d| (d.name.clone(), d.build(&args).unwrap().stop_op()))
        .collect();
    let want = [
        ("partition", "stop-partition"),
        ("packet", "stop-packet"),
        ("pause", "resume"),
        ("kill", "start"),
        ("lose-unsynced", "restart-after-loss"),
        ("torn-write", "restart-after-tear"),
        ("error", "end-error"),
        ("slow", "end-slow"),
        ("full", "end-full"),
        ("corrupt", "end-corrupt"),
        ("clock", "reset-clock"),
    ];
    let want: Vec<(String, &str)> = want.iter().map(|(n, s)| (n.to_string(), *s)).collect();
    assert_eq!(stops, want);
}

fn nemesis(remotes: Vec<Arc<dyn Remote>>, plan: Plan) -> Nemesis {
    let nodes = remotes.iter().map(|r| r.node().clone()).collect();
    Nemesis::build(NemesisEnv {
        plan: &plan,
        nodes,
        remotes,
        target: Arc::new(Leaderless),
        defs: &families::builtin(),
        local_nodes: false,
        control_ip: Some("10.9.9.254".parse().unwrap()),
    })
    .unwrap()
}

/// A machine that runs every command successfully and logs it; its clock probe says
/// chrony and timedatectl's NTP were keeping time.
struct Machine {
    node: Node,
    log: Mutex<Vec<String>>,
    /// Files written through marks (`<workdir>/netsplit/…`), by path.
    files: Mutex<std::collections::BTreeMap<String, String>>,
}

/// Node n1 as a [`Machine`], and a plan whose clock faults move its real clock.
fn real_clock_machine() -> (Arc<Machine>, Plan) {
    let m = Arc::new(Machine {
        node: Node {
            name: "n1".into(),
            host: "10.9.9.1".into(),
            ssh_port: 22,
            workdir: "/w/n1".into(),
        },
        log: Mutex::new(Vec::new()),
        files: Mutex::new(Default::default()),
    });
    let mut plan = Plan::default();
    plan.nemesis
        .opts
        .insert("clock".into(), json!({"mode": "real-clock"}));
    (m, plan)
}

impl Remote for Machine {
    fn node(&self) -> &Node {
        &self.node
    }
    fn exec(&self, cmd: &Cmd) -> Result<Output, RemoteError> {
        let line = cmd.shell_line(true);
        self.log.lock().unwrap().push(line.clone());
        // Marks: a small file system of their own.
        let mark = cmd.argv.iter().find(|a| a.contains("/netsplit/")).cloned();
        let is_mark = matches!(cmd.argv[0].as_str(), "cat" | "rm") || cmd.stdin.is_some();
        if let Some(path) = mark.filter(|_| is_mark) {
            let mut files = self.files.lock().unwrap();
            let (status, stdout) = match cmd.argv[0].as_str() {
                "cat" => match files.get(&path) {
                    Some(t) => (0, t.clone()),
                    None => (1, String::new()),
                },
                "rm" => {
                    files.remove(&path);
                    (0, String::new())
                }
                _ => {
                    let text = String::from_utf8_lossy(cmd.stdin.as_deref().unwrap_or(b""));
                    files.insert(path, text.into_owned());
                    (0, String::new())
                }
            };
            return Ok(Output {
                status,
                stdout,
                stderr: String::new(),
            });
        }
        let stdout = if line.contains("timedatectl show") {
            "chrony\nntp\n".to_string()
        } else if line == "date +%s%N" {
            // A clock a minute ahead.
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap();
            format!("{}\n", now.as_nanos() + 60_000_000_000)
        } else {
            String::new()
        };
        Ok(Output {
            status: 0,
            stdout,
            stderr: String::new(),
        })
    }
    fn upload(&self, _: &Path, _: &str) -> Result<(), RemoteError> {
        unreachable!("no uploads in this test")
    }
    fn download(&self, _: &str, _: &Path) -> Result<(), RemoteError> {
        unreachable!("no downloads in this test")
    }
}

#[test]
fn real_clock_faults_stop_time_sync_only_when_needed_and_the_heal_restarts_it() {
    let (m, plan) = real_clock_machine();
    let f = nemesis(vec![m.clone() as Arc<dyn Remote>], plan);
    let log = || std::mem::take(&mut *m.log.lock().unwrap());
    let sync_cmds = |l: &[String]| {
        l.iter()
            .filter(|c| c.starts_with("systemctl") || c.starts_with("timedatectl"))
            .cloned()
            .collect::<Vec<_>>()
    };
    // A heal with no clock fault yet leaves time sync alone.
    assert!(f.heal_all().errors.is_empty());
    assert_eq!(sync_cmds(&log()), Vec::<String>::new());

    let out = f.invoke(
        "bump-clock",
        &json!({"targets": "n1", "delta_ms": 60_000.0}),
    );
    assert_eq!(out.error, None, "{}", out.value);
    let v = out.value;
    assert_eq!(v["time_sync_stopped"]["n1"]["units"][0], "chrony");
    let measured = v["measured_offset_ms"]["n1"].as_f64().unwrap();
    assert!((59_000.0..61_000.0).contains(&measured), "{measured}");
    let l = log();
    let probe = l
        .iter()
        .position(|c| c.contains("timedatectl show"))
        .unwrap();
    let bump = l.iter().position(|c| c.contains("date -u -s")).unwrap();
    assert!(
        probe < bump,
        "time sync stopped before the clock moves: {l:?}"
    );
    assert!(sync_cmds(&l).contains(&"systemctl stop chrony".to_string()));
    // A second bump does not probe again (the probe would now see sync stopped).
    assert_eq!(
        f.invoke("bump-clock", &json!({"targets": "n1", "delta_ms": 1.0}))
            .error,
        None
    );
    assert!(!log().iter().any(|c| c.contains("timedatectl show")));
    assert_eq!(
        f.verify_clean().problems.len(),
        2,
        "clock moved, sync stopped"
    );

    let rep = f.heal_all();
    assert!(rep.errors.is_empty(), "{:?}", rep.errors);
    let l = log();
    let set = l
        .iter()
        .position(|c| c.starts_with("date -u -s @"))
        .unwrap();
    let restart = l
        .iter()
        .position(|c| c == "systemctl start chrony")
        .unwrap();
    assert!(
        set < restart,
        "the clock is set before sync restarts: {l:?}"
    );
    assert!(l.contains(&"timedatectl set-ntp true".to_string()));
    assert!(f.verify_clean().problems.is_empty());
    // Healing again restarts nothing.
    assert!(f.heal_all().errors.is_empty());
    assert_eq!(sync_cmds(&log()), Vec::<String>::new());
}

#[test]
fn a_fresh_nemesis_heals_what_a_killed_one_left_on_a_real_clock() {
    let (m, plan) = real_clock_machine();
    let first = nemesis(vec![m.clone() as Arc<dyn Remote>], plan.clone());
    let out = first.invoke(
        "bump-clock",
        &json!({"targets": "n1", "delta_ms": 60_000.0}),
    );
    assert_eq!(out.error, None, "{}", out.value);
    // The harness dies here: `first` never heals. A new one finds and undoes it.
    drop(first);
    let second = nemesis(vec![m.clone() as Arc<dyn Remote>], plan);
    let found = second.verify_clean();
    assert!(
        found
            .problems
            .iter()
            .any(|p| p.contains("time sync was stopped")),
        "{found:?}"
    );
    m.log.lock().unwrap().clear();
    let rep = second.heal_all();
    assert!(rep.errors.is_empty(), "{:?}", rep.errors);
    let l = std::mem::take(&mut *m.log.lock().unwrap());
    assert!(l.iter().any(|c| c.starts_with("date -u -s @")), "{l:?}");
    assert!(l.contains(&"systemctl start chrony".to_string()), "{l:?}");
    assert!(
        second.verify_clean().is_clean(),
        "{:?}",
        second.verify_clean()
    );
    assert!(
        m.files.lock().unwrap().is_empty(),
        "marks removed: {:?}",
        m.files.lock().unwrap()
    );
}

fn faults() -> (Nemesis, Vec<Arc<Refuses>>) {
    faults_on(3)
}

/// Five nodes that refuse every command (for [`Cx::hold`], which touches no node).
pub(super) fn faults_for_hold() -> (Nemesis, Vec<Arc<Refuses>>) {
    faults_on(5)
}

fn faults_on(n: usize) -> (Nemesis, Vec<Arc<Refuses>>) {
    let nodes: Vec<Arc<Refuses>> = (1..=n)
        .map(|i| {
            Arc::new(Refuses {
                node: Node {
                    name: format!("n{i}"),
                    host: format!("10.9.9.{i}"),
                    ssh_port: 22,
                    workdir: format!("/w/n{i}"),
                },
                calls: Mutex::new(0),
            })
        })
        .collect();
    let f = nemesis(
        nodes.iter().map(|n| n.clone() as Arc<dyn Remote>).collect(),
        Plan::default(),
    );
    (f, nodes)
}

#[test]
fn faults_on_the_primaries_without_a_leader_are_skipped_not_failed() {
    let (f, nodes) = faults();
    for (name, value) in [
        ("pause", json!({"targets": "primaries"})),
        ("kill", json!({"targets": "primaries"})),
        ("start-partition", json!({"shape": "primaries"})),
    ] {
        let mut inv = Op::new(Process::Nemesis, OpType::Info, name, value);
        inv.index = 0;
        let done = f.invoke_op(&inv);
        assert_eq!(done.error, None, "{name}: {:?}", done.value);
        let why = crate::checker::availability::skipped(&done).unwrap_or_default();
        assert!(why.contains("no primaries"), "{name}: {:?}", done.value);
    }
    assert!(nodes.iter().all(|n| *n.calls.lock().unwrap() == 0));
    // A real error still fails.
    let bad = Op::new(
        Process::Nemesis,
        OpType::Info,
        "pause",
        json!({"targets": "n7"}),
    );
    let done = f.invoke_op(&bad);
    assert!(done.error.as_deref().unwrap_or("").contains("n7"));
}

//! The plug between the runner and fault injection: [`build`] (the runner's `build_nemesis`
//! hook) makes a [`FaultNemesis`], which implements the runner's [`Nemesis`] trait on top of
//! [`Faults`], and [`TargetProcesses`], which implements [`Processes`] on top of the runner's
//! [`Target`].
//!
//! The runner owns *when* (its `nemesis_cycle` sends `start-<fault>` / `stop-<fault>` with no
//! value); this module owns *what*: it draws the concrete fault from the plan's `nemesis.opts`
//! ([`schedule::plan_start`]) and answers with what it did, including the concrete operation
//! (`"op": "pause"`), so the history says which nodes, which grudge, which offsets.

use super::schedule::{self, f};
use super::spec::{FaultKind, FaultOpts};
use super::{ClockMode, Faults, FaultsConfig, Processes};
use crate::control::{util, Cmd, Remote};
use crate::error::bad_input;
use crate::runner::nemesis::{Nemesis, NemesisEnv, NemesisOutcome, NoopNemesis};
use crate::runner::Recorder;
use crate::target::Target;
use anyhow::{anyhow, Context, Result};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Targets whose binaries ignore libfaketime (Go runtimes call the clock without libc).
pub const IGNORES_FAKETIME: &[&str] = &["etcd"];

/// [`Processes`] through the runner's [`Target`] (which addresses nodes by index).
pub struct TargetProcesses {
    target: Arc<dyn Target>,
    index: BTreeMap<String, usize>,
    faketime: bool,
}

impl TargetProcesses {
    pub fn new(target: Arc<dyn Target>, node_names: &[String]) -> TargetProcesses {
        let faketime = !IGNORES_FAKETIME.contains(&target.name());
        TargetProcesses {
            target,
            index: node_names
                .iter()
                .enumerate()
                .map(|(i, n)| (n.clone(), i))
                .collect(),
            faketime,
        }
    }

    fn i(&self, remote: &dyn Remote) -> Result<usize> {
        let n = &remote.node().name;
        self.index
            .get(n)
            .copied()
            .ok_or_else(|| anyhow!("node {n} is not one of the target's nodes"))
    }

    /// Pid files under the node's directory, except netsplit's own sshd (local clusters keep
    /// it under `sshd/`). The Target trait has no pid-file query, and docs/local-clusters.md puts
    /// every process's pid file in its node's directory, so this finds the target's.
    fn pid_files(&self, remote: &dyn Remote) -> Result<Vec<String>> {
        let dir = remote.node().workdir.trim_end_matches('/').to_string();
        let out = remote.exec(
            &Cmd::new("find")
                .args([&dir, "-maxdepth", "4", "-name", "*.pid", "-not", "-path"])
                .arg(format!("{dir}/sshd/*"))
                .args(["-not", "-path"])
                .arg(format!("{dir}/netsplit/*"))
                .timeout(Duration::from_secs(20)),
        )?;
        Ok(out
            .stdout
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect())
    }
}

impl Processes for TargetProcesses {
    fn name(&self) -> &str {
        self.target.name()
    }
    fn pause(&self, remote: &dyn Remote) -> Result<()> {
        self.target.pause(self.i(remote)?)
    }
    fn resume(&self, remote: &dyn Remote) -> Result<()> {
        self.target.resume(self.i(remote)?)
    }
    fn kill(&self, remote: &dyn Remote) -> Result<()> {
        self.target.kill(self.i(remote)?)
    }
    /// Graceful: SIGTERM by pid file with a grace period (the node utility's stop), then the
    /// target's own kill to make sure.
    fn stop(&self, remote: &dyn Remote) -> Result<()> {
        for pf in self.pid_files(remote)? {
            util::stop_daemon(remote, &pf, Duration::from_secs(10))?;
        }
        self.target.kill(self.i(remote)?)
    }
    fn start(&self, remote: &dyn Remote) -> Result<()> {
        self.target.start(self.i(remote)?)
    }
    fn pids(&self, remote: &dyn Remote) -> Result<Vec<u32>> {
        let mut pids = Vec::new();
        for pf in self.pid_files(remote)? {
            if let Some(p) = util::daemon_pid(remote, &pf)? {
                pids.push(p);
            }
        }
        Ok(pids)
    }
    fn primaries(&self) -> Vec<String> {
        self.target.primaries().unwrap_or_default()
    }
    fn honours_faketime(&self) -> bool {
        self.faketime
    }
}

/// The runner's [`Nemesis`] over [`Faults`].
pub struct FaultNemesis {
    faults: Faults,
    kinds: Vec<FaultKind>,
    opts: FaultOpts,
    rng: Mutex<crate::generator::rng::Rng>,
    /// Said in the history at setup (`note` events): what the plan asked that these nodes
    /// cannot do.
    notes: Vec<String>,
}

impl FaultNemesis {
    pub fn new(faults: Faults, kinds: Vec<FaultKind>, opts: FaultOpts, seed: u64) -> FaultNemesis {
        FaultNemesis {
            faults,
            kinds,
            opts,
            rng: Mutex::new(crate::generator::rng::Rng::new(
                seed ^ 0x7363_6865_6475_6c65,
            )),
            notes: Vec::new(),
        }
    }

    /// The executor, for callers that want `verify_clean`, offsets or notes.
    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    /// Maps the runner's `start-<fault>` / `stop-<fault>` to a concrete operation; any other
    /// `f` (a concrete one such as `pause`) passes through with its value.
    fn concrete(&self, fname: &str, value: &Value) -> Result<(String, Value)> {
        if let Some(kind) = fname.strip_prefix("start-") {
            if let Ok(k) = FaultKind::parse(kind) {
                if value.is_null() {
                    let mut rng = self.rng.lock().unwrap_or_else(|e| e.into_inner());
                    let (f, v, _) = schedule::plan_start(k, &self.opts, &mut rng);
                    return Ok((f, v));
                }
                // A value given with the generic name: the family's basic start operation.
                let concrete = match k {
                    FaultKind::Partition => f::START_PARTITION,
                    FaultKind::Packet => f::START_PACKET,
                    FaultKind::Pause => f::PAUSE,
                    FaultKind::Kill => f::KILL,
                    FaultKind::Clock => f::BUMP_CLOCK,
                };
                return Ok((concrete.to_string(), value.clone()));
            }
        }
        if let Some(kind) = fname.strip_prefix("stop-") {
            if let Ok(k) = FaultKind::parse(kind) {
                return Ok((schedule::stop_of(k).to_string(), json!({})));
            }
        }
        if fname == "heal" {
            return Ok((f::HEAL_ALL.to_string(), json!({})));
        }
        Ok((fname.to_string(), value.clone()))
    }
}

impl Nemesis for FaultNemesis {
    fn setup(&self, recorder: &Recorder) -> Result<()> {
        self.faults.setup()?;
        for n in &self.notes {
            recorder.nemesis("note", json!({ "note": n }), None);
        }
        if self.kinds.contains(&FaultKind::Clock) && !self.faults.clock_effective() {
            recorder.nemesis(
                "note",
                json!({ "note": self.faults.notes_if_clock_used_now() }),
                None,
            );
        }
        Ok(())
    }

    fn invoke(&self, fname: &str, value: &Value) -> Result<NemesisOutcome> {
        let (op, v) = self.concrete(fname, value)?;
        match self.faults.invoke(&op, &v) {
            Ok(mut done) => {
                if let Value::Object(m) = &mut done {
                    m.insert("op".into(), json!(op));
                    if fname != op {
                        m.insert("request".into(), v);
                    }
                }
                Ok(NemesisOutcome {
                    value: done,
                    error: None,
                })
            }
            Err(e) => {
                let (mut value, error) = super::outcome_of_error(&v, &e);
                value["op"] = json!(op);
                Ok(NemesisOutcome { value, error })
            }
        }
    }

    /// Heals everything, then verifies the nodes are clean; any failure or leftover is an error
    /// naming the node.
    fn heal_all(&self) -> Result<()> {
        let rep = self.faults.heal_all();
        let clean = self.faults.verify_clean();
        let mut problems = rep.errors;
        problems.extend(clean.problems);
        if problems.is_empty() {
            Ok(())
        } else {
            Err(anyhow!("after healing: {}", problems.join("; ")))
        }
    }

    fn teardown(&self) -> Result<()> {
        let rep = self.faults.teardown();
        if rep.is_ok() {
            Ok(())
        } else {
            Err(anyhow!("nemesis teardown: {}", rep.errors.join("; ")))
        }
    }
}

/// Whether a plan's nodes are local namespace nodes (a named or the default local cluster).
fn local_nodes(env: &NemesisEnv) -> bool {
    env.plan.nodes.cluster.is_some()
        || (env.plan.nodes.nodes.is_empty() && env.plan.nodes.nodes_file.is_none())
}

/// Fits the clock options to the clock mode: a real clock can only be bumped and strobed, so
/// drift (which the `clock` preset asks for) is dropped, with a note saying so.
fn fit_clock_opts(opts: &mut FaultOpts, mode: ClockMode, kinds: &[FaultKind]) -> Option<String> {
    if mode != ClockMode::RealClock
        || !kinds.contains(&FaultKind::Clock)
        || opts.clock.drift.is_empty()
    {
        return None;
    }
    let note = format!(
        "clock drift {:?} dropped: drift needs libfaketime (local nodes); real clocks are \
         bumped and strobed only",
        opts.clock.drift
    );
    opts.clock.drift.clear();
    Some(note)
}

/// The runner's `build_nemesis` hook: no faults → the no-op nemesis; else a [`FaultNemesis`]
/// with the plan's options. Bad fault names or options are bad input naming `nemesis.…`.
pub fn build(env: NemesisEnv) -> Result<Arc<dyn Nemesis>> {
    if env.plan.nemesis.faults.is_empty() {
        return Ok(Arc::new(NoopNemesis));
    }
    let mut kinds = Vec::new();
    for fault in &env.plan.nemesis.faults {
        kinds.push(FaultKind::parse(fault).map_err(|e| bad_input(format!("nemesis.faults: {e}")))?);
    }
    let opts: FaultOpts = serde_json::from_value(serde_json::to_value(&env.plan.nemesis.opts)?)
        .map_err(|e| bad_input(format!("nemesis.opts: {e}")))?;
    let spec = super::NemesisSpec {
        faults: Vec::new(),
        interval: env.plan.nemesis.interval.max(f64::MIN_POSITIVE),
        opts: opts.clone(),
    };
    spec.validate()
        .map_err(|e| bad_input(format!("nemesis.opts: {e}")))?;
    if env.remotes.is_empty() {
        return Err(bad_input(format!(
            "nemesis faults {:?} need nodes, and target {} runs on none",
            env.plan.nemesis.faults,
            env.target.name()
        )));
    }
    let clock_mode = opts.clock.mode.unwrap_or(if local_nodes(&env) {
        ClockMode::Faketime
    } else {
        ClockMode::RealClock
    });
    let mut opts = opts;
    let notes: Vec<String> = fit_clock_opts(&mut opts, clock_mode, &kinds)
        .into_iter()
        .inspect(|n| tracing::warn!("{n}"))
        .collect();
    let mut control_ip = super::detect_control_ip(env.remotes[0].as_ref());
    if control_ip.is_none() {
        if let Some(name) = &env.plan.nodes.cluster {
            if let Some(info) = crate::cluster::load(name)? {
                control_ip = info.control_address.parse().ok();
            }
        }
    }
    let names: Vec<String> = env.nodes.iter().map(|n| n.name.clone()).collect();
    let procs = Arc::new(TargetProcesses::new(env.target.clone(), &names));
    let faults = Faults::new(FaultsConfig {
        remotes: env.remotes.clone(),
        control_ip,
        processes: procs,
        clock_mode,
        seed: env.plan.seed(),
        // Local nodes share this machine's filesystem: the running binary is the helper.
        netem_helper: if local_nodes(&env) {
            std::env::current_exe()
                .ok()
                .map(|p| p.to_string_lossy().into_owned())
        } else {
            None
        },
    })
    .context("building the nemesis")?;
    let mut n = FaultNemesis::new(faults, kinds, opts, env.plan.seed());
    n.notes = notes;
    Ok(Arc::new(n))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::netns::NetnsRemote;
    use crate::control::Node;
    use crate::nemesis::process::PidFileDaemon;
    use crate::plan::Plan;

    fn nodes(n: usize) -> (Vec<Node>, Vec<Arc<dyn Remote>>) {
        let nodes: Vec<Node> = (1..=n)
            .map(|i| Node {
                name: format!("n{i}"),
                host: format!("10.99.0.{i}"),
                ssh_port: 22,
                workdir: format!("/nonexistent/n{i}"),
            })
            .collect();
        let remotes = nodes
            .iter()
            .map(|n| Arc::new(NetnsRemote::new(n.clone(), None)) as Arc<dyn Remote>)
            .collect();
        (nodes, remotes)
    }

    fn nemesis(opts: FaultOpts) -> FaultNemesis {
        let (_, remotes) = nodes(5);
        let procs = Arc::new(PidFileDaemon {
            name: "x".into(),
            pid_file: "x.pid".into(),
            start_cmd: Box::new(|_| Cmd::new("true")),
            faketime: true,
            stop_grace: Duration::from_secs(1),
        });
        let faults = Faults::new(FaultsConfig {
            remotes,
            control_ip: Some("10.99.0.254".parse().unwrap()),
            processes: procs,
            clock_mode: ClockMode::Faketime,
            seed: 3,
            netem_helper: None,
        })
        .unwrap();
        FaultNemesis::new(faults, FaultKind::ALL.to_vec(), opts, 3)
    }

    #[test]
    fn runner_generic_names_become_concrete_operations_from_the_options() {
        let mut opts = FaultOpts::default();
        opts.partition.shapes = vec![super::super::Shape::Bridge];
        let n = nemesis(opts);
        let (f, v) = n.concrete("start-partition", &Value::Null).unwrap();
        assert_eq!(
            (f.as_str(), v["shape"].as_str()),
            ("start-partition", Some("bridge"))
        );
        assert_eq!(n.concrete("start-pause", &Value::Null).unwrap().0, "pause");
        assert!(
            ["kill", "stop"].contains(&n.concrete("start-kill", &Value::Null).unwrap().0.as_str())
        );
        assert_eq!(n.concrete("stop-pause", &Value::Null).unwrap().0, "resume");
        assert_eq!(n.concrete("stop-kill", &Value::Null).unwrap().0, "start");
        assert_eq!(
            n.concrete("stop-clock", &Value::Null).unwrap().0,
            "reset-clock"
        );
        assert_eq!(n.concrete("heal", &Value::Null).unwrap().0, "heal-all");
        // Concrete names and explicit values pass through.
        let (f, v) = n.concrete("pause", &json!({"nodes": ["n2"]})).unwrap();
        assert_eq!((f.as_str(), &v), ("pause", &json!({"nodes": ["n2"]})));
    }

    #[test]
    fn real_clocks_never_draw_drift() {
        let mut opts = FaultOpts::default();
        opts.clock.drift = vec![0.9, 1.1];
        let clock = [FaultKind::Clock];
        // Faketime nodes keep drift; so does a plan without clock faults.
        assert_eq!(fit_clock_opts(&mut opts, ClockMode::Faketime, &clock), None);
        assert_eq!(
            fit_clock_opts(&mut opts, ClockMode::RealClock, &[FaultKind::Pause]),
            None
        );
        assert_eq!(opts.clock.drift.len(), 2);
        let note = fit_clock_opts(&mut opts, ClockMode::RealClock, &clock).unwrap();
        assert!(note.contains("drift [0.9, 1.1] dropped"), "{note}");
        let mut rng = crate::generator::rng::Rng::new(1);
        for _ in 0..200 {
            let (f, _, _) = schedule::plan_start(FaultKind::Clock, &opts, &mut rng);
            assert_ne!(f, "drift-clock");
        }
    }

    #[test]
    fn a_refused_fault_is_recorded_with_its_request_and_error() {
        let n = nemesis(FaultOpts::default());
        // The grudge names an unknown node: refused before any node is touched.
        let out = n
            .invoke("start-partition", &json!({"grudge": {"n1": ["n9"]}}))
            .unwrap();
        let err = out.error.unwrap();
        assert!(err.contains("n9"), "{err}");
        assert_eq!(out.value["op"], "start-partition");
        assert_eq!(out.value["request"]["grudge"]["n1"], json!(["n9"]));
    }

    #[test]
    fn bad_fault_names_and_options_are_bad_input() {
        let (nodes, remotes) = nodes(3);
        let env = |plan: Plan| NemesisEnv {
            target: crate::target::noop::build(crate::target::TargetEnv {
                plan: plan.clone(),
                nodes: Vec::new(),
                remotes: Vec::new(),
            })
            .unwrap(),
            plan,
            nodes: nodes.clone(),
            remotes: remotes.clone(),
        };
        let mut plan = Plan::default();
        plan.nemesis.faults = vec!["meteor".into()];
        let e = build(env(plan)).err().unwrap();
        assert_eq!(crate::error::exit_code_for(&e), 254);
        assert!(e.to_string().contains("meteor"), "{e}");

        let mut plan = Plan::default();
        plan.nemesis.faults = vec!["partition".into()];
        plan.nemesis
            .opts
            .insert("partition".into(), json!({"shapes": ["square"]}));
        let e = build(env(plan)).err().unwrap();
        assert_eq!(crate::error::exit_code_for(&e), 254);
        assert!(
            e.to_string().contains("nemesis.opts") && e.to_string().contains("square"),
            "{e}"
        );

        // No faults: the no-op nemesis, whatever the nodes.
        assert!(build(env(Plan::default())).is_ok());
    }
}

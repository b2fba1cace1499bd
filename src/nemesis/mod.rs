//! Faults: partitions, packet faults, pauses, crashes and clock skew — injected on real nodes,
//! recorded in the history, and always healed.
//!
//! This module owns [`Faults`], the executor the runner drives: it turns nemesis operations
//! (`start-partition`, `pause`, `bump-clock`, …; see [`schedule::f`]) into commands on the
//! nodes, answers each with what it actually did (the value of the `info` completion: which
//! nodes, which grudge, which clock offsets), and provides the two safety nets every way out of
//! a run uses: [`Faults::heal_all`] (idempotent, safe with nothing active, best effort on every
//! node even when some fail) and [`Faults::verify_clean`] (proof that no rule, qdisc, stopped
//! process or clock offset is left). The pieces:
//!
//! - `spec` — `--nemesis LIST`, `--nemesis-interval`, the plan's `nemesis:` section;
//! - `schedule` — the pure, seeded stream of start/stop operations and the final heal;
//! - `grudge` + `select` — pure choices of shapes and nodes;
//! - `partition` (iptables), `packet` (tc), `process` (signals by pid file), `clock`
//!   (libfaketime files or the real clock) — command builders and their remote halves.
//!
//! Blocking: every method runs commands through [`Remote`] (blocking); async callers use
//! `spawn_blocking`. Work on several nodes runs on scoped threads, one per node.

pub mod clock;
pub mod grudge;
pub mod nfq;
pub mod packet;
pub mod partition;
pub mod plug;
pub mod process;

pub mod schedule;
pub mod select;
pub mod spec;

pub use clock::{ClockMode, ClockState};
pub use grudge::{Grudge, Shape};
pub use packet::Behaviour;
pub use process::Processes;
pub use select::NodeSpec;
pub use spec::{FaultKind, NemesisSpec};

use crate::control::{Cmd, Remote};
use crate::generator::rng::Rng;
use crate::history::{Op, OpType, Process};
use anyhow::{anyhow, bail, Context};
use schedule::f;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, ToSocketAddrs};
use std::sync::{Arc, Mutex};

/// `node: text`, without repeating the node when the text already starts with it (remote
/// errors name their node).
fn about(node: &str, text: &str) -> String {
    let prefix = format!("{node}: ");
    if text.starts_with(&prefix) {
        text.to_string()
    } else {
        format!("{prefix}{text}")
    }
}

/// A fault that does not apply at this moment — aimed at the primaries while the target reports
/// none (no leader during an election, or no node answering) — so nothing was injected and
/// nothing failed. The nemesis records it as skipped (`"skipped": reason`), not as an error,
/// and the fault summary counts it apart.
#[derive(Debug)]
pub struct Skipped(pub String);

impl std::fmt::Display for Skipped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Skipped {}

/// The reason a primaries-targeted fault is skipped.
const NO_PRIMARIES: &str = "the target reports no primaries right now (no leader, or no answer)";

/// The target's primaries among the nodes; [`Skipped`] when there are none right now.
fn current_primaries(procs: &dyn Processes, names: &[String]) -> anyhow::Result<Vec<String>> {
    let ps = select::primaries_among(names, &procs.primaries());
    if ps.is_empty() {
        return Err(Skipped(NO_PRIMARIES.into()).into());
    }
    Ok(ps)
}

/// The value and error of a nemesis completion for an operation that ended in `e`: skipped
/// (no error, the reason under `skipped`) or failed (the error, also in the value).
pub fn outcome_of_error(request: &Value, e: &anyhow::Error) -> (Value, Option<String>) {
    if let Some(s) = e.downcast_ref::<Skipped>() {
        return (json!({ "request": request, "skipped": s.0 }), None);
    }
    let msg = crate::error::one_line(e);
    (json!({ "request": request, "error": msg }), Some(msg))
}

/// What tc answers when the kernel has no `sch_netem`.
const NETEM_UNKNOWN: &str = "Specified qdisc kind is unknown";

/// Everything [`Faults`] needs to act on a cluster.
pub struct FaultsConfig {
    /// One remote per node, in cluster order.
    pub remotes: Vec<Arc<dyn Remote>>,
    /// The control node's address as the nodes see it: never blocked by a partition.
    pub control_ip: Option<IpAddr>,
    /// The target's process control (pause, kill, start, primaries).
    pub processes: Arc<dyn Processes>,
    /// How clock faults reach the nodes.
    pub clock_mode: ClockMode,
    /// Seed for node and shape choices (the run's seed).
    pub seed: u64,
    /// The netsplit binary's path *on the nodes*, for the userspace packet-fault emulation
    /// used where the kernel lacks `sch_netem` ([`nfq`]); `None`: no emulation (netem only).
    /// Local nodes share the control node's filesystem, so they get the running binary.
    pub netem_helper: Option<String>,
}

/// What [`Faults::heal_all`] did, and what it could not do.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HealReport {
    /// Steps that succeeded (`n1: partition`, `n3: resumed`, …).
    pub healed: Vec<String>,
    /// Steps that failed, each naming the node.
    pub errors: Vec<String>,
}

impl HealReport {
    pub fn is_ok(&self) -> bool {
        self.errors.is_empty()
    }
    pub fn to_json(&self) -> Value {
        json!({ "healed": self.healed, "errors": self.errors })
    }
}

/// What [`Faults::verify_clean`] found left over, one line per problem, each naming the node.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CleanReport {
    pub problems: Vec<String>,
}

impl CleanReport {
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }
}

/// The fault executor for one run. See the module docs.
pub struct Faults {
    names: Vec<String>,
    remotes: BTreeMap<String, Arc<dyn Remote>>,
    ips: BTreeMap<String, IpAddr>,
    control_ip: Option<IpAddr>,
    procs: Arc<dyn Processes>,
    clock_mode: ClockMode,
    netem_helper: Option<String>,
    /// What is active, so heal_all knows what to restart and reset. Locked only briefly,
    /// never across commands on nodes: `heal_all` (the emergency path) must not wait for a
    /// fault that is being injected.
    state: Mutex<State>,
}

struct State {
    rng: Rng,
    /// Whether `verify_clean` demands the target be running on every node.
    expect_running: bool,
    paused: BTreeSet<String>,
    killed: BTreeSet<String>,
    clocks: BTreeMap<String, ClockState>,
    clock_touched: BTreeSet<String>,
    clock_used: bool,
    devices: BTreeMap<String, String>,
    /// Nodes found to lack `sch_netem` (their packet faults go through [`nfq`]).
    no_netem: BTreeSet<String>,
    /// Real-clock nodes whose time sync the nemesis stopped, with what to restart at the heal.
    timesync: BTreeMap<String, clock::TimeSync>,
}

/// Resolves a node's address: an IP literal as is, else a DNS lookup on the control node.
pub fn resolve_ip(host: &str) -> anyhow::Result<IpAddr> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(ip);
    }
    (host, 0)
        .to_socket_addrs()
        .with_context(|| format!("resolving node address {host}"))?
        .map(|a| a.ip())
        .find(|ip| ip.is_ipv4())
        .ok_or_else(|| anyhow!("node address {host} resolves to no IPv4 address"))
}

/// The control node's address as an SSH-reached node sees it (`$SSH_CLIENT`), `None` when the
/// remote is not an SSH session.
pub fn detect_control_ip(remote: &dyn Remote) -> Option<IpAddr> {
    let out = remote
        .exec(&Cmd::new("sh").args(["-c", "echo \"$SSH_CLIENT\""]))
        .ok()?;
    out.stdout.split_whitespace().next()?.parse().ok()
}

fn value_str<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

impl Faults {
    /// Builds the executor. Resolves node addresses; touches no node (see [`Faults::setup`]).
    pub fn new(cfg: FaultsConfig) -> anyhow::Result<Faults> {
        if cfg.remotes.is_empty() {
            bail!("the nemesis needs at least one node");
        }
        let mut names = Vec::new();
        let mut remotes = BTreeMap::new();
        let mut ips = BTreeMap::new();
        for r in cfg.remotes {
            let n = r.node().clone();
            if remotes.contains_key(&n.name) {
                bail!("node {} is listed twice", n.name);
            }
            let ip = resolve_ip(&n.host).with_context(|| format!("node {}", n.name))?;
            if Some(ip) == cfg.control_ip {
                bail!(
                    "node {} has the control node's address {ip}: partitions could cut the control node off",
                    n.name
                );
            }
            ips.insert(n.name.clone(), ip);
            names.push(n.name.clone());
            remotes.insert(n.name, r);
        }
        let clocks = names
            .iter()
            .map(|n| (n.clone(), ClockState::default()))
            .collect();
        Ok(Faults {
            names,
            remotes,
            ips,
            control_ip: cfg.control_ip,
            procs: cfg.processes,
            clock_mode: cfg.clock_mode,
            netem_helper: cfg.netem_helper,
            state: Mutex::new(State {
                rng: Rng::new(cfg.seed),
                // Until setup, the target may not have been started (an early error path).
                expect_running: false,
                paused: BTreeSet::new(),
                killed: BTreeSet::new(),
                clocks,
                clock_touched: BTreeSet::new(),
                clock_used: false,
                devices: BTreeMap::new(),
                no_netem: BTreeSet::new(),
                timesync: BTreeMap::new(),
            }),
        })
    }

    fn st(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain bookkeeping behind; keep using it.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Node names, in cluster order.
    pub fn nodes(&self) -> &[String] {
        &self.names
    }

    /// Addresses the partitions and packet filters use.
    pub fn ips(&self) -> &BTreeMap<String, IpAddr> {
        &self.ips
    }

    /// Whether [`Faults::verify_clean`] requires the target running on every node (false
    /// until [`Faults::setup`], which the runner calls once the target is up; set it false
    /// again for a target that is torn down).
    pub fn set_expect_running(&self, yes: bool) {
        self.st().expect_running = yes;
    }

    /// Each node's clock as the nemesis last set it.
    pub fn clock_offsets(&self) -> BTreeMap<String, ClockState> {
        self.st().clocks.clone()
    }

    /// Notes results must carry: currently, that clock faults had no effect because the
    /// target ignores libfaketime.
    pub fn notes(&self) -> Vec<String> {
        if self.st().clock_used && !self.clock_effective() {
            vec![self.faketime_note()]
        } else {
            Vec::new()
        }
    }

    /// False when clock faults cannot reach the target's processes (faketime mode with a
    /// target that ignores libfaketime).
    pub fn clock_effective(&self) -> bool {
        self.clock_mode == ClockMode::RealClock || self.procs.honours_faketime()
    }

    /// The faketime note, whether or not a clock fault has run yet (for a note at setup).
    pub fn notes_if_clock_used_now(&self) -> String {
        self.faketime_note()
    }

    fn faketime_note(&self) -> String {
        format!(
            "clock faults had no effect on {}: its binaries ignore libfaketime (Go and static \
             binaries read the clock with their own system calls); run on VMs with the real-clock \
             mode to test clocks",
            self.procs.name()
        )
    }

    fn v6(&self) -> bool {
        self.ips.values().any(IpAddr::is_ipv6)
    }

    fn remote(&self, node: &str) -> anyhow::Result<&Arc<dyn Remote>> {
        self.remotes
            .get(node)
            .ok_or_else(|| anyhow!("unknown node {node}"))
    }

    /// Runs `f` on each named node in parallel; results in the order given.
    fn on_nodes<T: Send>(
        &self,
        nodes: &[String],
        f: impl Fn(&str, &dyn Remote) -> anyhow::Result<T> + Sync,
    ) -> Vec<(String, anyhow::Result<T>)> {
        let f = &f;
        std::thread::scope(|s| {
            let handles: Vec<_> = nodes
                .iter()
                .map(|n| {
                    let r = self.remotes.get(n).cloned();
                    let n = n.clone();
                    s.spawn(move || {
                        let res = match r {
                            Some(r) => f(&n, r.as_ref()),
                            None => Err(anyhow!("unknown node {n}")),
                        };
                        (n, res)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| ("?".into(), Err(anyhow!("node worker panicked"))))
                })
                .collect()
        })
    }

    /// Like [`Faults::on_nodes`] but fails with every node's error when any failed.
    fn on_nodes_ok<T: Send>(
        &self,
        nodes: &[String],
        f: impl Fn(&str, &dyn Remote) -> anyhow::Result<T> + Sync,
    ) -> anyhow::Result<Vec<(String, T)>> {
        let mut ok = Vec::new();
        let mut errs = Vec::new();
        for (n, r) in self.on_nodes(nodes, f) {
            match r {
                Ok(v) => ok.push((n, v)),
                Err(e) => errs.push(about(&n, &crate::error::one_line(&e))),
            }
        }
        if errs.is_empty() {
            Ok(ok)
        } else {
            Err(anyhow!(errs.join("; ")))
        }
    }

    /// Prepares every node: the iptables chain and its jump, no leftovers from an earlier
    /// (crashed) run, faketime clocks at zero offset.
    pub fn setup(&self) -> anyhow::Result<()> {
        let v6 = self.v6();
        let mode = self.clock_mode;
        let names = self.names.clone();
        self.on_nodes_ok(&names, |_, r| {
            partition::ensure_chain(r, false)?;
            if v6 {
                partition::ensure_chain(r, true)?;
            }
            partition::heal(r, false)?;
            if v6 {
                partition::heal(r, true)?;
            }
            packet::heal(r)?;
            nfq::heal(r, v6)?;
            // Real clocks are left alone (and time sync running) until a clock fault needs
            // them: see `hold_clocks`.
            if mode == ClockMode::Faketime {
                clock::set_faketime(r, ClockState::default())?;
            }
            Ok(())
        })?;
        self.st().expect_running = true;
        Ok(())
    }

    /// Executes one nemesis operation and returns what was done (the `info` value).
    pub fn invoke(&self, fname: &str, value: &Value) -> anyhow::Result<Value> {
        match fname {
            f::START_PARTITION => self.start_partition(value),
            f::STOP_PARTITION => {
                let nodes = self.heal_partitions()?;
                Ok(json!({ "nodes": nodes }))
            }
            f::START_PACKET => self.start_packet(value),
            f::STOP_PACKET => {
                let names = self.names.clone();
                let v6 = self.v6();
                self.on_nodes_ok(&names, |_, r| {
                    packet::heal(r)?;
                    Ok(nfq::heal(r, v6)?)
                })?;
                Ok(json!({ "nodes": names }))
            }
            f::PAUSE => {
                let nodes = self.targets(value)?;
                let procs = self.procs.clone();
                self.st().paused.extend(nodes.iter().cloned());
                self.on_nodes_ok(&nodes, |_, r| procs.pause(r))?;
                Ok(json!({ "nodes": nodes }))
            }
            f::RESUME => {
                // SIGCONT is harmless on a running process, so resume every node: nothing stays
                // stopped even if our bookkeeping missed one.
                let was: Vec<String> = self.st().paused.iter().cloned().collect();
                let names = self.names.clone();
                let procs = self.procs.clone();
                self.on_nodes_ok(&names, |_, r| procs.resume(r))?;
                self.st().paused.clear();
                Ok(json!({ "nodes": was }))
            }
            f::KILL | f::STOP => {
                let nodes = self.targets(value)?;
                let procs = self.procs.clone();
                let graceful = fname == f::STOP;
                self.st().killed.extend(nodes.iter().cloned());
                self.on_nodes_ok(&nodes, |_, r| {
                    if graceful {
                        procs.stop(r)
                    } else {
                        procs.kill(r)
                    }
                })?;
                Ok(json!({ "nodes": nodes, "graceful": graceful }))
            }
            f::START => {
                let nodes: Vec<String> = match value.get("nodes").and_then(Value::as_array) {
                    Some(a) => a
                        .iter()
                        .filter_map(|x| x.as_str().map(String::from))
                        .collect(),
                    None => self.st().killed.iter().cloned().collect(),
                };
                let procs = self.procs.clone();
                self.on_nodes_ok(&nodes, |_, r| procs.start(r))?;
                for n in &nodes {
                    self.st().killed.remove(n);
                }
                Ok(json!({ "nodes": nodes }))
            }
            f::BUMP_CLOCK => {
                let nodes = self.targets(value)?;
                let delta = value
                    .get("delta_ms")
                    .and_then(Value::as_f64)
                    .ok_or_else(|| anyhow!("bump-clock needs delta_ms"))?;
                self.shift_clocks(&nodes, delta)?;
                Ok(self.clock_value(nodes))
            }
            f::STROBE_CLOCK => self.strobe(value),
            f::DRIFT_CLOCK => {
                let nodes = self.targets(value)?;
                let rate = value
                    .get("rate")
                    .and_then(Value::as_f64)
                    .filter(|r| *r > 0.0 && r.is_finite())
                    .ok_or_else(|| anyhow!("drift-clock needs a positive rate"))?;
                if self.clock_mode == ClockMode::RealClock {
                    bail!("drift-clock needs libfaketime (faketime mode); real clocks can only be bumped and strobed");
                }
                let mut new = Vec::new();
                for n in &nodes {
                    let mut s = self.st().clocks[n];
                    s.rate = rate;
                    new.push((n.clone(), s));
                }
                self.set_clocks(&new)?;
                Ok(self.clock_value(nodes))
            }
            f::RESET_CLOCK => {
                self.reset_clocks()?;
                Ok(self.clock_value(self.names.clone()))
            }
            f::HEAL_ALL => {
                let rep = self.heal_all();
                if rep.is_ok() {
                    Ok(rep.to_json())
                } else {
                    Err(anyhow!("heal-all failed: {}", rep.errors.join("; ")))
                }
            }
            other => Err(crate::error::bad_input(format!(
                "unknown nemesis operation {other:?}"
            ))),
        }
    }

    /// Executes a nemesis invocation and returns its completion: an `info` op (the nemesis
    /// cannot know how the cluster took it) with what was done as the value, or with `error`
    /// set and `{"error": …}` merged into the value when it failed.
    pub fn invoke_op(&self, invoke: &Op) -> Op {
        let mut done = Op::new(
            Process::Nemesis,
            OpType::Info,
            invoke.f.clone(),
            Value::Null,
        );
        match self.invoke(&invoke.f, &invoke.value) {
            Ok(v) => done.value = v,
            Err(e) => (done.value, done.error) = outcome_of_error(&invoke.value, &e),
        }
        done
    }

    fn targets(&self, value: &Value) -> anyhow::Result<Vec<String>> {
        if let Some(a) = value.get("nodes").and_then(Value::as_array) {
            let names: Vec<String> = a
                .iter()
                .filter_map(|x| x.as_str().map(String::from))
                .collect();
            return select::select(
                &NodeSpec::Named(names),
                &self.names,
                &[],
                &mut self.st().rng,
            )
            .map_err(|e| anyhow!(e));
        }
        let spec = match value_str(value, "targets") {
            Some(s) => NodeSpec::parse(s).map_err(|e| anyhow!(e))?,
            None => NodeSpec::One,
        };
        let primaries = if spec == NodeSpec::Primaries {
            current_primaries(self.procs.as_ref(), &self.names)?
        } else {
            Vec::new()
        };
        select::select(&spec, &self.names, &primaries, &mut self.st().rng).map_err(|e| anyhow!(e))
    }

    fn start_partition(&self, value: &Value) -> anyhow::Result<Value> {
        let p = if let Some(g) = value.get("grudge") {
            let grudge: Grudge = serde_json::from_value(g.clone())
                .map_err(|e| anyhow!("start-partition grudge: {e}"))?;
            for (a, ds) in &grudge {
                for n in std::iter::once(a).chain(ds) {
                    if !self.ips.contains_key(n) {
                        bail!("start-partition grudge names unknown node {n}");
                    }
                }
            }
            grudge::Partition {
                shape: Shape::One,
                grudge,
                components: Vec::new(),
            }
        } else {
            let shape = Shape::parse(value_str(value, "shape").unwrap_or("majority"))
                .map_err(|e| anyhow!(e))?;
            let primaries = if shape == Shape::Primaries {
                current_primaries(self.procs.as_ref(), &self.names)?
            } else {
                Vec::new()
            };
            grudge::partition(shape, &self.names, &primaries, &mut self.st().rng)
                .map_err(|e| anyhow!(e))?
        };
        // Compute every node's rules before touching any node: a refusal (control node) leaves
        // the cluster as it was.
        let mut per_node: BTreeMap<String, Vec<Cmd>> = BTreeMap::new();
        for n in &self.names {
            let cmds = partition::rules_for(&p.grudge, n, &self.ips, self.control_ip)
                .map_err(|e| anyhow!("{n}: {e}"))?;
            per_node.insert(n.clone(), cmds);
        }
        self.heal_partitions()?;
        let names = self.names.clone();
        let v6 = self.v6();
        let result = self.on_nodes_ok(&names, |n, r| {
            partition::ensure_chain(r, false)?;
            if v6 {
                partition::ensure_chain(r, true)?;
            }
            for c in &per_node[n] {
                r.exec_ok(c)?;
            }
            Ok(())
        });
        if let Err(e) = result {
            // Half a partition is worse than none.
            let _ = self.heal_partitions();
            return Err(e.context("installing partition rules"));
        }
        let mut v = p.to_json();
        if value.get("grudge").is_some() {
            v["shape"] = json!("explicit");
        }
        v["nodes"] = json!(p.grudge.keys().collect::<Vec<_>>());
        Ok(v)
    }

    fn heal_partitions(&self) -> anyhow::Result<Vec<String>> {
        let v6 = self.v6();
        let names = self.names.clone();
        self.on_nodes_ok(&names, |_, r| {
            partition::heal(r, false)?;
            if v6 {
                partition::heal(r, true)?;
            }
            Ok(())
        })?;
        Ok(names)
    }

    fn start_packet(&self, value: &Value) -> anyhow::Result<Value> {
        let behaviour = match value.get("behaviour") {
            Some(Value::String(s)) => Behaviour::preset(s).map_err(|e| anyhow!(e))?,
            Some(v @ Value::Object(_)) => serde_json::from_value::<Behaviour>(v.clone())
                .map_err(|e| anyhow!("start-packet behaviour: {e}"))?,
            _ => Behaviour::preset("delay").map_err(|e| anyhow!(e))?,
        };
        behaviour.validate().map_err(|e| anyhow!(e))?;
        if behaviour.is_empty() {
            bail!("start-packet: empty behaviour");
        }
        let nodes = self.targets(value)?;
        // Interfaces towards the peers, found once per node.
        for n in &nodes {
            if !self.st().devices.contains_key(n) {
                let peer = self
                    .names
                    .iter()
                    .find(|x| *x != n)
                    .map(|x| self.ips[x])
                    .ok_or_else(|| anyhow!("packet faults need at least two nodes"))?;
                let dev = packet::device_towards(self.remote(n)?.as_ref(), peer)?;
                self.st().devices.insert(n.clone(), dev);
            }
        }
        let ips = self.ips.clone();
        let devices = self.st().devices.clone();
        let b = behaviour.clone();
        let helper = self.netem_helper.clone();
        let no_netem = self.st().no_netem.clone();
        let seed = self.st().rng.next_u64();
        let done = self
            .on_nodes_ok(&nodes, |n, r| {
                let peers: Vec<IpAddr> = ips
                    .iter()
                    .filter(|(name, _)| name.as_str() != n)
                    .map(|(_, ip)| *ip)
                    .collect();
                let netem_needed = !b.netem_args().is_empty();
                if !(netem_needed && no_netem.contains(n)) {
                    match packet::apply(r, &devices[n], &peers, &b) {
                        Ok(()) => return Ok(if netem_needed { "netem" } else { "htb" }),
                        Err(e) if !e.to_string().contains(NETEM_UNKNOWN) => return Err(e.into()),
                        Err(e) => tracing::info!(node = n, error = %e, "no sch_netem"),
                    }
                }
                // The kernel lacks sch_netem: rate by HTB, the rest emulated through NFQUEUE.
                let Some(helper) = &helper else {
                    bail!(
                        "kernel lacks sch_netem: netem behaviours cannot be installed \
                         (tc: {NETEM_UNKNOWN}), and the userspace emulation needs the netsplit \
                         binary on the node (local nodes only); only `rate` works"
                    );
                };
                let rate_only = Behaviour {
                    rate: b.rate.clone(),
                    ..Behaviour::default()
                };
                if !rate_only.is_empty() {
                    packet::apply(r, &devices[n], &peers, &rate_only)?;
                }
                let node_seed = seed ^ n.bytes().fold(0u64, |h, c| h.rotate_left(8) ^ c as u64);
                nfq::apply(r, helper, &peers, &b, node_seed)
                    .map_err(|e| anyhow!("emulating netem through NFQUEUE: {e}"))?;
                Ok("nfqueue")
            })
            .context("installing packet faults")?;
        let mut how = BTreeMap::new();
        for (n, kind) in done {
            if kind == "nfqueue" {
                self.st().no_netem.insert(n.clone());
            }
            how.insert(n, kind);
        }
        // How each node got it: `netem`, `htb` (rate only) or `nfqueue` (emulated).
        Ok(json!({ "nodes": nodes, "behaviour": behaviour, "emulation": how }))
    }

    /// Before the first real-clock fault on a node: notes what synchronises its clock
    /// (timedatectl's NTP switch, active chrony/ntp/… units) and stops it, so the fault holds;
    /// [`Faults::heal_all`] restarts exactly that. Faketime nodes: nothing to do.
    fn hold_clocks(&self, nodes: &[String]) -> anyhow::Result<()> {
        if self.clock_mode != ClockMode::RealClock {
            return Ok(());
        }
        let todo: Vec<String> = {
            let st = self.st();
            nodes
                .iter()
                .filter(|n| !st.timesync.contains_key(*n))
                .cloned()
                .collect()
        };
        let found = self.on_nodes(&todo, |_, r| {
            let was = clock::parse_timesync(&r.exec(&clock::timesync_state_cmd())?.stdout);
            for c in clock::stop_timesync_cmds() {
                // Absent daemons fail here; that is fine.
                let _ = r.exec(&c);
            }
            Ok(was)
        });
        // Not `on_nodes_ok`: a node where the probe worked must be recorded (its sync is being
        // stopped) even when another node failed, or the heal would not restart it.
        let mut errs = Vec::new();
        for (n, res) in found {
            match res {
                Ok(was) => {
                    self.st().timesync.insert(n, was);
                }
                Err(e) => errs.push(about(&n, &crate::error::one_line(&e))),
            }
        }
        if errs.is_empty() {
            Ok(())
        } else {
            Err(anyhow!("stopping time sync: {}", errs.join("; ")))
        }
    }

    fn set_clocks(&self, states: &[(String, ClockState)]) -> anyhow::Result<()> {
        let names: Vec<String> = states.iter().map(|(n, _)| n.clone()).collect();
        self.hold_clocks(&names)?;
        self.st().clock_used = true;
        let mode = self.clock_mode;
        let old = self.st().clocks.clone();
        let wanted: BTreeMap<String, ClockState> = states.iter().cloned().collect();
        self.on_nodes_ok(&names, |n, r| {
            let s = wanted[n];
            match mode {
                ClockMode::Faketime => clock::set_faketime(r, s)?,
                ClockMode::RealClock => {
                    let delta = (s.offset_ms - old[n].offset_ms).round() as i64;
                    if delta != 0 {
                        r.exec_ok(&clock::bump_real_cmd(delta))?;
                    }
                }
            }
            Ok(())
        })?;
        for (n, s) in states {
            self.st().clocks.insert(n.clone(), *s);
            self.st().clock_touched.insert(n.clone());
        }
        Ok(())
    }

    fn shift_clocks(&self, nodes: &[String], delta_ms: f64) -> anyhow::Result<()> {
        let new: Vec<(String, ClockState)> = nodes
            .iter()
            .map(|n| {
                let mut s = self.st().clocks[n];
                s.offset_ms += delta_ms;
                (n.clone(), s)
            })
            .collect();
        self.set_clocks(&new)
    }

    fn reset_clocks(&self) -> anyhow::Result<()> {
        {
            let mut st = self.st();
            st.clock_used |= !st.clock_touched.is_empty();
        }
        let mode = self.clock_mode;
        let names = self.names.clone();
        let touched = self.st().clock_touched.clone();
        self.on_nodes_ok(&names, |n, r| {
            match mode {
                // Idempotent and cheap: every node's file goes back to +0.
                ClockMode::Faketime => clock::set_faketime(r, ClockState::default())?,
                ClockMode::RealClock => {
                    if touched.contains(n) {
                        clock::set_real_from_control(r, 0.0)?;
                    }
                }
            }
            Ok(())
        })?;
        for s in self.st().clocks.values_mut() {
            *s = ClockState::default();
        }
        self.st().clock_touched.clear();
        Ok(())
    }

    /// Strobes run on the nodes themselves (one command per node, all in parallel), so the
    /// period is kept even when a round trip to the node takes longer than the period.
    fn strobe(&self, value: &Value) -> anyhow::Result<Value> {
        let nodes = self.targets(value)?;
        let num = |k: &str, d: f64| value.get(k).and_then(Value::as_f64).unwrap_or(d);
        let delta = num("delta_ms", 200.0).round() as i64;
        let period_ms = num("period_ms", 10.0).max(1.0) as u64;
        let duration_ms = num("duration_ms", 2000.0).max(0.0) as u64;
        let cycles = (duration_ms / (2 * period_ms)).max(1);
        let mode = self.clock_mode;
        self.hold_clocks(&nodes)?;
        let base = self.st().clocks.clone();
        self.st().clock_used = true;
        for n in &nodes {
            self.st().clock_touched.insert(n.clone());
        }
        let made = self.on_nodes_ok(&nodes, |n, r| {
            let cmd = match mode {
                ClockMode::Faketime => {
                    let off = base[n];
                    let mut on = off;
                    on.offset_ms += delta as f64;
                    clock::strobe_faketime_cmd(
                        &clock::rc_path(&r.node().workdir),
                        on,
                        off,
                        period_ms,
                        duration_ms,
                        cycles,
                    )
                }
                ClockMode::RealClock => {
                    clock::strobe_real_cmd(delta, period_ms, duration_ms, cycles)
                }
            };
            let out = r.exec_ok(&cmd)?;
            if mode == ClockMode::RealClock {
                // Each flip reads the clock and sets it in two processes and loses the time
                // between them (milliseconds on a slow machine): without this, a long strobe
                // leaves the clock behind. Set it back from the control node's clock.
                clock::set_real_from_control(r, base[n].offset_ms)?;
            }
            Ok(out.stdout.trim().parse::<u64>().unwrap_or(0))
        })?;
        let mut v = self.clock_value(nodes);
        // Flips each node really made: a slow node makes fewer within the duration.
        let flips: BTreeMap<String, u64> = made.into_iter().map(|(n, c)| (n, 2 * c)).collect();
        v["flips"] = json!(flips);
        v["delta_ms"] = json!(delta);
        v["period_ms"] = json!(period_ms);
        Ok(v)
    }

    fn clock_value(&self, nodes: Vec<String>) -> Value {
        let mut v = json!({
            "nodes": nodes,
            "offsets": self.st().clocks,
            "mode": self.clock_mode,
        });
        if self.clock_mode == ClockMode::RealClock {
            // What was keeping each node's clock in sync, stopped until the heal.
            v["time_sync_stopped"] = json!(self.st().timesync);
            // Each node's clock as measured against the control node's just now (half the
            // round trip corrected): what the nodes really show, beside what was asked.
            let names = self.names.clone();
            let measured: BTreeMap<String, Value> = self
                .on_nodes(&names, |_, r| Ok(clock::measure_real_offset_ms(r)?))
                .into_iter()
                .map(|(n, m)| {
                    let x = match m {
                        Ok(ms) => json!((ms * 10.0).round() / 10.0),
                        Err(e) => json!({ "error": crate::error::one_line(&e) }),
                    };
                    (n, x)
                })
                .collect();
            v["measured_offset_ms"] = json!(measured);
        }
        if !self.clock_effective() {
            v["effective"] = json!(false);
            v["note"] = json!(self.faketime_note());
        }
        v
    }

    /// Heals everything on every node: flushes the partition chain, removes netsplit's qdiscs,
    /// resumes (SIGCONT) the target everywhere, restarts what the nemesis killed, resets clocks.
    /// Idempotent and safe when nothing is active; keeps going past failures and reports them.
    pub fn heal_all(&self) -> HealReport {
        let mut rep = HealReport::default();
        let v6 = self.v6();
        let mode = self.clock_mode;
        let procs = self.procs.clone();
        let killed = self.st().killed.clone();
        let touched = self.st().clock_touched.clone();
        let timesync = self.st().timesync.clone();
        let names = self.names.clone();
        let results = self.on_nodes(&names, |n, r| {
            let mut ok = Vec::new();
            let mut errs = Vec::new();
            let mut step = |what: &str, res: anyhow::Result<()>| match res {
                Ok(()) => ok.push(format!("{n}: {what}")),
                Err(e) => errs.push((what.to_string(), crate::error::one_line(&e))),
            };
            step("partition", partition::heal(r, false).map_err(Into::into));
            if v6 {
                step(
                    "partition (ipv6)",
                    partition::heal(r, true).map_err(Into::into),
                );
            }
            step("packet", packet::heal(r).map_err(Into::into));
            step("packet (emulated)", nfq::heal(r, v6).map_err(Into::into));
            step("resume", procs.resume(r));
            if killed.contains(n) {
                step("start", procs.start(r));
            }
            let clock_res: Option<anyhow::Result<()>> = match mode {
                ClockMode::Faketime => {
                    Some(clock::set_faketime(r, ClockState::default()).map_err(Into::into))
                }
                ClockMode::RealClock if touched.contains(n) => {
                    Some(clock::set_real_from_control(r, 0.0).map_err(Into::into))
                }
                ClockMode::RealClock => None,
            };
            let clock_ok = clock_res.as_ref().is_none_or(|r| r.is_ok());
            if let Some(res) = clock_res {
                step("clock", res);
            }
            // Time sync back as it was found, once the clock is back.
            if let (true, Some(was)) = (clock_ok, timesync.get(n)) {
                let res = clock::restore_timesync_cmds(was)
                    .iter()
                    .try_for_each(|c| r.exec_ok(c).map(|_| ()));
                step("time sync", res.map_err(Into::into));
            }
            Ok((ok, errs))
        });
        for (n, res) in results {
            match res {
                Ok((ok, errs)) => {
                    let failed: BTreeSet<&str> = errs.iter().map(|(w, _)| w.as_str()).collect();
                    if !failed.contains("start") {
                        self.st().killed.remove(&n);
                    }
                    if !failed.contains("resume") {
                        self.st().paused.remove(&n);
                    }
                    if !failed.contains("clock") {
                        self.st().clock_touched.remove(&n);
                        self.st().clocks.insert(n.clone(), ClockState::default());
                        if !failed.contains("time sync") {
                            self.st().timesync.remove(&n);
                        }
                    }
                    rep.healed.extend(ok);
                    rep.errors
                        .extend(errs.iter().map(|(w, e)| about(&n, &format!("{w}: {e}"))));
                }
                Err(e) => rep.errors.push(about(&n, &crate::error::one_line(&e))),
            }
        }
        rep
    }

    /// Checks every node is clean: no rules in the partition chain, no netsplit or netem
    /// qdisc, no stopped target process, the target running (unless told not to expect it),
    /// and no clock offset left.
    pub fn verify_clean(&self) -> CleanReport {
        let v6 = self.v6();
        let mode = self.clock_mode;
        let procs = self.procs.clone();
        let expect_running = self.st().expect_running;
        let touched = self.st().clock_touched.clone();
        let held: BTreeSet<String> = self.st().timesync.keys().cloned().collect();
        let names = self.names.clone();
        let mut rep = CleanReport::default();
        for (n, res) in self.on_nodes(&names, |n, r| {
            let mut problems = Vec::new();
            let mut rules = partition::active_rules(r, false)?;
            if v6 {
                rules.extend(partition::active_rules(r, true)?);
            }
            if !rules.is_empty() {
                problems.push(format!(
                    "{n}: partition rules left in chain {}: {}",
                    partition::CHAIN,
                    rules.join(" | ")
                ));
            }
            let q = packet::leftovers(r)?;
            if !q.is_empty() {
                problems.push(format!("{n}: qdiscs left: {}", q.join(" | ")));
            }
            let e = nfq::leftovers(r, v6)?;
            if !e.is_empty() {
                problems.push(format!(
                    "{n}: packet emulation left ({}): {}",
                    nfq::CHAIN,
                    e.join(" | ")
                ));
            }
            let pids = procs.pids(r)?;
            if pids.is_empty() && expect_running {
                problems.push(format!("{n}: {} is not running", procs.name()));
            }
            for pid in pids {
                if let Some(s) = process::state_of(r, pid)? {
                    if process::is_stopped(s) {
                        problems.push(format!(
                            "{n}: {} process {pid} is stopped (state {s})",
                            procs.name()
                        ));
                    }
                }
            }
            match mode {
                ClockMode::Faketime => {
                    let out = r.exec(&Cmd::new("cat").arg(clock::rc_path(&r.node().workdir)))?;
                    let line = out.stdout.trim();
                    if out.status == 0 && !line.is_empty() && line != "+0.000s" {
                        problems.push(format!("{n}: clock offset {line:?} left in faketime file"));
                    }
                }
                ClockMode::RealClock => {
                    if touched.contains(n) {
                        problems.push(format!("{n}: real clock was moved and not restored"));
                    }
                    if held.contains(n) {
                        problems.push(format!("{n}: time sync was stopped and not restarted"));
                    }
                }
            }
            Ok(problems)
        }) {
            match res {
                Ok(p) => rep.problems.extend(p),
                Err(e) => rep.problems.push(format!(
                    "{n}: cannot verify: {}",
                    crate::error::one_line(&e)
                )),
            }
        }
        rep
    }

    /// End of a run: heal everything, then remove the chain and its jump from every node.
    pub fn teardown(&self) -> HealReport {
        let mut rep = self.heal_all();
        let v6 = self.v6();
        let names = self.names.clone();
        for (n, res) in self.on_nodes(&names, |_, r| {
            nfq::teardown(r, v6)?;
            partition::teardown(r, false)?;
            if v6 {
                partition::teardown(r, true)?;
            }
            Ok(())
        }) {
            if let Err(e) = res {
                rep.errors.push(format!(
                    "{n}: removing chain: {}",
                    crate::error::one_line(&e)
                ));
            }
        }
        rep
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::{Node, Output, RemoteError};
    use std::path::Path;

    /// A node that refuses every command and counts them: the skipped faults must not touch
    /// any node.
    struct Refuses {
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

    /// A target with no leader right now.
    struct Leaderless;

    impl Processes for Leaderless {
        fn name(&self) -> &str {
            "leaderless"
        }
        fn pause(&self, _: &dyn Remote) -> anyhow::Result<()> {
            bail!("pause reached a node")
        }
        fn resume(&self, _: &dyn Remote) -> anyhow::Result<()> {
            Ok(())
        }
        fn kill(&self, _: &dyn Remote) -> anyhow::Result<()> {
            bail!("kill reached a node")
        }
        fn stop(&self, _: &dyn Remote) -> anyhow::Result<()> {
            bail!("stop reached a node")
        }
        fn start(&self, _: &dyn Remote) -> anyhow::Result<()> {
            Ok(())
        }
        fn pids(&self, _: &dyn Remote) -> anyhow::Result<Vec<u32>> {
            Ok(vec![1])
        }
    }

    /// A machine that runs every command successfully and logs it; its clock probe says
    /// chrony and timedatectl's NTP were keeping time.
    struct Machine {
        node: Node,
        log: Mutex<Vec<String>>,
    }

    impl Remote for Machine {
        fn node(&self) -> &Node {
            &self.node
        }
        fn exec(&self, cmd: &Cmd) -> Result<Output, RemoteError> {
            let line = cmd.shell_line(true);
            self.log.lock().unwrap().push(line.clone());
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
        let m = Arc::new(Machine {
            node: Node {
                name: "n1".into(),
                host: "10.9.9.1".into(),
                ssh_port: 22,
                workdir: "/w/n1".into(),
            },
            log: Mutex::new(Vec::new()),
        });
        let f = Faults::new(FaultsConfig {
            remotes: vec![m.clone() as Arc<dyn Remote>],
            control_ip: None,
            processes: Arc::new(Leaderless),
            clock_mode: ClockMode::RealClock,
            seed: 1,
            netem_helper: None,
        })
        .unwrap();
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

        let v = f
            .invoke(
                f::BUMP_CLOCK,
                &json!({"targets": "n1", "delta_ms": 60_000.0}),
            )
            .unwrap();
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
        f.invoke(f::BUMP_CLOCK, &json!({"targets": "n1", "delta_ms": 1.0}))
            .unwrap();
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

    fn faults() -> (Faults, Vec<Arc<Refuses>>) {
        let nodes: Vec<Arc<Refuses>> = (1..=3)
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
        let f = Faults::new(FaultsConfig {
            remotes: nodes.iter().map(|n| n.clone() as Arc<dyn Remote>).collect(),
            control_ip: None,
            processes: Arc::new(Leaderless),
            clock_mode: ClockMode::Faketime,
            seed: 1,
            netem_helper: None,
        })
        .unwrap();
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
}

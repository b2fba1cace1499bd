//! What a fault family is: the [`Fault`] trait (start, stop, heal, verify-clean, teardown, how
//! it is labelled), its registration ([`FaultDef`]), and the context every family acts through
//! ([`Cx`]: the nodes, their addresses, the target's abilities, the seeded choices).
//!
//! A family is one module: its options (a `serde` struct under `nemesis.opts.<name>`), the
//! concrete operations it performs (`pause`/`resume`, `start-partition`/`stop-partition`, …),
//! how it draws a start from its options, how it undoes everything it may have left on a node —
//! from this run or from an earlier run that was killed — and how it proves a node clean. The
//! runner schedules `start-<family>` / `stop-<family>` without knowing any family; the history
//! records both, with the concrete operation and what it did (which nodes, which grudge) in the
//! completion, so the checkers and the report label fault windows by family name alone.

use crate::control::{Node, Remote};
use crate::db::Db;
use crate::generator::rng::Rng;
use crate::nemesis::select::{self, NodeSpec};
use crate::opts::Origins;
use anyhow::{anyhow, Result};
use serde_json::Value;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// An ability a fault family needs from the target ([`crate::db`]'s optional traits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ability {
    /// Nodes to act on (partitions, packets, clocks).
    Nodes,
    /// [`crate::db::Kill`].
    Kill,
    /// [`crate::db::Pause`].
    Pause,
    /// Its data directories on the fault file system ([`crate::db::Db::disk_dir`],
    /// `disk=fuse`), and [`crate::db::Kill`].
    Disk,
}

impl Ability {
    /// What the ability is, in words for error messages ("the target cannot …").
    pub fn name(self) -> &'static str {
        match self {
            Ability::Nodes => "nodes",
            Ability::Kill => "kill and restart its processes",
            Ability::Pause => "pause and resume its processes",
            Ability::Disk => "run on the fault file system (disk=fuse) and restart its processes",
        }
    }
}

/// A fault family. Every method that acts on nodes is blocking; the nemesis calls them off the
/// async threads, and on several nodes in parallel.
pub trait Fault: Send + Sync {
    /// The concrete operations it performs, starts first and the stop last (history `op`; also
    /// accepted as `f` by [`super::Nemesis::invoke`]).
    fn ops(&self) -> &[&'static str];
    /// Prepares every node once, when the family is scheduled (an iptables chain, …).
    fn setup(&self, _cx: &Cx) -> Result<()> {
        Ok(())
    }
    /// Draws a concrete start from the family's options: the operation and its request (the
    /// intent: `{"shape": "majority"}`, `{"targets": "one"}`; nodes are resolved when it acts).
    fn draw(&self, rng: &mut Rng) -> (String, Value);
    /// The operation that ends what a start began (`resume`). Default: the last of
    /// [`Fault::ops`].
    fn stop_op(&self) -> &'static str {
        self.ops().last().copied().unwrap_or_default()
    }
    /// Performs one of its operations and answers what it did (the history's completion value).
    fn invoke(&self, cx: &Cx, op: &str, request: &Value) -> Result<Value>;
    /// Undoes on one node whatever this family may have left — from this run, or from an
    /// earlier one that was killed before it could heal — best effort and idempotent. Returns
    /// the steps done (`partition`, `resumed`).
    fn heal(&self, cx: &Cx, node: &str, r: &dyn Remote) -> Result<Vec<String>>;
    /// What this family has left on one node, a sentence each (empty: clean).
    fn leftovers(&self, cx: &Cx, node: &str, r: &dyn Remote) -> Result<Vec<String>>;
    /// Removes what `setup` installed (after a heal).
    fn teardown(&self, _cx: &Cx, _node: &str, _r: &dyn Remote) -> Result<()> {
        Ok(())
    }
    /// Notes for the history at setup (`note` events): what the plan asked that these nodes or
    /// this target cannot do.
    fn notes(&self, _cx: &Cx) -> Vec<String> {
        Vec::new()
    }
    /// One line saying what a completed operation did, for results and reports
    /// (`majority: n1 n2 | n3 n4 n5`). Default: the nodes it touched.
    fn label(&self, op: &str, done: &Value) -> String {
        match listed_nodes(done) {
            Some(names) => format!("{op} {}", names.join(" ")),
            None => op.to_string(),
        }
    }
}

/// What building a family gets: its options (`nemesis.opts.<name>`, or null), where they came
/// from, and facts about the run it will act in.
pub struct FaultArgs<'a> {
    /// The family's options, `nemesis.opts.<name>` (null when the plan gives none).
    pub opts: &'a Value,
    /// Where each option came from (file and line), for error messages.
    pub origins: &'a Origins,
    /// The nodes are local namespace nodes (one shared kernel clock and filesystem).
    pub local_nodes: bool,
    /// The run's target database.
    pub target: &'a Arc<dyn Db>,
}

impl FaultArgs<'_> {
    /// The options, typed (null: the defaults). Errors name `nemesis.opts.<family>.<key>` and
    /// the line it came from.
    pub fn typed<T: serde::de::DeserializeOwned + Default>(&self, family: &str) -> Result<T> {
        if self.opts.is_null() {
            return Ok(T::default());
        }
        crate::opts::from_value(self.opts, &format!("nemesis.opts.{family}"), self.origins)
    }
}

type Build = dyn Fn(&FaultArgs) -> Result<Arc<dyn Fault>> + Send + Sync;

/// A registered fault family.
#[derive(Clone)]
pub struct FaultDef {
    /// The family's name, as plans and `--nemesis` write it.
    pub name: String,
    /// One line for `netsplit list` and error messages.
    pub about: String,
    /// What the target must be able to do; a planned fault whose need is not met is a plan
    /// error (exit 254) before anything starts.
    pub needs: Vec<Ability>,
    build: Arc<Build>,
}

impl FaultDef {
    /// A family named `name`, needing `needs` of the target, built by `build`.
    pub fn new(
        name: &str,
        about: &str,
        needs: &[Ability],
        build: impl Fn(&FaultArgs) -> Result<Arc<dyn Fault>> + Send + Sync + 'static,
    ) -> FaultDef {
        FaultDef {
            name: name.to_string(),
            about: about.to_string(),
            needs: needs.to_vec(),
            build: Arc::new(build),
        }
    }

    /// A family named `name` whose options are `O` (`nemesis.opts.<name>` as
    /// [`FaultArgs::typed`] reads them: the defaults when the plan gives none, errors naming the
    /// key and its line), built by `build` from them and the facts of the run.
    pub fn typed<O, F>(
        name: &str,
        about: &str,
        needs: &[Ability],
        build: impl Fn(O, &FaultArgs) -> Result<F> + Send + Sync + 'static,
    ) -> FaultDef
    where
        O: serde::de::DeserializeOwned + Default,
        F: Fault + 'static,
    {
        let family = name.to_string();
        FaultDef::new(name, about, needs, move |a| {
            Ok(Arc::new(build(a.typed(&family)?, a)?) as Arc<dyn Fault>)
        })
    }

    /// Builds the family from a plan's options; bad options are bad input.
    pub fn build(&self, args: &FaultArgs) -> Result<Arc<dyn Fault>> {
        (self.build)(args)
    }

    /// The first need `target` (with `nodes` nodes) does not meet.
    pub fn unmet(&self, target: &dyn Db, nodes: usize) -> Option<Ability> {
        self.needs.iter().copied().find(|a| match a {
            Ability::Nodes => nodes == 0,
            Ability::Kill => target.as_kill().is_none() || nodes == 0,
            Ability::Pause => target.as_pause().is_none() || nodes == 0,
            Ability::Disk => {
                target.as_kill().is_none() || !(0..nodes).any(|i| target.disk_dir(i).is_some())
            }
        })
    }
}

/// The context every family acts through.
pub struct Cx {
    /// Node names, in cluster order (`nodes[i]` is reached by `remotes[i]`).
    pub names: Vec<String>,
    /// The nodes, in the same order.
    pub nodes: Vec<Node>,
    /// The remotes that reach them, in the same order.
    pub remotes: Vec<Arc<dyn Remote>>,
    /// The address each node's peers see.
    pub ips: BTreeMap<String, IpAddr>,
    /// The control node's address as the nodes see it: never blocked by a partition.
    pub control_ip: Option<IpAddr>,
    /// The run's target database.
    pub target: Arc<dyn Db>,
    /// The nodes are local namespace nodes.
    pub local_nodes: bool,
    rng: Mutex<Rng>,
    /// Whether the target should be running on every node (true once it was set up).
    expect_running: Mutex<bool>,
    /// Nodes whose database a process fault holds down now — `killed` (not restarted yet) or
    /// `paused` — so that a kill never aims at a paused node nor a pause at a killed one.
    held: Mutex<BTreeMap<String, &'static str>>,
}

impl Cx {
    /// The context of a run. Resolves node addresses; touches no node.
    pub fn new(
        nodes: Vec<Node>,
        remotes: Vec<Arc<dyn Remote>>,
        control_ip: Option<IpAddr>,
        target: Arc<dyn Db>,
        local_nodes: bool,
        seed: u64,
    ) -> Result<Cx> {
        let mut names = Vec::new();
        let mut ips = BTreeMap::new();
        for n in &nodes {
            if ips.contains_key(&n.name) {
                return Err(anyhow!("node {} is listed twice", n.name));
            }
            let ip = resolve_ip(&n.host).map_err(|e| anyhow!("node {}: {e}", n.name))?;
            if Some(ip) == control_ip {
                return Err(anyhow!(
                    "node {} has the control node's address {ip}: partitions could cut the \
                     control node off",
                    n.name
                ));
            }
            ips.insert(n.name.clone(), ip);
            names.push(n.name.clone());
        }
        Ok(Cx {
            names,
            nodes,
            remotes,
            ips,
            control_ip,
            target,
            local_nodes,
            rng: Mutex::new(Rng::new(seed ^ 0x6e65_6d65_7369_7300)),
            expect_running: Mutex::new(false),
            held: Mutex::new(BTreeMap::new()),
        })
    }

    /// The seeded PRNG of the run's fault choices.
    pub fn rng(&self) -> std::sync::MutexGuard<'_, Rng> {
        self.rng.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether the target should be running on every node now (once it was set up, until
    /// it is torn down).
    pub fn expect_running(&self) -> bool {
        *self
            .expect_running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Sets what [`Cx::expect_running`] answers.
    pub fn set_expect_running(&self, yes: bool) {
        *self
            .expect_running
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = yes;
    }

    fn held(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, &'static str>> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The nodes a process fault aims at (`how`: `killed` or `paused`): [`Cx::targets`], where a
    /// node that the *other* process fault holds down is replaced by a free node (a pause is
    /// not aimed at a killed node: there is nothing to stop; a kill is not aimed at a paused
    /// one: the two would be read as one fault). Returns the nodes, now held as `how` until
    /// [`Cx::release`], and a note when some were moved or dropped. [`Skipped`] when no node
    /// is left.
    pub fn hold(
        &self,
        request: &Value,
        how: &'static str,
    ) -> Result<(Vec<String>, Option<String>)> {
        let wanted = self.targets(request)?;
        let mut held = self.held();
        let busy = |n: &String| held.get(n).is_some_and(|h| *h != how);
        let (mut nodes, clash): (Vec<String>, Vec<String>) =
            wanted.into_iter().partition(|n| !busy(n));
        if clash.is_empty() {
            for n in &nodes {
                held.insert(n.clone(), how);
            }
            return Ok((nodes, None));
        }
        let mut free: Vec<String> = self
            .names
            .iter()
            .filter(|n| !held.contains_key(*n) && !nodes.contains(n))
            .cloned()
            .collect();
        let mut moved = Vec::new();
        {
            let mut rng = self.rng();
            for _ in &clash {
                if free.is_empty() {
                    break;
                }
                let m = free.remove(rng.index(free.len()));
                moved.push(m.clone());
                nodes.push(m);
            }
        }
        let what = clash
            .iter()
            .map(|n| format!("{n} is {}", held[n]))
            .collect::<Vec<_>>()
            .join(", ");
        if nodes.is_empty() {
            return Err(Skipped(format!("{what}, and no other node is free")).into());
        }
        for n in &nodes {
            held.insert(n.clone(), how);
        }
        let note = if moved.is_empty() {
            format!("{what}: left out")
        } else {
            format!("{what}: aimed at {} instead", moved.join(", "))
        };
        Ok((nodes, Some(note)))
    }

    /// Whether a process fault holds this node's database down now (see [`Cx::hold`]).
    pub fn is_held(&self, node: &str) -> bool {
        self.held().contains_key(node)
    }

    /// Ends the hold of a process fault (`how`) on these nodes (see [`Cx::hold`]).
    pub fn release(&self, nodes: &[String], how: &'static str) {
        let mut held = self.held();
        for n in nodes {
            if held.get(n) == Some(&how) {
                held.remove(n);
            }
        }
    }

    /// The target's [`crate::db::Kill`] ability; an error naming the target when it has none.
    pub fn kill_ability(&self) -> Result<&dyn crate::db::Kill> {
        self.target
            .as_kill()
            .ok_or_else(|| anyhow!("target {} cannot kill its processes", self.target.name()))
    }

    /// The target's [`crate::db::Pause`] ability; an error naming the target when it has none.
    pub fn pause_ability(&self) -> Result<&dyn crate::db::Pause> {
        self.target
            .as_pause()
            .ok_or_else(|| anyhow!("target {} cannot pause its processes", self.target.name()))
    }

    /// Whether any node has an IPv6 address.
    pub fn v6(&self) -> bool {
        self.ips.values().any(IpAddr::is_ipv6)
    }

    /// The index of a node by name.
    pub fn index(&self, node: &str) -> Result<usize> {
        self.names
            .iter()
            .position(|n| n == node)
            .ok_or_else(|| anyhow!("unknown node {node}"))
    }

    /// Runs `f` on each named node in parallel; results in the order given.
    pub fn on_nodes<T: Send>(
        &self,
        nodes: &[String],
        f: impl Fn(&str, &dyn Remote) -> Result<T> + Sync,
    ) -> Vec<(String, Result<T>)> {
        crate::control::fan_out(nodes, |_, n| {
            let res = match self.index(n) {
                Ok(i) => f(n, self.remotes[i].as_ref()),
                Err(e) => Err(e),
            };
            (n.clone(), res)
        })
    }

    /// [`Cx::on_nodes`], failing with every node's error when any failed.
    pub fn on_nodes_ok<T: Send>(
        &self,
        nodes: &[String],
        f: impl Fn(&str, &dyn Remote) -> Result<T> + Sync,
    ) -> Result<Vec<(String, T)>> {
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

    /// The target's primaries among the nodes; [`Skipped`] when there are none right now.
    pub fn primaries(&self) -> Result<Vec<String>> {
        let reported = match self.target.as_primaries() {
            Some(p) => p.primaries().unwrap_or_default(),
            None => Vec::new(),
        };
        let ps = select::primaries_among(&self.names, &reported);
        if ps.is_empty() {
            return Err(Skipped(NO_PRIMARIES.into()).into());
        }
        Ok(ps)
    }

    /// The nodes a request aims at: `{"nodes": [names]}`, else `{"targets": spec}` (default
    /// `one`), resolved now (the leader may have moved since the start was drawn).
    pub fn targets(&self, request: &Value) -> Result<Vec<String>> {
        if let Some(names) = listed_nodes(request) {
            return select::select(&NodeSpec::Named(names), &self.names, &[], &mut self.rng())
                .map_err(|e| anyhow!(e));
        }
        let spec = match request.get("targets").and_then(Value::as_str) {
            Some(s) => NodeSpec::parse(s).map_err(|e| anyhow!(e))?,
            None => NodeSpec::One,
        };
        let primaries = if spec == NodeSpec::Primaries {
            self.primaries()?
        } else {
            Vec::new()
        };
        select::select(&spec, &self.names, &primaries, &mut self.rng()).map_err(|e| anyhow!(e))
    }
}

/// The node names a request or a completion lists under `nodes` (`{"nodes": ["n1", "n2"]}`),
/// if it has that list.
pub fn listed_nodes(v: &Value) -> Option<Vec<String>> {
    let a = v.get("nodes").and_then(Value::as_array)?;
    Some(
        a.iter()
            .filter_map(|x| x.as_str().map(String::from))
            .collect(),
    )
}

/// `node: text`, without repeating the node when the text already starts with it (remote
/// errors name their node).
pub fn about(node: &str, text: &str) -> String {
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
pub const NO_PRIMARIES: &str =
    "the target reports no primaries right now (no leader, or no answer)";

/// Resolves a node's address: an IP literal as is, else a DNS lookup on the control node.
pub fn resolve_ip(host: &str) -> Result<IpAddr> {
    use std::net::ToSocketAddrs;
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(ip);
    }
    (host, 0)
        .to_socket_addrs()
        .map_err(|e| anyhow!("resolving node address {host}: {e}"))?
        .map(|a| a.ip())
        .find(|ip| ip.is_ipv4())
        .ok_or_else(|| anyhow!("node address {host} resolves to no IPv4 address"))
}

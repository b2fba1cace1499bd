//! The `packet` family: delay, loss, duplication, reordering, corruption and rate limits on the
//! traffic between nodes — tc netem under netsplit's own root qdisc (`nemesis::packet`), or,
//! where the kernel lacks `sch_netem`, the userspace emulation through NFQUEUE
//! (`nemesis::nfq`, local nodes only). The completion says which way each node got it.
//!
//! Options (`nemesis.opts.packet`): `behaviours` to draw from (preset names such as `delay`,
//! `loss`, or full behaviours `{delay: {time_ms: 200}}`) and `targets` (whose outgoing traffic
//! they hit). Operations: `start-packet {"targets", "behaviour"}`, `stop-packet`.

use super::{Lock, Targets};
use crate::control::Remote;
use crate::generator::rng::Rng;
use crate::nemesis::fault::{listed_nodes, Ability, Cx, Fault, FaultDef};
use crate::nemesis::nfq;
use crate::nemesis::packet::{self, Behaviour};
use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

/// The operation that starts a packet behaviour on the targets.
pub const START: &str = "start-packet";
/// The operation that removes every packet behaviour from every node.
pub const STOP: &str = "stop-packet";

/// What tc answers when the kernel has no `sch_netem`.
const NETEM_UNKNOWN: &str = "Specified qdisc kind is unknown";

/// A packet behaviour in a plan: a preset name (`delay`) or a full behaviour.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum BehaviourSpec {
    /// A preset, by name (see `Behaviour::preset`).
    Named(String),
    /// A full behaviour; must not be empty.
    Custom(Behaviour),
}

impl BehaviourSpec {
    /// The behaviour this names; an unknown preset or an empty behaviour is an error message.
    pub fn resolve(&self) -> Result<Behaviour, String> {
        match self {
            BehaviourSpec::Named(n) => Behaviour::preset(n),
            BehaviourSpec::Custom(b) => {
                if b.is_empty() {
                    Err("packet behaviour: empty (give delay, loss, duplicate, reorder, corrupt or rate)".into())
                } else {
                    Ok(b.clone())
                }
            }
        }
    }
}

/// Packet options.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PacketOpts {
    /// The behaviours to draw from, one per fault.
    pub behaviours: Vec<BehaviourSpec>,
    /// Whose outgoing traffic a fault may hit: each fault draws one of these.
    pub targets: Targets,
}

impl Default for PacketOpts {
    fn default() -> Self {
        PacketOpts {
            behaviours: ["delay", "loss", "duplicate", "reorder", "corrupt", "rate"]
                .into_iter()
                .map(|s| BehaviourSpec::Named(s.into()))
                .collect(),
            targets: Targets::default(),
        }
    }
}

/// The family's name: `--nemesis packet`, `nemesis.opts.packet`.
pub const NAME: &str = "packet";

/// The registration.
pub fn def() -> FaultDef {
    let about = "packet delay, loss, duplication, reordering, corruption and rate limits (tc \
                 netem, or its userspace emulation)";
    FaultDef::typed(NAME, about, &[Ability::Nodes], |opts: PacketOpts, a| {
        let bad = |m: String| anyhow!(crate::error::BadInput(format!("nemesis.opts.{NAME}.{m}")));
        super::non_empty(NAME, "behaviours", &opts.behaviours)?;
        opts.targets.check(NAME)?;
        for b in &opts.behaviours {
            b.resolve()
                .and_then(|b| b.validate())
                .map_err(|e| bad(format!("behaviours: {e}")))?;
        }
        Ok(Packet {
            opts,
            // Local nodes share this machine's filesystem: the running binary is the helper
            // (`NETSPLIT_NETEM_HELPER` names another, e.g. for tests).
            helper: if a.local_nodes {
                std::env::var("NETSPLIT_NETEM_HELPER").ok().or_else(|| {
                    std::env::current_exe()
                        .ok()
                        .map(|p| p.to_string_lossy().into_owned())
                })
            } else {
                None
            },
            state: Lock::default(),
        })
    })
}

#[derive(Default)]
struct State {
    /// Each node's interface towards its peers, found once.
    devices: BTreeMap<String, String>,
    /// Nodes found to lack `sch_netem` (their packet faults go through NFQUEUE).
    no_netem: BTreeSet<String>,
}

struct Packet {
    opts: PacketOpts,
    /// The netsplit binary's path *on the nodes*, for the userspace emulation; `None`: netem
    /// only.
    helper: Option<String>,
    state: Lock<State>,
}

impl Packet {
    fn start(&self, cx: &Cx, request: &Value) -> Result<Value> {
        let behaviour = match request.get("behaviour") {
            Some(Value::String(s)) => Behaviour::preset(s).map_err(|e| anyhow!(e))?,
            Some(v @ Value::Object(_)) => serde_json::from_value::<Behaviour>(v.clone())
                .map_err(|e| anyhow!("start-packet behaviour: {e}"))?,
            _ => Behaviour::preset("delay").map_err(|e| anyhow!(e))?,
        };
        behaviour.validate().map_err(|e| anyhow!(e))?;
        if behaviour.is_empty() {
            bail!("start-packet: empty behaviour");
        }
        let nodes = cx.targets(request)?;
        for n in &nodes {
            if !self.state.lock().devices.contains_key(n) {
                let peer = cx
                    .names
                    .iter()
                    .find(|x| *x != n)
                    .map(|x| cx.ips[x])
                    .ok_or_else(|| anyhow!("packet faults need at least two nodes"))?;
                let dev = packet::device_towards(cx.remotes[cx.index(n)?].as_ref(), peer)?;
                self.state.lock().devices.insert(n.clone(), dev);
            }
        }
        let devices = self.state.lock().devices.clone();
        let no_netem = self.state.lock().no_netem.clone();
        let b = behaviour.clone();
        let seed = cx.rng().next_u64();
        let done = cx
            .on_nodes_ok(&nodes, |n, r| {
                let peers: Vec<IpAddr> = cx
                    .ips
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
                let Some(helper) = &self.helper else {
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
                self.state.lock().no_netem.insert(n.clone());
            }
            how.insert(n, kind);
        }
        // How each node got it: `netem`, `htb` (rate only) or `nfqueue` (emulated).
        Ok(json!({ "nodes": nodes, "behaviour": behaviour, "emulation": how }))
    }
}

impl Fault for Packet {
    fn ops(&self) -> &[&'static str] {
        &[START, STOP]
    }
    fn draw(&self, rng: &mut Rng) -> (String, Value) {
        let b = rng
            .pick(&self.opts.behaviours)
            .and_then(|b| b.resolve().ok())
            .unwrap_or_default();
        let t = self.opts.targets.draw(rng);
        (START.into(), json!({ "targets": t, "behaviour": b }))
    }
    fn invoke(&self, cx: &Cx, op: &str, request: &Value) -> Result<Value> {
        match op {
            START => self.start(cx, request),
            STOP => {
                let v6 = cx.v6();
                cx.on_nodes_ok(&cx.names, |_, r| {
                    packet::heal(r)?;
                    Ok(nfq::heal(r, v6)?)
                })?;
                Ok(json!({ "nodes": cx.names }))
            }
            other => bail!("packet: unknown operation {other:?}"),
        }
    }
    fn heal(&self, cx: &Cx, _node: &str, r: &dyn Remote) -> Result<Vec<String>> {
        packet::heal(r)?;
        nfq::heal(r, cx.v6())?;
        Ok(vec!["packet".into()])
    }
    fn leftovers(&self, cx: &Cx, node: &str, r: &dyn Remote) -> Result<Vec<String>> {
        let mut out = Vec::new();
        let q = packet::leftovers(r)?;
        if !q.is_empty() {
            out.push(format!("{node}: qdiscs left: {}", q.join(" | ")));
        }
        let e = nfq::leftovers(r, cx.v6())?;
        if !e.is_empty() {
            out.push(format!(
                "{node}: packet emulation left ({}): {}",
                nfq::CHAIN,
                e.join(" | ")
            ));
        }
        Ok(out)
    }
    fn teardown(&self, cx: &Cx, _node: &str, r: &dyn Remote) -> Result<()> {
        nfq::teardown(r, cx.v6())?;
        Ok(())
    }
    fn label(&self, op: &str, done: &Value) -> String {
        if op != START {
            return "heal packet".into();
        }
        let what: Vec<String> = done
            .get("behaviour")
            .and_then(Value::as_object)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        let nodes = listed_nodes(done).unwrap_or_default();
        format!("packet {} on {}", what.join("+"), nodes.join(" "))
    }
}

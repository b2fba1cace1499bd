//! The `partition` family: network partitions by iptables rules in netsplit's own chain
//! (`NETSPLIT`, jumped to first from INPUT; see `nemesis::partition`), in the shapes of
//! `nemesis::grudge`. The heal flushes only that chain; the control node's address is never
//! blocked (a rule that would is refused before any node is touched).
//!
//! Options (`nemesis.opts.partition`): `shapes` to draw from (default: one, majority,
//! majorities-ring, bridge, minority-third, asymmetric; add `primaries` for targets with a
//! leader). Operations: `start-partition {"shape": …}` or `{"grudge": {node: [dropped…]}}`,
//! `stop-partition`.

use crate::control::{Cmd, Remote};
use crate::generator::rng::Rng;
use crate::nemesis::fault::{Ability, Cx, Fault, FaultDef};
use crate::nemesis::grudge::{self, Grudge, Shape};
use crate::nemesis::partition;
use anyhow::{anyhow, bail, Result};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// The operation that cuts the network into a shape.
pub const START: &str = "start-partition";
/// The operation that heals every partition.
pub const STOP: &str = "stop-partition";

/// Partition options.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PartitionOpts {
    /// Shapes to draw from.
    pub shapes: Vec<Shape>,
}

impl Default for PartitionOpts {
    fn default() -> Self {
        PartitionOpts {
            shapes: vec![
                Shape::One,
                Shape::Majority,
                Shape::MajoritiesRing,
                Shape::Bridge,
                Shape::MinorityThird,
                Shape::Asymmetric,
            ],
        }
    }
}

/// The family's name: `--nemesis partition`, `nemesis.opts.partition`.
pub const NAME: &str = "partition";

/// The registration.
pub fn def() -> FaultDef {
    let about = "network partitions (iptables rules in netsplit's own chain)";
    FaultDef::typed(NAME, about, &[Ability::Nodes], |opts: PartitionOpts, _| {
        super::non_empty(NAME, "shapes", &opts.shapes)?;
        Ok(Partition { opts })
    })
}

struct Partition {
    opts: PartitionOpts,
}

impl Partition {
    fn heal_all_nodes(&self, cx: &Cx) -> Result<Vec<String>> {
        let v6 = cx.v6();
        cx.on_nodes_ok(&cx.names, |_, r| heal_node(r, v6))?;
        Ok(cx.names.clone())
    }

    fn start(&self, cx: &Cx, request: &Value) -> Result<Value> {
        let p = if let Some(g) = request.get("grudge") {
            let grudge: Grudge = serde_json::from_value(g.clone())
                .map_err(|e| anyhow!("start-partition grudge: {e}"))?;
            for (a, ds) in &grudge {
                for n in std::iter::once(a).chain(ds) {
                    if !cx.ips.contains_key(n) {
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
            let shape = Shape::parse(
                request
                    .get("shape")
                    .and_then(Value::as_str)
                    .unwrap_or("majority"),
            )
            .map_err(|e| anyhow!(e))?;
            let primaries = if shape == Shape::Primaries {
                cx.primaries()?
            } else {
                Vec::new()
            };
            grudge::partition(shape, &cx.names, &primaries, &mut cx.rng())
                .map_err(|e| anyhow!(e))?
        };
        // Every node's rules before touching any node: a refusal (the control node) leaves the
        // cluster as it was.
        let mut per_node: BTreeMap<String, Vec<Cmd>> = BTreeMap::new();
        for n in &cx.names {
            let cmds = partition::rules_for(&p.grudge, n, &cx.ips, cx.control_ip)
                .map_err(|e| anyhow!("{n}: {e}"))?;
            per_node.insert(n.clone(), cmds);
        }
        self.heal_all_nodes(cx)?;
        let v6 = cx.v6();
        let result = cx.on_nodes_ok(&cx.names, |n, r| {
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
            let _ = self.heal_all_nodes(cx);
            return Err(e.context("installing partition rules"));
        }
        let mut v = p.to_json();
        if request.get("grudge").is_some() {
            v["shape"] = json!("explicit");
        }
        v["nodes"] = json!(p.grudge.keys().collect::<Vec<_>>());
        Ok(v)
    }
}

fn heal_node(r: &dyn Remote, v6: bool) -> Result<()> {
    partition::heal(r, false)?;
    if v6 {
        partition::heal(r, true)?;
    }
    Ok(())
}

impl Fault for Partition {
    fn ops(&self) -> &[&'static str] {
        &[START, STOP]
    }
    fn setup(&self, cx: &Cx) -> Result<()> {
        let v6 = cx.v6();
        cx.on_nodes_ok(&cx.names, |_, r| {
            partition::ensure_chain(r, false)?;
            if v6 {
                partition::ensure_chain(r, true)?;
            }
            Ok(())
        })?;
        Ok(())
    }
    fn draw(&self, rng: &mut Rng) -> (String, Value) {
        let shape = rng
            .pick(&self.opts.shapes)
            .map(|s| s.name())
            .unwrap_or("one");
        (START.into(), json!({ "shape": shape }))
    }
    fn invoke(&self, cx: &Cx, op: &str, request: &Value) -> Result<Value> {
        match op {
            START => self.start(cx, request),
            STOP => Ok(json!({ "nodes": self.heal_all_nodes(cx)? })),
            other => bail!("{NAME}: unknown operation {other:?}"),
        }
    }
    fn heal(&self, cx: &Cx, _node: &str, r: &dyn Remote) -> Result<Vec<String>> {
        heal_node(r, cx.v6())?;
        Ok(vec!["partition".into()])
    }
    fn leftovers(&self, cx: &Cx, node: &str, r: &dyn Remote) -> Result<Vec<String>> {
        let mut rules = partition::active_rules(r, false)?;
        if cx.v6() {
            rules.extend(partition::active_rules(r, true)?);
        }
        Ok(if rules.is_empty() {
            Vec::new()
        } else {
            vec![format!(
                "{node}: partition rules left in chain {}: {}",
                partition::CHAIN,
                rules.join(" | ")
            )]
        })
    }
    fn teardown(&self, cx: &Cx, _node: &str, r: &dyn Remote) -> Result<()> {
        partition::teardown(r, false)?;
        if cx.v6() {
            partition::teardown(r, true)?;
        }
        Ok(())
    }
    fn label(&self, op: &str, done: &Value) -> String {
        let shape = done.get("shape").and_then(Value::as_str).unwrap_or("");
        match done.get("components").and_then(Value::as_array) {
            Some(cs) if op == START => {
                let sides: Vec<String> = cs
                    .iter()
                    .map(|c| {
                        c.as_array()
                            .map(|ns| {
                                ns.iter()
                                    .filter_map(Value::as_str)
                                    .collect::<Vec<_>>()
                                    .join(" ")
                            })
                            .unwrap_or_default()
                    })
                    .collect();
                format!("partition {shape}: {}", sides.join(" | "))
            }
            _ if op == START => format!("partition {shape}"),
            _ => "heal partition".into(),
        }
    }
}

//! The `kill` family: SIGKILL the database on some nodes (or stop it the database's own
//! graceful way), and start it again later — through the target's [`crate::db::Kill`]
//! ability.
//!
//! Options (`nemesis.opts.kill`): `targets` to draw from, `graceful: true` to make half of the
//! kills graceful stops. Operations: `kill`, `stop` (graceful), `start` (the nodes given, else
//! every node this run killed).
//!
//! Each kill leaves a mark on its node (`nemesis::marks`, `killed`: the target's name), so a
//! database killed by a harness that was itself killed before it restarted it is started again
//! by the next run's heal or `netsplit heal` (given that target), and reported by
//! `netsplit cluster status`.

use super::{Lock, Targets};
use crate::control::Remote;
use crate::generator::rng::Rng;
use crate::nemesis::fault::{listed_nodes, Ability, Cx, Fault, FaultDef};
use crate::nemesis::marks;
use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeSet;

/// SIGKILL the target on some nodes.
pub const KILL: &str = "kill";
/// Graceful stop (the target's own shutdown).
pub const STOP: &str = "stop";
/// Start after kill or stop.
pub const START: &str = "start";

/// Kill options.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KillOpts {
    /// Which nodes a fault may hit: each fault draws one of these.
    pub targets: Targets,
    /// Also use graceful stop/start (half of the kills, chosen at random).
    pub graceful: bool,
}

/// The family's name: `--nemesis kill`, `nemesis.opts.kill`.
pub const NAME: &str = "kill";

/// The registration.
pub fn def() -> FaultDef {
    let about = "SIGKILL (or graceful stop) of the database, and its restart";
    FaultDef::typed(NAME, about, &[Ability::Kill], |opts: KillOpts, _| {
        opts.targets.check(NAME)?;
        Ok(KillFault {
            opts,
            killed: Lock::default(),
        })
    })
}

struct KillFault {
    opts: KillOpts,
    /// Nodes this run killed and has not restarted.
    killed: Lock<BTreeSet<String>>,
}

/// How a kill holds its nodes ([`Cx::hold`]): no pause aims at them until they are started.
const HELD: &str = "killed";

/// The mark a kill leaves: the name of the target it killed.
const MARK: &str = "killed";

impl Fault for KillFault {
    fn ops(&self) -> &[&'static str] {
        &[KILL, STOP, START]
    }
    fn draw(&self, rng: &mut Rng) -> (String, Value) {
        let t = self.opts.targets.draw(rng);
        let graceful = self.opts.graceful && rng.index(2) == 0;
        let name = if graceful { STOP } else { KILL };
        (name.into(), json!({ "targets": t }))
    }
    fn invoke(&self, cx: &Cx, op: &str, request: &Value) -> Result<Value> {
        let k = cx.kill_ability()?;
        match op {
            KILL | STOP => {
                let (nodes, moved) = cx.hold(request, HELD)?;
                let graceful = op == STOP;
                self.killed.lock().extend(nodes.iter().cloned());
                cx.on_nodes_ok(&nodes, |n, r| {
                    let i = cx.index(n)?;
                    marks::write(r, MARK, cx.target.name())?;
                    if graceful {
                        k.stop(i)
                    } else {
                        k.kill(i)
                    }
                })?;
                let mut v = json!({ "nodes": nodes, "graceful": graceful });
                if let Some(m) = moved {
                    v["moved"] = json!(m);
                }
                Ok(v)
            }
            START => {
                let nodes: Vec<String> = listed_nodes(request)
                    .unwrap_or_else(|| self.killed.lock().iter().cloned().collect());
                cx.on_nodes_ok(&nodes, |n, r| {
                    k.start(cx.index(n)?)?;
                    Ok(marks::remove(r, MARK)?)
                })?;
                for n in &nodes {
                    self.killed.lock().remove(n);
                }
                cx.release(&nodes, HELD);
                Ok(json!({ "nodes": nodes }))
            }
            other => bail!("{NAME}: unknown operation {other:?}"),
        }
    }
    /// Starts again what this run killed, what a mark says an earlier (killed) run killed,
    /// and what the target itself records was killed and never started again
    /// ([`crate::db::Kill::left_killed`]: a deployed database, with how to start it).
    fn heal(&self, cx: &Cx, node: &str, r: &dyn Remote) -> Result<Vec<String>> {
        let mark = marks::read(r, MARK)?.map(|m| m.trim().to_string());
        let i = cx.index(node)?;
        let this_run = self.killed.lock().contains(node);
        let left = match cx.target.as_kill() {
            Some(k) if !this_run && mark.is_none() => k.left_killed(i)?,
            _ => false,
        };
        if !this_run && mark.is_none() && !left {
            return Ok(Vec::new());
        }
        let ours = mark.as_deref().is_none_or(|m| m == cx.target.name());
        let Some(k) = cx.target.as_kill().filter(|_| ours) else {
            bail!(
                "{} was killed by netsplit and not restarted; it is not this run's target \
                 ({}): run `netsplit heal` with that target",
                mark.as_deref().unwrap_or("a database"),
                cx.target.name()
            );
        };
        k.start(i)?;
        marks::remove(r, MARK)?;
        self.killed.lock().remove(node);
        cx.release(&[node.to_string()], HELD);
        Ok(vec![if this_run {
            "start".into()
        } else {
            "start (killed by an earlier run)".into()
        }])
    }
    fn leftovers(&self, cx: &Cx, node: &str, r: &dyn Remote) -> Result<Vec<String>> {
        let mark = marks::read(r, MARK)?.map(|m| m.trim().to_string());
        let k = cx.target.as_kill();
        let i = cx.index(node)?;
        if let Some(k) = k {
            if k.left_killed(i)? {
                return Ok(vec![format!(
                    "{node}: {} was killed by netsplit and not started again",
                    cx.target.name()
                )]);
            }
        }
        if let Some(m) = &mark {
            let back = m == cx.target.name() && k.map(|k| k.running(i)).transpose()? == Some(true);
            if !back {
                return Ok(vec![format!(
                    "{node}: {m} was killed by netsplit and is not running (not restarted)"
                )]);
            }
        }
        if let Some(k) = k {
            if cx.expect_running() && !k.running(i)? {
                return Ok(vec![format!("{node}: {} is not running", cx.target.name())]);
            }
        }
        Ok(Vec::new())
    }
}

//! The `pause` family: SIGSTOP the database's processes on some nodes, SIGCONT them later —
//! through the target's [`crate::target::Pause`] ability (by pid file for the built-ins).
//!
//! Options (`nemesis.opts.pause`): `targets` to draw from (one, minority, majority, all,
//! primaries, or node names). Operations: `pause {"targets"|"nodes"}`, `resume` (every node:
//! SIGCONT is harmless on a running process, so nothing stays stopped even if the bookkeeping
//! missed one).

use crate::control::Remote;
use crate::generator::rng::Rng;
use crate::nemesis::fault::{Ability, Cx, Fault, FaultArgs, FaultDef};
use crate::nemesis::process;
use crate::nemesis::select::NodeSpec;
use anyhow::{anyhow, bail, Result};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

pub const PAUSE: &str = "pause";
pub const RESUME: &str = "resume";

/// Which nodes' processes to stop.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PauseOpts {
    pub targets: Vec<NodeSpec>,
}

impl Default for PauseOpts {
    fn default() -> Self {
        PauseOpts {
            targets: super::default_targets(),
        }
    }
}

/// The registration.
pub fn def() -> FaultDef {
    FaultDef::new(
        "pause",
        "SIGSTOP and SIGCONT of the database's processes",
        &[Ability::Pause],
        |a: &FaultArgs| {
            let opts: PauseOpts = a.typed("pause")?;
            if opts.targets.is_empty() {
                bail!(crate::error::BadInput(
                    "nemesis.opts.pause.targets: the list is empty".into()
                ));
            }
            Ok(Arc::new(PauseFault {
                opts,
                paused: Mutex::new(BTreeSet::new()),
            }) as Arc<dyn Fault>)
        },
    )
}

pub struct PauseFault {
    opts: PauseOpts,
    paused: Mutex<BTreeSet<String>>,
}

fn ability(cx: &Cx) -> Result<&dyn crate::target::Pause> {
    cx.target
        .as_pause()
        .ok_or_else(|| anyhow!("target {} cannot pause its processes", cx.target.name()))
}

impl Fault for PauseFault {
    fn name(&self) -> &str {
        "pause"
    }
    fn ops(&self) -> &[&'static str] {
        &[PAUSE, RESUME]
    }
    fn draw(&self, rng: &mut Rng) -> (String, Value) {
        let t = rng.pick(&self.opts.targets).map(|t| t.to_string());
        (PAUSE.into(), json!({ "targets": t }))
    }
    fn stop_op(&self) -> &'static str {
        RESUME
    }
    fn invoke(&self, cx: &Cx, op: &str, request: &Value) -> Result<Value> {
        let p = ability(cx)?;
        match op {
            PAUSE => {
                let nodes = cx.targets(request)?;
                self.lock().extend(nodes.iter().cloned());
                cx.on_nodes_ok(&nodes, |n, _| p.pause(cx.index(n)?))?;
                Ok(json!({ "nodes": nodes }))
            }
            RESUME => {
                let was: Vec<String> = self.lock().iter().cloned().collect();
                cx.on_nodes_ok(&cx.names, |n, _| p.resume(cx.index(n)?))?;
                self.lock().clear();
                Ok(json!({ "nodes": was }))
            }
            other => bail!("pause: unknown operation {other:?}"),
        }
    }
    fn heal(&self, cx: &Cx, node: &str, _r: &dyn Remote) -> Result<Vec<String>> {
        let Some(p) = cx.target.as_pause() else {
            return Ok(Vec::new());
        };
        p.resume(cx.index(node)?)?;
        self.lock().remove(node);
        Ok(vec!["resume".into()])
    }
    fn leftovers(&self, cx: &Cx, node: &str, r: &dyn Remote) -> Result<Vec<String>> {
        let Some(p) = cx.target.as_pause() else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for pid in p.pids(cx.index(node)?)? {
            if let Some(s) = process::state_of(r, pid)? {
                if process::is_stopped(s) {
                    out.push(format!(
                        "{node}: {} process {pid} is stopped (state {s})",
                        cx.target.name()
                    ));
                }
            }
        }
        Ok(out)
    }
}

impl PauseFault {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeSet<String>> {
        self.paused.lock().unwrap_or_else(|e| e.into_inner())
    }
}

//! The `pause` family: SIGSTOP the database's processes on some nodes, SIGCONT them later —
//! through the target's [`crate::db::Pause`] ability (by pid file for the built-ins).
//!
//! Options (`nemesis.opts.pause`): `targets` to draw from (one, minority, majority, all,
//! primaries, or node names). Operations: `pause {"targets"|"nodes"}`, `resume` (every node:
//! SIGCONT is harmless on a running process, so nothing stays stopped even if the bookkeeping
//! missed one).
//!
//! Each pause leaves a mark on its node (`nemesis::marks`, `paused`: the pids it stopped), so
//! the processes of a harness killed mid-pause are resumed by the next run's heal, by
//! `netsplit heal`, and reported by `netsplit cluster status`, whatever target they ran.

use super::{Lock, Targets};
use crate::control::Remote;
use crate::generator::rng::Rng;
use crate::nemesis::fault::{Ability, Cx, Fault, FaultDef};
use crate::nemesis::{marks, process};
use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeSet;

/// SIGSTOP the database's processes on some nodes.
pub const PAUSE: &str = "pause";
/// SIGCONT the database's processes on every node.
pub const RESUME: &str = "resume";

/// Which nodes' processes to stop.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PauseOpts {
    /// Which nodes a fault may hit: each fault draws one of these.
    pub targets: Targets,
}

/// The family's name: `--nemesis pause`, `nemesis.opts.pause`.
pub const NAME: &str = "pause";

/// The registration.
pub fn def() -> FaultDef {
    let about = "SIGSTOP and SIGCONT of the database's processes";
    FaultDef::typed(NAME, about, &[Ability::Pause], |opts: PauseOpts, _| {
        opts.targets.check(NAME)?;
        Ok(PauseFault {
            opts,
            paused: Lock::default(),
        })
    })
}

struct PauseFault {
    opts: PauseOpts,
    paused: Lock<BTreeSet<String>>,
}

impl Fault for PauseFault {
    fn ops(&self) -> &[&'static str] {
        &[PAUSE, RESUME]
    }
    fn draw(&self, rng: &mut Rng) -> (String, Value) {
        (
            PAUSE.into(),
            json!({ "targets": self.opts.targets.draw(rng) }),
        )
    }
    fn invoke(&self, cx: &Cx, op: &str, request: &Value) -> Result<Value> {
        let p = cx.pause_ability()?;
        match op {
            PAUSE => {
                let (nodes, moved) = cx.hold(request, HELD)?;
                self.paused.lock().extend(nodes.iter().cloned());
                cx.on_nodes_ok(&nodes, |n, r| {
                    let i = cx.index(n)?;
                    // The mark first: a harness killed right after the SIGSTOP still left it.
                    let pids = p.pids(i)?;
                    let text: String = pids.iter().map(|p| format!("{p}\n")).collect();
                    marks::write(r, MARK, &text)?;
                    p.pause(i)
                })?;
                let mut v = json!({ "nodes": nodes });
                if let Some(m) = moved {
                    v["moved"] = json!(m);
                }
                Ok(v)
            }
            RESUME => {
                let was: Vec<String> = self.paused.lock().iter().cloned().collect();
                cx.on_nodes_ok(&cx.names, |n, r| {
                    p.resume(cx.index(n)?)?;
                    resume_marked(r)
                })?;
                self.paused.lock().clear();
                cx.release(&cx.names, HELD);
                Ok(json!({ "nodes": was }))
            }
            other => bail!("{NAME}: unknown operation {other:?}"),
        }
    }
    fn heal(&self, cx: &Cx, node: &str, r: &dyn Remote) -> Result<Vec<String>> {
        let mut steps = Vec::new();
        if let Some(p) = cx.target.as_pause() {
            p.resume(cx.index(node)?)?;
            steps.push("resume".to_string());
        }
        let marked = resume_marked(r)?;
        if !marked.is_empty() {
            steps.push(format!(
                "resumed what an earlier run stopped: pids {marked:?}"
            ));
        }
        self.paused.lock().remove(node);
        cx.release(&[node.to_string()], HELD);
        Ok(steps)
    }
    fn leftovers(&self, cx: &Cx, node: &str, r: &dyn Remote) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for pid in marked_pids(r)? {
            if process::state_of(r, pid)?.is_some_and(process::is_stopped) {
                out.push(format!(
                    "{node}: process {pid}, paused by netsplit, is still stopped"
                ));
            }
        }
        let Some(p) = cx.target.as_pause() else {
            return Ok(out);
        };
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

/// How a pause holds its nodes ([`Cx::hold`]): no kill aims at them until they are resumed.
const HELD: &str = "paused";

/// The mark a pause leaves: the pids it stopped, one per line.
const MARK: &str = "paused";

fn marked_pids(r: &dyn Remote) -> Result<Vec<u32>> {
    Ok(marks::read(r, MARK)?
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect())
}

/// SIGCONTs every pid the mark names (a gone or running one is fine), then removes the mark.
/// Returns the pids that were stopped.
fn resume_marked(r: &dyn Remote) -> Result<Vec<u32>> {
    let mut was = Vec::new();
    for pid in marked_pids(r)? {
        if process::state_of(r, pid)?.is_some_and(process::is_stopped) {
            was.push(pid);
        }
        let _ = r.exec(
            &crate::control::Cmd::new("kill")
                .args(["-CONT", &pid.to_string()])
                .sudo()
                .timeout(std::time::Duration::from_secs(20)),
        )?;
    }
    marks::remove(r, MARK)?;
    Ok(was)
}

//! The disk fault families, one per fault: `lose-unsynced`, `torn-write`, `error`, `slow`,
//! `full`, `corrupt` (the list [`FAULTS`]). They act through the fault file system that the
//! target runs on with `disk=fuse` (`crate::db::disk`, `nemesis::diskfs`), which any of them
//! in a plan implies.
//!
//! - `lose-unsynced` — a crash of the node: the database is SIGKILLed, then everything the
//!   file system holds that no fsync covered is dropped; the database starts again at the
//!   fault's stop (operations `lose-unsynced`, `restart-after-loss`).
//! - `torn-write` — the same crash, but a prefix (within its first page) of each file's last
//!   unsynced write reaches the disk (`torn-write`, `restart-after-tear`).
//! - `error` — matching operations fail with EIO (`nemesis.opts.error`: `ops`, `fraction`,
//!   `path`), until `end-error`.
//! - `slow` — every matching operation waits `delay_ms` first (`end-slow`).
//! - `full` — writes that grow a file, and creates, fail with ENOSPC (`end-full`).
//! - `corrupt` — a `fraction` of reads (of `path`) return one flipped bit (`end-corrupt`).
//!
//! Options, each under `nemesis.opts.<fault>`: `targets` (node choices, as the other
//! families), and the fault's own keys above.
//!
//! Crashes leave the `killed` mark (shared with the `kill` family, which restarts the database
//! on its heal just as this one does). A fault file system that an earlier, killed run left
//! mounted is found from the node's mount table and the daemon's pid file: `lose-unsynced`
//! (the first family, which does it for all six) writes back what it holds, kills the database
//! on it, unmounts it and starts the database again on its own data.

use super::{Lock, Targets};
use crate::control::Remote;
use crate::db::disk;
use crate::generator::rng::Rng;
use crate::nemesis::fault::{listed_nodes, Ability, Cx, Fault, FaultDef};
use crate::nemesis::marks;
use anyhow::{anyhow, bail, Result};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

/// The disk faults, in registration (and heal) order.
pub const FAULTS: &[&str] = &[
    "lose-unsynced",
    "torn-write",
    "error",
    "slow",
    "full",
    "corrupt",
];

/// How a crash holds its nodes ([`Cx::hold`]), as the `kill` family does.
const HELD: &str = "killed";
/// The mark a crash leaves (the `kill` family's).
const MARK: &str = "killed";

/// Options of every disk fault (the keys a fault does not use are refused).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DiskOpts {
    /// The node choices each start draws from (default one, a minority, a majority, all).
    pub targets: Targets,
    /// `error`: which operations fail (read, write, fsync, open, meta).
    pub ops: Option<Vec<crate::nemesis::disk::IoOp>>,
    /// `error`, `corrupt`: the share of matching operations hit.
    pub fraction: Option<f64>,
    /// `error`, `corrupt`: only paths containing this (relative to the data directory).
    pub path: Option<String>,
    /// `slow`: the delay of each operation.
    pub delay_ms: Option<u64>,
}

/// Every disk fault's registration, in [`FAULTS`] order.
pub fn defs() -> Vec<FaultDef> {
    FAULTS
        .iter()
        .map(|&name| {
            let about = match name {
                "lose-unsynced" => "crash: kill the database and drop every write no fsync covered",
                "torn-write" => "crash with the last unsynced write of each file torn",
                "error" => "file operations fail with EIO",
                "slow" => "every file operation delayed",
                "full" => "writes fail with ENOSPC",
                _ => "reads return flipped bits",
            };
            FaultDef::typed(name, about, &[Ability::Disk], move |opts: DiskOpts, _| {
                check(name, &opts)?;
                Ok(DiskFault {
                    name,
                    opts,
                    nodes: Lock::default(),
                    crashed: Lock::default(),
                })
            })
        })
        .collect()
}

fn check(name: &str, o: &DiskOpts) -> Result<()> {
    let bad = |k: &str, why: &str| {
        Err(anyhow!(crate::error::BadInput(format!(
            "nemesis.opts.{name}.{k}: {why}"
        ))))
    };
    o.targets.check(name)?;
    let uses = |k: &str| match k {
        "ops" => name == "error",
        "fraction" | "path" => name == "error" || name == "corrupt",
        "delay_ms" => name == "slow",
        _ => true,
    };
    for (k, given) in [
        ("ops", o.ops.is_some()),
        ("fraction", o.fraction.is_some()),
        ("path", o.path.is_some()),
        ("delay_ms", o.delay_ms.is_some()),
    ] {
        if given && !uses(k) {
            return bad(k, &format!("{name} faults take no {k}"));
        }
    }
    if let Some(f) = o.fraction {
        if !(f > 0.0 && f <= 1.0) {
            return bad("fraction", "must be above 0 and at most 1");
        }
    }
    if o.ops.as_ref().is_some_and(Vec::is_empty) {
        return bad("ops", "the list is empty");
    }
    Ok(())
}

/// One fault of the disk family (`lose-unsynced`, `torn-write`, `error`, `slow`, `full`, `corrupt`), with its options and the nodes it holds.
pub struct DiskFault {
    name: &'static str,
    opts: DiskOpts,
    /// Nodes this run crashed and has not restarted (crashes), or where the fault is in force.
    nodes: Lock<BTreeSet<String>>,
    /// Nodes this run crashed at least once (crashes): a database that is not running there
    /// after its restart could not recover what the crash left.
    crashed: Lock<BTreeSet<String>>,
}

impl DiskFault {
    fn crash(&self) -> bool {
        matches!(self.name, "lose-unsynced" | "torn-write")
    }

    /// The command that starts this fault in the file system.
    fn command(&self) -> Value {
        let o = &self.opts;
        match self.name {
            "error" => json!({
                "cmd": "error",
                "ops": o.ops.clone().unwrap_or_else(|| crate::nemesis::disk::IoOp::ALL.to_vec()),
                "fraction": o.fraction.unwrap_or(1.0),
                "path": o.path,
            }),
            "slow" => json!({"cmd": "slow", "delay_ms": o.delay_ms.unwrap_or(50)}),
            "full" => json!({"cmd": "full"}),
            "corrupt" => json!({
                "cmd": "corrupt",
                "fraction": o.fraction.unwrap_or(0.1),
                "path": o.path,
            }),
            _ => json!({"cmd": "lose-unsynced", "torn": self.name == "torn-write"}),
        }
    }

    fn start_op(&self) -> &'static str {
        self.name
    }

    /// After an `error`, `slow`, `full` or `corrupt` fault ends on `node`: a database that
    /// exited under it (a PANIC on EIO, a crash on ENOSPC) is started again, as an operator
    /// would once the disk is back; true when it was. Not when a process fault (`kill`,
    /// `pause`, a crash) holds the node: that fault starts it.
    fn restart_if_gone(&self, cx: &Cx, node: &str) -> Result<bool> {
        let Some(k) = cx.target.as_kill() else {
            return Ok(false);
        };
        let i = cx.index(node)?;
        if !cx.expect_running() || cx.is_held(node) || k.running(i)? {
            return Ok(false);
        }
        k.start(i)?;
        Ok(true)
    }

    /// Heals a file system that is not this run's: writes back what it holds, kills the
    /// database on it (when it is the target's), unmounts it and starts the database again.
    fn heal_foreign(&self, cx: &Cx, node: &str, r: &dyn Remote, dir: &str) -> Result<String> {
        let i = cx.index(node)?;
        if disk::running(r)? {
            let _ = disk::ctl(r, &json!({"cmd": "clear"}));
        }
        let ours = cx.target.data_dir(i).as_deref() == Some(dir);
        let k = cx.target.as_kill().filter(|_| ours);
        let was_running = match k {
            Some(k) => k.running(i)?,
            None => false,
        };
        if !ours {
            bail!(
                "a fault file system an earlier run left is mounted over {dir}, which is not \
                 {}'s data directory: run `netsplit heal` with the target that ran there",
                cx.target.name()
            );
        }
        if let Some(k) = k {
            if was_running {
                k.kill(i)?;
            }
        }
        disk::unmount(r, dir, true)?;
        if let Some(k) = k {
            if was_running || marks::read(r, MARK)?.is_some() {
                k.start(i)?;
                marks::remove(r, MARK)?;
            }
        }
        Ok(format!(
            "unmounted the fault file system over {dir} (left by an earlier run){}",
            if was_running {
                "; database started on its own data"
            } else {
                ""
            }
        ))
    }
}

impl Fault for DiskFault {
    fn ops(&self) -> &[&'static str] {
        match self.name {
            "lose-unsynced" => &["lose-unsynced", "restart-after-loss"],
            "torn-write" => &["torn-write", "restart-after-tear"],
            "error" => &["error", "end-error"],
            "slow" => &["slow", "end-slow"],
            "full" => &["full", "end-full"],
            _ => &["corrupt", "end-corrupt"],
        }
    }
    fn draw(&self, rng: &mut Rng) -> (String, Value) {
        let t = self.opts.targets.draw(rng);
        (self.start_op().into(), json!({ "targets": t }))
    }
    fn invoke(&self, cx: &Cx, op: &str, request: &Value) -> Result<Value> {
        let k = cx.kill_ability()?;
        let dir_of = |n: &str| -> Result<String> {
            cx.target.disk_dir(cx.index(n)?).ok_or_else(|| {
                anyhow!(
                    "{n}: {} does not run on the fault file system",
                    cx.target.name()
                )
            })
        };
        if op == self.ops()[0] {
            if self.crash() {
                let (nodes, moved) = cx.hold(request, HELD)?;
                self.nodes.lock().extend(nodes.iter().cloned());
                self.crashed.lock().extend(nodes.iter().cloned());
                let lost = cx.on_nodes_ok(&nodes, |n, r| {
                    dir_of(n)?;
                    marks::write(r, MARK, cx.target.name())?;
                    k.kill(cx.index(n)?)?;
                    let mut a = disk::ctl(r, &self.command())?;
                    if let Value::Object(m) = &mut a {
                        m.remove("ok");
                    }
                    Ok(a)
                })?;
                let mut v = json!({
                    "nodes": nodes,
                    "lost": lost.into_iter().collect::<BTreeMap<String, Value>>(),
                });
                if let Some(m) = moved {
                    v["moved"] = json!(m);
                }
                return Ok(v);
            }
            let nodes = cx.targets(request)?;
            self.nodes.lock().extend(nodes.iter().cloned());
            let cmd = self.command();
            cx.on_nodes_ok(&nodes, |n, r| {
                dir_of(n)?;
                disk::ctl(r, &cmd)
            })?;
            return Ok(json!({ "nodes": nodes, "fault": cmd }));
        }
        if op == self.ops()[1] {
            let nodes: Vec<String> = listed_nodes(request)
                .unwrap_or_else(|| self.nodes.lock().iter().cloned().collect());
            if self.crash() {
                cx.on_nodes_ok(&nodes, |n, r| {
                    k.start(cx.index(n)?)?;
                    Ok(marks::remove(r, MARK)?)
                })?;
                cx.release(&nodes, HELD);
            } else {
                let restarted = cx.on_nodes_ok(&nodes, |n, r| {
                    disk::ctl(r, &json!({"cmd": "end", "fault": self.name}))?;
                    self.restart_if_gone(cx, n)
                })?;
                let restarted: Vec<String> = restarted
                    .into_iter()
                    .filter_map(|(n, yes)| yes.then_some(n))
                    .collect();
                for n in &nodes {
                    self.nodes.lock().remove(n);
                }
                if !restarted.is_empty() {
                    return Ok(json!({ "nodes": nodes, "restarted": restarted }));
                }
            }
            for n in &nodes {
                self.nodes.lock().remove(n);
            }
            return Ok(json!({ "nodes": nodes }));
        }
        bail!("{}: unknown operation {op:?}", self.name)
    }
    fn heal(&self, cx: &Cx, node: &str, r: &dyn Remote) -> Result<Vec<String>> {
        let i = cx.index(node)?;
        let mut steps = Vec::new();
        if self.name == FAULTS[0] {
            let mine = cx.target.disk_dir(i);
            for dir in disk::mounted(r)? {
                if Some(&dir) != mine.as_ref() {
                    steps.push(self.heal_foreign(cx, node, r, &dir)?);
                }
            }
        }
        if self.crash() {
            if self.nodes.lock().contains(node) {
                if let Some(k) = cx.target.as_kill() {
                    k.start(i)?;
                }
                marks::remove(r, MARK)?;
                self.nodes.lock().remove(node);
                cx.release(&[node.to_string()], HELD);
                steps.push(format!("{}: started", self.name));
            }
        } else if disk::running(r)? {
            disk::ctl(r, &json!({"cmd": "end", "fault": self.name}))?;
            if self.nodes.lock().remove(node) {
                steps.push(format!("{} ended", self.name));
                if self.restart_if_gone(cx, node)? {
                    steps.push(format!(
                        "{} had exited under {}: started",
                        cx.target.name(),
                        self.name
                    ));
                }
            }
        }
        Ok(steps)
    }
    fn leftovers(&self, cx: &Cx, node: &str, r: &dyn Remote) -> Result<Vec<String>> {
        let i = cx.index(node)?;
        let mut out = Vec::new();
        if self.name == FAULTS[0] {
            let mine = cx.target.disk_dir(i);
            let dirs = disk::mounted(r)?;
            for d in &dirs {
                if Some(d) != mine.as_ref() {
                    out.push(format!(
                        "{node}: a fault file system is mounted over {d} (left by an earlier run)"
                    ));
                }
            }
            if dirs.is_empty() && mine.is_none() && disk::running(r)? {
                out.push(format!(
                    "{node}: a fault file system daemon runs (pid file {})",
                    disk::paths(r).0
                ));
            }
        }
        if !self.crash() && disk::running(r)? {
            let st = disk::ctl(r, &json!({"cmd": "status"}))?;
            let on = st["faults"]
                .as_array()
                .is_some_and(|f| f.iter().any(|x| x == self.name));
            if on {
                out.push(format!("{node}: disk fault {} still in force", self.name));
            }
        }
        let crashed_here = self.crashed.lock().contains(node);
        if self.crash() && crashed_here && !self.nodes.lock().contains(node) && cx.expect_running()
        {
            if let Some(k) = cx.target.as_kill() {
                if !k.running(i)? {
                    out.push(format!(
                        "{node}: {} did not start again after {} crashed it: it could not \
                         recover what the crash left of its data directory (its log says why)",
                        cx.target.name(),
                        self.name
                    ));
                }
            }
        }
        if self.crash() && self.nodes.lock().contains(node) {
            out.push(format!(
                "{node}: {} crashed by {} and not started again",
                cx.target.name(),
                self.name
            ));
        }
        Ok(out)
    }
    fn label(&self, op: &str, done: &Value) -> String {
        let nodes = listed_nodes(done).unwrap_or_default();
        let lost: u64 = done
            .get("lost")
            .and_then(Value::as_object)
            .map(|m| m.values().filter_map(|v| v["lost_bytes"].as_u64()).sum())
            .unwrap_or(0);
        if done.get("lost").is_some() {
            format!("{op} {} ({lost} unsynced bytes dropped)", nodes.join(" "))
        } else {
            format!("{op} {}", nodes.join(" "))
        }
    }
}

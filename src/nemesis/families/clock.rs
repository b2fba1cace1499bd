//! The `clock` family: bump, strobe, drift and reset nodes' clocks.
//!
//! Local namespace nodes share one kernel clock, so there it rewrites each node's libfaketime
//! offset file (`faketime` mode; targets start their processes under libfaketime, see
//! `crate::control::faketime`); a target whose binaries ignore libfaketime (Go: etcd) says so
//! ([`crate::db::Clock`]) and every clock operation is recorded as without effect, with a
//! note. On VMs and machines it sets the real clock (`real-clock` mode): the first clock fault on
//! a node stops what keeps its time in sync, and the heal sets the clock back from the control
//! node's and restarts exactly what was stopped. Command builders: `nemesis::clock`.
//!
//! On real clocks each node gets marks (`nemesis::marks`): `clock-moved` before its clock is
//! first moved, `time-sync` (what was keeping time) before that is stopped — so a harness killed
//! mid-fault leaves enough on the node for the next heal to set the clock back and restart time
//! sync.
//!
//! Options (`nemesis.opts.clock`): `targets`, `bump_ms` (offsets to draw), `strobe`
//! (`delta_ms`, `period_ms`, `duration_ms`), `drift` (rates; faketime only — dropped with a note
//! on real clocks), `mode` (`faketime` | `real-clock`; default by node kind). Operations:
//! `bump-clock`, `strobe-clock`, `drift-clock`, `reset-clock`.

use super::{Lock, Targets};
use crate::control::{Cmd, Remote};
use crate::generator::rng::Rng;
use crate::nemesis::clock::{self, ClockMode, ClockState};
use crate::nemesis::fault::{about, listed_nodes, Ability, Cx, Fault, FaultDef};
use crate::nemesis::marks;
use crate::nemesis::select::NodeSpec;
use anyhow::{anyhow, bail, Result};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

/// The operation that moves the targets' clocks by an offset.
pub const BUMP: &str = "bump-clock";
/// The operation that strobes the targets' clocks (see [`StrobeOpts`]).
pub const STROBE: &str = "strobe-clock";
/// The operation that makes the targets' clocks run at a rate (libfaketime nodes only).
pub const DRIFT: &str = "drift-clock";
/// The operation that puts every node's clock offset back to zero.
pub const RESET: &str = "reset-clock";

/// A strobe: alternate between `+delta_ms` and the previous offset every `period_ms`, for
/// `duration_ms`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StrobeOpts {
    /// The offset strobed to, milliseconds.
    pub delta_ms: i64,
    /// Time between switches, milliseconds.
    pub period_ms: u64,
    /// How long the strobe lasts, milliseconds.
    pub duration_ms: u64,
}

impl Default for StrobeOpts {
    fn default() -> Self {
        StrobeOpts {
            delta_ms: 200,
            period_ms: 10,
            duration_ms: 2000,
        }
    }
}

/// Clock options.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClockOpts {
    /// Which nodes a fault may hit: each fault draws one of these.
    pub targets: Targets,
    /// Offsets a bump draws from, milliseconds (both signs: ms to minutes).
    pub bump_ms: Vec<i64>,
    /// What a strobe does.
    pub strobe: StrobeOpts,
    /// Drift rates to draw from (empty: no drift). libfaketime nodes only.
    pub drift: Vec<f64>,
    /// Force a mode; by default faketime for local nodes and the real clock for machines.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<ClockMode>,
}

impl Default for ClockOpts {
    fn default() -> Self {
        ClockOpts {
            targets: Targets(vec![NodeSpec::One, NodeSpec::Minority, NodeSpec::Primaries]),
            bump_ms: vec![-262_144, -2_500, -100, 100, 2_500, 262_144],
            strobe: StrobeOpts::default(),
            drift: Vec::new(),
            mode: None,
        }
    }
}

impl ClockOpts {
    fn validate(&self) -> Result<(), String> {
        for r in &self.drift {
            if !(r.is_finite() && *r > 0.0 && *r < 10.0) {
                return Err(format!("drift: rate {r}: expected a factor in (0, 10)"));
            }
        }
        if self.strobe.period_ms == 0 {
            return Err("strobe.period_ms: must be positive".into());
        }
        if self.strobe.duration_ms > 3_600_000 {
            return Err("strobe.duration_ms: at most an hour".into());
        }
        if self.targets.0.is_empty() {
            return Err("targets: the list is empty".into());
        }
        if self
            .bump_ms
            .iter()
            .any(|b| b.unsigned_abs() > 10 * 365 * 86_400_000)
        {
            return Err("bump_ms: at most ten years either way".into());
        }
        Ok(())
    }
}

/// The family's name: `--nemesis clock`, `nemesis.opts.clock`.
pub const NAME: &str = "clock";

/// The registration.
pub fn def() -> FaultDef {
    let about =
        "clock bumps, strobes and drift (libfaketime on local nodes, the real clock on machines)";
    FaultDef::typed(NAME, about, &[Ability::Nodes], |mut opts: ClockOpts, a| {
        opts.validate()
            .map_err(|e| anyhow!(crate::error::BadInput(format!("nemesis.opts.{NAME}.{e}"))))?;
        let mode = opts.mode.unwrap_or(if a.local_nodes {
            ClockMode::Faketime
        } else {
            ClockMode::RealClock
        });
        let mut notes = Vec::new();
        // A real clock can only be bumped and strobed.
        if mode == ClockMode::RealClock && !opts.drift.is_empty() {
            notes.push(format!(
                "clock drift {:?} dropped: drift needs libfaketime (local nodes); real clocks \
                     are bumped and strobed only",
                opts.drift
            ));
            opts.drift.clear();
        }
        let effective =
            mode == ClockMode::RealClock || a.target.clock() == crate::db::Clock::Faketime;
        Ok(ClockFault {
            opts,
            mode,
            effective,
            notes,
            state: Lock::default(),
        })
    })
}

#[derive(Default)]
struct State {
    clocks: BTreeMap<String, ClockState>,
    /// Nodes whose clock this run moved.
    touched: BTreeSet<String>,
    /// Real-clock nodes whose time sync this run stopped, with what to restart at the heal.
    timesync: BTreeMap<String, clock::TimeSync>,
}

/// The marks a real-clock fault leaves (see the module docs).
const MOVED_MARK: &str = "clock-moved";
const TIME_SYNC_MARK: &str = "time-sync";

struct ClockFault {
    opts: ClockOpts,
    mode: ClockMode,
    /// False when clock faults cannot reach the target's processes (faketime mode with a
    /// target that ignores libfaketime).
    effective: bool,
    notes: Vec<String>,
    state: Lock<State>,
}

impl ClockFault {
    fn faketime_note(&self, cx: &Cx) -> String {
        format!(
            "clock faults had no effect on {}: its binaries ignore libfaketime (Go and static \
             binaries read the clock with their own system calls); run on VMs with the real-clock \
             mode to test clocks",
            cx.target.name()
        )
    }

    fn clock_of(&self, node: &str) -> ClockState {
        self.state
            .lock()
            .clocks
            .get(node)
            .copied()
            .unwrap_or_default()
    }

    /// Before the first real-clock fault on a node: notes what synchronises its clock
    /// (timedatectl's NTP switch, active chrony/ntp/… units) and stops it, so the fault holds;
    /// the heal restarts exactly that. Faketime nodes: nothing to do.
    fn hold_clocks(&self, cx: &Cx, nodes: &[String]) -> Result<()> {
        if self.mode != ClockMode::RealClock {
            return Ok(());
        }
        let todo: Vec<String> = {
            let st = self.state.lock();
            nodes
                .iter()
                .filter(|n| !st.timesync.contains_key(*n))
                .cloned()
                .collect()
        };
        let found = cx.on_nodes(&todo, |_, r| {
            let was = clock::parse_timesync(&r.exec(&clock::timesync_state_cmd())?.stdout);
            // The mark before anything stops: a harness killed now still left what to restart.
            marks::write(r, TIME_SYNC_MARK, &serde_json::to_string(&was)?)?;
            marks::write(r, MOVED_MARK, "")?;
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
                    self.state.lock().timesync.insert(n, was);
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

    fn set_clocks(&self, cx: &Cx, states: &[(String, ClockState)]) -> Result<()> {
        let names: Vec<String> = states.iter().map(|(n, _)| n.clone()).collect();
        self.hold_clocks(cx, &names)?;
        let mode = self.mode;
        let old: BTreeMap<String, ClockState> = names
            .iter()
            .map(|n| (n.clone(), self.clock_of(n)))
            .collect();
        let wanted: BTreeMap<String, ClockState> = states.iter().cloned().collect();
        cx.on_nodes_ok(&names, |n, r| {
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
        let mut st = self.state.lock();
        for (n, s) in states {
            st.clocks.insert(n.clone(), *s);
            st.touched.insert(n.clone());
        }
        Ok(())
    }

    fn reset_clocks(&self, cx: &Cx) -> Result<()> {
        let mode = self.mode;
        let touched = self.state.lock().touched.clone();
        cx.on_nodes_ok(&cx.names, |n, r| {
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
        let mut st = self.state.lock();
        st.clocks.clear();
        st.touched.clear();
        Ok(())
    }

    /// Strobes run on the nodes themselves (one command per node, all in parallel), so the
    /// period is kept even when a round trip to the node takes longer than the period.
    fn strobe(&self, cx: &Cx, request: &Value) -> Result<Value> {
        let nodes = cx.targets(request)?;
        let num = |k: &str, d: f64| request.get(k).and_then(Value::as_f64).unwrap_or(d);
        let delta = num("delta_ms", 200.0).clamp(-3.6e6, 3.6e6).round() as i64;
        let period_ms = num("period_ms", 10.0).clamp(1.0, 3.6e6) as u64;
        let duration_ms = num("duration_ms", 2000.0).clamp(0.0, 3.6e6) as u64;
        let cycles = (duration_ms / (2 * period_ms)).max(1);
        let mode = self.mode;
        self.hold_clocks(cx, &nodes)?;
        let base: BTreeMap<String, ClockState> = nodes
            .iter()
            .map(|n| (n.clone(), self.clock_of(n)))
            .collect();
        {
            let mut st = self.state.lock();
            for n in &nodes {
                st.touched.insert(n.clone());
            }
        }
        let made = cx.on_nodes_ok(&nodes, |n, r| {
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
        let mut v = self.clock_value(cx, nodes);
        // Flips each node really made: a slow node makes fewer within the duration.
        let flips: BTreeMap<String, u64> = made.into_iter().map(|(n, c)| (n, 2 * c)).collect();
        v["flips"] = json!(flips);
        v["delta_ms"] = json!(delta);
        v["period_ms"] = json!(period_ms);
        Ok(v)
    }

    fn clock_value(&self, cx: &Cx, nodes: Vec<String>) -> Value {
        let offsets: BTreeMap<String, ClockState> = cx
            .names
            .iter()
            .map(|n| (n.clone(), self.clock_of(n)))
            .collect();
        let mut v = json!({ "nodes": nodes, "offsets": offsets, "mode": self.mode });
        if self.mode == ClockMode::RealClock {
            // What was keeping each node's clock in sync, stopped until the heal.
            v["time_sync_stopped"] = json!(self.state.lock().timesync);
            // Each node's clock as measured against the control node's just now (half the
            // round trip corrected): what the nodes really show, beside what was asked.
            let measured: BTreeMap<String, Value> = cx
                .on_nodes(&cx.names, |_, r| Ok(clock::measure_real_offset_ms(r)?))
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
        if !self.effective {
            v["effective"] = json!(false);
            v["note"] = json!(self.faketime_note(cx));
        }
        v
    }
}

impl Fault for ClockFault {
    fn ops(&self) -> &[&'static str] {
        &[BUMP, STROBE, DRIFT, RESET]
    }
    fn setup(&self, cx: &Cx) -> Result<()> {
        // Real clocks are left alone (and time sync running) until a clock fault needs them.
        if self.mode == ClockMode::Faketime {
            cx.on_nodes_ok(&cx.names, |_, r| {
                Ok(clock::set_faketime(r, ClockState::default())?)
            })?;
        }
        Ok(())
    }
    fn draw(&self, rng: &mut Rng) -> (String, Value) {
        let o = &self.opts;
        let t = o.targets.draw(rng);
        let modes = if o.drift.is_empty() { 2 } else { 3 };
        match rng.index(modes) {
            0 => {
                let d = rng.pick(&o.bump_ms).copied().unwrap_or(0);
                (BUMP.into(), json!({ "targets": t, "delta_ms": d }))
            }
            1 => (
                STROBE.into(),
                json!({
                    "targets": t,
                    "delta_ms": o.strobe.delta_ms,
                    "period_ms": o.strobe.period_ms,
                    "duration_ms": o.strobe.duration_ms,
                }),
            ),
            _ => {
                let r = rng.pick(&o.drift).copied().unwrap_or(1.0);
                (DRIFT.into(), json!({ "targets": t, "rate": r }))
            }
        }
    }
    fn invoke(&self, cx: &Cx, op: &str, request: &Value) -> Result<Value> {
        match op {
            BUMP => {
                let nodes = cx.targets(request)?;
                let delta = request
                    .get("delta_ms")
                    .and_then(Value::as_f64)
                    .filter(|d| d.is_finite() && d.abs() <= 3.2e11)
                    .ok_or_else(|| anyhow!("bump-clock needs delta_ms (at most ten years)"))?;
                let new: Vec<(String, ClockState)> = nodes
                    .iter()
                    .map(|n| {
                        let mut s = self.clock_of(n);
                        s.offset_ms += delta;
                        (n.clone(), s)
                    })
                    .collect();
                self.set_clocks(cx, &new)?;
                Ok(self.clock_value(cx, nodes))
            }
            STROBE => self.strobe(cx, request),
            DRIFT => {
                let nodes = cx.targets(request)?;
                let rate = request
                    .get("rate")
                    .and_then(Value::as_f64)
                    .filter(|r| *r > 0.0 && *r < 10.0)
                    .ok_or_else(|| anyhow!("drift-clock needs a rate in (0, 10)"))?;
                if self.mode == ClockMode::RealClock {
                    bail!("drift-clock needs libfaketime (faketime mode); real clocks can only be bumped and strobed");
                }
                let new: Vec<(String, ClockState)> = nodes
                    .iter()
                    .map(|n| {
                        let mut s = self.clock_of(n);
                        s.rate = rate;
                        (n.clone(), s)
                    })
                    .collect();
                self.set_clocks(cx, &new)?;
                Ok(self.clock_value(cx, nodes))
            }
            RESET => {
                self.reset_clocks(cx)?;
                Ok(self.clock_value(cx, cx.names.clone()))
            }
            other => bail!("clock: unknown operation {other:?}"),
        }
    }
    fn heal(&self, _cx: &Cx, node: &str, r: &dyn Remote) -> Result<Vec<String>> {
        let mut steps = Vec::new();
        // What a killed earlier run left on a real clock, beside this run's own bookkeeping.
        let moved_mark = marks::read(r, MOVED_MARK)?.is_some();
        let sync_mark: Option<clock::TimeSync> =
            marks::read(r, TIME_SYNC_MARK)?.and_then(|t| serde_json::from_str(&t).ok());
        let touched = self.state.lock().touched.contains(node);
        match self.mode {
            ClockMode::Faketime => clock::set_faketime(r, ClockState::default())?,
            ClockMode::RealClock if touched => clock::set_real_from_control(r, 0.0)?,
            ClockMode::RealClock => {}
        }
        if moved_mark && !(self.mode == ClockMode::RealClock && touched) {
            clock::set_real_from_control(r, 0.0)?;
        }
        {
            let mut st = self.state.lock();
            st.touched.remove(node);
            st.clocks.remove(node);
        }
        marks::remove(r, MOVED_MARK)?;
        steps.push("clock".to_string());
        // Time sync back as it was found, once the clock is back.
        let was = self.state.lock().timesync.get(node).cloned().or(sync_mark);
        if let Some(was) = was {
            for c in clock::restore_timesync_cmds(&was) {
                r.exec_ok(&c)?;
            }
            self.state.lock().timesync.remove(node);
            steps.push("time sync".into());
        }
        marks::remove(r, TIME_SYNC_MARK)?;
        Ok(steps)
    }
    fn leftovers(&self, _cx: &Cx, node: &str, r: &dyn Remote) -> Result<Vec<String>> {
        let mut out = Vec::new();
        if self.mode == ClockMode::Faketime {
            let o = r.exec(&Cmd::new("cat").arg(clock::rc_path(&r.node().workdir)))?;
            let line = o.stdout.trim();
            if o.status == 0 && !line.is_empty() && line != "+0.000s" {
                out.push(format!(
                    "{node}: clock offset {line:?} left in faketime file"
                ));
            }
        }
        // A real clock: this run's bookkeeping, or the marks a killed run left.
        let (touched, held) = {
            let st = self.state.lock();
            (st.touched.contains(node), st.timesync.contains_key(node))
        };
        let real = self.mode == ClockMode::RealClock;
        if (real && touched) || marks::read(r, MOVED_MARK)?.is_some() {
            out.push(format!("{node}: real clock was moved and not restored"));
        }
        if held || marks::read(r, TIME_SYNC_MARK)?.is_some() {
            out.push(format!("{node}: time sync was stopped and not restarted"));
        }
        Ok(out)
    }
    fn notes(&self, cx: &Cx) -> Vec<String> {
        let mut n = self.notes.clone();
        if !self.effective {
            n.push(self.faketime_note(cx));
        }
        n
    }
    fn label(&self, op: &str, done: &Value) -> String {
        let nodes = listed_nodes(done).unwrap_or_default();
        let suffix = if self.effective { "" } else { " (no effect)" };
        format!("{op} {}{suffix}", nodes.join(" "))
    }
}

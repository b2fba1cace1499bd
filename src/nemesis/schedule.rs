//! The fault schedule: a pure, seeded stream of nemesis operations the runner executes in turn.
//!
//! Rhythm (Jepsen's default): quiet for `interval`, start a fault drawn from the enabled
//! families, hold it for `interval`, stop it, and again — so every fault has its heal, and
//! faults never overlap unless the plan asks for it. The start operation carries the intent
//! (`{"shape": "majority"}`, `{"targets": "one"}`); the nemesis resolves nodes when it acts
//! (the leader may have moved) and records the concrete nodes in the completion.
//! [`final_heal`] is the last phase: heal everything before the final reads.

use super::rng::Rng;
use super::spec::{FaultKind, FaultOpts, NemesisSpec};
use serde_json::{json, Value};
use std::time::Duration;

/// Operation names (history `f`) of the nemesis, per CONVENTIONS.md.
pub mod f {
    pub const START_PARTITION: &str = "start-partition";
    pub const STOP_PARTITION: &str = "stop-partition";
    pub const START_PACKET: &str = "start-packet";
    pub const STOP_PACKET: &str = "stop-packet";
    pub const PAUSE: &str = "pause";
    pub const RESUME: &str = "resume";
    pub const KILL: &str = "kill";
    /// Graceful stop (the target's own shutdown).
    pub const STOP: &str = "stop";
    /// Start after kill or stop.
    pub const START: &str = "start";
    pub const BUMP_CLOCK: &str = "bump-clock";
    pub const STROBE_CLOCK: &str = "strobe-clock";
    pub const DRIFT_CLOCK: &str = "drift-clock";
    pub const RESET_CLOCK: &str = "reset-clock";
    /// Heal every fault (the final phase, and every way out).
    pub const HEAL_ALL: &str = "heal-all";
}

/// A nemesis operation to invoke after waiting `after`.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduledOp {
    pub after: Duration,
    pub f: String,
    pub value: Value,
}

/// The operation that heals everything (final phase).
pub fn final_heal() -> ScheduledOp {
    ScheduledOp {
        after: Duration::ZERO,
        f: f::HEAL_ALL.into(),
        value: json!({}),
    }
}

/// The `f` the schedule sends after a start operation (`None`: not a start). A strobe restores
/// the clock itself when it ends; the schedule still follows it with a reset, for symmetry
/// and in case it was interrupted.
pub fn stop_for(start: &str) -> Option<&'static str> {
    Some(match start {
        f::START_PARTITION => f::STOP_PARTITION,
        f::START_PACKET => f::STOP_PACKET,
        f::PAUSE => f::RESUME,
        f::KILL | f::STOP => f::START,
        f::BUMP_CLOCK | f::DRIFT_CLOCK | f::STROBE_CLOCK => f::RESET_CLOCK,
        _ => return None,
    })
}

struct PickFrom<'a>(&'a mut Rng);

impl PickFrom<'_> {
    fn pick<T: Clone>(&mut self, xs: &[T]) -> Option<T> {
        self.0.pick(xs).cloned()
    }
}

/// The `f` that stops a fault family (the runner's `stop-<fault>` maps here).
pub fn stop_of(kind: FaultKind) -> &'static str {
    match kind {
        FaultKind::Partition => f::STOP_PARTITION,
        FaultKind::Packet => f::STOP_PACKET,
        FaultKind::Pause => f::RESUME,
        FaultKind::Kill => f::START,
        FaultKind::Clock => f::RESET_CLOCK,
    }
}

/// An endless schedule (the runner's time limit ends it). Empty when no faults are enabled.
#[derive(Debug, Clone)]
pub struct Schedule {
    spec: NemesisSpec,
    rng: Rng,
    pending_stop: Option<(&'static str, Value)>,
}

impl Schedule {
    pub fn new(spec: NemesisSpec, seed: u64) -> Schedule {
        Schedule {
            spec,
            rng: Rng::new(seed ^ 0x006e_656d_6573_6973),
            pending_stop: None,
        }
    }

    fn interval(&self) -> Duration {
        Duration::from_secs_f64(self.spec.interval)
    }

    fn start(&mut self, kind: FaultKind) -> (String, Value, &'static str) {
        plan_start(kind, &self.spec.opts, &mut self.rng)
    }
}

/// Draws a concrete start operation of a fault family from the plan's options: its `f`, its
/// value (the intent: shape, targets, behaviour, offsets) and the `f` that stops it.
pub fn plan_start(kind: FaultKind, o: &FaultOpts, rng: &mut Rng) -> (String, Value, &'static str) {
    let mut pick = PickFrom(rng);
    {
        match kind {
            FaultKind::Partition => {
                let shape = pick
                    .pick(&o.partition.shapes)
                    .map(|s| s.name())
                    .unwrap_or("one");
                (
                    f::START_PARTITION.into(),
                    json!({ "shape": shape }),
                    f::STOP_PARTITION,
                )
            }
            FaultKind::Packet => {
                let b = pick
                    .pick(&o.packet.behaviours)
                    .and_then(|b| b.resolve().ok())
                    .unwrap_or_default();
                let t = pick.pick(&o.packet.targets).map(|t| t.to_string());
                (
                    f::START_PACKET.into(),
                    json!({ "targets": t, "behaviour": b }),
                    f::STOP_PACKET,
                )
            }
            FaultKind::Pause => {
                let t = pick.pick(&o.pause.targets).map(|t| t.to_string());
                (f::PAUSE.into(), json!({ "targets": t }), f::RESUME)
            }
            FaultKind::Kill => {
                let t = pick.pick(&o.kill.targets).map(|t| t.to_string());
                let graceful = o.kill.graceful && pick.0.below(2) == 0;
                let name = if graceful { f::STOP } else { f::KILL };
                (name.into(), json!({ "targets": t }), f::START)
            }
            FaultKind::Clock => {
                let t = pick.pick(&o.clock.targets).map(|t| t.to_string());
                let modes = if o.clock.drift.is_empty() { 2 } else { 3 };
                match pick.0.below(modes) {
                    0 => {
                        let d = pick.pick(&o.clock.bump_ms).unwrap_or(0);
                        (
                            f::BUMP_CLOCK.into(),
                            json!({ "targets": t, "delta_ms": d }),
                            f::RESET_CLOCK,
                        )
                    }
                    1 => (
                        f::STROBE_CLOCK.into(),
                        json!({
                            "targets": t,
                            "delta_ms": o.clock.strobe.delta_ms,
                            "period_ms": o.clock.strobe.period_ms,
                            "duration_ms": o.clock.strobe.duration_ms,
                        }),
                        f::RESET_CLOCK,
                    ),
                    _ => {
                        let r = pick.pick(&o.clock.drift).unwrap_or(1.0);
                        (
                            f::DRIFT_CLOCK.into(),
                            json!({ "targets": t, "rate": r }),
                            f::RESET_CLOCK,
                        )
                    }
                }
            }
        }
    }
}

impl Iterator for Schedule {
    type Item = ScheduledOp;

    fn next(&mut self) -> Option<ScheduledOp> {
        if self.spec.faults.is_empty() {
            return None;
        }
        let after = self.interval();
        if let Some((f, value)) = self.pending_stop.take() {
            return Some(ScheduledOp {
                after,
                f: f.into(),
                value,
            });
        }
        let faults = self.spec.faults.clone();
        let kind = self.rng.pick(&faults).copied()?;
        let (f, value, stop) = self.start(kind);
        self.pending_stop = Some((stop, json!({})));
        Some(ScheduledOp { after, f, value })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nemesis::spec::parse_fault_list;

    fn spec(list: &str) -> NemesisSpec {
        NemesisSpec::default()
            .with_flags(Some(list), Some(2.0))
            .unwrap()
    }

    #[test]
    fn every_fault_start_is_followed_by_its_heal() {
        let ops: Vec<ScheduledOp> = Schedule::new(spec("all"), 1).take(200).collect();
        for pair in ops.chunks(2) {
            let expected = stop_for(&pair[0].f).unwrap();
            assert_eq!(pair[1].f, expected, "{:?}", pair);
            assert_eq!(pair[0].after, Duration::from_secs(2));
        }
        let kinds: std::collections::BTreeSet<&str> =
            ops.iter().step_by(2).map(|o| o.f.as_str()).collect();
        for k in [
            "start-partition",
            "start-packet",
            "pause",
            "kill",
            "bump-clock",
            "strobe-clock",
        ] {
            assert!(kinds.contains(k), "{k} never scheduled: {kinds:?}");
        }
    }

    #[test]
    fn no_faults_means_an_empty_schedule() {
        assert_eq!(Schedule::new(spec("none"), 1).next(), None);
        assert!(parse_fault_list("none").unwrap().is_empty());
    }

    #[test]
    fn schedules_replay_from_the_seed() {
        let a: Vec<_> = Schedule::new(spec("partition,pause"), 9).take(20).collect();
        let b: Vec<_> = Schedule::new(spec("partition,pause"), 9).take(20).collect();
        assert_eq!(a, b);
    }

    #[test]
    fn final_heal_is_heal_all() {
        assert_eq!(final_heal().f, "heal-all");
    }
}

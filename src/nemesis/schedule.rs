//! What a fault start means: the nemesis operation names (`f`) and [`plan_start`], which draws
//! a concrete start operation of a fault family from the plan's options.
//!
//! *When* faults start and stop is the runner's generator (`generator::nemesis_overlap` or
//! `nemesis_cycle`), which sends `start-<fault>` / `stop-<fault>`; the plug turns those into
//! the concrete operations here. The start operation carries the intent (`{"shape":
//! "majority"}`, `{"targets": "one"}`); the nemesis resolves nodes when it acts (the leader may
//! have moved) and records the concrete nodes in the completion.

use super::spec::{FaultKind, FaultOpts};
use crate::generator::rng::Rng;
use serde_json::{json, Value};

/// Operation names (history `f`) of the nemesis (docs/faults.md).
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
                let graceful = o.kill.graceful && pick.0.index(2) == 0;
                let name = if graceful { f::STOP } else { f::KILL };
                (name.into(), json!({ "targets": t }), f::START)
            }
            FaultKind::Clock => {
                let t = pick.pick(&o.clock.targets).map(|t| t.to_string());
                let modes = if o.clock.drift.is_empty() { 2 } else { 3 };
                match pick.0.index(modes) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nemesis::spec::FaultKind;

    #[test]
    fn every_family_draws_its_start_and_names_its_stop() {
        let opts = FaultOpts::default();
        let mut rng = Rng::new(1);
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..200 {
            for k in FaultKind::ALL {
                let (f, _, stop) = plan_start(k, &opts, &mut rng);
                assert_eq!(stop, stop_of(k), "{f}");
                seen.insert(f);
            }
        }
        for f in [
            "start-partition",
            "start-packet",
            "pause",
            "kill",
            "bump-clock",
            "strobe-clock",
        ] {
            assert!(seen.contains(f), "{f} never drawn: {seen:?}");
        }
    }

    #[test]
    fn draws_replay_from_the_seed() {
        let opts = FaultOpts::default();
        let draw = |seed| {
            let mut rng = Rng::new(seed);
            (0..20)
                .map(|_| plan_start(FaultKind::Partition, &opts, &mut rng).1)
                .collect::<Vec<_>>()
        };
        assert_eq!(draw(9), draw(9));
    }
}

//! Seeded generators of keyed register histories with many `info` operations, for tests and
//! benchmarks of the linearizability checker (no I/O).
//!
//! [`simulate`] plays the register workload (`read`, `write`, `cas` on independent keys, values
//! as `[key, value]`) against a simulated atomic register per key. Each key has
//! `procs_per_key` client slots; an operation is invoked, takes effect at one instant before it
//! completes, and completes — so without faults the history is linearizable. During a *fault
//! window* the first `affected` slots of every key talk to a node that answers at once with an
//! error of unknown outcome (as an etcd member whose client connection is closing does): their
//! operations complete `info` within a tick, and took effect only with probability
//! `effect_pct`. A process whose operation ended `info` is replaced by a fresh one, so such
//! windows leave bursts of `info` operations — as the faulted run that motivated this generator
//! did (one key: 170 operations, 104 `info`). A few operations elsewhere time out too
//! (`timeout_pct`; they took effect half the time). `stale_pct` makes reads return an older
//! value: a non-linearizable history, for the other verdict.
//!
//! Values are unique per key (1, 2, 3, …), as the register workload writes them, or drawn from
//! `0..range` when `value_range` is set.

use crate::history::{Op, OpType, Process};
use crate::rng::Rng;
use serde_json::{json, Value};

/// Generator parameters; the defaults shape one run like the motivating one.
#[derive(Debug, Clone)]
pub struct GenOptions {
    /// Number of independent keys.
    pub keys: usize,
    /// Operations invoked per key.
    pub ops_per_key: usize,
    /// Concurrent client slots per key.
    pub procs_per_key: usize,
    /// Slots per key that see the faulty node during the fault window.
    pub affected: usize,
    /// The fault window, in ticks (operations take 3–17 ticks outside it).
    pub fault_start: u64,
    /// Length of the fault window, in ticks.
    pub fault_ticks: u64,
    /// Percent of fault-window operations that took effect anyway.
    pub effect_pct: u64,
    /// Percent of other operations that time out (`info`; half took effect).
    pub timeout_pct: u64,
    /// `None`: values unique per key; `Some(n)`: values from `0..n`.
    pub value_range: Option<u64>,
    /// Percent of reads that return an older value (0: linearizable).
    pub stale_pct: u64,
    /// Seed of the generator's PRNG: the same options and seed give the same history.
    pub seed: u64,
}

impl Default for GenOptions {
    fn default() -> Self {
        GenOptions {
            keys: 20,
            ops_per_key: 170,
            procs_per_key: 5,
            affected: 2,
            fault_start: 60,
            fault_ticks: 52,
            effect_pct: 30,
            timeout_pct: 2,
            value_range: None,
            stale_pct: 0,
            seed: 1,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum F {
    Read,
    Write(u64),
    Cas(Option<u64>, u64),
}

struct Planned {
    process: u64,
    f: F,
    invoke: u64,
    effect: Option<u64>,
    complete: u64,
    info: bool,
}

/// (tick, key, sequence, what): `what` 0 = invoke, 1 = effect, 2 = complete of op `seq`.
type Event = (u64, usize, usize, u8);

fn val(v: Option<u64>) -> Value {
    v.map_or(Value::Null, |x| json!(x))
}

/// One history of `keys` keys, events in time order, indexed densely.
pub fn simulate(o: &GenOptions) -> Vec<Op> {
    let mut rng = Rng::new(o.seed);
    let mut next_process = 0u64;
    let mut plans: Vec<Vec<Planned>> = Vec::with_capacity(o.keys);
    let mut events: Vec<Event> = Vec::new();
    let procs = o.procs_per_key.max(1);
    let fault_end = o.fault_start + o.fault_ticks;
    for key in 0..o.keys {
        // Slots: (process, free at tick).
        let mut slots: Vec<(u64, u64)> = (0..procs)
            .map(|_| {
                next_process += 1;
                (next_process - 1, rng.below(3))
            })
            .collect();
        let mut counter = 0u64;
        let mut recent: Vec<u64> = Vec::new();
        let mut plan = Vec::with_capacity(o.ops_per_key);
        for _ in 0..o.ops_per_key {
            let s = (0..procs).min_by_key(|&s| (slots[s].1, s)).unwrap_or(0);
            let (process, t) = slots[s];
            let mut fresh = |rng: &mut Rng| match o.value_range {
                Some(n) => rng.below(n.max(1)),
                None => {
                    counter += 1;
                    counter
                }
            };
            let f = match rng.below(3) {
                0 => F::Read,
                1 => F::Write(fresh(&mut rng)),
                _ => {
                    let old = match o.value_range {
                        Some(n) => Some(rng.below(n.max(1))),
                        None if recent.is_empty() || rng.percent(10) => None,
                        None => Some(recent[recent.len() - 1 - rng.index(recent.len().min(3))]),
                    };
                    F::Cas(old, fresh(&mut rng))
                }
            };
            if let F::Write(v) | F::Cas(_, v) = f {
                recent.push(v);
            }
            let faulty = s < o.affected && t >= o.fault_start && t < fault_end;
            let (duration, info, effects) = if faulty {
                (1, true, rng.percent(o.effect_pct))
            } else if rng.percent(o.timeout_pct) {
                (3 + rng.below(15), true, rng.percent(50))
            } else {
                (3 + rng.below(15), false, true)
            };
            let effect = effects.then(|| t + rng.below(duration));
            plan.push(Planned {
                process,
                f,
                invoke: t,
                effect,
                complete: t + duration,
                info,
            });
            slots[s].1 = t + duration;
            if info {
                next_process += 1;
                slots[s].0 = next_process - 1;
            }
        }
        for (i, p) in plan.iter().enumerate() {
            events.push((p.invoke, key, i, 0));
            if let Some(e) = p.effect {
                events.push((e, key, i, 1));
            }
            events.push((p.complete, key, i, 2));
        }
        plans.push(plan);
    }
    // At one tick: completions first (a slot's next invocation may come at the tick its
    // previous operation completes), then invocations, then effects (an effect may come at the
    // tick of its own invocation, never at that of its completion).
    events.sort_unstable_by_key(|&(t, key, seq, what)| (t, (what + 2) % 3, key, seq));
    let mut state: Vec<Option<u64>> = vec![None; o.keys];
    let mut seen: Vec<Vec<Option<u64>>> = vec![vec![None]; o.keys];
    let mut result: Vec<Vec<Option<Value>>> = plans.iter().map(|p| vec![None; p.len()]).collect();
    let mut ops = Vec::with_capacity(events.len());
    for (t, key, seq, what) in events {
        let p = &plans[key][seq];
        let k = key as u64;
        let input = match p.f {
            F::Read => json!([k, null]),
            F::Write(v) => json!([k, v]),
            F::Cas(a, b) => json!([k, [val(a), b]]),
        };
        let name = match p.f {
            F::Read => "read",
            F::Write(_) => "write",
            F::Cas(..) => "cas",
        };
        let (kind, value) = match what {
            0 => (OpType::Invoke, input),
            1 => {
                // The effect: the register changes; the outcome is kept for the completion.
                let st = &mut state[key];
                let r = match p.f {
                    F::Read => {
                        let shown = if rng.percent(o.stale_pct) && seen[key].len() > 1 {
                            seen[key][rng.index(seen[key].len() - 1)]
                        } else {
                            *st
                        };
                        Some(json!([k, val(shown)]))
                    }
                    F::Write(v) => {
                        *st = Some(v);
                        seen[key].push(*st);
                        Some(json!([k, v]))
                    }
                    F::Cas(a, b) if *st == a => {
                        *st = Some(b);
                        seen[key].push(*st);
                        Some(json!([k, [val(a), b]]))
                    }
                    F::Cas(..) => None,
                };
                result[key][seq] = r;
                continue;
            }
            _ if p.info => (OpType::Info, input),
            _ => match result[key][seq].take() {
                Some(v) => (OpType::Ok, v),
                None => (OpType::Fail, input),
            },
        };
        let mut op = Op::new(Process::Client(p.process), kind, name, value);
        op.index = ops.len() as u64;
        op.time = t * 1_000_000;
        ops.push(op);
    }
    ops
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checker::linear::{check, LinOptions, ModelKind};
    use crate::checker::Validity;

    fn opts() -> LinOptions {
        let mut o = LinOptions::new(ModelKind::CasRegister);
        o.independent = true;
        o
    }

    #[test]
    fn fault_windows_leave_info_bursts_and_histories_stay_linearizable() {
        let h = simulate(&GenOptions {
            keys: 3,
            ..GenOptions::default()
        });
        let infos = h.iter().filter(|o| o.kind == OpType::Info).count();
        assert!(infos > 3 * 80, "{infos} info ops");
        let r = check(&h, &opts()).unwrap();
        assert_eq!(r.valid, Validity::True);
    }

    #[test]
    fn stale_reads_are_found() {
        let h = simulate(&GenOptions {
            keys: 3,
            stale_pct: 20,
            ..GenOptions::default()
        });
        assert_eq!(check(&h, &opts()).unwrap().valid, Validity::False);
    }
}

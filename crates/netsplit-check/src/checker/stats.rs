//! The `stats` checker: how many operations of each kind succeeded, failed or ended unknown,
//! and how long the successful ones took. It judges nothing about consistency; it says
//! `unknown` only when no client operation succeeded at all (then the other checkers had
//! nothing to judge either), and `true` otherwise.

use crate::checker::{CheckError, Validity};
use crate::history::{pair_positions, Op, OpType};
use serde::Serialize;
use std::collections::BTreeMap;

/// Counts and latencies of one operation name.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct FStats {
    /// Client operations with this name that were invoked.
    pub count: u64,
    /// Of those, how many completed `ok`.
    pub ok: u64,
    /// Of those, how many completed `fail`.
    pub fail: u64,
    /// Of those, how many completed `info` or never completed.
    pub info: u64,
    /// Latency quantiles of `ok` operations, milliseconds.
    pub latency_ms: Quantiles,
}

/// Latency quantiles in milliseconds.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Quantiles {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// The slowest sample.
    pub max: f64,
}

impl Quantiles {
    /// Quantiles of nanosecond samples (sorted in place), in milliseconds.
    pub fn of_ns(samples: &mut [u64]) -> Quantiles {
        if samples.is_empty() {
            return Quantiles::default();
        }
        samples.sort_unstable();
        let q = |p: f64| {
            let i = ((samples.len() - 1) as f64 * p).round() as usize;
            samples[i] as f64 / 1e6
        };
        Quantiles {
            p50: q(0.5),
            p90: q(0.9),
            p99: q(0.99),
            max: q(1.0),
        }
    }
}

/// The stats checker's result.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct StatsResult {
    /// `unknown` when no client operation succeeded, else `true` (this checker judges no consistency).
    pub valid: Validity,
    /// Client operations invoked.
    pub count: u64,
    /// Of those, how many completed `ok`.
    pub ok: u64,
    /// Of those, how many completed `fail`.
    pub fail: u64,
    /// Of those, how many completed `info` or never completed.
    pub info: u64,
    /// The same counts and latencies per operation name.
    pub by_f: BTreeMap<String, FStats>,
    /// Nemesis events recorded.
    pub nemesis_events: u64,
}

/// Counts client operations by name and outcome (an invocation without completion is `info`).
pub fn check(ops: &[Op]) -> Result<StatsResult, CheckError> {
    let pairs = pair_positions(ops).map_err(|e| CheckError::new(e.event, e.msg))?;
    let mut by_f: BTreeMap<String, FStats> = BTreeMap::new();
    let mut lat: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for c in &pairs {
        let f = &ops[c.invoke].f;
        let s = by_f.entry(f.clone()).or_default();
        s.count += 1;
        match c.outcome {
            OpType::Ok => {
                s.ok += 1;
                if let Some(done) = c.complete {
                    let d = ops[done].time.saturating_sub(ops[c.invoke].time);
                    lat.entry(f.clone()).or_default().push(d);
                }
            }
            OpType::Fail => s.fail += 1,
            _ => s.info += 1,
        }
    }
    for (f, mut v) in lat {
        if let Some(s) = by_f.get_mut(&f) {
            s.latency_ms = Quantiles::of_ns(&mut v);
        }
    }
    let (mut count, mut ok, mut fail, mut info) = (0, 0, 0, 0);
    for s in by_f.values() {
        count += s.count;
        ok += s.ok;
        fail += s.fail;
        info += s.info;
    }
    Ok(StatsResult {
        valid: if ok > 0 {
            Validity::True
        } else {
            Validity::Unknown
        },
        count,
        ok,
        fail,
        info,
        by_f,
        nemesis_events: ops.iter().filter(|o| !o.process.is_client()).count() as u64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::Process;
    use serde_json::json;

    fn ev(p: u64, kind: OpType, f: &str, t: u64) -> Op {
        let mut o = Op::new(Process::Client(p), kind, f, json!(null));
        o.time = t;
        o
    }

    #[test]
    fn counts_outcomes_per_f_and_latency() {
        let ops = vec![
            ev(0, OpType::Invoke, "read", 0),
            ev(1, OpType::Invoke, "write", 0),
            ev(0, OpType::Ok, "read", 2_000_000),
            ev(1, OpType::Info, "write", 5_000_000),
            ev(0, OpType::Invoke, "write", 6_000_000),
        ];
        let r = check(&ops).unwrap();
        assert_eq!(r.valid, Validity::True);
        assert_eq!((r.count, r.ok, r.fail, r.info), (3, 1, 0, 2));
        assert_eq!(r.by_f["read"].latency_ms.p50, 2.0);
        assert_eq!(
            r.by_f["write"].info, 2,
            "unmatched invocation counts as info"
        );
    }

    #[test]
    fn no_successful_op_is_unknown() {
        let ops = vec![
            ev(0, OpType::Invoke, "read", 0),
            ev(0, OpType::Fail, "read", 1),
        ];
        assert_eq!(check(&ops).unwrap().valid, Validity::Unknown);
    }
}

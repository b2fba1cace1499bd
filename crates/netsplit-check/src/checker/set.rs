//! The `set` checker, after Jepsen's `set-full`: unique elements are added to a set and the
//! whole set is read, during the run and once more on every node after healing.
//!
//! For each element the checker finds when it became *known* (its add was acknowledged, or a
//! read completed that contained it, whichever came first) and looks at the reads that began
//! after that:
//! - **lost**: the latest such read does not contain it (acknowledged, then gone);
//! - **stale**: some such read missed it but a later one has it (a stale read; invalid only
//!   with `linearizable`);
//! - **stable**: every such read has it;
//! - **never-read**: no read began after it was known (nothing to judge).
//!
//! Elements no add attempted (or whose add definitely failed) that a read returns are
//! **unexpected**; adds that ended `info` and were later read are **recovered** (fine).
//! Latency to visibility: from the add's invocation to the start of the first read after which
//! every read had the element.

use crate::checker::stats::Quantiles;
use crate::checker::{CheckError, Validity};
use crate::history::{pair, Op, OpType};
use serde::Serialize;
use serde_json::Value;
use std::collections::{HashMap, HashSet};

/// Checker options.
#[derive(Debug, Clone, Default)]
pub struct SetOptions {
    /// Stale reads make the history invalid.
    pub linearizable: bool,
}

/// The set checker's result. Element lists hold at most 32 examples; counts are exact.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SetResult {
    pub valid: Validity,
    pub attempt_count: u64,
    pub acknowledged_count: u64,
    pub read_count: u64,
    pub stable_count: u64,
    pub lost_count: u64,
    pub lost: Vec<Value>,
    pub stale_count: u64,
    pub stale: Vec<Value>,
    pub unexpected_count: u64,
    pub unexpected: Vec<Value>,
    pub recovered_count: u64,
    pub recovered: Vec<Value>,
    pub never_read_count: u64,
    /// Adds of unknown outcome never seen in any read (may or may not have happened).
    pub indeterminate_count: u64,
    /// Latency from add invocation to stable visibility, milliseconds.
    pub stable_latency_ms: Quantiles,
}

struct Add {
    value: Value,
    invoke_idx: usize,
    invoke_time: u64,
    outcome: OpType,
    complete_idx: Option<usize>,
}

struct Read {
    invoke_idx: usize,
    invoke_time: u64,
    complete_idx: usize,
    elems: HashSet<u32>,
}

const EXAMPLES: usize = 32;

/// Checks `add` (value: the element) and `read` (ok value: array of elements) operations.
pub fn check(ops: &[Op], opts: &SetOptions) -> Result<SetResult, CheckError> {
    let pairs = pair(ops).map_err(|e| CheckError::new(0, e.to_string()))?;
    let mut ids: HashMap<String, u32> = HashMap::new();
    let mut adds: Vec<Option<Add>> = Vec::new(); // by element id
    let mut values: Vec<Value> = Vec::new(); // by element id
    let intern = |v: &Value, ids: &mut HashMap<String, u32>, values: &mut Vec<Value>| {
        let k = v.to_string();
        *ids.entry(k).or_insert_with(|| {
            values.push(v.clone());
            (values.len() - 1) as u32
        })
    };
    let mut reads: Vec<Read> = Vec::new();
    for c in &pairs {
        match c.f.as_str() {
            "add" => {
                let id = intern(&c.input, &mut ids, &mut values) as usize;
                if adds.len() <= id {
                    adds.resize_with(id + 1, || None);
                }
                if adds[id].is_some() {
                    return Err(CheckError::new(
                        c.invoke,
                        format!("set: element {} added twice (adds must be unique)", c.input),
                    ));
                }
                adds[id] = Some(Add {
                    value: c.input.clone(),
                    invoke_idx: c.invoke,
                    invoke_time: ops[c.invoke].time,
                    outcome: c.outcome,
                    complete_idx: c.complete,
                });
            }
            "read" => {
                if c.outcome != OpType::Ok {
                    continue;
                }
                let Some(arr) = c.output.as_array() else {
                    return Err(CheckError::new(
                        c.complete.unwrap_or(c.invoke),
                        format!("set: a read must return an array, got {}", c.output),
                    ));
                };
                let elems = arr
                    .iter()
                    .map(|v| intern(v, &mut ids, &mut values))
                    .collect();
                reads.push(Read {
                    invoke_idx: c.invoke,
                    invoke_time: ops[c.invoke].time,
                    complete_idx: c.complete.unwrap_or(c.invoke),
                    elems,
                });
            }
            other => {
                return Err(CheckError::new(
                    c.invoke,
                    format!("set: unexpected operation {other:?} (expected add or read)"),
                ))
            }
        }
    }
    adds.resize_with(values.len(), || None);
    reads.sort_by_key(|r| r.invoke_idx);

    let mut res = SetResult {
        valid: Validity::True,
        attempt_count: adds.iter().flatten().count() as u64,
        acknowledged_count: adds
            .iter()
            .flatten()
            .filter(|a| a.outcome == OpType::Ok)
            .count() as u64,
        read_count: reads.len() as u64,
        stable_count: 0,
        lost_count: 0,
        lost: vec![],
        stale_count: 0,
        stale: vec![],
        unexpected_count: 0,
        unexpected: vec![],
        recovered_count: 0,
        recovered: vec![],
        never_read_count: 0,
        indeterminate_count: 0,
        stable_latency_ms: Quantiles::default(),
    };
    let push = |list: &mut Vec<Value>, count: &mut u64, v: &Value| {
        *count += 1;
        if list.len() < EXAMPLES {
            list.push(v.clone());
        }
    };
    let mut latencies: Vec<u64> = Vec::new();

    for (id, add) in adds.iter().enumerate() {
        let id = id as u32;
        let first_seen = reads
            .iter()
            .filter(|r| r.elems.contains(&id))
            .min_by_key(|r| r.complete_idx);
        let Some(add) = add else {
            // read but never added
            push(
                &mut res.unexpected,
                &mut res.unexpected_count,
                &values[id as usize],
            );
            continue;
        };
        if add.outcome == OpType::Fail {
            if first_seen.is_some() {
                push(&mut res.unexpected, &mut res.unexpected_count, &add.value);
            }
            continue;
        }
        let ack = if add.outcome == OpType::Ok {
            add.complete_idx
        } else {
            None
        };
        let known = match (ack, first_seen.map(|r| r.complete_idx)) {
            (Some(a), Some(s)) => a.min(s),
            (Some(a), None) => a,
            (None, Some(s)) => s,
            (None, None) => {
                res.indeterminate_count += 1;
                continue;
            }
        };
        if add.outcome != OpType::Ok && first_seen.is_some() {
            push(&mut res.recovered, &mut res.recovered_count, &add.value);
        }
        // reads that began after the element was known, in invocation order
        let later: Vec<&Read> = reads.iter().filter(|r| r.invoke_idx > known).collect();
        if later.is_empty() {
            res.never_read_count += 1;
            continue;
        }
        let last_absent = later.iter().rposition(|r| !r.elems.contains(&id));
        match last_absent {
            Some(i) if i == later.len() - 1 => {
                push(&mut res.lost, &mut res.lost_count, &add.value);
            }
            Some(i) => {
                push(&mut res.stale, &mut res.stale_count, &add.value);
                latencies.push(later[i + 1].invoke_time.saturating_sub(add.invoke_time));
            }
            None => {
                res.stable_count += 1;
                // visible from the first read after the add began that had it
                let since = reads
                    .iter()
                    .filter(|r| r.invoke_idx > add.invoke_idx && r.elems.contains(&id))
                    .map(|r| r.invoke_time)
                    .next()
                    .unwrap_or(later[0].invoke_time);
                latencies.push(since.saturating_sub(add.invoke_time));
            }
        }
    }
    res.stable_count += res.stale_count;
    res.stable_latency_ms = Quantiles::of_ns(&mut latencies);
    res.valid = if res.lost_count > 0
        || res.unexpected_count > 0
        || (opts.linearizable && res.stale_count > 0)
    {
        Validity::False
    } else if reads.is_empty() {
        Validity::Unknown
    } else {
        Validity::True
    };
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::Process;
    use serde_json::json;

    fn inv(p: u64, f: &str, v: Value) -> Op {
        Op::new(Process::Client(p), OpType::Invoke, f, v)
    }
    fn done(p: u64, kind: OpType, f: &str, v: Value) -> Op {
        Op::new(Process::Client(p), kind, f, v)
    }
    fn add(p: u64, e: i64, kind: OpType) -> Vec<Op> {
        vec![inv(p, "add", json!(e)), done(p, kind, "add", json!(e))]
    }
    fn read(p: u64, elems: Value) -> Vec<Op> {
        vec![
            inv(p, "read", json!(null)),
            done(p, OpType::Ok, "read", elems),
        ]
    }
    fn check_ops(parts: Vec<Vec<Op>>, lin: bool) -> SetResult {
        let mut ops: Vec<Op> = parts.into_iter().flatten().collect();
        for (i, o) in ops.iter_mut().enumerate() {
            o.index = i as u64;
            o.time = i as u64 * 1_000_000;
        }
        check(&ops, &SetOptions { linearizable: lin }).unwrap()
    }

    #[test]
    fn acknowledged_and_read_elements_are_valid() {
        let r = check_ops(
            vec![
                add(0, 1, OpType::Ok),
                add(0, 2, OpType::Ok),
                read(1, json!([1, 2])),
            ],
            false,
        );
        assert_eq!(r.valid, Validity::True, "{r:?}");
        assert_eq!(r.stable_count, 2);
        assert!(r.stable_latency_ms.max > 0.0);
    }

    #[test]
    fn detects_lost_element() {
        let r = check_ops(
            vec![
                add(0, 1, OpType::Ok),
                read(1, json!([1])),
                read(1, json!([])),
            ],
            false,
        );
        assert_eq!(r.valid, Validity::False);
        assert_eq!(r.lost, vec![json!(1)]);
    }

    #[test]
    fn detects_unexpected_element() {
        let r = check_ops(vec![add(0, 1, OpType::Ok), read(1, json!([1, 99]))], false);
        assert_eq!(r.valid, Validity::False);
        assert_eq!(r.unexpected, vec![json!(99)]);
        let r = check_ops(vec![add(0, 1, OpType::Fail), read(1, json!([1]))], false);
        assert_eq!(r.unexpected_count, 1, "a failed add must not appear");
    }

    #[test]
    fn stale_read_is_reported_and_invalid_only_when_linearizable() {
        let parts = || {
            vec![
                add(0, 1, OpType::Ok),
                read(1, json!([])),
                read(1, json!([1])),
            ]
        };
        let r = check_ops(parts(), false);
        assert_eq!(r.valid, Validity::True);
        assert_eq!(r.stale, vec![json!(1)]);
        assert_eq!(check_ops(parts(), true).valid, Validity::False);
    }

    #[test]
    fn indeterminate_add_seen_later_is_recovered() {
        let r = check_ops(vec![add(0, 1, OpType::Info), read(1, json!([1]))], false);
        assert_eq!(r.valid, Validity::True);
        assert_eq!(r.recovered, vec![json!(1)]);
        let r = check_ops(vec![add(0, 2, OpType::Info), read(1, json!([]))], false);
        assert_eq!(r.indeterminate_count, 1);
        assert_eq!(r.valid, Validity::True);
    }

    #[test]
    fn concurrent_read_may_miss_an_element_without_loss() {
        // the read begins before the add is acknowledged: missing it is fine
        let ops = vec![
            vec![inv(0, "add", json!(1)), inv(1, "read", json!(null))],
            vec![
                done(0, OpType::Ok, "add", json!(1)),
                done(1, OpType::Ok, "read", json!([])),
            ],
            read(1, json!([1])),
        ];
        let r = check_ops(ops, true);
        assert_eq!(r.valid, Validity::True, "{r:?}");
        assert_eq!(r.stale_count, 0);
    }

    #[test]
    fn no_reads_is_unknown() {
        let r = check_ops(vec![add(0, 1, OpType::Ok)], false);
        assert_eq!(r.valid, Validity::Unknown);
        assert_eq!(r.never_read_count, 1);
    }
}

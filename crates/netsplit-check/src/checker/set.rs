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
use crate::history::{pair_positions, Op, OpType};
use serde::Serialize;
use serde_json::Value;
use std::collections::HashMap;

/// Checker options.
#[derive(Debug, Clone, Default)]
pub struct SetOptions {
    /// Stale reads make the history invalid.
    pub linearizable: bool,
}

/// The set checker's result. Element lists hold at most 32 examples; counts are exact.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SetResult {
    /// False on a lost or unexpected element (or a stale read when linearizable), else true.
    pub valid: Validity,
    /// Adds invoked (whatever their outcome).
    pub attempt_count: u64,
    /// Adds acknowledged (`ok`).
    pub acknowledged_count: u64,
    /// Successful reads.
    pub read_count: u64,
    /// Elements every read after they were known contained, from some read on (stale ones included).
    pub stable_count: u64,
    /// Elements known (acknowledged or read) that the latest read after that did not contain.
    pub lost_count: u64,
    /// Up to 32 lost elements.
    pub lost: Vec<Value>,
    /// Elements some read missed after they were known although a later read had them.
    pub stale_count: u64,
    /// Up to 32 stale elements.
    pub stale: Vec<Value>,
    /// Elements a read returned that no add attempted (or whose add failed).
    pub unexpected_count: u64,
    /// Up to 32 unexpected elements.
    pub unexpected: Vec<Value>,
    /// Elements whose add ended `info` and that a read later returned (fine).
    pub recovered_count: u64,
    /// Up to 32 recovered elements.
    pub recovered: Vec<Value>,
    /// Elements known only after the last read began: nothing could judge them.
    pub never_read_count: u64,
    /// Adds of unknown outcome never seen in any read (may or may not have happened).
    pub indeterminate_count: u64,
    /// Latency from add invocation to stable visibility, milliseconds.
    pub stable_latency_ms: Quantiles,
}

struct Add<'a> {
    value: &'a Value,
    invoke_idx: usize,
    invoke_time: u64,
    outcome: OpType,
    complete_idx: Option<usize>,
}

struct Read {
    invoke_idx: usize,
    invoke_time: u64,
    complete_idx: usize,
}

const EXAMPLES: usize = 32;

/// Checks `add` (value: the element) and `read` (ok value: array of elements) operations.
///
/// Time and memory are linear in the history's size (the sum of the reads' lengths, plus a
/// logarithmic factor): each element keeps the sorted list of reads that contained it, and
/// everything asked about "the reads after some point" is a search in that list.
pub fn check(ops: &[Op], opts: &SetOptions) -> Result<SetResult, CheckError> {
    let pairs = pair_positions(ops).map_err(|e| CheckError::new(e.event, e.msg))?;
    let mut ids = Ids::default();
    let mut adds: Vec<Option<Add>> = Vec::new(); // by element id
    let mut values: Vec<&Value> = Vec::new(); // by element id
    /// Element ids: integers by value, anything else by its JSON text.
    #[derive(Default)]
    struct Ids {
        ints: HashMap<i64, u32>,
        other: HashMap<String, u32>,
    }
    fn intern<'v>(v: &'v Value, ids: &mut Ids, values: &mut Vec<&'v Value>) -> u32 {
        let new = || {
            values.push(v);
            (values.len() - 1) as u32
        };
        match v.as_i64() {
            Some(i) => *ids.ints.entry(i).or_insert_with(new),
            None => *ids.other.entry(v.to_string()).or_insert_with(new),
        }
    }
    // (read, its elements), reads in history order of their invocation.
    let mut reads: Vec<Read> = Vec::new();
    let mut read_elems: Vec<Vec<u32>> = Vec::new();
    for c in &pairs {
        let inv = &ops[c.invoke];
        match inv.f.as_str() {
            "add" => {
                let id = intern(&inv.value, &mut ids, &mut values) as usize;
                if adds.len() <= id {
                    adds.resize_with(id + 1, || None);
                }
                if adds[id].is_some() {
                    return Err(CheckError::new(
                        c.invoke,
                        format!(
                            "set: element {} added twice (adds must be unique)",
                            inv.value
                        ),
                    ));
                }
                adds[id] = Some(Add {
                    value: &inv.value,
                    invoke_idx: c.invoke,
                    invoke_time: inv.time,
                    outcome: c.outcome,
                    complete_idx: c.complete,
                });
            }
            "read" => {
                if c.outcome != OpType::Ok {
                    continue;
                }
                let out = c.complete.map_or(&Value::Null, |i| &ops[i].value);
                let Some(arr) = out.as_array() else {
                    return Err(CheckError::new(
                        c.complete.unwrap_or(c.invoke),
                        format!("set: a read must return an array, got {out}"),
                    ));
                };
                let elems = arr
                    .iter()
                    .map(|v| intern(v, &mut ids, &mut values))
                    .collect();
                reads.push(Read {
                    invoke_idx: c.invoke,
                    invoke_time: inv.time,
                    complete_idx: c.complete.unwrap_or(c.invoke),
                });
                read_elems.push(elems);
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
    // Pairings come in invocation order, so `reads` already is.
    // For each element: the reads (positions in `reads`, increasing) that contained it, and
    // the earliest completion among them.
    let mut containing: Vec<Vec<u32>> = vec![Vec::new(); values.len()];
    let mut first_seen: Vec<Option<usize>> = vec![None; values.len()];
    for (j, (r, elems)) in reads.iter().zip(read_elems).enumerate() {
        for e in elems {
            let list = &mut containing[e as usize];
            if list.last() != Some(&(j as u32)) {
                list.push(j as u32);
            }
            let f = &mut first_seen[e as usize];
            *f = Some(f.map_or(r.complete_idx, |x| x.min(r.complete_idx)));
        }
    }
    // Position of the first read invoked after event `idx`.
    let first_read_after = |idx: usize| reads.partition_point(|r| r.invoke_idx <= idx);

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
        let has = &containing[id];
        let seen = first_seen[id];
        let Some(add) = add else {
            // read but never added
            push(&mut res.unexpected, &mut res.unexpected_count, values[id]);
            continue;
        };
        if add.outcome == OpType::Fail {
            if seen.is_some() {
                push(&mut res.unexpected, &mut res.unexpected_count, add.value);
            }
            continue;
        }
        let ack = if add.outcome == OpType::Ok {
            add.complete_idx
        } else {
            None
        };
        let known = match (ack, seen) {
            (Some(a), Some(s)) => a.min(s),
            (Some(a), None) => a,
            (None, Some(s)) => s,
            (None, None) => {
                res.indeterminate_count += 1;
                continue;
            }
        };
        if add.outcome != OpType::Ok && seen.is_some() {
            push(&mut res.recovered, &mut res.recovered_count, add.value);
        }
        // Reads that began after the element was known: positions `later..`.
        let later = first_read_after(known);
        if later == reads.len() {
            res.never_read_count += 1;
            continue;
        }
        // The last read not containing the element: below the run of consecutive positions
        // at the end of `has`.
        let mut last_absent = reads.len();
        let mut k = has.len();
        while last_absent > 0 && k > 0 && has[k - 1] as usize == last_absent - 1 {
            last_absent -= 1;
            k -= 1;
        }
        let last_absent = last_absent.checked_sub(1).filter(|&j| j >= later);
        match last_absent {
            Some(j) if j == reads.len() - 1 => {
                push(&mut res.lost, &mut res.lost_count, add.value);
            }
            Some(j) => {
                push(&mut res.stale, &mut res.stale_count, add.value);
                latencies.push(reads[j + 1].invoke_time.saturating_sub(add.invoke_time));
            }
            None => {
                res.stable_count += 1;
                // visible from the first read after the add began that had it
                let from = first_read_after(add.invoke_idx) as u32;
                let since = has
                    .get(has.partition_point(|&j| j < from))
                    .map_or(reads[later].invoke_time, |&j| reads[j as usize].invoke_time);
                latencies.push(since.saturating_sub(add.invoke_time));
            }
        }
    }
    res.stable_count += res.stale_count;
    res.stable_latency_ms = Quantiles::of_ns(&mut latencies);
    res.valid = Validity::judged(
        res.lost_count > 0
            || res.unexpected_count > 0
            || (opts.linearizable && res.stale_count > 0),
        reads.is_empty(),
    );
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

    /// The definitions in the module docs, computed the slow way: for every element, scan
    /// every read.
    fn quadratic(ops: &[Op], lin: bool) -> SetResult {
        use std::collections::HashSet;
        let pairs = crate::history::pair(ops).unwrap();
        let adds: Vec<_> = pairs.iter().filter(|c| c.f == "add").collect();
        let reads: Vec<(usize, u64, usize, HashSet<String>)> = pairs
            .iter()
            .filter(|c| c.f == "read" && c.outcome == OpType::Ok)
            .map(|c| {
                let elems = c.output.as_array().unwrap().iter().map(|v| v.to_string());
                (
                    c.invoke,
                    ops[c.invoke].time,
                    c.complete.unwrap(),
                    elems.collect(),
                )
            })
            .collect();
        let mut res = check(ops, &SetOptions { linearizable: lin }).unwrap();
        let (mut lost, mut stale, mut stable, mut never, mut indet) = (0, 0, 0, 0, 0);
        let mut lat = Vec::new();
        for a in &adds {
            let k = a.input.to_string();
            let first_seen = reads.iter().filter(|r| r.3.contains(&k)).map(|r| r.2).min();
            if a.outcome == OpType::Fail {
                continue;
            }
            let ack = (a.outcome == OpType::Ok).then_some(a.complete).flatten();
            let known = match (ack, first_seen) {
                (Some(x), Some(y)) => x.min(y),
                (Some(x), None) | (None, Some(x)) => x,
                (None, None) => {
                    indet += 1;
                    continue;
                }
            };
            let later: Vec<_> = reads.iter().filter(|r| r.0 > known).collect();
            if later.is_empty() {
                never += 1;
                continue;
            }
            let t0 = ops[a.invoke].time;
            match later.iter().rposition(|r| !r.3.contains(&k)) {
                Some(i) if i == later.len() - 1 => lost += 1,
                Some(i) => {
                    stale += 1;
                    lat.push(later[i + 1].1.saturating_sub(t0));
                }
                None => {
                    stable += 1;
                    let since = reads
                        .iter()
                        .find(|r| r.0 > a.invoke && r.3.contains(&k))
                        .map_or(later[0].1, |r| r.1);
                    lat.push(since.saturating_sub(t0));
                }
            }
        }
        assert_eq!(
            (res.lost_count, res.stale_count, res.never_read_count),
            (lost, stale, never)
        );
        assert_eq!(
            (res.stable_count, res.indeterminate_count),
            (stable + stale, indet)
        );
        let q = Quantiles::of_ns(&mut lat);
        assert_eq!(res.stable_latency_ms, q);
        res.stable_latency_ms = q;
        res
    }

    #[test]
    fn agrees_with_the_quadratic_definition() {
        let mut rng = crate::rng::Rng::new(9);
        for case in 0..400 {
            // Adds of unique elements and reads of random subsets by 4 processes, completing
            // out of order; some adds fail or end info; a few unexpected elements.
            let mut ops = Vec::new();
            let mut open: Vec<Option<Op>> = vec![None; 4];
            let mut next = 0i64;
            for t in 0..60u64 {
                let p = rng.below(4) as usize;
                let mut op = match open[p].take() {
                    None => {
                        let op = if rng.percent(50) {
                            next += 1;
                            inv(p as u64, "add", json!(next))
                        } else {
                            inv(p as u64, "read", json!(null))
                        };
                        open[p] = Some(op.clone());
                        op
                    }
                    Some(i) if i.f == "add" => {
                        let kind = [OpType::Ok, OpType::Ok, OpType::Fail, OpType::Info]
                            [rng.below(4) as usize];
                        done(p as u64, kind, "add", i.value)
                    }
                    Some(_) => {
                        let mut elems: Vec<i64> =
                            (1..=next + 1).filter(|_| rng.percent(70)).collect();
                        rng.shuffle(&mut elems);
                        done(p as u64, OpType::Ok, "read", json!(elems))
                    }
                };
                op.index = ops.len() as u64;
                op.time = t * 1_000_000 + rng.below(1000);
                ops.push(op);
            }
            for lin in [false, true] {
                let r = quadratic(&ops, lin);
                assert_eq!(r, check(&ops, &SetOptions { linearizable: lin }).unwrap());
                let _ = case;
            }
        }
    }

    #[test]
    fn no_reads_is_unknown() {
        let r = check_ops(vec![add(0, 1, OpType::Ok)], false);
        assert_eq!(r.valid, Validity::Unknown);
        assert_eq!(r.never_read_count, 1);
    }
}

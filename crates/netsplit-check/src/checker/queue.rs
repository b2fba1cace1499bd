//! The `total-queue` checker, after Jepsen's `total-queue`: what goes into a queue must come out,
//! exactly once.
//!
//! Operations: `enqueue e` (the element is the request's value), `dequeue` (`ok` with the
//! element taken, or `null` when the queue was empty) and `drain` (`ok` with the list of every
//! element it took until the queue was empty). Elements are compared as JSON values and counted
//! as multisets, so an element enqueued twice must come out twice. Findings list elements in
//! the order they first appear in the history.
//!
//! For each element the checker counts how often an enqueue was *attempted* (invoked and not
//! `fail`), *acknowledged* (`ok`) and *dequeued* (by an `ok` dequeue or drain):
//! - **lost**: acknowledged more often than dequeued;
//! - **duplicated**: dequeued more often than attempted (handed out twice);
//! - **unexpected**: dequeued but never attempted (or only attempted by enqueues that failed);
//! - **recovered**: dequeued, though its enqueue ended `info` (fine).
//!
//! Unlike Jepsen's, a duplicate makes the history invalid (exactly once). A loss is only
//! certain when the queue was drained (some `drain` completed `ok`) and the dequeues and drains
//! of unknown outcome cannot account for the missing elements (an `info` dequeue may have taken
//! one element, an `info` drain any number): otherwise the verdict is `unknown`, never `true`,
//! with the reason in `unknown_reason`.

use crate::checker::{CheckError, Validity, Verdict};
use crate::history::{pair_positions, Op, OpType};
use serde::Serialize;
use serde_json::Value;
use std::collections::HashMap;

/// At most this many example elements are listed per finding; counts are exact.
const EXAMPLES: usize = 32;

/// The total-queue checker's result.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct QueueResult {
    /// False on a loss, a duplicate or an unexpected element; unknown when a loss cannot be
    /// settled (see the module docs).
    #[serde(flatten)]
    pub verdict: Verdict,
    /// Enqueues invoked and not failed.
    pub attempt_count: u64,
    /// Enqueues acknowledged.
    pub acknowledged_count: u64,
    /// Elements taken by `ok` dequeues and drains.
    pub dequeued_count: u64,
    /// `ok` dequeues that found the queue empty.
    pub empty_dequeue_count: u64,
    /// Whether some drain completed `ok`.
    pub drained: bool,
    /// Dequeues whose outcome is unknown (each may have taken one element).
    pub indeterminate_dequeue_count: u64,
    /// Drains whose outcome is unknown (each may have taken any number).
    pub indeterminate_drain_count: u64,
    /// Elements acknowledged more often than dequeued (counted with multiplicity).
    pub lost_count: u64,
    /// Up to 32 of them, in the order they first appear.
    pub lost: Vec<Value>,
    /// Elements dequeued more often than their enqueues were attempted.
    pub duplicated_count: u64,
    /// Up to 32 of them, in the order they first appear.
    pub duplicated: Vec<Value>,
    /// Elements dequeued that no enqueue (other than failed ones) attempted.
    pub unexpected_count: u64,
    /// Up to 32 of them, in the order they first appear.
    pub unexpected: Vec<Value>,
    /// Elements dequeued whose enqueue ended `info` (fine).
    pub recovered_count: u64,
    /// Up to 32 of them, in the order they first appear.
    pub recovered: Vec<Value>,
}

#[derive(Default)]
struct Elements {
    index: HashMap<String, usize>,
    counts: Vec<Counts>,
}

#[derive(Default)]
struct Counts {
    value: Value,
    attempted: u64,
    acknowledged: u64,
    dequeued: u64,
}

/// Checks `enqueue`, `dequeue` and `drain` operations (see the module docs).
pub fn check(ops: &[Op]) -> Result<QueueResult, CheckError> {
    let pairs = pair_positions(ops).map_err(|e| CheckError::new(e.event, e.msg))?;
    // elements in the order they first appear (so findings list them in that order)
    let mut elems = Elements::default();
    fn entry<'a>(elems: &'a mut Elements, v: &Value) -> &'a mut Counts {
        let next = elems.counts.len();
        let i = *elems.index.entry(v.to_string()).or_insert(next);
        if i == next {
            elems.counts.push(Counts {
                value: v.clone(),
                ..Counts::default()
            });
        }
        &mut elems.counts[i]
    }
    let (mut empty, mut drained, mut info_deq, mut info_drain) = (0u64, false, 0u64, 0u64);
    for p in &pairs {
        let inv = &ops[p.invoke];
        let out = p.complete.map(|c| &ops[c].value).unwrap_or(&Value::Null);
        let at = p.complete.unwrap_or(p.invoke);
        match (inv.f.as_str(), p.outcome) {
            ("enqueue", OpType::Fail) => {}
            ("enqueue", outcome) => {
                let c = entry(&mut elems, &inv.value);
                c.attempted += 1;
                if outcome == OpType::Ok {
                    c.acknowledged += 1;
                }
            }
            ("dequeue", OpType::Ok) if out.is_null() => empty += 1,
            ("dequeue", OpType::Ok) => entry(&mut elems, out).dequeued += 1,
            ("dequeue", OpType::Fail) | ("drain", OpType::Fail) => {}
            ("dequeue", _) => info_deq += 1,
            ("drain", OpType::Ok) => {
                let Some(list) = out.as_array() else {
                    return Err(CheckError::new(
                        at,
                        format!("total-queue: a drain must return a list of elements, got {out}"),
                    ));
                };
                drained = true;
                for v in list {
                    entry(&mut elems, v).dequeued += 1;
                }
            }
            ("drain", _) => info_drain += 1,
            (other, _) => {
                return Err(CheckError::new(
                    p.invoke,
                    format!(
                        "total-queue: unexpected operation {other:?} (expected enqueue, dequeue \
                         or drain)"
                    ),
                ))
            }
        }
    }

    let mut r = QueueResult {
        verdict: Verdict {
            valid: Validity::True,
            summary: String::new(),
            unknown_reason: None,
        },
        attempt_count: 0,
        acknowledged_count: 0,
        dequeued_count: 0,
        empty_dequeue_count: empty,
        drained,
        indeterminate_dequeue_count: info_deq,
        indeterminate_drain_count: info_drain,
        lost_count: 0,
        lost: vec![],
        duplicated_count: 0,
        duplicated: vec![],
        unexpected_count: 0,
        unexpected: vec![],
        recovered_count: 0,
        recovered: vec![],
    };
    let note = |list: &mut Vec<Value>, count: &mut u64, n: u64, v: &Value| {
        if n > 0 {
            *count += n;
            if list.len() < EXAMPLES {
                list.push(v.clone());
            }
        }
    };
    for c in &elems.counts {
        r.attempt_count += c.attempted;
        r.acknowledged_count += c.acknowledged;
        r.dequeued_count += c.dequeued;
        if c.attempted == 0 {
            note(
                &mut r.unexpected,
                &mut r.unexpected_count,
                c.dequeued,
                &c.value,
            );
            continue;
        }
        let dup = c.dequeued.saturating_sub(c.attempted);
        note(&mut r.duplicated, &mut r.duplicated_count, dup, &c.value);
        let lost = c.acknowledged.saturating_sub(c.dequeued);
        note(&mut r.lost, &mut r.lost_count, lost, &c.value);
        let recovered = c.dequeued.min(c.attempted).saturating_sub(c.acknowledged);
        note(
            &mut r.recovered,
            &mut r.recovered_count,
            recovered,
            &c.value,
        );
    }

    // Is every missing element certainly lost?
    let uncertain = if r.lost_count == 0 {
        None
    } else if !drained {
        Some(format!(
            "the queue was never drained (no drain completed ok): the {} elements not dequeued \
             may still be in it",
            r.lost_count
        ))
    } else if info_drain > 0 {
        Some(format!(
            "{info_drain} drains of unknown outcome may have taken the {} elements not dequeued",
            r.lost_count
        ))
    } else if r.lost_count <= info_deq {
        Some(format!(
            "{info_deq} dequeues of unknown outcome may have taken the {} elements not dequeued",
            r.lost_count
        ))
    } else {
        None
    };
    let nothing = r.acknowledged_count == 0 && r.dequeued_count == 0;
    r.verdict.valid = if r.duplicated_count > 0 || r.unexpected_count > 0 {
        Validity::False
    } else if r.lost_count > 0 {
        match uncertain {
            Some(_) => Validity::Unknown,
            None => Validity::False,
        }
    } else if nothing {
        Validity::Unknown
    } else {
        Validity::True
    };
    if r.verdict.valid == Validity::Unknown {
        r.verdict.unknown_reason =
            Some(uncertain.unwrap_or_else(|| {
                "no enqueue was acknowledged and nothing was dequeued".to_string()
            }));
    }
    r.verdict.summary = summary(&r);
    Ok(r)
}

fn summary(r: &QueueResult) -> String {
    let mut parts = vec![format!(
        "{} acknowledged, {} dequeued",
        r.acknowledged_count, r.dequeued_count
    )];
    for (what, n, list) in [
        ("lost", r.lost_count, &r.lost),
        ("duplicated", r.duplicated_count, &r.duplicated),
        ("unexpected", r.unexpected_count, &r.unexpected),
        ("recovered", r.recovered_count, &r.recovered),
    ] {
        if n > 0 {
            let shown: Vec<String> = list.iter().take(8).map(Value::to_string).collect();
            let more = if n as usize > shown.len() {
                ", …"
            } else {
                ""
            };
            parts.push(format!("{n} {what} ({}{more})", shown.join(", ")));
        }
    }
    let mut s = parts.join(", ");
    if let Some(u) = &r.verdict.unknown_reason {
        s.push_str(&format!("; unknown: {u}"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::History;
    use serde_json::json;

    fn enq(h: History, p: u64, e: i64, outcome: OpType) -> History {
        h.invoke(p, "enqueue", json!(e))
            .event(p, outcome, "enqueue", json!(e))
    }
    fn deq(h: History, p: u64, got: Value) -> History {
        h.invoke(p, "dequeue", Value::Null).ok(p, "dequeue", got)
    }
    fn drain(h: History, p: u64, got: Value) -> History {
        h.invoke(p, "drain", Value::Null).ok(p, "drain", got)
    }

    #[test]
    fn everything_enqueued_comes_out_once() {
        let h = enq(History::new(), 0, 1, OpType::Ok);
        let h = enq(h, 1, 2, OpType::Ok);
        let h = deq(h, 0, json!(1));
        let h = deq(h, 1, Value::Null);
        let h = drain(h, 0, json!([2]));
        let r = check(&h.into_ops()).unwrap();
        assert_eq!(r.verdict.valid, Validity::True, "{r:?}");
        assert_eq!((r.acknowledged_count, r.dequeued_count), (2, 2));
        assert_eq!(r.empty_dequeue_count, 1);
    }

    #[test]
    fn lost_elements_are_named() {
        let mut h = History::new();
        for e in 1..=4 {
            h = enq(h, 0, e, OpType::Ok);
        }
        let h = drain(deq(h, 1, json!(1)), 1, json!([3]));
        let r = check(&h.into_ops()).unwrap();
        assert_eq!(r.verdict.valid, Validity::False, "{r:?}");
        assert_eq!(r.lost, vec![json!(2), json!(4)]);
        assert_eq!(r.lost_count, 2);
        assert!(
            r.verdict.summary.contains("2 lost (2, 4)"),
            "{}",
            r.verdict.summary
        );
    }

    #[test]
    fn duplicates_and_unexpected_elements_are_invalid() {
        let h = enq(History::new(), 0, 1, OpType::Ok);
        let h = drain(deq(h, 1, json!(1)), 1, json!([1, 9]));
        let r = check(&h.into_ops()).unwrap();
        assert_eq!(r.verdict.valid, Validity::False);
        assert_eq!(r.duplicated, vec![json!(1)]);
        assert_eq!(r.unexpected, vec![json!(9)]);
        // an element whose enqueue failed did not go in
        let h = enq(History::new(), 0, 5, OpType::Fail);
        let r = check(&drain(h, 1, json!([5])).into_ops()).unwrap();
        assert_eq!(r.unexpected_count, 1);
    }

    #[test]
    fn indeterminate_enqueues_may_or_may_not_come_out() {
        let h = enq(History::new(), 0, 1, OpType::Info);
        let h = enq(h, 1, 2, OpType::Info);
        let r = check(&drain(h, 2, json!([1])).into_ops()).unwrap();
        assert_eq!(r.verdict.valid, Validity::True, "{r:?}");
        assert_eq!(r.recovered, vec![json!(1)]);
        // the same element enqueued twice must come out twice
        let h = enq(enq(History::new(), 0, 7, OpType::Ok), 0, 7, OpType::Ok);
        let r = check(&drain(h, 1, json!([7])).into_ops()).unwrap();
        assert_eq!(r.verdict.valid, Validity::False);
        assert_eq!(r.lost_count, 1);
    }

    #[test]
    fn a_loss_that_unknown_dequeues_could_explain_is_unknown_never_true() {
        // never drained: the element may still be queued
        let h = enq(History::new(), 0, 1, OpType::Ok);
        let r = check(&h.clone().into_ops()).unwrap();
        assert_eq!(r.verdict.valid, Validity::Unknown);
        assert!(r
            .verdict
            .unknown_reason
            .as_deref()
            .unwrap()
            .contains("never drained"));
        // drained, but a dequeue of unknown outcome may have taken it
        let h2 = h
            .clone()
            .invoke(1, "dequeue", Value::Null)
            .info(1, "dequeue", Value::Null);
        let r = check(&drain(h2, 2, json!([])).into_ops()).unwrap();
        assert_eq!(r.verdict.valid, Validity::Unknown, "{r:?}");
        assert!(r
            .verdict
            .unknown_reason
            .as_deref()
            .unwrap()
            .contains("dequeues"));
        // an unknown drain may have taken any number
        let h3 = h.clone().invoke(1, "drain", Value::Null);
        let r = check(&drain(h3, 2, json!([])).into_ops()).unwrap();
        assert_eq!(r.verdict.valid, Validity::Unknown);
        // more missing than unknown dequeues could take: lost for sure
        let h4 = enq(h, 0, 2, OpType::Ok)
            .invoke(1, "dequeue", Value::Null)
            .info(1, "dequeue", Value::Null);
        let r = check(&drain(h4, 2, json!([])).into_ops()).unwrap();
        assert_eq!(r.verdict.valid, Validity::False);
    }

    #[test]
    fn malformed_histories_are_errors_naming_the_event() {
        let h = History::new()
            .invoke(0, "drain", Value::Null)
            .ok(0, "drain", json!(3));
        let e = check(&h.into_ops()).unwrap_err();
        assert_eq!(e.event, 1);
        assert!(e.msg.contains("list"), "{e}");
        let h = History::new()
            .invoke(0, "peek", Value::Null)
            .ok(0, "peek", json!(3));
        let e = check(&h.into_ops()).unwrap_err();
        assert!(e.msg.contains("peek"), "{e}");
    }

    #[test]
    fn nothing_to_check_is_unknown() {
        let r = check(&[]).unwrap();
        assert_eq!(r.verdict.valid, Validity::Unknown);
    }
}

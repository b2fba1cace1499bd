//! The `unique-ids` checker, after Jepsen's `unique-ids`: an id service must never hand out the
//! same id twice.
//!
//! Every `ok` completion of the generating operation (`generate` unless told otherwise) names
//! the id it was handed, as its value; ids are compared as JSON values. The history is invalid
//! when an id was acknowledged more than once; the ids handed out twice are named with how often.
//! Operations of other names are ignored (a workload may read other things beside).

use crate::checker::{CheckError, Validity, Verdict};
use crate::history::{pair_positions, Op, OpType};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

/// At most this many duplicated ids are listed; the count is exact.
const EXAMPLES: usize = 32;

/// Checker options.
#[derive(Debug, Clone)]
pub struct UniqueIdsOptions {
    /// The operation that hands out ids.
    pub f: String,
}

impl Default for UniqueIdsOptions {
    fn default() -> Self {
        UniqueIdsOptions {
            f: "generate".into(),
        }
    }
}

/// The unique-ids checker's result.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct UniqueIdsResult {
    /// False if an id was handed out twice, unknown when nothing could be judged, else true.
    #[serde(flatten)]
    pub verdict: Verdict,
    /// Generating operations invoked.
    pub attempt_count: u64,
    /// Ids acknowledged (with repeats).
    pub acknowledged_count: u64,
    /// Distinct ids acknowledged.
    pub distinct_count: u64,
    /// Ids acknowledged more than once.
    pub duplicated_count: u64,
    /// Up to 32 of them, each with how many times it was handed out (keys are the ids' JSON).
    pub duplicated: BTreeMap<String, u64>,
}

/// Checks the `ok` completions of `opts.f` for ids handed out twice.
pub fn check(ops: &[Op], opts: &UniqueIdsOptions) -> Result<UniqueIdsResult, CheckError> {
    let pairs = pair_positions(ops).map_err(|e| CheckError::new(e.event, e.msg))?;
    let mut seen: HashMap<String, u64> = HashMap::new();
    let (mut attempts, mut acked) = (0u64, 0u64);
    for p in pairs.iter().filter(|p| ops[p.invoke].f == opts.f) {
        attempts += 1;
        let Some(c) = p.complete.filter(|_| p.outcome == OpType::Ok) else {
            continue;
        };
        let id = &ops[c].value;
        if id.is_null() {
            return Err(CheckError::new(
                c,
                format!("unique-ids: {} completed ok without an id", opts.f),
            ));
        }
        acked += 1;
        *seen.entry(id.to_string()).or_insert(0) += 1;
    }
    let mut dups: Vec<(String, u64)> = seen
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(k, n)| (k.clone(), *n))
        .collect();
    dups.sort();
    let duplicated_count = dups.len() as u64;
    let valid = Validity::judged(duplicated_count > 0, acked == 0);
    let shown: Vec<String> = dups
        .iter()
        .take(8)
        .map(|(k, n)| format!("{k} ×{n}"))
        .collect();
    let summary = if duplicated_count == 0 {
        format!("{acked} ids acknowledged, none twice")
    } else {
        format!(
            "{acked} ids acknowledged, {duplicated_count} handed out more than once ({}{})",
            shown.join(", "),
            if dups.len() > shown.len() {
                ", …"
            } else {
                ""
            }
        )
    };
    Ok(UniqueIdsResult {
        verdict: Verdict {
            valid,
            summary,
            unknown_reason: (valid == Validity::Unknown)
                .then(|| format!("no {} was acknowledged", opts.f)),
        },
        attempt_count: attempts,
        acknowledged_count: acked,
        distinct_count: seen.len() as u64,
        duplicated_count,
        duplicated: dups.into_iter().take(EXAMPLES).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::History;
    use serde_json::{json, Value};

    fn gen(h: History, p: u64, id: Value) -> History {
        h.invoke(p, "generate", Value::Null).ok(p, "generate", id)
    }

    #[test]
    fn distinct_ids_are_valid() {
        let h = gen(gen(History::new(), 0, json!(1)), 1, json!("1"));
        let h = h
            .invoke(2, "generate", Value::Null)
            .info(2, "generate", Value::Null);
        let r = check(&h.into_ops(), &UniqueIdsOptions::default()).unwrap();
        assert_eq!(r.verdict.valid, Validity::True, "{r:?}");
        assert_eq!(
            (r.attempt_count, r.acknowledged_count, r.distinct_count),
            (3, 2, 2)
        );
    }

    #[test]
    fn an_id_handed_out_twice_is_named() {
        let mut h = History::new();
        for (p, id) in [(0, 1), (1, 2), (0, 2), (1, 3), (0, 2)] {
            h = gen(h, p, json!(id));
        }
        let r = check(&h.into_ops(), &UniqueIdsOptions::default()).unwrap();
        assert_eq!(r.verdict.valid, Validity::False);
        assert_eq!(r.duplicated_count, 1);
        assert_eq!(r.duplicated["2"], 3);
        assert!(r.verdict.summary.contains("2 ×3"), "{}", r.verdict.summary);
    }

    #[test]
    fn other_operations_are_ignored_and_the_name_is_an_option() {
        let h = History::new()
            .invoke(0, "next", Value::Null)
            .ok(0, "next", json!(5))
            .invoke(0, "read", Value::Null)
            .ok(0, "read", json!([5]));
        let opts = UniqueIdsOptions { f: "next".into() };
        assert_eq!(
            check(&h.clone().into_ops(), &opts).unwrap().verdict.valid,
            Validity::True
        );
        // nothing generated: nothing to judge
        let r = check(&h.into_ops(), &UniqueIdsOptions::default()).unwrap();
        assert_eq!(r.verdict.valid, Validity::Unknown);
    }

    #[test]
    fn an_ok_without_an_id_is_an_error() {
        let h = gen(History::new(), 0, Value::Null);
        let e = check(&h.into_ops(), &UniqueIdsOptions::default()).unwrap_err();
        assert_eq!(e.event, 1);
    }
}

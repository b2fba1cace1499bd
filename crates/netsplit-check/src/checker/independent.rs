//! Independent keys for any checker (Jepsen's `independent`): a history whose client values are
//! `[key, value]` pairs is split into one history per key, the key taken off every value, and a
//! checker runs on each; the keys' verdicts compose (false > unknown > true).
//!
//! [`split`] does the splitting: an invocation's value must be `[key, value]`; its completion
//! belongs to the same key (its own value is unwrapped when it is `[key, value]` with the same
//! key, and must be for an `ok`). Nemesis events go into every key's history. [`check`] runs a
//! checker over the keys and keeps the full results of the keys that were not valid.
//! (Linearizability has its own keyed mode, `linear::LinOptions::independent`.)

use crate::checker::{CheckError, Validity, Verdict};
use crate::history::{Op, OpType, Process};
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};

/// At most this many keys' results are kept in a [`KeyedResult`].
const EXAMPLES: usize = 32;

/// One key's history.
#[derive(Debug, Clone)]
pub struct KeyHistory {
    /// The key, as it appeared in the values.
    pub key: Value,
    /// This key's events, in history order, with values unwrapped from `[key, value]` and nemesis events kept.
    pub ops: Vec<Op>,
}

/// Splits a keyed history per key, in the order keys first appear (see the module docs).
pub fn split(ops: &[Op]) -> Result<Vec<KeyHistory>, CheckError> {
    let mut keys: Vec<KeyHistory> = Vec::new();
    let mut by_text: HashMap<String, usize> = HashMap::new();
    let mut open: HashMap<u64, usize> = HashMap::new();
    let mut nemesis: Vec<&Op> = Vec::new();
    for (i, op) in ops.iter().enumerate() {
        let Process::Client(p) = op.process else {
            for k in &mut keys {
                k.ops.push(op.clone());
            }
            nemesis.push(op);
            continue;
        };
        if op.kind == OpType::Invoke {
            let Some([key, v]) = op.value.as_array().map(Vec::as_slice) else {
                return Err(CheckError::new(
                    i,
                    format!("keyed values must be [key, value], got {}", op.value),
                ));
            };
            let text = key.to_string();
            let k = match by_text.get(&text) {
                Some(&k) => k,
                None => {
                    // a new key's history starts with the nemesis events so far
                    keys.push(KeyHistory {
                        key: key.clone(),
                        ops: nemesis.iter().map(|o| (*o).clone()).collect(),
                    });
                    by_text.insert(text, keys.len() - 1);
                    keys.len() - 1
                }
            };
            if open.insert(p, k).is_some() {
                return Err(CheckError::new(
                    i,
                    format!("process {p} invokes again while an invocation is open"),
                ));
            }
            let mut o = op.clone();
            o.value = v.clone();
            keys[k].ops.push(o);
        } else {
            let Some(k) = open.remove(&p) else {
                return Err(CheckError::new(
                    i,
                    format!("process {p} completes an operation it never invoked"),
                ));
            };
            let key = &keys[k].key;
            let inner = match op.value.as_array().map(Vec::as_slice) {
                Some([k2, v]) if k2 == key => Some(v.clone()),
                _ => None,
            };
            let v = match (inner, op.kind) {
                (Some(v), _) => v,
                (None, OpType::Ok) => {
                    return Err(CheckError::new(
                        i,
                        format!(
                            "an ok completion of key {key} must be [{key}, value], got {}",
                            op.value
                        ),
                    ))
                }
                (None, _) => Value::Null,
            };
            let mut o = op.clone();
            o.value = v;
            keys[k].ops.push(o);
        }
    }
    Ok(keys)
}

/// The result of a checker run per key.
#[derive(Debug, Clone, Serialize)]
pub struct KeyedResult {
    /// Merged verdict over all keys: false if any key is invalid, else unknown if any is
    /// unknown; the summary has the first invalid (else unknown) keys in a line, each with its
    /// checker's summary, and the unknown reason is the first unknown key's.
    #[serde(flatten)]
    pub verdict: Verdict,
    /// How many distinct keys the history holds.
    pub key_count: usize,
    /// How many keys the checker found invalid.
    pub invalid_key_count: usize,
    /// How many keys the checker could not decide.
    pub unknown_key_count: usize,
    /// The full results of up to 32 keys that were not valid, by key (JSON text).
    pub keys: BTreeMap<String, Value>,
}

/// Runs `checker` on every key's history (see [`split`]) and composes the verdicts.
pub fn check<R, F>(ops: &[Op], checker: F) -> Result<KeyedResult, CheckError>
where
    R: Serialize,
    F: Fn(&[Op]) -> Result<R, CheckError>,
{
    let keys = split(ops)?;
    let mut valid = Validity::True;
    let (mut invalid, mut unknown) = (0usize, 0usize);
    let mut kept: BTreeMap<String, Value> = BTreeMap::new();
    let mut lines: Vec<String> = Vec::new();
    let mut first_unknown: Option<String> = None;
    for k in &keys {
        let r = checker(&k.ops)
            .map_err(|e| CheckError::new(e.event, format!("key {}: {}", k.key, e.msg)))?;
        let r = serde_json::to_value(r).map_err(|e| CheckError::new(0, e.to_string()))?;
        let v = r
            .get("valid")
            .and_then(|x| serde_json::from_value::<Validity>(x.clone()).ok())
            .unwrap_or(Validity::Unknown);
        valid = valid.merge(v);
        let said = ["summary", "unknown_reason", "error"]
            .iter()
            .find_map(|f| r.get(*f).and_then(Value::as_str))
            .unwrap_or("")
            .to_string();
        match v {
            Validity::True => continue,
            Validity::False => {
                invalid += 1;
                if lines.len() < 3 {
                    lines.push(format!("key {}: {said}", k.key));
                }
            }
            Validity::Unknown => {
                unknown += 1;
                first_unknown.get_or_insert_with(|| format!("key {}: {said}", k.key));
            }
        }
        if kept.len() < EXAMPLES {
            kept.insert(k.key.to_string(), r);
        }
    }
    if keys.is_empty() {
        valid = Validity::Unknown;
        first_unknown = Some("no keyed operations".into());
    }
    let summary = match valid {
        Validity::True => format!("{} keys, all valid", keys.len()),
        Validity::False => format!(
            "{invalid} of {} keys invalid: {}{}",
            keys.len(),
            lines.join("; "),
            if invalid > lines.len() { "; …" } else { "" }
        ),
        Validity::Unknown => format!(
            "{unknown} of {} keys unknown: {}",
            keys.len(),
            first_unknown.clone().unwrap_or_default()
        ),
    };
    Ok(KeyedResult {
        verdict: Verdict {
            valid,
            summary,
            unknown_reason: (valid == Validity::Unknown).then(|| first_unknown.unwrap_or_default()),
        },
        key_count: keys.len(),
        invalid_key_count: invalid,
        unknown_key_count: unknown,
        keys: kept,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checker::queue;
    use crate::history::History;
    use serde_json::json;

    #[test]
    fn splits_by_key_and_unwraps_values() {
        let h = History::new()
            .invoke(0, "enqueue", json!(["a", 1]))
            .nemesis("start-partition", Value::Null)
            .invoke(1, "enqueue", json!(["b", 2]))
            .ok(0, "enqueue", json!(["a", 1]))
            .info(1, "enqueue", Value::Null)
            .into_ops();
        let ks = split(&h).unwrap();
        assert_eq!(ks.len(), 2);
        assert_eq!(ks[0].key, json!("a"));
        let a: Vec<(&str, &Value)> = ks[0].ops.iter().map(|o| (o.f.as_str(), &o.value)).collect();
        assert_eq!(
            a,
            vec![
                ("enqueue", &json!(1)),
                ("start-partition", &Value::Null),
                ("enqueue", &json!(1))
            ]
        );
        // key b was first seen after the nemesis event: its history still has it
        assert_eq!(ks[1].ops[0].f, "start-partition");
        assert_eq!(ks[1].ops[2].value, Value::Null);
    }

    #[test]
    fn malformed_keyed_values_are_errors() {
        let h = History::new().invoke(0, "enqueue", json!(1)).into_ops();
        assert_eq!(split(&h).unwrap_err().event, 0);
        let h = History::new()
            .invoke(0, "dequeue", json!(["a", null]))
            .ok(0, "dequeue", json!(["b", 1]))
            .into_ops();
        assert!(split(&h).unwrap_err().msg.contains("must be"));
    }

    #[test]
    fn verdicts_compose_across_keys_and_name_the_bad_key() {
        let h = History::new()
            .invoke(0, "enqueue", json!([0, 1]))
            .ok(0, "enqueue", json!([0, 1]))
            .invoke(0, "enqueue", json!([1, 2]))
            .ok(0, "enqueue", json!([1, 2]))
            .invoke(1, "drain", json!([0, null]))
            .ok(1, "drain", json!([0, [1]]))
            .invoke(1, "drain", json!([1, null]))
            .ok(1, "drain", json!([1, []]))
            .into_ops();
        let r = check(&h, queue::check).unwrap();
        assert_eq!(r.verdict.valid, Validity::False, "{r:?}");
        assert_eq!((r.key_count, r.invalid_key_count), (2, 1));
        assert!(r.keys.contains_key("1") && !r.keys.contains_key("0"));
        assert!(
            r.verdict.summary.contains("key 1: ") && r.verdict.summary.contains("1 lost (2)"),
            "{}",
            r.verdict.summary
        );
    }
}

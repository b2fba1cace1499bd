//! Workloads: for each built-in name, the client generator of the main phase, the final
//! generator (reads after healing) and the checkers that judge the history.
//!
//! The operation vocabulary each workload speaks is the contract with targets' clients
//! (`docs/adding-a-target.md`):
//! - `register`: `read [k, null]` → `[k, v]`; `write [k, v]`; `cas [k, [old, new]]` (fail if
//!   the value differs). Checked for linearizability per key (`checker::linear`, cas-register).
//! - `set`: `add e` (unique integers); `read null` → `[e…]`. Final read on every worker and node.
//!   Checked by `checker::set`.
//! - `counter`: `add d` (d ≥ 0); `read null` → n. Final read on every worker and node.
//!   Checked by `checker::counter`.
//! - `bank`: `transfer {from, to, amount}` (fail if it would overdraw, unless allowed);
//!   `read null` → `{"0": b0, "1": b1, …}`. Final read on every worker and node. Checked by
//!   `checker::bank`.
//! - `list-append`: `txn [["append", k, v] | ["r", k, null], …]` → the same list with reads
//!   filled in (`["r", k, [v…]]`). Checked by `checker::txn` (Elle).
//!
//! Every workload also gets the `stats` checker.
//!
//! Checking is a pure function of the plan and the history, which is what lets
//! `netsplit analyze` re-check a stored run.

use crate::checker::{self, Budget, CheckError, Validity};
use crate::error::bad_input;
use crate::generator::{self as g, BoxGen, Ctx};
use crate::history::Op;
use crate::plan::{Plan, WorkloadPlan};
use anyhow::Result;
use serde::Serialize;
use serde_json::{json, Map, Value};
use std::time::Duration;

/// The built-in workloads.
pub const NAMES: &[&str] = &["register", "set", "counter", "bank", "list-append"];

/// A workload's generators. The runner wraps `generator` in the plan's rate and time limit.
pub struct Workload {
    /// Client operations of the main phase.
    pub generator: BoxGen,
    /// Operations after healing and quiescence (typically a read on every worker), if any.
    pub final_generator: Option<BoxGen>,
}

/// Checks the workload section of a plan against the run section.
pub fn validate(plan: &Plan) -> Result<()> {
    let w = &plan.workload;
    if !NAMES.contains(&w.name.as_str()) {
        return Err(bad_input(format!(
            "plan: workload.name {:?} is not a built-in workload (known: {})",
            w.name,
            NAMES.join(", ")
        )));
    }
    let bad = |k: &str, why: String| Err(bad_input(format!("plan: workload.{k} {why}")));
    match w.name.as_str() {
        "register" => {
            if w.threads_per_key == 0 || w.threads_per_key > plan.run.concurrency {
                return bad(
                    "threads_per_key",
                    format!(
                        "must be between 1 and run.concurrency ({})",
                        plan.run.concurrency
                    ),
                );
            }
            if w.ops_per_key == 0 {
                return bad("ops_per_key", "must be at least 1".into());
            }
            if w.value_range == 0 {
                return bad("value_range", "must be at least 1".into());
            }
            if w.read + w.write + w.cas <= 0.0 {
                return bad("read", "+ write + cas must be positive".into());
            }
        }
        "bank" => {
            if w.accounts < 2 {
                return bad("accounts", "must be at least 2".into());
            }
            if w.max_transfer < 1 {
                return bad("max_transfer", "must be at least 1".into());
            }
            if w.total < 0 {
                return bad("total", "must not be negative".into());
            }
        }
        "list-append" => {
            if w.keys == 0 {
                return bad("keys", "must be at least 1".into());
            }
            if w.max_txn_len == 0 {
                return bad("max_txn_len", "must be at least 1".into());
            }
            if w.max_writes_per_key == 0 {
                return bad("max_writes_per_key", "must be at least 1".into());
            }
        }
        _ => {}
    }
    if matches!(w.name.as_str(), "set" | "counter" | "bank") && w.read + w.write <= 0.0 {
        return bad("read", "+ write must be positive".into());
    }
    Ok(())
}

/// The generators of the plan's workload.
pub fn build(plan: &Plan) -> Result<Workload> {
    validate(plan)?;
    let w = plan.workload.clone();
    Ok(match w.name.as_str() {
        "register" => Workload {
            generator: register(&w),
            final_generator: None,
        },
        "set" => Workload {
            generator: set(&w),
            final_generator: Some(g::each_thread_once("read", Value::Null)),
        },
        "counter" => Workload {
            generator: g::mix_weighted(vec![
                (w.write, g::repeat("add", json!(1))),
                (w.read, g::repeat("read", Value::Null)),
            ]),
            final_generator: Some(g::each_thread_once("read", Value::Null)),
        },
        "bank" => Workload {
            generator: bank(&w),
            final_generator: Some(g::each_thread_once("read", Value::Null)),
        },
        "list-append" => Workload {
            generator: list_append(&w),
            final_generator: None,
        },
        other => return Err(bad_input(format!("unknown workload {other:?}"))),
    })
}

fn register(w: &WorkloadPlan) -> BoxGen {
    let keys: Box<dyn Iterator<Item = Value> + Send> = if w.keys == 0 {
        Box::new((0u64..).map(|k| json!(k)))
    } else {
        Box::new((0..w.keys).map(|k| json!(k)))
    };
    let (r, wr, c, range) = (w.read, w.write, w.cas, w.value_range);
    g::independent_concurrent(w.threads_per_key, keys, w.ops_per_key, move |_k| {
        g::mix_weighted(vec![
            (r, g::repeat("read", Value::Null)),
            (
                wr,
                Box::new(g::from_fn(move |ctx: &mut Ctx| {
                    Some(("write".into(), json!(ctx.rng.below(range))))
                })),
            ),
            (
                c,
                Box::new(g::from_fn(move |ctx: &mut Ctx| {
                    let old = ctx.rng.below(range);
                    let new = ctx.rng.below(range);
                    Some(("cas".into(), json!([old, new])))
                })),
            ),
        ])
    })
}

fn set(w: &WorkloadPlan) -> BoxGen {
    let mut next = 0u64;
    g::mix_weighted(vec![
        (
            w.write,
            Box::new(g::from_fn(move |_| {
                let e = next;
                next += 1;
                Some(("add".into(), json!(e)))
            })),
        ),
        (w.read, g::repeat("read", Value::Null)),
    ])
}

fn bank(w: &WorkloadPlan) -> BoxGen {
    let (n, max) = (w.accounts, w.max_transfer);
    g::mix_weighted(vec![
        (
            w.write,
            Box::new(g::from_fn(move |ctx: &mut Ctx| {
                let from = ctx.rng.below(n);
                let mut to = ctx.rng.below(n - 1);
                if to >= from {
                    to += 1;
                }
                let amount = ctx.rng.range_inclusive(1, max);
                Some((
                    "transfer".into(),
                    json!({"from": from, "to": to, "amount": amount}),
                ))
            })),
        ),
        (w.read, g::repeat("read", Value::Null)),
    ])
}

/// Elle's list-append generator: `keys` active keys; each transaction has 1..=max_txn_len
/// micro-ops on random active keys, half appends (of values unique per key) and half reads; a
/// key that received `max_writes_per_key` appends retires and a fresh key takes its place.
fn list_append(w: &WorkloadPlan) -> BoxGen {
    let mut active: Vec<u64> = (0..w.keys).collect();
    let mut next_key = w.keys;
    let mut written: std::collections::HashMap<u64, u64> = Default::default();
    let (max_len, max_writes) = (w.max_txn_len as u64, w.max_writes_per_key);
    Box::new(g::from_fn(move |ctx: &mut Ctx| {
        let len = 1 + ctx.rng.below(max_len);
        let mut txn = Vec::with_capacity(len as usize);
        for _ in 0..len {
            let slot = ctx.rng.below(active.len() as u64) as usize;
            let k = active[slot];
            if ctx.rng.chance(0.5) {
                txn.push(json!(["r", k, null]));
            } else {
                let n = written.entry(k).or_insert(0);
                *n += 1;
                txn.push(json!(["append", k, *n]));
                if *n >= max_writes {
                    written.remove(&k);
                    active[slot] = next_key;
                    next_key += 1;
                }
            }
        }
        Some(("txn".into(), Value::Array(txn)))
    }))
}

/// One checker's outcome as stored in results.json: always has `"valid"`.
fn to_result<T: Serialize>(r: Result<T, CheckError>) -> (Validity, Value) {
    match r {
        Ok(v) => {
            let v = serde_json::to_value(v).unwrap_or_else(|e| json!({"error": e.to_string()}));
            let valid = v
                .get("valid")
                .and_then(|x| serde_json::from_value::<Validity>(x.clone()).ok())
                .unwrap_or(Validity::Unknown);
            (valid, v)
        }
        // A checker that could not interpret the history proves nothing: unknown, never true.
        Err(e) => (
            Validity::Unknown,
            json!({"valid": "unknown", "error": e.to_string()}),
        ),
    }
}

/// Runs every checker of the plan's workload on a history. Returns the overall verdict
/// (false > unknown > true) and each checker's result by name.
pub fn check(plan: &Plan, ops: &[Op]) -> (Validity, Map<String, Value>) {
    let w = &plan.workload;
    let budget = Budget::with_time_limit(if w.check_time_limit > 0.0 {
        Some(Duration::from_secs_f64(w.check_time_limit))
    } else {
        None
    });
    let mut results: Vec<(&str, (Validity, Value))> = Vec::new();
    match w.name.as_str() {
        "register" => {
            let opts = checker::linear::LinOptions {
                model: checker::linear::ModelKind::CasRegister,
                initial: Value::Null,
                independent: true,
                partition: true,
                budget: budget.clone(),
            };
            results.push(("linear", to_result(checker::linear::check(ops, &opts))));
        }
        "set" => {
            let opts = checker::set::SetOptions {
                linearizable: w.linearizable,
            };
            results.push(("set", to_result(checker::set::check(ops, &opts))));
        }
        "counter" => results.push(("counter", to_result(checker::counter::check(ops)))),
        "bank" => {
            let opts = checker::bank::BankOptions {
                accounts: w.accounts,
                total: w.total,
                allow_negative: w.allow_negative,
            };
            results.push(("bank", to_result(checker::bank::check(ops, &opts))));
        }
        "list-append" => {
            let opts = checker::txn::TxnOptions {
                workload: checker::txn::TxnWorkload::ListAppend,
                consistency_models: w.consistency_models.clone(),
                budget: budget.clone(),
            };
            results.push(("txn", to_result(checker::txn::check(ops, &opts))));
        }
        other => results.push((
            "workload",
            (
                Validity::Unknown,
                json!({"valid": "unknown", "error": format!("unknown workload {other:?}")}),
            ),
        )),
    }
    results.push(("stats", to_result(checker::stats::check(ops))));
    // Availability per fault window is information, not a verdict: it is recorded as valid
    // when it could be computed (a malformed history is caught by the checkers above).
    if ops.iter().any(|o| !o.process.is_client()) {
        let avail = match checker::availability::availability(ops) {
            Ok(a) => {
                let mut v =
                    serde_json::to_value(a).unwrap_or_else(|e| json!({"error": e.to_string()}));
                if let Some(m) = v.as_object_mut() {
                    m.insert("valid".into(), json!(true));
                }
                (Validity::True, v)
            }
            Err(e) => (
                Validity::Unknown,
                json!({"valid": "unknown", "error": e.to_string()}),
            ),
        };
        results.push(("availability", avail));
    }
    let valid = results.iter().map(|(_, (v, _))| *v).collect();
    let map = results
        .into_iter()
        .map(|(n, (_, v))| (n.to_string(), v))
        .collect();
    (valid, map)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generator::sim::simulate;

    fn plan(name: &str) -> Plan {
        let mut p = Plan::default();
        p.workload.name = name.into();
        p.workload.keys = if name == "list-append" { 4 } else { 0 };
        p
    }

    #[test]
    fn every_workload_generates_its_vocabulary() {
        for (name, fs) in [
            ("register", &["read", "write", "cas"][..]),
            ("set", &["add", "read"][..]),
            ("counter", &["add", "read"][..]),
            ("bank", &["transfer", "read"][..]),
            ("list-append", &["txn"][..]),
        ] {
            let wl = build(&plan(name)).unwrap();
            let ops = simulate(g::limit(300, wl.generator), 4, 1, 1000, u64::MAX);
            assert_eq!(ops.len(), 300, "{name}");
            for f in fs {
                assert!(ops.iter().any(|o| o.f == *f), "{name} never emits {f}");
            }
            assert!(ops.iter().all(|o| fs.contains(&o.f.as_str())), "{name}");
        }
    }

    #[test]
    fn set_adds_are_unique_and_list_appends_unique_per_key() {
        let ops = simulate(
            g::limit(500, build(&plan("set")).unwrap().generator),
            3,
            2,
            10,
            u64::MAX,
        );
        let adds: Vec<_> = ops
            .iter()
            .filter(|o| o.f == "add")
            .map(|o| o.value.clone())
            .collect();
        let uniq: std::collections::HashSet<String> = adds.iter().map(|v| v.to_string()).collect();
        assert_eq!(adds.len(), uniq.len());
        let ops = simulate(
            g::limit(500, build(&plan("list-append")).unwrap().generator),
            3,
            2,
            10,
            u64::MAX,
        );
        let mut seen = std::collections::HashSet::new();
        for o in &ops {
            for m in o.value.as_array().unwrap() {
                if m[0] == "append" {
                    assert!(seen.insert((m[1].to_string(), m[2].to_string())), "{m}");
                }
            }
        }
    }

    #[test]
    fn checker_error_is_unknown_never_true() {
        let (v, m) = to_result::<checker::stats::StatsResult>(Err(CheckError::new(3, "boom")));
        assert_eq!(v, Validity::Unknown);
        assert_eq!(m["valid"], "unknown");
        assert!(m["error"].as_str().unwrap().contains("boom"));
    }

    #[test]
    fn register_threads_per_key_above_concurrency_is_bad_input() {
        let mut p = plan("register");
        p.run.concurrency = 1;
        p.workload.threads_per_key = 2;
        let e = validate(&p).unwrap_err();
        assert!(e.to_string().contains("threads_per_key"));
    }
}

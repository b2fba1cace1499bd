//! Tests of the linearizability checker: a tiny hand-written history per model (valid and
//! invalid), `info`/`fail` semantics, budgets, evidence, and a property test against a
//! brute-force oracle that tries every real-time-consistent order.

use super::*;
use crate::history::{Op, OpType, Process};
use crate::rng::Rng;
use serde_json::json;
use std::time::Duration;

/// Builds a history from `(process, type, f, value)` rows.
fn hist(rows: &[(i64, &str, &str, Value)]) -> Vec<Op> {
    let mut out: Vec<Op> = rows
        .iter()
        .map(|(p, t, f, v)| {
            let process = if *p < 0 {
                Process::Nemesis
            } else {
                Process::Client(*p as u64)
            };
            let kind = match *t {
                "invoke" => OpType::Invoke,
                "ok" => OpType::Ok,
                "fail" => OpType::Fail,
                _ => OpType::Info,
            };
            Op::new(process, kind, *f, v.clone())
        })
        .collect();
    crate::history::reindex(&mut out);
    out
}

fn verdict(model: ModelKind, independent: bool, ops: &[Op]) -> Validity {
    let mut o = LinOptions::new(model);
    o.independent = independent || model == ModelKind::Kv;
    check(ops, &o).expect("history is well-formed").valid
}

// ---- one valid and one invalid history per model ----

#[test]
fn register_read_of_last_write_is_linearizable() {
    let h = hist(&[
        (0, "invoke", "write", json!(1)),
        (0, "ok", "write", json!(1)),
        (1, "invoke", "read", json!(null)),
        (1, "ok", "read", json!(1)),
    ]);
    assert_eq!(verdict(ModelKind::Register, false, &h), Validity::True);
}

#[test]
fn register_detects_stale_read() {
    let h = hist(&[
        (0, "invoke", "write", json!(1)),
        (0, "ok", "write", json!(1)),
        (0, "invoke", "write", json!(2)),
        (0, "ok", "write", json!(2)),
        (1, "invoke", "read", json!(null)),
        (1, "ok", "read", json!(1)),
    ]);
    assert_eq!(verdict(ModelKind::Register, false, &h), Validity::False);
}

#[test]
fn cas_register_cas_from_initial_null_then_read() {
    let h = hist(&[
        (0, "invoke", "cas", json!([null, 3])),
        (1, "invoke", "read", json!(null)),
        (0, "ok", "cas", json!([null, 3])),
        (1, "ok", "read", json!(3)),
    ]);
    assert_eq!(verdict(ModelKind::CasRegister, false, &h), Validity::True);
}

#[test]
fn cas_register_detects_cas_from_wrong_value() {
    let h = hist(&[
        (0, "invoke", "write", json!(1)),
        (0, "ok", "write", json!(1)),
        (1, "invoke", "cas", json!([0, 2])),
        (1, "ok", "cas", json!([0, 2])),
    ]);
    assert_eq!(verdict(ModelKind::CasRegister, false, &h), Validity::False);
}

#[test]
fn multi_register_atomic_txn_is_seen_whole() {
    let h = hist(&[
        (0, "invoke", "txn", json!([["w", "x", 1], ["w", "y", 2]])),
        (
            1,
            "invoke",
            "txn",
            json!([["r", "x", null], ["r", "y", null]]),
        ),
        (0, "ok", "txn", json!([["w", "x", 1], ["w", "y", 2]])),
        (1, "ok", "txn", json!([["r", "x", 1], ["r", "y", 2]])),
    ]);
    assert_eq!(verdict(ModelKind::MultiRegister, false, &h), Validity::True);
}

#[test]
fn multi_register_detects_fractured_read() {
    let h = hist(&[
        (0, "invoke", "txn", json!([["w", "x", 1], ["w", "y", 2]])),
        (0, "ok", "txn", json!([["w", "x", 1], ["w", "y", 2]])),
        (
            1,
            "invoke",
            "txn",
            json!([["r", "x", null], ["r", "y", null]]),
        ),
        (1, "ok", "txn", json!([["r", "x", 1], ["r", "y", null]])),
    ]);
    assert_eq!(
        verdict(ModelKind::MultiRegister, false, &h),
        Validity::False
    );
}

#[test]
fn mutex_handover_after_release() {
    let h = hist(&[
        (0, "invoke", "acquire", json!(null)),
        (0, "ok", "acquire", json!(null)),
        (1, "invoke", "acquire", json!(null)),
        (0, "invoke", "release", json!(null)),
        (0, "ok", "release", json!(null)),
        (1, "ok", "acquire", json!(null)),
    ]);
    assert_eq!(verdict(ModelKind::Mutex, false, &h), Validity::True);
}

#[test]
fn mutex_detects_double_acquire() {
    let h = hist(&[
        (0, "invoke", "acquire", json!(null)),
        (0, "ok", "acquire", json!(null)),
        (1, "invoke", "acquire", json!(null)),
        (1, "ok", "acquire", json!(null)),
    ]);
    assert_eq!(verdict(ModelKind::Mutex, false, &h), Validity::False);
}

#[test]
fn set_read_concurrent_with_add_may_miss_it() {
    let h = hist(&[
        (0, "invoke", "add", json!(1)),
        (0, "ok", "add", json!(1)),
        (0, "invoke", "add", json!(2)),
        (1, "invoke", "read", json!(null)),
        (1, "ok", "read", json!([1])),
        (0, "ok", "add", json!(2)),
    ]);
    assert_eq!(verdict(ModelKind::Set, false, &h), Validity::True);
}

#[test]
fn set_detects_lost_add() {
    let h = hist(&[
        (0, "invoke", "add", json!(1)),
        (0, "ok", "add", json!(1)),
        (1, "invoke", "read", json!(null)),
        (1, "ok", "read", json!([])),
    ]);
    assert_eq!(verdict(ModelKind::Set, false, &h), Validity::False);
}

#[test]
fn fifo_queue_dequeues_in_order() {
    let h = hist(&[
        (0, "invoke", "enqueue", json!(1)),
        (0, "ok", "enqueue", json!(1)),
        (0, "invoke", "enqueue", json!(2)),
        (0, "ok", "enqueue", json!(2)),
        (1, "invoke", "dequeue", json!(null)),
        (1, "ok", "dequeue", json!(1)),
        (1, "invoke", "dequeue", json!(null)),
        (1, "ok", "dequeue", json!(2)),
        (1, "invoke", "dequeue", json!(null)),
        (1, "ok", "dequeue", json!(null)),
    ]);
    assert_eq!(verdict(ModelKind::FifoQueue, false, &h), Validity::True);
}

#[test]
fn fifo_queue_detects_reordering() {
    let h = hist(&[
        (0, "invoke", "enqueue", json!(1)),
        (0, "ok", "enqueue", json!(1)),
        (0, "invoke", "enqueue", json!(2)),
        (0, "ok", "enqueue", json!(2)),
        (1, "invoke", "dequeue", json!(null)),
        (1, "ok", "dequeue", json!(2)),
    ]);
    assert_eq!(verdict(ModelKind::FifoQueue, false, &h), Validity::False);
}

#[test]
fn kv_appends_concatenate_per_key() {
    let h = hist(&[
        (0, "invoke", "put", json!(["a", "x"])),
        (0, "ok", "put", json!(["a", "x"])),
        (1, "invoke", "append", json!(["a", "y"])),
        (2, "invoke", "append", json!(["b", "z"])),
        (1, "ok", "append", json!(["a", "y"])),
        (2, "ok", "append", json!(["b", "z"])),
        (0, "invoke", "get", json!(["a", null])),
        (0, "ok", "get", json!(["a", "xy"])),
        (0, "invoke", "get", json!(["b", null])),
        (0, "ok", "get", json!(["b", "z"])),
    ]);
    assert_eq!(verdict(ModelKind::Kv, true, &h), Validity::True);
}

#[test]
fn kv_detects_lost_append() {
    let h = hist(&[
        (0, "invoke", "append", json!(["a", "x"])),
        (0, "ok", "append", json!(["a", "x"])),
        (1, "invoke", "get", json!(["a", null])),
        (1, "ok", "get", json!(["a", ""])),
    ]);
    assert_eq!(verdict(ModelKind::Kv, true, &h), Validity::False);
}

#[test]
fn keyed_cas_register_checks_keys_independently() {
    // Per key this is fine; read as one register it would be a stale read.
    let h = hist(&[
        (0, "invoke", "write", json!([1, 5])),
        (0, "ok", "write", json!([1, 5])),
        (1, "invoke", "write", json!([2, 6])),
        (1, "ok", "write", json!([2, 6])),
        (2, "invoke", "read", json!([1, null])),
        (2, "ok", "read", json!([1, 5])),
    ]);
    assert_eq!(verdict(ModelKind::CasRegister, true, &h), Validity::True);
    let mut bad = h.clone();
    bad[5].value = json!([1, 6]);
    let mut o = LinOptions::new(ModelKind::CasRegister);
    o.independent = true;
    let r = check(&bad, &o).unwrap();
    assert_eq!(r.valid, Validity::False);
    assert_eq!(r.keys, 2);
    assert_eq!(r.failures.len(), 1);
    assert_eq!(r.failures[0].key, Some(json!(1)));
    o.partition = false;
    assert_eq!(check(&bad, &o).unwrap().valid, Validity::False);
}

// ---- info, fail, nemesis ----

#[test]
fn info_write_may_take_effect_later() {
    let h = hist(&[
        (0, "invoke", "write", json!(1)),
        (0, "info", "write", json!(1)),
        (1, "invoke", "read", json!(null)),
        (1, "ok", "read", json!(null)),
        (1, "invoke", "read", json!(null)),
        (1, "ok", "read", json!(1)),
    ]);
    assert_eq!(verdict(ModelKind::Register, false, &h), Validity::True);
}

#[test]
fn info_write_may_never_take_effect() {
    let h = hist(&[
        (0, "invoke", "write", json!(1)),
        (1, "invoke", "read", json!(null)),
        (1, "ok", "read", json!(null)),
    ]);
    assert_eq!(verdict(ModelKind::Register, false, &h), Validity::True);
}

#[test]
fn info_write_once_seen_cannot_unhappen() {
    let h = hist(&[
        (0, "invoke", "write", json!(1)),
        (0, "info", "write", json!(1)),
        (1, "invoke", "read", json!(null)),
        (1, "ok", "read", json!(1)),
        (1, "invoke", "read", json!(null)),
        (1, "ok", "read", json!(null)),
    ]);
    assert_eq!(verdict(ModelKind::Register, false, &h), Validity::False);
}

#[test]
fn failed_write_did_not_happen() {
    let h = hist(&[
        (0, "invoke", "write", json!(1)),
        (0, "fail", "write", json!(1)),
        (-1, "info", "start-partition", json!(["n1"])),
        (1, "invoke", "read", json!(null)),
        (1, "ok", "read", json!(1)),
    ]);
    let r = check(&h, &LinOptions::new(ModelKind::Register)).unwrap();
    assert_eq!(r.valid, Validity::False);
    assert_eq!(r.failed_ops, 1);
}

#[test]
fn empty_history_is_valid() {
    let r = check(&[], &LinOptions::new(ModelKind::CasRegister)).unwrap();
    assert_eq!(r.valid, Validity::True);
    assert_eq!(r.checked_ops, 0);
}

#[test]
fn wrong_value_shape_is_a_check_error_naming_the_event() {
    let h = hist(&[
        (0, "invoke", "write", json!(1)),
        (0, "ok", "write", json!(1)),
        (0, "invoke", "cas", json!(7)),
        (0, "ok", "cas", json!(7)),
    ]);
    let e = check(&h, &LinOptions::new(ModelKind::CasRegister)).unwrap_err();
    assert_eq!(e.event, 3);
    assert!(e.msg.contains("[from, to]"), "{e}");
    let e = check(&h, &LinOptions::new(ModelKind::Mutex)).unwrap_err();
    assert!(e.msg.contains("no operation 'write'"), "{e}");
}

// ---- evidence and budgets ----

#[test]
fn invalid_result_explains_itself() {
    let h = hist(&[
        (0, "invoke", "write", json!(1)),
        (0, "ok", "write", json!(1)),
        (0, "invoke", "write", json!(2)),
        (0, "ok", "write", json!(2)),
        (1, "invoke", "read", json!(null)),
        (1, "ok", "read", json!(1)),
    ]);
    let r = check(&h, &LinOptions::new(ModelKind::Register)).unwrap();
    let ev = &r.failures[0];
    assert_eq!(ev.linearized.len(), 2);
    assert_eq!(ev.linearized[1].state, json!(2));
    let stuck = ev.stuck.as_ref().unwrap();
    assert_eq!((stuck.f.as_str(), stuck.invoke), ("read", 4));
    assert!(!ev.open[0].model_accepts);
    let j = serde_json::to_value(&r).unwrap();
    assert_eq!(j["valid"], json!(false));
    assert_eq!(j["failures"][0]["stuck"]["output"], json!(1));
}

/// Many concurrent writes and an impossible read: thousands of configurations to refute.
fn hard_history() -> Vec<Op> {
    let mut rows = Vec::new();
    for p in 0..12 {
        rows.push((p, "invoke", "write", json!(p)));
    }
    for p in 0..12 {
        rows.push((p, "ok", "write", json!(p)));
    }
    rows.push((20, "invoke", "read", json!(null)));
    rows.push((20, "ok", "read", json!(99)));
    // Extra concurrency at the end so the search must go deep before refuting.
    hist(&rows)
}

#[test]
fn out_of_time_is_unknown_never_true() {
    let mut o = LinOptions::new(ModelKind::Register);
    o.budget = Budget::with_time_limit(Some(Duration::ZERO));
    let r = check(&hard_history(), &o).unwrap();
    assert_eq!(r.valid, Validity::Unknown);
    assert!(r.unknown_reason.is_some());
    assert_eq!(
        check(&hard_history(), &LinOptions::new(ModelKind::Register))
            .unwrap()
            .valid,
        Validity::False
    );
}

#[test]
fn out_of_memory_is_unknown() {
    let mut o = LinOptions::new(ModelKind::Register);
    o.budget = Budget::unlimited().with_max_memory(1);
    let r = check(&hard_history(), &o).unwrap();
    assert_eq!(r.valid, Validity::Unknown);
    assert_eq!(r.unknown_reason.as_deref(), Some("memory limit"));
}

#[test]
fn model_names_parse() {
    for m in ModelKind::ALL {
        assert_eq!(m.name().parse::<ModelKind>(), Ok(m));
    }
    assert!("queue"
        .parse::<ModelKind>()
        .unwrap_err()
        .contains("fifo-queue"));
}

// ---- property test: WGL search vs. brute force ----

/// The oracle's own model semantics on JSON values (independent of `model.rs`).
fn oracle_step(model: ModelKind, keyed: bool, state: &Value, c: &Completed) -> Option<Value> {
    let ok = c.outcome == OpType::Ok;
    if keyed {
        let key = c.input[0].to_string();
        let mut m = state.as_object().cloned().unwrap_or_default();
        let init = if model == ModelKind::Kv {
            json!("")
        } else {
            Value::Null
        };
        let cur = m.get(&key).cloned().unwrap_or(init);
        let inner = Completed {
            input: c.input[1].clone(),
            output: if ok { c.output[1].clone() } else { Value::Null },
            ..c.clone()
        };
        let next = oracle_step(model, false, &cur, &inner)?;
        m.insert(key, next);
        return Some(Value::Object(m));
    }
    let (i, o) = (&c.input, &c.output);
    match (model, c.f.as_str()) {
        (_, "read") | (_, "get") if !ok => Some(state.clone()),
        (ModelKind::Register | ModelKind::CasRegister, "read") => {
            (o == state).then(|| state.clone())
        }
        (ModelKind::Register | ModelKind::CasRegister, "write") => Some(i.clone()),
        (ModelKind::CasRegister, "cas") => (&i[0] == state).then(|| i[1].clone()),
        (ModelKind::Kv, "get") => (o == state).then(|| state.clone()),
        (ModelKind::Kv, "put") => Some(i.clone()),
        (ModelKind::Kv, "append") => Some(json!(format!(
            "{}{}",
            state.as_str().unwrap_or(""),
            i.as_str().unwrap_or("")
        ))),
        (ModelKind::Set, "add") => {
            let mut v = state.as_array().cloned().unwrap_or_default();
            if !v.contains(i) {
                v.push(i.clone());
            }
            v.sort_by_key(|x| x.to_string());
            Some(Value::Array(v))
        }
        (ModelKind::Set, "read") => {
            let mut got = o.as_array().cloned().unwrap_or_default();
            got.sort_by_key(|x| x.to_string());
            let have = state.as_array().cloned().unwrap_or_default();
            (got == have).then(|| state.clone())
        }
        (ModelKind::FifoQueue, "enqueue") => {
            let mut v = state.as_array().cloned().unwrap_or_default();
            v.push(i.clone());
            Some(Value::Array(v))
        }
        (ModelKind::FifoQueue, "dequeue") => {
            let mut v = state.as_array().cloned().unwrap_or_default();
            if !ok {
                if !v.is_empty() {
                    v.remove(0);
                }
                return Some(Value::Array(v));
            }
            match (v.first(), o) {
                (None, Value::Null) => Some(state.clone()),
                (Some(h), o) if h == o => {
                    v.remove(0);
                    Some(Value::Array(v))
                }
                _ => None,
            }
        }
        (ModelKind::Mutex, "acquire") => (state != &json!(true)).then(|| json!(true)),
        (ModelKind::Mutex, "release") => (state == &json!(true)).then(|| json!(false)),
        (ModelKind::MultiRegister, "txn") => {
            let mut m = state.as_object().cloned().unwrap_or_default();
            let txn = if ok { o } else { i };
            for mo in txn.as_array()? {
                let k = mo[1].to_string();
                let cur = m.get(&k).cloned().unwrap_or(Value::Null);
                if mo[0] == "w" {
                    m.insert(k, mo[2].clone());
                } else if ok && cur != mo[2] {
                    return None;
                }
            }
            Some(Value::Object(m))
        }
        _ => None,
    }
}

/// Tries every order consistent with real time; `info` ops optional; `fail` ops absent. Failed
/// (set of ops done, state) pairs are remembered, so histories of a few dozen ops stay cheap;
/// nothing else is shared with the checker under test.
fn oracle(model: ModelKind, keyed: bool, ops: &[Op]) -> bool {
    let cs: Vec<Completed> = pair(ops)
        .unwrap()
        .into_iter()
        .filter(|c| c.outcome != OpType::Fail)
        .collect();
    assert!(cs.len() <= 64, "the oracle handles at most 64 operations");
    fn go(
        model: ModelKind,
        keyed: bool,
        cs: &[Completed],
        done: u64,
        state: &Value,
        failed: &mut std::collections::HashSet<(u64, String)>,
    ) -> bool {
        let required_left = cs
            .iter()
            .enumerate()
            .any(|(i, c)| c.outcome == OpType::Ok && done & (1 << i) == 0);
        if !required_left {
            return true;
        }
        let key = (done, state.to_string());
        if failed.contains(&key) {
            return false;
        }
        for (j, cj) in cs.iter().enumerate() {
            if done & (1 << j) != 0 {
                continue;
            }
            let blocked = cs.iter().enumerate().any(|(k, ck)| {
                done & (1 << k) == 0
                    && ck.outcome == OpType::Ok
                    && ck.complete.is_some_and(|r| r < cj.invoke)
            });
            if blocked {
                continue;
            }
            if let Some(n) = oracle_step(model, keyed, state, cj) {
                if go(model, keyed, cs, done | (1 << j), &n, failed) {
                    return true;
                }
            }
        }
        failed.insert(key);
        false
    }
    let init = match model {
        ModelKind::Kv if !keyed => json!(""),
        ModelKind::Mutex => json!(false),
        ModelKind::Set | ModelKind::FifoQueue => json!([]),
        ModelKind::MultiRegister => json!({}),
        _ if keyed => json!({}),
        _ => Value::Null,
    };
    go(model, keyed, &cs, 0, &init, &mut Default::default())
}

/// How a random history draws the values it writes.
#[derive(Debug, Clone, Copy)]
enum Values {
    /// From `0..n`: values repeat, so reads do not identify writes.
    Small(u64),
    /// Never twice the same (as the register workload writes them): reads identify writes.
    Unique,
}

/// The shape of random histories.
#[derive(Debug, Clone, Copy)]
struct Shape {
    /// Processes running at once.
    procs: u64,
    /// Operations invoked: `min_ops ..= max_ops`.
    min_ops: u64,
    max_ops: u64,
    /// Percent of completions that are `fail` and `info`.
    fail_pct: u64,
    info_pct: u64,
    values: Values,
}

impl Shape {
    /// Few ops, some failures and unknowns, values from 0..3: the original mix.
    const MIXED: Shape = Shape {
        procs: 4,
        min_ops: 1,
        max_ops: 7,
        fail_pct: 12,
        info_pct: 18,
        values: Values::Small(3),
    };

    /// Most completions `info`, as when one node times out for seconds, with more ops and
    /// processes (each `info` ends its process, so a fresh one takes over).
    fn info_heavy(values: Values) -> Shape {
        Shape {
            procs: 5,
            min_ops: 6,
            max_ops: 16,
            fail_pct: 5,
            info_pct: 55,
            values,
        }
    }
}

/// Draws written values for one history.
struct Draw {
    values: Values,
    next: u64,
    written: Vec<u64>,
}

impl Draw {
    fn new(values: Values) -> Draw {
        Draw {
            values,
            next: 0,
            written: Vec::new(),
        }
    }

    /// A value to write.
    fn fresh(&mut self, rng: &mut Rng) -> Value {
        let v = match self.values {
            Values::Small(n) => rng.below(n),
            Values::Unique => {
                self.next += 1;
                self.next
            }
        };
        self.written.push(v);
        json!(v)
    }

    /// A value some write may have written (or, rarely, none did).
    fn some(&mut self, rng: &mut Rng) -> Value {
        match self.values {
            Values::Small(n) => json!(rng.below(n)),
            Values::Unique if self.written.is_empty() || rng.percent(10) => json!(99),
            Values::Unique => json!(self.written[rng.below(self.written.len() as u64) as usize]),
        }
    }
}

/// A random operation (f, invocation value) for a model.
fn random_op(rng: &mut Rng, model: ModelKind, keyed: bool, d: &mut Draw) -> (String, Value) {
    let (f, v) = match model {
        ModelKind::Register => match rng.below(2) {
            0 => ("read", Value::Null),
            _ => ("write", d.fresh(rng)),
        },
        ModelKind::CasRegister => match rng.below(3) {
            0 => ("read", Value::Null),
            1 => ("write", d.fresh(rng)),
            _ => {
                let from = if rng.percent(25) {
                    Value::Null
                } else {
                    d.some(rng)
                };
                ("cas", json!([from, d.fresh(rng)]))
            }
        },
        ModelKind::Kv => match rng.below(3) {
            0 => ("get", Value::Null),
            1 => ("put", Value::from(["x", "y"][rng.below(2) as usize])),
            _ => ("append", Value::from(["x", "y"][rng.below(2) as usize])),
        },
        ModelKind::Set => match rng.below(2) {
            0 => ("read", Value::Null),
            _ => ("add", d.fresh(rng)),
        },
        ModelKind::FifoQueue => match rng.below(2) {
            0 => ("dequeue", Value::Null),
            _ => ("enqueue", d.fresh(rng)),
        },
        ModelKind::Mutex => match rng.below(2) {
            0 => ("acquire", Value::Null),
            _ => ("release", Value::Null),
        },
        ModelKind::MultiRegister => {
            let n = 1 + rng.below(2);
            let micro: Vec<Value> = (0..n)
                .map(|_| {
                    let k = ["x", "y"][rng.below(2) as usize];
                    if rng.percent(50) {
                        json!(["r", k, null])
                    } else {
                        json!(["w", k, d.fresh(rng)])
                    }
                })
                .collect();
            ("txn", Value::Array(micro))
        }
    };
    let v = if keyed {
        let key = ["a", "b"][rng.below(2) as usize];
        json!([key, v])
    } else {
        v
    };
    (f.to_string(), v)
}

/// A plausible (or deliberately wrong) result for an op, from a simulated atomic object.
fn random_output(
    rng: &mut Rng,
    model: ModelKind,
    keyed: bool,
    truth: &mut Value,
    f: &str,
    input: &Value,
    d: &mut Draw,
) -> Value {
    let fake = Completed {
        invoke: 0,
        complete: Some(1),
        process: Process::Client(0),
        f: f.to_string(),
        input: input.clone(),
        output: Value::Null,
        outcome: OpType::Info,
    };
    // Apply the op to the simulated object (as if it took effect now), when the model allows.
    let (key, inner_state) = if keyed {
        let k = input[0].to_string();
        let init = if model == ModelKind::Kv {
            json!("")
        } else {
            Value::Null
        };
        (Some(k.clone()), truth.get(&k).cloned().unwrap_or(init))
    } else {
        (None, truth.clone())
    };
    let out_inner = match f {
        "read" if model == ModelKind::Set => inner_state.clone(),
        "read" | "get" => inner_state.clone(),
        "dequeue" => inner_state
            .as_array()
            .and_then(|a| a.first().cloned())
            .unwrap_or(Value::Null),
        "txn" => {
            let mut cur = inner_state.clone();
            let mut out = Vec::new();
            for mo in input.as_array().cloned().unwrap_or_default() {
                let k = mo[1].to_string();
                if mo[0] == "r" {
                    let v = cur.get(&k).cloned().unwrap_or(Value::Null);
                    out.push(json!(["r", mo[1], v]));
                } else {
                    if let Some(m) = cur.as_object_mut() {
                        m.insert(k, mo[2].clone());
                    }
                    out.push(mo.clone());
                }
            }
            Value::Array(out)
        }
        _ => {
            if keyed {
                input[1].clone()
            } else {
                input.clone()
            }
        }
    };
    if let Some(n) = oracle_step(model, keyed, truth, &fake) {
        *truth = n;
    }
    let mut out = out_inner;
    if rng.percent(20) {
        // Corrupt the result.
        out = match model {
            ModelKind::Kv => Value::from(["", "x", "y", "xy"][rng.below(4) as usize]),
            ModelKind::Set => {
                let a = d.some(rng);
                let b = d.some(rng);
                [json!([a]), json!([a, b]), json!([])][rng.below(3) as usize].clone()
            }
            ModelKind::MultiRegister => {
                json!([["r", "x", d.some(rng)], ["r", "y", null]])
            }
            _ => d.some(rng),
        };
    }
    match key {
        Some(_) => json!([input[0], out]),
        None => out,
    }
}

fn random_history(rng: &mut Rng, model: ModelKind, keyed: bool, shape: Shape) -> Vec<Op> {
    let procs = 2 + rng.below(shape.procs - 1);
    let target = shape.min_ops + rng.below(shape.max_ops - shape.min_ops + 1);
    let mut d = Draw::new(shape.values);
    let mut truth = match model {
        ModelKind::Mutex => json!(false),
        ModelKind::Set | ModelKind::FifoQueue => json!([]),
        ModelKind::MultiRegister => json!({}),
        ModelKind::Kv if !keyed => json!(""),
        _ if keyed => json!({}),
        _ => Value::Null,
    };
    let mut pending: Vec<Option<(String, Value)>> = vec![None; procs as usize];
    let mut next_proc: Vec<u64> = (0..procs).collect();
    let mut started = 0;
    let mut rows: Vec<Op> = Vec::new();
    loop {
        let any_pending = pending.iter().any(Option::is_some);
        if started >= target && (!any_pending || rng.percent(10)) {
            break;
        }
        let p = rng.below(procs) as usize;
        match pending[p].take() {
            None if started < target => {
                let (f, v) = random_op(rng, model, keyed, &mut d);
                rows.push(Op::new(
                    Process::Client(next_proc[p]),
                    OpType::Invoke,
                    &f,
                    v.clone(),
                ));
                pending[p] = Some((f, v));
                started += 1;
            }
            None => {}
            Some((f, v)) => {
                let roll = rng.below(100);
                let proc = Process::Client(next_proc[p]);
                if roll < shape.fail_pct {
                    rows.push(Op::new(proc, OpType::Fail, &f, v));
                } else if roll < shape.fail_pct + shape.info_pct {
                    // Maybe it took effect.
                    if rng.percent(50) {
                        random_output(rng, model, keyed, &mut truth, &f, &v, &mut d);
                    }
                    rows.push(Op::new(proc, OpType::Info, &f, v));
                    next_proc[p] += procs;
                } else {
                    let out = random_output(rng, model, keyed, &mut truth, &f, &v, &mut d);
                    rows.push(Op::new(proc, OpType::Ok, &f, out));
                }
            }
        }
        if rng.percent(3) {
            rows.push(Op::new(Process::Nemesis, OpType::Info, "kill", Value::Null));
        }
    }
    crate::history::reindex(&mut rows);
    rows
}

/// Checks `cases` random histories of `shape` against the oracle, partitioned and (for keyed
/// histories) whole. Returns how many `info` operations the reductions dropped and bounded.
fn agrees_with_oracle_in(
    model: ModelKind,
    keyed: bool,
    cases: u64,
    seed: u64,
    shape: Shape,
) -> (usize, usize) {
    let mut rng = Rng::new(seed);
    let (mut valid, mut invalid) = (0, 0);
    let (mut dropped, mut bounded) = (0, 0);
    for case in 0..cases {
        let h = random_history(&mut rng, model, keyed, shape);
        let expected = oracle(model, keyed, &h);
        let partitions: &[bool] = if keyed { &[true, false] } else { &[true] };
        for &partition in partitions {
            let mut o = LinOptions::new(model);
            o.independent = keyed;
            o.partition = partition;
            let r = check(&h, &o).unwrap();
            assert_eq!(
                r.valid,
                Validity::from_bool(expected),
                "{model} keyed={keyed} partition={partition} {shape:?} case {case}: history\n{}",
                h.iter()
                    .map(|op| serde_json::to_string(op).unwrap())
                    .collect::<Vec<_>>()
                    .join("\n")
            );
            dropped += r.info_dropped;
            bounded += r.info_bounded;
        }
        if expected {
            valid += 1;
        } else {
            invalid += 1;
        }
    }
    // The generator must exercise both verdicts, or the comparison proves little.
    assert!(
        valid > cases / 20 && invalid > cases / 20,
        "{model} {shape:?}: {valid} valid, {invalid} invalid"
    );
    (dropped, bounded)
}

fn agrees_with_oracle(model: ModelKind, keyed: bool, cases: u64, seed: u64) {
    agrees_with_oracle_in(model, keyed, cases, seed, Shape::MIXED);
}

#[test]
fn search_agrees_with_brute_force_on_registers() {
    agrees_with_oracle(ModelKind::Register, false, 3000, 1);
    agrees_with_oracle(ModelKind::CasRegister, false, 3000, 2);
}

#[test]
fn search_agrees_with_brute_force_on_keyed_registers_and_kv() {
    agrees_with_oracle(ModelKind::CasRegister, true, 2000, 3);
    agrees_with_oracle(ModelKind::Kv, true, 2000, 4);
}

#[test]
fn search_agrees_with_brute_force_on_sets_queues_mutexes_txns() {
    agrees_with_oracle(ModelKind::Set, false, 1500, 5);
    agrees_with_oracle(ModelKind::FifoQueue, false, 1500, 6);
    agrees_with_oracle(ModelKind::Mutex, false, 1500, 7);
    agrees_with_oracle(ModelKind::MultiRegister, false, 1500, 8);
}

/// Info-heavy registers with unique values (reads identify writes, so most `info` writes are
/// dropped or bounded) and with small value ranges (where they are not).
#[test]
fn search_agrees_with_brute_force_on_info_heavy_registers() {
    let mut reductions = (0, 0);
    for (i, values) in [Values::Unique, Values::Small(2), Values::Small(5)]
        .into_iter()
        .enumerate()
    {
        let seed = 100 + 10 * i as u64;
        let shape = Shape::info_heavy(values);
        for (model, keyed, cases, s) in [
            (ModelKind::Register, false, 1500, 0),
            (ModelKind::CasRegister, false, 1500, 1),
            (ModelKind::CasRegister, true, 800, 2),
        ] {
            let (d, b) = agrees_with_oracle_in(model, keyed, cases, seed + s, shape);
            reductions.0 += d;
            reductions.1 += b;
        }
    }
    // The reductions were exercised, not just the search.
    assert!(reductions.0 > 1000 && reductions.1 > 1000, "{reductions:?}");
}

#[test]
fn search_agrees_with_brute_force_on_info_heavy_other_models() {
    for (i, values) in [Values::Unique, Values::Small(2)].into_iter().enumerate() {
        let seed = 200 + 10 * i as u64;
        let shape = Shape::info_heavy(values);
        agrees_with_oracle_in(ModelKind::Set, false, 600, seed, shape);
        agrees_with_oracle_in(ModelKind::FifoQueue, false, 600, seed + 1, shape);
        agrees_with_oracle_in(ModelKind::Mutex, false, 600, seed + 2, shape);
        agrees_with_oracle_in(ModelKind::MultiRegister, false, 600, seed + 3, shape);
        agrees_with_oracle_in(ModelKind::Kv, true, 400, seed + 4, shape);
    }
}

// ---- reductions and large histories ----

#[test]
fn unobserved_info_write_is_dropped_and_observed_one_bounded() {
    let h = hist(&[
        (0, "invoke", "write", json!(1)),
        (0, "info", "write", json!(1)),
        (1, "invoke", "write", json!(2)),
        (1, "info", "write", json!(2)),
        (2, "invoke", "read", json!(null)),
        (2, "ok", "read", json!(2)),
    ]);
    let r = check(&h, &LinOptions::new(ModelKind::Register)).unwrap();
    assert_eq!(r.valid, Validity::True);
    assert_eq!((r.info_dropped, r.info_bounded), (1, 1));
    assert_eq!(r.checked_ops, 2);
    // The read saw 2 before the only write of 2 was invoked: not linearizable, and the
    // evidence names the read, not the write.
    let h = hist(&[
        (2, "invoke", "read", json!(null)),
        (2, "ok", "read", json!(2)),
        (1, "invoke", "write", json!(2)),
        (1, "info", "write", json!(2)),
    ]);
    let r = check(&h, &LinOptions::new(ModelKind::Register)).unwrap();
    assert_eq!(r.valid, Validity::False);
    assert_eq!(r.info_bounded, 0);
    assert_eq!(r.failures[0].stuck.as_ref().unwrap().f, "read");
}

#[test]
fn info_cas_keeps_the_write_it_compares_with() {
    // The info cas 1→2 may have seen the info write of 1; nobody saw 2, so the cas is dropped,
    // and then nothing can see the write of 1 either.
    let h = hist(&[
        (0, "invoke", "write", json!(1)),
        (0, "info", "write", json!(1)),
        (1, "invoke", "cas", json!([1, 2])),
        (1, "info", "cas", json!([1, 2])),
        (2, "invoke", "read", json!(null)),
        (2, "ok", "read", json!(null)),
    ]);
    let r = check(&h, &LinOptions::new(ModelKind::CasRegister)).unwrap();
    assert_eq!(r.valid, Validity::True);
    assert_eq!(r.info_dropped, 2);
    // A read of 2 keeps both: the cas is bounded by the read, the write by the cas.
    let mut h2 = h.clone();
    h2[5].value = json!(2);
    let r = check(&h2, &LinOptions::new(ModelKind::CasRegister)).unwrap();
    assert_eq!(r.valid, Validity::True);
    assert_eq!((r.info_dropped, r.info_bounded), (0, 2));
}

/// Interchangeable info ops: many identical info writes and a read that needs one of them late.
#[test]
fn identical_info_ops_are_not_told_apart() {
    let mut rows = Vec::new();
    for p in 0..40 {
        rows.push((p, "invoke", "write", json!(p % 2)));
        rows.push((p, "info", "write", json!(p % 2)));
    }
    for (i, v) in [0, 1, 0, 1, 0, 1, 0, 1].into_iter().enumerate() {
        rows.push((100 + i as i64, "invoke", "read", json!(null)));
        rows.push((100 + i as i64, "ok", "read", json!(v)));
    }
    rows.push((200, "invoke", "read", json!(null)));
    rows.push((200, "ok", "read", json!(7)));
    let h = hist(&rows);
    let r = check(&h, &LinOptions::new(ModelKind::Register)).unwrap();
    assert_eq!(r.valid, Validity::False);
    // Without the classes this takes about 2^40 configurations.
    assert!(r.configurations < 10_000, "{}", r.configurations);
}

#[test]
fn long_sequential_history_uses_the_set_tree() {
    // 20,000 ops by one process: every configuration is a prefix; the memo holds one per op.
    let mut rows = Vec::new();
    for i in 0..10_000 {
        rows.push((0, "invoke", "write", json!(i)));
        rows.push((0, "ok", "write", json!(i)));
        rows.push((0, "invoke", "read", json!(null)));
        rows.push((0, "ok", "read", json!(i)));
    }
    let h = hist(&rows);
    let r = check(&h, &LinOptions::new(ModelKind::Register)).unwrap();
    assert_eq!(r.valid, Validity::True);
    assert_eq!(r.configurations, 20_000);
    // A stale read at the very end is found, and the evidence replays the whole prefix.
    let mut bad = h.clone();
    let n = bad.len();
    bad[n - 1].value = json!(9_998);
    let r = check(&bad, &LinOptions::new(ModelKind::Register)).unwrap();
    assert_eq!(r.valid, Validity::False);
    assert_eq!(r.failures[0].linearized.len(), 19_999);
}

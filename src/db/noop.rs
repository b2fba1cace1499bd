//! The `noop` target: an in-memory, linearizable database inside the harness, so the whole
//! pipeline (generator → workers → history → checkers → store) runs without nodes, and the
//! test-only `liar` variant that proves the pipeline can fail.
//!
//! Every operation is applied atomically under one lock and acknowledged `ok` (a CAS whose
//! expected value does not match, or a bank transfer that would overdraw, is `fail`). It
//! speaks every built-in workload's vocabulary (`docs/adding-a-target.md`). Having no
//! processes, it has no kill or pause ability: faults cannot be planned against it.
//!
//! Options (`--target-opt K=V`):
//! - `lie=N` (TEST ONLY; the `liar` target sets `lie=2`): every N-th write is acknowledged but
//!   never applied (a register write or set add is dropped, a counter increment is skipped, a
//!   bank transfer debits without crediting, a list append vanishes, an enqueued element is
//!   lost, an id is handed out again, a lock is granted while it is held), so checkers must
//!   report the run invalid.
//!
//! Besides the built-in workloads' vocabularies it speaks three that the YAML workloads in
//! `workloads/` use: `queue` (`enqueue v`, `dequeue` → the oldest element or null, `drain` →
//! every element), `unique-ids` (`generate` → a fresh integer) and `mutex` (`acquire` / `release`
//! of one lock, `fail` when it is held / free).
//! - `hang_every=N` (TEST ONLY): every N-th operation never completes, to exercise the op
//!   timeout (`info`, then a new process).

use super::{BoxFuture, Client, Completion, Db, DbDef, DbEnv, DbType};
use crate::error::bad_input;
use crate::workload::bank::{initial_balances, BankParams};
use anyhow::Result;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

/// The noop target's options.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NoopOpts {
    /// TEST ONLY: acknowledge every N-th write without applying it.
    pub lie: Option<u64>,
    /// TEST ONLY: every N-th operation never answers.
    pub hang_every: u64,
}

/// The vocabularies the in-memory database speaks.
pub const VOCABULARIES: &[&str] = &[
    "register",
    "set",
    "counter",
    "bank",
    "list-append",
    "rw-register",
    "queue",
    "unique-ids",
    "mutex",
];

/// The test-only lying target: `noop` with `lie=2` (every second write acknowledged but
/// dropped), registered under its own name.
pub fn liar() -> DbDef {
    DbDef::new(
        "liar",
        "TEST ONLY: like noop but acknowledges writes it never applies (verdict: invalid)",
        false,
        VOCABULARIES,
        |env: DbEnv| {
            let mut o: NoopOpts =
                crate::opts::from_map(&env.plan.target.opts, "target.opts", &env.plan.origins)?;
            o.lie = Some(o.lie.unwrap_or(2));
            Ok(Arc::new(Noop::new(&env, "liar", o)?) as Arc<dyn Db>)
        },
    )
}

/// The workload whose vocabulary the clients speak (set and counter share `add`/`read`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wl {
    Register,
    Set,
    Counter,
    Bank,
    ListAppend,
    RwRegister,
    Queue,
    UniqueIds,
    Mutex,
}

#[derive(Default)]
struct State {
    registers: HashMap<String, Value>,
    set: Vec<Value>,
    set_seen: HashSet<String>,
    counter: i64,
    balances: Vec<i64>,
    lists: HashMap<String, Vec<Value>>,
    queue: std::collections::VecDeque<Value>,
    next_id: u64,
    held: bool,
    writes: u64,
    ops: u64,
}

/// The in-memory target (see the module docs).
pub struct Noop {
    name: &'static str,
    workload: Wl,
    state: Arc<Mutex<State>>,
    lie_every: u64,
    hang_every: u64,
    allow_negative: bool,
}

impl DbType for Noop {
    const NAME: &'static str = "noop";
    const ABOUT: &'static str =
        "in-memory, linearizable, every op ok: exercises the pipeline without nodes";
    const NEEDS_NODES: bool = false;
    const VOCABULARIES: &'static [&'static str] = VOCABULARIES;
    type Options = NoopOpts;

    fn build(env: DbEnv, opts: NoopOpts) -> Result<Noop> {
        Noop::new(&env, "noop", opts)
    }
}

impl Noop {
    fn new(env: &DbEnv, name: &'static str, opts: NoopOpts) -> Result<Noop> {
        let workload = match env.workload.vocabulary.as_str() {
            "register" => Wl::Register,
            "set" => Wl::Set,
            "counter" => Wl::Counter,
            "bank" => Wl::Bank,
            "list-append" => Wl::ListAppend,
            "rw-register" => Wl::RwRegister,
            "queue" => Wl::Queue,
            "unique-ids" => Wl::UniqueIds,
            "mutex" => Wl::Mutex,
            other => {
                return Err(bad_input(format!(
                    "target {name} does not speak workload {other:?}"
                )))
            }
        };
        let mut st = State::default();
        let mut allow_negative = false;
        if workload == Wl::Bank {
            let b: BankParams = env.workload.params()?;
            st.balances = initial_balances(b.accounts, b.total)
                .into_iter()
                .map(|(_, x)| x)
                .collect();
            allow_negative = b.allow_negative;
        }
        Ok(Noop {
            name,
            workload,
            state: Arc::new(Mutex::new(st)),
            lie_every: opts.lie.unwrap_or(0),
            hang_every: opts.hang_every,
            allow_negative,
        })
    }
}

impl Db for Noop {
    fn name(&self) -> &str {
        self.name
    }
    fn setup(&self) -> Result<()> {
        Ok(())
    }
    fn teardown(&self) -> Result<()> {
        Ok(())
    }
    fn client(&self, _node: Option<usize>) -> BoxFuture<'_, Result<Box<dyn Client>>> {
        let c = NoopClient {
            workload: self.workload,
            state: self.state.clone(),
            lie_every: self.lie_every,
            hang_every: self.hang_every,
            allow_negative: self.allow_negative,
        };
        Box::pin(async move { Ok(Box::new(c) as Box<dyn Client>) })
    }
}

struct NoopClient {
    workload: Wl,
    state: Arc<Mutex<State>>,
    lie_every: u64,
    hang_every: u64,
    allow_negative: bool,
}

/// Outcome of applying one op: a completion, or "never answer".
enum Applied {
    Done(Completion),
    Hang,
}

impl NoopClient {
    fn apply(&self, f: &str, value: &Value) -> Applied {
        let mut st = match self.state.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        st.ops += 1;
        if self.hang_every > 0 && st.ops.is_multiple_of(self.hang_every) {
            return Applied::Hang;
        }
        Applied::Done(apply(
            &mut st,
            self.workload,
            f,
            value,
            self.lie_every,
            self.allow_negative,
        ))
    }
}

/// True when this write should be acknowledged but dropped.
fn lie(st: &mut State, every: u64) -> bool {
    st.writes += 1;
    every > 0 && st.writes.is_multiple_of(every)
}

fn key_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn pair(v: &Value) -> Option<(&Value, &Value)> {
    match v.as_array().map(Vec::as_slice) {
        Some([a, b]) => Some((a, b)),
        _ => None,
    }
}

/// Applies one op of `workload`'s vocabulary atomically.
fn apply(
    st: &mut State,
    workload: Wl,
    f: &str,
    value: &Value,
    lie_every: u64,
    allow_negative: bool,
) -> Completion {
    let bad = |why: &str| Completion::fail(value.clone(), format!("noop: {why}"));
    match (workload, f) {
        (Wl::Register, "read") => {
            let Some((k, _)) = pair(value) else {
                return bad("read expects [key, null]");
            };
            let cur = st.registers.get(&key_of(k)).cloned().unwrap_or(Value::Null);
            Completion::ok(json!([k, cur]))
        }
        (Wl::Register, "write") => {
            let Some((k, v)) = pair(value) else {
                return bad("write expects [key, value]");
            };
            if !lie(st, lie_every) {
                st.registers.insert(key_of(k), v.clone());
            }
            Completion::ok(value.clone())
        }
        (Wl::Register, "cas") => {
            let Some((k, (old, new))) = pair(value).and_then(|(k, ov)| Some((k, pair(ov)?))) else {
                return bad("cas expects [key, [old, new]]");
            };
            let key = key_of(k);
            let cur = st.registers.get(&key).cloned().unwrap_or(Value::Null);
            if &cur != old {
                return Completion::fail(value.clone(), "cas: current value differs");
            }
            if !lie(st, lie_every) {
                st.registers.insert(key, new.clone());
            }
            Completion::ok(value.clone())
        }
        (Wl::Set, "add") => {
            if !lie(st, lie_every) && st.set_seen.insert(value.to_string()) {
                st.set.push(value.clone());
            }
            Completion::ok(value.clone())
        }
        (Wl::Set, "read") => Completion::ok(Value::Array(st.set.clone())),
        (Wl::Counter, "add") => {
            let Some(d) = value.as_i64() else {
                return bad("add expects an integer");
            };
            if !lie(st, lie_every) {
                st.counter += d;
            }
            Completion::ok(value.clone())
        }
        (Wl::Counter, "read") => Completion::ok(json!(st.counter)),
        (Wl::Bank, "read") => {
            let m: Map<String, Value> = st
                .balances
                .iter()
                .enumerate()
                .map(|(i, b)| (i.to_string(), json!(b)))
                .collect();
            Completion::ok(Value::Object(m))
        }
        (Wl::Bank, "transfer") => {
            let (Some(from), Some(to), Some(amount)) = (
                value["from"].as_u64(),
                value["to"].as_u64(),
                value["amount"].as_i64(),
            ) else {
                return bad("transfer expects {from, to, amount}");
            };
            let n = st.balances.len() as u64;
            if from >= n || to >= n {
                return bad("no such account");
            }
            if !allow_negative && st.balances[from as usize] - amount < 0 {
                return Completion::fail(value.clone(), "insufficient funds");
            }
            st.balances[from as usize] -= amount;
            if !lie(st, lie_every) {
                st.balances[to as usize] += amount;
            }
            Completion::ok(value.clone())
        }
        (Wl::ListAppend | Wl::RwRegister, "txn") => {
            let Some(mops) = value.as_array() else {
                return bad("txn expects a list of micro-ops");
            };
            let mut out = Vec::with_capacity(mops.len());
            for m in mops {
                let Some([mf, k, v]) = m.as_array().map(Vec::as_slice) else {
                    return bad("micro-op expects [f, key, value]");
                };
                let key = key_of(k);
                match mf.as_str() {
                    Some("r") if workload == Wl::ListAppend => {
                        let cur = st.lists.get(&key).cloned().unwrap_or_default();
                        out.push(json!(["r", k, cur]));
                    }
                    Some("r") if workload == Wl::RwRegister => {
                        let cur = st.registers.get(&key).cloned().unwrap_or(Value::Null);
                        out.push(json!(["r", k, cur]));
                    }
                    Some("append") if workload == Wl::ListAppend => {
                        if !lie(st, lie_every) {
                            st.lists.entry(key).or_default().push(v.clone());
                        }
                        out.push(m.clone());
                    }
                    Some("w") if workload == Wl::RwRegister => {
                        if !lie(st, lie_every) {
                            st.registers.insert(key, v.clone());
                        }
                        out.push(m.clone());
                    }
                    _ => return bad(
                        "micro-op f must be \"r\", \"append\" (list-append) or \"w\" (rw-register)",
                    ),
                }
            }
            Completion::ok(Value::Array(out))
        }
        (Wl::Queue, "enqueue") => {
            if !lie(st, lie_every) {
                st.queue.push_back(value.clone());
            }
            Completion::ok(value.clone())
        }
        (Wl::Queue, "dequeue") => Completion::ok(st.queue.pop_front().unwrap_or(Value::Null)),
        (Wl::Queue, "drain") => Completion::ok(Value::Array(st.queue.drain(..).collect())),
        (Wl::UniqueIds, "generate") => {
            // a lie hands out the previous id again
            if lie(st, lie_every) && st.next_id > 0 {
                return Completion::ok(json!(st.next_id));
            }
            st.next_id += 1;
            Completion::ok(json!(st.next_id))
        }
        (Wl::Mutex, "acquire") => {
            // a lie grants the lock without looking at (or taking) it
            if lie(st, lie_every) {
                return Completion::ok(value.clone());
            }
            if st.held {
                return Completion::fail(value.clone(), "acquire: the lock is held");
            }
            st.held = true;
            Completion::ok(value.clone())
        }
        (Wl::Mutex, "release") => {
            if !st.held {
                return Completion::fail(value.clone(), "release: the lock is free");
            }
            st.held = false;
            Completion::ok(value.clone())
        }
        (_, f) => bad(&format!("operation {f:?} is not part of this workload")),
    }
}

impl Client for NoopClient {
    fn invoke<'a>(&'a mut self, f: &'a str, value: &'a Value) -> BoxFuture<'a, Completion> {
        let applied = self.apply(f, value);
        Box::pin(async move {
            match applied {
                Applied::Done(c) => c,
                Applied::Hang => std::future::pending().await,
            }
        })
    }
}

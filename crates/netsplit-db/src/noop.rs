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

use super::vocab::{
    key_text, BankOp, CounterOp, MicroOp, MutexOp, Op, QueueOp, RegisterOp, SetOp, UniqueIdsOp,
    Vocabulary,
};
use super::{BoxFuture, Client, Completion, Db, DbDef, DbEnv, DbType};
use crate::vocab::{initial_balances, BankParams};
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

/// The vocabularies the in-memory database speaks: every one netsplit knows.
pub const VOCABULARIES: &[&str] = Vocabulary::ALL_NAMES;

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

/// The in-memory target (see the module docs). It is its own client: every worker's client is
/// a clone sharing its state.
#[derive(Clone)]
pub struct Noop {
    name: &'static str,
    vocabulary: Vocabulary,
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
        let vocabulary = Vocabulary::for_run(name, VOCABULARIES, &env.workload)?;
        let mut st = State::default();
        let mut allow_negative = false;
        if vocabulary == Vocabulary::Bank {
            let b: BankParams = env.workload.params()?;
            st.balances = initial_balances(b.accounts, b.total)
                .into_iter()
                .map(|(_, x)| x)
                .collect();
            allow_negative = b.allow_negative;
        }
        Ok(Noop {
            name,
            vocabulary,
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
    fn client(&self, _node: Option<usize>) -> BoxFuture<'_, Result<Box<dyn Client>>> {
        let c = self.clone();
        Box::pin(async move { Ok(Box::new(c) as Box<dyn Client>) })
    }
}

/// Outcome of applying one op: a completion, or "never answer".
enum Applied {
    Done(Completion),
    Hang,
}

impl Noop {
    fn apply(&self, f: &str, value: &Value) -> Applied {
        let mut st = match self.state.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        st.ops += 1;
        if self.hang_every > 0 && st.ops.is_multiple_of(self.hang_every) {
            return Applied::Hang;
        }
        Applied::Done(match Op::parse(self.vocabulary, f, value) {
            Ok(op) => apply(&mut st, op, value, self.lie_every, self.allow_negative),
            Err(e) => Completion::fail(
                value.clone(),
                format!("{} client: {e} (not sent)", self.name),
            ),
        })
    }
}

/// True when this write should be acknowledged but dropped.
fn lie(st: &mut State, every: u64) -> bool {
    st.writes += 1;
    every > 0 && st.writes.is_multiple_of(every)
}

/// Applies one op atomically; `value` is its request.
fn apply(
    st: &mut State,
    op: Op,
    value: &Value,
    lie_every: u64,
    allow_negative: bool,
) -> Completion {
    let echo = || Completion::ok(value.clone());
    match op {
        Op::Register(RegisterOp::Read { key }) => {
            let cur = st.registers.get(&key_text(&key)).cloned();
            Completion::ok(json!([key, cur.unwrap_or(Value::Null)]))
        }
        Op::Register(RegisterOp::Write { key, value: v }) => {
            if !lie(st, lie_every) {
                st.registers.insert(key_text(&key), v);
            }
            echo()
        }
        Op::Register(RegisterOp::Cas { key, old, new }) => {
            let key = key_text(&key);
            let cur = st.registers.get(&key).cloned().unwrap_or(Value::Null);
            if cur != old {
                return Completion::fail(value.clone(), "cas: current value differs");
            }
            if !lie(st, lie_every) {
                st.registers.insert(key, new);
            }
            echo()
        }
        Op::Set(SetOp::Add(e)) => {
            if !lie(st, lie_every) && st.set_seen.insert(e.to_string()) {
                st.set.push(e);
            }
            echo()
        }
        Op::Set(SetOp::Read) => Completion::ok(Value::Array(st.set.clone())),
        Op::Counter(CounterOp::Add(d)) => {
            if !lie(st, lie_every) {
                st.counter += d;
            }
            echo()
        }
        Op::Counter(CounterOp::Read) => Completion::ok(json!(st.counter)),
        Op::Bank(BankOp::Read) => {
            let m: Map<String, Value> = st
                .balances
                .iter()
                .enumerate()
                .map(|(i, b)| (i.to_string(), json!(b)))
                .collect();
            Completion::ok(Value::Object(m))
        }
        Op::Bank(BankOp::Transfer { from, to, amount }) => {
            let n = st.balances.len() as u64;
            if from >= n || to >= n {
                return Completion::fail(value.clone(), "noop: no such account");
            }
            if !allow_negative && st.balances[from as usize] - amount < 0 {
                return Completion::fail(value.clone(), "insufficient funds");
            }
            st.balances[from as usize] -= amount;
            if !lie(st, lie_every) {
                st.balances[to as usize] += amount;
            }
            echo()
        }
        Op::ListAppend(mops) => Completion::ok(txn(st, mops, true, lie_every)),
        Op::RwRegister(mops) => Completion::ok(txn(st, mops, false, lie_every)),
        Op::Queue(QueueOp::Enqueue(v)) => {
            if !lie(st, lie_every) {
                st.queue.push_back(v);
            }
            echo()
        }
        Op::Queue(QueueOp::Dequeue) => Completion::ok(st.queue.pop_front().unwrap_or(Value::Null)),
        Op::Queue(QueueOp::Drain) => Completion::ok(Value::Array(st.queue.drain(..).collect())),
        Op::UniqueIds(UniqueIdsOp::Generate) => {
            // a lie hands out the previous id again
            if lie(st, lie_every) && st.next_id > 0 {
                return Completion::ok(json!(st.next_id));
            }
            st.next_id += 1;
            Completion::ok(json!(st.next_id))
        }
        Op::Mutex(MutexOp::Acquire) => {
            // a lie grants the lock without looking at (or taking) it
            if lie(st, lie_every) {
                return echo();
            }
            if st.held {
                return Completion::fail(value.clone(), "acquire: the lock is held");
            }
            st.held = true;
            echo()
        }
        Op::Mutex(MutexOp::Release) => {
            if !st.held {
                return Completion::fail(value.clone(), "release: the lock is free");
            }
            st.held = false;
            echo()
        }
    }
}

/// A transaction of micro-ops, in order: on lists (`list`: list-append, where a key never
/// written reads `[]`) or on registers (rw-register, `null`).
fn txn(st: &mut State, mops: Vec<MicroOp>, list: bool, lie_every: u64) -> Value {
    let mut out = Vec::with_capacity(mops.len());
    for m in mops {
        let done = m.to_value();
        match m {
            MicroOp::Read { key } if list => {
                let cur = st.lists.get(&key_text(&key)).cloned().unwrap_or_default();
                out.push(MicroOp::read_result(&key, json!(cur)));
            }
            MicroOp::Read { key } => {
                let cur = st.registers.get(&key_text(&key)).cloned();
                out.push(MicroOp::read_result(&key, cur.unwrap_or(Value::Null)));
            }
            MicroOp::Append { key, value } => {
                if !lie(st, lie_every) {
                    st.lists.entry(key_text(&key)).or_default().push(value);
                }
                out.push(done);
            }
            MicroOp::Write { key, value } => {
                if !lie(st, lie_every) {
                    st.registers.insert(key_text(&key), value);
                }
                out.push(done);
            }
        }
    }
    Value::Array(out)
}

impl Client for Noop {
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

//! The op vocabularies workloads and databases share, typed.
//!
//! The history records an operation as `f` and `value` (JSON lines, docs/history-format.md);
//! inside the harness it is an [`Op`]: one enum per vocabulary ([`RegisterOp`], [`SetOp`],
//! [`CounterOp`], [`BankOp`], the micro-op transactions of `list-append` and `rw-register`
//! ([`MicroOp`]), and the [`QueueOp`], [`UniqueIdsOp`] and [`MutexOp`] of the YAML workloads in
//! `workloads/`). [`Op::parse`] turns a request into its typed form once, with an error that says
//! what the vocabulary expects; [`Op::request`] gives the request back.
//!
//! A database speaks a vocabulary by implementing its trait on its client ([`RegisterClient`],
//! [`SetClient`], …) and returning itself from the matching accessor of [`Speaks`] (the way a
//! target returns its abilities from `as_kill`). [`Typed`] is the [`Client`] the runner drives:
//! it parses each request in the run's vocabulary and hands the typed op to the client's
//! implementation, so a request that does not fit is `fail` before anything is sent. A workload
//! is matched to a database by its vocabulary alone (`DbDef::speaks`): a new workload that uses
//! the register vocabulary (a YAML workload with `vocabulary: register`, such as
//! `workloads/keyed-register.yaml`) runs on every database that speaks it, with no edit to any
//! database. Databases that speak every vocabulary (the in-memory `noop`, the `custom` target's
//! programs) match on [`Op`] themselves; a vocabulary netsplit does not know (an application's
//! own) stays `f` and `value` for the clients that declare it.
//!
//! docs/adding-a-target.md has the vocabulary table (requests and `ok` responses).

use super::{BoxFuture, Client, Completion};
use crate::error::bad_input;
use serde_json::{json, Value};

/// A vocabulary netsplit knows: the operations a workload sends and a database answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Vocabulary {
    /// `read [k, null]`, `write [k, v]`, `cas [k, [old, new]]`.
    Register,
    /// `add e`, `read null`.
    Set,
    /// `add d`, `read null`.
    Counter,
    /// `transfer {"from", "to", "amount"}`, `read null`.
    Bank,
    /// `txn [["append", k, v] | ["r", k, null], …]`.
    ListAppend,
    /// `txn [["w", k, v] | ["r", k, null], …]`.
    RwRegister,
    /// `enqueue v`, `dequeue`, `drain`.
    Queue,
    /// `generate`.
    UniqueIds,
    /// `acquire`, `release`.
    Mutex,
}

impl Vocabulary {
    /// Every vocabulary netsplit knows.
    pub const ALL: &'static [Vocabulary] = &[
        Vocabulary::Register,
        Vocabulary::Set,
        Vocabulary::Counter,
        Vocabulary::Bank,
        Vocabulary::ListAppend,
        Vocabulary::RwRegister,
        Vocabulary::Queue,
        Vocabulary::UniqueIds,
        Vocabulary::Mutex,
    ];

    /// The names of every vocabulary netsplit knows (what the in-memory `noop` speaks); the
    /// first six are those with a client trait ([`Vocabulary::WITH_TRAITS`]).
    pub const ALL_NAMES: &'static [&'static str] = &[
        Vocabulary::Register.name(),
        Vocabulary::Set.name(),
        Vocabulary::Counter.name(),
        Vocabulary::Bank.name(),
        Vocabulary::ListAppend.name(),
        Vocabulary::RwRegister.name(),
        Vocabulary::Queue.name(),
        Vocabulary::UniqueIds.name(),
        Vocabulary::Mutex.name(),
    ];

    /// The names of the vocabularies with a client trait ([`RegisterClient`] …
    /// [`RwRegisterClient`]): what a database that implements all of them speaks (etcd,
    /// postgres).
    pub const WITH_TRAITS: &'static [&'static str] = Vocabulary::ALL_NAMES.split_at(6).0;

    /// Its name, as workloads and targets declare it (`list-append`).
    pub const fn name(self) -> &'static str {
        match self {
            Vocabulary::Register => "register",
            Vocabulary::Set => "set",
            Vocabulary::Counter => "counter",
            Vocabulary::Bank => "bank",
            Vocabulary::ListAppend => "list-append",
            Vocabulary::RwRegister => "rw-register",
            Vocabulary::Queue => "queue",
            Vocabulary::UniqueIds => "unique-ids",
            Vocabulary::Mutex => "mutex",
        }
    }

    /// The vocabulary of that name, if netsplit knows it.
    pub fn from_name(name: &str) -> Option<Vocabulary> {
        Vocabulary::ALL.iter().copied().find(|v| v.name() == name)
    }

    /// Its operations' names (`f`).
    pub const fn ops(self) -> &'static [&'static str] {
        match self {
            Vocabulary::Register => &["read", "write", "cas"],
            Vocabulary::Set | Vocabulary::Counter => &["add", "read"],
            Vocabulary::Bank => &["transfer", "read"],
            Vocabulary::ListAppend | Vocabulary::RwRegister => &["txn"],
            Vocabulary::Queue => &["enqueue", "dequeue", "drain"],
            Vocabulary::UniqueIds => &["generate"],
            Vocabulary::Mutex => &["acquire", "release"],
        }
    }

    /// The names of `vocabularies` (what a target declares as `VOCABULARIES`).
    pub fn names(vocabularies: &[Vocabulary]) -> Vec<&'static str> {
        vocabularies.iter().map(|v| v.name()).collect()
    }

    /// The vocabulary a target of `target` speaking `speaks` uses for the run's workload, or
    /// bad input saying what it speaks.
    pub fn for_run(
        target: &str,
        speaks: &[&str],
        workload: &crate::DbWorkload,
    ) -> anyhow::Result<Vocabulary> {
        match Vocabulary::from_name(&workload.vocabulary) {
            Some(v) if speaks.contains(&v.name()) => Ok(v),
            _ => Err(bad_input(format!(
                "target {target} does not speak workload {} (its clients speak: {})",
                workload.name,
                speaks.join(", ")
            ))),
        }
    }
}

impl std::fmt::Display for Vocabulary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// An operation of the register vocabulary, on one key.
#[derive(Debug, Clone, PartialEq)]
pub enum RegisterOp {
    /// `read [k, null]` → `[k, v]` (`null` when never written).
    Read {
        /// The register's key.
        key: Value,
    },
    /// `write [k, v]`.
    Write {
        /// The register's key.
        key: Value,
        /// The value to write.
        value: Value,
    },
    /// `cas [k, [old, new]]`: `fail` when the register does not hold `old`.
    Cas {
        /// The register's key.
        key: Value,
        /// The value the register must hold.
        old: Value,
        /// The value to put in its place.
        new: Value,
    },
}

/// An operation of the set vocabulary.
#[derive(Debug, Clone, PartialEq)]
pub enum SetOp {
    /// `add e`.
    Add(Value),
    /// `read null` → every element.
    Read,
}

/// An operation of the counter vocabulary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CounterOp {
    /// `add d`.
    Add(i64),
    /// `read null` → the counter.
    Read,
}

/// An operation of the bank vocabulary (accounts are numbered from 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BankOp {
    /// `transfer {"from": i, "to": j, "amount": a}`: `fail` if it would overdraw and negative
    /// balances are not allowed.
    Transfer {
        /// The account the amount leaves.
        from: u64,
        /// The account it goes to.
        to: u64,
        /// How much.
        amount: i64,
    },
    /// `read null` → `{"0": b0, "1": b1, …}`.
    Read,
}

/// One micro-operation of a `list-append` or `rw-register` transaction.
#[derive(Debug, Clone, PartialEq)]
pub enum MicroOp {
    /// `["r", k, null]` → `["r", k, [v…]]` (list-append) or `["r", k, v]` (rw-register).
    Read {
        /// The key read.
        key: Value,
    },
    /// `["append", k, v]` (list-append).
    Append {
        /// The list's key.
        key: Value,
        /// The element appended.
        value: Value,
    },
    /// `["w", k, v]` (rw-register).
    Write {
        /// The register's key.
        key: Value,
        /// The value written.
        value: Value,
    },
}

impl MicroOp {
    /// Its key.
    pub fn key(&self) -> &Value {
        match self {
            MicroOp::Read { key } | MicroOp::Append { key, .. } | MicroOp::Write { key, .. } => key,
        }
    }

    /// Whether it writes.
    pub fn writes(&self) -> bool {
        !matches!(self, MicroOp::Read { .. })
    }

    /// As the history records it (`["append", k, v]`; a read with `null`).
    pub fn to_value(&self) -> Value {
        match self {
            MicroOp::Read { key } => json!(["r", key, null]),
            MicroOp::Append { key, value } => json!(["append", key, value]),
            MicroOp::Write { key, value } => json!(["w", key, value]),
        }
    }

    /// A completed read: `["r", k, seen]`.
    pub fn read_result(key: &Value, seen: Value) -> Value {
        json!(["r", key, seen])
    }
}

/// An operation of the queue vocabulary.
#[derive(Debug, Clone, PartialEq)]
pub enum QueueOp {
    /// `enqueue v`.
    Enqueue(Value),
    /// `dequeue` → the oldest element, or `null`.
    Dequeue,
    /// `drain` → every element.
    Drain,
}

/// An operation of the unique-ids vocabulary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UniqueIdsOp {
    /// `generate` → a fresh id.
    Generate,
}

/// An operation of the mutex vocabulary (one lock).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MutexOp {
    /// `acquire`: `fail` while it is held.
    Acquire,
    /// `release`: `fail` while it is free.
    Release,
}

/// One operation, typed by its vocabulary.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// The register vocabulary.
    Register(RegisterOp),
    /// The set vocabulary.
    Set(SetOp),
    /// The counter vocabulary.
    Counter(CounterOp),
    /// The bank vocabulary.
    Bank(BankOp),
    /// A `list-append` transaction: its micro-operations, in order.
    ListAppend(Vec<MicroOp>),
    /// An `rw-register` transaction: its micro-operations, in order.
    RwRegister(Vec<MicroOp>),
    /// The queue vocabulary.
    Queue(QueueOp),
    /// The unique-ids vocabulary.
    UniqueIds(UniqueIdsOp),
    /// The mutex vocabulary.
    Mutex(MutexOp),
}

impl Op {
    /// The request `f` with `value` in `vocabulary`, typed; the error says what the vocabulary
    /// expects (`register write: expects [key, value], got 3`).
    pub fn parse(vocabulary: Vocabulary, f: &str, value: &Value) -> Result<Op, String> {
        let v = vocabulary.name();
        let expects = |what: &str| format!("{v} {f}: expects {what}, got {value}");
        let pair = |what: &str| match value.as_array().map(Vec::as_slice) {
            Some([a, b]) => Ok((a.clone(), b.clone())),
            _ => Err(expects(what)),
        };
        Ok(match (vocabulary, f) {
            (Vocabulary::Register, "read") => match value.as_array().map(Vec::as_slice) {
                Some([k] | [k, _]) => Op::Register(RegisterOp::Read { key: k.clone() }),
                _ => return Err(expects("[key, null]")),
            },
            (Vocabulary::Register, "write") => {
                let (key, value) = pair("[key, value]")?;
                Op::Register(RegisterOp::Write { key, value })
            }
            (Vocabulary::Register, "cas") => {
                let what = "[key, [old, new]]";
                let (key, ov) = pair(what)?;
                let Some([old, new]) = ov.as_array().map(Vec::as_slice) else {
                    return Err(expects(what));
                };
                Op::Register(RegisterOp::Cas {
                    key,
                    old: old.clone(),
                    new: new.clone(),
                })
            }
            (Vocabulary::Set, "add") if value.is_null() => return Err(expects("an element")),
            (Vocabulary::Set, "add") => Op::Set(SetOp::Add(value.clone())),
            (Vocabulary::Set, "read") => Op::Set(SetOp::Read),
            (Vocabulary::Counter, "add") => match value.as_i64() {
                Some(d) => Op::Counter(CounterOp::Add(d)),
                None => return Err(expects("an integer")),
            },
            (Vocabulary::Counter, "read") => Op::Counter(CounterOp::Read),
            (Vocabulary::Bank, "transfer") => {
                let (Some(from), Some(to), Some(amount)) = (
                    value.get("from").and_then(Value::as_u64),
                    value.get("to").and_then(Value::as_u64),
                    value.get("amount").and_then(Value::as_i64),
                ) else {
                    return Err(expects(
                        "{\"from\": account, \"to\": account, \"amount\": n}",
                    ));
                };
                Op::Bank(BankOp::Transfer { from, to, amount })
            }
            (Vocabulary::Bank, "read") => Op::Bank(BankOp::Read),
            (Vocabulary::ListAppend, "txn") => Op::ListAppend(micro_ops(value, "append")?),
            (Vocabulary::RwRegister, "txn") => Op::RwRegister(micro_ops(value, "w")?),
            (Vocabulary::Queue, "enqueue") => Op::Queue(QueueOp::Enqueue(value.clone())),
            (Vocabulary::Queue, "dequeue") => Op::Queue(QueueOp::Dequeue),
            (Vocabulary::Queue, "drain") => Op::Queue(QueueOp::Drain),
            (Vocabulary::UniqueIds, "generate") => Op::UniqueIds(UniqueIdsOp::Generate),
            (Vocabulary::Mutex, "acquire") => Op::Mutex(MutexOp::Acquire),
            (Vocabulary::Mutex, "release") => Op::Mutex(MutexOp::Release),
            _ => {
                return Err(format!(
                    "vocabulary {v} has no operation {f:?} (its operations: {})",
                    vocabulary.ops().join(", ")
                ))
            }
        })
    }

    /// Its vocabulary.
    pub fn vocabulary(&self) -> Vocabulary {
        match self {
            Op::Register(_) => Vocabulary::Register,
            Op::Set(_) => Vocabulary::Set,
            Op::Counter(_) => Vocabulary::Counter,
            Op::Bank(_) => Vocabulary::Bank,
            Op::ListAppend(_) => Vocabulary::ListAppend,
            Op::RwRegister(_) => Vocabulary::RwRegister,
            Op::Queue(_) => Vocabulary::Queue,
            Op::UniqueIds(_) => Vocabulary::UniqueIds,
            Op::Mutex(_) => Vocabulary::Mutex,
        }
    }

    /// The request as the history records it: `f` and `value` (`Op::parse` of it gives this op
    /// back). Operations whose value carries nothing (`read`, `dequeue`, …) have `null`.
    pub fn request(&self) -> (&'static str, Value) {
        match self {
            Op::Register(RegisterOp::Read { key }) => ("read", json!([key, null])),
            Op::Register(RegisterOp::Write { key, value }) => ("write", json!([key, value])),
            Op::Register(RegisterOp::Cas { key, old, new }) => ("cas", json!([key, [old, new]])),
            Op::Set(SetOp::Add(e)) => ("add", e.clone()),
            Op::Counter(CounterOp::Add(d)) => ("add", json!(d)),
            Op::Set(SetOp::Read) | Op::Counter(CounterOp::Read) | Op::Bank(BankOp::Read) => {
                ("read", Value::Null)
            }
            Op::Bank(BankOp::Transfer { from, to, amount }) => (
                "transfer",
                json!({"from": from, "to": to, "amount": amount}),
            ),
            Op::ListAppend(m) | Op::RwRegister(m) => (
                "txn",
                Value::Array(m.iter().map(MicroOp::to_value).collect()),
            ),
            Op::Queue(QueueOp::Enqueue(v)) => ("enqueue", v.clone()),
            Op::Queue(QueueOp::Dequeue) => ("dequeue", Value::Null),
            Op::Queue(QueueOp::Drain) => ("drain", Value::Null),
            Op::UniqueIds(UniqueIdsOp::Generate) => ("generate", Value::Null),
            Op::Mutex(MutexOp::Acquire) => ("acquire", Value::Null),
            Op::Mutex(MutexOp::Release) => ("release", Value::Null),
        }
    }

    /// Whether it may change the database (so an error after sending it leaves it unknown);
    /// false for reads, and for transactions that only read.
    pub fn writes(&self) -> bool {
        match self {
            Op::Register(RegisterOp::Read { .. })
            | Op::Set(SetOp::Read)
            | Op::Counter(CounterOp::Read)
            | Op::Bank(BankOp::Read) => false,
            Op::ListAppend(m) | Op::RwRegister(m) => m.iter().any(MicroOp::writes),
            _ => true,
        }
    }

    /// The completion of an op a client does not implement: `fail`, nothing was sent.
    pub fn unsupported(&self, target: &str, request: &Value) -> Completion {
        Completion::fail(
            request.clone(),
            format!(
                "{target} client: vocabulary {} is not implemented (not sent)",
                self.vocabulary()
            ),
        )
    }
}

/// The micro-ops of a transaction whose writes are called `write_f`.
fn micro_ops(value: &Value, write_f: &str) -> Result<Vec<MicroOp>, String> {
    let Some(mops) = value.as_array() else {
        return Err(format!(
            "txn: expects a list of micro-ops [f, key, value], got {value}"
        ));
    };
    mops.iter()
        .map(|m| {
            let Some([f, key, v]) = m.as_array().map(Vec::as_slice) else {
                return Err(format!("txn: micro-op {m}: expects [f, key, value]"));
            };
            let key = key.clone();
            match f.as_str() {
                Some("r") => Ok(MicroOp::Read { key }),
                Some("append") if write_f == "append" => Ok(MicroOp::Append {
                    key,
                    value: v.clone(),
                }),
                Some("w") if write_f == "w" => Ok(MicroOp::Write {
                    key,
                    value: v.clone(),
                }),
                _ => Err(format!(
                    "txn: micro-op {m}: f must be \"r\" or \"{write_f}\""
                )),
            }
        })
        .collect()
}

/// A history key as text inside a database's key or column: integers and strings as
/// themselves, anything else as its JSON text.
pub fn key_text(k: &Value) -> String {
    match k {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A read's elements in a stable order (integers first, by value; then the rest by their JSON
/// text): what a database returns in no particular order is easier to read sorted.
pub fn sort_elements(elements: &mut [Value]) {
    elements.sort_by_key(|v| (v.as_i64().is_none(), v.as_i64(), v.to_string()));
}

/// The register vocabulary, implemented.
pub trait RegisterClient: Send {
    /// Performs `op`; `request` is the op as recorded (echoed by `fail` and `info`).
    fn register<'a>(&'a mut self, op: RegisterOp, request: &'a Value) -> BoxFuture<'a, Completion>;
}

/// The set vocabulary, implemented.
pub trait SetClient: Send {
    /// Performs `op` (see [`RegisterClient::register`]).
    fn set<'a>(&'a mut self, op: SetOp, request: &'a Value) -> BoxFuture<'a, Completion>;
}

/// The counter vocabulary, implemented.
pub trait CounterClient: Send {
    /// Performs `op` (see [`RegisterClient::register`]).
    fn counter<'a>(&'a mut self, op: CounterOp, request: &'a Value) -> BoxFuture<'a, Completion>;
}

/// What a database needs to serve the bank vocabulary (the bank workload's client parameters,
/// [`crate::DbWorkload::params`]).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BankParams {
    /// Number of accounts, `0..accounts`.
    pub accounts: u64,
    /// The sum of all balances: each account starts at `total / accounts`, the remainder on
    /// account 0.
    pub total: i64,
    /// Whether a transfer may take a balance below zero.
    pub allow_negative: bool,
}

/// The bank's opening balances as `(account, balance)`: `total / accounts` each, the remainder
/// on account 0 (the split every database uses, so the checker's expected total holds).
pub fn initial_balances(accounts: u64, total: i64) -> Vec<(i64, i64)> {
    if accounts == 0 {
        return Vec::new();
    }
    let n = accounts as i64;
    (0..n)
        .map(|a| (a, total / n + if a == 0 { total % n } else { 0 }))
        .collect()
}

/// The bank vocabulary, implemented (the accounts exist from setup, [`BankParams`]).
pub trait BankClient: Send {
    /// Performs `op` (see [`RegisterClient::register`]).
    fn bank<'a>(&'a mut self, op: BankOp, request: &'a Value) -> BoxFuture<'a, Completion>;
}

/// The list-append vocabulary, implemented: one transaction of reads and appends.
pub trait ListAppendClient: Send {
    /// Performs the transaction (see [`RegisterClient::register`]).
    fn list_append<'a>(
        &'a mut self,
        txn: Vec<MicroOp>,
        request: &'a Value,
    ) -> BoxFuture<'a, Completion>;
}

/// The rw-register vocabulary, implemented: one transaction of reads and writes.
pub trait RwRegisterClient: Send {
    /// Performs the transaction (see [`RegisterClient::register`]).
    fn rw_register<'a>(
        &'a mut self,
        txn: Vec<MicroOp>,
        request: &'a Value,
    ) -> BoxFuture<'a, Completion>;
}

/// Which vocabularies a client implements: each accessor returns the client itself when it
/// implements that vocabulary's trait (default: it does not). Declared once more, by name, in
/// the target's `VOCABULARIES` (what the registry checks a plan against before anything runs);
/// [`Typed::new`] refuses a client that lacks one its target declared. The vocabularies of the
/// YAML workloads in `workloads/` (queue, unique-ids, mutex) have no trait: the databases that
/// speak them match on [`Op`].
pub trait Speaks: Send {
    /// This client as a [`RegisterClient`]; `None` (the default) when it does not speak that vocabulary.
    fn as_register(&mut self) -> Option<&mut dyn RegisterClient> {
        None
    }
    /// This client as a [`SetClient`]; `None` (the default) when it does not speak that vocabulary.
    fn as_set(&mut self) -> Option<&mut dyn SetClient> {
        None
    }
    /// This client as a [`CounterClient`]; `None` (the default) when it does not speak that vocabulary.
    fn as_counter(&mut self) -> Option<&mut dyn CounterClient> {
        None
    }
    /// This client as a [`BankClient`]; `None` (the default) when it does not speak that vocabulary.
    fn as_bank(&mut self) -> Option<&mut dyn BankClient> {
        None
    }
    /// This client as a [`ListAppendClient`]; `None` (the default) when it does not speak that vocabulary.
    fn as_list_append(&mut self) -> Option<&mut dyn ListAppendClient> {
        None
    }
    /// This client as a [`RwRegisterClient`]; `None` (the default) when it does not speak that vocabulary.
    fn as_rw_register(&mut self) -> Option<&mut dyn RwRegisterClient> {
        None
    }
    /// Releases the connection (see [`Client::close`]).
    fn close(&mut self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
}

/// Implements the traits of the listed vocabularies, and [`Speaks`], for a client type with a
/// method `perform(&mut self, op: Op, request: &Value)` returning a `Send` future of a
/// [`Completion`] (one `match` on [`Op`]): `speaks!(MyClient: register, counter)`. The
/// vocabularies: `register`, `set`, `counter`, `bank`, `list_append`, `rw_register`.
#[macro_export]
macro_rules! speaks {
    ($client:ty: $($v:ident),+ $(,)?) => {
        $( $crate::speaks!(@impl $client, $v); )+
        impl $crate::vocab::Speaks for $client {
            $( $crate::speaks!(@as $v); )+
        }
    };
    (@impl $client:ty, register) => {
        $crate::speaks!(@trait $client, RegisterClient, register, RegisterOp, Register);
    };
    (@impl $client:ty, set) => {
        $crate::speaks!(@trait $client, SetClient, set, SetOp, Set);
    };
    (@impl $client:ty, counter) => {
        $crate::speaks!(@trait $client, CounterClient, counter, CounterOp, Counter);
    };
    (@impl $client:ty, bank) => {
        $crate::speaks!(@trait $client, BankClient, bank, BankOp, Bank);
    };
    (@impl $client:ty, list_append) => {
        $crate::speaks!(@trait $client, ListAppendClient, list_append, Txn, ListAppend);
    };
    (@impl $client:ty, rw_register) => {
        $crate::speaks!(@trait $client, RwRegisterClient, rw_register, Txn, RwRegister);
    };
    (@trait $client:ty, $tr:ident, $method:ident, $arg:ident, $variant:ident) => {
        impl $crate::vocab::$tr for $client {
            fn $method<'a>(
                &'a mut self,
                op: $crate::vocab::$arg,
                request: &'a ::serde_json::Value,
            ) -> $crate::BoxFuture<'a, $crate::Completion> {
                Box::pin(self.perform($crate::vocab::Op::$variant(op), request))
            }
        }
    };
    (@as register) => { $crate::speaks!(@as_fn as_register, RegisterClient); };
    (@as set) => { $crate::speaks!(@as_fn as_set, SetClient); };
    (@as counter) => { $crate::speaks!(@as_fn as_counter, CounterClient); };
    (@as bank) => { $crate::speaks!(@as_fn as_bank, BankClient); };
    (@as list_append) => { $crate::speaks!(@as_fn as_list_append, ListAppendClient); };
    (@as rw_register) => { $crate::speaks!(@as_fn as_rw_register, RwRegisterClient); };
    (@as_fn $name:ident, $tr:ident) => {
        fn $name(&mut self) -> Option<&mut dyn $crate::vocab::$tr> {
            Some(self)
        }
    };
}

/// A transaction of micro-ops (`list-append`, `rw-register`).
pub type Txn = Vec<MicroOp>;

/// Whether `client` implements `vocabulary`'s trait.
pub fn implements(client: &mut dyn Speaks, vocabulary: Vocabulary) -> bool {
    match vocabulary {
        Vocabulary::Register => client.as_register().is_some(),
        Vocabulary::Set => client.as_set().is_some(),
        Vocabulary::Counter => client.as_counter().is_some(),
        Vocabulary::Bank => client.as_bank().is_some(),
        Vocabulary::ListAppend => client.as_list_append().is_some(),
        Vocabulary::RwRegister => client.as_rw_register().is_some(),
        Vocabulary::Queue | Vocabulary::UniqueIds | Vocabulary::Mutex => false,
    }
}

/// The vocabularies `client` implements (what its target's `VOCABULARIES` must say).
pub fn implemented(client: &mut dyn Speaks) -> Vec<&'static str> {
    Vocabulary::ALL
        .iter()
        .filter(|v| implements(client, **v))
        .map(|v| v.name())
        .collect()
}

/// Performs a typed op through the trait of its vocabulary.
pub fn dispatch<'a>(
    client: &'a mut dyn Speaks,
    target: &str,
    op: Op,
    request: &'a Value,
) -> BoxFuture<'a, Completion> {
    let unsupported = op.unsupported(target, request);
    let done = match op {
        Op::Register(o) => client.as_register().map(|c| c.register(o, request)),
        Op::Set(o) => client.as_set().map(|c| c.set(o, request)),
        Op::Counter(o) => client.as_counter().map(|c| c.counter(o, request)),
        Op::Bank(o) => client.as_bank().map(|c| c.bank(o, request)),
        Op::ListAppend(t) => client.as_list_append().map(|c| c.list_append(t, request)),
        Op::RwRegister(t) => client.as_rw_register().map(|c| c.rw_register(t, request)),
        Op::Queue(_) | Op::UniqueIds(_) | Op::Mutex(_) => None,
    };
    done.unwrap_or_else(|| Box::pin(std::future::ready(unsupported)))
}

/// The [`Client`] of a database that speaks typed vocabularies: parses every request in the
/// run's vocabulary and performs it through the client's trait for it. A request that does not
/// parse is `fail` (nothing was sent).
pub struct Typed<C> {
    target: &'static str,
    vocabulary: Vocabulary,
    client: C,
}

impl<C: Speaks> Typed<C> {
    /// `client` of target `target`, speaking `vocabulary`; an error when the client does not
    /// implement it (a target that declares a vocabulary its client lacks).
    pub fn new(
        target: &'static str,
        vocabulary: Vocabulary,
        mut client: C,
    ) -> anyhow::Result<Self> {
        if !implements(&mut client, vocabulary) {
            return Err(anyhow::anyhow!(
                "target {target} declares vocabulary {vocabulary}, but its client does not implement it"
            ));
        }
        Ok(Typed {
            target,
            vocabulary,
            client,
        })
    }

    /// The client inside.
    pub fn inner(&mut self) -> &mut C {
        &mut self.client
    }
}

impl<C: Speaks> Client for Typed<C> {
    fn invoke<'a>(&'a mut self, f: &'a str, value: &'a Value) -> BoxFuture<'a, Completion> {
        match Op::parse(self.vocabulary, f, value) {
            Ok(op) => dispatch(&mut self.client, self.target, op, value),
            Err(e) => Box::pin(std::future::ready(Completion::fail(
                value.clone(),
                format!("{} client: {e} (not sent)", self.target),
            ))),
        }
    }

    fn close(&mut self) -> BoxFuture<'_, ()> {
        self.client.close()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_vocabularies_with_traits_are_the_first_six_names() {
        assert_eq!(
            Vocabulary::WITH_TRAITS,
            [
                "register",
                "set",
                "counter",
                "bank",
                "list-append",
                "rw-register"
            ]
        );
        assert_eq!(Vocabulary::ALL_NAMES.len(), Vocabulary::ALL.len());
    }
    use crate::history::OpType;

    #[test]
    fn requests_parse_to_typed_ops_and_back() {
        for (v, f, value) in [
            (Vocabulary::Register, "read", json!([1, null])),
            (Vocabulary::Register, "write", json!([1, 5])),
            (Vocabulary::Register, "cas", json!(["k", [5, 6]])),
            (Vocabulary::Set, "add", json!(3)),
            (Vocabulary::Set, "read", Value::Null),
            (Vocabulary::Counter, "add", json!(2)),
            (Vocabulary::Counter, "read", Value::Null),
            (
                Vocabulary::Bank,
                "transfer",
                json!({"from": 0, "to": 2, "amount": 5}),
            ),
            (Vocabulary::Bank, "read", Value::Null),
            (
                Vocabulary::ListAppend,
                "txn",
                json!([["append", 1, 2], ["r", 1, null]]),
            ),
            (
                Vocabulary::RwRegister,
                "txn",
                json!([["w", 1, 2], ["r", 3, null]]),
            ),
            (Vocabulary::Queue, "enqueue", json!(7)),
            (Vocabulary::Queue, "drain", Value::Null),
            (Vocabulary::UniqueIds, "generate", Value::Null),
            (Vocabulary::Mutex, "release", Value::Null),
        ] {
            let op = Op::parse(v, f, &value).unwrap_or_else(|e| panic!("{v} {f}: {e}"));
            assert_eq!(op.vocabulary(), v);
            assert_eq!(op.request(), (f, value.clone()), "{v} {f}");
            assert!(v.ops().contains(&f));
        }
        assert!(
            !Op::parse(Vocabulary::ListAppend, "txn", &json!([["r", 1, null]]))
                .unwrap()
                .writes()
        );
        assert!(Op::parse(Vocabulary::Register, "cas", &json!([1, [1, 2]]))
            .unwrap()
            .writes());
        for v in Vocabulary::ALL {
            assert_eq!(Vocabulary::from_name(v.name()), Some(*v));
        }
        assert_eq!(Vocabulary::from_name("my-own"), None);
    }

    #[test]
    fn malformed_requests_say_what_the_vocabulary_expects() {
        let e = |v, f, value: Value| Op::parse(v, f, &value).unwrap_err();
        assert_eq!(
            e(Vocabulary::Register, "write", json!(3)),
            "register write: expects [key, value], got 3"
        );
        assert!(e(Vocabulary::Register, "cas", json!([1, 2])).contains("[key, [old, new]]"));
        assert!(e(Vocabulary::Counter, "add", json!("x")).contains("an integer"));
        assert!(e(Vocabulary::Set, "add", Value::Null).contains("an element"));
        assert!(e(Vocabulary::Bank, "transfer", json!({"from": 1})).contains("\"amount\""));
        let m = e(Vocabulary::RwRegister, "txn", json!([["append", 1, 2]]));
        assert!(m.contains("f must be \"r\" or \"w\""), "{m}");
        assert!(
            e(Vocabulary::ListAppend, "txn", json!([["r", 1]])).contains("expects [f, key, value]")
        );
        assert_eq!(
            e(Vocabulary::Set, "incr", json!(1)),
            "vocabulary set has no operation \"incr\" (its operations: add, read)"
        );
    }

    /// A client that speaks only the counter vocabulary.
    struct Counting(i64);

    impl CounterClient for Counting {
        fn counter<'a>(
            &'a mut self,
            op: CounterOp,
            request: &'a Value,
        ) -> BoxFuture<'a, Completion> {
            let c = match op {
                CounterOp::Add(d) => {
                    self.0 += d;
                    Completion::ok(request.clone())
                }
                CounterOp::Read => Completion::ok(json!(self.0)),
            };
            Box::pin(std::future::ready(c))
        }
    }

    impl Speaks for Counting {
        fn as_counter(&mut self) -> Option<&mut dyn CounterClient> {
            Some(self)
        }
    }

    #[test]
    fn typed_clients_get_typed_ops_and_refuse_what_does_not_parse() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        assert_eq!(implemented(&mut Counting(0)), ["counter"]);
        let e = Typed::new("toy", Vocabulary::Set, Counting(0))
            .err()
            .unwrap();
        assert!(e.to_string().contains("declares vocabulary set"), "{e}");
        let mut c = Typed::new("toy", Vocabulary::Counter, Counting(0)).unwrap();
        let ok = rt.block_on(c.invoke("add", &json!(2)));
        assert_eq!((ok.kind, ok.value), (OpType::Ok, json!(2)));
        let read = rt.block_on(c.invoke("read", &Value::Null));
        assert_eq!(read.value, json!(2));
        let bad = rt.block_on(c.invoke("add", &json!("two")));
        assert_eq!(bad.kind, OpType::Fail);
        assert_eq!(bad.value, json!("two"));
        assert_eq!(
            bad.error.as_deref(),
            Some("toy client: counter add: expects an integer, got \"two\" (not sent)")
        );
        // A typed op of a vocabulary the client does not implement is refused, not sent.
        let other = Op::Set(SetOp::Read);
        let r = rt.block_on(dispatch(&mut Counting(0), "toy", other, &Value::Null));
        assert_eq!(r.kind, OpType::Fail);
        assert!(r
            .error
            .unwrap()
            .contains("vocabulary set is not implemented"));
    }
}

//! Turning `f: "txn"` events into transactions of typed micro-operations.
//!
//! This module owns the input conventions of the transactional checker: which events are
//! transactions, how an invocation is joined with its completion (via
//! [`crate::history::Pairer`]), which value (request or response) is authoritative for each
//! outcome, and the shape of a micro-op for each workload. Keys are interned to dense ids so the
//! per-key analyses can run over plain vectors. Every malformed micro-op is a [`CheckError`]
//! naming the event.
//!
//! [`TxnParser`] takes events one at a time and keeps, besides the transactions it built, only
//! the values of invocations still open: a caller that streams a history file into it never
//! holds the history's JSON values at once (a million transactions as `serde_json` values take
//! gigabytes; as micro-ops, a few hundred bytes each). A transaction keeps its recorded value
//! only when rebuilding it from the micro-ops would not give it back exactly ([`Parsed::value`]).

use super::fx::HashMap;
use super::TxnWorkload;
use crate::checker::CheckError;
use crate::history::limits::quote_value as q;
use crate::history::{Op, OpType, Paired, Pairer, Process};
use serde_json::{json, Value};
use std::borrow::Cow;
use std::fmt;

/// A key or a value: JSON integers and strings, the only scalars Elle's workloads use.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scalar {
    /// A JSON integer that fits in 64 bits.
    Int(i64),
    /// A JSON string.
    Str(Box<str>),
}

impl fmt::Display for Scalar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scalar::Int(i) => write!(f, "{i}"),
            Scalar::Str(s) => f.write_str(s),
        }
    }
}

impl Scalar {
    fn from_json(v: &Value) -> Option<Scalar> {
        match v {
            Value::Number(n) => n.as_i64().map(Scalar::Int),
            Value::String(s) => Some(Scalar::Str(s.as_str().into())),
            _ => None,
        }
    }

    /// As JSON: an integer or a string.
    pub fn to_json(&self) -> Value {
        match self {
            Scalar::Int(i) => Value::from(*i),
            Scalar::Str(s) => Value::from(&**s),
        }
    }

    /// Whether `v` is exactly what [`Scalar::to_json`] gives back for the scalar read from it.
    fn round_trips(v: &Value, s: &Scalar) -> bool {
        match (v, s) {
            (Value::Number(n), Scalar::Int(i)) => *n == serde_json::Number::from(*i),
            (Value::String(_), Scalar::Str(_)) => true,
            _ => false,
        }
    }
}

/// Lists longer than this are printed elided (see [`fmt_list`]).
pub const LIST_PRINT_MAX: usize = 64;

/// Writes a list the way Elle prints it: `[1 2 3]`. A list longer than [`LIST_PRINT_MAX`] is
/// cut to its first 32 and last 8 elements and its length: `[1 2 … 9999 10000] (10000
/// elements)`, so that explanations stay readable (and small) whatever a read returned.
pub fn fmt_list(xs: &[Scalar]) -> String {
    let mut s = String::from("[");
    let (head, tail) = if xs.len() > LIST_PRINT_MAX {
        (&xs[..32], &xs[xs.len() - 8..])
    } else {
        (xs, &xs[..0])
    };
    for (i, x) in head.iter().enumerate() {
        if i > 0 {
            s.push(' ');
        }
        s.push_str(&x.to_string());
    }
    if !tail.is_empty() {
        s.push_str(" …");
        for x in tail {
            s.push(' ');
            s.push_str(&x.to_string());
        }
    }
    s.push(']');
    if !tail.is_empty() {
        s.push_str(&format!(" ({} elements)", xs.len()));
    }
    s
}

/// One micro-operation. Keys are interned ids (see [`Parsed::keys`]).
#[derive(Debug, Clone, PartialEq)]
pub enum Mop {
    /// `["append", k, v]`
    Append(u32, Scalar),
    /// `["r", k, list]` (list-append). `None` when the read's result is unknown (the
    /// transaction did not complete `ok`); a JSON `null` result of an `ok` read is the empty list.
    ReadList(u32, Option<Vec<Scalar>>),
    /// `["w", k, v]`
    Write(u32, Scalar),
    /// `["r", k, v]` (rw-register). Outer `None`: unknown; `Some(None)`: read the initial
    /// (never-written) state.
    ReadReg(u32, Option<Option<Scalar>>),
}

impl Mop {
    /// The interned key the micro-op touches (an index into [`Parsed::keys`]).
    pub fn key(&self) -> u32 {
        match self {
            Mop::Append(k, _) | Mop::ReadList(k, _) | Mop::Write(k, _) | Mop::ReadReg(k, _) => *k,
        }
    }
}

/// How a transaction ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Completed `ok`: committed, read results known.
    Ok,
    /// Completed `fail`: certainly not committed.
    Fail,
    /// Completed `info` or never completed: may or may not have committed.
    Info,
}

impl Status {
    /// The status as recorded in histories: `ok`, `fail` or `info`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Fail => "fail",
            Status::Info => "info",
        }
    }
    /// Committed or possibly committed: the transaction belongs in the dependency graph.
    pub fn in_graph(self) -> bool {
        self != Status::Fail
    }
}

/// A transaction: an invocation joined with its completion.
#[derive(Debug, Clone)]
pub struct Txn {
    /// Event index (position in the history) of the invocation.
    pub invoke: usize,
    /// Event index of the completion; `None` for a transaction still open at the end.
    pub complete: Option<usize>,
    /// Client process id.
    pub process: u64,
    /// How the transaction ended.
    pub status: Status,
    /// Its micro-ops, in order, with read results when it completed `ok`.
    pub mops: Vec<Mop>,
    /// The micro-ops as recorded (completion value for `ok`, invocation otherwise), kept only
    /// when [`Parsed::value`] could not rebuild them exactly from `mops`.
    recorded: Option<Box<Value>>,
}

/// The transactions of a history plus the interned keys.
#[derive(Debug, Default)]
pub struct Parsed {
    /// In invocation order.
    pub txns: Vec<Txn>,
    /// The keys, indexed by interned id.
    pub keys: Vec<Scalar>,
    /// Client operations whose `f` is not `"txn"` (ignored, counted in the stats).
    pub ignored: usize,
}

impl Parsed {
    /// A transaction's micro-ops as recorded (with read results when it completed `ok`), for
    /// reports.
    pub fn value(&self, t: &Txn) -> Value {
        if let Some(v) = &t.recorded {
            return (**v).clone();
        }
        let key = |k: &u32| self.keys[*k as usize].to_json();
        let list = |l: &[Scalar]| Value::Array(l.iter().map(Scalar::to_json).collect());
        Value::Array(
            t.mops
                .iter()
                .map(|m| match m {
                    Mop::Append(k, v) => json!(["append", key(k), v.to_json()]),
                    Mop::ReadList(k, l) => {
                        json!(["r", key(k), l.as_deref().map_or(Value::Null, list)])
                    }
                    Mop::Write(k, v) => json!(["w", key(k), v.to_json()]),
                    Mop::ReadReg(k, v) => json!([
                        "r",
                        key(k),
                        v.as_ref().map_or(Value::Null, |x| x
                            .as_ref()
                            .map_or(Value::Null, Scalar::to_json))
                    ]),
                })
                .collect(),
        )
    }

    /// Bytes held (approximately): what the memory budget counts for the parsed history.
    pub fn bytes(&self) -> usize {
        let scalar = std::mem::size_of::<Scalar>();
        let mut b = self.txns.capacity() * std::mem::size_of::<Txn>();
        for t in &self.txns {
            b += t.mops.capacity() * std::mem::size_of::<Mop>();
            for m in &t.mops {
                if let Mop::ReadList(_, Some(l)) = m {
                    b += l.capacity() * scalar;
                }
            }
            if t.recorded.is_some() {
                b += 256;
            }
        }
        b + self.keys.len() * (scalar + 16)
    }
}

struct Interner {
    ids: HashMap<Scalar, u32>,
    keys: Vec<Scalar>,
}

impl Interner {
    fn id(&mut self, k: Scalar) -> u32 {
        if let Some(&i) = self.ids.get(&k) {
            return i;
        }
        let i = self.keys.len() as u32;
        self.keys.push(k.clone());
        self.ids.insert(k, i);
        i
    }
}

/// Builds [`Parsed`] from events pushed one at a time, in history order (see the module docs).
pub struct TxnParser<'a> {
    workload: TxnWorkload,
    pairer: Pairer,
    interner: Interner,
    out: Parsed,
    /// Pairing slot → (transaction, invocation value) while the transaction is open.
    pending: HashMap<usize, (u32, Cow<'a, Value>)>,
    events: usize,
}

impl<'a> TxnParser<'a> {
    /// A parser for histories of `workload`, with nothing pushed yet.
    pub fn new(workload: TxnWorkload) -> TxnParser<'a> {
        TxnParser {
            workload,
            pairer: Pairer::default(),
            interner: Interner {
                ids: HashMap::default(),
                keys: Vec::new(),
            },
            out: Parsed::default(),
            pending: HashMap::default(),
            events: 0,
        }
    }

    /// The next event of a history the caller keeps (nothing is copied but the values of
    /// invocations while they are open — and not even those).
    pub fn push_ref(&mut self, op: &'a Op) -> Result<(), CheckError> {
        self.event(op, Cow::Borrowed(&op.value))
    }

    /// The next event, given away (a streaming reader's case).
    pub fn push(&mut self, mut op: Op) -> Result<(), CheckError> {
        let value = std::mem::take(&mut op.value);
        self.event(&op, Cow::Owned(value))
    }

    /// Events pushed so far.
    pub fn events(&self) -> usize {
        self.events
    }

    fn event(&mut self, op: &Op, value: Cow<'a, Value>) -> Result<(), CheckError> {
        let i = self.events;
        self.events += 1;
        let paired = self
            .pairer
            .push(i, op)
            .map_err(|e| CheckError::new(e.event, e.msg))?;
        match paired {
            Paired::Nemesis => {}
            Paired::Invoked { slot } => {
                let Process::Client(process) = op.process else {
                    return Ok(());
                };
                if op.f != "txn" {
                    self.out.ignored += 1;
                    return Ok(());
                }
                // Keys are numbered in invocation order (an ok completion names the same keys).
                if let Value::Array(items) = &*value {
                    for m in items {
                        if let Some(k) = m.get(1).and_then(Scalar::from_json) {
                            self.interner.id(k);
                        }
                    }
                }
                let t = self.out.txns.len() as u32;
                self.out.txns.push(Txn {
                    invoke: i,
                    complete: None,
                    process,
                    status: Status::Info,
                    mops: Vec::new(),
                    recorded: None,
                });
                self.pending.insert(slot, (t, value));
            }
            Paired::Completed { slot, invoke } => {
                let Some((t, inv)) = self.pending.remove(&slot) else {
                    return Ok(());
                };
                let status = match op.kind {
                    OpType::Ok => Status::Ok,
                    OpType::Fail => Status::Fail,
                    _ => Status::Info,
                };
                let (mops, recorded) = if status == Status::Ok {
                    // The completion must describe the same transaction as the invocation.
                    check_same_shape(&inv, &value, invoke, i)?;
                    self.mops(&value, i, true)?
                } else {
                    self.mops(&inv, invoke, false)?
                };
                let txn = &mut self.out.txns[t as usize];
                txn.complete = Some(i);
                txn.status = status;
                txn.mops = mops;
                txn.recorded = recorded;
            }
        }
        Ok(())
    }

    fn mops(
        &mut self,
        v: &Value,
        event: usize,
        completed_ok: bool,
    ) -> Result<(Vec<Mop>, Option<Box<Value>>), CheckError> {
        let (mops, exact) = parse_mops(v, event, self.workload, completed_ok, &mut self.interner)?;
        Ok((mops, (!exact).then(|| Box::new(v.clone()))))
    }

    /// The transactions; those never completed end `info`, with their invocation's micro-ops.
    pub fn finish(mut self) -> Result<Parsed, CheckError> {
        let open = std::mem::take(&mut self.pairer).into_open();
        for (slot, invoke) in open {
            let Some((t, inv)) = self.pending.remove(&slot) else {
                continue;
            };
            let (mops, recorded) = self.mops(&inv, invoke, false)?;
            let txn = &mut self.out.txns[t as usize];
            txn.mops = mops;
            txn.recorded = recorded;
        }
        self.out.keys = self.interner.keys;
        Ok(self.out)
    }
}

/// Parses every `txn` operation of `ops`. Nemesis events are skipped; other client `f`s are
/// counted and ignored.
pub fn parse(ops: &[Op], workload: TxnWorkload) -> Result<Parsed, CheckError> {
    let mut p = TxnParser::new(workload);
    for op in ops {
        p.push_ref(op)?;
    }
    p.finish()
}

/// The `ok` completion must list the invocation's micro-ops: same functions and keys, same
/// written values (reads differ: the completion carries their results). Malformed micro-ops
/// that agree in both are reported when the completion is parsed.
fn check_same_shape(
    input: &Value,
    output: &Value,
    invoke: usize,
    event: usize,
) -> Result<(), CheckError> {
    let (Value::Array(a), Value::Array(b)) = (input, output) else {
        return Err(CheckError::new(
            event,
            "a txn value must be an array of micro-ops",
        ));
    };
    if a.len() != b.len() {
        return Err(CheckError::new(
            event,
            format!(
                "the invocation (event {invoke}) has {} micro-ops but its ok completion has {}",
                a.len(),
                b.len()
            ),
        ));
    }
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        fn triple(v: &Value) -> Option<&[Value]> {
            v.as_array().map(Vec::as_slice).filter(|p| p.len() == 3)
        }
        let (Some(xs), Some(ys)) = (triple(x), triple(y)) else {
            // Say which side is malformed (the completion's first), not that they differ:
            // `[:append 1]` in both is one malformed micro-op, not two different ones.
            let (side, m, at) = if triple(y).is_none() {
                ("ok completion", y, event)
            } else {
                ("invocation", x, invoke)
            };
            return Err(CheckError::new(
                at,
                format!(
                    "micro-op {i} of the {side} must be [f, key, value], got {}",
                    q(m)
                ),
            ));
        };
        let read = xs[0]
            .as_str()
            .is_some_and(|f| f.trim_start_matches(':') == "r");
        let part = if xs[0] != ys[0] {
            Some((0, "function"))
        } else if xs[1] != ys[1] {
            Some((1, "key"))
        } else if !read && xs[2] != ys[2] {
            Some((2, "written value"))
        } else {
            None
        };
        if let Some((k, what)) = part {
            return Err(CheckError::new(
                event,
                format!(
                    "micro-op {i} of the ok completion has {what} {} where the invocation \
                     (event {invoke}) has {}",
                    q(&ys[k]),
                    q(&xs[k])
                ),
            ));
        }
    }
    Ok(())
}

/// The micro-ops of `v`, and whether [`Parsed::value`] rebuilds `v` exactly from them.
fn parse_mops(
    v: &Value,
    event: usize,
    workload: TxnWorkload,
    completed_ok: bool,
    interner: &mut Interner,
) -> Result<(Vec<Mop>, bool), CheckError> {
    let err = |m: String| CheckError::new(event, m);
    let Value::Array(items) = v else {
        return Err(err(format!(
            "a txn value must be an array of micro-ops, got {}",
            q(v)
        )));
    };
    let mut mops = Vec::with_capacity(items.len());
    let mut exact = true;
    for (i, m) in items.iter().enumerate() {
        let parts = match m {
            Value::Array(p) if p.len() == 3 => p,
            _ => {
                return Err(err(format!(
                    "micro-op {i} must be [f, key, value], got {}",
                    q(m)
                )))
            }
        };
        let f = parts[0].as_str().unwrap_or("").trim_start_matches(':');
        let key = Scalar::from_json(&parts[1]).ok_or_else(|| {
            err(format!(
                "micro-op {i}: key must be an integer or a string, got {}",
                q(&parts[1])
            ))
        })?;
        exact &= parts[0].as_str() == Some(f) && Scalar::round_trips(&parts[1], &key);
        let k = interner.id(key);
        let scalar = |x: &Value| {
            Scalar::from_json(x).ok_or_else(|| {
                err(format!(
                    "micro-op {i}: value must be an integer or a string, got {}",
                    q(x)
                ))
            })
        };
        let mut written = |x: &Value| {
            let s = scalar(x)?;
            exact &= Scalar::round_trips(x, &s);
            Ok::<_, CheckError>(s)
        };
        let mop = match (workload, f) {
            (TxnWorkload::ListAppend, "append") => Mop::Append(k, written(&parts[2])?),
            (TxnWorkload::RwRegister, "w") => Mop::Write(k, written(&parts[2])?),
            // A read of a transaction that did not complete ok: its value is unknown.
            (_, "r") if !completed_ok => {
                exact &= parts[2].is_null();
                match workload {
                    TxnWorkload::ListAppend => Mop::ReadList(k, None),
                    TxnWorkload::RwRegister => Mop::ReadReg(k, None),
                }
            }
            (TxnWorkload::ListAppend, "r") => match &parts[2] {
                Value::Null => {
                    exact = false;
                    Mop::ReadList(k, Some(Vec::new()))
                }
                Value::Array(xs) => Mop::ReadList(
                    k,
                    Some(xs.iter().map(&mut written).collect::<Result<Vec<_>, _>>()?),
                ),
                x => {
                    return Err(err(format!(
                        "micro-op {i}: a list-append read returns a list or null, got {}",
                        q(x)
                    )))
                }
            },
            (TxnWorkload::RwRegister, "r") => match &parts[2] {
                Value::Null => Mop::ReadReg(k, Some(None)),
                x => Mop::ReadReg(k, Some(Some(written(x)?))),
            },
            _ => {
                let accepted = match workload {
                    TxnWorkload::ListAppend => "\"append\" or \"r\"",
                    TxnWorkload::RwRegister => "\"w\" or \"r\"",
                };
                return Err(err(format!(
                    "micro-op {i}: unknown function {} for this workload (expected {accepted})",
                    q(&parts[0])
                )));
            }
        };
        mops.push(mop);
    }
    Ok((mops, exact))
}

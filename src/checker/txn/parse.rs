//! Turning `f: "txn"` events into transactions of typed micro-operations.
//!
//! This module owns the input conventions of the transactional checker: which events are
//! transactions, how an invocation is joined with its completion (via [`crate::history::pair`]),
//! which value (request or response) is authoritative for each outcome, and the shape of a
//! micro-op for each workload. Keys are interned to dense ids so the per-key analyses can run
//! over plain vectors. Every malformed micro-op is a [`CheckError`] naming the event.

use super::TxnWorkload;
use crate::checker::CheckError;
use crate::history::{pair, Op, OpType};
use serde_json::Value;
use std::collections::HashMap;
use std::fmt;

/// A key or a value: JSON integers and strings, the only scalars Elle's workloads use.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scalar {
    Int(i64),
    Str(Box<str>),
}

impl fmt::Display for Scalar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scalar::Int(i) => write!(f, "{i}"),
            Scalar::Str(s) => write!(f, "{s:?}"),
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
}

/// Writes a list the way Elle prints it: `[1 2 3]`.
pub fn fmt_list(xs: &[Scalar]) -> String {
    let mut s = String::from("[");
    for (i, x) in xs.iter().enumerate() {
        if i > 0 {
            s.push(' ');
        }
        s.push_str(&x.to_string());
    }
    s.push(']');
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
    pub fn key(&self) -> u32 {
        match self {
            Mop::Append(k, _) | Mop::ReadList(k, _) | Mop::Write(k, _) | Mop::ReadReg(k, _) => *k,
        }
    }
}

/// How a transaction ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    Fail,
    Info,
}

impl Status {
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
    /// Event index (position in the slice handed to `check`) of the invocation.
    pub invoke: usize,
    /// Event index of the completion; `None` for a transaction still open at the end.
    pub complete: Option<usize>,
    /// Client process id.
    pub process: u64,
    pub status: Status,
    pub mops: Vec<Mop>,
    /// The micro-ops as recorded (completion value for `ok`, invocation otherwise), for reports.
    pub value: Value,
}

/// The transactions of a history plus the interned keys.
#[derive(Debug, Default)]
pub struct Parsed {
    pub txns: Vec<Txn>,
    pub keys: Vec<Scalar>,
    /// Client operations whose `f` is not `"txn"` (ignored, counted in the stats).
    pub ignored: usize,
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

/// Parses every `txn` operation of `ops`. Nemesis events are skipped; other client `f`s are
/// counted and ignored.
pub fn parse(ops: &[Op], workload: TxnWorkload) -> Result<Parsed, CheckError> {
    let pairs = pair(ops).map_err(|e| {
        // `pair` names 1-based lines; the checker contract names 0-based events.
        let (event, msg) = match &e {
            crate::history::HistoryError::Parse { line, msg } => (line.saturating_sub(1), msg),
            crate::history::HistoryError::Io(_) => (0, &String::new()),
        };
        CheckError::new(event, msg.clone())
    })?;
    let mut interner = Interner {
        ids: HashMap::new(),
        keys: Vec::new(),
    };
    let mut out = Parsed::default();
    out.txns.reserve(pairs.len());
    for c in pairs {
        if c.f != "txn" {
            out.ignored += 1;
            continue;
        }
        let crate::history::Process::Client(process) = c.process else {
            continue;
        };
        let status = match c.outcome {
            OpType::Ok => Status::Ok,
            OpType::Fail => Status::Fail,
            _ => Status::Info,
        };
        let use_output = status == Status::Ok && c.complete.is_some();
        let (src, event) = match (use_output, c.complete) {
            (true, Some(e)) => (&c.output, e),
            _ => (&c.input, c.invoke),
        };
        let inv_mops = if use_output {
            Some(parse_mops(
                &c.input,
                c.invoke,
                workload,
                false,
                &mut interner,
            )?)
        } else {
            None
        };
        let mops = parse_mops(src, event, workload, use_output, &mut interner)?;
        if let Some(inv) = inv_mops {
            // The completion must describe the same transaction as the invocation.
            check_same_shape(&inv, &mops, event)?;
        }
        let src = if use_output { c.output } else { c.input };
        out.txns.push(Txn {
            invoke: c.invoke,
            complete: c.complete,
            process,
            status,
            mops,
            value: src,
        });
    }
    out.keys = interner.keys;
    Ok(out)
}

fn check_same_shape(inv: &[Mop], mops: &[Mop], event: usize) -> Result<(), CheckError> {
    if inv.len() != mops.len() {
        return Err(CheckError::new(
            event,
            format!(
                "the invocation has {} micro-ops but its ok completion has {}",
                inv.len(),
                mops.len()
            ),
        ));
    }
    for (i, (a, b)) in inv.iter().zip(mops).enumerate() {
        let same = match (a, b) {
            (Mop::Append(k1, v1), Mop::Append(k2, v2))
            | (Mop::Write(k1, v1), Mop::Write(k2, v2)) => k1 == k2 && v1 == v2,
            (Mop::ReadList(k1, _), Mop::ReadList(k2, _))
            | (Mop::ReadReg(k1, _), Mop::ReadReg(k2, _)) => k1 == k2,
            _ => false,
        };
        if !same {
            return Err(CheckError::new(
                event,
                format!("micro-op {i} of the invocation differs from its ok completion"),
            ));
        }
    }
    Ok(())
}

fn parse_mops(
    v: &Value,
    event: usize,
    workload: TxnWorkload,
    completed_ok: bool,
    interner: &mut Interner,
) -> Result<Vec<Mop>, CheckError> {
    let err = |m: String| CheckError::new(event, m);
    let Value::Array(items) = v else {
        return Err(err(format!(
            "a txn value must be an array of micro-ops, got {v}"
        )));
    };
    let mut mops = Vec::with_capacity(items.len());
    for (i, m) in items.iter().enumerate() {
        let parts = match m {
            Value::Array(p) if p.len() == 3 => p,
            _ => {
                return Err(err(format!(
                    "micro-op {i} must be [f, key, value], got {m}"
                )))
            }
        };
        let f = parts[0].as_str().unwrap_or("").trim_start_matches(':');
        let key = Scalar::from_json(&parts[1]).ok_or_else(|| {
            err(format!(
                "micro-op {i}: key must be an integer or a string, got {}",
                parts[1]
            ))
        })?;
        let k = interner.id(key);
        let scalar = |x: &Value| {
            Scalar::from_json(x).ok_or_else(|| {
                err(format!(
                    "micro-op {i}: value must be an integer or a string, got {x}"
                ))
            })
        };
        let mop = match (workload, f) {
            (TxnWorkload::ListAppend, "append") => Mop::Append(k, scalar(&parts[2])?),
            (TxnWorkload::RwRegister, "w") => Mop::Write(k, scalar(&parts[2])?),
            (TxnWorkload::ListAppend, "r") => {
                if !completed_ok {
                    Mop::ReadList(k, None)
                } else {
                    match &parts[2] {
                        Value::Null => Mop::ReadList(k, Some(Vec::new())),
                        Value::Array(xs) => Mop::ReadList(
                            k,
                            Some(xs.iter().map(scalar).collect::<Result<Vec<_>, _>>()?),
                        ),
                        x => {
                            return Err(err(format!(
                                "micro-op {i}: a list-append read returns a list or null, got {x}"
                            )))
                        }
                    }
                }
            }
            (TxnWorkload::RwRegister, "r") => {
                if !completed_ok {
                    Mop::ReadReg(k, None)
                } else {
                    match &parts[2] {
                        Value::Null => Mop::ReadReg(k, Some(None)),
                        x => Mop::ReadReg(k, Some(Some(scalar(x)?))),
                    }
                }
            }
            _ => {
                let accepted = match workload {
                    TxnWorkload::ListAppend => "\"append\" or \"r\"",
                    TxnWorkload::RwRegister => "\"w\" or \"r\"",
                };
                return Err(err(format!(
                    "micro-op {i}: unknown function {} for this workload (expected {accepted})",
                    parts[0]
                )));
            }
        };
        mops.push(mop);
    }
    Ok(mops)
}

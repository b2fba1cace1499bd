//! Turning `f: "txn"` events into transactions of typed micro-operations.
//!
//! This module owns the input conventions of the transactional checker: which events are
//! transactions, how an invocation is joined with its completion (via
//! [`crate::history::pair_positions`]),
//! which value (request or response) is authoritative for each outcome, and the shape of a
//! micro-op for each workload. Keys are interned to dense ids so the per-key analyses can run
//! over plain vectors. Every malformed micro-op is a [`CheckError`] naming the event.

use super::fx::HashMap;
use super::TxnWorkload;
use crate::checker::CheckError;
use crate::history::limits::quote_value as q;
use crate::history::{pair_positions, Op, OpType, Pairing, Process};
use serde_json::Value;
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
pub struct Txn<'a> {
    /// Event index (position in the slice handed to `check`) of the invocation.
    pub invoke: usize,
    /// Event index of the completion; `None` for a transaction still open at the end.
    pub complete: Option<usize>,
    /// Client process id.
    pub process: u64,
    pub status: Status,
    pub mops: Vec<Mop>,
    /// The micro-ops as recorded (completion value for `ok`, invocation otherwise), for reports.
    pub value: &'a Value,
}

/// The transactions of a history plus the interned keys.
#[derive(Debug, Default)]
pub struct Parsed<'a> {
    pub txns: Vec<Txn<'a>>,
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
///
/// Invocations are joined with completions by [`pair_positions`] (what [`crate::history::pair`]
/// does, with the same errors, but by index: `pair` clones every value, which would double the
/// memory held for a million-transaction history).
pub fn parse(ops: &[Op], workload: TxnWorkload) -> Result<Parsed<'_>, CheckError> {
    let joined = pair_positions(ops).map_err(|e| CheckError::new(e.event, e.msg))?;
    let mut interner = Interner {
        ids: HashMap::default(),
        keys: Vec::new(),
    };
    let mut out = Parsed::default();
    out.txns.reserve(joined.len());
    for Pairing {
        invoke,
        complete,
        outcome,
    } in joined
    {
        let inv = &ops[invoke];
        if inv.f != "txn" {
            out.ignored += 1;
            continue;
        }
        let Process::Client(process) = inv.process else {
            continue;
        };
        let status = match outcome {
            OpType::Ok => Status::Ok,
            OpType::Fail => Status::Fail,
            _ => Status::Info,
        };
        let (src, event) = match (status, complete) {
            (Status::Ok, Some(e)) => (&ops[e].value, e),
            _ => (&inv.value, invoke),
        };
        let use_output = event != invoke;
        if use_output {
            // The completion must describe the same transaction as the invocation.
            check_same_shape(&inv.value, src, invoke, event)?;
        }
        let mops = parse_mops(src, event, workload, use_output, &mut interner)?;
        out.txns.push(Txn {
            invoke,
            complete,
            process,
            status,
            mops,
            value: src,
        });
    }
    out.keys = interner.keys;
    Ok(out)
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
            "a txn value must be an array of micro-ops, got {}",
            q(v)
        )));
    };
    let mut mops = Vec::with_capacity(items.len());
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
        let k = interner.id(key);
        let scalar = |x: &Value| {
            Scalar::from_json(x).ok_or_else(|| {
                err(format!(
                    "micro-op {i}: value must be an integer or a string, got {}",
                    q(x)
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
                                "micro-op {i}: a list-append read returns a list or null, got {}",
                                q(x)
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
                    q(&parts[0])
                )));
            }
        };
        mops.push(mop);
    }
    Ok(mops)
}

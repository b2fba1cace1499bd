//! Linearizability checking: the Wing & Gong / Lowe search (the family of Knossos' `wgl` and
//! Porcupine) with memoisation of (linearized set, model state), and P-compositionality — a keyed
//! history is split per key and the keys are checked in parallel.
//!
//! This module owns the public API ([`check`], [`LinOptions`], [`LinResult`], [`ModelKind`]) and
//! the translation of paired history operations into model operations (value shapes per model,
//! keyed `[key, value]` tuples, what `fail` and `info` mean). The search lives in `search.rs`, the
//! sequential specifications in `model.rs`.
//!
//! Semantics: `fail` operations did not happen and are dropped. `info` operations (and
//! invocations that never completed) stay open to the end of the history: they may take effect
//! at any point after their invocation, or never. A read whose result is unknown constrains
//! nothing and changes nothing, so it is dropped. Before the search, `reduce.rs` drops the
//! `info` operations nothing can observe and gives a deadline to those a completed operation
//! provably saw — rewrites that keep the verdict exact (the proofs are in that module).

pub mod gen;
mod model;
mod reduce;
mod search;

use crate::checker::{Budget, CheckError, Validity};
use crate::history::limits::quote_value as q;
use crate::history::{pair, Completed, HistoryError, Op, OpType};
use crate::named::by_name;
use model::{
    fifo_queue_step, set_step, Elements, Interner, KOp, Keyed, KvStr, KvString, LOp, Micro, Model,
    MultiRegister, Mutex, Register, Vid,
};
use rayon::prelude::*;
use reduce::Initial;
use search::{Outcome, SOp, Search};
use serde::Serialize;
use serde_json::Value;
use std::sync::atomic::AtomicUsize;

/// The sequential models that can be checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelKind {
    /// read / write of one value.
    Register,
    /// read / write / cas `[from, to]` of one value.
    CasRegister,
    /// `txn` of `["r", k, v]` / `["w", k, v]` micro-operations over several registers.
    MultiRegister,
    /// acquire / release.
    Mutex,
    /// add v / read → the whole set as an array.
    Set,
    /// enqueue v / dequeue → the oldest value, or null when empty.
    FifoQueue,
    /// get / put / append on string registers (initially `""`), always keyed `[key, v]`.
    Kv,
}

impl ModelKind {
    /// Every model, in the order of `--model`'s help.
    pub const ALL: [ModelKind; 7] = [
        ModelKind::Register,
        ModelKind::CasRegister,
        ModelKind::MultiRegister,
        ModelKind::Mutex,
        ModelKind::Set,
        ModelKind::FifoQueue,
        ModelKind::Kv,
    ];

    /// The `--model` name.
    pub fn name(self) -> &'static str {
        match self {
            ModelKind::Register => "register",
            ModelKind::CasRegister => "cas-register",
            ModelKind::MultiRegister => "multi-register",
            ModelKind::Mutex => "mutex",
            ModelKind::Set => "set",
            ModelKind::FifoQueue => "fifo-queue",
            ModelKind::Kv => "kv",
        }
    }
}

// Parsing: the model `--model` names, or an error listing the names.
crate::display_and_from_str!(ModelKind, ModelKind::name, |s| {
    by_name(&ModelKind::ALL, ModelKind::name, s).ok_or_else(|| {
        let names: Vec<_> = ModelKind::ALL.iter().map(|m| m.name()).collect();
        format!("unknown model '{s}' (expected one of {})", names.join(", "))
    })
});

/// Options for one check.
#[derive(Debug, Clone)]
pub struct LinOptions {
    /// The sequential specification the history is checked against.
    pub model: ModelKind,
    /// Initial state of the model (JSON; see [`check_initial`]); `Null` by default.
    pub initial: Value,
    /// Client op values are `[key, value]` tuples over independent keys (always so for `kv`).
    pub independent: bool,
    /// Check independent keys separately (P-compositionality); `false` for `--no-partition`.
    pub partition: bool,
    /// Time and memory limits; when exhausted the verdict is unknown, never true.
    pub budget: Budget,
}

impl LinOptions {
    /// Options with defaults: initial `null`, not keyed (except `kv`), partitioned, no limits.
    pub fn new(model: ModelKind) -> LinOptions {
        LinOptions {
            model,
            initial: Value::Null,
            independent: model == ModelKind::Kv,
            partition: true,
            budget: Budget::unlimited(),
        }
    }
}

/// An operation in evidence: where it is in the history and what it did.
#[derive(Debug, Clone, Serialize)]
pub struct OpView {
    /// Position (0-based event index) of the invocation.
    pub invoke: usize,
    /// Position of the completion, if any.
    pub complete: Option<usize>,
    /// The client process, as text.
    pub process: String,
    /// `ok` or `info` (never returned).
    #[serde(rename = "type")]
    pub kind: String,
    /// The operation's name (`read`, `write`, `cas`, …).
    pub f: String,
    /// The invocation's value (the request), without the key in keyed histories.
    pub value: Value,
    /// The completion's value (the response); `null` for an operation that never returned.
    pub output: Value,
}

/// One step of the longest linearization found: the operation and the state after it.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    /// The operation linearized at this step.
    pub op: OpView,
    /// The model state after it, as JSON.
    pub state: Value,
}

/// An operation that was open where the search got stuck, and whether the model would even
/// accept it in the state reached.
#[derive(Debug, Clone, Serialize)]
pub struct Candidate {
    /// The open operation.
    pub op: OpView,
    /// True if the model would accept this operation in the state reached (another order failed later), false if it contradicts that state outright.
    pub model_accepts: bool,
}

/// Why one partition (or the whole history) is not linearizable, or why the search stopped.
#[derive(Debug, Clone, Serialize)]
pub struct Evidence {
    /// The key of this partition (keyed histories).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<Value>,
    /// This partition's verdict.
    pub valid: Validity,
    /// Why the verdict is unknown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Operations of this partition checked.
    pub ops: usize,
    /// The model state the search started from.
    pub initial_state: Value,
    /// The longest linearizable prefix found, in order, with the model state after each step.
    pub linearized: Vec<Step>,
    /// The first operation that had to be linearized next (its completion came first) and could
    /// not be, whatever was tried.
    pub stuck: Option<OpView>,
    /// All operations still open at that point (could be linearized next by real time).
    pub open: Vec<Candidate>,
}

/// The verdict and its evidence.
#[derive(Debug, Clone, Serialize)]
pub struct LinResult {
    /// The verdict over all partitions: false if any is not linearizable, else unknown if any search stopped.
    pub valid: Validity,
    /// The model checked, as spelled on the command line (`register`, `cas-register`, …).
    pub model: String,
    /// Client operations searched (after dropping `fail`ed ops, unknown reads and `info`
    /// operations nothing could observe).
    pub checked_ops: usize,
    /// Operations dropped because they failed.
    pub failed_ops: usize,
    /// Operations that never returned (`info` / unmatched), optional in the search.
    pub info_ops: usize,
    /// `info` operations dropped before the search: no operation could observe their effect.
    pub info_dropped: usize,
    /// `info` operations some completed operation provably saw, searched with its return as
    /// their deadline.
    pub info_bounded: usize,
    /// Reads with unknown results, dropped (they constrain nothing).
    pub unknown_reads: usize,
    /// Number of independent keys (1 when not keyed).
    pub keys: usize,
    /// Whether keys were checked separately.
    pub partitioned: bool,
    /// Memoised configurations explored, summed over partitions.
    pub configurations: u64,
    /// Keys whose search was abandoned because another key was already found not
    /// linearizable (the verdict is false either way).
    pub keys_skipped: usize,
    /// Why the verdict is unknown, if it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unknown_reason: Option<String>,
    /// Evidence for each non-linearizable (or undecided) partition, in key order.
    pub failures: Vec<Evidence>,
}

/// Whether `initial` is a state `model` can start from (what `--initial` may say): for `mutex`
/// `null` or `false` (free) or `true` (held); for `multi-register` `null` (every register
/// `null`) or a map from register name to its initial value, as in Knossos (registers it does
/// not name start `null`); for `set` and `fifo-queue` `null` or an array; for `kv` `null` or a
/// string; for the registers any value.
pub fn check_initial(model: ModelKind, initial: &Value) -> Result<(), String> {
    let ok = match model {
        ModelKind::Register | ModelKind::CasRegister => true,
        ModelKind::Mutex => matches!(initial, Value::Null | Value::Bool(_)),
        ModelKind::MultiRegister => matches!(initial, Value::Null | Value::Object(_)),
        ModelKind::Set | ModelKind::FifoQueue => matches!(initial, Value::Null | Value::Array(_)),
        ModelKind::Kv => matches!(initial, Value::Null | Value::String(_)),
    };
    if ok {
        return Ok(());
    }
    let want = match model {
        ModelKind::Mutex => "false (free, the default) or true (held)",
        ModelKind::MultiRegister => {
            "a map from register to initial value, as in Knossos, e.g. {\"x\":0,\"y\":0}"
        }
        ModelKind::Set | ModelKind::FifoQueue => "an array",
        _ => "a string",
    };
    Err(format!(
        "the initial state of {model} must be {want}, got {}",
        q(initial)
    ))
}

/// Checks a history (client and nemesis events; nemesis events are ignored).
pub fn check(ops: &[Op], opts: &LinOptions) -> Result<LinResult, CheckError> {
    check_initial(opts.model, &opts.initial).map_err(|m| CheckError::new(0, m))?;
    let completed = pair(ops).map_err(|e| match e {
        HistoryError::Parse { line, msg } => CheckError::new(line.saturating_sub(1), msg),
        HistoryError::Io(e) => CheckError::new(0, e.to_string()),
    })?;
    let keyed = opts.independent || opts.model == ModelKind::Kv;
    let mut prep = Prep::new(opts)?;
    let mut sops = Vec::with_capacity(completed.len());
    let (mut failed, mut info, mut unknown_reads) = (0, 0, 0);
    for (ci, c) in completed.iter().enumerate() {
        if c.outcome == OpType::Fail {
            failed += 1;
            continue;
        }
        let (key, input, output) = if keyed {
            let (k, i, o) = split_keyed(c)?;
            (prep.keys.id(k), i, o)
        } else {
            (0, &c.input, &c.output)
        };
        let ok = c.outcome == OpType::Ok;
        let Some(lop) = prep.op(c, input, output, ok)? else {
            unknown_reads += 1;
            continue;
        };
        if !ok {
            info += 1;
        }
        sops.push(SOp {
            call: c.invoke,
            ret: if ok { c.complete } else { None },
            op: KOp { key, op: lop },
            hist: ci,
            bounded: false,
        });
    }
    // The model's initial state, first as tokens for the reductions.
    let init_value = prep.values.id(&opts.initial);
    let init_elements = match opts.model {
        ModelKind::Set => prep.initial_elements(&opts.initial, true)?,
        ModelKind::FifoQueue => prep.initial_elements(&opts.initial, false)?,
        _ => Box::default(),
    };
    // Multi-register: each register's own initial value, from a map naming registers by their
    // text (`1` and `"1"` alike: JSON object keys are strings); unnamed ones start null.
    let registers_init: Box<[Vid]> = (0..prep.mkeys.len() as Vid)
        .map(|k| {
            let v = match &opts.initial {
                Value::Object(m) => m
                    .get(&model::key_text(&prep.mkeys.value(k)))
                    .unwrap_or(&Value::Null),
                _ => &Value::Null,
            };
            prep.values.id(v)
        })
        .collect();
    let initial = match opts.model {
        ModelKind::Register | ModelKind::CasRegister => Initial::Value(init_value),
        ModelKind::MultiRegister => Initial::Registers(&registers_init),
        ModelKind::Set | ModelKind::FifoQueue => Initial::Elements(&init_elements),
        ModelKind::Mutex | ModelKind::Kv => Initial::None,
    };
    let reduced = reduce::reduce(opts.model, initial, &mut sops);

    let nkeys = if keyed { prep.keys.len().max(1) } else { 1 };
    let key_values: Vec<Value> = (0..prep.keys.len() as Vid)
        .map(|k| prep.keys.value(k))
        .collect();
    let ctx = Ctx {
        completed: &completed,
        keyed,
        partition: opts.partition,
        nkeys,
        keys: &key_values,
        budget: &opts.budget,
    };
    let run = match opts.model {
        ModelKind::Register | ModelKind::CasRegister => ctx.run(
            &Register {
                init: init_value,
                values: &prep.values,
            },
            &sops,
        ),
        ModelKind::MultiRegister => ctx.run(
            &MultiRegister {
                init: registers_init.clone(),
                values: &prep.values,
                keys: &prep.mkeys,
            },
            &sops,
        ),
        ModelKind::Mutex => ctx.run(
            &Mutex {
                init: opts.initial == Value::Bool(true),
            },
            &sops,
        ),
        ModelKind::Set | ModelKind::FifoQueue => ctx.run(
            &Elements {
                init: init_elements,
                values: &prep.values,
                step: if opts.model == ModelKind::Set {
                    set_step
                } else {
                    fifo_queue_step
                },
            },
            &sops,
        ),
        ModelKind::Kv => {
            let init = match &opts.initial {
                Value::Null => KvStr::new(""),
                Value::String(s) => KvStr::new(s),
                other => {
                    return Err(CheckError::new(
                        0,
                        format!("kv initial value must be a string, got {}", q(other)),
                    ))
                }
            };
            ctx.run(&KvString { init }, &sops)
        }
    };
    let unknown_reason = run
        .failures
        .iter()
        .find_map(|e| e.reason.clone())
        .filter(|_| run.valid == Validity::Unknown);
    Ok(LinResult {
        valid: run.valid,
        model: opts.model.name().to_string(),
        checked_ops: sops.len(),
        failed_ops: failed,
        info_ops: info,
        info_dropped: reduced.dropped,
        info_bounded: reduced.bounded,
        unknown_reads,
        keys: nkeys,
        partitioned: keyed && opts.partition,
        configurations: run.configurations,
        keys_skipped: run.skipped,
        unknown_reason,
        failures: run.failures,
    })
}

/// Splits a keyed op's `[key, value]` tuples.
fn split_keyed(c: &Completed) -> Result<(&Value, &Value, &Value), CheckError> {
    let Some([key, input]) = c.input.as_array().map(Vec::as_slice) else {
        return Err(CheckError::new(
            c.invoke,
            format!(
                "keyed operation value must be a [key, value] tuple, got {}",
                q(&c.input)
            ),
        ));
    };
    let output = match c.output.as_array().map(Vec::as_slice) {
        Some([_, v]) => v,
        _ if c.outcome != OpType::Ok => &Value::Null,
        _ => {
            return Err(CheckError::new(
                c.complete.unwrap_or(c.invoke),
                format!(
                    "keyed completion value must be a [key, value] tuple, got {}",
                    q(&c.output)
                ),
            ))
        }
    };
    Ok((key, input, output))
}

/// Translation of paired operations into model operations, with the interners it fills.
struct Prep {
    model: ModelKind,
    values: Interner,
    keys: Interner,
    /// Register names of multi-register transactions.
    mkeys: Interner,
}

impl Prep {
    fn new(opts: &LinOptions) -> Result<Prep, CheckError> {
        let mut p = Prep {
            model: opts.model,
            values: Interner::default(),
            keys: Interner::default(),
            mkeys: Interner::default(),
        };
        p.values.id(&opts.initial);
        Ok(p)
    }

    fn initial_elements(&mut self, initial: &Value, sort: bool) -> Result<Box<[Vid]>, CheckError> {
        let mut v: Vec<Vid> = match initial {
            Value::Null => Vec::new(),
            Value::Array(a) => a.iter().map(|x| self.values.id(x)).collect(),
            other => {
                return Err(CheckError::new(
                    0,
                    format!(
                        "{} initial value must be an array, got {}",
                        self.model,
                        q(other)
                    ),
                ))
            }
        };
        if sort {
            v.sort_unstable();
            v.dedup();
        }
        Ok(v.into_boxed_slice())
    }

    /// The model operation for `c`; `None` for a read whose result is unknown.
    fn op(
        &mut self,
        c: &Completed,
        input: &Value,
        output: &Value,
        ok: bool,
    ) -> Result<Option<LOp>, CheckError> {
        let bad = |msg: String| CheckError::new(c.complete.filter(|_| ok).unwrap_or(c.invoke), msg);
        let model = self.model;
        let unsupported = || {
            CheckError::new(
                c.invoke,
                format!(
                    "model {model} has no operation '{}'",
                    crate::history::limits::quote(&c.f)
                ),
            )
        };
        let op = match (model, c.f.as_str()) {
            (ModelKind::Register | ModelKind::CasRegister, "read") => {
                if !ok {
                    return Ok(None);
                }
                LOp::Read(self.values.id(output))
            }
            (ModelKind::Register | ModelKind::CasRegister, "write") => {
                LOp::Write(self.values.id(input))
            }
            (ModelKind::CasRegister, "cas") => match input.as_array().map(Vec::as_slice) {
                Some([from, to]) => LOp::Cas(self.values.id(from), self.values.id(to)),
                _ => {
                    return Err(bad(format!(
                        "cas value must be [from, to], got {}",
                        q(input)
                    )))
                }
            },
            (ModelKind::Register, "cas") => {
                return Err(CheckError::new(
                    c.invoke,
                    "model register has no cas; use --model cas-register",
                ))
            }
            (ModelKind::MultiRegister, "txn") => {
                // The completion carries the values read; an open txn only its writes.
                let txn = match output {
                    Value::Array(_) if ok => output,
                    _ => input,
                };
                let Some(items) = txn.as_array() else {
                    return Err(bad(format!("txn value must be an array, got {}", q(txn))));
                };
                let mut micros = Vec::with_capacity(items.len());
                for m in items {
                    let (f, k, v) = match m.as_array().map(Vec::as_slice) {
                        Some([Value::String(f), k, v]) => (f.as_str(), k, v),
                        _ => {
                            return Err(bad(format!(
                                "txn micro-op must be [\"r\"|\"w\", key, value], got {}",
                                q(m)
                            )))
                        }
                    };
                    let write = match f {
                        "w" | "write" => true,
                        "r" | "read" => false,
                        _ => {
                            return Err(bad(format!(
                                "txn micro-op must be \"r\" or \"w\", got \"{}\"",
                                crate::history::limits::quote(f)
                            )))
                        }
                    };
                    if !write && !ok {
                        continue;
                    }
                    micros.push(Micro {
                        write,
                        key: self.mkeys.id(k),
                        val: self.values.id(v),
                    });
                }
                if micros.is_empty() && !ok {
                    return Ok(None);
                }
                LOp::Txn(micros.into_boxed_slice())
            }
            (ModelKind::Mutex, "acquire") => LOp::Acquire,
            (ModelKind::Mutex, "release") => LOp::Release,
            (ModelKind::Set, "add") => LOp::Add(self.values.id(input)),
            (ModelKind::Set, "read") => {
                if !ok {
                    return Ok(None);
                }
                let Some(items) = output.as_array() else {
                    return Err(bad(format!(
                        "set read must return an array, got {}",
                        q(output)
                    )));
                };
                let mut vs: Vec<Vid> = items.iter().map(|x| self.values.id(x)).collect();
                vs.sort_unstable();
                LOp::SetRead(vs.into_boxed_slice())
            }
            (ModelKind::FifoQueue, "enqueue") => LOp::Enqueue(self.values.id(input)),
            (ModelKind::FifoQueue, "dequeue") => LOp::Dequeue(if !ok {
                None
            } else if output.is_null() {
                Some(None)
            } else {
                Some(Some(self.values.id(output)))
            }),
            (ModelKind::Kv, "get") => {
                if !ok {
                    return Ok(None);
                }
                LOp::Get(kv_string(output).map_err(|m| bad(format!("get result {m}")))?)
            }
            (ModelKind::Kv, "put") => {
                LOp::Put(kv_string(input).map_err(|m| bad(format!("put value {m}")))?)
            }
            (ModelKind::Kv, "append") => {
                LOp::Append(kv_string(input).map_err(|m| bad(format!("append value {m}")))?)
            }
            _ => return Err(unsupported()),
        };
        Ok(Some(op))
    }
}

/// A kv value: a string; `null` reads as the empty string (an absent key).
fn kv_string(v: &Value) -> Result<KvStr, String> {
    match v {
        Value::String(s) => Ok(KvStr::new(s)),
        Value::Null => Ok(KvStr::new("")),
        other => Err(format!("must be a string, got {}", q(other))),
    }
}

/// What a run over all partitions produced.
struct Run {
    valid: Validity,
    configurations: u64,
    failures: Vec<Evidence>,
    /// Partitions abandoned once another was found not linearizable.
    skipped: usize,
}

/// Everything a run needs besides the model and the operations.
struct Ctx<'a> {
    completed: &'a [Completed],
    keyed: bool,
    partition: bool,
    nkeys: usize,
    keys: &'a [Value],
    budget: &'a Budget,
}

impl Ctx<'_> {
    fn run<M: Model>(&self, model: &M, sops: &[SOp]) -> Run {
        let memory = AtomicUsize::new(0);
        if self.keyed && self.partition {
            let mut groups: Vec<Vec<SOp>> = vec![Vec::new(); self.nkeys];
            for s in sops {
                groups[s.op.key as usize].push(s.clone());
            }
            // Every partition advances a slice of steps per round (slices double each round),
            // so a partition that is quickly refuted is not stuck behind a hard one; the
            // first refutation ends the check, as in Porcupine.
            let mut live: Vec<(usize, Search<M>)> = (0..groups.len())
                .map(|k| (k, Search::new(model, &groups[k])))
                .collect();
            let mut finished: Vec<(usize, Outcome, u64)> = Vec::new();
            let mut skipped = 0;
            let mut skipped_configurations = 0;
            let mut slice: u64 = 1 << 14;
            while !live.is_empty() {
                let results: Vec<Option<Outcome>> = live
                    .par_iter_mut()
                    .map(|(_, s)| s.advance(self.budget, &memory, slice))
                    .collect();
                let mut still = Vec::with_capacity(live.len());
                for ((k, s), r) in live.into_iter().zip(results) {
                    match r {
                        Some(o) => finished.push((k, o, s.stats().configurations)),
                        None => still.push((k, s)),
                    }
                }
                live = still;
                if finished
                    .iter()
                    .any(|f| matches!(f.1, Outcome::Invalid { .. }))
                {
                    skipped = live.len();
                    for (_, s) in live.iter_mut() {
                        skipped_configurations += s.stats().configurations;
                        s.abandon(&memory);
                    }
                    break;
                }
                slice = slice.saturating_mul(2);
            }
            finished.sort_by_key(|f| f.0);
            let mut configurations = skipped_configurations;
            let mut valid = Validity::True;
            let mut failures = Vec::new();
            for (k, outcome, conf) in finished {
                configurations += conf;
                let (v, ev) = self.evidence(model, &groups[k], outcome, Some(k));
                valid = valid.merge(v);
                failures.extend(ev);
            }
            Run {
                valid,
                configurations,
                failures,
                skipped,
            }
        } else if self.keyed {
            let km = Keyed {
                inner: model,
                nkeys: self.nkeys,
                keys: self.keys,
            };
            let (outcome, stats) = search::search(&km, sops, self.budget, &memory);
            let (valid, ev) = self.evidence(&km, sops, outcome, None);
            Run {
                valid,
                configurations: stats.configurations,
                failures: ev.into_iter().collect(),
                skipped: 0,
            }
        } else {
            let (outcome, stats) = search::search(model, sops, self.budget, &memory);
            let (valid, ev) = self.evidence(model, sops, outcome, None);
            Run {
                valid,
                configurations: stats.configurations,
                failures: ev.into_iter().collect(),
                skipped: 0,
            }
        }
    }

    fn view(&self, s: &SOp) -> OpView {
        let c = &self.completed[s.hist];
        let strip = |v: &Value| -> Value {
            if self.keyed {
                match v.as_array().map(Vec::as_slice) {
                    Some([_, x]) => x.clone(),
                    _ => v.clone(),
                }
            } else {
                v.clone()
            }
        };
        let keyed_whole = self.keyed && !self.partition;
        OpView {
            invoke: c.invoke,
            complete: c.complete,
            process: c.process.to_string(),
            kind: c.outcome.to_string(),
            f: c.f.clone(),
            value: if keyed_whole {
                c.input.clone()
            } else {
                strip(&c.input)
            },
            output: if keyed_whole {
                c.output.clone()
            } else {
                strip(&c.output)
            },
        }
    }

    /// Replays the deepest prefix to explain a non-`Valid` outcome.
    fn evidence<M: Model>(
        &self,
        model: &M,
        ops: &[SOp],
        outcome: Outcome,
        key: Option<usize>,
    ) -> (Validity, Option<Evidence>) {
        let (valid, reason, prefix) = match outcome {
            Outcome::Valid => return (Validity::True, None),
            Outcome::Invalid { prefix } => (Validity::False, None, prefix),
            Outcome::Unknown { reason, prefix } => (Validity::Unknown, Some(reason), prefix),
        };
        let mut state = model.init();
        let initial_state = model.state_json(&state);
        let mut done = vec![false; ops.len()];
        let mut linearized = Vec::with_capacity(prefix.len());
        for &i in &prefix {
            let s = &ops[i as usize];
            // Every step of the prefix was accepted during the search.
            if let Some(n) = model.step(&state, &s.op) {
                state = n;
            }
            done[i as usize] = true;
            linearized.push(Step {
                op: self.view(s),
                state: model.state_json(&state),
            });
        }
        // The first deadline missed; among operations with the same one, a completion before
        // a deadline inferred from it (so the operation named is one that returned).
        let deadline = ops
            .iter()
            .enumerate()
            .filter(|(i, _)| !done[*i])
            .filter_map(|(i, s)| s.ret.map(|r| (r, s.bounded, i)))
            .min();
        let stuck = deadline.map(|(_, _, i)| self.view(&ops[i]));
        let mut open: Vec<(usize, Candidate)> = ops
            .iter()
            .enumerate()
            .filter(|(i, s)| !done[*i] && deadline.is_none_or(|(r, _, _)| s.call < r))
            .map(|(_, s)| {
                (
                    s.call,
                    Candidate {
                        op: self.view(s),
                        model_accepts: model.step(&state, &s.op).is_some(),
                    },
                )
            })
            .collect();
        open.sort_by_key(|o| o.0);
        (
            valid,
            Some(Evidence {
                key: key.map(|k| self.keys.get(k).cloned().unwrap_or(Value::Null)),
                valid,
                reason,
                ops: ops.len(),
                initial_state,
                linearized,
                stuck,
                open: open.into_iter().map(|o| o.1).collect(),
            }),
        )
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_initial;

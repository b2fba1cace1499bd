//! Workloads written in YAML: a plan's `workload:` section with `ops:` defines a workload without
//! Rust (docs/plan-format.md, "Workloads in YAML").
//!
//! ```yaml
//! workload:
//!   name: my-queue                # any name: a section with `ops` is a YAML workload
//!   ops:                          # the main phase: a weighted mix
//!     - {f: enqueue, value: unique, weight: 2}
//!     - {f: dequeue, weight: 1}
//!   final: [{f: drain}]           # after healing, once per worker
//!   checker: total-queue
//! ```
//!
//! This module owns that section's schema and meaning: the value kinds ([`Kind`]: `null`,
//! `unique`, `int: [lo, hi]`, `choice: [a, b, …]`, `keyed: {keys: N, value: <kind>}`, and
//! `txn: {…}` / `transfer: {…}` for the transactional and bank checkers), the checkers by name
//! with their options ([`CheckerSpec`]), and the generators they make. A keyed workload (every
//! main-phase op `keyed` over the same keys) sends `[k, v]` values, runs each final op once per
//! key, and is checked key by key (`checker::independent`, or the linearizability checker's
//! own keyed mode). The vocabulary is the workload's name unless `vocabulary:` says otherwise
//! (`vocabulary: register` lets a YAML workload run against the built-in targets that speak it).
//!
//! The section is recorded whole in the run's `plan.yaml` (defaults filled in), so `netsplit
//! analyze` re-checks a stored run of a YAML workload like any other.

use super::list_append::{TxnValues, TxnWorkloadOptions};
use super::{Checked, Instance, Workload, WorkloadArgs, WorkloadDef};
use crate::checker::bank::{self, BankOptions};
use crate::checker::linear::{self, LinOptions, ModelKind};
use crate::checker::queue;
use crate::checker::set::{self, SetOptions};
use crate::checker::txn::{self, TxnOptions, TxnWorkload};
use crate::checker::unique_ids::{self, UniqueIdsOptions};
use crate::checker::{counter, independent, Budget, CheckError};
use crate::error::bad_input;
use crate::generator::{self as g, BoxGen, Ctx, Rng};
use crate::history::Op;
use crate::opts::Origins;
use anyhow::Result;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Whether a workload section is written in YAML (it has `ops`), whatever its name.
pub fn is_yaml(opts: &BTreeMap<String, Value>) -> bool {
    opts.contains_key("ops")
}

/// The definition of a YAML workload called `name` (what the registry builds a section with
/// `ops` from).
pub fn def(name: &str) -> WorkloadDef {
    let n = name.to_string();
    WorkloadDef::new(
        name,
        "a workload written in YAML (the plan's ops, final and checker)",
        name,
        move |a: &WorkloadArgs| build(&n, a),
    )
}

/// The section as written (defaults filled in when serialised back).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    /// The vocabulary its clients speak (default: the workload's name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    vocabulary: Option<String>,
    ops: Vec<RawOp>,
    #[serde(default, rename = "final")]
    finals: Vec<RawFinal>,
    checker: Value,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOp {
    f: String,
    #[serde(default)]
    value: Value,
    #[serde(default = "one")]
    weight: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFinal {
    f: String,
    #[serde(default)]
    value: Value,
}

fn one() -> f64 {
    1.0
}

/// A value kind: how an op's values are made.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    /// Always `null`.
    Null,
    /// 1, 2, 3, … across the run (one counter for every op of the workload).
    Unique,
    /// A uniform integer in `lo..=hi`.
    Int(i64, i64),
    /// One of these, uniformly.
    Choice(Vec<Value>),
    /// `[k, v]` with `k` uniform in `0..keys` and `v` of the inner kind.
    Keyed(u64, Box<Kind>),
    /// Elle's transactions (`list_append::TxnValues`), writes with this micro-op name.
    Txn(TxnWorkloadOptions, &'static str),
    /// A bank transfer `{"from", "to", "amount"}` between two of `accounts` accounts.
    Transfer {
        /// Number of accounts, `0..accounts` (at least 2).
        accounts: u64,
        /// Largest amount; amounts are uniform in `1..=max_amount`.
        max_amount: i64,
    },
}

impl Kind {
    fn keys(&self) -> Option<u64> {
        match self {
            Kind::Keyed(n, _) => Some(*n),
            _ => None,
        }
    }
    fn unkeyed(&self) -> &Kind {
        match self {
            Kind::Keyed(_, k) => k,
            k => k,
        }
    }
}

/// A stateful maker of one op's values.
enum Values {
    Null,
    Unique(Arc<AtomicU64>),
    Int(i64, i64),
    Choice(Vec<Value>),
    Keyed(u64, Box<Values>),
    Txn(Box<TxnValues>),
    Transfer(u64, i64),
}

impl Values {
    fn new(k: &Kind, unique: &Arc<AtomicU64>) -> Values {
        match k {
            Kind::Null => Values::Null,
            Kind::Unique => Values::Unique(unique.clone()),
            Kind::Int(lo, hi) => Values::Int(*lo, *hi),
            Kind::Choice(c) => Values::Choice(c.clone()),
            Kind::Keyed(n, inner) => Values::Keyed(*n, Box::new(Values::new(inner, unique))),
            Kind::Txn(o, w) => Values::Txn(Box::new(TxnValues::new(o, w))),
            Kind::Transfer {
                accounts,
                max_amount,
            } => Values::Transfer(*accounts, *max_amount),
        }
    }

    fn next(&mut self, rng: &mut Rng) -> Value {
        match self {
            Values::Null => Value::Null,
            Values::Unique(c) => json!(c.fetch_add(1, Ordering::Relaxed)),
            Values::Int(lo, hi) => json!(rng.range_inclusive(*lo, *hi)),
            Values::Choice(c) => c[rng.index(c.len())].clone(),
            Values::Keyed(n, inner) => {
                let k = rng.below(*n);
                json!([k, inner.next(rng)])
            }
            Values::Txn(t) => t.next(rng),
            Values::Transfer(n, max) => {
                let from = rng.below(*n);
                let mut to = rng.below(*n - 1);
                if to >= from {
                    to += 1;
                }
                json!({"from": from, "to": to, "amount": rng.range_inclusive(1, *max)})
            }
        }
    }
}

/// A checker by name, with its options.
#[derive(Debug, Clone)]
pub enum CheckerSpec {
    /// `linearizable`: the history against a sequential model.
    Linearizable {
        /// The model (register, cas-register, …).
        model: ModelKind,
        /// The model's initial value.
        initial: Value,
    },
    /// `transactional`: Elle's checker for this transaction workload, against these
    /// consistency models.
    Transactional(TxnWorkload, Vec<String>),
    /// `set`: every acknowledged add is read; `true` also counts stale reads as invalid.
    Set(bool),
    /// `counter`: every read lies between the acknowledged and the attempted increments.
    Counter,
    /// `bank`: every read of all balances sums to the total, names exactly the accounts and
    /// (unless allowed) holds no negative balance.
    Bank(BankOptions),
    /// `total-queue`: what goes into the queue must come out, exactly once.
    TotalQueue,
    /// `unique-ids`: no two acknowledged operations returned the same id.
    UniqueIds(UniqueIdsOptions),
}

/// The checkers' names, as plans write them.
pub const CHECKERS: &[&str] = &[
    "linearizable",
    "transactional",
    "set",
    "counter",
    "bank",
    "total-queue",
    "unique-ids",
];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LinOpts {
    model: String,
    #[serde(default)]
    initial: Value,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TxnOpts {
    workload: String,
    #[serde(default = "strict_serializable")]
    consistency_models: Vec<String>,
}

fn strict_serializable() -> Vec<String> {
    vec!["strict-serializable".into()]
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct SetOpts {
    linearizable: bool,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct NoOpts {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct BankOpts {
    accounts: u64,
    total: i64,
    allow_negative: bool,
}

impl Default for BankOpts {
    fn default() -> Self {
        BankOpts {
            accounts: 5,
            total: 100,
            allow_negative: false,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct IdsOpts {
    f: String,
}

impl Default for IdsOpts {
    fn default() -> Self {
        IdsOpts {
            f: "generate".into(),
        }
    }
}

/// One main-phase op: its name, weight and kind.
#[derive(Debug, Clone)]
struct OpSpec {
    f: String,
    weight: f64,
    kind: Kind,
}

/// A workload written in YAML (see the module docs).
pub struct YamlWorkload {
    ops: Vec<OpSpec>,
    finals: Vec<(String, Kind)>,
    checkers: Vec<(String, CheckerSpec)>,
    /// Keys of a keyed workload.
    keys: Option<u64>,
    /// The next `unique` value (shared by every op, across both phases).
    unique: Arc<AtomicU64>,
}

/// `path: why` as bad input, with the file and line `path` (or its nearest parent) came from.
fn at(origins: &Origins, path: &str, why: impl std::fmt::Display) -> anyhow::Error {
    match origins.get(path) {
        Some(o) => bad_input(format!("{o}: {path}: {why}")),
        None => bad_input(format!("{path}: {why}")),
    }
}

/// The most final operations one worker of a keyed workload may run (its final ops times the
/// keys): the final phase is not rate-limited, and every operation stays in the history.
pub const MAX_FINAL_OPS_PER_WORKER: u64 = 10_000;

/// Parses a value kind written at `path`.
pub fn parse_kind(v: &Value) -> std::result::Result<Kind, String> {
    const KINDS: &str = "null, unique, {int: [lo, hi]}, {choice: [a, b, …]}, \
                         {keyed: {keys: N, value: <kind>}}, {txn: {…}}, {transfer: {…}}";
    let kind = match v {
        Value::Null => Kind::Null,
        Value::String(s) if s == "null" => Kind::Null,
        Value::String(s) if s == "unique" => Kind::Unique,
        Value::Object(m) if m.len() == 1 => {
            let (name, arg) = m.iter().next().expect("one entry");
            match name.as_str() {
                "int" => {
                    let r = arg.as_array().map(Vec::as_slice);
                    let Some([lo, hi]) = r else {
                        return Err(format!("int takes [lo, hi], got {arg}"));
                    };
                    let (Some(lo), Some(hi)) = (lo.as_i64(), hi.as_i64()) else {
                        return Err(format!("int takes two integers, got {arg}"));
                    };
                    if lo > hi {
                        return Err(format!("int: lo {lo} is above hi {hi}"));
                    }
                    Kind::Int(lo, hi)
                }
                "choice" => match arg.as_array() {
                    Some(a) if !a.is_empty() => Kind::Choice(a.clone()),
                    _ => return Err(format!("choice takes a non-empty list, got {arg}")),
                },
                "keyed" => {
                    let Some(o) = arg.as_object() else {
                        return Err(format!("keyed takes {{keys: N, value: <kind>}}, got {arg}"));
                    };
                    if let Some(k) = o.keys().find(|k| *k != "keys" && *k != "value") {
                        return Err(format!("keyed: unknown key {k:?} (expected keys, value)"));
                    }
                    let keys = match o.get("keys").and_then(Value::as_u64) {
                        Some(n) if (1..=1_000_000).contains(&n) => n,
                        _ => {
                            return Err(format!(
                                "keyed.keys must be a number of keys from 1 to 1000000, got {}",
                                o.get("keys").unwrap_or(&Value::Null)
                            ))
                        }
                    };
                    let inner = parse_kind(o.get("value").unwrap_or(&Value::Null))
                        .map_err(|e| format!("keyed.value: {e}"))?;
                    if matches!(inner, Kind::Keyed(..)) {
                        return Err("keyed values cannot be keyed again".into());
                    }
                    Kind::Keyed(keys, Box::new(inner))
                }
                "txn" => {
                    #[derive(Deserialize)]
                    #[serde(deny_unknown_fields, default)]
                    struct T {
                        keys: u64,
                        max_txn_len: usize,
                        max_writes_per_key: u64,
                        write: String,
                    }
                    impl Default for T {
                        fn default() -> T {
                            let d = TxnWorkloadOptions::default();
                            T {
                                keys: d.keys,
                                max_txn_len: d.max_txn_len,
                                max_writes_per_key: d.max_writes_per_key,
                                write: "append".into(),
                            }
                        }
                    }
                    let arg = if arg.is_null() {
                        json!({})
                    } else {
                        arg.clone()
                    };
                    let t: T = serde_json::from_value(arg).map_err(|e| format!("txn: {e}"))?;
                    let write = match t.write.as_str() {
                        "append" => "append",
                        "w" => "w",
                        w => return Err(format!("txn.write must be append or w, got {w:?}")),
                    };
                    let o = TxnWorkloadOptions {
                        keys: t.keys,
                        max_txn_len: t.max_txn_len,
                        max_writes_per_key: t.max_writes_per_key,
                        consistency_models: strict_serializable(),
                    };
                    o.validate().map_err(|e| format!("txn.{e}"))?;
                    Kind::Txn(o, write)
                }
                "transfer" => {
                    #[derive(Deserialize)]
                    #[serde(deny_unknown_fields, default)]
                    struct T {
                        accounts: u64,
                        max_amount: i64,
                    }
                    impl Default for T {
                        fn default() -> T {
                            T {
                                accounts: 5,
                                max_amount: 5,
                            }
                        }
                    }
                    let arg = if arg.is_null() {
                        json!({})
                    } else {
                        arg.clone()
                    };
                    let t: T = serde_json::from_value(arg).map_err(|e| format!("transfer: {e}"))?;
                    super::check_range("transfer.accounts", t.accounts, 2, 10_000)?;
                    super::check_range("transfer.max_amount", t.max_amount, 1, i64::MAX / 4)?;
                    Kind::Transfer {
                        accounts: t.accounts,
                        max_amount: t.max_amount,
                    }
                }
                other => return Err(format!("unknown value kind {other:?} (expected {KINDS})")),
            }
        }
        other => return Err(format!("unknown value kind {other} (expected {KINDS})")),
    };
    Ok(kind)
}

/// Parses the `checker:` entry: a name, a map of names to options, or a list of either.
fn parse_checkers(v: &Value, origins: &Origins) -> Result<Vec<(String, CheckerSpec)>> {
    let mut entries: Vec<(String, Value)> = Vec::new();
    let mut add = |v: &Value| -> Result<()> {
        match v {
            Value::String(s) => entries.push((s.clone(), Value::Null)),
            Value::Object(m) => {
                entries.extend(m.iter().map(|(k, o)| (k.clone(), o.clone())));
            }
            other => {
                return Err(at(
                    origins,
                    "workload.checker",
                    format!("expected a checker's name or a map of names to options, got {other}"),
                ))
            }
        }
        Ok(())
    };
    match v {
        Value::Array(a) => a.iter().try_for_each(&mut add)?,
        Value::Null => {}
        other => add(other)?,
    }
    if entries.is_empty() {
        return Err(at(
            origins,
            "workload.checker",
            format!("name at least one checker ({})", CHECKERS.join(", ")),
        ));
    }
    let mut out: Vec<(String, CheckerSpec)> = Vec::new();
    for (name, o) in entries {
        let path = format!("workload.checker.{name}");
        let o = if o.is_null() { json!({}) } else { o };
        let opts = |o: &Value| -> BTreeMap<String, Value> {
            o.as_object()
                .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                .unwrap_or_default()
        };
        if !o.is_object() {
            return Err(at(
                origins,
                &path,
                format!("options must be a map, got {o}"),
            ));
        }
        let m = opts(&o);
        let spec = match name.as_str() {
            "linearizable" => {
                let l: LinOpts = crate::opts::from_map(&m, &path, origins)?;
                let model: ModelKind = l.model.parse().map_err(|e| at(origins, &path, e))?;
                linear::check_initial(model, &l.initial)
                    .map_err(|e| at(origins, &format!("{path}.initial"), e))?;
                CheckerSpec::Linearizable {
                    model,
                    initial: l.initial,
                }
            }
            "transactional" => {
                let t: TxnOpts = crate::opts::from_map(&m, &path, origins)?;
                let w: TxnWorkload = t
                    .workload
                    .parse()
                    .map_err(|e| at(origins, &format!("{path}.workload"), e))?;
                txn::validate_models(&t.consistency_models)
                    .map_err(|e| at(origins, &format!("{path}.consistency_models"), e))?;
                CheckerSpec::Transactional(w, t.consistency_models)
            }
            "set" => {
                let s: SetOpts = crate::opts::from_map(&m, &path, origins)?;
                CheckerSpec::Set(s.linearizable)
            }
            "counter" => {
                let _: NoOpts = crate::opts::from_map(&m, &path, origins)?;
                CheckerSpec::Counter
            }
            "bank" => {
                let b: BankOpts = crate::opts::from_map(&m, &path, origins)?;
                super::check_range("accounts", b.accounts, 2, 10_000)
                    .and_then(|_| super::check_range("total", b.total, 0, i64::MAX / 4))
                    .map_err(|e| at(origins, &path, e))?;
                CheckerSpec::Bank(BankOptions {
                    accounts: b.accounts,
                    total: b.total,
                    allow_negative: b.allow_negative,
                })
            }
            "total-queue" => {
                let _: NoOpts = crate::opts::from_map(&m, &path, origins)?;
                CheckerSpec::TotalQueue
            }
            "unique-ids" => {
                let i: IdsOpts = crate::opts::from_map(&m, &path, origins)?;
                CheckerSpec::UniqueIds(UniqueIdsOptions { f: i.f })
            }
            other => {
                return Err(at(
                    origins,
                    "workload.checker",
                    format!("unknown checker {other:?} (known: {})", CHECKERS.join(", ")),
                ))
            }
        };
        let result_name = result_name(&spec).to_string();
        if out.iter().any(|(n, _)| *n == result_name) {
            return Err(at(origins, &path, "named twice"));
        }
        out.push((result_name, spec));
    }
    Ok(out)
}

/// The name a checker's result has in `results.json`.
fn result_name(spec: &CheckerSpec) -> &'static str {
    match spec {
        CheckerSpec::Linearizable { .. } => "linear",
        CheckerSpec::Transactional(..) => "txn",
        CheckerSpec::Set(_) => "set",
        CheckerSpec::Counter => "counter",
        CheckerSpec::Bank(_) => "bank",
        CheckerSpec::TotalQueue => "total-queue",
        CheckerSpec::UniqueIds(_) => "unique-ids",
    }
}

fn build(name: &str, a: &WorkloadArgs) -> Result<Instance> {
    let origins = a.origins;
    let raw: Raw = crate::opts::from_map(a.opts, "workload", origins)?;
    if raw.ops.is_empty() {
        return Err(at(origins, "workload.ops", "name at least one operation"));
    }
    let mut ops = Vec::new();
    for (i, o) in raw.ops.iter().enumerate() {
        let path = format!("workload.ops[{i}]");
        let bad = |why: String| at(origins, "workload.ops", format!("{path}: {why}"));
        if o.f.trim().is_empty() {
            return Err(bad("f: name the operation".into()));
        }
        if !o.weight.is_finite() || o.weight < 0.0 {
            return Err(bad(format!(
                "weight: must be a non-negative number, got {}",
                o.weight
            )));
        }
        let kind = parse_kind(&o.value).map_err(|e| bad(format!("value: {e}")))?;
        ops.push(OpSpec {
            f: o.f.clone(),
            weight: o.weight,
            kind,
        });
    }
    if ops.iter().map(|o| o.weight).sum::<f64>() <= 0.0 {
        return Err(at(
            origins,
            "workload.ops",
            "the weights must not all be zero",
        ));
    }
    let keys = ops[0].kind.keys();
    if let Some(o) = ops.iter().find(|o| o.kind.keys() != keys) {
        return Err(at(
            origins,
            "workload.ops",
            format!(
                "op {:?}: in a keyed workload every op is keyed over the same number of keys \
                 (value: {{keyed: {{keys: N, value: …}}}})",
                o.f
            ),
        ));
    }
    let mut finals = Vec::new();
    for (i, o) in raw.finals.iter().enumerate() {
        let bad = |why: String| at(origins, "workload.final", format!("final[{i}]: {why}"));
        if o.f.trim().is_empty() {
            return Err(bad("f: name the operation".into()));
        }
        let kind = parse_kind(&o.value).map_err(|e| bad(format!("value: {e}")))?;
        match (kind.keys(), keys) {
            (Some(n), Some(k)) if n != k => {
                return Err(bad(format!("keyed over {n} keys, the ops over {k}")))
            }
            (Some(_), None) => return Err(bad("keyed, but the main-phase ops are not".into())),
            _ => {}
        }
        finals.push((o.f.clone(), kind.unkeyed().clone()));
    }
    // Each worker runs every final op once per key, unthrottled and held in the history: a
    // million keys would be millions of operations in memory after the faults are healed.
    if let Some(k) = keys {
        let per_worker = k.saturating_mul(finals.len() as u64);
        if per_worker > MAX_FINAL_OPS_PER_WORKER {
            return Err(at(
                origins,
                "workload.final",
                format!(
                    "{} final op(s) once per key over {k} keys is {per_worker} final operations \
                     per worker; at most {MAX_FINAL_OPS_PER_WORKER} (use fewer keys, or no \
                     final ops)",
                    finals.len()
                ),
            ));
        }
    }
    let checkers = parse_checkers(&raw.checker, origins)?;
    for (_, c) in &checkers {
        if keys.is_some() && matches!(c, CheckerSpec::Bank(_) | CheckerSpec::Transactional(..)) {
            return Err(at(
                origins,
                "workload.checker",
                format!("{} does not check keyed values", result_name(c)),
            ));
        }
    }
    let bank = checkers.iter().find_map(|(_, c)| match c {
        CheckerSpec::Bank(b) => Some(b.clone()),
        _ => None,
    });
    if let Some(b) = &bank {
        for o in &ops {
            if let Kind::Transfer { accounts, .. } = o.kind.unkeyed() {
                if *accounts != b.accounts {
                    return Err(at(
                        origins,
                        "workload.ops",
                        format!(
                            "op {:?}: transfers between {accounts} accounts, the bank checker \
                             counts {}",
                            o.f, b.accounts
                        ),
                    ));
                }
            }
        }
    }
    let vocabulary = raw.vocabulary.clone().unwrap_or_else(|| name.to_string());
    if vocabulary.trim().is_empty() {
        return Err(at(origins, "workload.vocabulary", "must not be empty"));
    }
    let options = match serde_json::to_value(&raw)? {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    Ok(Instance {
        name: name.to_string(),
        vocabulary,
        options,
        workload: Arc::new(YamlWorkload {
            ops,
            finals,
            checkers,
            keys,
            unique: Arc::new(AtomicU64::new(1)),
        }),
    })
}

impl Workload for YamlWorkload {
    fn generator(&self) -> BoxGen {
        let mut ops: Vec<(String, f64, Values)> = self
            .ops
            .iter()
            .map(|o| (o.f.clone(), o.weight, Values::new(&o.kind, &self.unique)))
            .collect();
        let total: f64 = ops.iter().map(|o| o.1).sum();
        Box::new(g::from_fn(move |ctx: &mut Ctx| {
            let mut x = ctx.rng.unit() * total;
            let mut pick = ops.len() - 1;
            for (i, o) in ops.iter().enumerate() {
                if x < o.1 {
                    pick = i;
                    break;
                }
                x -= o.1;
            }
            let (f, _, values) = &mut ops[pick];
            Some((f.clone(), values.next(ctx.rng)))
        }))
    }

    fn final_generator(&self) -> Option<BoxGen> {
        if self.finals.is_empty() {
            return None;
        }
        let finals = self.finals.clone();
        let (keys, unique) = (self.keys, self.unique.clone());
        Some(g::each_thread(move |_thread| {
            // this worker's ops: each final op, once per key when keyed
            let mut todo: Vec<(String, Option<u64>, Values)> = Vec::new();
            for (f, kind) in &finals {
                match keys {
                    Some(n) => {
                        for k in 0..n {
                            todo.push((f.clone(), Some(k), Values::new(kind, &unique)));
                        }
                    }
                    None => todo.push((f.clone(), None, Values::new(kind, &unique))),
                }
            }
            let mut it = todo.into_iter();
            Box::new(g::from_fn(move |ctx: &mut Ctx| {
                let (f, key, mut values) = it.next()?;
                let v = values.next(ctx.rng);
                Some((
                    f,
                    match key {
                        Some(k) => json!([k, v]),
                        None => v,
                    },
                ))
            }))
        }))
    }

    fn client_params(&self) -> Value {
        // The bank's accounts, for targets (and custom clients) that serve its vocabulary.
        self.checkers
            .iter()
            .find_map(|(_, c)| match c {
                CheckerSpec::Bank(b) => Some(json!(super::bank::BankParams {
                    accounts: b.accounts,
                    total: b.total,
                    allow_negative: b.allow_negative,
                })),
                _ => None,
            })
            .unwrap_or(Value::Null)
    }

    fn check(&self, ops: &[Op], budget: &Budget) -> Vec<Checked> {
        let keyed = self.keys.is_some();
        self.checkers
            .iter()
            .map(|(name, c)| {
                let name = name.as_str();
                match c {
                    CheckerSpec::Linearizable { model, initial } => {
                        let opts = LinOptions {
                            model: *model,
                            initial: initial.clone(),
                            independent: keyed || *model == ModelKind::Kv,
                            partition: true,
                            budget: budget.clone(),
                        };
                        Checked::of(name, linear::check(ops, &opts))
                    }
                    CheckerSpec::Transactional(w, models) => {
                        let opts = TxnOptions {
                            workload: *w,
                            consistency_models: models.clone(),
                            budget: budget.clone(),
                        };
                        Checked::of(name, txn::check(ops, &opts))
                    }
                    CheckerSpec::Bank(b) => Checked::of(name, bank::check(ops, b)),
                    CheckerSpec::Set(lin) => {
                        let opts = SetOptions { linearizable: *lin };
                        per_key(name, keyed, ops, |o| set::check(o, &opts))
                    }
                    CheckerSpec::Counter => per_key(name, keyed, ops, counter::check),
                    CheckerSpec::TotalQueue => per_key(name, keyed, ops, queue::check),
                    CheckerSpec::UniqueIds(o) => {
                        per_key(name, keyed, ops, |h| unique_ids::check(h, o))
                    }
                }
            })
            .collect()
    }
}

/// A checker on the whole history, or key by key when the workload is keyed.
fn per_key<R, F>(name: &str, keyed: bool, ops: &[Op], check: F) -> Checked
where
    R: Serialize,
    F: Fn(&[Op]) -> std::result::Result<R, CheckError>,
{
    if keyed {
        Checked::of(name, independent::check(ops, check))
    } else {
        Checked::of(name, check(ops))
    }
}

#[cfg(test)]
mod tests;

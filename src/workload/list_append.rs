//! `list-append` (Elle): transactions of appends and reads over a few keys, checked for the
//! consistency models listed (`checker::txn`).
//!
//! Vocabulary: `txn [["append", k, v] | ["r", k, null], …]` → the same list with reads filled
//! in (`["r", k, [v…]]`). The implementation, [`Txn`], is `rw-register`'s too.

use super::{check_range, Checked, Workload, WorkloadOptions};
use crate::checker::txn::{self, TxnOptions, TxnWorkload};
use crate::checker::Budget;
use crate::generator::{self as g, BoxGen, Ctx};
use crate::history::Op;
use crate::plan::RunPlan;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::marker::PhantomData;

/// Options of the transactional workloads (`list-append`, `rw-register`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TxnWorkloadOptions {
    /// Keys in use at once.
    pub keys: u64,
    /// Largest transaction, in micro-operations.
    pub max_txn_len: usize,
    /// Writes per key before that key retires and a fresh one takes its place.
    pub max_writes_per_key: u64,
    /// Consistency models to check (Elle's names; see docs/transactional-checking.md).
    pub consistency_models: Vec<String>,
}

impl Default for TxnWorkloadOptions {
    fn default() -> Self {
        TxnWorkloadOptions {
            keys: 8,
            max_txn_len: 4,
            max_writes_per_key: 32,
            consistency_models: vec!["strict-serializable".into()],
        }
    }
}

impl TxnWorkloadOptions {
    pub(crate) fn validate(&self) -> Result<(), String> {
        check_range("keys", self.keys, 1, 1_000_000)?;
        check_range("max_txn_len", self.max_txn_len, 1, 1_000)?;
        check_range("max_writes_per_key", self.max_writes_per_key, 1, 1 << 40)?;
        txn::validate_models(&self.consistency_models)
            .map(|_| ())
            .map_err(|e| format!("consistency_models: {e}"))
    }

    fn check(&self, w: TxnWorkload, ops: &[Op], budget: &Budget) -> Vec<Checked> {
        let opts = TxnOptions {
            workload: w,
            consistency_models: self.consistency_models.clone(),
            budget: budget.clone(),
        };
        vec![Checked::of("txn", txn::check(ops, &opts))]
    }
}

/// Which of Elle's transaction workloads a [`Txn`] is; its name, its writes and how its
/// histories are read follow from it.
pub trait TxnKind: Default + Send + Sync + 'static {
    /// The workload.
    const WORKLOAD: TxnWorkload;
}

/// An Elle transaction workload of kind `K`: list-append ([`ListAppend`]) or rw-register
/// (`rw_register::RwRegister`) — the same options, generator and checker, the kind choosing
/// the name, the micro-op that writes and how the checker reads the history.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(transparent, bound = "")]
pub struct Txn<K>(pub TxnWorkloadOptions, #[serde(skip)] PhantomData<K>);

impl<K: TxnKind> Txn<K> {
    /// The workload with options `o`.
    pub fn new(o: TxnWorkloadOptions) -> Self {
        Txn(o, PhantomData)
    }

    /// The micro-op that writes: `append` to a list, or `w` of a register.
    const WRITE: &'static str = match K::WORKLOAD {
        TxnWorkload::ListAppend => "append",
        TxnWorkload::RwRegister => "w",
    };
}

impl<K: TxnKind> WorkloadOptions for Txn<K> {
    const NAME: &'static str = match K::WORKLOAD {
        TxnWorkload::ListAppend => "list-append",
        TxnWorkload::RwRegister => "rw-register",
    };
    const ABOUT: &'static str = match K::WORKLOAD {
        TxnWorkload::ListAppend => {
            "Elle's list-append transactions, checked for the consistency models listed"
        }
        TxnWorkload::RwRegister => {
            "Elle's read/write-register transactions, checked for the consistency models listed"
        }
    };

    fn validate(&self, _run: &RunPlan) -> Result<(), String> {
        self.0.validate()
    }
}

impl<K: TxnKind> Workload for Txn<K> {
    fn generator(&self) -> BoxGen {
        txn_generator(&self.0, Self::WRITE)
    }

    fn check(&self, ops: &[Op], budget: &Budget) -> Vec<Checked> {
        self.0.check(K::WORKLOAD, ops, budget)
    }
}

/// The list-append workload.
pub type ListAppend = Txn<ListAppendKind>;

/// The kind of [`ListAppend`].
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ListAppendKind;

impl TxnKind for ListAppendKind {
    const WORKLOAD: TxnWorkload = TxnWorkload::ListAppend;
}

/// Elle's transaction generator: `keys` active keys; each transaction has 1..=max_txn_len
/// micro-ops on random active keys, half reads (`["r", k, null]`) and half writes
/// (`[write_f, k, v]`, values unique per key: 1, 2, 3, …); a key that received
/// `max_writes_per_key` writes retires and a fresh key takes its place.
pub fn txn_generator(o: &TxnWorkloadOptions, write_f: &'static str) -> BoxGen {
    let mut values = TxnValues::new(o, write_f);
    Box::new(g::from_fn(move |ctx: &mut Ctx| {
        Some(("txn".into(), values.next(ctx.rng)))
    }))
}

/// The transactions of [`txn_generator`], one value at a time (also the `txn` value kind of
/// workloads written in YAML, `crate::workload::yaml`).
pub struct TxnValues {
    active: Vec<u64>,
    next_key: u64,
    written: std::collections::HashMap<u64, u64>,
    max_len: u64,
    max_writes: u64,
    write_f: &'static str,
}

impl TxnValues {
    /// The first state: keys `0..o.keys` active, nothing written; writes are `write_f` micro-ops.
    pub fn new(o: &TxnWorkloadOptions, write_f: &'static str) -> TxnValues {
        TxnValues {
            active: (0..o.keys).collect(),
            next_key: o.keys,
            written: Default::default(),
            max_len: o.max_txn_len as u64,
            max_writes: o.max_writes_per_key,
            write_f,
        }
    }

    /// The next transaction.
    pub fn next(&mut self, rng: &mut crate::generator::Rng) -> Value {
        let len = 1 + rng.below(self.max_len);
        let mut txn = Vec::with_capacity(len as usize);
        for _ in 0..len {
            let slot = rng.index(self.active.len());
            let k = self.active[slot];
            if rng.chance(0.5) {
                txn.push(json!(["r", k, null]));
            } else {
                let n = self.written.entry(k).or_insert(0);
                *n += 1;
                txn.push(json!([self.write_f, k, *n]));
                if *n >= self.max_writes {
                    self.written.remove(&k);
                    self.active[slot] = self.next_key;
                    self.next_key += 1;
                }
            }
        }
        Value::Array(txn)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generator::sim::simulate;

    #[test]
    fn appends_are_unique_per_key() {
        let w = ListAppend::new(TxnWorkloadOptions {
            keys: 4,
            ..TxnWorkloadOptions::default()
        });
        let ops = simulate(g::limit(500, w.generator()), 3, 2, 10, u64::MAX);
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
    fn unknown_consistency_models_are_refused_before_the_run() {
        let o = TxnWorkloadOptions {
            consistency_models: vec!["serialisable-ish".into()],
            ..TxnWorkloadOptions::default()
        };
        let e = o.validate().unwrap_err();
        assert!(
            e.starts_with("consistency_models:") && e.contains("serialisable-ish"),
            "{e}"
        );
        let o = TxnWorkloadOptions {
            max_txn_len: 100_000_000,
            ..TxnWorkloadOptions::default()
        };
        assert!(o.validate().unwrap_err().starts_with("max_txn_len"));
    }
}

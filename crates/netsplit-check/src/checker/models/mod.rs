//! Consistency models below linearizability for register histories: `sequential`, `causal`
//! (causal convergence, CCv) and the four session guarantees of Terry et al. (1994):
//! `read-your-writes`, `monotonic-reads`, `monotonic-writes`, `writes-follow-reads`.
//!
//! Input: a register history (`read [k, null]` → `[k, v]`, `write [k, v]`, `cas [k, [old,
//! new]]`, or the same without keys). Values written are unique per key, so every read names
//! the write it observed (reads-from is known); `null` is the initial value. A history that
//! writes one value twice to a key makes every model `unknown`, never valid.
//!
//! Which operations count: `ok` operations; an `info` (or never completed) write or cas only
//! if some read observed its value (otherwise it may never have happened); `fail` operations
//! and `info` reads never. A failed cas is dropped (it would only say "the value was not
//! `old`"), which can hide a violation but never invent one. Sessions are processes, and an
//! `info` outcome (a crashed client) ends the process's session.
//!
//! Definitions (see docs/consistency-models.md): the session guarantees are checked against a
//! per-key version order `ar` of the writes, which must exist (be acyclic) given the edges each
//! guarantee forces — see `session.rs`. Causal consistency is CCv of Bouajjani et al.: a single
//! arbitration order containing causality (program order and reads-from) in which every read
//! returns the last write it causally knows of — see `causal.rs`. Sequential consistency is a
//! total order of all operations keeping each session's order in which every read returns the
//! latest write — see `sequential.rs`, a search with a budget whose undecided outcome is
//! `unknown`. Every violated model names the operations (event positions) that show it.

mod causal;
mod extract;
mod sequential;
mod session;
pub mod view;

#[cfg(test)]
mod oracle;
#[cfg(test)]
mod tests;

use super::{Budget, CheckError};
use crate::history::Op;
use serde::{Serialize, Serializer};
use std::collections::BTreeMap;

pub use extract::extract;

/// The models this module checks, strongest first (`linearizable` is checked elsewhere, by
/// `checker::linear`, but named here so callers can validate one list).
pub const MODELS: [&str; 7] = [
    "linearizable",
    "sequential",
    "causal",
    "read-your-writes",
    "monotonic-reads",
    "monotonic-writes",
    "writes-follow-reads",
];

/// Checks a list of model names (also accepting `all`); returns them deduplicated, in
/// [`MODELS`] order, or an error naming the first unknown one and the valid names.
pub fn parse_models(names: &[String]) -> Result<Vec<&'static str>, String> {
    let mut want = Vec::new();
    for n in names {
        let n = n.trim();
        if n == "all" {
            want.extend(MODELS);
        } else if let Some(m) = MODELS.iter().find(|m| **m == n) {
            want.push(*m);
        } else {
            return Err(format!(
                "unknown consistency model {n:?} (valid: {}, or all)",
                MODELS.join(", ")
            ));
        }
    }
    let mut out: Vec<&'static str> = MODELS
        .iter()
        .copied()
        .filter(|m| want.contains(m))
        .collect();
    out.dedup();
    Ok(out)
}

/// The verdict on one model: `valid` is JSON `true`, `false` or `null` (undecided).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelResult {
    /// Holds, violated, or undecided (serialised as `null`).
    #[serde(serialize_with = "ser_valid")]
    pub valid: super::Validity,
    /// Why it does not hold (or why undecided); empty when it holds.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// The operations that show the violation, as positions (0-based) of their invocations in
    /// the history handed in, in the order the explanation reads them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub witness: Vec<usize>,
}

pub(crate) fn ser_valid<S: Serializer>(v: &super::Validity, s: S) -> Result<S::Ok, S::Error> {
    match v {
        super::Validity::True => s.serialize_bool(true),
        super::Validity::False => s.serialize_bool(false),
        super::Validity::Unknown => s.serialize_none(),
    }
}

impl ModelResult {
    /// The model holds: valid, no reason, no witness.
    pub fn holds() -> ModelResult {
        ModelResult {
            valid: super::Validity::True,
            reason: String::new(),
            witness: Vec::new(),
        }
    }
    /// The model is violated: `reason` explains how, `witness` lists the invocation positions that show it.
    pub fn violated(reason: impl Into<String>, witness: Vec<usize>) -> ModelResult {
        ModelResult {
            valid: super::Validity::False,
            reason: reason.into(),
            witness,
        }
    }
    /// Undecided (a budget ran out, or the history cannot settle it), for `reason`.
    pub fn unknown(reason: impl Into<String>) -> ModelResult {
        ModelResult {
            valid: super::Validity::Unknown,
            reason: reason.into(),
            witness: Vec::new(),
        }
    }
}

/// Options: whether values are `[key, value]` pairs, and the budget (sequential search only).
#[derive(Debug, Clone, Default)]
pub struct ModelOptions {
    /// Client values are `[key, value]` pairs over independent keys.
    pub keyed: bool,
    /// Time and memory limit of the sequential-consistency search; the other models are polynomial and ignore it.
    pub budget: Budget,
}

/// A read's source: the initial value, or the write of operation `i` (an index into
/// [`Hist::ops`]).
pub type Src = Option<usize>;

/// One operation as the model checkers see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MOp {
    /// Position of the invocation in the history (what witnesses name).
    pub event: usize,
    /// Session (dense, from 0) and position within it.
    pub session: usize,
    /// 0-based position of the operation within its session.
    pub pos: usize,
    /// Key (dense, from 0).
    pub key: usize,
    /// `Some(src)` if the operation reads (a read, or a cas: what it compared against).
    pub read: Option<Src>,
    /// True if the operation writes (a write, or a cas).
    pub write: bool,
}

/// A register history reduced to what the models need: operations, sessions in program order,
/// keys, reads-from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hist {
    /// The operations that count (see the module docs), in invocation order.
    pub ops: Vec<MOp>,
    /// Each session's operations, as indexes into `ops`, in program order.
    pub sessions: Vec<Vec<usize>>,
    /// Number of distinct keys (1 when not keyed).
    pub keys: usize,
}

impl Hist {
    /// Readers of each write (by op index), and of the initial value of each key.
    pub fn readers(&self) -> (Vec<u32>, Vec<u32>) {
        let mut w = vec![0u32; self.ops.len()];
        let mut init = vec![0u32; self.keys];
        for o in &self.ops {
            match o.read {
                Some(Some(s)) => w[s] += 1,
                Some(None) => init[o.key] += 1,
                None => {}
            }
        }
        (w, init)
    }

    fn events(&self, ops: &[usize]) -> Vec<usize> {
        ops.iter().map(|&i| self.ops[i].event).collect()
    }
}

/// Checks `models` (names from [`MODELS`], `linearizable` skipped: that is `checker::linear`'s)
/// over one register history, all keys together.
pub fn check(
    ops: &[Op],
    models: &[&str],
    opts: &ModelOptions,
) -> Result<BTreeMap<String, ModelResult>, CheckError> {
    let mut out = BTreeMap::new();
    let wanted: Vec<&str> = models
        .iter()
        .copied()
        .filter(|m| *m != "linearizable")
        .collect();
    if wanted.is_empty() {
        return Ok(out);
    }
    let h = match extract(ops, opts.keyed)? {
        extract::Extracted::Hist(h) => h,
        extract::Extracted::Undecidable(why) => {
            for m in wanted {
                out.insert(m.to_string(), ModelResult::unknown(why.clone()));
            }
            return Ok(out);
        }
        extract::Extracted::ThinAir { read, msg } => {
            for m in wanted {
                out.insert(
                    m.to_string(),
                    ModelResult::violated(msg.clone(), vec![read]),
                );
            }
            return Ok(out);
        }
    };
    Ok(check_hist(&h, &wanted, &opts.budget))
}

/// [`check`] over an extracted history.
pub fn check_hist(h: &Hist, models: &[&str], budget: &Budget) -> BTreeMap<String, ModelResult> {
    let mut out = BTreeMap::new();
    let mut causal_result = None;
    for m in models {
        let r = match *m {
            "causal" => causal_result
                .get_or_insert_with(|| causal::check(h))
                .clone(),
            "sequential" => {
                // Sequential implies causal: a causal violation is a sequential one, found in
                // polynomial time before any search.
                let c = causal_result
                    .get_or_insert_with(|| causal::check(h))
                    .clone();
                if c.valid == super::Validity::False {
                    ModelResult::violated(
                        format!("not causal, so not sequential: {}", c.reason),
                        c.witness,
                    )
                } else {
                    sequential::check(h, budget)
                }
            }
            "read-your-writes" => session::check(h, session::Guarantee::ReadYourWrites),
            "monotonic-reads" => session::check(h, session::Guarantee::MonotonicReads),
            "monotonic-writes" => session::check(h, session::Guarantee::MonotonicWrites),
            "writes-follow-reads" => session::check(h, session::Guarantee::WritesFollowReads),
            _ => continue,
        };
        out.insert(m.to_string(), r);
    }
    out
}

/// Finds a cycle in a graph of `n` nodes given by in-edges, among the nodes a topological sort
/// could not place (`order` holds those it placed; each of the others has such a predecessor):
/// from the first of them, walks predecessors until a node repeats. Returns the cycle in edge
/// order.
pub(crate) fn unsorted_cycle(
    n: usize,
    order: &[usize],
    preds: impl Fn(usize) -> Vec<usize>,
) -> Vec<usize> {
    let mut alive = vec![true; n];
    for &i in order {
        alive[i] = false;
    }
    let mut at = (0..n).find(|&i| alive[i]).expect("a node left");
    let mut seen = std::collections::HashMap::new();
    let mut path = Vec::new();
    loop {
        if let Some(&i) = seen.get(&at) {
            let mut c: Vec<usize> = path[i..].to_vec();
            c.reverse();
            return c;
        }
        seen.insert(at, path.len());
        path.push(at);
        match preds(at).into_iter().find(|&p| alive[p]) {
            Some(p) => at = p,
            None => return path,
        }
    }
}

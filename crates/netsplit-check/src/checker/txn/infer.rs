//! What the per-key inferences of `list_append` and `rw_register` share: driving one analysis
//! per key in parallel and merging the results, the index of each key's writes and of its
//! writers (which refuses a value written twice, since both workloads name versions by value),
//! the anomalies' wording where it is common (what T1 read; the `internal` and lost-update
//! reports). The inferences themselves differ and stay in their modules.

use super::anomaly::{Explain, RawAnomaly};
use super::fx::{map_with_capacity, HashMap};
use super::parse::{Mop, Parsed, Scalar};
use super::Analysis;
use crate::checker::{Budget, CheckError};
use rayon::prelude::*;
use std::borrow::Borrow;
use std::fmt::Display;
use std::hash::Hash;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The budget of one check and the bytes its structures hold so far (shared by the per-key
/// inferences running in parallel).
pub struct Spent<'b> {
    pub budget: &'b Budget,
    bytes: AtomicUsize,
}

impl<'b> Spent<'b> {
    /// Starts the count at `bytes` (the parsed history).
    pub fn new(budget: &'b Budget, bytes: usize) -> Spent<'b> {
        Spent {
            budget,
            bytes: AtomicUsize::new(bytes),
        }
    }

    /// Counts `n` more bytes; false if that passes the memory limit.
    fn add(&self, n: usize) -> bool {
        self.bytes.fetch_add(n, Ordering::Relaxed) + n <= self.budget.max_memory
    }

    /// Bytes counted so far.
    pub fn bytes(&self) -> usize {
        self.bytes.load(Ordering::Relaxed)
    }
}

/// What the inference over one key yields.
pub struct KeyOut<I> {
    pub edges: Vec<(u32, u32, u8)>,
    pub anomalies: Vec<RawAnomaly>,
    /// An inference skipped as too large (see [`super::MAX_FANOUT_EDGES`]).
    pub skipped: Option<String>,
    /// Per-key facts the explainer keeps.
    pub info: I,
}

/// Runs `analyze_key` on every key of `p` (whose index is `idx`) in parallel and merges the
/// results in key order, after `anomalies` (those found per transaction), so the outcome — and
/// which error is reported when several keys have one — does not depend on scheduling.
/// `explainer` gets the per-key facts in key order.
///
/// A key is skipped (and named in `unknown`) once the time limit has passed, and its edges and
/// anomalies are dropped (likewise) when keeping them would pass the memory limit: a skipped
/// inference could hide an anomaly, never invent one. (Each key's own structures are bounded
/// by its data and by [`super::MAX_FANOUT_EDGES`].)
pub fn per_key<X: Sync, I: Send + Default>(
    p: &Parsed,
    idx: &[X],
    mut anomalies: Vec<RawAnomaly>,
    spent: &Spent,
    analyze_key: impl Fn(&Parsed, u32, &X) -> Result<KeyOut<I>, CheckError> + Sync,
    explainer: impl FnOnce(Vec<I>) -> Box<dyn Explain>,
) -> Result<Analysis, CheckError> {
    let keys = &p.keys;
    let skip = |why: &str| KeyOut {
        edges: Vec::new(),
        anomalies: Vec::new(),
        skipped: Some(why.to_string()),
        info: I::default(),
    };
    let outs: Vec<Result<KeyOut<I>, CheckError>> = idx
        .par_iter()
        .enumerate()
        .map(|(k, ix)| {
            if spent.budget.exhausted() {
                return Ok(skip(&format!("inferences on key {} (time limit)", keys[k])));
            }
            let out = analyze_key(p, k as u32, ix)?;
            let bytes = out.edges.capacity() * std::mem::size_of::<(u32, u32, u8)>()
                + out
                    .anomalies
                    .iter()
                    .map(|a| a.explanation.len() + 64)
                    .sum::<usize>();
            if !spent.add(bytes) {
                return Ok(skip(&format!(
                    "inferences on key {} (memory limit: {} edges)",
                    keys[k],
                    out.edges.len()
                )));
            }
            Ok(out)
        })
        .collect();
    let mut edges = Vec::new();
    let mut info = Vec::with_capacity(outs.len());
    let mut unknown = Vec::new();
    for o in outs {
        let o = o?;
        unknown.extend(o.skipped);
        edges.extend(o.edges);
        anomalies.extend(o.anomalies);
        info.push(o.info);
    }
    Ok(Analysis {
        edges,
        anomalies,
        unknown,
        explainer: explainer(info),
    })
}

/// One key's micro-ops: its writes, and the reads an inference keeps (`R`: what it keeps of
/// each).
pub struct KeyIndex<R> {
    /// (txn, mop) of every write (append or blind write), in transaction order.
    pub writes: Vec<(u32, u16)>,
    /// The reads the inference indexed, in transaction order.
    pub reads: Vec<R>,
}

impl<R> KeyIndex<R> {
    /// Every key's index, with its writes and no reads yet.
    pub fn of_writes(p: &Parsed) -> Vec<KeyIndex<R>> {
        let mut idx: Vec<KeyIndex<R>> = (0..p.keys.len())
            .map(|_| KeyIndex {
                writes: Vec::new(),
                reads: Vec::new(),
            })
            .collect();
        for (ti, t) in p.txns.iter().enumerate() {
            for (mi, m) in t.mops.iter().enumerate() {
                if let Mop::Append(k, _) | Mop::Write(k, _) = m {
                    idx[*k as usize].writes.push((ti as u32, mi as u16));
                }
            }
        }
        idx
    }
}

/// The writers of one key, from its writes `(txn, mop)` in transaction order.
pub struct Writers<K> {
    /// The (transaction, micro-op) that wrote each value.
    pub writer: HashMap<K, (u32, u16)>,
    /// Each writing transaction's final write to the key.
    pub last: HashMap<u32, u16>,
}

/// Indexes the writes of key `k` by value; `key` makes the map's key from a written value (a
/// clone when the map outlives the history, the reference otherwise). A value written twice
/// is an error naming both invocations: `verb` ("appended", "written") and `workload` say
/// what was done and which workload needs unique values.
pub fn writers<'p, K: Hash + Eq + Borrow<Scalar>>(
    p: &'p Parsed,
    k: u32,
    writes: &[(u32, u16)],
    verb: &str,
    workload: &str,
    key: impl Fn(&'p Scalar) -> K,
) -> Result<Writers<K>, CheckError> {
    let txns = &p.txns;
    let mut writer: HashMap<K, (u32, u16)> = map_with_capacity(writes.len());
    let mut last: HashMap<u32, u16> = HashMap::default();
    for &(t, m) in writes {
        let v = match &txns[t as usize].mops[m as usize] {
            Mop::Append(_, v) | Mop::Write(_, v) => v,
            _ => unreachable!("a write index points at an append or a write"),
        };
        if let Some(&(t0, _)) = writer.get(v) {
            return Err(CheckError::new(
                txns[t as usize].invoke,
                format!(
                    "value {v} is {verb} to key {} twice (invocations at events {} and {}); {workload} needs unique {verb} values per key",
                    p.keys[k as usize], txns[t0 as usize].invoke, txns[t as usize].invoke
                ),
            ));
        }
        writer.insert(key(v), (t, m));
        last.insert(t, m);
    }
    Ok(Writers { writer, last })
}

/// The `internal` anomaly of transaction `t`: its micro-op `mi` read `read` from `key`, which
/// contradicts what its own earlier micro-ops did (`earlier`, e.g. "read or write of x left 1").
pub fn internal(
    t: usize,
    key: &Scalar,
    mi: usize,
    read: impl Display,
    earlier: impl Display,
) -> RawAnomaly {
    let explanation =
        format!("T1 read {key} = {read} at micro-op {mi}, but its own earlier {earlier}");
    RawAnomaly::on_key("internal", vec![t as u32], key, explanation)
}

/// The anomalies an inference finds on one key; each names the key.
pub struct KeyAnomalies<'k> {
    key: &'k str,
    /// Those found so far, in order.
    pub found: Vec<RawAnomaly>,
}

impl<'k> KeyAnomalies<'k> {
    /// None found yet on `key`.
    pub fn new(key: &'k str) -> Self {
        KeyAnomalies {
            key,
            found: Vec::new(),
        }
    }

    /// A `kind` anomaly among `txns` (`T1`, `T2`, … in `explanation`).
    pub fn add(&mut self, kind: &'static str, txns: Vec<u32>, explanation: String) {
        self.found
            .push(RawAnomaly::on_key(kind, txns, self.key, explanation));
    }

    /// A `kind` anomaly among `txns` that T1's read of the key shows: its explanation is
    /// "T1 read {key} = {read}" and then `then`.
    pub fn read(&mut self, kind: &'static str, txns: Vec<u32>, read: impl Display, then: &str) {
        let explanation = format!("T1 read {} = {read}{then}", self.key);
        self.add(kind, txns, explanation);
    }

    /// One lost-update anomaly per version of the key that several writing transactions read
    /// (`by_version`: version → those transactions), in version order. `show` prints a
    /// version; `then` says what the transactions did next and what each should have seen.
    pub fn lost_updates<V: Ord>(
        &mut self,
        by_version: HashMap<V, Vec<u32>>,
        show: impl Fn(&V) -> String,
        then: &str,
    ) {
        let mut lost: Vec<(V, Vec<u32>)> = by_version
            .into_iter()
            .filter(|(_, ts)| ts.len() > 1)
            .collect();
        lost.sort_by(|a, b| a.0.cmp(&b.0));
        for (v, ts) in lost {
            let names: Vec<String> = (1..=ts.len()).map(|i| format!("T{i}")).collect();
            let explanation = format!(
                "{} all read {} = {} and then {then} (lost update)",
                names.join(", "),
                self.key,
                show(&v)
            );
            self.add("lost-update", ts, explanation);
        }
    }
}

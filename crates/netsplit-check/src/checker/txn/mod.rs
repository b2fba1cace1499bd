//! Transactional consistency checking, Elle-style: from a history of transactions, infer the
//! dependency graph, find and name anomalies, explain them, and say which consistency models
//! they rule out.
//!
//! Pipeline (`check`):
//! 1. `parse`: `f: "txn"` events → transactions of typed micro-ops (keys interned).
//! 2. `list_append` / `rw_register`: per-key inference (parallel over keys) of ww/wr/rw edges
//!    and of the anomalies that are not cycles (G1a, G1b, internal, …); `infer` holds what the
//!    two share (the parallel per-key driver, the writer index, lost-update reports).
//! 3. `graph`: process-order and (transitively reduced) real-time edges; one compact graph.
//! 4. `search`: Tarjan SCCs, then an exact linear-time search per forbidden cycle class inside
//!    each component (parallel over components), each yielding a concrete, explained cycle.
//! 5. `models`: which anomalies the requested models forbid (so asking for
//!    snapshot-isolation searches no real-time or process cycles), and which models the found
//!    anomalies rule out.
//!
//! Valid means: no anomaly that a requested model forbids was found, and every forbidden class
//! was settled. See `docs/transactional-checking.md` for the semantics and the limits.

mod anomaly;
pub(crate) mod fx;
pub mod gen;
mod graph;
mod infer;
mod list_append;
mod models;
pub mod parse;
mod rw_register;
mod search;
#[cfg(test)]
mod tests;

use crate::checker::{Budget, CheckError, Validity};
use crate::history::Op;
pub use anomaly::{Anomaly, Step, TxnRef};
use anomaly::{Explain, RawAnomaly};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;

/// Which transactional workload a history comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxnWorkload {
    /// Elle's list-append: `append` to lists and `r` of whole lists, so reads reveal the version order.
    ListAppend,
    /// Elle's rw-register: `w` and `r` of single values, unique per key.
    RwRegister,
}

impl FromStr for TxnWorkload {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "list-append" | "append" => Ok(TxnWorkload::ListAppend),
            "rw-register" | "wr" => Ok(TxnWorkload::RwRegister),
            _ => Err(format!(
                "unknown transactional workload {s:?}; accepted: list-append, rw-register"
            )),
        }
    }
}

impl TxnWorkload {
    /// The workload's canonical name (`list-append` or `rw-register`).
    pub fn as_str(self) -> &'static str {
        match self {
            TxnWorkload::ListAppend => "list-append",
            TxnWorkload::RwRegister => "rw-register",
        }
    }
}

/// Options for [`check`]: which workload the history comes from, which models to check, and the budget.
#[derive(Debug, Clone)]
pub struct TxnOptions {
    /// Which workload produced the history; it fixes how micro-ops are parsed and inferred.
    pub workload: TxnWorkload,
    /// Requested consistency models (`strict-serializable` by default). Entries may themselves
    /// be comma-separated lists.
    pub consistency_models: Vec<String>,
    /// Time and memory limits of the search; what it could not settle is reported in [`TxnResult::unknown`].
    pub budget: Budget,
}

impl Default for TxnOptions {
    fn default() -> Self {
        TxnOptions {
            workload: TxnWorkload::ListAppend,
            consistency_models: vec!["strict-serializable".into()],
            budget: Budget::unlimited(),
        }
    }
}

/// Validates consistency-model names (canonical names, Adya's `PL-*` names and a few synonyms;
/// comma-separated lists allowed). Returns the canonical names, or a one-line message naming
/// the unknown model and every accepted name.
pub fn validate_models(names: &[String]) -> Result<Vec<String>, String> {
    models::validate_models(names).map(|v| v.into_iter().map(String::from).collect())
}

/// Every accepted consistency-model name.
pub fn model_names() -> Vec<&'static str> {
    models::model_names()
}

/// How many anomalies of each type are kept with full explanations (the rest are counted).
pub const MAX_ANOMALIES_PER_TYPE: usize = 8;

/// Counts describing the history and the graph.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TxnStats {
    /// Client `txn` operations.
    pub txns: usize,
    /// Of those, how many completed `ok`.
    pub ok: usize,
    /// Of those, how many completed `fail`.
    pub fail: usize,
    /// Of those, how many completed `info` or never completed.
    pub info: usize,
    /// Distinct keys touched.
    pub keys: usize,
    /// Client operations whose `f` is not `txn` (ignored).
    pub ignored_ops: usize,
    /// Edges by relation, before merging parallel edges.
    pub edges: BTreeMap<&'static str, usize>,
    /// Non-trivial strongly connected components searched.
    pub components: usize,
    /// Transactions in the largest of those components.
    pub largest_component: usize,
}

/// The verdict of [`check`] and its evidence.
#[derive(Debug, Clone, Serialize)]
pub struct TxnResult {
    /// False if an anomaly a requested model forbids was found; unknown if a forbidden class could not be settled; else true.
    pub valid: Validity,
    /// Anomalies found that a requested model forbids (Elle's names), sorted.
    pub anomaly_types: Vec<String>,
    /// Every model those anomalies rule out, and every stronger model, sorted.
    pub not: Vec<String>,
    /// The weakest models in `not` (Elle's `:not`); the rest of `not` follows from these.
    pub weakest_not: Vec<String>,
    /// Anomalies found that no requested model forbids (reported, not counted against validity).
    pub other_anomaly_types: Vec<String>,
    /// Evidence, by anomaly type (at most [`MAX_ANOMALIES_PER_TYPE`] each).
    pub anomalies: BTreeMap<String, Vec<Anomaly>>,
    /// How many of each type were found (may exceed what `anomalies` lists).
    pub anomaly_counts: BTreeMap<String, usize>,
    /// Forbidden classes the search could not settle (budget exhausted), with where.
    pub unknown: Vec<String>,
    /// The requested models, canonical names.
    pub models: Vec<String>,
    /// The workload checked (`list-append` or `rw-register`).
    pub workload: &'static str,
    /// Counts describing the history and its dependency graph.
    pub stats: TxnStats,
}

/// Per key, the most anti-dependency edges one "fan-out" inference may add (reads of the
/// initial register state × writers; reads × unobserved appends). Beyond it the edges are
/// skipped — which could hide a cycle, so the key is reported in `unknown`.
pub const MAX_FANOUT_EDGES: usize = 2_000_000;

/// What a workload analysis hands to the graph search.
pub(crate) struct Analysis {
    pub edges: Vec<(u32, u32, u8)>,
    pub anomalies: Vec<RawAnomaly>,
    /// Inferences skipped because they would add too many edges (see
    /// [`MAX_FANOUT_EDGES`]); each makes a clean result `unknown`.
    pub unknown: Vec<String>,
    pub explainer: Box<dyn Explain>,
}

/// Checks a history of `txn` operations against the requested consistency models.
///
/// Errors: unknown model names (event 0), malformed micro-ops or unpairable events (naming the
/// event index), and values appended/written twice to one key.
pub fn check(ops: &[Op], opts: &TxnOptions) -> Result<TxnResult, CheckError> {
    models::validate_models(&opts.consistency_models).map_err(|m| CheckError::new(0, m))?;
    let parsed = parse::parse(ops, opts.workload)?;
    check_parsed(&parsed, opts)
}

/// Checks transactions already parsed — by [`parse::TxnParser`], for instance streamed from a
/// file so that the history's JSON values are never all held at once. Same errors as [`check`]
/// (events named by their position in what was pushed).
///
/// Memory: `opts.budget.max_memory` bounds what the checker holds — the parsed history, the
/// dependency edges and the graph. Past it (or past the time limit) the inferences that would
/// need more are skipped and named in `unknown`, so the verdict is an anomaly that was found
/// anyway, or `unknown` — never `true`.
pub fn check_parsed(parsed: &parse::Parsed, opts: &TxnOptions) -> Result<TxnResult, CheckError> {
    let models =
        models::validate_models(&opts.consistency_models).map_err(|m| CheckError::new(0, m))?;
    let forbidden = models::forbidden_anomalies(&models);
    let budget = &opts.budget;
    let txns = &parsed.txns;
    let mut stats = TxnStats {
        txns: txns.len(),
        keys: parsed.keys.len(),
        ignored_ops: parsed.ignored,
        ..TxnStats::default()
    };
    for t in txns {
        match t.status {
            parse::Status::Ok => stats.ok += 1,
            parse::Status::Fail => stats.fail += 1,
            parse::Status::Info => stats.info += 1,
        }
    }
    let mut result = TxnResult {
        valid: Validity::Unknown,
        anomaly_types: Vec::new(),
        not: Vec::new(),
        weakest_not: Vec::new(),
        other_anomaly_types: Vec::new(),
        anomalies: BTreeMap::new(),
        anomaly_counts: BTreeMap::new(),
        unknown: Vec::new(),
        models: models.iter().map(|m| m.to_string()).collect(),
        workload: opts.workload.as_str(),
        stats,
    };
    let parsed_bytes = parsed.bytes();
    if budget.exhausted() || parsed_bytes > budget.max_memory {
        result.unknown.push(if budget.exhausted() {
            "everything (budget exhausted before the analysis)".into()
        } else {
            format!(
                "everything (memory limit: the parsed history alone takes {} MiB)",
                parsed_bytes >> 20
            )
        });
        return Ok(result);
    }
    let spent = infer::Spent::new(budget, parsed_bytes);
    let analysis = match opts.workload {
        TxnWorkload::ListAppend => list_append::analyze(parsed, &spent)?,
        TxnWorkload::RwRegister => rw_register::analyze(parsed, &spent)?,
    };
    let plan = search::Plan::new(&forbidden);
    let mut edges = analysis.edges;
    for (bit, name) in [(graph::WW, "ww"), (graph::WR, "wr"), (graph::RW, "rw")] {
        result
            .stats
            .edges
            .insert(name, edges.iter().filter(|e| e.2 == bit).count());
    }
    if plan.mask() & graph::PROC != 0 {
        let pe = graph::process_edges(txns);
        result.stats.edges.insert("process", pe.len());
        edges.extend(pe.into_iter().map(|(a, b)| (a, b, graph::PROC)));
    }
    if plan.mask() & graph::RT != 0 {
        let re = graph::realtime_edges(txns);
        result.stats.edges.insert("realtime", re.len());
        edges.extend(re.into_iter().map(|(a, b)| (a, b, graph::RT)));
    }
    // Edges as triples, then the graph: (4 + 4 + 1, padded to 12) and (4 + 1) bytes each.
    let graph_bytes = edges.len() * (12 + 5) + txns.len() * 4;
    let mut unknown = analysis.unknown;
    let found = if spent.bytes() + graph_bytes > budget.max_memory {
        unknown.push(format!(
            "dependency cycles (memory limit: the graph of {} edges would take {} MiB)",
            edges.len(),
            graph_bytes >> 20
        ));
        search::SearchOut::default()
    } else {
        let g = graph::Graph::from_edges(txns.len(), &edges);
        drop(edges);
        search::search(&g, parsed, &*analysis.explainer, &forbidden, budget)
    };
    result.stats.components = found.components;
    result.stats.largest_component = found.largest_component;
    result.unknown = found.unknown;
    result.unknown.extend(unknown);

    // Anomalies found by the inferences are materialised (with their transactions' values)
    // only as far as they are kept; the rest are counted.
    let mut types: BTreeSet<String> = BTreeSet::new();
    let mut other: BTreeSet<String> = BTreeSet::new();
    let mut tally = |kind: &str, result: &mut TxnResult| -> bool {
        let forbidden_here = kind == "cycle-exists" || forbidden.contains(kind);
        if forbidden_here {
            types.insert(kind.to_string());
        } else {
            other.insert(kind.to_string());
        }
        *result.anomaly_counts.entry(kind.to_string()).or_default() += 1;
        result.anomalies.get(kind).map_or(0, Vec::len) < MAX_ANOMALIES_PER_TYPE
    };
    for r in analysis.anomalies {
        if tally(r.kind, &mut result) {
            let a = anomaly::from_raw(parsed, r);
            result.anomalies.entry(a.kind.clone()).or_default().push(a);
        }
    }
    for a in found.anomalies {
        if tally(&a.kind, &mut result) {
            result.anomalies.entry(a.kind.clone()).or_default().push(a);
        }
    }
    let mut not = models::ruled_out(types.iter().map(|s| s.as_str()));
    if types.contains("cycle-exists") {
        // A cycle of unknown class over the searched edges rules out the requested models that
        // forbid every class those edges can form (that is why it was reported).
        for m in &models {
            if plan.any_cycle_forbidden(&models::forbidden_anomalies(&[*m])) {
                not.extend(models::stronger_or_equal(m));
            }
        }
    }
    result.weakest_not = models::weakest(&not)
        .into_iter()
        .map(String::from)
        .collect();
    result.not = not.into_iter().map(String::from).collect();
    result.anomaly_types = types.into_iter().collect();
    result.other_anomaly_types = other.into_iter().collect();
    result.valid = Validity::judged(!result.anomaly_types.is_empty(), !result.unknown.is_empty());
    Ok(result)
}

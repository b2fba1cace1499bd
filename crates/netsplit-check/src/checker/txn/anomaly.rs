//! Anomaly records as users read them: the transactions involved, one sentence per dependency
//! edge saying why it exists, a summary, and for cycles a small Graphviz DOT graph.
//!
//! The workload analyses (`list_append`, `rw_register`) produce [`RawAnomaly`] values naming
//! transactions by index and explain data edges through the [`Explain`] trait; this module turns
//! both into serialisable [`Anomaly`] values with stable names `T1`, `T2`, ….

use super::graph::{rel_name, PROC, RT};
use super::parse::{Parsed, Txn};
use serde::Serialize;
use serde_json::Value;

/// A transaction as shown in an anomaly.
#[derive(Debug, Clone, Serialize)]
pub struct TxnRef {
    /// `T1`, `T2`, … in the order the anomaly mentions them.
    pub name: String,
    /// Event index of the invocation.
    pub invoke_event: usize,
    /// Event index of the completion (absent for transactions that never completed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub complete_event: Option<usize>,
    /// The client process that ran it.
    pub process: u64,
    /// `ok`, `fail` or `info`.
    pub status: &'static str,
    /// The micro-ops as recorded (with read results when the transaction completed `ok`).
    pub value: Value,
}

/// One edge of a cycle: `from < to` by relation `rel`, because `why`.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    /// The transaction the edge leaves (`T1`, …).
    pub from: String,
    /// The transaction the edge enters.
    pub to: String,
    /// `ww`, `wr`, `rw`, `process` or `realtime`.
    pub rel: &'static str,
    /// The evidence for the edge, in words (which key, which value was read or overwritten).
    pub why: String,
}

/// One anomaly with its evidence.
#[derive(Debug, Clone, Serialize)]
pub struct Anomaly {
    /// Elle's name, e.g. `G-single-realtime`, `G1a`, `incompatible-order`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The transactions involved, named `T1`, `T2`, … in the order the explanation mentions them.
    pub txns: Vec<TxnRef>,
    /// A human-readable account: for cycles, each step and the contradiction.
    pub explanation: String,
    /// For cycle anomalies: the edges, in order, closing back on the first transaction.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cycle: Vec<Step>,
    /// For cycle anomalies: the cycle as a Graphviz DOT digraph.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dot: Option<String>,
    /// The key concerned, for single-key anomalies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// For cycle anomalies: the size of the strongly connected component it was found in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub component_size: Option<usize>,
}

/// A non-cycle anomaly as an analysis reports it; `explanation` names the transactions `T1`,
/// `T2`, … in the order of `txns`.
#[derive(Debug, Clone)]
pub struct RawAnomaly {
    pub kind: &'static str,
    pub txns: Vec<u32>,
    pub key: Option<String>,
    pub explanation: String,
}

impl RawAnomaly {
    /// An anomaly about one key.
    pub fn on_key(
        kind: &'static str,
        txns: Vec<u32>,
        key: impl std::fmt::Display,
        explanation: String,
    ) -> Self {
        RawAnomaly {
            kind,
            txns,
            key: Some(key.to_string()),
            explanation,
        }
    }
}

/// Explains data edges (ww, wr, rw) of a workload's dependency graph.
pub trait Explain: Sync + Send {
    /// Why `a < b` by `rel` (one of ww, wr, rw), naming the transactions `na` and `nb`.
    fn why(&self, txns: &[Txn], a: u32, b: u32, rel: u8, na: &str, nb: &str) -> String;
}

pub fn txn_ref(p: &Parsed, t: u32, name: String) -> TxnRef {
    let x = &p.txns[t as usize];
    TxnRef {
        name,
        invoke_event: x.invoke,
        complete_event: x.complete,
        process: x.process,
        status: x.status.as_str(),
        value: p.value(x),
    }
}

pub fn from_raw(p: &Parsed, r: RawAnomaly) -> Anomaly {
    Anomaly {
        kind: r.kind.to_string(),
        txns: r
            .txns
            .iter()
            .enumerate()
            .map(|(i, &t)| txn_ref(p, t, format!("T{}", i + 1)))
            .collect(),
        explanation: r.explanation,
        cycle: Vec::new(),
        dot: None,
        key: r.key,
        component_size: None,
    }
}

/// Why `a < b` for the history-order relations.
fn order_why(txns: &[Txn], a: u32, b: u32, rel: u8, na: &str, nb: &str) -> String {
    let (x, y) = (&txns[a as usize], &txns[b as usize]);
    let done = x
        .complete
        .map(|c| c.to_string())
        .unwrap_or_else(|| "?".into());
    if rel == PROC {
        format!(
            "{na} and {nb} ran on process {} and {na} (invoked at event {}) came first, so {na} < {nb} (process)",
            x.process, x.invoke
        )
    } else {
        format!(
            "{na} completed (event {done}) before {nb} was invoked (event {}), so {na} < {nb} (realtime)",
            y.invoke
        )
    }
}

/// Builds the anomaly record for a cycle given as steps `(from, to, rel)` where each `to` is
/// the next step's `from` and the last `to` is the first `from`.
pub fn cycle_anomaly(
    kind: String,
    p: &Parsed,
    steps: &[(u32, u32, u8)],
    ex: &dyn Explain,
    component_size: usize,
) -> Anomaly {
    let mut order: Vec<u32> = Vec::new();
    for &(a, _, _) in steps {
        if !order.contains(&a) {
            order.push(a);
        }
    }
    let name = |t: u32| {
        let i = order.iter().position(|&x| x == t).unwrap_or(0);
        format!("T{}", i + 1)
    };
    let txns = &p.txns;
    let mut cyc = Vec::new();
    for &(a, b, rel) in steps {
        let (na, nb) = (name(a), name(b));
        let why = if rel == PROC || rel == RT {
            order_why(txns, a, b, rel, &na, &nb)
        } else {
            ex.why(txns, a, b, rel, &na, &nb)
        };
        cyc.push(Step {
            from: na,
            to: nb,
            rel: rel_name(rel),
            why,
        });
    }
    let mut text = String::from("Let:\n");
    for (i, &t) in order.iter().enumerate() {
        let x = &txns[t as usize];
        text.push_str(&format!(
            "  T{} = {} (process {}, event {})\n",
            i + 1,
            p.value(x),
            x.process,
            x.invoke
        ));
    }
    text.push_str("Then:\n");
    for s in &cyc {
        text.push_str(&format!("  - {}.\n", s.why));
    }
    let first = cyc.first().map(|s| s.from.clone()).unwrap_or_default();
    text.push_str(&format!(
        "  - However, {first} < {first} by transitivity: a contradiction!"
    ));
    let mut dot = String::from("digraph cycle {\n  rankdir=LR;\n  node [shape=box];\n");
    for (i, &t) in order.iter().enumerate() {
        let x = &txns[t as usize];
        let label = format!("T{}: {}", i + 1, p.value(x)).replace('"', "\\\"");
        dot.push_str(&format!("  T{} [label=\"{}\"];\n", i + 1, label));
    }
    for s in &cyc {
        let color = match s.rel {
            "rw" => "red",
            "wr" => "blue",
            "ww" => "darkgreen",
            "process" => "purple",
            _ => "gray40",
        };
        dot.push_str(&format!(
            "  {} -> {} [label=\"{}\", color={color}, fontcolor={color}];\n",
            s.from, s.to, s.rel
        ));
    }
    dot.push('}');
    Anomaly {
        kind,
        txns: order
            .iter()
            .enumerate()
            .map(|(i, &t)| txn_ref(p, t, format!("T{}", i + 1)))
            .collect(),
        explanation: text,
        cycle: cyc,
        dot: Some(dot),
        key: None,
        component_size: Some(component_size),
    }
}

//! Read-write register inference: what a history of blind writes and reads reveals soundly.
//!
//! A register read shows one version, not a history of versions, so far less can be inferred
//! than for list-append. What this module infers, and why each is sound (values are unique per
//! key, as Elle requires):
//! - wr: T read k = v, and U wrote k = v, so U < T;
//! - rw from the initial state: T read k = null (never written). The initial version precedes
//!   every written version, so T < U for every committed-or-unknown U that wrote k;
//! - no ww edges: the order between two blind writes is not observable without extra
//!   assumptions (Elle's `:linearizable-keys?`, `:sequential-keys?`, `:wfr-keys?` options),
//!   which this checker does not make. G0 therefore cannot be found in rw-register histories,
//!   and anti-dependencies between written versions are not inferred. Cycles through process
//!   and real-time order combined with wr and initial-state rw edges are found.
//! - non-cycle anomalies: G1a (read a failed transaction's write), garbage-read (read a value
//!   nobody wrote), G1b (read a value its writer overwrote later in the same transaction),
//!   internal (a read contradicting the transaction's own earlier read or write of the key),
//!   lost-update (two committed transactions read the same version of a key and both wrote it).

use super::anomaly::Explain;
use super::fx::HashMap;
use super::graph::{RW, WR};
use super::infer::{internal, per_key, writers, KeyAnomalies, KeyIndex, KeyOut, Spent, Writers};
use super::parse::{Mop, Parsed, Scalar, Status, Txn};
use super::Analysis;
use crate::checker::CheckError;

fn show(v: &Option<Scalar>) -> String {
    match v {
        Some(x) => x.to_string(),
        None => "null".into(),
    }
}

/// The first read of `k` in `t` if it precedes every write to `k` (an external read).
fn external_read(t: &Txn, k: u32) -> Option<&Option<Scalar>> {
    for m in &t.mops {
        match m {
            Mop::ReadReg(k2, v) if *k2 == k => return v.as_ref(),
            Mop::Write(k2, _) if *k2 == k => return None,
            _ => {}
        }
    }
    None
}

/// Each completed external read in `t` (see [`external_read`]), in order: its key and the value
/// it returned (`None` for the initial state).
fn external_reads(t: &Txn) -> impl Iterator<Item = (u32, Option<&Scalar>)> {
    t.mops.iter().filter_map(move |m| match m {
        Mop::ReadReg(k, Some(v)) if external_read(t, *k).is_some() => Some((*k, v.as_ref())),
        _ => None,
    })
}

/// The values `t` writes to `k`, in order.
fn writes_to(t: &Txn, k: u32) -> impl Iterator<Item = &Scalar> {
    t.mops.iter().filter_map(move |m| match m {
        Mop::Write(k2, v) if *k2 == k => Some(v),
        _ => None,
    })
}

struct Explainer {
    keys: Vec<Scalar>,
}

impl Explain for Explainer {
    fn why(&self, txns: &[Txn], a: u32, b: u32, rel: u8, na: &str, nb: &str) -> String {
        let (ta, tb) = (&txns[a as usize], &txns[b as usize]);
        match rel {
            WR => {
                for (k, v) in external_reads(tb) {
                    let Some(v) = v else { continue };
                    if writes_to(ta, k).any(|w| w == v) {
                        return format!(
                            "{nb} read {} = {v}, which {na} wrote, so {na} < {nb} (wr)",
                            self.keys[k as usize]
                        );
                    }
                }
                format!("{na} < {nb} (wr)")
            }
            RW => {
                for (k, v) in external_reads(ta) {
                    if v.is_some() {
                        continue;
                    }
                    if let Some(v) = writes_to(tb, k).next() {
                        return format!(
                            "{na} read {} = null (the initial state), which precedes {nb}'s write of {v}, so {na} < {nb} (rw)",
                            self.keys[k as usize]
                        );
                    }
                }
                format!("{na} < {nb} (rw)")
            }
            _ => format!("{na} < {nb}"),
        }
    }
}

/// What the index keeps of the external reads of `ok` transactions: (txn, mop).
type Read = (u32, u16);

/// Runs the rw-register inference.
pub fn analyze(p: &Parsed, spent: &Spent) -> Result<Analysis, CheckError> {
    let mut idx = KeyIndex::<Read>::of_writes(p);
    let mut anomalies = Vec::new();
    let mut state: HashMap<u32, Option<Scalar>> = HashMap::default();
    for (ti, t) in p.txns.iter().enumerate() {
        state.clear();
        for (mi, m) in t.mops.iter().enumerate() {
            match m {
                Mop::Write(k, v) => {
                    state.insert(*k, Some(v.clone()));
                }
                Mop::ReadReg(k, Some(v)) if t.status == Status::Ok => {
                    let key = &p.keys[*k as usize];
                    match state.get(k) {
                        None => idx[*k as usize].reads.push((ti as u32, mi as u16)),
                        Some(prev) if prev != v => anomalies.push(internal(
                            ti,
                            key,
                            mi,
                            show(v),
                            format!("read or write of {key} left {}", show(prev)),
                        )),
                        Some(_) => {}
                    }
                    state.insert(*k, v.clone());
                }
                _ => {}
            }
        }
    }
    per_key(p, &idx, anomalies, spent, analyze_key, |_| {
        Box::new(Explainer {
            keys: p.keys.clone(),
        })
    })
}

fn analyze_key(p: &Parsed, k: u32, ix: &KeyIndex<Read>) -> Result<KeyOut<()>, CheckError> {
    let txns = &p.txns;
    let kname = p.keys[k as usize].to_string();
    let mut edges = Vec::new();
    let mut found = KeyAnomalies::new(&kname);
    let rval = |t: u32, m: u16| -> Option<&Scalar> {
        match &txns[t as usize].mops[m as usize] {
            Mop::ReadReg(_, Some(v)) => v.as_ref(),
            _ => None,
        }
    };
    let Writers {
        writer,
        last: final_write,
    } = writers(p, k, &ix.writes, "written", "rw-register", |v| v)?;
    // The committed-or-unknown writers, once each (a transaction's writes are adjacent).
    let mut graph_writers: Vec<u32> = Vec::new();
    for &(t, _) in &ix.writes {
        if txns[t as usize].status.in_graph() && graph_writers.last() != Some(&t) {
            graph_writers.push(t);
        }
    }
    let mut by_version: HashMap<Option<&Scalar>, Vec<u32>> = HashMap::default();
    let initial_reads = ix
        .reads
        .iter()
        .filter(|&&(t, m)| rval(t, m).is_none())
        .count();
    let mut skipped = None;
    if initial_reads.saturating_mul(graph_writers.len()) > super::MAX_FANOUT_EDGES {
        skipped = Some(format!(
            "rw edges from {initial_reads} reads of key {kname}'s initial state to its {} writers (too many to add)",
            graph_writers.len()
        ));
        graph_writers.clear();
    }
    for &(t, m) in &ix.reads {
        let v = rval(t, m);
        if final_write.contains_key(&t) {
            by_version.entry(v).or_default().push(t);
        }
        match v {
            None => {
                for &w in &graph_writers {
                    if w != t {
                        edges.push((t, w, RW));
                    }
                }
            }
            Some(x) => match writer.get(x) {
                None => found.read(
                    "garbage-read",
                    vec![t],
                    x,
                    &format!(", but no transaction wrote {x} to {kname}"),
                ),
                Some(&(w, _)) if w == t => found.read(
                    "internal",
                    vec![t],
                    x,
                    &format!(" before it wrote {x} itself (a read of its own future write)"),
                ),
                Some(&(w, _)) if txns[w as usize].status == Status::Fail => found.read(
                    "G1a",
                    vec![t, w],
                    x,
                    ", which T2 wrote, but T2 failed (aborted read)",
                ),
                Some(&(w, wm)) => {
                    edges.push((w, t, WR));
                    if final_write.get(&w).is_some_and(|&fm| fm != wm) {
                        found.read("G1b", vec![t, w], x, &format!(
                            ", an intermediate write of T2, which wrote {kname} again later (intermediate read)"
                        ));
                    }
                }
            },
        }
    }
    found.lost_updates(
        by_version,
        |v| v.map(|x| x.to_string()).unwrap_or_else(|| "null".into()),
        &format!("wrote {kname}; each should have seen another's write"),
    );
    Ok(KeyOut {
        edges,
        anomalies: found.found,
        skipped,
        info: (),
    })
}

//! Availability per fault window: how much of the workload succeeded, and how fast, while each
//! fault was active — and outside every fault, for comparison.
//!
//! Windows come from the history's nemesis operations (docs/faults.md): a start (`start-partition`,
//! `pause`, `kill`, `bump-clock`, …) opens a window at its completion, the matching stop
//! (`stop-partition`, `resume`, `start`, `reset-clock`, …) or a `heal-all` closes it at its
//! invocation; a strobe is a window of its own. The runner's generic names work the same way
//! (`start-pause` … `stop-pause`; its final `heal` closes everything). A client operation belongs to every window its
//! invocation falls in. Pure: no I/O, no clocks.

use crate::history::{pair_positions, Op, OpType, Process};
use serde::Serialize;
use std::collections::BTreeMap;

/// One fault window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Window {
    /// The operation that opened it (`start-partition`).
    pub fault: String,
    /// Its completion value (which nodes, which grudge).
    pub value: serde_json::Value,
    /// Event indexes (not positions) that bound the window.
    pub start_index: u64,
    /// Index of the event that closed it; `None` if nothing closed it before the history ended.
    pub end_index: Option<u64>,
    /// Control-node times, ns since run start.
    pub start_ns: u64,
    /// When it closed; `None` if it was still open at the end of the history.
    pub end_ns: Option<u64>,
    /// The client operations invoked inside the window.
    pub stats: Stats,
    /// Which keys this fault stood between: set for a keyed workload (values `[key, …]`) and a
    /// fault that names its nodes (a partition's components, a kill's or pause's nodes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub crossed: Option<Crossed>,
}

/// The keys a fault window stood between. A key *crossed* a fault when the operations on it
/// invoked during the window came from nodes on different sides of it: different components of
/// a partition, or both the killed (paused, …) nodes and the others. Those are the keys on
/// which the fault could show an anomaly; a fault no key crossed tested nothing.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Crossed {
    /// Keys with an operation invoked during the window.
    pub keys: usize,
    /// Of those, keys worked from both sides.
    pub crossed: usize,
    /// The first crossing keys (at most [`CROSSED_SAMPLE`]), in the order first seen.
    pub sample: Vec<serde_json::Value>,
}

/// How many crossing keys a window names.
pub const CROSSED_SAMPLE: usize = 8;

/// Outcome counts and latency of the client operations invoked in a span of time.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Stats {
    /// Client operations invoked in the span.
    pub ops: usize,
    /// Of those, how many completed `ok`.
    pub ok: usize,
    /// Of those, how many completed `fail`.
    pub fail: usize,
    /// Of those, how many completed `info` or never completed.
    pub info: usize,
    /// ok / ops, `None` when there were no operations.
    pub ok_share: Option<f64>,
    /// Latency of ok operations, milliseconds.
    pub latency_ms_mean: Option<f64>,
    /// Median latency of ok operations, milliseconds.
    pub latency_ms_p50: Option<f64>,
    /// 99th-percentile latency of ok operations, milliseconds.
    pub latency_ms_p99: Option<f64>,
    /// Slowest ok operation, milliseconds.
    pub latency_ms_max: Option<f64>,
}

/// The availability report: every window, the time outside all windows, and per-fault totals.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Availability {
    /// Every fault window, in the order they opened.
    pub windows: Vec<Window>,
    /// Operations invoked while no fault was active.
    pub outside_faults: Stats,
    /// Operations invoked during some window of each fault kind (`start-partition`, …).
    pub by_fault: BTreeMap<String, Stats>,
}

/// Whether `stop` ends a window `start` opened. The runner records every fault family the same
/// way — `start-<family>` … `stop-<family>`, and `heal` at the end — so a new family needs no
/// entry here; the concrete names below are for histories that record a family's own
/// operations (direct nemesis calls, and runs recorded before the runner named families).
fn closes(start: &str, stop: &str) -> bool {
    let generic = matches!(
        (start.strip_prefix("start-"), stop.strip_prefix("stop-")),
        (Some(a), Some(b)) if a == b
    );
    generic
        || stop == "heal-all"
        || stop == "heal"
        || matches!(
            (start, stop),
            ("start-partition", "stop-partition")
                | ("start-packet", "stop-packet")
                | ("pause", "resume")
                | ("kill", "start")
                | ("stop", "start")
                | ("bump-clock", "reset-clock")
                | ("drift-clock", "reset-clock")
        )
}

fn opens(f: &str) -> bool {
    // `start` (restart after a kill) is a heal, not a fault.
    (f.starts_with("start-") && f != "start")
        || matches!(
            f,
            "pause" | "kill" | "stop" | "bump-clock" | "drift-clock" | "strobe-clock"
        )
}

struct Sample {
    outcome: OpType,
    latency_ns: Option<u64>,
}

fn stats(samples: &[&Sample]) -> Stats {
    let mut s = Stats {
        ops: samples.len(),
        ..Stats::default()
    };
    let mut lat: Vec<f64> = Vec::new();
    for x in samples {
        match x.outcome {
            OpType::Ok => {
                s.ok += 1;
                if let Some(l) = x.latency_ns {
                    lat.push(l as f64 / 1e6);
                }
            }
            OpType::Fail => s.fail += 1,
            _ => s.info += 1,
        }
    }
    if s.ops > 0 {
        s.ok_share = Some(s.ok as f64 / s.ops as f64);
    }
    if !lat.is_empty() {
        lat.sort_by(f64::total_cmp);
        let q = |p: f64| lat[((lat.len() - 1) as f64 * p).round() as usize];
        s.latency_ms_mean = Some(lat.iter().sum::<f64>() / lat.len() as f64);
        s.latency_ms_p50 = Some(q(0.5));
        s.latency_ms_p99 = Some(q(0.99));
        s.latency_ms_max = lat.last().copied();
    }
    s
}

/// Positions (in `ops`) of the nemesis events that are invocations. The history may mark them
/// `invoke`, or — as the runner does, Jepsen-style — record both halves as `info`: then an
/// event is an invocation unless it follows the invocation of the same `f` (the runner invokes
/// one nemesis operation at a time). Single events (`heal`, `note`) are never invocations.
pub fn nemesis_invocations(ops: &[Op]) -> std::collections::BTreeSet<usize> {
    let mut out = std::collections::BTreeSet::new();
    let mut pending: Option<&str> = None;
    for (i, op) in ops.iter().enumerate() {
        if op.process != Process::Nemesis {
            continue;
        }
        if op.kind == OpType::Invoke {
            out.insert(i);
            pending = Some(&op.f);
            continue;
        }
        if matches!(op.f.as_str(), "heal" | "heal-all" | "note") {
            continue;
        }
        if pending == Some(op.f.as_str()) {
            pending = None;
        } else {
            out.insert(i);
            pending = Some(&op.f);
        }
    }
    out
}

/// The fault kind of a scheduled nemesis operation (`start-partition`, `pause`, … → `partition`,
/// `pause`, …); `None` for stops, heals and notes.
fn fault_kind(f: &str) -> Option<&str> {
    match f {
        "pause" => Some("pause"),
        "kill" | "stop" => Some("kill"),
        "bump-clock" | "strobe-clock" | "drift-clock" => Some("clock"),
        "start" => None,
        _ => f.strip_prefix("start-"),
    }
}

/// What each fault kind did, in one run.
#[derive(Default)]
struct Tally {
    injected: u64,
    failed: u64,
    no_effect: u64,
    skipped: u64,
    errors: Vec<String>,
    notes: Vec<String>,
    skip_reasons: Vec<String>,
    moved: u64,
    moved_reasons: Vec<String>,
}

fn push_once(v: &mut Vec<String>, s: &str) {
    if !v.iter().any(|x| x == s) {
        v.push(s.to_string());
    }
}

/// What each fault kind really did over a run, from the nemesis completions: per kind, how many
/// starts took effect (`injected`), how many failed (`failed`, with their distinct `errors`),
/// how many had no effect on the target (`no_effect`, with the `notes` saying why — etcd ignores
/// libfaketime) and how many were skipped as not applicable at that moment (`skipped`, with
/// `skip_reasons` — no leader to isolate), and how many were moved to other nodes than drawn
/// (`moved`, with `moved_reasons` — a pause drawn for a node that a kill holds down).
/// `kinds` (the plan's faults) are listed even when never
/// drawn, so a fault that never happened reads 0, not "survived". Also heal errors, under
/// `"heal"`.
pub fn fault_summary(ops: &[Op], kinds: &[String]) -> serde_json::Value {
    use serde_json::{json, Map, Value};
    let mut m: BTreeMap<String, Tally> = kinds
        .iter()
        .filter(|k| k.as_str() != "none")
        .map(|k| (k.clone(), Default::default()))
        .collect();
    let invocations = nemesis_invocations(ops);
    let mut heal_errors: Vec<String> = Vec::new();
    for (i, op) in ops.iter().enumerate() {
        if op.process != Process::Nemesis || invocations.contains(&i) {
            continue;
        }
        if op.f == "heal" || op.f == "heal-all" {
            if let Some(e) = &op.error {
                push_once(&mut heal_errors, e);
            }
            continue;
        }
        let Some(kind) = fault_kind(&op.f) else {
            continue;
        };
        let t = m.entry(kind.to_string()).or_default();
        if let Some(err) = &op.error {
            t.failed += 1;
            push_once(&mut t.errors, err);
        } else if let Some(why) = skipped(op) {
            t.skipped += 1;
            push_once(&mut t.skip_reasons, why);
        } else {
            t.injected += 1;
            if let Some(why) = op.value.get("moved").and_then(Value::as_str) {
                t.moved += 1;
                push_once(&mut t.moved_reasons, why);
            }
            if op.value.get("effective") == Some(&Value::Bool(false)) {
                t.no_effect += 1;
                if let Some(n) = op.value.get("note").and_then(Value::as_str) {
                    push_once(&mut t.notes, n);
                }
            }
        }
    }
    let mut out = Map::new();
    for (k, t) in m {
        out.insert(
            k,
            json!({"injected": t.injected, "failed": t.failed, "no_effect": t.no_effect,
                   "skipped": t.skipped, "errors": t.errors, "notes": t.notes,
                   "skip_reasons": t.skip_reasons, "moved": t.moved,
                   "moved_reasons": t.moved_reasons}),
        );
    }
    if !heal_errors.is_empty() {
        out.insert("heal".into(), json!({ "errors": heal_errors }));
    }
    Value::Object(out)
}

/// Whether a nemesis completion says the fault was skipped: not applicable at that moment (a
/// fault aimed at the primaries while the target has none), so nothing was injected and
/// nothing failed. The value carries the reason under `skipped`.
pub fn skipped(op: &Op) -> Option<&str> {
    op.value.get("skipped").and_then(serde_json::Value::as_str)
}

/// The fault windows of a history, without their stats: a start opens a window at its
/// completion (when the fault is in place) unless it failed or was skipped; the matching stop
/// closes it at its invocation (when healing begins), a heal closes every open window, a strobe
/// is a window of its own. Windows never closed have no end.
pub fn fault_windows(ops: &[Op]) -> Vec<Window> {
    let mut windows: Vec<Window> = Vec::new();
    let mut open: Vec<usize> = Vec::new();
    let mut strobe_start: Option<&Op> = None;
    let invocations = nemesis_invocations(ops);
    for (i, op) in ops
        .iter()
        .enumerate()
        .filter(|(_, o)| o.process == Process::Nemesis)
    {
        match op.kind {
            _ if invocations.contains(&i) => {
                if op.f == "strobe-clock" {
                    strobe_start = Some(op);
                }
                open.retain(|&w| {
                    if closes(&windows[w].fault, &op.f) {
                        windows[w].end_index = Some(op.index);
                        windows[w].end_ns = Some(op.time);
                        false
                    } else {
                        true
                    }
                });
            }
            // The runner's single `heal` event closes everything still open.
            _ if op.f == "heal" || op.f == "heal-all" => {
                for w in open.drain(..) {
                    windows[w].end_index = Some(op.index);
                    windows[w].end_ns = Some(op.time);
                }
            }
            _ if opens(&op.f) && op.error.is_none() && skipped(op).is_none() => {
                let (start_index, start_ns) = match (op.f.as_str(), strobe_start.take()) {
                    // A strobe acts between its invocation and its completion.
                    ("strobe-clock", Some(inv)) => (inv.index, inv.time),
                    _ => (op.index, op.time),
                };
                let end = (op.f == "strobe-clock").then_some((op.index, op.time));
                windows.push(Window {
                    fault: op.f.clone(),
                    value: op.value.clone(),
                    start_index,
                    end_index: end.map(|e| e.0),
                    start_ns,
                    end_ns: end.map(|e| e.1),
                    stats: Stats::default(),
                    crossed: None,
                });
                if end.is_none() {
                    open.push(windows.len() - 1);
                }
            }
            _ => {}
        }
    }
    windows
}

/// Computes availability per fault window ([`fault_windows`]). Errors only on a malformed
/// client history (the pairing names the line).
pub fn availability(ops: &[Op]) -> Result<Availability, crate::history::HistoryError> {
    let mut windows = fault_windows(ops);
    // Client operations, by invocation. Window membership uses the invocation's event index,
    // which orders events exactly even when times tie.
    let samples: Vec<(u64, Sample)> = pair_positions(ops)
        .map_err(|e| crate::history::HistoryError::parse(e.event + 1, e.msg))?
        .into_iter()
        .map(|c| {
            let inv = &ops[c.invoke];
            let latency_ns = c.complete.map(|i| ops[i].time.saturating_sub(inv.time));
            (
                inv.index,
                Sample {
                    outcome: c.outcome,
                    latency_ns,
                },
            )
        })
        .collect();
    let inside = |w: &Window, idx: u64| idx > w.start_index && w.end_index.is_none_or(|e| idx < e);
    let mut outside: Vec<&Sample> = Vec::new();
    let mut by_fault: BTreeMap<String, Vec<&Sample>> = BTreeMap::new();
    for w in windows.iter_mut() {
        let mine: Vec<&Sample> = samples
            .iter()
            .filter(|(idx, _)| inside(w, *idx))
            .map(|(_, s)| s)
            .collect();
        w.stats = stats(&mine);
    }
    for w in windows.iter_mut() {
        w.crossed = crossed(ops, w, &inside);
    }
    for (idx, s) in &samples {
        // Each operation counts once per fault kind, even inside two windows of that kind.
        let kinds: std::collections::BTreeSet<&str> = windows
            .iter()
            .filter(|w| inside(w, *idx))
            .map(|w| w.fault.as_str())
            .collect();
        if kinds.is_empty() {
            outside.push(s);
        }
        for k in kinds {
            by_fault.entry(k.to_string()).or_default().push(s);
        }
    }
    Ok(Availability {
        windows,
        outside_faults: stats(&outside),
        by_fault: by_fault.into_iter().map(|(k, v)| (k, stats(&v))).collect(),
    })
}

/// Which side of window `w`'s fault a node is on, when the fault names its nodes: the index of
/// its partition component, or 0 for a node the fault hit and 1 for the rest.
fn side_of(w: &Window, node: &str) -> Option<usize> {
    let has = |a: &serde_json::Value| {
        a.as_array()
            .is_some_and(|a| a.iter().any(|n| n.as_str() == Some(node)))
    };
    if let Some(comps) = w.value.get("components").and_then(|c| c.as_array()) {
        return comps.iter().position(has);
    }
    let hit = w.value.get("nodes").filter(|n| n.is_array())?;
    Some(if has(hit) { 0 } else { 1 })
}

/// The key of a keyed operation's value: `[key, value]` with a string or number key.
fn key_of(op: &Op) -> Option<&serde_json::Value> {
    match op.value.as_array().map(Vec::as_slice) {
        Some([k, _]) if k.is_string() || k.is_number() => Some(k),
        _ => None,
    }
}

/// The keys window `w` stood between ([`Crossed`]); `None` for an unkeyed history or a fault
/// that names no nodes.
fn crossed(ops: &[Op], w: &Window, inside: &dyn Fn(&Window, u64) -> bool) -> Option<Crossed> {
    let names_nodes = w.value.get("components").is_some_and(|c| c.is_array())
        || w.value.get("nodes").is_some_and(|n| n.is_array());
    if !names_nodes {
        return None;
    }
    // Keys in the order first seen, each with the sides its operations came from.
    let mut order: Vec<&serde_json::Value> = Vec::new();
    let mut sides: std::collections::HashMap<String, std::collections::BTreeSet<usize>> =
        Default::default();
    for op in ops.iter().filter(|o| {
        o.kind == OpType::Invoke && matches!(o.process, Process::Client(_)) && inside(w, o.index)
    }) {
        let Some(k) = key_of(op) else { continue };
        let entry = sides.entry(k.to_string()).or_insert_with(|| {
            order.push(k);
            Default::default()
        });
        entry.extend(op.node.as_deref().and_then(|n| side_of(w, n)));
    }
    if order.is_empty() {
        return None;
    }
    let crossing: Vec<&serde_json::Value> = order
        .into_iter()
        .filter(|k| sides[&k.to_string()].len() > 1)
        .collect();
    Some(Crossed {
        keys: sides.len(),
        crossed: crossing.len(),
        sample: crossing
            .iter()
            .take(CROSSED_SAMPLE)
            .map(|k| (*k).clone())
            .collect(),
    })
}

#[cfg(test)]
mod tests;

//! The words a reader meets first: an INVALID report's opening sentence (what went wrong, where
//! and when, with a link to the evidence drawn further down), and fault windows described in
//! words ("partition primaries: n1 | n2 n3 n4 n5", "kill n2, n5") rather than as raw JSON.

use std::collections::HashMap;
use std::fmt::Write as _;

use serde_json::Value;

use super::{esc, verdict};
use crate::checker::availability::{fault_windows, Window};
use crate::history::Op;

/// A fault window's operation in words: the nemesis's own `label` when it gave one, else the
/// fault's name and the nodes it hit; a fault moved off its first aim says so.
pub(super) fn fault_words(fault: &str, value: &Value) -> String {
    let name = fault.strip_prefix("start-").unwrap_or(fault);
    let nodes: Vec<&str> = value
        .get("nodes")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let mut words = match value.get("label").and_then(Value::as_str) {
        Some(l) if !l.is_empty() => l.to_string(),
        _ if nodes.is_empty() => name.to_string(),
        _ => format!("{name} {}", nodes.join(", ")),
    };
    if let Some(m) = value.get("moved").and_then(Value::as_str) {
        let _ = write!(words, " ({m})");
    }
    words
}

/// What `node` went through in `w`, in words: cut off from the majority, on the majority side,
/// killed, paused — or just the fault, when the node is not named.
fn node_in(node: &str, w: &Window) -> String {
    let words = fault_words(&w.fault, &w.value);
    if let Some(comps) = w.value.get("components").and_then(Value::as_array) {
        let total: usize = comps.iter().filter_map(Value::as_array).map(Vec::len).sum();
        let mine = comps
            .iter()
            .filter_map(Value::as_array)
            .find(|c| c.iter().any(|n| n.as_str() == Some(node)));
        if let Some(c) = mine {
            return if c.len() * 2 <= total {
                format!("{node} was cut off from the majority ({words})")
            } else {
                format!("{node} was on the majority side ({words})")
            };
        }
    }
    let hit = w
        .value
        .get("nodes")
        .and_then(Value::as_array)
        .is_some_and(|a| a.iter().any(|n| n.as_str() == Some(node)));
    let name = w.fault.strip_prefix("start-").unwrap_or(&w.fault);
    match name {
        "kill" if hit => format!("{node} was killed ({words})"),
        "pause" if hit => format!("{node} was paused ({words})"),
        _ => format!("during {words}"),
    }
}

/// Where and when an op happened: "on n1, at 12.4 s, while n1 was cut off from the majority
/// (partition …)".
fn where_when(op: &Op, windows: &[Window], t0: u64) -> String {
    let mut s = String::new();
    if let Some(n) = &op.node {
        let _ = write!(s, " on {n}");
    }
    let _ = write!(s, " at {:.1} s", op.time.saturating_sub(t0) as f64 / 1e9);
    let active: Vec<String> = windows
        .iter()
        .filter(|w| w.start_ns <= op.time && w.end_ns.is_none_or(|e| op.time < e))
        .map(|w| match &op.node {
            Some(n) => node_in(n, w),
            None => format!("during {}", fault_words(&w.fault, &w.value)),
        })
        .collect();
    if active.is_empty() {
        s.push_str(", with no fault in force");
    } else {
        let _ = write!(s, ", while {}", active.join(" and "));
    }
    s
}

/// A JSON value as short text (strings unquoted).
fn short(v: &Value) -> String {
    let t = match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if t.chars().count() > 40 {
        format!("{}…", t.chars().take(40).collect::<String>())
    } else {
        t
    }
}

/// The anchor of a checker's section.
pub(super) fn checker_anchor(name: &str) -> String {
    let safe: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    format!("checker-{safe}")
}

/// The earliest history event an invalid checker names as evidence (bad reads, anomalous
/// transactions, errors), if any.
fn first_evidence(c: &Value) -> Option<u64> {
    let mut found: Vec<u64> = Vec::new();
    let obj = c.as_object()?;
    for (k, v) in obj {
        match (k.as_str(), v) {
            ("anomalies", Value::Object(m)) => {
                for a in m.values().filter_map(Value::as_array).flatten() {
                    for t in super::listed(a, "txns") {
                        found.extend(t.get("invoke_event").and_then(Value::as_u64));
                    }
                }
            }
            (_, Value::Array(a)) => {
                found.extend(a.iter().filter_map(|e| e.get("index")?.as_u64()));
            }
            _ => {}
        }
    }
    found.into_iter().min()
}

/// An INVALID run's opening paragraph: one sentence on the first invalid checker's finding —
/// what, where (key, node) and when, and the fault in force then — linking to its evidence
/// below. `None` unless the run is invalid.
pub(super) fn lede(r: &Value, ops: &[Op], t0: u64) -> Option<String> {
    if verdict(r.get("valid")) != "INVALID" {
        return None;
    }
    let cs = r.get("checkers").and_then(Value::as_object)?;
    let invalid: Vec<(&String, &Value)> = cs
        .iter()
        .filter(|(_, c)| verdict(c.get("valid")) == "INVALID")
        .collect();
    let (name, c) = *invalid
        .iter()
        .find(|(n, _)| n.as_str() != "stats")
        .or(invalid.first())?;
    let by_index: HashMap<u64, &Op> = ops.iter().map(|o| (o.index, o)).collect();
    let windows = fault_windows(ops);
    let mut s = String::from("<p class=\"lede\"><b>What went wrong:</b> ");
    let failures: Vec<&Value> = c
        .get("failures")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter(|f| f.get("stuck").is_some()).collect())
        .unwrap_or_default();
    if !failures.is_empty() {
        // linearizability: the failure whose stuck op came first
        let at = |f: &&Value| f.pointer("/stuck/invoke").and_then(Value::as_u64);
        let first = *failures.iter().min_by_key(|f| at(f).unwrap_or(u64::MAX))?;
        let stuck = &first["stuck"];
        let f = stuck.get("f").and_then(Value::as_str).unwrap_or("op");
        let reads = failures
            .iter()
            .filter(|x| {
                matches!(
                    x.pointer("/stuck/f").and_then(Value::as_str),
                    Some("read" | "get" | "dequeue")
                )
            })
            .count();
        let n = failures.len();
        let what = if reads == n {
            format!("{n} impossible read{}", if n == 1 { "" } else { "s" })
        } else {
            format!(
                "{n} operation{} that cannot take effect",
                if n == 1 { "" } else { "s" }
            )
        };
        let keys: Vec<String> = failures
            .iter()
            .filter_map(|x| x.get("key"))
            .map(super::jv)
            .collect();
        let key_words = match keys.len() {
            0 => String::new(),
            1 => format!(" on key {}", keys[0]),
            k if k <= 4 => format!(" on keys {}", keys.join(", ")),
            k => format!(" on {k} keys"),
        };
        let state = crate::verdict::prefix_state(first);
        let accepted = crate::verdict::stuck_accepted(first);
        let why = match (f, accepted) {
            ("read" | "get", a) if a != Some(true) => format!(
                "it returned {} where the value was {}",
                short(stuck.get("output").unwrap_or(&Value::Null)),
                short(&state)
            ),
            _ => crate::verdict::stuck_reason(&state, stuck, accepted),
        };
        let _ = write!(s, "{what}{key_words} (not linearizable). ");
        let key = first.get("key").map(super::jv);
        let _ = write!(s, "{} {f}", if n == 1 { "The" } else { "First: a" });
        if let Some(k) = &key {
            let _ = write!(s, " on key {k}");
        }
        if let Some(op) = at(&first).and_then(|i| by_index.get(&i)) {
            s.push_str(&esc(&where_when(op, &windows, t0)));
        }
        let _ = write!(s, ": {}.", esc(&why));
        let anchor = match &key {
            Some(k) => format!("key-{k}"),
            None => checker_anchor(name),
        };
        let _ = write!(
            s,
            " <a href=\"#{anchor}\">See the counterexample drawn below ↓</a>"
        );
    } else {
        let summary = c
            .get("summary")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| "the checker found the history invalid".into());
        let _ = write!(s, "{} — {}", esc(name), esc(&summary));
        match first_evidence(c).and_then(|i| by_index.get(&i)) {
            Some(op) => {
                let _ = write!(s, "; first{}.", esc(&where_when(op, &windows, t0)));
            }
            None => s.push('.'),
        }
        let _ = write!(
            s,
            " <a href=\"#{}\">See the evidence below ↓</a>",
            checker_anchor(name)
        );
    }
    let others: Vec<String> = invalid
        .iter()
        .filter(|(n, _)| *n != name)
        .map(|(n, _)| format!("<a href=\"#{}\">{}</a>", checker_anchor(n), esc(n)))
        .collect();
    if !others.is_empty() {
        let _ = write!(s, " Also invalid: {}.", others.join(", "));
    }
    s.push_str("</p>\n");
    Some(s)
}

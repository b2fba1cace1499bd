//! The counterexample of a key that could not be linearized, drawn (what Knossos' `linear.svg`
//! and Porcupine's visualizer show): the ops around the point where the search got stuck, one
//! lane per process, each op a bar from its invocation to its completion labelled with f,
//! value, result and the node it went to. The tail of the longest linearizable prefix is
//! numbered in its order, with the model state after each step and a dashed path through the
//! points where each took effect; the op that had to go next and cannot is red, with why in the
//! model's words ("state 2; read returned 4", `crate::verdict::stuck_reason`); the other ops
//! still open at that point are grey. Ops that never returned (`info`) trail off to the right.
//!
//! The x axis is history order, not time: every invocation and completion gets its own column,
//! so short ops stay readable and real-time order (what linearizability is about) is exact.
//! A consistency model's witness ([`witness`]) is drawn the same way: its operations red and
//! numbered in the order the model's reason reads them, joined by the dashed path.
//!
//! Hand-built SVG (each bar carries a hover title with its events, process and node, which a
//! chart library's output does not). Everything from the history is escaped.

use super::esc;
use crate::history::Op;
use crate::verdict;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

/// Steps of the linearized prefix drawn (its last ones).
const PREFIX_SHOWN: usize = 6;
/// Open ops drawn besides the stuck one.
const OPEN_SHOWN: usize = 8;
/// Left margin (process labels).
const LEFT: f64 = 70.0;
/// Pixels per history column, at least.
const COL: f64 = 40.0;
/// Lane height.
const LANE: f64 = 58.0;
const TOP: f64 = 8.0;
/// Rough width of a character of the 12 px bold font of the reason.
const CH: f64 = 7.4;

#[derive(Debug, Clone, PartialEq)]
enum Role {
    /// Step `n` (1-based, of the whole prefix) with the state after it.
    Linearized(usize, Value),
    /// Operation `n` (1-based) of a consistency model's witness, in the order its reason reads
    /// them.
    Witness(usize),
    Stuck(String),
    Open {
        accepted: bool,
    },
}

#[derive(Debug, Clone)]
struct Item {
    invoke: u64,
    /// The completion event, for ops that returned (`ok`); info ops have none here.
    complete: Option<u64>,
    process: String,
    label: String,
    node: String,
    role: Role,
    title: String,
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "null".to_string(),
        other => other.to_string(),
    }
}

/// `read → 4`, `write 3`, `cas 1→2`: the op in a few characters.
fn op_label(op: &Value) -> String {
    let f = op.get("f").and_then(Value::as_str).unwrap_or("op");
    let v = op.get("value").unwrap_or(&Value::Null);
    let o = op.get("output").unwrap_or(&Value::Null);
    let body = match (f, v.as_array().map(Vec::as_slice)) {
        ("read" | "get" | "dequeue", _) => format!("{f} → {}", verdict::cut(&text(o), 14)),
        ("cas", Some([a, b])) => format!(
            "cas {}→{}",
            verdict::cut(&text(a), 6),
            verdict::cut(&text(b), 6)
        ),
        _ if v.is_null() => f.to_string(),
        _ => format!("{f} {}", verdict::cut(&text(v), 14)),
    };
    body
}

fn item(op: &Value, role: Role, ops: &HashMap<u64, &Op>) -> Option<Item> {
    let invoke = op.get("invoke")?.as_u64()?;
    let kind = op.get("type").and_then(Value::as_str).unwrap_or("ok");
    let complete = op
        .get("complete")
        .and_then(Value::as_u64)
        .filter(|_| kind == "ok");
    let process = op.get("process").map(text).unwrap_or_default();
    let node = ops
        .get(&invoke)
        .and_then(|o| o.node.clone())
        .unwrap_or_default();
    let title = format!(
        "{} {} — events {}…{} · process {} · node {}",
        op_label(op),
        kind,
        invoke,
        op.get("complete")
            .and_then(Value::as_u64)
            .map(|c| c.to_string())
            .unwrap_or_else(|| "never".into()),
        process,
        if node.is_empty() { "?" } else { &node }
    );
    let mut label = format!("{} {kind}", op_label(op));
    if !node.is_empty() {
        label.push_str(&format!(" · {node}"));
    }
    Some(Item {
        invoke,
        complete,
        process,
        label,
        node,
        role,
        title,
    })
}

/// What a failure's drawing shows: the last steps of the prefix, the stuck op, the open ops.
fn items(f: &Value, ops: &HashMap<u64, &Op>) -> (Vec<Item>, usize) {
    let empty = Vec::new();
    let lin = f
        .get("linearized")
        .and_then(Value::as_array)
        .unwrap_or(&empty);
    let skip = lin.len().saturating_sub(PREFIX_SHOWN);
    let mut out: Vec<Item> = Vec::new();
    for (i, step) in lin.iter().enumerate().skip(skip) {
        let state = step.get("state").cloned().unwrap_or(Value::Null);
        if let Some(it) = step
            .get("op")
            .and_then(|o| item(o, Role::Linearized(i + 1, state), ops))
        {
            out.push(it);
        }
    }
    let stuck_at = f.pointer("/stuck/invoke").and_then(Value::as_u64);
    if let Some(s) = f.get("stuck") {
        let why = verdict::stuck_reason(&verdict::prefix_state(f), s, verdict::stuck_accepted(f));
        if let Some(it) = item(s, Role::Stuck(why), ops) {
            out.push(it);
        }
    }
    let open = f.get("open").and_then(Value::as_array).unwrap_or(&empty);
    for c in open
        .iter()
        .filter(|c| c.pointer("/op/invoke").and_then(Value::as_u64) != stuck_at)
        .take(OPEN_SHOWN)
    {
        let accepted = c
            .get("model_accepts")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        if let Some(it) = c
            .get("op")
            .and_then(|o| item(o, Role::Open { accepted }, ops))
        {
            out.push(it);
        }
    }
    (out, skip)
}

/// The drawing of one failure's counterexample, or `None` when the evidence has no stuck op.
pub fn counterexample(f: &Value, ops: &HashMap<u64, &Op>) -> Option<String> {
    f.get("stuck")?;
    let (items, hidden) = items(f, ops);
    let note = if hidden > 0 {
        format!(" (steps 1–{hidden} of the prefix are not drawn; they are in the table)")
    } else {
        String::new()
    };
    draw(&items, &note)
}

/// Witness operations of a consistency model drawn at most (the table lists them all).
pub const WITNESS_SHOWN: usize = 12;

/// The drawing of a consistency model's witness (operations as the linearizability evidence
/// gives them: `invoke`, `complete`, `process`, `type`, `f`, `value`, `output`), numbered in
/// the order its reason reads them, with a dashed path through them in that order; `None`
/// without operations.
pub fn witness(witness: &[Value], ops: &HashMap<u64, &Op>) -> Option<String> {
    let items: Vec<Item> = witness
        .iter()
        .take(WITNESS_SHOWN)
        .enumerate()
        .filter_map(|(i, o)| item(o, Role::Witness(i + 1), ops))
        .collect();
    let hidden = witness.len().saturating_sub(WITNESS_SHOWN);
    let note = if hidden > 0 {
        format!(" ({hidden} more operations of the witness are not drawn; they are in the table)")
    } else {
        String::new()
    };
    draw(&items, &note)
}

/// Draws ops in lanes (see the module docs); `note` follows the axis label.
fn draw(items: &[Item], note: &str) -> Option<String> {
    if items.is_empty() {
        return None;
    }
    // columns: every event of the drawn ops, in history order; one more for "never returned"
    let mut events: Vec<u64> = items
        .iter()
        .flat_map(|i| std::iter::once(i.invoke).chain(i.complete))
        .collect();
    events.sort_unstable();
    events.dedup();
    let col: BTreeMap<u64, usize> = events.iter().enumerate().map(|(i, e)| (*e, i)).collect();
    let ncols = events.len() + 1;
    let width = (LEFT + COL * ncols as f64 + 40.0).max(1100.0);
    let cw = (width - LEFT - 40.0) / ncols as f64;
    let x_of = |c: usize| LEFT + cw * c as f64 + cw * 0.15;
    let x_end = |c: usize| LEFT + cw * c as f64 + cw * 0.85;
    let right = LEFT + cw * ncols as f64;

    // lanes: processes in order of their first drawn invocation
    let mut lanes: Vec<String> = Vec::new();
    let mut sorted: Vec<&Item> = items.iter().collect();
    sorted.sort_by_key(|i| i.invoke);
    for it in &sorted {
        if !lanes.contains(&it.process) {
            lanes.push(it.process.clone());
        }
    }
    let lane_of = |p: &str| lanes.iter().position(|l| l == p).unwrap_or(0);
    let height = TOP + LANE * lanes.len() as f64 + 26.0;

    // where each linearized op took effect: non-decreasing, inside its bar
    let mut lin: Vec<(&Item, usize)> = items
        .iter()
        .filter_map(|i| match i.role {
            Role::Linearized(n, _) | Role::Witness(n) => Some((i, n)),
            _ => None,
        })
        .collect();
    lin.sort_by_key(|(_, n)| *n);
    let mut points: Vec<(f64, f64, &Item)> = Vec::new();
    let mut last_x = 0.0f64;
    for (it, _) in &lin {
        let x1 = x_of(col[&it.invoke]);
        let x2 = it.complete.map(|c| x_end(col[&c])).unwrap_or(right);
        let x = (last_x + cw * 0.3).max(x1 + 8.0).min(x2 - 8.0).max(x1);
        last_x = x;
        let y = TOP + LANE * lane_of(&it.process) as f64 + 27.0;
        points.push((x, y, it));
    }

    let mut s = String::with_capacity(8 * 1024);
    let _ = write!(
        s,
        "<svg class=\"hb cx\" width=\"{width:.0}\" height=\"{height:.0}\" \
         viewBox=\"0 0 {width:.0} {height:.0}\" xmlns=\"http://www.w3.org/2000/svg\">\
         <defs><pattern id=\"never\" width=\"6\" height=\"6\" patternUnits=\"userSpaceOnUse\">\
         <path d=\"M0,6L6,0\" stroke=\"#8a5db5\" stroke-width=\"1\"/></pattern></defs>"
    );
    // lanes
    for (i, p) in lanes.iter().enumerate() {
        let y = TOP + LANE * i as f64;
        let node = items
            .iter()
            .find(|it| &it.process == p && !it.node.is_empty())
            .map(|it| it.node.as_str())
            .unwrap_or("");
        let _ = write!(
            s,
            "<rect x=\"0\" y=\"{y:.1}\" width=\"{width:.0}\" height=\"{LANE}\" fill=\"{}\"/>\
             <text x=\"6\" y=\"{:.1}\" class=\"lp\">process {}</text>\
             <text x=\"6\" y=\"{:.1}\" class=\"ln\">{}</text>",
            if i % 2 == 0 { "#fafafa" } else { "#ffffff" },
            y + 26.0,
            esc(p),
            y + 40.0,
            esc(node)
        );
    }
    // the path through the linearization points, under the bars
    if points.len() > 1 {
        let d: Vec<String> = points
            .iter()
            .map(|(x, y, _)| format!("{x:.1},{y:.1}"))
            .collect();
        let _ = write!(s, "<polyline class=\"lpath\" points=\"{}\"/>", d.join(" "));
    }
    // bars, labels
    for it in items {
        let l = lane_of(&it.process) as f64;
        let y = TOP + LANE * l;
        let x1 = x_of(col[&it.invoke]);
        let (x2, never) = match it.complete {
            Some(c) => (x_end(col[&c]), false),
            None => (right, true),
        };
        let class = match &it.role {
            Role::Linearized(..) => "blin",
            Role::Stuck(_) | Role::Witness(_) => "bstuck",
            Role::Open { .. } => "bopen",
        };
        let fill = if never {
            " style=\"fill:url(#never)\""
        } else {
            ""
        };
        let _ = write!(
            s,
            "<rect class=\"{class}\" x=\"{x1:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"12\" rx=\"2\"{fill}>\
             <title>{}</title></rect>",
            y + 21.0,
            (x2 - x1).max(4.0),
            esc(&it.title)
        );
        if never {
            let _ = write!(
                s,
                "<text x=\"{:.1}\" y=\"{:.1}\" class=\"nv\" text-anchor=\"end\">never returned →</text>",
                right - 2.0,
                y + 30.5
            );
        }
        let label_class = if matches!(it.role, Role::Stuck(_)) {
            "lbs"
        } else {
            "lb"
        };
        let _ = write!(
            s,
            "<text x=\"{x1:.1}\" y=\"{:.1}\" class=\"{label_class}\">{}</text>",
            y + 16.0,
            esc(&it.label)
        );
        match &it.role {
            Role::Stuck(why) => {
                // the reason, under the bar, kept inside the picture
                let w = (why.chars().count() + 22) as f64 * CH;
                let x = x1.min(width - w - 6.0).max(LEFT);
                let _ = write!(
                    s,
                    "<text x=\"{x:.1}\" y=\"{:.1}\" class=\"why\">✗ cannot take effect: {}</text>",
                    y + 48.0,
                    esc(why)
                );
            }
            Role::Open { accepted } => {
                let _ = write!(
                    s,
                    "<text x=\"{x1:.1}\" y=\"{:.1}\" class=\"st\">open{}</text>",
                    y + 48.0,
                    if *accepted {
                        ""
                    } else {
                        " · not legal here either"
                    }
                );
            }
            Role::Linearized(..) | Role::Witness(_) => {}
        }
    }
    // the linearization points, numbered, with the state after each
    for (x, y, it) in &points {
        let (n, state) = match &it.role {
            Role::Linearized(n, state) => (*n, Some(state)),
            Role::Witness(n) => (*n, None),
            _ => continue,
        };
        let _ = write!(
            s,
            "<circle class=\"lpt\" cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"8\"/>\
             <text x=\"{x:.1}\" y=\"{:.1}\" class=\"lnum\" text-anchor=\"middle\">{n}</text>",
            y + 3.5,
        );
        if let Some(state) = state {
            let _ = write!(
                s,
                "<text x=\"{x:.1}\" y=\"{:.1}\" class=\"st\" text-anchor=\"middle\">state {}</text>",
                y + 21.0,
                esc(&verdict::cut(&text(state), 18))
            );
        }
    }
    let _ = write!(
        s,
        "<text x=\"{LEFT}\" y=\"{:.1}\" class=\"ax\">history order →{}</text></svg>",
        height - 8.0,
        esc(note)
    );
    Some(s)
}

/// CSS of the drawing (classes above), for the report's style sheet.
pub const CSS: &str = ".cx text{font:11px sans-serif;fill:#333}.cx .lp{font-weight:bold}\
.cx .ln{fill:#777}.cx .lb{fill:#222}.cx .lbs{fill:#c0001a;font-weight:bold}\
.cx .why{fill:#c0001a;font-weight:bold;font-size:12px}.cx .st{fill:#1f5fa8;font-size:10px}\
.cx .nv{fill:#8a5db5;font-size:10px}.cx .ax{fill:#888;font-size:10px}\
.cx .blin{fill:#8fb8e8;stroke:#1f5fa8}.cx .bstuck{fill:#e0242f;stroke:#800}\
.cx .bopen{fill:#d5d5d5;stroke:#888}.cx .lpath{fill:none;stroke:#1f5fa8;stroke-width:1.5;\
stroke-dasharray:4 3}.cx .lpt{fill:#1f5fa8;stroke:#fff;stroke-width:1.5}\
.cx .lnum{fill:#fff;font-weight:bold;font-size:10px}";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{OpType, Process};
    use serde_json::json;

    #[test]
    fn the_stuck_op_is_red_with_why_and_the_prefix_is_numbered() {
        let f = json!({
            "key": 1, "valid": false, "initial_state": null,
            "linearized": [
                {"op": {"invoke": 0, "complete": 1, "process": "0", "type": "ok", "f": "write",
                        "value": 2, "output": 2}, "state": 2},
                {"op": {"invoke": 2, "complete": 5, "process": "1", "type": "info", "f": "write",
                        "value": 3, "output": 3}, "state": 3},
            ],
            "stuck": {"invoke": 3, "complete": 4, "process": "2", "type": "ok", "f": "read",
                      "value": null, "output": "<4>"},
            "open": [{"op": {"invoke": 3, "complete": 4, "process": "2", "type": "ok",
                             "f": "read", "value": null, "output": "<4>"},
                      "model_accepts": false}]
        });
        let mut ops: Vec<Op> = Vec::new();
        for (i, node) in ["n1", "n1", "n2", "n3", "n3", "n2"].iter().enumerate() {
            let mut o = Op::new(Process::Client(0), OpType::Invoke, "read", Value::Null);
            o.index = i as u64;
            o.node = Some(node.to_string());
            ops.push(o);
        }
        let map: HashMap<u64, &Op> = ops.iter().map(|o| (o.index, o)).collect();
        let svg = counterexample(&f, &map).unwrap();
        assert!(
            svg.contains("cannot take effect: state 3; read returned &lt;4&gt;"),
            "{svg}"
        );
        assert!(svg.contains("class=\"bstuck\""));
        assert!(
            svg.contains("read → &lt;4&gt; ok · n3"),
            "labels carry f, result and node"
        );
        assert!(svg.contains("write 2 ok · n1"));
        assert!(svg.contains("never returned"), "the info write trails off");
        assert!(svg.contains(">state 3<"), "state after each step");
        assert_eq!(svg.matches("class=\"lpt\"").count(), 2);
        assert!(!svg.contains("<4>"), "escaped");
        assert!(counterexample(&json!({"valid": "unknown"}), &map).is_none());
    }
}

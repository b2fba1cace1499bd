//! `report.html`: one self-contained HTML page per run, rendered from `results.json` and the
//! history. It owns presentation only: no checking happens here, and [`render`] does no I/O.
//!
//! The page answers "is it valid, and if not, where?" first (header verdict and expectation,
//! the register consistency models requested with each violated model's witness drawn, then
//! each checker's evidence — for linearizability the counterexample drawn, [`svg`]), then
//! shows the run over time: a per-process timeline with fault windows shaded and the ops named
//! by invalid checkers highlighted, the charts ([`charts`], drawn with `plotters`: latency,
//! latency quantiles, throughput, clock offsets), and the availability-per-fault-window table.
//! Everything is inline (CSS, SVG, no scripts, no external URLs) so the file can be mailed or
//! attached to a bug as is. All history data is escaped.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::path::Path;

use serde_json::Value;

use crate::history::{Op, OpType, Process};

mod charts;
mod lede;
mod svg;

/// Histories with more ops than this are downsampled in the timeline and latency charts.
const MAX_BARS: usize = 20_000;
/// Latency points drawn at most.
const MAX_POINTS: usize = 5_000;
/// Process lanes in the timeline at most (the most active ones).
const MAX_LANES: usize = 60;
/// Items shown from a long list of evidence before "… and N more".
const LIST_CAP: usize = 50;
/// Chart width in SVG user units.
const W: f64 = 1100.0;
/// Left margin of every chart (lane labels, axis labels).
const ML: f64 = 60.0;

const CSS: &str =
    "body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222;max-width:1200px}\
h1{margin:.2em 0}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:1.6em}\
.v{font-weight:bold;padding:.1em .5em;border-radius:4px;color:#fff}\
.VALID{background:#2a7d2a}.INVALID{background:#c0262d}.UNKNOWN{background:#b27a00}\
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ddd;padding:2px 6px;\
text-align:left;vertical-align:top;font-size:13px}th{background:#f3f3f3}\
tr.stuck td{background:#ffd6d6;font-weight:bold}code,pre{font:12px ui-monospace,monospace}\
pre{background:#f6f6f6;padding:.5em;overflow:auto;max-height:24em}.kv span{margin-right:1.2em}\
.muted{color:#777}svg{display:block;margin:.5em 0;background:#fff;border:1px solid #eee}\
.hb text{font:10px sans-serif;fill:#444}.o{fill:#3b8f3b}.f{fill:#d08a2c}.i{fill:#8a5db5}\
.hl{fill:#e00;stroke:#000;stroke-width:1}.fw{fill:#f3c0c0;opacity:.45}.fl{fill:#a00}\
.ax{stroke:#999;stroke-width:.5}.lo{stroke:#3b8f3b;fill:none}.lf{stroke:#d08a2c;fill:none}\
.li{stroke:#8a5db5;fill:none}.ed{stroke:#555;fill:none;marker-end:url(#ah)}\
.wide{overflow-x:auto}.why{color:#c0001a;font-weight:bold}.chart svg{border:1px solid #eee}\
.PASS{background:#2a7d2a}.FAIL{background:#c0262d}.ERROR{background:#555}\
.lede{font-size:16px;background:#fff4f4;border-left:4px solid #c0262d;padding:.5em .8em;\
max-width:60em}";

/// The page's style sheet: the shared rules, then the counterexample drawing's.
fn css() -> String {
    format!("{CSS}{}", svg::CSS)
}

/// Renders the whole page. Pure: the same inputs give the same string.
pub fn render(results: &Value, ops: &[Op]) -> String {
    let hl = highlighted(results);
    let bars = bars(ops);
    let faults = fault_windows(ops);
    let mut h = String::with_capacity(64 * 1024);
    let name = results
        .pointer("/plan/name")
        .and_then(Value::as_str)
        .unwrap_or("netsplit run");
    let _ = writeln!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>{} — netsplit report</title><style>{}</style></head><body>",
        esc(name),
        css()
    );
    let by_index: HashMap<u64, &Op> = ops.iter().map(|o| (o.index, o)).collect();
    let span = time_span(ops);
    header(&mut h, results, name, lede::lede(results, ops, span.0));
    consistency_models(&mut h, results, &by_index);
    checkers(&mut h, results, &by_index);
    timeline(&mut h, &bars, &faults, &hl, span);
    h.push_str(
        "<h2 id=\"latency\">Latency</h2>\n<p class=\"muted\">Each completed op at its invocation time, \
        log scale; shaded: fault windows; red rings: ops named by an invalid checker.</p>\n",
    );
    charts::push(
        &mut h,
        charts::latency_raw(&bars, &faults, &hl, span),
        "no completed operations",
    );
    h.push_str(
        "<h2 id=\"quantiles\">Latency quantiles</h2>\n<p class=\"muted\">p50, p95 and p99 latency of the ops \
        invoked in each time bucket; a gap: nothing completed then.</p>\n",
    );
    charts::push(
        &mut h,
        charts::latency_quantiles(&bars, &faults, span),
        "no completed operations",
    );
    h.push_str("<h2 id=\"throughput\">Throughput</h2>\n<p class=\"muted\">Completions per second by outcome.</p>\n");
    charts::push(
        &mut h,
        charts::throughput(&bars, &faults, span),
        "no completed operations",
    );
    if let Some((chart, measured)) = charts::clock_offsets(ops, &faults, span) {
        let _ = writeln!(
            h,
            "<h2 id=\"clock\">Clock offsets</h2>\n<p class=\"muted\">Each node's clock against the control \
             node's, {}; a heal resets them to 0.{}</p>",
            if measured {
                "as measured after each clock fault (real clocks)"
            } else {
                "as the nemesis set them (libfaketime)"
            },
            clock_note(results)
        );
        charts::push(&mut h, Some(chart), "");
    }
    availability(&mut h, results, span.0);
    h.push_str("</body></html>\n");
    h
}

/// Writes `<run_dir>/report.html`.
pub fn write(run_dir: &Path, results: &Value, ops: &[Op]) -> std::io::Result<()> {
    std::fs::write(run_dir.join("report.html"), render(results, ops))
}

use crate::esc;

/// A JSON value as short escaped text (strings unquoted); long values are truncated.
fn jv(v: &Value) -> String {
    let s = match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if s.chars().count() > 200 {
        let cut: String = s.chars().take(200).collect();
        format!("{}…", esc(&cut))
    } else {
        esc(&s)
    }
}

/// A figure: a JSON value as [`jv`] writes it, `null` (nothing measured) as [`NONE`].
fn fig(v: &Value) -> String {
    if v.is_null() {
        NONE.to_string()
    } else {
        jv(v)
    }
}

fn verdict(v: Option<&Value>) -> &'static str {
    match v {
        Some(Value::Bool(true)) => "VALID",
        Some(Value::Bool(false)) => "INVALID",
        _ => "UNKNOWN",
    }
}

fn badge(v: Option<&Value>) -> String {
    let s = verdict(v);
    format!("<span class=\"v {s}\">{s}</span>")
}

fn header(h: &mut String, r: &Value, name: &str, lede: Option<String>) {
    let _ = writeln!(h, "<h1>{} {}</h1>", esc(name), badge(r.get("valid")));
    // an INVALID run opens with what went wrong, in one sentence
    h.push_str(&lede.unwrap_or_default());
    h.push_str("<p class=\"kv\">");
    for (label, key) in [
        ("ops", "ops"),
        ("events", "events"),
        ("elapsed s", "elapsed_s"),
    ] {
        if let Some(v) = r.get(key) {
            let _ = write!(h, "<span><b>{label}</b> {}</span>", jv(v));
        }
    }
    if r.get("interrupted").and_then(Value::as_bool) == Some(true) {
        h.push_str("<span class=\"v UNKNOWN\">INTERRUPTED</span>");
    }
    let outcome = crate::verdict::Outcome::of_results(r);
    let _ = write!(
        h,
        "<span><b>expected</b> {} <span class=\"v {}\">{}</span></span>",
        crate::verdict::expected_of(r),
        outcome.as_str().to_uppercase(),
        outcome.as_str().to_uppercase()
    );
    h.push_str("</p>\n<p class=\"kv\">");
    if let Some(plan) = r.get("plan").and_then(Value::as_object) {
        for key in [
            "target",
            "workload",
            "nemesis",
            "concurrency",
            "rate",
            "time_limit",
            "seed",
        ] {
            if let Some(v) = plan.get(key) {
                let text = match v {
                    Value::Array(a) if a.is_empty() => "none".to_string(),
                    Value::Array(a) => a.iter().map(jv).collect::<Vec<_>>().join(", "),
                    other => jv(other),
                };
                let _ = write!(h, "<span><b>{key}</b> {text}</span>");
            }
        }
    }
    if let Some(d) = r.get("run_dir") {
        let _ = write!(h, "<span class=\"muted\">{}</span>", jv(d));
    }
    h.push_str("</p>\n");
    if let Some(e) = r.get("error").and_then(Value::as_str) {
        let _ = writeln!(h, "<p><b>run error</b> <code>{}</code></p>", esc(e));
    }
    faults_table(h, r.get("faults"));
}

/// What each fault kind of the plan really did, so that a VALID is never read as "survived" a
/// fault that failed, had no effect, or never happened.
fn faults_table(h: &mut String, faults: Option<&Value>) {
    let Some(m) = faults.and_then(Value::as_object).filter(|m| !m.is_empty()) else {
        return;
    };
    h.push_str(
        "<h2 id=\"faults\">Faults</h2>\n<table><tr><th>fault</th><th>injected</th><th>no effect</th>\
         <th>skipped</th><th>failed</th><th>why</th></tr>\n",
    );
    let n = |c: &Value, k: &str| c.get(k).and_then(Value::as_u64).unwrap_or(0);
    for (kind, c) in m {
        let why: Vec<String> = ["errors", "notes", "skip_reasons"]
            .iter()
            .filter_map(|k| c.get(*k).and_then(Value::as_array))
            .flatten()
            .filter_map(Value::as_str)
            .map(esc)
            .collect();
        // `heal` has only its errors.
        let failed = if kind == "heal" {
            c.get("errors")
                .and_then(Value::as_array)
                .map_or(0, Vec::len) as u64
        } else {
            n(c, "failed")
        };
        let class = if failed > 0 { " class=\"stuck\"" } else { "" };
        let _ = writeln!(
            h,
            "<tr{class}><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{failed}</td><td>{}</td></tr>",
            esc(kind),
            n(c, "injected"),
            n(c, "no_effect"),
            n(c, "skipped"),
            why.join("<br>")
        );
    }
    h.push_str("</table>\n");
}

/// The items of the array `v[key]` (none when it is missing or not an array).
fn listed<'a>(v: &'a Value, key: &str) -> impl Iterator<Item = &'a Value> {
    v.get(key).and_then(Value::as_array).into_iter().flatten()
}

/// Event indices named as evidence by invalid checkers (stuck ops, anomaly transactions, bad
/// reads), drawn highlighted in the charts.
fn highlighted(r: &Value) -> HashSet<u64> {
    let mut out = HashSet::new();
    let Some(cs) = r.get("checkers").and_then(Value::as_object) else {
        return out;
    };
    let mut add = |v: Option<&Value>| {
        if let Some(i) = v.and_then(Value::as_u64) {
            out.insert(i);
        }
    };
    for c in cs.values() {
        if c.get("valid") == Some(&Value::Bool(true)) {
            continue;
        }
        for f in listed(c, "failures") {
            add(f.pointer("/stuck/invoke"));
            add(f.pointer("/stuck/complete"));
        }
        for list in c
            .get("anomalies")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            for a in list.1.as_array().into_iter().flatten() {
                for t in listed(a, "txns") {
                    add(t.get("invoke_event"));
                    add(t.get("complete_event"));
                }
            }
        }
        for e in listed(c, "errors") {
            add(e.get("index"));
        }
        // consistency models: the witnesses of the violated ones
        for m in c
            .get("models")
            .and_then(Value::as_object)
            .into_iter()
            .flat_map(|m| m.values())
            .filter(|m| m.get("valid") == Some(&Value::Bool(false)))
        {
            for o in listed(m, "witness") {
                add(o.get("invoke"));
                add(o.get("complete"));
            }
        }
    }
    out
}

/// The register consistency models (the `models` checker, `checker::models`): a table of
/// each requested model's verdict, strongest first, then each violated model's witness drawn
/// the way the linearizability counterexample is ([`svg::witness`]) and listed.
fn consistency_models(h: &mut String, r: &Value, ops: &HashMap<u64, &Op>) {
    let Some(c) = r.pointer("/checkers/models") else {
        return;
    };
    let Some(models) = c.get("models").and_then(Value::as_object) else {
        return;
    };
    h.push_str("<h2 id=\"models\">Consistency models</h2>\n");
    if let Some(sum) = c.get("summary").and_then(Value::as_str) {
        let _ = writeln!(h, "<p><b>{}</b></p>", esc(sum));
    }
    if let Some(st) = c.get("strongest").and_then(Value::as_str) {
        let _ = writeln!(
            h,
            "<p>The strongest requested model that holds: <b>{}</b>.</p>",
            esc(st)
        );
    } else {
        h.push_str("<p>None of the requested models is known to hold.</p>\n");
    }
    h.push_str("<table><tr><th>model</th><th>verdict</th><th>why</th></tr>\n");
    for (name, m) in models {
        let v = m.get("valid");
        let why = m.get("reason").and_then(Value::as_str).unwrap_or("");
        let cell = if v == Some(&Value::Bool(false)) {
            format!("<a href=\"#model-{}\">{}</a>", esc(name), esc(why))
        } else {
            esc(why)
        };
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{cell}</td></tr>",
            esc(name),
            badge(v)
        );
    }
    h.push_str(
        "</table>\n<p class=\"muted\">Each model is checked over all keys together; unknown: \
         not decided within the check's budget (never counted as holding). \
         docs/consistency-models.md defines each.</p>\n",
    );
    for (name, m) in models {
        if m.get("valid") != Some(&Value::Bool(false)) {
            continue;
        }
        let _ = writeln!(
            h,
            "<h3 id=\"model-{}\">not {}</h3>\n<p class=\"why\">{}</p>",
            esc(name),
            esc(name),
            esc(m.get("reason").and_then(Value::as_str).unwrap_or(""))
        );
        let empty = Vec::new();
        let wit = m.get("witness").and_then(Value::as_array).unwrap_or(&empty);
        if name == "linearizable" {
            h.push_str(
                "<p>The counterexample is drawn under <a href=\"#checker-linear\">linear</a> \
                 below.</p>\n",
            );
            continue;
        }
        if let Some(pic) = svg::witness(wit, ops) {
            h.push_str(
                "<p class=\"muted\">One lane per process; each bar runs from an op's invocation to \
                 its completion (x: history order); red, numbered: the witness's operations in \
                 the order the reason above reads them; hatched: never returned. Hover a bar \
                 for its events.</p>\n<div class=\"wide\">",
            );
            h.push_str(&pic);
            h.push_str("</div>\n");
        }
        h.push_str(
            "<table><tr><th>#</th><th>events</th><th>process</th><th>node</th><th>type</th>\
             <th>f</th><th>value</th><th>output</th></tr>\n",
        );
        for (i, op) in wit.iter().take(LIST_CAP).enumerate() {
            let _ = writeln!(h, "<tr><td>{}</td>{}</tr>", i + 1, op_cells(op, ops));
        }
        h.push_str("</table>\n");
        if wit.len() > LIST_CAP {
            let _ = writeln!(
                h,
                "<p class=\"muted\">… and {} more</p>",
                wit.len() - LIST_CAP
            );
        }
    }
}

fn checkers(h: &mut String, r: &Value, ops: &HashMap<u64, &Op>) {
    let Some(cs) = r.get("checkers").and_then(Value::as_object) else {
        h.push_str("<h2 id=\"checkers\">Checkers</h2><p class=\"muted\">no checker results</p>\n");
        return;
    };
    h.push_str("<h2 id=\"checkers\">Checkers</h2>\n");
    // Invalid ones first: they are what the reader came for.
    let mut order: Vec<(&String, &Value)> = cs.iter().collect();
    order.sort_by_key(|(_, c)| match verdict(c.get("valid")) {
        "INVALID" => 0,
        "UNKNOWN" => 1,
        _ => 2,
    });
    for (name, c) in order {
        let _ = write!(
            h,
            "<h3 id=\"{}\">{} {}</h3>\n<p class=\"kv\">",
            lede::checker_anchor(name),
            esc(name),
            badge(c.get("valid"))
        );
        let Some(obj) = c.as_object() else {
            let _ = write!(h, "{}</p>", jv(c));
            continue;
        };
        for (k, v) in obj {
            if k != "valid" && !v.is_array() && !v.is_object() {
                let _ = write!(h, "<span><b>{}</b> {}</span>", esc(k), fig(v));
            }
        }
        h.push_str("</p>\n");
        for (k, v) in obj {
            match (k.as_str(), v) {
                ("failures", Value::Array(fs)) => fs.iter().for_each(|f| linear_failure(h, f, ops)),
                ("models", Value::Object(_)) if name == "models" => h.push_str(
                    "<p>Per-model verdicts and witnesses: <a href=\"#models\">Consistency \
                     models</a> above.</p>\n",
                ),
                ("anomalies", Value::Object(m)) => txn_anomalies(h, obj, m),
                ("by_f", Value::Object(m)) => by_f(h, m),
                ("windows", _) => {} // availability: its own section below
                ("outside_faults", Value::Object(_)) => {} // with by_fault, as one table
                ("by_fault", Value::Object(m)) => {
                    let mut rows: Vec<(String, &Value)> = Vec::new();
                    if let Some(o) = obj.get("outside_faults") {
                        rows.push(("outside every fault".into(), o));
                    }
                    rows.extend(m.iter().map(|(k, v)| (format!("during {k}"), v)));
                    stats_table(h, &rows);
                }
                (_, Value::Array(a)) if !a.is_empty() => evidence_list(h, k, a, obj, ops),
                (_, Value::Object(m)) if !m.is_empty() && k != "latency_ms" => {
                    let _ = writeln!(h, "<p><b>{}</b> <code>{}</code></p>", esc(k), jv(v));
                }
                _ => {}
            }
        }
    }
}

/// A list of lost/unexpected elements or a table of bad reads, capped at [`LIST_CAP`].
/// Rows that name a history event (`index`) gain the node that op went to.
fn evidence_list(
    h: &mut String,
    key: &str,
    a: &[Value],
    obj: &serde_json::Map<String, Value>,
    ops: &HashMap<u64, &Op>,
) {
    let total = obj
        .get(&format!("{key}_count"))
        .and_then(Value::as_u64)
        .unwrap_or(a.len() as u64);
    let shown = &a[..a.len().min(LIST_CAP)];
    let more = total.saturating_sub(shown.len() as u64);
    let _ = writeln!(h, "<p><b>{}</b> ({total})</p>", esc(key));
    let cols: Vec<String> = match shown.first() {
        Some(Value::Object(m)) => m.keys().cloned().collect(),
        _ => Vec::new(),
    };
    if cols.is_empty() {
        let items: Vec<String> = shown.iter().map(jv).collect();
        let _ = writeln!(h, "<pre>{}</pre>", items.join(", "));
    } else {
        let with_node = cols.iter().any(|c| c == "index");
        h.push_str("<table><tr>");
        for c in &cols {
            let _ = write!(h, "<th>{}</th>", esc(c));
        }
        if with_node {
            h.push_str("<th>node</th>");
        }
        h.push_str("</tr>\n");
        for row in shown {
            h.push_str("<tr>");
            for c in &cols {
                let _ = write!(h, "<td>{}</td>", row.get(c).map(jv).unwrap_or_default());
            }
            if with_node {
                let _ = write!(h, "<td>{}</td>", node_at(ops, row.get("index")));
            }
            h.push_str("</tr>\n");
        }
        h.push_str("</table>\n");
    }
    if more > 0 {
        let _ = writeln!(h, "<p class=\"muted\">… and {more} more</p>");
    }
}

fn by_f(h: &mut String, m: &serde_json::Map<String, Value>) {
    h.push_str(
        "<table><tr><th>f</th><th>count</th><th>ok</th><th>fail</th><th>info</th>\
                <th>p50 ms</th><th>p90 ms</th><th>p99 ms</th><th>max ms</th></tr>\n",
    );
    for (f, s) in m {
        let _ = write!(h, "<tr><td>{}</td>", esc(f));
        for k in ["count", "ok", "fail", "info"] {
            let _ = write!(h, "<td>{}</td>", s.get(k).map(fig).unwrap_or_default());
        }
        for k in ["p50", "p90", "p99", "max"] {
            let v = s
                .pointer(&format!("/latency_ms/{k}"))
                .and_then(Value::as_f64);
            let _ = write!(
                h,
                "<td>{}</td>",
                v.map(|x| format!("{x:.1}"))
                    .unwrap_or_else(|| NONE.to_string())
            );
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</table>\n");
}

/// The node the op at a history index went to (escaped; empty when unknown).
fn node_at(ops: &HashMap<u64, &Op>, index: Option<&Value>) -> String {
    index
        .and_then(Value::as_u64)
        .and_then(|i| ops.get(&i))
        .and_then(|o| o.node.as_deref())
        .map(esc)
        .unwrap_or_default()
}

/// A table row for one op as the linearizability checker reports it, with the node it went to.
fn op_row(h: &mut String, op: &Value, extra: &str, class: &str, ops: &HashMap<u64, &Op>) {
    let _ = writeln!(
        h,
        "<tr class=\"{class}\">{}<td>{extra}</td></tr>",
        op_cells(op, ops)
    );
}

/// The cells of an op as a checker reports it: its events, process, the node it went to, type,
/// f, value and output.
fn op_cells(op: &Value, ops: &HashMap<u64, &Op>) -> String {
    let g = |k: &str| op.get(k).map(jv).unwrap_or_default();
    format!(
        "<td>{}…{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>",
        g("invoke"),
        g("complete"),
        g("process"),
        node_at(ops, op.get("invoke")),
        g("type"),
        g("f"),
        g("value"),
        g("output"),
    )
}

fn linear_failure(h: &mut String, f: &Value, ops: &HashMap<u64, &Op>) {
    let _ = writeln!(
        h,
        "<h4 id=\"key-{}\">key {} — {} ops, initial state {}</h4>",
        f.get("key").map(jv).unwrap_or_default(),
        f.get("key").map(jv).unwrap_or_default(),
        f.get("ops").map(jv).unwrap_or_default(),
        f.get("initial_state").map(jv).unwrap_or_default(),
    );
    let why = f.get("stuck").map(|s| {
        crate::verdict::stuck_reason(
            &crate::verdict::prefix_state(f),
            s,
            crate::verdict::stuck_accepted(f),
        )
    });
    if let Some(why) = &why {
        let _ = writeln!(
            h,
            "<p>The op that cannot take effect: <span class=\"why\">{} — {}</span></p>",
            esc(&crate::verdict::op_words(&f["stuck"])),
            esc(why)
        );
    }
    if let Some(pic) = svg::counterexample(f, ops) {
        h.push_str(
            "<p class=\"muted\">One lane per process; each bar runs from an op's invocation to its \
             completion (x: history order). Blue, numbered: the end of the longest linearizable \
             prefix in the order it took effect, with the model state after each step; red: the \
             op that had to go next and cannot; grey: ops still open there; hatched: never \
             returned. Hover a bar for its events.</p>\n<div class=\"wide\">",
        );
        h.push_str(&pic);
        h.push_str("</div>\n");
    }
    h.push_str(
        "<table><tr><th>events</th><th>process</th><th>node</th><th>type</th><th>f</th>\
                <th>value</th><th>output</th><th>state after</th></tr>\n",
    );
    let lin = f.get("linearized").and_then(Value::as_array);
    let lin = lin.map(Vec::as_slice).unwrap_or_default();
    if lin.len() > LIST_CAP {
        let _ = writeln!(
            h,
            "<tr><td colspan=\"8\" class=\"muted\">… {} earlier linearized ops</td></tr>",
            lin.len() - LIST_CAP
        );
    }
    for step in &lin[lin.len().saturating_sub(LIST_CAP)..] {
        let state = step.get("state").map(jv).unwrap_or_default();
        op_row(h, step.get("op").unwrap_or(&Value::Null), &state, "", ops);
    }
    if let Some(stuck) = f.get("stuck") {
        let what = format!(
            "STUCK: {}",
            esc(why.as_deref().unwrap_or("no legal next state"))
        );
        op_row(h, stuck, &what, "stuck", ops);
    }
    h.push_str("</table>\n");
    if let Some(open) = f
        .get("open")
        .and_then(Value::as_array)
        .filter(|o| !o.is_empty())
    {
        let _ = writeln!(h, "<p>open ops at the stuck point ({})</p>", open.len());
        h.push_str(
            "<table><tr><th>events</th><th>process</th><th>node</th><th>type</th><th>f</th>\
                    <th>value</th><th>output</th><th>model accepts</th></tr>\n",
        );
        for o in open.iter().take(LIST_CAP) {
            let acc = o.get("model_accepts").map(jv).unwrap_or_default();
            op_row(h, o.get("op").unwrap_or(&Value::Null), &acc, "", ops);
        }
        h.push_str("</table>\n");
    }
}

fn txn_anomalies(
    h: &mut String,
    obj: &serde_json::Map<String, Value>,
    m: &serde_json::Map<String, Value>,
) {
    for key in ["not", "weakest_not", "unknown"] {
        if let Some(a) = obj
            .get(key)
            .and_then(Value::as_array)
            .filter(|a| !a.is_empty())
        {
            let names: Vec<String> = a.iter().map(jv).collect();
            let _ = writeln!(h, "<p><b>{key}</b> {}</p>", names.join(", "));
        }
    }
    for (kind, list) in m {
        let list = list.as_array().map(Vec::as_slice).unwrap_or_default();
        let total = obj
            .get("anomaly_counts")
            .and_then(|c| c.get(kind))
            .and_then(Value::as_u64)
            .unwrap_or(list.len() as u64);
        let _ = writeln!(h, "<h4>{} ({total})</h4>", esc(kind));
        for a in list.iter().take(5) {
            if let Some(e) = a.get("explanation").and_then(Value::as_str) {
                let _ = writeln!(h, "<pre>{}</pre>", esc(e));
            }
            if let Some(svg) = a
                .get("cycle")
                .and_then(Value::as_array)
                .and_then(|c| cycle_svg(c))
            {
                h.push_str(&svg);
            }
            if let Some(d) = a.get("dot").and_then(Value::as_str) {
                let _ = writeln!(
                    h,
                    "<details><summary>DOT</summary><pre>{}</pre></details>",
                    esc(d)
                );
            }
        }
        if list.len() > 5 {
            let _ = writeln!(h, "<p class=\"muted\">… and {} more</p>", total - 5);
        }
    }
}

/// The cycle's transactions on a circle with labelled, arrowed edges. `None` for cycles too
/// big to read as a picture.
fn cycle_svg(steps: &[Value]) -> Option<String> {
    let mut nodes: Vec<&str> = Vec::new();
    let mut edges = Vec::new();
    for s in steps {
        let from = s.get("from")?.as_str()?;
        let to = s.get("to")?.as_str()?;
        for n in [from, to] {
            if !nodes.contains(&n) {
                nodes.push(n);
            }
        }
        edges.push((
            from,
            to,
            s.get("rel").and_then(Value::as_str).unwrap_or("?"),
        ));
    }
    if nodes.is_empty() || nodes.len() > 12 {
        return None;
    }
    let (size, r) = (320.0, 110.0);
    let pos = |n: &str| {
        let i = nodes.iter().position(|x| *x == n).unwrap_or(0) as f64;
        let a = i / nodes.len() as f64 * std::f64::consts::TAU - std::f64::consts::FRAC_PI_2;
        (size / 2.0 + r * a.cos(), size / 2.0 + r * a.sin())
    };
    let mut s = format!(
        "<svg class=\"hb\" width=\"{size}\" height=\"{size}\" viewBox=\"0 0 {size} {size}\">\
         <defs><marker id=\"ah\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"6\" \
         markerHeight=\"6\" orient=\"auto\"><path d=\"M0,0L10,5L0,10z\" fill=\"#555\"/></marker>\
         </defs>"
    );
    for (i, (from, to, rel)) in edges.iter().enumerate() {
        let ((x1, y1), (x2, y2)) = (pos(from), pos(to));
        // Bend each edge outward a little so A→B and B→A do not overlap; stop short of nodes.
        let (dx, dy) = (x2 - x1, y2 - y1);
        let len = (dx * dx + dy * dy).sqrt().max(1.0);
        let (ux, uy) = (dx / len, dy / len);
        let (sx, sy, ex, ey) = (
            x1 + ux * 22.0,
            y1 + uy * 22.0,
            x2 - ux * 22.0,
            y2 - uy * 22.0,
        );
        let bend = if i % 2 == 0 { 18.0 } else { -18.0 };
        let (cx, cy) = ((sx + ex) / 2.0 - uy * bend, (sy + ey) / 2.0 + ux * bend);
        let _ = write!(
            s,
            "<path class=\"ed\" d=\"M{sx:.1},{sy:.1}Q{cx:.1},{cy:.1} {ex:.1},{ey:.1}\"/>\
             <text x=\"{cx:.1}\" y=\"{cy:.1}\" text-anchor=\"middle\">{}</text>",
            esc(rel)
        );
    }
    for n in &nodes {
        let (x, y) = pos(n);
        let _ = write!(
            s,
            "<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"20\" fill=\"#eef\" stroke=\"#446\"/>\
             <text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
            y + 3.5,
            esc(n)
        );
    }
    s.push_str("</svg>\n");
    Some(s)
}

/// One client operation from invocation to completion, for the charts.
struct Bar {
    process: u64,
    start: u64,
    /// Completion time; `None` when the history ended first.
    end: Option<u64>,
    kind: OpType,
    f: String,
    invoke: u64,
    complete: Option<u64>,
}

/// Pairs invocations with completions per process, tolerating gaps (a report should render
/// even for a history the checkers rejected).
fn bars(ops: &[Op]) -> Vec<Bar> {
    let mut open: HashMap<u64, usize> = HashMap::new();
    let mut out: Vec<Bar> = Vec::new();
    for op in ops {
        let Process::Client(p) = op.process else {
            continue;
        };
        if op.kind == OpType::Invoke {
            open.insert(p, out.len());
            out.push(Bar {
                process: p,
                start: op.time,
                end: None,
                kind: OpType::Info,
                f: op.f.clone(),
                invoke: op.index,
                complete: None,
            });
        } else if let Some(i) = open.remove(&p) {
            let b = &mut out[i];
            b.end = Some(op.time);
            b.kind = op.kind;
            b.complete = Some(op.index);
        }
    }
    out
}

/// A nemesis fault window: from the first `start-X` to the next `stop-X` or `heal`.
struct Fault {
    name: String,
    start: u64,
    end: Option<u64>,
}

/// The shaded windows: the availability checker's, so a fault that failed or was skipped is
/// not drawn as if it had been in force.
fn fault_windows(ops: &[Op]) -> Vec<Fault> {
    crate::checker::availability::fault_windows(ops)
        .into_iter()
        .map(|w| Fault {
            name: w
                .fault
                .strip_prefix("start-")
                .unwrap_or(&w.fault)
                .to_string(),
            start: w.start_ns,
            end: w.end_ns,
        })
        .collect()
}

/// First and last op time (ns).
fn time_span(ops: &[Op]) -> (u64, u64) {
    let lo = ops.iter().map(|o| o.time).min().unwrap_or(0);
    let hi = ops.iter().map(|o| o.time).max().unwrap_or(0);
    (lo, hi.max(lo.saturating_add(1)).max(1))
}

fn x_of(t: u64, (lo, hi): (u64, u64)) -> f64 {
    ML + (t.saturating_sub(lo)) as f64 / (hi - lo) as f64 * (W - ML - 10.0)
}

fn class_of(k: OpType) -> &'static str {
    match k {
        OpType::Ok => "o",
        OpType::Fail => "f",
        _ => "i",
    }
}

/// Shaded fault windows and a seconds axis, spanning `top..bottom`.
fn shade(s: &mut String, faults: &[Fault], span: (u64, u64), top: f64, bottom: f64) {
    let rows = charts::label_rows(faults.iter().map(|f| {
        (
            x_of(f.start, span),
            f.name.chars().count() as f64 * 6.0 + 4.0,
        )
    }));
    for (f, row) in faults.iter().zip(rows) {
        let x1 = x_of(f.start, span);
        let x2 = x_of(f.end.unwrap_or(span.1), span);
        let _ = write!(
            s,
            "<rect class=\"fw\" x=\"{x1:.1}\" y=\"{top}\" width=\"{:.1}\" height=\"{:.1}\">\
             <title>{}</title></rect>",
            (x2 - x1).max(1.0),
            bottom - top,
            esc(&f.name),
        );
        // one row of names here: a name that would overlap the one before is left to the
        // window's hover title (the charts below stagger theirs)
        if row == 0 {
            let _ = write!(
                s,
                "<text class=\"fl\" x=\"{:.1}\" y=\"{:.1}\">{}</text>",
                x1 + 2.0,
                top + 10.0,
                esc(&f.name)
            );
        }
    }
    let secs = (span.1 - span.0) / 1_000_000_000;
    let step = (secs / 15).max(1);
    for sec in (0..=secs).step_by(step as usize) {
        let x = x_of(span.0 + sec * 1_000_000_000, span);
        let _ = write!(
            s,
            "<line class=\"ax\" x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{top}\" y2=\"{bottom}\"/>\
             <text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{sec}s</text>",
            bottom + 12.0
        );
    }
}

/// Which bars to draw: all of them, or every k-th plus every highlighted one.
fn sample<'a>(bars: &'a [Bar], cap: usize, hl: &HashSet<u64>) -> (Vec<&'a Bar>, bool) {
    let stride = bars.len().div_ceil(cap.max(1)).max(1);
    let is_hl = |b: &Bar| hl.contains(&b.invoke) || b.complete.is_some_and(|c| hl.contains(&c));
    let out: Vec<&Bar> = bars
        .iter()
        .enumerate()
        .filter(|(i, b)| i % stride == 0 || is_hl(b))
        .map(|(_, b)| b)
        .collect();
    (out, stride > 1)
}

fn timeline(h: &mut String, bars: &[Bar], faults: &[Fault], hl: &HashSet<u64>, span: (u64, u64)) {
    h.push_str("<h2 id=\"timeline\">Timeline</h2>\n");
    if bars.is_empty() {
        h.push_str("<p class=\"muted\">no client operations</p>\n");
        return;
    }
    let mut counts: HashMap<u64, usize> = HashMap::new();
    for b in bars {
        *counts.entry(b.process).or_default() += 1;
    }
    let mut procs: Vec<(u64, usize)> = counts.into_iter().collect();
    procs.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let hidden = procs.len().saturating_sub(MAX_LANES);
    procs.truncate(MAX_LANES);
    procs.sort_by_key(|p| p.0);
    let lane: HashMap<u64, usize> = procs.iter().enumerate().map(|(i, p)| (p.0, i)).collect();
    let lh = (480.0 / procs.len() as f64).clamp(6.0, 16.0);
    let height = 16.0 + lh * procs.len() as f64;
    let (shown, sampled) = sample(bars, MAX_BARS, hl);
    let mut note = String::from(
        "One lane per client process; bars run from invocation to completion: \
         <span style=\"color:#3b8f3b\">ok</span>, <span style=\"color:#d08a2c\">fail</span>, \
         <span style=\"color:#8a5db5\">info</span>; <span style=\"color:#e00\">red outlined</span> \
         = ops named by an invalid checker; shaded = fault windows.",
    );
    if sampled {
        let _ = write!(
            note,
            " Downsampled: {} of {} ops drawn.",
            shown.len(),
            bars.len()
        );
    }
    if hidden > 0 {
        let _ = write!(note, " {hidden} less active processes not shown.");
    }
    let _ = write!(
        h,
        "<p class=\"muted\">{note}</p>\n<svg class=\"hb\" width=\"{W}\" height=\"{:.0}\" viewBox=\"0 0 {W} {:.0}\">",
        height + 16.0,
        height + 16.0
    );
    shade(h, faults, span, 0.0, height);
    for (p, i) in &lane {
        let _ = write!(
            h,
            "<text x=\"2\" y=\"{:.1}\">p{p}</text>",
            16.0 + lh * (*i as f64 + 0.8)
        );
    }
    let mut marks = String::new();
    for b in shown {
        let Some(&l) = lane.get(&b.process) else {
            continue;
        };
        let x1 = x_of(b.start, span);
        let x2 = x_of(b.end.unwrap_or(span.1), span);
        let y = 16.0 + lh * l as f64 + 1.0;
        let is_hl = hl.contains(&b.invoke) || b.complete.is_some_and(|c| hl.contains(&c));
        if is_hl {
            let _ = write!(
                marks,
                "<rect class=\"hl\" x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\">\
                 <title>{} {} p{} events {}…{}</title></rect>",
                x1 - 1.0,
                y - 1.0,
                (x2 - x1).max(3.0),
                lh,
                esc(&b.f),
                match b.kind {
                    OpType::Ok => "ok",
                    OpType::Fail => "fail",
                    _ => "info",
                },
                b.process,
                b.invoke,
                b.complete.map(|c| c.to_string()).unwrap_or_default()
            );
        } else {
            let _ = write!(
                h,
                "<rect class=\"{}\" x=\"{x1:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{:.1}\"/>",
                class_of(b.kind),
                (x2 - x1).max(0.6),
                lh - 2.0
            );
        }
    }
    h.push_str(&marks); // on top of everything else
    h.push_str("</svg>\n");
}

/// The columns of an availability stats object, in table order.
const STAT_COLS: [&str; 8] = [
    "ops",
    "ok",
    "fail",
    "info",
    "ok_share",
    "latency_ms_p50",
    "latency_ms_p99",
    "latency_ms_max",
];

/// What an empty figure shows (no ops in the window: no latency to speak of).
const NONE: &str = "—";

/// One stats cell: floats to two places; a missing or null figure as [`NONE`].
fn stat_cell(s: &Value, k: &str) -> String {
    match s.get(k) {
        Some(Value::Number(n)) if n.is_f64() => format!("{:.2}", n.as_f64().unwrap_or(0.0)),
        None | Some(Value::Null) => NONE.to_string(),
        Some(v) => jv(v),
    }
}

/// A table of labelled availability stats (outside faults, per fault kind).
fn stats_table(h: &mut String, rows: &[(String, &Value)]) {
    h.push_str(
        "<table><tr><th></th><th>ops</th><th>ok</th><th>fail</th><th>info</th>\
        <th>ok share</th><th>p50 ms</th><th>p99 ms</th><th>max ms</th></tr>\n",
    );
    for (label, s) in rows {
        let _ = write!(h, "<tr><td>{}</td>", esc(label));
        for k in STAT_COLS {
            let _ = write!(h, "<td>{}</td>", stat_cell(s, k));
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</table>\n");
}

/// A window's crossing keys in words: "3 of 4: 7, 9, 12", "none of 4", or "—" when the
/// history is not keyed or the fault names no nodes.
fn crossed_cell(c: Option<&Value>) -> String {
    let Some(c) = c.filter(|c| c.is_object()) else {
        return "—".to_string();
    };
    let n = |k: &str| c.get(k).and_then(Value::as_u64).unwrap_or(0);
    let (keys, crossed) = (n("keys"), n("crossed"));
    if crossed == 0 {
        return format!("none of {keys}");
    }
    let sample: Vec<String> = c
        .get("sample")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|k| match k {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect()
        })
        .unwrap_or_default();
    let more = if (sample.len() as u64) < crossed {
        ", …"
    } else {
        ""
    };
    format!("{crossed} of {keys}: {}{more}", sample.join(", "))
}

/// The clock faults' "no effect" note, if the target ignored them.
fn clock_note(r: &Value) -> String {
    match r
        .pointer("/faults/clock/notes/0")
        .and_then(Value::as_str)
        .filter(|_| r.pointer("/faults/clock/no_effect").and_then(Value::as_u64) > Some(0))
    {
        Some(n) => format!(" <b>No effect on the target:</b> {}", esc(n)),
        None => String::new(),
    }
}

fn availability(h: &mut String, r: &Value, t0: u64) {
    let Some(ws) = r
        .pointer("/checkers/availability/windows")
        .and_then(Value::as_array)
    else {
        return;
    };
    h.push_str(
        "<h2 id=\"availability\">Availability per fault window</h2>\n<table><tr><th>fault</th>\
        <th>from s</th><th>to s</th><th>ops</th><th>ok</th><th>fail</th><th>info</th>\
        <th>ok share</th><th>p50 ms</th><th>p99 ms</th><th>max ms</th>\
        <th title=\"keys worked from both sides of the fault during it\">keys crossing</th></tr>\n",
    );
    let secs = |v: Option<&Value>| match v.and_then(Value::as_u64) {
        Some(ns) => format!("{:.1}", ns.saturating_sub(t0) as f64 / 1e9),
        None => "end".to_string(),
    };
    for w in ws {
        let s = w.get("stats").unwrap_or(&Value::Null);
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td>",
            esc(&lede::fault_words(
                w.get("fault").and_then(Value::as_str).unwrap_or("fault"),
                w.get("value").unwrap_or(&Value::Null)
            )),
            secs(w.get("start_ns")),
            secs(w.get("end_ns")),
        );
        for k in STAT_COLS {
            let _ = write!(h, "<td>{}</td>", stat_cell(s, k));
        }
        let _ = writeln!(h, "<td>{}</td></tr>", esc(&crossed_cell(w.get("crossed"))));
    }
    h.push_str("</table>\n");
}

#[cfg(test)]
mod tests;

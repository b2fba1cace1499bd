use serde_json::json;

use super::*;

fn op(index: u64, time: u64, process: Process, kind: OpType, f: &str, value: Value) -> Op {
    let mut o = Op::new(process, kind, f, value);
    o.index = index;
    o.time = time;
    o
}

/// A register history: a write, a read of a hostile string, a partition window.
fn history() -> Vec<Op> {
    let c = Process::Client;
    let n = Process::Nemesis;
    let w = json!([1, "<script>alert(1)</script>"]);
    vec![
        op(0, 1_000_000, c(0), OpType::Invoke, "write", w.clone()),
        op(1, 3_000_000, c(0), OpType::Ok, "write", w),
        // The runner records a nemesis operation as two info events: request, then outcome.
        op(
            2,
            500_000_000,
            n,
            OpType::Info,
            "start-partition",
            Value::Null,
        ),
        op(
            3,
            510_000_000,
            n,
            OpType::Info,
            "start-partition",
            json!({"nodes": ["n1"]}),
        ),
        op(
            4,
            900_000_000,
            c(1),
            OpType::Invoke,
            "read",
            json!([1, null]),
        ),
        op(
            5,
            950_000_000,
            c(1),
            OpType::Ok,
            "read",
            json!([1, "stale & old"]),
        ),
        op(
            6,
            1_200_000_000,
            n,
            OpType::Info,
            "stop-partition",
            Value::Null,
        ),
        op(
            7,
            1_210_000_000,
            n,
            OpType::Info,
            "stop-partition",
            json!({}),
        ),
        op(
            8,
            1_300_000_000,
            c(2),
            OpType::Invoke,
            "cas",
            json!([1, [0, 2]]),
        ),
        op(
            9,
            1_400_000_000,
            c(2),
            OpType::Fail,
            "cas",
            json!([1, [0, 2]]),
        ),
    ]
}

fn results(valid: bool) -> Value {
    let failures = if valid {
        json!([])
    } else {
        json!([{
            "key": 1, "valid": false, "ops": 2, "initial_state": null,
            "linearized": [{"op": {"invoke": 0, "complete": 1, "process": "0", "type": "ok",
                "f": "write", "value": "<script>alert(1)</script>",
                "output": "<script>alert(1)</script>"}, "state": "<script>alert(1)</script>"}],
            "stuck": {"invoke": 4, "complete": 5, "process": "1", "type": "ok", "f": "read",
                "value": null, "output": "stale & old"},
            "open": [{"op": {"invoke": 4, "complete": 5, "process": "1", "type": "ok",
                "f": "read", "value": null, "output": "stale & old"}, "model_accepts": false}]
        }])
    };
    json!({
        "valid": valid,
        "checkers": {
            "linear": {"valid": valid, "model": "cas-register", "checked_ops": 3,
                       "failures": failures},
            "availability": {"valid": true, "windows": [{"fault": "start-partition",
                "value": null, "start_index": 3, "end_index": 6, "start_ns": 500_000_000,
                "end_ns": 1_200_000_000, "stats": {"ops": 1, "ok": 1, "fail": 0, "info": 0,
                "ok_share": 1.0, "latency_ms_p50": 50.0}}]}
        },
        "ops": 3, "events": 10, "elapsed_s": 1.5, "interrupted": false,
        "plan": {"name": "reg<test>", "target": "etcd", "workload": "register",
                 "nemesis": ["partition"], "concurrency": 3, "rate": 10.0, "seed": 7},
    })
}

/// Every opened element among those the page uses is closed again, in order.
fn assert_well_formed(page: &str) {
    assert!(page.starts_with("<!DOCTYPE html>"));
    assert!(page.trim_end().ends_with("</html>"));
    let mut stack: Vec<String> = Vec::new();
    let mut rest = page;
    while let Some(i) = rest.find('<') {
        rest = &rest[i + 1..];
        let end = rest.find('>').expect("unterminated tag");
        let tag = &rest[..end];
        rest = &rest[end + 1..];
        if tag.starts_with('!') || tag.ends_with('/') {
            continue;
        }
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        if ["meta", "br"].contains(&name.as_str()) {
            continue;
        }
        if tag.starts_with('/') {
            assert_eq!(
                stack.pop().as_deref(),
                Some(name.as_str()),
                "mismatched </{name}>"
            );
        } else {
            stack.push(name);
        }
    }
    assert!(stack.is_empty(), "unclosed: {stack:?}");
}

#[test]
fn valid_run_renders_verdict_and_sections() {
    let page = render(&results(true), &history());
    assert_well_formed(&page);
    assert!(page.contains("<span class=\"v VALID\">VALID</span>"));
    assert!(!page.contains("v INVALID"));
    for section in [
        "Timeline",
        "Latency",
        "Throughput",
        "Availability per fault window",
    ] {
        assert!(page.contains(section), "missing {section}");
    }
    assert!(page.contains("reg&lt;test&gt;"));
    assert!(page.contains(">partition<"), "fault window label missing");
}

#[test]
fn invalid_run_shows_stuck_op_highlighted_and_escapes_user_data() {
    let page = render(&results(false), &history());
    assert_well_formed(&page);
    assert!(page.contains("<span class=\"v INVALID\">INVALID</span>"));
    assert!(page.contains("<tr class=\"stuck\"><td>4…5</td>"));
    assert!(page.contains("stale &amp; old"));
    assert!(!page.contains("<script>"));
    assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    // The stuck op's bar is drawn highlighted in the timeline.
    assert!(page.contains("<rect class=\"hl\""));
    assert!(page.contains("read ok p1 events 4…5"));
}

#[test]
fn invalid_linear_run_draws_the_counterexample_and_names_each_ops_node() {
    let mut ops = history();
    ops[4].node = Some("n2<i>".into());
    ops[0].node = Some("n1".into());
    let page = render(&results(false), &ops);
    assert_well_formed(&page);
    // the tables: process, then node
    assert!(page.contains("<tr class=\"stuck\"><td>4…5</td><td>1</td><td>n2&lt;i&gt;</td>"));
    assert!(page.contains("<td>0…1</td><td>0</td><td>n1</td>"));
    // the drawing: the stuck read in red with why, in the model's terms
    assert!(page.contains("<svg class=\"hb cx\""));
    assert!(page.contains("✗ cannot take effect: state &lt;script&gt;alert(1)&lt;/script&gt;; read returned stale &amp; old"));
    assert!(page.contains("read → stale &amp; old ok · n2&lt;i&gt;"));
    assert!(page.contains("id=\"key-1\""));
    assert!(!page.contains("n2<i>"), "node names are escaped");
    // the header says what was expected and whether the run passed
    assert!(page.contains("<b>expected</b> valid <span class=\"v FAIL\">FAIL</span>"));
}

#[test]
fn txn_cycle_renders_explanation_dot_and_svg() {
    let r = json!({"valid": false, "checkers": {"txn": {
        "valid": false, "anomaly_types": ["G-single"], "not": ["snapshot-isolation"],
        "anomaly_counts": {"G-single": 1},
        "anomalies": {"G-single": [{"type": "G-single",
            "txns": [{"name": "T1", "invoke_event": 0, "complete_event": 1, "process": 0,
                      "status": "ok", "value": []}],
            "explanation": "T1 < T2 because <x>",
            "cycle": [{"from": "T1", "to": "T2", "rel": "rw", "why": ""},
                      {"from": "T2", "to": "T1", "rel": "wr", "why": ""}],
            "dot": "digraph cycle { T1 -> T2 [label=\"rw\"]; }"}]}}}});
    let page = render(&r, &history());
    assert_well_formed(&page);
    assert!(page.contains("T1 &lt; T2 because &lt;x&gt;"));
    assert!(page.contains("digraph cycle { T1 -&gt; T2 [label=&quot;rw&quot;]; }"));
    assert!(page.contains("<circle"));
    assert!(page.contains(">wr</text>"));
    assert!(page.contains("snapshot-isolation"));
}

#[test]
fn long_evidence_lists_are_capped_with_a_count() {
    let lost: Vec<u64> = (0..500).collect();
    let r = json!({"valid": false, "checkers": {"set": {"valid": false, "lost_count": 500,
        "lost": lost}}});
    let page = render(&r, &[]);
    assert_well_formed(&page);
    assert!(page.contains("… and 450 more"));
    assert!(!page.contains(", 50,"));
    assert!(page.contains("no client operations"));
}

#[test]
fn hundred_thousand_ops_render_downsampled_under_three_megabytes() {
    let mut ops = Vec::new();
    for i in 0..50_000u64 {
        let p = Process::Client(i % 200);
        let t = i * 1_000_000;
        let kind = if i % 7 == 0 { OpType::Fail } else { OpType::Ok };
        ops.push(op(2 * i, t, p, OpType::Invoke, "write", json!([i % 10, i])));
        ops.push(op(
            2 * i + 1,
            t + 2_000_000 + i % 5_000_000,
            p,
            kind,
            "write",
            json!([i % 10, i]),
        ));
    }
    let page = render(&results(true), &ops);
    assert_well_formed(&page);
    assert!(page.contains("Downsampled"));
    assert!(page.contains("140 less active processes not shown"));
    assert!(page.len() < 3_000_000, "page is {} bytes", page.len());
}

#[test]
fn failed_or_skipped_faults_are_not_shaded() {
    let mut ops = history();
    // The partition failed on a node: nothing was in force.
    ops[3].error = Some("n1: iptables exited 1".into());
    // (the drawings come before the availability table, which reads the checker's results)
    let drawn = |page: &str| page[..page.find("id=\"availability\"").unwrap()].to_string();
    let page = render(&results(true), &ops);
    assert!(
        !drawn(&page).contains(">partition<"),
        "a failed fault is shaded"
    );
    let mut ops = history();
    ops[3].value = json!({"skipped": "no leader"});
    let page = render(&results(true), &ops);
    assert!(
        !drawn(&page).contains(">partition<"),
        "a skipped fault is shaded"
    );
}

#[test]
fn header_shows_what_the_faults_really_did_and_the_run_error() {
    let mut r = results(true);
    r["faults"] = json!({
        "partition": {"injected": 3, "failed": 0, "no_effect": 0, "skipped": 1,
                      "errors": [], "notes": [], "skip_reasons": ["no leader <now>"]},
        "packet": {"injected": 0, "failed": 2, "no_effect": 0, "skipped": 0,
                   "errors": ["n1: tc exited 2"], "notes": [], "skip_reasons": []},
    });
    r["error"] = json!("n2: cannot connect");
    let page = render(&r, &history());
    assert_well_formed(&page);
    assert!(page.contains("<h2 id=\"faults\">Faults</h2>"));
    assert!(page.contains(
        "<tr><td>partition</td><td>3</td><td>0</td><td>1</td><td>0</td><td>no leader &lt;now&gt;</td></tr>"
    ));
    assert!(page.contains(
        "<tr class=\"stuck\"><td>packet</td><td>0</td><td>0</td><td>0</td><td>2</td><td>n1: tc exited 2</td></tr>"
    ));
    assert!(page.contains("<b>run error</b> <code>n2: cannot connect</code>"));
    // Without faults, no section.
    assert!(!render(&results(true), &history()).contains("id=\"faults\""));
}

#[test]
fn times_far_apart_are_charted_in_wider_buckets_not_one_per_second() {
    // A history's times are the file's to choose; 1e18 ns (30 years) must not ask for a
    // throughput point per second, and u64::MAX must not overflow.
    for last in [1_000_000_000_000_000_000, u64::MAX] {
        let c = Process::Client;
        let ops = vec![
            op(0, 0, c(0), OpType::Invoke, "write", json!(1)),
            op(1, 10, c(0), OpType::Ok, "write", json!(1)),
            op(2, last - 1, c(1), OpType::Invoke, "read", Value::Null),
            op(3, last, c(1), OpType::Ok, "read", json!(1)),
        ];
        let page = render(&json!({"valid": true}), &ops);
        let span = (0, last);
        let bars = super::charts::throughput_series(&[], span);
        assert!(
            bars.len() <= super::charts::BUCKETS as usize + 1,
            "{}",
            bars.len()
        );
        assert!(page.contains("Throughput"), "the chart is drawn");
        assert!(page.len() < 1 << 20, "{} bytes", page.len());
    }
}

/// The history with the partition's outcome as the nemesis records it (components, label), the
/// stuck read sent to the cut-off node.
fn partitioned_history() -> Vec<Op> {
    let mut ops = history();
    ops[3].value = json!({"nodes": ["n1", "n2", "n3"], "components": [["n1"], ["n2", "n3"]],
        "label": "partition primaries: n1 | n2 n3"});
    ops[4].node = Some("n1".into());
    ops
}

#[test]
fn invalid_report_opens_with_what_went_wrong_where_and_when() {
    let page = render(&results(false), &partitioned_history());
    assert_well_formed(&page);
    let lede = page.find("class=\"lede\"").expect("an opening sentence");
    assert!(
        lede < page.find("id=\"checkers\"").unwrap(),
        "it comes before the evidence"
    );
    let end = lede + page[lede..].find("</p>").unwrap();
    let text = &page[lede..end];
    assert!(text.contains("1 impossible read on key 1"), "{text}");
    assert!(text.contains("on n1 at 0.9 s"), "{text}");
    assert!(
        text.contains("while n1 was cut off from the majority (partition primaries: n1 | n2 n3)"),
        "{text}"
    );
    assert!(
        text.contains("it returned stale &amp; old where the value was &lt;script&gt;"),
        "{text}"
    );
    assert!(
        text.contains("href=\"#key-1\""),
        "links the drawing: {text}"
    );
    assert!(page.contains("id=\"key-1\""));
    // a valid run has none
    assert!(!render(&results(true), &partitioned_history()).contains("class=\"lede\""));
}

#[test]
fn lede_of_another_checker_uses_its_summary_and_first_evidence() {
    let mut r = results(true);
    r["valid"] = json!(false);
    r["checkers"]["total-queue"] = json!({"valid": false,
        "summary": "10 acknowledged, 9 dequeued, 1 lost (7)",
        "errors": [{"index": 4, "why": "x"}]});
    let page = render(&r, &partitioned_history());
    assert_well_formed(&page);
    assert!(page.contains(
        "<b>What went wrong:</b> total-queue — 10 acknowledged, 9 dequeued, 1 lost (7); first on \
         n1 at 0.9 s, while n1 was cut off from the majority"
    ));
    assert!(page.contains("href=\"#checker-total-queue\""));
    assert!(page.contains("<h3 id=\"checker-total-queue\">"));
}

#[test]
fn availability_names_fault_windows_in_words_and_empty_figures_as_a_dash() {
    let mut r = results(true);
    r["checkers"]["availability"]["windows"] = json!([
        {"fault": "start-partition", "value": {"label": "partition primaries: n1 | n2 n3 n4 n5",
            "components": [["n1"], ["n2", "n3", "n4", "n5"]]},
         "start_ns": 500_000_000, "end_ns": 1_200_000_000,
         "stats": {"ops": 0, "ok": 0, "fail": 0, "info": 0, "ok_share": null,
                   "latency_ms_p50": null}},
        {"fault": "start-kill", "value": {"nodes": ["n2", "n5"], "graceful": false},
         "start_ns": 600_000_000, "end_ns": null, "stats": {"ops": 1, "ok": 1}},
        {"fault": "start-pause", "value": {"nodes": ["n4"], "label": "pause n4",
            "moved": "n1 is killed: aimed at n4 instead"},
         "start_ns": 700_000_000, "end_ns": null, "stats": {}}
    ]);
    let page = render(&r, &history());
    assert_well_formed(&page);
    let table = &page[page.find("id=\"availability\"").unwrap()..];
    assert!(table.contains("<td>partition primaries: n1 | n2 n3 n4 n5</td>"));
    assert!(table.contains("<td>kill n2, n5</td>"));
    assert!(table.contains("<td>pause n4 (n1 is killed: aimed at n4 instead)</td>"));
    assert!(
        !table.contains("null") && !table.contains("<code>"),
        "{table}"
    );
    assert!(table.contains("<td>—</td>"));
}

#[test]
fn availability_names_the_keys_a_fault_stood_between() {
    assert_eq!(
        super::crossed_cell(Some(
            &json!({"keys": 4, "crossed": 3, "sample": [7, "k9", 12]})
        )),
        "3 of 4: 7, k9, 12"
    );
    assert_eq!(
        super::crossed_cell(Some(&json!({"keys": 20, "crossed": 9, "sample": [1, 2]}))),
        "9 of 20: 1, 2, …"
    );
    assert_eq!(
        super::crossed_cell(Some(&json!({"keys": 4, "crossed": 0, "sample": []}))),
        "none of 4"
    );
    assert_eq!(super::crossed_cell(None), "—");
}

/// A run checked for several register models: the section tabulates each verdict (unknown as
/// UNKNOWN, never VALID), names the strongest that holds, and draws the violated model's
/// witness numbered in its order, with each op's node; the ops are highlighted in the timeline.
#[test]
fn consistency_models_section_tables_verdicts_and_draws_each_witness() {
    let mut ops = history();
    ops[0].node = Some("n1".into());
    ops[4].node = Some("n2".into());
    let w = |inv: u64, comp: u64, p: &str, f: &str, v: Value, o: Value| {
        json!({"invoke": inv, "complete": comp, "process": p, "type": "ok", "f": f,
               "value": v, "output": o})
    };
    let r = json!({"valid": false, "checkers": {"models": {
    "valid": false, "strongest": "causal",
    "summary": "not sequential; causal ✔ read-your-writes ✘ monotonic-reads ?",
    "models": {
        "sequential": {"valid": false, "reason": "no total order <fits>",
            "witness": [w(0, 1, "0", "write", json!(1), json!(1)),
                        w(4, 5, "1", "read", Value::Null, json!("stale & old"))]},
        "causal": {"valid": true},
        "read-your-writes": {"valid": false, "reason": "a read returned the initial value",
            "witness": [w(0, 1, "0", "write", json!(1), json!(1))]},
        "monotonic-reads": {"valid": null, "reason": "budget"}
    }}}});
    let page = render(&r, &ops);
    assert_well_formed(&page);
    assert!(page.contains("<h2 id=\"models\">Consistency models</h2>"));
    assert!(page.contains("strongest requested model that holds: <b>causal</b>"));
    assert!(page.contains("<tr><td>causal</td><td><span class=\"v VALID\">VALID</span>"));
    assert!(
        page.contains("<tr><td>monotonic-reads</td><td><span class=\"v UNKNOWN\">UNKNOWN</span>")
    );
    assert!(page.contains("<a href=\"#model-sequential\">no total order &lt;fits&gt;</a>"));
    // one drawing per violated model, in the counterexample's style, numbered 1, 2
    assert!(page.contains("<h3 id=\"model-sequential\">not sequential</h3>"));
    assert!(page.contains("<h3 id=\"model-read-your-writes\">"));
    assert_eq!(page.matches("<svg class=\"hb cx\"").count(), 2);
    assert!(page.contains("read → stale &amp; old ok · n2"));
    assert!(page.contains("class=\"lnum\" text-anchor=\"middle\">2</text>"));
    assert!(page.contains("<td>2</td><td>4…5</td><td>1</td><td>n2</td>"));
    // no section without the models checker
    assert!(!render(&results(false), &ops).contains("Consistency models"));
}

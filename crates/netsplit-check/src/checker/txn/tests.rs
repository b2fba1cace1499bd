//! Hand-written minimal histories, one per anomaly type: each must be named, and the models it
//! violates must appear in `not`.

use super::*;
use crate::history::{OpType, Process};
use serde_json::{json, Value};

/// A tiny history builder. `txn` runs a whole transaction (invoke then complete) on a process;
/// `inv`/`done` split it so transactions can overlap.
#[derive(Default)]
struct H {
    ops: Vec<Op>,
}

fn strip_reads(v: &Value) -> Value {
    match v {
        Value::Array(ms) => Value::Array(
            ms.iter()
                .map(|m| match m {
                    Value::Array(p) if p.len() == 3 && p[0] == "r" => json!(["r", p[1], null]),
                    x => x.clone(),
                })
                .collect(),
        ),
        x => x.clone(),
    }
}

impl H {
    fn push(&mut self, p: u64, kind: OpType, v: Value) {
        let mut op = Op::new(Process::Client(p), kind, "txn", v);
        op.index = self.ops.len() as u64;
        self.ops.push(op);
    }
    fn inv(&mut self, p: u64, v: Value) -> &mut Self {
        self.push(p, OpType::Invoke, strip_reads(&v));
        self
    }
    fn done(&mut self, p: u64, kind: OpType, v: Value) -> &mut Self {
        let v = if kind == OpType::Ok {
            v
        } else {
            strip_reads(&v)
        };
        self.push(p, kind, v);
        self
    }
    fn txn(&mut self, p: u64, v: Value) -> &mut Self {
        self.inv(p, v.clone()).done(p, OpType::Ok, v)
    }
    fn check(&self, w: TxnWorkload, models: &str) -> TxnResult {
        let opts = TxnOptions {
            workload: w,
            consistency_models: vec![models.into()],
            budget: Budget::unlimited(),
        };
        check(&self.ops, &opts).expect("check runs")
    }
}

fn la(h: &H, models: &str) -> TxnResult {
    h.check(TxnWorkload::ListAppend, models)
}

fn has(r: &TxnResult, t: &str) -> bool {
    r.anomaly_types.iter().any(|x| x == t)
}

fn not(r: &TxnResult, m: &str) -> bool {
    r.not.iter().any(|x| x == m)
}

fn assert_anomaly(r: &TxnResult, t: &str, ruled_out: &[&str], allowed: &[&str]) {
    assert_eq!(r.valid, Validity::False, "{r:#?}");
    assert!(has(r, t), "expected {t} in {:?}", r.anomaly_types);
    for m in ruled_out {
        assert!(not(r, m), "{m} should be in not = {:?}", r.not);
    }
    for m in allowed {
        assert!(!not(r, m), "{m} should not be in not = {:?}", r.not);
    }
    let a = &r.anomalies[t][0];
    assert!(!a.explanation.is_empty());
}

#[test]
fn detects_g0_write_cycle() {
    let mut h = H::default();
    h.inv(0, json!([["append", "x", 1], ["append", "y", 1]]));
    h.inv(1, json!([["append", "x", 2], ["append", "y", 2]]));
    h.done(
        0,
        OpType::Ok,
        json!([["append", "x", 1], ["append", "y", 1]]),
    );
    h.done(
        1,
        OpType::Ok,
        json!([["append", "x", 2], ["append", "y", 2]]),
    );
    h.txn(2, json!([["r", "x", [1, 2]], ["r", "y", [2, 1]]]));
    let r = la(&h, "strict-serializable");
    assert_anomaly(&r, "G0", &["read-uncommitted", "serializable"], &[]);
    let a = &r.anomalies["G0"][0];
    assert!(a.cycle.iter().all(|s| s.rel == "ww"), "{a:#?}");
    assert!(
        a.explanation.contains("version order has"),
        "{}",
        a.explanation
    );
    assert!(a.dot.as_deref().unwrap_or("").starts_with("digraph"));
}

#[test]
fn detects_g1c_circular_information_flow() {
    let mut h = H::default();
    h.inv(0, json!([["append", "x", 1], ["r", "y", [1]]]));
    h.inv(1, json!([["append", "y", 1], ["r", "x", [1]]]));
    h.done(0, OpType::Ok, json!([["append", "x", 1], ["r", "y", [1]]]));
    h.done(1, OpType::Ok, json!([["append", "y", 1], ["r", "x", [1]]]));
    let r = la(&h, "read-committed");
    assert_anomaly(
        &r,
        "G1c",
        &["read-committed", "serializable"],
        &["read-uncommitted"],
    );
    let a = &r.anomalies["G1c"][0];
    assert!(
        a.explanation.contains("which includes"),
        "{}",
        a.explanation
    );
}

fn read_skew() -> H {
    let mut h = H::default();
    h.inv(0, json!([["r", "x", []], ["r", "y", [1]]]));
    h.txn(1, json!([["append", "x", 1], ["append", "y", 1]]));
    h.done(0, OpType::Ok, json!([["r", "x", []], ["r", "y", [1]]]));
    h.txn(2, json!([["r", "x", [1]]]));
    h
}

#[test]
fn detects_g_single_read_skew() {
    let r = la(&read_skew(), "serializable");
    assert_anomaly(
        &r,
        "G-single",
        &[
            "snapshot-isolation",
            "repeatable-read",
            "serializable",
            "strict-serializable",
        ],
        &["read-committed"],
    );
    let a = &r.anomalies["G-single"][0];
    let rels: Vec<&str> = a.cycle.iter().map(|s| s.rel).collect();
    assert!(rels.contains(&"rw") && rels.contains(&"wr"), "{rels:?}");
    assert!(
        a.explanation.contains("does not include"),
        "{}",
        a.explanation
    );
    assert!(r.weakest_not.contains(&"snapshot-isolation".to_string()));
}

#[test]
fn read_committed_allows_read_skew() {
    let r = la(&read_skew(), "read-committed");
    assert_eq!(r.valid, Validity::True, "{r:#?}");
}

#[test]
fn detects_g_nonadjacent() {
    let mut h = H::default();
    let t1 = json!([["r", "x", []], ["r", "w", [1]]]);
    let t3 = json!([["r", "y", [1]], ["r", "z", []]]);
    h.inv(0, t1.clone()).inv(2, t3.clone());
    h.txn(1, json!([["append", "x", 1], ["append", "y", 1]]));
    h.txn(3, json!([["append", "z", 1], ["append", "w", 1]]));
    h.done(0, OpType::Ok, t1).done(2, OpType::Ok, t3);
    h.txn(4, json!([["r", "x", [1]], ["r", "z", [1]]]));
    let r = la(&h, "snapshot-isolation");
    assert_anomaly(
        &r,
        "G-nonadjacent",
        &["snapshot-isolation", "repeatable-read", "serializable"],
        &["read-committed"],
    );
    assert_eq!(r.anomalies["G-nonadjacent"][0].cycle.len(), 4);
}

fn write_skew() -> H {
    let mut h = H::default();
    let t1 = json!([["r", "x", []], ["r", "y", []], ["append", "x", 1]]);
    let t2 = json!([["r", "x", []], ["r", "y", []], ["append", "y", 1]]);
    h.inv(0, t1.clone()).inv(1, t2.clone());
    h.done(0, OpType::Ok, t1).done(1, OpType::Ok, t2);
    h.txn(2, json!([["r", "x", [1]], ["r", "y", [1]]]));
    h
}

#[test]
fn detects_g2_item_write_skew() {
    let r = la(&write_skew(), "serializable");
    assert_anomaly(
        &r,
        "G2-item",
        &["repeatable-read", "serializable"],
        &["snapshot-isolation", "read-committed"],
    );
}

#[test]
fn snapshot_isolation_allows_write_skew() {
    let r = la(&write_skew(), "snapshot-isolation");
    assert_eq!(r.valid, Validity::True, "{r:#?}");
    assert!(r.anomaly_types.is_empty());
}

fn stale_read(same_process: bool) -> H {
    let mut h = H::default();
    h.txn(0, json!([["append", "x", 1]]));
    h.txn(if same_process { 0 } else { 1 }, json!([["r", "x", []]]));
    h.txn(2, json!([["r", "x", [1]]]));
    h
}

#[test]
fn detects_g_single_realtime_stale_read() {
    let h = stale_read(false);
    assert_eq!(la(&h, "serializable").valid, Validity::True);
    let r = la(&h, "strict-serializable");
    assert_anomaly(
        &r,
        "G-single-realtime",
        &["strict-serializable", "strong-snapshot-isolation"],
        &[
            "serializable",
            "snapshot-isolation",
            "strong-session-serializable",
        ],
    );
    let a = &r.anomalies["G-single-realtime"][0];
    assert!(
        a.cycle
            .iter()
            .any(|s| s.rel == "realtime" && s.why.contains("completed (event 1) before")),
        "{a:#?}"
    );
}

#[test]
fn snapshot_isolation_does_not_search_realtime_cycles() {
    let r = la(&stale_read(false), "snapshot-isolation");
    assert_eq!(r.valid, Validity::True);
    assert!(!r.stats.edges.contains_key("realtime"));
    assert!(!r.stats.edges.contains_key("process"));
}

#[test]
fn detects_g_single_process_read_your_writes_violation() {
    let h = stale_read(true);
    let r = la(&h, "strong-session-serializable");
    assert_anomaly(
        &r,
        "G-single-process",
        &[
            "strong-session-serializable",
            "strong-session-snapshot-isolation",
        ],
        &["serializable"],
    );
}

#[test]
fn detects_g0_realtime_and_g0_process() {
    for same in [false, true] {
        let mut h = H::default();
        h.txn(0, json!([["append", "x", 1]]));
        h.txn(if same { 0 } else { 1 }, json!([["append", "x", 2]]));
        h.txn(2, json!([["r", "x", [2, 1]]]));
        let r = la(&h, "strict-serializable");
        let t = if same { "G0-process" } else { "G0-realtime" };
        assert_anomaly(
            &r,
            t,
            &["strict-serializable", "strong-read-uncommitted"],
            &["serializable"],
        );
    }
}

#[test]
fn detects_g1c_realtime_future_read() {
    let mut h = H::default();
    h.txn(0, json!([["r", "y", [1]]]));
    h.txn(1, json!([["append", "y", 1]]));
    let r = la(&h, "strict-serializable");
    assert_anomaly(
        &r,
        "G1c-realtime",
        &["strong-read-committed"],
        &["read-committed"],
    );
}

#[test]
fn detects_g1a_aborted_read() {
    let mut h = H::default();
    h.inv(0, json!([["append", "x", 1]]))
        .done(0, OpType::Fail, json!([["append", "x", 1]]));
    h.txn(1, json!([["r", "x", [1]]]));
    let r = la(&h, "read-committed");
    assert_anomaly(&r, "G1a", &["read-committed"], &["read-uncommitted"]);
}

#[test]
fn detects_g1b_intermediate_read() {
    let mut h = H::default();
    let t = json!([["append", "x", 1], ["append", "x", 2]]);
    h.inv(0, t.clone());
    h.txn(1, json!([["r", "x", [1]]]));
    h.done(0, OpType::Ok, t);
    let r = la(&h, "read-committed");
    assert_anomaly(&r, "G1b", &["read-committed"], &["read-uncommitted"]);
}

#[test]
fn detects_internal_inconsistency() {
    let mut h = H::default();
    h.txn(0, json!([["append", "x", 1], ["r", "x", []]]));
    let r = la(&h, "serializable");
    assert_anomaly(
        &r,
        "internal",
        &["serializable", "snapshot-isolation"],
        &["read-committed"],
    );
    // Read committed does not forbid it (as in Elle): reported, but not against validity.
    let r = la(&h, "read-committed");
    assert_eq!(r.valid, Validity::True);
    assert_eq!(r.other_anomaly_types, vec!["internal".to_string()]);
}

#[test]
fn detects_dirty_update() {
    let mut h = H::default();
    h.inv(0, json!([["append", "x", 1]]))
        .done(0, OpType::Fail, json!([["append", "x", 1]]));
    h.txn(1, json!([["append", "x", 2]]));
    h.txn(2, json!([["r", "x", [1, 2]]]));
    let r = la(&h, "read-committed");
    assert_anomaly(
        &r,
        "dirty-update",
        &["read-committed"],
        &["read-uncommitted"],
    );
    assert!(has(&r, "G1a"));
}

#[test]
fn detects_lost_update() {
    let mut h = H::default();
    let t1 = json!([["r", "x", []], ["append", "x", 1]]);
    let t2 = json!([["r", "x", []], ["append", "x", 2]]);
    h.inv(0, t1.clone()).inv(1, t2.clone());
    h.done(0, OpType::Ok, t1).done(1, OpType::Ok, t2);
    h.txn(2, json!([["r", "x", [1, 2]]]));
    let r = la(&h, "repeatable-read");
    assert_anomaly(
        &r,
        "lost-update",
        &["cursor-stability", "repeatable-read", "snapshot-isolation"],
        &["read-committed"],
    );
}

#[test]
fn detects_duplicate_elements() {
    let mut h = H::default();
    h.txn(0, json!([["append", "x", 1]]));
    h.txn(1, json!([["r", "x", [1, 1]]]));
    let r = la(&h, "read-uncommitted");
    assert_anomaly(
        &r,
        "duplicate-elements",
        &["read-uncommitted", "read-committed"],
        &[],
    );
}

#[test]
fn detects_incompatible_order() {
    let mut h = H::default();
    h.inv(0, json!([["append", "x", 1]]))
        .inv(1, json!([["append", "x", 2]]));
    h.done(0, OpType::Ok, json!([["append", "x", 1]])).done(
        1,
        OpType::Ok,
        json!([["append", "x", 2]]),
    );
    h.txn(2, json!([["r", "x", [1, 2]]]));
    h.txn(3, json!([["r", "x", [2, 1]]]));
    let r = la(&h, "read-committed");
    assert_anomaly(
        &r,
        "incompatible-order",
        &["read-committed"],
        &["read-uncommitted"],
    );
    // No ww edges are inferred from a contradictory order, so no false G0.
    let r = la(&h, "read-uncommitted");
    assert_eq!(r.valid, Validity::True, "{r:#?}");
}

#[test]
fn detects_garbage_read() {
    let mut h = H::default();
    h.txn(0, json!([["r", "x", [5]]]));
    let r = la(&h, "read-uncommitted");
    assert_anomaly(
        &r,
        "garbage-read",
        &["read-uncommitted", "strict-serializable"],
        &[],
    );
}

#[test]
fn info_transactions_may_have_committed() {
    // An info append observed by a read is fine; its unknown reads create no edges.
    let mut h = H::default();
    h.inv(0, json!([["append", "x", 1], ["r", "y", null]]))
        .done(
            0,
            OpType::Info,
            json!([["append", "x", 1], ["r", "y", null]]),
        );
    h.txn(1, json!([["r", "x", [1]], ["append", "y", 1]]));
    h.txn(2, json!([["r", "y", [1]]]));
    let r = la(&h, "strict-serializable");
    assert_eq!(r.valid, Validity::True, "{r:#?}");
}

#[test]
fn nemesis_events_are_ignored() {
    let mut h = read_skew();
    h.ops.insert(
        1,
        Op::new(
            Process::Nemesis,
            OpType::Info,
            "start-partition",
            json!("x"),
        ),
    );
    let r = la(&h, "serializable");
    assert!(has(&r, "G-single"));
}

#[test]
fn rw_register_detects_g1c_and_g_single() {
    let mut h = H::default();
    h.inv(0, json!([["w", "x", 1], ["r", "y", 2]]));
    h.inv(1, json!([["w", "y", 2], ["r", "x", 1]]));
    h.done(0, OpType::Ok, json!([["w", "x", 1], ["r", "y", 2]]));
    h.done(1, OpType::Ok, json!([["w", "y", 2], ["r", "x", 1]]));
    let r = h.check(TxnWorkload::RwRegister, "read-committed");
    assert_anomaly(&r, "G1c", &["read-committed"], &["read-uncommitted"]);
    assert!(r.anomalies["G1c"][0].explanation.contains("which T"));

    let mut h = H::default();
    h.inv(0, json!([["r", "x", null], ["r", "y", 1]]));
    h.txn(1, json!([["w", "x", 1], ["w", "y", 1]]));
    h.done(0, OpType::Ok, json!([["r", "x", null], ["r", "y", 1]]));
    let r = h.check(TxnWorkload::RwRegister, "serializable");
    assert_anomaly(&r, "G-single", &["snapshot-isolation"], &["read-committed"]);
    assert!(r.anomalies["G-single"][0]
        .explanation
        .contains("initial state"));
}

#[test]
fn rw_register_detects_g1a_internal_and_lost_update() {
    let mut h = H::default();
    h.inv(0, json!([["w", "x", 1]]))
        .done(0, OpType::Fail, json!([["w", "x", 1]]));
    h.txn(1, json!([["r", "x", 1]]));
    h.txn(2, json!([["w", "y", 1], ["r", "y", 3]]));
    let t3 = json!([["r", "z", null], ["w", "z", 1]]);
    let t4 = json!([["r", "z", null], ["w", "z", 2]]);
    h.inv(3, t3.clone()).inv(4, t4.clone());
    h.done(3, OpType::Ok, t3).done(4, OpType::Ok, t4);
    let r = h.check(TxnWorkload::RwRegister, "serializable");
    for t in ["G1a", "internal", "lost-update"] {
        assert!(has(&r, t), "{t} missing from {:?}", r.anomaly_types);
    }
}

#[test]
fn unknown_model_is_an_error_suggesting_the_close_model() {
    let h = read_skew();
    let opts = TxnOptions {
        consistency_models: vec!["serialisable".into()],
        ..TxnOptions::default()
    };
    let e = check(&h.ops, &opts).unwrap_err().to_string();
    assert!(
        e.contains("serialisable") && e.contains("did you mean serializable"),
        "{e}"
    );
    assert!(validate_models(&["PL-SI,serializable".into()]).is_ok());
}

#[test]
fn malformed_micro_op_names_its_event() {
    let mut h = H::default();
    h.txn(0, json!([["append", "x", 1]]));
    h.txn(1, json!([["incr", "x", 1]]));
    let e = check(&h.ops, &TxnOptions::default()).unwrap_err();
    assert_eq!(e.event, 3, "the ok completion carrying the micro-op");
    assert!(e.msg.contains("incr"), "{e}");
    let mut h = H::default();
    h.txn(0, json!([["append", "x", [1]]]));
    assert_eq!(check(&h.ops, &TxnOptions::default()).unwrap_err().event, 1);
    // A failed transaction is read from its invocation.
    let mut h = H::default();
    h.inv(0, json!([["append", "x", 1], "junk"])).done(
        0,
        OpType::Fail,
        json!([["append", "x", 1], "junk"]),
    );
    assert_eq!(check(&h.ops, &TxnOptions::default()).unwrap_err().event, 0);
    // An ok completion that changes a written value is rejected.
    let mut h = H::default();
    h.inv(0, json!([["append", "x", 1]]))
        .done(0, OpType::Ok, json!([["append", "x", 2]]));
    let e = check(&h.ops, &TxnOptions::default()).unwrap_err();
    assert!(e.event == 1 && e.msg.contains("written value 2"), "{e}");
}

#[test]
fn malformed_micro_op_is_named_as_such_not_as_a_difference() {
    // `[:append 1]` in both the invocation and the completion: one malformed micro-op.
    let mut h = H::default();
    h.txn(0, json!([["append", 1]]));
    let e = check(&h.ops, &TxnOptions::default()).unwrap_err();
    assert_eq!(
        e.msg,
        "micro-op 0 of the ok completion must be [f, key, value], got [\"append\",1]"
    );
    // Different keys: says which part differs, with both values.
    let mut h = H::default();
    h.inv(0, json!([["append", "x", 1]]))
        .done(0, OpType::Ok, json!([["append", "y", 1]]));
    let e = check(&h.ops, &TxnOptions::default()).unwrap_err();
    assert_eq!(
        e.msg,
        "micro-op 0 of the ok completion has key \"y\" where the invocation (event 0) has \"x\""
    );
    // A malformed invocation under a well-formed completion is the invocation's fault.
    let mut h = H::default();
    h.inv(0, json!([["append", 1]]))
        .done(0, OpType::Ok, json!([["append", "x", 1]]));
    let e = check(&h.ops, &TxnOptions::default()).unwrap_err();
    assert_eq!(e.event, 0, "{e}");
    assert!(e.msg.contains("of the invocation must be"), "{e}");
}

#[test]
fn workload_names_parse() {
    assert_eq!(
        "list-append".parse::<TxnWorkload>(),
        Ok(TxnWorkload::ListAppend)
    );
    assert_eq!(
        "rw-register".parse::<TxnWorkload>(),
        Ok(TxnWorkload::RwRegister)
    );
    assert!("bank"
        .parse::<TxnWorkload>()
        .unwrap_err()
        .contains("list-append"));
}

#[test]
fn exhausted_budget_is_unknown_never_true() {
    let h = stale_read(false);
    let opts = TxnOptions {
        budget: Budget::with_time_limit(Some(std::time::Duration::ZERO)),
        ..TxnOptions::default()
    };
    let r = check(&h.ops, &opts).unwrap();
    assert_eq!(r.valid, Validity::Unknown);
    assert!(!r.unknown.is_empty());
}

#[test]
fn result_serialises_with_contract_fields() {
    let r = la(&read_skew(), "serializable");
    let v = serde_json::to_value(&r).unwrap();
    assert_eq!(v["valid"], json!(false));
    assert!(v["anomaly_types"].as_array().is_some());
    assert!(v["not"].as_array().is_some());
    assert!(v["anomalies"]["G-single"][0]["dot"].as_str().is_some());
    assert!(v["anomalies"]["G-single"][0]["cycle"][0]["why"]
        .as_str()
        .is_some());
}

#[test]
fn read_skew_explanation_names_each_edge() {
    let r = la(&read_skew(), "serializable");
    let a = &r.anomalies["G-single"][0];
    assert!(a
        .explanation
        .contains("T1 read x = [], which does not include T2's append of 1, so T1 < T2 (rw)"));
    assert!(a
        .explanation
        .contains("T1 read y = [1], which includes T2's append of 1, so T2 < T1 (wr)"));
    assert!(a.explanation.ends_with("a contradiction!"));
    assert_eq!(a.txns.len(), 2);
    assert_eq!(a.txns[0].invoke_event, 0);
}

/// When the budget runs out before a component is classified, a component whose every
/// possible cycle is forbidden (strict-serializable) still proves invalidity (`cycle-exists`);
/// for snapshot isolation (which allows some cycles) the classes stay `unknown`.
#[test]
fn exhausted_search_reports_cycle_exists_or_unknown() {
    let h = read_skew();
    let parsed = parse::parse(&h.ops, TxnWorkload::ListAppend).unwrap();
    let unlimited = Budget::unlimited();
    let a = list_append::analyze(&parsed, &infer::Spent::new(&unlimited, 0)).unwrap();
    let g = graph::Graph::from_edges(parsed.txns.len(), &a.edges);
    let spent = Budget::with_time_limit(Some(std::time::Duration::ZERO));
    let strict = models::forbidden_anomalies(&["strict-serializable"]);
    let out = search::search(&g, &parsed, &*a.explainer, &strict, &spent);
    assert!(out.cut && !out.unknown.is_empty());
    assert_eq!(out.anomalies.len(), 1);
    assert_eq!(out.anomalies[0].kind, "cycle-exists");
    let si = models::forbidden_anomalies(&["snapshot-isolation"]);
    let out = search::search(&g, &parsed, &*a.explainer, &si, &spent);
    assert!(out.anomalies.is_empty() && !out.unknown.is_empty());
    // With budget, the same component is named exactly.
    let out = search::search(&g, &parsed, &*a.explainer, &si, &Budget::unlimited());
    assert_eq!(out.anomalies[0].kind, "G-single");
    assert!(out.unknown.is_empty());
}

#[test]
fn too_many_fanout_edges_make_a_clean_result_unknown() {
    let mut h = H::default();
    for i in 0..1500 {
        h.txn(0, json!([["r", "x", null]]));
        h.txn(1, json!([["w", "x", i]]));
    }
    let r = h.check(TxnWorkload::RwRegister, "serializable");
    assert_eq!(r.valid, Validity::Unknown, "{:?}", r.anomaly_types);
    assert!(
        r.unknown.iter().any(|u| u.contains("key x")),
        "{:?}",
        r.unknown
    );
}

// ---- compact parsing and bounded memory ----

/// The values reports show are the recorded ones, whether rebuilt from the micro-ops (the
/// usual case) or kept because rebuilding would not give them back (keyword spellings, `null`
/// read results).
#[test]
fn reported_values_are_the_recorded_ones() {
    for workload in [TxnWorkload::ListAppend, TxnWorkload::RwRegister] {
        for mode in [gen::Mode::StrictSerial, gen::Mode::Buggy] {
            let ops = gen::simulate(&gen::GenOptions {
                workload,
                txns: 400,
                info_ratio: 0.1,
                mode,
                seed: 7,
                ..gen::GenOptions::default()
            });
            let p = parse::parse(&ops, workload).unwrap();
            let pairs = crate::history::pair_positions(&ops).unwrap();
            assert_eq!(p.txns.len(), pairs.len());
            for (t, pr) in p.txns.iter().zip(&pairs) {
                let recorded = match (pr.outcome, pr.complete) {
                    (OpType::Ok, Some(c)) => &ops[c].value,
                    _ => &ops[pr.invoke].value,
                };
                assert_eq!(&p.value(t), recorded, "{workload:?} txn at {}", t.invoke);
            }
        }
    }
    let mut h = H::default();
    h.push(
        0,
        OpType::Invoke,
        json!([[":append", "x", 1], ["r", "y", null]]),
    );
    h.push(
        0,
        OpType::Ok,
        json!([[":append", "x", 1], ["r", "y", null]]),
    );
    h.push(1, OpType::Invoke, json!([["r", "x", "?"]]));
    h.push(1, OpType::Info, json!([["r", "x", "?"]]));
    let p = parse::parse(&h.ops, TxnWorkload::ListAppend).unwrap();
    assert_eq!(p.value(&p.txns[0]), h.ops[1].value);
    assert_eq!(p.value(&p.txns[1]), h.ops[2].value);
}

/// Pushing owned events one at a time (as `netsplit check` streams a file) gives what checking
/// the slice gives.
#[test]
fn streamed_events_check_like_a_slice() {
    let ops = gen::simulate(&gen::GenOptions {
        txns: 2000,
        mode: gen::Mode::Buggy,
        seed: 3,
        ..gen::GenOptions::default()
    });
    let opts = TxnOptions::default();
    let whole = check(&ops, &opts).unwrap();
    let mut p = parse::TxnParser::new(TxnWorkload::ListAppend);
    for op in ops.iter().cloned() {
        p.push(op).unwrap();
    }
    let streamed = check_parsed(&p.finish().unwrap(), &opts).unwrap();
    assert_eq!(
        serde_json::to_value(&whole).unwrap(),
        serde_json::to_value(&streamed).unwrap()
    );
    assert_eq!(whole.valid, Validity::False);
}

/// One read of 10,000 values nobody appended: each is a garbage read, explained in a few
/// hundred bytes (the read is elided), and only the kept ones carry the transaction's value.
#[test]
fn huge_garbage_read_is_reported_compactly() {
    let mut h = H::default();
    let read: Vec<u64> = (0..10_000).collect();
    h.txn(0, json!([["r", "x", read]]));
    let r = la(&h, "serializable");
    assert_eq!(r.valid, Validity::False);
    assert_eq!(r.anomaly_counts["garbage-read"], 10_000);
    let kept = &r.anomalies["garbage-read"];
    assert_eq!(kept.len(), MAX_ANOMALIES_PER_TYPE);
    assert!(
        kept.iter().all(|a| a.explanation.len() < 600),
        "{}",
        kept[0].explanation
    );
    assert!(kept[0].explanation.contains("(10000 elements)"));
}

/// Past the memory limit the inferences are skipped: unknown (or an anomaly found anyway),
/// never valid.
#[test]
fn memory_limit_makes_a_clean_history_unknown() {
    let ops = gen::simulate(&gen::GenOptions {
        txns: 3000,
        seed: 5,
        ..gen::GenOptions::default()
    });
    let mut opts = TxnOptions::default();
    assert_eq!(check(&ops, &opts).unwrap().valid, Validity::True);
    let parsed = parse::parse(&ops, TxnWorkload::ListAppend).unwrap();
    for limit in [1, parsed.bytes() + 1000] {
        opts.budget = Budget::unlimited().with_max_memory(limit);
        let r = check(&ops, &opts).unwrap();
        assert_eq!(r.valid, Validity::Unknown, "limit {limit}");
        assert!(
            r.unknown.iter().any(|u| u.contains("memory limit")),
            "limit {limit}: {:?}",
            r.unknown
        );
    }
    // The edges and the graph of this history take less than the history itself.
    opts.budget = Budget::unlimited().with_max_memory(parsed.bytes() * 2);
    assert_eq!(check(&ops, &opts).unwrap().valid, Validity::True);
}

#[test]
fn long_lists_are_printed_elided() {
    let short: Vec<parse::Scalar> = (1..=3).map(parse::Scalar::Int).collect();
    assert_eq!(parse::fmt_list(&short), "[1 2 3]");
    let long: Vec<parse::Scalar> = (1..=100).map(parse::Scalar::Int).collect();
    let s = parse::fmt_list(&long);
    assert!(s.starts_with("[1 2 3 "), "{s}");
    assert!(
        s.ends_with(" … 93 94 95 96 97 98 99 100] (100 elements)"),
        "{s}"
    );
}

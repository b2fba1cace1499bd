use super::*;
use crate::history::{OpType, Process};
use serde_json::json;
use Validity::*;

#[test]
fn summary_leads_with_the_models_that_fail_then_marks_the_rest() {
    assert_eq!(
        summary(&[
            ("linearizable", False),
            ("sequential", True),
            ("causal", True)
        ]),
        "not linearizable; sequential ✔ causal ✔"
    );
    assert_eq!(
        summary(&[
            ("linearizable", False),
            ("sequential", Unknown),
            ("causal", True),
            ("read-your-writes", False)
        ]),
        "not linearizable; sequential ? causal ✔ read-your-writes ✘"
    );
    assert_eq!(
        summary(&[("linearizable", True), ("causal", True)]),
        "linearizable ✔ causal ✔"
    );
    assert_eq!(
        summary(&[("causal", False), ("read-your-writes", False)]),
        "not causal, not read-your-writes"
    );
}

fn op(p: u64, kind: OpType, f: &str, v: serde_json::Value) -> Op {
    Op::new(Process::Client(p), kind, f, v)
}

/// Process 0 writes 1 then reads the initial value: read-your-writes is violated, the
/// witness names both ops with their results, and the overall verdict is false while
/// monotonic reads holds.
#[test]
fn a_violated_model_names_its_ops_and_fails_the_verdict() {
    let ops = vec![
        op(0, OpType::Invoke, "write", json!(["x", 1])),
        op(0, OpType::Ok, "write", json!(["x", 1])),
        op(0, OpType::Invoke, "read", json!(["x", null])),
        op(0, OpType::Ok, "read", json!(["x", null])),
    ];
    let opts = ModelOptions {
        keyed: true,
        ..Default::default()
    };
    let r = check_models(&ops, &["read-your-writes", "monotonic-reads"], &opts, None).unwrap();
    assert_eq!(r.valid, False);
    assert_eq!(r.strongest.as_deref(), Some("monotonic-reads"));
    let ryw = r.get("read-your-writes").unwrap();
    assert_eq!(ryw.valid, False);
    let events: Vec<usize> = ryw.witness.iter().map(|o| o.invoke).collect();
    assert!(events.contains(&0) && events.contains(&2), "{events:?}");
    let read = ryw.witness.iter().find(|o| o.invoke == 2).unwrap();
    assert_eq!(read.complete, Some(3));
    assert_eq!(read.output, json!(null), "the key is stripped");
    assert_eq!(r.get("monotonic-reads").unwrap().valid, True);
    let j = serde_json::to_value(&r).unwrap();
    assert_eq!(j["models"]["monotonic-reads"]["valid"], json!(true));
    assert_eq!(j["models"]["read-your-writes"]["valid"], json!(false));
    assert_eq!(j["valid"], json!(false));
    assert_eq!(r.summary, "not read-your-writes; monotonic-reads ✔");
}

/// A linearizable history is sequential without a search: the verdict of the
/// linearizability checker is used.
#[test]
fn linearizable_means_sequential_without_a_search() {
    use crate::checker::linear::{self, LinOptions, ModelKind};
    let ops = vec![
        op(0, OpType::Invoke, "write", json!(1)),
        op(0, OpType::Ok, "write", json!(1)),
        op(1, OpType::Invoke, "read", json!(null)),
        op(1, OpType::Ok, "read", json!(1)),
    ];
    let lin = linear::check(&ops, &LinOptions::new(ModelKind::CasRegister)).unwrap();
    assert_eq!(lin.valid, True);
    let opts = ModelOptions::default();
    let r = check_models(&ops, &["linearizable", "sequential"], &opts, Some(&lin)).unwrap();
    assert_eq!(r.get("sequential").unwrap().valid, True);
    assert_eq!(r.summary, "linearizable ✔ sequential ✔");
    // the verdict is taken, not recomputed: a (false) linearizable verdict on store
    // buffering, which the search refutes, carries over to sequential
    let sb = vec![
        op(0, OpType::Invoke, "write", json!(["x", 1])),
        op(0, OpType::Ok, "write", json!(["x", 1])),
        op(1, OpType::Invoke, "write", json!(["y", 1])),
        op(1, OpType::Ok, "write", json!(["y", 1])),
        op(0, OpType::Invoke, "read", json!(["y", null])),
        op(0, OpType::Ok, "read", json!(["y", null])),
        op(1, OpType::Invoke, "read", json!(["x", null])),
        op(1, OpType::Ok, "read", json!(["x", null])),
    ];
    let keyed = ModelOptions {
        keyed: true,
        ..Default::default()
    };
    let r = check_models(&sb, &["sequential"], &keyed, None).unwrap();
    assert_eq!(r.get("sequential").unwrap().valid, False);
    let r = check_models(&sb, &["linearizable", "sequential"], &keyed, Some(&lin)).unwrap();
    assert_eq!(r.get("sequential").unwrap().valid, True);
}

#[test]
fn an_undecided_model_makes_the_verdict_unknown_never_valid() {
    // one value written twice: reads-from unknown, every model undecided
    let ops = vec![
        op(0, OpType::Invoke, "write", json!(1)),
        op(0, OpType::Ok, "write", json!(1)),
        op(1, OpType::Invoke, "write", json!(1)),
        op(1, OpType::Ok, "write", json!(1)),
    ];
    let r = check_models(&ops, &["causal"], &ModelOptions::default(), None).unwrap();
    assert_eq!(r.valid, Unknown);
    assert_eq!(
        serde_json::to_value(&r).unwrap()["models"]["causal"]["valid"],
        json!(null)
    );
}

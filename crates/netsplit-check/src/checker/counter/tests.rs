use super::*;
use serde_json::json;

fn e(p: u64, kind: OpType, f: &str, v: Value) -> Op {
    Op::new(Process::Client(p), kind, f, v)
}

#[test]
fn reads_within_bounds_are_valid() {
    let ops = vec![
        e(0, OpType::Invoke, "add", json!(2)),
        e(1, OpType::Invoke, "read", json!(null)),
        e(0, OpType::Ok, "add", json!(2)),
        e(1, OpType::Ok, "read", json!(0)), // concurrent with the add: 0..=2
        e(1, OpType::Invoke, "read", json!(null)),
        e(1, OpType::Ok, "read", json!(2)),
    ];
    let r = check(&ops).unwrap();
    assert_eq!(r.valid, Validity::True, "{r:?}");
    assert_eq!(r.reads, 2);
}

#[test]
fn detects_read_below_acknowledged_increments() {
    let ops = vec![
        e(0, OpType::Invoke, "add", json!(1)),
        e(0, OpType::Ok, "add", json!(1)),
        e(1, OpType::Invoke, "read", json!(null)),
        e(1, OpType::Ok, "read", json!(0)),
    ];
    let r = check(&ops).unwrap();
    assert_eq!(r.valid, Validity::False);
    assert_eq!(r.errors[0].lower, 1);
}

#[test]
fn detects_read_above_attempted_increments() {
    let ops = vec![
        e(0, OpType::Invoke, "add", json!(1)),
        e(0, OpType::Fail, "add", json!(1)),
        e(1, OpType::Invoke, "read", json!(null)),
        e(1, OpType::Ok, "read", json!(1)), // the only add failed
    ];
    let r = check(&ops).unwrap();
    assert_eq!(r.valid, Validity::False);
    assert_eq!(r.errors[0].upper, 0);
}

#[test]
fn indeterminate_increment_may_count_or_not() {
    let ops = vec![
        e(0, OpType::Invoke, "add", json!(5)),
        e(0, OpType::Info, "add", json!(5)),
        e(1, OpType::Invoke, "read", json!(null)),
        e(1, OpType::Ok, "read", json!(5)),
        e(1, OpType::Invoke, "read", json!(null)),
        e(1, OpType::Ok, "read", json!(0)),
    ];
    assert_eq!(check(&ops).unwrap().valid, Validity::True);
}

#[test]
fn no_reads_is_unknown_and_bad_values_are_errors() {
    let ops = vec![e(0, OpType::Invoke, "add", json!(1))];
    assert_eq!(check(&ops).unwrap().valid, Validity::Unknown);
    let ops = vec![e(0, OpType::Invoke, "add", json!("x"))];
    assert!(check(&ops).is_err());
}

//! Tests of the models' initial states (`--initial`): what each model accepts, and that a
//! `multi-register` map names each register's initial value, as in Knossos.

use super::*;
use crate::history::History;
use serde_json::json;

fn with_initial(model: ModelKind, initial: Value) -> LinOptions {
    LinOptions {
        initial,
        ..LinOptions::new(model)
    }
}

#[test]
fn multi_register_initial_map_gives_each_register_its_value() {
    let read_both = |x: Value, y: Value| {
        History::new()
            .invoke(0, "txn", json!([["r", "x", null], ["r", "y", null]]))
            .ok(0, "txn", json!([["r", "x", x], ["r", "y", y]]))
            .into_ops()
    };
    let opts = with_initial(ModelKind::MultiRegister, json!({"x": 0, "y": 5}));
    let valid = |h: &[crate::history::Op]| check(h, &opts).unwrap().valid;
    assert_eq!(valid(&read_both(json!(0), json!(5))), Validity::True);
    // Not "every register holds the map".
    assert_eq!(
        valid(&read_both(json!({"x": 0, "y": 5}), json!({"x": 0, "y": 5}))),
        Validity::False
    );
    assert_eq!(valid(&read_both(json!(5), json!(0))), Validity::False);
    // A register the map does not name starts null; numeric names match their text.
    let h = History::new()
        .invoke(0, "txn", json!([["r", "z", null], ["r", 1, null]]))
        .ok(0, "txn", json!([["r", "z", null], ["r", 1, "one"]]))
        .into_ops();
    let opts = with_initial(ModelKind::MultiRegister, json!({"1": "one"}));
    assert_eq!(check(&h, &opts).unwrap().valid, Validity::True);
    // The evidence shows the initial state per register.
    let bad = read_both(json!(1), json!(5));
    let opts = with_initial(ModelKind::MultiRegister, json!({"x": 0, "y": 5}));
    let r = check(&bad, &opts).unwrap();
    assert_eq!(r.failures[0].initial_state, json!({"x": 0, "y": 5}));
}

#[test]
fn initial_states_of_the_wrong_type_are_refused() {
    for (model, initial) in [
        (ModelKind::Mutex, json!("x")),
        (ModelKind::Mutex, json!(1)),
        (ModelKind::Mutex, json!({"held": true})),
        (ModelKind::MultiRegister, json!(0)),
        (ModelKind::MultiRegister, json!([0, 0])),
        (ModelKind::Set, json!(1)),
        (ModelKind::FifoQueue, json!({})),
        (ModelKind::Kv, json!(3)),
    ] {
        let e = check_initial(model, &initial).unwrap_err();
        assert!(
            e.starts_with(&format!("the initial state of {model} must be")),
            "{e}"
        );
        let h = History::new().invoke(0, "read", Value::Null).into_ops();
        assert!(check(&h, &with_initial(model, initial)).is_err());
    }
    for (model, initial) in [
        (ModelKind::Mutex, json!(null)),
        (ModelKind::Mutex, json!(true)),
        (ModelKind::Register, json!({"any": ["value"]})),
        (ModelKind::MultiRegister, json!({"x": 0})),
        (ModelKind::Set, json!([1, 2])),
        (ModelKind::Kv, json!("")),
    ] {
        assert_eq!(check_initial(model, &initial), Ok(()), "{model} {initial}");
    }
}

#[test]
fn mutex_initially_held_must_be_released_first() {
    let h = History::new()
        .invoke(0, "acquire", Value::Null)
        .ok(0, "acquire", Value::Null)
        .into_ops();
    let held = with_initial(ModelKind::Mutex, json!(true));
    assert_eq!(check(&h, &held).unwrap().valid, Validity::False);
    let free = with_initial(ModelKind::Mutex, json!(false));
    assert_eq!(check(&h, &free).unwrap().valid, Validity::True);
}

#[test]
fn huge_values_in_errors_are_cut() {
    let big = Value::Array(vec![json!(7); 1 << 16]);
    let h = History::new().invoke(0, "cas", big).into_ops();
    let e = check(&h, &LinOptions::new(ModelKind::CasRegister)).unwrap_err();
    assert!(e.msg.len() < 200, "{} bytes", e.msg.len());
}

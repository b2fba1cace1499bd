use super::*;
use anyhow::Context;

#[test]
fn one_line_names_a_node_once_when_context_and_cause_both_do() {
    let e = Err::<(), _>(anyhow::anyhow!("n1: connection refused"))
        .context("starting etcd on n1")
        .unwrap_err();
    assert_eq!(one_line(&e), "starting etcd on n1: connection refused");
    let e = Err::<(), _>(bad_input("n1: connection refused"))
        .context("n1")
        .unwrap_err();
    assert_eq!(one_line(&e), "n1: connection refused");
    assert_eq!(exit_code_for(&e), EXIT_BAD_INPUT);
}

#[test]
fn one_line_has_no_carriage_return_either() {
    // Found by fuzzing plans: a YAML error quoting a line of carriage returns.
    let e = bad_input("p.yaml: line 2: unclosed '[' (in `[[\r\r\rfaults: []`)");
    assert!(!one_line(&e).contains(['\n', '\r']), "{:?}", one_line(&e));
}

#[test]
fn one_line_is_cut_and_shows_no_control_characters() {
    let e = bad_input(format!(
        "p.yaml: line 1: bad (in `{}\x1b[31m`)",
        "x".repeat(200_000)
    ));
    let l = one_line(&e);
    assert!(l.chars().count() <= MAX_LINE_CHARS + 2, "{}", l.len());
    assert!(l.ends_with(" …") && !l.contains('\x1b'), "{l}");
    assert_eq!(cut_line("a\x1bb", 10), "a?b");
}

#[test]
fn one_line_keeps_causes_that_only_look_alike() {
    let e = Err::<(), _>(anyhow::anyhow!("n12: connection refused"))
        .context("starting etcd on n1")
        .unwrap_err();
    assert_eq!(one_line(&e), "starting etcd on n1: n12: connection refused");
}

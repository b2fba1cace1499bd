use serde_json::json;

#[test]
fn a_pause_is_not_aimed_at_a_killed_node_nor_a_kill_at_a_paused_one() {
    let (f, _nodes) = super::tests::faults_for_hold();
    let cx = f.cx.as_ref().expect("a context");
    let (killed, note) = cx.hold(&json!({"nodes": ["n5"]}), "killed").unwrap();
    assert_eq!((killed, note), (vec!["n5".to_string()], None));
    // Aimed at n5, which is killed: moved to another node, and said so.
    let (paused, note) = cx.hold(&json!({"nodes": ["n5"]}), "paused").unwrap();
    assert_eq!(paused.len(), 1);
    assert_ne!(paused[0], "n5");
    let note = note.expect("a note");
    assert!(note.starts_with("n5 is killed: aimed at "), "{note}");
    // A kill of every node leaves the paused one out.
    let (all, note) = cx.hold(&json!({"targets": "all"}), "killed").unwrap();
    assert!(!all.contains(&paused[0]), "{all:?}");
    assert_eq!(all.len(), 4);
    assert!(note.unwrap().contains("is paused: left out"));
    // Nothing free: skipped, not failed.
    let e = cx
        .hold(&json!({"nodes": [paused[0].clone()]}), "killed")
        .unwrap_err();
    assert!(e.downcast_ref::<super::Skipped>().is_some(), "{e}");
    // Released: the node can be paused again.
    cx.release(&["n5".to_string()], "killed");
    let (again, note) = cx.hold(&json!({"nodes": ["n5"]}), "paused").unwrap();
    assert_eq!((again, note), (vec!["n5".to_string()], None));
}

use super::*;
use serde_json::json;

fn ev(index: u64, time_ms: u64, p: Process, kind: OpType, f: &str) -> Op {
    let mut o = Op::new(p, kind, f, json!(null));
    o.index = index;
    o.time = time_ms * 1_000_000;
    o
}

fn keyed(index: u64, p: u64, kind: OpType, key: u64, node: &str) -> Op {
    let mut o = Op::new(Process::Client(p), kind, "read", json!([key, null]));
    o.index = index;
    o.time = index * 1_000_000;
    o.node = Some(node.to_string());
    o
}

#[test]
fn a_key_crossed_a_partition_when_worked_from_two_components() {
    use OpType::*;
    let mut start = ev(1, 1, Process::Nemesis, Info, "start-partition");
    start.value = json!({"components": [["n1"], ["n2", "n3"]]});
    let ops = vec![
        ev(0, 0, Process::Nemesis, Invoke, "start-partition"),
        start,
        keyed(2, 0, Invoke, 7, "n1"), // key 7 from both sides: crossed
        keyed(3, 1, Invoke, 7, "n2"),
        keyed(4, 2, Invoke, 8, "n2"), // key 8 from one side only
        keyed(5, 3, Invoke, 8, "n3"),
        keyed(6, 0, Ok, 7, "n1"),
        keyed(7, 1, Ok, 7, "n2"),
        keyed(8, 2, Ok, 8, "n2"),
        keyed(9, 3, Ok, 8, "n3"),
        ev(10, 10, Process::Nemesis, Invoke, "stop-partition"),
        ev(11, 11, Process::Nemesis, Info, "stop-partition"),
        keyed(12, 2, Invoke, 8, "n1"), // after the window: does not count
        keyed(13, 2, Ok, 8, "n1"),
    ];
    let a = availability(&ops).unwrap();
    let c = a.windows[0]
        .crossed
        .as_ref()
        .expect("keyed history, named nodes");
    assert_eq!((c.keys, c.crossed), (2, 1));
    assert_eq!(c.sample, vec![json!(7)]);
}

#[test]
fn a_key_crossed_a_kill_when_worked_on_the_killed_node_and_another() {
    use OpType::*;
    let mut kill = ev(1, 1, Process::Nemesis, Info, "start-kill");
    kill.value = json!({"nodes": ["n3"]});
    let ops = vec![
        ev(0, 0, Process::Nemesis, Invoke, "start-kill"),
        kill,
        keyed(2, 0, Invoke, 1, "n3"),
        keyed(3, 1, Invoke, 1, "n1"),
        keyed(4, 0, Info, 1, "n3"),
        keyed(5, 1, Ok, 1, "n1"),
    ];
    let a = availability(&ops).unwrap();
    let c = a.windows[0].crossed.as_ref().unwrap();
    assert_eq!((c.keys, c.crossed), (1, 1));
    // An unkeyed history names no keys.
    let mut plain = ops.clone();
    for o in plain.iter_mut().skip(2) {
        o.value = json!(null);
    }
    assert_eq!(availability(&plain).unwrap().windows[0].crossed, None);
}

#[test]
fn partition_window_counts_only_ops_invoked_inside_it() {
    use OpType::*;
    use Process::*;
    let ops = vec![
        ev(0, 0, Client(0), Invoke, "read"),
        ev(1, 10, Client(0), Ok, "read"),
        ev(2, 20, Nemesis, Invoke, "start-partition"),
        ev(3, 25, Nemesis, Info, "start-partition"),
        ev(4, 30, Client(0), Invoke, "write"),
        ev(5, 1030, Client(0), Info, "write"),
        ev(6, 1040, Client(1), Invoke, "read"),
        ev(7, 1050, Client(1), Fail, "read"),
        ev(8, 1060, Nemesis, Invoke, "stop-partition"),
        ev(9, 1065, Nemesis, Info, "stop-partition"),
        ev(10, 1070, Client(2), Invoke, "read"),
        ev(11, 1100, Client(2), Ok, "read"),
    ];
    let a = availability(&ops).unwrap();
    assert_eq!(a.windows.len(), 1);
    let w = &a.windows[0];
    assert_eq!((w.start_index, w.end_index), (3, Some(8)));
    assert_eq!(
        (w.stats.ops, w.stats.ok, w.stats.fail, w.stats.info),
        (2, 0, 1, 1)
    );
    assert_eq!(w.stats.ok_share, Some(0.0));
    assert_eq!(a.outside_faults.ops, 2);
    assert_eq!(a.outside_faults.ok_share, Some(1.0));
    assert_eq!(a.outside_faults.latency_ms_max, Some(30.0));
    assert_eq!(a.by_fault["start-partition"].ops, 2);
}

#[test]
fn heal_all_closes_every_open_window_and_unclosed_ones_run_to_the_end() {
    use OpType::*;
    use Process::*;
    let ops = vec![
        ev(0, 0, Nemesis, Invoke, "pause"),
        ev(1, 1, Nemesis, Info, "pause"),
        ev(2, 2, Nemesis, Invoke, "kill"),
        ev(3, 3, Nemesis, Info, "kill"),
        ev(4, 4, Client(0), Invoke, "read"),
        ev(5, 5, Client(0), Ok, "read"),
        ev(6, 6, Nemesis, Invoke, "heal-all"),
        ev(7, 7, Nemesis, Info, "heal-all"),
        ev(8, 8, Nemesis, Invoke, "start-packet"),
        ev(9, 9, Nemesis, Info, "start-packet"),
        ev(10, 10, Client(0), Invoke, "read"),
    ];
    let a = availability(&ops).unwrap();
    assert_eq!(a.windows.len(), 3);
    assert_eq!(a.windows[0].end_index, Some(6));
    assert_eq!(a.windows[1].end_index, Some(6));
    assert_eq!(a.windows[2].end_index, None);
    assert_eq!(a.windows[0].stats.ok, 1);
    assert_eq!(a.windows[2].stats.info, 1);
    assert_eq!(a.outside_faults.ops, 0);
    assert_eq!(a.outside_faults.ok_share, None);
}

#[test]
fn runner_histories_with_info_invocations_pair_up_and_summarise_faults() {
    use OpType::*;
    use Process::*;
    let mut failed = ev(7, 7, Nemesis, Info, "start-packet");
    failed.error = Some("n1: kernel lacks sch_netem".into());
    let mut skipped = ev(16, 16, Nemesis, Info, "start-partition");
    skipped.value = serde_json::json!({"skipped": "no leader"});
    let mut clock = ev(11, 11, Nemesis, Info, "bump-clock");
    clock.value = serde_json::json!({"effective": false, "note": "etcd ignores libfaketime"});
    let ops = vec![
        ev(0, 0, Nemesis, Info, "start-partition"),
        ev(1, 1, Nemesis, Info, "start-partition"),
        ev(2, 2, Client(0), Invoke, "read"),
        ev(3, 3, Client(0), Ok, "read"),
        ev(4, 4, Nemesis, Info, "stop-partition"),
        ev(5, 5, Nemesis, Info, "stop-partition"),
        ev(6, 6, Nemesis, Info, "start-packet"),
        failed,
        ev(8, 8, Nemesis, Info, "start-pause"),
        ev(9, 9, Nemesis, Info, "start-pause"),
        ev(10, 10, Nemesis, Info, "bump-clock"),
        clock,
        ev(12, 12, Nemesis, Info, "heal"),
        ev(13, 13, Client(0), Invoke, "read"),
        ev(14, 14, Client(0), Ok, "read"),
        ev(15, 15, Nemesis, Info, "start-partition"),
        skipped,
        ev(17, 17, Client(0), Invoke, "read"),
        ev(18, 18, Client(0), Ok, "read"),
    ];
    let a = availability(&ops).unwrap();
    let spans: Vec<_> = a
        .windows
        .iter()
        .map(|w| (w.fault.as_str(), w.start_index, w.end_index))
        .collect();
    assert_eq!(
        spans,
        vec![
            ("start-partition", 1, Some(4)),
            ("start-pause", 9, Some(12)),
            ("bump-clock", 11, Some(12))
        ]
    );
    assert_eq!(a.windows[0].stats.ops, 1);
    // The read after the skipped partition ran outside every fault.
    assert_eq!(a.outside_faults.ops, 2);
    let kinds: Vec<String> = ["partition", "packet", "pause", "kill", "clock"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let f = fault_summary(&ops, &kinds);
    assert_eq!(f["partition"]["injected"], 1);
    assert_eq!(f["partition"]["skipped"], 1);
    assert_eq!(f["partition"]["failed"], 0);
    assert_eq!(f["partition"]["skip_reasons"][0], "no leader");
    assert_eq!(f["packet"]["injected"], 0);
    assert_eq!(f["packet"]["failed"], 1);
    assert_eq!(f["packet"]["errors"][0], "n1: kernel lacks sch_netem");
    assert_eq!(f["pause"]["injected"], 1);
    assert_eq!(f["kill"]["injected"], 0);
    assert_eq!(f["clock"]["no_effect"], 1);
    assert_eq!(f["clock"]["notes"][0], "etcd ignores libfaketime");
}

#[test]
fn failed_fault_opens_no_window_and_strobe_is_its_own_window() {
    use OpType::*;
    use Process::*;
    let mut failed = ev(1, 1, Nemesis, Info, "start-partition");
    failed.error = Some("n1: iptables exited 1".into());
    let ops = vec![
        ev(0, 0, Nemesis, Invoke, "start-partition"),
        failed,
        ev(2, 2, Nemesis, Invoke, "strobe-clock"),
        ev(3, 3, Client(0), Invoke, "read"),
        ev(4, 4, Client(0), Ok, "read"),
        ev(5, 5, Nemesis, Info, "strobe-clock"),
        ev(6, 6, Client(0), Invoke, "read"),
        ev(7, 7, Client(0), Ok, "read"),
    ];
    let a = availability(&ops).unwrap();
    assert_eq!(a.windows.len(), 1);
    assert_eq!(a.windows[0].fault, "strobe-clock");
    assert_eq!(
        (a.windows[0].start_index, a.windows[0].end_index),
        (2, Some(5))
    );
    assert_eq!(a.windows[0].stats.ops, 1);
    assert_eq!(a.outside_faults.ops, 1);
}

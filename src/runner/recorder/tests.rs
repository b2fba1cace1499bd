use super::*;
use serde_json::json;

#[test]
fn events_are_numbered_in_send_order_and_reach_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("history.jsonl");
    let h = Recorder::start(&path, Instant::now()).unwrap();
    let r = h.recorder();
    for i in 0..1000u64 {
        r.record(Op::new(
            Process::Client(i % 7),
            OpType::Invoke,
            "read",
            json!(i),
        ));
    }
    r.nemesis("start-partition", json!(["n1"]), None);
    r.flush(Duration::from_secs(5));
    // flushed: readable while the writer still runs
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text.lines().count(), 1001);
    drop(r);
    let ops = h.finish().unwrap();
    assert_eq!(ops.len(), 1001);
    assert!(ops.iter().enumerate().all(|(i, o)| o.index == i as u64));
    assert_eq!(ops[5].value, json!(5));
    let (back, _) = crate::history::read_jsonl(
        std::fs::File::open(&path)
            .map(std::io::BufReader::new)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(back, ops);
}

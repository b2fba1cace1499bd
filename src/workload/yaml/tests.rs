use super::*;
use crate::checker::Validity;
use crate::generator::sim::simulate;
use crate::history::{History, OpType};
use crate::plan::RunPlan;

fn build_yaml(text: &str) -> Result<Instance> {
    let v: Value = serde_saphyr::from_str(text).unwrap();
    let opts: BTreeMap<String, Value> = v
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let mut origins = Origins::default();
    origins.add_yaml_under(text, "w.yaml", "workload");
    def("my-wl").build(&WorkloadArgs {
        opts: &opts,
        run: &RunPlan::default(),
        origins: &origins,
    })
}

fn err(text: &str) -> String {
    let Err(e) = build_yaml(text) else {
        panic!("an error expected")
    };
    assert_eq!(crate::error::exit_code_for(&e), 254);
    crate::error::one_line(&e)
}

const QUEUE: &str = "ops:\n  - {f: enqueue, value: unique, weight: 2}\n  - {f: dequeue, \
                         weight: 1}\nfinal: [{f: drain}]\nchecker: total-queue\n";

#[test]
fn the_queue_of_the_docs_generates_its_mix_and_drains_on_every_worker() {
    let w = build_yaml(QUEUE).unwrap();
    assert_eq!((w.name.as_str(), w.vocabulary.as_str()), ("my-wl", "my-wl"));
    let ops = simulate(g::limit(3000, w.workload.generator()), 4, 7, 1000, u64::MAX);
    let enq: Vec<u64> = ops
        .iter()
        .filter(|o| o.f == "enqueue")
        .map(|o| o.value.as_u64().unwrap())
        .collect();
    let deq = ops.iter().filter(|o| o.f == "dequeue").count();
    assert!(
        enq.len() > 1800 && enq.len() < 2200 && deq > 800,
        "{} {deq}",
        enq.len()
    );
    assert!(
        enq.windows(2).all(|p| p[1] == p[0] + 1) && enq[0] == 1,
        "unique: 1, 2, 3, …"
    );
    assert!(ops
        .iter()
        .filter(|o| o.f == "dequeue")
        .all(|o| o.value.is_null()));
    let fin = simulate(w.workload.final_generator().unwrap(), 4, 7, 1000, u64::MAX);
    assert_eq!(fin.len(), 4);
    assert!(fin.iter().all(|o| o.f == "drain"));
    // recorded whole, defaults filled in
    assert_eq!(w.options["ops"][1]["weight"], 1.0);
    assert_eq!(w.options["final"][0]["f"], "drain");
    assert_eq!(w.options["checker"], "total-queue");
}

#[test]
fn the_queue_checker_runs_on_the_history() {
    let w = build_yaml(QUEUE).unwrap();
    let h = History::new()
        .invoke(0, "enqueue", json!(1))
        .ok(0, "enqueue", json!(1))
        .invoke(0, "enqueue", json!(2))
        .ok(0, "enqueue", json!(2))
        .invoke(1, "drain", Value::Null)
        .ok(1, "drain", json!([1]))
        .into_ops();
    let cs = w.workload.check(&h, &Budget::unlimited());
    assert_eq!(cs.len(), 1);
    assert_eq!(cs[0].name, "total-queue");
    assert_eq!(cs[0].valid, Validity::False);
    assert_eq!(cs[0].result["lost"], json!([2]));
}

#[test]
fn value_kinds_make_their_values() {
    let w = build_yaml(
        "ops:\n  - {f: a, value: {int: [3, 5]}}\n  - {f: b, value: {choice: [x, [1, 2]]}}\n  \
             - {f: c, value: {txn: {keys: 2, max_txn_len: 3}}}\n  - {f: d, value: {transfer: \
             {accounts: 3, max_amount: 2}}}\nchecker: counter\n",
    )
    .unwrap();
    let ops = simulate(g::limit(400, w.workload.generator()), 2, 1, 1000, u64::MAX);
    for o in &ops {
        match o.f.as_str() {
            "a" => assert!((3..=5).contains(&o.value.as_i64().unwrap())),
            "b" => assert!(o.value == json!("x") || o.value == json!([1, 2])),
            "c" => {
                let t = o.value.as_array().unwrap();
                assert!(!t.is_empty() && t.len() <= 3);
                assert!(t.iter().all(|m| m[0] == "r" || m[0] == "append"));
            }
            "d" => {
                assert_ne!(o.value["from"], o.value["to"]);
                assert!(o.value["to"].as_u64().unwrap() < 3);
                assert!((1..=2).contains(&o.value["amount"].as_i64().unwrap()));
            }
            f => panic!("{f}"),
        }
    }
    for f in ["a", "b", "c", "d"] {
        assert!(ops.iter().any(|o| o.f == f), "{f}");
    }
}

#[test]
fn a_keyed_workload_sends_pairs_finishes_every_key_and_checks_each() {
    let w = build_yaml(
        "ops:\n  - {f: enqueue, value: {keyed: {keys: 3, value: unique}}}\n  - {f: dequeue, \
             value: {keyed: {keys: 3}}}\nfinal: [{f: drain}]\nchecker: total-queue\n",
    )
    .unwrap();
    let ops = simulate(g::limit(200, w.workload.generator()), 2, 1, 1000, u64::MAX);
    assert!(ops.iter().all(|o| o.value[0].as_u64().unwrap() < 3));
    assert!(ops
        .iter()
        .filter(|o| o.f == "dequeue")
        .all(|o| o.value[1].is_null()));
    let fin = simulate(w.workload.final_generator().unwrap(), 2, 1, 1000, u64::MAX);
    let mut got: Vec<String> = fin.iter().map(|o| o.value.to_string()).collect();
    got.sort();
    assert_eq!(
        got,
        vec!["[0,null]", "[0,null]", "[1,null]", "[1,null]", "[2,null]", "[2,null]"]
    );
    let h = History::new()
        .invoke(0, "enqueue", json!([2, 7]))
        .ok(0, "enqueue", json!([2, 7]))
        .invoke(0, "drain", json!([2, null]))
        .ok(0, "drain", json!([2, []]))
        .into_ops();
    let c = &w.workload.check(&h, &Budget::unlimited())[0];
    assert_eq!(c.valid, Validity::False);
    assert!(
        c.result["summary"].as_str().unwrap().contains("key 2"),
        "{}",
        c.result
    );
}

#[test]
fn a_keyed_register_is_checked_for_linearizability_per_key() {
    let w = build_yaml(
        "vocabulary: register\nops:\n  - {f: read, value: {keyed: {keys: 2}}}\n  - {f: \
             write, value: {keyed: {keys: 2, value: unique}}}\nchecker:\n  linearizable: \
             {model: register}\n",
    )
    .unwrap();
    assert_eq!(w.vocabulary, "register");
    let h = History::new()
        .invoke(0, "write", json!([1, 5]))
        .ok(0, "write", json!([1, 5]))
        .invoke(1, "read", json!([1, null]))
        .ok(1, "read", json!([1, null]))
        .into_ops();
    let c = &w.workload.check(&h, &Budget::unlimited())[0];
    assert_eq!(c.name, "linear");
    assert_eq!(c.valid, Validity::False, "{}", c.result);
}

#[test]
fn several_checkers_by_map_or_list() {
    let w = build_yaml(
        "ops: [{f: add, value: unique}, {f: read}]\nfinal: [{f: read}]\nchecker:\n  - set\n  \
             - unique-ids: {f: add}\n",
    )
    .unwrap();
    let h = History::new()
        .invoke(0, "add", json!(1))
        .ok(0, "add", json!(1))
        .invoke(0, "read", Value::Null)
        .ok(0, "read", json!([1]))
        .into_ops();
    let cs = w.workload.check(&h, &Budget::unlimited());
    let names: Vec<&str> = cs.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, vec!["set", "unique-ids"]);
    assert!(cs.iter().all(|c| c.valid == Validity::True), "{cs:?}");
}

#[test]
fn bank_parameters_reach_the_clients() {
    let w = build_yaml(
        "vocabulary: bank\nops: [{f: transfer, value: {transfer: {accounts: 3}}}, {f: \
             read}]\nchecker: {bank: {accounts: 3, total: 30}}\n",
    )
    .unwrap();
    let p: super::super::bank::BankParams = w.for_db().params().unwrap();
    assert_eq!((p.accounts, p.total), (3, 30));
    let e = err(
        "ops: [{f: transfer, value: {transfer: {accounts: 4}}}]\nchecker: {bank: {accounts: \
             3}}\n",
    );
    assert!(e.contains("4 accounts"), "{e}");
}

#[test]
fn mistakes_are_one_line_naming_the_key_and_line() {
    let e = err("ops: [{f: enqueue, value: uniq}]\nchecker: total-queue\n");
    assert!(
        e.contains("w.yaml: line 1") && e.contains("ops[0]: value: unknown value kind \"uniq\""),
        "{e}"
    );
    let e = err("ops: [{f: enqueue}]\nchecker: total-queues\n");
    assert!(
        e.contains("line 2") && e.contains("unknown checker \"total-queues\""),
        "{e}"
    );
    let e = err("ops: [{f: enqueue}]\nchecker: {linearizable: {model: stack}}\n");
    assert!(e.contains("unknown model 'stack'"), "{e}");
    let e = err("ops: [{f: enqueue}]\nchecker: {linearizable: {}}\n");
    assert!(e.contains("model"), "{e}");
    let e = err("ops: [{f: e}]\nchecker: {transactional: {workload: list-append, consistency_models: [nope]}}\n");
    assert!(e.contains("consistency_models"), "{e}");
    let e = err("ops: [{f: enqueue, wieght: 2}]\nchecker: total-queue\n");
    assert!(e.contains("wieght"), "{e}");
    let e = err("ops: []\nchecker: total-queue\n");
    assert!(e.contains("at least one operation"), "{e}");
    let e = err("ops: [{f: a, weight: 0}]\nchecker: counter\n");
    assert!(e.contains("weights"), "{e}");
    let e = err("ops: [{f: a, value: {keyed: {keys: 2}}}, {f: b}]\nchecker: counter\n");
    assert!(e.contains("op \"b\"") && e.contains("keyed"), "{e}");
    let e = err("ops: [{f: a, value: {keyed: {keys: 2}}}]\nchecker: bank\n");
    assert!(e.contains("bank does not check keyed values"), "{e}");
    let e = err("ops: [{f: a, value: {int: [5, 1]}}]\nchecker: counter\n");
    assert!(e.contains("lo 5 is above hi 1"), "{e}");
    let e = err("ops: [{f: a}]\nchecker: [set, set]\n");
    assert!(e.contains("named twice"), "{e}");
    let e = err("ops: [{f: a}]\n");
    assert!(e.contains("checker"), "{e}");
    let e = err("ops: [{f: a}]\nchecker: {set: {linearizable: maybe}}\n");
    assert!(e.contains("workload.checker.set.linearizable"), "{e}");
}

#[test]
fn unknown_outcomes_pass_through_the_checkers() {
    let w = build_yaml(QUEUE).unwrap();
    let h = History::new()
        .invoke(0, "enqueue", json!(1))
        .event(0, OpType::Info, "enqueue", json!(1))
        .invoke(1, "drain", Value::Null)
        .ok(1, "drain", json!([]))
        .into_ops();
    let c = &w.workload.check(&h, &Budget::unlimited())[0];
    assert_eq!(c.valid, Validity::Unknown, "{}", c.result);
}

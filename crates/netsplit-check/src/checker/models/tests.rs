use super::session::Guarantee;
use super::*;
use crate::checker::Validity;
use crate::history::History;
use crate::rng::Rng;
use serde_json::json;

/// A random tiny history: a sequentially consistent execution (random interleaving, reads of
/// the current value) with, sometimes, a few reads redirected to a random write of their key.
fn gen(rng: &mut Rng) -> Hist {
    let ns = 2 + rng.index(2);
    let keys = 1 + rng.index(2);
    let n = 3 + rng.index(5);
    let mut h = Hist {
        keys,
        sessions: vec![Vec::new(); ns],
        ops: Vec::new(),
    };
    let mut cur = vec![None; keys];
    let mut ws_of: Vec<Vec<usize>> = vec![Vec::new(); keys];
    let noise = rng.chance(0.7);
    for i in 0..n {
        let s = rng.index(ns);
        let key = rng.index(keys);
        let x = rng.unit();
        let (read, write) = if x < 0.45 {
            (true, false)
        } else if x < 0.85 {
            (false, true)
        } else {
            (true, true)
        };
        let read = read.then(|| {
            if noise && rng.chance(0.35) {
                let k = rng.index(ws_of[key].len() + 1);
                if k == 0 {
                    None
                } else {
                    Some(ws_of[key][k - 1])
                }
            } else {
                cur[key]
            }
        });
        h.ops.push(MOp {
            event: i,
            session: s,
            pos: h.sessions[s].len(),
            key,
            read,
            write,
        });
        h.sessions[s].push(i);
        if write {
            cur[key] = Some(i);
            ws_of[key].push(i);
        }
    }
    // Reads may name writes issued later in this generation order (not yet in ws_of): fine,
    // but redirect some to any write of the key to get cross-session, future-looking reads.
    if noise {
        for i in 0..n {
            if h.ops[i].read.is_some() && rng.chance(0.15) {
                let key = h.ops[i].key;
                let cands: Vec<usize> = ws_of[key].iter().copied().filter(|&w| w != i).collect();
                if let Some(&w) = rng.pick(&cands) {
                    h.ops[i].read = Some(Some(w));
                }
            }
        }
    }
    h
}

fn b(v: Validity) -> bool {
    assert_ne!(v, Validity::Unknown);
    v == Validity::True
}

#[test]
fn every_checker_agrees_with_the_brute_force_oracle() {
    let mut rng = Rng::new(25);
    let gs = [
        Guarantee::ReadYourWrites,
        Guarantee::MonotonicReads,
        Guarantee::MonotonicWrites,
        Guarantee::WritesFollowReads,
    ];
    let mut valid = [0usize; 6];
    let total = 4000;
    for t in 0..total {
        let h = gen(&mut rng);
        let seq = b(sequential::check(&h, &Budget::unlimited()).valid);
        assert_eq!(seq, oracle::sequential(&h), "sequential, case {t}: {h:?}");
        let cc = b(causal::check(&h).valid);
        assert_eq!(cc, oracle::causal(&h), "causal, case {t}: {h:?}");
        assert!(!seq || cc, "sequential but not causal: {h:?}");
        valid[0] += seq as usize;
        valid[1] += cc as usize;
        for (k, g) in gs.iter().enumerate() {
            let r = session::check(&h, *g);
            let got = b(r.valid);
            assert_eq!(got, oracle::session(&h, *g), "{g:?}, case {t}: {h:?}");
            assert!(!cc || got, "causal but not {g:?}: {h:?}");
            if !got {
                assert!(!r.witness.is_empty());
            }
            valid[2 + k] += got as usize;
        }
    }
    // Both verdicts are exercised for every model.
    for (k, v) in valid.iter().enumerate() {
        assert!(
            *v > total / 200 && *v < total - total / 200,
            "model {k}: {v} of {total} valid"
        );
    }
}

fn run(ops: &[crate::history::Op], models: &[&str]) -> BTreeMap<String, ModelResult> {
    check(
        ops,
        models,
        &ModelOptions {
            keyed: true,
            budget: Budget::unlimited(),
        },
    )
    .unwrap()
}

#[test]
fn a_stale_read_after_ones_own_write_breaks_read_your_writes_only_so_far() {
    // p0 writes x=1 and then reads x as nil: not even read-your-writes.
    let h = History::new()
        .invoke(0, "write", json!([0, 1]))
        .ok(0, "write", json!([0, 1]))
        .invoke(0, "read", json!([0, null]))
        .ok(0, "read", json!([0, null]))
        .into_ops();
    let r = run(&h, &MODELS);
    assert_eq!(r["read-your-writes"].valid, Validity::False);
    assert_eq!(r["read-your-writes"].witness, vec![0, 2]);
    assert_eq!(r["sequential"].valid, Validity::False);
    assert_eq!(r["causal"].valid, Validity::False);
    assert_eq!(r["monotonic-reads"].valid, Validity::True);
    assert!(!r.contains_key("linearizable"));
    let j = serde_json::to_value(&r["monotonic-reads"]).unwrap();
    assert_eq!(j, json!({"valid": true}));
}

#[test]
fn sequential_but_not_linearizable_is_sequential() {
    // p0 writes x=1 (completes); later p1 reads nil: stale in real time, fine sequentially.
    let h = History::new()
        .invoke(0, "write", json!([0, 1]))
        .ok(0, "write", json!([0, 1]))
        .invoke(1, "read", json!([0, null]))
        .ok(1, "read", json!([0, null]))
        .invoke(1, "read", json!([0, null]))
        .ok(1, "read", json!([0, 1]))
        .into_ops();
    let r = run(&h, &MODELS);
    assert!(r.values().all(|m| m.valid == Validity::True), "{r:?}");
}

#[test]
fn a_value_written_twice_is_unknown_and_a_value_never_written_is_a_violation() {
    let h = History::new()
        .invoke(0, "write", json!([0, 1]))
        .ok(0, "write", json!([0, 1]))
        .invoke(1, "write", json!([0, 1]))
        .ok(1, "write", json!([0, 1]))
        .into_ops();
    let r = run(&h, &["causal"]);
    assert_eq!(r["causal"].valid, Validity::Unknown);
    assert_eq!(
        serde_json::to_value(&r["causal"]).unwrap()["valid"],
        json!(null)
    );
    let h = History::new()
        .invoke(0, "read", json!([0, null]))
        .ok(0, "read", json!([0, 7]))
        .into_ops();
    let r = run(&h, &["monotonic-reads"]);
    assert_eq!(r["monotonic-reads"].valid, Validity::False);
    assert_eq!(r["monotonic-reads"].witness, vec![0]);
}

#[test]
fn an_unobserved_info_write_is_dropped_an_observed_one_counts_and_ends_the_session() {
    let h = History::new()
        .invoke(0, "write", json!([0, 1]))
        .info(0, "write", json!([0, 1]))
        .invoke(0, "read", json!([0, null]))
        .ok(0, "read", json!([0, null]))
        .into_ops();
    // The write may not have happened; and it ended p0's session anyway.
    let r = run(&h, &MODELS);
    assert!(r.values().all(|m| m.valid == Validity::True), "{r:?}");
    let h = History::new()
        .invoke(0, "write", json!([0, 1]))
        .info(0, "write", json!([0, 1]))
        .invoke(1, "read", json!([0, null]))
        .ok(1, "read", json!([0, 1]))
        .invoke(1, "read", json!([0, null]))
        .ok(1, "read", json!([0, null]))
        .into_ops();
    let r = run(&h, &["monotonic-reads"]);
    assert_eq!(r["monotonic-reads"].valid, Validity::False);
}

#[test]
fn model_names_are_checked() {
    assert_eq!(
        parse_models(&["causal".into(), "sequential".into()]).unwrap(),
        vec!["sequential", "causal"]
    );
    assert_eq!(parse_models(&["all".into()]).unwrap().len(), 7);
    let e = parse_models(&["causual".into()]).unwrap_err();
    assert!(
        e.contains("\"causual\"") && e.contains("read-your-writes"),
        "{e}"
    );
}

#[test]
fn the_sequential_search_gives_up_as_unknown_not_valid() {
    let mut rng = Rng::new(7);
    let h = gen(&mut rng);
    let r = sequential::check(&h, &Budget::unlimited().with_max_memory(0));
    assert_eq!(r.valid, Validity::Unknown);
}

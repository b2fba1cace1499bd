use super::sim::simulate;
use super::*;
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};

const MS: u64 = 1_000_000;

fn rw() -> BoxGen {
    mix(vec![
        repeat("read", Value::Null),
        Box::new(from_fn(|ctx| {
            Some(("write".into(), json!(ctx.rng.below(100))))
        })),
    ])
}

#[test]
fn same_seed_replays_the_same_op_stream() {
    let a = simulate(limit(200, rw()), 4, 9, MS, u64::MAX);
    let b = simulate(limit(200, rw()), 4, 9, MS, u64::MAX);
    let c = simulate(limit(200, rw()), 4, 10, MS, u64::MAX);
    assert_eq!(a, b);
    assert_ne!(a, c);
}

#[test]
fn limit_stops_after_n_ops() {
    let ops = simulate(limit(37, rw()), 3, 1, MS, u64::MAX);
    assert_eq!(ops.len(), 37);
}

#[test]
fn mix_draws_from_every_member_roughly_by_weight() {
    let g = mix_weighted(vec![
        (3.0, repeat("read", Value::Null)),
        (1.0, repeat("write", json!(1))),
    ]);
    let ops = simulate(limit(4000, g), 2, 5, MS, u64::MAX);
    let reads = ops.iter().filter(|o| o.f == "read").count();
    assert!((2800..3200).contains(&reads), "reads {reads} of 4000");
}

#[test]
fn mix_drops_exhausted_members() {
    let g = mix(vec![once("a", Value::Null), repeat("b", Value::Null)]);
    let ops = simulate(limit(50, g), 1, 3, MS, u64::MAX);
    assert_eq!(ops.iter().filter(|o| o.f == "a").count(), 1);
    assert_eq!(ops.len(), 50);
}

#[test]
fn time_limit_emits_nothing_at_or_after_the_deadline() {
    let g = time_limit(1.0, stagger(0.01, rw()));
    let ops = simulate(g, 2, 1, MS, u64::MAX);
    assert!(!ops.is_empty());
    assert!(ops.iter().all(|o| o.time < 1_000_000_000));
    // ~100 ops/s for 1 s
    assert!((60..140).contains(&ops.len()), "{}", ops.len());
}

#[test]
fn stagger_gives_the_requested_total_rate_across_threads() {
    // 200 ops/s in total over 10 simulated seconds, on 8 threads.
    let ops = simulate(time_limit(10.0, rate(200.0, rw())), 8, 77, MS, u64::MAX);
    assert!((1850..2150).contains(&ops.len()), "{}", ops.len());
    let threads: BTreeSet<_> = ops.iter().map(|o| o.thread).collect();
    assert!(!threads.is_empty());
    for w in ops.windows(2) {
        assert!(w[1].time >= w[0].time);
        assert!(w[1].time - w[0].time < 2 * 5 * MS);
    }
}

#[test]
fn delay_spaces_ops_exactly() {
    let ops = simulate(limit(5, delay(0.5, rw())), 1, 1, MS, u64::MAX);
    let times: Vec<u64> = ops.iter().map(|o| o.time).collect();
    assert_eq!(times, vec![0, 500 * MS, 1000 * MS, 1500 * MS, 2000 * MS]);
}

#[test]
fn phases_waits_for_every_thread_before_the_next_phase() {
    let g = phases(vec![
        limit(6, repeat("a", Value::Null)),
        limit(3, repeat("b", Value::Null)),
    ]);
    let ops = simulate(g, 3, 1, 10 * MS, u64::MAX);
    assert_eq!(ops.len(), 9);
    let last_a = ops
        .iter()
        .filter(|o| o.f == "a")
        .map(|o| o.time)
        .max()
        .unwrap();
    let first_b = ops
        .iter()
        .filter(|o| o.f == "b")
        .map(|o| o.time)
        .min()
        .unwrap();
    // every `a` has completed (10 ms latency) before the first `b` starts
    assert!(first_b >= last_a + 10 * MS, "{last_a} {first_b}");
}

#[test]
fn each_thread_runs_its_own_copy_on_every_thread() {
    let g = each_thread(|t| limit(2, repeat("read", json!(t))));
    let ops = simulate(g, 4, 1, MS, u64::MAX);
    assert_eq!(ops.len(), 8);
    for o in &ops {
        assert_eq!(o.value, json!(o.thread));
    }
    let g = each_thread_once("read", Value::Null);
    let threads: BTreeSet<_> = simulate(g, 5, 1, MS, u64::MAX)
        .into_iter()
        .map(|o| o.thread)
        .collect();
    assert_eq!(threads, (0..5).collect());
}

#[test]
fn on_threads_only_uses_matching_threads() {
    let g = limit(40, on_threads(|t| t % 2 == 1, rw()));
    let ops = simulate(g, 6, 1, MS, u64::MAX);
    assert_eq!(ops.len(), 40);
    assert!(ops.iter().all(|o| o.thread % 2 == 1));
    // no matching thread: exhausted rather than stuck
    let ops = simulate(on_threads(|t| t > 100, rw()), 3, 1, MS, u64::MAX);
    assert!(ops.is_empty());
}

#[test]
fn independent_concurrent_bounds_ops_per_key_and_groups_threads() {
    let keys: Vec<Value> = (0..7).map(|k| json!(k)).collect();
    let g = independent_concurrent(2, keys, 10, |_k| rw());
    let ops = simulate(g, 5, 3, MS, u64::MAX);
    // 7 keys × 10 ops; thread 4 is left over (5 threads, groups of 2) and idle
    assert_eq!(ops.len(), 70);
    let mut per_key: BTreeMap<i64, usize> = BTreeMap::new();
    let mut threads_per_key: BTreeMap<i64, BTreeSet<usize>> = BTreeMap::new();
    for o in &ops {
        let kv = o.value.as_array().expect("[key, value]");
        assert_eq!(kv.len(), 2);
        let k = kv[0].as_i64().unwrap();
        *per_key.entry(k).or_default() += 1;
        threads_per_key.entry(k).or_default().insert(o.thread);
        assert_ne!(o.thread, 4);
    }
    assert!(per_key.values().all(|&n| n == 10), "{per_key:?}");
    for ts in threads_per_key.values() {
        let v: Vec<_> = ts.iter().collect();
        assert!(v.len() <= 2);
        assert_eq!(*v[0] / 2, *v[v.len() - 1] / 2, "a key stays in one group");
    }
}

#[test]
fn nemesis_cycle_alternates_start_and_stop_at_the_interval() {
    let g = time_limit(
        10.0,
        nemesis_cycle(vec!["partition".into(), "kill".into()], 2.0),
    );
    let ops = simulate(g, 1, 4, MS, u64::MAX);
    let fs: Vec<&str> = ops.iter().map(|o| o.f.as_str()).collect();
    assert_eq!(fs.len(), 4, "{fs:?}");
    for pair in fs.chunks(2) {
        assert!(pair[0].starts_with("start-"));
        assert_eq!(pair[1], pair[0].replace("start-", "stop-"));
    }
    let times: Vec<u64> = ops.iter().map(|o| o.time / MS).collect();
    assert_eq!(times, vec![2000, 4000, 6000, 8000]);
    assert!(simulate(nemesis_cycle(vec![], 1.0), 1, 1, MS, u64::MAX).is_empty());
}

#[test]
fn nemesis_overlap_runs_each_family_on_its_own_shifted_cycle() {
    let g = time_limit(
        9.0,
        nemesis_overlap(vec!["partition".into(), "pause".into()], 2.0),
    );
    let ops = simulate(g, 1, 4, MS, u64::MAX);
    let got: Vec<(u64, &str)> = ops.iter().map(|o| (o.time / MS, o.f.as_str())).collect();
    assert_eq!(
        got,
        vec![
            (2000, "start-partition"),
            (3000, "start-pause"),
            (4000, "stop-partition"),
            (5000, "stop-pause"),
            (6000, "start-partition"),
            (7000, "start-pause"),
            (8000, "stop-partition"),
        ]
    );
    // With k families, every pair is in force together for part of each cycle.
    let fams: Vec<String> = ["partition", "packet", "pause", "kill", "clock"]
        .map(String::from)
        .to_vec();
    let ops = simulate(
        time_limit(60.0, nemesis_overlap(fams.clone(), 5.0)),
        1,
        4,
        MS,
        u64::MAX,
    );
    let mut active = std::collections::BTreeSet::new();
    let mut together = std::collections::BTreeSet::new();
    let mut last = 0;
    for o in &ops {
        assert!(o.time >= last, "ops in time order");
        last = o.time;
        if let Some(f) = o.f.strip_prefix("start-") {
            assert!(active.insert(f.to_string()), "{f} started twice");
            for a in &active {
                for b in &active {
                    if a < b {
                        together.insert((a.clone(), b.clone()));
                    }
                }
            }
        } else if let Some(f) = o.f.strip_prefix("stop-") {
            assert!(active.remove(f), "{f} stopped while not active");
        }
    }
    assert_eq!(
        together.len(),
        10,
        "every pair of 5 families overlaps: {together:?}"
    );
    assert!(simulate(nemesis_overlap(vec![], 1.0), 1, 1, MS, u64::MAX).is_empty());
}

#[test]
fn map_rewrites_ops_and_seq_emits_in_order() {
    let g = map(
        |mut op| {
            op.f = format!("x-{}", op.f);
            op
        },
        seq(vec![("a".into(), json!(1)), ("b".into(), json!(2))]),
    );
    let ops = simulate(g, 1, 1, MS, u64::MAX);
    let fs: Vec<_> = ops.iter().map(|o| (o.f.clone(), o.value.clone())).collect();
    assert_eq!(fs, vec![("x-a".into(), json!(1)), ("x-b".into(), json!(2))]);
}

//! Benchmark of the linearizability checker on info-heavy register histories.
//!
//! ```text
//! cargo run --release --example lin_bench -- [RUNS] [MODE]...  # generate and check
//! cargo run --release --example lin_bench -- gen FILE [SEED] [MODE]  # write JSONL
//! cargo run --release --example lin_bench -- seq N FILE   # a purely sequential register history
//! ```
//! Flags before the arguments change the shape: `--keys N`, `--ops-per-key N`,
//! `--procs-per-key N`, `--affected N`, `--fault-ticks N`, `--time-limit S` (per check).
//! Histories come from `checker::linear::gen::simulate` with its defaults, shaped like the
//! faulted etcd run that ended `unknown` before: 20 keys of 170 operations, 5 clients per key, a
//! fault window in which 2 of them get immediate errors of unknown outcome (≈100 `info`
//! operations on each key, 30% of which took effect), 2% timeouts elsewhere. Values are unique
//! per key (MODE `unique`, as the register workload writes them) or drawn from `0..RANGE`
//! (MODE `RANGE`); a MODE ending in `/stale` makes 2% of reads return an older value, so the
//! history is not linearizable and some key must be refuted exhaustively. Each run uses a new
//! seed; the check is keyed cas-register, as `netsplit check --workload register`.
//! Check the written files with `/usr/bin/time -v netsplit check --workload register FILE` for
//! peak memory.

use netsplit::checker::linear::gen::{simulate, GenOptions};
use netsplit::checker::linear::{check, LinOptions, ModelKind};
use netsplit::history::{JsonlWriter, Op, OpType};
use serde_json::json;
use std::time::{Duration, Instant};

/// The shape flags (see the module docs), removed from `args`.
fn shape(args: &mut Vec<String>) -> (GenOptions, Option<Duration>) {
    let mut o = GenOptions::default();
    let mut limit = None;
    while args.first().is_some_and(|a| a.starts_with("--")) {
        let flag = args.remove(0);
        let v = if args.is_empty() {
            String::new()
        } else {
            args.remove(0)
        };
        let n: usize = v.parse().unwrap_or_else(|_| {
            eprintln!("{flag} needs a number, got {v:?}");
            std::process::exit(254)
        });
        match flag.as_str() {
            "--keys" => o.keys = n,
            "--ops-per-key" => o.ops_per_key = n,
            "--procs-per-key" => o.procs_per_key = n,
            "--affected" => o.affected = n,
            "--fault-ticks" => o.fault_ticks = n as u64,
            "--time-limit" => limit = Some(Duration::from_secs(n as u64)),
            _ => {
                eprintln!("unknown flag {flag}");
                std::process::exit(254)
            }
        }
    }
    (o, limit)
}

/// A MODE: (value range, stale-read percent).
fn mode(a: &str) -> (Option<u64>, u64) {
    let (values, stale) = match a.strip_suffix("/stale") {
        Some(v) => (v, 2),
        None => (a, 0),
    };
    (values.parse().ok(), stale)
}

fn gen(base: &GenOptions, seed: u64, (range, stale): (Option<u64>, u64)) -> Vec<Op> {
    simulate(&GenOptions {
        value_range: range,
        stale_pct: stale,
        seed,
        ..base.clone()
    })
}

fn write(path: &str, ops: &[Op]) {
    let file = std::fs::File::create(path).unwrap_or_else(|e| {
        eprintln!("{path}: {e}");
        std::process::exit(1)
    });
    let mut w = JsonlWriter::new(std::io::BufWriter::new(file));
    for op in ops {
        w.write(op).unwrap_or_else(|e| {
            eprintln!("{path}: {e}");
            std::process::exit(1)
        });
    }
    w.flush().unwrap_or_else(|e| eprintln!("{path}: {e}"));
}

/// The key with the most `info` completions: (key, its ops, its info ops).
fn busiest_key(ops: &[Op]) -> (u64, usize, usize) {
    let mut per: std::collections::BTreeMap<u64, (usize, usize)> = Default::default();
    for o in ops.iter().filter(|o| o.kind != OpType::Invoke) {
        let k = o.value[0].as_u64().unwrap_or(0);
        let e = per.entry(k).or_default();
        e.0 += 1;
        if o.kind == OpType::Info {
            e.1 += 1;
        }
    }
    per.into_iter()
        .max_by_key(|(_, (_, i))| *i)
        .map(|(k, (n, i))| (k, n, i))
        .unwrap_or_default()
}

fn median(mut xs: Vec<Duration>) -> Duration {
    xs.sort();
    xs.get(xs.len() / 2).copied().unwrap_or_default()
}

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let (base, limit) = shape(&mut args);
    match args.first().map(String::as_str) {
        Some("gen") if args.len() >= 2 => {
            let seed = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(1);
            let ops = gen(
                &base,
                seed,
                mode(args.get(3).map_or("unique", String::as_str)),
            );
            write(&args[1], &ops);
            let (k, n, i) = busiest_key(&ops);
            println!(
                "gen: {} events, {} info; key {k}: {n} ops, {i} info",
                ops.len(),
                ops.iter().filter(|o| o.kind == OpType::Info).count()
            );
        }
        Some("seq") if args.len() >= 3 => {
            let n: u64 = args[1].parse().unwrap_or(200_000);
            let mut h = netsplit::history::History::new();
            for i in 0..n / 2 {
                h = h
                    .invoke(0, "write", json!(i))
                    .ok(0, "write", json!(i))
                    .invoke(0, "read", json!(null))
                    .ok(0, "read", json!(i));
            }
            write(&args[2], &h.into_ops());
            println!("seq: {n} ops");
        }
        _ => {
            let runs: u64 = args.first().and_then(|s| s.parse().ok()).unwrap_or(5);
            let modes: Vec<&str> = if args.len() > 1 {
                args[1..].iter().map(String::as_str).collect()
            } else {
                vec!["unique", "5", "unique/stale", "5/stale"]
            };
            for label in modes {
                let m = mode(label);
                println!("{label}:");
                let mut times = Vec::new();
                for seed in 1..=runs {
                    let ops = gen(&base, seed, m);
                    let (k, n, i) = busiest_key(&ops);
                    let mut o = LinOptions::new(ModelKind::CasRegister);
                    o.independent = true;
                    o.budget = netsplit::checker::Budget::with_time_limit(limit);
                    let t = Instant::now();
                    let r = check(&ops, &o).expect("generated histories are well-formed");
                    let el = t.elapsed();
                    times.push(el);
                    println!(
                        "  seed {seed}: {} ops ({} info; key {k}: {n} ops, {i} info) → valid={} in {:.1} ms, {} configurations, info dropped {} bounded {}",
                        ops.len() / 2,
                        r.info_ops,
                        r.valid.as_str(),
                        el.as_secs_f64() * 1e3,
                        r.configurations,
                        r.info_dropped,
                        r.info_bounded
                    );
                }
                println!(
                    "  median {:.1} ms over {runs} runs",
                    median(times).as_secs_f64() * 1e3
                );
            }
        }
    }
}

//! Peak memory and time of one checker on a recorded history, per operation.
//!
//! ```text
//! cargo run --release --example checker_mem -- CHECKER FILE [FILE…]
//! ```
//! CHECKER is `linear` (keyed cas-register, as the register workload), `register` (one
//! register, not keyed), `list-append`,
//! `rw-register`, `set`, `counter`, `bank` (5 accounts, total 100 — the plan's defaults),
//! `stats` or `none` (read the history only). For each FILE, in a fresh process each (run it
//! once per file for clean numbers), it reads the JSON Lines history, runs the checker, and
//! prints the client operations, the peak RSS after reading (the history as `serde_json`
//! values) and after checking, and the checker's time. Histories can come from real runs
//! (`netsplit test --target noop --workload set …` stores `history.jsonl`) or from the
//! `gen` modes of `lin_bench` and `txn_bench`. `netsplit check` reads transactional histories
//! more compactly than this (it streams them); measure it with `/usr/bin/time -v`.

use netsplit::checker::{self, Budget, Validity};
use netsplit::history::{read_jsonl, Op, OpType, Process};
use std::time::Instant;

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

fn valid<T: serde::Serialize>(r: Result<T, checker::CheckError>) -> Validity {
    match r {
        Ok(v) => serde_json::to_value(v)
            .ok()
            .and_then(|v| serde_json::from_value(v["valid"].clone()).ok())
            .unwrap_or(Validity::Unknown),
        Err(e) => {
            eprintln!("check error: {e}");
            Validity::Unknown
        }
    }
}

fn run(which: &str, ops: &[Op]) -> Validity {
    use checker::txn::{TxnOptions, TxnWorkload};
    let txn = |w: TxnWorkload| {
        valid(checker::txn::check(
            ops,
            &TxnOptions {
                workload: w,
                ..TxnOptions::default()
            },
        ))
    };
    match which {
        "linear" => {
            let mut o = checker::linear::LinOptions::new(checker::linear::ModelKind::CasRegister);
            o.independent = true;
            o.budget = Budget::unlimited();
            valid(checker::linear::check(ops, &o))
        }
        "register" => valid(checker::linear::check(
            ops,
            &checker::linear::LinOptions::new(checker::linear::ModelKind::Register),
        )),
        "list-append" => txn(TxnWorkload::ListAppend),
        "rw-register" => txn(TxnWorkload::RwRegister),
        "set" => valid(checker::set::check(ops, &Default::default())),
        "counter" => valid(checker::counter::check(ops)),
        "bank" => valid(checker::bank::check(
            ops,
            &checker::bank::BankOptions {
                accounts: 5,
                total: 100,
                allow_negative: false,
            },
        )),
        "stats" => valid(checker::stats::check(ops)),
        "none" => Validity::True,
        other => {
            eprintln!("unknown checker {other}");
            std::process::exit(254)
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 2 {
        eprintln!("usage: checker_mem CHECKER FILE [FILE…]");
        std::process::exit(254);
    }
    let base = peak_rss_kib();
    for path in &args[1..] {
        let file = std::fs::File::open(path).unwrap_or_else(|e| {
            eprintln!("{path}: {e}");
            std::process::exit(1)
        });
        let (ops, _) = read_jsonl(std::io::BufReader::new(file)).unwrap_or_else(|e| {
            eprintln!("{path}: {e}");
            std::process::exit(1)
        });
        let client = ops
            .iter()
            .filter(|o| o.kind == OpType::Invoke && o.process != Process::Nemesis)
            .count()
            .max(1);
        let read = peak_rss_kib();
        let t = Instant::now();
        let v = run(&args[0], &ops);
        let secs = t.elapsed().as_secs_f64();
        let peak = peak_rss_kib();
        println!(
            "{} {path}: {client} ops, valid={}, {secs:.2} s; peak RSS {} KiB ({} B/op), after reading {} KiB ({} B/op), checker {} B/op",
            args[0],
            v.as_str(),
            peak,
            peak * 1024 / client as u64,
            read,
            read * 1024 / client as u64,
            peak.saturating_sub(read.max(base)) * 1024 / client as u64
        );
    }
}

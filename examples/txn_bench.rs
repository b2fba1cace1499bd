//! Throughput benchmark of the transactional (Elle-style) checker.
//!
//! ```text
//! cargo run --release --example txn_bench -- gen N FILE [SEED] [WORKLOAD] [strict|serial|buggy]
//! cargo run --release --example txn_bench -- check FILE [MODELS] [WORKLOAD] # time the check
//! cargo run --release --example txn_bench -- check FILE --read-only          # history alone
//! cargo run --release --example txn_bench -- stream FILE [MODELS] [WORKLOAD] # as `netsplit check`
//! cargo run --release --example txn_bench -- N [MODELS]                     # both, in memory
//! ```
//! Histories come from `checker::txn::gen::simulate` with Elle-like parameters: 10 concurrent
//! processes, 10 active keys each retired after 32 appends, 1–4 micro-ops per transaction, half
//! reads, 5% failed and 2% indeterminate transactions, strict-serial execution. Run `check`
//! under `/usr/bin/time -v` for peak memory (it includes the loaded history itself, as
//! `serde_json` values); `stream` reads the file line by line into the checker's compact form,
//! as `netsplit check` does, and never holds the history's values.

use netsplit::checker::txn::gen::{simulate, GenOptions, Mode};
use netsplit::checker::txn::parse::TxnParser;
use netsplit::checker::txn::{check, check_parsed, TxnOptions, TxnResult, TxnWorkload};
use netsplit::checker::Budget;
use netsplit::history::{read_jsonl, JsonlWriter, Op};
use std::time::Instant;

fn gen(n: usize, seed: u64, workload: TxnWorkload, mode: Mode) -> Vec<Op> {
    simulate(&GenOptions {
        workload,
        txns: n,
        processes: 10,
        active_keys: 10,
        max_writes_per_key: 32,
        min_len: 1,
        max_len: 4,
        read_ratio: 0.5,
        fail_ratio: 0.05,
        info_ratio: 0.02,
        mode,
        seed,
    })
}

fn opts(models: &str, workload: TxnWorkload) -> TxnOptions {
    TxnOptions {
        workload,
        consistency_models: vec![models.to_string()],
        budget: Budget::unlimited(),
    }
}

fn run_check(ops: &[Op], models: &str, workload: TxnWorkload) {
    let t = Instant::now();
    report(check(ops, &opts(models, workload)), ops.len(), t);
}

fn report(r: Result<TxnResult, netsplit::checker::CheckError>, events: usize, t: Instant) {
    match r {
        Ok(r) => {
            let secs = t.elapsed().as_secs_f64();
            println!(
                "check: {} txns ({} events) in {:.3} s = {:.0} txns/s; valid={} anomalies={:?} edges={:?} components={}",
                r.stats.txns,
                events,
                secs,
                r.stats.txns as f64 / secs,
                r.valid.as_str(),
                r.anomaly_types,
                r.stats.edges,
                r.stats.components
            );
        }
        Err(e) => {
            eprintln!("check failed: {e}");
            std::process::exit(1);
        }
    }
}

fn workload_arg(a: Option<&String>) -> TxnWorkload {
    a.map(|s| s.parse().unwrap_or(TxnWorkload::ListAppend))
        .unwrap_or(TxnWorkload::ListAppend)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("gen") if args.len() >= 3 => {
            let n: usize = args[1].parse().unwrap_or(100_000);
            let seed: u64 = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(1);
            let t = Instant::now();
            let mode = match args.get(5).map(String::as_str) {
                Some("serial") => Mode::Serial,
                Some("buggy") => Mode::Buggy,
                _ => Mode::StrictSerial,
            };
            let ops = gen(n, seed, workload_arg(args.get(4)), mode);
            let file = std::fs::File::create(&args[2]).unwrap_or_else(|e| {
                eprintln!("{}: {e}", args[2]);
                std::process::exit(1)
            });
            let mut w = JsonlWriter::new(std::io::BufWriter::new(file));
            for op in &ops {
                w.write(op).unwrap_or_else(|e| {
                    eprintln!("{}: {e}", args[2]);
                    std::process::exit(1)
                });
            }
            w.flush().unwrap_or_else(|e| eprintln!("{}: {e}", args[2]));
            println!(
                "gen: {n} txns, {} events in {:.2} s",
                ops.len(),
                t.elapsed().as_secs_f64()
            );
        }
        Some("stream") if args.len() >= 2 => {
            use std::io::BufRead;
            let t = Instant::now();
            let file = std::fs::File::open(&args[1]).unwrap_or_else(|e| {
                eprintln!("{}: {e}", args[1]);
                std::process::exit(1)
            });
            let workload = workload_arg(args.get(3));
            let mut p = TxnParser::new(workload);
            for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
                let line = line.unwrap_or_else(|e| {
                    eprintln!("{}: {e}", args[1]);
                    std::process::exit(1)
                });
                if line.trim().is_empty() {
                    continue;
                }
                let op: Op = serde_json::from_str(&line).unwrap_or_else(|e| {
                    eprintln!("{}: line {}: {e}", args[1], i + 1);
                    std::process::exit(1)
                });
                p.push(op).unwrap_or_else(|e| {
                    eprintln!("{}: {e}", args[1]);
                    std::process::exit(1)
                });
            }
            let events = p.events();
            let parsed = p.finish().unwrap_or_else(|e| {
                eprintln!("{}: {e}", args[1]);
                std::process::exit(1)
            });
            println!(
                "stream: {events} events parsed in {:.2} s",
                t.elapsed().as_secs_f64()
            );
            let models = args
                .get(2)
                .map(String::as_str)
                .unwrap_or("strict-serializable");
            let t = Instant::now();
            report(check_parsed(&parsed, &opts(models, workload)), events, t);
        }
        Some("check") if args.len() >= 2 => {
            let t = Instant::now();
            let file = std::fs::File::open(&args[1]).unwrap_or_else(|e| {
                eprintln!("{}: {e}", args[1]);
                std::process::exit(1)
            });
            let (ops, _) = read_jsonl(std::io::BufReader::new(file)).unwrap_or_else(|e| {
                eprintln!("{}: {e}", args[1]);
                std::process::exit(1)
            });
            println!(
                "read: {} events in {:.2} s",
                ops.len(),
                t.elapsed().as_secs_f64()
            );
            if args.get(2).map(String::as_str) == Some("--read-only") {
                return;
            }
            let models = args
                .get(2)
                .map(String::as_str)
                .unwrap_or("strict-serializable");
            run_check(&ops, models, workload_arg(args.get(3)));
        }
        _ => {
            let n: usize = args.first().and_then(|s| s.parse().ok()).unwrap_or(100_000);
            let models = args
                .get(1)
                .map(String::as_str)
                .unwrap_or("strict-serializable");
            let t = Instant::now();
            let ops = gen(n, 1, TxnWorkload::ListAppend, Mode::StrictSerial);
            println!("gen: {n} txns in {:.2} s", t.elapsed().as_secs_f64());
            run_check(&ops, models, TxnWorkload::ListAppend);
        }
    }
}

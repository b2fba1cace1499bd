//! Runner benchmark: how many operations per second the engine records with the in-memory
//! `noop` target and no rate limit, and how much memory each recorded op costs.
//!
//! `cargo run --release --example runner_bench -- [SECONDS] [RUNS] [CONCURRENCY…]`
//! (defaults: 5 s, 3 runs, concurrency 10 and 100). For each concurrency it prints every run
//! and the median, checks that history.jsonl holds exactly 2 events per op (nothing lost), and
//! reports the process's peak RSS divided by the ops recorded in that run.

use netsplit::plan::Plan;
use netsplit::registry::Registry;
use netsplit::runner::{self, Emergency, Interrupt};
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

/// Counts newlines by streaming (so the benchmark itself does not inflate the peak RSS).
fn count_lines(path: &std::path::Path) -> std::io::Result<u64> {
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let mut buf = vec![0u8; 1 << 16];
    let mut n = 0u64;
    loop {
        let k = f.read(&mut buf)?;
        if k == 0 {
            return Ok(n);
        }
        n += buf[..k].iter().filter(|&&b| b == b'\n').count() as u64;
    }
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let secs: f64 = args.first().and_then(|s| s.parse().ok()).unwrap_or(5.0);
    let runs: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(3);
    let concs: Vec<usize> = if args.len() > 2 {
        args[2..].iter().filter_map(|s| s.parse().ok()).collect()
    } else {
        vec![10, 100]
    };
    let store = std::env::temp_dir().join(format!("netsplit-bench-{}", std::process::id()));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    println!(
        "runner benchmark: noop target, counter workload, no rate limit, {secs} s per run, \
         {} worker threads",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );
    for &c in &concs {
        let mut rates = Vec::new();
        for i in 0..runs {
            let mut plan = Plan {
                name: Some(format!("bench-c{c}")),
                ..Plan::default()
            };
            plan.target.name = "noop".into();
            plan.workload.name = "counter".into();
            plan.run.concurrency = c;
            plan.run.rate = 0.0;
            plan.run.time_limit = secs;
            plan.run.seed = Some(i as u64 + 1);
            plan.run.store = store.display().to_string();
            let t0 = Instant::now();
            let out = rt.block_on(runner::run_once(
                &plan,
                &Registry::builtin(),
                &Interrupt::default(),
                &Emergency::default(),
            ))?;
            let wall = t0.elapsed().as_secs_f64();
            let ops = out.results["ops"].as_u64().unwrap_or(0);
            let events = out.results["events"].as_u64().unwrap_or(0);
            let lines = count_lines(&out.run_dir.join("history.jsonl"))?;
            let lost = if lines == events && events == 2 * ops {
                "no event lost"
            } else {
                "EVENTS LOST"
            };
            let rate = ops as f64 / secs;
            let rss = peak_rss_kib();
            println!(
                "  concurrency {c:>4} run {i}: {ops:>9} ops, {rate:>9.0} ops/s, {lines} lines \
                 ({lost}), peak RSS {} MiB = {:.0} B/op (run incl. checking {wall:.1} s)",
                rss / 1024,
                rss as f64 * 1024.0 / ops.max(1) as f64,
            );
            rates.push(rate);
            let _ = std::fs::remove_dir_all(&out.run_dir);
        }
        rates.sort_by(|a, b| a.total_cmp(b));
        println!(
            "concurrency {c}: median {:.0} ops/s",
            rates[rates.len() / 2]
        );
    }
    let _ = std::fs::remove_dir_all(&store);
    Ok(())
}

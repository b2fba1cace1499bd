//! `netsplit analyze RUN_DIR`: re-run the checkers of a stored run from its `plan.yaml` and
//! `history.jsonl` — also an interrupted run's, whose history may end in a truncated line and
//! unmatched invocations (those count as `info`). Rewrites `results.json`, prints the summary,
//! exits by verdict like `netsplit test`.

use crate::store;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The arguments of `netsplit analyze`.
#[derive(Debug, clap::Args)]
pub struct AnalyzeArgs {
    /// A run directory (`reports/<test>/<time>`, or `reports/latest`).
    pub run_dir: PathBuf,
}

/// Runs `netsplit analyze`; returns the process exit code.
pub fn run(args: AnalyzeArgs, registry: &crate::registry::Registry) -> anyhow::Result<u8> {
    let started = Instant::now();
    let dir = &args.run_dir;
    if !dir.is_dir() {
        return Err(crate::error::bad_input(format!(
            "{}: not a run directory",
            dir.display()
        )));
    }
    let (plan, ops, report) = store::load_run(dir)?;
    if let Some(line) = report.truncated_last_line {
        eprintln!(
            "netsplit: note: history.jsonl line {line} was cut short (an interrupted run); \
             ignoring it"
        );
    }
    let workload = registry.build_workload(&plan)?;
    let (valid, checkers) = crate::workload::check(
        workload.workload.as_ref(),
        &ops,
        crate::runner::check_time_limit(&plan),
    );
    let previous: Option<serde_json::Value> = std::fs::read_to_string(dir.join("results.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok());
    let interrupted = previous
        .as_ref()
        .and_then(|p| p["interrupted"].as_bool())
        .unwrap_or(false);
    let mut results = store::results_json(
        &plan,
        &ops,
        valid,
        checkers,
        dir,
        interrupted,
        None,
        started.elapsed(),
    );
    // The run's own duration, not this analysis's: from the earlier results, else the history's
    // last event (a run killed before it stored results).
    let run_elapsed = previous
        .as_ref()
        .and_then(|p| p["elapsed_s"].as_f64())
        .unwrap_or_else(|| ops.iter().map(|o| o.time).max().unwrap_or(0) as f64 / 1e9);
    results["elapsed_s"] = serde_json::json!(run_elapsed);
    results["analysis_s"] =
        serde_json::json!((started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0);
    if let Some(e) = previous.as_ref().and_then(|p| p.get("error")) {
        results["error"] = e.clone();
        crate::report::verdict::annotate(&mut results, plan.expect);
    }
    results["analyzed"] = serde_json::json!(true);
    if let Some(l) = report.truncated_last_line {
        results["history_truncated_at_line"] = serde_json::json!(l);
    }
    store::write_results(dir, &results)?;
    store::write_report(dir, &results, &ops);
    // the store holding this run, <store>/<test>/<run>, if it has an index to keep current
    let real = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.clone());
    if let Some(st) = real.parent().and_then(Path::parent) {
        if st.join("index.html").is_file() {
            crate::report::index::write_logged(st);
        }
    }
    {
        use std::io::Write as _;
        let _ = write!(
            std::io::stdout(),
            "{}",
            crate::report::summary_text(&results)
        );
    }
    Ok(valid.exit_code())
}

//! `netsplit analyze RUN_DIR`: re-run the checkers of a stored run from its `plan.yaml` and
//! `history.jsonl` — also an interrupted run's, whose history may end in a truncated line and
//! unmatched invocations (those count as `info`). Rewrites `results.json`, prints the summary,
//! exits by verdict like `netsplit test`.

use crate::store;
use std::path::PathBuf;
use std::time::Instant;

#[derive(Debug, clap::Args)]
pub struct AnalyzeArgs {
    /// A run directory (`reports/<test>/<time>`, or `reports/latest`).
    pub run_dir: PathBuf,
}

pub fn run(args: AnalyzeArgs) -> anyhow::Result<u8> {
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
    let (valid, checkers) = crate::workload::check(&plan, &ops);
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
    results["analyzed"] = serde_json::json!(true);
    if let Some(l) = report.truncated_last_line {
        results["history_truncated_at_line"] = serde_json::json!(l);
    }
    store::write_results(dir, &results)?;
    store::write_report(dir, &results, &ops);
    print!("{}", store::summary_text(&results));
    Ok(valid.exit_code())
}

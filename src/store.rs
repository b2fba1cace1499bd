//! The store of runs: `<store>/<test-name>/<YYYYmmddTHHMMSS.mmm>/` (UTC)
//! holding `plan.yaml`, `history.jsonl`, `results.json`, `netsplit.log` and `nodes/<node>/…`,
//! with `<store>/latest` and `<store>/<test-name>/latest` pointing at the newest run; the shape of
//! `results.json`; the console summary; and the per-run log sink that `tracing` writes
//! `netsplit.log` through. The store's `index.html` is `netsplit_report::index`'s.

use crate::checker::Validity;
use crate::history::{Op, OpType};
use crate::plan::Plan;
use anyhow::{Context, Result};
use serde_json::{json, Map, Value};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

/// `YYYYmmddTHHMMSS.mmm` (UTC) for a time: the name of a run directory.
pub fn timestamp(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t)
        .format("%Y%m%dT%H%M%S%.3f")
        .to_string()
}

/// Creates a fresh run directory `<store>/<test>/<timestamp>` (a later millisecond if taken).
pub fn create_run_dir(store: &Path, test: &str) -> Result<PathBuf> {
    if crate::plan::RESERVED_NAMES.contains(&test) || test.len() > crate::plan::MAX_NAME_CHARS {
        return Err(crate::error::bad_input(format!(
            "test name {test:?} cannot name a directory of the store (reserved or too long)"
        )));
    }
    let parent = store.join(test);
    // A store path (or a part of it) that is a file is the user's mistake, not the harness's:
    // say which path is in the way, as bad input, instead of the OS's "Not a directory".
    if let Some(file) = parent
        .ancestors()
        .find(|p| p.exists())
        .filter(|p| !p.is_dir())
    {
        return Err(crate::error::bad_input(format!(
            "store {}: {} is a file, not a directory",
            store.display(),
            file.display()
        )));
    }
    std::fs::create_dir_all(&parent)
        .with_context(|| format!("creating store directory {}", parent.display()))?;
    let mut t = SystemTime::now();
    for _ in 0..1000 {
        let dir = parent.join(timestamp(t));
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                t += Duration::from_millis(1);
            }
            Err(e) => {
                return Err(e).with_context(|| format!("creating run directory {}", dir.display()))
            }
        }
    }
    anyhow::bail!(
        "could not find a free run directory under {}",
        parent.display()
    )
}

/// Points `<store>/latest` at `<test>/<run>` and `<store>/<test>/latest` at `<run>` (relative
/// symlinks, replaced atomically).
pub fn update_latest(store: &Path, run_dir: &Path) -> Result<()> {
    let run = run_dir
        .file_name()
        .context("run directory has no name")?
        .to_owned();
    let test_dir = run_dir.parent().context("run directory has no parent")?;
    let test = test_dir.file_name().context("test directory has no name")?;
    relink(&test_dir.join("latest"), Path::new(&run))?;
    relink(&store.join("latest"), &Path::new(test).join(&run))?;
    Ok(())
}

fn relink(link: &Path, to: &Path) -> Result<()> {
    let tmp = link.with_file_name(format!(".latest.{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(to, &tmp)
        .with_context(|| format!("creating symlink {}", tmp.display()))?;
    std::fs::rename(&tmp, link).with_context(|| format!("updating {}", link.display()))
}

/// Counts of client completions per `f`: `{f: {ok, fail, info}}` (unmatched invocations are
/// `info`).
pub fn outcome_counts(ops: &[Op]) -> Map<String, Value> {
    let mut m: std::collections::BTreeMap<String, [u64; 3]> = Default::default();
    let mut open: std::collections::HashMap<u64, String> = Default::default();
    for op in ops {
        let crate::history::Process::Client(p) = op.process else {
            continue;
        };
        match op.kind {
            OpType::Invoke => {
                if let Some(prev) = open.insert(p, op.f.clone()) {
                    m.entry(prev).or_default()[2] += 1;
                }
            }
            k => {
                open.remove(&p);
                let e = m.entry(op.f.clone()).or_default();
                match k {
                    OpType::Ok => e[0] += 1,
                    OpType::Fail => e[1] += 1,
                    _ => e[2] += 1,
                }
            }
        }
    }
    for f in open.into_values() {
        m.entry(f).or_default()[2] += 1;
    }
    m.into_iter()
        .map(|(f, [ok, fail, info])| (f, json!({"ok": ok, "fail": fail, "info": info})))
        .collect()
}

/// The content of results.json.
#[allow(clippy::too_many_arguments)]
pub fn results_json(
    plan: &Plan,
    ops: &[Op],
    valid: Validity,
    checkers: Map<String, Value>,
    run_dir: &Path,
    interrupted: bool,
    error: Option<&str>,
    elapsed: Duration,
) -> Value {
    let client_ops = ops
        .iter()
        .filter(|o| o.process.is_client() && o.kind == OpType::Invoke)
        .count();
    let mut v = json!({
        "valid": valid,
        "checkers": checkers,
        "ops": client_ops,
        "events": ops.len(),
        "by_f": outcome_counts(ops),
        "plan": plan_summary(plan),
        "run_dir": run_dir.display().to_string(),
        "faults": crate::checker::availability::fault_summary(ops, &plan.nemesis.faults),
        "interrupted": interrupted,
        "elapsed_s": (elapsed.as_secs_f64() * 1000.0).round() / 1000.0,
    });
    if let Some(e) = error {
        v["error"] = json!(e);
    }
    // The register consistency models, by name, at the top (also under checkers.models).
    if let Some(m) = v.pointer("/checkers/models/models").cloned() {
        v["models"] = m;
    }
    crate::report::verdict::annotate(&mut v, plan.expect);
    v
}

/// Writes results.json (pretty, via a temporary file so a reader never sees half of it).
pub fn write_results(run_dir: &Path, results: &Value) -> Result<()> {
    let path = run_dir.join("results.json");
    let tmp = run_dir.join(".results.json.tmp");
    let text = serde_json::to_string_pretty(results)? + "\n";
    std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))
}

/// Writes report.html beside results.json. A report that cannot be written is logged, not
/// fatal: results.json and the history already hold everything it shows.
pub fn write_report(run_dir: &Path, results: &Value, ops: &[crate::history::Op]) {
    if let Err(e) = crate::report::write(run_dir, results, ops) {
        tracing::warn!(error = %e, "could not write {}/report.html", run_dir.display());
    }
}

/// The summary values of a run for results.json: not a checker, just what happened.
pub fn plan_summary(plan: &Plan) -> Value {
    json!({
        "name": plan.test_name(),
        "target": plan.target.name,
        "workload": plan.workload.name,
        "nemesis": plan.nemesis.faults,
        "concurrency": plan.run.concurrency,
        "rate": plan.run.rate,
        "time_limit": plan.run.time_limit,
        "seed": plan.seed(),
    })
}

/// Where `tracing` output for the current run goes (`netsplit.log`); `None` between runs.
static RUN_LOG: Mutex<Option<File>> = Mutex::new(None);

/// Directs the run log to a file while the returned guard lives.
pub struct RunLog {
    _private: (),
}

impl RunLog {
    /// Opens (creates) the run's `netsplit.log` and makes it the run log.
    pub fn open(path: &Path) -> Result<RunLog> {
        let f = File::create(path).with_context(|| format!("creating {}", path.display()))?;
        if let Ok(mut g) = RUN_LOG.lock() {
            *g = Some(f);
        }
        Ok(RunLog { _private: () })
    }
}

impl Drop for RunLog {
    fn drop(&mut self) {
        if let Ok(mut g) = RUN_LOG.lock() {
            *g = None;
        }
    }
}

/// A `tracing_subscriber` writer that appends to the current run's `netsplit.log` (and drops
/// output when no run is active). Install with `fmt::layer().with_writer(RunLogWriter)`.
#[derive(Clone, Copy, Default)]
pub struct RunLogWriter;

impl Write for RunLogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut g) = RUN_LOG.lock() {
            if let Some(f) = g.as_mut() {
                f.write_all(buf)?;
            }
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for RunLogWriter {
    type Writer = RunLogWriter;
    fn make_writer(&'a self) -> Self::Writer {
        RunLogWriter
    }
}

/// Reads a stored run's plan and history (tolerating a truncated last line and unmatched
/// invocations, which an interrupted run leaves).
pub fn load_run(run_dir: &Path) -> Result<(Plan, Vec<Op>, crate::history::ReadReport)> {
    let plan_path = run_dir.join("plan.yaml");
    let text = crate::input::read_text(&plan_path, "plan", crate::input::MAX_TEXT_BYTES)?;
    let plan = Plan::from_yaml(&text, &plan_path.display().to_string())?;
    let hist_path = run_dir.join("history.jsonl");
    let f = crate::input::open_regular(&hist_path, "history")?;
    let (mut ops, report) = crate::history::read_jsonl(std::io::BufReader::new(f))
        .map_err(|e| crate::error::bad_input(format!("{}: {e}", hist_path.display())))?;
    crate::history::reindex(&mut ops);
    Ok((plan, ops, report))
}

#[cfg(test)]
mod tests;

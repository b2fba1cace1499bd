//! `<store>/index.html`: the page that lists every run of a store, rewritten after every run
//! (and every `netsplit analyze`), so that a store copied off a CI machine, opened from disk or
//! served by `netsplit serve`, starts with what happened.
//!
//! Two tables: one row per test with its recent verdict history (oldest to newest, each mark
//! linking to that run's report), then every run newest first — time, test, expected, verdict,
//! pass/fail, anomaly summary, ops, duration, faults, link to the report. It reads only the
//! top-level fields of each `results.json` (`crate::verdict::annotate` puts the summary there);
//! a run without results (still running, or killed) is listed as such. Links are relative, so
//! the page works from `file://` and over HTTP alike; nothing external is loaded.

use crate::verdict::{self, Outcome};
use anyhow::{Context, Result};
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

/// Runs listed in the table of all runs at most (the per-test history covers the rest).
const MAX_RUNS: usize = 1000;
/// Runs shown in each test's history.
const HISTORY: usize = 30;

/// One run as the index shows it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Entry {
    pub test: String,
    /// The run directory's name: its start time, `YYYYmmddTHHMMSS.mmm` (UTC).
    pub run: String,
    /// `None`: no results.json (a run still going, or killed before it stored results).
    pub results: Option<Summary>,
}

/// The top-level fields of a results.json the index needs (everything else is skipped
/// unparsed).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Summary {
    pub valid: Value,
    pub expected: Option<String>,
    pub outcome: Option<String>,
    pub anomaly: Option<String>,
    pub ops: Option<u64>,
    pub elapsed_s: Option<f64>,
    pub faults: Value,
    pub error: Option<String>,
    pub interrupted: bool,
}

impl Summary {
    fn as_value(&self) -> Value {
        let mut v = serde_json::json!({"valid": self.valid});
        if let Some(e) = &self.expected {
            v["expected"] = Value::String(e.clone());
        }
        if let Some(o) = &self.outcome {
            v["outcome"] = Value::String(o.clone());
        }
        if let Some(e) = &self.error {
            v["error"] = Value::String(e.clone());
        }
        v
    }
    fn outcome(&self) -> Outcome {
        Outcome::of_results(&self.as_value())
    }
}

/// Reads every run of a store: `<store>/<test>/<run>/` with a `plan.yaml`. Symlinks (`latest`)
/// and dot-entries are skipped. Newest first.
pub(crate) fn scan(store: &Path) -> Result<Vec<Entry>> {
    let mut out = Vec::new();
    let rd = std::fs::read_dir(store).with_context(|| format!("reading {}", store.display()))?;
    for t in rd.flatten() {
        let Some(test) = dir_name(&t) else { continue };
        let Ok(runs) = std::fs::read_dir(t.path()) else {
            continue;
        };
        for r in runs.flatten() {
            let Some(run) = dir_name(&r) else { continue };
            let dir = r.path();
            if !dir.join("plan.yaml").is_file() {
                continue;
            }
            out.push(Entry {
                test: test.clone(),
                run,
                results: read_summary(&dir.join("results.json")),
            });
        }
    }
    out.sort_by(|a, b| b.run.cmp(&a.run).then(a.test.cmp(&b.test)));
    Ok(out)
}

/// The name of a real directory entry (not a symlink, not hidden).
fn dir_name(e: &std::fs::DirEntry) -> Option<String> {
    let ft = e.file_type().ok()?;
    if !ft.is_dir() {
        return None;
    }
    let name = e.file_name().into_string().ok()?;
    (!name.starts_with('.')).then_some(name)
}

fn read_summary(path: &Path) -> Option<Summary> {
    let text = std::fs::read_to_string(path).ok()?;
    let mut s: Summary = serde_json::from_str(&text).ok()?;
    if s.anomaly.is_none() {
        // stored before results carried the summary: work it out from the checkers
        let full: Value = serde_json::from_str(&text).ok()?;
        s.anomaly = Some(verdict::anomaly_summary(&full));
    }
    Some(s)
}

/// Rewrites `<store>/index.html` (through a temporary file, so a reader never sees half).
pub fn write(store: &Path) -> Result<()> {
    let entries = scan(store)?;
    let html = render(&entries);
    let tmp = store.join(format!(".index.html.{}", std::process::id()));
    std::fs::write(&tmp, html).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, store.join("index.html"))
        .with_context(|| format!("writing {}/index.html", store.display()))
}

/// [`write()`], logging instead of failing: the runs themselves are already stored.
pub fn write_logged(store: &Path) {
    if let Err(e) = write(store) {
        tracing::warn!(error = %netsplit_check::error::one_line(&e), "could not write the store's index.html");
    }
}

/// `20261129T142740.208` → `2026-11-29 14:27:40`.
pub(crate) fn pretty_time(run: &str) -> String {
    let b = run.as_bytes();
    if b.len() >= 15 && b[8] == b'T' && run.is_char_boundary(15) {
        format!(
            "{}-{}-{} {}:{}:{}",
            &run[0..4],
            &run[4..6],
            &run[6..8],
            &run[9..11],
            &run[11..13],
            &run[13..15]
        )
    } else {
        run.to_string()
    }
}

const CSS: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}\
h1{margin:.2em 0}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:1.4em}\
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ddd;padding:2px 6px;\
text-align:left;vertical-align:top;font-size:13px}th{background:#f3f3f3}\
.v{font-weight:bold;padding:0 .4em;border-radius:3px;color:#fff;white-space:nowrap}\
.valid{background:#2a7d2a}.invalid{background:#c0262d}.unknown{background:#b27a00}\
.none{background:#999}.pass{color:#2a7d2a;font-weight:bold}.fail{color:#c0262d;font-weight:bold}\
.error{color:#fff;background:#555;font-weight:bold;padding:0 .3em}tr.r-fail td{background:#fff0f0}\
tr.r-error td{background:#f2f2f2}.muted{color:#777}.an{max-width:38em}\
.h a{display:inline-block;width:14px;height:14px;margin-right:2px;border-radius:2px;\
text-decoration:none}.h .pass{background:#3b9b3b}.h .fail{background:#d0303a}\
.h .error{background:#555}.h .none{background:#bbb}";

use crate::esc;

fn verdict_of(s: &Summary) -> &'static str {
    verdict::verdict_word(verdict::validity_of(Some(&s.valid)))
}

/// Faults as the index shows them: `partition 5, clock 2 (no effect), packet 0/2 FAILED`.
pub(crate) fn faults_cell(faults: &Value) -> String {
    let Some(m) = faults.as_object() else {
        return String::new();
    };
    let n = |c: &Value, k: &str| c.get(k).and_then(Value::as_u64).unwrap_or(0);
    m.iter()
        .map(|(kind, c)| {
            if kind == "heal" {
                let errs = c["errors"].as_array().map(Vec::len).unwrap_or(0);
                return format!("heal {errs} FAILED");
            }
            let mut s = format!("{kind} {}", n(c, "injected"));
            if n(c, "failed") > 0 {
                s.push_str(&format!("/{} FAILED", n(c, "failed")));
            }
            if n(c, "no_effect") > 0 {
                s.push_str(" (no effect)");
            }
            if n(c, "skipped") > 0 {
                s.push_str(&format!(" ({} skipped)", n(c, "skipped")));
            }
            s
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn duration(secs: f64) -> String {
    if secs >= 90.0 {
        format!("{}m{:02}s", (secs / 60.0) as u64, (secs % 60.0) as u64)
    } else {
        format!("{secs:.1}s")
    }
}

/// The page. Pure: the same entries give the same string.
pub(crate) fn render(entries: &[Entry]) -> String {
    let mut h = String::with_capacity(16 * 1024 + entries.len() * 400);
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>netsplit runs</title><style>{CSS}</style></head><body>\n<h1>netsplit runs</h1>\n"
    );
    let (pass, fail, error) =
        entries
            .iter()
            .filter_map(|e| e.results.as_ref())
            .fold((0, 0, 0), |(p, f, er), s| match s.outcome() {
                Outcome::Pass => (p + 1, f, er),
                Outcome::Fail => (p, f + 1, er),
                Outcome::Error => (p, f, er + 1),
            });
    let _ = writeln!(
        h,
        "<p class=\"muted\">{} runs: {pass} passed, {fail} failed (verdict differs from the \
         expected one), {error} harness errors. A run passes when its verdict is the one its \
         plan expects (<code>expect:</code>).</p>",
        entries.len()
    );

    // one row per test
    let mut by_test: BTreeMap<&str, Vec<&Entry>> = BTreeMap::new();
    for e in entries {
        by_test.entry(&e.test).or_default().push(e);
    }
    h.push_str(
        "<h2>Tests</h2>\n<table><tr><th>test</th><th>latest</th><th>expected</th>\
         <th>verdict</th><th>result</th><th>history (oldest → newest)</th><th>passed</th></tr>\n",
    );
    for (test, runs) in &by_test {
        // runs are newest first
        let latest = runs[0];
        let shown: Vec<&&Entry> = runs.iter().take(HISTORY).collect();
        let passed = runs
            .iter()
            .filter(|e| {
                e.results
                    .as_ref()
                    .is_some_and(|s| s.outcome() == Outcome::Pass)
            })
            .count();
        let mut marks = String::new();
        for e in shown.iter().rev() {
            let (class, what) = match &e.results {
                Some(s) => (
                    s.outcome().as_str(),
                    format!("{} {}", verdict_of(s), s.outcome().as_str()),
                ),
                None => ("none", "no results".to_string()),
            };
            let _ = write!(
                marks,
                "<a class=\"{class}\" href=\"{}/{}/{}\" title=\"{} — {}\"></a>",
                esc(&e.test),
                esc(&e.run),
                link_target(e),
                esc(&pretty_time(&e.run)),
                esc(&what)
            );
        }
        let _ = writeln!(
            h,
            "<tr><td><b>{}</b></td><td><a href=\"{}/{}/{}\">{}</a></td>{}\
             <td class=\"h\">{marks}</td><td>{passed}/{}</td></tr>",
            esc(test),
            esc(&latest.test),
            esc(&latest.run),
            link_target(latest),
            esc(&pretty_time(&latest.run)),
            verdict_cells(latest),
            runs.len()
        );
    }
    h.push_str("</table>\n");

    // every run, newest first
    h.push_str(
        "<h2>Runs, newest first</h2>\n<table><tr><th>time (UTC)</th><th>test</th>\
         <th>expected</th><th>verdict</th><th>result</th><th>anomaly</th><th>ops</th>\
         <th>duration</th><th>faults</th><th>report</th></tr>\n",
    );
    for e in entries.iter().take(MAX_RUNS) {
        let (class, anomaly, ops, dur, faults) = match &e.results {
            Some(s) => (
                s.outcome().as_str(),
                s.anomaly.clone().unwrap_or_default(),
                s.ops.map(|o| o.to_string()).unwrap_or_default(),
                s.elapsed_s.map(duration).unwrap_or_default(),
                faults_cell(&s.faults),
            ),
            None => (
                "none",
                "no results.json: still running, or killed before it stored results \
                 (netsplit analyze checks what it recorded)"
                    .to_string(),
                String::new(),
                String::new(),
                String::new(),
            ),
        };
        let _ = writeln!(
            h,
            "<tr class=\"r-{class}\"><td>{}</td><td>{}</td>{}<td class=\"an\">{}</td><td>{ops}</td>\
             <td>{dur}</td><td>{}</td><td><a href=\"{}/{}/{}\">{}</a> · \
             <a href=\"{}/{}/\">files</a></td></tr>",
            esc(&pretty_time(&e.run)),
            esc(&e.test),
            verdict_cells(e),
            esc(&anomaly),
            esc(&faults),
            esc(&e.test),
            esc(&e.run),
            link_target(e),
            if e.results.is_some() { "report" } else { "log" },
            esc(&e.test),
            esc(&e.run),
        );
    }
    h.push_str("</table>\n");
    if entries.len() > MAX_RUNS {
        let _ = writeln!(
            h,
            "<p class=\"muted\">… and {} older runs (in the store, not listed).</p>",
            entries.len() - MAX_RUNS
        );
    }
    h.push_str("</body></html>\n");
    h
}

/// What a run's link opens: its report, or its log when it has no results yet.
fn link_target(e: &Entry) -> &'static str {
    if e.results.is_some() {
        "report.html"
    } else {
        "netsplit.log"
    }
}

/// The expected, verdict and result cells of a run.
fn verdict_cells(e: &Entry) -> String {
    match &e.results {
        Some(s) => {
            let v = verdict_of(s);
            let o = s.outcome();
            let extra = if s.interrupted { " (interrupted)" } else { "" };
            format!(
                "<td>{}</td><td><span class=\"v {v}\">{}</span>{extra}</td>\
                 <td><span class=\"{}\">{}</span></td>",
                esc(s.expected.as_deref().unwrap_or("valid")),
                v.to_uppercase(),
                o.as_str(),
                o.as_str().to_uppercase()
            )
        }
        None => "<td></td><td><span class=\"v none\">NONE</span></td><td></td>".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn entry(test: &str, run: &str, r: Value) -> Entry {
        Entry {
            test: test.into(),
            run: run.into(),
            results: Some(serde_json::from_value(r).unwrap()),
        }
    }

    #[test]
    fn index_lists_runs_newest_first_with_a_history_per_test() {
        let dir = std::env::temp_dir().join(format!("netsplit-index-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mk = |test: &str, run: &str, results: Option<Value>| {
            let d = dir.join(test).join(run);
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join("plan.yaml"), "name: x\n").unwrap();
            if let Some(r) = results {
                std::fs::write(d.join("results.json"), r.to_string()).unwrap();
            }
        };
        mk(
            "a<b",
            "20260101T000000.000",
            Some(
                json!({"valid": true, "expected": "valid", "outcome": "pass", "anomaly": "",
                        "ops": 10, "elapsed_s": 3.0, "checkers": {"big": [1, 2, 3]}}),
            ),
        );
        mk(
            "a<b",
            "20260102T000000.000",
            Some(
                json!({"valid": false, "expected": "valid", "outcome": "fail",
                        "anomaly": "set: 2 lost", "ops": 12, "elapsed_s": 4.0,
                        "faults": {"partition": {"injected": 3}}}),
            ),
        );
        mk("z", "20260103T000000.000", None);
        // an old run without the summary fields: judged against the default expectation
        mk(
            "z",
            "20251231T000000.000",
            Some(json!({"valid": false, "checkers": {"bank": {"valid": false,
                        "error_counts": {"wrong-total": 1}}}})),
        );
        std::os::unix::fs::symlink("20260102T000000.000", dir.join("a<b").join("latest")).unwrap();
        write(&dir).unwrap();
        let page = std::fs::read_to_string(dir.join("index.html")).unwrap();
        let rows: Vec<&str> = page
            .lines()
            .filter(|l| l.starts_with("<tr class="))
            .collect();
        assert_eq!(rows.len(), 4, "{page}");
        assert!(
            rows[0].contains("2026-01-03") && rows[0].contains("NONE"),
            "{}",
            rows[0]
        );
        assert!(rows[1].contains("2026-01-02") && rows[1].contains("set: 2 lost"));
        assert!(rows[1].contains("FAIL") && rows[1].contains("partition 3"));
        assert!(
            rows[3].contains("bank: bad reads: 1 wrong-total"),
            "{}",
            rows[3]
        );
        assert!(
            page.contains("a&lt;b") && !page.contains("a<b"),
            "names are escaped"
        );
        assert!(page.contains("href=\"a&lt;b/20260102T000000.000/report.html\""));
        assert!(!page.contains("latest/"), "symlinks are not runs");
        // the history of a<b: oldest (pass) then newest (fail)
        let hist = page.lines().find(|l| l.contains("<b>a&lt;b</b>")).unwrap();
        let p = hist.find("class=\"pass\" href").unwrap();
        let f = hist.find("class=\"fail\" href").unwrap();
        assert!(p < f, "{hist}");
        assert!(hist.contains("1/2"), "{hist}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn faults_cell_is_compact() {
        let f = json!({"partition": {"injected": 5}, "packet": {"injected": 0, "failed": 2},
                       "clock": {"injected": 2, "no_effect": 2}, "heal": {"errors": ["x"]}});
        assert_eq!(
            faults_cell(&f),
            "partition 5, packet 0/2 FAILED, clock 2 (no effect), heal 1 FAILED"
        );
        let e = entry("t", "20260101T010203.004", json!({"valid": "unknown"}));
        assert_eq!(pretty_time(&e.run), "2026-01-01 01:02:03");
    }
}

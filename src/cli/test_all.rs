//! `netsplit test-all [PLAN|DIR]…`: a suite of plans, one after another, for nightly CI.
//!
//! Directories stand for every `*.yaml` in them, in name order. `--shard I/N` keeps every N-th
//! plan of that list starting with the I-th, so N CI machines given the same arguments split the
//! suite without overlap (the CI system runs the machines; netsplit runs one shard on each).
//! Each plan runs as `netsplit test --plan` would (its `expect:` decides pass or fail); a
//! progress bar follows the suite on a terminal (plain lines otherwise), a table ends it, and
//! `--junit` writes one testcase per run. A harness error stops the suite unless
//! `--continue-on-error` (a broken cluster fails every later plan too); the plans not reached are
//! reported as skipped. Exit 0 when every plan passed, 1 when a verdict differed from its
//! expectation, 255 when the harness failed (or the suite was interrupted), 254 for bad
//! arguments.

use crate::plan::{self, Overrides};
use crate::registry::Registry;
use crate::report::junit::{self, Case};
use crate::report::verdict::{self, Outcome};
use crate::runner::{self, Emergency, Interrupt};
use anyhow::Result;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

/// The arguments of `netsplit test-all`.
#[derive(Debug, clap::Args)]
pub struct TestAllArgs {
    /// Plan files, and directories of plans (every `*.yaml` in them, in name order).
    #[arg(required = true, value_name = "PLAN|DIR")]
    pub paths: Vec<PathBuf>,
    /// Run shard I of N (1-based): plans I, I+N, I+2N, … of the list.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<Shard>,
    /// Go on after a harness error; by default the suite stops at the first one and reports
    /// the plans it did not run as skipped.
    #[arg(long)]
    pub continue_on_error: bool,
    /// Write a JUnit XML report here: one testcase per run.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Store directory for every plan (overrides the plans' `run.store`).
    #[arg(long)]
    pub store: Option<String>,
    /// Where the nodes are, for every plan (over the plans' `nodes:`).
    #[command(flatten)]
    pub nodes: crate::nodes::NodeArgs,
}

/// `--shard I/N`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// 1-based.
    pub index: usize,
    /// The number of shards N (at least 1, and at least `index`).
    pub count: usize,
}

impl FromStr for Shard {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Shard, String> {
        let bad = || format!("{s:?}: expected I/N with 1 <= I <= N, e.g. 2/4");
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let index: usize = i.trim().parse().map_err(|_| bad())?;
        let count: usize = n.trim().parse().map_err(|_| bad())?;
        if count == 0 || index == 0 || index > count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

impl Shard {
    /// The plans of this shard: positions `index-1, index-1+count, …` of the list.
    pub fn select<T: Clone>(&self, all: &[T]) -> Vec<T> {
        all.iter()
            .enumerate()
            .filter(|(k, _)| k % self.count == self.index - 1)
            .map(|(_, p)| p.clone())
            .collect()
    }
}

/// The suite's plan files: files as given, directories as their `*.yaml` in name order.
pub fn expand(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let rd = std::fs::read_dir(p).map_err(|e| {
                crate::error::bad_input(format!("cannot read directory {}: {e}", p.display()))
            })?;
            let mut found: Vec<PathBuf> = rd
                .flatten()
                .map(|e| e.path())
                .filter(|f| f.is_file() && f.extension().is_some_and(|x| x == "yaml"))
                .collect();
            found.sort();
            if found.is_empty() {
                return Err(crate::error::bad_input(format!(
                    "{}: no *.yaml plans in this directory",
                    p.display()
                )));
            }
            out.extend(found);
        } else if p.is_file() {
            out.push(p.clone());
        } else {
            return Err(crate::error::bad_input(format!(
                "{}: no such plan file or directory",
                p.display()
            )));
        }
    }
    Ok(out)
}

/// One row of the final table.
struct Row {
    plan: String,
    expected: String,
    verdict: String,
    result: String,
    anomaly: String,
    run_dir: String,
}

/// The test name a plan file would give, for reporting a plan that does not resolve.
fn stem(p: &Path) -> String {
    p.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "plan".into())
}

/// `netsplit test-all` with the workloads, targets and faults of `registry`.
pub fn run(args: TestAllArgs, registry: &Registry) -> Result<u8> {
    let started = SystemTime::now();
    let clock = Instant::now();
    if let Some(path) = &args.junit {
        // Before the suite runs (see `netsplit test`, src/cli/test.rs).
        junit::check_path(path).map_err(|e| crate::error::bad_input(format!("--junit {e}")))?;
    }
    let all = expand(&args.paths)?;
    let plans = match args.shard {
        Some(s) => s.select(&all),
        None => all.clone(),
    };
    let suite_name = match args.shard {
        Some(s) => format!("netsplit test-all shard {}/{}", s.index, s.count),
        None => "netsplit test-all".to_string(),
    };
    let ov = Overrides {
        store: args.store.clone(),
        nodes: args.nodes.clone(),
        ..Overrides::default()
    };
    if plans.is_empty() {
        say!(
            "{suite_name}: no plans in this shard ({} in the suite)",
            all.len()
        );
    }

    let tty = std::io::stderr().is_terminal();
    let bar = ProgressBar::with_draw_target(
        Some(plans.len() as u64),
        if tty {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        },
    );
    bar.set_style(
        ProgressStyle::with_template("{bar:20.cyan/blue} {pos}/{len} {wide_msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let status = Arc::new(std::sync::Mutex::new(String::new()));
    {
        let bar = bar.clone();
        let status = status.clone();
        runner::set_progress_sink(Some(Box::new(move |line: &str| {
            let s = status.lock().map(|s| s.clone()).unwrap_or_default();
            bar.set_message(format!("{s}  {}", line.trim()));
        })));
    }

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("netsplit")
        .build()?;
    let interrupt = Interrupt::default();
    let emergency = Emergency::default();
    let (mut cases, mut rows) = (Vec::<Case>::new(), Vec::<Row>::new());
    let (mut passed, mut failed, mut errors) = (0usize, 0usize, 0usize);
    let mut stopped: Option<String> = None;
    rt.block_on(async {
        let em = emergency.clone();
        interrupt.install_signal_handlers(Arc::new(move || em.heal_and_exit()))?;
        for (k, path) in plans.iter().enumerate() {
            let label = path.display().to_string();
            if let Some(why) = &stopped {
                cases.push(junit::case_skipped(&label, &stem(path), why));
                rows.push(Row {
                    plan: label,
                    expected: String::new(),
                    verdict: String::new(),
                    result: "skipped".into(),
                    anomaly: why.clone(),
                    run_dir: String::new(),
                });
                continue;
            }
            let short = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| label.clone());
            let line = format!("{short}  pass {passed} fail {failed} error {errors}  |");
            if let Ok(mut s) = status.lock() {
                s.clone_from(&line);
            }
            bar.set_message(line);
            if !tty {
                esay!("netsplit: [{}/{}] {label}", k + 1, plans.len());
            }
            let t0 = Instant::now();
            let outcome = async {
                let plan = plan::resolve(Some(path), &ov)?;
                registry.prepare(&plan)?;
                let b = bar.clone();
                let mut on_run = move |o: &runner::RunOutcome| {
                    b.suspend(|| runner::print_summary(o));
                };
                runner::run_tests_with(&plan, registry, &interrupt, &emergency, &mut on_run).await
            }
            .await;
            let mut plan_error = false;
            match outcome {
                Ok(outs) => {
                    for (i, o) in outs.iter().enumerate() {
                        let case = junit::case_for_run(&label, i as u32 + 1, o);
                        let r = &o.results;
                        let res = Outcome::of_results(r);
                        match res {
                            Outcome::Pass => passed += 1,
                            Outcome::Fail => failed += 1,
                            Outcome::Error => {
                                errors += 1;
                                plan_error = true;
                            }
                        }
                        rows.push(Row {
                            plan: if outs.len() > 1 {
                                junit::case_name(&label, i as u32 + 1)
                            } else {
                                label.clone()
                            },
                            expected: verdict::expected_of(r).to_string(),
                            verdict: verdict::verdict_word(o.valid).to_string(),
                            result: res.as_str().to_uppercase(),
                            anomaly: r
                                .get("anomaly")
                                .and_then(|a| a.as_str())
                                .unwrap_or("")
                                .to_string(),
                            run_dir: o.run_dir.display().to_string(),
                        });
                        if !tty {
                            esay!(
                                "netsplit: [{}/{}] {label}: {} (expected {}, verdict {})",
                                k + 1,
                                plans.len(),
                                res.as_str().to_uppercase(),
                                verdict::expected_of(r),
                                verdict::verdict_word(o.valid)
                            );
                        }
                        cases.push(case);
                    }
                    if outs.is_empty() {
                        // interrupted before the first run began
                        plan_error = true;
                    }
                }
                Err(e) => {
                    let msg = crate::error::one_line(&e);
                    bar.suspend(|| esay!("netsplit: {label}: error: {msg}"));
                    errors += 1;
                    plan_error = true;
                    cases.push(junit::case_for_error(
                        &label,
                        &stem(path),
                        &msg,
                        t0.elapsed(),
                    ));
                    rows.push(Row {
                        plan: label.clone(),
                        expected: String::new(),
                        verdict: String::new(),
                        result: "ERROR".into(),
                        anomaly: msg,
                        run_dir: String::new(),
                    });
                }
            }
            bar.inc(1);
            if interrupt.count() > 0 {
                stopped = Some("not run: the suite was interrupted".into());
            } else if plan_error && !args.continue_on_error {
                stopped = Some(format!(
                    "not run: the suite stopped at the harness error of {label} \
                     (--continue-on-error goes on)"
                ));
            }
        }
        anyhow::Ok(())
    })?;
    runner::set_progress_sink(None);
    bar.finish_and_clear();

    print_table(&rows);
    let skipped = rows.iter().filter(|r| r.result == "skipped").count();
    say!(
        "\n{suite_name}: {} plans; runs: {passed} passed, {failed} failed, {errors} harness \
         errors{}",
        plans.len(),
        if skipped > 0 {
            format!(", {skipped} plans not run")
        } else {
            String::new()
        }
    );
    if let Some(path) = &args.junit {
        junit::write(path, &suite_name, &cases, started, clock.elapsed())?;
    }
    Ok(if errors > 0 || interrupt.count() > 0 {
        crate::error::EXIT_HARNESS
    } else if failed > 0 {
        1
    } else {
        0
    })
}

/// The final table: plan, expected, verdict, result, anomaly, run directory.
fn print_table(rows: &[Row]) {
    if rows.is_empty() {
        return;
    }
    let head = [
        "plan",
        "expected",
        "verdict",
        "result",
        "anomaly",
        "run directory",
    ];
    let cells: Vec<[String; 6]> = rows
        .iter()
        .map(|r| {
            [
                r.plan.clone(),
                r.expected.clone(),
                r.verdict.clone(),
                r.result.clone(),
                verdict::cut(&r.anomaly, 70),
                r.run_dir.clone(),
            ]
        })
        .collect();
    let mut width = head.map(|h| h.chars().count());
    for c in &cells {
        for (w, s) in width.iter_mut().zip(c.iter()) {
            *w = (*w).max(s.chars().count());
        }
    }
    let line = |c: &[String]| {
        let mut s = String::new();
        for (i, (cell, w)) in c.iter().zip(width.iter()).enumerate() {
            if i + 1 == c.len() {
                s.push_str(cell);
            } else {
                let pad = w.saturating_sub(cell.chars().count());
                s.push_str(cell);
                s.push_str(&" ".repeat(pad + 2));
            }
        }
        s.trim_end().to_string()
    };
    say!();
    say!("{}", line(&head.map(String::from)));
    for c in &cells {
        say!("{}", line(c));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_split_the_list_without_overlap() {
        let all: Vec<u32> = (0..7).collect();
        let s: Shard = "1/3".parse().unwrap();
        assert_eq!(s.select(&all), vec![0, 3, 6]);
        let s: Shard = "3/3".parse().unwrap();
        assert_eq!(s.select(&all), vec![2, 5]);
        let mut union: Vec<u32> = (1..=3)
            .flat_map(|i| Shard { index: i, count: 3 }.select(&all))
            .collect();
        union.sort();
        assert_eq!(union, all);
        for bad in ["0/3", "4/3", "1/0", "x", "1-3", "/"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
    }

    #[test]
    fn directories_expand_to_their_yaml_in_name_order() {
        let d = std::env::temp_dir().join(format!("netsplit-expand-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(d.join("sub")).unwrap();
        for f in ["b.yaml", "a.yaml", "notes.txt", "sub/c.yaml"] {
            std::fs::write(d.join(f), "").unwrap();
        }
        let got = expand(&[d.clone(), d.join("sub/c.yaml")]).unwrap();
        assert_eq!(
            got,
            vec![d.join("a.yaml"), d.join("b.yaml"), d.join("sub/c.yaml")]
        );
        let e = expand(&[d.join("nope.yaml")]).unwrap_err();
        assert_eq!(crate::error::exit_code_for(&e), 254);
        let e = expand(&[d.join("sub/../sub/..").join("sub").join("x")]).unwrap_err();
        assert!(crate::error::one_line(&e).contains("no such plan"));
        std::fs::remove_dir_all(&d).unwrap();
    }
}

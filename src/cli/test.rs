//! `netsplit test`: resolve the plan (file + presets + flags), run it `--test-count` times, print
//! the summary (with the expected verdict and pass or fail, `crate::report::verdict`), write JUnit when
//! asked (`--junit`, `crate::report::junit`), and exit by verdict (0 valid, 1 invalid, 2 unknown, 254
//! bad input, 255 harness error). The engine is `crate::runner`.

use crate::plan::{self, Overrides};
use crate::registry::Registry;
use crate::report::junit;
use crate::runner::{self, Emergency, Interrupt};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

/// The arguments of `netsplit test`.
#[derive(Debug, clap::Args)]
pub struct TestArgs {
    /// A test plan (YAML); flags override its fields.
    #[arg(long)]
    pub plan: Option<PathBuf>,
    /// The flags that override the plan's fields.
    #[command(flatten)]
    pub overrides: Overrides,
    /// Write a JUnit XML report here: one testcase per run, a failure when the verdict differs
    /// from the expectation.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
}

/// `netsplit test` with the workloads, targets and faults of `registry`.
pub fn run(args: TestArgs, registry: &Registry) -> anyhow::Result<u8> {
    let started = SystemTime::now();
    let clock = Instant::now();
    let label = args
        .plan
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "(command line)".into());
    let junit = args.junit.clone();
    if let Some(path) = &junit {
        // Before anything runs: a report that cannot be written is bad input, not an error
        // after an hour of testing (and never a device or a symlink replaced).
        junit::check_path(path).map_err(|e| crate::error::bad_input(format!("--junit {e}")))?;
    }
    let result = run_plan(args, registry);
    if let Some(path) = junit {
        let cases: Vec<junit::Case> = match &result {
            Ok((_, outs)) => outs
                .iter()
                .enumerate()
                .map(|(i, o)| junit::case_for_run(&label, i as u32 + 1, o))
                .collect(),
            Err(e) => vec![junit::case_for_error(
                &label,
                "netsplit",
                &crate::error::one_line(e),
                clock.elapsed(),
            )],
        };
        junit::write(&path, "netsplit test", &cases, started, clock.elapsed())?;
    }
    result.map(|(code, _)| code)
}

/// Resolves the plan and runs it; the exit code and every run's outcome.
fn run_plan(args: TestArgs, registry: &Registry) -> anyhow::Result<(u8, Vec<runner::RunOutcome>)> {
    let plan = plan::resolve(args.plan.as_deref(), &args.overrides)?;
    // Fail fast on what cannot run, before any directory is made.
    registry.prepare(&plan)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("netsplit")
        .build()?;
    rt.block_on(async move {
        let interrupt = Interrupt::default();
        let emergency = Emergency::default();
        let em = emergency.clone();
        interrupt.install_signal_handlers(Arc::new(move || em.heal_and_exit()))?;
        let outs = runner::run_tests(&plan, registry, &interrupt, &emergency).await?;
        let code = outs
            .iter()
            .map(|o| o.exit_code())
            .max_by_key(|c| match c {
                0 => 0,
                2 => 1,
                1 => 2,
                _ => 3,
            })
            .unwrap_or(crate::error::EXIT_HARNESS);
        Ok((code, outs))
    })
}

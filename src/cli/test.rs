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
    /// Test name (the store directory). Default: TARGET-WORKLOAD.
    #[arg(long)]
    pub name: Option<String>,
    /// Database to test (`noop` needs no nodes).
    #[arg(long)]
    pub target: Option<String>,
    /// Workload (`netsplit list` names them): register, set, counter, bank, list-append, …
    #[arg(long)]
    pub workload: Option<String>,
    /// Faults: a comma-separated list of presets or fault names, or `none`.
    #[arg(long)]
    pub nemesis: Option<String>,
    /// Where the nodes are (over the plan's `nodes:`).
    #[command(flatten)]
    pub nodes: crate::nodes::NodeArgs,
    /// Client workers.
    #[arg(long)]
    pub concurrency: Option<usize>,
    /// Total client ops per second (0: unlimited).
    #[arg(long)]
    pub rate: Option<f64>,
    /// Seconds of the main phase.
    #[arg(long)]
    pub time_limit: Option<f64>,
    /// Seconds between fault starts and stops.
    #[arg(long)]
    pub nemesis_interval: Option<f64>,
    /// How fault families combine: `overlap` (each on its own shifted cycle, several in force
    /// at once; default) or `sequential` (one fault at a time).
    #[arg(long, value_name = "overlap|sequential")]
    pub nemesis_schedule: Option<crate::plan::NemesisSchedule>,
    /// Db option KEY=VALUE (repeatable).
    #[arg(long = "target-opt", value_name = "K=V")]
    pub target_opt: Vec<String>,
    /// Generator seed (random when not given; recorded in plan.yaml).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Store directory (default ./reports).
    #[arg(long)]
    pub store: Option<String>,
    /// Run the test this many times.
    #[arg(long)]
    pub test_count: Option<u32>,
    /// Leave the database running afterwards.
    #[arg(long)]
    pub leave_db_running: bool,
    /// `install` (default): netsplit installs and tears down its own copy of the database;
    /// `existing`: test a database that is already deployed (docs/deployed-databases.md).
    #[arg(long, value_name = "install|existing")]
    pub deploy: Option<crate::plan::Deploy>,
    /// Keep what the workload wrote under the run's namespace (`netsplit/<run id>/`) instead
    /// of deleting it at the end.
    #[arg(long)]
    pub leave_data: bool,
    /// No SSH to the nodes: clients only, no faults (with `--deploy existing`).
    #[arg(long)]
    pub no_ssh: bool,
    /// The verdict the run must reach to pass (overrides the plan's `expect`; default valid).
    /// The exit code stays the verdict's; the console, results.json and JUnit say pass or fail.
    #[arg(long, value_name = "valid|invalid|unknown|any")]
    pub expect: Option<crate::report::verdict::Expect>,
    /// Consistency models to check, comma-separated (the plan's workload `checker: {models}`
    /// for register, `consistency_models` for list-append and rw-register): register takes
    /// linearizable (default), sequential, causal, read-your-writes, monotonic-reads,
    /// monotonic-writes, writes-follow-reads, or all (docs/consistency-models.md).
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pub consistency_models: Option<Vec<String>>,
    /// Write a JUnit XML report here: one testcase per run, a failure when the verdict differs
    /// from the expectation.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
}

impl TestArgs {
    /// The flags as plan overrides.
    pub fn overrides(&self) -> anyhow::Result<Overrides> {
        Ok(Overrides {
            name: self.name.clone(),
            expect: self.expect,
            target: self.target.clone(),
            workload: self.workload.clone(),
            nemesis: self.nemesis.clone(),
            nodes: self.nodes.clone(),
            concurrency: self.concurrency,
            rate: self.rate,
            time_limit: self.time_limit,
            nemesis_interval: self.nemesis_interval,
            nemesis_schedule: self.nemesis_schedule,
            target_opts: self
                .target_opt
                .iter()
                .map(|s| plan::parse_kv(s))
                .collect::<anyhow::Result<_>>()?,
            seed: self.seed,
            store: self.store.clone(),
            test_count: self.test_count,
            leave_db_running: self.leave_db_running,
            deploy: self.deploy,
            leave_data: self.leave_data,
            no_ssh: self.no_ssh,
            consistency_models: self.consistency_models.clone(),
        })
    }
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
    let ov = args.overrides()?;
    let plan = plan::resolve(args.plan.as_deref(), &ov)?;
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

//! The command line: argument structs, one file per subcommand, and the
//! mapping of outcomes to exit codes (0 valid, 1 invalid, 2 unknown, 254 bad input, 255 harness
//! error). Subcommands return an exit code or an error; [`main`] prints errors on one line.

/// `println!` that ignores a closed stdout (`netsplit … | head`) instead of panicking.
macro_rules! say {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($t)*);
    }};
}

/// `eprintln!` counterpart of `say!`.
#[allow(unused_macros)]
macro_rules! esay {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($t)*);
    }};
}

pub mod analyze;
pub mod check;
pub mod client_check;
pub mod cluster;
pub mod exec;
pub mod heal;
pub mod list;
pub mod serve;
pub mod test;
pub mod test_all;

use clap::{Parser, Subcommand};

/// The whole command line: global flags and one subcommand.
#[derive(Debug, Parser)]
#[command(
    name = "netsplit",
    version,
    about = "Fault-injection testing for distributed databases",
    long_about = None
)]
pub struct Cli {
    /// More log output (repeat for more); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Less log output.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// The subcommand to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands of `netsplit`.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a test: a workload against a database on nodes, with faults; record, check, report.
    Test(Box<test::TestArgs>),
    /// Run a suite of plans (files, or directories of *.yaml), each against its expected
    /// verdict; for nightly CI (shards, JUnit).
    TestAll(Box<test_all::TestAllArgs>),
    /// Serve a store over HTTP, read-only: the index of runs, every report and file.
    Serve(serve::ServeArgs),
    /// Check one or more recorded histories.
    Check(check::CheckArgs),
    /// Try a custom client program (`--target-opt client=CMD`) on a few requests of a
    /// workload, and say whether each answer is well formed (docs/custom-clients.md).
    ClientCheck(Box<client_check::ClientCheckArgs>),
    /// Re-run the checkers on a stored run.
    Analyze(analyze::AnalyzeArgs),
    /// Make, inspect or remove a local cluster of network-namespace nodes.
    Cluster(cluster::ClusterArgs),
    /// Run a command on every node (or one) over SSH.
    Exec(exec::ExecArgs),
    /// Find and undo faults an earlier (killed) run left on the nodes; report per node.
    Heal(heal::HealArgs),
    /// List the workloads, targets and faults this build knows.
    List,
    /// (Internal) the userspace packet-fault emulation the nemesis starts on a node whose
    /// kernel lacks sch_netem: applies a behaviour to the packets of an NFQUEUE queue.
    #[command(hide = true)]
    NetemHelper(NetemHelperArgs),
    /// (Internal) the fault file system the disk faults use: mounted over a database's data
    /// directory, passing everything through to it, holding unsynced writes
    /// (src/nemesis/diskfs.rs).
    #[command(hide = true)]
    Diskfs(DiskfsArgs),
    /// (Internal) sends one JSON command to a running fault file system and prints its answer.
    #[command(hide = true)]
    DiskfsCtl(DiskfsCtlArgs),
}

/// The arguments of the hidden `netsplit diskfs`.
#[derive(Debug, clap::Args)]
pub struct DiskfsArgs {
    /// The directory to mount over (and pass through to).
    #[arg(long)]
    pub dir: std::path::PathBuf,
    /// The control socket to serve.
    #[arg(long)]
    pub control: std::path::PathBuf,
    /// Seed of the file system's random choices (same seed, same choices).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// The arguments of the hidden `netsplit diskfs-ctl`.
#[derive(Debug, clap::Args)]
pub struct DiskfsCtlArgs {
    /// The file system's control socket.
    #[arg(long)]
    pub control: std::path::PathBuf,
    /// The command, one JSON object (`{"cmd": "lose-unsynced"}`).
    pub command: String,
}

/// The arguments of the hidden `netsplit netem-helper`.
#[derive(Debug, clap::Args)]
pub struct NetemHelperArgs {
    /// The NFQUEUE queue number to bind.
    #[arg(long)]
    pub queue: u16,
    /// The behaviour, as JSON (the `behaviour` of a start-packet operation).
    #[arg(long)]
    pub behaviour: String,
    /// Seed of the behaviour's random choices (loss, duplication…).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

fn netem_helper(a: NetemHelperArgs) -> anyhow::Result<u8> {
    let b: crate::nemesis::Behaviour = serde_json::from_str(&a.behaviour)
        .map_err(|e| crate::error::bad_input(format!("--behaviour: {e}")))?;
    b.validate().map_err(crate::error::bad_input)?;
    crate::nemesis::nfq::run_helper(a.queue, &b, a.seed)?;
    Ok(0)
}

/// The `netsplit` command line with the built-in workloads, targets and faults.
pub fn main() -> u8 {
    main_with(crate::registry::Registry::builtin())
}

/// The whole command line (`test`, `check`, `analyze`, …) with the workloads, targets and fault
/// families of `registry`: what an application that registers its own calls from its `main`.
/// Parses arguments, runs the subcommand, prints any error on one line, returns the exit code.
pub fn main_with(registry: crate::registry::Registry) -> u8 {
    run_with_args(registry, std::env::args_os())
}

/// [`main_with`] on the given arguments (the first is the program name): the whole command
/// line, in process — what tests of an application's registry use.
pub fn run_with_args<I, T>(registry: crate::registry::Registry, args: I) -> u8
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() {
                crate::error::EXIT_BAD_INPUT
            } else {
                0
            };
            let _ = e.print();
            return code;
        }
    };
    init_logging(cli.verbose, cli.quiet);
    let result = match cli.command {
        Command::Test(a) => test::run(*a, &registry),
        Command::TestAll(a) => test_all::run(*a, &registry),
        Command::Serve(a) => serve::run(a),
        Command::Check(a) => check::run(a, &registry),
        Command::Analyze(a) => analyze::run(a, &registry),
        Command::ClientCheck(a) => client_check::run(*a, &registry),
        Command::List => list::run(&registry),
        Command::Heal(a) => heal::run(a, &registry),
        Command::Cluster(a) => cluster::run(a),
        Command::Exec(a) => exec::run(a),
        Command::NetemHelper(a) => netem_helper(a),
        Command::Diskfs(a) => crate::nemesis::diskfs::run(&a.dir, &a.control, a.seed).map(|()| 0),
        Command::DiskfsCtl(a) => crate::nemesis::diskfs::ctl(&a.control, &a.command).map(|v| {
            println!("{v}");
            0
        }),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            esay!("netsplit: error: {}", crate::error::one_line(&e));
            crate::error::exit_code_for(&e)
        }
    }
}

fn init_logging(verbose: u8, quiet: bool) {
    use tracing_subscriber::EnvFilter;
    let default = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, 2) => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::Layer;
    // stderr as asked (-v/-q, RUST_LOG); the current run's netsplit.log at info and above
    let file_level = if verbose >= 2 {
        tracing_subscriber::filter::LevelFilter::DEBUG
    } else {
        tracing_subscriber::filter::LevelFilter::INFO
    };
    let _ = tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_filter(filter),
        )
        .with(
            tracing_subscriber::fmt::layer()
                .with_ansi(false)
                .with_writer(crate::store::RunLogWriter)
                .with_filter(file_level),
        )
        .try_init();
}

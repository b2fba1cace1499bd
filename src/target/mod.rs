//! Targets (the databases under test) and their clients: the traits the runner and the nemesis
//! drive, and how a target is registered.
//!
//! A [`Target`] installs, starts and tears down the database on the resolved nodes (blocking
//! calls through [`crate::control::Remote`]; the runner calls them off the async threads) and
//! makes one [`Client`] per worker, bound to a node. A client turns one operation of the
//! workload's vocabulary (see `docs/adding-a-target.md`) into a [`Completion`]: `ok` (it
//! happened), `fail` (it certainly did not) or `info` (unknown). Clients classify errors
//! conservatively: when in doubt, `info`. They never retry a non-idempotent op silently.
//!
//! What else a target can do is optional, as in Jepsen, one trait per ability: [`Kill`]
//! (kill, graceful stop and start), [`Pause`] (SIGSTOP/SIGCONT), [`Primaries`] (which nodes
//! lead), [`LogFiles`] (what to fetch after a run), and [`Clock`] (whether libfaketime reaches
//! its processes). A fault that needs an ability the target lacks is a plan error before
//! anything starts (`crate::nemesis`). [`daemon`] holds the pid-file pieces that `Kill` and `Pause`
//! are made of for a database run by pid file, as the built-ins are.
//!
//! A target is registered by name with a [`TargetDef`], which says whether it runs on nodes
//! and which workload vocabularies its clients speak: asking it for another is a plan error.
//! [`TargetDef::of`] registers a [`TargetType`], whose options (`--target-opt K=V`, the plan's
//! `target.opts`) are a `serde` struct.
//!
//! Two hooks connect a target to its run, both defaulting to nothing: [`Target::on_run_dir`]
//! hands it the run directory once it exists, and [`Client::set_process`] tells a client which
//! history process its operations are recorded under (again after every `info`).

pub mod custom;
pub mod daemon;
pub mod etcd;
pub mod noop;
pub mod postgres;
pub mod redis;

use crate::control::{Node, Remote};
use crate::history::OpType;
use crate::plan::Plan;
use crate::workload;
use anyhow::{Context, Result};
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// A boxed, sendable future (what [`Client::invoke`] returns, so clients are object-safe).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// How an operation ended, as the client saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    /// `Ok`, `Fail` or `Info` (never `Invoke`).
    pub kind: OpType,
    /// The response: a read's value, a transaction with its reads filled in, or the request
    /// echoed back for writes.
    pub value: Value,
    /// Why it failed or is unknown.
    pub error: Option<String>,
}

impl Completion {
    /// It happened; `value` is the response.
    pub fn ok(value: Value) -> Completion {
        Completion {
            kind: OpType::Ok,
            value,
            error: None,
        }
    }
    /// It certainly did not happen.
    pub fn fail(value: Value, error: impl Into<String>) -> Completion {
        Completion {
            kind: OpType::Fail,
            value,
            error: Some(error.into()),
        }
    }
    /// Unknown: it may or may not take effect.
    pub fn info(value: Value, error: impl Into<String>) -> Completion {
        Completion {
            kind: OpType::Info,
            value,
            error: Some(error.into()),
        }
    }
}

/// One worker's connection to the database. Single-threaded by definition: the runner never
/// calls `invoke` again before the previous call finished (or was abandoned after the op
/// timeout, in which case the client is dropped and a new one is made).
pub trait Client: Send {
    /// Performs one operation `f` with request `value` (the workload's vocabulary).
    fn invoke<'a>(&'a mut self, f: &'a str, value: &'a Value) -> BoxFuture<'a, Completion>;
    /// Releases the connection.
    fn close(&mut self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
    /// The history process this client's operations are recorded under: the runner says so
    /// before the first operation and again whenever the worker continues as a new process
    /// (after an `info`). Default: nothing to do. A client that is one process per history
    /// process (the `custom` target's programs) starts afresh here.
    fn set_process(&mut self, _process: u64) {}
}

/// What a target is built from: the resolved plan, the built workload (its vocabulary and
/// client parameters) and the nodes. `nodes[i]` is reached through `remotes[i]`; both are empty
/// for targets that need no nodes.
#[derive(Clone)]
pub struct TargetEnv {
    pub plan: Plan,
    pub workload: workload::Instance,
    pub nodes: Vec<Node>,
    pub remotes: Vec<Arc<dyn Remote>>,
}

/// A database under test on a set of nodes. Lifecycle calls are blocking (they run commands on
/// nodes); `client` is async because opening a connection is.
pub trait Target: Send + Sync {
    /// The registered name.
    fn name(&self) -> &str;
    /// Installs, configures and starts the database on every node and waits until it serves.
    fn setup(&self) -> Result<()>;
    /// Stops the database and removes its data (skipped with `--leave-db-running`).
    fn teardown(&self) -> Result<()>;
    /// The run's directory, once it exists (after `build`, before `setup`): where a target may
    /// keep files of its own beside the history (the `custom` target's client logs). Default:
    /// nothing to do. Not called by tools that drive a target without a run.
    fn on_run_dir(&self, _dir: &std::path::Path) {}
    /// A new client bound to node `i` (`None` when the target has no nodes).
    fn client(&self, node: Option<usize>) -> BoxFuture<'_, Result<Box<dyn Client>>>;
    /// Killing and restarting the database, if the target can.
    fn as_kill(&self) -> Option<&dyn Kill> {
        None
    }
    /// Pausing and resuming it, if the target can.
    fn as_pause(&self) -> Option<&dyn Pause> {
        None
    }
    /// Which nodes lead, if the database has leaders and the target can tell.
    fn as_primaries(&self) -> Option<&dyn Primaries> {
        None
    }
    /// Log files to fetch after every run, if any.
    fn as_log_files(&self) -> Option<&dyn LogFiles> {
        None
    }
    /// Whether clock faults on faketime nodes reach the database's processes.
    fn clock(&self) -> Clock {
        Clock::IgnoresFaketime
    }
}

/// Process control, node by node (`i` indexes the run's nodes).
pub trait Kill: Send + Sync {
    /// Kills the database on node `i` (SIGKILL).
    fn kill(&self, i: usize) -> Result<()>;
    /// Stops it the database's own graceful way (SIGTERM and wait); default: kill.
    fn stop(&self, i: usize) -> Result<()> {
        self.kill(i)
    }
    /// Starts it again on node `i`; a no-op when it runs.
    fn start(&self, i: usize) -> Result<()>;
    /// Whether it runs on node `i` (the heal's proof that nothing stays killed).
    fn running(&self, i: usize) -> Result<bool>;
}

/// Pausing the database's processes.
pub trait Pause: Send + Sync {
    /// SIGSTOP the database's processes on node `i`.
    fn pause(&self, i: usize) -> Result<()>;
    /// SIGCONT them (a no-op when running).
    fn resume(&self, i: usize) -> Result<()>;
    /// The pids of its live processes on node `i` (the heal checks none is stopped).
    fn pids(&self, i: usize) -> Result<Vec<u32>>;
}

/// Which nodes currently lead.
pub trait Primaries: Send + Sync {
    /// Names of the nodes that lead now (empty: none, e.g. during an election).
    fn primaries(&self) -> Result<Vec<String>>;
}

/// What to fetch from each node after a run.
pub trait LogFiles: Send + Sync {
    /// Paths on node `i`, copied into the run's `nodes/<node>/`.
    fn log_files(&self, i: usize) -> Vec<String>;
}

/// How clock faults on faketime nodes (local clusters) reach the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Clock {
    /// Its processes run under libfaketime and honour it.
    Faketime,
    /// They ignore libfaketime (Go and static binaries): clock faults there have no effect,
    /// and results say so.
    IgnoresFaketime,
}

/// Whether a target starts its database under libfaketime (the `faketime` option of the
/// targets whose databases are C programs that honour it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Faketime {
    /// On local nodes (which share the kernel clock), not on machines.
    Auto,
    On,
    Off,
}

impl Faketime {
    /// Whether the database runs under libfaketime in a run of `plan`.
    pub fn resolve(self, plan: &Plan) -> bool {
        match self {
            Faketime::On => true,
            Faketime::Off => false,
            Faketime::Auto => local_nodes(plan),
        }
    }
}

/// Whether the plan's nodes are local namespace nodes (which share one kernel clock, so clock
/// faults reach processes through libfaketime): the same rule the nemesis uses.
pub fn local_nodes(plan: &Plan) -> bool {
    plan.nodes.cluster.is_some() || (plan.nodes.nodes.is_empty() && plan.nodes.nodes_file.is_none())
}

/// Runs `fut` to completion on a fresh current-thread runtime on a scratch thread (safe to call
/// from anywhere, including a thread inside another runtime).
pub fn block_on<F>(fut: F) -> Result<F::Output>
where
    F: Future + Send,
    F::Output: Send,
{
    std::thread::scope(|s| {
        let h = s.spawn(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map(|rt| rt.block_on(fut))
        });
        match h.join() {
            Ok(r) => r.context("starting a runtime for a target's probes"),
            Err(p) => std::panic::resume_unwind(p),
        }
    })
}

/// No database: what `netsplit heal` and `netsplit cluster status` act with when no target is
/// named. It has no clients and no abilities; faults' marks on the nodes still say what to heal.
pub struct NoTarget;

impl Target for NoTarget {
    fn name(&self) -> &str {
        "none"
    }
    fn setup(&self) -> Result<()> {
        Ok(())
    }
    fn teardown(&self) -> Result<()> {
        Ok(())
    }
    fn client(&self, _node: Option<usize>) -> BoxFuture<'_, Result<Box<dyn Client>>> {
        Box::pin(async { Err(anyhow::anyhow!("no target: no clients")) })
    }
}

type Build = dyn Fn(TargetEnv) -> Result<Arc<dyn Target>> + Send + Sync;

/// A registered target: name, description, whether it runs on nodes, the workload
/// vocabularies its clients speak, and its constructor.
#[derive(Clone)]
pub struct TargetDef {
    pub name: String,
    pub about: String,
    pub needs_nodes: bool,
    /// Without `needs_nodes`: it uses the plan's nodes when some are given (`--cluster`,
    /// `--nodes`), and runs without nodes otherwise (no local cluster is made for it).
    pub nodes_optional: bool,
    /// Vocabularies its clients speak; `*` for any.
    pub vocabularies: Vec<String>,
    build: Arc<Build>,
}

/// A target defined by its type, with `serde` options.
pub trait TargetType: Target + Sized + 'static {
    /// The name plans and `--target` use.
    const NAME: &'static str;
    /// One line for `--help` and error messages.
    const ABOUT: &'static str;
    /// Whether it runs on nodes (false: in the harness's process, like `noop`).
    const NEEDS_NODES: bool;
    /// Without `NEEDS_NODES`: whether it uses nodes when the plan gives some (`custom`).
    const NODES_OPTIONAL: bool = false;
    /// The workload vocabularies its clients speak.
    const VOCABULARIES: &'static [&'static str];
    /// Its options: `--target-opt K=V` and the plan's `target.opts` (text is accepted for
    /// numbers, booleans and comma-separated lists; `-` and `_` are the same in keys).
    type Options: DeserializeOwned;
    /// Builds the target for a run; touches no node (that is `setup`).
    fn build(env: TargetEnv, opts: Self::Options) -> Result<Self>;
}

impl TargetDef {
    /// The definition of a [`TargetType`].
    pub fn of<T: TargetType>() -> TargetDef {
        TargetDef {
            name: T::NAME.to_string(),
            about: T::ABOUT.to_string(),
            needs_nodes: T::NEEDS_NODES,
            nodes_optional: T::NODES_OPTIONAL,
            vocabularies: T::VOCABULARIES.iter().map(|s| s.to_string()).collect(),
            build: Arc::new(|env: TargetEnv| {
                let opts: T::Options =
                    crate::opts::from_map(&env.plan.target.opts, "target.opts", &env.plan.origins)?;
                Ok(Arc::new(T::build(env, opts)?) as Arc<dyn Target>)
            }),
        }
    }

    /// A definition with its own constructor.
    pub fn new(
        name: &str,
        about: &str,
        needs_nodes: bool,
        vocabularies: &[&str],
        build: impl Fn(TargetEnv) -> Result<Arc<dyn Target>> + Send + Sync + 'static,
    ) -> TargetDef {
        TargetDef {
            name: name.to_string(),
            about: about.to_string(),
            needs_nodes,
            nodes_optional: false,
            vocabularies: vocabularies.iter().map(|s| s.to_string()).collect(),
            build: Arc::new(build),
        }
    }

    /// Uses the plan's nodes when some are given, and none otherwise (see
    /// [`TargetDef::nodes_optional`]).
    pub fn with_optional_nodes(mut self) -> TargetDef {
        self.nodes_optional = true;
        self
    }

    /// Whether its clients speak `vocabulary`.
    pub fn speaks(&self, vocabulary: &str) -> bool {
        self.vocabularies
            .iter()
            .any(|v| v == "*" || v == vocabulary)
    }

    /// Builds the target for a run.
    pub fn build(&self, env: TargetEnv) -> Result<Arc<dyn Target>> {
        (self.build)(env)
    }
}

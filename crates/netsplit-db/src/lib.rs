//! netsplit's database layer: the databases under test (targets) and their clients, the traits
//! the runner and the nemesis drive, and how a target is registered. It stands on
//! `netsplit-control` (nodes) and `netsplit-check` (histories, errors, options) and knows
//! nothing of the harness: of the plan it reads [`DbPlan`], of the workload [`DbWorkload`]
//! (docs/architecture.md, "Five crates").
//!
//! A [`Db`] installs, starts and tears down the database on the resolved nodes (blocking
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
//! A target is registered by name with a [`DbDef`], which says whether it runs on nodes
//! and which workload vocabularies its clients speak: asking it for another is a plan error.
//! [`DbDef::of`] registers a [`DbType`], whose options (`--target-opt K=V`, the plan's
//! `target.opts`) are a `serde` struct.
//!
//! Every target gets the same two deploy modes (`target.deploy`, [`Deployment`]): `install`,
//! the target's own setup and teardown, and `existing`, a database the user already runs.
//! In `existing` mode [`DbDef::build`] wraps the target in [`existing::Attached`], which
//! never calls its setup or teardown: it asks the target's [`Attach`] ability to wait until
//! the database serves and to create and delete the run's own data, and it controls the
//! database's processes itself, found by systemd unit, process name or pid file
//! ([`CommonOpts`], the options every target has). Whatever a workload writes lives under
//! the run's namespace, `netsplit/<run id>/` ([`Deployment::namespace`]), in both modes.
//!
//! Two hooks connect a target to its run, both defaulting to nothing: [`Db::on_run_dir`]
//! hands it the run directory once it exists, and [`Client::set_process`] tells a client which
//! history process its operations are recorded under (again after every `info`).

#![warn(missing_docs)]

pub mod cluster;
pub mod custom;
pub mod daemon;
pub mod disk;
#[cfg(feature = "etcd")]
pub mod etcd;
pub mod existing;
pub mod noop;
pub mod plan;
#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "redis")]
pub mod redis;
pub mod vocab;

pub use plan::{DbPlan, Deploy, TargetPlan};

use crate::control::{Node, Remote};
use crate::error::bad_input;
use crate::history::OpType;
use anyhow::{Context, Result};
use netsplit_check::{error, history, opts};
use netsplit_control as control;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
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

/// The run's workload as a database sees it: what its clients must speak and with which
/// parameters (the harness's `workload::Instance` gives it, [`DbEnv::workload`]).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DbWorkload {
    /// The workload's name (`register`, `bank`, a YAML workload's name, …).
    pub name: String,
    /// The vocabulary its clients speak (`vocab::Vocabulary` names it, when netsplit knows it).
    pub vocabulary: String,
    /// Its client parameters (e.g. [`vocab::BankParams`] for `bank`; `null` for most).
    pub params: Value,
}

impl DbWorkload {
    /// The client parameters, typed (e.g. [`vocab::BankParams`]).
    pub fn params<T: DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_value(self.params.clone()).map_err(|e| {
            anyhow::anyhow!("workload {}: client parameters do not fit: {e}", self.name)
        })
    }
}

/// What a target is built from: the resolved plan, the built workload (its vocabulary and
/// client parameters), the nodes and how the database got onto them. `nodes[i]` is reached
/// through `remotes[i]`; both are empty for targets that need no nodes, and `remotes` is empty
/// in client-only mode (no SSH, [`Deployment::client_only`]).
#[derive(Clone)]
pub struct DbEnv {
    /// The resolved plan of the run (its `target.opts` are the database's options).
    pub plan: DbPlan,
    /// The run's workload, as its clients see it: name, vocabulary and client parameters.
    pub workload: DbWorkload,
    /// The nodes, in order (n1 first); empty for targets that need none.
    pub nodes: Vec<Node>,
    /// How to reach `nodes[i]` (SSH or a local namespace); empty in client-only mode.
    pub remotes: Vec<Arc<dyn Remote>>,
    /// Whether netsplit installs the database or attaches to a deployed one, and how.
    pub deploy: Deployment,
}

impl DbEnv {
    /// The vocabulary target `T` uses for the run's workload, or bad input saying what it
    /// speaks.
    pub fn vocabulary<T: DbType>(&self) -> Result<vocab::Vocabulary> {
        vocab::Vocabulary::for_run(T::NAME, T::VOCABULARIES, &self.workload)
    }

    /// The bank workload's parameters (accounts, total, overdrafts) when the run speaks the
    /// bank vocabulary.
    pub fn bank(&self, vocabulary: vocab::Vocabulary) -> Result<Option<vocab::BankParams>> {
        match vocabulary {
            vocab::Vocabulary::Bank => Ok(Some(self.workload.params()?)),
            _ => Ok(None),
        }
    }

    /// Where clients reach each node: its address (or its `endpoints=` entry) and `port`.
    pub fn endpoints(&self, port: u16) -> Vec<(String, u16)> {
        self.nodes
            .iter()
            .enumerate()
            .map(|(i, n)| self.deploy.endpoint(i, n, port))
            .collect()
    }
}

/// The options every target has, taken out of `target.opts` before the target's own are
/// parsed (so no target may use these names): how to find the database's process on a node
/// when netsplit did not start it, and where its clients are. docs/deployed-databases.md.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CommonOpts {
    /// A systemd unit: kill and start through `systemctl`, its main PID paused.
    pub service: Option<String>,
    /// A process name (`pgrep -x`).
    pub process: Option<String>,
    /// A pid file.
    pub pidfile: Option<String>,
    /// How to start the process again (`sh -c`), instead of the command line recorded from
    /// `/proc` before netsplit killed it.
    pub start: Option<String>,
    /// Client endpoints, one per node (`host[:port]`): where clients reach node i, when not at
    /// the node's address and the target's usual port.
    pub endpoints: Option<Vec<String>>,
    /// `fuse`: the database's data directory is on the fault file system (`db::disk`), as any
    /// disk fault implies; `none` (the default): on the node's own.
    pub disk: Option<String>,
}

impl CommonOpts {
    /// The option keys every target has (`-` and `_` alike).
    pub const KEYS: &'static [&'static str] = &[
        "service",
        "process",
        "pidfile",
        "start",
        "endpoints",
        "disk",
    ];

    /// Whether `key` (as a plan or `--target-opt` spells it) is one of [`CommonOpts::KEYS`].
    pub fn is_common(key: &str) -> bool {
        Self::KEYS.contains(&key.replace('-', "_").as_str())
    }

    /// The common options of a plan's `target.opts` (errors name the key and its line).
    pub fn from_plan(plan: &DbPlan) -> Result<CommonOpts> {
        let common: BTreeMap<String, Value> = plan
            .target
            .opts
            .iter()
            .filter(|(k, _)| Self::is_common(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        crate::opts::from_map(&common, "target.opts", &plan.origins)
    }

    /// `target.opts` without the common options: what the target's own options are parsed
    /// from.
    pub fn strip(opts: &BTreeMap<String, Value>) -> BTreeMap<String, Value> {
        opts.iter()
            .filter(|(k, _)| !Self::is_common(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    fn given(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        for (k, set) in [
            ("service", self.service.is_some()),
            ("process", self.process.is_some()),
            ("pidfile", self.pidfile.is_some()),
            ("start", self.start.is_some()),
            ("endpoints", self.endpoints.is_some()),
        ] {
            if set {
                out.push(k);
            }
        }
        out
    }
}

/// A client endpoint (`endpoints=`): a host and, when given, a port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Host name or address.
    pub host: String,
    /// Port; `None` means the database's own default.
    pub port: Option<u16>,
}

impl Endpoint {
    /// Parses `host`, `host:port`, `[v6]` or `[v6]:port`.
    pub fn parse(spec: &str) -> Result<Endpoint, String> {
        let spec = spec.trim();
        let bad_port = |p: &str| format!("bad port {p:?} in {spec:?}");
        let port_of = |p: &str| match p.parse::<u16>() {
            Ok(0) | Err(_) => Err(bad_port(p)),
            Ok(n) => Ok(Some(n)),
        };
        let (host, port) = if let Some(rest) = spec.strip_prefix('[') {
            let (h, after) = rest
                .split_once(']')
                .ok_or_else(|| format!("missing ']' in {spec:?}"))?;
            match after.strip_prefix(':') {
                Some(p) => (h, port_of(p)?),
                None if after.is_empty() => (h, None),
                None => return Err(format!("unexpected {after:?} after ']' in {spec:?}")),
            }
        } else if spec.matches(':').count() > 1 {
            (spec, None)
        } else if let Some((h, p)) = spec.split_once(':') {
            (h, port_of(p)?)
        } else {
            (spec, None)
        };
        crate::control::util::check_host(host)?;
        Ok(Endpoint {
            host: host.to_string(),
            port,
        })
    }

    /// `host:port` with the target's usual port when none was given (IPv6 in brackets).
    pub fn with_port(&self, default: u16) -> (String, u16) {
        (self.host.clone(), self.port.unwrap_or(default))
    }
}

/// How the database of a run got onto its nodes, and what the run may touch there: the
/// plan's `target.deploy`, the common options ([`CommonOpts`]) and the run's id.
#[derive(Debug, Clone)]
pub struct Deployment {
    /// `install` or `existing`.
    pub mode: Deploy,
    /// The run's id: everything a workload writes lives under [`Deployment::namespace`].
    pub run_id: String,
    /// How to find the database's process on a node (`existing` only); None: no process
    /// control (kill and pause faults are then plan errors).
    pub process: Option<existing::ProcessSpec>,
    /// `start=`: how to start the process again, instead of its recorded command line.
    pub start: Option<String>,
    /// `endpoints=`, one per node (empty: every node at its address and the usual port).
    pub endpoints: Vec<Endpoint>,
    /// Keep what the run wrote (`--leave-data`).
    pub leave_data: bool,
    /// The nodes share this machine's process table (local namespace nodes): a process
    /// belongs to the node whose network namespace it runs in.
    pub shared_process_table: bool,
    /// No SSH to the nodes (`--no-ssh`, or nodes given as endpoints only): clients only.
    pub client_only: bool,
    /// The data directories are on the fault file system (`disk=fuse`, or a disk fault
    /// planned): a target run as `cluster::Cluster` mounts it before the database starts.
    pub disk_fs: bool,
}

impl Default for Deployment {
    fn default() -> Self {
        Deployment {
            mode: Deploy::Install,
            run_id: fresh_run_id(),
            process: None,
            start: None,
            endpoints: Vec::new(),
            leave_data: false,
            shared_process_table: false,
            client_only: false,
            disk_fs: false,
        }
    }
}

impl Deployment {
    /// The deployment a plan asks for (common options checked: bad input naming the key),
    /// with a fresh run id. `shared_process_table`: the nodes are local namespace nodes;
    /// `client_only`: there is no SSH to them.
    pub fn from_plan(
        plan: &DbPlan,
        shared_process_table: bool,
        client_only: bool,
    ) -> Result<Deployment> {
        let common = CommonOpts::from_plan(plan)?;
        let origin = |k: &str| plan.origins.at(&format!("target.opts.{k}"));
        let mode = plan.target.deploy;
        if mode == Deploy::Install {
            if let Some(k) = common.given().first() {
                return Err(bad_input(format!(
                    "{}target.opts.{k}: only for a database that is already deployed (--deploy existing); with deploy: install netsplit runs its own",
                    origin(k)
                )));
            }
            if client_only {
                return Err(bad_input(
                    "--no-ssh: netsplit cannot install a database without SSH to the nodes; test one that is already deployed with --deploy existing",
                ));
            }
        }
        let process = existing::ProcessSpec::from_common(&common)
            .map_err(|(k, why)| bad_input(format!("{}target.opts.{k}: {why}", origin(k))))?;
        if common.start.is_some() && process.is_none() {
            return Err(bad_input(format!(
                "{}target.opts.start: needs the process it starts again: give process=NAME, pidfile=PATH or service=UNIT too",
                origin("start")
            )));
        }
        if common.start.as_deref().is_some_and(|s| s.trim().is_empty()) {
            return Err(bad_input(format!(
                "{}target.opts.start: must not be empty",
                origin("start")
            )));
        }
        if client_only && process.is_some() {
            let k = common.given()[0];
            return Err(bad_input(format!(
                "{}target.opts.{k}: process control needs SSH to the nodes, and this run has none (client-only mode)",
                origin(k)
            )));
        }
        let disk_fault = plan.disk_faults;
        let disk_fs = match common.disk.as_deref().map(str::trim) {
            None => disk_fault,
            Some("fuse") => true,
            Some("none") if disk_fault => {
                return Err(bad_input(format!(
                    "{}target.opts.disk: none, but the plan has disk faults, which need disk=fuse",
                    origin("disk")
                )))
            }
            Some("none") => false,
            Some(other) => {
                return Err(bad_input(format!(
                    "{}target.opts.disk: {other:?} is not fuse or none",
                    origin("disk")
                )))
            }
        };
        if disk_fs && mode == Deploy::Existing {
            return Err(bad_input(format!(
                "{}target.opts.disk: the fault file system is mounted by netsplit before it starts \
                 the database, so it needs deploy: install (disk faults cannot reach a database \
                 that is already deployed)",
                origin("disk")
            )));
        }
        let endpoints = common
            .endpoints
            .iter()
            .flatten()
            .filter(|e| !e.trim().is_empty())
            .enumerate()
            .map(|(i, e)| {
                Endpoint::parse(e).map_err(|why| {
                    bad_input(format!(
                        "{}target.opts.endpoints: entry {}: {why}",
                        origin("endpoints"),
                        i + 1
                    ))
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Deployment {
            mode,
            run_id: fresh_run_id(),
            process,
            start: common.start,
            endpoints,
            leave_data: plan.leave_data,
            shared_process_table,
            client_only,
            disk_fs,
        })
    }

    /// Whether the database was deployed by the user (`deploy: existing`).
    pub fn existing(&self) -> bool {
        self.mode == Deploy::Existing
    }

    /// The run's namespace: every key a workload writes begins with it (`netsplit/<id>/`).
    pub fn namespace(&self) -> String {
        format!("netsplit/{}/", self.run_id)
    }

    /// Where clients reach node `node` (its address unless `endpoints=` says otherwise) with
    /// the target's usual `port`.
    pub fn endpoint(&self, i: usize, node: &Node, port: u16) -> (String, u16) {
        match self.endpoints.get(i) {
            Some(e) => e.with_port(port),
            None => (node.host.clone(), port),
        }
    }

    /// Checks the endpoints against the nodes: one per node.
    pub fn check_endpoints(&self, nodes: usize) -> Result<()> {
        if !self.endpoints.is_empty() && self.endpoints.len() != nodes {
            return Err(bad_input(format!(
                "target.opts.endpoints: {} endpoints for {nodes} nodes (give one per node, in node order)",
                self.endpoints.len()
            )));
        }
        Ok(())
    }
}

/// A fresh run id: the UTC time to the second and 24 random bits (`20250102T030405-1a2b3c`),
/// letters, digits and `-` only (safe inside any key, glob or schema name).
pub fn fresh_run_id() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let mut x = now.as_nanos() as u64 ^ ((std::process::id() as u64) << 32);
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    x ^= SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed) << 48;
    let r = netsplit_check::rng::splitmix64(&mut x) & 0xff_ffff;
    let when = chrono::DateTime::<chrono::Utc>::from(std::time::UNIX_EPOCH + now);
    format!("{}-{r:06x}", when.format("%Y%m%dT%H%M%S"))
}

/// A database under test on a set of nodes. Lifecycle calls are blocking (they run commands on
/// nodes); `client` is async because opening a connection is.
pub trait Db: Send + Sync {
    /// The registered name.
    fn name(&self) -> &str;
    /// Installs, configures and starts the database on every node and waits until it serves.
    /// Default: nothing to set up (a target in the harness's process, like `noop`).
    fn setup(&self) -> Result<()> {
        Ok(())
    }
    /// Stops the database and removes its data (skipped with `--leave-db-running`). Default:
    /// nothing to tear down.
    fn teardown(&self) -> Result<()> {
        Ok(())
    }
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
    /// Testing a database the target did not deploy (`deploy: existing`), if it can: a
    /// target without it is refused in that mode.
    fn as_attach(&self) -> Option<&dyn Attach> {
        None
    }
    /// Before the run, changing nothing: checks every node and says what it found, one line
    /// per node; an error names the node (bad input). `restart`: the run may kill the database
    /// and must be able to start it again. Only [`existing::Attached`] checks anything.
    fn preflight(&self, _restart: bool) -> Result<Vec<String>> {
        Ok(Vec::new())
    }
    /// The directory this run's fault file system is mounted over on node `i` (`disk=fuse`,
    /// `db::disk`), if the target runs on one there. Disk faults need it.
    fn disk_dir(&self, _i: usize) -> Option<String> {
        None
    }
    /// The database's data directory on node `i`, when the target knows it (on the fault file
    /// system or not): so that a heal can tell a fault file system an earlier run left over it.
    fn data_dir(&self, _i: usize) -> Option<String> {
        None
    }
}

/// What a target does with a database it did not deploy (`deploy: existing`). A target whose
/// clients do not keep their data under the run's namespace must not implement it: it would
/// write over the user's data.
pub trait Attach: Send + Sync {
    /// Whether node `i`'s client endpoint answers, and what the database says about itself,
    /// as a short phrase (`http://10.0.0.1:2379: etcd 3.4.23`). The error says what did not
    /// answer (the caller names the node).
    fn probe(&self, i: usize) -> Result<String>;
    /// Setup, for a database that is already deployed: waits until it serves and creates the
    /// run's own data under its namespace (the bank's accounts). Never installs, configures,
    /// wipes, starts or stops anything.
    fn attach(&self) -> Result<()>;
    /// Deletes everything the run wrote under its namespace, and nothing else.
    fn delete_data(&self) -> Result<()>;
    /// How to start node `i`'s process again when `/proc` cannot tell: for a database that
    /// rewrites its own command line and environment (redis-server's process title), the
    /// argv the database itself reports while it runs. Default: None (`/proc` is right).
    fn start_command(&self, _i: usize) -> Result<Option<Vec<String>>> {
        Ok(None)
    }
    /// Whether the process found on a node is the parent of a tree that lives and dies with it
    /// (PostgreSQL's postmaster and its children): kills, stops and pauses then act on the
    /// process and its children. Default: false (one process).
    fn process_tree(&self) -> bool {
        false
    }
    /// The signal of the database's own graceful stop, without `SIG` (PostgreSQL's fast
    /// shutdown is `INT`). Default: `TERM`.
    fn stop_signal(&self) -> &'static str {
        "TERM"
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
    /// Whether node `i` records that netsplit killed the database there and has not started it
    /// again — from this run, or from an earlier one that died before it could heal (the
    /// heal then starts it). Default: false (a target that starts its own database at setup
    /// keeps no record).
    fn left_killed(&self, _i: usize) -> Result<bool> {
        Ok(false)
    }
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

impl Clock {
    /// [`Clock::Faketime`] for a process started under libfaketime (`faketime`), else
    /// [`Clock::IgnoresFaketime`]: a C program linked against glibc honours it exactly when it
    /// runs under it.
    pub fn under_faketime(faketime: bool) -> Clock {
        if faketime {
            Clock::Faketime
        } else {
            Clock::IgnoresFaketime
        }
    }
}

/// What every database's options check alike ([`crate::opts::Preset::check`]): its client
/// port (`(key, port)`) is not 0, and the request (`timeout_ms`) and connect
/// (`connect_timeout_ms`) timeouts are positive.
pub fn check_client_options(
    (port_key, port): (&'static str, u16),
    request: std::time::Duration,
    connect: std::time::Duration,
) -> std::result::Result<(), (&'static str, String)> {
    if port == 0 {
        return Err((port_key, "must be 1..65535".into()));
    }
    if request.is_zero() {
        return Err(("timeout_ms", "must be positive".into()));
    }
    if connect.is_zero() {
        return Err(("connect_timeout_ms", "must be positive".into()));
    }
    Ok(())
}

/// Nodes `n1`…`nN` at `10.77.0.11`… with workdirs under `/var/lib/netsplit/c/`, for the
/// databases' unit tests of what each node gets.
#[cfg(all(test, any(feature = "etcd", feature = "redis", feature = "postgres")))]
pub(crate) fn test_nodes(n: usize) -> Vec<Node> {
    (1..=n)
        .map(|i| Node {
            name: format!("n{i}"),
            host: format!("10.77.0.{}", 10 + i),
            ssh_port: 22,
            workdir: format!("/var/lib/netsplit/c/n{i}/"),
        })
        .collect()
}

/// Whether a target starts its database under libfaketime (the `faketime` option of the
/// targets whose databases are C programs that honour it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Faketime {
    /// On local nodes (which share the kernel clock), not on machines.
    Auto,
    /// Always, on local nodes and machines.
    On,
    /// Never.
    Off,
}

impl Faketime {
    /// Whether the database runs under libfaketime in a run of `plan`.
    pub fn resolve(self, plan: &DbPlan) -> bool {
        match self {
            Faketime::On => true,
            Faketime::Off => false,
            Faketime::Auto => plan.local_nodes,
        }
    }
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
pub struct NoDb;

impl Db for NoDb {
    fn name(&self) -> &str {
        "none"
    }
    fn client(&self, _node: Option<usize>) -> BoxFuture<'_, Result<Box<dyn Client>>> {
        Box::pin(async { Err(anyhow::anyhow!("no target: no clients")) })
    }
}

type Build = dyn Fn(DbEnv) -> Result<Arc<dyn Db>> + Send + Sync;

/// A registered target: name, description, whether it runs on nodes, the workload
/// vocabularies its clients speak, and its constructor.
#[derive(Clone)]
pub struct DbDef {
    /// The name plans and `--target` use.
    pub name: String,
    /// One line for `netsplit list`.
    pub about: String,
    /// Whether it runs on nodes (a local cluster is made when none are given).
    pub needs_nodes: bool,
    /// Without `needs_nodes`: it uses the plan's nodes when some are given (`--cluster`,
    /// `--nodes`), and runs without nodes otherwise (no local cluster is made for it).
    pub nodes_optional: bool,
    /// Vocabularies its clients speak; `*` for any.
    pub vocabularies: Vec<String>,
    build: Arc<Build>,
}

/// A target defined by its type, with `serde` options.
pub trait DbType: Db + Sized + 'static {
    /// The name plans and `--target` use.
    const NAME: &'static str;
    /// One line for `--help` and error messages.
    const ABOUT: &'static str;
    /// Whether it runs on nodes (the default, as every database netsplit deploys does); false:
    /// in the harness's process, like `noop`.
    const NEEDS_NODES: bool = true;
    /// Without `NEEDS_NODES`: whether it uses nodes when the plan gives some (`custom`).
    const NODES_OPTIONAL: bool = false;
    /// The workload vocabularies its clients speak.
    const VOCABULARIES: &'static [&'static str];
    /// Its options: `--target-opt K=V` and the plan's `target.opts` (text is accepted for
    /// numbers, booleans and comma-separated lists; `-` and `_` are the same in keys).
    type Options: DeserializeOwned;
    /// Its options from the plan's `target.opts` (without the common options): deserialised
    /// once, errors naming file, line and key. A database whose defaults are a preset file
    /// (`targets/<name>/<name>.yaml`) reads them with [`crate::opts::with_preset`], which lays
    /// `target.opts` over the preset first.
    fn options(plan: &DbPlan) -> Result<Self::Options> {
        crate::opts::from_map(&plan.target.opts, "target.opts", &plan.origins)
    }
    /// Builds the target for a run; touches no node (that is `setup`).
    fn build(env: DbEnv, opts: Self::Options) -> Result<Self>;
}

impl DbDef {
    /// The definition of a [`DbType`].
    pub fn of<T: DbType>() -> DbDef {
        DbDef {
            name: T::NAME.to_string(),
            about: T::ABOUT.to_string(),
            needs_nodes: T::NEEDS_NODES,
            nodes_optional: T::NODES_OPTIONAL,
            vocabularies: T::VOCABULARIES.iter().map(|s| s.to_string()).collect(),
            build: Arc::new(|env: DbEnv| {
                let opts = T::options(&env.plan)?;
                Ok(Arc::new(T::build(env, opts)?) as Arc<dyn Db>)
            }),
        }
    }

    /// A definition with its own constructor.
    pub fn new(
        name: &str,
        about: &str,
        needs_nodes: bool,
        vocabularies: &[&str],
        build: impl Fn(DbEnv) -> Result<Arc<dyn Db>> + Send + Sync + 'static,
    ) -> DbDef {
        DbDef {
            name: name.to_string(),
            about: about.to_string(),
            needs_nodes,
            nodes_optional: false,
            vocabularies: vocabularies.iter().map(|s| s.to_string()).collect(),
            build: Arc::new(build),
        }
    }

    /// Uses the plan's nodes when some are given, and none otherwise (see
    /// [`DbDef::nodes_optional`]).
    pub fn with_optional_nodes(mut self) -> DbDef {
        self.nodes_optional = true;
        self
    }

    /// Whether its clients speak `vocabulary`.
    pub fn speaks(&self, vocabulary: &str) -> bool {
        self.vocabularies
            .iter()
            .any(|v| v == "*" || v == vocabulary)
    }

    /// Builds the target for a run. Its constructor sees `target.opts` without the common
    /// options ([`CommonOpts`]); for a database that is already deployed the target comes
    /// wrapped in [`existing::Attached`].
    pub fn build(&self, mut env: DbEnv) -> Result<Arc<dyn Db>> {
        let deploy = env.deploy.clone();
        if deploy.existing() && !self.needs_nodes && !self.nodes_optional {
            return Err(bad_input(format!(
                "target {} runs on no nodes: there is no deployed database to test (deploy: existing)",
                self.name
            )));
        }
        if deploy.existing() && env.nodes.is_empty() {
            return Err(bad_input(format!(
                "target {}: deploy: existing needs the database's nodes (--nodes, --nodes-file or --cluster)",
                self.name
            )));
        }
        if deploy.existing() {
            deploy.check_endpoints(env.nodes.len())?;
        }
        env.plan.target.opts = CommonOpts::strip(&env.plan.target.opts);
        let (nodes, remotes) = (env.nodes.clone(), env.remotes.clone());
        let target = (self.build)(env)?;
        if !deploy.existing() {
            return Ok(target);
        }
        if target.as_attach().is_none() {
            return Err(bad_input(format!(
                "target {} cannot test a database that is already deployed (deploy: existing): it does not keep its data under a per-run namespace",
                self.name
            )));
        }
        Ok(Arc::new(existing::Attached::new(
            target, nodes, remotes, deploy,
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn plan(deploy: Deploy, opts: &[(&str, &str)]) -> DbPlan {
        let mut p = DbPlan::default();
        p.target.deploy = deploy;
        for (k, v) in opts {
            p.target.opts.insert(k.to_string(), json!(v));
            p.origins
                .set(&format!("target.opts.{k}"), format!("--target-opt {k}={v}"));
        }
        p
    }

    #[test]
    fn run_ids_are_unique_timestamps_safe_in_any_key() {
        let a = fresh_run_id();
        let b = fresh_run_id();
        assert_ne!(a, b);
        assert_eq!(a.len(), "20250102T030405-1a2b3c".len(), "{a}");
        assert_eq!(&a[8..9], "T");
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
        // The time part is today's UTC date, as the store's run directories name it.
        let today = chrono::DateTime::<chrono::Utc>::from(std::time::SystemTime::now())
            .format("%Y%m%d")
            .to_string();
        assert!(a.starts_with(&today) || a < today, "{a} vs {today}");
        let d = Deployment::default();
        assert_eq!(d.namespace(), format!("netsplit/{}/", d.run_id));
    }

    #[test]
    fn common_options_are_split_from_the_targets_own() {
        let p = plan(
            Deploy::Existing,
            &[
                ("process", "etcd"),
                ("read", "serializable"),
                ("start-x", "1"),
            ],
        );
        let own = CommonOpts::strip(&p.target.opts);
        assert_eq!(own.keys().collect::<Vec<_>>(), ["read", "start-x"]);
        let c = CommonOpts::from_plan(&p).unwrap();
        assert_eq!(c.process.as_deref(), Some("etcd"));
        assert!(CommonOpts::is_common("pidfile") && !CommonOpts::is_common("read"));
    }

    #[test]
    fn deployments_check_their_options_naming_the_key() {
        let d = Deployment::from_plan(
            &plan(
                Deploy::Existing,
                &[
                    ("pidfile", "/run/etcd.pid"),
                    ("endpoints", "10.0.0.1:2379,[::1],h"),
                ],
            ),
            true,
            false,
        )
        .unwrap();
        assert!(d.existing());
        assert_eq!(
            d.process,
            Some(existing::ProcessSpec::PidFile("/run/etcd.pid".into()))
        );
        assert_eq!(
            d.endpoints,
            vec![
                Endpoint {
                    host: "10.0.0.1".into(),
                    port: Some(2379)
                },
                Endpoint {
                    host: "::1".into(),
                    port: None
                },
                Endpoint {
                    host: "h".into(),
                    port: None
                },
            ]
        );
        let n = Node {
            name: "n2".into(),
            host: "10.9.0.2".into(),
            ssh_port: 22,
            workdir: "/w".into(),
        };
        assert_eq!(d.endpoint(1, &n, 2379), ("::1".to_string(), 2379));
        assert_eq!(d.endpoint(0, &n, 1), ("10.0.0.1".to_string(), 2379));
        assert!(d.check_endpoints(3).is_ok());
        let e = d.check_endpoints(5).unwrap_err();
        assert!(e.to_string().contains("3 endpoints for 5 nodes"), "{e}");

        let bad = |deploy, opts: &[(&str, &str)], client_only| {
            let e = Deployment::from_plan(&plan(deploy, opts), false, client_only).unwrap_err();
            assert_eq!(crate::error::exit_code_for(&e), 254);
            crate::error::one_line(&e)
        };
        let e = bad(Deploy::Install, &[("process", "etcd")], false);
        assert!(
            e.starts_with("--target-opt process=etcd: target.opts.process: only for"),
            "{e}"
        );
        assert!(bad(Deploy::Install, &[], true).contains("--no-ssh"));
        let e = bad(
            Deploy::Existing,
            &[("process", "etcd"), ("service", "etcd")],
            false,
        );
        assert!(e.contains("one of service=, process= and pidfile="), "{e}");
        assert!(bad(Deploy::Existing, &[("start", "etcd &")], false).contains("needs the process"));
        let e = bad(Deploy::Existing, &[("process", "etcd")], true);
        assert!(e.contains("process control needs SSH"), "{e}");
        let e = bad(Deploy::Existing, &[("endpoints", "a:2379,b:x")], false);
        assert!(e.contains("endpoints: entry 2: bad port"), "{e}");
    }
}

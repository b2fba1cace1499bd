//! Targets (the databases under test) and their clients: the traits the runner drives, and the
//! registry that maps `--target NAME` to a constructor.
//!
//! A [`Target`] installs, starts, stops, kills and pauses the database on the resolved nodes
//! (blocking calls through [`crate::control::Remote`]; the runner calls them off the async
//! threads) and makes one [`Client`] per worker, bound to a node. A client turns one operation of
//! the workload's vocabulary (see `docs/adding-a-target.md`) into a [`Completion`]: `ok` (it
//! happened), `fail` (it certainly did not) or `info` (unknown). Clients classify errors
//! conservatively: when in doubt, `info`. They never retry a non-idempotent op silently.
//!
//! Adding a database is one module implementing these traits plus one line in [`REGISTRY`].

pub mod etcd;
pub mod noop;
pub mod redis;

use crate::control::{Node, Remote};
use crate::history::OpType;
use crate::plan::Plan;
use anyhow::Result;
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
}

/// What a target is built from: the resolved plan and nodes. `nodes[i]` is reached through
/// `remotes[i]`; both are empty for targets that need no nodes.
#[derive(Clone)]
pub struct TargetEnv {
    pub plan: Plan,
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
    /// Kills the database process on node `i` (SIGKILL by pid file).
    fn kill(&self, i: usize) -> Result<()>;
    /// Starts it again on node `i`.
    fn start(&self, i: usize) -> Result<()>;
    /// Pauses (SIGSTOP) the process on node `i`.
    fn pause(&self, i: usize) -> Result<()>;
    /// Resumes (SIGCONT) it.
    fn resume(&self, i: usize) -> Result<()>;
    /// Files on node `i` to copy into the run's `nodes/<node>/` directory.
    fn log_files(&self, i: usize) -> Vec<String>;
    /// Names of the nodes that currently lead (where the database has leaders), if it can tell.
    fn primaries(&self) -> Option<Vec<String>> {
        None
    }
    /// A new client bound to node `i` (`None` when the target has no nodes).
    fn client(&self, node: Option<usize>) -> BoxFuture<'_, Result<Box<dyn Client>>>;
}

/// Builds a target from its environment.
pub type Factory = fn(TargetEnv) -> Result<Arc<dyn Target>>;

/// A registered target: name, whether it runs on nodes, one-line description, constructor.
pub struct Registered {
    pub name: &'static str,
    pub needs_nodes: bool,
    pub about: &'static str,
    pub build: Factory,
}

/// Every target `--target` accepts. Add a database here.
pub const REGISTRY: &[Registered] = &[
    Registered {
        name: "noop",
        needs_nodes: false,
        about: "in-memory, linearizable, every op ok: exercises the pipeline without nodes",
        build: noop::build,
    },
    Registered {
        name: "etcd",
        needs_nodes: true,
        about: "etcd 3.4 (Debian's etcd-server, or a release tarball) over its v3 JSON gateway",
        build: etcd::build,
    },
    Registered {
        name: "redis",
        needs_nodes: true,
        about: "Redis 7.0 (Debian's redis-server): n1 primary, the others async replicas of it",
        build: redis::build,
    },
    Registered {
        name: "liar",
        needs_nodes: false,
        about: "TEST ONLY: like noop but acknowledges writes it never applies (verdict: invalid)",
        build: noop::build_liar,
    },
];

/// The registry entry for `name`, or a bad-input error naming it and listing the known ones.
pub fn lookup(name: &str) -> Result<&'static Registered> {
    REGISTRY.iter().find(|r| r.name == name).ok_or_else(|| {
        crate::error::bad_input(format!(
            "unknown target {name:?} (known: {})",
            REGISTRY
                .iter()
                .map(|r| r.name)
                .collect::<Vec<_>>()
                .join(", ")
        ))
    })
}

/// Builds the target the plan names.
pub fn build(env: TargetEnv) -> Result<Arc<dyn Target>> {
    let reg = lookup(&env.plan.target.name)?;
    (reg.build)(env)
}

#[cfg(test)]
mod tests {
    #[test]
    fn unknown_target_is_bad_input_listing_known_names() {
        let err = match super::lookup("etcdx") {
            Err(e) => e,
            Ok(_) => panic!("etcdx is not a target"),
        };
        let msg = err.to_string();
        assert!(msg.contains("etcdx") && msg.contains("noop"), "{msg}");
        assert_eq!(crate::error::exit_code_for(&err), 254);
    }
}

//! The redis target: Debian's redis-server on every node, n1 the primary and every other node
//! `replicaof n1` (asynchronous replication, a static primary, no Sentinel and no failover).
//! It is the database to point netsplit at to watch it *find* something: under partitions a
//! replica keeps serving reads from its own, stale, copy.
//!
//! - [`config`]: the run's settings (preset `targets/redis/redis.yaml` + `--target-opt`) and the
//!   pure rendering of each node's `redis.conf` from `targets/redis/redis.conf`.
//! - [`resp`]: RESP2 — encoding commands, parsing replies — over tokio and std TCP streams.
//! - [`client`]: the workloads' operations as Redis commands, routing (writes to the primary,
//!   reads to the worker's node or the primary) and the `fail`/`info` classification.
//! - [`lifecycle`]: the deployment on the nodes (install, config, start, readiness, kill,
//!   pause, teardown), by pid file.
//!
//! docs/targets/redis.md is the user-facing description.

pub mod client;
pub mod config;
pub mod lifecycle;
pub mod resp;

pub use client::{RedisClient, Workload};
pub use config::{redis_conf, Faketime, Fsync, ReadMode, RedisOpts};
pub use lifecycle::RedisCluster;

use super::{BoxFuture, Client, Completion, Target, TargetEnv};
use crate::control::util::Signal;
use crate::error::bad_input;
use crate::plan::{value_as_text, Plan};
use anyhow::{anyhow, Result};
use serde_json::Value;
use std::sync::Arc;

/// Builds the redis target for a run (the registry's constructor).
pub fn build(env: TargetEnv) -> Result<Arc<dyn Target>> {
    Ok(Arc::new(Redis::new(env)?))
}

/// The settings of a run: the preset, then `target.opts`. Redis comes from Debian's package
/// only: `target.version` must be what it provides and `target.install_url` is refused.
pub fn opts_from_plan(plan: &Plan) -> Result<RedisOpts> {
    let mut opts = RedisOpts::preset()?;
    for (k, v) in &plan.target.opts {
        opts.set(k, &value_as_text(v))?;
    }
    opts.check()?;
    if let Some(v) = &plan.target.version {
        if v != &opts.version {
            return Err(bad_input(format!(
                "target.version {v:?}: the redis target installs Debian's redis-server, which \
                 provides {}",
                opts.version
            )));
        }
    }
    if plan.target.install_url.is_some() {
        return Err(bad_input(
            "target.install_url: the redis target installs Debian's redis-server only",
        ));
    }
    Ok(opts)
}

/// Whether the plan's nodes are local namespace nodes (which share one kernel clock, so clock
/// faults reach processes through libfaketime): the same rule the nemesis uses.
pub fn local_nodes(plan: &Plan) -> bool {
    plan.nodes.cluster.is_some() || (plan.nodes.nodes.is_empty() && plan.nodes.nodes_file.is_none())
}

/// The redis target of one run.
pub struct Redis {
    cluster: RedisCluster,
    workload: Workload,
}

impl Redis {
    /// The target for `env`; bad options and unsupported workloads are bad input.
    pub fn new(env: TargetEnv) -> Result<Redis> {
        let opts = opts_from_plan(&env.plan)?;
        let name = &env.plan.workload.name;
        let workload = Workload::from_name(name).ok_or_else(|| {
            bad_input(format!(
                "redis target supports {}; not workload {name:?}",
                Workload::NAMES.join(", ")
            ))
        })?;
        let faketime = match opts.faketime {
            Faketime::On => true,
            Faketime::Off => false,
            Faketime::Auto => local_nodes(&env.plan),
        };
        Ok(Redis {
            cluster: RedisCluster::new(env.nodes, env.remotes, opts, faketime)?,
            workload,
        })
    }

    /// The deployment underneath (nodes, settings, per-node control).
    pub fn cluster(&self) -> &RedisCluster {
        &self.cluster
    }

    fn check_index(&self, i: usize) -> Result<()> {
        if i >= self.cluster.nodes.len() {
            return Err(anyhow!(
                "redis: node index {i} out of range ({} nodes)",
                self.cluster.nodes.len()
            ));
        }
        Ok(())
    }
}

impl Target for Redis {
    fn name(&self) -> &str {
        "redis"
    }

    fn setup(&self) -> Result<()> {
        self.cluster.setup()
    }

    fn teardown(&self) -> Result<()> {
        self.cluster.teardown()
    }

    fn kill(&self, i: usize) -> Result<()> {
        self.check_index(i)?;
        self.cluster.kill_node(i)
    }

    fn start(&self, i: usize) -> Result<()> {
        self.check_index(i)?;
        self.cluster.start_node(i)
    }

    fn pause(&self, i: usize) -> Result<()> {
        self.check_index(i)?;
        if !self.cluster.signal_node(i, Signal::Stop)? {
            return Err(anyhow!(
                "{}: redis is not running, nothing to pause",
                self.cluster.nodes[i].name
            ));
        }
        Ok(())
    }

    fn resume(&self, i: usize) -> Result<()> {
        self.check_index(i)?;
        // Not running (killed meanwhile) means nothing is paused: already healed.
        self.cluster.signal_node(i, Signal::Cont).map(|_| ())
    }

    fn log_files(&self, i: usize) -> Vec<String> {
        match self.cluster.nodes.get(i) {
            Some(n) => vec![self.cluster.opts.log_on(n), self.cluster.opts.conf_on(n)],
            None => Vec::new(),
        }
    }

    fn primaries(&self) -> Option<Vec<String>> {
        self.cluster.primaries()
    }

    fn client(&self, node: Option<usize>) -> BoxFuture<'_, Result<Box<dyn Client>>> {
        Box::pin(async move {
            let i = node.ok_or_else(|| anyhow!("redis clients must be bound to a node"))?;
            self.check_index(i)?;
            let n = &self.cluster.nodes[i];
            let inner = RedisClient::new(
                &n.name,
                &n.host,
                &self.cluster.nodes[0].host,
                self.workload,
                &self.cluster.opts,
            );
            Ok(Box::new(RedisWorkerClient { inner }) as Box<dyn Client>)
        })
    }
}

/// A runner worker's client.
pub struct RedisWorkerClient {
    pub inner: RedisClient,
}

impl Client for RedisWorkerClient {
    fn invoke<'a>(&'a mut self, f: &'a str, value: &'a Value) -> BoxFuture<'a, Completion> {
        Box::pin(self.inner.invoke(f, value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn plan_options_reach_the_settings_and_bad_ones_are_bad_input() {
        let mut plan = Plan::default();
        plan.target.name = "redis".into();
        plan.target.opts.insert("read".into(), json!("primary"));
        plan.target.opts.insert("port".into(), json!(16379));
        let o = opts_from_plan(&plan).unwrap();
        assert_eq!(o.read, ReadMode::Primary);
        assert_eq!(o.port, 16379);

        plan.target.opts.insert("bogus".into(), json!(1));
        let e = opts_from_plan(&plan).unwrap_err();
        assert_eq!(crate::error::exit_code_for(&e), 254);

        let mut plan = Plan::default();
        plan.target.version = Some("7.2.4".into());
        let e = opts_from_plan(&plan).unwrap_err();
        assert_eq!(crate::error::exit_code_for(&e), 254);
    }

    #[test]
    fn unsupported_workload_is_bad_input_listing_the_supported_ones() {
        let mut plan = Plan::default();
        plan.target.name = "redis".into();
        plan.workload.name = "bank".into();
        let e = match Redis::new(TargetEnv {
            plan,
            nodes: Vec::new(),
            remotes: Vec::new(),
        }) {
            Err(e) => e,
            Ok(_) => panic!("bank is not supported"),
        };
        assert!(
            e.to_string()
                .starts_with("redis target supports register, set, counter"),
            "{e}"
        );
        assert_eq!(crate::error::exit_code_for(&e), 254);
    }
}

//! The redis target: Debian's redis-server on every node, n1 the primary and every other node
//! `replicaof n1` (asynchronous replication). By default the primary is static; with
//! `failover=sentinel` a Sentinel on every node fails over to a replica when a majority of them
//! lose the primary, and clients ask their node's Sentinel where the primary is.
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
//! - [`attach`]: a Redis the user already runs (`deploy: existing`): its primary found by
//!   asking, the run's keys deleted at the end, how to start a server again.
//!
//! Every key a workload writes begins with the run's namespace, `netsplit/<run id>/`.
//! docs/targets/redis.md is the user-facing description.

pub mod attach;
pub mod client;
pub mod config;
pub mod lifecycle;
pub mod resp;

pub use client::RedisClient;
pub use config::{
    redis_conf, sentinel_conf, Failover, Faketime, Fsync, ReadMode, RedisOpts, RedisTargetOpts,
};
pub use lifecycle::RedisCluster;

use super::vocab::{Typed, Vocabulary};
use super::{
    daemon::PidFileProcesses, BoxFuture, Client, Clock, Db, DbEnv, DbType, Kill, LogFiles, Pause,
    Primaries,
};
use crate::error::bad_input;
use crate::plan::Plan;
use anyhow::{anyhow, Result};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The settings of a run: the preset, then the target's options. Redis comes from Debian's
/// package only: `target.version` must be what it provides and `target.install_url` is refused.
pub fn opts_from_plan(plan: &Plan, t: RedisTargetOpts) -> Result<RedisOpts> {
    let opts = RedisOpts::from_target_opts(t)?;
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

pub use crate::db::local_nodes;

/// The vocabularies redis's clients speak ([`RedisClient`] implements each).
pub const VOCABULARIES: &[&str] = &[
    Vocabulary::Register.name(),
    Vocabulary::Set.name(),
    Vocabulary::Counter.name(),
    Vocabulary::ListAppend.name(),
];

/// The redis target of one run.
pub struct Redis {
    cluster: RedisCluster,
    vocabulary: Vocabulary,
    /// The run's namespace (`netsplit/<run id>/`).
    ns: String,
    /// The primary's node index: n1 when netsplit deploys; asked of a deployed Redis.
    primary: AtomicUsize,
}

impl DbType for Redis {
    const NAME: &'static str = "redis";
    const ABOUT: &'static str =
        "Redis 7.0 (Debian's redis-server): n1 primary, the others async replicas of it; \
         failover=sentinel for Sentinel failover";
    const NEEDS_NODES: bool = true;
    const VOCABULARIES: &'static [&'static str] = VOCABULARIES;
    type Options = RedisTargetOpts;

    fn build(env: DbEnv, opts: RedisTargetOpts) -> Result<Redis> {
        let opts = opts_from_plan(&env.plan, opts)?;
        let vocabulary = Vocabulary::for_run("redis", VOCABULARIES, &env.workload)?;
        let faketime = opts.faketime.resolve(&env.plan);
        let endpoints = env
            .nodes
            .iter()
            .enumerate()
            .map(|(i, n)| env.deploy.endpoint(i, n, opts.port))
            .collect();
        Ok(Redis {
            cluster: RedisCluster::new(env.nodes, env.remotes, opts, faketime)?
                .with_endpoints(endpoints),
            vocabulary,
            ns: env.deploy.namespace(),
            primary: AtomicUsize::new(0),
        })
    }
}

impl Redis {
    /// The deployment underneath (nodes, settings, per-node control).
    pub fn cluster(&self) -> &RedisCluster {
        &self.cluster
    }

    /// The index of the node writes go to.
    pub fn primary_index(&self) -> usize {
        self.primary
            .load(Ordering::Relaxed)
            .min(self.cluster.nodes.len().saturating_sub(1))
    }

    /// The run's namespace.
    pub fn namespace(&self) -> &str {
        &self.ns
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

impl Db for Redis {
    fn name(&self) -> &str {
        "redis"
    }

    fn setup(&self) -> Result<()> {
        self.cluster.setup()
    }

    fn teardown(&self) -> Result<()> {
        self.cluster.teardown()
    }

    fn client(&self, node: Option<usize>) -> BoxFuture<'_, Result<Box<dyn Client>>> {
        Box::pin(async move {
            let i = node.ok_or_else(|| anyhow!("redis clients must be bound to a node"))?;
            self.check_index(i)?;
            let n = &self.cluster.nodes[i];
            let (host, port) = &self.cluster.endpoints[i];
            let (phost, pport) = &self.cluster.endpoints[self.primary_index()];
            let inner = RedisClient::new(&n.name, host, phost, &self.cluster.opts)
                .ports(*port, *pport)
                .namespace(&self.ns);
            Ok(Box::new(Typed::new("redis", self.vocabulary, inner)?) as Box<dyn Client>)
        })
    }

    fn as_kill(&self) -> Option<&dyn Kill> {
        Some(self)
    }
    fn as_pause(&self) -> Option<&dyn Pause> {
        Some(self)
    }
    fn as_primaries(&self) -> Option<&dyn Primaries> {
        Some(self)
    }
    fn as_log_files(&self) -> Option<&dyn LogFiles> {
        Some(self)
    }
    fn as_attach(&self) -> Option<&dyn super::Attach> {
        Some(self)
    }
    /// redis-server is a C program linked against glibc: libfaketime reaches it when it runs
    /// under it (the `faketime` option).
    fn clock(&self) -> Clock {
        if self.cluster.faketime {
            Clock::Faketime
        } else {
            Clock::IgnoresFaketime
        }
    }
}

impl PidFileProcesses for Redis {
    fn process_name(&self) -> &str {
        "redis"
    }
    fn process_remote(&self, i: usize) -> Result<&dyn crate::control::Remote> {
        self.check_index(i)?;
        Ok(self.cluster.remotes[i].as_ref())
    }
    fn pid_file(&self, i: usize) -> Result<String> {
        self.check_index(i)?;
        Ok(self.cluster.opts.pid_on(&self.cluster.nodes[i]))
    }
    fn start_process(&self, i: usize) -> Result<()> {
        self.check_index(i)?;
        self.cluster.start_node(i)
    }
}

impl Primaries for Redis {
    fn primaries(&self) -> Result<Vec<String>> {
        Ok(self.cluster.primaries().unwrap_or_default())
    }
}

impl LogFiles for Redis {
    fn log_files(&self, i: usize) -> Vec<String> {
        match self.cluster.nodes.get(i) {
            Some(n) if self.cluster.opts.sentinel() => vec![
                self.cluster.opts.log_on(n),
                self.cluster.opts.conf_on(n),
                self.cluster.opts.sentinel_log_on(n),
                self.cluster.opts.sentinel_conf_on(n),
            ],
            Some(n) => vec![self.cluster.opts.log_on(n), self.cluster.opts.conf_on(n)],
            None => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn typed(plan: &Plan) -> Result<RedisTargetOpts> {
        crate::opts::from_map(&plan.target.opts, "target.opts", &plan.origins)
    }

    #[test]
    fn plan_options_reach_the_settings_and_bad_ones_are_bad_input() {
        let mut plan = Plan::default();
        plan.target.name = "redis".into();
        plan.target.opts.insert("read".into(), json!("primary"));
        plan.target.opts.insert("port".into(), json!(16379));
        let o = opts_from_plan(&plan, typed(&plan).unwrap()).unwrap();
        assert_eq!(o.read, ReadMode::Primary);
        assert_eq!(o.port, 16379);

        plan.target.opts.insert("bogus".into(), json!(1));
        let e = typed(&plan).unwrap_err();
        assert_eq!(crate::error::exit_code_for(&e), 254);

        let mut plan = Plan::default();
        plan.target.version = Some("7.2.4".into());
        let e = opts_from_plan(&plan, RedisTargetOpts::default()).unwrap_err();
        assert_eq!(crate::error::exit_code_for(&e), 254);
    }
}

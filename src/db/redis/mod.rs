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
pub use lifecycle::{RedisCluster, RedisLifecycle};

use super::cluster::Cluster;
use super::vocab::Vocabulary;
use super::{DbEnv, DbType};
use crate::error::bad_input;
use crate::plan::Plan;
use anyhow::Result;

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

/// The redis target of one run: Redis's [`RedisLifecycle`] in the [`Cluster`] wrapper.
pub type Redis = RedisCluster;

/// The vocabularies redis's clients speak ([`RedisClient`] implements each).
pub const VOCABULARIES: &[&str] = &[
    Vocabulary::Register.name(),
    Vocabulary::Set.name(),
    Vocabulary::Counter.name(),
    Vocabulary::ListAppend.name(),
];

impl DbType for RedisCluster {
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
        let ns = env.deploy.namespace();
        let db = RedisLifecycle::new(opts, faketime, endpoints, vocabulary, ns);
        let (deploy, seed) = (env.deploy.clone(), env.plan.seed());
        Cluster::new(env.nodes, env.remotes, db)?.with_disk(&deploy, seed)
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

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
pub use config::{redis_conf, sentinel_conf, Failover, Faketime, Fsync, ReadMode, RedisOpts};
pub use lifecycle::{RedisCluster, RedisLifecycle};

use super::cluster::Cluster;
use super::vocab::Vocabulary;
use super::{DbEnv, DbType};
use crate::error::bad_input;
use crate::plan::DbPlan;
use anyhow::Result;

/// Checks the settings (the preset with the target's options laid over it) against the plan.
/// Redis comes from Debian's package only: `target.version` must be what it provides and
/// `target.install_url` is refused.
pub fn opts_from_plan(plan: &DbPlan, opts: RedisOpts) -> Result<RedisOpts> {
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

/// The Sentinels clients ask where the primary is (empty: a static primary), for a run on
/// nodes at `node_hosts` whose clients reach them at `endpoints`. Installed: the one netsplit
/// starts on every node, at `sentinel-port`. Deployed (`existing`): the operator's,
/// `sentinels=` (which implies `failover=sentinel`), or, with `failover=sentinel` alone, one at
/// every node's client address and `sentinel-port`. `sentinels=` with `deploy: install`, or
/// with `failover=none` (`no_failover`), is bad input; `origin` is where the option came from.
pub fn sentinels_of(
    existing: bool,
    opts: &mut RedisOpts,
    node_hosts: &[String],
    endpoints: &[(String, u16)],
    no_failover: bool,
    origin: &str,
) -> Result<Vec<(String, u16)>> {
    let given = opts
        .sentinel_addrs()
        .map_err(|e| bad_input(format!("{origin}target.opts.sentinels: {e}")))?;
    let port = opts.sentinel_port;
    let at_sentinel_port = |hosts: Vec<String>| -> Vec<(String, u16)> {
        hosts.into_iter().map(|h| (h, port)).collect()
    };
    if !existing {
        if !given.is_empty() {
            return Err(bad_input(format!(
                "{origin}target.opts.sentinels: only for a Redis that is already deployed \
                 (--deploy existing); with deploy: install netsplit runs a Sentinel on every \
                 node (failover=sentinel)"
            )));
        }
        return Ok(if opts.sentinel() {
            at_sentinel_port(node_hosts.to_vec())
        } else {
            Vec::new()
        });
    }
    if !given.is_empty() {
        if no_failover {
            return Err(bad_input(format!(
                "{origin}target.opts.sentinels: contradicts failover=none (Sentinels fail over)"
            )));
        }
        opts.failover = Failover::Sentinel;
        return Ok(given);
    }
    Ok(if opts.sentinel() {
        at_sentinel_port(endpoints.iter().map(|(h, _)| h.clone()).collect())
    } else {
        Vec::new()
    })
}

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
    const VOCABULARIES: &'static [&'static str] = VOCABULARIES;
    type Options = RedisOpts;

    fn options(plan: &DbPlan) -> Result<RedisOpts> {
        crate::opts::with_preset(&plan.target.opts, "target.opts", &plan.origins)
    }

    fn build(env: DbEnv, opts: RedisOpts) -> Result<Redis> {
        // `failover=none` given (not the preset's default) contradicts `sentinels=`.
        let no_failover =
            opts.failover == Failover::None && env.plan.target.opts.contains_key("failover");
        let mut opts = opts_from_plan(&env.plan, opts)?;
        let vocabulary = env.vocabulary::<Self>()?;
        let faketime = opts.faketime.resolve(&env.plan);
        let endpoints = env.endpoints(opts.port);
        let origin = env.plan.origins.at("target.opts.sentinels");
        let hosts: Vec<String> = env.nodes.iter().map(|n| n.host.clone()).collect();
        let sentinels = sentinels_of(
            env.deploy.existing(),
            &mut opts,
            &hosts,
            &endpoints,
            no_failover,
            &origin,
        )?;
        let ns = env.deploy.namespace();
        let db =
            RedisLifecycle::new(opts, faketime, endpoints, vocabulary, ns).sentinels(sentinels);
        Cluster::for_run(env, db)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn typed(plan: &DbPlan) -> Result<RedisOpts> {
        RedisCluster::options(plan)
    }

    /// Options as `--target-opt` gives them (text).
    fn opts(pairs: &[(&str, &str)]) -> Result<RedisOpts> {
        let mut plan = DbPlan::default();
        for (k, v) in pairs {
            plan.target.opts.insert(k.to_string(), json!(v));
        }
        typed(&plan)
    }

    #[test]
    fn sentinels_are_the_operators_when_deployed_and_netsplits_own_when_installed() {
        let hosts: Vec<String> = vec!["10.0.0.1".into(), "10.0.0.2".into()];
        let eps = vec![
            ("192.0.2.1".to_string(), 6379),
            ("192.0.2.2".to_string(), 6379),
        ];
        let given = opts(&[("sentinels", "s1:5000,s2")]).unwrap();
        // Deployed: the operator's, `sentinel-port` where none is given; failover follows.
        let mut o = given.clone();
        let s = sentinels_of(true, &mut o, &hosts, &eps, false, "").unwrap();
        assert_eq!(s, vec![("s1".into(), 5000), ("s2".into(), 26379)]);
        assert!(o.sentinel());
        // Deployed, failover=sentinel alone: one at every client address.
        let mut o = opts(&[("failover", "sentinel")]).unwrap();
        let s = sentinels_of(true, &mut o, &hosts, &eps, false, "").unwrap();
        assert_eq!(
            s,
            vec![("192.0.2.1".into(), 26379), ("192.0.2.2".into(), 26379)]
        );
        // Installed with Sentinel: netsplit's own on every node; without: none.
        let s = sentinels_of(false, &mut o, &hosts, &eps, false, "").unwrap();
        assert_eq!(
            s,
            vec![("10.0.0.1".into(), 26379), ("10.0.0.2".into(), 26379)]
        );
        let mut o = opts(&[]).unwrap();
        assert!(sentinels_of(true, &mut o, &hosts, &eps, false, "")
            .unwrap()
            .is_empty());
        // sentinels= with deploy: install, or with failover=none: bad input naming the key.
        let mut o = given.clone();
        let e = sentinels_of(false, &mut o, &hosts, &eps, false, "x.yaml:3: ").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("x.yaml:3: target.opts.sentinels: only"),
            "{e}"
        );
        assert_eq!(crate::error::exit_code_for(&e), 254);
        let e = sentinels_of(true, &mut o, &hosts, &eps, true, "").unwrap_err();
        assert!(e.to_string().contains("failover=none"), "{e}");
        // A bad entry is refused with the options, naming it.
        let e = opts(&[("sentinels", "s1:26379,s2:0")]).unwrap_err();
        assert!(
            e.to_string().contains("sentinels: entry 2: bad port"),
            "{e}"
        );
        assert_eq!(crate::error::exit_code_for(&e), 254);
    }

    #[test]
    fn plan_options_reach_the_settings_and_bad_ones_are_bad_input() {
        let mut plan = DbPlan::default();
        plan.target.name = "redis".into();
        plan.target.opts.insert("read".into(), json!("primary"));
        plan.target.opts.insert("port".into(), json!(16379));
        let o = opts_from_plan(&plan, typed(&plan).unwrap()).unwrap();
        assert_eq!(o.read, ReadMode::Primary);
        assert_eq!(o.port, 16379);

        plan.target.opts.insert("bogus".into(), json!(1));
        let e = typed(&plan).unwrap_err();
        assert_eq!(crate::error::exit_code_for(&e), 254);

        let mut plan = DbPlan::default();
        plan.target.version = Some("7.2.4".into());
        let e = opts_from_plan(&plan, opts(&[]).unwrap()).unwrap_err();
        assert_eq!(crate::error::exit_code_for(&e), 254);
    }
}

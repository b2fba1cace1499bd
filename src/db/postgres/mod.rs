//! The postgres target: Debian's PostgreSQL on every node, n1 the primary and every other node
//! a streaming replica of it (`replicas=async|sync|none`; a static primary, no failover), with
//! clients that run every transaction at one isolation level (`isolation=read-committed|
//! repeatable-read|serializable`) and send reads to n1 or to their own replica (`read=`). It is
//! the reference database for the transactional checker: its isolation levels are documented,
//! so what each one must allow and forbid is known.
//!
//! - [`config`]: the run's settings (preset `targets/postgres/postgres.yaml` + `--target-opt`)
//!   and the pure rendering of each node's `postgresql.conf`, `pg_hba.conf` and password file.
//! - [`client`]: the workloads' operations as SQL over tokio-postgres, routing, and the SQLSTATE
//!   classification that decides `fail` versus `info`.
//! - [`lifecycle`]: the deployment on the nodes (install, initdb, base backups, start,
//!   readiness, kill, pause, teardown), by pid file, signalling each server's whole process
//!   tree.
//!
//! docs/targets/postgres.md is the user-facing description.

pub mod client;
pub mod config;
pub mod lifecycle;

pub use client::{ClientSettings, PgClient, PgError};
pub use config::{Isolation, PgOpts, PgTargetOpts, ReadMode, Replicas, Transfer};
pub use lifecycle::{PgCluster, PgLifecycle};

use super::cluster::Cluster;
use super::vocab::Vocabulary;
use super::{DbEnv, DbType};
use crate::error::bad_input;
use crate::plan::Plan;
use crate::workload::bank::BankParams;
use anyhow::Result;

/// The settings of a run: the preset, then the target's options, with a fresh password unless
/// the options give one. PostgreSQL comes from Debian's package only: `target.version` must be
/// the major version it provides and `target.install_url` is refused.
pub fn opts_from_plan(plan: &Plan, t: PgTargetOpts) -> Result<PgOpts> {
    let opts = PgOpts::from_target_opts(t, &config::fresh_password())?;
    if let Some(v) = &plan.target.version {
        if v != &opts.version && !v.starts_with(&format!("{}.", opts.version)) {
            return Err(bad_input(format!(
                "target.version {v:?}: the postgres target installs Debian's postgresql, which \
                 provides PostgreSQL {}",
                opts.version
            )));
        }
    }
    if plan.target.install_url.is_some() {
        return Err(bad_input(
            "target.install_url: the postgres target installs Debian's postgresql only",
        ));
    }
    Ok(opts)
}

/// The postgres target of one run: PostgreSQL's [`PgLifecycle`] in the [`Cluster`] wrapper.
pub type Postgres = PgCluster;

/// The vocabularies postgres's clients speak ([`PgClient`] implements each).
pub const VOCABULARIES: &[&str] = &[
    Vocabulary::Register.name(),
    Vocabulary::Set.name(),
    Vocabulary::Counter.name(),
    Vocabulary::Bank.name(),
    Vocabulary::ListAppend.name(),
    Vocabulary::RwRegister.name(),
];

impl DbType for PgCluster {
    const NAME: &'static str = "postgres";
    const ABOUT: &'static str =
        "PostgreSQL 15 (Debian's postgresql): n1 primary, the others streaming replicas of it";
    const NEEDS_NODES: bool = true;
    const VOCABULARIES: &'static [&'static str] = VOCABULARIES;
    type Options = PgTargetOpts;

    fn build(env: DbEnv, opts: PgTargetOpts) -> Result<Postgres> {
        let opts = opts_from_plan(&env.plan, opts)?;
        let vocabulary = Vocabulary::for_run("postgres", VOCABULARIES, &env.workload)?;
        let bank = match vocabulary {
            Vocabulary::Bank => Some(env.workload.params::<BankParams>()?),
            _ => None,
        };
        let faketime = opts.faketime.resolve(&env.plan);
        let db = PgLifecycle {
            opts,
            faketime,
            bank: bank.as_ref().map(|b| (b.accounts, b.total)),
            vocabulary,
            allow_negative: bank.is_some_and(|b| b.allow_negative),
        };
        let (deploy, seed) = (env.deploy.clone(), env.plan.seed());
        Cluster::new(env.nodes, env.remotes, db)?.with_disk(&deploy, seed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn typed(plan: &Plan) -> Result<PgTargetOpts> {
        crate::opts::from_map(&plan.target.opts, "target.opts", &plan.origins)
    }

    #[test]
    fn plan_options_reach_the_settings_and_bad_ones_are_bad_input() {
        let mut plan = Plan::default();
        plan.target.name = "postgres".into();
        plan.target
            .opts
            .insert("isolation".into(), json!("serializable"));
        plan.target.opts.insert("replicas".into(), json!("sync"));
        let o = opts_from_plan(&plan, typed(&plan).unwrap()).unwrap();
        assert_eq!(o.isolation, Isolation::Serializable);
        assert_eq!(o.replicas, Replicas::Sync);
        assert!(o.password.starts_with("ns"), "a fresh password");
        let o2 = opts_from_plan(&plan, typed(&plan).unwrap()).unwrap();
        assert_ne!(o.password, o2.password, "fresh for every run");

        plan.target.opts.insert("bogus".into(), json!(1));
        let e = typed(&plan).unwrap_err();
        assert_eq!(crate::error::exit_code_for(&e), 254);

        let mut plan = Plan::default();
        plan.target.version = Some("15.6".into());
        assert!(opts_from_plan(&plan, PgTargetOpts::default()).is_ok());
        plan.target.version = Some("16".into());
        let e = opts_from_plan(&plan, PgTargetOpts::default()).unwrap_err();
        assert_eq!(crate::error::exit_code_for(&e), 254);
        let mut plan = Plan::default();
        plan.target.install_url = Some("https://example.org/pg.tgz".into());
        let e = opts_from_plan(&plan, PgTargetOpts::default()).unwrap_err();
        assert_eq!(crate::error::exit_code_for(&e), 254);
    }
}

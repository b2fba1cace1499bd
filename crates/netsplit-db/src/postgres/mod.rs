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
//! - [`attach`]: a PostgreSQL the operator already runs (`deploy: existing`): the primary
//!   found by asking every node, the run's data in its own schema `netsplit_<run id>`.
//!
//! docs/targets/postgres.md is the user-facing description.

pub mod attach;
pub mod client;
pub mod config;
pub mod lifecycle;
pub mod tls;

pub use client::{ClientSettings, PgClient, PgError};
pub use config::{Isolation, PgOpts, ReadMode, Replicas, Transfer};
pub use lifecycle::{PgCluster, PgLifecycle};

use super::cluster::Cluster;
use super::vocab::Vocabulary;
use super::{DbEnv, DbType};
use crate::error::bad_input;
use crate::plan::DbPlan;
use anyhow::Result;

/// Whether the plan's `target.opts` gives `key` (in either spelling).
fn given(plan: &DbPlan, key: &str) -> bool {
    plan.target.opts.keys().any(|k| k.replace('-', "_") == key)
}

/// An error about option `key` that the plan gave: bad input naming where it came from.
fn bad_option(plan: &DbPlan, (key, why): (&str, String)) -> anyhow::Error {
    let path = format!("target.opts.{key}");
    bad_input(format!("{}{path}: {why}", plan.origins.at(&path)))
}

/// The settings of a run netsplit deploys (the preset with the target's options laid over it),
/// with a fresh password unless the options give one (`password`, or `password-file`'s first
/// line). PostgreSQL comes from Debian's package only: `target.version` must be the major
/// version it provides and `target.install_url` is refused.
pub fn opts_from_plan(plan: &DbPlan, mut opts: PgOpts) -> Result<PgOpts> {
    if opts.password_file.is_some() || !given(plan, "password") {
        opts.password = match opts.password_file.take() {
            Some(_) => existing_password(plan, &opts, |_| None)?,
            None => config::fresh_password(),
        };
    }
    opts.check_deployment().map_err(|e| bad_option(plan, e))?;
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

/// The options that only make sense for a PostgreSQL netsplit installs: with `deploy:
/// existing` they are refused (netsplit configures nothing of a deployed server, and the
/// schema is the run's own).
pub const INSTALL_ONLY: &[&str] = &[
    "replicas", "fsync", "bin_dir", "os_user", "schema", "faketime",
];

/// The run's own schema in a deployed PostgreSQL: `netsplit_` and the run id, lower-case, `-`
/// as `_` (`netsplit_20261203t160418_1a2b3c`), a name PostgreSQL takes unquoted.
pub fn run_schema(run_id: &str) -> String {
    let id: String = run_id
        .chars()
        .map(|c| match c {
            'A'..='Z' => c.to_ascii_lowercase(),
            'a'..='z' | '0'..='9' => c,
            _ => '_',
        })
        .collect();
    format!("netsplit_{id}")
}

/// The password of a deployed PostgreSQL: `password=`, else the first line of
/// `password-file=`, else the `PGPASSWORD` environment variable, else none (the server may not
/// ask). Giving both options is an error.
pub fn existing_password(
    plan: &DbPlan,
    opts: &PgOpts,
    env: impl Fn(&str) -> Option<String>,
) -> Result<String> {
    let at = |k: &str| plan.origins.at(&format!("target.opts.{k}"));
    match (given(plan, "password"), &opts.password_file) {
        (true, Some(_)) => Err(bad_input(format!(
            "{}target.opts.password-file: give password= or password-file=, not both",
            at("password_file")
        ))),
        (true, None) => Ok(opts.password.clone()),
        (false, Some(f)) => {
            let text = std::fs::read_to_string(f).map_err(|e| {
                bad_input(format!(
                    "{}target.opts.password-file: {f}: {e}",
                    at("password_file")
                ))
            })?;
            Ok(text.lines().next().unwrap_or("").to_string())
        }
        (false, None) => Ok(env("PGPASSWORD").unwrap_or_default()),
    }
}

/// The settings of a run against a deployed PostgreSQL: the operator's role (`user=`, else
/// `PGUSER`, else `postgres`), database (`database=`, else `PGDATABASE`, else the role's name),
/// password ([`existing_password`]) and `sslmode`, the client settings of the preset laid over
/// by the options, and the run's own schema ([`run_schema`]). The options of [`INSTALL_ONLY`]
/// are refused.
pub fn opts_for_existing(
    plan: &DbPlan,
    mut opts: PgOpts,
    run_id: &str,
    env: impl Fn(&str) -> Option<String>,
) -> Result<PgOpts> {
    if let Some(k) = INSTALL_ONLY.iter().find(|k| given(plan, k)) {
        let why = if *k == "schema" {
            "the run's data lives in its own schema netsplit_<run id>, made and dropped by netsplit"
        } else {
            "netsplit configures nothing of a database it did not deploy"
        };
        return Err(bad_input(format!(
            "{}target.opts.{}: only with deploy: install ({why})",
            plan.origins.at(&format!("target.opts.{k}")),
            k.replace('_', "-")
        )));
    }
    if plan.target.version.is_some() || plan.target.install_url.is_some() {
        return Err(bad_input(
            "target.version / target.install_url: only with deploy: install (netsplit installs \
             nothing on a deployed database)",
        ));
    }
    opts.password = existing_password(plan, &opts, &env)?;
    opts.password_file = None;
    if !given(plan, "user") {
        opts.user = env("PGUSER").unwrap_or_else(|| "postgres".into());
    }
    if !given(plan, "database") {
        opts.database = env("PGDATABASE").unwrap_or_else(|| opts.user.clone());
    }
    opts.existing = true;
    opts.schema = run_schema(run_id);
    opts.check_deployment().map_err(|e| bad_option(plan, e))?;
    Ok(opts)
}

/// The postgres target of one run: PostgreSQL's [`PgLifecycle`] in the [`Cluster`] wrapper.
pub type Postgres = PgCluster;

/// The vocabularies postgres's clients speak ([`PgClient`] implements each).
pub const VOCABULARIES: &[&str] = Vocabulary::WITH_TRAITS;

impl DbType for PgCluster {
    const NAME: &'static str = "postgres";
    const ABOUT: &'static str =
        "PostgreSQL 15 (Debian's postgresql): n1 primary, the others streaming replicas of it";
    const VOCABULARIES: &'static [&'static str] = VOCABULARIES;
    type Options = PgOpts;

    fn options(plan: &DbPlan) -> Result<PgOpts> {
        crate::opts::with_preset(&plan.target.opts, "target.opts", &plan.origins)
    }

    fn build(env: DbEnv, opts: PgOpts) -> Result<Postgres> {
        let existing = env.deploy.existing();
        let opts = if existing {
            opts_for_existing(&env.plan, opts, &env.deploy.run_id, |k| {
                std::env::var(k).ok().filter(|v| !v.is_empty())
            })?
        } else {
            opts_from_plan(&env.plan, opts)?
        };
        let vocabulary = env.vocabulary::<Self>()?;
        let bank = env.bank(vocabulary)?;
        // A deployed server was not started under libfaketime.
        let faketime = !existing && opts.faketime.resolve(&env.plan);
        let endpoints = env.endpoints(opts.port);
        let db = PgLifecycle {
            opts,
            faketime,
            bank: bank.as_ref().map(|b| (b.accounts, b.total)),
            vocabulary,
            allow_negative: bank.is_some_and(|b| b.allow_negative),
            endpoints,
            primary: Default::default(),
        };
        Cluster::for_run(env, db)
    }
}

#[cfg(test)]
mod tests;

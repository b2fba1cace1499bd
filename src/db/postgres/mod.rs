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
pub use lifecycle::PgCluster;

use super::vocab::{Typed, Vocabulary};
use super::{BoxFuture, Client, Clock, Db, DbEnv, DbType, Kill, LogFiles, Pause, Primaries};
use crate::error::bad_input;
use crate::plan::Plan;
use crate::workload::bank::BankParams;
use anyhow::{anyhow, Result};
use std::time::Duration;

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

/// The vocabularies postgres's clients speak ([`PgClient`] implements each).
pub const VOCABULARIES: &[&str] = &[
    Vocabulary::Register.name(),
    Vocabulary::Set.name(),
    Vocabulary::Counter.name(),
    Vocabulary::Bank.name(),
    Vocabulary::ListAppend.name(),
    Vocabulary::RwRegister.name(),
];

/// The postgres target of one run.
pub struct Postgres {
    cluster: PgCluster,
    vocabulary: Vocabulary,
    allow_negative: bool,
}

impl DbType for Postgres {
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
        let mut cluster = PgCluster::new(env.nodes, env.remotes, opts, faketime)?;
        cluster.bank = bank.as_ref().map(|b| (b.accounts, b.total));
        Ok(Postgres {
            cluster,
            vocabulary,
            allow_negative: bank.is_some_and(|b| b.allow_negative),
        })
    }
}

impl Postgres {
    /// The deployment underneath (nodes, settings, per-node control).
    pub fn cluster(&self) -> &PgCluster {
        &self.cluster
    }

    fn check_index(&self, i: usize) -> Result<()> {
        if i >= self.cluster.nodes.len() {
            return Err(anyhow!(
                "postgres: node index {i} out of range ({} nodes)",
                self.cluster.nodes.len()
            ));
        }
        Ok(())
    }

    /// A client bound to node `i` (operations that only read go there in `read=replica`
    /// mode; everything else goes to n1).
    pub fn pg_client(&self, i: usize) -> Result<PgClient> {
        self.check_index(i)?;
        let n = &self.cluster.nodes[i];
        Ok(PgClient::new(
            &n.name,
            &n.host,
            &self.cluster.nodes[0].host,
            ClientSettings::of(&self.cluster.opts, self.allow_negative),
        ))
    }
}

impl Db for Postgres {
    fn name(&self) -> &str {
        "postgres"
    }

    fn setup(&self) -> Result<()> {
        self.cluster.setup()
    }

    fn teardown(&self) -> Result<()> {
        self.cluster.teardown()
    }

    fn client(&self, node: Option<usize>) -> BoxFuture<'_, Result<Box<dyn Client>>> {
        Box::pin(async move {
            let i = node.ok_or_else(|| anyhow!("postgres clients must be bound to a node"))?;
            let client = Typed::new("postgres", self.vocabulary, self.pg_client(i)?)?;
            Ok(Box::new(client) as Box<dyn Client>)
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
    /// PostgreSQL is a C program linked against glibc: libfaketime reaches it when it runs
    /// under it (the `faketime` option).
    fn clock(&self) -> Clock {
        if self.cluster.faketime {
            Clock::Faketime
        } else {
            Clock::IgnoresFaketime
        }
    }
}

/// Kills, stops and starts act on the server's whole process tree; on a node that runs no
/// PostgreSQL (`replicas=none`) there is nothing to kill or start, and nothing is down.
impl Kill for Postgres {
    fn kill(&self, i: usize) -> Result<()> {
        self.check_index(i)?;
        self.cluster.kill_node(i)
    }
    fn stop(&self, i: usize) -> Result<()> {
        self.check_index(i)?;
        if !self.cluster.opts.runs_on(i) {
            return Ok(());
        }
        self.cluster.stop_node(i, Duration::from_secs(10))
    }
    fn start(&self, i: usize) -> Result<()> {
        self.check_index(i)?;
        self.cluster.start_node(i)
    }
    fn running(&self, i: usize) -> Result<bool> {
        self.check_index(i)?;
        if !self.cluster.opts.runs_on(i) {
            return Ok(true);
        }
        Ok(self.cluster.pid(i)?.is_some())
    }
}

/// Pauses stop the whole process tree (the postmaster first), resumes continue it.
impl Pause for Postgres {
    fn pause(&self, i: usize) -> Result<()> {
        self.check_index(i)?;
        self.cluster.pause_node(i)
    }
    fn resume(&self, i: usize) -> Result<()> {
        self.check_index(i)?;
        self.cluster.resume_node(i)
    }
    fn pids(&self, i: usize) -> Result<Vec<u32>> {
        self.check_index(i)?;
        self.cluster.tree_pids(i)
    }
}

impl Primaries for Postgres {
    fn primaries(&self) -> Result<Vec<String>> {
        Ok(self.cluster.primaries().unwrap_or_default())
    }
}

impl LogFiles for Postgres {
    fn log_files(&self, i: usize) -> Vec<String> {
        match self.cluster.nodes.get(i) {
            Some(n) if self.cluster.opts.runs_on(i) => vec![
                self.cluster.opts.log_on(n),
                self.cluster.opts.conf_on(n),
                self.cluster.opts.hba_on(n),
            ],
            _ => Vec::new(),
        }
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

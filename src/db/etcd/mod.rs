//! The etcd target: installs, configures, starts, stops, kills and pauses an N-member etcd
//! cluster by pid file on the run's nodes, probes its leader, and hands out clients that speak
//! etcd's v3 JSON gateway for every built-in workload.
//!
//! - [`config`]: the run's settings (preset `targets/etcd/etcd.yaml` + `--target-opt`) and the
//!   pure argv builder [`config::etcd_args`].
//! - [`client`]: the HTTP client, the workload operations and the error classification that
//!   decides `fail` versus `info`.
//! - [`lifecycle`]: the cluster on the nodes (install, start, health, kill, pause, teardown).
//!
//! Keys and values travel base64-encoded (the `base64` crate), as the gateway requires.
//!
//! docs/targets/etcd.md is the user-facing description.

pub mod client;
pub mod config;
pub mod lifecycle;

pub use client::{EtcdClient, EtcdError, Outcome};
pub use config::{etcd_args, EtcdOpts, EtcdTargetOpts, ReadMode};
pub use lifecycle::EtcdCluster;

use super::vocab::{Typed, Vocabulary};
use super::{
    daemon::PidFileProcesses, Attach, BoxFuture, Client, Clock, Db, DbEnv, DbType, Kill, LogFiles,
    Pause, Primaries,
};
use crate::error::bad_input;
use crate::plan::Plan;
use crate::workload::bank::{initial_balances, BankParams};
use anyhow::{anyhow, Context, Result};

/// The settings of a run: the preset, then `target.install_url`, then the target's options,
/// with a fresh cluster token unless the options fix one. A `target.version` other than the one
/// the Debian package provides needs a tarball.
pub fn opts_from_plan(plan: &Plan, mut t: EtcdTargetOpts) -> Result<EtcdOpts> {
    if t.tarball.is_none() {
        t.tarball = plan.target.install_url.clone();
    }
    let mut opts = EtcdOpts::preset()?;
    opts.cluster_token = config::fresh_cluster_token();
    opts.apply(t)?;
    opts.check()?;
    if let (Some(v), config::Install::Debian { .. }) = (&plan.target.version, &opts.install) {
        if v != &opts.version {
            return Err(bad_input(format!(
                "target.version {v:?}: Debian's etcd-server package provides {}; for another \
                 version give a release tarball (target.install_url or --target-opt tarball=URL)",
                opts.version
            )));
        }
    }
    Ok(opts)
}

/// The vocabularies etcd's clients speak ([`EtcdClient`] implements each).
pub const VOCABULARIES: &[&str] = &[
    Vocabulary::Register.name(),
    Vocabulary::Set.name(),
    Vocabulary::Counter.name(),
    Vocabulary::Bank.name(),
    Vocabulary::ListAppend.name(),
    Vocabulary::RwRegister.name(),
];

/// The etcd target of one run.
pub struct Etcd {
    cluster: EtcdCluster,
    vocabulary: Vocabulary,
    /// The bank's accounts, created at setup.
    bank: Option<BankParams>,
}

impl DbType for Etcd {
    const NAME: &'static str = "etcd";
    const ABOUT: &'static str =
        "etcd 3.4 (Debian's etcd-server, or a release tarball) over its v3 JSON gateway";
    const NEEDS_NODES: bool = true;
    const VOCABULARIES: &'static [&'static str] = VOCABULARIES;
    type Options = EtcdTargetOpts;

    fn build(env: DbEnv, opts: EtcdTargetOpts) -> Result<Etcd> {
        let opts = opts_from_plan(&env.plan, opts)?;
        let vocabulary = Vocabulary::for_run("etcd", VOCABULARIES, &env.workload)?;
        let bank = match vocabulary {
            Vocabulary::Bank => Some(env.workload.params::<BankParams>()?),
            _ => None,
        };
        let urls = env
            .nodes
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let (host, port) = env.deploy.endpoint(i, n, opts.client_port);
                let host = if host.contains(':') {
                    format!("[{host}]")
                } else {
                    host
                };
                format!("http://{host}:{port}")
            })
            .collect();
        let ns = env.deploy.namespace();
        Ok(Etcd {
            cluster: EtcdCluster::new(env.nodes, env.remotes, opts)?
                .with_urls(urls)
                .with_namespace(&ns),
            vocabulary,
            bank,
        })
    }
}

impl Etcd {
    /// The cluster underneath (nodes, settings, per-member control).
    pub fn cluster(&self) -> &EtcdCluster {
        &self.cluster
    }

    fn check_index(&self, i: usize) -> Result<()> {
        if i >= self.cluster.nodes.len() {
            return Err(anyhow!(
                "etcd: node index {i} out of range ({} nodes)",
                self.cluster.nodes.len()
            ));
        }
        Ok(())
    }

    /// The bank's accounts, under the run's namespace, created through the first member that
    /// takes them (once: the transaction only runs while none exists).
    fn create_accounts(&self) -> Result<()> {
        let Some(b) = &self.bank else {
            return Ok(());
        };
        let balances = initial_balances(b.accounts, b.total);
        let mut last = None;
        for (i, n) in self.cluster.nodes.iter().enumerate() {
            let c = self
                .cluster
                .client(i, &self.cluster.opts)
                .map_err(|e| anyhow!("{}: {e}", n.name))?;
            let bal = balances.clone();
            match super::block_on(async move { c.bank_init(&bal).await })? {
                Ok(()) => return Ok(()),
                Err(e) => {
                    last = Some(anyhow!(
                        "creating the bank's accounts through {}: {e}",
                        n.name
                    ))
                }
            }
        }
        Err(last.unwrap_or_else(|| anyhow!("etcd: no nodes")))
    }
}

impl Attach for Etcd {
    fn probe(&self, i: usize) -> Result<String> {
        self.check_index(i)?;
        let mut o = self.cluster.opts.clone();
        o.request_timeout = std::time::Duration::from_secs(3);
        o.connect_timeout = std::time::Duration::from_secs(2);
        let url = self.cluster.urls[i].clone();
        let c = self
            .cluster
            .client(i, &o)
            .map_err(|e| anyhow!("endpoint {url}: {e}"))?;
        let st = super::block_on(async move { c.status().await })?
            .map_err(|e| anyhow!("endpoint {url} does not answer: {e}"))?;
        let version = if st.version.is_empty() {
            "version unknown".to_string()
        } else {
            st.version
        };
        Ok(format!("endpoint {url}: etcd {version}"))
    }

    /// Waits until every member answers and agrees on a leader, then creates the bank's
    /// accounts: no install, config, wipe or start.
    fn attach(&self) -> Result<()> {
        self.cluster.wait_serving(self.cluster.opts.start_timeout)?;
        self.create_accounts()
    }

    /// Deletes the run's namespace through the first member that answers.
    fn delete_data(&self) -> Result<()> {
        let mut last = None;
        for (i, n) in self.cluster.nodes.iter().enumerate() {
            let c = self
                .cluster
                .client(i, &self.cluster.opts)
                .map_err(|e| anyhow!("{}: {e}", n.name))?;
            match super::block_on(async move { c.delete_namespace().await })? {
                Ok(deleted) => {
                    tracing::info!(
                        namespace = %self.cluster.ns,
                        deleted,
                        "deleted the run's keys"
                    );
                    return Ok(());
                }
                Err(e) => {
                    last = Some(anyhow!(
                        "deleting the run's keys ({}) through {}: {e}",
                        self.cluster.ns,
                        n.name
                    ))
                }
            }
        }
        Err(last.unwrap_or_else(|| anyhow!("etcd: no nodes")))
    }
}

impl Db for Etcd {
    fn name(&self) -> &str {
        "etcd"
    }

    fn setup(&self) -> Result<()> {
        self.cluster.setup()?;
        self.create_accounts()
    }

    fn teardown(&self) -> Result<()> {
        self.cluster.teardown()
    }

    fn client(&self, node: Option<usize>) -> BoxFuture<'_, Result<Box<dyn Client>>> {
        Box::pin(async move {
            let i = node.ok_or_else(|| anyhow!("etcd clients must be bound to a node"))?;
            self.check_index(i)?;
            let n = &self.cluster.nodes[i];
            let inner = self
                .cluster
                .client(i, &self.cluster.opts)
                .map_err(|e| anyhow!("{}: {e}", n.name))
                .with_context(|| format!("opening an etcd client to {}", n.name))?;
            let allow_negative = self.bank.as_ref().is_some_and(|b| b.allow_negative);
            let client = inner.allow_negative(allow_negative);
            Ok(Box::new(Typed::new("etcd", self.vocabulary, client)?) as Box<dyn Client>)
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
    fn as_attach(&self) -> Option<&dyn Attach> {
        Some(self)
    }
    /// etcd is written in Go: it reads the clock without libc, so libfaketime cannot move it.
    fn clock(&self) -> Clock {
        Clock::IgnoresFaketime
    }
}

impl PidFileProcesses for Etcd {
    fn process_name(&self) -> &str {
        "etcd"
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
        self.cluster.start_member(i)
    }
}

impl Primaries for Etcd {
    fn primaries(&self) -> Result<Vec<String>> {
        Ok(self.cluster.primaries().unwrap_or_default())
    }
}

impl LogFiles for Etcd {
    fn log_files(&self, i: usize) -> Vec<String> {
        match self.cluster.nodes.get(i) {
            Some(n) => vec![self.cluster.opts.log_on(n)],
            None => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::OpType;
    use serde_json::json;

    #[test]
    fn plan_options_reach_the_settings_and_bad_ones_are_bad_input() {
        let mut plan = Plan::default();
        plan.target.name = "etcd".into();
        plan.target
            .opts
            .insert("read".into(), json!("serializable"));
        plan.target.opts.insert("client-port".into(), json!(12379));
        let typed = |plan: &Plan| -> Result<EtcdTargetOpts> {
            crate::opts::from_map(&plan.target.opts, "target.opts", &plan.origins)
        };
        let o = opts_from_plan(&plan, typed(&plan).unwrap()).unwrap();
        assert_eq!(o.read, ReadMode::Serializable);
        assert_eq!(o.client_port, 12379);
        assert!(o.cluster_token.starts_with("netsplit-"));

        plan.target.opts.insert("bogus".into(), json!(1));
        let e = typed(&plan).unwrap_err();
        assert_eq!(crate::error::exit_code_for(&e), 254);

        let mut plan = Plan::default();
        plan.target.version = Some("3.5.9".into());
        let e = opts_from_plan(&plan, EtcdTargetOpts::default()).unwrap_err();
        assert!(e.to_string().contains("tarball"), "{e}");
        plan.target.install_url = Some("https://example.org/etcd-v3.5.9-linux-amd64.tar.gz".into());
        assert!(opts_from_plan(&plan, EtcdTargetOpts::default()).is_ok());
    }

    #[test]
    fn fail_and_info_completions_echo_the_request() {
        let req = json!([1, 5]);
        let c = Outcome::Info("timeout".into()).completion(&req);
        assert_eq!((c.kind, &c.value), (OpType::Info, &req));
        let c = Outcome::Fail("cas: value did not match".into()).completion(&req);
        assert_eq!(c.kind, OpType::Fail);
        let c = Outcome::Ok(json!([1, 7])).completion(&req);
        assert_eq!((c.kind, c.value), (OpType::Ok, json!([1, 7])));
    }
}

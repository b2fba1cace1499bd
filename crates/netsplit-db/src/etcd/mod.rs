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
pub use config::{etcd_args, EtcdOpts, ReadMode};
pub use lifecycle::{EtcdCluster, EtcdLifecycle};

use super::cluster::Cluster;
use super::vocab::Vocabulary;
use super::{Attach, BoxFuture, DbEnv, DbType};
use crate::error::bad_input;
use crate::plan::DbPlan;
use crate::vocab::initial_balances;
use anyhow::{anyhow, Result};

/// The run's settings from the plan: the preset with `target.install_url` (as `tarball`,
/// unless the options give one) and the target's options laid over it.
pub fn options(plan: &DbPlan) -> Result<EtcdOpts> {
    let mut given = plan.target.opts.clone();
    let mut origins = plan.origins.clone();
    if let Some(url) = &plan.target.install_url {
        if !given.contains_key("tarball") {
            given.insert("tarball".into(), url.as_str().into());
            let at = origins
                .get("target.install_url")
                .unwrap_or("target.install_url");
            origins.set("target.opts.tarball", at.to_string());
        }
    }
    crate::opts::with_preset(&given, "target.opts", &origins)
}

/// Checks the settings against the plan: a `target.version` other than the one the Debian
/// package provides needs a tarball.
pub fn opts_from_plan(plan: &DbPlan, opts: EtcdOpts) -> Result<EtcdOpts> {
    if let (Some(v), None) = (&plan.target.version, &opts.tarball) {
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
pub const VOCABULARIES: &[&str] = Vocabulary::WITH_TRAITS;

/// The etcd target of one run: etcd's [`EtcdLifecycle`] in the [`Cluster`] wrapper.
pub type Etcd = EtcdCluster;

impl DbType for EtcdCluster {
    const NAME: &'static str = "etcd";
    const ABOUT: &'static str =
        "etcd 3.4 (Debian's etcd-server, or a release tarball) over its v3 JSON gateway";
    const VOCABULARIES: &'static [&'static str] = VOCABULARIES;
    type Options = EtcdOpts;

    fn options(plan: &DbPlan) -> Result<EtcdOpts> {
        options(plan)
    }

    fn build(env: DbEnv, opts: EtcdOpts) -> Result<Etcd> {
        let opts = opts_from_plan(&env.plan, opts)?;
        let vocabulary = env.vocabulary::<Self>()?;
        let bank = env.bank(vocabulary)?;
        let urls = env
            .endpoints(opts.client_port)
            .into_iter()
            .map(|(host, port)| {
                let host = if host.contains(':') {
                    format!("[{host}]")
                } else {
                    host
                };
                format!("http://{host}:{port}")
            })
            .collect();
        let mut db = EtcdLifecycle::new(opts, vocabulary)
            .with_urls(urls)
            .with_namespace(&env.deploy.namespace());
        db.bank = bank;
        Cluster::for_run(env, db)
    }
}

impl EtcdCluster {
    /// Runs `f` with a client of each member in turn until one succeeds; the error names the
    /// last member tried.
    fn through_any<T: Send>(
        &self,
        what: &str,
        f: impl Fn(EtcdClient) -> BoxFuture<'static, Result<T, EtcdError>>,
    ) -> Result<T> {
        let mut last = None;
        for (i, n) in self.nodes.iter().enumerate() {
            let c = self
                .member_client(i, &self.opts)
                .map_err(|e| anyhow!("{}: {e}", n.name))?;
            match super::block_on(f(c))? {
                Ok(v) => return Ok(v),
                Err(e) => last = Some(anyhow!("{what} through {}: {e}", n.name)),
            }
        }
        Err(last.unwrap_or_else(|| anyhow!("etcd: no nodes")))
    }

    /// The bank's accounts, under the run's namespace, created through the first member that
    /// takes them (once: the transaction only runs while none exists).
    fn create_accounts(&self) -> Result<()> {
        let Some(b) = &self.bank else {
            return Ok(());
        };
        let balances = initial_balances(b.accounts, b.total);
        self.through_any("creating the bank's accounts", |c| {
            let bal = balances.clone();
            Box::pin(async move { c.bank_init(&bal).await })
        })
    }
}

impl Attach for EtcdCluster {
    fn probe(&self, i: usize) -> Result<String> {
        self.check_index(i)?;
        let mut o = self.opts.clone();
        o.request_timeout = std::time::Duration::from_secs(3);
        o.connect_timeout = std::time::Duration::from_secs(2);
        let url = self.url(i);
        let c = self
            .member_client(i, &o)
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

    /// Waits until every member answers and agrees on a leader (looking at no process: netsplit
    /// did not start them), then creates the bank's accounts: no install, config, wipe or
    /// start.
    fn attach(&self) -> Result<()> {
        let mut probe_opts = self.opts.clone();
        probe_opts.request_timeout = std::time::Duration::from_secs(2);
        self.wait_until(self.opts.start_timeout, None, || {
            match super::block_on(self.health_problem(&probe_opts)) {
                Ok(p) => p.map(|(i, why)| (i, format!("({}) {why}", self.url(i)))),
                Err(e) => Some((0, e.to_string())),
            }
        })?;
        self.create_accounts()
    }

    /// Deletes the run's namespace through the first member that answers.
    fn delete_data(&self) -> Result<()> {
        let what = format!("deleting the run's keys ({})", self.ns);
        let deleted = self.through_any(&what, |c| {
            Box::pin(async move { c.delete_namespace().await })
        })?;
        tracing::info!(namespace = %self.ns, deleted, "deleted the run's keys");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::OpType;
    use serde_json::json;

    #[test]
    fn plan_options_reach_the_settings_and_bad_ones_are_bad_input() {
        let mut plan = DbPlan::default();
        plan.target.name = "etcd".into();
        plan.target
            .opts
            .insert("read".into(), json!("serializable"));
        plan.target.opts.insert("client-port".into(), json!(12379));
        let typed = options;
        let o = opts_from_plan(&plan, typed(&plan).unwrap()).unwrap();
        assert_eq!(o.read, ReadMode::Serializable);
        assert_eq!(o.client_port, 12379);
        assert!(o.cluster_token.starts_with("netsplit-"));

        plan.target.opts.insert("bogus".into(), json!(1));
        let e = typed(&plan).unwrap_err();
        assert_eq!(crate::error::exit_code_for(&e), 254);

        let mut plan = DbPlan::default();
        plan.target.version = Some("3.5.9".into());
        let e = opts_from_plan(&plan, options(&plan).unwrap()).unwrap_err();
        assert!(e.to_string().contains("tarball"), "{e}");
        plan.target.install_url = Some("https://example.org/etcd-v3.5.9-linux-amd64.tar.gz".into());
        assert!(opts_from_plan(&plan, options(&plan).unwrap()).is_ok());
        plan.target.install_url = Some("ftp://example.org/etcd.tar.gz".into());
        let e = options(&plan).unwrap_err();
        assert!(e.to_string().contains("target.opts.tarball: ftp://"), "{e}");
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

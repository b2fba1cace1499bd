//! The etcd target: installs, configures, starts, stops, kills and pauses an N-member etcd
//! cluster by pid file on the run's nodes, probes its leader, and hands out clients that speak
//! etcd's v3 JSON gateway for every built-in workload.
//!
//! - [`config`]: the run's settings (preset `targets/etcd/etcd.yaml` + `--target-opt`) and the
//!   pure argv builder [`config::etcd_args`].
//! - [`client`]: the HTTP client, the workload operations and the error classification that
//!   decides `fail` versus `info`.
//! - [`lifecycle`]: the cluster on the nodes (install, start, health, kill, pause, teardown).
//! - [`base64`]: the gateway's key/value encoding.
//!
//! docs/targets/etcd.md is the user-facing description.

pub mod base64;
pub mod client;
pub mod config;
pub mod lifecycle;

pub use client::{EtcdClient, EtcdError, Outcome, Workload};
pub use config::{etcd_args, EtcdOpts, ReadMode};
pub use lifecycle::EtcdCluster;

use super::{BoxFuture, Client, Completion, Target, TargetEnv};
use crate::control::util::Signal;
use crate::error::bad_input;
use crate::plan::{value_as_text, Plan};
use anyhow::{anyhow, Context, Result};
use serde_json::Value;
use std::sync::Arc;

/// Builds the etcd target for a run (the registry's constructor).
pub fn build(env: TargetEnv) -> Result<Arc<dyn Target>> {
    Ok(Arc::new(Etcd::new(env)?))
}

/// The settings of a run: the preset, then `target.install_url`, then `target.opts`, with a
/// fresh cluster token unless the plan fixes one. A `target.version` other than the one the
/// Debian package provides needs a tarball.
pub fn opts_from_plan(plan: &Plan) -> Result<EtcdOpts> {
    let texts: Vec<(String, String)> = plan
        .target
        .opts
        .iter()
        .map(|(k, v)| (k.clone(), value_as_text(v)))
        .collect();
    let mut opts = EtcdOpts::preset()?;
    opts.cluster_token = config::fresh_cluster_token();
    if let Some(url) = &plan.target.install_url {
        opts.set("tarball", url)?;
    }
    for (k, v) in &texts {
        opts.set(k, v)?;
    }
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

/// The etcd target of one run.
pub struct Etcd {
    cluster: EtcdCluster,
    workload: Workload,
    /// The bank's accounts and total, created at setup.
    bank: Option<(u64, i64)>,
    allow_negative: bool,
}

impl Etcd {
    /// The target for `env` (nodes, remotes and plan); bad options are bad input.
    pub fn new(env: TargetEnv) -> Result<Etcd> {
        let opts = opts_from_plan(&env.plan)?;
        let wl = &env.plan.workload;
        let workload = Workload::from_name(&wl.name).ok_or_else(|| {
            bad_input(format!(
                "target etcd does not speak workload {:?} (known: {})",
                wl.name,
                Workload::NAMES.join(", ")
            ))
        })?;
        Ok(Etcd {
            cluster: EtcdCluster::new(env.nodes, env.remotes, opts)?,
            workload,
            bank: (workload == Workload::Bank).then_some((wl.accounts, wl.total)),
            allow_negative: wl.allow_negative,
        })
    }

    /// The cluster underneath (nodes, settings, per-member control).
    pub fn cluster(&self) -> &EtcdCluster {
        &self.cluster
    }
}

/// The bank's opening balances: `total / accounts` each, the remainder on account 0 (the same
/// split every target uses, so the bank checker's expected total holds).
pub fn initial_balances(accounts: u64, total: i64) -> Vec<(i64, i64)> {
    if accounts == 0 {
        return Vec::new();
    }
    let n = accounts as i64;
    (0..n)
        .map(|a| (a, total / n + if a == 0 { total % n } else { 0 }))
        .collect()
}

impl Target for Etcd {
    fn name(&self) -> &str {
        "etcd"
    }

    fn setup(&self) -> Result<()> {
        self.cluster.setup()?;
        if let Some((accounts, total)) = self.bank {
            let n = &self.cluster.nodes[0];
            let c = EtcdClient::new(
                &n.name,
                &self.cluster.opts.client_url(n),
                &self.cluster.opts,
            )
            .map_err(|e| anyhow!("{}: {e}", n.name))?;
            let balances = initial_balances(accounts, total);
            lifecycle::block_on(async move { c.bank_init(&balances).await })?
                .map_err(|e| anyhow!("creating the bank's accounts through {}: {e}", n.name))?;
        }
        Ok(())
    }

    fn teardown(&self) -> Result<()> {
        self.cluster.teardown()
    }

    fn kill(&self, i: usize) -> Result<()> {
        self.check_index(i)?;
        self.cluster.kill_member(i)
    }

    fn start(&self, i: usize) -> Result<()> {
        self.check_index(i)?;
        self.cluster.start_member(i)
    }

    fn pause(&self, i: usize) -> Result<()> {
        self.check_index(i)?;
        if !self.cluster.signal_member(i, Signal::Stop)? {
            return Err(anyhow!(
                "{}: etcd is not running, nothing to pause",
                self.cluster.nodes[i].name
            ));
        }
        Ok(())
    }

    fn resume(&self, i: usize) -> Result<()> {
        self.check_index(i)?;
        // Not running (killed meanwhile) means nothing is paused: already healed.
        self.cluster.signal_member(i, Signal::Cont).map(|_| ())
    }

    fn log_files(&self, i: usize) -> Vec<String> {
        match self.cluster.nodes.get(i) {
            Some(n) => vec![self.cluster.opts.log_on(n)],
            None => Vec::new(),
        }
    }

    fn primaries(&self) -> Option<Vec<String>> {
        self.cluster.primaries()
    }

    fn client(&self, node: Option<usize>) -> BoxFuture<'_, Result<Box<dyn Client>>> {
        Box::pin(async move {
            let i = node.ok_or_else(|| anyhow!("etcd clients must be bound to a node"))?;
            self.check_index(i)?;
            let n = &self.cluster.nodes[i];
            let inner = EtcdClient::new(
                &n.name,
                &self.cluster.opts.client_url(n),
                &self.cluster.opts,
            )
            .map_err(|e| anyhow!("{}: {e}", n.name))
            .with_context(|| format!("opening an etcd client to {}", n.name))?;
            Ok(Box::new(EtcdWorkerClient {
                inner: inner.allow_negative(self.allow_negative),
                workload: self.workload,
            }) as Box<dyn Client>)
        })
    }
}

impl Etcd {
    fn check_index(&self, i: usize) -> Result<()> {
        if i >= self.cluster.nodes.len() {
            return Err(anyhow!(
                "etcd: node index {i} out of range ({} nodes)",
                self.cluster.nodes.len()
            ));
        }
        Ok(())
    }
}

/// A runner worker's client: an [`EtcdClient`] speaking one workload.
pub struct EtcdWorkerClient {
    pub inner: EtcdClient,
    pub workload: Workload,
}

/// The runner's completion for an [`Outcome`]: `fail` and `info` echo the request value.
pub fn completion(outcome: Outcome, request: &Value) -> Completion {
    match outcome {
        Outcome::Ok(v) => Completion::ok(v),
        Outcome::Fail(e) => Completion::fail(request.clone(), e),
        Outcome::Info(e) => Completion::info(request.clone(), e),
    }
}

impl Client for EtcdWorkerClient {
    fn invoke<'a>(&'a mut self, f: &'a str, value: &'a Value) -> BoxFuture<'a, Completion> {
        Box::pin(async move { completion(self.inner.invoke(self.workload, f, value).await, value) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::OpType;
    use serde_json::json;

    #[test]
    fn bank_opening_balances_sum_to_the_total() {
        let b = initial_balances(3, 100);
        assert_eq!(b, vec![(0, 34), (1, 33), (2, 33)]);
        assert_eq!(b.iter().map(|(_, x)| x).sum::<i64>(), 100);
        assert!(initial_balances(0, 5).is_empty());
    }

    #[test]
    fn plan_options_reach_the_settings_and_bad_ones_are_bad_input() {
        let mut plan = Plan::default();
        plan.target.name = "etcd".into();
        plan.target
            .opts
            .insert("read".into(), json!("serializable"));
        plan.target.opts.insert("client-port".into(), json!(12379));
        let o = opts_from_plan(&plan).unwrap();
        assert_eq!(o.read, ReadMode::Serializable);
        assert_eq!(o.client_port, 12379);
        assert!(o.cluster_token.starts_with("netsplit-"));

        plan.target.opts.insert("bogus".into(), json!(1));
        let e = opts_from_plan(&plan).unwrap_err();
        assert_eq!(crate::error::exit_code_for(&e), 254);

        let mut plan = Plan::default();
        plan.target.version = Some("3.5.9".into());
        let e = opts_from_plan(&plan).unwrap_err();
        assert!(e.to_string().contains("tarball"), "{e}");
        plan.target.install_url = Some("https://example.org/etcd-v3.5.9-linux-amd64.tar.gz".into());
        assert!(opts_from_plan(&plan).is_ok());
    }

    #[test]
    fn fail_and_info_completions_echo_the_request() {
        let req = json!([1, 5]);
        let c = completion(Outcome::Info("timeout".into()), &req);
        assert_eq!((c.kind, &c.value), (OpType::Info, &req));
        let c = completion(Outcome::Fail("cas: value did not match".into()), &req);
        assert_eq!(c.kind, OpType::Fail);
        let c = completion(Outcome::Ok(json!([1, 7])), &req);
        assert_eq!((c.kind, c.value), (OpType::Ok, json!([1, 7])));
    }
}

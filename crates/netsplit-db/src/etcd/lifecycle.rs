//! What etcd does on one node, for the [`Cluster`] wrapper ([`NodeLifecycle`]): install (the
//! Debian package or a release tarball), wipe, start a member of an N-member static cluster
//! (`new` on an empty data directory, `existing` over one it has), its pid file and log, and
//! when the cluster serves: every member answers, all agree on one leader, and a put through
//! every member succeeds. Fan-out, waiting, kill and pause by pid file are the wrapper's.
//!
//! Probes that need HTTP (health, leader) run on a private current-thread runtime on a scratch
//! thread ([`crate::block_on`]), because the [`crate::Db`] calls are blocking and may
//! be made from a thread that belongs to the runner's runtime.

use super::client::{EtcdClient, EtcdError, Status};
use super::config::{etcd_args, ClusterState, EtcdOpts, Install};
use crate::cluster::{Cluster, NodeFiles, NodeLifecycle};
use crate::control::util::{self, Daemon};
use crate::control::Cmd;
use crate::vocab::BankParams;
use crate::vocab::{Typed, Vocabulary};
use crate::{BoxFuture, Client, Clock, Primaries};
use anyhow::{anyhow, Context, Result};
use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

pub use crate::block_on;

/// etcd's own part of a run: its settings, where clients reach each member, the run's
/// namespace and the workload its clients speak.
pub struct EtcdLifecycle {
    /// The run's settings; `cluster_token` is unique to this cluster.
    pub opts: EtcdOpts,
    /// Each member's client URL (default: the node's address and `client_port`).
    pub urls: Vec<String>,
    /// The run's namespace: the health probe's key lives under it.
    pub ns: String,
    /// The workload's vocabulary.
    pub vocabulary: Vocabulary,
    /// The bank's accounts, created at setup.
    pub bank: Option<BankParams>,
}

/// An etcd cluster on a set of nodes.
pub type EtcdCluster = Cluster<EtcdLifecycle>;

impl EtcdLifecycle {
    /// etcd with `opts`, speaking `vocabulary`; clients at each node's address and
    /// `client_port` until [`EtcdLifecycle::with_urls`], outside any namespace until
    /// [`EtcdLifecycle::with_namespace`].
    pub fn new(opts: EtcdOpts, vocabulary: Vocabulary) -> Self {
        EtcdLifecycle {
            opts,
            urls: Vec::new(),
            ns: String::new(),
            vocabulary,
            bank: None,
        }
    }

    /// The same with its members' client URLs given (one per node).
    pub fn with_urls(mut self, urls: Vec<String>) -> Self {
        self.urls = urls;
        self
    }

    /// The same with the run's namespace (`netsplit/<run id>/`).
    pub fn with_namespace(mut self, ns: &str) -> Self {
        self.ns = ns.to_string();
        self
    }
}

impl NodeLifecycle for EtcdLifecycle {
    const NAME: &'static str = "etcd";

    /// Installs etcd on node `i` (idempotent).
    fn install(c: &EtcdCluster, i: usize) -> Result<()> {
        let r = c.remote(i)?;
        let node = &c.nodes[i].name;
        match c.opts.install() {
            Install::Debian { packages } => {
                let pkgs: Vec<&str> = packages.iter().map(String::as_str).collect();
                util::install_packages(r, &pkgs)
                    .with_context(|| format!("installing etcd on {node}"))?;
            }
            Install::Tarball { url } => {
                util::install_packages(r, &["curl", "ca-certificates", "tar", "gzip"])
                    .with_context(|| format!("installing curl on {node}"))?;
                const FETCH: &str = r#"dist=$1/dist; url=$2
[ -x "$dist/etcd" ] && [ -s "$dist/.url" ] && [ "$(cat "$dist/.url")" = "$url" ] && exit 0
rm -rf -- "$dist" && mkdir -p -- "$dist" &&
curl -fsSL --retry 3 -o "$dist/etcd.tar.gz" -- "$url" &&
tar -xzf "$dist/etcd.tar.gz" -C "$dist" --strip-components=1 &&
[ -x "$dist/etcd" ] && printf '%s' "$url" > "$dist/.url""#;
                let dir = c.opts.dir_on(&c.nodes[i]);
                r.exec_ok(&util::script(FETCH, &[&dir, &url]).timeout(Duration::from_secs(600)))
                    .with_context(|| format!("downloading etcd from {url} on {node}"))?;
            }
        }
        Ok(())
    }

    /// Starts member `i` unless its pid file names a live process: `new` on an empty data
    /// directory, `existing` over one it already has.
    fn start(c: &EtcdCluster, i: usize) -> Result<()> {
        let r = c.remote(i)?;
        let node = &c.nodes[i];
        let mut o = c.opts_for(i);
        let data = o.data_dir_on(node);
        let has_data = r.exec(
            &Cmd::new("test")
                .args(["-d", &format!("{data}/member")])
                .sudo(),
        )?;
        o.initial_cluster_state = if has_data.status == 0 {
            ClusterState::Existing
        } else {
            ClusterState::New
        };
        let d = Daemon {
            name: "etcd".into(),
            argv: etcd_args(i, &c.nodes, &o),
            env: Vec::new(),
            cwd: o.dir_on(node),
            pidfile: o.pid_on(node),
            logfile: o.log_on(node),
        };
        c.start_daemon(i, &d)
    }

    fn files(c: &EtcdCluster, i: usize) -> NodeFiles {
        let (o, n) = (&c.opts, &c.nodes[i]);
        NodeFiles::new(o.pid_on(n), o.log_on(n), Some(o.data_dir_on(n)))
    }

    /// Every member answers, all agree on one leader, and a put through every member
    /// succeeds.
    fn not_serving(c: &EtcdCluster) -> Option<(usize, String)> {
        let mut probe_opts = c.opts.clone();
        probe_opts.request_timeout = Duration::from_secs(2);
        block_on(c.health_problem(&probe_opts)).unwrap_or_else(|e| Some((0, e.to_string())))
    }

    fn start_timeout(c: &EtcdCluster) -> Duration {
        c.opts.start_timeout
    }

    /// The standard setup, then the bank's accounts.
    fn setup(c: &EtcdCluster) -> Result<()> {
        c.deploy()?;
        c.create_accounts()
    }

    fn client(c: &EtcdCluster, i: usize) -> BoxFuture<'_, Result<Box<dyn Client>>> {
        Box::pin(async move {
            let n = &c.nodes[i];
            let inner = c
                .member_client(i, &c.opts)
                .map_err(|e| anyhow!("{}: {e}", n.name))
                .with_context(|| format!("opening an etcd client to {}", n.name))?;
            let allow_negative = c.bank.as_ref().is_some_and(|b| b.allow_negative);
            let client = inner.allow_negative(allow_negative);
            Ok(Box::new(Typed::new("etcd", c.vocabulary, client)?) as Box<dyn Client>)
        })
    }

    /// etcd is written in Go: it reads the clock without libc, so libfaketime cannot move it.
    fn clock(_c: &EtcdCluster) -> Clock {
        Clock::IgnoresFaketime
    }

    fn as_primaries(c: &EtcdCluster) -> Option<&dyn Primaries> {
        Some(c)
    }

    fn as_attach(c: &EtcdCluster) -> Option<&dyn crate::Attach> {
        Some(c)
    }
}

impl Primaries for EtcdCluster {
    fn primaries(&self) -> Result<Vec<String>> {
        Ok(self.leaders().unwrap_or_default())
    }
}

impl EtcdCluster {
    /// A client of member `i` (its URL, the run's namespace).
    pub fn member_client(&self, i: usize, opts: &EtcdOpts) -> Result<EtcdClient, EtcdError> {
        Ok(EtcdClient::new(&self.nodes[i].name, &self.url(i), opts)?.namespace(&self.ns))
    }

    /// Member `i`'s client URL.
    pub fn url(&self, i: usize) -> String {
        match self.urls.get(i) {
            Some(u) => u.clone(),
            None => self.opts.client_url(&self.nodes[i]),
        }
    }

    /// The settings of member `i`: for tarball installs the binary lives under its own dir.
    pub fn opts_for(&self, i: usize) -> EtcdOpts {
        let mut o = self.opts.clone();
        if o.tarball.is_some() {
            o.binary = format!("{}/dist/etcd", o.dir_on(&self.nodes[i]));
        }
        o
    }

    /// The first problem keeping the cluster from being healthy: (node index, why), or None.
    pub(super) async fn health_problem(&self, opts: &EtcdOpts) -> Option<(usize, String)> {
        let statuses = self.statuses(opts).await;
        let mut leaders = BTreeMap::new();
        for (i, s) in statuses.iter().enumerate() {
            match s {
                Err(e) => return Some((i, format!("status: {e}"))),
                Ok(s) if s.leader == 0 => return Some((i, "no leader known".into())),
                Ok(s) => *leaders.entry(s.leader).or_insert(0usize) += 1,
            }
        }
        if leaders.len() > 1 {
            return Some((0, format!("members disagree on the leader: {leaders:?}")));
        }
        for i in 0..self.nodes.len() {
            let c = match self.member_client(i, opts) {
                Ok(c) => c,
                Err(e) => return Some((i, e.to_string())),
            };
            let key = if self.ns.is_empty() {
                b"netsplit/health".to_vec()
            } else {
                c.key("health")
            };
            if let Err(e) = c.put(&key, self.nodes[i].name.as_bytes()).await {
                return Some((i, format!("put: {e}")));
            }
        }
        None
    }

    /// Every member's status, probed concurrently.
    pub async fn statuses(&self, opts: &EtcdOpts) -> Vec<Result<Status, EtcdError>> {
        let mut tasks = Vec::new();
        for i in 0..self.nodes.len() {
            let c = self.member_client(i, opts);
            tasks.push(async move {
                match c {
                    Ok(c) => c.status().await,
                    Err(e) => Err(e),
                }
            });
        }
        // Awaiting them one by one would serialise the probes; join them instead.
        join_all(tasks).await
    }

    /// The names of the members that currently believe they lead (several during a partition
    /// until the old leader steps down); None when no member answered.
    pub fn leaders(&self) -> Option<Vec<String>> {
        let mut opts = self.opts.clone();
        opts.request_timeout = Duration::from_secs(1);
        opts.connect_timeout = Duration::from_millis(500);
        let statuses = block_on(self.statuses(&opts)).ok()?;
        self.leading(&statuses, |s| s.member_id != 0 && s.member_id == s.leader)
    }
}

/// Polls every future to completion concurrently (a tiny `join_all`, to avoid a dependency).
async fn join_all<F: Future>(futs: Vec<F>) -> Vec<F::Output> {
    let mut set = Vec::new();
    for f in futs {
        set.push(Box::pin(f));
    }
    let mut out: Vec<Option<F::Output>> = (0..set.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in set.iter_mut().enumerate() {
            if out[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => out[i] = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.into_iter().flatten().collect()
}

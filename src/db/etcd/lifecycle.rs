//! The etcd cluster's life on the nodes: install, configure and start an N-member static
//! cluster, wait until it serves, and stop, kill, restart, pause and resume members — always by
//! the member's own pid file, never by process name (local nodes share one process table, so
//! `pkill etcd` would hit every member at once).
//!
//! Everything goes through the node utilities of [`crate::control::util`] over a
//! [`Remote`]; the few small shell scripts here take every value as a positional parameter.
//! Probes that need HTTP (health, leader) run on a private current-thread runtime on a scratch
//! thread, because the [`crate::db::Db`] calls are blocking and may be made from a
//! thread that belongs to the runner's runtime.

use super::client::{EtcdClient, EtcdError, Status};
use super::config::{etcd_args, ClusterState, EtcdOpts, Install};
use crate::control::util::{self, Daemon, Signal};
use crate::control::{Cmd, Node, Remote};
use crate::db::daemon;
use anyhow::{anyhow, Context, Result};
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use crate::db::block_on;

/// Runs `f` for every node in parallel, returning results in node order.
pub fn on_each<T: Send>(
    remotes: &[Arc<dyn Remote>],
    f: impl Fn(usize, &dyn Remote) -> T + Sync,
) -> Vec<T> {
    crate::control::fan_out(remotes, |i, r| f(i, r.as_ref()))
}

/// The first error of a list of per-node results, or `Ok`.
fn all_ok(results: Vec<Result<()>>) -> Result<()> {
    results.into_iter().collect::<Result<Vec<()>>>().map(|_| ())
}

fn sh(script: &str, args: &[&str]) -> Cmd {
    Cmd::new("sh")
        .arg("-c")
        .arg(script)
        .arg("sh")
        .args(args.iter().copied())
        .sudo()
        .timeout(Duration::from_secs(120))
}

/// One etcd cluster on a set of nodes.
pub struct EtcdCluster {
    pub nodes: Vec<Node>,
    /// Empty when there is no SSH to the nodes (a deployed cluster, clients only).
    pub remotes: Vec<Arc<dyn Remote>>,
    /// The run's settings; `cluster_token` is unique to this cluster.
    pub opts: EtcdOpts,
    /// Each member's client URL (default: the node's address and `client_port`).
    pub urls: Vec<String>,
    /// The run's namespace: the health probe's key lives under it.
    pub ns: String,
}

impl EtcdCluster {
    /// A cluster of `nodes` (reached through `remotes`, same order).
    pub fn new(nodes: Vec<Node>, remotes: Vec<Arc<dyn Remote>>, opts: EtcdOpts) -> Result<Self> {
        if nodes.is_empty() {
            return Err(crate::error::bad_input(
                "the etcd target needs nodes (give --nodes, --cluster, or run as root for a \
                 local cluster)",
            ));
        }
        if nodes.len() != remotes.len() && !remotes.is_empty() {
            return Err(anyhow!(
                "etcd: {} nodes but {} remotes",
                nodes.len(),
                remotes.len()
            ));
        }
        let urls = nodes.iter().map(|n| opts.client_url(n)).collect();
        Ok(EtcdCluster {
            nodes,
            remotes,
            opts,
            urls,
            ns: String::new(),
        })
    }

    /// The same cluster with its members' client URLs given (one per node).
    pub fn with_urls(mut self, urls: Vec<String>) -> Self {
        if urls.len() == self.nodes.len() {
            self.urls = urls;
        }
        self
    }

    /// The same cluster with the run's namespace (`netsplit/<run id>/`).
    pub fn with_namespace(mut self, ns: &str) -> Self {
        self.ns = ns.to_string();
        self
    }

    /// A client of member `i` (its URL, the run's namespace).
    pub fn client(&self, i: usize, opts: &EtcdOpts) -> Result<EtcdClient, EtcdError> {
        let n = &self.nodes[i];
        Ok(EtcdClient::new(&n.name, &self.urls[i], opts)?.namespace(&self.ns))
    }

    /// Waits until a cluster netsplit did not start serves: every member answers, all agree
    /// on one leader, and a put through every member (of a key in the run's namespace)
    /// succeeds. Looks at no process; the error names the member that kept it from serving.
    pub fn wait_serving(&self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        let mut probe_opts = self.opts.clone();
        probe_opts.request_timeout = Duration::from_secs(2);
        loop {
            let Some((i, why)) = block_on(self.health_problem(&probe_opts))? else {
                return Ok(());
            };
            if Instant::now() >= deadline {
                return Err(anyhow!(
                    "etcd on {} ({}) did not serve within {:.0}s: {why}",
                    self.nodes[i].name,
                    self.urls[i],
                    timeout.as_secs_f64()
                ));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The settings of member `i`: for tarball installs the binary lives under its own dir.
    pub fn opts_for(&self, i: usize) -> EtcdOpts {
        let mut o = self.opts.clone();
        if let Install::Tarball { .. } = o.install {
            o.binary = format!("{}/dist/etcd", o.dir_on(&self.nodes[i]));
        }
        o
    }

    /// Installs etcd on node `i` (idempotent).
    pub fn install(&self, i: usize) -> Result<()> {
        let r = self.remotes[i].as_ref();
        let node = &self.nodes[i].name;
        match &self.opts.install {
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
                let dir = self.opts.dir_on(&self.nodes[i]);
                r.exec_ok(&sh(FETCH, &[&dir, url]).timeout(Duration::from_secs(600)))
                    .with_context(|| format!("downloading etcd from {url} on {node}"))?;
            }
        }
        Ok(())
    }

    /// Stops member `i` (if running) and removes its data directory, pid file and log.
    pub fn wipe(&self, i: usize, keep_log: bool) -> Result<()> {
        let r = self.remotes[i].as_ref();
        let node = &self.nodes[i];
        util::stop_daemon(r, &self.opts.pid_on(node), Duration::from_secs(5))
            .with_context(|| format!("stopping etcd on {}", node.name))?;
        let mut rm = Cmd::new("rm")
            .args(["-rf", "--", &self.opts.data_dir_on(node)])
            .sudo();
        if !keep_log {
            rm = rm.arg(self.opts.log_on(node));
        }
        r.exec_ok(&rm)
            .with_context(|| format!("wiping etcd's data on {}", node.name))?;
        Ok(())
    }

    /// Starts member `i` unless its pid file names a live process: `new` on an empty data
    /// directory, `existing` over one it already has.
    pub fn start_member(&self, i: usize) -> Result<()> {
        let r = self.remotes[i].as_ref();
        let node = &self.nodes[i];
        let mut o = self.opts_for(i);
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
            argv: etcd_args(i, &self.nodes, &o),
            env: Vec::new(),
            cwd: o.dir_on(node),
            pidfile: o.pid_on(node),
            logfile: o.log_on(node),
        };
        util::start_daemon(r, &d).with_context(|| format!("starting etcd on {}", node.name))?;
        Ok(())
    }

    /// The pid of member `i`, if its pid file names a live process.
    pub fn pid(&self, i: usize) -> Result<Option<u32>> {
        Ok(util::daemon_pid(
            self.remotes[i].as_ref(),
            &self.opts.pid_on(&self.nodes[i]),
        )?)
    }

    /// SIGKILLs member `i` and waits until the process is gone (see [`daemon::kill`]).
    pub fn kill_member(&self, i: usize) -> Result<()> {
        daemon::kill(
            self.remotes[i].as_ref(),
            &self.opts.pid_on(&self.nodes[i]),
            "etcd",
        )
    }

    /// Sends `sig` to member `i` by pid file; false when no process was running.
    pub fn signal_member(&self, i: usize, sig: Signal) -> Result<bool> {
        let node = &self.nodes[i];
        util::signal_daemon(self.remotes[i].as_ref(), &self.opts.pid_on(node), sig)
            .with_context(|| format!("sending SIG{} to etcd on {}", sig.name(), node.name))
    }

    /// The last lines of member `i`'s log, for error messages.
    pub fn log_tail(&self, i: usize, lines: usize) -> String {
        daemon::log_tail(
            self.remotes[i].as_ref(),
            &self.opts.log_on(&self.nodes[i]),
            lines,
        )
    }

    /// Installs on every node, wipes what an earlier run left, starts every member and waits
    /// until the cluster serves.
    pub fn setup(&self) -> Result<()> {
        all_ok(on_each(&self.remotes, |i, _| self.install(i)))?;
        all_ok(on_each(&self.remotes, |i, _| self.wipe(i, false)))?;
        all_ok(on_each(&self.remotes, |i, _| self.start_member(i)))?;
        self.wait_healthy(self.opts.start_timeout)
    }

    /// Stops every member and removes its data (the log stays, for snarfing).
    pub fn teardown(&self) -> Result<()> {
        all_ok(on_each(&self.remotes, |i, _| self.wipe(i, true)))
    }

    /// Waits until every member answers, all agree on one leader, and a put through every
    /// member succeeds. On timeout (or when a member's process has died) the error names the
    /// node and quotes the end of its log.
    pub fn wait_healthy(&self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        let mut probe_opts = self.opts.clone();
        probe_opts.request_timeout = Duration::from_secs(2);
        loop {
            let problem = block_on(self.health_problem(&probe_opts))?;
            let Some((mut i, mut why)) = problem else {
                return Ok(());
            };
            let mut dead = matches!(self.pid(i), Ok(None));
            if !dead && Instant::now() >= deadline {
                // The member that looks unhealthy may only suffer from another one being dead:
                // name the dead one, whose log says why.
                if let Some(d) = (0..self.nodes.len()).find(|&d| matches!(self.pid(d), Ok(None))) {
                    why = format!("{why} (seen from {})", self.nodes[i].name);
                    (i, dead) = (d, true);
                }
            }
            if dead || Instant::now() >= deadline {
                let node = &self.nodes[i].name;
                let headline = if dead {
                    format!("etcd on {node} is not running")
                } else {
                    format!(
                        "etcd on {node} did not become healthy within {:.0}s",
                        timeout.as_secs_f64()
                    )
                };
                return Err(anyhow!(
                    "{headline}: {why}; the end of {} says: {}",
                    self.opts.log_on(&self.nodes[i]),
                    self.log_tail(i, 3)
                ));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn client_for(&self, i: usize, opts: &EtcdOpts) -> Result<EtcdClient, EtcdError> {
        self.client(i, opts)
    }

    /// The first problem keeping the cluster from being healthy: (node index, why), or None.
    async fn health_problem(&self, opts: &EtcdOpts) -> Option<(usize, String)> {
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
            let c = match self.client_for(i, opts) {
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
            let c = self.client_for(i, opts);
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
    pub fn primaries(&self) -> Option<Vec<String>> {
        let mut opts = self.opts.clone();
        opts.request_timeout = Duration::from_secs(1);
        opts.connect_timeout = Duration::from_millis(500);
        let statuses = block_on(self.statuses(&opts)).ok()?;
        if statuses.iter().all(Result::is_err) {
            return None;
        }
        Some(
            statuses
                .iter()
                .zip(&self.nodes)
                .filter_map(|(s, n)| match s {
                    Ok(s) if s.member_id != 0 && s.member_id == s.leader => Some(n.name.clone()),
                    _ => None,
                })
                .collect(),
        )
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

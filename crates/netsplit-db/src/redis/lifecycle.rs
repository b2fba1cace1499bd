//! What Redis does on one node, for the [`Cluster`] wrapper ([`NodeLifecycle`]): install
//! Debian's redis-server (and libfaketime where clock faults need it), write the node's
//! `redis.conf` (n1 the primary, every other node `replicaof n1`), wipe, start it, its pid file
//! and logs, and when the deployment serves: every node answers PING, and every replica's link
//! to the primary is up. With `failover=sentinel` setup then starts a Sentinel on every node
//! and waits until each knows the others. Fan-out, waiting (a server that refuses connections
//! while it loads or writes its append-only file is starting, not dead), kill and pause by pid
//! file are the wrapper's.
//!
//! Probes (PING, INFO) are blocking RESP exchanges from the control node
//! ([`super::resp::SyncConn`]), since the [`crate::Db`] calls that use them are blocking.

use super::config::{redis_conf, sentinel_conf, RedisOpts};
use super::resp::{info_fields, Reply, SyncConn};
use super::RedisClient;
use crate::cluster::{Cluster, NodeFiles, NodeLifecycle, Watch, WIPE_GRACE};
use crate::control::util::{self, Daemon};
use crate::vocab::{Typed, Vocabulary};
use crate::{daemon, Attach, BoxFuture, Client, Clock, Primaries};
use anyhow::{anyhow, Context, Result};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// The libfaketime package (its library is what [`crate::control::faketime::faketime_env`]
/// preloads).
pub const FAKETIME_PACKAGE: &str = "libfaketime";

/// glibc's malloc as a preloadable library (package libc6, glibc ≥ 2.34); `$LIB` is the
/// loader's multiarch directory, as in [`crate::control::faketime::LIBFAKETIME`].
pub const GLIBC_MALLOC: &str = "/usr/$LIB/libc_malloc_debug.so.0";

/// The environment redis-server starts with on faketime nodes: the nemesis's
/// [`crate::control::faketime::faketime_env`], with glibc's malloc preloaded in front of
/// libfaketime. Debian's redis-server allocates with jemalloc, whose initialisation calls
/// `clock_gettime` while libfaketime is still initialising: the process spins forever before
/// it serves ("Unexpected recursive calls to clock_gettime()"). With glibc's `malloc`, `free`,
/// `realloc`, `calloc` and `malloc_usable_size` interposed first, jemalloc is never
/// initialised by an allocation; redis only uses jemalloc's statistics calls, which then report
/// jemalloc's (empty) arenas — `INFO memory` is off, nothing else changes.
pub fn faketime_env(workdir: &str) -> Vec<(String, String)> {
    let mut env = crate::control::faketime::faketime_env(workdir);
    for (k, v) in &mut env {
        if k == "LD_PRELOAD" {
            *v = format!("{GLIBC_MALLOC}:{v}");
        }
    }
    env
}

/// A node's replication state, from `INFO replication`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replication {
    /// `master` or `slave`.
    pub role: String,
    /// For a replica: `up` or `down`.
    pub link: Option<String>,
}

/// Parses the answer of `INFO replication`.
pub fn parse_replication(text: &str) -> Replication {
    let f = info_fields(text);
    let get = |k: &str| f.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string());
    Replication {
        role: get("role").unwrap_or_default(),
        link: get("master_link_status"),
    }
}

/// Redis's own part of a run: its settings, where clients reach each node, the run's
/// namespace, the workload its clients speak, and which node is the primary.
pub struct RedisLifecycle {
    /// The target's settings (`--target-opt`, the plan's `target:`).
    pub opts: RedisOpts,
    /// Whether redis-server runs under libfaketime (resolved from `faketime=auto|on|off`).
    pub faketime: bool,
    /// Where each node's server listens for clients (default: its address and `port`).
    pub endpoints: Vec<(String, u16)>,
    /// The workload's vocabulary.
    pub vocabulary: Vocabulary,
    /// The run's namespace (`netsplit/<run id>/`).
    pub ns: String,
    /// The primary's node index: n1 when netsplit deploys; asked of a deployed Redis.
    pub primary: AtomicUsize,
    /// The Sentinels clients ask where the primary is (empty: a static primary): netsplit's
    /// own on every node, or a deployed Redis's (`sentinels=`, [`super::sentinels_of`]).
    pub sentinels: Vec<(String, u16)>,
}

/// Redis on a set of nodes: node 0 the primary, the others its replicas.
pub type RedisCluster = Cluster<RedisLifecycle>;

impl RedisLifecycle {
    /// Redis with `opts` (under libfaketime when `faketime`), speaking `vocabulary`, its
    /// clients at `endpoints` (one per node), its keys under `ns`.
    pub fn new(
        opts: RedisOpts,
        faketime: bool,
        endpoints: Vec<(String, u16)>,
        vocabulary: Vocabulary,
        ns: String,
    ) -> Self {
        RedisLifecycle {
            opts,
            faketime,
            endpoints,
            vocabulary,
            ns,
            primary: AtomicUsize::new(0),
            sentinels: Vec::new(),
        }
    }

    /// The Sentinels to ask where the primary is (see [`RedisLifecycle::sentinels`]).
    pub fn sentinels(mut self, sentinels: Vec<(String, u16)>) -> Self {
        self.sentinels = sentinels;
        self
    }

    /// The Sentinels in the order a client bound to the node at `host` (node `i`) asks them:
    /// one on its own host first, else starting at the `i`-th, then the rest in turn.
    pub fn sentinels_for(&self, i: usize, host: &str) -> Vec<(String, u16)> {
        let n = self.sentinels.len();
        if n == 0 {
            return Vec::new();
        }
        let first = self
            .sentinels
            .iter()
            .position(|(h, _)| h == host)
            .unwrap_or(i % n);
        (0..n)
            .map(|k| self.sentinels[(first + k) % n].clone())
            .collect()
    }

    fn env(&self, workdir: &str) -> Vec<(String, String)> {
        if self.faketime {
            faketime_env(workdir)
        } else {
            Vec::new()
        }
    }
}

impl NodeLifecycle for RedisLifecycle {
    const NAME: &'static str = "redis";

    /// Installs redis-server (and libfaketime when used) on node `i`; idempotent, apt runs
    /// once per host under the node utilities' lock.
    fn install(c: &RedisCluster, i: usize) -> Result<()> {
        let mut pkgs: Vec<&str> = c.opts.packages.iter().map(String::as_str).collect();
        if c.faketime {
            pkgs.push(FAKETIME_PACKAGE);
        }
        util::install_packages(c.remote(i)?, &pkgs)
            .with_context(|| format!("installing redis on {}", c.nodes[i].name))?;
        Ok(())
    }

    /// Writes node `i`'s redis.conf (and sentinel.conf with Sentinel).
    fn configure(c: &RedisCluster, i: usize) -> Result<()> {
        let r = c.remote(i)?;
        let node = &c.nodes[i];
        let text = redis_conf(i, &c.nodes, &c.opts)
            .map_err(|e| anyhow!("rendering redis.conf for {}: {e}", node.name))?;
        util::write_file(r, &c.opts.conf_on(node), text.as_bytes())
            .with_context(|| format!("writing redis.conf on {}", node.name))?;
        if c.opts.sentinel() {
            let text = sentinel_conf(i, &c.nodes, &c.opts)
                .map_err(|e| anyhow!("rendering sentinel.conf for {}: {e}", node.name))?;
            util::write_file(r, &c.opts.sentinel_conf_on(node), text.as_bytes())
                .with_context(|| format!("writing sentinel.conf on {}", node.name))?;
        }
        Ok(())
    }

    /// Stops node `i` (if running) and removes its data and pid file (and its log unless
    /// `keep_log`).
    fn wipe(c: &RedisCluster, i: usize, keep_log: bool) -> Result<()> {
        let (o, node) = (&c.opts, &c.nodes[i]);
        // Sentinel first (whether or not this run uses one: an earlier run may have), so it
        // does not see the primary go and fail over.
        let r = c.remote(i)?;
        daemon::stop(r, &o.sentinel_pid_on(node), "redis-sentinel", WIPE_GRACE)?;
        daemon::stop(r, &o.pid_on(node), "redis", WIPE_GRACE)?;
        let sentinel = [o.sentinel_pid_on(node), o.sentinel_conf_on(node)];
        c.remove_files(i, keep_log, &sentinel, &[o.sentinel_log_on(node)])
    }

    /// Starts node `i` from its redis.conf unless its pid file names a live process. Over an
    /// existing data directory it loads its append-only file.
    fn start(c: &RedisCluster, i: usize) -> Result<()> {
        let node = &c.nodes[i];
        c.make_dir(i, &c.opts.data_dir_on(node))?;
        let d = Daemon {
            name: "redis-server".into(),
            argv: vec![c.opts.binary.clone(), c.opts.conf_on(node)],
            env: c.env(&node.workdir),
            cwd: c.opts.dir_on(node),
            pidfile: c.opts.pid_on(node),
            logfile: c.opts.log_on(node),
        };
        c.start_daemon(i, &d)
    }

    fn files(c: &RedisCluster, i: usize) -> NodeFiles {
        let (o, n) = (&c.opts, &c.nodes[i]);
        NodeFiles::new(o.pid_on(n), o.log_on(n), Some(o.data_dir_on(n)))
    }

    /// The log and the config, and Sentinel's with Sentinel.
    fn log_files(c: &RedisCluster, i: usize) -> Vec<String> {
        let (o, n) = (&c.opts, &c.nodes[i]);
        let mut files = vec![o.log_on(n), o.conf_on(n)];
        if o.sentinel() {
            files.extend([o.sentinel_log_on(n), o.sentinel_conf_on(n)]);
        }
        files
    }

    /// Every node answers PING and every replica reports `master_link_status:up`.
    fn not_serving(c: &RedisCluster) -> Option<(usize, String)> {
        c.first_problem(|i| c.not_ready(i))
    }

    fn start_timeout(c: &RedisCluster) -> Duration {
        c.opts.start_timeout
    }

    /// The standard setup, then (with Sentinel) a Sentinel on every node, waited for until
    /// each knows the others.
    fn setup(c: &RedisCluster) -> Result<()> {
        c.deploy()?;
        if c.opts.sentinel() {
            c.on_db_nodes(|i| c.start_sentinel(i))?;
            c.wait_sentinels(c.opts.start_timeout)?;
        }
        Ok(())
    }

    fn client(c: &RedisCluster, i: usize) -> BoxFuture<'_, Result<Box<dyn Client>>> {
        Box::pin(async move {
            let n = &c.nodes[i];
            let (host, port) = &c.endpoints[i];
            let (phost, pport) = &c.endpoints[c.primary_index()];
            let inner = RedisClient::new(&n.name, host, phost, &c.opts)
                .ports(*port, *pport)
                .sentinels(c.sentinels_for(i, host))
                .namespace(&c.ns);
            Ok(Box::new(Typed::new("redis", c.vocabulary, inner)?) as Box<dyn Client>)
        })
    }

    /// redis-server is a C program linked against glibc: libfaketime reaches it when it runs
    /// under it (the `faketime` option).
    fn clock(c: &RedisCluster) -> Clock {
        Clock::under_faketime(c.faketime)
    }

    fn as_primaries(c: &RedisCluster) -> Option<&dyn Primaries> {
        Some(c)
    }

    fn as_attach(c: &RedisCluster) -> Option<&dyn Attach> {
        Some(c)
    }
}

impl Primaries for RedisCluster {
    fn primaries(&self) -> Result<Vec<String>> {
        Ok(self.leaders().unwrap_or_default())
    }
}

impl RedisCluster {
    /// The index of the node writes go to.
    pub fn primary_index(&self) -> usize {
        self.primary
            .load(Ordering::Relaxed)
            .min(self.nodes.len().saturating_sub(1))
    }

    /// The run's namespace.
    pub fn namespace(&self) -> &str {
        &self.ns
    }

    /// Starts node `i`'s Sentinel (`redis-server <sentinel.conf> --sentinel`) unless its pid
    /// file names a live process. Faults aim at the database, not at Sentinel: kills and pauses
    /// leave it running, partitions cut it off with its node.
    pub fn start_sentinel(&self, i: usize) -> Result<()> {
        let node = &self.nodes[i];
        let dir = self.opts.sentinel_dir_on(node);
        self.make_dir(i, &dir)?;
        let d = Daemon {
            name: "redis-sentinel".into(),
            argv: vec![
                self.opts.binary.clone(),
                self.opts.sentinel_conf_on(node),
                "--sentinel".into(),
            ],
            env: self.env(&node.workdir),
            cwd: dir,
            pidfile: self.opts.sentinel_pid_on(node),
            logfile: self.opts.sentinel_log_on(node),
        };
        self.start_daemon(i, &d)
    }

    /// A probe connection to node `i`.
    pub fn conn(&self, i: usize, timeout: Duration) -> Result<SyncConn, String> {
        let (host, port) = &self.endpoints[i];
        SyncConn::connect(host, *port, timeout).map_err(|e| e.to_string())
    }

    /// `INFO replication` of node `i`.
    pub fn replication(&self, i: usize, timeout: Duration) -> Result<Replication, String> {
        let mut c = self.conn(i, timeout)?;
        match c.call(&["INFO", "replication"]) {
            Ok(Reply::Bulk(b)) => Ok(parse_replication(&String::from_utf8_lossy(&b))),
            Ok(other) => Err(format!("INFO answered {other:?}")),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Why node `i` is not ready yet (None: it answers PING, and as a replica its link to the
    /// primary is up).
    fn not_ready(&self, i: usize) -> Option<String> {
        let t = Duration::from_secs(2);
        let mut c = match self.conn(i, t) {
            Ok(c) => c,
            Err(e) => return Some(e),
        };
        match c.call(&["PING"]) {
            Ok(Reply::Simple(s)) if s == "PONG" => {}
            Ok(other) => return Some(format!("PING answered {other:?}")),
            Err(e) => return Some(format!("PING: {e}")),
        }
        let rep = match c.call(&["INFO", "replication"]) {
            Ok(Reply::Bulk(b)) => parse_replication(&String::from_utf8_lossy(&b)),
            Ok(other) => return Some(format!("INFO answered {other:?}")),
            Err(e) => return Some(format!("INFO: {e}")),
        };
        let want = if i == 0 { "master" } else { "slave" };
        if rep.role != want {
            return Some(format!("role is {:?}, expected {want}", rep.role));
        }
        if i > 0 && rep.link.as_deref() != Some("up") {
            return Some(format!(
                "master_link_status is {}",
                rep.link.as_deref().unwrap_or("missing")
            ));
        }
        None
    }

    /// What Sentinel `i` (of [`RedisLifecycle::sentinels`]; installed: node `i`'s) says
    /// about the primary: `SENTINEL MASTER <name>` as field/value pairs.
    pub fn sentinel_master(
        &self,
        i: usize,
        timeout: Duration,
    ) -> Result<Vec<(String, String)>, String> {
        let (host, port) = self
            .sentinels
            .get(i)
            .ok_or_else(|| format!("no Sentinel {i} ({} known)", self.sentinels.len()))?;
        let mut c = SyncConn::connect(host, *port, timeout).map_err(|e| e.to_string())?;
        match c.call(&["SENTINEL", "MASTER", self.opts.master_name.as_str()]) {
            Ok(Reply::Array(items)) => {
                let text: Vec<String> = items
                    .into_iter()
                    .map(|r| match r {
                        Reply::Bulk(b) => String::from_utf8_lossy(&b).into_owned(),
                        Reply::Simple(s) => s,
                        Reply::Int(n) => n.to_string(),
                        other => format!("{other:?}"),
                    })
                    .collect();
                Ok(text
                    .chunks(2)
                    .filter(|p| p.len() == 2)
                    .map(|p| (p[0].clone(), p[1].clone()))
                    .collect())
            }
            Ok(Reply::Error(e)) => Err(e),
            Ok(other) => Err(format!("SENTINEL MASTER answered {other:?}")),
            Err(e) => Err(e.to_string()),
        }
    }

    /// The index of the node whose address Sentinel `i` gives for the primary.
    pub fn sentinel_primary_index(&self, i: usize, timeout: Duration) -> Result<usize, String> {
        let m = self.sentinel_master(i, timeout)?;
        let get = |k: &str| m.iter().find(|(f, _)| f == k).map(|(_, v)| v.clone());
        let ip = get("ip").ok_or("no ip in SENTINEL MASTER")?;
        let port: Option<u16> = get("port").and_then(|p| p.parse().ok());
        self.node_at(&ip, port)
            .ok_or_else(|| format!("Sentinel names {ip}, which is none of the nodes"))
    }

    /// The node whose client endpoint is `ip:port` (or, failing that, whose address is `ip`).
    pub fn node_at(&self, ip: &str, port: Option<u16>) -> Option<usize> {
        self.endpoints
            .iter()
            .position(|(h, p)| h == ip && port.is_none_or(|port| port == *p))
            .or_else(|| self.nodes.iter().position(|n| n.host == ip))
    }

    /// The node whose address Sentinel `i` gives for the primary.
    pub fn sentinel_primary(&self, i: usize, timeout: Duration) -> Result<String, String> {
        self.sentinel_primary_index(i, timeout)
            .map(|p| self.nodes[p].name.clone())
    }

    /// Waits until every Sentinel watches n1 and knows every replica and every other
    /// Sentinel (so that a majority can agree on a failover); a Sentinel whose process is gone
    /// ends the wait at once.
    pub fn wait_sentinels(&self, timeout: Duration) -> Result<()> {
        let n = self.nodes.len();
        let pid_file = |i: usize| self.opts.sentinel_pid_on(&self.nodes[i]);
        let log = |i: usize| self.opts.sentinel_log_on(&self.nodes[i]);
        let watch = Watch {
            what: "redis-sentinel",
            nodes: self.db_nodes(),
            pid_file: &pid_file,
            log: &log,
        };
        self.wait_until(timeout, Some(watch), || {
            self.first_problem(|i| {
                let m = match self.sentinel_master(i, Duration::from_secs(2)) {
                    Ok(m) => m,
                    Err(e) => return Some(e),
                };
                let get = |k: &str| m.iter().find(|(f, _)| f == k).map(|(_, v)| v.as_str());
                let want = (n - 1).to_string();
                if get("ip") != Some(self.nodes[0].host.as_str()) {
                    return Some(format!("watches {:?}, not n1", get("ip")));
                }
                if get("num-slaves") != Some(want.as_str())
                    || get("num-other-sentinels") != Some(want.as_str())
                {
                    return Some(format!(
                        "knows {:?} replicas and {:?} other Sentinels, not {want} of each",
                        get("num-slaves"),
                        get("num-other-sentinels")
                    ));
                }
                None
            })
        })
    }

    /// With Sentinel: the nodes the Sentinels that answer name as the primary (two, while a
    /// partition splits them); None when none answered.
    pub fn sentinel_primaries(&self) -> Option<Vec<String>> {
        let said = crate::control::fan_out(&self.sentinels, |i, _| {
            self.sentinel_primary(i, Duration::from_secs(1))
        });
        if said.iter().all(Result::is_err) {
            return None;
        }
        let mut out: Vec<String> = said.into_iter().filter_map(Result::ok).collect();
        out.sort();
        out.dedup();
        Some(out)
    }

    /// The nodes whose `INFO replication` says `role:master` (with a static primary, n1 while
    /// it answers); None when no node answered.
    pub fn leaders(&self) -> Option<Vec<String>> {
        if self.opts.sentinel() {
            return self.sentinel_primaries();
        }
        let reps = self.each(|i| self.replication(i, Duration::from_secs(1)));
        self.leading(&reps, |r| r.role == "master")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::opts::Preset;

    #[test]
    fn faketime_env_preloads_glibc_malloc_before_libfaketime() {
        let env = faketime_env("/w/n1");
        let pre = &env.iter().find(|(k, _)| k == "LD_PRELOAD").unwrap().1;
        assert_eq!(
            pre,
            &format!("{GLIBC_MALLOC}:{}", crate::control::faketime::LIBFAKETIME)
        );
        assert!(env
            .iter()
            .any(|(k, v)| k == "FAKETIME_TIMESTAMP_FILE" && v == "/w/n1/faketime.rc"));
    }

    #[test]
    fn a_client_asks_the_sentinel_on_its_own_host_first_then_the_others_in_turn() {
        let o = RedisOpts::preset().unwrap();
        let s = |h: &str| (h.to_string(), 26379);
        let l = RedisLifecycle::new(o, false, Vec::new(), Vocabulary::Set, String::new())
            .sentinels(vec![s("a"), s("b"), s("c")]);
        assert_eq!(l.sentinels_for(0, "b"), vec![s("b"), s("c"), s("a")]);
        // No Sentinel on its host: start at the node's index.
        assert_eq!(l.sentinels_for(2, "x"), vec![s("c"), s("a"), s("b")]);
        assert_eq!(l.sentinels_for(4, "x"), vec![s("b"), s("c"), s("a")]);
        let none = RedisLifecycle::new(
            RedisOpts::preset().unwrap(),
            false,
            Vec::new(),
            Vocabulary::Set,
            String::new(),
        );
        assert!(none.sentinels_for(0, "a").is_empty());
    }

    #[test]
    fn replication_info_gives_role_and_link() {
        let r = parse_replication(
            "# Replication\r\nrole:slave\r\nmaster_host:10.0.0.1\r\nmaster_link_status:down\r\n",
        );
        assert_eq!(r.role, "slave");
        assert_eq!(r.link.as_deref(), Some("down"));
        let p = parse_replication("# Replication\r\nrole:master\r\nconnected_slaves:2\r\n");
        assert_eq!(p.role, "master");
        assert_eq!(p.link, None);
    }
}

//! The Redis deployment's life on the nodes: install Debian's redis-server, write each node's
//! `redis.conf` (n1 the primary, every other node `replicaof n1`), start it (under libfaketime
//! where clock faults need that), wait until every node answers and every replica's link to
//! the primary is up, and stop, kill, restart, pause and resume nodes — always by the node's own
//! pid file, never by process name (local nodes share one process table).
//!
//! Commands go through the node utilities of [`crate::control::util`]; probes (PING, INFO) are
//! blocking RESP exchanges from the control node ([`super::resp::SyncConn`]), since the
//! [`crate::db::Db`] calls that use them are blocking.

use super::config::{redis_conf, sentinel_conf, RedisOpts};
use super::resp::{info_fields, Reply, SyncConn};
use crate::control::util::{self, Daemon, Signal};
use crate::control::{Cmd, Node, Remote};
use anyhow::{anyhow, Context, Result};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::db::daemon;

/// Runs `f` for every node in parallel, returning results in node order.
fn on_each<T: Send>(
    remotes: &[Arc<dyn Remote>],
    f: impl Fn(usize, &dyn Remote) -> T + Sync,
) -> Vec<T> {
    crate::control::fan_out(remotes, |i, r| f(i, r.as_ref()))
}

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

fn all_ok(results: Vec<Result<()>>) -> Result<()> {
    results.into_iter().collect::<Result<Vec<()>>>().map(|_| ())
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

/// Redis on a set of nodes: node 0 the primary, the others its replicas.
pub struct RedisCluster {
    pub nodes: Vec<Node>,
    /// Empty when there is no SSH to the nodes (a deployed Redis, clients only).
    pub remotes: Vec<Arc<dyn Remote>>,
    pub opts: RedisOpts,
    /// Whether redis-server runs under libfaketime (resolved from `faketime=auto|on|off`).
    pub faketime: bool,
    /// Where each node's server listens for clients (default: its address and `port`).
    pub endpoints: Vec<(String, u16)>,
}

impl RedisCluster {
    /// Redis on `nodes` (reached through `remotes`, same order).
    pub fn new(
        nodes: Vec<Node>,
        remotes: Vec<Arc<dyn Remote>>,
        opts: RedisOpts,
        faketime: bool,
    ) -> Result<Self> {
        if nodes.is_empty() {
            return Err(crate::error::bad_input(
                "the redis target needs nodes (give --nodes, --cluster, or run as root for a \
                 local cluster)",
            ));
        }
        if nodes.len() != remotes.len() && !remotes.is_empty() {
            return Err(anyhow!(
                "redis: {} nodes but {} remotes",
                nodes.len(),
                remotes.len()
            ));
        }
        let endpoints = nodes.iter().map(|n| (n.host.clone(), opts.port)).collect();
        Ok(RedisCluster {
            nodes,
            remotes,
            opts,
            faketime,
            endpoints,
        })
    }

    /// The same deployment with each node's client endpoint given (one per node).
    pub fn with_endpoints(mut self, endpoints: Vec<(String, u16)>) -> Self {
        if endpoints.len() == self.nodes.len() {
            self.endpoints = endpoints;
        }
        self
    }

    /// Installs redis-server (and libfaketime when used) on node `i`; idempotent, apt runs
    /// once per host under the node utilities' lock.
    pub fn install(&self, i: usize) -> Result<()> {
        let mut pkgs: Vec<&str> = self.opts.packages.iter().map(String::as_str).collect();
        if self.faketime {
            pkgs.push(FAKETIME_PACKAGE);
        }
        util::install_packages(self.remotes[i].as_ref(), &pkgs)
            .with_context(|| format!("installing redis on {}", self.nodes[i].name))?;
        Ok(())
    }

    /// Writes node `i`'s redis.conf.
    pub fn configure(&self, i: usize) -> Result<()> {
        let node = &self.nodes[i];
        let text = redis_conf(i, &self.nodes, &self.opts)
            .map_err(|e| anyhow!("rendering redis.conf for {}: {e}", node.name))?;
        util::write_file(
            self.remotes[i].as_ref(),
            &self.opts.conf_on(node),
            text.as_bytes(),
        )
        .with_context(|| format!("writing redis.conf on {}", node.name))?;
        if self.opts.sentinel() {
            let text = sentinel_conf(i, &self.nodes, &self.opts)
                .map_err(|e| anyhow!("rendering sentinel.conf for {}: {e}", node.name))?;
            util::write_file(
                self.remotes[i].as_ref(),
                &self.opts.sentinel_conf_on(node),
                text.as_bytes(),
            )
            .with_context(|| format!("writing sentinel.conf on {}", node.name))?;
        }
        Ok(())
    }

    /// Stops node `i` (if running) and removes its data and pid file (and its log unless
    /// `keep_log`).
    pub fn wipe(&self, i: usize, keep_log: bool) -> Result<()> {
        let r = self.remotes[i].as_ref();
        let node = &self.nodes[i];
        // Sentinel first (whether or not this run uses one: an earlier run may have), so it
        // does not see the primary go and fail over.
        util::stop_daemon(r, &self.opts.sentinel_pid_on(node), Duration::from_secs(5))
            .with_context(|| format!("stopping redis-sentinel on {}", node.name))?;
        util::stop_daemon(r, &self.opts.pid_on(node), Duration::from_secs(5))
            .with_context(|| format!("stopping redis on {}", node.name))?;
        let mut rm = Cmd::new("rm")
            .args(["-rf", "--", &self.opts.data_dir_on(node)])
            .arg(self.opts.pid_on(node))
            .arg(self.opts.sentinel_pid_on(node))
            .arg(self.opts.sentinel_conf_on(node))
            .sudo();
        if !keep_log {
            rm = rm
                .arg(self.opts.log_on(node))
                .arg(self.opts.sentinel_log_on(node));
        }
        r.exec_ok(&rm)
            .with_context(|| format!("wiping redis's data on {}", node.name))?;
        Ok(())
    }

    /// Starts node `i` from its redis.conf unless its pid file names a live process. Over an
    /// existing data directory it loads its append-only file.
    pub fn start_node(&self, i: usize) -> Result<()> {
        let r = self.remotes[i].as_ref();
        let node = &self.nodes[i];
        let data = self.opts.data_dir_on(node);
        r.exec_ok(&Cmd::new("mkdir").args(["-p", "--", &data]).sudo())
            .with_context(|| format!("creating {data} on {}", node.name))?;
        let d = Daemon {
            name: "redis-server".into(),
            argv: vec![self.opts.binary.clone(), self.opts.conf_on(node)],
            env: if self.faketime {
                faketime_env(&node.workdir)
            } else {
                Vec::new()
            },
            cwd: self.opts.dir_on(node),
            pidfile: self.opts.pid_on(node),
            logfile: self.opts.log_on(node),
        };
        util::start_daemon(r, &d).with_context(|| format!("starting redis on {}", node.name))?;
        Ok(())
    }

    /// Starts node `i`'s Sentinel (`redis-server <sentinel.conf> --sentinel`) unless its pid
    /// file names a live process. Faults aim at the database, not at Sentinel: kills and pauses
    /// leave it running, partitions cut it off with its node.
    pub fn start_sentinel(&self, i: usize) -> Result<()> {
        let r = self.remotes[i].as_ref();
        let node = &self.nodes[i];
        let dir = self.opts.sentinel_dir_on(node);
        r.exec_ok(&Cmd::new("mkdir").args(["-p", "--", &dir]).sudo())
            .with_context(|| format!("creating {dir} on {}", node.name))?;
        let d = Daemon {
            name: "redis-sentinel".into(),
            argv: vec![
                self.opts.binary.clone(),
                self.opts.sentinel_conf_on(node),
                "--sentinel".into(),
            ],
            env: if self.faketime {
                faketime_env(&node.workdir)
            } else {
                Vec::new()
            },
            cwd: dir,
            pidfile: self.opts.sentinel_pid_on(node),
            logfile: self.opts.sentinel_log_on(node),
        };
        util::start_daemon(r, &d)
            .with_context(|| format!("starting redis-sentinel on {}", node.name))?;
        Ok(())
    }

    /// The pid of node `i`'s redis-server, if its pid file names a live process.
    pub fn pid(&self, i: usize) -> Result<Option<u32>> {
        Ok(util::daemon_pid(
            self.remotes[i].as_ref(),
            &self.opts.pid_on(&self.nodes[i]),
        )?)
    }

    /// SIGKILLs node `i` and waits until the process is gone (see [`daemon::kill`]).
    pub fn kill_node(&self, i: usize) -> Result<()> {
        daemon::kill(
            self.remotes[i].as_ref(),
            &self.opts.pid_on(&self.nodes[i]),
            "redis",
        )
    }

    /// Sends `sig` to node `i` by pid file; false when no process was running.
    pub fn signal_node(&self, i: usize, sig: Signal) -> Result<bool> {
        let node = &self.nodes[i];
        util::signal_daemon(self.remotes[i].as_ref(), &self.opts.pid_on(node), sig)
            .with_context(|| format!("sending SIG{} to redis on {}", sig.name(), node.name))
    }

    /// The last lines of node `i`'s log, for error messages.
    pub fn log_tail(&self, i: usize, lines: usize) -> String {
        daemon::log_tail(
            self.remotes[i].as_ref(),
            &self.opts.log_on(&self.nodes[i]),
            lines,
        )
    }

    /// Installs on every node, wipes what an earlier run left, writes every config, starts
    /// every node and waits until they serve.
    pub fn setup(&self) -> Result<()> {
        all_ok(on_each(&self.remotes, |i, _| self.install(i)))?;
        all_ok(on_each(&self.remotes, |i, _| self.wipe(i, false)))?;
        all_ok(on_each(&self.remotes, |i, _| self.configure(i)))?;
        all_ok(on_each(&self.remotes, |i, _| self.start_node(i)))?;
        self.wait_ready(self.opts.start_timeout)?;
        if self.opts.sentinel() {
            all_ok(on_each(&self.remotes, |i, _| self.start_sentinel(i)))?;
            self.wait_sentinels(self.opts.start_timeout)?;
        }
        Ok(())
    }

    /// Stops every node and removes its data (the log stays, for snarfing).
    pub fn teardown(&self) -> Result<()> {
        all_ok(on_each(&self.remotes, |i, _| self.wipe(i, true)))
    }

    /// A probe connection to node `i`.
    pub fn probe(&self, i: usize, timeout: Duration) -> Result<SyncConn, String> {
        let (host, port) = &self.endpoints[i];
        SyncConn::connect(host, *port, timeout).map_err(|e| e.to_string())
    }

    /// `INFO replication` of node `i`.
    pub fn replication(&self, i: usize, timeout: Duration) -> Result<Replication, String> {
        let mut c = self.probe(i, timeout)?;
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
        let mut c = match self.probe(i, t) {
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

    /// Waits until every node answers PING and every replica reports `master_link_status:up`.
    /// On timeout, or at once when a node's process is not running, the error names the node
    /// and quotes the end of its log.
    pub fn wait_ready(&self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let problems = on_each(&self.remotes, |i, _| self.not_ready(i));
            let Some((i, why)) = problems
                .into_iter()
                .enumerate()
                .find_map(|(i, p)| p.map(|p| (i, p)))
            else {
                return Ok(());
            };
            // A dead process is reported at once; a replica waiting for a dead primary names
            // the primary.
            let dead = (0..self.nodes.len()).find(|&d| matches!(self.pid(d), Ok(None)));
            let late = Instant::now() >= deadline;
            if dead.is_some() || late {
                let (n, headline) = match dead {
                    Some(d) => (d, format!("redis on {} is not running", self.nodes[d].name)),
                    None => (
                        i,
                        format!(
                            "redis on {} did not become ready within {:.0}s",
                            self.nodes[i].name,
                            timeout.as_secs_f64()
                        ),
                    ),
                };
                let why = if n == i {
                    why
                } else {
                    format!("{why} (seen on {})", self.nodes[i].name)
                };
                return Err(anyhow!(
                    "{headline}: {why}; the end of {} says: {}",
                    self.opts.log_on(&self.nodes[n]),
                    self.log_tail(n, 3)
                ));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// What node `i`'s Sentinel says about the primary: `SENTINEL MASTER <name>` as
    /// field/value pairs.
    pub fn sentinel_master(
        &self,
        i: usize,
        timeout: Duration,
    ) -> Result<Vec<(String, String)>, String> {
        let mut c = SyncConn::connect(&self.nodes[i].host, self.opts.sentinel.port, timeout)
            .map_err(|e| e.to_string())?;
        match c.call(&[
            "SENTINEL",
            "MASTER",
            self.opts.sentinel.master_name.as_str(),
        ]) {
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

    /// The node whose address node `i`'s Sentinel gives for the primary.
    pub fn sentinel_primary(&self, i: usize, timeout: Duration) -> Result<String, String> {
        let m = self.sentinel_master(i, timeout)?;
        let ip = m
            .iter()
            .find(|(k, _)| k == "ip")
            .map(|(_, v)| v.clone())
            .ok_or("no ip in SENTINEL MASTER")?;
        self.nodes
            .iter()
            .find(|n| n.host == ip)
            .map(|n| n.name.clone())
            .ok_or_else(|| format!("Sentinel names {ip}, which is none of the nodes"))
    }

    /// Waits until every Sentinel watches n1 and knows every replica and every other
    /// Sentinel (so that a majority can agree on a failover).
    pub fn wait_sentinels(&self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        let n = self.nodes.len();
        loop {
            let problems = on_each(&self.remotes, |i, _| {
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
            });
            let Some((i, why)) = problems
                .into_iter()
                .enumerate()
                .find_map(|(i, p)| p.map(|p| (i, p)))
            else {
                return Ok(());
            };
            let dead = matches!(
                util::daemon_pid(
                    self.remotes[i].as_ref(),
                    &self.opts.sentinel_pid_on(&self.nodes[i])
                ),
                Ok(None)
            );
            if dead || Instant::now() >= deadline {
                return Err(anyhow!(
                    "redis-sentinel on {} {}: {why}; the end of {} says: {}",
                    self.nodes[i].name,
                    if dead {
                        "is not running".to_string()
                    } else {
                        format!("was not ready within {:.0}s", timeout.as_secs_f64())
                    },
                    self.opts.sentinel_log_on(&self.nodes[i]),
                    daemon::log_tail(
                        self.remotes[i].as_ref(),
                        &self.opts.sentinel_log_on(&self.nodes[i]),
                        3
                    )
                ));
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// With Sentinel: the nodes the Sentinels that answer name as the primary (two, while a
    /// partition splits them); None when none answered.
    pub fn sentinel_primaries(&self) -> Option<Vec<String>> {
        let said = on_each(&self.remotes, |i, _| {
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
    pub fn primaries(&self) -> Option<Vec<String>> {
        if self.opts.sentinel() {
            return self.sentinel_primaries();
        }
        let reps = on_each(&self.remotes, |i, _| {
            self.replication(i, Duration::from_secs(1))
        });
        if reps.iter().all(Result::is_err) {
            return None;
        }
        Some(
            reps.iter()
                .zip(&self.nodes)
                .filter_map(|(r, n)| match r {
                    Ok(r) if r.role == "master" => Some(n.name.clone()),
                    _ => None,
                })
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

//! The one wrapper every database netsplit deploys on nodes runs in: [`Cluster`], generic over
//! a [`NodeLifecycle`] that says what the database does on one node.
//!
//! A database describes itself node by node: how it is installed, configured, wiped and
//! started on node `i`, its pid file and log files there, and when the whole deployment
//! serves ([`NodeLifecycle::not_serving`]); plus its clients and, optionally, its leaders
//! ([`Primaries`]) and how it tests a database it did not deploy ([`Attach`]). Everything
//! else is the wrapper's, the same for every database:
//!
//! - **fan-out**: each step runs on every node in parallel, with a bounded number of threads
//!   ([`crate::control::fan_out`]), and the first error (naming its node) wins;
//! - **index checks**: every per-node call with a node index out of range is an error naming
//!   the database, never a panic;
//! - **wait until serving, with a deadline** ([`Cluster::wait_serving`], [`Cluster::wait_until`]):
//!   a node that does not serve yet while its process lives is waited for until the deadline
//!   (a server that refuses connections while it loads its data is starting, not dead); a
//!   node whose process is gone is reported at once. Either error names the node and quotes
//!   the end of its log;
//! - **process control through pid files**: [`Kill`] (SIGKILL, graceful stop, start when not
//!   running) and [`Pause`] (SIGSTOP/SIGCONT) by the node's own pid file, never by process
//!   name (local nodes share one process table). A database whose process is a tree
//!   (PostgreSQL) overrides the signal steps, not the rules around them;
//! - **the abilities**: [`Db`], [`Kill`], [`Pause`] and [`LogFiles`] for every database, and
//!   [`Primaries`] and [`Attach`] where its lifecycle offers them.
//!
//! Nodes a database does not run on ([`NodeLifecycle::runs_on`], PostgreSQL with
//! `replicas=none`) are skipped by every step: nothing is installed or started there, nothing
//! is down there, and there is nothing to fetch.
//!
//! `deploy: existing` wraps a built database in [`super::existing::Attached`] instead of using
//! its setup and teardown; the waits it needs ([`Attach::attach`]) are this wrapper's
//! [`Cluster::wait_until`] without a process to watch.

use super::{daemon, Attach, BoxFuture, Client, Clock, Db, Kill, LogFiles, Pause, Primaries};
use crate::control::util::{self, Signal};
use crate::control::{Cmd, Node, Remote};
use anyhow::{anyhow, Context, Result};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a graceful stop waits before SIGKILL.
pub const STOP_GRACE: Duration = Duration::from_secs(10);

/// How long a wipe's stop waits before SIGKILL (what it stops is thrown away).
pub const WIPE_GRACE: Duration = Duration::from_secs(5);

/// How often a wait probes again.
const POLL: Duration = Duration::from_millis(200);

/// Where a database keeps its files on one node ([`NodeLifecycle::files`]): absolute paths
/// on the node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeFiles {
    /// The pid file: how the wrapper finds, signals, kills and pauses the process.
    pub pid_file: String,
    /// The log whose end an error quotes.
    pub log_file: String,
    /// The data directory, if the database has one (needed for disk faults).
    pub data_dir: Option<String>,
}

impl NodeFiles {
    /// The files `pid_file`, `log_file` and the data directory `data_dir`.
    pub fn new(pid_file: String, log_file: String, data_dir: Option<String>) -> NodeFiles {
        NodeFiles {
            pid_file,
            log_file,
            data_dir,
        }
    }
}

/// What a database does on one node, and when the deployment serves. Every function gets the
/// [`Cluster`] (its nodes, remotes and, through `Deref`, the database's own settings) and,
/// where it acts on one node, that node's index; the wrapper has checked the index.
pub trait NodeLifecycle: Sized + Send + Sync + 'static {
    /// What the database is called in messages and as a target (`etcd`).
    const NAME: &'static str;

    /// Whether node `i` runs the database (default: every node does).
    fn runs_on(_c: &Cluster<Self>, _i: usize) -> bool {
        true
    }
    /// Installs the database's software on node `i` (idempotent).
    fn install(c: &Cluster<Self>, i: usize) -> Result<()>;
    /// Where the database keeps its files on node `i`: its pid file, the log whose end an
    /// error quotes, and its data directory if it has one (what the fault file system is
    /// mounted over with `disk=fuse`, `super::disk`; without one it cannot take disk faults).
    fn files(c: &Cluster<Self>, i: usize) -> NodeFiles;
    /// Writes node `i`'s configuration (default: none to write).
    fn configure(_c: &Cluster<Self>, _i: usize) -> Result<()> {
        Ok(())
    }
    /// Stops the database on node `i` if it runs and removes its data and pid file, and its
    /// logs unless `keep_log`. Default: SIGTERM by pid file (SIGKILL after [`WIPE_GRACE`],
    /// [`daemon::stop`]), then [`Cluster::remove_files`] with nothing more; a database with
    /// more processes or files stops those and names them.
    fn wipe(c: &Cluster<Self>, i: usize, keep_log: bool) -> Result<()> {
        let pid_file = Self::files(c, i).pid_file;
        daemon::stop(c.remote(i)?, &pid_file, Self::NAME, WIPE_GRACE)?;
        c.remove_files(i, keep_log, &[], &[])
    }
    /// Starts the database on node `i` (the wrapper calls it when the pid file names no live
    /// process, at setup and to start a killed node again).
    fn start(c: &Cluster<Self>, i: usize) -> Result<()>;
    /// What to fetch from node `i` after a run (default: the log).
    fn log_files(c: &Cluster<Self>, i: usize) -> Vec<String> {
        vec![Self::files(c, i).log_file]
    }
    /// Why the deployment does not serve yet: the node that keeps it from serving and why;
    /// None when it serves. [`Cluster::first_problem`] probes every node in parallel.
    fn not_serving(c: &Cluster<Self>) -> Option<(usize, String)>;
    /// How long setup waits for the deployment to serve.
    fn start_timeout(c: &Cluster<Self>) -> Duration;
    /// Setup: by default [`Cluster::deploy`] (install, wipe, configure and start on every
    /// node, then wait until it serves). A database with more to do calls it and goes on.
    fn setup(c: &Cluster<Self>) -> Result<()> {
        c.deploy()
    }

    /// A client for a worker bound to node `i` (the workload's vocabulary).
    fn client(c: &Cluster<Self>, i: usize) -> BoxFuture<'_, Result<Box<dyn Client>>>;
    /// Whether clock faults reach its processes (default: they do not).
    fn clock(_c: &Cluster<Self>) -> Clock {
        Clock::IgnoresFaketime
    }
    /// Which nodes lead, if the database can tell (implement [`Primaries`] for
    /// `Cluster<Self>` and return it).
    fn as_primaries(_c: &Cluster<Self>) -> Option<&dyn Primaries> {
        None
    }
    /// Testing a deployed database (`deploy: existing`), if it can (implement [`Attach`] for
    /// `Cluster<Self>` and return it).
    fn as_attach(_c: &Cluster<Self>) -> Option<&dyn Attach> {
        None
    }

    /// SIGKILLs the database on node `i` and waits until it is gone (default: the process of
    /// the pid file, [`daemon::kill`]).
    fn kill(c: &Cluster<Self>, i: usize) -> Result<()> {
        daemon::kill(c.remote(i)?, &Self::files(c, i).pid_file, Self::NAME)
    }
    /// Stops it gracefully, SIGKILL after `grace` (default: SIGTERM, [`daemon::stop`]).
    fn stop(c: &Cluster<Self>, i: usize, grace: Duration) -> Result<()> {
        daemon::stop(c.remote(i)?, &Self::files(c, i).pid_file, Self::NAME, grace)
    }
    /// SIGSTOPs it; an error when nothing runs (default: [`daemon::pause`]).
    fn pause(c: &Cluster<Self>, i: usize) -> Result<()> {
        daemon::pause(c.remote(i)?, &Self::files(c, i).pid_file, Self::NAME)
    }
    /// SIGCONTs it; nothing running is nothing paused (default: [`daemon::resume`]).
    fn resume(c: &Cluster<Self>, i: usize) -> Result<()> {
        daemon::resume(c.remote(i)?, &Self::files(c, i).pid_file, Self::NAME)
    }
    /// The pids of its live processes on node `i` (default: the pid file's, [`daemon::pids`]).
    fn pids(c: &Cluster<Self>, i: usize) -> Result<Vec<u32>> {
        daemon::pids(c.remote(i)?, &Self::files(c, i).pid_file)
    }
}

/// A process a wait watches on some nodes: while it lives there, a node that does not serve
/// is starting; once it is gone, the wait ends at once with the end of its log.
pub struct Watch<'a> {
    /// What it is called in messages (`redis-sentinel`).
    pub what: &'a str,
    /// The nodes whose process must live.
    pub nodes: Vec<usize>,
    /// Its pid file on node `i`.
    pub pid_file: &'a (dyn Fn(usize) -> String + Sync),
    /// Its log on node `i`.
    pub log: &'a (dyn Fn(usize) -> String + Sync),
}

/// A database deployed on a set of nodes by its [`NodeLifecycle`] `L`: the nodes, how to reach
/// them, and the database's own settings (`L`, reachable through `Deref`). See the module
/// docs for what it owns.
pub struct Cluster<L: NodeLifecycle> {
    /// The nodes it runs on.
    pub nodes: Vec<Node>,
    /// `remotes[i]` reaches `nodes[i]`; empty when there is no SSH to the nodes (a deployed
    /// database, clients only).
    pub remotes: Vec<Arc<dyn Remote>>,
    /// The database's own settings and state.
    pub db: L,
    /// The data directories are on the fault file system (`disk=fuse`).
    pub disk: Option<DiskSpec>,
}

/// How the fault file system is run (`disk=fuse`, `super::disk`).
#[derive(Debug, Clone, Copy)]
pub struct DiskSpec {
    /// The nodes are local namespace nodes: the running binary serves it.
    pub local: bool,
    /// The seed of its choices (which reads are corrupted, where a write tears).
    pub seed: u64,
}

impl<L: NodeLifecycle> std::ops::Deref for Cluster<L> {
    type Target = L;
    fn deref(&self) -> &L {
        &self.db
    }
}

impl<L: NodeLifecycle> Cluster<L> {
    /// The database `db` on `nodes` (reached through `remotes`, same order, or none).
    pub fn new(nodes: Vec<Node>, remotes: Vec<Arc<dyn Remote>>, db: L) -> Result<Self> {
        if nodes.is_empty() {
            return Err(crate::error::bad_input(format!(
                "the {} target needs nodes (give --nodes, --cluster, or run as root for a \
                 local cluster)",
                L::NAME
            )));
        }
        if nodes.len() != remotes.len() && !remotes.is_empty() {
            return Err(anyhow!(
                "{}: {} nodes but {} remotes",
                L::NAME,
                nodes.len(),
                remotes.len()
            ));
        }
        Ok(Cluster {
            nodes,
            remotes,
            db,
            disk: None,
        })
    }

    /// The database `db` on the run's nodes, with its data directories on the fault file
    /// system when the run asks for it (`disk_fs` of the run's deployment; its seed drives the
    /// faults). A database whose lifecycle names no data directory
    /// ([`NodeLifecycle::files`]) is refused then. What a database's `DbType::build` ends
    /// with.
    pub fn for_run(env: super::DbEnv, db: L) -> Result<Self> {
        let (deploy, seed) = (env.deploy, env.plan.seed);
        let mut c = Cluster::new(env.nodes, env.remotes, db)?;
        if deploy.disk_fs {
            if L::files(&c, 0).data_dir.is_none() {
                return Err(crate::error::bad_input(format!(
                    "target.opts.disk: {} cannot run on the fault file system (its lifecycle \
                     names no data directory)",
                    L::NAME
                )));
            }
            c.disk = Some(DiskSpec {
                local: deploy.shared_process_table,
                seed,
            });
        }
        Ok(c)
    }

    /// Mounts the fault file system over node `i`'s data directory (`disk=fuse`; nothing
    /// otherwise, or when it is mounted already).
    pub fn mount_disk(&self, i: usize) -> Result<()> {
        let (Some(spec), Some(dir)) = (self.disk, L::files(self, i).data_dir) else {
            return Ok(());
        };
        if !L::runs_on(self, i) {
            return Ok(());
        }
        let r = self.remote(i)?;
        let bin = super::disk::binary(r, spec.local)?;
        super::disk::mount(r, &dir, &bin, spec.seed ^ i as u64)
            .with_context(|| format!("{} on {}", L::NAME, self.nodes[i].name))
    }

    /// Unmounts a fault file system over node `i`'s data directory (this run's or one an
    /// earlier run left), killing the database on it first. Nothing when none is mounted.
    pub fn unmount_disk(&self, i: usize) -> Result<()> {
        let Some(dir) = L::files(self, i).data_dir else {
            return Ok(());
        };
        let r = self.remote(i)?;
        if !super::disk::mounted(r)?.contains(&dir) && !super::disk::running(r)? {
            return Ok(());
        }
        let _ = L::kill(self, i);
        super::disk::unmount(r, &dir, false)
    }

    /// Stops node `i`'s database and removes its data ([`NodeLifecycle::wipe`]), after
    /// unmounting any fault file system over it.
    pub fn wipe_node(&self, i: usize, keep_log: bool) -> Result<()> {
        self.unmount_disk(i)?;
        L::wipe(self, i, keep_log)
    }

    /// Makes directory `dir` (and its parents) on node `i`, as root; the error names it and
    /// the node.
    pub fn make_dir(&self, i: usize, dir: &str) -> Result<()> {
        self.remote(i)?
            .exec_ok(&Cmd::new("mkdir").args(["-p", "--", dir]).sudo())
            .with_context(|| format!("creating {dir} on {}", self.nodes[i].name))?;
        Ok(())
    }

    /// Starts `d` on node `i` (detached, its pid in `d.pidfile`; `control::util::start_daemon`);
    /// the error names the daemon and the node.
    pub fn start_daemon(&self, i: usize, d: &util::Daemon) -> Result<()> {
        util::start_daemon(self.remote(i)?, d)
            .with_context(|| format!("starting {} on {}", d.name, self.nodes[i].name))?;
        Ok(())
    }

    /// Removes node `i`'s files ([`NodeLifecycle::files`]) once its processes are stopped:
    /// the data directory, the pid file and `more`, and the log and `more_logs` unless
    /// `keep_log`.
    pub fn remove_files(
        &self,
        i: usize,
        keep_log: bool,
        more: &[String],
        more_logs: &[String],
    ) -> Result<()> {
        let files = L::files(self, i);
        let mut rm = Cmd::new("rm")
            .args(["-rf", "--"])
            .args(files.data_dir)
            .arg(files.pid_file)
            .args(more.iter().cloned())
            .sudo();
        if !keep_log {
            rm = rm.arg(files.log_file).args(more_logs.iter().cloned());
        }
        self.remote(i)?
            .exec_ok(&rm)
            .with_context(|| format!("wiping {}'s data on {}", L::NAME, self.nodes[i].name))?;
        Ok(())
    }

    /// `f` for node `i` when the database runs there, else `elsewhere` (a node that runs no
    /// database has nothing to kill, pause or start, and nothing is down there); an error when
    /// `i` is not one of the nodes.
    fn on_db_node<T>(&self, i: usize, elsewhere: T, f: impl FnOnce() -> Result<T>) -> Result<T> {
        self.check_index(i)?;
        if L::runs_on(self, i) {
            f()
        } else {
            Ok(elsewhere)
        }
    }

    /// An error unless `i` is one of the nodes.
    pub fn check_index(&self, i: usize) -> Result<()> {
        if i >= self.nodes.len() {
            return Err(anyhow!(
                "{}: node index {i} out of range ({} nodes)",
                L::NAME,
                self.nodes.len()
            ));
        }
        Ok(())
    }

    /// The remote of node `i` (an error when out of range or without SSH).
    pub fn remote(&self, i: usize) -> Result<&dyn Remote> {
        self.check_index(i)?;
        self.remotes
            .get(i)
            .map(|r| r.as_ref())
            .ok_or_else(|| anyhow!("{}: no SSH to {}", L::NAME, self.nodes[i].name))
    }

    /// The indexes of the nodes that run the database.
    pub fn db_nodes(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&i| L::runs_on(self, i))
            .collect()
    }

    /// Runs `f` for every node reached over SSH, in parallel (a bounded number of threads),
    /// returning results in node order.
    pub fn each<T: Send>(&self, f: impl Fn(usize) -> T + Sync) -> Vec<T> {
        crate::control::fan_out(&self.remotes, |i, _| f(i))
    }

    /// Runs `f` on every node that runs the database, in parallel; the first error wins.
    pub fn on_db_nodes(&self, f: impl Fn(usize) -> Result<()> + Sync) -> Result<()> {
        self.each(|i| if L::runs_on(self, i) { f(i) } else { Ok(()) })
            .into_iter()
            .collect()
    }

    /// The first node for which `f` (run on every node in parallel) says what is wrong.
    pub fn first_problem(
        &self,
        f: impl Fn(usize) -> Option<String> + Sync,
    ) -> Option<(usize, String)> {
        self.each(f)
            .into_iter()
            .enumerate()
            .find_map(|(i, p)| p.map(|p| (i, p)))
    }

    /// The names of the nodes whose answer says they lead (`leads`), from one answer per
    /// node in node order; None when no node answered.
    pub fn leading<T, E>(
        &self,
        answers: &[Result<T, E>],
        leads: impl Fn(&T) -> bool,
    ) -> Option<Vec<String>> {
        if answers.iter().all(Result::is_err) {
            return None;
        }
        Some(
            answers
                .iter()
                .zip(&self.nodes)
                .filter_map(|(a, n)| match a {
                    Ok(a) if leads(a) => Some(n.name.clone()),
                    _ => None,
                })
                .collect(),
        )
    }

    /// The standard setup: installs on every node, wipes what an earlier run left, writes
    /// every configuration, starts every node and waits until the deployment serves.
    pub fn deploy(&self) -> Result<()> {
        self.on_db_nodes(|i| L::install(self, i))?;
        self.on_db_nodes(|i| self.wipe_node(i, false))?;
        self.on_db_nodes(|i| L::configure(self, i))?;
        self.on_db_nodes(|i| self.mount_disk(i))?;
        self.on_db_nodes(|i| L::start(self, i))?;
        self.wait_serving(L::start_timeout(self))
    }

    /// The pid of the database on node `i`, if its pid file names a live process.
    pub fn pid(&self, i: usize) -> Result<Option<u32>> {
        Ok(util::daemon_pid(
            self.remote(i)?,
            &L::files(self, i).pid_file,
        )?)
    }

    /// Sends `sig` to the process of node `i`'s pid file; false when none was running.
    pub fn signal(&self, i: usize, sig: Signal) -> Result<bool> {
        util::signal_daemon(self.remote(i)?, &L::files(self, i).pid_file, sig).with_context(|| {
            format!(
                "sending SIG{} to {} on {}",
                sig.name(),
                L::NAME,
                self.nodes[i].name
            )
        })
    }

    /// The last `lines` lines of node `i`'s log, for error messages.
    pub fn log_tail(&self, i: usize, lines: usize) -> String {
        match self.remote(i) {
            Ok(r) => daemon::log_tail(r, &L::files(self, i).log_file, lines),
            Err(e) => format!("({e})"),
        }
    }

    /// Waits until the deployment serves ([`NodeLifecycle::not_serving`]), watching the
    /// database's process on every node that runs it (see [`Cluster::wait_until`]).
    pub fn wait_serving(&self, timeout: Duration) -> Result<()> {
        let pid_file = |i| L::files(self, i).pid_file;
        let log = |i| L::files(self, i).log_file;
        self.wait_until(
            timeout,
            Some(Watch {
                what: L::NAME,
                nodes: self.db_nodes(),
                pid_file: &pid_file,
                log: &log,
            }),
            || L::not_serving(self),
        )
    }

    /// Probes until `probe` finds nothing wrong (None), or `timeout`. With a `watch`, a
    /// watched process that is gone ends the wait at once, naming its node (and the node the
    /// probe stopped at, when another: a replica waiting for a dead primary names the
    /// primary); while the processes live, a node that does not serve yet — refusing
    /// connections, loading its data, electing — is waited for until the deadline. Either
    /// error quotes the end of the node's log. Without a watch (a database netsplit did not
    /// start), only the deadline ends it.
    pub fn wait_until(
        &self,
        timeout: Duration,
        watch: Option<Watch<'_>>,
        mut probe: impl FnMut() -> Option<(usize, String)>,
    ) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let Some((i, why)) = probe() else {
                return Ok(());
            };
            let late = Instant::now() >= deadline;
            let Some(w) = &watch else {
                if late {
                    return Err(anyhow!(
                        "{} on {} did not serve within {:.0}s: {why}",
                        L::NAME,
                        self.nodes[i].name,
                        timeout.as_secs_f64()
                    ));
                }
                std::thread::sleep(POLL);
                continue;
            };
            let gone = self.each(|d| {
                w.nodes.contains(&d) && matches!(self.gone(d, &(w.pid_file)(d)), Ok(true))
            });
            let dead = gone.iter().position(|&g| g);
            if dead.is_some() || late {
                let n = dead.unwrap_or(i);
                let node = &self.nodes[n].name;
                let headline = match dead {
                    Some(_) => format!("{} on {node} is not running", w.what),
                    None => format!(
                        "{} on {node} did not become ready within {:.0}s",
                        w.what,
                        timeout.as_secs_f64()
                    ),
                };
                let why = if n == i {
                    why
                } else {
                    format!("{why} (seen on {})", self.nodes[i].name)
                };
                let log = (w.log)(n);
                let tail = match self.remote(n) {
                    Ok(r) => daemon::log_tail(r, &log, 3),
                    Err(e) => format!("({e})"),
                };
                return Err(anyhow!("{headline}: {why}; the end of {log} says: {tail}"));
            }
            std::thread::sleep(POLL);
        }
    }

    /// Whether the process of a pid file on node `i` is gone: no pid file, or one naming no
    /// live process (a zombie counts as gone). An empty pid file is a process being started
    /// that writes its own pid over the launcher's (redis-server truncates it first): it
    /// lives.
    fn gone(&self, i: usize, pid_file: &str) -> Result<bool> {
        const GONE: &str = r#"[ -e "$1" ] || exit 3
p=$(cat "$1" 2>/dev/null); [ -n "$p" ] || exit 0
kill -0 "$p" 2>/dev/null || exit 3
[ "$(cut -d' ' -f3 "/proc/$p/stat" 2>/dev/null)" = Z ] && exit 3
exit 0"#;
        let o = self
            .remote(i)?
            .exec(&util::script(GONE, &[pid_file]).timeout(Duration::from_secs(30)))?;
        Ok(o.status == 3)
    }
}

impl<L: NodeLifecycle> Db for Cluster<L> {
    fn name(&self) -> &str {
        L::NAME
    }

    /// [`NodeLifecycle::setup`]; on the fault file system, what setup wrote is then synced
    /// (as a machine is after installing): a crash loses only what the run itself wrote
    /// unsynced, never the database's initial files (initdb runs with `--no-sync`).
    fn setup(&self) -> Result<()> {
        L::setup(self)?;
        if self.disk.is_some() {
            self.on_db_nodes(|i| {
                super::disk::ctl(self.remote(i)?, &serde_json::json!({"cmd": "sync"}))
                    .map(drop)
                    .with_context(|| format!("syncing {}'s setup", L::NAME))
            })?;
        }
        Ok(())
    }

    /// Stops every node, unmounts the fault file system, and removes its data (the logs
    /// stay, for fetching).
    fn teardown(&self) -> Result<()> {
        self.on_db_nodes(|i| self.wipe_node(i, true))
    }

    fn client(&self, node: Option<usize>) -> BoxFuture<'_, Result<Box<dyn Client>>> {
        Box::pin(async move {
            let i = node.ok_or_else(|| anyhow!("{} clients must be bound to a node", L::NAME))?;
            self.check_index(i)?;
            L::client(self, i).await
        })
    }

    fn as_kill(&self) -> Option<&dyn Kill> {
        Some(self)
    }
    fn as_pause(&self) -> Option<&dyn Pause> {
        Some(self)
    }
    fn as_primaries(&self) -> Option<&dyn Primaries> {
        L::as_primaries(self)
    }
    fn as_log_files(&self) -> Option<&dyn LogFiles> {
        Some(self)
    }
    fn as_attach(&self) -> Option<&dyn Attach> {
        L::as_attach(self)
    }
    fn clock(&self) -> Clock {
        L::clock(self)
    }
    fn data_dir(&self, i: usize) -> Option<String> {
        if i >= self.nodes.len() || !L::runs_on(self, i) {
            return None;
        }
        L::files(self, i).data_dir
    }
    fn disk_dir(&self, i: usize) -> Option<String> {
        self.disk?;
        if i >= self.nodes.len() || !L::runs_on(self, i) {
            return None;
        }
        L::files(self, i).data_dir
    }
}

/// On a node that runs no database there is nothing to kill or start, and nothing is down.
impl<L: NodeLifecycle> Kill for Cluster<L> {
    fn kill(&self, i: usize) -> Result<()> {
        self.on_db_node(i, (), || L::kill(self, i))
    }
    fn stop(&self, i: usize) -> Result<()> {
        self.on_db_node(i, (), || L::stop(self, i, STOP_GRACE))
    }
    fn start(&self, i: usize) -> Result<()> {
        if !self.running(i)? {
            self.mount_disk(i)?;
            L::start(self, i)?;
        }
        Ok(())
    }
    fn running(&self, i: usize) -> Result<bool> {
        self.on_db_node(i, true, || Ok(self.pid(i)?.is_some()))
    }
}

impl<L: NodeLifecycle> Pause for Cluster<L> {
    fn pause(&self, i: usize) -> Result<()> {
        self.on_db_node(i, (), || L::pause(self, i))
    }
    fn resume(&self, i: usize) -> Result<()> {
        self.on_db_node(i, (), || L::resume(self, i))
    }
    fn pids(&self, i: usize) -> Result<Vec<u32>> {
        self.on_db_node(i, Vec::new(), || L::pids(self, i))
    }
}

impl<L: NodeLifecycle> LogFiles for Cluster<L> {
    fn log_files(&self, i: usize) -> Vec<String> {
        if i < self.nodes.len() && L::runs_on(self, i) {
            L::log_files(self, i)
        } else {
            Vec::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::{Cmd, Output, RemoteError};
    use std::path::Path;

    /// Runs commands on this machine (the scripts here need no root).
    struct Local(Node);

    impl Remote for Local {
        fn node(&self) -> &Node {
            &self.0
        }
        fn exec(&self, cmd: &Cmd) -> Result<Output, RemoteError> {
            let o = std::process::Command::new(&cmd.argv[0])
                .args(&cmd.argv[1..])
                .output()
                .map_err(|e| RemoteError::Other {
                    node: self.0.name.clone(),
                    msg: e.to_string(),
                })?;
            Ok(Output {
                status: o.status.code().unwrap_or(-1),
                stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
            })
        }
        fn upload(&self, _: &Path, _: &str) -> Result<(), RemoteError> {
            unreachable!("no uploads here")
        }
        fn download(&self, _: &str, _: &Path) -> Result<(), RemoteError> {
            unreachable!("no downloads here")
        }
    }

    /// A database that never serves: it always refuses connections.
    struct Refusing {
        dir: std::path::PathBuf,
    }

    impl NodeLifecycle for Refusing {
        const NAME: &'static str = "refusing";
        fn install(_: &Cluster<Self>, _: usize) -> Result<()> {
            Ok(())
        }
        fn wipe(_: &Cluster<Self>, _: usize, _: bool) -> Result<()> {
            Ok(())
        }
        fn start(_: &Cluster<Self>, _: usize) -> Result<()> {
            Ok(())
        }
        fn files(c: &Cluster<Self>, _: usize) -> NodeFiles {
            let at = |f: &str| c.dir.join(f).display().to_string();
            NodeFiles::new(at("db.pid"), at("db.log"), None)
        }
        fn not_serving(_: &Cluster<Self>) -> Option<(usize, String)> {
            Some((0, "connect: Connection refused".into()))
        }
        fn start_timeout(_: &Cluster<Self>) -> Duration {
            Duration::from_secs(1)
        }
        fn client(_: &Cluster<Self>, _: usize) -> BoxFuture<'_, Result<Box<dyn Client>>> {
            Box::pin(async { Err(anyhow!("no clients")) })
        }
    }

    fn cluster(dir: &Path) -> Cluster<Refusing> {
        let node = Node {
            name: "n1".into(),
            host: "127.0.0.1".into(),
            ssh_port: 22,
            workdir: dir.display().to_string(),
        };
        let remote: Arc<dyn Remote> = Arc::new(Local(node.clone()));
        let db = Refusing {
            dir: dir.to_path_buf(),
        };
        Cluster::new(vec![node], vec![remote], db).unwrap()
    }

    #[test]
    fn refused_while_the_process_lives_is_waited_for_and_a_gone_process_is_dead_at_once() {
        let dir = std::env::temp_dir().join(format!("netsplit-cluster-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("db.log"), "loading the append-only file\n").unwrap();
        let c = cluster(&dir);
        let pid_file = dir.join("db.pid");
        let wait = |c: &Cluster<Refusing>| {
            let t = Instant::now();
            let e = c.wait_serving(Duration::from_millis(800)).unwrap_err();
            (e.to_string(), t.elapsed())
        };

        // A live process that refuses connections (it is still loading): waited for until
        // the deadline, and the error says so, with the end of its log.
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        std::fs::write(&pid_file, format!("{}\n", child.id())).unwrap();
        let (e, took) = wait(&c);
        assert!(took >= Duration::from_millis(800), "{took:?}: {e}");
        assert!(
            e.contains("refusing on n1 did not become ready within 1s"),
            "{e}"
        );
        assert!(
            e.contains("Connection refused") && e.contains("append-only"),
            "{e}"
        );

        // Its pid file being rewritten by the process itself (empty for a moment) is alive.
        std::fs::write(&pid_file, "").unwrap();
        let (e, took) = wait(&c);
        assert!(took >= Duration::from_millis(800), "{took:?}: {e}");
        assert!(e.contains("did not become ready"), "{e}");

        // Gone: dead at once, naming the node and quoting its log.
        child.kill().unwrap();
        child.wait().unwrap();
        std::fs::write(&pid_file, format!("{}\n", child.id())).unwrap();
        let (e, took) = wait(&c);
        assert!(took < Duration::from_millis(700), "{took:?}: {e}");
        assert!(e.starts_with("refusing on n1 is not running: "), "{e}");
        assert!(e.contains("append-only"), "{e}");
        std::fs::remove_file(&pid_file).unwrap();
        let (e, _) = wait(&c);
        assert!(e.contains("is not running"), "{e}");

        // Leaders: the nodes whose answer says so; None when no node answered.
        let answers: Vec<Result<bool, String>> = vec![Ok(true)];
        assert_eq!(c.leading(&answers, |l| *l), Some(vec!["n1".to_string()]));
        let answers: Vec<Result<bool, String>> = vec![Ok(false)];
        assert_eq!(c.leading(&answers, |l| *l), Some(vec![]));
        let answers: Vec<Result<bool, String>> = vec![Err("refused".into())];
        assert_eq!(c.leading(&answers, |l| *l), None);

        // Index checks: an error naming the database, never a panic.
        let e = c.kill(3).unwrap_err().to_string();
        assert_eq!(e, "refusing: node index 3 out of range (1 nodes)");
        assert!(c.log_files(3).is_empty());
        let _ = std::fs::remove_dir_all(&dir);
    }
}

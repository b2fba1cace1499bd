//! A database netsplit did not deploy (`deploy: existing`, docs/deployed-databases.md): the
//! wrapper [`Attached`] that every target gets in that mode from
//! [`super::DbDef::build`], and the process control it brings with it.
//!
//! [`Attached`] never calls the target's own setup or teardown (which install, configure,
//! wipe, start and stop): setup is the target's [`Attach::attach`] (wait until the database
//! serves, create the run's own data under its namespace), teardown its
//! [`Attach::delete_data`] (unless `--leave-data`). Clients and primaries are the target's.
//!
//! Its [`Kill`], [`Pause`] and [`LogFiles`] act on the database's process, found on each node
//! by one of the common options ([`ProcessSpec`]): a systemd unit (`service=`: `systemctl
//! kill`/`stop`/`start`, the unit's main PID paused, logs from `journalctl`), a process name
//! (`process=`, `pgrep -x`) or a pid file (`pidfile=`). On local-cluster nodes, which share
//! one process table, a process belongs to the node whose network namespace it runs in: the
//! commands run over SSH inside that namespace and compare `/proc/<pid>/ns/net` with their
//! own. Without a process option there are no such abilities, so kill and pause faults are
//! plan errors, while partitions and packet faults work.
//!
//! Before killing a process found by name or pid file, netsplit records how it runs — its
//! command line, working directory, environment and user, from `/proc` (or, for a database
//! that rewrites its own command line, what the target's [`Attach::start_command`] reports) —
//! and writes the record into netsplit's own directory on the node
//! (`<workdir>/deployed/<key>.killed.json`) before the signal. Starting it again runs exactly
//! that, detached, output appended to `<workdir>/deployed/<key>.log` (fetched with the run);
//! `start=COMMAND` replaces the recorded command line. The record is removed once the process
//! runs again; one that is still there — a harness killed after it killed the database — is
//! what the next run's opening heal (the `kill` family, [`Kill::left_killed`]) starts again.
//!
//! A database whose process is the parent of a tree that lives and dies with it (PostgreSQL's
//! postmaster and its children) says so ([`Attach::process_tree`]): kills, stops and pauses
//! then act on the process and every child ([`SIGNAL`], [`TREE`]), and a process is started
//! again only once the killed one is reaped ([`WAIT_REAPED`]).
//!
//! Every command here reads, signals the one selected process (and, for a tree, its children),
//! or starts it; values reach the small shell scripts as positional parameters only.

use super::{
    Attach, BoxFuture, Client, Clock, CommonOpts, Db, Deployment, Kill, LogFiles, Pause, Primaries,
};
use crate::control::{Cmd, Node, Remote};
use anyhow::{anyhow, bail, Context, Result};
use base64::Engine;
use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// How the database's process is found on a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProcessSpec {
    /// A systemd unit (`service=`).
    Service(String),
    /// The running process with this name (`process=`, `pgrep -x`).
    Name(String),
    /// The process a pid file names (`pidfile=`).
    PidFile(String),
}

/// The PATH a restarted process gets when `/proc` shows it had no environment (one that wiped
/// its own, as redis-server does for its process title).
pub const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

impl ProcessSpec {
    /// The process option of the common options, checked; `Err((key, why))`.
    pub fn from_common(c: &CommonOpts) -> Result<Option<ProcessSpec>, (&'static str, String)> {
        let given: Vec<(&'static str, &String)> = [
            ("service", &c.service),
            ("process", &c.process),
            ("pidfile", &c.pidfile),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| (k, v)))
        .collect();
        let (k, v) = match given.as_slice() {
            [] => return Ok(None),
            [one] => *one,
            [a, b, ..] => {
                return Err((
                    b.0,
                    format!(
                        "give one of service=, process= and pidfile=, not {} and {}",
                        a.0, b.0
                    ),
                ))
            }
        };
        let v = v.trim();
        let bad = |why: &str| Err((k, format!("{v:?}: {why}")));
        match k {
            "service" => {
                let ok = !v.is_empty()
                    && !v.starts_with('-')
                    && v.chars()
                        .all(|c| c.is_ascii_alphanumeric() || ":_.@-\\".contains(c));
                if !ok {
                    return bad("not a systemd unit name");
                }
                Ok(Some(ProcessSpec::Service(v.to_string())))
            }
            "process" => {
                if v.is_empty()
                    || v.contains('/')
                    || v.chars().any(|c| c.is_whitespace() || c.is_control())
                {
                    return bad("a process name (as `pgrep -x` matches it), without '/' or spaces");
                }
                if v.len() > 15 {
                    return bad(
                        "the kernel keeps 15 characters of a process name, so `pgrep -x` would \
                         never match it: give the first 15, or pidfile=",
                    );
                }
                Ok(Some(ProcessSpec::Name(v.to_string())))
            }
            _ => {
                if !v.starts_with('/') || v.chars().any(char::is_control) {
                    return bad("must be an absolute path");
                }
                Ok(Some(ProcessSpec::PidFile(v.to_string())))
            }
        }
    }

    /// How it reads in messages: `process etcd`, `systemd unit etcd`, `pid file /run/x.pid`.
    pub fn describe(&self) -> String {
        match self {
            ProcessSpec::Service(u) => format!("systemd unit {u}"),
            ProcessSpec::Name(n) => format!("process {n}"),
            ProcessSpec::PidFile(p) => format!("pid file {p}"),
        }
    }

    /// The stem of netsplit's files about it on a node (`process-etcd`).
    pub fn key(&self) -> String {
        let (kind, v) = match self {
            ProcessSpec::Service(u) => ("service", u.as_str()),
            ProcessSpec::Name(n) => ("process", n.as_str()),
            ProcessSpec::PidFile(p) => ("pidfile", p.trim_start_matches('/')),
        };
        format!("{kind}-{}", crate::control::util::file_safe(v))
    }
}

/// `pgrep -x`'s pattern for an exact name (pgrep takes an extended regular expression).
pub fn pgrep_pattern(name: &str) -> String {
    let mut out = String::with_capacity(name.len() * 2);
    for c in name.chars() {
        if "\\.^$|?*+()[]{}".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// How a process ran, as recorded before netsplit killed it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// The process id it had.
    pub pid: u32,
    /// The command line, program first.
    pub argv: Vec<String>,
    /// Where the command line came from (`/proc/<pid>/cmdline`, or the database).
    pub argv_from: String,
    /// `NAME=VALUE` entries; None when `/proc` showed none (the process wiped them).
    pub env: Option<Vec<String>>,
    /// Its working directory.
    pub cwd: String,
    /// Effective user id.
    pub uid: u32,
    /// Effective group id.
    pub gid: u32,
    /// The effective user's name.
    pub user: String,
}

impl Record {
    /// Parses what [`CAPTURE`] printed for process `pid`.
    pub fn parse(pid: u32, text: &str) -> Result<Record, String> {
        let b64 = base64::engine::general_purpose::STANDARD;
        let mut r = Record {
            pid,
            argv: Vec::new(),
            argv_from: format!("/proc/{pid}/cmdline"),
            env: None,
            cwd: String::new(),
            uid: u32::MAX,
            gid: u32::MAX,
            user: String::new(),
        };
        let nul_split = |bytes: Vec<u8>| -> Vec<String> {
            let mut v: Vec<String> = bytes
                .split(|b| *b == 0)
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .collect();
            while v.last().is_some_and(String::is_empty) {
                v.pop();
            }
            v
        };
        for line in text.lines() {
            let (k, v) = line.split_once(' ').unwrap_or((line, ""));
            let decode = |v: &str| {
                b64.decode(v.trim())
                    .map_err(|e| format!("{k}: not base64: {e}"))
            };
            match k {
                "uid" => r.uid = v.trim().parse().map_err(|_| format!("uid {v:?}"))?,
                "gid" => r.gid = v.trim().parse().map_err(|_| format!("gid {v:?}"))?,
                "user" => r.user = v.trim().to_string(),
                "cwd" => r.cwd = String::from_utf8_lossy(&decode(v)?).into_owned(),
                "cmdline" => r.argv = nul_split(decode(v)?),
                "environ" => {
                    let env: Vec<String> = nul_split(decode(v)?)
                        .into_iter()
                        .filter(|e| !e.is_empty())
                        .collect();
                    r.env = (!env.is_empty()).then_some(env);
                }
                _ => {}
            }
        }
        if r.uid == u32::MAX || r.gid == u32::MAX {
            return Err("no uid or gid in /proc/<pid>/status".into());
        }
        if r.argv.is_empty() {
            return Err(
                "an empty command line (a kernel thread, or the process is exiting)".into(),
            );
        }
        if r.cwd.is_empty() {
            r.cwd = "/".into();
        }
        Ok(r)
    }

    /// Why this command line cannot be run again as it is, if it cannot: a program name with
    /// spaces and nothing after it is a process title the process wrote over its own
    /// arguments (redis-server's `redis-server 10.0.0.1:6379`).
    pub fn unusable(&self) -> Option<String> {
        let a0 = &self.argv[0];
        if self.argv.len() == 1 && a0.contains(' ') {
            return Some(format!(
                "its command line {a0:?} is a title the process wrote over its arguments"
            ));
        }
        if a0.contains('=') || a0.starts_with('-') {
            return Some(format!(
                "its program name {a0:?} cannot be run again as it is"
            ));
        }
        None
    }

    /// The argv that starts it again exactly so: as its user (`setpriv`), with exactly its
    /// environment (`env -i`; PATH only when `/proc` showed none), its command line.
    pub fn launch_argv(&self) -> Result<Vec<String>, String> {
        if let Some(why) = self.unusable() {
            return Err(why);
        }
        let mut v: Vec<String> = Vec::new();
        if self.uid != 0 {
            v.push("setpriv".into());
            v.push(format!("--reuid={}", self.uid));
            v.push(format!("--regid={}", self.gid));
            // initgroups needs a name the system knows.
            v.push(if self.user.is_empty() || self.user == "UNKNOWN" {
                "--clear-groups".into()
            } else {
                "--init-groups".into()
            });
        }
        v.extend(["env".to_string(), "-i".to_string(), "--".to_string()]);
        match &self.env {
            Some(env) => v.extend(env.iter().filter(|e| valid_env(e)).cloned()),
            None => v.push(DEFAULT_PATH.to_string()),
        }
        v.extend(self.argv.iter().cloned());
        Ok(v)
    }

    /// The command line as one readable line (for messages and the preflight).
    pub fn command_text(&self) -> String {
        crate::control::Cmd {
            argv: self.argv.clone(),
            ..Cmd::default()
        }
        .shell_line(true)
    }
}

/// `NAME=VALUE` with a name `env` takes as an assignment.
fn valid_env(e: &str) -> bool {
    match e.split_once('=') {
        Some((name, _)) => !name.is_empty() && !name.starts_with('-'),
        None => false,
    }
}

/// What netsplit leaves on a node before it kills the process there: the proof that it did,
/// and how to start it again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Killed {
    /// The process option it was found by ([`ProcessSpec::describe`]).
    pub process: String,
    /// The node it was killed on.
    pub node: String,
    /// Seconds since the epoch.
    pub killed_at: u64,
    /// How it ran (None for a systemd unit, which systemd starts).
    pub record: Option<Record>,
    /// `start=`, when given.
    pub start: Option<String>,
}

/// Prints the pids of the selected process on this node, one per line: `$1` mode (`name`,
/// `pidfile`, `service`), `$2` its argument, `$3` `1` when nodes share one process table (keep
/// only processes in this shell's network namespace). Zombies are not processes; of a process
/// and its children with the same name (a fork), only the parent counts.
pub const FIND: &str = r#"mode=$1 arg=$2 shared=$3
case $mode in
  name) cands=$(pgrep -x -- "$arg") ;;
  pidfile) cands=$(head -n1 -- "$arg" 2>/dev/null | tr -cd '0-9') ;;
  service) cands=$(systemctl show -p MainPID --value -- "$arg" 2>/dev/null); [ "$cands" = 0 ] && cands= ;;
  *) echo "unknown mode $mode" >&2; exit 2 ;;
esac
me=$(stat -L -c %i /proc/self/ns/net)
keep=
for p in $cands; do
  st=$(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null | cut -d' ' -f1)
  [ -n "$st" ] && [ "$st" != Z ] || continue
  if [ "$shared" = 1 ] && [ "$(stat -L -c %i "/proc/$p/ns/net" 2>/dev/null)" != "$me" ]; then continue; fi
  keep="$keep $p"
done
for p in $keep; do
  pp=$(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null | cut -d' ' -f2)
  case " $keep " in *" $pp "*) continue ;; esac
  echo "$p"
done"#;

/// Prints how process `$1` runs, for [`Record::parse`]: ids and user, then the working
/// directory, command line and environment base64-encoded. Exit 3: it is gone.
pub const CAPTURE: &str = r#"p=$1
[ -r "/proc/$p/status" ] || { echo "process $p is gone" >&2; exit 3; }
awk '/^Uid:/ { print "uid", $3 } /^Gid:/ { print "gid", $3 }' "/proc/$p/status"
echo "user $(stat -c %U "/proc/$p")"
echo "cwd $(readlink -n "/proc/$p/cwd" | base64 -w0)"
echo "cmdline $(base64 -w0 < "/proc/$p/cmdline")"
echo "environ $(base64 -w0 < "/proc/$p/environ")"
[ -d "/proc/$p" ] || { echo "process $p is gone" >&2; exit 3; }"#;

/// Sends `$2` (`KILL`, or a graceful stop signal such as `TERM` then KILL after `$3` tenths of a
/// second) to pid `$1` and waits until it is gone (or a zombie). With `$4` = `1` the process is
/// the parent of a tree (PostgreSQL): a paused tree is continued before the graceful signal,
/// and the kill stops the parent first (it can then start no new child) and kills it with
/// every child, waiting for all. Nothing to do when it is already gone. Run after
/// `util::PROCESS_SH` (`gone`, `await_gone`).
pub const SIGNAL: &str = r#"p=$1 sig=$2 grace=$3 tree=$4
kids() { [ "$tree" = 1 ] && ps -o pid= --ppid "$p" 2>/dev/null; }
gone "$p" && exit 0
if [ "$sig" != KILL ]; then
  for q in $(kids) "$p"; do kill -CONT "$q" 2>/dev/null; done
  kill "-$sig" "$p" 2>/dev/null
  i=0; while ! gone "$p" && [ "$i" -lt "$grace" ]; do sleep 0.1; i=$((i+1)); done
fi
gone "$p" || kill -STOP "$p" 2>/dev/null
all="$p $(kids)"
kill -KILL $all 2>/dev/null
for q in $all; do await_gone "$q"; done"#;

/// Acts on process `$1` and its children (a process tree, PostgreSQL's): `$2` `STOP` (the
/// parent first, so it starts no new child; exit 3 when the parent is gone), `CONT` (the
/// children first), or `list` (the parent's pid, then each child's).
pub const TREE: &str = r#"p=$1
kids() { ps -o pid= --ppid "$p" 2>/dev/null; }
case $2 in
  STOP) kill -STOP "$p" 2>/dev/null || exit 3
        for q in $(kids); do kill -STOP "$q" 2>/dev/null; done ;;
  CONT) for q in $(kids); do kill -CONT "$q" 2>/dev/null; done
        kill -CONT "$p" 2>/dev/null ;;
  list) kill -0 "$p" 2>/dev/null || exit 0
        echo "$p"; kids ;;
  *) echo "unknown action $2" >&2; exit 2 ;;
esac
exit 0"#;

/// Starts `$3…` detached in directory `$2` (`/` if it is gone): own session, stdin from
/// /dev/null, output appended to the log `$1`. Prints its pid (setsid does not fork here, and
/// setpriv and env exec, so `$!` is the program's own).
pub const LAUNCH: &str = r#"log=$1 dir=$2; shift 2
mkdir -p -- "$(dirname -- "$log")" || exit 1
cd -- "$dir" 2>/dev/null || cd / || exit 1
printf '%s netsplit: starting again: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" >>"$log"
setsid "$@" >>"$log" 2>&1 </dev/null &
echo $!"#;

/// Waits (up to 10 s) while pid `$1` is a zombie, i.e. until whoever inherited the killed
/// process has reaped it: a database that keeps its pid in a lock file (PostgreSQL's
/// `postmaster.pid`) takes a pid that still answers `kill -0` for a live server and refuses to
/// start.
pub const WAIT_REAPED: &str = r#"p=$1 i=0
while [ "$(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null | cut -d' ' -f1)" = Z ] && [ "$i" -lt 100 ]; do
  sleep 0.1; i=$((i+1))
done
exit 0"#;

/// Writes the journal of unit `$1` since `@$2` (epoch seconds) to `$3`.
pub const JOURNAL: &str = r#"mkdir -p -- "$(dirname -- "$3")" && journalctl -u "$1" --since "@$2" --no-pager -o short-iso > "$3" 2>&1"#;

fn sh(script: &str, args: &[&str]) -> Cmd {
    Cmd::new("sh")
        .arg("-c")
        .arg(script)
        .arg("sh")
        .args(args.iter().copied())
        .sudo()
        .timeout(Duration::from_secs(90))
}

/// The wrapper every target gets for a database that is already deployed. See the module docs.
pub struct Attached {
    inner: Arc<dyn Db>,
    nodes: Vec<Node>,
    remotes: Vec<Arc<dyn Remote>>,
    deploy: Deployment,
    /// What is known of each node's process: found at the preflight, or started by netsplit.
    records: Mutex<Vec<Option<Record>>>,
    /// When the run began (the journal's window).
    since: Mutex<SystemTime>,
    /// How long a graceful stop waits before SIGKILL.
    pub stop_grace: Duration,
    /// How long a process started again may take to show up.
    pub start_timeout: Duration,
}

impl Attached {
    /// Wraps `inner` (which must have [`Attach`]) for the deployment `deploy` on `nodes`.
    pub fn new(
        inner: Arc<dyn Db>,
        nodes: Vec<Node>,
        remotes: Vec<Arc<dyn Remote>>,
        deploy: Deployment,
    ) -> Attached {
        let n = nodes.len();
        Attached {
            inner,
            nodes,
            remotes,
            deploy,
            records: Mutex::new(vec![None; n]),
            since: Mutex::new(SystemTime::now()),
            stop_grace: Duration::from_secs(10),
            start_timeout: Duration::from_secs(30),
        }
    }

    /// The wrapped target.
    pub fn inner(&self) -> &Arc<dyn Db> {
        &self.inner
    }

    /// The deployment it was built for.
    pub fn deployment(&self) -> &Deployment {
        &self.deploy
    }

    fn attach(&self) -> Result<&dyn Attach> {
        self.inner
            .as_attach()
            .ok_or_else(|| anyhow!("target {} cannot attach", self.inner.name()))
    }

    fn spec(&self) -> Result<&ProcessSpec> {
        self.deploy
            .process
            .as_ref()
            .ok_or_else(|| anyhow!("no process option (process=, pidfile=, service=)"))
    }

    fn node(&self, i: usize) -> Result<&Node> {
        self.nodes
            .get(i)
            .ok_or_else(|| anyhow!("node index {i} out of range ({} nodes)", self.nodes.len()))
    }

    fn remote(&self, i: usize) -> Result<&dyn Remote> {
        let n = self.node(i)?;
        self.remotes
            .get(i)
            .map(|r| r.as_ref())
            .ok_or_else(|| anyhow!("{}: no SSH to this node (client-only mode)", n.name))
    }

    /// `text` (a `pidfile=` or `start=` value) for node `i`: `{node}` becomes the node's name
    /// (nodes of a local cluster share one filesystem, so their pid files differ by name).
    pub fn on_node(&self, i: usize, text: &str) -> Result<String> {
        Ok(text.replace("{node}", &self.node(i)?.name))
    }

    /// netsplit's own directory for deployed databases on node `i`.
    pub fn dir(&self, i: usize) -> Result<String> {
        Ok(format!(
            "{}/deployed",
            self.node(i)?.workdir.trim_end_matches('/')
        ))
    }

    fn file(&self, i: usize, suffix: &str) -> Result<String> {
        Ok(format!("{}/{}{suffix}", self.dir(i)?, self.spec()?.key()))
    }

    /// Where netsplit records, on node `i`, that it killed the process there.
    pub fn killed_file(&self, i: usize) -> Result<String> {
        self.file(i, ".killed.json")
    }

    /// The log a process netsplit started again writes to, on node `i`.
    pub fn restart_log(&self, i: usize) -> Result<String> {
        self.file(i, ".log")
    }

    fn what(&self) -> String {
        self.deploy
            .process
            .as_ref()
            .map(ProcessSpec::describe)
            .unwrap_or_else(|| self.inner.name().to_string())
    }

    /// The pids of the selected process on node `i` (see [`FIND`]).
    pub fn find(&self, i: usize) -> Result<Vec<u32>> {
        let r = self.remote(i)?;
        let (mode, arg) = match self.spec()? {
            ProcessSpec::Service(u) => ("service", u.clone()),
            ProcessSpec::Name(n) => ("name", pgrep_pattern(n)),
            ProcessSpec::PidFile(p) => ("pidfile", self.on_node(i, p)?),
        };
        let shared = if self.deploy.shared_process_table {
            "1"
        } else {
            "0"
        };
        let out = r
            .exec_ok(&sh(FIND, &[mode, &arg, shared]))
            .map_err(anyhow::Error::new)?;
        out.stdout
            .split_whitespace()
            .map(|p| {
                p.parse::<u32>()
                    .map_err(|_| anyhow!("{}: finding the process printed {p:?}", r.node().name))
            })
            .collect()
    }

    /// The one process on node `i` (None: none runs); several are an error naming them.
    pub fn one(&self, i: usize) -> Result<Option<u32>> {
        let pids = self.find(i)?;
        match pids.as_slice() {
            [] => Ok(None),
            [p] => Ok(Some(*p)),
            many => Err(anyhow!(
                "{}: {} processes match {} (pids {}): name one with pidfile= or service=",
                self.node(i)?.name,
                many.len(),
                self.what(),
                many.iter()
                    .map(u32::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    }

    /// Records how process `pid` on node `i` runs (see [`CAPTURE`]); the target's own account
    /// of its command line wins over `/proc`'s (see [`Attach::start_command`]).
    pub fn capture(&self, i: usize, pid: u32) -> Result<Record> {
        let r = self.remote(i)?;
        let node = &self.node(i)?.name;
        let out = r
            .exec(&sh(CAPTURE, &[&pid.to_string()]))
            .map_err(anyhow::Error::new)?;
        if out.status != 0 {
            bail!(
                "{node}: cannot read how process {pid} runs: {}",
                crate::control::tail(&out.stderr, 200)
            );
        }
        let mut rec = Record::parse(pid, &out.stdout)
            .map_err(|e| anyhow!("{node}: reading /proc/{pid}: {e}"))?;
        if let Some(argv) = self.attach()?.start_command(i)? {
            if !argv.is_empty() {
                rec.argv = argv;
                rec.argv_from = format!("{} (asked while it ran)", self.inner.name());
            }
        }
        Ok(rec)
    }

    /// The record of process `pid` on node `i`: the one kept if it is about this very process,
    /// else a fresh capture (kept).
    fn record_for(&self, i: usize, pid: u32) -> Result<Record> {
        if let Some(r) = self.lock_records()[i].as_ref().filter(|r| r.pid == pid) {
            return Ok(r.clone());
        }
        let rec = self.capture(i, pid)?;
        self.lock_records()[i] = Some(rec.clone());
        Ok(rec)
    }

    fn lock_records(&self) -> std::sync::MutexGuard<'_, Vec<Option<Record>>> {
        self.records.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn write_killed(&self, i: usize, record: Option<Record>) -> Result<()> {
        let k = Killed {
            process: self.what(),
            node: self.node(i)?.name.clone(),
            killed_at: SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            record,
            start: self.deploy.start.clone(),
        };
        let path = self.killed_file(i)?;
        let text = serde_json::to_string_pretty(&k)? + "\n";
        crate::control::util::write_file(self.remote(i)?, &path, text.as_bytes())
            .with_context(|| format!("recording how to start {} again", self.what()))?;
        Ok(())
    }

    /// What node `i` records about a kill by netsplit, if anything.
    pub fn read_killed(&self, i: usize) -> Result<Option<Killed>> {
        let path = self.killed_file(i)?;
        let r = self.remote(i)?;
        let out = r
            .exec(&sh(r#"[ -e "$1" ] || exit 3; cat -- "$1""#, &[&path]))
            .map_err(anyhow::Error::new)?;
        match out.status {
            0 => serde_json::from_str(&out.stdout)
                .map(Some)
                .map_err(|e| anyhow!("{}: {path}: {e}", r.node().name)),
            3 => Ok(None),
            s => bail!(
                "{}: reading {path} exited {s}: {}",
                r.node().name,
                crate::control::tail(&out.stderr, 200)
            ),
        }
    }

    fn forget_killed(&self, i: usize) -> Result<()> {
        let path = self.killed_file(i)?;
        self.remote(i)?
            .exec_ok(&Cmd::new("rm").args(["-f", "--", &path]).sudo())
            .map_err(anyhow::Error::new)?;
        Ok(())
    }

    fn signal(&self, i: usize, pid: u32, graceful: bool) -> Result<()> {
        let tenths = (self.stop_grace.as_millis() / 100).max(1).to_string();
        let a = self.attach()?;
        let sig = if graceful { a.stop_signal() } else { "KILL" };
        let tree = if a.process_tree() { "1" } else { "0" };
        self.remote(i)?
            .exec_ok(
                &crate::control::util::process_script(
                    SIGNAL,
                    &[&pid.to_string(), sig, &tenths, tree],
                )
                .timeout(self.stop_grace + Duration::from_secs(60)),
            )
            .map_err(anyhow::Error::new)
            .with_context(|| format!("sending SIG{sig} to {} (pid {pid})", self.what()))?;
        Ok(())
    }

    /// Whether the database's process is the parent of a tree ([`Attach::process_tree`]).
    fn is_tree(&self) -> bool {
        self.attach().is_ok_and(|a| a.process_tree())
    }

    /// Runs [`TREE`] with `action` on the tree of `pid` on node `i`; its exit status and output.
    fn tree(&self, i: usize, pid: u32, action: &str) -> Result<crate::control::Output> {
        self.remote(i)?
            .exec(&sh(TREE, &[&pid.to_string(), action]))
            .map_err(anyhow::Error::new)
    }

    fn kill_signal(&self, i: usize, pid: u32, sig: &str) -> Result<bool> {
        let out = self
            .remote(i)?
            .exec(
                &Cmd::new("kill")
                    .args([format!("-{sig}"), pid.to_string()])
                    .sudo(),
            )
            .map_err(anyhow::Error::new)?;
        Ok(out.status == 0)
    }

    fn systemctl(&self, i: usize, args: &[&str]) -> Result<()> {
        let r = self.remote(i)?;
        r.exec_ok(
            &Cmd::new("systemctl")
                .args(args.iter().copied())
                .sudo()
                .timeout(Duration::from_secs(120)),
        )
        .map_err(anyhow::Error::new)?;
        Ok(())
    }

    /// Kills (or gracefully stops) the process on node `i`, recording first how to start it.
    fn take_down(&self, i: usize, graceful: bool) -> Result<()> {
        match self.spec()? {
            ProcessSpec::Service(unit) => {
                let pid = self.one(i)?;
                self.write_killed(i, None)?;
                if graceful {
                    self.systemctl(i, &["stop", "--", unit])?;
                } else {
                    self.systemctl(i, &["kill", "--signal=SIGKILL", "--", unit])?;
                    if let Some(p) = pid {
                        // systemd may already have started it again (Restart=): only the old
                        // main process must be gone.
                        self.signal(i, p, false)?;
                    }
                }
                Ok(())
            }
            _ => {
                let Some(pid) = self.one(i)? else {
                    // Nothing runs: nothing to kill (a record from an earlier kill stays).
                    return Ok(());
                };
                let record = match &self.deploy.start {
                    Some(_) => None,
                    None => Some(self.record_for(i, pid)?),
                };
                self.write_killed(i, record)?;
                self.signal(i, pid, graceful)
            }
        }
    }

    fn tail_of(&self, i: usize, path: &str) -> String {
        match self.remote(i) {
            Ok(r) => super::daemon::log_tail(r, path, 10),
            Err(e) => e.to_string(),
        }
    }

    /// Starts the process on node `i` again from what was recorded (or `start=`), and waits
    /// until it is found running.
    fn start_again(&self, i: usize) -> Result<()> {
        let node = self.node(i)?.name.clone();
        let killed = self.read_killed(i)?;
        let log = self.restart_log(i)?;
        let (argv, cwd) = match &self.deploy.start {
            Some(cmd) => (
                vec!["sh".to_string(), "-c".to_string(), self.on_node(i, cmd)?],
                self.dir(i)?,
            ),
            None => {
                let rec = killed
                    .as_ref()
                    .and_then(|k| k.record.clone())
                    .or_else(|| self.lock_records()[i].clone())
                    .ok_or_else(|| {
                        anyhow!(
                            "{node}: {} is not running and netsplit has no record of how it \
                             ran (it did not kill it): start it yourself, or give start=COMMAND",
                            self.what()
                        )
                    })?;
                let argv = rec.launch_argv().map_err(|why| {
                    anyhow!(
                        "{node}: cannot start {} again: {why}; give start=COMMAND",
                        self.what()
                    )
                })?;
                self.remote(i)?
                    .exec_ok(&sh(WAIT_REAPED, &[&rec.pid.to_string()]))
                    .map_err(anyhow::Error::new)?;
                (argv, rec.cwd.clone())
            }
        };
        let mut args: Vec<&str> = vec![&log, &cwd];
        args.extend(argv.iter().map(String::as_str));
        let out = self
            .remote(i)?
            .exec_ok(&sh(LAUNCH, &args))
            .map_err(anyhow::Error::new)
            .with_context(|| format!("starting {} again", self.what()))?;
        let launched: u32 = out
            .stdout
            .trim()
            .parse()
            .map_err(|_| anyhow!("{node}: no pid from the start: {:?}", out.stdout))?;
        let pid = self.wait_started(i, launched, &log)?;
        if let Some(r) = self.lock_records()[i].as_mut() {
            r.pid = pid;
        }
        if let Some(r) = killed.and_then(|k| k.record) {
            let mut guard = self.lock_records();
            if guard[i].is_none() {
                guard[i] = Some(Record { pid, ..r });
            }
        }
        self.forget_killed(i)
    }

    /// Waits until the process started as `launched` is found on node `i`. A pid file nobody
    /// rewrote is pointed at the launched process once it has run for a few seconds.
    fn wait_started(&self, i: usize, launched: u32, log: &str) -> Result<u32> {
        let node = self.node(i)?.name.clone();
        let t0 = Instant::now();
        let pidfile = match self.spec()? {
            ProcessSpec::PidFile(p) => Some(self.on_node(i, p)?),
            _ => None,
        };
        loop {
            if let Some(p) = self.one(i)? {
                return Ok(p);
            }
            let alive = self.kill_signal(i, launched, "0")?;
            if let (Some(pf), true) = (&pidfile, alive) {
                if t0.elapsed() > Duration::from_secs(3) {
                    crate::control::util::write_file(
                        self.remote(i)?,
                        pf,
                        format!("{launched}\n").as_bytes(),
                    )?;
                    continue;
                }
            }
            if !alive && pidfile.is_none() {
                bail!(
                    "{node}: {} exited right after it was started again; last lines of {log}:\n{}",
                    self.what(),
                    self.tail_of(i, log)
                );
            }
            if t0.elapsed() > self.start_timeout {
                bail!(
                    "{node}: {} did not show up within {:.0}s of being started again; last lines \
                     of {log}:\n{}",
                    self.what(),
                    self.start_timeout.as_secs_f64(),
                    self.tail_of(i, log)
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// One node's preflight line, or the error naming the node.
    fn preflight_node(&self, i: usize, restart: bool) -> Result<String> {
        let node = self.node(i)?.name.clone();
        let mut parts: Vec<String> = Vec::new();
        let mut down = false;
        if self.deploy.process.is_some() {
            match self.one(i)? {
                Some(pid) if matches!(self.spec()?, ProcessSpec::Service(_)) => {
                    let how = match &self.deploy.start {
                        Some(cmd) => format!("start={}", self.on_node(i, cmd)?),
                        None => "systemctl start".into(),
                    };
                    parts.push(format!(
                        "{} main pid {pid}, started again by: {how}",
                        self.what()
                    ));
                }
                Some(pid) => {
                    let what = self.what();
                    let rec = match self.capture(i, pid) {
                        Ok(rec) => {
                            self.lock_records()[i] = Some(rec.clone());
                            Ok(rec)
                        }
                        Err(e) => Err(e),
                    };
                    let restart_text = match (&self.deploy.start, &rec) {
                        (Some(cmd), _) => Ok(format!("start={}", self.on_node(i, cmd)?)),
                        (None, Ok(r)) => match r.unusable() {
                            None => Ok(r.command_text()),
                            Some(why) => Err(anyhow!("{why}")),
                        },
                        (None, Err(e)) => Err(anyhow!("{}", crate::error::one_line(e))),
                    };
                    let user = match &rec {
                        Ok(r) => format!(" (user {})", r.user),
                        Err(_) => String::new(),
                    };
                    match restart_text {
                        Ok(t) => {
                            parts.push(format!("{what} pid {pid}{user}, started again by: {t}"))
                        }
                        Err(e) if restart => bail!(
                            "{node}: cannot tell how to start {what} (pid {pid}) again after \
                             killing it: {}; give start=COMMAND",
                            crate::error::one_line(&e).trim_start_matches(&format!("{node}: "))
                        ),
                        Err(_) => parts.push(format!("{what} pid {pid}{user}")),
                    }
                }
                None if self.left_killed(i)? => {
                    down = true;
                    parts.push(format!(
                        "{} not running: an earlier netsplit run killed it; it is started again \
                         from {} before this run",
                        self.what(),
                        self.killed_file(i)?
                    ));
                }
                None => {
                    let how = match self.spec()? {
                        ProcessSpec::Name(n) => format!("no process named {n} (pgrep -x)"),
                        ProcessSpec::PidFile(p) => {
                            format!("pid file {} names no running process", self.on_node(i, p)?)
                        }
                        ProcessSpec::Service(u) => format!("systemd unit {u} has no main process"),
                    };
                    let scope = if self.deploy.shared_process_table {
                        " in the node's network namespace"
                    } else {
                        ""
                    };
                    bail!("{node}: {how}{scope}");
                }
            }
        }
        if !down {
            let found = self
                .attach()?
                .probe(i)
                .map_err(|e| anyhow!("{node}: {}", crate::error::one_line(&e)))?;
            parts.push(found);
        }
        Ok(format!("{node}: {}", parts.join("; ")))
    }
}

impl Db for Attached {
    fn name(&self) -> &str {
        self.inner.name()
    }

    /// Waits until the database serves and creates the run's data: no install, config, wipe
    /// or start.
    fn setup(&self) -> Result<()> {
        *self.since.lock().unwrap_or_else(|e| e.into_inner()) = SystemTime::now();
        self.attach()?.attach()
    }

    /// Deletes what the run wrote under its namespace (unless `--leave-data`); stops nothing.
    fn teardown(&self) -> Result<()> {
        if self.deploy.leave_data {
            tracing::info!(
                namespace = %self.deploy.namespace(),
                "leaving the run's data (--leave-data)"
            );
            return Ok(());
        }
        self.attach()?.delete_data()
    }

    fn client(&self, node: Option<usize>) -> BoxFuture<'_, Result<Box<dyn Client>>> {
        self.inner.client(node)
    }

    fn as_kill(&self) -> Option<&dyn Kill> {
        self.deploy.process.is_some().then_some(self as &dyn Kill)
    }
    fn as_pause(&self) -> Option<&dyn Pause> {
        self.deploy.process.is_some().then_some(self as &dyn Pause)
    }
    fn as_primaries(&self) -> Option<&dyn Primaries> {
        self.inner.as_primaries()
    }
    fn as_log_files(&self) -> Option<&dyn LogFiles> {
        self.deploy
            .process
            .is_some()
            .then_some(self as &dyn LogFiles)
    }
    /// netsplit did not start the database, so it does not run under libfaketime.
    fn clock(&self) -> Clock {
        Clock::IgnoresFaketime
    }
    fn as_attach(&self) -> Option<&dyn Attach> {
        self.inner.as_attach()
    }

    fn preflight(&self, restart: bool) -> Result<Vec<String>> {
        let results = crate::control::fan_out(&self.nodes, |i, _| self.preflight_node(i, restart));
        let mut lines = Vec::new();
        for r in results {
            lines.push(r.map_err(|e| {
                crate::error::bad_input(format!("preflight: {}", crate::error::one_line(&e)))
            })?);
        }
        Ok(lines)
    }
}

impl Kill for Attached {
    fn kill(&self, i: usize) -> Result<()> {
        self.take_down(i, false)
    }
    fn stop(&self, i: usize) -> Result<()> {
        self.take_down(i, true)
    }
    fn start(&self, i: usize) -> Result<()> {
        if !self.find(i)?.is_empty() {
            return self.forget_killed(i);
        }
        match self.spec()? {
            ProcessSpec::Service(unit) if self.deploy.start.is_none() => {
                self.systemctl(i, &["start", "--", unit])?;
                if self.find(i)?.is_empty() {
                    bail!(
                        "{}: systemd unit {unit} has no main process after `systemctl start`",
                        self.node(i)?.name
                    );
                }
                self.forget_killed(i)
            }
            _ => self.start_again(i),
        }
    }
    fn running(&self, i: usize) -> Result<bool> {
        Ok(!self.find(i)?.is_empty())
    }
    fn left_killed(&self, i: usize) -> Result<bool> {
        Ok(self.read_killed(i)?.is_some())
    }
}

impl Pause for Attached {
    fn pause(&self, i: usize) -> Result<()> {
        let Some(pid) = self.one(i)? else {
            bail!(
                "{}: {} is not running, nothing to pause",
                self.node(i)?.name,
                self.what()
            );
        };
        let stopped = if self.is_tree() {
            self.tree(i, pid, "STOP")?.status == 0
        } else {
            self.kill_signal(i, pid, "STOP")?
        };
        if !stopped {
            bail!("{}: SIGSTOP to pid {pid} failed", self.node(i)?.name);
        }
        Ok(())
    }
    fn resume(&self, i: usize) -> Result<()> {
        for pid in self.find(i)? {
            if self.is_tree() {
                self.tree(i, pid, "CONT")?;
            } else {
                self.kill_signal(i, pid, "CONT")?;
            }
        }
        Ok(())
    }
    /// The process, and for a tree every child of it too.
    fn pids(&self, i: usize) -> Result<Vec<u32>> {
        let found = self.find(i)?;
        if !self.is_tree() {
            return Ok(found);
        }
        let mut all = Vec::new();
        for pid in found {
            let out = self.tree(i, pid, "list")?;
            all.extend(
                out.stdout
                    .split_whitespace()
                    .filter_map(|p| p.parse::<u32>().ok()),
            );
        }
        Ok(all)
    }
}

impl LogFiles for Attached {
    /// The journal of the run's window for a systemd unit; otherwise the log of what netsplit
    /// started again, if it did.
    fn log_files(&self, i: usize) -> Vec<String> {
        let found = || -> Result<Vec<String>> {
            let r = self.remote(i)?;
            match self.spec()? {
                ProcessSpec::Service(unit) => {
                    let since = self
                        .since
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .duration_since(SystemTime::UNIX_EPOCH)
                        .map(|d| d.as_secs())
                        .unwrap_or(0);
                    let path = self.file(i, ".journal.log")?;
                    r.exec_ok(&sh(JOURNAL, &[unit, &since.to_string(), &path]))
                        .map_err(anyhow::Error::new)?;
                    Ok(vec![path])
                }
                _ => {
                    let log = self.restart_log(i)?;
                    let out = r
                        .exec(&Cmd::new("test").args(["-e", &log]).sudo())
                        .map_err(anyhow::Error::new)?;
                    Ok(if out.status == 0 {
                        vec![log]
                    } else {
                        Vec::new()
                    })
                }
            }
        };
        found().unwrap_or_else(|e| {
            tracing::warn!(error = %crate::error::one_line(&e), "no log of the deployed database");
            Vec::new()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(pairs: &[(&str, &str)]) -> Result<Option<ProcessSpec>, (&'static str, String)> {
        let mut c = CommonOpts::default();
        for (k, v) in pairs {
            let v = Some(v.to_string());
            match *k {
                "service" => c.service = v,
                "process" => c.process = v,
                "pidfile" => c.pidfile = v,
                _ => unreachable!(),
            }
        }
        ProcessSpec::from_common(&c)
    }

    #[test]
    fn one_process_option_at_most_and_each_checked() {
        assert_eq!(spec(&[]).unwrap(), None);
        assert_eq!(
            spec(&[("process", "etcd")]).unwrap(),
            Some(ProcessSpec::Name("etcd".into()))
        );
        assert_eq!(
            spec(&[("service", "etcd@main.service")]).unwrap(),
            Some(ProcessSpec::Service("etcd@main.service".into()))
        );
        let (k, why) = spec(&[("process", "etcd"), ("pidfile", "/run/etcd.pid")]).unwrap_err();
        assert_eq!(k, "pidfile");
        assert!(why.contains("one of"), "{why}");
        let (k, why) = spec(&[("process", "a-very-long-process-name")]).unwrap_err();
        assert_eq!(k, "process");
        assert!(why.contains("15"), "{why}");
        assert!(spec(&[("process", "bin/etcd")]).is_err());
        assert!(spec(&[("pidfile", "run/etcd.pid")]).is_err());
        assert!(spec(&[("service", "-x")]).is_err());
        assert!(spec(&[("service", "a b")]).is_err());
    }

    #[test]
    fn files_are_named_after_the_process_option() {
        assert_eq!(ProcessSpec::Name("etcd".into()).key(), "process-etcd");
        assert_eq!(
            ProcessSpec::PidFile("/run/my db/x.pid".into()).key(),
            "pidfile-run_my_db_x.pid"
        );
        assert_eq!(
            ProcessSpec::Service("redis@6379".into()).key(),
            "service-redis_6379"
        );
    }

    #[test]
    fn pgrep_patterns_match_names_exactly() {
        assert_eq!(pgrep_pattern("etcd"), "etcd");
        assert_eq!(pgrep_pattern("redis-server"), "redis-server");
        assert_eq!(pgrep_pattern("a.b+c"), "a\\.b\\+c");
    }

    fn b64(bytes: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

    #[test]
    fn records_parse_proc_and_restart_exactly_so() {
        let text = format!(
            "uid 998\ngid 997\nuser etcd\ncwd {}\ncmdline {}\nenviron {}\n",
            b64(b"/var/lib/etcd"),
            b64(b"/usr/bin/etcd\0--name\0n1\0--data-dir\0/d ir\0"),
            b64(b"HOME=/var/lib/etcd\0ETCD_X=a b\0")
        );
        let r = Record::parse(42, &text).unwrap();
        assert_eq!(
            r.argv,
            ["/usr/bin/etcd", "--name", "n1", "--data-dir", "/d ir"]
        );
        assert_eq!(r.cwd, "/var/lib/etcd");
        assert_eq!(
            r.env,
            Some(vec!["HOME=/var/lib/etcd".to_string(), "ETCD_X=a b".into()])
        );
        assert_eq!((r.uid, r.gid, r.user.as_str()), (998, 997, "etcd"));
        assert_eq!(r.unusable(), None);
        let argv = r.launch_argv().unwrap();
        assert_eq!(
            argv,
            [
                "setpriv",
                "--reuid=998",
                "--regid=997",
                "--init-groups",
                "env",
                "-i",
                "--",
                "HOME=/var/lib/etcd",
                "ETCD_X=a b",
                "/usr/bin/etcd",
                "--name",
                "n1",
                "--data-dir",
                "/d ir"
            ]
        );
        assert_eq!(
            r.command_text(),
            "/usr/bin/etcd --name n1 --data-dir '/d ir'"
        );
    }

    #[test]
    fn a_rewritten_title_and_a_wiped_environment_are_recognised() {
        // redis-server writes its title over argv and zeroes its environment.
        let text = format!(
            "uid 0\ngid 0\nuser root\ncwd {}\ncmdline {}\nenviron {}\n",
            b64(b"/"),
            b64(b"redis-server 10.0.0.1:6379\0\0\0\0\0"),
            b64(&[0u8; 40])
        );
        let mut r = Record::parse(7, &text).unwrap();
        assert_eq!(r.env, None);
        assert!(
            r.unusable().unwrap().contains("title"),
            "{:?}",
            r.unusable()
        );
        assert!(r.launch_argv().is_err());
        // The database's own account of its command line makes it startable; root needs no
        // setpriv, and the missing environment becomes a plain PATH.
        r.argv = vec![
            "/usr/bin/redis-server".into(),
            "/etc/redis/redis.conf".into(),
        ];
        assert_eq!(
            r.launch_argv().unwrap(),
            [
                "env",
                "-i",
                "--",
                DEFAULT_PATH,
                "/usr/bin/redis-server",
                "/etc/redis/redis.conf"
            ]
        );
    }

    #[test]
    fn broken_captures_are_errors() {
        assert!(Record::parse(1, "gid 0\n").is_err());
        let t = format!("uid 0\ngid 0\ncmdline {}\n", b64(b""));
        assert!(Record::parse(1, &t)
            .unwrap_err()
            .contains("empty command line"));
        assert!(Record::parse(1, "uid 0\ngid 0\ncmdline !!!\n").is_err());
    }

    /// A node with a systemd unit whose main PID the fake systemd sets; every command logged.
    struct Systemd {
        node: Node,
        main_pid: Mutex<u32>,
        files: Mutex<std::collections::BTreeMap<String, Vec<u8>>>,
        log: Mutex<Vec<String>>,
    }

    impl Remote for Systemd {
        fn node(&self) -> &Node {
            &self.node
        }
        fn exec(&self, cmd: &Cmd) -> Result<crate::control::Output, crate::control::RemoteError> {
            let a = &cmd.argv;
            let mut out = crate::control::Output::default();
            let mut files = self.files.lock().unwrap();
            let mut pid = self.main_pid.lock().unwrap();
            let line = if a[0] == "sh" && a[2] == FIND {
                out.stdout = if *pid == 0 {
                    String::new()
                } else {
                    format!("{pid}\n")
                };
                format!("find {} {}", a[4], a[5])
            } else if a[0] == "sh" && a[2].contains("cat > \"$1\"") {
                files.insert(a[4].clone(), cmd.stdin.clone().unwrap_or_default());
                format!("write {}", a[4])
            } else if a[0] == "sh" && a[2].contains("cat -- \"$1\"") {
                match files.get(&a[4]) {
                    Some(b) => out.stdout = String::from_utf8_lossy(b).into_owned(),
                    None => out.status = 3,
                }
                format!("read {}", a[4])
            } else if a[0] == "rm" {
                files.remove(&a[3]);
                format!("rm {}", a[3])
            } else if a[0] == "sh" && a[2].ends_with(SIGNAL) {
                format!("signal {} {}", a[4], a[5])
            } else {
                match (a[0].as_str(), a.get(1).map(String::as_str)) {
                    ("systemctl", Some("kill" | "stop")) => *pid = 0,
                    ("systemctl", Some("start")) => *pid = 777,
                    _ => {}
                }
                a.join(" ")
            };
            self.log.lock().unwrap().push(line);
            Ok(out)
        }
        fn upload(&self, _: &std::path::Path, _: &str) -> Result<(), crate::control::RemoteError> {
            unreachable!()
        }
        fn download(
            &self,
            _: &str,
            _: &std::path::Path,
        ) -> Result<(), crate::control::RemoteError> {
            unreachable!()
        }
    }

    /// A database whose clients are never used here.
    struct FakeDb;

    impl Db for FakeDb {
        fn name(&self) -> &str {
            "db"
        }
        fn setup(&self) -> Result<()> {
            bail!("an existing deployment must never be set up")
        }
        fn teardown(&self) -> Result<()> {
            bail!("an existing deployment must never be torn down")
        }
        fn client(&self, _: Option<usize>) -> BoxFuture<'_, Result<Box<dyn Client>>> {
            Box::pin(async { bail!("no clients here") })
        }
        fn as_attach(&self) -> Option<&dyn Attach> {
            Some(self)
        }
    }

    impl Attach for FakeDb {
        fn probe(&self, _: usize) -> Result<String> {
            Ok("endpoint db:1: db 1.0".into())
        }
        fn attach(&self) -> Result<()> {
            Ok(())
        }
        fn delete_data(&self) -> Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_systemd_unit_is_recorded_before_it_is_killed_and_started_through_systemctl() {
        let m = Arc::new(Systemd {
            node: Node {
                name: "db1".into(),
                host: "10.1.0.1".into(),
                ssh_port: 22,
                workdir: "/var/lib/netsplit/db1".into(),
            },
            main_pid: Mutex::new(4242),
            files: Mutex::new(Default::default()),
            log: Mutex::new(Vec::new()),
        });
        let deploy = Deployment {
            mode: crate::plan::Deploy::Existing,
            process: Some(ProcessSpec::Service("etcd".into())),
            ..Deployment::default()
        };
        let a = Attached::new(
            Arc::new(FakeDb),
            vec![m.node.clone()],
            vec![m.clone() as Arc<dyn Remote>],
            deploy,
        );
        let log = || std::mem::take(&mut *m.log.lock().unwrap());
        let found = a.preflight(true).unwrap();
        assert_eq!(
            found,
            [
                "db1: systemd unit etcd main pid 4242, started again by: systemctl start; \
              endpoint db:1: db 1.0"
            ]
        );
        log();
        assert!(
            a.setup().is_ok() && a.teardown().is_ok(),
            "attach, never setup"
        );

        a.kill(0).unwrap();
        let marker = "/var/lib/netsplit/db1/deployed/service-etcd.killed.json";
        assert_eq!(
            log(),
            [
                "find service etcd".to_string(),
                format!("write {marker}"),
                "systemctl kill --signal=SIGKILL -- etcd".into(),
                "signal 4242 KILL".into(),
            ]
        );
        assert!(a.left_killed(0).unwrap());
        assert!(!a.running(0).unwrap());
        let k: Killed = serde_json::from_slice(&m.files.lock().unwrap()[marker]).unwrap();
        assert_eq!((k.node.as_str(), k.record), ("db1", None));
        log();

        a.start(0).unwrap();
        let l = log();
        assert!(l.contains(&"systemctl start -- etcd".to_string()), "{l:?}");
        assert_eq!(l.last().unwrap(), &format!("rm {marker}"));
        assert!(!a.left_killed(0).unwrap() && a.running(0).unwrap());

        a.pause(0).unwrap();
        a.resume(0).unwrap();
        let l = log();
        assert!(l.contains(&"kill -STOP 777".to_string()), "{l:?}");
        assert!(l.contains(&"kill -CONT 777".to_string()), "{l:?}");
        a.stop(0).unwrap();
        assert!(log().contains(&"systemctl stop -- etcd".to_string()));
        assert!(a.left_killed(0).unwrap());
        assert_eq!(
            a.on_node(0, "/run/db-{node}.pid").unwrap(),
            "/run/db-db1.pid",
            "pidfile= and start= name each node's own"
        );
    }
}

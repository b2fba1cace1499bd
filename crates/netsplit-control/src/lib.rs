//! netsplit-control: control of nodes — the [`Remote`] seam through which the harness runs commands and moves files
//! on a node, and the [`Cmd`] type that is the only way to build a command line.
//!
//! Commands are argument vectors; [`Cmd::shell_line`] escapes them exactly once, here, so user
//! values are never concatenated into shell strings anywhere else. Implementations of
//! [`Remote`]: SSH (real machines, VMs and local namespace nodes alike), in [`ssh`].
//!
//! Around the seam: [`util`] holds the node utilities that targets and nemeses build on
//! (packages, files, daemons by pid file, ports), [`faketime`] how processes are started under
//! libfaketime (the clock faults on local nodes), `route.rs` the host's routing checks that keep
//! traffic to local clusters on their bridge, and [`fan_out`] runs a closure on every node in
//! parallel. Which nodes a run uses is decided above this crate (the harness's `nodes` module).

#![warn(missing_docs)]

pub mod cluster;
pub mod faketime;
pub mod netns;
mod route;
mod shell;
pub mod ssh;
pub mod util;

use std::path::Path;
use std::time::Duration;

/// A node as the control node knows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Node {
    /// Short name used everywhere in output and history (`n1`).
    pub name: String,
    /// Address that clients and SSH connect to (IP or DNS name).
    pub host: String,
    /// SSH port.
    pub ssh_port: u16,
    /// This node's own working directory on the node (data, logs, pid files live under it).
    /// Local nodes share a filesystem, so each gets its own.
    pub workdir: String,
}

/// A command to run on a node: an argument vector plus how to run it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Cmd {
    /// The program and its arguments, each passed as one word (never split by a shell).
    pub argv: Vec<String>,
    /// Environment variables set for the command.
    pub env: Vec<(String, String)>,
    /// Working directory.
    pub cwd: Option<String>,
    /// Run through `sudo -n` when the remote user is not root.
    pub sudo: bool,
    /// Bytes fed to the command's standard input.
    pub stdin: Option<Vec<u8>>,
    /// Give up (and report a timeout) after this long.
    pub timeout: Option<Duration>,
}

impl Cmd {
    /// A command running `program` with no arguments.
    pub fn new(program: impl Into<String>) -> Cmd {
        Cmd {
            argv: vec![program.into()],
            ..Cmd::default()
        }
    }
    /// Appends one argument.
    pub fn arg(mut self, a: impl Into<String>) -> Cmd {
        self.argv.push(a.into());
        self
    }
    /// Appends several arguments, in order.
    pub fn args<I, S>(mut self, args: I) -> Cmd
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.argv.extend(args.into_iter().map(Into::into));
        self
    }
    /// Sets environment variable `k` to `v` for the command.
    pub fn env(mut self, k: impl Into<String>, v: impl Into<String>) -> Cmd {
        self.env.push((k.into(), v.into()));
        self
    }
    /// Runs the command in directory `dir`.
    pub fn cwd(mut self, dir: impl Into<String>) -> Cmd {
        self.cwd = Some(dir.into());
        self
    }
    /// Runs the command through `sudo -n` unless the remote user is root.
    pub fn sudo(mut self) -> Cmd {
        self.sudo = true;
        self
    }
    /// Feeds `bytes` to the command's standard input.
    pub fn stdin(mut self, bytes: impl Into<Vec<u8>>) -> Cmd {
        self.stdin = Some(bytes.into());
        self
    }
    /// Gives up on the command (a [`RemoteError::Timeout`]) after `t`.
    pub fn timeout(mut self, t: Duration) -> Cmd {
        self.timeout = Some(t);
        self
    }

    /// The command as one POSIX `sh` line, every user value quoted. `as_root` says whether the
    /// remote user is already root (then `sudo` is not added).
    pub fn shell_line(&self, as_root: bool) -> String {
        let mut parts: Vec<String> = Vec::new();
        if let Some(dir) = &self.cwd {
            parts.push(format!("cd {} &&", shell::quote(dir)));
        }
        if self.sudo && !as_root {
            parts.push("sudo -n".into());
        }
        if !self.env.is_empty() {
            parts.push("env".into());
            for (k, v) in &self.env {
                parts.push(shell::quote(&format!("{k}={v}")));
            }
        }
        parts.extend(self.argv.iter().map(|a| shell::quote(a)));
        parts.join(" ")
    }

    /// A short human form for error messages (argv joined, truncated).
    pub fn display(&self) -> String {
        let s = self.argv.join(" ");
        if s.len() > 200 {
            format!("{}…", &s[..s.floor_char_boundary(200)])
        } else {
            s
        }
    }
}

/// What a command left behind.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Output {
    /// The exit status; a command killed by a signal reports `128 + signal` as a shell would
    /// (or `-1` where no status can be known).
    pub status: i32,
    /// Everything the command wrote to standard output, as (lossy) UTF-8.
    pub stdout: String,
    /// Everything the command wrote to standard error, as (lossy) UTF-8.
    pub stderr: String,
}

/// Why a remote operation failed. Every variant names the node.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// The node could not be reached (TCP connect or SSH handshake failed).
    #[error("{node}: cannot connect to {addr}: {msg}")]
    Connect {
        /// The node's name.
        node: String,
        /// The address tried (`host:port`).
        addr: String,
        /// Why it failed.
        msg: String,
    },
    /// The node refused every credential offered.
    #[error("{node}: authentication failed: {msg}")]
    Auth {
        /// The node's name.
        node: String,
        /// What was tried and why it failed.
        msg: String,
    },
    /// The node's host key is unknown or does not match `known_hosts`.
    #[error("{node}: host key check failed: {msg}")]
    HostKey {
        /// The node's name.
        node: String,
        /// Which key and which check.
        msg: String,
    },
    /// A command ran longer than its [`Cmd::timeout`].
    #[error("{node}: `{cmd}` timed out after {secs:.1}s")]
    Timeout {
        /// The node's name.
        node: String,
        /// The command, shortened by [`Cmd::display`].
        cmd: String,
        /// How long it ran before it was given up, in seconds.
        secs: f64,
    },
    /// A command exited non-zero where success was required ([`Remote::exec_ok`]).
    #[error("{node}: `{cmd}` exited {status}: {stderr_tail}")]
    Failed {
        /// The node's name.
        node: String,
        /// The command, shortened by [`Cmd::display`].
        cmd: String,
        /// Its exit status.
        status: i32,
        /// The last bytes of its standard error.
        stderr_tail: String,
    },
    /// Anything else (a file transfer, a channel error).
    #[error("{node}: {msg}")]
    Other {
        /// The node's name.
        node: String,
        /// What failed.
        msg: String,
    },
}

/// Runs commands and moves files on one node. Blocking; callers in async code use
/// `spawn_blocking`. One connection per node, reused; implementations are thread-safe.
pub trait Remote: Send + Sync {
    /// The node this remote runs commands on.
    fn node(&self) -> &Node;
    /// Runs a command; a non-zero exit is *not* an error here (see [`Remote::exec_ok`]).
    fn exec(&self, cmd: &Cmd) -> Result<Output, RemoteError>;
    /// Copies the local file `local` to path `remote` on the node.
    fn upload(&self, local: &Path, remote: &str) -> Result<(), RemoteError>;
    /// Copies file `remote` from the node to the local path `local`.
    fn download(&self, remote: &str, local: &Path) -> Result<(), RemoteError>;

    /// Runs a command and turns a non-zero exit into [`RemoteError::Failed`] naming the node,
    /// the command, the status and the tail of stderr.
    fn exec_ok(&self, cmd: &Cmd) -> Result<Output, RemoteError> {
        let out = self.exec(cmd)?;
        if out.status != 0 {
            return Err(RemoteError::Failed {
                node: self.node().name.clone(),
                cmd: cmd.display(),
                status: out.status,
                stderr_tail: tail(&out.stderr, 400),
            });
        }
        Ok(out)
    }
}

/// The last `max` bytes of `s` (on a char boundary), trimmed.
pub fn tail(s: &str, max: usize) -> String {
    let t = s.trim();
    if t.len() <= max {
        return t.to_string();
    }
    let start = t.ceil_char_boundary(t.len() - max);
    format!("…{}", &t[start..])
}

/// Runs `f(i, &items[i])` for every item in parallel, one scoped thread each, and returns the
/// results in item order; a panic in `f` is re-raised here. netsplit's one node fan-out: "run
/// this on every node and collect per-node results" — over remotes, nodes or indexes.
pub fn fan_out<I, T, F>(items: &[I], f: F) -> Vec<T>
where
    I: Sync,
    T: Send,
    F: Fn(usize, &I) -> T + Sync,
{
    // At most FAN_OUT_THREADS threads, each taking the next item: a node list of thousands
    // must not ask the OS for thousands of threads (it refuses, and spawning panics).
    let next = std::sync::atomic::AtomicUsize::new(0);
    let workers = items.len().min(FAN_OUT_THREADS);
    let mut slots: Vec<Option<T>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                let (f, next) = (&f, &next);
                s.spawn(move || {
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(item) = items.get(i) else { break };
                        done.push((i, f(i, item)));
                    }
                    done
                })
            })
            .collect();
        let mut slots: Vec<Option<T>> = (0..items.len()).map(|_| None).collect();
        for h in handles {
            match h.join() {
                Ok(done) => {
                    for (i, v) in done {
                        slots[i] = Some(v);
                    }
                }
                Err(p) => std::panic::resume_unwind(p),
            }
        }
        slots
    });
    slots
        .iter_mut()
        .map(|s| s.take().expect("every item was done by a worker"))
        .collect()
}

/// The most threads [`fan_out`] runs at once.
pub(crate) const FAN_OUT_THREADS: usize = 64;

/// [`fan_out`] over remotes, each result paired with its node's name.
pub fn on_all<R, T, F>(remotes: &[R], f: F) -> Vec<(String, T)>
where
    R: std::ops::Deref + Sync,
    R::Target: Remote,
    F: Fn(&R::Target) -> T + Sync,
    T: Send,
{
    fan_out(remotes, |_, r| (r.node().name.clone(), f(&**r)))
}

impl RemoteError {
    /// The node this error is about.
    pub fn node(&self) -> &str {
        match self {
            RemoteError::Connect { node, .. }
            | RemoteError::Auth { node, .. }
            | RemoteError::HostKey { node, .. }
            | RemoteError::Timeout { node, .. }
            | RemoteError::Failed { node, .. }
            | RemoteError::Other { node, .. } => node,
        }
    }

    /// True for errors the user fixes (unreachable node, wrong key, changed host key): at the
    /// CLI edge these exit 254, not 255.
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self,
            RemoteError::Connect { .. } | RemoteError::Auth { .. } | RemoteError::HostKey { .. }
        )
    }
}

/// Converts a [`RemoteError`] for the CLI edge: connection, authentication and host-key errors
/// become [`netsplit_check::error::BadInput`] (exit 254), the rest stay harness errors (exit 255).
pub fn remote_error(e: RemoteError) -> anyhow::Error {
    if e.is_bad_input() {
        netsplit_check::error::bad_input(e.to_string())
    } else {
        anyhow::Error::new(e)
    }
}

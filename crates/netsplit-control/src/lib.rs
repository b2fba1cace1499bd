//! netsplit-control: control of nodes — the [`Remote`] seam through which the harness runs commands and moves files
//! on a node, and the [`Cmd`] type that is the only way to build a command line.
//!
//! Commands are argument vectors; [`Cmd::shell_line`] escapes them exactly once, here, so user
//! values are never concatenated into shell strings anywhere else. Implementations of
//! [`Remote`]: SSH (real machines, VMs and local namespace nodes alike), in [`ssh`].
//!
//! Around the seam: [`util`] holds the node utilities that targets and nemeses build on
//! (packages, files, daemons by pid file, ports), [`faketime`] how processes are started under
//! libfaketime (the clock faults on local nodes), [`route`] the host's routing checks that keep
//! traffic to local clusters on their bridge, and [`fan_out`] runs a closure on every node in
//! parallel. Which nodes a run uses is decided above this crate (the harness's `nodes` module).

pub mod cluster;
pub mod faketime;
pub mod netns;
pub mod route;
pub mod shell;
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
    pub fn new(program: impl Into<String>) -> Cmd {
        Cmd {
            argv: vec![program.into()],
            ..Cmd::default()
        }
    }
    pub fn arg(mut self, a: impl Into<String>) -> Cmd {
        self.argv.push(a.into());
        self
    }
    pub fn args<I, S>(mut self, args: I) -> Cmd
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.argv.extend(args.into_iter().map(Into::into));
        self
    }
    pub fn env(mut self, k: impl Into<String>, v: impl Into<String>) -> Cmd {
        self.env.push((k.into(), v.into()));
        self
    }
    pub fn cwd(mut self, dir: impl Into<String>) -> Cmd {
        self.cwd = Some(dir.into());
        self
    }
    pub fn sudo(mut self) -> Cmd {
        self.sudo = true;
        self
    }
    pub fn stdin(mut self, bytes: impl Into<Vec<u8>>) -> Cmd {
        self.stdin = Some(bytes.into());
        self
    }
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
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Why a remote operation failed. Every variant names the node.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    #[error("{node}: cannot connect to {addr}: {msg}")]
    Connect {
        node: String,
        addr: String,
        msg: String,
    },
    #[error("{node}: authentication failed: {msg}")]
    Auth { node: String, msg: String },
    #[error("{node}: host key check failed: {msg}")]
    HostKey { node: String, msg: String },
    #[error("{node}: `{cmd}` timed out after {secs:.1}s")]
    Timeout {
        node: String,
        cmd: String,
        secs: f64,
    },
    #[error("{node}: `{cmd}` exited {status}: {stderr_tail}")]
    Failed {
        node: String,
        cmd: String,
        status: i32,
        stderr_tail: String,
    },
    #[error("{node}: {msg}")]
    Other { node: String, msg: String },
}

/// Runs commands and moves files on one node. Blocking; callers in async code use
/// `spawn_blocking`. One connection per node, reused; implementations are thread-safe.
pub trait Remote: Send + Sync {
    fn node(&self) -> &Node;
    /// Runs a command; a non-zero exit is *not* an error here (see [`Remote::exec_ok`]).
    fn exec(&self, cmd: &Cmd) -> Result<Output, RemoteError>;
    fn upload(&self, local: &Path, remote: &str) -> Result<(), RemoteError>;
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
pub const FAN_OUT_THREADS: usize = 64;

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

//! The `custom` target: a client program in any language, speaking JSON lines over its stdin and
//! stdout (docs/custom-clients.md), drives the user's own database.
//!
//! netsplit runs the program (`target.opts.client`, a shell command line run with `sh -c` on the
//! control node, in netsplit's working directory) once per worker process: a worker whose
//! operation ends `info` continues as a new process (`crate::runner`), and the program is started
//! again as that process ([`Client::set_process`]). Its environment says where it is:
//! `NETSPLIT_NODE` (the node's host, empty without nodes), `NETSPLIT_NODE_NAME`,
//! `NETSPLIT_NODE_INDEX`, `NETSPLIT_NODES` (every node's host, comma-separated),
//! `NETSPLIT_PROCESS`, `NETSPLIT_RUN_DIR`, `NETSPLIT_WORKLOAD`, `NETSPLIT_VOCABULARY`,
//! `NETSPLIT_WORKLOAD_PARAMS` (the workload's client parameters as JSON, e.g. the bank's
//! accounts and total) and `NETSPLIT_OPT_<KEY>` for every other target option (key upper-cased,
//! `-` as `_`). Its stderr goes to `<run>/clients/<process>.log` (the run directory comes from
//! [`Db::on_run_dir`]).
//!
//! Every request is one line, every answer one line ([`protocol`]). A malformed answer, a wrong
//! `type`, a line written before its request was sent (the program answers before reading, or
//! twice), the program exiting or closing its stdout (or exiting while a process it started
//! holds its stdout) is recorded as `info` with the reason
//! ([`protocol::Failure`]); no answer within `run.op_timeout` is the runner's `info` (it drops
//! the client and opens a fresh one). Either way the program's whole process group is killed,
//! and the next operation runs in a fresh program as the new process.
//!
//! With `deploy: existing` and nodes, the run's faults reach the user's database through the
//! common process options (`process=`, `service=`, `pidfile=`; docs/deployed-databases.md):
//! the target implements [`super::Attach`] by trusting the program with the data — it gets
//! `NETSPLIT_NAMESPACE` (`netsplit/<run id>/`), the prefix every key it writes should carry,
//! and deleting what it wrote is its own business (netsplit cannot know its data model).
//!
//! The target installs and starts nothing (setup and teardown do nothing) and speaks every
//! vocabulary (`*`): the workload's operations go to the program as they are. A request of a
//! vocabulary netsplit knows is first read as its typed op (`super::vocab::Op::parse`), as for
//! every other target, and one that does not fit is `fail` without reaching the program; an
//! application's own vocabulary goes through unread. Nodes are optional
//! ([`DbType::NODES_OPTIONAL`]): with `--cluster`/`--nodes` the clients are bound to nodes
//! round-robin and node faults (partitions, packet faults) can run; without, the run is
//! client-only.

pub mod protocol;

use super::vocab::{Op, Vocabulary};
use super::{BoxFuture, Client, Completion, Db, DbEnv, DbType};
use crate::error::bad_input;
use anyhow::Result;
use protocol::{Failure, MAX_ANSWER_BYTES};
use serde::Deserialize;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout};

/// The custom target's own option; every other `target.opts` key goes to the program as
/// `NETSPLIT_OPT_<KEY>`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct CustomOpts {
    /// The client program's command line (run with `sh -c`).
    pub client: Option<String>,
}

/// What every client of a run shares.
struct Shared {
    command: String,
    /// Environment every program gets (per-client variables are added at spawn).
    env: Vec<(String, String)>,
    /// `(name, host)` of each node.
    nodes: Vec<(String, String)>,
    run_dir: Mutex<Option<PathBuf>>,
    /// The run's vocabulary, when netsplit knows it (requests are checked against it).
    vocabulary: Option<Vocabulary>,
}

/// The custom target (see the module docs).
pub struct Custom {
    shared: Arc<Shared>,
}

impl DbType for Custom {
    const NAME: &'static str = "custom";
    const ABOUT: &'static str =
        "your own client program, any language, JSON lines on stdin/stdout (--target-opt client=CMD)";
    const NEEDS_NODES: bool = false;
    const NODES_OPTIONAL: bool = true;
    const VOCABULARIES: &'static [&'static str] = &["*"];
    type Options = CustomOpts;

    fn build(env: DbEnv, opts: CustomOpts) -> Result<Custom> {
        let origin = env.plan.origins.at("target.opts.client");
        let Some(command) = opts.client.filter(|c| !c.trim().is_empty()) else {
            return Err(bad_input(format!(
                "{origin}target custom needs target.opts.client, the client program's command \
                 line (--target-opt client='python3 my_client.py'; docs/custom-clients.md)"
            )));
        };
        check_command(&command)
            .map_err(|e| bad_input(format!("{origin}target.opts.client: {e}")))?;
        let mut vars = vec![
            ("NETSPLIT_WORKLOAD".to_string(), env.workload.name.clone()),
            (
                "NETSPLIT_VOCABULARY".to_string(),
                env.workload.vocabulary.clone(),
            ),
            (
                "NETSPLIT_WORKLOAD_PARAMS".to_string(),
                env.workload.params.to_string(),
            ),
            (
                "NETSPLIT_NODES".to_string(),
                env.nodes
                    .iter()
                    .map(|n| n.host.as_str())
                    .collect::<Vec<_>>()
                    .join(","),
            ),
        ];
        vars.push(("NETSPLIT_NAMESPACE".to_string(), env.deploy.namespace()));
        for (k, v) in &env.plan.target.opts {
            if k != "client" {
                vars.push((opt_var(k), crate::plan::value_as_text(v)));
            }
        }
        Ok(Custom {
            shared: Arc::new(Shared {
                command,
                env: vars,
                nodes: env
                    .nodes
                    .iter()
                    .map(|n| (n.name.clone(), n.host.clone()))
                    .collect(),
                run_dir: Mutex::new(None),
                vocabulary: Vocabulary::from_name(&env.workload.vocabulary),
            }),
        })
    }
}

/// `NETSPLIT_OPT_<KEY>`: the option's key upper-cased, anything but letters and digits as `_`.
pub fn opt_var(key: &str) -> String {
    let k: String = key
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("NETSPLIT_OPT_{k}")
}

/// Refuses a command line whose program cannot be found, so a typo is one line before the run
/// rather than a run of crashed clients. Only a plain first word is checked (not one the shell
/// would expand, nor a shell builtin).
fn check_command(command: &str) -> std::result::Result<(), String> {
    let first = command
        .split_whitespace()
        .find(|w| !w.contains('=') || w.starts_with('='))
        .unwrap_or("");
    if first.is_empty()
        || first.contains(|c: char| "$`'\"\\(){};&|<>*?~[]".contains(c))
        || ["exec", "cd", ".", "eval", "source", "set", "export", "!"].contains(&first)
    {
        return Ok(());
    }
    if first.contains('/') {
        let p = Path::new(first);
        return match std::fs::metadata(p) {
            Ok(m) if m.is_file() => Ok(()),
            Ok(_) => Err(format!("{first} is not a file")),
            Err(e) => Err(format!("{first}: {e}")),
        };
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    if std::env::split_paths(&path).any(|d| d.join(first).is_file()) {
        Ok(())
    } else {
        Err(format!("{first}: command not found (in PATH)"))
    }
}

impl Db for Custom {
    fn name(&self) -> &str {
        "custom"
    }
    fn on_run_dir(&self, dir: &Path) {
        if let Ok(mut g) = self.shared.run_dir.lock() {
            *g = Some(dir.to_path_buf());
        }
    }
    fn client(&self, node: Option<usize>) -> BoxFuture<'_, Result<Box<dyn Client>>> {
        let c = self.open(node);
        Box::pin(async move { Ok(Box::new(c) as Box<dyn Client>) })
    }
    fn as_attach(&self) -> Option<&dyn super::Attach> {
        Some(self)
    }
}

/// A database the user deployed, reached by the user's own program: netsplit has nothing of its
/// own to probe, create or delete there (see the module docs).
impl super::Attach for Custom {
    fn probe(&self, i: usize) -> Result<String> {
        let (name, host) = self
            .shared
            .nodes
            .get(i)
            .ok_or_else(|| anyhow::anyhow!("no node {i}"))?;
        Ok(format!(
            "{name} ({host}): reached by the client program `{}`",
            self.shared.command
        ))
    }
    fn attach(&self) -> Result<()> {
        Ok(())
    }
    fn delete_data(&self) -> Result<()> {
        Ok(())
    }
}

impl Custom {
    /// A client bound to node `i` (what [`Db::client`] boxes; `netsplit client-check` uses
    /// it directly, for [`CustomClient::last_answer`]).
    pub fn open(&self, node: Option<usize>) -> CustomClient {
        CustomClient {
            shared: self.shared.clone(),
            node,
            process: 0,
            program: None,
            last_answer: None,
        }
    }

    /// The client program's command line.
    pub fn command(&self) -> &str {
        &self.shared.command
    }
}

/// One worker's client: the program running as its current process, if started.
pub struct CustomClient {
    shared: Arc<Shared>,
    node: Option<usize>,
    process: u64,
    program: Option<Program>,
    /// The last line read from a program (its answer, or what it wrote instead).
    last_answer: Option<Vec<u8>>,
}

/// A running client program.
struct Program {
    child: Child,
    /// `None` once closed (end of input).
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    /// Its process group (the program's pid: it leads its own group).
    pgid: Option<i32>,
    log: Option<PathBuf>,
    reaped: bool,
}

impl Program {
    /// Kills the program's whole process group (its children too).
    fn kill_group(&mut self) {
        if let Some(g) = self.pgid.take() {
            // SAFETY: no memory is touched; a group that is gone gives ESRCH.
            unsafe {
                libc::killpg(g, libc::SIGKILL);
            }
        }
        let _ = self.child.start_kill();
    }

    /// How it ended (waiting up to a second for it to exit), then its group killed: the
    /// reason for a crashed client, with the last line it wrote on stderr.
    async fn ended(&mut self) -> String {
        let status = match tokio::time::timeout(Duration::from_secs(1), self.child.wait()).await {
            Ok(Ok(s)) => {
                self.reaped = true;
                match (s.code(), std::os::unix::process::ExitStatusExt::signal(&s)) {
                    (Some(c), _) => format!("exited with status {c}"),
                    (None, Some(sig)) => format!("was killed by signal {sig}"),
                    _ => format!("ended ({s})"),
                }
            }
            Ok(Err(e)) => format!("ended (waiting for it: {e})"),
            Err(_) => "closed its stdout and kept running".to_string(),
        };
        self.kill_group();
        match self.log.as_deref().and_then(last_line) {
            Some(l) => format!("{status} (stderr: {})", crate::history::limits::quote(&l)),
            None => status,
        }
    }
}

impl Program {
    /// Reads one answer line into `buf` (at most [`MAX_ANSWER_BYTES`] and its newline). When
    /// the program exits first, what it wrote before exiting is still read; a process it
    /// started that keeps its stdout open (so no end of file comes) is not waited for.
    async fn read_answer(&mut self, buf: &mut Vec<u8>) -> std::io::Result<usize> {
        let limit = MAX_ANSWER_BYTES as u64 + 1;
        let Program { child, stdout, .. } = self;
        {
            let mut bounded = (&mut *stdout).take(limit);
            tokio::select! {
                r = bounded.read_until(b'\n', buf) => return r,
                _ = child.wait() => {}
            }
        }
        // `read_until` keeps what it had read in `buf`; go on for what is already in the pipe.
        let rest = limit.saturating_sub(buf.len() as u64);
        let mut bounded = (&mut *stdout).take(rest);
        match tokio::time::timeout(EXITED_GRACE, bounded.read_until(b'\n', buf)).await {
            Ok(r) => r.map(|_| buf.len()),
            Err(_) => Err(std::io::Error::other(
                "a process it started still holds its stdout open",
            )),
        }
    }

    /// What the program wrote that nobody asked for yet (up to one line, or 4 KiB), waiting up
    /// to `wait` for it; `None` when nothing came (or its stdout is at its end).
    async fn pending_output(&mut self, wait: Duration) -> Option<Vec<u8>> {
        let avail = match tokio::time::timeout(wait, self.stdout.fill_buf()).await {
            Ok(Ok(b)) if !b.is_empty() => b,
            _ => return None,
        };
        let end = avail
            .iter()
            .position(|&b| b == b'\n')
            .map(|i| i + 1)
            .unwrap_or(avail.len())
            .min(4096);
        let line = avail[..end].to_vec();
        self.stdout.consume(end);
        Some(line)
    }
}

/// How long the rest of an answer may take to arrive once its program has exited.
const EXITED_GRACE: Duration = Duration::from_millis(300);

impl Drop for Program {
    fn drop(&mut self) {
        if !self.reaped {
            self.kill_group();
        }
    }
}

/// The last non-empty line of a file (its last 4 KiB), if any.
fn last_line(path: &Path) -> Option<String> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(path).ok()?;
    let len = f.metadata().ok()?.len();
    f.seek(SeekFrom::Start(len.saturating_sub(4096))).ok()?;
    let mut buf = Vec::new();
    f.read_to_end(&mut buf).ok()?;
    String::from_utf8_lossy(&buf)
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(str::to_string)
}

impl CustomClient {
    /// Starts the program as the current process.
    fn start(&mut self) -> std::io::Result<()> {
        let sh = &self.shared;
        let run_dir = sh.run_dir.lock().ok().and_then(|g| g.clone());
        let (stderr, log) = match &run_dir {
            Some(d) => {
                let dir = d.join("clients");
                std::fs::create_dir_all(&dir)?;
                let path = dir.join(format!("{}.log", self.process));
                let f = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&path)?;
                (Stdio::from(f), Some(path))
            }
            None => (Stdio::inherit(), None),
        };
        let (name, host) = match self.node.and_then(|i| sh.nodes.get(i)) {
            Some((n, h)) => (n.as_str(), h.as_str()),
            None => ("", ""),
        };
        let mut cmd = tokio::process::Command::new("sh");
        cmd.arg("-c")
            .arg(&sh.command)
            .envs(sh.env.iter().map(|(k, v)| (k, v)))
            .env("NETSPLIT_NODE", host)
            .env("NETSPLIT_NODE_NAME", name)
            .env(
                "NETSPLIT_NODE_INDEX",
                self.node.map(|i| i.to_string()).unwrap_or_default(),
            )
            .env("NETSPLIT_PROCESS", self.process.to_string())
            .env(
                "NETSPLIT_RUN_DIR",
                run_dir
                    .as_deref()
                    .map(Path::to_string_lossy)
                    .unwrap_or_default()
                    .as_ref(),
            )
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .process_group(0)
            .kill_on_drop(true);
        let mut child = cmd.spawn()?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(std::io::Error::other("no pipes to the program"));
        };
        self.program = Some(Program {
            pgid: child.id().map(|p| p as i32),
            child,
            stdin: Some(stdin),
            stdout: BufReader::new(stdout),
            log,
            reaped: false,
        });
        Ok(())
    }

    /// The line the program wrote in answer to the last request (up to its newline), if any.
    pub fn last_answer(&self) -> Option<&[u8]> {
        self.last_answer.as_deref()
    }

    /// Waits up to `wait` for output the program writes after its answer, before the next
    /// request (what `netsplit client-check` looks for: a program that answers before reading
    /// its request, or twice per request, is always a line ahead). The line, if any.
    pub async fn extra_output(&mut self, wait: Duration) -> Option<Vec<u8>> {
        self.program.as_mut()?.pending_output(wait).await
    }

    /// The process it runs as.
    pub fn process(&self) -> u64 {
        self.process
    }

    /// Sends one request and reads the answer: what [`Client::invoke`] does.
    pub async fn call(&mut self, f: &str, value: &Value) -> Completion {
        self.last_answer = None;
        if self.program.is_none() {
            if let Err(e) = self.start() {
                return Failure::NoStart
                    .info(value, &format!("sh -c {:?}: {e}", self.shared.command));
            }
        }
        let Some(p) = self.program.as_mut() else {
            return Failure::NoStart.info(value, "no program");
        };
        // A line already waiting was not an answer to this request: the program answers
        // before reading its requests, or more than once per request. Taking it as this
        // request's answer would pair every later answer with the wrong operation.
        if let Some(early) = p.pending_output(Duration::ZERO).await {
            let shown = crate::history::limits::quote(&String::from_utf8_lossy(&early));
            self.last_answer = Some(early);
            p.kill_group();
            self.program = None;
            return Failure::Garbage.info(
                value,
                &format!(
                    "wrote `{shown}` before this request was sent (it answers before reading \
                     its request, or twice per request)"
                ),
            );
        }
        let line = protocol::request_line(f, value);
        let sent = async {
            let Some(stdin) = p.stdin.as_mut() else {
                return Err(std::io::Error::other("its stdin is closed"));
            };
            stdin.write_all(&line).await?;
            stdin.flush().await
        }
        .await;
        if let Err(e) = sent {
            let how = p.ended().await;
            self.program = None;
            return Failure::Crashed.info(value, &format!("{how}; the request was not sent ({e})"));
        }
        let mut buf = Vec::new();
        let read = p.read_answer(&mut buf).await;
        if !buf.is_empty() {
            self.last_answer = Some(buf.clone());
        }
        let garbage = |p: &mut Program, why: String| {
            p.kill_group();
            Failure::Garbage.info(value, &why)
        };
        let c = match read {
            Err(e) => {
                let how = p.ended().await;
                Failure::Crashed.info(value, &format!("{how} (reading its answer: {e})"))
            }
            Ok(0) => {
                let how = p.ended().await;
                Failure::Crashed.info(value, &format!("{how} before answering"))
            }
            Ok(_) if buf.len() > MAX_ANSWER_BYTES => garbage(
                p,
                format!("an answer line longer than {MAX_ANSWER_BYTES} bytes"),
            ),
            Ok(_) if buf.last() != Some(&b'\n') => {
                let how = p.ended().await;
                Failure::Crashed.info(
                    value,
                    &format!(
                        "{how} in the middle of its answer `{}`",
                        crate::history::limits::quote(&String::from_utf8_lossy(&buf))
                    ),
                )
            }
            Ok(_) => match protocol::parse_answer(&buf, value) {
                Ok(c) => return c,
                Err(why) => garbage(p, why),
            },
        };
        // A protocol failure: this program is done (its group was killed).
        self.program = None;
        c
    }
}

impl Client for CustomClient {
    fn invoke<'a>(&'a mut self, f: &'a str, value: &'a Value) -> BoxFuture<'a, Completion> {
        if let Some(Err(e)) = self.shared.vocabulary.map(|v| Op::parse(v, f, value)) {
            let refused = Completion::fail(value.clone(), format!("custom client: {e} (not sent)"));
            return Box::pin(std::future::ready(refused));
        }
        Box::pin(self.call(f, value))
    }

    fn set_process(&mut self, process: u64) {
        if self.program.is_some() && self.process == process {
            return;
        }
        // A new process is a new program: the old one (if any) is killed with its group.
        self.program = None;
        self.process = process;
        // Started now, so its start-up overlaps the wait for the next operation; if it cannot
        // start, the next invoke says why.
        let _ = self.start();
    }

    fn close(&mut self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            if let Some(mut p) = self.program.take() {
                // End of input: a polite program exits; whatever is left is killed.
                drop(p.stdin.take());
                let _ = tokio::time::timeout(Duration::from_millis(200), p.child.wait()).await;
                p.kill_group();
            }
        })
    }
}

#[cfg(test)]
mod tests;

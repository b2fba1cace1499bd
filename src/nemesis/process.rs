//! Process faults: pause (SIGSTOP) and resume (SIGCONT), kill (SIGKILL) and restart, graceful
//! stop and start — of the target's processes, found by pid file, never by name.
//!
//! The nemesis does not know how a database starts; it asks through [`Processes`], which the
//! runner implements on top of the target. [`PidFile`] holds the primitives every target shares
//! (read a pid file, signal it, read the process state from `/proc/<pid>/stat`), which is also
//! what `verify_clean` uses to prove nothing is left stopped.

use crate::control::{Cmd, Remote, RemoteError};
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(20);

/// What the nemesis needs from the target to act on its processes on one node. Implementations
/// must be idempotent where the name says so: `resume` of a running process and `start` of a
/// started one are no-ops.
pub trait Processes: Send + Sync {
    /// Database name for messages and notes (`etcd`).
    fn name(&self) -> &str;
    /// SIGSTOP every target process on the node.
    fn pause(&self, remote: &dyn Remote) -> anyhow::Result<()>;
    /// SIGCONT every target process on the node (idempotent).
    fn resume(&self, remote: &dyn Remote) -> anyhow::Result<()>;
    /// SIGKILL every target process on the node.
    fn kill(&self, remote: &dyn Remote) -> anyhow::Result<()>;
    /// Graceful stop (the target's own way: SIGTERM and wait).
    fn stop(&self, remote: &dyn Remote) -> anyhow::Result<()>;
    /// Start the target on the node if it is not running (idempotent).
    fn start(&self, remote: &dyn Remote) -> anyhow::Result<()>;
    /// Pids of the target's live processes on the node (from its pid files).
    fn pids(&self, remote: &dyn Remote) -> anyhow::Result<Vec<u32>>;
    /// The nodes that currently lead (empty when none, or the target has no such notion).
    fn primaries(&self) -> Vec<String> {
        Vec::new()
    }
    /// False when the target's binaries ignore libfaketime (Go, static binaries): clock faults
    /// on faketime nodes then have no effect, and results must say so.
    fn honours_faketime(&self) -> bool {
        true
    }
}

/// Process state letter from a `/proc/<pid>/stat` line (`R`, `S`, `D`, `T`, `t`, `Z`, …).
/// The command name is in parentheses and may itself contain spaces and parentheses, so the
/// state is the first field after the *last* `)`.
pub fn parse_stat_state(stat: &str) -> Option<char> {
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().next()?.chars().next()
}

/// True for a stopped process (`T` by signal, `t` by tracer).
pub fn is_stopped(state: char) -> bool {
    state == 'T' || state == 't'
}

/// A process identified by a pid file on a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PidFile {
    pub path: String,
}

impl PidFile {
    pub fn new(path: impl Into<String>) -> PidFile {
        PidFile { path: path.into() }
    }

    /// The pid in the file, or `None` when the file is missing or empty.
    pub fn read(&self, remote: &dyn Remote) -> Result<Option<u32>, RemoteError> {
        let out = remote.exec(&Cmd::new("cat").arg(&self.path).timeout(TIMEOUT))?;
        if out.status != 0 {
            return Ok(None);
        }
        let t = out.stdout.trim();
        if t.is_empty() {
            return Ok(None);
        }
        t.parse::<u32>().map(Some).map_err(|_| RemoteError::Other {
            node: remote.node().name.clone(),
            msg: format!("pid file {} holds {t:?}, not a pid", self.path),
        })
    }

    /// The process state letter, `None` when there is no such live process.
    pub fn state(&self, remote: &dyn Remote) -> Result<Option<char>, RemoteError> {
        let Some(pid) = self.read(remote)? else {
            return Ok(None);
        };
        state_of(remote, pid)
    }

    /// Sends `signal` (`STOP`, `CONT`, `KILL`, `TERM`) to the pid in the file. Returns whether a
    /// process was signalled (false: no pid file, or the process is gone).
    pub fn signal(&self, remote: &dyn Remote, signal: &str) -> Result<bool, RemoteError> {
        let Some(pid) = self.read(remote)? else {
            return Ok(false);
        };
        let out = remote.exec(&signal_cmd(pid, signal))?;
        Ok(out.status == 0)
    }
}

/// `kill -<SIG> <pid>`.
pub fn signal_cmd(pid: u32, signal: &str) -> Cmd {
    Cmd::new("kill")
        .args([format!("-{signal}"), pid.to_string()])
        .sudo()
        .timeout(TIMEOUT)
}

/// The state letter of `pid` on the node, `None` when it does not exist (or is a zombie).
pub fn state_of(remote: &dyn Remote, pid: u32) -> Result<Option<char>, RemoteError> {
    let out = remote.exec(
        &Cmd::new("cat")
            .arg(format!("/proc/{pid}/stat"))
            .timeout(TIMEOUT),
    )?;
    if out.status != 0 {
        return Ok(None);
    }
    Ok(parse_stat_state(&out.stdout).filter(|s| *s != 'Z' && *s != 'X'))
}

/// Starts `cmd` in the background on the node, detached, with its pid written to `pid_file`
/// and its output appended to `log_file`. The wrapper script is fixed; the paths and the
/// command's own argv travel as positional arguments, so nothing is spliced into shell text.
pub fn spawn_daemon_cmd(cmd: &Cmd, pid_file: &str, log_file: &str) -> Cmd {
    const SCRIPT: &str = "pid=$1; log=$2; shift 2; \
                          nohup \"$@\" >>\"$log\" 2>&1 </dev/null & echo $! > \"$pid\"";
    Cmd {
        argv: ["sh", "-c", SCRIPT, "sh", pid_file, log_file]
            .into_iter()
            .map(String::from)
            .chain(cmd.argv.iter().cloned())
            .collect(),
        env: cmd.env.clone(),
        cwd: cmd.cwd.clone(),
        sudo: cmd.sudo,
        stdin: None,
        timeout: Some(TIMEOUT),
    }
}

/// A generic pid-file daemon: one process per node, started by a command built per node,
/// controlled only through its pid file. Useful for targets whose lifecycle is "run this
/// binary", and for tests of the nemesis itself.
pub struct PidFileDaemon {
    /// Name for messages (`sleep`, `etcd`).
    pub name: String,
    /// Pid file name inside the node's working directory.
    pub pid_file: String,
    /// Builds the start command for a node.
    pub start_cmd: Box<dyn Fn(&crate::control::Node) -> Cmd + Send + Sync>,
    /// Whether the binary honours libfaketime.
    pub faketime: bool,
    /// How long a graceful stop waits before SIGKILL.
    pub stop_grace: Duration,
}

impl PidFileDaemon {
    fn pid_path(&self, remote: &dyn Remote) -> PidFile {
        PidFile::new(format!(
            "{}/{}",
            remote.node().workdir.trim_end_matches('/'),
            self.pid_file
        ))
    }

    fn alive(&self, remote: &dyn Remote) -> Result<Option<u32>, RemoteError> {
        let pf = self.pid_path(remote);
        let Some(pid) = pf.read(remote)? else {
            return Ok(None);
        };
        Ok(state_of(remote, pid)?.map(|_| pid))
    }

    fn wait_gone(
        &self,
        remote: &dyn Remote,
        pid: u32,
        limit: Duration,
    ) -> Result<bool, RemoteError> {
        let start = std::time::Instant::now();
        while start.elapsed() < limit {
            if state_of(remote, pid)?.is_none() {
                return Ok(true);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(false)
    }
}

impl Processes for PidFileDaemon {
    fn name(&self) -> &str {
        &self.name
    }

    fn pause(&self, remote: &dyn Remote) -> anyhow::Result<()> {
        if !self.pid_path(remote).signal(remote, "STOP")? {
            anyhow::bail!(
                "{}: {} is not running, nothing to pause",
                remote.node().name,
                self.name
            );
        }
        Ok(())
    }

    fn resume(&self, remote: &dyn Remote) -> anyhow::Result<()> {
        self.pid_path(remote).signal(remote, "CONT")?;
        Ok(())
    }

    fn kill(&self, remote: &dyn Remote) -> anyhow::Result<()> {
        if let Some(pid) = self.alive(remote)? {
            remote.exec(&signal_cmd(pid, "KILL"))?;
            self.wait_gone(remote, pid, Duration::from_secs(5))?;
        }
        Ok(())
    }

    fn stop(&self, remote: &dyn Remote) -> anyhow::Result<()> {
        if let Some(pid) = self.alive(remote)? {
            // A stopped process cannot act on SIGTERM: continue it first.
            remote.exec(&signal_cmd(pid, "CONT"))?;
            remote.exec(&signal_cmd(pid, "TERM"))?;
            if !self.wait_gone(remote, pid, self.stop_grace)? {
                remote.exec(&signal_cmd(pid, "KILL"))?;
                self.wait_gone(remote, pid, Duration::from_secs(5))?;
            }
        }
        Ok(())
    }

    fn start(&self, remote: &dyn Remote) -> anyhow::Result<()> {
        if self.alive(remote)?.is_some() {
            return Ok(());
        }
        let node = remote.node().clone();
        let dir = node.workdir.trim_end_matches('/').to_string();
        let cmd = (self.start_cmd)(&node);
        remote.exec_ok(&spawn_daemon_cmd(
            &cmd,
            &format!("{dir}/{}", self.pid_file),
            &format!("{dir}/{}.log", self.name),
        ))?;
        Ok(())
    }

    fn pids(&self, remote: &dyn Remote) -> anyhow::Result<Vec<u32>> {
        Ok(self.alive(remote)?.into_iter().collect())
    }

    fn honours_faketime(&self) -> bool {
        self.faketime
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_is_read_after_the_last_parenthesis() {
        assert_eq!(
            parse_stat_state("1234 (etcd) T 1 1234 1234 0 -1"),
            Some('T')
        );
        assert_eq!(parse_stat_state("77 (a) b) (c) S 1 2 3"), Some('S'));
        assert_eq!(parse_stat_state("garbage"), None);
        assert!(is_stopped('T') && is_stopped('t') && !is_stopped('S'));
    }

    #[test]
    fn daemons_start_detached_with_argv_kept_apart_from_the_script() {
        let c = spawn_daemon_cmd(
            &Cmd::new("sleep").arg("10").env("A", "b c"),
            "/w/n1/x.pid",
            "/w/n1/x.log",
        );
        assert_eq!(
            &c.argv[3..],
            ["sh", "/w/n1/x.pid", "/w/n1/x.log", "sleep", "10"]
        );
        assert_eq!(c.env, [("A".to_string(), "b c".to_string())]);
    }

    #[test]
    fn signals_are_sent_by_pid_never_by_name() {
        assert_eq!(
            signal_cmd(42, "STOP").shell_line(false),
            "sudo -n kill -STOP 42"
        );
    }
}

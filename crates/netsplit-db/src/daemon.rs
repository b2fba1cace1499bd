//! Process control by pid file, the way the built-in targets run their databases. A target
//! that implements [`PidFileProcesses`] (where its pid file is on each node, and how to start
//! it) gets [`Kill`] and [`Pause`]; the functions below are the pieces, for targets that need
//! something in between. Processes are found by pid file only, never by name: local nodes share
//! one process table, and `pkill etcd` would hit every node.

use super::{Kill, Pause};
use crate::control::util::{self, Signal};
use crate::control::{Cmd, Remote};
use anyhow::{anyhow, Context, Result};
use std::time::Duration;

/// A database run by pid file, one process per node. Implementing it gives the target
/// [`Kill`] (SIGKILL, graceful stop, start when not running) and [`Pause`] (SIGSTOP/SIGCONT).
pub trait PidFileProcesses: Send + Sync {
    /// What the process is called in messages (`etcd`).
    fn process_name(&self) -> &str;
    /// The remote of node `i` (an error for an index out of range).
    fn process_remote(&self, i: usize) -> Result<&dyn Remote>;
    /// The pid file on node `i`.
    fn pid_file(&self, i: usize) -> Result<String>;
    /// Starts the process on node `i` (called only when it is not running).
    fn start_process(&self, i: usize) -> Result<()>;
    /// How long a graceful stop waits before SIGKILL.
    fn stop_grace(&self) -> Duration {
        Duration::from_secs(10)
    }
}

/// Runs one of the functions below on node `i`'s process: its remote, its pid file and its
/// name.
fn on_process<T: PidFileProcesses + ?Sized, R>(
    t: &T,
    i: usize,
    f: impl FnOnce(&dyn Remote, &str, &str) -> Result<R>,
) -> Result<R> {
    f(t.process_remote(i)?, &t.pid_file(i)?, t.process_name())
}

impl<T: PidFileProcesses> Kill for T {
    fn kill(&self, i: usize) -> Result<()> {
        on_process(self, i, kill)
    }
    fn stop(&self, i: usize) -> Result<()> {
        on_process(self, i, |r, pid_file, what| {
            stop(r, pid_file, what, self.stop_grace())
        })
    }
    fn start(&self, i: usize) -> Result<()> {
        if self.running(i)? {
            return Ok(());
        }
        self.start_process(i)
    }
    fn running(&self, i: usize) -> Result<bool> {
        on_process(self, i, |r, pid_file, _| running(r, pid_file))
    }
}

impl<T: PidFileProcesses> Pause for T {
    fn pause(&self, i: usize) -> Result<()> {
        on_process(self, i, pause)
    }
    fn resume(&self, i: usize) -> Result<()> {
        on_process(self, i, resume)
    }
    fn pids(&self, i: usize) -> Result<Vec<u32>> {
        on_process(self, i, |r, pid_file, _| pids(r, pid_file))
    }
}

/// SIGKILLs the process of a pid file and waits until it is gone (or a zombie), then removes
/// the pid file so that a recycled pid can never be mistaken for it. No process: nothing to do.
pub fn kill(r: &dyn Remote, pid_file: &str, what: &str) -> Result<()> {
    const KILL: &str = r#"p=$(cat "$1" 2>/dev/null); [ -n "$p" ] || exit 0
gone "$p" && { rm -f "$1"; exit 0; }
kill -KILL "$p"
await_gone "$p"
rm -f "$1""#;
    r.exec_ok(&util::process_script(KILL, &[pid_file]).timeout(Duration::from_secs(60)))
        .with_context(|| format!("killing {what} on {}", r.node().name))?;
    Ok(())
}

/// Stops it gracefully: SIGTERM (and SIGCONT, so a paused one hears it), `grace` to exit, then
/// SIGKILL.
pub fn stop(r: &dyn Remote, pid_file: &str, what: &str, grace: Duration) -> Result<()> {
    util::stop_daemon(r, pid_file, grace)
        .with_context(|| format!("stopping {what} on {}", r.node().name))?;
    Ok(())
}

/// SIGSTOP; an error when nothing runs (there is nothing to pause).
pub fn pause(r: &dyn Remote, pid_file: &str, what: &str) -> Result<()> {
    let sent = util::signal_daemon(r, pid_file, Signal::Stop)
        .with_context(|| format!("sending SIGSTOP to {what} on {}", r.node().name))?;
    if !sent {
        return Err(anyhow!(
            "{}: {what} is not running, nothing to pause",
            r.node().name
        ));
    }
    Ok(())
}

/// SIGCONT; not running (killed meanwhile) means nothing is paused: already healed.
pub fn resume(r: &dyn Remote, pid_file: &str, what: &str) -> Result<()> {
    util::signal_daemon(r, pid_file, Signal::Cont)
        .with_context(|| format!("sending SIGCONT to {what} on {}", r.node().name))?;
    Ok(())
}

/// The live process's pid, as a list (empty when none runs).
pub fn pids(r: &dyn Remote, pid_file: &str) -> Result<Vec<u32>> {
    Ok(util::daemon_pid(r, pid_file)?.into_iter().collect())
}

/// Whether the pid file names a live process (a stopped one counts as live).
pub fn running(r: &dyn Remote, pid_file: &str) -> Result<bool> {
    Ok(util::daemon_running(r, pid_file)?)
}

/// The last `lines` lines of a log file on the node, quoted for a one-line error message
/// ([`quote_lines`]).
pub fn log_tail(r: &dyn Remote, log: &str, lines: usize) -> String {
    match r.exec(
        &Cmd::new("tail")
            .args(["-n", &lines.to_string(), "--", log])
            .sudo()
            .timeout(Duration::from_secs(20)),
    ) {
        Ok(o) if o.status == 0 => quote_lines(&o.stdout, lines),
        Ok(o) => format!("(cannot read {log}: {})", o.stderr.trim()),
        Err(e) => format!("(cannot read {log}: {e})"),
    }
}

/// The last `lines` non-empty lines of `text` for an error message that stays one readable
/// line: each cut to [`QUOTE_LINE`] characters, joined with ` | `. The file they come from has
/// the rest, and the error names it.
pub fn quote_lines(text: &str, lines: usize) -> String {
    let kept: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let from = kept.len().saturating_sub(lines);
    kept[from..]
        .iter()
        .map(|l| match l.char_indices().nth(QUOTE_LINE) {
            Some((cut, _)) => format!("{}…", &l[..cut]),
            None => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join(" | ")
}

/// How much of one log line an error quotes.
pub const QUOTE_LINE: usize = 160;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_log_lines_stay_one_short_line() {
        let long = "x".repeat(5000);
        let text = format!("first\n\n{long}\nsecond to last\nlast\n\n");
        let q = quote_lines(&text, 3);
        assert!(!q.contains('\n'), "{q}");
        assert!(q.ends_with("second to last | last"), "{q}");
        assert!(q.len() < 3 * (QUOTE_LINE + 8), "{} chars", q.len());
        assert!(!q.contains("first"));
        assert_eq!(quote_lines("", 3), "");
    }
}

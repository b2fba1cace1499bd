//! Process states: whether a database process a fault paused is still stopped. The heal reads
//! `/proc/<pid>/stat` on the node for every pid the target's `Pause::pids` gives (processes are
//! found by the target, by pid file — never by name).

use crate::control::{Cmd, Remote, RemoteError};
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(20);

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
}

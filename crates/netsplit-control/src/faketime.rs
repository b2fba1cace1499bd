//! Processes under libfaketime: how a target starts its database so that clock faults can move
//! that process's clock on nodes that share one kernel clock (local namespace nodes).
//!
//! The process gets [`faketime_env`]: libfaketime preloaded, pointed at its node's offset file
//! ([`rc_path`]), re-read on every time call; the clock nemesis rewrites that file
//! ([`set_faketime`]). A missing file means "no offset". Statically linked and Go binaries make
//! their own system calls and ignore libfaketime — a target declares that
//! (`netsplit_db::Clock` in the database crate).

use super::{Cmd, Remote, RemoteError};
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(20);

/// Where Debian's libfaketime lives (package `libfaketime`), for `LD_PRELOAD`: the dynamic
/// loader expands `$LIB` to the machine's multiarch directory (`lib/x86_64-linux-gnu`,
/// `lib/aarch64-linux-gnu`, …), so one value serves every architecture.
pub const LIBFAKETIME: &str = "/usr/$LIB/faketime/libfaketime.so.1";

/// [`LIBFAKETIME`] (or any preload path with `$LIB`) as a file on this machine, if present.
pub fn preload_file(preload: &str) -> Option<std::path::PathBuf> {
    let rest = preload.strip_prefix("/usr/$LIB/")?;
    std::fs::read_dir("/usr/lib")
        .ok()?
        .flatten()
        .map(|d| d.path().join(rest))
        .find(|p| p.exists())
}
/// The offset file's name inside the node's working directory.
pub const RC_FILE: &str = "faketime.rc";

/// The offset file of a node whose working directory is `workdir`.
pub fn rc_path(workdir: &str) -> String {
    format!("{}/{RC_FILE}", workdir.trim_end_matches('/'))
}

/// The environment a target sets on the processes it starts on a faketime node, so that the
/// nemesis can move their clock: preload libfaketime, point it at the node's offset file and
/// make it re-read the file on every call.
pub fn faketime_env(workdir: &str) -> Vec<(String, String)> {
    vec![
        ("LD_PRELOAD".into(), LIBFAKETIME.into()),
        ("FAKETIME_TIMESTAMP_FILE".into(), rc_path(workdir)),
        ("FAKETIME_NO_CACHE".into(), "1".into()),
        // Keep monotonic clocks real: timeouts and leases measured with CLOCK_MONOTONIC would
        // otherwise jump too, which is a different fault from a skewed wall clock.
        ("DONT_FAKE_MONOTONIC".into(), "1".into()),
    ]
}

/// A node's clock as the nemesis set it: offset from true time and drift rate.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ClockState {
    /// Milliseconds ahead (positive) or behind (negative) of the control node's clock.
    pub offset_ms: f64,
    /// 1.0 = real speed; 1.1 = 10% fast (libfaketime nodes only).
    pub rate: f64,
}

impl Default for ClockState {
    fn default() -> Self {
        ClockState {
            offset_ms: 0.0,
            rate: 1.0,
        }
    }
}

/// The libfaketime offset-file line for a state: `+2.500s`, `-60.000s x1.1`, `+0.000s`.
pub fn rc_content(state: ClockState) -> String {
    let secs = state.offset_ms / 1000.0;
    let mut s = if secs < 0.0 {
        format!("-{:.3}s", -secs)
    } else {
        format!("+{secs:.3}s")
    };
    if (state.rate - 1.0).abs() > 1e-9 {
        s.push_str(&format!(" x{}", state.rate));
    }
    s.push('\n');
    s
}

/// Writes a file atomically (temp file + rename) so libfaketime never reads half a line.
/// The script is fixed; the path travels as `$1` and the content on stdin. The temp file is the
/// writing shell's own (`$$`): two heals may write one file at once (a second Ctrl-C heals
/// beside the first), and a shared temp name made one `mv` find nothing to move.
pub fn write_file_cmd(path: &str, content: &str) -> Cmd {
    Cmd::new("sh")
        .args([
            "-c",
            "cat > \"$1.tmp.$$\" && mv -f \"$1.tmp.$$\" \"$1\"",
            "sh",
            path,
        ])
        .stdin(content.as_bytes().to_vec())
        .timeout(TIMEOUT)
}

/// Sets a faketime node's clock by rewriting its offset file.
pub fn set_faketime(remote: &dyn Remote, state: ClockState) -> Result<(), RemoteError> {
    let path = rc_path(&remote.node().workdir);
    remote
        .exec_ok(&write_file_cmd(&path, &rc_content(state)))
        .map(|_| ())
}

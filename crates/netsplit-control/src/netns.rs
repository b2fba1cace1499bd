//! A [`Remote`] that runs commands in a local network namespace with `ip netns exec`.
//!
//! The second transport beside SSH (`control::ssh`): for namespace nodes on this machine it reaches
//! the node without SSH (tests, and a fallback when a node's sshd is down). Commands still go
//! through [`Cmd::shell_line`], the one place argument vectors become shell text, and run
//! under `sh -c` inside the namespace. With no namespace it runs on the host itself. Files are
//! on the shared filesystem, so upload and download are copies.

use super::{Cmd, Node, Output, Remote, RemoteError};
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Default limit for a command without its own timeout.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

/// Runs commands in namespace `ns` (or on the host when `None`) as the current user (root).
#[derive(Debug, Clone)]
pub struct NetnsRemote {
    node: Node,
    ns: Option<String>,
}

impl NetnsRemote {
    /// A remote for `node` inside namespace `ns` (`None`: the host itself).
    pub fn new(node: Node, ns: Option<String>) -> NetnsRemote {
        NetnsRemote { node, ns }
    }

    /// The namespace, if any.
    pub fn namespace(&self) -> Option<&str> {
        self.ns.as_deref()
    }

    fn command(&self, cmd: &Cmd) -> Command {
        // We run as root (namespaces need it), so sudo is never added.
        let line = cmd.shell_line(true);
        let mut c = match &self.ns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, "sh", "-c", &line]);
                c
            }
            None => {
                let mut c = Command::new("sh");
                c.args(["-c", &line]);
                c
            }
        };
        c.stdin(if cmd.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        c
    }

    fn other(&self, msg: String) -> RemoteError {
        RemoteError::Other {
            node: self.node.name.clone(),
            msg,
        }
    }
}

impl Remote for NetnsRemote {
    fn node(&self) -> &Node {
        &self.node
    }

    fn exec(&self, cmd: &Cmd) -> Result<Output, RemoteError> {
        let mut child = self
            .command(cmd)
            .spawn()
            .map_err(|e| self.other(format!("cannot run `{}`: {e}", cmd.display())))?;
        if let (Some(bytes), Some(mut sin)) = (cmd.stdin.clone(), child.stdin.take()) {
            // A writer thread, so a command that does not read its input cannot block us.
            std::thread::spawn(move || {
                let _ = sin.write_all(&bytes);
            });
        }
        let mut out = child.stdout.take();
        let mut err = child.stderr.take();
        let out_t = std::thread::spawn(move || {
            let mut s = Vec::new();
            if let Some(o) = out.as_mut() {
                let _ = o.read_to_end(&mut s);
            }
            s
        });
        let err_t = std::thread::spawn(move || {
            let mut s = Vec::new();
            if let Some(e) = err.as_mut() {
                let _ = e.read_to_end(&mut s);
            }
            s
        });
        let limit = cmd.timeout.unwrap_or(DEFAULT_TIMEOUT);
        let start = Instant::now();
        let status = loop {
            match child.try_wait() {
                Ok(Some(st)) => break st,
                Ok(None) if start.elapsed() >= limit => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(RemoteError::Timeout {
                        node: self.node.name.clone(),
                        cmd: cmd.display(),
                        secs: limit.as_secs_f64(),
                    });
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(2)),
                Err(e) => return Err(self.other(format!("waiting for `{}`: {e}", cmd.display()))),
            }
        };
        let stdout = String::from_utf8_lossy(&out_t.join().unwrap_or_default()).into_owned();
        let stderr = String::from_utf8_lossy(&err_t.join().unwrap_or_default()).into_owned();
        Ok(Output {
            status: status.code().unwrap_or(-1),
            stdout,
            stderr,
        })
    }

    fn upload(&self, local: &Path, remote: &str) -> Result<(), RemoteError> {
        std::fs::copy(local, remote)
            .map(|_| ())
            .map_err(|e| self.other(format!("copying {} to {remote}: {e}", local.display())))
    }

    fn download(&self, remote: &str, local: &Path) -> Result<(), RemoteError> {
        std::fs::copy(remote, local)
            .map(|_| ())
            .map_err(|e| self.other(format!("copying {remote} to {}: {e}", local.display())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host() -> NetnsRemote {
        NetnsRemote::new(
            Node {
                name: "local".into(),
                host: "127.0.0.1".into(),
                ssh_port: 22,
                workdir: "/tmp".into(),
            },
            None,
        )
    }

    #[test]
    fn runs_argv_with_hostile_arguments_literally() {
        let out = host()
            .exec(&Cmd::new("printf").args(["%s|", "a b", "$(echo no)", "it's"]))
            .unwrap();
        assert_eq!(out.status, 0);
        assert_eq!(out.stdout, "a b|$(echo no)|it's|");
    }

    #[test]
    fn exec_ok_names_node_status_and_stderr() {
        let e = host()
            .exec_ok(&Cmd::new("sh").args(["-c", "echo boom >&2; exit 3"]))
            .unwrap_err();
        let s = e.to_string();
        assert!(
            s.contains("local") && s.contains("exited 3") && s.contains("boom"),
            "{s}"
        );
    }

    #[test]
    fn stdin_and_timeout_are_honoured() {
        let out = host()
            .exec(&Cmd::new("cat").stdin(b"hello".to_vec()))
            .unwrap();
        assert_eq!(out.stdout, "hello");
        let e = host()
            .exec(
                &Cmd::new("sleep")
                    .arg("5")
                    .timeout(Duration::from_millis(100)),
            )
            .unwrap_err();
        assert!(matches!(e, RemoteError::Timeout { .. }), "{e}");
    }
}

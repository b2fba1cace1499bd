//! `netsplit exec`: run one command on every node (or one) over SSH, in parallel, printing
//! each output line prefixed with the node's name (`n1: …`; stderr lines to stderr).
//!
//! Exit status: 0 when the command succeeded everywhere, 1 when it failed (non-zero exit or
//! timeout) on any node, 254 when a node could not be reached or authenticated.

use crate::control::{self, Cmd, Remote, RemoteError};
use crate::nodes::{self, NodeArgs};
use std::time::Duration;

/// The arguments of `netsplit exec`.
#[derive(Debug, clap::Args)]
pub struct ExecArgs {
    /// Where the nodes are.
    #[command(flatten)]
    pub nodes: NodeArgs,
    /// Run on this node only.
    #[arg(long, value_name = "NAME")]
    pub node: Option<String>,
    /// Run through `sudo -n` when the SSH user is not root.
    #[arg(long)]
    pub sudo: bool,
    /// Give up on a node after this many seconds.
    #[arg(long, value_name = "SECS")]
    pub timeout: Option<f64>,
    /// The command and its arguments (after `--`); each argument reaches the node as one word.
    #[arg(last = true, required = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

/// Runs `netsplit exec`; returns the process exit code.
pub fn run(args: ExecArgs) -> anyhow::Result<u8> {
    let mut resolved = nodes::resolve(&args.nodes)?;
    if let Some(n) = &args.node {
        resolved = resolved.select(n)?;
    }
    if let Some(c) = &resolved.cluster {
        crate::cluster::verify_routes(c)?;
    }
    let mut cmd = Cmd::new(args.command[0].clone()).args(args.command[1..].iter().cloned());
    cmd.sudo = args.sudo;
    if let Some(t) = args.timeout {
        if !(t > 0.0 && t <= crate::plan::MAX_SECONDS) {
            return Err(crate::error::bad_input(format!(
                "--timeout {t}: must be a positive number of seconds, at most {} (a year)",
                crate::plan::MAX_SECONDS
            )));
        }
        cmd.timeout = Some(Duration::from_secs_f64(t));
    }
    let opts = &resolved.ssh;
    let cmd = &cmd;
    // Connect and run per node in parallel: one unreachable node does not hold up the others.
    let results: Vec<(String, Result<control::Output, RemoteError>)> =
        control::fan_out(&resolved.nodes, |_, n| {
            let r = control::ssh::SshRemote::connect(n, opts).and_then(|r| r.exec(cmd));
            (n.name.clone(), r)
        });
    let mut unreachable = false;
    let mut failed = false;
    for (name, r) in results {
        match r {
            Ok(out) => {
                for l in out.stdout.lines() {
                    say!("{name}: {l}");
                }
                for l in out.stderr.lines() {
                    esay!("{name}: {l}");
                }
                if out.status != 0 {
                    esay!("{name}: exited {}", out.status);
                    failed = true;
                }
            }
            Err(e) => {
                let msg = e.to_string();
                let msg = msg.strip_prefix(&format!("{name}: ")).unwrap_or(&msg);
                esay!("{name}: error: {msg}");
                if e.is_bad_input() {
                    unreachable = true;
                } else {
                    failed = true;
                }
            }
        }
    }
    Ok(if unreachable {
        crate::error::EXIT_BAD_INPUT
    } else if failed {
        1
    } else {
        0
    })
}

//! The fault file system on a node (`disk=fuse`): mounting it over a database's data
//! directory before the database starts, telling it what to do, finding it, and unmounting it.
//! The file system itself is `netsplit diskfs` (src/nemesis/diskfs.rs), run from the netsplit
//! binary: on local nodes the running binary (one filesystem with this machine), on machines
//! a copy uploaded to `<node dir>/netsplit/bin/netsplit` (same architecture; the node needs
//! `/dev/fuse` and root, nothing else: the mount is made without libfuse or fusermount).
//!
//! What the kernel holds is the mark (`nemesis::marks` explains marks): the mount itself
//! (source `netsplit-diskfs` in the node's mount table) and the daemon's pid file
//! `<node dir>/netsplit/diskfs.pid`, beside its log and control socket. So a later run,
//! `netsplit heal` and `netsplit cluster status` find a file system that a killed harness left.
//!
//! Local namespace nodes: every command to a node runs in its sshd's mount namespace, so the
//! mount is made there, where the database started through that sshd sees it.

use crate::control::{util, Cmd, Remote};
use anyhow::{anyhow, Context, Result};
use serde_json::Value;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(60);

/// The daemon's pid file, log and control socket on a node.
pub fn paths(r: &dyn Remote) -> (String, String, String) {
    let d = format!("{}/netsplit", r.node().workdir.trim_end_matches('/'));
    (
        format!("{d}/diskfs.pid"),
        format!("{d}/diskfs.log"),
        format!("{d}/diskfs.sock"),
    )
}

/// Where the netsplit binary is on the node: this one on local nodes, else uploaded.
pub fn binary(r: &dyn Remote, local: bool) -> Result<String> {
    let me = std::env::current_exe().context("finding the netsplit binary")?;
    if local {
        return Ok(me.display().to_string());
    }
    let dest = format!(
        "{}/netsplit/bin/netsplit",
        r.node().workdir.trim_end_matches('/')
    );
    let size = std::fs::metadata(&me)?.len();
    let same = r
        .exec(&Cmd::new("stat").args(["-c", "%s", &dest]).sudo())?
        .stdout
        .trim()
        == size.to_string();
    if !same {
        r.exec_ok(
            &Cmd::new("mkdir")
                .args(["-p", &format!("{}/netsplit/bin", r.node().workdir)])
                .sudo(),
        )?;
        r.upload(&me, &dest)
            .with_context(|| format!("copying netsplit to {dest} on {}", r.node().name))?;
        r.exec_ok(&Cmd::new("chmod").args(["0755", &dest]).sudo())?;
    }
    Ok(dest)
}

/// The mount points of fault file systems on the node (any netsplit run's).
pub fn mounted(r: &dyn Remote) -> Result<Vec<String>> {
    let out = r.exec_ok(
        &Cmd::new("sh")
            .args([
                "-c",
                r#"awk '{ for (i = 7; i <= NF; i++) if ($i == "-") { if ($(i+2) == "netsplit-diskfs") print $5; break } }' /proc/self/mountinfo"#,
            ])
            .timeout(TIMEOUT),
    )?;
    Ok(out
        .stdout
        .lines()
        .map(|l| l.replace("\\040", " "))
        .filter(|l| !l.is_empty())
        .collect())
}

/// Mounts the fault file system over `dir` (made, and owned as its parent, when missing) and
/// waits until the mount is in place. Nothing is done when it is already mounted there.
pub fn mount(r: &dyn Remote, dir: &str, binary: &str, seed: u64) -> Result<()> {
    if mounted(r)?.iter().any(|m| m == dir) {
        return Ok(());
    }
    let (pid, log, sock) = paths(r);
    const PREP: &str = r#"dir=$1
[ -d "$dir" ] || { mkdir -p -- "$dir" && chown -- "$(stat -c %u:%g -- "$(dirname -- "$dir")")" "$dir"; }"#;
    r.exec_ok(&util::script(PREP, &[dir]).timeout(TIMEOUT))
        .with_context(|| format!("making {dir} on {}", r.node().name))?;
    let d = util::Daemon {
        name: "netsplit diskfs".into(),
        argv: vec![
            binary.to_string(),
            "diskfs".into(),
            "--dir".into(),
            dir.to_string(),
            "--control".into(),
            sock.clone(),
            "--seed".into(),
            seed.to_string(),
        ],
        env: Vec::new(),
        cwd: "/".into(),
        pidfile: pid,
        logfile: log,
    };
    util::start_daemon(r, &d)?;
    const WAIT: &str = r#"pid=$(cat "$1"); i=0
while [ $i -lt 200 ]; do
  tail -n 3 "$2" 2>/dev/null | grep -qF "mounted $3" && [ -S "$4" ] && exit 0
  kill -0 "$pid" 2>/dev/null || { echo "netsplit diskfs exited:"; tail -n 3 "$2"; exit 1; }
  sleep 0.05; i=$((i+1))
done
echo "netsplit diskfs did not mount within 10 s:"; tail -n 3 "$2"; exit 1"#;
    let out =
        r.exec(&util::script(WAIT, &[&d.pidfile, &d.logfile, dir, &sock]).timeout(TIMEOUT))?;
    if out.status != 0 {
        let _ = unmount(r, dir, false);
        return Err(anyhow!(
            "{}: mounting the fault file system over {dir}: {}",
            r.node().name,
            out.stdout.split_whitespace().collect::<Vec<_>>().join(" ")
        ));
    }
    Ok(())
}

/// Sends one command to the node's fault file system (through the daemon's own binary) and
/// returns its answer.
pub fn ctl(r: &dyn Remote, command: &Value) -> Result<Value> {
    let (pid, _, sock) = paths(r);
    const CTL: &str = r#"p=$(cat "$1" 2>/dev/null) && [ -n "$p" ] && kill -0 "$p" 2>/dev/null || { echo "no fault file system runs (pid file $1)" >&2; exit 3; }
exec "/proc/$p/exe" diskfs-ctl --control "$2" "$3""#;
    let out = r.exec(&util::script(CTL, &[&pid, &sock, &command.to_string()]).timeout(TIMEOUT))?;
    if out.status != 0 {
        return Err(anyhow!(
            "{}: fault file system: {}",
            r.node().name,
            out.stderr.trim().lines().last().unwrap_or("failed")
        ));
    }
    serde_json::from_str(out.stdout.trim()).map_err(|e| {
        anyhow!(
            "{}: fault file system answered {:?}: {e}",
            r.node().name,
            out.stdout
        )
    })
}

/// Whether the node's fault file system daemon runs.
pub fn running(r: &dyn Remote) -> Result<bool> {
    Ok(util::daemon_pid(r, &paths(r).0)?.is_some())
}

/// Unmounts the fault file system over `dir` (`sync`: what it holds is written beneath
/// first, as an orderly shutdown would) and stops its daemon. Idempotent.
pub fn unmount(r: &dyn Remote, dir: &str, sync: bool) -> Result<()> {
    if sync && running(r)? {
        let _ = ctl(r, &serde_json::json!({"cmd": "sync"}));
    }
    let (pid, _, sock) = paths(r);
    const UMOUNT: &str = r#"dir=$1 pid=$2 sock=$3
if awk -v d="$dir" '$5 == d' /proc/self/mountinfo | grep -q .; then
  umount -- "$dir" 2>/dev/null || umount -l -- "$dir" || exit 1
fi
p=$(cat "$pid" 2>/dev/null)
if [ -n "$p" ] && kill -0 "$p" 2>/dev/null; then
  i=0; while kill -0 "$p" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done
  kill -KILL "$p" 2>/dev/null
fi
rm -f -- "$pid" "$sock""#;
    r.exec_ok(&util::script(UMOUNT, &[dir, &pid, &sock]).timeout(TIMEOUT))
        .with_context(|| format!("unmounting the fault file system over {dir}"))?;
    Ok(())
}

/// Unmounts every fault file system on the node and stops its daemon (what a killed harness
/// left); the mount points it unmounted.
pub fn unmount_all(r: &dyn Remote, sync: bool) -> Result<Vec<String>> {
    let dirs = mounted(r)?;
    for d in &dirs {
        unmount(r, d, sync)?;
    }
    if dirs.is_empty() && running(r)? {
        unmount(r, "/nonexistent-netsplit-diskfs", false)?;
    }
    Ok(dirs)
}

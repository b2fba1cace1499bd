//! Host-side plumbing for local clusters: running host commands (argument vectors, never shell
//! text), the host-wide lock that serialises cluster changes, the root check, and installing
//! the host's prerequisites when they are missing.

use anyhow::{anyhow, Context};
use netsplit_check::error::bad_input;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Runs a host command and returns its stdout; a non-zero exit is an error carrying the
/// command and the tail of stderr.
pub(crate) fn run(prog: &str, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new(prog)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {prog}"))?;
    if !out.status.success() {
        return Err(anyhow!(
            "`{prog} {}` failed ({}): {}",
            args.join(" "),
            out.status,
            crate::tail(&String::from_utf8_lossy(&out.stderr), 300)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs a host command and reports only whether it succeeded (for probes).
pub(crate) fn succeeds(prog: &str, args: &[&str]) -> bool {
    Command::new(prog)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// True when this process runs as root.
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Fails with a clear bad-input error unless running as root.
pub(crate) fn require_root(what: &str) -> anyhow::Result<()> {
    if is_root() {
        return Ok(());
    }
    Err(bad_input(format!(
        "{what} needs root (local clusters are network namespaces, a bridge, veth links, \
         iptables rules and sshd processes): run it with sudo"
    )))
}

/// An exclusive `flock` on a file, released on drop.
pub(crate) struct HostLock {
    _file: std::fs::File,
}

impl HostLock {
    /// Blocks until the lock on `path` is held (creating the file and its directory).
    pub(crate) fn acquire(path: &Path) -> anyhow::Result<HostLock> {
        use std::os::fd::AsRawFd;
        if let Some(d) = path.parent() {
            std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .with_context(|| format!("opening lock file {}", path.display()))?;
        loop {
            // SAFETY: the fd is valid for the lifetime of `file`.
            let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
            if rc == 0 {
                return Ok(HostLock { _file: file });
            }
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::Interrupted {
                return Err(anyhow!("locking {}: {e}", path.display()));
            }
        }
    }
}

/// Finds an executable on PATH or in the sbin directories (which a non-login root shell may
/// lack on PATH).
pub(crate) fn which(prog: &str) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    let found = path
        .split(':')
        .chain(["/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/bin", "/bin"])
        .filter(|d| !d.is_empty())
        .map(|d| Path::new(d).join(prog))
        .find(|p| p.is_file());
    found
}

/// Host tools a local cluster needs, and the Debian package that provides each.
pub const PREREQUISITES: &[(&str, &str)] = &[
    ("ip", "iproute2"),
    ("tc", "iproute2"),
    ("sshd", "openssh-server"),
    ("ssh-keygen", "openssh-client"),
    ("iptables", "iptables"),
    ("faketime", "faketime"),
    ("unshare", "util-linux"),
];

/// Installs the missing host prerequisites with apt (one `apt-get update`, one install), or
/// says which are missing and why they cannot be installed.
pub fn ensure_prerequisites() -> anyhow::Result<()> {
    let mut missing: Vec<&str> = Vec::new();
    for (prog, pkg) in PREREQUISITES {
        if which(prog).is_none() && !missing.contains(pkg) {
            missing.push(pkg);
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    if !is_root() {
        return Err(bad_input(format!(
            "missing host packages {}: install them, or run as root so netsplit installs them",
            missing.join(" ")
        )));
    }
    if which("apt-get").is_none() {
        return Err(bad_input(format!(
            "missing host packages {} and no apt-get to install them with: install them by hand",
            missing.join(" ")
        )));
    }
    eprintln!(
        "netsplit: installing host prerequisites: {}",
        missing.join(" ")
    );
    let _lock = HostLock::acquire(Path::new("/var/lock/netsplit-apt.lock"))?;
    let apt = |args: &[&str]| -> anyhow::Result<()> {
        let st = Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .status()
            .context("running apt-get")?;
        if !st.success() {
            return Err(anyhow!("`apt-get {}` failed ({st})", args.join(" ")));
        }
        Ok(())
    };
    apt(&["update", "-q"])?;
    let mut args = vec!["install", "-y", "-q", "--no-install-recommends"];
    args.extend(missing.iter().copied());
    apt(&args)?;
    let still: Vec<&str> = PREREQUISITES
        .iter()
        .filter(|(prog, _)| which(prog).is_none())
        .map(|(prog, _)| *prog)
        .collect();
    if !still.is_empty() {
        return Err(anyhow!(
            "after installing, still missing: {}",
            still.join(" ")
        ));
    }
    Ok(())
}

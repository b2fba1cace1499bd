//! The SSH [`Remote`]: how the control node reaches every node — real machines, VMs and the
//! local namespace nodes of `netsplit cluster` alike (they run their own sshd).
//!
//! Built on the `ssh2` crate (libssh2). Design choices:
//! - **Connections are reused.** Each [`SshRemote`] keeps a small pool of authenticated
//!   sessions. Sequential use touches one connection; concurrent commands on the same node get a
//!   second session instead of queueing behind a slow one. A session that saw a timeout or a
//!   transport error is dropped, never reused, so a stuck command cannot poison later ones.
//! - **Timeouts** are enforced by driving the channel in non-blocking mode against a deadline.
//!   A command that runs out of time is killed on the node (its process group, which sshd made
//!   for it) over a fresh session, and the caller gets [`RemoteError::Timeout`].
//! - **Host keys** are checked against a known_hosts file: strictly for local clusters and with
//!   `--strict-host-key-checking`; otherwise a new key is accepted with a warning and appended,
//!   and a changed key is always refused.
//! - Command lines come only from [`Cmd::shell_line`]; this module never builds shell text from
//!   user values.

use super::{tail, Cmd, Node, Output, Remote, RemoteError};
use ssh2::{CheckResult, HostKeyType, KnownHostFileKind, Session};
use std::io::{ErrorKind, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::fd::{AsRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How to treat a host key that the known_hosts file does not list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HostKeyPolicy {
    /// Refuse unknown keys (local clusters, `--strict-host-key-checking`).
    Strict,
    /// Accept an unknown key with a warning and append it to the file (OpenSSH's
    /// `accept-new`). A *changed* key is refused under every policy.
    AcceptNew,
}

/// Everything needed to open a session to a node, besides the node's address and port (those
/// are in [`Node`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshOptions {
    /// Remote user. Anything but `root` runs privileged commands through `sudo -n`.
    pub username: String,
    /// Private key file. `None`: try the SSH agent (if `SSH_AUTH_SOCK` is set), then
    /// `~/.ssh/id_ed25519`, `~/.ssh/id_ecdsa`, `~/.ssh/id_rsa`.
    pub private_key: Option<PathBuf>,
    /// The known_hosts file host keys are checked against.
    pub known_hosts: PathBuf,
    /// What to do with a host key the file does not know.
    pub host_key_policy: HostKeyPolicy,
    /// Limit for the TCP connect, the SSH handshake and authentication.
    pub connect_timeout: Duration,
    /// For local-cluster nodes: the bridge every connection must be routed through. Checked
    /// before each new connection, so a vanished bridge never lets traffic to the cluster's
    /// addresses leave the machine.
    pub route_via: Option<String>,
}

impl SshOptions {
    /// Options for real machines: `~/.ssh/known_hosts`, accept-new unless `strict`.
    pub fn for_real_nodes(username: &str, private_key: Option<PathBuf>, strict: bool) -> Self {
        SshOptions {
            username: username.to_string(),
            private_key,
            known_hosts: home_dir().join(".ssh").join("known_hosts"),
            host_key_policy: if strict {
                HostKeyPolicy::Strict
            } else {
                HostKeyPolicy::AcceptNew
            },
            connect_timeout: Duration::from_secs(10),
            route_via: None,
        }
    }
}

/// The user's home directory (`$HOME`, else `/root`).
pub(crate) fn home_dir() -> PathBuf {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/root"))
}

/// Limit for blocking SSH operations that have no deadline of their own (channel setup,
/// closing, SFTP transfers): a node that stops answering turns into an error, not a hang.
const OP_TIMEOUT: Duration = Duration::from_secs(300);
/// Idle sessions kept per node beyond the one in use.
const MAX_IDLE: usize = 4;

/// One authenticated session. `fd` is the socket the session owns (valid while it lives).
struct Conn {
    sess: Session,
    fd: RawFd,
}

/// A [`Remote`] over SSH. Thread-safe; cheap to share behind an `Arc`.
pub struct SshRemote {
    node: Node,
    opts: SshOptions,
    idle: Mutex<Vec<Conn>>,
}

impl std::fmt::Debug for SshRemote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SshRemote")
            .field("node", &self.node)
            .field("username", &self.opts.username)
            .finish()
    }
}

impl SshRemote {
    /// Connects and authenticates once (so a wrong key, a changed host key or an unreachable
    /// node shows up here, as a clear error naming the node), and keeps the session for reuse.
    pub fn connect(node: &Node, opts: &SshOptions) -> Result<SshRemote, RemoteError> {
        let conn = open(node, opts)?;
        Ok(SshRemote {
            node: node.clone(),
            opts: opts.clone(),
            idle: Mutex::new(vec![conn]),
        })
    }

    /// True when the remote user is root (no `sudo` needed).
    pub fn is_root(&self) -> bool {
        self.opts.username == "root"
    }

    fn take(&self) -> Result<Conn, RemoteError> {
        let pooled = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        match pooled {
            Some(c) => Ok(c),
            None => open(&self.node, &self.opts),
        }
    }

    fn give_back(&self, conn: Conn) {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < MAX_IDLE {
            idle.push(conn);
        }
    }

    /// Runs a file transfer `f` on a pooled session: the session goes back to the pool when it
    /// succeeds; when it fails, the session is dropped and the error says `what` was tried.
    fn transfer(
        &self,
        what: &str,
        f: impl FnOnce(&Conn) -> Result<(), String>,
    ) -> Result<(), RemoteError> {
        let conn = self.take()?;
        match f(&conn) {
            Ok(()) => {
                self.give_back(conn);
                Ok(())
            }
            Err(m) => Err(self.other(format!("{what}: {m}"))),
        }
    }

    fn other(&self, msg: impl std::fmt::Display) -> RemoteError {
        RemoteError::Other {
            node: self.node.name.clone(),
            msg: msg.to_string(),
        }
    }

    /// Kills the process group of a timed-out command (best effort, over a fresh session).
    fn kill_group(&self, pgid: u32, sudo: bool) {
        let mut kill = Cmd::new("kill")
            .args(["-KILL", "--", &format!("-{pgid}")])
            .timeout(Duration::from_secs(10));
        kill.sudo = sudo;
        if let Ok(mut conn) = open(&self.node, &self.opts) {
            match run(
                &mut conn,
                &self.node,
                &kill,
                &kill.shell_line(self.is_root()),
            ) {
                Ok(_) => self.give_back(conn),
                Err(RunError::Remote(e)) => {
                    tracing::debug!(node = %self.node.name, "killing timed-out command: {e}")
                }
                Err(RunError::Timeout { .. }) => {
                    tracing::debug!(node = %self.node.name, "killing timed-out command timed out")
                }
                Err(RunError::Stale(e)) => {
                    tracing::debug!(node = %self.node.name, "killing timed-out command: {e}")
                }
            }
        }
    }
}

impl Remote for SshRemote {
    fn node(&self) -> &Node {
        &self.node
    }

    fn exec(&self, cmd: &Cmd) -> Result<Output, RemoteError> {
        let line = cmd.shell_line(self.is_root());
        // With a timeout, the shell first reports its pid: sshd made it a session (and process
        // group) leader, so on timeout the whole group can be killed on the node.
        let wire = if cmd.timeout.is_some() {
            format!("echo $$; {line}")
        } else {
            line
        };
        let mut conn = self.take()?;
        tracing::debug!(node = %self.node.name, cmd = %cmd.display(), "exec");
        let mut result = run(&mut conn, &self.node, cmd, &wire);
        if let Err(RunError::Stale(e)) = &result {
            // A pooled session that died while idle (sshd restarted, connection reset): the
            // command never started, so one retry on a fresh session is safe.
            tracing::debug!(node = %self.node.name, "stale session ({e}); reconnecting");
            conn = open(&self.node, &self.opts)?;
            result = run(&mut conn, &self.node, cmd, &wire);
        }
        match result {
            Ok(mut out) => {
                self.give_back(conn);
                if cmd.timeout.is_some() {
                    strip_pid_line(&mut out.stdout);
                }
                Ok(out)
            }
            Err(RunError::Timeout { stdout }) => {
                drop(conn);
                if let Some(pgid) = stdout.lines().next().and_then(|l| l.trim().parse().ok()) {
                    self.kill_group(pgid, cmd.sudo);
                }
                Err(RemoteError::Timeout {
                    node: self.node.name.clone(),
                    cmd: cmd.display(),
                    secs: cmd.timeout.unwrap_or_default().as_secs_f64(),
                })
            }
            Err(RunError::Remote(e)) => Err(e),
            Err(RunError::Stale(e)) => {
                Err(self.other(format!("`{}`: cannot open a channel: {e}", cmd.display())))
            }
        }
    }

    fn upload(&self, local: &Path, remote: &str) -> Result<(), RemoteError> {
        self.transfer(&format!("upload {} -> {remote}", local.display()), |conn| {
            let mut src = std::fs::File::open(local)
                .map_err(|e| format!("reading {}: {e}", local.display()))?;
            let mode = std::os::unix::fs::PermissionsExt::mode(
                &src.metadata()
                    .map_err(|e| format!("{}: {e}", local.display()))?
                    .permissions(),
            ) & 0o777;
            let sftp = sftp(conn)?;
            let mut dst = sftp
                .open_mode(
                    Path::new(remote),
                    ssh2::OpenFlags::WRITE | ssh2::OpenFlags::CREATE | ssh2::OpenFlags::TRUNCATE,
                    mode as i32,
                    ssh2::OpenType::File,
                )
                .map_err(|e| format!("creating {remote}: {e}"))?;
            std::io::copy(&mut src, &mut dst).map_err(|e| format!("writing {remote}: {e}"))?;
            dst.close().map_err(|e| format!("closing {remote}: {e}"))?;
            Ok(())
        })
    }

    fn download(&self, remote: &str, local: &Path) -> Result<(), RemoteError> {
        self.transfer(
            &format!("download {remote} -> {}", local.display()),
            |conn| {
                let sftp = sftp(conn)?;
                let mut src = sftp
                    .open(Path::new(remote))
                    .map_err(|e| format!("opening {remote}: {e}"))?;
                let mut dst = std::fs::File::create(local)
                    .map_err(|e| format!("creating {}: {e}", local.display()))?;
                std::io::copy(&mut src, &mut dst).map_err(|e| format!("reading {remote}: {e}"))?;
                Ok(())
            },
        )
    }
}

/// An SFTP channel on `conn`'s session, which is made blocking with the timeout of one
/// operation.
fn sftp(conn: &Conn) -> Result<ssh2::Sftp, String> {
    conn.sess.set_blocking(true);
    conn.sess.set_timeout(OP_TIMEOUT.as_millis() as u32);
    conn.sess.sftp().map_err(|e| format!("sftp: {e}"))
}

/// Connects to every node in parallel with the same options. The first failure (in node order)
/// is returned; connection, authentication and host-key failures are bad input (exit 254).
pub fn connect_nodes(nodes: &[Node], opts: &SshOptions) -> anyhow::Result<Vec<Arc<dyn Remote>>> {
    let results: Vec<Result<SshRemote, RemoteError>> =
        super::fan_out(nodes, |_, n| SshRemote::connect(n, opts));
    let mut out: Vec<Arc<dyn Remote>> = Vec::with_capacity(results.len());
    for r in results {
        out.push(Arc::new(r.map_err(super::remote_error)?));
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Connecting

fn open(node: &Node, opts: &SshOptions) -> Result<Conn, RemoteError> {
    let addr = if node.host.contains(':') {
        format!("[{}]:{}", node.host, node.ssh_port)
    } else {
        format!("{}:{}", node.host, node.ssh_port)
    };
    let conn_err = |msg: String| RemoteError::Connect {
        node: node.name.clone(),
        addr: addr.clone(),
        msg,
    };
    if let Some(bridge) = &opts.route_via {
        super::route::check_route(&node.host, bridge).map_err(&conn_err)?;
    }
    let addrs: Vec<_> = (node.host.as_str(), node.ssh_port)
        .to_socket_addrs()
        .map_err(|e| conn_err(format!("cannot resolve host: {e}")))?
        .collect();
    let mut last = String::from("no address");
    let mut tcp = None;
    for a in &addrs {
        match TcpStream::connect_timeout(a, opts.connect_timeout) {
            Ok(s) => {
                tcp = Some(s);
                break;
            }
            Err(e) => last = e.to_string(),
        }
    }
    let tcp = tcp.ok_or_else(|| conn_err(last))?;
    let _ = tcp.set_nodelay(true);
    set_keepalive(&tcp);
    let fd = tcp.as_raw_fd();
    let mut sess = Session::new().map_err(|e| conn_err(format!("ssh session: {e}")))?;
    sess.set_timeout(opts.connect_timeout.as_millis().min(u32::MAX as u128) as u32);
    // Prefer the key types OpenSSH prefers, so the key offered is the one most likely recorded
    // in known_hosts by `ssh` itself.
    if let Ok(supported) = sess.supported_algs(ssh2::MethodType::HostKey) {
        let prefs = [
            "ssh-ed25519",
            "ecdsa-sha2-nistp256",
            "ecdsa-sha2-nistp384",
            "ecdsa-sha2-nistp521",
            "rsa-sha2-512",
            "rsa-sha2-256",
            "ssh-rsa",
        ];
        let list: Vec<&str> = prefs
            .iter()
            .copied()
            .filter(|p| supported.contains(p))
            .collect();
        if !list.is_empty() {
            let _ = sess.method_pref(ssh2::MethodType::HostKey, &list.join(","));
        }
    }
    sess.set_tcp_stream(tcp);
    sess.handshake()
        .map_err(|e| conn_err(format!("SSH handshake failed: {e}")))?;
    check_host_key(&sess, node, opts)?;
    authenticate(&sess, node, opts)?;
    Ok(Conn { sess, fd })
}

fn set_keepalive(tcp: &TcpStream) {
    // Detect a vanished node on an idle or long-running session instead of waiting forever.
    let fd = tcp.as_raw_fd();
    let set = |level: libc::c_int, name: libc::c_int, val: libc::c_int| unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            &val as *const libc::c_int as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    };
    set(libc::SOL_SOCKET, libc::SO_KEEPALIVE, 1);
    set(libc::IPPROTO_TCP, libc::TCP_KEEPIDLE, 30);
    set(libc::IPPROTO_TCP, libc::TCP_KEEPINTVL, 10);
    set(libc::IPPROTO_TCP, libc::TCP_KEEPCNT, 3);
}

/// Serialises appends to known_hosts files within this process.
static KNOWN_HOSTS_WRITE: Mutex<()> = Mutex::new(());

fn check_host_key(sess: &Session, node: &Node, opts: &SshOptions) -> Result<(), RemoteError> {
    let hk_err = |msg: String| RemoteError::HostKey {
        node: node.name.clone(),
        msg,
    };
    let (key, ktype) = sess
        .host_key()
        .ok_or_else(|| hk_err("the server sent no host key".into()))?;
    let mut kh = sess
        .known_hosts()
        .map_err(|e| hk_err(format!("known_hosts: {e}")))?;
    let path = &opts.known_hosts;
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == ErrorKind::NotFound => String::new(),
        Err(e) => return Err(hk_err(format!("reading {}: {e}", path.display()))),
    };
    // Line by line, so one entry libssh2 does not understand (certificates, sk- keys) does not
    // hide the others; and only entries of the offered key's type, because libssh2 compares
    // keys without looking at their type: an ecdsa entry would make an ed25519 key "changed".
    let kname = key_type_name(ktype);
    for line in text.lines() {
        let l = line.trim();
        if l.is_empty() || l.starts_with('#') || l.starts_with('@') {
            continue;
        }
        if kname.is_some() && l.split_whitespace().nth(1) != kname {
            continue;
        }
        let _ = kh.read_str(l, KnownHostFileKind::OpenSSH);
    }
    let host_entry = if node.ssh_port == 22 {
        node.host.clone()
    } else {
        format!("[{}]:{}", node.host, node.ssh_port)
    };
    match kh.check_port(&node.host, node.ssh_port, key) {
        CheckResult::Match => Ok(()),
        CheckResult::Mismatch => Err(hk_err(format!(
            "the host key of {host_entry} has CHANGED: it differs from the one in {} \
             (possible man-in-the-middle, or the machine was reinstalled: then remove the old \
             entry with `ssh-keygen -f {} -R '{host_entry}'`)",
            path.display(),
            path.display()
        ))),
        CheckResult::Failure => Err(hk_err(format!(
            "cannot check the host key of {host_entry} against {}",
            path.display()
        ))),
        CheckResult::NotFound => match opts.host_key_policy {
            HostKeyPolicy::Strict => Err(hk_err(format!(
                "{host_entry} is not in {} and strict host key checking is on \
                 (add it with `ssh-keyscan -p {} {} >> {}`)",
                path.display(),
                node.ssh_port,
                node.host,
                path.display()
            ))),
            HostKeyPolicy::AcceptNew => {
                let kname = kname.ok_or_else(|| {
                    hk_err(format!("unknown host key type offered by {host_entry}"))
                })?;
                let line = format!(
                    "{host_entry} {kname} {}\n",
                    base64::Engine::encode(&base64::engine::general_purpose::STANDARD, key)
                );
                let _g = KNOWN_HOSTS_WRITE.lock().unwrap_or_else(|p| p.into_inner());
                append_known_host(path, &line).map_err(|e| {
                    hk_err(format!("adding the host key to {}: {e}", path.display()))
                })?;
                tracing::warn!(
                    node = %node.name,
                    "accepted the NEW host key of {host_entry} ({kname}) and added it to {}",
                    path.display()
                );
                Ok(())
            }
        },
    }
}

fn append_known_host(path: &Path, line: &str) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        if !dir.exists() {
            std::fs::create_dir_all(dir)?;
            let _ =
                std::fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o700));
        }
    }
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    f.write_all(line.as_bytes())
}

fn key_type_name(t: HostKeyType) -> Option<&'static str> {
    Some(match t {
        HostKeyType::Rsa => "ssh-rsa",
        HostKeyType::Dss => "ssh-dss",
        HostKeyType::Ecdsa256 => "ecdsa-sha2-nistp256",
        HostKeyType::Ecdsa384 => "ecdsa-sha2-nistp384",
        HostKeyType::Ecdsa521 => "ecdsa-sha2-nistp521",
        HostKeyType::Ed25519 => "ssh-ed25519",
        HostKeyType::Unknown => return None,
    })
}

fn authenticate(sess: &Session, node: &Node, opts: &SshOptions) -> Result<(), RemoteError> {
    let auth_err = |msg: String| RemoteError::Auth {
        node: node.name.clone(),
        msg,
    };
    let user = &opts.username;
    let mut tried: Vec<String> = Vec::new();
    let mut last_err = String::new();
    match &opts.private_key {
        Some(key) => {
            if let Err(e) = std::fs::File::open(key) {
                return Err(auth_err(format!(
                    "cannot read private key {}: {e}",
                    key.display()
                )));
            }
            if let Err(e) = sess.userauth_pubkey_file(user, None, key, None) {
                last_err = e.to_string();
            }
            tried.push(key.display().to_string());
        }
        None => {
            if std::env::var_os("SSH_AUTH_SOCK").is_some() {
                if let Err(e) = sess.userauth_agent(user) {
                    last_err = e.to_string();
                }
                tried.push("the SSH agent".into());
            }
            for name in ["id_ed25519", "id_ecdsa", "id_rsa"] {
                if sess.authenticated() {
                    break;
                }
                let key = home_dir().join(".ssh").join(name);
                if key.exists() {
                    if let Err(e) = sess.userauth_pubkey_file(user, None, &key, None) {
                        last_err = e.to_string();
                    }
                    tried.push(key.display().to_string());
                }
            }
        }
    }
    if sess.authenticated() {
        return Ok(());
    }
    if tried.is_empty() {
        return Err(auth_err(format!(
            "no private key for user {user}: pass --ssh-private-key, or put a key in ~/.ssh"
        )));
    }
    Err(auth_err(format!(
        "user {user} was not accepted with {} ({last_err})",
        tried.join(", ")
    )))
}

// ---------------------------------------------------------------------------------------------
// Running a command

enum RunError {
    /// No channel could be opened: the session is dead (nothing ran; safe to retry).
    Stale(String),
    /// The deadline passed; `stdout` holds what arrived (its first line is the shell's pid).
    Timeout {
        stdout: String,
    },
    Remote(RemoteError),
}

fn is_again(e: &ssh2::Error) -> bool {
    matches!(e.code(), ssh2::ErrorCode::Session(-37))
}

/// Runs `wire` on a channel of `conn`, honouring `cmd.stdin` and `cmd.timeout`.
fn run(conn: &mut Conn, node: &Node, cmd: &Cmd, wire: &str) -> Result<Output, RunError> {
    let fail = |what: &str, e: &dyn std::fmt::Display| {
        RunError::Remote(RemoteError::Other {
            node: node.name.clone(),
            msg: format!("`{}`: {what}: {e}", cmd.display()),
        })
    };
    let start = Instant::now();
    let deadline = cmd.timeout.map(|t| start + t);
    let sess = &conn.sess;
    sess.set_blocking(true);
    sess.set_timeout(OP_TIMEOUT.as_millis() as u32);
    let mut ch = sess
        .channel_session()
        .map_err(|e| RunError::Stale(e.to_string()))?;
    ch.exec(wire).map_err(|e| fail("starting", &e))?;
    let stdin = cmd.stdin.as_deref().unwrap_or(&[]);
    let mut written = 0usize;
    let mut eof_sent = false;
    if stdin.is_empty() {
        ch.send_eof().map_err(|e| fail("closing stdin", &e))?;
        eof_sent = true;
    }
    sess.set_blocking(false);
    let mut out = Vec::new();
    let mut err = Vec::new();
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        let mut progress = false;
        if written < stdin.len() {
            match ch.write(&stdin[written..]) {
                Ok(n) => {
                    written += n;
                    progress = true;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                // The command closed its stdin early: stop feeding it, like a pipe would.
                Err(_) => written = stdin.len(),
            }
        }
        if written >= stdin.len() && !eof_sent {
            match ch.send_eof() {
                Ok(()) => {
                    eof_sent = true;
                    progress = true;
                }
                Err(e) if is_again(&e) => {}
                Err(_) => eof_sent = true,
            }
        }
        let mut streams_open = false;
        for (stream, sink) in [(0, &mut out), (1, &mut err)] {
            loop {
                let r = if stream == 0 {
                    ch.read(&mut buf)
                } else {
                    ch.stderr().read(&mut buf)
                };
                match r {
                    // libssh2 also returns 0 when a transport read ended without payload:
                    // only the channel's EOF flag means the stream is really finished.
                    Ok(0) => {
                        if !ch.eof() {
                            streams_open = true;
                        }
                        break;
                    }
                    Ok(n) => {
                        sink.extend_from_slice(&buf[..n]);
                        progress = true;
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {
                        streams_open = true;
                        break;
                    }
                    Err(e) => return Err(fail("reading output", &e)),
                }
            }
        }
        // Both streams returned end-of-file: the command is done.
        if !streams_open {
            break;
        }
        if let Some(d) = deadline {
            if Instant::now() >= d {
                return Err(RunError::Timeout {
                    stdout: String::from_utf8_lossy(&out).into_owned(),
                });
            }
        }
        if !progress {
            let wait = deadline
                .map(|d| d.saturating_duration_since(Instant::now()))
                .unwrap_or(Duration::from_millis(200))
                .min(Duration::from_millis(200));
            poll_socket(conn.fd, sess, wait);
        }
    }
    sess.set_blocking(true);
    let _ = ch.wait_close();
    let status = match ch.exit_signal() {
        Ok(ssh2::ExitSignal {
            exit_signal: Some(sig),
            ..
        }) => 128 + signal_number(&sig),
        _ => ch
            .exit_status()
            .map_err(|e| fail("reading exit status", &e))?,
    };
    let output = Output {
        status,
        stdout: String::from_utf8_lossy(&out).into_owned(),
        stderr: String::from_utf8_lossy(&err).into_owned(),
    };
    tracing::trace!(node = %node.name, status, stderr = %tail(&output.stderr, 200), "exec done");
    Ok(output)
}

/// Waits until the session's socket is ready in the direction libssh2 is blocked on, or `wait`.
fn poll_socket(fd: RawFd, sess: &Session, wait: Duration) {
    let dirs = sess.block_directions();
    let mut events = libc::POLLIN;
    if matches!(
        dirs,
        ssh2::BlockDirections::Outbound | ssh2::BlockDirections::Both
    ) {
        events |= libc::POLLOUT;
    }
    let mut pfd = libc::pollfd {
        fd,
        events,
        revents: 0,
    };
    let ms = wait.as_millis().clamp(1, 1000) as libc::c_int;
    unsafe {
        libc::poll(&mut pfd, 1, ms);
    }
}

fn signal_number(name: &str) -> i32 {
    match name.trim_start_matches("SIG") {
        "HUP" => 1,
        "INT" => 2,
        "QUIT" => 3,
        "ILL" => 4,
        "ABRT" => 6,
        "FPE" => 8,
        "KILL" => 9,
        "SEGV" => 11,
        "PIPE" => 13,
        "ALRM" => 14,
        "TERM" => 15,
        "USR1" => 10,
        "USR2" => 12,
        _ => 0,
    }
}

/// Removes the pid line that [`SshRemote::exec`] prepends when a timeout is set.
fn strip_pid_line(stdout: &mut String) {
    match stdout.find('\n') {
        Some(i) => {
            stdout.drain(..=i);
        }
        None => stdout.clear(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pid_line_is_stripped_and_the_rest_kept() {
        let mut s = String::from("1234\nhello\nworld\n");
        strip_pid_line(&mut s);
        assert_eq!(s, "hello\nworld\n");
        let mut s = String::from("1234");
        strip_pid_line(&mut s);
        assert_eq!(s, "");
    }

    #[test]
    fn unreachable_node_is_a_connect_error_naming_it() {
        // Port 1 on loopback: nothing listens there, so the connect is refused at once.
        let node = Node {
            name: "nx".into(),
            host: "127.0.0.1".into(),
            ssh_port: 1,
            workdir: "/tmp".into(),
        };
        let opts = SshOptions::for_real_nodes("root", None, true);
        let err = SshRemote::connect(&node, &opts).unwrap_err();
        assert!(matches!(err, RemoteError::Connect { .. }), "{err}");
        let msg = err.to_string();
        assert!(
            msg.starts_with("nx: cannot connect to 127.0.0.1:1"),
            "{msg}"
        );
        assert!(err.is_bad_input());
    }
}

//! Node utilities that targets and nemeses build on, all through a `&dyn Remote`: install
//! Debian packages idempotently, write files and templates, run a daemon in the background
//! with a pid file and a log file, signal/stop it by pid file, wait for a TCP port, fetch files.
//!
//! Every command here is an argument vector; where a small shell script is needed, user values
//! reach it as positional parameters (`"$1"`), never spliced into the script text. Commands run
//! with `sudo -n` when the remote user is not root.
//!
//! Local nodes share one filesystem and one process table, so: package installs take a host
//! lock (`flock` on `/var/lock/netsplit-apt.lock`) and re-check under it, which makes them
//! happen once per host, and apt runs in the host's network namespace (a local node has no
//! route to the mirrors); daemons are addressed only through their pid files, never by name.

use super::{Cmd, Remote, RemoteError};
use std::path::Path;
use std::time::{Duration, Instant};

/// The host-wide lock file serialising package installs (shared by local nodes).
pub(crate) const APT_LOCK: &str = "/var/lock/netsplit-apt.lock";

fn err(r: &dyn Remote, msg: impl Into<String>) -> RemoteError {
    RemoteError::Other {
        node: r.node().name.clone(),
        msg: msg.into(),
    }
}

/// Shell functions for every script that signals a process and waits for it to end: `gone P`
/// is true when process P no longer runs or is a zombie (its state is read past the `(comm)`
/// field of `/proc/P/stat`, which may hold spaces); `await_gone P` waits up to 30 s for it and
/// otherwise ends the script with exit 1, naming P. [`process_script`] puts them before a body.
pub const PROCESS_SH: &str = r#"gone() { ! kill -0 "$1" 2>/dev/null || [ "$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)" = Z ]; }
await_gone() { _w=0; while ! gone "$1" && [ "$_w" -lt 600 ]; do sleep 0.05; _w=$((_w+1)); done; gone "$1" || { echo "pid $1 survived SIGKILL for 30s" >&2; exit 1; }; }
"#;

/// [`script`] of `body` with the [`PROCESS_SH`] functions defined before it.
pub fn process_script(body: &str, args: &[&str]) -> Cmd {
    script(&format!("{PROCESS_SH}{body}"), args)
}

/// A `sh -c SCRIPT sh ARGS…` command: the script is a constant, values are positional.
pub fn script(text: &str, args: &[&str]) -> Cmd {
    Cmd::new("sh")
        .arg("-c")
        .arg(text)
        .arg("sh")
        .args(args.iter().copied())
        .sudo()
}

/// Checks that `host` is a host name or address a node or endpoint may have: not empty, not
/// starting with `-`, letters, digits and `.-_:%` only. The error says what it is not.
pub fn check_host(host: &str) -> Result<(), String> {
    let ok = !host.is_empty()
        && !host.starts_with('-')
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-_:%".contains(c));
    if ok {
        Ok(())
    } else {
        Err(format!("{host:?} is not a host name or address"))
    }
}

/// `s` with every character but letters, digits and `.-_` replaced by `_`: safe as one file or
/// directory name on a node.
pub fn file_safe(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || ".-_".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn valid_package(p: &str) -> bool {
    let (name, version) = match p.split_once('=') {
        Some((n, v)) => (n, Some(v)),
        None => (p, None),
    };
    let name_ok = name.len() >= 2
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+-.".contains(&b));
    let version_ok = version.is_none_or(|v| {
        !v.is_empty()
            && v.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+-.:~".contains(&b))
    });
    name_ok && version_ok
}

/// Installs Debian packages (`name` or `name=version`) unless all are already installed.
/// Idempotent; on local nodes the host lock makes only the first node actually run apt.
/// Returns true when apt ran.
pub fn install_packages(r: &dyn Remote, pkgs: &[&str]) -> Result<bool, RemoteError> {
    if pkgs.is_empty() {
        return Ok(false);
    }
    if let Some(bad) = pkgs.iter().find(|p| !valid_package(p)) {
        return Err(err(r, format!("{bad:?} is not a Debian package name")));
    }
    // Checks names only (dpkg-query knows no versions). Fast path first, without the lock.
    const INSTALLED: &str = r#"installed() { for p in "$@"; do dpkg-query -W -f='${Status}\n' "${p%%=*}" 2>/dev/null | grep -q '^install ok installed$' || return 1; done; }
"#;
    let check = [INSTALLED, r#"installed "$@""#].concat();
    if r.exec(&script(&check, pkgs))?.status == 0 {
        return Ok(false);
    }
    let install = [
        INSTALLED,
        r#"installed "$@" && exit 3
export DEBIAN_FRONTEND=noninteractive
# A local node's namespace has no route to package mirrors, but it shares the host's
# filesystem: run apt in the host's network namespace, which `cluster up` names netsplit-host.
net= h=/run/netns/netsplit-host
if [ -e "$h" ] && [ "$(stat -L -c %i /proc/self/ns/net)" != "$(stat -L -c %i "$h")" ]; then net="nsenter --net=$h --"; fi
$net apt-get install -y -q --no-install-recommends "$@" || { $net apt-get update -q && $net apt-get install -y -q --no-install-recommends "$@"; }"#,
    ]
    .concat();
    let mut argv = vec!["-w", "1800", APT_LOCK, "sh", "-c", &install, "sh"];
    argv.extend_from_slice(pkgs);
    let cmd = Cmd::new("flock")
        .args(argv)
        .sudo()
        .timeout(Duration::from_secs(1800));
    let out = r.exec(&cmd)?;
    match out.status {
        0 => Ok(true),
        // Another node installed them while this one waited for the lock.
        3 => Ok(false),
        s => Err(RemoteError::Failed {
            node: r.node().name.clone(),
            cmd: format!("apt-get install {}", pkgs.join(" ")),
            status: s,
            stderr_tail: super::tail(&out.stderr, 600),
        }),
    }
}

/// Writes `bytes` to `path` on the node (creating parent directories), via stdin of `cat`, so
/// it works for any user through sudo.
pub fn write_file(r: &dyn Remote, path: &str, bytes: &[u8]) -> Result<(), RemoteError> {
    let cmd =
        script(r#"mkdir -p -- "$(dirname -- "$1")" && cat > "$1""#, &[path]).stdin(bytes.to_vec());
    r.exec_ok(&cmd)?;
    Ok(())
}

/// Replaces every `{{name}}` in `template` by its value. An unknown placeholder or an unclosed
/// `{{` is an error naming it, so a typo in a config template cannot slip through.
pub fn render_template(template: &str, vars: &[(&str, &str)]) -> Result<String, String> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(i) = rest.find("{{") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let j = after
            .find("}}")
            .ok_or_else(|| format!("unclosed {{{{ at byte {}", template.len() - rest.len() + i))?;
        let key = after[..j].trim();
        let val = vars
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| *v)
            .ok_or_else(|| format!("unknown placeholder {{{{{key}}}}}"))?;
        out.push_str(val);
        rest = &after[j + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Renders a template ([`render_template`]) and writes it to `path` on the node.
pub fn write_template(
    r: &dyn Remote,
    path: &str,
    template: &str,
    vars: &[(&str, &str)],
) -> Result<(), RemoteError> {
    let text = render_template(template, vars).map_err(|m| err(r, format!("{path}: {m}")))?;
    write_file(r, path, text.as_bytes())
}

/// A background process on a node, tracked by its pid file.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Daemon {
    /// Human name for messages (`etcd`).
    pub name: String,
    /// Program and arguments.
    pub argv: Vec<String>,
    /// Extra environment (e.g. `LD_PRELOAD`/`FAKETIME` for clock faults).
    pub env: Vec<(String, String)>,
    /// Working directory (created if missing).
    pub cwd: String,
    /// Pid file (in the node's directory); it holds the daemon's own pid.
    pub pidfile: String,
    /// Log file receiving stdout and stderr (appended).
    pub logfile: String,
}

/// Starts a daemon detached (own session, stdin from /dev/null, output appended to its log)
/// and records its pid — the daemon's own, since the launcher `exec`s it — in the pid file.
/// If the pid file already names a live process, nothing is started. Returns the pid.
pub fn start_daemon(r: &dyn Remote, d: &Daemon) -> Result<u32, RemoteError> {
    if d.argv.is_empty() {
        return Err(err(r, format!("daemon {}: empty command", d.name)));
    }
    // setsid(1) does not fork when its caller is not a group leader (true for a background job
    // of a non-interactive shell), and env execs too, so $! is the daemon's pid.
    const START: &str = r#"pidfile=$1 logfile=$2 dir=$3; shift 3
if [ -s "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then cat "$pidfile"; exit 0; fi
mkdir -p -- "$dir" "$(dirname -- "$pidfile")" "$(dirname -- "$logfile")" || exit 1
cd "$dir" || exit 1
setsid env "$@" >>"$logfile" 2>&1 </dev/null &
echo $! > "$pidfile"
echo $!"#;
    let mut args: Vec<&str> = vec![&d.pidfile, &d.logfile, &d.cwd];
    let env: Vec<String> = d.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    if env.iter().any(|e| e.starts_with('=') || e.starts_with('-')) {
        return Err(err(r, format!("daemon {}: bad environment name", d.name)));
    }
    args.extend(env.iter().map(String::as_str));
    // `env` would read an argv[0] containing '=' as an assignment; `--` does not help there,
    // so such programs are refused.
    if d.argv[0].contains('=') {
        return Err(err(
            r,
            format!("daemon {}: program name contains '='", d.name),
        ));
    }
    args.extend(d.argv.iter().map(String::as_str));
    let out = r.exec_ok(&script(START, &args).timeout(Duration::from_secs(60)))?;
    out.stdout.trim().parse().map_err(|_| {
        err(
            r,
            format!("daemon {}: no pid from start: {:?}", d.name, out.stdout),
        )
    })
}

/// The pid in a pid file on the node, if it names a live process.
pub fn daemon_pid(r: &dyn Remote, pidfile: &str) -> Result<Option<u32>, RemoteError> {
    const CHECK: &str =
        r#"p=$(cat "$1" 2>/dev/null) && [ -n "$p" ] && kill -0 "$p" 2>/dev/null && echo "$p""#;
    let out = r.exec(&script(CHECK, &[pidfile]).timeout(Duration::from_secs(30)))?;
    Ok(if out.status == 0 {
        out.stdout.trim().parse().ok()
    } else {
        None
    })
}

/// True when the pid file names a live process (a stopped one counts as live).
pub fn daemon_running(r: &dyn Remote, pidfile: &str) -> Result<bool, RemoteError> {
    Ok(daemon_pid(r, pidfile)?.is_some())
}

/// Signals that may be sent to daemons.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// SIGSTOP: freezes the process (a pause fault); it cannot be caught.
    Stop,
    /// SIGCONT: resumes a stopped process.
    Cont,
    /// SIGKILL: ends the process at once; it cannot be caught.
    Kill,
    /// SIGTERM: asks the process to shut down cleanly.
    Term,
    /// SIGHUP: by convention, asks a daemon to reload its configuration.
    Hup,
    /// SIGINT: an interrupt, as Ctrl-C sends.
    Int,
}

impl Signal {
    /// The name `kill -s` takes.
    pub fn name(self) -> &'static str {
        match self {
            Signal::Stop => "STOP",
            Signal::Cont => "CONT",
            Signal::Kill => "KILL",
            Signal::Term => "TERM",
            Signal::Hup => "HUP",
            Signal::Int => "INT",
        }
    }
}

impl std::str::FromStr for Signal {
    type Err = String;
    fn from_str(s: &str) -> Result<Signal, String> {
        let up = s.to_ascii_uppercase();
        Ok(match up.strip_prefix("SIG").unwrap_or(&up) {
            "STOP" => Signal::Stop,
            "CONT" => Signal::Cont,
            "KILL" => Signal::Kill,
            "TERM" => Signal::Term,
            "HUP" => Signal::Hup,
            "INT" => Signal::Int,
            _ => return Err(format!("unknown signal {s:?}")),
        })
    }
}

/// Sends `sig` to the process named by the pid file. Returns false when there was no live
/// process to signal.
pub fn signal_daemon(r: &dyn Remote, pidfile: &str, sig: Signal) -> Result<bool, RemoteError> {
    const SIG: &str = r#"p=$(cat "$1" 2>/dev/null) && [ -n "$p" ] && kill -0 "$p" 2>/dev/null || exit 3
kill -s "$2" "$p""#;
    let out = r.exec(&script(SIG, &[pidfile, sig.name()]).timeout(Duration::from_secs(30)))?;
    match out.status {
        0 => Ok(true),
        3 => Ok(false),
        s => Err(RemoteError::Failed {
            node: r.node().name.clone(),
            cmd: format!("kill -s {} $(cat {pidfile})", sig.name()),
            status: s,
            stderr_tail: super::tail(&out.stderr, 400),
        }),
    }
}

/// Stops the daemon of a pid file: SIGTERM (plus SIGCONT, so a paused one hears it), up to
/// `grace` for it to exit, then SIGKILL; removes the pid file. Returns false when nothing was
/// running.
pub fn stop_daemon(r: &dyn Remote, pidfile: &str, grace: Duration) -> Result<bool, RemoteError> {
    const STOP: &str = r#"p=$(cat "$1" 2>/dev/null); [ -n "$p" ] || { rm -f "$1"; exit 3; }
if gone "$p"; then rm -f "$1"; exit 3; fi
kill -TERM "$p" 2>/dev/null; kill -CONT "$p" 2>/dev/null
i=0; while ! gone "$p" && [ "$i" -lt "$2" ]; do sleep 0.1; i=$((i+1)); done
gone "$p" || kill -KILL "$p" 2>/dev/null
await_gone "$p"
rm -f "$1""#;
    let tenths = (grace.as_millis() / 100).max(1).to_string();
    let t = grace + Duration::from_secs(60);
    let out = r.exec(&process_script(STOP, &[pidfile, &tenths]).timeout(t))?;
    match out.status {
        0 => Ok(true),
        3 => Ok(false),
        s => Err(RemoteError::Failed {
            node: r.node().name.clone(),
            cmd: format!("stop daemon of {pidfile}"),
            status: s,
            stderr_tail: super::tail(&out.stderr, 400),
        }),
    }
}

/// Waits until `host:port` accepts TCP connections from the control node, or `timeout`.
pub fn wait_for_port(host: &str, port: u16, timeout: Duration) -> anyhow::Result<()> {
    use std::net::{TcpStream, ToSocketAddrs};
    let deadline = Instant::now() + timeout;
    let mut last = String::from("no attempt");
    loop {
        let addrs: Vec<_> = (host, port)
            .to_socket_addrs()
            .map(|a| a.collect())
            .unwrap_or_default();
        for a in &addrs {
            let left = deadline
                .saturating_duration_since(Instant::now())
                .clamp(Duration::from_millis(50), Duration::from_secs(1));
            match TcpStream::connect_timeout(a, left) {
                Ok(_) => return Ok(()),
                Err(e) => last = e.to_string(),
            }
        }
        if addrs.is_empty() {
            last = format!("cannot resolve {host}");
        }
        if Instant::now() >= deadline {
            return Err(anyhow::anyhow!(
                "{host}:{port} not reachable after {:.1}s: {last}",
                timeout.as_secs_f64()
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Copies a file from the node to `local` (creating local parent directories). Files the
/// remote user cannot read are first copied aside with sudo.
pub fn fetch(r: &dyn Remote, remote_path: &str, local: &Path) -> Result<(), RemoteError> {
    if let Some(dir) = local.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| err(r, format!("creating {}: {e}", dir.display())))?;
    }
    match r.download(remote_path, local) {
        Ok(()) => Ok(()),
        Err(first) => {
            const ASIDE: &str =
                r#"t=$(mktemp -p /tmp) && cp -- "$1" "$t" && chmod 644 "$t" && echo "$t""#;
            let Ok(out) = r.exec_ok(&script(ASIDE, &[remote_path])) else {
                return Err(first);
            };
            let tmp = out.stdout.trim().to_string();
            let res = r.download(&tmp, local);
            let _ = r.exec(&Cmd::new("rm").args(["-f", "--", &tmp]).sudo());
            res
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_substitute_and_reject_unknown_placeholders() {
        let t = "name={{name}} peers={{ peers }}\n";
        assert_eq!(
            render_template(t, &[("name", "n1"), ("peers", "a,b")]).unwrap(),
            "name=n1 peers=a,b\n"
        );
        assert!(render_template("{{nme}}", &[("name", "x")])
            .unwrap_err()
            .contains("nme"));
        assert!(render_template("x {{name", &[("name", "x")]).is_err());
        assert_eq!(render_template("no vars", &[]).unwrap(), "no vars");
    }

    #[test]
    fn package_names_are_checked_before_reaching_a_shell() {
        assert!(valid_package("etcd-server"));
        assert!(valid_package("libc6=2.36-9"));
        assert!(valid_package("g++"));
        assert!(!valid_package("-y"));
        assert!(!valid_package("a;b"));
        assert!(!valid_package("$(touch /tmp/x)"));
        assert!(!valid_package("x="));
    }

    #[test]
    fn signals_parse_from_names() {
        assert_eq!("STOP".parse::<Signal>(), Ok(Signal::Stop));
        assert_eq!("sigcont".parse::<Signal>(), Ok(Signal::Cont));
        assert!("NOPE".parse::<Signal>().is_err());
        assert_eq!(Signal::Kill.name(), "KILL");
    }

    #[test]
    fn wait_for_port_fails_with_the_address_when_nothing_listens() {
        let e = wait_for_port("127.0.0.1", 1, Duration::from_millis(100)).unwrap_err();
        assert!(
            e.to_string().starts_with("127.0.0.1:1 not reachable"),
            "{e}"
        );
    }
}

//! Local clusters and the SSH remote against real namespace nodes: exec, exit codes, stderr,
//! stdin, hostile arguments, upload/download, timeouts, wrong keys, unreachable nodes, host key
//! policy, daemons by pid file, the `exec` command, and a full up/down cycle that must leave
//! nothing behind.
//!
//! Needs root (network namespaces); without it every test here prints a loud SKIP. The shared
//! cluster `t-nodes` (3 nodes) is brought up once per test binary run and left up for reuse
//! (`netsplit cluster down --name t-nodes` removes it); the lifecycle test uses its own cluster.

use crate::support::{self, bin, is_root, proc_state, root_or_skip, skip, tmp_dir};
use netsplit::cluster::{self, ClusterInfo};
use netsplit::control::ssh::{HostKeyPolicy, SshRemote};
use netsplit::control::util::{self, Daemon, Signal};
use netsplit::control::{self, Cmd, Node, Remote, RemoteError};
use netsplit::nodes::ResolvedNodes;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const CLUSTER: &str = "t-nodes";

/// The shared cluster, or None (with a SKIP message) when not root.
fn cluster(test: &str) -> Option<&'static ClusterInfo> {
    if !root_or_skip(
        &format!("nodes::{test}"),
        "needs root to make network namespaces",
    ) {
        return None;
    }
    static INFO: OnceLock<Result<ClusterInfo, String>> = OnceLock::new();
    let r = INFO.get_or_init(|| {
        let t = Instant::now();
        let r = cluster::ensure_up(CLUSTER, 3).map_err(|e| format!("{e:#}"));
        eprintln!(
            "cluster {CLUSTER} ready in {:.2}s",
            t.elapsed().as_secs_f64()
        );
        r
    });
    match r {
        Ok(i) => Some(i),
        Err(e) => panic!("cannot bring up local cluster {CLUSTER}: {e}"),
    }
}

fn n1(info: &ClusterInfo) -> SshRemote {
    SshRemote::connect(&info.nodes()[0], &info.ssh_options()).expect("connect n1")
}

/// A fresh path under the node's working directory for one test.
fn scratch(r: &dyn Remote, tag: &str) -> String {
    format!(
        "{}/test-{tag}-{}-{:?}",
        r.node().workdir,
        std::process::id(),
        std::thread::current().id()
    )
    .replace(['(', ')'], "")
}

#[test]
fn exec_reaches_every_node_which_reports_its_own_address_and_name() {
    let Some(info) = cluster("exec_reaches_every_node") else {
        return;
    };
    let remotes = netsplit::nodes::connect_all(&ResolvedNodes::from_cluster(info)).unwrap();
    assert_eq!(remotes.len(), 3);
    let results = control::on_all(&remotes, |r| {
        let ip = r.exec_ok(&Cmd::new("hostname").arg("-I"))?.stdout;
        let name = r.exec_ok(&Cmd::new("hostname"))?.stdout;
        Ok::<_, RemoteError>((ip, name))
    });
    for ((name, r), node) in results.into_iter().zip(&info.nodes) {
        let (ip, hostname) = r.unwrap();
        assert_eq!(name, node.name);
        assert_eq!(
            ip.split_whitespace().collect::<Vec<_>>(),
            [node.address.as_str()]
        );
        assert_eq!(hostname.trim(), node.name);
    }
}

#[test]
fn exit_status_stdout_and_stderr_are_reported_separately() {
    let Some(info) = cluster("exit_status_stdout_and_stderr") else {
        return;
    };
    let r = n1(info);
    let cmd = Cmd::new("sh").args(["-c", "echo out; echo err >&2; exit 7"]);
    let out = r.exec(&cmd).unwrap();
    assert_eq!(
        (out.status, out.stdout.as_str(), out.stderr.as_str()),
        (7, "out\n", "err\n")
    );
    let e = r.exec_ok(&cmd).unwrap_err();
    match &e {
        RemoteError::Failed {
            node,
            status,
            stderr_tail,
            cmd,
        } => {
            assert_eq!(
                (node.as_str(), *status, stderr_tail.as_str()),
                ("n1", 7, "err")
            );
            assert!(cmd.starts_with("sh -c"), "{cmd}");
        }
        other => panic!("expected Failed, got {other:?}"),
    }
    assert_eq!(
        e.to_string(),
        "n1: `sh -c echo out; echo err >&2; exit 7` exited 7: err"
    );
    // A command killed by a signal reports 128+signal, like a shell.
    let out = r.exec(&Cmd::new("sh").args(["-c", "kill -9 $$"])).unwrap();
    assert_eq!(out.status, 137);
}

#[test]
fn stdin_bytes_reach_the_command_even_when_large() {
    let Some(info) = cluster("stdin_bytes_reach_the_command") else {
        return;
    };
    let r = n1(info);
    let text: String = (0..40_000).map(|i| format!("line {i}\n")).collect();
    let out = r.exec_ok(&Cmd::new("cat").stdin(text.clone())).unwrap();
    assert_eq!(out.stdout.len(), text.len());
    assert_eq!(out.stdout, text);
    let out = r
        .exec_ok(&Cmd::new("wc").arg("-c").stdin(text.clone()))
        .unwrap();
    assert_eq!(out.stdout.trim(), text.len().to_string());
}

#[test]
fn hostile_arguments_pass_through_ssh_verbatim_as_one_argument() {
    let Some(info) = cluster("hostile_arguments_pass_through_ssh") else {
        return;
    };
    let r = n1(info);
    let marker = format!("/tmp/netsplit-pwned-{}", std::process::id());
    let hostile = [
        format!("$(touch {marker})"),
        format!("`touch {marker}`"),
        format!("; touch {marker}"),
        "it's \"quoted\" \\ back".to_string(),
        "multi\nline\n\nargument".to_string(),
        "$HOME ${PATH} $$ $@ * ~ !x #c".to_string(),
        "<in >out 2>&1 | & && ||".to_string(),
        "".to_string(),
        "ünïcödé ✓".to_string(),
    ];
    for h in &hostile {
        let out = r
            .exec_ok(&Cmd::new("printf").arg("%s").arg(h.clone()))
            .unwrap();
        assert_eq!(&out.stdout, h);
        let out = r
            .exec_ok(&Cmd::new("sh").args(["-c", "echo $#", "sh"]).arg(h.clone()))
            .unwrap();
        assert_eq!(out.stdout, "1\n", "{h:?} split into several arguments");
        let out = r
            .exec_ok(
                &Cmd::new("sh")
                    .args(["-c", "printf %s \"$V\""])
                    .env("V", h.clone()),
            )
            .unwrap();
        assert_eq!(&out.stdout, h, "env value");
    }
    assert!(
        !Path::new(&marker).exists(),
        "a hostile argument was executed"
    );
}

#[test]
fn concurrent_commands_on_one_node_all_complete() {
    let Some(info) = cluster("concurrent_commands_on_one_node") else {
        return;
    };
    let r = n1(info);
    let outs: Vec<String> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..8)
            .map(|i| {
                let r = &r;
                s.spawn(move || {
                    r.exec_ok(
                        &Cmd::new("sh")
                            .args(["-c", "sleep 0.3; echo \"$1\"", "sh"])
                            .arg(i.to_string()),
                    )
                    .unwrap()
                    .stdout
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let want: Vec<String> = (0..8).map(|i| format!("{i}\n")).collect();
    assert_eq!(outs, want);
}

#[test]
fn upload_and_download_round_trip_binary_bytes() {
    let Some(info) = cluster("upload_and_download_round_trip") else {
        return;
    };
    let r = n1(info);
    let dir = tmp_dir("nodes", "updown");
    let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 256) as u8).collect();
    let src = dir.join("src.bin");
    std::fs::write(&src, &data).unwrap();
    let remote = scratch(&r, "updown");
    r.upload(&src, &remote).unwrap();
    let sum = r.exec_ok(&Cmd::new("wc").args(["-c", &remote])).unwrap();
    assert!(
        sum.stdout.starts_with(&data.len().to_string()),
        "{}",
        sum.stdout
    );
    let back = dir.join("back.bin");
    r.download(&remote, &back).unwrap();
    assert_eq!(std::fs::read(&back).unwrap(), data);
    // fetch creates local directories.
    let deep = dir.join("a/b/fetched.bin");
    util::fetch(&r, &remote, &deep).unwrap();
    assert_eq!(std::fs::read(&deep).unwrap(), data);
    let e = r.download("/nonexistent/file", &back).unwrap_err();
    assert!(
        e.to_string().starts_with("n1: download /nonexistent/file"),
        "{e}"
    );
    r.exec_ok(&Cmd::new("rm").arg(&remote)).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn timeout_kills_the_command_and_the_remote_stays_usable() {
    let Some(info) = cluster("timeout_kills_the_command") else {
        return;
    };
    let r = n1(info);
    let pidfile = scratch(&r, "timeout") + ".pidf";
    let cmd = Cmd::new("sh")
        .args(["-c", "echo $$ > \"$1\"; sleep 60", "sh", &pidfile])
        .timeout(Duration::from_secs(3));
    match r.exec(&cmd) {
        Err(RemoteError::Timeout { node, secs, .. }) => {
            assert_eq!(node, "n1");
            assert!((secs - 3.0).abs() < 1e-9);
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    // The same remote still works.
    assert_eq!(
        r.exec_ok(&Cmd::new("echo").arg("ok")).unwrap().stdout,
        "ok\n"
    );
    // The timed-out command's process group was killed on the node.
    let pid: u32 = std::fs::read_to_string(&pidfile)
        .expect("the command ran for 3s without writing its pid file")
        .trim()
        .parse()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "timed-out command still runs"
    );
    // A command that finishes in time is unaffected by having a timeout (and its pid line is
    // not in its output).
    let out = r
        .exec_ok(
            &Cmd::new("echo")
                .arg("fast")
                .timeout(Duration::from_secs(30)),
        )
        .unwrap();
    assert_eq!(out.stdout, "fast\n");
    std::fs::remove_file(&pidfile).unwrap();
}

#[test]
fn a_wrong_private_key_is_a_clear_auth_error() {
    let Some(info) = cluster("a_wrong_private_key") else {
        return;
    };
    let dir = tmp_dir("nodes", "wrongkey");
    let key = dir.join("other_key");
    let st = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&key)
        .status()
        .unwrap();
    assert!(st.success());
    let mut opts = info.ssh_options();
    opts.private_key = Some(key.clone());
    let e = SshRemote::connect(&info.nodes()[1], &opts).unwrap_err();
    assert!(matches!(e, RemoteError::Auth { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(
        msg.starts_with("n2: authentication failed: user root was not accepted with"),
        "{msg}"
    );
    assert!(msg.contains(&key.display().to_string()), "{msg}");
    assert!(e.is_bad_input());
    // A missing key file says so.
    opts.private_key = Some(dir.join("missing"));
    let e = SshRemote::connect(&info.nodes()[1], &opts).unwrap_err();
    assert!(e.to_string().contains("cannot read private key"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_unreachable_node_in_the_cluster_subnet_is_a_clear_connect_error() {
    let Some(info) = cluster("an_unreachable_node") else {
        return;
    };
    let node = Node {
        name: "ghost".into(),
        host: format!("10.213.{}.250", info.octet),
        ssh_port: 22,
        workdir: "/nonexistent".into(),
    };
    let mut opts = info.ssh_options();
    opts.connect_timeout = Duration::from_secs(2);
    let e = SshRemote::connect(&node, &opts).unwrap_err();
    assert!(matches!(e, RemoteError::Connect { .. }), "{e:?}");
    assert!(
        e.to_string().starts_with(&format!(
            "ghost: cannot connect to 10.213.{}.250:22: ",
            info.octet
        )),
        "{e}"
    );
    assert!(e.is_bad_input());
    let a = control::remote_error(e);
    assert_eq!(netsplit::error::exit_code_for(&a), 254);
}

#[test]
fn host_keys_unknown_are_refused_when_strict_accepted_when_new_and_changed_always_refused() {
    let Some(info) = cluster("host_keys") else {
        return;
    };
    let dir = tmp_dir("nodes", "hostkeys");
    let kh = dir.join("known_hosts");
    let node = &info.nodes()[2];
    let mut opts = info.ssh_options();
    opts.known_hosts = kh.clone();
    // Unknown + strict.
    let e = SshRemote::connect(node, &opts).unwrap_err();
    assert!(matches!(e, RemoteError::HostKey { .. }), "{e:?}");
    assert!(e.to_string().contains("strict host key checking"), "{e}");
    // Unknown + accept-new: accepted and recorded; then strict works with the file.
    opts.host_key_policy = HostKeyPolicy::AcceptNew;
    SshRemote::connect(node, &opts).unwrap();
    let text = std::fs::read_to_string(&kh).unwrap();
    assert!(
        text.starts_with(&format!("{} ssh-ed25519 AAAA", node.host)),
        "{text}"
    );
    opts.host_key_policy = HostKeyPolicy::Strict;
    SshRemote::connect(node, &opts).unwrap();
    // Changed (another node's key under this address): refused under either policy.
    let other = std::fs::read_to_string(&info.known_hosts).unwrap();
    let n1_key = other.lines().next().unwrap().split_once(' ').unwrap().1;
    std::fs::write(&kh, format!("{} {n1_key}\n", node.host)).unwrap();
    for policy in [HostKeyPolicy::AcceptNew, HostKeyPolicy::Strict] {
        opts.host_key_policy = policy;
        let e = SshRemote::connect(node, &opts).unwrap_err();
        assert!(e.to_string().contains("has CHANGED"), "{e}");
    }
    // A recorded key of another type is not a changed key: strict says "not known",
    // accept-new records the offered one next to it.
    let ecdsa = dir.join("ecdsa_key");
    assert!(Command::new("ssh-keygen")
        .args(["-q", "-t", "ecdsa", "-N", "", "-f"])
        .arg(&ecdsa)
        .status()
        .unwrap()
        .success());
    let ecdsa_entry = std::fs::read_to_string(dir.join("ecdsa_key.pub")).unwrap();
    let ecdsa_entry = ecdsa_entry.trim();
    std::fs::write(&kh, format!("{} {ecdsa_entry}\n", node.host)).unwrap();
    opts.host_key_policy = HostKeyPolicy::Strict;
    let e = SshRemote::connect(node, &opts).unwrap_err();
    assert!(e.to_string().contains("strict host key checking"), "{e}");
    opts.host_key_policy = HostKeyPolicy::AcceptNew;
    SshRemote::connect(node, &opts).unwrap();
    assert_eq!(std::fs::read_to_string(&kh).unwrap().lines().count(), 2);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn daemons_start_pause_resume_and_stop_by_pid_file() {
    let Some(info) = cluster("daemons_by_pid_file") else {
        return;
    };
    let r = n1(info);
    let base = scratch(&r, "daemon");
    let d = Daemon {
        name: "sleeper".into(),
        argv: vec!["sleep".into(), "1000".into()],
        env: vec![("SLEEPER".into(), "it's $(x)".into())],
        cwd: format!("{base}/run"),
        pidfile: format!("{base}/sleeper.pid"),
        logfile: format!("{base}/log/sleeper.log"),
    };
    let pid = util::start_daemon(&r, &d).unwrap();
    // The recorded pid IS the daemon: `sleep` (once the launcher has exec'd it), in n1's
    // namespace, with its environment.
    let comm = || std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    let deadline = Instant::now() + Duration::from_secs(5);
    while comm().trim() != "sleep" && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(
        std::fs::read_to_string(format!("/proc/{pid}/comm"))
            .unwrap()
            .trim(),
        "sleep"
    );
    let ns = std::fs::metadata(format!("/run/netns/{}", info.nodes[0].netns))
        .unwrap()
        .ino();
    assert_eq!(
        std::fs::metadata(format!("/proc/{pid}/ns/net"))
            .unwrap()
            .ino(),
        ns
    );
    // The kernel names the new program (comm) before the ELF loader has set up its
    // environment: right after exec, /proc/<pid>/environ can still read empty. Poll.
    let has_env = || {
        std::fs::read(format!("/proc/{pid}/environ"))
            .unwrap_or_default()
            .split(|b| *b == 0)
            .any(|e| e == b"SLEEPER=it's $(x)")
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    while !has_env() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(has_env(), "the daemon's environment lacks SLEEPER");
    assert_eq!(
        std::fs::read_to_string(&d.pidfile).unwrap().trim(),
        pid.to_string()
    );
    assert!(util::daemon_running(&r, &d.pidfile).unwrap());
    // Starting again is a no-op returning the same pid.
    assert_eq!(util::start_daemon(&r, &d).unwrap(), pid);

    assert!(util::signal_daemon(&r, &d.pidfile, Signal::Stop).unwrap());
    let deadline = Instant::now() + Duration::from_secs(5);
    while proc_state(pid) != Some('T') && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(proc_state(pid), Some('T'));
    assert!(util::signal_daemon(&r, &d.pidfile, Signal::Cont).unwrap());
    let deadline = Instant::now() + Duration::from_secs(5);
    while proc_state(pid) == Some('T') && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(
        matches!(proc_state(pid), Some('S' | 'R')),
        "{:?}",
        proc_state(pid)
    );

    // A paused daemon still stops (SIGCONT follows SIGTERM).
    util::signal_daemon(&r, &d.pidfile, Signal::Stop).unwrap();
    assert!(util::stop_daemon(&r, &d.pidfile, Duration::from_secs(2)).unwrap());
    assert!(!Path::new(&format!("/proc/{pid}")).exists() || proc_state(pid) == Some('Z'));
    assert!(!Path::new(&d.pidfile).exists());
    assert!(!util::daemon_running(&r, &d.pidfile).unwrap());
    assert!(!util::signal_daemon(&r, &d.pidfile, Signal::Kill).unwrap());
    assert!(!util::stop_daemon(&r, &d.pidfile, Duration::from_secs(1)).unwrap());
    r.exec_ok(&Cmd::new("rm").args(["-rf", &base])).unwrap();
}

#[test]
fn write_file_creates_directories_and_templates_render() {
    let Some(info) = cluster("write_file_and_templates") else {
        return;
    };
    let r = n1(info);
    let base = scratch(&r, "write");
    let path = format!("{base}/deep/er/conf 'x'.txt");
    util::write_file(&r, &path, b"a\0b\n$(x)\n").unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"a\0b\n$(x)\n");
    util::write_template(&r, &path, "name={{name}}\n", &[("name", &r.node().name)]).unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "name=n1\n");
    let e = util::write_template(&r, &path, "{{nope}}", &[]).unwrap_err();
    assert!(
        e.to_string().contains("unknown placeholder {{nope}}"),
        "{e}"
    );
    r.exec_ok(&Cmd::new("rm").args(["-rf", &base])).unwrap();
}

#[test]
fn installed_packages_are_not_reinstalled_and_bad_names_refused() {
    let Some(info) = cluster("install_packages") else {
        return;
    };
    let r = n1(info);
    assert!(!util::install_packages(&r, &["coreutils", "openssh-server"]).unwrap());
    let e = util::install_packages(&r, &["$(touch /tmp/x)"]).unwrap_err();
    assert!(
        e.to_string().contains("is not a Debian package name"),
        "{e}"
    );
    for n in &info.nodes {
        util::wait_for_port(&n.address, 22, Duration::from_secs(2)).unwrap();
    }
}

/// Exit code, stdout and stderr of `netsplit args…`.
fn netsplit(args: &[&str]) -> (i32, String, String) {
    let out = support::netsplit(args);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn exec_command_prefixes_lines_and_maps_failures_to_exit_codes() {
    let Some(info) = cluster("exec_command") else {
        return;
    };
    let (code, out, err) = netsplit(&["exec", "--cluster", CLUSTER, "--", "hostname", "-I"]);
    assert_eq!(code, 0, "{err}");
    // (`hostname -I` ends its line with a space.)
    let mut lines: Vec<&str> = out.lines().map(str::trim_end).collect();
    lines.sort();
    let want: Vec<String> = info
        .nodes
        .iter()
        .map(|n| format!("{}: {}", n.name, n.address))
        .collect();
    assert_eq!(lines, want);

    let (code, out, err) = netsplit(&[
        "exec",
        "--cluster",
        CLUSTER,
        "--node",
        "n2",
        "--",
        "sh",
        "-c",
        "echo o; echo e >&2; exit 3",
    ]);
    assert_eq!((code, out.as_str()), (1, "n2: o\n"));
    assert!(
        err.contains("n2: e\n") && err.contains("n2: exited 3"),
        "{err}"
    );

    let (code, _, err) = netsplit(&["exec", "--cluster", CLUSTER, "--node", "n9", "--", "true"]);
    assert_eq!(code, 254);
    assert!(err.contains("no node named \"n9\""), "{err}");

    let (code, _, err) = netsplit(&["exec", "--cluster", "t-absent", "--", "true"]);
    assert_eq!(code, 254);
    assert!(err.contains("no local cluster named \"t-absent\""), "{err}");

    // A real-node list with an unreachable address: 254 and the node named.
    let ghost = format!("10.213.{}.251", info.octet);
    let key = info.private_key.display().to_string();
    let (code, _, err) = netsplit(&[
        "exec",
        "--nodes",
        &ghost,
        "--ssh-private-key",
        &key,
        "--",
        "true",
    ]);
    assert_eq!(code, 254, "{err}");
    assert!(
        err.contains(&format!("{ghost}: error: cannot connect to {ghost}:22")),
        "{err}"
    );

    let (code, out, _) = netsplit(&["cluster", "status", "--name", CLUSTER]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("healthy"), "{out}");
}

/// Everything on the host that mentions a cluster: namespaces, links, /etc/netns entries,
/// iptables rules, the state directory.
fn traces_of(name: &str, octet: u8) -> Vec<String> {
    let mut t = Vec::new();
    for e in std::fs::read_dir("/run/netns")
        .into_iter()
        .flatten()
        .flatten()
    {
        let n = e.file_name().to_string_lossy().into_owned();
        if n.starts_with(&format!("ns-{name}-")) {
            t.push(format!("namespace {n}"));
        }
    }
    for e in std::fs::read_dir("/sys/class/net")
        .into_iter()
        .flatten()
        .flatten()
    {
        let n = e.file_name().to_string_lossy().into_owned();
        if n == format!("nsbr-{name}") || n.starts_with(&format!("nsv{octet}-")) {
            t.push(format!("link {n}"));
        }
    }
    for e in std::fs::read_dir("/etc/netns")
        .into_iter()
        .flatten()
        .flatten()
    {
        let n = e.file_name().to_string_lossy().into_owned();
        if n.starts_with(&format!("ns-{name}-")) {
            t.push(format!("/etc/netns/{n}"));
        }
    }
    if let Ok(o) = Command::new("iptables").args(["-w", "-S"]).output() {
        let s = String::from_utf8_lossy(&o.stdout).into_owned();
        if s.contains(&format!("netsplit-cluster-{name}")) {
            t.push("iptables rule".into());
        }
    }
    if cluster::cluster_dir(name).exists() {
        t.push(format!("{}", cluster::cluster_dir(name).display()));
    }
    t
}

#[test]
fn cluster_up_is_idempotent_repairs_and_down_leaves_nothing_behind() {
    if !root_or_skip(
        "nodes::cluster_up_is_idempotent",
        "needs root to make network namespaces",
    ) {
        return;
    }
    let name = "t-life";
    let _ = cluster::down(name);
    let first = cluster::up(name, 5).unwrap();
    eprintln!(
        "cluster up of 5 nodes took {:.2}s",
        first.elapsed.as_secs_f64()
    );
    assert!(first.changed);
    let info = first.info.clone();
    assert_eq!(info.nodes.len(), 5);
    let again = cluster::up(name, 5).unwrap();
    assert!(!again.changed, "a healthy cluster was touched");
    assert_eq!(again.info, info);
    assert!(cluster::status(name).unwrap().unwrap().healthy());

    // A session to n2 that is about to die with every process on n2.
    let r2 = SshRemote::connect(&info.nodes()[1], &info.ssh_options()).unwrap();
    r2.exec_ok(&Cmd::new("true")).unwrap();
    // Kill everything on n2 (its sshd and the session's process) and delete n3's namespace:
    // `up` repairs both.
    let n2_pids = Command::new("ip")
        .args(["netns", "pids", &info.nodes[1].netns])
        .output()
        .unwrap();
    for p in String::from_utf8_lossy(&n2_pids.stdout).split_whitespace() {
        unsafe { libc::kill(p.parse().unwrap(), libc::SIGKILL) };
    }
    let sshd3: u32 = std::fs::read_to_string(info.nodes[2].workdir.join("sshd/sshd.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    unsafe { libc::kill(sshd3 as i32, libc::SIGKILL) };
    std::thread::sleep(Duration::from_millis(100));
    assert!(Command::new("ip")
        .args(["netns", "del", &info.nodes[2].netns])
        .status()
        .unwrap()
        .success());
    assert!(!cluster::status(name).unwrap().unwrap().healthy());
    let repaired = cluster::up(name, 5).unwrap();
    assert!(repaired.changed);
    assert!(cluster::status(name).unwrap().unwrap().healthy());
    // The remote notices its dead session and reconnects on its own.
    assert_eq!(r2.exec_ok(&Cmd::new("hostname")).unwrap().stdout, "n2\n");
    drop(r2);

    // Shrinking removes the extra nodes' namespaces.
    let small = cluster::up(name, 4).unwrap();
    assert_eq!(small.info.nodes.len(), 4);
    assert!(!Path::new(&format!("/run/netns/{}", info.nodes[4].netns)).exists());

    // Leave processes behind on purpose: a daemon with a pid file and a stray ssh child.
    let remotes = netsplit::nodes::connect_all(&ResolvedNodes::from_cluster(&small.info)).unwrap();
    let r = &remotes[0];
    let daemon_pid = util::start_daemon(
        r.as_ref(),
        &Daemon {
            name: "sleeper".into(),
            argv: vec!["sleep".into(), "1000".into()],
            env: vec![],
            cwd: r.node().workdir.clone(),
            pidfile: format!("{}/db/sleeper.pid", r.node().workdir),
            logfile: format!("{}/db/sleeper.log", r.node().workdir),
        },
    )
    .unwrap();
    let stray: u32 = r
        .exec_ok(&Cmd::new("sh").args(["-c", "setsid sleep 1000 >/dev/null 2>&1 & echo $!"]))
        .unwrap()
        .stdout
        .trim()
        .parse()
        .unwrap();
    let sshds: Vec<u32> = small
        .info
        .nodes
        .iter()
        .map(|n| {
            std::fs::read_to_string(n.workdir.join("sshd/sshd.pid"))
                .unwrap()
                .trim()
                .parse()
                .unwrap()
        })
        .collect();
    drop(remotes);

    let report = cluster::down(name).unwrap();
    assert_eq!(report.namespaces.len(), 4);
    assert!(report.bridge && report.state_dir);
    for pid in sshds.iter().chain([&daemon_pid, &stray]) {
        let gone = !Path::new(&format!("/proc/{pid}")).exists() || proc_state(*pid) == Some('Z');
        assert!(gone, "process {pid} survived cluster down");
    }
    assert_eq!(traces_of(name, info.octet), Vec::<String>::new());
    // Idempotent, and traffic to the old addresses is now refused.
    assert!(cluster::down(name).unwrap().nothing());
    let e = cluster::verify_routes(&info).unwrap_err();
    assert_eq!(netsplit::error::exit_code_for(&e), 254);
    assert!(
        e.to_string().contains("bridge nsbr-t-life is missing"),
        "{e}"
    );
}

#[test]
fn missing_packages_install_once_per_host_from_inside_a_node_namespace() {
    // Installs (and then removes) the tiny package `sl` on the host through the local nodes:
    // needs network access to a Debian mirror, so it is opt-in.
    if std::env::var_os("NETSPLIT_TEST_APT").is_none() {
        skip(
            "nodes::missing_packages_install_once_per_host",
            "set NETSPLIT_TEST_APT=1 to let it install and remove the Debian package `sl` on \
             this host (needs a mirror)",
        );
        return;
    }
    let Some(info) = cluster("missing_packages_install_once_per_host") else {
        return;
    };
    let _ = Command::new("apt-get")
        .args(["remove", "-y", "-q", "sl"])
        .output();
    let remotes = netsplit::nodes::connect_all(&ResolvedNodes::from_cluster(info)).unwrap();
    let results = control::on_all(&remotes, |r| util::install_packages(r, &["sl"]));
    let ran: Vec<bool> = results.into_iter().map(|(_, r)| r.unwrap()).collect();
    // Every node reports success, and apt ran on exactly one of them: the others found the
    // package installed once they held the host lock.
    assert_eq!(ran.iter().filter(|x| **x).count(), 1, "{ran:?}");
    assert!(Path::new("/usr/games/sl").exists());
    assert!(!util::install_packages(remotes[0].as_ref(), &["sl"]).unwrap());
    let _ = Command::new("apt-get")
        .args(["remove", "-y", "-q", "sl"])
        .output();
}

#[test]
fn cluster_up_without_root_says_it_needs_root() {
    // Run as root, drop to `nobody` with setpriv; run as a normal user, just run it.
    let bin = bin();
    let out = if is_root() {
        if !Path::new("/usr/bin/setpriv").exists() {
            skip(
                "nodes::cluster_up_without_root",
                "no setpriv to drop root with",
            );
            return;
        }
        Command::new("/usr/bin/setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", bin])
            .args(["cluster", "up", "--name", "t-noroot"])
            .output()
            .unwrap()
    } else {
        Command::new(bin)
            .args(["cluster", "up", "--name", "t-noroot"])
            .output()
            .unwrap()
    };
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(254), "{err}");
    assert!(err.contains("netsplit cluster up needs root"), "{err}");
    assert!(!cluster::cluster_dir("t-noroot").exists());
}

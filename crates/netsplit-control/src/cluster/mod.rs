//! Local clusters (docs/local-clusters.md): N nodes on this machine, each a network namespace on a
//! private bridge with its own address and its own sshd, so the control node reaches them
//! exactly as it reaches VMs — over SSH.
//!
//! Layout of a cluster `NAME` (base directory `/var/lib/netsplit`, or `$NETSPLIT_HOME`):
//! ```text
//! <base>/clusters/NAME/cluster.json      node list other commands read (ClusterInfo)
//!                      id_ed25519[.pub]  the cluster's client key
//!                      authorized_keys   what every node's sshd accepts
//!                      known_hosts       every node's host key (checked strictly)
//!                      nodes/nI/         node nI's own directory (data, logs, pid files)
//!                      nodes/nI/sshd/    its sshd config, host key, pid file and log
//! ```
//! Network: bridge `nsbr-NAME` holding `10.213.K.1/24` (the control node's address as nodes
//! see it), namespace `ns-NAME-nI` with `eth0` = `10.213.K.(10+I)/24` and loopback up, joined
//! to the bridge by a veth pair whose host side is `nsvK-I`. K is derived from the name and
//! checked against every host route and address. Nodes get no default route: they reach each
//! other and the control node, nothing else. Each node's sshd also runs in its own UTS
//! namespace (hostname `nI`) and sees `/etc/netns/ns-NAME-nI/hosts` (all node names) as
//! `/etc/hosts`.
//!
//! Isolation rules: processes are controlled by pid file only. `down` signals the processes
//! named by `nodes/nI/**/*.pid` (and only if they live in that node's namespace), then kills
//! whatever is still inside the node's namespace — never anything matched by name.

mod host;
mod net;

pub(crate) use host::ensure_prerequisites;
pub use host::is_root;

use crate::ssh::{HostKeyPolicy, SshOptions};
use crate::{Cmd, Node};
use anyhow::{anyhow, Context};
use host::{require_root, run, HostLock};
use netsplit_check::error::bad_input;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The `ip netns` name `cluster up` gives the host's own network namespace, so that commands
/// on a local node can reach the outside world through it (e.g. apt; see
/// [`crate::util::install_packages`]).
pub(crate) const HOST_NETNS: &str = "netsplit-host";

/// Default number of nodes.
pub const DEFAULT_NODES: usize = 5;
/// Largest cluster `up` makes (addresses .11 … .210 of the /24).
pub(crate) const MAX_NODES: usize = 200;

/// A local cluster as `cluster up` left it: serialised to `cluster.json`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ClusterInfo {
    /// The cluster's name (`default`).
    pub name: String,
    /// The cluster directory.
    pub dir: PathBuf,
    /// Third octet of the subnet `10.213.K.0/24`.
    pub octet: u8,
    /// The subnet in CIDR form.
    pub subnet: String,
    /// The host's bridge.
    pub bridge: String,
    /// The bridge's address: how nodes see the control node (never to be partitioned away).
    pub control_address: String,
    /// The cluster's client private key.
    pub private_key: PathBuf,
    /// known_hosts with every node's host key.
    pub known_hosts: PathBuf,
    /// Whether `up` added a FORWARD accept rule for the bridge (host policy was not ACCEPT).
    pub forward_rule: bool,
    /// n1…nN, in order.
    pub nodes: Vec<LocalNode>,
}

/// One node of a local cluster.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LocalNode {
    /// `n1` …
    pub name: String,
    /// Its address on the bridge.
    pub address: String,
    /// sshd port (22, inside the namespace).
    pub ssh_port: u16,
    /// The node's own directory (data, logs, pid files).
    pub workdir: PathBuf,
    /// Its network namespace (`ip netns` name).
    pub netns: String,
    /// Host side of its veth pair.
    pub veth: String,
}

impl LocalNode {
    fn sshd_dir(&self) -> PathBuf {
        self.workdir.join("sshd")
    }
    fn sshd_pidfile(&self) -> PathBuf {
        self.sshd_dir().join("sshd.pid")
    }
}

impl LocalNode {
    /// The node's number (`n3` → 3).
    fn index(&self) -> usize {
        self.name.trim_start_matches('n').parse().unwrap_or(0)
    }
    /// The third octet of its address.
    fn octet_of_address(&self) -> u8 {
        self.address
            .split('.')
            .nth(2)
            .and_then(|o| o.parse().ok())
            .unwrap_or(0)
    }
}

/// A locally administered MAC for node `i` of the cluster with octet `k` (`i = 0`: the bridge).
fn node_mac(k: u8, i: usize) -> String {
    format!("02:4e:53:{k:02x}:{:02x}:{:02x}", (i >> 8) & 0xff, i & 0xff)
}

impl ClusterInfo {
    /// The nodes as every [`Remote`](crate::Remote) and target sees them.
    pub fn nodes(&self) -> Vec<Node> {
        self.nodes
            .iter()
            .map(|n| Node {
                name: n.name.clone(),
                host: n.address.clone(),
                ssh_port: n.ssh_port,
                workdir: n.workdir.display().to_string(),
            })
            .collect()
    }

    /// SSH options for this cluster: root, the cluster key, its known_hosts, strictly.
    pub fn ssh_options(&self) -> SshOptions {
        SshOptions {
            username: "root".into(),
            private_key: Some(self.private_key.clone()),
            known_hosts: self.known_hosts.clone(),
            host_key_policy: HostKeyPolicy::Strict,
            connect_timeout: Duration::from_secs(5),
            route_via: Some(self.bridge.clone()),
        }
    }

    /// The local node named `name`.
    pub fn node(&self, name: &str) -> Option<&LocalNode> {
        self.nodes.iter().find(|n| n.name == name)
    }
}

/// The base directory: `$NETSPLIT_HOME` (made absolute: sshd configs name files in it) or
/// `/var/lib/netsplit`.
pub(crate) fn base_dir() -> PathBuf {
    match std::env::var_os("NETSPLIT_HOME").filter(|h| !h.is_empty()) {
        Some(h) => std::path::absolute(PathBuf::from(h)).unwrap_or_default(),
        None => PathBuf::from("/var/lib/netsplit"),
    }
}

/// The directory of cluster `name`.
pub fn cluster_dir(name: &str) -> PathBuf {
    base_dir().join("clusters").join(name)
}

/// Checks a cluster name: 1–10 characters of `a-z0-9-`, starting with a letter or digit (it
/// becomes part of interface names, which the kernel limits to 15 characters).
pub(crate) fn validate_name(name: &str) -> anyhow::Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 10
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-');
    if ok {
        Ok(())
    } else {
        Err(bad_input(format!(
            "bad cluster name {name:?}: use 1-10 characters of a-z, 0-9 and '-'"
        )))
    }
}

/// True for namespace names of local-cluster nodes (`ns-NAME-nI`).
fn is_node_netns(ns: &str) -> bool {
    let Some(rest) = ns.strip_prefix("ns-") else {
        return false;
    };
    match rest.rsplit_once("-n") {
        Some((name, i)) => {
            validate_name(name).is_ok() && !i.is_empty() && i.bytes().all(|b| b.is_ascii_digit())
        }
        None => false,
    }
}

fn netns_name(cluster: &str, i: usize) -> String {
    format!("ns-{cluster}-n{i}")
}

fn bridge_name(cluster: &str) -> String {
    format!("nsbr-{cluster}")
}

/// Reads `cluster.json` of cluster `name`; `None` when there is no such cluster.
pub fn load(name: &str) -> anyhow::Result<Option<ClusterInfo>> {
    validate_name(name)?;
    let path = cluster_dir(name).join("cluster.json");
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(bad_input(format!("{}: {e}", path.display()))),
    };
    let info: ClusterInfo = serde_json::from_str(&text).map_err(|e| {
        bad_input(format!(
            "{}: {e} (remove the cluster with `netsplit cluster down --name {name}`)",
            path.display()
        ))
    })?;
    Ok(Some(info))
}

/// Refuses traffic to a local cluster whose bridge or route is missing: without them, packets
/// to the cluster's addresses would follow the default route and leave the machine.
pub fn verify_routes(info: &ClusterInfo) -> anyhow::Result<()> {
    let fix = format!("run `netsplit cluster up --name {}`", info.name);
    if !crate::route::link_exists(&info.bridge) {
        return Err(bad_input(format!(
            "local cluster {}: bridge {} is missing; refusing to send traffic to {} ({fix})",
            info.name, info.bridge, info.subnet
        )));
    }
    for n in &info.nodes {
        match crate::route::route_dev(&n.address) {
            Some(dev) if dev == info.bridge => {}
            other => {
                return Err(bad_input(format!(
                    "local cluster {}: {} ({}) is routed via {} instead of bridge {}; refusing \
                     to send traffic there ({fix})",
                    info.name,
                    n.name,
                    n.address,
                    other.as_deref().unwrap_or("nothing"),
                    info.bridge
                )))
            }
        }
    }
    Ok(())
}

/// What `up` did.
#[derive(Debug, Clone)]
pub struct UpReport {
    /// The cluster as it now is (also in `cluster.json`).
    pub info: ClusterInfo,
    /// False when the cluster was already up and healthy and nothing was touched.
    pub changed: bool,
    /// Wall time of the whole `up`, including the SSH login check.
    pub elapsed: Duration,
}

/// Brings cluster `name` up with `n` nodes, or reuses it: the entry point for the runner.
pub fn ensure_up(name: &str, n: usize) -> anyhow::Result<ClusterInfo> {
    Ok(up(name, n)?.info)
}

/// Makes (or repairs, grows, shrinks) cluster `name` so that it has nodes n1…n`n`, each with
/// its namespace, link, address and a reachable sshd. Idempotent: on a healthy cluster of the
/// right size nothing changes. Needs root.
pub fn up(name: &str, n: usize) -> anyhow::Result<UpReport> {
    let started = Instant::now();
    validate_name(name)?;
    if n == 0 || n > MAX_NODES {
        return Err(bad_input(format!(
            "--nodes {n}: a local cluster has 1 to {MAX_NODES} nodes"
        )));
    }
    require_root("netsplit cluster up")?;
    ensure_prerequisites()?;
    let _lock = HostLock::acquire(&base_dir().join("lock"))?;
    let dir = cluster_dir(name);
    let old = load(name)?;
    let mut changed = old.is_none();

    let bridge = bridge_name(name);
    // A crashed `up` may have left the bridge without cluster.json: keep its subnet.
    let octet = match (&old, net::bridge_octet(&bridge)) {
        (Some(o), _) => o.octet,
        (None, Some(k)) => k,
        (None, None) => net::choose_octet(name, &taken_octets(name))?,
    };
    let subnet = format!(
        "{}.{}.{octet}.0/24",
        net::SUBNET_BASE[0],
        net::SUBNET_BASE[1]
    );
    let control_address = format!("{}.{}.{octet}.1", net::SUBNET_BASE[0], net::SUBNET_BASE[1]);

    // Files: directories, the client key, authorized_keys.
    std::fs::create_dir_all(dir.join("nodes"))
        .with_context(|| format!("creating {}", dir.display()))?;
    let private_key = dir.join("id_ed25519");
    if !private_key.exists() || !dir.join("id_ed25519.pub").exists() {
        let _ = std::fs::remove_file(&private_key);
        let _ = std::fs::remove_file(dir.join("id_ed25519.pub"));
        keygen(&private_key, &format!("netsplit-cluster-{name}"))?;
        changed = true;
    }
    let pubkey = std::fs::read_to_string(dir.join("id_ed25519.pub"))?;
    changed |= write_if_changed(&dir.join("authorized_keys"), pubkey.as_bytes())?;
    // Name the host's own network namespace, so node utilities can run apt there (a node has
    // no route to package mirrors, and shares the host's filesystem anyway).
    if !net::netns_exists(HOST_NETNS) {
        run(
            "ip",
            &[
                "netns",
                "attach",
                HOST_NETNS,
                &std::process::id().to_string(),
            ],
        )?;
    }
    // sshd refuses to start without its privilege-separation directory.
    std::fs::create_dir_all("/run/sshd").context("creating /run/sshd")?;

    // The bridge.
    if !net::link_exists(&bridge) {
        // A fixed MAC: by default a bridge takes its lowest port's, which changes as nodes
        // come and go and would stale the nodes' ARP entry for the control address.
        let mac = node_mac(octet, 0);
        run(
            "ip",
            &[
                "link", "add", "name", &bridge, "address", &mac, "type", "bridge",
            ],
        )?;
        changed = true;
    }
    let gw_cidr = format!("{control_address}/24");
    if !net::has_addr(None, &bridge, &gw_cidr) {
        run("ip", &["addr", "add", &gw_cidr, "dev", &bridge])?;
        changed = true;
    }
    run("ip", &["link", "set", &bridge, "up"])?;
    let mut forward_rule = old.as_ref().map(|o| o.forward_rule).unwrap_or(false);
    if forward_rule || net::forward_policy().is_some_and(|p| p != "ACCEPT") {
        changed |= net::add_forward_rule(&bridge, name)?;
        forward_rule = true;
    }

    // Nodes beyond n (a smaller cluster was asked for) go away.
    if let Some(o) = &old {
        for extra in o.nodes.iter().skip(n) {
            teardown_node(extra);
            let _ = std::fs::remove_dir_all(&extra.workdir);
            changed = true;
        }
    }
    let nodes: Vec<LocalNode> = (1..=n)
        .map(|i| LocalNode {
            name: format!("n{i}"),
            address: format!(
                "{}.{}.{octet}.{}",
                net::SUBNET_BASE[0],
                net::SUBNET_BASE[1],
                10 + i
            ),
            ssh_port: 22,
            workdir: dir.join("nodes").join(format!("n{i}")),
            netns: netns_name(name, i),
            veth: format!("nsv{octet}-{i}"),
        })
        .collect();
    let hosts = hosts_file(&nodes);
    tracing::info!(cluster = name, elapsed = ?started.elapsed(), "host and bridge ready");
    let results: Vec<anyhow::Result<bool>> = std::thread::scope(|s| {
        let hs: Vec<_> = nodes
            .iter()
            .map(|node| {
                let (bridge, hosts, dir) = (&bridge, &hosts, &dir);
                s.spawn(move || ensure_node(node, bridge, hosts, dir))
            })
            .collect();
        hs.into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow!("node setup panicked")))
            })
            .collect()
    });
    for (node, r) in nodes.iter().zip(results) {
        changed |= r.with_context(|| format!("setting up local node {}", node.name))?;
    }

    tracing::info!(cluster = name, elapsed = ?started.elapsed(), "nodes and sshds ready");
    // Host keys into known_hosts, then the node list.
    let mut kh = String::new();
    for node in &nodes {
        let pubf = node.sshd_dir().join("ssh_host_ed25519_key.pub");
        let text = std::fs::read_to_string(&pubf)
            .with_context(|| format!("reading {}", pubf.display()))?;
        let mut f = text.split_whitespace();
        let (kt, key) = (f.next().unwrap_or(""), f.next().unwrap_or(""));
        kh.push_str(&format!("{} {kt} {key}\n", node.address));
    }
    let known_hosts = dir.join("known_hosts");
    changed |= write_if_changed(&known_hosts, kh.as_bytes())?;
    let info = ClusterInfo {
        name: name.to_string(),
        dir: dir.clone(),
        octet,
        subnet,
        bridge,
        control_address,
        private_key,
        known_hosts,
        forward_rule,
        nodes,
    };
    let json = serde_json::to_string_pretty(&info)? + "\n";
    let cj = dir.join("cluster.json");
    if std::fs::read(&cj).ok().as_deref() != Some(json.as_bytes()) {
        let tmp = dir.join("cluster.json.tmp");
        std::fs::write(&tmp, &json)?;
        std::fs::rename(&tmp, &cj)?;
        changed = true;
    }

    // The proof: every sshd answers and accepts the cluster key.
    tracing::info!(cluster = name, elapsed = ?started.elapsed(), "checking SSH logins");
    verify_routes(&info)?;
    for node in &info.nodes {
        crate::util::wait_for_port(&node.address, node.ssh_port, Duration::from_secs(10))
            .with_context(|| format!("waiting for sshd on local node {}", node.name))?;
    }
    let remotes = crate::ssh::connect_nodes(&info.nodes(), &info.ssh_options())?;
    for (node, r) in crate::on_all(&remotes, |r| r.exec_ok(&Cmd::new("true"))) {
        r.map_err(|e| anyhow!("local node {node} does not answer over SSH: {e}"))?;
    }
    Ok(UpReport {
        info,
        changed,
        elapsed: started.elapsed(),
    })
}

/// Third octets used by other clusters under the base directory.
fn taken_octets(except: &str) -> BTreeSet<u8> {
    let mut out = BTreeSet::new();
    if let Ok(rd) = std::fs::read_dir(base_dir().join("clusters")) {
        for e in rd.flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            if n == except {
                continue;
            }
            if let Ok(Some(info)) = load(&n) {
                out.insert(info.octet);
            }
        }
    }
    out
}

fn keygen(path: &Path, comment: &str) -> anyhow::Result<()> {
    let p = path.to_str().ok_or_else(|| anyhow!("non-UTF-8 path"))?;
    run(
        "ssh-keygen",
        &["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", p],
    )?;
    Ok(())
}

/// Writes `bytes` unless the file already holds exactly them (in place, so bind mounts of the
/// file see the change); returns whether it wrote.
fn write_if_changed(path: &Path, bytes: &[u8]) -> anyhow::Result<bool> {
    if std::fs::read(path).ok().as_deref() == Some(bytes) {
        return Ok(false);
    }
    std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))?;
    Ok(true)
}

fn hosts_file(nodes: &[LocalNode]) -> String {
    let mut s = String::from("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
    for n in nodes {
        s.push_str(&format!("{}\t{}\n", n.address, n.name));
    }
    s
}

fn sshd_config(node: &LocalNode, cluster_dir: &Path) -> String {
    let d = node.sshd_dir();
    format!(
        "# netsplit local node {name}: generated by `netsplit cluster up`\n\
         ListenAddress {addr}:{port}\n\
         HostKey {d}/ssh_host_ed25519_key\n\
         PidFile {d}/sshd.pid\n\
         AuthorizedKeysFile {cdir}/authorized_keys\n\
         PermitRootLogin prohibit-password\n\
         PubkeyAuthentication yes\n\
         PasswordAuthentication no\n\
         KbdInteractiveAuthentication no\n\
         UsePAM no\n\
         StrictModes no\n\
         UseDNS no\n\
         PrintMotd no\n\
         PrintLastLog no\n\
         X11Forwarding no\n\
         AllowTcpForwarding no\n\
         MaxStartups 100:30:200\n\
         MaxSessions 100\n\
         LogLevel INFO\n\
         # bash sources ~/.bashrc for commands run by sshd unless SHLVL says it is nested;\n\
         # the host's root .bashrc (pyenv, conda, ...) has no business on a node.\n\
         SetEnv SHLVL=1\n\
         Subsystem sftp internal-sftp\n",
        name = node.name,
        addr = node.address,
        port = node.ssh_port,
        d = d.display(),
        cdir = cluster_dir.display(),
    )
}

/// The pid in a pid file, if it names a live process inside namespace `ns`.
fn live_pid_in_ns(pidfile: &Path, ns: &str) -> Option<u32> {
    let pid: u32 = std::fs::read_to_string(pidfile).ok()?.trim().parse().ok()?;
    let want = net::netns_inode(ns)?;
    (net::pid_netns_inode(pid)? == want).then_some(pid)
}

/// Makes one node whole; returns whether anything had to change.
fn ensure_node(
    node: &LocalNode,
    bridge: &str,
    hosts: &str,
    cluster_dir: &Path,
) -> anyhow::Result<bool> {
    let mut changed = false;
    let ns = node.netns.as_str();
    if !net::netns_exists(ns) {
        run("ip", &["netns", "add", ns])?;
        changed = true;
    }
    if !net::link_exists(&node.veth) {
        // A stale peer left in the namespace would block the new pair's name.
        if host::succeeds("ip", &["-n", ns, "link", "show", "eth0"]) {
            run("ip", &["-n", ns, "link", "del", "eth0"])?;
        }
        // A fixed MAC per node: a re-created node keeps its address's ARP entries valid in
        // the host and the other nodes.
        let mac = node_mac(node.octet_of_address(), node.index());
        run(
            "ip",
            &[
                "link", "add", &node.veth, "type", "veth", "peer", "name", "eth0", "address", &mac,
                "netns", ns,
            ],
        )?;
        let _ = host::succeeds("ip", &["neigh", "del", &node.address, "dev", bridge]);
        changed = true;
    }
    run("ip", &["link", "set", &node.veth, "master", bridge, "up"])?;
    let cidr = format!("{}/24", node.address);
    if !net::has_addr(Some(ns), "eth0", &cidr) {
        run("ip", &["-n", ns, "addr", "add", &cidr, "dev", "eth0"])?;
        changed = true;
    }
    run("ip", &["-n", ns, "link", "set", "lo", "up"])?;
    run("ip", &["-n", ns, "link", "set", "eth0", "up"])?;

    // `ip netns exec` shows /etc/netns/<ns>/hosts to the node as /etc/hosts.
    let etc = Path::new("/etc/netns").join(ns);
    std::fs::create_dir_all(&etc).with_context(|| format!("creating {}", etc.display()))?;
    changed |= write_if_changed(&etc.join("hosts"), hosts.as_bytes())?;

    let sdir = node.sshd_dir();
    std::fs::create_dir_all(&sdir).with_context(|| format!("creating {}", sdir.display()))?;
    let hostkey = sdir.join("ssh_host_ed25519_key");
    if !hostkey.exists() || !sdir.join("ssh_host_ed25519_key.pub").exists() {
        let _ = std::fs::remove_file(&hostkey);
        let _ = std::fs::remove_file(sdir.join("ssh_host_ed25519_key.pub"));
        keygen(&hostkey, &format!("netsplit-{}", node.name))?;
        changed = true;
    }
    let cfg = sdir.join("sshd_config");
    let cfg_changed = write_if_changed(&cfg, sshd_config(node, cluster_dir).as_bytes())?;
    let pidfile = node.sshd_pidfile();
    let running = live_pid_in_ns(&pidfile, ns);
    if let (Some(pid), true) = (running, cfg_changed) {
        kill_and_wait(&[pid], Duration::from_secs(2));
    }
    if running.is_none() || cfg_changed {
        let _ = std::fs::remove_file(&pidfile);
        let sshd = host::which("sshd").ok_or_else(|| anyhow!("sshd is not installed"))?;
        let log = sdir.join("sshd.log");
        run(
            "ip",
            &[
                "netns",
                "exec",
                ns,
                "unshare",
                "--uts",
                "sh",
                "-c",
                "hostname \"$1\" && exec \"$2\" -f \"$3\" -E \"$4\"",
                "sh",
                &node.name,
                &sshd.display().to_string(),
                &cfg.display().to_string(),
                &log.display().to_string(),
            ],
        )
        .context("starting sshd")?;
        let deadline = Instant::now() + Duration::from_secs(5);
        while live_pid_in_ns(&pidfile, ns).is_none() {
            if Instant::now() > deadline {
                let log_tail = std::fs::read_to_string(&log).unwrap_or_default();
                return Err(anyhow!(
                    "sshd did not start: {}",
                    crate::tail(&log_tail, 300)
                ));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        changed = true;
    }
    Ok(changed)
}

/// Sends SIGTERM (and SIGCONT, so stopped processes see it) to `pids`, waits up to `grace`,
/// then SIGKILLs the survivors and waits for them to vanish.
fn kill_and_wait(pids: &[u32], grace: Duration) {
    let alive = |p: u32| unsafe { libc::kill(p as libc::pid_t, 0) == 0 } && !is_zombie(p);
    for &p in pids {
        unsafe {
            libc::kill(p as libc::pid_t, libc::SIGTERM);
            libc::kill(p as libc::pid_t, libc::SIGCONT);
        }
    }
    let deadline = Instant::now() + grace;
    while pids.iter().any(|&p| alive(p)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    for &p in pids {
        if alive(p) {
            unsafe {
                libc::kill(p as libc::pid_t, libc::SIGKILL);
            }
        }
    }
    let deadline = Instant::now() + Duration::from_secs(2);
    while pids.iter().any(|&p| alive(p)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, rest)| rest.trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

/// Every `*.pid` file under `dir`, recursively.
fn pid_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            match e.file_type() {
                Ok(t) if t.is_dir() => stack.push(p),
                Ok(t) if t.is_file() && p.extension().is_some_and(|x| x == "pid") => out.push(p),
                _ => {}
            }
        }
    }
    out
}

/// Stops everything of one node: processes by pid file (only those inside its namespace),
/// then whatever still lives in the namespace, then the namespace, link and hosts file.
fn teardown_node(node: &LocalNode) {
    let ns = node.netns.as_str();
    if net::netns_exists(ns) {
        let pids: Vec<u32> = pid_files(&node.workdir)
            .iter()
            .filter_map(|f| live_pid_in_ns(f, ns))
            .collect();
        kill_and_wait(&pids, Duration::from_secs(3));
        // Stragglers in the namespace (children of ssh sessions, daemons whose pid file was
        // removed) belong to this node and nothing else: kill them so the namespace can go.
        for _ in 0..20 {
            let rest: Vec<u32> = run("ip", &["netns", "pids", ns])
                .unwrap_or_default()
                .split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect();
            if rest.is_empty() {
                break;
            }
            kill_and_wait(&rest, Duration::ZERO);
        }
        if let Err(e) = run("ip", &["netns", "del", ns]) {
            tracing::warn!("deleting namespace {ns}: {e}");
        }
    }
    if net::link_exists(&node.veth) {
        let _ = run("ip", &["link", "del", &node.veth]);
    }
    let _ = std::fs::remove_dir_all(Path::new("/etc/netns").join(ns));
}

/// What `down` removed.
#[derive(Debug, Clone, Default)]
pub struct DownReport {
    /// Namespaces that existed and were deleted.
    pub namespaces: Vec<String>,
    /// The bridge existed and was deleted.
    pub bridge: bool,
    /// FORWARD accept rules removed.
    pub forward_rules: usize,
    /// The state directory existed and was removed.
    pub state_dir: bool,
}

impl DownReport {
    /// True when there was nothing to remove.
    pub fn nothing(&self) -> bool {
        self.namespaces.is_empty() && !self.bridge && self.forward_rules == 0 && !self.state_dir
    }
}

/// Removes cluster `name` entirely: processes (by pid file, then by namespace), namespaces,
/// links, the bridge, the FORWARD rule, `/etc/netns` entries and the state directory. Works
/// from `cluster.json` and from the naming conventions, so a half-made cluster goes too.
/// Idempotent. Needs root.
pub fn down(name: &str) -> anyhow::Result<DownReport> {
    validate_name(name)?;
    require_root("netsplit cluster down")?;
    let _lock = HostLock::acquire(&base_dir().join("lock"))?;
    let dir = cluster_dir(name);
    let info = load(name).ok().flatten();
    let mut nodes: Vec<LocalNode> = info.as_ref().map(|i| i.nodes.clone()).unwrap_or_default();
    // Namespaces of this cluster that cluster.json does not list (a crashed `up`).
    let prefix = format!("ns-{name}-n");
    for ns in net::list_netns() {
        let Some(rest) = ns.strip_prefix(&prefix) else {
            continue;
        };
        if rest.is_empty() || !rest.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        if nodes.iter().any(|n| n.netns == ns) {
            continue;
        }
        nodes.push(LocalNode {
            name: format!("n{rest}"),
            address: String::new(),
            ssh_port: 22,
            workdir: dir.join("nodes").join(format!("n{rest}")),
            netns: ns.clone(),
            veth: String::from("-"),
        });
    }
    let mut report = DownReport {
        namespaces: nodes
            .iter()
            .filter(|n| net::netns_exists(&n.netns))
            .map(|n| n.netns.clone())
            .collect(),
        ..DownReport::default()
    };
    std::thread::scope(|s| {
        for n in &nodes {
            s.spawn(move || teardown_node(n));
        }
    });
    let bridge = bridge_name(name);
    if net::link_exists(&bridge) {
        run("ip", &["link", "del", &bridge])?;
        report.bridge = true;
    }
    report.forward_rules = net::remove_forward_rule(&bridge, name);
    // Remove /etc/netns only if it is now empty (the user may keep entries of their own).
    let _ = std::fs::remove_dir("/etc/netns");
    if dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
        report.state_dir = true;
    }
    let _ = std::fs::remove_dir(base_dir().join("clusters"));
    // The last cluster on the host gone (under any base directory): drop the host namespace's
    // name too (the namespace itself is the host's and stays).
    let any_node_left = net::list_netns().iter().any(|ns| is_node_netns(ns));
    if !any_node_left && net::netns_exists(HOST_NETNS) {
        let _ = run("ip", &["netns", "del", HOST_NETNS]);
    }
    let leftover: Vec<String> = nodes
        .iter()
        .filter(|n| net::netns_exists(&n.netns))
        .map(|n| n.netns.clone())
        .collect();
    if !leftover.is_empty() {
        return Err(anyhow!(
            "namespaces still present after down: {}",
            leftover.join(", ")
        ));
    }
    Ok(report)
}

/// Health of one node, as `cluster status` shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct NodeStatus {
    /// The node's name (`n1`, …).
    pub name: String,
    /// Its address on the cluster's bridge.
    pub address: String,
    /// Its namespace exists.
    pub netns: bool,
    /// sshd's pid when its pid file names a live process.
    pub sshd_pid: Option<u32>,
    /// sshd accepts TCP connections from the control node.
    pub reachable: bool,
}

/// Health of a cluster.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ClusterStatus {
    /// The cluster as recorded when it was brought up: name, subnet, bridge, keys and nodes.
    pub info: ClusterInfo,
    /// The bridge exists.
    pub bridge: bool,
    /// `None` when routes are fine, else why traffic would be refused.
    pub route_problem: Option<String>,
    /// Each node's health, in node order.
    pub nodes: Vec<NodeStatus>,
}

impl ClusterStatus {
    /// Everything is in place and every sshd answers.
    pub fn healthy(&self) -> bool {
        self.bridge
            && self.route_problem.is_none()
            && self
                .nodes
                .iter()
                .all(|n| n.netns && n.sshd_pid.is_some() && n.reachable)
    }
}

/// Inspects cluster `name` without changing anything; `None` when it does not exist. Works
/// without root (sshd liveness is then judged by `kill(pid, 0)` alone).
pub fn status(name: &str) -> anyhow::Result<Option<ClusterStatus>> {
    let Some(info) = load(name)? else {
        return Ok(None);
    };
    let route_problem = verify_routes(&info)
        .err()
        .map(|e| netsplit_check::error::one_line(&e));
    let nodes = std::thread::scope(|s| {
        let hs: Vec<_> = info
            .nodes
            .iter()
            .map(|n| {
                let routed = route_problem.is_none();
                s.spawn(move || {
                    let sshd_pid = std::fs::read_to_string(n.sshd_pidfile())
                        .ok()
                        .and_then(|t| t.trim().parse::<u32>().ok())
                        .filter(|&p| {
                            if is_root() {
                                live_pid_in_ns(&n.sshd_pidfile(), &n.netns) == Some(p)
                            } else {
                                // Without root the namespace cannot be checked; a live
                                // process of that pid is the best evidence available.
                                Path::new(&format!("/proc/{p}")).exists() && !is_zombie(p)
                            }
                        });
                    let reachable = routed
                        && crate::util::wait_for_port(
                            &n.address,
                            n.ssh_port,
                            Duration::from_millis(500),
                        )
                        .is_ok();
                    NodeStatus {
                        name: n.name.clone(),
                        address: n.address.clone(),
                        netns: net::netns_exists(&n.netns),
                        sshd_pid,
                        reachable,
                    }
                })
            })
            .collect();
        hs.into_iter()
            .filter_map(|h| h.join().ok())
            .collect::<Vec<_>>()
    });
    Ok(Some(ClusterStatus {
        bridge: net::link_exists(&info.bridge),
        route_problem,
        nodes,
        info,
    }))
}

/// Runs a command directly inside a node's namespace (`ip netns exec`), bypassing SSH: for
/// host-side diagnostics and tests only; the harness itself talks to nodes over SSH.
pub fn netns_exec(node: &LocalNode, argv: &[&str]) -> anyhow::Result<String> {
    let mut args = vec!["netns", "exec", node.netns.as_str()];
    args.extend_from_slice(argv);
    run("ip", &args)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_names_fit_interface_names() {
        for name in ["default", "t-nodes", "abcdefghij"] {
            assert!(validate_name(name).is_ok(), "{name}");
        }
        for name in ["abcdefghijk", "", "-x", "A", "../etc"] {
            assert!(validate_name(name).is_err(), "{name}");
        }
        assert!(bridge_name("abcdefghij").len() <= 15);
        assert!(format!("nsv{}-{}", 254, MAX_NODES).len() <= 15);
        assert!(is_node_netns(&netns_name("t-nodes", 12)));
        assert!(!is_node_netns(HOST_NETNS));
        assert!(!is_node_netns("ns-x-nodes"));
        assert!(!is_node_netns("nm224n1"));
    }

    #[test]
    fn sshd_config_listens_only_on_the_node_address() {
        let n = LocalNode {
            name: "n3".into(),
            address: "10.213.9.13".into(),
            ssh_port: 22,
            workdir: PathBuf::from("/x/nodes/n3"),
            netns: "ns-c-n3".into(),
            veth: "nsv9-3".into(),
        };
        let cfg = sshd_config(&n, Path::new("/x"));
        assert!(cfg.contains("ListenAddress 10.213.9.13:22\n"));
        assert!(cfg.contains("PidFile /x/nodes/n3/sshd/sshd.pid\n"));
        assert!(cfg.contains("PasswordAuthentication no\n"));
        assert!(cfg.contains("AuthorizedKeysFile /x/authorized_keys\n"));
    }
}

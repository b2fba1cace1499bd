//! etcd's settings for one run ([`EtcdOpts`]) and the pure construction of each member's command
//! line ([`etcd_args`]).
//!
//! The defaults are the preset `targets/etcd/etcd.yaml`, embedded at build time so the binary
//! and the documented preset can never disagree; `--target-opt KEY=VALUE` overrides any of its
//! keys. Everything here is pure (no I/O), so the argv each member gets is unit-tested rather
//! than discovered on a node.

use crate::control::Node;
use serde::Deserialize;
use std::net::{IpAddr, Ipv6Addr};
use std::time::Duration;

/// The preset file, embedded.
pub const PRESET_YAML: &str = include_str!("../../../../targets/etcd/etcd.yaml");

/// How clients read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ReadMode {
    /// etcd's default: a read goes through the leader's read index (quorum), never stale.
    Linearizable,
    /// `serializable: true`: the contacted member answers from its own state, possibly stale.
    Serializable,
}

/// How etcd gets onto the nodes ([`EtcdOpts::install`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Install {
    /// `apt-get install -y` these Debian packages.
    Debian {
        /// Debian packages to install.
        packages: Vec<String>,
    },
    /// Download this etcd release tarball on each node and run the `etcd` inside it.
    Tarball {
        /// An http/https URL of an etcd release tarball.
        url: String,
    },
}

/// `--initial-cluster-state`: `new` on a member's first start, `existing` when it restarts over
/// a data directory it already has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClusterState {
    #[default]
    /// A member's first start: the cluster is formed.
    New,
    /// A restart over the member's own data directory.
    Existing,
}

/// Everything the etcd target needs to know for a run: the preset's keys, each of them an
/// option (`--target-opt KEY=VALUE`, the plan's `target.opts`), read once by
/// [`crate::opts::with_preset`].
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EtcdOpts {
    /// Informational version from the preset.
    pub version: String,
    /// The Debian packages to install (unless `tarball`).
    pub packages: Vec<String>,
    /// Install from this release tarball (http/https URL) instead of Debian's package.
    pub tarball: Option<String>,
    /// The etcd binary on the nodes (for tarball installs: set from the unpacked release).
    pub binary: String,
    /// The port clients connect to (`--listen-client-urls`).
    pub client_port: u16,
    /// The port members talk to each other on (`--listen-peer-urls`).
    pub peer_port: u16,
    /// Directories and files relative to each node's workdir.
    pub dir: String,
    /// etcd's data directory (`--data-dir`), relative to the node's workdir.
    pub data_dir: String,
    /// etcd's log, relative to the node's workdir.
    pub log_file: String,
    /// The pid file netsplit writes for it, relative to the node's workdir.
    pub pid_file: String,
    /// `--heartbeat-interval`, in milliseconds.
    pub heartbeat_ms: u64,
    /// `--election-timeout`, in milliseconds.
    pub election_ms: u64,
    /// `linearizable` or `serializable` reads.
    pub read: ReadMode,
    /// Per-request timeout of the HTTP client (`timeout_ms`).
    #[serde(rename = "timeout_ms", deserialize_with = "crate::opts::millis")]
    pub request_timeout: Duration,
    /// TCP connect timeout (a connect that times out never sent the request: `fail`).
    #[serde(
        rename = "connect_timeout_ms",
        deserialize_with = "crate::opts::millis"
    )]
    pub connect_timeout: Duration,
    /// How long starting the cluster may take before it is an error.
    #[serde(rename = "start_timeout_s", deserialize_with = "crate::opts::seconds")]
    pub start_timeout: Duration,
    /// `--initial-cluster-token` (`token`): unique per run unless given, so members of an old
    /// run never join this one.
    #[serde(rename = "token", default = "fresh_cluster_token")]
    pub cluster_token: String,
    /// Not an option: whether a member starts over data it already has.
    #[serde(skip)]
    pub initial_cluster_state: ClusterState,
}

impl crate::opts::Preset for EtcdOpts {
    const YAML: &'static str = PRESET_YAML;
    const FILE: &'static str = "targets/etcd/etcd.yaml";

    fn check(&self) -> Result<(), (&'static str, String)> {
        if let Some(url) = &self.tarball {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err((
                    "tarball",
                    format!("{url}: must be an http:// or https:// URL"),
                ));
            }
        }
        if self.binary.is_empty() {
            return Err(("binary", "must not be empty".into()));
        }
        for (k, port) in [
            ("client_port", self.client_port),
            ("peer_port", self.peer_port),
        ] {
            if port == 0 {
                return Err((k, "0: must be a port 1..65535".into()));
            }
        }
        if self.client_port == self.peer_port {
            return Err((
                "peer_port",
                format!(
                    "client and peer port must differ (both {})",
                    self.client_port
                ),
            ));
        }
        if self.heartbeat_ms == 0 {
            return Err(("heartbeat_ms", "must be positive".into()));
        }
        // etcd itself refuses to start otherwise; say so before touching any node.
        if self.election_ms < self.heartbeat_ms.saturating_mul(5) {
            return Err((
                "election_ms",
                format!(
                    "{} must be at least 5 × heartbeat-ms ({})",
                    self.election_ms, self.heartbeat_ms
                ),
            ));
        }
        crate::check_client_options(
            ("client_port", self.client_port),
            self.request_timeout,
            self.connect_timeout,
        )?;
        let tok = &self.cluster_token;
        if tok.is_empty() || tok.contains(char::is_whitespace) {
            return Err((
                "token",
                format!("{tok:?}: must be non-empty without spaces"),
            ));
        }
        Ok(())
    }
}

impl EtcdOpts {
    /// How etcd gets onto the nodes: the release `tarball` when given, else Debian's packages.
    pub fn install(&self) -> Install {
        match &self.tarball {
            Some(url) => Install::Tarball { url: url.clone() },
            None => Install::Debian {
                packages: self.packages.clone(),
            },
        }
    }

    /// A path of this target on `node`: `<workdir>/<rel>`.
    pub fn path_on(&self, node: &Node, rel: &str) -> String {
        format!("{}/{}", node.workdir.trim_end_matches('/'), rel)
    }
    /// The member's data directory on `node`.
    pub fn data_dir_on(&self, node: &Node) -> String {
        self.path_on(node, &self.data_dir)
    }
    /// The member's log file on `node`.
    pub fn log_on(&self, node: &Node) -> String {
        self.path_on(node, &self.log_file)
    }
    /// The member's pid file on `node`.
    pub fn pid_on(&self, node: &Node) -> String {
        self.path_on(node, &self.pid_file)
    }
    /// The target's directory on `node` (parent of data, log and pid).
    pub fn dir_on(&self, node: &Node) -> String {
        self.path_on(node, &self.dir)
    }
    /// The client URL of `node` (what clients and probes connect to).
    pub fn client_url(&self, node: &Node) -> String {
        format!("http://{}:{}", url_host(&node.host), self.client_port)
    }
    /// The peer URL of `node`.
    pub fn peer_url(&self, node: &Node) -> String {
        format!("http://{}:{}", url_host(&node.host), self.peer_port)
    }
}

/// A host as it appears in a URL: IPv6 literals in brackets.
fn url_host(host: &str) -> String {
    if host.parse::<Ipv6Addr>().is_ok() {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

/// Where a member binds: its own address when that is an IP literal (namespace nodes each own
/// one), else all interfaces (etcd cannot bind to a DNS name; it still advertises the name).
fn listen_host(host: &str) -> String {
    match host.parse::<IpAddr>() {
        Ok(IpAddr::V6(_)) => format!("[{host}]"),
        Ok(IpAddr::V4(_)) => host.to_string(),
        Err(_) => "0.0.0.0".to_string(),
    }
}

/// A unique `--initial-cluster-token` for a run: wall-clock nanoseconds, our pid and a counter.
pub fn fresh_cluster_token() -> String {
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("netsplit-{:x}-{}-{seq}", nanos, std::process::id())
}

/// The full argv (binary first) that starts member `node_index` of the static cluster `nodes`.
///
/// Panics only on a caller bug: `node_index` out of range.
pub fn etcd_args(node_index: usize, nodes: &[Node], opts: &EtcdOpts) -> Vec<String> {
    let me = &nodes[node_index];
    let listen = listen_host(&me.host);
    let initial_cluster = nodes
        .iter()
        .map(|n| format!("{}={}", n.name, opts.peer_url(n)))
        .collect::<Vec<_>>()
        .join(",");
    let state = match opts.initial_cluster_state {
        ClusterState::New => "new",
        ClusterState::Existing => "existing",
    };
    vec![
        opts.binary.clone(),
        "--name".into(),
        me.name.clone(),
        "--data-dir".into(),
        opts.data_dir_on(me),
        "--listen-peer-urls".into(),
        format!("http://{listen}:{}", opts.peer_port),
        "--initial-advertise-peer-urls".into(),
        opts.peer_url(me),
        "--listen-client-urls".into(),
        format!("http://{listen}:{}", opts.client_port),
        "--advertise-client-urls".into(),
        opts.client_url(me),
        "--initial-cluster".into(),
        initial_cluster,
        "--initial-cluster-state".into(),
        state.into(),
        "--initial-cluster-token".into(),
        opts.cluster_token.clone(),
        "--heartbeat-interval".into(),
        opts.heartbeat_ms.to_string(),
        "--election-timeout".into(),
        opts.election_ms.to_string(),
        "--logger".into(),
        "zap".into(),
        "--log-outputs".into(),
        "stderr".into(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::test_nodes as nodes;

    fn flag<'a>(argv: &'a [String], name: &str) -> &'a str {
        let i = argv.iter().position(|a| a == name).expect(name);
        &argv[i + 1]
    }

    use crate::opts::Preset;

    #[test]
    fn embedded_preset_parses_to_the_documented_defaults() {
        let o = EtcdOpts::preset().unwrap();
        assert_eq!(o.client_port, 2379);
        assert_eq!(o.peer_port, 2380);
        assert_eq!(o.binary, "/usr/bin/etcd");
        assert_eq!(o.read, ReadMode::Linearizable);
        assert_eq!(
            o.install(),
            Install::Debian {
                packages: vec!["etcd-server".into()]
            }
        );
        assert_eq!(o.data_dir, "etcd/data");
        assert_eq!(o.log_file, "etcd/etcd.log");
    }

    #[test]
    fn argv_of_third_member_names_itself_and_lists_every_peer() {
        let ns = nodes(5);
        let mut o = EtcdOpts::preset().unwrap();
        o.cluster_token = "tok-1".into();
        let argv = etcd_args(2, &ns, &o);
        assert_eq!(argv[0], "/usr/bin/etcd");
        assert_eq!(flag(&argv, "--name"), "n3");
        assert_eq!(
            flag(&argv, "--data-dir"),
            "/var/lib/netsplit/c/n3/etcd/data"
        );
        assert_eq!(flag(&argv, "--listen-peer-urls"), "http://10.77.0.13:2380");
        assert_eq!(
            flag(&argv, "--initial-advertise-peer-urls"),
            "http://10.77.0.13:2380"
        );
        assert_eq!(
            flag(&argv, "--listen-client-urls"),
            "http://10.77.0.13:2379"
        );
        assert_eq!(
            flag(&argv, "--advertise-client-urls"),
            "http://10.77.0.13:2379"
        );
        assert_eq!(
            flag(&argv, "--initial-cluster"),
            "n1=http://10.77.0.11:2380,n2=http://10.77.0.12:2380,n3=http://10.77.0.13:2380,\
             n4=http://10.77.0.14:2380,n5=http://10.77.0.15:2380"
        );
        assert_eq!(flag(&argv, "--initial-cluster-state"), "new");
        assert_eq!(flag(&argv, "--initial-cluster-token"), "tok-1");
        assert_eq!(flag(&argv, "--heartbeat-interval"), "100");
        assert_eq!(flag(&argv, "--election-timeout"), "1000");
    }

    #[test]
    fn restart_over_existing_data_uses_existing_state() {
        let ns = nodes(3);
        let mut o = EtcdOpts::preset().unwrap();
        o.initial_cluster_state = ClusterState::Existing;
        assert_eq!(
            flag(&etcd_args(0, &ns, &o), "--initial-cluster-state"),
            "existing"
        );
    }

    #[test]
    fn dns_names_listen_on_all_interfaces_and_advertise_the_name() {
        let mut ns = nodes(2);
        ns[0].host = "db1.example".into();
        ns[1].host = "fd00::2".into();
        let o = EtcdOpts::preset().unwrap();
        let a0 = etcd_args(0, &ns, &o);
        assert_eq!(flag(&a0, "--listen-client-urls"), "http://0.0.0.0:2379");
        assert_eq!(
            flag(&a0, "--advertise-client-urls"),
            "http://db1.example:2379"
        );
        let a1 = etcd_args(1, &ns, &o);
        assert_eq!(flag(&a1, "--listen-peer-urls"), "http://[fd00::2]:2380");
        assert!(flag(&a1, "--initial-cluster").ends_with("n2=http://[fd00::2]:2380"));
    }

    /// Options as `--target-opt` gives them (text), through the same path as a run.
    fn from_flags(pairs: &[(&str, &str)]) -> anyhow::Result<EtcdOpts> {
        let map = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), serde_json::json!(v)))
            .collect();
        crate::opts::with_preset(&map, "target.opts", &crate::opts::Origins::default())
    }

    #[test]
    fn target_opts_override_the_preset() {
        let o = from_flags(&[
            ("read", "serializable"),
            ("client_port", "32379"),
            ("peer-port", "32380"),
            (
                "tarball",
                "https://example.org/etcd-v3.5.0-linux-amd64.tar.gz",
            ),
        ])
        .unwrap();
        assert_eq!(o.read, ReadMode::Serializable);
        assert_eq!(o.client_port, 32379);
        assert_eq!(o.peer_port, 32380);
        assert!(matches!(o.install(), Install::Tarball { .. }));
    }

    #[test]
    fn rejects_unknown_keys_and_bad_values_naming_the_key() {
        let e = from_flags(&[("reed", "serializable")]).unwrap_err();
        assert!(e.to_string().contains("target.opts.reed"), "{e}");
        assert_eq!(crate::error::exit_code_for(&e), 254);
        let e = from_flags(&[("read", "stale")]).unwrap_err();
        assert!(
            e.to_string().contains("target.opts.read") && e.to_string().contains("stale"),
            "{e}"
        );
        let e = from_flags(&[("client-port", "0")]).unwrap_err();
        assert!(e.to_string().contains("client_port"), "{e}");
        let e = from_flags(&[("client-port", "99999")]).unwrap_err();
        assert!(e.to_string().contains("client_port"), "{e}");
        let e = from_flags(&[("election-ms", "200")]).unwrap_err();
        assert!(e.to_string().contains("5 × heartbeat"), "{e}");
        let e = from_flags(&[("tarball", "file:///x")]).unwrap_err();
        assert!(e.to_string().contains("URL"), "{e}");
    }

    #[test]
    fn preset_with_unknown_key_is_bad_input_naming_the_file() {
        let bad = PRESET_YAML.replace("binary:", "binarry:");
        let (none, origins) = (Default::default(), Default::default());
        let e =
            crate::opts::from_layers::<EtcdOpts>(&bad, "my.yaml", &none, "", &origins).unwrap_err();
        assert!(e.to_string().starts_with("my.yaml: line 12 "), "{e}");
        assert!(e.to_string().contains("binarry"), "{e}");
        assert_eq!(crate::error::exit_code_for(&e), 254);
    }

    #[test]
    fn fresh_tokens_differ() {
        assert_ne!(fresh_cluster_token(), fresh_cluster_token());
    }
}

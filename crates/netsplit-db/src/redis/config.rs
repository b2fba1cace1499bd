//! Redis's settings for one run ([`RedisOpts`]) and the pure rendering of each node's
//! `redis.conf` ([`redis_conf`]).
//!
//! The defaults are the preset `targets/redis/redis.yaml` and the config template
//! `targets/redis/redis.conf`, both embedded at build time so the binary and the documented
//! files can never disagree; `--target-opt KEY=VALUE` overrides any key of the preset. Nothing
//! here does I/O, so the config every node gets is unit-tested rather than discovered on a node.

use crate::check_client_options;
use crate::control::util::render_template;
use crate::control::Node;
use serde::Deserialize;
use std::net::IpAddr;
use std::time::Duration;

/// The preset file, embedded.
pub const PRESET_YAML: &str = include_str!("../../../../targets/redis/redis.yaml");
/// The config template, embedded.
pub const CONF_TEMPLATE: &str = include_str!("../../../../targets/redis/redis.conf");
/// The Sentinel config template (`failover=sentinel`), embedded.
pub const SENTINEL_TEMPLATE: &str = include_str!("../../../../targets/redis/sentinel.conf");

/// Whether anything promotes a replica when the primary is lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Failover {
    /// n1 is the primary for the whole run.
    None,
    /// A Sentinel on every node watches the primary; a majority of them fails over to a
    /// replica, and clients ask their node's Sentinel where the primary is.
    Sentinel,
}

/// Where clients send reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReadMode {
    /// The worker's own node: a replica answers from its own, possibly stale, copy.
    Replica,
    /// The primary (n1), like writes.
    Primary,
}

/// `appendfsync`: when the append-only file reaches the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Fsync {
    /// fsync after every write to the append-only file, before the reply.
    Always,
    /// fsync once a second: a crash may lose the last second of acknowledged writes.
    Everysec,
    /// Never fsync: the kernel writes back when it likes.
    No,
}

impl Fsync {
    /// The word redis.conf uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Fsync::Always => "always",
            Fsync::Everysec => "everysec",
            Fsync::No => "no",
        }
    }
}

/// Whether redis-server runs under libfaketime (shared with the other targets).
pub use crate::Faketime;

/// Everything the redis target needs to know for a run: the preset's keys, each of them an
/// option (`--target-opt KEY=VALUE`, the plan's `target.opts`), read once by
/// [`crate::opts::with_preset`].
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisOpts {
    /// Informational version from the preset.
    pub version: String,
    /// Debian packages to install.
    pub packages: Vec<String>,
    /// The redis-server binary on the nodes.
    pub binary: String,
    /// The port redis-server listens on.
    pub port: u16,
    /// Directories and files relative to each node's workdir.
    pub dir: String,
    /// Redis's data directory (`dir`), relative to the node's workdir.
    pub data_dir: String,
    /// The redis.conf netsplit renders, relative to the node's workdir.
    pub conf_file: String,
    /// redis-server's log, relative to the node's workdir.
    pub log_file: String,
    /// redis-server's pid file, relative to the node's workdir.
    pub pid_file: String,
    /// `appendonly yes|no`.
    pub appendonly: bool,
    /// `appendfsync` (also spelled so): `always`, `everysec` or `no`.
    pub fsync: Fsync,
    /// Where reads go: `replica` (the worker's node) or `primary`.
    pub read: ReadMode,
    /// How long a command may wait for its reply (`timeout_ms`).
    #[serde(rename = "timeout_ms", deserialize_with = "crate::opts::millis")]
    pub request_timeout: Duration,
    /// TCP connect timeout (a connect that fails never sent anything: `fail`).
    #[serde(
        rename = "connect_timeout_ms",
        deserialize_with = "crate::opts::millis"
    )]
    pub connect_timeout: Duration,
    #[serde(rename = "start_timeout_s", deserialize_with = "crate::opts::seconds")]
    /// How long a node may take to start serving (`start_timeout_s`).
    pub start_timeout: Duration,
    /// Run redis-server under libfaketime: `auto` (local nodes), `on`, `off`.
    pub faketime: Faketime,
    /// `none` (a static primary) or `sentinel` (a Sentinel on every node, failover).
    pub failover: Failover,
    /// Sentinel's port (with `failover=sentinel`).
    pub sentinel_port: u16,
    /// The name Sentinel monitors the primary under.
    pub master_name: String,
    /// Sentinel's `down-after-milliseconds`: how long the primary must be unreachable before a
    /// Sentinel thinks it down.
    pub down_after_ms: u64,
    /// Sentinel's `failover-timeout`.
    pub failover_timeout_ms: u64,
    /// Sentinel's directory, config, log and pid file, relative to each node's workdir.
    pub sentinel_dir: String,
    /// Sentinel's config file, relative to each node's workdir.
    pub sentinel_conf: String,
    /// Sentinel's log, relative to each node's workdir.
    pub sentinel_log: String,
    /// Sentinel's pid file, relative to each node's workdir.
    pub sentinel_pid: String,
    /// `sentinels=`: the Sentinels of a deployed Redis, `host[:port]` each, checked by
    /// [`RedisOpts::sentinel_addrs`] (only with `deploy: existing`).
    pub sentinels: Vec<String>,
}

impl crate::opts::Preset for RedisOpts {
    const YAML: &'static str = PRESET_YAML;
    const FILE: &'static str = "targets/redis/redis.yaml";
    const ALIASES: &'static [(&'static str, &'static str)] = &[("appendfsync", "fsync")];

    fn check(&self) -> Result<(), (&'static str, String)> {
        if self.binary.is_empty() {
            return Err(("binary", "must not be empty".into()));
        }
        check_client_options(
            ("port", self.port),
            self.request_timeout,
            self.connect_timeout,
        )?;
        if self.sentinel_port == 0 || self.sentinel_port == self.port {
            return Err((
                "sentinel_port",
                "must be 1..65535 and differ from port".into(),
            ));
        }
        if self.down_after_ms == 0 {
            return Err(("down_after_ms", "must be positive".into()));
        }
        if self.failover_timeout_ms == 0 {
            return Err(("failover_timeout_ms", "must be positive".into()));
        }
        let name = &self.master_name;
        let name_ok = !name.is_empty()
            && name.len() <= 64
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b));
        if !name_ok {
            return Err((
                "master_name",
                format!(
                    "master-name {name:?} must be 1-64 characters of a-z, A-Z, 0-9, '_', '-', '.'"
                ),
            ));
        }
        self.sentinel_addrs().map_err(|e| ("sentinels", e))?;
        Ok(())
    }
}

impl RedisOpts {
    /// `sentinels=` as addresses (`sentinel-port` where an entry names none); an error names
    /// the entry.
    pub fn sentinel_addrs(&self) -> Result<Vec<(String, u16)>, String> {
        self.sentinels
            .iter()
            .filter(|s| !s.trim().is_empty())
            .enumerate()
            .map(|(i, s)| {
                crate::Endpoint::parse(s)
                    .map(|e| e.with_port(self.sentinel_port))
                    .map_err(|why| format!("entry {}: {why}", i + 1))
            })
            .collect()
    }

    /// Whether a Sentinel runs on every node.
    pub fn sentinel(&self) -> bool {
        self.failover == Failover::Sentinel
    }
    /// Sentinel's directory on `node`.
    pub fn sentinel_dir_on(&self, node: &Node) -> String {
        self.path_on(node, &self.sentinel_dir)
    }
    /// The rendered sentinel.conf on `node` (Sentinel rewrites it).
    pub fn sentinel_conf_on(&self, node: &Node) -> String {
        self.path_on(node, &self.sentinel_conf)
    }
    /// Sentinel's log on `node`.
    pub fn sentinel_log_on(&self, node: &Node) -> String {
        self.path_on(node, &self.sentinel_log)
    }
    /// Sentinel's pid file on `node`.
    pub fn sentinel_pid_on(&self, node: &Node) -> String {
        self.path_on(node, &self.sentinel_pid)
    }

    /// A path of this target on `node`: `<workdir>/<rel>`.
    pub fn path_on(&self, node: &Node, rel: &str) -> String {
        format!("{}/{}", node.workdir.trim_end_matches('/'), rel)
    }
    /// The target's directory on `node`.
    pub fn dir_on(&self, node: &Node) -> String {
        self.path_on(node, &self.dir)
    }
    /// The data directory (AOF) on `node`.
    pub fn data_dir_on(&self, node: &Node) -> String {
        self.path_on(node, &self.data_dir)
    }
    /// The rendered redis.conf on `node`.
    pub fn conf_on(&self, node: &Node) -> String {
        self.path_on(node, &self.conf_file)
    }
    /// The log file on `node`.
    pub fn log_on(&self, node: &Node) -> String {
        self.path_on(node, &self.log_file)
    }
    /// The pid file on `node`.
    pub fn pid_on(&self, node: &Node) -> String {
        self.path_on(node, &self.pid_file)
    }
}

/// A value in redis.conf: double-quoted, with `\` and `"` escaped (paths may hold spaces).
fn quoted(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Where a node binds: its own address when that is an IP literal (namespace nodes each own
/// one), else every interface.
fn bind_host(host: &str) -> String {
    match host.parse::<IpAddr>() {
        Ok(_) => host.to_string(),
        Err(_) => "* -::*".to_string(),
    }
}

/// The `redis.conf` of node `i` of `nodes`: node 0 is the primary, every other node replicates
/// it.
///
/// Panics only on a caller bug: `i` out of range.
pub fn redis_conf(i: usize, nodes: &[Node], opts: &RedisOpts) -> Result<String, String> {
    let me = &nodes[i];
    let replicaof = if i == 0 {
        "# the primary: no replicaof".to_string()
    } else {
        format!("replicaof {} {}", nodes[0].host, opts.port)
    };
    render_template(
        CONF_TEMPLATE,
        &[
            ("node", &me.name),
            ("bind", &bind_host(&me.host)),
            ("port", &opts.port.to_string()),
            ("pidfile", &quoted(&opts.pid_on(me))),
            ("logfile", &quoted(&opts.log_on(me))),
            ("data_dir", &quoted(&opts.data_dir_on(me))),
            ("appendonly", if opts.appendonly { "yes" } else { "no" }),
            ("appendfsync", opts.fsync.as_str()),
            ("replicaof", &replicaof),
        ],
    )
}

/// The `sentinel.conf` of node `i` of `nodes`: watch n1 under the master name, a majority of
/// the Sentinels being the quorum.
///
/// Panics only on a caller bug: `i` out of range.
pub fn sentinel_conf(i: usize, nodes: &[Node], opts: &RedisOpts) -> Result<String, String> {
    let me = &nodes[i];
    let st = opts;
    let quorum = nodes.len() / 2 + 1;
    render_template(
        SENTINEL_TEMPLATE,
        &[
            ("node", &me.name),
            ("bind", &bind_host(&me.host)),
            ("sentinel_port", &st.sentinel_port.to_string()),
            ("pidfile", &quoted(&opts.sentinel_pid_on(me))),
            ("logfile", &quoted(&opts.sentinel_log_on(me))),
            ("dir", &quoted(&opts.sentinel_dir_on(me))),
            ("master_name", &st.master_name),
            ("primary_host", &nodes[0].host),
            ("port", &opts.port.to_string()),
            ("quorum", &quorum.to_string()),
            ("down_after_ms", &st.down_after_ms.to_string()),
            ("failover_timeout_ms", &st.failover_timeout_ms.to_string()),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::opts::Preset;

    use crate::test_nodes as nodes;

    fn setting<'a>(conf: &'a str, name: &str) -> Option<&'a str> {
        conf.lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
    }

    #[test]
    fn embedded_preset_parses_to_the_documented_defaults() {
        let o = RedisOpts::preset().unwrap();
        assert_eq!(o.port, 6379);
        assert_eq!(o.binary, "/usr/bin/redis-server");
        assert_eq!(o.packages, vec!["redis-server".to_string()]);
        assert_eq!(o.read, ReadMode::Replica);
        assert_eq!(o.fsync, Fsync::Everysec);
        assert!(o.appendonly);
        assert_eq!(o.faketime, Faketime::Auto);
        assert_eq!(o.log_file, "redis/redis.log");
    }

    #[test]
    fn primary_conf_binds_its_address_and_replicates_nothing() {
        let ns = nodes(3);
        let o = RedisOpts::preset().unwrap();
        let c = redis_conf(0, &ns, &o).unwrap();
        assert_eq!(setting(&c, "bind"), Some("10.77.0.11"));
        assert_eq!(setting(&c, "port"), Some("6379"));
        assert_eq!(setting(&c, "protected-mode"), Some("no"));
        assert_eq!(setting(&c, "appendonly"), Some("yes"));
        assert_eq!(setting(&c, "appendfsync"), Some("everysec"));
        assert_eq!(
            setting(&c, "dir"),
            Some("\"/var/lib/netsplit/c/n1/redis/data\"")
        );
        assert_eq!(
            setting(&c, "pidfile"),
            Some("\"/var/lib/netsplit/c/n1/redis/redis.pid\"")
        );
        assert_eq!(
            setting(&c, "logfile"),
            Some("\"/var/lib/netsplit/c/n1/redis/redis.log\"")
        );
        assert_eq!(setting(&c, "replicaof"), None);
    }

    #[test]
    fn replicas_replicate_the_first_node() {
        let ns = nodes(3);
        let o = from_flags(&[("appendfsync", "always"), ("appendonly", "no")]).unwrap();
        let c = redis_conf(2, &ns, &o).unwrap();
        assert_eq!(setting(&c, "bind"), Some("10.77.0.13"));
        assert_eq!(setting(&c, "replicaof"), Some("10.77.0.11 6379"));
        assert_eq!(setting(&c, "appendfsync"), Some("always"));
        assert_eq!(setting(&c, "appendonly"), Some("no"));
    }

    #[test]
    fn dns_names_bind_every_interface_and_paths_are_quoted() {
        let mut ns = nodes(2);
        ns[0].host = "db1.example".into();
        ns[1].workdir = "/srv/my \"dir\"".into();
        let o = RedisOpts::preset().unwrap();
        assert_eq!(
            setting(&redis_conf(0, &ns, &o).unwrap(), "bind"),
            Some("* -::*")
        );
        let c = redis_conf(1, &ns, &o).unwrap();
        assert_eq!(setting(&c, "replicaof"), Some("db1.example 6379"));
        assert_eq!(setting(&c, "dir"), Some(r#""/srv/my \"dir\"/redis/data""#));
    }

    /// Options as `--target-opt` gives them (text), through the same path as a run.
    fn from_flags(pairs: &[(&str, &str)]) -> anyhow::Result<RedisOpts> {
        let map = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), serde_json::json!(v)))
            .collect();
        crate::opts::with_preset(&map, "target.opts", &crate::opts::Origins::default())
    }

    #[test]
    fn target_opts_override_the_preset_and_bad_ones_are_bad_input() {
        let o = from_flags(&[
            ("read", "primary"),
            ("fsync", "no"),
            ("port", "16379"),
            ("faketime", "off"),
            ("timeout_ms", "500"),
            ("appendonly", "no"),
        ])
        .unwrap();
        assert_eq!(o.read, ReadMode::Primary);
        assert_eq!(o.fsync, Fsync::No);
        assert_eq!(o.port, 16379);
        assert_eq!(o.faketime, Faketime::Off);
        assert!(!o.appendonly);
        assert_eq!(o.request_timeout, Duration::from_millis(500));

        let e = from_flags(&[("reed", "primary")]).unwrap_err();
        assert!(e.to_string().contains("target.opts.reed"), "{e}");
        assert_eq!(crate::error::exit_code_for(&e), 254);
        let e = from_flags(&[("read", "serializable")]).unwrap_err();
        assert!(e.to_string().contains("serializable"), "{e}");
        let e = from_flags(&[("fsync", "sometimes")]).unwrap_err();
        assert!(e.to_string().contains("everysec"), "{e}");
        let e = from_flags(&[("port", "0")]).unwrap_err();
        assert_eq!(crate::error::exit_code_for(&e), 254);
        let e = from_flags(&[("timeout-ms", "0")]).unwrap_err();
        assert!(e.to_string().contains("positive"), "{e}");
        let e = from_flags(&[("fsync", "no"), ("appendfsync", "always")]).unwrap_err();
        assert!(e.to_string().contains("the same option"), "{e}");
    }

    #[test]
    fn sentinels_watch_n1_with_a_majority_quorum_and_bad_sentinel_options_are_bad_input() {
        let ns = nodes(3);
        let o = from_flags(&[("failover", "sentinel"), ("down-after-ms", "1500")]).unwrap();
        assert!(o.sentinel());
        let c = sentinel_conf(2, &ns, &o).unwrap();
        assert_eq!(setting(&c, "bind"), Some("10.77.0.13"));
        assert_eq!(setting(&c, "port"), Some("26379"));
        let s = |name: &str| {
            c.lines()
                .find_map(|l| l.strip_prefix(&format!("sentinel {name} ")))
                .map(str::to_string)
        };
        assert_eq!(s("monitor").as_deref(), Some("netsplit 10.77.0.11 6379 2"));
        assert_eq!(
            s("down-after-milliseconds").as_deref(),
            Some("netsplit 1500")
        );
        assert_eq!(s("failover-timeout").as_deref(), Some("netsplit 10000"));
        assert!(!RedisOpts::preset().unwrap().sentinel(), "off by default");
        for (pairs, needle) in [
            (&[("failover", "raft")][..], "sentinel"),
            (&[("sentinel-port", "6379")][..], "differ"),
            (&[("down-after-ms", "0")][..], "positive"),
            (&[("master-name", "a b")][..], "master-name"),
        ] {
            let e = from_flags(pairs).unwrap_err();
            assert!(e.to_string().contains(needle), "{pairs:?}: {e}");
            assert_eq!(crate::error::exit_code_for(&e), 254);
        }
    }

    #[test]
    fn preset_with_unknown_key_is_bad_input_naming_the_file() {
        let bad = PRESET_YAML.replace("binary:", "binarry:");
        let (none, origins) = (Default::default(), Default::default());
        let e = crate::opts::from_layers::<RedisOpts>(&bad, "my.yaml", &none, "", &origins)
            .unwrap_err();
        assert!(e.to_string().starts_with("my.yaml: line 15 "), "{e}");
        assert_eq!(crate::error::exit_code_for(&e), 254);
    }
}

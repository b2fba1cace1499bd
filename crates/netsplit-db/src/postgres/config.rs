//! PostgreSQL's settings for one run ([`PgOpts`]) and the pure rendering of what each node
//! gets: `postgresql.conf` ([`postgresql_conf`]), `pg_hba.conf` ([`pg_hba_conf`]), the
//! password file ([`pgpass`]) and the replicas' `primary_conninfo` ([`primary_conninfo`]).
//!
//! The defaults are the preset `targets/postgres/postgres.yaml` and the templates
//! `targets/postgres/postgresql.conf` and `targets/postgres/pg_hba.conf`, all embedded at build
//! time so the binary and the documented files never disagree; `--target-opt KEY=VALUE`
//! overrides any key of the preset. Nothing here does I/O: what every node gets is
//! unit-tested rather than discovered on a node.

use super::tls::Tls;
use crate::check_client_options;
use crate::control::util::render_template;
use crate::control::Node;
use crate::Faketime;
use serde::Deserialize;
use std::net::IpAddr;
use std::time::Duration;

/// The preset file, embedded.
pub const PRESET_YAML: &str = include_str!("../../../../targets/postgres/postgres.yaml");
/// The `postgresql.conf` template, embedded.
pub const CONF_TEMPLATE: &str = include_str!("../../../../targets/postgres/postgresql.conf");
/// The `pg_hba.conf` template, embedded.
pub const HBA_TEMPLATE: &str = include_str!("../../../../targets/postgres/pg_hba.conf");

/// PostgreSQL's `synchronous_commit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncCommit {
    #[default]
    /// A commit returns once its WAL is flushed locally (and, with `replicas=sync`, by a replica).
    On,
    /// A commit returns before its WAL is flushed: a crash may lose acknowledged commits.
    Off,
    /// A commit waits for the local flush only, never for a replica.
    Local,
    #[serde(alias = "remote-write")]
    /// With a synchronous replica: waits until the replica has written the WAL (not flushed).
    RemoteWrite,
    #[serde(alias = "remote-apply")]
    /// With a synchronous replica: waits until the replica has applied the commit.
    RemoteApply,
}

impl SyncCommit {
    /// The value as `postgresql.conf` spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            SyncCommit::On => "on",
            SyncCommit::Off => "off",
            SyncCommit::Local => "local",
            SyncCommit::RemoteWrite => "remote_write",
            SyncCommit::RemoteApply => "remote_apply",
        }
    }
}

/// How the nodes after n1 follow it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Replicas {
    /// Streaming replicas; a commit waits for n1 alone.
    Async,
    /// Streaming replicas; a commit also waits until one of them has flushed it.
    Sync,
    /// No replicas: n1 alone runs PostgreSQL.
    None,
}

impl Replicas {
    /// The value as the option spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Replicas::Async => "async",
            Replicas::Sync => "sync",
            Replicas::None => "none",
        }
    }
}

/// A transaction isolation level, as PostgreSQL implements it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Isolation {
    /// Each statement sees what was committed before it began.
    #[serde(alias = "read_committed")]
    ReadCommitted,
    /// Snapshot isolation: the whole transaction reads one snapshot; concurrent updates of one
    /// row abort the later writer.
    #[serde(alias = "repeatable_read")]
    RepeatableRead,
    /// Serializable snapshot isolation.
    Serializable,
}

impl Isolation {
    /// The option's own spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Isolation::ReadCommitted => "read-committed",
            Isolation::RepeatableRead => "repeatable-read",
            Isolation::Serializable => "serializable",
        }
    }
    /// The value of `default_transaction_isolation`.
    pub fn sql(self) -> &'static str {
        match self {
            Isolation::ReadCommitted => "read committed",
            Isolation::RepeatableRead => "repeatable read",
            Isolation::Serializable => "serializable",
        }
    }
    /// The level a transaction on a hot standby runs at: PostgreSQL refuses serializable there
    /// ("cannot use serializable mode in a hot standby"), so it becomes repeatable read — the
    /// snapshot a replica can give.
    pub fn on_standby(self) -> Isolation {
        match self {
            Isolation::Serializable => Isolation::RepeatableRead,
            other => other,
        }
    }
}

/// Whether and how clients use TLS: libpq's `sslmode` values (what each does:
/// crates/netsplit-db/src/postgres/tls.rs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// Never TLS.
    Disable,
    /// TLS when the server offers it, else without; the certificate is not checked.
    Prefer,
    /// TLS or no connection; the certificate is checked only when `sslrootcert` is given.
    Require,
    /// TLS, and the certificate must chain to `sslrootcert` (or the system CAs).
    VerifyCa,
    /// As `verify-ca`, and the certificate must name the host connected to.
    VerifyFull,
}

impl SslMode {
    /// Parses the option's value.
    pub fn parse(v: &str) -> Result<SslMode, String> {
        match v.trim() {
            "disable" => Ok(SslMode::Disable),
            "prefer" => Ok(SslMode::Prefer),
            "require" => Ok(SslMode::Require),
            "verify-ca" => Ok(SslMode::VerifyCa),
            "verify-full" => Ok(SslMode::VerifyFull),
            other => Err(format!(
                "sslmode {other:?}: one of disable, prefer, require, verify-ca, verify-full"
            )),
        }
    }

    /// `sslmode` from the preset or the plan, for `#[serde(deserialize_with)]`.
    fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<SslMode, D::Error> {
        let v = String::deserialize(d)?;
        SslMode::parse(&v).map_err(serde::de::Error::custom)
    }

    /// tokio-postgres's mode (it knows whether to ask; the checks are the connector's).
    pub fn pg(self) -> tokio_postgres::config::SslMode {
        match self {
            SslMode::Disable => tokio_postgres::config::SslMode::Disable,
            SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => {
                tokio_postgres::config::SslMode::Require
            }
        }
    }
}

/// Where clients send operations that only read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReadMode {
    /// n1, like every write.
    Primary,
    /// The worker's own node: a replica answers from its own, possibly stale, copy.
    Replica,
}

/// How a bank transfer changes the balances.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Transfer {
    /// Read both balances, then write the new values.
    #[serde(alias = "read_write")]
    ReadWrite,
    /// `UPDATE … SET balance = balance ± amount`, the database doing the arithmetic.
    Atomic,
}

/// Everything the postgres target needs to know for a run: the preset's keys, each of them an
/// option (`--target-opt KEY=VALUE`, the plan's `target.opts`), read once by
/// [`crate::opts::with_preset`].
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PgOpts {
    /// Informational version from the preset.
    pub version: String,
    /// Debian packages to install.
    pub packages: Vec<String>,
    /// Where `postgres`, `initdb` and `pg_basebackup` are.
    pub bin_dir: String,
    /// The OS user that runs the servers.
    pub os_user: String,
    /// The port PostgreSQL listens on.
    pub port: u16,
    /// Directories and files relative to each node's workdir.
    pub dir: String,
    /// The data directory (`initdb -D`), relative to the node's workdir.
    pub data_dir: String,
    /// The `postgresql.conf` netsplit renders, relative to the node's workdir.
    pub conf_file: String,
    /// The `pg_hba.conf` netsplit renders, relative to the node's workdir.
    pub hba_file: String,
    /// The password file (`PGPASSFILE`) the replicas use, relative to the node's workdir.
    pub passfile: String,
    /// The Unix socket directory, relative to the node's workdir.
    pub sockets: String,
    /// The server's log, relative to the node's workdir.
    pub log_file: String,
    /// The pid file netsplit keeps for the postmaster, relative to the node's workdir.
    pub pid_file: String,
    /// The database role (the cluster's superuser) and its password (fresh per run unless
    /// given: `super::opts_from_plan`).
    pub user: String,
    #[serde(default)]
    /// The role's password (fresh per run unless given).
    pub password: String,
    /// A file whose first line is the password.
    #[serde(default)]
    pub password_file: Option<String>,
    /// The database the workload's schema lives in.
    pub database: String,
    /// The schema holding the workload's tables (`netsplit_<run id>` on a deployed database).
    pub schema: String,
    /// Whether and how clients use TLS (`disable`, `prefer`, `require`, `verify-ca`,
    /// `verify-full`; see [`SslMode`]).
    #[serde(deserialize_with = "SslMode::deserialize")]
    pub sslmode: SslMode,
    /// A PEM file of CA certificates on the control node, for `verify-ca`/`verify-full` (and
    /// `require`, which then checks as `verify-ca`).
    #[serde(default)]
    pub sslrootcert: Option<String>,
    /// Not an option: a database netsplit did not deploy (`deploy: existing`): the role and
    /// database are the operator's (any name; they are connection parameters, never spliced
    /// into SQL), the password may be empty (the server may not ask for one), and the schema is
    /// the run's.
    #[serde(skip)]
    pub existing: bool,
    /// How the other nodes follow n1: `async`, `sync` or `none`.
    pub replicas: Replicas,
    /// `fsync = on|off`.
    pub fsync: bool,
    /// `synchronous_commit`.
    pub synchronous_commit: SyncCommit,
    /// The isolation level of every transaction.
    pub isolation: Isolation,
    /// Where read-only operations go: `primary` or `replica` (the worker's own node).
    pub read: ReadMode,
    /// How a bank transfer is written: `read-write` or `atomic`.
    pub transfer: Transfer,
    /// How long one operation may take before it ends as a timeout (`timeout_ms`).
    #[serde(rename = "timeout_ms", deserialize_with = "crate::opts::millis")]
    pub request_timeout: Duration,
    /// TCP connect and authentication timeout (a connection never made sent nothing: `fail`).
    #[serde(
        rename = "connect_timeout_ms",
        deserialize_with = "crate::opts::millis"
    )]
    pub connect_timeout: Duration,
    #[serde(rename = "start_timeout_s", deserialize_with = "crate::opts::seconds")]
    /// How long a node may take to start serving (`start_timeout_s`).
    pub start_timeout: Duration,
    /// Run the servers under libfaketime: `auto` (local nodes), `on`, `off`.
    pub faketime: Faketime,
}

impl crate::opts::Preset for PgOpts {
    const YAML: &'static str = PRESET_YAML;
    const FILE: &'static str = "targets/postgres/postgres.yaml";

    /// What holds however the database is deployed ([`PgOpts::check_deployment`] the rest).
    fn check(&self) -> Result<(), (&'static str, String)> {
        check_client_options(
            ("port", self.port),
            self.request_timeout,
            self.connect_timeout,
        )?;
        if !self.bin_dir.starts_with('/') {
            return Err((
                "bin_dir",
                format!("bin-dir {:?} must be an absolute path", self.bin_dir),
            ));
        }
        let os_user_ok = !self.os_user.is_empty()
            && !self.os_user.starts_with('-')
            && self
                .os_user
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b));
        if !os_user_ok || self.os_user == "root" {
            return Err((
                "os_user",
                format!(
                    "os-user {:?} must be a user name other than root (PostgreSQL refuses to \
                     run as root)",
                    self.os_user
                ),
            ));
        }
        identifier("schema", &self.schema)?;
        if self.password.chars().any(|c| c.is_control()) {
            return Err(("password", "must be without control characters".into()));
        }
        let key = |e: &str| {
            if e.starts_with("sslrootcert") {
                "sslrootcert"
            } else {
                "sslmode"
            }
        };
        Tls::new(self.sslmode, self.sslrootcert.as_deref()).map_err(|e| (key(&e), e))?;
        if self.read == ReadMode::Replica && self.replicas == Replicas::None {
            return Err((
                "read",
                "read=replica needs replicas (replicas=async or sync)".into(),
            ));
        }
        Ok(())
    }
}

/// A fresh password for one run: 128 bits from the standard library's randomly keyed hasher
/// (seeded from the operating system), as hex.
pub fn fresh_password() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut out = String::from("ns");
    for i in 0..2u64 {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(i);
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0),
        );
        out.push_str(&format!("{:016x}", h.finish()));
    }
    out
}

/// A name PostgreSQL takes unquoted: `[a-z_][a-z0-9_]*`, at most 63 bytes.
fn identifier(what: &'static str, s: &str) -> Result<(), (&'static str, String)> {
    let ok = !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b == b'_')
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err((
            what,
            format!(
                "{what} {s:?} must be a lower-case SQL name ([a-z_][a-z0-9_]*, at most 63 bytes)"
            ),
        ))
    }
}

impl PgOpts {
    /// What else holds for the way the database is deployed: a PostgreSQL netsplit installs
    /// needs a password and takes its role and database as SQL names; a deployed one
    /// (`existing`) any role and database without control characters.
    pub fn check_deployment(&self) -> Result<(), (&'static str, String)> {
        if self.existing {
            for (what, v) in [("user", &self.user), ("database", &self.database)] {
                if v.is_empty() || v.chars().any(|c| c.is_control()) {
                    return Err((what, "must be non-empty, without control characters".into()));
                }
            }
            return Ok(());
        }
        identifier("user", &self.user)?;
        identifier("database", &self.database)?;
        if self.password.is_empty() {
            return Err((
                "password",
                "must be non-empty, without control characters".into(),
            ));
        }
        Ok(())
    }

    /// A program of the PostgreSQL installation (`postgres`, `initdb`, `pg_basebackup`).
    pub fn bin(&self, program: &str) -> String {
        format!("{}/{program}", self.bin_dir.trim_end_matches('/'))
    }
    /// A path of this target on `node`: `<workdir>/<rel>`.
    pub fn path_on(&self, node: &Node, rel: &str) -> String {
        format!("{}/{}", node.workdir.trim_end_matches('/'), rel)
    }
    /// The target's directory on `node` (owned by the OS user).
    pub fn dir_on(&self, node: &Node) -> String {
        self.path_on(node, &self.dir)
    }
    /// The data directory on `node`.
    pub fn data_dir_on(&self, node: &Node) -> String {
        self.path_on(node, &self.data_dir)
    }
    /// The rendered postgresql.conf on `node`.
    pub fn conf_on(&self, node: &Node) -> String {
        self.path_on(node, &self.conf_file)
    }
    /// The rendered pg_hba.conf on `node`.
    pub fn hba_on(&self, node: &Node) -> String {
        self.path_on(node, &self.hba_file)
    }
    /// The password file on `node`.
    pub fn passfile_on(&self, node: &Node) -> String {
        self.path_on(node, &self.passfile)
    }
    /// The directory of the server's Unix socket on `node`.
    pub fn sockets_on(&self, node: &Node) -> String {
        self.path_on(node, &self.sockets)
    }
    /// The log file on `node`.
    pub fn log_on(&self, node: &Node) -> String {
        self.path_on(node, &self.log_file)
    }
    /// The pid file on `node` (the postmaster's pid, written when netsplit starts it).
    pub fn pid_on(&self, node: &Node) -> String {
        self.path_on(node, &self.pid_file)
    }
    /// Whether node `i` runs PostgreSQL (n1 always; the others unless `replicas=none`).
    pub fn runs_on(&self, i: usize) -> bool {
        i == 0 || self.replicas != Replicas::None
    }
}

/// A string literal of postgresql.conf: single quotes, `'` doubled, `\` doubled.
pub fn conf_quote(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "''"))
}

/// A value of a libpq connection string: single quotes, `\` and `'` escaped by `\`.
pub fn conninfo_quote(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// One field of a password file line: `\` and `:` escaped by `\`.
fn pgpass_field(s: &str) -> String {
    s.replace('\\', "\\\\").replace(':', "\\:")
}

/// Where a node listens: its own address when that is an IP literal (namespace nodes each own
/// one), else every interface.
fn listen_host(host: &str) -> String {
    match host.parse::<IpAddr>() {
        Ok(_) => host.to_string(),
        Err(_) => "*".to_string(),
    }
}

/// The password file every node gets: the run's role and password for any host and database
/// on the target's port (the replicas' walreceivers and `pg_basebackup` read it).
pub fn pgpass(opts: &PgOpts) -> String {
    format!(
        "*:{}:*:{}:{}\n",
        opts.port,
        pgpass_field(&opts.user),
        pgpass_field(&opts.password)
    )
}

/// The connection string replica `node` streams from n1 with (its password in the password
/// file, its application name its node name, which `synchronous_standby_names` lists).
pub fn primary_conninfo(primary: &Node, node: &Node, opts: &PgOpts) -> String {
    format!(
        "host={} port={} user={} passfile={} application_name={} connect_timeout=2",
        conninfo_quote(&primary.host),
        opts.port,
        conninfo_quote(&opts.user),
        conninfo_quote(&opts.passfile_on(node)),
        conninfo_quote(&node.name),
    )
}

/// `synchronous_standby_names`: with `replicas=sync` any one of the replicas must flush a
/// commit before it is acknowledged; otherwise empty (asynchronous).
pub fn synchronous_standby_names(nodes: &[Node], opts: &PgOpts) -> String {
    if opts.replicas != Replicas::Sync || nodes.len() < 2 {
        return String::new();
    }
    let names: Vec<String> = nodes[1..]
        .iter()
        .map(|n| format!("\"{}\"", n.name.replace('"', "\"\"")))
        .collect();
    format!("ANY 1 ({})", names.join(", "))
}

/// The `postgresql.conf` of node `i` of `nodes`: node 0 is the primary, every other node a
/// standby streaming from it.
///
/// Panics only on a caller bug: `i` out of range.
pub fn postgresql_conf(i: usize, nodes: &[Node], opts: &PgOpts) -> Result<String, String> {
    let me = &nodes[i];
    let conninfo = if i == 0 {
        "# the primary: no primary_conninfo".to_string()
    } else {
        format!(
            "primary_conninfo = {}",
            conf_quote(&primary_conninfo(&nodes[0], me, opts))
        )
    };
    render_template(
        CONF_TEMPLATE,
        &[
            ("node", &me.name),
            ("data_dir", &opts.data_dir_on(me)),
            ("hba_file", &conf_quote(&opts.hba_on(me))),
            ("listen", &conf_quote(&listen_host(&me.host))),
            ("port", &opts.port.to_string()),
            ("sockets", &conf_quote(&opts.sockets_on(me))),
            ("fsync", if opts.fsync { "on" } else { "off" }),
            ("synchronous_commit", opts.synchronous_commit.as_str()),
            (
                "synchronous_standby_names",
                &conf_quote(&synchronous_standby_names(nodes, opts)),
            ),
            ("primary_conninfo", &conninfo),
        ],
    )
}

/// The `pg_hba.conf` of `node`: the run's role, with its password, from anywhere.
pub fn pg_hba_conf(node: &Node, opts: &PgOpts) -> Result<String, String> {
    render_template(HBA_TEMPLATE, &[("node", &node.name), ("user", &opts.user)])
}

#[cfg(test)]
mod tests;

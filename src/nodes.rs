//! Which nodes a command talks to, and how: the node-selection flags shared by `netsplit test`
//! and `netsplit exec` ([`NodeArgs`]), and their resolution into a node list plus SSH options
//! ([`resolve`]).
//!
//! Sources, exactly one of: `--cluster NAME` (a local cluster made by `netsplit cluster up`,
//! whose key and known_hosts are used, strictly), `--nodes n1,n2:2222,…`, or `--nodes-file F`
//! (one `host[:port]` per line, `#` comments). With none, the local cluster `default` is used if
//! it exists. Malformed input is bad input (exit 254) naming the file and line.
//!
//! [`connect_all`] opens the SSH sessions (checking a local cluster's routes first), and
//! [`resolve_plan`] does both for a test plan: with no nodes given, a target that runs on nodes
//! gets the embedded default — the local 5-node cluster `default`, brought up (or reused) here,
//! which needs root.

use crate::control::ssh::SshOptions;
use crate::control::{Node, Remote};
use crate::error::bad_input;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Node-selection flags. Flatten into a subcommand with `#[command(flatten)]`; a plan file may
/// carry the same fields (it deserialises with the same names, kebab-case).
#[derive(
    Debug, Clone, Default, PartialEq, Eq, clap::Args, serde::Serialize, serde::Deserialize,
)]
#[serde(default, rename_all = "kebab-case", deny_unknown_fields)]
pub struct NodeArgs {
    /// Use the local cluster NAME (made by `netsplit cluster up --name NAME`).
    #[arg(long, value_name = "NAME", conflicts_with_all = ["nodes", "nodes_file"])]
    pub cluster: Option<String>,
    /// Real nodes: a comma-separated list, each HOST or HOST:PORT.
    #[arg(
        long,
        value_name = "HOST[:PORT],…",
        value_delimiter = ',',
        conflicts_with = "nodes_file"
    )]
    pub nodes: Vec<String>,
    /// Real nodes from a file: one HOST or HOST:PORT per line, `#` starts a comment.
    #[arg(long, value_name = "FILE")]
    pub nodes_file: Option<PathBuf>,
    /// SSH user on real nodes (default root; others use `sudo -n`).
    #[arg(long, value_name = "USER")]
    pub username: Option<String>,
    /// SSH private key for real nodes (default: the SSH agent, then ~/.ssh/id_{ed25519,ecdsa,rsa}).
    #[arg(long, value_name = "FILE")]
    pub ssh_private_key: Option<PathBuf>,
    /// SSH port for real nodes listed without one (default 22).
    #[arg(long, value_name = "PORT")]
    pub ssh_port: Option<u16>,
    /// Refuse host keys that are not already in ~/.ssh/known_hosts (default: accept a new key
    /// with a warning and record it; a changed key is always refused).
    #[arg(long)]
    pub strict_host_key_checking: bool,
}

impl NodeArgs {
    /// True when no node source was given (`--cluster`, `--nodes`, `--nodes-file`): callers may
    /// then bring up a local cluster (see [`crate::cluster::ensure_up`]).
    pub fn no_source(&self) -> bool {
        self.cluster.is_none() && self.nodes.is_empty() && self.nodes_file.is_none()
    }
}

/// The outcome of resolution: the nodes, how to reach them, and the local cluster they belong
/// to (if any; the runner uses it for cluster-specific behaviour such as the control address).
#[derive(Debug, Clone)]
pub struct ResolvedNodes {
    /// The nodes, in plan order.
    pub nodes: Vec<Node>,
    /// How to reach them over SSH (user, key, known_hosts, host-key policy).
    pub ssh: SshOptions,
    /// The local cluster they belong to, if any.
    pub cluster: Option<crate::cluster::ClusterInfo>,
}

impl ResolvedNodes {
    /// The nodes of a local cluster, reached with its own key and known_hosts (strict).
    pub fn from_cluster(info: &crate::cluster::ClusterInfo) -> ResolvedNodes {
        ResolvedNodes {
            nodes: info.nodes(),
            ssh: info.ssh_options(),
            cluster: Some(info.clone()),
        }
    }

    /// Keeps only the node named `name` (bad input if there is none).
    pub fn select(mut self, name: &str) -> anyhow::Result<ResolvedNodes> {
        let names: Vec<String> = self.nodes.iter().map(|n| n.name.clone()).collect();
        self.nodes.retain(|n| n.name == name);
        if self.nodes.is_empty() {
            return Err(bad_input(format!(
                "no node named {name:?} (nodes: {})",
                names.join(", ")
            )));
        }
        Ok(self)
    }
}

/// Resolves node-selection flags (see the module docs for the rules).
pub fn resolve(args: &NodeArgs) -> anyhow::Result<ResolvedNodes> {
    let real_only = args.username.is_some()
        || args.ssh_private_key.is_some()
        || args.ssh_port.is_some()
        || args.strict_host_key_checking;
    let cluster_name = match (&args.cluster, args.no_source()) {
        (Some(c), _) => Some(c.clone()),
        (None, true) => {
            if crate::cluster::load("default")?.is_none() {
                return Err(bad_input(
                    "no nodes given: pass --nodes, --nodes-file or --cluster, or make the \
                     default local cluster with `netsplit cluster up` (as root)",
                ));
            }
            Some("default".to_string())
        }
        (None, false) => None,
    };
    if let Some(name) = cluster_name {
        if real_only {
            return Err(bad_input(
                "--username, --ssh-private-key, --ssh-port and --strict-host-key-checking are \
                 for real nodes; a local cluster uses its own key and known_hosts",
            ));
        }
        let info = crate::cluster::load(&name)?.ok_or_else(|| {
            bad_input(format!(
                "no local cluster named {name:?}: make it with `netsplit cluster up --name {name}`"
            ))
        })?;
        return Ok(ResolvedNodes::from_cluster(&info));
    }

    let default_port = args.ssh_port.unwrap_or(22);
    let mut entries: Vec<(String, u16)> = Vec::new();
    for (i, spec) in args.nodes.iter().enumerate() {
        let spec = spec.trim();
        if spec.is_empty() {
            continue;
        }
        let e = parse_host_port(spec, default_port)
            .map_err(|m| bad_input(format!("--nodes entry {}: {m}", i + 1)))?;
        entries.push(e);
    }
    if let Some(f) = &args.nodes_file {
        entries.extend(read_nodes_file(f, default_port)?);
    }
    if entries.is_empty() {
        return Err(bad_input("the node list is empty"));
    }
    let username = args.username.clone().unwrap_or_else(|| "root".into());
    if let Some(k) = &args.ssh_private_key {
        if !k.is_file() {
            return Err(bad_input(format!(
                "--ssh-private-key {}: no such file",
                k.display()
            )));
        }
    }
    Ok(ResolvedNodes {
        nodes: name_nodes(&entries)?,
        ssh: SshOptions::for_real_nodes(
            &username,
            args.ssh_private_key.clone(),
            args.strict_host_key_checking,
        ),
        cluster: None,
    })
}

/// Reads a nodes file: one `host[:port]` per line; blank lines and `#` comments are ignored.
pub fn read_nodes_file(path: &Path, default_port: u16) -> anyhow::Result<Vec<(String, u16)>> {
    let text = crate::input::read_text(path, "nodes file", crate::input::MAX_TEXT_BYTES)?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let l = line.split('#').next().unwrap_or("").trim();
        if l.is_empty() {
            continue;
        }
        let e = parse_host_port(l, default_port)
            .map_err(|m| bad_input(format!("{}:{}: {m}", path.display(), i + 1)))?;
        out.push(e);
    }
    Ok(out)
}

/// Parses `host`, `host:port`, `[v6addr]` or `[v6addr]:port`.
pub fn parse_host_port(spec: &str, default_port: u16) -> Result<(String, u16), String> {
    let bad_port = |p: &str| format!("bad port {p:?} in {spec:?}");
    let (host, port) = if let Some(rest) = spec.strip_prefix('[') {
        let (h, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("missing ']' in {spec:?}"))?;
        match after.strip_prefix(':') {
            Some(p) => (h.to_string(), p.parse().map_err(|_| bad_port(p))?),
            None if after.is_empty() => (h.to_string(), default_port),
            None => return Err(format!("unexpected {after:?} after ']' in {spec:?}")),
        }
    } else if spec.matches(':').count() > 1 {
        // A bare IPv6 address.
        (spec.to_string(), default_port)
    } else if let Some((h, p)) = spec.split_once(':') {
        (h.to_string(), p.parse().map_err(|_| bad_port(p))?)
    } else {
        (spec.to_string(), default_port)
    };
    if port == 0 {
        return Err(bad_port("0"));
    }
    crate::control::util::check_host(&host)?;
    Ok((host, port))
}

/// Names nodes after their host (the port is added only when one host appears twice) and gives
/// each its own working directory, `/var/lib/netsplit/<name>`.
fn name_nodes(entries: &[(String, u16)]) -> anyhow::Result<Vec<Node>> {
    let mut nodes: Vec<Node> = Vec::new();
    for (host, port) in entries {
        let dup_host = entries.iter().filter(|(h, _)| h == host).count() > 1;
        let name = if dup_host {
            format!("{host}:{port}")
        } else {
            host.clone()
        };
        if nodes.iter().any(|n| n.name == name) {
            return Err(bad_input(format!("node {name} is listed twice")));
        }
        let dir = crate::control::util::file_safe(&name);
        nodes.push(Node {
            name,
            host: host.clone(),
            ssh_port: *port,
            workdir: format!("/var/lib/netsplit/{dir}"),
        });
    }
    Ok(nodes)
}

/// Connects to resolved nodes. For a local cluster, first checks that its bridge and route
/// exist ([`crate::cluster::verify_routes`]), so nothing is sent to a cluster address that would
/// leave the machine.
pub fn connect_all(resolved: &ResolvedNodes) -> anyhow::Result<Vec<Arc<dyn Remote>>> {
    if let Some(c) = &resolved.cluster {
        crate::cluster::verify_routes(c)?;
    }
    crate::control::ssh::connect_nodes(&resolved.nodes, &resolved.ssh)
}

/// Name and size of the local cluster a run uses when no nodes are given.
pub const DEFAULT_CLUSTER: &str = "default";
/// The number of nodes of that cluster when it has to be made.
pub const DEFAULT_CLUSTER_NODES: usize = 5;

/// A plan's nodes and the remotes that reach them (`remotes[i]` reaches `nodes[i]`).
pub type PlanNodes = (Vec<Node>, Vec<Arc<dyn Remote>>);

/// The node flags of a plan.
fn plan_args(plan: &crate::plan::Plan) -> NodeArgs {
    let n = &plan.nodes;
    NodeArgs {
        cluster: n.cluster.clone(),
        nodes: n.nodes.clone(),
        nodes_file: n.nodes_file.as_ref().map(PathBuf::from),
        username: (n.username != "root").then(|| n.username.clone()),
        ssh_private_key: n.ssh_private_key.as_ref().map(PathBuf::from),
        ssh_port: (n.ssh_port != 22).then_some(n.ssh_port),
        strict_host_key_checking: n.strict_host_key_checking,
    }
}

/// A plan's nodes, without connecting to them (`--no-ssh`: clients only). The nodes must be
/// given: there is no default cluster to bring up without SSH.
pub fn resolve_plan_no_ssh(plan: &crate::plan::Plan) -> anyhow::Result<Vec<Node>> {
    let args = plan_args(plan);
    if args.no_source() {
        return Err(bad_input(
            "--no-ssh: name the nodes (--nodes, --nodes-file or --cluster), or give the clients' \
             endpoints alone (--target-opt endpoints=HOST:PORT,…)",
        ));
    }
    Ok(resolve(&args)?.nodes)
}

/// Nodes that are only client endpoints (`host`, port): named after their host (the port added
/// when a host appears twice), reached without SSH.
pub fn nodes_from_endpoints(endpoints: &[(String, u16)]) -> anyhow::Result<Vec<Node>> {
    if endpoints.is_empty() {
        return Err(bad_input("target.opts.endpoints: the list is empty"));
    }
    name_nodes(endpoints)
}

/// Whether the plan names nodes (`--cluster`, `--nodes`, `--nodes-file`), rather than leaving
/// them to the default local cluster.
pub fn given(plan: &crate::plan::Plan) -> bool {
    let n = &plan.nodes;
    !n.nodes.is_empty() || n.nodes_file.is_some() || n.cluster.is_some()
}

/// Resolves and connects a test plan's nodes. `needs_nodes`: whether the target runs on nodes
/// (one that does not gets none, whatever was given).
pub fn resolve_plan(plan: &crate::plan::Plan, needs_nodes: bool) -> anyhow::Result<PlanNodes> {
    if !needs_nodes {
        if given(plan) {
            tracing::warn!(
                target = %plan.target.name,
                "target needs no nodes; ignoring the nodes given"
            );
        }
        return Ok((Vec::new(), Vec::new()));
    }
    let mut args = plan_args(plan);
    if args.no_source() {
        if !crate::cluster::is_root() {
            return Err(bad_input(format!(
                "target {} runs on nodes and none were given; the default local cluster needs \
                 root (run as root, or pass --nodes, --nodes-file or --cluster)",
                plan.target.name
            )));
        }
        tracing::info!("no nodes given: using the local cluster {DEFAULT_CLUSTER}");
        crate::cluster::ensure_up(DEFAULT_CLUSTER, DEFAULT_CLUSTER_NODES)?;
        args.cluster = Some(DEFAULT_CLUSTER.to_string());
    }
    let resolved = resolve(&args)?;
    let remotes = connect_all(&resolved)?;
    Ok((resolved.nodes, remotes))
}

#[cfg(test)]
mod tests;

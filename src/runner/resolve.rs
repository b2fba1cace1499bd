//! The runner's real `resolve_nodes` hook: turns a plan's `nodes` section into nodes and SSH
//! remotes. With no nodes given, a target that runs on nodes gets the embedded default — the
//! local 5-node cluster `default`, brought up (or reused) here, which needs root.

use super::ResolvedNodes;
use crate::control::nodes::{self, NodeArgs};
use crate::error::bad_input;
use crate::plan::Plan;
use anyhow::Result;
use std::path::PathBuf;

/// Name and size of the local cluster a run uses when no nodes are given.
pub const DEFAULT_CLUSTER: &str = "default";
pub const DEFAULT_CLUSTER_NODES: usize = 5;

/// Resolves and connects the plan's nodes (see the module docs).
pub fn resolve_nodes(plan: &Plan) -> Result<ResolvedNodes> {
    let reg = crate::target::lookup(&plan.target.name)?;
    if !reg.needs_nodes {
        return super::resolve_no_nodes(plan);
    }
    let n = &plan.nodes;
    let mut args = NodeArgs {
        cluster: n.cluster.clone(),
        nodes: n.nodes.clone(),
        nodes_file: n.nodes_file.as_ref().map(PathBuf::from),
        username: (n.username != "root").then(|| n.username.clone()),
        ssh_private_key: n.ssh_private_key.as_ref().map(PathBuf::from),
        ssh_port: (n.ssh_port != 22).then_some(n.ssh_port),
        strict_host_key_checking: false,
    };
    if args.no_source() {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return Err(bad_input(format!(
                "target {} runs on nodes and none were given; the default local cluster needs \
                 root (run as root, or pass --nodes, --nodes-file or --cluster)",
                reg.name
            )));
        }
        tracing::info!("no nodes given: using the local cluster {DEFAULT_CLUSTER}");
        crate::cluster::ensure_up(DEFAULT_CLUSTER, DEFAULT_CLUSTER_NODES)?;
        args.cluster = Some(DEFAULT_CLUSTER.to_string());
    }
    let resolved = nodes::resolve(&args)?;
    let remotes = crate::control::ssh::connect_all(&resolved)?;
    Ok((resolved.nodes, remotes))
}

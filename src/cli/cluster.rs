//! `netsplit cluster up|down|status`: make, remove or inspect a local cluster of
//! network-namespace nodes (see [`crate::cluster`]).

use crate::cluster;

/// The arguments of `netsplit cluster`.
#[derive(Debug, clap::Args)]
pub struct ClusterArgs {
    /// What to do: up, down or status.
    #[command(subcommand)]
    pub action: ClusterAction,
}

/// The subcommands of `netsplit cluster`.
#[derive(Debug, clap::Subcommand)]
pub enum ClusterAction {
    /// Make the cluster, or repair it; a healthy cluster is left alone. Needs root.
    Up {
        /// Cluster name (1-10 characters of a-z, 0-9, '-').
        #[arg(long, default_value = "default")]
        name: String,
        /// Number of nodes (n1…nN).
        #[arg(long, default_value_t = cluster::DEFAULT_NODES)]
        nodes: usize,
    },
    /// Remove the cluster: processes, namespaces, links, rules and state. Needs root.
    Down {
        /// Cluster name.
        #[arg(long, default_value = "default")]
        name: String,
    },
    /// Show nodes, addresses, whether each namespace and sshd is alive and reachable, and any
    /// fault left on a node (by a run that was killed before it healed: `netsplit heal` undoes
    /// it). Exits 0 when healthy, 1 otherwise.
    Status {
        /// Cluster name.
        #[arg(long, default_value = "default")]
        name: String,
        /// Print the status as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Runs `netsplit cluster`; returns the process exit code.
pub fn run(args: ClusterArgs) -> anyhow::Result<u8> {
    match args.action {
        ClusterAction::Up { name, nodes } => {
            let r = cluster::up(&name, nodes)?;
            let i = &r.info;
            if r.changed {
                say!(
                    "cluster {}: up, {} nodes in {:.2}s (subnet {}, bridge {}, control node {})",
                    i.name,
                    i.nodes.len(),
                    r.elapsed.as_secs_f64(),
                    i.subnet,
                    i.bridge,
                    i.control_address
                );
            } else {
                say!(
                    "cluster {}: already up and healthy ({} nodes), nothing to do",
                    i.name,
                    i.nodes.len()
                );
            }
            for n in &i.nodes {
                say!("  {:<4} {:<15} {}", n.name, n.address, n.workdir.display());
            }
            Ok(0)
        }
        ClusterAction::Down { name } => {
            let r = cluster::down(&name)?;
            if r.nothing() {
                say!("cluster {name}: not present, nothing to remove");
            } else {
                say!(
                    "cluster {name}: removed {} namespaces{}{}{}",
                    r.namespaces.len(),
                    if r.bridge { ", the bridge" } else { "" },
                    if r.forward_rules > 0 {
                        ", the FORWARD rule"
                    } else {
                        ""
                    },
                    if r.state_dir {
                        ", the state directory"
                    } else {
                        ""
                    },
                );
            }
            Ok(0)
        }
        ClusterAction::Status { name, json } => {
            let Some(st) = cluster::status(&name)? else {
                if json {
                    say!("null");
                } else {
                    say!(
                        "cluster {name}: not up (make it with `netsplit cluster up --name {name}`)"
                    );
                }
                return Ok(1);
            };
            let leftovers = leftovers(&st.info);
            let healthy = st.healthy() && leftovers.as_ref().is_ok_and(|l| l.is_empty());
            if json {
                let mut v = serde_json::to_value(&st)?;
                v["leftovers"] = match &leftovers {
                    Ok(l) => serde_json::json!(l),
                    Err(e) => serde_json::json!({ "error": e }),
                };
                v["healthy"] = serde_json::json!(healthy);
                say!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                let i = &st.info;
                let state = if !st.healthy() {
                    "DEGRADED"
                } else if healthy {
                    "healthy"
                } else {
                    "FAULTS LEFT"
                };
                say!(
                    "cluster {}: {} ({} nodes, subnet {}, bridge {} {}, dir {})",
                    i.name,
                    state,
                    i.nodes.len(),
                    i.subnet,
                    i.bridge,
                    if st.bridge { "present" } else { "MISSING" },
                    i.dir.display()
                );
                if let Some(p) = &st.route_problem {
                    say!("  routes: {p}");
                }
                say!(
                    "  {:<4} {:<15} {:<6} {:<14} reachable",
                    "node",
                    "address",
                    "netns",
                    "sshd"
                );
                for n in &st.nodes {
                    say!(
                        "  {:<4} {:<15} {:<6} {:<14} {}",
                        n.name,
                        n.address,
                        if n.netns { "yes" } else { "NO" },
                        n.sshd_pid
                            .map(|p| format!("pid {p}"))
                            .unwrap_or_else(|| "NOT RUNNING".into()),
                        if n.reachable { "yes" } else { "NO" }
                    );
                }
                match &leftovers {
                    Ok(l) if l.is_empty() => say!("  faults left: none"),
                    Ok(l) => {
                        for p in l {
                            say!("  fault left: {p}");
                        }
                        say!(
                            "  (`netsplit heal --cluster {}` undoes them; add --target if a \
                             database was killed)",
                            i.name
                        );
                    }
                    Err(e) => say!("  faults left: cannot tell ({e})"),
                }
            }
            Ok(if healthy { 0 } else { 1 })
        }
    }
}

/// Faults left on a local cluster's nodes, read inside each namespace (no SSH needed, so a
/// node whose sshd is down is still inspected). Needs root.
fn leftovers(info: &cluster::ClusterInfo) -> Result<Vec<String>, String> {
    use crate::control::netns::NetnsRemote;
    use crate::control::Remote;
    use std::sync::Arc;
    if !cluster::is_root() {
        return Err("needs root".into());
    }
    let nodes = info.nodes();
    let remotes: Vec<Arc<dyn Remote>> = info
        .nodes
        .iter()
        .zip(&nodes)
        .map(|(l, n)| Arc::new(NetnsRemote::new(n.clone(), Some(l.netns.clone()))) as _)
        .collect();
    let mut plan = crate::plan::Plan::default();
    plan.nodes.cluster = Some(info.name.clone());
    let registry = crate::registry::Registry::builtin();
    let nem = crate::nemesis::Nemesis::build(crate::nemesis::NemesisEnv {
        plan: &plan,
        nodes,
        remotes,
        target: Arc::new(crate::db::NoDb),
        defs: registry.faults(),
        local_nodes: true,
        control_ip: info.control_address.parse().ok(),
    })
    .map_err(|e| crate::error::one_line(&e))?;
    Ok(nem.verify_clean().problems)
}

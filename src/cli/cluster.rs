//! `netsplit cluster up|down|status`: make, remove or inspect a local cluster of
//! network-namespace nodes (see [`crate::cluster`]).

use crate::cluster;

#[derive(Debug, clap::Args)]
pub struct ClusterArgs {
    #[command(subcommand)]
    pub action: ClusterAction,
}

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
        #[arg(long, default_value = "default")]
        name: String,
    },
    /// Show nodes, addresses and whether each namespace and sshd is alive and reachable.
    /// Exits 0 when healthy, 1 otherwise.
    Status {
        #[arg(long, default_value = "default")]
        name: String,
        /// Print the status as JSON.
        #[arg(long)]
        json: bool,
    },
}

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
            if json {
                say!("{}", serde_json::to_string_pretty(&st)?);
            } else {
                let i = &st.info;
                say!(
                    "cluster {}: {} ({} nodes, subnet {}, bridge {} {}, dir {})",
                    i.name,
                    if st.healthy() { "healthy" } else { "DEGRADED" },
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
            }
            Ok(if st.healthy() { 0 } else { 1 })
        }
    }
}

//! `netsplit heal`: find and undo whatever faults are left on the nodes — by an earlier run that
//! was killed before it could heal (SIGKILL, a CI timeout, a lost control machine) — and report
//! per node what was found, what was done and what is left. The same heal every run does before
//! anything else; it touches nothing but what netsplit's fault families inject (rules in its own
//! chains, its qdiscs, processes it stopped, databases it killed, clocks it moved).

use crate::nemesis::{Nemesis, NemesisEnv};
use crate::plan::{self, Overrides};
use crate::registry::Registry;
use std::path::PathBuf;

/// The arguments of `netsplit heal`.
#[derive(Debug, clap::Args)]
pub struct HealArgs {
    /// A test plan (its target and nodes).
    #[arg(long)]
    pub plan: Option<PathBuf>,
    /// The database the faults were aimed at (restarts what was killed, resumes what was
    /// paused). Default: the plan's, else etcd.
    #[arg(long)]
    pub target: Option<String>,
    /// `existing`: the database was deployed by the user (docs/deployed-databases.md); give
    /// the same process option as the run (`--target-opt process=NAME`, `pidfile=`,
    /// `service=`) to start again what that run killed.
    #[arg(long, value_name = "install|existing")]
    pub deploy: Option<crate::plan::Deploy>,
    /// Db option KEY=VALUE (repeatable).
    #[arg(long = "target-opt", value_name = "K=V")]
    pub target_opt: Vec<String>,
    /// Where the nodes are (over the plan's `nodes:`).
    #[command(flatten)]
    pub nodes: crate::nodes::NodeArgs,
}

/// Runs `netsplit heal`; returns the process exit code.
pub fn run(args: HealArgs, registry: &Registry) -> anyhow::Result<u8> {
    let ov = Overrides {
        target: args.target.clone(),
        nodes: args.nodes.clone(),
        nemesis: Some("none".into()),
        deploy: args.deploy,
        target_opt: args.target_opt.clone(),
        ..Overrides::default()
    };
    let plan = plan::resolve(args.plan.as_deref(), &ov)?;
    let prepared = registry.prepare(&plan)?;
    if !prepared.target.needs_nodes {
        say!(
            "target {} runs on no nodes: nothing to heal",
            prepared.target.name
        );
        return Ok(0);
    }
    let plan = &prepared.plan;
    let (nodes, remotes) = crate::nodes::resolve_plan(plan, true)?;
    let local = plan.local_nodes();
    let db_plan = plan.for_db();
    let deploy = crate::db::Deployment::from_plan(&db_plan, local, false)?;
    let target = prepared.build_target(db_plan, &nodes, &remotes, deploy)?;
    let nem = Nemesis::build(NemesisEnv {
        plan,
        nodes: nodes.clone(),
        remotes,
        target,
        defs: registry.faults(),
        local_nodes: local,
        control_ip: None,
    })?;
    let lo = nem.heal_leftovers();
    for n in &nodes {
        let mine = |lines: &[String]| -> Vec<String> {
            let p = format!("{}: ", n.name);
            lines
                .iter()
                .filter(|l| l.starts_with(&p))
                .map(|l| l[p.len()..].to_string())
                .collect()
        };
        let (found, errors, left) = (mine(&lo.found), mine(&lo.heal.errors), mine(&lo.left));
        if found.is_empty() && errors.is_empty() && left.is_empty() {
            say!("{}: clean", n.name);
            continue;
        }
        for f in &found {
            say!("{}: found: {f}", n.name);
        }
        for e in &errors {
            say!("{}: heal FAILED: {e}", n.name);
        }
        for l in &left {
            say!("{}: still left: {l}", n.name);
        }
        if errors.is_empty() && left.is_empty() {
            say!("{}: healed", n.name);
        }
    }
    Ok(if lo.is_clean() {
        0
    } else {
        crate::error::EXIT_HARNESS
    })
}

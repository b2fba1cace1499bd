//! Faults: partitions, packet faults, pauses, crashes and clock skew — injected on real nodes,
//! recorded in the history, and always healed.
//!
//! A fault *family* is one module implementing [`Fault`] and registered with a [`FaultDef`]
//! (see `fault`): its options, how it draws a concrete fault, how it injects and ends it, how it
//! heals a node and proves it clean. The built-ins are in `families`. This module owns
//! [`Nemesis`], the executor the runner drives: it turns the runner's `start-<family>` /
//! `stop-<family>` into a family's concrete operations, answers each with what was done (the
//! `info` completion's value), and provides the safety nets every way out of a run uses —
//! [`Nemesis::heal_all`] (every family, every node, idempotent, best effort even when some
//! fail; also what an earlier, killed run may have left) and [`Nemesis::verify_clean`] (proof
//! that no rule, qdisc, stopped process or clock offset is left).
//!
//! The other modules are the families' pure parts and command builders: `grudge` + `select`
//! (shapes and node choices), `partition` (iptables), `packet` (tc), `nfq` (the userspace
//! packet emulation), `process` (process states), `clock` (libfaketime files and the real
//! clock).
//!
//! Blocking: every method runs commands through [`Remote`] (blocking); async callers use
//! `spawn_blocking`. Work on several nodes runs on scoped threads, one per node.

pub mod clock;
pub mod disk;
pub mod diskfs;
pub mod families;
pub mod fault;
pub mod grudge;
pub mod marks;
pub mod nfq;
pub mod packet;
pub mod partition;
pub mod process;
pub mod select;

pub use clock::{ClockMode, ClockState};
pub use fault::{Ability, Cx, Fault, FaultArgs, FaultDef, Skipped};
pub use grudge::{Grudge, Shape};
pub use packet::Behaviour;
pub use select::NodeSpec;

use crate::control::{Cmd, Node, Remote};
use crate::db::Db;
use crate::error::bad_input;
use crate::history::{Op, OpType, Process};
use crate::plan::Plan;
use anyhow::{anyhow, Result};
use serde_json::{json, Value};
use std::net::IpAddr;
use std::sync::Arc;

/// What a nemesis invocation did: the value recorded in the completion event (which nodes,
/// which rules, …) and an error text when it could not do it fully.
#[derive(Debug, Clone, PartialEq)]
pub struct NemesisOutcome {
    /// The completion's value.
    pub value: Value,
    /// What could not be done, if anything (recorded as the completion's `error`).
    pub error: Option<String>,
}

/// What [`Nemesis::heal_all`] did, and what it could not do.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HealReport {
    /// Steps that succeeded (`n1: partition`, `n3: resume`, …).
    pub healed: Vec<String>,
    /// Steps that failed, each naming the node.
    pub errors: Vec<String>,
}

impl HealReport {
    /// No step failed.
    pub fn is_ok(&self) -> bool {
        self.errors.is_empty()
    }
    /// `{"healed": [...], "errors": [...]}`.
    pub fn to_json(&self) -> Value {
        json!({ "healed": self.healed, "errors": self.errors })
    }
}

/// What [`Nemesis::verify_clean`] found left over, one line per problem, each naming the node.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CleanReport {
    /// What was left over, one line per problem.
    pub problems: Vec<String>,
}

impl CleanReport {
    /// Nothing was left over.
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }
}

/// What [`Nemesis::heal_leftovers`] found, did, and could not undo.
#[derive(Debug, Clone, Default)]
pub struct Leftovers {
    /// Problems found before healing, one line each, naming the node.
    pub found: Vec<String>,
    /// What healing them did.
    pub heal: HealReport,
    /// Problems still there after healing.
    pub left: Vec<String>,
}

impl Leftovers {
    /// Nothing was left, or everything left was healed.
    pub fn is_clean(&self) -> bool {
        self.heal.is_ok() && self.left.is_empty()
    }
}

/// What a nemesis is built from.
pub struct NemesisEnv<'a> {
    /// The run's plan (its `nemesis:` section says which faults, how often).
    pub plan: &'a Plan,
    /// The run's nodes.
    pub nodes: Vec<Node>,
    /// The remotes that reach them: `remotes[i]` reaches `nodes[i]`.
    pub remotes: Vec<Arc<dyn Remote>>,
    /// The run's target database.
    pub target: Arc<dyn Db>,
    /// The registered fault families, in heal order.
    pub defs: &'a [FaultDef],
    /// The nodes are local namespace nodes (one kernel clock and filesystem with this machine).
    pub local_nodes: bool,
    /// The control node's address as the nodes see it, when known without asking them.
    pub control_ip: Option<IpAddr>,
}

/// The value and error of a nemesis completion for an operation that ended in `e`: skipped
/// (no error, the reason under `skipped`) or failed (the error, also in the value).
pub fn outcome_of_error(request: &Value, e: &anyhow::Error) -> (Value, Option<String>) {
    if let Some(s) = e.downcast_ref::<Skipped>() {
        return (json!({ "request": request, "skipped": s.0 }), None);
    }
    let msg = crate::error::one_line(e);
    (json!({ "request": request, "error": msg }), Some(msg))
}

/// The control node's address as an SSH-reached node sees it (`$SSH_CLIENT`), `None` when the
/// remote is not an SSH session.
pub fn detect_control_ip(remote: &dyn Remote) -> Option<IpAddr> {
    let out = remote
        .exec(&Cmd::new("sh").args(["-c", "echo \"$SSH_CLIENT\""]))
        .ok()?;
    out.stdout.split_whitespace().next()?.parse().ok()
}

/// The fault executor of one run. See the module docs.
pub struct Nemesis {
    cx: Option<Cx>,
    /// Every family the target supports, in heal order: all of them heal, every run.
    families: Vec<(String, Arc<dyn Fault>)>,
    /// The families the plan schedules.
    scheduled: Vec<String>,
}

impl Nemesis {
    /// A nemesis with nothing to inject and nothing to heal.
    pub fn none() -> Nemesis {
        Nemesis {
            cx: None,
            families: Vec::new(),
            scheduled: Vec::new(),
        }
    }

    /// Builds the nemesis for a plan: checks the fault names, their options (errors name
    /// `nemesis.opts.<family>.<key>` and the line) and that the target can do what they need —
    /// all bad input (exit 254), before any node is touched.
    pub fn build(env: NemesisEnv) -> Result<Nemesis> {
        let plan = env.plan;
        let origin = |path: &str| {
            plan.origins
                .get(path)
                .map(|o| format!("{o}: "))
                .unwrap_or_default()
        };
        let known = || {
            env.defs
                .iter()
                .map(|d| d.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut scheduled: Vec<String> = Vec::new();
        for f in &plan.nemesis.faults {
            let f = f.trim();
            match f {
                "none" | "" => {}
                "all" => {
                    for d in env.defs {
                        if d.unmet(env.target.as_ref(), env.nodes.len()).is_none() {
                            scheduled.push(d.name.clone());
                        }
                    }
                }
                _ if env.defs.iter().any(|d| d.name == f) => scheduled.push(f.to_string()),
                _ => {
                    return Err(bad_input(format!(
                        "{}nemesis.faults: unknown fault {f:?} (known: {}, none, all)",
                        origin("nemesis.faults"),
                        known()
                    )))
                }
            }
        }
        scheduled.dedup();
        for k in plan.nemesis.opts.keys() {
            if !env.defs.iter().any(|d| &d.name == k) {
                return Err(bad_input(format!(
                    "{}nemesis.opts.{k}: unknown fault (known: {})",
                    origin(&format!("nemesis.opts.{k}")),
                    known()
                )));
            }
        }
        if plan.nemesis.if_able {
            scheduled.retain(|name| {
                let d = env.defs.iter().find(|d| &d.name == name).expect("checked");
                let unmet = d.unmet(env.target.as_ref(), env.nodes.len());
                if let Some(a) = &unmet {
                    tracing::info!(
                        fault = %name,
                        "left out: target {} cannot {} here",
                        env.target.name(),
                        a.name()
                    );
                }
                unmet.is_none()
            });
        }
        for name in &scheduled {
            let d = env.defs.iter().find(|d| &d.name == name).expect("checked");
            match d.unmet(env.target.as_ref(), env.nodes.len()) {
                Some(_) if env.nodes.is_empty() => {
                    return Err(bad_input(format!(
                    "nemesis faults {:?} need nodes, and this run of target {} has none (a target \
                         that takes nodes, like custom, gets them from --cluster or --nodes)",
                    scheduled,
                    env.target.name()
                )))
                }
                Some(a) => {
                    return Err(bad_input(format!(
                        "{}nemesis.faults: {name} needs a target that can {}; target {} cannot",
                        origin("nemesis.faults"),
                        a.name(),
                        env.target.name()
                    )))
                }
                None => {}
            }
        }
        // Every family heals and verifies, scheduled or not, so that whatever any earlier run
        // left is found (a family whose ability the target lacks still clears what its marks
        // name). Without nodes, only families that need none.
        let mut families = Vec::new();
        for d in env.defs {
            if env.nodes.is_empty() && !d.needs.is_empty() {
                continue;
            }
            let opts = plan
                .nemesis
                .opts
                .get(&d.name)
                .cloned()
                .unwrap_or(Value::Null);
            let f = d.build(&FaultArgs {
                opts: &opts,
                origins: &plan.origins,
                local_nodes: env.local_nodes,
                target: &env.target,
            })?;
            families.push((d.name.clone(), f));
        }
        if families.is_empty() && env.nodes.is_empty() {
            return Ok(Nemesis::none());
        }
        let control_ip = env.control_ip.or_else(|| {
            env.remotes
                .first()
                .and_then(|r| detect_control_ip(r.as_ref()))
        });
        let cx = Cx::new(
            env.nodes,
            env.remotes,
            control_ip,
            env.target,
            env.local_nodes,
            plan.seed(),
        )
        .map_err(|e| e.context("building the nemesis"))?;
        Ok(Nemesis {
            cx: Some(cx),
            families,
            scheduled,
        })
    }

    /// The context (nodes, addresses), if the run has nodes.
    pub fn cx(&self) -> Option<&Cx> {
        self.cx.as_ref()
    }

    /// The families the plan schedules.
    pub fn scheduled(&self) -> &[String] {
        &self.scheduled
    }

    fn family(&self, name: &str) -> Option<&Arc<dyn Fault>> {
        self.families
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, f)| f)
    }

    /// Prepares the scheduled families on every node (after the target is up); from now on
    /// [`Nemesis::verify_clean`] demands the target running. Returns the notes the history
    /// should carry (what the plan asked that these nodes or this target cannot do).
    pub fn setup(&self) -> Result<Vec<String>> {
        let Some(cx) = &self.cx else {
            return Ok(Vec::new());
        };
        let mut notes = Vec::new();
        for name in &self.scheduled {
            if let Some(f) = self.family(name) {
                f.setup(cx)
                    .map_err(|e| e.context(format!("setting up {name} faults")))?;
                notes.extend(f.notes(cx));
            }
        }
        cx.set_expect_running(true);
        Ok(notes)
    }

    /// Whether verify-clean demands the target running (false again for a target that is
    /// torn down).
    pub fn set_expect_running(&self, yes: bool) {
        if let Some(cx) = &self.cx {
            cx.set_expect_running(yes);
        }
    }

    /// Performs one scheduled operation: `start-<family>` (drawn from the family's options
    /// when `value` is null), `stop-<family>`, `heal`, or a family's concrete operation
    /// (`pause`, `bump-clock`, …) with its value. A failure is an outcome with `error`, not an
    /// `Err`: the run goes on, and the history says what failed.
    pub fn invoke(&self, f: &str, value: &Value) -> NemesisOutcome {
        let Some(cx) = &self.cx else {
            return NemesisOutcome {
                value: json!({ "request": value }),
                error: Some(format!(
                    "nemesis operation {f:?} requested but the run has no nodes"
                )),
            };
        };
        if f == "heal" || f == "heal-all" {
            let rep = self.heal_all();
            return NemesisOutcome {
                error: (!rep.is_ok())
                    .then(|| format!("heal-all failed: {}", rep.errors.join("; "))),
                value: rep.to_json(),
            };
        }
        let (family, op, request, drawn) = match self.resolve(f, value) {
            Ok(x) => x,
            Err(e) => {
                let (value, error) = outcome_of_error(value, &e);
                return NemesisOutcome { value, error };
            }
        };
        match family.invoke(cx, &op, &request) {
            Ok(mut done) => {
                let label = family.label(&op, &done);
                if let Value::Object(m) = &mut done {
                    m.insert("op".into(), json!(op));
                    m.insert("label".into(), json!(label));
                    if drawn || f != op {
                        m.insert("request".into(), request);
                    }
                }
                NemesisOutcome {
                    value: done,
                    error: None,
                }
            }
            Err(e) => {
                let (mut value, error) = outcome_of_error(&request, &e);
                value["op"] = json!(op);
                NemesisOutcome { value, error }
            }
        }
    }

    /// The family, concrete operation and request an `f` means; `true` when the request was
    /// drawn from the family's options.
    fn resolve(&self, f: &str, value: &Value) -> Result<(&Arc<dyn Fault>, String, Value, bool)> {
        if let Some(name) = f.strip_prefix("start-") {
            if let Some(fam) = self.family(name) {
                if value.is_null() {
                    let (op, req) = fam.draw(&mut self.cx.as_ref().expect("nodes").rng());
                    return Ok((fam, op, req, true));
                }
                return Ok((fam, fam.ops()[0].to_string(), value.clone(), false));
            }
        }
        if let Some(name) = f.strip_prefix("stop-") {
            if let Some(fam) = self.family(name) {
                return Ok((fam, fam.stop_op().to_string(), json!({}), false));
            }
        }
        for (_, fam) in &self.families {
            if fam.ops().contains(&f) {
                return Ok((fam, f.to_string(), value.clone(), false));
            }
        }
        Err(bad_input(format!("unknown nemesis operation {f:?}")))
    }

    /// Executes a nemesis invocation and returns its completion: an `info` op (the nemesis
    /// cannot know how the cluster took it) with what was done as the value, or with `error`
    /// set and `{"error": …}` in the value when it failed.
    pub fn invoke_op(&self, invoke: &Op) -> Op {
        let out = self.invoke(&invoke.f, &invoke.value);
        let mut done = Op::new(Process::Nemesis, OpType::Info, invoke.f.clone(), out.value);
        done.error = out.error;
        done
    }

    /// Heals everything on every node: every family the target supports undoes whatever it may
    /// have left (this run's faults, or an earlier, killed run's), network first, then
    /// processes, then clocks. Idempotent and safe when nothing is active; keeps going past
    /// failures and reports them, each naming its node.
    pub fn heal_all(&self) -> HealReport {
        let mut rep = HealReport::default();
        let Some(cx) = &self.cx else {
            return rep;
        };
        let results = cx.on_nodes(&cx.names, |n, r| {
            let mut ok = Vec::new();
            let mut errs = Vec::new();
            for (name, f) in &self.families {
                match f.heal(cx, n, r) {
                    Ok(steps) => ok.extend(steps.into_iter().map(|s| format!("{n}: {s}"))),
                    Err(e) => errs.push(fault::about(
                        n,
                        &format!("{name}: {}", crate::error::one_line(&e)),
                    )),
                }
            }
            Ok((ok, errs))
        });
        for (n, res) in results {
            match res {
                Ok((ok, errs)) => {
                    rep.healed.extend(ok);
                    rep.errors.extend(errs);
                }
                Err(e) => rep
                    .errors
                    .push(fault::about(&n, &crate::error::one_line(&e))),
            }
        }
        rep
    }

    /// Checks every node is clean: no rule, qdisc, stopped process, missing process (once the
    /// target was set up) or clock offset left by any family.
    pub fn verify_clean(&self) -> CleanReport {
        let mut rep = CleanReport::default();
        let Some(cx) = &self.cx else {
            return rep;
        };
        for (n, res) in cx.on_nodes(&cx.names, |n, r| {
            let mut problems = Vec::new();
            for (name, f) in &self.families {
                match f.leftovers(cx, n, r) {
                    Ok(p) => problems.extend(p),
                    Err(e) => problems.push(format!(
                        "{n}: cannot verify {name}: {}",
                        crate::error::one_line(&e)
                    )),
                }
            }
            Ok(problems)
        }) {
            match res {
                Ok(p) => rep.problems.extend(p),
                Err(e) => rep.problems.push(format!(
                    "{n}: cannot verify: {}",
                    crate::error::one_line(&e)
                )),
            }
        }
        rep
    }

    /// What an earlier run may have left: found (verify), healed, and what is still there after
    /// the heal. The start of every run, `netsplit heal` and nothing else.
    pub fn heal_leftovers(&self) -> Leftovers {
        let found = self.verify_clean().problems;
        let heal = self.heal_all();
        let left = if found.is_empty() && heal.is_ok() {
            Vec::new()
        } else {
            self.verify_clean().problems
        };
        Leftovers { found, heal, left }
    }

    /// Heals, then verifies; any failure or leftover is an error naming the node.
    pub fn heal_and_verify(&self) -> Result<()> {
        let rep = self.heal_all();
        let clean = self.verify_clean();
        let mut problems = rep.errors;
        problems.extend(clean.problems);
        if problems.is_empty() {
            Ok(())
        } else {
            Err(anyhow!("after healing: {}", problems.join("; ")))
        }
    }

    /// End of a run: heal everything, then remove what the families installed.
    pub fn teardown(&self) -> HealReport {
        let mut rep = self.heal_all();
        let Some(cx) = &self.cx else {
            return rep;
        };
        for (n, res) in cx.on_nodes(&cx.names, |n, r| {
            for (name, f) in &self.families {
                f.teardown(cx, n, r)
                    .map_err(|e| e.context(format!("removing {name}")))?;
            }
            Ok(())
        }) {
            if let Err(e) = res {
                rep.errors
                    .push(fault::about(&n, &crate::error::one_line(&e)));
            }
        }
        rep
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod hold_tests;

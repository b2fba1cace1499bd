//! The seam between the runner and fault injection: the [`Nemesis`] trait the fault-injection
//! work implements, the no-op nemesis used when the plan has no faults, and the hook that builds
//! the nemesis for a plan.
//!
//! The runner owns *when* faults happen (the `nemesis_cycle` generator at the plan's interval)
//! and records every start/stop in the history (process `"nemesis"`); a `Nemesis` owns *how*.
//! All calls are blocking (they run commands on nodes) and made off the async threads.

use super::recorder::Recorder;
use crate::control::{Node, Remote};
use crate::error::bad_input;
use crate::plan::Plan;
use crate::target::Target;
use anyhow::Result;
use serde_json::Value;
use std::sync::Arc;

/// What a nemesis invocation did: the value recorded in the completion event (which nodes,
/// which rules, …) and an error text when it could not do it fully.
#[derive(Debug, Clone, PartialEq)]
pub struct NemesisOutcome {
    pub value: Value,
    pub error: Option<String>,
}

/// Injects and heals faults.
pub trait Nemesis: Send + Sync {
    /// Prepares the nodes (tools, iptables chain, …). `recorder` may be kept to record extra
    /// nemesis events (process `"nemesis"`) beyond the runner's own start/stop records.
    fn setup(&self, recorder: &Recorder) -> Result<()>;
    /// Performs one scheduled operation: `f` is `start-<fault>` or `stop-<fault>`.
    fn invoke(&self, f: &str, value: &Value) -> Result<NemesisOutcome>;
    /// Undoes every fault that may be active. Called on every exit path; must be idempotent
    /// and must try every node even when some fail.
    fn heal_all(&self) -> Result<()>;
    /// Removes what `setup` installed.
    fn teardown(&self) -> Result<()>;
}

/// The nemesis of a plan without faults: does nothing, successfully.
pub struct NoopNemesis;

impl Nemesis for NoopNemesis {
    fn setup(&self, _recorder: &Recorder) -> Result<()> {
        Ok(())
    }
    fn invoke(&self, f: &str, _value: &Value) -> Result<NemesisOutcome> {
        Err(bad_input(format!(
            "nemesis operation {f:?} requested but the plan has no faults"
        )))
    }
    fn heal_all(&self) -> Result<()> {
        Ok(())
    }
    fn teardown(&self) -> Result<()> {
        Ok(())
    }
}

/// What a nemesis is built from.
pub struct NemesisEnv {
    pub plan: Plan,
    pub nodes: Vec<Node>,
    pub remotes: Vec<Arc<dyn Remote>>,
    pub target: Arc<dyn Target>,
}

/// Builds a nemesis for the plan's fault list.
pub type NemesisBuilder = fn(NemesisEnv) -> Result<Arc<dyn Nemesis>>;

/// The default builder: no faults → [`NoopNemesis`]; faults → an error naming them, because
/// this build has no fault injection registered (the fault-injection work replaces this hook
/// with its own builder via [`super::Hooks`]).
pub fn build_default(env: NemesisEnv) -> Result<Arc<dyn Nemesis>> {
    if env.plan.nemesis.faults.is_empty() {
        return Ok(Arc::new(NoopNemesis));
    }
    Err(bad_input(format!(
        "nemesis faults {:?} requested, but no fault injection is registered in this build \
         (use --nemesis none)",
        env.plan.nemesis.faults
    )))
}

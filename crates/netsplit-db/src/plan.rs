//! What of the test plan a database reads: the plan's `target:` section ([`TargetPlan`],
//! with its deploy mode [`Deploy`]) and, in [`DbPlan`], the few facts of the rest of the
//! plan that a database's setup needs (where each option came from, the seed, whether the
//! nodes are local, whether the run keeps its data or injects disk faults). The harness's
//! plan (`src/plan.rs`) embeds [`TargetPlan`] as its `target:` key and hands a database a
//! [`DbPlan`] made from the whole plan; nothing here knows the rest of the plan's schema.

use crate::opts::Origins;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// What a database reads of the resolved plan of its run.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DbPlan {
    /// The plan's `target:` section: name, version, deploy mode and options.
    pub target: TargetPlan,
    /// Where each plan key came from (file and line, or the flag), for errors that name it.
    pub origins: Origins,
    /// The run's seed.
    pub seed: u64,
    /// Whether the nodes are local namespace nodes (one kernel clock shared by all).
    pub local_nodes: bool,
    /// `--leave-data`: keep what the run wrote in a deployed database.
    pub leave_data: bool,
    /// Whether the plan injects disk faults (which need the fault file system).
    pub disk_faults: bool,
}

/// The database under test.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TargetPlan {
    /// Registered target name (`netsplit test --target`), e.g. `etcd`, `noop`.
    pub name: String,
    /// Version to install, when the target supports choosing one.
    pub version: Option<String>,
    /// Where to fetch an install tarball from instead of the distribution's packages.
    pub install_url: Option<String>,
    /// `install` (default): netsplit installs, configures, starts and tears down its own copy;
    /// `existing`: the database is already deployed, netsplit only drives it
    /// (docs/deployed-databases.md).
    pub deploy: Deploy,
    /// Db-specific options (`--target-opt K=V`), e.g. `read: serializable`; and the
    /// options every target has (`service`, `process`, `pidfile`, `start`, `endpoints`;
    /// [`crate::CommonOpts`]).
    pub opts: BTreeMap<String, Value>,
}

/// How the database under test gets onto the nodes (`target.deploy`, `--deploy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Deploy {
    /// netsplit installs, configures, wipes, starts and tears down its own copy.
    #[default]
    Install,
    /// The database already runs (deployed by the user): no install, config, wipe or
    /// teardown; netsplit only stops what it pauses or kills, and resumes or starts it again.
    Existing,
}

impl Deploy {
    /// Every mode.
    pub const ALL: [Deploy; 2] = [Deploy::Install, Deploy::Existing];

    /// The name as written in plans and flags.
    pub fn as_str(self) -> &'static str {
        match self {
            Deploy::Install => "install",
            Deploy::Existing => "existing",
        }
    }
}

impl std::str::FromStr for Deploy {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        Deploy::ALL
            .into_iter()
            .find(|d| d.as_str() == s)
            .ok_or_else(|| format!("unknown deploy mode {s:?} (expected install or existing)"))
    }
}

impl Default for TargetPlan {
    fn default() -> Self {
        TargetPlan {
            name: "etcd".into(),
            version: None,
            install_url: None,
            deploy: Deploy::Install,
            opts: BTreeMap::new(),
        }
    }
}

/// A JSON value as plain text: strings unquoted, everything else as JSON.
pub fn value_as_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

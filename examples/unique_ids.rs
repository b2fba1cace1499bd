//! Extending netsplit from an application crate: a workload, a target, and the whole command line.
//!
//! This file is all it takes. It registers
//! - a workload `unique-ids`: clients `generate` ids; after the run each worker `read`s the
//!   service's log of what it handed out; its checker reports every id acknowledged twice
//!   (duplicates) and every acknowledged id missing from that log (lost);
//! - a target `toy-ids`: an in-memory id service that speaks it. `--target-opt
//!   duplicate_every=N` makes it hand out a duplicate every N ids (a bug to find);
//!
//! then hands the registry to `netsplit::cli::main_with`, which gives it `test`, `check`,
//! `analyze`, `list` and every other subcommand:
//!
//! ```sh
//! cargo run --release --example unique_ids -- test --target toy-ids --workload unique-ids --time-limit 3
//! # → valid, exit 0
//! cargo run --release --example unique_ids -- test --target toy-ids --workload unique-ids \
//!     --time-limit 3 --target-opt duplicate_every=50
//! # → INVALID, exit 1, naming the duplicated ids
//! ```

use netsplit::checker::{Budget, Validity};
use netsplit::db::{BoxFuture, Client, Completion, Db, DbDef, DbEnv, DbType};
use netsplit::generator::{self as g, BoxGen};
use netsplit::history::{pair, Op, OpType};
use netsplit::registry::Registry;
use netsplit::workload::{Checked, Workload, WorkloadDef, WorkloadOptions};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

// ---- the workload --------------------------------------------------------------------------

/// The workload's options (the plan's `workload:` section).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UniqueIds {}

impl WorkloadOptions for UniqueIds {
    const NAME: &'static str = "unique-ids";
    const ABOUT: &'static str = "generate ids; none may be handed out twice, none may be lost";
}

impl Workload for UniqueIds {
    fn generator(&self) -> BoxGen {
        g::repeat("generate", Value::Null)
    }

    fn final_generator(&self) -> Option<BoxGen> {
        Some(g::each_thread_once("read", Value::Null))
    }

    fn check(&self, ops: &[Op], _budget: &Budget) -> Vec<Checked> {
        vec![Checked::of("unique-ids", check_ids(ops))]
    }
}

/// What the checker found.
#[derive(Debug, Serialize)]
pub struct IdsResult {
    pub valid: Validity,
    /// What was found, in one line (the console prints it under the verdict).
    pub summary: String,
    /// Ids acknowledged by `generate`.
    pub acknowledged: usize,
    /// Ids acknowledged more than once, with how many times (at most 32 listed).
    pub duplicated: BTreeMap<String, usize>,
    pub duplicated_count: usize,
    /// Acknowledged ids missing from the service's final log (at most 32 listed).
    pub lost: Vec<String>,
    pub lost_count: usize,
}

/// Duplicates and lost ids, from the history alone.
fn check_ids(ops: &[Op]) -> Result<IdsResult, netsplit::checker::CheckError> {
    let done = pair(ops).map_err(|e| netsplit::checker::CheckError::new(0, e.to_string()))?;
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut logged: Option<BTreeSet<String>> = None;
    for c in done.iter().filter(|c| c.outcome == OpType::Ok) {
        match c.f.as_str() {
            "generate" => *seen.entry(c.output.to_string()).or_insert(0) += 1,
            "read" => {
                let ids = c.output.as_array().cloned().unwrap_or_default();
                let set = logged.get_or_insert_with(BTreeSet::new);
                set.extend(ids.iter().map(Value::to_string));
            }
            _ => {}
        }
    }
    let dups: BTreeMap<String, usize> = seen
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(k, n)| (k.clone(), *n))
        .collect();
    let lost: Vec<String> = match &logged {
        Some(log) => seen
            .keys()
            .filter(|id| !log.contains(*id))
            .cloned()
            .collect(),
        None => Vec::new(),
    };
    let some = |ids: Vec<&String>| {
        let mut s = ids
            .iter()
            .take(8)
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        if ids.len() > 8 {
            s.push_str(", …");
        }
        s
    };
    let summary = format!(
        "{} ids acknowledged more than once ({}); {} acknowledged ids lost ({})",
        dups.len(),
        some(dups.keys().collect()),
        lost.len(),
        some(lost.iter().collect())
    );
    Ok(IdsResult {
        valid: Validity::from_bool(dups.is_empty() && lost.is_empty()),
        summary,
        acknowledged: seen.values().sum(),
        duplicated_count: dups.len(),
        duplicated: dups.into_iter().take(32).collect(),
        lost_count: lost.len(),
        lost: lost.into_iter().take(32).collect(),
    })
}

// ---- the target ----------------------------------------------------------------------------

/// `--target-opt` options of the toy service.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ToyOpts {
    /// Hand out a duplicate (the previous id again) every N ids; 0: never.
    pub duplicate_every: u64,
}

/// An in-memory id service: a counter behind a lock, and a log of every id it handed out.
pub struct ToyIds {
    state: Arc<Mutex<(u64, Vec<u64>)>>,
    duplicate_every: u64,
}

impl DbType for ToyIds {
    const NAME: &'static str = "toy-ids";
    const ABOUT: &'static str = "an in-memory id service (duplicate_every=N makes it buggy)";
    const NEEDS_NODES: bool = false;
    const VOCABULARIES: &'static [&'static str] = &["unique-ids"];
    type Options = ToyOpts;

    fn build(_env: DbEnv, opts: ToyOpts) -> anyhow::Result<ToyIds> {
        Ok(ToyIds {
            state: Arc::new(Mutex::new((0, Vec::new()))),
            duplicate_every: opts.duplicate_every,
        })
    }
}

impl Db for ToyIds {
    fn name(&self) -> &str {
        "toy-ids"
    }
    fn setup(&self) -> anyhow::Result<()> {
        Ok(())
    }
    fn teardown(&self) -> anyhow::Result<()> {
        Ok(())
    }
    fn client(&self, _node: Option<usize>) -> BoxFuture<'_, anyhow::Result<Box<dyn Client>>> {
        let c = ToyClient {
            state: self.state.clone(),
            duplicate_every: self.duplicate_every,
        };
        Box::pin(async move { Ok(Box::new(c) as Box<dyn Client>) })
    }
}

struct ToyClient {
    state: Arc<Mutex<(u64, Vec<u64>)>>,
    duplicate_every: u64,
}

impl Client for ToyClient {
    fn invoke<'a>(&'a mut self, f: &'a str, value: &'a Value) -> BoxFuture<'a, Completion> {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let (next, log) = &mut *st;
        let c = match f {
            "generate" => {
                // The bug: every N-th id handed out is the previous one again.
                let handed = log.len() as u64 + 1;
                if !(self.duplicate_every > 0
                    && handed.is_multiple_of(self.duplicate_every)
                    && *next > 0)
                {
                    *next += 1;
                }
                log.push(*next);
                Completion::ok(json!(*next))
            }
            "read" => Completion::ok(json!(log)),
            other => Completion::fail(value.clone(), format!("toy-ids: no operation {other:?}")),
        };
        Box::pin(async move { c })
    }
}

// ---- the command line ----------------------------------------------------------------------

/// The built-ins plus this file's workload and target.
pub fn registry() -> Registry {
    Registry::builtin()
        .workload(WorkloadDef::of::<UniqueIds>())
        .db(DbDef::of::<ToyIds>())
}

#[allow(dead_code)] // a test includes this file for `registry()`
fn main() -> std::process::ExitCode {
    std::process::ExitCode::from(netsplit::cli::main_with(registry()))
}

//! `counter`: increments of one counter and reads; every read must lie between the increments
//! acknowledged before it began and those attempted before it ended (`checker::counter`), and a
//! final read on every worker.
//!
//! Vocabulary: `add d` (d ≥ 0); `read null` → n.

use super::{check_weights, Checked, Workload, WorkloadOptions};
use crate::checker::Budget;
use crate::generator::{self as g, BoxGen};
use crate::history::Op;
use crate::plan::RunPlan;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// The counter workload's options.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Counter {
    /// Relative weight of reads; with `write`, not both zero.
    pub read: f64,
    /// Relative weight of increments.
    pub write: f64,
}

impl Default for Counter {
    fn default() -> Self {
        Counter {
            read: 1.0,
            write: 4.0,
        }
    }
}

impl WorkloadOptions for Counter {
    const NAME: &'static str = "counter";
    const ABOUT: &'static str = "increments and reads of one counter: reads within bounds";

    fn validate(&self, _run: &RunPlan) -> Result<(), String> {
        check_weights(self.read, self.write)
    }
}

impl Workload for Counter {
    fn generator(&self) -> BoxGen {
        g::mix_weighted(vec![
            (self.write, g::repeat("add", json!(1))),
            (self.read, g::repeat("read", Value::Null)),
        ])
    }

    fn final_generator(&self) -> Option<BoxGen> {
        Some(g::each_thread_once("read", Value::Null))
    }

    fn check(&self, ops: &[Op], _budget: &Budget) -> Vec<Checked> {
        vec![Checked::of("counter", crate::checker::counter::check(ops))]
    }
}

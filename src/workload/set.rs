//! `set`: unique adds to one set, reads of the whole set during the run, and a final read on
//! every worker (hence every node). Checked by `checker::set`: lost, unexpected, recovered and
//! stale elements; with `linearizable: true` stale reads are invalid too.
//!
//! Vocabulary: `add e` (unique integers); `read null` → `[e…]`.

use super::{check_weights, Checked, Workload, WorkloadOptions};
use crate::checker::set::{self as checker, SetOptions};
use crate::checker::Budget;
use crate::generator::{self as g, BoxGen};
use crate::history::Op;
use crate::plan::RunPlan;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// The set workload's options.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Set {
    /// Relative weight of reads (of the whole set); with `write`, not both zero.
    pub read: f64,
    /// Relative weight of adds.
    pub write: f64,
    /// Count stale reads (an element missing after it was known) as invalid.
    pub linearizable: bool,
}

impl Default for Set {
    fn default() -> Self {
        Set {
            read: 1.0,
            write: 4.0,
            linearizable: false,
        }
    }
}

impl WorkloadOptions for Set {
    const NAME: &'static str = "set";
    const ABOUT: &'static str = "unique adds to one set and reads of it: lost and stale elements";

    fn validate(&self, _run: &RunPlan) -> Result<(), String> {
        check_weights(self.read, self.write)
    }
}

impl Workload for Set {
    fn generator(&self) -> BoxGen {
        let mut next = 0u64;
        g::mix_weighted(vec![
            (
                self.write,
                Box::new(g::from_fn(move |_| {
                    let e = next;
                    next += 1;
                    Some(("add".into(), json!(e)))
                })),
            ),
            (self.read, g::repeat("read", Value::Null)),
        ])
    }

    fn final_generator(&self) -> Option<BoxGen> {
        Some(g::each_thread_once("read", Value::Null))
    }

    fn check(&self, ops: &[Op], _budget: &Budget) -> Vec<Checked> {
        let opts = SetOptions {
            linearizable: self.linearizable,
        };
        vec![Checked::of("set", checker::check(ops, &opts))]
    }
}

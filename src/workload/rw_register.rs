//! `rw-register` (Elle): transactions of reads and blind writes over a few keys, checked for
//! the consistency models listed (`checker::txn`). Options as for `list-append`.
//!
//! Vocabulary: `txn [["w", k, v] | ["r", k, null], …]` → the same list with reads filled in
//! (`["r", k, v]`, `null` for a key never written). Values are unique per key, so each read
//! names the write it saw.

use super::list_append::{txn_generator, TxnWorkloadOptions};
use super::{Checked, Workload, WorkloadOptions};
use crate::checker::txn::TxnWorkload;
use crate::checker::Budget;
use crate::generator::BoxGen;
use crate::history::Op;
use crate::plan::RunPlan;
use serde::{Deserialize, Serialize};

/// The rw-register workload.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RwRegister(pub TxnWorkloadOptions);

impl WorkloadOptions for RwRegister {
    const NAME: &'static str = "rw-register";
    const ABOUT: &'static str =
        "Elle's read/write-register transactions, checked for the consistency models listed";

    fn validate(&self, _run: &RunPlan) -> Result<(), String> {
        self.0.validate()
    }
}

impl Workload for RwRegister {
    fn generator(&self) -> BoxGen {
        txn_generator(&self.0, "w")
    }

    fn check(&self, ops: &[Op], budget: &Budget) -> Vec<Checked> {
        self.0.check(TxnWorkload::RwRegister, ops, budget)
    }
}

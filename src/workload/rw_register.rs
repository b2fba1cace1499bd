//! `rw-register` (Elle): transactions of reads and blind writes over a few keys, checked for
//! the consistency models listed (`checker::txn`). Options as for `list-append`.
//!
//! Vocabulary: `txn [["w", k, v] | ["r", k, null], …]` → the same list with reads filled in
//! (`["r", k, v]`, `null` for a key never written). Values are unique per key, so each read
//! names the write it saw.

use super::list_append::{txn_workload, TxnWorkloadOptions};
use crate::checker::txn::TxnWorkload;
use serde::{Deserialize, Serialize};

/// The rw-register workload.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RwRegister(pub TxnWorkloadOptions);

txn_workload!(
    RwRegister,
    "rw-register",
    "Elle's read/write-register transactions, checked for the consistency models listed",
    "w",
    TxnWorkload::RwRegister
);

//! Transactional consistency checking, Elle-style (to be written by the transactional work).
//! The public API below is the contract the CLI and the runner rely on.

use crate::checker::{Budget, CheckError, Validity};
use crate::history::Op;
use serde::Serialize;

/// Which transactional workload a history comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxnWorkload {
    ListAppend,
    RwRegister,
}

#[derive(Debug, Clone)]
pub struct TxnOptions {
    pub workload: TxnWorkload,
    /// Requested consistency models (`strict-serializable` by default).
    pub consistency_models: Vec<String>,
    pub budget: Budget,
}

#[derive(Debug, Clone, Serialize)]
pub struct TxnResult {
    pub valid: Validity,
    pub anomaly_types: Vec<String>,
    pub not: Vec<String>,
}

/// Checks a history of `txn` operations.
pub fn check(_ops: &[Op], _opts: &TxnOptions) -> Result<TxnResult, CheckError> {
    Err(CheckError::new(0, "transactional checker not built yet"))
}

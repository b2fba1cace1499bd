//! `rw-register` (Elle): transactions of reads and blind writes over a few keys, checked for
//! the consistency models listed (`checker::txn`). Options as for `list-append`.
//!
//! Vocabulary: `txn [["w", k, v] | ["r", k, null], …]` → the same list with reads filled in
//! (`["r", k, v]`, `null` for a key never written). Values are unique per key, so each read
//! names the write it saw.

use super::list_append::{Txn, TxnKind};
use crate::checker::txn::TxnWorkload;

/// The rw-register workload.
pub type RwRegister = Txn<RwRegisterKind>;

/// The kind of [`RwRegister`].
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct RwRegisterKind;

impl TxnKind for RwRegisterKind {
    const WORKLOAD: TxnWorkload = TxnWorkload::RwRegister;
}

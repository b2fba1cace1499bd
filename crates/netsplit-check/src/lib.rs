//! netsplit-check: the pure core of netsplit — histories and the checkers that judge them.
//!
//! This crate owns:
//! - [`history`]: the event type ([`history::Op`]), its JSON Lines form, the pairing of
//!   invocations with completions, and the importers of Jepsen EDN histories and Porcupine logs;
//! - [`checker`]: the three-valued verdict ([`checker::Validity`]), the budget that turns "ran
//!   out of time or memory" into `unknown` (never `true`), and the checkers — linearizability
//!   over sequential models (`checker::linear`), Elle-style transactional anomalies
//!   (`checker::txn`), and the invariant checkers (`set`, `counter`, `bank`, `queue`,
//!   `unique_ids`, plus `stats` and `availability`);
//! - [`rng`]: the one seeded PRNG netsplit uses, so a seed replays everywhere;
//! - what every netsplit crate shares: [`error`], the error classes behind the exit codes
//!   (254 bad input, 255 harness error), and [`opts`], typed options read from a plan's
//!   free-form maps with errors naming file, line and key.
//!
//! It does no I/O beyond the readers and writers it is handed, uses no async runtime and no
//! networking, and knows nothing of the harness (`netsplit` depends on it, never the reverse).
//! That makes it usable on its own, from another project's tests, the way Porcupine is used from
//! Go tests:
//!
//! ```
//! use netsplit_check::checker::linear::{self, LinOptions, ModelKind};
//! use netsplit_check::checker::txn::{self, TxnOptions};
//! use netsplit_check::checker::Validity;
//! use netsplit_check::history::History;
//! use serde_json::json;
//!
//! // Two clients on a register: process 0 writes 1, then process 1 reads 0 — after the write
//! // completed. No order of these operations explains that read.
//! let h = History::new()
//!     .invoke(0, "write", json!(1))
//!     .ok(0, "write", json!(1))
//!     .invoke(1, "read", json!(null))
//!     .ok(1, "read", json!(0))
//!     .into_ops();
//! let mut opts = LinOptions::new(ModelKind::Register);
//! opts.initial = json!(0);
//! let r = linear::check(&h, &opts).unwrap();
//! assert_eq!(r.valid, Validity::False);
//! assert_eq!(r.failures[0].stuck.as_ref().unwrap().f, "read");
//!
//! // The same read issued while the write is still in flight is fine.
//! let h = History::new()
//!     .invoke(0, "write", json!(1))
//!     .invoke(1, "read", json!(null))
//!     .ok(1, "read", json!(0))
//!     .ok(0, "write", json!(1))
//!     .into_ops();
//! assert_eq!(linear::check(&h, &opts).unwrap().valid, Validity::True);
//!
//! // Transactions (Elle's list-append): T1 appends 1 to x and reads y empty, T2 appends 1 to
//! // y and reads x empty — each missed the other's write: write skew (G2-item), which
//! // serializability forbids and snapshot isolation allows.
//! let h = History::new()
//!     .invoke(0, "txn", json!([["append", "x", 1], ["r", "y", null]]))
//!     .invoke(1, "txn", json!([["append", "y", 1], ["r", "x", null]]))
//!     .ok(0, "txn", json!([["append", "x", 1], ["r", "y", []]]))
//!     .ok(1, "txn", json!([["append", "y", 1], ["r", "x", []]]))
//!     .into_ops();
//! let opts = TxnOptions {
//!     consistency_models: vec!["serializable".into()],
//!     ..TxnOptions::default()
//! };
//! let r = txn::check(&h, &opts).unwrap();
//! assert_eq!(r.valid, Validity::False);
//! assert_eq!(r.anomaly_types, vec!["G2-item"]);
//! assert!(r.not.contains(&"serializable".to_string()));
//! assert!(!r.not.contains(&"snapshot-isolation".to_string()));
//! ```

#![warn(missing_docs)]

pub mod checker;
pub mod error;
pub mod history;
pub mod named;
pub mod opts;
pub mod rng;

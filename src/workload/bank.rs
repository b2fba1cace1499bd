//! `bank`: transfers between accounts and reads of every balance; the total must be conserved
//! and no balance may go below zero unless `allow_negative` (`checker::bank`). A final read on
//! every worker.
//!
//! Vocabulary: `transfer {"from": i, "to": j, "amount": a}` (`fail` if it would overdraw and
//! negatives are not allowed); `read null` → `{"0": b0, "1": b1, …}`. Targets create the
//! accounts at setup from [`BankParams`]: every account starts at `total / accounts`, the
//! remainder on account 0 ([`initial_balances`]).

use super::{check_range, check_weights, Checked, Workload, WorkloadOptions};
use crate::checker::bank::{self as checker, BankOptions};
use crate::checker::Budget;
use crate::generator::{self as g, BoxGen, Ctx};
use crate::history::Op;
use crate::plan::RunPlan;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// The bank workload's options.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Bank {
    /// Number of accounts.
    pub accounts: u64,
    /// Their total balance.
    pub total: i64,
    /// Largest single transfer.
    pub max_transfer: i64,
    /// Whether a balance may go below zero.
    pub allow_negative: bool,
    /// Relative weight of reads (of every balance); with `write`, not both zero.
    pub read: f64,
    /// Relative weight of transfers.
    pub write: f64,
}

impl Default for Bank {
    fn default() -> Self {
        Bank {
            accounts: 5,
            total: 100,
            max_transfer: 5,
            allow_negative: false,
            read: 1.0,
            write: 1.0,
        }
    }
}

pub use netsplit_db::vocab::{initial_balances, BankParams};

impl WorkloadOptions for Bank {
    const NAME: &'static str = "bank";
    const ABOUT: &'static str = "transfers between accounts and reads: the total is conserved";

    fn validate(&self, _run: &RunPlan) -> Result<(), String> {
        // Every read returns every balance: keep it a size a read can carry.
        check_range("accounts", self.accounts, 2, 10_000)?;
        check_range("max_transfer", self.max_transfer, 1, i64::MAX / 4)?;
        check_range("total", self.total, 0, i64::MAX / 4)?;
        check_weights(self.read, self.write)
    }
}

impl Workload for Bank {
    fn generator(&self) -> BoxGen {
        let (n, max) = (self.accounts, self.max_transfer);
        g::mix_weighted(vec![
            (
                self.write,
                Box::new(g::from_fn(move |ctx: &mut Ctx| {
                    let from = ctx.rng.below(n);
                    let mut to = ctx.rng.below(n - 1);
                    if to >= from {
                        to += 1;
                    }
                    let amount = ctx.rng.range_inclusive(1, max);
                    Some((
                        "transfer".into(),
                        json!({"from": from, "to": to, "amount": amount}),
                    ))
                })),
            ),
            (self.read, g::repeat("read", Value::Null)),
        ])
    }

    fn final_generator(&self) -> Option<BoxGen> {
        Some(g::each_thread_once("read", Value::Null))
    }

    fn client_params(&self) -> Value {
        json!(BankParams {
            accounts: self.accounts,
            total: self.total,
            allow_negative: self.allow_negative,
        })
    }

    fn check(&self, ops: &[Op], _budget: &Budget) -> Vec<Checked> {
        let opts = BankOptions {
            accounts: self.accounts,
            total: self.total,
            allow_negative: self.allow_negative,
        };
        vec![Checked::of("bank", checker::check(ops, &opts))]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opening_balances_sum_to_the_total() {
        let b = initial_balances(3, 100);
        assert_eq!(b, vec![(0, 34), (1, 33), (2, 33)]);
        assert_eq!(b.iter().map(|(_, x)| x).sum::<i64>(), 100);
        assert!(initial_balances(0, 5).is_empty());
    }
}

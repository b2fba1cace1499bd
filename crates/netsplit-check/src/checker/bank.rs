//! The `bank` checker: transfers between accounts must conserve money.
//!
//! Every successful `read` returns all balances (`{"0": 20, "1": 17, …}`); each must sum to
//! the plan's total, name exactly the expected accounts, and (unless the plan allows it) hold
//! no negative balance. Transfers themselves are not judged: their effects show in reads.

use crate::checker::{CheckError, Validity};
use crate::history::{pair_positions, Op, OpType};
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// What the checker needs from the plan.
#[derive(Debug, Clone)]
pub struct BankOptions {
    /// Number of accounts; reads must name exactly accounts `0..accounts`.
    pub accounts: u64,
    /// The sum every read's balances must have.
    pub total: i64,
    /// Whether a negative balance is allowed.
    pub allow_negative: bool,
}

/// A read that broke an invariant.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct BadRead {
    /// Index of the read's completion event.
    pub index: u64,
    /// `wrong-total`, `negative-value` or `wrong-accounts`.
    pub kind: String,
    /// The balances the read returned, as JSON.
    pub balances: Value,
    /// Their sum.
    pub total: i64,
}

/// The bank checker's result.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct BankResult {
    /// False if any read broke an invariant, else true.
    pub valid: Validity,
    /// Successful reads checked.
    pub reads: u64,
    /// Count of bad reads by kind.
    pub error_counts: BTreeMap<String, u64>,
    /// The first bad reads (at most 32).
    pub errors: Vec<BadRead>,
}

/// Checks `read` operations of a bank history.
pub fn check(ops: &[Op], opts: &BankOptions) -> Result<BankResult, CheckError> {
    let pairs = pair_positions(ops).map_err(|e| CheckError::new(e.event, e.msg))?;
    let mut reads = 0;
    let mut error_counts: BTreeMap<String, u64> = BTreeMap::new();
    let mut errors = Vec::new();
    for c in pairs
        .iter()
        .filter(|c| ops[c.invoke].f == "read" && c.outcome == OpType::Ok)
    {
        let at = c.complete.unwrap_or(c.invoke);
        let output = &ops[at].value;
        let Some(m) = output.as_object() else {
            return Err(CheckError::new(
                at,
                format!("bank: a read must return an object of balances, got {output}"),
            ));
        };
        reads += 1;
        let mut total: i64 = 0;
        let mut kinds: Vec<&str> = Vec::new();
        let mut negative = false;
        for (acct, bal) in m {
            let Some(b) = bal.as_i64() else {
                return Err(CheckError::new(
                    at,
                    format!("bank: balance of account {acct} is not an integer: {bal}"),
                ));
            };
            total += b;
            negative |= b < 0;
        }
        let expected_accounts = m.len() as u64 == opts.accounts
            && (0..opts.accounts).all(|a| m.contains_key(&a.to_string()));
        if !expected_accounts {
            kinds.push("wrong-accounts");
        }
        if total != opts.total {
            kinds.push("wrong-total");
        }
        if negative && !opts.allow_negative {
            kinds.push("negative-value");
        }
        for k in kinds {
            *error_counts.entry(k.to_string()).or_default() += 1;
            if errors.len() < 32 {
                errors.push(BadRead {
                    index: ops[at].index,
                    kind: k.to_string(),
                    balances: output.clone(),
                    total,
                });
            }
        }
    }
    let valid = Validity::judged(!error_counts.is_empty(), reads == 0);
    Ok(BankResult {
        valid,
        reads,
        error_counts,
        errors,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::Process;
    use serde_json::json;

    fn read(p: u64, balances: Value) -> Vec<Op> {
        vec![
            Op::new(Process::Client(p), OpType::Invoke, "read", json!(null)),
            Op::new(Process::Client(p), OpType::Ok, "read", balances),
        ]
    }

    fn opts() -> BankOptions {
        BankOptions {
            accounts: 3,
            total: 30,
            allow_negative: false,
        }
    }

    #[test]
    fn conserved_totals_are_valid() {
        let mut ops = read(0, json!({"0": 10, "1": 10, "2": 10}));
        ops.extend(read(1, json!({"0": 0, "1": 25, "2": 5})));
        let r = check(&ops, &opts()).unwrap();
        assert_eq!(r.valid, Validity::True, "{r:?}");
        assert_eq!(r.reads, 2);
    }

    #[test]
    fn detects_money_created_or_lost() {
        let ops = read(0, json!({"0": 10, "1": 10, "2": 11}));
        let r = check(&ops, &opts()).unwrap();
        assert_eq!(r.valid, Validity::False);
        assert_eq!(r.error_counts["wrong-total"], 1);
    }

    #[test]
    fn detects_negative_balance_unless_allowed() {
        let ops = read(0, json!({"0": -5, "1": 25, "2": 10}));
        assert_eq!(check(&ops, &opts()).unwrap().valid, Validity::False);
        let allow = BankOptions {
            allow_negative: true,
            ..opts()
        };
        assert_eq!(check(&ops, &allow).unwrap().valid, Validity::True);
    }

    #[test]
    fn detects_missing_account() {
        let ops = read(0, json!({"0": 15, "1": 15}));
        let r = check(&ops, &opts()).unwrap();
        assert_eq!(r.error_counts["wrong-accounts"], 1);
    }

    #[test]
    fn failed_reads_are_ignored_and_no_reads_is_unknown() {
        let ops = vec![
            Op::new(Process::Client(0), OpType::Invoke, "read", json!(null)),
            Op::new(Process::Client(0), OpType::Fail, "read", json!(null)),
        ];
        assert_eq!(check(&ops, &opts()).unwrap().valid, Validity::Unknown);
    }
}

//! The `counter` checker: a counter that only grows by acknowledged increments.
//!
//! Every successful read must lie in `[lower, upper]`, where `lower` is the sum of increments
//! acknowledged (`ok`) before the read was invoked and `upper` is the sum of increments invoked
//! before the read completed, minus those that had definitely failed by then (increments that
//! ended `info` count towards `upper` forever: they may have happened). Increments must be
//! non-negative. The final read (after healing) is an ordinary read here.

use crate::checker::{CheckError, Validity};
use crate::history::{Op, OpType, Process};
use serde::Serialize;
use serde_json::Value;
use std::collections::HashMap;

/// A read outside its bounds.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct BadRead {
    /// Index of the read's completion in the history.
    pub index: u64,
    /// The value the read returned.
    pub value: i64,
    /// The least value it could have returned: increments acknowledged before it was invoked.
    pub lower: i64,
    /// The greatest value it could have returned: increments invoked before it completed and not known to have failed.
    pub upper: i64,
}

/// The counter checker's result.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CounterResult {
    /// False if any read lay outside its bounds, else true.
    pub valid: Validity,
    /// Successful reads checked.
    pub reads: u64,
    /// Reads outside their bounds (at most 32 listed).
    pub errors: Vec<BadRead>,
    /// Number of reads outside their bounds (all of them, not only those listed).
    pub error_count: u64,
    /// The last successful read's value, and the bounds it had.
    pub final_read: Option<ReadBounds>,
}

/// A read and its bounds.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ReadBounds {
    /// The value the read returned.
    pub value: i64,
    /// Its lower bound (increments acknowledged before it was invoked).
    pub lower: i64,
    /// Its upper bound (increments that may have happened before it completed).
    pub upper: i64,
}

/// Checks `add` (value: a non-negative integer) and `read` (ok value: an integer) operations.
pub fn check(ops: &[Op]) -> Result<CounterResult, CheckError> {
    let mut acked: i64 = 0;
    let mut attempted: i64 = 0;
    // process -> (f, invocation value, lower bound for reads)
    let mut open: HashMap<u64, (bool, i64, i64)> = HashMap::new();
    let mut errors = Vec::new();
    let mut error_count = 0u64;
    let mut reads = 0u64;
    let mut final_read = None;
    for (i, op) in ops.iter().enumerate() {
        let Process::Client(p) = op.process else {
            continue;
        };
        let is_add = match op.f.as_str() {
            "add" => true,
            "read" => false,
            other => {
                return Err(CheckError::new(
                    i,
                    format!("counter: unexpected operation {other:?} (expected add or read)"),
                ))
            }
        };
        match op.kind {
            OpType::Invoke => {
                if is_add {
                    let d = int(&op.value, i, "add")?;
                    if d < 0 {
                        return Err(CheckError::new(i, "counter: negative increment"));
                    }
                    attempted += d;
                    open.insert(p, (true, d, 0));
                } else {
                    open.insert(p, (false, 0, acked));
                }
            }
            kind => {
                let Some((was_add, d, lower)) = open.remove(&p) else {
                    return Err(CheckError::new(
                        i,
                        format!("process {p} completes an operation it never invoked"),
                    ));
                };
                match (was_add, kind) {
                    (true, OpType::Ok) => acked += d,
                    (true, OpType::Fail) => attempted -= d,
                    (false, OpType::Ok) => {
                        let v = int(&op.value, i, "read")?;
                        reads += 1;
                        let upper = attempted;
                        if v < lower || v > upper {
                            error_count += 1;
                            if errors.len() < 32 {
                                errors.push(BadRead {
                                    index: op.index,
                                    value: v,
                                    lower,
                                    upper,
                                });
                            }
                        }
                        final_read = Some(ReadBounds {
                            value: v,
                            lower,
                            upper,
                        });
                    }
                    _ => {}
                }
            }
        }
    }
    let valid = Validity::judged(error_count > 0, reads == 0);
    Ok(CounterResult {
        valid,
        reads,
        errors,
        error_count,
        final_read,
    })
}

fn int(v: &Value, i: usize, what: &str) -> Result<i64, CheckError> {
    v.as_i64().ok_or_else(|| {
        CheckError::new(
            i,
            format!("counter: {what} value must be an integer, got {v}"),
        )
    })
}

#[cfg(test)]
mod tests;

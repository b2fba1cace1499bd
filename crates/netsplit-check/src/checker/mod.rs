//! Checkers: pure functions from a history to a verdict with its evidence.
//!
//! This module owns what every checker shares: the three-valued [`Validity`] and how verdicts
//! compose, the [`Verdict`] headline (validity, summary, unknown reason) several results share,
//! the [`Budget`] that turns "ran out of time or memory" into `unknown` (never `true`), and
//! [`CheckError`] for histories a checker cannot interpret. Families live in submodules:
//! `linear` (WGL linearizability search over sequential models), `txn` (Elle-style
//! transactional anomalies), the invariant checkers `set`, `counter`, `bank`, `queue` (Jepsen's
//! total-queue) and `unique_ids`, plus `stats`; [`independent`] runs any of them per key.
//! No I/O here: callers read files and print results.

pub mod availability;
pub mod bank;
pub mod counter;
pub mod independent;
pub mod linear;
pub mod models;
pub mod queue;
pub mod set;
pub mod stats;
pub mod txn;
pub mod unique_ids;

use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A verdict: `true`, `false`, or `"unknown"` (budget exhausted, or not decidable).
/// Serialised exactly so: JSON `true`, `false`, `"unknown"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Validity {
    /// Every check passed: the history is consistent with what was asked.
    True,
    /// A violation was found; the result carries the evidence.
    False,
    /// Neither could be established: the budget ran out, or the history cannot decide it.
    Unknown,
}

impl Validity {
    /// Composition of verdicts: false > unknown > true.
    pub fn merge(self, other: Validity) -> Validity {
        use Validity::*;
        match (self, other) {
            (False, _) | (_, False) => False,
            (Unknown, _) | (_, Unknown) => Unknown,
            _ => True,
        }
    }

    /// [`Validity::True`] for `true`, [`Validity::False`] for `false`.
    pub fn from_bool(b: bool) -> Validity {
        if b {
            Validity::True
        } else {
            Validity::False
        }
    }

    /// The usual verdict of a checker: [`Validity::False`] when it found a violation, else
    /// [`Validity::Unknown`] when it could not judge (nothing to judge by, say), else
    /// [`Validity::True`].
    pub fn judged(violated: bool, undecided: bool) -> Validity {
        if violated {
            Validity::False
        } else if undecided {
            Validity::Unknown
        } else {
            Validity::True
        }
    }

    /// The CLI exit code for this verdict: 0 valid, 1 invalid, 2 unknown.
    pub fn exit_code(self) -> u8 {
        match self {
            Validity::True => 0,
            Validity::False => 1,
            Validity::Unknown => 2,
        }
    }

    /// The verdict as the CLI prints it: `"true"`, `"false"` or `"unknown"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Validity::True => "true",
            Validity::False => "false",
            Validity::Unknown => "unknown",
        }
    }
}

impl std::iter::FromIterator<Validity> for Validity {
    fn from_iter<I: IntoIterator<Item = Validity>>(iter: I) -> Self {
        iter.into_iter().fold(Validity::True, Validity::merge)
    }
}

impl Serialize for Validity {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Validity::True => s.serialize_bool(true),
            Validity::False => s.serialize_bool(false),
            Validity::Unknown => s.serialize_str("unknown"),
        }
    }
}

impl<'de> Deserialize<'de> for Validity {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match serde_json::Value::deserialize(d)? {
            serde_json::Value::Bool(b) => Ok(Validity::from_bool(b)),
            serde_json::Value::String(s) if s == "unknown" => Ok(Validity::Unknown),
            v => Err(serde::de::Error::custom(format!("bad validity {v}"))),
        }
    }
}

/// The headline of a checker's result: the verdict, what was found in one line, and why the
/// verdict is unknown when it is. Results flatten it into their JSON as `valid`, `summary` and
/// `unknown_reason`, the fields [`independent`] reads from each key's result.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Verdict {
    /// The verdict (what makes it false or unknown is the checker's to say).
    pub valid: Validity,
    /// What was found, in one line.
    pub summary: String,
    /// Why the verdict is unknown, when it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unknown_reason: Option<String>,
}

/// Limits on a check. When one is hit the check stops and says `unknown`.
///
/// Cloning shares the cancellation flag, so parallel sub-checks (per key) stop together when the
/// caller cancels. The deadline is read from the monotonic clock; that is the only "clock" a
/// checker touches, and a budget without a deadline makes a check fully deterministic.
#[derive(Debug, Clone)]
pub struct Budget {
    deadline: Option<Instant>,
    /// Upper bound on the bytes a search may hold in its memo tables (approximate).
    pub max_memory: usize,
    cancelled: Arc<AtomicBool>,
}

impl Default for Budget {
    fn default() -> Self {
        Budget::unlimited()
    }
}

impl Budget {
    /// Default memory cap for searches: 4 GiB of memo state.
    pub const DEFAULT_MAX_MEMORY: usize = 4 << 30;

    /// A budget with no deadline and the default memory cap [`Budget::DEFAULT_MAX_MEMORY`].
    pub fn unlimited() -> Budget {
        Budget {
            deadline: None,
            max_memory: Self::DEFAULT_MAX_MEMORY,
            cancelled: Arc::new(AtomicBool::new(false)),
        }
    }

    /// A budget ending `limit` from now. A limit too far away for the clock to represent
    /// (centuries) is no deadline at all.
    pub fn with_time_limit(limit: Option<Duration>) -> Budget {
        Budget {
            deadline: limit.and_then(|d| Instant::now().checked_add(d)),
            ..Budget::unlimited()
        }
    }

    /// The same budget with its memory cap set to `bytes` of search state.
    pub fn with_max_memory(mut self, bytes: usize) -> Budget {
        self.max_memory = bytes;
        self
    }

    /// True once the deadline has passed or someone called [`Budget::cancel`].
    pub fn exhausted(&self) -> bool {
        if self.cancelled.load(Ordering::Relaxed) {
            return true;
        }
        match self.deadline {
            Some(d) if Instant::now() >= d => {
                self.cancelled.store(true, Ordering::Relaxed);
                true
            }
            _ => false,
        }
    }

    /// A budget for a bounded attempt inside this one: it ends `limit` from now or at this
    /// budget's deadline, whichever is first, with the same memory cap. It has its own
    /// cancellation flag, so running out of it does not exhaust this budget; it starts
    /// exhausted if this one already is.
    pub fn slice(&self, limit: Duration) -> Budget {
        let end = Instant::now().checked_add(limit);
        let deadline = match (self.deadline, end) {
            (Some(d), Some(e)) => Some(d.min(e)),
            (d, e) => d.or(e),
        };
        Budget {
            deadline,
            max_memory: self.max_memory,
            cancelled: Arc::new(AtomicBool::new(self.exhausted())),
        }
    }

    /// The time left before the deadline (None: no deadline).
    pub fn remaining(&self) -> Option<Duration> {
        self.deadline
            .map(|d| d.saturating_duration_since(Instant::now()))
    }

    /// Makes this budget, and every clone of it, exhausted from now on.
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::Relaxed);
    }
}

/// A history a checker cannot interpret (wrong value shapes for the model or workload).
/// `event` is the 0-based position of the offending event in the history handed in.
#[derive(Debug, Clone, thiserror::Error)]
#[error("event {event}: {msg}")]
pub struct CheckError {
    /// 0-based position of the offending event in the history handed to the checker.
    pub event: usize,
    /// What the checker could not interpret.
    pub msg: String,
}

impl CheckError {
    /// A check error at event position `event`.
    pub fn new(event: usize, msg: impl Into<String>) -> CheckError {
        CheckError {
            event,
            msg: msg.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn false_beats_unknown_beats_true() {
        use Validity::*;
        assert_eq!(True.merge(Unknown), Unknown);
        assert_eq!(Unknown.merge(False), False);
        assert_eq!([True, True].into_iter().collect::<Validity>(), True);
        assert_eq!(serde_json::to_string(&Unknown).unwrap(), "\"unknown\"");
        assert_eq!(serde_json::to_string(&False).unwrap(), "false");
    }

    #[test]
    fn a_spent_slice_leaves_its_budget_alone() {
        let b = Budget::with_time_limit(Some(Duration::from_secs(3600)));
        let s = b.slice(Duration::ZERO);
        assert!(s.exhausted());
        assert!(!b.exhausted(), "the slice's end is not the budget's");
        assert!(
            b.slice(Duration::from_secs(7200)).remaining().unwrap() <= Duration::from_secs(3600)
        );
        b.cancel();
        assert!(
            b.slice(Duration::from_secs(1)).exhausted(),
            "a spent budget gives spent slices"
        );
        assert!(Budget::unlimited()
            .slice(Duration::from_secs(5))
            .remaining()
            .is_some());
    }

    #[test]
    fn zero_time_limit_is_exhausted() {
        assert!(Budget::with_time_limit(Some(Duration::ZERO)).exhausted());
        assert!(!Budget::unlimited().exhausted());
    }

    #[test]
    fn a_time_limit_past_the_clock_is_no_deadline_not_a_panic() {
        let b = Budget::with_time_limit(Some(Duration::MAX));
        assert!(!b.exhausted());
    }
}

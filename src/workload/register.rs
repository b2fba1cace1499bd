//! `register`: reads, writes and compare-and-sets on independent keys, checked for
//! linearizability key by key (a cas-register per key; `checker::linear`).
//!
//! Vocabulary: `read [k, null]` → `[k, v]`; `write [k, v]`; `cas [k, [old, new]]` (`fail` if the
//! value differs). Each key is worked by `threads_per_key` workers for `ops_per_key` operations,
//! then retired; `keys: 0` is an endless supply of fresh keys.
//!
//! Values written are unique per key (1, 2, 3, …), so every read names the write it observed
//! and the checker's search stays small even when many writes end `info`; a compare-and-set
//! expects one of the values written to that key so far. `value_range: N` instead draws every
//! value from `0..N` (a small range makes ambiguous histories on purpose).

use super::{check_range, Checked, Workload, WorkloadOptions};
use crate::checker::linear::{self, LinOptions, ModelKind};
use crate::checker::Budget;
use crate::generator::{self as g, BoxGen, Ctx};
use crate::history::Op;
use crate::plan::RunPlan;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// The register workload's options.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Register {
    /// Number of keys; `0`: an endless supply.
    pub keys: u64,
    /// Operations per key before moving to a fresh key.
    pub ops_per_key: u64,
    /// Workers sharing one key (at most `run.concurrency`). Not given: 2, or one when
    /// `run.concurrency` is 1 (a default must fit every setting the user may choose).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threads_per_key: Option<usize>,
    /// Relative weights of reads, writes and compare-and-sets.
    pub read: f64,
    pub write: f64,
    pub cas: f64,
    /// Draw values from `0..value_range` instead of writing unique values.
    pub value_range: Option<u64>,
}

impl Default for Register {
    fn default() -> Self {
        Register {
            keys: 0,
            ops_per_key: 200,
            threads_per_key: None,
            read: 1.0,
            write: 1.0,
            cas: 1.0,
            value_range: None,
        }
    }
}

impl WorkloadOptions for Register {
    const NAME: &'static str = "register";
    const ABOUT: &'static str =
        "read/write/compare-and-set registers on independent keys, checked for linearizability";

    fn validate(&self, run: &RunPlan) -> Result<(), String> {
        if let Some(t) = self.threads_per_key {
            check_range("threads_per_key", t, 1, run.concurrency.max(1))?;
        }
        check_range("ops_per_key", self.ops_per_key, 1, 1 << 40)?;
        check_range("keys", self.keys, 0, 1 << 40)?;
        if let Some(r) = self.value_range {
            check_range("value_range", r, 1, 1 << 53)?;
        }
        for (k, v) in [
            ("read", self.read),
            ("write", self.write),
            ("cas", self.cas),
        ] {
            if !v.is_finite() || v < 0.0 {
                return Err(format!(
                    "{k}: must be a finite, non-negative number, got {v}"
                ));
            }
        }
        if self.read + self.write + self.cas <= 0.0 {
            return Err("read: read + write + cas must be positive".into());
        }
        Ok(())
    }
}

impl Workload for Register {
    fn generator(&self) -> BoxGen {
        let keys: Box<dyn Iterator<Item = Value> + Send> = if self.keys == 0 {
            Box::new((0u64..).map(|k| json!(k)))
        } else {
            Box::new((0..self.keys).map(|k| json!(k)))
        };
        let (r, w, c, range) = (self.read, self.write, self.cas, self.value_range);
        g::independent_concurrent(
            self.threads_per_key.unwrap_or(2),
            keys,
            self.ops_per_key,
            move |_k| {
                // Per key: the last unique value written (values are 1, 2, 3, …).
                let mut last = 0u64;
                Box::new(g::from_fn(move |ctx: &mut Ctx| {
                    let x = ctx.rng.unit() * (r + w + c);
                    if x < r {
                        return Some(("read".into(), Value::Null));
                    }
                    let is_write = x < r + w;
                    Some(match range {
                        Some(n) if is_write => ("write".into(), json!(ctx.rng.below(n))),
                        Some(n) => {
                            let (old, new) = (ctx.rng.below(n), ctx.rng.below(n));
                            ("cas".into(), json!([old, new]))
                        }
                        // Nothing written yet: a cas could only expect the initial nil.
                        None if is_write || last == 0 => {
                            last += 1;
                            ("write".into(), json!(last))
                        }
                        None => {
                            let old = 1 + ctx.rng.below(last);
                            last += 1;
                            ("cas".into(), json!([old, last]))
                        }
                    })
                }))
            },
        )
    }

    fn check(&self, ops: &[Op], budget: &Budget) -> Vec<Checked> {
        let opts = LinOptions {
            model: ModelKind::CasRegister,
            initial: Value::Null,
            independent: true,
            partition: true,
            budget: budget.clone(),
        };
        vec![Checked::of("linear", linear::check(ops, &opts))]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generator::sim::simulate;

    fn gen(opts: Register, n: u64) -> Vec<crate::generator::Invocation> {
        simulate(g::limit(n, opts.generator()), 4, 3, 1000, u64::MAX)
    }

    #[test]
    fn writes_are_unique_per_key_and_cas_expects_a_written_value() {
        let ops = gen(Register::default(), 2000);
        let mut written: std::collections::BTreeMap<String, Vec<u64>> = Default::default();
        for o in &ops {
            let k = o.value[0].to_string();
            let seen = written.entry(k).or_default();
            match o.f.as_str() {
                "write" => {
                    let v = o.value[1].as_u64().unwrap();
                    assert!(!seen.contains(&v), "{o:?}");
                    seen.push(v);
                }
                "cas" => {
                    let (old, new) = (
                        o.value[1][0].as_u64().unwrap(),
                        o.value[1][1].as_u64().unwrap(),
                    );
                    assert!(seen.contains(&old), "cas expects an unwritten value: {o:?}");
                    assert!(!seen.contains(&new), "{o:?}");
                    seen.push(new);
                }
                _ => {}
            }
        }
        assert!(written.len() > 1);
    }

    #[test]
    fn a_value_range_draws_small_values() {
        let ops = gen(
            Register {
                value_range: Some(3),
                ..Register::default()
            },
            500,
        );
        assert!(ops
            .iter()
            .filter(|o| o.f == "write")
            .all(|o| o.value[1].as_u64().unwrap() < 3));
    }

    #[test]
    fn threads_per_key_above_concurrency_is_refused() {
        let run = RunPlan {
            concurrency: 1,
            ..RunPlan::default()
        };
        let two = Register {
            threads_per_key: Some(2),
            ..Register::default()
        };
        let e = two.validate(&run).unwrap_err();
        assert!(e.starts_with("threads_per_key"), "{e}");
        // the default fits one worker
        Register::default().validate(&run).unwrap();
    }
}

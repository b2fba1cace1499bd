//! `register`: reads, writes and compare-and-sets on independent keys, checked for
//! linearizability key by key (a cas-register per key; `checker::linear`), and with
//! `checker: {models: [...]}` for the weaker consistency models too (sequential, causal, the
//! session guarantees; `checker::models`, all keys together; docs/consistency-models.md).
//!
//! Vocabulary: `read [k, null]` → `[k, v]`; `write [k, v]`; `cas [k, [old, new]]` (`fail` if the
//! value differs). Each key is worked by `threads_per_key` workers for `ops_per_key` operations,
//! then retired; `keys: 0` is an endless supply of fresh keys.
//!
//! Values written are unique per key (1, 2, 3, …), so every read names the write it observed
//! and the checker's search stays small even when many writes end `info`. A compare-and-set
//! expects, 3 times in 4, the value its worker last read or wrote for that key (so that, with no
//! fault, many succeed and a lost update shows), otherwise any value written to the key so far. `value_range: N` instead draws every
//! value from `0..N` (a small range makes ambiguous histories on purpose).

use super::{check_range, Checked, Workload, WorkloadOptions};
use crate::checker::linear::{self, LinOptions, ModelKind};
use crate::checker::models;
use crate::checker::Budget;
use crate::generator::{self as g, BoxGen, Ctx};
use crate::history::Op;
use crate::plan::RunPlan;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;

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
    /// Relative weight of reads.
    pub read: f64,
    /// Relative weight of writes.
    pub write: f64,
    /// Relative weight of compare-and-sets.
    pub cas: f64,
    /// Draw values from `0..value_range` instead of writing unique values.
    pub value_range: Option<u64>,
    /// `checker: {models: [...]}`: the consistency models to check (default linearizable).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checker: Option<RegisterChecker>,
}

/// The register workload's `checker` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterChecker {
    /// Names from `checker::models::MODELS`, or `all` (docs/consistency-models.md).
    pub models: Vec<String>,
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
            checker: None,
        }
    }
}

impl Register {
    /// The models to check: `checker.models`, or linearizable alone.
    pub fn models(&self) -> Result<Vec<&'static str>, String> {
        match &self.checker {
            None => Ok(vec!["linearizable"]),
            Some(c) if c.models.is_empty() => {
                Err("checker.models: name at least one consistency model".into())
            }
            Some(c) => models::parse_models(&c.models).map_err(|e| format!("checker.models: {e}")),
        }
    }
}

/// The register checkers for `models` over a register history: `linear` (linearizability,
/// key by key) when `linearizable` is among them, and `models` (every requested model, all
/// keys together; `checker::models`) when any other is. `keyed`: values are `[key, value]`.
pub fn check_models(ops: &[Op], models: &[&str], keyed: bool, budget: &Budget) -> Vec<Checked> {
    let mut out = Vec::new();
    let lin = models.contains(&"linearizable").then(|| {
        let opts = LinOptions {
            model: ModelKind::CasRegister,
            initial: Value::Null,
            independent: keyed,
            partition: true,
            budget: budget.clone(),
        };
        linear::check(ops, &opts)
    });
    if models.iter().any(|m| *m != "linearizable") {
        let opts = models::ModelOptions {
            keyed,
            budget: budget.clone(),
        };
        let lin_ok = lin.as_ref().and_then(|r| r.as_ref().ok());
        out.push(Checked::of(
            "models",
            models::view::check_models(ops, models, &opts, lin_ok),
        ));
    }
    if let Some(r) = lin {
        out.insert(0, Checked::of("linear", r));
    }
    out
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
        self.models()?;
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
                Box::new(KeyOps {
                    weights: (r, w, c),
                    range,
                    last: 0,
                    known: BTreeMap::new(),
                    pending: BTreeMap::new(),
                })
            },
        )
    }

    fn check(&self, ops: &[Op], budget: &Budget) -> Vec<Checked> {
        match self.models() {
            Ok(models) => check_models(ops, &models, true, budget),
            // refused when the workload was built; a checker that cannot run proves nothing
            Err(e) => vec![Checked::of::<Value>(
                "models",
                Err(crate::checker::CheckError::new(0, e)),
            )],
        }
    }
}

/// One key's operations: reads, unique writes and compare-and-sets that mostly expect what
/// their worker last saw (fed back through [`Generator::update`](g::Generator::update)).
struct KeyOps {
    weights: (f64, f64, f64),
    range: Option<u64>,
    /// The last unique value handed out (values are 1, 2, 3, …).
    last: u64,
    /// Per worker: the value it last read or wrote on this key, when it knows one.
    known: BTreeMap<g::Thread, u64>,
    /// Per worker: the value its write or cas in flight would leave.
    pending: BTreeMap<g::Thread, u64>,
}

impl g::Generator for KeyOps {
    fn op(&mut self, ctx: &mut Ctx) -> g::GenOp {
        let Some(&thread) = ctx.free.first() else {
            return g::GenOp::Pending;
        };
        let (r, w, c) = self.weights;
        let x = ctx.rng.unit() * (r + w + c);
        let (f, value) = if x < r {
            ("read", Value::Null)
        } else {
            let is_write = x < r + w;
            match self.range {
                Some(n) if is_write => ("write", json!(ctx.rng.below(n))),
                Some(n) => ("cas", json!([ctx.rng.below(n), ctx.rng.below(n)])),
                // Nothing written yet: a cas could only expect the initial nil.
                None if is_write || self.last == 0 => {
                    self.last += 1;
                    self.pending.insert(thread, self.last);
                    ("write", json!(self.last))
                }
                None => {
                    // Both draws always, so the PRNG's sequence (and every later draw) does not
                    // depend on what the database answered: only the expected value does.
                    let (seen, any) = (ctx.rng.below(4) != 0, 1 + ctx.rng.below(self.last));
                    let old = match self.known.get(&thread) {
                        Some(&v) if seen => v,
                        _ => any,
                    };
                    self.last += 1;
                    self.pending.insert(thread, self.last);
                    ("cas", json!([old, self.last]))
                }
            }
        };
        g::GenOp::Op(g::Invocation {
            thread,
            time: ctx.time,
            f: f.into(),
            value,
        })
    }

    fn update(&mut self, _ctx: &Ctx, event: &g::Event) {
        let t = event.thread;
        let written = self.pending.remove(&t);
        if event.kind != crate::history::OpType::Ok {
            // Failed or unknown: what the worker knows is unchanged (a cas that failed saw a
            // different value, but not which).
            return;
        }
        match event.f.as_str() {
            "read" => match event.value.as_u64() {
                Some(v) => {
                    self.known.insert(t, v);
                }
                None => {
                    self.known.remove(&t);
                }
            },
            "write" | "cas" => {
                if let Some(v) = written {
                    self.known.insert(t, v);
                }
            }
            _ => {}
        }
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

    /// Two workers take turns on one register that applies each op at once: most of the
    /// compare-and-sets expect what their worker last saw, so many succeed (the point of a
    /// cas), and every value written stays unique.
    #[test]
    fn most_compare_and_sets_expect_what_their_worker_last_saw() {
        use crate::generator::{Ctx, Event, GenOp, Rng};
        use crate::history::OpType;
        let mut gen = Register::default().generator();
        let all = [0usize, 1];
        let mut rng = Rng::new(7);
        let mut reg: Option<u64> = None;
        let (mut cas, mut cas_ok) = (0, 0);
        let mut written = std::collections::BTreeSet::new();
        for i in 0..4000 {
            let free = [all[i % 2]];
            let mut ctx = Ctx {
                time: i as u64,
                free: &free,
                all: &all,
                rng: &mut rng,
            };
            let GenOp::Op(op) = gen.op(&mut ctx) else {
                panic!("the register workload never waits");
            };
            let v = op.value[1].clone();
            let (kind, out) = match op.f.as_str() {
                "read" => (OpType::Ok, json!(reg)),
                "write" => {
                    assert!(written.insert(v.as_u64().unwrap()), "unique values");
                    reg = v.as_u64();
                    (OpType::Ok, v)
                }
                "cas" => {
                    cas += 1;
                    assert!(written.insert(v[1].as_u64().unwrap()), "unique values");
                    if reg == v[0].as_u64() {
                        cas_ok += 1;
                        reg = v[1].as_u64();
                        (OpType::Ok, v)
                    } else {
                        (OpType::Fail, v)
                    }
                }
                f => panic!("unexpected {f}"),
            };
            let ev = Event {
                thread: op.thread,
                time: i as u64,
                kind,
                f: op.f.clone(),
                value: json!([op.value[0], out]),
            };
            let ctx = Ctx {
                time: i as u64,
                free: &free,
                all: &all,
                rng: &mut rng,
            };
            gen.update(&ctx, &ev);
            // After ops_per_key ops the generator moves to a fresh, empty key.
            if ((i + 1) as u64).is_multiple_of(Register::default().ops_per_key) {
                reg = None;
                written.clear();
            }
        }
        assert!(cas > 500, "{cas}");
        assert!(cas_ok * 100 / cas >= 30, "cas ok {cas_ok} of {cas}");
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

    /// `checker: {models}` chooses the checkers: linearizability alone by default, the
    /// `models` checker for the others (all keys together), a misspelt name refused naming
    /// the key.
    #[test]
    fn checker_models_choose_the_checkers() {
        use crate::history::{OpType, Process};
        use crate::workload::tests::build;
        let ops: Vec<Op> = [
            (OpType::Invoke, json!(["x", 1])),
            (OpType::Ok, json!(["x", 1])),
        ]
        .into_iter()
        .map(|(t, v)| Op::new(Process::Client(0), t, "write", v))
        .collect();
        let names = |w: &crate::workload::Instance| -> Vec<String> {
            w.workload
                .check(&ops, &Budget::unlimited())
                .into_iter()
                .map(|c| c.name)
                .collect()
        };
        assert_eq!(names(&build("register", json!({})).unwrap()), ["linear"]);
        let w = build("register", json!({"checker": {"models": ["causal"]}})).unwrap();
        assert_eq!(names(&w), ["models"]);
        let w = build("register", json!({"checker": {"models": ["all"]}})).unwrap();
        let c = w.workload.check(&ops, &Budget::unlimited());
        assert_eq!(c.len(), 2);
        assert_eq!(c[1].result["models"]["linearizable"]["valid"], json!(true));
        assert_eq!(c[1].result["strongest"], "linearizable");
        let e = build("register", json!({"checker": {"models": ["causl"]}}))
            .err()
            .unwrap();
        assert!(e.to_string().contains("workload.checker.models"), "{e}");
        assert!(e.to_string().contains("causl"), "{e}");
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

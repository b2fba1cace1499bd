//! Workloads: what the clients do, and how the history they leave is judged.
//!
//! A workload is one bundle, as in Jepsen: the operations its clients speak (its
//! *vocabulary*, the contract with targets — `docs/adding-a-target.md`), a generator of
//! operations for the main phase, an optional final generator (run after healing, typically a
//! read on every worker), and its checkers. It is registered by name in the
//! [`crate::registry::Registry`], and the built-ins are registered exactly the way a user's
//! workload is:
//!
//! - a struct holding the workload's options, `#[derive(Serialize, Deserialize, Default)]`
//!   with `#[serde(deny_unknown_fields, default)]`, filled from the plan's `workload:` section
//!   (unknown keys and bad values are errors naming the file, line and key);
//! - `impl Workload` (generators, checkers) and `impl WorkloadOptions` (name, vocabulary,
//!   validation against the run);
//! - one line: `registry.workload(WorkloadDef::of::<MyWorkload>())`.
//!
//! Built-ins: [`register`], [`set`], [`counter`], [`bank`], [`list_append`], [`rw_register`].
//! A plan can also define a workload without Rust: a `workload:` section with `ops` is built by
//! [`yaml`] whatever its name.
//! Every workload also gets the `stats` checker, and `availability` when faults ran
//! ([`check`]). Checking is a pure function of the workload's options and the history, which is
//! what lets `netsplit analyze` re-check a stored run.

pub mod bank;
pub mod counter;
pub mod list_append;
pub mod register;
pub mod rw_register;
pub mod set;
pub mod yaml;

use crate::checker::{self, Budget, CheckError, Validity};
use crate::error::bad_input;
use crate::generator::BoxGen;
use crate::history::Op;
use crate::opts::Origins;
use crate::plan::RunPlan;
use anyhow::Result;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// One checker's outcome, as stored under `checkers.<name>` in `results.json`.
#[derive(Debug, Clone)]
pub struct Checked {
    /// The checker's name (its key under `checkers`).
    pub name: String,
    /// The checker's verdict.
    pub valid: Validity,
    /// The checker's whole result; always has `"valid"`.
    pub result: Value,
}

impl Checked {
    /// A checker's result (anything serialisable with a `valid` field). A checker that could
    /// not interpret the history proves nothing: its error makes it unknown, never true.
    pub fn of<T: Serialize>(name: &str, r: std::result::Result<T, CheckError>) -> Checked {
        let (valid, result) = match r {
            Ok(v) => {
                let v = serde_json::to_value(v).unwrap_or_else(|e| json!({"error": e.to_string()}));
                let valid = v
                    .get("valid")
                    .and_then(|x| serde_json::from_value::<Validity>(x.clone()).ok())
                    .unwrap_or(Validity::Unknown);
                (valid, v)
            }
            Err(e) => (
                Validity::Unknown,
                json!({"valid": "unknown", "error": e.to_string()}),
            ),
        };
        Checked {
            name: name.to_string(),
            valid,
            result,
        }
    }
}

/// A workload, built from its options. See the module docs.
pub trait Workload: Send + Sync {
    /// Client operations of the main phase. The runner wraps it in the plan's rate and time
    /// limit, so it may be endless, or bounded by its own logic (keys, ops per key).
    fn generator(&self) -> BoxGen;
    /// Operations after healing and quiescence (typically one read per worker), if any.
    fn final_generator(&self) -> Option<BoxGen> {
        None
    }
    /// What a target's client needs beyond the operations themselves, as JSON (the bank's
    /// accounts and total). Targets read it for the vocabulary they speak.
    fn client_params(&self) -> Value {
        Value::Null
    }
    /// Runs the workload's checkers on a history (client and nemesis events).
    fn check(&self, ops: &[Op], budget: &Budget) -> Vec<Checked>;
}

/// A workload defined by its options struct: what [`WorkloadDef::of`] registers.
pub trait WorkloadOptions: Workload + Serialize + DeserializeOwned + Default + 'static {
    /// The name plans and `--workload` use.
    const NAME: &'static str;
    /// One line for `--help` and error messages.
    const ABOUT: &'static str;
    /// The vocabulary its clients speak; targets declare the vocabularies they speak.
    const VOCABULARY: &'static str = Self::NAME;
    /// Checks the options against each other and the run (`key: why`, key relative to the
    /// workload section).
    fn validate(&self, _run: &RunPlan) -> std::result::Result<(), String> {
        Ok(())
    }
}

/// What building a workload gets: its options as the plan gives them, the run section, and
/// where each option came from (for error messages).
pub struct WorkloadArgs<'a> {
    /// The plan's `workload:` options, as written.
    pub opts: &'a BTreeMap<String, Value>,
    /// The plan's `run:` section.
    pub run: &'a RunPlan,
    /// Where each option came from (file and line), for error messages.
    pub origins: &'a Origins,
}

type Build = dyn Fn(&WorkloadArgs) -> Result<Instance> + Send + Sync;

/// A registered workload: its name, vocabulary and constructor.
#[derive(Clone)]
pub struct WorkloadDef {
    /// The name plans and `--workload` use.
    pub name: String,
    /// One line for `--help`, `netsplit list` and error messages.
    pub about: String,
    /// The vocabulary its clients speak.
    pub vocabulary: String,
    build: Arc<Build>,
}

impl WorkloadDef {
    /// The definition of a workload given by its options struct.
    pub fn of<W: WorkloadOptions>() -> WorkloadDef {
        WorkloadDef {
            name: W::NAME.to_string(),
            about: W::ABOUT.to_string(),
            vocabulary: W::VOCABULARY.to_string(),
            build: Arc::new(|a: &WorkloadArgs| {
                let w: W = crate::opts::from_map(a.opts, "workload", a.origins)?;
                w.validate(a.run).map_err(|e| {
                    let key = e.split(':').next().unwrap_or("").trim();
                    let path = format!("workload.{key}");
                    match a.origins.get(&path) {
                        Some(o) if !key.is_empty() && !key.contains(' ') => {
                            bad_input(format!("{o}: workload.{e}"))
                        }
                        _ => bad_input(format!("workload.{e}")),
                    }
                })?;
                let options = match serde_json::to_value(&w)? {
                    Value::Object(m) => m,
                    _ => Map::new(),
                };
                Ok(Instance {
                    name: W::NAME.to_string(),
                    vocabulary: W::VOCABULARY.to_string(),
                    options,
                    workload: Arc::new(w),
                })
            }),
        }
    }

    /// A definition with its own constructor (workloads whose shape is data, such as those
    /// written in YAML).
    pub fn new(
        name: &str,
        about: &str,
        vocabulary: &str,
        build: impl Fn(&WorkloadArgs) -> Result<Instance> + Send + Sync + 'static,
    ) -> WorkloadDef {
        WorkloadDef {
            name: name.to_string(),
            about: about.to_string(),
            vocabulary: vocabulary.to_string(),
            build: Arc::new(build),
        }
    }

    /// Builds the workload from a plan's options; bad options are bad input naming the key.
    pub fn build(&self, args: &WorkloadArgs) -> Result<Instance> {
        (self.build)(args)
    }
}

/// A built workload: what the runner, the targets and the checkers use.
#[derive(Clone)]
pub struct Instance {
    /// The workload's name.
    pub name: String,
    /// The vocabulary its clients speak.
    pub vocabulary: String,
    /// Every option, defaults included (what `plan.yaml` records).
    pub options: Map<String, Value>,
    /// The workload itself: generators and checkers.
    pub workload: Arc<dyn Workload>,
}

impl std::fmt::Debug for Instance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Instance")
            .field("name", &self.name)
            .field("vocabulary", &self.vocabulary)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl Instance {
    /// The workload as a database sees it: name, vocabulary and client parameters.
    pub fn for_db(&self) -> crate::db::DbWorkload {
        crate::db::DbWorkload {
            name: self.name.clone(),
            vocabulary: self.vocabulary.clone(),
            params: self.workload.client_params(),
        }
    }
}

/// Runs the workload's checkers, then `stats`, then `availability` when the history has
/// nemesis events. Returns the overall verdict (false > unknown > true) and each checker's
/// result by name. `time_limit`: seconds before a checker says unknown (`None`: no limit).
pub fn check(
    workload: &dyn Workload,
    ops: &[Op],
    time_limit: Option<Duration>,
) -> (Validity, Map<String, Value>) {
    let budget = Budget::with_time_limit(time_limit);
    let mut results = workload.check(ops, &budget);
    results.push(Checked::of("stats", checker::stats::check(ops)));
    // Availability per fault window is information, not a verdict: it is recorded as valid
    // when it could be computed (a malformed history is caught by the checkers above).
    if ops.iter().any(|o| !o.process.is_client()) {
        let avail = match checker::availability::availability(ops) {
            Ok(a) => {
                let mut v =
                    serde_json::to_value(a).unwrap_or_else(|e| json!({"error": e.to_string()}));
                if let Some(m) = v.as_object_mut() {
                    m.insert("valid".into(), json!(true));
                }
                Checked {
                    name: "availability".into(),
                    valid: Validity::True,
                    result: v,
                }
            }
            Err(e) => Checked {
                name: "availability".into(),
                valid: Validity::Unknown,
                result: json!({"valid": "unknown", "error": e.to_string()}),
            },
        };
        results.push(avail);
    }
    let valid = results.iter().map(|c| c.valid).collect();
    let map = results.into_iter().map(|c| (c.name, c.result)).collect();
    (valid, map)
}

/// Weights of reads and writes must not both be zero (set, counter, bank).
pub(crate) fn check_weights(read: f64, write: f64) -> std::result::Result<(), String> {
    for (k, v) in [("read", read), ("write", write)] {
        if !v.is_finite() || v < 0.0 {
            return Err(format!(
                "{k}: must be a finite, non-negative number, got {v}"
            ));
        }
    }
    if read + write <= 0.0 {
        return Err("read: read + write must be positive".into());
    }
    Ok(())
}

/// `n` within `lo..=hi`, else `key: must be between lo and hi`.
pub(crate) fn check_range<T: PartialOrd + std::fmt::Display>(
    key: &str,
    n: T,
    lo: T,
    hi: T,
) -> std::result::Result<(), String> {
    if n < lo || n > hi {
        return Err(format!("{key}: must be between {lo} and {hi}, got {n}"));
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::generator::{self as g, sim::simulate};

    /// A built-in workload from options given as JSON.
    pub(crate) fn build(name: &str, opts: Value) -> Result<Instance> {
        let defs = [
            WorkloadDef::of::<register::Register>(),
            WorkloadDef::of::<set::Set>(),
            WorkloadDef::of::<counter::Counter>(),
            WorkloadDef::of::<bank::Bank>(),
            WorkloadDef::of::<list_append::ListAppend>(),
            WorkloadDef::of::<rw_register::RwRegister>(),
        ];
        let def = defs.iter().find(|d| d.name == name).expect("a built-in");
        let opts: BTreeMap<String, Value> = opts
            .as_object()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .collect();
        def.build(&WorkloadArgs {
            opts: &opts,
            run: &RunPlan::default(),
            origins: &Origins::default(),
        })
    }

    #[test]
    fn every_workload_generates_its_vocabulary() {
        for (name, fs) in [
            ("register", &["read", "write", "cas"][..]),
            ("set", &["add", "read"][..]),
            ("counter", &["add", "read"][..]),
            ("bank", &["transfer", "read"][..]),
            ("list-append", &["txn"][..]),
            ("rw-register", &["txn"][..]),
        ] {
            let wl = build(name, json!({})).unwrap();
            let ops = simulate(g::limit(300, wl.workload.generator()), 4, 1, 1000, u64::MAX);
            assert_eq!(ops.len(), 300, "{name}");
            for f in fs {
                assert!(ops.iter().any(|o| o.f == *f), "{name} never emits {f}");
            }
            assert!(ops.iter().all(|o| fs.contains(&o.f.as_str())), "{name}");
        }
    }

    #[test]
    fn checker_error_is_unknown_never_true() {
        let c =
            Checked::of::<checker::stats::StatsResult>("stats", Err(CheckError::new(3, "boom")));
        assert_eq!(c.valid, Validity::Unknown);
        assert_eq!(c.result["valid"], "unknown");
        assert!(c.result["error"].as_str().unwrap().contains("boom"));
    }

    #[test]
    fn unknown_options_and_bad_values_are_bad_input_naming_the_key() {
        let e = build("register", json!({"bogus": 1})).err().unwrap();
        assert_eq!(crate::error::exit_code_for(&e), 254);
        assert!(e.to_string().contains("workload.bogus"), "{e}");
        let e = build("bank", json!({"accounts": "many"})).err().unwrap();
        assert!(e.to_string().contains("workload.accounts"), "{e}");
        let e = build("bank", json!({"accounts": 1e9})).err().unwrap();
        assert!(e.to_string().contains("workload.accounts"), "{e}");
    }

    #[test]
    fn options_record_every_default() {
        let w = build("bank", json!({"accounts": 7})).unwrap();
        assert_eq!(w.options["accounts"], 7);
        assert_eq!(w.options["total"], 100);
        assert_eq!(w.vocabulary, "bank");
    }

    #[test]
    fn every_built_in_workload_sends_requests_of_its_vocabulary() {
        use netsplit_db::vocab::{Op, Vocabulary};
        for name in [
            "register",
            "set",
            "counter",
            "bank",
            "list-append",
            "rw-register",
        ] {
            let wl = build(name, json!({})).unwrap();
            let v = Vocabulary::from_name(&wl.vocabulary).expect("a vocabulary netsplit knows");
            let mut gens = vec![g::limit(500, wl.workload.generator())];
            gens.extend(wl.workload.final_generator());
            for gen in gens {
                for o in simulate(gen, 4, 1, 1000, u64::MAX) {
                    let op = Op::parse(v, &o.f, &o.value).unwrap_or_else(|e| panic!("{name}: {e}"));
                    assert_eq!(op.request(), (o.f.as_str(), o.value.clone()), "{name}");
                }
            }
        }
    }
}

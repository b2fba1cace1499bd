//! The verdicts on the requested models as `netsplit check --json`, `results.json` and the
//! report show them: one entry per model (`valid` true, false or null), each violated model's
//! witness as operations (invocation, completion, process, f, value, output — the form the
//! linearizability evidence uses, [`OpView`]), the overall verdict (valid only if every
//! requested model holds; an undecided model makes it unknown, never valid) and a one-line
//! summary naming the strongest requested model that holds.

use super::{check, ModelOptions, ModelResult, MODELS};
use crate::checker::linear::{LinOptions, LinResult, ModelKind, OpView};
use crate::checker::{CheckError, Validity};
use crate::history::{pair_positions, Op};
use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

/// One model's verdict, with its witness as operations.
#[derive(Debug, Clone, Serialize)]
pub struct ModelView {
    /// Holds, violated, or undecided (serialised as `null`).
    #[serde(serialize_with = "super::ser_valid")]
    pub valid: Validity,
    /// Why it does not hold, or why it is undecided; empty when it holds.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// The operations that show the violation, in the order the reason reads them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub witness: Vec<OpView>,
}

/// Every requested model's verdict.
#[derive(Debug, Clone, Serialize)]
pub struct ModelsReport {
    /// Every requested model holds: true; one is violated: false; else unknown.
    pub valid: Validity,
    /// The strongest requested model that holds, if any.
    pub strongest: Option<String>,
    /// `not linearizable; sequential ✔ causal ✔ …` (see [`summary`]).
    pub summary: String,
    /// By model, strongest first.
    #[serde(serialize_with = "ser_models")]
    pub models: Vec<(String, ModelView)>,
}

fn ser_models<S: Serializer>(m: &[(String, ModelView)], s: S) -> Result<S::Ok, S::Error> {
    let mut map = s.serialize_map(Some(m.len()))?;
    for (k, v) in m {
        map.serialize_entry(k, v)?;
    }
    map.end()
}

impl ModelsReport {
    /// The verdict on `model` (a name from [`super::MODELS`]), if it was requested.
    pub fn get(&self, model: &str) -> Option<&ModelView> {
        self.models.iter().find(|(m, _)| m == model).map(|(_, v)| v)
    }
}

/// `✔`, `✘` or `?`.
pub fn mark(v: Validity) -> &'static str {
    match v {
        Validity::True => "✔",
        Validity::False => "✘",
        Validity::Unknown => "?",
    }
}

/// One line over the verdicts (strongest first): the violated models stronger than every other
/// as `not X`, then the rest marked ✔, ✘ or ?. `not linearizable; sequential ✔ causal ✔`;
/// with everything holding, `linearizable ✔ sequential ✔ …`.
pub fn summary(verdicts: &[(&str, Validity)]) -> String {
    let lead = verdicts
        .iter()
        .take_while(|(_, v)| *v == Validity::False)
        .count();
    let not: Vec<String> = verdicts[..lead]
        .iter()
        .map(|(m, _)| format!("not {m}"))
        .collect();
    let rest: Vec<String> = verdicts[lead..]
        .iter()
        .map(|(m, v)| format!("{m} {}", mark(*v)))
        .collect();
    match (not.is_empty(), rest.is_empty()) {
        (true, _) => rest.join(" "),
        (false, true) => not.join(", "),
        (false, false) => format!("{}; {}", not.join(", "), rest.join(" ")),
    }
}

/// The linearizability verdict as a model entry: the reason and the op that could not take
/// effect, of the first key that is not linearizable (or undecided).
pub fn linearizable_view(r: &LinResult) -> ModelView {
    let ev = r.failures.iter().find(|e| e.valid == r.valid);
    let reason = match (r.valid, ev) {
        (Validity::True, _) => String::new(),
        (_, Some(e)) => {
            let key = e
                .key
                .as_ref()
                .map(|k| format!("key {}: ", crate::history::limits::quote_value(k)))
                .unwrap_or_default();
            match (&e.stuck, &e.reason) {
                (_, Some(why)) => format!("{key}{why}"),
                (Some(s), None) => format!(
                    "{key}no linearization: after {} of {} ops, {} by process {} (event {}) \
                     cannot take effect",
                    e.linearized.len(),
                    e.ops,
                    s.f,
                    s.process,
                    s.invoke
                ),
                (None, None) => format!("{key}no linearization"),
            }
        }
        (_, None) => r
            .unknown_reason
            .clone()
            .unwrap_or_else(|| "not linearizable".into()),
    };
    let witness = ev.and_then(|e| e.stuck.clone()).into_iter().collect();
    ModelView {
        valid: r.valid,
        reason,
        witness,
    }
}

/// The longest a sequential check tries linearizability before its own search.
const LIN_TRY: std::time::Duration = std::time::Duration::from_secs(10);

/// Checks `models` (validated names, [`MODELS`] order) over a register history; the
/// linearizability verdict, when requested, comes from `lin` (`checker::linear`'s result on
/// the same history). `keyed`: values are `[key, value]`; witness values are shown without
/// the key, as the linearizability evidence shows them.
pub fn check_models(
    ops: &[Op],
    models: &[&str],
    opts: &ModelOptions,
    lin: Option<&LinResult>,
) -> Result<ModelsReport, CheckError> {
    // Linearizable implies sequential: when the linearizability checker has found an order
    // (key by key, which is an order of all keys: linearizability is local), no search is
    // needed. When sequential is asked for without linearizable, linearizability is still
    // tried first: key by key it is far cheaper than the sequential search over all keys
    // together (a 100,000-op etcd history: about a second, where that search ran out of its
    // budget), and it only ever spares the search, never decides against sequential. The try
    // gets its own slice of the budget (a quarter of what is left, at most 10 s), so a history
    // that is hard to linearize (many sessions on one key) still leaves the search its time.
    let own;
    let lin = match lin {
        None if models.contains(&"sequential") => {
            let slice = opts
                .budget
                .remaining()
                .map_or(LIN_TRY, |r| (r / 4).min(LIN_TRY));
            let o = LinOptions {
                model: ModelKind::CasRegister,
                initial: serde_json::Value::Null,
                independent: opts.keyed,
                partition: true,
                budget: opts.budget.slice(slice),
            };
            own = crate::checker::linear::check(ops, &o).ok();
            own.as_ref()
        }
        lin => lin,
    };
    let lin_holds = lin.is_some_and(|r| r.valid == Validity::True);
    let to_check: Vec<&str> = models
        .iter()
        .copied()
        .filter(|m| !(lin_holds && *m == "sequential"))
        .collect();
    let mut results = check(ops, &to_check, opts)?;
    if lin_holds && models.contains(&"sequential") {
        results.insert("sequential".into(), ModelResult::holds());
    }
    let pairs = pair_positions(ops).map_err(|e| CheckError::new(e.event, e.msg))?;
    let view_of = |event: usize| -> Option<OpView> {
        let p = pairs.binary_search_by_key(&event, |p| p.invoke).ok()?;
        let p = &pairs[p];
        let inv = &ops[p.invoke];
        let strip = |v: &serde_json::Value| match v.as_array().map(Vec::as_slice) {
            Some([_, x]) if opts.keyed => x.clone(),
            _ => v.clone(),
        };
        let process = inv.process.to_string();
        Some(OpView {
            invoke: p.invoke,
            complete: p.complete,
            process,
            kind: p.outcome.to_string(),
            f: inv.f.clone(),
            value: strip(&inv.value),
            output: p
                .complete
                .map_or(serde_json::Value::Null, |c| strip(&ops[c].value)),
        })
    };
    let mut out = Vec::new();
    for m in MODELS.iter().filter(|m| models.contains(m)) {
        let view = if *m == "linearizable" {
            match lin {
                Some(r) => linearizable_view(r),
                None => continue,
            }
        } else {
            let Some(ModelResult {
                valid,
                reason,
                witness,
            }) = results.get(*m).cloned()
            else {
                continue;
            };
            ModelView {
                valid,
                reason,
                witness: witness.into_iter().filter_map(view_of).collect(),
            }
        };
        out.push((m.to_string(), view));
    }
    let verdicts: Vec<(&str, Validity)> = out.iter().map(|(m, v)| (m.as_str(), v.valid)).collect();
    Ok(ModelsReport {
        valid: verdicts.iter().map(|(_, v)| *v).collect(),
        strongest: verdicts
            .iter()
            .find(|(_, v)| *v == Validity::True)
            .map(|(m, _)| m.to_string()),
        summary: summary(&verdicts),
        models: out,
    })
}

#[cfg(test)]
mod tests;

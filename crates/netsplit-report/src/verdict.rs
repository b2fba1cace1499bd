//! Expected verdicts and what a run concluded, in words.
//!
//! A plan says which verdict its run must reach (`expect: valid | invalid | unknown | any`,
//! docs/plan-format.md): a reference suite holds positive controls that must find an anomaly,
//! and a positive control that stops failing is a broken harness. A run *passes* when its
//! verdict matches the expectation and the harness did not fail.
//!
//! This module owns that rule ([`Expect`], [`Outcome`]), the fields it adds to `results.json`
//! ([`annotate`]: `expected`, `verdict`, `outcome`, `pass`, `anomaly`), and the one-line anomaly
//! summary (`anomaly_summary`) that the console, the suite table, JUnit and the store's index
//! show for a run — including the linearizability checker's reason in the model's own terms
//! (`stuck_reason`: "state 2; read returned 4"). Pure: no I/O.

use crate::checker::Validity;
use netsplit_check::named::by_name;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// The verdict a plan expects its run to reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Expect {
    /// No anomaly found (the default).
    #[default]
    Valid,
    /// An anomaly found: a positive control, or a database known to be unsafe in this setup.
    Invalid,
    /// The checkers could not decide (a budget that is known to run out).
    Unknown,
    /// Any verdict passes; only a harness error fails.
    Any,
}

impl Expect {
    /// Every expectation, in the order error messages list them.
    pub const ALL: [Expect; 4] = [Expect::Valid, Expect::Invalid, Expect::Unknown, Expect::Any];

    /// The expectation as a plan spells it (`valid`, `invalid`, `unknown`, `any`).
    pub fn as_str(self) -> &'static str {
        match self {
            Expect::Valid => "valid",
            Expect::Invalid => "invalid",
            Expect::Unknown => "unknown",
            Expect::Any => "any",
        }
    }

    /// Whether a verdict meets this expectation.
    pub fn matches(self, v: Validity) -> bool {
        matches!(
            (self, v),
            (Expect::Any, _)
                | (Expect::Valid, Validity::True)
                | (Expect::Invalid, Validity::False)
                | (Expect::Unknown, Validity::Unknown)
        )
    }
}

// Parsing: the expectation a plan spells, or an error listing the spellings.
netsplit_check::display_and_from_str!(Expect, Expect::as_str, |s| {
    by_name(&Expect::ALL, Expect::as_str, s).ok_or_else(|| {
        format!("unknown expectation {s:?} (expected valid, invalid, unknown or any)")
    })
});

/// What a run amounts to against its expectation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The verdict matches the expectation.
    Pass,
    /// The verdict differs from the expectation.
    Fail,
    /// The harness failed (setup, a phase, the heal): the run says nothing about the database.
    Error,
}

impl Outcome {
    /// The outcome of a run with verdict `valid` against `expect`; a harness error is always
    /// [`Outcome::Error`], whatever the verdict.
    pub fn of(expect: Expect, valid: Validity, harness_error: bool) -> Outcome {
        if harness_error {
            Outcome::Error
        } else if expect.matches(valid) {
            Outcome::Pass
        } else {
            Outcome::Fail
        }
    }

    /// The outcome as `results.json` stores it: `pass`, `fail` or `error`.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Fail => "fail",
            Outcome::Error => "error",
        }
    }

    /// From `results.json`'s `outcome` (absent in runs stored before it existed: judged from
    /// `valid` against the default expectation).
    pub fn of_results(r: &Value) -> Outcome {
        match r.get("outcome").and_then(Value::as_str) {
            Some("pass") => Outcome::Pass,
            Some("fail") => Outcome::Fail,
            Some("error") => Outcome::Error,
            _ => Outcome::of(
                expected_of(r),
                validity_of(r.get("valid")),
                r.get("error").is_some_and(|e| !e.is_null()),
            ),
        }
    }
}

/// A verdict as `results.json` stores it (`true`, `false`, `"unknown"`).
pub(crate) fn validity_of(v: Option<&Value>) -> Validity {
    match v {
        Some(Value::Bool(true)) => Validity::True,
        Some(Value::Bool(false)) => Validity::False,
        _ => Validity::Unknown,
    }
}

/// The verdict's word: `valid`, `invalid`, `unknown`.
pub fn verdict_word(v: Validity) -> &'static str {
    match v {
        Validity::True => "valid",
        Validity::False => "invalid",
        Validity::Unknown => "unknown",
    }
}

/// The expectation stored in `results.json` (`valid` when absent).
pub fn expected_of(r: &Value) -> Expect {
    r.get("expected")
        .and_then(Value::as_str)
        .and_then(|s| s.parse().ok())
        .unwrap_or_default()
}

/// Adds `expected`, `verdict`, `outcome`, `pass` and `anomaly` to a run's results, from its
/// `valid`, `error` and checkers. Call again after changing any of them.
pub fn annotate(results: &mut Value, expect: Expect) {
    let valid = validity_of(results.get("valid"));
    let error = results.get("error").is_some_and(|e| !e.is_null());
    let outcome = Outcome::of(expect, valid, error);
    let anomaly = anomaly_summary(results);
    results["expected"] = json!(expect.as_str());
    results["verdict"] = json!(verdict_word(valid));
    results["outcome"] = json!(outcome.as_str());
    results["pass"] = json!(outcome == Outcome::Pass);
    results["anomaly"] = json!(anomaly);
}

/// Cuts text to `n` characters, with `…` when cut.
pub fn cut(s: &str, n: usize) -> String {
    match s.char_indices().nth(n) {
        Some((at, _)) => format!("{}…", &s[..at]),
        None => s.to_string(),
    }
}

/// A JSON value as short text: strings unquoted, the rest as JSON.
fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Why the linearizability search could not place `stuck` after the longest prefix, in the
/// model's terms: "state 2; read returned 4", "state 1; cas expected 3",
/// "state 1; write 3 is legal here, but no order of the open ops continues from it".
/// `state` is the model state the prefix reached; `accepted` whether the model would take the op
/// in that state (a legal op that still cannot go first leads every order into a dead end).
pub(crate) fn stuck_reason(state: &Value, stuck: &Value, accepted: Option<bool>) -> String {
    let f = stuck.get("f").and_then(Value::as_str).unwrap_or("op");
    let value = stuck.get("value").unwrap_or(&Value::Null);
    let output = stuck.get("output").unwrap_or(&Value::Null);
    let st = cut(&text(state), 60);
    if accepted == Some(true) {
        let what = if value.is_null() {
            f.to_string()
        } else {
            format!("{f} {}", cut(&text(value), 40))
        };
        return format!(
            "state {st}; {what} is legal here, but no order of the open ops continues from it"
        );
    }
    match f {
        "read" | "get" | "dequeue" => {
            format!("state {st}; {f} returned {}", cut(&text(output), 60))
        }
        "cas" => match value.as_array().map(Vec::as_slice) {
            Some([from, to]) => format!(
                "state {st}; cas {} → {} needs {}",
                cut(&text(from), 30),
                cut(&text(to), 30),
                cut(&text(from), 30)
            ),
            _ => format!("state {st}; cas {} cannot apply", cut(&text(value), 40)),
        },
        "acquire" => format!("state {st}; acquire while the lock is held"),
        "release" => format!("state {st}; release while the lock is free"),
        _ if output.is_null() || output == value => {
            format!(
                "state {st}; {f} {} is not a legal step",
                cut(&text(value), 40)
            )
        }
        _ => format!(
            "state {st}; {f} {} returned {}",
            cut(&text(value), 40),
            cut(&text(output), 40)
        ),
    }
}

/// The model state a linearizability failure's prefix reached: the last step's state, else the
/// initial state.
pub(crate) fn prefix_state(failure: &Value) -> Value {
    failure
        .get("linearized")
        .and_then(Value::as_array)
        .and_then(|l| l.last())
        .and_then(|s| s.get("state"))
        .or_else(|| failure.get("initial_state"))
        .cloned()
        .unwrap_or(Value::Null)
}

/// Whether the model accepts the stuck op in the state reached, from the failure's open ops.
pub(crate) fn stuck_accepted(failure: &Value) -> Option<bool> {
    let stuck = failure.get("stuck")?;
    let at = stuck.get("invoke")?;
    failure
        .get("open")?
        .as_array()?
        .iter()
        .find(|c| c.pointer("/op/invoke") == Some(at))
        .and_then(|c| c.get("model_accepts"))
        .and_then(Value::as_bool)
}

/// One line saying what the run found: each invalid checker's anomaly (the linearizability
/// reason for the first key, transactional anomaly counts, lost elements, bad reads), or why it
/// is unknown, or the harness error. Empty for a valid run.
pub(crate) fn anomaly_summary(results: &Value) -> String {
    let mut parts: Vec<String> = Vec::new();
    if let Some(e) = results.get("error").and_then(Value::as_str) {
        parts.push(format!("harness error: {}", cut(e, 200)));
    }
    let Some(cs) = results.get("checkers").and_then(Value::as_object) else {
        return parts.join("; ");
    };
    let mut unknown: Vec<String> = Vec::new();
    for (name, c) in cs {
        match validity_of(c.get("valid")) {
            Validity::True => {}
            Validity::False => parts.push(format!("{name}: {}", checker_anomaly(c))),
            Validity::Unknown => {
                let why = ["unknown_reason", "reason", "error"]
                    .iter()
                    .find_map(|k| c.get(*k).and_then(Value::as_str));
                unknown.push(match why {
                    Some(w) => format!("{name} unknown: {}", cut(w, 120)),
                    None => format!("{name} unknown"),
                });
            }
        }
    }
    // An unknown beside an anomaly or a harness error says little; alone, it is the story.
    if parts.is_empty() {
        parts.extend(unknown);
    }
    parts.join("; ")
}

/// The anomaly of one invalid checker, by the fields its result carries.
fn checker_anomaly(c: &Value) -> String {
    let n = |k: &str| c.get(k).and_then(Value::as_u64).unwrap_or(0);
    // consistency models: which hold and which do not
    if c.get("models").is_some_and(Value::is_object) {
        if let Some(s) = c.get("summary").and_then(Value::as_str) {
            return s.to_string();
        }
    }
    // linear: the first refuted key and why
    if let Some(fs) = c.get("failures").and_then(Value::as_array) {
        let refuted: Vec<&Value> = fs
            .iter()
            .filter(|f| f.get("valid") == Some(&Value::Bool(false)))
            .collect();
        if let Some(f) = refuted.first() {
            let key = f
                .get("key")
                .map(|k| format!("key {} ", cut(&text(k), 30)))
                .unwrap_or_default();
            let why = match f.get("stuck") {
                Some(s) => {
                    format!(
                        "{}: {}",
                        op_words(s),
                        stuck_reason(&prefix_state(f), s, stuck_accepted(f))
                    )
                }
                None => "no linearization".to_string(),
            };
            let more = if refuted.len() > 1 {
                format!(" (+{} more keys)", refuted.len() - 1)
            } else {
                String::new()
            };
            return format!("{key}{why}{more}").trim().to_string();
        }
    }
    // txn: anomaly types with counts, and the weakest model ruled out
    if let Some(m) = c.get("anomaly_counts").and_then(Value::as_object) {
        let mut s: Vec<String> = m
            .iter()
            .map(|(k, v)| format!("{k} ×{}", v.as_u64().unwrap_or(0)))
            .collect();
        if s.is_empty() {
            if let Some(a) = c.get("anomaly_types").and_then(Value::as_array) {
                s = a.iter().map(text).collect();
            }
        }
        let not = c
            .get("weakest_not")
            .and_then(Value::as_array)
            .filter(|a| !a.is_empty())
            .map(|a| {
                format!(
                    " (not {})",
                    a.iter().map(text).collect::<Vec<_>>().join(", ")
                )
            })
            .unwrap_or_default();
        return format!("{}{not}", s.join(", "));
    }
    // set
    if c.get("lost_count").is_some() {
        let mut s = Vec::new();
        for k in ["lost", "unexpected", "stale"] {
            let v = n(&format!("{k}_count"));
            if v > 0 {
                let first: Vec<String> = c
                    .get(k)
                    .and_then(Value::as_array)
                    .map(|a| a.iter().take(5).map(text).collect())
                    .unwrap_or_default();
                let more = if v > first.len() as u64 { " …" } else { "" };
                s.push(format!("{v} {k} ({}{more})", first.join(" ")));
            }
        }
        if !s.is_empty() {
            return s.join(", ");
        }
    }
    // bank
    if let Some(m) = c.get("error_counts").and_then(Value::as_object) {
        let s: Vec<String> = m
            .iter()
            .map(|(k, v)| format!("{} {k}", v.as_u64().unwrap_or(0)))
            .collect();
        return format!("bad reads: {}", s.join(", "));
    }
    // counter
    if c.get("error_count").is_some() {
        let first = c
            .pointer("/errors/0")
            .map(|e| {
                format!(
                    " (read {} outside {}..{})",
                    text(&e["value"]),
                    text(&e["lower"]),
                    text(&e["upper"])
                )
            })
            .unwrap_or_default();
        return format!("{} reads out of bounds{first}", n("error_count"));
    }
    "invalid".to_string()
}

/// An op of the linear checker's evidence in a few words: `read → 4 (p12)`, `write 3 (p0)`.
pub(crate) fn op_words(op: &Value) -> String {
    let f = op.get("f").and_then(Value::as_str).unwrap_or("op");
    let v = op.get("value").unwrap_or(&Value::Null);
    let o = op.get("output").unwrap_or(&Value::Null);
    let p = op.get("process").map(text).unwrap_or_default();
    let body = if matches!(f, "read" | "get" | "dequeue") {
        format!("{f} → {}", cut(&text(o), 30))
    } else {
        format!("{f} {}", cut(&text(v), 30))
    };
    format!("{body} (p{p})")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expectations_match_verdicts() {
        use Validity::*;
        assert!(Expect::Valid.matches(True));
        assert!(!Expect::Valid.matches(False));
        assert!(!Expect::Valid.matches(Unknown));
        assert!(Expect::Invalid.matches(False));
        assert!(
            !Expect::Invalid.matches(Unknown),
            "unknown is never a found anomaly"
        );
        assert!(Expect::Unknown.matches(Unknown));
        assert!(Expect::Any.matches(False) && Expect::Any.matches(True));
        assert_eq!(Outcome::of(Expect::Any, True, true), Outcome::Error);
        assert_eq!(Outcome::of(Expect::Invalid, True, false), Outcome::Fail);
        assert_eq!("invalid".parse::<Expect>(), Ok(Expect::Invalid));
        assert!("maybe".parse::<Expect>().unwrap_err().contains("maybe"));
    }

    #[test]
    fn stuck_reasons_speak_the_models_terms() {
        let read = json!({"f": "read", "value": null, "output": 4, "process": "3"});
        assert_eq!(
            stuck_reason(&json!(2), &read, Some(false)),
            "state 2; read returned 4"
        );
        let cas = json!({"f": "cas", "value": [3, 1], "output": [3, 1]});
        assert_eq!(
            stuck_reason(&json!(1), &cas, Some(false)),
            "state 1; cas 3 → 1 needs 3"
        );
        let write = json!({"f": "write", "value": 3, "output": 3});
        assert!(
            stuck_reason(&json!(1), &write, Some(true)).starts_with("state 1; write 3 is legal")
        );
        assert_eq!(op_words(&read), "read → 4 (p3)");
    }

    #[test]
    fn anomaly_summaries_name_what_was_found() {
        let r = json!({"valid": false, "checkers": {
            "linear": {"valid": false, "failures": [
                {"key": 11, "valid": false, "initial_state": null,
                 "linearized": [{"op": {"f": "write", "value": 3}, "state": 3}],
                 "stuck": {"invoke": 9, "f": "read", "value": null, "output": null,
                           "process": "12"},
                 "open": [{"op": {"invoke": 9}, "model_accepts": false}]},
                {"key": 12, "valid": false}]},
            "stats": {"valid": true}}});
        assert_eq!(
            anomaly_summary(&r),
            "linear: key 11 read → null (p12): state 3; read returned null (+1 more keys)"
        );
        let r = json!({"valid": false, "checkers": {"bank": {"valid": false,
            "error_counts": {"wrong-total": 5}}}});
        assert_eq!(anomaly_summary(&r), "bank: bad reads: 5 wrong-total");
        let r = json!({"valid": false, "checkers": {"txn": {"valid": false,
            "anomaly_counts": {"G-single": 2, "G1c": 1}, "weakest_not": ["snapshot-isolation"]}}});
        assert_eq!(
            anomaly_summary(&r),
            "txn: G-single ×2, G1c ×1 (not snapshot-isolation)"
        );
        let r = json!({"valid": "unknown", "checkers": {"linear": {"valid": "unknown",
            "unknown_reason": "time limit"}}});
        assert_eq!(anomaly_summary(&r), "linear unknown: time limit");
        let r = json!({"valid": "unknown", "error": "setup failed", "checkers": {}});
        assert_eq!(anomaly_summary(&r), "harness error: setup failed");
        assert_eq!(
            anomaly_summary(&json!({"valid": true, "checkers": {"set": {"valid": true}}})),
            ""
        );
    }

    #[test]
    fn annotate_adds_expected_verdict_and_pass() {
        let mut r = json!({"valid": false, "checkers": {"set": {"valid": false,
            "lost_count": 2, "lost": [4, 9], "unexpected_count": 0, "stale_count": 0}}});
        annotate(&mut r, Expect::Invalid);
        assert_eq!(r["expected"], "invalid");
        assert_eq!(r["verdict"], "invalid");
        assert_eq!(r["outcome"], "pass");
        assert_eq!(r["pass"], true);
        assert_eq!(r["anomaly"], "set: 2 lost (4 9)");
        r["error"] = json!("heal failed");
        annotate(&mut r, Expect::Invalid);
        assert_eq!(r["outcome"], "error");
        assert_eq!(Outcome::of_results(&r), Outcome::Error);
    }
}

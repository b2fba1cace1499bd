//! The console summary of a run (what `netsplit test` prints on stdout): ops and outcomes per
//! operation, each checker's verdict and one-line finding, the faults line, the verdict and the
//! expectation — all read from `results.json`, so `netsplit analyze` prints the same.

use crate::verdict;
use serde_json::Value;

/// The console summary of a run (stdout): ops, outcomes per f, verdict per checker, run dir.
pub fn summary_text(results: &Value) -> String {
    let mut s = String::new();
    let interrupted = results["interrupted"].as_bool().unwrap_or(false);
    s.push_str(&format!(
        "\n{} ops ({} events){}\n",
        results["ops"],
        results["events"],
        if interrupted { ", interrupted" } else { "" }
    ));
    if let Some(m) = results["by_f"].as_object() {
        for (f, c) in m {
            s.push_str(&format!(
                "  {f:<12} ok {:<8} fail {:<8} info {}\n",
                c["ok"], c["fail"], c["info"]
            ));
        }
    }
    if let Some(m) = results["checkers"].as_object() {
        for (name, r) in m {
            let v = verdict_text(&r["valid"]);
            match r.get("error").and_then(Value::as_str) {
                Some(e) => s.push_str(&format!("  checker {name:<10} {v}  ({e})\n")),
                None => s.push_str(&format!("  checker {name:<10} {v}\n")),
            }
            // A checker may say in one line what it found (`summary`); the consistency models'
            // line says which hold even when all do.
            if let Some(sum) = r.get("summary").and_then(Value::as_str) {
                if v != "true" || r.get("models").is_some() {
                    s.push_str(&format!("    {sum}\n"));
                }
            }
        }
    }
    if let Some(line) = faults_line(&results["faults"]) {
        s.push_str(&line);
    }
    if let Some(e) = results.get("error").and_then(Value::as_str) {
        s.push_str(&format!("  harness error: {e}\n"));
    }
    s.push_str(&format!(
        "{}  {}\n",
        match verdict_text(&results["valid"]) {
            "true" => "VALID    ",
            "false" => "INVALID  ",
            _ => "UNKNOWN  ",
        },
        results["run_dir"].as_str().unwrap_or("")
    ));
    s.push_str(&expectation_line(results));
    s
}

/// `PASS  expected invalid, verdict invalid` (or FAIL, or ERROR for a harness error).
fn expectation_line(results: &Value) -> String {
    let outcome = verdict::Outcome::of_results(results);
    let expected = verdict::expected_of(results);
    let verdict = verdict::verdict_word(verdict::validity_of(results.get("valid")));
    match outcome {
        verdict::Outcome::Error => {
            format!("ERROR    harness error (expected {expected})\n")
        }
        o => format!(
            "{}     expected {expected}, verdict {verdict}\n",
            o.as_str().to_uppercase()
        ),
    }
}

/// The console line of the fault summary (`None` without faults): what was injected, what had
/// no effect, what was skipped (no leader to aim at) and what FAILED, so a valid run is not
/// read as "survived" a fault that never happened. `faults: partition 3 (1 skipped: …), pause
/// 2, clock 2 (no effect: …), packet 0 injected / 2 FAILED: …`.
fn faults_line(faults: &Value) -> Option<String> {
    let m = faults.as_object().filter(|m| !m.is_empty())?;
    let mut parts = Vec::new();
    for (kind, c) in m {
        if kind == "heal" {
            let errs = c["errors"].as_array().map(Vec::len).unwrap_or(0);
            parts.push(format!("heal {errs} FAILED: {}", first_str(&c["errors"])));
            continue;
        }
        let injected = c["injected"].as_u64().unwrap_or(0);
        let failed = c["failed"].as_u64().unwrap_or(0);
        let mut p = format!("{kind} {injected}");
        if c["no_effect"].as_u64().unwrap_or(0) > 0 {
            p.push_str(&format!(" (no effect: {})", first_str(&c["notes"])));
        }
        let moved = c["moved"].as_u64().unwrap_or(0);
        if moved > 0 {
            p.push_str(&format!(
                " ({moved} moved: {})",
                first_str(&c["moved_reasons"])
            ));
        }
        let skipped = c["skipped"].as_u64().unwrap_or(0);
        if skipped > 0 {
            p.push_str(&format!(
                " ({skipped} skipped: {})",
                first_str(&c["skip_reasons"])
            ));
        }
        if failed > 0 {
            p.push_str(&format!(
                " injected / {failed} FAILED: {}",
                first_str(&c["errors"])
            ));
        }
        parts.push(p);
    }
    Some(format!("  faults: {}\n", parts.join(", ")))
}

/// The first string of a list, cut to one readable line (results.json keeps it whole).
fn first_str(v: &Value) -> String {
    let s = v.get(0).and_then(Value::as_str).unwrap_or("");
    match s.char_indices().nth(160) {
        Some((at, _)) => format!("{}…", &s[..at]),
        None => s.to_string(),
    }
}

fn verdict_text(v: &Value) -> &'static str {
    match v {
        Value::Bool(true) => "true",
        Value::Bool(false) => "false",
        _ => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_line_says_injected_skipped_no_effect_and_failed_apart() {
        let faults = serde_json::json!({
            "partition": {"injected": 3, "failed": 0, "no_effect": 0, "skipped": 1,
                          "errors": [], "notes": [], "skip_reasons": ["no leader"]},
            "packet": {"injected": 0, "failed": 2, "no_effect": 0, "skipped": 0,
                       "errors": ["n1: tc exited 2"], "notes": [], "skip_reasons": []},
            "clock": {"injected": 2, "failed": 0, "no_effect": 2, "skipped": 0,
                      "errors": [], "notes": ["etcd ignores libfaketime"], "skip_reasons": []},
        });
        assert_eq!(
            faults_line(&faults).unwrap(),
            "  faults: partition 3 (1 skipped: no leader), packet 0 injected / 2 FAILED: n1: \
             tc exited 2, clock 2 (no effect: etcd ignores libfaketime)\n"
        );
        assert_eq!(faults_line(&serde_json::json!({})), None);
    }
}

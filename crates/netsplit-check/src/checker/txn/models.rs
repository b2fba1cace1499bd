//! Consistency models and the anomalies they forbid (after Elle's `consistency-model`).
//!
//! Three small graphs, all static data:
//! - [`IMPLIES`]: anomaly A implies anomaly B (every history showing A also shows B), e.g.
//!   `G0 → G1c`, `G1c → G1c-process` (a data cycle is trivially also a session cycle),
//!   `G-single → G-nonadjacent → G2-item → G2`.
//! - [`STRONGER`]: model M implies model N (every history satisfying M satisfies N).
//! - [`FORBIDS`]: the anomalies a model forbids directly (weaker models add the rest).
//!
//! From those: the set of anomalies a list of requested models forbids (closed under "implies":
//! an anomaly that implies a forbidden one is forbidden too), and, from a set of anomalies found,
//! the models ruled out (`not`: every model forbidding one of the found anomalies or anything
//! they imply, plus every stronger model) and the weakest of those (Elle's `:not`).
//!
//! One deliberate divergence from Elle's names: every anti-dependency this checker infers is on
//! a single key (an "item"), so our `G-single` and `G-nonadjacent` are Elle's `G-single-item` and
//! `G-nonadjacent-item`, and they imply `G2-item` (forbidden by repeatable read).

use std::collections::{BTreeSet, HashSet};

/// The cycle anomalies, by base class and edge "level".
pub const CYCLE_BASES: [&str; 5] = ["G0", "G1c", "G-single", "G-nonadjacent", "G2-item"];
/// Suffixes: data edges only, plus process (session) order, plus real-time order.
pub const LEVELS: [&str; 3] = ["", "-process", "-realtime"];

/// Anomaly implications (A, [B…]): A present ⇒ each B present.
pub const IMPLIES: &[(&str, &[&str])] = &[
    ("G0", &["G1c", "G0-process"]),
    ("G0-process", &["G1c-process", "G0-realtime"]),
    ("G0-realtime", &["G1c-realtime"]),
    ("G1a", &["G1"]),
    ("G1b", &["G1"]),
    ("G1c", &["G1", "G1c-process"]),
    ("G1c-process", &["G1c-realtime", "G1-process"]),
    ("G1c-realtime", &["G1-realtime"]),
    ("G1", &["G1-process"]),
    ("G1-process", &["G1-realtime"]),
    ("G-single", &["G-nonadjacent", "G-single-process"]),
    (
        "G-single-process",
        &["G-nonadjacent-process", "G-single-realtime"],
    ),
    ("G-single-realtime", &["G-nonadjacent-realtime"]),
    ("G-nonadjacent", &["G2-item", "G-nonadjacent-process"]),
    (
        "G-nonadjacent-process",
        &["G2-item-process", "G-nonadjacent-realtime"],
    ),
    ("G-nonadjacent-realtime", &["G2-item-realtime"]),
    ("G2-item", &["G2", "G2-item-process"]),
    ("G2-item-process", &["G2-process", "G2-item-realtime"]),
    ("G2-item-realtime", &["G2-realtime"]),
    ("G2", &["G2-process"]),
    ("G2-process", &["G2-realtime"]),
    ("incompatible-order", &["G1a"]),
    ("dirty-update", &["G1a"]),
    ("lost-update", &["G2-item"]),
];

/// Model hierarchy (M, [N…]): a history satisfying M satisfies each N.
pub const STRONGER: &[(&str, &[&str])] = &[
    (
        "strict-serializable",
        &[
            "serializable",
            "strong-snapshot-isolation",
            "strong-session-serializable",
        ],
    ),
    (
        "strong-session-serializable",
        &["serializable", "strong-session-snapshot-isolation"],
    ),
    (
        "strong-snapshot-isolation",
        &["strong-session-snapshot-isolation", "strong-read-committed"],
    ),
    (
        "strong-session-snapshot-isolation",
        &["snapshot-isolation", "strong-session-read-committed"],
    ),
    ("serializable", &["repeatable-read", "snapshot-isolation"]),
    ("snapshot-isolation", &["cursor-stability"]),
    ("repeatable-read", &["cursor-stability"]),
    ("cursor-stability", &["read-committed"]),
    ("read-committed", &["read-uncommitted"]),
    (
        "strong-read-committed",
        &["strong-session-read-committed", "strong-read-uncommitted"],
    ),
    (
        "strong-session-read-committed",
        &["read-committed", "strong-session-read-uncommitted"],
    ),
    (
        "strong-read-uncommitted",
        &["strong-session-read-uncommitted"],
    ),
    ("strong-session-read-uncommitted", &["read-uncommitted"]),
    ("read-uncommitted", &[]),
];

/// What each model forbids directly (Adya; Bailis et al.; Cerone & Gotsman; Daudjee & Salem —
/// as collected by Elle).
pub const FORBIDS: &[(&str, &[&str])] = &[
    (
        "read-uncommitted",
        &["G0", "duplicate-elements", "garbage-read"],
    ),
    ("read-committed", &["G1"]),
    ("cursor-stability", &["G1", "lost-update"]),
    ("repeatable-read", &["G1", "G2-item", "lost-update"]),
    ("snapshot-isolation", &["internal", "G1", "G-nonadjacent"]),
    ("serializable", &["internal", "G1", "G2"]),
    ("strong-session-read-uncommitted", &["G0-process"]),
    ("strong-session-read-committed", &["G1c-process"]),
    ("strong-read-uncommitted", &["G0-realtime"]),
    ("strong-read-committed", &["G1c-realtime"]),
    (
        "strong-session-snapshot-isolation",
        &["internal", "G1-process", "G-nonadjacent-process"],
    ),
    (
        "strong-snapshot-isolation",
        &["internal", "G1-realtime", "G-nonadjacent-realtime"],
    ),
    ("strong-session-serializable", &["G1-process", "G2-process"]),
    (
        "strict-serializable",
        &["G1", "G1c-realtime", "G2-realtime"],
    ),
];

/// Other accepted spellings (Adya's PL names and common synonyms) → canonical name.
pub const ALIASES: &[(&str, &str)] = &[
    ("PL-1", "read-uncommitted"),
    ("PL-2", "read-committed"),
    ("PL-CS", "cursor-stability"),
    ("PL-2.99", "repeatable-read"),
    ("PL-SI", "snapshot-isolation"),
    ("PL-3", "serializable"),
    ("conflict-serializable", "serializable"),
    ("PL-SS", "strict-serializable"),
    ("strong-serializable", "strict-serializable"),
    ("strong-session-PL-1", "strong-session-read-uncommitted"),
    ("strong-session-PL-2", "strong-session-read-committed"),
    ("strong-PL-1", "strong-read-uncommitted"),
    ("strong-PL-2", "strong-read-committed"),
];

/// Every accepted model name, canonical names first.
pub fn model_names() -> Vec<&'static str> {
    let mut v: Vec<&str> = STRONGER.iter().map(|(m, _)| *m).collect();
    v.sort_unstable();
    v.extend(ALIASES.iter().map(|(a, _)| *a));
    v
}

/// The canonical name of a model, or an error naming the accepted names.
pub fn canonical_model(name: &str) -> Result<&'static str, String> {
    let name = name.trim();
    if let Some((m, _)) = STRONGER.iter().find(|(m, _)| *m == name) {
        return Ok(m);
    }
    if let Some((_, m)) = ALIASES.iter().find(|(a, _)| *a == name) {
        return Ok(m);
    }
    let shown = crate::history::limits::quote(name);
    let near = closest_models(name);
    let hint = if near.is_empty() {
        String::new()
    } else {
        format!("; did you mean {}?", near.join(" or "))
    };
    Err(format!(
        "unknown consistency model {shown:?}{hint} (every accepted name: \
         docs/transactional-checking.md)"
    ))
}

/// Up to three accepted names close to `name` (same letters up to case and punctuation, one
/// containing the other, or a few edits apart), closest first: a hint that stays short where
/// the whole list of names would fill a screen line several times.
fn closest_models(name: &str) -> Vec<&'static str> {
    let norm = |s: &str| -> String {
        s.chars()
            .filter(char::is_ascii_alphanumeric)
            .map(|c| c.to_ascii_lowercase())
            .collect()
    };
    let n = norm(name);
    if n.is_empty() || n.len() > 64 {
        return Vec::new();
    }
    let mut scored: Vec<(usize, &'static str)> = model_names()
        .into_iter()
        .filter_map(|m| {
            let c = norm(m);
            let d = if c == n {
                0
            } else if c.contains(&n) || n.contains(&c) {
                1 + c.len().abs_diff(n.len()).min(8)
            } else {
                let d = edit_distance(&n, &c);
                if d > 3 {
                    return None;
                }
                d + 1
            };
            Some((d, m))
        })
        .collect();
    scored.sort();
    scored.into_iter().take(3).map(|(_, m)| m).collect()
}

/// Levenshtein distance between two short ASCII strings.
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, x) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, y) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(x != y))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Validates model names, returning their canonical forms (deduplicated, in order).
pub fn validate_models(names: &[String]) -> Result<Vec<&'static str>, String> {
    let mut out: Vec<&'static str> = Vec::new();
    for n in names {
        for part in n.split(',').filter(|p| !p.trim().is_empty()) {
            let m = canonical_model(part)?;
            if !out.contains(&m) {
                out.push(m);
            }
        }
    }
    if out.is_empty() {
        return Err(
            "no consistency model given (e.g. strict-serializable; every accepted \
                    name: docs/transactional-checking.md)"
                .to_string(),
        );
    }
    Ok(out)
}

fn out_edges<'a>(g: &'a [(&'a str, &'a [&'a str])], x: &str) -> impl Iterator<Item = &'a str> + 'a {
    let x = x.to_string();
    g.iter()
        .filter(move |(a, _)| *a == x)
        .flat_map(|(_, bs)| bs.iter().copied())
}

fn in_edges<'a>(g: &'a [(&'a str, &'a [&'a str])], x: &str) -> impl Iterator<Item = &'a str> + 'a {
    let x = x.to_string();
    g.iter()
        .filter(move |(_, bs)| bs.contains(&x.as_str()))
        .map(|(a, _)| *a)
}

fn closure<'a, F, I>(start: impl IntoIterator<Item = &'a str>, step: F) -> BTreeSet<&'a str>
where
    F: Fn(&'a str) -> I,
    I: Iterator<Item = &'a str>,
{
    let mut seen = BTreeSet::new();
    let mut stack: Vec<&str> = start.into_iter().collect();
    while let Some(x) = stack.pop() {
        if seen.insert(x) {
            stack.extend(step(x));
        }
    }
    seen
}

/// Every anomaly whose presence violates at least one of `models` (canonical names): the
/// directly forbidden anomalies of each model and of every weaker model, closed under
/// "anomalies that imply them".
pub fn forbidden_anomalies(models: &[&'static str]) -> HashSet<&'static str> {
    let weaker = closure(models.iter().copied(), |m| out_edges(STRONGER, m));
    let direct: Vec<&'static str> = weaker.iter().flat_map(|m| out_edges(FORBIDS, m)).collect();
    closure(direct, |a| in_edges(IMPLIES, a))
        .into_iter()
        .collect()
}

/// Anomalies implied by `found` (including `found`).
pub fn implied_anomalies<'a>(found: impl IntoIterator<Item = &'a str>) -> BTreeSet<&'a str> {
    closure(found, |a| out_edges(IMPLIES, a))
}

/// Every model ruled out by anomalies `found`: models forbidding any implied anomaly, and every
/// model stronger than those. Sorted by name.
pub fn ruled_out<'a>(found: impl IntoIterator<Item = &'a str>) -> BTreeSet<&'static str> {
    let implied = implied_anomalies(found);
    let direct: Vec<&'static str> = FORBIDS
        .iter()
        .filter(|(_, as_)| as_.iter().any(|a| implied.contains(a)))
        .map(|(m, _)| *m)
        .collect();
    closure(direct, |m| in_edges(STRONGER, m))
}

/// `m` and every model stronger than it.
pub fn stronger_or_equal(m: &'static str) -> BTreeSet<&'static str> {
    closure([m], |x| in_edges(STRONGER, x))
}

/// The weakest models of a ruled-out set (those no other member of the set is stronger than
/// … i.e. not implied-stronger-than another ruled out model): Elle's `:not`.
pub fn weakest(ruled: &BTreeSet<&'static str>) -> BTreeSet<&'static str> {
    ruled
        .iter()
        .copied()
        .filter(|m| {
            // m is weakest if no other ruled-out model is weaker than m.
            let weaker = closure([*m], |x| out_edges(STRONGER, x));
            !weaker.iter().any(|w| w != m && ruled.contains(w))
        })
        .collect()
}

/// Whether a cycle class name (e.g. `G-single-process`) is one of the 15 cycle anomalies.
pub fn cycle_class(base: usize, level: usize) -> String {
    format!("{}{}", CYCLE_BASES[base], LEVELS[level])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_model_name_is_short_and_suggests_close_names() {
        let e = canonical_model("eventual").unwrap_err();
        assert!(
            e.contains("\"eventual\"") && !e.contains("did you mean"),
            "{e}"
        );
        assert!(
            e.contains("docs/transactional-checking.md") && e.len() < 120,
            "{e}"
        );
        let e = canonical_model("serialisable").unwrap_err();
        assert!(e.contains("did you mean serializable"), "{e}");
        assert!(e.len() < 200, "{} chars: {e}", e.len());
        let e = canonical_model("Strict_Serializable").unwrap_err();
        assert!(e.contains("did you mean strict-serializable"), "{e}");
        let long = "x".repeat(10_000);
        assert!(canonical_model(&long).unwrap_err().len() < 400);
        assert_eq!(canonical_model("PL-3").unwrap(), "serializable");
        let e = validate_models(&[",".into()]).unwrap_err();
        assert!(e.len() < 120, "{e}");
    }

    #[test]
    fn snapshot_isolation_forbids_no_realtime_or_process_cycle() {
        let f = forbidden_anomalies(&["snapshot-isolation"]);
        for c in [
            "G0",
            "G1c",
            "G-single",
            "G-nonadjacent",
            "G1a",
            "G1b",
            "internal",
        ] {
            assert!(f.contains(c), "{c}");
        }
        assert!(f.contains("lost-update"));
        for c in f.iter() {
            assert!(
                !c.ends_with("-realtime") && !c.ends_with("-process"),
                "SI should not forbid {c}"
            );
        }
        assert!(!f.contains("G2-item"));
    }

    #[test]
    fn strict_serializable_forbids_every_cycle_class() {
        let f = forbidden_anomalies(&["strict-serializable"]);
        for b in 0..5 {
            for l in 0..3 {
                assert!(
                    f.contains(cycle_class(b, l).as_str()),
                    "{}",
                    cycle_class(b, l)
                );
            }
        }
    }

    #[test]
    fn g_single_rules_out_si_and_everything_stronger() {
        let r = ruled_out(["G-single"]);
        for m in [
            "snapshot-isolation",
            "repeatable-read",
            "serializable",
            "strict-serializable",
            "strong-session-snapshot-isolation",
        ] {
            assert!(r.contains(m), "{m}");
        }
        assert!(!r.contains("read-committed"));
        let w = weakest(&r);
        assert!(w.contains("snapshot-isolation") && w.contains("repeatable-read"));
        assert!(!w.contains("serializable"));
    }

    #[test]
    fn realtime_cycle_rules_out_only_strong_models() {
        let r = ruled_out(["G2-item-realtime"]);
        assert_eq!(
            r.into_iter().collect::<Vec<_>>(),
            vec!["strict-serializable"]
        );
        let r = ruled_out(["G-single-realtime"]);
        assert!(r.contains("strong-snapshot-isolation") && !r.contains("serializable"));
    }

    /// For every accepted model, each cycle-class test is decisive: if the test graph of a
    /// forbidden class (b, l) has any cycle, that cycle's class — whatever it is — is forbidden
    /// too. The checker's linear-time verdicts rely on this (see `search.rs`).
    #[test]
    fn every_forbidden_cycle_class_has_a_decisive_test() {
        for m in STRONGER.iter().map(|(m, _)| *m) {
            let f = forbidden_anomalies(&[m]);
            for b in 0..5 {
                for l in 0..3 {
                    if !f.contains(cycle_class(b, l).as_str()) {
                        continue;
                    }
                    // The G-single test runs on the same graph as G-nonadjacent.
                    let top = if b == 2 { 3 } else { b };
                    for b2 in 0..=top {
                        for l2 in 0..=l {
                            assert!(
                                f.contains(cycle_class(b2, l2).as_str()),
                                "{m}: forbids {} but not {}",
                                cycle_class(b, l),
                                cycle_class(b2, l2)
                            );
                        }
                    }
                }
            }
        }
    }
}

//! The YAML workloads of the tree's `workloads/` (docs/plan-format.md, "Workloads in YAML"):
//! each runs by name, is VALID against the in-memory `noop` target and INVALID against the lying
//! `liar` (which drops every second write: crates/netsplit-db/src/noop.rs), and `netsplit list` shows where it
//! came from.

use crate::support::{latest, netsplit, remove_tmp_dirs, results, show, tmp_dir};
use std::path::Path;

/// The names of `workloads/*.yaml`, sorted.
fn workload_files() -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("workloads");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("workloads/ exists")
        .flatten()
        .filter_map(|e| {
            let p = e.path();
            if p.extension()? != "yaml" {
                return None;
            }
            Some(p.file_stem()?.to_string_lossy().into_owned())
        })
        .collect();
    names.sort();
    names
}

#[test]
fn list_shows_every_yaml_workload_with_its_file() {
    let names = workload_files();
    assert!(names.len() >= 4, "at least four workloads: {names:?}");
    let out = netsplit(&["list"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    for n in &names {
        let file = format!("workloads/{n}.yaml");
        let row = text
            .lines()
            .position(|l| l.split_whitespace().next() == Some(n.as_str()))
            .unwrap_or_else(|| panic!("`netsplit list` names {n}\n{text}"));
        let from = text.lines().nth(row + 1).unwrap_or("");
        assert!(
            from.contains("from:") && from.ends_with(&file),
            "the line under {n} says it came from {file}: {from:?}\n{text}"
        );
    }
}

/// Runs workload `name` against `target` for 2 s in a fresh store; the exit code and the run's
/// `results.json`.
fn run(name: &str, target: &str) -> (Option<i32>, serde_json::Value, String) {
    let store = tmp_dir("workloads", &format!("{name}-{target}"));
    let out = netsplit(&[
        "test",
        "--target",
        target,
        "--workload",
        name,
        "--time-limit",
        "2",
        "--store",
        &store.to_string_lossy(),
    ]);
    let run = latest(&store).unwrap_or_else(|| panic!("a run of {name}\n{}", show(&out)));
    (out.status.code(), results(&run), show(&out))
}

#[test]
fn each_yaml_workload_is_valid_on_noop_and_invalid_on_liar() {
    for name in workload_files() {
        let (code, res, out) = run(&name, "noop");
        assert_eq!(code, Some(0), "{name} on noop is VALID\n{out}");
        assert_eq!(res["verdict"], "valid", "{name} on noop\n{out}");
        assert!(
            res["ops"].as_u64().unwrap_or(0) > 20,
            "{name} on noop ran operations: {}",
            res["ops"]
        );

        let (code, res, out) = run(&name, "liar");
        assert_eq!(code, Some(1), "{name} on liar is INVALID\n{out}");
        assert_eq!(res["verdict"], "invalid", "{name} on liar\n{out}");
        // the workload's own checker found it (not a harness statistic)
        let found = res["checkers"]
            .as_object()
            .expect("checkers")
            .iter()
            .any(|(c, r)| c != "stats" && r["valid"] == false);
        assert!(
            found,
            "{name} on liar: a workload checker says false\n{out}"
        );
        remove_tmp_dirs("workloads", &format!("{name}-noop"));
        remove_tmp_dirs("workloads", &format!("{name}-liar"));
    }
}

//! An application's own workload and target, registered the way the built-ins are, driven
//! through the whole command line: `examples/unique_ids.rs` (included here, so this test runs
//! its code, not a copy).

#[path = "../../examples/unique_ids.rs"]
#[allow(dead_code)]
mod unique_ids;

use crate::support::tmp_dir;

fn run(args: &[&str]) -> (u8, serde_json::Value) {
    let store = tmp_dir("extension", &args.join("-"));
    let mut argv = vec!["unique_ids", "test", "--store", store.to_str().unwrap()];
    argv.extend_from_slice(args);
    let code = netsplit::cli::run_with_args(unique_ids::registry(), argv);
    let latest = store.join("latest");
    let results: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(latest.join("results.json")).expect("results.json"),
    )
    .unwrap();
    (code, results)
}

#[test]
fn unique_ids_example_is_valid_and_its_buggy_toy_is_found_invalid() {
    let base = [
        "--target",
        "toy-ids",
        "--workload",
        "unique-ids",
        "--time-limit",
        "3",
        "--seed",
        "1",
    ];
    let (code, r) = run(&base);
    assert_eq!(code, 0, "{r}");
    let ids = &r["checkers"]["unique-ids"];
    assert_eq!(ids["valid"], true, "{ids}");
    assert!(ids["acknowledged"].as_u64().unwrap() > 100, "{ids}");

    let mut buggy = base.to_vec();
    buggy.extend(["--target-opt", "duplicate_every=50"]);
    let (code, r) = run(&buggy);
    assert_eq!(code, 1, "{r}");
    let ids = &r["checkers"]["unique-ids"];
    assert_eq!(ids["valid"], false, "{ids}");
    // Every 50th id handed out repeats the one before it: 49, 98, 147, … are acknowledged twice.
    let dups = ids["duplicated"].as_object().unwrap();
    assert!(dups.contains_key("49") && dups["49"] == 2, "{ids}");
    assert!(dups.contains_key("98") && dups["98"] == 2, "{ids}");
    assert_eq!(ids["lost_count"], 0, "{ids}");
}

#[test]
fn a_target_that_does_not_speak_the_workload_is_bad_input_before_anything_starts() {
    let store = tmp_dir("extension", "mismatch");
    let code = netsplit::cli::run_with_args(
        unique_ids::registry(),
        [
            "unique_ids",
            "test",
            "--store",
            store.to_str().unwrap(),
            "--target",
            "toy-ids",
            "--workload",
            "register",
        ],
    );
    assert_eq!(code, 254);
    assert!(!store.join("latest").exists(), "no run directory was made");
}

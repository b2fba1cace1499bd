//! The crate boundaries hold: the pure core (`netsplit-check`) depends on no async runtime, no
//! HTTP client, no SSH library and no database driver, so another project can use it from its
//! tests; the report crate on no SSH library and no database driver; and no crate depends on
//! one at its level or above (`netsplit-check` ← `netsplit-control` ← `netsplit-db`,
//! `netsplit-check` ← `netsplit-report`, all ← `netsplit`), read from `cargo metadata`; and each
//! database is a cargo feature of its own.

use std::process::Command;

#[test]
fn netsplit_check_depends_on_no_runtime_http_or_ssh() {
    let out = Command::new(env!("CARGO"))
        .args([
            "tree",
            "--offline",
            "--locked",
            "-p",
            "netsplit-check",
            "-e",
            "normal",
            "--prefix",
            "none",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("running cargo tree");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("netsplit-check"), "{text}");
    for forbidden in ["tokio", "reqwest", "ssh2", "hyper", "netsplit v"] {
        let hit = text
            .lines()
            .find(|l| l.split_whitespace().next() == Some(forbidden) || l.starts_with(forbidden));
        assert!(
            hit.is_none(),
            "netsplit-check depends on {forbidden}: {hit:?}"
        );
    }
}

/// What no crate of the workspace may depend on (directly or through another crate), by crate:
/// the checker core stays free of runtimes, HTTP, SSH and database drivers; the report crate of
/// SSH and database drivers.
const FORBIDDEN: &[(&str, &[&str])] = &[
    (
        "netsplit-check",
        &[
            "tokio",
            "reqwest",
            "ssh2",
            "axum",
            "hyper",
            "tokio-postgres",
        ],
    ),
    ("netsplit-report", &["ssh2", "tokio-postgres"]),
];

/// The workspace's crates from the bottom up: each may depend only on those before it.
const LAYERS: &[&str] = &[
    "netsplit-check",
    "netsplit-control",
    "netsplit-db",
    "netsplit-report",
    "netsplit",
];

/// Which crates lie below which: the databases stand on node control and the core;
/// netsplit-report is a sibling of both (it reads results, it drives nothing), so neither side
/// may depend on the other.
fn may_depend(from: &str, on: &str) -> bool {
    match from {
        "netsplit" => on != "netsplit",
        "netsplit-db" => on == "netsplit-check" || on == "netsplit-control",
        "netsplit-control" | "netsplit-report" => on == "netsplit-check",
        _ => false,
    }
}

/// Every broken rule in `cargo metadata`'s JSON: a forbidden dependency (with the path that
/// brings it in) or a workspace crate that depends on one at its level or above.
fn violations(meta: &serde_json::Value) -> Vec<String> {
    use std::collections::{BTreeMap, BTreeSet};
    let name_of: BTreeMap<&str, &str> = meta["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| Some((p["id"].as_str()?, p["name"].as_str()?)))
        .collect();
    // Normal and build dependencies (dev-dependencies do not reach an embedder).
    let mut deps: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for node in meta["resolve"]["nodes"].as_array().into_iter().flatten() {
        let Some(id) = node["id"].as_str() else {
            continue;
        };
        let ds = node["deps"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|d| {
                d["dep_kinds"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|k| k["kind"].is_null() || k["kind"] == "build")
            })
            .filter_map(|d| d["pkg"].as_str())
            .collect();
        deps.insert(id, ds);
    }
    let mut out = Vec::new();
    for &krate in LAYERS {
        let Some((&root, _)) = name_of.iter().find(|(_, n)| **n == krate) else {
            out.push(format!("{krate}: not in the workspace"));
            continue;
        };
        // Every crate it reaches, with the path to it.
        let mut path_to: BTreeMap<&str, Vec<&str>> = BTreeMap::from([(root, vec![krate])]);
        let mut todo = vec![root];
        let mut seen = BTreeSet::from([root]);
        while let Some(id) = todo.pop() {
            for &d in deps.get(id).map(Vec::as_slice).unwrap_or_default() {
                if seen.insert(d) {
                    let mut p = path_to[id].clone();
                    p.push(name_of.get(d).copied().unwrap_or(d));
                    path_to.insert(d, p);
                    todo.push(d);
                }
            }
        }
        let forbidden = FORBIDDEN
            .iter()
            .find(|(k, _)| *k == krate)
            .map(|(_, f)| *f)
            .unwrap_or_default();
        for (id, path) in &path_to {
            let name = name_of.get(id).copied().unwrap_or(id);
            let upward = LAYERS.contains(&name) && name != krate && !may_depend(krate, name);
            if forbidden.contains(&name) || upward {
                out.push(format!("{krate} depends on {name}: {}", path.join(" → ")));
            }
        }
    }
    out
}

/// The host's target triple, as cargo reports it (`cargo -vV`: `host: x86_64-unknown-linux-gnu`).
fn host_triple() -> String {
    let out = Command::new(env!("CARGO"))
        .arg("-vV")
        .output()
        .expect("running cargo -vV");
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| l.strip_prefix("host: "))
        .unwrap_or_else(|| panic!("cargo -vV names no host:\n{text}"))
        .trim()
        .to_string()
}

#[test]
fn crates_depend_only_downward_and_the_core_and_report_stay_free_of_heavy_crates() {
    // Only this machine's platform: a build downloads just the crates its platform needs, so on
    // a fresh machine an unfiltered `cargo metadata --offline` fails for want of, say,
    // `anstyle-wincon` (Windows only). The rules are about what is compiled here.
    let out = Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--offline",
            "--filter-platform",
            &host_triple(),
            "--format-version",
            "1",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("running cargo metadata");
    assert!(
        out.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).expect("metadata JSON");
    let broken = violations(&meta);
    assert!(broken.is_empty(), "layering broken:\n{}", broken.join("\n"));
}

#[test]
fn the_layering_rules_see_a_forbidden_crate_and_an_upward_dependency() {
    // A workspace where the core pulls in tokio through a helper, report depends on the
    // harness, and the databases on the report.
    let pkg = |n: &str| serde_json::json!({"id": format!("{n} 0.1"), "name": n});
    let dep =
        |n: &str| serde_json::json!({"pkg": format!("{n} 0.1"), "dep_kinds": [{"kind": null}]});
    let dev =
        |n: &str| serde_json::json!({"pkg": format!("{n} 0.1"), "dep_kinds": [{"kind": "dev"}]});
    let node = |n: &str, ds: Vec<serde_json::Value>| serde_json::json!({"id": format!("{n} 0.1"), "deps": ds});
    let packages: Vec<serde_json::Value> = [
        "netsplit-check",
        "netsplit-control",
        "netsplit-db",
        "netsplit-report",
        "netsplit",
        "helper",
        "tokio",
        "ssh2",
    ]
    .map(pkg)
    .to_vec();
    let meta = serde_json::json!({
        "packages": packages,
        "resolve": {"nodes": [
            node("netsplit-check", vec![dep("helper"), dev("ssh2")]),
            node("helper", vec![dep("tokio")]),
            node("netsplit-control", vec![dep("netsplit-check"), dep("ssh2")]),
            node("netsplit-db", vec![dep("netsplit-control"), dep("netsplit-report")]),
            node("netsplit-report", vec![dep("netsplit-check"), dep("netsplit")]),
            node("netsplit", vec![dep("netsplit-check"), dep("netsplit-control"), dep("netsplit-db"), dep("netsplit-report")]),
            node("tokio", vec![]),
            node("ssh2", vec![]),
        ]},
    });
    let v = violations(&meta);
    assert!(
        v.contains(&"netsplit-check depends on tokio: netsplit-check → helper → tokio".to_string()),
        "{v:?}"
    );
    assert!(
        v.iter()
            .any(|l| l.starts_with("netsplit-report depends on netsplit:")),
        "{v:?}"
    );
    assert!(
        v.iter()
            .any(|l| l == "netsplit-db depends on netsplit-report: netsplit-db → netsplit-report"),
        "{v:?}"
    );
    // Through the harness, report reaches SSH too; a dev-dependency reaches nothing.
    assert!(
        v.iter()
            .any(|l| l.starts_with("netsplit-report depends on ssh2:")),
        "{v:?}"
    );
    assert!(
        !v.iter()
            .any(|l| l.starts_with("netsplit-check depends on ssh2")),
        "{v:?}"
    );
}

/// The crates `netsplit` depends on with these cargo features (and no default ones).
fn tree_with(features: &str) -> Vec<String> {
    let mut args = vec![
        "tree",
        "--offline",
        "--locked",
        "-p",
        "netsplit",
        "-e",
        "normal",
        "--prefix",
        "none",
        "--no-default-features",
    ];
    if !features.is_empty() {
        args.extend(["--features", features]);
    }
    let out = Command::new(env!("CARGO"))
        .args(&args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("running cargo tree");
    assert!(
        out.status.success(),
        "cargo tree {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect()
}

/// One cargo feature per database (Cargo.toml, `[features]`): an application embedding netsplit
/// without `postgres` compiles no PostgreSQL driver and no OpenSSL bindings for it, without
/// `etcd` no HTTP client; each feature brings exactly its own.
#[test]
fn each_database_is_a_feature_and_leaving_one_out_leaves_its_crates_out() {
    let own: &[(&str, &[&str])] = &[
        ("postgres", &["tokio-postgres", "postgres-openssl"]),
        ("etcd", &["reqwest"]),
    ];
    let none = tree_with("");
    assert!(none.iter().any(|c| c == "netsplit"), "{none:?}");
    for (feature, crates) in own {
        let with = tree_with(feature);
        for c in *crates {
            assert!(
                !none.iter().any(|n| n == c),
                "netsplit without features depends on {c}"
            );
            assert!(
                with.iter().any(|n| n == c),
                "the feature {feature} brings {c}: {with:?}"
            );
        }
        for (other, theirs) in own.iter().filter(|(o, _)| o != feature) {
            for c in *theirs {
                assert!(
                    !with.iter().any(|n| n == c),
                    "the feature {feature} brings {other}'s {c}"
                );
            }
        }
    }
}

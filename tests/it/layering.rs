//! The crate boundary holds: the pure core (`netsplit-check`) depends on no async runtime, no
//! HTTP client and no SSH library, so another project can use it from its tests.

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

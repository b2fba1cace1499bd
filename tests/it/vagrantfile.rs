//! The repository's Vagrantfile (docs/real-nodes.md), evaluated by Ruby with a stand-in for
//! Vagrant (tests/vagrant/stub.rb) — no VM is started: the box, node count, memory and CPUs
//! come from the environment with the documented defaults; `vagrant status` and `vagrant
//! destroy` need no control key while `up` does; `up` writes a nodes file of exactly the
//! defined VMs; the `etcd` provisioner runs only on request and names every VM in its
//! cluster; every provisioner script is valid `sh`. Needs `ruby`; without it a loud SKIP.

use crate::support::{show, skip, tmp_dir};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(p)
}

/// A copy of the Vagrantfile in a fresh directory (it writes nodes.vagrant beside itself),
/// and a public key there; None after a SKIP when Ruby is missing.
fn setup(test: &str) -> Option<PathBuf> {
    if Command::new("ruby").arg("-v").output().is_err() {
        skip(
            &format!("vagrantfile::{test}"),
            "ruby is not installed (Debian: ruby)",
        );
        return None;
    }
    let dir = tmp_dir("vagrantfile", test);
    std::fs::copy(repo("Vagrantfile"), dir.join("Vagrantfile")).unwrap();
    std::fs::write(dir.join("key.pub"), "ssh-ed25519 AAAAC3Nz test@netsplit\n").unwrap();
    Some(dir)
}

/// `vagrant <args>` as the Vagrantfile sees it, with `env` (and nothing else of netsplit's).
fn vagrant(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut c = Command::new("ruby");
    c.arg(repo("tests/vagrant/stub.rb"))
        .arg(dir.join("Vagrantfile"))
        .args(args)
        .current_dir(dir);
    for (k, _) in std::env::vars() {
        if k.starts_with("NETSPLIT_") {
            c.env_remove(k);
        }
    }
    c.env("HOME", dir);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("ruby runs")
}

fn recorded(out: &Output) -> Value {
    assert!(out.status.success(), "{}", show(out));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}\n{}", show(out)))
}

fn nodes_file(dir: &Path) -> Option<Vec<String>> {
    let text = std::fs::read_to_string(dir.join("nodes.vagrant")).ok()?;
    Some(
        text.lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
            .map(str::to_string)
            .collect(),
    )
}

#[test]
fn settings_come_from_the_environment_and_the_nodes_file_lists_the_defined_vms() {
    let Some(dir) = setup("settings") else {
        return;
    };
    let key = dir.join("key.pub").display().to_string();
    let env = [
        ("NETSPLIT_KEY", key.as_str()),
        ("NETSPLIT_BOX", "local/bookworm64"),
        ("NETSPLIT_NODES", "3"),
        ("NETSPLIT_MEMORY", "512"),
        ("NETSPLIT_CPUS", "2"),
    ];
    let r = recorded(&vagrant(&dir, &env, &["up"]));
    assert_eq!(r["defines"], serde_json::json!(["n1", "n2", "n3"]));
    let s = &r["settings"];
    assert_eq!(s["vm.box"], "local/bookworm64");
    for p in ["virtualbox", "libvirt"] {
        assert_eq!(s[format!("vm.provider.{p}.memory")], 512, "{p}");
        assert_eq!(s[format!("vm.provider.{p}.cpus")], 2, "{p}");
    }
    assert_eq!(s["machine.n3.vm.hostname"], "n3");
    assert_eq!(
        nodes_file(&dir).expect("up writes nodes.vagrant"),
        vec!["192.168.56.11", "192.168.56.12", "192.168.56.13"]
    );
    // The base provisioner runs with `up`; the etcd one only when asked, naming every VM.
    let provs = r["provisions"].as_array().unwrap();
    let etcd: Vec<&Value> = provs.iter().filter(|p| p["name"] == "etcd").collect();
    assert_eq!(etcd.len(), 3);
    assert_eq!(etcd[0]["opts"]["run"], "never");
    assert_eq!(
        etcd[1]["opts"]["env"]["CLUSTER"],
        "n1=http://192.168.56.11:2380,n2=http://192.168.56.12:2380,n3=http://192.168.56.13:2380"
    );
    assert_eq!(etcd[1]["opts"]["env"]["ADDR"], "192.168.56.12");
    assert_eq!(
        provs.iter().filter(|p| p["name"] == "base").count(),
        3,
        "{provs:?}"
    );
    // Every provisioner script is valid sh (`sh -n`), heredocs included.
    for p in provs {
        let script = p["opts"]["inline"].as_str().expect("an inline script");
        let out = Command::new("sh")
            .args(["-n", "-c", script])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}: {}", p["name"], show(&out));
    }
    let etcd_script = etcd[0]["opts"]["inline"].as_str().unwrap();
    assert!(
        etcd_script.contains("\nEOF\n"),
        "the heredoc ends: {etcd_script}"
    );

    // The defaults, as documented.
    let r = recorded(&vagrant(&dir, &[("NETSPLIT_KEY", key.as_str())], &["up"]));
    assert_eq!(r["defines"].as_array().unwrap().len(), 5);
    assert_eq!(r["settings"]["vm.box"], "debian/bookworm64");
    assert_eq!(r["settings"]["vm.provider.libvirt.memory"], 1024);
    assert_eq!(r["settings"]["vm.provider.libvirt.cpus"], 1);
    assert_eq!(nodes_file(&dir).unwrap().len(), 5);
}

#[test]
fn status_and_destroy_need_no_key_up_does_and_bad_settings_are_one_line() {
    let Some(dir) = setup("nokey") else {
        return;
    };
    let none = [("NETSPLIT_KEY", "/nonexistent/netsplit.pub")];
    for cmd in [
        &["status"][..],
        &["destroy", "-f"],
        &["ssh-config"],
        &["halt"],
    ] {
        let r = recorded(&vagrant(&dir, &none, cmd));
        assert_eq!(r["defines"].as_array().unwrap().len(), 5, "{cmd:?}");
    }
    assert_eq!(nodes_file(&dir), None, "only up writes the nodes file");
    for cmd in ["up", "provision", "reload"] {
        let out = vagrant(&dir, &none, &[cmd]);
        assert!(!out.status.success(), "{cmd}: {}", show(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("no public key at /nonexistent/netsplit.pub"),
            "{cmd}: {err}"
        );
    }
    let key = dir.join("key.pub").display().to_string();
    for (k, v, says) in [
        (
            "NETSPLIT_NODES",
            "abc",
            "NETSPLIT_NODES=abc: expected a whole number from 1 to 9",
        ),
        ("NETSPLIT_NODES", "0", "NETSPLIT_NODES=0"),
        ("NETSPLIT_MEMORY", "12x", "NETSPLIT_MEMORY=12x"),
        ("NETSPLIT_CPUS", "-1", "NETSPLIT_CPUS=-1"),
        (
            "NETSPLIT_SUBNET",
            "10.0.0.0/8",
            "NETSPLIT_SUBNET=10.0.0.0/8",
        ),
    ] {
        let out = vagrant(&dir, &[("NETSPLIT_KEY", key.as_str()), (k, v)], &["status"]);
        assert!(!out.status.success(), "{k}={v}: {}", show(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "{k}={v}: one line: {err}");
        assert!(lines[0].contains(says), "{k}={v}: {err}");
    }
}

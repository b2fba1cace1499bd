//! `netsplit check` end to end: every labelled corpus history gets its expected verdict (through
//! the library and through the binary), malformed input ends in one line naming file and line
//! with exit 254, and exit codes follow the verdicts.

use crate::support::{netsplit, skip, tmp_dir};
use netsplit::checker::linear::{self, LinOptions, ModelKind};
use netsplit::checker::Validity;
use netsplit::history::import::{self, Format};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The labelled corpus: `$NETSPLIT_CORPUS`, else `../shared/corpus` next to the project.
fn corpus() -> Option<PathBuf> {
    let dir = std::env::var_os("NETSPLIT_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/corpus")));
    if dir.join("porcupine").is_dir() {
        Some(dir)
    } else {
        skip(
            "corpus tests",
            format!(
                "no corpus at {} (set NETSPLIT_CORPUS to the shared/corpus directory)",
                dir.display()
            ),
        );
        None
    }
}

/// `expected.tsv` of a corpus directory: file name → verdict.
fn expected(dir: &Path) -> BTreeMap<String, bool> {
    let text = std::fs::read_to_string(dir.join("expected.tsv")).expect("expected.tsv");
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let (f, v) = l.split_once('\t')?;
            Some((f.to_string(), v.trim() == "true"))
        })
        .collect()
}

fn check_corpus_with_library(sub: &str, format: Format, model: ModelKind) {
    let Some(c) = corpus() else { return };
    let dir = c.join(sub);
    let exp = expected(&dir);
    assert!(!exp.is_empty());
    for (file, want) in &exp {
        let text = std::fs::read_to_string(dir.join(file)).unwrap();
        let (ops, _) = import::parse(&text, format).unwrap();
        let r = linear::check(&ops, &LinOptions::new(model)).unwrap();
        assert_eq!(
            r.valid,
            Validity::from_bool(*want),
            "{sub}/{file}: got {:?}, expected {want}",
            r.valid
        );
    }
}

#[test]
fn etcd_corpus_verdicts_match_expected() {
    check_corpus_with_library(
        "porcupine/etcd",
        Format::PorcupineEtcd,
        ModelKind::CasRegister,
    );
}

#[test]
fn kv_corpus_verdicts_match_expected() {
    check_corpus_with_library("porcupine/kv", Format::PorcupineKv, ModelKind::Kv);
}

/// Runs `netsplit check --json` over every file of a corpus directory and compares verdicts.
fn check_corpus_with_cli(sub: &str, extra: &[&str]) -> (Output, Vec<Value>) {
    let c = corpus().expect("corpus present");
    let dir = c.join(sub);
    let exp = expected(&dir);
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log" || e == "txt"))
        .map(|p| p.display().to_string())
        .collect();
    files.sort();
    let mut args = vec!["check", "--json"];
    args.extend_from_slice(extra);
    args.extend(files.iter().map(String::as_str));
    let out = netsplit(&args);
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    assert_eq!(lines.len(), files.len(), "one object per file");
    for obj in &lines {
        let file = obj["file"].as_str().unwrap();
        let name = Path::new(file).file_name().unwrap().to_str().unwrap();
        for field in ["valid", "ops", "elapsed_ms"] {
            assert!(obj.get(field).is_some(), "{name}: no {field}");
        }
        if let Some(want) = exp.get(name) {
            assert_eq!(obj["valid"], Value::Bool(*want), "{name}");
        }
    }
    (out, lines)
}

#[test]
fn cli_reproduces_etcd_corpus_and_exits_1() {
    if corpus().is_none() {
        return;
    }
    let (out, lines) = check_corpus_with_cli(
        "porcupine/etcd",
        &["--format", "porcupine-etcd", "--model", "cas-register"],
    );
    assert_eq!(out.status.code(), Some(1), "some histories are invalid");
    let empty = lines
        .iter()
        .find(|o| o["file"].as_str().unwrap().ends_with("etcd_095.log"))
        .expect("etcd_095.log checked");
    assert_eq!(empty["valid"], Value::Bool(true));
    assert_eq!(empty["ops"], 0);
    // An invalid history explains itself.
    let bad = lines.iter().find(|o| o["valid"] == false).unwrap();
    let ev = &bad["failures"][0];
    assert!(
        ev["linearized"].is_array() && ev["stuck"].is_object(),
        "{ev}"
    );
}

#[test]
fn cli_reproduces_kv_corpus_per_key() {
    if corpus().is_none() {
        return;
    }
    let (out, lines) = check_corpus_with_cli(
        "porcupine/kv",
        &["--format", "porcupine-kv", "--model", "kv"],
    );
    assert_eq!(out.status.code(), Some(1));
    let bad = lines
        .iter()
        .find(|o| o["file"].as_str().unwrap().ends_with("c10-bad.txt"))
        .unwrap();
    assert!(bad["failures"][0]["key"].is_string(), "{bad}");
    assert_eq!(bad["keys"], 10);
    // Some c50-bad keys take minutes to refute; the first refuted key ends the check.
    let c50 = lines
        .iter()
        .find(|o| o["file"].as_str().unwrap().ends_with("c50-bad.txt"))
        .unwrap();
    assert_eq!(c50["valid"], false);
    assert!(
        c50["keys_skipped"].as_u64().unwrap() > 0,
        "{}",
        c50["keys_skipped"]
    );
}

/// A fresh file in the temp dir with `text`.
fn temp_file(name: &str, text: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = tmp_dir("check", &N.fetch_add(1, Ordering::Relaxed).to_string());
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// Asserts exit 254 and one stderr line naming the file and containing `needle`.
fn assert_bad_input(out: &Output, file: &str, needle: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(254), "stderr: {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    assert!(err.starts_with("netsplit: error: "), "{err}");
    assert!(err.contains(file), "names the file: {err}");
    assert!(err.contains(needle), "expected '{needle}' in: {err}");
}

#[test]
fn malformed_edn_names_file_and_line() {
    let p = temp_file(
        "hist.edn",
        "[{:process 0 :type :invoke :f :read :value nil}\n\
         {:process 0 :type :ok :f :read :value 1}\n\
         {:process 0 :type :bogus :f :read :value 1}]\n",
    );
    let out = netsplit(&["check", "--model", "register", p.to_str().unwrap()]);
    assert_bad_input(&out, "hist.edn", "line 3: expected :type");
}

#[test]
fn unclosed_edn_vector_is_bad_input() {
    let p = temp_file(
        "open.edn",
        "[{:process 0 :type :invoke :f :read :value nil}\n",
    );
    let out = netsplit(&[
        "check",
        "--format",
        "jepsen-edn",
        "--model",
        "register",
        p.to_str().unwrap(),
    ]);
    assert_bad_input(&out, "open.edn", "line 2");
}

#[test]
fn malformed_jsonl_names_file_and_line() {
    let p = temp_file(
        "history.jsonl",
        "{\"process\":0,\"type\":\"invoke\",\"f\":\"read\"}\n{\"process\":0,\"type\":\"ok\",\n{}\n",
    );
    let out = netsplit(&["check", "--model", "register", p.to_str().unwrap()]);
    assert_bad_input(&out, "history.jsonl", "line 2:");
}

#[test]
fn malformed_etcd_log_names_file_and_line() {
    let p = temp_file(
        "etcd.log",
        "INFO  jepsen.util - 0\t:invoke\t:read\tnil\nINFO  jepsen.util - 0\t:ok\t:read\t[1\n",
    );
    let out = netsplit(&["check", "--format", "porcupine-etcd", p.to_str().unwrap()]);
    assert_bad_input(&out, "etcd.log", "line 2: bad value");
}

#[test]
fn wrong_value_shape_names_the_line_of_the_event() {
    // Keyed register, but the third event's value is not a [key, value] tuple.
    let p = temp_file(
        "keyed.jsonl",
        "{\"process\":0,\"type\":\"invoke\",\"f\":\"write\",\"value\":[1,2]}\n\
         {\"process\":0,\"type\":\"ok\",\"f\":\"write\",\"value\":[1,2]}\n\n\
         {\"process\":1,\"type\":\"invoke\",\"f\":\"write\",\"value\":7}\n",
    );
    let out = netsplit(&["check", "--workload", "register", p.to_str().unwrap()]);
    assert_bad_input(&out, "keyed.jsonl", "line 4: keyed operation value");
}

#[test]
fn completion_without_invocation_is_bad_input() {
    let p = temp_file(
        "orphan.jsonl",
        "{\"process\":3,\"type\":\"ok\",\"f\":\"read\",\"value\":1}\n",
    );
    let out = netsplit(&["check", "--model", "register", p.to_str().unwrap()]);
    assert_bad_input(&out, "orphan.jsonl", "line 1: process 3 completes");
}

#[test]
fn missing_file_and_bad_options_are_bad_usage() {
    let out = netsplit(&["check", "--model", "register", "/nonexistent/h.jsonl"]);
    assert_bad_input(&out, "/nonexistent/h.jsonl", "No such file");
    let p = temp_file("ok.jsonl", "");
    let f = p.to_str().unwrap();
    let out = netsplit(&["check", "--model", "queue", f]);
    assert_eq!(out.status.code(), Some(254));
    assert!(String::from_utf8_lossy(&out.stderr).contains("fifo-queue"));
    let out = netsplit(&["check", "--format", "xml", "--model", "register", f]);
    assert_eq!(out.status.code(), Some(254));
    let out = netsplit(&["check", "--model", "register", "--initial", "{nope", f]);
    assert_eq!(out.status.code(), Some(254));
    let out = netsplit(&["check", "--workload", "nope", f]);
    assert_eq!(out.status.code(), Some(254));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown workload \"nope\""));
    let out = netsplit(&["check", "--model", "register", "--workload", "register", f]);
    assert_eq!(out.status.code(), Some(254));
}

const VALID_EDN: &str = "; Knossos-style register history\n\
    {:process 0, :type :invoke, :f :write, :value 1}\n\
    {:process 1, :type :invoke, :f :read, :value nil}\n\
    {:process 0, :type :ok, :f :write, :value 1}\n\
    {:process 1, :type :ok, :f :read, :value 1}\n\
    {:process :nemesis, :type :info, :f :start, :value nil}\n\
    {:process 1, :type :invoke, :f :read, :value nil}\n\
    {:process 1, :type :ok, :f :read, :value nil}\n";

#[test]
fn valid_edn_history_exits_0_and_nil_read_is_unknown() {
    let p = temp_file("good.edn", VALID_EDN);
    let out = netsplit(&[
        "check",
        "--model",
        "register",
        "--json",
        p.to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let obj: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(obj["valid"], true);
    assert_eq!(obj["format"], "jepsen-edn");
    assert_eq!(obj["ops"], 3);
    assert_eq!(obj["unknown_reads"], 1);
}

#[test]
fn human_output_says_invalid_and_exits_1() {
    let text = VALID_EDN.replace(":ok, :f :read, :value 1}", ":ok, :f :read, :value 2}");
    let p = temp_file("bad.edn", &text);
    let out = netsplit(&["check", "--model", "register", p.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let s = String::from_utf8_lossy(&out.stdout);
    assert!(s.contains("bad.edn: INVALID"), "{s}");
    assert!(s.contains("read"), "{s}");
}

#[test]
fn exhausted_time_limit_is_unknown_exit_2() {
    // Twelve concurrent writes, then a read of a value nobody wrote: thousands of
    // configurations to refute, so a zero time limit stops the search first.
    let mut lines = Vec::new();
    for p in 0..12 {
        lines.push(format!(
            "{{\"process\":{p},\"type\":\"invoke\",\"f\":\"write\",\"value\":{p}}}"
        ));
    }
    for p in 0..12 {
        lines.push(format!(
            "{{\"process\":{p},\"type\":\"ok\",\"f\":\"write\",\"value\":{p}}}"
        ));
    }
    lines.push("{\"process\":20,\"type\":\"invoke\",\"f\":\"read\"}".into());
    lines.push("{\"process\":20,\"type\":\"ok\",\"f\":\"read\",\"value\":99}".into());
    let p = temp_file("hard.jsonl", &(lines.join("\n") + "\n"));
    let f = p.to_str().unwrap();
    let out = netsplit(&[
        "check",
        "--model",
        "register",
        "--time-limit",
        "0",
        "--json",
        f,
    ]);
    assert_eq!(out.status.code(), Some(2));
    let obj: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(obj["valid"], "unknown");
    let out = netsplit(&["check", "--model", "register", f]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn register_workload_checks_keys_independently_with_and_without_partition() {
    let text = "{\"process\":0,\"type\":\"invoke\",\"f\":\"write\",\"value\":[\"a\",1]}\n\
                {\"process\":1,\"type\":\"invoke\",\"f\":\"cas\",\"value\":[\"b\",[null,2]]}\n\
                {\"process\":0,\"type\":\"ok\",\"f\":\"write\",\"value\":[\"a\",1]}\n\
                {\"process\":1,\"type\":\"ok\",\"f\":\"cas\",\"value\":[\"b\",[null,2]]}\n\
                {\"process\":0,\"type\":\"invoke\",\"f\":\"read\",\"value\":[\"b\",null]}\n\
                {\"process\":0,\"type\":\"ok\",\"f\":\"read\",\"value\":[\"b\",2]}\n";
    let p = temp_file("keyed.jsonl", text);
    let f = p.to_str().unwrap();
    for extra in [None, Some("--no-partition")] {
        let mut args = vec!["check", "--workload", "register", "--json", f];
        args.extend(extra);
        let out = netsplit(&args);
        assert_eq!(out.status.code(), Some(0), "{extra:?}");
        let obj: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(obj["keys"], 2);
        assert_eq!(obj["partitioned"], extra.is_none());
    }
}

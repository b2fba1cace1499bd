//! `netsplit check` end to end: every labelled corpus history gets its expected verdict (through
//! the library and through the binary), malformed input ends in one line naming file and line
//! with exit 254, and exit codes follow the verdicts.

use crate::support::{netsplit, show, skip, tmp_dir};
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

// ---- Bad input: every case ends in one line naming file and line, exit 254, or a correct
// verdict; never a panic, a stack overflow or gigabytes of memory. ----

/// Runs `netsplit args…` with its address space capped at `cap_mib` MiB (one rayon thread and
/// two malloc arenas, so that the cap bounds what the process uses, not what it reserves). An
/// allocation past the cap aborts the process, which no assertion on exit 254 or a verdict
/// lets through: this is how the tests say "bounded memory" without timing or sampling.
fn netsplit_capped(args: &[&str], cap_mib: u64) -> Output {
    use std::os::unix::process::CommandExt;
    let mut cmd = std::process::Command::new(crate::support::bin());
    cmd.args(args)
        .env("RAYON_NUM_THREADS", "1")
        .env("MALLOC_ARENA_MAX", "2");
    let bytes = cap_mib << 20;
    // SAFETY: setrlimit is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            let lim = libc::rlimit {
                rlim_cur: bytes,
                rlim_max: bytes,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.output().expect("running netsplit")
}

/// Asserts exit 254 and one stderr line (no file: an option is wrong) containing `needle`.
fn assert_bad_option(out: &Output, needle: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(254), "stderr: {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    assert!(err.starts_with("netsplit: error: "), "{err}");
    assert!(err.contains(needle), "expected '{needle}' in: {err}");
}

/// A valid two-op register history: write 1, then read 1.
const WRITE_READ: &str = "{\"process\":0,\"type\":\"invoke\",\"f\":\"write\",\"value\":1}\n\
    {\"process\":0,\"type\":\"ok\",\"f\":\"write\",\"value\":1}\n\
    {\"process\":1,\"type\":\"invoke\",\"f\":\"read\",\"value\":null}\n\
    {\"process\":1,\"type\":\"ok\",\"f\":\"read\",\"value\":1}\n";

#[test]
fn extreme_time_limits_and_memory_caps_give_a_verdict_or_one_line() {
    let p = temp_file("wr.jsonl", WRITE_READ);
    let f = p.to_str().unwrap();
    // Huge limits are no limits: the verdict is the real one.
    for (flag, v) in [
        ("--time-limit", "1e19"),
        ("--time-limit", "1e300"),
        ("--time-limit", "inf"),
        ("--max-memory", "1e300"),
        ("--max-memory", "18446744073709551615"),
    ] {
        let out = netsplit(&["check", "--model", "register", flag, v, f]);
        assert_eq!(out.status.code(), Some(0), "{flag} {v}: {}", show(&out));
    }
    for (flag, v) in [
        ("--time-limit", "nan"),
        ("--time-limit", "-1"),
        ("--time-limit", "soon"),
        ("--max-memory", "-5"),
        ("--max-memory", "NaN"),
        ("--max-memory", "lots"),
    ] {
        let out = netsplit(&["check", "--model", "register", flag, v, f]);
        assert_bad_option(&out, &format!("{flag} must be a non-negative number"));
    }
}

#[test]
fn edn_nested_10000_deep_is_bad_input_not_a_stack_overflow() {
    let deep = |open: &str| open.repeat(10_000);
    let cases = [
        ("deep.edn", "jepsen-edn", format!("[{}\n", deep("["))),
        (
            "deep-op.edn",
            "jepsen-edn",
            format!("{{:process 0 :type :invoke :f :write :value {}}}\n", deep("{:a ")),
        ),
        (
            "deep.log",
            "porcupine-etcd",
            format!(
                "INFO  jepsen.util - 0\t:invoke\t:read\tnil\nINFO  jepsen.util - 0\t:ok\t:read\t{}\n",
                deep("[")
            ),
        ),
        (
            "deep-kv.txt",
            "porcupine-kv",
            format!(
                "{{:process 0, :type :invoke, :f :get, :key \"1\", :value {}}}\n",
                deep("(")
            ),
        ),
    ];
    for (name, format, text) in cases {
        let p = temp_file(name, &text);
        let out = netsplit(&[
            "check",
            "--format",
            format,
            "--model",
            if format == "porcupine-kv" {
                "kv"
            } else {
                "cas-register"
            },
            p.to_str().unwrap(),
        ]);
        let line = if name == "deep.log" { 2 } else { 1 };
        assert_bad_input(&out, name, &format!("line {line}: "));
        assert_bad_input(&out, name, "nested more than 128 levels deep");
    }
}

#[test]
fn oversized_events_are_refused_in_bounded_memory() {
    // A JSON Lines event with a 70 MB array (the unbounded reader took 2.9-7.8 GB for 200 MB).
    let head = "{\"process\":0,\"type\":\"invoke\",\"f\":\"write\",\"value\":[";
    let mut text = String::with_capacity(70 << 20);
    text.push_str(head);
    while text.len() < 70 << 20 {
        text.push_str("0,");
    }
    text.push_str("0]}\n");
    let p = temp_file("huge-line.jsonl", &text);
    drop(text);
    let out = netsplit_capped(&["check", "--model", "register", p.to_str().unwrap()], 400);
    assert_bad_input(&out, "huge-line.jsonl", "line 1: line longer than 64 MiB");
    std::fs::remove_file(&p).unwrap();

    // Just over a million values in a short line (2 MB): refused by count.
    let text = format!("{head}{}0]}}\n", "0,".repeat(1 << 20));
    let p = temp_file("wide.jsonl", &text);
    let out = netsplit_capped(&["check", "--model", "register", p.to_str().unwrap()], 200);
    assert_bad_input(&out, "wide.jsonl", "more than 1048576 values in one event");

    // The same in EDN (a vector of 20M elements asked for gigabytes).
    let text = format!(
        "[{{:process 0 :type :invoke :f :write :value [{}]}}]\n",
        "0 ".repeat(1 << 20)
    );
    let p = temp_file("wide.edn", &text);
    let out = netsplit_capped(&["check", "--model", "register", p.to_str().unwrap()], 200);
    assert_bad_input(
        &out,
        "wide.edn",
        "line 1: more than 1048576 values in one form",
    );
}

#[test]
fn a_report_of_events_30_years_apart_stays_small() {
    let dir = tmp_dir("check", "far-times");
    std::fs::write(dir.join("plan.yaml"), "{}\n").unwrap();
    std::fs::write(
        dir.join("history.jsonl"),
        "{\"process\":0,\"type\":\"invoke\",\"f\":\"write\",\"value\":[\"k\",1],\"time\":0}\n\
         {\"process\":0,\"type\":\"ok\",\"f\":\"write\",\"value\":[\"k\",1],\"time\":1000000000000000000}\n",
    )
    .unwrap();
    let out = netsplit_capped(&["analyze", dir.to_str().unwrap()], 300);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let html = std::fs::metadata(dir.join("report.html")).unwrap().len();
    assert!(html < 1 << 20, "report.html is {html} bytes");
}

#[test]
fn integers_beyond_64_bits_are_refused_not_compared_as_floats() {
    // A read of 2^64 for a write of 2^64 + 1: equal as floats, so this was VALID.
    let jsonl =
        "{\"process\":0,\"type\":\"invoke\",\"f\":\"write\",\"value\":18446744073709551617}\n\
        {\"process\":0,\"type\":\"ok\",\"f\":\"write\",\"value\":18446744073709551617}\n\
        {\"process\":1,\"type\":\"invoke\",\"f\":\"read\",\"value\":null}\n\
        {\"process\":1,\"type\":\"ok\",\"f\":\"read\",\"value\":18446744073709551616}\n";
    let p = temp_file("big.jsonl", jsonl);
    let out = netsplit(&["check", "--model", "register", p.to_str().unwrap()]);
    assert_bad_input(
        &out,
        "big.jsonl",
        "line 1: column 50: integer 18446744073709551617 does not fit in 64 bits",
    );
    let edn = "{:process 0 :type :invoke :f :write :value 18446744073709551617N}\n\
        {:process 0 :type :ok :f :write :value 18446744073709551617N}\n";
    let p = temp_file("big.edn", edn);
    let out = netsplit(&["check", "--model", "register", p.to_str().unwrap()]);
    assert_bad_input(
        &out,
        "big.edn",
        "line 1: integer 18446744073709551617 does not fit",
    );
    let log = "INFO  jepsen.util - 0\t:invoke\t:write\t18446744073709551617\n";
    let p = temp_file("big.log", log);
    let out = netsplit(&["check", "--format", "porcupine-etcd", p.to_str().unwrap()]);
    assert_bad_input(&out, "big.log", "line 1: bad value");
    // Decimals that no float holds exactly are refused too; exact ones pass.
    let p = temp_file(
        "float.jsonl",
        &WRITE_READ.replace(":1}", ":1.00000000000000001}"),
    );
    let out = netsplit(&["check", "--model", "register", p.to_str().unwrap()]);
    assert_bad_input(&out, "float.jsonl", "cannot be represented exactly");
    let p = temp_file(
        "exact.jsonl",
        &WRITE_READ.replace(":1}", ":0.30000000000000004}"),
    );
    let out = netsplit(&["check", "--model", "register", p.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    // And so in --initial.
    let p = temp_file("wr.jsonl", WRITE_READ);
    let out = netsplit(&[
        "check",
        "--model",
        "register",
        "--initial",
        "18446744073709551616",
        p.to_str().unwrap(),
    ]);
    assert_bad_option(&out, "--initial is not usable JSON: column 1: integer");
}

#[test]
fn etcd_log_process_that_is_not_a_number_or_the_nemesis_is_bad_input() {
    // These were taken for nemesis events, dropping the client's read from the check.
    for proc in ["-1", "3x", ":nemesis?"] {
        let log = format!(
            "INFO  jepsen.util - 0\t:invoke\t:write\t1\n\
             INFO  jepsen.util - 0\t:ok\t:write\t1\n\
             INFO  jepsen.util - {proc}\t:invoke\t:read\tnil\n\
             INFO  jepsen.util - {proc}\t:ok\t:read\t2\n"
        );
        let p = temp_file("proc.log", &log);
        let out = netsplit(&["check", "--format", "porcupine-etcd", p.to_str().unwrap()]);
        assert_bad_input(
            &out,
            "proc.log",
            &format!("line 3: expected the process to be a non-negative integer or :nemesis, got '{proc}'"),
        );
    }
    let log = "INFO  jepsen.util - :nemesis\t:info\t:start\tnil\n\
               INFO  jepsen.util - 0\t:invoke\t:read\tnil\n\
               INFO  jepsen.util - 0\t:ok\t:read\tnil\n";
    let p = temp_file("nemesis.log", log);
    let out = netsplit(&[
        "check",
        "--format",
        "porcupine-etcd",
        "--json",
        p.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let obj: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (obj["ops"].as_u64(), obj["events"].as_u64()),
        (Some(1), Some(3))
    );
}

#[test]
fn initial_state_must_fit_the_model() {
    let mutex = "{\"process\":0,\"type\":\"invoke\",\"f\":\"acquire\"}\n\
                 {\"process\":0,\"type\":\"ok\",\"f\":\"acquire\"}\n";
    let p = temp_file("mutex.jsonl", mutex);
    let f = p.to_str().unwrap();
    for bad in ["\"x\"", "1", "{\"held\":true}", "[true]"] {
        let out = netsplit(&["check", "--model", "mutex", "--initial", bad, f]);
        assert_bad_option(&out, "--initial: the initial state of mutex must be false");
    }
    let out = netsplit(&["check", "--model", "mutex", "--initial", "true", f]);
    assert_eq!(out.status.code(), Some(1), "held: acquiring is impossible");
    let out = netsplit(&["check", "--model", "mutex", "--initial", "false", f]);
    assert_eq!(out.status.code(), Some(0));
    // Not JSON, or too deep: one line naming the column, the input cut.
    let out = netsplit(&["check", "--model", "register", "--initial", "{nope", f]);
    assert_bad_option(
        &out,
        "--initial is not usable JSON: column 2: key must be a string",
    );
    let deep = "[".repeat(10_000);
    let out = netsplit(&["check", "--model", "register", "--initial", &deep, f]);
    assert_bad_option(&out, "nested more than 128 levels deep");
    assert!(out.stderr.len() < 400, "{} bytes", out.stderr.len());
    // A transactional workload has no initial state to set.
    let out = netsplit(&["check", "--workload", "list-append", "--initial", "0", f]);
    assert_bad_option(&out, "--initial applies to linearizability models");
}

#[test]
fn multi_register_initial_map_names_each_registers_value() {
    let text = "{\"process\":0,\"type\":\"invoke\",\"f\":\"txn\",\"value\":[[\"r\",\"x\",null],[\"r\",\"y\",null]]}\n\
                {\"process\":0,\"type\":\"ok\",\"f\":\"txn\",\"value\":[[\"r\",\"x\",0],[\"r\",\"y\",7]]}\n";
    let p = temp_file("multi.jsonl", text);
    let f = p.to_str().unwrap();
    let run = |initial: &str| {
        netsplit(&[
            "check",
            "--model",
            "multi-register",
            "--initial",
            initial,
            f,
        ])
        .status
        .code()
    };
    assert_eq!(run("{\"x\":0,\"y\":7}"), Some(0));
    assert_eq!(run("{\"x\":0,\"y\":0}"), Some(1));
    assert_eq!(run("null"), Some(1));
    let out = netsplit(&["check", "--model", "multi-register", "--initial", "0", f]);
    assert_bad_option(&out, "must be a map from register to initial value");
}

#[test]
fn errors_quote_at_most_a_little_of_a_huge_line() {
    // A 50 MB value in an etcd log line: the error quotes ~100 characters of it.
    let mut log = String::from("INFO  jepsen.util - 0\t:invoke\t:write\t\"");
    log.push_str(&"a".repeat(50 << 20));
    log.push('\n');
    let p = temp_file("long.log", &log);
    drop(log);
    let out = netsplit(&["check", "--format", "porcupine-etcd", p.to_str().unwrap()]);
    assert_bad_input(&out, "long.log", "line 1: bad value '\"aaaa");
    assert!(
        out.stderr.len() < 500,
        "{} bytes of error",
        out.stderr.len()
    );
    std::fs::remove_file(&p).unwrap();
    // A long string where a process belongs, in JSON Lines.
    let text = format!(
        "{{\"process\":\"{}\",\"type\":\"invoke\",\"f\":\"read\"}}\n",
        "p".repeat(1 << 20)
    );
    let p = temp_file("long.jsonl", &text);
    let out = netsplit(&["check", "--model", "register", p.to_str().unwrap()]);
    assert_bad_input(&out, "long.jsonl", "line 1: column ");
    assert!(
        out.stderr.len() < 500,
        "{} bytes of error",
        out.stderr.len()
    );
}

#[test]
fn jsonl_errors_name_one_position() {
    let p = temp_file(
        "pos.jsonl",
        "{\"process\":0,\"type\":\"invoke\",\"f\":\"read\"}\n  {\"process\":0,\"type\":\"ok\",\n",
    );
    let out = netsplit(&["check", "--model", "register", p.to_str().unwrap()]);
    assert_bad_input(
        &out,
        "pos.jsonl",
        "pos.jsonl: line 2: column 27: EOF while parsing",
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("at line"), "two positions: {err}");
}

#[test]
fn a_byte_order_mark_is_accepted() {
    for (name, text) in [
        ("bom.jsonl", format!("\u{feff}{WRITE_READ}")),
        ("bom.edn", format!("\u{feff}{VALID_EDN}")),
    ] {
        let p = temp_file(name, &text);
        let out = netsplit(&["check", "--model", "register", p.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(0), "{name}: {}", show(&out));
    }
}

#[test]
fn malformed_micro_op_is_named_not_called_a_difference() {
    let text = "{:process 0 :type :invoke :f :txn :value [[:append 1]]}\n\
                {:process 0 :type :ok :f :txn :value [[:append 1]]}\n";
    let p = temp_file("append.edn", text);
    let out = netsplit(&["check", "--workload", "list-append", p.to_str().unwrap()]);
    assert_bad_input(
        &out,
        "append.edn",
        "line 2: micro-op 0 of the ok completion must be [f, key, value], got [\"append\",1]",
    );
}

// ---- Consistency models below linearizability (`--consistency-models`). ----

/// (process, f, key, value written or read).
type HistOp<'a> = (u64, &'a str, &'a str, Value);

/// A JSON Lines register history from (process, f, key, value-or-result) ops, each invoked and
/// completed `ok` before the next.
fn register_history(ops: &[HistOp]) -> String {
    let mut s = String::new();
    for (p, f, k, v) in ops {
        let inv = if *f == "read" { Value::Null } else { v.clone() };
        for (t, val) in [("invoke", inv), ("ok", v.clone())] {
            s.push_str(
                &serde_json::json!({"process": p, "type": t, "f": f, "value": [k, val]})
                    .to_string(),
            );
            s.push('\n');
        }
    }
    s
}

fn check_models_json(name: &str, text: &str) -> (Output, Value) {
    let p = temp_file(name, text);
    let out = netsplit(&[
        "check",
        "--workload",
        "register",
        "--consistency-models",
        "all",
        "--json",
        p.to_str().unwrap(),
    ]);
    let obj = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{}", show(&out)));
    (out, obj)
}

/// Process 0 writes x = 1, then reads the initial value: read-your-writes is violated (and so
/// everything stronger), the other session guarantees hold; the witness names both ops.
#[test]
fn a_read_of_the_initial_value_after_ones_own_write_violates_read_your_writes_only() {
    let (out, obj) = check_models_json(
        "ryw.jsonl",
        &register_history(&[
            (0, "write", "x", 1.into()),
            (1, "read", "x", 1.into()),
            (0, "read", "x", Value::Null),
        ]),
    );
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert_eq!(obj["valid"], false);
    let m = &obj["models"];
    for (model, want) in [
        ("linearizable", false),
        ("sequential", false),
        ("causal", false),
        ("read-your-writes", false),
        ("monotonic-reads", true),
        ("monotonic-writes", true),
        ("writes-follow-reads", true),
    ] {
        assert_eq!(m[model]["valid"], want, "{model}: {}", m[model]);
    }
    let wit: Vec<u64> = m["read-your-writes"]["witness"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["invoke"].as_u64().unwrap())
        .collect();
    assert_eq!(wit, [0, 4], "the write and the read that missed it");
    assert_eq!(obj["strongest"], "monotonic-reads");
}

/// Process 0's write completes before process 1 reads the initial value: not linearizable
/// (real time), but sequential and every weaker model hold; the line says so.
#[test]
fn a_stale_read_by_another_process_is_sequential_but_not_linearizable() {
    let text = register_history(&[(0, "write", "x", 1.into()), (1, "read", "x", Value::Null)]);
    let (out, obj) = check_models_json("seq.jsonl", &text);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert_eq!(obj["models"]["linearizable"]["valid"], false);
    for model in [
        "sequential",
        "causal",
        "read-your-writes",
        "monotonic-reads",
        "monotonic-writes",
        "writes-follow-reads",
    ] {
        assert_eq!(obj["models"][model]["valid"], true, "{model}");
    }
    assert_eq!(obj["strongest"], "sequential");
    let p = temp_file("seq-human.jsonl", &text);
    let out = netsplit(&[
        "check",
        "--workload",
        "register",
        "--consistency-models",
        "sequential,causal",
        p.to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "linearizable not requested: {}",
        show(&out)
    );
    let line = String::from_utf8_lossy(&out.stdout);
    assert!(
        line.contains("valid") && line.contains("sequential ✔ causal ✔"),
        "{line}"
    );
    // the default is linearizable alone, as before
    let out = netsplit(&[
        "check",
        "--workload",
        "register",
        "--json",
        p.to_str().unwrap(),
    ]);
    let obj: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(obj.get("models").is_none(), "{obj}");
}

/// The store-buffering pattern: each process writes its key, then reads the other's initial
/// value. Causal (each read's causal past holds no write to its key) but not sequential.
#[test]
fn store_buffering_is_causal_but_not_sequential() {
    let text = register_history(&[
        (0, "write", "x", 1.into()),
        (1, "write", "y", 1.into()),
        (0, "read", "y", Value::Null),
        (1, "read", "x", Value::Null),
    ]);
    let (_, obj) = check_models_json("sb.jsonl", &text);
    assert_eq!(obj["models"]["sequential"]["valid"], false);
    assert_eq!(obj["models"]["causal"]["valid"], true);
    assert_eq!(obj["strongest"], "causal");
}

/// A misspelt model is one line listing the valid names, exit 254; so is a list of register
/// models given to a model they do not apply to.
#[test]
fn an_unknown_consistency_model_is_bad_usage() {
    let p = temp_file("m.jsonl", &register_history(&[(0, "write", "x", 1.into())]));
    let f = p.to_str().unwrap();
    let out = netsplit(&[
        "check",
        "--workload",
        "register",
        "--consistency-models",
        "causal,sequentail",
        f,
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(254), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(
        err.contains("\"sequentail\"") && err.contains("read-your-writes") && err.contains("all"),
        "{err}"
    );
    let out = netsplit(&[
        "check",
        "--model",
        "set",
        "--consistency-models",
        "causal",
        f,
    ]);
    assert_eq!(out.status.code(), Some(254), "{}", show(&out));
    // the transactional names still go to list-append
    let out = netsplit(&[
        "check",
        "--workload",
        "list-append",
        "--consistency-models",
        "causal",
        f,
    ]);
    assert_eq!(out.status.code(), Some(254), "{}", show(&out));
}

/// The examples of docs/consistency-models.md for the session guarantees and causal
/// consistency: each violates what the document says it does, and nothing weaker.
#[test]
fn the_documented_examples_violate_the_documented_models() {
    let one = Value::from(1);
    let cases: [(&str, Vec<HistOp>, &[&str]); 3] = [
        (
            "mr",
            vec![
                (0, "write", "x", one.clone()),
                (1, "read", "x", one.clone()),
                (1, "read", "x", Value::Null),
            ],
            &["monotonic-reads"],
        ),
        (
            "mw",
            vec![
                (0, "write", "x", one.clone()),
                (0, "write", "y", one.clone()),
                (1, "read", "y", one.clone()),
                (1, "read", "x", Value::Null),
            ],
            &["monotonic-writes"],
        ),
        (
            "wfr",
            vec![
                (0, "write", "x", one.clone()),
                (1, "read", "x", one.clone()),
                (1, "write", "y", one.clone()),
                (2, "read", "y", one.clone()),
                (2, "read", "x", Value::Null),
            ],
            &["writes-follow-reads"],
        ),
    ];
    let session = [
        "read-your-writes",
        "monotonic-reads",
        "monotonic-writes",
        "writes-follow-reads",
    ];
    for (name, ops, violated) in cases {
        let (_, obj) = check_models_json(&format!("{name}.jsonl"), &register_history(&ops));
        for m in ["linearizable", "sequential", "causal"] {
            assert_eq!(obj["models"][m]["valid"], false, "{name}: {m}");
        }
        for m in session {
            let want = !violated.contains(&m);
            assert_eq!(obj["models"][m]["valid"], want, "{name}: {m}");
        }
    }
}

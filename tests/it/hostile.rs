//! Hostile input (nothing a user types may kill netsplit, hang it, or damage a
//! file; docs/plan-format.md and docs/custom-clients.md say what a user gets instead): each case runs the `netsplit` binary as a user would and checks its exit code, that
//! it says one line naming the file, line, key or node, that it ends in bounded time (a child
//! past its time is killed and the test fails), and that the store and the files it was given
//! are intact. No case starts a cluster: the runs use the in-memory `noop` target or a
//! `custom` client program written here (sh), client-only, for a second or two.

use crate::support::{bin, latest, remove_tmp_dirs, results, tmp_dir};
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What a finished `netsplit` left.
struct Ran {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    took: Duration,
}

impl Ran {
    fn show(&self) -> String {
        format!(
            "exit {:?} after {:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.code,
            self.took,
            cut(&self.stdout),
            cut(&self.stderr)
        )
    }

    /// Bad input: exit 254 and one line `netsplit: error: …` that says every word of `names`
    /// (the file, line, key …), at most `MAX_LINE` characters, with no control characters
    /// and none of the parser's own words.
    fn refused(&self, names: &[&str]) {
        assert_eq!(self.code, Some(254), "{}", self.show());
        let lines: Vec<&str> = self
            .stderr
            .lines()
            .filter(|l| !l.trim().is_empty())
            .collect();
        assert_eq!(lines.len(), 1, "one line: {}", self.show());
        let line = lines[0];
        assert!(line.starts_with("netsplit: error: "), "{}", self.show());
        assert!(
            line.chars().count() <= MAX_LINE,
            "{} chars: {line}",
            line.len()
        );
        assert!(!line.chars().any(char::is_control), "{line:?}");
        for n in names {
            assert!(line.contains(n), "{n:?} missing from: {line}");
        }
        for parser_words in ["budget breached", "from_str_multiple", "Nodes {", "policy"] {
            assert!(!line.contains(parser_words), "{line}");
        }
    }
}

/// The longest error line (src: crates/netsplit-check/src/error.rs `MAX_LINE_CHARS`, plus the
/// `netsplit: error: ` prefix and a cut mark).
const MAX_LINE: usize = 530;

fn cut(s: &str) -> String {
    s.chars().take(3000).collect()
}

/// Runs `netsplit args…` in `dir`, stdin closed, killing it after `limit` (and failing).
fn run_in(dir: &Path, args: &[&str], limit: Duration) -> Ran {
    let start = Instant::now();
    let out_path = dir.join(".stdout");
    let err_path = dir.join(".stderr");
    let mut child = Command::new(bin())
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .expect("running netsplit");
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "netsplit {args:?} still running after {limit:?}; stderr: {}",
                cut(&std::fs::read_to_string(&err_path).unwrap_or_default())
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Ran {
        code: status.code(),
        stdout: std::fs::read_to_string(&out_path).unwrap_or_default(),
        stderr: std::fs::read_to_string(&err_path).unwrap_or_default(),
        took: start.elapsed(),
    }
}

/// Bad input must be refused quickly: no case below needs more than a few seconds.
const QUICK: Duration = Duration::from_secs(20);

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn mkfifo(p: &Path) {
    let c = std::ffi::CString::new(p.to_str().unwrap()).unwrap();
    // SAFETY: a valid C string.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
}

fn is_char_device(p: &str) -> bool {
    std::fs::metadata(p)
        .map(|m| m.file_type().is_char_device())
        .unwrap_or(false)
}

/// Names of the entries of a directory (none when it does not exist).
fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn devices_and_fifos_are_refused_at_once_and_left_alone() {
    let dir = tmp_dir("hostile", "devices");
    let fifo = dir.join("fifo");
    mkfifo(&fifo);
    let f = fifo.to_str().unwrap();
    for (args, names) in [
        (vec!["check", "/dev/zero"], vec!["/dev/zero", "device"]),
        (
            vec!["check", "/dev/urandom"],
            vec!["/dev/urandom", "device"],
        ),
        (vec!["check", f], vec![f, "FIFO"]),
        (
            vec!["test", "--target", "noop", "--plan", "/dev/zero"],
            vec!["/dev/zero", "plan"],
        ),
        (
            vec!["test", "--target", "noop", "--plan", f],
            vec![f, "FIFO"],
        ),
        (vec!["analyze", f], vec![f]),
    ] {
        let r = run_in(&dir, &args, QUICK);
        r.refused(&names);
        assert!(r.took < Duration::from_secs(10), "{args:?}: {}", r.show());
    }
    assert!(std::fs::metadata(&fifo).unwrap().file_type().is_fifo());
    assert!(is_char_device("/dev/zero"));
    remove_tmp_dirs("hostile", "devices");
}

#[test]
fn the_store_s_own_names_and_overlong_names_are_refused_before_any_directory() {
    let dir = tmp_dir("hostile", "names");
    let store = dir.join("store");
    let long = "a".repeat(300);
    for (name, says) in [
        ("latest", "latest"),
        ("index.html", "index.html"),
        (long.as_str(), "300 characters"),
    ] {
        let r = run_in(
            &dir,
            &[
                "test",
                "--target",
                "noop",
                "--nemesis",
                "none",
                "--time-limit",
                "1",
                "--store",
                "store",
                "--name",
                name,
            ],
            QUICK,
        );
        r.refused(&["name", says]);
    }
    assert!(entries(&store).is_empty(), "{:?}", entries(&store));
    remove_tmp_dirs("hostile", "names");
}

#[test]
fn plan_mistakes_name_the_file_line_and_key() {
    let dir = tmp_dir("hostile", "plans");
    // a value of the wrong type (the YAML reader takes "3" for a number; the plan does not)
    write(&dir, "conc.yaml", "run:\n  concurrency: \"3\"\n");
    run_in(
        &dir,
        &["test", "--target", "noop", "--plan", "conc.yaml"],
        QUICK,
    )
    .refused(&["conc.yaml", "line 2", "run.concurrency"]);

    // an alias bomb where free-form values are allowed: nine to the eighth values
    let mut bomb = String::from("target:\n  name: noop\n  opts:\n    a: &a [1,1,1,1,1,1,1,1,1]\n");
    for (x, y) in ["ab", "bc", "cd", "de", "ef", "fg", "gh"]
        .iter()
        .map(|p| (&p[..1], &p[1..]))
    {
        let refs = vec![format!("*{x}"); 9].join(",");
        bomb.push_str(&format!("    {y}: &{y} [{refs}]\n"));
    }
    write(&dir, "bomb.yaml", &bomb);
    let r = run_in(&dir, &["test", "--plan", "bomb.yaml"], QUICK);
    r.refused(&["bomb.yaml", "line ", "alias"]);

    // nesting deeper than any plan
    let deep = format!(
        "target:\n  name: noop\n  opts:\n    x: {}{}\n",
        "[".repeat(5000),
        "]".repeat(5000)
    );
    write(&dir, "deep.yaml", &deep);
    run_in(&dir, &["test", "--plan", "deep.yaml"], QUICK).refused(&[
        "deep.yaml",
        "line 4",
        "nested too deeply",
    ]);

    // two documents in one file
    write(
        &dir,
        "multi.yaml",
        "run:\n  concurrency: 2\n---\nrun:\n  concurrency: 3\n",
    );
    run_in(
        &dir,
        &["test", "--target", "noop", "--plan", "multi.yaml"],
        QUICK,
    )
    .refused(&["multi.yaml", "line 4", "more than one YAML document"]);

    // infinity, in YAML and on the command line
    write(&dir, "inf.yaml", "run:\n  time_limit: .inf\n");
    run_in(
        &dir,
        &["test", "--target", "noop", "--plan", "inf.yaml"],
        QUICK,
    )
    .refused(&["inf.yaml", "line 2", "not a finite number"]);
    run_in(
        &dir,
        &["test", "--target", "noop", "--time-limit", "inf"],
        QUICK,
    )
    .refused(&["run.time_limit", "finite"]);

    // a 200 KB line is quoted, not repeated whole
    let huge = format!("run:\n  store: {}\n  bogus: 1\n", "s".repeat(200_000));
    write(&dir, "huge.yaml", &huge);
    run_in(
        &dir,
        &["test", "--target", "noop", "--plan", "huge.yaml"],
        QUICK,
    )
    .refused(&["huge.yaml", "bogus"]);

    // a million keys, each read once per worker after healing: refused up front
    let million = "name: million\ntarget:\n  name: noop\nworkload:\n  name: million\n  \
                   vocabulary: register\n  ops:\n    - {f: read, value: {keyed: {keys: 1000000, \
                   value: null}}}\n    - {f: write, value: {keyed: {keys: 1000000, value: \
                   {int: [0, 9]}}}}\n  final: [{f: read}]\n  checker:\n    linearizable: \
                   {model: register}\nnemesis: {faults: []}\n";
    assert_eq!(million.lines().count(), 13);
    write(&dir, "million.yaml", million);
    let r = run_in(
        &dir,
        &[
            "test",
            "--plan",
            "million.yaml",
            "--store",
            "store",
            "--time-limit",
            "1",
        ],
        QUICK,
    );
    r.refused(&["million.yaml", "line 10", "workload.final", "1000000 keys"]);
    assert!(entries(&dir.join("store")).is_empty());
    remove_tmp_dirs("hostile", "plans");
}

#[test]
fn flags_that_collapse_or_overflow_are_refused_with_one_line() {
    let dir = tmp_dir("hostile", "flags");
    run_in(
        &dir,
        &[
            "test",
            "--target",
            "noop",
            "--target-opt",
            "read-mode=1",
            "--target-opt",
            "read_mode=2",
        ],
        QUICK,
    )
    .refused(&["read-mode=1", "read_mode=2", "same option"]);
    run_in(
        &dir,
        &[
            "test",
            "--target",
            "noop",
            "--target-opt",
            "a=1",
            "--target-opt",
            "a=2",
        ],
        QUICK,
    )
    .refused(&["--target-opt a", "twice"]);
    run_in(
        &dir,
        &[
            "client-check",
            "--target-opt",
            "client=cat",
            "--timeout",
            "1e20",
        ],
        QUICK,
    )
    .refused(&["--timeout"]);
    write(
        &dir,
        "h.jsonl",
        "{\"process\":0,\"type\":\"invoke\",\"f\":\"txn\",\"value\":[[\"r\",1,null]],\"time\":1}\n",
    );
    let r = run_in(
        &dir,
        &[
            "check",
            "--workload",
            "list-append",
            "--consistency-models",
            "serialisable",
            "h.jsonl",
        ],
        QUICK,
    );
    r.refused(&["\"serialisable\"", "did you mean serializable"]);
    assert!(r.stderr.trim().len() < 200, "{}", r.stderr);
    remove_tmp_dirs("hostile", "flags");
}

#[test]
fn junit_writes_only_regular_files_and_checks_before_the_suite() {
    let dir = tmp_dir("hostile", "junit");
    let store = dir.join("store");
    let quick_run = |junit: &str| {
        run_in(
            &dir,
            &[
                "test",
                "--target",
                "noop",
                "--nemesis",
                "none",
                "--time-limit",
                "1",
                "--store",
                "store",
                "--junit",
                junit,
            ],
            Duration::from_secs(60),
        )
    };
    for dev in ["/dev/null", "/dev/full"] {
        quick_run(dev).refused(&[dev, "device"]);
        assert!(is_char_device(dev), "{dev} is still a device");
    }
    quick_run(dir.to_str().unwrap()).refused(&["a directory"]);
    write(&dir, "plain", "x");
    quick_run("plain/junit.xml").refused(&["plain/junit.xml"]);
    quick_run("/proc/sys/kernel/hostname").refused(&["hostname"]);
    let r = run_in(
        &dir,
        &[
            "test-all",
            "--store",
            "store",
            "--junit",
            "/dev/null",
            "no-such-plans",
        ],
        QUICK,
    );
    r.refused(&["/dev/null"]);
    assert!(
        entries(&store).is_empty(),
        "nothing ran: {:?}",
        entries(&store)
    );
    // through a symlink: the file it points to is written, the link stays
    std::os::unix::fs::symlink("report.xml", dir.join("link.xml")).unwrap();
    let r = quick_run("link.xml");
    assert_eq!(r.code, Some(0), "{}", r.show());
    let meta = std::fs::symlink_metadata(dir.join("link.xml")).unwrap();
    assert!(meta.file_type().is_symlink());
    let xml = std::fs::read_to_string(dir.join("report.xml")).unwrap();
    assert!(xml.contains("<testsuites"), "{xml}");
    remove_tmp_dirs("hostile", "junit");
}

#[test]
fn concurrency_one_runs_with_the_default_threads_per_key() {
    let dir = tmp_dir("hostile", "conc1");
    let r = run_in(
        &dir,
        &[
            "test",
            "--target",
            "noop",
            "--workload",
            "register",
            "--nemesis",
            "none",
            "--concurrency",
            "1",
            "--time-limit",
            "1",
            "--store",
            "store",
        ],
        Duration::from_secs(60),
    );
    assert_eq!(r.code, Some(0), "{}", r.show());
    remove_tmp_dirs("hostile", "conc1");
}

/// A client-only run of `target: custom` with `client` as the program: it must complete with
/// results.json and report.html, the client's failures recorded as `info` ops saying so.
fn custom_run(dir: &Path, client: &str) -> (Ran, PathBuf) {
    let store = dir.join("store");
    let _ = std::fs::remove_dir_all(&store);
    let r = run_in(
        dir,
        &[
            "test",
            "--target",
            "custom",
            "--target-opt",
            &format!("client={client}"),
            "--workload",
            "register",
            "--nemesis",
            "none",
            "--concurrency",
            "2",
            "--time-limit",
            "2",
            "--store",
            "store",
        ],
        Duration::from_secs(90),
    );
    let run = latest(&store).unwrap_or_else(|| panic!("no run: {}", r.show()));
    for f in ["results.json", "report.html", "history.jsonl"] {
        assert!(run.join(f).is_file(), "{f} missing: {}", r.show());
    }
    (r, run)
}

#[test]
fn a_client_that_dies_is_an_info_op_and_a_fresh_client() {
    let dir = tmp_dir("hostile", "crash");
    for (script, why) in [
        // exits before reading its request (SIGPIPE must not kill netsplit)
        ("exit 3", "exited with status 3"),
        // an import that fails: a message on stderr, exit 1, nothing read
        (
            "echo 'ImportError: no module named x' >&2; exit 1",
            "ImportError",
        ),
        // exits after reading, while a child it started keeps its stdout open
        ("read l; sleep 600 & exit 1", "holds its stdout open"),
    ] {
        write(&dir, "client.sh", script);
        let (r, run) = custom_run(&dir, "sh client.sh");
        assert!(matches!(r.code, Some(0..=2)), "{script}: {}", r.show());
        assert!(r.took < Duration::from_secs(30), "{script}: {}", r.show());
        let history = std::fs::read_to_string(run.join("history.jsonl")).unwrap();
        let crashed = history
            .lines()
            .filter(|l| l.contains("client crashed") && l.contains(why))
            .count();
        // more than one: after each crash a fresh program was started and asked again
        assert!(
            crashed >= 2,
            "{script}: {crashed} crashes recorded\n{}",
            cut(&history)
        );
        assert!(results(&run).get("valid").is_some());
    }
    remove_tmp_dirs("hostile", "crash");
}

#[test]
fn client_check_sees_answers_out_of_turn_and_shows_clients_safely() {
    let dir = tmp_dir("hostile", "client-check");
    let ok = r#"echo '{"type":"ok"}'"#;
    let check = |script: &str| {
        write(&dir, "client.sh", script);
        run_in(
            &dir,
            &[
                "client-check",
                "--target-opt",
                "client=sh client.sh",
                "--requests",
                "3",
            ],
            Duration::from_secs(60),
        )
    };
    let r = check(&format!("while read l; do {ok}; done"));
    assert_eq!(r.code, Some(0), "a well-formed client: {}", r.show());
    for script in [
        // answers before reading its request
        format!("while true; do {ok}; read l || exit 0; done"),
        // answers twice per request
        format!("while read l; do {ok}; {ok}; done"),
    ] {
        let r = check(&script);
        assert_eq!(r.code, Some(1), "{script}: {}", r.show());
        assert!(r.stdout.contains("NOT WELL FORMED"), "{}", r.show());
        assert!(r.stdout.contains("twice per request"), "{}", r.show());
    }
    // escape sequences in answers and stderr are not passed to the terminal, and a flood of
    // stderr is shown as its last lines, each cut
    let r = check(
        "printf '\\033[2J\\033[31mred\\n' >&2; i=0; while [ $i -lt 500 ]; do \
         printf 'noise %0300d\\n' $i >&2; i=$((i+1)); done; while read l; do \
         printf '%s\\n' '{\"type\":\"fail\",\"error\":\"\\u001b[2Jboom\"}'; done",
    );
    assert_eq!(r.code, Some(0), "{}", r.show());
    assert!(!r.stdout.contains('\u{1b}'), "{}", r.show());
    assert!(r.stdout.contains("boom"), "{}", r.show());
    assert!(
        r.stdout.len() < 20_000,
        "{} bytes of output",
        r.stdout.len()
    );
    remove_tmp_dirs("hostile", "client-check");
}

#[test]
fn sigterm_ends_a_run_blocked_on_a_client_at_once() {
    let dir = tmp_dir("hostile", "sigterm");
    write(&dir, "slow.yaml", "run:\n  op_timeout: 1000\n");
    let mut child = Command::new(bin())
        .args([
            "test",
            "--plan",
            "slow.yaml",
            "--target",
            "custom",
            "--target-opt",
            "client=sleep 600",
            "--workload",
            "register",
            "--nemesis",
            "none",
            "--time-limit",
            "100",
            "--concurrency",
            "2",
            "--store",
            "store",
        ])
        .current_dir(&dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(3));
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let sent = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if sent.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("netsplit still running 20 s after SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(
        status.code().is_some(),
        "ended by the signal itself: {status:?}"
    );
    let run = latest(&dir.join("store")).expect("a run");
    assert!(run.join("results.json").is_file() && run.join("report.html").is_file());
    assert_eq!(results(&run)["interrupted"], serde_json::json!(true));
    remove_tmp_dirs("hostile", "sigterm");
}

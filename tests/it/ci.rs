//! `netsplit test-all` and JUnit on the in-memory targets: a suite of a valid plan and a
//! positive control (the lying client, expected invalid) passes; flipping the control's
//! expectation fails it with a `<failure>` naming the plan and its anomaly; a plan that does not
//! resolve is a harness error that stops the suite unless `--continue-on-error`; shards split a
//! suite. Every JUnit document is checked against the structure the JUnit schemas require.
//! Also: `netsplit test --expect … --junit …`, and the store's index.html.

use super::support::{netsplit, show, tmp_dir};
use quick_xml::events::Event;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A valid plan on the noop target (set workload, 2 s).
fn valid_plan(name: &str) -> String {
    format!(
        "name: {name}\nexpect: valid\ntarget:\n  name: noop\nworkload:\n  name: set\n\
         run:\n  concurrency: 3\n  rate: 200\n  time_limit: 2\n"
    )
}

/// The lying client on the bank workload (it loses credits: the bank checker must say invalid).
fn liar_plan(name: &str, expect: &str) -> String {
    format!(
        "name: {name}\nexpect: {expect}\ntarget:\n  name: liar\nworkload:\n  name: bank\n\
         run:\n  concurrency: 3\n  rate: 200\n  time_limit: 2\n"
    )
}

fn write_plans(dir: &Path, plans: &[(&str, String)]) {
    std::fs::create_dir_all(dir).unwrap();
    for (f, text) in plans {
        std::fs::write(dir.join(f), text).unwrap();
    }
}

/// An element of a parsed JUnit document.
#[derive(Debug, Default, Clone)]
struct El {
    name: String,
    attrs: BTreeMap<String, String>,
    children: Vec<El>,
    text: String,
}

impl El {
    fn all(&self, name: &str) -> Vec<&El> {
        self.children.iter().filter(|c| c.name == name).collect()
    }
    fn attr(&self, k: &str) -> &str {
        self.attrs.get(k).map(String::as_str).unwrap_or("")
    }
}

fn parse_xml(xml: &str) -> El {
    let mut r = quick_xml::Reader::from_str(xml);
    let mut stack: Vec<El> = vec![El::default()];
    let el = |e: &quick_xml::events::BytesStart| El {
        name: String::from_utf8(e.name().as_ref().to_vec()).unwrap(),
        attrs: e
            .attributes()
            .map(|a| {
                let a = a.expect("well-formed attribute");
                (
                    String::from_utf8(a.key.as_ref().to_vec()).unwrap(),
                    a.normalized_value(quick_xml::XmlVersion::Explicit1_0)
                        .expect("escaped attribute")
                        .into_owned(),
                )
            })
            .collect(),
        ..El::default()
    };
    loop {
        match r.read_event().expect("well-formed XML") {
            Event::Start(e) => stack.push(el(&e)),
            Event::Empty(e) => {
                let x = el(&e);
                stack.last_mut().unwrap().children.push(x);
            }
            Event::End(_) => {
                let done = stack.pop().unwrap();
                stack.last_mut().unwrap().children.push(done);
            }
            Event::Text(t) => {
                let s = t.decode().unwrap().into_owned();
                stack.last_mut().unwrap().text.push_str(&s);
            }
            Event::GeneralRef(g) => {
                let s = String::from_utf8_lossy(&g).into_owned();
                let c = match s.as_str() {
                    "lt" => "<",
                    "gt" => ">",
                    "amp" => "&",
                    "quot" => "\"",
                    "apos" => "'",
                    _ => "?",
                };
                stack.last_mut().unwrap().text.push_str(c);
            }
            Event::CData(c) => {
                let s = String::from_utf8_lossy(&c).into_owned();
                stack.last_mut().unwrap().text.push_str(&s);
            }
            Event::Eof => break,
            _ => {}
        }
    }
    assert_eq!(stack.len(), 1, "every element closed");
    let mut root = stack.pop().unwrap();
    assert_eq!(root.children.len(), 1, "one root element");
    root.children.remove(0)
}

fn is_decimal(s: &str) -> bool {
    let mut parts = s.splitn(2, '.');
    let int = parts.next().unwrap_or("");
    let frac = parts.next().unwrap_or("0");
    !int.is_empty()
        && int.chars().all(|c| c.is_ascii_digit())
        && frac.chars().all(|c| c.is_ascii_digit())
}

fn is_int(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_digit())
}

/// `YYYY-MM-DDTHH:MM:SS`, the timestamp pattern of Ant's JUnit schema.
fn is_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 19
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b'T',
            13 | 16 => *c == b':',
            _ => c.is_ascii_digit(),
        })
}

/// Checks a JUnit document against the structure the JUnit schemas require (Ant's JUnit.xsd
/// for the attributes of `testsuite` inside `testsuites`; Jenkins' junit-10.xsd, which CI
/// systems read, for what a `testcase` may hold) and returns its root.
fn validate_junit(xml: &str) -> El {
    let root = parse_xml(xml);
    assert_eq!(root.name, "testsuites", "the root is <testsuites>");
    let suites = root.all("testsuite");
    assert!(!suites.is_empty(), "at least one <testsuite>");
    assert!(
        root.children.iter().all(|c| c.name == "testsuite"),
        "<testsuites> holds only <testsuite>"
    );
    let mut totals = [0usize; 3];
    for (i, s) in suites.iter().enumerate() {
        for k in [
            "name",
            "tests",
            "failures",
            "errors",
            "time",
            "timestamp",
            "hostname",
            "id",
            "package",
        ] {
            assert!(
                !s.attr(k).is_empty(),
                "testsuite requires a non-empty {k}: {:?}",
                s.attrs
            );
        }
        for k in ["tests", "failures", "errors", "id"] {
            assert!(
                is_int(s.attr(k)),
                "testsuite {k} is an integer: {:?}",
                s.attrs
            );
        }
        assert_eq!(s.attr("id"), i.to_string(), "ids count from 0");
        assert!(is_decimal(s.attr("time")), "time is decimal seconds");
        assert!(is_timestamp(s.attr("timestamp")), "{:?}", s.attrs);
        for c in &s.children {
            assert!(
                ["properties", "testcase", "system-out", "system-err"].contains(&c.name.as_str()),
                "unexpected <{}> in <testsuite>",
                c.name
            );
        }
        let cases = s.all("testcase");
        let (mut failures, mut errors, mut skipped) = (0, 0, 0);
        for c in &cases {
            for k in ["name", "classname", "time"] {
                assert!(
                    !c.attr(k).is_empty(),
                    "testcase requires {k}: {:?}",
                    c.attrs
                );
            }
            assert!(is_decimal(c.attr("time")));
            for ch in &c.children {
                assert!(
                    ["skipped", "error", "failure", "system-out", "system-err"]
                        .contains(&ch.name.as_str()),
                    "unexpected <{}> in <testcase>",
                    ch.name
                );
            }
            let outcomes = c.all("failure").len() + c.all("error").len() + c.all("skipped").len();
            assert!(outcomes <= 1, "one outcome per testcase");
            for f in c.all("failure").into_iter().chain(c.all("error")) {
                assert!(!f.attr("type").is_empty(), "{} requires a type", f.name);
                assert!(!f.attr("message").is_empty(), "{} has a message", f.name);
            }
            failures += c.all("failure").len();
            errors += c.all("error").len();
            skipped += c.all("skipped").len();
        }
        assert_eq!(s.attr("tests"), cases.len().to_string());
        assert_eq!(s.attr("failures"), failures.to_string());
        assert_eq!(s.attr("errors"), errors.to_string());
        if !s.attr("skipped").is_empty() {
            assert_eq!(s.attr("skipped"), skipped.to_string());
        }
        totals[0] += cases.len();
        totals[1] += failures;
        totals[2] += errors;
    }
    for (k, n) in ["tests", "failures", "errors"].iter().zip(totals) {
        if !root.attr(k).is_empty() {
            assert_eq!(root.attr(k), n.to_string(), "testsuites {k}");
        }
    }
    root
}

fn cases(root: &El) -> Vec<El> {
    root.all("testsuite")
        .into_iter()
        .flat_map(|s| s.all("testcase").into_iter().cloned())
        .collect()
}

fn junit_of(path: &Path) -> El {
    let xml = std::fs::read_to_string(path).expect("the JUnit file is written");
    validate_junit(&xml)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn a_suite_with_a_positive_control_passes_and_a_flipped_expectation_fails() {
    let base = tmp_dir("ci", "suite");
    let suite = base.join("suite");
    write_plans(
        &suite,
        &[
            ("a-valid.yaml", valid_plan("t-ci-valid")),
            ("b-liar.yaml", liar_plan("t-ci-liar", "invalid")),
            ("notes.txt", "not a plan".into()),
        ],
    );
    let store = base.join("store");
    let junit = base.join("out/junit.xml");
    let out = netsplit(&[
        "test-all",
        s(&suite),
        "--store",
        s(&store),
        "--junit",
        s(&junit),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    // the final table: plan, expected, verdict, result, anomaly, run directory
    let row = stdout
        .lines()
        .find(|l| l.contains("b-liar.yaml") && l.contains("PASS"))
        .unwrap_or_else(|| panic!("a table row for the liar plan\n{}", show(&out)));
    let words: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(&words[1..4], ["invalid", "invalid", "PASS"], "{row}");
    assert!(row.contains("bank: bad reads"), "{row}");
    assert!(row.contains("t-ci-liar/"), "the run directory: {row}");
    let root = junit_of(&junit);
    let cs = cases(&root);
    assert_eq!(cs.len(), 2, "{root:?}");
    assert!(cs
        .iter()
        .all(|c| c.children.iter().all(|x| x.name == "system-out")));
    assert_eq!(cs[0].attr("classname"), "t-ci-valid");
    assert!(
        cs[0].attr("name").ends_with("a-valid.yaml #1"),
        "{:?}",
        cs[0]
    );
    assert!(cs[1].all("system-out")[0].text.contains("t-ci-liar/"));

    // the store's index lists both runs, and the results say expected, verdict, pass
    let index = std::fs::read_to_string(store.join("index.html")).expect("index.html");
    assert!(index.contains("t-ci-valid") && index.contains("t-ci-liar"));
    let liar_run = std::fs::canonicalize(store.join("t-ci-liar/latest")).unwrap();
    let r = super::support::results(&liar_run);
    assert_eq!(r["expected"], "invalid");
    assert_eq!(r["verdict"], "invalid");
    assert_eq!(r["pass"], true);
    assert!(index.contains(&format!(
        "t-ci-liar/{}/report.html",
        liar_run.file_name().unwrap().to_str().unwrap()
    )));

    // flip the control's expectation: exit 1, one <failure> naming the plan and the anomaly
    std::fs::write(suite.join("b-liar.yaml"), liar_plan("t-ci-liar", "valid")).unwrap();
    let junit2 = base.join("junit2.xml");
    let out = netsplit(&[
        "test-all",
        s(&suite),
        "--store",
        s(&store),
        "--junit",
        s(&junit2),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let root = junit_of(&junit2);
    let cs = cases(&root);
    let failures: Vec<&El> = cs.iter().flat_map(|c| c.all("failure")).collect();
    assert_eq!(failures.len(), 1, "{root:?}");
    let failed = cs.iter().find(|c| !c.all("failure").is_empty()).unwrap();
    assert!(failed.attr("name").contains("b-liar.yaml"), "{failed:?}");
    let msg = failures[0].attr("message");
    assert!(
        msg.contains("expected valid, verdict invalid") && msg.contains("bank: bad reads"),
        "{msg}"
    );
    assert!(failed.all("system-out")[0].text.contains("t-ci-liar/"));
    let index = std::fs::read_to_string(store.join("index.html")).unwrap();
    assert!(index.contains("FAIL"), "the index shows the failed run");
    std::fs::remove_dir_all(&base).unwrap();
}

#[test]
fn a_harness_error_stops_the_suite_unless_continue_on_error_and_shards_split_it() {
    let base = tmp_dir("ci", "errors");
    let suite = base.join("suite");
    write_plans(
        &suite,
        &[
            (
                "a-broken.yaml",
                "name: t-ci-broken\nrun:\n  bogus: 1\n".into(),
            ),
            ("b-valid.yaml", valid_plan("t-ci-after")),
        ],
    );
    let store = base.join("store");
    let junit = base.join("j1.xml");
    let args = |j: &PathBuf| {
        vec![
            "test-all".to_string(),
            s(&suite).to_string(),
            "--store".into(),
            s(&store).to_string(),
            "--junit".into(),
            s(j).to_string(),
        ]
    };
    let a = args(&junit);
    let out = netsplit(&a.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(out.status.code(), Some(255), "{}", show(&out));
    let cs = cases(&junit_of(&junit));
    assert_eq!(cs.len(), 2);
    let err = &cs[0].all("error")[0];
    assert!(err.attr("message").contains("bogus"), "{err:?}");
    assert_eq!(cs[1].all("skipped").len(), 1, "not run after the error");
    assert!(!store.join("t-ci-after").exists());

    let junit2 = base.join("j2.xml");
    let mut a = args(&junit2);
    a.push("--continue-on-error".into());
    let out = netsplit(&a.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(out.status.code(), Some(255), "{}", show(&out));
    let cs = cases(&junit_of(&junit2));
    assert_eq!(cs[0].all("error").len(), 1);
    assert!(
        cs[1].children.iter().all(|c| c.name == "system-out"),
        "ran and passed"
    );

    // shard 2/2 of the two plans is the second alone
    let junit3 = base.join("j3.xml");
    let mut a = args(&junit3);
    a.extend(["--shard".to_string(), "2/2".to_string()]);
    let out = netsplit(&a.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let root = junit_of(&junit3);
    let cs = cases(&root);
    assert_eq!(cs.len(), 1);
    assert!(cs[0].attr("name").contains("b-valid.yaml"));
    assert!(root.all("testsuite")[0].attr("name").contains("shard 2/2"));

    let out = netsplit(&["test-all", s(&suite), "--shard", "3/2"]);
    assert_eq!(out.status.code(), Some(254), "{}", show(&out));
    let out = netsplit(&["test-all", s(&base.join("nope"))]);
    assert_eq!(out.status.code(), Some(254), "{}", show(&out));
    std::fs::remove_dir_all(&base).unwrap();
}

#[test]
fn test_takes_expect_and_writes_junit() {
    let base = tmp_dir("ci", "test");
    let store = base.join("store");
    let junit = base.join("j.xml");
    let out = netsplit(&[
        "test",
        "--name",
        "t-ci-test",
        "--target",
        "liar",
        "--workload",
        "counter",
        "--time-limit",
        "1",
        "--rate",
        "200",
        "--concurrency",
        "2",
        "--expect",
        "invalid",
        "--store",
        s(&store),
        "--junit",
        s(&junit),
    ]);
    // `test` exits by verdict; the expectation is reported
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("PASS     expected invalid, verdict invalid"),
        "{stdout}"
    );
    let cs = cases(&junit_of(&junit));
    assert_eq!(cs.len(), 1);
    assert_eq!(cs[0].attr("classname"), "t-ci-test");
    assert!(cs[0].attr("name").starts_with("(command line) #1"));
    assert!(cs[0].all("failure").is_empty());
    let out = netsplit(&["test", "--target", "noop", "--expect", "sometimes"]);
    assert_eq!(out.status.code(), Some(254), "{}", show(&out));
    // a run that cannot start still leaves a JUnit file, with the error
    let junit = base.join("j2.xml");
    let out = netsplit(&["test", "--target", "nosuch", "--junit", s(&junit)]);
    assert_eq!(out.status.code(), Some(254), "{}", show(&out));
    let cs = cases(&junit_of(&junit));
    assert_eq!(cs.len(), 1);
    assert!(cs[0].all("error")[0].attr("message").contains("nosuch"));
    std::fs::remove_dir_all(&base).unwrap();
}

/// The nightly workflow in docs/examples/ stays runnable: its matrix covers shards 1..=N with N
/// the `/N` of the command, and every flag the command passes exists in `test-all --help`.
#[test]
fn the_documented_nightly_workflow_matches_the_cli() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join("docs/examples/nightly.yml")).unwrap();
    let wf: serde_json::Value = serde_saphyr::from_str(&text).expect("the workflow is YAML");
    let suite = &wf["jobs"]["suite"];
    let shards: Vec<u64> = suite["strategy"]["matrix"]["shard"]
        .as_array()
        .expect("a shard matrix")
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    let n = shards.len() as u64;
    assert_eq!(shards, (1..=n).collect::<Vec<_>>());
    let cmd = suite["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["run"].as_str())
        .find(|r| r.contains("test-all"))
        .expect("a step runs test-all")
        .replace("\\\n", " ");
    assert!(
        cmd.contains(&format!("--shard ${{{{ matrix.shard }}}}/{n}")),
        "{cmd}"
    );
    let help = netsplit(&["test-all", "--help"]);
    let help = String::from_utf8_lossy(&help.stdout).into_owned();
    for flag in cmd.split_whitespace().filter(|w| w.starts_with("--")) {
        assert!(
            help.contains(flag),
            "{flag} is not a test-all flag:\n{help}"
        );
    }
    let plans = cmd
        .split_whitespace()
        .skip_while(|w| *w != "test-all")
        .nth(1)
        .unwrap();
    assert!(root.join(plans).is_dir(), "{plans}");
}

//! JUnit XML for CI systems (`netsplit test --junit FILE`, `netsplit test-all --junit FILE`).
//!
//! One `<testcase>` per run: `classname` is the test name, `name` the plan file and run number
//! (`plans/etcd.yaml #1`), `time` the run's seconds. A run whose verdict differs from its plan's
//! expectation carries a `<failure>` whose message is the expectation, the verdict and the
//! anomaly summary (`crate::verdict::anomaly_summary`); a harness error (setup failed, a phase
//! broke, a plan that does not resolve) an `<error>`; a plan the suite did not reach (it stopped
//! at a harness error) a `<skipped>`. Each testcase's `<system-out>` names its run directory and
//! report. The document is `<testsuites>` around one `<testsuite>` with the attributes the
//! common JUnit schemas require (name, tests, failures, errors, skipped, time, timestamp,
//! hostname, id, package). Written with `quick-junit`.

use crate::verdict::{self, Outcome};
use crate::RunOutcome;
use anyhow::{Context, Result};
use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite, XmlString};
use serde_json::Value;
use std::path::Path;
use std::time::{Duration, SystemTime};

/// What became of one run (or of a plan that never ran).
#[derive(Debug, Clone, PartialEq)]
pub enum CaseStatus {
    /// The verdict matched the expectation.
    Pass,
    /// The verdict differs from the expectation.
    Fail {
        /// One line: what was expected, what the verdict was, and the anomaly found.
        message: String,
    },
    /// The harness failed.
    Error {
        /// The harness error, on one line.
        message: String,
    },
    /// Not run.
    Skipped {
        /// Why the plan was not run.
        message: String,
    },
}

/// One testcase.
#[derive(Debug, Clone, PartialEq)]
pub struct Case {
    /// The test name (`classname`).
    pub test: String,
    /// The plan file and run number (`name`).
    pub name: String,
    /// How long the run took (the testcase's `time`).
    pub time: Duration,
    /// Pass, failure, error or skipped.
    pub status: CaseStatus,
    /// Detail for a failure or error (the console summary of the run).
    pub detail: String,
    /// The run directory and report (`system-out`); empty when there is no run.
    pub system_out: String,
}

/// The testcase name of run `n` (1-based) of a plan: `plans/x.yaml #2`.
pub fn case_name(plan_label: &str, n: u32) -> String {
    format!("{plan_label} #{n}")
}

/// The testcase of one finished run.
pub fn case_for_run(plan_label: &str, n: u32, out: &RunOutcome) -> Case {
    let r = &out.results;
    let test = r
        .pointer("/plan/name")
        .and_then(Value::as_str)
        .unwrap_or("netsplit")
        .to_string();
    let expected = verdict::expected_of(r);
    let verdict = verdict::verdict_word(out.valid);
    let anomaly = r
        .get("anomaly")
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| verdict::anomaly_summary(r));
    let status = match Outcome::of_results(r) {
        Outcome::Pass => CaseStatus::Pass,
        Outcome::Fail => CaseStatus::Fail {
            message: format!(
                "expected {expected}, verdict {verdict}: {}",
                if anomaly.is_empty() {
                    "no anomaly found"
                } else {
                    &anomaly
                }
            ),
        },
        Outcome::Error => CaseStatus::Error {
            message: out.error.clone().unwrap_or_else(|| anomaly.clone()),
        },
    };
    let dir = out.run_dir.display().to_string();
    Case {
        test,
        name: case_name(plan_label, n),
        time: Duration::from_secs_f64(r.get("elapsed_s").and_then(Value::as_f64).unwrap_or(0.0)),
        status,
        detail: crate::summary::summary_text(r).trim().to_string(),
        system_out: format!("run directory: {dir}\nreport: {dir}/report.html\n"),
    }
}

/// The testcase of a plan that failed before any run stored results (it did not resolve, or
/// setup was refused).
pub fn case_for_error(plan_label: &str, test: &str, error: &str, time: Duration) -> Case {
    Case {
        test: test.to_string(),
        name: case_name(plan_label, 1),
        time,
        status: CaseStatus::Error {
            message: error.to_string(),
        },
        detail: error.to_string(),
        system_out: String::new(),
    }
}

/// The testcase of a plan the suite did not run.
pub fn case_skipped(plan_label: &str, test: &str, why: &str) -> Case {
    Case {
        test: test.to_string(),
        name: case_name(plan_label, 1),
        time: Duration::ZERO,
        status: CaseStatus::Skipped {
            message: why.to_string(),
        },
        detail: String::new(),
        system_out: String::new(),
    }
}

/// `YYYY-MM-DDTHH:MM:SS` (UTC, no zone: the form the strictest JUnit schema accepts).
pub(crate) fn iso_time(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t)
        .format("%Y-%m-%dT%H:%M:%S")
        .to_string()
}

/// This machine's host name (`localhost` if it has none), as JUnit's `hostname`.
pub(crate) fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// The JUnit document for one suite of cases.
pub(crate) fn render(
    suite: &str,
    cases: &[Case],
    started: SystemTime,
    time: Duration,
) -> Result<String> {
    let mut ts = TestSuite::new(suite);
    ts.set_time(time);
    // Set as plain attributes: quick-junit's own timestamp carries a zone, which the
    // strictest schema (Ant's) refuses.
    ts.extra.insert(
        XmlString::new("timestamp"),
        XmlString::new(iso_time(started)),
    );
    ts.extra
        .insert(XmlString::new("hostname"), XmlString::new(hostname()));
    ts.extra.insert(XmlString::new("id"), XmlString::new("0"));
    ts.extra
        .insert(XmlString::new("package"), XmlString::new("netsplit"));
    for c in cases {
        let status = match &c.status {
            CaseStatus::Pass => TestCaseStatus::success(),
            CaseStatus::Fail { message } => {
                let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                s.set_type("verdict")
                    .set_message(one_line(message))
                    .set_description(c.detail.clone());
                s
            }
            CaseStatus::Error { message } => {
                let mut s = TestCaseStatus::non_success(NonSuccessKind::Error);
                s.set_type("harness")
                    .set_message(one_line(message))
                    .set_description(c.detail.clone());
                s
            }
            CaseStatus::Skipped { message } => {
                let mut s = TestCaseStatus::skipped();
                s.set_type("not-run").set_message(one_line(message));
                s
            }
        };
        let mut tc = TestCase::new(c.name.clone(), status);
        tc.set_classname(c.test.clone());
        tc.set_time(c.time);
        if !c.system_out.is_empty() {
            tc.set_system_out(c.system_out.clone());
        }
        ts.add_test_case(tc);
    }
    let mut report = Report::new("netsplit");
    report.set_time(time);
    report.add_test_suite(ts);
    report.to_string().context("serialising JUnit XML")
}

fn one_line(s: &str) -> String {
    verdict::cut(&s.replace('\n', " "), 1000)
}

/// Writes the JUnit document to `path` (through a temporary file beside it).
pub fn write(
    path: &Path,
    suite: &str,
    cases: &[Case],
    started: SystemTime,
    time: Duration,
) -> Result<()> {
    let xml = render(suite, cases, started, time)?;
    let dest = destination(path).map_err(|e| anyhow::anyhow!("--junit {e}"))?;
    if let Some(dir) = dest.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    // Written beside the file and renamed over it, so a reader never sees half a document;
    // `dest` is a regular file or a new path (never a device or the symlink itself).
    let tmp = dest.with_extension(format!("tmp.{}", std::process::id()));
    std::fs::write(&tmp, xml).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, &dest).with_context(|| format!("writing {}", dest.display()))
}

/// Checks, before a suite runs, that [`write()`] can write `path`: a regular file (which it will
/// replace), a new path, or a symlink to either (the file it points to is written, the link
/// stays). A directory, a device (`/dev/null`), a FIFO or socket, or a path that cannot be
/// written is refused with a line naming the path.
pub fn check_path(path: &Path) -> std::result::Result<(), String> {
    let dest = destination(path)?;
    let name = path.display();
    if dest.exists() {
        // Opened for writing without truncating: the permission and a read-only file system
        // are checked, the contents kept.
        std::fs::OpenOptions::new()
            .write(true)
            .open(&dest)
            .map_err(|e| format!("{name}: cannot be written: {e}"))?;
    }
    // The report is written beside its file and renamed over it, so the nearest existing
    // directory above it must be one we can create files in (a file in /proc can be written
    // in place but has no room beside it).
    let mut anc = dest.parent();
    while let Some(a) = anc {
        if a.as_os_str().is_empty() {
            anc = Some(Path::new("."));
            break;
        }
        if std::fs::symlink_metadata(a).is_ok() {
            break;
        }
        anc = a.parent();
    }
    let anc = anc.unwrap_or(Path::new("."));
    match std::fs::metadata(anc) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => return Err(format!("{name}: {} is not a directory", anc.display())),
        Err(e) => return Err(format!("{name}: {}: {e}", anc.display())),
    }
    let probe = anc.join(format!(".netsplit-junit-probe.{}", std::process::id()));
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
    {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            Ok(())
        }
        Err(e) => Err(format!(
            "{name}: cannot create files in {}: {e}",
            anc.display()
        )),
    }
}

/// The file `path` names: itself, or where its symlinks lead. An error when that is not a
/// regular file or a new path (a directory, a device, a FIFO, a socket).
fn destination(path: &Path) -> std::result::Result<std::path::PathBuf, String> {
    use std::os::unix::fs::FileTypeExt;
    let name = path.display();
    let mut dest = path.to_path_buf();
    for _ in 0..40 {
        let meta = match std::fs::symlink_metadata(&dest) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(dest),
            Err(e) => return Err(format!("{name}: {e}")),
        };
        let ft = meta.file_type();
        if ft.is_symlink() {
            let to = std::fs::read_link(&dest).map_err(|e| format!("{name}: {e}"))?;
            dest = match dest.parent() {
                Some(dir) => dir.join(to),
                None => to,
            };
            continue;
        }
        let kind = if ft.is_file() {
            return Ok(dest);
        } else if ft.is_dir() {
            "a directory"
        } else if ft.is_char_device() || ft.is_block_device() {
            "a device"
        } else if ft.is_fifo() {
            "a FIFO"
        } else {
            "not a regular file"
        };
        return Err(format!(
            "{name} is {kind}; the JUnit report is written only to a regular file or a new path"
        ));
    }
    Err(format!("{name}: too many levels of symbolic links"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::FileTypeExt;

    #[test]
    fn only_regular_files_and_new_paths_are_written_and_symlinks_stay() {
        let tmp = tempfile::tempdir().unwrap();
        let t0 = SystemTime::UNIX_EPOCH;
        for bad in ["/dev/null", "/dev/full"] {
            let e = check_path(Path::new(bad)).unwrap_err();
            assert!(e.contains("a device"), "{e}");
            assert!(write(Path::new(bad), "s", &[], t0, Duration::ZERO).is_err());
            assert!(std::fs::metadata(bad).unwrap().file_type().is_char_device());
        }
        let e = check_path(tmp.path()).unwrap_err();
        assert!(e.contains("a directory"), "{e}");
        // writable in place, but no file can be made beside it for the rename
        let proc_file = Path::new("/proc/sys/kernel/hostname");
        assert!(proc_file.is_file(), "procfs is mounted");
        let e = check_path(proc_file).unwrap_err();
        assert!(e.contains("hostname"), "{e}");
        let file = tmp.path().join("f.txt");
        std::fs::write(&file, "x").unwrap();
        let e = check_path(&file.join("junit.xml")).unwrap_err();
        assert!(e.to_lowercase().contains("not a directory"), "{e}");
        // a new path (with new directories) and an existing file are fine
        let new = tmp.path().join("a/b/junit.xml");
        check_path(&new).unwrap();
        write(&new, "s", &[], t0, Duration::ZERO).unwrap();
        check_path(&new).unwrap();
        // through a symlink: the target is written, the link stays a link
        let link = tmp.path().join("link.xml");
        std::os::unix::fs::symlink(&new, &link).unwrap();
        check_path(&link).unwrap();
        write(&link, "linked", &[], t0, Duration::ZERO).unwrap();
        assert!(std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert!(std::fs::read_to_string(&new).unwrap().contains("linked"));
        // a dangling symlink: its target is created
        let dangling = tmp.path().join("dangling.xml");
        std::os::unix::fs::symlink(tmp.path().join("made.xml"), &dangling).unwrap();
        write(&dangling, "s", &[], t0, Duration::ZERO).unwrap();
        assert!(std::fs::symlink_metadata(&dangling)
            .unwrap()
            .file_type()
            .is_symlink());
        assert!(tmp.path().join("made.xml").is_file());
        // a link to a device is refused like the device
        let to_null = tmp.path().join("null.xml");
        std::os::unix::fs::symlink("/dev/null", &to_null).unwrap();
        assert!(check_path(&to_null).unwrap_err().contains("a device"));
    }

    #[test]
    fn cases_become_testcases_with_failure_error_and_skipped() {
        let cases = vec![
            Case {
                test: "noop-smoke".into(),
                name: "plans/a.yaml #1".into(),
                time: Duration::from_millis(1500),
                status: CaseStatus::Pass,
                detail: String::new(),
                system_out: "run directory: r/a/1\n".into(),
            },
            Case {
                test: "liar".into(),
                name: "plans/b.yaml #1".into(),
                time: Duration::from_secs(2),
                status: CaseStatus::Fail {
                    message: "expected valid, verdict invalid: bank: <5> & \"x\"".into(),
                },
                detail: "INVALID r/b/1".into(),
                system_out: "run directory: r/b/1\n".into(),
            },
            case_for_error("plans/c.yaml", "c", "cannot read plan", Duration::ZERO),
            case_skipped("plans/d.yaml", "d", "suite stopped"),
        ];
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let xml = render("suite", &cases, t0, Duration::from_secs(4)).unwrap();
        assert!(xml.contains("tests=\"4\""), "{xml}");
        assert!(
            xml.contains("failures=\"1\"") && xml.contains("errors=\"1\""),
            "{xml}"
        );
        assert!(xml.contains("timestamp=\"2023-11-14T22:13:20\""), "{xml}");
        assert!(xml.contains("bank: &lt;5&gt; &amp; &quot;x&quot;"), "{xml}");
        assert!(xml.contains("<skipped"), "{xml}");
        assert_eq!(case_name("p.yaml", 3), "p.yaml #3");
    }
}

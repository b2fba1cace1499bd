//! The report pages in a real browser: headless Chromium (Debian's `chromium`, which
//! scripts/test installs) loads a run's `report.html` and the store's `index.html` from disk, and
//! both again as served by `netsplit serve`, and must log nothing on its console (the pages have
//! no scripts, so any console message is a fault). A screenshot of each is kept under
//! `target/test-artifacts/browser/`. A page that does log an error proves the console is read.

use crate::support::{bin, latest, netsplit, remove_tmp_dirs, show, tmp_dir};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CHROMIUM: &str = "/usr/bin/chromium";

/// Where the screenshots go: `target/test-artifacts/browser/`.
fn artifacts() -> PathBuf {
    let d = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-artifacts/browser");
    std::fs::create_dir_all(&d).expect("target/test-artifacts/browser");
    d
}

/// What Chromium said about one page: its console lines, and the whole of its stderr.
struct Visit {
    console: Vec<String>,
    stderr: String,
}

/// Loads `url` in a fresh headless Chromium, saves a screenshot to `png`, and collects the
/// console messages Chromium logs on stderr (`…:CONSOLE:…] "message", source: …`).
fn visit(url: &str, png: &Path, profile: &Path) -> Visit {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: install Debian's chromium (scripts/test does)"
    );
    let _ = std::fs::remove_file(png);
    let mut child: Child = Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--enable-logging=stderr",
            "--v=0",
            "--window-size=1280,1600",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--screenshot={}", png.display()))
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting chromium");
    let mut err = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + Duration::from_secs(90);
    let status = loop {
        if let Some(st) = child.try_wait().expect("waiting for chromium") {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish loading {url} within 90 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let stderr = reader.join().unwrap_or_default();
    assert!(status.success(), "chromium on {url}: {status}\n{stderr}");
    let console = stderr
        .lines()
        .filter(|l| l.contains(":CONSOLE"))
        .map(str::to_string)
        .collect();
    Visit { console, stderr }
}

/// Loads `url`, and requires a screenshot and a silent console.
fn check_page(url: &str, shot: &str, profile: &Path) {
    let png = artifacts().join(shot);
    let v = visit(url, &png, profile);
    assert!(
        v.console.is_empty(),
        "console messages on {url}:\n{}",
        v.console.join("\n")
    );
    let bytes = std::fs::read(&png).unwrap_or_else(|e| {
        panic!(
            "no screenshot of {url} at {}: {e}\n{}",
            png.display(),
            v.stderr
        )
    });
    assert!(
        bytes.starts_with(b"\x89PNG") && bytes.len() > 10_000,
        "{} is a real screenshot ({} bytes)",
        png.display(),
        bytes.len()
    );
}

/// A running `netsplit serve` on a free loopback port, killed when dropped.
struct Served(Child, String);

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn serve(store: &Path) -> Served {
    let mut child = Command::new(bin())
        .args([
            "serve",
            "--store",
            &store.to_string_lossy(),
            "--bind",
            "127.0.0.1:0",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting netsplit serve");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .expect("serve's first line");
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no URL in {line:?}"))
        .to_string();
    Served(child, url)
}

#[test]
fn reports_load_in_chromium_without_console_errors() {
    let store = tmp_dir("browser", "store");
    let profiles = tmp_dir("browser", "profiles");
    // an INVALID run: its report has the opening sentence and a drawn counterexample
    let out = netsplit(&[
        "test",
        "--target",
        "liar",
        "--workload",
        "keyed-register",
        "--time-limit",
        "2",
        "--store",
        &store.to_string_lossy(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let run = latest(&store).expect("a run");
    let report = std::fs::read_to_string(run.join("report.html")).expect("report.html");
    assert!(
        report.contains("class=\"lede\""),
        "the INVALID report opens with what went wrong"
    );

    check_page(
        &format!("file://{}", run.join("report.html").display()),
        "report.png",
        &profiles.join("report"),
    );
    check_page(
        &format!("file://{}", store.join("index.html").display()),
        "index.png",
        &profiles.join("index"),
    );
    let srv = serve(&store);
    check_page(&srv.1, "served-index.png", &profiles.join("served-index"));
    check_page(
        &format!("{}latest/report.html", srv.1),
        "served-report.png",
        &profiles.join("served-report"),
    );
    drop(srv);
    remove_tmp_dirs("browser", "store");
    remove_tmp_dirs("browser", "profiles");
}

/// The console is really read: a page that logs an error is caught.
#[test]
fn a_console_error_is_caught() {
    let dir = tmp_dir("browser", "control");
    let page = dir.join("bad.html");
    std::fs::write(
        &page,
        "<!DOCTYPE html><html><body><p>x</p><script>console.error('broken page')</script></body></html>",
    )
    .unwrap();
    let v = visit(
        &format!("file://{}", page.display()),
        &dir.join("bad.png"),
        &dir.join("profile"),
    );
    assert!(
        v.console.iter().any(|l| l.contains("broken page")),
        "the console error was not seen:\n{}",
        v.stderr
    );
    remove_tmp_dirs("browser", "control");
}

//! `netsplit serve` over real HTTP (the binary on a loopback port, reqwest and raw TCP): the
//! index lists the runs; a report, a history and a large file download with their content
//! types; directories list; and `/../`, `%2e%2e`, absolute paths and symlinks that lead out of
//! the store are refused with a 4xx while nothing outside the store is ever served. Raw TCP for
//! the hostile paths, since an HTTP client normalises `..` away before sending.

use super::support::{bin, netsplit, show, tmp_dir};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// A running `netsplit serve`, killed when dropped.
struct Server {
    child: Child,
    base: String,
    stderr: Option<std::process::ChildStderr>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(store: &Path, bind: &str) -> Server {
    let mut child = Command::new(bin())
        .args(["serve", "--store", store.to_str().unwrap(), "--bind", bind])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting netsplit serve");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    // netsplit: serving /path at http://127.0.0.1:PORT/ (…)
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no URL in {line:?}"))
        .trim_end_matches('/')
        .to_string();
    let stderr = child.stderr.take();
    Server {
        child,
        base: url,
        stderr,
    }
}

/// Sends one raw HTTP/1.1 request line; returns the status code and the whole response.
fn raw(base: &str, target: &str) -> (u16, String) {
    let addr = base.trim_start_matches("http://");
    let mut c = std::net::TcpStream::connect(addr).unwrap();
    write!(
        c,
        "GET {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut resp = Vec::new();
    c.read_to_end(&mut resp).unwrap();
    let resp = String::from_utf8_lossy(&resp).into_owned();
    let code = resp
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status in {resp:?}"));
    (code, resp)
}

struct Got {
    status: u16,
    content_type: String,
    length: Option<u64>,
    body: Vec<u8>,
}

fn get(rt: &tokio::runtime::Runtime, url: &str) -> Got {
    rt.block_on(async {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let r = client.get(url).send().await.expect("GET");
        let status = r.status().as_u16();
        let content_type = r
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        let length = r.content_length();
        let body = r.bytes().await.unwrap().to_vec();
        Got {
            status,
            content_type,
            length,
            body,
        }
    })
}

#[test]
fn serve_shows_the_store_and_nothing_outside_it() {
    let base = tmp_dir("serve", "store");
    let store = base.join("store");
    // a real run to serve
    let out = netsplit(&[
        "test",
        "--name",
        "t-ci-serve",
        "--target",
        "noop",
        "--workload",
        "set",
        "--time-limit",
        "1",
        "--rate",
        "100",
        "--concurrency",
        "2",
        "--store",
        store.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let run = std::fs::canonicalize(store.join("latest")).unwrap();
    let run_name = run.file_name().unwrap().to_str().unwrap().to_string();
    let run_path = format!("/t-ci-serve/{run_name}");

    // things outside the store that must never be served
    let secret = "TOPSECRET-not-in-the-store";
    std::fs::write(base.join("secret.txt"), secret).unwrap();
    std::os::unix::fs::symlink(&base, store.join("escape")).unwrap();
    std::os::unix::fs::symlink(base.join("secret.txt"), run.join("leak.txt")).unwrap();
    std::os::unix::fs::symlink("/etc", run.join("etc")).unwrap();
    // a large file, streamed
    let big: Vec<u8> = (0..24 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(run.join("big.log"), &big).unwrap();

    let srv = serve(&store, "127.0.0.1:0");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();

    // the index lists the run, with a link to its report
    let g = get(&rt, &format!("{}/", srv.base));
    assert_eq!(g.status, 200);
    assert_eq!(g.content_type, "text/html; charset=utf-8");
    let index = String::from_utf8(g.body).unwrap();
    assert!(index.contains("t-ci-serve"), "{index}");
    assert!(index.contains(&format!("t-ci-serve/{run_name}/report.html")));

    // the report, the history, the results, through a symlink within the store too
    let g = get(&rt, &format!("{}{run_path}/report.html", srv.base));
    assert_eq!(g.status, 200);
    assert_eq!(g.content_type, "text/html; charset=utf-8");
    assert!(String::from_utf8_lossy(&g.body).contains("netsplit report"));
    let g = get(&rt, &format!("{}{run_path}/history.jsonl", srv.base));
    assert_eq!(g.status, 200);
    assert_eq!(g.content_type, "application/x-ndjson");
    assert_eq!(g.body, std::fs::read(run.join("history.jsonl")).unwrap());
    let g = get(&rt, &format!("{}/latest/results.json", srv.base));
    assert_eq!(g.status, 200);
    assert_eq!(g.content_type, "application/json");
    let r: serde_json::Value = serde_json::from_slice(&g.body).unwrap();
    assert_eq!(r["verdict"], "valid");
    let g = get(&rt, &format!("{}{run_path}/plan.yaml", srv.base));
    assert_eq!(g.content_type, "text/plain; charset=utf-8");

    // a directory: redirected to its slash form, then listed
    let g = get(&rt, &format!("{}{run_path}", srv.base));
    assert_eq!(g.status, 301);
    let g = get(&rt, &format!("{}{run_path}/", srv.base));
    assert_eq!(g.status, 200);
    let listing = String::from_utf8(g.body).unwrap();
    assert!(listing.contains("href=\"report.html\"") && listing.contains("history.jsonl"));

    // the large file arrives whole, with its length announced
    let g = get(&rt, &format!("{}{run_path}/big.log", srv.base));
    assert_eq!(g.status, 200);
    assert_eq!(g.length, Some(big.len() as u64));
    assert!(g.body == big, "the large file arrives intact");

    // refused: dot segments (plain and percent-encoded), absolute paths, symlinks out
    let hostile = [
        "/../secret.txt".to_string(),
        "/%2e%2e/secret.txt".to_string(),
        "/%2E%2E/%2E%2E/%2E%2E/etc/passwd".to_string(),
        "/t-ci-serve/%2e%2e/%2e%2e/secret.txt".to_string(),
        "/.%2e/secret.txt".to_string(),
        "//etc/passwd".to_string(),
        "/%2Fetc%2Fpasswd".to_string(),
        "/etc/passwd".to_string(),
        format!(
            "http://{}/../secret.txt",
            srv.base.trim_start_matches("http://")
        ),
        "/escape/secret.txt".to_string(),
        "/escape/".to_string(),
        format!("{run_path}/leak.txt"),
        format!("{run_path}/etc/passwd"),
    ];
    for target in &hostile {
        let (code, resp) = raw(&srv.base, target);
        assert!((400..500).contains(&code), "{target}: {code}\n{resp}");
        assert!(!resp.contains(secret), "{target} leaked the secret");
        assert!(!resp.contains("root:"), "{target} leaked /etc/passwd");
    }
    // and a benign raw request works, so the refusals above are not a broken client
    let (code, _) = raw(&srv.base, &format!("{run_path}/results.json"));
    assert_eq!(code, 200);

    // read-only
    let code = rt.block_on(async {
        reqwest::Client::new()
            .post(format!("{}/index.html", srv.base))
            .body("x")
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    });
    assert_eq!(code, 405);
    drop(srv);
    std::fs::remove_dir_all(&base).unwrap();
}

#[test]
fn serving_on_a_non_loopback_address_warns() {
    let base = tmp_dir("serve", "warn");
    let mut srv = serve(&base, "0.0.0.0:0");
    let mut err = String::new();
    BufReader::new(srv.stderr.take().unwrap())
        .read_line(&mut err)
        .unwrap();
    assert!(
        err.contains("warning") && err.contains("not a loopback address"),
        "{err}"
    );
    drop(srv);
    // on loopback: no warning
    let mut srv = serve(&base, "127.0.0.1:0");
    assert!(srv.base.starts_with("http://127.0.0.1:"));
    let _ = srv.child.kill();
    let _ = srv.child.wait();
    let mut err = String::new();
    srv.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert!(!err.contains("warning"), "{err}");
    let out = netsplit(&["serve", "--store", base.join("nope").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(254), "{}", show(&out));
    std::fs::remove_dir_all(&base).unwrap();
}

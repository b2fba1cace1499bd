//! `netsplit serve`: a store over HTTP, read-only (axum on hyper).
//!
//! `/` is the store's `index.html` ([`crate::index`]); every run's `report.html`,
//! `results.json`, `history.jsonl`, `plan.yaml`, `netsplit.log` and node logs are served with
//! their content types, directories without an `index.html` as listings, files streamed in
//! chunks (a history of gigabytes is never read into memory). Only GET and HEAD.
//!
//! Nothing outside the store is ever served. A request path is percent-decoded once and must
//! then be a sequence of plain names: a `..` or `.` segment (also written `%2e%2e`), an empty
//! segment (`//etc/passwd`, `/%2Fetc/passwd`: an absolute path), a backslash or a NUL is refused
//! with 400 before the file system is touched; names beginning with a dot (temporary files) are
//! not found. The path that remains is resolved with every symlink followed and must still lie
//! inside the store's own resolved path — `latest` (a link within the store) works, a link that
//! leads out of it is refused with 403. The file opened is the resolved one.

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderValue, Method, StatusCode, Uri};
use axum::response::Response;
use percent_encoding::{percent_decode, utf8_percent_encode, AsciiSet, CONTROLS};
use std::ffi::OsStr;
use std::fmt::Write as _;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

/// Bytes per chunk of a streamed file.
const CHUNK: usize = 64 * 1024;

/// What the server serves: the store's resolved path.
#[derive(Debug, Clone)]
pub struct Served {
    root: PathBuf,
}

impl Served {
    /// A store directory (resolved once; it must exist).
    pub fn new(store: &Path) -> std::io::Result<Served> {
        let root = std::fs::canonicalize(store)?;
        if !root.is_dir() {
            return Err(std::io::Error::other(format!(
                "{} is not a directory",
                store.display()
            )));
        }
        Ok(Served { root })
    }

    /// The store's canonical path: every file served lies under it.
    pub fn root(&self) -> &Path {
        &self.root
    }
}

/// Why a request is refused: the status and a one-line reason (the response body).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refused {
    pub status: StatusCode,
    pub reason: String,
}

fn refuse(status: StatusCode, reason: impl Into<String>) -> Refused {
    Refused {
        status,
        reason: reason.into(),
    }
}

/// What a request path names inside the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Found {
    /// The resolved path (symlinks followed), inside the store.
    pub path: PathBuf,
    pub is_dir: bool,
    /// The request path ended in `/`.
    pub trailing_slash: bool,
}

/// The segments of a raw (percent-encoded) request path, or why it is refused. Pure.
pub(crate) fn segments(raw: &str) -> Result<(Vec<Vec<u8>>, bool), Refused> {
    let Some(rest) = raw.strip_prefix('/') else {
        return Err(refuse(
            StatusCode::BAD_REQUEST,
            "the path must begin with /",
        ));
    };
    let decoded: Vec<u8> = percent_decode(rest.as_bytes()).collect();
    if decoded.contains(&0) || decoded.contains(&b'\\') {
        return Err(refuse(
            StatusCode::BAD_REQUEST,
            "NUL or backslash in the path",
        ));
    }
    if decoded.is_empty() {
        return Ok((Vec::new(), true));
    }
    let trailing = decoded.ends_with(b"/");
    let body = if trailing {
        &decoded[..decoded.len() - 1]
    } else {
        &decoded[..]
    };
    let mut out = Vec::new();
    for seg in body.split(|b| *b == b'/') {
        match seg {
            b"" => {
                return Err(refuse(
                    StatusCode::BAD_REQUEST,
                    "empty path segment (an absolute path?) refused",
                ))
            }
            b"." | b".." => {
                return Err(refuse(
                    StatusCode::BAD_REQUEST,
                    "'.' and '..' segments are refused",
                ))
            }
            _ => {}
        }
        if seg.starts_with(b".") {
            return Err(refuse(StatusCode::NOT_FOUND, "not found"));
        }
        // each segment must be exactly one plain name
        let mut comps = Path::new(OsStr::from_bytes(seg)).components();
        if !matches!(
            (comps.next(), comps.next()),
            (Some(Component::Normal(_)), None)
        ) {
            return Err(refuse(StatusCode::BAD_REQUEST, "bad path segment"));
        }
        out.push(seg.to_vec());
    }
    Ok((out, trailing))
}

/// Resolves a raw request path to a file or directory inside the store.
pub(crate) fn resolve(served: &Served, raw: &str) -> Result<Found, Refused> {
    let (segs, trailing) = segments(raw)?;
    let mut p = served.root.clone();
    for s in &segs {
        p.push(OsStr::from_bytes(s));
    }
    let real = match std::fs::canonicalize(&p) {
        Ok(r) => r,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(refuse(StatusCode::NOT_FOUND, "not found"))
        }
        Err(_) => return Err(refuse(StatusCode::FORBIDDEN, "cannot be read")),
    };
    if !real.starts_with(&served.root) {
        return Err(refuse(
            StatusCode::FORBIDDEN,
            "leads outside the store (a symlink); refused",
        ));
    }
    let md = std::fs::metadata(&real).map_err(|_| refuse(StatusCode::NOT_FOUND, "not found"))?;
    if !md.is_dir() && !md.is_file() {
        return Err(refuse(StatusCode::FORBIDDEN, "not a regular file"));
    }
    Ok(Found {
        path: real,
        is_dir: md.is_dir(),
        trailing_slash: trailing || segs.is_empty(),
    })
}

/// The content type of a file by its name. Text that a browser should show (logs, YAML,
/// DOT) is `text/plain`; JSON Lines are `application/x-ndjson`.
pub(crate) fn content_type(path: &Path) -> &'static str {
    let ext = path
        .extension()
        .and_then(OsStr::to_str)
        .map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some("html") | Some("htm") => "text/html; charset=utf-8",
        Some("json") => "application/json",
        Some("jsonl") | Some("ndjson") => "application/x-ndjson",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("css") => "text/css; charset=utf-8",
        Some("xml") => "application/xml",
        Some("gz") => "application/gzip",
        Some("log") | Some("txt") | Some("yaml") | Some("yml") | Some("dot") | Some("edn")
        | Some("out") | Some("err") | Some("conf") => "text/plain; charset=utf-8",
        _ => {
            // node logs are often named without an extension (`stdout`, `etcd.log.1`)
            let name = path.file_name().and_then(OsStr::to_str).unwrap_or("");
            if name.contains(".log") || !name.contains('.') {
                "text/plain; charset=utf-8"
            } else {
                "application/octet-stream"
            }
        }
    }
}

/// Characters percent-encoded in a listing's links.
const LINK: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}')
    .add(b'\'')
    .add(b'&');

use crate::esc;

/// An HTML listing of a directory of the store (dot-entries hidden; directories first).
pub(crate) fn listing(dir: &Path, shown_as: &str) -> std::io::Result<String> {
    let mut entries: Vec<(bool, String, u64)> = Vec::new();
    for e in std::fs::read_dir(dir)?.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        // follows symlinks: `latest` lists as the directory it names
        let md = std::fs::metadata(e.path());
        let (is_dir, len) = md.map(|m| (m.is_dir(), m.len())).unwrap_or((false, 0));
        entries.push((is_dir, name, len));
    }
    entries.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let title = esc(shown_as);
    let mut h = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title>\
         <style>body{{font:14px/1.5 system-ui,sans-serif;margin:1.5em}}td{{padding:1px 10px}}\
         .n{{text-align:right;color:#555}}</style></head><body>\n<h1>{title}</h1>\n"
    );
    if entries.iter().any(|e| e.1 == "report.html") {
        h.push_str("<p><a href=\"report.html\"><b>report.html</b></a> — this run's report</p>\n");
    }
    h.push_str("<table>\n");
    if shown_as != "/" {
        h.push_str("<tr><td><a href=\"../\">../</a></td><td></td></tr>\n");
    }
    for (is_dir, name, len) in entries {
        let slash = if is_dir { "/" } else { "" };
        let _ = writeln!(
            h,
            "<tr><td><a href=\"{}{slash}\">{}{slash}</a></td><td class=\"n\">{}</td></tr>",
            utf8_percent_encode(&name, LINK),
            esc(&name),
            if is_dir {
                String::new()
            } else {
                human_size(len)
            }
        );
    }
    h.push_str("</table>\n</body></html>\n");
    Ok(h)
}

fn human_size(n: u64) -> String {
    match n {
        0..1024 => format!("{n} B"),
        1024..1_048_576 => format!("{:.1} KiB", n as f64 / 1024.0),
        1_048_576..1_073_741_824 => format!("{:.1} MiB", n as f64 / 1_048_576.0),
        _ => format!("{:.1} GiB", n as f64 / 1_073_741_824.0),
    }
}

fn text(status: StatusCode, body: String) -> Response {
    let mut r = Response::new(Body::from(body + "\n"));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

fn secure(r: &mut Response) {
    let h = r.headers_mut();
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    // Reports are self-contained: inline CSS and SVG, no scripts, nothing fetched.
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:",
        ),
    );
}

/// Answers one request (the whole router: every path comes here).
pub(crate) async fn handle(
    State(served): State<Arc<Served>>,
    method: Method,
    uri: Uri,
) -> Response {
    let mut r = answer(&served, &method, &uri).await;
    secure(&mut r);
    if method == Method::HEAD {
        *r.body_mut() = Body::empty();
    }
    r
}

async fn answer(served: &Served, method: &Method, uri: &Uri) -> Response {
    if method != Method::GET && method != Method::HEAD {
        let mut r = text(
            StatusCode::METHOD_NOT_ALLOWED,
            "read-only: GET and HEAD only".into(),
        );
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    let raw = uri.path();
    let found = {
        let served = served.clone();
        let raw = raw.to_string();
        match tokio::task::spawn_blocking(move || resolve(&served, &raw)).await {
            Ok(f) => f,
            Err(_) => return text(StatusCode::INTERNAL_SERVER_ERROR, "internal error".into()),
        }
    };
    let found = match found {
        Ok(f) => f,
        Err(e) => {
            tracing::info!(path = raw, status = %e.status, reason = %e.reason, "refused");
            return text(e.status, format!("{}: {}", e.status, e.reason));
        }
    };
    if found.is_dir {
        if !found.trailing_slash {
            // relative links in the listing need the slash
            let mut r = text(StatusCode::MOVED_PERMANENTLY, "moved".into());
            if let Ok(v) = HeaderValue::from_str(&format!("{raw}/")) {
                r.headers_mut().insert(header::LOCATION, v);
            }
            return r;
        }
        let index = found.path.join("index.html");
        let index_inside = std::fs::canonicalize(&index)
            .map(|p| p.starts_with(&served.root) && p.is_file())
            .unwrap_or(false);
        if index_inside {
            return file(&index).await;
        }
        let shown = percent_decode(raw.as_bytes())
            .decode_utf8_lossy()
            .into_owned();
        return match listing(&found.path, &shown) {
            Ok(h) => {
                let mut r = Response::new(Body::from(h));
                r.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/html; charset=utf-8"),
                );
                r
            }
            Err(e) => text(StatusCode::FORBIDDEN, format!("cannot list: {e}")),
        };
    }
    file(&found.path).await
}

/// A file's response: its content type and length, the body streamed in chunks.
async fn file(path: &Path) -> Response {
    let f = match tokio::fs::File::open(path).await {
        Ok(f) => f,
        Err(e) => return text(StatusCode::FORBIDDEN, format!("cannot open: {e}")),
    };
    let len = f.metadata().await.map(|m| m.len()).ok();
    let stream = tokio_util::io::ReaderStream::with_capacity(f, CHUNK);
    let mut r = Response::new(Body::from_stream(stream));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(path)),
    );
    if let Some(n) = len {
        r.headers_mut().insert(header::CONTENT_LENGTH, n.into());
    }
    r
}

/// The router: one handler for every path.
pub fn app(served: Served) -> axum::Router {
    axum::Router::new()
        .fallback(handle)
        .with_state(Arc::new(served))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_with_dot_segments_absolute_parts_or_nul_are_refused_before_the_disk() {
        for raw in [
            "/../etc/passwd",
            "/a/../../etc",
            "/%2e%2e/etc/passwd",
            "/%2E%2E/x",
            "/.%2e/x",
            "/a/%2e%2e%2f%2e%2e/x",
            "//etc/passwd",
            "/%2Fetc/passwd",
            "/a//b",
            "/./x",
            "/a%00b",
            "/a%5c..%5cb",
            "etc/passwd",
        ] {
            let e = segments(raw).unwrap_err();
            assert_eq!(e.status, StatusCode::BAD_REQUEST, "{raw}: {e:?}");
        }
        assert_eq!(
            segments("/.latest.1").unwrap_err().status,
            StatusCode::NOT_FOUND
        );
        let (s, trailing) = segments("/t/20260101T000000.000/report.html").unwrap();
        assert_eq!(s.len(), 3);
        assert!(!trailing);
        let (s, trailing) = segments("/t%20x/").unwrap();
        assert_eq!(s, vec![b"t x".to_vec()]);
        assert!(trailing);
        assert_eq!(segments("/").unwrap(), (vec![], true));
    }

    #[test]
    fn symlinks_out_of_the_store_are_refused_and_links_within_it_work() {
        let base = std::env::temp_dir().join(format!("netsplit-serve-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let store = base.join("store");
        std::fs::create_dir_all(store.join("t/r1")).unwrap();
        std::fs::write(store.join("t/r1/report.html"), "<p>hi</p>").unwrap();
        std::fs::write(base.join("secret"), "secret").unwrap();
        std::os::unix::fs::symlink("t/r1", store.join("latest")).unwrap();
        std::os::unix::fs::symlink("../../../secret", store.join("t/r1/leak")).unwrap();
        std::os::unix::fs::symlink(&base, store.join("up")).unwrap();
        let s = Served::new(&store).unwrap();
        let f = resolve(&s, "/latest/report.html").unwrap();
        assert!(f.path.ends_with("t/r1/report.html") && !f.is_dir);
        assert_eq!(
            resolve(&s, "/t/r1/leak").unwrap_err().status,
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            resolve(&s, "/up/secret").unwrap_err().status,
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            resolve(&s, "/nope").unwrap_err().status,
            StatusCode::NOT_FOUND
        );
        let d = resolve(&s, "/t").unwrap();
        assert!(d.is_dir && !d.trailing_slash);
        let page = listing(&store.join("t/r1"), "/t/r1/").unwrap();
        assert!(page.contains("href=\"report.html\""), "{page}");
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn content_types_by_name() {
        for (name, ty) in [
            ("report.html", "text/html; charset=utf-8"),
            ("history.jsonl", "application/x-ndjson"),
            ("results.json", "application/json"),
            ("plan.yaml", "text/plain; charset=utf-8"),
            ("nodes/n1/etcd.log", "text/plain; charset=utf-8"),
            ("x.bin", "application/octet-stream"),
        ] {
            assert_eq!(content_type(Path::new(name)), ty, "{name}");
        }
    }
}

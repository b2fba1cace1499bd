//! RESP2, Redis's wire protocol, and the connections that speak it: commands go out as arrays
//! of bulk strings ([`encode`]); replies ([`Reply`]: simple string, error, integer, bulk, array,
//! null) are parsed incrementally by the pure [`parse`], so the async client ([`Conn`], tokio)
//! and the blocking lifecycle probes ([`SyncConn`], std) share one parser.
//!
//! The connection types know *where* an exchange broke ([`RespError`]): before anything was
//! sent (the command certainly did not run), or after (it may have). The client turns that into
//! `fail` or `info`; this module never retries.

use std::io::{Read, Write};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One RESP2 reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `+OK`
    Simple(String),
    /// `-ERR …`, `-READONLY …`: the whole line after `-`.
    Error(String),
    /// `:42`
    Int(i64),
    /// `$3\r\nfoo`
    Bulk(Vec<u8>),
    /// `*2\r\n…`
    Array(Vec<Reply>),
    /// `$-1` or `*-1`
    Nil,
}

impl Reply {
    /// The error's first word (`READONLY`, `ERR`, `LOADING`), if this is an error.
    pub fn error_code(&self) -> Option<&str> {
        match self {
            Reply::Error(m) => Some(m.split_whitespace().next().unwrap_or("")),
            _ => None,
        }
    }
}

/// Encodes a command as a RESP array of bulk strings.
pub fn encode<A: AsRef<[u8]>>(args: &[A]) -> Vec<u8> {
    let mut out =
        Vec::with_capacity(16 + args.iter().map(|a| a.as_ref().len() + 16).sum::<usize>());
    out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for a in args {
        let a = a.as_ref();
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Largest bulk string or array we accept (a guard against garbage, not a Redis limit).
const MAX_LEN: i64 = 512 * 1024 * 1024;

/// Parses one reply from the front of `buf`: `Ok(Some((reply, bytes used)))`, `Ok(None)` when
/// `buf` holds only part of a reply, or an error naming what is malformed.
pub fn parse(buf: &[u8]) -> Result<Option<(Reply, usize)>, String> {
    parse_at(buf, 0, 0)
}

fn line(buf: &[u8], at: usize) -> Option<(&[u8], usize)> {
    let rest = buf.get(at..)?;
    let i = rest.windows(2).position(|w| w == b"\r\n")?;
    Some((&rest[..i], at + i + 2))
}

fn int_of(bytes: &[u8]) -> Result<i64, String> {
    std::str::from_utf8(bytes)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad integer {:?}", String::from_utf8_lossy(bytes)))
}

/// The length of a bulk string or array (`what`): `None` for -1 (a nil reply), an error
/// outside `0..=MAX_LEN`.
fn length_of(bytes: &[u8], what: &str) -> Result<Option<usize>, String> {
    match int_of(bytes)? {
        -1 => Ok(None),
        n if (0..=MAX_LEN).contains(&n) => Ok(Some(n as usize)),
        n => Err(format!("bad {what} length {n}")),
    }
}

fn parse_at(buf: &[u8], at: usize, depth: usize) -> Result<Option<(Reply, usize)>, String> {
    if depth > 64 {
        return Err("replies nested deeper than 64".into());
    }
    let Some(&kind) = buf.get(at) else {
        return Ok(None);
    };
    let Some((body, next)) = line(buf, at + 1) else {
        return Ok(None);
    };
    let text = || String::from_utf8_lossy(body).into_owned();
    Ok(Some(match kind {
        b'+' => (Reply::Simple(text()), next),
        b'-' => (Reply::Error(text()), next),
        b':' => (Reply::Int(int_of(body)?), next),
        b'$' => {
            let Some(n) = length_of(body, "bulk")? else {
                return Ok(Some((Reply::Nil, next)));
            };
            let end = next + n;
            if buf.len() < end + 2 {
                return Ok(None);
            }
            if &buf[end..end + 2] != b"\r\n" {
                return Err("bulk string not followed by CRLF".into());
            }
            (Reply::Bulk(buf[next..end].to_vec()), end + 2)
        }
        b'*' => {
            let Some(n) = length_of(body, "array")? else {
                return Ok(Some((Reply::Nil, next)));
            };
            let mut items = Vec::with_capacity(n.min(1024));
            let mut pos = next;
            for _ in 0..n {
                match parse_at(buf, pos, depth + 1)? {
                    Some((r, p)) => {
                        items.push(r);
                        pos = p;
                    }
                    None => return Ok(None),
                }
            }
            (Reply::Array(items), pos)
        }
        other => return Err(format!("unknown reply type byte {:?}", other as char)),
    }))
}

/// Why an exchange with Redis gave no reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RespError {
    /// No connection could be made (refused, unreachable, connect timeout): nothing was sent.
    #[error("connect: {0}")]
    Connect(String),
    /// The connection failed while sending or waiting: the command may have run.
    #[error("connection lost: {0}")]
    Io(String),
    /// No complete reply within the timeout: the command may have run.
    #[error("timeout: {0}")]
    Timeout(String),
    /// The bytes that came back are not RESP: the command was processed somehow.
    #[error("bad reply: {0}")]
    Protocol(String),
}

impl RespError {
    /// True when the command certainly did not reach Redis.
    pub fn never_sent(&self) -> bool {
        matches!(self, RespError::Connect(_))
    }
}

/// An address `host:port` with IPv6 literals bracketed.
pub fn addr(host: &str, port: u16) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// An async connection to one Redis server. After an error the connection is unusable (a late
/// reply would be taken for the next command's): drop it and connect again.
pub struct Conn {
    stream: tokio::net::TcpStream,
    buf: Vec<u8>,
    timeout: Duration,
}

impl Conn {
    /// Connects to `host:port` within `connect_timeout`; replies must then arrive within
    /// `timeout` of sending.
    pub async fn connect(
        host: &str,
        port: u16,
        connect_timeout: Duration,
        timeout: Duration,
    ) -> Result<Conn, RespError> {
        let a = addr(host, port);
        let stream =
            match tokio::time::timeout(connect_timeout, tokio::net::TcpStream::connect(&a)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => return Err(RespError::Connect(format!("{a}: {e}"))),
                Err(_) => {
                    return Err(RespError::Connect(format!(
                        "{a}: no connection within {} ms",
                        connect_timeout.as_millis()
                    )))
                }
            };
        let _ = stream.set_nodelay(true);
        Ok(Conn {
            stream,
            buf: Vec::with_capacity(4096),
            timeout,
        })
    }

    /// Sends one command and returns its reply.
    pub async fn call<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Result<Reply, RespError> {
        let mut r = self.pipeline(&[encode(args)], 1).await?;
        Ok(r.pop().unwrap_or(Reply::Nil))
    }

    /// Sends pre-encoded commands in one write and reads `replies` replies.
    pub async fn pipeline(
        &mut self,
        commands: &[Vec<u8>],
        replies: usize,
    ) -> Result<Vec<Reply>, RespError> {
        let bytes = commands.concat();
        let t = self.timeout;
        let work = async {
            self.stream
                .write_all(&bytes)
                .await
                .map_err(|e| RespError::Io(format!("sending: {e}")))?;
            let mut out = Vec::with_capacity(replies);
            let mut chunk = [0u8; 8192];
            while out.len() < replies {
                if let Some((r, used)) = parse(&self.buf).map_err(RespError::Protocol)? {
                    self.buf.drain(..used);
                    out.push(r);
                    continue;
                }
                let n = self
                    .stream
                    .read(&mut chunk)
                    .await
                    .map_err(|e| RespError::Io(format!("reading: {e}")))?;
                if n == 0 {
                    return Err(RespError::Io("closed by the server".into()));
                }
                self.buf.extend_from_slice(&chunk[..n]);
            }
            Ok(out)
        };
        match tokio::time::timeout(t, work).await {
            Ok(r) => r,
            Err(_) => Err(RespError::Timeout(format!(
                "no reply within {} ms",
                t.as_millis()
            ))),
        }
    }
}

/// A blocking connection for the lifecycle's probes (PING, INFO), which run on plain threads.
pub struct SyncConn {
    stream: std::net::TcpStream,
    buf: Vec<u8>,
}

impl SyncConn {
    /// Connects with `timeout` for the connect and for every read and write.
    pub fn connect(host: &str, port: u16, timeout: Duration) -> Result<SyncConn, RespError> {
        use std::net::ToSocketAddrs;
        let a = addr(host, port);
        let sa = a
            .to_socket_addrs()
            .map_err(|e| RespError::Connect(format!("{a}: {e}")))?
            .next()
            .ok_or_else(|| RespError::Connect(format!("{a}: no address")))?;
        let stream = std::net::TcpStream::connect_timeout(&sa, timeout)
            .map_err(|e| RespError::Connect(format!("{a}: {e}")))?;
        let _ = stream.set_read_timeout(Some(timeout));
        let _ = stream.set_write_timeout(Some(timeout));
        let _ = stream.set_nodelay(true);
        Ok(SyncConn {
            stream,
            buf: Vec::new(),
        })
    }

    /// Sends one command and waits for its reply.
    pub fn call<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Result<Reply, RespError> {
        self.stream
            .write_all(&encode(args))
            .map_err(|e| RespError::Io(format!("sending: {e}")))?;
        let mut chunk = [0u8; 8192];
        loop {
            if let Some((r, used)) = parse(&self.buf).map_err(RespError::Protocol)? {
                self.buf.drain(..used);
                return Ok(r);
            }
            let n = self.stream.read(&mut chunk).map_err(|e| match e.kind() {
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
                    RespError::Timeout(e.to_string())
                }
                _ => RespError::Io(format!("reading: {e}")),
            })?;
            if n == 0 {
                return Err(RespError::Io("closed by the server".into()));
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

/// The `field:value` lines of an `INFO` answer.
pub fn info_fields(text: &str) -> Vec<(&str, &str)> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.trim_end().split_once(':'))
        .collect()
}

#[cfg(test)]
mod tests;

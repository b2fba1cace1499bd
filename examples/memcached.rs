//! Adding a database from an application crate: memcached, written only against netsplit's
//! public API (docs/architecture.md, "Adding a database", walks through this file).
//!
//! Debian's `memcached` runs on every node, one server per node, no replication and no
//! persistence. A worker's client talks to its own node's server. It speaks two vocabularies:
//!
//! - **register**: `read` is `get`, `write` is `set`, `cas [k, [old, new]]` is `gets` (the
//!   value and its CAS token) then `cas` with that token — `fail` when the value is not `old`
//!   or changed in between (`EXISTS`);
//! - **counter**: `add d` is `incr` (after an `add` of the first value when the key is new),
//!   `read` is `get`. memcached's `decr` stops at 0, so a negative `add` is refused (`fail`,
//!   nothing sent).
//!
//! Kill and pause come with the [`Cluster`] wrapper, through the pid file netsplit writes when
//! it starts the server. Everything the server held is lost when it is killed: on one node with
//! no faults the register and counter checkers say valid; with kills they say INVALID and name
//! the reads that saw nothing where acknowledged writes were.
//!
//! ```sh
//! cargo run --example memcached -- test --target memcached --workload counter \
//!     --cluster mc --time-limit 5
//! # → valid
//! cargo run --example memcached -- test --target memcached --workload counter \
//!     --cluster mc --time-limit 8 --nemesis kill --nemesis-interval 2
//! # → INVALID: reads below what was acknowledged
//! ```

use netsplit::control::util::{self, Daemon};
use netsplit::db::cluster::{Cluster, NodeFiles, NodeLifecycle};
use netsplit::db::vocab::{key_text, CounterOp, Op, RegisterOp, Typed, Vocabulary};
use netsplit::db::{BoxFuture, Client, Completion, Db, DbDef, DbEnv};
use netsplit::registry::Registry;
use serde::Deserialize;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader as StdBufReader, Write};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// The vocabularies memcached's client speaks.
const VOCABULARIES: &[&str] = &[Vocabulary::Register.name(), Vocabulary::Counter.name()];

/// How long one request may take before its outcome is unknown (`info`).
const TIMEOUT: Duration = Duration::from_secs(2);

/// `--target-opt` options (the plan's `target.opts`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Opts {
    /// The port every server listens on.
    pub port: u16,
    /// Memory for items, in megabytes (`memcached -m`).
    pub memory: u32,
}

impl Default for Opts {
    fn default() -> Self {
        Opts {
            port: 11211,
            memory: 64,
        }
    }
}

/// memcached's own part of a run: its options, where each node's server listens, the run's
/// key namespace and the workload's vocabulary. Everything else is the [`Cluster`] wrapper's.
pub struct Memcached {
    opts: Opts,
    endpoints: Vec<(String, u16)>,
    ns: String,
    vocabulary: Vocabulary,
}

fn dir(c: &Cluster<Memcached>, i: usize) -> String {
    format!("{}/memcached", c.nodes[i].workdir)
}

impl NodeLifecycle for Memcached {
    const NAME: &'static str = "memcached";

    fn install(c: &Cluster<Self>, i: usize) -> anyhow::Result<()> {
        util::install_packages(c.remote(i)?, &["memcached"])?;
        Ok(())
    }

    fn start(c: &Cluster<Self>, i: usize) -> anyhow::Result<()> {
        let (host, port) = &c.endpoints[i];
        let d = Daemon {
            name: "memcached".into(),
            // -U 0: no UDP; -u: the user it runs as when started by root (ignored otherwise).
            argv: [
                "memcached",
                "-l",
                host,
                "-p",
                &port.to_string(),
                "-U",
                "0",
                "-m",
                &c.opts.memory.to_string(),
                "-u",
                "memcache",
            ]
            .map(String::from)
            .to_vec(),
            env: Vec::new(),
            cwd: dir(c, i),
            pidfile: Self::files(c, i).pid_file,
            logfile: Self::files(c, i).log_file,
        };
        c.start_daemon(i, &d)
    }

    /// Its pid file and log; no data directory (it keeps nothing on disk).
    fn files(c: &Cluster<Self>, i: usize) -> NodeFiles {
        let d = dir(c, i);
        NodeFiles::new(
            format!("{d}/memcached.pid"),
            format!("{d}/memcached.log"),
            None,
        )
    }

    /// Serving when every node answers `version`.
    fn not_serving(c: &Cluster<Self>) -> Option<(usize, String)> {
        c.first_problem(|i| version(&c.endpoints[i]).err())
    }

    fn start_timeout(_c: &Cluster<Self>) -> Duration {
        Duration::from_secs(15)
    }

    fn client(c: &Cluster<Self>, i: usize) -> BoxFuture<'_, anyhow::Result<Box<dyn Client>>> {
        let client = McClient {
            addr: c.endpoints[i].clone(),
            ns: c.ns.clone(),
            conn: None,
        };
        let typed = Typed::new("memcached", c.vocabulary, client);
        Box::pin(async move { Ok(Box::new(typed?) as Box<dyn Client>) })
    }
}

/// Asks a server for its version (a blocking probe, as setup is blocking).
fn version((host, port): &(String, u16)) -> Result<(), String> {
    let probe = || -> std::io::Result<String> {
        let addr = std::net::ToSocketAddrs::to_socket_addrs(&(host.as_str(), *port))?
            .next()
            .ok_or_else(|| std::io::Error::other("no address"))?;
        let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1))?;
        s.set_read_timeout(Some(Duration::from_secs(1)))?;
        s.write_all(b"version\r\n")?;
        let mut line = String::new();
        StdBufReader::new(s).read_line(&mut line)?;
        Ok(line)
    };
    match probe() {
        Ok(l) if l.starts_with("VERSION") => Ok(()),
        Ok(l) => Err(format!("answered {:?} to version", l.trim_end())),
        Err(e) => Err(e.to_string()),
    }
}

/// One worker's connection to its node's server (opened on first use, dropped after any
/// error so that the next op starts clean).
pub struct McClient {
    addr: (String, u16),
    ns: String,
    conn: Option<BufReader<TcpStream>>,
}

/// How an exchange went wrong: before anything was sent (`fail`: the op did not happen) or
/// after (`info`: it may have).
enum Wrong {
    NotSent(String),
    Unknown(String),
}

impl McClient {
    fn key(&self, name: &str) -> String {
        // memcached keys: at most 250 bytes, no whitespace or control characters.
        let k: String = format!("{}{name}", self.ns)
            .chars()
            .map(|c| {
                if c.is_whitespace() || c.is_control() {
                    '_'
                } else {
                    c
                }
            })
            .collect();
        k.chars().take(250).collect()
    }

    /// Sends `request` and reads lines until `done` says the reply is complete.
    async fn exchange(
        &mut self,
        request: &[u8],
        done: fn(&str) -> bool,
    ) -> Result<Vec<String>, Wrong> {
        if self.conn.is_none() {
            let (h, p) = &self.addr;
            let s = tokio::time::timeout(TIMEOUT, TcpStream::connect((h.as_str(), *p)))
                .await
                .map_err(|_| Wrong::NotSent("timeout connecting".into()))?
                .map_err(|e| Wrong::NotSent(format!("connecting: {e}")))?;
            self.conn = Some(BufReader::new(s));
        }
        let conn = self.conn.as_mut().expect("connected");
        let talk = async {
            conn.get_mut().write_all(request).await?;
            let mut lines = Vec::new();
            loop {
                let mut line = String::new();
                if conn.read_line(&mut line).await? == 0 {
                    return Err(std::io::Error::other("connection closed"));
                }
                let line = line.trim_end_matches(['\r', '\n']).to_string();
                // A VALUE line is followed by its data block: read exactly that many bytes.
                if let Some(n) = line
                    .split(' ')
                    .nth(3)
                    .filter(|_| line.starts_with("VALUE "))
                {
                    let n: usize = n.parse().map_err(std::io::Error::other)?;
                    let mut data = vec![0; n + 2];
                    conn.read_exact(&mut data).await?;
                    lines.push(line);
                    lines.push(String::from_utf8_lossy(&data[..n]).into_owned());
                    continue;
                }
                let end = done(&line);
                lines.push(line);
                if end {
                    return Ok(lines);
                }
            }
        };
        let r = match tokio::time::timeout(TIMEOUT, talk).await {
            Ok(Ok(lines)) => Ok(lines),
            Ok(Err(e)) => Err(Wrong::Unknown(e.to_string())),
            Err(_) => Err(Wrong::Unknown("timeout".into())),
        };
        if r.is_err() {
            self.conn = None;
        }
        r
    }

    /// `gets`: the value (parsed from its JSON text) and its CAS token, or None.
    async fn gets(&mut self, key: &str) -> Result<Option<(Value, String)>, Wrong> {
        let lines = self
            .exchange(format!("gets {key}\r\n").as_bytes(), |l| {
                l == "END" || is_error(l)
            })
            .await?;
        match lines.as_slice() {
            [end] if end == "END" => Ok(None),
            [head, data, end] if end == "END" => {
                let token = head.split(' ').nth(4).unwrap_or_default().to_string();
                let v = serde_json::from_str(data).unwrap_or_else(|_| Value::String(data.clone()));
                Ok(Some((v, token)))
            }
            other => Err(Wrong::Unknown(format!("unexpected reply {other:?}"))),
        }
    }

    /// A storage command (`set`, `add`, `cas`) of `data`; its one-line reply.
    async fn store(
        &mut self,
        cmd: &str,
        key: &str,
        data: &str,
        token: Option<&str>,
    ) -> Result<String, Wrong> {
        let token = token.map(|t| format!(" {t}")).unwrap_or_default();
        let req = format!("{cmd} {key} 0 0 {}{token}\r\n{data}\r\n", data.len());
        let lines = self.exchange(req.as_bytes(), |_| true).await?;
        Ok(lines.concat())
    }

    async fn perform(&mut self, op: Op, request: &Value) -> Completion {
        match self.perform_op(op, request).await {
            Ok(c) => c,
            Err(Wrong::NotSent(e)) => Completion::fail(request.clone(), e),
            Err(Wrong::Unknown(e)) => Completion::info(request.clone(), e),
        }
    }

    async fn perform_op(&mut self, op: Op, request: &Value) -> Result<Completion, Wrong> {
        let stored = |reply: String, ok: Value| match reply.as_str() {
            "STORED" => Completion::ok(ok),
            "EXISTS" | "NOT_FOUND" | "NOT_STORED" => Completion::fail(request.clone(), reply),
            _ => Completion::info(request.clone(), reply),
        };
        Ok(match op {
            Op::Register(RegisterOp::Read { key }) => {
                let v = self.gets(&self.key(&key_text(&key))).await?.map(|(v, _)| v);
                Completion::ok(json!([key, v]))
            }
            Op::Register(RegisterOp::Write { key, value }) => {
                let k = self.key(&key_text(&key));
                stored(
                    self.store("set", &k, &value.to_string(), None).await?,
                    request.clone(),
                )
            }
            Op::Register(RegisterOp::Cas { key, old, new }) => {
                let k = self.key(&key_text(&key));
                match self.gets(&k).await? {
                    Some((v, token)) if v == old => stored(
                        self.store("cas", &k, &new.to_string(), Some(&token))
                            .await?,
                        request.clone(),
                    ),
                    _ => Completion::fail(
                        request.clone(),
                        "the register does not hold the old value",
                    ),
                }
            }
            Op::Counter(CounterOp::Add(d)) if d < 0 => Completion::fail(
                request.clone(),
                "memcached's decr stops at 0: negative adds are not sent",
            ),
            Op::Counter(CounterOp::Add(d)) => {
                let k = self.key("counter");
                for _ in 0..3 {
                    let reply = self
                        .exchange(format!("incr {k} {d}\r\n").as_bytes(), |_| true)
                        .await?;
                    if reply[0] != "NOT_FOUND" {
                        return Ok(match reply[0].parse::<u64>() {
                            Ok(_) => Completion::ok(request.clone()),
                            Err(_) => Completion::info(request.clone(), reply[0].clone()),
                        });
                    }
                    // A new counter: `add` creates it holding d, unless another worker's
                    // `add` came first (NOT_STORED): then incr again.
                    match self.store("add", &k, &d.to_string(), None).await?.as_str() {
                        "STORED" => return Ok(Completion::ok(request.clone())),
                        "NOT_STORED" => continue,
                        other => return Ok(Completion::info(request.clone(), other.to_string())),
                    }
                }
                Completion::fail(
                    request.clone(),
                    "the counter kept vanishing between incr and add",
                )
            }
            Op::Counter(CounterOp::Read) => {
                let v = self.gets(&self.key("counter")).await?.map(|(v, _)| v);
                Completion::ok(v.unwrap_or(json!(0)))
            }
            other => other.unsupported("memcached", request),
        })
    }
}

fn is_error(line: &str) -> bool {
    line == "ERROR" || line.starts_with("CLIENT_ERROR") || line.starts_with("SERVER_ERROR")
}

netsplit::speaks!(McClient: register, counter);

/// The target's definition: its options parsed once, the vocabulary checked against the run's
/// workload, the lifecycle put in the [`Cluster`] wrapper.
pub fn target() -> DbDef {
    DbDef::new(
        "memcached",
        "memcached (Debian's package): one server per node, no replication, no persistence",
        true,
        VOCABULARIES,
        |env: DbEnv| {
            let opts: Opts =
                netsplit::opts::from_map(&env.plan.target.opts, "target.opts", &env.plan.origins)?;
            let db = Memcached {
                endpoints: env.endpoints(opts.port),
                opts,
                ns: env.deploy.namespace(),
                vocabulary: Vocabulary::for_run("memcached", VOCABULARIES, &env.workload)?,
            };
            Ok(Arc::new(Cluster::for_run(env, db)?) as Arc<dyn Db>)
        },
    )
}

/// The built-in registry plus memcached.
pub fn registry() -> Registry {
    Registry::builtin().db(target())
}

fn main() {
    std::process::exit(netsplit::cli::main_with(registry()).into());
}

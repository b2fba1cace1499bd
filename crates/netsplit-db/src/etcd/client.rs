//! The etcd client: etcd's v3 JSON gateway (`/v3/kv/range`, `/v3/kv/put`, `/v3/kv/txn`,
//! `/v3/maintenance/status`, `/v3/cluster/member/list`) over plain HTTP with reqwest, and the
//! per-workload operations in the op formats of docs/adding-a-target.md.
//!
//! Why the gateway rather than gRPC: it needs no code generation and no protobuf dependency, and
//! it is the same Raft path (the gateway forwards to the member's own gRPC server).
//!
//! The part that decides whether a history can be trusted is error classification
//! ([`EtcdError::is_definite`], [`Outcome`]): an operation is `fail` only when it certainly had
//! no effect — it was never sent, etcd rejected it before proposing it, a transaction's compare
//! did not hold, or it was a read (reads have no effect, so failing them is always safe). Every
//! other error of a write is `info`. Nothing is ever retried here: an operation that needs two
//! round trips (read, then a compare-and-put transaction) is one history op, and a lost compare
//! ends it as `fail`. docs/targets/etcd.md has the table.

use super::config::{EtcdOpts, ReadMode};
use crate::vocab::{key_text, BankOp, CounterOp, MicroOp, Op, RegisterOp, SetOp, Vocabulary};
use crate::Completion;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet};

/// Why a request to etcd did not give an answer we could use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EtcdError {
    /// The TCP connection could not be made (refused, unreachable, connect timeout): the
    /// request was never sent.
    #[error("connect: {0}")]
    Connect(String),
    /// Sent (or possibly sent), no complete answer within the timeout.
    #[error("timeout: {0}")]
    Timeout(String),
    /// The connection broke while the request or answer was in flight.
    #[error("transport: {0}")]
    Transport(String),
    /// etcd (or its gateway) answered with an error.
    #[error(
        "http {http}{}: {message}",
        .code.map(|c| format!(", grpc code {c}")).unwrap_or_default()
    )]
    Server {
        /// HTTP status of the answer.
        http: u16,
        /// gRPC status code from the body, when it had one.
        code: Option<i64>,
        /// The body's `message` (or `error`), else the end of the body.
        message: String,
    },
    /// The answer arrived but could not be understood.
    #[error("bad answer: {0}")]
    Decode(String),
}

/// gRPC codes etcd uses only for requests it rejected before proposing them to Raft (bad
/// argument, not found, exists, permission, quota/too many requests, failed precondition,
/// compacted or future revision, unimplemented, unauthenticated).
const DEFINITE_GRPC_CODES: &[i64] = &[3, 5, 6, 7, 8, 9, 11, 12, 16];

/// Messages that say the request was never sent to etcd — when they come with gRPC code 1
/// (Canceled, HTTP 408 from the gateway). The gRPC gateway inside etcd answers `grpc: the
/// client connection is closing` when its own connection to the server is being torn down (a
/// paused or restarting member); gRPC returns that error as Canceled from the checks it makes
/// before it opens a stream for a unary call, so nothing reached Raft. A call already in flight
/// when the connection closes gets the same text with code 14 (Unavailable, HTTP 503), which
/// stays ambiguous, as does `transport is closing`.
const NEVER_SENT_MESSAGES: &[&str] = &["grpc: the client connection is closing"];

/// Messages that say "outcome unknown" whatever code carries them.
const AMBIGUOUS_MESSAGES: &[&str] = &[
    "request timed out",
    "leader changed",
    "server stopped",
    "no leader",
    "timed out",
    "connection lost",
    "transport is closing",
];

impl EtcdError {
    /// True when the request certainly had no effect (so a write that got this error is
    /// `fail`); false when it may have taken effect (`info`).
    pub fn is_definite(&self) -> bool {
        match self {
            EtcdError::Connect(_) => true,
            EtcdError::Timeout(_) | EtcdError::Transport(_) | EtcdError::Decode(_) => false,
            EtcdError::Server {
                http,
                code,
                message,
            } => {
                let m = message.to_ascii_lowercase();
                let canceled = *code == Some(1) || (code.is_none() && *http == 408);
                if canceled && NEVER_SENT_MESSAGES.iter().any(|a| m.contains(a)) {
                    return true;
                }
                if AMBIGUOUS_MESSAGES.iter().any(|a| m.contains(a)) {
                    return false;
                }
                code.is_some_and(|c| DEFINITE_GRPC_CODES.contains(&c))
            }
        }
    }

    fn from_reqwest(e: reqwest::Error) -> EtcdError {
        // The source chain carries the useful part ("Connection refused", "connection closed
        // before message completed").
        let mut msg = e.to_string();
        let mut src = std::error::Error::source(&e);
        while let Some(s) = src {
            msg.push_str(": ");
            msg.push_str(&s.to_string());
            src = s.source();
        }
        if e.is_connect() {
            EtcdError::Connect(msg)
        } else if e.is_timeout() {
            EtcdError::Timeout(msg)
        } else {
            EtcdError::Transport(msg)
        }
    }
}

/// How one operation ended, in the history's terms.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// It happened; the completion's value.
    Ok(Value),
    /// It certainly did not happen; why.
    Fail(String),
    /// Unknown whether it happened; why.
    Info(String),
}

impl Outcome {
    /// The outcome of an error during a read, or during the read phase of an op that has not
    /// written anything yet: always `fail` (nothing took effect).
    pub fn read_error(e: &EtcdError) -> Outcome {
        Outcome::Fail(e.to_string())
    }
    /// The outcome of an error of a request that may write: `fail` only if definite.
    pub fn write_error(e: &EtcdError) -> Outcome {
        if e.is_definite() {
            Outcome::Fail(e.to_string())
        } else {
            Outcome::Info(e.to_string())
        }
    }
}

impl Outcome {
    /// The runner's completion: `fail` and `info` echo the request.
    pub fn completion(self, request: &Value) -> Completion {
        match self {
            Outcome::Ok(v) => Completion::ok(v),
            Outcome::Fail(e) => Completion::fail(request.clone(), e),
            Outcome::Info(e) => Completion::info(request.clone(), e),
        }
    }
}

/// One key-value pair as etcd returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kv {
    /// The key.
    pub key: Vec<u8>,
    /// The value.
    pub value: Vec<u8>,
    /// The revision of the key's creation (since it was last deleted).
    pub create_revision: i64,
    /// The revision of the key's last change.
    pub mod_revision: i64,
    /// Number of changes since its creation (1 after the first put).
    pub version: i64,
}

/// A range's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangeResult {
    /// The pairs in the range, in key order.
    pub kvs: Vec<Kv>,
    /// The store revision the answer reflects.
    pub revision: i64,
}

/// A transaction's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnResult {
    /// Whether every compare held (and the success branch ran).
    pub succeeded: bool,
    /// The store revision after the transaction.
    pub revision: i64,
    /// The key-values of each range request of the branch that ran, in order.
    pub ranges: Vec<Vec<Kv>>,
}

/// A compare of a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Compare {
    /// The key's mod revision equals this (0 = the key is absent).
    ModRevision(Vec<u8>, i64),
    /// The key's create revision equals this (0 = absent).
    CreateRevision(Vec<u8>, i64),
    /// The key exists and its value equals this.
    Value(Vec<u8>, Vec<u8>),
}

/// A request inside a transaction branch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxnOp {
    /// Read one key, or `[key, range_end)` when `range_end` is given.
    Range {
        /// The key, or the range's start.
        key: Vec<u8>,
        /// The range's end (exclusive).
        range_end: Option<Vec<u8>>,
    },
    /// Set a key to a value.
    Put {
        /// The key.
        key: Vec<u8>,
        /// The value.
        value: Vec<u8>,
    },
}

/// A member's answer to `/v3/maintenance/status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// This member's id.
    pub member_id: u64,
    /// The member this member believes leads (0 = none known).
    pub leader: u64,
    /// The member's current raft term.
    pub raft_term: u64,
    /// The member's raft log index.
    pub raft_index: u64,
    /// The etcd server's version.
    pub version: String,
}

/// One entry of `/v3/cluster/member/list`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The member's id.
    pub id: u64,
    /// Empty for a member that was added but never started.
    pub name: String,
    /// The URLs its peers reach it at.
    pub peer_urls: Vec<String>,
    /// The URLs clients reach it at.
    pub client_urls: Vec<String>,
}

/// Where each workload keeps its data in etcd's key space.
pub mod keys {
    /// Prefix of a register's key, after the run's namespace (`register/<k>`).
    pub const REGISTER: &str = "register/";
    /// Prefix of the set's elements, after the namespace (a key per element).
    pub const SET: &str = "set/";
    /// The counter's key, after the namespace.
    pub const COUNTER: &str = "counter";
    /// Prefix of the bank's accounts, after the namespace (a key per account).
    pub const BANK: &str = "bank/";
    /// Prefix of a list-append list's key, after the namespace.
    pub const LIST: &str = "list/";
    /// Prefix of an rw-register register's key, after the namespace.
    pub const RW: &str = "rw/";
}

/// The end of the range that holds every key starting with `prefix` (etcd's `WithPrefix`).
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    // All 0xff (or empty): to the end of the key space.
    vec![0]
}

/// A 64-bit integer of the gateway's JSON (`what`: `an int64` or `a uint64`): a number, a
/// decimal string (proto3 JSON writes 64-bit integers so), or 0 when absent.
fn num<T: std::str::FromStr + Default>(
    v: Option<&Value>,
    what: &str,
    of: impl Fn(&serde_json::Number) -> Option<T>,
) -> Result<T, EtcdError> {
    let bad = |x: String| EtcdError::Decode(format!("not {what}: {x}"));
    match v {
        None | Some(Value::Null) => Ok(T::default()),
        Some(Value::Number(n)) => of(n).ok_or_else(|| bad(n.to_string())),
        Some(Value::String(s)) => s.parse().map_err(|_| bad(format!("{s:?}"))),
        Some(other) => Err(bad(other.to_string())),
    }
}

fn num_i64(v: Option<&Value>) -> Result<i64, EtcdError> {
    num(v, "an int64", serde_json::Number::as_i64)
}

fn num_u64(v: Option<&Value>) -> Result<u64, EtcdError> {
    num(v, "a uint64", serde_json::Number::as_u64)
}

/// A text field that etcd leaves out when empty.
fn text(v: Option<&Value>) -> String {
    v.and_then(Value::as_str).unwrap_or_default().to_string()
}

fn bytes_field(v: &Value, field: &str) -> Result<Vec<u8>, EtcdError> {
    match v.get(field) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) => B64
            .decode(s)
            .map_err(|e| EtcdError::Decode(format!("{field}: {e}"))),
        Some(other) => Err(EtcdError::Decode(format!("{field}: not a string: {other}"))),
    }
}

fn parse_kvs(v: &Value) -> Result<Vec<Kv>, EtcdError> {
    let Some(kvs) = v.get("kvs") else {
        return Ok(Vec::new());
    };
    let arr = kvs
        .as_array()
        .ok_or_else(|| EtcdError::Decode(format!("kvs is not an array: {kvs}")))?;
    arr.iter()
        .map(|kv| {
            Ok(Kv {
                key: bytes_field(kv, "key")?,
                value: bytes_field(kv, "value")?,
                create_revision: num_i64(kv.get("create_revision"))?,
                mod_revision: num_i64(kv.get("mod_revision"))?,
                version: num_i64(kv.get("version"))?,
            })
        })
        .collect()
}

fn header_revision(v: &Value) -> Result<i64, EtcdError> {
    num_i64(v.get("header").and_then(|h| h.get("revision")))
}

/// Parses a `/v3/kv/range` answer.
pub fn parse_range(v: &Value) -> Result<RangeResult, EtcdError> {
    Ok(RangeResult {
        kvs: parse_kvs(v)?,
        revision: header_revision(v)?,
    })
}

/// Parses a `/v3/kv/txn` answer. (`succeeded: false` is omitted by the gateway, like every
/// protobuf default.)
pub fn parse_txn(v: &Value) -> Result<TxnResult, EtcdError> {
    let succeeded = match v.get("succeeded") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(other) => return Err(EtcdError::Decode(format!("succeeded: {other}"))),
    };
    let mut ranges = Vec::new();
    if let Some(resps) = v.get("responses").and_then(Value::as_array) {
        for r in resps {
            if let Some(rr) = r.get("response_range").or_else(|| r.get("responseRange")) {
                ranges.push(parse_kvs(rr)?);
            }
        }
    }
    Ok(TxnResult {
        succeeded,
        revision: header_revision(v)?,
        ranges,
    })
}

/// Parses a `/v3/maintenance/status` answer.
pub fn parse_status(v: &Value) -> Result<Status, EtcdError> {
    Ok(Status {
        member_id: num_u64(v.get("header").and_then(|h| h.get("member_id")))?,
        leader: num_u64(v.get("leader"))?,
        raft_term: num_u64(v.get("raftTerm").or_else(|| v.get("raft_term")))?,
        raft_index: num_u64(v.get("raftIndex").or_else(|| v.get("raft_index")))?,
        version: text(v.get("version")),
    })
}

/// Parses a `/v3/cluster/member/list` answer.
pub fn parse_members(v: &Value) -> Result<Vec<Member>, EtcdError> {
    let strings = |m: &Value, a: &str, b: &str| -> Vec<String> {
        m.get(a)
            .or_else(|| m.get(b))
            .and_then(Value::as_array)
            .map(|xs| {
                xs.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let Some(ms) = v.get("members").and_then(Value::as_array) else {
        return Ok(Vec::new());
    };
    ms.iter()
        .map(|m| {
            Ok(Member {
                id: num_u64(m.get("ID").or_else(|| m.get("id")))?,
                name: text(m.get("name")),
                peer_urls: strings(m, "peerURLs", "peer_urls"),
                client_urls: strings(m, "clientURLs", "client_urls"),
            })
        })
        .collect()
}

fn compare_json(c: &Compare) -> Value {
    match c {
        Compare::ModRevision(k, rev) => json!({
            "key": B64.encode(k), "target": "MOD", "result": "EQUAL",
            "mod_revision": rev.to_string()
        }),
        Compare::CreateRevision(k, rev) => json!({
            "key": B64.encode(k), "target": "CREATE", "result": "EQUAL",
            "create_revision": rev.to_string()
        }),
        Compare::Value(k, v) => json!({
            "key": B64.encode(k), "target": "VALUE", "result": "EQUAL",
            "value": B64.encode(v)
        }),
    }
}

fn txn_op_json(op: &TxnOp, serializable: bool) -> Value {
    match op {
        TxnOp::Range { key, range_end } => {
            let mut r = Map::new();
            r.insert("key".into(), Value::String(B64.encode(key)));
            if let Some(end) = range_end {
                r.insert("range_end".into(), Value::String(B64.encode(end)));
            }
            if serializable {
                r.insert("serializable".into(), Value::Bool(true));
            }
            json!({ "request_range": r })
        }
        TxnOp::Put { key, value } => json!({
            "request_put": { "key": B64.encode(key), "value": B64.encode(value) }
        }),
    }
}

/// The JSON body of a transaction.
pub fn txn_body(compares: &[Compare], success: &[TxnOp], serializable: bool) -> Value {
    json!({
        "compare": compares.iter().map(compare_json).collect::<Vec<_>>(),
        "success": success.iter().map(|o| txn_op_json(o, serializable)).collect::<Vec<_>>(),
    })
}

fn json_bytes(v: &Value) -> Vec<u8> {
    v.to_string().into_bytes()
}

fn decode_json(bytes: &[u8], what: &str) -> Result<Value, EtcdError> {
    serde_json::from_slice(bytes).map_err(|e| {
        EtcdError::Decode(format!(
            "{what}: value {:?} is not JSON: {e}",
            String::from_utf8_lossy(bytes)
        ))
    })
}

/// A client of one etcd member, speaking the JSON gateway. Cheap to clone (the connection pool
/// is shared between clones); the runner gives each worker its own with [`EtcdClient::new`].
#[derive(Clone)]
pub struct EtcdClient {
    http: reqwest::Client,
    base: String,
    node: String,
    read: ReadMode,
    allow_negative: bool,
    /// What every key this client reads or writes begins with (the run's namespace,
    /// `netsplit/<run id>/`; empty by default).
    ns: String,
}

impl EtcdClient {
    /// A client of the member at `url` (`http://10.77.0.11:2379`), called `node` in errors.
    pub fn new(node: &str, url: &str, opts: &EtcdOpts) -> Result<EtcdClient, EtcdError> {
        let http = reqwest::Client::builder()
            .no_proxy()
            .tcp_nodelay(true)
            .connect_timeout(opts.connect_timeout)
            .timeout(opts.request_timeout)
            .build()
            .map_err(|e| EtcdError::Transport(format!("building HTTP client: {e}")))?;
        Ok(EtcdClient {
            http,
            base: url.trim_end_matches('/').to_string(),
            node: node.to_string(),
            read: opts.read,
            allow_negative: false,
            ns: String::new(),
        })
    }

    /// Keeps every key of the workloads under `ns` (`netsplit/<run id>/`): nothing outside it
    /// is read or written.
    pub fn namespace(mut self, ns: &str) -> EtcdClient {
        self.ns = ns.to_string();
        self
    }

    /// The key `rel` inside this client's namespace.
    pub fn key(&self, rel: &str) -> Vec<u8> {
        format!("{}{rel}", self.ns).into_bytes()
    }

    /// Deletes every key under this client's namespace; returns how many there were. Refuses
    /// an empty namespace (that would be the whole key space).
    pub async fn delete_namespace(&self) -> Result<i64, EtcdError> {
        if self.ns.is_empty() {
            return Err(EtcdError::Decode(
                "refusing to delete the whole key space (no namespace)".into(),
            ));
        }
        let p = self.ns.as_bytes();
        let body = json!({ "key": B64.encode(p), "range_end": B64.encode(prefix_end(p)) });
        let v = self.call("/v3/kv/deleterange", &body).await?;
        num_i64(v.get("deleted")).or(Ok(0))
    }

    /// Whether a bank transfer may overdraw its source account (the plan's
    /// `workload.allow_negative`); by default such a transfer is refused as `fail`.
    pub fn allow_negative(mut self, allow: bool) -> EtcdClient {
        self.allow_negative = allow;
        self
    }

    /// The node this client talks to.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// How this client reads.
    pub fn read_mode(&self) -> ReadMode {
        self.read
    }

    fn serializable(&self) -> bool {
        self.read == ReadMode::Serializable
    }

    /// POSTs a JSON body to a gateway path and returns the JSON answer, or the error.
    pub async fn call(&self, path: &str, body: &Value) -> Result<Value, EtcdError> {
        let resp = self
            .http
            .post(format!("{}{}", self.base, path))
            .json(body)
            .send()
            .await
            .map_err(EtcdError::from_reqwest)?;
        let status = resp.status();
        let bytes = resp.bytes().await.map_err(EtcdError::from_reqwest)?;
        let parsed: Result<Value, _> = serde_json::from_slice(&bytes);
        match parsed {
            Ok(v) if status.is_success() && v.get("error").is_none() => Ok(v),
            Ok(v) => Err(EtcdError::Server {
                http: status.as_u16(),
                code: v.get("code").and_then(Value::as_i64),
                message: v
                    .get("message")
                    .or_else(|| v.get("error"))
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .unwrap_or_else(|| v.to_string()),
            }),
            Err(_) if !status.is_success() => Err(EtcdError::Server {
                http: status.as_u16(),
                code: None,
                message: crate::control::tail(&String::from_utf8_lossy(&bytes), 300),
            }),
            Err(e) => Err(EtcdError::Decode(format!(
                "{path}: {e}: {}",
                crate::control::tail(&String::from_utf8_lossy(&bytes), 300)
            ))),
        }
    }

    /// Reads one key, or `[key, range_end)`, in this client's read mode.
    pub async fn range(
        &self,
        key: &[u8],
        range_end: Option<&[u8]>,
    ) -> Result<RangeResult, EtcdError> {
        let mut body = Map::new();
        body.insert("key".into(), Value::String(B64.encode(key)));
        if let Some(end) = range_end {
            body.insert("range_end".into(), Value::String(B64.encode(end)));
        }
        if self.serializable() {
            body.insert("serializable".into(), Value::Bool(true));
        }
        parse_range(&self.call("/v3/kv/range", &Value::Object(body)).await?)
    }

    /// Writes one key; returns the revision of the write.
    pub async fn put(&self, key: &[u8], value: &[u8]) -> Result<i64, EtcdError> {
        let body = json!({ "key": B64.encode(key), "value": B64.encode(value) });
        header_revision(&self.call("/v3/kv/put", &body).await?)
    }

    /// Runs a transaction: `success` if every compare holds, else nothing.
    pub async fn txn(
        &self,
        compares: &[Compare],
        success: &[TxnOp],
    ) -> Result<TxnResult, EtcdError> {
        let body = txn_body(compares, success, self.serializable());
        parse_txn(&self.call("/v3/kv/txn", &body).await?)
    }

    /// This member's status (its id and whom it believes to lead).
    pub async fn status(&self) -> Result<Status, EtcdError> {
        parse_status(&self.call("/v3/maintenance/status", &json!({})).await?)
    }

    /// The cluster's members as this member knows them.
    pub async fn members(&self) -> Result<Vec<Member>, EtcdError> {
        parse_members(&self.call("/v3/cluster/member/list", &json!({})).await?)
    }

    /// Reads several single keys at one revision (a transaction of ranges, no compares).
    async fn snapshot(&self, ks: &[Vec<u8>]) -> Result<Vec<Option<Kv>>, EtcdError> {
        let ops: Vec<TxnOp> = ks
            .iter()
            .map(|k| TxnOp::Range {
                key: k.clone(),
                range_end: None,
            })
            .collect();
        let r = self.txn(&[], &ops).await?;
        if r.ranges.len() != ks.len() {
            return Err(EtcdError::Decode(format!(
                "asked for {} ranges, got {}",
                ks.len(),
                r.ranges.len()
            )));
        }
        Ok(r.ranges
            .into_iter()
            .map(|kvs| kvs.into_iter().next())
            .collect())
    }

    /// Performs one request of `vocabulary` (`f` and `value` as in docs/adding-a-target.md) and
    /// says how it ended: [`Op::parse`], then [`EtcdClient::outcome`]. A request that does not
    /// parse is `fail` (nothing was sent).
    pub async fn invoke(&self, vocabulary: Vocabulary, f: &str, value: &Value) -> Outcome {
        match Op::parse(vocabulary, f, value) {
            Ok(op) => self.outcome(op, value).await,
            Err(e) => Outcome::Fail(format!("etcd client: {e} (not sent)")),
        }
    }

    /// Performs one typed op (`request`: as the history records it) and says how it ended.
    /// Never retries; an op of a vocabulary etcd does not speak is `fail` (nothing was sent).
    pub async fn outcome(&self, op: Op, request: &Value) -> Outcome {
        let done = || Outcome::Ok(request.clone());
        let written = |r: Result<i64, EtcdError>| match r {
            Ok(_) => done(),
            Err(e) => Outcome::write_error(&e),
        };
        match op {
            Op::Register(RegisterOp::Read { key }) => self.register_read(&key).await,
            Op::Register(RegisterOp::Write { key, value }) => written(
                self.put(&self.register_key(&key), &json_bytes(&value))
                    .await,
            ),
            Op::Register(RegisterOp::Cas { key, old, new }) => {
                self.register_cas(&key, &old, &new, request).await
            }
            Op::Set(SetOp::Add(e)) => {
                let key = self.key(&format!("{}{}", keys::SET, key_text(&e)));
                written(self.put(&key, &json_bytes(&e)).await)
            }
            Op::Set(SetOp::Read) => self.set_read().await,
            Op::Counter(CounterOp::Add(d)) => self.counter_add(d, request).await,
            Op::Counter(CounterOp::Read) => self.counter_read().await,
            Op::Bank(BankOp::Transfer { from, to, amount }) => {
                self.bank_transfer(from, to, amount, request).await
            }
            Op::Bank(BankOp::Read) => self.bank_read().await,
            Op::ListAppend(mops) => self.micro_txn(mops, keys::LIST).await,
            Op::RwRegister(mops) => self.micro_txn(mops, keys::RW).await,
            other => Outcome::Fail(format!(
                "etcd client: vocabulary {} is not implemented (not sent)",
                other.vocabulary()
            )),
        }
    }

    /// [`EtcdClient::outcome`], as the runner's completion.
    pub async fn perform(&mut self, op: Op, request: &Value) -> Completion {
        self.outcome(op, request).await.completion(request)
    }

    fn register_key(&self, k: &Value) -> Vec<u8> {
        self.key(&format!("{}{}", keys::REGISTER, key_text(k)))
    }

    async fn register_read(&self, k: &Value) -> Outcome {
        match self.range(&self.register_key(k), None).await {
            Ok(r) => match r.kvs.first() {
                None => Outcome::Ok(json!([k, null])),
                Some(kv) => match decode_json(&kv.value, "register") {
                    Ok(v) => Outcome::Ok(json!([k, v])),
                    Err(e) => Outcome::read_error(&e),
                },
            },
            Err(e) => Outcome::read_error(&e),
        }
    }

    async fn register_cas(&self, k: &Value, from: &Value, to: &Value, request: &Value) -> Outcome {
        let key = self.register_key(k);
        let cmp = [Compare::Value(key.clone(), json_bytes(from))];
        let put = [TxnOp::Put {
            key,
            value: json_bytes(to),
        }];
        match self.txn(&cmp, &put).await {
            Ok(r) if r.succeeded => Outcome::Ok(request.clone()),
            Ok(_) => Outcome::Fail("cas: value did not match".into()),
            Err(e) => Outcome::write_error(&e),
        }
    }

    async fn set_read(&self) -> Outcome {
        let p = self.key(keys::SET);
        match self.range(&p, Some(&prefix_end(&p))).await {
            Ok(r) => {
                let mut out = Vec::with_capacity(r.kvs.len());
                for kv in &r.kvs {
                    match decode_json(&kv.value, "set element") {
                        Ok(v) => out.push(v),
                        Err(e) => return Outcome::read_error(&e),
                    }
                }
                Outcome::Ok(Value::Array(out))
            }
            Err(e) => Outcome::read_error(&e),
        }
    }

    /// Reads an integer key: (value, mod_revision), absent = (0, 0).
    async fn read_int(&self, key: &[u8]) -> Result<(i64, i64), EtcdError> {
        let r = self.range(key, None).await?;
        match r.kvs.first() {
            None => Ok((0, 0)),
            Some(kv) => Ok((parse_int(&kv.value)?, kv.mod_revision)),
        }
    }

    async fn counter_add(&self, delta: i64, request: &Value) -> Outcome {
        let key = self.key(keys::COUNTER);
        let (cur, rev) = match self.read_int(&key).await {
            Ok(x) => x,
            Err(e) => return Outcome::read_error(&e),
        };
        let Some(next) = cur.checked_add(delta) else {
            return Outcome::Fail(format!("counter add: {cur} + {delta} overflows (not sent)"));
        };
        let cmp = [Compare::ModRevision(key.clone(), rev)];
        let put = [TxnOp::Put {
            key,
            value: next.to_string().into_bytes(),
        }];
        match self.txn(&cmp, &put).await {
            Ok(r) if r.succeeded => Outcome::Ok(request.clone()),
            Ok(_) => Outcome::Fail("counter add: concurrent update (mod revision changed)".into()),
            Err(e) => Outcome::write_error(&e),
        }
    }

    async fn counter_read(&self) -> Outcome {
        match self.read_int(&self.key(keys::COUNTER)).await {
            Ok((v, _)) => Outcome::Ok(json!(v)),
            Err(e) => Outcome::read_error(&e),
        }
    }

    fn bank_key(&self, account: &Value) -> Vec<u8> {
        self.key(&format!("{}{}", keys::BANK, key_text(account)))
    }

    /// Creates the bank's accounts with their initial balances, unless any of them already
    /// exists (then another client did it first). Call once per client before the run; safe to
    /// call from every client concurrently.
    pub async fn bank_init(&self, balances: &[(i64, i64)]) -> Result<(), EtcdError> {
        let cmps: Vec<Compare> = balances
            .iter()
            .map(|(a, _)| Compare::CreateRevision(self.bank_key(&json!(a)), 0))
            .collect();
        let puts: Vec<TxnOp> = balances
            .iter()
            .map(|(a, b)| TxnOp::Put {
                key: self.bank_key(&json!(a)),
                value: b.to_string().into_bytes(),
            })
            .collect();
        self.txn(&cmps, &puts).await.map(|_| ())
    }

    async fn bank_read(&self) -> Outcome {
        let p = self.key(keys::BANK);
        match self.range(&p, Some(&prefix_end(&p))).await {
            Ok(r) => {
                let mut out = Map::new();
                for kv in &r.kvs {
                    let account = String::from_utf8_lossy(&kv.key[p.len()..]).into_owned();
                    match parse_int(&kv.value) {
                        Ok(b) => out.insert(account, json!(b)),
                        Err(e) => return Outcome::read_error(&e),
                    };
                }
                Outcome::Ok(Value::Object(out))
            }
            Err(e) => Outcome::read_error(&e),
        }
    }

    async fn bank_transfer(&self, from: u64, to: u64, amount: i64, request: &Value) -> Outcome {
        let (kf, kt) = (self.bank_key(&json!(from)), self.bank_key(&json!(to)));
        let snap = match self.snapshot(&[kf.clone(), kt.clone()]).await {
            Ok(s) => s,
            Err(e) => return Outcome::read_error(&e),
        };
        let (Some(af), Some(at)) = (&snap[0], &snap[1]) else {
            return Outcome::Fail("transfer: account does not exist".into());
        };
        let (bf, bt) = match (parse_int(&af.value), parse_int(&at.value)) {
            (Ok(a), Ok(b)) => (a, b),
            (Err(e), _) | (_, Err(e)) => return Outcome::read_error(&e),
        };
        // Unless the plan allows it, balances may not go negative: the transfer is refused (and
        // nothing was written).
        if !self.allow_negative && bf < amount {
            return Outcome::Fail(format!("transfer: insufficient funds ({bf} < {amount})"));
        }
        let put = |k: &[u8], v: i64| TxnOp::Put {
            key: k.to_vec(),
            value: v.to_string().into_bytes(),
        };
        // A transfer to the same account changes nothing but is still checked at commit (and
        // etcd refuses two puts of one key in a transaction).
        let puts = if kf == kt {
            vec![put(&kf, bf)]
        } else {
            vec![put(&kf, bf - amount), put(&kt, bt + amount)]
        };
        let cmps = [
            Compare::ModRevision(kf, af.mod_revision),
            Compare::ModRevision(kt, at.mod_revision),
        ];
        match self.txn(&cmps, &puts).await {
            Ok(r) if r.succeeded => Outcome::Ok(request.clone()),
            Ok(_) => Outcome::Fail("transfer: concurrent update (mod revision changed)".into()),
            Err(e) => Outcome::write_error(&e),
        }
    }

    /// A list-append or rw-register transaction (its keys under `prefix`): a snapshot of every
    /// key it touches, then, if it writes, one etcd transaction of puts on the condition that
    /// none of them changed since.
    async fn micro_txn(&self, mops: Vec<MicroOp>, prefix: &str) -> Outcome {
        let etcd_key = |k: &Value| self.key(&format!("{prefix}{}", key_text(k)));
        // Every involved key, each once, in a fixed order.
        let mut involved: BTreeMap<Vec<u8>, usize> = BTreeMap::new();
        for m in &mops {
            let n = involved.len();
            involved.entry(etcd_key(m.key())).or_insert(n);
        }
        let order: Vec<Vec<u8>> = {
            let mut v: Vec<(usize, Vec<u8>)> =
                involved.iter().map(|(k, i)| (*i, k.clone())).collect();
            v.sort();
            v.into_iter().map(|(_, k)| k).collect()
        };
        let snap = match self.snapshot(&order).await {
            Ok(s) => s,
            Err(e) => return Outcome::read_error(&e),
        };
        // The transaction's own view: the snapshot, then its own writes.
        let mut state: BTreeMap<Vec<u8>, Option<Value>> = BTreeMap::new();
        for (k, kv) in order.iter().zip(&snap) {
            let v = match kv {
                None => None,
                Some(kv) => match decode_json(&kv.value, "txn value") {
                    Ok(v) => Some(v),
                    Err(e) => return Outcome::read_error(&e),
                },
            };
            state.insert(k.clone(), v);
        }
        let mut written: BTreeSet<Vec<u8>> = BTreeSet::new();
        let mut completed = Vec::with_capacity(mops.len());
        for m in &mops {
            let k = etcd_key(m.key());
            match m {
                MicroOp::Read { key } => {
                    let seen = state.get(&k).cloned().flatten().unwrap_or(Value::Null);
                    completed.push(MicroOp::read_result(key, seen));
                }
                MicroOp::Append { key, value } => {
                    let cur = state.entry(k.clone()).or_insert(None);
                    match cur {
                        Some(Value::Array(xs)) => xs.push(value.clone()),
                        Some(other) => {
                            return Outcome::Fail(format!(
                                "append: key {} holds a non-list {other} (not sent)",
                                key_text(key)
                            ))
                        }
                        None => *cur = Some(json!([value])),
                    }
                    written.insert(k);
                    completed.push(m.to_value());
                }
                MicroOp::Write { value, .. } => {
                    state.insert(k.clone(), Some(value.clone()));
                    written.insert(k);
                    completed.push(m.to_value());
                }
            }
        }
        if written.is_empty() {
            // Read-only: the snapshot was one atomic read.
            return Outcome::Ok(Value::Array(completed));
        }
        let cmps: Vec<Compare> = order
            .iter()
            .zip(&snap)
            .map(|(k, kv)| {
                Compare::ModRevision(k.clone(), kv.as_ref().map_or(0, |kv| kv.mod_revision))
            })
            .collect();
        let puts: Vec<TxnOp> = written
            .iter()
            .map(|k| TxnOp::Put {
                key: k.clone(),
                value: state
                    .get(k)
                    .cloned()
                    .flatten()
                    .map_or_else(|| b"null".to_vec(), |v| json_bytes(&v)),
            })
            .collect();
        match self.txn(&cmps, &puts).await {
            Ok(r) if r.succeeded => Outcome::Ok(Value::Array(completed)),
            Ok(_) => Outcome::Fail("txn: concurrent update (mod revision changed)".into()),
            Err(e) => Outcome::write_error(&e),
        }
    }
}

fn parse_int(bytes: &[u8]) -> Result<i64, EtcdError> {
    std::str::from_utf8(bytes)
        .ok()
        .and_then(|s| s.trim().parse::<i64>().ok())
        .ok_or_else(|| {
            EtcdError::Decode(format!(
                "expected an integer, found {:?}",
                String::from_utf8_lossy(bytes)
            ))
        })
}

// The vocabularies etcd speaks (every one the built-in workloads use), each through
// `EtcdClient::perform`.
crate::speaks!(EtcdClient: register, set, counter, bank, list_append, rw_register);

#[cfg(test)]
mod tests;

//! The redis client: the workloads' operations as Redis commands over [`super::resp`], the
//! routing of each command (writes to the primary, reads to the worker's own node or to the
//! primary), and the error classification that decides `fail` versus `info`.
//!
//! | workload | op | commands |
//! |---|---|---|
//! | register | read / write / cas | `GET` / `SET` / `EVAL` of a compare-and-set script |
//! | set | add / read | `SADD` / `SMEMBERS` |
//! | counter | add / read | `INCRBY` / `GET` |
//! | list-append | txn | `MULTI`, `RPUSH` / `LRANGE` per micro-op, `EXEC` |
//!
//! Classification ([`classify`]): a reply (even an error reply) means Redis decided, so an
//! error reply is `fail` — Redis rejects a command (`READONLY`, `LOADING`, `ERR …`) before it
//! runs it; a connection that could not be made sent nothing (`fail`); a timeout, a connection
//! lost after sending, or a reply we cannot parse leave a write `info`. Reads have no effect,
//! so a read that errors is always `fail`. Nothing is retried. docs/targets/redis.md has the
//! table.

use super::config::{ReadMode, RedisOpts};
use super::resp::{encode, Conn, Reply, RespError};
use crate::vocab::{key_text, sort_elements, CounterOp, MicroOp, Op, RegisterOp, SetOp};
use crate::Completion;
use serde_json::{json, Value};
use std::time::Duration;

/// Where each workload keeps its data in Redis's key space.
pub mod keys {
    /// Prefix of a register's key, after the run's namespace (`register:<k>`, a string).
    pub const REGISTER: &str = "register:";
    /// The set's key, after the namespace (a Redis set).
    pub const SET: &str = "set";
    /// The counter's key, after the namespace (an integer string).
    pub const COUNTER: &str = "counter";
    /// Prefix of a list-append list's key, after the namespace (`list:<k>`, a Redis list).
    pub const LIST: &str = "list:";
}

/// The compare-and-set of the register: set `KEYS[1]` to `ARGV[2]` if it holds `ARGV[1]`;
/// 1 if it did, 0 if not (an absent key never matches).
pub const CAS_SCRIPT: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then \
     redis.call('SET', KEYS[1], ARGV[2]) return 1 else return 0 end";

/// Whether an operation may change the database (its errors can then be `info`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// It only reads: any error is `fail`.
    Read,
    /// It may write: an error after the command may have been sent is `info`.
    Write,
}

/// The completion of an exchange that ended in `err`: `fail` when nothing can have happened
/// (a read, or nothing was sent), else `info`.
pub fn classify(effect: Effect, err: &RespError, request: &Value) -> Completion {
    if effect == Effect::Read || err.never_sent() {
        Completion::fail(request.clone(), err.to_string())
    } else {
        Completion::info(request.clone(), err.to_string())
    }
}

/// The completion of an error reply: Redis refused the command before running it.
pub fn refused(message: &str, request: &Value) -> Completion {
    Completion::fail(request.clone(), message.to_string())
}

fn json_of(bytes: &[u8], what: &str) -> Result<Value, String> {
    serde_json::from_slice(bytes).map_err(|e| {
        format!(
            "{what}: {:?} is not JSON: {e}",
            String::from_utf8_lossy(bytes)
        )
    })
}

fn int_of(bytes: &[u8]) -> Result<i64, String> {
    std::str::from_utf8(bytes)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .ok_or_else(|| format!("{:?} is not an integer", String::from_utf8_lossy(bytes)))
}

/// One worker's client: a connection to its own node for reads (in `read=replica` mode) and
/// one to the primary for writes, each opened lazily and dropped after any error that leaves
/// its stream in an unknown state.
pub struct RedisClient {
    node: String,
    host: String,
    primary_host: String,
    port: u16,
    primary_port: u16,
    /// What every key begins with (the run's namespace, `netsplit/<run id>/`; empty by
    /// default).
    ns: String,
    read: ReadMode,
    connect_timeout: Duration,
    timeout: Duration,
    own: Option<Conn>,
    primary: Option<Conn>,
    /// With `failover=sentinel`: the Sentinels to ask, in turn, where the primary is whenever
    /// a connection to it must be made (the bound node's own first), and the master's name.
    /// Empty: a static primary.
    sentinels: Vec<(String, u16)>,
    master_name: String,
}

/// Which server a command goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// The worker's own node.
    Own,
    /// The current primary.
    Primary,
}

impl RedisClient {
    /// A client bound to node `node` at `host`, whose primary is at `primary_host`. Connects
    /// nothing yet.
    pub fn new(node: &str, host: &str, primary_host: &str, opts: &RedisOpts) -> RedisClient {
        RedisClient {
            node: node.to_string(),
            host: host.to_string(),
            primary_host: primary_host.to_string(),
            port: opts.port,
            primary_port: opts.port,
            ns: String::new(),
            read: opts.read,
            connect_timeout: opts.connect_timeout,
            timeout: opts.request_timeout,
            own: None,
            primary: None,
            sentinels: if opts.sentinel() {
                vec![(host.to_string(), opts.sentinel_port)]
            } else {
                Vec::new()
            },
            master_name: opts.master_name.clone(),
        }
    }

    /// The Sentinels to ask where the primary is, in the order to ask them (default with
    /// `failover=sentinel`: the bound node's own, at `sentinel-port`).
    pub fn sentinels(mut self, sentinels: Vec<(String, u16)>) -> RedisClient {
        if !sentinels.is_empty() {
            self.sentinels = sentinels;
        }
        self
    }

    /// Asks the Sentinels in turn where the primary is (`SENTINEL get-master-addr-by-name`),
    /// as applications do before connecting to it: the first that answers with an address
    /// decides. Nothing reached the database: an error here is a connect error.
    async fn discover_primary(&mut self) -> Result<(), RespError> {
        let mut why = Vec::new();
        for (host, port) in self.sentinels.clone() {
            match self.ask_sentinel(&host, port).await {
                Ok((ip, port)) => {
                    if ip != self.primary_host || port != self.primary_port {
                        self.primary = None;
                        self.primary_host = ip;
                        self.primary_port = port;
                    }
                    return Ok(());
                }
                Err(e) => why.push(format!("{}: {e}", super::resp::addr(&host, port))),
            }
        }
        Err(RespError::Connect(format!(
            "asking Sentinel: {}",
            why.join("; ")
        )))
    }

    /// The primary's address as the Sentinel at `host:port` gives it.
    async fn ask_sentinel(&self, host: &str, port: u16) -> Result<(String, u16), String> {
        let mut c = Conn::connect(host, port, self.connect_timeout, self.timeout)
            .await
            .map_err(|e| e.to_string())?;
        let r = c
            .call(&[
                "SENTINEL",
                "get-master-addr-by-name",
                self.master_name.as_str(),
            ])
            .await
            .map_err(|e| e.to_string())?;
        match r {
            Reply::Array(a) => match (a.first(), a.get(1)) {
                (Some(Reply::Bulk(ip)), Some(Reply::Bulk(port))) => {
                    let ip = String::from_utf8_lossy(ip).into_owned();
                    let port: u16 = String::from_utf8_lossy(port)
                        .parse()
                        .map_err(|_| format!("answered port {port:?}"))?;
                    Ok((ip, port))
                }
                _ => Err(format!("answered {a:?}")),
            },
            Reply::Nil => Err(format!("knows no master named {}", self.master_name)),
            other => Err(format!("answered {other:?}")),
        }
    }

    /// Where writes go now.
    pub fn primary_host(&self) -> &str {
        &self.primary_host
    }

    /// The node this client is bound to.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// Keeps every key under `ns` (`netsplit/<run id>/`): nothing outside it is read or
    /// written.
    pub fn namespace(mut self, ns: &str) -> RedisClient {
        self.ns = ns.to_string();
        self
    }

    /// The ports of its own node and of the primary, when they are not both the target's
    /// `port` (endpoints given explicitly).
    pub fn ports(mut self, own: u16, primary: u16) -> RedisClient {
        self.port = own;
        self.primary_port = primary;
        self
    }

    /// The key `rel` inside this client's namespace.
    pub fn key(&self, rel: &str) -> String {
        format!("{}{rel}", self.ns)
    }

    fn read_route(&self) -> Route {
        match self.read {
            ReadMode::Replica => Route::Own,
            ReadMode::Primary => Route::Primary,
        }
    }

    /// Sends pre-encoded commands to `route` and reads `replies` replies. Connects first if
    /// needed; drops the connection after any failure.
    pub async fn exchange(
        &mut self,
        route: Route,
        commands: &[Vec<u8>],
        replies: usize,
    ) -> Result<Vec<Reply>, RespError> {
        if !self.sentinels.is_empty() && self.primary.is_none() && route == Route::Primary {
            self.discover_primary().await?;
        }
        // The bound node may itself be the primary: one connection then.
        let route = if self.host == self.primary_host && self.port == self.primary_port {
            Route::Primary
        } else {
            route
        };
        let (slot, host, port) = match route {
            Route::Own => (&mut self.own, &self.host, self.port),
            Route::Primary => (&mut self.primary, &self.primary_host, self.primary_port),
        };
        if slot.is_none() {
            *slot = Some(Conn::connect(host, port, self.connect_timeout, self.timeout).await?);
        }
        let conn = slot.as_mut().expect("connected above");
        match conn.pipeline(commands, replies).await {
            Ok(r) => Ok(r),
            Err(e) => {
                *slot = None;
                Err(e)
            }
        }
    }

    /// An exchange that only reads. With Sentinel, one that fails is tried once more on a
    /// fresh connection to wherever Sentinel then says: a connection kept from before a
    /// failover is closed by the demoted primary (Sentinel's `CLIENT KILL`), and an application
    /// reconnects and reads again. Reads change nothing, so the retry is invisible to the
    /// history: the operation covers both attempts.
    async fn read_exchange(
        &mut self,
        route: Route,
        commands: &[Vec<u8>],
        replies: usize,
    ) -> Result<Vec<Reply>, RespError> {
        match self.exchange(route, commands, replies).await {
            Err(_) if !self.sentinels.is_empty() => self.exchange(route, commands, replies).await,
            r => r,
        }
    }

    /// `command` on the run's key `name` ([`RedisClient::key`]), a command that only reads,
    /// sent where reads go ([`RedisClient::read_route`], [`RedisClient::read_exchange`]).
    async fn read(&mut self, command: &str, name: &str) -> Result<Reply, RespError> {
        let (route, key) = (self.read_route(), self.key(name));
        let mut r = self
            .read_exchange(route, &[encode(&[command, key.as_str()])], 1)
            .await?;
        Ok(r.pop().unwrap_or(Reply::Nil))
    }

    /// One command to `route`.
    pub async fn call<A: AsRef<[u8]>>(
        &mut self,
        route: Route,
        args: &[A],
    ) -> Result<Reply, RespError> {
        let mut r = self.exchange(route, &[encode(args)], 1).await?;
        Ok(r.pop().unwrap_or(Reply::Nil))
    }

    /// Performs one typed op (`request`: as the history records it). Never retries; an op of
    /// a vocabulary Redis does not speak here is `fail` (nothing was sent).
    pub async fn perform(&mut self, op: Op, request: &Value) -> Completion {
        match op {
            Op::Register(RegisterOp::Read { key }) => self.register_read(&key, request).await,
            Op::Register(RegisterOp::Write { key, value }) => {
                let key = format!("{}{}", keys::REGISTER, key_text(&key));
                self.write_to("SET", &key, value.to_string(), request).await
            }
            Op::Register(RegisterOp::Cas { key, old, new }) => {
                self.register_cas(&key, &old, &new, request).await
            }
            Op::Set(SetOp::Add(e)) => {
                self.write_to("SADD", keys::SET, e.to_string(), request)
                    .await
            }
            Op::Set(SetOp::Read) => self.set_read(request).await,
            Op::Counter(CounterOp::Add(d)) => {
                self.write_to("INCRBY", keys::COUNTER, d.to_string(), request)
                    .await
            }
            Op::Counter(CounterOp::Read) => self.counter_read(request).await,
            Op::ListAppend(mops) => self.list_txn(&mops, request).await,
            other => other.unsupported("redis", request),
        }
    }

    /// A write whose success reply is anything but an error.
    /// `command key value` as a write, `key` under the run's namespace.
    async fn write_to(
        &mut self,
        command: &str,
        key: &str,
        value: String,
        request: &Value,
    ) -> Completion {
        let args = [
            command.as_bytes().to_vec(),
            self.key(key).into_bytes(),
            value.into_bytes(),
        ];
        self.write(&args, request).await
    }

    async fn write(&mut self, args: &[Vec<u8>], value: &Value) -> Completion {
        match self.call(Route::Primary, args).await {
            Ok(Reply::Error(m)) => {
                self.forget_primary_if_readonly(&m);
                refused(&m, value)
            }
            Ok(_) => Completion::ok(value.clone()),
            Err(e) => classify(Effect::Write, &e, value),
        }
    }

    /// A `READONLY` answer means the node we took for the primary is a replica now (a
    /// failover demoted it): with Sentinel, ask again before the next write.
    fn forget_primary_if_readonly(&mut self, message: &str) {
        if !self.sentinels.is_empty() && message.starts_with("READONLY") {
            self.primary = None;
            if self.host == self.primary_host {
                self.own = None;
            }
        }
    }

    async fn register_read(&mut self, k: &Value, value: &Value) -> Completion {
        let name = format!("{}{}", keys::REGISTER, key_text(k));
        match self.read("GET", &name).await {
            Ok(Reply::Nil) => Completion::ok(json!([k, null])),
            Ok(Reply::Bulk(b)) => match json_of(&b, "register") {
                Ok(v) => Completion::ok(json!([k, v])),
                Err(e) => Completion::fail(value.clone(), e),
            },
            Ok(Reply::Error(m)) => refused(&m, value),
            Ok(other) => Completion::fail(value.clone(), format!("GET answered {other:?}")),
            Err(e) => classify(Effect::Read, &e, value),
        }
    }

    async fn register_cas(
        &mut self,
        k: &Value,
        from: &Value,
        to: &Value,
        value: &Value,
    ) -> Completion {
        let key = self.key(&format!("{}{}", keys::REGISTER, key_text(k)));
        let args = [
            "EVAL",
            CAS_SCRIPT,
            "1",
            key.as_str(),
            &from.to_string(),
            &to.to_string(),
        ];
        match self.call(Route::Primary, &args).await {
            Ok(Reply::Int(1)) => Completion::ok(value.clone()),
            Ok(Reply::Int(0)) => Completion::fail(value.clone(), "cas: value did not match"),
            Ok(Reply::Error(m)) => {
                self.forget_primary_if_readonly(&m);
                refused(&m, value)
            }
            // The script ran somehow: we cannot tell whether it set the key.
            Ok(other) => Completion::info(value.clone(), format!("EVAL answered {other:?}")),
            Err(e) => classify(Effect::Write, &e, value),
        }
    }

    async fn set_read(&mut self, value: &Value) -> Completion {
        match self.read("SMEMBERS", keys::SET).await {
            Ok(Reply::Array(items)) => {
                let mut out = Vec::with_capacity(items.len());
                for it in items {
                    let Reply::Bulk(b) = it else {
                        return Completion::fail(value.clone(), format!("SMEMBERS item {it:?}"));
                    };
                    match json_of(&b, "set element") {
                        Ok(v) => out.push(v),
                        Err(e) => return Completion::fail(value.clone(), e),
                    }
                }
                // Redis returns a set in no particular order.
                sort_elements(&mut out);
                Completion::ok(Value::Array(out))
            }
            Ok(Reply::Error(m)) => refused(&m, value),
            Ok(other) => Completion::fail(value.clone(), format!("SMEMBERS answered {other:?}")),
            Err(e) => classify(Effect::Read, &e, value),
        }
    }

    async fn counter_read(&mut self, value: &Value) -> Completion {
        match self.read("GET", keys::COUNTER).await {
            Ok(Reply::Nil) => Completion::ok(json!(0)),
            Ok(Reply::Bulk(b)) => match int_of(&b) {
                Ok(n) => Completion::ok(json!(n)),
                Err(e) => Completion::fail(value.clone(), format!("counter: {e}")),
            },
            Ok(Reply::Error(m)) => refused(&m, value),
            Ok(other) => Completion::fail(value.clone(), format!("GET answered {other:?}")),
            Err(e) => classify(Effect::Read, &e, value),
        }
    }

    /// A list-append transaction: `MULTI`, `RPUSH list:<k> v` per append and
    /// `LRANGE list:<k> 0 -1` per read, `EXEC`, pipelined in one write. Redis runs the queued
    /// commands one after another with nothing in between, so reads see the transaction's own
    /// earlier appends. Transactions that append go to the primary; read-only ones follow the
    /// read mode.
    async fn list_txn(&mut self, mops: &[MicroOp], value: &Value) -> Completion {
        let mut cmds = vec![encode(&["MULTI"])];
        let mut writes = false;
        for m in mops {
            let key = self.key(&format!("{}{}", keys::LIST, key_text(m.key())));
            match m {
                MicroOp::Append { value: v, .. } => {
                    writes = true;
                    cmds.push(encode(&["RPUSH", key.as_str(), &v.to_string()]));
                }
                MicroOp::Read { .. } => cmds.push(encode(&["LRANGE", key.as_str(), "0", "-1"])),
                MicroOp::Write { .. } => {
                    return Op::RwRegister(mops.to_vec()).unsupported("redis", value)
                }
            }
        }
        cmds.push(encode(&["EXEC"]));
        let (route, effect) = if writes {
            (Route::Primary, Effect::Write)
        } else {
            (self.read_route(), Effect::Read)
        };
        let n = cmds.len();
        let sent = if effect == Effect::Read {
            self.read_exchange(route, &cmds, n).await
        } else {
            self.exchange(route, &cmds, n).await
        };
        let replies = match sent {
            Ok(r) => r,
            Err(e) => return classify(effect, &e, value),
        };
        // MULTI's +OK and the +QUEUED of each command: an error there makes EXEC abort.
        if let Some(Reply::Error(m)) = replies[..n - 1]
            .iter()
            .find(|r| matches!(r, Reply::Error(_)))
        {
            let c = refused(m, value);
            self.forget_primary_if_readonly(m);
            return c;
        }
        let results = match &replies[n - 1] {
            Reply::Array(rs) if rs.len() == mops.len() => rs,
            Reply::Error(m) => return refused(m, value),
            other => {
                let why = format!("EXEC answered {other:?}");
                return match effect {
                    Effect::Read => Completion::fail(value.clone(), why),
                    Effect::Write => Completion::info(value.clone(), why),
                };
            }
        };
        let mut done = Vec::with_capacity(mops.len());
        for (m, r) in mops.iter().zip(results) {
            match (m, r) {
                // A command failing inside EXEC does not undo the others: unknown for writes.
                (_, Reply::Error(e)) => {
                    let why = format!("inside EXEC: {e}");
                    return match effect {
                        Effect::Read => Completion::fail(value.clone(), why),
                        Effect::Write => Completion::info(value.clone(), why),
                    };
                }
                (MicroOp::Read { key }, Reply::Array(items)) => {
                    let mut list = Vec::with_capacity(items.len());
                    for it in items {
                        let parsed = match it {
                            Reply::Bulk(b) => json_of(b, "list element"),
                            other => Err(format!("LRANGE item {other:?}")),
                        };
                        match parsed {
                            Ok(v) => list.push(v),
                            // The transaction ran; its appends happened, its reads are garbled.
                            Err(e) if effect == Effect::Write => {
                                return Completion::info(value.clone(), e)
                            }
                            Err(e) => return Completion::fail(value.clone(), e),
                        }
                    }
                    done.push(MicroOp::read_result(key, json!(list)));
                }
                _ => done.push(m.to_value()),
            }
        }
        Completion::ok(Value::Array(done))
    }
}

// The vocabularies Redis speaks here, each through `RedisClient::perform`.
crate::speaks!(RedisClient: register, set, counter, list_append);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::OpType;
    use crate::opts::Preset;

    #[test]
    fn errors_of_writes_are_info_unless_nothing_was_sent_reads_always_fail() {
        let req = json!([1, 5]);
        let c = classify(Effect::Write, &RespError::Connect("refused".into()), &req);
        assert_eq!((c.kind, &c.value), (OpType::Fail, &req));
        for e in [
            RespError::Timeout("t".into()),
            RespError::Io("reset".into()),
            RespError::Protocol("?".into()),
        ] {
            assert_eq!(classify(Effect::Write, &e, &req).kind, OpType::Info, "{e}");
            assert_eq!(classify(Effect::Read, &e, &req).kind, OpType::Fail, "{e}");
        }
        let r = refused(
            "READONLY You can't write against a read only replica.",
            &req,
        );
        assert_eq!(r.kind, OpType::Fail);
        assert!(r.error.unwrap().starts_with("READONLY"));
    }

    /// A Sentinel that answers one `get-master-addr-by-name` with `10.9.8.7:7000`; its port.
    fn fake_sentinel() -> u16 {
        use std::io::{Read, Write};
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let mut buf = [0u8; 512];
            let n = s.read(&mut buf).unwrap();
            assert!(String::from_utf8_lossy(&buf[..n]).contains("get-master-addr-by-name"));
            s.write_all(b"*2\r\n$8\r\n10.9.8.7\r\n$4\r\n7000\r\n")
                .unwrap();
        });
        port
    }

    #[test]
    fn a_sentinel_that_does_not_answer_is_passed_over_for_the_next() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let o = RedisOpts::preset().unwrap();
        // Port 1 refuses: the second Sentinel decides.
        let dead = ("127.0.0.1".to_string(), 1);
        let mut c = RedisClient::new("n1", "127.0.0.1", "127.0.0.1", &o)
            .sentinels(vec![dead.clone(), ("127.0.0.1".into(), fake_sentinel())]);
        rt.block_on(c.discover_primary()).unwrap();
        assert_eq!((c.primary_host(), c.primary_port), ("10.9.8.7", 7000));
        // None answers: a connect error (nothing reached the database) naming each.
        let mut c = RedisClient::new("n1", "127.0.0.1", "127.0.0.1", &o)
            .sentinels(vec![dead.clone(), ("127.0.0.1".into(), 2)]);
        let e = rt.block_on(c.discover_primary()).unwrap_err();
        assert!(e.never_sent(), "{e}");
        let text = e.to_string();
        assert!(
            text.contains("127.0.0.1:1") && text.contains("127.0.0.1:2"),
            "{text}"
        );
    }

    #[test]
    fn the_client_implements_what_the_target_declares() {
        let o = RedisOpts::preset().unwrap();
        let mut c = RedisClient::new("n1", "127.0.0.1", "127.0.0.1", &o);
        assert_eq!(
            crate::vocab::implemented(&mut c),
            super::super::VOCABULARIES
        );
        assert_eq!(key_text(&json!(3)), "3");
        assert_eq!(key_text(&json!("a")), "a");
    }
}

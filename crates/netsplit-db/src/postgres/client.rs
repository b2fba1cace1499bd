//! The postgres client: the workloads' operations as SQL over tokio-postgres, where each
//! operation goes (n1, or the worker's own replica for operations that only read), and the
//! error classification that decides `fail` versus `info`.
//!
//! Every connection sets `default_transaction_isolation` (the `isolation` option; on a hot
//! standby at most repeatable read, as PostgreSQL refuses serializable there) and the
//! `search_path` to the run's schema, so every transaction — a single statement or an explicit
//! `BEGIN … COMMIT` — runs at the chosen level.
//!
//! | workload | op | SQL |
//! |---|---|---|
//! | register | read / write / cas | `SELECT v FROM register WHERE k = $1` / upsert / `UPDATE register SET v = $3 WHERE k = $1 AND v = $2` (no row: `fail`) |
//! | set | add / read | `INSERT INTO set_elems` / `SELECT e FROM set_elems` |
//! | counter | add / read | `UPDATE counter SET n = n + $1` / `SELECT n FROM counter` |
//! | bank | transfer / read | read-write: `BEGIN`, `SELECT` both balances, two `UPDATE … SET balance = <new>`, `COMMIT`; atomic: `BEGIN`, `UPDATE … SET balance = balance - $a WHERE … AND balance >= $a`, `UPDATE … + $a`, `COMMIT` / `SELECT id, balance FROM accounts` |
//! | list-append | txn | `BEGIN`, per micro-op an upsert appending to a `jsonb` array or a `SELECT`, `COMMIT` |
//! | rw-register | txn | `BEGIN`, per micro-op an upsert or a `SELECT`, `COMMIT` |
//!
//! Classification ([`classify`]): an operation that only reads is `fail` whatever went wrong.
//! For one that writes, what matters is whether the commit was sent: an error before that
//! (connecting, or any statement before `COMMIT`) aborts the transaction — PostgreSQL rolls
//! back a transaction whose connection ends — so it is `fail`; at the commit (an explicit
//! `COMMIT`, or the one statement of a single-statement write), an error the server reports with
//! severity `ERROR` — serialization failure 40001, deadlock 40P01, any other — means it rolled
//! back (`fail`), while a connection lost, a timeout, or a `FATAL`/`PANIC` report leave it
//! unknown (`info`). Nothing is retried. docs/targets/postgres.md has the table.

use super::config::{Isolation, PgOpts, ReadMode, Transfer};
use super::tls::Tls;
use crate::vocab::{key_text, sort_elements, BankOp, CounterOp, MicroOp, Op, RegisterOp, SetOp};
use crate::Completion;
use serde_json::{json, Map, Value};
use std::fmt;
use std::time::Duration;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::Row;

/// A statement's parameters, each with its type.
type Params<'a> = [(&'a (dyn ToSql + Sync), Type)];

/// The SQL that makes the run's schema and every workload's table (run at setup on n1).
/// Identifiers are checked by `PgOpts::check` (lower-case SQL names), so they are spliced.
pub fn schema_sql(schema: &str) -> String {
    format!(
        "DROP SCHEMA IF EXISTS {schema} CASCADE;\n{}",
        tables_sql(schema)
    )
}

/// The SQL that makes the schema `schema` (which must not exist) and every workload's table in
/// it, and nothing else: what a run against a deployed PostgreSQL creates.
pub fn tables_sql(schema: &str) -> String {
    format!(
        "CREATE SCHEMA {schema};
CREATE TABLE {schema}.register (k text PRIMARY KEY, v text NOT NULL);
CREATE TABLE {schema}.set_elems (e text PRIMARY KEY);
CREATE TABLE {schema}.counter (id int PRIMARY KEY, n bigint NOT NULL);
INSERT INTO {schema}.counter (id, n) VALUES (0, 0);
CREATE TABLE {schema}.accounts (id bigint PRIMARY KEY, balance bigint NOT NULL);
CREATE TABLE {schema}.lists (k text PRIMARY KEY, v jsonb NOT NULL);
CREATE TABLE {schema}.rw (k text PRIMARY KEY, v text NOT NULL);"
    )
}

/// Why an exchange with the server did not give an answer we could use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PgError {
    /// No session: the TCP connection, the authentication or the server's start refused it
    /// (`57P03` "the database system is starting up" included). Nothing was sent.
    Connect(String),
    /// No answer within the client's timeout.
    Timeout(String),
    /// The server reported an error.
    Db {
        /// SQLSTATE, e.g. `40001`.
        code: String,
        /// `ERROR`, `FATAL` or `PANIC`.
        severity: String,
        /// The server's message.
        message: String,
    },
    /// The connection broke (closed, reset) before the answer.
    Closed(String),
    /// An answer we could not understand.
    Decode(String),
}

/// The server's error (code, severity, message), else the connection's.
impl From<tokio_postgres::Error> for PgError {
    fn from(e: tokio_postgres::Error) -> PgError {
        if let Some(db) = e.as_db_error() {
            return PgError::Db {
                code: db.code().code().to_string(),
                severity: db
                    .parsed_severity()
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| db.severity().to_string()),
                message: db.message().to_string(),
            };
        }
        PgError::Closed(chain(&e))
    }
}

impl PgError {
    /// Whether the connection can take the next statement after this error (the server
    /// reported an `ERROR` and the session goes on); otherwise it is dropped.
    pub fn session_survives(&self) -> bool {
        matches!(self, PgError::Db { severity, .. } if severity == "ERROR")
    }
}

/// An error and its sources, on one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut msg = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        let t = s.to_string();
        if !msg.contains(&t) {
            msg.push_str(": ");
            msg.push_str(&t);
        }
        src = s.source();
    }
    msg
}

impl fmt::Display for PgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PgError::Connect(m) => write!(f, "connect: {m}"),
            PgError::Timeout(m) => write!(f, "timeout: {m}"),
            PgError::Db {
                code,
                severity,
                message,
            } => write!(f, "{severity} {code}: {message}"),
            PgError::Closed(m) => write!(f, "connection lost: {m}"),
            PgError::Decode(m) => write!(f, "bad answer: {m}"),
        }
    }
}

/// Whether an operation may change the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// It only reads: any error is `fail`.
    Read,
    /// It may write: whether an error is `fail` or `info` depends on how far it got.
    Write,
}

/// How far an operation got when it failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Nothing that could commit was sent yet: connecting, or statements inside `BEGIN`.
    BeforeCommit,
    /// The commit was sent: `COMMIT`, or a single-statement write (its own transaction).
    Commit,
}

/// The completion of an operation that ended in `err` at `stage`: `fail` when it certainly did
/// not happen, `info` when it may have.
pub fn classify(effect: Effect, stage: Stage, err: &PgError, request: &Value) -> Completion {
    let definite = match (effect, stage, err) {
        (Effect::Read, _, _) => true,
        (_, Stage::BeforeCommit, _) => true,
        (_, Stage::Commit, PgError::Connect(_)) => true,
        // The server rolled the transaction back and said so: a serialization failure
        // (40001), a deadlock (40P01), a constraint, a cancelled statement, …
        (_, Stage::Commit, PgError::Db { code, severity, .. }) => {
            severity == "ERROR" || code == "40001" || code == "40P01"
        }
        // Lost, timed out or not understood after the commit was sent: it may have committed.
        (_, Stage::Commit, _) => false,
    };
    if definite {
        Completion::fail(request.clone(), err.to_string())
    } else {
        Completion::info(request.clone(), err.to_string())
    }
}

/// What ended an operation: refused by its own logic (a cas that did not match, an overdraft),
/// or an error.
enum OpError {
    /// The transaction was rolled back on purpose: certainly nothing happened.
    Refused(String),
    Pg(PgError),
}

impl From<PgError> for OpError {
    fn from(e: PgError) -> OpError {
        OpError::Pg(e)
    }
}

type OpResult = Result<Value, OpError>;

/// Where an operation goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// The worker's own node.
    Own,
    /// n1.
    Primary,
}

/// How a client reaches the database: everything but the host.
#[derive(Debug, Clone)]
pub struct ConnSettings {
    /// The server's TCP port.
    pub port: u16,
    /// The role to log in as.
    pub user: String,
    /// Its password (empty: none sent).
    pub password: String,
    /// The database to connect to.
    pub database: String,
    /// The run's schema: every session's `search_path`.
    pub schema: String,
    /// The sessions' default transaction isolation.
    pub isolation: Isolation,
    /// Limit for establishing a connection.
    pub connect_timeout: Duration,
    /// Whether and how to use TLS (`sslmode`, `sslrootcert`).
    pub tls: Tls,
}

impl ConnSettings {
    /// The settings of a run.
    pub fn of(opts: &PgOpts) -> ConnSettings {
        ConnSettings {
            port: opts.port,
            user: opts.user.clone(),
            password: opts.password.clone(),
            database: opts.database.clone(),
            schema: opts.schema.clone(),
            isolation: opts.isolation,
            connect_timeout: opts.connect_timeout,
            tls: Tls::of(opts.sslmode, opts.sslrootcert.as_deref()),
        }
    }

    /// The startup `options` of a session: its isolation level and search path (spaces escaped
    /// with `\`, as the server splits the options at unescaped spaces).
    pub fn startup_options(&self, isolation: Isolation) -> String {
        format!(
            "-c default_transaction_isolation={} -c search_path={}",
            isolation.sql().replace(' ', "\\ "),
            self.schema
        )
    }

    /// A tokio-postgres configuration for `host`, in database `dbname`, at `isolation`.
    pub fn config(&self, host: &str, dbname: &str, isolation: Isolation) -> tokio_postgres::Config {
        let mut c = tokio_postgres::Config::new();
        c.host(host)
            .port(self.port)
            .user(&self.user)
            .dbname(dbname)
            .options(self.startup_options(isolation))
            .application_name("netsplit")
            .connect_timeout(self.connect_timeout)
            .ssl_mode(self.tls.mode().pg())
            .keepalives(true)
            .keepalives_idle(Duration::from_secs(5));
        // No password: the server may not ask for one (trust, peer); if it does, it says so.
        if !self.password.is_empty() {
            c.password(&self.password);
        }
        c
    }
}

/// One session: the client and the task driving its connection (aborted when dropped).
pub struct Session {
    /// The client to send statements through.
    pub client: tokio_postgres::Client,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Session {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Connects with `tls` and drives the connection in a task of its own.
async fn open<T>(
    cfg: &tokio_postgres::Config,
    tls: T,
) -> Result<(tokio_postgres::Client, tokio::task::JoinHandle<()>), tokio_postgres::Error>
where
    T: tokio_postgres::tls::MakeTlsConnect<tokio_postgres::Socket>,
    T::Stream: Send + 'static,
{
    let (client, conn) = cfg.connect(tls).await?;
    let task = tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok((client, task))
}

impl Session {
    /// Connects to `host` (within the settings' connect timeout) and drives the connection on
    /// the current tokio runtime.
    pub async fn connect(
        s: &ConnSettings,
        host: &str,
        dbname: &str,
        isolation: Isolation,
    ) -> Result<Session, PgError> {
        let cfg = s.config(host, dbname, isolation);
        // The connect timeout bounds each TCP connect; authentication and the startup answer
        // get the same time again.
        if let Some(e) = s.tls.error() {
            return Err(PgError::Connect(e.to_string()));
        }
        let fut = async {
            match s.tls.connector() {
                None => open(&cfg, tokio_postgres::NoTls).await,
                Some(tls) => open(&cfg, tls.clone()).await,
            }
        };
        let (client, task) = match tokio::time::timeout(s.connect_timeout * 2, fut).await {
            Ok(Ok(x)) => x,
            Ok(Err(e)) => {
                return Err(match PgError::from(e) {
                    PgError::Db {
                        code,
                        severity,
                        message,
                    } => PgError::Connect(format!("{severity} {code}: {message}")),
                    PgError::Closed(m) => PgError::Connect(m),
                    other => other,
                })
            }
            Err(_) => {
                return Err(PgError::Connect(format!(
                    "no session with {host}:{} within {:?}",
                    s.port,
                    s.connect_timeout * 2
                )))
            }
        };
        Ok(Session { client, task })
    }

    async fn batch(&self, sql: &str) -> Result<(), PgError> {
        Ok(self.client.batch_execute(sql).await?)
    }

    async fn rows(&self, sql: &str, params: &Params<'_>) -> Result<Vec<Row>, PgError> {
        Ok(self.client.query_typed(sql, params).await?)
    }

    async fn exec(&self, sql: &str, params: &Params<'_>) -> Result<u64, PgError> {
        Ok(self.client.execute_typed(sql, params).await?)
    }
}

fn json_of(text: &str, what: &str) -> Result<Value, PgError> {
    serde_json::from_str(text)
        .map_err(|e| PgError::Decode(format!("{what}: {text:?} is not JSON: {e}")))
}

fn get<'a, T: tokio_postgres::types::FromSql<'a>>(row: &'a Row, i: usize) -> Result<T, PgError> {
    row.try_get(i)
        .map_err(|e| PgError::Decode(format!("column {i}: {e}")))
}

/// What a client needs to know about the run beyond how to connect.
#[derive(Debug, Clone)]
pub struct ClientSettings {
    /// How to connect.
    pub conn: ConnSettings,
    /// Where operations that only read go.
    pub read: ReadMode,
    /// How a bank transfer changes the balances.
    pub transfer: Transfer,
    /// Whether a bank transfer may overdraw (the bank workload's `allow_negative`).
    pub allow_negative: bool,
    /// How long one operation may take.
    pub timeout: Duration,
}

impl ClientSettings {
    /// The settings of a run.
    pub fn of(opts: &PgOpts, allow_negative: bool) -> ClientSettings {
        ClientSettings {
            conn: ConnSettings::of(opts),
            read: opts.read,
            transfer: opts.transfer,
            allow_negative,
            timeout: opts.request_timeout,
        }
    }
}

/// One worker's client: a session with its own node (operations that only read, in
/// `read=replica` mode) and one with n1 (everything else), each opened lazily and dropped after
/// any error that may leave it in an unknown state.
pub struct PgClient {
    node: String,
    host: String,
    primary_host: String,
    /// The ports of the own node and of the primary (the settings' port unless
    /// [`PgClient::with_ports`] says otherwise).
    port: u16,
    primary_port: u16,
    s: ClientSettings,
    own: Option<Session>,
    primary: Option<Session>,
    /// How far the current operation got (read after a timeout).
    stage: Stage,
}

impl PgClient {
    /// A client bound to node `node` at `host`, whose primary is at `primary_host`. Connects
    /// nothing yet.
    pub fn new(node: &str, host: &str, primary_host: &str, s: ClientSettings) -> PgClient {
        PgClient {
            node: node.to_string(),
            host: host.to_string(),
            primary_host: primary_host.to_string(),
            port: s.conn.port,
            primary_port: s.conn.port,
            s,
            own: None,
            primary: None,
            stage: Stage::BeforeCommit,
        }
    }

    /// The same client with its own node and the primary at these ports (`endpoints=`).
    pub fn with_ports(mut self, port: u16, primary_port: u16) -> PgClient {
        self.port = port;
        self.primary_port = primary_port;
        self
    }

    /// The node this client is bound to.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// Where an operation that only reads goes; the bound node may itself be the primary.
    fn route(&self, effect: Effect) -> Route {
        if effect == Effect::Read
            && self.s.read == ReadMode::Replica
            && (self.host != self.primary_host || self.port != self.primary_port)
        {
            Route::Own
        } else {
            Route::Primary
        }
    }

    /// Connects the session for `route` unless it is there.
    async fn ensure(&mut self, route: Route) -> Result<(), PgError> {
        let (slot, host, port, isolation) = match route {
            Route::Own => (
                &mut self.own,
                &self.host,
                self.port,
                self.s.conn.isolation.on_standby(),
            ),
            Route::Primary => (
                &mut self.primary,
                &self.primary_host,
                self.primary_port,
                self.s.conn.isolation,
            ),
        };
        if slot.is_none() {
            let conn = if port == self.s.conn.port {
                std::borrow::Cow::Borrowed(&self.s.conn)
            } else {
                std::borrow::Cow::Owned(ConnSettings {
                    port,
                    ..self.s.conn.clone()
                })
            };
            *slot = Some(Session::connect(&conn, host, &conn.database, isolation).await?);
        }
        Ok(())
    }

    /// The session for `route`, connecting first if needed.
    async fn session(&mut self, route: Route) -> Result<&Session, PgError> {
        self.ensure(route).await?;
        self.connected(route)
    }

    /// The session for `route`, which [`PgClient::ensure`] made.
    fn connected(&self, route: Route) -> Result<&Session, PgError> {
        match route {
            Route::Own => self.own.as_ref(),
            Route::Primary => self.primary.as_ref(),
        }
        .ok_or_else(|| PgError::Closed("no session".into()))
    }

    fn drop_session(&mut self, route: Route) {
        match route {
            Route::Own => self.own = None,
            Route::Primary => self.primary = None,
        }
    }

    /// Performs one typed op (`request`: as the history records it). Never retries; an op of
    /// a vocabulary PostgreSQL does not speak here is `fail` (nothing was sent).
    pub async fn perform(&mut self, op: Op, request: &Value) -> Completion {
        let effect = if op.writes() {
            Effect::Write
        } else {
            Effect::Read
        };
        let route = self.route(effect);
        self.stage = Stage::BeforeCommit;
        let timeout = self.s.timeout;
        let r = tokio::time::timeout(timeout, self.run(route, op, request)).await;
        match r {
            Ok(Ok(v)) => Completion::ok(v),
            Ok(Err(OpError::Refused(why))) => Completion::fail(request.clone(), why),
            Ok(Err(OpError::Pg(e))) => {
                if !e.session_survives() {
                    self.drop_session(route);
                }
                classify(effect, self.stage, &e, request)
            }
            Err(_) => {
                // The session is in an unknown state (a late answer must never be taken for
                // the next statement's): a fresh one next time. Dropping it closes the
                // connection, so a transaction still open is rolled back by the server.
                self.drop_session(route);
                let e = PgError::Timeout(format!("no answer within {timeout:?}"));
                classify(effect, self.stage, &e, request)
            }
        }
    }

    async fn run(&mut self, route: Route, op: Op, request: &Value) -> OpResult {
        let done = Ok(request.clone());
        match op {
            Op::Register(RegisterOp::Read { key }) => self.register_read(route, &key).await,
            Op::Register(RegisterOp::Write { key, value }) => {
                let (key, text) = (key_text(&key), value.to_string());
                self.autocommit_write(
                    "INSERT INTO register (k, v) VALUES ($1, $2) \
                     ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v",
                    &[(&key, Type::TEXT), (&text, Type::TEXT)],
                )
                .await?;
                done
            }
            Op::Register(RegisterOp::Cas { key, old, new }) => {
                self.register_cas(&key, &old, &new).await?;
                done
            }
            Op::Set(SetOp::Add(e)) => {
                let text = e.to_string();
                self.autocommit_write(
                    "INSERT INTO set_elems (e) VALUES ($1)",
                    &[(&text, Type::TEXT)],
                )
                .await?;
                done
            }
            Op::Set(SetOp::Read) => self.set_read(route).await,
            Op::Counter(CounterOp::Add(d)) => {
                self.counter_add(d).await?;
                done
            }
            Op::Counter(CounterOp::Read) => self.counter_read(route).await,
            Op::Bank(BankOp::Transfer { from, to, amount }) => {
                self.bank_transfer(from, to, amount).await?;
                done
            }
            Op::Bank(BankOp::Read) => self.bank_read(route).await,
            Op::ListAppend(mops) => self.txn(route, mops, true).await,
            Op::RwRegister(mops) => self.txn(route, mops, false).await,
            other => Err(OpError::Refused(format!(
                "postgres client: vocabulary {} is not implemented (not sent)",
                other.vocabulary()
            ))),
        }
    }

    /// A write that is its own transaction: sending it is sending the commit.
    async fn autocommit_write(&mut self, sql: &str, params: &Params<'_>) -> Result<u64, PgError> {
        self.ensure(Route::Primary).await?;
        self.stage = Stage::Commit;
        let s = self
            .primary
            .as_ref()
            .ok_or_else(|| PgError::Closed("no session".into()))?;
        s.exec(sql, params).await
    }

    async fn register_read(&mut self, route: Route, k: &Value) -> OpResult {
        let key = key_text(k);
        let s = self.session(route).await?;
        let rows = s
            .rows("SELECT v FROM register WHERE k = $1", &[(&key, Type::TEXT)])
            .await?;
        match rows.first() {
            None => Ok(json!([k, null])),
            Some(r) => {
                let v: String = get(r, 0)?;
                Ok(json!([k, json_of(&v, "register")?]))
            }
        }
    }

    /// `fail` (refused) when the register does not hold `from`.
    async fn register_cas(&mut self, k: &Value, from: &Value, to: &Value) -> Result<(), OpError> {
        let (key, from, to) = (key_text(k), from.to_string(), to.to_string());
        let n = self
            .autocommit_write(
                "UPDATE register SET v = $3 WHERE k = $1 AND v = $2",
                &[(&key, Type::TEXT), (&from, Type::TEXT), (&to, Type::TEXT)],
            )
            .await?;
        match n {
            1 => Ok(()),
            0 => Err(OpError::Refused("cas: value did not match".into())),
            n => Err(OpError::Pg(PgError::Decode(format!(
                "cas updated {n} rows"
            )))),
        }
    }

    async fn set_read(&mut self, route: Route) -> OpResult {
        let s = self.session(route).await?;
        let rows = s.rows("SELECT e FROM set_elems", &[]).await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let e: String = get(r, 0)?;
            out.push(json_of(&e, "set element")?);
        }
        // A table has no order.
        sort_elements(&mut out);
        Ok(Value::Array(out))
    }

    async fn counter_add(&mut self, d: i64) -> Result<(), OpError> {
        let n = self
            .autocommit_write(
                "UPDATE counter SET n = n + $1 WHERE id = 0",
                &[(&d, Type::INT8)],
            )
            .await?;
        if n != 1 {
            return Err(OpError::Pg(PgError::Decode(format!(
                "counter add updated {n} rows"
            ))));
        }
        Ok(())
    }

    async fn counter_read(&mut self, route: Route) -> OpResult {
        let s = self.session(route).await?;
        let rows = s.rows("SELECT n FROM counter WHERE id = 0", &[]).await?;
        match rows.first() {
            Some(r) => Ok(json!(get::<i64>(r, 0)?)),
            None => Err(OpError::Pg(PgError::Decode(
                "the counter's row is missing".into(),
            ))),
        }
    }

    async fn bank_read(&mut self, route: Route) -> OpResult {
        let s = self.session(route).await?;
        let rows = s
            .rows("SELECT id, balance FROM accounts ORDER BY id", &[])
            .await?;
        let mut out = Map::new();
        for r in &rows {
            let id: i64 = get(r, 0)?;
            let b: i64 = get(r, 1)?;
            out.insert(id.to_string(), json!(b));
        }
        Ok(Value::Object(out))
    }

    /// Runs `body` inside `BEGIN … COMMIT` on `route`: the stage is the commit's once `COMMIT`
    /// is sent; an error inside rolls back (or drops the session when it cannot).
    async fn in_txn<F>(&mut self, route: Route, body: F) -> OpResult
    where
        F: for<'s> FnOnce(
            &'s Session,
        ) -> std::pin::Pin<
            Box<dyn std::future::Future<Output = OpResult> + Send + 's>,
        >,
    {
        self.ensure(route).await?;
        let s = match route {
            Route::Own => self.own.as_ref(),
            Route::Primary => self.primary.as_ref(),
        }
        .ok_or_else(|| PgError::Closed("no session".into()))?;
        s.batch("BEGIN").await?;
        match body(s).await {
            Ok(v) => {
                self.stage = Stage::Commit;
                s.batch("COMMIT").await?;
                Ok(v)
            }
            Err(e) => {
                let survives = match &e {
                    OpError::Refused(_) => true,
                    OpError::Pg(p) => p.session_survives(),
                };
                let rolled_back = survives && s.batch("ROLLBACK").await.is_ok();
                if !rolled_back {
                    self.drop_session(route);
                }
                Err(e)
            }
        }
    }

    /// A transfer inside one transaction (`transfer=`: read then write, or atomic updates).
    async fn bank_transfer(&mut self, from: u64, to: u64, amount: i64) -> OpResult {
        let account = |a: u64| {
            i64::try_from(a)
                .map_err(|_| OpError::Refused(format!("transfer: no account {a} (not sent)")))
        };
        let (from, to) = (account(from)?, account(to)?);
        let allow_negative = self.s.allow_negative;
        let done = Value::Null;
        match self.s.transfer {
            Transfer::ReadWrite => {
                self.in_txn(Route::Primary, move |s| {
                    Box::pin(async move {
                        let rows = s
                            .rows(
                                "SELECT id, balance FROM accounts WHERE id = $1 OR id = $2",
                                &[(&from, Type::INT8), (&to, Type::INT8)],
                            )
                            .await?;
                        let mut bf = None;
                        let mut bt = None;
                        for r in &rows {
                            let id: i64 = get(r, 0)?;
                            let b: i64 = get(r, 1)?;
                            if id == from {
                                bf = Some(b);
                            }
                            if id == to {
                                bt = Some(b);
                            }
                        }
                        let (Some(bf), Some(bt)) = (bf, bt) else {
                            return Err(OpError::Refused(
                                "transfer: account does not exist".into(),
                            ));
                        };
                        if !allow_negative && bf < amount {
                            return Err(OpError::Refused(format!(
                                "transfer: insufficient funds ({bf} < {amount})"
                            )));
                        }
                        if from != to {
                            let (nf, nt) = (bf - amount, bt + amount);
                            let set = "UPDATE accounts SET balance = $2 WHERE id = $1";
                            s.exec(set, &[(&from, Type::INT8), (&nf, Type::INT8)])
                                .await?;
                            s.exec(set, &[(&to, Type::INT8), (&nt, Type::INT8)]).await?;
                        }
                        Ok(done)
                    })
                })
                .await
            }
            Transfer::Atomic => {
                self.in_txn(Route::Primary, move |s| {
                    Box::pin(async move {
                        let n = s
                            .exec(
                                "UPDATE accounts SET balance = balance - $2 \
                                 WHERE id = $1 AND (balance >= $2 OR $3)",
                                &[
                                    (&from, Type::INT8),
                                    (&amount, Type::INT8),
                                    (&allow_negative, Type::BOOL),
                                ],
                            )
                            .await?;
                        if n != 1 {
                            return Err(OpError::Refused(
                                "transfer: insufficient funds or no such account".into(),
                            ));
                        }
                        let n = s
                            .exec(
                                "UPDATE accounts SET balance = balance + $2 WHERE id = $1",
                                &[(&to, Type::INT8), (&amount, Type::INT8)],
                            )
                            .await?;
                        if n != 1 {
                            return Err(OpError::Refused(
                                "transfer: account does not exist".into(),
                            ));
                        }
                        Ok(done)
                    })
                })
                .await
            }
        }
    }

    /// A list-append (`write_f` = `append`) or rw-register (`w`) transaction: every micro-op a
    /// statement, in order, inside one `BEGIN … COMMIT`, so reads see the transaction's own
    /// earlier writes. A never-written key reads `[]` (list-append) or `null` (rw-register).
    async fn txn(&mut self, route: Route, mops: Vec<MicroOp>, list: bool) -> OpResult {
        self.in_txn(route, move |s| {
            Box::pin(async move {
                let mut done = Vec::with_capacity(mops.len());
                for m in mops {
                    let key = key_text(m.key());
                    if let MicroOp::Read { key: k } = &m {
                        let sql = if list {
                            "SELECT v::text FROM lists WHERE k = $1"
                        } else {
                            "SELECT v FROM rw WHERE k = $1"
                        };
                        let rows = s.rows(sql, &[(&key, Type::TEXT)]).await?;
                        let seen = match rows.first() {
                            // Never written: an empty list, or a register's null.
                            None if list => json!([]),
                            None => Value::Null,
                            Some(r) => json_of(&get::<String>(r, 0)?, "txn value")?,
                        };
                        done.push(MicroOp::read_result(k, seen));
                    } else if let MicroOp::Append { value: v, .. } | MicroOp::Write { value: v, .. } =
                        &m
                    {
                        let text = v.to_string();
                        let sql = if list {
                            "INSERT INTO lists (k, v) VALUES ($1, jsonb_build_array($2::jsonb)) \
                             ON CONFLICT (k) DO UPDATE SET v = lists.v || jsonb_build_array($2::jsonb)"
                        } else {
                            "INSERT INTO rw (k, v) VALUES ($1, $2) \
                             ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v"
                        };
                        s.exec(sql, &[(&key, Type::TEXT), (&text, Type::TEXT)]).await?;
                        done.push(m.to_value());
                    }
                }
                Ok(Value::Array(done))
            })
        })
        .await
    }
}

// The vocabularies PostgreSQL speaks (every one the built-in workloads use), each through
// `PgClient::perform`.
crate::speaks!(PgClient: register, set, counter, bank, list_append, rw_register);

#[cfg(test)]
mod tests;

//! The PostgreSQL deployment's life on the nodes: install Debian's package, write each node's
//! `postgresql.conf`, `pg_hba.conf` and password file, `initdb` on n1 and start it, make the
//! run's database and tables, clone every replica from n1 with `pg_basebackup` and start it,
//! wait until n1 serves and every replica streams; and kill, stop, restart, pause and resume
//! nodes, always by the node's own pid file, never by process name (local nodes share one
//! process table).
//!
//! PostgreSQL is a tree of processes: the postmaster (whose pid the pid file holds) and its
//! children (one backend per connection, the checkpointer, the WAL writer, a replica's startup
//! process and walreceiver, …), each in its own session. So every signal goes to the whole
//! tree: a pause stops the postmaster first (it can then start no new child) and then every
//! child, found by parent pid; a kill does the same with SIGKILL — a real crash takes the
//! children with it, and a postmaster killed alone leaves backends that keep serving their
//! connections and keep the shared memory a restart needs. A graceful stop is PostgreSQL's
//! fast shutdown (SIGINT: roll back open transactions, disconnect, checkpoint), not SIGTERM's
//! smart shutdown, which waits for every client to leave.
//!
//! The servers run as the OS user `os_user` (PostgreSQL refuses root), started through
//! `setpriv` so that the pid the pid file records is the postmaster's own. Probes (readiness,
//! primaries) are tokio-postgres sessions from the control node, run with
//! [`crate::block_on`] since the [`crate::Db`] calls are blocking.

use super::client::{schema_sql, ClientSettings, ConnSettings, PgClient, PgError, Session};
use super::config::{pg_hba_conf, pgpass, postgresql_conf, Isolation, PgOpts, Replicas};
use crate::cluster::{Cluster, NodeFiles, NodeLifecycle, Watch};
use crate::control::util::{self, Daemon};
use crate::control::Cmd;
use crate::vocab::initial_balances;
use crate::vocab::{Typed, Vocabulary};
use crate::{BoxFuture, Client, Clock, Primaries};
use anyhow::{anyhow, Context, Result};
use std::time::Duration;

/// The libfaketime package (its library is what [`crate::control::faketime::faketime_env`]
/// preloads).
pub const FAKETIME_PACKAGE: &str = "libfaketime";

/// What the process-tree scripts share, after `util::PROCESS_SH` (`gone`, `await_gone`): `$p`
/// is the postmaster's pid from the pid file `$1`; `kids` lists its children.
const TREE_PRELUDE: &str = r#"p=$(cat "$1" 2>/dev/null)
kids() { ps -o pid= --ppid "$p" 2>/dev/null; }
"#;

/// SIGKILL the postmaster and every child (stopping the postmaster first, so it starts no new
/// one), wait until all are gone, remove the pid file. Nothing running: nothing to do.
const KILL_TREE: &str = r#"[ -n "$p" ] || { rm -f "$1"; exit 0; }
if gone "$p"; then rm -f "$1"; exit 0; fi
kill -STOP "$p" 2>/dev/null
all="$p $(kids)"
kill -KILL $all 2>/dev/null
for q in $all; do await_gone "$q"; done
rm -f "$1""#;

/// Fast shutdown: SIGCONT the tree (a paused server must hear it), SIGINT the postmaster, wait
/// `$2` tenths of a second; then the kill above.
const STOP_TREE: &str = r#"[ -n "$p" ] || { rm -f "$1"; exit 3; }
if gone "$p"; then rm -f "$1"; exit 3; fi
for q in $(kids) "$p"; do kill -CONT "$q" 2>/dev/null; done
kill -INT "$p" 2>/dev/null
i=0; while ! gone "$p" && [ "$i" -lt "$2" ]; do sleep 0.1; i=$((i+1)); done
"#;

/// SIGSTOP the postmaster, then every child. Exit 3: nothing running.
const PAUSE_TREE: &str = r#"[ -n "$p" ] && ! gone "$p" || exit 3
kill -STOP "$p"
for q in $(kids); do kill -STOP "$q" 2>/dev/null; done
exit 0"#;

/// SIGCONT every child, then the postmaster. Exit 3: nothing running.
const RESUME_TREE: &str = r#"[ -n "$p" ] && ! gone "$p" || exit 3
for q in $(kids); do kill -CONT "$q" 2>/dev/null; done
kill -CONT "$p"
exit 0"#;

/// The postmaster's pid and its children's, one per line (nothing when it does not run).
const TREE_PIDS: &str = r#"[ -n "$p" ] && ! gone "$p" || exit 0
echo "$p"
kids"#;

/// PostgreSQL's own part of a run: its settings, the workload its clients speak and what
/// setup creates for it.
pub struct PgLifecycle {
    /// The target's settings (`--target-opt`, the plan's `target:`).
    pub opts: PgOpts,
    /// Whether the servers run under libfaketime (resolved from `faketime=auto|on|off`).
    pub faketime: bool,
    /// The bank's accounts to create at setup (`accounts`, `total`), if the workload is bank.
    pub bank: Option<(u64, i64)>,
    /// The workload's vocabulary.
    pub vocabulary: Vocabulary,
    /// The bank may go negative (its clients do not refuse overdrafts).
    pub allow_negative: bool,
    /// Where clients reach each node: its address and the port, unless `endpoints=` says
    /// otherwise (deploy: existing).
    pub endpoints: Vec<(String, u16)>,
    /// The primary's node index: n1 when netsplit deploys; asked of a deployed PostgreSQL
    /// (`pg_is_in_recovery()`, crates/netsplit-db/src/postgres/attach.rs).
    pub primary: std::sync::atomic::AtomicUsize,
}

/// PostgreSQL on a set of nodes: node 0 the primary, the others its streaming replicas.
pub type PgCluster = Cluster<PgLifecycle>;

impl PgLifecycle {
    /// A command run as the OS user (through `setpriv`, which execs: the pid stays), with
    /// `env` set for it alone.
    pub fn as_os_user(&self, env: &[(String, String)], argv: &[String]) -> Vec<String> {
        let mut v = vec![
            "setpriv".to_string(),
            format!("--reuid={}", self.opts.os_user),
            format!("--regid={}", self.opts.os_user),
            "--init-groups".to_string(),
        ];
        if !env.is_empty() {
            v.push("env".into());
            v.extend(env.iter().map(|(k, val)| format!("{k}={val}")));
        }
        v.extend(argv.iter().cloned());
        v
    }
}

/// Kills, stops, pauses and resumes act on the server's whole process tree.
impl NodeLifecycle for PgLifecycle {
    const NAME: &'static str = "postgres";

    /// Only n1 with `replicas=none`.
    fn runs_on(c: &PgCluster, i: usize) -> bool {
        c.opts.runs_on(i)
    }
    fn install(c: &PgCluster, i: usize) -> Result<()> {
        c.install(i)
    }
    fn configure(c: &PgCluster, i: usize) -> Result<()> {
        c.configure(i)
    }
    fn wipe(c: &PgCluster, i: usize, keep_log: bool) -> Result<()> {
        c.wipe(i, keep_log)
    }
    fn start(c: &PgCluster, i: usize) -> Result<()> {
        c.start_node(i)
    }
    fn files(c: &PgCluster, i: usize) -> NodeFiles {
        let (o, n) = (&c.opts, &c.nodes[i]);
        NodeFiles::new(o.pid_on(n), o.log_on(n), Some(o.data_dir_on(n)))
    }
    /// The log, postgresql.conf and pg_hba.conf.
    fn log_files(c: &PgCluster, i: usize) -> Vec<String> {
        let n = &c.nodes[i];
        vec![c.opts.log_on(n), c.opts.conf_on(n), c.opts.hba_on(n)]
    }
    /// n1 serves as the primary and every replica is a standby that n1 streams to.
    fn not_serving(c: &PgCluster) -> Option<(usize, String)> {
        c.not_ready()
    }
    fn start_timeout(c: &PgCluster) -> Duration {
        c.opts.start_timeout
    }
    /// Installs on every node, wipes what an earlier run left, writes every config, makes n1,
    /// its database and tables, clones and starts every replica, and waits until they serve.
    fn setup(c: &PgCluster) -> Result<()> {
        c.on_db_nodes(|i| c.install(i))?;
        c.on_db_nodes(|i| c.wipe_node(i, false))?;
        c.on_db_nodes(|i| c.configure(i))?;
        c.on_db_nodes(|i| c.mount_disk(i))?;
        c.initdb()?;
        c.start_node(0)?;
        c.wait_primary(c.opts.start_timeout)?;
        c.create_schema()?;
        c.on_db_nodes(|i| {
            if i == 0 {
                return Ok(());
            }
            c.basebackup(i)?;
            c.start_node(i)
        })?;
        c.wait_serving(c.opts.start_timeout)
    }
    /// A client bound to node `i` (operations that only read go there in `read=replica`
    /// mode; everything else goes to n1).
    fn client(c: &PgCluster, i: usize) -> BoxFuture<'_, Result<Box<dyn Client>>> {
        Box::pin(async move {
            let client = Typed::new("postgres", c.vocabulary, c.pg_client(i)?)?;
            Ok(Box::new(client) as Box<dyn Client>)
        })
    }
    /// PostgreSQL is a C program linked against glibc: libfaketime reaches it when it runs
    /// under it (the `faketime` option).
    fn clock(c: &PgCluster) -> Clock {
        Clock::under_faketime(c.faketime)
    }
    fn as_primaries(c: &PgCluster) -> Option<&dyn Primaries> {
        Some(c)
    }
    /// A deployed PostgreSQL (crates/netsplit-db/src/postgres/attach.rs).
    fn as_attach(c: &PgCluster) -> Option<&dyn crate::Attach> {
        Some(c)
    }
    /// SIGKILLs node `i`'s postmaster and every child, and waits until all are gone.
    fn kill(c: &PgCluster, i: usize) -> Result<()> {
        if !c.opts.runs_on(i) {
            return Ok(());
        }
        c.tree_acted(i, KILL_TREE, &[], Duration::from_secs(60), "killing")?;
        Ok(())
    }
    fn stop(c: &PgCluster, i: usize, grace: Duration) -> Result<()> {
        c.stop_node(i, grace)
    }
    /// SIGSTOPs node `i`'s whole tree; an error when nothing runs there.
    fn pause(c: &PgCluster, i: usize) -> Result<()> {
        if !c.opts.runs_on(i) {
            return Ok(());
        }
        if !c.tree_acted(i, PAUSE_TREE, &[], Duration::from_secs(30), "pausing")? {
            return Err(anyhow!(
                "{}: postgres is not running, nothing to pause",
                c.nodes[i].name
            ));
        }
        Ok(())
    }
    /// SIGCONTs node `i`'s whole tree; nothing running means nothing is paused.
    fn resume(c: &PgCluster, i: usize) -> Result<()> {
        if !c.opts.runs_on(i) {
            return Ok(());
        }
        c.tree_acted(i, RESUME_TREE, &[], Duration::from_secs(30), "resuming")?;
        Ok(())
    }
    /// The pids of node `i`'s postmaster and children.
    fn pids(c: &PgCluster, i: usize) -> Result<Vec<u32>> {
        if !c.opts.runs_on(i) {
            return Ok(Vec::new());
        }
        let o = c.tree(i, TREE_PIDS, &[], Duration::from_secs(30))?;
        Ok(o.stdout
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect())
    }
}

impl Primaries for PgCluster {
    fn primaries(&self) -> Result<Vec<String>> {
        Ok(self.leaders().unwrap_or_default())
    }
}

impl PgCluster {
    /// A client bound to node `i`.
    pub fn pg_client(&self, i: usize) -> Result<PgClient> {
        self.check_index(i)?;
        let n = &self.nodes[i];
        let (host, port) = self.endpoint(i);
        let (phost, pport) = self.endpoint(self.primary_index());
        Ok(PgClient::new(
            &n.name,
            &host,
            &phost,
            ClientSettings::of(&self.opts, self.allow_negative),
        )
        .with_ports(port, pport))
    }

    /// Where clients reach node `i`.
    pub fn endpoint(&self, i: usize) -> (String, u16) {
        self.endpoints
            .get(i)
            .cloned()
            .unwrap_or_else(|| (self.nodes[i].host.clone(), self.opts.port))
    }

    /// The primary's node index (n1 unless a deployed PostgreSQL said otherwise).
    pub fn primary_index(&self) -> usize {
        self.primary
            .load(std::sync::atomic::Ordering::Relaxed)
            .min(self.nodes.len().saturating_sub(1))
    }

    fn settings(&self) -> ConnSettings {
        ConnSettings::of(&self.opts)
    }

    fn run_as_os_user(
        &self,
        i: usize,
        env: &[(String, String)],
        argv: &[String],
        t: Duration,
    ) -> Result<()> {
        let v = self.as_os_user(env, argv);
        let cmd = Cmd::new(v[0].clone())
            .args(v[1..].iter().cloned())
            .sudo()
            .timeout(t);
        self.remotes[i]
            .exec_ok(&cmd)
            .with_context(|| format!("{} on {}", argv[0], self.nodes[i].name))?;
        Ok(())
    }

    /// Installs PostgreSQL (and libfaketime when used) on node `i`; idempotent, apt runs once
    /// per host under the node utilities' lock.
    pub fn install(&self, i: usize) -> Result<()> {
        let mut pkgs: Vec<&str> = self.opts.packages.iter().map(String::as_str).collect();
        if self.faketime {
            pkgs.push(FAKETIME_PACKAGE);
        }
        util::install_packages(self.remotes[i].as_ref(), &pkgs)
            .with_context(|| format!("installing postgres on {}", self.nodes[i].name))?;
        Ok(())
    }

    /// Kills node `i`'s server (if running) and removes its data, sockets and pid file (and its
    /// log unless `keep_log`).
    pub fn wipe(&self, i: usize, keep_log: bool) -> Result<()> {
        let node = &self.nodes[i];
        self.stop_node(i, crate::cluster::WIPE_GRACE)?;
        let more = [self.opts.sockets_on(node), self.opts.passfile_on(node)];
        self.remove_files(i, keep_log, &more, &[])
    }

    /// Writes node `i`'s postgresql.conf, pg_hba.conf and password file, and makes its
    /// directory (owned by the OS user, as PostgreSQL wants its data directory).
    pub fn configure(&self, i: usize) -> Result<()> {
        let r = self.remotes[i].as_ref();
        let node = &self.nodes[i];
        let conf = postgresql_conf(i, &self.nodes, &self.opts)
            .map_err(|e| anyhow!("rendering postgresql.conf for {}: {e}", node.name))?;
        let hba = pg_hba_conf(node, &self.opts)
            .map_err(|e| anyhow!("rendering pg_hba.conf for {}: {e}", node.name))?;
        util::write_file(r, &self.opts.conf_on(node), conf.as_bytes())
            .with_context(|| format!("writing postgresql.conf on {}", node.name))?;
        util::write_file(r, &self.opts.hba_on(node), hba.as_bytes())
            .with_context(|| format!("writing pg_hba.conf on {}", node.name))?;
        let pass = self.opts.passfile_on(node);
        // The password file: made empty and private first, then filled, so it is never
        // readable by others.
        const PRIVATE: &str = r#"dir=$1 sockets=$2 pass=$3 user=$4
mkdir -p -- "$dir" "$sockets" || exit 1
chown -- "$user:" "$dir" "$sockets" || exit 1
chmod 0700 -- "$dir" "$sockets" || exit 1
(umask 077 && : > "$pass") && chown -- "$user:" "$pass" && chmod 0600 -- "$pass""#;
        r.exec_ok(&util::script(
            PRIVATE,
            &[
                &self.opts.dir_on(node),
                &self.opts.sockets_on(node),
                &pass,
                &self.opts.os_user,
            ],
        ))
        .with_context(|| format!("making postgres's directory on {}", node.name))?;
        r.exec_ok(
            &Cmd::new("sh")
                .args(["-c", r#"cat > "$1""#, "sh", &pass])
                .stdin(pgpass(&self.opts).into_bytes())
                .sudo(),
        )
        .with_context(|| format!("writing the password file on {}", node.name))?;
        Ok(())
    }

    /// `initdb` on n1: the run's role as the cluster's superuser, its password from the
    /// password file's twin (written, used and removed).
    pub fn initdb(&self) -> Result<()> {
        let node = &self.nodes[0];
        let r = self.remotes[0].as_ref();
        let pwfile = format!("{}/initdb.pw", self.opts.dir_on(node));
        r.exec_ok(
            &Cmd::new("sh")
                .args([
                    "-c",
                    r#"(umask 077 && cat > "$1") && chown -- "$2:" "$1""#,
                    "sh",
                    &pwfile,
                    &self.opts.os_user,
                ])
                .stdin(self.opts.password.clone().into_bytes())
                .sudo(),
        )
        .with_context(|| format!("writing initdb's password file on {}", node.name))?;
        let res = self.run_as_os_user(
            0,
            &[],
            &[
                self.opts.bin("initdb"),
                "-D".into(),
                self.opts.data_dir_on(node),
                "-U".into(),
                self.opts.user.clone(),
                format!("--pwfile={pwfile}"),
                "--auth=scram-sha-256".into(),
                "--encoding=UTF8".into(),
                "--locale=C".into(),
                "--no-sync".into(),
            ],
            Duration::from_secs(120),
        );
        let _ = r.exec(&Cmd::new("rm").args(["-f", "--", &pwfile]).sudo());
        res
    }

    /// Clones replica `i` from n1 (`pg_basebackup`, WAL streamed alongside) and marks it a
    /// standby.
    pub fn basebackup(&self, i: usize) -> Result<()> {
        let node = &self.nodes[i];
        let data = self.opts.data_dir_on(node);
        self.run_as_os_user(
            i,
            &[("PGPASSFILE".into(), self.opts.passfile_on(node))],
            &[
                self.opts.bin("pg_basebackup"),
                "-h".into(),
                self.nodes[0].host.clone(),
                "-p".into(),
                self.opts.port.to_string(),
                "-U".into(),
                self.opts.user.clone(),
                "-D".into(),
                data.clone(),
                "-X".into(),
                "stream".into(),
                "-c".into(),
                "fast".into(),
                "--no-password".into(),
                "--no-sync".into(),
            ],
            Duration::from_secs(300),
        )?;
        self.run_as_os_user(
            i,
            &[],
            &["touch".into(), format!("{data}/standby.signal")],
            Duration::from_secs(30),
        )
    }

    /// Starts node `i` unless its pid file names a live process: `postgres -D <data> -c
    /// config_file=<conf>` as the OS user (under libfaketime where clock faults need it). The
    /// lock files a killed server leaves — `postmaster.pid` in the data directory and the
    /// socket's `.s.PGSQL.<port>.lock` — are removed first: nothing of ours runs, and the pid in
    /// them may still name the killed postmaster as a zombie its new parent has not reaped yet,
    /// or a recycled pid (local nodes share one process table); PostgreSQL takes either for a
    /// live postmaster and refuses to start ("lock file … already exists").
    pub fn start_node(&self, i: usize) -> Result<()> {
        if !self.opts.runs_on(i) {
            return Ok(());
        }
        let r = self.remotes[i].as_ref();
        let node = &self.nodes[i];
        if util::daemon_running(r, &self.opts.pid_on(node))? {
            return Ok(());
        }
        let data = self.opts.data_dir_on(node);
        let socket_lock = format!(
            "{}/.s.PGSQL.{}.lock",
            self.opts.sockets_on(node),
            self.opts.port
        );
        r.exec_ok(
            &Cmd::new("rm")
                .args(["-f", "--", &format!("{data}/postmaster.pid"), &socket_lock])
                .sudo(),
        )
        .with_context(|| format!("removing stale lock files on {}", node.name))?;
        let env = if self.faketime {
            crate::control::faketime::faketime_env(&node.workdir)
        } else {
            Vec::new()
        };
        let argv = self.as_os_user(
            &env,
            &[
                self.opts.bin("postgres"),
                "-D".into(),
                data,
                "-c".into(),
                format!("config_file={}", self.opts.conf_on(node)),
            ],
        );
        let d = Daemon {
            name: "postgres".into(),
            argv,
            env: Vec::new(),
            cwd: self.opts.dir_on(node),
            pidfile: self.opts.pid_on(node),
            logfile: self.opts.log_on(node),
        };
        self.start_daemon(i, &d)
    }

    fn tree(
        &self,
        i: usize,
        body: &str,
        extra: &[&str],
        t: Duration,
    ) -> Result<crate::control::Output> {
        let pidfile = self.opts.pid_on(&self.nodes[i]);
        let text = format!("{TREE_PRELUDE}{body}");
        let mut args = vec![pidfile.as_str()];
        args.extend_from_slice(extra);
        Ok(self.remotes[i].exec(&util::process_script(&text, &args).timeout(t))?)
    }

    /// A tree script that either acted (exit 0) or found nothing running (exit 3): whether it
    /// acted; any other end is an error saying what it was `doing`.
    fn tree_acted(
        &self,
        i: usize,
        body: &str,
        extra: &[&str],
        t: Duration,
        doing: &str,
    ) -> Result<bool> {
        let o = self.tree(i, body, extra, t)?;
        match o.status {
            0 => Ok(true),
            3 => Ok(false),
            _ => Err(anyhow!(
                "{doing} postgres on {}: {}",
                self.nodes[i].name,
                o.stderr.trim()
            )),
        }
    }

    /// Fast shutdown of node `i`, SIGKILL of the tree after `grace`. Nothing running: nothing
    /// to do.
    pub fn stop_node(&self, i: usize, grace: Duration) -> Result<()> {
        let tenths = (grace.as_millis() / 100).max(1).to_string();
        let t = grace + Duration::from_secs(60);
        if self.tree_acted(i, STOP_TREE, &[&tenths], t, "stopping")? {
            // Whatever did not exit within the grace period (the postmaster, or children it
            // left).
            let t = Duration::from_secs(60);
            self.tree_acted(i, KILL_TREE, &[], t, "after a stop, killing")?;
        }
        Ok(())
    }

    fn probe<T: Send>(&self, f: impl std::future::Future<Output = T> + Send) -> Result<T> {
        crate::block_on(f)
    }

    /// A session with node `i` in the run's database (or `postgres`), at read committed.
    pub(super) async fn admin(&self, i: usize, dbname: &str) -> Result<Session, PgError> {
        let mut s = self.settings();
        s.connect_timeout = Duration::from_secs(2);
        let (host, port) = self.endpoint(i);
        s.port = port;
        Session::connect(&s, &host, dbname, Isolation::ReadCommitted).await
    }

    /// Makes the run's database (if missing), its schema and tables, and the rows the workload
    /// starts from (the counter's, the bank's accounts), through n1.
    pub fn create_schema(&self) -> Result<()> {
        let db = self.opts.database.clone();
        let schema = self.opts.schema.clone();
        let bank = self.bank;
        self.probe(async move {
            let s = self.admin(0, "postgres").await?;
            let exists = s
                .client
                .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&db])
                .await
                .map_err(|e| PgError::Closed(e.to_string()))?
                .is_some();
            if !exists {
                s.client
                    .batch_execute(&format!("CREATE DATABASE {db}"))
                    .await
                    .map_err(|e| PgError::Closed(format!("CREATE DATABASE {db}: {e}")))?;
            }
            drop(s);
            let s = self.admin(0, &db).await?;
            let mut sql = schema_sql(&schema);
            if let Some((accounts, total)) = bank {
                for (a, b) in initial_balances(accounts, total) {
                    sql.push_str(&format!(
                        "\nINSERT INTO {schema}.accounts (id, balance) VALUES ({a}, {b});"
                    ));
                }
            }
            s.client
                .batch_execute(&format!("BEGIN;\n{sql}\nCOMMIT;"))
                .await
                .map_err(|e| PgError::Closed(format!("creating the tables: {e}")))?;
            Ok::<(), PgError>(())
        })?
        .map_err(|e| {
            anyhow!(
                "creating the run's tables through {}: {e}",
                self.nodes[0].name
            )
        })
    }

    /// Node `i`'s role: `Some(true)` primary (not in recovery), `Some(false)` standby, or why
    /// it did not answer.
    pub fn in_recovery(&self, i: usize) -> Result<bool, String> {
        let r = self.probe(async move {
            let s = self.admin(i, &self.opts.database).await?;
            let row = s
                .client
                .query_one("SELECT pg_is_in_recovery()", &[])
                .await
                .map_err(|e| PgError::Closed(e.to_string()))?;
            Ok::<bool, PgError>(row.get(0))
        });
        match r {
            Ok(Ok(b)) => Ok(b),
            Ok(Err(e)) => Err(e.to_string()),
            Err(e) => Err(e.to_string()),
        }
    }

    /// The application names of the replicas n1 streams to (`pg_stat_replication`, state
    /// `streaming`).
    pub fn streaming(&self) -> Result<Vec<String>, String> {
        let r = self.probe(async move {
            let s = self.admin(0, &self.opts.database).await?;
            let rows = s
                .client
                .query(
                    "SELECT application_name FROM pg_stat_replication WHERE state = 'streaming'",
                    &[],
                )
                .await
                .map_err(|e| PgError::Closed(e.to_string()))?;
            Ok::<Vec<String>, PgError>(rows.iter().map(|r| r.get(0)).collect())
        });
        match r {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(e.to_string()),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Waits until n1 accepts sessions in the `postgres` database as a primary (watching
    /// n1's postmaster: the others do not run yet).
    fn wait_primary(&self, timeout: Duration) -> Result<()> {
        let pid_file = |i: usize| self.opts.pid_on(&self.nodes[i]);
        let log = |i: usize| self.opts.log_on(&self.nodes[i]);
        let watch = Watch {
            what: "postgres",
            nodes: vec![0],
            pid_file: &pid_file,
            log: &log,
        };
        self.wait_until(timeout, Some(watch), || {
            let r = self.probe(async move {
                let s = self.admin(0, "postgres").await?;
                s.client
                    .query_one("SELECT pg_is_in_recovery()", &[])
                    .await
                    .map_err(|e| PgError::Closed(e.to_string()))
                    .map(|r| r.get::<_, bool>(0))
            });
            match r {
                Ok(Ok(false)) => None,
                Ok(Ok(true)) => Some((0, "n1 is in recovery".to_string())),
                Ok(Err(e)) => Some((0, e.to_string())),
                Err(e) => Some((0, e.to_string())),
            }
        })
    }

    /// Why the deployment is not ready yet, and on which node (None: n1 serves as the primary
    /// and every replica is a standby that n1 streams to).
    pub fn not_ready(&self) -> Option<(usize, String)> {
        let db = self.db_nodes();
        for &i in &db {
            match self.in_recovery(i) {
                Ok(r) if r == (i > 0) => {}
                Ok(r) => {
                    return Some((i, format!("pg_is_in_recovery() is {r}, expected {}", i > 0)))
                }
                Err(e) => return Some((i, e)),
            }
        }
        if db.len() > 1 {
            match self.streaming() {
                Ok(names) => {
                    if let Some(&i) = db[1..]
                        .iter()
                        .find(|&&i| !names.contains(&self.nodes[i].name))
                    {
                        return Some((i, format!("n1 does not stream to it yet ({names:?})")));
                    }
                }
                Err(e) => return Some((0, e)),
            }
        }
        None
    }

    /// The nodes that answer as a primary (not in recovery): n1 while it answers when
    /// netsplit deploys — the topology is static. None when no node answered.
    pub fn leaders(&self) -> Option<Vec<String>> {
        let db = self.db_nodes();
        // Over the nodes, not the SSH sessions: a deployed PostgreSQL may be tested without SSH.
        let roles: Vec<Result<bool, String>> = crate::control::fan_out(&self.nodes, |i, _| {
            if db.contains(&i) {
                self.in_recovery(i)
            } else {
                Err("no postgres".into())
            }
        });
        self.leading(&roles, |in_recovery| !in_recovery)
    }

    /// Whether the topology streams to replicas at all.
    pub fn has_replicas(&self) -> bool {
        self.opts.replicas != Replicas::None && self.nodes.len() > 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_as_the_os_user_keep_the_pid_and_scope_their_environment() {
        let o = PgOpts {
            password: "pw".into(),
            ..crate::opts::Preset::preset().unwrap()
        };
        let c = PgLifecycle {
            opts: o,
            faketime: false,
            bank: None,
            vocabulary: Vocabulary::Register,
            allow_negative: false,
            endpoints: Vec::new(),
            primary: Default::default(),
        };
        assert_eq!(
            c.as_os_user(&[("A".into(), "1".into())], &["/bin/x".into(), "-y".into()]),
            vec![
                "setpriv",
                "--reuid=postgres",
                "--regid=postgres",
                "--init-groups",
                "env",
                "A=1",
                "/bin/x",
                "-y"
            ]
        );
        assert_eq!(
            c.as_os_user(&[], &["/bin/x".into()]),
            vec![
                "setpriv",
                "--reuid=postgres",
                "--regid=postgres",
                "--init-groups",
                "/bin/x"
            ]
        );
    }
}

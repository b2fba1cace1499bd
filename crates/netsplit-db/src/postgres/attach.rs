//! A PostgreSQL the operator already runs (`deploy: existing`, docs/deployed-databases.md):
//! what the postgres target does instead of installing one ([`crate::Attach`]).
//!
//! - Clients connect as the operator's role to the operator's database (`user`, `password` /
//!   `password-file` / `PGPASSWORD`, `database`, `port`, `sslmode`; `super::opts_for_existing`).
//! - The primary is whichever node says `pg_is_in_recovery()` is false (exactly one must);
//!   writes go there, reads as `read=` says (`replica`: the worker's own node).
//! - The run's data lives in its own schema, `netsplit_<run id>` ([`super::run_schema`]):
//!   made at attach (with every workload's table, and the bank's accounts), the clients'
//!   `search_path`, and dropped — that schema by name, `CASCADE`, nothing else — at the end
//!   unless `--leave-data`. The preflight checks that the role may create a schema in the
//!   database (`has_database_privilege(…, 'CREATE')`) and names the grant it needs.
//! - The server is a process tree (the postmaster and its children), so kills, stops and pauses
//!   act on all of it ([`crate::Attach::process_tree`]); the graceful stop is PostgreSQL's
//!   fast shutdown (SIGINT). The postmaster keeps its command line and environment as it was
//!   started, so `/proc` says how to start it again.

use super::client::{tables_sql, PgError, Session};
use super::PgCluster;
use crate::vocab::initial_balances;
use crate::Attach;
use anyhow::{anyhow, bail, Result};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// `name` as SQL text: unquoted when PostgreSQL takes it so, else in double quotes.
pub fn sql_ident(name: &str) -> String {
    let plain = name
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_lowercase() || b == b'_')
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if plain {
        name.to_string()
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    }
}

/// The grant a role needs to create the run's schema in a database.
pub fn create_grant(database: &str, role: &str) -> String {
    format!(
        "GRANT CREATE ON DATABASE {} TO {}",
        sql_ident(database),
        sql_ident(role)
    )
}

/// What one node says about itself.
struct About {
    version: String,
    in_recovery: bool,
    user: String,
    may_create: bool,
}

impl PgCluster {
    fn addr(&self, i: usize) -> String {
        let (h, p) = self.endpoint(i);
        if h.contains(':') {
            format!("[{h}]:{p}")
        } else {
            format!("{h}:{p}")
        }
    }

    fn about(&self, i: usize) -> Result<About, PgError> {
        let db = self.opts.database.clone();
        crate::block_on(async move {
            let s = self.admin(i, &db).await?;
            let row = s
                .client
                .query_one(
                    "SELECT current_setting('server_version'), pg_is_in_recovery(), \
                     current_user::text, has_database_privilege(current_database(), 'CREATE')",
                    &[],
                )
                .await
                .map_err(|e| PgError::Closed(e.to_string()))?;
            Ok(About {
                version: row.get(0),
                in_recovery: row.get(1),
                user: row.get(2),
                may_create: row.get(3),
            })
        })
        .map_err(|e| PgError::Closed(e.to_string()))?
    }

    /// Which node is the primary now: the one node not in recovery. Err: (node index, why) of
    /// what kept it from being known.
    fn find_primary(&self) -> Result<usize, (usize, String)> {
        let roles = crate::control::fan_out(&self.nodes, |i, _| self.in_recovery(i));
        let mut primaries = Vec::new();
        for (i, r) in roles.into_iter().enumerate() {
            match r {
                Ok(false) => primaries.push(i),
                Ok(true) => {}
                Err(e) => {
                    return Err((i, format!("endpoint {} does not answer: {e}", self.addr(i))))
                }
            }
        }
        match primaries.as_slice() {
            [p] => Ok(*p),
            [] => Err((
                0,
                "every node is in recovery (pg_is_in_recovery()): no primary".into(),
            )),
            many => Err((
                many[1],
                format!(
                    "{} nodes are not in recovery ({}): netsplit tests one primary and its \
                     streaming replicas",
                    many.len(),
                    many.iter()
                        .map(|&i| self.nodes[i].name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )),
        }
    }

    /// Runs `sql` (several statements) in the operator's database on node `i`.
    fn batch_on(&self, i: usize, sql: &str) -> Result<(), PgError> {
        let db = self.opts.database.clone();
        crate::block_on(async move {
            let s: Session = self.admin(i, &db).await?;
            s.client
                .batch_execute(sql)
                .await
                .map_err(|e| match e.as_db_error() {
                    Some(d) => PgError::Db {
                        code: d.code().code().to_string(),
                        severity: d.severity().to_string(),
                        message: d.message().to_string(),
                    },
                    None => PgError::Closed(e.to_string()),
                })
        })
        .map_err(|e| PgError::Closed(e.to_string()))?
    }

    /// Whether node `i` has the run's schema (a standby: once it replayed its creation).
    fn has_schema(&self, i: usize) -> Result<bool, PgError> {
        let (db, schema) = (self.opts.database.clone(), self.opts.schema.clone());
        crate::block_on(async move {
            let s = self.admin(i, &db).await?;
            let row = s
                .client
                .query_opt("SELECT 1 FROM pg_namespace WHERE nspname = $1", &[&schema])
                .await
                .map_err(|e| PgError::Closed(e.to_string()))?;
            Ok(row.is_some())
        })
        .map_err(|e| PgError::Closed(e.to_string()))?
    }

    /// The run's schema: netsplit's own, by construction (`netsplit_<run id>`).
    fn run_schema(&self) -> Result<&str> {
        let s = self.opts.schema.as_str();
        if !s.starts_with("netsplit_") || s.len() <= "netsplit_".len() {
            bail!("refusing to use schema {s:?}: not a run's own (netsplit_<run id>)");
        }
        Ok(s)
    }
}

impl Attach for PgCluster {
    /// Connects as the operator's role and reports the server's version and role; the role must
    /// be allowed to create the run's schema.
    fn probe(&self, i: usize) -> Result<String> {
        self.check_index(i)?;
        let a = self
            .about(i)
            .map_err(|e| anyhow!("endpoint {} does not answer: {e}", self.addr(i)))?;
        if !a.may_create {
            bail!(
                "endpoint {}: role {} may not create a schema in database {} (netsplit keeps \
                 the run's data in its own schema {}): {}",
                self.addr(i),
                a.user,
                self.opts.database,
                self.opts.schema,
                create_grant(&self.opts.database, &a.user)
            );
        }
        Ok(format!(
            "endpoint {}: PostgreSQL {}, {}",
            self.addr(i),
            a.version,
            if a.in_recovery { "standby" } else { "primary" }
        ))
    }

    /// Waits until every node answers and exactly one is the primary, sends writes there, and
    /// makes the run's schema, its tables and the rows the workload starts from; then waits
    /// until every standby has the schema.
    fn attach(&self) -> Result<()> {
        let schema = self.run_schema()?.to_string();
        let timeout = self.opts.start_timeout;
        let deadline = Instant::now() + timeout;
        let p = loop {
            match self.find_primary() {
                Ok(p) => break p,
                Err((i, why)) if Instant::now() >= deadline => bail!(
                    "postgres on {} did not serve within {:.0}s: {why}",
                    self.nodes[i].name,
                    timeout.as_secs_f64()
                ),
                Err(_) => std::thread::sleep(Duration::from_millis(200)),
            }
        };
        self.primary.store(p, Ordering::Relaxed);
        let node = &self.nodes[p].name;
        tracing::info!(primary = %node, schema = %schema, "postgres primary");
        let mut sql = tables_sql(&schema);
        if let Some((accounts, total)) = self.bank {
            for (a, b) in initial_balances(accounts, total) {
                sql.push_str(&format!(
                    "\nINSERT INTO {schema}.accounts (id, balance) VALUES ({a}, {b});"
                ));
            }
        }
        if let Err(e) = self.batch_on(p, &format!("BEGIN;\n{sql}\nCOMMIT;")) {
            if matches!(&e, PgError::Db { code, .. } if code == "42501") {
                bail!(
                    "{node}: creating schema {schema}: {e}: {}",
                    create_grant(&self.opts.database, &self.opts.user)
                );
            }
            bail!("{node}: creating schema {schema} and its tables: {e}");
        }
        for i in (0..self.nodes.len()).filter(|&i| i != p) {
            loop {
                match self.has_schema(i) {
                    Ok(true) => break,
                    Ok(false) | Err(_) if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(100))
                    }
                    Ok(false) => bail!(
                        "{}: the standby did not replay the creation of schema {schema} within \
                         {:.0}s",
                        self.nodes[i].name,
                        timeout.as_secs_f64()
                    ),
                    Err(e) => bail!("{}: {e}", self.nodes[i].name),
                }
            }
        }
        Ok(())
    }

    /// Drops the run's schema (`DROP SCHEMA netsplit_<run id> CASCADE`) on the primary, which
    /// may still be starting after a heal: retried until the start timeout.
    fn delete_data(&self) -> Result<()> {
        let schema = self.run_schema()?.to_string();
        let timeout = self.opts.start_timeout;
        let deadline = Instant::now() + timeout;
        let mut p = self.primary_index();
        loop {
            match self.batch_on(p, &format!("DROP SCHEMA IF EXISTS {schema} CASCADE")) {
                Ok(()) => {
                    tracing::info!(schema = %schema, node = %self.nodes[p].name, "dropped the run's schema");
                    return Ok(());
                }
                Err(e) if Instant::now() >= deadline => bail!(
                    "{}: dropping the run's schema {schema}: {e}",
                    self.nodes[p].name
                ),
                Err(_) => {
                    std::thread::sleep(Duration::from_millis(300));
                    if let Ok(q) = self.find_primary() {
                        p = q;
                    }
                }
            }
        }
    }

    fn process_tree(&self) -> bool {
        true
    }

    /// Fast shutdown: roll back open transactions, disconnect, checkpoint.
    fn stop_signal(&self) -> &'static str {
        "INT"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_name_the_database_and_role_as_sql_takes_them() {
        assert_eq!(
            create_grant("appdb", "app"),
            "GRANT CREATE ON DATABASE appdb TO app"
        );
        assert_eq!(
            create_grant("App DB", "o\"k"),
            "GRANT CREATE ON DATABASE \"App DB\" TO \"o\"\"k\""
        );
    }
}

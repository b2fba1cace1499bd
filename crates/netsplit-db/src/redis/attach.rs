//! A Redis the user already runs (`deploy: existing`, docs/deployed-databases.md): what the
//! redis target does instead of installing one ([`crate::Attach`]).
//!
//! - the primary is whichever node says `role:master` in `INFO replication` (exactly one must);
//!   writes go there, reads as `read=` says;
//! - with Sentinel (`sentinels=host:port,…` and `master-name=`), the primary is where the
//!   Sentinels say the master is (every one must answer, and all the same node, which must say
//!   `role:master`), and clients follow it through them as the installed target's do;
//! - the run's keys (`netsplit/<run id>/…`) are deleted from the primary at the end with
//!   `SCAN … MATCH` and `DEL`, nothing else;
//! - redis-server writes its process title over its command line and environment, so `/proc`
//!   cannot say how it was started: the server itself can (`INFO server`: `executable` and
//!   `config_file`), and that is how netsplit starts a server it killed.

use super::resp::{info_fields, Reply, SyncConn};
use super::RedisCluster as Redis;
use crate::control::Cmd;
use crate::Attach;
use anyhow::{anyhow, bail, Result};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// A Redis glob that matches exactly the keys beginning with `prefix`.
pub fn prefix_glob(prefix: &str) -> String {
    let mut g = String::with_capacity(prefix.len() + 1);
    for c in prefix.chars() {
        if "*?[]\\".contains(c) {
            g.push('\\');
        }
        g.push(c);
    }
    g.push('*');
    g
}

/// The fields of one `INFO` section of a connection.
fn info(c: &mut SyncConn, section: &str) -> Result<Vec<(String, String)>, String> {
    match c.call(&["INFO", section]) {
        Ok(Reply::Bulk(b)) => Ok(info_fields(&String::from_utf8_lossy(&b))
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()),
        Ok(other) => Err(format!("INFO {section} answered {other:?}")),
        Err(e) => Err(format!("INFO {section}: {e}")),
    }
}

fn field<'a>(fields: &'a [(String, String)], k: &str) -> &'a str {
    fields
        .iter()
        .find(|(n, _)| n == k)
        .map(|(_, v)| v.as_str())
        .unwrap_or("")
}

impl Redis {
    fn addr(&self, i: usize) -> String {
        let (h, p) = &self.endpoints[i];
        super::resp::addr(h, *p)
    }

    fn connect(&self, i: usize, timeout: Duration) -> Result<SyncConn> {
        self.conn(i, timeout)
            .map_err(|e| anyhow!("endpoint {} does not answer: {e}", self.addr(i)))
    }

    /// Which node is the primary now: with Sentinel, where the Sentinels say it is
    /// ([`Redis::sentinels_agree`]); else the one node whose `INFO replication` says
    /// `role:master`. Err: (node index, why) of what kept it from being known.
    fn find_primary(&self) -> Result<usize, (usize, String)> {
        if !self.sentinels.is_empty() {
            return self.sentinels_agree();
        }
        let roles = crate::control::fan_out(&self.nodes, |i, _| {
            self.replication(i, Duration::from_secs(2))
        });
        let mut masters = Vec::new();
        for (i, r) in roles.into_iter().enumerate() {
            match r {
                Ok(r) if r.role == "master" => masters.push(i),
                Ok(_) => {}
                Err(e) => {
                    return Err((i, format!("endpoint {} does not answer: {e}", self.addr(i))))
                }
            }
        }
        match masters.as_slice() {
            [p] => Ok(*p),
            [] => Err((0, "no node says role:master (INFO replication)".into())),
            many => Err((
                many[1],
                format!(
                    "{} nodes say role:master ({}): netsplit tests one primary and its replicas",
                    many.len(),
                    many.iter()
                        .map(|&i| self.nodes[i].name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )),
        }
    }
}

impl Redis {
    /// The node every Sentinel names as the master, when every Sentinel answers, all name the
    /// same node, and it says `role:master`. Err: (node index, why) — the node is n1 when the
    /// fault is a Sentinel's.
    fn sentinels_agree(&self) -> Result<usize, (usize, String)> {
        let name = &self.opts.master_name;
        let said = crate::control::fan_out(&self.sentinels, |i, _| {
            self.sentinel_primary_index(i, Duration::from_secs(2))
        });
        let mut primary = None;
        for (i, r) in said.into_iter().enumerate() {
            let (h, p) = &self.sentinels[i];
            let at = super::resp::addr(h, *p);
            match r {
                Err(e) => return Err((0, format!("Sentinel {at} on master {name}: {e}"))),
                Ok(p) => match primary {
                    None => primary = Some((p, at)),
                    Some((q, ref first)) if q != p => {
                        return Err((
                            p,
                            format!(
                                "the Sentinels disagree on master {name}: {first} names {}, \
                                 {at} names {}",
                                self.nodes[q].name, self.nodes[p].name
                            ),
                        ))
                    }
                    Some(_) => {}
                },
            }
        }
        let Some((p, _)) = primary else {
            return Err((0, "no Sentinel given".into()));
        };
        match self.replication(p, Duration::from_secs(2)) {
            Ok(r) if r.role == "master" => Ok(p),
            Ok(r) => Err((
                p,
                format!(
                    "the Sentinels name it master {name}, but it says role:{}",
                    r.role
                ),
            )),
            Err(e) => Err((p, format!("endpoint {} does not answer: {e}", self.addr(p)))),
        }
    }

    /// What Sentinel `i` says about master `master-name`, for the preflight.
    fn probe_sentinel(&self, i: usize) -> Result<String> {
        let (h, p) = &self.sentinels[i];
        let at = super::resp::addr(h, *p);
        let name = &self.opts.master_name;
        let m = self
            .sentinel_master(i, Duration::from_secs(2))
            .map_err(|e| {
                if e.contains("No such master") {
                    anyhow!("Sentinel {at} knows no master named {name} (master-name=)")
                } else {
                    anyhow!("Sentinel {at} does not answer SENTINEL MASTER {name}: {e}")
                }
            })?;
        let get = |k: &str| {
            m.iter()
                .find(|(f, _)| f == k)
                .map(|(_, v)| v.as_str())
                .unwrap_or("?")
        };
        Ok(format!(
            "Sentinel {at}: master {name} at {}, {} replicas, {} other Sentinels",
            super::resp::addr(get("ip"), get("port").parse().unwrap_or(0)),
            get("num-slaves"),
            get("num-other-sentinels")
        ))
    }
}

impl Attach for Redis {
    fn probe(&self, i: usize) -> Result<String> {
        self.check_index(i)?;
        let mut c = self.connect(i, Duration::from_secs(2))?;
        match c.call(&["PING"]) {
            Ok(Reply::Simple(s)) if s == "PONG" => {}
            Ok(other) => bail!("endpoint {}: PING answered {other:?}", self.addr(i)),
            Err(e) => bail!("endpoint {} does not answer PING: {e}", self.addr(i)),
        }
        let server =
            info(&mut c, "server").map_err(|e| anyhow!("endpoint {}: {e}", self.addr(i)))?;
        let repl =
            info(&mut c, "replication").map_err(|e| anyhow!("endpoint {}: {e}", self.addr(i)))?;
        let mut out = format!(
            "endpoint {}: redis {}, role {}",
            self.addr(i),
            field(&server, "redis_version"),
            field(&repl, "role")
        );
        // Each Sentinel once, spread over the nodes' lines.
        let n = self.nodes.len().max(1);
        for s in (i..self.sentinels.len()).step_by(n) {
            out.push_str("; ");
            out.push_str(&self.probe_sentinel(s)?);
        }
        Ok(out)
    }

    /// Waits until every node answers and exactly one is the primary (with Sentinel: every
    /// Sentinel names the same node, which says it is), and sends writes there.
    fn attach(&self) -> Result<()> {
        let timeout = self.opts.start_timeout;
        let deadline = Instant::now() + timeout;
        loop {
            match self.find_primary() {
                Ok(p) => {
                    self.primary.store(p, Ordering::Relaxed);
                    tracing::info!(primary = %self.nodes[p].name, "redis primary");
                    return Ok(());
                }
                Err((i, why)) if Instant::now() >= deadline => bail!(
                    "redis on {} did not serve within {:.0}s: {why}",
                    self.nodes[i].name,
                    timeout.as_secs_f64()
                ),
                Err(_) => std::thread::sleep(Duration::from_millis(200)),
            }
        }
    }

    /// Deletes the keys under the run's namespace from the primary (`SCAN … MATCH`, `DEL`).
    /// With Sentinel, from where the Sentinels say the master is now (a failover during the
    /// run moves it), waiting for them to agree as at setup.
    fn delete_data(&self) -> Result<()> {
        if self.ns.is_empty() {
            bail!("refusing to delete every key (no namespace)");
        }
        if !self.sentinels.is_empty() {
            self.attach()?;
        }
        let p = self.primary_index();
        let node = &self.nodes[p].name;
        let mut c = self.connect(p, self.opts.request_timeout.max(Duration::from_secs(5)))?;
        let glob = prefix_glob(&self.ns);
        let mut cursor = "0".to_string();
        let mut deleted = 0i64;
        loop {
            let reply = c
                .call(&["SCAN", &cursor, "MATCH", &glob, "COUNT", "1000"])
                .map_err(|e| anyhow!("{node}: SCAN: {e}"))?;
            let Reply::Array(parts) = reply else {
                bail!("{node}: SCAN answered {reply:?}");
            };
            let (Some(Reply::Bulk(next)), Some(Reply::Array(keys))) = (parts.first(), parts.get(1))
            else {
                bail!("{node}: SCAN answered {parts:?}");
            };
            let keys: Vec<Vec<u8>> = keys
                .iter()
                .filter_map(|k| match k {
                    Reply::Bulk(b) if b.starts_with(self.ns.as_bytes()) => Some(b.clone()),
                    _ => None,
                })
                .collect();
            if !keys.is_empty() {
                let mut cmd: Vec<Vec<u8>> = vec![b"DEL".to_vec()];
                cmd.extend(keys);
                match c.call(&cmd).map_err(|e| anyhow!("{node}: DEL: {e}"))? {
                    Reply::Int(n) => deleted += n,
                    other => bail!("{node}: DEL answered {other:?}"),
                }
            }
            cursor = String::from_utf8_lossy(next).into_owned();
            if cursor == "0" {
                break;
            }
        }
        tracing::info!(namespace = %self.ns, deleted, "deleted the run's keys");
        Ok(())
    }

    /// `INFO server`'s `executable` and `config_file`: how the server says it was started.
    /// None when it runs without a config file (its options are then lost with its title).
    fn start_command(&self, i: usize) -> Result<Option<Vec<String>>> {
        self.check_index(i)?;
        let mut c = self.connect(i, Duration::from_secs(3))?;
        let server =
            info(&mut c, "server").map_err(|e| anyhow!("endpoint {}: {e}", self.addr(i)))?;
        let conf = field(&server, "config_file");
        if conf.is_empty() {
            return Ok(None);
        }
        // Redis makes `executable` absolute by joining its working directory and argv[0],
        // which is wrong for a server started through PATH: then the PATH's redis-server.
        let mut exe = field(&server, "executable").to_string();
        let usable = !exe.is_empty()
            && match self.remotes.get(i) {
                Some(r) => r
                    .exec(&Cmd::new("test").args(["-x", &exe]).sudo())
                    .is_ok_and(|o| o.status == 0),
                None => true,
            };
        if !usable {
            exe = "redis-server".into();
        }
        Ok(Some(vec![exe, conf.to_string()]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_namespace_glob_matches_only_the_namespace() {
        assert_eq!(
            prefix_glob("netsplit/20250101T000000-abc123/"),
            "netsplit/20250101T000000-abc123/*"
        );
        assert_eq!(prefix_glob("a*b?[c]\\"), "a\\*b\\?\\[c\\]\\\\*");
    }
}

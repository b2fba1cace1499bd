//! Seeded generators of transactional histories, for tests and benchmarks (no I/O).
//!
//! [`simulate`] runs random transactions against a simulated database with `processes`
//! concurrent clients: each transaction is invoked, later *applied* atomically against the
//! database state, and later completed; the three steps of different transactions interleave at
//! random. Because each transaction takes effect at one instant between its invocation and its
//! completion, the histories are strict serializable (`Mode::StrictSerial`). `Mode::Serial`
//! additionally lets read-only transactions read from an older snapshot (still serializable,
//! generally not strict). `Mode::Buggy` makes each read return a random prefix of each list (or a
//! random earlier value of a register), and occasionally applies a failed transaction's writes —
//! histories full of anomalies, for oracle tests.
//!
//! Keys follow Elle's generator: a pool of `active_keys` keys, each retired after
//! `max_writes_per_key` writes and replaced by a fresh key; values are unique per key
//! (1, 2, 3, …). The PRNG is [`crate::rng::Rng`], so a seed replays exactly.

use super::TxnWorkload;
use crate::history::{Op, OpType, Process};
use crate::rng::Rng;
use serde_json::{json, Value};

/// How the simulated database behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Each transaction takes effect atomically between its invocation and completion.
    StrictSerial,
    /// As StrictSerial, but read-only transactions may read an older snapshot.
    Serial,
    /// Reads see random prefixes / earlier values; failed writes sometimes leak.
    Buggy,
}

/// Generator parameters. Defaults are Elle-like: 10 processes, 10 active keys, at most 32
/// writes per key, 1–4 micro-ops per transaction, half reads.
#[derive(Debug, Clone)]
pub struct GenOptions {
    /// The workload whose micro-ops the transactions use.
    pub workload: TxnWorkload,
    /// Number of transactions generated.
    pub txns: usize,
    /// Concurrent client processes.
    pub processes: usize,
    /// Size of the pool of keys in use at any time.
    pub active_keys: usize,
    /// Writes a key receives before it is retired and replaced by a fresh key.
    pub max_writes_per_key: usize,
    /// Fewest micro-ops per transaction.
    pub min_len: usize,
    /// Most micro-ops per transaction.
    pub max_len: usize,
    /// Probability that a micro-op is a read.
    pub read_ratio: f64,
    /// Probability a transaction fails (takes no effect, completes `fail`).
    pub fail_ratio: f64,
    /// Probability a transaction completes `info` (it takes effect with probability 1/2).
    pub info_ratio: f64,
    /// How the simulated database behaves.
    pub mode: Mode,
    /// Seed of the PRNG: the same options and seed give the same history.
    pub seed: u64,
}

impl Default for GenOptions {
    fn default() -> Self {
        GenOptions {
            workload: TxnWorkload::ListAppend,
            txns: 1000,
            processes: 10,
            active_keys: 10,
            max_writes_per_key: 32,
            min_len: 1,
            max_len: 4,
            read_ratio: 0.5,
            fail_ratio: 0.05,
            info_ratio: 0.02,
            mode: Mode::StrictSerial,
            seed: 0,
        }
    }
}

#[derive(Clone)]
enum GMop {
    Append(u64, u64),
    Read(u64),
}

struct Pending {
    process: u64,
    slot: usize,
    mops: Vec<GMop>,
    /// Filled when applied: the completed micro-ops' JSON.
    result: Option<Value>,
    outcome: OpType,
}

/// The simulated database: per key, the sequence of (apply sequence number, value) writes.
struct Db {
    seq: u64,
    keys: std::collections::HashMap<u64, Vec<(u64, u64)>>,
}

impl Db {
    /// The list (list-append) at snapshot `at`.
    fn list(&self, k: u64, at: u64) -> Vec<u64> {
        self.keys
            .get(&k)
            .map(|v| v.iter().take_while(|w| w.0 <= at).map(|w| w.1).collect())
            .unwrap_or_default()
    }
}

/// Generates a complete history (every transaction invoked and completed).
pub fn simulate(o: &GenOptions) -> Vec<Op> {
    let mut rng = Rng::new(o.seed);
    let mut db = Db {
        seq: 0,
        keys: Default::default(),
    };
    let nproc = o.processes.max(1);
    let mut proc_id: Vec<u64> = (0..nproc as u64).collect();
    let mut busy: Vec<Option<usize>> = vec![None; nproc];
    let mut pending: Vec<Pending> = Vec::new();
    let mut open: Vec<usize> = Vec::new(); // indices into `pending` not yet completed
    let mut ops: Vec<Op> = Vec::with_capacity(o.txns * 2);
    let mut started = 0usize;
    let mut active: Vec<u64> = (0..o.active_keys.max(1) as u64).collect();
    let mut next_key = active.len() as u64;
    let mut writes: std::collections::HashMap<u64, u64> = Default::default();
    let push = |ops: &mut Vec<Op>, p: u64, kind: OpType, v: Value| {
        let mut op = Op::new(Process::Client(p), kind, "txn", v);
        op.index = ops.len() as u64;
        op.time = op.index * 1_000;
        ops.push(op);
    };
    while started < o.txns || !open.is_empty() {
        let idle: Vec<usize> = (0..nproc).filter(|&s| busy[s].is_none()).collect();
        let invoke = started < o.txns && !idle.is_empty() && (open.is_empty() || rng.chance(0.4));
        if invoke {
            let slot = idle[rng.index(idle.len())];
            let len = o.min_len + rng.index(o.max_len.saturating_sub(o.min_len) + 1);
            let mut mops = Vec::with_capacity(len);
            for _ in 0..len {
                let ki = rng.index(active.len());
                let k = active[ki];
                if rng.chance(o.read_ratio) {
                    mops.push(GMop::Read(k));
                } else {
                    let n = writes.entry(k).or_insert(0);
                    *n += 1;
                    mops.push(GMop::Append(k, *n));
                    if *n as usize >= o.max_writes_per_key {
                        active[ki] = next_key;
                        next_key += 1;
                    }
                }
            }
            let inv = render(&mops, o.workload, None);
            let p = proc_id[slot];
            push(&mut ops, p, OpType::Invoke, inv);
            busy[slot] = Some(pending.len());
            open.push(pending.len());
            pending.push(Pending {
                process: p,
                slot,
                mops,
                result: None,
                outcome: OpType::Ok,
            });
            started += 1;
            continue;
        }
        let oi = rng.index(open.len());
        let pi = open[oi];
        if pending[pi].result.is_none() {
            // Apply.
            let fail = rng.chance(o.fail_ratio);
            let info = !fail && rng.chance(o.info_ratio);
            let applies = !fail && (!info || rng.chance(0.5));
            let leak = fail && o.mode == Mode::Buggy && rng.chance(0.3);
            let read_only = pending[pi].mops.iter().all(|m| matches!(m, GMop::Read(_)));
            let snapshot = match o.mode {
                Mode::Serial if read_only => db.seq.saturating_sub(rng.index(20) as u64),
                _ => db.seq,
            };
            let mops = pending[pi].mops.clone();
            let mut own: std::collections::HashMap<u64, Vec<u64>> = Default::default();
            let mut reads: Vec<Option<Value>> = Vec::with_capacity(mops.len());
            db.seq += 1;
            let at = db.seq;
            for m in &mops {
                match m {
                    GMop::Read(k) => {
                        let mut l = db.list(*k, snapshot);
                        if o.mode == Mode::Buggy {
                            let cut = rng.index(l.len() + 1);
                            l.truncate(cut);
                        }
                        if let Some(mine) = own.get(k) {
                            l.extend(mine);
                        }
                        reads.push(Some(match o.workload {
                            TxnWorkload::ListAppend => json!(l),
                            TxnWorkload::RwRegister => match l.last() {
                                Some(v) => json!(v),
                                None => Value::Null,
                            },
                        }));
                    }
                    GMop::Append(k, v) => {
                        own.entry(*k).or_default().push(*v);
                        reads.push(None);
                    }
                }
            }
            if applies || leak {
                for (k, vs) in own {
                    let e = db.keys.entry(k).or_default();
                    for v in vs {
                        e.push((at, v));
                    }
                }
            }
            let p = &mut pending[pi];
            p.outcome = if fail {
                OpType::Fail
            } else if info {
                OpType::Info
            } else {
                OpType::Ok
            };
            p.result = Some(render(&mops, o.workload, Some(&reads)));
        } else {
            // Complete.
            open.swap_remove(oi);
            let p = &pending[pi];
            let value = match p.outcome {
                OpType::Ok => p.result.clone().unwrap_or(Value::Null),
                _ => render(&p.mops, o.workload, None),
            };
            push(&mut ops, p.process, p.outcome, value);
            busy[p.slot] = None;
            if p.outcome == OpType::Info {
                proc_id[p.slot] += nproc as u64;
            }
        }
    }
    ops
}

fn render(mops: &[GMop], w: TxnWorkload, reads: Option<&[Option<Value>]>) -> Value {
    let wf = match w {
        TxnWorkload::ListAppend => "append",
        TxnWorkload::RwRegister => "w",
    };
    Value::Array(
        mops.iter()
            .enumerate()
            .map(|(i, m)| match m {
                GMop::Append(k, v) => json!([wf, k, v]),
                GMop::Read(k) => {
                    let r = reads
                        .and_then(|rs| rs.get(i).cloned().flatten())
                        .unwrap_or(Value::Null);
                    json!(["r", k, r])
                }
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_history() {
        let o = GenOptions {
            txns: 50,
            seed: 7,
            ..GenOptions::default()
        };
        assert_eq!(simulate(&o), simulate(&o));
        let h = simulate(&o);
        assert_eq!(h.len(), 100);
        assert!(crate::history::pair(&h).is_ok());
    }
}

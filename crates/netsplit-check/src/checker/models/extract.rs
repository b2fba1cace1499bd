//! From recorded events to [`Hist`]: pairing, keys, sessions, reads-from.

use super::{Hist, MOp};
use crate::checker::CheckError;
use crate::history::{pair_positions, Op, OpType, Process};
use serde_json::Value;
use std::collections::HashMap;

/// What extraction found.
pub enum Extracted {
    Hist(Hist),
    /// Reads-from cannot be known (a value written twice to one key): every model unknown.
    Undecidable(String),
    /// A read of a value no operation wrote (or only a failed one): every model violated.
    ThinAir {
        read: usize,
        msg: String,
    },
}

struct Raw {
    event: usize,
    process: u64,
    key: String,
    /// What was read (JSON text), if the op reads.
    read: Option<String>,
    /// What was written (JSON text), if the op writes.
    write: Option<String>,
    definite: bool,
    ends_session: bool,
}

fn split(v: &Value, keyed: bool, event: usize) -> Result<(String, Value), CheckError> {
    if !keyed {
        return Ok((String::new(), v.clone()));
    }
    match v.as_array().map(|a| a.as_slice()) {
        Some([k, x]) => Ok((k.to_string(), x.clone())),
        _ => Err(CheckError::new(
            event,
            format!(
                "expected [key, value], got {}",
                crate::history::limits::quote_value(v)
            ),
        )),
    }
}

/// Reads a register history (see the module documentation for which operations count).
pub fn extract(ops: &[Op], keyed: bool) -> Result<Extracted, CheckError> {
    let pairs = pair_positions(ops).map_err(|e| CheckError::new(e.event, e.msg))?;
    let mut raws = Vec::new();
    for p in &pairs {
        let inv = &ops[p.invoke];
        let Process::Client(process) = inv.process else {
            continue;
        };
        if p.outcome == OpType::Fail {
            continue;
        }
        let definite = p.outcome == OpType::Ok;
        let ends_session = !definite;
        let (key, read, write) = match inv.f.as_str() {
            "read" => {
                if !definite {
                    raws.push(Raw {
                        event: p.invoke,
                        process,
                        key: String::new(),
                        read: None,
                        write: None,
                        definite,
                        ends_session,
                    });
                    continue;
                }
                let c = p.complete.expect("ok has a completion");
                let (k, v) = split(&ops[c].value, keyed, c)?;
                (k, Some(v.to_string()), None)
            }
            "write" => {
                let (k, v) = split(&inv.value, keyed, p.invoke)?;
                (k, None, Some(v.to_string()))
            }
            "cas" => {
                let (k, v) = split(&inv.value, keyed, p.invoke)?;
                match v.as_array().map(|a| a.as_slice()) {
                    Some([old, new]) => (k, Some(old.to_string()), Some(new.to_string())),
                    _ => {
                        return Err(CheckError::new(
                            p.invoke,
                            format!(
                                "cas expects [old, new], got {}",
                                crate::history::limits::quote_value(&v)
                            ),
                        ))
                    }
                }
            }
            other => {
                return Err(CheckError::new(
                    p.invoke,
                    format!("a register history has read, write and cas, not {other:?}"),
                ))
            }
        };
        raws.push(Raw {
            event: p.invoke,
            process,
            key,
            read,
            write,
            definite,
            ends_session,
        });
    }
    // Writes by (key, value); a value written twice (counting failed writes out) is ambiguous.
    let mut writer: HashMap<(&str, &str), usize> = HashMap::new();
    for (i, r) in raws.iter().enumerate() {
        if let Some(w) = &r.write {
            if w == "null" {
                return Ok(Extracted::Undecidable(format!(
                    "event {}: writes null, the initial value: reads-from unknown",
                    r.event
                )));
            }
            if let Some(&j) = writer.get(&(r.key.as_str(), w.as_str())) {
                return Ok(Extracted::Undecidable(format!(
                    "key {}: value {w} written twice (events {} and {}): reads-from unknown",
                    r.key, raws[j].event, r.event
                )));
            }
            writer.insert((r.key.as_str(), w.as_str()), i);
        }
    }
    // Which raw ops count: definite ones, and indefinite writes someone observed.
    let mut observed = vec![false; raws.len()];
    let mut src = vec![None; raws.len()];
    for (i, r) in raws.iter().enumerate() {
        if !r.definite && r.write.is_none() {
            continue;
        }
        if let Some(v) = &r.read {
            if v == "null" {
                src[i] = Some(None);
            } else if let Some(&j) = writer.get(&(r.key.as_str(), v.as_str())) {
                if r.definite {
                    observed[j] = true;
                }
                src[i] = Some(Some(j));
            } else if r.definite {
                return Ok(Extracted::ThinAir {
                    read: r.event,
                    msg: format!("key {}: read {v}, which no operation wrote", r.key),
                });
            }
        }
    }
    // An observed indefinite cas read what it compared against; an observed indefinite op
    // that reads a never-written value cannot have succeeded — it is dropped below.
    let counts = |i: usize| {
        raws[i].definite || (raws[i].write.is_some() && observed[i] && src_ok(&raws[i], src[i]))
    };
    fn src_ok(r: &Raw, s: Option<Option<usize>>) -> bool {
        r.read.is_none() || s.is_some()
    }
    let mut h = Hist::default();
    let mut idx = vec![usize::MAX; raws.len()];
    let mut keys: HashMap<&str, usize> = HashMap::new();
    let mut session_of: HashMap<u64, usize> = HashMap::new();
    for (i, r) in raws.iter().enumerate() {
        let counted = counts(i);
        if counted {
            let nk = keys.len();
            let key = *keys.entry(r.key.as_str()).or_insert(nk);
            let ns = h.sessions.len();
            let s = *session_of.entry(r.process).or_insert(ns);
            if s == ns {
                h.sessions.push(Vec::new());
            }
            idx[i] = h.ops.len();
            h.ops.push(MOp {
                event: r.event,
                session: s,
                pos: h.sessions[s].len(),
                key,
                read: None,
                write: r.write.is_some(),
            });
            h.sessions[s].push(h.ops.len() - 1);
        }
        if r.ends_session {
            session_of.remove(&r.process);
        }
    }
    for (i, r) in raws.iter().enumerate() {
        if idx[i] == usize::MAX || r.read.is_none() {
            continue;
        }
        let s = src[i].expect("counted readers have a source");
        let s = match s {
            None => None,
            Some(j) if idx[j] != usize::MAX => Some(idx[j]),
            Some(_) => {
                return Ok(Extracted::ThinAir {
                    read: r.event,
                    msg: format!("key {}: read a value only a failed operation wrote", r.key),
                })
            }
        };
        h.ops[idx[i]].read = Some(s);
    }
    h.keys = keys.len();
    Ok(Extracted::Hist(h))
}

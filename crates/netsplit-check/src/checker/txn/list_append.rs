//! List-append inference: version orders from read prefixes, ww/wr/rw edges, and the
//! non-cycle anomalies visible in the data.
//!
//! Each key holds a list; `["append", k, v]` adds `v` (values unique per key) and a read returns
//! the whole list, which reveals a prefix of the key's version order. The longest `ok` read of a
//! key is taken as its version order; every other read must be a prefix of it, else the key has
//! an `incompatible-order` and no ww/rw edges are inferred for it (wr edges, which come from a
//! single read, still are). Per key:
//! - ww: consecutive elements of the order appended by different committed-or-unknown
//!   transactions (failed or unknown elements are skipped);
//! - wr: an external read (the transaction's first access to the key) whose last element was
//!   appended by another transaction;
//! - rw: an external read of length L, and the transaction that appended the next known element;
//! - G1a (an element appended by a failed transaction is read), garbage-read (an element nobody
//!   appended), G1b (the last element read was not its writer's final append to that key),
//!   dirty-update (a failed append followed by committed ones in the order), duplicate-elements,
//!   incompatible-order, lost-update (two committed transactions appended to a key after reading
//!   the same version of it), and internal (a transaction's read contradicts its own earlier
//!   reads and appends).
//!
//! Keys are independent, so they are analysed in parallel (rayon).

use super::anomaly::Explain;
use super::fx::{map_with_capacity, HashMap, HashSet};
use super::graph::{RW, WR, WW};
use super::infer::{internal, per_key, writers, KeyAnomalies, KeyIndex, KeyOut, Spent, Writers};
use super::parse::{fmt_list, Mop, Parsed, Scalar, Status, Txn};
use super::Analysis;
use crate::checker::CheckError;

/// Per-key facts kept for explanations.
#[derive(Default)]
struct KeyInfo {
    pos: HashMap<Scalar, u32>,
    writer: HashMap<Scalar, (u32, u16)>,
}

struct Explainer {
    keys: Vec<Scalar>,
    info: Vec<KeyInfo>,
}

/// What `t` observed of `k` before its own effects: its first read of `k`, minus the suffix of
/// its own earlier appends (which that read must end with). `None` if `t` never read `k`, or
/// its first read contradicts its own appends (an `internal` anomaly).
fn observed_prefix(t: &Txn, k: u32) -> Option<&[Scalar]> {
    let mut own: Vec<&Scalar> = Vec::new();
    for m in &t.mops {
        match m {
            Mop::ReadList(k2, v) if *k2 == k => {
                let l = v.as_deref()?;
                if l.len() < own.len() || !l[l.len() - own.len()..].iter().eq(own.iter().copied()) {
                    return None;
                }
                return Some(&l[..l.len() - own.len()]);
            }
            Mop::Append(k2, v) if *k2 == k => own.push(v),
            _ => {}
        }
    }
    None
}

/// The values `t` appends to `k`, in order.
fn appends_to(t: &Txn, k: u32) -> impl Iterator<Item = &Scalar> {
    t.mops.iter().filter_map(move |m| match m {
        Mop::Append(k2, v) if *k2 == k => Some(v),
        _ => None,
    })
}

/// Each `ok` read in `t`, in order, with its key and what `t` observed of that key (see
/// [`observed_prefix`]), where it observed something consistent.
fn observed_reads(t: &Txn) -> impl Iterator<Item = (u32, &[Scalar])> {
    t.mops.iter().filter_map(move |m| match m {
        Mop::ReadList(k, Some(_)) => Some((*k, observed_prefix(t, *k)?)),
        _ => None,
    })
}

impl Explain for Explainer {
    fn why(&self, txns: &[Txn], a: u32, b: u32, rel: u8, na: &str, nb: &str) -> String {
        let (ta, tb) = (&txns[a as usize], &txns[b as usize]);
        match rel {
            WW => {
                for ma in &ta.mops {
                    let Mop::Append(k, va) = ma else { continue };
                    let ki = &self.info[*k as usize];
                    let Some(&pa) = ki.pos.get(va) else { continue };
                    for vb in appends_to(tb, *k) {
                        if let Some(&pb) = ki.pos.get(vb) {
                            if pa < pb {
                                return format!(
                                    "{na} appended {va} and {nb} appended {vb} to {}; {}'s version order has {va} before {vb}, so {na} < {nb} (ww)",
                                    self.keys[*k as usize], self.keys[*k as usize]
                                );
                            }
                        }
                    }
                }
                for mb in &tb.mops {
                    let Mop::Append(k, vb) = mb else { continue };
                    let ki = &self.info[*k as usize];
                    if ki.pos.contains_key(vb) {
                        continue;
                    }
                    if let Some(va) = appends_to(ta, *k).find(|va| ki.pos.contains_key(va)) {
                        return format!(
                            "{nb} appended {vb} to {}, which no read observed, so it follows every observed element, including {na}'s append of {va}; {na} < {nb} (ww)",
                            self.keys[*k as usize]
                        );
                    }
                }
                format!("{na} < {nb} (ww)")
            }
            WR => {
                for (k, l) in observed_reads(tb) {
                    let Some(last) = l.last() else { continue };
                    if self.info[k as usize].writer.get(last).map(|w| w.0) == Some(a) {
                        return format!(
                            "{nb} read {} = {}, which includes {na}'s append of {last}, so {na} < {nb} (wr)",
                            self.keys[k as usize],
                            fmt_list(l)
                        );
                    }
                }
                format!("{na} < {nb} (wr)")
            }
            RW => {
                for (k, l) in observed_reads(ta) {
                    let ki = &self.info[k as usize];
                    for vb in appends_to(tb, k) {
                        let unobserved = !ki.pos.contains_key(vb);
                        if unobserved || ki.pos[vb] as usize >= l.len() {
                            let note = if unobserved {
                                " (no read ever observed it, so it follows every observed version)"
                            } else {
                                ""
                            };
                            return format!(
                                "{na} read {} = {}, which does not include {nb}'s append of {vb}{note}, so {na} < {nb} (rw)",
                                self.keys[k as usize],
                                fmt_list(l)
                            );
                        }
                    }
                }
                format!("{na} < {nb} (rw)")
            }
            _ => format!("{na} < {nb}"),
        }
    }
}

/// What the index keeps of every read of an `ok` transaction: (txn, mop, observed); `observed`
/// is the length of the prefix it shows of others' effects (the read minus the transaction's
/// own appends) when it is the transaction's first read of the key and consistent with its
/// appends.
type Read = (u32, u16, Option<u32>);

/// Runs the list-append inference.
pub fn analyze(p: &Parsed, spent: &Spent) -> Result<Analysis, CheckError> {
    let mut idx = KeyIndex::<Read>::of_writes(p);
    let mut anomalies = Vec::new();
    // Per-transaction pass: index by key, check internal consistency. Per key touched so far:
    // the last list read (if any) and the transaction's own appends since. Transactions are
    // short, so a small vector beats a map.
    struct Touch<'s> {
        key: u32,
        base: Option<&'s [Scalar]>,
        own: Vec<&'s Scalar>,
    }
    let mut state: Vec<Touch> = Vec::new();
    for (ti, t) in p.txns.iter().enumerate() {
        state.clear();
        for (mi, m) in t.mops.iter().enumerate() {
            match m {
                Mop::Append(k, v) => match state.iter_mut().find(|s| s.key == *k) {
                    Some(s) => s.own.push(v),
                    None => state.push(Touch {
                        key: *k,
                        base: None,
                        own: vec![v],
                    }),
                },
                Mop::ReadList(k, Some(l)) if t.status == Status::Ok => {
                    let prior = state.iter().position(|s| s.key == *k);
                    let ends_with_own = |own: &[&Scalar]| {
                        l.len() >= own.len()
                            && l[l.len() - own.len()..].iter().eq(own.iter().copied())
                    };
                    let (observed, consistent) = match prior.map(|i| &state[i]) {
                        None => (Some(l.len() as u32), true),
                        Some(Touch {
                            base: None, own, ..
                        }) => {
                            let ok = ends_with_own(own);
                            (ok.then(|| (l.len() - own.len()) as u32), ok)
                        }
                        Some(Touch {
                            base: Some(b), own, ..
                        }) => (
                            None,
                            l.len() == b.len() + own.len()
                                && l.starts_with(b)
                                && ends_with_own(own),
                        ),
                    };
                    idx[*k as usize]
                        .reads
                        .push((ti as u32, mi as u16, observed));
                    if !consistent {
                        let s = &state[prior.expect("inconsistent implies prior access")];
                        let own: Vec<Scalar> = s.own.iter().map(|x| (*x).clone()).collect();
                        let expected = match s.base {
                            Some(b) => fmt_list(&[b, &own[..]].concat()),
                            None => format!("a list ending in {}", fmt_list(&own)),
                        };
                        anomalies.push(internal(
                            ti,
                            &p.keys[*k as usize],
                            mi,
                            fmt_list(l),
                            format!("reads and appends imply {expected}"),
                        ));
                    }
                    let touch = Touch {
                        key: *k,
                        base: Some(l),
                        own: Vec::new(),
                    };
                    match prior {
                        Some(i) => state[i] = touch,
                        None => state.push(touch),
                    }
                }
                _ => {}
            }
        }
    }
    per_key(p, &idx, anomalies, spent, analyze_key, |info| {
        Box::new(Explainer {
            keys: p.keys.clone(),
            info,
        })
    })
}

fn analyze_key(p: &Parsed, k: u32, ix: &KeyIndex<Read>) -> Result<KeyOut<KeyInfo>, CheckError> {
    let txns = &p.txns;
    let key = &p.keys[k as usize];
    let kname = key.to_string();
    let mut found = KeyAnomalies::new(&kname);
    let mut edges = Vec::new();
    let mop_val = |t: u32, m: u16| -> &Scalar {
        match &txns[t as usize].mops[m as usize] {
            Mop::Append(_, v) => v,
            _ => unreachable!("append index points at an append"),
        }
    };
    let read_val = |t: u32, m: u16| -> &[Scalar] {
        match &txns[t as usize].mops[m as usize] {
            Mop::ReadList(_, Some(l)) => l,
            _ => &[],
        }
    };
    // Writers, and each transaction's final append to this key. The map is kept for
    // explanations, past the history's lifetime: it owns its values.
    let Writers {
        writer,
        last: final_append,
    } = writers(p, k, &ix.writes, "appended", "list-append", Scalar::clone)?;
    // The version order: the longest read; every read must be a prefix of it.
    let longest = ix
        .reads
        .iter()
        .max_by_key(|r| read_val(r.0, r.1).len())
        .copied();
    let order: Vec<Scalar> = longest
        .map(|r| read_val(r.0, r.1).to_vec())
        .unwrap_or_default();
    let mut trusted = true;
    let mut pos: HashMap<Scalar, u32> = map_with_capacity(order.len());
    for (i, v) in order.iter().enumerate() {
        if pos.insert(v.clone(), i as u32).is_some() {
            trusted = false;
        }
    }
    let mut dup_reported = false;
    let mut bad_reported: HashSet<&Scalar> = HashSet::default();
    for &(t, m, _) in &ix.reads {
        let l = read_val(t, m);
        let is_prefix = l.len() <= order.len() && order[..l.len()] == *l;
        if !is_prefix {
            trusted = false;
            let (lt, lm, _) = longest.expect("a read exists");
            found.read("incompatible-order", vec![t, lt], fmt_list(l), &format!(
                " and T2 read {kname} = {}; neither is a prefix of the other, so no single version order of {kname} explains both",
                fmt_list(read_val(lt, lm))
            ));
        }
        // Duplicates within this read.
        if !dup_reported {
            let mut seen: HashSet<&Scalar> =
                HashSet::with_capacity_and_hasher(l.len(), Default::default());
            if let Some(d) = l.iter().find(|x| !seen.insert(*x)) {
                dup_reported = true;
                trusted = false;
                found.read(
                    "duplicate-elements",
                    vec![t],
                    fmt_list(l),
                    &format!(", which contains {d} more than once"),
                );
            }
        }
        // Elements written by failed transactions, or by nobody.
        for x in l {
            match writer.get(x) {
                None if bad_reported.insert(x) => {
                    found.read(
                        "garbage-read",
                        vec![t],
                        fmt_list(l),
                        &format!(", but no transaction appended {x} to {kname}"),
                    );
                }
                Some(&(w, _))
                    if txns[w as usize].status == Status::Fail && bad_reported.insert(x) =>
                {
                    found.read(
                        "G1a",
                        vec![t, w],
                        fmt_list(l),
                        &format!(
                            ", which includes {x}, appended by T2, which failed (aborted read)"
                        ),
                    );
                }
                _ => {}
            }
        }
    }
    // ww edges and dirty updates, along the version order.
    let graph_writer = |v: &Scalar| -> Option<u32> {
        writer
            .get(v)
            .map(|w| w.0)
            .filter(|&w| txns[w as usize].status.in_graph())
    };
    if trusted {
        let mut prev: Option<u32> = None;
        let mut failed_before: Option<u32> = None;
        let mut dirty_reported = false;
        for v in &order {
            match writer.get(v) {
                Some(&(w, _)) if txns[w as usize].status == Status::Fail => {
                    failed_before.get_or_insert(w);
                }
                Some(&(w, _)) => {
                    if let (Some(f), false) = (failed_before, dirty_reported) {
                        dirty_reported = true;
                        found.add(
                            "dirty-update",
                            vec![f, w],
                            format!(
                                "{kname}'s version order {} has an append by T1, which failed, followed by T2's append of {v}: T2 built on an aborted write",
                                fmt_list(&order)
                            ),
                        );
                    }
                    if let Some(p0) = prev {
                        if p0 != w {
                            edges.push((p0, w, WW));
                        }
                    }
                    prev = Some(w);
                }
                None => {}
            }
        }
    }
    // For rw: index of the next element with a graph writer at or after each position.
    let mut next_writer: Vec<Option<u32>> = vec![None; order.len() + 1];
    if trusted {
        for i in (0..order.len()).rev() {
            next_writer[i] = graph_writer(&order[i]).or(next_writer[i + 1]);
        }
    }
    // External reads: wr, rw, G1b, lost-update.
    let appenders: HashSet<u32> = ix.writes.iter().map(|a| a.0).collect();
    let mut by_version: HashMap<usize, Vec<u32>> = HashMap::default();
    // Committed appends no read observed: they follow every observed element (the list only
    // grows), so every read of this key precedes them (rw) and so does the last observed
    // writer (ww). `info` transactions are included: one that never committed has no outgoing
    // edges (its reads are unknown, it never completes, it ends its process), so edges into it
    // cannot close a cycle; one with any observed effect did commit, and the edges are sound.
    let mut unobserved: Vec<u32> = Vec::new();
    if trusted {
        for &(t, m) in &ix.writes {
            if txns[t as usize].status.in_graph()
                && !pos.contains_key(mop_val(t, m))
                && unobserved.last() != Some(&t)
            {
                unobserved.push(t);
            }
        }
        let last_observed = order.iter().rev().find_map(graph_writer);
        if let Some(lw) = last_observed {
            for &u in &unobserved {
                if u != lw {
                    edges.push((lw, u, WW));
                }
            }
        }
    }
    let mut skipped = None;
    if unobserved.len().saturating_mul(ix.reads.len()) > super::MAX_FANOUT_EDGES {
        skipped = Some(format!(
            "rw edges from {} reads of key {kname} to {} appends no read observed (too many to add)",
            ix.reads.len(),
            unobserved.len()
        ));
        unobserved.clear();
    }
    for &(t, m, observed) in &ix.reads {
        let Some(olen) = observed else {
            continue;
        };
        let l = &read_val(t, m)[..olen as usize];
        if let Some(last) = l.last() {
            if let Some(&(w, wm)) = writer.get(last) {
                if w == t {
                    found.read(
                        "internal",
                        vec![t],
                        fmt_list(l),
                        &format!(
                            " before it appended {last} itself (a read of its own future write)"
                        ),
                    );
                } else if txns[w as usize].status.in_graph() {
                    edges.push((w, t, WR));
                    if final_append.get(&w).is_some_and(|&fm| fm != wm) {
                        found.read("G1b", vec![t, w], fmt_list(l), &format!(
                            ", ending in {last}, an intermediate append of T2, which appended more to {kname} afterwards (intermediate read)"
                        ));
                    }
                }
            }
        }
        if trusted && l.len() <= order.len() {
            if let Some(w) = next_writer[l.len()] {
                if w != t {
                    edges.push((t, w, RW));
                }
            }
            for &u in &unobserved {
                if u != t {
                    edges.push((t, u, RW));
                }
            }
            if appenders.contains(&t) {
                by_version.entry(l.len()).or_default().push(t);
            }
        }
    }
    found.lost_updates(
        by_version,
        |&len| fmt_list(&order[..len]),
        &format!("appended to {kname}; each should have seen the others' appends"),
    );
    Ok(KeyOut {
        edges,
        anomalies: found.found,
        skipped,
        info: KeyInfo { pos, writer },
    })
}

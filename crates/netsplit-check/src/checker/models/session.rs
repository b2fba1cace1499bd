//! The session guarantees of Terry et al. (1994), with sessions = processes.
//!
//! Each guarantee says which writes a read `r` (of key k, by session o) must have seen — its
//! required set V(r) — and which writes must be ordered before which. It holds when there is a
//! per-key version order `ar` of the writes such that, for every read, every write to k in
//! V(r) is at or before the write r returned in `ar` (none may exist if r returned the
//! initial value), and the forced `ar` edges hold. So:
//!
//! - read-your-writes: V(r) holds o's own writes before r;
//! - monotonic-reads: V(r) holds what o's earlier reads returned;
//! - monotonic-writes: a session's writes to a key are ordered in its program order, and once
//!   o has read a write w2 (at or before r), V(r) holds the writes of w2's session before w2;
//! - writes-follow-reads: a write w is ordered after what each earlier read of its session
//!   returned, and once o has read w (at or before r), V(r) holds what the reads of w's
//!   session before w returned.
//!
//! Each is implied by causal consistency (every set above lies in r's causal past). A
//! violation is a read of the initial value with a required write, or a cycle in `ar`; the
//! witness names the writes of the cycle and the reads that forced its edges.

use super::causal::topo;
use super::{unsorted_cycle, Hist, ModelResult};
use std::collections::HashMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Guarantee {
    ReadYourWrites,
    MonotonicReads,
    MonotonicWrites,
    WritesFollowReads,
}

impl Guarantee {
    pub fn name(self) -> &'static str {
        match self {
            Guarantee::ReadYourWrites => "read-your-writes",
            Guarantee::MonotonicReads => "monotonic-reads",
            Guarantee::MonotonicWrites => "monotonic-writes",
            Guarantee::WritesFollowReads => "writes-follow-reads",
        }
    }
}

/// `ar` edges with the read (or `None`: program order) that forced each.
struct Graph {
    pred: Vec<Vec<(u32, u32)>>,
}

const NO_READ: u32 = u32::MAX;

impl Graph {
    fn edge(&mut self, from: usize, to: usize, why: Option<usize>) {
        if from != to {
            self.pred[to].push((from as u32, why.map_or(NO_READ, |r| r as u32)));
        }
    }
}

pub fn check(h: &Hist, g: Guarantee) -> ModelResult {
    let n = h.ops.len();
    let mut gr = Graph {
        pred: vec![Vec::new(); n],
    };
    let init_violation = |w: usize, r: usize, what: &str| {
        ModelResult::violated(
            format!(
                "{}: a read returned the initial value although it must have seen this write ({what})",
                g.name()
            ),
            h.events(&[w, r]),
        )
    };
    // Per session and key: positions and ops of its writes, and of its reads (with source).
    let mut wpos: HashMap<(usize, usize), Vec<(usize, usize)>> = HashMap::new();
    let mut rpos: HashMap<(usize, usize), Vec<(usize, usize)>> = HashMap::new();
    for (i, o) in h.ops.iter().enumerate() {
        if o.write {
            wpos.entry((o.session, o.key)).or_default().push((o.pos, i));
        }
        if o.read.is_some() {
            rpos.entry((o.session, o.key)).or_default().push((o.pos, i));
        }
    }
    // Edges forced on writes.
    match g {
        Guarantee::MonotonicWrites => {
            for ws in wpos.values() {
                for p in ws.windows(2) {
                    gr.edge(p[0].1, p[1].1, None);
                }
            }
        }
        Guarantee::WritesFollowReads => {
            for (sk, ws) in &wpos {
                let Some(rs) = rpos.get(sk) else { continue };
                for &(wp, w) in ws {
                    for &(rp, r) in rs {
                        if rp >= wp {
                            break;
                        }
                        if let Some(Some(src)) = h.ops[r].read {
                            gr.edge(src, w, Some(r));
                        }
                    }
                }
            }
        }
        _ => {}
    }
    for ops in &h.sessions {
        // read-your-writes: own writes so far per key; monotonic-reads: last source per key;
        // the others: per writer session, the highest position of a write read so far.
        let mut own: HashMap<usize, Vec<usize>> = HashMap::new();
        let mut last: HashMap<usize, (usize, usize)> = HashMap::new();
        let mut seen: std::collections::BTreeMap<usize, usize> = Default::default();
        for &i in ops {
            let o = &h.ops[i];
            if let Some(src) = o.read {
                match g {
                    Guarantee::ReadYourWrites => {
                        for &w in own.get(&o.key).into_iter().flatten() {
                            match src {
                                None => {
                                    return init_violation(w, i, "the session wrote it earlier")
                                }
                                Some(s) => gr.edge(w, s, Some(i)),
                            }
                        }
                    }
                    Guarantee::MonotonicReads => {
                        if let Some(&(w, r)) = last.get(&o.key) {
                            match src {
                                None => {
                                    return ModelResult::violated(
                                        "monotonic-reads: a read returned the initial value after an earlier read of the session returned a write",
                                        h.events(&[w, r, i]),
                                    )
                                }
                                Some(s) => gr.edge(w, s, Some(i)),
                            }
                        }
                        if let Some(s) = src {
                            last.insert(o.key, (s, i));
                        }
                    }
                    Guarantee::MonotonicWrites | Guarantee::WritesFollowReads => {
                        if let Some(s) = src {
                            let so = &h.ops[s];
                            let e = seen.entry(so.session).or_insert(so.pos);
                            *e = (*e).max(so.pos);
                        }
                        for (&ws, &lim) in &seen {
                            if g == Guarantee::MonotonicWrites {
                                let Some(list) = wpos.get(&(ws, o.key)) else {
                                    continue;
                                };
                                let k = list.partition_point(|&(p, _)| p < lim);
                                if k == 0 {
                                    continue;
                                }
                                let w = list[k - 1].1;
                                match src {
                                    None => {
                                        return init_violation(
                                            w,
                                            i,
                                            "the session read a later write of the same writer",
                                        )
                                    }
                                    Some(s) => gr.edge(w, s, Some(i)),
                                }
                            } else {
                                let Some(list) = rpos.get(&(ws, o.key)) else {
                                    continue;
                                };
                                for &(p, c) in list {
                                    if p >= lim {
                                        break;
                                    }
                                    let Some(Some(w)) = h.ops[c].read else {
                                        continue;
                                    };
                                    match src {
                                        None => return init_violation(w, i, "the session read a write made after a read that returned it"),
                                        Some(s) => gr.edge(w, s, Some(i)),
                                    }
                                }
                            }
                        }
                    }
                }
            }
            if o.write {
                own.entry(o.key).or_default().push(i);
            }
        }
    }
    // A cycle in ar?
    let mut succ: Vec<Vec<u32>> = vec![Vec::new(); n];
    let mut indeg = vec![0u32; n];
    for (to, ps) in gr.pred.iter().enumerate() {
        for &(from, _) in ps {
            succ[from as usize].push(to as u32);
            indeg[to] += 1;
        }
    }
    let order = topo(&succ, indeg);
    if order.len() == n {
        return ModelResult::holds();
    }
    let cyc = unsorted_cycle(n, &order, |i| {
        gr.pred[i].iter().map(|&(f, _)| f as usize).collect()
    });
    // Name the reads that forced the cycle's edges after its writes.
    let mut wit = cyc.clone();
    for k in 0..cyc.len() {
        let (from, to) = (cyc[k], cyc[(k + 1) % cyc.len()]);
        if let Some(&(_, why)) = gr.pred[to].iter().find(|&&(f, _)| f as usize == from) {
            if why != NO_READ && !wit.contains(&(why as usize)) {
                wit.push(why as usize);
            }
        }
    }
    ModelResult::violated(
        format!(
            "{}: no order of the writes to a key fits: the first {} operations are writes each forced after the previous (in a cycle) by the reads that follow",
            g.name(),
            cyc.len()
        ),
        h.events(&wit),
    )
}

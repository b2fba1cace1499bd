//! Causal convergence (CCv; Bouajjani, Enea, Guerraoui, Hamza, "On verifying causal
//! consistency", POPL 2017): there is one arbitration order of all writes, containing the
//! causal order CO = (program order ∪ reads-from)⁺, such that every read returns the
//! arbitration-last write to its key among the writes in its causal past (the initial value
//! if there is none).
//!
//! Why CCv rather than CM (causal memory): CCv is what causally consistent stores that
//! converge actually promise — replicas agree on one order of conflicting writes (last writer
//! wins) — and it is the level that sits between sequential consistency and the session
//! guarantees (sequential ⇒ CCv ⇒ each session guarantee, so the "strongest model that holds"
//! is well defined). CM lets each process see concurrent writes in its own order forever,
//! which no database netsplit targets advertises.
//!
//! With reads-from known, CCv fails exactly on the bad patterns of that paper: a cycle in CO
//! (`CyclicCO`), a read of the initial value with a write to its key in its causal past
//! (`WriteCOInitRead`), and a cycle in CO ∪ CF, where CF orders every write w' in a read's
//! causal past before the write the read returned (`CyclicCF`, which covers `WriteCORead`).
//! Cost: one topological sort, vector clocks over sessions for the writes that are read, and
//! per read one edge per session that wrote its key — O(n · sessions).

use super::{unsorted_cycle, Hist, ModelResult};

pub fn check(h: &Hist) -> ModelResult {
    let n = h.ops.len();
    let ns = h.sessions.len();
    // Predecessors in PO ∪ RF: at most two per op.
    let po_prev = |i: usize| {
        let o = &h.ops[i];
        (o.pos > 0).then(|| h.sessions[o.session][o.pos - 1])
    };
    let rf = |i: usize| h.ops[i].read.flatten();
    let mut succ: Vec<Vec<u32>> = vec![Vec::new(); n];
    let mut indeg = vec![0u32; n];
    #[allow(clippy::needless_range_loop)]
    for i in 0..n {
        if let Some(p) = po_prev(i) {
            succ[p].push(i as u32);
            indeg[i] += 1;
        }
        if let Some(w) = rf(i) {
            succ[w].push(i as u32);
            indeg[i] += 1;
        }
    }
    let order = topo(&succ, indeg.clone());
    if order.len() < n {
        let cyc = unsorted_cycle(n, &order, |i| po_prev(i).into_iter().chain(rf(i)).collect());
        return ModelResult::violated(
            "causality is cyclic: these operations each follow the previous one in program order or read its write (CyclicCO)",
            h.events(&cyc),
        );
    }
    // Vector clocks (per session: the highest position causally before-or-at), kept for the
    // current op of each session and for writes with readers.
    let (readers, _) = h.readers();
    let mut cur: Vec<Vec<u32>> = vec![Vec::new(); ns];
    let mut kept: std::collections::HashMap<usize, Vec<u32>> = Default::default();
    // Per key: per session that writes it, the positions and ops of its writes.
    type Writes = Vec<(usize, Vec<(u32, usize)>)>;
    let mut writes_of: Vec<Writes> = vec![Vec::new(); h.keys];
    for (s, ops) in h.sessions.iter().enumerate() {
        for &i in ops {
            let o = &h.ops[i];
            if o.write {
                let v = &mut writes_of[o.key];
                if v.last().map(|x| x.0) != Some(s) {
                    v.push((s, Vec::new()));
                }
                v.last_mut().unwrap().1.push((o.pos as u32, i));
            }
        }
    }
    // CF in-edges (write → write the read returned).
    let mut cf_pred: Vec<Vec<u32>> = vec![Vec::new(); n];
    const NONE: u32 = u32::MAX;
    for &i in &order {
        let o = &h.ops[i];
        let mut vc = if o.pos == 0 {
            vec![NONE; ns]
        } else {
            std::mem::take(&mut cur[o.session])
        };
        if let Some(w) = rf(i) {
            let wv = kept.get(&w).expect("a read write keeps its clock");
            for (a, &b) in vc.iter_mut().zip(wv) {
                if b != NONE && (*a == NONE || b > *a) {
                    *a = b;
                }
            }
        }
        vc[o.session] = o.pos as u32;
        if let Some(src) = o.read {
            for (s, ws) in &writes_of[o.key] {
                let lim = vc[*s];
                if lim == NONE {
                    continue;
                }
                // The last write to the key by session s causally before this read (strictly
                // before it in its own session: a cas does not read its own write).
                let strict = *s == o.session;
                let k = ws.partition_point(|&(p, _)| if strict { p < lim } else { p <= lim });
                if k == 0 {
                    continue;
                }
                let w2 = ws[k - 1].1;
                match src {
                    None => {
                        return ModelResult::violated(
                            "a read returned the initial value although a write to its key is in its causal past (WriteCOInitRead)",
                            h.events(&[w2, i]),
                        )
                    }
                    Some(w) if w != w2 => cf_pred[w].push(w2 as u32),
                    _ => {}
                }
            }
        }
        if o.write && readers[i] > 0 {
            kept.insert(i, vc.clone());
        }
        cur[o.session] = vc;
    }
    drop(kept);
    // Cycle in CO ∪ CF.
    let mut indeg2 = indeg;
    for (w, ps) in cf_pred.iter().enumerate() {
        for &p in ps {
            succ[p as usize].push(w as u32);
            indeg2[w] += 1;
        }
    }
    let order2 = topo(&succ, indeg2);
    if order2.len() < n {
        let cyc = unsorted_cycle(n, &order2, |i| {
            po_prev(i)
                .into_iter()
                .chain(rf(i))
                .chain(cf_pred[i].iter().map(|&x| x as usize))
                .collect()
        });
        return ModelResult::violated(
            "no arbitration order fits causality: in this cycle each operation follows the previous one in program order, reads its write, or is a write that a read which causally knew the previous one returned instead (CyclicCF)",
            h.events(&cyc),
        );
    }
    ModelResult::holds()
}

/// Kahn's topological order over successor lists.
pub(crate) fn topo(succ: &[Vec<u32>], mut indeg: Vec<u32>) -> Vec<usize> {
    let mut q: Vec<usize> = (0..succ.len()).filter(|&i| indeg[i] == 0).collect();
    let mut out = Vec::with_capacity(succ.len());
    while let Some(i) = q.pop() {
        out.push(i);
        for &j in &succ[i] {
            let j = j as usize;
            indeg[j] -= 1;
            if indeg[j] == 0 {
                q.push(j);
            }
        }
    }
    out
}

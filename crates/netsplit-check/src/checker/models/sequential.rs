//! Sequential consistency (Lamport 1979): one total order of all operations that keeps each
//! session's program order, in which every read returns the latest write to its key.
//!
//! NP-complete even with reads-from known (Gibbons and Korach 1997), so this is a
//! depth-first search over the sessions' progress with three reductions:
//! - a write cannot be overwritten while reads of it are pending (values are unique, so those
//!   reads could never happen): only enabled operations are tried, and a state is then fully
//!   determined by how far each session has got — visited states are remembered, not
//!   re-explored;
//! - an enabled read, or an enabled write nobody reads, is taken at once without branching
//!   (moving it earlier never breaks an order that works);
//! - the search only branches on enabled writes that are read, earliest invoked first;
//! - a state is abandoned as soon as a session's next operation can never go (see
//!   `State::dead`);
//! - sessions that share no key, even through other sessions, are searched group by group.
//!
//! The caller runs causal consistency first (a causal violation is a sequential one). The
//! search stops when the budget's deadline passes or its memo outgrows the budget's memory:
//! then the verdict is unknown. When no order exists, the witness is the next operation of
//! every session at the furthest point the search reached: none of them can go next.

use super::{Hist, ModelResult};
use crate::checker::Budget;
use std::collections::HashSet;

struct State<'a> {
    h: &'a Hist,
    front: Vec<u32>,
    /// Pending readers per write, and per key of the initial value.
    pend: Vec<u32>,
    pend_init: Vec<u32>,
    cur: Vec<Option<usize>>,
    /// Executed ops with the key's previous current write, for undo.
    trail: Vec<(usize, Option<usize>)>,
}

impl State<'_> {
    fn next(&self, s: usize) -> Option<usize> {
        self.h.sessions[s].get(self.front[s] as usize).copied()
    }

    fn enabled(&self, i: usize) -> bool {
        let o = &self.h.ops[i];
        if let Some(src) = o.read {
            if self.cur[o.key] != src {
                return false;
            }
        }
        if o.write {
            let c = self.cur[o.key];
            let mut p = match c {
                Some(w) => self.pend[w],
                None => self.pend_init[o.key],
            };
            if o.read.is_some() {
                p -= 1; // this op is one of the readers
            }
            if p > 0 {
                return false;
            }
        }
        true
    }

    fn exec(&mut self, i: usize) {
        let o = &self.h.ops[i];
        match o.read {
            Some(Some(w)) => self.pend[w] -= 1,
            Some(None) => self.pend_init[o.key] -= 1,
            None => {}
        }
        let prev = self.cur[o.key];
        if o.write {
            self.cur[o.key] = Some(i);
        }
        self.front[o.session] += 1;
        self.trail.push((i, prev));
    }

    fn undo_to(&mut self, len: usize) {
        while self.trail.len() > len {
            let (i, prev) = self.trail.pop().unwrap();
            let o = &self.h.ops[i];
            self.front[o.session] -= 1;
            self.cur[o.key] = prev;
            match o.read {
                Some(Some(w)) => self.pend[w] += 1,
                Some(None) => self.pend_init[o.key] += 1,
                None => {}
            }
        }
    }

    /// Whether no order can complete from here, seen from the sessions' next operations
    /// alone: one reads a write that has been overwritten (or the initial value of a key
    /// already written), or one is a write that must wait for a read of the current write
    /// that comes later in its own session. Pruning such states is sound (they have no
    /// completion) and makes a wrong choice fail at once instead of after every later choice
    /// on other keys has been tried.
    fn dead(&self, readers: &[Vec<u32>], init_readers: &[Vec<u32>]) -> bool {
        let ops = &self.h.ops;
        let executed = |w: usize| self.front[ops[w].session] as usize > ops[w].pos;
        for s in 0..self.front.len() {
            let Some(i) = self.next(s) else { continue };
            let o = &ops[i];
            if let Some(src) = o.read {
                if self.cur[o.key] != src {
                    match src {
                        None => return true,
                        Some(w) if executed(w) => return true,
                        Some(_) => continue,
                    }
                }
            }
            if o.write {
                let rs = match self.cur[o.key] {
                    Some(w) => &readers[w],
                    None => &init_readers[o.key],
                };
                let f = self.front[s] as usize;
                if rs.iter().any(|&r| {
                    let r = &ops[r as usize];
                    r.session == s && r.pos > f
                }) {
                    return true;
                }
            }
        }
        false
    }

    /// Takes every enabled read and unread write, until none is left.
    fn closure(&mut self, unread: &[bool]) {
        loop {
            let mut progress = false;
            for s in 0..self.front.len() {
                while let Some(i) = self.next(s) {
                    let o = &self.h.ops[i];
                    if (!o.write || unread[i]) && self.enabled(i) {
                        self.exec(i);
                        progress = true;
                    } else {
                        break;
                    }
                }
            }
            if !progress {
                return;
            }
        }
    }
}

pub fn check(h: &Hist, budget: &Budget) -> ModelResult {
    // Sessions that share no key (even through other sessions) constrain each other in
    // nothing: total orders of each group interleave freely. So each group is searched on its
    // own, and a violation in one is not retried against the orders of the others.
    let groups = components(h);
    if groups.len() <= 1 {
        return search(h, budget);
    }
    let mut unknown = None;
    for g in groups {
        let r = search(&sub_hist(h, &g), budget);
        match r.valid {
            crate::checker::Validity::False => return r,
            crate::checker::Validity::Unknown => unknown = unknown.or(Some(r)),
            crate::checker::Validity::True => {}
        }
    }
    unknown.unwrap_or_else(ModelResult::holds)
}

/// The sessions, grouped by shared keys (connected components), each group in session order.
fn components(h: &Hist) -> Vec<Vec<usize>> {
    let mut parent: Vec<usize> = (0..h.sessions.len()).collect();
    fn find(p: &mut [usize], mut x: usize) -> usize {
        while p[x] != x {
            p[x] = p[p[x]];
            x = p[x];
        }
        x
    }
    let mut owner: Vec<Option<usize>> = vec![None; h.keys];
    for o in &h.ops {
        match owner[o.key] {
            None => owner[o.key] = Some(o.session),
            Some(s) => {
                let (a, b) = (find(&mut parent, s), find(&mut parent, o.session));
                parent[a] = b;
            }
        }
    }
    let mut groups: std::collections::BTreeMap<usize, Vec<usize>> = Default::default();
    for s in 0..h.sessions.len() {
        let r = find(&mut parent, s);
        groups.entry(r).or_default().push(s);
    }
    groups.into_values().collect()
}

/// The history of some sessions (a group of [`components`]: every write they read is theirs).
fn sub_hist(h: &Hist, sessions: &[usize]) -> Hist {
    let mut index = vec![usize::MAX; h.ops.len()];
    let mut out = Hist {
        keys: h.keys,
        ..Hist::default()
    };
    for (ns, &s) in sessions.iter().enumerate() {
        let mut list = Vec::with_capacity(h.sessions[s].len());
        for &i in &h.sessions[s] {
            index[i] = out.ops.len();
            let mut o = h.ops[i].clone();
            o.session = ns;
            list.push(out.ops.len());
            out.ops.push(o);
        }
        out.sessions.push(list);
    }
    for o in &mut out.ops {
        if let Some(Some(w)) = o.read {
            o.read = Some(Some(index[w]));
        }
    }
    out
}

fn search(h: &Hist, budget: &Budget) -> ModelResult {
    let (pend, pend_init) = h.readers();
    let unread: Vec<bool> = (0..h.ops.len()).map(|i| pend[i] == 0).collect();
    let mut st = State {
        h,
        front: vec![0; h.sessions.len()],
        pend,
        pend_init,
        cur: vec![None; h.keys],
        trail: Vec::with_capacity(h.ops.len()),
    };
    let n = h.ops.len();
    let mut readers: Vec<Vec<u32>> = vec![Vec::new(); n];
    let mut init_readers: Vec<Vec<u32>> = vec![Vec::new(); h.keys];
    for (i, o) in h.ops.iter().enumerate() {
        match o.read {
            Some(Some(w)) => readers[w].push(i as u32),
            Some(None) => init_readers[o.key].push(i as u32),
            None => {}
        }
    }
    let mut memo: HashSet<Box<[u32]>> = HashSet::new();
    let per_state = h.sessions.len() * 4 + 48;
    // Frames: (trail length at entry, candidates to try, next candidate).
    let mut stack: Vec<(usize, Vec<usize>, usize)> = Vec::new();
    let mut best = (0usize, st.front.clone());
    let mut steps = 0u64;
    st.closure(&unread);
    loop {
        // A fresh state: done, seen, or expand.
        if st.trail.len() == n {
            return ModelResult::holds();
        }
        let fresh = memo.insert(st.front.clone().into_boxed_slice());
        if memo.len().saturating_mul(per_state) > budget.max_memory {
            return ModelResult::unknown(format!(
                "search stopped after {} states: memory budget reached",
                memo.len()
            ));
        }
        if st.trail.len() > best.0 {
            best = (st.trail.len(), st.front.clone());
        }
        let cands: Vec<usize> = if fresh && !st.dead(&readers, &init_readers) {
            let mut c: Vec<usize> = (0..st.front.len())
                .filter_map(|s| st.next(s))
                .filter(|&i| st.enabled(i))
                .collect();
            // Earliest invoked first: a recorded history's real-time order is usually an order
            // that works, and a wrong early choice costs a backtrack over everything after it.
            c.sort_unstable_by_key(|&i| h.ops[i].event);
            c
        } else {
            Vec::new()
        };
        stack.push((st.trail.len(), cands, 0));
        // Advance to the next untried candidate, backtracking as needed.
        loop {
            steps += 1;
            if steps.is_multiple_of(1024) && budget.exhausted() {
                return ModelResult::unknown(format!(
                    "search stopped after {} states: time budget reached",
                    memo.len()
                ));
            }
            let Some(top) = stack.last_mut() else {
                let wit: Vec<usize> = (0..best.1.len())
                    .filter_map(|s| h.sessions[s].get(best.1[s] as usize).copied())
                    .collect();
                return ModelResult::violated(
                    format!(
                        "no total order of all operations keeps each session's order and has every read return the latest write: at best {} of {} operations can be ordered, and then none of these can go next",
                        best.0, n
                    ),
                    h.events(&wit),
                );
            };
            let (len, ref cands, ref mut k) = *top;
            if *k < cands.len() {
                let c = cands[*k];
                *k += 1;
                st.undo_to(len);
                st.exec(c);
                st.closure(&unread);
                break;
            }
            stack.pop();
            st.undo_to(len);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checker::models::extract::{extract, Extracted};
    use crate::history::{Op, OpType, Process};
    use serde_json::json;

    /// Sessions 0 and 1 share key x; session 2 works y alone; 3 and 4 share z through a read.
    /// The groups are {0,1}, {2}, {3,4}, and a store-buffering pair in its own group is refuted
    /// with its own operations as the witness.
    #[test]
    fn sessions_sharing_no_key_are_searched_apart() {
        let mut ops = Vec::new();
        let mut op = |p: u64, f: &str, k: &str, inv: serde_json::Value, out: serde_json::Value| {
            ops.push(Op::new(
                Process::Client(p),
                OpType::Invoke,
                f,
                json!([k, inv]),
            ));
            ops.push(Op::new(Process::Client(p), OpType::Ok, f, json!([k, out])));
        };
        op(0, "write", "x", json!(1), json!(1));
        op(1, "read", "x", json!(null), json!(1));
        op(2, "write", "y", json!(1), json!(1));
        op(3, "write", "z", json!(1), json!(1));
        op(4, "read", "z", json!(null), json!(1));
        // store buffering between sessions 5 and 6 on keys a and b
        op(5, "write", "a", json!(1), json!(1));
        op(6, "write", "b", json!(1), json!(1));
        op(5, "read", "b", json!(null), json!(null));
        op(6, "read", "a", json!(null), json!(null));
        let Ok(Extracted::Hist(h)) = extract(&ops, true) else {
            panic!("a register history")
        };
        let groups = components(&h);
        assert_eq!(groups, vec![vec![0, 1], vec![2], vec![3, 4], vec![5, 6]]);
        let r = check(&h, &Budget::unlimited());
        assert_eq!(r.valid, crate::checker::Validity::False);
        assert!(r.witness.iter().all(|&e| e >= 10), "{:?}", r.witness);
    }
}

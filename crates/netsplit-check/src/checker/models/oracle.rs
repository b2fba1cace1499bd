//! Brute-force oracles: the definitions, checked by enumerating every total order. Only for
//! tiny histories (tests).

use super::Hist;

fn perms(n: usize, f: &mut dyn FnMut(&[usize]) -> bool) -> bool {
    fn go(a: &mut Vec<usize>, k: usize, f: &mut dyn FnMut(&[usize]) -> bool) -> bool {
        if k == a.len() {
            return f(a);
        }
        for j in k..a.len() {
            a.swap(k, j);
            if go(a, k + 1, f) {
                return true;
            }
            a.swap(k, j);
        }
        false
    }
    let mut a: Vec<usize> = (0..n).collect();
    go(&mut a, 0, f)
}

/// Sequential: some interleaving of the sessions where each read sees the current value.
pub fn sequential(h: &Hist) -> bool {
    let n = h.ops.len();
    perms(n, &mut |p| {
        let mut front = vec![0usize; h.sessions.len()];
        let mut cur = vec![None; h.keys];
        for &i in p {
            let o = &h.ops[i];
            if h.sessions[o.session][front[o.session]] != i {
                return false;
            }
            front[o.session] += 1;
            if let Some(src) = o.read {
                if cur[o.key] != src {
                    return false;
                }
            }
            if o.write {
                cur[o.key] = Some(i);
            }
        }
        true
    })
}

/// Causal order CO = (PO ∪ RF)⁺ as a matrix; None if cyclic.
fn causal_order(h: &Hist) -> Option<Vec<Vec<bool>>> {
    let n = h.ops.len();
    let mut co = vec![vec![false; n]; n];
    for s in &h.sessions {
        for a in 0..s.len() {
            for b in a + 1..s.len() {
                co[s[a]][s[b]] = true;
            }
        }
    }
    for (i, o) in h.ops.iter().enumerate() {
        if let Some(Some(w)) = o.read {
            co[w][i] = true;
        }
    }
    for k in 0..n {
        for i in 0..n {
            if co[i][k] {
                let row = co[k].clone();
                for (j, x) in row.into_iter().enumerate() {
                    co[i][j] |= x;
                }
            }
        }
    }
    (0..n).all(|i| !co[i][i]).then_some(co)
}

fn writes(h: &Hist) -> Vec<usize> {
    (0..h.ops.len()).filter(|&i| h.ops[i].write).collect()
}

/// CCv: a total order of the writes containing CO where each read returns the last write to
/// its key in its causal past.
pub fn causal(h: &Hist) -> bool {
    let Some(co) = causal_order(h) else {
        return false;
    };
    let ws = writes(h);
    perms(ws.len(), &mut |p| {
        let mut rank = vec![usize::MAX; h.ops.len()];
        for (r, &k) in p.iter().enumerate() {
            rank[ws[k]] = r;
        }
        for &a in &ws {
            for &b in &ws {
                if co[a][b] && rank[a] > rank[b] {
                    return false;
                }
            }
        }
        h.ops.iter().enumerate().all(|(i, o)| {
            let Some(src) = o.read else { return true };
            let last = ws
                .iter()
                .filter(|&&w| w != i && h.ops[w].key == o.key && co[w][i])
                .max_by_key(|&&w| rank[w])
                .copied();
            last == src
        })
    })
}

/// A session guarantee by its definition: required sets V(r) spelled out, a global order of the
/// writes searched.
pub fn session(h: &Hist, g: super::session::Guarantee) -> bool {
    use super::session::Guarantee::*;
    let n = h.ops.len();
    let before = |a: usize, b: usize| {
        let (x, y) = (&h.ops[a], &h.ops[b]);
        x.session == y.session && x.pos < y.pos
    };
    let mut must: Vec<(usize, usize)> = Vec::new(); // a before b in ar (same key)
    let mut req: Vec<(usize, Vec<usize>)> = Vec::new();
    for r in 0..n {
        let o = &h.ops[r];
        if o.read.is_none() {
            continue;
        }
        let mut v = Vec::new();
        for b in 0..n {
            let ob = &h.ops[b];
            let at_or_before = b == r || before(b, r);
            match g {
                ReadYourWrites => {
                    if ob.write && before(b, r) {
                        v.push(b)
                    }
                }
                MonotonicReads => {
                    if ob.read.is_some() && before(b, r) {
                        if let Some(Some(w)) = ob.read {
                            v.push(w)
                        }
                    }
                }
                MonotonicWrites | WritesFollowReads => {
                    if !(at_or_before && ob.read.is_some()) {
                        continue;
                    }
                    let Some(Some(w2)) = ob.read else { continue };
                    for c in 0..n {
                        if !before(c, w2) {
                            continue;
                        }
                        if g == MonotonicWrites && h.ops[c].write {
                            v.push(c);
                        }
                        if g == WritesFollowReads {
                            if let Some(Some(w)) = h.ops[c].read {
                                v.push(w)
                            }
                        }
                    }
                }
            }
        }
        req.push((r, v));
    }
    for a in 0..n {
        for b in 0..n {
            if !before(a, b) || h.ops[a].key != h.ops[b].key || !h.ops[b].write {
                continue;
            }
            if g == MonotonicWrites && h.ops[a].write {
                must.push((a, b));
            }
            if g == WritesFollowReads {
                if let Some(Some(w)) = h.ops[a].read {
                    must.push((w, b));
                }
            }
        }
    }
    let ws = writes(h);
    perms(ws.len(), &mut |p| {
        let mut rank = vec![usize::MAX; n];
        for (r, &k) in p.iter().enumerate() {
            rank[ws[k]] = r;
        }
        if must.iter().any(|&(a, b)| a != b && rank[a] > rank[b]) {
            return false;
        }
        req.iter().all(|(r, v)| {
            let o = &h.ops[*r];
            v.iter()
                .filter(|&&w| h.ops[w].key == o.key)
                .all(|&w| match o.read {
                    Some(None) => false,
                    Some(Some(s)) => w == s || rank[w] < rank[s],
                    None => true,
                })
        })
    })
}

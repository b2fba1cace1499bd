//! The transaction dependency graph: compact adjacency, Tarjan's SCCs, shortest-path search,
//! and the two order relations that come from the history rather than from data (process and
//! real-time order).
//!
//! Nodes are transaction indices. Each adjacency entry carries a bit set of relations
//! ([`WW`], [`WR`], [`RW`], [`PROC`], [`RT`]) so one graph serves every search: a search passes
//! the mask of relations it may use. The graph never holds self-edges.

use super::parse::{Status, Txn};

pub const WW: u8 = 1;
pub const WR: u8 = 2;
pub const RW: u8 = 4;
pub const PROC: u8 = 8;
pub const RT: u8 = 16;
/// ww | wr: dependencies that are not anti-dependencies.
pub const DEP: u8 = WW | WR;
pub const DATA: u8 = WW | WR | RW;

/// The name of a single relation bit.
pub fn rel_name(bit: u8) -> &'static str {
    match bit {
        WW => "ww",
        WR => "wr",
        RW => "rw",
        PROC => "process",
        RT => "realtime",
        _ => "?",
    }
}

/// Picks the one relation a cycle step is explained by when an edge carries several: the most
/// specific first (ww, wr, process, realtime), anti-dependency last, so cycles are classified as
/// the least surprising anomaly the edge set allows.
pub fn pick_rel(bits: u8) -> u8 {
    for b in [WW, WR, PROC, RT, RW] {
        if bits & b != 0 {
            return b;
        }
    }
    0
}

/// Compressed adjacency (CSR). `to[off[v]..off[v+1]]` are v's successors, sorted, unique.
#[derive(Debug, Clone, Default)]
pub struct Graph {
    pub n: usize,
    off: Vec<u32>,
    to: Vec<u32>,
    bits: Vec<u8>,
}

impl Graph {
    /// Builds the graph from (from, to, relation bits) triples; duplicate pairs merge their bits
    /// and self-edges are dropped.
    pub fn from_edges(n: usize, edges: &[(u32, u32, u8)]) -> Graph {
        let mut count = vec![0u32; n + 1];
        for &(a, b, _) in edges {
            if a != b {
                count[a as usize + 1] += 1;
            }
        }
        for i in 0..n {
            count[i + 1] += count[i];
        }
        let mut fill = count.clone();
        let m = count[n] as usize;
        let mut to = vec![0u32; m];
        let mut bits = vec![0u8; m];
        for &(a, b, r) in edges {
            if a != b {
                let p = fill[a as usize] as usize;
                to[p] = b;
                bits[p] = r;
                fill[a as usize] += 1;
            }
        }
        // Sort each row and merge duplicates.
        let mut off = Vec::with_capacity(n + 1);
        let mut out_to = Vec::with_capacity(m);
        let mut out_bits = Vec::with_capacity(m);
        let mut row: Vec<(u32, u8)> = Vec::new();
        off.push(0u32);
        for v in 0..n {
            let (s, e) = (count[v] as usize, count[v + 1] as usize);
            row.clear();
            row.extend(to[s..e].iter().copied().zip(bits[s..e].iter().copied()));
            row.sort_unstable_by_key(|x| x.0);
            for &(t, r) in &row {
                if out_to.last() == Some(&t) && out_to.len() > *off.last().unwrap_or(&0) as usize {
                    *out_bits.last_mut().expect("non-empty") |= r;
                } else {
                    out_to.push(t);
                    out_bits.push(r);
                }
            }
            off.push(out_to.len() as u32);
        }
        Graph {
            n,
            off,
            to: out_to,
            bits: out_bits,
        }
    }

    /// Successors of `v` with their relation bits.
    pub fn succ(&self, v: u32) -> impl Iterator<Item = (u32, u8)> + '_ {
        let (s, e) = (
            self.off[v as usize] as usize,
            self.off[v as usize + 1] as usize,
        );
        self.to[s..e]
            .iter()
            .copied()
            .zip(self.bits[s..e].iter().copied())
    }

    /// Bits of the edge a → b (0 if absent).
    #[cfg(test)]
    pub fn edge(&self, a: u32, b: u32) -> u8 {
        let (s, e) = (
            self.off[a as usize] as usize,
            self.off[a as usize + 1] as usize,
        );
        match self.to[s..e].binary_search(&b) {
            Ok(i) => self.bits[s + i],
            Err(_) => 0,
        }
    }

    /// Number of edges.
    #[cfg(test)]
    pub fn edge_count(&self) -> usize {
        self.to.len()
    }

    /// The subgraph induced by `nodes` (local ids = positions in `nodes`), keeping only edges
    /// whose bits intersect `mask` (bits are masked too). `local` must map every global node to
    /// its position in `nodes` or `u32::MAX`.
    pub fn induced(&self, nodes: &[u32], local: &dyn Fn(u32) -> u32, mask: u8) -> Graph {
        let mut edges = Vec::new();
        for (i, &v) in nodes.iter().enumerate() {
            for (w, r) in self.succ(v) {
                let r = r & mask;
                if r == 0 {
                    continue;
                }
                let j = local(w);
                if j != u32::MAX {
                    edges.push((i as u32, j, r));
                }
            }
        }
        Graph::from_edges(nodes.len(), &edges)
    }

    /// The "non-adjacent anti-dependency" product graph: node `2v` is "at v, free to take any
    /// edge", node `2v+1` is "at v, just arrived over an rw edge, must leave over a non-rw edge".
    /// Cycles here are exactly the closed walks of the original graph in which no two rw edges
    /// are consecutive (cyclically) — Cerone & Gotsman's characterisation of snapshot isolation.
    /// `dep` is the set of non-rw relations allowed.
    pub fn nonadjacent_product(&self, dep: u8) -> Graph {
        let mut edges = Vec::new();
        for v in 0..self.n as u32 {
            for (w, r) in self.succ(v) {
                let d = r & dep;
                if d != 0 {
                    edges.push((2 * v, 2 * w, d));
                    edges.push((2 * v + 1, 2 * w, d));
                }
                if r & RW != 0 {
                    edges.push((2 * v, 2 * w + 1, RW));
                }
            }
        }
        Graph::from_edges(2 * self.n, &edges)
    }
}

/// Strongly connected components (Tarjan, iterative) over edges whose bits meet `mask`.
/// Returns the component id of each node; ids are dense from 0.
pub fn tarjan(g: &Graph, mask: u8) -> (Vec<u32>, usize) {
    const NONE: u32 = u32::MAX;
    let n = g.n;
    let mut index = vec![NONE; n];
    let mut low = vec![0u32; n];
    let mut on_stack = vec![false; n];
    let mut comp = vec![NONE; n];
    let mut stack: Vec<u32> = Vec::new();
    let mut call: Vec<(u32, u32)> = Vec::new(); // (node, next edge position)
    let mut next_index = 0u32;
    let mut ncomp = 0u32;
    for root in 0..n as u32 {
        if index[root as usize] != NONE {
            continue;
        }
        call.push((root, g.off[root as usize]));
        index[root as usize] = next_index;
        low[root as usize] = next_index;
        next_index += 1;
        stack.push(root);
        on_stack[root as usize] = true;
        while let Some(&mut (v, ref mut pos)) = call.last_mut() {
            let end = g.off[v as usize + 1];
            let mut descended = false;
            while *pos < end {
                let p = *pos as usize;
                *pos += 1;
                if g.bits[p] & mask == 0 {
                    continue;
                }
                let w = g.to[p];
                if index[w as usize] == NONE {
                    index[w as usize] = next_index;
                    low[w as usize] = next_index;
                    next_index += 1;
                    stack.push(w);
                    on_stack[w as usize] = true;
                    call.push((w, g.off[w as usize]));
                    descended = true;
                    break;
                } else if on_stack[w as usize] {
                    low[v as usize] = low[v as usize].min(index[w as usize]);
                }
            }
            if descended {
                continue;
            }
            call.pop();
            if let Some(&(parent, _)) = call.last() {
                low[parent as usize] = low[parent as usize].min(low[v as usize]);
            }
            if low[v as usize] == index[v as usize] {
                loop {
                    let w = stack.pop().expect("tarjan stack");
                    on_stack[w as usize] = false;
                    comp[w as usize] = ncomp;
                    if w == v {
                        break;
                    }
                }
                ncomp += 1;
            }
        }
    }
    (comp, ncomp as usize)
}

/// Groups nodes by component, keeping only components of two or more nodes (the graph has no
/// self-edges, so those are exactly the components that contain a cycle).
pub fn nontrivial_components(comp: &[u32], ncomp: usize) -> Vec<Vec<u32>> {
    let mut sizes = vec![0u32; ncomp];
    for &c in comp {
        sizes[c as usize] += 1;
    }
    let mut slot = vec![u32::MAX; ncomp];
    let mut out: Vec<Vec<u32>> = Vec::new();
    for (v, &c) in comp.iter().enumerate() {
        if sizes[c as usize] < 2 {
            continue;
        }
        if slot[c as usize] == u32::MAX {
            slot[c as usize] = out.len() as u32;
            out.push(Vec::with_capacity(sizes[c as usize] as usize));
        }
        out[slot[c as usize] as usize].push(v as u32);
    }
    out
}

/// Shortest path from `src` to `dst` over edges meeting `mask`, visiting only nodes for which
/// `ok` holds. Returns the steps `(from, to, bits ∩ mask)`. `steps` counts edge visits, so
/// callers can bound the work.
pub fn bfs_path(
    g: &Graph,
    mask: u8,
    src: u32,
    dst: u32,
    ok: &dyn Fn(u32) -> bool,
    steps: &mut u64,
) -> Option<Vec<(u32, u32, u8)>> {
    use super::fx::HashMap;
    if src == dst {
        return None;
    }
    let mut parent: HashMap<u32, (u32, u8)> = HashMap::default();
    let mut queue = std::collections::VecDeque::new();
    parent.insert(src, (u32::MAX, 0));
    queue.push_back(src);
    while let Some(v) = queue.pop_front() {
        for (w, r) in g.succ(v) {
            *steps += 1;
            let r = r & mask;
            if r == 0 || parent.contains_key(&w) || !ok(w) {
                continue;
            }
            parent.insert(w, (v, r));
            if w == dst {
                let mut path = Vec::new();
                let mut cur = dst;
                while cur != src {
                    let (p, r) = parent[&cur];
                    path.push((p, cur, r));
                    cur = p;
                }
                path.reverse();
                return Some(path);
            }
            queue.push_back(w);
        }
    }
    None
}

/// Process (session) order: consecutive graph transactions of each process, in invocation
/// order. Transactions must be in invocation order (as `parse` yields them).
pub fn process_edges(txns: &[Txn]) -> Vec<(u32, u32)> {
    use super::fx::HashMap;
    let mut last: HashMap<u64, u32> = HashMap::default();
    let mut out = Vec::new();
    for (i, t) in txns.iter().enumerate() {
        if !t.status.in_graph() {
            continue;
        }
        if let Some(prev) = last.insert(t.process, i as u32) {
            out.push((prev, i as u32));
        }
    }
    out
}

/// Real-time order, transitively reduced: T1 < T2 when T1 completed `ok` before T2 was invoked.
///
/// Rather than all O(n²) such pairs, each invocation links from the current *frontier*: the
/// completed transactions not yet followed (in real time) by another completed transaction.
/// When T completes, every frontier member that completed before T's invocation leaves the
/// frontier (T now stands for it) and T joins. Every real-time pair stays connected by a path,
/// and the frontier holds at most about as many transactions as run concurrently.
pub fn realtime_edges(txns: &[Txn]) -> Vec<(u32, u32)> {
    // (event index, txn, is_completion)
    let mut events: Vec<(usize, u32, bool)> = Vec::with_capacity(txns.len() * 2);
    for (i, t) in txns.iter().enumerate() {
        if !t.status.in_graph() {
            continue;
        }
        events.push((t.invoke, i as u32, false));
        if t.status == Status::Ok {
            if let Some(c) = t.complete {
                events.push((c, i as u32, true));
            }
        }
    }
    events.sort_unstable_by_key(|e| e.0);
    let mut frontier: Vec<u32> = Vec::new();
    let mut preds: super::fx::HashMap<u32, Vec<u32>> = Default::default();
    let mut out = Vec::new();
    for (_, t, done) in events {
        if !done {
            for &f in &frontier {
                out.push((f, t));
            }
            if txns[t as usize].status == Status::Ok {
                preds.insert(t, frontier.clone());
            }
        } else {
            let p = preds.remove(&t).unwrap_or_default();
            frontier.retain(|x| !p.contains(x));
            frontier.push(t);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tarjan_finds_cycle_components_only() {
        let g = Graph::from_edges(5, &[(0, 1, WW), (1, 2, WR), (2, 0, RW), (3, 4, WW)]);
        let (comp, n) = tarjan(&g, DATA);
        let nt = nontrivial_components(&comp, n);
        assert_eq!(nt.len(), 1);
        let mut c = nt[0].clone();
        c.sort();
        assert_eq!(c, vec![0, 1, 2]);
        // Without rw the cycle disappears.
        let (comp, n) = tarjan(&g, DEP);
        assert!(nontrivial_components(&comp, n).is_empty());
    }

    #[test]
    fn duplicate_edges_merge_their_relations() {
        let g = Graph::from_edges(2, &[(0, 1, WW), (0, 1, RT), (1, 1, WW)]);
        assert_eq!(g.edge(0, 1), WW | RT);
        assert_eq!(g.edge(1, 1), 0);
        assert_eq!(g.edge_count(), 1);
    }

    #[test]
    fn bfs_returns_shortest_path() {
        let g = Graph::from_edges(4, &[(0, 1, WW), (1, 2, WW), (2, 3, WW), (0, 3, RW)]);
        let mut steps = 0;
        let p = bfs_path(&g, WW, 0, 3, &|_| true, &mut steps).unwrap();
        assert_eq!(p.len(), 3);
        let p = bfs_path(&g, DATA, 0, 3, &|_| true, &mut steps).unwrap();
        assert_eq!(p, vec![(0, 3, RW)]);
    }

    #[test]
    fn nonadjacent_product_rejects_adjacent_rw_cycles() {
        // 0 -rw-> 1 -rw-> 0: two adjacent anti-dependencies (write skew): not G-nonadjacent.
        let g = Graph::from_edges(2, &[(0, 1, RW), (1, 0, RW)]);
        let p = g.nonadjacent_product(DEP);
        let (comp, n) = tarjan(&p, DATA);
        assert!(nontrivial_components(&comp, n).is_empty());
        // 0 -rw-> 1 -wr-> 0: G-single, which is non-adjacent.
        let g = Graph::from_edges(2, &[(0, 1, RW), (1, 0, WR)]);
        let p = g.nonadjacent_product(DEP);
        let (comp, n) = tarjan(&p, DATA);
        assert_eq!(nontrivial_components(&comp, n).len(), 1);
    }
}

//! Cycle search: strongly connected components, then, inside each, one search per forbidden
//! cycle class, each finding a concrete cycle to explain.
//!
//! A cycle's class comes from its edges: only ww → G0; ww and wr → G1c; exactly one rw → G-single;
//! several rw, no two consecutive (cyclically) → G-nonadjacent; otherwise G2-item. The suffix is
//! `-realtime` if it uses a real-time edge, else `-process` if it uses a process edge. A cycle of
//! only process/real-time edges cannot exist (both orders agree with time), so every cycle has
//! a data edge and one of these 15 classes.
//!
//! Every search decides its class exactly in linear time (no exponential enumeration):
//! - G0 / G1c / G2-item at a level: "is there a cycle, over the allowed edges, through an edge
//!   of the required kind (ww / wr / rw at the data level; process or real-time edge at the
//!   higher levels)?" — true iff such an edge joins two nodes of one SCC of the allowed edges;
//!   the cycle is that edge plus a shortest path back (BFS).
//! - G-nonadjacent: the same question on the product graph of `Graph::nonadjacent_product`,
//!   whose cycles are exactly the closed walks without two consecutive rw edges (Cerone &
//!   Gotsman's characterisation of snapshot isolation). A walk with one rw edge is a G-single.
//! - G-single, to name it precisely: per rw edge u→v, a ww/wr path back from v to u; bounded by
//!   [`G_SINGLE_STEPS`] edge visits per component. This bound only affects the *name* of an
//!   anomaly already proven by the exact G-nonadjacent search (G-single cycles are walks of the
//!   product graph), never the verdict.
//!
//! A class implied by one already found in the component (e.g. G-single-process by G-single) is
//! not searched again. Components are searched in parallel (rayon). The only thing that can cut a
//! search short is the caller's [`Budget`]; the classes left unsettled are reported `unknown`,
//! and if the component's mere existence proves a forbidden cycle (every class its edges could
//! form is forbidden), a `cycle-exists` anomaly says so.

use super::anomaly::{cycle_anomaly, Anomaly, Explain};
use super::graph::{
    bfs_path, nontrivial_components, pick_rel, tarjan, Graph, DATA, DEP, PROC, RT, RW, WR, WW,
};
use super::models::{cycle_class, implied_anomalies};
use super::parse::Parsed;
use crate::checker::Budget;
use rayon::prelude::*;
use std::collections::HashSet;

/// A cycle as steps (from, to, relation bit).
pub type Cycle = Vec<(u32, u32, u8)>;

/// Edge visits allowed per component for naming G-single cycles precisely.
pub const G_SINGLE_STEPS: u64 = 4_000_000;

/// What the search found.
#[derive(Debug, Default)]
pub struct SearchOut {
    pub anomalies: Vec<Anomaly>,
    /// Classes that could not be settled (budget), with the component size.
    pub unknown: Vec<String>,
    /// Number of non-trivial SCCs and the size of the largest.
    pub components: usize,
    pub largest_component: usize,
    /// Whether the search was cut short by the budget.
    pub cut: bool,
}

/// Which relations and levels the forbidden classes need.
pub struct Plan {
    /// Highest level needed (0 data, 1 process, 2 real time), or None if no cycle class is
    /// forbidden.
    pub max_level: Option<usize>,
    pub data_mask: u8,
}

impl Plan {
    pub fn new(forbidden: &HashSet<&'static str>) -> Plan {
        let mut max_level = None;
        let mut max_base = None;
        for b in 0..5 {
            for l in 0..3 {
                if forbidden.contains(cycle_class(b, l).as_str()) {
                    max_level = Some(max_level.map_or(l, |m: usize| m.max(l)));
                    max_base = Some(max_base.map_or(b, |m: usize| m.max(b)));
                }
            }
        }
        let data_mask = match max_base {
            None => 0,
            Some(0) => WW,
            Some(1) => DEP,
            Some(_) => DATA,
        };
        Plan {
            max_level,
            data_mask,
        }
    }

    /// The relations the global component search uses.
    pub fn mask(&self) -> u8 {
        self.data_mask
            | match self.max_level {
                Some(1) => PROC,
                Some(2) => PROC | RT,
                _ => 0,
            }
    }

    /// Whether any cycle over `self.mask()` is forbidden, whatever its class.
    pub fn any_cycle_forbidden(&self, forbidden: &HashSet<&'static str>) -> bool {
        let Some(ml) = self.max_level else {
            return false;
        };
        let mb = match self.data_mask {
            WW => 0,
            DEP => 1,
            _ => 4,
        };
        (0..=mb).all(|b| (0..=ml).all(|l| forbidden.contains(cycle_class(b, l).as_str())))
    }
}

/// The class of a cycle given each step's single relation.
pub fn classify(rels: &[u8]) -> String {
    let n = rels.len();
    let rw = rels.iter().filter(|&&r| r == RW).count();
    let suffix = if rels.contains(&RT) {
        "-realtime"
    } else if rels.contains(&PROC) {
        "-process"
    } else {
        ""
    };
    let base = if rw == 0 {
        if rels.contains(&WR) {
            "G1c"
        } else {
            "G0"
        }
    } else if rw == 1 {
        "G-single"
    } else if (0..n).any(|i| rels[i] == RW && rels[(i + 1) % n] == RW) {
        "G2-item"
    } else {
        "G-nonadjacent"
    };
    format!("{base}{suffix}")
}

/// A cycle through an edge whose bits meet `req`, over edges meeting `mask`, if one exists.
/// Steps carry the single relation that explains them.
fn cycle_through(g: &Graph, mask: u8, req: u8, steps: &mut u64) -> Option<Vec<(u32, u32, u8)>> {
    let (comp, _) = tarjan(g, mask);
    for v in 0..g.n as u32 {
        for (w, bits) in g.succ(v) {
            if bits & req & mask == 0 || comp[v as usize] != comp[w as usize] {
                continue;
            }
            let c = comp[v as usize];
            let path = bfs_path(g, mask, w, v, &|x| comp[x as usize] == c, steps)?;
            let mut cyc = vec![(v, w, pick_rel(bits & req & mask))];
            cyc.extend(path.into_iter().map(|(a, b, r)| (a, b, pick_rel(r))));
            return Some(cyc);
        }
    }
    None
}

/// A cycle with exactly one rw edge over `dep` edges otherwise, within a step budget.
/// Returns (cycle, complete?).
fn g_single(g: &Graph, dep: u8, budget: &Budget) -> (Option<Cycle>, bool) {
    let (comp, _) = tarjan(g, dep);
    let mut rw_edges: Vec<(u32, u32)> = Vec::new();
    for v in 0..g.n as u32 {
        for (w, bits) in g.succ(v) {
            if bits & RW != 0 {
                rw_edges.push((v, w));
            }
        }
    }
    // Same dep-component first: a path back certainly exists.
    rw_edges.sort_by_key(|&(v, w)| comp[v as usize] != comp[w as usize]);
    let mut steps = 0u64;
    for (v, w) in rw_edges {
        if steps > G_SINGLE_STEPS || budget.exhausted() {
            return (None, false);
        }
        if let Some(path) = bfs_path(g, dep, w, v, &|_| true, &mut steps) {
            let mut cyc = vec![(v, w, RW)];
            cyc.extend(path.into_iter().map(|(a, b, r)| (a, b, pick_rel(r))));
            return (Some(cyc), true);
        }
    }
    (None, true)
}

/// Searches every non-trivial component of `g` (over the plan's mask) for the forbidden cycle
/// classes.
pub fn search(
    g: &Graph,
    p: &Parsed,
    ex: &dyn Explain,
    forbidden: &HashSet<&'static str>,
    budget: &Budget,
) -> SearchOut {
    let plan = Plan::new(forbidden);
    let Some(max_level) = plan.max_level else {
        return SearchOut::default();
    };
    let mask = plan.mask();
    let (comp, ncomp) = tarjan(g, mask);
    let sccs = nontrivial_components(&comp, ncomp);
    let mut local_of = vec![u32::MAX; g.n];
    let mut scc_of = vec![u32::MAX; g.n];
    for (i, nodes) in sccs.iter().enumerate() {
        for (j, &v) in nodes.iter().enumerate() {
            local_of[v as usize] = j as u32;
            scc_of[v as usize] = i as u32;
        }
    }
    let any_cycle_forbidden = plan.any_cycle_forbidden(forbidden);
    let results: Vec<(Vec<Anomaly>, Vec<String>, bool)> = sccs
        .par_iter()
        .enumerate()
        .map(|(i, nodes)| {
            let local = |w: u32| {
                if scc_of[w as usize] == i as u32 {
                    local_of[w as usize]
                } else {
                    u32::MAX
                }
            };
            let lg = g.induced(nodes, &local, mask);
            search_component(
                &lg,
                nodes,
                p,
                ex,
                forbidden,
                max_level,
                budget,
                any_cycle_forbidden,
            )
        })
        .collect();
    let mut out = SearchOut {
        components: sccs.len(),
        largest_component: sccs.iter().map(|s| s.len()).max().unwrap_or(0),
        ..SearchOut::default()
    };
    for (a, u, cut) in results {
        out.anomalies.extend(a);
        out.unknown.extend(u);
        out.cut |= cut;
    }
    out
}

#[allow(clippy::too_many_arguments)]
fn search_component(
    lg: &Graph,
    nodes: &[u32],
    p: &Parsed,
    ex: &dyn Explain,
    forbidden: &HashSet<&'static str>,
    max_level: usize,
    budget: &Budget,
    any_cycle_forbidden: bool,
) -> (Vec<Anomaly>, Vec<String>, bool) {
    let size = nodes.len();
    let mut found: Vec<String> = Vec::new();
    let mut covered: HashSet<String> = HashSet::new();
    let mut anomalies = Vec::new();
    let mut unknown = Vec::new();
    let mut cut = false;
    let record = |cyc: Vec<(u32, u32, u8)>,
                  found: &mut Vec<String>,
                  covered: &mut HashSet<String>,
                  anomalies: &mut Vec<Anomaly>| {
        let rels: Vec<u8> = cyc.iter().map(|s| s.2).collect();
        let label = classify(&rels);
        if found.contains(&label) {
            return;
        }
        let global: Vec<(u32, u32, u8)> = cyc
            .iter()
            .map(|&(a, b, r)| (nodes[a as usize], nodes[b as usize], r))
            .collect();
        anomalies.push(cycle_anomaly(label.clone(), p, &global, ex, size));
        covered.extend(
            implied_anomalies([label.as_str()])
                .into_iter()
                .map(String::from),
        );
        found.push(label);
    };
    for l in 0..=max_level {
        let lvl = [0, PROC, PROC | RT][l];
        let req_lvl = [0, PROC, RT][l];
        // G0, G1c, G-nonadjacent (also names G-single), G-single, G2-item.
        for b in [0usize, 1, 3, 2, 4] {
            let class = cycle_class(b, l);
            if !forbidden.contains(class.as_str()) || covered.contains(&class) {
                continue;
            }
            if budget.exhausted() {
                cut = true;
                unknown.push(format!("{class} (component of {size} transactions)"));
                continue;
            }
            let mut steps = 0u64;
            let cyc = match b {
                0 => cycle_through(lg, WW | lvl, if l == 0 { WW } else { req_lvl }, &mut steps),
                1 => cycle_through(lg, DEP | lvl, if l == 0 { WR } else { req_lvl }, &mut steps),
                3 => {
                    let p = lg.nonadjacent_product(DEP | lvl);
                    cycle_through(
                        &p,
                        DEP | lvl | RW,
                        if l == 0 { RW } else { req_lvl },
                        &mut steps,
                    )
                    .map(|c| c.into_iter().map(|(a, b, r)| (a / 2, b / 2, r)).collect())
                }
                2 => {
                    // Only worth naming when a non-adjacent walk exists at this level.
                    let nonadj = cycle_class(3, l);
                    if !found.iter().any(|f| f == &nonadj) {
                        None
                    } else {
                        let (c, complete) = g_single(lg, DEP | lvl, budget);
                        if !complete && budget.exhausted() {
                            cut = true;
                        }
                        c
                    }
                }
                _ => cycle_through(
                    lg,
                    DATA | lvl,
                    if l == 0 { RW } else { req_lvl },
                    &mut steps,
                ),
            };
            if let Some(c) = cyc {
                record(c, &mut found, &mut covered, &mut anomalies);
            }
        }
    }
    if cut && anomalies.is_empty() && any_cycle_forbidden {
        anomalies.push(Anomaly {
            kind: "cycle-exists".into(),
            txns: Vec::new(),
            explanation: format!(
                "A strongly connected component of {size} transactions proves a dependency cycle exists, and every cycle these edges could form is forbidden; the search ran out of budget before naming it."
            ),
            cycle: Vec::new(),
            dot: None,
            key: None,
            component_size: Some(size),
        });
    }
    (anomalies, unknown, cut)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_cycles_by_their_edges() {
        assert_eq!(classify(&[WW, WW]), "G0");
        assert_eq!(classify(&[WW, WR]), "G1c");
        assert_eq!(classify(&[RW, WR]), "G-single");
        assert_eq!(classify(&[RW, WR, RW, WW]), "G-nonadjacent");
        assert_eq!(classify(&[RW, RW]), "G2-item");
        assert_eq!(classify(&[WR, RW, RW]), "G2-item");
        assert_eq!(classify(&[RW, WR, RW]), "G2-item"); // cyclically adjacent
        assert_eq!(classify(&[WW, PROC]), "G0-process");
        assert_eq!(classify(&[WR, PROC]), "G1c-process");
        assert_eq!(classify(&[RW, RT]), "G-single-realtime");
        assert_eq!(classify(&[RW, PROC, RT]), "G-single-realtime");
    }
}

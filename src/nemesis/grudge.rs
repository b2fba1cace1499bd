//! Partition shapes as grudges: for each node, the set of nodes whose packets it drops.
//!
//! This is the pure half of partitioning (the iptables half is `partition.rs`). A grudge is
//! directional — node `a` dropping packets from `b` says nothing about `b` — which is what lets
//! one vocabulary describe clean splits, overlapping majorities, bridges and one-way faults.
//! Shapes follow Jepsen's `nemesis.combined`: `one`, `majority`, `majorities-ring`, `bridge`,
//! `minority-third`, `primaries`, plus `asymmetric` (one direction only).

use super::select::{
    majority_size, minority_size, minority_third_size, primaries_among, random_subset,
};
use crate::generator::rng::Rng;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// node → nodes whose packets it drops. Nodes that drop nothing are absent.
pub type Grudge = BTreeMap<String, BTreeSet<String>>;

/// A partition shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Shape {
    /// Isolate one random node from all others.
    One,
    /// Random halves: a minority (2 of 5) against a majority (3 of 5).
    Majority,
    /// Every node sees a majority (itself included), and no two nodes see the same one.
    MajoritiesRing,
    /// Two halves that cannot see each other, joined by one node that sees both.
    Bridge,
    /// Isolate a random `max(1, (n-1)/3)` nodes from the rest.
    MinorityThird,
    /// Isolate the target's primaries (leaders) from the rest.
    Primaries,
    /// One direction only: the rest drop packets from a random minority, while the minority
    /// still receives from the rest.
    Asymmetric,
}

impl Shape {
    /// Every shape, in documentation order.
    pub const ALL: [Shape; 7] = [
        Shape::One,
        Shape::Majority,
        Shape::MajoritiesRing,
        Shape::Bridge,
        Shape::MinorityThird,
        Shape::Primaries,
        Shape::Asymmetric,
    ];

    /// The shape's name as used in plans and history values.
    pub fn name(self) -> &'static str {
        match self {
            Shape::One => "one",
            Shape::Majority => "majority",
            Shape::MajoritiesRing => "majorities-ring",
            Shape::Bridge => "bridge",
            Shape::MinorityThird => "minority-third",
            Shape::Primaries => "primaries",
            Shape::Asymmetric => "asymmetric",
        }
    }

    /// Parses a shape name.
    pub fn parse(s: &str) -> Result<Shape, String> {
        Shape::ALL
            .into_iter()
            .find(|x| x.name() == s.trim())
            .ok_or_else(|| {
                format!(
                    "unknown partition shape {s:?} (expected one of: {})",
                    Shape::ALL.map(|x| x.name()).join(", ")
                )
            })
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl serde::Serialize for Shape {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> serde::Deserialize<'de> for Shape {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Shape::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// A grudge where every node drops packets from every node outside its own component.
/// Nodes missing from all components are left alone.
pub fn complete(components: &[Vec<String>]) -> Grudge {
    let mut g = Grudge::new();
    for (i, comp) in components.iter().enumerate() {
        let others: BTreeSet<String> = components
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .flat_map(|(_, c)| c.iter().cloned())
            .collect();
        if others.is_empty() {
            continue;
        }
        for n in comp {
            g.entry(n.clone())
                .or_default()
                .extend(others.iter().cloned());
        }
    }
    g
}

/// The nodes `node` can still hear from under `grudge` (itself included).
pub fn view(grudge: &Grudge, nodes: &[String], node: &str) -> BTreeSet<String> {
    let dropped = grudge.get(node);
    nodes
        .iter()
        .filter(|x| dropped.is_none_or(|d| !d.contains(*x)))
        .cloned()
        .collect()
}

/// A computed partition: the shape, its grudge, and (for clean splits) the components.
#[derive(Debug, Clone, PartialEq)]
pub struct Partition {
    /// The shape it was computed from.
    pub shape: Shape,
    /// For each node, the nodes whose packets it drops.
    pub grudge: Grudge,
    /// The sides of a clean split; empty for shapes that are not one (ring, bridge, asymmetric).
    pub components: Vec<Vec<String>>,
}

impl Partition {
    /// The partition as a history value: `{"shape", "grudge", "components"?}`.
    pub fn to_json(&self) -> serde_json::Value {
        let mut m = serde_json::Map::new();
        m.insert("shape".into(), self.shape.name().into());
        m.insert(
            "grudge".into(),
            serde_json::to_value(&self.grudge).unwrap_or_default(),
        );
        if !self.components.is_empty() {
            m.insert(
                "components".into(),
                serde_json::to_value(&self.components).unwrap_or_default(),
            );
        }
        serde_json::Value::Object(m)
    }
}

fn split(nodes: &[String], isolated: Vec<String>) -> Vec<Vec<String>> {
    let rest: Vec<String> = nodes
        .iter()
        .filter(|x| !isolated.contains(x))
        .cloned()
        .collect();
    vec![isolated, rest]
}

/// Computes a partition of `nodes` in the given shape. `primaries` is the target's answer to
/// "who leads" (only `primaries` uses it). Errors say why the shape does not fit the cluster.
pub fn partition(
    shape: Shape,
    nodes: &[String],
    primaries: &[String],
    rng: &mut Rng,
) -> Result<Partition, String> {
    let n = nodes.len();
    let need = |min: usize| -> Result<(), String> {
        if n < min {
            Err(format!(
                "partition shape {shape} needs at least {min} nodes, the cluster has {n}"
            ))
        } else {
            Ok(())
        }
    };
    let (grudge, components) = match shape {
        Shape::One => {
            need(2)?;
            let comps = split(nodes, random_subset(nodes, 1, rng));
            (complete(&comps), comps)
        }
        Shape::Majority => {
            need(2)?;
            let comps = split(nodes, random_subset(nodes, minority_size(n), rng));
            (complete(&comps), comps)
        }
        Shape::MinorityThird => {
            need(2)?;
            let comps = split(nodes, random_subset(nodes, minority_third_size(n), rng));
            (complete(&comps), comps)
        }
        Shape::Primaries => {
            need(2)?;
            let ps = primaries_among(nodes, primaries);
            if ps.is_empty() {
                return Err(
                    "partition shape primaries: the target reports no primaries right now".into(),
                );
            }
            if ps.len() == n {
                return Err("partition shape primaries: every node is a primary".into());
            }
            let comps = split(nodes, ps);
            (complete(&comps), comps)
        }
        Shape::Bridge => {
            need(3)?;
            let mut order = nodes.to_vec();
            rng.shuffle(&mut order);
            let half = n / 2;
            let a = order[..half].to_vec();
            let b = order[half + 1..].to_vec();
            // The bridge (order[half]) belongs to neither side: it drops nothing and nobody
            // drops it.
            let g = complete(&[a, b]);
            (g, Vec::new())
        }
        Shape::MajoritiesRing => {
            need(3)?;
            (majorities_ring(nodes, rng), Vec::new())
        }
        Shape::Asymmetric => {
            need(2)?;
            let senders = random_subset(nodes, minority_size(n), rng);
            let mut g = Grudge::new();
            for x in nodes.iter().filter(|x| !senders.contains(x)) {
                g.insert(x.clone(), senders.iter().cloned().collect());
            }
            (g, Vec::new())
        }
    };
    Ok(Partition {
        shape,
        grudge,
        components,
    })
}

/// Every node sees a majority (itself included) and no two nodes see the same one.
///
/// Up to 5 nodes this is Jepsen's perfect ring: nodes in a shuffled ring, each seeing the
/// window of `majority` nodes around itself. Larger clusters get Jepsen's stochastic variant —
/// each node sees itself plus random others — redrawn until the views are distinct, falling
/// back to the ring (which always satisfies both properties) if that keeps failing.
pub fn majorities_ring(nodes: &[String], rng: &mut Rng) -> Grudge {
    let n = nodes.len();
    let m = majority_size(n);
    let mut order = nodes.to_vec();
    rng.shuffle(&mut order);
    let grudge_from_views = |views: &BTreeMap<String, BTreeSet<String>>| -> Grudge {
        let mut g = Grudge::new();
        for (x, v) in views {
            let d: BTreeSet<String> = nodes.iter().filter(|y| !v.contains(*y)).cloned().collect();
            if !d.is_empty() {
                g.insert(x.clone(), d);
            }
        }
        g
    };
    if n > 5 {
        for _attempt in 0..64 {
            let mut views: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
            for x in nodes {
                let others: Vec<String> = nodes.iter().filter(|y| *y != x).cloned().collect();
                let mut v: BTreeSet<String> =
                    random_subset(&others, m - 1, rng).into_iter().collect();
                v.insert(x.clone());
                views.insert(x.clone(), v);
            }
            let distinct: BTreeSet<&BTreeSet<String>> = views.values().collect();
            if distinct.len() == n {
                return grudge_from_views(&views);
            }
        }
    }
    // The ring window: `m` consecutive nodes, starting `(m-1)/2` before the node itself.
    let back = (m - 1) / 2;
    let mut views = BTreeMap::new();
    for i in 0..n {
        let v: BTreeSet<String> = (0..m)
            .map(|k| order[(i + n - back + k) % n].clone())
            .collect();
        views.insert(order[i].clone(), v);
    }
    grudge_from_views(&views)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nodes(n: usize) -> Vec<String> {
        (1..=n).map(|i| format!("n{i}")).collect()
    }

    fn no_self_grudge(g: &Grudge) {
        for (x, d) in g {
            assert!(!d.contains(x), "{x} drops itself: {g:?}");
            assert!(!d.is_empty());
        }
    }

    fn symmetric(g: &Grudge) -> bool {
        g.iter()
            .all(|(a, d)| d.iter().all(|b| g.get(b).is_some_and(|db| db.contains(a))))
    }

    #[test]
    fn complete_grudge_drops_exactly_the_other_components() {
        let g = complete(&[vec!["a".into()], vec!["b".into(), "c".into()]]);
        assert_eq!(g["a"], ["b", "c"].map(String::from).into());
        assert_eq!(g["b"], ["a"].map(String::from).into());
        assert_eq!(g["c"], ["a"].map(String::from).into());
        assert!(symmetric(&g));
    }

    #[test]
    fn one_majority_and_minority_third_isolate_the_right_number_of_nodes() {
        let ns = nodes(7);
        let mut rng = Rng::new(11);
        for (shape, isolated) in [
            (Shape::One, 1),
            (Shape::Majority, 3),
            (Shape::MinorityThird, 2),
        ] {
            for _ in 0..20 {
                let p = partition(shape, &ns, &[], &mut rng).unwrap();
                assert_eq!(p.components.len(), 2);
                assert_eq!(p.components[0].len(), isolated, "{shape}");
                assert_eq!(p.components[0].len() + p.components[1].len(), 7);
                assert!(symmetric(&p.grudge));
                no_self_grudge(&p.grudge);
                // Nobody in the big side hears the small side, and vice versa.
                for a in &p.components[0] {
                    let v = view(&p.grudge, &ns, a);
                    assert_eq!(v.len(), isolated);
                }
            }
        }
    }

    #[test]
    fn majorities_ring_every_node_sees_a_distinct_majority() {
        let mut rng = Rng::new(5);
        for n in 3..=11 {
            let ns = nodes(n);
            for _ in 0..30 {
                let p = partition(Shape::MajoritiesRing, &ns, &[], &mut rng).unwrap();
                no_self_grudge(&p.grudge);
                let mut views = BTreeSet::new();
                for x in &ns {
                    let v = view(&p.grudge, &ns, x);
                    assert!(v.contains(x));
                    assert!(v.len() >= majority_size(n), "n={n} {x} sees {v:?}");
                    assert!(views.insert(v.clone()), "n={n}: two nodes see {v:?}");
                }
            }
        }
    }

    #[test]
    fn majorities_ring_on_five_nodes_is_jepsens_symmetric_ring() {
        let ns = nodes(5);
        let mut rng = Rng::new(9);
        let p = partition(Shape::MajoritiesRing, &ns, &[], &mut rng).unwrap();
        assert!(symmetric(&p.grudge));
        for x in &ns {
            assert_eq!(view(&p.grudge, &ns, x).len(), 3);
        }
    }

    #[test]
    fn bridge_node_sees_both_sides_which_do_not_see_each_other() {
        let mut rng = Rng::new(2);
        for n in [3, 5, 6, 9] {
            let ns = nodes(n);
            let p = partition(Shape::Bridge, &ns, &[], &mut rng).unwrap();
            let bridges: Vec<&String> = ns.iter().filter(|x| !p.grudge.contains_key(*x)).collect();
            assert_eq!(bridges.len(), 1, "n={n}: {p:?}");
            let b = bridges[0];
            assert_eq!(view(&p.grudge, &ns, b).len(), n);
            assert!(p.grudge.values().all(|d| !d.contains(b)));
            assert!(symmetric(&p.grudge));
            // The two sides together with the bridge are everyone; no one else sees everyone.
            for x in ns.iter().filter(|x| *x != b) {
                assert!(view(&p.grudge, &ns, x).len() < n);
            }
        }
        assert!(partition(Shape::Bridge, &nodes(2), &[], &mut rng).is_err());
    }

    #[test]
    fn primaries_shape_isolates_the_leader() {
        let mut rng = Rng::new(0);
        let ns = nodes(5);
        let p = partition(Shape::Primaries, &ns, &["n2".into()], &mut rng).unwrap();
        assert_eq!(p.components[0], vec!["n2"]);
        assert_eq!(p.grudge["n2"].len(), 4);
        let e = partition(Shape::Primaries, &ns, &[], &mut rng).unwrap_err();
        assert!(e.contains("no primaries"));
    }

    #[test]
    fn asymmetric_drops_one_direction_only() {
        let mut rng = Rng::new(4);
        let ns = nodes(5);
        for _ in 0..20 {
            let p = partition(Shape::Asymmetric, &ns, &[], &mut rng).unwrap();
            no_self_grudge(&p.grudge);
            assert!(!p.grudge.is_empty());
            for (a, d) in &p.grudge {
                for b in d {
                    assert!(
                        !p.grudge.get(b).is_some_and(|db| db.contains(a)),
                        "{a} and {b} drop each other"
                    );
                }
            }
        }
    }

    #[test]
    fn shapes_parse_by_name_and_reject_unknown_ones() {
        for s in Shape::ALL {
            assert_eq!(Shape::parse(s.name()).unwrap(), s);
        }
        let e = Shape::parse("triangle").unwrap_err();
        assert!(e.contains("majorities-ring"), "{e}");
    }

    #[test]
    fn same_seed_same_partition() {
        let ns = nodes(5);
        let a = partition(Shape::Majority, &ns, &[], &mut Rng::new(77)).unwrap();
        let b = partition(Shape::Majority, &ns, &[], &mut Rng::new(77)).unwrap();
        assert_eq!(a, b);
    }
}

//! Node selection for faults: which nodes a pause, kill, clock or packet fault hits.
//!
//! Specs follow Jepsen's vocabulary (`one`, `minority`, `majority`, `minority-third`, `all`,
//! `primaries`) plus explicit node names. Pure: the caller supplies the node names, the current
//! primaries (from the target's probe) and a seeded [`Rng`], so choices replay from the seed.

use crate::generator::rng::Rng;
use std::fmt;

/// Which nodes a fault hits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeSpec {
    /// One node chosen at random.
    One,
    /// A random minority: `max(1, (n-1)/2)` nodes (2 of 5).
    Minority,
    /// A random majority: `n/2 + 1` nodes (3 of 5).
    Majority,
    /// A random `max(1, (n-1)/3)` nodes (1 of 5, 2 of 7): the most a BFT system tolerates.
    MinorityThird,
    /// Every node.
    All,
    /// The target's current primaries (leaders), as its probe reports them.
    Primaries,
    /// These nodes, by name.
    Named(Vec<String>),
}

impl NodeSpec {
    /// Parses `one | minority | majority | minority-third | all | primaries` or a comma-separated
    /// list of node names (checked later against the cluster by [`select`]).
    pub fn parse(s: &str) -> Result<NodeSpec, String> {
        let t = s.trim();
        Ok(match t {
            "one" => NodeSpec::One,
            "minority" => NodeSpec::Minority,
            "majority" => NodeSpec::Majority,
            "minority-third" => NodeSpec::MinorityThird,
            "all" => NodeSpec::All,
            "primaries" | "primary" => NodeSpec::Primaries,
            "" => return Err("empty node spec (expected one, minority, majority, minority-third, all, primaries or node names)".into()),
            _ => NodeSpec::Named(
                t.split(',')
                    .map(|x| x.trim().to_string())
                    .filter(|x| !x.is_empty())
                    .collect(),
            ),
        })
    }
}

impl fmt::Display for NodeSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NodeSpec::One => f.write_str("one"),
            NodeSpec::Minority => f.write_str("minority"),
            NodeSpec::Majority => f.write_str("majority"),
            NodeSpec::MinorityThird => f.write_str("minority-third"),
            NodeSpec::All => f.write_str("all"),
            NodeSpec::Primaries => f.write_str("primaries"),
            NodeSpec::Named(ns) => f.write_str(&ns.join(",")),
        }
    }
}

impl serde::Serialize for NodeSpec {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> serde::Deserialize<'de> for NodeSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        NodeSpec::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Size of a minority of `n` nodes: `max(1, (n-1)/2)`, never more than `n`.
pub fn minority_size(n: usize) -> usize {
    ((n.saturating_sub(1)) / 2).max(1).min(n)
}

/// Size of a majority of `n` nodes: `n/2 + 1`, never more than `n`.
pub fn majority_size(n: usize) -> usize {
    (n / 2 + 1).min(n)
}

/// Size of a minority third of `n` nodes: `max(1, (n-1)/3)`, never more than `n`.
pub fn minority_third_size(n: usize) -> usize {
    ((n.saturating_sub(1)) / 3).max(1).min(n)
}

/// `k` distinct nodes chosen at random, in the cluster's order.
pub fn random_subset(nodes: &[String], k: usize, rng: &mut Rng) -> Vec<String> {
    let mut idx: Vec<usize> = (0..nodes.len()).collect();
    rng.shuffle(&mut idx);
    let mut chosen: Vec<usize> = idx.into_iter().take(k).collect();
    chosen.sort_unstable();
    chosen.into_iter().map(|i| nodes[i].clone()).collect()
}

/// The nodes of `nodes` that `primaries` (the target's probe) names, in the cluster's order;
/// names the probe gives that are not nodes are ignored.
pub fn primaries_among(nodes: &[String], primaries: &[String]) -> Vec<String> {
    nodes
        .iter()
        .filter(|x| primaries.contains(x))
        .cloned()
        .collect()
}

/// The nodes `spec` names among `nodes`. `primaries` is the target's current answer to "who
/// leads" (empty when it has no leader or cannot say). Errors name what is wrong: an unknown
/// node, or `primaries` with none reported.
pub fn select(
    spec: &NodeSpec,
    nodes: &[String],
    primaries: &[String],
    rng: &mut Rng,
) -> Result<Vec<String>, String> {
    if nodes.is_empty() {
        return Err("no nodes to choose from".into());
    }
    let n = nodes.len();
    Ok(match spec {
        NodeSpec::One => random_subset(nodes, 1, rng),
        NodeSpec::Minority => random_subset(nodes, minority_size(n), rng),
        NodeSpec::Majority => random_subset(nodes, majority_size(n), rng),
        NodeSpec::MinorityThird => random_subset(nodes, minority_third_size(n), rng),
        NodeSpec::All => nodes.to_vec(),
        NodeSpec::Primaries => {
            let ps = primaries_among(nodes, primaries);
            if ps.is_empty() {
                return Err(
                    "the target reports no primaries (no leader right now, or no probe)".into(),
                );
            }
            ps
        }
        NodeSpec::Named(names) => {
            for x in names {
                if !nodes.contains(x) {
                    return Err(format!(
                        "unknown node {x:?} (nodes are {})",
                        nodes.join(", ")
                    ));
                }
            }
            nodes
                .iter()
                .filter(|x| names.contains(x))
                .cloned()
                .collect()
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn five() -> Vec<String> {
        (1..=5).map(|i| format!("n{i}")).collect()
    }

    #[test]
    fn sizes_follow_jepsen_for_five_and_seven_nodes() {
        assert_eq!(
            (minority_size(5), majority_size(5), minority_third_size(5)),
            (2, 3, 1)
        );
        assert_eq!(
            (minority_size(7), majority_size(7), minority_third_size(7)),
            (3, 4, 2)
        );
        assert_eq!(
            (minority_size(1), majority_size(1), minority_third_size(1)),
            (1, 1, 1)
        );
    }

    #[test]
    fn selections_have_the_promised_sizes_and_no_duplicates() {
        let nodes = five();
        let mut rng = Rng::new(3);
        for (spec, k) in [
            (NodeSpec::One, 1),
            (NodeSpec::Minority, 2),
            (NodeSpec::Majority, 3),
            (NodeSpec::MinorityThird, 1),
            (NodeSpec::All, 5),
        ] {
            for _ in 0..50 {
                let s = select(&spec, &nodes, &[], &mut rng).unwrap();
                assert_eq!(s.len(), k, "{spec}");
                let mut d = s.clone();
                d.dedup();
                assert_eq!(d, s);
            }
        }
    }

    #[test]
    fn primaries_without_a_leader_is_an_error_not_an_empty_fault() {
        let mut rng = Rng::new(0);
        let e = select(&NodeSpec::Primaries, &five(), &[], &mut rng).unwrap_err();
        assert!(e.contains("no primaries"), "{e}");
        let s = select(&NodeSpec::Primaries, &five(), &["n4".into()], &mut rng).unwrap();
        assert_eq!(s, vec!["n4"]);
    }

    #[test]
    fn named_nodes_are_checked_against_the_cluster() {
        let mut rng = Rng::new(0);
        let spec = NodeSpec::parse("n3, n1").unwrap();
        assert_eq!(
            select(&spec, &five(), &[], &mut rng).unwrap(),
            vec!["n1", "n3"]
        );
        let e = select(&NodeSpec::parse("n9").unwrap(), &five(), &[], &mut rng).unwrap_err();
        assert!(e.contains("unknown node \"n9\""), "{e}");
        assert!(NodeSpec::parse(" ").is_err());
    }
}

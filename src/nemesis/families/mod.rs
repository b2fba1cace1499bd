//! The built-in fault families, each one module: [`partition`], [`packet`], [`pause`],
//! [`kill`], [`disk`] (six families: `lose-unsynced`, `torn-write`, `error`, `slow`, `full`,
//! `corrupt`), [`clock`]. [`builtin`] lists their registrations in heal order (a node's network
//! first, then its processes — resumed before restarted — then its disk, then its clock).
//!
//! What families share lives here: [`Targets`] (the `targets` option: node choices, their
//! default, the empty-list check and the draw), `Lock` (the lock a family's bookkeeping sits
//! behind) and `non_empty` (the empty-list check of any other list option).

pub mod clock;
pub mod disk;
pub mod kill;
pub mod packet;
pub mod partition;
pub mod pause;

use super::fault::FaultDef;
use super::select::NodeSpec;
use crate::generator::rng::Rng;
use serde::{Deserialize, Serialize};
use std::sync::{Mutex, MutexGuard};

/// Every built-in family, in heal order.
pub fn builtin() -> Vec<FaultDef> {
    let mut v = vec![partition::def(), packet::def(), pause::def(), kill::def()];
    v.extend(disk::defs());
    v.push(clock::def());
    v
}

/// Refuses an empty list in a family's options (`nemesis.opts.<family>.<key>`) as bad input.
pub(crate) fn non_empty<T>(family: &str, key: &str, list: &[T]) -> anyhow::Result<()> {
    if list.is_empty() {
        anyhow::bail!(crate::error::BadInput(format!(
            "nemesis.opts.{family}.{key}: the list is empty"
        )));
    }
    Ok(())
}

/// The node choices a family's faults draw from (`nemesis.opts.<family>.targets`: one,
/// minority, majority, all, primaries, or node names); by default one node, a minority, a
/// majority, all.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Targets(pub Vec<NodeSpec>);

impl Default for Targets {
    fn default() -> Self {
        Targets(vec![
            NodeSpec::One,
            NodeSpec::Minority,
            NodeSpec::Majority,
            NodeSpec::All,
        ])
    }
}

impl Targets {
    /// Refuses an empty list (`nemesis.opts.<family>.targets`) as bad input.
    pub(crate) fn check(&self, family: &str) -> anyhow::Result<()> {
        non_empty(family, "targets", &self.0)
    }

    /// One choice, drawn, as a request names it (`"majority"`); none from an empty list.
    pub fn draw(&self, rng: &mut Rng) -> Option<String> {
        rng.pick(&self.0).map(|t| t.to_string())
    }
}

/// A family's bookkeeping (the nodes it holds, what it found), behind a lock that a panicking
/// holder does not poison: the heal that follows must still read it.
#[derive(Default)]
pub(crate) struct Lock<T>(Mutex<T>);

impl<T> Lock<T> {
    pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn targets_are_written_as_a_plain_list() {
        assert_eq!(
            serde_json::to_value(Targets::default()).unwrap(),
            json!(["one", "minority", "majority", "all"])
        );
        let t: Targets = serde_json::from_value(json!(["primaries", "n1"])).unwrap();
        assert_eq!(t.0.len(), 2);
        let empty = Targets(Vec::new()).check("pause").unwrap_err();
        assert_eq!(
            empty.to_string(),
            "nemesis.opts.pause.targets: the list is empty"
        );
    }
}

//! The built-in fault families, each one module: [`partition`], [`packet`], [`pause`],
//! [`kill`], [`disk`] (six families: `lose-unsynced`, `torn-write`, `error`, `slow`, `full`,
//! `corrupt`), [`clock`]. [`builtin`] lists their registrations in heal order (a node's network
//! first, then its processes — resumed before restarted — then its disk, then its clock).

pub mod clock;
pub mod disk;
pub mod kill;
pub mod packet;
pub mod partition;
pub mod pause;

use super::fault::FaultDef;
use super::select::NodeSpec;

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

/// The node choices pause, kill and packet faults draw from by default.
pub(crate) fn default_targets() -> Vec<NodeSpec> {
    vec![
        NodeSpec::One,
        NodeSpec::Minority,
        NodeSpec::Majority,
        NodeSpec::All,
    ]
}

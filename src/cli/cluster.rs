//! `netsplit cluster` (to be written).

#[derive(Debug, clap::Args)]
pub struct ClusterArgs {}

pub fn run(_args: ClusterArgs) -> anyhow::Result<u8> {
    Err(crate::error::bad_input("netsplit cluster is not built yet"))
}

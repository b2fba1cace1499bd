//! `netsplit analyze` (to be written).

#[derive(Debug, clap::Args)]
pub struct AnalyzeArgs {}

pub fn run(_args: AnalyzeArgs) -> anyhow::Result<u8> {
    Err(crate::error::bad_input("netsplit analyze is not built yet"))
}

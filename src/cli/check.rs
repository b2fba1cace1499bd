//! `netsplit check` (to be written).

#[derive(Debug, clap::Args)]
pub struct CheckArgs {}

pub fn run(_args: CheckArgs) -> anyhow::Result<u8> {
    Err(crate::error::bad_input("netsplit check is not built yet"))
}

//! `netsplit exec` (to be written).

#[derive(Debug, clap::Args)]
pub struct ExecArgs {}

pub fn run(_args: ExecArgs) -> anyhow::Result<u8> {
    Err(crate::error::bad_input("netsplit exec is not built yet"))
}

//! `netsplit test` (to be written).

#[derive(Debug, clap::Args)]
pub struct TestArgs {}

pub fn run(_args: TestArgs) -> anyhow::Result<u8> {
    Err(crate::error::bad_input("netsplit test is not built yet"))
}

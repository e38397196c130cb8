//! `afregning connect`: the DataHub 3 connector.

use std::process::ExitCode;

use clap::Args as ClapArgs;

/// Arguments of `afregning connect`.
#[derive(Debug, ClapArgs)]
pub struct Args {}

/// Runs `afregning connect`.
pub async fn run(_args: Args) -> anyhow::Result<ExitCode> {
    Err(super::common::not_built("afregning connect", 5))
}

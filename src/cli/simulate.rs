//! `afregning simulate`: the DataHub 3 B2B simulator.

use std::process::ExitCode;

use clap::Args as ClapArgs;

/// Arguments of `afregning simulate`.
#[derive(Debug, ClapArgs)]
pub struct Args {}

/// Runs `afregning simulate`.
pub async fn run(_args: Args) -> anyhow::Result<ExitCode> {
    Err(super::common::not_built("afregning simulate", 5))
}

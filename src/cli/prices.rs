//! `afregning prices`: import spot prices.

use std::process::ExitCode;

use clap::Args as ClapArgs;

/// Arguments of `afregning prices`.
#[derive(Debug, ClapArgs)]
pub struct Args {}

/// Runs `afregning prices`.
pub async fn run(_args: Args) -> anyhow::Result<ExitCode> {
    Err(super::common::not_built("afregning prices", 7))
}

//! `afregning process`: run a stateful processor.

use std::process::ExitCode;

use clap::Args as ClapArgs;

/// Arguments of `afregning process`.
#[derive(Debug, ClapArgs)]
pub struct Args {}

/// Runs `afregning process`.
pub async fn run(_args: Args) -> anyhow::Result<ExitCode> {
    Err(super::common::not_built("afregning process", 7))
}

//! `afregning api`: the operator HTTP API.

use std::process::ExitCode;

use clap::Args as ClapArgs;

/// Arguments of `afregning api`.
#[derive(Debug, ClapArgs)]
pub struct Args {}

/// Runs `afregning api`.
pub async fn run(_args: Args) -> anyhow::Result<ExitCode> {
    Err(super::common::not_built("afregning api", 7))
}

//! `afregning replay`: replay a topic to recalculate.

use std::process::ExitCode;

use clap::Args as ClapArgs;

/// Arguments of `afregning replay`.
#[derive(Debug, ClapArgs)]
pub struct Args {}

/// Runs `afregning replay`.
pub async fn run(_args: Args) -> anyhow::Result<ExitCode> {
    Err(super::common::not_built("afregning replay", 7))
}

//! `afregning demo`: the whole pipeline on a local stack.

use std::process::ExitCode;

use clap::Args as ClapArgs;

/// Arguments of `afregning demo`.
#[derive(Debug, ClapArgs)]
pub struct Args {}

/// Runs `afregning demo`.
pub async fn run(_args: Args) -> anyhow::Result<ExitCode> {
    Err(super::common::not_built("afregning demo", 2))
}

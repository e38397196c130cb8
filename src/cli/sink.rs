//! `afregning sink`: the database and ERP sinks.

use std::process::ExitCode;

use clap::Args as ClapArgs;

/// Arguments of `afregning sink`.
#[derive(Debug, ClapArgs)]
pub struct Args {}

/// Runs `afregning sink`.
pub async fn run(_args: Args) -> anyhow::Result<ExitCode> {
    Err(super::common::not_built("afregning sink", 8))
}

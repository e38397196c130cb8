//! `afregning cim`: validate and convert CIM JSON documents.

use std::process::ExitCode;

use clap::Args as ClapArgs;

/// Arguments of `afregning cim`.
#[derive(Debug, ClapArgs)]
pub struct Args {}

/// Runs `afregning cim`.
pub async fn run(_args: Args) -> anyhow::Result<ExitCode> {
    Err(super::common::not_built("afregning cim", 3))
}

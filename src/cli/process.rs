//! `afregning process`: the stateful processors (`afregning-processors`).
//!
//! The runtime is built (docs/processors-runtime.md); the four processors are
//! not wired to this command yet (issue 7), so `run` refuses with that reason
//! instead of pretending to work.

use std::process::ExitCode;

use clap::{Args as ClapArgs, Subcommand, ValueEnum};

/// Arguments of `afregning process`.
#[derive(Debug, ClapArgs)]
pub struct Args {
    /// What to do.
    #[command(subcommand)]
    pub command: ProcessCommand,
}

/// The process subcommands.
#[derive(Debug, Subcommand)]
pub enum ProcessCommand {
    /// Run one processor until SIGINT/SIGTERM.
    Run {
        /// Which processor.
        #[arg(value_enum)]
        processor: Which,
    },
}

/// The processors, in data-flow order.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Which {
    /// Raw DataHub messages to typed topics; dead letters with reasons.
    Validate,
    /// Readings joined with master data, keyed by GSRN, partitioned by grid area.
    Enrich,
    /// Per metering point and local day: positions, tariff periods, completeness.
    Aggregate,
    /// Per metering point and month: provisional lines and final statements.
    Settle,
}

/// Runs `afregning process`.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        ProcessCommand::Run { processor } => Err(super::common::not_built(
            &format!("afregning process run {processor:?}").to_lowercase(),
            7,
        )),
    }
}

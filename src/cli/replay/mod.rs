//! `afregning replay`: recalculate chosen partitions of a running processor
//! from an offset or a time, without stopping anything, and record what changed
//! (issue 14, decision 0090, docs/replay.md).
//!
//! - `start` resolves grid areas to partitions and times to offsets, records
//!   the run in PostgreSQL (`replay_run`), writes the request the processor's
//!   tasks act on, follows their reports with a progress bar (or progress
//!   logs off a terminal) and stores the summary;
//! - `status [ID]` lists runs or shows one;
//! - `resume ID` follows an interrupted run to its end (the processors never
//!   stopped: only the watching did);
//! - `dead-letters` re-submits resolved dead letters to where they came from.

mod dead_letters;
mod runs;
mod start;

use std::process::ExitCode;

use clap::{Args as ClapArgs, Subcommand};

use super::common::StackArgs;

/// Arguments of `afregning replay`.
#[derive(Debug, ClapArgs)]
pub struct Args {
    /// What to do.
    #[command(subcommand)]
    pub command: ReplayCommand,
}

/// The replay subcommands.
#[derive(Debug, Subcommand)]
pub enum ReplayCommand {
    /// Rewind a processor's inputs for chosen partitions and recalculate.
    Start(start::StartArgs),
    /// List replay runs, or show one.
    Status {
        /// The run to show (all, newest first, when left out).
        id: Option<String>,
        /// Print the run as JSON.
        #[arg(long)]
        json: bool,
        /// Where the stack is.
        #[command(flatten)]
        stack: StackArgs,
    },
    /// Follow an interrupted run to its end.
    Resume(start::ResumeArgs),
    /// Re-submit resolved dead letters to the topic they came from.
    DeadLetters(dead_letters::DeadLetterArgs),
}

/// Runs `afregning replay`.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        ReplayCommand::Start(args) => start::start(args).await,
        ReplayCommand::Resume(args) => start::resume(args).await,
        ReplayCommand::Status { id, json, stack } => {
            runs::status(&stack, id.as_deref(), json).await
        }
        ReplayCommand::DeadLetters(args) => dead_letters::run(args).await,
    }
}

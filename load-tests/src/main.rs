//! Load tests: bounded, loopback-only scenarios that print figures.
//!
//! Every scenario runs in this one process against loopback services (the in-process DataHub
//! simulator, the shared local broker that `afregning-testkit` starts or reuses), is bounded
//! in count (flags with upper limits) and in time (`--max-seconds`), and prints a table with a
//! baseline measured in the same run, so a figure never stands without its reference.
//!
//! ```text
//! cargo run -p afregning-load-tests --release -- timeseries --metering-points 80000
//! ```
//!
//! Scenarios:
//! - `timeseries` ([`timeseries`]): the connector draining the Timeseries queue at a
//!   metering-point count's daily volume; peek-to-dequeue cycle latency and throughput, against
//!   the bare peek → dequeue loop. Figures: `connect/BENCHMARKS.md`.

mod stats;
mod timeseries;

use clap::{Parser, Subcommand};

/// The command line: one subcommand per scenario, so each keeps its own bounded flags.
#[derive(Debug, Parser)]
#[command(about = "Bounded, loopback-only load tests that print figures")]
struct Cli {
    #[command(subcommand)]
    scenario: Scenario,
}

/// The scenarios.
#[derive(Debug, Subcommand)]
enum Scenario {
    /// The connector on the Timeseries queue: peek-to-dequeue latency and messages/s.
    Timeseries(timeseries::Args),
}

fn main() -> anyhow::Result<()> {
    // Warnings only by default: the tables on stdout are the output; RUST_LOG overrides.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,rdkafka=error")),
        )
        .with_writer(std::io::stderr)
        .try_init();
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.scenario {
        Scenario::Timeseries(args) => runtime.block_on(timeseries::run(args)),
    }
}

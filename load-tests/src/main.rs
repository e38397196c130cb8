//! Load tests: bounded, loopback-only scenarios that print figures.
//!
//! Every scenario runs in this one process against loopback services (the in-process DataHub
//! simulator, the shared local broker that `afregning-testkit` starts or reuses), is bounded
//! in count (flags with upper limits) and in time (`--max-seconds`), and prints a table with a
//! baseline measured in the same run, so a figure never stands without its reference.
//!
//! ```text
//! cargo run -p afregning-load-tests --release -- timeseries --metering-points 80000
//! cargo run -p afregning-load-tests --release -- month --metering-points 500
//! cargo run -p afregning-load-tests --release -- day --metering-points 80000
//! ```
//!
//! Scenarios:
//! - `month` ([`month`]): a month of N PT15M metering points from the raw topic through
//!   validate, enrich, aggregate and settle (child processes) on the local broker, with the
//!   seed design's batch settlement in PostgreSQL on the same month as the baseline; wall
//!   time, values/s and series/s per processor, state and changelog bytes, peak RSS, the
//!   last-day latency and CPU ratios, totals checked three ways; with `--replay settle`, the
//!   month recalculated by replay afterwards (issue 14). Figures: `BENCHMARKS.md`.
//! - `day` ([`day`]): a day of N PT15M metering points from the simulator through the
//!   connector, the four processors and the PostgreSQL sink (child processes), with a
//!   correction storm while it runs; wall time from the first peek to the last sink commit,
//!   values/s and series/s per stage, raw-to-provisional latency under load, the storm's
//!   completion, peak RSS per process, the database's size; every value and provisional total
//!   checked against the ground truth and the pure engine.
//! - `timeseries` ([`timeseries`]): the connector draining the Timeseries queue at a
//!   metering-point count's daily volume; peek-to-dequeue cycle latency and throughput, against
//!   the bare peek → dequeue loop. Figures: `connect/BENCHMARKS.md`.

mod day;
mod figures;
mod month;
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
    /// A month through the four processors on the broker, against the batch SQL baseline.
    Month(month::Args),
    /// A day of N metering points from DataHub into PostgreSQL, with a correction storm.
    Day(day::Args),
    /// One processor as a child process of `month` (internal).
    #[command(hide = true)]
    Processor(month::child::ChildArgs),
    /// The database sink as a child process of `day` (internal).
    #[command(hide = true)]
    Sink(day::sink::SinkArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // Warnings only by default: the tables on stdout are the output; RUST_LOG overrides. The
    // month scenario reads topics to their ends with `enable.partition.eof`, which librdkafka
    // reports as a global error per partition, so its rdkafka logs are off, and so are sqlx's
    // slow-statement warnings (the batch baseline's SQL is slow by design).
    let default_filter = match cli.scenario {
        Scenario::Month(_) | Scenario::Day(_) => "warn,rdkafka=off,sqlx=error",
        _ => "warn,rdkafka=error",
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter)),
        )
        .with_writer(std::io::stderr)
        .try_init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.scenario {
        Scenario::Timeseries(args) => runtime.block_on(timeseries::run(args)),
        Scenario::Month(args) => runtime.block_on(month::run(args)),
        Scenario::Processor(args) => runtime.block_on(month::child::run(args)),
        Scenario::Sink(args) => runtime.block_on(day::sink::run(args)),
        Scenario::Day(args) => runtime.block_on(day::run(args)),
    }
}

//! Command-line definitions: one module per subcommand.

mod api;
mod cim;
mod common;
mod conformance;
mod connect;
mod demo;
mod portfolio;
mod prices;
mod process;
mod reconcile;
mod replay;
mod schema_registry;
mod simulate;
mod sink;
mod topology;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::telemetry::LogFormat;

/// Settlement for a Danish electricity supplier on DataHub 3, as a stream-processing pipeline on Kafka.
#[derive(Debug, Parser)]
#[command(name = "afregning", version, about, propagate_version = true)]
pub struct Cli {
    /// Log format on stderr.
    #[arg(
        long,
        global = true,
        value_enum,
        default_value_t,
        env = "AFREGNING_LOG_FORMAT"
    )]
    pub log_format: LogFormat,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands, in the order data flows through the system.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create and verify topics and Avro schemas; describe the topology.
    Topology(topology::Args),
    /// Run the DataHub 3 connector (queue pollers, outbound requests, spot prices).
    Connect(connect::Args),
    /// Run a stateful processor (validate, enrich, aggregate, settle) or inspect its state.
    Process(process::Args),
    /// Run a sink (TimescaleDB/PostgreSQL, ERP) or apply database migrations.
    Sink(sink::Args),
    /// Request DataHub business processes for our portfolio (move-in, change of supplier, end of supply).
    Portfolio(portfolio::Args),
    /// Reconcile our settlement with DataHub's wholesale results; report a month's discrepancies.
    Reconcile(reconcile::Args),
    /// Replay a topic from an offset or a time so that results are recalculated.
    Replay(replay::Args),
    /// Serve the operator HTTP API.
    Api(api::Args),
    /// Serve a DataHub 3 B2B API simulator with a generated scenario.
    Simulate(simulate::Args),
    /// Run the whole pipeline end to end on a local stack and print a summary.
    Demo(demo::Args),
    /// Validate or convert CIM JSON documents.
    Cim(cim::Args),
    /// Check the settlement engine against Energinet's own scenario tests.
    Conformance(conformance::Args),
    /// Serve a Confluent-compatible schema registry backed by PostgreSQL.
    SchemaRegistry(schema_registry::Args),
    /// Import spot prices from a file.
    Prices(prices::Args),
}

/// Runs one subcommand; the exit code is the command's verdict (0 ok, 1 a finding, 2 an error).
pub async fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Topology(args) => topology::run(args).await,
        Command::Connect(args) => connect::run(args).await,
        Command::Process(args) => process::run(args).await,
        Command::Sink(args) => sink::run(args).await,
        Command::Portfolio(args) => portfolio::run(args).await,
        Command::Reconcile(args) => reconcile::run(args).await,
        Command::Replay(args) => replay::run(args).await,
        Command::Api(args) => api::run(args).await,
        Command::Simulate(args) => simulate::run(args).await,
        Command::Demo(args) => demo::run(args).await,
        Command::Cim(args) => cim::run(args).await,
        Command::Conformance(args) => conformance::run(args).await,
        Command::SchemaRegistry(args) => schema_registry::run(args).await,
        Command::Prices(args) => prices::run(args).await,
    }
}

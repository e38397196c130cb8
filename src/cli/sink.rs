//! `afregning sink`: the PostgreSQL/TimescaleDB and ERP sinks (`afregning-sinks`).
//!
//! `migrate` applies the embedded migrations and the storage plan of
//! `metering_data` (hypertable where TimescaleDB exists, monthly partitions
//! where not); `run timescale|erp` runs a sink until SIGINT/SIGTERM, serving
//! `/health`, `/ready` and `/metrics` on the admin address.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use afregning_sinks::{RunMode, SinkConfig, SinkStatus};
use anyhow::Context;
use clap::{Args as ClapArgs, Subcommand, ValueEnum};

use super::common::StackArgs;

/// Arguments of `afregning sink`.
#[derive(Debug, ClapArgs)]
pub struct Args {
    /// What to do.
    #[command(subcommand)]
    pub command: SinkCommand,
}

/// The sink subcommands.
#[derive(Debug, Subcommand)]
pub enum SinkCommand {
    /// Apply the database migrations and create the coming months' partitions, then exit.
    Migrate {
        /// Shared settings.
        #[command(flatten)]
        common: CommonArgs,
    },
    /// Run a sink until SIGINT/SIGTERM (it migrates first, waiting for the database).
    Run {
        /// Which sink.
        #[arg(value_enum)]
        sink: Which,
        /// Where /health, /ready and /metrics are served.
        #[arg(
            long,
            env = "AFREGNING_SINK_ADMIN_LISTEN",
            default_value = "127.0.0.1:9100"
        )]
        admin_listen: SocketAddr,
        /// Shared settings.
        #[command(flatten)]
        common: CommonArgs,
    },
}

/// Which sink to run.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Which {
    /// Typed and settlement topics into PostgreSQL/TimescaleDB tables.
    Timescale,
    /// Final statements to the ERP topic, once each.
    Erp,
}

/// Settings shared by the sink subcommands.
#[derive(Debug, Clone, ClapArgs)]
pub struct CommonArgs {
    /// Topic prefix of the deployment (the topology's prefix).
    #[arg(long, env = "AFREGNING_TOPIC_PREFIX", default_value = "")]
    pub topic_prefix: String,
    /// Partitions per topic, as `afregning topology apply` created them.
    #[arg(long, env = "AFREGNING_TOPIC_PARTITIONS", default_value_t = afregning_topology::settings::DEFAULT_PARTITIONS)]
    pub partitions: u32,
    /// Flush a batch once it holds this many rows.
    #[arg(long, env = "AFREGNING_SINK_BATCH_MAX_ROWS")]
    pub batch_max_rows: Option<usize>,
    /// Flush a non-empty batch this many ms after its first record.
    #[arg(long, env = "AFREGNING_SINK_FLUSH_INTERVAL_MS")]
    pub flush_interval_ms: Option<u64>,
    /// Writer lanes of the database sink (each owns a share of the partitions and
    /// writes its own batches; the ERP sink always runs one).
    #[arg(long, env = "AFREGNING_SINK_WRITERS", value_parser = clap::value_parser!(u32).range(1..=64))]
    pub writers: Option<u32>,
    /// Where the broker, the schema registry and the database are.
    #[command(flatten)]
    pub stack: StackArgs,
}

impl CommonArgs {
    fn config(&self) -> SinkConfig {
        let mut config = SinkConfig {
            bootstrap_servers: self.stack.bootstrap_servers.clone(),
            schema_registry_url: self.stack.schema_registry_url.clone(),
            database_url: self.stack.database_url.clone(),
            topic_prefix: self.topic_prefix.clone(),
            partitions: self.partitions,
            ..SinkConfig::default()
        };
        if let Some(rows) = self.batch_max_rows {
            config.batch_max_rows = rows;
        }
        if let Some(ms) = self.flush_interval_ms {
            config.flush_interval_ms = ms;
        }
        if let Some(writers) = self.writers {
            config.writers = writers;
        }
        config
    }
}

/// Runs `afregning sink`.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        SinkCommand::Migrate { common } => {
            let report = afregning_sinks::migrate(&common.config())
                .await
                .context("migrating the database")?;
            println!("{report:#?}");
            Ok(ExitCode::SUCCESS)
        }
        SinkCommand::Run {
            sink,
            admin_listen,
            common,
        } => {
            let config = common.config();
            let status = Arc::new(SinkStatus::default());
            let router =
                afregning_sinks::admin::router(Arc::clone(&status), crate::telemetry::prometheus());
            let listener = tokio::net::TcpListener::bind(admin_listen)
                .await
                .with_context(|| format!("cannot listen on {admin_listen}"))?;
            let admin = tokio::spawn(async move { axum::serve(listener, router).await });
            let shutdown = super::common::shutdown_signal();
            let run = match sink {
                Which::Timescale => {
                    afregning_sinks::run_timescale(&config, RunMode::Continuous, status, shutdown)
                        .await
                }
                Which::Erp => {
                    afregning_sinks::run_erp(&config, RunMode::Continuous, status, shutdown).await
                }
            };
            admin.abort();
            let run = run.context("running the sink")?;
            tracing::info!(consumer = %run.consumer, report = ?run.report, "sink stopped");
            Ok(ExitCode::SUCCESS)
        }
    }
}

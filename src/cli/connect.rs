//! `afregning connect`: the DataHub 3 connector.
//!
//! - `afregning connect run`: the four queue pollers (peek → produce to the raw topics →
//!   dequeue), the outbound sender and `/health` + `/metrics` on the admin port (9100).
//! - `afregning connect spot-prices`: day-ahead prices from Energi Data Service (or the
//!   simulator) onto the spot-price topic, with the same admin endpoints.
//!
//! Settings come from a JSON file (`--config`, the `ConnectConfig` of `afregning-connect`,
//! unknown keys refused) and are overridden by flags and environment variables. The client
//! secret is read from `DATAHUB_CLIENT_SECRET` only (never a flag, never logged). See
//! `docs/connect.md`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use afregning_connect::Connector;
use afregning_connect::config::{ConnectConfig, KafkaConfig, QueueConfig, QueuesConfig, Secret};
use afregning_connect::spot_prices::SpotPricesConfig;
use anyhow::Context;
use chrono::NaiveDate;
use clap::{Args as ClapArgs, Subcommand};
use tokio::sync::watch;

use super::common::StackArgs;
use super::prices::topology_settings;
use super::topology::SettingsArgs;

/// Arguments of `afregning connect`.
#[derive(Debug, ClapArgs)]
pub struct Args {
    /// What to run.
    #[command(subcommand)]
    pub command: ConnectCommand,
}

/// The connector's commands.
#[derive(Debug, Subcommand)]
pub enum ConnectCommand {
    /// Poll DataHub's queues, publish to the raw topics, send outbound requests.
    Run(RunArgs),
    /// Poll day-ahead spot prices and publish them to the spot-price topic.
    SpotPrices(SpotPricesArgs),
}

/// Arguments of `afregning connect run`.
#[derive(Debug, ClapArgs)]
pub struct RunArgs {
    /// A JSON file with the connector's configuration; flags and environment override it.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// DataHub B2B base URL.
    #[arg(long, env = "DATAHUB_BASE_URL")]
    pub base_url: Option<String>,
    /// OAuth2 token URL.
    #[arg(long, env = "DATAHUB_TOKEN_URL")]
    pub token_url: Option<String>,
    /// OAuth2 client id (the secret comes from DATAHUB_CLIENT_SECRET).
    #[arg(long, env = "DATAHUB_CLIENT_ID")]
    pub client_id: Option<String>,
    /// OAuth2 scope (`{backend-app-id}/.default`).
    #[arg(long, env = "DATAHUB_SCOPE")]
    pub scope: Option<String>,
    /// Requests per second to DataHub, all queues together.
    #[arg(long, env = "DATAHUB_REQUESTS_PER_SECOND")]
    pub requests_per_second: Option<u32>,
    /// Idle poll interval after an empty queue, ms (doubles up to --idle-max-ms).
    #[arg(long)]
    pub idle_interval_ms: Option<u64>,
    /// Longest idle poll interval, ms.
    #[arg(long)]
    pub idle_max_ms: Option<u64>,
    /// Directory of the inbound-message log.
    #[arg(long, env = "AFREGNING_INBOUND_LOG_DIR")]
    pub inbound_log_dir: Option<PathBuf>,
    /// Days of inbound log kept (0: forever).
    #[arg(long, env = "AFREGNING_INBOUND_LOG_RETENTION_DAYS")]
    pub inbound_log_retention_days: Option<u32>,
    /// Where /health and /metrics are served.
    #[arg(long, env = "AFREGNING_ADMIN_LISTEN")]
    pub admin_listen: Option<SocketAddr>,
    /// Do not consume the outbound-requests topic.
    #[arg(long)]
    pub no_outbound: bool,
    /// Where the broker and registry are.
    #[command(flatten)]
    pub stack: StackArgs,
    /// Deployment settings (topic prefix, partitions).
    #[command(flatten)]
    pub settings: SettingsArgs,
}

/// Arguments of `afregning connect spot-prices`.
#[derive(Debug, ClapArgs)]
pub struct SpotPricesArgs {
    /// The dataset URL (Energi Data Service's DayAheadPrices, or the simulator's).
    #[arg(
        long,
        env = "SPOT_PRICES_URL",
        default_value = "https://api.energidataservice.dk/dataset/DayAheadPrices"
    )]
    pub url: String,
    /// Bidding zones.
    #[arg(long, value_delimiter = ',', default_value = "DK1,DK2")]
    pub areas: Vec<String>,
    /// Poll interval in seconds.
    #[arg(long, default_value_t = 900)]
    pub interval_secs: u64,
    /// First local day to fetch (default: yesterday).
    #[arg(long)]
    pub start: Option<NaiveDate>,
    /// Local day after the last one to fetch (default: the day after tomorrow).
    #[arg(long)]
    pub end: Option<NaiveDate>,
    /// Fetch and publish once, then exit.
    #[arg(long)]
    pub once: bool,
    /// Where /health and /metrics are served.
    #[arg(long, env = "AFREGNING_ADMIN_LISTEN", default_value = "0.0.0.0:9100")]
    pub admin_listen: SocketAddr,
    /// Where the broker and registry are.
    #[command(flatten)]
    pub stack: StackArgs,
    /// Deployment settings (topic prefix, partitions).
    #[command(flatten)]
    pub settings: SettingsArgs,
}

fn connect_config(args: RunArgs) -> anyhow::Result<ConnectConfig> {
    let mut config: ConnectConfig = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?
        }
        None => ConnectConfig::default(),
    };
    if let Some(v) = args.base_url {
        config.datahub.base_url = v;
    }
    if let Some(v) = args.token_url {
        config.datahub.token_url = v;
    }
    if let Some(v) = args.client_id {
        config.datahub.client_id = v;
    }
    if let Ok(secret) = std::env::var("DATAHUB_CLIENT_SECRET") {
        config.datahub.client_secret = Secret::new(secret);
    }
    if let Some(v) = args.scope {
        config.datahub.scope = v;
    }
    if let Some(v) = args.requests_per_second {
        config.requests_per_second = v;
    }
    if args.idle_interval_ms.is_some() || args.idle_max_ms.is_some() {
        let base = config.queues.timeseries;
        config.queues = QueuesConfig::all(QueueConfig::every(
            args.idle_interval_ms.unwrap_or(base.idle_interval_ms),
            args.idle_max_ms.unwrap_or(base.idle_max_ms),
        ));
    }
    if let Some(v) = args.inbound_log_dir {
        config.inbound_log.dir = v;
    }
    if let Some(v) = args.inbound_log_retention_days {
        config.inbound_log.retention_days = v;
    }
    if let Some(v) = args.admin_listen {
        config.admin_listen = v;
    }
    if args.no_outbound {
        config.outbound.enabled = false;
    }
    config.kafka.bootstrap_servers = args.stack.bootstrap_servers;
    config.kafka.schema_registry_url = args.stack.schema_registry_url;
    config.kafka.topology = topology_settings(&args.settings);
    Ok(config)
}

/// Runs `afregning connect`.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        ConnectCommand::Run(args) => {
            let config = connect_config(args)?;
            Connector::new(config)
                .run(super::common::shutdown_signal())
                .await
                .context("running the connector")?;
            Ok(ExitCode::SUCCESS)
        }
        ConnectCommand::SpotPrices(args) => {
            let config = SpotPricesConfig {
                url: args.url,
                areas: args.areas,
                interval_ms: args.interval_secs.saturating_mul(1000),
                start: args.start,
                end: args.end,
                once: args.once,
                admin_listen: args.admin_listen,
                kafka: KafkaConfig {
                    bootstrap_servers: args.stack.bootstrap_servers,
                    schema_registry_url: args.stack.schema_registry_url,
                    topology: topology_settings(&args.settings),
                    ..KafkaConfig::default()
                },
                ..SpotPricesConfig::default()
            };
            let (stop, stop_rx) = watch::channel(false);
            let poller = tokio::spawn(afregning_connect::spot_prices::run(config, stop_rx));
            tokio::pin!(poller);
            tokio::select! {
                result = &mut poller => result.context("spot-price task")??,
                () = super::common::shutdown_signal() => {
                    let _ = stop.send(true);
                    poller.await.context("spot-price task")??;
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

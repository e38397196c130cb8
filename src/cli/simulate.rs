//! `afregning simulate`: the DataHub 3 B2B simulator.
//!
//! Serves a generated scenario on DataHub's B2B routes, its OAuth2 token endpoint, an Energi
//! Data Service–compatible spot-price endpoint and an admin API (ground truth, events,
//! faults). Everything is reproducible from the seed. See `docs/simulator.md`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use afregning_simulator::{FaultConfig, Simulator, SimulatorConfig};
use anyhow::Context;
use chrono::NaiveDate;
use clap::Args as ClapArgs;

/// Arguments of `afregning simulate`.
#[derive(Debug, ClapArgs)]
pub struct Args {
    /// Address to serve on.
    #[arg(long, env = "SIMULATOR_LISTEN", default_value = "127.0.0.1:8090")]
    pub listen: SocketAddr,
    /// A JSON file with the whole configuration (`scenario`, `faults`, `auth`,
    /// `scenario_now`, `time_scale`; unknown keys are refused). Flags override it.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Seed of the scenario (same seed, same scenario).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Number of metering points.
    #[arg(long)]
    pub metering_points: Option<u32>,
    /// First local day of metered data (YYYY-MM-DD).
    #[arg(long)]
    pub first_day: Option<NaiveDate>,
    /// Number of local days.
    #[arg(long)]
    pub days: Option<u32>,
    /// Series per RSM-012 bundle (DataHub: up to 2000).
    #[arg(long)]
    pub bundle_series: Option<u32>,
    /// Switch every rate-based fault on at this rate (0..1).
    #[arg(long)]
    pub fault_rate: Option<f64>,
    /// Accepted OAuth2 client id.
    #[arg(long, env = "DATAHUB_CLIENT_ID")]
    pub client_id: Option<String>,
    /// Token lifetime in seconds.
    #[arg(long)]
    pub token_lifetime_secs: Option<u64>,
}

/// Runs `afregning simulate`.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut config: SimulatorConfig = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?
        }
        None => SimulatorConfig::default(),
    };
    let scenario = &mut config.scenario;
    if let Some(seed) = args.seed {
        scenario.seed = seed;
    }
    if let Some(n) = args.metering_points {
        scenario.metering_points = n;
    }
    if let Some(day) = args.first_day {
        scenario.first_day = day;
    }
    if let Some(days) = args.days {
        scenario.days = days;
    }
    if let Some(n) = args.bundle_series {
        scenario.bundle_series = n;
    }
    if let Some(rate) = args.fault_rate {
        config.faults = FaultConfig::every_fault(rate);
    }
    if let Some(id) = args.client_id {
        config.auth.client_id = id;
    }
    // The secret only from the environment (a flag would show in `ps`).
    if let Ok(secret) = std::env::var("DATAHUB_CLIENT_SECRET") {
        config.auth.client_secret = secret;
    }
    if let Some(secs) = args.token_lifetime_secs {
        config.auth.token_lifetime_secs = secs;
    }
    let started = std::time::Instant::now();
    let simulator = Simulator::new(config).context("generating the scenario")?;
    let truth = simulator.handle().ground_truth();
    tracing::info!(
        metering_points = truth.metering_points.len(),
        days = truth.days,
        messages = truth.messages.len(),
        seconds = started.elapsed().as_secs_f64(),
        "scenario generated"
    );
    let running = simulator
        .serve(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    eprintln!(
        "DataHub simulator on {} (token URL {}, spot prices {}); Ctrl-C stops it",
        running.url,
        running.token_url(),
        running.spot_prices_url()
    );
    super::common::shutdown_signal().await;
    running.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

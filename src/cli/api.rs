//! `afregning api`: the operator HTTP API over the sinks' tables
//! (`afregning-api`; routes listed in its crate docs and in docs/api.md).

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use afregning_api::AppState;
use anyhow::Context;
use clap::Args as ClapArgs;

/// Arguments of `afregning api`.
#[derive(Debug, ClapArgs)]
pub struct Args {
    /// Address to serve the API (and its /health and /metrics) on.
    #[arg(long, env = "AFREGNING_API_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// PostgreSQL URL of the database the sinks write.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres"
    )]
    pub database_url: String,
    /// Most database connections the API holds.
    #[arg(long, env = "AFREGNING_API_MAX_CONNECTIONS", default_value_t = 8)]
    pub max_connections: u32,
}

/// Runs `afregning api` until SIGINT/SIGTERM.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    // Lazy: the API starts (and answers /health with 503) while the database
    // is still coming up, instead of failing its container.
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(args.max_connections)
        .acquire_timeout(Duration::from_secs(5))
        .connect_lazy(&args.database_url)
        .context("DATABASE_URL is not a PostgreSQL URL")?;
    let state = AppState {
        pool: pool.clone(),
        render_metrics: crate::telemetry::prometheus(),
    };
    let api = afregning_api::spawn(state, args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    eprintln!("operator API on http://{}", api.addr);
    super::common::shutdown_signal().await;
    api.shutdown().await.context("stopping the API server")?;
    pool.close().await;
    Ok(ExitCode::SUCCESS)
}

//! `afregning schema-registry`: a Confluent-compatible schema registry backed by
//! PostgreSQL, for environments without Confluent SR, Karapace, Apicurio or
//! Redpanda. Production should use one of those; see
//! `docs/decisions/0002-schema-registry.md`.

use std::net::SocketAddr;
use std::process::ExitCode;

use afregning_schema_registry::{RegistryConfig, spawn};
use anyhow::Context;
use clap::Args as ClapArgs;

/// Arguments of `afregning schema-registry`.
#[derive(Debug, ClapArgs)]
pub struct Args {
    /// Address to listen on.
    #[arg(long, env = "SCHEMA_REGISTRY_LISTEN", default_value = "127.0.0.1:8081")]
    pub listen: SocketAddr,
    /// PostgreSQL URL where schemas are stored (ids survive restarts).
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: String,
    /// PostgreSQL schema (namespace) for the registry's tables.
    #[arg(long, default_value = "schema_registry")]
    pub db_schema: String,
}

/// Serves until SIGINT or SIGTERM.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let config = RegistryConfig {
        database_url: args.database_url,
        db_schema: args.db_schema,
    };
    let registry = spawn(config, args.listen)
        .await
        .context("starting the schema registry")?;
    println!("schema registry listening on {}", registry.url);
    super::common::shutdown_signal().await;
    tracing::info!("shutting down the schema registry");
    registry.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

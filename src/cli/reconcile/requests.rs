//! `afregning reconcile request` and `afregning reconcile relay`: asking DataHub for its
//! results again (RSM-016, RSM-017) and following each request to its answer, the same way
//! as the API's `POST /v1/datahub-requests` (`afregning_api::datahub_requests`).

use std::process::ExitCode;
use std::time::Duration;

use afregning_api::datahub_requests::document::{self, RequestIds, RequestSpec, RequestedData};
use afregning_api::datahub_requests::relay::{Relay, RelayConfig};
use afregning_api::datahub_requests::store;
use afregning_topology::Codec;
use afregning_topology::settings::TopologySettings;
use anyhow::Context;
use chrono::{NaiveDate, Utc};
use clap::{Args as ClapArgs, ValueEnum};

use crate::cli::common::StackArgs;

/// Which results to ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DataArg {
    /// RSM-016, answered with RSM-014: energy per metering point type and settlement method.
    AggregatedMeasureData,
    /// RSM-017, answered with RSM-019: amounts per charge, monthly amounts, totals.
    WholesaleSettlement,
}

/// Arguments of `afregning reconcile request`.
#[derive(Debug, ClapArgs)]
pub struct RequestArgs {
    /// Which results.
    #[arg(long, value_enum)]
    pub data: DataArg,
    /// The month, YYYY-MM (over, and at most 3 years and 6 months back).
    #[arg(long, value_parser = super::parse_month)]
    pub month: NaiveDate,
    /// The grid area (3 digits).
    #[arg(long, value_parser = super::parse_grid_area)]
    pub grid_area: String,
    /// The calculation type: D03, D04, D05 (wholesale fixing) or D32 (correction).
    #[arg(long, default_value = "D05")]
    pub business_reason: String,
    /// With D32: the correction round, D01-D03.
    #[arg(long)]
    pub settlement_version: Option<String>,
    /// Wholesale settlement only: one charge owner's results (GLN).
    #[arg(long)]
    pub charge_owner: Option<String>,
    /// Our GLN: the sender, whose own data is asked for.
    #[arg(long, env = "AFREGNING_SUPPLIER_GLN")]
    pub supplier_gln: String,
    /// Why (recorded with the request).
    #[arg(long)]
    pub reason: String,
    /// Who asks (recorded with the request).
    #[arg(long, env = "USER")]
    pub requested_by: String,
    /// PostgreSQL connection URL.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres"
    )]
    pub database_url: String,
}

/// Arguments of `afregning reconcile relay`.
#[derive(Debug, ClapArgs)]
pub struct RelayArgs {
    /// Topic prefix of the deployment.
    #[arg(long, env = "AFREGNING_TOPIC_PREFIX", default_value = "")]
    pub topic_prefix: String,
    /// Partitions per topic, as `afregning topology apply` created them.
    #[arg(long, env = "AFREGNING_TOPIC_PARTITIONS", default_value_t = afregning_topology::settings::DEFAULT_PARTITIONS)]
    pub partitions: u32,
    /// How often pending requests are looked for (milliseconds).
    #[arg(long, default_value_t = 1000)]
    pub publish_interval_ms: u64,
    /// Where /health (the relay runs) and /metrics are served.
    #[arg(
        long,
        env = "AFREGNING_PROCESSOR_ADMIN_LISTEN",
        default_value = "127.0.0.1:9200"
    )]
    pub admin_listen: std::net::SocketAddr,
    /// Broker, registry and database.
    #[command(flatten)]
    pub stack: StackArgs,
}

/// Records the request as pending and prints its ids; `reconcile relay` sends it.
pub async fn request(args: RequestArgs) -> anyhow::Result<ExitCode> {
    use sqlx::Connection;
    let spec = RequestSpec {
        data: match args.data {
            DataArg::AggregatedMeasureData => RequestedData::AggregatedMeasureData,
            DataArg::WholesaleSettlement => RequestedData::WholesaleSettlement,
        },
        business_reason: args.business_reason,
        settlement_version: args.settlement_version,
        grid_area: args.grid_area,
        month: args.month,
        supplier_gln: args.supplier_gln,
        charge_owner_gln: args.charge_owner,
    };
    let now = Utc::now();
    let today = afregning_settlement::calendar::local_date(now);
    document::check(&spec, today).map_err(anyhow::Error::msg)?;
    anyhow::ensure!(!args.reason.trim().is_empty(), "--reason must say why");
    let ids = RequestIds::new();
    let (_, cim) = document::document(&spec, &ids, chrono::SubsecRound::trunc_subsecs(now, 0));
    let mut conn = sqlx::PgConnection::connect(&args.database_url)
        .await
        .context("connecting to the database (--database-url / DATABASE_URL)")?;
    let stored = store::record(
        &mut conn,
        &spec,
        &ids,
        &cim,
        &args.requested_by,
        args.reason.trim(),
    )
    .await
    .context("recording the request (has `afregning sink migrate` run?)")?;
    println!("{}", serde_json::to_string_pretty(&stored)?);
    eprintln!(
        "request {} recorded as pending; `afregning reconcile relay` sends it and records DataHub's answer",
        stored.request_id
    );
    Ok(ExitCode::SUCCESS)
}

/// Runs the relay until SIGINT/SIGTERM.
pub async fn relay(args: RelayArgs) -> anyhow::Result<ExitCode> {
    let catalogue = afregning_topology::Catalogue::new(TopologySettings {
        partitions: args.partitions,
        ..TopologySettings::with_prefix(args.topic_prefix.clone())
    })
    .context("the topology settings")?;
    let codec = Codec::new(catalogue, &args.stack.schema_registry_url);
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(2)
        .connect(&args.stack.database_url)
        .await
        .context("connecting to the database")?;
    let relay = Relay::new(
        pool,
        codec,
        &RelayConfig {
            bootstrap_servers: args.stack.bootstrap_servers.clone(),
            // The catalogue declares what this group reads (`Component::ReconcileRelay`).
            group_id: format!(
                "afregning.{}",
                afregning_topology::catalogue::Component::ReconcileRelay.name()
            ),
            publish_interval: Duration::from_millis(args.publish_interval_ms.max(100)),
        },
    )
    .map_err(anyhow::Error::msg)?;
    let listener = tokio::net::TcpListener::bind(args.admin_listen)
        .await
        .with_context(|| format!("binding the admin address {}", args.admin_listen))?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, crate::cli::common::liveness_router()).await;
    });
    tracing::info!(admin_listen = %args.admin_listen, "relay: publishing DataHub requests and recording their answers; serving /health and /metrics");
    relay.run(crate::cli::common::shutdown_signal()).await;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn the_relay_serves_health_and_metrics_where_compose_looks() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a free port");
        let addr = listener.local_addr().expect("bound");
        let server = tokio::spawn(async move {
            axum::serve(listener, crate::cli::common::liveness_router()).await
        });
        let client = reqwest::Client::new();
        let get = |path: &str| client.get(format!("http://{addr}{path}")).send();
        let health = get("/health").await.expect("health answers");
        assert_eq!(health.status(), 200);
        assert_eq!(health.text().await.expect("body"), "ok\n");
        let metrics = get("/metrics").await.expect("metrics answer");
        assert_eq!(metrics.status(), 200);
        assert!(
            metrics.headers()["content-type"]
                .to_str()
                .expect("ascii")
                .starts_with("text/plain")
        );
        assert_eq!(get("/nope").await.expect("answers").status(), 404);
        server.abort();
    }
}

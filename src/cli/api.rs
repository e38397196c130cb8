//! `afregning api`: the API gateway and the backoffice console over the
//! sinks' tables (`afregning-api`; routes in its crate docs, docs/api.md and
//! its OpenAPI document at `/openapi.json`).

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use afregning_api::AppState;
use afregning_api::auth::{AuthConfig, Authenticator, JwksSource};
use anyhow::Context;
use clap::Args as ClapArgs;

/// Arguments of `afregning api`. Pass the HS256 secret through the
/// environment, not the flag, so it never shows in a process list.
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
    /// HS256 shared secret (at least 32 bytes); set it in the environment.
    #[arg(long, env = "AFREGNING_API_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// RS256 public keys: a JWKS file path or an http(s) URL, read at start.
    #[arg(long, env = "AFREGNING_API_JWKS")]
    pub jwks: Option<String>,
    /// Required `iss` claim of tokens, if set.
    #[arg(long, env = "AFREGNING_API_JWT_ISSUER")]
    pub jwt_issuer: Option<String>,
    /// Required `aud` claim of tokens, if set.
    #[arg(long, env = "AFREGNING_API_JWT_AUDIENCE")]
    pub jwt_audience: Option<String>,
    /// Kafka bootstrap servers, to show lag against the log's end, to read
    /// and change the supplier's products (their topic), to re-submit dead
    /// letters and to start replay runs; without it those routes answer 503.
    #[arg(long, env = "AFREGNING_API_BOOTSTRAP_SERVERS")]
    pub bootstrap_servers: Option<String>,
    /// Topic prefix of the deployment (the topology's prefix), for the products
    /// topic and the replay topics.
    #[arg(long, env = "AFREGNING_TOPIC_PREFIX", default_value = "")]
    pub topic_prefix: String,
    /// Partitions per topic, as `afregning topology apply` created them.
    #[arg(long, env = "AFREGNING_TOPIC_PARTITIONS", default_value_t = afregning_topology::settings::DEFAULT_PARTITIONS)]
    pub partitions: u32,
    /// Our GLN, the sender of requests to DataHub for its results
    /// (`POST /v1/datahub-requests`); without it they answer 503.
    #[arg(long, env = "AFREGNING_SUPPLIER_GLN")]
    pub supplier_gln: Option<String>,
    /// The connector's Prometheus endpoint (its admin port's `/metrics`, e.g.
    /// `http://connect:9100/metrics`), for DataHub's queues as the connector
    /// sees them (`/v1/operations/datahub-queues`); without it that route answers 503.
    #[arg(long, env = "AFREGNING_API_CONNECTOR_METRICS_URL")]
    pub connector_metrics_url: Option<String>,
}

/// Runs `afregning api` until SIGINT/SIGTERM.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    // Compose passes unset variables as empty strings: empty means not set.
    let set = |v: &Option<String>| v.clone().filter(|s| !s.trim().is_empty());
    let rs256_keys = match set(&args.jwks) {
        Some(source) => Some(
            JwksSource::parse(&source)
                .load()
                .await
                .map_err(anyhow::Error::msg)?,
        ),
        None => None,
    };
    let authenticator = Authenticator::new(AuthConfig {
        hs256_secret: set(&args.jwt_secret),
        rs256_keys,
        issuer: set(&args.jwt_issuer),
        audience: set(&args.jwt_audience),
    })
    .map_err(anyhow::Error::msg)?;
    let catalogue = afregning_topology::Catalogue::new(afregning_topology::TopologySettings {
        partitions: args.partitions,
        ..afregning_topology::TopologySettings::with_prefix(args.topic_prefix.clone())
    })
    .context("the topology settings")?;
    let broker = set(&args.bootstrap_servers)
        .as_deref()
        .map(|servers| afregning_api::broker::Broker::new(servers, &catalogue))
        .transpose()
        .map_err(anyhow::Error::msg)?;
    let products = set(&args.bootstrap_servers)
        .as_deref()
        .map(|servers| afregning_api::product_log::ProductLog::new(servers, &catalogue))
        .transpose()
        .map_err(anyhow::Error::msg)?;
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
        authenticator,
        broker,
        products,
        supplier_gln: set(&args.supplier_gln),
        connector_metrics_url: set(&args.connector_metrics_url),
        portfolio_keys: afregning_portfolio::personal::Keyring::from_env_if_set()
            .context("the portfolio keyring (AFREGNING_PORTFOLIO_KEYS / _KEY_FILE)")?
            .map(std::sync::Arc::new),
    };
    let api = afregning_api::spawn(state, args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    eprintln!("API on http://{} (console at /console)", api.addr);
    super::common::shutdown_signal().await;
    api.shutdown().await.context("stopping the API server")?;
    pool.close().await;
    Ok(ExitCode::SUCCESS)
}

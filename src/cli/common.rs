//! Connection settings shared by the subcommands that talk to the stack.

use clap::Args as ClapArgs;

/// Where the broker, the schema registry and the database are.
#[derive(Debug, Clone, ClapArgs)]
pub struct StackArgs {
    /// Kafka bootstrap servers.
    #[arg(
        long,
        env = "KAFKA_BOOTSTRAP_SERVERS",
        default_value = "127.0.0.1:9092"
    )]
    pub bootstrap_servers: String,
    /// Confluent-compatible schema registry URL.
    #[arg(
        long,
        env = "SCHEMA_REGISTRY_URL",
        default_value = "http://127.0.0.1:8081"
    )]
    pub schema_registry_url: String,
    /// PostgreSQL connection URL.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres"
    )]
    pub database_url: String,
}

/// Which deployment's topics: its prefix and partition count, as `afregning topology apply`
/// created them; and our GLN. Shared by the commands that talk to the portfolio's topics.
#[derive(Debug, Clone, ClapArgs)]
pub struct PortfolioDeployment {
    /// Our GLN.
    #[arg(long, env = "AFREGNING_SUPPLIER_GLN")]
    pub supplier_gln: String,
    /// Topic prefix of the deployment.
    #[arg(long, env = "AFREGNING_TOPIC_PREFIX", default_value = "")]
    pub topic_prefix: String,
    /// Partitions per topic, as `afregning topology apply` created them.
    #[arg(long, env = "AFREGNING_TOPIC_PARTITIONS", default_value_t = afregning_topology::settings::DEFAULT_PARTITIONS)]
    pub partitions: u32,
    /// Broker, registry and database.
    #[command(flatten)]
    pub stack: StackArgs,
}

impl PortfolioDeployment {
    /// The deployment's topic catalogue.
    pub fn catalogue(&self) -> anyhow::Result<afregning_topology::Catalogue> {
        Ok(afregning_topology::Catalogue::new(
            afregning_topology::TopologySettings {
                partitions: self.partitions,
                ..afregning_topology::TopologySettings::with_prefix(self.topic_prefix.clone())
            },
        )?)
    }
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM (what `stop`, systemd and Kubernetes send),
/// so long-running commands drain and exit cleanly instead of being cut off.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}

/// The admin endpoints of a service without a status of its own (the reconcile relay, the
/// portfolio read model): `/health` answers while the process runs (it logs and retries its
/// own failures), `/metrics` is the process's Prometheus registry.
pub fn liveness_router() -> axum::Router {
    let render = crate::telemetry::prometheus();
    axum::Router::new()
        .route("/health", axum::routing::get(|| async { "ok\n" }))
        .route(
            "/metrics",
            axum::routing::get(move || {
                let text = render();
                async move {
                    (
                        [(
                            axum::http::header::CONTENT_TYPE,
                            "text/plain; version=0.0.4",
                        )],
                        text,
                    )
                }
            }),
        )
}

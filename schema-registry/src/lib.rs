//! A Confluent-compatible schema registry, the subset afregning uses, stored in
//! PostgreSQL.
//!
//! **Why it exists:** no Confluent Schema Registry, Karapace, Apicurio or
//! Redpanda can be installed on the machines this project is developed and
//! tested on, yet the pipeline must speak the Confluent wire format and the
//! registry's REST API from day one. Production uses one of those real
//! registries; this one exists so that development, CI and the demo run the
//! very same client code (`schema_registry_converter`) against the same API.
//! See `docs/decisions/0002-schema-registry.md`.
//!
//! What it implements (Avro only): register a schema under a subject, look a
//! schema up by id, by subject and version (or `latest`), or by content; list
//! subjects and versions; check compatibility; get and set the global and
//! per-subject compatibility level (default `BACKWARD`). Errors carry
//! Confluent's codes: 40401 subject not found, 40402 version not found, 40403
//! schema not found, 409 incompatible schema, 42201 invalid schema, 42202
//! invalid version, 42203 invalid compatibility level, 50001 store error.
//!
//! Schema ids are global, stable and never reused: they come from a PostgreSQL
//! identity column, and the same schema text (after normalisation) registered
//! under another subject gets the same id, as in Confluent's registry.

mod api;
mod compatibility;
mod error;
mod store;

use std::net::SocketAddr;

pub use api::router;
pub use compatibility::CompatibilityLevel;
pub use error::RegistryError;
pub use store::Store;

/// Where the registry keeps its data.
#[derive(Debug, Clone)]
pub struct RegistryConfig {
    /// PostgreSQL connection URL.
    pub database_url: String,
    /// The PostgreSQL schema (namespace) holding the registry's tables. Tests
    /// give each registry its own so that subjects never collide.
    pub db_schema: String,
}

impl RegistryConfig {
    /// The usual configuration: tables in the `schema_registry` schema.
    pub fn new(database_url: impl Into<String>) -> Self {
        Self {
            database_url: database_url.into(),
            db_schema: "schema_registry".to_string(),
        }
    }
}

/// A registry serving on a local port in this process; dropping the handle does
/// not stop it, [`RunningRegistry::shutdown`] does.
#[derive(Debug)]
pub struct RunningRegistry {
    /// Base URL, e.g. `http://127.0.0.1:40123`.
    pub url: String,
    /// The bound address.
    pub addr: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl RunningRegistry {
    /// Stops serving and waits for in-flight requests to finish.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let _ = (&mut self.task).await;
    }
}

/// Starts the registry on `listen` (port 0 picks a free port) in this process.
pub async fn spawn(
    config: RegistryConfig,
    listen: SocketAddr,
) -> Result<RunningRegistry, RegistryError> {
    let store = Store::connect(&config).await?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| RegistryError::Startup(format!("cannot listen on {listen}: {e}")))?;
    let addr = listener
        .local_addr()
        .map_err(|e| RegistryError::Startup(e.to_string()))?;
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let app = router(store);
    let task = tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = rx.await;
            })
            .await;
        if let Err(error) = served {
            tracing::error!(%error, "schema registry stopped with an error");
        }
    });
    tracing::info!(%addr, schema = %config.db_schema, "schema registry listening");
    Ok(RunningRegistry {
        url: format!("http://{addr}"),
        addr,
        shutdown: Some(tx),
        task,
    })
}

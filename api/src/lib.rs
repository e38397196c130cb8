//! The operator HTTP API (axum): what an operator asks of afregning while it
//! runs, answered from the tables the PostgreSQL sink keeps (`sinks/migrations`).
//!
//! Read-only except for one write the operator procedure needs: marking a
//! dead letter resolved once its cause is fixed and its input replayed. The
//! pipeline's own state lives in Kafka and the processors' stores; the API
//! never writes there, so it can be restarted, scaled or taken down without
//! touching a result.
//!
//! | Route | Answers |
//! |---|---|
//! | `GET /health` | 200 when the database answers, 503 otherwise |
//! | `GET /metrics` | Prometheus text, rendered by the caller's recorder |
//! | `GET /v1/metering-points/{gsrn}` | master data, one entry per validity period |
//! | `GET /v1/settlements/{gsrn}/{month}` | the latest provisional version and its lines |
//! | `GET /v1/settlements/{gsrn}/{month}/versions` | every version's totals, oldest first |
//! | `GET /v1/statements/{gsrn}/{month}` | final statements and credit notes |
//! | `GET /v1/dead-letters` | unresolved dead letters (filters: `component`, `error_class`, `limit`) |
//! | `POST /v1/dead-letters/resolve` | marks one resolved, with who and why |
//! | `GET /v1/completeness/{date}` | data completeness per grid area for a local day |

pub mod error;
pub mod routes;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};
use sqlx::PgPool;
use tokio::net::TcpListener;

pub use error::ApiError;

/// Renders the process's Prometheus metrics; passed in so that the API does
/// not own the process-wide recorder (the binary installs it once).
pub type RenderMetrics = Arc<dyn Fn() -> String + Send + Sync>;

/// What every handler shares: the sinks' database and the metrics renderer.
#[derive(Clone)]
pub struct AppState {
    /// Pool on the database the PostgreSQL sink writes (`search_path` as in its URL).
    pub pool: PgPool,
    /// Prometheus text for `/metrics`.
    pub render_metrics: RenderMetrics,
}

/// The API's routes over `state`; the binary serves it, tests serve it on port 0.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/health", get(routes::health::health))
        .route("/metrics", get(routes::health::metrics))
        .route(
            "/v1/metering-points/{gsrn}",
            get(routes::metering_points::get_metering_point),
        )
        .route(
            "/v1/settlements/{gsrn}/{month}",
            get(routes::settlements::latest),
        )
        .route(
            "/v1/settlements/{gsrn}/{month}/versions",
            get(routes::settlements::versions),
        )
        .route(
            "/v1/statements/{gsrn}/{month}",
            get(routes::settlements::statements),
        )
        .route("/v1/dead-letters", get(routes::dead_letters::list))
        .route(
            "/v1/dead-letters/resolve",
            post(routes::dead_letters::resolve),
        )
        .route(
            "/v1/completeness/{date}",
            get(routes::completeness::per_grid_area),
        )
        .layer(axum::middleware::from_fn(routes::request_id::tag))
        .with_state(state)
}

/// A running API server: its bound address and how to stop it.
pub struct RunningApi {
    /// The address it listens on (the real port when asked for port 0).
    pub addr: SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl RunningApi {
    /// Stops accepting, lets in-flight requests finish, and waits for the server.
    pub async fn shutdown(self) -> std::io::Result<()> {
        let _ = self.stop.send(());
        self.task
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e)))
    }
}

/// Binds `addr` and serves the API in the background until [`RunningApi::shutdown`].
pub async fn spawn(state: AppState, addr: SocketAddr) -> std::io::Result<RunningApi> {
    let listener = TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let app = router(state);
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            })
            .await
    });
    tracing::info!(%addr, "operator API listening");
    Ok(RunningApi { addr, stop, task })
}

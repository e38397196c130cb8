//! The API gateway (axum) and the backoffice console: what backoffice,
//! billing and operations ask of afregning, answered from the tables the
//! PostgreSQL sink keeps (`sinks/migrations`) and, for the supplier's products,
//! written to a topic that settle reads.
//!
//! Every `/v1` route and every console page needs a bearer JWT whose roles
//! allow the route's [`auth::Permission`] (the matrix is in [`auth`] and
//! docs/api.md); `/health`, `/metrics`, `/openapi.json` and `/docs` do not.
//! Every error is RFC 7807 problem details ([`error`]); every change writes
//! an audit row in its own transaction ([`audit`]). The routes and their
//! schemas are in the OpenAPI document ([`openapi`]), served at `/openapi.json`.
//!
//! The pipeline's own state lives in Kafka and the processors' stores; the
//! API reads it only through the sinks' tables, so it can be restarted,
//! scaled or taken down without touching a result.

pub mod audit;
pub mod auth;
pub mod broker;
pub mod connector_metrics;
pub mod console;
pub mod datahub_requests;
pub mod error;
pub mod limits;
pub mod openapi;
pub mod processor_lag;
pub mod product_log;
pub mod routes;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{MethodRouter, get, post};
use sqlx::PgPool;
use tokio::net::TcpListener;

pub use error::ApiError;

use auth::{Authenticator, Guard, Permission};

/// Renders the process's Prometheus metrics; passed in so that the API does
/// not own the process-wide recorder (the binary installs it once).
pub type RenderMetrics = Arc<dyn Fn() -> String + Send + Sync>;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    /// Pool on the database the PostgreSQL sink writes (`search_path` as in its URL).
    pub pool: PgPool,
    /// Prometheus text for `/metrics`.
    pub render_metrics: RenderMetrics,
    /// Checks bearer tokens.
    pub authenticator: Authenticator,
    /// The broker and the deployment's topology, for lag and for replay
    /// (re-submitting dead letters, replay runs); `None` answers lag from the
    /// database alone and the replay calls with 503.
    pub broker: Option<broker::Broker>,
    /// The products topic (decision 0130); `None` (no broker) answers the
    /// product routes with 503.
    pub products: Option<product_log::ProductLog>,
    /// Our GLN, the sender of requests to DataHub (`AFREGNING_SUPPLIER_GLN`); `None`
    /// answers such requests 503.
    pub supplier_gln: Option<String>,
    /// The connector's `/metrics` URL, for DataHub's queues as it sees them;
    /// `None` answers that route 503.
    pub connector_metrics_url: Option<String>,
    /// The deployment's portfolio keyring, to seal customers' data in requests and open it for
    /// `read_personal_data` (decision 0148); `None` answers those routes 503.
    pub portfolio_keys: Option<Arc<afregning_portfolio::personal::Keyring>>,
}

/// `method_router` behind the permission layer: 401/403 before the handler runs.
fn guarded(
    state: &AppState,
    permission: Permission,
    method_router: MethodRouter<AppState>,
) -> MethodRouter<AppState> {
    let guard = Guard {
        authenticator: state.authenticator.clone(),
        permission,
        cookie_allowed: false,
    };
    method_router.route_layer(axum::middleware::from_fn_with_state(guard, auth::require))
}

/// The API's and the console's routes over `state`; the binary serves it,
/// tests serve it on port 0.
pub fn router(state: AppState) -> Router {
    use Permission::*;
    use routes::*;
    let s = &state;
    Router::new()
        .route("/health", get(health::health))
        .route("/metrics", get(health::metrics))
        .route("/openapi.json", get(openapi::document))
        .route("/docs", get(openapi::reference_page))
        .route(
            "/v1/metering-points",
            guarded(s, Read, get(metering_points::list)),
        )
        .route(
            "/v1/metering-points/{gsrn}",
            guarded(s, Read, get(metering_points::get_metering_point)),
        )
        .route(
            "/v1/metering-points/{gsrn}/portfolio",
            guarded(s, Read, get(portfolio::get_portfolio)),
        )
        .route(
            "/v1/metering-points/{gsrn}/portfolio/requests",
            guarded(s, RequestProcesses, post(portfolio_requests::request)),
        )
        .route(
            "/v1/metering-points/{gsrn}/portfolio/processes/{process_id}/cancel",
            guarded(s, RequestProcesses, post(portfolio_requests::cancel)),
        )
        .route(
            "/v1/metering-points/{gsrn}/portfolio/customers",
            guarded(s, ReadPersonalData, get(customers::of_metering_point)),
        )
        .route(
            "/v1/customers/search",
            guarded(s, ReadPersonalData, post(customers::search)),
        )
        .route(
            "/v1/metering-points/{gsrn}/metering-data",
            guarded(s, Read, get(metering_data::series)),
        )
        .route(
            "/v1/metering-points/{gsrn}/metering-data/compare",
            guarded(s, Read, get(metering_data::compare)),
        )
        .route(
            "/v1/settlements/{gsrn}/{month}",
            guarded(s, Read, get(settlements::latest)),
        )
        .route(
            "/v1/settlements/{gsrn}/{month}/versions",
            guarded(s, Read, get(settlements::versions)),
        )
        .route(
            "/v1/settlements/{gsrn}/{month}/explain",
            guarded(s, Read, get(explain::explain)),
        )
        .route(
            "/v1/statements/{gsrn}/{month}",
            guarded(s, Read, get(settlements::statements)),
        )
        .route(
            "/v1/billing-runs",
            guarded(s, ExportBilling, get(billing::list)),
        )
        .route(
            "/v1/billing-runs/{run_id}",
            guarded(s, ExportBilling, get(billing::export)),
        )
        .route(
            "/v1/rates/{grid_area}",
            guarded(s, Read, get(rates::charges_seen)),
        )
        .route(
            "/v1/reconciliations/{month}",
            guarded(s, Read, get(reconciliation::report)),
        )
        .route(
            "/v1/reconciliations/{month}/discrepancies",
            guarded(s, Read, get(reconciliation::discrepancies)),
        )
        .route(
            "/v1/datahub-requests",
            guarded(s, ReadOperations, get(reconciliation::requests)).merge(guarded(
                s,
                RequestDataHubData,
                post(reconciliation::request),
            )),
        )
        .route(
            "/v1/datahub-requests/{request_id}",
            guarded(s, ReadOperations, get(reconciliation::show_request)),
        )
        .route(
            "/v1/completeness/{date}",
            guarded(s, Read, get(completeness::per_grid_area)),
        )
        .route(
            "/v1/operations/lag",
            guarded(s, ReadOperations, get(operations::lag)),
        )
        .route(
            "/v1/operations/datahub-queues",
            guarded(s, ReadOperations, get(operations::datahub_queues)),
        )
        .route(
            "/v1/operations/processor-lag",
            guarded(s, ReadOperations, get(operations::processor_lag)),
        )
        .route(
            "/v1/dead-letters",
            guarded(s, ReadOperations, get(dead_letters::list)),
        )
        .route(
            "/v1/dead-letters/{topic}/{partition}/{offset}",
            guarded(s, ReadOperations, get(dead_letters::show)),
        )
        .route(
            "/v1/dead-letters/resolve",
            guarded(s, ResolveDeadLetters, post(dead_letters::resolve)),
        )
        .route(
            "/v1/dead-letters/resubmit",
            guarded(s, Replay, post(replay::resubmit)),
        )
        .route(
            "/v1/replay-runs",
            guarded(s, ReadOperations, get(replay::list)).merge(guarded(
                s,
                Replay,
                post(replay::start),
            )),
        )
        .route(
            "/v1/replay-runs/{run_id}",
            guarded(s, ReadOperations, get(replay::show)),
        )
        .route(
            "/v1/audit",
            guarded(s, ReadOperations, get(operations::audit_log)),
        )
        .route(
            "/v1/products",
            guarded(s, Read, get(products::list)).merge(guarded(
                s,
                ManageProducts,
                post(products::create),
            )),
        )
        .route(
            "/v1/products/{product_id}",
            guarded(s, Read, get(products::get_product)),
        )
        .route(
            "/v1/metering-points/{gsrn}/product-assignments",
            guarded(s, Read, get(assignments::get_assignments)).merge(guarded(
                s,
                ManageProducts,
                axum::routing::put(assignments::set_assignments),
            )),
        )
        .route(
            "/v1/product-default",
            guarded(s, Read, get(assignments::get_default)).merge(guarded(
                s,
                ManageProducts,
                axum::routing::put(assignments::set_default),
            )),
        )
        .route(
            "/v1/products/{product_id}/versions",
            guarded(s, ManageProducts, post(products::change)),
        )
        .merge(console::router(s))
        .layer(DefaultBodyLimit::max(limits::MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn(error::problem_for_every_error))
        .layer(axum::middleware::from_fn(request_id::tag))
        .with_state(state)
}

/// A running API server: its bound address and how to stop it.
pub struct RunningApi {
    /// The address it listens on (the real port when asked for port 0).
    pub addr: SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    broker: Option<broker::Broker>,
}

impl RunningApi {
    /// Stops accepting, lets in-flight requests finish, stops following the
    /// replay runs it started (recorded `interrupted`), and waits for the server.
    pub async fn shutdown(self) -> std::io::Result<()> {
        let _ = self.stop.send(());
        if let Some(broker) = &self.broker {
            broker.stop_following();
        }
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
    let broker = state.broker.clone();
    let app = router(state);
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            })
            .await
    });
    tracing::info!(%addr, "API listening");
    Ok(RunningApi {
        addr,
        stop,
        task,
        broker,
    })
}

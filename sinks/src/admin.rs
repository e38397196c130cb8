//! `/health`, `/ready` and `/metrics` on the admin port (9100 in
//! docker-compose.yml, which health-checks `/health`).
//!
//! `/health` stays 200 while the sink retries a database outage: the process
//! is fine and restarting it would not bring the database back. `/ready`
//! says whether the last write succeeded.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

use crate::runner::SinkStatus;

/// Renders the metrics exposition (e.g. `PrometheusHandle::render`); passed
/// in so this crate does not choose the exporter.
pub type RenderMetrics = Arc<dyn Fn() -> String + Send + Sync>;

#[derive(Clone)]
struct AdminState {
    status: Arc<SinkStatus>,
    render: RenderMetrics,
}

/// The admin router for a sink's status.
pub fn router(status: Arc<SinkStatus>, render: RenderMetrics) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics))
        .with_state(AdminState { status, render })
}

async fn health(State(state): State<AdminState>) -> impl IntoResponse {
    if state.status.is_healthy() {
        (StatusCode::OK, "ok\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not running\n")
    }
}

async fn ready(State(state): State<AdminState>) -> impl IntoResponse {
    if state.status.is_ready() {
        (StatusCode::OK, "ready\n")
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "database unavailable or not started\n",
        )
    }
}

async fn metrics(State(state): State<AdminState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        (state.render)(),
    )
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    use super::*;

    async fn get_path(router: Router, path: &str) -> (StatusCode, String) {
        let response = router
            .oneshot(Request::get(path).body(Body::empty()).expect("request"))
            .await
            .expect("response");
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .expect("body");
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn a_sink_that_has_not_started_is_neither_healthy_nor_ready() {
        let status = Arc::new(SinkStatus::default());
        let router = router(status, Arc::new(|| "afregning_sink_x 1\n".to_string()));
        assert_eq!(
            get_path(router.clone(), "/health").await.0,
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(
            get_path(router.clone(), "/ready").await.0,
            StatusCode::SERVICE_UNAVAILABLE
        );
        let (code, body) = get_path(router, "/metrics").await;
        assert_eq!(code, StatusCode::OK);
        assert_eq!(body, "afregning_sink_x 1\n");
    }
}

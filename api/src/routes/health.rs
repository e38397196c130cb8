//! Liveness that means something: the API is healthy when it can answer from
//! its database, because that is all it does.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::AppState;

/// `GET /health`: 200 `{"status":"ok"}` when `SELECT 1` answers, else 503 with why.
#[utoipa::path(get, path = "/health", tag = "operations",
    responses((status = 200, description = "the database answers"), (status = 503, description = "it does not")))]
pub async fn health(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    match sqlx::query_scalar::<_, i32>("SELECT 1")
        .fetch_one(&state.pool)
        .await
    {
        Ok(_) => (StatusCode::OK, Json(json!({ "status": "ok" }))),
        Err(error) => {
            tracing::warn!(%error, "health check: database unreachable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "status": "unavailable", "database": error.to_string() })),
            )
        }
    }
}

/// `GET /metrics`: the process's Prometheus metrics.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text exposition")))]
pub async fn metrics(State(state): State<AppState>) -> String {
    (state.render_metrics)()
}

//! One error type for every handler, rendered as JSON with a stable `code`, so
//! that scripts branch on the code and people read the message.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// Why a request failed, and the HTTP status that says so.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request names something malformed (a GSRN with a bad check digit, a month like `2026-13`).
    #[error("{0}")]
    BadRequest(String),
    /// Nothing matches (no such metering point, month or dead letter).
    #[error("{0}")]
    NotFound(String),
    /// The request conflicts with the current state (resolving what is already resolved).
    #[error("{0}")]
    Conflict(String),
    /// The database failed; logged in full, answered briefly (no SQL in responses).
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

impl ApiError {
    fn parts(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            ApiError::Database(_) => (StatusCode::SERVICE_UNAVAILABLE, "database_unavailable"),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.parts();
        let message = match &self {
            ApiError::Database(error) => {
                tracing::error!(%error, "database error answering an API request");
                "the database did not answer; see the API's log".to_string()
            }
            other => other.to_string(),
        };
        (status, Json(json!({ "code": code, "error": message }))).into_response()
    }
}

//! One error type for every handler, rendered as RFC 7807 problem details
//! (`application/problem+json`) with a stable `code`, so that scripts branch on
//! the code, people read the detail, and an operator finds the call's log
//! lines by its request id. [`problem_for_every_error`] gives the same shape to
//! the errors axum answers itself (an unknown route, a body that is too large
//! or not JSON), so no 4xx leaves the API as plain text.

use axum::body::to_bytes;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// The media type of every error answer (RFC 7807).
pub const PROBLEM_JSON: &str = "application/problem+json";

/// Why a request failed, and the HTTP status that says so.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request names something malformed (a GSRN with a bad check digit, a month like `2026-13`).
    #[error("{0}")]
    BadRequest(String),
    /// Well-formed but not acceptable: a period longer than the limit, an empty reason.
    #[error("{0}")]
    Unprocessable(String),
    /// No valid bearer token: missing, expired, badly signed or from an unknown key.
    #[error("{0}")]
    Unauthorized(String),
    /// A valid token whose roles do not include the right this route needs.
    #[error("{0}")]
    Forbidden(String),
    /// Nothing matches (no such metering point, month or dead letter).
    #[error("{0}")]
    NotFound(String),
    /// The request conflicts with the current state (resolving what is already resolved).
    #[error("{0}")]
    Conflict(String),
    /// A dependency other than the database (the broker) failed; logged in full.
    #[error("{0}")]
    Unavailable(String),
    /// The database failed; logged in full, answered briefly (no SQL in responses).
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

/// RFC 7807 problem details, as every error is answered.
#[derive(Debug, Serialize, serde::Deserialize, ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem (`/problems/{code}`, relative to the API).
    #[serde(rename = "type")]
    pub kind: String,
    /// Short summary of the kind (the HTTP reason phrase).
    pub title: String,
    /// The HTTP status, repeated for readers of the body alone.
    pub status: u16,
    /// What exactly was wrong with this request.
    pub detail: String,
    /// Stable machine-readable code (`bad_request`, `forbidden`, ...).
    pub code: String,
}

impl Problem {
    /// The problem for `status` with `code` and `detail`.
    pub fn new(status: StatusCode, code: &str, detail: impl Into<String>) -> Self {
        Problem {
            kind: format!("/problems/{code}"),
            title: status.canonical_reason().unwrap_or("Error").to_string(),
            status: status.as_u16(),
            detail: detail.into(),
            code: code.to_string(),
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut response = (status, body).into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"afregning\""),
            );
        }
        response
    }
}

impl ApiError {
    fn parts(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            ApiError::Unprocessable(_) => (StatusCode::UNPROCESSABLE_ENTITY, "unprocessable"),
            ApiError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            ApiError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            ApiError::Database(_) => (StatusCode::SERVICE_UNAVAILABLE, "database_unavailable"),
        }
    }

    /// The problem details this error is answered with.
    pub fn problem(&self) -> Problem {
        let (status, code) = self.parts();
        let detail = match self {
            ApiError::Database(error) => {
                tracing::error!(%error, "database error answering an API request");
                "the database did not answer; see the API's log".to_string()
            }
            ApiError::Unavailable(why) => {
                tracing::error!(%why, "dependency unavailable answering an API request");
                why.clone()
            }
            other => other.to_string(),
        };
        Problem::new(status, code, detail)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.problem().into_response()
    }
}

/// Most bytes of a plain error body kept as the problem's detail.
const MAX_DETAIL_BYTES: usize = 4096;

/// Middleware: an error response that is not yet problem details (axum's own
/// rejections: unknown route, wrong method, body too large, body not JSON)
/// becomes one, its text kept as the detail.
pub async fn problem_for_every_error(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with(PROBLEM_JSON));
    if is_problem {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = to_bytes(body, MAX_DETAIL_BYTES)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .unwrap_or_default();
    let code = match status {
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::UNPROCESSABLE_ENTITY => "unprocessable",
        s if s.is_client_error() => "bad_request",
        _ => "internal_error",
    };
    let detail = if text.is_empty() {
        status.canonical_reason().unwrap_or("error").to_string()
    } else {
        text
    };
    let mut answer = Problem::new(status, code, detail).into_response();
    for (name, value) in parts.headers.iter() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            answer.headers_mut().insert(name.clone(), value.clone());
        }
    }
    answer
}

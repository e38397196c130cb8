//! Every request gets a correlation id (the caller's `x-request-id`, or a new
//! one), echoed in the response and recorded on the request's tracing span,
//! so an operator can find one call's log lines.

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

/// The header carrying the correlation id, both ways.
pub const REQUEST_ID: &str = "x-request-id";

/// Middleware: tags the request's span and response with its correlation id.
pub async fn tag(mut request: Request, next: Next) -> Response {
    let id = request
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128)
        .map(str::to_owned)
        .unwrap_or_else(new_id);
    request
        .extensions_mut()
        .insert(crate::audit::RequestId(id.clone()));
    let span = tracing::info_span!(
        "api_request",
        request_id = %id,
        method = %request.method(),
        path = %request.uri().path()
    );
    let mut response = next.run(request).instrument(span.clone()).await;
    span.in_scope(|| tracing::debug!(status = response.status().as_u16(), "answered"));
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    response
}

fn new_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("api-{nanos:x}-{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

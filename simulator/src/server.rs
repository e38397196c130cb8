//! The HTTP layer: DataHub's B2B routes, the token endpoint, Energi Data Service's dataset
//! route and the admin API, each a thin call into the pure domain.
//!
//! | route | what |
//! |---|---|
//! | `POST /oauth2/v2.0/token`, `POST /{tenant}/oauth2/v2.0/token` | client credentials → bearer token |
//! | `GET /v1.0/cim/{queue}` | peek: 200 + `MessageId`, 204 empty, 415 without `Content-Type` |
//! | `DELETE /v1.0/cim/dequeue/{MessageId}` | 200, or 400 for an unknown id |
//! | `POST /v1.0/cim/{documenttype}` | 202, 400 with an error document, 404 unknown type |
//! | `GET /dataset/{DayAheadPrices,Elspotprices}` | Energi Data Service JSON (no auth) |
//! | `GET /health` | `ok` |
//! | `GET /admin/ground-truth`, `/admin/events?since=N`, `/admin/queues` | inspection |
//! | `GET`/`PUT /admin/faults` | the faults in force |

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use serde::Deserialize;

use crate::events::{EnqueueReason, EventKind, FaultKind};
use crate::faults::{FaultConfig, RequestFault};
use crate::queues::{Message, Queue};
use crate::spot_prices::{Dataset, EdsQuery, eds_response};
use crate::{Shared, lock};

/// JSON responses as DataHub sends them.
pub const JSON: &str = "application/json; charset=utf-8";

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/health", get(|| async { "ok\n" }))
        .route("/oauth2/v2.0/token", post(token))
        .route("/{tenant}/oauth2/v2.0/token", post(token_for_tenant))
        .route("/v1.0/cim/dequeue/{message_id}", delete(dequeue))
        .route("/v1.0/cim/{segment}", get(peek).post(post_document))
        .route("/dataset/{dataset}", get(dataset))
        .route("/admin/ground-truth", get(ground_truth))
        .route("/admin/events", get(events))
        .route("/admin/queues", get(queues))
        .route("/admin/faults", get(get_faults).put(put_faults))
        .with_state(shared)
}

fn status(code: StatusCode, body: impl Into<Body>) -> Response {
    Response::builder()
        .status(code)
        .body(body.into())
        .unwrap_or_default()
}

fn json(code: StatusCode, body: impl Into<Body>) -> Response {
    Response::builder()
        .status(code)
        .header(header::CONTENT_TYPE, JSON)
        .body(body.into())
        .unwrap_or_default()
}

/// The form of a client-credentials token request.
#[derive(Debug, Deserialize)]
pub struct TokenForm {
    grant_type: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    scope: Option<String>,
}

async fn token_for_tenant(
    State(shared): State<Arc<Shared>>,
    Path(_tenant): Path<String>,
    form: Form<TokenForm>,
) -> Response {
    token(State(shared), form).await
}

async fn token(State(shared): State<Arc<Shared>>, Form(form): Form<TokenForm>) -> Response {
    let (fault, slow) = lock(&shared.faults).draw(None);
    if let Some(delay) = slow {
        shared.events.record(EventKind::Fault {
            queue: None,
            fault: FaultKind::Slow,
            message_id: None,
        });
        tokio::time::sleep(delay).await;
    }
    if let Some(fault @ (RequestFault::ServerError(_) | RequestFault::TooManyRequests(_))) = fault {
        return fault_response(&shared, fault, None, None);
    }
    if form.grant_type.as_deref() != Some("client_credentials") {
        return json(
            StatusCode::BAD_REQUEST,
            r#"{"error":"unsupported_grant_type"}"#,
        );
    }
    if form.scope.as_deref().is_none_or(str::is_empty) {
        return json(StatusCode::BAD_REQUEST, r#"{"error":"invalid_scope"}"#);
    }
    let auth = &shared.config.auth;
    if form.client_id.as_deref() != Some(auth.client_id.as_str())
        || form.client_secret.as_deref() != Some(auth.client_secret.as_str())
    {
        return json(StatusCode::UNAUTHORIZED, r#"{"error":"invalid_client"}"#);
    }
    let lifetime = auth.token_lifetime_secs;
    let token = lock(&shared.tokens).issue(Instant::now(), Duration::from_secs(lifetime));
    shared.events.record(EventKind::TokenIssued);
    json(
        StatusCode::OK,
        format!(
            r#"{{"token_type":"Bearer","expires_in":{lifetime},"ext_expires_in":{lifetime},"access_token":"{token}"}}"#
        ),
    )
}

// The error is the HTTP answer itself, returned at once; its size does not matter.
#[allow(clippy::result_large_err)]
fn authorize(shared: &Shared, headers: &HeaderMap) -> Result<(), Response> {
    let value = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    match lock(&shared.tokens).check(value, Instant::now()) {
        Ok(()) => Ok(()),
        Err(_) => {
            shared.events.record(EventKind::Unauthorized);
            let mut response = status(StatusCode::UNAUTHORIZED, "");
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer error=\"invalid_token\""),
            );
            Err(response)
        }
    }
}

fn fault_response(
    shared: &Shared,
    fault: RequestFault,
    queue: Option<Queue>,
    message_id: Option<&str>,
) -> Response {
    shared.events.record(EventKind::Fault {
        queue,
        fault: fault.kind(),
        message_id: message_id.map(str::to_string),
    });
    match fault {
        RequestFault::Outage => status(StatusCode::SERVICE_UNAVAILABLE, "queue unavailable"),
        RequestFault::Forbidden => status(StatusCode::FORBIDDEN, ""),
        RequestFault::ServerError(code) => status(
            StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            "simulated server error",
        ),
        RequestFault::TooManyRequests(secs) => {
            let mut response = status(StatusCode::TOO_MANY_REQUESTS, "");
            if let Ok(value) = HeaderValue::from_str(&secs.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
            response
        }
        RequestFault::RevokeTokens => {
            lock(&shared.tokens).revoke_all();
            status(StatusCode::UNAUTHORIZED, "")
        }
    }
}

/// Applies the request faults; `Err` is the response to send instead.
async fn faults_for(
    shared: &Shared,
    queue: Option<Queue>,
    message_id: Option<&str>,
) -> Result<(), Response> {
    let (fault, slow) = lock(&shared.faults).draw(queue);
    if let Some(delay) = slow {
        shared.events.record(EventKind::Fault {
            queue,
            fault: FaultKind::Slow,
            message_id: message_id.map(str::to_string),
        });
        tokio::time::sleep(delay).await;
    }
    match fault {
        Some(fault) => Err(fault_response(shared, fault, queue, message_id)),
        None => Ok(()),
    }
}

async fn peek(
    State(shared): State<Arc<Shared>>,
    Path(segment): Path<String>,
    headers: HeaderMap,
) -> Response {
    let Some(queue) = Queue::from_path(&segment) else {
        return status(StatusCode::NOT_FOUND, "unknown message category");
    };
    if let Err(response) = authorize(&shared, &headers) {
        return response;
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    if !content_type.is_some_and(|c| {
        c.trim_start()
            .to_ascii_lowercase()
            .starts_with("application/json")
    }) {
        // DataHub: Content-Type on a GET selects the format; missing or unknown is 415.
        // (DataHub also serves application/xml; the simulator serves JSON only.)
        return status(StatusCode::UNSUPPORTED_MEDIA_TYPE, "");
    }
    if let Err(response) = faults_for(&shared, Some(queue), None).await {
        return response;
    }
    crate::lifecycle::release_readings(&shared);
    let message = lock(&shared.queues).peek(queue, Instant::now());
    match message {
        None => status(StatusCode::NO_CONTENT, ""),
        Some(message) => {
            shared.events.record(EventKind::Peeked {
                queue,
                message_id: message.id.clone(),
            });
            Response::builder()
                .status(StatusCode::OK)
                .header(header::CONTENT_TYPE, JSON)
                .header("MessageId", message.id.as_str())
                .body(Body::from(message.body.clone()))
                .unwrap_or_default()
        }
    }
}

async fn dequeue(
    State(shared): State<Arc<Shared>>,
    Path(message_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Err(response) = authorize(&shared, &headers) {
        return response;
    }
    let queue = lock(&shared.messages).get(&message_id).map(|m| m.queue);
    if let Err(response) = faults_for(&shared, queue, Some(&message_id)).await {
        return response;
    }
    if lock(&shared.faults).config.dequeue_blackhole {
        shared.events.record(EventKind::Fault {
            queue,
            fault: FaultKind::DequeueSwallowed,
            message_id: Some(message_id),
        });
        // Never applied, never answered (bounded so the task ends eventually).
        tokio::time::sleep(Duration::from_secs(600)).await;
        return status(StatusCode::SERVICE_UNAVAILABLE, "");
    }
    let result = lock(&shared.queues).dequeue(&message_id);
    match result {
        Ok(message) => {
            shared.events.record(EventKind::Dequeued {
                queue: message.queue,
                message_id: message.id.clone(),
            });
            if lock(&shared.faults).redeliver() {
                let again = Message {
                    visible_at: Instant::now(),
                    ..(*message).clone()
                };
                shared.enqueue(again, EnqueueReason::Redelivery);
            }
            Response::builder()
                .status(StatusCode::OK)
                .header(header::CONTENT_TYPE, "text/plain")
                .body(Body::empty())
                .unwrap_or_default()
        }
        Err(_) => {
            shared
                .events
                .record(EventKind::DequeueUnknown { message_id });
            status(StatusCode::BAD_REQUEST, "")
        }
    }
}

async fn post_document(
    State(shared): State<Arc<Shared>>,
    Path(segment): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(response) = authorize(&shared, &headers) {
        return response;
    }
    if let Err(response) = faults_for(&shared, None, None).await {
        return response;
    }
    if let Some(response) = crate::lifecycle_requests::handle(&shared, &segment, &body) {
        return response;
    }
    crate::requests::handle(&shared, &segment, &body)
}

async fn dataset(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
    Query(query): Query<EdsQuery>,
) -> Response {
    let Some(dataset) = Dataset::from_name(&name) else {
        return status(StatusCode::NOT_FOUND, "unknown dataset");
    };
    match eds_response(shared.config.scenario.seed, dataset, &query) {
        Ok(body) => json(StatusCode::OK, body),
        Err(message) => json(
            StatusCode::BAD_REQUEST,
            serde_json::json!({ "error": message }).to_string(),
        ),
    }
}

async fn ground_truth(State(shared): State<Arc<Shared>>) -> Response {
    match serde_json::to_vec(&*shared.truth_now()) {
        Ok(body) => json(StatusCode::OK, body),
        Err(e) => status(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// `?since=N`: events from position N on.
#[derive(Debug, Deserialize)]
pub struct Since {
    since: Option<u64>,
}

async fn events(State(shared): State<Arc<Shared>>, Query(since): Query<Since>) -> Response {
    let events = shared.events.since(since.since.unwrap_or(0));
    match serde_json::to_vec(&events) {
        Ok(body) => json(StatusCode::OK, body),
        Err(e) => status(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

async fn queues(State(shared): State<Arc<Shared>>) -> Response {
    let depths = lock(&shared.queues).depths(Instant::now());
    json(
        StatusCode::OK,
        serde_json::to_vec(&depths).unwrap_or_default(),
    )
}

async fn get_faults(State(shared): State<Arc<Shared>>) -> Response {
    let config = lock(&shared.faults).config.clone();
    json(
        StatusCode::OK,
        serde_json::to_vec(&config).unwrap_or_default(),
    )
}

async fn put_faults(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    match serde_json::from_slice::<FaultConfig>(&body) {
        Ok(config) => {
            lock(&shared.faults).config = config;
            status(StatusCode::NO_CONTENT, "")
        }
        Err(e) => status(StatusCode::BAD_REQUEST, e.to_string()).into_response(),
    }
}

//! The dead-letter procedure: list what the pipeline gave up on, look at one,
//! fix the cause, replay, then mark it resolved with a note. Resolution is
//! recorded twice in one transaction: on the row (who, when, note) and in the
//! audit log (with the request id); nothing is ever deleted.

use axum::extract::{Path, Query, State};
use axum::{Extension, Json};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::audit::{self, Change, RequestId};
use crate::auth::Caller;
use crate::{ApiError, AppState, limits};

/// Filters of `GET /v1/dead-letters`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only this component (`validate`, `enrich`, `sink-postgres`, ...).
    pub component: Option<String>,
    /// Only this error class (`malformed_json`, `schema_violation`, ...).
    pub error_class: Option<String>,
    /// At most this many rows, newest first (default 100, at most 1000).
    pub limit: Option<i64>,
}

/// One unresolved dead letter, without its payload (which may be large and
/// stays in the table and on the dead-letter topic).
#[derive(Debug, Serialize, sqlx::FromRow, ToSchema)]
pub struct DeadLetter {
    /// Topic of the record that failed.
    pub source_topic: String,
    /// Its partition.
    pub source_partition: i32,
    /// Its offset: with topic and partition, the key to resolve it by.
    pub source_offset: i64,
    /// The DataHub MessageId, where the record had one.
    pub source_message_id: Option<String>,
    /// Which component gave up.
    pub component: String,
    /// The error class.
    pub error_class: String,
    /// The reason, as the component stated it.
    pub reason: String,
    /// When it failed (last time).
    pub failed_at: DateTime<Utc>,
    /// How often it failed.
    pub attempts: i32,
    /// Size of the payload kept with it.
    pub payload_bytes: Option<i32>,
}

/// `GET /v1/dead-letters`: unresolved dead letters, newest first.
#[utoipa::path(get, path = "/v1/dead-letters", tag = "operations", params(ListQuery),
    responses((status = 200, body = Vec<DeadLetter>), (status = 422, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    Query(query): Query<ListQuery>,
) -> Result<Json<Vec<DeadLetter>>, ApiError> {
    Ok(Json(unresolved(&state.pool, &query).await?))
}

/// The unresolved dead letters `query` selects (the console lists them too).
pub async fn unresolved(
    pool: &sqlx::PgPool,
    query: &ListQuery,
) -> Result<Vec<DeadLetter>, ApiError> {
    let limit = limits::page_size(query.limit)?;
    Ok(sqlx::query_as(
        "SELECT source_topic, source_partition, source_offset, source_message_id, component, \
                error_class, reason, failed_at, attempts, octet_length(payload) AS payload_bytes \
         FROM dead_letter \
         WHERE NOT resolved \
           AND ($1::text IS NULL OR component = $1) \
           AND ($2::text IS NULL OR error_class = $2) \
         ORDER BY failed_at DESC, source_topic, source_partition, source_offset \
         LIMIT $3",
    )
    .bind(&query.component)
    .bind(&query.error_class)
    .bind(limit)
    .fetch_all(pool)
    .await?)
}

/// One dead letter in full.
#[derive(Debug, Serialize, sqlx::FromRow, ToSchema)]
pub struct DeadLetterDetail {
    /// Everything the listing shows.
    #[sqlx(flatten)]
    #[serde(flatten)]
    pub summary: DeadLetter,
    /// Whether it is resolved.
    pub resolved: bool,
    /// Who resolved it.
    pub resolved_by: Option<String>,
    /// When.
    pub resolved_at: Option<DateTime<Utc>>,
    /// Their note.
    pub resolution_note: Option<String>,
    /// Where the record is on the dead-letter topic (partition).
    pub dead_letter_partition: i32,
    /// And offset.
    pub dead_letter_offset: i64,
    /// The payload, when it is UTF-8 text (CIM JSON usually is).
    #[sqlx(skip)]
    pub payload_text: Option<String>,
    #[serde(skip)]
    payload: Option<Vec<u8>>,
}

/// `GET /v1/dead-letters/{topic}/{partition}/{offset}`: one dead letter with its payload.
#[utoipa::path(get, path = "/v1/dead-letters/{topic}/{partition}/{offset}", tag = "operations",
    params(("topic" = String, Path, description = "source topic"),
        ("partition" = i32, Path, description = "source partition"),
        ("offset" = i64, Path, description = "source offset")),
    responses((status = 200, body = DeadLetterDetail), (status = 400, body = crate::error::Problem),
        (status = 404, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn show(
    State(state): State<AppState>,
    Path((topic, partition, offset)): Path<(String, String, String)>,
) -> Result<Json<DeadLetterDetail>, ApiError> {
    let (partition, offset): (i32, i64) = match (partition.parse(), offset.parse()) {
        (Ok(p), Ok(o)) if p >= 0 && o >= 0 => (p, o),
        _ => {
            return Err(ApiError::BadRequest(format!(
                "`{partition}`/`{offset}` is not a partition and offset"
            )));
        }
    };
    let row: Option<DeadLetterDetail> = sqlx::query_as(
        "SELECT source_topic, source_partition, source_offset, source_message_id, component, \
                error_class, reason, failed_at, attempts, octet_length(payload) AS payload_bytes, \
                resolved, resolved_by, resolved_at, resolution_note, dead_letter_partition, \
                dead_letter_offset, payload \
         FROM dead_letter WHERE source_topic = $1 AND source_partition = $2 AND source_offset = $3",
    )
    .bind(&topic)
    .bind(partition)
    .bind(offset)
    .fetch_optional(&state.pool)
    .await?;
    let mut row = row.ok_or_else(|| {
        ApiError::NotFound(format!("no dead letter at {topic}[{partition}]@{offset}"))
    })?;
    row.payload_text = row
        .payload
        .take()
        .and_then(|bytes| String::from_utf8(bytes).ok());
    Ok(Json(row))
}

/// Body of `POST /v1/dead-letters/resolve`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct Resolve {
    /// Topic of the record that failed.
    pub source_topic: String,
    /// Its partition.
    pub source_partition: i32,
    /// Its offset.
    pub source_offset: i64,
    /// What was done, for the next person (required; also the audit row's reason).
    pub note: Option<String>,
}

/// The answer to a resolution.
#[derive(Debug, Serialize, sqlx::FromRow, ToSchema)]
pub struct Resolved {
    /// Who resolved it (the token's subject).
    pub resolved_by: String,
    /// When.
    pub resolved_at: DateTime<Utc>,
    /// The audit row written with it.
    #[sqlx(skip)]
    pub audit_id: i64,
}

/// `POST /v1/dead-letters/resolve`: marks one dead letter resolved; 404 if
/// there is none at that position, 409 if it is already resolved, 422
/// without a note.
#[utoipa::path(post, path = "/v1/dead-letters/resolve", tag = "operations", request_body = Resolve,
    responses((status = 200, body = Resolved), (status = 404, body = crate::error::Problem),
        (status = 409, body = crate::error::Problem), (status = 422, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn resolve(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Extension(request_id): Extension<RequestId>,
    Json(body): Json<Resolve>,
) -> Result<Json<Resolved>, ApiError> {
    Ok(Json(
        resolve_one(&state.pool, &caller, &request_id, &body).await?,
    ))
}

/// Resolves one dead letter and writes its audit row in one transaction
/// (the console's form does the same).
pub async fn resolve_one(
    pool: &sqlx::PgPool,
    caller: &Caller,
    request_id: &RequestId,
    body: &Resolve,
) -> Result<Resolved, ApiError> {
    let note = audit::reason(body.note.as_deref())?;
    let target = format!(
        "dead_letter:{}[{}]@{}",
        body.source_topic, body.source_partition, body.source_offset
    );
    let mut tx = pool.begin().await?;
    let updated: Option<Resolved> = sqlx::query_as(
        "UPDATE dead_letter \
         SET resolved = true, resolved_by = $4, resolved_at = now(), resolution_note = $5 \
         WHERE source_topic = $1 AND source_partition = $2 AND source_offset = $3 \
           AND NOT resolved \
         RETURNING resolved_by, resolved_at",
    )
    .bind(&body.source_topic)
    .bind(body.source_partition)
    .bind(body.source_offset)
    .bind(&caller.subject)
    .bind(&note)
    .fetch_optional(&mut *tx)
    .await?;
    if let Some(mut resolved) = updated {
        resolved.audit_id = audit::record(
            &mut tx,
            &Change {
                caller,
                request_id,
                action: "dead_letter.resolve",
                target,
                reason: &note,
                details: serde_json::json!({ "resolved_at": resolved.resolved_at }),
            },
        )
        .await?;
        tx.commit().await?;
        return Ok(resolved);
    }
    drop(tx);
    let existing: Option<Option<String>> = sqlx::query_scalar(
        "SELECT resolved_by FROM dead_letter \
         WHERE source_topic = $1 AND source_partition = $2 AND source_offset = $3",
    )
    .bind(&body.source_topic)
    .bind(body.source_partition)
    .bind(body.source_offset)
    .fetch_optional(pool)
    .await?;
    match existing {
        None => Err(ApiError::NotFound(format!(
            "no dead letter at {}[{}]@{}",
            body.source_topic, body.source_partition, body.source_offset
        ))),
        Some(by) => Err(ApiError::Conflict(format!(
            "already resolved by {}",
            by.unwrap_or_default()
        ))),
    }
}

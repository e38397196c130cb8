//! The dead-letter procedure: list what the pipeline gave up on, fix the
//! cause, replay, then mark it resolved with who did it and why. Resolution is
//! the only write the API makes, and it never deletes: the row stays for audit.

use axum::Json;
use axum::extract::{Query, State};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{ApiError, AppState};

/// Most rows one listing returns; the backlog view has the counts.
pub const MAX_LIMIT: i64 = 1000;

/// Filters of `GET /v1/dead-letters`.
#[derive(Debug, Deserialize)]
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
#[derive(Debug, Serialize, sqlx::FromRow)]
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
pub async fn list(
    State(state): State<AppState>,
    Query(query): Query<ListQuery>,
) -> Result<Json<Vec<DeadLetter>>, ApiError> {
    let limit = query.limit.unwrap_or(100);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::BadRequest(format!(
            "limit must be between 1 and {MAX_LIMIT}, not {limit}"
        )));
    }
    let rows: Vec<DeadLetter> = sqlx::query_as(
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
    .fetch_all(&state.pool)
    .await?;
    Ok(Json(rows))
}

/// Body of `POST /v1/dead-letters/resolve`.
#[derive(Debug, Deserialize)]
pub struct Resolve {
    /// Topic of the record that failed.
    pub source_topic: String,
    /// Its partition.
    pub source_partition: i32,
    /// Its offset.
    pub source_offset: i64,
    /// Who resolved it (required: the procedure is accountable).
    pub resolved_by: String,
    /// What was done, for the next person.
    pub note: Option<String>,
}

/// The answer to a resolution.
#[derive(Debug, Serialize, sqlx::FromRow)]
pub struct Resolved {
    /// Who resolved it.
    pub resolved_by: String,
    /// When.
    pub resolved_at: DateTime<Utc>,
}

/// `POST /v1/dead-letters/resolve`: marks one dead letter resolved; 404 if
/// there is none at that position, 409 if it is already resolved.
pub async fn resolve(
    State(state): State<AppState>,
    Json(body): Json<Resolve>,
) -> Result<Json<Resolved>, ApiError> {
    if body.resolved_by.trim().is_empty() {
        return Err(ApiError::BadRequest(
            "resolved_by must name who resolved it".into(),
        ));
    }
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
    .bind(body.resolved_by.trim())
    .bind(&body.note)
    .fetch_optional(&state.pool)
    .await?;
    if let Some(resolved) = updated {
        tracing::info!(
            topic = %body.source_topic,
            partition = body.source_partition,
            offset = body.source_offset,
            resolved_by = %resolved.resolved_by,
            "dead letter resolved"
        );
        return Ok(Json(resolved));
    }
    let existing: Option<Option<String>> = sqlx::query_scalar(
        "SELECT resolved_by FROM dead_letter \
         WHERE source_topic = $1 AND source_partition = $2 AND source_offset = $3",
    )
    .bind(&body.source_topic)
    .bind(body.source_partition)
    .bind(body.source_offset)
    .fetch_optional(&state.pool)
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

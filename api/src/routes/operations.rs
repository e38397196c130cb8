//! Operations: where each sink's consumer is per topic partition and how far
//! behind the log's end, the same for the processors' consumer groups
//! ([`crate::processor_lag`]), and the audit log of changes made through the API.
//!
//! The sinks keep their positions in the database with their data (decision
//! 0061), so positions come from `sink_progress`; the log end comes from the
//! broker when the API is given one (`--bootstrap-servers`), read from the
//! records as for the processors (the local broker's ListOffsets is too low,
//! decision 0057), else lag is absent and the age of the last move says
//! whether a sink is stuck.

use axum::Json;
use axum::extract::{Query, State};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::audit::AuditEntry;
use crate::{ApiError, AppState, limits};

/// One consumer's position in one partition.
#[derive(Debug, Serialize, sqlx::FromRow, ToSchema)]
pub struct PartitionLag {
    /// The consumer (sink) name, its group.
    pub consumer: String,
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The next offset it will read.
    pub next_offset: i64,
    /// When it last moved.
    pub updated_at: DateTime<Utc>,
    /// Seconds since it last moved.
    pub seconds_since_update: i64,
    /// The partition's end (high watermark), when a broker was asked.
    #[sqlx(skip)]
    pub end_offset: Option<i64>,
    /// end − next: records not yet consumed, when a broker was asked.
    #[sqlx(skip)]
    pub lag: Option<i64>,
}

/// `GET /v1/operations/lag`: every sink consumer's position per partition.
#[utoipa::path(get, path = "/v1/operations/lag", tag = "operations",
    responses((status = 200, body = Vec<PartitionLag>)),
    security(("bearer" = [])))]
pub async fn lag(State(state): State<AppState>) -> Result<Json<Vec<PartitionLag>>, ApiError> {
    Ok(Json(load_lag(&state).await?))
}

/// The positions and, with a broker, the lag (the console's pipeline page uses it too).
pub async fn load_lag(state: &AppState) -> Result<Vec<PartitionLag>, ApiError> {
    let mut rows: Vec<PartitionLag> = sqlx::query_as(
        "SELECT consumer, topic, partition, next_offset, updated_at, seconds_since_update \
         FROM sink_progress ORDER BY consumer, topic, partition",
    )
    .fetch_all(&state.pool)
    .await?;
    if let Some(broker) = &state.broker {
        let wanted: Vec<(String, i32)> = rows
            .iter()
            .map(|r| (r.topic.clone(), r.partition))
            .collect();
        let broker = broker.clone();
        let ends =
            tokio::task::spawn_blocking(move || crate::processor_lag::ends_of(&broker, &wanted))
                .await
                .map_err(|e| ApiError::Unavailable(e.to_string()))?;
        for row in &mut rows {
            match ends.get(&(row.topic.clone(), row.partition)) {
                Some(Ok(end)) => {
                    row.end_offset = Some(*end);
                    row.lag = Some((end - row.next_offset).max(0));
                }
                Some(Err(error)) => {
                    tracing::warn!(%error, topic = %row.topic, partition = row.partition,
                        "cannot read the partition's end for the lag")
                }
                None => {}
            }
        }
    }
    Ok(rows)
}

/// `GET /v1/operations/processor-lag`: each processor's consumer group's
/// committed offset per input partition against the partition's end (read
/// from the records: the local broker's ListOffsets is too low), and the
/// lag. The committed offsets are the runtime's mirror of the positions it
/// commits with its state (they may trail by one commit round). 503 without
/// a broker.
#[utoipa::path(get, path = "/v1/operations/processor-lag", tag = "operations",
    responses((status = 200, body = Vec<crate::processor_lag::GroupPartitionLag>),
        (status = 503, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn processor_lag(
    State(state): State<AppState>,
) -> Result<Json<Vec<crate::processor_lag::GroupPartitionLag>>, ApiError> {
    Ok(Json(load_processor_lag(&state).await?))
}

/// The processors' lag (the console's pipeline page shows it too).
pub async fn load_processor_lag(
    state: &AppState,
) -> Result<Vec<crate::processor_lag::GroupPartitionLag>, ApiError> {
    let broker = state.broker.clone().ok_or_else(|| {
        ApiError::Unavailable("the API has no broker configured (--bootstrap-servers)".into())
    })?;
    tokio::task::spawn_blocking(move || crate::processor_lag::read(&broker))
        .await
        .map_err(|e| ApiError::Unavailable(e.to_string()))?
        .map_err(ApiError::Unavailable)
}

/// DataHub's queues as the connector reports them.
#[derive(Debug, Serialize, ToSchema)]
pub struct DataHubQueues {
    /// Where they were read (the connector's `/metrics`).
    pub source: String,
    /// When.
    pub scraped_at: DateTime<Utc>,
    /// Per queue, since the connector started.
    pub queues: Vec<crate::connector_metrics::QueueMetrics>,
}

/// `GET /v1/operations/datahub-queues`: per DataHub queue what the connector
/// received, produced and dequeued since it started, its errors, its backoff
/// and whether the queue is stopped, scraped from the connector's Prometheus
/// endpoint (DataHub itself reports no queue depth). 503 when the API has no
/// `--connector-metrics-url` or the connector does not answer.
#[utoipa::path(get, path = "/v1/operations/datahub-queues", tag = "operations",
    responses((status = 200, body = DataHubQueues), (status = 503, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn datahub_queues(
    State(state): State<AppState>,
) -> Result<Json<DataHubQueues>, ApiError> {
    let url = state.connector_metrics_url.clone().ok_or_else(|| {
        ApiError::Unavailable(
            "the API has no connector metrics URL configured (--connector-metrics-url)".into(),
        )
    })?;
    let text = crate::connector_metrics::scrape(&url)
        .await
        .map_err(ApiError::Unavailable)?;
    Ok(Json(DataHubQueues {
        source: url,
        scraped_at: Utc::now(),
        queues: crate::connector_metrics::queues(&text),
    }))
}

/// Query of `GET /v1/audit`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Only rows about this target (`dead_letter:...`, `product:...`).
    pub target: Option<String>,
    /// Rows before this id (the previous page's last `audit_id`).
    pub before: Option<i64>,
    /// Page size (default 100, at most 1000).
    pub page_size: Option<i64>,
}

/// `GET /v1/audit`: the audit log, newest first.
#[utoipa::path(get, path = "/v1/audit", tag = "operations", params(AuditQuery),
    responses((status = 200, body = Vec<AuditEntry>), (status = 422, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn audit_log(
    State(state): State<AppState>,
    Query(query): Query<AuditQuery>,
) -> Result<Json<Vec<AuditEntry>>, ApiError> {
    let size = limits::page_size(query.page_size)?;
    Ok(Json(
        sqlx::query_as(
            "SELECT audit_id, recorded_at, actor, roles, action, target, reason, request_id, \
                    details \
             FROM api_audit \
             WHERE ($1::text IS NULL OR target = $1) AND ($2::bigint IS NULL OR audit_id < $2) \
             ORDER BY audit_id DESC LIMIT $3",
        )
        .bind(&query.target)
        .bind(query.before)
        .bind(size)
        .fetch_all(&state.pool)
        .await?,
    ))
}

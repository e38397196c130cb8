//! The `datahub_request` table (migration 0060): every on-demand request with who asked,
//! what, when, why, and where it stands. Rows are written here only, by the API, the CLI
//! and the relay; each state change is one guarded UPDATE, so re-reading a response or an
//! answer (at-least-once delivery) changes nothing the second time.

use afregning_topology::records::{OutboundResponse, OutboundStatus};
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use sqlx::PgConnection;
use utoipa::ToSchema;

use super::answers::Answer;
use super::document::{RequestIds, RequestSpec, month_period};

/// One request as recorded.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, ToSchema)]
pub struct StoredRequest {
    /// Our id: the outbound record's key.
    pub request_id: String,
    /// The document's mRID.
    pub message_id: String,
    /// The series' mRID, which DataHub's answers name.
    pub transaction_id: String,
    /// `aggregated_measure_data` (RSM-016) or `wholesale_settlement` (RSM-017).
    pub requested_data: String,
    /// The calculation type asked for (D03, D04, D05, D32).
    pub business_reason: String,
    /// The correction round, with D32.
    pub settlement_version: Option<String>,
    /// Grid area.
    pub grid_area: String,
    /// First day of the month asked for.
    pub month_start: NaiveDate,
    /// One charge owner's results only (wholesale settlement).
    pub charge_owner_gln: Option<String>,
    /// The month's UTC start.
    pub period_start: DateTime<Utc>,
    /// Its UTC end, exclusive.
    pub period_end: DateTime<Utc>,
    /// Who asked (the token's subject, or the CLI's `--requested-by`).
    pub requested_by: String,
    /// Why.
    pub reason: String,
    /// When.
    pub requested_at: DateTime<Utc>,
    /// pending, sent, accepted, rejected, failed, answered, refused (docs/reconciliation.md).
    pub state: String,
    /// When the state last changed.
    pub state_changed_at: DateTime<Utc>,
    /// DataHub's HTTP status to the POST.
    pub http_status: Option<i32>,
    /// DataHub's CorrelationId header.
    pub correlation_id: Option<String>,
    /// DataHub's error document, the transport error, or the reject's reasons.
    pub response: Option<String>,
    /// MessageIds of the documents that answered it.
    pub answer_message_ids: Vec<String>,
    /// mRIDs of the series DataHub sent in answer (or of its reject).
    pub answer_series_ids: Vec<String>,
    /// When the first answer arrived.
    pub answered_at: Option<DateTime<Utc>>,
}

/// Every state a request can be in, in the order it usually passes them.
pub const STATES: [&str; 7] = [
    "pending", "sent", "accepted", "rejected", "failed", "answered", "refused",
];

const COLUMNS: &str = "request_id, message_id, transaction_id, requested_data, business_reason, \
    settlement_version, grid_area, month_start, charge_owner_gln, period_start, period_end, \
    requested_by, reason, requested_at, state, state_changed_at, http_status, correlation_id, \
    response, answer_message_ids, answer_series_ids, answered_at";

/// Records a request as `pending` on `conn` (the caller's transaction, with its audit row).
pub async fn record(
    conn: &mut PgConnection,
    spec: &RequestSpec,
    ids: &RequestIds,
    document: &str,
    requested_by: &str,
    reason: &str,
) -> Result<StoredRequest, sqlx::Error> {
    let (start, end) = month_period(spec.month);
    sqlx::query_as(&format!(
        "INSERT INTO datahub_request (request_id, message_id, transaction_id, requested_data, \
            business_reason, settlement_version, grid_area, month_start, charge_owner_gln, \
            period_start, period_end, document, requested_by, reason, state) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, 'pending') \
         RETURNING {COLUMNS}"
    ))
    .bind(&ids.request_id)
    .bind(&ids.message_id)
    .bind(&ids.transaction_id)
    .bind(spec.data.name())
    .bind(&spec.business_reason)
    .bind(&spec.settlement_version)
    .bind(&spec.grid_area)
    .bind(spec.month)
    .bind(&spec.charge_owner_gln)
    .bind(start)
    .bind(end)
    .bind(document)
    .bind(requested_by)
    .bind(reason)
    .fetch_one(conn)
    .await
}

/// One request by id.
pub async fn get(
    conn: &mut PgConnection,
    request_id: &str,
) -> Result<Option<StoredRequest>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM datahub_request WHERE request_id = $1"
    ))
    .bind(request_id)
    .fetch_optional(conn)
    .await
}

/// The newest requests first, only those in `state` when given.
pub async fn list(
    conn: &mut PgConnection,
    state: Option<&str>,
    limit: i64,
) -> Result<Vec<StoredRequest>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM datahub_request WHERE ($1::text IS NULL OR state = $1) \
         ORDER BY requested_at DESC, request_id LIMIT $2"
    ))
    .bind(state)
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// A pending request as the relay publishes it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Pending {
    /// Its id.
    pub request_id: String,
    /// `aggregated_measure_data` or `wholesale_settlement`.
    pub requested_data: String,
    /// The CIM document.
    pub document: String,
    /// Who asked.
    pub requested_by: String,
    /// When.
    pub requested_at: DateTime<Utc>,
    /// Why.
    pub reason: String,
}

/// The oldest pending requests, at most `limit`.
pub async fn pending(conn: &mut PgConnection, limit: i64) -> Result<Vec<Pending>, sqlx::Error> {
    sqlx::query_as(
        "SELECT request_id, requested_data, document, requested_by, requested_at, reason \
         FROM datahub_request WHERE state = 'pending' ORDER BY requested_at, request_id LIMIT $1",
    )
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// Marks a request as on the outbound topic (only while pending: an outcome that arrived
/// first is not overwritten).
pub async fn mark_sent(conn: &mut PgConnection, request_id: &str) -> Result<bool, sqlx::Error> {
    Ok(sqlx::query(
        "UPDATE datahub_request SET state = 'sent', state_changed_at = now() \
         WHERE request_id = $1 AND state = 'pending'",
    )
    .bind(request_id)
    .execute(conn)
    .await?
    .rows_affected()
        == 1)
}

/// The state a connector outcome puts a request in.
pub fn response_state(status: OutboundStatus) -> &'static str {
    match status {
        OutboundStatus::Accepted => "accepted",
        OutboundStatus::Rejected => "rejected",
        OutboundStatus::Failed => "failed",
    }
}

/// Records the connector's outcome of the POST. The state moves only from `pending` or
/// `sent`; DataHub's answer can arrive before the outcome is read (the simulator, like
/// DataHub, may queue it before its 202), and then the outcome's HTTP status and
/// CorrelationId are still recorded while the state stays answered or refused. `false` when
/// nothing changed (not ours, or read again).
pub async fn apply_response(
    conn: &mut PgConnection,
    response: &OutboundResponse,
) -> Result<bool, sqlx::Error> {
    Ok(sqlx::query(
        "UPDATE datahub_request SET \
            state = CASE WHEN state IN ('pending', 'sent') THEN $2 ELSE state END, \
            state_changed_at = CASE WHEN state IN ('pending', 'sent') THEN now() \
                                    ELSE state_changed_at END, \
            http_status = $3, correlation_id = $4, \
            response = CASE WHEN state IN ('pending', 'sent') THEN $5 ELSE response END \
         WHERE request_id = $1 AND (state IN ('pending', 'sent') \
            OR (state IN ('answered', 'refused') AND http_status IS NULL))",
    )
    .bind(&response.request_id)
    .bind(response_state(response.status))
    .bind(response.http_status)
    .bind(&response.correlation_id)
    .bind(&response.body)
    .execute(conn)
    .await?
    .rows_affected()
        == 1)
}

/// Records DataHub's answer (results, or a reject) to the request whose series' mRID it
/// names. Each answering series counts once (by its own mRID); a reject is final; results
/// after a reject are recorded but do not undo it. `false` when no request of ours has
/// that id, or every series was recorded before.
pub async fn apply_answer(conn: &mut PgConnection, answer: &Answer) -> Result<bool, sqlx::Error> {
    Ok(sqlx::query(
        "UPDATE datahub_request SET \
            state = CASE WHEN $4::text IS NOT NULL THEN 'refused' \
                         WHEN state = 'refused' THEN state ELSE 'answered' END, \
            state_changed_at = now(), \
            response = coalesce($4, response), \
            answer_message_ids = CASE WHEN $2 = ANY (answer_message_ids) THEN answer_message_ids \
                                      ELSE array_append(answer_message_ids, $2) END, \
            answer_series_ids = answer_series_ids || ARRAY( \
                SELECT DISTINCT s FROM unnest($3::text[]) AS s \
                WHERE NOT (s = ANY (answer_series_ids)) ORDER BY s), \
            answered_at = coalesce(answered_at, now()) \
         WHERE transaction_id = $1 AND NOT ($3::text[] <@ answer_series_ids)",
    )
    .bind(&answer.original_transaction_id)
    .bind(&answer.message_id)
    .bind(&answer.series_ids)
    .bind(&answer.refusal)
    .execute(conn)
    .await?
    .rows_affected()
        == 1)
}

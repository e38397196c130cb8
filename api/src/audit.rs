//! The audit log of state-changing calls (table `api_audit`, migration 0010):
//! who (token subject and roles), what (action and target), when, why (the
//! caller's reason, required) and the request id. A handler writes the row
//! with [`record`] inside the transaction of its change, so both commit or
//! neither does; the database refuses to update or delete a row.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgConnection;
use utoipa::ToSchema;

use crate::ApiError;
use crate::auth::Caller;

/// The request id a request was given (`x-request-id`), from its extensions.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// Longest reason accepted: a note for the next person, not a document.
pub const MAX_REASON_CHARS: usize = 2000;

/// A reason from a request body: required, trimmed, bounded (422 otherwise).
pub fn reason(text: Option<&str>) -> Result<String, ApiError> {
    let text = text.map(str::trim).unwrap_or_default();
    if text.is_empty() {
        return Err(ApiError::Unprocessable(
            "a reason is required for every change (it goes into the audit log)".into(),
        ));
    }
    if text.chars().count() > MAX_REASON_CHARS {
        return Err(ApiError::Unprocessable(format!(
            "the reason has more than {MAX_REASON_CHARS} characters"
        )));
    }
    Ok(text.to_string())
}

/// One change, as the audit log records it.
pub struct Change<'a> {
    /// Who asked.
    pub caller: &'a Caller,
    /// The request's id.
    pub request_id: &'a RequestId,
    /// What was done (`dead_letter.resolve`, `product.create`, ...).
    pub action: &'static str,
    /// What it was done to (`dead_letter:topic[3]@42`, `product:spot-standard`).
    pub target: String,
    /// Why, in the caller's words.
    pub reason: &'a str,
    /// The change's own data (the new values).
    pub details: serde_json::Value,
}

/// Writes `change` on `conn`, which must be the change's transaction.
pub async fn record(conn: &mut PgConnection, change: &Change<'_>) -> Result<i64, ApiError> {
    let roles: Vec<&str> = change.caller.roles.iter().map(|r| r.name()).collect();
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO api_audit (actor, roles, action, target, reason, request_id, details) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING audit_id",
    )
    .bind(&change.caller.subject)
    .bind(&roles)
    .bind(change.action)
    .bind(&change.target)
    .bind(change.reason)
    .bind(&change.request_id.0)
    .bind(&change.details)
    .fetch_one(conn)
    .await?;
    tracing::info!(
        audit_id = id,
        actor = %change.caller.subject,
        action = change.action,
        target = %change.target,
        request_id = %change.request_id.0,
        "audited change"
    );
    Ok(id)
}

/// One row of the audit log, as `GET /v1/audit` answers it.
#[derive(Debug, Serialize, sqlx::FromRow, ToSchema)]
pub struct AuditEntry {
    /// Its position in the log.
    pub audit_id: i64,
    /// When the change committed.
    pub recorded_at: DateTime<Utc>,
    /// The token subject that made it.
    pub actor: String,
    /// The roles the token carried.
    pub roles: Vec<String>,
    /// What was done.
    pub action: String,
    /// What it was done to.
    pub target: String,
    /// Why.
    pub reason: String,
    /// The request id, to find the call's log lines.
    pub request_id: String,
    /// The change's data.
    pub details: serde_json::Value,
}

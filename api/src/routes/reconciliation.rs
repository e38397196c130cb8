//! The reconciliation with DataHub's wholesale settlement (BRS-027, docs/reconciliation.md):
//! a month's current reconciliation per grid area and its discrepancies, read from the
//! sink's tables with the same query as `afregning reconcile report`
//! ([`afregning_sinks::reconciliation::month`]), so the API and the CLI cannot disagree;
//! and the on-demand requests to DataHub for its results ([`crate::datahub_requests`]).

use afregning_sinks::reconciliation::{self, MonthReconciliation, ReportedDiscrepancy};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use chrono::{NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::parse_month;
use crate::audit::{self, Change, RequestId};
use crate::auth::Caller;
use crate::datahub_requests::document::{self, RequestIds, RequestSpec, RequestedData};
use crate::datahub_requests::store::{self, StoredRequest};
use crate::{ApiError, AppState, limits};

/// The comparison levels a discrepancy can have (docs/reconciliation.md).
pub const LEVELS: [&str; 5] = [
    "ENERGY",
    "AMOUNT_PER_CHARGE",
    "MONTHLY_AMOUNT_PER_CHARGE",
    "TOTAL_PER_OWNER",
    "SUPPLIER_TOTAL",
];

/// Query of `GET /v1/reconciliations/{month}`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReportQuery {
    /// Only this grid area (3 digits); default: every grid area reconciled.
    pub grid_area: Option<String>,
}

/// Query of `GET /v1/reconciliations/{month}/discrepancies`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DiscrepancyQuery {
    /// Only this grid area (3 digits).
    pub grid_area: Option<String>,
    /// Only this level: ENERGY, AMOUNT_PER_CHARGE, MONTHLY_AMOUNT_PER_CHARGE, TOTAL_PER_OWNER, SUPPLIER_TOTAL.
    pub level: Option<String>,
    /// At most this many rows (default 100, at most 1000).
    pub page_size: Option<i64>,
}

/// One discrepancy of a month's current reconciliation, with the grid area and version it
/// belongs to.
#[derive(Debug, Serialize, ToSchema)]
pub struct GridAreaDiscrepancy {
    /// Grid area code.
    pub grid_area: String,
    /// First day of the month.
    pub month_start: NaiveDate,
    /// The reconciliation version it is listed in.
    pub version: i64,
    /// The discrepancy, exactly as stored.
    #[serde(flatten)]
    pub discrepancy: ReportedDiscrepancy,
}

/// The current reconciliations of `month` (`grid_area` only, when given), via the sinks'
/// one query; 404 with the CLI's explanation when there is none.
async fn current(
    state: &AppState,
    month: &str,
    grid_area: Option<&str>,
) -> Result<Vec<MonthReconciliation>, ApiError> {
    let month_start = parse_month(month)?;
    let grid_area = grid_area.map(limits::grid_area).transpose()?;
    let mut conn = state.pool.acquire().await?;
    let found = reconciliation::month(&mut conn, month_start, grid_area.as_deref()).await?;
    if found.is_empty() {
        let areas = grid_area.map_or_else(String::new, |a| format!(" of grid area {a}"));
        return Err(ApiError::NotFound(format!(
            "no reconciliation of {month}{areas}: DataHub's results (RSM-019/RSM-014) for the month have not arrived, or reconcile has not reconciled them yet"
        )));
    }
    Ok(found)
}

/// `GET /v1/reconciliations/{month}`: the month's current reconciliation per grid area,
/// exactly what `afregning reconcile report --month --format json` prints.
#[utoipa::path(get, path = "/v1/reconciliations/{month}", tag = "reconciliation",
    params(("month" = String, Path, description = "YYYY-MM (Danish calendar month)"), ReportQuery),
    responses((status = 200, body = Vec<MonthReconciliation>), (status = 400, body = crate::error::Problem),
        (status = 404, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn report(
    State(state): State<AppState>,
    Path(month): Path<String>,
    Query(query): Query<ReportQuery>,
) -> Result<Json<Vec<MonthReconciliation>>, ApiError> {
    let found = current(&state, &month, query.grid_area.as_deref()).await?;
    Ok(Json(found))
}

/// `GET /v1/reconciliations/{month}/discrepancies`: the discrepancies of the month's current
/// reconciliations, by grid area and then in their order; filtered by grid area and level.
#[utoipa::path(get, path = "/v1/reconciliations/{month}/discrepancies", tag = "reconciliation",
    params(("month" = String, Path, description = "YYYY-MM (Danish calendar month)"), DiscrepancyQuery),
    responses((status = 200, body = Vec<GridAreaDiscrepancy>), (status = 400, body = crate::error::Problem),
        (status = 404, body = crate::error::Problem), (status = 422, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn discrepancies(
    State(state): State<AppState>,
    Path(month): Path<String>,
    Query(query): Query<DiscrepancyQuery>,
) -> Result<Json<Vec<GridAreaDiscrepancy>>, ApiError> {
    let limit = usize::try_from(limits::page_size(query.page_size)?).unwrap_or(usize::MAX);
    if let Some(level) = &query.level
        && !LEVELS.contains(&level.as_str())
    {
        return Err(ApiError::BadRequest(format!(
            "`{level}` is not a level (one of {})",
            LEVELS.join(", ")
        )));
    }
    let found = current(&state, &month, query.grid_area.as_deref()).await?;
    Ok(Json(flatten(found, query.level.as_deref(), limit)))
}

/// Every discrepancy of `found` at `level` (all when `None`), at most `limit`.
fn flatten(
    found: Vec<MonthReconciliation>,
    level: Option<&str>,
    limit: usize,
) -> Vec<GridAreaDiscrepancy> {
    found
        .into_iter()
        .flat_map(|m| {
            let (grid_area, month_start, version) = (m.grid_area, m.month_start, m.version);
            m.discrepancies
                .into_iter()
                .map(move |discrepancy| GridAreaDiscrepancy {
                    grid_area: grid_area.clone(),
                    month_start,
                    version,
                    discrepancy,
                })
        })
        .filter(|d| level.is_none_or(|l| d.discrepancy.level == l))
        .take(limit)
        .collect()
}

/// Body of `POST /v1/datahub-requests`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct NewRequest {
    /// `aggregated_measure_data` (RSM-016, answered with RSM-014) or `wholesale_settlement` (RSM-017, answered with RSM-019).
    pub requested_data: RequestedData,
    /// The calculation type: D03, D04, D05 or D32 (wholesale settlement: D05 or D32).
    pub business_reason: String,
    /// With D32 only: the correction round, D01-D03.
    pub settlement_version: Option<String>,
    /// The grid area (3 digits).
    pub grid_area: String,
    /// The month, YYYY-MM: over, and at most 3 years and 6 months back.
    pub month: String,
    /// Wholesale settlement only: one charge owner's results.
    pub charge_owner_gln: Option<String>,
    /// Why (required; goes into the audit log).
    pub reason: Option<String>,
}

/// Query of `GET /v1/datahub-requests`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RequestsQuery {
    /// Only requests in this state (pending, sent, accepted, rejected, failed, answered, refused).
    pub state: Option<String>,
    /// At most this many, newest first (default 100, at most 1000).
    pub page_size: Option<i64>,
}

/// `POST /v1/datahub-requests`: asks DataHub for a grid area's month of results.
/// The request is recorded as `pending` with its audit row in one transaction;
/// `afregning reconcile relay` sends it and records DataHub's answers against it.
#[utoipa::path(post, path = "/v1/datahub-requests", tag = "reconciliation", request_body = NewRequest,
    responses((status = 202, body = StoredRequest), (status = 400, body = crate::error::Problem),
        (status = 422, body = crate::error::Problem), (status = 503, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn request(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Extension(request_id): Extension<RequestId>,
    Json(body): Json<NewRequest>,
) -> Result<(StatusCode, Json<StoredRequest>), ApiError> {
    let reason = audit::reason(body.reason.as_deref())?;
    let month = parse_month(&body.month)?;
    let grid_area = limits::grid_area(&body.grid_area)?;
    let supplier_gln = state.supplier_gln.clone().ok_or_else(|| {
        ApiError::Unavailable(
            "the API has no supplier GLN to ask DataHub as (AFREGNING_SUPPLIER_GLN)".into(),
        )
    })?;
    let spec = RequestSpec {
        data: body.requested_data,
        business_reason: body.business_reason.clone(),
        settlement_version: body.settlement_version.clone(),
        grid_area,
        month,
        supplier_gln,
        charge_owner_gln: body.charge_owner_gln.clone(),
    };
    let now = Utc::now();
    let today = now
        .with_timezone(&chrono_tz::Europe::Copenhagen)
        .date_naive();
    document::check(&spec, today).map_err(ApiError::Unprocessable)?;
    let ids = RequestIds::new();
    let (_, cim) = document::document(&spec, &ids, chrono::SubsecRound::trunc_subsecs(now, 0));
    let mut tx = state.pool.begin().await?;
    let stored = store::record(&mut tx, &spec, &ids, &cim, &caller.subject, &reason).await?;
    audit::record(
        &mut tx,
        &Change {
            caller: &caller,
            request_id: &request_id,
            action: "datahub_request.create",
            target: format!("datahub_request:{}", ids.request_id),
            reason: &reason,
            details: serde_json::json!({
                "requested_data": spec.data.name(),
                "business_reason": spec.business_reason,
                "settlement_version": spec.settlement_version,
                "grid_area": spec.grid_area,
                "month": body.month,
                "charge_owner_gln": spec.charge_owner_gln,
                "message_id": ids.message_id,
                "transaction_id": ids.transaction_id,
            }),
        },
    )
    .await?;
    tx.commit().await?;
    Ok((StatusCode::ACCEPTED, Json(stored)))
}

/// `GET /v1/datahub-requests`: the requests to DataHub, newest first, with their state.
#[utoipa::path(get, path = "/v1/datahub-requests", tag = "reconciliation", params(RequestsQuery),
    responses((status = 200, body = Vec<StoredRequest>), (status = 400, body = crate::error::Problem),
        (status = 422, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn requests(
    State(state): State<AppState>,
    Query(query): Query<RequestsQuery>,
) -> Result<Json<Vec<StoredRequest>>, ApiError> {
    let limit = limits::page_size(query.page_size)?;
    if let Some(s) = &query.state
        && !store::STATES.contains(&s.as_str())
    {
        return Err(ApiError::BadRequest(format!(
            "`{s}` is not a state (one of {})",
            store::STATES.join(", ")
        )));
    }
    let mut conn = state.pool.acquire().await?;
    Ok(Json(
        store::list(&mut conn, query.state.as_deref(), limit).await?,
    ))
}

/// `GET /v1/datahub-requests/{request_id}`: one request, its state and DataHub's answers.
#[utoipa::path(get, path = "/v1/datahub-requests/{request_id}", tag = "reconciliation",
    params(("request_id" = String, Path, description = "the request's id")),
    responses((status = 200, body = StoredRequest), (status = 404, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn show_request(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<StoredRequest>, ApiError> {
    let mut conn = state.pool.acquire().await?;
    store::get(&mut conn, &id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("no request {id}")))
}

//! Portfolio: the metering points the supplier has, by grid area, and one
//! metering point's master data with every message that changed it: the first
//! thing customer service or an operator checks about a customer.

use axum::Json;
use axum::extract::{Path, Query, State};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::parse_gsrn;
use crate::{ApiError, AppState, limits};

/// One validity period of a metering point's master data.
#[derive(Debug, Serialize, sqlx::FromRow, ToSchema)]
pub struct MeteringPointPeriod {
    /// Start of this period of validity.
    pub valid_from: DateTime<Utc>,
    /// End of validity, absent while current.
    pub valid_to: Option<DateTime<Utc>>,
    /// E17 consumption, E18 production, ...
    pub metering_point_type: String,
    /// E02 non-profiled (hourly) or D01 flex, where given.
    pub settlement_method: Option<String>,
    /// The grid area, which routes the point's records.
    pub grid_area: String,
    /// DK1 or DK2, where given.
    pub price_area: Option<String>,
    /// PT15M, PT1H, ...
    pub resolution: String,
    /// The supplier responsible in this period.
    pub energy_supplier_gln: Option<String>,
    /// Start of our supply, where known.
    pub supply_start: Option<DateTime<Utc>>,
    /// End of our supply, where known.
    pub supply_end: Option<DateTime<Utc>>,
    /// The DataHub message this period came from (provenance).
    pub source_message_id: String,
}

/// One master-data message as received, superseded or not.
#[derive(Debug, Serialize, sqlx::FromRow, ToSchema)]
pub struct MasterDataMessage {
    /// The validity start the message stated.
    pub valid_from: DateTime<Utc>,
    /// The DataHub message id.
    pub source_message_id: String,
    /// When the pipeline received it.
    pub received_at: DateTime<Utc>,
    /// The grid area it stated.
    pub grid_area: String,
    /// The settlement method it stated.
    pub settlement_method: Option<String>,
    /// The resolution it stated.
    pub resolution: String,
    /// The supplier it stated.
    pub energy_supplier_gln: Option<String>,
    /// The connection state it stated.
    pub connection_state: Option<String>,
}

/// The answer: the GSRN, its periods and the messages behind them.
#[derive(Debug, Serialize, ToSchema)]
pub struct MeteringPoint {
    /// The metering point.
    pub gsrn: String,
    /// Its validity periods as they stand now, oldest first.
    pub periods: Vec<MeteringPointPeriod>,
    /// Every master-data message received for it, in order of receipt.
    pub history: Vec<MasterDataMessage>,
}

/// `GET /v1/metering-points/{gsrn}`.
#[utoipa::path(get, path = "/v1/metering-points/{gsrn}", tag = "portfolio",
    params(("gsrn" = String, Path, description = "18-digit GSRN")),
    responses((status = 200, body = MeteringPoint), (status = 400, body = crate::error::Problem),
        (status = 404, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn get_metering_point(
    State(state): State<AppState>,
    Path(gsrn): Path<String>,
) -> Result<Json<MeteringPoint>, ApiError> {
    let gsrn = parse_gsrn(&gsrn)?;
    find(&state.pool, &gsrn)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("no master data for metering point {gsrn}")))
}

/// One metering point's master data and history, `None` when it has none
/// (the console's page uses it too).
pub async fn find(pool: &sqlx::PgPool, gsrn: &str) -> Result<Option<MeteringPoint>, ApiError> {
    let periods: Vec<MeteringPointPeriod> = sqlx::query_as(
        "SELECT valid_from, valid_to, metering_point_type, settlement_method, grid_area, \
                price_area, resolution, energy_supplier_gln, supply_start, supply_end, \
                source_message_id \
         FROM metering_point WHERE gsrn = $1 ORDER BY valid_from",
    )
    .bind(gsrn)
    .fetch_all(pool)
    .await?;
    if periods.is_empty() {
        return Ok(None);
    }
    let history: Vec<MasterDataMessage> = sqlx::query_as(
        "SELECT valid_from, source_message_id, received_at, grid_area, settlement_method, \
                resolution, energy_supplier_gln, connection_state \
         FROM metering_point_history WHERE gsrn = $1 ORDER BY received_at, valid_from",
    )
    .bind(gsrn)
    .fetch_all(pool)
    .await?;
    Ok(Some(MeteringPoint {
        gsrn: gsrn.to_string(),
        periods,
        history,
    }))
}

/// Query of `GET /v1/metering-points`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only this grid area (3 digits).
    pub grid_area: Option<String>,
    /// Only GSRNs starting with these digits (the console's search).
    pub gsrn_prefix: Option<String>,
    /// The page starts after this GSRN (the previous page's `next_after`).
    pub after: Option<String>,
    /// Page size (default 100, at most 1000).
    pub page_size: Option<i64>,
}

/// One metering point in a listing: its current master data.
#[derive(Debug, Serialize, sqlx::FromRow, ToSchema)]
pub struct MeteringPointSummary {
    /// The metering point.
    pub gsrn: String,
    /// Its grid area now.
    pub grid_area: String,
    /// E17, E18, ...
    pub metering_point_type: String,
    /// Its resolution now.
    pub resolution: String,
    /// Its settlement method now.
    pub settlement_method: Option<String>,
    /// Since when the current master data holds.
    pub valid_from: DateTime<Utc>,
}

/// A page of metering points, in GSRN order.
#[derive(Debug, Serialize, ToSchema)]
pub struct MeteringPointPage {
    /// This page.
    pub items: Vec<MeteringPointSummary>,
    /// Pass as `after` for the next page; absent on the last.
    pub next_after: Option<String>,
}

/// `GET /v1/metering-points`: the portfolio, paginated by GSRN (keyset, so
/// pages stay stable while master data arrives).
#[utoipa::path(get, path = "/v1/metering-points", tag = "portfolio", params(ListQuery),
    responses((status = 200, body = MeteringPointPage), (status = 400, body = crate::error::Problem),
        (status = 422, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    Query(query): Query<ListQuery>,
) -> Result<Json<MeteringPointPage>, ApiError> {
    Ok(Json(page(&state.pool, &query).await?))
}

/// The listing behind [`list`] (and the console's search).
pub async fn page(pool: &sqlx::PgPool, query: &ListQuery) -> Result<MeteringPointPage, ApiError> {
    let size = limits::page_size(query.page_size)?;
    let grid_area = query
        .grid_area
        .as_deref()
        .map(limits::grid_area)
        .transpose()?;
    let after = query.after.as_deref().map(parse_gsrn).transpose()?;
    let prefix = match query.gsrn_prefix.as_deref().map(str::trim) {
        Some(p) if !p.is_empty() => {
            if p.len() > 18 || !p.bytes().all(|b| b.is_ascii_digit()) {
                return Err(ApiError::BadRequest(format!(
                    "`{p}` is not the start of a GSRN (up to 18 digits)"
                )));
            }
            Some(p.to_string())
        }
        _ => None,
    };
    let mut items: Vec<MeteringPointSummary> = sqlx::query_as(
        "SELECT DISTINCT ON (gsrn) gsrn, grid_area, metering_point_type, resolution, \
                settlement_method, valid_from \
         FROM metering_point \
         WHERE ($1::text IS NULL OR grid_area = $1) \
           AND ($2::text IS NULL OR gsrn > $2) \
           AND ($3::text IS NULL OR starts_with(gsrn, $3)) \
         ORDER BY gsrn, valid_from DESC \
         LIMIT $4",
    )
    .bind(&grid_area)
    .bind(&after)
    .bind(&prefix)
    .bind(size + 1)
    .fetch_all(pool)
    .await?;
    let next_after = if items.len() as i64 > size {
        items.truncate(size as usize);
        items.last().map(|m| m.gsrn.clone())
    } else {
        None
    };
    Ok(MeteringPointPage { items, next_after })
}

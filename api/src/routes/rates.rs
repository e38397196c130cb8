//! Grid tariffs, subscriptions and fees per grid area, as the settlements
//! applied them. The charge price lists themselves live in settle's global
//! tables (decision 0071), not in the sinks' tables; what the tables do hold
//! is every charge line of every latest provisional settlement, with its
//! owner, type, code and unit price per month, which is what a bill used.
//! A time-of-use tariff's unit price on a line is its quantity-weighted
//! average over the month.

use axum::Json;
use axum::extract::{Path, Query, State};
use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::parse_month;
use crate::{ApiError, AppState, limits};

/// Query of `GET /v1/rates/{grid_area}`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RatesQuery {
    /// First month (YYYY-MM), default: all months held.
    pub from_month: Option<String>,
    /// Last month (YYYY-MM, inclusive), default: all months held.
    pub to_month: Option<String>,
}

/// One charge as applied in a month in a grid area.
#[derive(Debug, Serialize, sqlx::FromRow, ToSchema)]
pub struct AppliedCharge {
    /// First day of the month.
    pub month_start: NaiveDate,
    /// D01 subscription, D02 fee, D03 tariff.
    pub charge_type: String,
    /// The owner's charge code.
    pub charge_code: Option<String>,
    /// GLN of the charge owner.
    pub charge_owner_gln: Option<String>,
    /// The line text.
    pub description: String,
    /// kWh, days, ...
    pub quantity_unit: String,
    /// Lowest unit price applied (DKK).
    pub min_unit_price: Decimal,
    /// Highest unit price applied (DKK).
    pub max_unit_price: Decimal,
    /// Metering points it was applied to.
    pub metering_points: i64,
}

/// `GET /v1/rates/{grid_area}`: charges applied per month, newest month first.
#[utoipa::path(get, path = "/v1/rates/{grid_area}", tag = "rates",
    params(("grid_area" = String, Path, description = "3-digit grid area"), RatesQuery),
    responses((status = 200, body = Vec<AppliedCharge>), (status = 400, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn charges_seen(
    State(state): State<AppState>,
    Path(grid_area): Path<String>,
    Query(query): Query<RatesQuery>,
) -> Result<Json<Vec<AppliedCharge>>, ApiError> {
    let grid_area = limits::grid_area(&grid_area)?;
    let from = query.from_month.as_deref().map(parse_month).transpose()?;
    let to = query.to_month.as_deref().map(parse_month).transpose()?;
    Ok(Json(
        sqlx::query_as(
            "SELECT month_start, charge_type, charge_code, charge_owner_gln, \
                    min(description) AS description, quantity_unit, \
                    min(unit_price) AS min_unit_price, max(unit_price) AS max_unit_price, \
                    count(DISTINCT gsrn) AS metering_points \
             FROM settlement_line_latest \
             WHERE grid_area = $1 AND charge_type IS NOT NULL \
               AND ($2::date IS NULL OR month_start >= $2) \
               AND ($3::date IS NULL OR month_start <= $3) \
             GROUP BY month_start, charge_type, charge_code, charge_owner_gln, quantity_unit \
             ORDER BY month_start DESC, charge_type, charge_code",
        )
        .bind(&grid_area)
        .bind(from)
        .bind(to)
        .fetch_all(&state.pool)
        .await?,
    ))
}

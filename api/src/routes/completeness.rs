//! Data completeness per grid area for one local day: whether a day can be
//! settled yet, and where readings are missing.

use axum::Json;
use axum::extract::{Path, State};
use rust_decimal::Decimal;
use serde::Serialize;
use utoipa::ToSchema;

use super::parse_date;
use crate::{ApiError, AppState};

/// Completeness of one grid area on one day.
#[derive(Debug, Serialize, sqlx::FromRow, ToSchema)]
pub struct GridAreaCompleteness {
    /// The grid area.
    pub grid_area: String,
    /// Metering points with any data that day.
    pub metering_points: i64,
    /// Of those, how many have every expected position.
    pub complete_metering_points: i64,
    /// Positions expected (92, 96 or 100 per PT15M point, by the day's length).
    pub expected_positions: Option<Decimal>,
    /// Positions received.
    pub received_positions: Option<Decimal>,
    /// received / expected.
    pub positions_ratio: Option<Decimal>,
}

/// `GET /v1/completeness/{date}`: one row per grid area with data that day.
#[utoipa::path(get, path = "/v1/completeness/{date}", tag = "metering data",
    params(("date" = String, Path, description = "local day, YYYY-MM-DD")),
    responses((status = 200, body = Vec<GridAreaCompleteness>), (status = 400, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn per_grid_area(
    State(state): State<AppState>,
    Path(date): Path<String>,
) -> Result<Json<Vec<GridAreaCompleteness>>, ApiError> {
    let date = parse_date(&date)?;
    let rows: Vec<GridAreaCompleteness> = sqlx::query_as(
        "SELECT grid_area, metering_points, complete_metering_points, \
                expected_positions::numeric AS expected_positions, \
                received_positions::numeric AS received_positions, positions_ratio \
         FROM data_completeness_grid_area_day WHERE local_date = $1 ORDER BY grid_area",
    )
    .bind(date)
    .fetch_all(&state.pool)
    .await?;
    Ok(Json(rows))
}

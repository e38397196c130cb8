//! Master data as the pipeline last received it: the first thing an operator
//! checks when a metering point's readings wait or are dead-lettered.

use axum::Json;
use axum::extract::{Path, State};
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::parse_gsrn;
use crate::{ApiError, AppState};

/// One validity period of a metering point's master data.
#[derive(Debug, Serialize, sqlx::FromRow)]
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

/// The answer: the GSRN and its periods, oldest first.
#[derive(Debug, Serialize)]
pub struct MeteringPoint {
    /// The metering point.
    pub gsrn: String,
    /// Its validity periods, oldest first.
    pub periods: Vec<MeteringPointPeriod>,
}

/// `GET /v1/metering-points/{gsrn}`.
pub async fn get_metering_point(
    State(state): State<AppState>,
    Path(gsrn): Path<String>,
) -> Result<Json<MeteringPoint>, ApiError> {
    let gsrn = parse_gsrn(&gsrn)?;
    let periods: Vec<MeteringPointPeriod> = sqlx::query_as(
        "SELECT valid_from, valid_to, metering_point_type, settlement_method, grid_area, \
                price_area, resolution, energy_supplier_gln, supply_start, supply_end, \
                source_message_id \
         FROM metering_point WHERE gsrn = $1 ORDER BY valid_from",
    )
    .bind(&gsrn)
    .fetch_all(&state.pool)
    .await?;
    if periods.is_empty() {
        return Err(ApiError::NotFound(format!(
            "no master data for metering point {gsrn}"
        )));
    }
    Ok(Json(MeteringPoint { gsrn, periods }))
}

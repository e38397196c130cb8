//! Why a bill says what it says: each line of a provisional settlement with
//! the inputs behind it, as far as the sinks' tables hold them: the daily
//! quantities and spot cost per local day (`daily_summary`), the DataHub
//! messages the quantities came from (`metering_data`), the master data in
//! force (`metering_point`), and for a charge its owner, type and code. Price
//! curves themselves are not sunk; a charge line's unit price is the one the
//! engine applied, a spot line's the day's cost over its quantity.

use axum::Json;
use axum::extract::{Path, Query, State};
use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::settlements::{Line, VersionTotals};
use super::{parse_gsrn, parse_month};
use crate::{ApiError, AppState};

/// Query of the explanation: which version (default the latest).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExplainQuery {
    /// The version to explain; the latest when absent.
    pub version: Option<i64>,
}

/// The charge a line prices, as the engine named it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChargeRef {
    /// GLN of the charge owner (the grid company, Energinet, ...).
    pub owner_gln: Option<String>,
    /// D01 subscription, D02 fee, D03 tariff.
    pub charge_type: Option<String>,
    /// The owner's charge code.
    pub code: Option<String>,
}

/// One line with what it was computed from.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExplainedLine {
    /// The line as billed.
    #[serde(flatten)]
    pub line: Line,
    /// The charge behind it, for charge lines.
    pub charge: Option<ChargeRef>,
    /// quantity × unit price, to the line's precision: equal to the amount
    /// unless the engine summed per-position amounts (time-of-use prices).
    pub quantity_times_unit_price: Decimal,
}

/// One local day's inputs.
#[derive(Debug, Serialize, sqlx::FromRow, ToSchema)]
pub struct DayInput {
    /// The local day.
    pub local_date: NaiveDate,
    /// kWh that day.
    pub kwh: Decimal,
    /// Spot cost that day (DKK), where prices were known.
    pub spot_cost_dkk: Option<Decimal>,
    /// Positions expected.
    pub expected_positions: i32,
    /// Positions received.
    pub received_positions: i32,
    /// Whether the day was complete.
    pub complete: bool,
}

/// A DataHub message that supplied metering data in the month.
#[derive(Debug, Serialize, sqlx::FromRow, ToSchema)]
pub struct SourceMessage {
    /// The DataHub MessageId.
    pub message_id: String,
    /// Positions it supplied in the month.
    pub positions: i64,
    /// First position it supplied.
    pub first_position: DateTime<Utc>,
    /// Last position it supplied.
    pub last_position: DateTime<Utc>,
}

/// A version's lines and their inputs.
#[derive(Debug, Serialize, ToSchema)]
pub struct Explanation {
    /// The metering point.
    pub gsrn: String,
    /// First day of the month.
    pub month: NaiveDate,
    /// The version's totals.
    pub totals: VersionTotals,
    /// Its lines, each with its charge.
    pub lines: Vec<ExplainedLine>,
    /// Quantities and spot cost per local day.
    pub days: Vec<DayInput>,
    /// The DataHub messages that supplied the month's metering data.
    pub metering_data_messages: Vec<SourceMessage>,
    /// The master-data messages in force in the month.
    pub master_data_messages: Vec<String>,
}

/// `GET /v1/settlements/{gsrn}/{month}/explain`.
#[utoipa::path(get, path = "/v1/settlements/{gsrn}/{month}/explain", tag = "settlement",
    params(("gsrn" = String, Path, description = "18-digit GSRN"),
        ("month" = String, Path, description = "YYYY-MM"), ExplainQuery),
    responses((status = 200, body = Explanation), (status = 400, body = crate::error::Problem),
        (status = 404, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn explain(
    State(state): State<AppState>,
    Path((gsrn, month)): Path<(String, String)>,
    Query(query): Query<ExplainQuery>,
) -> Result<Json<Explanation>, ApiError> {
    let gsrn = parse_gsrn(&gsrn)?;
    let month = parse_month(&month)?;
    let pool = &state.pool;
    let totals: Option<VersionTotals> = sqlx::query_as(
        "SELECT version, grid_area, total_excl_vat, vat_amount, total_incl_vat, days_settled, \
                days_in_month, computed_at \
         FROM settlement_version WHERE gsrn = $1 AND month_start = $2 \
           AND ($3::bigint IS NULL OR version = $3) \
         ORDER BY version DESC LIMIT 1",
    )
    .bind(&gsrn)
    .bind(month)
    .bind(query.version)
    .fetch_optional(pool)
    .await?;
    let Some(totals) = totals else {
        return Err(ApiError::NotFound(format!(
            "no settlement version for {gsrn} in {}",
            month.format("%Y-%m")
        )));
    };
    let lines: Vec<Line> = sqlx::query_as(
        "SELECT line_no, component, description, charge_owner_gln, charge_type, charge_code, \
                quantity, quantity_unit, unit_price, amount, vat_class \
         FROM settlement_line WHERE gsrn = $1 AND month_start = $2 AND version = $3 \
         ORDER BY line_no",
    )
    .bind(&gsrn)
    .bind(month)
    .bind(totals.version)
    .fetch_all(pool)
    .await?;
    let next_month = month + chrono::Months::new(1);
    let days: Vec<DayInput> = sqlx::query_as(
        "SELECT local_date, kwh, spot_cost_dkk, expected_positions, \
                received_positions, complete \
         FROM daily_summary_day WHERE gsrn = $1 AND local_date >= $2 AND local_date < $3 \
         ORDER BY local_date",
    )
    .bind(&gsrn)
    .bind(month)
    .bind(next_month)
    .fetch_all(pool)
    .await?;
    let (start, end) = (
        super::metering_data::local_midnight(month),
        super::metering_data::local_midnight(next_month),
    );
    let metering_data_messages: Vec<SourceMessage> = sqlx::query_as(
        "SELECT source_message_id AS message_id, count(*) AS positions, \
                min(ts) AS first_position, max(ts) AS last_position \
         FROM metering_data WHERE gsrn = $1 AND ts >= $2 AND ts < $3 \
         GROUP BY source_message_id ORDER BY min(ts), source_message_id",
    )
    .bind(&gsrn)
    .bind(start)
    .bind(end)
    .fetch_all(pool)
    .await?;
    let master_data_messages: Vec<String> = sqlx::query_scalar(
        "SELECT source_message_id FROM metering_point \
         WHERE gsrn = $1 AND valid_from < $3 AND (valid_to IS NULL OR valid_to > $2) \
         ORDER BY valid_from",
    )
    .bind(&gsrn)
    .bind(start)
    .bind(end)
    .fetch_all(pool)
    .await?;
    let lines = lines
        .into_iter()
        .map(|line| ExplainedLine {
            charge: line.charge_type.as_ref().map(|_| ChargeRef {
                owner_gln: line.charge_owner_gln.clone(),
                charge_type: line.charge_type.clone(),
                code: line.charge_code.clone(),
            }),
            quantity_times_unit_price: (line.quantity * line.unit_price).round_dp(6),
            line,
        })
        .collect();
    Ok(Json(Explanation {
        gsrn,
        month,
        totals,
        lines,
        days,
        metering_data_messages,
        master_data_messages,
    }))
}

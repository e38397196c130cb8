//! Provisional settlement and final statements of one metering point-month:
//! what a customer-service agent needs to explain a bill. Amounts are exact
//! decimals, serialised as strings so no JSON reader rounds them.

use axum::Json;
use axum::extract::{Path, State};
use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::Serialize;
use utoipa::ToSchema;

use super::{parse_gsrn, parse_month};
use crate::{ApiError, AppState};

/// A version's header: its totals and how much of the month it covers.
#[derive(Debug, Serialize, sqlx::FromRow, ToSchema)]
pub struct VersionTotals {
    /// Version number, increasing with every change of an input.
    pub version: i64,
    /// Grid area of the metering point.
    pub grid_area: String,
    /// Sum of the lines before VAT.
    pub total_excl_vat: Decimal,
    /// VAT on the lines.
    pub vat_amount: Decimal,
    /// What the customer pays.
    pub total_incl_vat: Decimal,
    /// Days with complete data so far.
    pub days_settled: i32,
    /// Days in the month (local calendar).
    pub days_in_month: i32,
    /// When the settle processor computed it.
    pub computed_at: DateTime<Utc>,
}

/// One line of a settlement or statement.
#[derive(Debug, Serialize, sqlx::FromRow, ToSchema)]
pub struct Line {
    /// Position on the bill.
    pub line_no: i32,
    /// Spot energy, margin, grid tariff, subscription, tax, ...
    pub component: String,
    /// Human-readable text.
    pub description: String,
    /// The charge owner, for charges.
    pub charge_owner_gln: Option<String>,
    /// The charge type (D01 subscription, D02 fee, D03 tariff), for charges.
    pub charge_type: Option<String>,
    /// The charge code, for charges.
    pub charge_code: Option<String>,
    /// kWh, days, ...
    pub quantity: Decimal,
    /// The quantity's unit.
    pub quantity_unit: String,
    /// Price per unit (DKK).
    pub unit_price: Decimal,
    /// The line's amount (DKK).
    pub amount: Decimal,
    /// Which VAT rule applies.
    pub vat_class: String,
}

/// The latest provisional settlement of a metering point-month.
#[derive(Debug, Serialize, ToSchema)]
pub struct Settlement {
    /// The metering point.
    pub gsrn: String,
    /// First day of the billing month.
    pub month: NaiveDate,
    /// The latest version's totals.
    #[serde(flatten)]
    pub totals: VersionTotals,
    /// Its lines.
    pub lines: Vec<Line>,
}

/// `GET /v1/settlements/{gsrn}/{month}`: the latest version with its lines.
#[utoipa::path(get, path = "/v1/settlements/{gsrn}/{month}", tag = "settlement",
    params(("gsrn" = String, Path, description = "18-digit GSRN"), ("month" = String, Path, description = "YYYY-MM")),
    responses((status = 200, body = Settlement), (status = 400, body = crate::error::Problem),
        (status = 404, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn latest(
    State(state): State<AppState>,
    Path((gsrn, month)): Path<(String, String)>,
) -> Result<Json<Settlement>, ApiError> {
    let gsrn = parse_gsrn(&gsrn)?;
    let month = parse_month(&month)?;
    load_latest(&state.pool, &gsrn, month)
        .await?
        .map(Json)
        .ok_or_else(|| {
            ApiError::NotFound(format!(
                "no settlement for {gsrn} in {}",
                month.format("%Y-%m")
            ))
        })
}

/// The latest provisional version of a metering point-month with its lines,
/// `None` when there is none (the console shows it too).
pub async fn load_latest(
    pool: &sqlx::PgPool,
    gsrn: &str,
    month: NaiveDate,
) -> Result<Option<Settlement>, ApiError> {
    let totals: Option<VersionTotals> = sqlx::query_as(
        "SELECT version, grid_area, total_excl_vat, vat_amount, total_incl_vat, days_settled, \
                days_in_month, computed_at \
         FROM settlement_version WHERE gsrn = $1 AND month_start = $2 \
         ORDER BY version DESC LIMIT 1",
    )
    .bind(gsrn)
    .bind(month)
    .fetch_optional(pool)
    .await?;
    let Some(totals) = totals else {
        return Ok(None);
    };
    let lines: Vec<Line> = sqlx::query_as(
        "SELECT line_no, component, description, charge_owner_gln, charge_type, charge_code, \
                quantity, quantity_unit, unit_price, amount, vat_class \
         FROM settlement_line WHERE gsrn = $1 AND month_start = $2 AND version = $3 \
         ORDER BY line_no",
    )
    .bind(gsrn)
    .bind(month)
    .bind(totals.version)
    .fetch_all(pool)
    .await?;
    Ok(Some(Settlement {
        gsrn: gsrn.to_string(),
        month,
        totals,
        lines,
    }))
}

/// `GET /v1/settlements/{gsrn}/{month}/versions`: every version's totals,
/// oldest first: how a month's bill moved as data arrived.
#[utoipa::path(get, path = "/v1/settlements/{gsrn}/{month}/versions", tag = "settlement",
    params(("gsrn" = String, Path, description = "18-digit GSRN"), ("month" = String, Path, description = "YYYY-MM")),
    responses((status = 200, body = Vec<VersionTotals>), (status = 400, body = crate::error::Problem),
        (status = 404, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn versions(
    State(state): State<AppState>,
    Path((gsrn, month)): Path<(String, String)>,
) -> Result<Json<Vec<VersionTotals>>, ApiError> {
    let gsrn = parse_gsrn(&gsrn)?;
    let month = parse_month(&month)?;
    let versions = load_versions(&state.pool, &gsrn, month).await?;
    if versions.is_empty() {
        return Err(ApiError::NotFound(format!(
            "no settlement for {gsrn} in {}",
            month.format("%Y-%m")
        )));
    }
    Ok(Json(versions))
}

/// Every version's totals of a metering point-month, oldest first.
pub async fn load_versions(
    pool: &sqlx::PgPool,
    gsrn: &str,
    month: NaiveDate,
) -> Result<Vec<VersionTotals>, ApiError> {
    Ok(sqlx::query_as(
        "SELECT version, grid_area, total_excl_vat, vat_amount, total_incl_vat, days_settled, \
                days_in_month, computed_at \
         FROM settlement_version WHERE gsrn = $1 AND month_start = $2 ORDER BY version",
    )
    .bind(gsrn)
    .bind(month)
    .fetch_all(pool)
    .await?)
}

/// A final statement or credit note.
#[derive(Debug, Serialize, sqlx::FromRow, ToSchema)]
pub struct Statement {
    /// Its id, as the ERP knows it.
    pub statement_id: String,
    /// `STATEMENT` or `CREDIT_NOTE`.
    pub kind: String,
    /// For a credit note, the statement it cancels.
    pub corrects_statement_id: Option<String>,
    /// The settlement version it was made from.
    pub version: i64,
    /// Sum of the lines before VAT.
    pub total_excl_vat: Decimal,
    /// VAT.
    pub vat_amount: Decimal,
    /// What the customer pays (negative on a credit note).
    pub total_incl_vat: Decimal,
    /// Currency code.
    pub currency: String,
    /// When it was issued.
    pub issued_at: DateTime<Utc>,
    /// Its lines.
    #[sqlx(skip)]
    pub lines: Vec<Line>,
}

/// `GET /v1/statements/{gsrn}/{month}`: statements and credit notes in issue order.
#[utoipa::path(get, path = "/v1/statements/{gsrn}/{month}", tag = "settlement",
    params(("gsrn" = String, Path, description = "18-digit GSRN"), ("month" = String, Path, description = "YYYY-MM")),
    responses((status = 200, body = Vec<Statement>), (status = 400, body = crate::error::Problem),
        (status = 404, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn statements(
    State(state): State<AppState>,
    Path((gsrn, month)): Path<(String, String)>,
) -> Result<Json<Vec<Statement>>, ApiError> {
    let gsrn = parse_gsrn(&gsrn)?;
    let month = parse_month(&month)?;
    let mut statements: Vec<Statement> = sqlx::query_as(
        "SELECT statement_id, kind, corrects_statement_id, version, total_excl_vat, vat_amount, \
                total_incl_vat, currency, issued_at \
         FROM settlement_statement WHERE gsrn = $1 AND month_start = $2 \
         ORDER BY issued_at, version, kind DESC",
    )
    .bind(&gsrn)
    .bind(month)
    .fetch_all(&state.pool)
    .await?;
    if statements.is_empty() {
        return Err(ApiError::NotFound(format!(
            "no final statement for {gsrn} in {}",
            month.format("%Y-%m")
        )));
    }
    for statement in &mut statements {
        statement.lines = sqlx::query_as(
            "SELECT line_no, component, description, charge_owner_gln, charge_type, charge_code, \
                    quantity, quantity_unit, unit_price, amount, vat_class \
             FROM settlement_statement_line WHERE statement_id = $1 ORDER BY line_no",
        )
        .bind(&statement.statement_id)
        .fetch_all(&state.pool)
        .await?;
    }
    Ok(Json(statements))
}

//! Reading a month's reconciliation back (`afregning reconcile report`): the latest complete
//! version per grid area (`reconciliation_current`, migration 0030) with its discrepancies,
//! exactly as stored.
//!
//! Here, next to the tables, so the CLI, the API and the tests read them one way: the
//! API's `GET /v1/reconciliations/{month}` answers exactly what `afregning reconcile report
//! --format json` prints, and its OpenAPI schema is derived from these types.

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::Serialize;
use sqlx::{PgConnection, Row};
use utoipa::ToSchema;

/// One grid area's month as last reconciled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct MonthReconciliation {
    /// Grid area code.
    pub grid_area: String,
    /// First day of the month.
    pub month_start: NaiveDate,
    /// Version of the reconciliation.
    pub version: i64,
    /// Our GLN.
    pub energy_supplier_gln: String,
    /// The grid company whose total carries the tax charges, when known.
    pub grid_area_owner_gln: Option<String>,
    /// DataHub's runs in force that were compared.
    pub calculations: String,
    /// When reconciled.
    pub computed_at: DateTime<Utc>,
    /// The discrepancies, in their order.
    pub discrepancies: Vec<ReportedDiscrepancy>,
}

/// One discrepancy as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ReportedDiscrepancy {
    /// Number within the reconciliation.
    pub seq: i32,
    /// ENERGY, AMOUNT_PER_CHARGE, MONTHLY_AMOUNT_PER_CHARGE, TOTAL_PER_OWNER, SUPPLIER_TOTAL.
    pub level: String,
    /// QUANTITY, PRICE, AMOUNT.
    pub measure: String,
    /// Charge owner.
    pub charge_owner_gln: Option<String>,
    /// Charge code.
    pub charge_code: Option<String>,
    /// Charge type.
    pub charge_type: Option<String>,
    /// Resolution of the position (P1M for monthly levels).
    pub resolution: String,
    /// Metering point type.
    pub metering_point_type: Option<String>,
    /// Settlement method.
    pub settlement_method: Option<String>,
    /// UTC start of the position.
    pub position_start: DateTime<Utc>,
    /// DataHub's value.
    pub datahub: Option<Decimal>,
    /// Ours.
    pub ours: Option<Decimal>,
    /// DataHub's minus ours.
    pub difference: Decimal,
    /// Our metering points behind our value.
    pub metering_points: Vec<String>,
    /// The DataHub run compared with.
    pub calculation: Option<String>,
}

/// The latest complete reconciliation of `month_start`'s month per grid area (only
/// `grid_area` when given), grid areas in order. Empty when none has been made.
pub async fn month(
    conn: &mut PgConnection,
    month_start: NaiveDate,
    grid_area: Option<&str>,
) -> Result<Vec<MonthReconciliation>, sqlx::Error> {
    let heads = sqlx::query(
        "SELECT grid_area, month_start, version, energy_supplier_gln, grid_area_owner_gln,
                calculations, computed_at
         FROM reconciliation_current
         WHERE month_start = $1 AND ($2::text IS NULL OR grid_area = $2)
         ORDER BY grid_area",
    )
    .bind(month_start)
    .bind(grid_area)
    .fetch_all(&mut *conn)
    .await?;
    let mut out = Vec::new();
    for head in heads {
        let grid_area: String = head.try_get("grid_area")?;
        let version: i64 = head.try_get("version")?;
        let rows = sqlx::query(
            "SELECT seq, level, measure, charge_owner_gln, charge_code, charge_type, resolution,
                    metering_point_type, settlement_method, position_start, datahub, ours,
                    difference, metering_points, calculation
             FROM reconciliation_discrepancy
             WHERE grid_area = $1 AND month_start = $2 AND version = $3
             ORDER BY seq",
        )
        .bind(&grid_area)
        .bind(month_start)
        .bind(version)
        .fetch_all(&mut *conn)
        .await?;
        let discrepancies = rows
            .iter()
            .map(|r| {
                Ok(ReportedDiscrepancy {
                    seq: r.try_get("seq")?,
                    level: r.try_get("level")?,
                    measure: r.try_get("measure")?,
                    charge_owner_gln: r.try_get("charge_owner_gln")?,
                    charge_code: r.try_get("charge_code")?,
                    charge_type: r.try_get("charge_type")?,
                    resolution: r.try_get("resolution")?,
                    metering_point_type: r.try_get("metering_point_type")?,
                    settlement_method: r.try_get("settlement_method")?,
                    position_start: r.try_get("position_start")?,
                    datahub: r.try_get("datahub")?,
                    ours: r.try_get("ours")?,
                    difference: r.try_get("difference")?,
                    metering_points: r.try_get("metering_points")?,
                    calculation: r.try_get("calculation")?,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
        out.push(MonthReconciliation {
            grid_area,
            month_start: head.try_get("month_start")?,
            version,
            energy_supplier_gln: head.try_get("energy_supplier_gln")?,
            grid_area_owner_gln: head.try_get("grid_area_owner_gln")?,
            calculations: head.try_get("calculations")?,
            computed_at: head.try_get("computed_at")?,
            discrepancies,
        });
    }
    Ok(out)
}

/// The grid areas with DataHub results for the month but no complete reconciliation yet:
/// what the report names so that "nothing printed" never hides "never compared".
pub async fn unreconciled_areas(
    conn: &mut PgConnection,
    month_start: NaiveDate,
    month_end: DateTime<Utc>,
    month_begin: DateTime<Utc>,
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT DISTINCT w.grid_area FROM wholesale_result w
         WHERE w.period_start < $2 AND w.period_end > $3
           AND NOT EXISTS (SELECT 1 FROM reconciliation_current c
                           WHERE c.grid_area = w.grid_area AND c.month_start = $1)
         ORDER BY 1",
    )
    .bind(month_start)
    .bind(month_end)
    .bind(month_begin)
    .fetch_all(&mut *conn)
    .await
}

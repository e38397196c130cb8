//! Metering data of one metering point: the quantities DataHub sent, at their
//! own resolution or summed per local hour, day or month, with quality and
//! completeness, and two periods side by side. Read from `metering_data`,
//! which the PostgreSQL sink writes (docs/sinks.md).
//!
//! Periods are local (Europe/Copenhagen) days `[from, to)`, so a DST day has
//! 92 or 100 quarter-hours and its day bar counts them all.

use axum::Json;
use axum::extract::{Path, Query, State};
use chrono::{DateTime, Months, NaiveDate, TimeZone, Utc};
use chrono_tz::Europe::Copenhagen;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{parse_date, parse_gsrn};
use crate::{ApiError, AppState, limits};

/// How quantities are summed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Aggregate {
    /// Each position at the metering point's resolution.
    #[default]
    None,
    /// Per local hour.
    Hour,
    /// Per local day.
    Day,
    /// Per local month.
    Month,
}

impl Aggregate {
    fn longest_period_days(self) -> i64 {
        match self {
            Aggregate::None => limits::MAX_PERIOD_DAYS_AT_RESOLUTION,
            _ => limits::MAX_PERIOD_DAYS_AGGREGATED,
        }
    }

    fn sql_unit(self) -> &'static str {
        match self {
            Aggregate::None => "none",
            Aggregate::Hour => "hour",
            Aggregate::Day => "day",
            Aggregate::Month => "month",
        }
    }
}

/// Query of `GET /v1/metering-points/{gsrn}/metering-data`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SeriesQuery {
    /// First local day (YYYY-MM-DD).
    pub from: String,
    /// Local day after the last (YYYY-MM-DD, exclusive).
    pub to: String,
    /// `none` (default: the metering point's resolution), `hour`, `day` or `month`.
    pub aggregate: Option<Aggregate>,
}

/// Positions per quality code in a bucket (DataHub's codes).
#[derive(Debug, Default, Serialize, ToSchema, sqlx::FromRow)]
pub struct Qualities {
    /// A04: measured.
    pub measured: i64,
    /// A03: estimated.
    pub estimated: i64,
    /// A06: calculated.
    pub calculated: i64,
    /// A01: adjusted.
    pub adjusted: i64,
    /// A05: incomplete.
    pub incomplete: i64,
    /// A02 or no quantity: missing.
    pub missing: i64,
}

/// One bucket of a series.
#[derive(Debug, Serialize, ToSchema)]
pub struct Bucket {
    /// Its start (UTC).
    pub start: DateTime<Utc>,
    /// Its end (UTC, exclusive).
    pub end: DateTime<Utc>,
    /// kWh summed over the positions that have a quantity.
    pub quantity_kwh: Decimal,
    /// Positions the bucket has at the resolution (92/96/100 for a PT15M day).
    pub expected_positions: i64,
    /// Positions received with a quantity.
    pub received_positions: i64,
    /// Positions by quality.
    pub qualities: Qualities,
}

/// A metering point's data over one period.
#[derive(Debug, Serialize, ToSchema)]
pub struct Series {
    /// The metering point.
    pub gsrn: String,
    /// The resolution of the stored positions.
    pub resolution: String,
    /// How they were summed.
    pub aggregate: Aggregate,
    /// First local day.
    pub from: NaiveDate,
    /// Local day after the last.
    pub to: NaiveDate,
    /// Total kWh over the period.
    pub total_kwh: Decimal,
    /// Positions the period has at the resolution.
    pub expected_positions: i64,
    /// Positions received with a quantity.
    pub received_positions: i64,
    /// Buckets with at least one position received, in time order.
    pub buckets: Vec<Bucket>,
}

/// The UTC instant a local day starts (midnight exists every day in Denmark).
pub fn local_midnight(day: NaiveDate) -> DateTime<Utc> {
    Copenhagen
        .from_local_datetime(&day.and_hms_opt(0, 0, 0).expect("midnight"))
        .earliest()
        .expect("Danish midnight exists")
        .with_timezone(&Utc)
}

fn resolution_seconds(resolution: &str) -> Option<i64> {
    match resolution {
        "PT15M" => Some(900),
        "PT1H" => Some(3600),
        _ => None,
    }
}

/// Positions between two instants at `resolution` (P1D/P1M: local days/months).
fn positions(start: DateTime<Utc>, end: DateTime<Utc>, resolution: &str) -> i64 {
    match resolution_seconds(resolution) {
        Some(seconds) => (end - start).num_seconds() / seconds,
        None => {
            let (a, b) = (
                start.with_timezone(&Copenhagen).date_naive(),
                end.with_timezone(&Copenhagen).date_naive(),
            );
            if resolution == "P1M" {
                chrono::Datelike::month0(&b) as i64 - chrono::Datelike::month0(&a) as i64
                    + 12 * (chrono::Datelike::year(&b) as i64 - chrono::Datelike::year(&a) as i64)
            } else {
                (b - a).num_days()
            }
        }
    }
}

/// The end of the bucket starting at `start`.
fn bucket_end(start: DateTime<Utc>, aggregate: Aggregate, resolution: &str) -> DateTime<Utc> {
    let local_day = start.with_timezone(&Copenhagen).date_naive();
    match aggregate {
        Aggregate::None => match resolution_seconds(resolution) {
            Some(seconds) => start + chrono::Duration::seconds(seconds),
            None if resolution == "P1M" => local_midnight(local_day + Months::new(1)),
            None => local_midnight(local_day.succ_opt().expect("a next day")),
        },
        Aggregate::Hour => start + chrono::Duration::hours(1),
        Aggregate::Day => local_midnight(local_day.succ_opt().expect("a next day")),
        Aggregate::Month => local_midnight(local_day + Months::new(1)),
    }
}

#[derive(sqlx::FromRow)]
struct BucketRow {
    start: DateTime<Utc>,
    quantity_kwh: Option<Decimal>,
    received_positions: i64,
    #[sqlx(flatten)]
    qualities: Qualities,
}

/// The series of `gsrn` over `[from, to)` (the console's chart uses it too).
pub async fn load(
    pool: &sqlx::PgPool,
    gsrn: &str,
    from: NaiveDate,
    to: NaiveDate,
    aggregate: Aggregate,
) -> Result<Series, ApiError> {
    limits::period(from, to, aggregate.longest_period_days())?;
    let resolution: Option<String> = sqlx::query_scalar(
        "SELECT resolution FROM metering_point WHERE gsrn = $1 ORDER BY valid_from DESC LIMIT 1",
    )
    .bind(gsrn)
    .fetch_optional(pool)
    .await?;
    let resolution = match resolution {
        Some(r) => r,
        None => sqlx::query_scalar("SELECT resolution FROM metering_data WHERE gsrn = $1 LIMIT 1")
            .bind(gsrn)
            .fetch_optional(pool)
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("no metering point {gsrn}")))?,
    };
    let (start, end) = (local_midnight(from), local_midnight(to));
    let rows: Vec<BucketRow> = sqlx::query_as(
        "SELECT CASE WHEN $5 = 'none' THEN ts \
                     ELSE date_trunc($5, ts AT TIME ZONE 'Europe/Copenhagen') \
                          AT TIME ZONE 'Europe/Copenhagen' END AS start, \
                sum(quantity) AS quantity_kwh, \
                count(quantity) FILTER (WHERE quality <> 'A02') AS received_positions, \
                count(*) FILTER (WHERE quality = 'A04') AS measured, \
                count(*) FILTER (WHERE quality = 'A03') AS estimated, \
                count(*) FILTER (WHERE quality = 'A06') AS calculated, \
                count(*) FILTER (WHERE quality = 'A01') AS adjusted, \
                count(*) FILTER (WHERE quality = 'A05') AS incomplete, \
                count(*) FILTER (WHERE quality = 'A02' OR quantity IS NULL) AS missing \
         FROM metering_data \
         WHERE gsrn = $1 AND resolution = $2 AND ts >= $3 AND ts < $4 \
         GROUP BY 1 ORDER BY 1",
    )
    .bind(gsrn)
    .bind(&resolution)
    .bind(start)
    .bind(end)
    .bind(aggregate.sql_unit())
    .fetch_all(pool)
    .await?;
    let buckets: Vec<Bucket> = rows
        .into_iter()
        .map(|row| {
            let end = bucket_end(row.start, aggregate, &resolution);
            Bucket {
                start: row.start,
                end,
                quantity_kwh: row.quantity_kwh.unwrap_or_default(),
                expected_positions: positions(row.start, end, &resolution),
                received_positions: row.received_positions,
                qualities: row.qualities,
            }
        })
        .collect();
    Ok(Series {
        gsrn: gsrn.to_string(),
        total_kwh: buckets.iter().map(|b| b.quantity_kwh).sum(),
        expected_positions: positions(start, end, &resolution),
        received_positions: buckets.iter().map(|b| b.received_positions).sum(),
        resolution,
        aggregate,
        from,
        to,
        buckets,
    })
}

/// `GET /v1/metering-points/{gsrn}/metering-data`.
#[utoipa::path(get, path = "/v1/metering-points/{gsrn}/metering-data", tag = "metering data",
    params(("gsrn" = String, Path, description = "18-digit GSRN"), SeriesQuery),
    responses((status = 200, body = Series), (status = 400, body = crate::error::Problem),
        (status = 404, body = crate::error::Problem), (status = 422, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn series(
    State(state): State<AppState>,
    Path(gsrn): Path<String>,
    Query(query): Query<SeriesQuery>,
) -> Result<Json<Series>, ApiError> {
    let gsrn = parse_gsrn(&gsrn)?;
    let (from, to) = (parse_date(&query.from)?, parse_date(&query.to)?);
    Ok(Json(
        load(
            &state.pool,
            &gsrn,
            from,
            to,
            query.aggregate.unwrap_or_default(),
        )
        .await?,
    ))
}

/// Query of `GET /v1/metering-points/{gsrn}/metering-data/compare`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CompareQuery {
    /// First local day of the first period.
    pub from: String,
    /// Day after the first period.
    pub to: String,
    /// First local day of the second period.
    pub other_from: String,
    /// Day after the second period.
    pub other_to: String,
    /// How to sum (default `day`).
    pub aggregate: Option<Aggregate>,
}

/// Two periods of one metering point side by side.
#[derive(Debug, Serialize, ToSchema)]
pub struct Comparison {
    /// The first period.
    pub first: Series,
    /// The second period.
    pub second: Series,
    /// second total − first total (kWh).
    pub difference_kwh: Decimal,
}

/// `GET /v1/metering-points/{gsrn}/metering-data/compare`: e.g. this March against last March.
#[utoipa::path(get, path = "/v1/metering-points/{gsrn}/metering-data/compare", tag = "metering data",
    params(("gsrn" = String, Path, description = "18-digit GSRN"), CompareQuery),
    responses((status = 200, body = Comparison), (status = 400, body = crate::error::Problem),
        (status = 404, body = crate::error::Problem), (status = 422, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn compare(
    State(state): State<AppState>,
    Path(gsrn): Path<String>,
    Query(query): Query<CompareQuery>,
) -> Result<Json<Comparison>, ApiError> {
    let gsrn = parse_gsrn(&gsrn)?;
    let aggregate = query.aggregate.unwrap_or(Aggregate::Day);
    let first = load(
        &state.pool,
        &gsrn,
        parse_date(&query.from)?,
        parse_date(&query.to)?,
        aggregate,
    )
    .await?;
    let second = load(
        &state.pool,
        &gsrn,
        parse_date(&query.other_from)?,
        parse_date(&query.other_to)?,
        aggregate,
    )
    .await?;
    Ok(Json(Comparison {
        difference_kwh: second.total_kwh - first.total_kwh,
        first,
        second,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dst_days_have_92_and_100_quarter_hours() {
        let day = |m, d| NaiveDate::from_ymd_opt(2026, m, d).unwrap();
        let count = |a: NaiveDate| {
            positions(
                local_midnight(a),
                local_midnight(a.succ_opt().unwrap()),
                "PT15M",
            )
        };
        assert_eq!(count(day(3, 29)), 92);
        assert_eq!(count(day(10, 25)), 100);
        assert_eq!(count(day(3, 30)), 96);
        let start = local_midnight(day(3, 1));
        assert_eq!(
            bucket_end(start, Aggregate::Month, "PT15M"),
            local_midnight(day(4, 1))
        );
        assert_eq!(positions(start, local_midnight(day(4, 1)), "P1D"), 31);
    }
}

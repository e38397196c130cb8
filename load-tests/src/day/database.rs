//! What the day scenario reads back from the sink's tables: the provisional versions, the
//! stored values per metering point, the sink's last commit and the schema's size. Every
//! figure of the scenario's end comes from here, so "in PostgreSQL" means what dashboards
//! and billing would read.

use std::collections::BTreeMap;

use anyhow::Context;
use chrono::NaiveDate;
use rust_decimal::Decimal;
use sqlx::PgPool;

/// One row of `settlement_version`.
#[derive(Debug, Clone)]
pub struct Version {
    /// The version number (1, 2, ...).
    pub version: i64,
    /// Total excluding VAT.
    pub total_excl_vat: Decimal,
    /// When settle computed it, ms since the epoch.
    pub computed_ms: i64,
}

/// Every provisional version of `month_start`, per GSRN, oldest first.
pub async fn versions(
    pool: &PgPool,
    month_start: NaiveDate,
) -> anyhow::Result<BTreeMap<String, Vec<Version>>> {
    let rows: Vec<(String, i64, Decimal, f64)> = sqlx::query_as(
        "SELECT gsrn, version, total_excl_vat, extract(epoch FROM computed_at)::float8 * 1000 \
         FROM settlement_version WHERE month_start = $1 ORDER BY gsrn, version",
    )
    .bind(month_start)
    .fetch_all(pool)
    .await
    .context("reading settlement_version")?;
    let mut out: BTreeMap<String, Vec<Version>> = BTreeMap::new();
    for (gsrn, version, total_excl_vat, computed) in rows {
        out.entry(gsrn).or_default().push(Version {
            version,
            total_excl_vat,
            computed_ms: computed.round() as i64,
        });
    }
    Ok(out)
}

/// Distinct series (metering point, resolution, period start) in `metering_series`: a
/// correction is another version of a series, not another series. Each metering point has
/// one series for the day, so this reaching the metering points means every series of the
/// day is stored; [`metering_sums`] then checks every value through `metering_data`.
pub async fn metering_series(pool: &PgPool) -> anyhow::Result<i64> {
    let (n,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM (SELECT DISTINCT gsrn, resolution, period_start FROM metering_series) s",
    )
    .fetch_one(pool)
    .await
    .context("counting metering_series")?;
    Ok(n)
}

/// Live rows in `metering_series`' partitions by PostgreSQL's statistics: no scan, so
/// the harness can poll it every second without taking the database's CPU from the
/// sink on the same cores. The statistics lag commits by up to PostgreSQL's idle flush
/// interval, so this only decides when [`metering_series`] is worth running; the figures
/// never rest on it.
pub async fn metering_series_estimate(pool: &PgPool) -> anyhow::Result<i64> {
    let (n,): (Option<i64>,) = sqlx::query_as(
        "SELECT sum(n_live_tup)::bigint FROM pg_stat_user_tables \
         WHERE schemaname = current_schema() AND relname LIKE 'metering_series%'",
    )
    .fetch_one(pool)
    .await
    .context("reading metering_series' statistics")?;
    Ok(n.unwrap_or(0))
}

/// Per GSRN: stored values and the sum of their quantities, as `metering_data` (the view of
/// the current value of every position) shows them.
pub async fn metering_sums(pool: &PgPool) -> anyhow::Result<BTreeMap<String, (i64, Decimal)>> {
    // The view sorts every position of the day for its DISTINCT ON: in memory rather than in
    // temporary files (this check runs after the timed part).
    let mut tx = pool.begin().await.context("summing metering_data")?;
    sqlx::query("SET LOCAL work_mem = '2GB'")
        .execute(&mut *tx)
        .await
        .context("summing metering_data")?;
    let rows: Vec<(String, i64, Option<Decimal>)> =
        sqlx::query_as("SELECT gsrn, count(*), sum(quantity) FROM metering_data GROUP BY gsrn")
            .fetch_all(&mut *tx)
            .await
            .context("summing metering_data")?;
    tx.commit().await.context("summing metering_data")?;
    Ok(rows
        .into_iter()
        .map(|(g, n, s)| (g, (n, s.unwrap_or_default())))
        .collect())
}

/// The newest position the sink committed (its `sink_offset.updated_at`, written in the
/// same transaction as the rows), ms since the epoch.
pub async fn last_commit_ms(pool: &PgPool) -> anyhow::Result<Option<i64>> {
    let (ms,): (Option<f64>,) = sqlx::query_as(
        "SELECT extract(epoch FROM max(updated_at))::float8 * 1000 FROM sink_offset",
    )
    .fetch_one(pool)
    .await
    .context("reading sink_offset")?;
    Ok(ms.map(|m| m.round() as i64))
}

/// Bytes of the run's schema (tables, indexes, TOAST) and of `metering_series` (what
/// `metering_data` reads) with its partitions alone.
pub async fn sizes(pool: &PgPool, schema: &str) -> anyhow::Result<(i64, i64)> {
    let (all, metering): (Option<i64>, Option<i64>) = sqlx::query_as(
        "SELECT sum(pg_total_relation_size(c.oid))::bigint, \
                sum(pg_total_relation_size(c.oid)) FILTER (WHERE c.relname LIKE 'metering_series%')::bigint \
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = $1 AND c.relkind = 'r'",
    )
    .bind(schema)
    .fetch_one(pool)
    .await
    .context("measuring the schema")?;
    Ok((all.unwrap_or(0), metering.unwrap_or(0)))
}

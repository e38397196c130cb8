//! The PostgreSQL read model: the I/O edge that projects a metering point's state after each
//! event into the `portfolio_*` tables (migration `0020_portfolio.sql`), and the queries the
//! CLI and API need. The tables are a function of the events only, so a rebuild from the topic
//! gives the same rows (tested in `tests/read_model.rs`).

use chrono::NaiveDate;
use sqlx::{PgPool, Postgres, Transaction};

use crate::event::Event;
use crate::process::ProcessStatus;
use crate::state::MeteringPoint;

/// Writes the state after `event` (which must be the event that produced `state`). An event
/// at or below the stored version is a re-delivery and changes nothing; returns whether rows
/// were written.
pub async fn project(pool: &PgPool, state: &MeteringPoint, event: &Event) -> sqlx::Result<bool> {
    let gsrn = state.gsrn.to_string();
    let mut tx = pool.begin().await?;
    let stored: Option<i64> = sqlx::query_scalar(
        "SELECT version FROM portfolio_metering_points WHERE metering_point = $1 FOR UPDATE",
    )
    .bind(&gsrn)
    .fetch_optional(&mut *tx)
    .await?;
    let version = i64::try_from(state.version).unwrap_or(i64::MAX);
    if stored.is_some_and(|v| v >= version) {
        tx.rollback().await?;
        return Ok(false);
    }
    write_metering_point(&mut tx, &gsrn, version, state).await?;
    write_periods(&mut tx, &gsrn, state).await?;
    write_processes(&mut tx, &gsrn, state).await?;
    write_customers(&mut tx, &gsrn, state, event).await?;
    let status_after = event
        .process
        .as_ref()
        .and_then(|p| state.processes.get(p))
        .map(|p| p.status.as_str());
    sqlx::query(
        "INSERT INTO portfolio_process_history \
         (metering_point, sequence, process_id, change, recorded_at, actor, why, message_id, status_after) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&gsrn)
    .bind(i64::try_from(event.sequence).unwrap_or(i64::MAX))
    .bind(event.process.as_ref().map(|p| p.0.clone()))
    .bind(event.change.name())
    .bind(event.recorded_at)
    .bind(&event.actor)
    .bind(&event.why)
    .bind(&event.message_id)
    .bind(status_after)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(true)
}

async fn write_metering_point(
    tx: &mut Transaction<'_, Postgres>,
    gsrn: &str,
    version: i64,
    state: &MeteringPoint,
) -> sqlx::Result<()> {
    let master = state.master_data.as_ref();
    sqlx::query(
        "INSERT INTO portfolio_metering_points \
         (metering_point, version, grid_area, metering_point_type, settlement_method) \
         VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (metering_point) DO UPDATE SET version = EXCLUDED.version, \
         grid_area = EXCLUDED.grid_area, metering_point_type = EXCLUDED.metering_point_type, \
         settlement_method = EXCLUDED.settlement_method",
    )
    .bind(gsrn)
    .bind(version)
    .bind(master.map(|m| m.grid_area.clone()))
    .bind(master.and_then(|m| m.metering_point_type.clone()))
    .bind(master.and_then(|m| m.settlement_method.clone()))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn write_periods(
    tx: &mut Transaction<'_, Postgres>,
    gsrn: &str,
    state: &MeteringPoint,
) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM portfolio_supply_periods WHERE metering_point = $1")
        .bind(gsrn)
        .execute(&mut **tx)
        .await?;
    let in_force = state.supply.periods.iter().map(|p| (p, None));
    let retired = state
        .supply
        .retired
        .iter()
        .map(|r| (&r.period, Some(r.retired_by.0.clone())));
    for (ordinal, (period, retired_by)) in in_force.chain(retired).enumerate() {
        sqlx::query(
            "INSERT INTO portfolio_supply_periods \
             (metering_point, ordinal, valid_from, valid_to, customer_key, started_by, retired_by) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(gsrn)
        .bind(i32::try_from(ordinal).unwrap_or(i32::MAX))
        .bind(period.from)
        .bind(period.to)
        .bind(period.customer.as_ref().map(|c| c.0.clone()))
        .bind(&period.started_by.0)
        .bind(retired_by)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

async fn write_processes(
    tx: &mut Transaction<'_, Postgres>,
    gsrn: &str,
    state: &MeteringPoint,
) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM portfolio_processes WHERE metering_point = $1")
        .bind(gsrn)
        .execute(&mut **tx)
        .await?;
    for p in state.processes.values() {
        let reasons = match &p.status {
            ProcessStatus::Rejected { reasons } => serde_json::to_value(reasons),
            ProcessStatus::Cancelled { reason, .. } => serde_json::to_value([reason]),
            _ => Ok(serde_json::Value::Array(Vec::new())),
        }
        .unwrap_or_default();
        sqlx::query(
            "INSERT INTO portfolio_processes \
             (metering_point, process_id, kind, brs, supplier, effective, took_effect_on, status, reasons, \
              customer_key, corrects, datahub_ref, requested_by_us) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        )
        .bind(gsrn)
        .bind(&p.id.0)
        .bind(p.kind.as_str())
        .bind(p.kind.brs())
        .bind(p.supplier.as_str())
        .bind(p.effective)
        .bind(p.took_effect_on)
        .bind(p.status.as_str())
        .bind(reasons)
        .bind(p.customer.as_ref().map(|c| c.0.clone()))
        .bind(p.corrects.as_ref().map(|c| c.0.clone()))
        .bind(&p.datahub_ref)
        .bind(p.requested_by_us)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// The customers' latest sealed data on the metering point, and which key sealed the value
/// `event` carries (what erasure deletes; decision 0148).
async fn write_customers(
    tx: &mut Transaction<'_, Postgres>,
    gsrn: &str,
    state: &MeteringPoint,
    event: &Event,
) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM portfolio_customers WHERE metering_point = $1")
        .bind(gsrn)
        .execute(&mut **tx)
        .await?;
    for (customer, sealed) in &state.customers {
        sqlx::query(
            "INSERT INTO portfolio_customers (metering_point, customer_key, sealed) VALUES ($1, $2, $3)",
        )
        .bind(gsrn)
        .bind(&customer.0)
        .bind(sealed.encode())
        .execute(&mut **tx)
        .await?;
    }
    if let Some((customer, sealed)) = event.change.sealed_customer_data() {
        sqlx::query(
            "INSERT INTO portfolio_customer_seals (metering_point, sequence, customer_key, key_id) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(gsrn)
        .bind(i64::try_from(event.sequence).unwrap_or(i64::MAX))
        .bind(&customer.0)
        .bind(sealed.key_id())
        .execute(&mut **tx)
        .await?;
        // An inbound message's key becomes the customer's, so erasing them reaches it
        // (decision 0148). Not part of the read model: a rebuild adopts it again, the same.
        sqlx::query(
            "UPDATE portfolio_data_keys SET customer_key = $1 \
             WHERE key_id = $2 AND customer_key IS NULL AND origin = 'message'",
        )
        .bind(&customer.0)
        .bind(sealed.key_id())
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// Empties the read model, before a rebuild from the topic's beginning. The key store
/// (`portfolio_data_keys`, `portfolio_erasures`) is not part of it and stays.
pub async fn truncate(pool: &PgPool) -> sqlx::Result<()> {
    sqlx::query(
        "TRUNCATE portfolio_metering_points, portfolio_supply_periods, portfolio_processes, \
         portfolio_process_history, portfolio_customers, portfolio_customer_seals",
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// The metering points we supply in `grid_area` on `day` (a Danish calendar day).
pub async fn supplied_in_grid_area(
    pool: &PgPool,
    grid_area: &str,
    day: NaiveDate,
) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar(
        "SELECT DISTINCT s.metering_point FROM portfolio_supply_periods s \
         JOIN portfolio_metering_points m USING (metering_point) \
         WHERE m.grid_area = $1 AND s.retired_by IS NULL \
           AND s.valid_from <= $2 AND (s.valid_to IS NULL OR $2 < s.valid_to) \
         ORDER BY 1",
    )
    .bind(grid_area)
    .bind(day)
    .fetch_all(pool)
    .await
}

/// One line of a process's history.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize)]
pub struct HistoryLine {
    /// Event sequence number on the metering point.
    pub sequence: i64,
    /// The process, if the event belongs to one.
    pub process_id: Option<String>,
    /// The change's name (`request_sent`, `accepted`, …).
    pub change: String,
    /// When recorded.
    pub recorded_at: chrono::DateTime<chrono::Utc>,
    /// Who.
    pub actor: String,
    /// Why.
    pub why: String,
    /// The process status after it.
    pub status_after: Option<String>,
}

/// The history of a metering point's processes, oldest first.
pub async fn history(pool: &PgPool, metering_point: &str) -> sqlx::Result<Vec<HistoryLine>> {
    sqlx::query_as(
        "SELECT sequence, process_id, change, recorded_at, actor, why, status_after \
         FROM portfolio_process_history WHERE metering_point = $1 ORDER BY sequence",
    )
    .bind(metering_point)
    .fetch_all(pool)
    .await
}

/// One of a metering point's supply periods as the read model holds it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize)]
pub struct PeriodLine {
    /// First day supplied (Danish calendar day).
    pub valid_from: NaiveDate,
    /// First day no longer supplied; none while open.
    pub valid_to: Option<NaiveDate>,
    /// Our customer number.
    pub customer_key: Option<String>,
    /// The process that started it.
    pub started_by: String,
    /// The correcting process, when the period was rolled back (to be credited).
    pub retired_by: Option<String>,
}

/// A metering point's supply periods, retired ones included, oldest first: what
/// `afregning portfolio show` prints beside the history.
pub async fn periods(pool: &PgPool, metering_point: &str) -> sqlx::Result<Vec<PeriodLine>> {
    sqlx::query_as(
        "SELECT valid_from, valid_to, customer_key, started_by, retired_by \
         FROM portfolio_supply_periods WHERE metering_point = $1 ORDER BY ordinal",
    )
    .bind(metering_point)
    .fetch_all(pool)
    .await
}

/// One of a metering point's processes as the read model holds it: what `afregning portfolio
/// show` and the API answer when asked where a request stands and why it was refused.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow, serde::Serialize)]
pub struct ProcessLine {
    /// Our id (or DataHub's, for one it told us of).
    pub process_id: String,
    /// The kind (`move_in`, `change_of_supplier`, …).
    pub kind: String,
    /// Its official BRS number, where it has one.
    pub brs: Option<String>,
    /// The requested effective day.
    pub effective: NaiveDate,
    /// The day it took effect, once it did.
    pub took_effect_on: Option<NaiveDate>,
    /// `sent`, `accepted`, `rejected`, `cancelled`, `effective`, `completed`.
    pub status: String,
    /// DataHub's reasons of a rejection (code and text), or the reason of a cancellation.
    pub reasons: serde_json::Value,
    /// Our customer number.
    pub customer_key: Option<String>,
    /// The process a correction undoes.
    pub corrects: Option<String>,
    /// DataHub's process reference.
    pub datahub_ref: Option<String>,
    /// Whether we asked for it.
    pub requested_by_us: bool,
}

/// A metering point's processes, by effective day and id.
pub async fn processes(pool: &PgPool, metering_point: &str) -> sqlx::Result<Vec<ProcessLine>> {
    sqlx::query_as(
        "SELECT process_id, kind, brs, effective, took_effect_on, status, reasons, customer_key, \
         corrects, datahub_ref, requested_by_us \
         FROM portfolio_processes WHERE metering_point = $1 ORDER BY effective, process_id",
    )
    .bind(metering_point)
    .fetch_all(pool)
    .await
}

//! The database side of the database sink: one connection (its staging
//! tables and advisory lock live with it), and the transaction that merges a
//! batch and its positions.
//!
//! Each table is written the same way: binary COPY into a temporary staging
//! table (emptied at commit), then one `INSERT ... SELECT ... ON CONFLICT` into
//! the table. The conflict rules make a replayed batch change nothing:
//!
//! | table | key | on conflict |
//! |---|---|---|
//! | `metering_series` | gsrn, resolution, period start, MessageId | nothing: immutable (the `metering_data` view picks the latest registration per position) |
//! | `daily_summary` | gsrn, local_date, tariff_period | a higher version replaces all of the day's rows; lower or equal: nothing |
//! | `metering_point` | gsrn, valid_from | replace when the record is newer (offset) *and* different; tombstones delete |
//! | `metering_point_history` | gsrn, valid_from, MessageId | nothing |
//! | `settlement_version`, `settlement_line` | gsrn, month, version (, line) | nothing: immutable |
//! | `settlement_statement(_line)` | statement id (, line) | nothing: immutable |
//! | `dead_letter` | source topic, partition, offset | a later failure replaces it and reopens it |
//! | `processed_message` | consumer, idempotency key | nothing (counted as duplicates) |
//! | `sink_offset` | consumer, topic, partition | the greater offset |

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use chrono::Utc;
use sqlx::{Connection, PgConnection, Postgres, Transaction};

use super::batch::{
    DAILY_STAGE, DEAD_LETTER_STAGE, METERING_POINT_STAGE, METERING_STAGE, PROCESSED_STAGE,
    SETTLEMENT_LINE_STAGE, SETTLEMENT_VERSION_STAGE, STAGES, STATEMENT_LINE_STAGE, STATEMENT_STAGE,
    Stage, TimescaleBatch,
};
use crate::positions::{Position, load_positions, lock_consumer, lock_partitions, store_positions};
use crate::runner::{FlushReport, HandlerError};
use crate::schema::storage::{self, StorageMode, StorageSettings};

/// How often the sink re-plans the storage (creates the coming months'
/// partitions) while it runs.
const MAINTENANCE_INTERVAL: Duration = Duration::from_secs(3600);

/// A replayed series (same message) is stored already and changes nothing.
const METERING_MERGE: &str = "\
INSERT INTO metering_series (gsrn, resolution, period_start, period_end, source_message_id,
    registered_at, received_at, quantities, qualities)
SELECT gsrn, resolution, period_start, period_end, source_message_id,
    registered_at, received_at, quantities, qualities
FROM afregning_stage_metering_series
ON CONFLICT DO NOTHING";

/// The column list of `metering_series`' COPY, the staging table's.
const METERING_COPY_COLUMNS: &str = "gsrn, resolution, period_start, period_end, source_message_id, \
    registered_at, received_at, quantities, qualities";

/// SQLSTATE unique_violation.
const UNIQUE_VIOLATION: &str = "23505";

/// How a batch's metering series were written.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct MeteringWrite {
    /// Series copied straight into their month's partition.
    pub copied: u64,
    /// Series staged for the merge.
    pub merged: u64,
    /// Series the merge inserted (the others were stored already).
    pub merge_changed: u64,
    /// Whether the direct COPY met a series already stored (a replay) and
    /// was rolled back to its savepoint, its series merged.
    pub fell_back: bool,
}

/// Writes a batch's metering series inside `tx`: a COPY straight into each
/// month's partition, inside a savepoint.
///
/// Series are immutable and keyed by their message, so the only row a COPY
/// can meet is the same series of the same message: a replay. Then the
/// primary key refuses the COPY, it is rolled back to the savepoint, and the
/// batch's series go through the staging table and `ON CONFLICT DO NOTHING`.
/// Either way each series is stored once, and the caller's positions commit
/// in the same transaction. [`MeteringPath::MergeOnly`] stages every batch.
pub async fn write_metering(
    tx: &mut Transaction<'_, Postgres>,
    batch: &TimescaleBatch,
    mode: Option<StorageMode>,
    path: MeteringPath,
) -> Result<MeteringWrite, sqlx::Error> {
    let series = batch.metering_series() as u64;
    if path == MeteringPath::MergeOnly {
        let copy = batch
            .metering_stage_copy()
            .map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
        return merge_metering(tx, &copy, series, false).await;
    }
    let direct = batch
        .metering_copy()
        .map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    let mut savepoint = Connection::begin(&mut **tx).await?;
    let mut outcome: Result<(), sqlx::Error> = Ok(());
    for ((year, month), stream, _) in &direct {
        let target = match mode {
            Some(StorageMode::Partitioned) => storage::partition_name(*year, *month),
            _ => storage::METERING_SERIES.to_string(),
        };
        let sql = format!("COPY {target} ({METERING_COPY_COLUMNS}) FROM STDIN (FORMAT binary)");
        let copy = async {
            let mut copy = savepoint.copy_in_raw(&sql).await?;
            copy.send(stream.as_slice()).await?;
            copy.finish().await
        }
        .await;
        if let Err(error) = copy {
            outcome = Err(error);
            break;
        }
    }
    match outcome {
        Ok(()) => {
            savepoint.commit().await?;
            Ok(MeteringWrite {
                copied: series,
                ..MeteringWrite::default()
            })
        }
        Err(sqlx::Error::Database(db)) if db.code().as_deref() == Some(UNIQUE_VIOLATION) => {
            tracing::info!(error = %db, "a series of the direct COPY is stored already (a replay); merging the batch's series instead");
            savepoint.rollback().await?;
            let copy = batch
                .metering_stage_copy()
                .map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
            merge_metering(tx, &copy, series, true).await
        }
        Err(error) => Err(error),
    }
}

/// COPY `stream` into the staging table and insert its new series into
/// `metering_series`.
async fn merge_metering(
    tx: &mut Transaction<'_, Postgres>,
    stream: &[u8],
    series: u64,
    fell_back: bool,
) -> Result<MeteringWrite, sqlx::Error> {
    let mut copy = tx.copy_in_raw(&METERING_STAGE.copy_sql()).await?;
    copy.send(stream).await?;
    copy.finish().await?;
    let merged = sqlx::query(METERING_MERGE).execute(&mut **tx).await?;
    Ok(MeteringWrite {
        copied: 0,
        merged: series,
        merge_changed: merged.rows_affected(),
        fell_back,
    })
}

///
/// The batch's days come as bound arrays ([`TimescaleBatch::daily_versions`]), not from the
/// staging table: a join with the staging table was planned once per connection, when
/// `daily_summary` was still empty, as a hash join over all of `daily_summary`, and that
/// cached plan read the whole table on every batch (4.3 of PostgreSQL's 54 s in the day
/// load test at 80,000 metering points, 35 ms a batch). `unnest` of the arrays is planned as
/// a few rows, so each day is an index lookup.
const DAILY_DELETE_OLDER: &str = "\
DELETE FROM daily_summary d
USING unnest($1::text[], $2::date[], $3::bigint[]) AS s(gsrn, local_date, version)
WHERE d.gsrn = s.gsrn AND d.local_date = s.local_date AND d.version < s.version";

/// `OFFSET 0` keeps the newer-version check a per-row lookup in the primary key: without it
/// PostgreSQL plans an anti join that hashes all of `daily_summary` on every batch (the
/// staging table has no statistics), so each batch cost grew with the table — measured in
/// the day load test as 433 full scans, 50 M rows read and 46 CPU-s of PostgreSQL for
/// 5,000 metering points (BENCHMARKS.md, the day through the live path).
const DAILY_MERGE: &str = "\
INSERT INTO daily_summary AS t (gsrn, local_date, tariff_period, grid_area, price_area, resolution, kwh,
    day_total_kwh, spot_cost_dkk, expected_positions, received_positions, complete, version, computed_at,
    source_topic, source_partition, source_offset)
SELECT gsrn, local_date, tariff_period, grid_area, price_area, resolution, kwh,
    day_total_kwh, spot_cost_dkk, expected_positions, received_positions, complete, version, computed_at,
    source_topic, source_partition, source_offset
FROM afregning_stage_daily_summary s
WHERE NOT EXISTS (SELECT 1 FROM daily_summary d
                  WHERE d.gsrn = s.gsrn AND d.local_date = s.local_date AND d.version > s.version
                  OFFSET 0)
ON CONFLICT (gsrn, local_date, tariff_period) DO UPDATE SET
    grid_area = excluded.grid_area, price_area = excluded.price_area, resolution = excluded.resolution,
    kwh = excluded.kwh, day_total_kwh = excluded.day_total_kwh, spot_cost_dkk = excluded.spot_cost_dkk,
    expected_positions = excluded.expected_positions, received_positions = excluded.received_positions,
    complete = excluded.complete, version = excluded.version, computed_at = excluded.computed_at,
    source_topic = excluded.source_topic, source_partition = excluded.source_partition,
    source_offset = excluded.source_offset
WHERE excluded.version > t.version";

/// The latest event per metering point period in the batch.
const METERING_POINT_LATEST: &str = "\
SELECT DISTINCT ON (gsrn, valid_from) * FROM afregning_stage_metering_point
ORDER BY gsrn, valid_from, source_offset DESC";

const METERING_POINT_COLUMNS: &str = "gsrn, valid_from, valid_to, metering_point_type, settlement_method, \
    grid_area, price_area, resolution, energy_supplier_gln, supply_start, supply_end, connection_state, \
    source_message_id, received_at, source_topic, source_partition, source_offset";

fn metering_point_merge() -> String {
    format!(
        "INSERT INTO metering_point AS t ({METERING_POINT_COLUMNS})
SELECT {METERING_POINT_COLUMNS} FROM ({METERING_POINT_LATEST}) s WHERE s.op = 'U'
ON CONFLICT (gsrn, valid_from) DO UPDATE SET
    valid_to = excluded.valid_to, metering_point_type = excluded.metering_point_type,
    settlement_method = excluded.settlement_method, grid_area = excluded.grid_area,
    price_area = excluded.price_area, resolution = excluded.resolution,
    energy_supplier_gln = excluded.energy_supplier_gln, supply_start = excluded.supply_start,
    supply_end = excluded.supply_end, connection_state = excluded.connection_state,
    source_message_id = excluded.source_message_id, received_at = excluded.received_at,
    source_topic = excluded.source_topic, source_partition = excluded.source_partition,
    source_offset = excluded.source_offset
WHERE excluded.source_offset > t.source_offset
  AND (excluded.valid_to, excluded.metering_point_type, excluded.settlement_method, excluded.grid_area,
       excluded.price_area, excluded.resolution, excluded.energy_supplier_gln, excluded.supply_start,
       excluded.supply_end, excluded.connection_state, excluded.source_message_id)
      IS DISTINCT FROM
      (t.valid_to, t.metering_point_type, t.settlement_method, t.grid_area, t.price_area, t.resolution,
       t.energy_supplier_gln, t.supply_start, t.supply_end, t.connection_state, t.source_message_id)"
    )
}

fn metering_point_delete() -> String {
    format!(
        "DELETE FROM metering_point t USING ({METERING_POINT_LATEST}) s
WHERE s.op = 'D' AND t.gsrn = s.gsrn AND t.valid_from = s.valid_from AND t.source_offset < s.source_offset"
    )
}

fn metering_point_history_merge() -> String {
    let columns = METERING_POINT_COLUMNS;
    format!(
        "INSERT INTO metering_point_history ({columns})
SELECT DISTINCT ON (gsrn, valid_from, source_message_id) {columns}
FROM afregning_stage_metering_point WHERE op = 'U'
ORDER BY gsrn, valid_from, source_message_id, source_offset
ON CONFLICT DO NOTHING"
    )
}

fn insert_all(table: &str, stage: &Stage) -> String {
    let columns = stage.column_list();
    format!(
        "INSERT INTO {table} ({columns}) SELECT {columns} FROM {} ON CONFLICT DO NOTHING",
        stage.name
    )
}

const DEAD_LETTER_MERGE: &str = "\
INSERT INTO dead_letter AS t (source_topic, source_partition, source_offset, source_timestamp, source_key,
    payload, source_message_id, component, error_class, reason, failed_at, attempts,
    dead_letter_partition, dead_letter_offset)
SELECT source_topic, source_partition, source_offset, source_timestamp, source_key,
    payload, source_message_id, component, error_class, reason, failed_at, attempts,
    dead_letter_partition, dead_letter_offset
FROM afregning_stage_dead_letter
ON CONFLICT (source_topic, source_partition, source_offset) DO UPDATE SET
    source_timestamp = excluded.source_timestamp, source_key = excluded.source_key,
    payload = excluded.payload, source_message_id = excluded.source_message_id,
    component = excluded.component, error_class = excluded.error_class, reason = excluded.reason,
    failed_at = excluded.failed_at, attempts = excluded.attempts,
    dead_letter_partition = excluded.dead_letter_partition,
    dead_letter_offset = excluded.dead_letter_offset,
    resolved = false, resolved_by = NULL, resolved_at = NULL, resolution_note = NULL
WHERE excluded.failed_at > t.failed_at";

const PROCESSED_MERGE: &str = "\
INSERT INTO processed_message (consumer, idempotency_key, topic, partition, \"offset\")
SELECT $1, idempotency_key, topic, partition, \"offset\" FROM afregning_stage_processed_message
ON CONFLICT DO NOTHING";

/// The database sink's connection and write path.
#[derive(Debug)]
pub struct TimescaleService {
    database_url: String,
    consumer: String,
    storage: StorageSettings,
    mode: Option<StorageMode>,
    partitions: BTreeSet<(i32, u32)>,
    conn: Option<PgConnection>,
    last_maintenance: Option<Instant>,
    path: MeteringPath,
    /// The partition numbers this service's writer lane owns, once claimed:
    /// it locks those (and shares the consumer's lock); unclaimed, it locks
    /// the whole consumer.
    claimed: Option<Vec<i32>>,
}

/// How the service writes `metering_series`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MeteringPath {
    /// COPY straight into each month's partition, the staging table only
    /// when a series is stored already ([`write_metering`];
    /// `metering_direct_copy = true`, the default).
    #[default]
    Auto,
    /// Every batch through the staging table and `ON CONFLICT DO NOTHING`
    /// (`metering_direct_copy = false`).
    MergeOnly,
}

impl TimescaleService {
    /// A service that connects on first use.
    pub fn new(database_url: &str, consumer: &str, storage: StorageSettings) -> Self {
        Self {
            database_url: database_url.to_string(),
            consumer: consumer.to_string(),
            storage,
            mode: None,
            partitions: BTreeSet::new(),
            conn: None,
            last_maintenance: None,
            path: MeteringPath::default(),
            claimed: None,
        }
    }

    /// Writes only `partitions` from now on (a writer lane's share): each
    /// connection locks exactly those ([`lock_partitions`]). Takes effect on
    /// the next connection.
    pub fn claim(&mut self, partitions: &[i32]) {
        self.claimed = Some(partitions.to_vec());
    }

    /// Chooses how `metering_series` is written (config
    /// `metering_direct_copy`).
    pub fn with_metering_path(mut self, path: MeteringPath) -> Self {
        self.path = path;
        self
    }

    /// The storage shape, once known.
    pub fn mode(&self) -> Option<StorageMode> {
        self.mode
    }

    /// Forgets the connection (after an error or a timeout mid-transaction).
    pub fn reset(&mut self) {
        self.conn = None;
    }

    async fn maintain(&mut self) -> Result<(), sqlx::Error> {
        let due = self
            .last_maintenance
            .is_none_or(|at| at.elapsed() >= MAINTENANCE_INTERVAL);
        if !due {
            return Ok(());
        }
        let conn = self.conn.as_mut().expect("connected");
        let mut tx = conn.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext('afregning.sinks.storage'))")
            .execute(&mut *tx)
            .await?;
        let report = storage::apply(&mut tx, &self.storage, Utc::now().date_naive())
            .await
            .map_err(|e| match e {
                storage::StorageError::Observe(e)
                | storage::StorageError::Statement { source: e, .. } => e,
                other => sqlx::Error::Protocol(other.to_string()),
            })?;
        tx.commit().await?;
        for statement in &report.executed {
            tracing::info!(%statement, "storage maintenance");
        }
        self.mode = Some(report.mode);
        self.partitions = report.partitions;
        self.last_maintenance = Some(Instant::now());
        Ok(())
    }

    async fn connection(&mut self) -> Result<&mut PgConnection, sqlx::Error> {
        if self.conn.is_none() {
            let mut conn =
                crate::schema::connect(&self.database_url, "afregning sink-postgres").await?;
            for stage in STAGES {
                sqlx::query(&stage.create_sql()).execute(&mut conn).await?;
            }
            match &self.claimed {
                Some(partitions) => lock_partitions(&mut conn, &self.consumer, partitions).await?,
                None => lock_consumer(&mut conn, &self.consumer).await?,
            }
            self.conn = Some(conn);
            self.last_maintenance = None;
        }
        self.maintain().await?;
        Ok(self.conn.as_mut().expect("connected"))
    }

    /// The stored positions of this consumer.
    pub async fn positions(&mut self) -> Result<HashMap<(String, i32), i64>, sqlx::Error> {
        let consumer = self.consumer.clone();
        load_positions(self.connection().await?, &consumer).await
    }

    /// Creates the monthly partitions a batch needs that do not exist yet
    /// (a backfill of old data, or a month the maintenance has not reached).
    async fn ensure_partitions(
        &mut self,
        months: &BTreeSet<(i32, u32)>,
    ) -> Result<(), sqlx::Error> {
        if self.mode != Some(StorageMode::Partitioned) {
            return Ok(());
        }
        let missing: Vec<(i32, u32)> = months.difference(&self.partitions).copied().collect();
        if missing.is_empty() {
            return Ok(());
        }
        let conn = self.conn.as_mut().expect("connected");
        let mut tx = conn.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext('afregning.sinks.storage'))")
            .execute(&mut *tx)
            .await?;
        for (year, month) in &missing {
            let statement = storage::partition_statement(*year, *month);
            tracing::info!(%statement, "creating a partition for incoming data");
            sqlx::query(&statement).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        self.partitions.extend(missing);
        Ok(())
    }

    /// Writes a batch and its positions in one transaction.
    pub async fn write(
        &mut self,
        batch: &TimescaleBatch,
        positions: &[Position],
    ) -> Result<FlushReport, HandlerError> {
        let streams = batch
            .streams()
            .map_err(|e| HandlerError::Fatal(e.to_string()))?;
        let consumer = self.consumer.clone();
        self.connection().await.map_err(HandlerError::database)?;
        self.ensure_partitions(&batch.metering_months())
            .await
            .map_err(HandlerError::database)?;
        let mode = self.mode;
        let path = self.path;
        let conn = self.conn.as_mut().expect("connected");
        let mut report = FlushReport::default();
        let result: Result<(), sqlx::Error> = async {
            let mut tx = conn.begin().await?;
            if batch.metering_series() > 0 {
                let done = write_metering(&mut tx, batch, mode, path).await?;
                let entry = report.tables.entry(storage::METERING_SERIES).or_default();
                entry.0 += batch.metering_series() as u64;
                entry.1 += done.copied + done.merge_changed;
                report
                    .counts
                    .insert("metering_values", batch.metering_values() as u64);
                report.counts.insert("metering_series_copied", done.copied);
                report.counts.insert("metering_series_merged", done.merged);
                if done.fell_back {
                    report.counts.insert("metering_copy_fallbacks", 1);
                }
            }
            for (stage, stream, _) in &streams.streams {
                let mut copy = tx.copy_in_raw(&stage.copy_sql()).await?;
                copy.send(stream.as_slice()).await?;
                copy.finish().await?;
            }
            let mut table = |name: &'static str, stage: &Stage, changed: u64| {
                let staged = streams.rows(stage) as u64;
                if staged > 0 {
                    let entry = report.tables.entry(name).or_default();
                    entry.0 += staged;
                    entry.1 += changed;
                }
            };
            if streams.rows(&DAILY_STAGE) > 0 {
                let (gsrns, dates, versions) = batch.daily_versions();
                sqlx::query(DAILY_DELETE_OLDER)
                    .bind(gsrns)
                    .bind(dates)
                    .bind(versions)
                    .execute(&mut *tx)
                    .await?;
                let done = sqlx::query(DAILY_MERGE).execute(&mut *tx).await?;
                table("daily_summary", &DAILY_STAGE, done.rows_affected());
            }
            if streams.rows(&METERING_POINT_STAGE) > 0 {
                let upserted = sqlx::query(&metering_point_merge())
                    .execute(&mut *tx)
                    .await?;
                let deleted = sqlx::query(&metering_point_delete())
                    .execute(&mut *tx)
                    .await?;
                table(
                    "metering_point",
                    &METERING_POINT_STAGE,
                    upserted.rows_affected() + deleted.rows_affected(),
                );
                let history = sqlx::query(&metering_point_history_merge())
                    .execute(&mut *tx)
                    .await?;
                table(
                    "metering_point_history",
                    &METERING_POINT_STAGE,
                    history.rows_affected(),
                );
            }
            if streams.rows(&SETTLEMENT_VERSION_STAGE) > 0 {
                let done =
                    sqlx::query(&insert_all("settlement_version", &SETTLEMENT_VERSION_STAGE))
                        .execute(&mut *tx)
                        .await?;
                table(
                    "settlement_version",
                    &SETTLEMENT_VERSION_STAGE,
                    done.rows_affected(),
                );
            }
            if streams.rows(&SETTLEMENT_LINE_STAGE) > 0 {
                let done = sqlx::query(&insert_all("settlement_line", &SETTLEMENT_LINE_STAGE))
                    .execute(&mut *tx)
                    .await?;
                table(
                    "settlement_line",
                    &SETTLEMENT_LINE_STAGE,
                    done.rows_affected(),
                );
            }
            if streams.rows(&STATEMENT_STAGE) > 0 {
                let done = sqlx::query(&insert_all("settlement_statement", &STATEMENT_STAGE))
                    .execute(&mut *tx)
                    .await?;
                table(
                    "settlement_statement",
                    &STATEMENT_STAGE,
                    done.rows_affected(),
                );
            }
            if streams.rows(&STATEMENT_LINE_STAGE) > 0 {
                let done = sqlx::query(&insert_all(
                    "settlement_statement_line",
                    &STATEMENT_LINE_STAGE,
                ))
                .execute(&mut *tx)
                .await?;
                table(
                    "settlement_statement_line",
                    &STATEMENT_LINE_STAGE,
                    done.rows_affected(),
                );
            }
            if streams.rows(&DEAD_LETTER_STAGE) > 0 {
                let done = sqlx::query(DEAD_LETTER_MERGE).execute(&mut *tx).await?;
                table("dead_letter", &DEAD_LETTER_STAGE, done.rows_affected());
            }
            if streams.rows(&PROCESSED_STAGE) > 0 {
                let staged = streams.rows(&PROCESSED_STAGE) as u64;
                let done = sqlx::query(PROCESSED_MERGE)
                    .bind(&consumer)
                    .execute(&mut *tx)
                    .await?;
                table("processed_message", &PROCESSED_STAGE, done.rows_affected());
                report
                    .counts
                    .insert("duplicate_records", staged - done.rows_affected());
            }
            for (name, staged, changed) in batch.wholesale.write(&mut tx).await? {
                let entry = report.tables.entry(name).or_default();
                entry.0 += staged;
                entry.1 += changed;
            }
            store_positions(&mut tx, &consumer, positions).await?;
            tx.commit().await?;
            Ok(())
        }
        .await;
        match result {
            Ok(()) => Ok(report),
            Err(error) => {
                self.conn = None;
                Err(HandlerError::database(error))
            }
        }
    }
}

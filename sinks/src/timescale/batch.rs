//! A batch of the database sink: the rows of every table, deduplicated the
//! way each table's upsert needs, and their binary COPY streams.
//!
//! Deduplication happens here, in Rust, for two reasons: PostgreSQL refuses
//! an `INSERT ... ON CONFLICT DO UPDATE` that touches the same row twice in
//! one statement, and sorting the metering series by primary key before COPY
//! makes the index insertions sequential.

use std::collections::HashMap;
use std::sync::Arc;

use afregning_topology::records::{
    DailyAggregate, DeadLetter, DeadLetterKey, MeteringPoint, ProvisionalSettlement,
    SettlementLine, SettlementStatement,
};
use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;

use super::rows::{RowError, SeriesRow, series_row};
use crate::copy::{CopyEncodeError, CopyWriter};
use crate::positions::SourcePos;

/// A staging table: a temporary table per connection, emptied at commit,
/// whose columns are exactly the COPY stream's.
#[derive(Debug)]
pub struct Stage {
    /// Temporary table name.
    pub name: &'static str,
    /// Column definitions, in COPY order.
    pub columns: &'static [(&'static str, &'static str)],
}

impl Stage {
    /// `CREATE TEMP TABLE IF NOT EXISTS ... ON COMMIT DELETE ROWS`.
    pub fn create_sql(&self) -> String {
        let columns: Vec<String> = self
            .columns
            .iter()
            .map(|(name, ty)| format!("\"{name}\" {ty}"))
            .collect();
        format!(
            "CREATE TEMP TABLE IF NOT EXISTS {} ({}) ON COMMIT DELETE ROWS",
            self.name,
            columns.join(", ")
        )
    }

    /// The column list, quoted, comma-separated.
    pub fn column_list(&self) -> String {
        let columns: Vec<String> = self
            .columns
            .iter()
            .map(|(name, _)| format!("\"{name}\""))
            .collect();
        columns.join(", ")
    }

    /// `COPY <stage> (...) FROM STDIN (FORMAT binary)`.
    pub fn copy_sql(&self) -> String {
        format!(
            "COPY {} ({}) FROM STDIN (FORMAT binary)",
            self.name,
            self.column_list()
        )
    }
}

/// Staging of `metering_series`, for the batches whose direct COPY met a
/// series already stored (a replay) and the merge-only path.
pub const METERING_STAGE: Stage = Stage {
    name: "afregning_stage_metering_series",
    columns: &[
        ("gsrn", "text COLLATE \"C\""),
        ("resolution", "text"),
        ("period_start", "timestamptz"),
        ("period_end", "timestamptz"),
        ("source_message_id", "text COLLATE \"C\""),
        ("registered_at", "timestamptz"),
        ("received_at", "timestamptz"),
        ("quantities", "numeric[]"),
        ("qualities", "smallint[]"),
    ],
};

/// Staging of `daily_summary`.
pub const DAILY_STAGE: Stage = Stage {
    name: "afregning_stage_daily_summary",
    columns: &[
        ("gsrn", "text"),
        ("local_date", "date"),
        ("tariff_period", "text"),
        ("grid_area", "text"),
        ("price_area", "text"),
        ("resolution", "text"),
        ("kwh", "numeric"),
        ("day_total_kwh", "numeric"),
        ("spot_cost_dkk", "numeric"),
        ("expected_positions", "integer"),
        ("received_positions", "integer"),
        ("complete", "boolean"),
        ("version", "bigint"),
        ("computed_at", "timestamptz"),
        ("source_topic", "text"),
        ("source_partition", "integer"),
        ("source_offset", "bigint"),
    ],
};

/// Staging of metering point records and tombstones (`op` `U` or `D`).
pub const METERING_POINT_STAGE: Stage = Stage {
    name: "afregning_stage_metering_point",
    columns: &[
        ("op", "text"),
        ("gsrn", "text"),
        ("valid_from", "timestamptz"),
        ("valid_to", "timestamptz"),
        ("metering_point_type", "text"),
        ("settlement_method", "text"),
        ("grid_area", "text"),
        ("price_area", "text"),
        ("resolution", "text"),
        ("energy_supplier_gln", "text"),
        ("supply_start", "timestamptz"),
        ("supply_end", "timestamptz"),
        ("connection_state", "text"),
        ("source_message_id", "text"),
        ("received_at", "timestamptz"),
        ("source_topic", "text"),
        ("source_partition", "integer"),
        ("source_offset", "bigint"),
    ],
};

/// Staging of `settlement_version`.
pub const SETTLEMENT_VERSION_STAGE: Stage = Stage {
    name: "afregning_stage_settlement_version",
    columns: &[
        ("gsrn", "text"),
        ("month_start", "date"),
        ("version", "bigint"),
        ("grid_area", "text"),
        ("energy_supplier_gln", "text"),
        ("total_excl_vat", "numeric"),
        ("vat_amount", "numeric"),
        ("total_incl_vat", "numeric"),
        ("days_settled", "integer"),
        ("days_in_month", "integer"),
        ("idempotency_key", "text"),
        ("computed_at", "timestamptz"),
        ("source_topic", "text"),
        ("source_partition", "integer"),
        ("source_offset", "bigint"),
    ],
};

/// Staging of `settlement_line`.
pub const SETTLEMENT_LINE_STAGE: Stage = Stage {
    name: "afregning_stage_settlement_line",
    columns: &[
        ("gsrn", "text"),
        ("month_start", "date"),
        ("version", "bigint"),
        ("line_no", "integer"),
        ("component", "text"),
        ("description", "text"),
        ("charge_owner_gln", "text"),
        ("charge_type", "text"),
        ("charge_code", "text"),
        ("quantity", "numeric"),
        ("quantity_unit", "text"),
        ("unit_price", "numeric"),
        ("amount", "numeric"),
        ("vat_class", "text"),
        ("idempotency_key", "text"),
    ],
};

/// Staging of `settlement_statement`.
pub const STATEMENT_STAGE: Stage = Stage {
    name: "afregning_stage_settlement_statement",
    columns: &[
        ("statement_id", "text"),
        ("kind", "text"),
        ("corrects_statement_id", "text"),
        ("gsrn", "text"),
        ("month_start", "date"),
        ("grid_area", "text"),
        ("energy_supplier_gln", "text"),
        ("version", "bigint"),
        ("total_excl_vat", "numeric"),
        ("vat_amount", "numeric"),
        ("total_incl_vat", "numeric"),
        ("currency", "text"),
        ("idempotency_key", "text"),
        ("issued_at", "timestamptz"),
        ("source_topic", "text"),
        ("source_partition", "integer"),
        ("source_offset", "bigint"),
    ],
};

/// Staging of `settlement_statement_line`.
pub const STATEMENT_LINE_STAGE: Stage = Stage {
    name: "afregning_stage_settlement_statement_line",
    columns: &[
        ("statement_id", "text"),
        ("line_no", "integer"),
        ("component", "text"),
        ("description", "text"),
        ("charge_owner_gln", "text"),
        ("charge_type", "text"),
        ("charge_code", "text"),
        ("quantity", "numeric"),
        ("quantity_unit", "text"),
        ("unit_price", "numeric"),
        ("amount", "numeric"),
        ("vat_class", "text"),
        ("version", "bigint"),
        ("idempotency_key", "text"),
    ],
};

/// Staging of `dead_letter`.
pub const DEAD_LETTER_STAGE: Stage = Stage {
    name: "afregning_stage_dead_letter",
    columns: &[
        ("source_topic", "text"),
        ("source_partition", "integer"),
        ("source_offset", "bigint"),
        ("source_timestamp", "timestamptz"),
        ("source_key", "bytea"),
        ("payload", "bytea"),
        ("source_message_id", "text"),
        ("component", "text"),
        ("error_class", "text"),
        ("reason", "text"),
        ("failed_at", "timestamptz"),
        ("attempts", "integer"),
        ("dead_letter_partition", "integer"),
        ("dead_letter_offset", "bigint"),
    ],
};

/// Staging of `processed_message`.
pub const PROCESSED_STAGE: Stage = Stage {
    name: "afregning_stage_processed_message",
    columns: &[
        ("idempotency_key", "text"),
        ("topic", "text"),
        ("partition", "integer"),
        ("offset", "bigint"),
    ],
};

/// Every staging table, for creating them on a new connection.
pub const STAGES: &[&Stage] = &[
    &METERING_STAGE,
    &DAILY_STAGE,
    &METERING_POINT_STAGE,
    &SETTLEMENT_VERSION_STAGE,
    &SETTLEMENT_LINE_STAGE,
    &STATEMENT_STAGE,
    &STATEMENT_LINE_STAGE,
    &DEAD_LETTER_STAGE,
    &PROCESSED_STAGE,
];

/// `metering_series`' primary key: GSRN, resolution, period start, MessageId.
type SeriesKey = (Arc<str>, &'static str, DateTime<Utc>, Arc<str>);

/// The rows of one batch.
#[derive(Debug, Default)]
pub struct TimescaleBatch {
    series: HashMap<SeriesKey, SeriesRow>,
    metering_values: usize,
    daily: HashMap<(String, NaiveDate), (DailyAggregate, SourcePos)>,
    metering_points: Vec<(String, DateTime<Utc>, Option<MeteringPoint>, SourcePos)>,
    settlements: HashMap<(String, NaiveDate, i64), (ProvisionalSettlement, SourcePos)>,
    statements: HashMap<String, (SettlementStatement, SourcePos)>,
    dead_letters: HashMap<(String, i32, i64), (DeadLetter, SourcePos)>,
    processed: HashMap<String, SourcePos>,
    /// Dead letters this sink itself produces (records it cannot decode),
    /// published before the batch commits.
    pub outgoing_dead_letters: Vec<(DeadLetterKey, DeadLetter)>,
    /// DataHub's wholesale results and our reconciliations (not COPY-staged).
    pub wholesale: super::wholesale::WholesaleRows,
    rows: usize,
}

/// One UTC month's series as a binary COPY stream: ((year, month), stream, series).
pub type MonthCopy = ((i32, u32), Vec<u8>, usize);

/// The COPY streams of a batch, one per non-empty stage.
#[derive(Debug, Default)]
pub struct Streams {
    /// (stage, stream, rows) in merge order.
    pub streams: Vec<(&'static Stage, Vec<u8>, usize)>,
}

impl Streams {
    /// The rows staged for a stage.
    pub fn rows(&self, stage: &Stage) -> usize {
        self.streams
            .iter()
            .filter(|(s, _, _)| s.name == stage.name)
            .map(|(_, _, rows)| rows)
            .sum()
    }
}

impl TimescaleBatch {
    /// Rows staged so far (all tables): what `batch_max_rows` limits.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Whether nothing is staged.
    pub fn is_empty(&self) -> bool {
        self.rows == 0
            && self.processed.is_empty()
            && self.outgoing_dead_letters.is_empty()
            && self.wholesale.is_empty()
    }

    /// The months (UTC year, month) the metering series start in, for the
    /// partitions that must exist before the batch is written.
    pub fn metering_months(&self) -> std::collections::BTreeSet<(i32, u32)> {
        use chrono::Datelike;
        self.series
            .keys()
            .map(|(_, _, start, _)| (start.year(), start.month()))
            .collect()
    }

    /// Adds a reading as one series row and returns its values. The same
    /// series of the same message twice (a replay) is kept once; every other
    /// version is kept, for the `metering_data` view to choose from. A series
    /// counts its values towards `batch_max_rows`, so a batch holds as many
    /// values as it did when each value was a row.
    pub fn add_reading(
        &mut self,
        reading: &afregning_topology::records::Reading,
        pos: &SourcePos,
    ) -> Result<usize, RowError> {
        let row = series_row(reading, pos.received_at)?;
        let values = row.values();
        if let std::collections::hash_map::Entry::Vacant(slot) = self.series.entry(row.key()) {
            slot.insert(row);
            self.rows += values;
            self.metering_values += values;
        }
        Ok(values)
    }

    /// The batch's days of `daily_summary` with the version each carries, as
    /// three parallel arrays (metering point, local date, version): what the
    /// delete of older versions' rows binds, so that PostgreSQL plans it as a
    /// lookup per day whatever it knows of the tables.
    pub fn daily_versions(&self) -> (Vec<&str>, Vec<NaiveDate>, Vec<i64>) {
        let mut gsrns = Vec::with_capacity(self.daily.len());
        let mut dates = Vec::with_capacity(self.daily.len());
        let mut versions = Vec::with_capacity(self.daily.len());
        for ((gsrn, date), (aggregate, _)) in &self.daily {
            gsrns.push(gsrn.as_str());
            dates.push(*date);
            versions.push(aggregate.version);
        }
        (gsrns, dates, versions)
    }

    /// Adds a daily aggregate; of several versions of a day, the highest wins.
    pub fn add_daily(&mut self, aggregate: DailyAggregate, pos: &SourcePos) -> usize {
        let key = (aggregate.gsrn.clone(), aggregate.local_date);
        let rows = aggregate.tariff_periods.len().max(1);
        match self.daily.get(&key) {
            Some((existing, _)) if existing.version >= aggregate.version => {}
            Some(_) => {
                self.daily.insert(key, (aggregate, pos.clone()));
            }
            None => {
                self.daily.insert(key, (aggregate, pos.clone()));
                self.rows += rows;
            }
        }
        rows
    }

    /// Adds a metering point record (`Some`) or tombstone (`None`).
    pub fn add_metering_point(
        &mut self,
        gsrn: String,
        valid_from: DateTime<Utc>,
        value: Option<MeteringPoint>,
        pos: &SourcePos,
    ) -> usize {
        self.metering_points
            .push((gsrn, valid_from, value, pos.clone()));
        self.rows += 1;
        1
    }

    /// Adds a provisional settlement version and its lines.
    pub fn add_settlement(&mut self, settlement: ProvisionalSettlement, pos: &SourcePos) -> usize {
        let rows = 1 + settlement.lines.len();
        let key = (
            settlement.gsrn.clone(),
            settlement.month_start,
            settlement.version,
        );
        if let std::collections::hash_map::Entry::Vacant(entry) = self.settlements.entry(key) {
            entry.insert((settlement, pos.clone()));
            self.rows += rows;
        }
        rows
    }

    /// Adds a final statement or credit note and its lines.
    pub fn add_statement(&mut self, statement: SettlementStatement, pos: &SourcePos) -> usize {
        let rows = 1 + statement.lines.len();
        if !self.statements.contains_key(&statement.statement_id) {
            self.statements
                .insert(statement.statement_id.clone(), (statement, pos.clone()));
            self.rows += rows;
        }
        rows
    }

    /// Adds a dead letter; of two for the same source record, the later failure wins.
    pub fn add_dead_letter(&mut self, letter: DeadLetter, pos: &SourcePos) -> usize {
        let key = (
            letter.source_topic.clone(),
            letter.source_partition,
            letter.source_offset,
        );
        match self.dead_letters.get(&key) {
            Some((existing, _)) if existing.failed_at >= letter.failed_at => {}
            Some(_) => {
                self.dead_letters.insert(key, (letter, pos.clone()));
            }
            None => {
                self.dead_letters.insert(key, (letter, pos.clone()));
                self.rows += 1;
            }
        }
        1
    }

    /// Adds a DataHub result series (`wholesale_result` and its points).
    pub fn add_wholesale_result(
        &mut self,
        result: afregning_topology::records::WholesaleResult,
        pos: &SourcePos,
    ) -> usize {
        let rows = self.wholesale.add_result(result, pos);
        self.rows += rows;
        rows
    }

    /// Adds a part of a reconciliation (`reconciliation` and its discrepancies).
    pub fn add_reconciliation(
        &mut self,
        part: afregning_topology::records::Reconciliation,
    ) -> usize {
        let rows = self.wholesale.add_reconciliation(part);
        self.rows += rows;
        rows
    }

    /// Records that the record with this idempotency key was applied.
    pub fn add_processed(&mut self, idempotency_key: String, pos: &SourcePos) {
        self.processed
            .entry(idempotency_key)
            .or_insert_with(|| pos.clone());
    }

    /// The metering series as binary COPY streams of `metering_series`' rows
    /// (the columns of [`METERING_STAGE`], in key order), one per UTC month of
    /// the period start, oldest first: (month, stream, series) for a COPY
    /// straight into the month's partition.
    pub fn metering_copy(&self) -> Result<Vec<MonthCopy>, CopyEncodeError> {
        use chrono::Datelike;
        let mut months: Vec<((i32, u32), CopyWriter)> = Vec::new();
        for row in self.sorted_series() {
            let month = (row.period_start.year(), row.period_start.month());
            let w = match months.iter().position(|(m, _)| *m == month) {
                Some(i) => &mut months[i].1,
                None => {
                    months.push((month, CopyWriter::new()));
                    &mut months.last_mut().expect("just pushed").1
                }
            };
            series_copy_row(w, row)?;
        }
        months.sort_unstable_by_key(|(month, _)| *month);
        Ok(months
            .into_iter()
            .map(|(month, w)| {
                let rows = w.rows();
                (month, w.finish(), rows)
            })
            .collect())
    }

    /// Every metering series in one stream for the staging table (the
    /// merge-only path, `metering_direct_copy = false`).
    pub fn metering_stage_copy(&self) -> Result<Vec<u8>, CopyEncodeError> {
        let mut w = CopyWriter::new();
        for row in self.sorted_series() {
            series_copy_row(&mut w, row)?;
        }
        Ok(w.finish())
    }

    /// The series in primary-key order, so the index insertions are
    /// sequential.
    fn sorted_series(&self) -> Vec<&SeriesRow> {
        let mut rows: Vec<&SeriesRow> = self.series.values().collect();
        rows.sort_unstable_by(|a, b| {
            (&a.gsrn, a.resolution, a.period_start, &a.source_message_id).cmp(&(
                &b.gsrn,
                b.resolution,
                b.period_start,
                &b.source_message_id,
            ))
        });
        rows
    }

    /// Metering series in the batch (after deduplication).
    pub fn metering_series(&self) -> usize {
        self.series.len()
    }

    /// The values (positions) of the batch's metering series.
    pub fn metering_values(&self) -> usize {
        self.metering_values
    }

    /// The COPY streams of a batch's other tables (not `metering_data`:
    /// [`TimescaleBatch::metering_copy`]).
    pub fn streams(&self) -> Result<Streams, CopyEncodeError> {
        let mut streams = Streams::default();
        let mut push = |stage: &'static Stage, writer: CopyWriter| {
            if !writer.is_empty() {
                let rows = writer.rows();
                streams.streams.push((stage, writer.finish(), rows));
            }
        };
        push(&DAILY_STAGE, self.daily_stream()?);
        push(&METERING_POINT_STAGE, self.metering_point_stream()?);
        let (versions, lines) = self.settlement_streams()?;
        push(&SETTLEMENT_VERSION_STAGE, versions);
        push(&SETTLEMENT_LINE_STAGE, lines);
        let (statements, lines) = self.statement_streams()?;
        push(&STATEMENT_STAGE, statements);
        push(&STATEMENT_LINE_STAGE, lines);
        push(&DEAD_LETTER_STAGE, self.dead_letter_stream()?);
        push(&PROCESSED_STAGE, self.processed_stream()?);
        Ok(streams)
    }

    fn daily_stream(&self) -> Result<CopyWriter, CopyEncodeError> {
        let mut w = CopyWriter::new();
        for (aggregate, pos) in self.daily.values() {
            // Two entries for one tariff period (a band split around another)
            // are one row: summed, so the upsert touches each row once.
            let mut periods: Vec<(String, Decimal)> = Vec::new();
            for period in &aggregate.tariff_periods {
                match periods
                    .iter_mut()
                    .find(|(name, _)| *name == period.tariff_period)
                {
                    Some((_, kwh)) => *kwh += period.kwh,
                    None => periods.push((period.tariff_period.clone(), period.kwh)),
                }
            }
            if periods.is_empty() {
                periods.push(("total".to_string(), aggregate.total_kwh));
            }
            for (period, kwh) in periods {
                w.row(17)
                    .field(&aggregate.gsrn)?
                    .field(&aggregate.local_date)?
                    .field(&period)?
                    .field(&aggregate.grid_area)?
                    .field(&aggregate.price_area)?
                    .field(&aggregate.resolution.code())?
                    .field(&kwh)?
                    .field(&aggregate.total_kwh)?
                    .field(&aggregate.spot_cost_dkk)?
                    .field(&aggregate.expected_positions)?
                    .field(&aggregate.received_positions)?
                    .field(&aggregate.complete)?
                    .field(&aggregate.version)?
                    .field(&aggregate.computed_at)?
                    .field(&&*pos.topic)?
                    .field(&pos.partition)?
                    .field(&pos.offset)?;
            }
        }
        Ok(w)
    }

    fn metering_point_stream(&self) -> Result<CopyWriter, CopyEncodeError> {
        let mut w = CopyWriter::new();
        for (gsrn, valid_from, value, pos) in &self.metering_points {
            w.row(18);
            match value {
                Some(mp) => {
                    w.field(&"U")?
                        .field(gsrn)?
                        .field(valid_from)?
                        .field(&mp.valid_to)?
                        .field(&mp.metering_point_type)?
                        .field(&mp.settlement_method.map(|m| m.code()))?
                        .field(&mp.grid_area)?
                        .field(&mp.price_area)?
                        .field(&mp.resolution.code())?
                        .field(&mp.energy_supplier_gln)?
                        .field(&mp.supply_start)?
                        .field(&mp.supply_end)?
                        .field(&mp.connection_state)?
                        .field(&mp.source_message_id)?
                        .field(&pos.received_at)?;
                }
                None => {
                    w.field(&"D")?.field(gsrn)?.field(valid_from)?;
                    for _ in 0..12 {
                        w.null();
                    }
                }
            }
            w.field(&&*pos.topic)?
                .field(&pos.partition)?
                .field(&pos.offset)?;
        }
        Ok(w)
    }

    fn settlement_streams(&self) -> Result<(CopyWriter, CopyWriter), CopyEncodeError> {
        let mut versions = CopyWriter::new();
        let mut lines = CopyWriter::new();
        for (s, pos) in self.settlements.values() {
            versions
                .row(15)
                .field(&s.gsrn)?
                .field(&s.month_start)?
                .field(&s.version)?
                .field(&s.grid_area)?
                .field(&s.energy_supplier_gln)?
                .field(&s.total_excl_vat)?
                .field(&s.vat_amount)?
                .field(&s.total_incl_vat)?
                .field(&s.days_settled)?
                .field(&s.days_in_month)?
                .field(&s.idempotency_key)?
                .field(&s.computed_at)?
                .field(&&*pos.topic)?
                .field(&pos.partition)?
                .field(&pos.offset)?;
            for (index, line) in s.lines.iter().enumerate() {
                lines
                    .row(15)
                    .field(&s.gsrn)?
                    .field(&s.month_start)?
                    .field(&s.version)?
                    .field(&(index as i32 + 1))?;
                line_fields(&mut lines, line)?;
                lines.field(&line.idempotency_key)?;
            }
        }
        Ok((versions, lines))
    }

    fn statement_streams(&self) -> Result<(CopyWriter, CopyWriter), CopyEncodeError> {
        let mut statements = CopyWriter::new();
        let mut lines = CopyWriter::new();
        for (s, pos) in self.statements.values() {
            statements
                .row(17)
                .field(&s.statement_id)?
                .field(&s.kind.code())?
                .field(&s.corrects_statement_id)?
                .field(&s.gsrn)?
                .field(&s.month_start)?
                .field(&s.grid_area)?
                .field(&s.energy_supplier_gln)?
                .field(&s.version)?
                .field(&s.total_excl_vat)?
                .field(&s.vat_amount)?
                .field(&s.total_incl_vat)?
                .field(&s.currency)?
                .field(&s.idempotency_key)?
                .field(&s.issued_at)?
                .field(&&*pos.topic)?
                .field(&pos.partition)?
                .field(&pos.offset)?;
            for (index, line) in s.lines.iter().enumerate() {
                lines
                    .row(14)
                    .field(&s.statement_id)?
                    .field(&(index as i32 + 1))?;
                line_fields(&mut lines, line)?;
                lines.field(&line.version)?.field(&line.idempotency_key)?;
            }
        }
        Ok((statements, lines))
    }

    fn dead_letter_stream(&self) -> Result<CopyWriter, CopyEncodeError> {
        let mut w = CopyWriter::new();
        for (d, pos) in self.dead_letters.values() {
            w.row(14)
                .field(&d.source_topic)?
                .field(&d.source_partition)?
                .field(&d.source_offset)?
                .field(&d.source_timestamp)?
                .field(&d.source_key)?
                .field(&d.payload)?
                .field(&d.source_message_id)?
                .field(&d.component)?
                .field(&d.error_class.code())?
                .field(&d.reason)?
                .field(&d.failed_at)?
                .field(&d.attempts)?
                .field(&pos.partition)?
                .field(&pos.offset)?;
        }
        Ok(w)
    }

    fn processed_stream(&self) -> Result<CopyWriter, CopyEncodeError> {
        let mut w = CopyWriter::new();
        for (key, pos) in &self.processed {
            w.row(4)
                .field(key)?
                .field(&&*pos.topic)?
                .field(&pos.partition)?
                .field(&pos.offset)?;
        }
        Ok(w)
    }
}

/// One series row in [`METERING_STAGE`]'s column order, `metering_series`'.
fn series_copy_row(w: &mut CopyWriter, row: &SeriesRow) -> Result<(), CopyEncodeError> {
    w.row(9)
        .field(&&*row.gsrn)?
        .field(&row.resolution)?
        .field(&row.period_start)?
        .field(&row.period_end)?
        .field(&&*row.source_message_id)?
        .field(&row.registered_at)?
        .field(&row.received_at)?
        .field(&row.quantities)?
        .field(&row.qualities)?;
    Ok(())
}

/// The fields a provisional line and a statement line share, in stage order:
/// component through vat_class.
fn line_fields(w: &mut CopyWriter, line: &SettlementLine) -> Result<(), CopyEncodeError> {
    w.field(&line.component.code())?
        .field(&line.description)?
        .field(&line.charge_owner_gln)?
        .field(&line.charge_type.map(|t| t.code()))?
        .field(&line.charge_code)?
        .field(&line.quantity)?
        .field(&line.quantity_unit)?
        .field(&line.unit_price)?
        .field(&line.amount)?
        .field(&line.vat_class.code())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use afregning_topology::records::examples;
    use chrono::TimeZone;

    use super::*;

    fn pos(offset: i64) -> SourcePos {
        SourcePos {
            topic: Arc::from("t"),
            partition: 0,
            offset,
            received_at: Utc.with_ymd_and_hms(2026, 10, 16, 4, 0, 0).unwrap(),
        }
    }

    #[test]
    fn a_replayed_reading_adds_no_series_and_a_correction_is_another_version() {
        let mut batch = TimescaleBatch::default();
        let reading = examples::reading();
        assert_eq!(batch.add_reading(&reading, &pos(1)).unwrap(), 24);
        batch.add_reading(&reading, &pos(2)).unwrap();
        assert_eq!(batch.rows(), 24, "a series counts its values");
        assert_eq!(batch.metering_series(), 1);
        let mut correction = reading.clone();
        correction.registered_at += chrono::Duration::hours(2);
        correction.source_message_id = "correction".into();
        correction.points[0].quantity = Some(Decimal::new(9_999, 3));
        batch.add_reading(&correction, &pos(3)).unwrap();
        assert_eq!(batch.metering_series(), 2, "both versions are stored");
        assert_eq!(batch.metering_values(), 48);
        assert_eq!(
            batch.metering_months().into_iter().collect::<Vec<_>>(),
            vec![(2026, 10)]
        );
    }

    #[test]
    fn the_highest_daily_version_wins_and_tariff_rows_are_counted() {
        let mut batch = TimescaleBatch::default();
        let mut v2 = examples::daily_aggregate();
        assert_eq!(batch.add_daily(v2.clone(), &pos(1)), 3);
        let mut v1 = v2.clone();
        v1.version = 1;
        v1.total_kwh = Decimal::ZERO;
        batch.add_daily(v1, &pos(2));
        assert_eq!(batch.daily.values().next().unwrap().0.version, 2);
        v2.version = 3;
        batch.add_daily(v2, &pos(3));
        assert_eq!(batch.daily.values().next().unwrap().0.version, 3);
        assert_eq!(batch.rows(), 3);
    }

    #[test]
    fn streams_have_one_row_per_table_row() {
        let mut batch = TimescaleBatch::default();
        batch.add_reading(&examples::reading(), &pos(1)).unwrap();
        let mut daily = examples::daily_aggregate();
        daily.tariff_periods.push(daily.tariff_periods[1].clone()); // "high" twice
        batch.add_daily(daily, &pos(2));
        batch.add_settlement(examples::provisional_settlement(), &pos(3));
        batch.add_statement(examples::settlement_statement(), &pos(4));
        batch.add_dead_letter(examples::dead_letter(), &pos(5));
        let mp = examples::metering_point();
        batch.add_metering_point(mp.gsrn.clone(), mp.valid_from, Some(mp.clone()), &pos(6));
        batch.add_metering_point(mp.gsrn.clone(), mp.valid_from, None, &pos(7));
        batch.add_processed("k1".into(), &pos(1));
        batch.add_processed("k1".into(), &pos(9));
        let streams = batch.streams().unwrap();
        assert_eq!(
            streams.rows(&METERING_STAGE),
            0,
            "metering rows: metering_copy"
        );
        assert_eq!(streams.rows(&DAILY_STAGE), 3, "high is one row");
        assert_eq!(streams.rows(&SETTLEMENT_VERSION_STAGE), 1);
        assert_eq!(streams.rows(&SETTLEMENT_LINE_STAGE), 3);
        assert_eq!(streams.rows(&STATEMENT_STAGE), 1);
        assert_eq!(streams.rows(&STATEMENT_LINE_STAGE), 3);
        assert_eq!(streams.rows(&DEAD_LETTER_STAGE), 1);
        assert_eq!(streams.rows(&METERING_POINT_STAGE), 2);
        assert_eq!(streams.rows(&PROCESSED_STAGE), 1);
    }

    #[test]
    fn series_are_copied_per_month_of_their_start_in_key_order() {
        let mut batch = TimescaleBatch::default();
        let october = examples::reading();
        batch.add_reading(&october, &pos(1)).unwrap();
        let mut november = october.clone();
        november.gsrn = "571313100000000000".into();
        let shift = chrono::Duration::days(31);
        november.period_start += shift;
        november.period_end += shift;
        batch.add_reading(&november, &pos(2)).unwrap();
        let mut second = november.clone();
        second.gsrn = "571313100000000001".into();
        batch.add_reading(&second, &pos(3)).unwrap();

        let months: Vec<((i32, u32), usize)> = batch
            .metering_copy()
            .unwrap()
            .iter()
            .map(|(m, _, rows)| (*m, *rows))
            .collect();
        assert_eq!(months, vec![((2026, 10), 1), ((2026, 11), 2)]);
        // The staging stream holds the same rows (header and trailer are
        // 19 + 2 bytes per stream).
        let staged = batch.metering_stage_copy().unwrap();
        let direct = batch.metering_copy().unwrap();
        let direct_bytes: usize = direct.iter().map(|(_, s, _)| s.len() - 21).sum();
        assert_eq!(staged.len() - 21, direct_bytes);
    }

    #[test]
    fn stage_sql_lists_the_columns_in_copy_order() {
        assert_eq!(
            PROCESSED_STAGE.copy_sql(),
            "COPY afregning_stage_processed_message (\"idempotency_key\", \"topic\", \"partition\", \"offset\") FROM STDIN (FORMAT binary)"
        );
        assert!(
            METERING_STAGE
                .create_sql()
                .ends_with("ON COMMIT DELETE ROWS")
        );
    }
}

//! DataHub's wholesale results and our reconciliations into PostgreSQL (migration 0030):
//! `wholesale_result` with its points, `reconciliation` with its discrepancies.
//!
//! Few rows next to the metering data, so they are written with one `INSERT … SELECT FROM
//! unnest(…)` per table instead of COPY staging, inside the batch's transaction. Every insert
//! is `ON CONFLICT DO NOTHING` on the natural key (a series is `MessageId + mRID`, a
//! reconciliation `grid area + month + version`, a discrepancy that plus its number): a
//! re-read record changes nothing, so the writes are idempotent.

use std::collections::BTreeMap;

use afregning_topology::records::{Reconciliation, WholesaleResult};
use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use sqlx::PgConnection;

use crate::positions::SourcePos;

/// The results and reconciliations of one batch, deduplicated by natural key.
#[derive(Debug, Default)]
pub struct WholesaleRows {
    results: BTreeMap<(String, String), (WholesaleResult, SourcePos)>,
    reconciliations: BTreeMap<(String, NaiveDate, i64, i32), Reconciliation>,
}

impl WholesaleRows {
    /// Adds a result series; returns the rows it stands for (the series and its points).
    pub fn add_result(&mut self, result: WholesaleResult, pos: &SourcePos) -> usize {
        let rows = 1 + result.points.len();
        self.results.insert(
            (
                result.source_message_id.clone(),
                result.transaction_id.clone(),
            ),
            (result, pos.clone()),
        );
        rows
    }

    /// Adds one part of a reconciliation; returns its rows.
    pub fn add_reconciliation(&mut self, part: Reconciliation) -> usize {
        let rows = 1 + part.discrepancies.len();
        self.reconciliations.insert(
            (
                part.grid_area.clone(),
                part.month_start,
                part.version,
                part.part,
            ),
            part,
        );
        rows
    }

    /// Whether nothing is staged.
    pub fn is_empty(&self) -> bool {
        self.results.is_empty() && self.reconciliations.is_empty()
    }

    /// Writes everything on `conn` (inside the batch's transaction); per table, the rows
    /// offered and the rows new.
    pub async fn write(
        &self,
        conn: &mut PgConnection,
    ) -> Result<Vec<(&'static str, u64, u64)>, sqlx::Error> {
        let mut report = Vec::new();
        if !self.results.is_empty() {
            let (series, points) = self.write_results(conn).await?;
            report.push(("wholesale_result", self.results.len() as u64, series));
            let offered = self
                .results
                .values()
                .map(|(r, _)| r.points.len())
                .sum::<usize>();
            report.push(("wholesale_result_point", offered as u64, points));
        }
        if !self.reconciliations.is_empty() {
            let (heads, found) = self.write_reconciliations(conn).await?;
            report.push(("reconciliation", self.reconciliations.len() as u64, heads));
            let offered = self
                .reconciliations
                .values()
                .map(|r| r.discrepancies.len())
                .sum::<usize>();
            report.push(("reconciliation_discrepancy", offered as u64, found));
        }
        Ok(report)
    }

    async fn write_results(&self, conn: &mut PgConnection) -> Result<(u64, u64), sqlx::Error> {
        let mut c: [Vec<Option<String>>; 17] = Default::default();
        let (mut starts, mut ends, mut partitions, mut offsets) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let mut p_ids: [Vec<String>; 2] = Default::default();
        let mut p_positions: Vec<i32> = Vec::new();
        let mut p_values: [Vec<Option<Decimal>>; 3] = Default::default();
        let mut p_quality: Vec<Option<String>> = Vec::new();
        for (r, pos) in self.results.values() {
            let texts = [
                Some(r.source_message_id.clone()),
                Some(r.transaction_id.clone()),
                Some(r.kind.code().to_string()),
                Some(r.business_reason.clone()),
                r.settlement_version.clone(),
                r.calculation_version.clone(),
                Some(r.grid_area.clone()),
                r.energy_supplier_gln.clone(),
                r.balance_responsible_gln.clone(),
                r.metering_point_type.clone(),
                r.settlement_method.clone(),
                r.charge_owner_gln.clone(),
                r.charge_type.map(|t| t.code().to_string()),
                r.charge_code.clone(),
                Some(r.unit.clone()),
                r.currency.clone(),
                Some(r.resolution.code().to_string()),
            ];
            for (column, value) in c.iter_mut().zip(texts) {
                column.push(value);
            }
            starts.push(r.period_start);
            ends.push(r.period_end);
            partitions.push(pos.partition);
            offsets.push(pos.offset);
            for p in &r.points {
                p_ids[0].push(r.source_message_id.clone());
                p_ids[1].push(r.transaction_id.clone());
                p_positions.push(p.position);
                p_values[0].push(p.quantity);
                p_values[1].push(p.price);
                p_values[2].push(p.amount);
                p_quality.push(p.quality.map(|q| q.code().to_string()));
            }
        }
        let topics: Vec<String> = self
            .results
            .values()
            .map(|(_, pos)| pos.topic.to_string())
            .collect();
        let [
            message_ids,
            transaction_ids,
            kinds,
            reasons,
            settlement_versions,
            calculation_versions,
            areas,
            suppliers,
            brps,
            mp_types,
            methods,
            owners,
            charge_types,
            codes,
            units,
            currencies,
            resolutions,
        ] = c;
        let series = sqlx::query(
            "INSERT INTO wholesale_result (source_message_id, transaction_id, kind, business_reason,
                settlement_version, calculation_version, grid_area, energy_supplier_gln,
                balance_responsible_gln, metering_point_type, settlement_method, charge_owner_gln,
                charge_type, charge_code, unit, currency, resolution, period_start, period_end,
                source_topic, source_partition, source_offset)
             SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
                $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[],
                $12::text[], $13::text[], $14::text[], $15::text[], $16::text[], $17::text[],
                $18::timestamptz[], $19::timestamptz[], $20::text[], $21::int[], $22::bigint[])
             ON CONFLICT DO NOTHING",
        )
        .bind(message_ids)
        .bind(transaction_ids)
        .bind(kinds)
        .bind(reasons)
        .bind(settlement_versions)
        .bind(calculation_versions)
        .bind(areas)
        .bind(suppliers)
        .bind(brps)
        .bind(mp_types)
        .bind(methods)
        .bind(owners)
        .bind(charge_types)
        .bind(codes)
        .bind(units)
        .bind(currencies)
        .bind(resolutions)
        .bind(starts)
        .bind(ends)
        .bind(topics)
        .bind(partitions)
        .bind(offsets)
        .execute(&mut *conn)
        .await?
        .rows_affected();
        let [p_message_ids, p_transaction_ids] = p_ids;
        let [quantities, prices, amounts] = p_values;
        let points = sqlx::query(
            "INSERT INTO wholesale_result_point (source_message_id, transaction_id, position,
                quantity, price, amount, quality)
             SELECT * FROM unnest($1::text[], $2::text[], $3::int[], $4::numeric[],
                $5::numeric[], $6::numeric[], $7::text[])
             ON CONFLICT DO NOTHING",
        )
        .bind(p_message_ids)
        .bind(p_transaction_ids)
        .bind(p_positions)
        .bind(quantities)
        .bind(prices)
        .bind(amounts)
        .bind(p_quality)
        .execute(&mut *conn)
        .await?
        .rows_affected();
        Ok((series, points))
    }

    async fn write_reconciliations(
        &self,
        conn: &mut PgConnection,
    ) -> Result<(u64, u64), sqlx::Error> {
        let mut areas = Vec::new();
        let mut months: Vec<NaiveDate> = Vec::new();
        let mut versions: Vec<i64> = Vec::new();
        let mut suppliers = Vec::new();
        let mut owners: Vec<Option<String>> = Vec::new();
        let mut parts: Vec<i32> = Vec::new();
        let mut counts: Vec<i32> = Vec::new();
        let mut calculations = Vec::new();
        let mut computed: Vec<DateTime<Utc>> = Vec::new();
        let mut d = DiscrepancyColumns::default();
        for r in self.reconciliations.values() {
            areas.push(r.grid_area.clone());
            months.push(r.month_start);
            versions.push(r.version);
            suppliers.push(r.energy_supplier_gln.clone());
            owners.push(r.grid_area_owner_gln.clone());
            parts.push(r.parts);
            counts.push(r.discrepancy_count);
            calculations.push(r.calculations.clone());
            computed.push(r.computed_at);
            for x in &r.discrepancies {
                d.push(r, x);
            }
        }
        let heads = sqlx::query(
            "INSERT INTO reconciliation (grid_area, month_start, version, energy_supplier_gln,
                grid_area_owner_gln, parts, discrepancy_count, calculations, computed_at)
             SELECT * FROM unnest($1::text[], $2::date[], $3::bigint[], $4::text[], $5::text[],
                $6::int[], $7::int[], $8::text[], $9::timestamptz[])
             ON CONFLICT DO NOTHING",
        )
        .bind(areas)
        .bind(months)
        .bind(versions)
        .bind(suppliers)
        .bind(owners)
        .bind(parts)
        .bind(counts)
        .bind(calculations)
        .bind(computed)
        .execute(&mut *conn)
        .await?
        .rows_affected();
        if d.seq.is_empty() {
            return Ok((heads, 0));
        }
        // Metering points travel as one space-separated text per row (arrays of arrays
        // cannot be unnested row by row) and are split into the text[] column here.
        let found = sqlx::query(
            "INSERT INTO reconciliation_discrepancy (grid_area, month_start, version, seq, level,
                measure, charge_owner_gln, charge_code, charge_type, resolution,
                metering_point_type, settlement_method, position_start, datahub, ours,
                difference, metering_points, calculation)
             SELECT a, m, v, s, l, me, o, c, t, r, mt, sm, ps, dh, ou, di,
                CASE WHEN mp = '' THEN '{}'::text[] ELSE string_to_array(mp, ' ') END, ca
             FROM unnest($1::text[], $2::date[], $3::bigint[], $4::int[], $5::text[], $6::text[],
                $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[],
                $13::timestamptz[], $14::numeric[], $15::numeric[], $16::numeric[], $17::text[],
                $18::text[])
                AS x(a, m, v, s, l, me, o, c, t, r, mt, sm, ps, dh, ou, di, mp, ca)
             ON CONFLICT DO NOTHING",
        )
        .bind(d.area)
        .bind(d.month)
        .bind(d.version)
        .bind(d.seq)
        .bind(d.level)
        .bind(d.measure)
        .bind(d.owner)
        .bind(d.code)
        .bind(d.charge_type)
        .bind(d.resolution)
        .bind(d.mp_type)
        .bind(d.method)
        .bind(d.time)
        .bind(d.datahub)
        .bind(d.ours)
        .bind(d.difference)
        .bind(d.metering_points)
        .bind(d.calculation)
        .execute(&mut *conn)
        .await?
        .rows_affected();
        Ok((heads, found))
    }
}

/// The discrepancy rows of a batch, column by column for `unnest`.
#[derive(Default)]
struct DiscrepancyColumns {
    area: Vec<String>,
    month: Vec<NaiveDate>,
    version: Vec<i64>,
    seq: Vec<i32>,
    level: Vec<String>,
    measure: Vec<String>,
    owner: Vec<Option<String>>,
    code: Vec<Option<String>>,
    charge_type: Vec<Option<String>>,
    resolution: Vec<String>,
    mp_type: Vec<Option<String>>,
    method: Vec<Option<String>>,
    time: Vec<DateTime<Utc>>,
    datahub: Vec<Option<Decimal>>,
    ours: Vec<Option<Decimal>>,
    difference: Vec<Decimal>,
    metering_points: Vec<String>,
    calculation: Vec<Option<String>>,
}

impl DiscrepancyColumns {
    fn push(&mut self, r: &Reconciliation, d: &afregning_topology::records::Discrepancy) {
        self.area.push(r.grid_area.clone());
        self.month.push(r.month_start);
        self.version.push(r.version);
        self.seq.push(d.seq);
        self.level.push(d.level.clone());
        self.measure.push(d.measure.clone());
        self.owner.push(d.charge_owner_gln.clone());
        self.code.push(d.charge_code.clone());
        self.charge_type.push(d.charge_type.clone());
        self.resolution.push(d.resolution.clone());
        self.mp_type.push(d.metering_point_type.clone());
        self.method.push(d.settlement_method.clone());
        self.time.push(d.time);
        self.datahub.push(d.datahub);
        self.ours.push(d.ours);
        self.difference.push(d.difference);
        self.metering_points.push(d.metering_points.clone());
        self.calculation.push(d.calculation.clone());
    }
}

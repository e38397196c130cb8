//! The reconcile processor on the broker: DataHub's results and our readings in, the
//! discrepancies of each grid area's month out.
//!
//! Inputs are co-partitioned by grid area: the wholesale-results topic (primary) and the
//! enriched readings, so one task holds every result and every metering point of its grid
//! areas. Charges, their prices and the charge links are global tables, as for settle.
//!
//! State (decision 0123):
//! - `results`: every result series as validate mapped it (`area␟YYYY-MM␟MessageId␟mRID`),
//!   all runs kept (decision 0121); the months to reconcile at the next tick
//!   (`~dirty␟area␟YYYY-MM`); each month's last reconciliation (`~state␟area␟YYYY-MM`:
//!   version and digest of its outcome).
//! - `readings`: the latest positions per metering point and local day (`GSRN␟YYYY-MM-DD`,
//!   settle's format), the metering point's master data (`~point␟GSRN`) and which points a
//!   grid area's month has (`~held␟area␟YYYY-MM␟GSRN`, `~month␟area␟YYYY-MM`).
//!
//! A result series or a changed reading marks its month; a reference change marks every
//! month held. At each tick a marked month that has results is reconciled: every metering
//! point's month is settled by the pure engine with DataHub's charges only
//! (the engine's `Scope::DataHubCharges`), its per-position details grouped as DataHub groups them
//! ([`super::ours`]), and compared with the runs in force ([`super::core::reconcile`]).
//! Only when the outcome differs from the month's last one is a new version published, as
//! [`Reconciliation`] parts of at most [`ReconcileConfig::part_size`] discrepancies; an
//! outcome without discrepancies is one empty part, so "reconciled, nothing differs" is a
//! fact on the topic, not an absence.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use afregning_settlement::calendar::local_midnight;
use afregning_settlement::{
    BillingMonth, MeteringPoint as EngineMeteringPoint, MonthInput, PriceArea,
    Scope as EngineScope, SupplyPeriod, settle_month,
};
use afregning_topology::records::{
    Discrepancy as WireDiscrepancy, EnrichedReading, ErrorClass, Reconciliation, ReconciliationKey,
    WholesaleResult,
};
use afregning_topology::topics;
use chrono::{DateTime, Utc};

use self::state::{
    AreaMonth, AreaMonthPoint, DAYS, DIRTY, HELD, MONTHS, OUTCOMES, Outcome, OutcomeKey, POINTS,
    PointInfo, PointKey, RESULTS, ResultKey, StoredResult,
};
use super::core::{Discrepancy, OurSide, Scope, in_force, reconcile, run_label};
use super::ours::{MeteringPointGroup, charge_positions, energy_positions};
use crate::runtime::typed::join_parts;
use crate::runtime::{
    Context, GlobalChange, GlobalTableSpec, InputRecord, ProcessError, Processor, StoreSpec,
};
use crate::settle::core::{DayKey, month_text, parse_month};
use crate::shared::Topics;
use crate::shared::dead_letter::{decode_value, reject};
use crate::shared::positions::{
    DayPositions, MergeOutcome, by_local_day, reading_positions, settlement_resolution,
};
use crate::shared::reference::{
    CHARGE_LINKS_TABLE, CHARGE_PRICES_TABLE, CHARGES_TABLE, charge, links_of, price_area,
};

/// The processor's name: changelogs, group, metrics.
pub const NAME: &str = afregning_topology::catalogue::Component::Reconcile.name();
/// DataHub's result series, the marks and each month's last outcome.
pub const RESULTS_STORE: &str = "results";
/// Positions per day and metering point master data.
pub const READINGS_STORE: &str = "readings";

/// Settings of reconcile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReconcileConfig {
    /// Our GLN; without it, the supplier DataHub's results name.
    pub supplier_gln: Option<String>,
    /// The grid company of a grid area (its owner total carries the tax charges), where it
    /// cannot be told from the charges (the one non-tax charge owner that owns no tax).
    pub grid_area_owners: BTreeMap<String, String>,
    /// How often marked months are reconciled.
    pub tick_interval: Duration,
    /// Discrepancies per published part.
    pub part_size: usize,
}

impl Default for ReconcileConfig {
    fn default() -> Self {
        Self {
            supplier_gln: None,
            grid_area_owners: BTreeMap::new(),
            tick_interval: Duration::from_secs(10),
            part_size: 200,
        }
    }
}

/// The reconcile processor.
#[derive(Debug, Clone)]
pub struct Reconcile {
    topics: Topics,
    config: ReconcileConfig,
}

/// The months (`YYYY-MM`, Danish calendar) a period touches.
fn months_of(start: DateTime<Utc>, end: DateTime<Utc>) -> Vec<BillingMonth> {
    let mut out = Vec::new();
    let mut month = BillingMonth::of(start);
    while month.start() < end {
        out.push(month);
        month = month.next();
    }
    out
}

/// FNV-1a over the outcome's text: stable across builds and restarts, so an unchanged
/// outcome is never published twice.
fn digest(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The discrepancy as published.
pub fn wire_discrepancy(seq: usize, d: &Discrepancy) -> WireDiscrepancy {
    WireDiscrepancy {
        seq: i32::try_from(seq).unwrap_or(i32::MAX),
        level: d.level.as_str().to_string(),
        measure: d.measure.as_str().to_string(),
        charge_owner_gln: d.charge_owner.clone(),
        charge_code: d.charge_code.clone(),
        charge_type: d.charge_type.clone(),
        resolution: d.resolution.clone(),
        metering_point_type: d.metering_point_type.clone(),
        settlement_method: d.settlement_method.clone(),
        time: d.time,
        datahub: d.datahub,
        ours: d.ours,
        difference: d.difference,
        metering_points: d.metering_points.join(" "),
        calculation: d.calculation.clone(),
    }
}

/// A reconciliation version cut into parts of at most `part_size` discrepancies (one empty
/// part when nothing differs).
pub fn parts(
    head: &Reconciliation,
    found: &[Discrepancy],
    part_size: usize,
) -> Vec<Reconciliation> {
    let all: Vec<WireDiscrepancy> = found
        .iter()
        .enumerate()
        .map(|(i, d)| wire_discrepancy(i, d))
        .collect();
    let chunks: Vec<Vec<WireDiscrepancy>> = if all.is_empty() {
        vec![Vec::new()]
    } else {
        all.chunks(part_size.max(1)).map(<[_]>::to_vec).collect()
    };
    let count = chunks.len();
    chunks
        .into_iter()
        .enumerate()
        .map(|(i, discrepancies)| Reconciliation {
            part: i32::try_from(i).unwrap_or(i32::MAX),
            parts: i32::try_from(count).unwrap_or(i32::MAX),
            discrepancy_count: i32::try_from(found.len()).unwrap_or(i32::MAX),
            discrepancies,
            ..head.clone()
        })
        .collect()
}

impl Reconcile {
    /// reconcile for a deployment's topics.
    pub fn new(topics: Topics, config: ReconcileConfig) -> Self {
        Self { topics, config }
    }

    fn reject(
        &self,
        record: &InputRecord,
        class: ErrorClass,
        reason: String,
        ctx: &mut Context<'_>,
    ) -> Result<(), ProcessError> {
        reject(&self.topics, NAME, record, class, reason, ctx)
    }

    fn on_result(&self, record: &InputRecord, ctx: &mut Context<'_>) -> Result<(), ProcessError> {
        let result =
            match decode_value::<WholesaleResult>(&self.topics, record, "wholesale result")? {
                Ok(r) => r,
                Err(r) => return self.reject(record, r.class, r.reason, ctx),
            };
        if result.period_end <= result.period_start {
            return self.reject(
                record,
                ErrorClass::Invalid,
                format!(
                    "empty period {}..{}",
                    result.period_start, result.period_end
                ),
                ctx,
            );
        }
        for month in months_of(result.period_start, result.period_end) {
            let key = ResultKey {
                area: result.grid_area.clone(),
                month: month_text(month),
                message_id: result.source_message_id.clone(),
                transaction_id: result.transaction_id.clone(),
            };
            let stored = StoredResult(result.clone());
            if RESULTS.get(ctx, &key)?.as_ref() == Some(&stored) {
                continue;
            }
            RESULTS.put(ctx, &key, &stored)?;
            DIRTY.mark(
                ctx,
                &AreaMonth {
                    area: key.area,
                    month: key.month,
                },
            )?;
        }
        Ok(())
    }

    fn on_reading(&self, record: &InputRecord, ctx: &mut Context<'_>) -> Result<(), ProcessError> {
        let enriched =
            match decode_value::<EnrichedReading>(&self.topics, record, "enriched reading")? {
                Ok(e) => e,
                Err(r) => return self.reject(record, r.class, r.reason, ctx),
            };
        let reading = &enriched.reading;
        let (positions, resolution) = match reading_positions(reading)
            .and_then(|p| Ok((p, settlement_resolution(reading.resolution)?)))
        {
            Ok(x) => x,
            Err(e) => return self.reject(record, ErrorClass::Invalid, e.to_string(), ctx),
        };
        let point_key = PointKey(reading.gsrn.clone());
        let old = POINTS.get(ctx, &point_key)?;
        let info = PointInfo {
            grid_area: enriched.grid_area.clone(),
            price_area: enriched.price_area.clone(),
            metering_point_type: reading.metering_point_type.clone(),
            settlement_method: enriched.settlement_method.map(|m| m.code().to_string()),
            resolution: reading.resolution,
            supply_from: old.as_ref().map_or(enriched.master_data_valid_from, |o| {
                o.supply_from.min(enriched.master_data_valid_from)
            }),
        };
        let point_changed = old.as_ref() != Some(&info);
        if point_changed {
            POINTS.put(ctx, &point_key, &info)?;
        }
        let mut months = BTreeSet::new();
        for (date, day_positions) in by_local_day(positions) {
            let key = DayKey {
                gsrn: reading.gsrn.clone(),
                date,
            };
            let mut day = DAYS
                .get(ctx, &key)?
                .unwrap_or_else(|| DayPositions::new(date, resolution));
            if day.merge(resolution, &day_positions) == MergeOutcome::Changed || point_changed {
                DAYS.put(ctx, &key, &day)?;
                months.insert(month_text(BillingMonth::of(local_midnight(date))));
            }
        }
        for month in months {
            let area_month = AreaMonth {
                area: info.grid_area.clone(),
                month: month.clone(),
            };
            HELD.mark(
                ctx,
                &AreaMonthPoint {
                    area: info.grid_area.clone(),
                    month,
                    gsrn: reading.gsrn.clone(),
                },
            )?;
            MONTHS.mark(ctx, &area_month)?;
            DIRTY.mark(ctx, &area_month)?;
        }
        Ok(())
    }

    /// Our side of a grid area's month: every metering point held, settled with DataHub's
    /// charges only, and the owners of non-tax and of tax charges seen (for the grid area
    /// owner). A metering point the engine refuses is left out and logged.
    fn our_side(
        &self,
        at: &AreaMonth,
        month: BillingMonth,
        ctx: &Context<'_>,
    ) -> Result<(OurSide, BTreeSet<String>, BTreeSet<String>), ProcessError> {
        let mut side = OurSide::default();
        let (mut plain_owners, mut tax_owners) = (BTreeSet::new(), BTreeSet::new());
        let period = month.period();
        let mut prefix = Vec::new();
        join_parts(&[&at.area, &at.month, ""], &mut prefix);
        for AreaMonthPoint { gsrn, .. } in HELD.list(ctx, &prefix)? {
            let Some(info) = POINTS.get(ctx, &PointKey(gsrn.clone()))? else {
                continue;
            };
            if info.grid_area != at.area {
                continue;
            }
            let mut day_prefix = Vec::new();
            join_parts(&[&gsrn, &at.month], &mut day_prefix);
            let positions: Vec<afregning_settlement::Position> = DAYS
                .scan(ctx, &day_prefix)?
                .into_iter()
                .flat_map(|(_, day)| day.to_positions())
                .collect();
            let links = links_of(ctx, &self.topics.wire, &gsrn)?;
            let mut charges = Vec::new();
            let mut keys: Vec<_> = links.iter().map(|l| l.key.clone()).collect();
            keys.sort();
            keys.dedup();
            for key in &keys {
                if let Some(c) = charge(ctx, &self.topics.wire, key, &period)? {
                    if c.tax {
                        tax_owners.insert(c.key.owner.clone());
                    } else {
                        plain_owners.insert(c.key.owner.clone());
                    }
                    charges.push(c);
                }
            }
            let Ok(resolution) = settlement_resolution(info.resolution) else {
                continue;
            };
            let input = MonthInput {
                metering_point: EngineMeteringPoint {
                    id: gsrn.clone(),
                    grid_area: info.grid_area.clone(),
                    // Not used: DataHub's charges know no spot price.
                    price_area: info
                        .price_area
                        .as_deref()
                        .and_then(price_area)
                        .unwrap_or(PriceArea::Dk1),
                },
                period,
                supply: vec![SupplyPeriod {
                    from: info.supply_from.max(period.start()),
                    to: None,
                    resolution,
                }],
                positions: positions.clone(),
                charge_links: links,
                charges,
                spot_prices: Vec::new(),
                product: Vec::new(),
                scope: EngineScope::DataHubCharges,
            };
            let statement = match settle_month(&input) {
                Ok(s) => s,
                Err(e) => {
                    metrics::counter!("afregning_reconcile_refused_total").increment(1);
                    tracing::warn!(%gsrn, month = %at.month, error = %e, "metering point left out of the reconciliation");
                    continue;
                }
            };
            let group = MeteringPointGroup {
                gsrn: gsrn.clone(),
                grid_area: info.grid_area.clone(),
                metering_point_type: info.metering_point_type.clone(),
                settlement_method: info.settlement_method.clone(),
            };
            side.charges.extend(charge_positions(&statement, &group));
            side.energy
                .extend(energy_positions(&positions, info.resolution, &group));
        }
        Ok((side, plain_owners, tax_owners))
    }

    /// Reconciles one grid area's month and publishes a new version when the outcome changed.
    fn reconcile_month(
        &self,
        at: &AreaMonth,
        now: DateTime<Utc>,
        ctx: &mut Context<'_>,
    ) -> Result<(), ProcessError> {
        let Some(month) = parse_month(&at.month) else {
            return Ok(());
        };
        let mut prefix = Vec::new();
        join_parts(&[&at.area, &at.month, ""], &mut prefix);
        let results: Vec<WholesaleResult> = RESULTS
            .scan(ctx, &prefix)?
            .into_iter()
            .map(|(_, StoredResult(r))| r)
            .collect();
        if results.is_empty() {
            return Ok(());
        }
        let supplier = self
            .config
            .supplier_gln
            .clone()
            .or_else(|| results.iter().find_map(|r| r.energy_supplier_gln.clone()))
            .unwrap_or_default();
        let (ours, plain_owners, tax_owners) = self.our_side(at, month, ctx)?;
        let owner = self
            .config
            .grid_area_owners
            .get(&at.area)
            .cloned()
            .or_else(|| {
                let candidates: Vec<&String> = plain_owners.difference(&tax_owners).collect();
                match candidates.as_slice() {
                    [one] => Some((*one).clone()),
                    _ => None,
                }
            });
        let scope = Scope {
            grid_area: at.area.clone(),
            energy_supplier: supplier.clone(),
            month_start: month.start(),
            month_end: month.end(),
            grid_area_owner: owner.clone().unwrap_or_default(),
        };
        let found = reconcile(&results, &ours, &scope);
        let runs: BTreeSet<String> = in_force(&results)
            .into_iter()
            .filter(|r| r.grid_area == at.area)
            .map(run_label)
            .collect();
        let calculations = runs.into_iter().collect::<Vec<_>>().join(", ");
        let outcome_digest = digest(&format!("{supplier}|{owner:?}|{calculations}|{found:?}"));
        let key = OutcomeKey(at.clone());
        let last = OUTCOMES.get(ctx, &key)?;
        if last.as_ref().is_some_and(|l| l.digest == outcome_digest) {
            return Ok(());
        }
        let version = last.map_or(1, |l| l.version + 1);
        let head = Reconciliation {
            grid_area: at.area.clone(),
            month_start: month.first_day(),
            energy_supplier_gln: supplier,
            grid_area_owner_gln: owner,
            version,
            part: 0,
            parts: 1,
            discrepancy_count: 0,
            calculations,
            // Avro's timestamp-millis keeps whole milliseconds only.
            computed_at: DateTime::from_timestamp_millis(now.timestamp_millis()).unwrap_or(now),
            discrepancies: Vec::new(),
        };
        let record_key = ReconciliationKey {
            grid_area: at.area.clone(),
            month_start: month.first_day(),
        };
        for part in parts(&head, &found, self.config.part_size) {
            let idempotency = format!(
                "reconciliation:{}:{}:v{}:p{}",
                at.area, at.month, version, part.part
            );
            ctx.emit(
                self.topics
                    .output(topics::DISCREPANCIES, &record_key, &part, idempotency)?,
            );
        }
        metrics::counter!("afregning_reconcile_versions_total").increment(1);
        tracing::info!(area = %at.area, month = %at.month, version, discrepancies = found.len(), "reconciled");
        OUTCOMES.put(
            ctx,
            &key,
            &Outcome {
                version,
                digest: outcome_digest,
            },
        )
    }
}

impl Processor for Reconcile {
    fn name(&self) -> &str {
        NAME
    }

    fn stores(&self) -> Vec<StoreSpec> {
        vec![
            StoreSpec::new(RESULTS_STORE),
            StoreSpec::new(READINGS_STORE),
        ]
    }

    fn input_topics(&self) -> Vec<String> {
        vec![
            self.topics.name(topics::WHOLESALE_RESULTS),
            self.topics.name(topics::ENRICHED_READINGS),
        ]
    }

    fn global_tables(&self) -> Vec<GlobalTableSpec> {
        vec![
            GlobalTableSpec::new(CHARGES_TABLE, self.topics.name(topics::CHARGES)),
            GlobalTableSpec::new(CHARGE_PRICES_TABLE, self.topics.name(topics::CHARGE_PRICES)),
            GlobalTableSpec::new(CHARGE_LINKS_TABLE, self.topics.name(topics::CHARGE_LINKS)),
        ]
    }

    fn tick_interval(&self) -> Option<Duration> {
        Some(self.config.tick_interval)
    }

    /// Looks up writer schemas of the batch this build does not know before `process`.
    async fn prepare_batch(&mut self, records: &[&InputRecord]) -> Result<(), ProcessError> {
        crate::shared::prefetch_writer_schemas(&self.topics.wire, records).await
    }

    fn process(&mut self, record: &InputRecord, ctx: &mut Context<'_>) -> Result<(), ProcessError> {
        if record.topic == self.topics.name(topics::WHOLESALE_RESULTS) {
            self.on_result(record, ctx)
        } else {
            self.on_reading(record, ctx)
        }
    }

    fn on_global_change(
        &mut self,
        _change: &GlobalChange,
        ctx: &mut Context<'_>,
    ) -> Result<(), ProcessError> {
        // A charge, a price or a link may change any month this task holds.
        for area_month in MONTHS.list(ctx, b"")? {
            DIRTY.mark(ctx, &area_month)?;
        }
        Ok(())
    }

    fn on_tick(&mut self, now: DateTime<Utc>, ctx: &mut Context<'_>) -> Result<(), ProcessError> {
        for at in DIRTY.take(ctx)? {
            self.reconcile_month(&at, now, ctx)?;
        }
        Ok(())
    }
}

mod state;

#[cfg(test)]
mod tests;

//! settle: provisional settlement lines per metering point and billing
//! month, and the final statement once the month is done.
//!
//! Reads enriched readings (partitioned by grid area), not daily aggregates:
//! spot prices have a quarter-hour MTU and tariffs are priced per hour, so
//! the engine needs positions (decision 0070). Keeps the month's positions
//! per day (`positions`: `GSRN + date`) and one [`core::MonthState`] per
//! `month + GSRN` (`months`). Charges, their prices, charge links and spot
//! prices are global tables. Every change of a month's inputs re-settles it
//! with the pure engine ([`afregning_settlement::settle_month`]) and emits a
//! new version of its provisional settlement only when the result changed.
//! Reference-data changes mark months and are re-settled at the next tick,
//! so a day of 96 spot prices costs one re-settlement per month affected.
//! At each tick, months that ended more than `grace` ago and are complete
//! become final: one statement to the statements topic (and, after a later
//! change, a credit note and a new statement).

pub mod core;

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use afregning_settlement::{
    BillingMonth, MeteringPoint as EngineMeteringPoint, MonthInput, ProductCatalogue, Scope,
    SupplyPeriod, settle_month,
};
use afregning_topology::records::{
    ChargeLinkKey, EnrichedReading, ErrorClass, SettlementMonthKey, SpotPriceKey,
};
use afregning_topology::topics;
use chrono::{DateTime, TimeZone, Utc};

use crate::runtime::{
    Context, GlobalChange, GlobalTableSpec, InputRecord, ProcessError, Processor, StoreSpec,
};
use crate::shared::Topics;
use crate::shared::dead_letter::{decode_value, reject};
use crate::shared::positions::{
    DayPositions, MergeOutcome, by_local_day, reading_positions, settlement_resolution,
};
use crate::shared::reference::{
    CHARGE_LINKS_TABLE, CHARGE_PRICES_TABLE, CHARGES_TABLE, SPOT_PRICES_TABLE, charge, links_of,
    price_area, spot_prices,
};
use core::{
    MonthState, apply_statement, finality, month_text, parse_month, product_terms, provisional,
};

/// The processor's name: changelogs, group, metrics.
pub const NAME: &str = "settle";
/// Month states (`YYYY-MM␟GSRN`) and markers of months to re-settle.
pub const MONTHS_STORE: &str = "months";
/// Positions per day (`GSRN␟YYYY-MM-DD`).
pub const POSITIONS_STORE: &str = "positions";

const SEP: u8 = 0x1f;
/// Markers: `~dirty␟YYYY-MM␟GSRN` or `~dirty␟YYYY-MM␟*` (every metering point).
const DIRTY_PREFIX: &[u8] = b"~dirty\x1f";
/// Months not yet final or whose statement may need correcting: `~open␟YYYY-MM␟GSRN`.
const OPEN_PREFIX: &[u8] = b"~open\x1f";

/// Settings of settle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettleConfig {
    /// The supplier's products and which metering point is on which.
    pub catalogue: ProductCatalogue,
    /// The product of a metering point the catalogue does not assign.
    pub default_product: Option<String>,
    /// How long after a month's end corrections are awaited before the
    /// statement is issued.
    pub grace: chrono::Duration,
    /// How often marked months are re-settled and finality is checked.
    pub tick_interval: Duration,
}

impl Default for SettleConfig {
    fn default() -> Self {
        Self {
            catalogue: ProductCatalogue::default(),
            default_product: None,
            grace: chrono::Duration::days(5),
            tick_interval: Duration::from_secs(10),
        }
    }
}

/// The settle processor.
#[derive(Debug, Clone)]
pub struct Settle {
    topics: Topics,
    config: SettleConfig,
    /// Spot prices per bidding zone and month, read once from the global
    /// table and dropped whenever a spot price changes (a month is ~3,000
    /// lookups; a busy month is re-settled thousands of times).
    spot_cache: HashMap<(String, String), Vec<afregning_settlement::SpotPrice>>,
}

fn month_key(month: &str, gsrn: &str) -> Vec<u8> {
    let mut key = month.as_bytes().to_vec();
    key.push(SEP);
    key.extend_from_slice(gsrn.as_bytes());
    key
}

fn positions_key(gsrn: &str, date: chrono::NaiveDate) -> Vec<u8> {
    let mut key = gsrn.as_bytes().to_vec();
    key.push(SEP);
    key.extend_from_slice(date.format("%Y-%m-%d").to_string().as_bytes());
    key
}

fn marker(prefix: &[u8], month: &str, gsrn: &str) -> Vec<u8> {
    let mut key = prefix.to_vec();
    key.extend_from_slice(&month_key(month, gsrn));
    key
}

fn split_marker(prefix: &[u8], key: &[u8]) -> Option<(String, String)> {
    let rest = key.strip_prefix(prefix)?;
    let at = rest.iter().position(|b| *b == SEP)?;
    Some((
        String::from_utf8_lossy(&rest[..at]).to_string(),
        String::from_utf8_lossy(&rest[at + 1..]).to_string(),
    ))
}

impl Settle {
    /// settle for a deployment's topics.
    pub fn new(topics: Topics, config: SettleConfig) -> Self {
        Self {
            topics,
            config,
            spot_cache: HashMap::new(),
        }
    }

    fn load(
        &self,
        ctx: &Context<'_>,
        month: &str,
        gsrn: &str,
    ) -> Result<Option<MonthState>, ProcessError> {
        ctx.get(MONTHS_STORE, &month_key(month, gsrn))?
            .map(|b| {
                serde_json::from_slice(&b).map_err(|e| ProcessError::caused_by("stored month", e))
            })
            .transpose()
    }

    fn save(&self, ctx: &mut Context<'_>, state: &MonthState) -> Result<(), ProcessError> {
        let bytes =
            serde_json::to_vec(state).map_err(|e| ProcessError::caused_by("encode month", e))?;
        ctx.put(MONTHS_STORE, &month_key(&state.month, &state.gsrn), &bytes)?;
        Ok(())
    }

    /// Re-settles `state` from the stores and global tables; emits a new
    /// provisional version when the result changed. `Err(reason)` when the
    /// engine refused the input as contradictory.
    fn resettle(
        &mut self,
        state: &mut MonthState,
        at: DateTime<Utc>,
        ctx: &mut Context<'_>,
    ) -> Result<Result<(), String>, ProcessError> {
        let Some(month) = parse_month(&state.month) else {
            return Ok(Err(format!("bad month key {}", state.month)));
        };
        let Some(area) = state.price_area.as_deref().and_then(price_area) else {
            return Ok(Err(format!(
                "metering point {} has no known price area",
                state.gsrn
            )));
        };
        let period = month.period();
        let mut prefix = state.gsrn.as_bytes().to_vec();
        prefix.push(SEP);
        prefix.extend_from_slice(state.month.as_bytes());
        let mut positions = Vec::new();
        let mut days = 0;
        for (_, bytes) in ctx.scan_prefix(POSITIONS_STORE, &prefix)? {
            let day = DayPositions::from_bytes(&bytes)
                .map_err(|e| ProcessError::caused_by("stored positions", e))?;
            days += 1;
            positions.extend(day.to_positions());
        }
        let links = links_of(ctx, &self.topics.wire, &state.gsrn)?;
        let mut keys: Vec<_> = links.iter().map(|l| l.key.clone()).collect();
        keys.sort();
        keys.dedup();
        let mut charges = Vec::new();
        for key in &keys {
            if let Some(c) = charge(ctx, &self.topics.wire, key, &period)? {
                charges.push(c);
            }
        }
        let area_code = state.price_area.clone().unwrap_or_default();
        let cache_key = (area_code.clone(), state.month.clone());
        let spot = match self.spot_cache.get(&cache_key) {
            Some(prices) => prices.clone(),
            None => {
                let prices = spot_prices(
                    ctx,
                    &self.topics.wire,
                    &area_code,
                    period.start(),
                    period.end(),
                )?;
                self.spot_cache.insert(cache_key, prices.clone());
                prices
            }
        };
        let input = MonthInput {
            metering_point: EngineMeteringPoint {
                id: state.gsrn.clone(),
                grid_area: state.grid_area.clone(),
                price_area: area,
            },
            period,
            supply: vec![SupplyPeriod {
                from: state.supply_from.max(period.start()),
                to: None,
                resolution: state.resolution,
            }],
            positions,
            charge_links: links,
            charges,
            spot_prices: spot,
            product: product_terms(
                &self.config.catalogue,
                self.config.default_product.as_deref(),
                &state.gsrn,
                month,
            ),
            scope: Scope::Full,
        };
        let statement = match settle_month(&input) {
            Ok(s) => s,
            Err(e) => return Ok(Err(format!("the settlement engine refused the month: {e}"))),
        };
        if apply_statement(state, &statement, days) {
            let known = [
                statement.known_totals.excl_vat,
                statement.known_totals.vat,
                statement.known_totals.incl_vat,
            ];
            let record = provisional(state, known, month, at);
            let key = SettlementMonthKey {
                gsrn: state.gsrn.clone(),
                month_start: month.first_day(),
            };
            let idempotency = record.idempotency_key.clone();
            ctx.emit(self.topics.output(
                topics::PROVISIONAL_SETTLEMENTS,
                &key,
                &record,
                idempotency,
            )?);
            metrics::counter!("afregning_settle_versions_total").increment(1);
        }
        self.save(ctx, state)?;
        ctx.put(
            MONTHS_STORE,
            &marker(OPEN_PREFIX, &state.month, &state.gsrn),
            b"",
        )?;
        Ok(Ok(()))
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

    fn mark(&self, ctx: &mut Context<'_>, month: &str, gsrn: &str) -> Result<(), ProcessError> {
        ctx.put(MONTHS_STORE, &marker(DIRTY_PREFIX, month, gsrn), b"")?;
        Ok(())
    }

    /// Months of `[from, to)` that this task holds state for.
    fn months_between(
        &self,
        from: DateTime<Utc>,
        to: Option<DateTime<Utc>>,
        ctx: &Context<'_>,
    ) -> Result<BTreeSet<String>, ProcessError> {
        let mut out = BTreeSet::new();
        for (key, _) in ctx.scan_prefix(MONTHS_STORE, OPEN_PREFIX)? {
            if let Some((month, _)) = split_marker(OPEN_PREFIX, &key)
                && let Some(m) = parse_month(&month)
                && m.end() > from
                && to.is_none_or(|t| m.start() < t)
            {
                out.insert(month);
            }
        }
        Ok(out)
    }
}

impl Processor for Settle {
    fn name(&self) -> &str {
        NAME
    }

    fn stores(&self) -> Vec<StoreSpec> {
        vec![
            StoreSpec::new(MONTHS_STORE),
            StoreSpec::new(POSITIONS_STORE),
        ]
    }

    fn input_topics(&self) -> Vec<String> {
        vec![self.topics.name(topics::ENRICHED_READINGS)]
    }

    fn global_tables(&self) -> Vec<GlobalTableSpec> {
        vec![
            GlobalTableSpec::new(CHARGES_TABLE, self.topics.name(topics::CHARGES)),
            GlobalTableSpec::new(CHARGE_PRICES_TABLE, self.topics.name(topics::CHARGE_PRICES)),
            GlobalTableSpec::new(CHARGE_LINKS_TABLE, self.topics.name(topics::CHARGE_LINKS)),
            GlobalTableSpec::new(SPOT_PRICES_TABLE, self.topics.name(topics::SPOT_PRICES)),
        ]
    }

    fn tick_interval(&self) -> Option<Duration> {
        Some(self.config.tick_interval)
    }

    fn process(&mut self, record: &InputRecord, ctx: &mut Context<'_>) -> Result<(), ProcessError> {
        let enriched =
            match decode_value::<EnrichedReading>(&self.topics, record, "enriched reading") {
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
        let at = record
            .timestamp
            .and_then(|ms| Utc.timestamp_millis_opt(ms).single())
            .unwrap_or_else(|| ctx.now());
        let mut months = BTreeSet::new();
        for (date, day_positions) in by_local_day(positions) {
            let key = positions_key(&reading.gsrn, date);
            let mut day = match ctx.get(POSITIONS_STORE, &key)? {
                Some(b) => DayPositions::from_bytes(&b)
                    .map_err(|e| ProcessError::caused_by("stored positions", e))?,
                None => DayPositions::new(date, resolution),
            };
            if day.merge(resolution, &day_positions) == MergeOutcome::Changed {
                ctx.put(POSITIONS_STORE, &key, &day.to_bytes())?;
                months.insert(month_text(BillingMonth::of(
                    afregning_settlement::calendar::local_midnight(date),
                )));
            }
        }
        for month in months {
            let mut state = match self.load(ctx, &month, &reading.gsrn)? {
                Some(s) => s,
                None => MonthState {
                    gsrn: reading.gsrn.clone(),
                    month: month.clone(),
                    grid_area: enriched.grid_area.clone(),
                    price_area: enriched.price_area.clone(),
                    supplier_gln: enriched.energy_supplier_gln.clone(),
                    supply_from: enriched.master_data_valid_from,
                    resolution,
                    version: 0,
                    last_json: String::new(),
                    lines: Vec::new(),
                    invoice_totals: None,
                    days_settled: 0,
                    complete: false,
                    statement_version: 0,
                    issued: None,
                },
            };
            state.grid_area = enriched.grid_area.clone();
            state.price_area = enriched.price_area.clone();
            state.supplier_gln = enriched.energy_supplier_gln.clone();
            state.supply_from = state.supply_from.min(enriched.master_data_valid_from);
            state.resolution = resolution;
            if let Err(reason) = self.resettle(&mut state, at, ctx)? {
                return self.reject(record, ErrorClass::MissingReferenceData, reason, ctx);
            }
        }
        Ok(())
    }

    fn on_global_change(
        &mut self,
        change: &GlobalChange,
        ctx: &mut Context<'_>,
    ) -> Result<(), ProcessError> {
        let wire = &self.topics.wire;
        match change.table.as_str() {
            CHARGE_LINKS_TABLE => {
                let Ok(key) = wire.decode::<ChargeLinkKey>(&change.key) else {
                    return Ok(());
                };
                for month in self.months_between(key.valid_from, None, ctx)? {
                    if ctx
                        .get(MONTHS_STORE, &month_key(&month, &key.gsrn))?
                        .is_some()
                    {
                        self.mark(ctx, &month, &key.gsrn)?;
                    }
                }
            }
            SPOT_PRICES_TABLE => {
                self.spot_cache.clear();
                let Ok(key) = wire.decode::<SpotPriceKey>(&change.key) else {
                    return Ok(());
                };
                let month = month_text(BillingMonth::of(key.start));
                if self
                    .months_between(
                        key.start,
                        Some(key.start + chrono::Duration::minutes(1)),
                        ctx,
                    )?
                    .contains(&month)
                {
                    self.mark(ctx, &month, "*")?;
                }
            }
            _ => {
                // A charge or its prices: every month this task holds may use it.
                for month in self.months_between(DateTime::<Utc>::MIN_UTC, None, ctx)? {
                    self.mark(ctx, &month, "*")?;
                }
            }
        }
        Ok(())
    }

    fn on_tick(&mut self, now: DateTime<Utc>, ctx: &mut Context<'_>) -> Result<(), ProcessError> {
        // 1. Re-settle marked months.
        let mut todo: BTreeSet<(String, String)> = BTreeSet::new();
        for (key, _) in ctx.scan_prefix(MONTHS_STORE, DIRTY_PREFIX)? {
            ctx.delete(MONTHS_STORE, &key)?;
            let Some((month, gsrn)) = split_marker(DIRTY_PREFIX, &key) else {
                continue;
            };
            if gsrn == "*" {
                let mut prefix = month.as_bytes().to_vec();
                prefix.push(SEP);
                for (k, _) in ctx.scan_prefix(MONTHS_STORE, &prefix)? {
                    if let Some(g) = k.get(prefix.len()..) {
                        todo.insert((month.clone(), String::from_utf8_lossy(g).to_string()));
                    }
                }
            } else {
                todo.insert((month, gsrn));
            }
        }
        for (month, gsrn) in todo {
            if let Some(mut state) = self.load(ctx, &month, &gsrn)?
                && let Err(reason) = self.resettle(&mut state, now, ctx)?
            {
                metrics::counter!("afregning_settle_refused_total").increment(1);
                tracing::warn!(%gsrn, %month, %reason, "month not re-settled");
            }
        }
        // 2. Finality.
        for (key, _) in ctx.scan_prefix(MONTHS_STORE, OPEN_PREFIX)? {
            let Some((month_name, gsrn)) = split_marker(OPEN_PREFIX, &key) else {
                continue;
            };
            let Some(month) = parse_month(&month_name) else {
                continue;
            };
            if now < month.end() + self.config.grace {
                continue;
            }
            let Some(mut state) = self.load(ctx, &month_name, &gsrn)? else {
                ctx.delete(MONTHS_STORE, &key)?;
                continue;
            };
            let statements = finality(&mut state, month, self.config.grace, now);
            if !statements.is_empty() {
                let record_key = SettlementMonthKey {
                    gsrn: gsrn.clone(),
                    month_start: month.first_day(),
                };
                for s in statements {
                    let idempotency = s.idempotency_key.clone();
                    ctx.emit(self.topics.output(
                        topics::SETTLEMENT_STATEMENTS,
                        &record_key,
                        &s,
                        idempotency,
                    )?);
                    metrics::counter!("afregning_settle_statements_total", "kind" => s.kind.code())
                        .increment(1);
                }
                self.save(ctx, &state)?;
            }
            if state.issued.is_some() {
                // Issued and current: nothing to watch until a re-settlement
                // changes the month (which marks it open again).
                ctx.delete(MONTHS_STORE, &key)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;

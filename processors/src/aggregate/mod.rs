//! aggregate: per metering point and Danish local day, the latest quantity
//! and quality per position, and the day's aggregate on every change.
//!
//! Reads enriched readings (partitioned by grid area). The `days` store keeps
//! one [`core::DayState`] per `local date + GSRN` (date first, so a spot price
//! change finds its day's entries with one prefix scan). A reading merges
//! into the days it covers: a correction replaces positions, never adds; a
//! replayed or older reading changes nothing and emits nothing. Each change
//! emits the day's aggregate with the next version (idempotency key
//! `daily:<gsrn>:<date>:<version>`). Spot prices are a global table; when
//! one changes, the days of its date and bidding zone are marked and their
//! spot cost recomputed at the next tick, so a day's many price updates
//! cost one recomputation.

pub mod core;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use afregning_topology::records::{DailyAggregateKey, EnrichedReading, ErrorClass, SpotPriceKey};
use afregning_topology::topics;
use chrono::{DateTime, NaiveDate, TimeZone, Utc};

use crate::runtime::typed::{Marks, StoreKey, date_part, join_parts, parse_date_part, split_parts};
use crate::runtime::{
    Context, GlobalChange, GlobalTableSpec, InputRecord, ProcessError, Processor, StoreSpec,
};
use crate::shared::Topics;
use crate::shared::dead_letter::{decode_value, reject};
use crate::shared::positions::{
    DayPositions, MergeOutcome, by_local_day, reading_positions, settlement_resolution,
};
use crate::shared::reference::{SPOT_PRICES_TABLE, price_area, spot_prices};
use afregning_settlement::fold::MonthContext;
use core::{DayState, daily_aggregate, spot_cost_in, spot_day};

/// The processor's name: changelogs, group, metrics.
pub const NAME: &str = afregning_topology::catalogue::Component::Aggregate.name();
/// Day states, and the marks of [`SPOT_CHANGED`].
pub const DAYS_STORE: &str = "days";
/// Days whose spot prices changed, recomputed at the next tick (`~spot␟date␟zone`,
/// the bytes aggregate always wrote, so existing stores read on).
const SPOT_CHANGED: Marks<SpotDay> = Marks::new(DAYS_STORE, "spot");

/// A local day and bidding zone whose spot prices changed: the days of that
/// zone are re-aggregated at the next tick.
#[derive(Debug, Clone, PartialEq, Eq)]
struct SpotDay {
    date: NaiveDate,
    area: String,
}

impl StoreKey for SpotDay {
    fn encode(&self, out: &mut Vec<u8>) {
        join_parts(&[&date_part(self.date), &self.area], out);
    }

    fn decode(bytes: &[u8]) -> Option<Self> {
        match split_parts(bytes)?.as_slice() {
            [date, area] => Some(Self {
                date: parse_date_part(date)?,
                area: (*area).to_string(),
            }),
            _ => None,
        }
    }
}
const SEP: u8 = 0x1f;

/// Settings of aggregate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AggregateConfig {
    /// How often days whose spot prices changed are recomputed.
    pub spot_recompute_interval: Duration,
}

impl Default for AggregateConfig {
    fn default() -> Self {
        Self {
            spot_recompute_interval: Duration::from_secs(5),
        }
    }
}

/// The aggregate processor.
#[derive(Debug, Clone)]
pub struct Aggregate {
    topics: Topics,
    config: AggregateConfig,
    /// Each zone's spot prices of a day prepared for settling positions against, by zone,
    /// day and resolution; shared by every metering point, dropped when a spot price
    /// changes (derived data: dropping it is always safe).
    spot_days: HashMap<SpotDayKey, Option<Arc<MonthContext>>>,
}

/// Zone code, local day, resolution.
type SpotDayKey = (String, NaiveDate, afregning_settlement::Resolution);

/// Bound of the spot-day cache: two zones over years of days at two resolutions.
const MAX_SPOT_DAYS: usize = 20_000;

fn day_key(date: NaiveDate, gsrn: &str) -> Vec<u8> {
    let mut key = date.format("%Y-%m-%d").to_string().into_bytes();
    key.push(SEP);
    key.extend_from_slice(gsrn.as_bytes());
    key
}

fn date_prefix(date: NaiveDate) -> Vec<u8> {
    let mut key = date.format("%Y-%m-%d").to_string().into_bytes();
    key.push(SEP);
    key
}

impl Aggregate {
    /// aggregate for a deployment's topics.
    pub fn new(topics: Topics, config: AggregateConfig) -> Self {
        Self {
            topics,
            config,
            spot_days: HashMap::new(),
        }
    }

    fn load(&self, ctx: &Context<'_>, key: &[u8]) -> Result<Option<DayState>, ProcessError> {
        ctx.get(DAYS_STORE, key)?
            .map(|bytes| {
                DayState::from_bytes(&bytes)
                    .map_err(|e| ProcessError::failed(format!("stored day state: {e}")))
            })
            .transpose()
    }

    fn save_and_emit(
        &self,
        state: &DayState,
        computed_at: DateTime<Utc>,
        ctx: &mut Context<'_>,
    ) -> Result<Result<(), String>, ProcessError> {
        let aggregate = match daily_aggregate(state, computed_at) {
            Ok(a) => a,
            Err(e) => return Ok(Err(e.to_string())),
        };
        let key = DailyAggregateKey {
            gsrn: state.gsrn.clone(),
            local_date: state.day.date,
        };
        let idempotency = format!("daily:{}:{}:{}", state.gsrn, state.day.date, state.version);
        ctx.emit(
            self.topics
                .output(topics::DAILY_AGGREGATES, &key, &aggregate, idempotency)?,
        );
        ctx.put(
            DAYS_STORE,
            &day_key(state.day.date, &state.gsrn),
            &state.to_bytes(),
        )?;
        Ok(Ok(()))
    }

    fn with_spot(&mut self, state: &mut DayState, ctx: &Context<'_>) -> Result<(), ProcessError> {
        let Some(area) = state.price_area.clone() else {
            state.spot_cost = None;
            return Ok(());
        };
        let Some(zone) = price_area(&area) else {
            state.spot_cost = None;
            return Ok(());
        };
        let key = (area.clone(), state.day.date, state.day.resolution);
        let day = match self.spot_days.get(&key) {
            Some(day) => day.clone(),
            None => {
                let (from, to) = afregning_settlement::calendar::local_day_bounds(state.day.date);
                let prices = spot_prices(ctx, &self.topics.wire, &area, from, to)?;
                let day = spot_day(state.day.date, zone, state.day.resolution, &prices)
                    .ok()
                    .flatten()
                    .map(Arc::new);
                if self.spot_days.len() >= MAX_SPOT_DAYS {
                    self.spot_days.clear();
                }
                self.spot_days.insert(key, day.clone());
                day
            }
        };
        state.spot_cost = match day {
            Some(day) => spot_cost_in(state, &day).unwrap_or(None),
            None => None,
        };
        Ok(())
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
}

impl Processor for Aggregate {
    fn name(&self) -> &str {
        NAME
    }

    /// A fresh instance per task, so tasks are processed in parallel (decision 0153).
    /// Its spot-day cache is derived from the spot-price table, whose changes every task sees.
    fn task_instance(&self) -> Option<Self> {
        Some(Self::new(self.topics.clone(), self.config.clone()))
    }

    fn stores(&self) -> Vec<StoreSpec> {
        vec![StoreSpec::new(DAYS_STORE)]
    }

    fn input_topics(&self) -> Vec<String> {
        vec![self.topics.name(topics::ENRICHED_READINGS)]
    }

    fn global_tables(&self) -> Vec<GlobalTableSpec> {
        vec![GlobalTableSpec::new(
            SPOT_PRICES_TABLE,
            self.topics.name(topics::SPOT_PRICES),
        )]
    }

    fn tick_interval(&self) -> Option<Duration> {
        Some(self.config.spot_recompute_interval)
    }

    /// Looks up writer schemas of the batch this build does not know (an
    /// upstream producer's newer or older version) before `process` needs them.
    async fn prepare_batch(&mut self, records: &[&InputRecord]) -> Result<(), ProcessError> {
        crate::shared::prefetch_writer_schemas(&self.topics.wire, records).await
    }

    fn process(&mut self, record: &InputRecord, ctx: &mut Context<'_>) -> Result<(), ProcessError> {
        let enriched =
            match decode_value::<EnrichedReading>(&self.topics, record, "enriched reading")? {
                Ok(e) => e,
                Err(r) => return self.reject(record, r.class, r.reason, ctx),
            };
        let reading = &enriched.reading;
        let positions = match reading_positions(reading) {
            Ok(p) => p,
            Err(e) => return self.reject(record, ErrorClass::Invalid, e.to_string(), ctx),
        };
        let resolution = match settlement_resolution(reading.resolution) {
            Ok(r) => r,
            Err(e) => return self.reject(record, ErrorClass::Invalid, e.to_string(), ctx),
        };
        let computed_at = record
            .timestamp
            .and_then(|ms| Utc.timestamp_millis_opt(ms).single())
            .unwrap_or_else(|| ctx.now());
        for (date, day_positions) in by_local_day(positions) {
            let key = day_key(date, &reading.gsrn);
            let mut state = self.load(ctx, &key)?.unwrap_or_else(|| DayState {
                gsrn: reading.gsrn.clone(),
                grid_area: enriched.grid_area.clone(),
                price_area: enriched.price_area.clone(),
                day: DayPositions::new(date, resolution),
                version: 0,
                spot_cost: None,
            });
            if state.day.merge(resolution, &day_positions) == MergeOutcome::Unchanged {
                continue;
            }
            state.grid_area = enriched.grid_area.clone();
            state.price_area = enriched.price_area.clone();
            state.version += 1;
            self.with_spot(&mut state, ctx)?;
            if let Err(reason) = self.save_and_emit(&state, computed_at, ctx)? {
                return self.reject(record, ErrorClass::Invalid, reason, ctx);
            }
        }
        Ok(())
    }

    fn on_global_change(
        &mut self,
        change: &GlobalChange,
        ctx: &mut Context<'_>,
    ) -> Result<(), ProcessError> {
        if change.table != SPOT_PRICES_TABLE {
            return Ok(());
        }
        self.spot_days.clear();
        let key = match self.topics.wire.decode::<SpotPriceKey>(&change.key) {
            Ok(key) => key,
            Err(e) if e.is_retriable() => {
                return Err(ProcessError::caused_by("decoding a spot price key", e));
            }
            Err(_) => {
                tracing::warn!(offset = change.offset, "undecodable spot price key ignored");
                return Ok(());
            }
        };
        let day = SpotDay {
            date: afregning_settlement::calendar::local_date(key.start),
            area: key.price_area,
        };
        SPOT_CHANGED.mark(ctx, &day)
    }

    fn on_tick(&mut self, now: DateTime<Utc>, ctx: &mut Context<'_>) -> Result<(), ProcessError> {
        for SpotDay { date, area } in SPOT_CHANGED.take(ctx)? {
            for (_, bytes) in ctx.scan_prefix(DAYS_STORE, &date_prefix(date))? {
                let mut state = DayState::from_bytes(&bytes)
                    .map_err(|e| ProcessError::failed(format!("stored day state: {e}")))?;
                if state.price_area.as_deref() != Some(area.as_str()) {
                    continue;
                }
                let before = state.spot_cost;
                self.with_spot(&mut state, ctx)?;
                if state.spot_cost != before {
                    state.version += 1;
                    if let Err(reason) = self.save_and_emit(&state, now, ctx)? {
                        tracing::warn!(gsrn = %state.gsrn, %date, %reason, "day not re-aggregated after a spot price change");
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;

//! settle: provisional settlement lines per metering point and billing
//! month, and the final statement once the month is done.
//!
//! Reads enriched readings (partitioned by grid area), not daily aggregates:
//! spot prices have a quarter-hour MTU and tariffs are priced per hour, so
//! the engine needs positions (decision 0070). Keeps the month's positions
//! per day (`positions`: `GSRN + date`, compact binary) and one
//! [`core::MonthState`] per `month + GSRN` (`months`) holding the month's sums
//! as Σ (day − empty day) in the pure crate's fold form
//! ([`afregning_settlement::fold`], decision 0080). A reading for day d costs two
//! day settlements (the day's old and new positions) whatever the month holds:
//! the month's sums lose the old day and gain the new one, and the statement is
//! read from the sums. A new version of the provisional settlement is emitted only
//! when the result changed. Charges, their prices, charge links, spot prices and the
//! supplier's products (over the static catalogue, [`products`], decision 0130) are
//! global tables; the month's prepared reference data
//! ([`afregning_settlement::fold::MonthContext`]) is cached per distinct input and
//! dropped on any change of them. A month whose sums were computed with other
//! reference data (its fingerprint differs) is folded again from its stored days, so
//! reference changes never patch sums they did not make; they mark months to be
//! re-settled at the next tick. At each tick, due complete months (an index written
//! when a month becomes complete, never a scan of all months) become final: one
//! statement to the statements topic (and, after a later change, a credit note and a
//! new statement).
//!
//! Settlement follows the portfolio ([`supply`], decision 0140): the portfolio's event log is
//! a global table keeping every record; a metering point with events is billed for the days
//! its supply timeline covers only, a supply that ends inside a month makes the month final
//! from its end (an index of such months, [`DUE_EARLY`]), and a rollback credits what was
//! billed for the retired period. Without events the master data's supply start applies.

pub mod core;
mod portfolio;
pub mod products;
mod replay;
pub mod supply;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use afregning_settlement::fold::{MonthContext, Summary};
use afregning_settlement::{
    BillingMonth, ChargeLink as EngineLink, MeteringPoint as EngineMeteringPoint, MonthInput,
    ProductCatalogue, Scope, SupplyPeriod,
};
use afregning_topology::catalogue::TopicId;
use afregning_topology::records::{
    ChargeLinkKey, EnrichedReading, ErrorClass, SettlementMonthKey, SpotPriceKey,
};
use afregning_topology::topics;
use chrono::{DateTime, NaiveDate, TimeZone, Utc};

use crate::runtime::typed::{Marks, StoreKey, TypedStore, join_parts};
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
    DayKey, MonthKey, MonthName, MonthState, apply_statement, final_from, finality, month_text,
    needs_issue, parse_month, product_terms, provisional,
};

/// The processor's name: changelogs, group, metrics.
pub const NAME: &str = afregning_topology::catalogue::Component::Settle.name();
/// Month states (`YYYY-MM␟GSRN`) and the markers and indexes of months.
pub const MONTHS_STORE: &str = "months";
/// Positions per day (`GSRN␟YYYY-MM-DD`).
pub const POSITIONS_STORE: &str = "positions";

/// The month states.
const MONTHS: TypedStore<MonthKey, MonthState> = TypedStore::new(MONTHS_STORE);
/// The latest positions per day.
const DAYS: TypedStore<DayKey, DayPositions> = TypedStore::new(POSITIONS_STORE);
/// Months to re-settle at the next tick (`~dirty␟YYYY-MM␟GSRN`, or `␟*` for every
/// metering point of the month).
const DIRTY: Marks<MonthKey> = Marks::new(MONTHS_STORE, "dirty");
/// Complete months whose statement is not issued or no longer current
/// (`~due␟YYYY-MM␟GSRN`).
const DUE: Marks<MonthKey> = Marks::new(MONTHS_STORE, "due");
/// Due months whose supply the portfolio ends inside them (`~due-early␟YYYY-MM␟GSRN`): final
/// from the supply's end plus grace ([`core::final_from`]), before the month's end.
const DUE_EARLY: Marks<MonthKey> = Marks::new(MONTHS_STORE, "due-early");
/// Months with entries in [`DUE`] (`~due-month␟YYYY-MM`).
const DUE_MONTHS: Marks<MonthName> = Marks::new(MONTHS_STORE, "due-month");
/// Months this task holds state for (`~held␟YYYY-MM`).
const HELD: Marks<MonthName> = Marks::new(MONTHS_STORE, "held");
/// Bounds of the in-memory caches (derived data: dropping them is always safe).
const MAX_CONTEXTS: usize = 4_096;
const MAX_LINK_SETS: usize = 500_000;

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
    /// Spot prices per bidding zone and month, read from the global table when a
    /// context is prepared; dropped whenever a spot price changes.
    spot_cache: HashMap<(String, String), Vec<afregning_settlement::SpotPrice>>,
    /// Charge links per metering point, decoded once; dropped per metering point when
    /// one of its links changes.
    links_cache: HashMap<String, Vec<EngineLink>>,
    /// Prepared months by everything they were prepared from; metering points with the
    /// same inputs share one. Dropped on any reference change.
    contexts: HashMap<String, Arc<MonthContext>>,
    /// Months prepared so far (cache misses), for benchmarks and tests.
    contexts_prepared: u64,
    /// The static catalogue and default product with the products topic on top
    /// ([`products::in_force`]); dropped whenever a record of that topic changes.
    products: Option<Arc<products::InForce>>,
    /// Supply timelines per metering point (`None`: no portfolio events), folded once;
    /// dropped per metering point when one of its events arrives.
    timelines: HashMap<String, portfolio::CachedTimeline>,
    /// Each metering point's prepared months with the state's inputs they were found
    /// for, so that a reading finds its month without building the cache key (links,
    /// product terms, supply) again. Cleared with [`Settle::contexts`]; an entry whose
    /// inputs differ from the state's is looked up again.
    resolved: HashMap<String, Vec<Resolved>>,
}

/// A prepared month as found for one metering point's month state.
#[derive(Debug, Clone)]
struct Resolved {
    month: String,
    price_area: Option<String>,
    supply_from: DateTime<Utc>,
    resolution: afregning_settlement::Resolution,
    portfolio_supply: Option<Vec<supply::Days>>,
    context: Arc<MonthContext>,
}

impl Resolved {
    /// Whether `state` would look up this entry's context.
    fn fits(&self, state: &MonthState) -> bool {
        self.month == state.month
            && self.price_area == state.price_area
            && self.resolution == state.resolution
            && self.portfolio_supply == state.portfolio_supply
            // The master data's start matters only without portfolio events.
            && (self.portfolio_supply.is_some() || self.supply_from == state.supply_from)
    }
}

/// Why a month cannot be settled: the record is dead-lettered with this reason.
type Refusal = String;

fn month_key(month: &str, gsrn: &str) -> MonthKey {
    MonthKey {
        month: month.to_string(),
        gsrn: gsrn.to_string(),
    }
}

/// A day whose positions changed: its date, what was stored before, what is now.
struct ChangedDay {
    date: NaiveDate,
    old: Option<DayPositions>,
    new: DayPositions,
}

impl Settle {
    /// settle for a deployment's topics.
    pub fn new(topics: Topics, config: SettleConfig) -> Self {
        Self {
            topics,
            config,
            spot_cache: HashMap::new(),
            links_cache: HashMap::new(),
            contexts: HashMap::new(),
            contexts_prepared: 0,
            products: None,
            timelines: HashMap::new(),
            resolved: HashMap::new(),
        }
    }

    /// The catalogue in force: the settings' file and default product with the
    /// products topic's global table on top ([`products::in_force`]). A record
    /// on the topic that does not decode, or names an unknown product, is left
    /// out (the file's terms apply) and logged.
    fn catalogue(&mut self, ctx: &Context<'_>) -> Result<Arc<products::InForce>, ProcessError> {
        if let Some(catalogue) = &self.products {
            return Ok(catalogue.clone());
        }
        let mut entries = Vec::new();
        let mut refused = Vec::new();
        for (key, value) in ctx.global_scan_prefix(products::PRODUCTS_TABLE, b"")? {
            match products::decode_entry(&key, &value) {
                Ok(entry) => entries.push(entry),
                Err(reason) => refused.push(format!("{}: {reason}", String::from_utf8_lossy(&key))),
            }
        }
        let (in_force, unknown) = products::in_force(
            &self.config.catalogue,
            self.config.default_product.as_deref(),
            entries,
        );
        for reason in refused.into_iter().chain(unknown) {
            metrics::counter!("afregning_settle_products_refused_total").increment(1);
            tracing::warn!(%reason, "a record on the products topic is not used");
        }
        let catalogue = Arc::new(in_force);
        self.products = Some(catalogue.clone());
        Ok(catalogue)
    }

    /// Marks the months a change on the products topic can touch: for a
    /// product, every held month from its first version before or after the
    /// change ([`products::affected_from`]); for a metering point's
    /// assignments, its held months from the earliest period before or after;
    /// for the default product, every held month. Months whose terms did not
    /// change emit nothing.
    fn product_changed(
        &mut self,
        change: &GlobalChange,
        ctx: &mut Context<'_>,
    ) -> Result<(), ProcessError> {
        let before = self.products.take();
        let after = self.catalogue(ctx)?;
        let id = String::from_utf8_lossy(&change.key).into_owned();
        let midnight = |day: NaiveDate| {
            if day == NaiveDate::MIN {
                DateTime::<Utc>::MIN_UTC
            } else {
                afregning_settlement::calendar::local_midnight(day)
            }
        };
        if let Some(gsrn) = id.strip_prefix(products::ASSIGNMENTS_PREFIX) {
            let of =
                |c: Option<&products::InForce>| -> Vec<afregning_settlement::ProductAssignment> {
                    c.map(|c| {
                        c.catalogue
                            .assignments
                            .iter()
                            .filter(|a| a.metering_point_id == gsrn)
                            .cloned()
                            .collect()
                    })
                    .unwrap_or_default()
                };
            let Some(from) = products::assignments_affected_from(
                &of(before.as_deref()),
                &of(Some(after.as_ref())),
            ) else {
                return Ok(());
            };
            let months = self.months_between(midnight(from), None, ctx)?;
            tracing::info!(%gsrn, %from, "product assignments changed; the metering point's months marked");
            for month in months {
                if ctx
                    .get(MONTHS_STORE, &month_key(&month, gsrn).to_key())?
                    .is_some()
                {
                    self.mark(ctx, &month, gsrn)?;
                }
            }
            return Ok(());
        }
        let from = if id == products::DEFAULT_PRODUCT_KEY {
            Some(NaiveDate::MIN)
        } else {
            let find = |c: &ProductCatalogue| c.products.iter().find(|p| p.id == id).cloned();
            let old = before.as_ref().and_then(|b| find(&b.catalogue));
            products::affected_from(old.as_ref(), find(&after.catalogue).as_ref())
        };
        let Some(from) = from.map(midnight) else {
            tracing::info!(product = %id, "product changed; it has no versions");
            return Ok(());
        };
        let months = self.months_between(from, None, ctx)?;
        tracing::info!(product = %id, %from, months = months.len(), "product changed; months marked");
        for month in months {
            self.mark(ctx, &month, "*")?;
        }
        Ok(())
    }

    /// How many months this instance prepared (context cache misses): metering points
    /// with the same reference data share one.
    pub fn contexts_prepared(&self) -> u64 {
        self.contexts_prepared
    }

    fn load(
        &self,
        ctx: &Context<'_>,
        month: &str,
        gsrn: &str,
    ) -> Result<Option<MonthState>, ProcessError> {
        MONTHS.get(ctx, &month_key(month, gsrn))
    }

    fn save(&self, ctx: &mut Context<'_>, state: &MonthState) -> Result<(), ProcessError> {
        MONTHS.put(ctx, &month_key(&state.month, &state.gsrn), state)
    }

    fn links(&mut self, ctx: &Context<'_>, gsrn: &str) -> Result<Vec<EngineLink>, ProcessError> {
        if let Some(links) = self.links_cache.get(gsrn) {
            return Ok(links.clone());
        }
        let links = links_of(ctx, &self.topics.wire, gsrn)?;
        if self.links_cache.len() >= MAX_LINK_SETS {
            self.links_cache.clear();
        }
        self.links_cache.insert(gsrn.to_string(), links.clone());
        Ok(links)
    }

    /// Drops every prepared month (reference data changed).
    fn forget_contexts(&mut self) {
        self.contexts.clear();
        self.resolved.clear();
    }

    /// The prepared month of `state`'s metering point: what the last reading of the
    /// month found when nothing it was looked up from changed since, else
    /// [`Self::lookup_context`].
    fn context(
        &mut self,
        state: &MonthState,
        ctx: &Context<'_>,
    ) -> Result<Result<Arc<MonthContext>, Refusal>, ProcessError> {
        if let Some(found) = self
            .resolved
            .get(&state.gsrn)
            .and_then(|months| months.iter().find(|r| r.fits(state)))
        {
            return Ok(Ok(found.context.clone()));
        }
        let context = match self.lookup_context(state, ctx)? {
            Ok(c) => c,
            Err(reason) => return Ok(Err(reason)),
        };
        if self.resolved.len() >= MAX_LINK_SETS {
            self.resolved.clear();
        }
        let months = self.resolved.entry(state.gsrn.clone()).or_default();
        months.retain(|r| r.month != state.month);
        months.push(Resolved {
            month: state.month.clone(),
            price_area: state.price_area.clone(),
            supply_from: state.supply_from,
            resolution: state.resolution,
            portfolio_supply: state.portfolio_supply.clone(),
            context: context.clone(),
        });
        Ok(Ok(context))
    }

    /// The prepared month of `state`'s metering point: from the cache when another
    /// metering point (or an earlier reading) had the same inputs.
    fn lookup_context(
        &mut self,
        state: &MonthState,
        ctx: &Context<'_>,
    ) -> Result<Result<Arc<MonthContext>, Refusal>, ProcessError> {
        let Some(month) = parse_month(&state.month) else {
            return Ok(Err(format!("bad month key {}", state.month)));
        };
        let area_code = state.price_area.clone().unwrap_or_default();
        let Some(area) = price_area(&area_code) else {
            return Ok(Err(format!(
                "metering point {} has no known price area",
                state.gsrn
            )));
        };
        let period = month.period();
        // Links clipped to the month: a link from before the month is the same link as
        // one from its first instant, so metering points linked on different days share
        // one prepared month.
        let mut links: Vec<EngineLink> = self
            .links(ctx, &state.gsrn)?
            .into_iter()
            .filter(|l| l.from < period.end() && l.to.is_none_or(|to| to > period.start()))
            .map(|l| EngineLink {
                from: l.from.max(period.start()),
                to: l.to.filter(|to| *to < period.end()),
                ..l
            })
            .collect();
        links.sort_by(|a, b| {
            (&a.key, a.from, a.to, a.quantity).cmp(&(&b.key, b.from, b.to, b.quantity))
        });
        let catalogue = self.catalogue(ctx)?;
        let terms = product_terms(
            &catalogue.catalogue,
            catalogue.default_product.as_deref(),
            &state.gsrn,
            month,
        );
        let supply = match &state.portfolio_supply {
            Some(days) => supply::engine_supply(days, month, state.resolution),
            // No portfolio events: the master data's supply start, open ended.
            None => vec![SupplyPeriod {
                from: state.supply_from.max(period.start()),
                to: None,
                resolution: state.resolution,
            }],
        };
        let cache_key = format!("{}|{area_code}|{supply:?}|{links:?}|{terms:?}", state.month);
        if let Some(context) = self.contexts.get(&cache_key) {
            return Ok(Ok(context.clone()));
        }
        let mut keys: Vec<_> = links.iter().map(|l| l.key.clone()).collect();
        keys.sort();
        keys.dedup();
        let mut charges = Vec::new();
        for key in &keys {
            if let Some(c) = charge(ctx, &self.topics.wire, key, &period)? {
                charges.push(c);
            }
        }
        let spot = self.spot(ctx, &area_code, &state.month, month)?;
        let input = MonthInput {
            metering_point: EngineMeteringPoint {
                id: String::new(),
                grid_area: state.grid_area.clone(),
                price_area: area,
            },
            period,
            supply,
            positions: Vec::new(),
            charge_links: links,
            charges,
            spot_prices: spot,
            product: terms,
            scope: Scope::Full,
        };
        let context = match MonthContext::prepare(&input) {
            Ok(c) => Arc::new(c),
            Err(e) => return Ok(Err(format!("the settlement engine refused the month: {e}"))),
        };
        if self.contexts.len() >= MAX_CONTEXTS {
            self.forget_contexts();
        }
        self.contexts.insert(cache_key, context.clone());
        self.contexts_prepared += 1;
        metrics::counter!("afregning_settle_contexts_prepared_total").increment(1);
        Ok(Ok(context))
    }

    fn spot(
        &mut self,
        ctx: &Context<'_>,
        area: &str,
        month_name: &str,
        month: BillingMonth,
    ) -> Result<Vec<afregning_settlement::SpotPrice>, ProcessError> {
        let cache_key = (area.to_string(), month_name.to_string());
        if let Some(prices) = self.spot_cache.get(&cache_key) {
            return Ok(prices.clone());
        }
        let period = month.period();
        let prices = spot_prices(ctx, &self.topics.wire, area, period.start(), period.end())?;
        self.spot_cache.insert(cache_key, prices.clone());
        Ok(prices)
    }

    /// The month's sums folded again from every stored day (reference data changed, or
    /// the state predates the sums).
    fn refold(
        &self,
        state: &MonthState,
        context: &MonthContext,
        ctx: &Context<'_>,
    ) -> Result<Result<(Summary, i32), Refusal>, ProcessError> {
        // `GSRN␟YYYY-MM` is the month's range of day keys.
        let mut prefix = Vec::new();
        join_parts(&[&state.gsrn, &state.month], &mut prefix);
        let mut sums = Summary::default();
        let mut days = 0;
        for (key, day) in DAYS.scan(ctx, &prefix)? {
            match context.day_delta(key.date, &day.to_positions()) {
                Ok(delta) => sums.add(&delta),
                Err(e) => return Ok(Err(format!("the settlement engine refused a day: {e}"))),
            }
            days += 1;
        }
        metrics::counter!("afregning_settle_refolds_total").increment(1);
        Ok(Ok((sums, days)))
    }

    /// Brings `state`'s sums up to date with `changed` days (or folds the month again
    /// when its sums were made with other reference data), then publishes the result.
    fn settle(
        &mut self,
        state: &mut MonthState,
        changed: &[ChangedDay],
        at: DateTime<Utc>,
        ctx: &mut Context<'_>,
    ) -> Result<Result<(), Refusal>, ProcessError> {
        state.portfolio_supply = self.portfolio_supply(state, ctx)?;
        let context = match self.context(state, ctx)? {
            Ok(c) => c,
            Err(reason) => return Ok(Err(reason)),
        };
        let patched = if state.fingerprint == context.fingerprint() && !state.sums.is_empty() {
            Summary::from_bytes(&state.sums).ok().map(|mut sums| {
                let mut result = Ok(());
                for day in changed {
                    if let Some(old) = &day.old {
                        match context.day_delta(day.date, &old.to_positions()) {
                            Ok(delta) => sums.sub(&delta),
                            Err(e) => result = Err(e),
                        }
                    } else {
                        state.days_received += 1;
                    }
                    match context.day_delta(day.date, &day.new.to_positions()) {
                        Ok(delta) => sums.add(&delta),
                        Err(e) => result = Err(e),
                    }
                }
                result.map(|()| sums)
            })
        } else {
            None
        };
        let sums = match patched {
            Some(Ok(sums)) => sums,
            Some(Err(e)) => return Ok(Err(format!("the settlement engine refused a day: {e}"))),
            None => match self.refold(state, &context, ctx)? {
                Ok((sums, days)) => {
                    state.days_received = days;
                    sums
                }
                Err(reason) => return Ok(Err(reason)),
            },
        };
        state.sums = sums.to_bytes();
        state.fingerprint = context.fingerprint();
        let statement = context.statement_of_delta(&state.gsrn, &sums);
        self.publish(state, &statement, at, ctx)?;
        Ok(Ok(()))
    }

    /// Emits a new provisional version when the statement changed, keeps the due index
    /// in step, and saves the state.
    fn publish(
        &self,
        state: &mut MonthState,
        statement: &afregning_settlement::MonthStatement,
        at: DateTime<Utc>,
        ctx: &mut Context<'_>,
    ) -> Result<(), ProcessError> {
        let Some(month) = parse_month(&state.month) else {
            return Ok(());
        };
        if apply_statement(state, statement, state.days_received) {
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
        let key = month_key(&state.month, &state.gsrn);
        if needs_issue(state) {
            DUE.mark(ctx, &key)?;
            DUE_MONTHS.mark(ctx, &MonthName(state.month.clone()))?;
            if final_from(state, month, self.config.grace) < month.end() + self.config.grace {
                DUE_EARLY.mark(ctx, &key)?;
            } else {
                DUE_EARLY.unmark(ctx, &key)?;
            }
        } else {
            DUE.unmark(ctx, &key)?;
            DUE_EARLY.unmark(ctx, &key)?;
        }
        self.save(ctx, state)
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
        DIRTY.mark(ctx, &month_key(month, gsrn))
    }

    /// Months of `[from, to)` that this task holds state for.
    fn months_between(
        &self,
        from: DateTime<Utc>,
        to: Option<DateTime<Utc>>,
        ctx: &Context<'_>,
    ) -> Result<BTreeSet<String>, ProcessError> {
        let mut out = BTreeSet::new();
        for MonthName(month) in HELD.list(ctx, b"")? {
            if let Some(m) = parse_month(&month)
                && m.end() > from
                && to.is_none_or(|t| m.start() < t)
            {
                out.insert(month);
            }
        }
        Ok(out)
    }

    /// Issues the statements of due months whose grace has passed: first those whose
    /// supply ended inside them ([`DUE_EARLY`], final from that end), then every due month
    /// whose end and grace have passed.
    fn issue_due(&mut self, now: DateTime<Utc>, ctx: &mut Context<'_>) -> Result<(), ProcessError> {
        for key in DUE_EARLY.list(ctx, b"")? {
            let (Some(state), Some(month)) = (
                self.load(ctx, &key.month, &key.gsrn)?,
                parse_month(&key.month),
            ) else {
                DUE_EARLY.unmark(ctx, &key)?;
                continue;
            };
            if now >= final_from(&state, month, self.config.grace) {
                self.issue(&key, month, now, ctx)?;
            }
        }
        for MonthName(month_name) in DUE_MONTHS.list(ctx, b"")? {
            let Some(month) = parse_month(&month_name) else {
                continue;
            };
            if now < month.end() + self.config.grace {
                continue;
            }
            let mut prefix = Vec::new();
            join_parts(&[&month_name, ""], &mut prefix);
            for key in DUE.list(ctx, &prefix)? {
                self.issue(&key, month, now, ctx)?;
            }
            if DUE.list(ctx, &prefix)?.is_empty() {
                DUE_MONTHS.unmark(ctx, &MonthName(month_name))?;
            }
        }
        Ok(())
    }

    /// Settles one due month again and emits what finality issues for it now.
    fn issue(
        &mut self,
        key: &MonthKey,
        month: BillingMonth,
        now: DateTime<Utc>,
        ctx: &mut Context<'_>,
    ) -> Result<(), ProcessError> {
        let Some(mut state) = self.load(ctx, &key.month, &key.gsrn)? else {
            DUE.unmark(ctx, key)?;
            DUE_EARLY.unmark(ctx, key)?;
            return Ok(());
        };
        // The lines are read from the sums (folded again if the reference data
        // changed since); unchanged sums emit no new provisional version.
        let settled = self.settle(&mut state, &[], now, ctx)?;
        // Due again only when a later change completes it again.
        DUE.unmark(ctx, key)?;
        DUE_EARLY.unmark(ctx, key)?;
        if let Err(reason) = settled {
            metrics::counter!("afregning_settle_refused_total").increment(1);
            tracing::warn!(gsrn = %key.gsrn, month = %key.month, %reason, "month not final");
            return Ok(());
        }
        let statements = finality(&mut state, month, self.config.grace, now);
        if statements.is_empty() {
            return Ok(());
        }
        let record_key = SettlementMonthKey {
            gsrn: key.gsrn.clone(),
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
        self.save(ctx, &state)
    }
}

impl Processor for Settle {
    fn name(&self) -> &str {
        NAME
    }

    /// A fresh instance per task, so tasks are processed in parallel (decision 0153).
    /// Its caches are derived from the reference tables, whose changes every task sees.
    fn task_instance(&self) -> Option<Self> {
        Some(Self::new(self.topics.clone(), self.config.clone()))
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
            GlobalTableSpec::new(
                products::PRODUCTS_TABLE,
                self.topics
                    .catalogue
                    .spec(TopicId::Products)
                    .map(|t| t.name.clone())
                    .unwrap_or_default(),
            ),
            GlobalTableSpec::log(
                supply::PORTFOLIO_TABLE,
                self.topics
                    .catalogue
                    .spec(TopicId::PortfolioEvents)
                    .map(|t| t.name.clone())
                    .unwrap_or_default(),
            ),
        ]
    }

    fn tick_interval(&self) -> Option<Duration> {
        Some(self.config.tick_interval)
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
        let mut months: BTreeMap<String, Vec<ChangedDay>> = BTreeMap::new();
        for (date, day_positions) in by_local_day(positions) {
            let key = DayKey {
                gsrn: reading.gsrn.clone(),
                date,
            };
            let old = DAYS.get(ctx, &key)?;
            let mut day = old
                .clone()
                .unwrap_or_else(|| DayPositions::new(date, resolution));
            if day.merge(resolution, &day_positions) == MergeOutcome::Changed {
                DAYS.put(ctx, &key, &day)?;
                let month = month_text(BillingMonth::of(
                    afregning_settlement::calendar::local_midnight(date),
                ));
                months.entry(month).or_default().push(ChangedDay {
                    date,
                    old,
                    new: day,
                });
            }
        }
        for (month, changed) in months {
            let mut state = match self.load(ctx, &month, &reading.gsrn)? {
                Some(s) => s,
                None => {
                    HELD.mark(ctx, &MonthName(month.clone()))?;
                    MonthState {
                        gsrn: reading.gsrn.clone(),
                        month: month.clone(),
                        grid_area: enriched.grid_area.clone(),
                        price_area: enriched.price_area.clone(),
                        supplier_gln: enriched.energy_supplier_gln.clone(),
                        supply_from: enriched.master_data_valid_from,
                        portfolio_supply: None,
                        resolution,
                        version: 0,
                        known_totals: None,
                        lines: Vec::new(),
                        digest: 0,
                        invoice_totals: None,
                        days_settled: 0,
                        complete: false,
                        statement_version: 0,
                        issued: None,
                        days_received: 0,
                        fingerprint: 0,
                        sums: Vec::new(),
                    }
                }
            };
            state.grid_area = enriched.grid_area.clone();
            state.price_area = enriched.price_area.clone();
            state.supplier_gln = enriched.energy_supplier_gln.clone();
            state.supply_from = state.supply_from.min(enriched.master_data_valid_from);
            state.resolution = resolution;
            if let Err(reason) = self.settle(&mut state, &changed, at, ctx)? {
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
        if change.table == supply::PORTFOLIO_TABLE {
            // Prepared months are keyed by their supply: none is stale.
            return self.portfolio_changed(change, ctx);
        }
        // Every prepared month may hold the changed data.
        self.forget_contexts();
        let wire = &self.topics.wire;
        match change.table.as_str() {
            CHARGE_LINKS_TABLE => {
                let key = match wire.decode::<ChargeLinkKey>(&change.key) {
                    Ok(key) => key,
                    Err(e) if e.is_retriable() => {
                        return Err(ProcessError::caused_by("decoding a charge link key", e));
                    }
                    Err(_) => {
                        self.links_cache.clear();
                        return Ok(());
                    }
                };
                self.links_cache.remove(&key.gsrn);
                for month in self.months_between(key.valid_from, None, ctx)? {
                    if ctx
                        .get(MONTHS_STORE, &month_key(&month, &key.gsrn).to_key())?
                        .is_some()
                    {
                        self.mark(ctx, &month, &key.gsrn)?;
                    }
                }
            }
            products::PRODUCTS_TABLE => self.product_changed(change, ctx)?,
            SPOT_PRICES_TABLE => {
                self.spot_cache.clear();
                let key = match wire.decode::<SpotPriceKey>(&change.key) {
                    Ok(key) => key,
                    Err(e) if e.is_retriable() => {
                        return Err(ProcessError::caused_by("decoding a spot price key", e));
                    }
                    Err(_) => return Ok(()),
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

    fn on_replay(
        &mut self,
        scope: &crate::replay::ReplayScope,
        ctx: &mut Context<'_>,
    ) -> Result<crate::replay::ReplayOutcome, ProcessError> {
        self.replay(scope, ctx)
    }

    fn on_tick(&mut self, now: DateTime<Utc>, ctx: &mut Context<'_>) -> Result<(), ProcessError> {
        // 1. Re-settle marked months (their fingerprint changed: folded again).
        let mut todo: BTreeSet<(String, String)> = BTreeSet::new();
        for MonthKey { month, gsrn } in DIRTY.take(ctx)? {
            if gsrn == "*" {
                let mut prefix = Vec::new();
                join_parts(&[&month, ""], &mut prefix);
                for (key, _) in ctx.scan_prefix(MONTHS_STORE, &prefix)? {
                    if let Some(key) = MonthKey::decode(&key) {
                        todo.insert((key.month, key.gsrn));
                    }
                }
            } else {
                todo.insert((month, gsrn));
            }
        }
        for (month, gsrn) in todo {
            if let Some(mut state) = self.load(ctx, &month, &gsrn)?
                && let Err(reason) = self.settle(&mut state, &[], now, ctx)?
            {
                metrics::counter!("afregning_settle_refused_total").increment(1);
                tracing::warn!(%gsrn, %month, %reason, "month not re-settled");
            }
        }
        // 2. Finality, from the due index.
        self.issue_due(now, ctx)
    }
}

#[cfg(test)]
mod tests;

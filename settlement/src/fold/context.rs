//! [`MonthContext`]: everything about a metering point's billing period except its
//! positions, prepared once (charges with sorted prices, links checked, the spot index,
//! product terms), so that a day is settled without touching the rest of the month.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::sync::OnceLock;

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;

use crate::calendar::{BillingPeriod, DayGrid, local_day_bounds};
use crate::charges::{ChargeKey, ChargeLink, ChargeType};
use crate::components::charges::{
    PreparedCharge, check_links, subscription_or_fee_line, tariff_line, tariff_sum,
};
use crate::components::spot::{spot_line, spot_sum};
use crate::components::supplier::{
    margin_lines, margin_sums, no_product_issues, sorted_terms, subscription_lines, uncovered,
};
use crate::input::{InputError, MeteringPoint, MonthInput, Scope};
use crate::product::ProductTerm;
use crate::quantity::{
    ClippedSupply, Position, Quality, Resolution, Slots, SupplyPeriod, latest_positions,
};
use crate::spot::{PriceArea, SpotIndex, SpotPrice};
use crate::statement::{Issue, MonthStatement};

use super::fixed_prices::FixedPrices;
use super::summary::{LineSum, Multiset, Summary};

/// A linked charge with its links (sorted, checked).
#[derive(Debug, Clone)]
pub(crate) struct LinkedCharge {
    pub prepared: PreparedCharge,
    /// Charge times of the period, per price-information period.
    pub times: Vec<Vec<DateTime<Utc>>>,
    links: Vec<ChargeLink>,
}

/// The reference data of one metering point's billing period, prepared for settling it
/// day by day.
///
/// It depends on the period, the supply periods, the linked charges and their prices,
/// the spot prices and the product terms, not on positions or the metering point's id:
/// metering points with the same inputs can share one (the settle processor caches it).
#[derive(Debug)]
pub struct MonthContext {
    period: BillingPeriod,
    days: DayGrid,
    supply: Vec<ClippedSupply>,
    scope: Scope,
    charges: Vec<LinkedCharge>,
    unknown: Vec<ChargeKey>,
    spot: Option<SpotIndex>,
    terms: Vec<ProductTerm>,
    fingerprint: u64,
    /// Each day's summary without positions, by day index, filled on first use.
    empty_days: Vec<OnceLock<Summary>>,
    /// Σ of every day's summary without positions.
    empty_total: OnceLock<Summary>,
    /// The prices in fixed point, on the first day settled without details (not part
    /// of the fingerprint: derived from what is).
    fixed_prices: OnceLock<FixedPrices>,
}

impl MonthContext {
    /// Checks and prepares everything of `input` except its positions (which are only
    /// checked for contradictions here, as the full settlement does first).
    ///
    /// The errors are the engine's input errors, in the order [`crate::settle_month`]
    /// has always reported them.
    pub fn prepare(input: &MonthInput) -> Result<Self, InputError> {
        let period = input.period;
        let supply = Slots::clip_supply(&period, &input.supply)?;
        latest_positions(&input.positions)?;

        // Charges by key; the same key twice must be the same charge.
        let mut prepared: BTreeMap<&ChargeKey, PreparedCharge> = BTreeMap::new();
        for charge in &input.charges {
            if let Some(existing) = prepared.get(&charge.key) {
                if &existing.charge != charge {
                    return Err(InputError::DuplicateCharge(charge.key.clone()));
                }
                continue;
            }
            prepared.insert(&charge.key, PreparedCharge::new(charge)?);
        }
        // Links grouped by charge, sorted by start.
        let mut links: BTreeMap<&ChargeKey, Vec<&ChargeLink>> = BTreeMap::new();
        for link in &input.charge_links {
            links.entry(&link.key).or_default().push(link);
        }
        let mut charges = Vec::new();
        let mut unknown = Vec::new();
        for (key, mut charge_links) in links {
            charge_links.sort_by(|a, b| {
                a.from
                    .cmp(&b.from)
                    .then(a.to.cmp(&b.to))
                    .then(a.quantity.cmp(&b.quantity))
            });
            charge_links.dedup();
            check_links(&charge_links)?;
            match prepared.remove(key) {
                Some(prepared) => charges.push(LinkedCharge {
                    times: prepared.times(&period),
                    prepared,
                    links: charge_links.into_iter().cloned().collect(),
                }),
                None => unknown.push(key.clone()),
            }
        }
        let (spot, terms) = if input.scope == Scope::Full {
            let spot = SpotIndex::build(&input.spot_prices, &period)?;
            let terms: Vec<ProductTerm> =
                sorted_terms(&input.product)?.into_iter().cloned().collect();
            (Some(spot), terms)
        } else {
            (None, Vec::new())
        };
        let days = DayGrid::new(&period);
        let day_count = usize::try_from(period.days()).unwrap_or(0);
        let mut context = Self {
            period,
            days,
            supply,
            scope: input.scope,
            charges,
            unknown,
            spot,
            terms,
            fingerprint: 0,
            empty_days: (0..day_count).map(|_| OnceLock::new()).collect(),
            empty_total: OnceLock::new(),
            fixed_prices: OnceLock::new(),
        };
        context.fingerprint = context.compute_fingerprint();
        Ok(context)
    }

    /// One local day of a bidding zone's spot prices, supplied whole at `resolution` and
    /// with nothing else to settle: what [`Self::day_spot_amount`] prices a metering
    /// point's day against. It depends on no metering point, so the aggregate processor
    /// shares one per zone, day and resolution. `None` for a date without a period.
    pub fn spot_day(
        date: NaiveDate,
        area: PriceArea,
        resolution: Resolution,
        prices: &[SpotPrice],
    ) -> Result<Option<Self>, InputError> {
        let Ok(period) = BillingPeriod::days_from(date, date) else {
            return Ok(None);
        };
        let input = MonthInput {
            metering_point: MeteringPoint {
                id: String::new(),
                grid_area: String::new(),
                price_area: area,
            },
            period,
            supply: vec![SupplyPeriod {
                from: period.start(),
                to: Some(period.end()),
                resolution,
            }],
            positions: Vec::new(),
            charge_links: Vec::new(),
            charges: Vec::new(),
            spot_prices: prices.to_vec(),
            product: Vec::new(),
            scope: Scope::Full,
        };
        Self::prepare(&input).map(Some)
    }

    /// A digest of everything the context was prepared from, stable across processes.
    ///
    /// A state that kept a month's sums records the fingerprint they were computed
    /// with; a different fingerprint means the reference data changed since, and the
    /// month must be folded again from its days rather than patched.
    pub fn fingerprint(&self) -> u64 {
        self.fingerprint
    }

    fn compute_fingerprint(&self) -> u64 {
        let mut hasher = Fnv64::default();
        // Debug text is a canonical rendering of the inputs (Decimal prints its scale).
        format!(
            "{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}",
            self.period, self.supply, self.scope, self.charges, self.unknown, self.spot, self.terms
        )
        .hash(&mut hasher);
        hasher.finish()
    }

    /// The billing period.
    pub fn period(&self) -> &BillingPeriod {
        &self.period
    }

    fn day_index(&self, date: NaiveDate) -> Option<usize> {
        let first = crate::calendar::local_date(self.period.start());
        usize::try_from((date - first).num_days())
            .ok()
            .filter(|i| *i < self.empty_days.len())
    }

    /// What one local day of the period contributes, given the day's positions (every
    /// version received; the latest wins). `explain` keeps the details.
    ///
    /// Positions outside the day's supplied slots are counted as ignored. A date outside
    /// the period contributes only its positions, as ignored.
    pub fn day(
        &self,
        date: NaiveDate,
        positions: &[Position],
        explain: bool,
    ) -> Result<Summary, InputError> {
        self.settle_day(date, positions, explain, !explain)
    }

    /// [`Self::day`]; `fast` sums the per-value lines in fixed point where that is exact
    /// (without details, so not while explaining; the tests compare both paths).
    pub(crate) fn settle_day(
        &self,
        date: NaiveDate,
        positions: &[Position],
        explain: bool,
        fast: bool,
    ) -> Result<Summary, InputError> {
        let fast = fast && !explain;
        let mut summary = Summary::default();
        if self.day_index(date).is_none() {
            summary.ignored = i64::try_from(latest_positions(positions)?.len()).unwrap_or(0);
            return Ok(summary);
        }
        let window = local_day_bounds(date);
        let slots = Slots::build_window(&self.supply, window, positions, fast)?;
        for slot in slots.slots.iter().filter(|s| s.quality == Quality::Missing) {
            if summary.missing_positions == 0 {
                summary.first_missing.add(slot.start, 1);
            }
            summary.missing_positions += 1;
        }
        summary.ignored = i64::from(slots.ignored);
        // Without details to keep, the per-value lines are summed in fixed point; each
        // falls back to the Decimal path where that cannot be exact (crate::fixed).
        let prices = fast.then(|| self.fixed_prices());
        for (c, charge) in self.charges.iter().enumerate() {
            let links: Vec<&ChargeLink> = charge.links.iter().collect();
            let fixed = prices.and_then(|p| p.charges.get(c)?.as_ref());
            let tariff = charge.prepared.charge.key.charge_type == ChargeType::Tariff;
            let sum = fixed.filter(|_| tariff).and_then(|prices| {
                tariff_sum(
                    &charge.prepared,
                    &charge.times,
                    prices,
                    &links,
                    &slots,
                    &self.days,
                    window,
                )
            });
            if let Some((key, facts)) = sum {
                summary.push_facts(key, &facts);
                continue;
            }
            let line = match charge.prepared.charge.key.charge_type {
                ChargeType::Tariff => tariff_line(
                    &charge.prepared,
                    &charge.times,
                    &links,
                    &slots,
                    &self.days,
                    window,
                ),
                ChargeType::Subscription | ChargeType::Fee => subscription_or_fee_line(
                    &charge.prepared,
                    &charge.times,
                    &links,
                    &slots,
                    &self.period,
                    &self.days,
                    window,
                ),
            };
            summary.push_line(line, explain);
        }
        if let Some(spot) = &self.spot {
            match prices.and_then(|p| spot_sum(&slots, p)) {
                Some((key, facts)) => summary.push_facts(key, &facts),
                None => summary.push_line(spot_line(&slots, spot), explain),
            }
            let terms: Vec<&ProductTerm> = self.terms.iter().collect();
            match prices.and_then(|p| margin_sums(&slots, p, &terms, &self.days)) {
                Some(sums) => {
                    for (key, facts) in sums {
                        summary.push_facts(key, &facts);
                    }
                }
                None => {
                    for line in margin_lines(&slots, &terms, &self.days) {
                        summary.push_line(line, explain);
                    }
                }
            }
            for line in subscription_lines(&slots, &terms, &self.period, self.days.days_in(window))
            {
                summary.push_line(line, explain);
            }
            for piece in uncovered(&slots, &terms) {
                summary.no_product.add(piece, 1);
            }
        }
        Ok(summary)
    }

    /// The amount of one local day's spot energy line, as [`Self::day`] then
    /// [`Self::statement`] would put it on the statement: `None` while a price of a
    /// supplied slot is unknown, when the day has no supplied slot, or when the
    /// context does not settle spot (not [`Scope::Full`]).
    ///
    /// Only the spot line is computed (no tariffs, margins, subscriptions or statement),
    /// with the same slots, per-value routine and line rounding: the aggregate processor
    /// reads one number per series and paid for a whole day's settlement to get it.
    pub fn day_spot_amount(
        &self,
        date: NaiveDate,
        positions: &[Position],
    ) -> Result<Option<Decimal>, InputError> {
        let Some(spot) = &self.spot else {
            latest_positions(positions)?;
            return Ok(None);
        };
        if self.day_index(date).is_none() {
            latest_positions(positions)?;
            return Ok(None);
        }
        let slots = Slots::build_window(&self.supply, local_day_bounds(date), positions, true)?;
        let mut summary = Summary::default();
        match spot_sum(&slots, self.fixed_prices()) {
            Some((key, facts)) => summary.push_facts(key, &facts),
            None => summary.push_line(spot_line(&slots, spot), false),
        }
        Ok(summary
            .lines
            .iter()
            .find_map(|(key, sum)| sum.line(key))
            .and_then(|(line, _)| line.amount))
    }

    /// The prices in fixed point, prepared on first use.
    fn fixed_prices(&self) -> &FixedPrices {
        self.fixed_prices.get_or_init(|| {
            let terms: Vec<&ProductTerm> = self.terms.iter().collect();
            let quarters = (self.period.end().timestamp() - self.period.start().timestamp()) / 900;
            FixedPrices::new(
                self.period.start(),
                usize::try_from(quarters).unwrap_or(0),
                &self.charges,
                self.spot.as_ref(),
                &terms,
            )
        })
    }

    /// A day's summary without positions: every supplied slot missing. Computed once
    /// per context and day; `None` for a date outside the period.
    pub fn empty_day(&self, date: NaiveDate) -> Option<&Summary> {
        let i = self.day_index(date)?;
        Some(self.empty_days[i].get_or_init(|| self.day(date, &[], false).unwrap_or_default()))
    }

    /// What a day's positions change against the day having none: the form the settle
    /// processor keeps, so that a month's state is [`Self::statement_of_delta`]'s input
    /// and days never received count as missing without being stored.
    pub fn day_delta(
        &self,
        date: NaiveDate,
        positions: &[Position],
    ) -> Result<Summary, InputError> {
        let mut delta = self.day(date, positions, false)?;
        if let Some(empty) = self.empty_day(date) {
            delta.sub(empty);
        }
        Ok(delta)
    }

    /// Σ of every day's summary without positions.
    pub fn empty_total(&self) -> &Summary {
        self.empty_total.get_or_init(|| {
            let mut total = Summary::default();
            for (date, _, _) in self.period.local_days() {
                if let Some(empty) = self.empty_day(date) {
                    total.add(empty);
                }
            }
            total
        })
    }

    /// The statement of a month kept as Σ day deltas ([`Self::day_delta`]).
    ///
    /// It reads the empty month and the deltas as their sum without building it: the
    /// settle processor calls this per series, and cloning the empty month's maps to
    /// add the deltas into them cost as much as the statement itself.
    pub fn statement_of_delta(&self, metering_point_id: &str, delta: &Summary) -> MonthStatement {
        self.statement_of_sum(metering_point_id, self.empty_total(), Some(delta))
    }

    /// The statement of a month's summary (Σ of all its days).
    pub fn statement(&self, metering_point_id: &str, total: &Summary) -> MonthStatement {
        self.statement_of_sum(metering_point_id, total, None)
    }

    /// The statement of `first + second`, equal to [`Self::statement`] of that sum as
    /// [`Summary::add`] would build it.
    pub(crate) fn statement_of_sum(
        &self,
        metering_point_id: &str,
        first: &Summary,
        second: Option<&Summary>,
    ) -> MonthStatement {
        let missing_positions = first.missing_positions + second.map_or(0, |s| s.missing_positions);
        let ignored = first.ignored + second.map_or(0, |s| s.ignored);
        let mut issues = Vec::new();
        if missing_positions > 0
            && let Some(at) =
                Multiset::first_of(&first.first_missing, second.map(|s| &s.first_missing))
        {
            issues.push(Issue::MissingPositions {
                count: u32::try_from(missing_positions).unwrap_or(u32::MAX),
                first: *at,
            });
        }
        if ignored > 0 {
            issues.push(Issue::IgnoredPositions {
                count: u32::try_from(ignored).unwrap_or(u32::MAX),
            });
        }
        for key in &self.unknown {
            issues.push(Issue::UnknownCharge { key: key.clone() });
        }
        if self.scope == Scope::Full {
            let pieces = Multiset::present_in(&first.no_product, second.map(|s| &s.no_product));
            issues.extend(no_product_issues(pieces.copied()));
        }
        let lines = Summary::lines_of(first, second)
            .filter_map(|(key, a, b)| LineSum::line_of(key, a, b))
            .collect();
        MonthStatement::assemble(metering_point_id.to_string(), self.period, lines, issues)
    }

    /// The local date of an instant and whether it is in the period.
    pub fn contains(&self, instant: DateTime<Utc>) -> bool {
        self.period.contains(instant)
    }
}

/// A digest of `text` that is the same in every process and build (FNV-1a, 64 bits;
/// std's hasher is not promised to be stable): for state that remembers what it saw.
pub fn stable_digest(text: &str) -> u64 {
    let mut hasher = Fnv64::default();
    hasher.write(text.as_bytes());
    hasher.finish()
}

/// FNV-1a, 64 bits.
#[derive(Debug)]
struct Fnv64(u64);

impl Default for Fnv64 {
    fn default() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for Fnv64 {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
}

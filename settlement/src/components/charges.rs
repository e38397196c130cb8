//! DataHub charges, computed as Energinet's wholesale engine does
//! (opengeh-wholesale `preparation/transformations/charge_types/` and
//! `wholesale/`, commit f3cb4df6):
//!
//! - **Charge times** are generated per charge price-information period,
//!   clamped to the billing period: every UTC hour (PT1H), every quarter
//!   (PT15M), or every local day (P1D, P1M) counted from the period start.
//! - **Tariffs**: the quantity of a charge time is the sum of the metering
//!   point's positions in the window (UTC hour, or local day); the price is the
//!   price point at exactly that time, else the price is missing;
//!   `amount = round6(quantity × price)`.
//! - **Subscriptions**: the price is the last price point at or before the day
//!   within the same price-information period; `daily = round6(monthly / days
//!   in period)`; `amount = round6(pieces × daily)`.
//! - **Fees**: as subscriptions without the division.
//! - A charge time counts only where the link and a supply period are valid.

use chrono::{DateTime, Duration, Utc};
use rust_decimal::Decimal;

use crate::calendar::{BillingPeriod, DayGrid, local_daily_steps};
use crate::charges::{Charge, ChargeLink, ChargePeriod, ChargeResolution, ChargeType};
use crate::fixed::{Amount, LineAcc, LineFacts, Price};
use crate::fold::LineKey;
use crate::input::InputError;
use crate::quantity::Slots;
use crate::rounding::{daily_price, line_amount};
use crate::statement::{Component, Detail, Line, LineSource, PriceSource, Unit};

/// A charge with its prices sorted for exact lookup.
#[derive(Debug, Clone)]
pub(crate) struct PreparedCharge {
    pub charge: Charge,
    prices: Vec<(DateTime<Utc>, Decimal)>,
}

impl PreparedCharge {
    /// Sorts prices and rejects contradictions and impossible resolutions.
    pub fn new(charge: &Charge) -> Result<Self, InputError> {
        let allowed = match charge.key.charge_type {
            ChargeType::Tariff => {
                matches!(
                    charge.resolution,
                    ChargeResolution::Pt15m | ChargeResolution::Pt1h | ChargeResolution::P1d
                )
            }
            ChargeType::Subscription | ChargeType::Fee => {
                charge.resolution == ChargeResolution::P1m
            }
        };
        if !allowed {
            return Err(InputError::UnsupportedResolution {
                key: charge.key.clone(),
                resolution: charge.resolution.as_str(),
            });
        }
        let mut prices: Vec<(DateTime<Utc>, Decimal)> =
            charge.prices.iter().map(|p| (p.time, p.price)).collect();
        prices.sort();
        for pair in prices.windows(2) {
            if pair[0].0 == pair[1].0 && pair[0].1 != pair[1].1 {
                return Err(InputError::ConflictingChargePrices {
                    key: charge.key.clone(),
                    time: pair[0].0,
                });
            }
        }
        prices.dedup();
        Ok(Self {
            charge: charge.clone(),
            prices,
        })
    }

    fn price_at(&self, time: DateTime<Utc>) -> Option<Decimal> {
        self.prices
            .binary_search_by(|(t, _)| t.cmp(&time))
            .ok()
            .map(|i| self.prices[i].1)
    }

    /// The charge times of every price-information period (in `charge.periods` order)
    /// over the whole billing period: computed once per prepared month, since daily
    /// charge times convert time zones.
    pub fn times(&self, period: &BillingPeriod) -> Vec<Vec<DateTime<Utc>>> {
        let whole = (period.start(), period.end());
        self.charge
            .periods
            .iter()
            .map(|charge_period| self.charge_times(period, charge_period, whole))
            .collect()
    }

    /// Charge times of one price-information period clamped to the billing period,
    /// only those inside `window` (the period itself, or one local day of it).
    ///
    /// The grid is anchored at the clamped period start whatever the window, so a day's
    /// charge times are exactly the month's charge times that fall in that day.
    fn charge_times(
        &self,
        period: &BillingPeriod,
        charge_period: &ChargePeriod,
        window: (DateTime<Utc>, DateTime<Utc>),
    ) -> Vec<DateTime<Utc>> {
        let from = charge_period.from.max(period.start());
        let to = charge_period.to.unwrap_or(period.end()).min(period.end());
        if from >= to {
            return Vec::new();
        }
        let times = match self.charge.resolution {
            ChargeResolution::Pt1h => {
                return fixed_steps(from, to, Duration::hours(1), window);
            }
            ChargeResolution::Pt15m => {
                return fixed_steps(from, to, Duration::minutes(15), window);
            }
            ChargeResolution::P1d | ChargeResolution::P1m => local_daily_steps(from, to),
        };
        times
            .into_iter()
            .filter(|t| window.0 <= *t && *t < window.1)
            .collect()
    }
}

/// `from + k·step` below `to`, only those inside `window`.
fn fixed_steps(
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    step: Duration,
    window: (DateTime<Utc>, DateTime<Utc>),
) -> Vec<DateTime<Utc>> {
    // Unix seconds: chrono's calendar arithmetic per step showed in the profile.
    let (from_s, to_s, step_s) = (from.timestamp(), to.timestamp(), step.num_seconds().max(1));
    let to_s = to_s.min(window.1.timestamp());
    // The first step at or after the window's start.
    let skip = (window.0.timestamp() - from_s).max(0);
    let first = from_s + (skip + step_s - 1) / step_s * step_s;
    (0..)
        .map(|k| first + k * step_s)
        .take_while(|t| *t < to_s)
        .filter_map(|t| DateTime::from_timestamp(t, from.timestamp_subsec_nanos()))
        .collect()
}

/// Whether a charge time is covered by one of the links (and returns the link) and by supply.
fn link_at<'l>(links: &[&'l ChargeLink], time: DateTime<Utc>) -> Option<&'l ChargeLink> {
    links
        .iter()
        .copied()
        .find(|l| l.from <= time && l.to.is_none_or(|to| time < to))
}

/// Rejects overlapping links of one charge.
pub(crate) fn check_links(links: &[&ChargeLink]) -> Result<(), InputError> {
    for pair in links.windows(2) {
        if pair[0].to.is_none_or(|to| to > pair[1].from) {
            return Err(InputError::OverlappingChargeLinks {
                key: pair[1].key.clone(),
                from: pair[1].from,
            });
        }
    }
    Ok(())
}

/// The line of one linked tariff over `window` (the period, or one local day of it).
///
/// `times` are [`PreparedCharge::times`] of the billing period.
pub(crate) fn tariff_line(
    prepared: &PreparedCharge,
    times: &[Vec<DateTime<Utc>>],
    links: &[&ChargeLink],
    slots: &Slots,
    days: &DayGrid,
    window: (DateTime<Utc>, DateTime<Utc>),
) -> Line {
    let mut details = Vec::new();
    for (_, time, end_s) in tariff_times(prepared, times, links, slots, days, window) {
        let end = time + Duration::seconds(end_s - time.timestamp());
        let sum = slots.window(time, end);
        if sum.positions == 0 {
            continue;
        }
        let price = prepared.price_at(time);
        details.push(Detail {
            start: time,
            end,
            quantity: sum.quantity,
            qualities: sum.qualities,
            positions: sum.positions,
            missing_positions: sum.missing,
            price,
            price_source: price.map(|price| PriceSource { time, price }),
            amount: price.map(|price| line_amount(sum.quantity, price)),
        });
    }
    details.sort_by_key(|d| d.start);
    let key = line_key(&prepared.charge, Unit::Kwh);
    Line::from_details(key.component, key.source, key.vat_class, key.unit, details)
}

/// [`tariff_line`]'s sums in fixed point, without details; `None` when the Decimal
/// path must compute them (see [`crate::fixed`]), or the charge times come out of order.
///
/// `prices` are [`fixed_prices`] of `times`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn tariff_sum(
    prepared: &PreparedCharge,
    times: &[Vec<DateTime<Utc>>],
    prices: &[Vec<Option<Price>>],
    links: &[&ChargeLink],
    slots: &Slots,
    days: &DayGrid,
    window: (DateTime<Utc>, DateTime<Utc>),
) -> Option<(LineKey, LineFacts)> {
    let mut acc = LineAcc::default();
    let mut previous = window.0;
    for ((p, i), time, end_s) in tariff_times(prepared, times, links, slots, days, window) {
        let sum = slots.window_fixed(time.timestamp(), end_s)?;
        if sum.positions == 0 {
            continue;
        }
        // The line sorts its details by start; the sums follow that order.
        if time < previous {
            return None;
        }
        previous = time;
        let price = *prices.get(p)?.get(i)?;
        acc.detail(
            time,
            sum.quantity,
            sum.qualities,
            sum.missing,
            price,
            Amount::Rounded,
        );
    }
    Some((line_key(&prepared.charge, Unit::Kwh), acc.facts()?))
}

/// The price at each of `times` ([`PreparedCharge::times`]) in fixed point, or `None`
/// when one is not representable (the charge then takes the Decimal path).
pub(crate) fn fixed_prices(
    prepared: &PreparedCharge,
    times: &[Vec<DateTime<Utc>>],
) -> Option<Vec<Vec<Option<Price>>>> {
    times
        .iter()
        .map(|period_times| {
            period_times
                .iter()
                .map(|&time| match prepared.price_at(time) {
                    Some(price) => Price::of(price).map(Some),
                    None => Some(None),
                })
                .collect()
        })
        .collect()
}

/// The line a charge's details make.
fn line_key(charge: &Charge, unit: Unit) -> LineKey {
    LineKey {
        component: Component::of_charge(&charge.key, charge.tax),
        source: LineSource::Charge {
            key: charge.key.clone(),
            resolution: charge.resolution,
            tax: charge.tax,
        },
        vat_class: charge.vat_class,
        unit,
    }
}

/// The charge times of a tariff in `window` that carry a quantity (linked, supplied, on
/// the grid of the quantity windows): each with its place in `times` (price period,
/// index) and the end of its quantity window in Unix seconds.
fn tariff_times<'a>(
    prepared: &'a PreparedCharge,
    times: &'a [Vec<DateTime<Utc>>],
    links: &'a [&ChargeLink],
    slots: &'a Slots,
    days: &'a DayGrid,
    window: (DateTime<Utc>, DateTime<Utc>),
) -> impl Iterator<Item = ((usize, usize), DateTime<Utc>, i64)> + 'a {
    let resolution = prepared.charge.resolution;
    times.iter().enumerate().flat_map(move |(p, period_times)| {
        let first = period_times.partition_point(|t| *t < window.0);
        let last = period_times.partition_point(|t| *t < window.1);
        (first..last).filter_map(move |i| {
            let time = period_times[i];
            if link_at(links, time).is_none() || !slots.supplied_at(time) {
                return None;
            }
            // The window the quantity is summed over; Energinet's windows are UTC hours
            // (or quarters) and local days, so a charge time off that grid gets no quantity.
            let t = time.timestamp();
            let end = match resolution {
                ChargeResolution::Pt1h => (t.rem_euclid(3600) == 0).then_some(t + 3600),
                ChargeResolution::Pt15m => (t.rem_euclid(900) == 0).then_some(t + 900),
                _ => days
                    .is_midnight(time)
                    .then(|| days.next_midnight(time).timestamp()),
            }?;
            Some(((p, i), time, end))
        })
    })
}

/// The line of one linked subscription or fee over `window` (the period, or one local
/// day of it).
///
/// `times` are [`PreparedCharge::times`] of the billing period.
pub(crate) fn subscription_or_fee_line(
    prepared: &PreparedCharge,
    times: &[Vec<DateTime<Utc>>],
    links: &[&ChargeLink],
    slots: &Slots,
    period: &BillingPeriod,
    days: &DayGrid,
    window: (DateTime<Utc>, DateTime<Utc>),
) -> Line {
    let charge = &prepared.charge;
    let days_in_period = period.days();
    let mut details = Vec::new();
    for period_times in times {
        // Forward-fill over all charge times of the price-information period,
        // before links are applied (Energinet's window partitioned by charge period);
        // so a day's price may come from an earlier day of the period.
        let mut last: Option<PriceSource> = None;
        for &time in period_times {
            if time >= window.1 {
                break;
            }
            if let Some(price) = prepared.price_at(time) {
                last = Some(PriceSource { time, price });
            }
            if time < window.0 {
                continue;
            }
            let Some(link) = link_at(links, time) else {
                continue;
            };
            if !slots.supplied_at(time) {
                continue;
            }
            let pieces = Decimal::from(link.quantity);
            let unit_price = match (&last, charge.key.charge_type) {
                (Some(source), ChargeType::Subscription) => {
                    daily_price(source.price, days_in_period)
                }
                (Some(source), _) => Some(source.price),
                (None, _) => None,
            };
            details.push(Detail {
                start: time,
                end: days.next_midnight(time),
                quantity: pieces,
                qualities: Default::default(),
                positions: 0,
                missing_positions: 0,
                price: unit_price,
                price_source: last.clone(),
                amount: unit_price.map(|price| line_amount(pieces, price)),
            });
        }
    }
    details.sort_by_key(|d| d.start);
    let key = line_key(charge, Unit::Pieces);
    Line::from_details(key.component, key.source, key.vat_class, key.unit, details)
}

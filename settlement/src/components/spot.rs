//! Spot energy: each position's kWh × the day-ahead price of its MTU.
//!
//! - PT15M position, PT15M price: one detail.
//! - PT15M position, PT1H price: the hour's price applies to its four quarters.
//! - PT1H position, PT1H price: one detail.
//! - PT1H position, PT15M prices: the hour is split into four quarters of q/4
//!   (Energinet's `hour_to_quarter`), each at its own price.
//!
//! Detail amounts are exact; the line amount is rounded once to 6 decimals,
//! so the spot line of REFERENCE §4.B is Σ 0.1 × price = 5.763949 (not a sum
//! of 96 rounded amounts).

use chrono::Duration;
use rust_decimal::Decimal;

use crate::charges::VatClass;
use crate::fixed::{Amount, LineAcc, LineFacts};
use crate::fold::LineKey;
use crate::fold::fixed_prices::FixedPrices;
use crate::quantity::{Quality, QualitySet, Resolution, Slots};
use crate::spot::{QuarterPrice, SpotIndex};
use crate::statement::{Component, Detail, Line, LineSource, PriceSource, Unit};

fn detail(
    start: chrono::DateTime<chrono::Utc>,
    end: chrono::DateTime<chrono::Utc>,
    quantity: Decimal,
    quality: Quality,
    price: Option<QuarterPrice>,
) -> Detail {
    let mut qualities = QualitySet::EMPTY;
    qualities.insert(quality);
    Detail {
        start,
        end,
        quantity,
        qualities,
        positions: 1,
        missing_positions: u32::from(quality == Quality::Missing),
        price: price.map(|p| p.price),
        price_source: price.map(|p| PriceSource {
            time: p.source_start,
            price: p.price,
        }),
        amount: price.map(|p| quantity * p.price),
    }
}

/// The spot energy line.
pub(crate) fn spot_line(slots: &Slots, index: &SpotIndex) -> Line {
    let mut details = Vec::with_capacity(slots.slots.len());
    let quarter = Duration::minutes(15);
    for slot in &slots.slots {
        match slot.resolution {
            Resolution::Pt15m => {
                details.push(detail(
                    slot.start,
                    slot.end(),
                    slot.quantity,
                    slot.quality,
                    index.quarter_price(slot.start),
                ));
            }
            Resolution::Pt1h => {
                let prices: [Option<QuarterPrice>; 4] = std::array::from_fn(|k| {
                    index.quarter_price(slot.start + quarter * i32::try_from(k).unwrap_or(0))
                });
                let hourly_source = prices[0].filter(|p| p.source_resolution == Resolution::Pt1h);
                if hourly_source.is_some() && prices.iter().all(|p| *p == hourly_source) {
                    details.push(detail(
                        slot.start,
                        slot.end(),
                        slot.quantity,
                        slot.quality,
                        hourly_source,
                    ));
                } else {
                    let part = slot.quantity / Decimal::from(4);
                    for (k, price) in prices.into_iter().enumerate() {
                        let start = slot.start + quarter * i32::try_from(k).unwrap_or(0);
                        let mut d = detail(start, start + quarter, part, slot.quality, price);
                        // The position is counted once, on its first quarter.
                        if k > 0 {
                            d.positions = 0;
                            d.missing_positions = 0;
                        }
                        details.push(d);
                    }
                }
            }
        }
    }
    let key = line_key();
    Line::from_details(key.component, key.source, key.vat_class, key.unit, details)
}

/// The spot line's key.
fn line_key() -> LineKey {
    LineKey {
        component: Component::SpotEnergy,
        source: LineSource::Spot,
        vat_class: VatClass::Vat25,
        unit: Unit::Kwh,
    }
}

/// [`spot_line`]'s sums in fixed point, without details; `None` when the Decimal path
/// must compute them: a price not representable, or an hour split into quarters at
/// their own prices (q/4 is a division).
pub(crate) fn spot_sum(slots: &Slots, prices: &FixedPrices) -> Option<(LineKey, LineFacts)> {
    if !slots.fixed {
        return None;
    }
    let mut acc = LineAcc::default();
    for slot in &slots.slots {
        let price = match slot.resolution {
            Resolution::Pt15m => prices.spot(slot.start_s)?.map(|q| q.price),
            Resolution::Pt1h => {
                // One detail only when one hourly price covers all four quarters.
                for k in 0..4 {
                    prices.spot(slot.start_s + 900 * k)?.filter(|q| q.hourly)?;
                }
                prices.spot(slot.start_s)?.map(|q| q.price)
            }
        };
        let mut qualities = QualitySet::EMPTY;
        qualities.insert(slot.quality);
        acc.detail(
            slot.start,
            slot.milli,
            qualities,
            u32::from(slot.quality == Quality::Missing),
            price,
            Amount::Exact,
        );
    }
    Some((line_key(), acc.facts()?))
}

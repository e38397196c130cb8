//! [`MonthContext::day_spot_amount`] against the path it replaces in the aggregate
//! processor: the whole day settled ([`MonthContext::day`]) and the spot line's amount
//! read from its statement. Equal as Decimals and byte for byte (scale and sign of zero
//! included), on the random months of the fold's tests made harder and on one-day
//! periods shaped as aggregate prepares them: PT15M and PT1H days, the DST days of 92
//! and 100 quarter-hours, missing, estimated and quantity-less positions, corrections,
//! positions off the grid or outside the day, PT15M, PT1H and mixed prices with gaps,
//! negative prices and prices the fixed path refuses.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use proptest::prelude::*;
use rust_decimal::Decimal;

use crate::calendar::local_day_bounds;
use crate::input::{InputError, MonthInput};
use crate::quantity::{Position, Quality, Resolution};
use crate::spot::{PriceArea, SpotPrice};
use crate::statement::Component;

use super::MonthContext;
use super::fixed_tests::{days, harder};
use super::tests::{Rng, month_input, steps};

/// The old path: settle the whole day, read the spot line's amount off its statement.
fn through_statement(
    context: &MonthContext,
    date: NaiveDate,
    positions: &[Position],
) -> Result<Option<Decimal>, InputError> {
    let summary = context.day(date, positions, false)?;
    Ok(context
        .statement("571313180000000005", &summary)
        .lines_of(Component::SpotEnergy)
        .next()
        .and_then(|line| line.amount))
}

/// Both paths on one day; `false` when the old one panics (a product past 96 bits in
/// the Decimal path of a line other than spot), which says nothing about the new one.
fn same_amount(
    context: &MonthContext,
    date: NaiveDate,
    positions: &[Position],
) -> Result<bool, TestCaseError> {
    let old = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        through_statement(context, date, positions)
    }));
    let Ok(old) = old else {
        return Ok(false);
    };
    let new = context.day_spot_amount(date, positions);
    match (new, old) {
        (Ok(new), Ok(old)) => {
            prop_assert_eq!(new, old, "{}", date);
            let text = |d: Option<Decimal>| d.map(|d| d.to_string());
            prop_assert_eq!(text(new), text(old), "{}", date);
            let bytes = |d: Option<Decimal>| d.map(|d| d.serialize());
            prop_assert_eq!(bytes(new), bytes(old), "{}", date);
        }
        (new, old) => prop_assert_eq!(new.err(), old.err(), "{}", date),
    }
    Ok(true)
}

/// A random quantity: what DataHub sends (≤ 3 decimals, non-negative, zeros of several
/// scales), and on `refused` days sometimes one the fixed path refuses (4 decimals,
/// negative), which sends the day to the Decimal path.
fn quantity(rng: &mut Rng, refused: bool) -> Decimal {
    let mantissa = i64::try_from(rng.below(4_000)).unwrap_or(0);
    match rng.below(40) {
        0 if refused => Decimal::new(mantissa, 4),
        1 if refused => Decimal::new(-mantissa, 3),
        2..=5 => Decimal::new(0, u32::try_from(rng.below(4)).unwrap_or(0)),
        _ => Decimal::new(mantissa, u32::try_from(rng.below(4)).unwrap_or(3)),
    }
}

/// A random spot price in DKK/kWh: Energi Data Service's 2–6 decimals per MWh (5–9 per
/// kWh), negative ones, halves at the rounding boundary, and on `refused` days sometimes
/// 10 decimals, which the fixed path refuses.
fn price(rng: &mut Rng, refused: bool) -> Decimal {
    let mantissa = i64::try_from(rng.below(3_000_000)).unwrap_or(0);
    let signed = if rng.chance(10) { -mantissa } else { mantissa };
    match rng.below(30) {
        0 if refused => Decimal::new(signed, 10),
        1 => Decimal::new(signed * 10 + 5, 7),
        2 => Decimal::ZERO,
        _ => Decimal::new(signed, 5 + u32::try_from(rng.below(5)).unwrap_or(0)),
    }
}

/// A one-day context as the aggregate processor prepares it, and the day's positions.
fn aggregate_day(seed: u64) -> (MonthContext, NaiveDate, Vec<Position>) {
    let mut rng = Rng(seed | 1);
    let dates = [(2026, 3, 29), (2026, 10, 25), (2026, 3, 2), (2025, 9, 30)];
    let (y, m, d) = dates[usize::try_from(rng.below(4)).unwrap_or(0)];
    let date = NaiveDate::from_ymd_opt(y, m, d).expect("date");
    let (start, end) = local_day_bounds(date);
    let (odd_quantities, odd_prices) = (rng.chance(15), rng.chance(15));
    let resolution = if rng.chance(70) {
        Resolution::Pt15m
    } else {
        Resolution::Pt1h
    };
    let steps = |from: DateTime<Utc>, step: Duration| steps(from, end, step);

    // Positions: some missing, some without quantity, every quality, corrections (and
    // older versions after newer ones), one off the grid, one outside the day.
    let gaps = [0, 2, 20, 100][usize::try_from(rng.below(4)).unwrap_or(0)];
    let mut positions = Vec::new();
    for t in steps(start, resolution.duration()) {
        if rng.chance(gaps) {
            continue;
        }
        let quality = match rng.below(20) {
            0 => Quality::Estimated,
            1 => Quality::Calculated,
            2 => Quality::Missing,
            _ => Quality::Measured,
        };
        let version = 5 + rng.below(3);
        positions.push(Position {
            start: t,
            quantity: (!rng.chance(3)).then(|| quantity(&mut rng, odd_quantities)),
            quality,
            version,
        });
        if rng.chance(5) {
            let other = if rng.chance(50) {
                version + 1
            } else {
                version - 1
            };
            positions.push(Position {
                start: t,
                quantity: Some(quantity(&mut rng, odd_quantities)),
                quality: Quality::Estimated,
                version: other,
            });
        }
    }
    if rng.chance(20) {
        positions.push(Position {
            start: start + Duration::minutes(5),
            quantity: Some(Decimal::ONE),
            quality: Quality::Measured,
            version: 1,
        });
    }
    if rng.chance(20) {
        positions.push(Position {
            start: end,
            quantity: Some(Decimal::ONE),
            quality: Quality::Measured,
            version: 1,
        });
    }

    // Prices: quarter-hourly, hourly or both (a quarter's own price wins), with gaps.
    let price_gaps = [0, 0, 1, 10][usize::try_from(rng.below(4)).unwrap_or(0)];
    let mode = rng.below(3);
    let mut prices = Vec::new();
    if mode != 0 {
        for t in steps(start, Duration::hours(1)) {
            if !rng.chance(price_gaps) {
                prices.push(SpotPrice {
                    start: t,
                    resolution: Resolution::Pt1h,
                    dkk_per_kwh: price(&mut rng, odd_prices),
                });
            }
        }
    }
    if mode != 1 {
        for t in steps(start, Duration::minutes(15)) {
            if !rng.chance(if mode == 2 { 50 } else { price_gaps }) {
                prices.push(SpotPrice {
                    start: t,
                    resolution: Resolution::Pt15m,
                    dkk_per_kwh: price(&mut rng, odd_prices),
                });
            }
        }
    }

    let context = MonthContext::spot_day(date, PriceArea::Dk1, resolution, &prices)
        .expect("a day of spot prices")
        .expect("a period");
    (context, date, positions)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn spot_amount_equals_the_statements_on_aggregates_days(seed in any::<u64>()) {
        let (context, date, positions) = aggregate_day(seed);
        prop_assert!(same_amount(&context, date, &positions)?);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn spot_amount_equals_the_statements_on_random_months(seed in any::<u64>()) {
        let input = harder(month_input(seed), seed);
        let reference = MonthInput { positions: Vec::new(), ..input.clone() };
        let Ok(context) = MonthContext::prepare(&reference) else {
            return Ok(());
        };
        for (date, positions) in days(&input) {
            same_amount(&context, date, &positions)?;
        }
        // A date outside the period: no spot line on either path.
        let after = crate::calendar::local_date(input.period.end());
        prop_assert!(same_amount(&context, after, &input.positions[..1.min(input.positions.len())])?);
    }
}

#[test]
fn the_generated_days_reach_every_outcome() {
    // Known and unknown amounts, the fixed path and its fallback: the property above
    // is not vacuous.
    let (mut known, mut unknown, mut dst) = (0, 0, 0);
    let before = crate::fixed::facts_given();
    for seed in 0..200u64 {
        let (context, date, positions) = aggregate_day(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let (start, end) = local_day_bounds(date);
        if (end - start).num_hours() != 24 {
            dst += 1;
        }
        match context.day_spot_amount(date, &positions).expect("amount") {
            Some(_) => known += 1,
            None => unknown += 1,
        }
    }
    let fixed = crate::fixed::facts_given() - before;
    assert!(
        known > 20 && unknown > 20 && dst > 20,
        "{known} {unknown} {dst}"
    );
    assert!(fixed > 50 && fixed < 180, "fixed-point spot lines: {fixed}");
}

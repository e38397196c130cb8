//! The fixed-point per-value path ([`crate::fixed`]) against the Decimal path, day by
//! day and byte for byte (scales and signs included), on the random months of the
//! fold's tests made harder: quantities of every scale up to 4 decimals (4 falls back),
//! zeros of several scales, negative quantities (fall back), the largest values (fall
//! back on overflow), tariff prices whose products end in a half at the 7th decimal,
//! negative spot prices and prices of up to 10 decimals, DST days of 92 and 100
//! quarter-hours.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use proptest::prelude::*;
use rust_decimal::Decimal;

use crate::calendar::local_date;
use crate::input::MonthInput;
use crate::product::Margin;
use crate::quantity::Position;

use super::MonthContext;
use super::tests::{Rng, month_input};

/// A random Decimal of one of the shapes the fixed path must match or refuse.
fn value(rng: &mut Rng, signed: bool) -> Decimal {
    let scale = u32::try_from(rng.below(11)).unwrap_or(0);
    let mantissa = match rng.below(6) {
        0 => 0,
        // A half at the 7th decimal once multiplied by a whole number of milli-kWh.
        1 => i64::try_from(rng.below(1_000_000)).unwrap_or(0) * 10 + 5,
        2 => i64::MAX - i64::try_from(rng.below(1_000)).unwrap_or(0),
        3 => 1_000_000_000_000,
        _ => i64::try_from(rng.below(5_000_000)).unwrap_or(0),
    };
    let negative = signed && rng.chance(20);
    Decimal::new(if negative { -mantissa } else { mantissa }, scale)
}

/// `input` with some quantities and prices replaced by edge cases.
pub(super) fn harder(mut input: MonthInput, seed: u64) -> MonthInput {
    let mut rng = Rng(seed.rotate_left(29) | 1);
    // Few edge cases, many, or every quantity at a random scale of up to 3 decimals
    // with many zeros (rust_decimal's sum skips a zero operand's scale).
    let (rate, mixed) = match rng.below(3) {
        0 => (2, false),
        1 => (30, false),
        _ => (100, true),
    };
    for p in &mut input.positions {
        if p.quantity.is_some() && rng.chance(rate) {
            let mut q = value(&mut rng, true);
            if mixed || rng.chance(80) {
                // What DataHub sends: at most 3 decimals, non-negative.
                let mantissa = if rng.chance(25) {
                    0
                } else {
                    rng.below(100_000)
                };
                q = Decimal::new(i64::try_from(mantissa).unwrap_or(0), q.scale() % 4);
            }
            p.quantity = Some(q);
        }
    }
    for s in &mut input.spot_prices {
        if rng.chance(rate) {
            s.dkk_per_kwh = value(&mut rng, true);
        }
    }
    for charge in &mut input.charges {
        for point in &mut charge.prices {
            if rng.chance(rate) {
                point.price = value(&mut rng, true);
            }
        }
    }
    for term in &mut input.product {
        if rng.chance(30) {
            term.margin = Margin::Flat {
                per_kwh: value(&mut rng, true),
            };
        }
    }
    input
}

pub(super) fn days(input: &MonthInput) -> BTreeMap<NaiveDate, Vec<Position>> {
    let mut days: BTreeMap<NaiveDate, Vec<Position>> = input
        .period
        .local_days()
        .map(|(date, _, _)| (date, Vec::new()))
        .collect();
    for p in &input.positions {
        days.entry(local_date(p.start)).or_default().push(p.clone());
    }
    days
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn fixed_equals_decimal(seed in any::<u64>()) {
        let input = harder(month_input(seed), seed);
        let reference = MonthInput { positions: Vec::new(), ..input.clone() };
        let Ok(context) = MonthContext::prepare(&reference) else {
            return Ok(());
        };
        for (date, positions) in days(&input) {
            // The Decimal path panics where a product's integer part passes 96 bits; such
            // days say nothing about the fixed path, which falls back to it there.
            let run = |fast| {
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    context.settle_day(date, &positions, false, fast)
                }))
            };
            let Ok(slow) = run(false) else {
                continue;
            };
            let fast = run(true).expect("the fixed path panics only where the Decimal path does");
            match (fast, slow) {
                (Ok(fast), Ok(slow)) => {
                    prop_assert_eq!(format!("{fast:?}"), format!("{slow:?}"), "{}", date);
                    prop_assert_eq!(fast.to_bytes(), slow.to_bytes());
                }
                (fast, slow) => prop_assert_eq!(fast.err(), slow.err()),
            }
        }
    }
}

#[test]
fn ordinary_days_take_the_fixed_path() {
    // March 2026 has its DST day (92 quarter-hours); the counter shows lines summed in
    // fixed point rather than all falling back.
    let mut taken = 0;
    for seed in 1..8u64 {
        let input = month_input(seed * 7919);
        let reference = MonthInput {
            positions: Vec::new(),
            ..input.clone()
        };
        let Ok(context) = MonthContext::prepare(&reference) else {
            continue;
        };
        for (date, positions) in days(&input) {
            let before = crate::fixed::facts_given();
            context
                .settle_day(date, &positions, false, true)
                .expect("day");
            taken += crate::fixed::facts_given() - before;
        }
    }
    assert!(taken > 100, "fixed-point lines: {taken}");
}

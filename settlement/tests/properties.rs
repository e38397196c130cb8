//! Property tests of `settle_month` over a whole PT15M month (January 2026),
//! bounded to 32 cases each so that they run in seconds:
//!
//! - splitting the quantities across any number of corrections gives the same
//!   statement as the final quantities at once;
//! - the statement is invariant under reordering of every input list;
//! - a missing price never yields a zero amount: a detail has an amount
//!   exactly when it has a price, and a line or statement with a missing
//!   price has no amount or total.

mod common;

use afregning_settlement::quantity::apply_correction;
use afregning_settlement::{
    BillingPeriod, Charge, ChargeKey, ChargeLink, ChargePeriod, ChargePricePoint, ChargeResolution,
    ChargeType, Margin, MonthInput, Position, ProductTerm, Quality, Resolution, Scope, SpotPrice,
    VatClass, settle_month,
};
use chrono::{Duration, NaiveDate};
use common::*;
use proptest::prelude::*;
use rust_decimal::Decimal;

/// Quarter-hours in January 2026.
const SLOTS: usize = 31 * 96;

fn period() -> BillingPeriod {
    afregning_settlement::BillingMonth::new(2026, 1)
        .expect("month")
        .period()
}

fn simple_charge(
    code: &str,
    charge_type: ChargeType,
    resolution: ChargeResolution,
    prices: Vec<ChargePricePoint>,
) -> (Charge, ChargeLink) {
    let key = ChargeKey::new(code, RADIUS, charge_type);
    let charge = Charge {
        key: key.clone(),
        resolution,
        tax: false,
        vat_class: VatClass::Vat25,
        periods: vec![ChargePeriod {
            from: utc("2020-01-01T00:00:00Z"),
            to: None,
        }],
        prices,
    };
    (
        charge,
        ChargeLink {
            key,
            quantity: 2,
            from: utc("2020-01-01T00:00:00Z"),
            to: None,
        },
    )
}

/// A full-scope input; `keep_hour[h]` / `keep_spot[q]` drop prices when false.
fn base_input(positions: Vec<Position>, keep_hour: &[bool], keep_spot: &[bool]) -> MonthInput {
    let p = period();
    let hours: Vec<ChargePricePoint> = (0..SLOTS / 4)
        .filter(|h| keep_hour.get(*h).copied().unwrap_or(true))
        .map(|h| ChargePricePoint {
            time: p.start() + Duration::hours(h as i64),
            price: Decimal::new(1000 + (h as i64 * 37) % 900, 4),
        })
        .collect();
    let days: Vec<ChargePricePoint> = p
        .local_days()
        .map(|(_, s, _)| ChargePricePoint {
            time: s,
            price: d("0.043"),
        })
        .collect();
    let list = [
        simple_charge("hourly", ChargeType::Tariff, ChargeResolution::Pt1h, hours),
        simple_charge("daily", ChargeType::Tariff, ChargeResolution::P1d, days),
        simple_charge(
            "sub",
            ChargeType::Subscription,
            ChargeResolution::P1m,
            vec![ChargePricePoint {
                time: p.start(),
                price: d("36.773011"),
            }],
        ),
    ];
    let mut input = input(
        p,
        positions,
        list.iter().map(|(c, _)| c.clone()).collect(),
        list.iter().map(|(_, l)| l.clone()).collect(),
    );
    input.scope = Scope::Full;
    input.spot_prices = (0..SLOTS)
        .filter(|q| keep_spot.get(*q).copied().unwrap_or(true))
        .map(|q| {
            SpotPrice::from_dkk_per_mwh(
                p.start() + Duration::minutes(15 * q as i64),
                Resolution::Pt15m,
                Decimal::new(-5_000 + (q as i64 * 7919) % 120_000, 2),
            )
        })
        .collect();
    input.product = vec![ProductTerm {
        product_id: "p".into(),
        product_name: "P".into(),
        version_valid_from: NaiveDate::from_ymd_opt(2026, 1, 1).expect("date"),
        from: p.start(),
        to: p.end(),
        margin: Margin::ByTariffPeriod {
            lavlast: d("0.05"),
            hojlast: d("0.1"),
            spidslast: d("0.2"),
        },
        subscription_per_month: d("19"),
        vat_class: VatClass::Vat25,
    }];
    input
}

fn position(slot: usize, milli_kwh: u32, version: u64) -> Position {
    Position {
        start: period().start() + Duration::minutes(15 * slot as i64),
        quantity: Some(Decimal::new(i64::from(milli_kwh), 3)),
        quality: Quality::Measured,
        version,
    }
}

/// Deterministic shuffle from a seed (a small LCG; the permutation only has to vary).
fn shuffle<T>(items: &mut [T], mut seed: u64) {
    for i in (1..items.len()).rev() {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let j = (seed >> 33) as usize % (i + 1);
        items.swap(i, j);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn corrections_give_the_same_statement_as_final_quantities(
        finals in prop::collection::vec(0u32..3000, SLOTS),
        corrections in 1usize..6,
        touches in prop::collection::vec((0usize..6, prop::collection::vec(0u32..3000, 6), any::<u8>()), SLOTS),
        seed in any::<u64>(),
    ) {
        let at_once: Vec<Position> = finals.iter().enumerate().map(|(i, q)| position(i, *q, 0)).collect();
        let mut batches: Vec<Vec<Position>> = vec![Vec::new(); corrections];
        for (i, (last, noise, mask)) in touches.iter().enumerate() {
            let last = last % corrections;
            for (c, batch) in batches.iter_mut().enumerate().take(last) {
                if mask & (1 << c) != 0 {
                    batch.push(position(i, noise[c], c as u64));
                }
            }
            batches[last].push(position(i, finals[i], last as u64));
        }
        let expected = settle_month(&base_input(at_once, &[], &[])).expect("settles");

        // Every version ever received, in any order.
        let mut history: Vec<Position> = batches.iter().flatten().cloned().collect();
        shuffle(&mut history, seed);
        prop_assert_eq!(&settle_month(&base_input(history, &[], &[])).expect("settles"), &expected);

        // Or the processor's store, corrections applied in order.
        let mut stored = Vec::new();
        for batch in &batches {
            apply_correction(&mut stored, batch);
        }
        prop_assert_eq!(&settle_month(&base_input(stored, &[], &[])).expect("settles"), &expected);
    }

    #[test]
    fn statement_is_invariant_under_reordering_of_inputs(
        quantities in prop::collection::vec(0u32..3000, SLOTS),
        keep_hour in prop::collection::vec(prop::bool::weighted(0.9), SLOTS / 4),
        seed in any::<u64>(),
    ) {
        let positions: Vec<Position> = quantities.iter().enumerate().map(|(i, q)| position(i, *q, 1)).collect();
        let input = base_input(positions, &keep_hour, &[]);
        let expected = settle_month(&input).expect("settles");
        let mut shuffled = input.clone();
        shuffle(&mut shuffled.positions, seed);
        shuffle(&mut shuffled.charges, seed ^ 1);
        shuffle(&mut shuffled.charge_links, seed ^ 2);
        shuffle(&mut shuffled.spot_prices, seed ^ 3);
        for charge in &mut shuffled.charges {
            shuffle(&mut charge.prices, seed ^ 4);
        }
        prop_assert_eq!(&settle_month(&shuffled).expect("settles"), &expected);
    }

    #[test]
    fn a_missing_price_never_yields_a_zero_amount(
        quantities in prop::collection::vec(0u32..3000, SLOTS),
        keep_hour in prop::collection::vec(prop::bool::weighted(0.8), SLOTS / 4),
        keep_spot in prop::collection::vec(prop::bool::weighted(0.9), SLOTS),
    ) {
        let positions: Vec<Position> = quantities.iter().enumerate().map(|(i, q)| position(i, *q, 1)).collect();
        let statement = settle_month(&base_input(positions, &keep_hour, &keep_spot)).expect("settles");
        let mut any_missing = false;
        for line in &statement.lines {
            for detail in &line.details {
                prop_assert_eq!(detail.price.is_none(), detail.amount.is_none());
            }
            let missing = line.details.iter().filter(|x| x.price.is_none()).count() as u32;
            prop_assert_eq!(line.missing_prices, missing);
            prop_assert_eq!(line.amount.is_none(), missing > 0);
            any_missing |= missing > 0;
        }
        prop_assert_eq!(statement.totals.is_none(), any_missing);
        prop_assert_eq!(statement.complete, !any_missing);
    }
}

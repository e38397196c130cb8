//! The fold against the one-pass engine it replaced, and the incremental path (days
//! arriving in any order, corrected, subtracted and added, stored as bytes) against a
//! full settlement: line by line on random months.
//!
//! The months are random in what the issue of incremental settlement lists: PT15M and
//! PT1H positions, DST months, missing days and positions, estimated quality, positions
//! without quantity, corrections, positions outside supply or off the grid, supply
//! starting and ending mid-month with a change of resolution, PT1H and PT15M spot
//! prices with gaps, PT1H, PT15M and P1D tariffs with gaps and a mid-month price
//! change, subscriptions and fees with a mid-month price change and a link that ends,
//! an unknown charge, flat, hourly and band margins, product terms that leave time
//! uncovered.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use proptest::prelude::*;
use rust_decimal::Decimal;

use crate::calendar::{BillingMonth, local_date, local_day_bounds};
use crate::charges::{
    Charge, ChargeKey, ChargeLink, ChargePeriod, ChargePricePoint, ChargeResolution, ChargeType,
    VatClass,
};
use crate::input::{MeteringPoint, MonthInput, Scope};
use crate::product::{Margin, ProductTerm};
use crate::quantity::{Position, Quality, Resolution, SupplyPeriod};
use crate::spot::{PriceArea, SpotPrice};
use crate::statement::MonthStatement;

use super::{MonthContext, Summary};

/// A small deterministic generator: proptest picks the seed and shrinks it.
pub(super) struct Rng(pub(super) u64);

impl Rng {
    pub(super) fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub(super) fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    pub(super) fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    fn decimal(&mut self, max_mantissa: u64, scale: u32) -> Decimal {
        Decimal::new(i64::try_from(self.below(max_mantissa)).unwrap_or(0), scale)
    }
}

const OWNER: &str = "5790000610099";

fn day_start(month: BillingMonth, day: u32) -> DateTime<Utc> {
    local_day_bounds(month.first_day() + chrono::Days::new(u64::from(day))).0
}

pub(super) fn steps(from: DateTime<Utc>, to: DateTime<Utc>, step: Duration) -> Vec<DateTime<Utc>> {
    let mut out = Vec::new();
    let mut t = from;
    while t < to {
        out.push(t);
        t += step;
    }
    out
}

fn charge(
    code: &str,
    charge_type: ChargeType,
    resolution: ChargeResolution,
    prices: Vec<ChargePricePoint>,
    periods: Vec<ChargePeriod>,
) -> Charge {
    Charge {
        key: ChargeKey::new(code, OWNER, charge_type),
        resolution,
        tax: code == "EA-001",
        vat_class: VatClass::Vat25,
        periods,
        prices,
    }
}

fn link(
    code: &str,
    charge_type: ChargeType,
    from: DateTime<Utc>,
    to: Option<DateTime<Utc>>,
) -> ChargeLink {
    ChargeLink {
        key: ChargeKey::new(code, OWNER, charge_type),
        quantity: 1,
        from,
        to,
    }
}

/// A random month of one metering point.
pub(super) fn month_input(seed: u64) -> MonthInput {
    let mut rng = Rng(seed | 1);
    let (year, number) =
        [(2026, 3), (2026, 10), (2026, 2), (2026, 1)][usize::try_from(rng.below(4)).unwrap_or(0)];
    let month = BillingMonth::new(year, number).expect("month");
    let period = month.period();
    let days = month.days();

    // Supply: from a day in the first week; maybe a change of resolution or an end mid-month.
    let first_resolution = if rng.chance(70) {
        Resolution::Pt15m
    } else {
        Resolution::Pt1h
    };
    let supply_from = if rng.chance(50) {
        period.start()
    } else {
        day_start(month, u32::try_from(rng.below(6)).unwrap_or(0))
    };
    let mut supply = Vec::new();
    if rng.chance(30) {
        let change = day_start(month, 10 + u32::try_from(rng.below(10)).unwrap_or(0));
        let second = if first_resolution == Resolution::Pt15m {
            Resolution::Pt1h
        } else {
            Resolution::Pt15m
        };
        let end = rng.chance(50).then(|| day_start(month, days - 2));
        supply.push(SupplyPeriod {
            from: supply_from,
            to: Some(change),
            resolution: first_resolution,
        });
        supply.push(SupplyPeriod {
            from: change,
            to: end,
            resolution: second,
        });
    } else {
        let end = rng
            .chance(20)
            .then(|| day_start(month, 20 + u32::try_from(rng.below(5)).unwrap_or(0)));
        supply.push(SupplyPeriod {
            from: supply_from,
            to: end,
            resolution: first_resolution,
        });
    }

    // Positions: whole days missing, single positions missing or without quantity,
    // estimated quality, corrections, some outside supply or off the grid.
    let mut positions = Vec::new();
    let skip_days: Vec<u32> = (0..rng.below(4))
        .map(|_| u32::try_from(rng.below(u64::from(days))).unwrap_or(0))
        .collect();
    for s in &supply {
        let to = s.to.unwrap_or(period.end());
        for start in steps(s.from, to, s.resolution.duration()) {
            let day =
                u32::try_from((local_date(start) - month.first_day()).num_days()).unwrap_or(0);
            if skip_days.contains(&day) || rng.chance(2) {
                continue;
            }
            let quality = match rng.below(20) {
                0 => Quality::Estimated,
                1 => Quality::Calculated,
                _ => Quality::Measured,
            };
            let quantity = (!rng.chance(1)).then(|| rng.decimal(2_000, 3));
            positions.push(Position {
                start,
                quantity,
                quality,
                version: 1,
            });
            if rng.chance(3) {
                positions.push(Position {
                    start,
                    quantity: Some(rng.decimal(2_000, 3)),
                    quality: Quality::Measured,
                    version: 2 + rng.below(3),
                });
            }
        }
    }
    if supply_from > period.start() && rng.chance(50) {
        positions.push(Position {
            start: period.start(),
            quantity: Some(Decimal::ONE),
            quality: Quality::Measured,
            version: 1,
        });
    }
    if rng.chance(20) {
        positions.push(Position {
            start: period.start() + Duration::minutes(5),
            quantity: Some(Decimal::ONE),
            quality: Quality::Measured,
            version: 1,
        });
    }

    // Spot: hourly in the first half, quarter-hourly after, a few gaps.
    let half = day_start(month, days / 2);
    let mut spot = Vec::new();
    for start in steps(period.start(), half, Duration::hours(1)) {
        if !rng.chance(1) {
            spot.push(SpotPrice {
                start,
                resolution: Resolution::Pt1h,
                dkk_per_kwh: rng.decimal(3_000_000, 6),
            });
        }
    }
    for start in steps(half, period.end(), Duration::minutes(15)) {
        if !rng.chance(1) {
            spot.push(SpotPrice {
                start,
                resolution: Resolution::Pt15m,
                dkk_per_kwh: rng.decimal(3_000_000, 6),
            });
        }
    }

    // Charges: hourly grid tariff with gaps and a price change, a PT15M tariff, a
    // daily tariff, a subscription with a mid-month price, a fee, an unknown charge.
    let always = vec![ChargePeriod {
        from: day_start(month, 0) - Duration::days(40),
        to: None,
    }];
    let mut charges = Vec::new();
    let mut links = Vec::new();
    let change = day_start(month, 5 + u32::try_from(rng.below(15)).unwrap_or(0));
    let hourly: Vec<ChargePricePoint> = steps(period.start(), period.end(), Duration::hours(1))
        .into_iter()
        .filter(|_| !rng.chance(1))
        .map(|time| ChargePricePoint {
            time,
            price: if time < change {
                Decimal::new(21, 2)
            } else {
                Decimal::new(1_234_567, 6)
            },
        })
        .collect();
    charges.push(charge(
        "DT_C_01",
        ChargeType::Tariff,
        ChargeResolution::Pt1h,
        hourly,
        always.clone(),
    ));
    links.push(link(
        "DT_C_01",
        ChargeType::Tariff,
        period.start() - Duration::days(3),
        None,
    ));
    if rng.chance(50) {
        let quarter: Vec<ChargePricePoint> =
            steps(period.start(), period.end(), Duration::minutes(15))
                .into_iter()
                .map(|time| ChargePricePoint {
                    time,
                    price: Decimal::new(time.timestamp() % 7, 3),
                })
                .collect();
        charges.push(charge(
            "Q15",
            ChargeType::Tariff,
            ChargeResolution::Pt15m,
            quarter,
            always.clone(),
        ));
        links.push(link("Q15", ChargeType::Tariff, period.start(), None));
    }
    let daily: Vec<ChargePricePoint> = period
        .local_days()
        .filter(|_| !rng.chance(3))
        .map(|(_, start, _)| ChargePricePoint {
            time: start,
            price: Decimal::new(8_011, 4),
        })
        .collect();
    charges.push(charge(
        "EA-001",
        ChargeType::Tariff,
        ChargeResolution::P1d,
        daily,
        always.clone(),
    ));
    links.push(link("EA-001", ChargeType::Tariff, period.start(), None));
    let sub_prices = vec![
        ChargePricePoint {
            time: period.start(),
            price: Decimal::new(2_500, 2),
        },
        ChargePricePoint {
            time: change,
            price: Decimal::new(3_100, 2),
        },
    ];
    let sub_periods = if rng.chance(30) {
        vec![
            ChargePeriod {
                from: period.start(),
                to: Some(change),
            },
            ChargePeriod {
                from: change,
                to: None,
            },
        ]
    } else {
        always.clone()
    };
    charges.push(charge(
        "SUB",
        ChargeType::Subscription,
        ChargeResolution::P1m,
        sub_prices,
        sub_periods,
    ));
    let link_end = rng.chance(30).then(|| day_start(month, 12));
    links.push(link(
        "SUB",
        ChargeType::Subscription,
        period.start() - Duration::days(10),
        link_end,
    ));
    if let Some(end) = link_end {
        links.push(link(
            "SUB",
            ChargeType::Subscription,
            end + Duration::days(2),
            None,
        ));
    }
    if rng.chance(50) {
        let fee = vec![ChargePricePoint {
            time: day_start(month, 3),
            price: Decimal::new(9_900, 2),
        }];
        charges.push(charge(
            "FEE",
            ChargeType::Fee,
            ChargeResolution::P1m,
            fee,
            always.clone(),
        ));
        links.push(link(
            "FEE",
            ChargeType::Fee,
            day_start(month, 3),
            Some(day_start(month, 4)),
        ));
    }
    if rng.chance(20) {
        links.push(link("GONE", ChargeType::Tariff, period.start(), None));
    }

    // Product terms: a margin of some shape, perhaps ending before the month does.
    let margin = match rng.below(3) {
        0 => Margin::Flat {
            per_kwh: Decimal::new(125, 4),
        },
        1 => Margin::ByLocalHour {
            per_kwh: Box::new(std::array::from_fn(|h| {
                Decimal::new(i64::try_from(h).unwrap_or(0) + 10, 3)
            })),
        },
        _ => Margin::ByTariffPeriod {
            lavlast: Decimal::new(1, 2),
            hojlast: Decimal::new(3, 2),
            spidslast: Decimal::new(7, 2),
        },
    };
    let term_to = if rng.chance(30) {
        day_start(month, 15)
    } else {
        period.end()
    };
    let term_from = if rng.chance(20) {
        day_start(month, 2)
    } else {
        period.start()
    };
    let product = vec![ProductTerm {
        product_id: "FLEX".into(),
        product_name: "Flex".into(),
        version_valid_from: month.first_day(),
        from: term_from,
        to: term_to,
        margin,
        subscription_per_month: Decimal::new(2_900, 2),
        vat_class: VatClass::Vat25,
    }];

    MonthInput {
        metering_point: MeteringPoint {
            id: "571313100000000001".into(),
            grid_area: "344".into(),
            price_area: PriceArea::Dk1,
        },
        period,
        supply,
        positions,
        charge_links: links,
        charges,
        spot_prices: spot,
        product,
        scope: if rng.chance(10) {
            Scope::DataHubCharges
        } else {
            Scope::Full
        },
    }
}

/// The statement without details, for comparing sums.
fn without_details(mut s: MonthStatement) -> MonthStatement {
    for line in &mut s.lines {
        line.details.clear();
    }
    s
}

/// The incremental path: days arrive in `order`, some twice (a first version, then the
/// final one), each applied as `month − old delta + new delta` on a month kept as bytes.
fn incremental(input: &MonthInput, seed: u64) -> MonthStatement {
    let mut rng = Rng(seed.rotate_left(17) | 1);
    let reference_data = MonthInput {
        positions: Vec::new(),
        ..input.clone()
    };
    let context = MonthContext::prepare(&reference_data).expect("context");
    let mut days: std::collections::BTreeMap<NaiveDate, Vec<Position>> = Default::default();
    for p in &input.positions {
        days.entry(local_date(p.start)).or_default().push(p.clone());
    }
    let mut arrivals: Vec<(NaiveDate, Vec<Position>)> = Vec::new();
    for (date, positions) in &days {
        if rng.chance(25) {
            // A first version of the day that a correction will replace.
            let mut first: Vec<Position> = positions
                .iter()
                .map(|p| Position {
                    quantity: Some(Decimal::new(999, 3)),
                    quality: Quality::Estimated,
                    version: 0,
                    ..p.clone()
                })
                .collect();
            first.dedup_by_key(|p| p.start);
            arrivals.push((*date, first));
        }
        arrivals.push((*date, positions.clone()));
    }
    // Shuffle, but keep each day's versions in order (a correction after its original);
    // the version order decides anyway, this only keeps the test's stored day simple.
    for i in (1..arrivals.len()).rev() {
        let j = usize::try_from(rng.below(u64::try_from(i + 1).unwrap_or(1))).unwrap_or(0);
        arrivals.swap(i, j);
    }
    let mut stored: std::collections::BTreeMap<NaiveDate, Vec<Position>> = Default::default();
    let mut month = Summary::default().to_bytes();
    for (date, positions) in arrivals {
        let mut acc = Summary::from_bytes(&month).expect("decode");
        let old = stored.remove(&date);
        if let Some(old) = &old {
            acc.sub(&context.day_delta(date, old).expect("old day"));
        }
        let mut merged = old.unwrap_or_default();
        merged.extend(positions);
        acc.add(&context.day_delta(date, &merged).expect("new day"));
        stored.insert(date, merged);
        month = acc.to_bytes();
    }
    let acc = Summary::from_bytes(&month).expect("decode");
    context.statement_of_delta(&input.metering_point.id, &acc)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn the_fold_equals_the_one_pass_engine(seed in any::<u64>()) {
        let input = month_input(seed);
        let fold = crate::settle_month(&input);
        let reference = crate::settle::reference::settle_month(&input);
        match (fold, reference) {
            (Ok(fold), Ok(reference)) => {
                prop_assert_eq!(fold, reference);
            }
            (fold, reference) => prop_assert_eq!(fold.err(), reference.err()),
        }
    }

    #[test]
    fn the_incremental_path_equals_a_full_settlement(seed in any::<u64>()) {
        let input = month_input(seed);
        let Ok(full) = crate::settle_month(&input) else {
            return Ok(());
        };
        let incremental = incremental(&input, seed);
        prop_assert_eq!(without_details(incremental), without_details(full));
    }
}

/// `a + b` as the old `statement_of_delta` built it: a clone of `a` with `b` added.
fn summed(a: &Summary, b: &Summary) -> Summary {
    let mut total = a.clone();
    total.add(b);
    total
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// `statement_of_delta` reads the empty month and the delta as their sum without
    /// building it; its statement must be the statement of the built sum, down to each
    /// Decimal's scale (Debug text; `==` on Decimal ignores scale). The deltas add and
    /// subtract random days, also days never added (negative counts in every multiset),
    /// and explained days (details kept).
    #[test]
    fn a_sum_read_in_parts_states_as_the_built_sum(seed in any::<u64>()) {
        let input = month_input(seed);
        let reference_data = MonthInput { positions: Vec::new(), ..input.clone() };
        let Ok(context) = MonthContext::prepare(&reference_data) else {
            return Ok(());
        };
        let mut days: std::collections::BTreeMap<NaiveDate, Vec<Position>> = Default::default();
        for p in &input.positions {
            days.entry(local_date(p.start)).or_default().push(p.clone());
        }
        let mut rng = Rng(seed.rotate_left(29) | 1);
        let mut delta = Summary::default();
        let mut explained = Summary::default();
        for (date, positions) in &days {
            let Ok(day) = context.day_delta(*date, positions) else {
                return Ok(());
            };
            match rng.below(4) {
                0 => delta.sub(&day),
                1 => {}
                _ => delta.add(&day),
            }
            // Taking an empty day away cancels its counts in the empty month: values
            // whose counts sum to zero across the parts.
            if rng.chance(30)
                && let Some(empty_day) = context.empty_day(*date)
            {
                delta.sub(empty_day);
            }
            if rng.chance(30) {
                let Ok(day) = context.day(*date, positions, true) else {
                    return Ok(());
                };
                explained.add(&day);
            }
        }
        let id = &input.metering_point.id;
        let empty = context.empty_total();
        let mut negated = Summary::default();
        negated.sub(&delta);
        for (first, second) in [
            (empty, &delta),
            (&delta, empty),
            (empty, &explained),
            (&explained, &delta),
            (&delta, &negated),
        ] {
            let parts = context.statement_of_sum(id, first, Some(second));
            let built = context.statement(id, &summed(first, second));
            prop_assert_eq!(format!("{parts:?}"), format!("{built:?}"));
        }
        prop_assert_eq!(
            format!("{:?}", context.statement_of_delta(id, &delta)),
            format!("{:?}", context.statement(id, &summed(empty, &delta)))
        );
    }
}

#[test]
fn a_summary_survives_its_bytes() {
    for seed in 1..20u64 {
        let input = month_input(seed * 7919);
        let Ok(context) = MonthContext::prepare(&input) else {
            continue;
        };
        let date = input
            .period
            .local_days()
            .nth(3)
            .map(|(d, _, _)| d)
            .expect("day");
        let day: Vec<Position> = input
            .positions
            .iter()
            .filter(|p| local_date(p.start) == date)
            .cloned()
            .collect();
        let summary = context.day_delta(date, &day).expect("day");
        let bytes = summary.to_bytes();
        assert_eq!(Summary::from_bytes(&bytes).expect("decode"), summary);
        assert!(Summary::from_bytes(&bytes[..bytes.len() - 1]).is_err());
    }
}

#[test]
fn a_complete_day_differs_from_an_empty_one_only_by_sums() {
    // The set of details (and so their prices) does not depend on positions; the
    // kept delta of a month therefore holds no price multisets.
    let input = month_input(42);
    let context = MonthContext::prepare(&input).expect("context");
    let date = input
        .period
        .local_days()
        .nth(25)
        .map(|(d, _, _)| d)
        .expect("day");
    let day: Vec<Position> = input
        .positions
        .iter()
        .filter(|p| local_date(p.start) == date)
        .cloned()
        .collect();
    let delta = context.day_delta(date, &day).expect("day");
    for sum in delta.lines.values() {
        assert_eq!(sum.details, 0);
        assert!(sum.min_price.is_empty() && sum.max_price.is_empty());
    }
}

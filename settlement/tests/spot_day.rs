//! REFERENCE.md §4.B: the local day 2025-11-05 (96 quarters) with the real
//! quarter-hour day-ahead prices of `../shared/settlement/data/openhab/DayAheadPrices20251104.csv`,
//! 0.1 kWh per quarter, plus a supplier margin of 0.11 DKK/kWh (TrygEnergi's
//! 11 øre, REFERENCE §5, P10) and the 2025 DataHub charges from the reference price list.
//! Expected spot and charge amounts are those of the §4.B table; the margin is 9.6 kWh × 0.11.

mod common;

use afregning_settlement::{
    BillingPeriod, ChargeKey, ChargeType, Component, LineSource, Margin, ProductTerm, Scope,
    VatClass, settle_month,
};
use chrono::NaiveDate;
use common::*;

#[test]
fn spot_and_margin_for_2025_11_05_match_reference() {
    let day = NaiveDate::from_ymd_opt(2025, 11, 5).expect("date");
    let period = BillingPeriod::days_from(day, day).expect("period");
    assert_eq!(period.start(), utc("2025-11-04T23:00:00Z"));
    let (charges, links) = radius_customer_charges(&period);
    let charges: Vec<_> = charges
        .into_iter()
        .filter(|c| c.key.charge_type == ChargeType::Tariff)
        .collect();
    let links: Vec<_> = links
        .into_iter()
        .filter(|l| l.key.charge_type == ChargeType::Tariff)
        .collect();
    let mut input = input(
        period,
        quarter_profile(&period, |_| d("0.4")),
        charges,
        links,
    );
    input.scope = Scope::Full;
    input.spot_prices = openhab_day_ahead_prices();
    assert_eq!(input.spot_prices.len(), 140);
    input.product = vec![ProductTerm {
        product_id: "tryg".into(),
        product_name: "Spot + 11 øre".into(),
        version_valid_from: day,
        from: period.start(),
        to: period.end(),
        margin: Margin::Flat { per_kwh: d("0.11") },
        subscription_per_month: d("19"),
        vat_class: VatClass::Vat25,
    }];
    let statement = settle_month(&input).expect("settles");
    assert!(statement.complete, "issues: {:?}", statement.issues);

    let spot = statement
        .lines_of(Component::SpotEnergy)
        .next()
        .expect("spot line");
    assert_eq!(spot.details.len(), 96);
    assert_eq!(spot.quantity, d("9.6"));
    assert_eq!(spot.amount, Some(d("5.763949")));
    // The detail amounts are exact, so their sum is REFERENCE's exact 5.7639491888.
    let exact: rust_decimal::Decimal = spot.details.iter().filter_map(|x| x.amount).sum();
    assert_eq!(exact, d("5.7639491888"));

    let margin = statement
        .lines_of(Component::SupplierMargin)
        .next()
        .expect("margin line");
    assert_eq!(
        margin.source,
        LineSource::Margin {
            product_id: Some("tryg".into())
        }
    );
    assert_eq!(margin.amount, Some(d("1.056000")));
    assert_eq!(
        margin.details.len(),
        1,
        "a flat margin over one term is one detail"
    );

    // One-day period: the supplier's daily price is the monthly price / 1 day.
    let subscription = statement
        .lines_of(Component::SupplierSubscription)
        .next()
        .expect("subscription");
    assert_eq!(subscription.amount, Some(d("19.000000")));

    let amount = |owner: &str, code: &str| {
        statement
            .charge_line(&ChargeKey::new(code, owner, ChargeType::Tariff))
            .and_then(|l| l.amount)
            .expect("amount")
    };
    assert_eq!(amount(RADIUS, "DT_C_01"), d("3.280560"));
    assert_eq!(
        amount(ENERGINET, "40000") + amount(ENERGINET, "41000"),
        d("1.296000")
    );
    assert_eq!(amount(ENERGINET, "EA-001"), d("6.912000"));
}

#[test]
fn a_missing_quarter_price_is_flagged_and_never_zero() {
    let day = NaiveDate::from_ymd_opt(2025, 11, 5).expect("date");
    let period = BillingPeriod::days_from(day, day).expect("period");
    let mut input = input(
        period,
        quarter_profile(&period, |_| d("0.4")),
        Vec::new(),
        Vec::new(),
    );
    input.scope = Scope::Full;
    input.spot_prices = openhab_day_ahead_prices();
    input
        .spot_prices
        .retain(|p| p.start != utc("2025-11-05T12:00:00Z"));
    let statement = settle_month(&input).expect("settles");
    let spot = statement
        .lines_of(Component::SpotEnergy)
        .next()
        .expect("spot line");
    assert_eq!(spot.amount, None);
    assert_eq!(spot.missing_prices, 1);
    assert!(spot.known_amount > d("5"));
    let missing = spot
        .details
        .iter()
        .find(|x| x.price.is_none())
        .expect("missing detail");
    assert_eq!(missing.start, utc("2025-11-05T12:00:00Z"));
    assert_eq!(missing.amount, None);
    assert!(!statement.complete && statement.totals.is_none());
}

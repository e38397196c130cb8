//! REFERENCE.md §4.A: a Radius C customer (DK2), January 2026, 331.7 kWh.
//!
//! Inputs: the consumption profile of §4.A (0.2 kWh/h 00–06, 0.4 06–17,
//! 0.9 17–21, 0.5 21–24, as quarter-hours) and the real DataHub prices read
//! from `../shared/settlement/data/energidataservice/datahubpricelist_energinet_radius.csv`.
//! Expected: the amounts of the §4.A table, to the sixth decimal.

mod common;

use afregning_settlement::{
    BillingMonth, ChargeKey, ChargeType, Component, Issue, UnitPrice, VatClass, settle_month,
};
use common::*;
use rust_decimal::Decimal;

fn profile(hour: u32) -> Decimal {
    match hour {
        0..=5 => d("0.2"),
        6..=16 => d("0.4"),
        17..=20 => d("0.9"),
        _ => d("0.5"),
    }
}

#[test]
fn january_2026_radius_customer_matches_reference_to_the_sixth_decimal() {
    let period = BillingMonth::new(2026, 1).expect("month").period();
    let (charges, links) = radius_customer_charges(&period);
    let statement = settle_month(&input(
        period,
        quarter_profile(&period, profile),
        charges,
        links,
    ))
    .expect("settles");
    assert!(statement.complete, "issues: {:?}", statement.issues);

    let amount = |owner: &str, code: &str, charge_type: ChargeType| {
        statement
            .charge_line(&ChargeKey::new(code, owner, charge_type))
            .unwrap_or_else(|| panic!("line {code}"))
            .amount
            .unwrap_or_else(|| panic!("amount {code}"))
    };
    // REFERENCE §4.A table.
    assert_eq!(
        amount(RADIUS, "DT_C_01", ChargeType::Tariff),
        d("155.276210")
    );
    assert_eq!(
        amount(ENERGINET, "40000", ChargeType::Tariff),
        d("14.263100")
    );
    assert_eq!(
        amount(ENERGINET, "41000", ChargeType::Tariff),
        d("23.882400")
    );
    assert_eq!(
        amount(ENERGINET, "EA-001", ChargeType::Tariff),
        d("2.653600")
    );
    assert_eq!(
        amount(RADIUS, "DA_C_F_01", ChargeType::Subscription),
        d("36.773006")
    );
    assert_eq!(
        amount(ENERGINET, "41004", ChargeType::Subscription),
        d("15.583328")
    );

    let totals = statement.totals.as_ref().expect("complete totals");
    assert_eq!(totals.excl_vat, d("248.431644"));
    assert_eq!(totals.vat, d("62.107911"));
    assert_eq!(totals.incl_vat, d("310.539555"));
    let invoice = statement.invoice_totals.as_ref().expect("invoice totals");
    assert_eq!(
        (invoice.excl_vat, invoice.vat, invoice.incl_vat),
        (d("248.43"), d("62.11"), d("310.54"))
    );
    assert_eq!(statement.vat.len(), 1);
    assert_eq!(statement.vat[0].vat_class, VatClass::Vat25);

    // The explanation: 331.7 kWh, the subscription's daily price, per-hour details.
    let tariff = statement
        .charge_line(&ChargeKey::new("DT_C_01", RADIUS, ChargeType::Tariff))
        .expect("tariff");
    assert_eq!(tariff.quantity, d("331.7"));
    assert_eq!(tariff.details.len(), 31 * 24);
    assert!(matches!(
        tariff.unit_price,
        UnitPrice::Series { min, max } if min == d("0.0976") && max == d("0.8788")
    ));
    assert_eq!(tariff.component, Component::GridTariff);
    let elafgift = statement
        .charge_line(&ChargeKey::new("EA-001", ENERGINET, ChargeType::Tariff))
        .expect("elafgift");
    assert_eq!(elafgift.component, Component::ElectricityTax);
    assert_eq!(elafgift.details.len(), 31);
    let subscription = statement
        .charge_line(&ChargeKey::new(
            "DA_C_F_01",
            RADIUS,
            ChargeType::Subscription,
        ))
        .expect("sub");
    assert_eq!(
        subscription.unit_price,
        UnitPrice::Single {
            price: d("1.186226")
        }
    );
    assert_eq!(
        subscription.details[0]
            .price_source
            .as_ref()
            .map(|s| s.price),
        Some(d("36.773011"))
    );
    assert!(statement.issues.iter().all(|i| !i.blocks_invoice()));
    let _ = Issue::IgnoredPositions { count: 0 };
}

#[test]
fn a_missing_quarter_makes_the_month_incomplete_but_keeps_the_amounts() {
    let period = BillingMonth::new(2026, 1).expect("month").period();
    let (charges, links) = radius_customer_charges(&period);
    let mut positions = quarter_profile(&period, profile);
    positions.remove(100);
    let statement = settle_month(&input(period, positions, charges, links)).expect("settles");
    assert!(!statement.complete);
    assert!(statement.totals.is_none() && statement.invoice_totals.is_none());
    assert!(matches!(
        statement.issues[0],
        Issue::MissingPositions { count: 1, .. }
    ));
    // 100th quarter is 01:00 local on 1 Jan: 0.05 kWh at lavlast 0.0976 missing.
    let tariff = statement
        .charge_line(&ChargeKey::new("DT_C_01", RADIUS, ChargeType::Tariff))
        .expect("tariff");
    assert_eq!(tariff.missing_positions, 1);
    assert_eq!(tariff.quantity, d("331.65"));
}

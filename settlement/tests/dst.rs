//! DST: tariff hours and days are local. Both DST days of 2025 and 2026 are
//! settled at PT15M with 0.1 kWh per quarter: the daily tariff's DST day has 92
//! or 100 quarters (9.2 / 10.0 kWh), the hourly tariff has 23 or 25 hours that
//! day with the hourly price list applied by local hour, and a monthly
//! subscription's daily price uses the month's 31 days.

mod common;

use afregning_settlement::calendar::{local_date, quarter_hours_in_local_day};
use afregning_settlement::{BillingMonth, ChargeKey, ChargeType, settle_month};
use chrono::NaiveDate;
use common::*;

fn check_dst_month(year: i32, month: u32, dst_day: u32, quarters: u32) {
    let period = BillingMonth::new(year, month).expect("month").period();
    let dst = NaiveDate::from_ymd_opt(year, month, dst_day).expect("date");
    assert_eq!(quarter_hours_in_local_day(dst), quarters);
    let (charges, links) = radius_customer_charges(&period);
    let positions = quarter_profile(&period, |_| d("0.4"));
    let expected_quarters = 31 * 96 + i64::from(quarters) - 96;
    assert_eq!(positions.len() as i64, expected_quarters);
    let statement = settle_month(&input(period, positions, charges, links)).expect("settles");
    assert!(statement.complete, "{year}-{month}: {:?}", statement.issues);

    let daily = statement
        .charge_line(&ChargeKey::new("40000", ENERGINET, ChargeType::Tariff))
        .expect("40000");
    assert_eq!(daily.details.len(), 31);
    let dst_detail = daily
        .details
        .iter()
        .find(|x| local_date(x.start) == dst)
        .expect("dst day");
    assert_eq!(dst_detail.positions, quarters);
    assert_eq!(
        dst_detail.quantity,
        d("0.1") * rust_decimal::Decimal::from(quarters)
    );

    let hourly = statement
        .charge_line(&ChargeKey::new("DT_C_01", RADIUS, ChargeType::Tariff))
        .expect("DT_C_01");
    let dst_hours: Vec<_> = hourly
        .details
        .iter()
        .filter(|x| local_date(x.start) == dst)
        .collect();
    assert_eq!(dst_hours.len() as u32, quarters / 4);
    assert_eq!(hourly.details.len() as i64, expected_quarters / 4);
    // Local 00–06 is lavlast in every Radius row: 5, 6 or 7 UTC hours on the DST day.
    let lavlast = [d("0.0976"), d("0.106175")];
    let lavlast_hours = dst_hours
        .iter()
        .filter(|x| x.price.is_some_and(|p| lavlast.contains(&p)))
        .count();
    assert_eq!(lavlast_hours as u32, 6 + quarters / 4 - 24);

    let subscription = statement
        .charge_line(&ChargeKey::new(
            "41004",
            ENERGINET,
            ChargeType::Subscription,
        ))
        .expect("41004");
    assert_eq!(subscription.details.len(), 31);
    let monthly = subscription.details[0]
        .price_source
        .as_ref()
        .expect("source")
        .price;
    assert_eq!(
        subscription.details[0].price,
        afregning_settlement::rounding::daily_price(monthly, 31)
    );
}

#[test]
fn spring_forward_2025() {
    check_dst_month(2025, 3, 30, 92);
}

#[test]
fn fall_back_2025() {
    check_dst_month(2025, 10, 26, 100);
}

#[test]
fn spring_forward_2026() {
    check_dst_month(2026, 3, 29, 92);
}

#[test]
fn fall_back_2026() {
    check_dst_month(2026, 10, 25, 100);
}

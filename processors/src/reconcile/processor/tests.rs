//! The reconcile processor on an in-memory task: Radius's C tariff linked to one metering
//! point with one day of hourly readings in February 2026, DataHub's results for it; the
//! month reconciles to an empty version, an unchanged outcome publishes nothing, and a
//! correction run with another price for one hour is a new version naming that run.

use afregning_settlement::calendar::local_day_bounds;
use afregning_settlement::rounding::line_amount;
use afregning_topology::records::{
    Charge, ChargeLink, ChargeLinkKey, ChargePeriodKey, ChargePrice, ChargePriceKey,
    ChargePricePoint, ChargeType, MeteringPointKey, Quality, ReadingPoint, Resolution, VatClass,
    WholesaleResultKey, WholesaleResultKind, WholesaleResultPoint, examples,
};
use afregning_topology::{Catalogue, TopologySettings};
use chrono::{Duration, NaiveDate};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;

use super::*;
use crate::runtime::OutputRecord;
use crate::runtime::testing::MemoryTask;
use crate::shared::Wire;
use crate::testdata::{at, avro_input};

const RADIUS: &str = "5790000705689";
const GSRN: &str = "571313180400000028";
const SUPPLIER: &str = "5790002000000";

fn feb(day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 2, day).expect("date")
}

fn topics() -> Topics {
    Topics::new(
        Catalogue::new(TopologySettings::default()).expect("catalogue"),
        Wire::local(),
    )
}

fn task() -> MemoryTask<Reconcile> {
    let config = ReconcileConfig {
        supplier_gln: Some(SUPPLIER.into()),
        part_size: 1,
        ..ReconcileConfig::default()
    };
    let mut t = MemoryTask::new(Reconcile::new(topics(), config), 0);
    let wire = Wire::local();
    let from = local_day_bounds(feb(1)).0;
    let end = local_day_bounds(feb(1) + Duration::days(28)).0;
    let info = Charge {
        owner_gln: RADIUS.into(),
        charge_type: ChargeType::Tariff,
        charge_code: "DT_C_01".into(),
        name: None,
        resolution: Resolution::Pt1h,
        tax_indicator: false,
        vat_class: VatClass::Vat25,
        transparent_invoicing: true,
        valid_from: from - Duration::days(31),
        valid_to: None,
        source_message_id: "c".into(),
    };
    let key = ChargePeriodKey {
        owner_gln: RADIUS.into(),
        charge_type: ChargeType::Tariff,
        charge_code: "DT_C_01".into(),
        valid_from: info.valid_from,
    };
    t.globals.set(
        CHARGES_TABLE,
        &wire.encode(&key).expect("key"),
        Some(&wire.encode(&info).expect("value")),
    );
    let prices = ChargePrice {
        owner_gln: RADIUS.into(),
        charge_type: ChargeType::Tariff,
        charge_code: "DT_C_01".into(),
        resolution: Resolution::Pt1h,
        period_start: from,
        period_end: end,
        points: (1..=(end - from).num_hours() as i32)
            .map(|position| ChargePricePoint {
                position,
                price: dec!(0.30),
            })
            .collect(),
        source_message_id: "p".into(),
    };
    let key = ChargePriceKey {
        owner_gln: RADIUS.into(),
        charge_type: ChargeType::Tariff,
        charge_code: "DT_C_01".into(),
        period_start: from,
    };
    t.globals.set(
        CHARGE_PRICES_TABLE,
        &wire.encode(&key).expect("key"),
        Some(&wire.encode(&prices).expect("value")),
    );
    let link = ChargeLink {
        gsrn: GSRN.into(),
        owner_gln: RADIUS.into(),
        charge_type: ChargeType::Tariff,
        charge_code: "DT_C_01".into(),
        quantity: 1,
        valid_from: from,
        valid_to: None,
        source_message_id: "l".into(),
    };
    let key = ChargeLinkKey {
        gsrn: GSRN.into(),
        owner_gln: RADIUS.into(),
        charge_type: ChargeType::Tariff,
        charge_code: "DT_C_01".into(),
        valid_from: from,
    };
    t.globals.set(
        CHARGE_LINKS_TABLE,
        &wire.encode(&key).expect("key"),
        Some(&wire.encode(&link).expect("value")),
    );
    t
}

/// Hour `h` (1-24) of 2 February: 1.000 + h/10 kWh.
fn kwh(h: i32) -> Decimal {
    dec!(1.000) + Decimal::new(i64::from(h), 1)
}

fn reading() -> InputRecord {
    let (start, end) = local_day_bounds(feb(2));
    let mut value = examples::enriched_reading();
    value.reading.gsrn = GSRN.into();
    value.reading.resolution = Resolution::Pt1h;
    value.reading.period_start = start;
    value.reading.period_end = end;
    value.reading.points = (1..=24)
        .map(|position| ReadingPoint {
            position,
            quantity: Some(kwh(position)),
            quality: Quality::AsProvided,
        })
        .collect();
    value.energy_supplier_gln = Some(SUPPLIER.into());
    value.master_data_valid_from = local_day_bounds(feb(1)).0;
    let topic = topics().name(topics::ENRICHED_READINGS);
    avro_input(
        &topic,
        0,
        &MeteringPointKey { gsrn: GSRN.into() },
        &value,
        end,
    )
}

fn series(
    run: (&str, Option<&str>, &str),
    charge: bool,
    owner: Option<&str>,
    resolution: Resolution,
    points: Vec<WholesaleResultPoint>,
) -> WholesaleResult {
    let (reason, round, version) = run;
    let id = format!(
        "{reason}-{version}-{charge}-{owner:?}-{}",
        resolution.code()
    );
    WholesaleResult {
        kind: WholesaleResultKind::WholesaleServices,
        business_reason: reason.into(),
        calculation_version: Some(version.into()),
        settlement_version: round.map(str::to_string),
        grid_area: examples::GRID_AREA.into(),
        energy_supplier_gln: Some(SUPPLIER.into()),
        balance_responsible_gln: None,
        metering_point_type: charge.then(|| "E17".to_string()),
        settlement_method: charge.then(|| "E02".to_string()),
        charge_owner_gln: owner.map(str::to_string),
        charge_type: charge.then_some(ChargeType::Tariff),
        charge_code: charge.then(|| "DT_C_01".to_string()),
        unit: "KWH".into(),
        currency: Some("DKK".into()),
        resolution,
        period_start: local_day_bounds(feb(1)).0,
        period_end: local_day_bounds(feb(1) + Duration::days(28)).0,
        points,
        source_message_id: format!("m-{reason}-{version}"),
        transaction_id: id,
    }
}

/// DataHub's run: hourly amounts for 2 February at `price` (hour `odd` at `odd_price`),
/// and, when `sums`, the monthly amount and the totals at 0.30.
fn datahub(
    run: (&str, Option<&str>, &str),
    odd: Option<(i32, Decimal)>,
    sums: bool,
) -> Vec<WholesaleResult> {
    let price_of = |h: i32| match odd {
        Some((hour, p)) if hour == h => p,
        _ => dec!(0.30),
    };
    let hourly: Vec<WholesaleResultPoint> = (1..=24)
        .map(|h| WholesaleResultPoint {
            position: 24 + h,
            quantity: Some(kwh(h)),
            price: Some(price_of(h)),
            amount: Some(line_amount(kwh(h), price_of(h))),
            quality: Some(Quality::Calculated),
        })
        .collect();
    let month: Decimal = (1..=24).map(|h| line_amount(kwh(h), dec!(0.30))).sum();
    let total = |owner: Option<&str>| {
        series(
            run,
            false,
            owner,
            Resolution::P1m,
            vec![WholesaleResultPoint {
                position: 1,
                quantity: None,
                price: None,
                amount: Some(month),
                quality: None,
            }],
        )
    };
    let mut out = vec![series(run, true, Some(RADIUS), Resolution::Pt1h, hourly)];
    if sums {
        out.push(series(
            run,
            true,
            Some(RADIUS),
            Resolution::P1m,
            vec![WholesaleResultPoint {
                position: 1,
                quantity: None,
                price: None,
                amount: Some(month),
                quality: None,
            }],
        ));
        out.push(total(Some(RADIUS)));
        out.push(total(None));
    }
    out
}

fn records(results: &[WholesaleResult], first_offset: i64) -> Vec<InputRecord> {
    let topic = topics().name(topics::WHOLESALE_RESULTS);
    results
        .iter()
        .enumerate()
        .map(|(i, r)| {
            avro_input(
                &topic,
                first_offset + i as i64,
                &WholesaleResultKey {
                    grid_area: r.grid_area.clone(),
                    transaction_id: r.transaction_id.clone(),
                },
                r,
                at("2026-03-20T06:00:00Z"),
            )
        })
        .collect()
}

fn published(outputs: &[OutputRecord]) -> Vec<Reconciliation> {
    let topic = topics().name(topics::DISCREPANCIES);
    outputs
        .iter()
        .filter(|o| o.topic == topic)
        .map(|o| {
            Wire::local()
                .decode(o.value.as_deref().expect("a value"))
                .expect("a reconciliation")
        })
        .collect()
}

#[test]
fn a_month_that_agrees_is_one_empty_version_and_an_unchanged_outcome_is_not_published_again() {
    let mut t = task();
    let now = at("2026-03-20T07:00:00Z");
    let mut input = vec![reading()];
    input.extend(records(&datahub(("D05", None, "1"), None, true), 10));
    assert!(published(&t.process(&input, now).expect("processed")).is_empty());
    let first = published(&t.tick(now).expect("ticked"));
    assert_eq!(first.len(), 1, "{first:#?}");
    let r = &first[0];
    assert_eq!(
        (r.version, r.part, r.parts, r.discrepancy_count),
        (1, 0, 1, 0)
    );
    assert_eq!(r.calculations, "D05 v1");
    assert_eq!(r.grid_area_owner_gln.as_deref(), Some(RADIUS));
    assert_eq!(r.month_start, feb(1));
    // Nothing changed: no new version, also not when the same series arrive again.
    assert!(published(&t.tick(now).expect("ticked")).is_empty());
    let again = records(&datahub(("D05", None, "1"), None, true), 20);
    assert!(published(&t.process(&again, now).expect("processed")).is_empty());
    assert!(published(&t.tick(now).expect("ticked")).is_empty());
}

#[test]
fn a_correction_run_with_another_price_is_a_new_version_naming_the_run_in_parts() {
    let mut t = task();
    let now = at("2026-03-20T07:00:00Z");
    let mut input = vec![reading()];
    input.extend(records(&datahub(("D05", None, "1"), None, true), 10));
    t.process(&input, now).expect("processed");
    assert_eq!(published(&t.tick(now).expect("ticked")).len(), 1);

    let odd = (5, dec!(0.31));
    let correction = records(&datahub(("D32", Some("D01"), "2"), Some(odd), false), 30);
    t.process(&correction, now).expect("processed");
    let parts = published(&t.tick(now).expect("ticked"));
    // Part size 1: the price and the amount of hour 5, one part each.
    assert_eq!(parts.len(), 2, "{parts:#?}");
    for (i, p) in parts.iter().enumerate() {
        assert_eq!(
            (p.version, p.part, p.parts, p.discrepancy_count),
            (2, i as i32, 2, 2)
        );
        assert_eq!(p.calculations, "D05 v1, D32-D01 v2");
    }
    let found: Vec<&afregning_topology::records::Discrepancy> =
        parts.iter().flat_map(|p| &p.discrepancies).collect();
    let hour = local_day_bounds(feb(2)).0 + Duration::hours(4);
    assert_eq!(found[0].measure, "PRICE");
    assert_eq!(
        (found[0].datahub, found[0].ours),
        (Some(dec!(0.31)), Some(dec!(0.30)))
    );
    assert_eq!(found[1].measure, "AMOUNT");
    assert_eq!(
        found[1].difference,
        line_amount(kwh(5), dec!(0.31)) - line_amount(kwh(5), dec!(0.30))
    );
    for (seq, d) in found.iter().enumerate() {
        assert_eq!(d.seq, seq as i32);
        assert_eq!(d.time, hour);
        assert_eq!(d.calculation.as_deref(), Some("D32-D01 v2"));
        assert_eq!(d.metering_points, GSRN);
    }
}

#[test]
fn a_result_without_any_reading_lists_datahubs_values_against_nothing() {
    let mut t = task();
    let now = at("2026-03-20T07:00:00Z");
    t.process(&records(&datahub(("D05", None, "1"), None, false), 0), now)
        .expect("processed");
    let parts = published(&t.tick(now).expect("ticked"));
    let found: Vec<_> = parts.iter().flat_map(|p| &p.discrepancies).collect();
    // Quantity and amount of each of the 24 hours; no price (ours is absent).
    assert_eq!(found.len(), 48);
    assert!(
        found
            .iter()
            .all(|d| d.ours.is_none() && d.metering_points.is_empty())
    );
    let kwh_sum: Decimal = found
        .iter()
        .filter(|d| d.measure == "QUANTITY")
        .map(|d| d.difference)
        .sum();
    assert_eq!(kwh_sum, (1..=24).map(kwh).sum::<Decimal>());
}

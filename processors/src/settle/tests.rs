use afregning_settlement::calendar::local_day_bounds;
use afregning_settlement::settle_month;
use afregning_settlement::{
    Charge as EngineCharge, ChargeKey, ChargeLink as EngineLink, ChargePeriod, ChargePricePoint,
    ChargeResolution, ChargeType as EngineChargeType, Margin, MonthStatement, PriceArea, Product,
    ProductVersion, Resolution as EngineResolution, SpotPrice as EngineSpot, VatClass as EngineVat,
};
use afregning_topology::records::{
    Charge, ChargeLink, ChargePeriodKey, ChargePrice, ChargePriceKey,
    ChargePricePoint as WirePoint, ChargeType, MeteringPointKey, ProvisionalSettlement, Quality,
    ReadingPoint, Resolution, SettlementStatement, SpotPrice, StatementKind, VatClass, examples,
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

const ENRICHED: &str = "afregning.metering.enriched-readings.v1";
const RADIUS: &str = "5790000705689";
const GSRN: &str = "571313180400000028";

fn feb(day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 2, day).expect("date")
}

fn catalogue() -> ProductCatalogue {
    ProductCatalogue {
        products: vec![Product {
            id: "spot-plus".into(),
            name: "Spot plus".into(),
            versions: vec![ProductVersion {
                valid_from: feb(1) - Duration::days(365),
                margin: Margin::Flat {
                    per_kwh: dec!(0.05),
                },
                subscription_per_month: dec!(29),
                vat_class: EngineVat::Vat25,
            }],
        }],
        assignments: Vec::new(),
    }
}

fn task() -> MemoryTask<Settle> {
    let topics = Topics::new(
        Catalogue::new(TopologySettings::default()).expect("catalogue"),
        Wire::local(),
    );
    let config = SettleConfig {
        catalogue: catalogue(),
        default_product: Some("spot-plus".into()),
        grace: Duration::days(2),
        ..SettleConfig::default()
    };
    let mut t = MemoryTask::new(Settle::new(topics, config), 0);
    let wire = Wire::local();
    let mut set = |table: &str, key: Vec<u8>, value: Vec<u8>| {
        t.globals.set(table, &key, Some(&value));
    };
    // Radius's C tariff: one series for February, and a price change from the 15th.
    let info = Charge {
        owner_gln: RADIUS.into(),
        charge_type: ChargeType::Tariff,
        charge_code: "DT_C_01".into(),
        name: None,
        resolution: Resolution::Pt1h,
        tax_indicator: false,
        vat_class: VatClass::Vat25,
        transparent_invoicing: true,
        valid_from: local_day_bounds(feb(1) - Duration::days(31)).0,
        valid_to: None,
        source_message_id: "c".into(),
    };
    set(
        CHARGES_TABLE,
        wire.encode(&ChargePeriodKey {
            owner_gln: RADIUS.into(),
            charge_type: ChargeType::Tariff,
            charge_code: "DT_C_01".into(),
            valid_from: info.valid_from,
        })
        .unwrap(),
        wire.encode(&info).unwrap(),
    );
    for (from, to, price) in [
        (feb(1), feb(1) + Duration::days(28), dec!(0.30)),
        (feb(15), feb(1) + Duration::days(28), dec!(0.40)),
    ] {
        let start = local_day_bounds(from).0;
        let end = local_day_bounds(to).0;
        let hours = (end - start).num_hours();
        let series = ChargePrice {
            owner_gln: RADIUS.into(),
            charge_type: ChargeType::Tariff,
            charge_code: "DT_C_01".into(),
            resolution: Resolution::Pt1h,
            period_start: start,
            period_end: end,
            points: (1..=hours as i32)
                .map(|position| WirePoint { position, price })
                .collect(),
            source_message_id: "p".into(),
        };
        set(
            CHARGE_PRICES_TABLE,
            wire.encode(&ChargePriceKey {
                owner_gln: RADIUS.into(),
                charge_type: ChargeType::Tariff,
                charge_code: "DT_C_01".into(),
                period_start: start,
            })
            .unwrap(),
            wire.encode(&series).unwrap(),
        );
    }
    let link = ChargeLink {
        gsrn: GSRN.into(),
        owner_gln: RADIUS.into(),
        charge_type: ChargeType::Tariff,
        charge_code: "DT_C_01".into(),
        quantity: 1,
        valid_from: local_day_bounds(feb(1)).0,
        valid_to: None,
        source_message_id: "l".into(),
    };
    set(
        CHARGE_LINKS_TABLE,
        wire.encode(&ChargeLinkKey {
            gsrn: GSRN.into(),
            owner_gln: RADIUS.into(),
            charge_type: ChargeType::Tariff,
            charge_code: "DT_C_01".into(),
            valid_from: link.valid_from,
        })
        .unwrap(),
        wire.encode(&link).unwrap(),
    );
    for (start, price) in spot() {
        let value = SpotPrice {
            price_area: "DK2".into(),
            start,
            end: start + Duration::minutes(15),
            resolution: Resolution::Pt15m,
            price_dkk_per_mwh: price,
            price_eur_per_mwh: None,
            source: "test".into(),
            fetched_at: start,
        };
        set(
            SPOT_PRICES_TABLE,
            wire.encode(&SpotPriceKey {
                price_area: "DK2".into(),
                start,
            })
            .unwrap(),
            wire.encode(&value).unwrap(),
        );
    }
    t
}

fn spot() -> Vec<(DateTime<Utc>, Decimal)> {
    let (start, _) = local_day_bounds(feb(1));
    let (end, _) = local_day_bounds(feb(1) + Duration::days(28));
    let mut out = Vec::new();
    let mut t = start;
    let mut i = 0i64;
    while t < end {
        out.push((t, Decimal::from(400 + (i * 37) % 500)));
        t += Duration::minutes(15);
        i += 1;
    }
    out
}

fn kwh(day: u32, hour: i32, corrected: bool) -> Decimal {
    let base = Decimal::from(i64::from(day) * 7 + i64::from(hour) * 13 % 50) / dec!(100);
    if corrected { base + dec!(1.000) } else { base }
}

fn reading(day: u32, offset: i64, corrected: bool) -> InputRecord {
    let (start, end) = local_day_bounds(feb(day));
    let mut value = examples::enriched_reading();
    value.reading.gsrn = GSRN.into();
    value.reading.resolution = Resolution::Pt1h;
    value.reading.period_start = start;
    value.reading.period_end = end;
    value.reading.registered_at = end + Duration::hours(if corrected { 200 } else { 5 });
    value.reading.transaction_id = format!("{day}-{corrected}");
    value.reading.points = (1..=24)
        .map(|position| ReadingPoint {
            position,
            quantity: Some(kwh(day, position, corrected)),
            quality: Quality::AsProvided,
        })
        .collect();
    value.grid_area = "344".into();
    value.price_area = Some("DK2".into());
    value.master_data_valid_from = local_day_bounds(feb(1) - Duration::days(40)).0;
    avro_input(
        ENRICHED,
        offset,
        &MeteringPointKey { gsrn: GSRN.into() },
        &value,
        end + Duration::hours(6),
    )
}

/// The same month computed directly by the pure engine.
fn expected(corrected_day: Option<u32>) -> MonthStatement {
    expected_with(corrected_day, &catalogue())
}

/// [`expected`] with another product catalogue.
fn expected_with(corrected_day: Option<u32>, products: &ProductCatalogue) -> MonthStatement {
    let month = BillingMonth::new(2026, 2).unwrap();
    let mut positions = Vec::new();
    for day in 1..=28 {
        let (start, _) = local_day_bounds(feb(day));
        for hour in 1..=24 {
            positions.push(afregning_settlement::Position {
                start: start + Duration::hours(i64::from(hour - 1)),
                quantity: Some(kwh(day, hour, corrected_day == Some(day))),
                quality: afregning_settlement::Quality::Measured,
                version: 1,
            });
        }
    }
    let key = ChargeKey::new("DT_C_01", RADIUS, EngineChargeType::Tariff);
    let mut prices = Vec::new();
    for day in 1..=28 {
        let (start, _) = local_day_bounds(feb(day));
        for h in 0..24 {
            prices.push(ChargePricePoint {
                time: start + Duration::hours(h),
                price: if day < 15 { dec!(0.30) } else { dec!(0.40) },
            });
        }
    }
    let input = MonthInput {
        metering_point: EngineMeteringPoint {
            id: GSRN.into(),
            grid_area: "344".into(),
            price_area: PriceArea::Dk2,
        },
        period: month.period(),
        supply: vec![SupplyPeriod {
            from: month.start(),
            to: None,
            resolution: EngineResolution::Pt1h,
        }],
        positions,
        charge_links: vec![EngineLink {
            key: key.clone(),
            quantity: 1,
            from: month.start(),
            to: None,
        }],
        charges: vec![EngineCharge {
            key,
            resolution: ChargeResolution::Pt1h,
            tax: false,
            vat_class: EngineVat::Vat25,
            periods: vec![ChargePeriod {
                from: local_day_bounds(feb(1) - Duration::days(31)).0,
                to: None,
            }],
            prices,
        }],
        spot_prices: spot()
            .into_iter()
            .map(|(t, p)| EngineSpot::from_dkk_per_mwh(t, EngineResolution::Pt15m, p))
            .collect(),
        product: product_terms(products, Some("spot-plus"), GSRN, month),
        scope: Scope::Full,
    };
    settle_month(&input).expect("settles")
}

fn decode<T: afregning_topology::records::AvroRecord>(out: &OutputRecord) -> T {
    Wire::local()
        .decode(out.value.as_deref().expect("value"))
        .expect("decodes")
}

#[test]
fn a_month_settles_to_the_engines_result_and_a_late_correction_is_credited_and_reissued() {
    let mut t = task();
    let now = at("2026-03-05T00:00:00Z");
    let mut last: Option<ProvisionalSettlement> = None;
    for day in 1..=28 {
        let out = t
            .process(&[reading(day, i64::from(day), false)], now)
            .expect("ok");
        assert_eq!(out.len(), 1, "one new version per changed day");
        assert_eq!(out[0].topic, "afregning.settlement.provisional-lines.v1");
        last = Some(decode(&out[0]));
    }
    let last = last.expect("versions");
    assert_eq!(last.version, 28);
    assert_eq!(last.days_settled, 28);
    let want = expected(None);
    assert!(want.complete, "{:?}", want.issues);
    assert_eq!(last.total_excl_vat, want.known_totals.excl_vat.round_dp(6));
    assert_eq!(last.total_incl_vat, want.known_totals.incl_vat.round_dp(6));

    // A replayed reading changes nothing.
    assert!(
        t.process(&[reading(3, 100, false)], now)
            .expect("ok")
            .is_empty()
    );

    // Not final before the grace period has passed; final once after it.
    assert!(t.tick(at("2026-03-01T12:00:00Z")).expect("tick").is_empty());
    // A wall-clock tick has sub-millisecond precision; the record keeps milliseconds.
    let out = t.tick(now + Duration::nanoseconds(123_456)).expect("tick");
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].topic, "afregning.settlement.statements.v1");
    let statement: SettlementStatement = decode(&out[0]);
    assert_eq!(statement.kind, StatementKind::Statement);
    let invoice = want.invoice_totals.clone().expect("complete");
    assert_eq!(statement.total_excl_vat, invoice.excl_vat);
    assert_eq!(statement.vat_amount, invoice.vat);
    assert_eq!(statement.total_incl_vat, invoice.incl_vat);
    assert!(t.tick(now).expect("tick").is_empty(), "issued once");

    // A correction of 10 February after finality: one new version, then a
    // credit note for the statement and a new statement.
    let out = t.process(&[reading(10, 200, true)], now).expect("ok");
    assert_eq!(out.len(), 1);
    let corrected: ProvisionalSettlement = decode(&out[0]);
    assert_eq!(corrected.version, 29);
    let want_corrected = expected(Some(10));
    assert_eq!(
        corrected.total_excl_vat,
        want_corrected.known_totals.excl_vat.round_dp(6)
    );
    let subscription = |p: &ProvisionalSettlement| {
        p.lines
            .iter()
            .find(|l| {
                l.component
                    == afregning_topology::records::SettlementComponent::SupplierSubscription
            })
            .map(|l| l.amount)
    };
    assert_eq!(
        subscription(&corrected),
        subscription(&last),
        "only the day's amounts change"
    );
    let out = t.tick(now).expect("tick");
    assert_eq!(out.len(), 2);
    let credit: SettlementStatement = decode(&out[0]);
    let reissued: SettlementStatement = decode(&out[1]);
    assert_eq!(credit.kind, StatementKind::CreditNote);
    assert_eq!(
        credit.corrects_statement_id.as_deref(),
        Some(statement.statement_id.as_str())
    );
    assert_eq!(credit.total_incl_vat, -statement.total_incl_vat);
    assert_eq!(reissued.kind, StatementKind::Statement);
    assert_eq!(reissued.version, 3);
    assert_eq!(
        reissued.total_incl_vat,
        want_corrected.invoice_totals.expect("complete").incl_vat
    );
    assert!(t.tick(now).expect("tick").is_empty());
}

#[test]
fn an_incomplete_month_is_not_final() {
    let mut t = task();
    for day in 1..=27 {
        t.process(
            &[reading(day, i64::from(day), false)],
            at("2026-03-05T00:00:00Z"),
        )
        .expect("ok");
    }
    assert!(t.tick(at("2026-04-05T00:00:00Z")).expect("tick").is_empty());
}

#[test]
fn a_new_spot_price_re_settles_the_month_at_the_next_tick() {
    let mut t = task();
    let now = at("2026-02-20T00:00:00Z");
    t.process(&[reading(2, 1, false)], now).expect("ok");
    let (start, _) = local_day_bounds(feb(2));
    let wire = Wire::local();
    let key = SpotPriceKey {
        price_area: "DK2".into(),
        start,
    };
    let value = SpotPrice {
        price_area: "DK2".into(),
        start,
        end: start + Duration::minutes(15),
        resolution: Resolution::Pt15m,
        price_dkk_per_mwh: dec!(9999),
        price_eur_per_mwh: None,
        source: "test".into(),
        fetched_at: start,
    };
    let change = GlobalChange {
        table: SPOT_PRICES_TABLE.into(),
        key: wire.encode(&key).unwrap(),
        value: Some(wire.encode(&value).unwrap()),
        partition: 0,
        offset: 1,
    };
    assert!(t.global_change(change, now).expect("ok").is_empty());
    let out = t.tick(now).expect("tick");
    assert_eq!(out.len(), 1);
    let p: ProvisionalSettlement = decode(&out[0]);
    assert_eq!(p.version, 2);
}

/// A product change on the products topic: `spot-plus` with `versions` added.
fn product_change(
    versions: &[(NaiveDate, Decimal)],
    offset: i64,
) -> (GlobalChange, ProductCatalogue) {
    let mut changed = catalogue();
    for (from, margin) in versions {
        changed.products[0].versions.push(ProductVersion {
            valid_from: *from,
            margin: Margin::Flat { per_kwh: *margin },
            subscription_per_month: dec!(29),
            vat_class: EngineVat::Vat25,
        });
    }
    let change = GlobalChange {
        table: products::PRODUCTS_TABLE.into(),
        key: b"spot-plus".to_vec(),
        value: Some(serde_json::to_vec(&changed.products[0]).expect("json")),
        partition: 0,
        offset,
    };
    (change, changed)
}

#[test]
fn a_product_change_re_settles_the_open_month_by_the_engines_difference() {
    let mut t = task();
    // Before the month's grace has passed: the month stays open.
    let now = at("2026-03-01T12:00:00Z");
    for day in 1..=28 {
        t.process(&[reading(day, i64::from(day), false)], now)
            .expect("ok");
    }
    assert!(t.tick(now).expect("tick").is_empty());

    // A version from April does not touch February: nothing to re-settle.
    let (april, _) = product_change(
        &[(NaiveDate::from_ymd_opt(2026, 4, 1).unwrap(), dec!(0.5))],
        1,
    );
    assert!(t.global_change(april, now).expect("ok").is_empty());
    assert!(t.tick(now).expect("tick").is_empty(), "February unchanged");

    // A margin of 0.08 from 15 February: a new version at the next tick.
    let (change, changed) = product_change(
        &[
            (NaiveDate::from_ymd_opt(2026, 4, 1).unwrap(), dec!(0.5)),
            (feb(15), dec!(0.08)),
        ],
        2,
    );
    assert!(t.global_change(change, now).expect("ok").is_empty());
    let out = t.tick(now).expect("tick");
    assert_eq!(out.len(), 1, "one new provisional version");
    let p: ProvisionalSettlement = decode(&out[0]);
    assert_eq!(p.version, 29);
    let before = expected(None);
    let after = expected_with(None, &changed);
    assert_ne!(before.known_totals.excl_vat, after.known_totals.excl_vat);
    assert_eq!(p.total_excl_vat, after.known_totals.excl_vat.round_dp(6));
    assert!(t.tick(now).expect("tick").is_empty(), "re-settled once");
}

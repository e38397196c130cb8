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
    settle_month(&expected_input(corrected_day, products)).expect("settles")
}

/// The engine's input of [`expected_with`].
fn expected_input(corrected_day: Option<u32>, products: &ProductCatalogue) -> MonthInput {
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
    MonthInput {
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
    }
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

// Settlement follows the portfolio (issue 16, decision 0140).

use afregning_portfolio::{
    Command, CommandMeta, CustomerKey, CustomerRef, Event, Gln, MeteringPoint, ProcessDetails,
    ProcessId, ProcessKind, decide,
};

/// Another supplier.
const OTHER: &str = "5790000000012";

/// A metering point's portfolio, driven by commands through the portfolio's own `decide`.
struct Script {
    state: MeteringPoint,
    events: Vec<Event>,
}

impl Script {
    fn new() -> Self {
        let us = Gln::parse(examples::SUPPLIER_GLN).expect("gln");
        let gsrn = afregning_cim::gsrn::Gsrn::parse(GSRN).expect("gsrn");
        Self {
            state: MeteringPoint::new(gsrn, us),
            events: Vec::new(),
        }
    }

    fn run(&mut self, on: NaiveDate, command: Command) -> &mut Self {
        let meta = CommandMeta {
            at: local_day_bounds(on).0 + Duration::hours(9),
            actor: "test".into(),
            why: "settle follows the portfolio".into(),
            message_id: None,
        };
        let event = decide(&self.state, &meta, &command).unwrap_or_else(|r| panic!("{r}"));
        self.state = self.state.clone().apply(&event);
        self.events.push(event);
        self
    }

    fn details(
        id: &str,
        kind: ProcessKind,
        supplier: &str,
        effective: NaiveDate,
    ) -> ProcessDetails {
        ProcessDetails {
            process: ProcessId(id.into()),
            kind,
            supplier: Gln::parse(supplier).expect("gln"),
            effective,
            customer: Some(CustomerRef {
                key: CustomerKey(format!("customer-of-{id}")),
                personal: None,
            }),
            corrects: None,
            balance_responsible: None,
            notified_reason: None,
        }
    }

    /// Our change of supplier (BRS-001), requested three weeks ahead, accepted, in effect.
    fn our_start(&mut self, id: &str, effective: NaiveDate) -> &mut Self {
        let asked = effective - Duration::days(21);
        let details = Self::details(
            id,
            ProcessKind::ChangeOfSupplier,
            examples::SUPPLIER_GLN,
            effective,
        );
        self.run(asked, Command::Request(details))
            .run(
                asked,
                Command::Accept {
                    process: ProcessId(id.into()),
                    datahub_ref: None,
                },
            )
            .effect(id, effective)
    }

    /// DataHub notifies a process we did not request (RSM-004 takeover, the other side's
    /// BRS-003), in effect on its day.
    fn notified(
        &mut self,
        id: &str,
        kind: ProcessKind,
        effective: NaiveDate,
        corrects: Option<&str>,
    ) -> &mut Self {
        let mut details = Self::details(id, kind, OTHER, effective);
        details.corrects = corrects.map(|c| ProcessId(c.into()));
        // A takeover is announced ahead; a rollback comes after the day it undoes.
        let told = if corrects.is_some() {
            effective + Duration::days(10)
        } else {
            effective - Duration::days(5)
        };
        self.run(told, Command::Notify(details))
            .effect(id, told.max(effective))
    }

    fn effect(&mut self, id: &str, on: NaiveDate) -> &mut Self {
        self.run(
            on,
            Command::TakeEffect {
                process: ProcessId(id.into()),
                disconnected_on: None,
            },
        )
    }

    /// The events from `from` on as the portfolio table delivers them.
    fn changes(&self, from: usize) -> Vec<GlobalChange> {
        self.events[from..]
            .iter()
            .map(|e| GlobalChange {
                table: supply::PORTFOLIO_TABLE.into(),
                key: crate::runtime::log_entry_key(GSRN.as_bytes(), 0, e.sequence as i64),
                value: Some(serde_json::to_vec(e).expect("json")),
                partition: 0,
                offset: e.sequence as i64,
            })
            .collect()
    }

    /// Puts every event into the task's table (before it processes anything).
    fn load_into(&self, t: &mut MemoryTask<Settle>) {
        for c in self.changes(0) {
            t.globals.set(&c.table, &c.key, c.value.as_deref());
        }
    }
}

/// The statements and credit notes among a batch's outputs.
fn issued(out: &[OutputRecord]) -> Vec<SettlementStatement> {
    out.iter()
        .filter(|o| o.topic == "afregning.settlement.statements.v1")
        .map(decode)
        .collect()
}

/// The pure engine's February for the supplied `[from, to)` days only.
fn expected_supplied(days: &[(NaiveDate, NaiveDate)]) -> MonthStatement {
    let month = BillingMonth::new(2026, 2).unwrap();
    let mut input = expected_input(None, &catalogue());
    input.supply = supply::engine_supply(days, month, EngineResolution::Pt1h);
    settle_month(&input).expect("settles")
}

#[test]
fn the_months_supply_is_the_portfolios_timeline_clipped_to_the_month() {
    let month = BillingMonth::new(2026, 2).unwrap();
    // Ours from 20 January, taken over by another supplier from 15 February (RSM-004).
    let mut s = Script::new();
    s.our_start("cos", feb(1) - Duration::days(12)).notified(
        "takeover",
        ProcessKind::ChangeOfSupplier,
        feb(15),
        None,
    );
    let events = &s.events;
    let timeline = supply::timeline(GSRN, Some(examples::SUPPLIER_GLN), events).expect("events");
    assert_eq!(timeline, s.state.supply, "the portfolio's own fold");
    let days = supply::month_days(&timeline, month);
    assert_eq!(days, vec![(feb(1), feb(15))]);
    let engine = supply::engine_supply(&days, month, EngineResolution::Pt1h);
    assert_eq!(engine.len(), 1);
    assert_eq!(engine[0].from, month.start());
    assert_eq!(engine[0].to, Some(local_day_bounds(feb(15)).0));
    assert_eq!(
        supply::supply_end(Some(&days), month),
        Some(local_day_bounds(feb(15)).0)
    );
    // March is not supplied at all.
    let march_month = BillingMonth::new(2026, 3).unwrap();
    assert!(supply::month_days(&timeline, march_month).is_empty());

    // A supply to the month's end stays open and ends nothing early.
    let mut open = Script::new();
    open.our_start("cos", feb(10));
    let timeline = supply::timeline(GSRN, Some(examples::SUPPLIER_GLN), &open.events).unwrap();
    let days = supply::month_days(&timeline, month);
    assert_eq!(days, vec![(feb(10), feb(1) + Duration::days(28))]);
    assert_eq!(
        supply::engine_supply(&days, month, EngineResolution::Pt1h)[0].to,
        None
    );
    assert_eq!(supply::supply_end(Some(&days), month), None);

    // Rolled back (BRS-003 from the other side): nothing supplied, the period retired.
    open.notified(
        "brs003",
        ProcessKind::IncorrectChangeOfSupplier,
        feb(10),
        Some("cos"),
    );
    let timeline = supply::timeline(GSRN, Some(examples::SUPPLIER_GLN), &open.events).unwrap();
    assert!(supply::month_days(&timeline, month).is_empty());
    assert_eq!(timeline.retired.len(), 1);
    assert_eq!(supply::supply_end(Some(&[]), month), Some(month.start()));

    // No events, or no GLN of ours: the master data's rule.
    assert_eq!(
        supply::timeline(GSRN, Some(examples::SUPPLIER_GLN), &[]),
        None
    );
    assert_eq!(supply::timeline(GSRN, None, &open.events), None);
    assert_eq!(supply::supply_end(None, month), None);

    // The table's values: sorted by sequence, a repeat kept once, garbage counted.
    let mut values: Vec<Vec<u8>> = open
        .events
        .iter()
        .rev()
        .map(|e| serde_json::to_vec(e).unwrap())
        .collect();
    values.push(values[0].clone());
    values.push(b"{".to_vec());
    let (decoded, refused) = supply::events(GSRN, values);
    assert_eq!(decoded, open.events);
    assert_eq!(refused, 1);
    assert_eq!(
        supply::gsrn_of(&crate::runtime::log_entry_key(GSRN.as_bytes(), 3, 7)).as_deref(),
        Some(GSRN)
    );
}

#[test]
fn a_month_whose_supply_ends_inside_it_is_final_from_that_end_plus_grace() {
    let month = BillingMonth::new(2026, 2).unwrap();
    let grace = Duration::days(2);
    let mut state = MonthState {
        gsrn: GSRN.into(),
        month: "2026-02".into(),
        grid_area: "344".into(),
        price_area: Some("DK2".into()),
        supplier_gln: Some(examples::SUPPLIER_GLN.into()),
        supply_from: month.start(),
        portfolio_supply: None,
        resolution: EngineResolution::Pt1h,
        version: 1,
        known_totals: None,
        lines: Vec::new(),
        digest: 0,
        invoice_totals: Some([dec!(10), dec!(2.5), dec!(12.5)]),
        days_settled: 14,
        complete: true,
        statement_version: 0,
        issued: None,
        days_received: 14,
        fingerprint: 0,
        sums: Vec::new(),
    };
    // No portfolio: the month's end plus grace.
    assert_eq!(core::final_from(&state, month, grace), month.end() + grace);
    // Supply ends on 15 February (Danish day): final from its midnight plus grace.
    state.portfolio_supply = Some(vec![(feb(1), feb(15))]);
    let end = local_day_bounds(feb(15)).0;
    assert_eq!(core::final_from(&state, month, grace), end + grace);
    let just_before = end + grace - Duration::milliseconds(1);
    assert!(finality(&mut state, month, grace, just_before).is_empty());
    let mut incomplete = state.clone();
    incomplete.complete = false;
    assert!(
        finality(&mut incomplete, month, grace, end + grace).is_empty(),
        "data first"
    );
    let out = finality(&mut state, month, grace, end + grace);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].kind, StatementKind::Statement);
    assert!(
        finality(&mut state, month, grace, month.end() + grace).is_empty(),
        "once"
    );

    // Every period retired: the statement in force is credited, nothing replaces it.
    state.portfolio_supply = Some(Vec::new());
    assert_eq!(
        core::final_from(&state, month, grace),
        month.start() + grace
    );
    let out = finality(&mut state, month, grace, end + grace);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].kind, StatementKind::CreditNote);
    assert_eq!(out[0].total_incl_vat, dec!(-12.5));
    assert!(state.issued.is_none());
    assert!(
        finality(&mut state, month, grace, month.end() + grace).is_empty(),
        "credited once"
    );
}

#[test]
fn a_supply_taken_over_mid_month_is_billed_for_its_days_and_final_before_the_months_end() {
    let mut t = task();
    let mut s = Script::new();
    s.our_start("cos", feb(1) - Duration::days(12)).notified(
        "takeover",
        ProcessKind::ChangeOfSupplier,
        feb(15),
        None,
    );
    s.load_into(&mut t);
    let now = at("2026-02-16T08:00:00Z");
    // Readings for the whole month (DataHub keeps sending after the takeover): only the
    // supplied days count.
    for day in 1..=13 {
        t.process(&[reading(day, i64::from(day), false)], now)
            .expect("ok");
    }
    // 15 February + 2 days of grace has passed, but the 14th is missing: not final.
    assert!(t.tick(at("2026-02-17T06:00:00Z")).expect("tick").is_empty());
    for day in 14..=28 {
        t.process(&[reading(day, i64::from(day), false)], now)
            .expect("ok");
    }
    let want = expected_supplied(&[(feb(1), feb(15))]);
    assert!(want.complete, "{:?}", want.issues);
    // Before the supply's end plus grace: nothing.
    assert!(t.tick(at("2026-02-16T22:59:59Z")).expect("tick").is_empty());
    // From 17 February 00:00 Danish time, long before the month's end: one statement.
    let out = t.tick(at("2026-02-16T23:00:00Z")).expect("tick");
    let statements = issued(&out);
    assert_eq!(statements.len(), 1, "{out:?}");
    let invoice = want.invoice_totals.clone().expect("complete");
    assert_eq!(statements[0].kind, StatementKind::Statement);
    assert_eq!(statements[0].total_excl_vat, invoice.excl_vat);
    assert_eq!(statements[0].total_incl_vat, invoice.incl_vat);
    let full = expected(None).invoice_totals.expect("complete");
    assert!(
        invoice.incl_vat < full.incl_vat,
        "fewer days than the month"
    );
    // The month's end changes nothing.
    assert!(t.tick(at("2026-03-05T00:00:00Z")).expect("tick").is_empty());
}

#[test]
fn a_rollback_credits_exactly_what_was_billed_for_the_retired_period() {
    let mut t = task();
    // Ours 1–4 February, taken over on the 5th, ours again from the 20th: then the 20th's
    // change of supplier is rolled back (BRS-003 from the other side).
    let mut s = Script::new();
    s.our_start("first", feb(1) - Duration::days(12))
        .notified("takeover", ProcessKind::ChangeOfSupplier, feb(5), None)
        .our_start("back", feb(20));
    s.load_into(&mut t);
    let loaded = s.events.len();
    let now = at("2026-03-05T00:00:00Z");
    for day in 1..=28 {
        t.process(&[reading(day, i64::from(day), false)], now)
            .expect("ok");
    }
    let out = t.tick(now).expect("tick");
    let billed = expected_supplied(&[(feb(1), feb(5)), (feb(20), feb(1) + Duration::days(28))]);
    let statement: SettlementStatement = decode(out.last().expect("a statement"));
    assert_eq!(statement.kind, StatementKind::Statement);
    assert_eq!(
        statement.total_incl_vat,
        billed.invoice_totals.clone().expect("complete").incl_vat
    );

    s.notified(
        "brs003",
        ProcessKind::IncorrectChangeOfSupplier,
        feb(20),
        Some("back"),
    );
    for change in s.changes(loaded) {
        assert!(t.global_change(change, now).expect("ok").is_empty());
    }
    let out = t.tick(now).expect("tick");
    let statements = issued(&out);
    assert_eq!(statements.len(), 2);
    let remaining = expected_supplied(&[(feb(1), feb(5))])
        .invoice_totals
        .expect("complete");
    let (credit, reissued) = (&statements[0], &statements[1]);
    assert_eq!(credit.kind, StatementKind::CreditNote);
    assert_eq!(credit.total_incl_vat, -statement.total_incl_vat);
    assert_eq!(reissued.kind, StatementKind::Statement);
    assert_eq!(reissued.total_incl_vat, remaining.incl_vat);
    // Net: exactly the rolled-back days' amount credited.
    let credited = statement.total_incl_vat - reissued.total_incl_vat;
    let rolled_back_days = billed.invoice_totals.expect("complete").incl_vat - remaining.incl_vat;
    assert_eq!(credited, rolled_back_days);
    assert!(t.tick(now).expect("tick").is_empty(), "once");

    // Rolling back the first start too leaves nothing: a credit note alone.
    s.notified(
        "brs003-first",
        ProcessKind::IncorrectChangeOfSupplier,
        feb(1) - Duration::days(12),
        Some("first"),
    );
    for change in s.changes(loaded + 2) {
        t.global_change(change, now).expect("ok");
    }
    let out = t.tick(now).expect("tick");
    let statements = issued(&out);
    assert_eq!(statements.len(), 1);
    assert_eq!(statements[0].kind, StatementKind::CreditNote);
    assert_eq!(statements[0].total_incl_vat, -remaining.incl_vat);
}

/// What `parse_month` was before it read the canonical form from its digits: the fast form
/// must give the same month, or refuse, on every text.
fn month_by_chrono(text: &str) -> Option<BillingMonth> {
    use chrono::Datelike;
    let date = NaiveDate::parse_from_str(&format!("{text}-01"), "%Y-%m-%d").ok()?;
    BillingMonth::new(date.year(), date.month()).ok()
}

#[test]
fn month_keys_read_and_write_as_chrono_does() {
    let mut texts: Vec<String> = Vec::new();
    for year in [0, 1, 999, 1000, 1969, 2024, 2026, 2027, 9998, 9999] {
        for month in 0..=13 {
            texts.push(format!("{year:04}-{month:02}"));
        }
    }
    texts.extend(
        [
            "2026-1", "2026-001", "+2026-01", " 2026-01", "2026-01 ", "2026/01", "abcd-01",
            "2026-ab", "", "2026", "20260-01", "-2026-01", "2026-0١",
        ]
        .map(String::from),
    );
    let mut read = 0;
    for text in &texts {
        let month = parse_month(text);
        assert_eq!(month, month_by_chrono(text), "{text:?}");
        if let Some(month) = month {
            read += 1;
            assert_eq!(
                month_text(month),
                month.first_day().format("%Y-%m").to_string(),
                "{text:?}"
            );
            assert_eq!(parse_month(&month_text(month)), Some(month));
        }
    }
    assert!(read >= 100, "only {read} months read");
}

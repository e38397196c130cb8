//! Representative records for every key and value type: realistic values
//! (a Radius C-customer in DK2, Energinet's tariffs, a DST-free October day)
//! with every optional field both filled and empty somewhere.
//!
//! They exist for the round-trip tests in this crate (every `.avsc` through the
//! real registry in Confluent wire format) and as fixtures for other crates'
//! tests, so nobody hand-builds a 17-field record to test a sink.

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use rust_decimal::Decimal;

use super::*;

/// A consumption metering point in grid area 740 (Radius, DK2).
pub const GSRN: &str = "571313180400000028";
/// Its grid area.
pub const GRID_AREA: &str = "740";
/// Radius Elnet's GLN (grid company, charge owner).
pub const RADIUS_GLN: &str = "5790000705689";
/// Energinet's GLN (charge owner of system tariffs and elafgift).
pub const ENERGINET_GLN: &str = "5790000432752";
/// Our GLN as energy supplier.
pub const SUPPLIER_GLN: &str = "5790002000000";
/// A DataHub MessageId.
pub const MESSAGE_ID: &str = "8b0a5e4f2c1d4e7f9a3b6c5d4e3f2a1b";

fn utc(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, h, min, 0)
        .single()
        .expect("valid time")
}

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).expect("valid date")
}

fn kwh(milli: i64) -> Decimal {
    Decimal::new(milli, 3)
}

fn dkk(micro: i64) -> Decimal {
    Decimal::new(micro, 6)
}

/// Key of a raw record carrying one series of a split bundle.
pub fn datahub_message_key() -> DataHubMessageKey {
    DataHubMessageKey {
        message_id: MESSAGE_ID.into(),
        series_id: Some("4413675032_5080574373".into()),
    }
}

/// Key of a reading.
pub fn metering_point_key() -> MeteringPointKey {
    MeteringPointKey { gsrn: GSRN.into() }
}

/// Key of the metering point's current master data.
pub fn metering_point_period_key() -> MeteringPointPeriodKey {
    MeteringPointPeriodKey {
        gsrn: GSRN.into(),
        valid_from: utc(2026, 1, 31, 23, 0),
    }
}

/// Key of Radius's C tariff.
pub fn charge_period_key() -> ChargePeriodKey {
    ChargePeriodKey {
        owner_gln: RADIUS_GLN.into(),
        charge_type: ChargeType::Tariff,
        charge_code: "DT_C_01".into(),
        valid_from: utc(2026, 9, 30, 22, 0),
    }
}

/// Key of a day of Radius's C tariff prices.
pub fn charge_price_key() -> ChargePriceKey {
    ChargePriceKey {
        owner_gln: RADIUS_GLN.into(),
        charge_type: ChargeType::Tariff,
        charge_code: "DT_C_01".into(),
        period_start: utc(2026, 10, 14, 22, 0),
    }
}

/// Key of the metering point's link to Radius's C tariff.
pub fn charge_link_key() -> ChargeLinkKey {
    ChargeLinkKey {
        gsrn: GSRN.into(),
        owner_gln: RADIUS_GLN.into(),
        charge_type: ChargeType::Tariff,
        charge_code: "DT_C_01".into(),
        valid_from: utc(2026, 1, 31, 23, 0),
    }
}

/// Key of a DK2 spot price.
pub fn spot_price_key() -> SpotPriceKey {
    SpotPriceKey {
        price_area: "DK2".into(),
        start: utc(2026, 10, 15, 6, 0),
    }
}

/// Key of a wholesale result series.
pub fn wholesale_result_key() -> WholesaleResultKey {
    WholesaleResultKey {
        grid_area: GRID_AREA.into(),
        transaction_id: "b7a3c1d0-0000-4000-8000-000000000001".into(),
    }
}

/// Key of a month's reconciliation.
pub fn reconciliation_key() -> ReconciliationKey {
    ReconciliationKey {
        grid_area: GRID_AREA.into(),
        month_start: date(2026, 10, 1),
    }
}

/// Key of a daily aggregate.
pub fn daily_aggregate_key() -> DailyAggregateKey {
    DailyAggregateKey {
        gsrn: GSRN.into(),
        local_date: date(2026, 10, 15),
    }
}

/// Key of a month's settlement.
pub fn settlement_month_key() -> SettlementMonthKey {
    SettlementMonthKey {
        gsrn: GSRN.into(),
        month_start: date(2026, 10, 1),
    }
}

/// Key of a dead letter.
pub fn dead_letter_key() -> DeadLetterKey {
    DeadLetterKey {
        source_topic: "afregning.datahub.timeseries-raw.v1".into(),
        source_partition: 3,
        source_offset: 1_234_567,
    }
}

/// Key of an outbound request.
pub fn outbound_request_key() -> OutboundRequestKey {
    OutboundRequestKey {
        request_id: "0d9c6f2e-7b1a-4c3d-9e8f-1a2b3c4d5e6f".into(),
    }
}

/// An hourly reading for a local day (24 positions), with one missing position.
pub fn reading() -> Reading {
    let points = (1..=24)
        .map(|position| ReadingPoint {
            position,
            quantity: (position != 6).then(|| kwh(250 + i64::from(position) * 10)),
            quality: match position {
                6 => Quality::NotAvailable,
                7 => Quality::Estimated,
                _ => Quality::AsProvided,
            },
        })
        .collect();
    Reading {
        gsrn: GSRN.into(),
        metering_point_type: "E17".into(),
        resolution: Resolution::Pt1h,
        period_start: utc(2026, 10, 14, 22, 0),
        period_end: utc(2026, 10, 15, 22, 0),
        registered_at: utc(2026, 10, 16, 3, 12),
        unit: "KWH".into(),
        product: Some("8716867000030".into()),
        business_reason: Some("E23".into()),
        source_message_id: MESSAGE_ID.into(),
        transaction_id: "4413675032_5080574373".into(),
        points,
    }
}

/// The metering point's master data since February.
pub fn metering_point() -> MeteringPoint {
    MeteringPoint {
        gsrn: GSRN.into(),
        metering_point_type: "E17".into(),
        settlement_method: Some(SettlementMethod::NonProfiled),
        grid_area: GRID_AREA.into(),
        price_area: Some("DK2".into()),
        resolution: Resolution::Pt1h,
        energy_supplier_gln: Some(SUPPLIER_GLN.into()),
        supply_start: Some(utc(2026, 1, 31, 23, 0)),
        supply_end: None,
        connection_state: Some("E22".into()),
        valid_from: utc(2026, 1, 31, 23, 0),
        valid_to: None,
        source_message_id: MESSAGE_ID.into(),
    }
}

/// Radius's C tariff (hourly prices, VAT, not a tax).
pub fn charge() -> Charge {
    Charge {
        owner_gln: RADIUS_GLN.into(),
        charge_type: ChargeType::Tariff,
        charge_code: "DT_C_01".into(),
        name: Some("Nettarif C time".into()),
        resolution: Resolution::Pt1h,
        tax_indicator: false,
        vat_class: VatClass::Vat25,
        transparent_invoicing: true,
        valid_from: utc(2026, 9, 30, 22, 0),
        valid_to: Some(utc(2027, 3, 31, 22, 0)),
        source_message_id: MESSAGE_ID.into(),
    }
}

/// One day of Radius's winter C tariff: low 00-06, high 06-17, peak 17-21, high 21-24.
pub fn charge_price() -> ChargePrice {
    let points = (1..=24)
        .map(|position| ChargePricePoint {
            position,
            price: match position {
                1..=6 => dkk(106_175),
                18..=21 => dkk(955_573),
                _ => dkk(318_524),
            },
        })
        .collect();
    ChargePrice {
        owner_gln: RADIUS_GLN.into(),
        charge_type: ChargeType::Tariff,
        charge_code: "DT_C_01".into(),
        resolution: Resolution::Pt1h,
        period_start: utc(2026, 10, 14, 22, 0),
        period_end: utc(2026, 10, 15, 22, 0),
        points,
        source_message_id: MESSAGE_ID.into(),
    }
}

/// The metering point's link to Radius's C tariff.
pub fn charge_link() -> ChargeLink {
    ChargeLink {
        gsrn: GSRN.into(),
        owner_gln: RADIUS_GLN.into(),
        charge_type: ChargeType::Tariff,
        charge_code: "DT_C_01".into(),
        quantity: 1,
        valid_from: utc(2026, 1, 31, 23, 0),
        valid_to: None,
        source_message_id: MESSAGE_ID.into(),
    }
}

/// A DK2 quarter-hour spot price.
pub fn spot_price() -> SpotPrice {
    SpotPrice {
        price_area: "DK2".into(),
        start: utc(2026, 10, 15, 6, 0),
        end: utc(2026, 10, 15, 6, 15),
        resolution: Resolution::Pt15m,
        price_dkk_per_mwh: dkk(812_340_000),
        price_eur_per_mwh: Some(dkk(108_870_000)),
        source: "energidataservice:DayAheadPrices".into(),
        fetched_at: utc(2026, 10, 14, 12, 5),
    }
}

/// An RSM-019 series for Radius's C tariff.
pub fn wholesale_result() -> WholesaleResult {
    WholesaleResult {
        kind: WholesaleResultKind::WholesaleServices,
        business_reason: "D05".into(),
        calculation_version: Some("1045".into()),
        settlement_version: None,
        grid_area: GRID_AREA.into(),
        energy_supplier_gln: Some(SUPPLIER_GLN.into()),
        balance_responsible_gln: None,
        metering_point_type: Some("E17".into()),
        settlement_method: Some("E02".into()),
        charge_owner_gln: Some(RADIUS_GLN.into()),
        charge_type: Some(ChargeType::Tariff),
        charge_code: Some("DT_C_01".into()),
        unit: "KWH".into(),
        currency: Some("DKK".into()),
        resolution: Resolution::Pt1h,
        period_start: utc(2026, 10, 14, 22, 0),
        period_end: utc(2026, 10, 15, 22, 0),
        points: vec![
            WholesaleResultPoint {
                position: 1,
                quantity: Some(kwh(1_234_567)),
                price: Some(dkk(106_175)),
                amount: Some(dkk(131_080_000)),
                quality: Some(Quality::Calculated),
            },
            WholesaleResultPoint {
                position: 2,
                quantity: None,
                price: None,
                amount: None,
                quality: Some(Quality::NotAvailable),
            },
        ],
        source_message_id: MESSAGE_ID.into(),
        transaction_id: "b7a3c1d0-0000-4000-8000-000000000001".into(),
    }
}

/// A reconciliation of one part with one price discrepancy of Radius's C tariff.
pub fn reconciliation() -> Reconciliation {
    Reconciliation {
        grid_area: GRID_AREA.into(),
        month_start: date(2026, 10, 1),
        energy_supplier_gln: SUPPLIER_GLN.into(),
        grid_area_owner_gln: Some(RADIUS_GLN.into()),
        version: 2,
        part: 0,
        parts: 1,
        discrepancy_count: 1,
        calculations: "D05 v1045".into(),
        computed_at: utc(2026, 11, 20, 6, 0),
        discrepancies: vec![Discrepancy {
            seq: 0,
            level: "AMOUNT_PER_CHARGE".into(),
            measure: "PRICE".into(),
            charge_owner_gln: Some(RADIUS_GLN.into()),
            charge_code: Some("DT_C_01".into()),
            charge_type: Some("D03".into()),
            resolution: "PT1H".into(),
            metering_point_type: Some("E17".into()),
            settlement_method: Some("E02".into()),
            time: utc(2026, 10, 14, 22, 0),
            datahub: Some(dkk(106_175)),
            ours: Some(dkk(106_000)),
            difference: dkk(175),
            metering_points: GSRN.into(),
            calculation: Some("D05 v1045".into()),
        }],
    }
}

/// The reading joined with the metering point.
pub fn enriched_reading() -> EnrichedReading {
    EnrichedReading {
        reading: reading(),
        grid_area: GRID_AREA.into(),
        price_area: Some("DK2".into()),
        settlement_method: Some(SettlementMethod::NonProfiled),
        energy_supplier_gln: Some(SUPPLIER_GLN.into()),
        master_data_valid_from: utc(2026, 1, 31, 23, 0),
    }
}

/// The day's aggregate of the reading (one position missing: incomplete).
pub fn daily_aggregate() -> DailyAggregate {
    let reading = reading();
    let hours: Vec<HourlyEnergy> = reading
        .points
        .iter()
        .filter_map(|p| {
            p.quantity.map(|q| HourlyEnergy {
                hour_start: reading.period_start
                    + chrono::TimeDelta::hours(i64::from(p.position - 1)),
                kwh: q,
                positions: 1,
                spot_price_dkk_per_kwh: Some(dkk(812_340)),
            })
        })
        .collect();
    let total: Decimal = hours.iter().map(|h| h.kwh).sum();
    DailyAggregate {
        gsrn: GSRN.into(),
        local_date: date(2026, 10, 15),
        day_start: reading.period_start,
        day_end: reading.period_end,
        grid_area: GRID_AREA.into(),
        price_area: Some("DK2".into()),
        resolution: Resolution::Pt1h,
        tariff_periods: vec![
            TariffPeriodEnergy {
                tariff_period: "low".into(),
                kwh: kwh(1_400),
            },
            TariffPeriodEnergy {
                tariff_period: "high".into(),
                kwh: total - kwh(1_400) - kwh(1_780),
            },
            TariffPeriodEnergy {
                tariff_period: "peak".into(),
                kwh: kwh(1_780),
            },
        ],
        hours,
        total_kwh: total,
        spot_cost_dkk: None,
        expected_positions: 24,
        received_positions: 23,
        complete: false,
        quality_counts: vec![
            QualityCount {
                quality: Quality::AsProvided,
                positions: 22,
            },
            QualityCount {
                quality: Quality::NotAvailable,
                positions: 1,
            },
            QualityCount {
                quality: Quality::Estimated,
                positions: 1,
            },
        ],
        version: 2,
        computed_at: utc(2026, 10, 16, 3, 13),
    }
}

fn lines(version: i64, sign: i64) -> Vec<SettlementLine> {
    let key = |component: &str| format!("{GSRN}:2026-10:{component}:v{version}");
    vec![
        SettlementLine {
            component: SettlementComponent::SpotEnergy,
            description: "Elspot DK2".into(),
            charge_owner_gln: None,
            charge_type: None,
            charge_code: None,
            quantity: kwh(sign * 250_000),
            quantity_unit: "KWH".into(),
            unit_price: dkk(812_340),
            amount: dkk(sign * 203_085_000),
            vat_class: VatClass::Vat25,
            version,
            idempotency_key: key("spot"),
        },
        SettlementLine {
            component: SettlementComponent::GridTariff,
            description: "Nettarif C time".into(),
            charge_owner_gln: Some(RADIUS_GLN.into()),
            charge_type: Some(ChargeType::Tariff),
            charge_code: Some("DT_C_01".into()),
            quantity: kwh(sign * 250_000),
            quantity_unit: "KWH".into(),
            unit_price: dkk(318_524),
            amount: dkk(sign * 79_631_000),
            vat_class: VatClass::Vat25,
            version,
            idempotency_key: key("grid:DT_C_01"),
        },
        SettlementLine {
            component: SettlementComponent::Vat,
            description: "Moms 25 %".into(),
            charge_owner_gln: None,
            charge_type: None,
            charge_code: None,
            quantity: dkk(sign * 282_716_000),
            quantity_unit: "DKK".into(),
            unit_price: dkk(250_000),
            amount: dkk(sign * 70_679_000),
            vat_class: VatClass::NoVat,
            version,
            idempotency_key: key("vat"),
        },
    ]
}

/// Version 3 of October's provisional settlement.
pub fn provisional_settlement() -> ProvisionalSettlement {
    ProvisionalSettlement {
        gsrn: GSRN.into(),
        month_start: date(2026, 10, 1),
        grid_area: GRID_AREA.into(),
        energy_supplier_gln: Some(SUPPLIER_GLN.into()),
        version: 3,
        lines: lines(3, 1),
        total_excl_vat: dkk(282_716_000),
        vat_amount: dkk(70_679_000),
        total_incl_vat: dkk(353_395_000),
        days_settled: 15,
        days_in_month: 31,
        idempotency_key: format!("{GSRN}:2026-10:v3"),
        computed_at: utc(2026, 10, 16, 3, 14),
    }
}

/// A credit note reversing October's first statement.
pub fn settlement_statement() -> SettlementStatement {
    SettlementStatement {
        statement_id: format!("{GSRN}:2026-10:credit:1"),
        kind: StatementKind::CreditNote,
        corrects_statement_id: Some(format!("{GSRN}:2026-10:1")),
        gsrn: GSRN.into(),
        month_start: date(2026, 10, 1),
        grid_area: GRID_AREA.into(),
        energy_supplier_gln: None,
        version: 2,
        lines: lines(1, -1),
        total_excl_vat: dkk(-282_716_000),
        vat_amount: dkk(-70_679_000),
        total_incl_vat: dkk(-353_395_000),
        currency: "DKK".into(),
        idempotency_key: format!("{GSRN}:2026-10:credit:1"),
        issued_at: utc(2026, 12, 2, 8, 0),
    }
}

/// A raw series that did not parse.
pub fn dead_letter() -> DeadLetter {
    DeadLetter {
        source_topic: "afregning.datahub.timeseries-raw.v1".into(),
        source_partition: 3,
        source_offset: 1_234_567,
        source_timestamp: Some(utc(2026, 10, 16, 3, 12)),
        source_key: Some(b"\x00\x00\x00\x00\x01key".to_vec()),
        payload: Some(br#"{"NotifyValidatedMeasureData_MarketDocument": {"#.to_vec()),
        source_message_id: Some(MESSAGE_ID.into()),
        component: "validate".into(),
        error_class: ErrorClass::Undecodable,
        reason: "EOF while parsing an object at line 1 column 48".into(),
        failed_at: utc(2026, 10, 16, 3, 12),
        attempts: 1,
    }
}

/// An RSM-016 request for October's aggregations.
pub fn outbound_request() -> OutboundRequest {
    OutboundRequest {
        request_id: "0d9c6f2e-7b1a-4c3d-9e8f-1a2b3c4d5e6f".into(),
        document_type: OutboundDocumentType::RequestAggregatedMeasureData,
        body: r#"{"RequestAggregatedMeasureData_MarketDocument":{}}"#.into(),
        requested_by: "operator:kim".into(),
        requested_at: utc(2026, 11, 3, 9, 30),
        reason: None,
    }
}

/// DataHub's acceptance of the request.
pub fn outbound_response() -> OutboundResponse {
    OutboundResponse {
        request_id: "0d9c6f2e-7b1a-4c3d-9e8f-1a2b3c4d5e6f".into(),
        status: OutboundStatus::Accepted,
        http_status: Some(202),
        body: None,
        correlation_id: Some("6b3f1e2a-corr".into()),
        attempts: 1,
        responded_at: utc(2026, 11, 3, 9, 30),
    }
}

/// A raw CIM JSON document as the connector stores it.
pub fn cim_json() -> CimJson {
    CimJson(br#"{"NotifyValidatedMeasureData_MarketDocument":{"mRID":"8b0a5e4f2c1d4e7f9a3b6c5d4e3f2a1b"}}"#.to_vec())
}

//! Shared test helpers: reading `../shared/cim/` files, sample documents of every type, and
//! the proptest strategy for RSM-012 bundles.
#![allow(dead_code)]

pub mod mutation;

use std::path::PathBuf;

use afregning_cim::answer::{
    Confirmation, ConfirmedRecord, RejectSeries, RejectedRecord, RejectedSeries, Rejection,
};
use afregning_cim::codes::{
    ChargeKind, Currency, MessageType, MeteringPointType, ProcessType, ProcessVariant, Quality,
    ReasonCode, Role, SettlementMethod, Unit,
};
use afregning_cim::resolution::local_midnight_utc;
use afregning_cim::rsm012::{NotifyValidatedMeasureData, Period, Series};
use afregning_cim::rsm014::{AggregatedPeriod, AggregatedSeries, NotifyAggregatedMeasureData};
use afregning_cim::rsm019::{
    NotifyWholesaleServices, WholesalePeriod, WholesalePoint, WholesaleSeries,
};
use afregning_cim::{
    AreaId, DATAHUB_GLN, Document, Gsrn, Header, Participant, PartyId, Point, Reason, Resolution,
    TimeInterval,
};
use chrono::{DateTime, Datelike, Days, Months, NaiveDate, TimeZone, Utc};
use proptest::prelude::*;
use rust_decimal::Decimal;

pub const SUPPLIER_GLN: &str = "5799999933318";

pub fn shared(path: &str) -> Vec<u8> {
    let full = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/cim")
        .join(path);
    std::fs::read(&full).unwrap_or_else(|e| panic!("cannot read {}: {e}", full.display()))
}

pub fn fixture(path: &str) -> Vec<u8> {
    let full = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(path);
    std::fs::read(&full).unwrap_or_else(|e| panic!("cannot read {}: {e}", full.display()))
}

pub fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .expect("rfc3339")
        .with_timezone(&Utc)
}

/// A header from DataHub (DGL or DDZ) to the supplier, or from the supplier to DataHub.
pub fn header(
    document_type: MessageType,
    process: ProcessType,
    from_datahub: bool,
    datahub_role: Role,
    reason: Option<ReasonCode>,
) -> Header {
    let datahub = Participant {
        id: PartyId::gln(DATAHUB_GLN),
        role: datahub_role,
    };
    let supplier = Participant {
        id: PartyId::gln(SUPPLIER_GLN),
        role: Role::ENERGY_SUPPLIER,
    };
    let (sender, receiver) = if from_datahub {
        (datahub, supplier)
    } else {
        (supplier, datahub)
    };
    Header {
        message_id: "MSG-0001".to_owned(),
        business_sector: Some(afregning_cim::codes::BusinessSector::ELECTRICITY),
        created: t("2024-07-30T07:30:54Z"),
        process_type: process,
        reason_code: reason,
        receiver,
        sender,
        document_type,
    }
}

pub fn gsrn(n: u32) -> Gsrn {
    Gsrn::with_check_digit(&format!("57131300000{n:06}")).expect("gsrn")
}

pub fn day(date: NaiveDate) -> TimeInterval {
    TimeInterval {
        start: local_midnight_utc(date).expect("midnight"),
        end: local_midnight_utc(date + Days::new(1)).expect("midnight"),
    }
}

pub fn sample_rsm014() -> NotifyAggregatedMeasureData {
    let interval = day(NaiveDate::from_ymd_opt(2024, 3, 31).expect("date"));
    NotifyAggregatedMeasureData {
        header: header(
            MessageType::AGGREGATED_METERED_DATA,
            ProcessType::BALANCE_FIXING,
            true,
            Role::METERED_DATA_ADMINISTRATOR,
            None,
        ),
        series: vec![AggregatedSeries {
            transaction_id: "tx-1".to_owned(),
            version: Some("1".to_owned()),
            grid_area: Some(AreaId::grid_area("804")),
            balance_responsible: None,
            energy_supplier: Some(PartyId::gln(SUPPLIER_GLN)),
            settlement_method: Some(SettlementMethod::NonProfiled),
            original_transaction_id: None,
            metering_point_type: MeteringPointType::Consumption,
            product: Some("8716867000030".to_owned()),
            unit: Unit::KWH,
            settlement_version: Some(ProcessVariant::FIRST_CORRECTION),
            asset_type: None,
            bidding_zone: None,
            in_area: None,
            out_area: None,
            registered: None,
            period: AggregatedPeriod {
                resolution: Resolution::QuarterHour,
                interval,
                points: (1..=92)
                    .map(|p| Point {
                        position: p,
                        quality: if p == 3 {
                            Quality::Estimated
                        } else {
                            Quality::AsProvided
                        },
                        quantity: Some(Decimal::new(i64::from(p) * 1234, 3)),
                    })
                    .collect(),
            },
        }],
    }
}

pub fn sample_rsm019() -> NotifyWholesaleServices {
    let start = local_midnight_utc(NaiveDate::from_ymd_opt(2024, 1, 1).expect("date")).expect("t");
    let end = local_midnight_utc(NaiveDate::from_ymd_opt(2024, 2, 1).expect("date")).expect("t");
    NotifyWholesaleServices {
        header: header(
            MessageType::AGGREGATED_METERED_DATA,
            ProcessType::WHOLESALE_FIXING,
            true,
            Role::METERING_POINT_ADMINISTRATOR,
            None,
        ),
        series: vec![WholesaleSeries {
            transaction_id: "tx-19".to_owned(),
            version: Some("3".to_owned()),
            settlement_version: None,
            original_transaction_id: None,
            metering_point_type: Some(MeteringPointType::Consumption),
            settlement_method: Some(SettlementMethod::Flex),
            charge_code: Some("40000".to_owned()),
            charge_kind: Some(ChargeKind::Tariff),
            charge_owner: Some(PartyId::gln("5790000432752")),
            grid_area: Some(AreaId::grid_area("804")),
            energy_supplier: PartyId::gln(SUPPLIER_GLN),
            product: Some("5790001330590".to_owned()),
            unit: Unit::KWH,
            price_unit: Some(Unit::KWH),
            currency: Some(Currency::DKK),
            asset_type: None,
            bidding_zone: None,
            registered: None,
            period: WholesalePeriod {
                resolution: Resolution::Day,
                interval: TimeInterval { start, end },
                points: (1..=31)
                    .map(|p| WholesalePoint {
                        amount: Some(Decimal::new(-1500 + i64::from(p), 2)),
                        quantity: Some(Decimal::new(i64::from(p) * 1000, 3)),
                        position: p,
                        price: Some(Decimal::new(123_456, 6)),
                        quality: Some(Quality::Calculated),
                    })
                    .collect(),
            },
        }],
    }
}

pub fn sample_confirmation() -> Confirmation {
    Confirmation {
        header: header(
            MessageType::CONFIRMATION_OF_START_OF_SUPPLY,
            ProcessType::CHANGE_OF_SUPPLIER,
            true,
            Role::METERING_POINT_ADMINISTRATOR,
            Some(ReasonCode::ACCEPTED),
        ),
        records: vec![ConfirmedRecord {
            transaction_id: "dh-1".to_owned(),
            business_process_id: Some("bp-1".to_owned()),
            metering_point: gsrn(1),
            original_transaction_id: Some("our-1".to_owned()),
        }],
    }
}

pub fn sample_rejection() -> Rejection {
    Rejection {
        header: header(
            MessageType::CONFIRMATION_OF_START_OF_SUPPLY,
            ProcessType::CHANGE_OF_SUPPLIER,
            true,
            Role::METERING_POINT_ADMINISTRATOR,
            Some(ReasonCode::REJECTED),
        ),
        records: vec![RejectedRecord {
            transaction_id: "dh-2".to_owned(),
            business_process_id: None,
            metering_point: Some(gsrn(2)),
            original_transaction_id: Some("our-2".to_owned()),
            reasons: vec![Reason {
                code: ReasonCode::parse("E10").unwrap_or(ReasonCode::REJECTED),
                text: Some("Metering point not identifiable".to_owned()),
            }],
        }],
    }
}

/// An RSM-003 BRS-003 rollback of DataHub's process `bp-1`.
pub fn sample_rsm003() -> afregning_cim::rsm003::RequestReallocateChangeOfSupplier {
    afregning_cim::rsm003::RequestReallocateChangeOfSupplier {
        header: header(
            MessageType::REQUEST_REALLOCATE_CHANGE_OF_SUPPLIER,
            ProcessType::ROLLBACK_CHANGE_OF_SUPPLIER,
            false,
            Role::METERING_POINT_ADMINISTRATOR,
            None,
        ),
        records: vec![afregning_cim::rsm003::Reallocation {
            transaction_id: "our-3".to_owned(),
            business_process_id: Some("bp-1".to_owned()),
            metering_point: gsrn(3),
            start: t("2024-07-31T22:00:00Z"),
        }],
    }
}

pub fn sample_reject_series(with_metering_point: bool) -> RejectSeries {
    RejectSeries {
        header: header(
            MessageType::ACKNOWLEDGEMENT,
            ProcessType::PERIODIC_METERING,
            true,
            Role::METERED_DATA_ADMINISTRATOR,
            Some(ReasonCode::REJECTED),
        ),
        series: vec![RejectedSeries {
            transaction_id: "dh-3".to_owned(),
            metering_point: with_metering_point.then(|| gsrn(3)),
            original_transaction_id: Some("our-3".to_owned()),
            reasons: vec![Reason {
                code: ReasonCode::parse("E0H").unwrap_or(ReasonCode::REJECTED),
                text: None,
            }],
        }],
    }
}

/// A metered-data document for a set of series (DataHub → supplier).
pub fn rsm012(series: Vec<Series>) -> NotifyValidatedMeasureData {
    NotifyValidatedMeasureData {
        header: header(
            MessageType::VALIDATED_METERED_DATA,
            ProcessType::PERIODIC_METERING,
            true,
            Role::METERED_DATA_ADMINISTRATOR,
            None,
        ),
        series,
    }
}

/// A full day of quarter-hours for one metering point.
pub fn full_day_series(n: u32, date: NaiveDate) -> Series {
    let interval = day(date);
    let count = Resolution::QuarterHour
        .positions(interval.start, interval.end)
        .expect("a day");
    Series {
        transaction_id: format!("tx-{n}"),
        metering_point: gsrn(n),
        metering_point_type: MeteringPointType::Consumption,
        original_transaction_id: None,
        product: Some("8716867000030".to_owned()),
        unit: Unit::KWH,
        registered: t("2024-07-30T07:30:54Z"),
        in_area: None,
        out_area: None,
        period: Period {
            resolution: Resolution::QuarterHour,
            interval,
            points: (1..=count)
                .map(|p| Point {
                    position: p,
                    quality: if p % 17 == 0 {
                        Quality::Estimated
                    } else {
                        Quality::AsProvided
                    },
                    quantity: Some(Decimal::new(i64::from((n * 31 + p * 7) % 1000), 3)),
                })
                .collect(),
        },
    }
}

/// One sample of every document type, for schema and round-trip tests.
pub fn samples() -> Vec<Document> {
    let date = NaiveDate::from_ymd_opt(2021, 10, 31).expect("date");
    let mut out = vec![
        Document::NotifyValidatedMeasureData(rsm012(vec![
            full_day_series(1, date),
            full_day_series(2, date),
        ])),
        Document::NotifyAggregatedMeasureData(sample_rsm014()),
        Document::NotifyWholesaleServices(sample_rsm019()),
        Document::ConfirmRequestChangeOfSupplier(sample_confirmation()),
        Document::RejectRequestChangeOfSupplier(sample_rejection()),
        Document::ConfirmRequestEndOfSupply(sample_confirmation()),
        Document::RejectRequestEndOfSupply(sample_rejection()),
        Document::ConfirmRequestReallocateChangeOfSupplier(sample_confirmation()),
        Document::RejectRequestReallocateChangeOfSupplier(sample_rejection()),
        Document::ConfirmRequestChangeCustomerCharacteristics(sample_confirmation()),
        Document::RejectRequestChangeCustomerCharacteristics(sample_rejection()),
        Document::RequestReallocateChangeOfSupplier(sample_rsm003()),
        Document::RejectRequestValidatedMeasureData(sample_reject_series(true)),
        Document::RejectRequestAggregatedMeasureData(sample_reject_series(false)),
        Document::RejectRequestWholesaleSettlement(sample_reject_series(false)),
    ];
    for path in [
        "rsm-001-change-of-supplier/Request Change of Supplier.json",
        "rsm-015/ValidRequestValidatedMeasurementsWithTwoTransactions.json",
        "rsm-016/RequestAggregatedMeasureData.json",
        "rsm-017/RequestWholesaleSettlement2ChargeTypes.json",
        "rsm-034-notify-price-list/ExpectedOutputChargeCimJsonSerializerChargeInformation.blob",
        "rsm-034-notify-price-list/ExpectedOutputChargeCimJsonSerializerChargePrices.blob",
    ] {
        out.push(afregning_cim::parse(&shared(path)).expect("real example parses"));
    }
    out.push(
        afregning_cim::parse(&fixture("rsm022-AccountingPointCharacteristics.json"))
            .expect("fixture"),
    );
    out.push(
        afregning_cim::parse(&fixture("rsm027-RequestChangeCustomerCharacteristics.json"))
            .expect("fixture"),
    );
    // RSM-004 and RSM-005 requests have no example at all: built here.
    let generic = format!(
        r#"{{"GenericNotification_MarketDocument": {{"mRID": "g1", "type": {{"value": "E44"}},
        "process.processType": {{"value": "E65"}}, "businessSector.type": {{"value": "23"}},
        "sender_MarketParticipant.mRID": {{"codingScheme": "A10", "value": "{DATAHUB_GLN}"}},
        "sender_MarketParticipant.marketRole.type": {{"value": "DDZ"}},
        "receiver_MarketParticipant.mRID": {{"codingScheme": "A10", "value": "{SUPPLIER_GLN}"}},
        "receiver_MarketParticipant.marketRole.type": {{"value": "DDQ"}},
        "createdDateTime": "2024-07-30T07:30:54Z",
        "MktActivityRecord": [{{"mRID": "r1", "validityStart_DateAndOrTime.dateTime": "2024-07-31T22:00:00Z",
        "marketEvaluationPoint.mRID": {{"codingScheme": "A10", "value": "571313000000002000"}}}}]}}}}"#
    );
    out.push(afregning_cim::parse(generic.as_bytes()).expect("generic notification"));
    let end = generic
        .replace("GenericNotification", "RequestEndOfSupply")
        .replace("\"E44\"", "\"432\"")
        .replace("\"E65\"", "\"E20\"")
        .replace("validityStart_DateAndOrTime", "end_DateAndOrTime")
        .replace("\"DDZ\"", "\"XXX\"")
        .replace("\"DDQ\"", "\"DDZ\"")
        .replace("\"XXX\"", "\"DDQ\"");
    out.push(afregning_cim::parse(end.as_bytes()).expect("end of supply"));
    let mut links =
        String::from_utf8(fixture("rsm031-NotifyBillingMasterData.json")).expect("utf-8");
    links = links.replace("TestRecipient1111", SUPPLIER_GLN);
    for n in (1..=10).rev() {
        links = links.replace(
            &format!("\"MeteringPoint{n}\""),
            &format!("\"5713130000000020{n:02}\""),
        );
    }
    out.push(afregning_cim::parse(links.as_bytes()).expect("charge links"));
    out
}

// ---- proptest strategies for RSM-012 ----

/// A Danish day's interval, biased towards DST days.
pub fn arb_day() -> impl Strategy<Value = NaiveDate> {
    prop_oneof![
        Just(NaiveDate::from_ymd_opt(2024, 3, 31).expect("spring")),
        Just(NaiveDate::from_ymd_opt(2021, 10, 31).expect("autumn")),
        Just(NaiveDate::from_ymd_opt(2025, 10, 26).expect("autumn")),
        (0u64..3650)
            .prop_map(|d| NaiveDate::from_ymd_opt(2020, 1, 1).expect("date") + Days::new(d)),
    ]
}

pub fn arb_quality() -> impl Strategy<Value = Quality> {
    proptest::sample::select(Quality::ALL.to_vec())
}

pub fn arb_quantity() -> impl Strategy<Value = Option<Decimal>> {
    prop_oneof![
        1 => Just(None),
        6 => (0i64..10_000_000_000, 0u32..7).prop_map(|(m, scale)| Some(Decimal::new(m, scale))),
    ]
}

/// A period in one of the four resolutions: a day for PT15M/PT1H/P1D, a year of months for P1M.
pub fn arb_period() -> impl Strategy<Value = (Resolution, TimeInterval)> {
    (
        proptest::sample::select(Resolution::ALL.to_vec()),
        arb_day(),
        1u32..4,
    )
        .prop_map(|(resolution, date, days)| match resolution {
            Resolution::Month => {
                let first = date.with_day0(0).expect("first");
                let start = local_midnight_utc(first).expect("t");
                let end = local_midnight_utc(first + Months::new(days * 3)).expect("t");
                (resolution, TimeInterval { start, end })
            }
            _ => {
                let start = local_midnight_utc(date).expect("t");
                let end = local_midnight_utc(date + Days::new(u64::from(days))).expect("t");
                (resolution, TimeInterval { start, end })
            }
        })
}

/// A series with sparse points (a random subset of positions, at least one).
pub fn arb_series(n: u32) -> impl Strategy<Value = Series> {
    (
        arb_period(),
        proptest::sample::select(MeteringPointType::ALL.to_vec()),
        proptest::sample::select(vec![Unit::KWH, Unit::MWH, Unit::K3, Unit::KWT]),
        any::<bool>(),
    )
        .prop_flat_map(move |((resolution, interval), mp_type, unit, original)| {
            let count = resolution
                .positions(interval.start, interval.end)
                .expect("whole steps");
            let positions =
                proptest::sample::subsequence((1..=count).collect::<Vec<_>>(), 1..=count as usize);
            (
                positions,
                proptest::collection::vec((arb_quality(), arb_quantity()), count as usize),
            )
                .prop_map(move |(positions, values)| Series {
                    transaction_id: format!("tx-{n}"),
                    metering_point: gsrn(n),
                    metering_point_type: mp_type,
                    original_transaction_id: original.then(|| format!("orig-{n}")),
                    product: Some("8716867000030".to_owned()),
                    unit,
                    registered: Utc
                        .with_ymd_and_hms(2024, 7, 30, 7, 30, 54)
                        .single()
                        .expect("t"),
                    in_area: None,
                    out_area: None,
                    period: Period {
                        resolution,
                        interval,
                        points: positions
                            .iter()
                            .zip(&values)
                            .map(|(p, (quality, quantity))| Point {
                                position: *p,
                                quality: *quality,
                                quantity: *quantity,
                            })
                            .collect(),
                    },
                })
        })
}

pub fn arb_rsm012() -> impl Strategy<Value = NotifyValidatedMeasureData> {
    (1usize..4)
        .prop_flat_map(|n| {
            (0..n)
                .map(|i| arb_series(u32::try_from(i).unwrap_or(0) + 1).boxed())
                .collect::<Vec<_>>()
        })
        .prop_map(rsm012)
}

//! RSM-012 parse throughput on a 2,000-series PT15M bundle (one day, 96 points per series, as
//! DataHub bundles), in MB/s and points/s, beside `serde_json::from_slice::<Value>` on the same
//! bytes as the baseline, and the strict reader alone (no fast first attempt, decision 0152)
//! beside it. Run: `cargo bench -p afregning-cim --bench parse`.

use std::hint::black_box;

use afregning_cim::codes::{MessageType, MeteringPointType, ProcessType, Quality, Role, Unit};
use afregning_cim::resolution::local_midnight_utc;
use afregning_cim::rsm012::{self, NotifyValidatedMeasureData, Period, Series};
use afregning_cim::{
    DATAHUB_GLN, Gsrn, Header, Participant, PartyId, Point, Resolution, TimeInterval,
};
use chrono::{Days, NaiveDate, TimeZone, Utc};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rust_decimal::Decimal;

fn bundle(series: u32) -> Vec<u8> {
    let date = NaiveDate::from_ymd_opt(2024, 6, 29).expect("date");
    let start = local_midnight_utc(date).expect("t");
    let end = local_midnight_utc(date + Days::new(1)).expect("t");
    let doc = NotifyValidatedMeasureData {
        header: Header {
            message_id: "bench".to_owned(),
            business_sector: None,
            created: Utc
                .with_ymd_and_hms(2024, 7, 1, 6, 0, 0)
                .single()
                .expect("t"),
            process_type: ProcessType::PERIODIC_METERING,
            reason_code: None,
            receiver: Participant {
                id: PartyId::gln("5799999933318"),
                role: Role::ENERGY_SUPPLIER,
            },
            sender: Participant {
                id: PartyId::gln(DATAHUB_GLN),
                role: Role::METERED_DATA_ADMINISTRATOR,
            },
            document_type: MessageType::VALIDATED_METERED_DATA,
        },
        series: (1..=series)
            .map(|n| Series {
                transaction_id: format!("{n:032x}"),
                metering_point: Gsrn::with_check_digit(&format!("57131300000{n:06}"))
                    .expect("gsrn"),
                metering_point_type: MeteringPointType::Consumption,
                original_transaction_id: None,
                product: Some("8716867000030".to_owned()),
                unit: Unit::KWH,
                registered: Utc
                    .with_ymd_and_hms(2024, 6, 30, 3, 0, 0)
                    .single()
                    .expect("t"),
                in_area: None,
                out_area: None,
                period: Period {
                    resolution: Resolution::QuarterHour,
                    interval: TimeInterval { start, end },
                    points: (1..=96)
                        .map(|p| Point {
                            position: p,
                            quality: if p % 11 == 0 {
                                Quality::Estimated
                            } else {
                                Quality::AsProvided
                            },
                            quantity: Some(Decimal::new(
                                i64::from((n * 7919 + p * 104_729) % 2_000),
                                3,
                            )),
                        })
                        .collect(),
                },
            })
            .collect(),
    };
    rsm012::write(&doc)
}

fn parse(c: &mut Criterion) {
    let bytes = bundle(2_000);
    let points = 2_000u64 * 96;
    eprintln!("bundle: {} bytes, {points} points", bytes.len());
    let mut group = c.benchmark_group("rsm012_2000_series_pt15m");
    group.sample_size(20);
    group.throughput(Throughput::Bytes(bytes.len() as u64));
    group.bench_function("afregning_cim::parse (bytes)", |b| {
        b.iter(|| afregning_cim::parse(black_box(&bytes)).expect("parses"))
    });
    group.bench_function(
        "afregning_cim::parse_strict, no fast attempt (bytes)",
        |b| b.iter(|| afregning_cim::parse_strict(black_box(&bytes)).expect("parses")),
    );
    group.bench_function("serde_json::Value baseline (bytes)", |b| {
        b.iter(|| serde_json::from_slice::<serde_json::Value>(black_box(&bytes)).expect("json"))
    });
    group.throughput(Throughput::Elements(points));
    group.bench_function("afregning_cim::parse (points)", |b| {
        b.iter(|| afregning_cim::parse(black_box(&bytes)).expect("parses"))
    });
    group.bench_function("serde_json::Value baseline (points)", |b| {
        b.iter(|| serde_json::from_slice::<serde_json::Value>(black_box(&bytes)).expect("json"))
    });
    group.finish();
}

criterion_group!(benches, parse);
criterion_main!(benches);

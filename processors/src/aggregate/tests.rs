use afregning_settlement::calendar::local_day_bounds;
use afregning_topology::records::{
    DailyAggregate, MeteringPointKey, Quality, ReadingPoint, Resolution, SpotPrice, examples,
};
use afregning_topology::{Catalogue, TopologySettings};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;

use super::*;
use crate::runtime::OutputRecord;
use crate::runtime::testing::MemoryTask;
use crate::shared::Wire;
use crate::testdata::{at, avro_input};

const ENRICHED: &str = "afregning.metering.enriched-readings.v1";

fn task() -> MemoryTask<Aggregate> {
    let topics = Topics::new(
        Catalogue::new(TopologySettings::default()).expect("catalogue"),
        Wire::local(),
    );
    MemoryTask::new(Aggregate::new(topics, AggregateConfig::default()), 0)
}

fn date() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 3, 29).expect("the spring DST day")
}

fn enriched(offset: i64, registered: &str, kwh: Decimal) -> InputRecord {
    let (start, end) = local_day_bounds(date());
    let mut value = examples::enriched_reading();
    value.reading.resolution = Resolution::Pt15m;
    value.reading.period_start = start;
    value.reading.period_end = end;
    value.reading.registered_at = at(registered);
    value.reading.points = (1..=92)
        .map(|position| ReadingPoint {
            position,
            quantity: Some(kwh),
            quality: Quality::AsProvided,
        })
        .collect();
    value.price_area = Some("DK2".into());
    avro_input(
        ENRICHED,
        offset,
        &MeteringPointKey {
            gsrn: value.reading.gsrn.clone(),
        },
        &value,
        at("2026-03-30T06:00:00Z"),
    )
}

fn aggregate_of(out: &OutputRecord) -> DailyAggregate {
    Wire::local()
        .decode(out.value.as_deref().expect("value"))
        .expect("decodes")
}

#[test]
fn a_day_is_aggregated_once_and_a_correction_replaces_it_with_the_next_version() {
    let mut t = task();
    let now = at("2026-03-30T06:00:00Z");
    let out = t
        .process(&[enriched(0, "2026-03-30T05:00:00Z", dec!(0.100))], now)
        .expect("ok");
    assert_eq!(out.len(), 1);
    let first = aggregate_of(&out[0]);
    assert_eq!(first.version, 1);
    assert_eq!(first.expected_positions, 92);
    assert!(first.complete);
    assert_eq!(first.total_kwh, dec!(9.200));
    assert_eq!(first.spot_cost_dkk, None, "no spot prices yet");

    // The same reading again (a replay) changes nothing and emits nothing.
    assert!(
        t.process(&[enriched(1, "2026-03-30T05:00:00Z", dec!(0.100))], now)
            .expect("ok")
            .is_empty()
    );
    // A correction replaces every position: 92 x 0.2, not 9.2 + 18.4.
    let out = t
        .process(&[enriched(2, "2026-03-31T05:00:00Z", dec!(0.200))], now)
        .expect("ok");
    let second = aggregate_of(&out[0]);
    assert_eq!(second.version, 2);
    assert_eq!(second.total_kwh, dec!(18.400));
    assert_eq!(
        out[0].idempotency_key,
        format!("daily:{}:2026-03-29:2", second.gsrn)
    );
    // The original arriving after its correction is ignored.
    assert!(
        t.process(&[enriched(3, "2026-03-30T05:00:00Z", dec!(0.100))], now)
            .expect("ok")
            .is_empty()
    );
}

#[test]
fn spot_prices_arriving_later_recompute_the_days_spot_cost_at_the_next_tick() {
    let mut t = task();
    let now = at("2026-03-30T06:00:00Z");
    t.process(&[enriched(0, "2026-03-30T05:00:00Z", dec!(0.100))], now)
        .expect("ok");
    let (start, end) = local_day_bounds(date());
    let wire = Wire::local();
    let mut changes = Vec::new();
    let mut at_ = start;
    while at_ < end {
        let key = SpotPriceKey {
            price_area: "DK2".into(),
            start: at_,
        };
        let value = SpotPrice {
            price_area: "DK2".into(),
            start: at_,
            end: at_ + chrono::Duration::minutes(15),
            resolution: Resolution::Pt15m,
            price_dkk_per_mwh: dec!(1000),
            price_eur_per_mwh: None,
            source: "test".into(),
            fetched_at: now,
        };
        changes.push(GlobalChange {
            table: SPOT_PRICES_TABLE.into(),
            key: wire.encode(&key).expect("key"),
            value: Some(wire.encode(&value).expect("value")),
            partition: 0,
            offset: changes.len() as i64,
        });
        at_ += chrono::Duration::minutes(15);
    }
    for change in changes {
        assert!(t.global_change(change, now).expect("ok").is_empty());
    }
    let out = t.tick(now).expect("tick");
    assert_eq!(out.len(), 1, "one recomputation for 92 price changes");
    let day = aggregate_of(&out[0]);
    assert_eq!(day.version, 2);
    // 9.2 kWh at 1 DKK/kWh.
    assert_eq!(day.spot_cost_dkk, Some(dec!(9.200000)));
    assert!(
        t.tick(now).expect("tick").is_empty(),
        "markers are consumed"
    );
}

#[test]
fn an_undecodable_record_is_dead_lettered() {
    let mut t = task();
    let mut record = enriched(0, "2026-03-30T05:00:00Z", dec!(0.1));
    record.value = Some(b"nope".to_vec());
    let out = t
        .process(&[record], at("2026-03-30T06:00:00Z"))
        .expect("ok");
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].topic, "afregning.ops.dead-letters.v1");
}

use afregning_topology::records::{
    DeadLetter, EnrichedReading, ErrorClass, MeteringPointPeriodKey, examples,
};
use afregning_topology::{Catalogue, TopologySettings};

use super::*;
use crate::runtime::testing::MemoryTask;
use crate::shared::Wire;
use crate::testdata::{at, avro_input};

const READINGS: &str = "afregning.metering.readings.v1";
const POINTS: &str = "afregning.metering.metering-points.v1";

fn task() -> MemoryTask<Enrich> {
    let topics = Topics::new(
        Catalogue::new(TopologySettings::default()).expect("catalogue"),
        Wire::local(),
    );
    let config = EnrichConfig {
        rules: EnrichRules {
            supplier_gln: examples::metering_point().energy_supplier_gln,
            ..EnrichRules::default()
        },
        pending_timeout: chrono::Duration::hours(1),
        ..EnrichConfig::default()
    };
    MemoryTask::new(Enrich::new(topics, config), 0)
}

fn reading_record(offset: i64) -> InputRecord {
    let reading = examples::reading();
    avro_input(
        READINGS,
        offset,
        &MeteringPointKey {
            gsrn: reading.gsrn.clone(),
        },
        &reading,
        at("2026-10-16T04:00:00Z"),
    )
}

fn master_record(offset: i64) -> InputRecord {
    let mp = examples::metering_point();
    avro_input(
        POINTS,
        offset,
        &MeteringPointPeriodKey {
            gsrn: mp.gsrn.clone(),
            valid_from: mp.valid_from,
        },
        &mp,
        at("2026-10-16T04:30:00Z"),
    )
}

#[test]
fn a_reading_with_master_data_is_enriched_and_partitioned_by_grid_area() {
    let mut t = task();
    let now = at("2026-10-16T05:00:00Z");
    assert!(t.process(&[master_record(0)], now).expect("ok").is_empty());
    let out = t.process(&[reading_record(0)], now).expect("ok");
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].topic, "afregning.metering.enriched-readings.v1");
    let enriched: EnrichedReading = Wire::local()
        .decode(out[0].value.as_deref().expect("value"))
        .expect("decodes");
    assert_eq!(enriched.grid_area, examples::metering_point().grid_area);
    assert_eq!(enriched.price_area.as_deref(), Some("DK2"));
    assert_eq!(enriched.reading, examples::reading());
    assert!(out[0].idempotency_key.starts_with("enriched:"));
    // The same reading again gives the same idempotency key: downstream drops it.
    let again = t.process(&[reading_record(1)], now).expect("ok");
    assert_eq!(again[0].idempotency_key, out[0].idempotency_key);
}

#[test]
fn a_reading_before_its_master_data_waits_and_is_released_when_it_arrives() {
    let mut t = task();
    let now = at("2026-10-16T05:00:00Z");
    assert!(t.process(&[reading_record(0)], now).expect("ok").is_empty());
    assert_eq!(t.store().entries(PENDING_STORE).expect("store").len(), 1);
    let out = t.process(&[master_record(0)], now).expect("ok");
    assert_eq!(out.len(), 1, "released");
    assert_eq!(out[0].topic, "afregning.metering.enriched-readings.v1");
    assert!(t.store().entries(PENDING_STORE).expect("store").is_empty());
}

#[test]
fn a_reading_without_master_data_is_dead_lettered_after_the_timeout_naming_its_source() {
    let mut t = task();
    let arrived = at("2026-10-16T04:00:00Z");
    t.process(&[reading_record(7)], arrived).expect("ok");
    assert!(t.tick(at("2026-10-16T04:30:00Z")).expect("tick").is_empty());
    let out = t.tick(at("2026-10-16T05:30:00Z")).expect("tick");
    assert_eq!(out.len(), 1);
    let dead: DeadLetter = Wire::local()
        .decode(out[0].value.as_deref().expect("value"))
        .expect("decodes");
    assert_eq!(dead.error_class, ErrorClass::UnknownMeteringPoint);
    assert_eq!(dead.source_topic, READINGS);
    assert_eq!(dead.source_offset, 7);
    assert!(dead.reason.contains(&examples::reading().gsrn));
    assert!(dead.payload.is_some(), "the raw reading is kept");
    assert!(t.store().entries(PENDING_STORE).expect("store").is_empty());
}

#[test]
fn garbage_on_the_readings_topic_is_dead_lettered_not_dropped() {
    let mut t = task();
    let mut record = reading_record(3);
    record.value = Some(vec![0, 0, 0, 0, 1, 2, 3]);
    let out = t
        .process(&[record], at("2026-10-16T05:00:00Z"))
        .expect("ok");
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].topic, "afregning.ops.dead-letters.v1");
}

#[test]
fn parked_records_round_trip() {
    let parked = Parked {
        arrived_ms: 42,
        record: reading_record(9),
    };
    let back = Parked::decode(&parked.encode()).expect("decodes");
    assert_eq!(back.arrived_ms, 42);
    assert_eq!(back.record.offset, 9);
    assert_eq!(back.record.value, parked.record.value);
    assert_eq!(back.record.key, parked.record.key);
    assert!(Parked::decode(&[2, 0]).is_none());
}

/// The spliced record is the record `Topics::output` makes of the decoded
/// enriched reading: same topic, key, value bytes, partition and
/// idempotency key, for a reading with points and without.
#[test]
fn the_spliced_enriched_record_is_the_generic_encoding_of_the_enriched_reading() {
    let topics = Topics::new(
        Catalogue::new(TopologySettings::default()).expect("catalogue"),
        Wire::local(),
    );
    let rules = EnrichRules::default();
    let mut master = examples::metering_point();
    master.valid_from = examples::reading().period_start;
    master.supply_start = None;
    master.supply_end = None;
    let mut empty = examples::reading();
    empty.points.clear();
    empty.product = None;
    for reading in [examples::reading(), empty] {
        let bytes = topics.wire.encode(&reading).expect("encodes");
        let head = topics.wire.decode_reading_head(&bytes).expect("head");
        assert_eq!(head, ReadingHead::from(&reading));
        let tail = enrichment(&head, &master, &rules).expect("enriches");
        let enrich = Enrich::new(topics.clone(), EnrichConfig::default());
        let spliced = enrich
            .enriched_output(&head, &bytes, &tail)
            .expect("spliced");
        let enriched = core::enrich(&reading, &master, &rules).expect("enriches");
        let mut generic = Vec::new();
        afregning_topology::records::direct::generic_write(&enriched, &mut generic)
            .expect("generic");
        assert_eq!(
            &spliced.value.as_deref().expect("value")[5..],
            generic.as_slice()
        );
        let expected = topics
            .output(
                topics::ENRICHED_READINGS,
                &MeteringPointKey {
                    gsrn: reading.gsrn.clone(),
                },
                &enriched,
                spliced.idempotency_key.clone(),
            )
            .expect("output");
        assert_eq!(spliced.topic, expected.topic);
        assert_eq!(spliced.key, expected.key);
        assert_eq!(spliced.value, expected.value);
        assert_eq!(spliced.partition, expected.partition);
        assert_eq!(
            spliced.idempotency_key,
            format!(
                "enriched:{}:{}",
                reading.source_message_id, reading.transaction_id
            )
        );
    }
}

#[test]
fn a_reading_with_corrupt_points_is_dead_lettered_though_the_points_are_not_kept() {
    let mut t = task();
    let now = at("2026-10-16T05:00:00Z");
    assert!(t.process(&[master_record(0)], now).expect("ok").is_empty());
    let mut record = reading_record(0);
    let value = record.value.as_mut().expect("value");
    // The last byte is the array's end; the one before is the last point's
    // quality index: make it a symbol Quality does not have.
    let n = value.len();
    value[n - 2] = 40;
    assert!(
        Wire::local()
            .decode::<afregning_topology::records::Reading>(value)
            .is_err()
    );
    let out = t.process(&[record], now).expect("ok");
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].topic, "afregning.ops.dead-letters.v1");
    let dl: DeadLetter = Wire::local()
        .decode(out[0].value.as_deref().expect("value"))
        .expect("decodes");
    assert_eq!(dl.error_class, ErrorClass::Undecodable);
    assert!(
        dl.reason.starts_with("undecodable reading"),
        "{}",
        dl.reason
    );
}

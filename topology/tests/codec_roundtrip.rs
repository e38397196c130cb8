//! Every `.avsc` round-trips a representative record through
//! `schema_registry_converter`'s encoder and decoder in Confluent's wire
//! format, against the project's real registry; and records produced with the
//! codec land on the partition the partitioner promises, on the real broker.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;
use std::time::Duration;

use afregning_testkit::TestEnv;
use afregning_topology::admin::Admin;
use afregning_topology::catalogue::Catalogue;
use afregning_topology::codec::Codec;
use afregning_topology::records::{TopicKey, TopicValue, examples};
use afregning_topology::schemas::SchemaFile;
use afregning_topology::settings::TopologySettings;
use afregning_topology::topics::{self, Topic};
use afregning_topology::{partition_for_grid_area, partition_for_key};
use rdkafka::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, Producer};
use schema_registry_converter::async_impl::schema_registry::{
    SrSettings, get_schema_by_subject_and_version,
};

/// Encodes key and value, checks the wire format (magic byte 0, the id the
/// registry gave the subject), decodes both and compares with the original.
async fn round_trip<K, V>(
    codec: &Codec,
    registry: &SrSettings,
    topic: Topic<K, V>,
    key: K,
    value: V,
    covered: &mut BTreeSet<SchemaFile>,
) where
    K: TopicKey + PartialEq + Debug,
    V: TopicValue + PartialEq + Debug,
{
    let spec = topic.spec(codec.catalogue()).clone();
    let record = codec.encode(topic, &key, &value).await.expect("encodes");
    assert_eq!(record.topic, spec.name);

    let key_subject = spec.key_subject().expect("Avro key");
    let registered = get_schema_by_subject_and_version(registry, &key_subject, None)
        .await
        .expect("key registered");
    assert_eq!(record.key[0], 0, "Confluent magic byte");
    assert_eq!(
        u32::from_be_bytes(record.key[1..5].try_into().unwrap()),
        registered.id,
        "{key_subject}"
    );
    assert_eq!(
        codec
            .decode_key(topic, Some(&record.key))
            .await
            .expect("decodes key"),
        key
    );
    covered.insert(K::SCHEMA);

    let payload = record.payload.as_deref().expect("not a tombstone");
    match (V::schema(), spec.value_subject()) {
        (Some(file), Some(subject)) => {
            let registered = get_schema_by_subject_and_version(registry, &subject, None)
                .await
                .expect("value registered");
            assert_eq!(payload[0], 0, "Confluent magic byte");
            assert_eq!(
                u32::from_be_bytes(payload[1..5].try_into().unwrap()),
                registered.id,
                "{subject}"
            );
            assert_eq!(
                serde_json::from_str::<serde_json::Value>(&registered.schema).unwrap(),
                serde_json::from_str::<serde_json::Value>(file.text()).unwrap(),
                "the registry holds the committed .avsc"
            );
            covered.insert(file);
        }
        (None, None) => assert_eq!(payload[0], b'{', "raw CIM JSON passes through untouched"),
        other => panic!(
            "{}: value type and catalogue disagree: {other:?}",
            spec.name
        ),
    }
    let decoded = codec
        .decode_value(topic, Some(payload))
        .await
        .expect("decodes value");
    assert_eq!(decoded, Some(value), "{}", spec.name);
}

#[tokio::test]
async fn every_schema_round_trips_in_confluent_wire_format() {
    let env = TestEnv::start("topology_codec")
        .await
        .expect("test environment");
    let catalogue = Catalogue::new(TopologySettings::with_prefix(&env.namespace)).unwrap();
    let codec = Codec::new(catalogue, &env.registry_url);
    let registry = SrSettings::new(env.registry_url.clone());
    let mut covered = BTreeSet::new();
    let c = &mut covered;
    let key = examples::datahub_message_key;
    round_trip(
        &codec,
        &registry,
        topics::TIMESERIES_RAW,
        key(),
        examples::cim_json(),
        c,
    )
    .await;
    round_trip(
        &codec,
        &registry,
        topics::AGGREGATIONS_RAW,
        key(),
        examples::cim_json(),
        c,
    )
    .await;
    round_trip(
        &codec,
        &registry,
        topics::MASTERDATA_RAW,
        key(),
        examples::cim_json(),
        c,
    )
    .await;
    round_trip(
        &codec,
        &registry,
        topics::CHARGES_RAW,
        key(),
        examples::cim_json(),
        c,
    )
    .await;
    let request = examples::outbound_request_key;
    round_trip(
        &codec,
        &registry,
        topics::OUTBOUND_REQUESTS,
        request(),
        examples::outbound_request(),
        c,
    )
    .await;
    round_trip(
        &codec,
        &registry,
        topics::OUTBOUND_RESPONSES,
        request(),
        examples::outbound_response(),
        c,
    )
    .await;
    round_trip(
        &codec,
        &registry,
        topics::SPOT_PRICES,
        examples::spot_price_key(),
        examples::spot_price(),
        c,
    )
    .await;
    round_trip(
        &codec,
        &registry,
        topics::READINGS,
        examples::metering_point_key(),
        examples::reading(),
        c,
    )
    .await;
    let mp_key = examples::metering_point_period_key();
    round_trip(
        &codec,
        &registry,
        topics::METERING_POINTS,
        mp_key,
        examples::metering_point(),
        c,
    )
    .await;
    round_trip(
        &codec,
        &registry,
        topics::CHARGES,
        examples::charge_period_key(),
        examples::charge(),
        c,
    )
    .await;
    let price_key = examples::charge_price_key();
    round_trip(
        &codec,
        &registry,
        topics::CHARGE_PRICES,
        price_key,
        examples::charge_price(),
        c,
    )
    .await;
    round_trip(
        &codec,
        &registry,
        topics::CHARGE_LINKS,
        examples::charge_link_key(),
        examples::charge_link(),
        c,
    )
    .await;
    let wholesale_key = examples::wholesale_result_key();
    round_trip(
        &codec,
        &registry,
        topics::WHOLESALE_RESULTS,
        wholesale_key,
        examples::wholesale_result(),
        c,
    )
    .await;
    let enriched = examples::enriched_reading();
    round_trip(
        &codec,
        &registry,
        topics::ENRICHED_READINGS,
        examples::metering_point_key(),
        enriched,
        c,
    )
    .await;
    let day_key = examples::daily_aggregate_key();
    round_trip(
        &codec,
        &registry,
        topics::DAILY_AGGREGATES,
        day_key,
        examples::daily_aggregate(),
        c,
    )
    .await;
    let month = examples::settlement_month_key;
    let provisional = examples::provisional_settlement();
    round_trip(
        &codec,
        &registry,
        topics::PROVISIONAL_SETTLEMENTS,
        month(),
        provisional,
        c,
    )
    .await;
    let statement = examples::settlement_statement();
    round_trip(
        &codec,
        &registry,
        topics::SETTLEMENT_STATEMENTS,
        month(),
        statement,
        c,
    )
    .await;
    round_trip(
        &codec,
        &registry,
        topics::DEAD_LETTERS,
        examples::dead_letter_key(),
        examples::dead_letter(),
        c,
    )
    .await;
    round_trip(
        &codec,
        &registry,
        topics::DISCREPANCIES,
        examples::reconciliation_key(),
        examples::reconciliation(),
        c,
    )
    .await;

    let all: BTreeSet<SchemaFile> = SchemaFile::ALL.iter().copied().collect();
    assert_eq!(covered, all, "every .avsc was round-tripped");

    // Tombstones on tables: a null value and the key's own partition.
    let tombstone = codec
        .encode_tombstone(
            topics::METERING_POINTS,
            &examples::metering_point_period_key(),
        )
        .await
        .expect("tombstone");
    assert_eq!(tombstone.payload, None);
    assert_eq!(tombstone.partition, partition_for_key(examples::GSRN, 12));
    assert_eq!(
        codec
            .decode_value(topics::METERING_POINTS, None)
            .await
            .expect("decodes"),
        None
    );
    env.cleanup().await.expect("cleanup");
}

#[tokio::test]
async fn a_record_written_with_minimal_decimals_by_another_client_decodes() {
    // A Java or Python writer encodes decimals in the fewest bytes; the
    // registry-side schema is the same. Build such a record by hand: magic
    // byte, schema id, Avro body with a 2-byte decimal.
    let env = TestEnv::start("topology_java_decimal")
        .await
        .expect("test environment");
    let catalogue = Catalogue::new(TopologySettings::with_prefix(&env.namespace)).unwrap();
    let codec = Codec::new(catalogue, &env.registry_url);
    let key = examples::charge_price_key();
    let mut value = examples::charge_price();
    value.points.truncate(1);
    value.points[0].price = rust_decimal::Decimal::new(1_500, 6); // 0.001500 -> unscaled 1500 = 0x05DC
    let ours = codec
        .encode(topics::CHARGE_PRICES, &key, &value)
        .await
        .expect("encodes");
    let payload = ours.payload.unwrap();
    // Our encoding sign-extends to 8 bytes: length 8 (zigzag 16 = 0x10), then 00..05 DC.
    let ours_decimal = [0x10, 0, 0, 0, 0, 0, 0, 0x05, 0xDC];
    let at = payload
        .windows(ours_decimal.len())
        .position(|w| w == ours_decimal)
        .expect("the 8-byte decimal is in the payload");
    let mut java = payload[..at].to_vec();
    java.extend_from_slice(&[0x04, 0x05, 0xDC]); // length 2, minimal two's complement
    java.extend_from_slice(&payload[at + ours_decimal.len()..]);
    let decoded = codec
        .decode_value(topics::CHARGE_PRICES, Some(&java))
        .await
        .expect("decodes")
        .expect("a value");
    assert_eq!(decoded, value);
    env.cleanup().await.expect("cleanup");
}

#[tokio::test]
async fn produced_records_of_a_grid_area_land_on_its_partition() {
    let env = TestEnv::start("topology_partitions_live")
        .await
        .expect("test environment");
    let catalogue = Catalogue::new(TopologySettings::with_prefix(&env.namespace)).unwrap();
    let admin =
        Admin::connect(catalogue.clone(), &env.bootstrap_servers, &env.registry_url).unwrap();
    admin.apply().await.expect("apply");
    let codec = Codec::new(catalogue, &env.registry_url);
    let producer: FutureProducer = env.kafka_config().create().expect("producer");

    // 40 metering points in each of three grid areas.
    let mut expected: BTreeMap<String, i32> = BTreeMap::new();
    for (area_index, area) in ["740", "344", "791"].into_iter().enumerate() {
        for n in 0..40 {
            let mut value = examples::enriched_reading();
            value.grid_area = area.to_string();
            value.reading.gsrn = format!("57131318{area_index:02}{n:08}");
            let key = afregning_topology::records::MeteringPointKey {
                gsrn: value.reading.gsrn.clone(),
            };
            let record = codec
                .encode(topics::ENRICHED_READINGS, &key, &value)
                .await
                .expect("encodes");
            assert_eq!(record.partition, partition_for_grid_area(area, 12));
            producer
                .send(record.as_future_record(), Duration::from_secs(10))
                .await
                .map_err(|(e, _)| e)
                .expect("delivered");
            expected.insert(key.gsrn, record.partition);
        }
    }
    producer.flush(Duration::from_secs(10)).expect("flushed");

    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", &env.bootstrap_servers)
        .set("group.id", env.group("partition-check"))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    consumer
        .subscribe(&[codec.topic_name(topics::ENRICHED_READINGS)])
        .expect("subscribed");
    let mut seen = 0;
    while seen < expected.len() {
        let message = tokio::time::timeout(Duration::from_secs(30), consumer.recv())
            .await
            .expect("records arrive")
            .expect("no consumer error");
        let key = codec
            .decode_key(topics::ENRICHED_READINGS, message.key())
            .await
            .expect("decodes key");
        let value = codec
            .decode_value(topics::ENRICHED_READINGS, message.payload())
            .await
            .expect("decodes value")
            .expect("value");
        assert_eq!(
            message.partition(),
            expected[&key.gsrn],
            "{} landed elsewhere",
            key.gsrn
        );
        assert_eq!(
            message.partition(),
            partition_for_grid_area(&value.grid_area, 12)
        );
        seen += 1;
    }
    // Close the clients before cleanup deletes the topics: measured here, a
    // consumer still subscribed to a topic Tansu deletes crashes librdkafka
    // 2.12.1 (SIGSEGV in rd_kafka_metadata_update_op).
    drop(consumer);
    drop(producer);
    env.cleanup().await.expect("cleanup");
}

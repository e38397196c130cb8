//! The codec's fast path (issue 13): records written with exactly the
//! catalogue's schema are read with the direct codecs, and read into the same
//! records the generic path (`Value` tree, schema resolution) reads; records
//! written with another (older or newer) writer schema still resolve; bad
//! bytes give the generic path's errors, word for word. Against the project's
//! real registry.

use std::fmt::Debug;

use afregning_testkit::TestEnv;
use afregning_topology::catalogue::Catalogue;
use afregning_topology::codec::{Codec, FramingError, split_wire_format};
use afregning_topology::records::{
    AvroRecord, Quality, Reading, ReadingPoint, Resolution, TopicKey, TopicValue, examples,
};
use afregning_topology::schemas::SchemaFile;
use afregning_topology::settings::TopologySettings;
use afregning_topology::topics::{self, Topic};
use apache_avro::Schema;
use apache_avro::types::Value;
use chrono::{TimeZone, Utc};
use rust_decimal::Decimal;
use schema_registry_converter::async_impl::schema_registry::{SrSettings, post_schema};
use schema_registry_converter::schema_registry_common::{SchemaType, SuppliedSchema};

/// Encodes key and value with the codec (the catalogue's schemas), checks
/// the fast path is taken for the value, and that both paths decode key and
/// value into the original.
async fn both_paths<K, V>(codec: &Codec, topic: Topic<K, V>, key: K, value: V)
where
    K: TopicKey + PartialEq + Debug,
    V: TopicValue + PartialEq + Debug,
{
    let record = codec.encode(topic, &key, &value).await.expect("encodes");
    let name = record.topic.clone();
    let payload = record.payload.as_deref().expect("not a tombstone");
    assert_eq!(
        codec.reads_value_directly(topic, payload).await,
        V::schema().is_some(),
        "{name}: the fast path is taken for the catalogue's own schema"
    );
    let fast = codec
        .decode_value(topic, Some(payload))
        .await
        .expect("fast path decodes");
    let generic = codec
        .decode_value_generic(topic, Some(payload))
        .await
        .expect("generic path decodes");
    assert_eq!(fast, generic, "{name}: value, fast and generic paths");
    assert_eq!(fast, Some(value), "{name}: value");
    let fast = codec
        .decode_key(topic, Some(&record.key))
        .await
        .expect("fast key");
    let generic = codec
        .decode_key_generic(topic, Some(&record.key))
        .await
        .expect("generic key");
    assert_eq!(fast, generic, "{name}: key, fast and generic paths");
    assert_eq!(fast, key, "{name}: key");
}

fn utc(y: i32, m: u32, d: u32, h: u32) -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, h, 0, 0).unwrap()
}

/// A day of `n` positions at `resolution`: some quantities missing, every
/// quality, quantities with and without decimals, negative and large ones.
fn reading(resolution: Resolution, n: i32, seed: i64) -> Reading {
    let qualities = [
        Quality::AsProvided,
        Quality::Estimated,
        Quality::Calculated,
        Quality::Adjusted,
        Quality::Incomplete,
        Quality::NotAvailable,
    ];
    let points = (1..=n)
        .map(|position| {
            let p = i64::from(position);
            let quality = qualities[(p as usize * 7 + seed as usize) % qualities.len()];
            ReadingPoint {
                position,
                quantity: match (p + seed) % 9 {
                    0 => None,
                    1 => Some(Decimal::ZERO),
                    2 => Some(Decimal::new(-(p * 1_001), 3)),
                    3 => Some(Decimal::new(999_999_999_999_999_999, 3)),
                    4 => Some(Decimal::new(p, 0)),
                    _ => Some(Decimal::new(seed * 1_000 + p * 37, 3)),
                },
                quality,
            }
        })
        .collect();
    Reading {
        gsrn: format!("5713131{:011}", seed),
        metering_point_type: "E17".into(),
        resolution,
        period_start: utc(2026, 10, 14, 22),
        period_end: utc(2026, 10, 15, 22),
        registered_at: utc(2026, 10, 16, 3),
        unit: "KWH".into(),
        product: (seed % 2 == 0).then(|| "8716867000030".into()),
        business_reason: (seed % 3 != 0).then(|| "E23".into()),
        source_message_id: format!("msg-{seed}"),
        transaction_id: format!("tx-{seed}"),
        points,
    }
}

/// The catalogue's Reading schema with its fields edited, registered under
/// `subject`: the id the registry gave and the parsed schema.
async fn register_edited(
    registry: &SrSettings,
    subject: &str,
    edit: impl FnOnce(&mut Vec<serde_json::Value>),
) -> (u32, Schema) {
    let mut schema: serde_json::Value = serde_json::from_str(SchemaFile::Reading.text()).unwrap();
    edit(schema["fields"].as_array_mut().unwrap());
    let text = schema.to_string();
    let id = post_schema(
        registry,
        subject.to_string(),
        SuppliedSchema::new(None, SchemaType::Avro, text.clone()),
    )
    .await
    .expect("registers")
    .id;
    (id, Schema::parse_str(&text).unwrap())
}

/// Confluent wire format: magic byte, id, datum.
fn framed(id: u32, datum: &[u8]) -> Vec<u8> {
    let mut out = vec![0];
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(datum);
    out
}

fn record_fields(value: Value) -> Vec<(String, Value)> {
    match value {
        Value::Record(fields) => fields,
        other => panic!("not a record: {other:?}"),
    }
}

#[tokio::test]
async fn fast_and_generic_paths_agree_and_other_writers_resolve() {
    let env = TestEnv::start("topology_fast_path")
        .await
        .expect("test environment");
    let catalogue = Catalogue::new(TopologySettings::with_prefix(&env.namespace)).unwrap();
    let codec = Codec::new(catalogue, &env.registry_url);
    let registry = SrSettings::new(env.registry_url.clone());
    let key = examples::metering_point_key;

    // Readings: PT15M (96, and the 92 and 100 of the DST days), PT1H,
    // missing quantities and every quality.
    for (seed, (resolution, n)) in [
        (Resolution::Pt15m, 96),
        (Resolution::Pt15m, 92),
        (Resolution::Pt15m, 100),
        (Resolution::Pt1h, 24),
        (Resolution::Pt1h, 23),
        (Resolution::Pt15m, 0),
    ]
    .into_iter()
    .enumerate()
    {
        for offset in 0..3 {
            let seed = seed as i64 * 3 + offset;
            both_paths(
                &codec,
                topics::READINGS,
                key(),
                reading(resolution, n, seed),
            )
            .await;
        }
    }
    both_paths(&codec, topics::READINGS, key(), examples::reading()).await;

    // Every other Avro topic (direct codecs and generic records alike).
    both_paths(
        &codec,
        topics::ENRICHED_READINGS,
        key(),
        examples::enriched_reading(),
    )
    .await;
    both_paths(
        &codec,
        topics::METERING_POINTS,
        examples::metering_point_period_key(),
        examples::metering_point(),
    )
    .await;
    both_paths(
        &codec,
        topics::CHARGES,
        examples::charge_period_key(),
        examples::charge(),
    )
    .await;
    both_paths(
        &codec,
        topics::CHARGE_PRICES,
        examples::charge_price_key(),
        examples::charge_price(),
    )
    .await;
    both_paths(
        &codec,
        topics::CHARGE_LINKS,
        examples::charge_link_key(),
        examples::charge_link(),
    )
    .await;
    both_paths(
        &codec,
        topics::SPOT_PRICES,
        examples::spot_price_key(),
        examples::spot_price(),
    )
    .await;
    both_paths(
        &codec,
        topics::WHOLESALE_RESULTS,
        examples::wholesale_result_key(),
        examples::wholesale_result(),
    )
    .await;
    both_paths(
        &codec,
        topics::DISCREPANCIES,
        examples::reconciliation_key(),
        examples::reconciliation(),
    )
    .await;
    both_paths(
        &codec,
        topics::DAILY_AGGREGATES,
        examples::daily_aggregate_key(),
        examples::daily_aggregate(),
    )
    .await;
    both_paths(
        &codec,
        topics::PROVISIONAL_SETTLEMENTS,
        examples::settlement_month_key(),
        examples::provisional_settlement(),
    )
    .await;
    both_paths(
        &codec,
        topics::SETTLEMENT_STATEMENTS,
        examples::settlement_month_key(),
        examples::settlement_statement(),
    )
    .await;
    both_paths(
        &codec,
        topics::DEAD_LETTERS,
        examples::dead_letter_key(),
        examples::dead_letter(),
    )
    .await;
    both_paths(
        &codec,
        topics::OUTBOUND_REQUESTS,
        examples::outbound_request_key(),
        examples::outbound_request(),
    )
    .await;
    both_paths(
        &codec,
        topics::OUTBOUND_RESPONSES,
        examples::outbound_request_key(),
        examples::outbound_response(),
    )
    .await;
    both_paths(
        &codec,
        topics::TIMESERIES_RAW,
        examples::datahub_message_key(),
        examples::cim_json(),
    )
    .await;

    // A newer producer: the catalogue's Reading plus an optional field; an
    // older one: without `product` (which the reader defaults to null).
    let subject = format!("{}evolution-Reading", env.namespace);
    let (newer_id, newer_schema) = register_edited(&registry, &subject, |fields| {
        fields.push(serde_json::json!({
            "name": "evolution_probe",
            "type": ["null", "string"],
            "default": null,
            "doc": "A field a newer producer added."
        }))
    })
    .await;
    let (older_id, older_schema) =
        register_edited(&registry, &format!("{subject}-older"), |fields| {
            fields.retain(|f| f["name"] != "product")
        })
        .await;

    for (resolution, n) in [(Resolution::Pt15m, 96), (Resolution::Pt1h, 24)] {
        let original = reading(resolution, n, 4);
        assert!(original.product.is_some());

        let mut fields = record_fields(original.to_avro().unwrap());
        fields.push((
            "evolution_probe".into(),
            Value::Union(1, Box::new(Value::String("from the future".into()))),
        ));
        #[allow(deprecated)]
        let datum = apache_avro::to_avro_datum(&newer_schema, Value::Record(fields)).unwrap();
        let bytes = framed(newer_id, &datum);
        assert!(
            !codec.reads_value_directly(topics::READINGS, &bytes).await,
            "a newer writer schema is not the catalogue's"
        );
        let decoded = codec
            .decode_value(topics::READINGS, Some(&bytes))
            .await
            .expect("a newer writer's reading resolves");
        assert_eq!(decoded.as_ref(), Some(&original), "newer writer");

        let fields: Vec<_> = record_fields(original.to_avro().unwrap())
            .into_iter()
            .filter(|(name, _)| name != "product")
            .collect();
        #[allow(deprecated)]
        let datum = apache_avro::to_avro_datum(&older_schema, Value::Record(fields)).unwrap();
        let bytes = framed(older_id, &datum);
        assert!(!codec.reads_value_directly(topics::READINGS, &bytes).await);
        let decoded = codec
            .decode_value(topics::READINGS, Some(&bytes))
            .await
            .expect("an older writer's reading resolves");
        let expected = Reading {
            product: None,
            ..original.clone()
        };
        assert_eq!(decoded, Some(expected), "older writer");
    }

    // Bad bytes: the fast path gives exactly the generic path's error (the
    // dead letters carry its text) or, for bytes the generic path accepts,
    // the same record.
    let good = codec
        .encode_value(topics::READINGS, &reading(Resolution::Pt15m, 96, 1))
        .await
        .unwrap();
    let (own_id, datum) = split_wire_format(&good).unwrap();
    let mut trailing = good.clone();
    trailing.extend_from_slice(&[2, 4, 6]);
    let mut bad_enum = good.clone();
    // The resolution enum index follows the two strings at the front.
    let strings = {
        let mut rest = datum;
        for _ in 0..2 {
            let (len, used) = zigzag(rest);
            rest = &rest[used + len as usize..];
        }
        datum.len() - rest.len()
    };
    bad_enum[5 + strings] = 40; // zigzag 20: no such symbol
    let unknown_id = framed(own_id + 10_000, datum);
    let key_as_value = codec
        .encode_key(topics::READINGS, &examples::metering_point_key())
        .await
        .unwrap();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", vec![]),
        ("short header", vec![0, 0, 0]),
        ("wrong magic byte", vec![1, 0, 0, 0, 1, 2, 3]),
        ("truncated datum", good[..good.len() - 7].to_vec()),
        ("header only", good[..5].to_vec()),
        ("bytes after the datum", trailing),
        ("no such enum symbol", bad_enum),
        ("unknown schema id", unknown_id),
        ("a key's schema", key_as_value),
    ];
    for (case, bytes) in cases {
        let fast = codec.decode_value(topics::READINGS, Some(&bytes)).await;
        let generic = codec
            .decode_value_generic(topics::READINGS, Some(&bytes))
            .await;
        match (&fast, &generic) {
            (Ok(f), Ok(g)) => assert_eq!(f, g, "{case}"),
            (Err(f), Err(g)) => {
                assert_eq!(f.to_string(), g.to_string(), "{case}");
                assert_eq!(f.is_retriable(), g.is_retriable(), "{case}");
                assert_eq!(
                    std::mem::discriminant(f),
                    std::mem::discriminant(g),
                    "{case}"
                );
            }
            _ => panic!("{case}: fast {fast:?}, generic {generic:?}"),
        }
    }
    assert_eq!(split_wire_format(&[]), Err(FramingError::Empty));
    assert_eq!(split_wire_format(&[3, 0]), Err(FramingError::MagicByte(3)));
    assert_eq!(split_wire_format(&[0, 0]), Err(FramingError::Short(2)));

    env.cleanup().await.expect("cleanup");
}

/// An Avro long at the front of `bytes` (zigzag varint) and its length.
fn zigzag(bytes: &[u8]) -> (i64, usize) {
    let mut n: u64 = 0;
    for (i, b) in bytes.iter().enumerate() {
        n |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return (((n >> 1) as i64) ^ -((n & 1) as i64), i + 1);
        }
    }
    panic!("unterminated varint")
}

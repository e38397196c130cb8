//! Series and values per second through `Codec::decode_value`, the call the
//! database sink makes for every record (issue 13): 2,000 PT15M readings (one
//! metering point-day each, 96 quarter-hour values, some quantities missing,
//! several qualities), written by the codec with the catalogue's schema like
//! the pipeline's own producers write them.
//!
//! - `fast_path`: `Codec::decode_value`, which reads a record written with
//!   exactly the catalogue's schema with the direct codec (`records::direct`).
//! - `generic_path`: `Codec::decode_value_generic`, the path every record took
//!   before: the registry decoder's `Value` tree, `widen_decimals`, schema
//!   resolution, `Reading::from_avro`.
//!
//! Both decode the same bytes in the same run against a real registry (the
//! testkit's, so the shared broker and PostgreSQL must answer); the registry
//! is asked once per schema id, before the timing. Run:
//! `cargo bench -p afregning-sinks --bench codec_decode`; figures in
//! `sinks/BENCHMARKS.md`.

use std::time::Duration;

use afregning_testkit::TestEnv;
use afregning_topology::catalogue::Catalogue;
use afregning_topology::codec::Codec;
use afregning_topology::records::{Quality, Reading, ReadingPoint, Resolution};
use afregning_topology::settings::TopologySettings;
use afregning_topology::topics;
use chrono::{TimeZone, Utc};
use criterion::{Criterion, SamplingMode, Throughput};
use rust_decimal::Decimal;

/// Metering point-days decoded per iteration.
const SERIES: usize = 2_000;
/// Quarter-hour values per series.
const VALUES: usize = 96;

/// One PT15M metering point-day: every 13th quantity missing, qualities
/// mixed.
fn reading(i: usize) -> Reading {
    let qualities = [Quality::AsProvided, Quality::Estimated, Quality::Calculated];
    let points = (1..=VALUES as i32)
        .map(|position| ReadingPoint {
            position,
            quantity: (!(position as usize + i).is_multiple_of(13))
                .then(|| Decimal::new((i as i64 * 7 + i64::from(position) * 31) % 2_500, 3)),
            quality: qualities[(position as usize + i) % qualities.len()],
        })
        .collect();
    Reading {
        gsrn: format!("{:018}", 571_313_100_000_000_000u64 + i as u64),
        metering_point_type: "E17".into(),
        resolution: Resolution::Pt15m,
        period_start: Utc.with_ymd_and_hms(2026, 11, 30, 23, 0, 0).unwrap(),
        period_end: Utc.with_ymd_and_hms(2026, 12, 1, 23, 0, 0).unwrap(),
        registered_at: Utc.with_ymd_and_hms(2026, 12, 2, 3, 0, 0).unwrap(),
        unit: "KWH".into(),
        product: Some("8716867000030".into()),
        business_reason: Some("E23".into()),
        source_message_id: format!("bench-{}", i / 50),
        transaction_id: format!("tx-{i}"),
        points,
    }
}

/// Decodes every payload, by the fast path or the generic one.
async fn decode_all(codec: &Codec, payloads: &[Vec<u8>], generic: bool) {
    let mut points = 0;
    for bytes in payloads {
        let reading = if generic {
            codec
                .decode_value_generic(topics::READINGS, Some(bytes))
                .await
        } else {
            codec.decode_value(topics::READINGS, Some(bytes)).await
        };
        points += reading
            .expect("decodes")
            .expect("not a tombstone")
            .points
            .len();
    }
    assert_eq!(points, SERIES * VALUES);
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let env = rt
        .block_on(TestEnv::start("bench_codec_decode"))
        .expect("test environment (broker, PostgreSQL, registry)");
    let catalogue =
        Catalogue::new(TopologySettings::with_prefix(&env.namespace)).expect("catalogue");
    let codec = Codec::new(catalogue, &env.registry_url);
    let payloads: Vec<Vec<u8>> = rt.block_on(async {
        let mut out = Vec::with_capacity(SERIES);
        for i in 0..SERIES {
            out.push(
                codec
                    .encode_value(topics::READINGS, &reading(i))
                    .await
                    .expect("encodes"),
            );
        }
        out
    });
    // Both paths agree, and each has looked the schema id up, before timing.
    rt.block_on(async {
        for bytes in &payloads {
            assert!(codec.reads_value_directly(topics::READINGS, bytes).await);
            let fast = codec.decode_value(topics::READINGS, Some(bytes)).await;
            let generic = codec
                .decode_value_generic(topics::READINGS, Some(bytes))
                .await;
            assert_eq!(fast.expect("fast"), generic.expect("generic"));
        }
    });

    let mut criterion = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(10))
        .configure_from_args();
    let mut group = criterion.benchmark_group("codec_decode_reading_pt15m");
    group.sampling_mode(SamplingMode::Flat);
    // Elements are series; values are 96 times as many.
    group.throughput(Throughput::Elements(SERIES as u64));
    for (name, generic) in [("fast_path", false), ("generic_path", true)] {
        group.bench_function(name, |b| {
            b.iter(|| rt.block_on(decode_all(&codec, &payloads, generic)))
        });
    }
    group.finish();
    criterion.final_summary();
    rt.block_on(env.cleanup()).expect("cleanup");
}

//! The connector against the simulator and the real broker, with every fault switched on:
//! 500 metering points × 3 days (plus master data, charges, links, aggregations and the
//! injected malformed, unknown-type and schema-invalid messages). Checks that
//! - every message the simulator enqueued is on its raw topic, losslessly (the parts join to
//!   the original document; unsplittable bodies are byte-identical), duplicates only with the
//!   same MessageId and identical bytes, no record with an id the simulator never sent;
//! - the simulator's queues end empty, every message dequeued;
//! - nothing was dequeued before its produce was acknowledged (the simulator's dequeue log
//!   merged with the connector's acknowledgements on one monotonic clock);
//! - the inbound-message log holds every bundle exactly.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use afregning_connect::Connector;
use afregning_connect::inbound_log::InboundLog;
use afregning_simulator::events::{EnqueueReason, FaultKind};
use afregning_simulator::{EventKind, FaultConfig, ScenarioConfig, Simulator, SimulatorConfig};
use afregning_topology::raw_headers as h;
use afregning_topology::{Codec, topics};
use common::{Recorder, dequeues_before_acknowledgement, harness, read_topics, wait_for};

#[test]
fn the_order_check_can_fail() {
    // The check used below, on a made-up history where message b was dequeued before it was
    // acknowledged, and a was dequeued twice but acknowledged once.
    let t0 = Instant::now();
    let t = |ms| t0 + Duration::from_millis(ms);
    let acks = vec![("a".to_string(), t(1)), ("b".to_string(), t(5))];
    let dequeues = vec![
        ("a".to_string(), t(2)),
        ("b".to_string(), t(4)),
        ("a".to_string(), t(6)),
    ];
    assert_eq!(
        dequeues_before_acknowledgement(&acks, &dequeues),
        vec!["b".to_string(), "a".to_string()]
    );
    assert!(dequeues_before_acknowledgement(&acks, &dequeues[..1]).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_message_arrives_on_its_raw_topic_with_every_fault_on() {
    let h = harness("connect_e2e").await;
    // Rates high enough that each fault happens several times in a run of ~250 requests.
    let faults = FaultConfig {
        slow_ms: 100,
        retry_after_secs: 1,
        token_revoke_rate: 0.04,
        // Redelivery is drawn per dequeue, and a run has far fewer dequeues than
        // requests: at 0.05 a run sometimes saw no redelivery at all.
        duplicate_delivery_rate: 0.25,
        ..FaultConfig::every_fault(0.05)
    };
    let sim = Simulator::new(SimulatorConfig {
        scenario: ScenarioConfig {
            metering_points: 500,
            days: 3,
            bundle_series: 50,
            bundle_records: 100,
            day_release_ms: 300,
            late_release_ms: 1_000,
            ..ScenarioConfig::default()
        },
        faults,
        auth: afregning_simulator::AuthConfig {
            token_lifetime_secs: 8,
            ..Default::default()
        },
        ..SimulatorConfig::default()
    })
    .expect("scenario")
    .serve("127.0.0.1:0".parse().expect("addr"))
    .await
    .expect("simulator");
    let handle = sim.handle().clone();
    let truth = handle.ground_truth();
    assert!(truth.readings.len() >= 1500);

    let recorder = Recorder::default();
    let started = Instant::now();
    let connector = Connector::new(h.config(&sim))
        .with_observer(recorder.observer())
        .start()
        .await
        .expect("connector");
    // Done when the queues have stayed empty for 2 s (a redelivery refills them).
    let mut empty_since: Option<Instant> = None;
    wait_for(
        "the simulator's queues to stay empty",
        Duration::from_secs(240),
        || {
            if handle.is_empty() {
                empty_since.get_or_insert_with(Instant::now).elapsed() > Duration::from_secs(2)
            } else {
                empty_since = None;
                false
            }
        },
    )
    .await;
    let drained = started.elapsed();
    connector.shutdown().await;
    assert!(handle.is_empty(), "queues end empty");

    // Every fault happened.
    let events = handle.events();
    for fault in [
        FaultKind::ServerError,
        FaultKind::TooManyRequests,
        FaultKind::Slow,
        FaultKind::TokensRevoked,
    ] {
        assert!(
            events
                .iter()
                .any(|e| matches!(&e.kind, EventKind::Fault { fault: f, .. } if *f == fault)),
            "{fault:?} never happened"
        );
    }
    assert!(
        events.iter().any(|e| matches!(
            e.kind,
            EventKind::Enqueued {
                reason: EnqueueReason::Redelivery,
                ..
            }
        )),
        "no redelivery"
    );
    // Tokens were revoked mid-run (401) and renewed: more than one token was fetched.
    assert!(
        events
            .iter()
            .filter(|e| matches!(e.kind, EventKind::TokenIssued))
            .count()
            >= 2,
        "no token renewal"
    );
    let enqueued = handle.enqueued();
    assert_eq!(
        enqueued
            .iter()
            .filter(|(_, _, f)| f.is_some())
            .map(|(_, _, f)| f)
            .collect::<BTreeSet<_>>()
            .len(),
        3
    );

    // Nothing dequeued before its records were acknowledged.
    let dequeues: Vec<(String, Instant)> = events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Dequeued { message_id, .. } => Some((message_id.clone(), e.at)),
            _ => None,
        })
        .collect();
    let acks = recorder.acknowledged();
    let violations = dequeues_before_acknowledgement(&acks, &dequeues);
    assert!(
        violations.is_empty(),
        "dequeued before acknowledged: {violations:?}"
    );
    let dequeued: BTreeSet<&str> = dequeues.iter().map(|(id, _)| id.as_str()).collect();
    for (_, id, _) in &enqueued {
        assert!(dequeued.contains(id.as_str()), "{id} was never dequeued");
    }

    // Every message on its raw topic, losslessly.
    let expected_records: usize = enqueued
        .iter()
        .map(|(_, id, fault)| match fault {
            Some(_)
                if afregning_cim::bundle::split(&handle.message_body(id).expect("body"))
                    .is_err() =>
            {
                1
            }
            _ => afregning_cim::bundle::split(&handle.message_body(id).expect("body"))
                .map(|p| p.len())
                .unwrap_or(1),
        })
        .sum();
    let topics_to_read: Vec<String> = afregning_connect::Queue::ALL
        .iter()
        .map(|q| h.raw_topic(*q))
        .collect();
    let records = read_topics(
        &h.env.bootstrap_servers,
        &h.env.group("reader"),
        topics_to_read,
        Duration::from_secs(60),
        move |r| {
            let distinct: BTreeSet<(String, String)> = r
                .iter()
                .map(|r| {
                    (
                        r.header(h::MESSAGE_ID).to_string(),
                        r.header(h::PART_INDEX).to_string(),
                    )
                })
                .collect();
            distinct.len() >= expected_records
        },
    )
    .await;
    let mut by_message: BTreeMap<String, BTreeMap<usize, Vec<u8>>> = BTreeMap::new();
    let mut duplicates = 0;
    for r in &records {
        let id = r.header(h::MESSAGE_ID).to_string();
        let index: usize = r.header(h::PART_INDEX).parse().expect("index");
        let parts = by_message.entry(id.clone()).or_default();
        if let Some(earlier) = parts.get(&index) {
            duplicates += 1;
            assert_eq!(
                earlier, &r.payload,
                "a duplicate of {id}/{index} with other bytes"
            );
        } else {
            parts.insert(index, r.payload.clone());
        }
    }
    let known: BTreeSet<&str> = enqueued.iter().map(|(_, id, _)| id.as_str()).collect();
    for id in by_message.keys() {
        assert!(
            known.contains(id.as_str()),
            "record with a MessageId the simulator never sent: {id}"
        );
    }
    for (queue, id, _) in &enqueued {
        let original = handle.message_body(id).expect("body");
        let parts = by_message
            .get(id)
            .unwrap_or_else(|| panic!("{id} ({queue}) is not on its raw topic"));
        let topic = h.raw_topic(match queue.path() {
            "timeseries" => afregning_connect::Queue::Timeseries,
            "aggregations" => afregning_connect::Queue::Aggregations,
            "masterdata" => afregning_connect::Queue::MasterData,
            _ => afregning_connect::Queue::Charges,
        });
        assert!(
            records
                .iter()
                .filter(|r| r.header(h::MESSAGE_ID) == id)
                .all(|r| r.topic == topic && r.header(h::QUEUE) == queue.path())
        );
        match afregning_cim::bundle::split(&original) {
            Ok(split) => {
                assert_eq!(parts.len(), split.len(), "{id}: every part");
                let ordered: Vec<&[u8]> = parts.values().map(Vec::as_slice).collect();
                let joined = afregning_cim::bundle::join(&ordered).expect("join");
                let a: serde_json::Value = serde_json::from_slice(&joined).expect("joined json");
                let b: serde_json::Value =
                    serde_json::from_slice(&original).expect("original json");
                assert_eq!(a, b, "{id}: the parts are the bundle");
            }
            Err(_) => assert_eq!(
                parts.get(&0).map(Vec::as_slice),
                Some(&original[..]),
                "{id}: kept whole"
            ),
        }
    }
    // Keys decode to the MessageId (Avro through the registry).
    let codec = Codec::new(h.catalogue.clone(), &h.env.registry_url);
    for r in records.iter().step_by(97) {
        let key = codec
            .decode_key(topics::TIMESERIES_RAW, Some(&r.key))
            .await
            .expect("key");
        assert_eq!(key.message_id, r.header(h::MESSAGE_ID));
    }

    // The inbound log has every bundle, byte for byte.
    let log = InboundLog::open(&afregning_connect::config::InboundLogConfig {
        dir: h.log_dir.path().to_path_buf(),
        ..Default::default()
    })
    .expect("log");
    let entries = log.entries().expect("entries");
    for (_, id, _) in &enqueued {
        let entry = entries
            .iter()
            .find(|e| &e.message_id == id)
            .unwrap_or_else(|| panic!("{id} not in the inbound log"));
        assert_eq!(
            log.read(entry).expect("read"),
            handle.message_body(id).expect("body").to_vec()
        );
    }
    eprintln!(
        "drained {} messages ({} records, {} duplicate records) in {:.1} s; {} simulator events",
        enqueued.len(),
        records.len(),
        duplicates,
        drained.as_secs_f64(),
        events.len()
    );
    drop(codec);
    sim.shutdown().await;
    h.cleanup().await;
}

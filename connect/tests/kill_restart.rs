//! A connector killed between produce and dequeue loses nothing: the simulator swallows the
//! first dequeue (as if the process died before DataHub saw it), the connector is aborted
//! there, and a restarted connector is given the same message again by DataHub, produces it
//! again, and dequeues it. The raw topic then holds the message twice, recognisably the same
//! by MessageId (header and key) with identical bytes: a consumer deduplicating by MessageId
//! and part index sees every part once.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use afregning_connect::{Connector, ConnectorEvent};
use afregning_simulator::{
    EventKind, FaultConfig, FaultKind, ScenarioConfig, Simulator, SimulatorConfig,
};
use afregning_topology::raw_headers as h;
use common::{Recorder, harness, read_topics, wait_for};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_crash_between_produce_and_dequeue_means_delivery_again_under_the_same_message_id() {
    let h = harness("connect_kill").await;
    let sim = Simulator::new(SimulatorConfig {
        scenario: ScenarioConfig {
            metering_points: 12,
            days: 1,
            bundle_series: 5,
            aggregations: false,
            master_data: false,
            late_share: 0.0,
            correction_share: 0.0,
            ..ScenarioConfig::default()
        },
        faults: FaultConfig {
            dequeue_blackhole: true,
            ..FaultConfig::none()
        },
        ..SimulatorConfig::default()
    })
    .expect("scenario")
    .serve("127.0.0.1:0".parse().expect("addr"))
    .await
    .expect("simulator");
    let handle = sim.handle().clone();
    let messages = handle.enqueued();
    assert_eq!(messages.len(), 3, "12 series in bundles of 5");

    // First run: killed as soon as its first dequeue is on the way.
    let first = Recorder::default();
    let connector = Connector::new(h.config(&sim))
        .with_observer(first.observer())
        .start()
        .await
        .expect("connector");
    let swallowed = || {
        handle.events().into_iter().find_map(|e| match e.kind {
            EventKind::Fault {
                fault: FaultKind::DequeueSwallowed,
                message_id,
                ..
            } => message_id,
            _ => None,
        })
    };
    wait_for("a dequeue request", Duration::from_secs(30), || {
        swallowed().is_some()
    })
    .await;
    connector.abort().await;
    let victim = swallowed().expect("swallowed");
    assert!(
        first.events().iter().any(|e| matches!(e, ConnectorEvent::Acknowledged { message_id, .. } if *message_id == victim)),
        "the killed connector had produced {victim} and had it acknowledged"
    );
    assert!(!first.events().iter().any(
        |e| matches!(e, ConnectorEvent::Dequeued { message_id, .. } if *message_id == victim)
    ));
    assert!(
        !handle.events().iter().any(
            |e| matches!(&e.kind, EventKind::Dequeued { message_id, .. } if *message_id == victim)
        ),
        "DataHub never saw the dequeue"
    );
    assert!(!handle.is_empty());

    // Restart: DataHub delivers the message again.
    handle.set_dequeue_blackhole(false);
    let second = Recorder::default();
    let connector = Connector::new(h.config(&sim))
        .with_observer(second.observer())
        .start()
        .await
        .expect("restart");
    wait_for("the queue to drain", Duration::from_secs(60), || {
        handle.is_empty()
    })
    .await;
    connector.shutdown().await;
    assert!(
        second.acknowledged().iter().any(|(id, _)| *id == victim),
        "delivered again"
    );

    let parts_of_victim =
        afregning_cim::bundle::split(&handle.message_body(&victim).expect("body"))
            .expect("split")
            .len();
    let topic = h.raw_topic(afregning_connect::Queue::Timeseries);
    let total: usize = messages
        .iter()
        .map(|(_, id, _)| {
            afregning_cim::bundle::split(&handle.message_body(id).expect("body"))
                .expect("split")
                .len()
        })
        .sum();
    let expected = total + parts_of_victim;
    let records = read_topics(
        &h.env.bootstrap_servers,
        &h.env.group("reader"),
        vec![topic],
        Duration::from_secs(30),
        move |r| r.len() >= expected,
    )
    .await;
    assert_eq!(
        records.len(),
        expected,
        "every part once, the victim's parts twice"
    );
    let mut copies: BTreeMap<(String, String), Vec<&common::RawRecord>> = BTreeMap::new();
    for r in &records {
        copies
            .entry((
                r.header(h::MESSAGE_ID).to_string(),
                r.header(h::PART_INDEX).to_string(),
            ))
            .or_default()
            .push(r);
    }
    assert_eq!(
        copies.len(),
        total,
        "deduplicated by MessageId and part index: every part exactly once"
    );
    for ((id, index), list) in &copies {
        if *id == victim {
            assert_eq!(list.len(), 2, "{id}/{index} is there twice");
            assert_eq!(list[0].payload, list[1].payload);
            assert_eq!(list[0].key, list[1].key, "same key (MessageId + series)");
            assert_eq!(
                (list[0].topic.as_str(), list[0].partition),
                (list[1].topic.as_str(), list[1].partition),
                "same partition: routed by MessageId"
            );
        } else {
            assert_eq!(list.len(), 1, "{id}/{index}");
        }
    }
    // The inbound log shows both receptions.
    let log = afregning_connect::inbound_log::InboundLog::open(
        &afregning_connect::config::InboundLogConfig {
            dir: h.log_dir.path().to_path_buf(),
            ..Default::default()
        },
    )
    .expect("log");
    assert_eq!(
        log.entries()
            .expect("entries")
            .iter()
            .filter(|e| e.message_id == victim)
            .count(),
        2
    );
    sim.shutdown().await;
    h.cleanup().await;
}

//! One queue answering 5xx for a minute does not slow the others. The simulator redelivers
//! every dequeued message (duplicate-delivery rate 1), so every queue has work for the whole
//! test; the connector shares one request budget (governor, 60 requests/s) between its
//! pollers, which is exactly what a retry storm on the failing queue would eat. Measured from
//! the simulator's dequeue log: each other queue's dequeues per second during the outage
//! divided by before it, which must stay at or above 0.8. Takes about 90 s.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use afregning_connect::Connector;
use afregning_simulator::{
    Event, EventKind, FaultConfig, Queue, ScenarioConfig, Simulator, SimulatorConfig,
};
use common::{harness, wait_for};

fn dequeues_per_second(events: &[Event], from: Instant, to: Instant) -> BTreeMap<Queue, f64> {
    let secs = (to - from).as_secs_f64();
    let mut counts: BTreeMap<Queue, f64> = Queue::ALL.iter().map(|q| (*q, 0.0)).collect();
    for e in events {
        if let EventKind::Dequeued { queue, .. } = e.kind
            && e.at >= from
            && e.at < to
        {
            *counts.entry(queue).or_default() += 1.0;
        }
    }
    counts.values_mut().for_each(|c| *c /= secs);
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_queue_in_outage_for_a_minute_does_not_slow_the_others() {
    let h = harness("connect_outage").await;
    let sim = Simulator::new(SimulatorConfig {
        scenario: ScenarioConfig {
            metering_points: 40,
            days: 2,
            bundle_series: 4,
            bundle_records: 4,
            ..ScenarioConfig::default()
        },
        faults: FaultConfig {
            duplicate_delivery_rate: 1.0,
            ..FaultConfig::none()
        },
        ..SimulatorConfig::default()
    })
    .expect("scenario")
    .serve("127.0.0.1:0".parse().expect("addr"))
    .await
    .expect("simulator");
    let handle = sim.handle().clone();
    let mut config = h.config(&sim);
    config.requests_per_second = 60;
    let connector = Connector::new(config).start().await.expect("connector");

    tokio::time::sleep(Duration::from_secs(5)).await; // warm-up
    let before_start = Instant::now();
    tokio::time::sleep(Duration::from_secs(20)).await;
    let outage_start = Instant::now();
    handle.set_outage(Queue::Aggregations, true);
    tokio::time::sleep(Duration::from_secs(60)).await;
    let outage_end = Instant::now();
    handle.set_outage(Queue::Aggregations, false);
    let recovered = || {
        handle.events().iter().any(|e| {
            matches!(
                e.kind,
                EventKind::Dequeued {
                    queue: Queue::Aggregations,
                    ..
                }
            ) && e.at > outage_end
        })
    };
    wait_for(
        "the failed queue to recover",
        Duration::from_secs(20),
        recovered,
    )
    .await;
    connector.shutdown().await;

    let events = handle.events();
    let before = dequeues_per_second(&events, before_start, outage_start);
    let during = dequeues_per_second(&events, outage_start, outage_end);
    assert_eq!(during[&Queue::Aggregations], 0.0, "the outage bites");
    assert!(before[&Queue::Aggregations] > 0.0);
    let outage_answers = events
        .iter()
        .filter(|e| {
            matches!(
                e.kind,
                EventKind::Fault {
                    queue: Some(Queue::Aggregations),
                    ..
                }
            ) && e.at >= outage_start
                && e.at < outage_end
        })
        .count();
    for queue in [Queue::Timeseries, Queue::MasterData, Queue::Charges] {
        let ratio = during[&queue] / before[&queue];
        eprintln!(
            "{queue}: {:.2} dequeues/s before, {:.2} during the outage: ratio {ratio:.2}",
            before[&queue], during[&queue]
        );
        assert!(before[&queue] > 1.0, "{queue} had work before");
        assert!(
            ratio >= 0.8,
            "{queue} slowed down during the other queue's outage: ratio {ratio:.2}"
        );
    }
    eprintln!(
        "aggregations: {outage_answers} requests answered 503 in 60 s (backoff, not a retry storm)"
    );
    assert!(
        outage_answers < 200,
        "the failing queue backs off: {outage_answers} requests in 60 s"
    );
    sim.shutdown().await;
    h.cleanup().await;
}

//! A 403 stops that queue's poller with an alert-level log, a metric and a `/health` entry;
//! the other queues are drained as usual.

mod common;

use std::time::Duration;

use afregning_connect::{Connector, ConnectorEvent, Queue, QueueStatus};
use afregning_simulator::{FaultConfig, ScenarioConfig, Simulator, SimulatorConfig};
use common::{Recorder, harness, wait_for};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_forbidden_queue_stops_alone() {
    let h = harness("connect_403").await;
    let sim = Simulator::new(SimulatorConfig {
        scenario: ScenarioConfig {
            metering_points: 30,
            days: 2,
            bundle_series: 10,
            ..ScenarioConfig::default()
        },
        faults: FaultConfig {
            forbidden_queues: vec![afregning_simulator::Queue::Charges],
            ..FaultConfig::none()
        },
        ..SimulatorConfig::default()
    })
    .expect("scenario")
    .serve("127.0.0.1:0".parse().expect("addr"))
    .await
    .expect("simulator");
    let handle = sim.handle().clone();
    let recorder = Recorder::default();
    let connector = Connector::new(h.config(&sim))
        .with_observer(recorder.observer())
        .start()
        .await
        .expect("connector");
    wait_for("the other queues to drain", Duration::from_secs(60), || {
        let depths = handle.queue_depths();
        depths
            .iter()
            .filter(|(q, _)| **q != afregning_simulator::Queue::Charges)
            .all(|(_, d)| d.visible + d.scheduled == 0)
    })
    .await;
    assert!(
        handle.queue_depths()[&afregning_simulator::Queue::Charges].visible > 0,
        "charges untouched"
    );
    assert!(matches!(
        connector.status.snapshot()[&Queue::Charges],
        QueueStatus::Stopped { .. }
    ));
    assert_eq!(
        connector.status.snapshot()[&Queue::Timeseries],
        QueueStatus::Running
    );
    assert!(recorder.events().iter().any(|e| matches!(
        e,
        ConnectorEvent::QueueStopped {
            queue: Queue::Charges,
            ..
        }
    )));
    let http = reqwest::Client::new();
    let metrics = http
        .get(format!("http://{}/metrics", connector.admin_addr))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains(r#"afregning_connect_queue_stopped{queue="charges"} 1"#),
        "{metrics}"
    );
    assert!(metrics.contains(r#"afregning_connect_queue_stopped{queue="timeseries"} 0"#));
    assert!(
        metrics.contains(r#"afregning_connect_errors_total{queue="charges",kind="forbidden"} 1"#)
    );
    assert!(metrics.contains("afregning_connect_cycle_duration_seconds_bucket"));
    let health: serde_json::Value = http
        .get(format!("http://{}/health", connector.admin_addr))
        .send()
        .await
        .expect("health")
        .json()
        .await
        .expect("json");
    assert_eq!(health["queues"]["charges"]["state"], "stopped");
    assert_eq!(health["queues"]["timeseries"]["state"], "running");
    connector.shutdown().await;
    sim.shutdown().await;
    h.cleanup().await;
}

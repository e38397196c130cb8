//! DataHub's queues through the API, read from a real connector's `/metrics`:
//! the DataHub simulator serves a small scenario (without late messages), the
//! connector drains every queue into the raw topics on the real broker, and
//! the API, given the connector's admin `/metrics` URL, answers per queue
//! exactly the number of messages the simulator had queued as received and
//! as dequeued, at least one raw record per message produced, no queue
//! stopped. Also 401 without a token, 403 for billing, 503 without the URL
//! and 503 when the connector is gone.

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use afregning_api::AppState;
use afregning_connect::Connector;
use afregning_connect::config::{
    BackoffConfig, ConnectConfig, KafkaConfig, OutboundConfig, QueueConfig, QueuesConfig, Secret,
};
use afregning_simulator::{FaultConfig, ScenarioConfig, Simulator, SimulatorConfig};
use afregning_topology::Catalogue;
use chrono::NaiveDate;
use serde_json::Value;
use support::{Harness, problem, token};

/// The connector's configuration: `simulator` into `catalogue`'s raw topics,
/// quick intervals, outbound off, its admin port on a free port.
fn connect_config(
    h: &Harness,
    catalogue: &Catalogue,
    simulator: &afregning_simulator::RunningSimulator,
    work: &Path,
) -> ConnectConfig {
    let mut connect = ConnectConfig::default();
    connect.datahub.base_url = simulator.url.clone();
    connect.datahub.token_url = simulator.token_url();
    connect.datahub.client_id = "test".into();
    connect.datahub.client_secret = Secret::new("test-secret");
    connect.queues = QueuesConfig::all(QueueConfig::every(20, 200));
    connect.retry = BackoffConfig {
        initial_ms: 50,
        max_ms: 1_000,
        multiplier: 2.0,
    };
    connect.requests_per_second = 500;
    connect.kafka = KafkaConfig {
        bootstrap_servers: h.env.bootstrap_servers.clone(),
        schema_registry_url: h.env.registry_url.clone(),
        topology: catalogue.settings().clone(),
        ..KafkaConfig::default()
    };
    connect.inbound_log.dir = work.join("inbound");
    connect.outbound = OutboundConfig {
        enabled: false,
        ..OutboundConfig::default()
    };
    connect.admin_listen = "127.0.0.1:0".parse().expect("an address");
    connect
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_queues_are_what_the_connector_received_and_dequeued() -> anyhow::Result<()> {
    afregning_testkit::init_logging();
    let mut h = Harness::start("api-datahub-queues").await?;
    let path = "/v1/operations/datahub-queues";
    // Without the URL: 503.
    problem(h.get(path, Some(&token("operator"))).await, 503).await;

    let catalogue = h.apply_topology(2).await?;
    let mut config = SimulatorConfig {
        scenario: ScenarioConfig {
            metering_points: 3,
            first_day: NaiveDate::from_ymd_opt(2026, 3, 1).expect("a day"),
            days: 2,
            grid_areas: vec!["344".into()],
            late_share: 0.0,
            ..ScenarioConfig::default()
        },
        faults: FaultConfig::none(),
        ..SimulatorConfig::default()
    };
    config.auth.client_id = "test".into();
    config.auth.client_secret = "test-secret".into();
    let simulator = tokio::task::spawn_blocking(move || Simulator::new(config))
        .await??
        .serve("127.0.0.1:0".parse()?)
        .await?;
    let queued: BTreeMap<String, u64> = simulator
        .handle()
        .queue_depths()
        .into_iter()
        .map(|(queue, depth)| {
            (
                queue.path().to_string(),
                (depth.visible + depth.scheduled) as u64,
            )
        })
        .collect();
    assert!(
        queued.get("timeseries").is_some_and(|n| *n > 0),
        "{queued:?}"
    );

    let work = tempfile::tempdir()?;
    let connector = Connector::new(connect_config(&h, &catalogue, &simulator, work.path()))
        .start()
        .await?;
    let metrics_url = format!("http://{}/metrics", connector.admin_addr);
    h.respawn(AppState {
        pool: h.pool.clone(),
        render_metrics: std::sync::Arc::new(String::new),
        authenticator: support::authenticator().await,
        broker: None,
        supplier_gln: None,
        products: None,
        connector_metrics_url: Some(metrics_url.clone()),
        portfolio_keys: None,
    })
    .await?;
    let deadline = Instant::now() + Duration::from_secs(120);
    while !simulator.handle().is_empty() {
        anyhow::ensure!(
            Instant::now() < deadline,
            "not drained: {:?}",
            simulator.handle().queue_depths()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    problem(h.get(path, None).await, 401).await;
    problem(h.get(path, Some(&token("billing"))).await, 403).await;
    // The last dequeue's metric follows its answer: ask until every queue shows it.
    let deadline = Instant::now() + Duration::from_secs(20);
    let answer = loop {
        let response = h.get(path, Some(&token("readonly"))).await;
        assert_eq!(response.status(), 200);
        let answer: Value = response.json().await?;
        let dequeued: BTreeMap<String, u64> = answer["queues"]
            .as_array()
            .expect("queues")
            .iter()
            .map(|q| {
                (
                    q["queue"].as_str().unwrap_or_default().to_string(),
                    q["messages_dequeued"].as_u64().unwrap_or_default(),
                )
            })
            .filter(|(_, n)| *n > 0)
            .collect();
        let expected: BTreeMap<String, u64> =
            queued.clone().into_iter().filter(|(_, n)| *n > 0).collect();
        if dequeued == expected || Instant::now() > deadline {
            assert_eq!(dequeued, expected, "{answer}");
            break answer;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(answer["source"], metrics_url);
    for q in answer["queues"].as_array().expect("queues") {
        let queue = q["queue"].as_str().expect("a queue");
        let messages = queued.get(queue).copied().unwrap_or_default();
        assert_eq!(q["messages_received"], messages, "{q}");
        assert!(
            q["records_produced"].as_u64().unwrap_or_default() >= messages,
            "{q}"
        );
        assert_eq!(q["stopped"], false, "{q}");
        if messages > 0 {
            assert!(q["bytes_received"].as_u64() > Some(0), "{q}");
        }
    }

    // The connector gone: 503.
    connector.shutdown().await;
    problem(h.get(path, Some(&token("operator"))).await, 503).await;
    simulator.shutdown().await;
    h.stop().await?;
    Ok(())
}

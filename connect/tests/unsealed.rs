//! Decision 0147 on the real broker: DataHub's RSM-028 names a customer by CPR and name. A
//! connector without the portfolio keyring publishes, logs and dequeues none of it: the
//! MasterData queue stops with the reason while the other queues go on. Restarted with the
//! keyring, the same message is delivered, sealed: nothing lost, nothing in plaintext.

mod common;

use std::time::Duration;

use afregning_cim::Gsrn;
use afregning_cim::codes::ProcessType;
use afregning_connect::{Connector, ConnectorEvent, Queue};
use afregning_portfolio::personal::Keyring;
use afregning_simulator::{FaultConfig, ScenarioConfig, Simulator, SimulatorConfig};
use common::{Recorder, harness, read_topics, wait_for};

const CPR: &str = "0801741527";
const NAME: &str = "Jens Testesen";
const SUPPLIER: &str = "5799999933318";

/// Our move-in with the customer in plaintext, as the connector posts it after opening the
/// placeholders; effective on the scenario clock's day (midnight of 5 November in Copenhagen).
fn move_in(gsrn: Gsrn) -> Vec<u8> {
    let start = "2025-11-04T23:00:00Z"
        .parse::<chrono::DateTime<chrono::Utc>>()
        .expect("a time");
    common::rsm001(
        "move-in-unsealed",
        SUPPLIER,
        gsrn,
        ProcessType::MOVE_IN,
        start,
        Some((CPR, NAME)),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn customer_data_is_never_published_unsealed_and_is_delivered_once_a_keyring_is_there() {
    let h = harness("connect_unsealed").await;
    let sim = Simulator::new(SimulatorConfig {
        scenario: ScenarioConfig {
            metering_points: 2,
            days: 1,
            grid_areas: vec!["344".into()],
            ..ScenarioConfig::default()
        },
        faults: FaultConfig::none(),
        ..SimulatorConfig::default()
    })
    .expect("scenario")
    .serve("127.0.0.1:0".parse().expect("addr"))
    .await
    .expect("simulator");
    let handle = sim.handle().clone();
    // DataHub confirms our move-in and sends RSM-022, RSM-028 (the customer) and RSM-031.
    let http = reqwest::Client::new();
    let token: serde_json::Value = http
        .post(sim.token_url())
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "afregning-demo"),
            ("client_secret", "demo-secret"),
            ("scope", "datahub/.default"),
        ])
        .send()
        .await
        .expect("token")
        .json()
        .await
        .expect("json");
    let gsrn = Gsrn::with_check_digit("57131377700000021").expect("gsrn");
    let posted = http
        .post(format!("{}/v1.0/cim/requestchangeofsupplier", sim.url))
        .bearer_auth(token["access_token"].as_str().expect("a token"))
        .body(move_in(gsrn))
        .send()
        .await
        .expect("post");
    assert_eq!(posted.status(), reqwest::StatusCode::ACCEPTED);

    // Without a keyring: the MasterData queue stops at the RSM-028, the others drain.
    let mut config = h.config(&sim);
    config.outbound.portfolio_key_file = None;
    let recorder = Recorder::default();
    let connector = Connector::new(config.clone())
        .with_observer(recorder.observer())
        .start()
        .await
        .expect("connector");
    wait_for(
        "the MasterData queue to stop",
        Duration::from_secs(60),
        || {
            recorder.events().iter().any(|e| {
                matches!(
                    e,
                    ConnectorEvent::QueueStopped {
                        queue: Queue::MasterData,
                        ..
                    }
                )
            })
        },
    )
    .await;
    wait_for("the charges to drain", Duration::from_secs(60), || {
        handle.queue_depths()[&afregning_simulator::Queue::Charges].visible == 0
    })
    .await;
    let metrics = http
        .get(format!("http://{}/metrics", connector.admin_addr))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics
            .contains(r#"afregning_connect_personal_data_unsealable_total{queue="masterdata"} 1"#),
        "{metrics}"
    );
    connector.shutdown().await;
    assert!(
        handle.queue_depths()[&afregning_simulator::Queue::MasterData].visible > 0,
        "the RSM-028 stays on DataHub's queue"
    );
    let raw = h.raw_topic(Queue::MasterData);
    let bootstrap = h.env.bootstrap_servers.clone();
    let first = read_topics(
        &bootstrap,
        &h.env.group("unsealed-1"),
        vec![raw.clone()],
        Duration::from_secs(5),
        |_| false,
    )
    .await;
    assert!(
        first
            .iter()
            .all(|r| !String::from_utf8_lossy(&r.payload)
                .contains("CharacteristicsOfACustomerAtAnAP")),
        "no RSM-028 published"
    );

    // With the keyring: delivered, sealed.
    let mut keys = Keyring::default();
    keys.generate("k1").expect("key");
    let key_file = h.log_dir.path().join("portfolio.keys");
    keys.save(&key_file).expect("key file");
    config.outbound.portfolio_key_file = Some(key_file);
    let connector = Connector::new(config).start().await.expect("connector");
    wait_for(
        "the MasterData queue to drain",
        Duration::from_secs(60),
        || {
            let d = handle.queue_depths()[&afregning_simulator::Queue::MasterData];
            d.visible + d.scheduled == 0
        },
    )
    .await;
    connector.shutdown().await;
    let all = read_topics(
        &bootstrap,
        &h.env.group("unsealed-2"),
        vec![raw],
        Duration::from_secs(10),
        |records| {
            records.iter().any(|r| {
                String::from_utf8_lossy(&r.payload).contains("CharacteristicsOfACustomerAtAnAP")
            })
        },
    )
    .await;
    let customer = all
        .iter()
        .map(|r| String::from_utf8_lossy(&r.payload).into_owned())
        .find(|p| p.contains("CharacteristicsOfACustomerAtAnAP"))
        .expect("the RSM-028 delivered");
    assert!(customer.contains("sealed:identity:") && customer.contains("sealed:name:"));
    for r in &all {
        let text = String::from_utf8_lossy(&r.payload);
        assert!(
            !text.contains(CPR) && !text.contains(NAME),
            "plaintext on the raw topic"
        );
    }
    let opened = afregning_portfolio::outbound::open_placeholders(&customer, &keys).expect("opens");
    assert!(opened.contains(CPR) && opened.contains(NAME));
    sim.shutdown().await;
    h.cleanup().await;
}

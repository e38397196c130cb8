//! Issue 17's on-demand requests end to end on the real broker, schema registry and
//! PostgreSQL, with the real connector and the DataHub simulator: requests recorded in
//! `datahub_request` (as the API and `afregning reconcile request` record them) are published
//! by the relay, posted by the connector's outbound path, accepted by the simulator, and
//! answered on its Aggregations queue from its ground truth; the connector brings the answers
//! onto the raw topic, and the relay matches them to their request by the series' mRID.
//!
//! - An RSM-017 for grid area 344's March (wholesale fixing) is answered with an RSM-019.
//! - An RSM-016 for the same month (balance fixing) is answered with an RSM-014.
//! - An RSM-017 for grid area 740, where the scenario has no metering point, is answered
//!   with DataHub's reject, and recorded as refused with its reason.
//!
//! What the relay recorded is checked against the raw topic read independently: the
//! answering documents' MessageIds and series per request are exactly those of the
//! records on the topic that name the request.

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use afregning_api::datahub_requests::answers::answers;
use afregning_api::datahub_requests::document::{RequestIds, RequestSpec, RequestedData, document};
use afregning_api::datahub_requests::relay::{Relay, RelayConfig};
use afregning_api::datahub_requests::store::{self, StoredRequest};
use afregning_connect::Connector;
use afregning_simulator::SimulatorConfig;
use afregning_simulator::scenario::ScenarioConfig;
use afregning_sinks::schema::{self, StorageSettings};
use afregning_testkit::TestEnv;
use afregning_topology::{Codec, topics};
use chrono::{NaiveDate, Utc};

const SUPPLIER: &str = "5790002000000";

fn spec(data: RequestedData, reason: &str, grid_area: &str) -> RequestSpec {
    RequestSpec {
        data,
        business_reason: reason.into(),
        settlement_version: None,
        grid_area: grid_area.into(),
        month: NaiveDate::from_ymd_opt(2026, 3, 1).expect("a month"),
        supplier_gln: SUPPLIER.into(),
        charge_owner_gln: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn requests_for_datahubs_results_are_sent_and_matched_to_their_answers() -> anyhow::Result<()>
{
    let env = TestEnv::start("reconcile_requests").await?;
    let catalogue = support::deployment(&env, &env.namespace, 2).await?;
    let mut conn = schema::connect(&env.database_url, "test").await?;
    schema::migrate(
        &mut conn,
        &StorageSettings::default(),
        Utc::now().date_naive(),
    )
    .await?;

    let config = SimulatorConfig {
        scenario: ScenarioConfig {
            metering_points: 4,
            first_day: NaiveDate::from_ymd_opt(2026, 3, 1).expect("a day"),
            days: 31,
            supplier_gln: SUPPLIER.into(),
            grid_areas: vec!["344".into()],
            aggregations: false,
            ..ScenarioConfig::default()
        },
        faults: afregning_simulator::FaultConfig::none(),
        ..SimulatorConfig::default()
    };
    let simulator = support::serve_simulator(config).await?;

    // The requests, as the API records them.
    let asked = [
        (
            spec(RequestedData::WholesaleSettlement, "D05", "344"),
            "answered",
        ),
        (
            spec(RequestedData::AggregatedMeasureData, "D04", "344"),
            "answered",
        ),
        (
            spec(RequestedData::WholesaleSettlement, "D05", "740"),
            "refused",
        ),
    ];
    let mut recorded = Vec::new();
    for (spec, expected) in &asked {
        let ids = RequestIds::new();
        let (_, cim) = document(
            spec,
            &ids,
            chrono::SubsecRound::trunc_subsecs(Utc::now(), 0),
        );
        let stored = store::record(&mut conn, spec, &ids, &cim, "test", "end-to-end test").await?;
        assert_eq!(stored.state, "pending");
        recorded.push((stored, *expected));
    }

    // The connector (outbound on) and the relay.
    let work = tempfile::tempdir()?;
    let mut connect = support::connect_config(&env, &catalogue, &simulator, work.path());
    connect.outbound.enabled = true;
    let connector = Connector::new(connect).start().await?;
    let codec = Codec::new(catalogue.clone(), &env.registry_url);
    let relay = Relay::new(
        env.pg_pool().await?,
        codec.clone(),
        &RelayConfig {
            bootstrap_servers: env.bootstrap_servers.clone(),
            group_id: "reconcile-relay-test".into(),
            publish_interval: Duration::from_millis(200),
        },
    )
    .map_err(anyhow::Error::msg)?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let relay = tokio::spawn(relay.run(async {
        let _ = stopped.await;
    }));

    // Until every request reached the state its answer puts it in.
    let started = Instant::now();
    let states = loop {
        let mut now: Vec<StoredRequest> = Vec::new();
        for (stored, _) in &recorded {
            now.push(
                store::get(&mut conn, &stored.request_id)
                    .await?
                    .expect("recorded"),
            );
        }
        let done = now
            .iter()
            .zip(&recorded)
            .all(|(s, (_, expected))| s.state == *expected);
        if done {
            break now;
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(180),
            "not answered in 180 s: {:?}",
            now.iter()
                .map(|s| (&s.requested_data, &s.grid_area, &s.state, &s.response))
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    let _ = stop.send(());
    relay.await?;
    connector.shutdown().await;
    simulator.shutdown().await;

    // Every answer on the raw topic, read independently, per request series id.
    let raw_topic = codec.topic_name(topics::AGGREGATIONS_RAW).to_string();
    let mut on_topic: BTreeMap<String, (Vec<String>, Vec<String>, bool)> = BTreeMap::new();
    for record in support::read_raw(&env, &raw_topic)? {
        for answer in answers(record.value.as_deref().unwrap_or_default()) {
            let entry = on_topic.entry(answer.original_transaction_id).or_default();
            if !entry.0.contains(&answer.message_id) {
                entry.0.push(answer.message_id);
            }
            entry.1.extend(answer.series_ids);
            entry.2 |= answer.refusal.is_some();
        }
    }
    for (state, (stored, expected)) in states.iter().zip(&recorded) {
        assert_eq!(state.state, *expected);
        assert_eq!(state.http_status, Some(202), "{state:?}");
        assert!(state.correlation_id.is_some(), "{state:?}");
        let (messages, series, refused) = on_topic
            .get(&stored.transaction_id)
            .unwrap_or_else(|| panic!("no answer on the topic names {}", stored.transaction_id));
        let mut recorded_messages = state.answer_message_ids.clone();
        recorded_messages.sort();
        let mut topic_messages = messages.clone();
        topic_messages.sort();
        assert_eq!(recorded_messages, topic_messages, "{state:?}");
        let mut recorded_series = state.answer_series_ids.clone();
        recorded_series.sort();
        let mut topic_series = series.clone();
        topic_series.sort();
        assert_eq!(recorded_series, topic_series, "{state:?}");
        assert_eq!(*refused, *expected == "refused");
        if *expected == "answered" {
            assert!(
                series.len() > 1,
                "results come as several series: {state:?}"
            );
        } else {
            assert!(
                state.response.as_deref().is_some_and(|r| r.contains("E0H")),
                "{state:?}"
            );
        }
    }
    // Nothing on the topic answers a request we did not make.
    assert_eq!(on_topic.len(), recorded.len(), "{:?}", on_topic.keys());
    drop(conn);
    env.cleanup().await?;
    Ok(())
}

//! Outbound requests through the topics: a move-in (RSM-001) posted to DataHub (through 5xx
//! faults), answered on the responses topic with DataHub's CorrelationId, and DataHub's own
//! answer (the confirm) arriving on the MasterData raw topic. The same document sent twice
//! (a request re-read after a crash) reaches DataHub twice but is processed once, and both
//! requests are recorded as accepted. A document DataHub refuses is recorded as rejected with
//! DataHub's error; a body that is not what the request says is not sent at all.

mod common;

use std::time::Duration;

use afregning_cim::Gsrn;
use afregning_cim::codes::ProcessType;
use afregning_connect::Connector;
use afregning_simulator::{
    EnqueueReason, EventKind, FaultConfig, ScenarioConfig, Simulator, SimulatorConfig,
};
use afregning_topology::records::{
    OutboundDocumentType, OutboundRequest, OutboundRequestKey, OutboundResponse, OutboundStatus,
};
use afregning_topology::{Codec, topics};
use chrono::Utc;
use common::{harness, read_topics, wait_for};
use rdkafka::ClientConfig;
use rdkafka::producer::FutureProducer;

/// A move-in dated yesterday (BRS-009 allows five working days late, so DataHub confirms it
/// and its master data is due at once).
fn switch(message_id: &str, sender: &str, gsrn: Gsrn) -> String {
    let body = common::rsm001(
        message_id,
        sender,
        gsrn,
        ProcessType::MOVE_IN,
        Utc::now() - chrono::Duration::days(1),
        None,
    );
    String::from_utf8(body).expect("utf-8")
}

fn request(
    id: &str,
    document_type: OutboundDocumentType,
    body: String,
) -> (OutboundRequestKey, OutboundRequest) {
    (
        OutboundRequestKey {
            request_id: id.into(),
        },
        OutboundRequest {
            request_id: id.into(),
            document_type,
            body,
            requested_by: "test".into(),
            requested_at: chrono::SubsecRound::trunc_subsecs(Utc::now(), 3),
            reason: Some("outbound test".into()),
        },
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn outbound_requests_are_posted_and_answered_on_the_responses_topic() {
    let h = harness("connect_outbound").await;
    let sim = Simulator::new(SimulatorConfig {
        scenario: ScenarioConfig {
            metering_points: 5,
            days: 1,
            aggregations: false,
            ..ScenarioConfig::default()
        },
        faults: FaultConfig {
            server_error_rate: 0.3,
            ..FaultConfig::none()
        },
        // The scenario clock at wall time, so a switch dated yesterday is already effective.
        scenario_now: Some(Utc::now()),
        ..SimulatorConfig::default()
    })
    .expect("scenario")
    .serve("127.0.0.1:0".parse().expect("addr"))
    .await
    .expect("simulator");
    let handle = sim.handle().clone();
    let codec = Codec::new(h.catalogue.clone(), &h.env.registry_url);
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &h.env.bootstrap_servers)
        .create()
        .expect("producer");
    let gsrn = Gsrn::with_check_digit("57131355500000001").expect("gsrn");
    let switch_doc = switch("switch-1", "5799999933318", gsrn);
    let requests = vec![
        request(
            "r-accepted",
            OutboundDocumentType::RequestChangeOfSupplier,
            switch_doc.clone(),
        ),
        request(
            "r-resent",
            OutboundDocumentType::RequestChangeOfSupplier,
            switch_doc,
        ),
        request(
            "r-refused",
            OutboundDocumentType::RequestChangeOfSupplier,
            switch("switch-2", "5790000000005", gsrn),
        ),
        request(
            "r-mislabelled",
            OutboundDocumentType::RequestWholesaleSettlement,
            switch("switch-3", "5799999933318", gsrn),
        ),
    ];
    for (key, value) in &requests {
        let record = codec
            .encode(topics::OUTBOUND_REQUESTS, key, value)
            .await
            .expect("encode");
        producer
            .send(record.as_future_record(), Duration::from_secs(10))
            .await
            .expect("produce");
    }
    let mut config = h.config(&sim);
    config.outbound.enabled = true;
    let connector = Connector::new(config).start().await.expect("connector");
    let responses_topic = codec.topic_name(topics::OUTBOUND_RESPONSES).to_string();
    let records = read_topics(
        &h.env.bootstrap_servers,
        &h.env.group("responses"),
        vec![responses_topic],
        Duration::from_secs(60),
        |r| r.len() >= 4,
    )
    .await;
    let mut answers = std::collections::BTreeMap::new();
    for r in &records {
        let response: OutboundResponse = codec
            .decode_value(topics::OUTBOUND_RESPONSES, Some(&r.payload))
            .await
            .expect("decode")
            .expect("value");
        answers.insert(response.request_id.clone(), response);
    }
    assert_eq!(answers.len(), 4, "{answers:?}");
    let accepted = &answers["r-accepted"];
    assert_eq!(accepted.status, OutboundStatus::Accepted);
    assert_eq!(accepted.http_status, Some(202));
    assert!(accepted.correlation_id.is_some());
    assert_eq!(
        answers["r-resent"].status,
        OutboundStatus::Accepted,
        "the duplicate refusal means it was accepted before"
    );
    assert_eq!(answers["r-resent"].http_status, Some(400));
    let refused = &answers["r-refused"];
    assert_eq!(refused.status, OutboundStatus::Rejected);
    assert!(
        refused.body.as_deref().is_some_and(|b| b.contains("00002")),
        "DataHub's error: {refused:?}"
    );
    let mislabelled = &answers["r-mislabelled"];
    assert_eq!(
        (
            mislabelled.status,
            mislabelled.http_status,
            mislabelled.attempts
        ),
        (OutboundStatus::Rejected, None, 0)
    );

    // DataHub processed switch-1 once: one 202, one answer on the MasterData queue.
    let events = handle.events();
    let accepted_posts = events
        .iter()
        .filter(|e| matches!(&e.kind, EventKind::Received { status: 202, message_id: Some(id), .. } if id == "switch-1"))
        .count();
    assert_eq!(accepted_posts, 1);
    let answers_enqueued = events
        .iter()
        .filter(|e| {
            matches!(
                e.kind,
                EventKind::Enqueued {
                    reason: EnqueueReason::Answer,
                    ..
                }
            )
        })
        .count();
    assert_eq!(answers_enqueued, 1);
    // …and the connector brought the confirm and the new master data in.
    wait_for(
        "the answers to be dequeued",
        Duration::from_secs(30),
        || handle.is_empty(),
    )
    .await;
    connector.shutdown().await;
    let masterdata = h.raw_topic(afregning_connect::Queue::MasterData);
    let raw = read_topics(
        &h.env.bootstrap_servers,
        &h.env.group("md"),
        vec![masterdata],
        Duration::from_secs(20),
        |r| {
            r.iter().any(|r| {
                String::from_utf8_lossy(&r.payload)
                    .contains("ConfirmRequestChangeOfSupplier_MarketDocument")
            })
        },
    )
    .await;
    assert!(raw.iter().any(|r| {
        String::from_utf8_lossy(&r.payload)
            .contains("ConfirmRequestChangeOfSupplier_MarketDocument")
    }));
    drop(producer);
    drop(codec);
    sim.shutdown().await;
    h.cleanup().await;
}

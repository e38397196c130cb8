//! The simulator over HTTP, as a connector sees it: OAuth2, peek/dequeue with DataHub's status
//! codes, faults, outbound requests with answers on the MasterData queue, the spot-price
//! dataset and the admin API.

use std::time::Duration;

use afregning_cim::codes::{BusinessSector, MessageType, ProcessType, Role};
use afregning_cim::rsm001::{RequestChangeOfSupplier, SupplierChange};
use afregning_cim::{DATAHUB_GLN, Document, Gsrn, Header, Participant, PartyId};
use afregning_simulator::faults::FaultConfig;
use afregning_simulator::{
    AuthConfig, EventKind, Queue, RunningSimulator, ScenarioConfig, Simulator, SimulatorConfig,
};
use chrono::{DateTime, Utc};
use reqwest::StatusCode;

const SUPPLIER: &str = "5799999933318";

async fn start(faults: FaultConfig, lifetime: u64) -> RunningSimulator {
    let config = SimulatorConfig {
        scenario: ScenarioConfig {
            metering_points: 20,
            days: 2,
            bundle_series: 10,
            ..ScenarioConfig::default()
        },
        faults,
        auth: AuthConfig {
            token_lifetime_secs: lifetime,
            ..AuthConfig::default()
        },
        ..SimulatorConfig::default()
    };
    Simulator::new(config)
        .expect("scenario")
        .serve("127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("serve")
}

async fn token(http: &reqwest::Client, sim: &RunningSimulator, secret: &str) -> reqwest::Response {
    http.post(sim.token_url())
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "afregning-demo"),
            ("client_secret", secret),
            ("scope", "datahub/.default"),
        ])
        .send()
        .await
        .expect("token request")
}

async fn bearer(http: &reqwest::Client, sim: &RunningSimulator) -> String {
    let body: serde_json::Value = token(http, sim, "demo-secret")
        .await
        .json()
        .await
        .expect("json");
    format!("Bearer {}", body["access_token"].as_str().expect("token"))
}

async fn peek(
    http: &reqwest::Client,
    sim: &RunningSimulator,
    auth: &str,
    queue: &str,
) -> reqwest::Response {
    http.get(format!("{}/v1.0/cim/{queue}", sim.url))
        .header("Authorization", auth)
        .header("Content-Type", "application/json")
        .send()
        .await
        .expect("peek")
}

async fn dequeue(
    http: &reqwest::Client,
    sim: &RunningSimulator,
    auth: &str,
    id: &str,
) -> StatusCode {
    http.delete(format!("{}/v1.0/cim/dequeue/{id}", sim.url))
        .header("Authorization", auth)
        .send()
        .await
        .expect("dequeue")
        .status()
}

#[tokio::test]
async fn oauth2_tokens_are_checked_and_expire() {
    let sim = start(FaultConfig::none(), 1).await;
    let http = reqwest::Client::new();
    assert_eq!(
        token(&http, &sim, "wrong").await.status(),
        StatusCode::UNAUTHORIZED
    );
    let auth = bearer(&http, &sim).await;
    assert_eq!(
        peek(&http, &sim, "Bearer nonsense", "timeseries")
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        peek(&http, &sim, &auth, "timeseries").await.status(),
        StatusCode::OK
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        peek(&http, &sim, &auth, "timeseries").await.status(),
        StatusCode::UNAUTHORIZED,
        "expired"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn peek_and_dequeue_behave_like_datahub() {
    let sim = start(FaultConfig::none(), 60).await;
    let http = reqwest::Client::new();
    let auth = bearer(&http, &sim).await;
    let no_type = http
        .get(format!("{}/v1.0/cim/timeseries", sim.url))
        .header("Authorization", &auth)
        .send()
        .await
        .expect("peek");
    assert_eq!(no_type.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let first = peek(&http, &sim, &auth, "timeseries").await;
    assert_eq!(first.status(), StatusCode::OK);
    let id = first.headers()["MessageId"]
        .to_str()
        .expect("id")
        .to_string();
    let body = first.bytes().await.expect("body");
    let again = peek(&http, &sim, &auth, "measuredata").await;
    assert_eq!(
        again.headers()["MessageId"].to_str().expect("id"),
        id,
        "same bundle until dequeued"
    );
    assert_eq!(again.bytes().await.expect("body"), body);
    match afregning_cim::parse(&body).expect("a document") {
        Document::NotifyValidatedMeasureData(doc) => assert_eq!(doc.header.message_id, id),
        other => panic!("{:?}", other.kind()),
    }
    assert_eq!(dequeue(&http, &sim, &auth, &id).await, StatusCode::OK);
    assert_eq!(
        dequeue(&http, &sim, &auth, &id).await,
        StatusCode::BAD_REQUEST,
        "unknown id"
    );
    let next = peek(&http, &sim, &auth, "timeseries").await;
    assert_ne!(next.headers()["MessageId"].to_str().expect("id"), id);
    // Drain the charges queue: then 204.
    loop {
        let r = peek(&http, &sim, &auth, "charges").await;
        if r.status() == StatusCode::NO_CONTENT {
            break;
        }
        let id = r.headers()["MessageId"].to_str().expect("id").to_string();
        assert_eq!(dequeue(&http, &sim, &auth, &id).await, StatusCode::OK);
    }
    let events = sim.handle().events();
    assert!(
        events.iter().any(
            |e| matches!(&e.kind, EventKind::Dequeued { message_id, .. } if *message_id == id)
        )
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn faults_answer_as_configured() {
    let sim = start(
        FaultConfig {
            forbidden_queues: vec![Queue::Charges],
            outage_queues: vec![Queue::Aggregations],
            duplicate_delivery_rate: 1.0,
            ..FaultConfig::none()
        },
        60,
    )
    .await;
    let http = reqwest::Client::new();
    let auth = bearer(&http, &sim).await;
    assert_eq!(
        peek(&http, &sim, &auth, "charges").await.status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        peek(&http, &sim, &auth, "aggregations").await.status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    // Duplicate delivery: a dequeued message comes back with the same id and bytes.
    let r = peek(&http, &sim, &auth, "masterdata").await;
    let id = r.headers()["MessageId"].to_str().expect("id").to_string();
    let body = r.bytes().await.expect("body");
    assert_eq!(dequeue(&http, &sim, &auth, &id).await, StatusCode::OK);
    let mut seen_again = false;
    for _ in 0..10 {
        let r = peek(&http, &sim, &auth, "masterdata").await;
        let again = r.headers()["MessageId"].to_str().expect("id").to_string();
        if again == id {
            assert_eq!(r.bytes().await.expect("body"), body);
            seen_again = true;
            break;
        }
        sim.handle().set_faults(FaultConfig::none());
        assert_eq!(dequeue(&http, &sim, &auth, &again).await, StatusCode::OK);
    }
    assert!(seen_again);
    // 429 with Retry-After; revoked tokens.
    sim.handle().set_faults(FaultConfig {
        too_many_requests_rate: 1.0,
        retry_after_secs: 7,
        ..FaultConfig::none()
    });
    let r = peek(&http, &sim, &auth, "timeseries").await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.headers()["Retry-After"], "7");
    sim.handle().set_faults(FaultConfig {
        token_revoke_rate: 1.0,
        ..FaultConfig::none()
    });
    assert_eq!(
        peek(&http, &sim, &auth, "timeseries").await.status(),
        StatusCode::UNAUTHORIZED
    );
    sim.handle().set_faults(FaultConfig::none());
    assert_eq!(
        peek(&http, &sim, &auth, "timeseries").await.status(),
        StatusCode::UNAUTHORIZED,
        "the old token stays revoked"
    );
    let auth = bearer(&http, &sim).await;
    assert_eq!(
        peek(&http, &sim, &auth, "timeseries").await.status(),
        StatusCode::OK
    );
    sim.shutdown().await;
}

/// The header of a request we send DataHub.
fn request_header(
    message_id: &str,
    process_type: ProcessType,
    document_type: MessageType,
) -> Header {
    Header {
        message_id: message_id.into(),
        business_sector: Some(BusinessSector::ELECTRICITY),
        created: Utc::now(),
        process_type,
        reason_code: None,
        sender: Participant {
            id: PartyId::gln(SUPPLIER),
            role: Role::ENERGY_SUPPLIER,
        },
        receiver: Participant {
            id: PartyId::gln(DATAHUB_GLN),
            role: Role::METERING_POINT_ADMINISTRATOR,
        },
        document_type,
    }
}

fn switch_request(message_id: &str, gsrn: Gsrn, start: DateTime<Utc>) -> Vec<u8> {
    process_request(message_id, gsrn, start, ProcessType::CHANGE_OF_SUPPLIER)
}

fn process_request(
    message_id: &str,
    gsrn: Gsrn,
    start: DateTime<Utc>,
    process_type: ProcessType,
) -> Vec<u8> {
    let doc = RequestChangeOfSupplier {
        header: request_header(
            message_id,
            process_type,
            MessageType::REQUEST_CHANGE_OF_SUPPLIER,
        ),
        records: vec![SupplierChange {
            transaction_id: format!("tx-{message_id}"),
            business_process_id: None,
            balance_responsible: None,
            customer_id: None,
            customer_name: None,
            energy_supplier: PartyId::gln(SUPPLIER),
            metering_point: gsrn,
            shipper: None,
            start,
        }],
    };
    afregning_cim::rsm001::write(&doc)
}

#[tokio::test]
async fn a_supplier_switch_is_answered_and_its_master_data_arrives_on_the_effective_date() {
    let sim = start(FaultConfig::none(), 60).await;
    let http = reqwest::Client::new();
    let auth = bearer(&http, &sim).await;
    let post = |segment: &'static str, body: Vec<u8>| {
        let http = http.clone();
        let url = format!("{}/v1.0/cim/{segment}", sim.url);
        let auth = auth.clone();
        async move {
            http.post(url)
                .header("Authorization", auth)
                .body(body)
                .send()
                .await
                .expect("post")
        }
    };
    let now = Utc::now();
    // The scenario clock: noon of the day after the scenario's last day (2025-11-05).
    let today = chrono::NaiveDate::from_ymd_opt(2025, 11, 6).expect("date");
    let midnight = |d: chrono::NaiveDate| afregning_settlement::calendar::local_midnight(d);
    let mp = Gsrn::with_check_digit("57131377700000001").expect("gsrn");
    let later = Gsrn::with_check_digit("57131377700000002").expect("gsrn");
    // A move-in reported a day late (BRS-009 allows five working days) is confirmed.
    let r = post(
        "requestchangeofsupplier",
        process_request(
            "req-1",
            mp,
            midnight(today - chrono::Days::new(1)),
            ProcessType::MOVE_IN,
        ),
    )
    .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    assert!(r.headers().contains_key("CorrelationId"));
    let r = post("requestchangeofsupplier", switch_request("req-1", mp, now)).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(
        r.text().await.expect("body").contains("00101"),
        "a repeated message id is refused"
    );
    let r = post(
        "requestchangeofsupplier",
        switch_request("req-2", later, now + chrono::Duration::days(4000)),
    )
    .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    // A change of supplier for today breaks BRS-001's next-day rule: E17.
    let r = post(
        "requestchangeofsupplier",
        switch_request("req-4", later, midnight(today)),
    )
    .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let bad_gsrn = Gsrn::parse("571313777000000010").expect("18 digits, wrong check digit");
    let r = post(
        "requestchangeofsupplier",
        switch_request("req-3", bad_gsrn, now),
    )
    .await;
    assert_eq!(
        r.status(),
        StatusCode::ACCEPTED,
        "accepted for processing, rejected in the answer"
    );
    assert_eq!(
        post("requestchangeofsupplier", b"{not json".to_vec())
            .await
            .status(),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        post("requestsomethingelse", b"{}".to_vec()).await.status(),
        StatusCode::NOT_FOUND
    );
    // The answers are on the MasterData queue, after the scenario's master data.
    let mut confirms = 0;
    let mut rejects = 0;
    let mut codes = Vec::new();
    let mut master_data_for = Vec::new();
    loop {
        let r = peek(&http, &sim, &auth, "masterdata").await;
        if r.status() == StatusCode::NO_CONTENT {
            break;
        }
        let id = r.headers()["MessageId"].to_str().expect("id").to_string();
        match afregning_cim::parse(&r.bytes().await.expect("body")).expect("document") {
            Document::ConfirmRequestChangeOfSupplier(c) => {
                assert_eq!(
                    c.records[0]
                        .original_transaction_id
                        .as_deref()
                        .map(|s| s.starts_with("tx-req-")),
                    Some(true)
                );
                confirms += 1;
            }
            Document::RejectRequestChangeOfSupplier(r) => {
                rejects += 1;
                codes.push(r.records[0].reasons[0].code.as_str().to_string());
            }
            Document::AccountingPointCharacteristics(a) => {
                master_data_for.extend(a.records.iter().map(|r| r.metering_point.gsrn));
            }
            other => panic!("{:?}", other.kind()),
        }
        assert_eq!(dequeue(&http, &sim, &auth, &id).await, StatusCode::OK);
    }
    assert_eq!((confirms, rejects), (2, 2));
    codes.sort();
    assert_eq!(codes, ["E10", "E17"]);
    assert!(
        master_data_for.contains(&mp),
        "effective date passed: master data is there"
    );
    assert!(
        !master_data_for.contains(&later),
        "effective date in the future: not yet"
    );
    assert_eq!(sim.handle().queue_depths()[&Queue::MasterData].scheduled, 1);
    sim.shutdown().await;
}

#[tokio::test]
async fn spot_prices_and_admin_endpoints() {
    let sim = start(FaultConfig::none(), 60).await;
    let http = reqwest::Client::new();
    let r = http
        .get(sim.spot_prices_url())
        .query(&[
            ("start", "2025-11-05"),
            ("end", "2025-11-06"),
            ("filter", r#"{"PriceArea":["DK1","DK2"]}"#),
            ("limit", "0"),
        ])
        .send()
        .await
        .expect("eds");
    let body: serde_json::Value = r.json().await.expect("json");
    assert_eq!(body["total"], 192);
    assert_eq!(body["records"][0]["TimeUTC"], "2025-11-04T23:00:00");
    let truth: serde_json::Value = http
        .get(format!("{}/admin/ground-truth", sim.url))
        .send()
        .await
        .expect("truth")
        .json()
        .await
        .expect("json");
    assert_eq!(truth["metering_points"].as_array().map(Vec::len), Some(20));
    assert_eq!(truth["readings"].as_array().map(Vec::len), Some(40));
    let health = http
        .get(format!("{}/health", sim.url))
        .send()
        .await
        .expect("health");
    assert_eq!(health.status(), StatusCode::OK);
    let put = http
        .put(format!("{}/admin/faults", sim.url))
        .body(r#"{"forbidden_queues": ["charges"]}"#)
        .send()
        .await
        .expect("put");
    assert_eq!(put.status(), StatusCode::NO_CONTENT);
    assert_eq!(sim.handle().faults().forbidden_queues, vec![Queue::Charges]);
    let typo = http
        .put(format!("{}/admin/faults", sim.url))
        .body(r#"{"forbiden": []}"#)
        .send()
        .await
        .expect("put");
    assert_eq!(typo.status(), StatusCode::BAD_REQUEST);
    sim.shutdown().await;
}

/// Every document enqueued after the scenario's own, parsed.
fn answers(sim: &RunningSimulator) -> Vec<(Queue, Document)> {
    let scenario = sim.handle().ground_truth().messages.len();
    sim.handle()
        .enqueued()
        .into_iter()
        .skip(scenario)
        .filter_map(|(queue, id, _)| {
            let body = sim.handle().message_body(&id)?;
            Some((queue, afregning_cim::parse(&body).expect("a document")))
        })
        .collect()
}

#[tokio::test]
async fn datahubs_lifecycle_customer_data_links_readings_until_a_takeover_and_cancellations() {
    let scenario_now = afregning_settlement::calendar::local_midnight(
        chrono::NaiveDate::from_ymd_opt(2025, 11, 10).expect("date"),
    ) + chrono::Duration::hours(12);
    let sim = Simulator::new(SimulatorConfig {
        scenario: ScenarioConfig {
            metering_points: 2,
            days: 2,
            grid_areas: vec!["344".into()],
            ..ScenarioConfig::default()
        },
        faults: FaultConfig::none(),
        scenario_now: Some(scenario_now),
        ..SimulatorConfig::default()
    })
    .expect("scenario")
    .serve("127.0.0.1:0".parse().expect("addr"))
    .await
    .expect("serve");
    let http = reqwest::Client::new();
    let auth = bearer(&http, &sim).await;
    let post = |segment: &'static str, body: Vec<u8>| {
        let http = http.clone();
        let url = format!("{}/v1.0/cim/{segment}", sim.url);
        let auth = auth.clone();
        async move {
            let r = http
                .post(url)
                .header("Authorization", auth)
                .body(body)
                .send()
                .await
                .expect("post");
            assert_eq!(r.status(), StatusCode::ACCEPTED);
        }
    };
    let day = |d: u32| {
        afregning_settlement::calendar::local_midnight(
            chrono::NaiveDate::from_ymd_opt(2025, 11, d).expect("date"),
        )
    };
    let mp = Gsrn::with_check_digit("57131377700000011").expect("gsrn");
    let mut request: RequestChangeOfSupplier =
        afregning_cim::rsm001::read(&process_request("life-1", mp, day(7), ProcessType::MOVE_IN))
            .expect("request");
    request.records[0].customer_id = Some(PartyId {
        coding_scheme: afregning_cim::codes::CodingScheme::CPR,
        value: "0801741527".into(),
    });
    request.records[0].customer_name = Some("Jens Testesen".into());
    post(
        "requestchangeofsupplier",
        afregning_cim::rsm001::write(&request),
    )
    .await;
    // Another supplier takes it from 9 November: the 7th and 8th are ours.
    sim.handle().notify_takeover(
        mp,
        chrono::NaiveDate::from_ymd_opt(2025, 11, 9).expect("date"),
        afregning_simulator::notifications::Takeover::ChangeOfSupplier,
    );
    assert_eq!(
        peek(&http, &sim, &auth, "timeseries").await.status(),
        StatusCode::OK
    );
    let got = answers(&sim);
    let kinds: Vec<&str> = got.iter().map(|(_, d)| d.kind().name()).collect();
    for kind in [
        "ConfirmRequestChangeOfSupplier",
        "AccountingPointCharacteristics",
        "CharacteristicsOfACustomerAtAnAP",
        "NotifyBillingMasterData",
        "GenericNotification",
    ] {
        assert!(kinds.contains(&kind), "{kind} in {kinds:?}");
    }
    for (_, document) in &got {
        match document {
            Document::CharacteristicsOfACustomerAtAnAP(c) => {
                let r = &c.records[0];
                assert_eq!(r.original_transaction_id.as_deref(), Some("tx-life-1"));
                let point = &r.metering_point;
                assert_eq!(
                    point.first_customer_id.as_ref().map(|c| c.value.as_str()),
                    Some("0801741527"),
                    "DataHub names the customer of the request"
                );
            }
            Document::AccountingPointCharacteristics(a) => {
                assert!(a.records[0].business_process_id.is_some());
            }
            Document::NotifyBillingMasterData(l) => {
                assert!(l.records[0].original_transaction_id.is_some());
                assert!(!l.records[0].charge_group.links.is_empty());
            }
            _ => {}
        }
    }
    let truth = sim.handle().ground_truth();
    let days: Vec<String> = truth
        .readings
        .iter()
        .filter(|r| r.gsrn == mp)
        .map(|r| r.day.to_string())
        .collect();
    assert_eq!(
        days,
        ["2025-11-07", "2025-11-08"],
        "metered data until the takeover"
    );
    assert!(truth.metering_point(mp).is_some() && truth.links_of(mp).count() > 0);

    // An end of supply tomorrow breaks BRS-002's 3 working days; a cancellation is answered.
    let end = afregning_cim::write(&afregning_cim::parse(
        format!(
            r#"{{"RequestEndOfSupply_MarketDocument": {{"mRID": "end-1", "type": {{"value": "432"}},
            "process.processType": {{"value": "E20"}}, "businessSector.type": {{"value": "23"}},
            "sender_MarketParticipant.mRID": {{"codingScheme": "A10", "value": "{SUPPLIER}"}},
            "sender_MarketParticipant.marketRole.type": {{"value": "DDQ"}},
            "receiver_MarketParticipant.mRID": {{"codingScheme": "A10", "value": "{DATAHUB_GLN}"}},
            "receiver_MarketParticipant.marketRole.type": {{"value": "DDZ"}},
            "createdDateTime": "2025-11-10T07:30:54Z",
            "MktActivityRecord": [{{"mRID": "tx-end-1", "end_DateAndOrTime.dateTime": "2025-11-10T23:00:00Z",
            "marketEvaluationPoint.mRID": {{"codingScheme": "A10", "value": "{mp}"}}}}]}}}}"#
        )
        .as_bytes(),
    )
    .expect("an end of supply"));
    post("requestendofsupply", end).await;
    let cancel = afregning_cim::rsm024::RequestCancellation {
        header: request_header(
            "cancel-1",
            ProcessType::MOVE_IN,
            MessageType::REQUEST_CANCELLATION,
        ),
        records: vec![afregning_cim::rsm024::Cancellation {
            transaction_id: "tx-life-1-cancel".into(),
            business_process_id: Some("bp-x".into()),
            metering_point: mp,
            original_transaction_id: Some("tx-life-1".into()),
        }],
    };
    post("requestcancellation", afregning_cim::rsm024::write(&cancel)).await;
    let got = answers(&sim);
    let rejected = got.iter().find_map(|(_, d)| match d {
        Document::RejectRequestEndOfSupply(r) => Some(r.records[0].reasons[0].code.as_str()),
        _ => None,
    });
    assert_eq!(rejected, Some("E17"));
    let cancelled = got
        .iter()
        .find_map(|(_, d)| match d {
            Document::NotifyCancellation(n) => Some(n.records[0].clone()),
            _ => None,
        })
        .expect("an RSM-025");
    assert_eq!(
        (
            cancelled.business_process_id.as_deref(),
            cancelled.original_transaction_id.as_deref()
        ),
        (Some("bp-x"), Some("tx-life-1-cancel"))
    );
    sim.shutdown().await;
}

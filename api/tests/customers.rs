//! Requests to DataHub's business processes and customers' personal data through the API,
//! against the real broker and PostgreSQL (decision 0148):
//! - backoffice requests a move-in with a CPR and a name: 202, the command on the commands
//!   topic carries them sealed under the customer's own key (opened, they are what was sent),
//!   and neither the topic, the audit log nor any answer holds them in plaintext; other roles
//!   are refused; a bad CPR or a body that does not parse is refused without quoting it;
//! - the portfolio's own decision and projection of that command put the sealed data into the
//!   read model; backoffice reads it back with a reason (audited), finds the metering point by
//!   CPR; readonly cannot;
//! - once the customer's key is erased, the same read answers `erased`;
//! - a cancel goes on the topic as the CLI's does.

mod support;

use std::sync::Arc;
use std::time::Duration;

use afregning_api::AppState;
use afregning_api::broker::Broker;
use afregning_portfolio::personal::{CustomerIdentity, Keyring};
use afregning_portfolio::{
    Command, CommandRecord, Gln, MeteringPoint, ProcessKind, customer_keys, decide, read_model,
};
use afregning_topology::catalogue::TopicId;
use rdkafka::Message;
use rdkafka::consumer::{BaseConsumer, Consumer};
use serde_json::{Value, json};
use support::{problem, token};

const US: &str = "5790002000000";
const GSRN: &str = "571313180400000028";
const CPR: &str = "0101901234";
const NAME: &str = "Hasel Nielsen";

/// Every record on the commands topic so far (raw bytes and parsed).
fn commands(
    h: &support::Harness,
    topic: &str,
    expected: usize,
) -> anyhow::Result<Vec<(Vec<u8>, CommandRecord)>> {
    let consumer: BaseConsumer = h
        .env
        .kafka_config()
        .set("group.id", format!("{}-reader", h.env.namespace))
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .create()?;
    consumer.subscribe(&[topic])?;
    let mut found = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while found.len() < expected && std::time::Instant::now() < deadline {
        if let Some(message) = consumer.poll(Duration::from_millis(500)) {
            let message = message?;
            let bytes = message.payload().unwrap_or_default().to_vec();
            let record = CommandRecord::from_json(&bytes).map_err(anyhow::Error::msg)?;
            found.push((bytes, record));
        }
    }
    Ok(found)
}

#[tokio::test]
async fn requests_seal_the_customer_and_only_backoffice_reads_it_until_erased() -> anyhow::Result<()>
{
    let (mut h, catalogue) = support::broker::harness("api_customers", 1).await?;
    let mut keys = Keyring::default();
    keys.generate("deployment-1")?;
    h.respawn(AppState {
        pool: h.pool.clone(),
        render_metrics: Arc::new(String::new),
        authenticator: support::authenticator().await,
        broker: Some(
            Broker::new(&h.env.bootstrap_servers, &catalogue).map_err(anyhow::Error::msg)?,
        ),
        supplier_gln: Some(US.into()),
        connector_metrics_url: None,
        portfolio_keys: Some(Arc::new(keys.clone())),
        products: None,
    })
    .await?;
    let requests = format!("/v1/metering-points/{GSRN}/portfolio/requests");
    // Two days ahead: inside the move-in window the portfolio checks against today.
    let effective = (chrono::Utc::now() + chrono::Duration::days(2)).date_naive();
    let move_in = json!({
        "kind": "move_in", "effective": effective, "customer_key": "K-1",
        "customer": { "cpr": CPR, "name": NAME }, "process_id": "move-in-1",
        "reason": "customer called",
    });

    // Who may ask, and what is refused without quoting it.
    for role in ["operator", "billing", "readonly"] {
        let refused = h
            .refused(&requests, Some(&token(role)), &move_in, 403)
            .await;
        assert_eq!(refused["code"], "forbidden", "{role}");
    }
    let mut bad = move_in.clone();
    bad["customer"]["cpr"] = json!("01019012x4");
    let refused = h
        .refused(&requests, Some(&token("backoffice")), &bad, 422)
        .await;
    assert!(!refused.to_string().contains("01019012x4"), "{refused}");
    bad["customer"]["cpr"] = json!(101_901_234);
    let refused = h
        .refused(&requests, Some(&token("backoffice")), &bad, 400)
        .await;
    assert!(!refused.to_string().contains("101901234"), "{refused}");
    let mut forced = move_in.clone();
    forced["kind"] = json!("forced_change_of_supplier");
    h.refused(&requests, Some(&token("backoffice")), &forced, 422)
        .await;
    let mut no_reason = move_in.clone();
    no_reason["reason"] = json!(" ");
    h.refused(&requests, Some(&token("backoffice")), &no_reason, 422)
        .await;

    // The request.
    let response = h
        .post(&requests, Some(&token("backoffice")), &move_in)
        .await;
    assert_eq!(response.status().as_u16(), 202);
    let submitted: Value = response.json().await?;
    assert_eq!(submitted["process_id"], "move-in-1");
    let topic = catalogue.spec(TopicId::PortfolioCommands)?.name.clone();
    let on_topic = commands(&h, &topic, 1)?;
    assert_eq!(on_topic.len(), 1, "one command on {topic}");
    let (bytes, record) = &on_topic[0];
    let text = String::from_utf8_lossy(bytes);
    assert!(!text.contains(CPR) && !text.contains("Hasel"), "{text}");
    let Command::Request(details) = &record.command else {
        panic!("a request: {:?}", record.command)
    };
    assert_eq!(details.kind, ProcessKind::MoveIn);
    assert_eq!(details.supplier.as_str(), US);
    assert_eq!(record.meta.actor, "backoffice@example.test");
    let customer = details.customer.as_ref().expect("a customer");
    assert_eq!(customer.key.0, "K-1");
    let sealed = customer.personal.as_ref().expect("sealed data");
    assert!(
        sealed.key_id().starts_with('c') && !keys.has(sealed.key_id()),
        "sealed under the customer's own key, not the deployment's: {sealed:?}"
    );
    let opened = customer_keys::open(&h.pool, &keys, sealed).await?;
    assert!(matches!(&opened.identity, CustomerIdentity::Cpr(c) if c.expose() == CPR));
    assert_eq!(opened.name.as_ref().map(|n| n.expose()), Some(NAME));
    assert!(
        keys.open(sealed).is_err(),
        "the deployment keyring alone does not open it"
    );

    // The portfolio decides and projects it, as its processor and projector would.
    let gsrn = afregning_cim::Gsrn::parse(GSRN).expect("gsrn");
    let state = MeteringPoint::new(gsrn, Gln::parse(US).expect("gln"));
    let event =
        decide(&state, &record.meta, &record.command).map_err(|r| anyhow::anyhow!("{r}"))?;
    let state = state.apply(&event);
    assert!(read_model::project(&h.pool, &state, &event).await?);

    // Reading it back: backoffice only, with a reason, audited.
    let read = format!("/v1/metering-points/{GSRN}/portfolio/customers");
    let refused = problem(
        h.get(&format!("{read}?reason=x"), Some(&token("readonly")))
            .await,
        403,
    )
    .await;
    assert_eq!(refused["code"], "forbidden");
    problem(h.get(&read, Some(&token("backoffice"))).await, 422).await;
    let response = h
        .get(
            &format!("{read}?reason=customer%20asked"),
            Some(&token("backoffice")),
        )
        .await;
    assert_eq!(response.status().as_u16(), 200);
    let answer: Value = response.json().await?;
    assert_eq!(
        answer["customers"],
        json!([{ "customer_key": "K-1", "status": "readable", "cpr": CPR, "cvr": null, "name": NAME }])
    );
    let search = h
        .post(
            "/v1/customers/search",
            Some(&token("backoffice")),
            &json!({ "cpr": CPR, "reason": "customer called" }),
        )
        .await;
    assert_eq!(search.status().as_u16(), 200);
    let found: Value = search.json().await?;
    assert_eq!(
        found["matches"],
        json!([{ "gsrn": GSRN, "customer_key": "K-1" }])
    );
    let none: Value = h
        .post(
            "/v1/customers/search",
            Some(&token("backoffice")),
            &json!({ "cpr": "0202902345", "reason": "customer called" }),
        )
        .await
        .json()
        .await?;
    assert_eq!(none["matches"], json!([]));

    // The audit log has every change and read, and no personal data.
    let audit: Vec<(String, String)> =
        sqlx::query_as("SELECT action, a::text FROM api_audit a ORDER BY audit_id")
            .fetch_all(&h.pool)
            .await?;
    let actions: Vec<&str> = audit.iter().map(|(a, _)| a.as_str()).collect();
    assert_eq!(
        actions,
        [
            "portfolio.request",
            "personal_data.read",
            "personal_data.search",
            "personal_data.search"
        ]
    );
    for (_, row) in &audit {
        assert!(!row.contains(CPR) && !row.contains("Hasel"), "{row}");
    }

    // Erased: the key is gone, the data reads `erased`.
    let candidate = customer_keys::ErasureCandidate {
        customer_key: "K-1".into(),
        last_day: effective,
    };
    let erased = customer_keys::erase(&h.pool, &candidate, Some(30), "test").await?;
    assert_eq!(erased, [sealed.key_id().to_string()]);
    let answer: Value = h
        .get(&format!("{read}?reason=again"), Some(&token("backoffice")))
        .await
        .json()
        .await?;
    assert_eq!(
        answer["customers"],
        json!([{ "customer_key": "K-1", "status": "erased", "cpr": null, "cvr": null, "name": null }])
    );

    // A cancel.
    let response = h
        .post(
            &format!("/v1/metering-points/{GSRN}/portfolio/processes/move-in-1/cancel"),
            Some(&token("backoffice")),
            &json!({ "reason": "customer changed their mind" }),
        )
        .await;
    assert_eq!(response.status().as_u16(), 202);
    let on_topic = commands(&h, &topic, 2)?;
    assert!(
        matches!(&on_topic.last().expect("two").1.command, Command::Cancel { process } if process.0 == "move-in-1")
    );
    h.stop().await
}

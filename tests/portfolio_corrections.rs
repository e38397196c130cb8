//! Issue 16's move-out, correction and customer data requests end to end on the real broker,
//! with the real connector, the DataHub simulator and the `afregning` binary (decision 0145):
//!
//! - a move-out (BRS-010) of a metering point we supply goes out as RSM-005 with process type
//!   E66 and is confirmed;
//! - after another supplier's change of supplier (DataHub's RSM-004) ended our supply, our
//!   rollback (BRS-003, `afregning portfolio request rollback-change-of-supplier --corrects`)
//!   goes out as RSM-003 `RequestReallocateChangeOfSupplier` (D07) naming DataHub's process,
//!   is confirmed and takes effect: we supply the metering point again;
//! - the customer's master data (BRS-015, `afregning portfolio request customer-data`, CPR and
//!   name on standard input) goes out as RSM-027 `RequestChangeCustomerCharacteristics` with
//!   the customer sealed; DataHub rejects the first with the code the test asks for (kept
//!   verbatim) and confirms the second. The simulator's reader refuses a customer id longer
//!   than a `PartyID_String` (16), so the confirm proves the connector opened the
//!   placeholders just before the POST;
//!
//! and then neither the CPR nor the name is in plaintext on any topic of the deployment, in
//! any log line of this process or in the CLI's output.

mod support;

use std::time::{Duration, Instant};

use afregning_portfolio::personal::Keyring;
use afregning_portfolio::{Change, Gln, MeteringPoint, ProcessKind};
use afregning_processors::portfolio::inbox::send_command;
use afregning_settlement::calendar::local_date;
use afregning_simulator::notifications::Takeover;
use afregning_simulator::scenario::ScenarioConfig;
use afregning_simulator::{EventKind, SimulatorConfig};
use afregning_sinks::schema::{self, StorageSettings};
use afregning_testkit::TestEnv;
use afregning_topology::catalogue::TopicId;
use afregning_topology::records::{DeadLetter, OutboundDocumentType, OutboundRequest};
use afregning_topology::{Catalogue, topics};
use chrono::{Days, Utc};
use support::portfolio::{CPR, NAME, Rig, SUPPLIER, changes, events, sealed_request, wait_for};

fn gsrn(digits: &str) -> afregning_cim::Gsrn {
    afregning_cim::Gsrn::with_check_digit(digits).expect("a GSRN")
}

/// `afregning portfolio request <args…>` against the test's deployment; its stderr.
fn request(
    env: &TestEnv,
    catalogue: &Catalogue,
    key_file: &std::path::Path,
    args: &[&str],
    stdin: &str,
) -> anyhow::Result<String> {
    let prefix = catalogue.settings().prefix.clone();
    let mut all = vec!["portfolio", "request"];
    all.extend_from_slice(args);
    all.extend_from_slice(&[
        "--why",
        "end-to-end test",
        "--supplier-gln",
        SUPPLIER,
        "--topic-prefix",
        &prefix,
        "--partitions",
        "2",
        "--bootstrap-servers",
        &env.bootstrap_servers,
        "--database-url",
        &env.database_url,
    ]);
    let (status, _, stderr) = support::afregning(
        &all,
        &[(
            "AFREGNING_PORTFOLIO_KEY_FILE",
            key_file.to_string_lossy().as_ref(),
        )],
        stdin,
    )?;
    anyhow::ensure!(
        status == 0,
        "afregning portfolio request {args:?}: {stderr}"
    );
    Ok(stderr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn move_out_rollback_and_customer_data_go_out_and_are_confirmed() -> anyhow::Result<()> {
    let logs = afregning_testkit::capture_logs().expect("the first subscriber of this test binary");
    let env = TestEnv::start("portfolio_corrections").await?;
    let catalogue = support::deployment(&env, &env.namespace, 2).await?;
    let work = tempfile::tempdir()?;
    let mut keys = Keyring::default();
    keys.generate("k1")?;
    let key_file = work.path().join("portfolio.keys");
    keys.save(&key_file)?;
    // The schema first: the CLI seals the customer under a key it keeps there.
    let mut conn = schema::connect(&env.database_url, "test").await?;
    schema::migrate(
        &mut conn,
        &StorageSettings::default(),
        Utc::now().date_naive(),
    )
    .await?;
    drop(conn);

    let today = local_date(Utc::now());
    let simulator = support::serve_simulator(SimulatorConfig {
        scenario: ScenarioConfig {
            metering_points: 1,
            first_day: today - Days::new(2),
            days: 1,
            supplier_gln: SUPPLIER.into(),
            grid_areas: vec!["344".into()],
            aggregations: false,
            ..ScenarioConfig::default()
        },
        faults: afregning_simulator::FaultConfig::none(),
        ..SimulatorConfig::default()
    })
    .await?;
    let rig = Rig::start(&env, &catalogue, &simulator, work.path(), &key_file).await?;
    let events_topic = catalogue.spec(TopicId::PortfolioEvents)?.name.clone();

    // Two metering points we supply: A from today, B from two days ago.
    let (a, b) = (gsrn("57131318049999997"), gsrn("57131318049999996"));
    for c in [
        sealed_request(a, "in-a", ProcessKind::MoveIn, today, &keys),
        sealed_request(b, "in-b", ProcessKind::MoveIn, today - Days::new(2), &keys),
    ] {
        send_command(&env.bootstrap_servers, &catalogue, &c)
            .await
            .map_err(anyhow::Error::msg)?;
    }
    wait_for(&env, &events_topic, "in-a", "took_effect").await?;
    wait_for(&env, &events_topic, "in-b", "took_effect").await?;
    let mut cli_stderr = String::new();

    // BRS-010: A's customer moves out tomorrow.
    let tomorrow = (today + Days::new(1)).to_string();
    let a_text = a.to_string();
    cli_stderr += &request(
        &env,
        &catalogue,
        &key_file,
        &[
            "move-out",
            "--gsrn",
            &a_text,
            "--effective",
            &tomorrow,
            "--process-id",
            "out-a",
        ],
        "",
    )?;
    wait_for(&env, &events_topic, "out-a", "accepted").await?;

    // BRS-015: DataHub rejects the first customer data update with D17, confirms the second.
    simulator
        .handle()
        .reject_next_lifecycle_request("D17", "Ugyldigt CPR-nummer");
    let today_text = today.to_string();
    for id in ["data-a-1", "data-a-2"] {
        cli_stderr += &request(
            &env,
            &catalogue,
            &key_file,
            &[
                "customer-data",
                "--gsrn",
                &a_text,
                "--effective",
                &today_text,
                "--customer",
                "customer-in-a",
                "--process-id",
                id,
            ],
            &format!("{CPR}\n{NAME}\n"),
        )?;
    }
    let all = wait_for(&env, &events_topic, "data-a-1", "rejected").await?;
    let rejected = all
        .iter()
        .find(|e| {
            e.change.name() == "rejected" && e.process.as_ref().is_some_and(|p| p.0 == "data-a-1")
        })
        .expect("the reject");
    let Change::Rejected { reasons } = &rejected.change else {
        unreachable!()
    };
    assert_eq!(
        (reasons[0].code.as_str(), reasons[0].text.as_str()),
        ("D17", "Ugyldigt CPR-nummer")
    );
    wait_for(&env, &events_topic, "data-a-2", "accepted").await?;

    // Another supplier takes B from today (RSM-004); our supply ends at the tick.
    simulator
        .handle()
        .notify_takeover(b, today, Takeover::ChangeOfSupplier);
    let started = Instant::now();
    let takeover = loop {
        rig.check_running()?;
        let all = events(&env, &events_topic)?;
        let took = all.iter().find_map(|e| {
            let p = e.process.as_ref()?;
            (e.metering_point == b && e.change.name() == "took_effect" && p.0.starts_with("bp-"))
                .then(|| p.0.clone())
        });
        if let Some(id) = took {
            break id;
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(90),
            "the takeover of {b} did not take effect in 90 s"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    // BRS-003: the change of supplier was wrong; we ask DataHub to roll it back.
    let b_text = b.to_string();
    cli_stderr += &request(
        &env,
        &catalogue,
        &key_file,
        &[
            "rollback-change-of-supplier",
            "--gsrn",
            &b_text,
            "--effective",
            &today_text,
            "--corrects",
            &takeover,
            "--process-id",
            "rollback-b",
        ],
        "",
    )?;
    let all = wait_for(&env, &events_topic, "rollback-b", "took_effect").await?;
    assert_eq!(
        changes(&all, "rollback-b"),
        ["request_sent", "accepted", "took_effect"]
    );
    let state = MeteringPoint::fold(
        b,
        Gln::parse(SUPPLIER).expect("gln"),
        all.iter().filter(|e| e.metering_point == b),
    );
    assert!(
        state.supply.supplies_on(today),
        "the rollback gave B back to us: {:?}",
        state.supply
    );
    assert_eq!(changes(&all, "out-a"), ["request_sent", "accepted"]);

    // What went out: RSM-005 (E66), RSM-027 twice, RSM-003 naming DataHub's process.
    let sent: Vec<OutboundRequest> = support::read_all(
        &env,
        rig.codec.topic_name(topics::OUTBOUND_REQUESTS),
        &rig.topics.wire,
    )?;
    let by_id = |id: &str| {
        sent.iter()
            .find(|r| r.request_id == format!("portfolio-{id}"))
            .unwrap_or_else(|| panic!("no outbound request for {id}"))
    };
    assert_eq!(
        by_id("out-a").document_type,
        OutboundDocumentType::RequestEndOfSupply
    );
    assert!(by_id("out-a").body.contains("\"E66\""));
    let data = by_id("data-a-2");
    assert_eq!(
        data.document_type,
        OutboundDocumentType::RequestChangeCustomerCharacteristics
    );
    assert!(
        data.body
            .contains(afregning_portfolio::outbound::SEALED_IDENTITY)
    );
    let rollback = by_id("rollback-b");
    assert_eq!(
        rollback.document_type,
        OutboundDocumentType::RequestReallocateChangeOfSupplier
    );
    assert!(rollback.body.contains(&format!("\"{takeover}\"")));
    // The simulator took each as a valid document (202) at its endpoint.
    let received: Vec<(String, u16)> = simulator
        .handle()
        .events()
        .into_iter()
        .filter_map(|e| match e.kind {
            EventKind::Received {
                document_type,
                status,
                ..
            } => Some((document_type, status)),
            _ => None,
        })
        .collect();
    for segment in [
        "requestendofsupply",
        "requestchangecustomercharacteristics",
        "requestreallocatechangeofsupplier",
    ] {
        assert!(
            received.iter().any(|(d, s)| d == segment && *s == 202),
            "{segment}: {received:?}"
        );
    }
    let dead: Vec<DeadLetter> = support::read_all(
        &env,
        rig.codec.topic_name(topics::DEAD_LETTERS),
        &rig.topics.wire,
    )?;
    assert!(dead.iter().all(|d| d.component != "portfolio"), "{dead:?}");

    rig.stop().await?;
    simulator.shutdown().await;

    // No plaintext CPR or name on any topic, in any log line or the CLI's output.
    for spec in catalogue.topics() {
        for r in support::read_raw(&env, &spec.name)? {
            let bytes = [r.key.unwrap_or_default(), r.value.unwrap_or_default()].concat();
            let text = String::from_utf8_lossy(&bytes);
            assert!(
                !text.contains(CPR) && !text.contains(NAME),
                "plaintext personal data on {}",
                spec.name
            );
        }
    }
    let logged = logs.text();
    assert!(logged.contains("portfolio event"));
    for text in [logged.as_str(), cli_stderr.as_str()] {
        assert!(
            !text.contains(CPR) && !text.contains(NAME),
            "personal data in a log line"
        );
    }
    Ok(())
}

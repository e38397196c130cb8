//! Issue 16's requests end to end on the real broker and schema registry, with the real
//! connector and the DataHub simulator (decision 0145): commands on the portfolio's commands
//! topic (as `afregning portfolio request` puts them) are decided by the portfolio processor,
//! sent as RSM-001 through the connector's outbound path with the customer's CPR and name
//! sealed until the connector opens them, answered by the simulator on its MasterData queue,
//! peeked onto the raw topic, mapped by validate into commands again and decided:
//!
//! - a move-in on a metering point nobody supplies is confirmed (the simulator's reader
//!   refuses a document whose customer id is longer than 16 characters, so a confirm also
//!   proves the placeholders were opened), and takes effect at the tick of its day, today;
//! - a change of supplier on a metering point the simulator already has us supply is rejected
//!   with E16, the reason kept verbatim;
//! - a change of supplier DataHub rejects with E17 is submitted again and confirmed;
//! - an end of supply requested, confirmed and then cancelled (RSM-024 sent) changes nothing;
//! - a move-in the rules refuse (more than 5 working days late) is never sent: a dead letter
//!   with E17;
//! - DataHub's RSM-004 that another supplier takes the metering point tomorrow becomes a
//!   notified change of supplier for tomorrow.
//!
//! The change of supplier goes through the real binary (`afregning portfolio request`, the
//! customer on standard input), the read model is projected from the events and shown by
//! `afregning portfolio show`. Then every record of the commands, events, outbound-requests,
//! outbound-responses and dead-letter topics, every row of the read model, and every log line
//! of this process and of the CLI is searched for the CPR and the name: none holds them in
//! plaintext. The search covers every topic of the deployment and every table of the
//! database.

mod support;

use std::time::{Duration, Instant};

use afregning_portfolio::personal::Keyring;
use afregning_portfolio::{Command, CommandRecord, Gln, ProcessDetails, ProcessId, ProcessKind};
use afregning_processors::portfolio::inbox::send_command;
use afregning_settlement::calendar::local_date;
use afregning_simulator::SimulatorConfig;
use afregning_simulator::notifications::Takeover;
use afregning_simulator::scenario::ScenarioConfig;
use afregning_sinks::schema::{self, StorageSettings};
use afregning_testkit::TestEnv;
use afregning_topology::catalogue::TopicId;
use afregning_topology::records::{DeadLetter, OutboundDocumentType, OutboundRequest};
use afregning_topology::topics;
use chrono::{NaiveDate, Utc};
use support::portfolio::{CPR, NAME, Rig, SUPPLIER, changes, events, sealed_request, wait_for};

/// A GSRN with a valid check digit that the scenario does not have.
fn fresh_gsrn() -> afregning_cim::Gsrn {
    afregning_cim::Gsrn::with_check_digit("57131318049999999").expect("a GSRN")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn requests_go_out_sealed_and_datahubs_answers_come_back_as_events() -> anyhow::Result<()> {
    let logs = afregning_testkit::capture_logs().expect("the first subscriber of this test binary");
    let env = TestEnv::start("portfolio_requests").await?;
    let catalogue = support::deployment(&env, &env.namespace, 2).await?;
    let work = tempfile::tempdir()?;
    let mut keys = Keyring::default();
    keys.generate("k1")?;
    let key_file = work.path().join("portfolio.keys");
    keys.save(&key_file)?;

    let today = local_date(Utc::now());
    let simulator = support::serve_simulator(SimulatorConfig {
        scenario: ScenarioConfig {
            metering_points: 2,
            first_day: today - chrono::Days::new(2),
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
    let supplied = simulator.handle().ground_truth().metering_points[0].gsrn;
    // The schema first: the CLI seals the customer under a key it keeps there (decision 0148).
    let mut conn = schema::connect(&env.database_url, "test").await?;
    schema::migrate(
        &mut conn,
        &StorageSettings::default(),
        Utc::now().date_naive(),
    )
    .await?;
    drop(conn);

    let rig = Rig::start(&env, &catalogue, &simulator, work.path(), &key_file).await?;
    let (codec, topics_) = (&rig.codec, &rig.topics);

    let moving_in = fresh_gsrn();
    let commands = [
        sealed_request(moving_in, "move-in-1", ProcessKind::MoveIn, today, &keys),
        sealed_request(
            moving_in,
            "move-in-late",
            ProcessKind::MoveIn,
            today - chrono::Days::new(30),
            &keys,
        ),
    ];
    for c in &commands {
        send_command(&env.bootstrap_servers, &catalogue, c)
            .await
            .map_err(anyhow::Error::msg)?;
    }
    // The change of supplier as an operator asks for it: the real binary, the customer on
    // standard input, sealed with the key file's key.
    let mut cli_stderr = String::new();
    let tomorrow = today + chrono::Days::new(1);
    let (status, _, stderr) = support::afregning(
        &[
            "portfolio",
            "request",
            "change-of-supplier",
            "--gsrn",
            &supplied.to_string(),
            "--effective",
            &tomorrow.to_string(),
            "--customer",
            "customer-switch-1",
            "--process-id",
            "switch-1",
            "--why",
            "end-to-end test",
            "--supplier-gln",
            SUPPLIER,
            "--topic-prefix",
            &catalogue.settings().prefix,
            "--partitions",
            "2",
            "--bootstrap-servers",
            &env.bootstrap_servers,
            "--database-url",
            &env.database_url,
        ],
        &[(
            "AFREGNING_PORTFOLIO_KEY_FILE",
            key_file.to_string_lossy().as_ref(),
        )],
        &format!("{CPR}\n{NAME}\n"),
    )?;
    cli_stderr.push_str(&stderr);
    anyhow::ensure!(status == 0, "afregning portfolio request: {stderr}");

    let events_topic = catalogue.spec(TopicId::PortfolioEvents)?.name.clone();
    let started = Instant::now();
    let all = loop {
        let all = events(&env, &events_topic)?;
        let move_in = changes(&all, "move-in-1");
        let switch = changes(&all, "switch-1");
        if move_in.contains(&"took_effect") && switch.contains(&"rejected") {
            break all;
        }
        rig.check_running()?;
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(120),
            "not answered in 120 s: move-in {move_in:?}, switch {switch:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(
        changes(&all, "move-in-1"),
        ["request_sent", "accepted", "took_effect"]
    );

    // DataHub rejects a change of supplier with E17 (a rule of its own our checks passed);
    // the operator submits it again and DataHub confirms it.
    let second = afregning_cim::Gsrn::with_check_digit("57131318049999998").expect("a GSRN");
    simulator
        .handle()
        .reject_next_switch("E17", "Startdato er ikke korrekt");
    let switch =
        |id: &str| sealed_request(second, id, ProcessKind::ChangeOfSupplier, tomorrow, &keys);
    send_command(&env.bootstrap_servers, &catalogue, &switch("switch-2"))
        .await
        .map_err(anyhow::Error::msg)?;
    wait_for(&env, &events_topic, "switch-2", "rejected").await?;
    send_command(
        &env.bootstrap_servers,
        &catalogue,
        &switch("switch-2-again"),
    )
    .await
    .map_err(anyhow::Error::msg)?;
    let all = wait_for(&env, &events_topic, "switch-2-again", "accepted").await?;
    let rejected = all
        .iter()
        .find(|e| {
            e.change.name() == "rejected" && e.process.as_ref().is_some_and(|p| p.0 == "switch-2")
        })
        .expect("the reject of switch-2");
    let afregning_portfolio::Change::Rejected { reasons } = &rejected.change else {
        unreachable!()
    };
    assert_eq!(reasons[0].code, "E17");
    assert_eq!(
        changes(&all, "switch-2-again"),
        ["request_sent", "accepted"]
    );

    // An end of supply requested, confirmed by DataHub and then cancelled by us (RSM-024)
    // changes nothing: the supply stays open.
    let end = CommandRecord {
        command: Command::Request(ProcessDetails {
            process: ProcessId("end-1".into()),
            kind: ProcessKind::EndOfSupply,
            supplier: Gln::parse(SUPPLIER).expect("gln"),
            effective: today + chrono::Days::new(20),
            customer: None,
            corrects: None,
            balance_responsible: None,
            notified_reason: None,
        }),
        ..sealed_request(moving_in, "unused", ProcessKind::MoveIn, today, &keys)
    };
    send_command(&env.bootstrap_servers, &catalogue, &end)
        .await
        .map_err(anyhow::Error::msg)?;
    wait_for(&env, &events_topic, "end-1", "accepted").await?;
    let cancel = CommandRecord {
        command: Command::Cancel {
            process: ProcessId("end-1".into()),
        },
        ..end.clone()
    };
    send_command(&env.bootstrap_servers, &catalogue, &cancel)
        .await
        .map_err(anyhow::Error::msg)?;
    let all = wait_for(&env, &events_topic, "end-1", "cancelled").await?;
    assert_eq!(
        changes(&all, "end-1"),
        ["request_sent", "accepted", "cancelled"]
    );
    let state = afregning_portfolio::MeteringPoint::fold(
        moving_in,
        Gln::parse(SUPPLIER).expect("gln"),
        all.iter().filter(|e| e.metering_point == moving_in),
    );
    assert!(
        state.supply.supplies_on(today + chrono::Days::new(30)),
        "the cancelled end of supply changed nothing"
    );
    let sent: Vec<OutboundRequest> = support::read_all(
        &env,
        codec.topic_name(topics::OUTBOUND_REQUESTS),
        &topics_.wire,
    )?;
    assert!(
        sent.iter().any(|r| r.request_id == "portfolio-end-1-cancel"
            && r.document_type == OutboundDocumentType::RequestCancellation),
        "the cancellation went out: {:?}",
        sent.iter().map(|r| &r.request_id).collect::<Vec<_>>()
    );

    // Another supplier takes the metering point from tomorrow: DataHub's RSM-004 becomes a
    // notified process, in effect tomorrow (the in-memory test runs its tick).
    simulator
        .handle()
        .notify_takeover(moving_in, tomorrow, Takeover::ChangeOfSupplier);
    let started = Instant::now();
    let all = loop {
        let all = events(&env, &events_topic)?;
        if all.iter().any(|e| e.change.name() == "notified") {
            break all;
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(60),
            "the RSM-004 takeover was not notified in 60 s"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let notified = all
        .iter()
        .find(|e| e.change.name() == "notified")
        .expect("notified");
    assert_eq!(notified.metering_point, moving_in);
    let afregning_portfolio::Change::Notified { process, .. } = &notified.change else {
        unreachable!()
    };
    assert_eq!(
        (process.kind, process.effective),
        (ProcessKind::ChangeOfSupplier, tomorrow)
    );
    assert_eq!(process.notified_reason.as_deref(), Some("E03"));
    assert_eq!(changes(&all, "switch-1"), ["request_sent", "rejected"]);
    assert!(
        changes(&all, "move-in-late").is_empty(),
        "a refused request is no event"
    );
    let rejected = all
        .iter()
        .find(|e| e.change.name() == "rejected")
        .expect("the reject");
    let afregning_portfolio::Change::Rejected { reasons } = &rejected.change else {
        unreachable!()
    };
    assert_eq!(reasons[0].code, "E16");
    assert!(
        reasons[0].text.contains("already supplies"),
        "{}",
        reasons[0].text
    );
    // Per metering point, the sequence numbers are 1, 2, 3 … without gaps or repeats.
    for gsrn in [moving_in, supplied] {
        let seqs: Vec<u64> = all
            .iter()
            .filter(|e| e.metering_point == gsrn)
            .map(|e| e.sequence)
            .collect();
        assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>(), "{gsrn}");
    }

    // The refused move-in is a dead letter with the rule's code.
    let wire = topics_.wire.clone();
    let dead: Vec<DeadLetter> =
        support::read_all(&env, codec.topic_name(topics::DEAD_LETTERS), &wire)?;
    let refused: Vec<&DeadLetter> = dead.iter().filter(|d| d.component == "portfolio").collect();
    assert_eq!(refused.len(), 1, "{dead:?}");
    assert!(refused[0].reason.contains("E17") && refused[0].reason.contains("move-in-late"));

    rig.stop().await?;

    // No plaintext CPR or name on any topic of the deployment (changelogs included); the
    // topics the requests and answers crossed must not be empty, or the search proves nothing.
    let crossed: Vec<String> = [
        TopicId::PortfolioCommands,
        TopicId::PortfolioEvents,
        TopicId::OutboundRequests,
        TopicId::OutboundResponses,
        TopicId::DeadLetters,
        TopicId::MasterdataRaw,
    ]
    .into_iter()
    .map(|id| catalogue.spec(id).map(|s| s.name.clone()))
    .collect::<Result<_, _>>()?;
    let records = support::topics_without(&env, &catalogue, &[CPR, NAME])?;
    for topic in &crossed {
        assert!(
            records.get(topic).is_some_and(|n| *n > 0),
            "{topic} is empty: the search would prove nothing"
        );
    }

    // The read model, projected from the events (as `afregning portfolio project` does).
    let mut conn = schema::connect(&env.database_url, "test").await?;
    schema::migrate(
        &mut conn,
        &StorageSettings::default(),
        Utc::now().date_naive(),
    )
    .await?;
    let pool = env.pg_pool().await?;
    let expected = all.len() as u64;
    let done = support::project_portfolio(&env, &pool, &events_topic, SUPPLIER, expected).await?;
    assert_eq!((done.events, done.written), (expected, expected));
    let statuses: Vec<(String, String, serde_json::Value)> = sqlx::query_as(
        "SELECT process_id, status, reasons FROM portfolio_processes ORDER BY process_id",
    )
    .fetch_all(&pool)
    .await?;
    // `afregning portfolio show` prints the same from the read model.
    let (status, stdout, stderr) = support::afregning(
        &[
            "portfolio",
            "show",
            "--gsrn",
            &moving_in.to_string(),
            "--json",
            "--database-url",
            &env.database_url,
        ],
        &[],
        "",
    )?;
    cli_stderr.push_str(&stderr);
    anyhow::ensure!(status == 0, "afregning portfolio show: {stderr}");
    let shown: serde_json::Value = serde_json::from_str(&stdout)?;
    assert_eq!(shown["periods"][0]["valid_from"], today.to_string());
    // DataHub's data (RSM-022/028/031) arrives in no fixed order with the answers; the
    // processes' own steps are in order.
    let data = [
        "master_data_received",
        "customer_data_received",
        "charge_links_received",
    ];
    let shown_changes: Vec<&str> = shown["history"]
        .as_array()
        .expect("history")
        .iter()
        .filter_map(|h| h["change"].as_str())
        .filter(|c| !data.contains(c))
        .collect();
    assert_eq!(
        shown_changes,
        [
            "request_sent", // move-in-1
            "accepted",
            "took_effect",
            "request_sent", // end-1
            "accepted",
            "cancelled",
            "notified", // the takeover
        ]
    );

    // The move-in (in effect, customer data outstanding: the simulator's scenario clock is at
    // yesterday noon, so DataHub's RSM-022/028/031 for today are not visible yet; the
    // lifecycle test sees them arrive), the two rejected switches, the one
    // confirmed after its E17, the cancelled end of supply, and the takeover that waits for
    // tomorrow.
    assert_eq!(statuses.len(), 6, "{statuses:?}");
    let status = |id: &str| {
        statuses
            .iter()
            .find(|s| s.0 == id)
            .map(|s| (s.1.as_str(), s.2.clone()))
            .unwrap_or_else(|| panic!("no process {id}: {statuses:?}"))
    };
    assert!(
        statuses[0].0.starts_with("bp-") && statuses[0].1 == "accepted",
        "{statuses:?}"
    );
    assert_eq!(status("move-in-1").0, "effective");
    assert_eq!(status("switch-1").0, "rejected");
    assert_eq!(status("switch-1").1[0]["code"], "E16");
    assert_eq!(status("switch-2").0, "rejected");
    assert_eq!(status("switch-2").1[0]["code"], "E17");
    assert_eq!(status("switch-2-again").0, "accepted");
    assert_eq!(status("end-1").0, "cancelled");
    let supplied_from: Option<NaiveDate> = sqlx::query_scalar(
        "SELECT valid_from FROM portfolio_supply_periods WHERE metering_point = $1",
    )
    .bind(moving_in.to_string())
    .fetch_optional(&pool)
    .await?;
    assert_eq!(supplied_from, Some(today));
    // Nor in any row of any table (the read model's must not be empty).
    let rows = support::tables_without(&pool, &[CPR, NAME]).await?;
    for table in [
        "portfolio_metering_points",
        "portfolio_supply_periods",
        "portfolio_processes",
        "portfolio_process_history",
    ] {
        assert!(
            rows.get(table).is_some_and(|n| *n > 0),
            "{table} is empty: {rows:?}"
        );
    }
    simulator.shutdown().await;
    // Nor in any log line: this process's (connector, processors, projector) and the CLI's.
    let logged = logs.text();
    assert!(
        logged.contains("portfolio event"),
        "the capture holds the processor's lines"
    );
    for text in [logged.as_str(), cli_stderr.as_str()] {
        assert!(
            !text.contains(CPR) && !text.contains(NAME),
            "personal data in a log line"
        );
    }
    Ok(())
}

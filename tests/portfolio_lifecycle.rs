//! Issue 16 in one run, on the real broker, schema registry and PostgreSQL, with the real
//! connector and the DataHub simulator: from an operator's move-in to a settlement statement.
//!
//! 1. `afregning portfolio request move-in` (the real binary, the customer's CPR and name on
//!    standard input, sealed at once) for a metering point nobody supplies, effective a few
//!    days ago (BRS-009 allows 5 working days late);
//! 2. the portfolio processor sends RSM-001, the connector opens the seals and posts it, the
//!    simulator judges its date rules and confirms, then sends RSM-022 master data, RSM-028
//!    customer data (the named customer: the connector seals it again before publishing,
//!    decision 0148) and RSM-031 charge links; validate maps all of them to commands and the
//!    processor makes them events: accepted, took effect, master data, customer data (the
//!    move-in completed), charge links;
//! 3. the simulator sends the metered data of every supplied day that is complete; another
//!    supplier takes the metering point from today (RSM-004), so no later day is ours;
//! 4. enrich and settle bill the supplied days only: exactly one final statement for the
//!    partial month, equal to the pure settlement engine's amounts for those days computed
//!    from the simulator's ground truth;
//! 5. the read model projected from the events equals a rebuild from the events;
//! 6. the CPR and the name are on no topic of the deployment (changelogs included), in no
//!    table, in no file of the connector's inbound-message log and in no log line.

mod support;

use std::time::{Duration, Instant};

use afregning_connect::Connector;
use afregning_portfolio::personal::Keyring;
use afregning_portfolio::{Event, Gln, MeteringPoint, ProcessStatus};
use afregning_processors::pipeline::{self, Watch};
use afregning_processors::portfolio::{Portfolio, PortfolioConfig};
use afregning_settlement::calendar::{local_date, local_midnight};
use afregning_settlement::{BillingMonth, Resolution, SupplyPeriod, settle_month};
use afregning_simulator::SimulatorConfig;
use afregning_simulator::notifications::Takeover;
use afregning_testkit::TestEnv;
use afregning_topology::catalogue::TopicId;
use afregning_topology::records::{SettlementStatement, StatementKind};
use afregning_topology::{Codec, topics};
use anyhow::Context;
use chrono::{Datelike, Days, NaiveDate, Utc};

const SUPPLIER: &str = "5790002000000";
const CPR: &str = "0801741527";
const NAME: &str = "Jens Testesen";
const PROCESS: &str = "move-in-lifecycle";

/// The supplied days `[from, to)`: up to three days before today, in one month, ending today
/// (when today is the 1st, the last days of the previous month).
fn supplied_days(today: NaiveDate) -> (NaiveDate, NaiveDate) {
    let from = today - Days::new(3);
    if today.day() == 1 || from.month() == today.month() {
        (from, today)
    } else {
        (today.with_day(1).expect("the 1st"), today)
    }
}

fn events(env: &TestEnv, topic: &str) -> anyhow::Result<Vec<Event>> {
    support::read_raw(env, topic)?
        .into_iter()
        .filter_map(|r| r.value)
        .map(|v| serde_json::from_slice(&v).map_err(anyhow::Error::from))
        .collect()
}

fn changes(events: &[Event], gsrn: afregning_cim::Gsrn) -> Vec<&'static str> {
    events
        .iter()
        .filter(|e| e.metering_point == gsrn)
        .map(|e| e.change.name())
        .collect()
}

/// Waits (60 s at most) until the metering point's events hold every one of `wanted`.
async fn until_events(
    env: &TestEnv,
    topic: &str,
    gsrn: afregning_cim::Gsrn,
    wanted: &[&str],
) -> anyhow::Result<Vec<Event>> {
    let started = Instant::now();
    loop {
        let all = events(env, topic)?;
        let seen = changes(&all, gsrn);
        if wanted.iter().all(|w| seen.contains(w)) {
            return Ok(all);
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(60),
            "not all of {wanted:?} in 60 s: {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Every row of the read model's tables (`portfolio_*` but the key store's), as text, sorted.
async fn read_model(pool: &sqlx::PgPool) -> anyhow::Result<Vec<String>> {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables \
         WHERE table_schema = current_schema() AND table_name LIKE 'portfolio\\_%' \
         AND table_name NOT IN ('portfolio_data_keys', 'portfolio_erasures') ORDER BY 1",
    )
    .fetch_all(pool)
    .await?;
    anyhow::ensure!(tables.len() >= 4, "the read model's tables: {tables:?}");
    let mut rows = Vec::new();
    for table in tables {
        let mut these: Vec<String> =
            sqlx::query_scalar(&format!("SELECT t::text FROM \"{table}\" t"))
                .fetch_all(pool)
                .await?;
        these.sort();
        rows.extend(these.into_iter().map(|r| format!("{table}: {r}")));
    }
    Ok(rows)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_move_in_confirmed_by_datahub_is_settled_for_its_supplied_days_only() -> anyhow::Result<()>
{
    let logs = afregning_testkit::capture_logs().expect("the first subscriber of this test binary");
    let started = Instant::now();
    let env = TestEnv::start("portfolio_lifecycle").await?;
    let catalogue = support::deployment(&env, &env.namespace, 2).await?;
    let work = tempfile::tempdir()?;
    let mut keys = Keyring::default();
    keys.generate("k1")?;
    let key_file = work.path().join("portfolio.keys");
    keys.save(&key_file)?;

    let today = local_date(Utc::now());
    let (from, to) = supplied_days(today);
    let mut config = support::complete_month(from, 1);
    config.scenario.days = u32::try_from((to - from).num_days())?;
    config.scenario.supplier_gln = SUPPLIER.into();
    config.scenario_now = Some(Utc::now());
    let simulator = support::serve_simulator(SimulatorConfig { ..config }).await?;

    let mut connect = support::connect_config(&env, &catalogue, &simulator, work.path());
    connect.outbound.enabled = true;
    connect.outbound.portfolio_key_file = Some(key_file.clone());
    let kafka = connect.kafka.clone();
    let connector = Connector::new(connect).start().await?;
    let spot = afregning_connect::spot_prices::SpotPricesConfig {
        url: simulator.spot_prices_url(),
        start: Some(from),
        end: Some(to),
        once: true,
        kafka,
        admin_listen: "127.0.0.1:0".parse()?,
        ..Default::default()
    };
    let (_spot_stop, spot_rx) = tokio::sync::watch::channel(false);
    afregning_connect::spot_prices::run(spot, spot_rx).await?;

    let codec = Codec::new(catalogue.clone(), &env.registry_url);
    let topics_ = pipeline::topics(catalogue.clone(), &codec).await?;
    let settings =
        support::pipeline_settings(&env, &env.namespace, &work.path().join("state"), SUPPLIER);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let shutdown = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let portfolio = tokio::spawn(pipeline::run_runtime(
        Portfolio::new(
            topics_.clone(),
            PortfolioConfig {
                us: Gln::parse(SUPPLIER).context("gln")?,
                tick_interval: Duration::from_millis(300),
            },
        ),
        settings.runtime.clone(),
        Watch::default(),
        shutdown(stop_rx.clone()),
    ));
    let processors = tokio::spawn(pipeline::run_all(
        topics_.clone(),
        settings,
        shutdown(stop_rx.clone()),
    ));

    // The read model's and the key store's tables (the CLI seals under the customer's own
    // key, decision 0148).
    let mut conn = afregning_sinks::schema::connect(&env.database_url, "test").await?;
    afregning_sinks::schema::migrate(
        &mut conn,
        &afregning_sinks::schema::StorageSettings::default(),
        Utc::now().date_naive(),
    )
    .await?;

    // 1. The operator's move-in, through the real binary.
    let gsrn = afregning_cim::Gsrn::with_check_digit("57131318049999997").context("a GSRN")?;
    let (status, _, cli_stderr) = support::afregning(
        &[
            "portfolio",
            "request",
            "move-in",
            "--gsrn",
            &gsrn.to_string(),
            "--effective",
            &from.to_string(),
            "--customer",
            "customer-lifecycle",
            "--process-id",
            PROCESS,
            "--why",
            "end-to-end lifecycle",
            "--supplier-gln",
            SUPPLIER,
            "--topic-prefix",
            &catalogue.settings().prefix,
            "--partitions",
            "2",
            "--bootstrap-servers",
            &env.bootstrap_servers,
        ],
        &[
            (
                "AFREGNING_PORTFOLIO_KEY_FILE",
                key_file.to_string_lossy().as_ref(),
            ),
            ("DATABASE_URL", &env.database_url),
        ],
        &format!("{CPR}\n{NAME}\n"),
    )?;
    anyhow::ensure!(status == 0, "afregning portfolio request: {cli_stderr}");

    // 2. DataHub confirms and sends master data, customer data and charge links.
    let events_topic = catalogue.spec(TopicId::PortfolioEvents)?.name.clone();
    until_events(
        &env,
        &events_topic,
        gsrn,
        &[
            "accepted",
            "took_effect",
            "master_data_received",
            "customer_data_received",
            "charge_links_received",
        ],
    )
    .await?;

    // 3. Another supplier takes the metering point from today.
    simulator
        .handle()
        .notify_takeover(gsrn, to, Takeover::ChangeOfSupplier);
    let all = until_events(&env, &events_topic, gsrn, &["notified"]).await?;
    let notified = all
        .iter()
        .find(|e| e.metering_point == gsrn && e.change.name() == "notified")
        .and_then(|e| e.process.clone())
        .context("the takeover")?;
    let started_effect = Instant::now();
    let all = loop {
        let all = events(&env, &events_topic)?;
        let taken = all
            .iter()
            .any(|e| e.process.as_ref() == Some(&notified) && e.change.name() == "took_effect");
        if taken {
            break all;
        }
        anyhow::ensure!(
            started_effect.elapsed() < Duration::from_secs(30),
            "the takeover did not take effect"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    let state = MeteringPoint::fold(
        gsrn,
        Gln::parse(SUPPLIER).context("gln")?,
        all.iter().filter(|e| e.metering_point == gsrn),
    );
    let ours = &state.processes[&afregning_portfolio::ProcessId(PROCESS.into())];
    assert_eq!(
        ours.status,
        ProcessStatus::Completed,
        "the customer data completed the move-in"
    );
    assert!(
        state
            .master_data
            .as_ref()
            .is_some_and(|m| m.grid_area == "344")
    );
    assert!(!state.charge_links.is_empty(), "charge links kept");
    assert_eq!(
        state
            .supply
            .periods
            .iter()
            .map(|p| (p.from, p.to))
            .collect::<Vec<_>>(),
        [(from, Some(to))],
        "supplied from the move-in until the takeover"
    );

    // 4. Exactly one final statement, the engine's for the supplied days.
    let statements_topic = topics_.name(topics::SETTLEMENT_STATEMENTS);
    let mut still: Option<(Instant, usize)> = None;
    let waited = Instant::now();
    let issued = loop {
        let all: Vec<SettlementStatement> =
            support::read_all(&env, &statements_topic, &topics_.wire)?;
        let ours: Vec<SettlementStatement> = all
            .into_iter()
            .filter(|s| s.gsrn == gsrn.to_string())
            .collect();
        match still {
            Some((since, n)) if n == ours.len() && !ours.is_empty() => {
                if since.elapsed() >= Duration::from_secs(5) {
                    break ours;
                }
            }
            _ => still = Some((Instant::now(), ours.len())),
        }
        anyhow::ensure!(
            waited.elapsed() < Duration::from_secs(90),
            "no statement for {gsrn} in 90 s"
        );
        anyhow::ensure!(!processors.is_finished(), "the processors stopped early");
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let truth = simulator.handle().ground_truth();
    let mp = truth
        .metering_point(gsrn)
        .context("the move-in's metering point in the ground truth")?;
    let delivered: Vec<NaiveDate> = truth
        .readings
        .iter()
        .filter(|r| r.gsrn == gsrn)
        .map(|r| r.day)
        .collect();
    let supplied: Vec<NaiveDate> = from.iter_days().take_while(|d| *d < to).collect();
    assert_eq!(
        delivered, supplied,
        "metered data for the supplied days only"
    );
    let month = BillingMonth::new(from.year(), from.month())?;
    let products = support::products();
    let terms = afregning_processors::settle::core::product_terms(
        &products,
        products.products.first().map(|p| p.id.as_str()),
        &gsrn.to_string(),
        month,
    );
    let mut input = afregning_simulator::expected::month_input(&truth, mp, month, terms);
    input.supply = vec![SupplyPeriod {
        from: local_midnight(from),
        to: Some(local_midnight(to)),
        resolution: Resolution::Pt15m,
    }];
    let want = settle_month(&input)?
        .invoice_totals
        .context("the engine's supplied days are complete")?;
    assert_eq!(issued.len(), 1, "exactly one statement: {issued:?}");
    assert_eq!(issued[0].kind, StatementKind::Statement);
    assert_eq!(issued[0].total_excl_vat, want.excl_vat, "excl. VAT");
    assert_eq!(issued[0].vat_amount, want.vat, "VAT");
    assert_eq!(issued[0].total_incl_vat, want.incl_vat, "incl. VAT");

    let _ = stop_tx.send(true);
    processors.await??;
    portfolio.await??;
    connector.shutdown().await;

    // 5. The read model equals a rebuild from the events.
    let pool = env.pg_pool().await?;
    let all = events(&env, &events_topic)?;
    support::project_portfolio(&env, &pool, &events_topic, SUPPLIER, all.len() as u64).await?;
    let projected = read_model(&pool).await?;
    assert!(
        projected.iter().any(|r| r.contains(PROCESS)),
        "the move-in is in the read model"
    );
    afregning_portfolio::read_model::truncate(&pool).await?;
    support::project_portfolio(&env, &pool, &events_topic, SUPPLIER, all.len() as u64).await?;
    assert_eq!(
        read_model(&pool).await?,
        projected,
        "rebuilt from the events"
    );
    // The connector sealed DataHub's customer data under a key of its own, which the
    // projection gave to the customer: erasing them reaches it (decision 0148).
    let keys: Vec<(String, String, Option<String>)> = sqlx::query_as(
        "SELECT origin, key_id, customer_key FROM portfolio_data_keys ORDER BY origin",
    )
    .fetch_all(&pool)
    .await?;
    assert_eq!(
        keys.len(),
        2,
        "the customer's own key and the RSM-028's: {keys:?}"
    );
    assert!(
        keys.iter()
            .all(|(_, _, customer)| customer.as_deref() == Some("customer-lifecycle")),
        "{keys:?}"
    );
    let (origin, message_key, _) = &keys[1];
    assert_eq!(origin, "message");
    let sealed_under: Vec<String> = sqlx::query_scalar(
        "SELECT key_id FROM portfolio_customer_seals WHERE customer_key = 'customer-lifecycle'",
    )
    .fetch_all(&pool)
    .await?;
    assert!(sealed_under.contains(message_key), "{sealed_under:?}");

    // 6. No plaintext CPR or name anywhere.
    support::topics_without(&env, &catalogue, &[CPR, NAME])?;
    let masterdata_raw = catalogue.spec(TopicId::MasterdataRaw)?.name.clone();
    let sealed_028 = support::read_raw(&env, &masterdata_raw)?
        .into_iter()
        .filter_map(|r| r.value)
        .filter(|v| String::from_utf8_lossy(v).contains("CharacteristicsOfACustomerAtAnAP"))
        .count();
    assert_eq!(sealed_028, 1, "the RSM-028 crossed the raw topic (sealed)");
    support::tables_without(&pool, &[CPR, NAME]).await?;
    let log = afregning_connect::inbound_log::InboundLog::open(
        &afregning_connect::config::InboundLogConfig {
            dir: work.path().join("inbound"),
            ..Default::default()
        },
    )?;
    let entries = log.entries()?;
    assert!(entries.len() > 1, "the inbound log holds the bundles");
    for entry in &entries {
        let text = String::from_utf8_lossy(&log.read(entry)?).into_owned();
        assert!(
            !text.contains(CPR) && !text.contains(NAME),
            "plaintext in the inbound log's {}",
            entry.file
        );
    }
    simulator.shutdown().await;
    let logged = logs.text();
    for text in [logged.as_str(), cli_stderr.as_str()] {
        assert!(
            !text.contains(CPR) && !text.contains(NAME),
            "personal data in a log line"
        );
    }
    eprintln!(
        "supplied {from} to {to} (exclusive): one statement of {} DKK incl. VAT; {} s",
        want.incl_vat,
        started.elapsed().as_secs()
    );
    env.cleanup().await?;
    Ok(())
}

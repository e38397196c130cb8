//! Issue 14's replay test on the real broker and database.
//!
//! A simulated March 2026 (two grid areas in different partitions) runs through
//! the connector, all four processors and the sinks. Then the supplier's
//! margin for March is corrected retroactively: a price the log does not
//! carry, so the running processors cannot see it (a grid tariff corrected on
//! the charges topic is re-settled by settle on its own, decision 0072; see
//! docs/replay.md). With the pipeline running on the corrected configuration,
//! `afregning replay start --processor settle --grid-area 344 --from-time ...`
//! runs first as a dry run, then for real. Checked:
//! - the dry run publishes nothing and predicts exactly the real run's summary;
//! - only grid area 344's metering points get new versions, each total moving by
//!   exactly what the pure engine computes between the two margins;
//! - grid area 791: no new version, no state change (only commit markers in its
//!   changelog partitions), its committed input positions unchanged;
//! - the old versions are still in the sink's tables, the new ones beside them,
//!   and every changed final statement is credited and re-issued;
//! - `replay status` shows the runs.

mod replay_support;
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use afregning_processors::pipeline;
use afregning_processors::runtime::changelog::{MARKER_KEY, changelog_topic};
use afregning_settlement::{BillingMonth, ProductCatalogue, settle_month};
use afregning_simulator::{FaultConfig, GroundTruth, SimulatorConfig};
use afregning_testkit::TestEnv;
use afregning_topology::partitioner::partition_for_grid_area;
use afregning_topology::records::{
    ChargeLink, ChargePrice, ChargePriceKey, ChargeType, ProvisionalSettlement,
    SettlementStatement, StatementKind,
};
use afregning_topology::{Codec, topics};
use anyhow::Context;
use chrono::Utc;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use replay_support::{corrected, latest, march, newest_run, summary_of_run};
use rust_decimal::Decimal;

const PARTITIONS: u32 = 3;
const REPLAYED: &str = "344";
const UNTOUCHED: &str = "791";

fn march_start() -> chrono::DateTime<Utc> {
    chrono::DateTime::parse_from_rfc3339("2026-02-28T23:00:00Z")
        .expect("time")
        .with_timezone(&Utc)
}

/// The month of one metering point by the pure engine under `products`.
fn engine_total(
    truth: &GroundTruth,
    mp: &afregning_simulator::ground_truth::MeteringPointTruth,
    products: &ProductCatalogue,
) -> anyhow::Result<Decimal> {
    let month = BillingMonth::new(2026, 3)?;
    let terms = afregning_processors::settle::core::product_terms(
        products,
        products.products.first().map(|p| p.id.as_str()),
        &mp.gsrn.to_string(),
        month,
    );
    let input = afregning_simulator::expected::month_input(truth, mp, month, terms);
    Ok(settle_month(&input)?.known_totals.excl_vat.round_dp(6))
}

/// settle's committed input offsets (the group's mirror) of `partition`.
fn committed(
    env: &TestEnv,
    group: &str,
    topic: &str,
    partition: i32,
) -> anyhow::Result<Option<i64>> {
    let consumer: BaseConsumer = env.kafka_config().set("group.id", group).create()?;
    let mut list = TopicPartitionList::new();
    list.add_partition(topic, partition);
    let offsets = consumer.committed_offsets(list, Duration::from_secs(10))?;
    Ok(offsets.elements().first().and_then(|e| match e.offset() {
        Offset::Offset(o) => Some(o),
        _ => None,
    }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_retroactive_price_correction_replayed_for_one_grid_area_changes_only_its_results()
-> anyhow::Result<()> {
    afregning_testkit::init_logging();
    let env = TestEnv::start("replay").await?;
    let catalogue = support::deployment(&env, &env.namespace, PARTITIONS).await?;
    let replayed_partition = partition_for_grid_area(REPLAYED, PARTITIONS);
    let untouched_partition = partition_for_grid_area(UNTOUCHED, PARTITIONS);
    assert_ne!(
        replayed_partition, untouched_partition,
        "the grid areas share a partition"
    );

    // 1. DataHub's March, through the connector, the processors and the sinks.
    let log_start = Utc::now();
    let mut config = SimulatorConfig::default();
    config.scenario.metering_points = 30;
    config.scenario.first_day = march();
    config.scenario.days = 31;
    config.scenario.grid_areas = vec![REPLAYED.into(), UNTOUCHED.into()];
    config.scenario.aggregations = false;
    config.faults = FaultConfig::every_fault(0.0);
    let work = tempfile::tempdir()?;
    let truth = support::drain_datahub(
        &env,
        &catalogue,
        config,
        work.path(),
        (march(), march() + chrono::Months::new(1)),
    )
    .await?;
    let codec = Codec::new(catalogue.clone(), &env.registry_url);
    let topics = pipeline::topics(catalogue.clone(), &codec).await?;
    let products = support::products();
    let state_dir = work.path().join("state");
    let settings =
        support::pipeline_settings(&env, &env.namespace, &state_dir, &truth.supplier_gln);
    let report = pipeline::run_until_caught_up(
        topics.clone(),
        settings.clone(),
        Duration::from_secs(3),
        Duration::from_secs(900),
    )
    .await?;
    eprintln!("{report}");
    let sink = replay_support::sink_config(&env, &env.namespace, PARTITIONS);
    eprintln!("{}", afregning_sinks::run_until_caught_up(&sink).await?);

    let provisional_topic = topics.name(topics::PROVISIONAL_SETTLEMENTS);
    let before: Vec<ProvisionalSettlement> =
        support::read_all(&env, &provisional_topic, &topics.wire)?;
    let before_latest = latest(&before);
    let raw_before = support::read_raw(&env, &provisional_topic)?;
    let statements_before: Vec<SettlementStatement> = support::read_all(
        &env,
        &topics.name(topics::SETTLEMENT_STATEMENTS),
        &topics.wire,
    )?;
    let group = format!("{}afregning.settle", env.namespace);
    let enriched = topics.name(topics::ENRICHED_READINGS);
    let untouched_position = committed(&env, &group, &enriched, untouched_partition)?;
    let changelogs: Vec<String> = ["months", "positions"]
        .iter()
        .map(|s| changelog_topic(&env.namespace, "settle", s))
        .collect();
    let changelog_counts = |raw: &[support::Raw]| {
        raw.iter()
            .filter(|r| r.partition == untouched_partition)
            .count()
    };
    let mut changelog_before = BTreeMap::new();
    for topic in &changelogs {
        changelog_before.insert(
            topic.clone(),
            changelog_counts(&support::read_raw(&env, topic)?),
        );
    }
    let mps_of = |area: &str| -> BTreeSet<String> {
        truth
            .metering_points
            .iter()
            .filter(|m| m.grid_area == area)
            .map(|m| m.gsrn.to_string())
            .collect()
    };
    let (replayed_mps, untouched_mps) = (mps_of(REPLAYED), mps_of(UNTOUCHED));
    assert!(!replayed_mps.is_empty() && !untouched_mps.is_empty());

    // 2. The corrected margin is deployed; the pipeline keeps running on it.
    let mut running_settings = settings.clone();
    let fixed = corrected(&products);
    running_settings.settle.catalogue = fixed.clone();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let pipeline = tokio::spawn(pipeline::run_all(
        topics.clone(),
        running_settings,
        async move {
            let _ = stop_rx.await;
        },
    ));
    tokio::time::sleep(Duration::from_secs(8)).await;
    let replay = |args: &[&str]| replay_support::replay_cli(&env, &env.namespace, PARTITIONS, args);
    let from_time = log_start.to_rfc3339();
    let replay_args = [
        "start",
        "--processor",
        "settle",
        "--grid-area",
        REPLAYED,
        "--from-time",
        from_time.as_str(),
        "--recompute-from",
        "2026-02-28T23:00:00Z",
        "--to-time",
        "2026-03-31T22:00:00Z",
        "--reason",
        "March margin corrected from 0.0800 to 0.0950 DKK/kWh",
        "--timeout-secs",
        "300",
    ];

    // 3. A dry run: a summary, nothing published.
    let mut dry = replay_args.to_vec();
    dry.push("--dry-run");
    let output = replay(&dry)?;
    assert!(output.status.success(), "the dry run failed");
    let pool = env.pg_pool().await?;
    let dry_id = newest_run(&pool).await?;
    let (dry_state, dry_summary) = summary_of_run(&pool, &dry_id).await?;
    assert_eq!(dry_state, "done");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        support::read_raw(&env, &provisional_topic)?.len(),
        raw_before.len(),
        "the dry run published provisional versions"
    );

    // 4. The replay.
    let output = replay(&replay_args)?;
    assert!(output.status.success(), "the replay failed");
    let run_id = newest_run(&pool).await?;
    assert_ne!(run_id, dry_id);
    let (state, summary) = summary_of_run(&pool, &run_id).await?;
    assert_eq!(state, "done");
    // Finality runs at settle's tick (500 ms): credit notes and new statements.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let _ = stop_tx.send(());
    pipeline.await??;
    eprintln!("{}", afregning_sinks::run_until_caught_up(&sink).await?);

    // 5a. The dry run predicted the run.
    assert_eq!(
        dry_summary.without_versions(),
        summary.without_versions(),
        "dry run vs run"
    );

    // 5b. New versions only for grid area 344, each by the engine's difference.
    let after: Vec<ProvisionalSettlement> =
        support::read_all(&env, &provisional_topic, &topics.wire)?;
    let after_latest = latest(&after);
    let changed: BTreeSet<String> = after_latest
        .iter()
        .filter(|(gsrn, p)| {
            before_latest
                .get(*gsrn)
                .is_none_or(|b| b.version != p.version)
        })
        .map(|(gsrn, _)| gsrn.clone())
        .collect();
    assert_eq!(
        changed, replayed_mps,
        "exactly grid area {REPLAYED}'s metering points changed"
    );
    let summarised: BTreeSet<String> = summary.changes.iter().map(|c| c.gsrn.clone()).collect();
    assert_eq!(summarised, replayed_mps, "the summary names them");
    let mut expected_total = Decimal::ZERO;
    for mp in truth
        .metering_points
        .iter()
        .filter(|m| m.grid_area == REPLAYED)
    {
        let gsrn = mp.gsrn.to_string();
        let old = engine_total(&truth, mp, &products)?;
        let new = engine_total(&truth, mp, &fixed)?;
        let change = summary
            .changes
            .iter()
            .find(|c| c.gsrn == gsrn)
            .context("in the summary")?;
        assert_eq!(
            (change.total_before, change.total_after),
            (old, new),
            "{gsrn}: before and after as the engine"
        );
        assert_eq!(
            after_latest[&gsrn].total_excl_vat, new,
            "{gsrn}: the new version's total"
        );
        assert_eq!(
            after_latest[&gsrn].version,
            before_latest[&gsrn].version + 1,
            "{gsrn}: one new version"
        );
        assert_eq!(change.version_after, Some(after_latest[&gsrn].version));
        let differences = change
            .component_differences()
            .context("the old version's lines from the sink")?;
        let not_vat: Vec<(&String, &Decimal)> = differences
            .iter()
            .filter(|(k, _)| !k.starts_with("VAT"))
            .collect();
        assert_eq!(
            not_vat.len(),
            1,
            "{gsrn}: only the margin changed: {differences:?}"
        );
        assert_eq!(
            *not_vat[0].1,
            new - old,
            "{gsrn}: the margin's difference is the total's"
        );
        expected_total += new - old;
    }
    assert_eq!(summary.difference_total, expected_total);
    assert!(expected_total > Decimal::ZERO, "the margin went up");
    eprintln!("summary:\n{}", summary.render().join("\n"));

    // 5c. Grid area 791: results, state and positions untouched.
    for gsrn in &untouched_mps {
        assert_eq!(
            after_latest[gsrn].version, before_latest[gsrn].version,
            "{gsrn}"
        );
    }
    let untouched_records = |raw: &[support::Raw]| {
        raw.iter()
            .filter(|r| r.partition == untouched_partition)
            .count()
    };
    assert_eq!(
        untouched_records(&support::read_raw(&env, &provisional_topic)?),
        untouched_records(&raw_before),
        "records on grid area {UNTOUCHED}'s partition"
    );
    for topic in &changelogs {
        let raw = support::read_raw(&env, topic)?;
        let records: Vec<&support::Raw> = raw
            .iter()
            .filter(|r| r.partition == untouched_partition)
            .collect();
        let new = &records[changelog_before[topic]..];
        assert!(
            new.iter().all(|r| r.key.as_deref() == Some(MARKER_KEY)),
            "{topic}: grid area {UNTOUCHED}'s state changed ({} records after the replay, not only commit markers)",
            new.len()
        );
    }
    assert_eq!(
        committed(&env, &group, &enriched, untouched_partition)?,
        untouched_position,
        "grid area {UNTOUCHED}'s position"
    );

    // 5d. The sink keeps the old versions beside the new; finals credited and re-issued.
    for gsrn in &replayed_mps {
        let versions: Vec<i64> = sqlx::query_scalar(
            "SELECT version FROM settlement_version WHERE gsrn = $1 AND month_start = $2 ORDER BY version",
        )
        .bind(gsrn)
        .bind(march())
        .fetch_all(&pool)
        .await?;
        let old = before_latest[gsrn].version;
        assert!(
            versions.contains(&old) && versions.contains(&(old + 1)),
            "{gsrn}: {versions:?}"
        );
    }
    let statements: Vec<SettlementStatement> = support::read_all(
        &env,
        &topics.name(topics::SETTLEMENT_STATEMENTS),
        &topics.wire,
    )?;
    let new_statements: Vec<&SettlementStatement> = statements
        .iter()
        .filter(|s| {
            !statements_before
                .iter()
                .any(|b| b.statement_id == s.statement_id)
        })
        .collect();
    for s in &new_statements {
        assert!(
            replayed_mps.contains(&s.gsrn),
            "{}: a statement outside grid area {REPLAYED}",
            s.statement_id
        );
    }
    let credits = new_statements
        .iter()
        .filter(|s| s.kind == StatementKind::CreditNote)
        .count();
    let reissued = new_statements
        .iter()
        .filter(|s| s.kind == StatementKind::Statement)
        .count();
    let finals_before: BTreeSet<&str> = statements_before
        .iter()
        .filter(|s| replayed_mps.contains(&s.gsrn))
        .map(|s| s.gsrn.as_str())
        .collect();
    assert_eq!(
        credits,
        finals_before.len(),
        "one credit note per final statement changed"
    );
    assert_eq!(
        reissued,
        finals_before.len(),
        "one new statement per credit note"
    );

    // 6. `replay status` lists both runs and shows one.
    let output = replay(&["status"])?;
    assert!(output.status.success());
    let listed = String::from_utf8_lossy(&output.stdout);
    assert!(
        listed.contains(&run_id) && listed.contains(&dry_id),
        "{listed}"
    );
    let output = replay(&["status", &run_id])?;
    assert!(String::from_utf8_lossy(&output.stdout).contains("results compared"));

    // 7. The issue's own case, a grid tariff corrected retroactively, needs no
    // replay: with the pipeline running, a corrected price for March of grid
    // area 344's grid tariff on the charge-prices topic is re-settled by settle
    // itself (decision 0072), for exactly the metering points linked to it, and
    // a dry-run replay of the grid area afterwards finds nothing left to change.
    // First the margin correction is replayed for every partition too: settle
    // re-folds every month of a month whose price changed with today's
    // configuration, so grid area 791's months would otherwise pick up the new
    // margin at the tariff's re-settlement and blur what the tariff changed.
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let mut running_settings = settings.clone();
    running_settings.settle.catalogue = fixed.clone();
    let pipeline = tokio::spawn(pipeline::run_all(
        topics.clone(),
        running_settings,
        async move {
            let _ = stop_rx.await;
        },
    ));
    tokio::time::sleep(Duration::from_secs(5)).await;
    let everything = [
        "start",
        "--processor",
        "settle",
        "--from-offset",
        "0",
        "--recompute-from",
        "2026-02-28T23:00:00Z",
        "--to-time",
        "2026-03-31T22:00:00Z",
        "--reason",
        "March margin corrected, every grid area",
        "--timeout-secs",
        "300",
    ];
    let output = replay(&everything)?;
    assert!(
        output.status.success(),
        "the replay of every partition failed"
    );
    let (_, all) = summary_of_run(&pool, &newest_run(&pool).await?).await?;
    let all_changed: BTreeSet<String> = all.changes.iter().map(|c| c.gsrn.clone()).collect();
    assert_eq!(
        all_changed, untouched_mps,
        "the replay of every partition changed grid area {UNTOUCHED} only (344 was replayed)"
    );
    let links: Vec<ChargeLink> =
        support::read_all(&env, &topics.name(topics::CHARGE_LINKS), &topics.wire)?;
    let grid_tariff = |l: &ChargeLink| {
        l.charge_type == ChargeType::Tariff
            && l.owner_gln != afregning_simulator::scenario::rates::ENERGINET_GLN
    };
    let link = links
        .iter()
        .find(|l| replayed_mps.contains(&l.gsrn) && grid_tariff(l))
        .context("a grid tariff linked in grid area 344")?
        .clone();
    let linked: BTreeSet<String> = links
        .iter()
        .filter(|l| {
            l.owner_gln == link.owner_gln
                && l.charge_code == link.charge_code
                && l.charge_type == link.charge_type
        })
        .map(|l| l.gsrn.clone())
        .collect();
    assert!(
        linked.is_subset(&replayed_mps),
        "grid area {REPLAYED}'s grid tariff is linked outside it"
    );
    let prices: Vec<ChargePrice> =
        support::read_all(&env, &topics.name(topics::CHARGE_PRICES), &topics.wire)?;
    let mut price = prices
        .iter()
        .rev()
        .find(|p| {
            p.owner_gln == link.owner_gln
                && p.charge_code == link.charge_code
                && p.charge_type == link.charge_type
                && p.period_start <= march_start()
                && p.period_end > march_start()
        })
        .context("the tariff's price series for March")?
        .clone();
    for point in &mut price.points {
        point.price += Decimal::new(1, 2);
    }
    price.source_message_id = format!("{}-corrected", price.source_message_id);
    let key = ChargePriceKey {
        owner_gln: price.owner_gln.clone(),
        charge_type: price.charge_type,
        charge_code: price.charge_code.clone(),
        period_start: price.period_start,
    };
    let record = topics
        .output(
            topics::CHARGE_PRICES,
            &key,
            &price,
            format!("test:tariff-correction:{}", price.charge_code),
        )
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let settled = latest(&support::read_all(&env, &provisional_topic, &topics.wire)?);
    let producer: rdkafka::producer::FutureProducer = env.kafka_config().create()?;
    producer
        .send(
            rdkafka::producer::FutureRecord::to(&record.topic)
                .partition(record.partition.unwrap_or(0))
                .key(&record.key)
                .payload(record.value.as_deref().unwrap_or_default()),
            Duration::from_secs(10),
        )
        .await
        .map_err(|(e, _)| e)?;
    drop(producer);
    let waited = std::time::Instant::now();
    let resettled = loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = latest(&support::read_all(&env, &provisional_topic, &topics.wire)?);
        let moved: BTreeSet<String> = now
            .iter()
            .filter(|(g, p)| settled.get(*g).is_none_or(|b| b.version != p.version))
            .map(|(g, _)| g.clone())
            .collect();
        if moved == linked || waited.elapsed() > Duration::from_secs(60) {
            break moved;
        }
    };
    assert_eq!(
        resettled, linked,
        "settle re-settled exactly the metering points linked to the corrected tariff"
    );
    let output = replay(&dry)?;
    assert!(output.status.success());
    let (_, after_tariff) = summary_of_run(&pool, &newest_run(&pool).await?).await?;
    assert!(
        after_tariff.results_checked > 0 && after_tariff.changes.is_empty(),
        "a replay after the tariff correction finds nothing: {:?}",
        after_tariff.changes
    );
    let _ = stop_tx.send(());
    pipeline.await??;

    pool.close().await;
    env.cleanup().await?;
    Ok(())
}

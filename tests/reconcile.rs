//! Issue 17 end to end on the real broker, schema registry and PostgreSQL: a simulated
//! March 2026 (6 metering points, two grid areas) goes onto the raw topics as the connector
//! would put it, through validate and enrich, into reconcile and the database sink;
//! DataHub's RSM-019 and RSM-014 for the month are computed by the simulator from its ground
//! truth (`simulator/src/wholesale.rs`) and published on the aggregations queue's topic.
//!
//! - Grid area A has no perturbation: its month reconciles with zero discrepancies.
//! - Grid area B has every injected one: DataHub settles a metering point we do not have
//!   (a copy of one of ours), one grid-company tariff's price differs on one day, a day of
//!   one metering point's readings never reaches us, and DataHub sends a correction run
//!   (D32, first correction) with another price for that day.
//!
//! The report read from PostgreSQL (`afregning reconcile report`'s query, and the binary
//! once) must list exactly what the pure core finds on the same DataHub records and our
//! settlement of the same truth by the pure engine, in the same order, with the same exact
//! values; and what it lists must be made of those causes only: the energy DataHub has more
//! is the copy's month plus the missing day, the prices are the one tariff's on the one day
//! at DataHub's price of the run in force, and no discrepancy names the earlier run.

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use afregning_cim::Gsrn;
use afregning_cim::wholesale::CalculationType;
use afregning_connect::publish::{BundleMeta, RawPublisher, split};
use afregning_processors::pipeline;
use afregning_processors::reconcile::core::{Discrepancy, OurSide, Scope, reconcile};
use afregning_processors::reconcile::ours::{
    MeteringPointGroup, charge_positions, energy_positions,
};
use afregning_processors::reconcile::{ReconcileConfig, run};
use afregning_settlement::calendar::{local_date, local_day_bounds};
use afregning_settlement::{BillingMonth, settle_month};
use afregning_simulator::FaultConfig;
use afregning_simulator::ground_truth::{ChargeTruth, GroundTruth};
use afregning_simulator::scenario::{ScenarioConfig, generate};
use afregning_simulator::wholesale::{Perturbations, PriceChange, rsm014, rsm019, wholesale_run};
use afregning_sinks::reconciliation::{MonthReconciliation, ReportedDiscrepancy};
use afregning_testkit::TestEnv;
use afregning_topology::records::{Resolution, WholesaleResult};
use afregning_topology::{Codec, topics};
use anyhow::Context;
use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use sqlx::Connection;

const MONTH: (i32, u32) = (2026, 3);
const PARTITIONS: u32 = 2;

fn first_day() -> NaiveDate {
    NaiveDate::from_ymd_opt(MONTH.0, MONTH.1, 1).expect("date")
}

fn month() -> BillingMonth {
    BillingMonth::new(MONTH.0, MONTH.1).expect("month")
}

/// What both sides of the comparison are reduced to: every field, values exact.
#[derive(Debug, PartialEq, Eq)]
struct Row {
    what: (String, String),
    charge: (Option<String>, Option<String>, Option<String>),
    resolution: String,
    group: (Option<String>, Option<String>),
    time: DateTime<Utc>,
    values: (Option<Decimal>, Option<Decimal>, Decimal),
    metering_points: Vec<String>,
    calculation: Option<String>,
}

fn expected_row(d: &Discrepancy) -> Row {
    Row {
        what: (d.level.as_str().into(), d.measure.as_str().into()),
        charge: (
            d.charge_owner.clone(),
            d.charge_code.clone(),
            d.charge_type.clone(),
        ),
        resolution: d.resolution.clone(),
        group: (d.metering_point_type.clone(), d.settlement_method.clone()),
        time: d.time,
        values: (d.datahub, d.ours, d.difference),
        metering_points: d.metering_points.clone(),
        calculation: d.calculation.clone(),
    }
}

fn reported_row(d: &ReportedDiscrepancy) -> Row {
    Row {
        what: (d.level.clone(), d.measure.clone()),
        charge: (
            d.charge_owner_gln.clone(),
            d.charge_code.clone(),
            d.charge_type.clone(),
        ),
        resolution: d.resolution.clone(),
        group: (d.metering_point_type.clone(), d.settlement_method.clone()),
        time: d.position_start,
        values: (d.datahub, d.ours, d.difference),
        metering_points: d.metering_points.clone(),
        calculation: d.calculation.clone(),
    }
}

/// The parts of a bundle that carry `gsrn`'s series starting at `start`.
fn is_series_of(part: &[u8], gsrn: &str, start: &str) -> bool {
    fn starts(value: &serde_json::Value, out: &mut Vec<String>) {
        match value {
            serde_json::Value::Object(map) => {
                if let Some(interval) = map.get("timeInterval")
                    && let Some(s) = interval["start"]["value"].as_str()
                {
                    out.push(s.to_string());
                }
                map.values().for_each(|v| starts(v, out));
            }
            serde_json::Value::Array(items) => items.iter().for_each(|v| starts(v, out)),
            _ => {}
        }
    }
    let Ok(json) = serde_json::from_slice::<serde_json::Value>(part) else {
        return false;
    };
    let mut found = Vec::new();
    starts(&json, &mut found);
    String::from_utf8_lossy(part).contains(gsrn) && found.iter().any(|s| s == start)
}

/// Produces DataHub's documents on the raw topics as the connector would (split per
/// series, its headers), leaving out the series `skip` names.
async fn publish_documents(
    publisher: &RawPublisher,
    documents: &[(afregning_connect::Queue, String, Vec<u8>)],
    skip: Option<(&str, &str)>,
) -> anyhow::Result<usize> {
    let mut skipped = 0;
    for (queue, message_id, body) in documents {
        let (mut parts, kind) = split(body);
        if let Some((gsrn, start)) = skip {
            let before = parts.len();
            parts.retain(|p| !is_series_of(&p.bytes, gsrn, start));
            skipped += before - parts.len();
        }
        if parts.is_empty() {
            continue;
        }
        let meta = BundleMeta {
            queue: *queue,
            message_id,
            content_type: "application/json; charset=utf-8",
            received_at: Utc::now(),
            sha256: "0",
        };
        publisher.publish(&meta, &parts, &kind).await?;
    }
    Ok(skipped)
}

fn queue_of(q: afregning_simulator::Queue) -> afregning_connect::Queue {
    match q {
        afregning_simulator::Queue::Timeseries => afregning_connect::Queue::Timeseries,
        afregning_simulator::Queue::Aggregations => afregning_connect::Queue::Aggregations,
        afregning_simulator::Queue::MasterData => afregning_connect::Queue::MasterData,
        afregning_simulator::Queue::Charges => afregning_connect::Queue::Charges,
    }
}

/// DataHub's RSM-019 and RSM-014 of one run, as bundles on the aggregations queue.
fn wholesale_documents(
    truth: &GroundTruth,
    calculation: CalculationType,
    version: u64,
    perturbations: &Perturbations,
) -> anyhow::Result<Vec<(afregning_connect::Queue, String, Vec<u8>)>> {
    let run = wholesale_run(truth, first_day(), calculation, version, perturbations)
        .context("the simulator's wholesale run")?;
    let created: DateTime<Utc> = "2026-04-20T06:00:00Z".parse()?;
    let (w, a) = (format!("W-{version}"), format!("A-{version}"));
    Ok(vec![
        (
            afregning_connect::Queue::Aggregations,
            w.clone(),
            rsm019(&run, &w, created),
        ),
        (
            afregning_connect::Queue::Aggregations,
            a.clone(),
            rsm014(&run, &a, created),
        ),
    ])
}

/// Our side from the pure engine on the truth, without `skip`'s day.
fn our_side(truth: &GroundTruth, skip: (Gsrn, NaiveDate)) -> OurSide {
    let mut side = OurSide::default();
    for mp in &truth.metering_points {
        let mut input = afregning_simulator::expected::month_input(truth, mp, month(), Vec::new());
        if mp.gsrn == skip.0 {
            input.positions.retain(|p| local_date(p.start) != skip.1);
        }
        let statement = settle_month(&input).expect("settled");
        let group = MeteringPointGroup {
            gsrn: mp.gsrn.to_string(),
            grid_area: mp.grid_area.clone(),
            metering_point_type: mp.metering_point_type.as_str().to_string(),
            settlement_method: Some(mp.settlement_method.as_str().to_string()),
        };
        side.charges.extend(charge_positions(&statement, &group));
        let resolution = match mp.resolution {
            afregning_cim::Resolution::QuarterHour => Resolution::Pt15m,
            _ => Resolution::Pt1h,
        };
        side.energy
            .extend(energy_positions(&input.positions, resolution, &group));
    }
    side
}

fn scope(truth: &GroundTruth, area: &str) -> Scope {
    Scope {
        grid_area: area.into(),
        energy_supplier: truth.supplier_gln.clone(),
        month_start: month().start(),
        month_end: month().end(),
        grid_area_owner: truth
            .metering_points
            .iter()
            .find(|m| m.grid_area == area)
            .expect("a point in the area")
            .grid_owner_gln
            .clone(),
    }
}

struct Deployment {
    env: TestEnv,
    topics: afregning_processors::shared::Topics,
    state: tempfile::TempDir,
    supplier: String,
}

impl Deployment {
    /// validate, enrich, aggregate, settle; then reconcile; then the sinks: each until
    /// caught up.
    async fn run_through(&self) -> anyhow::Result<()> {
        let settings = support::pipeline_settings(
            &self.env,
            &self.env.namespace,
            &self.state.path().join("pipeline"),
            &self.supplier,
        );
        let report = pipeline::run_until_caught_up(
            self.topics.clone(),
            settings.clone(),
            Duration::from_secs(2),
            Duration::from_secs(300),
        )
        .await?;
        eprintln!("{report}");
        let config = ReconcileConfig {
            supplier_gln: Some(self.supplier.clone()),
            tick_interval: Duration::from_millis(300),
            ..ReconcileConfig::default()
        };
        let done = run::run_until_caught_up(
            self.topics.clone(),
            config,
            afregning_processors::runtime::RuntimeConfig {
                state_dir: self.state.path().join("reconcile"),
                ..settings.runtime
            },
            Duration::from_secs(2),
            Duration::from_secs(180),
        )
        .await?;
        eprintln!("reconcile: {done:?}");
        let sink = afregning_sinks::config::SinkConfig {
            bootstrap_servers: self.env.bootstrap_servers.clone(),
            schema_registry_url: self.env.registry_url.clone(),
            database_url: self.env.database_url.clone(),
            topic_prefix: self.env.namespace.clone(),
            partitions: PARTITIONS,
            ..Default::default()
        };
        eprintln!("{}", afregning_sinks::run_until_caught_up(&sink).await?);
        Ok(())
    }

    async fn report(&self, area: &str) -> anyhow::Result<MonthReconciliation> {
        let mut conn = sqlx::PgConnection::connect(&self.env.database_url).await?;
        let mut found =
            afregning_sinks::reconciliation::month(&mut conn, first_day(), Some(area)).await?;
        anyhow::ensure!(found.len() == 1, "no reconciliation of {area}");
        Ok(found.remove(0))
    }

    fn results(&self) -> anyhow::Result<Vec<WholesaleResult>> {
        support::read_all(
            &self.env,
            &self.topics.name(topics::WHOLESALE_RESULTS),
            &self.topics.wire,
        )
    }
}

fn cli_report(env: &TestEnv, area: &str) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_afregning"))
        .args([
            "reconcile",
            "report",
            "--month",
            "2026-03",
            "--grid-area",
            area,
            "--database-url",
            &env.database_url,
        ])
        .output()
        .expect("run afregning")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_month_on_the_broker_reconciles_to_exactly_the_injected_discrepancies()
-> anyhow::Result<()> {
    afregning_testkit::init_logging();
    let env = TestEnv::start("reconcile").await?;
    let catalogue = support::deployment(&env, &env.namespace, PARTITIONS).await?;
    let codec = Codec::new(catalogue.clone(), &env.registry_url);
    let topics = pipeline::topics(catalogue.clone(), &codec).await?;

    // 1. The month DataHub knows: 6 metering points, PT15M and PT1H, two grid areas, the
    //    spring DST day, corrections and estimates.
    let scenario = generate(
        &ScenarioConfig {
            metering_points: 6,
            first_day: first_day(),
            days: 31,
            grid_areas: vec!["344".into(), "791".into()],
            pt1h_share: 0.4,
            correction_share: 0.05,
            estimated_share: 0.05,
            missing_share: 0.002,
            late_share: 0.0,
            aggregations: false,
            ..ScenarioConfig::default()
        },
        &FaultConfig::none(),
    )?;
    let truth = scenario.truth.clone();
    let areas: BTreeSet<&str> = truth
        .metering_points
        .iter()
        .map(|m| m.grid_area.as_str())
        .collect();
    anyhow::ensure!(areas.len() == 2, "two grid areas: {areas:?}");
    let (area_a, area_b) = ("344", "791");
    let in_b: Vec<_> = truth
        .metering_points
        .iter()
        .filter(|m| m.grid_area == area_b)
        .collect();
    let copied = in_b[0].gsrn;
    let unread = in_b.get(1).unwrap_or(&in_b[0]).gsrn;
    let unread_day = NaiveDate::from_ymd_opt(2026, 3, 10).expect("date");
    let extra = Gsrn::with_check_digit("57131319999999999").expect("gsrn");
    // One of B's grid company's tariffs, and its price on the day.
    let b_owner = in_b[0].grid_owner_gln.clone();
    let tariff = truth
        .charges
        .iter()
        .find(|c| {
            c.owner_gln == b_owner && !c.tax && truth.links_of(copied).any(|l| l.code == c.code)
        })
        .expect("a grid company charge linked in B");
    let price_day = NaiveDate::from_ymd_opt(2026, 3, 17).expect("date");
    let (day_start, _) = local_day_bounds(price_day);
    let first_hour_price = tariff
        .prices
        .iter()
        .filter(|p| p.time <= day_start)
        .max_by_key(|p| p.time)
        .expect("a price")
        .price;
    let fixing_price = first_hour_price + Decimal::new(12_345, 6);
    let corrected_price = first_hour_price + Decimal::new(54_321, 6);
    let perturbed = |price: Decimal| Perturbations {
        extra_metering_point: Some((copied, extra)),
        price_change: Some(PriceChange {
            owner: tariff.owner_gln.clone(),
            code: tariff.code.clone(),
            day: price_day,
            price,
        }),
    };

    // 2. Everything onto the raw topics, but for one day of one metering point's readings;
    //    then DataHub's wholesale fixing (D05 v1).
    let producer =
        afregning_connect::publish::producer_config(&afregning_connect::config::KafkaConfig {
            bootstrap_servers: env.bootstrap_servers.clone(),
            ..Default::default()
        })
        .create()?;
    let publisher = RawPublisher::new(producer, codec.clone(), 16 * 1024 * 1024);
    let documents: Vec<_> = scenario
        .messages
        .iter()
        .map(|m| (queue_of(m.queue), m.id.clone(), m.body.to_vec()))
        .collect();
    let unread_start = local_day_bounds(unread_day)
        .0
        .format("%Y-%m-%dT%H:%MZ")
        .to_string();
    let skipped = publish_documents(
        &publisher,
        &documents,
        Some((&unread.to_string(), &unread_start)),
    )
    .await?;
    anyhow::ensure!(
        skipped >= 1,
        "the unread day's series was found and left out"
    );
    let fixing = wholesale_documents(
        &truth,
        CalculationType::WholesaleFixing,
        1,
        &perturbed(fixing_price),
    )?;
    publish_documents(&publisher, &fixing, None).await?;

    let deployment = Deployment {
        env,
        topics,
        state: tempfile::tempdir()?,
        supplier: truth.supplier_gln.clone(),
    };
    deployment.run_through().await?;

    // 3. A reconciles to nothing; B to exactly what the pure core finds on the same records.
    let ours = our_side(&truth, (unread, unread_day));
    let check = |results: &[WholesaleResult], area: &str, got: &MonthReconciliation| {
        let expected: Vec<Row> = reconcile(results, &ours, &scope(&truth, area))
            .iter()
            .map(expected_row)
            .collect();
        let reported: Vec<Row> = got.discrepancies.iter().map(reported_row).collect();
        assert_eq!(
            reported.len(),
            expected.len(),
            "{area}: {} reported, {} expected",
            reported.len(),
            expected.len()
        );
        for (i, (r, e)) in reported.iter().zip(&expected).enumerate() {
            assert_eq!(r, e, "{area}: discrepancy {i}");
        }
    };
    let results = deployment.results()?;
    let a = deployment.report(area_a).await?;
    assert!(a.discrepancies.is_empty(), "{:#?}", a.discrepancies.first());
    assert_eq!(a.calculations, "D05 v1");
    check(&results, area_a, &a);
    let b = deployment.report(area_b).await?;
    assert_eq!(b.calculations, "D05 v1");
    check(&results, area_b, &b);
    explained_by_the_causes(
        &truth,
        &b,
        (copied, extra),
        (unread, unread_day),
        tariff.code.as_str(),
        (day_start, fixing_price, tariff),
        "D05 v1",
    );

    // 4. DataHub's first correction (D32-D01 v2), another price that day: in force over the
    //    fixing, which stays in the history.
    let correction = wholesale_documents(
        &truth,
        CalculationType::FirstCorrection,
        2,
        &perturbed(corrected_price),
    )?;
    publish_documents(&publisher, &correction, None).await?;
    deployment.run_through().await?;
    let results = deployment.results()?;
    assert!(
        results.iter().any(|r| r.business_reason == "D05"),
        "history kept"
    );
    let a2 = deployment.report(area_a).await?;
    assert!(a2.discrepancies.is_empty());
    assert_eq!(a2.calculations, "D32-D01 v2");
    let b2 = deployment.report(area_b).await?;
    assert_eq!(b2.calculations, "D32-D01 v2");
    assert!(b2.version > b.version);
    check(&results, area_b, &b2);
    explained_by_the_causes(
        &truth,
        &b2,
        (copied, extra),
        (unread, unread_day),
        tariff.code.as_str(),
        (day_start, corrected_price, tariff),
        "D32-D01 v2",
    );

    // 5. The binary prints the same: zero for A (exit 0), B's lines (exit 1).
    let out_a = cli_report(&deployment.env, area_a);
    let text_a = String::from_utf8_lossy(&out_a.stdout);
    assert_eq!(out_a.status.code(), Some(0), "{text_a}");
    assert!(text_a.contains("no discrepancies"), "{text_a}");
    let out_b = cli_report(&deployment.env, area_b);
    let text_b = String::from_utf8_lossy(&out_b.stdout);
    assert_eq!(out_b.status.code(), Some(1), "{text_b}");
    assert!(text_b.contains(&format!("{} discrepancies", b2.discrepancies.len())));
    assert_eq!(text_b.lines().count(), 2 + b2.discrepancies.len());
    let price_line = text_b
        .lines()
        .find(|l| l.contains("PRICE"))
        .expect("a price line");
    assert!(
        price_line.contains(&number(corrected_price)),
        "{price_line}"
    );
    let first_price = b2
        .discrepancies
        .iter()
        .find(|d| d.measure == "PRICE")
        .and_then(|d| d.ours)
        .expect("our price");
    assert!(price_line.contains(&number(first_price)), "{price_line}");

    deployment.env.cleanup().await?;
    Ok(())
}

fn number(d: Decimal) -> String {
    d.normalize().to_string()
}

/// Every discrepancy is one of the injected causes, and together they are all of them.
fn explained_by_the_causes(
    truth: &GroundTruth,
    got: &MonthReconciliation,
    (copied, extra): (Gsrn, Gsrn),
    (unread, unread_day): (Gsrn, NaiveDate),
    code: &str,
    (day_start, datahub_price, tariff): (DateTime<Utc>, Decimal, &ChargeTruth),
    run: &str,
) {
    let sum = |keep: &dyn Fn(&ReportedDiscrepancy) -> bool| -> Decimal {
        got.discrepancies
            .iter()
            .filter(|d| keep(d))
            .map(|d| d.difference)
            .sum()
    };
    // The energy DataHub has more: the copy's whole month and our missing day.
    let copy_kwh: Decimal = truth
        .readings
        .iter()
        .filter(|r| r.gsrn == copied)
        .map(|r| r.total_kwh())
        .sum();
    let day_kwh = truth
        .reading(unread, unread_day)
        .expect("the day")
        .total_kwh();
    assert_eq!(sum(&|d| d.level == "ENERGY"), copy_kwh + day_kwh);
    // Prices: only the one tariff on the one day, DataHub's price of the run in force.
    let prices: Vec<&ReportedDiscrepancy> = got
        .discrepancies
        .iter()
        .filter(|d| d.measure == "PRICE")
        .collect();
    assert!(!prices.is_empty());
    for p in &prices {
        assert_eq!(p.charge_code.as_deref(), Some(code));
        assert!(
            p.position_start >= day_start
                && p.position_start < day_start + chrono::Duration::hours(25)
        );
        // Ours is the tariff's own price of that hour (it has time-of-day prices).
        let ours = tariff
            .prices
            .iter()
            .filter(|x| x.time <= p.position_start)
            .max_by_key(|x| x.time)
            .map(|x| x.price);
        assert_eq!((p.datahub, p.ours), (Some(datahub_price), ours));
    }
    let extra = extra.to_string();
    for d in &got.discrepancies {
        // Never the copy on our side; only the run in force.
        assert!(!d.metering_points.contains(&extra), "{d:#?}");
        assert!(d.calculation.as_deref().is_none_or(|c| c == run), "{d:#?}");
        // Position levels other than the price day are quantities (the copy, the day).
        if d.level == "AMOUNT_PER_CHARGE" && d.measure == "PRICE" {
            continue;
        }
        if d.level == "ENERGY" || (d.level == "AMOUNT_PER_CHARGE" && d.measure == "QUANTITY") {
            assert!(d.difference > Decimal::ZERO, "DataHub has more: {d:#?}");
        }
    }
    // The money adds up: every position's amount reaches the month, then the totals.
    assert_eq!(
        sum(&|d| d.level == "AMOUNT_PER_CHARGE" && d.measure == "AMOUNT"),
        sum(&|d| d.level == "MONTHLY_AMOUNT_PER_CHARGE")
    );
    assert_eq!(
        sum(&|d| d.level == "MONTHLY_AMOUNT_PER_CHARGE"),
        sum(&|d| d.level == "SUPPLIER_TOTAL")
    );
}

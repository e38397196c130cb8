//! Issue 7's end-to-end test on the real broker and schema registry: a
//! simulated DataHub month (200 metering points, PT15M and PT1H, two grid
//! areas in two bidding zones, the spring DST day, corrections, estimated and
//! missing quantities, late days, duplicates and bad documents) goes through
//! the connector and all four processors; a mid-month price change of
//! Energinet's system tariff is published too. The statements settle issues
//! must equal, to the øre, the same month computed directly by the pure
//! settlement crate from the simulator's ground truth; a month with missing
//! quantities must not become final.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use afregning_processors::pipeline;
use afregning_settlement::calendar::local_day_bounds;
use afregning_settlement::{
    BillingMonth, ChargeKey, ChargeType, MonthStatement, ProductCatalogue, settle_month,
};
use afregning_simulator::{FaultConfig, GroundTruth, SimulatorConfig};
use afregning_testkit::TestEnv;
use afregning_topology::records::{
    ChargePrice as WireChargePrice, ChargePriceKey, ChargePricePoint as WirePoint,
    ChargeType as WireChargeType, ProvisionalSettlement, Resolution as WireResolution,
    SettlementStatement, StatementKind,
};
use afregning_topology::{Catalogue, Codec, topics};
use anyhow::Context;
use chrono::NaiveDate;
use rdkafka::ClientConfig;
use rust_decimal::Decimal;

const ENERGINET: &str = "5790000432752";
const SYSTEM_TARIFF: &str = "41000";
const MONTH: (i32, u32) = (2026, 3);

fn first_day() -> NaiveDate {
    NaiveDate::from_ymd_opt(MONTH.0, MONTH.1, 1).expect("date")
}

/// The mid-month price change: Energinet's system tariff from 15 March.
fn price_change_from() -> NaiveDate {
    NaiveDate::from_ymd_opt(MONTH.0, MONTH.1, 15).expect("date")
}

fn new_system_tariff() -> Decimal {
    Decimal::new(81, 3)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_simulated_month_settles_to_the_pure_engines_result_to_the_ore() -> anyhow::Result<()> {
    afregning_testkit::init_logging();
    let env = TestEnv::start("settle-e2e").await?;
    let catalogue = support::deployment(&env, &env.namespace, 3).await?;

    // 1. DataHub: a whole March (the 29th has 92 quarter-hours) with every fault at 1 %.
    let mut config = SimulatorConfig::default();
    config.scenario.metering_points = 200;
    config.scenario.first_day = first_day();
    config.scenario.days = 31;
    config.scenario.grid_areas = vec!["344".into(), "791".into()];
    config.scenario.pt1h_share = 0.3;
    config.scenario.correction_share = 0.05;
    config.scenario.estimated_share = 0.05;
    config.scenario.missing_share = 0.002;
    config.scenario.late_share = 0.03;
    config.scenario.aggregations = false;
    config.faults = FaultConfig::every_fault(0.01);

    // 2. The connector drains every queue; spot prices come from the simulator's EDS endpoint.
    let work = tempfile::tempdir()?;
    let truth = support::drain_datahub(
        &env,
        &catalogue,
        config,
        work.path(),
        (first_day(), first_day() + chrono::Months::new(1)),
    )
    .await?;
    let areas: std::collections::BTreeSet<&str> = truth
        .metering_points
        .iter()
        .map(|m| m.grid_area.as_str())
        .collect();
    assert_eq!(areas.len(), 2, "two grid areas");
    assert!(truth.readings.iter().any(|r| r.versions > 1), "corrections");

    // 3. The price change, as validate writes an RSM-034 price series.
    let codec = Codec::new(catalogue.clone(), &env.registry_url);
    publish_price_change(&env, &catalogue, &codec).await?;

    // 4. All four processors until caught up.
    let topics = pipeline::topics(catalogue.clone(), &codec).await?;
    let products = support::products();
    let settings = support::pipeline_settings(
        &env,
        &env.namespace,
        &work.path().join("state"),
        &truth.supplier_gln,
    );
    let report = pipeline::run_until_caught_up(
        topics.clone(),
        settings,
        Duration::from_secs(3),
        Duration::from_secs(1200),
    )
    .await?;
    eprintln!("{report}");

    // 5. What settle issued, and the latest provisional version per metering point.
    let statements: Vec<SettlementStatement> = support::read_all(
        &env,
        &topics.name(topics::SETTLEMENT_STATEMENTS),
        &topics.wire,
    )?;
    let provisional: Vec<ProvisionalSettlement> = support::read_all(
        &env,
        &topics.name(topics::PROVISIONAL_SETTLEMENTS),
        &topics.wire,
    )?;
    let mut latest: BTreeMap<String, ProvisionalSettlement> = BTreeMap::new();
    for p in provisional {
        if latest.get(&p.gsrn).is_none_or(|l| l.version < p.version) {
            latest.insert(p.gsrn.clone(), p);
        }
    }
    let mut finals: BTreeMap<String, Vec<SettlementStatement>> = BTreeMap::new();
    for s in statements {
        finals.entry(s.gsrn.clone()).or_default().push(s);
    }

    // 6. The same month from the ground truth, by the pure crate.
    let month = BillingMonth::new(MONTH.0, MONTH.1)?;
    let mut complete = 0;
    let mut incomplete = 0;
    let mut corrected_after_finality = 0;
    for mp in &truth.metering_points {
        let gsrn = mp.gsrn.to_string();
        let expected = expected_statement(&truth, mp, month, &products)?;
        let got = latest
            .get(&gsrn)
            .with_context(|| format!("no provisional settlement for {gsrn}"))?;
        // Diagnostics only when the total is wrong: a month re-issued after a late
        // correction (checked below) is expected with no grace period.
        if got.total_excl_vat != expected.known_totals.excl_vat.round_dp(6) {
            for l in &got.lines {
                eprintln!(
                    "got  {:?} {} {} {} {}",
                    l.component, l.description, l.quantity, l.unit_price, l.amount
                );
            }
            for l in &expected.lines {
                eprintln!(
                    "want {:?} {:?} {} {:?}",
                    l.component, l.source, l.quantity, l.amount
                );
            }
            eprintln!("issues {:?}", expected.issues);
            eprintln!("got version {} days {}", got.version, got.days_settled);
            let days: Vec<afregning_topology::records::DailyAggregate> =
                support::read_all(&env, &topics.name(topics::DAILY_AGGREGATES), &topics.wire)?;
            let readings: Vec<afregning_topology::records::Reading> =
                support::read_all(&env, &topics.name(topics::READINGS), &topics.wire)?;
            let enriched: Vec<afregning_topology::records::EnrichedReading> =
                support::read_all(&env, &topics.name(topics::ENRICHED_READINGS), &topics.wire)?;
            eprintln!(
                "readings of {gsrn}: {:?}",
                readings
                    .iter()
                    .filter(|r| r.gsrn == gsrn)
                    .map(|r| (r.period_start, r.registered_at))
                    .collect::<Vec<_>>()
            );
            eprintln!(
                "enriched of {gsrn}: {:?}",
                enriched
                    .iter()
                    .filter(|r| r.reading.gsrn == gsrn)
                    .map(|r| (r.reading.period_start, r.reading.registered_at))
                    .collect::<Vec<_>>()
            );
            eprintln!(
                "all readings {} enriched {} daily {}",
                readings.len(),
                enriched.len(),
                days.len()
            );
            for d in days.iter().filter(|d| d.gsrn == gsrn) {
                let truth_kwh = truth
                    .reading(mp.gsrn, d.local_date)
                    .map(|r| r.total_kwh())
                    .unwrap_or_default();
                eprintln!(
                    "day {} v{} {} kWh (truth {truth_kwh}) complete {}",
                    d.local_date, d.version, d.total_kwh, d.complete
                );
            }
        }
        assert_eq!(
            got.total_excl_vat,
            expected.known_totals.excl_vat.round_dp(6),
            "{gsrn}: provisional total"
        );
        assert_eq!(got.days_settled, 31, "{gsrn}");
        let issued = finals.get(&gsrn).cloned().unwrap_or_default();
        if expected.complete {
            complete += 1;
            // With no grace period a month is final as soon as it is complete;
            // a late correction then credits the statement and re-issues it.
            // Exactly one statement is in force: the last, a STATEMENT, and
            // every earlier statement is reversed by exactly one credit note.
            let mut issued = issued;
            issued.sort_by_key(|s| s.version);
            let s = issued.last().context("a statement")?;
            assert_eq!(s.kind, StatementKind::Statement, "{gsrn}");
            let statements = issued
                .iter()
                .filter(|s| s.kind == StatementKind::Statement)
                .count();
            let credits: Vec<_> = issued
                .iter()
                .filter(|s| s.kind == StatementKind::CreditNote)
                .collect();
            assert_eq!(
                statements,
                credits.len() + 1,
                "{gsrn}: one statement in force"
            );
            if statements > 1 {
                corrected_after_finality += 1;
            }
            for credit in &credits {
                let reversed = issued
                    .iter()
                    .find(|x| Some(&x.statement_id) == credit.corrects_statement_id.as_ref())
                    .context("the credited statement")?;
                assert_eq!(credit.total_incl_vat, -reversed.total_incl_vat, "{gsrn}");
            }
            let want = expected.invoice_totals.clone().context("complete")?;
            assert_eq!(
                (s.total_excl_vat, s.vat_amount, s.total_incl_vat),
                (want.excl_vat, want.vat, want.incl_vat),
                "{gsrn}: the invoice totals to the øre"
            );
            let mut got_lines: Vec<Decimal> = s
                .lines
                .iter()
                .filter(|l| l.component != afregning_topology::records::SettlementComponent::Vat)
                .map(|l| l.amount)
                .collect();
            let mut want_lines: Vec<Decimal> = expected
                .lines
                .iter()
                .map(|l| l.amount.unwrap_or(l.known_amount).round_dp(6))
                .collect();
            got_lines.sort();
            want_lines.sort();
            assert_eq!(got_lines, want_lines, "{gsrn}: every line's amount");
        } else {
            incomplete += 1;
            assert!(issued.is_empty(), "{gsrn}: incomplete, yet final");
        }
    }
    eprintln!(
        "{complete} statements in force equal the engine's ({corrected_after_finality} re-issued after a late correction); {incomplete} months incomplete"
    );
    assert!(complete >= 150, "most months are complete ({complete})");
    env.cleanup().await?;
    Ok(())
}

async fn publish_price_change(
    env: &TestEnv,
    catalogue: &Catalogue,
    codec: &Codec,
) -> anyhow::Result<()> {
    let start = local_day_bounds(price_change_from()).0;
    let end = local_day_bounds(first_day() + chrono::Months::new(1)).0;
    // Local days, not 24-hour spans: the 29th has 23 hours.
    let days = ((first_day() + chrono::Months::new(1)) - price_change_from()).num_days() as i32;
    let key = ChargePriceKey {
        owner_gln: ENERGINET.into(),
        charge_type: WireChargeType::Tariff,
        charge_code: SYSTEM_TARIFF.into(),
        period_start: start,
    };
    let value = WireChargePrice {
        owner_gln: ENERGINET.into(),
        charge_type: WireChargeType::Tariff,
        charge_code: SYSTEM_TARIFF.into(),
        resolution: WireResolution::P1d,
        period_start: start,
        period_end: end,
        points: (1..=days)
            .map(|position| WirePoint {
                position,
                price: new_system_tariff(),
            })
            .collect(),
        source_message_id: "price-change".into(),
    };
    let key_bytes = codec.encode_key(topics::CHARGE_PRICES, &key).await?;
    let value_bytes = codec.encode_value(topics::CHARGE_PRICES, &value).await?;
    let spec = topics::CHARGE_PRICES.spec(catalogue);
    let partition = afregning_topology::partitioner::partition_for_record(spec, &key, &value)?;
    let producer: rdkafka::producer::FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &env.bootstrap_servers)
        .create()?;
    producer
        .send(
            rdkafka::producer::FutureRecord::to(&spec.name)
                .partition(partition)
                .key(&key_bytes)
                .payload(&value_bytes),
            Duration::from_secs(10),
        )
        .await
        .map_err(|(e, _)| e)?;
    Ok(())
}

/// The month of one metering point computed directly from the ground truth,
/// with the mid-month price change applied.
fn expected_statement(
    truth: &GroundTruth,
    mp: &afregning_simulator::ground_truth::MeteringPointTruth,
    month: BillingMonth,
    products: &ProductCatalogue,
) -> anyhow::Result<MonthStatement> {
    let terms = afregning_processors::settle::core::product_terms(
        products,
        products.products.first().map(|p| p.id.as_str()),
        &mp.gsrn.to_string(),
        month,
    );
    let mut input = afregning_simulator::expected::month_input(truth, mp, month, terms);
    let change_from = local_day_bounds(price_change_from()).0;
    let changed = ChargeKey::new(SYSTEM_TARIFF, ENERGINET, ChargeType::Tariff);
    for charge in input.charges.iter_mut().filter(|c| c.key == changed) {
        for point in charge.prices.iter_mut().filter(|p| p.time >= change_from) {
            point.price = new_system_tariff();
        }
    }
    Ok(settle_month(&input)?)
}

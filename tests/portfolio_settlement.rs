//! Issue 16's settlement follows the portfolio, on the real broker and schema registry: a
//! simulated DataHub March 2026 goes through the connector and the four processors while the
//! portfolio's commands for two of its metering points go through the portfolio processor
//! (decision 0145; dated as they would have been sent, its tick makes each take effect),
//! whose events settle follows:
//!
//! - (a) one is ours until another supplier takes it over on 15 March (RSM-004): exactly one
//!   final statement, for 1–14 March, with the pure engine's amounts for those days only;
//! - (b) one became ours on 10 March by a change of supplier that is then rolled back
//!   (BRS-003 from the other side): the credit note equals exactly what was billed for the
//!   rolled-back period and nothing else is issued;
//! - (c) one has no portfolio events and is settled as before (master data's supply).

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use afregning_cim::gsrn::Gsrn;
use afregning_portfolio::{
    Command, CommandMeta, CommandRecord, CustomerKey, CustomerRef, Gln, MeteringPoint,
    ProcessDetails, ProcessId, ProcessKind, decide,
};
use afregning_processors::pipeline;
use afregning_processors::portfolio::inbox::send_command;
use afregning_processors::portfolio::{Portfolio, PortfolioConfig};
use afregning_processors::shared::Topics;
use afregning_settlement::calendar::local_midnight;
use afregning_settlement::{BillingMonth, Resolution, SupplyPeriod, Totals, settle_month};
use afregning_simulator::GroundTruth;
use afregning_simulator::ground_truth::MeteringPointTruth;
use afregning_testkit::TestEnv;
use afregning_topology::catalogue::TopicId;
use afregning_topology::records::{SettlementStatement, StatementKind};
use afregning_topology::{Catalogue, Codec, topics};
use anyhow::Context;
use chrono::NaiveDate;

/// Another supplier.
const OTHER: &str = "5790000000012";

fn march(day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 3, day).expect("date")
}

/// One metering point's portfolio commands, checked with the portfolio's own `decide` as they
/// are written (so the script cannot ask for what the processor would refuse).
struct Script {
    state: MeteringPoint,
    commands: Vec<CommandRecord>,
    events: usize,
    us: String,
}

impl Script {
    fn new(gsrn: Gsrn, us: &str) -> anyhow::Result<Self> {
        let gln = Gln::parse(us).context("our GLN")?;
        Ok(Self {
            state: MeteringPoint::new(gsrn, gln),
            commands: Vec::new(),
            events: 0,
            us: us.to_string(),
        })
    }

    fn run(&mut self, on: NaiveDate, command: Command) -> anyhow::Result<&mut Self> {
        let meta = CommandMeta {
            at: local_midnight(on) + chrono::Duration::hours(10),
            actor: "portfolio e2e".into(),
            why: "settlement follows the portfolio".into(),
            message_id: Some(format!("m-{}", self.events)),
        };
        let event = decide(&self.state, &meta, &command).map_err(|r| anyhow::anyhow!("{r}"))?;
        self.state = self.state.clone().apply(&event);
        self.events += 1;
        // The processor's tick makes a process take effect on its day; the rest is sent.
        if !matches!(command, Command::TakeEffect { .. }) {
            self.commands.push(CommandRecord {
                metering_point: self.state.gsrn,
                meta,
                command,
            });
        }
        Ok(self)
    }

    fn process(
        &self,
        id: &str,
        kind: ProcessKind,
        supplier: &str,
        day: NaiveDate,
    ) -> ProcessDetails {
        ProcessDetails {
            process: ProcessId(id.into()),
            kind,
            supplier: Gln::parse(supplier).expect("a GLN"),
            effective: day,
            customer: Some(CustomerRef {
                key: CustomerKey(format!("customer-{id}")),
                personal: None,
            }),
            corrects: None,
            balance_responsible: None,
            notified_reason: None,
        }
    }

    /// Our change of supplier (BRS-001) on `day`: requested, accepted, in effect.
    fn our_start(&mut self, id: &str, day: NaiveDate) -> anyhow::Result<&mut Self> {
        let asked = day - chrono::Duration::days(20);
        let us = self.us.clone();
        let details = self.process(id, ProcessKind::ChangeOfSupplier, &us, day);
        let id = ProcessId(id.into());
        self.run(asked, Command::Request(details))?
            .run(
                asked,
                Command::Accept {
                    process: id.clone(),
                    datahub_ref: None,
                },
            )?
            .run(
                day,
                Command::TakeEffect {
                    process: id,
                    disconnected_on: None,
                },
            )
    }

    /// A process of another supplier DataHub tells us of, in effect on `effect_on`.
    fn notified(
        &mut self,
        id: &str,
        kind: ProcessKind,
        day: NaiveDate,
        corrects: Option<&str>,
        told: NaiveDate,
    ) -> anyhow::Result<&mut Self> {
        let mut details = self.process(id, kind, OTHER, day);
        details.corrects = corrects.map(|c| ProcessId(c.into()));
        details.notified_reason = Some("E03".into());
        let id = ProcessId(id.into());
        self.run(told, Command::Notify(details))?.run(
            told.max(day),
            Command::TakeEffect {
                process: id,
                disconnected_on: None,
            },
        )
    }
}

/// Sends `commands` to the portfolio's commands topic.
async fn send(
    env: &TestEnv,
    catalogue: &Catalogue,
    commands: &[CommandRecord],
) -> anyhow::Result<()> {
    for c in commands {
        send_command(&env.bootstrap_servers, catalogue, c)
            .await
            .map_err(anyhow::Error::msg)?;
    }
    Ok(())
}

/// Waits until the portfolio processor has published `count` events.
async fn events_published(env: &TestEnv, topic: &str, count: usize) -> anyhow::Result<()> {
    let started = Instant::now();
    loop {
        let n = support::read_raw(env, topic)?.len();
        if n >= count {
            return Ok(());
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(60),
            "{n} of {count} portfolio events in 60 s"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// The pure engine's March of `mp` for the supplied days `[from, to)` only (`None`: the
/// simulator's master-data supply, as settle's fallback).
fn engine(
    truth: &GroundTruth,
    mp: &MeteringPointTruth,
    supplied: Option<(NaiveDate, Option<NaiveDate>)>,
) -> anyhow::Result<Totals> {
    let month = BillingMonth::new(2026, 3)?;
    let products = support::products();
    let terms = afregning_processors::settle::core::product_terms(
        &products,
        products.products.first().map(|p| p.id.as_str()),
        &mp.gsrn.to_string(),
        month,
    );
    let mut input = afregning_simulator::expected::month_input(truth, mp, month, terms);
    if let Some((from, to)) = supplied {
        let resolution: Resolution = input.supply[0].resolution;
        input.supply = vec![SupplyPeriod {
            from: local_midnight(from),
            to: to.map(local_midnight),
            resolution,
        }];
    }
    settle_month(&input)?
        .invoice_totals
        .context("the engine's month is complete")
}

/// Statements per metering point, in version order.
fn statements(
    env: &TestEnv,
    topics: &Topics,
) -> anyhow::Result<BTreeMap<String, Vec<SettlementStatement>>> {
    let all: Vec<SettlementStatement> = support::read_all(
        env,
        &topics.name(topics::SETTLEMENT_STATEMENTS),
        &topics.wire,
    )?;
    let mut by: BTreeMap<String, Vec<SettlementStatement>> = BTreeMap::new();
    for s in all {
        by.entry(s.gsrn.clone()).or_default().push(s);
    }
    for list in by.values_mut() {
        list.sort_by_key(|s| s.version);
    }
    Ok(by)
}

/// Waits until `done` holds and the statements topic has been still for five seconds.
async fn until(
    env: &TestEnv,
    topics: &Topics,
    what: &str,
    done: impl Fn(&BTreeMap<String, Vec<SettlementStatement>>) -> bool,
) -> anyhow::Result<BTreeMap<String, Vec<SettlementStatement>>> {
    let started = Instant::now();
    let mut still: Option<(Instant, usize)> = None;
    loop {
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(600),
            "{what}: not within 10 minutes"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = statements(env, topics)?;
        let count: usize = now.values().map(Vec::len).sum();
        if !done(&now) {
            still = None;
            continue;
        }
        match still {
            Some((since, seen)) if seen == count => {
                if since.elapsed() >= Duration::from_secs(5) {
                    return Ok(now);
                }
            }
            _ => still = Some((Instant::now(), count)),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn settlement_follows_the_portfolio_takeover_rollback_and_fallback() -> anyhow::Result<()> {
    afregning_testkit::init_logging();
    let env = TestEnv::start("portfolio-settle").await?;
    let catalogue = support::deployment(&env, &env.namespace, 2).await?;

    // 1. DataHub: March 2026 for three metering points, every day complete.
    let config = support::complete_month(march(1), 3);
    let work = tempfile::tempdir()?;
    let truth = support::drain_datahub(
        &env,
        &catalogue,
        config,
        work.path(),
        (march(1), march(1) + chrono::Months::new(1)),
    )
    .await?;
    let (taken, rolled, plain) = match truth.metering_points.as_slice() {
        [a, b, c, ..] => (a, b, c),
        _ => anyhow::bail!("three metering points"),
    };
    anyhow::ensure!(
        [taken, rolled, plain]
            .iter()
            .all(|m| m.supply_start <= local_midnight(march(1))),
        "the scenario's supply covers March"
    );

    // 2. The portfolio: (a) ours since February, taken over by another supplier from
    //    15 March; (b) ours from 10 March by a change of supplier.
    let portfolio_topic = catalogue
        .spec(TopicId::PortfolioEvents)
        .context("portfolio topic")?
        .name
        .clone();
    let mut a = Script::new(taken.gsrn, &truth.supplier_gln)?;
    a.our_start("a-cos", NaiveDate::from_ymd_opt(2026, 2, 1).expect("date"))?
        .notified(
            "a-takeover",
            ProcessKind::ChangeOfSupplier,
            march(15),
            None,
            march(9),
        )?;
    let mut b = Script::new(rolled.gsrn, &truth.supplier_gln)?;
    b.our_start("b-cos", march(10))?;
    send(&env, &catalogue, &a.commands).await?;
    send(&env, &catalogue, &b.commands).await?;

    // 3. The portfolio processor decides them (its events on the topic before settle starts,
    //    so no statement is issued on a supply the portfolio has not told yet), then the
    //    four processors, kept running.
    let codec = Codec::new(catalogue.clone(), &env.registry_url);
    let topics = pipeline::topics(catalogue.clone(), &codec).await?;
    let settings = support::pipeline_settings(
        &env,
        &env.namespace,
        &work.path().join("state"),
        &truth.supplier_gln,
    );
    let (stop_portfolio, portfolio_stopped) = tokio::sync::oneshot::channel::<()>();
    let portfolio = tokio::spawn(pipeline::run_runtime(
        Portfolio::new(
            topics.clone(),
            PortfolioConfig {
                us: Gln::parse(&truth.supplier_gln).context("our GLN")?,
                tick_interval: Duration::from_millis(300),
            },
        ),
        settings.runtime.clone(),
        pipeline::Watch::default(),
        async move {
            let _ = portfolio_stopped.await;
        },
    ));
    events_published(&env, &portfolio_topic, a.events + b.events).await?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(pipeline::run_all(topics.clone(), settings, async move {
        let _ = stopped.await;
    }));
    let gsrn = |m: &MeteringPointTruth| m.gsrn.to_string();
    let first = until(&env, &topics, "a statement for each", |by| {
        [taken, rolled, plain]
            .iter()
            .all(|m| by.contains_key(&gsrn(m)))
    })
    .await?;

    // (a) exactly one final statement, for the supplied days 1–14 March.
    let want_a = engine(&truth, taken, Some((march(1), Some(march(15)))))?;
    let full_a = engine(&truth, taken, None)?;
    let issued_a = &first[&gsrn(taken)];
    assert_eq!(issued_a.len(), 1, "(a) exactly one statement: {issued_a:?}");
    assert_eq!(issued_a[0].kind, StatementKind::Statement);
    assert_eq!(issued_a[0].total_excl_vat, want_a.excl_vat, "(a) excl. VAT");
    assert_eq!(issued_a[0].vat_amount, want_a.vat, "(a) VAT");
    assert_eq!(issued_a[0].total_incl_vat, want_a.incl_vat, "(a) incl. VAT");
    assert!(
        want_a.incl_vat < full_a.incl_vat,
        "(a) fewer days than the month"
    );
    // (c) no portfolio events: the master data's supply, as before.
    let want_c = engine(&truth, plain, None)?;
    let issued_c = &first[&gsrn(plain)];
    assert_eq!(issued_c.len(), 1, "(c) {issued_c:?}");
    assert_eq!(issued_c[0].total_incl_vat, want_c.incl_vat, "(c) incl. VAT");
    // (b) billed from 10 March.
    let billed_b = engine(&truth, rolled, Some((march(10), None)))?;
    let issued_b = &first[&gsrn(rolled)];
    assert_eq!(issued_b.len(), 1, "(b) {issued_b:?}");
    assert_eq!(issued_b[0].total_incl_vat, billed_b.incl_vat, "(b) billed");

    // 4. (b) rolled back: BRS-003 from the other side on 20 March.
    let before = b.commands.len();
    b.notified(
        "b-brs003",
        ProcessKind::IncorrectChangeOfSupplier,
        march(10),
        Some("b-cos"),
        march(20),
    )?;
    send(&env, &catalogue, &b.commands[before..]).await?;
    let after = until(&env, &topics, "the rollback credited", |by| {
        by.get(&gsrn(rolled)).is_some_and(|l| l.len() >= 2)
    })
    .await?;
    let _ = stop.send(());
    running.await??;
    let _ = stop_portfolio.send(());
    portfolio.await??;
    let issued_b = &after[&gsrn(rolled)];
    let kinds: Vec<StatementKind> = issued_b.iter().map(|s| s.kind).collect();
    assert_eq!(
        kinds,
        [StatementKind::Statement, StatementKind::CreditNote],
        "(b)"
    );
    let credit = &issued_b[1];
    assert_eq!(
        credit.corrects_statement_id.as_deref(),
        Some(issued_b[0].statement_id.as_str())
    );
    assert_eq!(
        credit.total_excl_vat, -billed_b.excl_vat,
        "(b) credited excl. VAT"
    );
    assert_eq!(credit.vat_amount, -billed_b.vat, "(b) credited VAT");
    assert_eq!(
        credit.total_incl_vat, -billed_b.incl_vat,
        "(b) credited incl. VAT"
    );
    // Nothing else changed.
    assert_eq!(after[&gsrn(taken)], first[&gsrn(taken)], "(a) untouched");
    assert_eq!(after[&gsrn(plain)], first[&gsrn(plain)], "(c) untouched");
    eprintln!(
        "takeover: one statement of {} DKK for 1–14 March (full month {}); rollback: {} DKK billed, {} credited; fallback: {}",
        want_a.incl_vat, full_a.incl_vat, billed_b.incl_vat, credit.total_incl_vat, want_c.incl_vat
    );
    env.cleanup().await?;
    Ok(())
}

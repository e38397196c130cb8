//! The demo's stages, in data-flow order, and the summary they add up to.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use afregning_connect::Connector;
use afregning_connect::config::{
    BackoffConfig, ConnectConfig, KafkaConfig, OutboundConfig, QueueConfig, QueuesConfig, Secret,
};
use afregning_simulator::{EventKind, FaultConfig, RunningSimulator, Simulator, SimulatorConfig};
use afregning_topology::admin::Admin;
use afregning_topology::{Catalogue, TopologySettings};
use anyhow::{Context, bail};
use chrono::Datelike;
use indicatif::ProgressBar;

use super::{Args, counts, progress};

/// What the run is: its arguments, its prefix and where it keeps files.
pub struct Plan {
    /// The command line.
    pub args: Args,
    /// Topic (and consumer group) prefix of this run.
    pub prefix: String,
    /// Processor state, the inbound log.
    pub work_dir: PathBuf,
    /// Longest wait for one stage.
    pub stage_timeout: Duration,
}

impl Plan {
    fn settings(&self) -> TopologySettings {
        TopologySettings {
            partitions: self.args.partitions,
            ..TopologySettings::with_prefix(self.prefix.clone())
        }
    }
}

/// One screen: what each stage did, and anything that does not add up.
#[derive(Default)]
pub struct Summary {
    sections: Vec<(String, Vec<String>)>,
    /// Checks that failed; the demo exits 1 when any did.
    pub problems: Vec<String>,
}

impl Summary {
    fn section(&mut self, title: &str, lines: Vec<String>) {
        self.sections.push((title.to_string(), lines));
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "\n== afregning demo: summary ==")?;
        for (title, lines) in &self.sections {
            writeln!(f, "{title}")?;
            for line in lines {
                writeln!(f, "  {line}")?;
            }
        }
        if self.problems.is_empty() {
            writeln!(f, "checks: all passed")
        } else {
            writeln!(f, "checks: {} FAILED", self.problems.len())?;
            for problem in &self.problems {
                writeln!(f, "  - {problem}")?;
            }
            Ok(())
        }
    }
}

/// Runs every stage in order and collects the summary.
pub async fn run_all(plan: &Plan) -> anyhow::Result<Summary> {
    let mut summary = Summary::default();
    let catalogue = Catalogue::new(plan.settings()).context("the topology settings")?;

    let bar = progress::stage(1, "topology: create topics and register schemas");
    let admin = Admin::connect(
        catalogue.clone(),
        &plan.args.stack.bootstrap_servers,
        &plan.args.stack.schema_registry_url,
    )
    .context("connecting to the broker and the schema registry")?;
    let report = admin.apply().await.context("applying the topology")?;
    if !report.problems.is_empty() {
        bail!("the topology could not be applied:\n{}", report.render());
    }
    let lines = vec![format!(
        "{} topics created, {} schemas registered (prefix {})",
        report.created_topics.len(),
        report.registered_subjects.len(),
        plan.prefix
    )];
    progress::done(&bar, &lines);
    summary.section("topology", lines);
    drop(admin);

    let bar = progress::stage(2, "DataHub simulator: generate the scenario");
    bar.set_message("generating metering points, readings, charges and messages");
    let (simulator, served) = start_simulator(plan).await?;
    let truth = simulator.handle().ground_truth();
    let lines = vec![
        format!(
            "{} metering points, {} days, {} day-series, {} charges, {} charge links, {} messages queued",
            truth.metering_points.len(),
            truth.days,
            truth.readings.len(),
            truth.charges.len(),
            truth.links.len(),
            truth.messages.len()
        ),
        served,
    ];
    progress::done(&bar, &lines);
    summary.section("simulator", lines);

    let bar = progress::stage(3, "connect: drain DataHub's queues into the raw topics");
    let mut connect_lines = run_connector(plan, &catalogue, &simulator, &mut summary, &bar).await?;
    bar.set_message("publishing day-ahead spot prices");
    connect_lines.push(publish_spot_prices(plan, &catalogue, &simulator).await?);
    progress::done(&bar, &connect_lines);
    summary.section("connect", connect_lines);
    simulator.shutdown().await;

    let bar = progress::stage(4, "processors: validate, enrich, aggregate, settle");
    let processor_lines = super::processors::run(
        plan,
        &catalogue,
        &truth.supplier_gln,
        &mut summary.problems,
        &bar,
    )
    .await?;
    progress::done(&bar, &processor_lines);
    summary.section("processors", processor_lines);

    let bar = progress::stage(5, "sinks: PostgreSQL tables and the ERP topic");
    bar.set_message("writing until caught up");
    let sink_lines = run_sinks(plan).await?;
    progress::done(&bar, &sink_lines);
    summary.section("sinks", sink_lines);

    let bar = progress::stage(6, "summary: read every topic to its end");
    let counts = {
        let bootstrap = plan.args.stack.bootstrap_servers.clone();
        let catalogue = catalogue.clone();
        let timeout = plan.stage_timeout;
        let bar = bar.clone();
        tokio::task::spawn_blocking(move || {
            counts::observed_counts(&bootstrap, &catalogue, timeout, &bar)
        })
        .await
        .context("joining the topic reader")??
    };
    bar.finish_and_clear();
    check_counts(&counts, covers_a_whole_month(&plan.args), &mut summary);
    summary.section(
        "records per topic (read from each partition's beginning to its end)",
        counts
            .into_iter()
            .filter(|(_, n)| *n > 0)
            .map(|(topic, n)| format!("{topic:<60} {n:>9}"))
            .collect(),
    );
    Ok(summary)
}

/// Whether the scenario's days include a whole calendar (billing) month.
fn covers_a_whole_month(args: &Args) -> bool {
    let last = args.first_day + chrono::Days::new(u64::from(args.days));
    args.first_day
        .iter_days()
        .take_while(|day| *day < last)
        .any(|day| {
            day.day() == 1
                && day
                    .checked_add_months(chrono::Months::new(1))
                    .is_some_and(|next| next <= last)
        })
}

/// A scenario with a whole billing month must get statements to the ERP
/// topic (months with missing days are not final, but not every month).
fn check_counts(counts: &[(String, u64)], whole_month: bool, summary: &mut Summary) {
    let erp = counts
        .iter()
        .filter(|(topic, _)| topic.ends_with("erp.statements.v1"))
        .map(|(_, n)| *n)
        .sum::<u64>();
    if erp == 0 && whole_month {
        summary.problems.push(
            "a whole billing month was simulated but no statement reached the ERP topic"
                .to_string(),
        );
    }
}

/// Generates the scenario and serves it; returns the server and a line saying where.
async fn start_simulator(plan: &Plan) -> anyhow::Result<(RunningSimulator, String)> {
    let mut config = SimulatorConfig::default();
    config.scenario.metering_points = plan.args.metering_points;
    config.scenario.first_day = plan.args.first_day;
    config.scenario.days = plan.args.days;
    config.faults = if plan.args.fault_rate > 0.0 {
        FaultConfig::every_fault(plan.args.fault_rate)
    } else {
        FaultConfig::none()
    };
    config.auth.client_id = "afregning-demo".into();
    config.auth.client_secret = "demo-secret".into();
    let started = Instant::now();
    let simulator = tokio::task::spawn_blocking(move || Simulator::new(config))
        .await
        .context("joining the scenario generator")?
        .context("generating the scenario")?;
    let running = simulator
        .serve("127.0.0.1:0".parse()?)
        .await
        .context("serving the simulator")?;
    let line = format!(
        "serving DataHub's B2B API on {} (scenario generated in {:.1} s)",
        running.url,
        started.elapsed().as_secs_f64()
    );
    Ok((running, line))
}

async fn run_connector(
    plan: &Plan,
    catalogue: &Catalogue,
    simulator: &RunningSimulator,
    summary: &mut Summary,
    bar: &ProgressBar,
) -> anyhow::Result<Vec<String>> {
    let mut config = ConnectConfig::default();
    config.datahub.base_url = simulator.url.clone();
    config.datahub.token_url = simulator.token_url();
    config.datahub.client_id = "afregning-demo".into();
    config.datahub.client_secret = Secret::new("demo-secret");
    config.datahub.request_timeout_ms = 10_000;
    config.queues = QueuesConfig::all(QueueConfig::every(20, 200));
    config.retry = BackoffConfig {
        initial_ms: 50,
        max_ms: 1_000,
        multiplier: 2.0,
    };
    config.requests_per_second = 500;
    config.kafka = KafkaConfig {
        bootstrap_servers: plan.args.stack.bootstrap_servers.clone(),
        schema_registry_url: plan.args.stack.schema_registry_url.clone(),
        topology: catalogue.settings().clone(),
        ..KafkaConfig::default()
    };
    config.inbound_log.dir = plan.work_dir.join("inbound-log");
    config.outbound = OutboundConfig {
        enabled: false,
        ..OutboundConfig::default()
    };
    config.admin_listen = "127.0.0.1:0".parse()?;
    let started = Instant::now();
    let connector = Connector::new(config)
        .start()
        .await
        .context("starting the connector")?;
    let handle = simulator.handle().clone();
    let total = handle.ground_truth().messages.len();
    progress::count_to(bar, total as u64, "messages dequeued");
    while !handle.is_empty() {
        if started.elapsed() > plan.stage_timeout {
            connector.shutdown().await;
            bail!(
                "DataHub's queues were not empty after {:?}: {:?}",
                plan.stage_timeout,
                handle.queue_depths()
            );
        }
        let dequeued = count_events(&handle.events(), |k| {
            matches!(k, EventKind::Dequeued { .. })
        });
        bar.set_position(dequeued as u64);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    connector.shutdown().await;
    let events = handle.events();
    let dequeued = count_events(&events, |k| matches!(k, EventKind::Dequeued { .. }));
    let peeked = count_events(&events, |k| matches!(k, EventKind::Peeked { .. }));
    let mut faults: BTreeMap<String, usize> = BTreeMap::new();
    for event in &events {
        if let EventKind::Fault { fault, .. } = &event.kind {
            *faults.entry(format!("{fault:?}")).or_default() += 1;
        }
    }
    if dequeued < total {
        summary.problems.push(format!(
            "the simulator queued {total} messages but only {dequeued} were dequeued"
        ));
    }
    let faults = if faults.is_empty() {
        "none".to_string()
    } else {
        faults
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    Ok(vec![
        format!(
            "{dequeued} messages dequeued after {peeked} peeks in {:.1} s, each only after the broker acknowledged it",
            started.elapsed().as_secs_f64()
        ),
        format!("faults injected and survived: {faults}"),
    ])
}

/// Day-ahead prices of the scenario's days from the simulator's Energi Data
/// Service endpoint onto the spot-price topic, as `afregning connect
/// spot-prices` does.
async fn publish_spot_prices(
    plan: &Plan,
    catalogue: &Catalogue,
    simulator: &RunningSimulator,
) -> anyhow::Result<String> {
    let config = afregning_connect::spot_prices::SpotPricesConfig {
        url: simulator.spot_prices_url(),
        start: Some(plan.args.first_day),
        end: Some(plan.args.first_day + chrono::Days::new(u64::from(plan.args.days))),
        once: true,
        kafka: KafkaConfig {
            bootstrap_servers: plan.args.stack.bootstrap_servers.clone(),
            schema_registry_url: plan.args.stack.schema_registry_url.clone(),
            topology: catalogue.settings().clone(),
            ..KafkaConfig::default()
        },
        admin_listen: "127.0.0.1:0".parse()?,
        ..Default::default()
    };
    let (_stop, stop_rx) = tokio::sync::watch::channel(false);
    tokio::time::timeout(
        plan.stage_timeout,
        afregning_connect::spot_prices::run(config, stop_rx),
    )
    .await
    .context("publishing spot prices timed out")?
    .context("publishing spot prices")?;
    Ok(format!(
        "day-ahead spot prices of DK1 and DK2 for {} days published from the simulator's Energi Data Service endpoint",
        plan.args.days
    ))
}

fn count_events(events: &[afregning_simulator::Event], keep: impl Fn(&EventKind) -> bool) -> usize {
    events.iter().filter(|e| keep(&e.kind)).count()
}

async fn run_sinks(plan: &Plan) -> anyhow::Result<Vec<String>> {
    let (database_url, schema) = demo_database(plan).await?;
    let config = afregning_sinks::config::SinkConfig {
        bootstrap_servers: plan.args.stack.bootstrap_servers.clone(),
        schema_registry_url: plan.args.stack.schema_registry_url.clone(),
        database_url,
        topic_prefix: plan.prefix.clone(),
        partitions: plan.args.partitions,
        ..Default::default()
    };
    let summary = afregning_sinks::run_until_caught_up(&config)
        .await
        .context("running the sinks until caught up")?;
    let mut lines: Vec<String> = summary
        .to_string()
        .lines()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect();
    lines.push(format!("tables in the PostgreSQL schema {schema}"));
    Ok(lines)
}

/// A PostgreSQL schema of its own for this run (`search_path` in the URL), so
/// that repeated demos never mix their rows. Returns the URL and the schema.
async fn demo_database(plan: &Plan) -> anyhow::Result<(String, String)> {
    let schema: String = plan
        .prefix
        .trim_end_matches('.')
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    let base = &plan.args.stack.database_url;
    let pool = sqlx::PgPool::connect(base)
        .await
        .with_context(|| format!("connecting to PostgreSQL at {base}"))?;
    sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\""))
        .execute(&pool)
        .await
        .context("creating the demo's database schema")?;
    pool.close().await;
    let separator = if base.contains('?') { '&' } else { '?' };
    Ok((
        format!("{base}{separator}options=-c%20search_path%3D{schema}"),
        schema,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Wrapper {
        #[command(flatten)]
        args: Args,
    }

    fn args(first_day: &str, days: &str) -> Args {
        Wrapper::parse_from(["demo", "--first-day", first_day, "--days", days]).args
    }

    #[test]
    fn a_scenario_covers_a_whole_month_only_from_its_first_to_its_last_day() {
        assert!(covers_a_whole_month(&args("2026-03-01", "31")));
        assert!(covers_a_whole_month(&args("2026-02-01", "28")));
        assert!(covers_a_whole_month(&args("2026-01-20", "40")));
        assert!(!covers_a_whole_month(&args("2026-03-01", "30")));
        assert!(!covers_a_whole_month(&args("2026-03-28", "3")));
        assert!(!covers_a_whole_month(&args("2026-03-02", "31")));
    }
}

//! The day scenario (issue 13): a supplier's daily delivery from DataHub into PostgreSQL on
//! the live path, with a correction storm while it runs.
//!
//! 1. **Setup** (not timed): the topology under a fresh prefix, the four processors and the
//!    database sink as child processes of this binary (so `/proc/<pid>` gives each one's CPU
//!    and peak RSS), a tail of the provisional-settlements topic, the simulator generating the
//!    day (every metering point PT15M, DataHub-sized bundles, master data, charges and links
//!    on their queues) and the day-ahead spot prices through the connector's spot-price
//!    poller.
//! 2. **The day** (timed): the real connector polls all four queues of the simulator, from
//!    its first peek until the sink has every value in `metering_data` and every metering
//!    point's provisional lines in `settlement_version`/`settlement_line`. A share of the
//!    day's series (`--correction-share`, 5 %) is corrected by later bundles that become
//!    visible `--storm-after-ms` after the simulator started: the storm arrives while the
//!    day still flows.
//! 3. **Figures**: wall time from the first peek to the sink's last commit (its position
//!    row's `updated_at`, written in the same transaction as the data), values/s and
//!    series/s per stage, latency from a series' acknowledgement on the raw topic to its
//!    metering point's first provisional version (p50/p99, the record's CreateTime), the time
//!    until every corrected series has a provisional version with the corrected total, peak
//!    RSS and CPU per process, the schema's size.
//! 4. **Checks**: per metering point the values and their sum in `metering_data` equal the
//!    simulator's ground truth (after corrections), and the latest provisional total equals
//!    the pure engine's `settle_month` on the ground truth; a mismatch fails the command.

mod database;
pub mod sink;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use afregning_connect::config::{
    BackoffConfig, ConnectConfig, KafkaConfig, OutboundConfig, QueueConfig, QueuesConfig, Secret,
};
use afregning_connect::{Connector, ConnectorEvent, Dequeued};
use afregning_processors::pipeline;
use afregning_settlement::BillingMonth;
use afregning_simulator::{
    FaultConfig, RunningSimulator, ScenarioConfig, Simulator, SimulatorConfig,
};
use afregning_testkit::TestEnv;
use afregning_topology::admin::Admin;
use afregning_topology::{Catalogue, Codec, TopologySettings, topics};
use anyhow::{Context, bail};
use chrono::{Datelike, NaiveDate};
use rust_decimal::Decimal;

use crate::figures::{mib, rate, secs, thousands};
use crate::month::child::{ChildArgs, Stage};
use crate::month::fleet::Fleet;
use crate::month::procfs::{self, ProcSample};
use crate::month::tail::Tail;
use crate::stats::{ms, summarize};

use self::sink::{SinkArgs, SinkChild};

/// Flags of the `day` scenario. Every count has an upper bound and `--max-seconds` bounds
/// the timed part.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Metering points, all PT15M: one RSM-012 series (96 values; 92/100 on DST days) each.
    #[arg(long, default_value_t = 80_000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub metering_points: u32,
    /// The local day delivered, `YYYY-MM-DD`.
    #[arg(long, default_value = "2026-03-10")]
    pub day: NaiveDate,
    /// Share of the day's series corrected by a later series (the storm).
    #[arg(long, default_value_t = 0.05)]
    pub correction_share: f64,
    /// When the corrections become visible on DataHub's queue, ms after the simulator starts.
    #[arg(long, default_value_t = 20_000, value_parser = clap::value_parser!(u64).range(0..=600_000))]
    pub storm_after_ms: u64,
    /// Partitions of every topic (= tasks per processor).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=24))]
    pub partitions: u32,
    /// Series per RSM-012 bundle (DataHub bundles up to 2,000).
    #[arg(long, default_value_t = 2_000, value_parser = clap::value_parser!(u32).range(1..=2_000))]
    pub bundle_series: u32,
    /// The connector's request-rate limit to DataHub.
    #[arg(long, default_value_t = 1_000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub requests_per_second: u32,
    /// The processors' stall timeout, ms (a safety net, docs/processors-runtime.md).
    #[arg(long, default_value_t = 5_000, value_parser = clap::value_parser!(u64).range(200..=60_000))]
    pub stall_timeout_ms: u64,
    /// State-store memory budget per processor process, MiB.
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u64).range(16..=8_192))]
    pub state_memory_mb: u64,
    /// Longest the timed part may take, in seconds.
    #[arg(long, default_value_t = 1_800, value_parser = clap::value_parser!(u64).range(30..=7_200))]
    pub max_seconds: u64,
    /// Scenario seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Whether the sink copies new series straight into their partition (`true`) or merges
    /// every metering row through its staging table (`false`): the sink's
    /// `metering_direct_copy`, default the sink's default; to compare the two in one session.
    #[arg(long, action = clap::ArgAction::Set, default_value_t = afregning_sinks::config::SinkConfig::default().metering_direct_copy)]
    pub sink_direct_copy: bool,
    /// The sink's writer lanes (`writers`), default the sink's default; to compare lane
    /// counts in one session.
    #[arg(long, default_value_t = afregning_sinks::config::SinkConfig::default().writers, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub sink_writers: u32,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn simulator_config(args: &Args) -> anyhow::Result<SimulatorConfig> {
    if !(0.0..=1.0).contains(&args.correction_share) {
        bail!("--correction-share must be between 0 and 1");
    }
    Ok(SimulatorConfig {
        scenario: ScenarioConfig {
            seed: args.seed,
            metering_points: args.metering_points,
            first_day: args.day,
            days: 1,
            pt1h_share: 0.0,
            correction_share: args.correction_share,
            estimated_share: 0.0,
            missing_share: 0.0,
            late_share: 0.0,
            bundle_series: args.bundle_series,
            day_release_ms: 0,
            // Corrections become visible after the last day plus twice this (the late days,
            // of which there are none, take the first).
            late_release_ms: args.storm_after_ms / 2,
            aggregations: false,
            master_data: true,
            ..ScenarioConfig::default()
        },
        faults: FaultConfig::none(),
        ..SimulatorConfig::default()
    })
}

/// The connector for `sim`: every queue polled, no outbound.
fn connector_config(args: &Args, sim: &RunningSimulator, kafka: KafkaConfig) -> ConnectConfig {
    let mut config = ConnectConfig::default();
    config.datahub.base_url = sim.url.clone();
    config.datahub.token_url = sim.token_url();
    config.datahub.client_id = "afregning-demo".into();
    config.datahub.client_secret = Secret::new("demo-secret");
    config.queues = QueuesConfig::all(QueueConfig::every(20, 200));
    config.retry = BackoffConfig {
        initial_ms: 50,
        max_ms: 1_000,
        multiplier: 2.0,
    };
    config.requests_per_second = args.requests_per_second;
    config.outbound = OutboundConfig {
        enabled: false,
        ..OutboundConfig::default()
    };
    config.admin_listen = ([127, 0, 0, 1], 0).into();
    config.kafka = kafka;
    config
}

/// What the connector did, from its events (wall clock in ms since the epoch).
#[derive(Debug, Default)]
struct ConnectorLog {
    /// MessageId → when its last record was acknowledged.
    acked_ms: HashMap<String, i64>,
    /// Peek starts and dequeue answers, ms since the epoch.
    first_peek_ms: Option<i64>,
    last_dequeue_ms: Option<i64>,
    dequeued: usize,
    stopped: Vec<String>,
}

/// Per message of the Timeseries queue: its series and values.
type Volume = HashMap<String, (u64, u64)>;

/// Runs the scenario and prints its figures; fails when a check fails.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let n = u64::from(args.metering_points);
    let billing = BillingMonth::new(args.day.year(), args.day.month())?;
    println!(
        "day: {} metering points (PT15M) on {}, {} % corrected {:.1} s after the simulator starts, {} series per bundle, {} partitions, seed {}; sink: {} writer lanes, direct COPY {}",
        args.metering_points,
        args.day,
        args.correction_share * 100.0,
        args.storm_after_ms as f64 / 1000.0,
        args.bundle_series,
        args.partitions,
        args.seed,
        args.sink_writers,
        args.sink_direct_copy
    );

    // 1. Setup.
    let env = TestEnv::start("load_day")
        .await
        .context("starting the broker, database and registry (afregning-testkit)")?;
    let settings = TopologySettings {
        partitions: args.partitions,
        ..TopologySettings::with_prefix(env.namespace.clone())
    };
    let catalogue = Catalogue::new(settings.clone())?;
    let admin = Admin::connect(catalogue.clone(), &env.bootstrap_servers, &env.registry_url)?;
    let report = admin.apply().await?;
    if !report.problems.is_empty() {
        bail!("topology apply: {}", report.render());
    }
    drop(admin);
    let sim_config = simulator_config(&args)?;
    let work = tempfile::Builder::new()
        .prefix("afregning-load-day-")
        .tempdir()
        .context("creating the work directory")?;
    let exe = std::env::current_exe().context("this binary's path")?;
    let ticks = procfs::clock_ticks();
    let setup_deadline = Instant::now() + Duration::from_secs(300);
    let template = ChildArgs {
        which: Stage::Validate,
        bootstrap_servers: env.bootstrap_servers.clone(),
        registry_url: env.registry_url.clone(),
        prefix: env.namespace.clone(),
        partitions: args.partitions,
        state_dir: work.path().to_path_buf(),
        supplier_gln: sim_config.scenario.supplier_gln.clone(),
        stall_timeout_ms: args.stall_timeout_ms,
        state_memory_mb: args.state_memory_mb as usize,
        processing_threads: 0,
        kafka: Vec::new(),
    };
    let mut fleet = Fleet::start(&exe, work.path(), &template, ticks).await?;
    let mut sink = SinkChild::start(
        &exe,
        work.path(),
        &SinkArgs {
            bootstrap_servers: env.bootstrap_servers.clone(),
            registry_url: env.registry_url.clone(),
            database_url: env.database_url.clone(),
            prefix: env.namespace.clone(),
            partitions: args.partitions,
            direct_copy: args.sink_direct_copy,
            writers: args.sink_writers,
        },
        ticks,
    )?;
    fleet
        .wait_caught_up(Duration::from_secs(1), setup_deadline)
        .await
        .context("starting the processors")?;
    let pool = env.pg_pool().await?;
    wait_for_tables(&pool, &mut sink, setup_deadline).await?;
    let codec = Codec::new(catalogue.clone(), &env.registry_url);
    let topics_handle = pipeline::topics(catalogue.clone(), &codec).await?;
    let tail = Tail::start(
        &env.bootstrap_servers,
        &env.group("load-day-tail"),
        &topics_handle.name(topics::PROVISIONAL_SETTLEMENTS),
        topics_handle.wire.clone(),
    )?;

    // The pure engine's totals, before the simulator's clock starts (so the storm still
    // arrives while the day flows) and out of the timed part (in this process they would
    // take CPU from the pipeline), from the same seed's scenario; only the totals are kept
    // (a month's statement with its details is ≈ 0.5 MB: at 80,000 metering points they
    // ran this process out of memory).
    println!(
        "computing the pure engine's totals for {n} metering points (not timed; about 2 ms each)…"
    );
    let engine_started = Instant::now();
    let engine = {
        let config = sim_config.clone();
        tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
            let scenario =
                afregning_simulator::scenario::generate(&config.scenario, &config.faults)?;
            crate::month::engine_totals(&scenario.truth, billing)
        })
        .await
        .context("joining the engine's totals")??
    };
    println!(
        "the engine's totals computed in {:.1} s",
        engine_started.elapsed().as_secs_f64()
    );
    let generated = Instant::now();
    let simulator = tokio::task::spawn_blocking(move || Simulator::new(sim_config))
        .await
        .context("joining the scenario generation")?
        .context("generating the scenario")?;
    let sim_started = simulator.handle().started_at();
    let sim = simulator
        .serve("127.0.0.1:0".parse()?)
        .await
        .context("serving the simulator")?;
    let truth = sim.handle().ground_truth();
    let mut volume: Volume = HashMap::new();
    let mut original_of: BTreeMap<String, String> = BTreeMap::new();
    let mut corrected: BTreeSet<String> = BTreeSet::new();
    for r in &truth.readings {
        let gsrn = r.gsrn.to_string();
        for id in &r.message_ids {
            let v = volume.entry(id.clone()).or_default();
            v.0 += 1;
            v.1 += r.points.len() as u64;
        }
        if let Some(first) = r.message_ids.first() {
            original_of.insert(gsrn.clone(), first.clone());
        }
        if r.versions > 1 {
            corrected.insert(gsrn);
        }
    }
    let day_values: u64 = truth.readings.iter().map(|r| r.points.len() as u64).sum();
    let sent_series: u64 = volume.values().map(|v| v.0).sum();
    let sent_values: u64 = volume.values().map(|v| v.1).sum();
    println!(
        "scenario generated in {:.1} s: {} series ({} values) of the day, {} corrected; {} series ({} values) sent in {} Timeseries bundles, {} messages in all",
        generated.elapsed().as_secs_f64(),
        thousands(truth.readings.len() as f64),
        thousands(day_values as f64),
        thousands(corrected.len() as f64),
        thousands(sent_series as f64),
        thousands(sent_values as f64),
        volume.len(),
        truth.messages.len()
    );
    if truth.readings.len() as u64 != n {
        bail!(
            "the scenario has {} series, expected {n}",
            truth.readings.len()
        );
    }
    let kafka = KafkaConfig {
        bootstrap_servers: env.bootstrap_servers.clone(),
        schema_registry_url: env.registry_url.clone(),
        topology: settings.clone(),
        ..KafkaConfig::default()
    };
    publish_spot_prices(&sim, args.day, kafka.clone()).await?;
    println!("the day's spot prices published through the connector's spot-price poller");
    let want: BTreeMap<&str, Decimal> = engine.iter().map(|(g, t)| (g.as_str(), *t)).collect();

    // 2. The day.
    let inbound = tempfile::Builder::new()
        .prefix("afregning-load-day-inbound-")
        .tempdir()
        .context("creating the inbound-log directory")?;
    let mut config = connector_config(&args, &sim, kafka);
    config.inbound_log.dir = inbound.path().to_path_buf();
    let log: Arc<Mutex<ConnectorLog>> = Arc::default();
    let observer_log = Arc::clone(&log);
    let connector = Connector::new(config)
        .with_observer(Arc::new(move |e| {
            let now = now_ms();
            let mut l = observer_log.lock().unwrap_or_else(|e| e.into_inner());
            match e {
                ConnectorEvent::Acknowledged { message_id, .. } => {
                    l.acked_ms.insert(message_id, now);
                }
                ConnectorEvent::Dequeued { outcome, cycle, .. } => {
                    if outcome == Dequeued::Done {
                        l.dequeued += 1;
                    }
                    let started = now - cycle.as_millis() as i64;
                    l.first_peek_ms = Some(l.first_peek_ms.map_or(started, |f| f.min(started)));
                    l.last_dequeue_ms = Some(now);
                }
                ConnectorEvent::QueueStopped { queue, reason, .. } => {
                    l.stopped.push(format!("{queue:?}: {reason}"));
                }
            }
        }))
        .start()
        .await
        .context("starting the connector")?;
    let after_setup = fleet.sample();
    let sink_before = sink.sample();
    let me = std::process::id();
    let parent_before = procfs::sample(me, ticks).unwrap_or_default();
    let services_before = procfs::cpu_by_command(SERVICES, ticks);
    let deadline = Instant::now() + Duration::from_secs(args.max_seconds);
    let expected_messages = truth.messages.len();

    let mut last_line = Instant::now();
    let versions = loop {
        tokio::time::sleep(Duration::from_millis(1_000)).await;
        fleet.check_alive()?;
        sink.check_alive()?;
        fleet.sample();
        sink.sample();
        let (dequeued, stopped) = {
            let l = log.lock().unwrap_or_else(|e| e.into_inner());
            (l.dequeued, l.stopped.clone())
        };
        if !stopped.is_empty() {
            bail!("a poller stopped: {}", stopped.join("; "));
        }
        let settled_on_topic = tail.with(|s| {
            s.by_gsrn
                .iter()
                .filter(|(g, v)| want.get(g.as_str()) == Some(&v.latest.total_excl_vat))
                .count()
        });
        let mut done = None;
        // Cheapest check first: the statistics' row estimate (no scan) gates the read of
        // every version, which scanned the month's versions once a second and took about
        // 5 CPU-s of PostgreSQL from the sink while the day was still being written.
        if dequeued >= expected_messages
            && settled_on_topic as u64 >= n
            && database::metering_series_estimate(&pool).await? as u64 >= n
        {
            let versions = database::versions(&pool, billing.first_day()).await?;
            let in_table = versions
                .iter()
                .filter(|(g, v)| {
                    v.last().map(|l| l.total_excl_vat) == want.get(g.as_str()).copied()
                })
                .count();
            if in_table as u64 >= n && database::metering_series(&pool).await? as u64 >= n {
                done = Some(versions);
            }
        }
        if let Some(v) = done {
            break v;
        }
        if last_line.elapsed() >= Duration::from_secs(10) {
            last_line = Instant::now();
            println!(
                "  … {dequeued}/{expected_messages} messages dequeued, {settled_on_topic}/{n} metering points with their final provisional total on the topic"
            );
        }
        if Instant::now() >= deadline {
            bail!(
                "not done within --max-seconds: {dequeued}/{expected_messages} messages dequeued, {settled_on_topic}/{n} final provisional totals on the topic"
            );
        }
    };
    let last_commit_ms = database::last_commit_ms(&pool)
        .await?
        .context("the sink committed no position")?;
    let parent = procfs::sample(me, ticks).unwrap_or_default();
    let services_after = procfs::cpu_by_command(SERVICES, ticks);
    let batches = fleet.batches_since(sim_started);
    let stalls = fleet.stalls();
    connector.shutdown().await;
    sim.shutdown().await;
    let final_samples = fleet.stop().await?;
    let sink_sample = sink.stop().await;
    let tail_first = tail.with(|s| {
        s.by_gsrn
            .iter()
            .filter_map(|(g, v)| v.first_with_days.get(&1).map(|t| (g.clone(), *t)))
            .collect::<BTreeMap<_, _>>()
    });
    tail.stop()?;
    let log = std::mem::take(&mut *log.lock().unwrap_or_else(|e| e.into_inner()));
    let first_peek = log.first_peek_ms.context("no peek")?;

    // 3. Figures.
    let wall = Duration::from_millis((last_commit_ms - first_peek).max(0) as u64);
    let epoch_of = |at: Instant| -> i64 {
        // Instants of the parent → ms since the epoch, through one pair read now.
        let (now_i, now_e) = (Instant::now(), now_ms());
        now_e - now_i.saturating_duration_since(at).as_millis() as i64
    };
    let storm_visible_ms = epoch_of(sim_started) + (args.storm_after_ms / 2 * 2) as i64;
    let mut latencies = Vec::with_capacity(n as usize);
    for (gsrn, message) in &original_of {
        if let (Some(acked), Some(first)) = (log.acked_ms.get(message), tail_first.get(gsrn)) {
            latencies.push(Duration::from_millis((first - acked).max(0) as u64));
        }
    }
    let latency = summarize(latencies);
    let correction_acks: Vec<i64> = truth
        .readings
        .iter()
        .filter(|r| r.versions > 1)
        .filter_map(|r| {
            r.message_ids
                .last()
                .and_then(|m| log.acked_ms.get(m))
                .copied()
        })
        .collect();
    let storm_first_ack = correction_acks.iter().min().copied();
    let storm_done = corrected
        .iter()
        .filter_map(|g| {
            let want = want.get(g.as_str())?;
            versions
                .get(g)?
                .iter()
                .filter(|v| v.total_excl_vat == *want)
                .map(|v| v.computed_ms)
                .min()
        })
        .max();
    let (db_all, db_metering) = database::sizes(&pool, &env.db_schema).await?;

    println!();
    println!(
        "== The day: {} series ({} values) + {} corrections, first peek → last sink commit ==",
        thousands(n as f64),
        thousands(day_values as f64),
        thousands(corrected.len() as f64)
    );
    println!(
        "units: a value = one quarter-hour quantity; a series = one metering point's day (one RSM-012 series, one raw record)"
    );
    println!(
        "wall time: {} s (goal < 60 s: {})",
        secs(wall),
        if wall < Duration::from_secs(60) {
            "met"
        } else {
            "NOT met"
        }
    );
    println!(
        "{:<12} {:>10} {:>9} {:>12} {:>10} {:>8} {:>14}",
        "stage", "records", "window s", "values/s", "series/s", "CPU s", "peak RSS MiB"
    );
    let connector_window = Duration::from_millis(
        (log.last_dequeue_ms.unwrap_or(first_peek) - first_peek).max(0) as u64,
    );
    println!(
        "{:<12} {:>10} {:>9} {:>12} {:>10} {:>8} {:>14}",
        "connector",
        log.dequeued,
        secs(connector_window),
        rate(sent_values as f64, connector_window),
        rate(sent_series as f64, connector_window),
        "-",
        "-"
    );
    let peek_instant = Instant::now()
        .checked_sub(Duration::from_millis((now_ms() - first_peek).max(0) as u64))
        .unwrap_or(sim_started);
    for stage in Stage::ALL {
        let b = batches.get(&stage).map_or(&[][..], Vec::as_slice);
        let records: u64 = b.iter().map(|b| b.records).sum();
        let window = b.last().map_or(Duration::ZERO, |l| {
            l.at.saturating_duration_since(peek_instant)
        });
        let s = final_samples.get(&stage).copied().unwrap_or_default();
        let cpu = s
            .cpu
            .saturating_sub(after_setup.get(&stage).map_or(Duration::ZERO, |x| x.cpu));
        println!(
            "{:<12} {:>10} {:>9} {:>12} {:>10} {:>8} {:>14}",
            stage.name(),
            records,
            secs(window),
            rate(sent_values as f64, window),
            rate(sent_series as f64, window),
            secs(cpu),
            mib(s.peak_rss)
        );
    }
    println!(
        "{:<12} {:>10} {:>9} {:>12} {:>10} {:>8} {:>14}",
        "sink",
        "-",
        secs(wall),
        rate(sent_values as f64, wall),
        rate(sent_series as f64, wall),
        secs(sink_sample.cpu.saturating_sub(sink_before.cpu)),
        mib(sink_sample.peak_rss)
    );
    print_parent(&parent);
    let mut cpu: Vec<(String, Duration)> = vec![(
        "this process (simulator, connector, registry, tail)".into(),
        parent.cpu.saturating_sub(parent_before.cpu),
    )];
    for stage in Stage::ALL {
        let after = final_samples.get(&stage).map_or(Duration::ZERO, |x| x.cpu);
        let before = after_setup.get(&stage).map_or(Duration::ZERO, |x| x.cpu);
        cpu.push((stage.name().to_string(), after.saturating_sub(before)));
    }
    cpu.push((
        "sink".into(),
        sink_sample.cpu.saturating_sub(sink_before.cpu),
    ));
    for name in SERVICES {
        let before = services_before.get(*name).copied().unwrap_or_default();
        let after = services_after.get(*name).copied().unwrap_or_default();
        cpu.push((
            format!("{name} (all its processes)"),
            after.saturating_sub(before),
        ));
    }
    print_cpu(&cpu, wall);
    println!(
        "(window: from the first peek to the stage's last batch that did work, so a later stage's window includes the wait for the earlier ones; values/s and series/s count what DataHub sent, corrections included; the sink's window ends at its last commit)"
    );
    match latency {
        Some(l) => println!(
            "raw topic → provisional version (first version of each metering point, from its series' acknowledgement to the record's CreateTime), under this load: p50 {} ms, p99 {} ms, max {} ms ({} metering points)",
            ms(l.p50),
            ms(l.p99),
            ms(l.max),
            l.count
        ),
        None => println!("raw topic → provisional version: no samples"),
    }
    match (storm_first_ack, storm_done) {
        (Some(first), Some(done)) => println!(
            "correction storm: {} corrected series, visible at +{} s, first acknowledged at +{} s; every one has a provisional version with its corrected total computed by +{} s ({} s after the first correction was acknowledged)",
            corrected.len(),
            secs(Duration::from_millis(
                (storm_visible_ms - first_peek).max(0) as u64
            )),
            secs(Duration::from_millis((first - first_peek).max(0) as u64)),
            secs(Duration::from_millis((done - first_peek).max(0) as u64)),
            secs(Duration::from_millis((done - first).max(0) as u64))
        ),
        _ => println!("correction storm: no corrections in this run"),
    }
    println!(
        "stall re-seeks: {}",
        Stage::ALL
            .iter()
            .map(|s| format!("{} {}", s.name(), stalls.get(s).copied().unwrap_or(0)))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "database: schema {} MiB, of which metering_series {} MiB ({} B per value)",
        mib(db_all as u64),
        mib(db_metering as u64),
        thousands(db_metering as f64 / day_values.max(1) as f64)
    );

    // 4. Checks.
    let sums = database::metering_sums(&pool).await?;
    let mut mismatches = Vec::new();
    for r in &truth.readings {
        let gsrn = r.gsrn.to_string();
        let count = r.points.len() as i64;
        let total = r.total_kwh();
        match sums.get(&gsrn) {
            Some((c, s)) if *c == count && *s == total => {}
            Some((c, s)) => mismatches.push(format!(
                "{gsrn}: metering_data has {c} values summing to {s}, the ground truth {count} summing to {total}"
            )),
            None => mismatches.push(format!("{gsrn}: no values in metering_data")),
        }
        let latest = versions.get(&gsrn).and_then(|v| v.last());
        match (latest, want.get(gsrn.as_str())) {
            (Some(l), Some(w)) if l.total_excl_vat == *w => {}
            (l, w) => mismatches.push(format!(
                "{gsrn}: latest provisional total {:?} (version {:?}), engine {w:?}",
                l.map(|l| l.total_excl_vat),
                l.map(|l| l.version)
            )),
        }
    }
    if sums.len() != truth.readings.len() {
        mismatches.push(format!(
            "metering_data holds {} metering points, the ground truth {}",
            sums.len(),
            truth.readings.len()
        ));
    }
    println!();
    println!(
        "== Checks: per metering point, values and their sum in metering_data against the ground truth, the latest provisional total against the pure engine: {} metering points, {} mismatches ==",
        truth.readings.len(),
        mismatches.len()
    );
    for m in mismatches.iter().take(20) {
        println!("  MISMATCH {m}");
    }
    pool.close().await;
    drop(inbound);
    drop(work);
    env.cleanup()
        .await
        .context("cleaning up the run's namespace")?;
    if !mismatches.is_empty() {
        bail!("{} mismatches against the ground truth", mismatches.len());
    }
    Ok(())
}

/// The services the run leans on that are not its children: the broker and PostgreSQL.
const SERVICES: &[&str] = &["tansu", "postgres"];

/// Where the CPU of the timed window went, per process, against what the machine's cores
/// could give in that window: the profile at process granularity that names the limit.
fn print_cpu(cpu: &[(String, Duration)], wall: Duration) {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let available = wall.as_secs_f64() * cores as f64;
    let total: Duration = cpu.iter().map(|(_, d)| *d).sum();
    println!();
    println!(
        "CPU in the timed window ({} s × {cores} cores = {:.1} CPU-s available; {} CPU-s used = {:.0} %):",
        secs(wall),
        available,
        secs(total),
        100.0 * total.as_secs_f64() / available.max(1e-9)
    );
    let mut sorted = cpu.to_vec();
    sorted.sort_by_key(|entry| std::cmp::Reverse(entry.1));
    for (name, d) in sorted {
        println!(
            "  {:<40} {:>8} CPU-s {:>5.1} %",
            name,
            secs(d),
            100.0 * d.as_secs_f64() / total.as_secs_f64().max(1e-9)
        );
    }
}

fn print_parent(parent: &ProcSample) {
    println!(
        "{:<12} {:>10} {:>9} {:>12} {:>10} {:>8} {:>14}",
        "this process",
        "-",
        "-",
        "-",
        "-",
        secs(parent.cpu),
        mib(parent.peak_rss)
    );
    println!(
        "(this process: the simulator holding the day, the connector, the schema registry, the provisional tail and these checks; CPU over its whole life)"
    );
}

/// Waits until the sink has migrated its tables (it does so at start).
async fn wait_for_tables(
    pool: &sqlx::PgPool,
    sink: &mut SinkChild,
    deadline: Instant,
) -> anyhow::Result<()> {
    loop {
        sink.check_alive()?;
        let (ready,): (bool,) = sqlx::query_as(
            "SELECT to_regclass('metering_data') IS NOT NULL AND to_regclass('settlement_version') IS NOT NULL",
        )
        .fetch_one(pool)
        .await?;
        if ready {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!("the sink did not create its tables within the setup time");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The day's spot prices from the simulator's Energi Data Service endpoint onto the spot-price
/// topic, through the connector's poller as `afregning connect spot-prices` runs it.
async fn publish_spot_prices(
    sim: &RunningSimulator,
    day: NaiveDate,
    kafka: KafkaConfig,
) -> anyhow::Result<()> {
    let config = afregning_connect::spot_prices::SpotPricesConfig {
        url: sim.spot_prices_url(),
        start: Some(day),
        end: Some(day + chrono::Days::new(1)),
        once: true,
        kafka,
        admin_listen: "127.0.0.1:0".parse()?,
        ..Default::default()
    };
    let (_stop, stop_rx) = tokio::sync::watch::channel(false);
    tokio::time::timeout(
        Duration::from_secs(120),
        afregning_connect::spot_prices::run(config, stop_rx),
    )
    .await
    .context("publishing spot prices timed out")?
    .context("publishing spot prices")?;
    Ok(())
}

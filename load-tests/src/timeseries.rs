//! The Timeseries scenario (issue 5): the connector draining DataHub's Timeseries queue at a
//! supplier's daily volume, against the in-process simulator and the real local broker.
//!
//! Daily volume of N metering points read quarter-hourly is N RSM-012 series per day, which
//! DataHub bundles into messages of up to 2,000 series. The simulator generates exactly that
//! (every metering point PT15M, no corrections or late days, so the series count is exact;
//! no master data, charges or aggregations, so only the Timeseries queue has messages), with
//! every message visible at once: the connector drains a full backlog, its worst case.
//!
//! Two phases, each on a freshly generated (identical, seeded) simulator:
//! 1. **Baseline**: the connector's own [`DataHubClient`] in a bare loop, peek → dequeue, no
//!    split, no inbound log, no broker. This is what HTTP on loopback and the simulator cost.
//! 2. **Connector**: the real [`Connector`] (one poller on the Timeseries queue, the split
//!    into per-series records, the fsynced inbound log, the idempotent `acks=all` producer to
//!    the shared local broker, dequeue after every delivery report). Cycle latency comes from
//!    the connector's own [`ConnectorEvent::Dequeued`] (`cycle` = peek request start to
//!    dequeue response), and is split at [`ConnectorEvent::Acknowledged`] into
//!    peek + split + produce + log, and dequeue.
//!
//! Afterwards the raw topic's offsets are checked against the records the connector says it
//! produced, so the figures are for data that really reached the broker.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use afregning_connect::auth::AuthManager;
use afregning_connect::client::DataHubClient;
use afregning_connect::config::{
    BackoffConfig, ConnectConfig, KafkaConfig, OutboundConfig, QueueConfig, QueuesConfig, Secret,
};
use afregning_connect::{Connector, ConnectorEvent, Dequeued, Queue};
use afregning_simulator::{
    FaultConfig, RunningSimulator, ScenarioConfig, Simulator, SimulatorConfig,
};
use afregning_testkit::TestEnv;
use afregning_topology::admin::Admin;
use afregning_topology::{Catalogue, TopologySettings, raw_headers};
use anyhow::{Context, bail};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use crate::stats::{Summary, ms, summarize};

/// Flags of the `timeseries` scenario; every count has an upper bound so a typo cannot run
/// the machine out of memory, and `--max-seconds` bounds each drain phase.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Metering points (all PT15M): one RSM-012 series each per day.
    #[arg(long, default_value_t = 80_000, value_parser = clap::value_parser!(u32).range(1..=200_000))]
    pub metering_points: u32,
    /// Days of data (1 = one day's volume).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=7))]
    pub days: u32,
    /// Series per RSM-012 bundle (DataHub bundles up to 2,000; the simulator's default).
    #[arg(long, default_value_t = 2_000, value_parser = clap::value_parser!(u32).range(1..=2_000))]
    pub bundle_series: u32,
    /// Longest drain of each phase, in seconds; a capped phase reports what it did.
    #[arg(long, default_value_t = 600, value_parser = clap::value_parser!(u64).range(1..=3_600))]
    pub max_seconds: u64,
    /// The connector's request-rate limit to DataHub (governor), for both phases.
    #[arg(long, default_value_t = 1_000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub requests_per_second: u32,
    /// Partitions of every topic (the catalogue's default is 12).
    #[arg(long, default_value_t = afregning_topology::settings::DEFAULT_PARTITIONS)]
    pub partitions: u32,
    /// Scenario seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Where the inbound-message log goes (a fresh temporary directory inside it; on real
    /// disk, since the log fsyncs before every dequeue).
    #[arg(long, default_value_os_t = std::env::temp_dir())]
    pub inbound_log_dir: PathBuf,
    /// Skip the baseline phase.
    #[arg(long)]
    pub skip_baseline: bool,
}

/// What a phase measured, for the table.
struct Phase {
    name: &'static str,
    messages: usize,
    series: usize,
    bytes: usize,
    window: Duration,
    cycles: Option<Summary>,
    /// The cycles after the first: the first pays for connections, the token, topic
    /// metadata and the key schema's registration, once per process.
    warm: Option<Summary>,
    capped: bool,
}

/// Series and bytes of each Timeseries message, from the simulator's ground truth.
type Volume = HashMap<String, (usize, usize)>;

fn scenario(args: &Args) -> SimulatorConfig {
    SimulatorConfig {
        scenario: ScenarioConfig {
            seed: args.seed,
            metering_points: args.metering_points,
            days: args.days,
            pt1h_share: 0.0,
            correction_share: 0.0,
            late_share: 0.0,
            bundle_series: args.bundle_series,
            day_release_ms: 0,
            late_release_ms: 0,
            aggregations: false,
            master_data: false,
            ..ScenarioConfig::default()
        },
        faults: FaultConfig::none(),
        ..SimulatorConfig::default()
    }
}

/// Generates and serves a simulator; returns it with its Timeseries volume.
async fn start_simulator(args: &Args) -> anyhow::Result<(RunningSimulator, Volume, Duration)> {
    let config = scenario(args);
    let started = Instant::now();
    let sim = tokio::task::spawn_blocking(move || Simulator::new(config))
        .await
        .context("joining the scenario generation")?
        .context("generating the scenario")?;
    let generated = started.elapsed();
    let volume: Volume = sim
        .handle()
        .ground_truth()
        .messages
        .iter()
        .filter(|m| m.queue == afregning_simulator::Queue::Timeseries)
        .map(|m| (m.message_id.clone(), (m.transactions, m.bytes)))
        .collect();
    let running = sim
        .serve("127.0.0.1:0".parse()?)
        .await
        .context("serving the simulator")?;
    Ok((running, volume, generated))
}

/// The connector's configuration for `sim`: only the Timeseries poller, no outbound.
fn connector_config(args: &Args, sim: &RunningSimulator) -> ConnectConfig {
    let mut config = ConnectConfig::default();
    config.datahub.base_url = sim.url.clone();
    config.datahub.token_url = sim.token_url();
    config.datahub.client_id = "afregning-demo".into();
    config.datahub.client_secret = Secret::new("demo-secret");
    let disabled = QueueConfig {
        enabled: false,
        ..QueueConfig::every(20, 200)
    };
    config.queues = QueuesConfig {
        timeseries: QueueConfig::every(20, 200),
        ..QueuesConfig::all(disabled)
    };
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
    config
}

/// Phase 1: the connector's client in a bare peek → dequeue loop.
async fn baseline(args: &Args) -> anyhow::Result<Phase> {
    let (sim, volume, generated) = start_simulator(args).await?;
    println!(
        "baseline: scenario generated in {:.1} s",
        generated.as_secs_f64()
    );
    let config = connector_config(args, &sim);
    let http = reqwest::Client::builder()
        .timeout(config.request_timeout())
        .connect_timeout(Duration::from_millis(config.datahub.connect_timeout_ms))
        .pool_max_idle_per_host(16)
        .build()?;
    let auth = Arc::new(AuthManager::new(http.clone(), config.datahub.clone()));
    let client = DataHubClient::new(
        http,
        &config.datahub.base_url,
        auth,
        config.requests_per_second,
    );
    let deadline = Instant::now() + Duration::from_secs(args.max_seconds);
    let mut cycles = Vec::with_capacity(volume.len());
    let (mut series, mut bytes, mut capped) = (0, 0, false);
    let first = Instant::now();
    let mut last = first;
    loop {
        if Instant::now() >= deadline {
            capped = true;
            break;
        }
        let started = Instant::now();
        let Some(peeked) = client.peek(Queue::Timeseries).await? else {
            break;
        };
        let outcome = client.dequeue(&peeked.message_id).await?;
        last = Instant::now();
        if outcome != Dequeued::Done {
            bail!("baseline dequeue of {} was {outcome:?}", peeked.message_id);
        }
        cycles.push(last - started);
        bytes += peeked.body.len();
        series += volume.get(&peeked.message_id).map_or(0, |v| v.0);
    }
    sim.shutdown().await;
    Ok(Phase {
        name: "baseline: peek → dequeue (no split, log or broker)",
        messages: cycles.len(),
        series,
        bytes,
        window: last - first,
        warm: summarize(cycles.get(1..).unwrap_or_default().to_vec()),
        cycles: summarize(cycles),
        capped,
    })
}

/// The connector phase's extra figures.
struct ConnectorRun {
    phase: Phase,
    to_ack: Option<Summary>,
    to_dequeue: Option<Summary>,
    on_topic: usize,
    records: usize,
}

/// Phase 2: the real connector against the simulator and the shared local broker.
async fn connector(args: &Args) -> anyhow::Result<ConnectorRun> {
    let env = TestEnv::start("load_timeseries")
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
    let topic = afregning_connect::publish::raw_topic(Queue::Timeseries)
        .name(&catalogue)
        .to_string();
    let log_dir = tempfile::Builder::new()
        .prefix("afregning-load-inbound-")
        .tempdir_in(&args.inbound_log_dir)
        .context("creating the inbound-log directory")?;

    let (sim, volume, generated) = start_simulator(args).await?;
    println!(
        "connector: scenario generated in {:.1} s; broker {}, topic {topic} ({} partitions), inbound log {}",
        generated.as_secs_f64(),
        env.bootstrap_servers,
        args.partitions,
        log_dir.path().display()
    );
    let mut config = connector_config(args, &sim);
    config.kafka = KafkaConfig {
        bootstrap_servers: env.bootstrap_servers.clone(),
        schema_registry_url: env.registry_url.clone(),
        topology: settings,
        ..KafkaConfig::default()
    };
    config.inbound_log.dir = log_dir.path().to_path_buf();
    println!(
        "connector: linger.ms {}, compression {}, acks=all idempotent, inbound log gzip level {} fsync {}",
        config.kafka.linger_ms,
        config.kafka.compression,
        config.inbound_log.compression_level,
        config.inbound_log.fsync
    );

    let events: Arc<Mutex<Vec<ConnectorEvent>>> = Arc::default();
    let sink = Arc::clone(&events);
    let running = Connector::new(config)
        .with_observer(Arc::new(move |e| {
            sink.lock().unwrap_or_else(|e| e.into_inner()).push(e)
        }))
        .start()
        .await
        .context("starting the connector")?;
    let deadline = Instant::now() + Duration::from_secs(args.max_seconds);
    let expected = volume.len();
    let mut capped = false;
    loop {
        let dequeued = events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|e| matches!(e, ConnectorEvent::Dequeued { .. }))
            .count();
        if dequeued >= expected {
            break;
        }
        if Instant::now() >= deadline {
            capped = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    running.shutdown().await;
    sim.shutdown().await;
    let events = std::mem::take(&mut *events.lock().unwrap_or_else(|e| e.into_inner()));

    let mut acks: HashMap<String, (Instant, usize)> = HashMap::new();
    let (mut cycles, mut to_ack, mut to_dequeue) = (Vec::new(), Vec::new(), Vec::new());
    let (mut series, mut bytes, mut records) = (0, 0, 0);
    let (mut first, mut last): (Option<Instant>, Option<Instant>) = (None, None);
    for event in &events {
        match event {
            ConnectorEvent::Acknowledged {
                message_id,
                records: n,
                at,
                ..
            } => {
                records += n;
                acks.insert(message_id.clone(), (*at, *n));
            }
            ConnectorEvent::Dequeued {
                message_id,
                cycle,
                at,
                outcome,
                ..
            } => {
                if *outcome != Dequeued::Done {
                    bail!("connector dequeue of {message_id} was {outcome:?}");
                }
                let peek_started = *at - *cycle;
                first = Some(first.map_or(peek_started, |f| f.min(peek_started)));
                last = Some(last.map_or(*at, |l| l.max(*at)));
                cycles.push(*cycle);
                if let Some((acked, _)) = acks.get(message_id) {
                    to_ack.push(*acked - peek_started);
                    to_dequeue.push(*at - *acked);
                }
                let (s, b) = volume.get(message_id).copied().unwrap_or_default();
                series += s;
                bytes += b;
            }
            ConnectorEvent::QueueStopped { reason, .. } => {
                bail!("the Timeseries poller stopped: {reason}")
            }
        }
    }
    let on_topic = records_on_topic(
        &env.bootstrap_servers,
        &env.group("load-reader"),
        &topic,
        args.partitions,
        records,
        Duration::from_secs(args.max_seconds),
    )
    .await?;
    drop(log_dir);
    env.cleanup()
        .await
        .context("cleaning up the test namespace")?;
    Ok(ConnectorRun {
        phase: Phase {
            name: "connector: peek → split → produce + log → dequeue",
            messages: cycles.len(),
            series,
            bytes,
            window: match (first, last) {
                (Some(f), Some(l)) => l - f,
                _ => Duration::ZERO,
            },
            warm: summarize(cycles.get(1..).unwrap_or_default().to_vec()),
            cycles: summarize(cycles),
            capped,
        },
        to_ack: summarize(to_ack),
        to_dequeue: summarize(to_dequeue),
        on_topic,
        records,
    })
}

/// Counts the distinct (MessageId, part index) records on the raw topic by reading it from
/// the beginning (at most `timeout`). Offsets are not used: the local broker's high
/// watermarks do not equal record counts for batched produce.
async fn records_on_topic(
    bootstrap: &str,
    group: &str,
    topic: &str,
    partitions: u32,
    expected: usize,
    timeout: Duration,
) -> anyhow::Result<usize> {
    let (bootstrap, group, topic) = (bootstrap.to_string(), group.to_string(), topic.to_string());
    tokio::task::spawn_blocking(move || -> anyhow::Result<usize> {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &bootstrap)
            .set("group.id", &group)
            .set("enable.auto.commit", "false")
            .set("enable.partition.eof", "false")
            .create()?;
        let mut list = TopicPartitionList::new();
        for p in 0..partitions as i32 {
            list.add_partition_offset(&topic, p, Offset::Beginning)?;
        }
        consumer.assign(&list)?;
        let deadline = Instant::now() + timeout;
        let mut seen: HashSet<(String, String)> = HashSet::with_capacity(expected);
        while seen.len() < expected && Instant::now() < deadline {
            match consumer.poll(Duration::from_millis(200)) {
                Some(Ok(m)) => {
                    let header = |name: &str| {
                        m.headers()
                            .and_then(|h| h.iter().find(|h| h.key == name))
                            .and_then(|h| h.value)
                            .map(|v| String::from_utf8_lossy(v).into_owned())
                            .unwrap_or_default()
                    };
                    seen.insert((
                        header(raw_headers::MESSAGE_ID),
                        header(raw_headers::PART_INDEX),
                    ));
                }
                Some(Err(e)) => bail!("reading the raw topic: {e}"),
                None => {}
            }
        }
        Ok(seen.len())
    })
    .await?
}

fn print_phases(phases: &[&Phase]) {
    println!();
    println!(
        "| Phase | Messages | Series | MB | Seconds | MB/s | Messages/s | Series/s | p50 ms | p99 ms | Mean ms | Max ms |"
    );
    println!("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|");
    for p in phases {
        let secs = p.window.as_secs_f64().max(1e-9);
        let mb = p.bytes as f64 / 1e6;
        let (p50, p99, mean, max) = p.cycles.map_or_else(
            || ("-".into(), "-".into(), "-".into(), "-".into()),
            |s| (ms(s.p50), ms(s.p99), ms(s.mean), ms(s.max)),
        );
        println!(
            "| {}{} | {} | {} | {:.1} | {:.2} | {:.1} | {:.2} | {:.0} | {p50} | {p99} | {mean} | {max} |",
            p.name,
            if p.capped { " (CAPPED)" } else { "" },
            p.messages,
            p.series,
            mb,
            secs,
            mb / secs,
            p.messages as f64 / secs,
            p.series as f64 / secs,
        );
    }
}

fn print_warm(phases: &[&Phase]) {
    println!();
    println!(
        "Cycle latency without each phase's first cycle (cold start: connections, token, topic metadata, key schema):"
    );
    println!();
    println!("| Phase | Cycles | p50 ms | p99 ms | Mean ms | Max ms |");
    println!("|---|--:|--:|--:|--:|--:|");
    for p in phases {
        if let Some(s) = p.warm {
            println!(
                "| {} | {} | {} | {} | {} | {} |",
                p.name,
                s.count,
                ms(s.p50),
                ms(s.p99),
                ms(s.mean),
                ms(s.max)
            );
        }
    }
}

fn print_breakdown(run: &ConnectorRun) {
    println!();
    println!("Connector cycle, split at the last delivery report:");
    println!();
    println!("| Part of the cycle | p50 ms | p99 ms | Mean ms | Max ms |");
    println!("|---|--:|--:|--:|--:|");
    for (name, summary) in [
        (
            "peek + split + produce (all acks) + inbound log",
            run.to_ack,
        ),
        ("dequeue (after the acks)", run.to_dequeue),
    ] {
        if let Some(s) = summary {
            println!(
                "| {name} | {} | {} | {} | {} |",
                ms(s.p50),
                ms(s.p99),
                ms(s.mean),
                ms(s.max)
            );
        }
    }
}

/// Runs the scenario and prints its tables.
pub async fn run(args: Args) -> anyhow::Result<()> {
    println!(
        "timeseries load test: {} metering points × {} day(s), all PT15M = {} RSM-012 series, {} series per bundle, {} requests/s limit, each phase capped at {} s",
        args.metering_points,
        args.days,
        u64::from(args.metering_points) * u64::from(args.days),
        args.bundle_series,
        args.requests_per_second,
        args.max_seconds
    );
    let base = if args.skip_baseline {
        None
    } else {
        Some(baseline(&args).await?)
    };
    let run = connector(&args).await?;
    let mut phases = Vec::new();
    if let Some(b) = &base {
        phases.push(b);
    }
    phases.push(&run.phase);
    print_phases(&phases);
    print_warm(&phases);
    print_breakdown(&run);
    println!();
    println!(
        "Records on the raw topic: {} (the connector reports {} acknowledged); messages dequeued {}.",
        run.on_topic, run.records, run.phase.messages
    );
    if let Some(s) = run.phase.cycles {
        let verdict = |ok: bool| if ok { "met" } else { "NOT met" };
        println!(
            "Seed budget, < 1 s per cycle on average: mean {} ms, {}.",
            ms(s.mean),
            verdict(s.mean < Duration::from_secs(1))
        );
        println!(
            "Goal, p99 < 100 ms on loopback: p99 {} ms, {}.",
            ms(s.p99),
            verdict(s.p99 < Duration::from_millis(100))
        );
    }
    if run.on_topic < run.records {
        bail!(
            "the raw topic holds {} records, fewer than the {} acknowledged",
            run.on_topic,
            run.records
        );
    }
    if run.phase.capped || base.as_ref().is_some_and(|b| b.capped) {
        println!("A phase hit --max-seconds: its figures cover only what it drained.");
    }
    Ok(())
}

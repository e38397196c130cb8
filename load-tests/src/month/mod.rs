//! The month scenario (issue 12): a month of N PT15M metering points through validate, enrich,
//! aggregate and settle on the local broker, and the seed design's batch settlement of the
//! same month in PostgreSQL, in one run.
//!
//! 1. **Setup.** The topology under a fresh prefix (`afregning-testkit`'s per-run namespace),
//!    the scenario from the simulator (every metering point PT15M, no faults, corrections or
//!    late days, so the counts are exact), the four processors as child processes of this
//!    binary (so `/proc/<pid>` gives each one's CPU and peak RSS), and a tail of the
//!    provisional-settlements topic.
//! 2. **Reference data**: the simulator's master data and charges bundles (RSM-022, RSM-034,
//!    RSM-031) produced to their raw topics exactly as the connector produces them (split per
//!    transaction, same keys and headers), and the scenario's spot prices as the spot-price
//!    poller publishes them; processors run until caught up.
//! 3. **Replay**: days 1..D-1, one raw record per series as the connector writes them, produced
//!    at once while validate is paused; then validate starts again and the four processors
//!    drain the backlog until caught up: a replay of the month from the raw topic, timed from
//!    validate's restart (`--produce-while-running` keeps all four running while producing,
//!    so the window is the producer's pace). Throughput per processor from their own batch
//!    reports, CPU from `/proc` for the four and for the broker.
//! 4. **The month's last day**, with the pipeline caught up and running: day D's N series are
//!    produced; measured from the last series' acknowledgement to the producer timestamp of
//!    the last provisional version that has all D days (every metering point's monthly lines
//!    ready). Then until caught up again (final statements with no grace period).
//! 5. **Sizes**: RocksDB directories per processor, bytes on the changelog topics.
//! 6. **Batch baseline** ([`batch`]): COPY the month's values into PostgreSQL the way the sink
//!    does, one settlement SQL run; CPU of the backend from `/proc`.
//! 7. **Checks**: per metering point, the streaming provisional total, the SQL total and the
//!    pure engine's `settle_month` on the ground truth must agree (and the SQL's lines the
//!    engine's, line by line); mismatches are printed and make the command fail.

pub mod batch;
pub mod child;
pub(crate) mod fleet;
pub mod procfs;
pub(crate) mod recalc;
pub(crate) mod tail;

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use afregning_connect::config::{KafkaConfig, Queue};
use afregning_connect::inbound_log::sha256_hex;
use afregning_connect::publish::{BundleMeta, RawPublisher, producer_config, split};
use afregning_connect::spot_prices::{SpotPricePublisher, SpotRow};
use afregning_processors::pipeline;
use afregning_settlement::{BillingMonth, LineSource, MonthStatement, settle_month};
use afregning_simulator::scenario::{Scenario, ScenarioMessage};
use afregning_simulator::{FaultConfig, GroundTruth, ScenarioConfig};
use afregning_testkit::TestEnv;
use afregning_topology::admin::Admin;
use afregning_topology::{Catalogue, Codec, TopologySettings, topics};
use anyhow::{Context, bail};
use chrono::NaiveDate;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use self::child::{ChildArgs, Stage};
use self::fleet::{Batch, Fleet};
use self::procfs::ProcSample;
use crate::figures::{mib, rate, secs, thousands};

/// The local broker's process name (`/proc/<pid>/comm`): its CPU is part of the pipeline's.
const BROKER: &[&str] = &["tansu"];

/// Flags of the `month` scenario. Every count has an upper bound, and `--max-seconds` bounds
/// the whole streaming part.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Metering points, all PT15M (one RSM-012 series each per day). The local broker keeps
    /// every record in memory (about 14 KB per raw series plus the typed copies and
    /// changelogs), hence the bound; larger figures are extrapolated (`--extrapolate-to`).
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub metering_points: u32,
    /// The billing month, `YYYY-MM` (March 2026 has the spring DST day of 92 quarter-hours).
    #[arg(long, default_value = "2026-03")]
    pub month: String,
    /// Days of data from the 1st (default: the whole month; fewer leave the months
    /// incomplete, so no final statements). At least 2: the last day is the live one.
    #[arg(long, value_parser = clap::value_parser!(u32).range(2..=31))]
    pub days: Option<u32>,
    /// Partitions of every topic (= tasks per processor).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=24))]
    pub partitions: u32,
    /// Series per RSM-012 bundle as DataHub sends them (the connector splits them per series).
    #[arg(long, default_value_t = 2_000, value_parser = clap::value_parser!(u32).range(1..=2_000))]
    pub bundle_series: u32,
    /// Longest the streaming part may take, in seconds (setup to the last catch-up).
    #[arg(long, default_value_t = 1_800, value_parser = clap::value_parser!(u64).range(30..=7_200))]
    pub max_seconds: u64,
    /// The processors' stall timeout in ms: a partition with lag and no progress is re-sought
    /// after this long (a safety net; since the lag check no longer blocks the driver no
    /// stall repairs are seen on the local broker, docs/processors-runtime.md). The quick
    /// settings use 5,000.
    #[arg(long, default_value_t = 5_000, value_parser = clap::value_parser!(u64).range(200..=60_000))]
    pub stall_timeout_ms: u64,
    /// Extra librdkafka settings for the processors' clients, `KEY=VALUE`, repeatable (to
    /// measure a client setting; the defaults are the pipeline's quick settings).
    #[arg(long = "kafka", value_parser = child::parse_kafka_setting)]
    pub kafka: Vec<(String, String)>,
    /// State-store memory budget per processor process, MiB.
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u64).range(16..=8_192))]
    pub state_memory_mb: u64,
    /// Tasks each processor processes at once (`RuntimeConfig::processing_threads`; 0, the
    /// default: the machine's cores). 1 processes a round's tasks one after the other.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=64))]
    pub processing_threads: u64,
    /// PostgreSQL's `max_parallel_workers_per_gather` for the batch SQL. 0 (default) keeps
    /// the whole run in the one backend whose CPU is measured; more makes the SQL faster on
    /// two cores but its workers' CPU is not counted.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=8))]
    pub pg_parallel_workers: u32,
    /// Skip the batch baseline.
    #[arg(long)]
    pub skip_batch: bool,
    /// Produce days 1..D-1 with all four processors running, so the replay's window is the
    /// producer's pace when the pipeline keeps up. By default validate is paused while the
    /// raw topic fills and started again on the full backlog: the four processors replay
    /// the month from the raw topic, and the window is theirs (and the broker's) alone.
    #[arg(long)]
    pub produce_while_running: bool,
    /// Print every batch of the replay per processor (time after the window's start,
    /// records, outputs, commit round): where a processor waited.
    #[arg(long)]
    pub print_batches: bool,
    /// After the month: recalculate it by replaying this processor from offset 0 on every
    /// partition (issue 14's month replay; [`recalc`]). The data is unchanged, so no month
    /// may get a new version.
    #[arg(long, value_enum)]
    pub replay: Option<Stage>,
    /// Metering points to extrapolate the measured per-series costs to (a supplier's month).
    #[arg(long, default_value_t = 80_000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub extrapolate_to: u32,
    /// Scenario seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

/// The scenario's shape: what one series and one value are.
struct Plan {
    year: i32,
    month: u32,
    first_day: NaiveDate,
    days_in_month: u32,
    days: u32,
}

fn plan(args: &Args) -> anyhow::Result<Plan> {
    let (y, m) = args.month.split_once('-').context("--month is YYYY-MM")?;
    let (year, month): (i32, u32) = (y.parse()?, m.parse()?);
    let billing = BillingMonth::new(year, month).context("--month")?;
    let days_in_month = billing.days();
    let days = args.days.unwrap_or(days_in_month);
    if days > days_in_month {
        bail!(
            "--days {days} is more than the {days_in_month} days of {}",
            args.month
        );
    }
    Ok(Plan {
        year,
        month,
        first_day: NaiveDate::from_ymd_opt(year, month, 1).context("--month")?,
        days_in_month,
        days,
    })
}

fn scenario_config(args: &Args, plan: &Plan) -> ScenarioConfig {
    ScenarioConfig {
        seed: args.seed,
        metering_points: args.metering_points,
        first_day: plan.first_day,
        days: plan.days,
        pt1h_share: 0.0,
        correction_share: 0.0,
        estimated_share: 0.0,
        missing_share: 0.0,
        late_share: 0.0,
        bundle_series: args.bundle_series,
        day_release_ms: 0,
        late_release_ms: 0,
        aggregations: false,
        master_data: true,
        ..ScenarioConfig::default()
    }
}

/// CPUs this process may run on.
fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Produces whole DataHub bundles to their raw topics as the connector does.
struct RawWriter {
    publisher: RawPublisher,
}

impl RawWriter {
    fn new(kafka: &KafkaConfig, catalogue: &Catalogue, registry: &str) -> anyhow::Result<Self> {
        let producer = producer_config(kafka).create()?;
        let codec = Codec::new(catalogue.clone(), registry);
        Ok(Self {
            publisher: RawPublisher::new(producer, codec, kafka.max_record_bytes),
        })
    }

    /// Publishes `message` (split per transaction) and waits for every acknowledgement;
    /// returns the records produced.
    async fn publish(&self, message: &ScenarioMessage) -> anyhow::Result<usize> {
        let queue = match message.queue {
            afregning_simulator::Queue::Timeseries => Queue::Timeseries,
            afregning_simulator::Queue::Aggregations => Queue::Aggregations,
            afregning_simulator::Queue::MasterData => Queue::MasterData,
            afregning_simulator::Queue::Charges => Queue::Charges,
        };
        let sha = sha256_hex(&message.body);
        let (parts, kind) = split(&message.body);
        let meta = BundleMeta {
            queue,
            message_id: &message.id,
            content_type: "application/json",
            received_at: chrono::Utc::now(),
            sha256: &sha,
        };
        self.publisher
            .publish(&meta, &parts, &kind)
            .await
            .with_context(|| format!("producing {}", message.id))
    }
}

/// Bytes (key + value) and records on every changelog topic of `prefix`, per processor,
/// read from the beginning to the fetch-reported ends, one topic at a time.
fn changelog_bytes(
    bootstrap: &str,
    group: &str,
    prefix: &str,
) -> anyhow::Result<BTreeMap<Stage, (u64, u64)>> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "true")
        .create()?;
    let metadata = consumer.fetch_metadata(None, Duration::from_secs(10))?;
    let mut out = BTreeMap::new();
    for stage in Stage::ALL {
        let head = format!("{prefix}afregning.{}.", stage.name());
        let (mut bytes, mut records) = (0u64, 0u64);
        for t in metadata.topics() {
            if !(t.name().starts_with(&head) && t.name().ends_with("-changelog.v1")) {
                continue;
            }
            let mut list = TopicPartitionList::new();
            for p in t.partitions() {
                list.add_partition_offset(t.name(), p.id(), Offset::Beginning)?;
            }
            consumer.assign(&list)?;
            let partitions = t.partitions().len();
            let mut ended = std::collections::BTreeSet::new();
            let mut seen = std::collections::HashSet::new();
            let deadline = Instant::now() + Duration::from_secs(300);
            let mut quiet = Instant::now();
            while ended.len() < partitions {
                if Instant::now() > deadline {
                    bail!("reading {} took over 300 s", t.name());
                }
                match consumer.poll(Duration::from_millis(200)) {
                    None => {
                        if quiet.elapsed() > Duration::from_secs(2) {
                            // Re-seek so the local broker delivers what is at the end.
                            consumer.assign(&consumer.position()?)?;
                            quiet = Instant::now();
                        }
                    }
                    Some(Err(rdkafka::error::KafkaError::PartitionEOF(p))) => {
                        ended.insert(p);
                        quiet = Instant::now();
                    }
                    Some(Err(e)) => return Err(e.into()),
                    Some(Ok(m)) => {
                        quiet = Instant::now();
                        if seen.insert((m.partition(), m.offset())) {
                            bytes += (m.key().map_or(0, <[u8]>::len)
                                + m.payload().map_or(0, <[u8]>::len))
                                as u64;
                            records += 1;
                        }
                    }
                }
            }
            consumer.unassign()?;
        }
        out.insert(stage, (bytes, records));
    }
    Ok(out)
}

fn engine_label(source: &LineSource) -> String {
    match source {
        LineSource::Spot => "spot".into(),
        LineSource::Margin { .. } => "margin".into(),
        LineSource::ProductSubscription { .. } => "supplier-subscription".into(),
        LineSource::Charge { key, .. } => {
            let kind = match key.charge_type {
                afregning_settlement::ChargeType::Subscription => "subscription",
                afregning_settlement::ChargeType::Fee => "fee",
                afregning_settlement::ChargeType::Tariff => "tariff",
            };
            batch::charge_label(&key.owner, kind, &key.code)
        }
    }
}

/// The pure engine's statements for every metering point from the ground truth.
pub(crate) fn engine_statements(
    truth: &GroundTruth,
    billing: BillingMonth,
) -> anyhow::Result<BTreeMap<String, MonthStatement>> {
    engine_each(truth, billing, Ok)
}

/// Per GSRN the pure engine's provisional total excluding VAT (6 decimals), keeping no
/// statement: what a check against the sink needs, in memory that does not grow with the
/// statements' details.
pub(crate) fn engine_totals(
    truth: &GroundTruth,
    billing: BillingMonth,
) -> anyhow::Result<BTreeMap<String, rust_decimal::Decimal>> {
    engine_each(truth, billing, |s| Ok(s.known_totals.excl_vat.round_dp(6)))
}

/// `settle_month` on each metering point's ground truth, kept as `keep` makes it.
fn engine_each<T>(
    truth: &GroundTruth,
    billing: BillingMonth,
    keep: impl Fn(MonthStatement) -> anyhow::Result<T>,
) -> anyhow::Result<BTreeMap<String, T>> {
    let products = child::products()?;
    let default = products.products.first().map(|p| p.id.clone());
    let mut out = BTreeMap::new();
    for mp in &truth.metering_points {
        let gsrn = mp.gsrn.to_string();
        let terms = afregning_processors::settle::core::product_terms(
            &products,
            default.as_deref(),
            &gsrn,
            billing,
        );
        let input = afregning_simulator::expected::month_input(truth, mp, billing, terms);
        out.insert(gsrn, keep(settle_month(&input)?)?);
    }
    Ok(out)
}

struct StageFigures {
    records: u64,
    outputs: u64,
    window: Duration,
    first: Option<Instant>,
    last: Option<Instant>,
}

/// A processor's figures in a phase that began at `from`: its window runs from the phase's
/// start (the first record produced) to its last batch that did work.
fn figures(batches: &[Batch], from: Instant) -> StageFigures {
    StageFigures {
        records: batches.iter().map(|b| b.records).sum(),
        outputs: batches.iter().map(|b| b.outputs).sum(),
        window: batches
            .last()
            .map_or(Duration::ZERO, |l| l.at.saturating_duration_since(from)),
        first: batches.first().map(|b| b.at),
        last: batches.last().map(|b| b.at),
    }
}

/// How long a processor was inside a commit round: the union of its batches' rounds (the
/// tasks of one round each report it), each ending when the parent read its event.
fn busy(batches: &[Batch]) -> Duration {
    let mut spans: Vec<(Instant, Instant)> = batches
        .iter()
        .map(|b| (b.at - Duration::from_millis(b.round_ms), b.at))
        .collect();
    spans.sort_unstable();
    let mut total = Duration::ZERO;
    let mut current: Option<(Instant, Instant)> = None;
    for (start, end) in spans {
        current = match current {
            Some((s, e)) if start <= e => Some((s, e.max(end))),
            Some((s, e)) => {
                total += e - s;
                Some((start, end))
            }
            None => Some((start, end)),
        };
    }
    total + current.map_or(Duration::ZERO, |(s, e)| e - s)
}

fn cpu_delta(
    a: &BTreeMap<Stage, ProcSample>,
    b: &BTreeMap<Stage, ProcSample>,
    s: Stage,
) -> Duration {
    let before = a.get(&s).map_or(Duration::ZERO, |x| x.cpu);
    b.get(&s)
        .map_or(Duration::ZERO, |x| x.cpu)
        .saturating_sub(before)
}

/// Runs the scenario and prints its figures; fails when a check fails.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let plan = plan(&args)?;
    let billing = BillingMonth::new(plan.year, plan.month)?;
    let n = u64::from(args.metering_points);
    let deadline = Instant::now() + Duration::from_secs(args.max_seconds);
    println!(
        "month: {} metering points (PT15M) × {} days of {} ({} days), {} partitions, seed {}",
        args.metering_points, plan.days, args.month, plan.days_in_month, args.partitions, args.seed
    );

    // 1. Setup.
    let env = TestEnv::start("load_month")
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
    let config = scenario_config(&args, &plan);
    let started = Instant::now();
    let Scenario { truth, messages } = tokio::task::spawn_blocking(move || {
        afregning_simulator::scenario::generate(&config, &FaultConfig::none())
    })
    .await
    .context("joining the scenario generation")?
    .context("generating the scenario")?;
    println!(
        "scenario generated in {:.1} s: {} series, {} messages; broker {}, prefix {}",
        started.elapsed().as_secs_f64(),
        truth.readings.len(),
        messages.len(),
        env.bootstrap_servers,
        env.namespace
    );
    if truth.readings.len() as u64 != n * u64::from(plan.days) {
        bail!(
            "the scenario has {} series, expected {}",
            truth.readings.len(),
            n * u64::from(plan.days)
        );
    }
    let last_day = plan.first_day + chrono::Days::new(u64::from(plan.days - 1));
    let day_of: BTreeMap<&str, NaiveDate> = truth
        .readings
        .iter()
        .flat_map(|r| r.message_ids.iter().map(move |m| (m.as_str(), r.day)))
        .collect();
    let values_of = |last: bool| -> u64 {
        truth
            .readings
            .iter()
            .filter(|r| (r.day == last_day) == last)
            .map(|r| r.points.len() as u64)
            .sum()
    };
    let (replay_series, replay_values) = (n * u64::from(plan.days - 1), values_of(false));
    let (live_series, live_values) = (n, values_of(true));
    let series_total = n * u64::from(plan.days);

    let kafka = KafkaConfig {
        bootstrap_servers: env.bootstrap_servers.clone(),
        schema_registry_url: env.registry_url.clone(),
        topology: settings.clone(),
        ..KafkaConfig::default()
    };
    let writer = RawWriter::new(&kafka, &catalogue, &env.registry_url)?;
    let work = tempfile::Builder::new()
        .prefix("afregning-load-month-")
        .tempdir()
        .context("creating the work directory")?;
    let exe = std::env::current_exe().context("this binary's path")?;
    let ticks = procfs::clock_ticks();
    let template = ChildArgs {
        which: Stage::Validate,
        bootstrap_servers: env.bootstrap_servers.clone(),
        registry_url: env.registry_url.clone(),
        prefix: env.namespace.clone(),
        partitions: args.partitions,
        state_dir: work.path().to_path_buf(),
        supplier_gln: truth.supplier_gln.clone(),
        stall_timeout_ms: args.stall_timeout_ms,
        state_memory_mb: args.state_memory_mb as usize,
        processing_threads: args.processing_threads as usize,
        kafka: args.kafka.clone(),
    };
    let codec = Codec::new(catalogue.clone(), &env.registry_url);
    let topics_handle = pipeline::topics(catalogue.clone(), &codec).await?;
    let mut fleet = Fleet::start(&exe, work.path(), &template, ticks).await?;
    let tail = tail::Tail::start(
        &env.bootstrap_servers,
        &env.group("load-month-tail"),
        &topics_handle.name(topics::PROVISIONAL_SETTLEMENTS),
        topics_handle.wire.clone(),
    )?;

    // 2. Reference data.
    let t0 = Instant::now();
    let mut reference_records = 0;
    for m in messages.iter().filter(|m| {
        matches!(
            m.queue,
            afregning_simulator::Queue::MasterData | afregning_simulator::Queue::Charges
        )
    }) {
        reference_records += writer.publish(m).await?;
    }
    let spot_rows: Vec<SpotRow> = truth
        .spot_prices
        .iter()
        .map(|p| SpotRow {
            price_area: p.price_area.clone(),
            start: p.start,
            resolution: if p.resolution == afregning_cim::Resolution::QuarterHour {
                afregning_topology::records::Resolution::Pt15m
            } else {
                afregning_topology::records::Resolution::Pt1h
            },
            dkk_per_mwh: p.dkk_per_mwh,
            eur_per_mwh: Some(p.eur_per_mwh),
        })
        .collect();
    let spot = SpotPricePublisher::new(&kafka)?
        .publish(&spot_rows, "simulator@load-test")
        .await
        .context("publishing spot prices")?;
    fleet
        .wait_caught_up(Duration::from_secs(2), deadline)
        .await
        .context("reference data")?;
    println!(
        "reference data: {reference_records} raw records (master data, charges, links), {spot} spot prices; caught up in {:.1} s",
        t0.elapsed().as_secs_f64()
    );
    let after_reference = fleet.sample();

    // 3. Replay of days 1..D-1: by default from a backlog on the raw topic.
    let backlog = !args.produce_while_running;
    if backlog {
        fleet
            .pause(Stage::Validate)
            .await
            .context("pausing validate")?;
    }
    let t_produce = Instant::now();
    let broker_at_produce = procfs::cpu_by_command(BROKER, ticks);
    let mut replay_records = 0;
    for m in messages.iter().filter(|m| {
        m.queue == afregning_simulator::Queue::Timeseries
            && day_of.get(m.id.as_str()).is_some_and(|d| *d < last_day)
    }) {
        replay_records += writer.publish(m).await?;
    }
    let produced_replay = t_produce.elapsed();
    let broker_at_drain = procfs::cpu_by_command(BROKER, ticks);
    let (t1, restart) = if backlog {
        let restarted = Instant::now();
        fleet.restart(Stage::Validate)?;
        let ready = fleet.wait_ready(Stage::Validate, deadline).await?;
        (ready, ready - restarted)
    } else {
        (t_produce, Duration::ZERO)
    };
    fleet
        .wait_caught_up(Duration::from_secs(2), deadline)
        .await
        .context("replay")?;
    let after_replay = fleet.sample();
    let broker_after_replay = procfs::cpu_by_command(BROKER, ticks);
    let broker_cpu = |from: &BTreeMap<String, Duration>, to: &BTreeMap<String, Duration>| {
        BROKER
            .iter()
            .map(|b| {
                to.get(*b)
                    .copied()
                    .unwrap_or_default()
                    .saturating_sub(from.get(*b).copied().unwrap_or_default())
            })
            .sum::<Duration>()
    };
    let broker_producing = broker_cpu(&broker_at_produce, &broker_at_drain);
    let broker_replay = broker_cpu(
        if backlog {
            &broker_at_drain
        } else {
            &broker_at_produce
        },
        &broker_after_replay,
    );
    let replay_batches = fleet.batches_since(t1);
    let replay_end = replay_batches
        .values()
        .filter_map(|b| b.last().map(|b| b.at))
        .max()
        .unwrap_or(t1);
    let replay_wall = replay_end - t1;
    if backlog {
        println!(
            "replay: {replay_records} raw records (days 1–{}) produced in {:.1} s with validate paused (broker CPU {:.1} s); validate ready again {:.1} s after its restart; all four drained the backlog {:.1} s after that",
            plan.days - 1,
            produced_replay.as_secs_f64(),
            broker_producing.as_secs_f64(),
            restart.as_secs_f64(),
            replay_wall.as_secs_f64()
        );
    } else {
        println!(
            "replay: {replay_records} raw records (days 1–{}) produced in {:.1} s; all four caught up {:.1} s after the first was produced",
            plan.days - 1,
            produced_replay.as_secs_f64(),
            replay_wall.as_secs_f64()
        );
    }

    // 4. The last day, live.
    let t2 = Instant::now();
    let mut live_records = 0;
    for m in messages.iter().filter(|m| {
        m.queue == afregning_simulator::Queue::Timeseries
            && day_of.get(m.id.as_str()) == Some(&last_day)
    }) {
        live_records += writer.publish(m).await?;
    }
    let last_ack_ms = now_ms();
    let last_ack = Instant::now();
    let want_days = plan.days as i32;
    loop {
        let settled = tail.settled(want_days);
        if settled as u64 >= n {
            break;
        }
        fleet.check_alive()?;
        if Instant::now() >= deadline {
            bail!(
                "only {settled} of {n} metering points have a provisional version with {want_days} days before the deadline"
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (last_ready_ms, all_settled) = tail.with(|s| {
        let last = s
            .by_gsrn
            .values()
            .filter_map(|v| v.first_with_days.range(want_days..).map(|(_, t)| *t).min())
            .max()
            .unwrap_or(0);
        (last, s.by_gsrn.len())
    });
    let streaming_latency = Duration::from_millis((last_ready_ms - last_ack_ms).max(0) as u64);
    fleet
        .wait_caught_up(Duration::from_secs(3), deadline)
        .await
        .context("after the last day")?;
    let live_batches = fleet.batches_since(t2);
    let recalculation = match args.replay {
        Some(stage) => Some(
            recalc::run(
                &mut fleet,
                &tail,
                &template,
                &topics_handle,
                stage,
                billing,
                deadline,
            )
            .await?,
        ),
        None => None,
    };
    let stalls = fleet.stalls();
    let final_samples = fleet.stop().await?;
    let state: BTreeMap<Stage, u64> = Stage::ALL
        .iter()
        .map(|s| {
            (
                *s,
                procfs::dir_bytes(&work.path().join(format!("state-{}", s.arg()))),
            )
        })
        .collect();
    let changelogs = changelog_bytes(
        &env.bootstrap_servers,
        &env.group("load-month-changelogs"),
        &env.namespace,
    )?;
    let (provisional_records, latest) = tail.with(|s| {
        (
            s.records,
            s.by_gsrn
                .iter()
                .map(|(g, v)| (g.clone(), v.latest.clone()))
                .collect::<BTreeMap<_, _>>(),
        )
    });
    tail.stop()?;

    // 5. The pure engine and the batch baseline.
    let engine = engine_statements(&truth, billing)?;
    let terms = {
        let products = child::products()?;
        let default = products.products.first().map(|p| p.id.clone());
        afregning_processors::settle::core::product_terms(
            &products,
            default.as_deref(),
            &truth.metering_points[0].gsrn.to_string(),
            billing,
        )
    };
    let batch_report = if args.skip_batch {
        None
    } else {
        Some(
            batch::run(
                &env.database_url,
                &truth,
                batch::MonthBounds::new(plan.year, plan.month)?,
                &terms,
                args.pg_parallel_workers,
            )
            .await
            .context("the batch baseline")?,
        )
    };

    // 6. Report.
    println!();
    println!(
        "== Streaming: replay of days 1–{} ({replay_series} series, {replay_values} values), per processor ==",
        plan.days - 1
    );
    println!(
        "units: a value = one quarter-hour quantity; a series = one metering point's day (one raw RSM-012 record)"
    );
    println!(
        "{:<10} {:>9} {:>9} {:>9} {:>11} {:>10} {:>10} {:>13} {:>13}",
        "processor",
        "records",
        "outputs",
        "window s",
        "values/s",
        "series/s",
        "CPU s",
        "values/CPU-s",
        "series/CPU-s"
    );
    for stage in Stage::ALL {
        let f = figures(
            replay_batches.get(&stage).map_or(&[][..], Vec::as_slice),
            t1,
        );
        let cpu = cpu_delta(&after_reference, &after_replay, stage);
        println!(
            "{:<10} {:>9} {:>9} {:>9} {:>11} {:>10} {:>10} {:>13} {:>13}",
            stage.name(),
            f.records,
            f.outputs,
            secs(f.window),
            rate(replay_values as f64, f.window),
            rate(replay_series as f64, f.window),
            secs(cpu),
            rate(replay_values as f64, cpu),
            rate(replay_series as f64, cpu),
        );
    }
    let replay_cpu: Duration = Stage::ALL
        .iter()
        .map(|s| cpu_delta(&after_reference, &after_replay, *s))
        .sum();
    println!(
        "{:<10} {:>9} {:>9} {:>9} {:>11} {:>10} {:>10} {:>13} {:>13}",
        "chained",
        replay_records,
        "",
        secs(replay_wall),
        rate(replay_values as f64, replay_wall),
        rate(replay_series as f64, replay_wall),
        secs(replay_cpu),
        rate(replay_values as f64, replay_cpu),
        rate(replay_series as f64, replay_cpu),
    );
    println!(
        "{:<10} {:>9} {:>9} {:>9} {:>11} {:>10} {:>10} {:>13} {:>13}",
        "broker",
        "",
        "",
        "",
        "",
        "",
        secs(broker_replay),
        rate(replay_values as f64, broker_replay),
        rate(replay_series as f64, broker_replay),
    );
    for stage in Stage::ALL {
        let batches = replay_batches.get(&stage).map_or(&[][..], Vec::as_slice);
        if args.print_batches {
            for b in batches {
                println!(
                    "  batch {:<10} at +{:.3} s: {} records, {} outputs, round {} ms",
                    stage.name(),
                    (b.at - t1).as_secs_f64(),
                    b.records,
                    b.outputs,
                    b.round_ms
                );
            }
        }
        let mut rounds: Vec<u64> = batches.iter().map(|b| b.round_ms).collect();
        rounds.sort_unstable();
        let f = figures(batches, t1);
        println!(
            "  {:<10} {} batches, {:.0} records a batch; commit round p50 {} ms, max {} ms; in a round {:.0} % of the window",
            stage.name(),
            batches.len(),
            f.records as f64 / batches.len().max(1) as f64,
            rounds.get(rounds.len() / 2).copied().unwrap_or(0),
            rounds.last().copied().unwrap_or(0),
            100.0 * busy(batches).as_secs_f64() / f.window.as_secs_f64().max(1e-3)
        );
    }
    println!(
        "(window: from {} to the processor's last batch that did work, so a later processor's window includes the wait for the earlier ones; chained: to the last batch of any processor. CPU: from /proc, utime + stime over the phase; broker: the local broker's process over the same window{})",
        if backlog {
            "validate's restart on the full raw topic (its `ready`)"
        } else {
            "the first raw record produced"
        },
        if backlog {
            ", its CPU while the backlog was produced not included"
        } else {
            ", producing included"
        }
    );

    println!();
    println!(
        "== Streaming: the month's last day ({live_series} series, {live_values} values produced with the pipeline caught up) =="
    );
    println!(
        "{live_records} raw records produced in {:.2} s; last acknowledged → every metering point's provisional lines with {want_days} days: {:.2} s ({} metering points, {provisional_records} provisional versions in all)",
        (last_ack - t2).as_secs_f64(),
        streaming_latency.as_secs_f64(),
        all_settled
    );
    for stage in Stage::ALL {
        let f = figures(live_batches.get(&stage).map_or(&[][..], Vec::as_slice), t2);
        let rel = |t: Option<Instant>| {
            t.map_or("-".to_string(), |t| {
                if t >= last_ack {
                    format!("+{:.2}", (t - last_ack).as_secs_f64())
                } else {
                    format!("-{:.2}", (last_ack - t).as_secs_f64())
                }
            })
        };
        println!(
            "  {:<10} {:>7} records; first batch {:>7} s, last batch {:>7} s after the last acknowledgement; stall re-seeks so far {}",
            stage.name(),
            f.records,
            rel(f.first),
            rel(f.last),
            stalls.get(&stage).copied().unwrap_or(0)
        );
    }

    if let Some(r) = &recalculation {
        r.print(replay_values + live_values, series_total);
    }

    println!();
    println!("== Streaming: per process (whole run) and sizes ==");
    println!(
        "{:<10} {:>10} {:>14} {:>12} {:>20} {:>14} {:>18}",
        "processor",
        "CPU s",
        "peak RSS MiB",
        "state MiB",
        "state B/series-day",
        "changelog MiB",
        "changelog B/series"
    );
    for stage in Stage::ALL {
        let s = final_samples.get(&stage).copied().unwrap_or_default();
        let st = state.get(&stage).copied().unwrap_or(0);
        let (cl, _) = changelogs.get(&stage).copied().unwrap_or_default();
        println!(
            "{:<10} {:>10} {:>14} {:>12} {:>20} {:>14} {:>18}",
            stage.name(),
            secs(s.cpu),
            mib(s.peak_rss),
            mib(st),
            thousands(st as f64 / series_total as f64),
            mib(cl),
            thousands(cl as f64 / series_total as f64),
        );
    }
    println!(
        "(state: the RocksDB directory after the processor stopped; changelog: key + value bytes on its changelog topics, commit markers included)"
    );
    let streaming_cpu: Duration = Stage::ALL
        .iter()
        .map(|s| cpu_delta(&after_reference, &final_samples, *s))
        .sum();

    // 7. Checks.
    let mut mismatches = Vec::new();
    if let Some(r) = &recalculation {
        mismatches.extend(r.mismatches(n));
    }
    for (gsrn, statement) in &engine {
        let want = statement.known_totals.excl_vat.round_dp(6);
        match latest.get(gsrn) {
            Some(p) if p.total_excl_vat == want => {}
            Some(p) => mismatches.push(format!(
                "{gsrn}: streaming provisional total {} (version {}, {} days), engine {want}",
                p.total_excl_vat, p.version, p.days_settled
            )),
            None => mismatches.push(format!("{gsrn}: no provisional settlement")),
        }
        if let Some(b) = &batch_report {
            match b.totals.get(gsrn) {
                Some(t) if *t == want => {}
                Some(t) => mismatches.push(format!("{gsrn}: batch SQL total {t}, engine {want}")),
                None => mismatches.push(format!("{gsrn}: no batch SQL total")),
            }
            for line in &statement.lines {
                let label = engine_label(&line.source);
                let got = b.lines.get(&(gsrn.clone(), label.clone()));
                if got != Some(&line.known_amount.round_dp(6)) {
                    mismatches.push(format!(
                        "{gsrn} {label}: batch SQL {got:?}, engine {}",
                        line.known_amount
                    ));
                }
            }
        }
    }

    println!();
    match &batch_report {
        None => println!("== Batch baseline: skipped (--skip-batch) =="),
        Some(b) => {
            println!(
                "== Batch baseline: PostgreSQL, {} rows in metering_data (partitioned by UTC month), max_parallel_workers_per_gather {} ==",
                b.rows, b.parallel_workers
            );
            let cpu_note = if b.backend_cpu_read {
                ""
            } else {
                " (backend CPU not readable: wall time only)"
            };
            println!(
                "load (binary COPY of {}-row batches into staging + the sink's INSERT … ON CONFLICT): {} s wall, backend CPU {} s, client CPU {} s{cpu_note}",
                batch::BATCH_ROWS,
                secs(b.load_wall),
                secs(b.load_backend_cpu),
                secs(b.load_client_cpu)
            );
            println!(
                "settlement SQL over the whole month (CREATE TABLE AS, lines and totals): {} s wall, backend CPU {} s; {} lines, {} totals",
                secs(b.sql_wall),
                secs(b.sql_backend_cpu),
                b.lines.len(),
                b.totals.len()
            );
        }
    }

    println!();
    println!("== Checks: monthly totals excl. VAT per metering point ==");
    println!(
        "{} metering points: streaming provisional totals, {}the pure engine's settle_month on the ground truth; {} mismatches",
        engine.len(),
        if batch_report.is_some() {
            "batch SQL totals and lines, "
        } else {
            ""
        },
        mismatches.len()
    );
    for m in mismatches.iter().take(20) {
        println!("  MISMATCH {m}");
    }

    println!();
    println!(
        "== Ratios (this run, {} metering points × {} days) ==",
        n, plan.days
    );
    println!(
        "streaming CPU for the month (four processors, after the reference data): {} s",
        secs(streaming_cpu)
    );
    if let Some(b) = &batch_report {
        let batch_cpu = b.load_backend_cpu + b.load_client_cpu + b.sql_backend_cpu;
        let latency_ratio = b.sql_wall.as_secs_f64() / streaming_latency.as_secs_f64().max(1e-3);
        let cpu_ratio = batch_cpu.as_secs_f64() / streaming_cpu.as_secs_f64().max(1e-3);
        println!(
            "last series → every metering point's monthly lines: batch SQL {} s / streaming {} s = {:.2}× (goal ≥ 20× in streaming's favour: {})",
            secs(b.sql_wall),
            secs(streaming_latency),
            latency_ratio,
            if latency_ratio >= 20.0 {
                "met"
            } else {
                "not met"
            }
        );
        println!(
            "CPU for the month: batch {} s (load {} + client {} + SQL {}) / streaming {} s = {:.2}× (goal ≥ 1×, streaming no costlier: {})",
            secs(batch_cpu),
            secs(b.load_backend_cpu),
            secs(b.load_client_cpu),
            secs(b.sql_backend_cpu),
            secs(streaming_cpu),
            cpu_ratio,
            if cpu_ratio >= 1.0 { "met" } else { "not met" }
        );
    }

    // Extrapolation from the measured per-series costs.
    let target = u64::from(args.extrapolate_to);
    if target != n || plan.days != plan.days_in_month {
        let target_series = target * u64::from(plan.days_in_month);
        let f = target_series as f64 / replay_series as f64;
        println!();
        println!(
            "== EXTRAPOLATION (not measured): {target} metering points × {} days = {} series, linear in the per-series costs measured above ==",
            plan.days_in_month,
            thousands(target_series as f64)
        );
        println!(
            "streaming replay: {} s wall at the chained rate measured ({} series/s), {} processor CPU-s and {} broker CPU-s (at least {} s on this machine's {} cores)",
            thousands(replay_wall.as_secs_f64() * f),
            rate(replay_series as f64, replay_wall),
            thousands(replay_cpu.as_secs_f64() * f),
            thousands(broker_replay.as_secs_f64() * f),
            thousands((replay_cpu + broker_replay).as_secs_f64() * f / cores() as f64),
            cores()
        );
        for stage in Stage::ALL {
            let st = state.get(&stage).copied().unwrap_or(0) as f64 / series_total as f64;
            let cl = changelogs.get(&stage).map_or(0, |c| c.0) as f64 / series_total as f64;
            println!(
                "  {:<10} CPU {} s; state {} MiB; changelog {} MiB",
                stage.name(),
                thousands(cpu_delta(&after_reference, &after_replay, stage).as_secs_f64() * f),
                thousands(st * target_series as f64 / 1048576.0),
                thousands(cl * target_series as f64 / 1048576.0)
            );
        }
        let chained = replay_series as f64 / replay_wall.as_secs_f64().max(1e-3);
        println!(
            "the last day ({target} series): streaming at least {} s (the day's series at the chained replay rate; measured here: {} s for {n} series)",
            secs(Duration::from_secs_f64(target as f64 / chained)),
            secs(streaming_latency)
        );
        if let Some(b) = &batch_report {
            let rows_f = (target_series * 96) as f64 / b.rows as f64;
            println!(
                "batch: load {} s wall / {} CPU-s, SQL {} s wall / {} CPU-s (linear in rows; sorts and hash joins spilling to disk would make it worse)",
                thousands(b.load_wall.as_secs_f64() * rows_f),
                thousands((b.load_backend_cpu + b.load_client_cpu).as_secs_f64() * rows_f),
                thousands(b.sql_wall.as_secs_f64() * rows_f),
                thousands(b.sql_backend_cpu.as_secs_f64() * rows_f)
            );
        }
    }

    drop(work);
    env.cleanup()
        .await
        .context("cleaning up the run's namespace")?;
    if !mismatches.is_empty() {
        bail!(
            "{} mismatches between streaming, batch and the engine",
            mismatches.len()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stage_windows_and_rates() {
        let t = Instant::now();
        let batches = [
            Batch {
                at: t,
                records: 10,
                outputs: 5,
                round_ms: 3,
            },
            Batch {
                at: t + Duration::from_secs(2),
                records: 30,
                outputs: 15,
                round_ms: 4,
            },
        ];
        let f = figures(&batches, t);
        assert_eq!(
            (f.records, f.outputs, f.window),
            (40, 20, Duration::from_secs(2))
        );
        assert_eq!(rate(40.0, f.window), "20");
        // Two tasks' batches of one round count once; a later round adds its own.
        let round = |at: Duration, ms: u64| Batch {
            at: t + at,
            records: 1,
            outputs: 1,
            round_ms: ms,
        };
        let rounds = [
            round(Duration::from_millis(100), 100),
            round(Duration::from_millis(101), 100),
            round(Duration::from_millis(500), 50),
        ];
        assert_eq!(busy(&rounds), Duration::from_millis(151));
        assert_eq!(busy(&[]), Duration::ZERO);
        assert_eq!(rate(40.0, Duration::ZERO), "-");
    }
}

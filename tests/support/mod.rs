//! What the pipeline tests share: a deployment under its own topic prefix,
//! a simulated DataHub drained into its raw topics by the real connector,
//! the processors' settings, and reading a topic back.
#![allow(dead_code)] // each test file uses its own subset

pub mod portfolio;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use afregning_connect::Connector;
use afregning_connect::config::{
    BackoffConfig, ConnectConfig, KafkaConfig, OutboundConfig, QueueConfig, QueuesConfig, Secret,
};
use afregning_processors::pipeline::PipelineSettings;
use afregning_processors::shared::Wire;
use afregning_settlement::ProductCatalogue;
use afregning_simulator::{GroundTruth, Simulator, SimulatorConfig};
use afregning_testkit::TestEnv;
use afregning_topology::admin::Admin;
use afregning_topology::{Catalogue, TopologySettings};
use anyhow::Context;
use chrono::NaiveDate;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Headers;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

/// The example product catalogue every test settles with.
pub fn products() -> ProductCatalogue {
    serde_json::from_str(include_str!("../../deploy/product-catalogue.json")).expect("catalogue")
}

/// A deployment's catalogue under `prefix`, with its topology applied.
pub async fn deployment(env: &TestEnv, prefix: &str, partitions: u32) -> anyhow::Result<Catalogue> {
    let catalogue = Catalogue::new(TopologySettings {
        partitions,
        ..TopologySettings::with_prefix(prefix.to_string())
    })?;
    let admin = Admin::connect(catalogue.clone(), &env.bootstrap_servers, &env.registry_url)?;
    let report = admin.apply().await?;
    anyhow::ensure!(report.problems.is_empty(), "{}", report.render());
    Ok(catalogue)
}

/// A simulator for `config`'s scenario (client `test`, secret `test-secret`) on a free port.
pub async fn serve_simulator(
    mut config: SimulatorConfig,
) -> anyhow::Result<afregning_simulator::RunningSimulator> {
    config.auth.client_id = "test".into();
    config.auth.client_secret = "test-secret".into();
    Ok(tokio::task::spawn_blocking(move || Simulator::new(config))
        .await??
        .serve("127.0.0.1:0".parse()?)
        .await?)
}

/// The connector's configuration for a test: `simulator` (client `test`, secret
/// `test-secret`) into `catalogue`'s topics, quick idle and retry intervals, the inbound log
/// under `work`, outbound off, the test's database as the portfolio key store.
pub fn connect_config(
    env: &TestEnv,
    catalogue: &Catalogue,
    simulator: &afregning_simulator::RunningSimulator,
    work: &Path,
) -> ConnectConfig {
    let mut connect = ConnectConfig::default();
    connect.datahub.base_url = simulator.url.clone();
    connect.datahub.token_url = simulator.token_url();
    connect.datahub.client_id = "test".into();
    connect.datahub.client_secret = Secret::new("test-secret");
    connect.queues = QueuesConfig::all(QueueConfig::every(20, 200));
    connect.retry = BackoffConfig {
        initial_ms: 50,
        max_ms: 1_000,
        multiplier: 2.0,
    };
    connect.requests_per_second = 500;
    connect.kafka = KafkaConfig {
        bootstrap_servers: env.bootstrap_servers.clone(),
        schema_registry_url: env.registry_url.clone(),
        topology: catalogue.settings().clone(),
        ..KafkaConfig::default()
    };
    connect.inbound_log.dir = work.join("inbound");
    connect.outbound = OutboundConfig {
        enabled: false,
        // The test's schema is the key store of customers' own keys (decision 0148).
        portfolio_key_store_url: Some(env.database_url.clone()),
        ..OutboundConfig::default()
    };
    connect.admin_listen = "127.0.0.1:0".parse().expect("an address");
    connect
}

/// Generates `config`'s scenario, drains every queue into `catalogue`'s raw
/// topics with the connector, publishes the spot prices of `[first, end)`,
/// and returns the ground truth.
pub async fn drain_datahub(
    env: &TestEnv,
    catalogue: &Catalogue,
    config: SimulatorConfig,
    work: &Path,
    spot_days: (NaiveDate, NaiveDate),
) -> anyhow::Result<Arc<GroundTruth>> {
    let simulator = serve_simulator(config).await?;
    let truth = simulator.handle().ground_truth();
    let connect = connect_config(env, catalogue, &simulator, work);
    let kafka = connect.kafka.clone();
    let connector = Connector::new(connect).start().await?;
    let started = Instant::now();
    while !simulator.handle().is_empty() {
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(600),
            "DataHub's queues were not drained: {:?}",
            simulator.handle().queue_depths()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    connector.shutdown().await;
    let spot = afregning_connect::spot_prices::SpotPricesConfig {
        url: simulator.spot_prices_url(),
        start: Some(spot_days.0),
        end: Some(spot_days.1),
        once: true,
        kafka,
        admin_listen: "127.0.0.1:0".parse()?,
        ..Default::default()
    };
    let (_stop, stop_rx) = tokio::sync::watch::channel(false);
    afregning_connect::spot_prices::run(spot, stop_rx).await?;
    simulator.shutdown().await;
    Ok(truth)
}

/// The processors' settings for tests: the quick local settings with the
/// example catalogue.
pub fn pipeline_settings(
    env: &TestEnv,
    prefix: &str,
    state_dir: &Path,
    supplier_gln: &str,
) -> PipelineSettings {
    PipelineSettings::quick(
        &env.bootstrap_servers,
        prefix,
        state_dir,
        supplier_gln,
        products(),
    )
}

/// One record as read back.
#[derive(Debug, Clone)]
pub struct Raw {
    /// Partition.
    pub partition: i32,
    /// Key bytes.
    pub key: Option<Vec<u8>>,
    /// Value bytes.
    pub value: Option<Vec<u8>>,
    /// Headers.
    pub headers: Vec<(String, Vec<u8>)>,
}

/// Every record of `topic`, partition by partition in offset order. Reads to
/// the partition ends the fetches report (`enable.partition.eof`): the local
/// broker's ListOffsets under-reports high watermarks (decision 0057).
pub fn read_raw(env: &TestEnv, topic: &str) -> anyhow::Result<Vec<Raw>> {
    let consumer: BaseConsumer = env
        .kafka_config()
        .set("group.id", env.group("reader"))
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .create()?;
    let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10))?;
    let partitions = metadata.topics()[0].partitions().len() as i32;
    let mut list = TopicPartitionList::new();
    for p in 0..partitions {
        list.add_partition_offset(topic, p, Offset::Beginning)?;
    }
    consumer.assign(&list)?;
    let mut by_partition: BTreeMap<i32, BTreeMap<i64, Raw>> = BTreeMap::new();
    let mut ended = std::collections::BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    while ended.len() < partitions as usize {
        anyhow::ensure!(
            Instant::now() < deadline,
            "{topic}: partitions {ended:?} of {partitions} read to the end"
        );
        match consumer.poll(Duration::from_millis(500)) {
            None => {}
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(p))) => {
                ended.insert(p);
            }
            Some(Err(e)) => return Err(e.into()),
            Some(Ok(message)) => {
                ended.remove(&message.partition());
                let headers = message
                    .headers()
                    .map(|h| {
                        h.iter()
                            .map(|x| (x.key.to_string(), x.value.unwrap_or_default().to_vec()))
                            .collect()
                    })
                    .unwrap_or_default();
                by_partition.entry(message.partition()).or_default().insert(
                    message.offset(),
                    Raw {
                        partition: message.partition(),
                        key: message.key().map(<[u8]>::to_vec),
                        value: message.payload().map(<[u8]>::to_vec),
                        headers,
                    },
                );
            }
        }
    }
    Ok(by_partition
        .into_values()
        .flat_map(BTreeMap::into_values)
        .collect())
}

/// Every record of `topic` decoded as `T`, de-duplicated by the idempotency
/// key header (a replay re-emits the same key; the first copy counts).
pub fn read_all<T: afregning_topology::records::AvroRecord>(
    env: &TestEnv,
    topic: &str,
    wire: &Wire,
) -> anyhow::Result<Vec<T>> {
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for raw in read_raw(env, topic)? {
        let key = raw
            .headers
            .iter()
            .find(|(k, _)| k == afregning_processors::runtime::IDEMPOTENCY_KEY_HEADER)
            .map(|(_, v)| v.clone());
        if let Some(key) = key
            && !seen.insert(key)
        {
            continue;
        }
        if let Some(value) = raw.value {
            out.push(
                wire.decode::<T>(&value)
                    .with_context(|| format!("decoding {topic}"))?,
            );
        }
    }
    Ok(out)
}

/// Produces `records` to `topic` unchanged (same partition, key, value, headers).
pub async fn copy_records(env: &TestEnv, topic: &str, records: &[Raw]) -> anyhow::Result<()> {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &env.bootstrap_servers)
        .set("enable.idempotence", "true")
        .create()?;
    for r in records {
        let mut headers = rdkafka::message::OwnedHeaders::new();
        for (k, v) in &r.headers {
            headers = headers.insert(rdkafka::message::Header {
                key: k,
                value: Some(v.as_slice()),
            });
        }
        let mut record: FutureRecord<'_, Vec<u8>, Vec<u8>> = FutureRecord::to(topic)
            .partition(r.partition)
            .headers(headers);
        if let Some(k) = &r.key {
            record = record.key(k);
        }
        if let Some(v) = &r.value {
            record = record.payload(v);
        }
        producer
            .send(record, Duration::from_secs(30))
            .await
            .map_err(|(e, _)| e)?;
    }
    Ok(())
}

/// A simulated DataHub month of `metering_points` in grid area 344 with every day complete:
/// no corrections, estimates, gaps, late data, aggregations or faults.
pub fn complete_month(first_day: NaiveDate, metering_points: u32) -> SimulatorConfig {
    let mut config = SimulatorConfig::default();
    config.scenario.metering_points = metering_points;
    config.scenario.first_day = first_day;
    config.scenario.days = 31;
    config.scenario.grid_areas = vec!["344".into()];
    config.scenario.correction_share = 0.0;
    config.scenario.estimated_share = 0.0;
    config.scenario.missing_share = 0.0;
    config.scenario.late_share = 0.0;
    config.scenario.aggregations = false;
    config.faults = afregning_simulator::FaultConfig::none();
    config
}

/// Runs the `afregning` binary with `args`, `env` and `stdin`; its exit code, stdout, stderr.
pub fn afregning(
    args: &[&str],
    env: &[(&str, &str)],
    stdin: &str,
) -> anyhow::Result<(i32, String, String)> {
    use std::io::Write;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_afregning"))
        .args(args)
        .envs(env.iter().copied())
        .env("RUST_LOG", "debug,rdkafka=info,sqlx=info")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    child
        .stdin
        .take()
        .context("stdin")?
        .write_all(stdin.as_bytes())?;
    let out = child.wait_with_output()?;
    Ok((
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

/// Projects the portfolio's events `topic` into the read model (as `afregning portfolio
/// project`) until `expected` events were read; fails after 60 s.
pub async fn project_portfolio(
    env: &TestEnv,
    pool: &sqlx::PgPool,
    topic: &str,
    us: &str,
    expected: u64,
) -> anyhow::Result<afregning_portfolio::projector::Projected> {
    let (seen_tx, mut seen_rx) = tokio::sync::watch::channel(0u64);
    let config = afregning_portfolio::projector::ProjectorConfig {
        bootstrap_servers: env.bootstrap_servers.clone(),
        topic: topic.to_string(),
        partitions: 2,
        us: afregning_portfolio::Gln::parse(us).context("our GLN")?,
    };
    let done = tokio::time::timeout(
        Duration::from_secs(60),
        afregning_portfolio::projector::run(
            pool,
            &config,
            move |p| {
                let _ = seen_tx.send(p.events);
            },
            async move {
                let _ = seen_rx.wait_for(|n| *n >= expected).await;
            },
        ),
    )
    .await?
    .map_err(anyhow::Error::msg)?;
    anyhow::ensure!(done.events == expected, "{done:?} of {expected}");
    Ok(done)
}

/// Fails if any record (key or value) of any topic of `catalogue`, changelogs included,
/// holds one of `needles` (CPR numbers, names) in plaintext; the records per topic.
pub fn topics_without(
    env: &TestEnv,
    catalogue: &Catalogue,
    needles: &[&str],
) -> anyhow::Result<BTreeMap<String, usize>> {
    let mut counts = BTreeMap::new();
    for spec in catalogue.topics() {
        let records = read_raw(env, &spec.name)?;
        counts.insert(spec.name.clone(), records.len());
        for r in records {
            let bytes = [r.key.unwrap_or_default(), r.value.unwrap_or_default()].concat();
            let text = String::from_utf8_lossy(&bytes);
            anyhow::ensure!(
                needles.iter().all(|n| !text.contains(n)),
                "plaintext personal data on {}",
                spec.name
            );
        }
    }
    Ok(counts)
}

/// Fails if any row of any table of the test's schema holds one of `needles` in plaintext;
/// the rows per table.
pub async fn tables_without(
    pool: &sqlx::PgPool,
    needles: &[&str],
) -> anyhow::Result<BTreeMap<String, usize>> {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables \
         WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'",
    )
    .fetch_all(pool)
    .await?;
    let mut counts = BTreeMap::new();
    for table in tables {
        let rows: Vec<String> = sqlx::query_scalar(&format!("SELECT t::text FROM \"{table}\" t"))
            .fetch_all(pool)
            .await?;
        anyhow::ensure!(
            rows.iter().all(|r| needles.iter().all(|n| !r.contains(n))),
            "plaintext in {table}"
        );
        counts.insert(table, rows.len());
    }
    Ok(counts)
}

//! What the replay tests share: the corrected product catalogue, running the
//! `afregning replay` command, reading recorded runs, and the latest
//! provisional version per metering point.
#![allow(dead_code)] // each test file uses its own subset

use std::collections::BTreeMap;
use std::process::Command;

use afregning_processors::replay::ReplaySummary;
use afregning_settlement::ProductCatalogue;
use afregning_testkit::TestEnv;
use afregning_topology::records::ProvisionalSettlement;
use chrono::NaiveDate;
use rust_decimal::Decimal;
use sqlx::Row;

/// The first day of the month every replay test settles.
pub fn march() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 3, 1).expect("date")
}

/// The example catalogue with March's margin corrected from 0.0800 to 0.0950
/// DKK/kWh (April on: the old margin again).
pub fn corrected(products: &ProductCatalogue) -> ProductCatalogue {
    let mut out = products.clone();
    let product = &mut out.products[0];
    let base = product.versions[0].clone();
    let mut march_version = base.clone();
    march_version.valid_from = march();
    march_version.margin = afregning_settlement::product::Margin::Flat {
        per_kwh: Decimal::new(950, 4),
    };
    let mut april = base;
    april.valid_from = NaiveDate::from_ymd_opt(2026, 4, 1).expect("date");
    product.versions.push(march_version);
    product.versions.push(april);
    out
}

/// The latest provisional version per metering point.
pub fn latest(provisional: &[ProvisionalSettlement]) -> BTreeMap<String, ProvisionalSettlement> {
    let mut out: BTreeMap<String, ProvisionalSettlement> = BTreeMap::new();
    for p in provisional {
        if out.get(&p.gsrn).is_none_or(|l| l.version < p.version) {
            out.insert(p.gsrn.clone(), p.clone());
        }
    }
    out
}

/// `afregning replay ARGS` as a command against `env` under `prefix`.
pub fn replay_command(env: &TestEnv, prefix: &str, partitions: u32, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_afregning"));
    command
        .arg("replay")
        .args(args)
        .env("KAFKA_BOOTSTRAP_SERVERS", &env.bootstrap_servers)
        .env("SCHEMA_REGISTRY_URL", &env.registry_url)
        .env("DATABASE_URL", &env.database_url)
        .env("AFREGNING_TOPIC_PREFIX", prefix)
        .env("AFREGNING_TOPIC_PARTITIONS", partitions.to_string())
        .env("AFREGNING_OPERATOR", "test-operator")
        .env("RUST_LOG", "info,rdkafka=warn");
    command
}

/// Runs `afregning replay ARGS` to its end, printing what it said.
pub fn replay_cli(
    env: &TestEnv,
    prefix: &str,
    partitions: u32,
    args: &[&str],
) -> anyhow::Result<std::process::Output> {
    let output = replay_command(env, prefix, partitions, args).output()?;
    eprintln!(
        "afregning replay {args:?}: {}\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(output)
}

/// The recorded state and summary of run `run_id`.
pub async fn summary_of_run(
    pool: &sqlx::PgPool,
    run_id: &str,
) -> anyhow::Result<(String, ReplaySummary)> {
    let row = sqlx::query("SELECT state, summary FROM replay_run WHERE run_id = $1")
        .bind(run_id)
        .fetch_one(pool)
        .await?;
    let summary: Option<serde_json::Value> = row.try_get("summary")?;
    let summary = match summary {
        Some(s) => serde_json::from_value(s)?,
        None => ReplaySummary::default(),
    };
    Ok((row.try_get("state")?, summary))
}

/// The newest recorded run.
pub async fn newest_run(pool: &sqlx::PgPool) -> anyhow::Result<String> {
    Ok(
        sqlx::query_scalar("SELECT run_id FROM replay_run ORDER BY started_at DESC LIMIT 1")
            .fetch_one(pool)
            .await?,
    )
}

/// The sinks' settings for the deployment under `prefix`.
pub fn sink_config(
    env: &TestEnv,
    prefix: &str,
    partitions: u32,
) -> afregning_sinks::config::SinkConfig {
    afregning_sinks::config::SinkConfig {
        bootstrap_servers: env.bootstrap_servers.clone(),
        schema_registry_url: env.registry_url.clone(),
        database_url: env.database_url.clone(),
        topic_prefix: prefix.to_string(),
        partitions,
        ..Default::default()
    }
}

/// Copies every record of `from` to `to` (same partition, key, value,
/// headers), all sends in flight at once: in offset order per partition (an
/// idempotent producer keeps it), and far faster than one send at a time.
pub async fn copy_topic(env: &TestEnv, from: &str, to: &str) -> anyhow::Result<usize> {
    use rdkafka::message::{Header, OwnedHeaders};
    use rdkafka::producer::{FutureProducer, FutureRecord};
    let records = crate::support::read_raw(env, from)?;
    let producer: FutureProducer = env
        .kafka_config()
        .set("enable.idempotence", "true")
        .set("linger.ms", "20")
        .create()?;
    // Enqueued one after the other (the producer's queue keeps the order), then
    // every delivery awaited.
    let mut deliveries = Vec::with_capacity(records.len());
    for r in &records {
        let mut headers = OwnedHeaders::new();
        for (k, v) in &r.headers {
            headers = headers.insert(Header {
                key: k,
                value: Some(v.as_slice()),
            });
        }
        let mut record: FutureRecord<'_, Vec<u8>, Vec<u8>> =
            FutureRecord::to(to).partition(r.partition).headers(headers);
        if let Some(k) = &r.key {
            record = record.key(k);
        }
        if let Some(v) = &r.value {
            record = record.payload(v);
        }
        deliveries.push(producer.send_result(record).map_err(|(e, _)| e)?);
    }
    for delivery in deliveries {
        delivery.await?.map_err(|(e, _)| e)?;
    }
    Ok(records.len())
}

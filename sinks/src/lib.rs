//! Sinks: afregning's results into PostgreSQL (TimescaleDB where available)
//! for operators and dashboards, and final statements to the ERP topic for
//! billing. They write fast (binary COPY into staging tables, one upsert per
//! table per batch), never twice (natural keys and idempotent upserts), never
//! partially (data and positions in one transaction), and survive the
//! database going away (retry with backoff, holding the batch, pausing the
//! consumers).
//!
//! Layout (Vector's: config, sink plumbing, service):
//! - [`config`]: [`SinkConfig`], the contract with the operator.
//! - [`schema`]: embedded sqlx migrations and the storage planner for
//!   `metering_data` (hypertable or monthly partitions).
//! - [`source`]: the Kafka consumers (positions from the database, back-pressure).
//! - [`runner`]: the batch loop and commit protocol both sinks share.
//! - What else both sinks share: [`positions`] (where a sink has read to,
//!   stored with its data, and the lock that makes a second instance a
//!   standby), [`dead_letters`] (the records a sink cannot use) and
//!   [`producer`] (the Kafka producer they publish with).
//! - [`timescale`]: the database sink; [`erp`]: the ERP sink and file export.
//! - [`reconciliation`]: a month's reconciliation read back for reports.
//! - [`copy`]: PostgreSQL's binary COPY format.
//! - [`events`], [`admin`]: metrics, `/health`, `/ready`, `/metrics`.
//!
//! `docs/sinks.md` describes the schema, the commit protocol and operations;
//! `docs/decisions/0060`-`0064` say why.

pub mod admin;
pub mod config;
pub mod copy;
pub mod dead_letters;
pub mod erp;
pub mod events;
pub mod positions;
pub mod producer;
pub mod reconciliation;
pub mod retry;
pub mod runner;
pub mod schema;
pub mod source;
pub mod timescale;

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use afregning_topology::{Codec, Component, topics};
use chrono::Utc;

pub use config::SinkConfig;
pub use runner::{RunMode, RunReport, SinkStatus};
pub use schema::{MigrationReport, StorageMode, StorageSettings, TimescaleMode};

/// Why a sink stopped.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// The configuration cannot work.
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    /// The schema could not be brought up to date.
    #[error(transparent)]
    Schema(#[from] schema::SchemaError),
    /// Kafka refused the client configuration.
    #[error("Kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    /// An error retrying cannot fix (a bad statement, a broken invariant):
    /// the batch is uncommitted and the position unchanged.
    #[error("{0}")]
    Fatal(String),
}

/// Applies the migrations and the storage plan (`afregning sink migrate`).
pub async fn migrate(config: &SinkConfig) -> Result<MigrationReport, SinkError> {
    let mut conn = schema::connect(&config.database_url, "afregning sink migrate")
        .await
        .map_err(schema::SchemaError::from)?;
    Ok(schema::migrate(&mut conn, &config.storage, Utc::now().date_naive()).await?)
}

/// Migrates, retrying while the database is unreachable (a sink may start
/// before its database), until `shutdown` resolves.
async fn migrate_when_reachable(
    config: &SinkConfig,
    shutdown: &mut (impl Future<Output = ()> + Unpin),
) -> Result<Option<MigrationReport>, SinkError> {
    let mut backoff = retry::Backoff::new(
        Duration::from_millis(config.retry_initial_ms),
        Duration::from_millis(config.retry_max_ms),
    );
    loop {
        match migrate(config).await {
            Ok(report) => return Ok(Some(report)),
            Err(SinkError::Schema(error)) if error.is_retriable() => {
                let delay = backoff.next_delay();
                tracing::warn!(%error, ?delay, "database not reachable for migrations; retrying");
                tokio::select! {
                    () = &mut *shutdown => return Ok(None),
                    () = tokio::time::sleep(delay) => {}
                }
            }
            Err(error) => return Err(error),
        }
    }
}

/// What one sink run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkRun {
    /// The consumer name (positions, lock, group).
    pub consumer: String,
    /// Migrations applied at start.
    pub migration: Option<MigrationReport>,
    /// The loop's report.
    pub report: RunReport,
}

/// Runs the database sink (`afregning sink run timescale`) until `shutdown`
/// resolves, or until caught up.
pub async fn run_timescale(
    config: &SinkConfig,
    mode: RunMode,
    status: Arc<SinkStatus>,
    shutdown: impl Future<Output = ()>,
) -> Result<SinkRun, SinkError> {
    config.validate()?;
    let codec = Codec::new(config.catalogue()?, &config.schema_registry_url);
    let consumer = config.consumer_name_for(Component::PostgresSink);
    let mut shutdown = Box::pin(shutdown);
    let Some(migration) = migrate_when_reachable(config, &mut shutdown).await? else {
        return Ok(SinkRun {
            consumer,
            migration: None,
            report: RunReport::default(),
        });
    };
    let producer = producer::create(&config.bootstrap_servers, &config.kafka)?;
    let path = if config.metering_direct_copy {
        timescale::service::MeteringPath::Auto
    } else {
        timescale::service::MeteringPath::MergeOnly
    };
    let handlers = (0..config.writers)
        .map(|_| {
            let service = timescale::service::TimescaleService::new(
                &config.database_url,
                &consumer,
                config.storage.clone(),
            )
            .with_metering_path(path);
            timescale::TimescaleHandler::new(codec.clone(), service, producer.clone())
        })
        .collect();
    tracing::info!(%consumer, storage = %migration.storage.mode, writers = config.writers, "database sink starting");
    let report = runner::run(handlers, config, &consumer, mode, status, shutdown).await?;
    Ok(SinkRun {
        consumer,
        migration: Some(migration),
        report,
    })
}

/// Runs the ERP sink (`afregning sink run erp`) until `shutdown` resolves, or
/// until caught up.
pub async fn run_erp(
    config: &SinkConfig,
    mode: RunMode,
    status: Arc<SinkStatus>,
    shutdown: impl Future<Output = ()>,
) -> Result<SinkRun, SinkError> {
    config.validate()?;
    let codec = Codec::new(config.catalogue()?, &config.schema_registry_url);
    let consumer = config.consumer_name_for(Component::ErpSink);
    let mut shutdown = Box::pin(shutdown);
    let Some(migration) = migrate_when_reachable(config, &mut shutdown).await? else {
        return Ok(SinkRun {
            consumer,
            migration: None,
            report: RunReport::default(),
        });
    };
    let producer = producer::create(&config.bootstrap_servers, &config.kafka)?;
    let handler = erp::ErpHandler::new(codec, producer, config, &consumer);
    tracing::info!(%consumer, "ERP sink starting");
    // One lane: the ERP handler locks its whole consumer.
    let report = runner::run(vec![handler], config, &consumer, mode, status, shutdown).await?;
    Ok(SinkRun {
        consumer,
        migration: Some(migration),
        report,
    })
}

/// What the sinks produced, for `afregning demo`'s summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkSummary {
    /// How `metering_data` is stored.
    pub storage: Option<StorageMode>,
    /// The database sink's run.
    pub database: RunReport,
    /// The ERP sink's run.
    pub erp: RunReport,
    /// The ERP topic's full name.
    pub erp_topic: String,
    /// Rows in each table afterwards.
    pub tables: Vec<(&'static str, i64)>,
    /// Wall-clock time of the run.
    pub elapsed: Duration,
}

/// The tables the summary counts.
pub const SUMMARY_TABLES: &[&str] = &[
    "metering_series",
    "metering_data",
    "daily_summary",
    "metering_point",
    "settlement_version",
    "settlement_line",
    "settlement_statement",
    "dead_letter",
    "erp_delivery",
];

fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

impl fmt::Display for SinkSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count =
            |report: &RunReport, name: &str| report.flushed.counts.get(name).copied().unwrap_or(0);
        writeln!(
            f,
            "sinks ({:.1} s): metering_series stored as {}",
            self.elapsed.as_secs_f64(),
            self.storage
                .map_or_else(|| "unknown".to_string(), |m| m.to_string())
        )?;
        writeln!(
            f,
            "  database sink: {} records in {} batches; {} duplicate records already applied; {} retries",
            thousands(self.database.records),
            self.database.batches,
            thousands(count(&self.database, "duplicate_records")),
            self.database.retries
        )?;
        for (table, (staged, changed)) in &self.database.flushed.tables {
            writeln!(
                f,
                "    {table:<28} {:>12} rows written ({} new or changed)",
                thousands(*staged),
                thousands(*changed)
            )?;
        }
        writeln!(
            f,
            "  ERP sink: {} statements and {} credit notes published to {}; {} duplicates skipped; {} refused (dead letters)",
            count(&self.erp, "statements_published"),
            count(&self.erp, "credit_notes_published"),
            self.erp_topic,
            count(&self.erp, "duplicates_skipped"),
            count(&self.erp, "rejected") + count(&self.erp, "undecodable"),
        )?;
        let tables: Vec<String> = self
            .tables
            .iter()
            .map(|(t, n)| format!("{t} {}", thousands(u64::try_from(*n).unwrap_or(0))))
            .collect();
        writeln!(f, "  tables now: {}", tables.join(" · "))
    }
}

/// Runs both sinks until they have caught up with their topics, then counts
/// the tables: what `afregning demo` calls after the processors finished.
pub async fn run_until_caught_up(config: &SinkConfig) -> Result<SinkSummary, SinkError> {
    let started = Instant::now();
    let (database, erp) = tokio::join!(
        run_timescale(
            config,
            RunMode::UntilCaughtUp,
            Arc::new(SinkStatus::default()),
            std::future::pending()
        ),
        run_erp(
            config,
            RunMode::UntilCaughtUp,
            Arc::new(SinkStatus::default()),
            std::future::pending()
        ),
    );
    let (database, erp) = (database?, erp?);
    let mut conn = schema::connect(&config.database_url, "afregning sink summary")
        .await
        .map_err(schema::SchemaError::from)?;
    let mut tables = Vec::new();
    for table in SUMMARY_TABLES {
        let rows: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
            .fetch_one(&mut conn)
            .await
            .map_err(schema::SchemaError::from)?;
        tables.push((*table, rows));
    }
    let erp_topic = config
        .catalogue()?
        .spec(topics::ERP_STATEMENTS.id())
        .map(|s| s.name.clone())
        .unwrap_or_default();
    Ok(SinkSummary {
        storage: database.migration.map(|m| m.storage.mode),
        database: database.report,
        erp: erp.report,
        erp_topic,
        tables,
        elapsed: started.elapsed(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }
}

//! The database schema: sqlx migrations embedded in the binary, then the
//! storage of `metering_series` (and the `metering_data` view over it) planned for this server ([`storage`]).
//!
//! Applied by `afregning sink migrate` and again at every sink start (both are
//! idempotent, and sqlx takes an advisory lock so concurrent starts queue).

pub mod storage;

use std::borrow::Cow;

use chrono::NaiveDate;
use futures::future::BoxFuture;
use sqlx::error::BoxDynError;
use sqlx::migrate::{Migration, MigrationSource, MigrationType, Migrator};
use sqlx::{Connection, PgConnection};

pub use storage::{StorageMode, StorageReport, StorageSettings, TimescaleMode};

/// The migrations in `sinks/migrations/` as (version, description, SQL),
/// compiled into the binary so a deployment needs no files next to it. (The
/// workspace builds sqlx without its macros, so this list stands in for
/// `sqlx::migrate!`; a test checks it matches the directory. Checksums are
/// sqlx's own, so `sqlx migrate info` agrees.)
pub const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "tables",
        include_str!("../../migrations/0001_tables.sql"),
    ),
    (2, "views", include_str!("../../migrations/0002_views.sql")),
    (3, "erp", include_str!("../../migrations/0003_erp.sql")),
    (
        10,
        "api_audit",
        include_str!("../../migrations/0010_api_audit.sql"),
    ),
    (
        20,
        "portfolio",
        include_str!("../../migrations/0020_portfolio.sql"),
    ),
    (
        30,
        "reconciliation",
        include_str!("../../migrations/0030_reconciliation.sql"),
    ),
    (
        40,
        "replay_runs",
        include_str!("../../migrations/0040_replay_runs.sql"),
    ),
    (
        41,
        "replay_resubmissions",
        include_str!("../../migrations/0041_replay_resubmissions.sql"),
    ),
    (
        50,
        "selective_lookup_indexes",
        include_str!("../../migrations/0050_selective_lookup_indexes.sql"),
    ),
    (
        60,
        "datahub_requests",
        include_str!("../../migrations/0060_datahub_requests.sql"),
    ),
    (
        70,
        "portfolio_customer_keys",
        include_str!("../../migrations/0070_portfolio_customer_keys.sql"),
    ),
    (
        71,
        "portfolio_message_keys",
        include_str!("../../migrations/0071_portfolio_message_keys.sql"),
    ),
];

/// [`MIGRATIONS`] as an sqlx migration source.
#[derive(Debug, Clone, Copy)]
pub struct Embedded;

impl MigrationSource<'static> for Embedded {
    fn resolve(self) -> BoxFuture<'static, Result<Vec<Migration>, BoxDynError>> {
        Box::pin(async {
            Ok(MIGRATIONS
                .iter()
                .map(|(version, description, sql)| {
                    Migration::new(
                        *version,
                        Cow::Borrowed(*description),
                        MigrationType::Simple,
                        Cow::Borrowed(*sql),
                        false,
                    )
                })
                .collect())
        })
    }
}

/// The sqlx migrator over the embedded migrations.
pub async fn migrator() -> Result<Migrator, sqlx::migrate::MigrateError> {
    Migrator::new(Embedded).await
}

/// Why the schema could not be brought up to date.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    /// A migration failed or the database refused the migration table.
    #[error("migrating the database: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The storage of `metering_series` could not be set up.
    #[error(transparent)]
    Storage(#[from] storage::StorageError),
    /// The database could not be reached or queried.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
}

impl SchemaError {
    /// Whether retrying may help (the database was unreachable).
    pub fn is_retriable(&self) -> bool {
        match self {
            SchemaError::Database(e) => crate::retry::is_retriable(e),
            SchemaError::Migrate(sqlx::migrate::MigrateError::Execute(e)) => {
                crate::retry::is_retriable(e)
            }
            SchemaError::Storage(storage::StorageError::Observe(e))
            | SchemaError::Storage(storage::StorageError::Statement { source: e, .. }) => {
                crate::retry::is_retriable(e)
            }
            _ => false,
        }
    }
}

/// What [`migrate`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationReport {
    /// Migrations applied by this run, as (version, description); empty when
    /// the schema was already current.
    pub applied: Vec<(i64, String)>,
    /// The storage of `metering_series`.
    pub storage: StorageReport,
}

impl MigrationReport {
    /// Lines for an operator.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if self.applied.is_empty() {
            out.push_str("migrations: already current\n");
        }
        for (version, description) in &self.applied {
            out.push_str(&format!("migration {version:04} applied: {description}\n"));
        }
        out.push_str(&format!("metering_series: {}\n", self.storage.mode));
        for statement in &self.storage.executed {
            out.push_str(&format!("  executed: {statement}\n"));
        }
        if self.storage.mode == StorageMode::Partitioned {
            let months: Vec<String> = self
                .storage
                .partitions
                .iter()
                .map(|(y, m)| format!("{y:04}-{m:02}"))
                .collect();
            out.push_str(&format!("  monthly partitions: {}\n", months.join(", ")));
        }
        out
    }
}

async fn applied_versions(conn: &mut PgConnection) -> Result<Vec<i64>, sqlx::Error> {
    let exists: bool = sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
        .fetch_one(&mut *conn)
        .await?;
    if !exists {
        return Ok(Vec::new());
    }
    sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success ORDER BY version")
        .fetch_all(&mut *conn)
        .await
}

/// Applies the embedded migrations, then plans and applies the storage of
/// `metering_data` (`today` decides which monthly partitions must exist).
pub async fn migrate(
    conn: &mut PgConnection,
    settings: &StorageSettings,
    today: NaiveDate,
) -> Result<MigrationReport, SchemaError> {
    let migrator = migrator().await?;
    let before = applied_versions(conn).await?;
    migrator.run(&mut *conn).await?;
    let after = applied_versions(conn).await?;
    let applied = migrator
        .iter()
        .filter(|m| after.contains(&m.version) && !before.contains(&m.version))
        .map(|m| (m.version, m.description.to_string()))
        .collect();
    // One storage planner at a time per database, so two sinks starting
    // together do not both try to create next month's partition.
    let mut tx = conn.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('afregning.sinks.storage'))")
        .execute(&mut *tx)
        .await?;
    let storage = storage::apply(&mut tx, settings, today).await?;
    tx.commit().await?;
    Ok(MigrationReport { applied, storage })
}

/// Opens a connection for the sinks (application name set, so an operator
/// sees who holds which lock in `pg_stat_activity`).
pub async fn connect(database_url: &str, application: &str) -> Result<PgConnection, sqlx::Error> {
    use std::str::FromStr;
    let options =
        sqlx::postgres::PgConnectOptions::from_str(database_url)?.application_name(application);
    PgConnection::connect_with(&options).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_migration_file_is_embedded_in_order() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
        let mut files: Vec<(i64, String)> = std::fs::read_dir(&dir)
            .expect("migrations directory")
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                let stem = name.strip_suffix(".sql")?;
                let (version, description) = stem.split_once('_')?;
                Some((version.parse().ok()?, description.to_string()))
            })
            .collect();
        files.sort();
        let embedded: Vec<(i64, String)> = MIGRATIONS
            .iter()
            .map(|(v, d, _)| (*v, d.to_string()))
            .collect();
        assert_eq!(embedded, files, "add the new file to MIGRATIONS");
        for (version, description, sql) in MIGRATIONS {
            let path = dir.join(format!("{version:04}_{description}.sql"));
            assert_eq!(std::fs::read_to_string(path).unwrap(), *sql);
        }
    }
}

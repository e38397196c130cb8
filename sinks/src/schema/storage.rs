//! How metering data is stored: `metering_series` (one row per series
//! version, [`METERING_SERIES_COLUMNS`]) as a TimescaleDB hypertable where the
//! extension is available, PostgreSQL declarative range partitions by month
//! of the period start where it is not; and `metering_data`, the view of the
//! current value of every position ([`METERING_DATA_VIEW`]).
//!
//! The choice depends on the server, and the Timescale policies depend on
//! settings, so this DDL is *planned* in Rust rather than written into a
//! static migration file: [`observe`] reads what the server has (available
//! extensions, the table, its partitions, hypertable and policies),
//! [`choose_mode`] and [`plan`] are pure functions from that observation and
//! the settings to the statements to run, and [`apply`] runs them and reports
//! every statement it ran. Keeping the planner pure is what lets the tests
//! prove that Timescale SQL is issued only when the extension exists, on a
//! machine where it cannot be installed (docs/decisions/0060).
//!
//! Both shapes have the same columns, the same primary key and the same
//! queries; only partition management differs:
//!
//! | | TimescaleDB | plain PostgreSQL |
//! |---|---|---|
//! | partitions | hypertable chunks of one month, created by TimescaleDB | `metering_series_yYYYYmMM`, one per UTC month of `period_start`, created ahead by the sink |
//! | compression | segment by `gsrn`, order by `period_start`, policy after `compress_after_days` | none |
//! | retention | `add_retention_policy` after `retention_months` | detach and archive old partitions by hand |

use std::collections::BTreeSet;

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};
use sqlx::{Connection as _, PgConnection, Row};

/// The table the sink writes metering data into: one row per series version
/// DataHub sent (decision 0151). `metering_data`, what everyone reads, is a
/// view over it ([`METERING_DATA_VIEW`]).
pub const METERING_SERIES: &str = "metering_series";

/// The columns of `metering_series`, shared by both shapes: one row per
/// metering point, resolution, period start and DataHub message.
///
/// Position `n` of the series (1-based) is element `n` of `quantities` and
/// `qualities`; a position the series does not carry has a NULL quality, a
/// position without a quantity (DataHub's "missing", A02) a NULL quantity.
/// A quality is the digit of its code (`4` for A04). Rows are immutable: a
/// correction is a new row, and the view picks the latest registration per
/// position. One row per series instead of one per position is what makes
/// a day of 80,000 metering points cheap to write: PostgreSQL's cost is per
/// row (heap tuple, index entry, WAL record), 16x less per value here.
///
/// `gsrn` and `source_message_id` use the "C" collation: byte order is the
/// order the sink's Rust code compares them in (the tie-break between two
/// registrations at the same instant), and comparisons skip the locale.
pub const METERING_SERIES_COLUMNS: &str = "\
    gsrn text COLLATE \"C\" NOT NULL, \
    resolution text NOT NULL CHECK (resolution IN ('PT15M', 'PT1H', 'P1D', 'P1M')), \
    period_start timestamptz NOT NULL, \
    period_end timestamptz NOT NULL CHECK (period_end > period_start), \
    source_message_id text COLLATE \"C\" NOT NULL, \
    registered_at timestamptz NOT NULL, \
    received_at timestamptz NOT NULL, \
    quantities numeric(18,3)[] NOT NULL, \
    qualities smallint[] NOT NULL \
        CHECK (1 <= ALL (qualities) AND 6 >= ALL (qualities) \
               AND cardinality(qualities) = cardinality(quantities)), \
    PRIMARY KEY (gsrn, resolution, period_start, source_message_id)";

/// The layout before decision 0151: one row per metering point, resolution and
/// position start. The sink no longer writes it; it stays the table of the
/// baselines that compare against it (the per-position INSERT and COPY
/// methods of `benches/metering_data_insert.rs`, the month load test's batch
/// SQL), so that they measure the layout the sink replaced.
pub const PER_POSITION_COLUMNS: &str = "\
    gsrn text COLLATE \"C\" NOT NULL, \
    ts timestamptz NOT NULL, \
    resolution text NOT NULL CHECK (resolution IN ('PT15M', 'PT1H', 'P1D', 'P1M')), \
    quantity numeric(18,3), \
    quality text NOT NULL CHECK (quality IN ('A01', 'A02', 'A03', 'A04', 'A05', 'A06')), \
    registered_at timestamptz NOT NULL, \
    source_message_id text NOT NULL, \
    received_at timestamptz NOT NULL, \
    PRIMARY KEY (gsrn, resolution, ts)";

/// `metering_data`: the current value of every position, one row per
/// metering point, resolution and position start, with the columns readers
/// have always had. Of several series covering a position, the latest
/// registration wins, ties broken by the higher MessageId (the order
/// `MeteringRow::supersedes` states in Rust). A filter on `gsrn` or `ts`
/// reaches inside the `DISTINCT ON` (both are its keys), so a metering
/// point's query reads that point's series only.
///
/// Position starts repeat `rows::position_start` in SQL: quarter hours and
/// hours from the period start, days and months as Danish calendar days and
/// months (`sinks/tests/metering_series.rs` holds the two equal across DST).
pub const METERING_DATA_VIEW: &str = "\
CREATE OR REPLACE VIEW metering_data AS
SELECT DISTINCT ON (s.gsrn, s.resolution, v.ts)
    s.gsrn, v.ts, s.resolution, v.quantity, ('A0' || v.quality)::text AS quality,
    s.registered_at, s.source_message_id, s.received_at
FROM metering_series s
CROSS JOIN LATERAL (
    SELECT CASE s.resolution
            WHEN 'PT15M' THEN s.period_start + (p.n - 1) * INTERVAL '15 minutes'
            WHEN 'PT1H' THEN s.period_start + (p.n - 1) * INTERVAL '1 hour'
            WHEN 'P1D' THEN (date_trunc('day', s.period_start AT TIME ZONE 'Europe/Copenhagen')
                             + (p.n - 1) * INTERVAL '1 day') AT TIME ZONE 'Europe/Copenhagen'
            ELSE (date_trunc('month', s.period_start AT TIME ZONE 'Europe/Copenhagen')
                  + (p.n - 1) * INTERVAL '1 month') AT TIME ZONE 'Europe/Copenhagen'
        END AS ts,
        p.quantity, p.quality
    FROM unnest(s.quantities, s.qualities) WITH ORDINALITY AS p(quantity, quality, n)
    WHERE p.quality IS NOT NULL
) v
ORDER BY s.gsrn, s.resolution, v.ts, s.registered_at DESC, s.source_message_id DESC";

/// Whether to use TimescaleDB.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TimescaleMode {
    /// Use it when the server offers the extension, else plain partitions.
    #[default]
    Auto,
    /// Require it: fail when the server does not offer it (production with
    /// TimescaleDB, so a misconfigured server is an error, not a silent downgrade).
    Required,
    /// Never use it, even when available.
    Off,
}

/// The settings of `metering_data`'s storage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageSettings {
    /// Whether to use TimescaleDB.
    pub timescale: TimescaleMode,
    /// Plain PostgreSQL: months after the current one whose partitions exist
    /// ahead of time, so no insert waits for DDL at a month boundary.
    pub partitions_ahead_months: u32,
    /// Plain PostgreSQL: months before the current one created at migration
    /// (a backfill of older data creates its partitions on demand).
    pub partitions_behind_months: u32,
    /// TimescaleDB: compress chunks older than this many days. Late
    /// corrections to compressed chunks work but are slower, so the default
    /// leaves two months uncompressed (a month plus DataHub's wholesale fixing).
    pub compress_after_days: u32,
    /// TimescaleDB: drop chunks older than this many months; `None` keeps
    /// everything. Default 60 months: Danish bookkeeping rules keep accounting
    /// records for five years.
    pub retention_months: Option<u32>,
}

impl Default for StorageSettings {
    fn default() -> Self {
        Self {
            timescale: TimescaleMode::Auto,
            partitions_ahead_months: 3,
            partitions_behind_months: 1,
            compress_after_days: 62,
            retention_months: Some(60),
        }
    }
}

/// The storage shape in use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StorageMode {
    /// A TimescaleDB hypertable with monthly chunks.
    Timescale,
    /// A range-partitioned table with one partition per month.
    Partitioned,
}

impl std::fmt::Display for StorageMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            StorageMode::Timescale => "TimescaleDB hypertable (monthly chunks)",
            StorageMode::Partitioned => "PostgreSQL range partitions (monthly)",
        })
    }
}

/// What the server has, as far as metering data is concerned.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    /// `timescaledb` is in `pg_available_extensions`.
    pub timescaledb_available: bool,
    /// `timescaledb` is installed in this database.
    pub timescaledb_installed: bool,
    /// `metering_series` exists in the current schema.
    pub table_exists: bool,
    /// It is a declaratively partitioned table.
    pub table_partitioned: bool,
    /// It is a TimescaleDB hypertable.
    pub hypertable: bool,
    /// Compression is enabled on the hypertable.
    pub compression_enabled: bool,
    /// A compression policy job exists for it.
    pub compression_policy: bool,
    /// A retention policy job exists for it.
    pub retention_policy: bool,
    /// Its monthly partitions, as (year, month) of their lower bound.
    pub partitions: BTreeSet<(i32, u32)>,
    /// `metering_data` exists as a view.
    pub view_exists: bool,
    /// `metering_data` exists as a table: the per-position layout from
    /// before decision 0151, which the sink does not convert by itself.
    pub legacy_table: bool,
}

/// A storage decision that cannot be carried out.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// TimescaleDB was required but the server does not offer it.
    #[error(
        "TimescaleDB is required (timescale = required) but the server does not offer the timescaledb extension"
    )]
    TimescaleUnavailable,
    /// The table exists in the other shape than required.
    #[error(
        "metering_data already exists as {existing:?}; converting it to {wanted:?} is a manual migration (docs/sinks.md)"
    )]
    ShapeMismatch {
        /// What exists.
        existing: StorageMode,
        /// What the settings ask for.
        wanted: StorageMode,
    },
    /// The table exists but is neither partitioned nor a hypertable.
    #[error(
        "metering_series exists but is neither partitioned nor a hypertable; refusing to guess"
    )]
    UnknownShape,
    /// `metering_data` is a table of the layout before decision 0151.
    #[error(
        "metering_data is a table (one row per position, the layout before decision 0151); the sink now writes \
         metering_series and serves metering_data as a view. Rename the table \
         (ALTER TABLE metering_data RENAME TO metering_data_per_position) and let the sink re-read the \
         readings topic into the new table (docs/sinks.md, \"Upgrading metering_data\")"
    )]
    LegacyTable,
    /// The database refused a statement.
    #[error("storage statement failed: {statement}: {source}")]
    Statement {
        /// The statement.
        statement: String,
        /// The database's error.
        #[source]
        source: sqlx::Error,
    },
    /// Observing the server failed.
    #[error("cannot inspect the server: {0}")]
    Observe(#[source] sqlx::Error),
}

/// The shape to use: an existing table keeps its shape; a new one follows the
/// settings and what the server offers.
pub fn choose_mode(
    settings: &StorageSettings,
    observed: &Observed,
) -> Result<StorageMode, StorageError> {
    if observed.legacy_table {
        return Err(StorageError::LegacyTable);
    }
    let existing = if !observed.table_exists {
        None
    } else if observed.hypertable {
        Some(StorageMode::Timescale)
    } else if observed.table_partitioned {
        Some(StorageMode::Partitioned)
    } else {
        return Err(StorageError::UnknownShape);
    };
    let wanted = match settings.timescale {
        TimescaleMode::Off => StorageMode::Partitioned,
        TimescaleMode::Required if !observed.timescaledb_available => {
            return Err(StorageError::TimescaleUnavailable);
        }
        TimescaleMode::Required => StorageMode::Timescale,
        TimescaleMode::Auto if observed.timescaledb_available => StorageMode::Timescale,
        TimescaleMode::Auto => StorageMode::Partitioned,
    };
    match existing {
        None => Ok(wanted),
        Some(existing) if existing == wanted => Ok(existing),
        // Auto adapts to what exists (a server that gained the extension
        // later keeps its partitions); an explicit setting must match.
        Some(existing) if settings.timescale == TimescaleMode::Auto => Ok(existing),
        Some(existing) => Err(StorageError::ShapeMismatch { existing, wanted }),
    }
}

/// The name of the partition for a month.
pub fn partition_name(year: i32, month: u32) -> String {
    format!("metering_series_y{year:04}m{month:02}")
}

fn add_months(year: i32, month: u32, delta: i32) -> (i32, u32) {
    let index = year * 12 + month as i32 - 1 + delta;
    (index.div_euclid(12), index.rem_euclid(12) as u32 + 1)
}

/// `CREATE TABLE IF NOT EXISTS` for one month's partition (UTC month bounds).
pub fn partition_statement(year: i32, month: u32) -> String {
    let (next_year, next_month) = add_months(year, month, 1);
    format!(
        "CREATE TABLE IF NOT EXISTS {} PARTITION OF metering_series \
         FOR VALUES FROM ('{year:04}-{month:02}-01 00:00:00+00') TO ('{next_year:04}-{next_month:02}-01 00:00:00+00')",
        partition_name(year, month)
    )
}

/// The months, as (year, month), from `behind` months before `today`'s month
/// to `ahead` months after it.
pub fn months_around(today: NaiveDate, behind: u32, ahead: u32) -> Vec<(i32, u32)> {
    (-(behind as i32)..=(ahead as i32))
        .map(|delta| add_months(today.year(), today.month(), delta))
        .collect()
}

/// The statements that bring `metering_series` and `metering_data` to the settings' shape, given
/// what exists. Idempotent: a second plan after applying the first is empty
/// (plain) or only `IF NOT EXISTS`-guarded calls (Timescale policies are
/// planned only when missing).
pub fn plan(
    mode: StorageMode,
    settings: &StorageSettings,
    observed: &Observed,
    today: NaiveDate,
) -> Vec<String> {
    let mut statements = Vec::new();
    match mode {
        StorageMode::Timescale => {
            if !observed.timescaledb_installed {
                statements.push("CREATE EXTENSION IF NOT EXISTS timescaledb".to_string());
            }
            if !observed.table_exists {
                statements.push(format!(
                    "CREATE TABLE IF NOT EXISTS metering_series ({METERING_SERIES_COLUMNS})"
                ));
            }
            if !observed.hypertable {
                statements.push(
                    "SELECT create_hypertable('metering_series', by_range('period_start', INTERVAL '1 month'), if_not_exists => TRUE)"
                        .to_string(),
                );
            }
            if !observed.compression_enabled {
                statements.push(
                    "ALTER TABLE metering_series SET (timescaledb.compress, \
                     timescaledb.compress_segmentby = 'gsrn', timescaledb.compress_orderby = 'period_start')"
                        .to_string(),
                );
            }
            if !observed.compression_policy {
                statements.push(format!(
                    "SELECT add_compression_policy('metering_series', compress_after => INTERVAL '{} days', if_not_exists => TRUE)",
                    settings.compress_after_days
                ));
            }
            if let Some(months) = settings.retention_months
                && !observed.retention_policy
            {
                statements.push(format!(
                    "SELECT add_retention_policy('metering_series', drop_after => INTERVAL '{months} months', if_not_exists => TRUE)"
                ));
            }
        }
        StorageMode::Partitioned => {
            if !observed.table_exists {
                statements.push(format!(
                    "CREATE TABLE IF NOT EXISTS metering_series ({METERING_SERIES_COLUMNS}) PARTITION BY RANGE (period_start)"
                ));
            }
            for (year, month) in months_around(
                today,
                settings.partitions_behind_months,
                settings.partitions_ahead_months,
            ) {
                if !observed.partitions.contains(&(year, month)) {
                    statements.push(partition_statement(year, month));
                }
            }
        }
    }
    if !observed.view_exists {
        statements.push(METERING_DATA_VIEW.to_string());
    }
    statements
}

/// Reads what the server has: the extension, the table's shape, its
/// partitions and (where TimescaleDB is installed) hypertable and policies.
/// Only catalogue queries; the TimescaleDB views are queried only when the
/// extension is installed.
pub async fn observe(conn: &mut PgConnection) -> Result<Observed, sqlx::Error> {
    let mut observed = Observed {
        timescaledb_available: sqlx::query_scalar::<_, bool>(
            "SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb')",
        )
        .fetch_one(&mut *conn)
        .await?,
        timescaledb_installed: sqlx::query_scalar::<_, bool>(
            "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb')",
        )
        .fetch_one(&mut *conn)
        .await?,
        ..Observed::default()
    };
    // `to_regclass` resolves through the search_path, like every unqualified
    // name the sink uses, so a test schema sees its own table only.
    let table: Option<bool> = sqlx::query_scalar(
        "SELECT c.relkind = 'p' FROM pg_class c WHERE c.oid = to_regclass('metering_series')",
    )
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(partitioned) = table {
        observed.table_exists = true;
        observed.table_partitioned = partitioned;
    }
    let view: Option<bool> = sqlx::query_scalar(
        "SELECT c.relkind = 'v' FROM pg_class c WHERE c.oid = to_regclass('metering_data')",
    )
    .fetch_optional(&mut *conn)
    .await?;
    observed.view_exists = view == Some(true);
    observed.legacy_table = view == Some(false);
    if observed.table_partitioned {
        let names: Vec<String> = sqlx::query_scalar(
            "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
             WHERE i.inhparent = to_regclass('metering_series')",
        )
        .fetch_all(&mut *conn)
        .await?;
        observed.partitions = names
            .iter()
            .filter_map(|n| parse_partition_name(n))
            .collect();
    }
    if observed.timescaledb_installed && observed.table_exists {
        let row = sqlx::query(
            "SELECT EXISTS (SELECT 1 FROM timescaledb_information.hypertables h \
                 WHERE format('%I.%I', h.hypertable_schema, h.hypertable_name)::regclass = to_regclass('metering_series')), \
             EXISTS (SELECT 1 FROM timescaledb_information.hypertables h \
                 WHERE format('%I.%I', h.hypertable_schema, h.hypertable_name)::regclass = to_regclass('metering_series') \
                 AND h.compression_enabled), \
             EXISTS (SELECT 1 FROM timescaledb_information.jobs j \
                 WHERE format('%I.%I', j.hypertable_schema, j.hypertable_name)::regclass = to_regclass('metering_series') \
                 AND j.proc_name = 'policy_compression'), \
             EXISTS (SELECT 1 FROM timescaledb_information.jobs j \
                 WHERE format('%I.%I', j.hypertable_schema, j.hypertable_name)::regclass = to_regclass('metering_series') \
                 AND j.proc_name = 'policy_retention')",
        )
        .fetch_one(&mut *conn)
        .await?;
        observed.hypertable = row.try_get(0)?;
        observed.compression_enabled = row.try_get(1)?;
        observed.compression_policy = row.try_get(2)?;
        observed.retention_policy = row.try_get(3)?;
    }
    Ok(observed)
}

/// (year, month) from `metering_series_yYYYYmMM`.
pub fn parse_partition_name(name: &str) -> Option<(i32, u32)> {
    let rest = name.strip_prefix("metering_series_y")?;
    let (year, month) = rest.split_once('m')?;
    let year: i32 = year.parse().ok()?;
    let month: u32 = month.parse().ok()?;
    (1..=12).contains(&month).then_some((year, month))
}

/// What [`apply`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageReport {
    /// The shape in use.
    pub mode: StorageMode,
    /// Every statement executed, in order.
    pub executed: Vec<String>,
    /// The monthly partitions that exist afterwards (plain PostgreSQL).
    pub partitions: BTreeSet<(i32, u32)>,
}

/// Observes, plans and executes, in one transaction (PostgreSQL DDL is
/// transactional, so a failure leaves nothing half-made).
pub async fn apply(
    conn: &mut PgConnection,
    settings: &StorageSettings,
    today: NaiveDate,
) -> Result<StorageReport, StorageError> {
    let mut tx = conn.begin().await.map_err(StorageError::Observe)?;
    let observed = observe(&mut tx).await.map_err(StorageError::Observe)?;
    let mode = choose_mode(settings, &observed)?;
    let statements = plan(mode, settings, &observed, today);
    for statement in &statements {
        sqlx::query(statement)
            .execute(&mut *tx)
            .await
            .map_err(|source| StorageError::Statement {
                statement: statement.clone(),
                source,
            })?;
    }
    let after = observe(&mut tx).await.map_err(StorageError::Observe)?;
    tx.commit().await.map_err(StorageError::Observe)?;
    Ok(StorageReport {
        mode,
        executed: statements,
        partitions: after.partitions,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    const TIMESCALE_MARKERS: &[&str] = &[
        "timescaledb",
        "hypertable",
        "add_compression_policy",
        "add_retention_policy",
    ];

    fn mentions_timescale(statements: &[String]) -> bool {
        statements.iter().any(|s| {
            let s = s.to_lowercase();
            TIMESCALE_MARKERS.iter().any(|m| s.contains(m))
        })
    }

    #[test]
    fn auto_uses_timescale_only_when_the_extension_is_available() {
        let settings = StorageSettings::default();
        let without = Observed::default();
        let with = Observed {
            timescaledb_available: true,
            ..Observed::default()
        };
        assert_eq!(
            choose_mode(&settings, &without).unwrap(),
            StorageMode::Partitioned
        );
        assert_eq!(
            choose_mode(&settings, &with).unwrap(),
            StorageMode::Timescale
        );
    }

    #[test]
    fn required_fails_without_the_extension_and_off_ignores_it() {
        let required = StorageSettings {
            timescale: TimescaleMode::Required,
            ..StorageSettings::default()
        };
        assert!(matches!(
            choose_mode(&required, &Observed::default()),
            Err(StorageError::TimescaleUnavailable)
        ));
        let off = StorageSettings {
            timescale: TimescaleMode::Off,
            ..StorageSettings::default()
        };
        let with = Observed {
            timescaledb_available: true,
            ..Observed::default()
        };
        assert_eq!(choose_mode(&off, &with).unwrap(), StorageMode::Partitioned);
    }

    #[test]
    fn an_existing_table_keeps_its_shape_under_auto_and_must_match_otherwise() {
        let partitioned = Observed {
            timescaledb_available: true,
            table_exists: true,
            table_partitioned: true,
            ..Observed::default()
        };
        assert_eq!(
            choose_mode(&StorageSettings::default(), &partitioned).unwrap(),
            StorageMode::Partitioned
        );
        let required = StorageSettings {
            timescale: TimescaleMode::Required,
            ..StorageSettings::default()
        };
        assert!(matches!(
            choose_mode(&required, &partitioned),
            Err(StorageError::ShapeMismatch { .. })
        ));
        let plain_table = Observed {
            table_exists: true,
            ..Observed::default()
        };
        assert!(matches!(
            choose_mode(&StorageSettings::default(), &plain_table),
            Err(StorageError::UnknownShape)
        ));
    }

    #[test]
    fn a_per_position_metering_data_table_is_refused_with_the_way_to_upgrade() {
        let legacy = Observed {
            legacy_table: true,
            ..Observed::default()
        };
        let error = choose_mode(&StorageSettings::default(), &legacy).unwrap_err();
        assert!(matches!(error, StorageError::LegacyTable));
        assert!(
            error
                .to_string()
                .contains("RENAME TO metering_data_per_position")
        );
    }

    #[test]
    fn the_view_is_planned_once_after_the_table() {
        let fresh = plan(
            StorageMode::Partitioned,
            &StorageSettings::default(),
            &Observed::default(),
            day(2026, 11, 30),
        );
        let table = fresh
            .iter()
            .position(|s| s.contains("CREATE TABLE IF NOT EXISTS metering_series ("));
        let view = fresh.iter().position(|s| s == METERING_DATA_VIEW);
        assert!(
            table.is_some() && view.is_some() && table < view,
            "{fresh:#?}"
        );
        let timescale = plan(
            StorageMode::Timescale,
            &StorageSettings::default(),
            &Observed::default(),
            day(2026, 11, 30),
        );
        assert_eq!(timescale.last(), Some(&METERING_DATA_VIEW.to_string()));
    }

    #[test]
    fn the_timescale_plan_makes_a_hypertable_with_compression_and_retention() {
        let settings = StorageSettings::default();
        let observed = Observed {
            timescaledb_available: true,
            ..Observed::default()
        };
        let statements = plan(
            StorageMode::Timescale,
            &settings,
            &observed,
            day(2026, 10, 15),
        );
        let joined = statements.join(";\n");
        assert!(joined.starts_with("CREATE EXTENSION IF NOT EXISTS timescaledb"));
        assert!(joined.contains(
            "create_hypertable('metering_series', by_range('period_start', INTERVAL '1 month')"
        ));
        assert!(joined.contains("timescaledb.compress_segmentby = 'gsrn'"));
        assert!(joined.contains("timescaledb.compress_orderby = 'period_start'"));
        assert!(joined.contains(
            "add_compression_policy('metering_series', compress_after => INTERVAL '62 days'"
        ));
        assert!(joined.contains(
            "add_retention_policy('metering_series', drop_after => INTERVAL '60 months'"
        ));
        assert!(
            !joined.contains("PARTITION"),
            "no declarative partitions on a hypertable"
        );
        // Without a retention setting there is no retention policy.
        let keep = StorageSettings {
            retention_months: None,
            ..settings
        };
        let statements = plan(StorageMode::Timescale, &keep, &observed, day(2026, 10, 15));
        assert!(!statements.join(";").contains("add_retention_policy"));
    }

    #[test]
    fn the_timescale_plan_is_empty_once_everything_exists() {
        let observed = Observed {
            timescaledb_available: true,
            timescaledb_installed: true,
            table_exists: true,
            hypertable: true,
            compression_enabled: true,
            compression_policy: true,
            retention_policy: true,
            view_exists: true,
            ..Observed::default()
        };
        assert!(
            plan(
                StorageMode::Timescale,
                &StorageSettings::default(),
                &observed,
                day(2026, 10, 15)
            )
            .is_empty()
        );
    }

    #[test]
    fn the_partitioned_plan_never_mentions_timescale_and_covers_the_months_ahead() {
        let settings = StorageSettings::default();
        let statements = plan(
            StorageMode::Partitioned,
            &settings,
            &Observed::default(),
            day(2026, 11, 30),
        );
        assert!(!mentions_timescale(&statements), "{statements:#?}");
        assert!(statements[0].ends_with("PARTITION BY RANGE (period_start)"));
        assert_eq!(statements.last(), Some(&METERING_DATA_VIEW.to_string()));
        let partitions: Vec<&String> = statements[1..statements.len() - 1].iter().collect();
        assert_eq!(
            partitions.len(),
            5,
            "one behind, the current and three ahead"
        );
        assert!(partitions[0].contains("metering_series_y2026m10"));
        assert!(partitions[1].contains(
            "metering_series_y2026m11 PARTITION OF metering_series FOR VALUES FROM ('2026-11-01 00:00:00+00') TO ('2026-12-01 00:00:00+00')"
        ));
        assert!(
            partitions[2].contains("FROM ('2026-12-01 00:00:00+00') TO ('2027-01-01 00:00:00+00')")
        );
        assert!(partitions[4].contains("metering_series_y2027m02"));
    }

    #[test]
    fn the_partitioned_plan_creates_only_missing_partitions() {
        let observed = Observed {
            table_exists: true,
            table_partitioned: true,
            partitions: [(2026, 10), (2026, 11), (2026, 12)].into_iter().collect(),
            view_exists: true,
            ..Observed::default()
        };
        let statements = plan(
            StorageMode::Partitioned,
            &StorageSettings::default(),
            &observed,
            day(2026, 11, 1),
        );
        assert_eq!(
            statements,
            vec![partition_statement(2027, 1), partition_statement(2027, 2)]
        );
    }

    #[test]
    fn partition_names_round_trip_and_months_wrap_years() {
        assert_eq!(partition_name(2026, 1), "metering_series_y2026m01");
        assert_eq!(
            parse_partition_name("metering_series_y2026m01"),
            Some((2026, 1))
        );
        assert_eq!(parse_partition_name("metering_series_y2026m13"), None);
        assert_eq!(parse_partition_name("metering_series_default"), None);
        assert_eq!(add_months(2026, 1, -1), (2025, 12));
        assert_eq!(add_months(2026, 12, 1), (2027, 1));
        assert_eq!(add_months(2026, 12, 25), (2029, 1));
    }
}

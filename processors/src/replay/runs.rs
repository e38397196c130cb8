//! Replay runs in PostgreSQL (`replay_run` and `replay_resubmission`, the
//! sinks' migrations 40 and 41): what a run records when it starts, as it
//! ends, and how it is read back. `afregning replay` and the API
//! (`/v1/replay-runs`, `/v1/dead-letters/resubmit`) both go through these
//! functions, so a run reads the same whichever started it. The schema itself
//! is the sinks' (the caller migrates).

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{PgConnection, Row};
use utoipa::ToSchema;

use super::client::{ClientError, Followed};
use super::offsets::OffsetError;
use super::{ComponentAmounts, ReplayOutcome, ReplayReport, ReplayRequest, ReplaySummary};

/// Why starting, recording or reading a run failed, sorted by what the
/// caller can do about it (the API answers 404, 409, 422, 500 and 503).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// What was named does not exist (a run, a dead letter).
    #[error("{0}")]
    NotFound(String),
    /// It exists but cannot go now (a dead letter not resolved, or re-submitted before).
    #[error("{0}")]
    Refused(String),
    /// The request itself is wrong (an unknown processor, a partition outside the topics).
    #[error("{0}")]
    Invalid(String),
    /// The database failed.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// The broker failed or timed out.
    #[error("broker: {0}")]
    Broker(String),
    /// A stored run's JSON did not read back.
    #[error("stored run: {0}")]
    Stored(#[from] serde_json::Error),
}

impl From<ClientError> for RunError {
    fn from(e: ClientError) -> Self {
        RunError::Broker(e.to_string())
    }
}

impl From<OffsetError> for RunError {
    fn from(e: OffsetError) -> Self {
        RunError::Broker(e.to_string())
    }
}

impl From<tokio::task::JoinError> for RunError {
    fn from(e: tokio::task::JoinError) -> Self {
        RunError::Broker(format!("a broker call did not finish: {e}"))
    }
}

/// A run id: `r`, the time and a random part, sortable by when it started.
pub fn new_run_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let now = Utc::now();
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(now.timestamp_nanos_opt().unwrap_or_default() as u128);
    format!(
        "r{}-{:08x}",
        now.format("%Y%m%dT%H%M%S"),
        hasher.finish() as u32
    )
}

/// What is recorded about a recalculation when it starts.
pub struct NewRun<'a> {
    /// The request the tasks act on.
    pub request: &'a ReplayRequest,
    /// Who.
    pub operator: &'a str,
    /// Why.
    pub reason: &'a str,
    /// The grid areas asked for.
    pub grid_areas: &'a [String],
    /// How each start offset was found (per partition and topic).
    pub offset_sources: serde_json::Value,
    /// The log times asked for.
    pub from_time: Option<DateTime<Utc>>,
    /// See `from_time`.
    pub to_time: Option<DateTime<Utc>>,
}

/// Records a new recalculation as `running`.
pub async fn insert(conn: &mut PgConnection, run: &NewRun<'_>) -> Result<(), RunError> {
    let r = run.request;
    sqlx::query(
        "INSERT INTO replay_run (run_id, operator, reason, processor, partitions, grid_areas, \
         start_offsets, end_offsets, offset_sources, from_time, to_time, recompute_from, \
         recompute_to, dry_run, state, started_at) \
         VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,'running',$15)",
    )
    .bind(&r.run_id)
    .bind(run.operator)
    .bind(run.reason)
    .bind(&r.processor)
    .bind(r.start.keys().copied().collect::<Vec<i32>>())
    .bind(run.grid_areas)
    .bind(serde_json::to_value(&r.start)?)
    .bind(serde_json::to_value(&r.end)?)
    .bind(&run.offset_sources)
    .bind(run.from_time)
    .bind(run.to_time)
    .bind(r.recompute_from)
    .bind(r.recompute_to)
    .bind(r.dry_run)
    .bind(r.requested_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Sets a run's state (and, when it ended, its end time, reports and summary).
pub async fn finish(
    conn: &mut PgConnection,
    run_id: &str,
    state: &str,
    reports: &serde_json::Value,
    summary: Option<&ReplaySummary>,
    error: Option<&str>,
) -> Result<(), RunError> {
    let ended = (state != "running").then(Utc::now);
    sqlx::query(
        "UPDATE replay_run SET state = $2, ended_at = $3, reports = $4, summary = $5, error = $6 \
         WHERE run_id = $1",
    )
    .bind(run_id)
    .bind(state)
    .bind(ended)
    .bind(reports)
    .bind(summary.map(serde_json::to_value).transpose()?)
    .bind(error)
    .execute(conn)
    .await?;
    Ok(())
}

/// The request of a recorded recalculation (to resume following it).
pub async fn request_of(conn: &mut PgConnection, run_id: &str) -> Result<ReplayRequest, RunError> {
    let row = sqlx::query(
        "SELECT kind, processor, start_offsets, end_offsets, recompute_from, recompute_to, \
         dry_run, started_at FROM replay_run WHERE run_id = $1",
    )
    .bind(run_id)
    .fetch_optional(conn)
    .await?
    .ok_or_else(|| RunError::NotFound(format!("no replay run {run_id}")))?;
    let kind: String = row.try_get("kind")?;
    if kind != "recalculate" {
        return Err(RunError::Refused(format!(
            "run {run_id} re-submitted dead letters: there is nothing to follow"
        )));
    }
    Ok(ReplayRequest {
        run_id: run_id.to_string(),
        processor: row.try_get("processor")?,
        start: serde_json::from_value(row.try_get("start_offsets")?)?,
        end: serde_json::from_value(row.try_get("end_offsets")?)?,
        recompute_from: row.try_get("recompute_from")?,
        recompute_to: row.try_get("recompute_to")?,
        dry_run: row.try_get("dry_run")?,
        requested_at: row.try_get("started_at")?,
    })
}

/// Fills each change's amounts of the version in force before from the sink's
/// `settlement_line` (the processor keeps sums, not lines: decision 0080).
/// Changes whose earlier version the sink does not have keep `None`.
pub async fn fill_before(
    conn: &mut PgConnection,
    summary: &mut ReplaySummary,
) -> Result<(), RunError> {
    let exists: bool = sqlx::query_scalar("SELECT to_regclass('settlement_line') IS NOT NULL")
        .fetch_one(&mut *conn)
        .await?;
    if !exists {
        return Ok(());
    }
    for change in &mut summary.changes {
        let Some(month) = crate::settle::core::parse_month(&change.period) else {
            continue;
        };
        let rows = sqlx::query(
            "SELECT component, charge_code, sum(amount) AS amount FROM settlement_line \
             WHERE gsrn = $1 AND month_start = $2 AND version = $3 \
             GROUP BY component, charge_code",
        )
        .bind(&change.gsrn)
        .bind(month.first_day())
        .bind(change.version_before)
        .fetch_all(&mut *conn)
        .await?;
        if rows.is_empty() {
            continue;
        }
        let mut before = ComponentAmounts::new();
        for row in rows {
            let component: String = row.try_get("component")?;
            let code: Option<String> = row.try_get("charge_code")?;
            let key = match code {
                Some(code) => format!("{component}:{code}"),
                None => component,
            };
            before.insert(key, row.try_get("amount")?);
        }
        change.components_before = Some(before);
    }
    let outcome = ReplayOutcome {
        results_checked: summary.results_checked,
        changes: std::mem::take(&mut summary.changes),
    };
    *summary = ReplaySummary::of([&outcome]);
    Ok(())
}

/// The summary of every task's outcome in `reports`.
pub fn summary_of(reports: &std::collections::BTreeMap<i32, Vec<ReplayReport>>) -> ReplaySummary {
    ReplaySummary::of(
        reports
            .values()
            .flatten()
            .filter_map(|r| r.outcome.as_ref()),
    )
}

/// How following a run ended, as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    /// Every task reported; the summary is stored.
    Done(ReplaySummary),
    /// The follower stopped first (Ctrl-C, a timeout); the processors go on.
    Interrupted(ReplaySummary),
    /// Following failed; the run is recorded `failed` with this error.
    Failed(String),
}

/// Records how following `run_id` ended: its reports and summary (the
/// amounts before filled from the sink), or the error.
pub async fn record_followed(
    conn: &mut PgConnection,
    run_id: &str,
    followed: Result<Followed, ClientError>,
) -> Result<Recorded, RunError> {
    let (state, reports) = match followed {
        Ok(Followed::Complete(reports)) => ("done", reports),
        Ok(Followed::Interrupted(reports)) => ("interrupted", reports),
        Err(error) => {
            let error = error.to_string();
            finish(
                conn,
                run_id,
                "failed",
                &serde_json::json!({}),
                None,
                Some(&error),
            )
            .await?;
            return Ok(Recorded::Failed(error));
        }
    };
    let mut summary = summary_of(&reports);
    fill_before(conn, &mut summary).await?;
    finish(
        conn,
        run_id,
        state,
        &serde_json::to_value(&reports)?,
        Some(&summary),
        None,
    )
    .await?;
    Ok(if state == "done" {
        Recorded::Done(summary)
    } else {
        Recorded::Interrupted(summary)
    })
}

/// One recorded run, as `afregning replay status --json` prints it and the
/// API answers it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, ToSchema)]
pub struct RunRecord {
    /// The run's id.
    pub run_id: String,
    /// `recalculate` or `dead-letters`.
    pub kind: String,
    /// `running`, `done`, `failed` or `interrupted`.
    pub state: String,
    /// Who started it.
    pub operator: String,
    /// Why.
    pub reason: String,
    /// The processor recalculated; for dead letters the components that gave up.
    pub processor: String,
    /// The partitions (tasks) concerned.
    pub partitions: Vec<i32>,
    /// The grid areas asked for.
    pub grid_areas: Vec<String>,
    /// Compare only, nothing written.
    pub dry_run: bool,
    /// Per partition and input topic, the first offset re-read (dead letters: their ids).
    pub start_offsets: serde_json::Value,
    /// Per partition and input topic, the end when the run started.
    pub end_offsets: serde_json::Value,
    /// How each start offset was found (`offset`, or a time by the broker or a search).
    pub offset_sources: serde_json::Value,
    /// The data period recomputed from, when given.
    pub recompute_from: Option<DateTime<Utc>>,
    /// And to (exclusive).
    pub recompute_to: Option<DateTime<Utc>>,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When it ended.
    pub ended_at: Option<DateTime<Utc>>,
    /// What the tasks reported, per partition.
    pub reports: serde_json::Value,
    /// What changed: per metering point and month, per component, in total.
    pub summary: Option<serde_json::Value>,
    /// Why it failed.
    pub error: Option<String>,
    /// A dead-letter run's records, where each went (only when one run is read).
    #[sqlx(skip)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resubmissions: Option<Vec<ResubmissionRecord>>,
}

/// Where one dead letter was produced again.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, ToSchema)]
pub struct ResubmissionRecord {
    /// The dead letter's source topic.
    pub source_topic: String,
    /// Its partition.
    pub source_partition: i32,
    /// Its offset.
    pub source_offset: i64,
    /// The partition it went to again (the same).
    pub resubmitted_partition: i32,
    /// Its new offset.
    pub resubmitted_offset: i64,
    /// Copied from the source topic (else from the dead letter's copy: the source record was gone).
    pub from_source: bool,
}

const RUN_COLUMNS: &str = "run_id, kind, state, operator, reason, processor, partitions, \
     grid_areas, dry_run, start_offsets, end_offsets, offset_sources, recompute_from, \
     recompute_to, started_at, ended_at, reports, summary, error";

/// The newest `limit` runs, newest first (without their re-submissions).
pub async fn list(conn: &mut PgConnection, limit: i64) -> Result<Vec<RunRecord>, RunError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {RUN_COLUMNS} FROM replay_run ORDER BY started_at DESC, run_id DESC LIMIT $1"
    ))
    .bind(limit)
    .fetch_all(conn)
    .await?)
}

/// One run with its re-submissions; `None` when there is none.
pub async fn show(conn: &mut PgConnection, run_id: &str) -> Result<Option<RunRecord>, RunError> {
    let run: Option<RunRecord> = sqlx::query_as(&format!(
        "SELECT {RUN_COLUMNS} FROM replay_run WHERE run_id = $1"
    ))
    .bind(run_id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(mut run) = run else {
        return Ok(None);
    };
    run.resubmissions = Some(
        sqlx::query_as(
            "SELECT source_topic, source_partition, source_offset, resubmitted_partition, \
             resubmitted_offset, from_source FROM replay_resubmission WHERE run_id = $1 \
             ORDER BY source_topic, source_partition, source_offset",
        )
        .bind(run_id)
        .fetch_all(conn)
        .await?,
    );
    Ok(Some(run))
}

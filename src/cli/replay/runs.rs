//! Replay runs in PostgreSQL (`replay_run`, migration 40): what `start` records
//! and `status` shows. Each run is one row, updated as it progresses.

use std::process::ExitCode;

use afregning_processors::replay::{ReplayRequest, ReplaySummary};
use anyhow::Context;
use chrono::{DateTime, Utc};
use sqlx::{Connection, PgConnection, Row};

use crate::cli::common::StackArgs;

/// Connects and brings the schema up to date (the table may be new).
pub async fn connect(stack: &StackArgs) -> anyhow::Result<PgConnection> {
    let mut conn = afregning_sinks::schema::connect(&stack.database_url, "afregning replay")
        .await
        .with_context(|| "connecting to PostgreSQL (DATABASE_URL)")?;
    afregning_sinks::schema::migrate(
        &mut conn,
        &afregning_sinks::schema::StorageSettings::default(),
        Utc::now().date_naive(),
    )
    .await?;
    Ok(conn)
}

/// Who runs a replay: `--operator` / `AFREGNING_OPERATOR`, else `$USER`; never empty.
pub fn operator(given: Option<&str>) -> anyhow::Result<String> {
    given
        .map(str::to_string)
        .or_else(|| std::env::var("USER").ok())
        .filter(|o| !o.trim().is_empty())
        .context("who runs the replay: --operator or AFREGNING_OPERATOR")
}

/// What is recorded about a run when it starts.
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

/// Records a new run as `running`.
pub async fn insert(conn: &mut PgConnection, run: &NewRun<'_>) -> anyhow::Result<()> {
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
    .await
    .context("recording the replay run")?;
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
) -> anyhow::Result<()> {
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
    .await
    .context("updating the replay run")?;
    Ok(())
}

/// The request of a recorded run (to resume following it).
pub async fn request_of(conn: &mut PgConnection, run_id: &str) -> anyhow::Result<ReplayRequest> {
    let row = sqlx::query(
        "SELECT kind, processor, start_offsets, end_offsets, recompute_from, recompute_to, \
         dry_run, started_at FROM replay_run WHERE run_id = $1",
    )
    .bind(run_id)
    .fetch_optional(conn)
    .await?
    .with_context(|| format!("no replay run {run_id}"))?;
    let kind: String = row.try_get("kind")?;
    anyhow::ensure!(
        kind == "recalculate",
        "run {run_id} re-submitted dead letters: there is nothing to follow"
    );
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
) -> anyhow::Result<()> {
    let exists: bool = sqlx::query_scalar("SELECT to_regclass('settlement_line') IS NOT NULL")
        .fetch_one(&mut *conn)
        .await?;
    if !exists {
        return Ok(());
    }
    for change in &mut summary.changes {
        let Some(month) = afregning_processors::settle::core::parse_month(&change.period) else {
            continue;
        };
        // Summed in the database and read as text: exact, and this crate needs no
        // decimal type of its own (the amounts parse into the summary's type).
        let rows = sqlx::query(
            "SELECT component, charge_code, sum(amount)::text AS amount FROM settlement_line \
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
        let mut amounts = serde_json::Map::new();
        for row in rows {
            let component: String = row.try_get("component")?;
            let code: Option<String> = row.try_get("charge_code")?;
            let amount: String = row.try_get("amount")?;
            let key = match code {
                Some(code) => format!("{component}:{code}"),
                None => component,
            };
            amounts.insert(key, serde_json::Value::String(amount));
        }
        let before: afregning_processors::replay::ComponentAmounts =
            serde_json::from_value(serde_json::Value::Object(amounts))?;
        change.components_before = Some(before);
    }
    let outcome = afregning_processors::replay::ReplayOutcome {
        results_checked: summary.results_checked,
        changes: std::mem::take(&mut summary.changes),
    };
    *summary = ReplaySummary::of([&outcome]);
    Ok(())
}

/// `afregning replay status [ID]`.
pub async fn status(stack: &StackArgs, id: Option<&str>, json: bool) -> anyhow::Result<ExitCode> {
    let mut conn = connect(stack).await?;
    let rows = sqlx::query(
        "SELECT run_id, kind, operator, reason, processor, partitions, grid_areas, start_offsets, \
         end_offsets, offset_sources, dry_run, state, started_at, ended_at, reports, summary, error \
         FROM replay_run WHERE $1::text IS NULL OR run_id = $1 ORDER BY started_at DESC LIMIT 100",
    )
    .bind(id)
    .fetch_all(&mut conn)
    .await?;
    if id.is_some() && rows.is_empty() {
        anyhow::bail!("no replay run {}", id.unwrap_or_default());
    }
    for row in rows {
        let run_id: String = row.try_get("run_id")?;
        let kind: String = row.try_get("kind")?;
        let state: String = row.try_get("state")?;
        let processor: String = row.try_get("processor")?;
        let partitions: Vec<i32> = row.try_get("partitions")?;
        let grid_areas: Vec<String> = row.try_get("grid_areas")?;
        let dry_run: bool = row.try_get("dry_run")?;
        let started: DateTime<Utc> = row.try_get("started_at")?;
        let ended: Option<DateTime<Utc>> = row.try_get("ended_at")?;
        let summary: Option<serde_json::Value> = row.try_get("summary")?;
        if json {
            let value = serde_json::json!({
                "run_id": run_id, "kind": kind, "state": state, "processor": processor,
                "reports": row.try_get::<serde_json::Value, _>("reports")?,
                "operator": row.try_get::<String, _>("operator")?,
                "reason": row.try_get::<String, _>("reason")?,
                "partitions": partitions, "grid_areas": grid_areas, "dry_run": dry_run,
                "start_offsets": row.try_get::<serde_json::Value, _>("start_offsets")?,
                "end_offsets": row.try_get::<serde_json::Value, _>("end_offsets")?,
                "offset_sources": row.try_get::<serde_json::Value, _>("offset_sources")?,
                "started_at": started, "ended_at": ended, "summary": summary,
                "error": row.try_get::<Option<String>, _>("error")?,
            });
            println!("{value}");
            continue;
        }
        println!(
            "{run_id}  {state:<11} {}{processor} partitions {partitions:?} {}{} started {started} {}",
            if kind == "dead-letters" {
                "dead letters of "
            } else {
                ""
            },
            if grid_areas.is_empty() {
                String::new()
            } else {
                format!("grid areas {grid_areas:?} ")
            },
            if dry_run { "(dry run)" } else { "" },
            ended.map(|e| format!("ended {e}")).unwrap_or_default(),
        );
        if id.is_some() {
            println!(
                "  by {}: {}",
                row.try_get::<String, _>("operator")?,
                row.try_get::<String, _>("reason")?
            );
            println!(
                "  start {}",
                row.try_get::<serde_json::Value, _>("start_offsets")?
            );
            println!(
                "  end   {}",
                row.try_get::<serde_json::Value, _>("end_offsets")?
            );
            if kind == "dead-letters" {
                print_resubmissions(&mut conn, &run_id).await?;
            }
            if let Some(error) = row.try_get::<Option<String>, _>("error")? {
                println!("  error: {error}");
            }
            if let Some(summary) =
                summary.and_then(|s| serde_json::from_value::<ReplaySummary>(s).ok())
            {
                for line in summary.render() {
                    println!("  {line}");
                }
            }
        }
    }
    conn.close().await.ok();
    Ok(ExitCode::SUCCESS)
}

/// The records a dead-letter run produced again, one line each.
async fn print_resubmissions(conn: &mut PgConnection, run_id: &str) -> anyhow::Result<()> {
    let rows = sqlx::query(
        "SELECT source_topic, source_partition, source_offset, resubmitted_partition, \
         resubmitted_offset, from_source FROM replay_resubmission WHERE run_id = $1 \
         ORDER BY source_topic, source_partition, source_offset",
    )
    .bind(run_id)
    .fetch_all(&mut *conn)
    .await?;
    for row in rows {
        println!(
            "  {}/{}/{} -> partition {} offset {}{}",
            row.try_get::<String, _>("source_topic")?,
            row.try_get::<i32, _>("source_partition")?,
            row.try_get::<i64, _>("source_offset")?,
            row.try_get::<i32, _>("resubmitted_partition")?,
            row.try_get::<i64, _>("resubmitted_offset")?,
            if row.try_get::<bool, _>("from_source")? {
                ""
            } else {
                " (from the dead letter's copy)"
            }
        );
    }
    Ok(())
}

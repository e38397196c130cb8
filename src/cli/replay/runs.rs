//! Replay runs in PostgreSQL as the CLI shows them: connecting (and migrating)
//! and `status`. Recording a run is `afregning_processors::replay::runs`,
//! shared with the API.

use std::process::ExitCode;

use afregning_processors::replay::ReplaySummary;
use afregning_processors::replay::runs::{self, RunRecord};
use anyhow::Context;
use chrono::Utc;
use sqlx::{Connection, PgConnection};

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

/// `afregning replay status [ID]`.
pub async fn status(stack: &StackArgs, id: Option<&str>, json: bool) -> anyhow::Result<ExitCode> {
    let mut conn = connect(stack).await?;
    let records: Vec<RunRecord> = match id {
        Some(id) => vec![
            runs::show(&mut conn, id)
                .await?
                .with_context(|| format!("no replay run {id}"))?,
        ],
        None => runs::list(&mut conn, 100).await?,
    };
    for run in records {
        if json {
            println!("{}", serde_json::to_value(&run)?);
            continue;
        }
        print_run(&run, id.is_some());
    }
    conn.close().await.ok();
    Ok(ExitCode::SUCCESS)
}

/// One run as text: a line, and with `detail` who, why, offsets, re-submissions and summary.
fn print_run(run: &RunRecord, detail: bool) {
    println!(
        "{}  {:<11} {}{} partitions {:?} {}{} started {} {}",
        run.run_id,
        run.state,
        if run.kind == "dead-letters" {
            "dead letters of "
        } else {
            ""
        },
        run.processor,
        run.partitions,
        if run.grid_areas.is_empty() {
            String::new()
        } else {
            format!("grid areas {:?} ", run.grid_areas)
        },
        if run.dry_run { "(dry run)" } else { "" },
        run.started_at,
        run.ended_at
            .map(|e| format!("ended {e}"))
            .unwrap_or_default(),
    );
    if !detail {
        return;
    }
    println!("  by {}: {}", run.operator, run.reason);
    println!("  start {}", run.start_offsets);
    println!("  end   {}", run.end_offsets);
    for r in run.resubmissions.iter().flatten() {
        println!(
            "  {}/{}/{} -> partition {} offset {}{}",
            r.source_topic,
            r.source_partition,
            r.source_offset,
            r.resubmitted_partition,
            r.resubmitted_offset,
            if r.from_source {
                ""
            } else {
                " (from the dead letter's copy)"
            }
        );
    }
    if let Some(error) = &run.error {
        println!("  error: {error}");
    }
    if let Some(summary) = run
        .summary
        .clone()
        .and_then(|s| serde_json::from_value::<ReplaySummary>(s).ok())
    {
        for line in summary.render() {
            println!("  {line}");
        }
    }
}

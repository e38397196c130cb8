//! `afregning replay start` and `resume`: resolve what to re-read, record the
//! run, write the request, follow the tasks' reports and store the summary.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use afregning_processors::replay::ReplayRequest;
use afregning_processors::replay::client::{self, Progress};
use afregning_processors::replay::plan::{self, StartSpec};
use afregning_processors::replay::runs::{self as record, Recorded};
use afregning_topology::{Catalogue, TopologySettings};
use chrono::{DateTime, Utc};
use clap::Args as ClapArgs;
use indicatif::{ProgressBar, ProgressStyle};
use rdkafka::ClientConfig;

use super::runs;
use crate::cli::common::StackArgs;

/// Arguments of `afregning replay start`.
#[derive(Debug, ClapArgs)]
#[command(group(clap::ArgGroup::new("from").required(true).args(["from_offset", "from_time"])))]
pub struct StartArgs {
    /// The processor whose inputs are re-read (validate, enrich, aggregate, settle).
    #[arg(long)]
    pub processor: String,
    /// Re-read every chosen partition of every input from this offset.
    #[arg(long)]
    pub from_offset: Option<i64>,
    /// Re-read from the first record at or after this time (RFC 3339).
    #[arg(long)]
    pub from_time: Option<DateTime<Utc>>,
    /// End of the data period to recompute (RFC 3339, exclusive; default: no end).
    #[arg(long)]
    pub to_time: Option<DateTime<Utc>>,
    /// Start of the data period to recompute (RFC 3339; default: `--from-time`, or
    /// everything the partitions hold with `--from-offset`).
    #[arg(long)]
    pub recompute_from: Option<DateTime<Utc>>,
    /// Only these grid areas' partitions (processors partitioned by grid area).
    #[arg(long = "grid-area")]
    pub grid_areas: Vec<String>,
    /// Only these partitions.
    #[arg(long = "partition")]
    pub partitions: Vec<i32>,
    /// Why (recorded with the run).
    #[arg(long)]
    pub reason: String,
    /// Who (recorded with the run).
    #[arg(long, env = "AFREGNING_OPERATOR")]
    pub operator: Option<String>,
    /// Compute the summary without moving positions, writing state or publishing.
    #[arg(long)]
    pub dry_run: bool,
    /// Find time offsets by searching record timestamps, not asking the broker.
    #[arg(long)]
    pub search_offsets: bool,
    /// Give up following after this many seconds (the run goes on in the processors).
    #[arg(long, default_value_t = 3600)]
    pub timeout_secs: u64,
    /// Topic prefix of the deployment.
    #[arg(long, env = "AFREGNING_TOPIC_PREFIX", default_value = "")]
    pub topic_prefix: String,
    /// Partitions per topic.
    #[arg(long, env = "AFREGNING_TOPIC_PARTITIONS", default_value_t = afregning_topology::settings::DEFAULT_PARTITIONS)]
    pub topic_partitions: u32,
    /// Where the stack is.
    #[command(flatten)]
    pub stack: StackArgs,
}

/// Arguments of `afregning replay resume`.
#[derive(Debug, ClapArgs)]
pub struct ResumeArgs {
    /// The run.
    pub id: String,
    /// Give up following after this many seconds.
    #[arg(long, default_value_t = 3600)]
    pub timeout_secs: u64,
    /// Topic prefix of the deployment.
    #[arg(long, env = "AFREGNING_TOPIC_PREFIX", default_value = "")]
    pub topic_prefix: String,
    /// Where the stack is.
    #[command(flatten)]
    pub stack: StackArgs,
}

fn kafka(stack: &StackArgs) -> ClientConfig {
    let mut client = ClientConfig::new();
    client.set("bootstrap.servers", &stack.bootstrap_servers);
    client
}

/// `afregning replay start`.
pub async fn start(args: StartArgs) -> anyhow::Result<ExitCode> {
    let catalogue = Catalogue::new(TopologySettings {
        partitions: args.topic_partitions,
        ..TopologySettings::with_prefix(args.topic_prefix.clone())
    })?;
    let spec = StartSpec {
        processor: args.processor.clone(),
        from_offset: args.from_offset,
        from_time: args.from_time,
        to_time: args.to_time,
        recompute_from: args.recompute_from,
        grid_areas: args.grid_areas.clone(),
        partitions: args.partitions.clone(),
        dry_run: args.dry_run,
        search_offsets: args.search_offsets,
    };
    // Checked before anything is asked of the broker or the database.
    let (partitions, _) = plan::partitions_and_inputs(&catalogue, &spec)?;
    let operator = runs::operator(args.operator.as_deref())?;
    anyhow::ensure!(!args.reason.trim().is_empty(), "--reason must say why");

    let client = kafka(&args.stack);
    let (request, sources) = plan::request(&client, &catalogue, &spec).await?;
    let mut conn = runs::connect(&args.stack).await?;
    record::insert(
        &mut conn,
        &record::NewRun {
            request: &request,
            operator: &operator,
            reason: &args.reason,
            grid_areas: &args.grid_areas,
            offset_sources: sources,
            from_time: args.from_time,
            to_time: args.to_time,
        },
    )
    .await?;
    eprintln!(
        "replay {}: {} partitions {:?}{}, re-reading from {:?}",
        request.run_id,
        request.processor,
        partitions,
        if request.dry_run { " (dry run)" } else { "" },
        request.start
    );
    tracing::info!(run = %request.run_id, processor = %request.processor, ?partitions, dry_run = request.dry_run, %operator, reason = %args.reason, "replay started");
    plan::publish_recorded(&mut conn, &client, &args.topic_prefix, &request).await?;
    follow_and_record(
        &mut conn,
        &client,
        &args.topic_prefix,
        request,
        args.timeout_secs,
    )
    .await
}

/// `afregning replay resume ID`.
pub async fn resume(args: ResumeArgs) -> anyhow::Result<ExitCode> {
    let mut conn = runs::connect(&args.stack).await?;
    let request = record::request_of(&mut conn, &args.id).await?;
    record::finish(
        &mut conn,
        &request.run_id,
        "running",
        &serde_json::json!({}),
        None,
        None,
    )
    .await?;
    let client = kafka(&args.stack);
    // A `start` killed between recording the run and publishing its request.
    let published = {
        let (client, prefix, run_id) = (
            client.clone(),
            args.topic_prefix.clone(),
            request.run_id.clone(),
        );
        tokio::task::spawn_blocking(move || {
            client::published(&client, &prefix, &run_id, Duration::from_secs(30))
        })
        .await??
    };
    if !published {
        eprintln!(
            "replay {}: its request was never published; publishing it now",
            request.run_id
        );
        client::publish(&client, &args.topic_prefix, &request).await?;
    }
    follow_and_record(
        &mut conn,
        &client,
        &args.topic_prefix,
        request,
        args.timeout_secs,
    )
    .await
}

/// Follows the run to its end (or Ctrl-C, or the timeout) and records the outcome.
async fn follow_and_record(
    conn: &mut sqlx::PgConnection,
    client: &ClientConfig,
    prefix: &str,
    request: ReplayRequest,
    timeout_secs: u64,
) -> anyhow::Result<ExitCode> {
    let stop = Arc::new(AtomicBool::new(false));
    let signal_stop = stop.clone();
    let signal = tokio::spawn(async move {
        crate::cli::common::shutdown_signal().await;
        signal_stop.store(true, Ordering::SeqCst);
    });
    let terminal = std::io::stderr().is_terminal();
    let followed = {
        let client = client.clone();
        let prefix = prefix.to_string();
        let request = request.clone();
        let stop = stop.clone();
        tokio::task::spawn_blocking(move || {
            let bar = terminal.then(|| {
                let bar = ProgressBar::new(0);
                bar.set_style(
                    ProgressStyle::with_template(
                        "  [{bar:30}] {pos}/{len} records {percent}% {per_sec} ETA {eta} {msg}",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
                );
                bar
            });
            let group = format!("{prefix}afregning.{}", request.processor);
            let result = client::follow(
                &client,
                &prefix,
                &group,
                &request,
                &stop,
                Duration::from_secs(timeout_secs),
                |p: &Progress| match &bar {
                    Some(bar) => {
                        bar.set_length(p.records_total);
                        bar.set_position(p.records_done);
                        bar.set_message(format!(
                            "tasks applied {}/{}, caught up {}/{}",
                            p.applied, p.tasks, p.caught_up, p.tasks
                        ));
                    }
                    None => tracing::info!(
                        run = %request.run_id,
                        records_done = p.records_done,
                        records_total = p.records_total,
                        applied = p.applied,
                        caught_up = p.caught_up,
                        tasks = p.tasks,
                        "replay progress"
                    ),
                },
            );
            if let Some(bar) = bar {
                bar.finish_and_clear();
            }
            result
        })
        .await?
    };
    signal.abort();
    let summary = match record::record_followed(conn, &request.run_id, followed).await? {
        Recorded::Failed(error) => {
            eprintln!("replay {} failed: {error}", request.run_id);
            return Ok(ExitCode::FAILURE);
        }
        Recorded::Done(summary) => summary,
        Recorded::Interrupted(summary) => {
            for line in summary.render() {
                println!("{line}");
            }
            eprintln!(
                "replay {} interrupted: the processors go on; `afregning replay resume {}` follows it to the end",
                request.run_id, request.run_id
            );
            return Ok(ExitCode::from(130));
        }
    };
    for line in summary.render() {
        println!("{line}");
    }
    eprintln!("replay {} done", request.run_id);
    Ok(ExitCode::SUCCESS)
}

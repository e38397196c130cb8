//! `afregning demo`: the whole pipeline, end to end, on a local stack.
//!
//! One command a newcomer runs to see afregning work: it applies the topology
//! under a fresh per-run prefix (so runs never mix), generates a DataHub
//! scenario in the simulator, runs the connector until DataHub's queues are
//! empty, runs the processors and the sinks until they have caught up, and
//! prints one screen of what each stage did. Everything runs in this process
//! against the real broker, registry and PostgreSQL that `cargo xtask demo`
//! started; the stages are the same library code the long-running
//! subcommands use.

mod processors;
mod stages;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::NaiveDate;
use clap::Args as ClapArgs;

use super::common::StackArgs;

/// Arguments of `afregning demo`.
#[derive(Debug, Clone, ClapArgs)]
pub struct Args {
    /// Metering points in the simulated scenario.
    #[arg(long, default_value_t = 200)]
    pub metering_points: u32,
    /// First local day of metered data; the default week includes the spring DST
    /// change (29 March 2026 has 92 quarter-hours).
    #[arg(long, default_value = "2026-03-28")]
    pub first_day: NaiveDate,
    /// Number of local days.
    #[arg(long, default_value_t = 3)]
    pub days: u32,
    /// Rate (0..1) of every injected DataHub fault: 5xx, 429, slow answers,
    /// malformed and schema-invalid documents, duplicates.
    #[arg(long, default_value_t = 0.02)]
    pub fault_rate: f64,
    /// Partitions per topic.
    #[arg(long, default_value_t = 3)]
    pub partitions: u32,
    /// Topic prefix for this run (default `demo-<UTC time>.`).
    #[arg(long)]
    pub prefix: Option<String>,
    /// Where the processors keep their state and the connector its inbound log
    /// (default `target/afregning-demo/<prefix>`).
    #[arg(long)]
    pub work_dir: Option<PathBuf>,
    /// Give up on a stage after this many seconds.
    #[arg(long, default_value_t = 600)]
    pub stage_timeout_secs: u64,
    /// Where the broker, the schema registry and the database are.
    #[command(flatten)]
    pub stack: StackArgs,
}

/// Runs `afregning demo`.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let prefix = args
        .prefix
        .clone()
        .unwrap_or_else(|| format!("demo-{}.", chrono::Utc::now().format("%Y%m%dt%H%M%S")));
    let work_dir = args.work_dir.clone().unwrap_or_else(|| {
        PathBuf::from("target")
            .join("afregning-demo")
            .join(prefix.trim_end_matches('.'))
    });
    std::fs::create_dir_all(&work_dir)
        .with_context(|| format!("creating {}", work_dir.display()))?;
    let plan = stages::Plan {
        args: args.clone(),
        prefix,
        work_dir,
        stage_timeout: Duration::from_secs(args.stage_timeout_secs),
    };
    eprintln!(
        "afregning demo: prefix {}, {} metering points x {} days from {}, work dir {}",
        plan.prefix,
        args.metering_points,
        args.days,
        args.first_day,
        plan.work_dir.display()
    );
    let summary = stages::run_all(&plan).await?;
    println!("{summary}");
    println!("demo finished in {:.1} s", started.elapsed().as_secs_f64());
    Ok(if summary.problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

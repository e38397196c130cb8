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

mod counts;
mod processors;
mod progress;
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
    #[arg(long, default_value_t = 40)]
    pub metering_points: u32,
    /// First local day of metered data. The default is a whole billing month,
    /// so every stage down to the ERP statements has output; March 2026 also
    /// has the spring DST change (the 29th has 92 quarter-hours).
    #[arg(long, default_value = "2026-03-01")]
    pub first_day: NaiveDate,
    /// Number of local days.
    #[arg(long, default_value_t = 31)]
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
    /// Where the log lines go (the terminal shows progress and the summary).
    /// Default: `demo.log` in the local stack's directory (`AFREGNING_STACK_DIR`,
    /// set by `cargo xtask demo`), else `target/afregning-demo/demo.log`.
    #[arg(long)]
    pub log_file: Option<PathBuf>,
    /// Where the broker, the schema registry and the database are.
    #[command(flatten)]
    pub stack: StackArgs,
}

impl Args {
    /// The file this run logs to.
    pub fn log_file(&self) -> PathBuf {
        self.log_file.clone().unwrap_or_else(|| {
            std::env::var_os("AFREGNING_STACK_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("target").join("afregning-demo"))
                .join("demo.log")
        })
    }
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
        "afregning demo: prefix {}, {} metering points x {} days from {}, work dir {}\n    logs: {}",
        plan.prefix,
        args.metering_points,
        args.days,
        args.first_day,
        plan.work_dir.display(),
        args.log_file().display()
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

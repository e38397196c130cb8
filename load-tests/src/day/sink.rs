//! The PostgreSQL sink in its own process (this binary, re-executed with the hidden `sink`
//! subcommand), so that the day scenario reads its CPU time and peak RSS from `/proc` apart
//! from the simulator and the connector, as a deployment runs it.

use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use afregning_sinks::config::SinkConfig;
use afregning_sinks::runner::{RunMode, SinkStatus};
use anyhow::{Context, bail};

use crate::month::procfs::{self, ProcSample};

/// Flags of the hidden `sink` subcommand (set by the parent, not meant for people).
#[derive(Debug, Clone, clap::Args)]
pub struct SinkArgs {
    /// Kafka bootstrap servers.
    #[arg(long)]
    pub bootstrap_servers: String,
    /// Schema registry URL.
    #[arg(long)]
    pub registry_url: String,
    /// PostgreSQL URL; its `search_path` is the run's own schema.
    #[arg(long)]
    pub database_url: String,
    /// Topic prefix of the deployment.
    #[arg(long)]
    pub prefix: String,
    /// Partitions per topic.
    #[arg(long)]
    pub partitions: u32,
    /// The sink's `metering_direct_copy`.
    #[arg(long, action = clap::ArgAction::Set)]
    pub direct_copy: bool,
    /// The sink's `writers` (lanes).
    #[arg(long)]
    pub writers: u32,
}

impl SinkArgs {
    /// The sink's configuration: the deployment defaults with this run's addresses.
    pub fn config(&self) -> SinkConfig {
        SinkConfig {
            bootstrap_servers: self.bootstrap_servers.clone(),
            schema_registry_url: self.registry_url.clone(),
            database_url: self.database_url.clone(),
            topic_prefix: self.prefix.clone(),
            partitions: self.partitions,
            metering_direct_copy: self.direct_copy,
            writers: self.writers,
            ..SinkConfig::default()
        }
    }
}

/// Runs the database sink until SIGTERM (the child's whole life).
pub async fn run(args: SinkArgs) -> anyhow::Result<()> {
    let shutdown = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    afregning_sinks::run_timescale(
        &args.config(),
        RunMode::Continuous,
        Arc::new(SinkStatus::default()),
        shutdown,
    )
    .await
    .context("the database sink")?;
    Ok(())
}

/// The running sink child, seen from the parent.
pub struct SinkChild {
    process: tokio::process::Child,
    pid: u32,
    log: std::path::PathBuf,
    ticks: u64,
    last: ProcSample,
}

impl SinkChild {
    /// Starts `exe sink ...` with its stderr in `work/sink.log`.
    pub fn start(exe: &Path, work: &Path, args: &SinkArgs, ticks: u64) -> anyhow::Result<Self> {
        let log = work.join("sink.log");
        let process = tokio::process::Command::new(exe)
            .arg("sink")
            .args(["--bootstrap-servers", &args.bootstrap_servers])
            .args(["--registry-url", &args.registry_url])
            .args(["--database-url", &args.database_url])
            .args(["--prefix", &args.prefix])
            .args(["--partitions", &args.partitions.to_string()])
            .args(["--direct-copy", &args.direct_copy.to_string()])
            .args(["--writers", &args.writers.to_string()])
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG")
                    .unwrap_or_else(|_| "warn,rdkafka=error,sqlx=error".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).context("creating the sink's log")?)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", exe.display()))?;
        let pid = process.id().context("the sink's pid")?;
        Ok(Self {
            process,
            pid,
            log,
            ticks,
            last: ProcSample::default(),
        })
    }

    /// Fails when the sink exited, with its log's tail.
    pub fn check_alive(&mut self) -> anyhow::Result<()> {
        if let Ok(Some(status)) = self.process.try_wait() {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(15).collect();
            bail!(
                "the sink exited ({status}); last lines of {}:\n{}",
                self.log.display(),
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
        Ok(())
    }

    /// Samples `/proc` (keeping the last good sample).
    pub fn sample(&mut self) -> ProcSample {
        if let Some(s) = procfs::sample(self.pid, self.ticks) {
            self.last = s;
        }
        self.last
    }

    /// Samples once more, then stops the sink with SIGTERM (SIGKILL after 30 s).
    pub async fn stop(mut self) -> ProcSample {
        let sample = self.sample();
        let pid = nix::unistd::Pid::from_raw(self.pid as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        if tokio::time::timeout(Duration::from_secs(30), self.process.wait())
            .await
            .is_err()
        {
            eprintln!("the sink did not stop within 30 s of SIGTERM; killing it");
            let _ = self.process.kill().await;
        }
        sample
    }
}

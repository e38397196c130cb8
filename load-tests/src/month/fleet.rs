//! The parent side: the four processors as child processes, their runtime events read from
//! their stdout, "caught up" judged the way `pipeline::run_until_caught_up` judges it (every
//! input partition of every processor reported lag 0 after the last batch that did work, and
//! nothing worked for a quiet period), and `/proc` samples of each.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::io::AsyncBufReadExt;

use super::child::{ChildArgs, INPUTS_EVENT, Stage};
use super::procfs::{self, ProcSample};

/// One committed batch that did work, as the parent saw it.
#[derive(Debug, Clone, Copy)]
pub struct Batch {
    /// When the parent read the event.
    pub at: Instant,
    /// Input records in the batch.
    pub records: u64,
    /// Outputs it produced.
    pub outputs: u64,
    /// The commit round's duration as the runtime reported it (process, produce, markers,
    /// local write), ms.
    pub round_ms: u64,
}

#[derive(Debug, Default)]
struct StageState {
    inputs: Vec<String>,
    batches: Vec<Batch>,
    /// (topic, partition) → (lag, work count when reported).
    lags: BTreeMap<(String, i32), (i64, u64)>,
    stalls: u64,
    stopped: bool,
    /// When the process reported `ready` (tasks restored, fetching).
    ready: Option<Instant>,
    /// Which of the stage's processes this is (a restart starts a new one); lines of an
    /// earlier one still being read are ignored.
    generation: u64,
}

#[derive(Debug, Default)]
struct Shared {
    stages: BTreeMap<Stage, StageState>,
    /// Batches that did work, over all processors.
    work: u64,
}

struct Child {
    stage: Stage,
    process: tokio::process::Child,
    pid: u32,
    log: PathBuf,
    last: ProcSample,
    /// CPU and peak RSS of the stage's earlier processes (before a [`Fleet::restart`]), so
    /// samples count the stage's whole run.
    earlier: ProcSample,
    /// Stopped by [`Fleet::pause`]: its exit is expected.
    paused: bool,
}

/// The four running processors.
pub struct Fleet {
    children: Vec<Child>,
    shared: Arc<Mutex<Shared>>,
    partitions: i32,
    ticks: u64,
    exe: PathBuf,
    work: PathBuf,
    template: ChildArgs,
}

fn lock(shared: &Mutex<Shared>) -> std::sync::MutexGuard<'_, Shared> {
    shared.lock().unwrap_or_else(|e| e.into_inner())
}

fn on_line(shared: &Mutex<Shared>, stage: Stage, generation: u64, line: &str) {
    let Ok(event) = serde_json::from_str::<serde_json::Value>(line) else {
        return;
    };
    let mut s = lock(shared);
    if s.stages
        .get(&stage)
        .is_some_and(|st| st.generation != generation)
    {
        return;
    }
    let work = s.work;
    let kind = event["event"].as_str().unwrap_or_default().to_string();
    match kind.as_str() {
        INPUTS_EVENT => {
            let inputs = event["topics"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|t| t.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            s.stages.entry(stage).or_default().inputs = inputs;
        }
        "batch-committed" => {
            let records = event["records"].as_u64().unwrap_or(0);
            let outputs = event["outputs"].as_u64().unwrap_or(0);
            if records > 0 || outputs > 0 {
                s.work += 1;
                s.stages.entry(stage).or_default().batches.push(Batch {
                    at: Instant::now(),
                    records,
                    outputs,
                    round_ms: event["duration_ms"].as_u64().unwrap_or(0),
                });
            }
        }
        "lag" => {
            let topic = event["topic"].as_str().unwrap_or_default().to_string();
            let partition = event["partition"].as_i64().unwrap_or(-1) as i32;
            let lag = event["lag"].as_i64().unwrap_or(i64::MAX);
            s.stages
                .entry(stage)
                .or_default()
                .lags
                .insert((topic, partition), (lag, work));
        }
        "partition-stalled" => s.stages.entry(stage).or_default().stalls += 1,
        "ready" => s.stages.entry(stage).or_default().ready = Some(Instant::now()),
        "stopped" => s.stages.entry(stage).or_default().stopped = true,
        _ => {}
    }
}

impl Fleet {
    /// Starts the four processors, each as `exe processor --which <stage> ...` with its own
    /// state directory under `work` and its stderr in `work/<stage>.log`.
    pub async fn start(
        exe: &Path,
        work: &Path,
        template: &ChildArgs,
        ticks: u64,
    ) -> anyhow::Result<Self> {
        let mut fleet = Self {
            children: Vec::new(),
            shared: Arc::new(Mutex::new(Shared::default())),
            partitions: template.partitions as i32,
            ticks,
            exe: exe.to_path_buf(),
            work: work.to_path_buf(),
            template: template.clone(),
        };
        for stage in Stage::ALL {
            let child = fleet.spawn(stage)?;
            fleet.children.push(child);
        }
        Ok(fleet)
    }

    /// Starts `stage`'s process with a fresh view of its progress (no inputs, lags or
    /// batches until the new process reports them); its log is appended to.
    fn spawn(&self, stage: Stage) -> anyhow::Result<Child> {
        let log = self.work.join(format!("{}.log", stage.arg()));
        let args = ChildArgs {
            which: stage,
            state_dir: self.work.join(format!("state-{}", stage.arg())),
            ..self.template.clone()
        };
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .context("opening a child's log")?;
        let mut command = tokio::process::Command::new(&self.exe);
        command
            .arg("processor")
            .args(["--which", stage.arg()])
            .args(["--bootstrap-servers", &args.bootstrap_servers])
            .args(["--registry-url", &args.registry_url])
            .args(["--prefix", &args.prefix])
            .args(["--partitions", &args.partitions.to_string()])
            .arg("--state-dir")
            .arg(&args.state_dir)
            .args(["--supplier-gln", &args.supplier_gln])
            .args(["--stall-timeout-ms", &args.stall_timeout_ms.to_string()])
            .args(["--state-memory-mb", &args.state_memory_mb.to_string()])
            .args(["--processing-threads", &args.processing_threads.to_string()])
            .args(
                args.kafka
                    .iter()
                    .flat_map(|(k, v)| ["--kafka".to_string(), format!("{k}={v}")]),
            )
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "warn,rdkafka=error".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .kill_on_drop(true);
        let mut process = command
            .spawn()
            .with_context(|| format!("starting {}", self.exe.display()))?;
        let pid = process.id().context("the child's pid")?;
        let stdout = process.stdout.take().context("the child's stdout")?;
        let generation = {
            let mut shared = lock(&self.shared);
            let generation = shared.stages.get(&stage).map_or(0, |s| s.generation + 1);
            shared.stages.insert(
                stage,
                StageState {
                    generation,
                    ..StageState::default()
                },
            );
            generation
        };
        let reader_shared = self.shared.clone();
        tokio::spawn(async move {
            let mut lines = tokio::io::BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                on_line(&reader_shared, stage, generation, &line);
            }
        });
        Ok(Child {
            stage,
            process,
            pid,
            log,
            last: ProcSample::default(),
            earlier: ProcSample::default(),
            paused: false,
        })
    }

    /// Stops `stage`'s process with SIGTERM (it commits what is pending) and waits for it,
    /// so its input topics fill up as a backlog; [`Fleet::restart`] starts it again. Returns
    /// its last sample (CPU so far).
    pub async fn pause(&mut self, stage: Stage) -> anyhow::Result<ProcSample> {
        self.sample();
        let child = self
            .children
            .iter_mut()
            .find(|c| c.stage == stage)
            .context("no such processor")?;
        terminate(child).await;
        child.paused = true;
        lock(&self.shared).stages.entry(stage).or_default().stopped = true;
        Ok(child.last)
    }

    /// Waits until `stage`'s process has reported `ready` (its tasks restored and fetching);
    /// returns when it did. Fails at `deadline` or when a child exits.
    pub async fn wait_ready(&mut self, stage: Stage, deadline: Instant) -> anyhow::Result<Instant> {
        loop {
            if let Some(at) = lock(&self.shared).stages.get(&stage).and_then(|s| s.ready) {
                return Ok(at);
            }
            self.check_alive()?;
            if Instant::now() >= deadline {
                bail!("{} did not report ready before the deadline", stage.name());
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Starts a paused `stage` again (same state directory and consumer group).
    pub fn restart(&mut self, stage: Stage) -> anyhow::Result<()> {
        let mut fresh = self.spawn(stage)?;
        let slot = self
            .children
            .iter_mut()
            .find(|c| c.stage == stage)
            .context("no such processor")?;
        if !slot.paused {
            bail!("{} is running; pause it first", stage.name());
        }
        fresh.earlier = ProcSample {
            cpu: slot.last.cpu,
            peak_rss: slot.last.peak_rss,
            rss: 0,
        };
        fresh.last = fresh.earlier;
        *slot = fresh;
        Ok(())
    }

    /// Fails when a child exited (it never should before it is stopped), with its log's tail.
    pub fn check_alive(&mut self) -> anyhow::Result<()> {
        for child in self.children.iter_mut().filter(|c| !c.paused) {
            if let Ok(Some(status)) = child.process.try_wait() {
                let log = std::fs::read_to_string(&child.log).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(15).collect();
                bail!(
                    "the {} processor exited ({status}); last lines of {}:\n{}",
                    child.stage.name(),
                    child.log.display(),
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                );
            }
        }
        Ok(())
    }

    /// Samples every child's `/proc` (keeping the last good sample of each).
    pub fn sample(&mut self) -> BTreeMap<Stage, ProcSample> {
        for child in self.children.iter_mut().filter(|c| !c.paused) {
            if let Some(s) = procfs::sample(child.pid, self.ticks) {
                child.last = ProcSample {
                    cpu: child.earlier.cpu + s.cpu,
                    peak_rss: child.earlier.peak_rss.max(s.peak_rss),
                    rss: s.rss,
                };
            }
        }
        self.children.iter().map(|c| (c.stage, c.last)).collect()
    }

    /// What is still behind, empty when every processor is caught up: every input partition
    /// reported lag 0 after the last batch that did work anywhere.
    pub fn behind(&self) -> Vec<String> {
        let s = lock(&self.shared);
        let mut behind = Vec::new();
        for (stage, state) in &s.stages {
            if state.inputs.is_empty() {
                behind.push(format!("{} not started", stage.name()));
            }
            for topic in &state.inputs {
                for partition in 0..self.partitions {
                    match state.lags.get(&(topic.clone(), partition)) {
                        Some((0, at)) if *at == s.work => {}
                        Some((lag, _)) => {
                            behind.push(format!("{} {topic}[{partition}] lag {lag}", stage.name()))
                        }
                        None => behind.push(format!(
                            "{} {topic}[{partition}] no lag report",
                            stage.name()
                        )),
                    }
                }
            }
        }
        behind
    }

    fn work(&self) -> u64 {
        lock(&self.shared).work
    }

    /// Waits until every processor is caught up and nothing worked for `quiet`; fails at
    /// `deadline` with what is behind.
    pub async fn wait_caught_up(
        &mut self,
        quiet: Duration,
        deadline: Instant,
    ) -> anyhow::Result<()> {
        let mut since: Option<(Instant, u64)> = None;
        loop {
            tokio::time::sleep(Duration::from_millis(250)).await;
            self.check_alive()?;
            self.sample();
            let behind = self.behind();
            let work = self.work();
            if behind.is_empty() {
                match since {
                    Some((at, seen)) if seen == work => {
                        if at.elapsed() >= quiet {
                            return Ok(());
                        }
                    }
                    _ => since = Some((Instant::now(), work)),
                }
            } else {
                since = None;
            }
            if Instant::now() >= deadline {
                let mut behind = behind;
                behind.truncate(8);
                bail!(
                    "the processors did not catch up before the deadline (--max-seconds): {}",
                    behind.join("; ")
                );
            }
        }
    }

    /// The batches that did work, per processor, read at or after `from`.
    pub fn batches_since(&self, from: Instant) -> BTreeMap<Stage, Vec<Batch>> {
        let s = lock(&self.shared);
        s.stages
            .iter()
            .map(|(stage, state)| {
                (
                    *stage,
                    state
                        .batches
                        .iter()
                        .filter(|b| b.at >= from)
                        .copied()
                        .collect(),
                )
            })
            .collect()
    }

    /// Stall repairs (re-seeks) per processor so far.
    pub fn stalls(&self) -> BTreeMap<Stage, u64> {
        lock(&self.shared)
            .stages
            .iter()
            .map(|(stage, state)| (*stage, state.stalls))
            .collect()
    }

    /// Samples once more, then stops every child with SIGTERM (each commits what is pending)
    /// and waits for it (SIGKILL after 30 s). Returns the last samples.
    pub async fn stop(mut self) -> anyhow::Result<BTreeMap<Stage, ProcSample>> {
        let samples = self.sample();
        for child in self.children.iter().filter(|c| !c.paused) {
            let pid = nix::unistd::Pid::from_raw(child.pid as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        }
        for child in self.children.iter_mut().filter(|c| !c.paused) {
            terminate(child).await;
        }
        Ok(samples)
    }
}

/// SIGTERM (each child commits what is pending) and a wait, SIGKILL after 30 s.
async fn terminate(child: &mut Child) {
    let pid = nix::unistd::Pid::from_raw(child.pid as i32);
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
    if tokio::time::timeout(Duration::from_secs(30), child.process.wait())
        .await
        .is_err()
    {
        eprintln!(
            "the {} processor did not stop within 30 s of SIGTERM; killing it",
            child.stage.name()
        );
        let _ = child.process.kill().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_of_a_restarted_stages_earlier_process_are_ignored() {
        let shared = Mutex::new(Shared::default());
        lock(&shared).stages.insert(
            Stage::Validate,
            StageState {
                generation: 1,
                ..StageState::default()
            },
        );
        let batch = r#"{"event":"batch-committed","records":10,"outputs":10,"duration_ms":7}"#;
        on_line(&shared, Stage::Validate, 0, batch);
        on_line(&shared, Stage::Validate, 0, r#"{"event":"ready"}"#);
        {
            let s = lock(&shared);
            let st = &s.stages[&Stage::Validate];
            assert!(st.batches.is_empty() && st.ready.is_none() && s.work == 0);
        }
        on_line(&shared, Stage::Validate, 1, batch);
        on_line(&shared, Stage::Validate, 1, r#"{"event":"ready"}"#);
        let s = lock(&shared);
        let st = &s.stages[&Stage::Validate];
        assert_eq!(st.batches.len(), 1);
        assert_eq!(st.batches[0].round_ms, 7);
        assert!(st.ready.is_some());
        assert_eq!(s.work, 1);
    }
}

//! The driver: one async loop per processor process that owns the tasks,
//! reacts to membership changes, restores, feeds records into batches and runs
//! checkpoint rounds. Blocking work (RocksDB, rdkafka's blocking calls,
//! processing) runs on blocking threads or the consumers' own threads; the
//! loop itself only moves data and awaits.

mod commit;
mod lag;
pub(crate) mod replay;
mod restore;

use lag::ListedHighs;

use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::{Semaphore, mpsc};

use crate::runtime::changelog::changelog_topic;
use crate::runtime::checkpoint::{Checkpointer, OutputProducer, PendingItem, TaskBatch};
use crate::runtime::clients;
use crate::runtime::config::{RuntimeConfig, StartFrom};
use crate::runtime::consumer::{DataCommand, DataConsumer, GroupMember, Membership};
use crate::runtime::error::RuntimeError;
use crate::runtime::events::{Events, Observer, RuntimeEvent};
use crate::runtime::global::{self, GlobalStore};
use crate::runtime::instances::{self, Instances};
use crate::runtime::processor::GlobalTableSpec;
use crate::runtime::processor::{GlobalChange, Processor, SharedClock, SystemClock};
use crate::runtime::recovery::{self, RestoreSetup, Restored};
use crate::runtime::store::{StateMemory, Store};
use crate::runtime::task::{Admit, Phase, Rewind, Running};
use replay::ReplayControl;

/// How many tasks restore at once (each uses its own changelog consumer).
const PARALLEL_RESTORES: usize = 4;

/// How long an unproven input position may stay silent while it has lag
/// before it is moved back (see `task::Running::admit`).
const UNVERIFIED_PATIENCE: Duration = Duration::from_secs(2);

/// Whether the runtime is alive and ready, for `/health` and `/ready`.
#[derive(Debug, Clone, Default)]
pub struct RuntimeStatus(Arc<StatusInner>);

#[derive(Debug, Default)]
struct StatusInner {
    alive: AtomicBool,
    ready: AtomicBool,
}

impl RuntimeStatus {
    /// True while the runtime's loop runs.
    pub fn is_healthy(&self) -> bool {
        self.0.alive.load(Ordering::SeqCst)
    }

    /// True when the global tables caught up and every assigned task finished
    /// restoring (a Kubernetes readiness probe should gate on this).
    pub fn is_ready(&self) -> bool {
        self.0.ready.load(Ordering::SeqCst)
    }

    fn set_alive(&self, alive: bool) {
        self.0.alive.store(alive, Ordering::SeqCst);
    }

    fn set_ready(&self, ready: bool) -> bool {
        self.0.ready.swap(ready, Ordering::SeqCst) != ready
    }
}

/// A processor with its runtime settings, ready to run.
pub struct Runtime<P: Processor> {
    processor: P,
    config: RuntimeConfig,
    clock: SharedClock,
    observer: Option<Observer>,
    status: RuntimeStatus,
}

impl<P: Processor> Runtime<P> {
    /// The runtime for `processor` with `config` and the system clock.
    pub fn new(processor: P, config: RuntimeConfig) -> Self {
        Self {
            processor,
            config,
            clock: Arc::new(SystemClock),
            observer: None,
            status: RuntimeStatus::default(),
        }
    }

    /// Uses `clock` for processors' time and ticks (tests).
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// Calls `observer` with every [`RuntimeEvent`] (tests, the testbed).
    pub fn with_observer(mut self, observer: Observer) -> Self {
        self.observer = Some(observer);
        self
    }

    /// The status handle (serve it with [`crate::runtime::admin::router`]).
    pub fn status(&self) -> RuntimeStatus {
        self.status.clone()
    }

    /// Runs until `shutdown` resolves (then commits what is pending and
    /// leaves the group) or a fatal error.
    pub async fn run<F>(self, shutdown: F) -> Result<(), RuntimeError>
    where
        F: Future<Output = ()> + Send,
    {
        let status = self.status.clone();
        status.set_alive(true);
        let result = start_and_drive(self, shutdown).await;
        status.set_alive(false);
        status.set_ready(false);
        result
    }
}

/// Runs `processor` with `config` until `shutdown` resolves: what the
/// `afregning process <name>` subcommands call.
pub async fn run_processor<P, F>(
    processor: P,
    config: RuntimeConfig,
    shutdown: F,
) -> Result<(), RuntimeError>
where
    P: Processor,
    F: Future<Output = ()> + Send,
{
    Runtime::new(processor, config).run(shutdown).await
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

struct RestoreOutcome {
    task: i32,
    job_id: u64,
    result: Result<Option<Restored>, RuntimeError>,
}

struct TaskState {
    phase: Phase,
}

struct Driver<P: Processor> {
    /// The processor's instances: one, or one per task (decision 0153).
    processors: Instances<P>,
    config: RuntimeConfig,
    clock: SharedClock,
    events: Events,
    status: RuntimeStatus,
    inputs: Vec<String>,
    /// Global table name → topic.
    table_topics: BTreeMap<String, String>,
    stateless: bool,
    tasks: BTreeMap<i32, TaskState>,
    pending_total: usize,
    joined: bool,
    next_job: u64,
    next_epoch: u64,
    restore_setup: Arc<RestoreSetup>,
    restore_slots: Arc<Semaphore>,
    restore_tx: mpsc::UnboundedSender<RestoreOutcome>,
    deferred: VecDeque<RestoreOutcome>,
    checkpointer: Checkpointer,
    memory: StateMemory,
    data: DataConsumer,
    /// High watermarks from the background ListOffsets probe (see `check_lag`).
    listed_highs: ListedHighs,
    group: Arc<BaseConsumer<crate::runtime::consumer::GroupContext>>,
    /// Acts on replay requests (decision 0090).
    replay: ReplayControl,
}

async fn start_and_drive<P, F>(runtime: Runtime<P>, shutdown: F) -> Result<(), RuntimeError>
where
    P: Processor,
    F: Future<Output = ()> + Send,
{
    let Runtime {
        processor,
        config,
        clock,
        observer,
        status,
    } = runtime;
    config.validate()?;
    let name = processor.name().to_string();
    if !valid_name(&name) {
        return Err(RuntimeError::Config(format!(
            "processor name {name:?} must be kebab case ([a-z0-9-])"
        )));
    }
    let stores: Vec<String> = processor.stores().into_iter().map(|s| s.name).collect();
    if let Some(bad) = stores.iter().find(|s| !valid_name(s)) {
        return Err(RuntimeError::Config(format!(
            "store name {bad:?} must be kebab case ([a-z0-9-])"
        )));
    }
    if (1..stores.len()).any(|i| stores[..i].contains(&stores[i])) {
        return Err(RuntimeError::Config(format!(
            "store names must be unique: {stores:?}"
        )));
    }
    let inputs = processor.input_topics();
    if inputs.is_empty() {
        return Err(RuntimeError::Config(
            "the processor has no input topics".to_string(),
        ));
    }
    let mut tables = processor.global_tables();
    // Replay requests are followed like a global table the processor never sees.
    crate::replay::topics::ensure(
        &clients::admin(&config),
        &config.topic_prefix,
        config.changelog_replication_factor,
    )
    .await
    .map_err(|e| RuntimeError::Topology(format!("replay control topics: {e}")))?;
    tables.push(GlobalTableSpec::new(
        crate::replay::REQUESTS_TABLE,
        crate::replay::topics::requests_topic(&config.topic_prefix),
    ));
    let events = Events::new(&name, observer);
    let group = config.group(&name);
    let changelogs: Vec<String> = stores
        .iter()
        .map(|s| changelog_topic(&config.topic_prefix, &name, s))
        .collect();
    let partitions = crate::runtime::graph::check_topology(&config, &inputs, &changelogs).await?;
    let state_dir: PathBuf = config.state_dir.join(group.replace(['/', '\\'], "_"));
    let memory = StateMemory::new(config.state_memory_mb);
    let producer = OutputProducer::new(&clients::producer(&config), config.max_in_flight_records)?;

    // Global tables first: no task may process before they caught up.
    let (globals, follower, global_rx) = if tables.is_empty() {
        (None, None, None)
    } else {
        let store = Arc::new(GlobalStore::open(
            &state_dir.join("global"),
            &tables,
            &memory,
        )?);
        let catch_up_config = clients::to_end_consumer(&config, &group, "global", "earliest");
        let follow_config =
            clients::assign_consumer(&config, &group, "global", config.consumer_queue_kbytes);
        let s = store.clone();
        let (follower, rx, records) = tokio::task::spawn_blocking(move || {
            global::catch_up_and_follow(
                &catch_up_config,
                &follow_config,
                s,
                Duration::from_secs(10),
            )
        })
        .await
        .map_err(|e| RuntimeError::Internal(e.to_string()))??;
        events.emit(RuntimeEvent::GlobalCaughtUp { records });
        (Some(store), Some(follower), Some(rx))
    };

    let restore_setup = Arc::new(RestoreSetup {
        state_dir: state_dir.clone(),
        stores: stores.clone(),
        changelogs: changelogs.clone(),
        memory: memory.clone(),
        consumer_config: clients::to_end_consumer(&config, &group, "restore", "error"),
        producer: producer.clone(),
        globals: globals.clone(),
        events: events.clone(),
        chunk_records: config.restore_chunk_records,
    });
    let checkpointer = Checkpointer {
        producer,
        stores: stores.clone(),
        changelogs,
        globals,
        events: events.clone(),
    };
    let (data, data_rx) = DataConsumer::start(
        &clients::data_consumer(&config, &group),
        1000.min(config.batch_max_records),
        4,
    )?;
    let (member, membership_rx) =
        match GroupMember::start(&clients::group_consumer(&config, &group), &inputs[0]) {
            Ok(started) => started,
            Err(error) => {
                tokio::task::spawn_blocking(move || data.stop()).await.ok();
                return Err(error);
            }
        };
    events.emit(RuntimeEvent::Started {
        group: group.clone(),
        partitions,
    });
    let (restore_tx, restore_rx) = mpsc::unbounded_channel();
    let replay = ReplayControl {
        processor: name.clone(),
        inputs: inputs.clone(),
        results_topic: crate::replay::topics::results_topic(&config.topic_prefix),
    };
    let processing_threads = instances::resolve_threads(config.processing_threads);
    let mut driver = Driver {
        replay,
        processors: Instances::new(processor, processing_threads),
        table_topics: tables
            .iter()
            .map(|t| (t.name.clone(), t.topic.clone()))
            .collect(),
        stateless: stores.is_empty(),
        config,
        clock,
        events: events.clone(),
        status,
        inputs,
        tasks: BTreeMap::new(),
        pending_total: 0,
        joined: false,
        next_job: 0,
        next_epoch: 0,
        restore_setup,
        restore_slots: Arc::new(Semaphore::new(PARALLEL_RESTORES)),
        restore_tx,
        deferred: VecDeque::new(),
        checkpointer,
        memory,
        group: member.consumer().clone(),
        data,
        listed_highs: ListedHighs::default(),
    };
    let result = driver
        .drive(shutdown, membership_rx, restore_rx, data_rx, global_rx)
        .await;

    // Stop in order: leave the group (its revoke finds the driver gone and
    // returns at once), stop fetching, cancel restores, close the stores.
    driver.listed_highs.finish().await;
    let Driver {
        data, tasks, group, ..
    } = driver;
    drop(group);
    tokio::task::spawn_blocking(move || {
        member.stop();
        data.stop();
        if let Some(follower) = follower {
            follower.stop();
        }
    })
    .await
    .map_err(|e| RuntimeError::Internal(e.to_string()))?;
    for (_, state) in tasks {
        if let Phase::Restoring { cancel, job, .. } = state.phase {
            cancel.store(true, Ordering::SeqCst);
            let _ = job.await;
        }
    }
    events.emit(RuntimeEvent::Stopped);
    result
}

impl<P: Processor> Driver<P> {
    async fn drive<F>(
        &mut self,
        shutdown: F,
        mut membership: mpsc::Receiver<Membership>,
        mut restores: mpsc::UnboundedReceiver<RestoreOutcome>,
        mut data: mpsc::Receiver<crate::runtime::consumer::DataBatch>,
        mut globals: Option<mpsc::Receiver<GlobalChange>>,
    ) -> Result<(), RuntimeError>
    where
        F: Future<Output = ()> + Send,
    {
        tokio::pin!(shutdown);
        let tick_every = self.processors.main().and_then(Processor::tick_interval);
        let mut ticks = tokio::time::interval(tick_every.unwrap_or(Duration::from_secs(3600)));
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks.tick().await;
        let mut lag_checks =
            tokio::time::interval(Duration::from_millis(self.config.lag_check_interval_ms));
        lag_checks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let commit_interval = Duration::from_millis(self.config.commit_interval_ms);
        loop {
            while let Some(outcome) = self.deferred.pop_front() {
                self.on_restored(outcome).await?;
            }
            let deadline = self
                .running()
                .filter_map(|(_, r)| r.first_pending_at)
                .min()
                .map(|first| tokio::time::Instant::from_std(first + commit_interval));
            let mut caught_up = false;
            tokio::select! {
                biased;
                () = &mut shutdown => break,
                message = membership.recv() => match message {
                    Some(message) => self.on_membership(message, &mut restores).await,
                    None => return Err(RuntimeError::Internal("the group consumer thread stopped".to_string())),
                },
                Some(outcome) = restores.recv() => self.on_restored(outcome).await?,
                change = next_global(&mut globals) => match change {
                    Some(change) => self.on_global(change),
                    None => return Err(RuntimeError::Internal("the global-table follower stopped".to_string())),
                },
                batch = data.recv(), if self.pending_total < self.config.batch_max_records => match batch {
                    Some(batch) => {
                        // Everything fetched is in: commit now rather than at
                        // the interval (which stays the fallback under load).
                        caught_up = batch.drained && data.is_empty();
                        self.on_data(batch);
                    }
                    None => return Err(RuntimeError::Internal("the input consumer thread stopped".to_string())),
                },
                () = sleep_until(deadline), if deadline.is_some() => self.commit_round().await?,
                _ = ticks.tick(), if tick_every.is_some() => self.on_tick(),
                _ = lag_checks.tick() => self.check_lag().await?,
            }
            if self.pending_total >= self.config.batch_max_records || caught_up {
                self.commit_round().await?;
            }
        }
        // Drain, then commit: what was read is committed before leaving.
        self.commit_round().await
    }

    fn running(&self) -> impl Iterator<Item = (i32, &Running)> {
        self.tasks
            .iter()
            .filter_map(|(task, state)| match &state.phase {
                Phase::Running(running) => Some((*task, running)),
                Phase::Restoring { .. } => None,
            })
    }

    fn update_readiness(&self) {
        let restoring = self
            .tasks
            .values()
            .filter(|s| matches!(s.phase, Phase::Restoring { .. }))
            .count();
        self.events.tasks(self.tasks.len() - restoring, restoring);
        let ready = self.joined && restoring == 0;
        if self.status.set_ready(ready) && ready {
            self.events.emit(RuntimeEvent::Ready);
        }
    }

    async fn on_membership(
        &mut self,
        message: Membership,
        restores: &mut mpsc::UnboundedReceiver<RestoreOutcome>,
    ) {
        match message {
            Membership::Assigned(tasks) => {
                self.joined = true;
                if !tasks.is_empty() {
                    self.events.emit(RuntimeEvent::Assigned {
                        tasks: tasks.clone(),
                    });
                }
                for task in tasks {
                    if !self.tasks.contains_key(&task) {
                        self.start_restore(task);
                    }
                }
            }
            Membership::Revoked { tasks, lost, done } => {
                self.events.emit(RuntimeEvent::Revoked {
                    tasks: tasks.clone(),
                    lost,
                });
                for task in tasks {
                    self.processors.forget(task);
                    let Some(state) = self.tasks.remove(&task) else {
                        continue;
                    };
                    match state.phase {
                        Phase::Restoring {
                            cancel,
                            job,
                            job_id,
                            ..
                        } => {
                            cancel.store(true, Ordering::SeqCst);
                            let _ = job.await;
                            // The job's outcome holds the store open; drop it
                            // now so the task can be reopened at once.
                            while let Ok(outcome) = restores.try_recv() {
                                if outcome.job_id != job_id {
                                    self.deferred.push_back(outcome);
                                }
                            }
                            self.deferred.retain(|o| o.job_id != job_id);
                        }
                        Phase::Running(running) => {
                            // The uncommitted batch is abandoned: the next
                            // owner re-processes it from the stored offsets.
                            self.pending_total -= running.pending_records;
                            self.data.command(DataCommand::Unassign {
                                partitions: self.inputs.iter().map(|t| (t.clone(), task)).collect(),
                            });
                        }
                    }
                }
                let _ = done.send(());
            }
        }
        self.update_readiness();
    }

    fn on_global(&mut self, change: GlobalChange) {
        let Some(topic) = self.table_topics.get(&change.table).cloned() else {
            return;
        };
        let now = Instant::now();
        for (task, state) in &mut self.tasks {
            match &mut state.phase {
                Phase::Running(running) => self.replay.deliver(
                    running,
                    *task,
                    &topic,
                    change.clone(),
                    now,
                    &mut self.next_epoch,
                    &self.data,
                ),
                Phase::Restoring {
                    buffered_globals, ..
                } => buffered_globals.push(change.clone()),
            }
        }
    }

    fn on_data(&mut self, batch: crate::runtime::consumer::DataBatch) {
        let now = Instant::now();
        for (epoch, record) in batch.records {
            let Some(TaskState {
                phase: Phase::Running(running),
            }) = self.tasks.get_mut(&record.partition)
            else {
                continue;
            };
            match running.admit(epoch, &record) {
                Admit::Take => {
                    running.push_record(record, now);
                    self.pending_total += 1;
                }
                Admit::Drop => {}
                Admit::Rewind { topic, from } => {
                    tracing::debug!(%topic, partition = record.partition, next = running.next_offsets.get(&topic).copied(), first = record.offset, from, "the fetch started after the position asked for; fetching again from earlier");
                    metrics::counter!("afregning_processor_fetch_rewinds_total", "processor" => self.events.processor().to_string(), "topic" => topic.clone()).increment(1);
                    self.next_epoch += 1;
                    running.epochs.insert(topic.clone(), self.next_epoch);
                    self.data.command(DataCommand::Seek {
                        topic,
                        partition: record.partition,
                        offset: from,
                        epoch: self.next_epoch,
                    });
                }
            }
        }
    }

    fn on_tick(&mut self) {
        let at = self.clock.now();
        let now = Instant::now();
        for state in self.tasks.values_mut() {
            if let Phase::Running(running) = &mut state.phase {
                running.pending.push(PendingItem::Tick(at));
                running.first_pending_at.get_or_insert(now);
            }
        }
    }
}

/// Where inputs without a stored offset start: for a stateless processor that
/// never committed, the group's committed offsets (its only record of
/// progress); otherwise, and as a fallback, `start_from`.
fn resolve_start(
    group: &BaseConsumer<crate::runtime::consumer::GroupContext>,
    data: &BaseConsumer<crate::runtime::consumer::DataContext>,
    topics: &[String],
    task: i32,
    stateless_fallback: bool,
    start_from: StartFrom,
) -> Result<BTreeMap<String, i64>, RuntimeError> {
    let mut out = BTreeMap::new();
    let mut committed = BTreeMap::new();
    if stateless_fallback {
        let mut tpl = TopicPartitionList::new();
        for topic in topics {
            tpl.add_partition(topic, task);
        }
        if let Ok(offsets) = group.committed_offsets(tpl, Duration::from_secs(10)) {
            for element in offsets.elements() {
                if let Offset::Offset(offset) = element.offset() {
                    committed.insert(element.topic().to_string(), offset);
                }
            }
        }
    }
    for topic in topics {
        let offset = match committed.get(topic) {
            Some(offset) => *offset,
            None => {
                let (low, high) = data.fetch_watermarks(topic, task, Duration::from_secs(10))?;
                match start_from {
                    StartFrom::Earliest => low,
                    StartFrom::Latest => high,
                }
            }
        };
        out.insert(topic.clone(), offset);
    }
    Ok(out)
}

async fn next_global(globals: &mut Option<mpsc::Receiver<GlobalChange>>) -> Option<GlobalChange> {
    match globals {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::valid_name;

    #[test]
    fn names_are_kebab_case() {
        assert!(valid_name("enrich"));
        assert!(valid_name("metering-points"));
        assert!(!valid_name("Enrich"));
        assert!(!valid_name("a.b"));
        assert!(!valid_name(""));
    }
}

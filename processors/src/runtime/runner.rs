//! The driver: one async loop per processor process that owns the tasks,
//! reacts to membership changes, restores, feeds records into batches and runs
//! checkpoint rounds. Blocking work (RocksDB, rdkafka's blocking calls,
//! processing) runs on blocking threads or the consumers' own threads; the
//! loop itself only moves data and awaits.

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
use crate::runtime::processor::{GlobalChange, Processor, SharedClock, SystemClock};
use crate::runtime::recovery::{self, RestoreSetup, Restored};
use crate::runtime::store::{StateMemory, Store};
use crate::runtime::task::{Admit, Phase, Rewind, Running};

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
    processor: Option<P>,
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
    let tables = processor.global_tables();
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
    let mut driver = Driver {
        processor: Some(processor),
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
        let tick_every = self.processor.as_ref().and_then(Processor::tick_interval);
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

    fn start_restore(&mut self, task: i32) {
        self.next_job += 1;
        let job_id = self.next_job;
        let cancel = Arc::new(AtomicBool::new(false));
        let setup = self.restore_setup.clone();
        let slots = self.restore_slots.clone();
        let tx = self.restore_tx.clone();
        let job_cancel = cancel.clone();
        let job = tokio::spawn(async move {
            let result = match slots.acquire_owned().await {
                Ok(_permit) if job_cancel.load(Ordering::SeqCst) => Ok(None),
                Ok(_permit) => recovery::restore_task(setup, task, job_cancel).await,
                Err(_) => Ok(None),
            };
            let _ = tx.send(RestoreOutcome {
                task,
                job_id,
                result,
            });
        });
        self.tasks.insert(
            task,
            TaskState {
                phase: Phase::Restoring {
                    cancel,
                    job,
                    job_id,
                    buffered_globals: Vec::new(),
                },
            },
        );
    }

    async fn on_restored(&mut self, outcome: RestoreOutcome) -> Result<(), RuntimeError> {
        let RestoreOutcome {
            task,
            job_id,
            result,
        } = outcome;
        let Some(state) = self.tasks.get_mut(&task) else {
            return Ok(());
        };
        let buffered = match &mut state.phase {
            Phase::Restoring {
                job_id: current,
                buffered_globals,
                ..
            } if *current == job_id => std::mem::take(buffered_globals),
            _ => return Ok(()),
        };
        let Some(restored) = result? else {
            return Ok(());
        };

        // Where each input resumes: the offsets stored with the state.
        let committed = restored.metadata.committed.clone();
        let mut offsets: BTreeMap<String, i64> = committed.input_offsets.clone();
        let missing: Vec<String> = self
            .inputs
            .iter()
            .filter(|t| !offsets.contains_key(*t))
            .cloned()
            .collect();
        if !missing.is_empty() {
            let group = self.group.clone();
            let data = self.data.consumer().clone();
            let stateless_fallback = self.stateless && committed.seq == 0;
            let start_from = self.config.start_from;
            let resolved = tokio::task::spawn_blocking(move || {
                resolve_start(
                    &group,
                    &data,
                    &missing,
                    task,
                    stateless_fallback,
                    start_from,
                )
            })
            .await
            .map_err(|e| RuntimeError::Internal(e.to_string()))??;
            offsets.extend(resolved);
        }
        self.next_epoch += 1;
        let epoch = self.next_epoch;
        let now = Instant::now();
        let mut running = Running {
            store: restored.store,
            metadata: restored.metadata,
            next_offsets: offsets.clone(),
            epochs: self.inputs.iter().map(|t| (t.clone(), epoch)).collect(),
            last_progress: self.inputs.iter().map(|t| (t.clone(), now)).collect(),
            lag_since: BTreeMap::new(),
            pending: Vec::new(),
            pending_records: 0,
            first_pending_at: None,
            global_seen: if committed.seq == 0 {
                restored.global_offsets.clone()
            } else {
                committed.global_seen.clone()
            },
            unverified: offsets
                .iter()
                .map(|(t, o)| (t.clone(), Rewind::at(*o)))
                .collect(),
        };
        for change in restored.global_changes {
            if let Some(topic) = self.table_topics.get(&change.table).cloned() {
                running.push_global(&topic, change, now);
            }
        }
        for change in buffered {
            let Some(topic) = self.table_topics.get(&change.table).cloned() else {
                continue;
            };
            let covered = restored
                .global_offsets
                .get(&topic)
                .and_then(|p| p.get(&change.partition))
                .is_some_and(|last| change.offset <= *last);
            if !covered {
                running.push_global(&topic, change, now);
            }
        }
        self.data.command(DataCommand::Assign {
            partitions: self
                .inputs
                .iter()
                .map(|t| (t.clone(), task, Offset::Offset(offsets[t])))
                .collect(),
            epoch,
        });
        self.events.emit(RuntimeEvent::TaskRunning {
            task,
            input_offsets: offsets,
        });
        state.phase = Phase::Running(running);
        self.update_readiness();
        Ok(())
    }

    fn on_global(&mut self, change: GlobalChange) {
        let Some(topic) = self.table_topics.get(&change.table).cloned() else {
            return;
        };
        let now = Instant::now();
        for state in self.tasks.values_mut() {
            match &mut state.phase {
                Phase::Running(running) => running.push_global(&topic, change.clone(), now),
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

    async fn commit_round(&mut self) -> Result<(), RuntimeError> {
        let mut batches = Vec::new();
        for (task, state) in &mut self.tasks {
            let Phase::Running(running) = &mut state.phase else {
                continue;
            };
            if running.pending.is_empty() {
                continue;
            }
            batches.push(TaskBatch {
                task: *task,
                store: running.store.clone() as Arc<dyn Store>,
                metadata: running.metadata.clone(),
                items: std::mem::take(&mut running.pending),
                input_offsets_after: running.offsets_after(),
                global_seen_after: running.global_seen.clone(),
            });
            running.pending_records = 0;
            running.first_pending_at = None;
        }
        self.pending_total = 0;
        if batches.is_empty() {
            return Ok(());
        }
        let now = self.clock.now();
        let results = self
            .checkpointer
            .run(&mut self.processor, batches, now)
            .await?;
        let mut commit = TopicPartitionList::new();
        for result in results {
            let Some(TaskState {
                phase: Phase::Running(running),
            }) = self.tasks.get_mut(&result.task)
            else {
                continue;
            };
            if result.committed {
                running.metadata = result.metadata;
                for (topic, offset) in &running.metadata.committed.input_offsets {
                    commit.add_partition_offset(topic, result.task, Offset::Offset(*offset))?;
                }
            }
        }
        if self.config.commit_group_offsets && commit.count() > 0 {
            // For lag monitoring only; asynchronous, never read back.
            if let Err(error) = self.group.commit(&commit, CommitMode::Async) {
                tracing::debug!(%error, "committing group offsets for monitoring failed");
            }
        }
        Ok(())
    }

    /// Measures lag and re-seeks partitions that have lag but deliver nothing
    /// (the local broker's lost fetches, LOCAL-BROKER.md).
    ///
    /// Nothing here waits for the broker. The high watermark is the larger of
    /// the one the data consumer's fetch responses reported (librdkafka
    /// statistics) and the last answer of a background ListOffsets probe (one
    /// at a time, off the loop), which backs it up for a partition whose
    /// fetches stopped. Awaiting ListOffsets here blocked the loop a fetch
    /// wait per partition (a broker answers a connection's requests in order,
    /// so each queued behind the data consumer's long-poll fetch): 0.3-1.2 s
    /// per check on the local broker, while fetched records waited undrained
    /// and then looked stalled (docs/processors-runtime.md, issue 13).
    ///
    /// A partition is stalled when it has had lag, and no progress, for the
    /// patience: counted from when the lag was first seen or the last progress,
    /// whichever is later, never from a quiet period before the lag existed
    /// (a record appended to a partition that was quiet for minutes is not a
    /// stall).
    async fn check_lag(&mut self) -> Result<(), RuntimeError> {
        self.events
            .state_memory(self.memory.usage_bytes(), self.memory.budget_bytes());
        let mut probes: Vec<(i32, String)> = Vec::new();
        for (task, running) in self.running() {
            probes.extend(running.next_offsets.keys().map(|t| (task, t.clone())));
        }
        if probes.is_empty() {
            return Ok(());
        }
        self.listed_highs
            .probe(self.data.consumer().clone(), probes.clone());
        let known: Vec<(i32, String, i64)> = probes
            .into_iter()
            .filter_map(|(task, topic)| {
                let fetched = self.data.fetched_high(&topic, task);
                let listed = self.listed_highs.get(&topic, task);
                fetched.max(listed).map(|high| (task, topic, high))
            })
            .collect();
        let stall_after = Duration::from_millis(self.config.stall_timeout_ms);
        let now = Instant::now();
        for (task, topic, high) in known {
            let Some(TaskState {
                phase: Phase::Running(running),
            }) = self.tasks.get_mut(&task)
            else {
                continue;
            };
            let Some(next) = running.next_offsets.get(&topic).copied() else {
                continue;
            };
            let lag = (high - next).max(0);
            self.events.lag(&topic, task, lag);
            // A position not yet proven (just assigned, sought or rewound)
            // that stays silent is moved back sooner: the local broker
            // answers a fetch starting inside its last batch with nothing.
            let unverified = running.unverified.get(&topic).copied();
            let patience = if unverified.is_some() {
                stall_after.min(UNVERIFIED_PATIENCE)
            } else {
                stall_after
            };
            if running.observe_lag(&topic, lag, now, patience) {
                let (from, rewind) = match unverified {
                    Some(r) => {
                        let back = (r.from - r.window).max(0);
                        (
                            back,
                            Rewind {
                                from: back,
                                window: r.window.saturating_mul(10),
                            },
                        )
                    }
                    None => (next, Rewind::at(next)),
                };
                self.next_epoch += 1;
                running.epochs.insert(topic.clone(), self.next_epoch);
                running.last_progress.insert(topic.clone(), now);
                running.unverified.insert(topic.clone(), rewind);
                self.data.command(DataCommand::Seek {
                    topic: topic.clone(),
                    partition: task,
                    offset: from,
                    epoch: self.next_epoch,
                });
                self.events.emit(RuntimeEvent::PartitionStalled {
                    topic,
                    partition: task,
                    next_offset: from,
                    high_watermark: high,
                });
            }
        }
        Ok(())
    }
}

/// High watermarks answered by ListOffsets, probed in the background: at
/// most one probe runs at a time and the lag check never waits for it.
#[derive(Clone, Default)]
struct ListedHighs {
    highs: Arc<std::sync::Mutex<BTreeMap<(String, i32), i64>>>,
    probing: Arc<AtomicBool>,
    /// The running probe, awaited before the runtime stops (it holds the
    /// data consumer).
    job: Arc<std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>>,
}

impl ListedHighs {
    /// Starts a probe of `partitions` unless one is running.
    fn probe(
        &self,
        consumer: Arc<BaseConsumer<crate::runtime::consumer::DataContext>>,
        partitions: Vec<(i32, String)>,
    ) {
        if self.probing.swap(true, Ordering::SeqCst) {
            return;
        }
        let this = self.clone();
        let job = tokio::task::spawn_blocking(move || {
            for (task, topic) in partitions {
                if let Ok((_, high)) =
                    consumer.fetch_watermarks(&topic, task, Duration::from_secs(2))
                {
                    this.highs
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert((topic, task), high);
                }
            }
            this.probing.store(false, Ordering::SeqCst);
        });
        *self.job.lock().unwrap_or_else(|e| e.into_inner()) = Some(job);
    }

    /// Waits for the running probe, if any.
    async fn finish(&self) {
        let job = self.job.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(job) = job {
            let _ = job.await;
        }
    }

    /// The last probed high watermark of `topic`/`partition`.
    fn get(&self, topic: &str, partition: i32) -> Option<i64> {
        self.highs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&(topic.to_string(), partition))
            .copied()
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

//! The two consumers of a processor and the rebalance bridge.
//!
//! **Membership** (the group consumer) decides which instance owns which task.
//! It subscribes to the primary input topic only and keeps its partitions
//! paused. Its rebalance callbacks run on its own thread (inside `poll`) and
//! are bridged to the async driver Vector-style: on revoke the callback sends
//! the revoked tasks and blocks on a rendezvous until the driver has dropped
//! their uncommitted batches, cancelled their restores and closed their
//! stores; on assign it reports the new tasks and returns at once (restore
//! happens off the callback, so a long restore never stalls the group).
//!
//! **Data** (an assign-only consumer) fetches the inputs of running tasks,
//! all co-partitioned topics, assigned explicitly at the offsets stored with
//! each task's state. This keeps co-partitioning exact whatever the group's
//! assignor does with several topics, and takes the group's positions (which
//! the local broker loses with cooperative-sticky) out of the data path.
//! Every (re)assignment or seek of a partition gets a new *epoch*; records
//! carry the epoch they were fetched under, and the driver drops records of
//! an older epoch, so nothing pre-fetched before a seek or reassignment can
//! slip into a batch.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;
use rdkafka::message::{Headers, Message};
use rdkafka::statistics::Statistics;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use tokio::sync::mpsc;

use crate::runtime::error::RuntimeError;
use crate::runtime::processor::InputRecord;

/// How long a revoke callback waits for the driver before giving up (it must
/// stay under the group's rebalance timeout).
const REVOKE_WAIT: Duration = Duration::from_secs(60);

/// What the group tells the driver.
#[derive(Debug)]
pub(crate) enum Membership {
    /// Tasks newly owned by this instance.
    Assigned(Vec<i32>),
    /// Tasks taken away; the driver answers on `done` once they are closed.
    Revoked {
        tasks: Vec<i32>,
        lost: bool,
        done: std::sync::mpsc::SyncSender<()>,
    },
}

/// The rebalance bridge.
pub(crate) struct GroupContext {
    primary: String,
    tx: mpsc::Sender<Membership>,
    closing: AtomicBool,
}

impl ClientContext for GroupContext {}

fn tasks_of(tpl: &TopicPartitionList, topic: &str) -> Vec<i32> {
    let mut tasks: Vec<i32> = tpl
        .elements()
        .iter()
        .filter(|e| e.topic() == topic)
        .map(|e| e.partition())
        .collect();
    tasks.sort_unstable();
    tasks
}

impl ConsumerContext for GroupContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Revoke(tpl) => {
                let tasks = tasks_of(tpl, &self.primary);
                if tasks.is_empty() || self.closing.load(Ordering::SeqCst) {
                    return;
                }
                let lost = consumer.assignment_lost();
                let (done, wait) = std::sync::mpsc::sync_channel(1);
                if self
                    .tx
                    .blocking_send(Membership::Revoked { tasks, lost, done })
                    .is_ok()
                    && wait.recv_timeout(REVOKE_WAIT).is_err()
                {
                    tracing::error!(
                        "the processor did not release revoked tasks in time; the group may hand them over while a batch is in flight"
                    );
                }
            }
            Rebalance::Assign(_) => {}
            Rebalance::Error(error) => tracing::warn!(%error, "rebalance error"),
        }
    }

    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(tpl) = rebalance {
            // Membership only: the data consumer fetches the inputs.
            if tpl.count() > 0
                && let Err(error) = consumer.pause(tpl)
            {
                tracing::warn!(%error, "cannot pause the group consumer's partitions");
            }
            if !self.closing.load(Ordering::SeqCst) {
                let _ = self
                    .tx
                    .blocking_send(Membership::Assigned(tasks_of(tpl, &self.primary)));
            }
        }
    }
}

/// The group consumer and its polling thread.
pub(crate) struct GroupMember {
    consumer: Arc<BaseConsumer<GroupContext>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl GroupMember {
    /// Joins the group on `primary`; membership changes arrive on the receiver.
    pub(crate) fn start(
        config: &ClientConfig,
        primary: &str,
    ) -> Result<(Self, mpsc::Receiver<Membership>), RuntimeError> {
        let (tx, rx) = mpsc::channel(64);
        let context = GroupContext {
            primary: primary.to_string(),
            tx,
            closing: AtomicBool::new(false),
        };
        let consumer: Arc<BaseConsumer<GroupContext>> =
            Arc::new(config.create_with_context(context)?);
        consumer.subscribe(&[primary])?;
        let stop = Arc::new(AtomicBool::new(false));
        let thread_consumer = consumer.clone();
        let thread_stop = stop.clone();
        let thread = std::thread::Builder::new()
            .name("afregning-group".to_string())
            .spawn(move || {
                while !thread_stop.load(Ordering::SeqCst) {
                    match thread_consumer.poll(Duration::from_millis(100)) {
                        // Paused partitions may still hand over what was
                        // fetched before the pause; the data consumer reads
                        // the inputs, so drop it.
                        Some(Ok(_)) | None => {}
                        Some(Err(error)) => tracing::debug!(%error, "group consumer"),
                    }
                }
                // Leave the group while still polling, so the revoke runs here.
                thread_consumer
                    .context()
                    .closing
                    .store(true, Ordering::SeqCst);
                thread_consumer.unsubscribe();
                for _ in 0..10 {
                    let _ = thread_consumer.poll(Duration::from_millis(50));
                }
            })
            .map_err(|e| RuntimeError::Internal(format!("cannot start the group thread: {e}")))?;
        Ok((
            Self {
                consumer,
                stop,
                thread: Some(thread),
            },
            rx,
        ))
    }

    /// The group consumer (thread-safe calls: commit, committed offsets).
    pub(crate) fn consumer(&self) -> &Arc<BaseConsumer<GroupContext>> {
        &self.consumer
    }

    /// Leaves the group and stops the thread.
    pub(crate) fn stop(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A batch of input records tagged with the epoch of their partition.
pub(crate) struct DataBatch {
    /// The records, each with the epoch it was fetched under.
    pub(crate) records: Vec<(u64, InputRecord)>,
    /// True when the consumer's local queue was empty after these records:
    /// nothing more is fetched yet, so the driver may commit at once instead
    /// of waiting for more (the hop's latency is then its work, not the
    /// commit interval).
    pub(crate) drained: bool,
}

/// What the driver asks of the data consumer.
#[derive(Debug)]
pub(crate) enum DataCommand {
    /// Start fetching these partitions at these offsets under `epoch`.
    Assign {
        partitions: Vec<(String, i32, Offset)>,
        epoch: u64,
    },
    /// Stop fetching these partitions.
    Unassign { partitions: Vec<(String, i32)> },
    /// Re-fetch one partition from `offset` under `epoch`.
    Seek {
        topic: String,
        partition: i32,
        offset: i64,
        epoch: u64,
    },
}

/// High watermarks per (topic, partition) as the data consumer's fetch
/// responses report them (librdkafka statistics).
pub(crate) type Highs = Arc<std::sync::Mutex<BTreeMap<(String, i32), i64>>>;

/// The data consumer's context: keeps the fetch-reported high watermarks,
/// which the local broker gets right where its ListOffsets does not.
pub(crate) struct DataContext {
    highs: Highs,
}

impl ClientContext for DataContext {
    fn stats(&self, statistics: Statistics) {
        let mut highs = self.highs.lock().unwrap_or_else(|e| e.into_inner());
        for (topic, detail) in statistics.topics {
            for (partition, stats) in detail.partitions {
                if partition >= 0 && stats.hi_offset >= 0 {
                    highs.insert((topic.clone(), partition), stats.hi_offset);
                }
            }
        }
    }
}

impl ConsumerContext for DataContext {}

/// The data consumer and its thread.
pub(crate) struct DataConsumer {
    consumer: Arc<BaseConsumer<DataContext>>,
    highs: Highs,
    commands: std::sync::mpsc::Sender<DataCommand>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl DataConsumer {
    /// Starts the consumer; record batches (at most `max_batch` records) arrive on the receiver.
    pub(crate) fn start(
        config: &ClientConfig,
        max_batch: usize,
        channel_batches: usize,
    ) -> Result<(Self, mpsc::Receiver<DataBatch>), RuntimeError> {
        let highs = Highs::default();
        let consumer: Arc<BaseConsumer<DataContext>> =
            Arc::new(config.create_with_context(DataContext {
                highs: highs.clone(),
            })?);
        let (tx, rx) = mpsc::channel(channel_batches.max(1));
        let (commands, command_rx) = std::sync::mpsc::channel::<DataCommand>();
        let stop = Arc::new(AtomicBool::new(false));
        let thread_consumer = consumer.clone();
        let thread_stop = stop.clone();
        let thread = std::thread::Builder::new()
            .name("afregning-data".to_string())
            .spawn(move || {
                data_loop(
                    &thread_consumer,
                    &command_rx,
                    &tx,
                    &thread_stop,
                    max_batch.max(1),
                )
            })
            .map_err(|e| RuntimeError::Internal(format!("cannot start the data thread: {e}")))?;
        Ok((
            Self {
                consumer,
                highs,
                commands,
                stop,
                thread: Some(thread),
            },
            rx,
        ))
    }

    /// Sends a command (applied between polls, in order).
    pub(crate) fn command(&self, command: DataCommand) {
        if self.commands.send(command).is_err() {
            tracing::error!("the data consumer thread is gone");
        }
    }

    /// The consumer, for thread-safe metadata calls (watermarks).
    pub(crate) fn consumer(&self) -> &Arc<BaseConsumer<DataContext>> {
        &self.consumer
    }

    /// The last fetch-reported high watermark of `topic`/`partition`.
    pub(crate) fn fetched_high(&self, topic: &str, partition: i32) -> Option<i64> {
        self.highs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&(topic.to_string(), partition))
            .copied()
    }

    /// Stops the thread.
    pub(crate) fn stop(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn apply_command(
    consumer: &BaseConsumer<DataContext>,
    epochs: &mut BTreeMap<(String, i32), u64>,
    command: DataCommand,
) {
    match command {
        DataCommand::Assign { partitions, epoch } => {
            let mut tpl = TopicPartitionList::new();
            for (topic, partition, offset) in &partitions {
                if let Err(error) = tpl.add_partition_offset(topic, *partition, *offset) {
                    tracing::error!(%error, %topic, partition, "cannot build the assignment");
                }
            }
            match consumer.incremental_assign(&tpl) {
                Ok(()) => {
                    for (topic, partition, _) in partitions {
                        epochs.insert((topic, partition), epoch);
                    }
                }
                Err(error) => tracing::error!(%error, "cannot assign input partitions"),
            }
        }
        DataCommand::Unassign { partitions } => {
            let mut tpl = TopicPartitionList::new();
            for (topic, partition) in &partitions {
                if epochs.remove(&(topic.clone(), *partition)).is_some() {
                    tpl.add_partition(topic, *partition);
                }
            }
            if tpl.count() > 0
                && let Err(error) = consumer.incremental_unassign(&tpl)
            {
                tracing::error!(%error, "cannot unassign input partitions");
            }
        }
        DataCommand::Seek {
            topic,
            partition,
            offset,
            epoch,
        } => {
            if !epochs.contains_key(&(topic.clone(), partition)) {
                return;
            }
            // With a timeout, librdkafka guarantees that nothing fetched for
            // the old position is returned afterwards.
            match consumer.seek(
                &topic,
                partition,
                Offset::Offset(offset),
                Duration::from_secs(10),
            ) {
                Ok(()) => {
                    epochs.insert((topic, partition), epoch);
                }
                Err(error) => {
                    tracing::warn!(%error, %topic, partition, offset, "seek failed; the stall check will retry")
                }
            }
        }
    }
}

fn data_loop(
    consumer: &BaseConsumer<DataContext>,
    commands: &std::sync::mpsc::Receiver<DataCommand>,
    tx: &mpsc::Sender<DataBatch>,
    stop: &AtomicBool,
    max_batch: usize,
) {
    let mut epochs: BTreeMap<(String, i32), u64> = BTreeMap::new();
    while !stop.load(Ordering::SeqCst) {
        while let Ok(command) = commands.try_recv() {
            apply_command(consumer, &mut epochs, command);
        }
        let mut batch: Vec<(u64, InputRecord)> = Vec::new();
        let mut drained = false;
        while batch.len() < max_batch {
            let wait = if batch.is_empty() {
                Duration::from_millis(50)
            } else {
                Duration::ZERO
            };
            match consumer.poll(wait) {
                Some(Ok(message)) => {
                    let topic = message.topic();
                    let Some(epoch) = epochs
                        .get(&(topic.to_string(), message.partition()))
                        .copied()
                    else {
                        continue;
                    };
                    let headers = message
                        .headers()
                        .map(|h| {
                            h.iter()
                                .map(|header| {
                                    (
                                        header.key.to_string(),
                                        header.value.map(<[u8]>::to_vec).unwrap_or_default(),
                                    )
                                })
                                .collect()
                        })
                        .unwrap_or_default();
                    batch.push((
                        epoch,
                        InputRecord {
                            topic: topic.to_string(),
                            partition: message.partition(),
                            offset: message.offset(),
                            timestamp: message.timestamp().to_millis(),
                            key: message.key().map(<[u8]>::to_vec),
                            value: message.payload().map(<[u8]>::to_vec),
                            headers,
                        },
                    ));
                }
                Some(Err(KafkaError::PartitionEOF(_))) => {}
                Some(Err(error)) => {
                    tracing::warn!(%error, "input consumer error");
                    break;
                }
                None => {
                    drained = true;
                    break;
                }
            }
        }
        if !batch.is_empty()
            && tx
                .blocking_send(DataBatch {
                    records: batch,
                    drained,
                })
                .is_err()
        {
            return;
        }
    }
}

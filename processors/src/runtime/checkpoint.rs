//! The transaction-free commit of a batch, per task:
//!
//! 1. **process** the batch's records into a write buffer and a list of
//!    outputs (on a blocking thread; reads see the batch's own writes);
//! 2. **produce** the outputs and one changelog record per changed key
//!    (header: batch sequence number), idempotent producer, `acks=all`, and
//!    await every delivery report;
//! 3. only then produce a **commit marker** (sequence number, input offsets
//!    after the batch) to every store's changelog partition of the task, and
//!    await those too;
//! 4. only then write the RocksDB batch: data, input offsets and changelog
//!    positions in one atomic write;
//! 5. (the caller) optionally commit the group's offsets, for lag monitoring.
//!
//! A crash anywhere before 4 leaves the local store at the previous batch; the
//! batch is re-processed from the stored offsets and produces the same
//! outputs with the same idempotency keys. A crash between 3 and 4 leaves the
//! changelog ahead of the store; restore takes the marker as the truth.
//! Several tasks' batches are committed together (one round) so that the
//! produce round trips are shared.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use rdkafka::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};

use crate::runtime::changelog::{self, MARKER_KEY, Marker};
use crate::runtime::error::RuntimeError;
use crate::runtime::events::{CheckpointStage, Events, RuntimeEvent};
use crate::runtime::global::GlobalStore;
use crate::runtime::instances::Instances;
use crate::runtime::processor::{
    Context, GlobalChange, GlobalView, IDEMPOTENCY_KEY_HEADER, InputRecord, OutputRecord,
    Processor, WriteBuffer,
};
use crate::runtime::store::{Store, StoreProgress, StoreWrite, TaskMetadata};

/// A record to produce (output, changelog record or marker), owned.
pub(crate) struct ProduceRecord {
    pub(crate) topic: String,
    pub(crate) partition: Option<i32>,
    pub(crate) key: Vec<u8>,
    pub(crate) value: Option<Vec<u8>>,
    pub(crate) headers: OwnedHeaders,
}

/// The idempotent producer every output, changelog record and marker goes
/// through, with a bound on records in flight (memory).
#[derive(Clone)]
pub(crate) struct OutputProducer {
    producer: FutureProducer,
    max_in_flight: usize,
}

impl OutputProducer {
    pub(crate) fn new(config: &ClientConfig, max_in_flight: usize) -> Result<Self, RuntimeError> {
        Ok(Self {
            producer: config.create()?,
            max_in_flight: max_in_flight.max(1),
        })
    }

    /// Produces `records` and waits for every delivery report; returns each
    /// record's (partition, offset) in input order. Any failure fails the
    /// whole call: the caller must not go on to the next commit step.
    pub(crate) async fn send_all(
        &self,
        records: Vec<ProduceRecord>,
    ) -> Result<Vec<(i32, i64)>, RuntimeError> {
        let mut results = vec![(0, 0); records.len()];
        let mut pending: VecDeque<(usize, DeliveryFuture)> = VecDeque::new();
        for (index, record) in records.into_iter().enumerate() {
            let ProduceRecord {
                topic,
                partition,
                key,
                value,
                headers,
            } = record;
            let mut future_record: FutureRecord<'_, Vec<u8>, Vec<u8>> =
                FutureRecord::to(&topic).key(&key).headers(headers);
            if let Some(value) = &value {
                future_record = future_record.payload(value);
            }
            if let Some(partition) = partition {
                future_record = future_record.partition(partition);
            }
            loop {
                match self.producer.send_result(future_record) {
                    Ok(delivery) => {
                        pending.push_back((index, delivery));
                        break;
                    }
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                        future_record = back;
                        match pending.pop_front() {
                            Some(front) => resolve(front, &mut results).await?,
                            None => tokio::time::sleep(Duration::from_millis(10)).await,
                        }
                    }
                    Err((error, _)) => return Err(RuntimeError::Produce(error.to_string())),
                }
            }
            while pending.len() >= self.max_in_flight {
                if let Some(front) = pending.pop_front() {
                    resolve(front, &mut results).await?;
                }
            }
        }
        while let Some(front) = pending.pop_front() {
            resolve(front, &mut results).await?;
        }
        Ok(results)
    }
}

async fn resolve(
    (index, delivery): (usize, DeliveryFuture),
    results: &mut [(i32, i64)],
) -> Result<(), RuntimeError> {
    match delivery.await {
        Ok(Ok(delivery)) => {
            results[index] = (delivery.partition, delivery.offset);
            Ok(())
        }
        Ok(Err((error, _))) => Err(RuntimeError::Produce(error.to_string())),
        Err(_) => Err(RuntimeError::Produce(
            "the producer dropped a delivery report".to_string(),
        )),
    }
}

/// Something a task processes in a batch.
#[derive(Debug, Clone)]
pub(crate) enum PendingItem {
    Record(InputRecord),
    Tick(DateTime<Utc>),
    Global(GlobalChange),
    /// A replay reached the task (decision 0090): recompute and report.
    Replay(crate::runtime::runner::replay::ReplayStep),
    /// A replay's end was committed: report it.
    ReplayCaughtUp(crate::runtime::runner::replay::ReplayStep),
}

/// One task's share of a checkpoint round.
pub(crate) struct TaskBatch {
    pub(crate) task: i32,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) metadata: TaskMetadata,
    pub(crate) items: Vec<PendingItem>,
    pub(crate) input_offsets_after: BTreeMap<String, i64>,
    pub(crate) global_seen_after: BTreeMap<String, BTreeMap<i32, i64>>,
}

/// A task's batch after a round.
pub(crate) struct CommittedBatch {
    pub(crate) task: i32,
    /// The metadata now in the store.
    pub(crate) metadata: TaskMetadata,
    /// Whether anything was committed (a batch that changed nothing is skipped).
    pub(crate) committed: bool,
}

struct Processed {
    batch: TaskBatch,
    writes: Vec<StoreWrite>,
    outputs: Vec<OutputRecord>,
    records: usize,
    marker: Marker,
}

/// Runs checkpoint rounds for one processor.
pub(crate) struct Checkpointer {
    pub(crate) producer: OutputProducer,
    pub(crate) stores: Vec<String>,
    pub(crate) changelogs: Vec<String>,
    pub(crate) globals: Option<Arc<GlobalStore>>,
    pub(crate) events: Events,
}

impl Checkpointer {
    /// Processes and commits `batches` (steps 1-4 above). On error nothing
    /// after the failed step happened; the caller stops the runtime.
    pub(crate) async fn run<P: Processor>(
        &self,
        instances: &mut Instances<P>,
        batches: Vec<TaskBatch>,
        now: DateTime<Utc>,
    ) -> Result<Vec<CommittedBatch>, RuntimeError> {
        let started = Instant::now();
        let round_tasks: Vec<i32> = batches.iter().map(|b| b.task).collect();
        let mut lease = instances.lease(&round_tasks)?;

        // The processors' async preparation hook sees every record of the round.
        if let Err(error) = lease.prepare(&batches).await {
            instances.give_back(&round_tasks, lease);
            return Err(error);
        }

        // 1. Process, off the reactor, on up to `parallelism` threads.
        let processed = lease
            .process(
                batches,
                instances.parallelism(),
                self.globals.clone(),
                move |processor, batch, globals| {
                    process_batch(processor, batch, now, globals.map(|g| g as &dyn GlobalView))
                },
            )
            .await;
        let processed = match processed {
            Ok((lease, processed)) => {
                instances.give_back(&round_tasks, lease);
                processed?
            }
            Err(panic) => {
                instances.mark_lost(&round_tasks);
                return Err(panic);
            }
        };
        let (work, idle): (Vec<Processed>, Vec<Processed>) = processed.into_iter().partition(|p| {
            !p.writes.is_empty()
                || !p.outputs.is_empty()
                || p.marker.input_offsets != p.batch.metadata.committed.input_offsets
                || p.marker.global_seen != p.batch.metadata.committed.global_seen
        });
        let mut results: Vec<CommittedBatch> = idle
            .into_iter()
            .map(|p| CommittedBatch {
                task: p.batch.task,
                metadata: p.batch.metadata,
                committed: false,
            })
            .collect();
        if work.is_empty() {
            return Ok(results);
        }
        let tasks: Vec<i32> = work.iter().map(|p| p.batch.task).collect();
        self.events.emit(RuntimeEvent::CheckpointStage {
            stage: CheckpointStage::Processed,
            tasks: tasks.clone(),
        });

        // 2. Outputs and changelog records, all acknowledged.
        let mut records = Vec::new();
        for p in &work {
            for output in &p.outputs {
                let mut headers = OwnedHeaders::new_with_capacity(output.headers.len() + 1);
                for (name, value) in &output.headers {
                    headers = headers.insert(Header {
                        key: name.as_str(),
                        value: Some(value),
                    });
                }
                headers = headers.insert(Header {
                    key: IDEMPOTENCY_KEY_HEADER,
                    value: Some(output.idempotency_key.as_str()),
                });
                records.push(ProduceRecord {
                    topic: output.topic.clone(),
                    partition: output.partition,
                    key: output.key.clone(),
                    value: output.value.clone(),
                    headers,
                });
            }
            for write in &p.writes {
                records.push(ProduceRecord {
                    topic: self.changelogs[write.store].clone(),
                    partition: Some(p.batch.task),
                    key: write.key.clone(),
                    value: write.value.clone(),
                    headers: changelog::data_headers(&self.stores[write.store], p.marker.seq),
                });
            }
        }
        self.producer.send_all(records).await?;
        self.events.emit(RuntimeEvent::CheckpointStage {
            stage: CheckpointStage::OutputsDelivered,
            tasks: tasks.clone(),
        });

        // 3. Commit markers, to every store of every task, all acknowledged.
        let mut markers = Vec::new();
        for p in &work {
            let value = p.marker.encode();
            for (store, topic) in self.stores.iter().zip(&self.changelogs) {
                markers.push(ProduceRecord {
                    topic: topic.clone(),
                    partition: Some(p.batch.task),
                    key: MARKER_KEY.to_vec(),
                    value: Some(value.clone()),
                    headers: changelog::commit_headers(store, p.marker.seq),
                });
            }
        }
        let delivered = self.producer.send_all(markers).await?;
        if !self.stores.is_empty() {
            self.events.emit(RuntimeEvent::CheckpointStage {
                stage: CheckpointStage::MarkersDelivered,
                tasks: tasks.clone(),
            });
        }

        // 4. The local write: data, offsets and changelog positions at once.
        let mut commits = Vec::new();
        for (i, p) in work.into_iter().enumerate() {
            let mut metadata = TaskMetadata {
                committed: p.marker.clone(),
                ..p.batch.metadata.clone()
            };
            for (s, store) in self.stores.iter().enumerate() {
                let (_, offset) = delivered[i * self.stores.len() + s];
                metadata.stores.insert(
                    store.clone(),
                    StoreProgress {
                        next_offset: Some(offset + 1),
                        max_marker: Some(p.marker.clone()),
                    },
                );
            }
            commits.push((
                p.batch.task,
                p.batch.store,
                p.writes,
                metadata,
                p.records,
                p.outputs.len(),
            ));
        }
        let commits = tokio::task::spawn_blocking(move || -> Result<_, RuntimeError> {
            for (_, store, writes, metadata, _, _) in &commits {
                store.commit(writes, metadata)?;
            }
            Ok(commits)
        })
        .await
        .map_err(|e| RuntimeError::Internal(format!("a store commit panicked: {e}")))??;
        self.events.emit(RuntimeEvent::CheckpointStage {
            stage: CheckpointStage::LocalCommitted,
            tasks,
        });
        let elapsed = started.elapsed();
        for (task, _, writes, metadata, records, outputs) in commits {
            self.events.emit(RuntimeEvent::BatchCommitted {
                task,
                seq: metadata.committed.seq,
                records,
                outputs,
                writes: writes.len(),
                input_offsets: metadata.committed.input_offsets.clone(),
                duration_ms: elapsed.as_millis() as u64,
            });
            results.push(CommittedBatch {
                task,
                metadata,
                committed: true,
            });
        }
        Ok(results)
    }
}

fn process_batch<P: Processor>(
    processor: &mut P,
    batch: TaskBatch,
    now: DateTime<Utc>,
    globals: Option<&dyn GlobalView>,
) -> Result<Processed, RuntimeError> {
    let mut buffer = WriteBuffer::new(batch.store.store_names().len());
    let mut outputs = Vec::new();
    let mut records = 0;
    {
        let mut ctx = Context::new(
            batch.task,
            now,
            batch.store.as_ref(),
            &mut buffer,
            &mut outputs,
            globals,
        );
        for item in &batch.items {
            match item {
                PendingItem::Record(record) => {
                    records += 1;
                    processor.process(record, &mut ctx)?;
                }
                PendingItem::Tick(at) => processor.on_tick(*at, &mut ctx)?,
                PendingItem::Global(change) => processor.on_global_change(change, &mut ctx)?,
                PendingItem::Replay(step) => {
                    let outcome = processor.on_replay(&step.scope, &mut ctx)?;
                    ctx.emit(step.report(Some(outcome)));
                }
                PendingItem::ReplayCaughtUp(step) => ctx.emit(step.report(None)),
            }
        }
    }
    let marker = Marker {
        seq: batch.metadata.committed.seq + 1,
        input_offsets: batch.input_offsets_after.clone(),
        global_seen: batch.global_seen_after.clone(),
    };
    Ok(Processed {
        writes: buffer.into_writes(),
        outputs,
        records,
        marker,
        batch,
    })
}

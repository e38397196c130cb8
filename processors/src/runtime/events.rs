//! What the runtime reports, in one place (Vector's internal events): each
//! [`RuntimeEvent`] is written to the log with correlation fields, counted in
//! metrics prefixed `afregning_processor_`, and handed to an optional
//! observer (the testbed prints them so that the crash tests can kill the
//! process at chosen moments).

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// A step of the commit protocol, reported as it completes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CheckpointStage {
    /// The batch was processed into writes and outputs (nothing produced yet).
    Processed,
    /// Outputs and changelog records were acknowledged (no marker yet).
    OutputsDelivered,
    /// Commit markers were acknowledged (local store not written yet).
    MarkersDelivered,
    /// The local store holds the batch and its offsets.
    LocalCommitted,
}

/// Something the runtime did.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum RuntimeEvent {
    /// The runtime validated its topics and joined the group.
    Started {
        /// The consumer group.
        group: String,
        /// Partitions per input topic (= tasks).
        partitions: i32,
    },
    /// The global tables reached their high watermarks.
    GlobalCaughtUp {
        /// Records read to catch up.
        records: u64,
    },
    /// The group assigned tasks to this instance.
    Assigned {
        /// The tasks (partition numbers).
        tasks: Vec<i32>,
    },
    /// The group took tasks away.
    Revoked {
        /// The tasks.
        tasks: Vec<i32>,
        /// Whether they were lost (session timeout) rather than handed over.
        lost: bool,
    },
    /// A task's restore began.
    RestoreStarted {
        /// The task.
        task: i32,
    },
    /// A restore stopped because its task was revoked.
    RestoreCancelled {
        /// The task.
        task: i32,
    },
    /// A task's state is restored.
    RestoreFinished {
        /// The task.
        task: i32,
        /// Changelog records replayed.
        records: u64,
        /// Records of a crashed batch discarded (and reverted).
        discarded: usize,
        /// The committed batch the task resumes after.
        committed_seq: u64,
        /// Whether the local store was missing or discarded.
        from_scratch: bool,
        /// How long it took.
        duration_ms: u64,
    },
    /// A task processes again, from these input offsets.
    TaskRunning {
        /// The task.
        task: i32,
        /// Where each input topic resumes.
        input_offsets: BTreeMap<String, i64>,
    },
    /// A commit step completed for these tasks.
    CheckpointStage {
        /// The step.
        stage: CheckpointStage,
        /// The tasks in the round.
        tasks: Vec<i32>,
    },
    /// A task committed a batch.
    BatchCommitted {
        /// The task.
        task: i32,
        /// The batch's sequence number.
        seq: u64,
        /// Input records in it.
        records: usize,
        /// Outputs produced.
        outputs: usize,
        /// State writes.
        writes: usize,
        /// Input offsets after it.
        input_offsets: BTreeMap<String, i64>,
        /// Duration of the round.
        duration_ms: u64,
    },
    /// An input partition had lag but made no progress; it was re-sought to
    /// its next offset, or further back if that position was never proven
    /// (local-broker gaps, `docs/processors-runtime.md`).
    PartitionStalled {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// The offset it was sought to.
        next_offset: i64,
        /// The partition's high watermark.
        high_watermark: i64,
    },
    /// The lag of a running task's input partition, measured every
    /// `lag_check_interval_ms` against the larger of the listed and the
    /// fetch-reported high watermark (the local broker under-reports the
    /// former). What "caught up" is judged by.
    Lag {
        /// The topic.
        topic: String,
        /// The partition (the task).
        partition: i32,
        /// Records between the next offset to read and the high watermark.
        lag: i64,
    },
    /// Every assigned task is restored and running.
    Ready,
    /// The runtime stopped.
    Stopped,
}

/// A callback that sees every event (tests, the testbed).
pub type Observer = Arc<dyn Fn(&RuntimeEvent) + Send + Sync>;

/// The runtime's reporter: logs, metrics, observer.
#[derive(Clone)]
pub struct Events {
    processor: Arc<str>,
    observer: Option<Observer>,
}

impl std::fmt::Debug for Events {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Events")
            .field("processor", &self.processor)
            .finish_non_exhaustive()
    }
}

impl Events {
    /// A reporter for `processor`.
    pub fn new(processor: &str, observer: Option<Observer>) -> Self {
        Self {
            processor: Arc::from(processor),
            observer,
        }
    }

    /// The processor's name.
    pub fn processor(&self) -> &str {
        &self.processor
    }

    /// Reports `event`.
    pub fn emit(&self, event: RuntimeEvent) {
        let processor = self.processor.to_string();
        match &event {
            RuntimeEvent::Started { group, partitions } => {
                tracing::info!(%processor, %group, partitions, "processor runtime started");
            }
            RuntimeEvent::GlobalCaughtUp { records } => {
                tracing::info!(%processor, records, "global tables caught up");
            }
            RuntimeEvent::Assigned { tasks } => {
                tracing::info!(%processor, ?tasks, "tasks assigned");
                metrics::counter!("afregning_processor_rebalances_total", "processor" => processor.clone(), "kind" => "assign").increment(1);
            }
            RuntimeEvent::Revoked { tasks, lost } => {
                tracing::info!(%processor, ?tasks, lost, "tasks revoked");
                metrics::counter!("afregning_processor_rebalances_total", "processor" => processor.clone(), "kind" => if *lost { "lost" } else { "revoke" }).increment(1);
            }
            RuntimeEvent::RestoreStarted { task } => {
                tracing::info!(%processor, task, "restoring task state");
            }
            RuntimeEvent::RestoreCancelled { task } => {
                tracing::info!(%processor, task, "restore cancelled: task revoked");
            }
            RuntimeEvent::RestoreFinished {
                task,
                records,
                discarded,
                committed_seq,
                from_scratch,
                duration_ms,
            } => {
                tracing::info!(%processor, task, records, discarded, committed_seq, from_scratch, duration_ms, "task state restored");
                metrics::histogram!("afregning_processor_restore_duration_seconds", "processor" => processor.clone()).record(*duration_ms as f64 / 1000.0);
                metrics::counter!("afregning_processor_restore_records_total", "processor" => processor.clone()).increment(*records);
                metrics::counter!("afregning_processor_restore_discarded_records_total", "processor" => processor.clone()).increment(*discarded as u64);
            }
            RuntimeEvent::TaskRunning {
                task,
                input_offsets,
            } => {
                tracing::info!(%processor, task, ?input_offsets, "task running");
            }
            RuntimeEvent::CheckpointStage { stage, tasks } => {
                tracing::trace!(%processor, ?stage, ?tasks, "checkpoint step done");
            }
            RuntimeEvent::BatchCommitted {
                task,
                seq,
                records,
                outputs,
                writes,
                duration_ms,
                ..
            } => {
                tracing::debug!(%processor, task, seq, records, outputs, writes, duration_ms, "batch committed");
                let task = task.to_string();
                metrics::counter!("afregning_processor_records_processed_total", "processor" => processor.clone(), "task" => task.clone()).increment(*records as u64);
                metrics::counter!("afregning_processor_outputs_total", "processor" => processor.clone(), "task" => task.clone()).increment(*outputs as u64);
                metrics::counter!("afregning_processor_batches_committed_total", "processor" => processor.clone(), "task" => task).increment(1);
                metrics::histogram!("afregning_processor_batch_commit_duration_seconds", "processor" => processor.clone()).record(*duration_ms as f64 / 1000.0);
            }
            RuntimeEvent::PartitionStalled {
                topic,
                partition,
                next_offset,
                high_watermark,
            } => {
                tracing::warn!(%processor, %topic, partition, offset = next_offset, high_watermark, "input partition has lag but made no progress; fetching it again");
                metrics::counter!("afregning_processor_stalled_partitions_total", "processor" => processor.clone(), "topic" => topic.clone(), "partition" => partition.to_string()).increment(1);
            }
            RuntimeEvent::Lag {
                topic,
                partition,
                lag,
            } => {
                tracing::trace!(%processor, %topic, partition, lag, "lag");
            }
            RuntimeEvent::Ready => tracing::info!(%processor, "ready"),
            RuntimeEvent::Stopped => tracing::info!(%processor, "processor runtime stopped"),
        }
        if let Some(observer) = &self.observer {
            observer(&event);
        }
    }

    /// Records the lag of an input partition.
    pub fn lag(&self, topic: &str, partition: i32, lag: i64) {
        metrics::gauge!("afregning_processor_lag_records", "processor" => self.processor.to_string(), "topic" => topic.to_string(), "partition" => partition.to_string()).set(lag as f64);
        if let Some(observer) = &self.observer {
            observer(&RuntimeEvent::Lag {
                topic: topic.to_string(),
                partition,
                lag,
            });
        }
    }

    /// Records the state stores' memory use against the budget.
    pub fn state_memory(&self, used: usize, budget: usize) {
        metrics::gauge!("afregning_processor_state_memory_bytes", "processor" => self.processor.to_string()).set(used as f64);
        metrics::gauge!("afregning_processor_state_memory_budget_bytes", "processor" => self.processor.to_string()).set(budget as f64);
    }

    /// Records how many tasks run and restore here.
    pub fn tasks(&self, running: usize, restoring: usize) {
        metrics::gauge!("afregning_processor_tasks", "processor" => self.processor.to_string(), "state" => "running").set(running as f64);
        metrics::gauge!("afregning_processor_tasks", "processor" => self.processor.to_string(), "state" => "restoring").set(restoring as f64);
    }
}

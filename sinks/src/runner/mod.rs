//! The loop both sinks share: consume, batch, write, and only then mirror the
//! position to Kafka (Vector's finalizers: a source's offset commit waits on
//! the sink's delivery).
//!
//! The commit protocol, per batch (docs/decisions/0061, docs/sinks.md):
//! 1. Records are decoded into the batch; the batch remembers, per partition,
//!    the offset after its last record.
//! 2. When the batch holds `batch_max_rows` rows, or `flush_interval_ms`
//!    passed since its first record, or every partition reached its end, the
//!    handler writes it: the data *and* the positions (`sink_offset`) in one
//!    database transaction.
//! 3. Only after that transaction committed are the positions committed to
//!    the Kafka group (asynchronously; for lag tools only).
//! 4. A failed write is retried with backoff on a new connection, forever,
//!    holding the same batch and not consuming further (the consumers stop
//!    polling when the channel fills); the position in the database is unchanged
//!    until a write succeeds, so a crash at any point re-reads from the last
//!    committed batch and the idempotent upserts absorb the repeat.
//!
//! Records below the position already written (a consumer that re-fetched
//! after a reconnect, a duplicate delivery) are skipped before decoding.
//!
//! - this module: the contract with a sink ([`Handler`]) and [`run`].
//! - `driver`: the loop and its steps (start, receive, flush, the
//!   caught-up judgement).
//! - `state`: what the loop keeps between events (consumers, progress per
//!   partition, the open batch).

mod driver;
mod state;

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use afregning_topology::CodecError;

use self::driver::Driver;
use crate::SinkError;
use crate::config::SinkConfig;
use crate::positions::Position;
use crate::source::SourceRecord;

/// Why a handler call failed.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// A passing condition (database or registry unreachable): retried.
    #[error("{reason}: {message}")]
    Retriable {
        /// Short, fixed label for the metric (`database`, `registry`, `kafka`).
        reason: &'static str,
        /// What happened.
        message: String,
    },
    /// Retrying would fail the same way: the sink stops with the batch
    /// uncommitted.
    #[error("{0}")]
    Fatal(String),
}

impl HandlerError {
    /// A database error, classified.
    pub fn database(error: sqlx::Error) -> Self {
        if crate::retry::is_retriable(&error) {
            HandlerError::Retriable {
                reason: "database",
                message: error.to_string(),
            }
        } else {
            HandlerError::Fatal(format!("database: {error}"))
        }
    }

    /// A record that could not be encoded for publishing (`what`: "a dead
    /// letter", ...), classified: an unreachable registry is retried, a
    /// record that does not fit its schema would fail again.
    pub fn encoding(error: CodecError, what: &str) -> Self {
        if error.is_retriable() {
            HandlerError::Retriable {
                reason: "registry",
                message: error.to_string(),
            }
        } else {
            HandlerError::Fatal(format!("encoding {what}: {error}"))
        }
    }
}

/// What one batch write did, for metrics and the summary.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlushReport {
    /// Per table: rows staged, rows inserted or changed.
    pub tables: BTreeMap<&'static str, (u64, u64)>,
    /// Named counts specific to the sink (duplicates, published statements, ...).
    pub counts: BTreeMap<&'static str, u64>,
}

impl FlushReport {
    fn merge(&mut self, other: &FlushReport) {
        for (table, (staged, changed)) in &other.tables {
            let entry = self.tables.entry(table).or_default();
            entry.0 += staged;
            entry.1 += changed;
        }
        for (name, count) in &other.counts {
            *self.counts.entry(name).or_default() += count;
        }
    }
}

/// What a sink does with records: decode them into a batch, and write a
/// batch together with its positions, atomically and idempotently.
pub trait Handler: Send {
    /// The batch type.
    type Batch: Default + Send;

    /// `postgres` or `erp`: the `sink` label of the metrics.
    fn sink_label(&self) -> &'static str;

    /// The full names of the topics to consume.
    fn topics(&self) -> Vec<String>;

    /// The stored positions (topic, partition) → next offset.
    fn stored_positions(
        &mut self,
    ) -> impl Future<Output = Result<HashMap<(String, i32), i64>, HandlerError>> + Send;

    /// Decodes a record into the batch; returns the rows it added.
    fn add(
        &mut self,
        batch: &mut Self::Batch,
        record: &SourceRecord,
    ) -> impl Future<Output = Result<usize, HandlerError>> + Send;

    /// Rows in the batch (what `batch_max_rows` limits).
    fn batch_rows(batch: &Self::Batch) -> usize;

    /// Writes the batch and the positions in one transaction. Called again
    /// with the same batch after a retriable failure, so it must be
    /// idempotent (and must not redo external effects it already made).
    fn flush(
        &mut self,
        batch: &mut Self::Batch,
        positions: &[Position],
    ) -> impl Future<Output = Result<FlushReport, HandlerError>> + Send;

    /// Forgets connections after a failure or timeout.
    fn reset(&mut self);
}

/// Whether to stop when caught up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunMode {
    /// Run until the shutdown signal.
    Continuous,
    /// Return once every partition was read to its end and written.
    UntilCaughtUp,
}

/// Liveness and readiness for `/health` and `/ready`.
#[derive(Debug, Default)]
pub struct SinkStatus {
    running: AtomicBool,
    database_up: AtomicBool,
    caught_up: AtomicBool,
}

impl SinkStatus {
    /// The loop runs (also while it retries a database outage: the process
    /// is healthy, the database is not; restarting it would not help).
    pub fn is_healthy(&self) -> bool {
        self.running.load(Ordering::Relaxed)
    }

    /// The loop runs and the last write succeeded.
    pub fn is_ready(&self) -> bool {
        self.is_healthy() && self.database_up.load(Ordering::Relaxed)
    }

    /// Every partition was written up to its end at some point.
    pub fn has_caught_up(&self) -> bool {
        self.caught_up.load(Ordering::Relaxed)
    }
}

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunReport {
    /// Records consumed and applied (duplicates below the position excluded).
    pub records: u64,
    /// Records skipped because their offset was already written.
    pub skipped_below_position: u64,
    /// Batches committed.
    pub batches: u64,
    /// Failed writes that were retried.
    pub retries: u64,
    /// Tables and counts, summed over the batches.
    pub flushed: FlushReport,
}

/// Runs a handler until the shutdown future resolves (or, in
/// [`RunMode::UntilCaughtUp`], until caught up).
pub async fn run<H: Handler>(
    handler: H,
    config: &SinkConfig,
    consumer_name: &str,
    mode: RunMode,
    status: Arc<SinkStatus>,
    shutdown: impl Future<Output = ()>,
) -> Result<RunReport, SinkError> {
    tokio::pin!(shutdown);
    status.running.store(true, Ordering::Relaxed);
    let mut driver = Driver::new(handler, config, status.clone());
    let result = driver.run(consumer_name, mode, &mut shutdown).await;
    status.running.store(false, Ordering::Relaxed);
    result.map(|()| driver.report)
}

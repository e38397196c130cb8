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
//! **Writer lanes** (docs/decisions/0150): a sink runs one loop per handler it
//! is given, each a [`Lane`] owning the partitions whose number modulo the
//! lane count is its index, with its own consumers, batch, database
//! connection and transaction. Positions are per partition, so the protocol
//! above holds per lane unchanged, and one lane decodes while another's
//! transaction runs: the database works on as many batches at once as there
//! are lanes. A lane claims its partitions ([`Handler::claim`]) before its
//! first database call; the database sink locks them there.
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
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

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

    /// The partition numbers this handler's lane owns, told once before its
    /// first database call, so that it can lock exactly those. By default
    /// nothing to do: a handler that locks its whole consumer runs alone.
    fn claim(&mut self, _partitions: &[i32]) {}
}

/// A writer lane: one of `count` loops of a sink, owning the partitions whose
/// number modulo `count` is `index`. Partitions are keyed by metering point,
/// so a lane owns whole metering points and lanes never write the same row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lane {
    /// This lane's number, `0..count`.
    pub index: u32,
    /// How many lanes the sink runs.
    pub count: u32,
}

impl Lane {
    /// Whether this lane writes `partition`.
    pub fn owns(&self, partition: i32) -> bool {
        partition.rem_euclid(self.count.max(1) as i32) as u32 == self.index
    }
}

/// Whether to stop when caught up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunMode {
    /// Run until the shutdown signal.
    Continuous,
    /// Return once every partition was read to its end and written.
    UntilCaughtUp,
}

/// Liveness and readiness for `/health` and `/ready`, over every lane.
#[derive(Debug, Default)]
pub struct SinkStatus {
    running: AtomicBool,
    /// Lanes the run started.
    lanes: AtomicUsize,
    /// Lanes whose last database call failed, or that have not made one yet.
    lanes_down: AtomicUsize,
    /// Lanes that were caught up at some point.
    lanes_caught_up: AtomicUsize,
}

impl SinkStatus {
    /// The loop runs (also while it retries a database outage: the process
    /// is healthy, the database is not; restarting it would not help).
    pub fn is_healthy(&self) -> bool {
        self.running.load(Ordering::Relaxed)
    }

    /// The loops run and every lane's last database call succeeded.
    pub fn is_ready(&self) -> bool {
        self.is_healthy()
            && self.lanes.load(Ordering::Relaxed) > 0
            && self.lanes_down.load(Ordering::Relaxed) == 0
    }

    /// Every partition was written up to its end at some point (each lane's
    /// at its own moment).
    pub fn has_caught_up(&self) -> bool {
        let lanes = self.lanes.load(Ordering::Relaxed);
        lanes > 0 && self.lanes_caught_up.load(Ordering::Relaxed) == lanes
    }

    /// A run of `lanes` lanes starts: none has reached the database yet.
    fn begin(&self, lanes: usize) {
        self.lanes.store(lanes, Ordering::Relaxed);
        self.lanes_down.store(lanes, Ordering::Relaxed);
        self.lanes_caught_up.store(0, Ordering::Relaxed);
        self.running.store(true, Ordering::Relaxed);
    }
}

/// One lane's view of [`SinkStatus`]: it moves the shared counts only when
/// its own state changes.
#[derive(Debug)]
pub(crate) struct LaneStatus {
    shared: Arc<SinkStatus>,
    database_up: bool,
    caught_up: bool,
}

impl LaneStatus {
    fn new(shared: Arc<SinkStatus>) -> Self {
        Self {
            shared,
            database_up: false,
            caught_up: false,
        }
    }

    /// A database call succeeded (`true`) or failed.
    fn database(&mut self, up: bool) {
        if up != self.database_up {
            self.database_up = up;
            if up {
                self.shared.lanes_down.fetch_sub(1, Ordering::Relaxed);
            } else {
                self.shared.lanes_down.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// The lane was caught up (counted once).
    fn caught_up(&mut self) {
        if !self.caught_up {
            self.caught_up = true;
            self.shared.lanes_caught_up.fetch_add(1, Ordering::Relaxed);
        }
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

impl RunReport {
    fn merge(&mut self, other: &RunReport) {
        self.records += other.records;
        self.skipped_below_position += other.skipped_below_position;
        self.batches += other.batches;
        self.retries += other.retries;
        self.flushed.merge(&other.flushed);
    }
}

/// Runs one lane per handler (lane `i` of `handlers.len()`, see [`Lane`])
/// until the shutdown future resolves (or, in [`RunMode::UntilCaughtUp`],
/// until every lane caught up). A lane that fails stops the others: the
/// first error is returned, and every lane's positions stay where its last
/// committed batch put them.
pub async fn run<H: Handler + 'static>(
    handlers: Vec<H>,
    config: &SinkConfig,
    consumer_name: &str,
    mode: RunMode,
    status: Arc<SinkStatus>,
    shutdown: impl Future<Output = ()>,
) -> Result<RunReport, SinkError> {
    if handlers.is_empty() {
        return Err(SinkError::Fatal(
            "a sink needs at least one writer lane".into(),
        ));
    }
    tokio::pin!(shutdown);
    let count = handlers.len() as u32;
    status.begin(handlers.len());
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut lanes = tokio::task::JoinSet::new();
    for (index, handler) in (0..count).zip(handlers) {
        let lane = Lane { index, count };
        let config = config.clone();
        let consumer_name = consumer_name.to_string();
        let lane_status = LaneStatus::new(status.clone());
        let mut stopped = stopped.clone();
        lanes.spawn(async move {
            let shutdown = async move {
                let _ = stopped.wait_for(|stop| *stop).await;
            };
            tokio::pin!(shutdown);
            let mut driver = Driver::new(handler, &config, lane, lane_status);
            let result = driver.run(&consumer_name, mode, &mut shutdown).await;
            result.map(|()| driver.report)
        });
    }
    let mut report = RunReport::default();
    let mut failed = None;
    // Whether the lanes were told to stop: the shutdown future is polled only until then
    // (never again once it completed), whether or not a lane still listens.
    let mut stopping = false;
    loop {
        tokio::select! {
            () = &mut shutdown, if !stopping => {
                stopping = true;
                stop.send_replace(true);
            }
            joined = lanes.join_next() => match joined {
                None => break,
                Some(Ok(Ok(lane))) => report.merge(&lane),
                Some(Ok(Err(error))) => {
                    failed.get_or_insert(error);
                    stopping = true;
                    stop.send_replace(true);
                }
                Some(Err(join)) => {
                    failed.get_or_insert(SinkError::Fatal(format!("a writer lane stopped: {join}")));
                    stopping = true;
                    stop.send_replace(true);
                }
            }
        }
    }
    status.running.store(false, Ordering::Relaxed);
    failed.map_or(Ok(report), Err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lanes_share_the_partitions_without_overlap_or_gap() {
        for count in 1..=5 {
            for partition in 0..24 {
                let owners = (0..count)
                    .filter(|&index| Lane { index, count }.owns(partition))
                    .count();
                assert_eq!(owners, 1, "partition {partition} of {count} lanes");
            }
        }
        let lane = Lane { index: 1, count: 2 };
        assert!(lane.owns(1) && lane.owns(3) && !lane.owns(0) && !lane.owns(2));
    }

    #[test]
    fn the_sink_is_ready_and_caught_up_only_when_every_lane_is() {
        let status = Arc::new(SinkStatus::default());
        assert!(!status.is_ready() && !status.has_caught_up());
        status.begin(2);
        let mut first = LaneStatus::new(status.clone());
        let mut second = LaneStatus::new(status.clone());
        first.database(true);
        assert!(!status.is_ready(), "one lane has not reached the database");
        second.database(true);
        second.database(true);
        assert!(status.is_ready());
        first.database(false);
        first.database(false);
        assert!(!status.is_ready(), "a lane's write failed");
        first.database(true);
        assert!(status.is_ready());
        first.caught_up();
        first.caught_up();
        assert!(
            !status.has_caught_up(),
            "counted once, and one lane is behind"
        );
        second.caught_up();
        assert!(status.has_caught_up());
    }
}

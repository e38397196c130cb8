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

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use crate::config::SinkConfig;
use crate::events;
use crate::retry::Backoff;
use crate::source::{SourceEvent, SourceRecord, TopicSource, Watermarks, consumer_config};

/// A position to store: the offset after the last record of a partition.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Position {
    /// Full topic name.
    pub topic: Arc<str>,
    /// Partition.
    pub partition: i32,
    /// The next offset to read.
    pub next_offset: i64,
}

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
    mut handler: H,
    config: &SinkConfig,
    consumer_name: &str,
    mode: RunMode,
    status: Arc<SinkStatus>,
    shutdown: impl Future<Output = ()>,
) -> Result<RunReport, crate::SinkError> {
    let sink = handler.sink_label();
    let mut backoff = Backoff::new(
        Duration::from_millis(config.retry_initial_ms),
        Duration::from_millis(config.retry_max_ms),
    );
    tokio::pin!(shutdown);
    status.running.store(true, Ordering::Relaxed);
    let mut report = RunReport::default();

    // Positions from the database, retried while it is unreachable.
    let stored = loop {
        match handler.stored_positions().await {
            Ok(stored) => break stored,
            Err(HandlerError::Retriable { reason, message }) => {
                report.retries += 1;
                events::write_retried(sink, reason);
                status.database_up.store(false, Ordering::Relaxed);
                handler.reset();
                let delay = backoff.next_delay();
                tracing::warn!(sink, %message, ?delay, "cannot read positions; retrying");
                tokio::select! {
                    () = &mut shutdown => { status.running.store(false, Ordering::Relaxed); return Ok(report); }
                    () = tokio::time::sleep(delay) => {}
                }
            }
            Err(HandlerError::Fatal(message)) => {
                status.running.store(false, Ordering::Relaxed);
                return Err(crate::SinkError::Fatal(message));
            }
        }
    };
    backoff.reset();
    status.database_up.store(true, Ordering::Relaxed);
    metrics::gauge!(events::DATABASE_UP, "sink" => sink).set(1.0);

    let (tx, mut rx) = mpsc::channel(config.channel_capacity);
    let watermarks: Watermarks = Watermarks::default();
    let client = consumer_config(
        &config.bootstrap_servers,
        consumer_name,
        config.stats_interval_ms,
        &config.kafka,
    );
    let mut sources: HashMap<Arc<str>, TopicSource> = HashMap::new();
    for topic in handler.topics() {
        let next: HashMap<i32, i64> = stored
            .iter()
            .filter(|((t, _), _)| *t == topic)
            .map(|((_, p), o)| (*p, *o))
            .collect();
        let source = TopicSource::start(
            &client,
            &topic,
            &next,
            tx.clone(),
            watermarks.clone(),
            Some(events::paused_gauge(sink, &topic)),
        )
        .map_err(|e| crate::SinkError::Fatal(e.to_string()))?;
        sources.insert(source.topic().clone(), source);
    }
    drop(tx);

    // Positions: what is in the database, and what the batch reaches.
    let mut written: HashMap<(Arc<str>, i32), i64> = HashMap::new();
    for ((topic, partition), offset) in &stored {
        if let Some((name, _)) = sources.get_key_value(topic.as_str()) {
            written.insert((name.clone(), *partition), *offset);
        }
    }
    let mut reached: HashMap<(Arc<str>, i32), i64> = written.clone();
    let mut at_end: HashMap<(Arc<str>, i32), bool> = HashMap::new();
    // Caught up needs every topic's assignment, not just the first ones'.
    let mut assigned_topics = 0usize;
    let mut batch = H::Batch::default();
    let mut batch_positions: BTreeMap<(Arc<str>, i32), i64> = BTreeMap::new();
    let mut batch_records: BTreeMap<String, u64> = BTreeMap::new();
    let mut batch_started: Option<Instant> = None;
    let mut last_lag = Instant::now();
    let flush_interval = config.flush_interval();

    let result: Result<(), crate::SinkError> = loop {
        let deadline = batch_started.map(|started| started + flush_interval);
        let mut stopping = false;
        tokio::select! {
            biased;
            () = &mut shutdown => stopping = true,
            event = rx.recv() => match event {
                None => break Err(crate::SinkError::Fatal("every topic consumer stopped".into())),
                Some(SourceEvent::Assigned { topic, partitions }) => {
                    assigned_topics += 1;
                    for partition in partitions {
                        at_end.entry((topic.clone(), partition)).or_insert(false);
                    }
                }
                Some(SourceEvent::EndOfPartition { topic, partition }) => {
                    at_end.insert((topic, partition), true);
                }
                Some(SourceEvent::Record(record)) => {
                    let key = (record.topic.clone(), record.partition);
                    at_end.insert(key.clone(), false);
                    if reached.get(&key).is_some_and(|&next| record.offset < next) {
                        report.skipped_below_position += 1;
                        continue;
                    }
                    loop {
                        match handler.add(&mut batch, &record).await {
                            Ok(_) => break,
                            Err(HandlerError::Retriable { reason, message }) => {
                                report.retries += 1;
                                events::write_retried(sink, reason);
                                let delay = backoff.next_delay();
                                tracing::warn!(sink, %message, ?delay, "cannot decode a record yet; retrying");
                                tokio::time::sleep(delay).await;
                            }
                            Err(HandlerError::Fatal(message)) => {
                                status.running.store(false, Ordering::Relaxed);
                                return Err(crate::SinkError::Fatal(message));
                            }
                        }
                    }
                    backoff.reset();
                    reached.insert(key.clone(), record.offset + 1);
                    batch_positions.insert(key, record.offset + 1);
                    *batch_records.entry(record.topic.to_string()).or_default() += 1;
                    report.records += 1;
                    batch_started.get_or_insert_with(Instant::now);
                }
            },
            () = sleep_until(deadline) => {}
        }
        let everything_read = assigned_topics == sources.len() && at_end.values().all(|&end| end);
        let due = !batch_positions.is_empty()
            && (stopping
                || H::batch_rows(&batch) >= config.batch_max_rows
                || deadline.is_some_and(|d| Instant::now() >= d)
                || everything_read);
        if due {
            let positions: Vec<Position> = batch_positions
                .iter()
                .map(|((topic, partition), next)| Position {
                    topic: topic.clone(),
                    partition: *partition,
                    next_offset: *next,
                })
                .collect();
            let started = Instant::now();
            let flushed = loop {
                let attempt = tokio::time::timeout(
                    config.write_timeout(),
                    handler.flush(&mut batch, &positions),
                );
                let outcome = tokio::select! {
                    biased;
                    () = &mut shutdown, if !stopping => {
                        // Interrupted mid-write: nothing committed, the
                        // position stays where the database has it.
                        break None;
                    }
                    outcome = attempt => outcome,
                };
                let (reason, message) = match outcome {
                    Ok(Ok(flushed)) => break Some(flushed),
                    Ok(Err(HandlerError::Retriable { reason, message })) => (reason, message),
                    Ok(Err(HandlerError::Fatal(message))) => {
                        status.running.store(false, Ordering::Relaxed);
                        return Err(crate::SinkError::Fatal(message));
                    }
                    Err(_) => (
                        "timeout",
                        format!("the write took longer than {:?}", config.write_timeout()),
                    ),
                };
                handler.reset();
                report.retries += 1;
                events::write_retried(sink, reason);
                status.database_up.store(false, Ordering::Relaxed);
                let delay = backoff.next_delay();
                tracing::warn!(sink, reason, %message, attempts = backoff.attempts(), ?delay, "batch write failed; retrying with the same batch");
                if stopping {
                    // Shutting down while the database is away: give up
                    // without committing; the next start re-reads the batch.
                    break None;
                }
                tokio::select! {
                    biased;
                    () = &mut shutdown => { stopping = true; break None; }
                    () = tokio::time::sleep(delay) => {}
                }
            };
            let Some(flushed) = flushed else {
                break Ok(());
            };
            backoff.reset();
            status.database_up.store(true, Ordering::Relaxed);
            events::batch_committed(sink, &flushed.tables, &batch_records, started.elapsed());
            report.batches += 1;
            report.flushed.merge(&flushed);
            // The finalizer: only now mirror the positions to the group.
            let mut per_topic: HashMap<Arc<str>, Vec<(i32, i64)>> = HashMap::new();
            for position in &positions {
                written.insert(
                    (position.topic.clone(), position.partition),
                    position.next_offset,
                );
                per_topic
                    .entry(position.topic.clone())
                    .or_default()
                    .push((position.partition, position.next_offset));
            }
            for (topic, offsets) in per_topic {
                if let Some(source) = sources.get(&topic) {
                    source.commit(&offsets);
                }
            }
            batch = H::Batch::default();
            batch_positions.clear();
            batch_records.clear();
            batch_started = None;
        }
        if last_lag.elapsed() >= Duration::from_millis(config.stats_interval_ms.max(100)) {
            last_lag = Instant::now();
            update_lag(sink, &watermarks, &written, &at_end);
        }
        let caught_up = batch_positions.is_empty() && everything_read;
        if caught_up {
            status.caught_up.store(true, Ordering::Relaxed);
        }
        if stopping || (mode == RunMode::UntilCaughtUp && caught_up) {
            break Ok(());
        }
    };
    update_lag(sink, &watermarks, &written, &at_end);
    for source in sources.values_mut() {
        source.stop();
    }
    status.running.store(false, Ordering::Relaxed);
    result.map(|()| report)
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline.into()).await,
        None => std::future::pending().await,
    }
}

fn update_lag(
    sink: &'static str,
    watermarks: &Watermarks,
    written: &HashMap<(Arc<str>, i32), i64>,
    partitions: &HashMap<(Arc<str>, i32), bool>,
) {
    let Ok(marks) = watermarks.lock() else {
        return;
    };
    for (topic, partition) in partitions.keys() {
        if let Some(&high) = marks.get(&(topic.to_string(), *partition)) {
            let position = written
                .get(&(topic.clone(), *partition))
                .copied()
                .unwrap_or(0);
            events::lag(sink, topic, *partition, high - position);
        }
    }
}

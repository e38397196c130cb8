//! The loop's steps, in the order a batch meets them: start (positions
//! from the database, one consumer per topic), receive (an assignment, a
//! partition's end, a record into the batch), flush (write with retry, then
//! mirror the positions to the group) and the caught-up judgement.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use tokio::sync::mpsc;

use super::state::{Pending, Progress, Sources, Stored};
use super::{FlushReport, Handler, HandlerError, Lane, LaneStatus, RunMode, RunReport};
use crate::SinkError;
use crate::config::SinkConfig;
use crate::events;
use crate::positions::Position;
use crate::retry::Backoff;
use crate::source::{
    SourceEvent, SourceRecord, TopicSource, Watermarks, consumer_config, topic_partitions,
};

/// One lane's handler and what its loop keeps across batches: the settings,
/// the status it reports, the backoff between retries and the running totals.
pub(super) struct Driver<'c, H> {
    handler: H,
    config: &'c SinkConfig,
    lane: Lane,
    sink: &'static str,
    status: LaneStatus,
    backoff: Backoff,
    pub(super) report: RunReport,
}

/// What became of one source event.
#[derive(Debug, PartialEq, Eq)]
enum Received {
    /// Noted in the progress, or added to the batch.
    Taken,
    /// A record below the position already reached (a consumer that
    /// re-fetched after a reconnect, a duplicate delivery): skipped before
    /// decoding.
    BelowPosition,
}

impl<'c, H: Handler> Driver<'c, H> {
    /// A driver that has not read anything yet.
    pub(super) fn new(handler: H, config: &'c SinkConfig, lane: Lane, status: LaneStatus) -> Self {
        let sink = handler.sink_label();
        let backoff = Backoff::new(
            Duration::from_millis(config.retry_initial_ms),
            Duration::from_millis(config.retry_max_ms),
        );
        Self {
            handler,
            config,
            lane,
            sink,
            status,
            backoff,
            report: RunReport::default(),
        }
    }

    /// From start to stop: the lane's partitions claimed, the positions
    /// from the database, the consumers started there, the loop, and (however
    /// the loop ended) a last lag reading and the consumers stopped.
    pub(super) async fn run<S: Future<Output = ()>>(
        &mut self,
        consumer_name: &str,
        mode: RunMode,
        shutdown: &mut Pin<&mut S>,
    ) -> Result<(), SinkError> {
        let client = consumer_config(
            &self.config.bootstrap_servers,
            consumer_name,
            self.config.stats_interval_ms,
            &self.config.kafka,
        );
        let owned = self.owned_partitions(&client)?;
        let mut claimed: Vec<i32> = owned.values().flatten().copied().collect();
        claimed.sort_unstable();
        claimed.dedup();
        tracing::info!(sink = self.sink, lane = self.lane.index, lanes = self.lane.count, partitions = ?claimed, "writer lane starting");
        if owned.is_empty() {
            // More lanes than partitions: nothing here to write.
            self.status.database(true);
            self.status.caught_up();
            return Ok(());
        }
        self.handler.claim(&claimed);
        let Some(stored) = self.stored_positions(shutdown).await? else {
            return Ok(());
        };
        let (mut sources, mut inbox) = self.start_sources(&client, owned, &stored)?;
        let mut progress = Progress::from_stored(&stored, &sources);
        let result = self
            .drive(&sources, &mut inbox, &mut progress, mode, shutdown)
            .await;
        progress.report_lag(self.sink, &sources.watermarks);
        sources.stop();
        result
    }

    /// The positions stored in the database, retried while it is
    /// unreachable (a sink may start before its database); `None` when shut
    /// down while waiting.
    async fn stored_positions<S: Future<Output = ()>>(
        &mut self,
        shutdown: &mut Pin<&mut S>,
    ) -> Result<Option<Stored>, SinkError> {
        let stored = loop {
            match self.handler.stored_positions().await {
                Ok(stored) => break stored,
                Err(HandlerError::Retriable { reason, message }) => {
                    let delay = self.database_failed(reason);
                    tracing::warn!(sink = self.sink, %message, ?delay, "cannot read positions; retrying");
                    tokio::select! {
                        () = shutdown.as_mut() => return Ok(None),
                        () = tokio::time::sleep(delay) => {}
                    }
                }
                Err(HandlerError::Fatal(message)) => return Err(SinkError::Fatal(message)),
            }
        };
        self.database_succeeded();
        metrics::gauge!(events::DATABASE_UP, "sink" => self.sink).set(1.0);
        Ok(Some(stored))
    }

    /// The lane's share of each topic's partitions; a topic with none in
    /// this lane (fewer partitions than lanes) is left to the others.
    fn owned_partitions(
        &self,
        client: &ClientConfig,
    ) -> Result<HashMap<String, Vec<i32>>, SinkError> {
        let mut owned = HashMap::new();
        for topic in self.handler.topics() {
            let mut partitions =
                topic_partitions(client, &topic).map_err(|e| SinkError::Fatal(e.to_string()))?;
            partitions.retain(|&p| self.lane.owns(p));
            if !partitions.is_empty() {
                owned.insert(topic, partitions);
            }
        }
        Ok(owned)
    }

    /// Starts one consumer per topic with partitions in this lane, at the
    /// stored positions, all sending into one channel, which closes when
    /// every consumer has stopped.
    fn start_sources(
        &self,
        client: &ClientConfig,
        owned: HashMap<String, Vec<i32>>,
        stored: &Stored,
    ) -> Result<(Sources, mpsc::Receiver<SourceEvent>), SinkError> {
        let (tx, rx) = mpsc::channel(self.config.channel_capacity);
        let mut sources = Sources {
            by_topic: HashMap::new(),
            watermarks: Watermarks::default(),
        };
        for (topic, partitions) in owned {
            let next: HashMap<i32, i64> = stored
                .iter()
                .filter(|((t, _), _)| *t == topic)
                .map(|((_, p), o)| (*p, *o))
                .collect();
            let source = TopicSource::start(
                client,
                &topic,
                partitions,
                &next,
                tx.clone(),
                sources.watermarks.clone(),
                Some(events::paused_gauge(self.sink, &topic)),
            )
            .map_err(|e| SinkError::Fatal(e.to_string()))?;
            sources.by_topic.insert(source.topic().clone(), source);
        }
        Ok((sources, rx))
    }

    /// The loop: wait for a source event, the batch's deadline or shutdown;
    /// flush when due; report lag now and then; stop when told to, or once
    /// caught up in [`RunMode::UntilCaughtUp`].
    async fn drive<S: Future<Output = ()>>(
        &mut self,
        sources: &Sources,
        inbox: &mut mpsc::Receiver<SourceEvent>,
        progress: &mut Progress,
        mode: RunMode,
        shutdown: &mut Pin<&mut S>,
    ) -> Result<(), SinkError> {
        let mut pending = Pending::default();
        let mut last_lag = Instant::now();
        let lag_interval = Duration::from_millis(self.config.stats_interval_ms.max(100));
        let flush_interval = self.config.flush_interval();
        loop {
            let deadline = pending.started.map(|started| started + flush_interval);
            let mut stopping = false;
            tokio::select! {
                biased;
                () = shutdown.as_mut() => stopping = true,
                event = inbox.recv() => {
                    if self.receive(event, progress, &mut pending).await? == Received::BelowPosition {
                        continue;
                    }
                }
                () = sleep_until(deadline) => {}
            }
            let everything_read = progress.everything_read(sources.by_topic.len());
            if self.flush_due(&pending, stopping, deadline, everything_read)
                && !self
                    .flush(&mut pending, progress, sources, stopping, shutdown)
                    .await?
            {
                return Ok(());
            }
            if last_lag.elapsed() >= lag_interval {
                last_lag = Instant::now();
                progress.report_lag(self.sink, &sources.watermarks);
            }
            let caught_up = self.judge_caught_up(&pending, everything_read);
            if stopping || (mode == RunMode::UntilCaughtUp && caught_up) {
                return Ok(());
            }
        }
    }

    /// The receive step: an assignment or a partition's end moves the
    /// progress; a record goes into the batch. A closed channel means every
    /// consumer stopped, which the sink cannot recover from by itself.
    async fn receive(
        &mut self,
        event: Option<SourceEvent>,
        progress: &mut Progress,
        pending: &mut Pending<H::Batch>,
    ) -> Result<Received, SinkError> {
        match event {
            None => Err(SinkError::Fatal("every topic consumer stopped".into())),
            Some(SourceEvent::Assigned { topic, partitions }) => {
                progress.assigned(&topic, partitions);
                Ok(Received::Taken)
            }
            Some(SourceEvent::EndOfPartition { topic, partition }) => {
                progress.at_end.insert((topic, partition), true);
                Ok(Received::Taken)
            }
            Some(SourceEvent::Record(record)) => self.take(record, progress, pending).await,
        }
    }

    /// Adds a record to the batch unless the batch or the database already
    /// has it, and moves the positions the batch will store.
    async fn take(
        &mut self,
        record: SourceRecord,
        progress: &mut Progress,
        pending: &mut Pending<H::Batch>,
    ) -> Result<Received, SinkError> {
        let key = (record.topic.clone(), record.partition);
        progress.at_end.insert(key.clone(), false);
        if progress
            .reached
            .get(&key)
            .is_some_and(|&next| record.offset < next)
        {
            self.report.skipped_below_position += 1;
            return Ok(Received::BelowPosition);
        }
        self.add(&mut pending.batch, &record).await?;
        progress.reached.insert(key.clone(), record.offset + 1);
        pending.took(key, &record);
        self.report.records += 1;
        Ok(Received::Taken)
    }

    /// Decodes a record into the batch, retrying with backoff while decoding
    /// cannot succeed yet (the registry is unreachable); the consumers wait
    /// meanwhile, as the channel fills.
    async fn add(&mut self, batch: &mut H::Batch, record: &SourceRecord) -> Result<(), SinkError> {
        loop {
            match self.handler.add(batch, record).await {
                Ok(_) => break,
                Err(HandlerError::Retriable { reason, message }) => {
                    let delay = self.count_retry(reason);
                    tracing::warn!(sink = self.sink, %message, ?delay, "cannot decode a record yet; retrying");
                    tokio::time::sleep(delay).await;
                }
                Err(HandlerError::Fatal(message)) => return Err(SinkError::Fatal(message)),
            }
        }
        self.backoff.reset();
        Ok(())
    }

    /// Whether to write the batch now: it holds records, and the sink is
    /// stopping, the batch is full, its flush interval has passed, or every
    /// partition was read to its end (nothing more to wait for).
    fn flush_due(
        &self,
        pending: &Pending<H::Batch>,
        stopping: bool,
        deadline: Option<Instant>,
        everything_read: bool,
    ) -> bool {
        !pending.is_empty()
            && (stopping
                || H::batch_rows(&pending.batch) >= self.config.batch_max_rows
                || deadline.is_some_and(|d| Instant::now() >= d)
                || everything_read)
    }

    /// The flush step: writes the batch with its positions (retrying), and
    /// only once that committed mirrors the positions to the Kafka group and
    /// starts a new batch. `false`: shut down before the write committed, so
    /// the positions stay where the database has them.
    async fn flush<S: Future<Output = ()>>(
        &mut self,
        pending: &mut Pending<H::Batch>,
        progress: &mut Progress,
        sources: &Sources,
        stopping: bool,
        shutdown: &mut Pin<&mut S>,
    ) -> Result<bool, SinkError> {
        let positions = pending.positions();
        let started = Instant::now();
        let Some(flushed) = self
            .write(&mut pending.batch, &positions, stopping, shutdown)
            .await?
        else {
            return Ok(false);
        };
        self.database_succeeded();
        events::batch_committed(
            self.sink,
            &flushed.tables,
            &pending.records,
            started.elapsed(),
        );
        self.report.batches += 1;
        self.report.flushed.merge(&flushed);
        // The finalizer: only now mirror the positions to the group.
        progress.committed(&positions);
        sources.commit(&positions);
        *pending = Pending::default();
        Ok(true)
    }

    /// Writes the batch and its positions in one transaction, each attempt
    /// bounded by `write_timeout`, retried with backoff on a new connection
    /// holding the same batch. `None`: shut down first (mid-write or while
    /// waiting), or the write failed while already stopping; nothing was
    /// committed and the next start re-reads the batch.
    async fn write<S: Future<Output = ()>>(
        &mut self,
        batch: &mut H::Batch,
        positions: &[Position],
        stopping: bool,
        shutdown: &mut Pin<&mut S>,
    ) -> Result<Option<FlushReport>, SinkError> {
        loop {
            let attempt = tokio::time::timeout(
                self.config.write_timeout(),
                self.handler.flush(batch, positions),
            );
            let outcome = tokio::select! {
                biased;
                () = shutdown.as_mut(), if !stopping => return Ok(None),
                outcome = attempt => outcome,
            };
            let (reason, message) = match outcome {
                Ok(Ok(flushed)) => return Ok(Some(flushed)),
                Ok(Err(HandlerError::Retriable { reason, message })) => (reason, message),
                Ok(Err(HandlerError::Fatal(message))) => return Err(SinkError::Fatal(message)),
                Err(_) => (
                    "timeout",
                    format!(
                        "the write took longer than {:?}",
                        self.config.write_timeout()
                    ),
                ),
            };
            let delay = self.database_failed(reason);
            tracing::warn!(sink = self.sink, reason, %message, attempts = self.backoff.attempts(), ?delay, "batch write failed; retrying with the same batch");
            if stopping {
                return Ok(None);
            }
            tokio::select! {
                biased;
                () = shutdown.as_mut() => return Ok(None),
                () = tokio::time::sleep(delay) => {}
            }
        }
    }

    /// The caught-up judgement: nothing waits in a batch and every
    /// partition of every topic was read to its end. Recorded in the status
    /// the first time it holds.
    fn judge_caught_up(&mut self, pending: &Pending<H::Batch>, everything_read: bool) -> bool {
        let caught_up = pending.is_empty() && everything_read;
        if caught_up {
            self.status.caught_up();
        }
        caught_up
    }

    /// A failed database call: counts the retry, marks the database down
    /// (not ready) and forgets the connection, so the next attempt starts a
    /// new one. Returns how long to wait first.
    fn database_failed(&mut self, reason: &'static str) -> Duration {
        self.handler.reset();
        self.status.database(false);
        self.count_retry(reason)
    }

    /// A successful database call: ready again, and the next failure waits
    /// the shortest delay.
    fn database_succeeded(&mut self) {
        self.backoff.reset();
        self.status.database(true);
    }

    /// Counts a retry in the report and the metric; returns the backoff's
    /// next delay.
    fn count_retry(&mut self, reason: &'static str) -> Duration {
        self.report.retries += 1;
        events::write_retried(self.sink, reason);
        self.backoff.next_delay()
    }
}

/// Sleeps until the batch's deadline; forever when there is no open batch.
async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline.into()).await,
        None => std::future::pending().await,
    }
}

//! Restoring a task's state on assignment: open the local store, replay each
//! store's changelog partition from where the store left off (or from the
//! beginning when the store is missing or cannot be trusted) to the high
//! watermark, applying only records of committed batches, then hand the task
//! the input offsets of the last committed batch.
//!
//! # Which batches are committed
//!
//! A batch's commit markers are produced only after *all* of its outputs and
//! changelog records were acknowledged (`checkpoint.rs`). So a single marker
//! with sequence number `S`, in any store's changelog, proves that batch `S`
//! is complete. The task's committed batch `C` is the highest marker seen in
//! any of its changelogs (or in the local metadata). Records carry their
//! batch's number in a header:
//!
//! - records with `seq <= C` are applied in log order;
//! - records with `seq > C` belong to an attempt that crashed before its
//!   markers: they are **discarded**, and the runtime appends "revert"
//!   records (the committed value, or a tombstone, tagged with `C`) for their
//!   keys, so the changelog's latest value of every key is the committed one
//!   again. The next batch reuses number `C + 1`; a later full replay applies
//!   the stale records, then the reverts that follow them, then the new batch,
//!   which ends in the same state.
//!
//! Without the discard, a "seen MessageId" written by a batch whose outputs
//! never got out would make the next owner drop that message.
//!
//! While streaming, a record can be applied as soon as a marker with an equal
//! or higher number has been read in the same partition; records after the
//! latest marker wait in a FIFO (at most about one batch) until the end, so a
//! restore of any size runs in bounded memory and commits its progress in
//! chunks (a kill during restore resumes where it stopped).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

use crate::runtime::changelog::{self, ChangelogEntry, Marker};
use crate::runtime::checkpoint::{OutputProducer, ProduceRecord};
use crate::runtime::clients::ToEndContext;
use crate::runtime::error::RuntimeError;
use crate::runtime::events::{Events, RuntimeEvent};
use crate::runtime::global::GlobalStore;
use crate::runtime::processor::GlobalChange;
use crate::runtime::store::{
    RocksStore, StateMemory, Store, StoreProgress, StoreWrite, TaskMetadata,
};

/// A changelog record waiting for a marker.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Held {
    offset: i64,
    seq: u64,
    key: Vec<u8>,
    value: Option<Vec<u8>>,
}

/// The replay of one store's changelog partition.
#[derive(Debug)]
pub(crate) struct StoreReplay {
    store: usize,
    progress: StoreProgress,
    next_read: Option<i64>,
    held: VecDeque<Held>,
    released: Vec<StoreWrite>,
    /// Records read (data and markers).
    pub(crate) records: u64,
    /// Records not written by this runtime, skipped.
    pub(crate) foreign: u64,
}

/// What is left to do for one store once the committed batch is known.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct StoreFinish {
    /// Held records of committed batches, to apply in order.
    pub(crate) writes: Vec<StoreWrite>,
    /// Keys of discarded records, to revert in the changelog.
    pub(crate) discarded_keys: BTreeSet<Vec<u8>>,
    /// Number of discarded records.
    pub(crate) discarded: usize,
}

impl StoreReplay {
    /// A replay of store `store` starting from its stored progress.
    pub(crate) fn new(store: usize, progress: StoreProgress) -> Self {
        Self {
            store,
            next_read: progress.next_offset,
            progress,
            held: VecDeque::new(),
            released: Vec::new(),
            records: 0,
            foreign: 0,
        }
    }

    /// Feeds the record at `offset`.
    pub(crate) fn on_record(&mut self, offset: i64, entry: ChangelogEntry) {
        self.records += 1;
        self.next_read = Some(offset + 1);
        match entry {
            ChangelogEntry::Data { seq, key, value } => {
                self.held.push_back(Held {
                    offset,
                    seq,
                    key,
                    value,
                });
            }
            ChangelogEntry::Commit(marker) => {
                if self
                    .progress
                    .max_marker
                    .as_ref()
                    .is_none_or(|m| marker.seq > m.seq)
                {
                    self.progress.max_marker = Some(marker);
                }
            }
            ChangelogEntry::Foreign(reason) => {
                self.foreign += 1;
                tracing::warn!(offset, %reason, "skipping a changelog record this runtime did not write");
            }
        }
        self.release();
    }

    fn max_seq(&self) -> u64 {
        self.progress.max_marker.as_ref().map_or(0, |m| m.seq)
    }

    /// Moves records of batches known to be committed from the FIFO's front
    /// to the released list (order kept: a record is never applied before one
    /// that precedes it in the log).
    fn release(&mut self) {
        let max = self.max_seq();
        while self.held.front().is_some_and(|h| h.seq <= max) {
            if let Some(h) = self.held.pop_front() {
                self.released.push(StoreWrite {
                    store: self.store,
                    key: h.key,
                    value: h.value,
                });
            }
        }
    }

    /// Takes the records released so far (to write in a chunk).
    pub(crate) fn take_released(&mut self) -> Vec<StoreWrite> {
        std::mem::take(&mut self.released)
    }

    /// The progress to store with the chunk: restart from the first held
    /// record (held records are not applied yet), or after the last read.
    pub(crate) fn progress(&self) -> StoreProgress {
        StoreProgress {
            next_offset: self
                .held
                .front()
                .map(|h| Some(h.offset))
                .unwrap_or(self.next_read),
            max_marker: self.progress.max_marker.clone(),
        }
    }

    /// The highest marker read or remembered.
    pub(crate) fn max_marker(&self) -> Option<&Marker> {
        self.progress.max_marker.as_ref()
    }

    /// Splits what is still held into records of committed batches (applied)
    /// and records of the crashed attempt after batch `committed` (discarded).
    pub(crate) fn finish(&mut self, committed: u64) -> StoreFinish {
        let mut finish = StoreFinish {
            writes: self.take_released(),
            ..StoreFinish::default()
        };
        for held in self.held.drain(..) {
            if held.seq <= committed {
                finish.writes.push(StoreWrite {
                    store: self.store,
                    key: held.key,
                    value: held.value,
                });
            } else {
                finish.discarded += 1;
                finish.discarded_keys.insert(held.key);
            }
        }
        finish
    }
}

/// The committed batch: the highest marker among the stores' changelogs and
/// the local metadata (a single marker proves its batch complete).
pub(crate) fn decide(local: &Marker, replays: &[StoreReplay]) -> Marker {
    let mut best = local.clone();
    for marker in replays.iter().filter_map(StoreReplay::max_marker) {
        if marker.seq > best.seq {
            best = marker.clone();
        }
    }
    best
}

/// A restored task, ready to process.
pub(crate) struct Restored {
    /// The task's store.
    pub(crate) store: Arc<RocksStore>,
    /// Its metadata after restore (the committed batch, changelog positions).
    pub(crate) metadata: TaskMetadata,
    /// Global-table changes the task's state has not seen yet.
    pub(crate) global_changes: Vec<GlobalChange>,
    /// The global offsets the store has now (what the task has seen once the
    /// changes above are processed).
    pub(crate) global_offsets: BTreeMap<String, BTreeMap<i32, i64>>,
}

/// What every restore of a processor shares.
pub(crate) struct RestoreSetup {
    pub(crate) state_dir: PathBuf,
    pub(crate) stores: Vec<String>,
    pub(crate) changelogs: Vec<String>,
    pub(crate) memory: StateMemory,
    pub(crate) consumer_config: ClientConfig,
    pub(crate) producer: OutputProducer,
    pub(crate) globals: Option<Arc<GlobalStore>>,
    pub(crate) events: Events,
    pub(crate) chunk_records: usize,
}

impl RestoreSetup {
    pub(crate) fn task_dir(&self, task: i32) -> PathBuf {
        self.state_dir.join(task.to_string())
    }
}

fn join_error(error: tokio::task::JoinError) -> RuntimeError {
    RuntimeError::Internal(format!(
        "a blocking restore step panicked or was cancelled: {error}"
    ))
}

/// Opens the task's store, or rebuilds it when its metadata cannot be read.
fn open_store(
    setup: &RestoreSetup,
    task: i32,
) -> Result<(RocksStore, TaskMetadata, bool), RuntimeError> {
    let dir = setup.task_dir(task);
    let existed = dir.exists();
    let store = RocksStore::open(&dir, &setup.stores, &setup.memory)?;
    match store.metadata() {
        Ok(Some(metadata)) => Ok((store, metadata, false)),
        Ok(None) => Ok((store, TaskMetadata::fresh(), true)),
        Err(error) => {
            tracing::warn!(task, %error, "the local store cannot be read; rebuilding it from the changelog");
            drop(store);
            RocksStore::destroy(&dir)?;
            let store = RocksStore::open(&dir, &setup.stores, &setup.memory)?;
            Ok((store, TaskMetadata::fresh(), true))
        }
    }
    .map(|(store, metadata, fresh)| (store, metadata, fresh || !existed))
}

/// Restores task `task`. Returns `None` when `cancel` was raised (the task
/// was revoked); the store is then closed and left consistent.
pub(crate) async fn restore_task(
    setup: Arc<RestoreSetup>,
    task: i32,
    cancel: Arc<AtomicBool>,
) -> Result<Option<Restored>, RuntimeError> {
    let started = Instant::now();
    setup.events.emit(RuntimeEvent::RestoreStarted { task });

    // 1. The local store.
    let s = setup.clone();
    let (store, metadata, fresh) = tokio::task::spawn_blocking(move || open_store(&s, task))
        .await
        .map_err(join_error)??;
    let mut store = Arc::new(store);
    let mut metadata = metadata;
    let mut fresh = fresh;

    // 2. Replay each store's changelog partition to its end, in chunks. A
    // stored position the changelog does not reach (topic recreated, records
    // deleted) means the store no longer matches it: discard it, start over.
    let mut replays = loop {
        let mut replays: Vec<StoreReplay> = setup
            .stores
            .iter()
            .enumerate()
            .map(|(i, name)| {
                StoreReplay::new(i, metadata.stores.get(name).cloned().unwrap_or_default())
            })
            .collect();
        let mut progress_metadata = metadata.clone();
        let mut trustworthy = true;
        for i in 0..setup.stores.len() {
            match replay_store(
                &setup,
                task,
                &cancel,
                &store,
                &mut replays,
                i,
                &mut progress_metadata,
            )
            .await?
            {
                Replayed::Done => {}
                Replayed::Cancelled => {
                    setup.events.emit(RuntimeEvent::RestoreCancelled { task });
                    return Ok(None);
                }
                Replayed::BeyondEnd => {
                    trustworthy = false;
                    break;
                }
            }
        }
        if trustworthy || fresh {
            break replays;
        }
        tracing::error!(
            task,
            "the local store's changelog position lies beyond the changelog; discarding it and replaying from the beginning"
        );
        let s = setup.clone();
        drop(store);
        store = tokio::task::spawn_blocking(move || -> Result<_, RuntimeError> {
            let dir = s.task_dir(task);
            RocksStore::destroy(&dir)?;
            Ok(Arc::new(RocksStore::open(&dir, &s.stores, &s.memory)?))
        })
        .await
        .map_err(join_error)??;
        metadata = TaskMetadata::fresh();
        fresh = true;
    };

    // 3. Decide the committed batch; discard and revert a crashed attempt.
    let committed = decide(&metadata.committed, &replays);
    let mut finishes: Vec<StoreFinish> = replays
        .iter_mut()
        .map(|r| r.finish(committed.seq))
        .collect();
    let discarded: usize = finishes.iter().map(|f| f.discarded).sum();
    let mut final_metadata = TaskMetadata {
        committed: committed.clone(),
        ..TaskMetadata::fresh()
    };
    for (i, replay) in replays.iter().enumerate() {
        final_metadata
            .stores
            .insert(setup.stores[i].clone(), replay.progress());
    }
    if discarded > 0 {
        // The committed value of each discarded key: this restore's pending
        // writes first, else the store.
        let st = store.clone();
        let pending: Vec<BTreeMap<Vec<u8>, Option<Vec<u8>>>> = finishes
            .iter()
            .map(|f| {
                f.writes
                    .iter()
                    .map(|w| (w.key.clone(), w.value.clone()))
                    .collect()
            })
            .collect();
        let keys: Vec<BTreeSet<Vec<u8>>> =
            finishes.iter().map(|f| f.discarded_keys.clone()).collect();
        let reverts = tokio::task::spawn_blocking(
            move || -> Result<Vec<Vec<(Vec<u8>, Option<Vec<u8>>)>>, RuntimeError> {
                let mut out = Vec::new();
                for (i, keys) in keys.iter().enumerate() {
                    let mut store_reverts = Vec::new();
                    for key in keys {
                        let value = match pending[i].get(key) {
                            Some(v) => v.clone(),
                            None => st.get(i, key)?,
                        };
                        store_reverts.push((key.clone(), value));
                    }
                    out.push(store_reverts);
                }
                Ok(out)
            },
        )
        .await
        .map_err(join_error)??;
        let mut records = Vec::new();
        for (i, store_reverts) in reverts.iter().enumerate() {
            for (key, value) in store_reverts {
                records.push(ProduceRecord {
                    topic: setup.changelogs[i].clone(),
                    partition: Some(task),
                    key: key.clone(),
                    value: value.clone(),
                    headers: changelog::data_headers(&setup.stores[i], committed.seq),
                });
            }
        }
        let deliveries = setup.producer.send_all(records).await?;
        // Next time, read from after the reverts.
        let mut index = 0;
        for (i, store_reverts) in reverts.iter().enumerate() {
            let mut last = None;
            for _ in store_reverts {
                last = Some(deliveries[index].1);
                index += 1;
            }
            if let Some(offset) = last {
                let progress = final_metadata
                    .stores
                    .entry(setup.stores[i].clone())
                    .or_default();
                progress.next_offset = Some(progress.next_offset.unwrap_or(0).max(offset + 1));
            }
        }
        tracing::warn!(
            task,
            discarded,
            committed = committed.seq,
            "discarded the records of a batch that crashed before its commit markers, and reverted their keys in the changelog"
        );
    }
    let writes: Vec<StoreWrite> = finishes
        .iter_mut()
        .flat_map(|f| std::mem::take(&mut f.writes))
        .collect();
    let st = store.clone();
    let md = final_metadata.clone();
    tokio::task::spawn_blocking(move || st.commit(&writes, &md))
        .await
        .map_err(join_error)??;

    // 4. Global-table changes this task's state has not seen.
    let (global_changes, global_offsets) = match &setup.globals {
        Some(globals) => {
            let g = globals.clone();
            let seen = committed.global_seen.clone();
            let brand_new = committed.seq == 0;
            tokio::task::spawn_blocking(move || -> Result<_, RuntimeError> {
                let offsets = g.offsets();
                // A task that never committed has no state that could depend
                // on an older version of a table: nothing to recompute.
                let changes = if brand_new {
                    Vec::new()
                } else {
                    g.changes_since(&seen)?
                };
                Ok((changes, offsets))
            })
            .await
            .map_err(join_error)??
        }
        None => (Vec::new(), BTreeMap::new()),
    };

    let records: u64 = replays.iter().map(|r| r.records).sum();
    setup.events.emit(RuntimeEvent::RestoreFinished {
        task,
        records,
        discarded,
        committed_seq: committed.seq,
        from_scratch: fresh,
        duration_ms: started.elapsed().as_millis() as u64,
    });
    Ok(Some(Restored {
        store,
        metadata: final_metadata,
        global_changes,
        global_offsets,
    }))
}

/// How a store's replay ended.
enum Replayed {
    Done,
    Cancelled,
    /// The stored position lies beyond the changelog's end.
    BeyondEnd,
}

enum Polled {
    Record { offset: i64, entry: ChangelogEntry },
    End,
    OutOfRange,
}

/// How long a fetch that has not delivered its first record may stay silent
/// before it is moved back (a broker that answers a fetch starting inside
/// its last batch with nothing) or, at offset 0, given up as beyond the end.
const SILENCE: Duration = Duration::from_secs(2);

/// Replays store `i`'s changelog partition from its stored position to the
/// end (end-of-partition as seen by fetches: the local broker's ListOffsets
/// under-reports the end), committing progress after every chunk.
///
/// With a stored position `n`, reading starts at `n - 1`, the last record
/// already applied, and the fetch must prove it covers it: the first record
/// must not lie after `n - 1` (the local broker's memory engine skips the
/// rest of a batch when a fetch starts inside it; then reading moves back
/// until it does). If the changelog ends before `n - 1`, the store is stale.
async fn replay_store(
    setup: &Arc<RestoreSetup>,
    task: i32,
    cancel: &Arc<AtomicBool>,
    store: &Arc<RocksStore>,
    replays: &mut [StoreReplay],
    i: usize,
    progress_metadata: &mut TaskMetadata,
) -> Result<Replayed, RuntimeError> {
    let topic = setup.changelogs[i].clone();
    let start = replays[i].progress().next_offset.filter(|n| *n > 0);
    let config = setup.consumer_config.clone();
    let t = topic.clone();
    let consumer = tokio::task::spawn_blocking(
        move || -> Result<Arc<BaseConsumer<ToEndContext>>, RuntimeError> {
            let consumer: BaseConsumer<ToEndContext> = config.create_with_context(ToEndContext)?;
            let mut tpl = TopicPartitionList::new();
            tpl.add_partition_offset(
                &t,
                task,
                start.map_or(Offset::Beginning, |n| Offset::Offset(n - 1)),
            )?;
            consumer.assign(&tpl)?;
            Ok(Arc::new(consumer))
        },
    )
    .await
    .map_err(join_error)??;
    // The position the fetch started at, until a record proves it.
    let mut unverified = start.map(|n| (n - 1, crate::runtime::task::REWIND_WINDOW));
    // Whether a record at or after `n - 1` was seen (the changelog reaches the store).
    let mut reached = start.is_none();
    let mut silent_since = Instant::now();
    let outcome = 'replay: loop {
        if cancel.load(Ordering::SeqCst) {
            break Replayed::Cancelled;
        }
        let c = consumer.clone();
        let limit = setup.chunk_records;
        let polled = tokio::task::spawn_blocking(move || poll_chunk(&c, limit))
            .await
            .map_err(join_error)??;
        if polled.is_empty() {
            match unverified {
                Some((from, window)) if silent_since.elapsed() > SILENCE => {
                    if from == 0 {
                        break Replayed::BeyondEnd;
                    }
                    let back = (from - window).max(0);
                    unverified = Some((back, window.saturating_mul(10)));
                    seek(&consumer, &topic, task, back).await?;
                    silent_since = Instant::now();
                }
                _ => {}
            }
            continue;
        }
        silent_since = Instant::now();
        let mut ended = false;
        for item in polled {
            match item {
                Polled::Record { offset, entry } => {
                    if let Some((from, window)) = unverified {
                        let n = start.unwrap_or(0);
                        if offset < n || from == 0 {
                            unverified = None;
                        } else {
                            // Started after the position: fetch again from earlier.
                            let back = (from - window).max(0);
                            unverified = Some((back, window.saturating_mul(10)));
                            seek(&consumer, &topic, task, back).await?;
                            continue 'replay;
                        }
                    }
                    if start.is_none_or(|n| offset >= n - 1) {
                        reached = true;
                    }
                    if start.is_none_or(|n| offset >= n) {
                        replays[i].on_record(offset, entry);
                    }
                }
                Polled::End => {
                    if !reached {
                        return finish_consumer(consumer, Replayed::BeyondEnd).await;
                    }
                    ended = true;
                }
                Polled::OutOfRange => return finish_consumer(consumer, Replayed::BeyondEnd).await,
            }
        }
        // Commit the released records with the progress, so a kill here
        // resumes from this point rather than from the beginning.
        let writes = replays[i].take_released();
        progress_metadata
            .stores
            .insert(setup.stores[i].clone(), replays[i].progress());
        if !writes.is_empty() {
            let st = store.clone();
            let md = progress_metadata.clone();
            tokio::task::spawn_blocking(move || st.commit(&writes, &md))
                .await
                .map_err(join_error)??;
        }
        if ended {
            break Replayed::Done;
        }
    };
    if replays[i].foreign > 0 {
        tracing::warn!(task, %topic, foreign = replays[i].foreign, "the changelog holds records this runtime did not write");
    }
    finish_consumer(consumer, outcome).await
}

/// Moves the restore consumer to `offset` (waiting until nothing fetched for
/// the old position can be returned).
async fn seek(
    consumer: &Arc<BaseConsumer<ToEndContext>>,
    topic: &str,
    task: i32,
    offset: i64,
) -> Result<(), RuntimeError> {
    tracing::debug!(%topic, task, offset, "changelog fetch started after the position asked for; fetching again from earlier");
    let c = consumer.clone();
    let t = topic.to_string();
    tokio::task::spawn_blocking(move || {
        c.seek(&t, task, Offset::Offset(offset), Duration::from_secs(10))
    })
    .await
    .map_err(join_error)??;
    Ok(())
}

/// Closes a restore consumer off the reactor (closing can block briefly).
async fn finish_consumer(
    consumer: Arc<BaseConsumer<ToEndContext>>,
    outcome: Replayed,
) -> Result<Replayed, RuntimeError> {
    tokio::task::spawn_blocking(move || drop(consumer))
        .await
        .map_err(join_error)?;
    Ok(outcome)
}

/// Polls up to `limit` changelog records, stopping at the partition's end
/// (or after about 200 ms without records).
fn poll_chunk(
    consumer: &BaseConsumer<ToEndContext>,
    limit: usize,
) -> Result<Vec<Polled>, RuntimeError> {
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_millis(200);
    while out.len() < limit {
        let wait = deadline.saturating_duration_since(Instant::now());
        match consumer.poll(if out.is_empty() { wait } else { Duration::ZERO }) {
            Some(Ok(message)) => out.push(Polled::Record {
                offset: message.offset(),
                entry: changelog::classify(&message),
            }),
            Some(Err(KafkaError::PartitionEOF(_))) => {
                out.push(Polled::End);
                break;
            }
            Some(Err(KafkaError::MessageConsumption(RDKafkaErrorCode::OffsetOutOfRange))) => {
                out.push(Polled::OutOfRange);
                break;
            }
            Some(Err(error)) => {
                tracing::warn!(%error, "changelog consumer error during restore");
                break;
            }
            None => break,
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests;

//! What a processor author implements ([`Processor`]) and what the runtime
//! hands it while processing ([`InputRecord`], [`Context`]).
//!
//! Arroyo's rule applies: a processor *declares* its state ([`StoreSpec`],
//! [`GlobalTableSpec`]) and the runtime owns it. A processor never opens
//! storage, never commits offsets and never schedules checkpoints; it reads
//! and writes through the [`Context`], whose writes become visible to the
//! rest of the world only when the runtime commits the batch.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::runtime::changelog::MARKER_KEY;
use crate::runtime::store::{Store, StoreError, StoreWrite};

/// Header every output record carries: the deterministic key a sink or a
/// consumer uses to drop replays (a re-processed batch emits the same keys).
pub const IDEMPOTENCY_KEY_HEADER: &str = "afregning-idempotency-key";

/// A state store a processor declares. The runtime creates one column family
/// per store in every task's RocksDB and one compacted changelog topic per
/// store (`<prefix>afregning.<processor>.<store>-changelog.v1`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreSpec {
    /// The store's name (kebab case, `[a-z0-9-]`); part of the changelog topic name.
    pub name: String,
}

impl StoreSpec {
    /// A store named `name`.
    pub fn new(name: impl Into<String>) -> Self {
        Self { name: name.into() }
    }
}

/// A global table: a compacted topic every instance of the processor holds in
/// full (all partitions), e.g. charges or spot prices that the settle
/// processor joins against. Read-only for the processor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlobalTableSpec {
    /// The name the processor reads it by ([`Context::global`]).
    pub name: String,
    /// The compacted topic it is built from.
    pub topic: String,
    /// Keep every record, not only the latest per key: for an event log read whole (the
    /// portfolio's events, whose state is their fold), where a later record of a key does
    /// not replace the earlier ones. Entries are keyed by [`log_entry_key`].
    pub every_record: bool,
}

impl GlobalTableSpec {
    /// A table `name` built from `topic`.
    pub fn new(name: impl Into<String>, topic: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            topic: topic.into(),
            every_record: false,
        }
    }

    /// A table `name` holding every record of the event log `topic` (decision 0140), keyed
    /// by [`log_entry_key`] so that a key's records are one prefix, in log order.
    pub fn log(name: impl Into<String>, topic: impl Into<String>) -> Self {
        Self {
            every_record: true,
            ..Self::new(name, topic)
        }
    }
}

/// The key of one record in a table that keeps every record ([`GlobalTableSpec::log`]): the
/// record's key, `0x1f`, then its partition and offset big-endian, so that a prefix scan of
/// `key ␟` returns the key's records in log order and no record replaces another.
pub fn log_entry_key(key: &[u8], partition: i32, offset: i64) -> Vec<u8> {
    let mut out = Vec::with_capacity(key.len() + 13);
    out.extend_from_slice(key);
    out.push(crate::runtime::typed::KEY_SEP);
    out.extend_from_slice(&partition.to_be_bytes());
    out.extend_from_slice(&offset.to_be_bytes());
    out
}

/// One consumed record, owned, as the processor sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputRecord {
    /// The topic it was read from.
    pub topic: String,
    /// Its partition (equal to the task number: inputs are co-partitioned).
    pub partition: i32,
    /// Its offset in the partition.
    pub offset: i64,
    /// The record's timestamp in milliseconds since the epoch, when it has one.
    pub timestamp: Option<i64>,
    /// The key bytes, when it has a key.
    pub key: Option<Vec<u8>>,
    /// The value bytes; `None` is a tombstone.
    pub value: Option<Vec<u8>>,
    /// Headers in the order they were written.
    pub headers: Vec<(String, Vec<u8>)>,
}

impl InputRecord {
    /// The first header named `name`, if any.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    }
}

/// A record a processor emits. The runtime produces it only as part of a
/// batch commit; if the batch is re-processed after a crash the same record
/// (same idempotency key) is produced again, which consumers drop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputRecord {
    /// The topic to write to.
    pub topic: String,
    /// The record key.
    pub key: Vec<u8>,
    /// The value; `None` writes a tombstone (for table topics).
    pub value: Option<Vec<u8>>,
    /// An explicit partition (e.g. from the grid-area partitioner); `None`
    /// lets the producer's partitioner choose by key.
    pub partition: Option<i32>,
    /// Extra headers.
    pub headers: Vec<(String, Vec<u8>)>,
    /// A deterministic function of the input (e.g. `key + version`), written
    /// as the [`IDEMPOTENCY_KEY_HEADER`] header. Required: it is what makes
    /// replays harmless downstream.
    pub idempotency_key: String,
}

/// A change to a global table, handed to [`Processor::on_global_change`] so
/// that a processor can recompute what depends on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlobalChange {
    /// The table's name ([`GlobalTableSpec::name`]).
    pub table: String,
    /// The changed key.
    pub key: Vec<u8>,
    /// The new value; `None` when the key was deleted.
    pub value: Option<Vec<u8>>,
    /// The partition of the table's topic the change came from.
    pub partition: i32,
    /// Its offset there.
    pub offset: i64,
}

/// Why processing failed. The runtime treats every error as fatal for the
/// process (the batch is not committed and `run_processor` returns it):
/// bad *data* is the processor's to handle (dead-letter it and carry on);
/// an error here means the processor cannot continue safely.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// The state store failed.
    #[error("state store: {0}")]
    Store(#[from] StoreError),
    /// The processor failed.
    #[error("{message}")]
    Failed {
        /// What went wrong.
        message: String,
        /// The underlying error, if any.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
}

impl ProcessError {
    /// A processor failure with a message.
    pub fn failed(message: impl Into<String>) -> Self {
        ProcessError::Failed {
            message: message.into(),
            source: None,
        }
    }

    /// A processor failure caused by `source`.
    pub fn caused_by(
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        ProcessError::Failed {
            message: message.into(),
            source: Some(Box::new(source)),
        }
    }
}

/// A stateful stream processor, run by the runtime once per process with one
/// [`Context`] per task (partition).
///
/// `process` must be a deterministic function of the record and the state it
/// reads: after a crash the runtime re-processes the uncommitted batch from
/// the offsets stored with the state, and the outputs must come out the same
/// (same idempotency keys) for downstream de-duplication to work.
pub trait Processor: Send + 'static {
    /// The processor's short name (kebab case): part of changelog topic names,
    /// the default consumer group, metric labels and the state directory.
    fn name(&self) -> &str;

    /// The state stores every task of this processor has.
    fn stores(&self) -> Vec<StoreSpec>;

    /// The co-partitioned input topics (equal partition counts, checked at
    /// start): task `p` owns partition `p` of each. The first is the primary
    /// topic whose partitions the consumer group balances.
    fn input_topics(&self) -> Vec<String>;

    /// Global tables every instance reads in full (default: none).
    fn global_tables(&self) -> Vec<GlobalTableSpec> {
        Vec::new()
    }

    /// How often [`Processor::on_tick`] runs per task (default: never).
    fn tick_interval(&self) -> Option<Duration> {
        None
    }

    /// A new instance of this processor for one task (partition), so that
    /// the runtime can process several tasks' batches at once, each with its
    /// own instance, on up to `processing_threads` threads (decision 0153).
    /// The runtime asks once per task it starts, and drops the instance when
    /// the task goes. The instance must behave exactly as `self` would on
    /// that task: the same configuration, and nothing shared with other
    /// tasks' instances but the stores and global tables (caches of derived
    /// data are fine: each instance sees all of its task's global changes).
    /// Default `None`: this one instance processes every task, one batch
    /// after the other.
    fn task_instance(&self) -> Option<Self>
    where
        Self: Sized,
    {
        None
    }

    /// Called (asynchronously, before processing) with every record of the
    /// coming batch, so a processor can prefetch what `process` will need,
    /// e.g. Avro writer schemas from the registry. Default: nothing.
    fn prepare_batch(
        &mut self,
        records: &[&InputRecord],
    ) -> impl Future<Output = Result<(), ProcessError>> + Send {
        let _ = records;
        async { Ok(()) }
    }

    /// Processes one record: read and write the task's stores and emit
    /// outputs through `ctx`. Runs on a blocking thread, never on the reactor.
    fn process(&mut self, record: &InputRecord, ctx: &mut Context<'_>) -> Result<(), ProcessError>;

    /// Periodic work per task (e.g. closing windows), every
    /// [`Processor::tick_interval`]. Its effects are committed with the next
    /// batch; since ticks are not replayed, it must be safe to run again.
    fn on_tick(&mut self, now: DateTime<Utc>, ctx: &mut Context<'_>) -> Result<(), ProcessError> {
        let _ = (now, ctx);
        Ok(())
    }

    /// A global table entry changed; called once per running task with that
    /// task's context. Changes a task missed while it was not running (its
    /// state did not see them) are delivered when it starts. Default: nothing.
    fn on_global_change(
        &mut self,
        change: &GlobalChange,
        ctx: &mut Context<'_>,
    ) -> Result<(), ProcessError> {
        let _ = (change, ctx);
        Ok(())
    }

    /// An operator's replay reached this task (decision 0090): its inputs were
    /// moved back to the replay's start (unless `scope.dry_run`), and the
    /// processor recomputes what it keeps for `scope` with today's code,
    /// configuration and reference data, publishing a new version only where
    /// the result differs, and says what differs. In a dry run it writes and
    /// emits nothing. Default: nothing to recompute (re-read records alone
    /// rebuild the state).
    fn on_replay(
        &mut self,
        scope: &crate::replay::ReplayScope,
        ctx: &mut Context<'_>,
    ) -> Result<crate::replay::ReplayOutcome, ProcessError> {
        let _ = (scope, ctx);
        Ok(crate::replay::ReplayOutcome::default())
    }
}

/// The source of "now" for processors and the runtime's timers, injectable so
/// tests control time.
pub trait Clock: Send + Sync + 'static {
    /// The current time.
    fn now(&self) -> DateTime<Utc>;
}

/// The wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock tests set by hand.
#[derive(Debug)]
pub struct ManualClock {
    now: std::sync::Mutex<DateTime<Utc>>,
}

impl ManualClock {
    /// A clock showing `now`.
    pub fn new(now: DateTime<Utc>) -> Self {
        Self {
            now: std::sync::Mutex::new(now),
        }
    }

    /// Sets the time.
    pub fn set(&self, now: DateTime<Utc>) {
        *self.now.lock().unwrap_or_else(|e| e.into_inner()) = now;
    }

    /// Moves the time forward.
    pub fn advance(&self, by: chrono::Duration) {
        let mut now = self.now.lock().unwrap_or_else(|e| e.into_inner());
        *now += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Uncommitted writes of one batch, per store: what reads see first, and what
/// becomes the changelog records and the RocksDB write batch at commit.
#[derive(Debug, Default)]
pub(crate) struct WriteBuffer {
    stores: Vec<BTreeMap<Vec<u8>, Option<Vec<u8>>>>,
}

impl WriteBuffer {
    pub(crate) fn new(stores: usize) -> Self {
        Self {
            stores: (0..stores).map(|_| BTreeMap::new()).collect(),
        }
    }

    /// The final write per key, ordered by store then key (deterministic).
    pub(crate) fn into_writes(self) -> Vec<StoreWrite> {
        let mut writes = Vec::new();
        for (store, entries) in self.stores.into_iter().enumerate() {
            writes.extend(
                entries
                    .into_iter()
                    .map(|(key, value)| StoreWrite { store, key, value }),
            );
        }
        writes
    }
}

/// A processor's window on its task during one batch: the task's stores
/// (reads see the batch's own writes), the global tables, emitting and time.
pub struct Context<'a> {
    partition: i32,
    now: DateTime<Utc>,
    names: &'a [String],
    store: &'a dyn Store,
    buffer: &'a mut WriteBuffer,
    outputs: &'a mut Vec<OutputRecord>,
    globals: Option<&'a dyn GlobalView>,
}

impl<'a> Context<'a> {
    pub(crate) fn new(
        partition: i32,
        now: DateTime<Utc>,
        store: &'a dyn Store,
        buffer: &'a mut WriteBuffer,
        outputs: &'a mut Vec<OutputRecord>,
        globals: Option<&'a dyn GlobalView>,
    ) -> Self {
        Self {
            partition,
            now,
            names: store.store_names(),
            store,
            buffer,
            outputs,
            globals,
        }
    }

    /// The task's partition number.
    pub fn partition(&self) -> i32 {
        self.partition
    }

    /// The injectable clock's time when the batch started (stable within a batch).
    pub fn now(&self) -> DateTime<Utc> {
        self.now
    }

    fn index(&self, store: &str) -> Result<usize, StoreError> {
        self.names
            .iter()
            .position(|n| n == store)
            .ok_or_else(|| StoreError::UnknownStore(store.to_string()))
    }

    /// The value of `key` in `store`, including this batch's own writes.
    pub fn get(&self, store: &str, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let index = self.index(store)?;
        if let Some(buffered) = self.buffer.stores[index].get(key) {
            return Ok(buffered.clone());
        }
        self.store.get(index, key)
    }

    /// Writes `value` under `key` in `store` (visible to this batch at once,
    /// to the world when the batch commits).
    pub fn put(&mut self, store: &str, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        let index = self.index(store)?;
        if key == MARKER_KEY {
            return Err(StoreError::ReservedKey);
        }
        self.buffer.stores[index].insert(key.to_vec(), Some(value.to_vec()));
        Ok(())
    }

    /// Deletes `key` from `store`.
    pub fn delete(&mut self, store: &str, key: &[u8]) -> Result<(), StoreError> {
        let index = self.index(store)?;
        if key == MARKER_KEY {
            return Err(StoreError::ReservedKey);
        }
        self.buffer.stores[index].insert(key.to_vec(), None);
        Ok(())
    }

    /// Every entry of `store` whose key starts with `prefix`, in key order,
    /// including this batch's own writes and deletes.
    pub fn scan_prefix(
        &self,
        store: &str,
        prefix: &[u8],
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>, StoreError> {
        let index = self.index(store)?;
        let mut merged: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
        self.store.scan_prefix(index, prefix, &mut |k, v| {
            merged.insert(k.to_vec(), v.to_vec());
        })?;
        for (key, value) in self.buffer.stores[index]
            .range::<[u8], _>((
                std::ops::Bound::Included(prefix),
                std::ops::Bound::Unbounded,
            ))
            .take_while(|(k, _)| k.starts_with(prefix))
        {
            match value {
                Some(v) => {
                    merged.insert(key.clone(), v.clone());
                }
                None => {
                    merged.remove(key);
                }
            }
        }
        Ok(merged.into_iter().collect())
    }

    /// Emits an output record; it is produced when the batch commits.
    pub fn emit(&mut self, record: OutputRecord) {
        self.outputs.push(record);
    }

    /// The value of `key` in the global table `table` (read-only).
    pub fn global(&self, table: &str, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        match self.globals {
            Some(globals) => globals.get(table, key),
            None => Err(StoreError::UnknownStore(table.to_string())),
        }
    }

    /// Every entry of the global table `table` whose key starts with `prefix`.
    pub fn global_scan_prefix(
        &self,
        table: &str,
        prefix: &[u8],
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>, StoreError> {
        match self.globals {
            Some(globals) => globals.scan_prefix(table, prefix),
            None => Err(StoreError::UnknownStore(table.to_string())),
        }
    }
}

/// Read access to global tables: the runtime's RocksDB-backed
/// [`crate::runtime::GlobalStore`], or [`MemoryGlobals`] in pure tests.
pub trait GlobalView: Sync {
    /// The current value of `key` in `table`.
    fn get(&self, table: &str, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;
    /// Every entry of `table` whose key starts with `prefix`, in key order.
    fn scan_prefix(
        &self,
        table: &str,
        prefix: &[u8],
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>, StoreError>;
}

/// Global tables in memory, for pure processor tests.
#[derive(Debug, Default, Clone)]
pub struct MemoryGlobals {
    tables: BTreeMap<String, BTreeMap<Vec<u8>, Vec<u8>>>,
}

impl MemoryGlobals {
    /// Empty tables named `tables`.
    pub fn new<S: Into<String>>(tables: impl IntoIterator<Item = S>) -> Self {
        Self {
            tables: tables
                .into_iter()
                .map(|t| (t.into(), BTreeMap::new()))
                .collect(),
        }
    }

    /// Sets (or with `None`, deletes) an entry.
    pub fn set(&mut self, table: &str, key: &[u8], value: Option<&[u8]>) {
        let entries = self.tables.entry(table.to_string()).or_default();
        match value {
            Some(value) => {
                entries.insert(key.to_vec(), value.to_vec());
            }
            None => {
                entries.remove(key);
            }
        }
    }
}

impl GlobalView for MemoryGlobals {
    fn get(&self, table: &str, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let entries = self
            .tables
            .get(table)
            .ok_or_else(|| StoreError::UnknownStore(table.to_string()))?;
        Ok(entries.get(key).cloned())
    }

    fn scan_prefix(
        &self,
        table: &str,
        prefix: &[u8],
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>, StoreError> {
        let entries = self
            .tables
            .get(table)
            .ok_or_else(|| StoreError::UnknownStore(table.to_string()))?;
        Ok(entries
            .range::<[u8], _>((
                std::ops::Bound::Included(prefix),
                std::ops::Bound::Unbounded,
            ))
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }
}

/// A shared, type-erased clock handle.
pub type SharedClock = Arc<dyn Clock>;

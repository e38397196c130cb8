//! Global tables: compacted topics (charges, prices, links, spot prices) that
//! every instance of a processor holds in full, read-only for processors.
//!
//! A group-less consumer assigns *all* partitions of the tables' topics and
//! keeps its own offsets in its own RocksDB (`<state_dir>/<group>/global/`),
//! in the same write batch as the entries. At start it catches up to the high
//! watermarks before any task processes; afterwards every change is applied
//! and then handed to the running tasks ([`crate::runtime::Processor::on_global_change`]).
//!
//! Each entry remembers the partition and offset it came from, and deletes
//! are kept as markers: a task that was not running when a change arrived
//! (its state committed "seen up to offset X") gets every entry changed after
//! X delivered when it starts, so what depends on a table is recomputed
//! exactly for the changes its state missed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use rocksdb::{ColumnFamilyDescriptor, DB, Direction, IteratorMode, WriteBatch};
use tokio::sync::mpsc;

use crate::runtime::clients::ToEndContext;
use crate::runtime::error::RuntimeError;
use crate::runtime::processor::{GlobalChange, GlobalTableSpec, GlobalView};
use crate::runtime::store::{StateMemory, StoreError};

const METADATA_CF: &str = "__metadata__";
const OFFSETS_KEY: &[u8] = b"offsets";
const TABLE_CF_PREFIX: &str = "table:";
const ENTRY_VERSION: u8 = 1;
const ENTRY_HEADER: usize = 1 + 4 + 8 + 1;

/// Per topic and partition, the last offset applied.
pub(crate) type GlobalOffsets = BTreeMap<String, BTreeMap<i32, i64>>;

/// One record of a global table's topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GlobalUpdate {
    pub(crate) topic: String,
    pub(crate) partition: i32,
    pub(crate) offset: i64,
    pub(crate) key: Vec<u8>,
    pub(crate) value: Option<Vec<u8>>,
}

struct Entry {
    partition: i32,
    offset: i64,
    value: Option<Vec<u8>>,
}

fn encode(partition: i32, offset: i64, value: Option<&[u8]>) -> Vec<u8> {
    let mut out = Vec::with_capacity(ENTRY_HEADER + value.map_or(0, <[u8]>::len));
    out.push(ENTRY_VERSION);
    out.extend_from_slice(&partition.to_be_bytes());
    out.extend_from_slice(&offset.to_be_bytes());
    out.push(u8::from(value.is_none()));
    if let Some(value) = value {
        out.extend_from_slice(value);
    }
    out
}

fn decode(bytes: &[u8]) -> Option<Entry> {
    if bytes.len() < ENTRY_HEADER || bytes[0] != ENTRY_VERSION {
        return None;
    }
    let partition = i32::from_be_bytes(bytes[1..5].try_into().ok()?);
    let offset = i64::from_be_bytes(bytes[5..13].try_into().ok()?);
    let deleted = bytes[13] != 0;
    Some(Entry {
        partition,
        offset,
        value: (!deleted).then(|| bytes[ENTRY_HEADER..].to_vec()),
    })
}

impl GlobalTableSpec {
    /// Where `update` is stored: its key, or for a table that keeps every record
    /// ([`GlobalTableSpec::log`]) its key with its position in the log.
    fn stored_key(&self, update: &GlobalUpdate) -> Vec<u8> {
        if self.every_record {
            crate::runtime::processor::log_entry_key(&update.key, update.partition, update.offset)
        } else {
            update.key.clone()
        }
    }
}

/// The global tables of a processor, on local disk.
pub struct GlobalStore {
    db: DB,
    tables: Vec<GlobalTableSpec>,
    offsets: Mutex<GlobalOffsets>,
    path: PathBuf,
}

impl std::fmt::Debug for GlobalStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GlobalStore")
            .field("path", &self.path)
            .field("tables", &self.tables)
            .finish_non_exhaustive()
    }
}

fn rocks(path: &Path, source: rocksdb::Error) -> StoreError {
    StoreError::Rocks {
        path: path.display().to_string(),
        source,
    }
}

impl GlobalStore {
    /// Opens (creating) the global store at `path`.
    pub fn open(
        path: &Path,
        tables: &[GlobalTableSpec],
        memory: &StateMemory,
    ) -> Result<Self, StoreError> {
        std::fs::create_dir_all(path).map_err(|source| StoreError::Io {
            path: path.display().to_string(),
            source,
        })?;
        let options = memory.options();
        let mut names = vec![METADATA_CF.to_string()];
        names.extend(
            tables
                .iter()
                .map(|t| format!("{TABLE_CF_PREFIX}{}", t.name)),
        );
        if let Ok(existing) = DB::list_cf(&options, path) {
            for name in existing {
                if name != rocksdb::DEFAULT_COLUMN_FAMILY_NAME && !names.contains(&name) {
                    names.push(name);
                }
            }
        }
        let db = DB::open_cf_descriptors(
            &options,
            path,
            names
                .iter()
                .map(|n| ColumnFamilyDescriptor::new(n, memory.options())),
        )
        .map_err(|e| rocks(path, e))?;
        let offsets = match db
            .cf_handle(METADATA_CF)
            .map(|cf| db.get_pinned_cf(cf, OFFSETS_KEY))
            .transpose()
            .map_err(|e| rocks(path, e))?
            .flatten()
        {
            Some(bytes) => serde_json::from_slice(&bytes).map_err(|e| StoreError::Metadata {
                path: path.display().to_string(),
                reason: e.to_string(),
            })?,
            None => GlobalOffsets::new(),
        };
        Ok(Self {
            db,
            tables: tables.to_vec(),
            offsets: Mutex::new(offsets),
            path: path.to_path_buf(),
        })
    }

    fn table_cf(&self, table: &str) -> Result<&rocksdb::ColumnFamily, StoreError> {
        if !self.tables.iter().any(|t| t.name == table) {
            return Err(StoreError::UnknownStore(table.to_string()));
        }
        self.db
            .cf_handle(&format!("{TABLE_CF_PREFIX}{table}"))
            .ok_or_else(|| StoreError::UnknownStore(table.to_string()))
    }

    fn table_of_topic(&self, topic: &str) -> Option<&GlobalTableSpec> {
        self.tables.iter().find(|t| t.topic == topic)
    }

    /// The current value of `key` in `table`.
    pub fn get(&self, table: &str, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let cf = self.table_cf(table)?;
        let bytes = self
            .db
            .get_pinned_cf(cf, key)
            .map_err(|e| rocks(&self.path, e))?;
        Ok(bytes.and_then(|b| decode(&b)).and_then(|e| e.value))
    }

    /// Every live entry of `table` whose key starts with `prefix`, in key order.
    pub fn scan_prefix(
        &self,
        table: &str,
        prefix: &[u8],
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>, StoreError> {
        let cf = self.table_cf(table)?;
        let mut out = Vec::new();
        for item in self
            .db
            .iterator_cf(cf, IteratorMode::From(prefix, Direction::Forward))
        {
            let (key, value) = item.map_err(|e| rocks(&self.path, e))?;
            if !key.starts_with(prefix) {
                break;
            }
            if let Some(value) = decode(&value).and_then(|e| e.value) {
                out.push((key.to_vec(), value));
            }
        }
        Ok(out)
    }

    /// The last applied offset per topic and partition.
    pub(crate) fn offsets(&self) -> GlobalOffsets {
        self.offsets
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Applies `updates` and their offsets atomically.
    pub(crate) fn apply(&self, updates: &[GlobalUpdate]) -> Result<(), StoreError> {
        if updates.is_empty() {
            return Ok(());
        }
        let mut offsets = self.offsets.lock().unwrap_or_else(|e| e.into_inner());
        let mut next = offsets.clone();
        let mut batch = WriteBatch::default();
        for update in updates {
            if let Some(table) = self.table_of_topic(&update.topic) {
                let cf = self.table_cf(&table.name)?;
                batch.put_cf(
                    cf,
                    table.stored_key(update),
                    encode(update.partition, update.offset, update.value.as_deref()),
                );
            }
            let last = next
                .entry(update.topic.clone())
                .or_default()
                .entry(update.partition)
                .or_insert(-1);
            *last = (*last).max(update.offset);
        }
        let meta = self
            .db
            .cf_handle(METADATA_CF)
            .ok_or_else(|| StoreError::UnknownStore(METADATA_CF.to_string()))?;
        batch.put_cf(
            meta,
            OFFSETS_KEY,
            serde_json::to_vec(&next).unwrap_or_default(),
        );
        self.db.write(batch).map_err(|e| rocks(&self.path, e))?;
        *offsets = next;
        Ok(())
    }

    /// Every entry (deletes included) changed after the offsets in `seen`
    /// (a partition missing from `seen` counts as never seen).
    pub(crate) fn changes_since(
        &self,
        seen: &GlobalOffsets,
    ) -> Result<Vec<GlobalChange>, StoreError> {
        let mut changes = Vec::new();
        for table in &self.tables {
            let cf = self.table_cf(&table.name)?;
            let seen_topic = seen.get(&table.topic);
            for item in self.db.iterator_cf(cf, IteratorMode::Start) {
                let (key, value) = item.map_err(|e| rocks(&self.path, e))?;
                let Some(entry) = decode(&value) else {
                    continue;
                };
                let last_seen = seen_topic
                    .and_then(|p| p.get(&entry.partition))
                    .copied()
                    .unwrap_or(-1);
                if entry.offset > last_seen {
                    changes.push(GlobalChange {
                        table: table.name.clone(),
                        key: key.to_vec(),
                        value: entry.value,
                        partition: entry.partition,
                        offset: entry.offset,
                    });
                }
            }
        }
        changes.sort_by_key(|c| (c.offset, c.partition));
        Ok(changes)
    }
}

impl GlobalView for GlobalStore {
    fn get(&self, table: &str, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        GlobalStore::get(self, table, key)
    }

    fn scan_prefix(
        &self,
        table: &str,
        prefix: &[u8],
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>, StoreError> {
        GlobalStore::scan_prefix(self, table, prefix)
    }
}

/// The running global-table follower.
pub(crate) struct GlobalFollower {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl GlobalFollower {
    /// Stops the follower thread and waits for it.
    pub(crate) fn stop(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Catches the global tables up to their ends (blocking; run it off the
/// reactor), then starts a thread that follows them and sends every later
/// change on the returned channel.
///
/// Catch-up reads one topic at a time with an end-of-partition consumer, so
/// that each end-of-partition event names its partition unambiguously (the
/// local broker's ListOffsets under-reports the end, fetches do not).
pub(crate) fn catch_up_and_follow(
    catch_up_config: &ClientConfig,
    follow_config: &ClientConfig,
    store: Arc<GlobalStore>,
    metadata_timeout: Duration,
) -> Result<(GlobalFollower, mpsc::Receiver<GlobalChange>, u64), RuntimeError> {
    let mut records = 0u64;
    let mut partitions_of: BTreeMap<String, Vec<i32>> = BTreeMap::new();
    for table in &store.tables {
        let consumer: BaseConsumer<ToEndContext> =
            catch_up_config.create_with_context(ToEndContext)?;
        let metadata = consumer.fetch_metadata(Some(&table.topic), metadata_timeout)?;
        let topic = metadata
            .topics()
            .iter()
            .find(|t| t.name() == table.topic)
            .filter(|t| t.error().is_none() && !t.partitions().is_empty())
            .ok_or_else(|| {
                RuntimeError::Topology(format!(
                    "global table {:?}: topic {} does not exist",
                    table.name, table.topic
                ))
            })?;
        let partitions: Vec<i32> = topic.partitions().iter().map(|p| p.id()).collect();
        records += catch_up_topic(&consumer, &store, &table.topic, &partitions)?;
        partitions_of.insert(table.topic.clone(), partitions);
    }
    let consumer: BaseConsumer = follow_config.create()?;
    let offsets = store.offsets();
    let mut tpl = TopicPartitionList::new();
    for (topic, partitions) in &partitions_of {
        for element in assignment(topic, partitions, &offsets)?.elements() {
            tpl.add_partition_offset(topic, element.partition(), element.offset())?;
        }
    }
    consumer.assign(&tpl)?;

    let (tx, rx) = mpsc::channel(1024);
    let stop = Arc::new(AtomicBool::new(false));
    let thread_stop = stop.clone();
    let thread = std::thread::Builder::new()
        .name("afregning-global".to_string())
        .spawn(move || {
            while !thread_stop.load(Ordering::SeqCst) {
                let (batch, _) = poll_updates(&consumer, 1000, Duration::from_millis(100));
                if batch.is_empty() {
                    continue;
                }
                if let Err(error) = store.apply(&batch) {
                    tracing::error!(%error, "cannot apply global table updates; the follower stops");
                    return;
                }
                for update in batch {
                    let Some(table) = store.table_of_topic(&update.topic) else { continue };
                    let change = GlobalChange {
                        table: table.name.clone(),
                        key: table.stored_key(&update),
                        value: update.value,
                        partition: update.partition,
                        offset: update.offset,
                    };
                    if tx.blocking_send(change).is_err() {
                        return;
                    }
                }
            }
        })
        .map_err(|e| RuntimeError::Internal(format!("cannot start the global-table thread: {e}")))?;
    Ok((
        GlobalFollower {
            stop,
            thread: Some(thread),
        },
        rx,
        records,
    ))
}

/// Reads `partitions` of `topic` to their ends into `store`.
///
/// A partition with a stored offset `last` is fetched from `last` and must
/// deliver a record at or before it first (the local broker's memory engine
/// skips the rest of a batch when a fetch starts inside it, and answers a
/// fetch inside its last batch with nothing): otherwise reading moves back.
/// Records up to `last` are already applied and skipped.
fn catch_up_topic(
    consumer: &BaseConsumer<ToEndContext>,
    store: &GlobalStore,
    topic: &str,
    partitions: &[i32],
) -> Result<u64, RuntimeError> {
    let stored = store.offsets();
    let last_of = |p: i32| stored.get(topic).and_then(|m| m.get(&p)).copied();
    let mut tpl = TopicPartitionList::new();
    // Partition → (fetch start, next step back) until a record proves the start.
    let mut unverified: BTreeMap<i32, (i64, i64)> = BTreeMap::new();
    for partition in partitions {
        match last_of(*partition) {
            Some(last) => {
                tpl.add_partition_offset(topic, *partition, Offset::Offset(last))?;
                unverified.insert(*partition, (last, 500));
            }
            None => tpl.add_partition_offset(topic, *partition, Offset::Beginning)?,
        }
    }
    consumer.assign(&tpl)?;
    let mut open: std::collections::BTreeSet<i32> = partitions.iter().copied().collect();
    let mut records = 0u64;
    let idle_limit = Duration::from_secs(30);
    let silence = Duration::from_secs(2);
    let mut last_progress = Instant::now();
    while !open.is_empty() {
        let (batch, ended) = poll_updates(consumer, 5000, Duration::from_millis(200));
        let polled_any = !batch.is_empty();
        let mut rewound = std::collections::BTreeSet::new();
        let mut apply = Vec::new();
        for update in batch {
            if rewound.contains(&update.partition) {
                continue;
            }
            let last = last_of(update.partition).unwrap_or(-1);
            if let Some((from, window)) = unverified.get(&update.partition).copied() {
                if update.offset <= last || from == 0 {
                    unverified.remove(&update.partition);
                } else {
                    let back = (from - window).max(0);
                    unverified.insert(update.partition, (back, window.saturating_mul(10)));
                    consumer.seek(
                        topic,
                        update.partition,
                        Offset::Offset(back),
                        Duration::from_secs(10),
                    )?;
                    rewound.insert(update.partition);
                    continue;
                }
            }
            if update.offset > last {
                apply.push(update);
            }
        }
        for partition in ended {
            match unverified.get(&partition) {
                // An empty partition read from 0: nothing to prove.
                Some((0, _)) => {
                    unverified.remove(&partition);
                    open.remove(&partition);
                }
                Some(_) => {}
                None => {
                    open.remove(&partition);
                }
            }
        }
        if !polled_any {
            let stalled = last_progress.elapsed();
            // A silent unverified fetch: move it back.
            if stalled > silence {
                for (partition, (from, window)) in unverified.clone() {
                    let back = (from - window).max(0);
                    unverified.insert(partition, (back, window.saturating_mul(10)));
                    consumer.seek(
                        topic,
                        partition,
                        Offset::Offset(back),
                        Duration::from_secs(10),
                    )?;
                }
            }
            if stalled > idle_limit {
                return Err(RuntimeError::Internal(format!(
                    "global table {topic} made no progress for {}s while catching up (partitions {open:?})",
                    idle_limit.as_secs()
                )));
            }
            continue;
        }
        last_progress = Instant::now();
        records += apply.len() as u64;
        store.apply(&apply)?;
    }
    Ok(records)
}

/// The assignment of `partitions` of `topic` after the stored offsets.
fn assignment(
    topic: &str,
    partitions: &[i32],
    stored: &GlobalOffsets,
) -> Result<TopicPartitionList, RuntimeError> {
    let mut tpl = TopicPartitionList::new();
    for partition in partitions {
        let next = stored
            .get(topic)
            .and_then(|p| p.get(partition))
            .map(|last| last + 1);
        tpl.add_partition_offset(
            topic,
            *partition,
            next.map_or(Offset::Beginning, Offset::Offset),
        )?;
    }
    Ok(tpl)
}

/// Polls up to `limit` updates; also returns the partitions that reported
/// their end (only meaningful with one topic per consumer).
fn poll_updates<C: rdkafka::consumer::ConsumerContext>(
    consumer: &BaseConsumer<C>,
    limit: usize,
    wait: Duration,
) -> (Vec<GlobalUpdate>, Vec<i32>) {
    let mut out = Vec::new();
    let mut ended = Vec::new();
    while out.len() < limit {
        match consumer.poll(if out.is_empty() && ended.is_empty() {
            wait
        } else {
            Duration::ZERO
        }) {
            Some(Ok(message)) => {
                let Some(key) = message.key() else {
                    tracing::warn!(
                        topic = message.topic(),
                        offset = message.offset(),
                        "skipping a keyless record in a global table"
                    );
                    continue;
                };
                out.push(GlobalUpdate {
                    topic: message.topic().to_string(),
                    partition: message.partition(),
                    offset: message.offset(),
                    key: key.to_vec(),
                    value: message.payload().map(<[u8]>::to_vec),
                });
            }
            Some(Err(KafkaError::PartitionEOF(partition))) => ended.push(partition),
            Some(Err(error)) => {
                tracing::warn!(%error, "global table consumer error");
                break;
            }
            None => break,
        }
    }
    (out, ended)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_remember_where_they_came_from_and_deletes_are_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let memory = StateMemory::new(16);
        let tables = vec![GlobalTableSpec::new("prices", "t.prices")];
        let store = GlobalStore::open(dir.path(), &tables, &memory).expect("open");
        let update = |partition, offset, key: &str, value: Option<&str>| GlobalUpdate {
            topic: "t.prices".to_string(),
            partition,
            offset,
            key: key.as_bytes().to_vec(),
            value: value.map(|v| v.as_bytes().to_vec()),
        };
        store
            .apply(&[
                update(0, 0, "a", Some("1")),
                update(1, 0, "b", Some("2")),
                update(0, 1, "c", Some("3")),
            ])
            .expect("apply");
        store
            .apply(&[update(0, 2, "a", None), update(1, 1, "b", Some("20"))])
            .expect("apply");
        assert_eq!(store.get("prices", b"a").expect("get"), None);
        assert_eq!(
            store.get("prices", b"b").expect("get"),
            Some(b"20".to_vec())
        );
        assert_eq!(store.scan_prefix("prices", b"").expect("scan").len(), 2);
        assert_eq!(
            store.offsets()["t.prices"],
            BTreeMap::from([(0, 2), (1, 1)])
        );

        // A task that saw partition 0 up to 1 and partition 1 up to 0 missed
        // the delete of "a" and the update of "b", nothing else.
        let seen = BTreeMap::from([("t.prices".to_string(), BTreeMap::from([(0, 1), (1, 0)]))]);
        let changes = store.changes_since(&seen).expect("changes");
        let keys: Vec<(&[u8], Option<&[u8]>)> = changes
            .iter()
            .map(|c| (c.key.as_slice(), c.value.as_deref()))
            .collect();
        assert_eq!(keys, vec![(&b"b"[..], Some(&b"20"[..])), (&b"a"[..], None)]);

        // Offsets survive a reopen, in the same write as the data.
        drop(store);
        let store = GlobalStore::open(dir.path(), &tables, &memory).expect("reopen");
        assert_eq!(
            store.offsets()["t.prices"],
            BTreeMap::from([(0, 2), (1, 1)])
        );
        assert!(store.get("unknown", b"a").is_err());
    }

    #[test]
    fn a_log_table_keeps_every_record_of_a_key_in_order_and_redelivers_each_missed_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let memory = StateMemory::new(16);
        let tables = vec![GlobalTableSpec::log("events", "t.events")];
        let store = GlobalStore::open(dir.path(), &tables, &memory).expect("open");
        let update = |offset, key: &str, value: &str| GlobalUpdate {
            topic: "t.events".to_string(),
            partition: 0,
            offset,
            key: key.as_bytes().to_vec(),
            value: Some(value.as_bytes().to_vec()),
        };
        store
            .apply(&[
                update(0, "a", "1"),
                update(1, "b", "x"),
                update(2, "a", "2"),
            ])
            .expect("apply");
        store.apply(&[update(3, "a", "3")]).expect("apply");
        let of_a: Vec<Vec<u8>> = store
            .scan_prefix("events", b"a\x1f")
            .expect("scan")
            .into_iter()
            .map(|(_, v)| v)
            .collect();
        assert_eq!(of_a, vec![b"1".to_vec(), b"2".to_vec(), b"3".to_vec()]);
        // A task that saw offset 1 missed both later records of "a", not only the last.
        let seen = BTreeMap::from([("t.events".to_string(), BTreeMap::from([(0, 1)]))]);
        let missed: Vec<Vec<u8>> = store
            .changes_since(&seen)
            .expect("changes")
            .into_iter()
            .map(|c| c.key)
            .collect();
        assert_eq!(
            missed,
            vec![
                crate::runtime::log_entry_key(b"a", 0, 2),
                crate::runtime::log_entry_key(b"a", 0, 3)
            ]
        );
    }
}

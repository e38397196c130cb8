//! RocksDB implementation of [`Store`]: one database per task at
//! `<state_dir>/<group>/<task>/`, a column family per declared store and a
//! `__metadata__` column family, all writes of a batch in one `WriteBatch`.
//!
//! Memory: every database of the process shares one block cache and one
//! write-buffer manager charged to that cache ([`StateMemory`]), so the state
//! of 12 or 120 tasks stays inside one configured budget (RocksDB's default
//! of a cache and 64 MiB memtables *per database* is the classic OOM of
//! Kafka Streams, KAFKA-8215).
//!
//! Durability: writes go through RocksDB's WAL without `fsync`. A killed
//! process loses nothing (the OS has the pages); a lost machine may lose the
//! last writes, which is safe because the local store is a cache of the
//! changelog: restore replays whatever the store is missing.

use std::path::{Path, PathBuf};

use rocksdb::{
    BlockBasedOptions, Cache, ColumnFamilyDescriptor, DB, DBCompressionType, Direction,
    IteratorMode, Options, WriteBatch, WriteBufferManager,
};

use super::{METADATA_FORMAT, Store, StoreError, StoreWrite, TaskMetadata};

const METADATA_CF: &str = "__metadata__";
const METADATA_KEY: &[u8] = b"task";
const STORE_CF_PREFIX: &str = "store:";

/// The process-wide memory budget of all state stores: one block cache, with
/// memtables charged to it through a write-buffer manager.
#[derive(Clone)]
pub struct StateMemory {
    cache: Cache,
    write_buffers: WriteBufferManager,
    budget_bytes: usize,
    write_buffer_size: usize,
}

impl std::fmt::Debug for StateMemory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateMemory")
            .field("budget_bytes", &self.budget_bytes)
            .field("write_buffer_size", &self.write_buffer_size)
            .finish_non_exhaustive()
    }
}

impl StateMemory {
    /// A budget of `megabytes` MiB for every store of the process: the block
    /// cache gets all of it, and memtables may use up to half of it, charged
    /// against the cache (so the sum stays at the budget).
    pub fn new(megabytes: usize) -> Self {
        let budget_bytes = megabytes.max(8) * 1024 * 1024;
        let cache = Cache::new_lru_cache(budget_bytes);
        let write_buffers = WriteBufferManager::new_write_buffer_manager_with_cache(
            budget_bytes / 2,
            false,
            cache.clone(),
        );
        // A memtable's arena allocates in blocks of an eighth of its size as
        // soon as it is written; keep one memtable small relative to the
        // budget so that many tasks x stores cannot overshoot it by arenas alone.
        let write_buffer_size = (budget_bytes / 16).clamp(1024 * 1024, 64 * 1024 * 1024);
        Self {
            cache,
            write_buffers,
            budget_bytes,
            write_buffer_size,
        }
    }

    /// The configured budget in bytes.
    pub fn budget_bytes(&self) -> usize {
        self.budget_bytes
    }

    /// Bytes currently charged to the shared cache (blocks, memtables,
    /// index and filter blocks).
    pub fn usage_bytes(&self) -> usize {
        self.cache.get_usage()
    }

    /// Bytes of memtables under the write-buffer manager.
    pub fn memtable_bytes(&self) -> usize {
        self.write_buffers.get_usage()
    }

    pub(crate) fn options(&self) -> Options {
        let mut table = BlockBasedOptions::default();
        table.set_block_cache(&self.cache);
        // Index and filter blocks in the cache, so they count against the budget.
        table.set_cache_index_and_filter_blocks(true);
        table.set_pin_l0_filter_and_index_blocks_in_cache(true);
        table.set_bloom_filter(10.0, false);
        let mut options = Options::default();
        options.create_if_missing(true);
        options.create_missing_column_families(true);
        options.set_block_based_table_factory(&table);
        options.set_write_buffer_manager(&self.write_buffers);
        options.set_write_buffer_size(self.write_buffer_size);
        options.set_max_write_buffer_number(2);
        options.set_compression_type(DBCompressionType::Lz4);
        options.set_max_open_files(64);
        options.set_keep_log_file_num(2);
        options.set_max_log_file_size(1024 * 1024);
        options
    }
}

/// A task's RocksDB.
pub struct RocksStore {
    db: DB,
    names: Vec<String>,
    path: PathBuf,
}

impl std::fmt::Debug for RocksStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RocksStore")
            .field("path", &self.path)
            .field("stores", &self.names)
            .finish_non_exhaustive()
    }
}

impl RocksStore {
    /// Opens (creating if needed) the store at `path` with the declared
    /// `stores`. Column families of stores no longer declared are kept, not read.
    pub fn open(path: &Path, stores: &[String], memory: &StateMemory) -> Result<Self, StoreError> {
        std::fs::create_dir_all(path).map_err(|source| StoreError::Io {
            path: path.display().to_string(),
            source,
        })?;
        let options = memory.options();
        let mut cf_names: Vec<String> = vec![METADATA_CF.to_string()];
        cf_names.extend(stores.iter().map(|s| format!("{STORE_CF_PREFIX}{s}")));
        if let Ok(existing) = DB::list_cf(&options, path) {
            for name in existing {
                if name != rocksdb::DEFAULT_COLUMN_FAMILY_NAME && !cf_names.contains(&name) {
                    cf_names.push(name);
                }
            }
        }
        let descriptors = cf_names
            .iter()
            .map(|name| ColumnFamilyDescriptor::new(name, memory.options()));
        let db = DB::open_cf_descriptors(&options, path, descriptors)
            .map_err(|source| rocks(path, source))?;
        Ok(Self {
            db,
            names: stores.to_vec(),
            path: path.to_path_buf(),
        })
    }

    /// Deletes the store at `path` (used when it cannot be trusted: wrong
    /// format, changelog recreated). Missing is fine.
    pub fn destroy(path: &Path) -> Result<(), StoreError> {
        match std::fs::remove_dir_all(path) {
            Ok(()) => Ok(()),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(StoreError::Io {
                path: path.display().to_string(),
                source,
            }),
        }
    }

    /// Where the store lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn cf(&self, store: usize) -> Result<&rocksdb::ColumnFamily, StoreError> {
        let name = self
            .names
            .get(store)
            .ok_or_else(|| StoreError::UnknownStore(format!("#{store}")))?;
        self.db
            .cf_handle(&format!("{STORE_CF_PREFIX}{name}"))
            .ok_or_else(|| StoreError::UnknownStore(name.clone()))
    }

    fn metadata_cf(&self) -> Result<&rocksdb::ColumnFamily, StoreError> {
        self.db
            .cf_handle(METADATA_CF)
            .ok_or_else(|| StoreError::UnknownStore(METADATA_CF.to_string()))
    }
}

fn rocks(path: &Path, source: rocksdb::Error) -> StoreError {
    StoreError::Rocks {
        path: path.display().to_string(),
        source,
    }
}

impl Store for RocksStore {
    fn store_names(&self) -> &[String] {
        &self.names
    }

    fn get(&self, store: usize, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let cf = self.cf(store)?;
        Ok(self
            .db
            .get_pinned_cf(cf, key)
            .map_err(|e| rocks(&self.path, e))?
            .map(|v| v.to_vec()))
    }

    fn scan_prefix(
        &self,
        store: usize,
        prefix: &[u8],
        visit: &mut dyn FnMut(&[u8], &[u8]),
    ) -> Result<(), StoreError> {
        let cf = self.cf(store)?;
        for item in self
            .db
            .iterator_cf(cf, IteratorMode::From(prefix, Direction::Forward))
        {
            let (key, value) = item.map_err(|e| rocks(&self.path, e))?;
            if !key.starts_with(prefix) {
                break;
            }
            visit(&key, &value);
        }
        Ok(())
    }

    fn metadata(&self) -> Result<Option<TaskMetadata>, StoreError> {
        let cf = self.metadata_cf()?;
        let Some(bytes) = self
            .db
            .get_pinned_cf(cf, METADATA_KEY)
            .map_err(|e| rocks(&self.path, e))?
        else {
            return Ok(None);
        };
        let metadata: TaskMetadata =
            serde_json::from_slice(&bytes).map_err(|e| StoreError::Metadata {
                path: self.path.display().to_string(),
                reason: e.to_string(),
            })?;
        if metadata.format != METADATA_FORMAT {
            return Err(StoreError::Metadata {
                path: self.path.display().to_string(),
                reason: format!(
                    "format {} (this build reads {METADATA_FORMAT})",
                    metadata.format
                ),
            });
        }
        Ok(Some(metadata))
    }

    fn commit(&self, writes: &[StoreWrite], metadata: &TaskMetadata) -> Result<(), StoreError> {
        let mut batch = WriteBatch::default();
        for write in writes {
            let cf = self.cf(write.store)?;
            match &write.value {
                Some(value) => batch.put_cf(cf, &write.key, value),
                None => batch.delete_cf(cf, &write.key),
            }
        }
        let encoded = serde_json::to_vec(metadata).map_err(|e| StoreError::Metadata {
            path: self.path.display().to_string(),
            reason: e.to_string(),
        })?;
        batch.put_cf(self.metadata_cf()?, METADATA_KEY, encoded);
        self.db.write(batch).map_err(|e| rocks(&self.path, e))
    }
}

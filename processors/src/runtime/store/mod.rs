//! The per-task state store: a [`Store`] trait with a RocksDB implementation
//! ([`RocksStore`], one database per task, a column family per declared store
//! plus a metadata column family) and a memory one ([`MemoryStore`]) for pure
//! processor tests.
//!
//! The one property everything rests on: [`Store::commit`] writes the batch's
//! data *and* the task's metadata (input offsets, changelog positions) in one
//! atomic write, so a crash leaves either the batch fully applied with its
//! offsets, or not at all (Quix's `RocksDBStorePartition.write`).

mod memory;
mod rocks;

use std::collections::BTreeMap;

pub use memory::MemoryStore;
pub use rocks::{RocksStore, StateMemory};
use serde::{Deserialize, Serialize};

use crate::runtime::changelog::Marker;

/// Version of the metadata layout; a store with another version is rebuilt
/// from its changelog rather than misread.
pub const METADATA_FORMAT: u32 = 1;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The processor named a store it did not declare.
    #[error("unknown store {0:?}: declare it in Processor::stores (or Processor::global_tables)")]
    UnknownStore(String),
    /// The processor tried to write the key the runtime reserves for commit markers.
    #[error(
        "the key {:?} is reserved for the runtime's commit markers",
        String::from_utf8_lossy(crate::runtime::changelog::MARKER_KEY)
    )]
    ReservedKey,
    /// RocksDB failed.
    #[error("rocksdb at {path}: {source}")]
    Rocks {
        /// The database directory.
        path: String,
        /// RocksDB's error.
        #[source]
        source: rocksdb::Error,
    },
    /// Stored metadata could not be read.
    #[error("corrupt store metadata at {path}: {reason}")]
    Metadata {
        /// The database directory.
        path: String,
        /// What was wrong.
        reason: String,
    },
    /// Filesystem work around the store failed.
    #[error("{path}: {source}")]
    Io {
        /// The path concerned.
        path: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

/// One write of a batch: `value: None` deletes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreWrite {
    /// Index of the store in the task's declared store list.
    pub store: usize,
    /// The key.
    pub key: Vec<u8>,
    /// The new value, or `None` for a delete.
    pub value: Option<Vec<u8>>,
}

/// How far one store's changelog partition has been applied to the local store.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreProgress {
    /// The next changelog offset to read on restore; `None` means from the beginning.
    pub next_offset: Option<i64>,
    /// The commit marker with the highest batch number read from this
    /// changelog partition so far (one marker proves its batch complete).
    pub max_marker: Option<Marker>,
}

/// What a task's store remembers besides its data, written atomically with it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskMetadata {
    /// Layout version ([`METADATA_FORMAT`]).
    pub format: u32,
    /// The last committed batch: its sequence number, the input offsets after
    /// it and the global-table offsets the task had seen. Processing resumes
    /// from these offsets, never from the group's committed offsets.
    pub committed: Marker,
    /// Changelog progress per store name.
    pub stores: BTreeMap<String, StoreProgress>,
}

impl TaskMetadata {
    /// Metadata of a task that has never committed.
    pub fn fresh() -> Self {
        Self {
            format: METADATA_FORMAT,
            ..Self::default()
        }
    }
}

/// A task's state: the declared stores plus metadata.
///
/// Implementations must make [`Store::commit`] atomic (all of its writes and
/// the metadata, or none) and must be safe to read from one thread while
/// nothing writes (the runtime never writes concurrently with reads).
pub trait Store: Send + Sync {
    /// The declared store names; a [`StoreWrite::store`] indexes into this.
    fn store_names(&self) -> &[String];

    /// The committed value of `key` in store `store`.
    fn get(&self, store: usize, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;

    /// Visits every committed entry of store `store` whose key starts with
    /// `prefix`, in key order.
    fn scan_prefix(
        &self,
        store: usize,
        prefix: &[u8],
        visit: &mut dyn FnMut(&[u8], &[u8]),
    ) -> Result<(), StoreError>;

    /// The task's metadata, or `None` for a store that never committed.
    fn metadata(&self) -> Result<Option<TaskMetadata>, StoreError>;

    /// Applies `writes` and replaces the metadata, atomically.
    fn commit(&self, writes: &[StoreWrite], metadata: &TaskMetadata) -> Result<(), StoreError>;
}

#[cfg(test)]
mod tests;

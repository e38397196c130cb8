//! In-memory implementation of [`Store`], for pure processor tests (golden
//! cases) that need state but no disk or broker. Same atomicity contract as
//! RocksDB: one lock covers data and metadata.

use std::collections::BTreeMap;
use std::sync::Mutex;

use super::{Store, StoreError, StoreWrite, TaskMetadata};

#[derive(Debug, Default)]
struct Inner {
    data: Vec<BTreeMap<Vec<u8>, Vec<u8>>>,
    metadata: Option<TaskMetadata>,
}

/// A task's state in memory.
#[derive(Debug)]
pub struct MemoryStore {
    names: Vec<String>,
    inner: Mutex<Inner>,
}

impl MemoryStore {
    /// An empty store with the declared `stores`.
    pub fn new(stores: &[String]) -> Self {
        Self {
            names: stores.to_vec(),
            inner: Mutex::new(Inner {
                data: stores.iter().map(|_| BTreeMap::new()).collect(),
                metadata: None,
            }),
        }
    }

    /// Every committed entry of `store`, in key order (for assertions).
    pub fn entries(&self, store: &str) -> Result<Vec<(Vec<u8>, Vec<u8>)>, StoreError> {
        let index = self
            .names
            .iter()
            .position(|n| n == store)
            .ok_or_else(|| StoreError::UnknownStore(store.to_string()))?;
        let inner = self.lock();
        Ok(inner.data[index]
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Store for MemoryStore {
    fn store_names(&self) -> &[String] {
        &self.names
    }

    fn get(&self, store: usize, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let inner = self.lock();
        let map = inner
            .data
            .get(store)
            .ok_or_else(|| StoreError::UnknownStore(format!("#{store}")))?;
        Ok(map.get(key).cloned())
    }

    fn scan_prefix(
        &self,
        store: usize,
        prefix: &[u8],
        visit: &mut dyn FnMut(&[u8], &[u8]),
    ) -> Result<(), StoreError> {
        let inner = self.lock();
        let map = inner
            .data
            .get(store)
            .ok_or_else(|| StoreError::UnknownStore(format!("#{store}")))?;
        for (key, value) in map
            .range::<[u8], _>((
                std::ops::Bound::Included(prefix),
                std::ops::Bound::Unbounded,
            ))
            .take_while(|(k, _)| k.starts_with(prefix))
        {
            visit(key, value);
        }
        Ok(())
    }

    fn metadata(&self) -> Result<Option<TaskMetadata>, StoreError> {
        Ok(self.lock().metadata.clone())
    }

    fn commit(&self, writes: &[StoreWrite], metadata: &TaskMetadata) -> Result<(), StoreError> {
        let mut inner = self.lock();
        // Validate first so that a bad write leaves nothing half-applied.
        if let Some(bad) = writes.iter().find(|w| w.store >= inner.data.len()) {
            return Err(StoreError::UnknownStore(format!("#{}", bad.store)));
        }
        for write in writes {
            match &write.value {
                Some(value) => {
                    inner.data[write.store].insert(write.key.clone(), value.clone());
                }
                None => {
                    inner.data[write.store].remove(&write.key);
                }
            }
        }
        inner.metadata = Some(metadata.clone());
        Ok(())
    }
}

//! Writer schemas by registry id, for records written with a schema version
//! this build did not register (a producer upgraded or not yet upgraded).
//!
//! Why a cache with two ways in: `Processor::process` is synchronous and must
//! not wait for the registry per record. The runtime's `prepare_batch` hook
//! ([`WriterSchemas::prefetch`]) looks up every unknown id of a batch before
//! it is processed, asynchronously and with retries; bytes that never pass
//! through a batch (global tables, values kept in a store and read after a
//! restart) are looked up on first sight ([`WriterSchemas::get`], blocking
//! once on a thread of its own). Either way an id is fetched once per
//! process: the answer, or the permanent reason it has none (unknown id,
//! not Avro, does not parse), is kept. A registry that cannot be reached is
//! never kept: it is a retriable error, so the batch is not committed and
//! nothing is dead-lettered for it.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use afregning_topology::CodecError;
use afregning_topology::codec::fetch_writer_schema;
use apache_avro::Schema;

/// A lookup's outcome: the parsed schema, or why the id has none.
pub type Lookup = Result<Arc<Schema>, String>;

/// Attempts per id before a reachable-but-failing registry is an error.
const ATTEMPTS: u32 = 4;
/// The pause before the second attempt; doubled after each.
const FIRST_PAUSE: Duration = Duration::from_millis(250);

/// Why a writer schema could not be had right now.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "writer schema id {id}: the registry could not be reached after {ATTEMPTS} attempts: {message}"
)]
pub struct Unavailable {
    /// The id looked up.
    pub id: u32,
    /// The last error.
    pub message: String,
}

/// The writer schemas of one process, shared by every clone of its `Wire`.
#[derive(Default)]
pub struct WriterSchemas {
    registry_url: Option<Arc<str>>,
    known: RwLock<HashMap<u32, Lookup>>,
}

impl std::fmt::Debug for WriterSchemas {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriterSchemas")
            .field("registry_url", &self.registry_url)
            .field("known", &self.read().keys().collect::<Vec<_>>())
            .finish()
    }
}

impl WriterSchemas {
    /// Schemas looked up at `registry_url`; `None` knows none (pure tests).
    pub fn new(registry_url: Option<&str>) -> Self {
        Self {
            registry_url: registry_url.map(Arc::from),
            known: RwLock::default(),
        }
    }

    /// Whether ids can be looked up at all.
    pub fn has_registry(&self) -> bool {
        self.registry_url.is_some()
    }

    /// The outcome for `id` if it was looked up before.
    pub fn cached(&self, id: u32) -> Option<Lookup> {
        self.read().get(&id).cloned()
    }

    /// Looks up each of `ids` not yet known, asynchronously, with retries.
    /// Without a registry nothing is looked up (the ids stay unknown).
    pub async fn prefetch(&self, ids: impl IntoIterator<Item = u32>) -> Result<(), Unavailable> {
        let Some(url) = self.registry_url.clone() else {
            return Ok(());
        };
        for id in ids {
            if self.read().contains_key(&id) {
                continue;
            }
            let lookup = fetch_with_retries(&url, id).await?;
            self.remember(id, lookup);
        }
        Ok(())
    }

    /// The schema of `id`: from the cache, else looked up now, blocking
    /// (once per id; on a thread with its own runtime, so it works on any
    /// thread). `Ok(None)` without a registry.
    pub fn get(&self, id: u32) -> Result<Option<Lookup>, Unavailable> {
        if let Some(lookup) = self.cached(id) {
            return Ok(Some(lookup));
        }
        let Some(url) = self.registry_url.clone() else {
            return Ok(None);
        };
        let lookup = std::thread::scope(|s| {
            s.spawn(|| {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| Unavailable {
                        id,
                        message: format!("no runtime for the lookup: {e}"),
                    })?
                    .block_on(fetch_with_retries(&url, id))
            })
            .join()
            .unwrap_or_else(|_| {
                Err(Unavailable {
                    id,
                    message: "the lookup thread panicked".into(),
                })
            })
        })?;
        self.remember(id, lookup.clone());
        Ok(Some(lookup))
    }

    pub(crate) fn remember(&self, id: u32, lookup: Lookup) {
        match &lookup {
            Ok(_) => tracing::info!(
                id,
                "records with writer schema id {id} are read through schema resolution"
            ),
            Err(reason) => {
                tracing::warn!(id, %reason, "writer schema id {id} cannot be resolved; its records are dead-lettered")
            }
        }
        self.known
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, lookup);
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<u32, Lookup>> {
        self.known.read().unwrap_or_else(|e| e.into_inner())
    }
}

/// The lookup of `id`, retrying what the registry client calls retriable.
async fn fetch_with_retries(url: &str, id: u32) -> Result<Lookup, Unavailable> {
    let mut pause = FIRST_PAUSE;
    let mut attempt = 1;
    loop {
        match fetch_writer_schema(url, id).await {
            Ok(schema) => return Ok(Ok(Arc::new(schema))),
            Err(e) if !e.is_retriable() => return Ok(Err(reason(&e))),
            Err(e) if attempt >= ATTEMPTS => {
                return Err(Unavailable {
                    id,
                    message: e.to_string(),
                });
            }
            Err(e) => {
                tracing::warn!(id, attempt, error = %e, "looking up a writer schema; retrying");
                tokio::time::sleep(pause).await;
                pause *= 2;
                attempt += 1;
            }
        }
    }
}

fn reason(error: &CodecError) -> String {
    format!("the registry has no usable schema for it: {error}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_registry_nothing_is_looked_up() {
        let schemas = WriterSchemas::new(None);
        assert!(!schemas.has_registry());
        assert!(matches!(schemas.get(7), Ok(None)));
        assert!(schemas.cached(7).is_none());
    }

    #[test]
    fn an_unreachable_registry_is_retriable_and_not_remembered() {
        // Port 9 (discard) on loopback: nothing listens, the connection is refused.
        let schemas = WriterSchemas::new(Some("http://127.0.0.1:9"));
        let error = schemas.get(7).expect_err("unreachable");
        assert_eq!(error.id, 7);
        assert!(schemas.cached(7).is_none(), "an outage is not an answer");
    }
}

//! The processor runtime: a consume-process-produce engine on rdkafka with
//! per-task RocksDB state, compacted changelogs, commit markers instead of
//! broker transactions, cooperative rebalancing and a global memory budget.
//!
//! A processor author implements [`Processor`] and runs it with
//! [`run_processor`] (or [`Runtime`] for a clock, an observer or the
//! [`RuntimeStatus`] to serve with [`admin::router`]). Pure tests drive it
//! with [`testing::MemoryTask`]. The protocol and its guarantees are in
//! `docs/processors-runtime.md`.
//!
//! Module map (`processors/runtime` of the style anchors):
//! - `processor`: the trait, records, [`Context`], clocks;
//! - `store`: the [`Store`] trait, [`RocksStore`], [`MemoryStore`], [`StateMemory`];
//! - `changelog`: topic naming, record headers, commit markers;
//! - `checkpoint`: the commit protocol of a batch;
//! - `instances`: the processor's instances, one per task where it makes them;
//! - `recovery`: restore from the local store and the changelog;
//! - `task`, `runner`: tasks and the driver loop;
//! - `consumer`: the group (membership) and data consumers, the rebalance bridge;
//! - `global`: global tables;
//! - `typed`: typed store handles, versioned values, marks for the next tick;
//! - `config`, `events`, `admin`, `error`.

pub mod admin;
pub mod changelog;
mod checkpoint;
mod clients;
pub mod config;
mod consumer;
mod error;
pub mod events;
mod global;
mod graph;
mod instances;
mod processor;
mod recovery;
mod runner;
pub mod store;
mod task;
pub mod testing;
pub mod typed;

pub use config::{AssignmentStrategy, Compression, RuntimeConfig, StartFrom};
pub use error::RuntimeError;
pub use events::{CheckpointStage, Observer, RuntimeEvent};
pub use global::GlobalStore;
pub use processor::{
    Clock, Context, GlobalChange, GlobalTableSpec, GlobalView, IDEMPOTENCY_KEY_HEADER, InputRecord,
    ManualClock, MemoryGlobals, OutputRecord, ProcessError, Processor, SharedClock, StoreSpec,
    SystemClock, log_entry_key,
};
pub use runner::{Runtime, RuntimeStatus, run_processor};
pub use store::{MemoryStore, RocksStore, StateMemory, Store, StoreError};

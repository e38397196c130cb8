//! Stateful stream processors and their Kafka runtime: validate, enrich, aggregate, settle.
//!
//! The [`runtime`] is the generic engine: a consume-process-produce loop on
//! rdkafka with per-partition RocksDB state, changelog topics and an
//! effectively-once commit protocol that does not rely on broker transactions.
//! The concrete processors (validate, enrich, aggregate, settle) implement
//! [`runtime::Processor`] and are run with [`runtime::run_processor`].
//! What each reads, keeps and emits is in `docs/processors.md`.

// Store and callback signatures read better spelled out than behind aliases.
#![allow(clippy::type_complexity)]

pub mod runtime;

pub mod aggregate;
pub mod enrich;
pub mod pipeline;
pub mod portfolio;
pub mod reconcile;
pub mod replay;
pub mod settle;
pub mod shared;
pub mod validate;

#[cfg(test)]
mod testdata;

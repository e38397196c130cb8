//! The runtime's error type.

use crate::runtime::processor::ProcessError;
use crate::runtime::store::StoreError;

/// Why the runtime stopped. Every variant is fatal for the process: the state
/// on disk and in the changelog stays consistent, and a restart resumes from
/// the last committed batch.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The configuration is invalid.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The topics do not fit the processor (missing, or not co-partitioned).
    #[error("topology: {0}")]
    Topology(String),
    /// A Kafka client call failed.
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    /// A produce (output, changelog record or marker) was not acknowledged.
    #[error("produce failed, batch not committed: {0}")]
    Produce(String),
    /// A state store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The processor failed.
    #[error("processor: {0}")]
    Process(#[from] ProcessError),
    /// A runtime thread or task failed unexpectedly.
    #[error("internal: {0}")]
    Internal(String),
}

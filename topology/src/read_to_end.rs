//! The client context of every consumer that reads partitions to their end.
//!
//! Such consumers set `enable.partition.eof`: reaching a partition's end is
//! how they know they are done (the local broker lists ends too low, decision
//! 0057, so the fetch's own end is what counts). rust-rdkafka's default
//! context logs each of those ends as `ERROR librdkafka: Global error:
//! PartitionEOF`, which reads like a fault where nothing is wrong; this
//! context keeps them at trace and logs real client errors as warnings.

use rdkafka::ClientContext;
use rdkafka::consumer::ConsumerContext;
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;

/// Context for read-to-the-end consumers (restores, global tables, the
/// sinks' ERP reader, the demo's counts).
#[derive(Debug, Clone, Copy, Default)]
pub struct ReadToEndContext;

/// Whether `error` only says a partition's end was reached.
pub fn is_partition_end(error: &KafkaError) -> bool {
    matches!(error, KafkaError::PartitionEOF(_))
        || error.rdkafka_error_code() == Some(RDKafkaErrorCode::PartitionEOF)
}

impl ClientContext for ReadToEndContext {
    fn error(&self, error: KafkaError, reason: &str) {
        if is_partition_end(&error) {
            tracing::trace!(%reason, "end of partition");
        } else {
            tracing::warn!(%error, %reason, "kafka client error");
        }
    }
}

impl ConsumerContext for ReadToEndContext {}

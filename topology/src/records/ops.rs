//! Operations: dead letters.

use chrono::{DateTime, Utc};

use super::{ErrorClass, avro_fields, avro_record};

avro_fields! {
    /// A record the pipeline could not process.
    pub struct DeadLetter {
        /// Source topic.
        pub source_topic: String => put,
        /// Source partition.
        pub source_partition: i32 => put,
        /// Source offset.
        pub source_offset: i64 => put,
        /// Kafka timestamp of the record.
        pub source_timestamp: Option<DateTime<Utc>> => opt,
        /// Key bytes as read.
        pub source_key: Option<Vec<u8>> => opt,
        /// Value bytes as read.
        pub payload: Option<Vec<u8>> => opt,
        /// DataHub MessageId, when known.
        pub source_message_id: Option<String> => opt,
        /// The component that gave up.
        pub component: String => put,
        /// Class of the failure.
        pub error_class: ErrorClass => put,
        /// Human-readable reason.
        pub reason: String => put,
        /// When it gave up.
        pub failed_at: DateTime<Utc> => put,
        /// Attempts made.
        pub attempts: i32 => put,
    }
}
avro_record!(DeadLetter => DeadLetter);

//! DataHub exchange: raw documents and outbound requests and responses.

use chrono::{DateTime, Utc};

use super::{OutboundDocumentType, OutboundStatus, avro_fields, avro_record};

/// A raw DataHub document (CIM JSON) exactly as peeked: the value of the raw
/// topics, which have no value schema because the bytes are kept unmodified
/// for replay and audit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CimJson(pub Vec<u8>);

avro_fields! {
    /// A request to send to DataHub's B2B API.
    pub struct OutboundRequest {
        /// Unique id (UUID).
        pub request_id: String => put,
        /// Which document the body is.
        pub document_type: OutboundDocumentType => put,
        /// The CIM JSON document to post.
        pub body: String => put,
        /// Who asked.
        pub requested_by: String => put,
        /// When asked.
        pub requested_at: DateTime<Utc> => put,
        /// Why, for the audit trail.
        pub reason: Option<String> => opt,
    }
}
avro_record!(OutboundRequest => OutboundRequest);

avro_fields! {
    /// DataHub's answer to an outbound request.
    pub struct OutboundResponse {
        /// Id of the request answered.
        pub request_id: String => put,
        /// Outcome.
        pub status: OutboundStatus => put,
        /// HTTP status, when an answer came.
        pub http_status: Option<i32> => opt,
        /// Response body.
        pub body: Option<String> => opt,
        /// DataHub's CorrelationId header.
        pub correlation_id: Option<String> => opt,
        /// Attempts made.
        pub attempts: i32 => put,
        /// When the outcome was known.
        pub responded_at: DateTime<Utc> => put,
    }
}
avro_record!(OutboundResponse => OutboundResponse);

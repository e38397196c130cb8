//! Header names of the records on the raw DataHub topics: part of the raw
//! topics' contract, next to the key (`DataHubMessageKey`) and the value (the
//! CIM JSON as peeked, split per series).
//!
//! The connector writes them; the validate processor and any other consumer
//! read them. Deduplication downstream is by [`MESSAGE_ID`] (plus
//! [`PART_INDEX`] within a split bundle): DataHub delivers at least once, and
//! a connector that crashed between produce and dequeue produces the same
//! message again under the same MessageId (see `docs/connect.md`).

/// DataHub's `MessageId` of the peeked bundle (also in the key).
pub const MESSAGE_ID: &str = "afregning-message-id";
/// The DataHub queue the bundle was peeked from: `timeseries`, `aggregations`,
/// `masterdata` or `charges`.
pub const QUEUE: &str = "afregning-queue";
/// The peek response's `Content-Type`, e.g. `application/json; charset=utf-8`.
pub const CONTENT_TYPE: &str = "afregning-content-type";
/// When the connector received the bundle (RFC 3339, UTC, milliseconds).
pub const RECEIVED_AT: &str = "afregning-received-at";
/// 0-based index of this record's part within the bundle.
pub const PART_INDEX: &str = "afregning-part-index";
/// Number of parts (records) the bundle was produced as.
pub const PART_COUNT: &str = "afregning-part-count";
/// The part's transaction (series) `mRID`, when it has one.
pub const SERIES_ID: &str = "afregning-series-id";
/// How the bundle was cut: [`SPLIT_PER_TRANSACTION`] or [`SPLIT_WHOLE`].
pub const SPLIT: &str = "afregning-split";
/// Why a bundle could not be split (malformed JSON, unknown document type):
/// it is then produced whole, as one record, for the validator to dead-letter.
pub const SPLIT_ERROR: &str = "afregning-split-error";
/// Hex SHA-256 of the original bundle bytes, as in the connector's inbound-message log.
pub const BUNDLE_SHA256: &str = "afregning-bundle-sha256";
/// Value of [`SPLIT`]: one record per top-level transaction (`bundle::split`).
pub const SPLIT_PER_TRANSACTION: &str = "per-transaction";
/// Value of [`SPLIT`]: the bundle as one record, unchanged.
pub const SPLIT_WHOLE: &str = "whole";

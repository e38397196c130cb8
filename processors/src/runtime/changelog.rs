//! Changelog topics: naming, record layout and commit markers.
//!
//! Every store of a processor has one compacted changelog topic with as many
//! partitions as the inputs; partition `p` serves task `p`. A batch writes,
//! per store, one record per changed key (value, or a tombstone for a
//! delete) carrying the batch's sequence number in a header, then, once all
//! of those and the batch's outputs are acknowledged, one **commit marker**
//! to *every* store's changelog partition of the task. A batch is committed
//! when its markers are in all of them; restore uses this to discard the
//! records of a batch whose outputs may never have been produced
//! (see `recovery.rs` and `docs/processors-runtime.md`).

use std::collections::BTreeMap;

use rdkafka::Message;
use rdkafka::message::{Header, Headers, OwnedHeaders};
use serde::{Deserialize, Serialize};

/// Key of commit markers. Compaction keeps the latest marker of each
/// partition; processors may not write this key ([`crate::runtime::StoreError::ReservedKey`]).
pub const MARKER_KEY: &[u8] = b"\0afregning.commit";

/// Header naming the record kind: [`KIND_DATA`] or [`KIND_COMMIT`].
pub const HEADER_KIND: &str = "afregning-changelog-kind";
/// Header with the batch sequence number (decimal) on every changelog record.
pub const HEADER_SEQ: &str = "afregning-batch-seq";
/// Header with the store name on every changelog record.
pub const HEADER_STORE: &str = "afregning-store";
/// [`HEADER_KIND`] of a state change.
pub const KIND_DATA: &str = "data";
/// [`HEADER_KIND`] of a commit marker.
pub const KIND_COMMIT: &str = "commit";

/// The changelog topic of `store` of `processor` under a deployment's topic
/// `prefix`, following the topic catalogue's convention
/// (`afregning-topology`'s `changelog_base_name`):
/// `<prefix>afregning.<processor>.<store>-changelog.v1`.
///
/// Kept here, in one place, because processors name themselves with plain
/// strings (the toy processor of the tests is not in the catalogue).
pub fn changelog_topic(prefix: &str, processor: &str, store: &str) -> String {
    format!("{prefix}afregning.{processor}.{store}-changelog.v1")
}

/// The content of a commit marker: which batch committed and where the task's
/// inputs resume after it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Marker {
    /// The batch's sequence number (1, 2, ...; 0 means nothing committed yet).
    pub seq: u64,
    /// Per input topic, the next offset to read in the task's partition.
    pub input_offsets: BTreeMap<String, i64>,
    /// Per global-table topic and partition, the last offset whose change the
    /// task has seen (so changes missed while not running are re-delivered).
    #[serde(default)]
    pub global_seen: BTreeMap<String, BTreeMap<i32, i64>>,
}

impl Marker {
    /// The marker's JSON value.
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// A consumed changelog record, classified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangelogEntry {
    /// A state change of batch `seq`.
    Data {
        /// The batch sequence number.
        seq: u64,
        /// The store key.
        key: Vec<u8>,
        /// The new value, `None` for a delete.
        value: Option<Vec<u8>>,
    },
    /// A commit marker.
    Commit(Marker),
    /// Not written by this runtime (no or unreadable headers); skipped.
    Foreign(String),
}

/// Headers of a data record of batch `seq` in `store`.
pub fn data_headers(store: &str, seq: u64) -> OwnedHeaders {
    OwnedHeaders::new_with_capacity(3)
        .insert(Header {
            key: HEADER_KIND,
            value: Some(KIND_DATA),
        })
        .insert(Header {
            key: HEADER_SEQ,
            value: Some(seq.to_string().as_str()),
        })
        .insert(Header {
            key: HEADER_STORE,
            value: Some(store),
        })
}

/// Headers of a commit marker of batch `seq` in `store`.
pub fn commit_headers(store: &str, seq: u64) -> OwnedHeaders {
    OwnedHeaders::new_with_capacity(3)
        .insert(Header {
            key: HEADER_KIND,
            value: Some(KIND_COMMIT),
        })
        .insert(Header {
            key: HEADER_SEQ,
            value: Some(seq.to_string().as_str()),
        })
        .insert(Header {
            key: HEADER_STORE,
            value: Some(store),
        })
}

/// Classifies a consumed changelog message.
pub fn classify<M: Message>(message: &M) -> ChangelogEntry {
    let mut kind = None;
    let mut seq = None;
    if let Some(headers) = message.headers() {
        for header in headers.iter() {
            let value = header.value.and_then(|v| std::str::from_utf8(v).ok());
            match header.key {
                HEADER_KIND => kind = value.map(str::to_string),
                HEADER_SEQ => seq = value.and_then(|v| v.parse::<u64>().ok()),
                _ => {}
            }
        }
    }
    classify_parts(kind.as_deref(), seq, message.key(), message.payload())
}

/// Classification from the parts (shared by [`classify`] and tests).
pub fn classify_parts(
    kind: Option<&str>,
    seq: Option<u64>,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
) -> ChangelogEntry {
    match (kind, seq) {
        (Some(KIND_COMMIT), Some(seq)) => match value.map(serde_json::from_slice::<Marker>) {
            Some(Ok(marker)) if marker.seq == seq => ChangelogEntry::Commit(marker),
            Some(Ok(marker)) => ChangelogEntry::Foreign(format!(
                "marker value seq {} differs from header seq {seq}",
                marker.seq
            )),
            Some(Err(error)) => ChangelogEntry::Foreign(format!("unreadable marker: {error}")),
            None => ChangelogEntry::Foreign("marker without a value".to_string()),
        },
        (Some(KIND_DATA), Some(seq)) => match key {
            Some(key) => ChangelogEntry::Data {
                seq,
                key: key.to_vec(),
                value: value.map(<[u8]>::to_vec),
            },
            None => ChangelogEntry::Foreign("data record without a key".to_string()),
        },
        _ => ChangelogEntry::Foreign("no afregning changelog headers".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changelog_names_follow_the_catalogue_convention() {
        assert_eq!(
            changelog_topic("", "enrich", "metering-points"),
            "afregning.enrich.metering-points-changelog.v1"
        );
        assert_eq!(
            changelog_topic("t1.", "toy", "sums"),
            "t1.afregning.toy.sums-changelog.v1"
        );
    }

    #[test]
    fn markers_round_trip_and_must_agree_with_their_header() {
        let marker = Marker {
            seq: 7,
            input_offsets: BTreeMap::from([("in".to_string(), 42)]),
            global_seen: BTreeMap::from([("prices".to_string(), BTreeMap::from([(0, 9)]))]),
        };
        let encoded = marker.encode();
        assert_eq!(
            classify_parts(Some(KIND_COMMIT), Some(7), Some(MARKER_KEY), Some(&encoded)),
            ChangelogEntry::Commit(marker.clone())
        );
        assert!(matches!(
            classify_parts(Some(KIND_COMMIT), Some(8), Some(MARKER_KEY), Some(&encoded)),
            ChangelogEntry::Foreign(_)
        ));
    }

    #[test]
    fn data_records_need_a_key_and_tombstones_are_deletes() {
        assert_eq!(
            classify_parts(Some(KIND_DATA), Some(3), Some(b"k"), None),
            ChangelogEntry::Data {
                seq: 3,
                key: b"k".to_vec(),
                value: None
            }
        );
        assert!(matches!(
            classify_parts(Some(KIND_DATA), Some(3), None, Some(b"v")),
            ChangelogEntry::Foreign(_)
        ));
        assert!(matches!(
            classify_parts(None, None, Some(b"k"), Some(b"v")),
            ChangelogEntry::Foreign(_)
        ));
    }
}

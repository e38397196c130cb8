//! Re-submitting resolved dead letters (issue 14): once an operator fixed the
//! cause of a dead letter and marked it resolved, `afregning replay
//! dead-letters` produces the record again to the topic and partition it came
//! from, so the component that gave up reads it once more with today's code.
//!
//! The record is copied from the source topic where it is still there (key,
//! value and every header, so the raw topics' contract holds: MessageId, part
//! index, ...); where retention removed it, from the dead letter's own copy of
//! key and value, with the MessageId header where the dead letter knew it. Two
//! headers say what it is: [`RESUBMITTED_FROM`] (where the original was) and
//! [`RESUBMISSION_RUN`] (the replay run). validate lets a re-submitted
//! document past its MessageId dedupe, which would otherwise drop it as
//! already seen (it records the id of rejected documents too).

use std::fmt;
use std::str::FromStr;

use rdkafka::Message;
use rdkafka::message::{Headers, OwnedMessage};

/// Header of a re-submitted record: `topic/partition/offset` of the original.
pub const RESUBMITTED_FROM: &str = "afregning-resubmitted-from";
/// Header of a re-submitted record: the replay run that re-submitted it.
pub const RESUBMISSION_RUN: &str = "afregning-replay-run";

/// Where a dead-lettered record was: the dead letter's id, written
/// `topic/partition/offset` (as the API and the console show it).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct DeadLetterId {
    /// The source topic.
    pub topic: String,
    /// Its partition.
    pub partition: i32,
    /// The record's offset.
    pub offset: i64,
}

impl fmt::Display for DeadLetterId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.topic, self.partition, self.offset)
    }
}

impl FromStr for DeadLetterId {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        // Topic names have no '/', so the last two parts are partition and offset.
        let mut parts = s.rsplitn(3, '/');
        let (Some(offset), Some(partition), Some(topic)) =
            (parts.next(), parts.next(), parts.next())
        else {
            return Err(format!("{s:?}: a dead letter is TOPIC/PARTITION/OFFSET"));
        };
        let bad = |what: &str| format!("{s:?}: the {what} is not a number");
        Ok(Self {
            topic: topic.to_string(),
            partition: partition.parse().map_err(|_| bad("partition"))?,
            offset: offset.parse().map_err(|_| bad("offset"))?,
        })
    }
}

/// What the dead letter itself kept of the record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LetterCopy {
    /// Key bytes as read.
    pub key: Option<Vec<u8>>,
    /// Value bytes as read.
    pub payload: Option<Vec<u8>>,
    /// DataHub's MessageId, when known.
    pub message_id: Option<String>,
}

/// The record to produce again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resubmission {
    /// Where it goes (the original's topic and partition).
    pub topic: String,
    /// See `topic`.
    pub partition: i32,
    /// Key bytes.
    pub key: Option<Vec<u8>>,
    /// Value bytes.
    pub value: Option<Vec<u8>>,
    /// Headers: the original's, then the two re-submission headers.
    pub headers: Vec<(String, Vec<u8>)>,
    /// Whether the original was read from the source topic (else the dead letter's copy).
    pub from_source: bool,
}

/// The re-submission of dead letter `id` by run `run_id`: the original record
/// when it could still be read, else the dead letter's copy.
pub fn resubmission(
    id: &DeadLetterId,
    original: Option<&OwnedMessage>,
    copy: &LetterCopy,
    run_id: &str,
) -> Resubmission {
    let mut headers: Vec<(String, Vec<u8>)> = Vec::new();
    let (key, value) = match original {
        Some(m) => {
            if let Some(h) = m.headers() {
                for header in h.iter() {
                    // A record re-submitted twice keeps only the newest marks.
                    if header.key != RESUBMITTED_FROM && header.key != RESUBMISSION_RUN {
                        headers.push((
                            header.key.to_string(),
                            header.value.unwrap_or_default().to_vec(),
                        ));
                    }
                }
            }
            (m.key().map(<[u8]>::to_vec), m.payload().map(<[u8]>::to_vec))
        }
        None => {
            if let Some(id) = &copy.message_id {
                headers.push((
                    afregning_topology::raw_headers::MESSAGE_ID.to_string(),
                    id.clone().into_bytes(),
                ));
            }
            (copy.key.clone(), copy.payload.clone())
        }
    };
    headers.push((RESUBMITTED_FROM.to_string(), id.to_string().into_bytes()));
    headers.push((RESUBMISSION_RUN.to_string(), run_id.as_bytes().to_vec()));
    Resubmission {
        topic: id.topic.clone(),
        partition: id.partition,
        key,
        value,
        headers,
        from_source: original.is_some(),
    }
}

#[cfg(test)]
mod tests {
    use rdkafka::Timestamp;
    use rdkafka::message::{Header, OwnedHeaders};

    use super::*;

    #[test]
    fn an_id_reads_and_prints_as_topic_partition_offset() {
        let id: DeadLetterId = "t.afregning.metering.readings.v1/2/417"
            .parse()
            .expect("id");
        assert_eq!(id.topic, "t.afregning.metering.readings.v1");
        assert_eq!((id.partition, id.offset), (2, 417));
        assert_eq!(id.to_string(), "t.afregning.metering.readings.v1/2/417");
        assert!("readings/x/1".parse::<DeadLetterId>().is_err());
        assert!("17".parse::<DeadLetterId>().is_err());
    }

    #[test]
    fn the_original_is_copied_with_its_headers_and_the_marks_replaced() {
        let id: DeadLetterId = "raw/0/5".parse().expect("id");
        let original = OwnedMessage::new(
            Some(b"value".to_vec()),
            Some(b"key".to_vec()),
            "raw".into(),
            Timestamp::CreateTime(1),
            0,
            5,
            Some(
                OwnedHeaders::new()
                    .insert(Header {
                        key: "afregning-message-id",
                        value: Some("m1"),
                    })
                    .insert(Header {
                        key: RESUBMISSION_RUN,
                        value: Some("an older run"),
                    }),
            ),
        );
        let copy = LetterCopy {
            key: None,
            payload: Some(b"other".to_vec()),
            message_id: None,
        };
        let r = resubmission(&id, Some(&original), &copy, "r1");
        assert!(r.from_source);
        assert_eq!(r.value.as_deref(), Some(&b"value"[..]));
        assert_eq!(r.key.as_deref(), Some(&b"key"[..]));
        let names: Vec<&str> = r.headers.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            names,
            ["afregning-message-id", RESUBMITTED_FROM, RESUBMISSION_RUN]
        );
        assert_eq!(r.headers[1].1, b"raw/0/5");
        assert_eq!(r.headers[2].1, b"r1");
    }

    #[test]
    fn without_the_original_the_dead_letters_copy_is_sent_with_its_message_id() {
        let id: DeadLetterId = "raw/1/9".parse().expect("id");
        let copy = LetterCopy {
            key: Some(b"k".to_vec()),
            payload: Some(b"v".to_vec()),
            message_id: Some("m9".into()),
        };
        let r = resubmission(&id, None, &copy, "r2");
        assert!(!r.from_source);
        assert_eq!((r.topic.as_str(), r.partition), ("raw", 1));
        assert_eq!(r.value.as_deref(), Some(&b"v"[..]));
        assert_eq!(
            r.headers[0],
            ("afregning-message-id".to_string(), b"m9".to_vec())
        );
    }
}

//! Dead letters: every input a processor cannot turn into output goes to the
//! dead-letter topic with its error class, a reason an operator can act on and
//! the raw payload, so nothing is dropped silently.

use afregning_topology::records::{DeadLetter, DeadLetterKey, ErrorClass};
use afregning_topology::topics;
use chrono::{DateTime, TimeZone, Utc};

use crate::runtime::{InputRecord, OutputRecord, ProcessError};
use crate::shared::{Topics, WireError};

/// Why an input was dead-lettered: the class (stable, for dashboards and
/// replays) and the reason (for the operator).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The error class.
    pub class: ErrorClass,
    /// What is wrong, with the JSON path where there is one.
    pub reason: String,
    /// DataHub's MessageId when known.
    pub message_id: Option<String>,
}

impl Rejection {
    /// A rejection of `class` because of `reason`.
    pub fn new(class: ErrorClass, reason: impl Into<String>) -> Self {
        Self {
            class,
            reason: reason.into(),
            message_id: None,
        }
    }

    /// The same rejection naming DataHub's MessageId.
    pub fn with_message_id(mut self, message_id: Option<String>) -> Self {
        self.message_id = message_id;
        self
    }
}

/// The dead-letter record for `record`. `failed_at` is the source record's
/// timestamp when it has one (so a replay writes identical bytes), else `now`.
pub fn dead_letter(
    component: &str,
    record: &InputRecord,
    rejection: &Rejection,
    now: DateTime<Utc>,
) -> (DeadLetterKey, DeadLetter) {
    let source_timestamp = record
        .timestamp
        .and_then(|ms| Utc.timestamp_millis_opt(ms).single());
    let key = DeadLetterKey {
        source_topic: record.topic.clone(),
        source_partition: record.partition,
        source_offset: record.offset,
    };
    let value = DeadLetter {
        source_topic: record.topic.clone(),
        source_partition: record.partition,
        source_offset: record.offset,
        source_timestamp,
        source_key: record.key.clone(),
        payload: record.value.clone(),
        source_message_id: rejection.message_id.clone(),
        component: component.to_string(),
        error_class: rejection.class,
        reason: rejection.reason.clone(),
        failed_at: source_timestamp.unwrap_or(now),
        attempts: 1,
    };
    (key, value)
}

/// The output record of a dead letter; its idempotency key names the source
/// record, so a re-processed batch's dead letter is dropped downstream.
pub fn dead_letter_output(
    topics: &Topics,
    component: &str,
    record: &InputRecord,
    rejection: &Rejection,
    now: DateTime<Utc>,
) -> Result<OutputRecord, ProcessError> {
    let (key, value) = dead_letter(component, record, rejection, now);
    let idempotency = format!(
        "dead-letter:{component}:{}/{}/{}",
        record.topic, record.partition, record.offset
    );
    metrics::counter!("afregning_processor_dead_letters_total", "processor" => component.to_string(), "class" => rejection.class.code()).increment(1);
    tracing::warn!(processor = component, topic = %record.topic, partition = record.partition, offset = record.offset, class = rejection.class.code(), reason = %rejection.reason, "dead-lettered");
    topics.output(topics::DEAD_LETTERS, &key, &value, idempotency)
}

/// Dead-letters `record` as `class` because of `reason` (emitted with the batch).
pub fn reject(
    topics: &Topics,
    component: &str,
    record: &InputRecord,
    class: ErrorClass,
    reason: String,
    ctx: &mut crate::runtime::Context<'_>,
) -> Result<(), ProcessError> {
    let output = dead_letter_output(
        topics,
        component,
        record,
        &Rejection::new(class, reason),
        ctx.now(),
    )?;
    ctx.emit(output);
    Ok(())
}

/// The record's value as `T`, or the rejection for the dead-letter topic: a
/// tombstone on a stream, or bytes that are not `T` (`what` names it). The
/// outer error is a registry that could not be reached to look the writer
/// schema up: retriable, so the batch fails instead of dead-lettering.
pub fn decode_value<T: afregning_topology::records::AvroRecord>(
    topics: &Topics,
    record: &InputRecord,
    what: &str,
) -> Result<Result<T, Rejection>, ProcessError> {
    decode_value_with(record, what, |bytes| topics.wire.decode::<T>(bytes))
}

/// [`decode_value`] with another decoder (enrich reads only a reading's
/// head): the same rejections for a tombstone and for undecodable bytes.
pub fn decode_value_with<T>(
    record: &InputRecord,
    what: &str,
    decode: impl FnOnce(&[u8]) -> Result<T, WireError>,
) -> Result<Result<T, Rejection>, ProcessError> {
    Ok(match record.value.as_deref() {
        Some(bytes) => match decode(bytes) {
            Ok(value) => Ok(value),
            Err(e) if e.is_retriable() => {
                return Err(ProcessError::caused_by(format!("decoding a {what}"), e));
            }
            Err(e) => Err(Rejection::new(
                ErrorClass::Undecodable,
                format!("undecodable {what}: {e}"),
            )),
        },
        None => Err(Rejection::new(
            ErrorClass::Undecodable,
            format!("tombstone where a {what} was expected"),
        )),
    })
}

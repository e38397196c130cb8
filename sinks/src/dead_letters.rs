//! Dead letters a sink writes itself, for records it cannot use: an input
//! that does not decode (both sinks) or a statement the ERP rules refuse.
//! Both sinks build them the same way and publish them before their batch
//! commits, because once the batch's positions are stored its records are
//! never read again.

use std::time::Duration;

use afregning_topology::Codec;
use afregning_topology::records::{DeadLetter, DeadLetterKey, ErrorClass};
use afregning_topology::topics;
use chrono::{DateTime, Utc};
use rdkafka::producer::FutureProducer;

use crate::runner::HandlerError;
use crate::source::SourceRecord;

/// A dead letter for a record this sink cannot decode.
pub fn dead_letter_for(
    record: &SourceRecord,
    component: &str,
    class: ErrorClass,
    reason: String,
) -> (DeadLetterKey, DeadLetter) {
    (
        DeadLetterKey {
            source_topic: record.topic.to_string(),
            source_partition: record.partition,
            source_offset: record.offset,
        },
        DeadLetter {
            source_topic: record.topic.to_string(),
            source_partition: record.partition,
            source_offset: record.offset,
            source_timestamp: record.timestamp,
            source_key: record.key.clone(),
            payload: record.payload.clone(),
            source_message_id: None,
            component: component.to_string(),
            error_class: class,
            reason,
            // Avro timestamp-millis: whole milliseconds only.
            failed_at: DateTime::from_timestamp_millis(Utc::now().timestamp_millis())
                .unwrap_or_default(),
            attempts: 1,
        },
    )
}

/// Publishes dead letters and waits for the broker's acknowledgements.
pub async fn publish_dead_letters(
    codec: &Codec,
    producer: &FutureProducer,
    letters: &[(DeadLetterKey, DeadLetter)],
) -> Result<(), HandlerError> {
    let mut deliveries = Vec::new();
    for (key, letter) in letters {
        let record = codec
            .encode(topics::DEAD_LETTERS, key, letter)
            .await
            .map_err(|e| HandlerError::encoding(e, "a dead letter"))?;
        deliveries.push(async move {
            producer
                .send(record.as_future_record(), Duration::from_secs(30))
                .await
                .map(|_| ())
                .map_err(|(error, _)| error)
        });
    }
    for result in futures::future::join_all(deliveries).await {
        result.map_err(|error| HandlerError::Retriable {
            reason: "kafka",
            message: format!("publishing a dead letter: {error}"),
        })?;
    }
    Ok(())
}

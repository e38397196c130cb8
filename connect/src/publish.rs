//! Producing a peeked bundle to its raw topic: split losslessly into one record per series
//! (the document header plus that one series, bytes unchanged), keyed by MessageId (Avro
//! `DataHubMessageKey`, routed by MessageId so a bundle's parts share a partition and keep
//! their order), with headers for MessageId, queue, content type, receive time, part index
//! and count; all parts sent together through an idempotent `acks=all` producer, and every
//! delivery report awaited. Only then may the caller dequeue.
//!
//! A body that cannot be split (malformed JSON, an unknown document type) is produced whole,
//! as one record, with the reason in a header: the raw topic holds what DataHub sent, and the
//! validate processor dead-letters it. A part larger than `max_record_bytes` cannot be
//! delivered on the local broker; it is refused here, never truncated.

use std::time::{Duration, Instant};

use afregning_cim::bundle;
use afregning_topology::raw_headers as h;
use afregning_topology::records::{CimJson, DataHubMessageKey};
use afregning_topology::{Codec, CodecError, Topic, topics};
use chrono::{DateTime, SecondsFormat, Utc};
use futures::future::join_all;
use rdkafka::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::FutureProducer;

use crate::config::{KafkaConfig, Queue};

/// The raw topic of a queue.
pub fn raw_topic(queue: Queue) -> Topic<DataHubMessageKey, CimJson> {
    match queue {
        Queue::Timeseries => topics::TIMESERIES_RAW,
        Queue::Aggregations => topics::AGGREGATIONS_RAW,
        Queue::MasterData => topics::MASTERDATA_RAW,
        Queue::Charges => topics::CHARGES_RAW,
    }
}

/// One record's worth of a bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawPart {
    /// 0-based index.
    pub index: usize,
    /// Number of parts.
    pub count: usize,
    /// The transaction `mRID`.
    pub series_id: Option<String>,
    /// The part's bytes: the header plus one transaction, or the whole body.
    pub bytes: Vec<u8>,
}

/// How a bundle was cut.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SplitKind {
    /// One part per top-level transaction.
    PerTransaction,
    /// Produced whole: it could not be split (the reason).
    Whole(String),
}

/// Splits a body into parts (see the module docs).
pub fn split(body: &[u8]) -> (Vec<RawPart>, SplitKind) {
    match bundle::split(body) {
        Ok(parts) => (
            parts
                .into_iter()
                .map(|p| RawPart {
                    index: p.index,
                    count: p.count,
                    series_id: p.transaction_id,
                    bytes: p.bytes,
                })
                .collect(),
            SplitKind::PerTransaction,
        ),
        Err(e) => (
            vec![RawPart {
                index: 0,
                count: 1,
                series_id: None,
                bytes: body.to_vec(),
            }],
            SplitKind::Whole(format!("{}: {}", e.class.as_str(), e.reason)),
        ),
    }
}

/// What the headers say about the bundle.
#[derive(Debug, Clone)]
pub struct BundleMeta<'a> {
    /// The queue.
    pub queue: Queue,
    /// DataHub's MessageId.
    pub message_id: &'a str,
    /// The peek response's Content-Type.
    pub content_type: &'a str,
    /// When it was received.
    pub received_at: DateTime<Utc>,
    /// Hex SHA-256 of the bundle.
    pub sha256: &'a str,
}

/// Why a bundle was not (fully) acknowledged.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// A part is too large for the broker.
    #[error(
        "part {index} of message {message_id} is {bytes} bytes, over the {limit}-byte record limit"
    )]
    TooLarge {
        /// The MessageId.
        message_id: String,
        /// The part.
        index: usize,
        /// Its size.
        bytes: usize,
        /// The limit.
        limit: usize,
    },
    /// The key could not be encoded (registry down, …).
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// The broker refused or did not acknowledge a record.
    #[error("broker: {0}")]
    Kafka(#[from] KafkaError),
    /// The producer went away before reporting.
    #[error("delivery report lost (producer closed)")]
    Canceled,
}

impl PublishError {
    /// The `kind` label of the error metric.
    pub fn kind(&self) -> &'static str {
        match self {
            PublishError::TooLarge { .. } => "record_too_large",
            PublishError::Codec(_) => "codec",
            PublishError::Kafka(_) => "produce",
            PublishError::Canceled => "produce",
        }
    }
}

/// The raw-topic producer.
pub struct RawPublisher {
    producer: FutureProducer,
    codec: Codec,
    max_record_bytes: usize,
}

impl std::fmt::Debug for RawPublisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawPublisher").finish_non_exhaustive()
    }
}

/// The idempotent, `acks=all` producer configuration.
pub fn producer_config(kafka: &KafkaConfig) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &kafka.bootstrap_servers)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("max.in.flight.requests.per.connection", "5")
        .set("linger.ms", kafka.linger_ms.to_string())
        .set("compression.type", &kafka.compression)
        .set("delivery.timeout.ms", kafka.delivery_timeout_ms.to_string())
        .set(
            "message.max.bytes",
            (kafka.max_record_bytes + 64 * 1024).to_string(),
        )
        .set("queue.buffering.max.messages", "100000")
        .set("queue.buffering.max.kbytes", "262144");
    for (key, value) in &kafka.producer {
        config.set(key, value);
    }
    config
}

impl RawPublisher {
    /// A publisher on `producer` (made with [`producer_config`]).
    pub fn new(producer: FutureProducer, codec: Codec, max_record_bytes: usize) -> Self {
        Self {
            producer,
            codec,
            max_record_bytes,
        }
    }

    /// Produces every part and waits for every delivery report. `Ok` means the broker durably
    /// accepted all of them (acks=all).
    pub async fn publish(
        &self,
        meta: &BundleMeta<'_>,
        parts: &[RawPart],
        split: &SplitKind,
    ) -> Result<usize, PublishError> {
        let topic = raw_topic(meta.queue);
        let received = meta
            .received_at
            .to_rfc3339_opts(SecondsFormat::Millis, true);
        let mut encoded = Vec::with_capacity(parts.len());
        for part in parts {
            let key = DataHubMessageKey {
                message_id: meta.message_id.to_string(),
                series_id: part.series_id.clone(),
            };
            let record = self
                .codec
                .encode(topic, &key, &CimJson(part.bytes.clone()))
                .await?;
            let size = record.key.len() + record.payload.as_ref().map_or(0, Vec::len) + 512;
            if size > self.max_record_bytes {
                return Err(PublishError::TooLarge {
                    message_id: meta.message_id.to_string(),
                    index: part.index,
                    bytes: size,
                    limit: self.max_record_bytes,
                });
            }
            encoded.push((part, record));
        }
        let mut deliveries = Vec::with_capacity(encoded.len());
        for (part, record) in &encoded {
            let index = part.index.to_string();
            let count = part.count.to_string();
            let mut headers = OwnedHeaders::new_with_capacity(10)
                .insert(Header {
                    key: h::MESSAGE_ID,
                    value: Some(meta.message_id),
                })
                .insert(Header {
                    key: h::QUEUE,
                    value: Some(meta.queue.as_str()),
                })
                .insert(Header {
                    key: h::CONTENT_TYPE,
                    value: Some(meta.content_type),
                })
                .insert(Header {
                    key: h::RECEIVED_AT,
                    value: Some(received.as_str()),
                })
                .insert(Header {
                    key: h::PART_INDEX,
                    value: Some(index.as_str()),
                })
                .insert(Header {
                    key: h::PART_COUNT,
                    value: Some(count.as_str()),
                })
                .insert(Header {
                    key: h::BUNDLE_SHA256,
                    value: Some(meta.sha256),
                });
            if let Some(series) = &part.series_id {
                headers = headers.insert(Header {
                    key: h::SERIES_ID,
                    value: Some(series.as_str()),
                });
            }
            headers = match split {
                SplitKind::PerTransaction => headers.insert(Header {
                    key: h::SPLIT,
                    value: Some(h::SPLIT_PER_TRANSACTION),
                }),
                SplitKind::Whole(reason) => headers
                    .insert(Header {
                        key: h::SPLIT,
                        value: Some(h::SPLIT_WHOLE),
                    })
                    .insert(Header {
                        key: h::SPLIT_ERROR,
                        value: Some(reason.as_str()),
                    }),
            };
            let mut future_record = record.as_future_record().headers(headers);
            let started = Instant::now();
            loop {
                match self.producer.send_result(future_record) {
                    Ok(delivery) => {
                        deliveries.push(delivery);
                        break;
                    }
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                        // The local queue is full: wait for the broker to catch up (bounded).
                        if started.elapsed() > Duration::from_secs(60) {
                            return Err(
                                KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull).into()
                            );
                        }
                        future_record = back;
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    Err((error, _)) => return Err(error.into()),
                }
            }
        }
        let mut first_error = None;
        for report in join_all(deliveries).await {
            match report {
                Ok(Ok(_)) => {}
                Ok(Err((error, _))) => {
                    first_error.get_or_insert(PublishError::Kafka(error));
                }
                Err(_) => {
                    first_error.get_or_insert(PublishError::Canceled);
                }
            }
        }
        match first_error {
            Some(error) => Err(error),
            None => Ok(encoded.len()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsplittable_bodies_are_kept_whole_with_the_reason() {
        let (parts, kind) = split(b"{\"NotifyValidatedMeasureData_MarketDocument\": {");
        assert_eq!(parts.len(), 1);
        assert_eq!(
            parts[0].bytes,
            b"{\"NotifyValidatedMeasureData_MarketDocument\": {"
        );
        assert!(matches!(kind, SplitKind::Whole(reason) if reason.starts_with("malformed-json")));
        let (_, kind) = split(br#"{"Nope_MarketDocument": {}}"#);
        assert!(
            matches!(kind, SplitKind::Whole(reason) if reason.starts_with("unknown-document-type"))
        );
    }
}

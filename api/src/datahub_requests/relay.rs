//! The relay between the `datahub_request` table and the broker, run by
//! `afregning reconcile relay`: it publishes pending requests to the outbound-requests topic
//! (which the connector posts to DataHub), and reads back what happened to them: the
//! connector's outcome on the outbound-responses topic (by request id) and DataHub's
//! answers on the Aggregations raw topic (by the series' mRID, [`super::answers`]).
//!
//! The table is the outbox: the API records a request and its audit row in one transaction
//! and never needs the broker. At least once both ways: a request published but not yet
//! marked sent is published again after a crash (DataHub refuses the repeated message id,
//! which the connector records as accepted), and a response or answer read again changes
//! nothing ([`super::store`]'s guarded updates); offsets are committed after the update.

use std::future::Future;
use std::time::Duration;

use afregning_topology::records::{OutboundDocumentType, OutboundRequest, OutboundRequestKey};
use afregning_topology::{Codec, topics};
use futures::StreamExt;
use rdkafka::ClientConfig;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::producer::FutureProducer;
use sqlx::PgPool;

use super::{answers, store};

/// Where the relay connects and how often it looks for pending requests.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// Kafka bootstrap servers.
    pub bootstrap_servers: String,
    /// Its consumer group (the deployment's prefix is added).
    pub group_id: String,
    /// How often pending requests are looked for.
    pub publish_interval: Duration,
}

/// The relay's clients.
pub struct Relay {
    pool: PgPool,
    codec: Codec,
    producer: FutureProducer,
    consumer: StreamConsumer,
    publish_interval: Duration,
}

/// Why a step failed (logged, and retried).
pub type RelayError = String;

impl Relay {
    /// Connects (lazily) and subscribes to the responses and Aggregations raw topics.
    pub fn new(pool: PgPool, codec: Codec, config: &RelayConfig) -> Result<Self, RelayError> {
        let producer: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", &config.bootstrap_servers)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .create()
            .map_err(|e| format!("cannot create the producer: {e}"))?;
        let group = format!("{}{}", codec.catalogue().settings().prefix, config.group_id);
        let consumer: StreamConsumer = ClientConfig::new()
            .set("bootstrap.servers", &config.bootstrap_servers)
            .set("group.id", &group)
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .create()
            .map_err(|e| format!("cannot create the consumer: {e}"))?;
        let responses = codec.topic_name(topics::OUTBOUND_RESPONSES).to_string();
        let raw = codec.topic_name(topics::AGGREGATIONS_RAW).to_string();
        consumer
            .subscribe(&[&responses, &raw])
            .map_err(|e| format!("cannot subscribe to {responses} and {raw}: {e}"))?;
        Ok(Relay {
            pool,
            codec,
            producer,
            consumer,
            publish_interval: config.publish_interval,
        })
    }

    /// Publishes every pending request, oldest first, and marks each sent once the broker
    /// has it; the number published.
    pub async fn publish_pending(&self) -> Result<usize, RelayError> {
        let mut conn = self.pool.acquire().await.map_err(|e| e.to_string())?;
        let pending = store::pending(&mut conn, 100)
            .await
            .map_err(|e| e.to_string())?;
        for request in &pending {
            let key = OutboundRequestKey {
                request_id: request.request_id.clone(),
            };
            let value = OutboundRequest {
                request_id: request.request_id.clone(),
                document_type: if request.requested_data == "wholesale_settlement" {
                    OutboundDocumentType::RequestWholesaleSettlement
                } else {
                    OutboundDocumentType::RequestAggregatedMeasureData
                },
                body: request.document.clone(),
                requested_by: request.requested_by.clone(),
                requested_at: chrono::SubsecRound::trunc_subsecs(request.requested_at, 3),
                reason: Some(request.reason.clone()),
            };
            let record = self
                .codec
                .encode(topics::OUTBOUND_REQUESTS, &key, &value)
                .await
                .map_err(|e| e.to_string())?;
            self.producer
                .send(record.as_future_record(), Duration::from_secs(30))
                .await
                .map_err(|(e, _)| e.to_string())?;
            store::mark_sent(&mut conn, &request.request_id)
                .await
                .map_err(|e| e.to_string())?;
            tracing::info!(request_id = %request.request_id, "DataHub request published");
        }
        Ok(pending.len())
    }

    /// Applies one record of the responses or raw topic to the table; the number of
    /// requests it changed.
    async fn apply(&self, message: &BorrowedMessage<'_>) -> Result<usize, RelayError> {
        let mut conn = self.pool.acquire().await.map_err(|e| e.to_string())?;
        if message.topic() == self.codec.topic_name(topics::OUTBOUND_RESPONSES) {
            let response = match self
                .codec
                .decode_value(topics::OUTBOUND_RESPONSES, message.payload())
                .await
            {
                Ok(Some(response)) => response,
                Ok(None) => return Ok(0),
                Err(e) if e.is_retriable() => return Err(e.to_string()),
                Err(e) => {
                    tracing::warn!(error = %e, offset = message.offset(), "undecodable outbound response skipped");
                    return Ok(0);
                }
            };
            let changed = store::apply_response(&mut conn, &response)
                .await
                .map_err(|e| e.to_string())?;
            return Ok(usize::from(changed));
        }
        let mut changed = 0;
        for answer in answers::answers(message.payload().unwrap_or_default()) {
            if store::apply_answer(&mut conn, &answer)
                .await
                .map_err(|e| e.to_string())?
            {
                tracing::info!(transaction_id = %answer.original_transaction_id, message_id = %answer.message_id, refused = answer.refusal.is_some(), "DataHub answered a request");
                changed += 1;
            }
        }
        Ok(changed)
    }

    /// Runs until `stop` completes.
    pub async fn run(self, stop: impl Future<Output = ()>) {
        tokio::pin!(stop);
        let mut tick = tokio::time::interval(self.publish_interval);
        let mut stream = self.consumer.stream();
        loop {
            tokio::select! {
                () = &mut stop => break,
                _ = tick.tick() => {
                    if let Err(error) = self.publish_pending().await {
                        tracing::warn!(%error, "cannot publish pending DataHub requests yet; retrying");
                    }
                }
                next = stream.next() => {
                    let message = match next {
                        Some(Ok(message)) => message,
                        Some(Err(error)) => {
                            tracing::warn!(%error, "relay consumer error");
                            continue;
                        }
                        None => break,
                    };
                    // Retried until applied: the offset is committed only after.
                    loop {
                        match self.apply(&message).await {
                            Ok(_) => break,
                            Err(error) => {
                                tracing::warn!(%error, "cannot apply a response or answer yet; retrying");
                                tokio::time::sleep(Duration::from_secs(1)).await;
                            }
                        }
                    }
                    if let Err(error) = self.consumer.commit_message(&message, CommitMode::Async) {
                        tracing::warn!(%error, "cannot commit the relay's offset; the record is read again");
                    }
                }
            }
        }
    }
}

//! Outbound requests: consume the outbound-requests topic, POST each CIM document to
//! DataHub, record the outcome on the responses topic (same key: the request id), then commit
//! the request's offset.
//!
//! At least once, and safe to retry: a request whose outcome was produced but whose offset
//! was not committed is posted again after a restart, and a POST whose answer was lost is
//! posted again by the retry loop. DataHub refuses a document whose message id (`mRID`) it has
//! already received; the connector treats that refusal (error code [`DUPLICATE_MESSAGE_CODE`])
//! as "accepted earlier", so a retried request is recorded as accepted, never as rejected.
//! Consumers of the responses topic deduplicate by request id.

use std::sync::Arc;
use std::time::Duration;

use afregning_cim::DocumentKind;
use afregning_portfolio::personal::Keyring;
use afregning_topology::records::{
    OutboundDocumentType, OutboundRequest, OutboundRequestKey, OutboundResponse, OutboundStatus,
};
use afregning_topology::{Codec, topics};
use futures::StreamExt;
use rdkafka::ClientConfig;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::producer::FutureProducer;
use tokio::sync::watch;

use crate::ConnectError;
use crate::backoff::Backoff;
use crate::client::{ApiError, DataHubClient};
use crate::config::{BackoffConfig, ConnectConfig};
use crate::metrics as m;

/// The error code with which the DataHub simulator refuses a message id it has already
/// received (DataHub's own code for it is not public).
pub const DUPLICATE_MESSAGE_CODE: &str = "00101";

/// The URL segment of `POST /v1.0/cim/{documenttype}` for a document type.
pub fn segment(document_type: OutboundDocumentType) -> &'static str {
    match document_type {
        OutboundDocumentType::RequestValidatedMeasureData => "requestvalidatedmeasurements",
        OutboundDocumentType::RequestAggregatedMeasureData => "requestaggregatedmeasuredata",
        OutboundDocumentType::RequestWholesaleSettlement => "requestwholesalesettlement",
        OutboundDocumentType::RequestChangeOfSupplier => "requestchangeofsupplier",
        OutboundDocumentType::RequestEndOfSupply => "requestendofsupply",
        OutboundDocumentType::RequestCancellation => "requestcancellation",
        OutboundDocumentType::RequestReallocateChangeOfSupplier => {
            "requestreallocatechangeofsupplier"
        }
        OutboundDocumentType::RequestChangeCustomerCharacteristics => {
            "requestchangecustomercharacteristics"
        }
    }
}

fn expected_kind(document_type: OutboundDocumentType) -> DocumentKind {
    match document_type {
        OutboundDocumentType::RequestValidatedMeasureData => {
            DocumentKind::RequestValidatedMeasureData
        }
        OutboundDocumentType::RequestAggregatedMeasureData => {
            DocumentKind::RequestAggregatedMeasureData
        }
        OutboundDocumentType::RequestWholesaleSettlement => {
            DocumentKind::RequestWholesaleSettlement
        }
        OutboundDocumentType::RequestChangeOfSupplier => DocumentKind::RequestChangeOfSupplier,
        OutboundDocumentType::RequestEndOfSupply => DocumentKind::RequestEndOfSupply,
        OutboundDocumentType::RequestCancellation => DocumentKind::RequestCancellation,
        OutboundDocumentType::RequestReallocateChangeOfSupplier => {
            DocumentKind::RequestReallocateChangeOfSupplier
        }
        OutboundDocumentType::RequestChangeCustomerCharacteristics => {
            DocumentKind::RequestChangeCustomerCharacteristics
        }
    }
}

/// Whether DataHub's 400 body says the message id was already received.
pub fn is_duplicate_refusal(status: u16, body: &str) -> bool {
    status == 400 && body.contains(&format!("\"{DUPLICATE_MESSAGE_CODE}\""))
}

/// `body` with the sealed customer data of a portfolio request opened
/// ([`afregning_portfolio::outbound::open_placeholders`]); a body without any is returned
/// as it is. `Err` says why it must not be sent (no keyring, an erased or unknown key).
pub fn open_sealed(body: &str, keyring: Option<&Keyring>) -> Result<String, String> {
    if !body.contains(afregning_portfolio::outbound::SEALED_IDENTITY)
        && !body.contains(afregning_portfolio::outbound::SEALED_NAME)
    {
        return Ok(body.to_string());
    }
    let keyring = keyring.ok_or(
        "not sent: the document carries sealed customer data and the connector has no keyring \
         (set AFREGNING_PORTFOLIO_KEYS or AFREGNING_PORTFOLIO_KEY_FILE)",
    )?;
    afregning_portfolio::outbound::open_placeholders(body, keyring)
        .map_err(|e| format!("not sent: the sealed customer data cannot be opened: {e}"))
}

/// The outbound task.
pub struct OutboundSender {
    consumer: StreamConsumer,
    client: Arc<DataHubClient>,
    codec: Codec,
    producer: FutureProducer,
    retry: BackoffConfig,
    max_attempts: u32,
    /// Opens the customer data our portfolio requests carry sealed (decision 0145); `None`
    /// when neither `AFREGNING_PORTFOLIO_KEYS` nor `AFREGNING_PORTFOLIO_KEY_FILE` is set.
    keyring: Option<Arc<Keyring>>,
    /// The key store of the customers' own keys (decision 0148), connected lazily.
    key_store: Option<sqlx::PgPool>,
}

impl OutboundSender {
    /// Subscribes to the outbound-requests topic.
    pub fn new(
        config: &ConnectConfig,
        client: Arc<DataHubClient>,
        codec: Codec,
        producer: FutureProducer,
    ) -> Result<Self, ConnectError> {
        let group = format!(
            "{}{}",
            config.kafka.topology.prefix, config.outbound.group_id
        );
        let consumer: StreamConsumer = ClientConfig::new()
            .set("bootstrap.servers", &config.kafka.bootstrap_servers)
            .set("group.id", &group)
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .set("partition.assignment.strategy", "range")
            .create()?;
        let topic = codec.topic_name(topics::OUTBOUND_REQUESTS).to_string();
        consumer.subscribe(&[&topic])?;
        Ok(Self {
            consumer,
            client,
            codec,
            producer,
            retry: config.retry,
            max_attempts: config.outbound.max_attempts.max(1),
            keyring: crate::sealing::portfolio_keyring(config)?,
            key_store: crate::sealing::key_store(config)?,
        })
    }

    /// A keyring that opens `body`'s placeholders: the deployment's, plus the customers' own
    /// keys from the key store when the body names any; `None` without a keyring.
    async fn keyring_for(&self, body: &str) -> Result<Option<Keyring>, String> {
        let Some(keyring) = self.keyring.as_deref() else {
            return Ok(None);
        };
        let ids = afregning_portfolio::outbound::placeholder_key_ids(body);
        if ids.iter().all(|id| keyring.has(id)) {
            return Ok(Some(keyring.clone()));
        }
        let pool = self.key_store.as_ref().ok_or(
            "not sent: the document's customer data is sealed under a customer's own key and the \
             connector has no key store (outbound.portfolio_key_store_url or \
             AFREGNING_PORTFOLIO_KEY_STORE_URL)",
        )?;
        afregning_portfolio::customer_keys::opener(pool, keyring, ids.iter().map(String::as_str))
            .await
            .map(Some)
            .map_err(|e| format!("not sent: {e}"))
    }

    /// Runs until shutdown.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let mut stream = self.consumer.stream();
        loop {
            let next = tokio::select! {
                next = stream.next() => next,
                _ = stop.changed() => break,
            };
            let message = match next {
                Some(Ok(message)) => message,
                Some(Err(error)) => {
                    tracing::warn!(%error, "outbound consumer error");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                }
                None => break,
            };
            if !self.handle(&message, &mut stop).await {
                break;
            }
            if let Err(error) = self.consumer.commit_message(&message, CommitMode::Async) {
                tracing::warn!(%error, "cannot commit an outbound request's offset; it may be sent again");
            }
        }
    }

    /// Handles one request; `false` on shutdown (the offset is then not committed).
    async fn handle(
        &self,
        message: &BorrowedMessage<'_>,
        stop: &mut watch::Receiver<bool>,
    ) -> bool {
        let mut backoff = Backoff::new(self.retry);
        let (key, request) = loop {
            let key = self
                .codec
                .decode_key(topics::OUTBOUND_REQUESTS, message.key())
                .await;
            let value = self
                .codec
                .decode_value(topics::OUTBOUND_REQUESTS, message.payload())
                .await;
            match (key, value) {
                (Ok(key), Ok(Some(request))) => break (key, request),
                (Ok(_), Ok(None)) => return true,
                (Err(e), _) | (_, Err(e)) if e.is_retriable() => {
                    tracing::warn!(error = %e, "cannot decode an outbound request yet (registry); retrying");
                    if !sleep_or_stop(backoff.next_wait(), stop).await {
                        return false;
                    }
                }
                (Err(e), _) | (_, Err(e)) => {
                    metrics::counter!(m::OUTBOUND_REQUESTS, "status" => "undecodable").increment(1);
                    tracing::error!(error = %e, partition = message.partition(), offset = message.offset(), "undecodable outbound request skipped");
                    return true;
                }
            }
        };
        let Some(response) = self.send(&request, stop).await else {
            return false;
        };
        let status = match response.status {
            OutboundStatus::Accepted => "accepted",
            OutboundStatus::Rejected => "rejected",
            OutboundStatus::Failed => "failed",
        };
        metrics::counter!(m::OUTBOUND_REQUESTS, "status" => status).increment(1);
        tracing::info!(request_id = %request.request_id, status, attempts = response.attempts, "outbound request answered");
        let mut backoff = Backoff::new(self.retry);
        loop {
            match self.produce(&key, &response).await {
                Ok(()) => return true,
                Err(error) => {
                    tracing::warn!(%error, request_id = %request.request_id, "cannot record the outbound response yet; retrying");
                    if !sleep_or_stop(backoff.next_wait(), stop).await {
                        return false;
                    }
                }
            }
        }
    }

    async fn produce(
        &self,
        key: &OutboundRequestKey,
        response: &OutboundResponse,
    ) -> Result<(), String> {
        let record = self
            .codec
            .encode(topics::OUTBOUND_RESPONSES, key, response)
            .await
            .map_err(|e| e.to_string())?;
        self.producer
            .send(record.as_future_record(), Duration::from_secs(30))
            .await
            .map(|_| ())
            .map_err(|(e, _)| e.to_string())
    }

    /// POSTs with retries; `None` on shutdown.
    async fn send(
        &self,
        request: &OutboundRequest,
        stop: &mut watch::Receiver<bool>,
    ) -> Option<OutboundResponse> {
        let respond = |status,
                       http_status: Option<u16>,
                       body: Option<String>,
                       correlation_id,
                       attempts: u32| OutboundResponse {
            request_id: request.request_id.clone(),
            status,
            http_status: http_status.map(i32::from),
            body,
            correlation_id,
            attempts: i32::try_from(attempts).unwrap_or(i32::MAX),
            responded_at: chrono::SubsecRound::trunc_subsecs(chrono::Utc::now(), 3),
        };
        let expected = expected_kind(request.document_type);
        // The customer's CPR/CVR and name exist in plaintext only here, in memory, on
        // their way to DataHub: never logged, never written back to a topic.
        let opened = self
            .keyring_for(&request.body)
            .await
            .and_then(|keyring| open_sealed(&request.body, keyring.as_ref()));
        let body = match opened {
            Ok(body) => body,
            Err(reason) => {
                return Some(respond(
                    OutboundStatus::Rejected,
                    None,
                    Some(reason),
                    None,
                    0,
                ));
            }
        };
        match afregning_cim::parse(body.as_bytes()) {
            Ok(doc) if doc.kind() == expected => {}
            Ok(doc) => {
                let body = format!(
                    "the body is a {}, but the request says {}",
                    doc.kind(),
                    expected
                );
                return Some(respond(OutboundStatus::Rejected, None, Some(body), None, 0));
            }
            Err(e) => {
                // Not sent: DataHub would refuse it, and the error is ours to fix.
                return Some(respond(
                    OutboundStatus::Rejected,
                    None,
                    Some(format!("not sent: {e}")),
                    None,
                    0,
                ));
            }
        }
        let mut backoff = Backoff::new(self.retry);
        let mut attempts = 0;
        let mut last_error = String::new();
        while attempts < self.max_attempts {
            attempts += 1;
            match self
                .client
                .post(segment(request.document_type), &body)
                .await
            {
                Ok(answer) => {
                    let status = if (200..300).contains(&answer.status)
                        || is_duplicate_refusal(answer.status, &answer.body)
                    {
                        OutboundStatus::Accepted
                    } else {
                        OutboundStatus::Rejected
                    };
                    return Some(respond(
                        status,
                        Some(answer.status),
                        Some(answer.body),
                        answer.correlation_id,
                        attempts,
                    ));
                }
                Err(ApiError::Forbidden) => {
                    return Some(respond(
                        OutboundStatus::Rejected,
                        Some(403),
                        None,
                        None,
                        attempts,
                    ));
                }
                Err(error) => {
                    last_error = error.to_string();
                    let wait = match error {
                        ApiError::RateLimited {
                            retry_after: Some(wait),
                        } => wait,
                        _ => backoff.next_wait(),
                    };
                    tracing::warn!(request_id = %request.request_id, %error, attempts, "outbound POST failed; retrying");
                    if attempts < self.max_attempts && !sleep_or_stop(wait, stop).await {
                        return None;
                    }
                }
            }
        }
        Some(respond(
            OutboundStatus::Failed,
            None,
            Some(last_error),
            None,
            attempts,
        ))
    }
}

async fn sleep_or_stop(wait: Duration, stop: &mut watch::Receiver<bool>) -> bool {
    if *stop.borrow() {
        return false;
    }
    tokio::select! {
        () = tokio::time::sleep(wait) => true,
        _ = stop.changed() => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_customer_data_is_opened_only_with_the_keyring() {
        use afregning_portfolio::personal::{Cpr, CustomerIdentity, PersonalData};
        let mut keys = Keyring::default();
        keys.generate("k1").expect("key");
        let sealed = keys
            .seal(&PersonalData {
                identity: CustomerIdentity::Cpr(Cpr::parse("0801741527").expect("cpr")),
                name: None,
            })
            .expect("seal");
        let body = format!(
            r#"{{"x": {{"codingScheme": "ARR", "value": "{}{}"}}}}"#,
            afregning_portfolio::outbound::SEALED_IDENTITY,
            sealed.encode()
        );
        assert!(
            open_sealed(&body, Some(&keys))
                .expect("opened")
                .contains("0801741527")
        );
        let without = open_sealed(&body, None).expect_err("no keyring");
        assert!(without.contains("AFREGNING_PORTFOLIO_KEYS"), "{without}");
        assert!(!without.contains("0801741527"));
        let mut other = Keyring::default();
        other.generate("k2").expect("key");
        assert!(open_sealed(&body, Some(&other)).is_err());
        assert_eq!(open_sealed("{}", None).expect("nothing sealed"), "{}");
    }

    #[test]
    fn a_duplicate_refusal_is_recognised_only_by_its_code() {
        assert!(is_duplicate_refusal(
            400,
            r#"{"error":{"code":"00101","message":"…"}}"#
        ));
        assert!(!is_duplicate_refusal(400, r#"{"error":{"code":"00002"}}"#));
        assert!(!is_duplicate_refusal(202, r#""00101""#));
    }
}

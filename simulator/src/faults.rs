//! Fault injection: each fault is a rate (drawn per request from the seed) or a switch.
//!
//! Request faults decide how a request is answered (5xx, 429 with Retry-After, a slow
//! answer, tokens revoked mid-run, 403/503 switches per queue, dequeues swallowed).
//! Content faults are extra messages put on the queues when the simulator starts: malformed
//! JSON, an unknown document type, a schema-invalid document. They are *extra* so that the
//! scenario's ground truth stays exact; each is listed in the ground truth's messages. The
//! duplicate-delivery fault puts an already dequeued message back on its queue, same
//! MessageId and bytes.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::events::FaultKind;
use crate::queues::Queue;
use crate::scenario::rng::Rng;

/// Which faults are on, and how often.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaultConfig {
    /// Share of requests answered with 500 or 503.
    pub server_error_rate: f64,
    /// Share of requests answered with 429 and `Retry-After`.
    pub too_many_requests_rate: f64,
    /// The `Retry-After` of a 429, in seconds.
    pub retry_after_secs: u64,
    /// Share of requests answered slowly.
    pub slow_rate: f64,
    /// How slow, in milliseconds.
    pub slow_ms: u64,
    /// Share of authenticated requests on which every issued token is revoked (token expiry
    /// mid-run): this request and any other holding an old token get 401.
    pub token_revoke_rate: f64,
    /// Extra malformed-JSON messages, per scenario message (at least one when > 0).
    pub malformed_json_rate: f64,
    /// Extra messages of an unknown document type, per scenario message (at least one when > 0).
    pub unknown_document_type_rate: f64,
    /// Extra schema-invalid documents, per scenario message (at least one when > 0).
    pub schema_invalid_rate: f64,
    /// Share of dequeued messages delivered again later (same MessageId and bytes).
    pub duplicate_delivery_rate: f64,
    /// Queues whose peeks and dequeues are answered 403 (switch).
    pub forbidden_queues: Vec<Queue>,
    /// Queues whose peeks are answered 503 (switch: an outage).
    pub outage_queues: Vec<Queue>,
    /// Dequeues are accepted but never applied and never answered (switch; to test a
    /// connector that dies between produce and dequeue).
    pub dequeue_blackhole: bool,
}

impl Default for FaultConfig {
    fn default() -> Self {
        Self {
            server_error_rate: 0.0,
            too_many_requests_rate: 0.0,
            retry_after_secs: 1,
            slow_rate: 0.0,
            slow_ms: 300,
            token_revoke_rate: 0.0,
            malformed_json_rate: 0.0,
            unknown_document_type_rate: 0.0,
            schema_invalid_rate: 0.0,
            duplicate_delivery_rate: 0.0,
            forbidden_queues: Vec::new(),
            outage_queues: Vec::new(),
            dequeue_blackhole: false,
        }
    }
}

impl FaultConfig {
    /// No faults.
    pub fn none() -> Self {
        Self::default()
    }

    /// Every rate-based fault at `rate` (slow answers of `slow_ms`, Retry-After 1 s); the
    /// switches stay off.
    pub fn every_fault(rate: f64) -> Self {
        Self {
            server_error_rate: rate,
            too_many_requests_rate: rate,
            slow_rate: rate,
            token_revoke_rate: rate / 2.0,
            malformed_json_rate: rate,
            unknown_document_type_rate: rate,
            schema_invalid_rate: rate,
            duplicate_delivery_rate: rate,
            ..Self::default()
        }
    }
}

/// A content fault: what is wrong with an injected message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum InjectedFault {
    /// The body is not JSON (a truncated document).
    MalformedJson,
    /// The root names no document type DataHub or the codec knows.
    UnknownDocumentType,
    /// Valid JSON and a known document whose content breaks the schema.
    SchemaInvalid,
}

/// What a request gets instead of its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestFault {
    /// 503 (queue outage switch).
    Outage,
    /// 403 (forbidden switch).
    Forbidden,
    /// 500 or 503.
    ServerError(u16),
    /// 429 with `Retry-After`.
    TooManyRequests(u64),
    /// 401 after revoking every token.
    RevokeTokens,
}

impl RequestFault {
    /// The event kind that records it.
    pub fn kind(self) -> FaultKind {
        match self {
            RequestFault::Outage => FaultKind::Outage,
            RequestFault::Forbidden => FaultKind::Forbidden,
            RequestFault::ServerError(_) => FaultKind::ServerError,
            RequestFault::TooManyRequests(_) => FaultKind::TooManyRequests,
            RequestFault::RevokeTokens => FaultKind::TokensRevoked,
        }
    }
}

/// The faults in force and the random draws that apply them.
#[derive(Debug)]
pub struct FaultState {
    /// The configuration (replaceable at run time).
    pub config: FaultConfig,
    rng: Rng,
}

impl FaultState {
    /// Faults drawn from `seed`.
    pub fn new(config: FaultConfig, seed: u64) -> Self {
        Self {
            config,
            rng: Rng::derive(seed, 700, 0, 0),
        }
    }

    /// Draws the fault (if any) for a request on `queue` (`None` for token, dequeue and
    /// outbound requests that name no queue), and a delay for a slow answer.
    pub fn draw(&mut self, queue: Option<Queue>) -> (Option<RequestFault>, Option<Duration>) {
        let c = &self.config;
        if let Some(q) = queue {
            if c.forbidden_queues.contains(&q) {
                return (Some(RequestFault::Forbidden), None);
            }
            if c.outage_queues.contains(&q) {
                return (Some(RequestFault::Outage), None);
            }
        }
        let slow = self
            .rng
            .chance(c.slow_rate)
            .then(|| Duration::from_millis(c.slow_ms));
        let (server, many, revoke) = (
            c.server_error_rate,
            c.too_many_requests_rate,
            c.token_revoke_rate,
        );
        let retry_after = c.retry_after_secs;
        let fault = if self.rng.chance(server) {
            Some(RequestFault::ServerError(if self.rng.chance(0.5) {
                500
            } else {
                503
            }))
        } else if self.rng.chance(many) {
            Some(RequestFault::TooManyRequests(retry_after))
        } else if self.rng.chance(revoke) {
            Some(RequestFault::RevokeTokens)
        } else {
            None
        };
        (fault, slow)
    }

    /// Whether a just-dequeued message is delivered again.
    pub fn redeliver(&mut self) -> bool {
        let rate = self.config.duplicate_delivery_rate;
        self.rng.chance(rate)
    }
}

/// Makes an injected message's body from a valid document of the codec's writer.
pub fn corrupt(valid: &[u8], fault: InjectedFault) -> Vec<u8> {
    match fault {
        InjectedFault::MalformedJson => valid[..valid.len() * 3 / 5].to_vec(),
        InjectedFault::UnknownDocumentType => {
            let text = String::from_utf8_lossy(valid);
            let end = text.find("_MarketDocument").unwrap_or(0);
            let start = text[..end].rfind('"').map_or(0, |i| i + 1);
            format!("{}NotifyUnannouncedThing{}", &text[..start], &text[end..]).into_bytes()
        }
        InjectedFault::SchemaInvalid => {
            // An unknown header property: the schemas say `additionalProperties: false`.
            let text = String::from_utf8_lossy(valid);
            let open = text
                .find("_MarketDocument")
                .and_then(|i| text[i..].find('{').map(|j| i + j + 1))
                .unwrap_or(0);
            format!(
                "{}\n    \"INVALID.mRID\": \"simulated schema violation\",{}",
                &text[..open],
                &text[open..]
            )
            .into_bytes()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str =
        r#"{"NotifyValidatedMeasureData_MarketDocument": {"mRID": "x", "Series": []}}"#;

    #[test]
    fn corruptions_break_what_they_say() {
        let malformed = corrupt(DOC.as_bytes(), InjectedFault::MalformedJson);
        assert!(serde_json::from_slice::<serde_json::Value>(&malformed).is_err());
        let unknown = corrupt(DOC.as_bytes(), InjectedFault::UnknownDocumentType);
        let v: serde_json::Value = serde_json::from_slice(&unknown).expect("still JSON");
        assert!(v.get("NotifyUnannouncedThing_MarketDocument").is_some());
        let invalid = corrupt(DOC.as_bytes(), InjectedFault::SchemaInvalid);
        let v: serde_json::Value = serde_json::from_slice(&invalid).expect("still JSON");
        assert!(
            v["NotifyValidatedMeasureData_MarketDocument"]
                .get("INVALID.mRID")
                .is_some()
        );
    }

    #[test]
    fn switches_win_over_rates_and_rates_are_drawn() {
        let mut state = FaultState::new(
            FaultConfig {
                forbidden_queues: vec![Queue::Charges],
                server_error_rate: 0.5,
                ..FaultConfig::default()
            },
            1,
        );
        assert_eq!(
            state.draw(Some(Queue::Charges)).0,
            Some(RequestFault::Forbidden)
        );
        let errors = (0..1000)
            .filter(|_| {
                matches!(
                    state.draw(Some(Queue::Timeseries)).0,
                    Some(RequestFault::ServerError(_))
                )
            })
            .count();
        assert!((400..600).contains(&errors), "{errors}");
    }
}

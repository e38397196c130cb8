//! Personal data in what DataHub sends, sealed before it is published or logged (decision
//! 0147): an RSM-028 names the customer by CPR/CVR and name. The poller calls [`seal`] on
//! every peeked bundle; the raw topic and the inbound-message log get the sealed bytes
//! (`sealed:identity:<seal>`, `sealed:name:<seal>`, the portfolio's keyring,
//! [`afregning_portfolio::inbound`]). A bundle that names customers and cannot be sealed (no
//! keyring, a number that is no CPR/CVR) is neither published, logged nor dequeued: its
//! queue stops with the reason, which names no personal data, and nothing is lost.

use std::sync::Arc;

use afregning_portfolio::inbound::{InboundSealError, seal_customer_data};
use afregning_portfolio::personal::Keyring;
use bytes::Bytes;

use crate::ConnectError;
use crate::config::ConnectConfig;

/// The portfolio keyring: `outbound.portfolio_key_file`, else `AFREGNING_PORTFOLIO_KEYS` /
/// `AFREGNING_PORTFOLIO_KEY_FILE`, else none. A configured file that cannot be read is an
/// error at start.
pub fn portfolio_keyring(config: &ConnectConfig) -> Result<Option<Arc<Keyring>>, ConnectError> {
    Ok(match &config.outbound.portfolio_key_file {
        Some(path) => Some(Arc::new(Keyring::load(path).map_err(|e| {
            ConnectError::Config(format!(
                "outbound.portfolio_key_file {}: {e}",
                path.display()
            ))
        })?)),
        None => Keyring::from_env().ok().map(Arc::new),
    })
}

/// The key store's pool (lazy: the connector starts while the database comes up), from
/// `outbound.portfolio_key_store_url` or `AFREGNING_PORTFOLIO_KEY_STORE_URL`; `None` when
/// neither names one (decision 0148).
pub fn key_store(config: &ConnectConfig) -> Result<Option<sqlx::PgPool>, ConnectError> {
    let url = config
        .outbound
        .portfolio_key_store_url
        .clone()
        .or_else(afregning_portfolio::customer_keys::key_store_url_from_env);
    url.map(|url| {
        sqlx::postgres::PgPoolOptions::new()
            .max_connections(2)
            .acquire_timeout(std::time::Duration::from_secs(10))
            .connect_lazy(&url)
            .map_err(|e| ConnectError::Config(format!("the portfolio key store URL: {e}")))
    })
    .transpose()
}

/// Seals an inbound `body` that names customers under a key of its own from the key store, so
/// erasing the customer it turns out to concern reaches it (decision 0148); without a key
/// store, under the deployment keyring (erased only when that key is retired). Unchanged when
/// it names none; `Err` (as a reason naming no personal data) when it must not be published.
pub async fn seal_inbound(
    body: Bytes,
    keyring: Option<&Keyring>,
    key_store: Option<&sqlx::PgPool>,
) -> Result<Bytes, SealFailure> {
    match (keyring, key_store) {
        (Some(deployment), Some(pool)) if afregning_portfolio::inbound::names_customers(&body) => {
            let ring = afregning_portfolio::customer_keys::message_key(pool, deployment)
                .await
                .map_err(|e| SealFailure::KeyStore(e.to_string()))?;
            seal(body, Some(&ring)).map_err(SealFailure::Unsealable)
        }
        _ => seal(body, keyring).map_err(SealFailure::Unsealable),
    }
}

/// Why an inbound message was not sealed.
#[derive(Debug)]
pub enum SealFailure {
    /// It cannot be sealed (no keyring, a bad customer id): its queue stops.
    Unsealable(InboundSealError),
    /// The key store did not answer: try again later.
    KeyStore(String),
}

/// `body` with its customers sealed (unchanged when it names none); `Err` when it must not be
/// published.
pub fn seal(body: Bytes, keyring: Option<&Keyring>) -> Result<Bytes, InboundSealError> {
    Ok(match seal_customer_data(&body, keyring)? {
        Some(sealed) => {
            metrics::counter!(crate::metrics::SEALED).increment(1);
            Bytes::from(sealed)
        }
        None => body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_customer_is_sealed_with_the_keyring_and_refused_without() {
        let body = Bytes::from_static(
            br#"{"X_MarketDocument": {"MktActivityRecord": [{"firstCustomer_MarketParticipant.mRID": {"codingScheme": "ARR", "value": "0801741527"}, "firstCustomer_MarketParticipant.name": "Jens Testesen"}]}}"#,
        );
        let mut keys = Keyring::default();
        keys.generate("k1").expect("key");
        let sealed = seal(body.clone(), Some(&keys)).expect("sealed");
        let text = String::from_utf8_lossy(&sealed);
        assert!(!text.contains("0801741527") && !text.contains("Jens"));
        assert_eq!(seal(body, None), Err(InboundSealError::NoKeyring));
        let plain = Bytes::from_static(br#"{"Y_MarketDocument": {}}"#);
        assert_eq!(seal(plain.clone(), None), Ok(plain));
    }
}

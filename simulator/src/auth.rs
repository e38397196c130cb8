//! OAuth2 client credentials, as DataHub's Entra ID tenant issues them: a token endpoint
//! that checks the client id and secret and hands out bearer tokens with a lifetime, and a
//! check of the bearer token on every B2B call (401 when missing, unknown or expired).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::scenario::rng::Rng;

/// Credentials the simulator accepts and the lifetime of its tokens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// The accepted client id.
    pub client_id: String,
    /// The accepted client secret.
    pub client_secret: String,
    /// Token lifetime in seconds (DataHub: 3600; tests use 60 or less).
    pub token_lifetime_secs: u64,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            client_id: "afregning-demo".into(),
            client_secret: "demo-secret".into(),
            token_lifetime_secs: 3600,
        }
    }
}

/// Why a bearer token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenProblem {
    /// No `Authorization: Bearer` header.
    Missing,
    /// Never issued, or revoked.
    Unknown,
    /// Past its lifetime.
    Expired,
}

/// Issued tokens.
#[derive(Debug)]
pub struct TokenStore {
    issued: HashMap<String, Instant>,
    rng: Rng,
}

impl TokenStore {
    /// A store whose tokens are drawn from `seed` (tokens of a simulator are not secrets).
    pub fn new(seed: u64) -> Self {
        Self {
            issued: HashMap::new(),
            rng: Rng::derive(seed, 800, 0, 0),
        }
    }

    /// Issues a token valid for `lifetime` from `now`.
    pub fn issue(&mut self, now: Instant, lifetime: Duration) -> String {
        let token = format!(
            "sim.{:016x}{:016x}",
            self.rng.next_u64(),
            self.rng.next_u64()
        );
        self.issued.retain(|_, expires| *expires > now);
        self.issued.insert(token.clone(), now + lifetime);
        token
    }

    /// Checks an `Authorization` header value.
    pub fn check(&self, authorization: Option<&str>, now: Instant) -> Result<(), TokenProblem> {
        let token = authorization
            .and_then(|h| h.strip_prefix("Bearer "))
            .ok_or(TokenProblem::Missing)?;
        match self.issued.get(token.trim()) {
            None => Err(TokenProblem::Unknown),
            Some(expires) if *expires <= now => Err(TokenProblem::Expired),
            Some(_) => Ok(()),
        }
    }

    /// Revokes every token (the token-expiry-mid-run fault).
    pub fn revoke_all(&mut self) {
        self.issued.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_expire_and_can_be_revoked() {
        let now = Instant::now();
        let mut store = TokenStore::new(1);
        let token = store.issue(now, Duration::from_secs(60));
        let header = format!("Bearer {token}");
        assert_eq!(store.check(Some(&header), now), Ok(()));
        assert_eq!(
            store.check(Some(&header), now + Duration::from_secs(60)),
            Err(TokenProblem::Expired)
        );
        assert_eq!(store.check(None, now), Err(TokenProblem::Missing));
        store.revoke_all();
        assert_eq!(store.check(Some(&header), now), Err(TokenProblem::Unknown));
    }
}

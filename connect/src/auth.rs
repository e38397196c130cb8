//! OAuth2 client credentials against DataHub's Entra ID tenant: fetch a token, cache it,
//! renew it before it expires, and drop it when DataHub answers 401 so the next call fetches
//! a fresh one (the client refreshes once per 401, see [`crate::client`]).
//!
//! The client secret leaves the process only in the token request's form body; neither it
//! nor a token is ever logged.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Deserialize;
use tokio::sync::Mutex;

use crate::config::DataHubConfig;

/// Why no token could be had.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The token endpoint could not be reached or timed out (retry).
    #[error("token endpoint unreachable: {0}")]
    Transport(String),
    /// The token endpoint answered an error status.
    #[error("token endpoint answered {status}: {error}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// The OAuth2 `error` code (`invalid_client`, …) or a short body excerpt.
        error: String,
    },
    /// The answer was not a token.
    #[error("token endpoint answered something that is not a token: {0}")]
    Malformed(String),
}

impl AuthError {
    /// Whether a later attempt may succeed without a configuration change.
    pub fn is_retriable(&self) -> bool {
        match self {
            AuthError::Transport(_) | AuthError::Malformed(_) => true,
            AuthError::Refused { status, .. } => *status >= 500 || *status == 429,
        }
    }
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    expires_in: u64,
}

struct Cached {
    token: Arc<str>,
    renew_at: Instant,
    expires_at: Instant,
}

/// Fetches, caches and renews the bearer token.
pub struct AuthManager {
    http: reqwest::Client,
    config: DataHubConfig,
    cached: Mutex<Option<Cached>>,
}

impl std::fmt::Debug for AuthManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthManager")
            .field("token_url", &self.config.token_url)
            .field("client_id", &self.config.client_id)
            .finish_non_exhaustive()
    }
}

impl AuthManager {
    /// A manager for these credentials.
    pub fn new(http: reqwest::Client, config: DataHubConfig) -> Self {
        Self {
            http,
            config,
            cached: Mutex::new(None),
        }
    }

    /// A valid token: the cached one until its renewal time, else a fresh one.
    pub async fn token(&self) -> Result<Arc<str>, AuthError> {
        let mut cached = self.cached.lock().await;
        let now = Instant::now();
        if let Some(c) = cached.as_ref()
            && now < c.renew_at
            && now < c.expires_at
        {
            return Ok(Arc::clone(&c.token));
        }
        let fresh = self.fetch().await?;
        let token = Arc::clone(&fresh.token);
        *cached = Some(fresh);
        Ok(token)
    }

    /// Forgets `token` if it is the cached one (DataHub answered 401 with it).
    pub async fn invalidate(&self, token: &str) {
        let mut cached = self.cached.lock().await;
        if cached.as_ref().is_some_and(|c| &*c.token == token) {
            *cached = None;
        }
    }

    async fn fetch(&self) -> Result<Cached, AuthError> {
        let started = Instant::now();
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", self.config.client_id.as_str()),
            ("client_secret", self.config.client_secret.expose()),
            ("scope", self.config.scope.as_str()),
        ];
        let response = self
            .http
            .post(&self.config.token_url)
            .form(&form)
            .send()
            .await
            .map_err(|e| AuthError::Transport(e.without_url().to_string()))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|e| AuthError::Transport(e.without_url().to_string()))?;
        if !status.is_success() {
            let error = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_string))
                .unwrap_or_else(|| {
                    String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned()
                });
            return Err(AuthError::Refused {
                status: status.as_u16(),
                error,
            });
        }
        let parsed: TokenResponse =
            serde_json::from_slice(&body).map_err(|e| AuthError::Malformed(e.to_string()))?;
        let lifetime = Duration::from_secs(parsed.expires_in);
        let margin = Duration::from_millis(self.config.renew_before_ms).min(lifetime / 4);
        metrics::counter!(crate::metrics::TOKEN_REFRESHES).increment(1);
        tracing::info!(
            lifetime_s = parsed.expires_in,
            renew_in_s = (lifetime - margin).as_secs(),
            "fetched a DataHub access token"
        );
        Ok(Cached {
            token: Arc::from(parsed.access_token),
            renew_at: started + lifetime - margin,
            expires_at: started + lifetime,
        })
    }
}

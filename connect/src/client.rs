//! DataHub's B2B API as calls: peek, dequeue and post, with the bearer token, one refresh on
//! 401, the shared request-rate limit (governor), and every failure classified so that the
//! callers know whether to retry, back off, or stop.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, RETRY_AFTER};
use reqwest::{RequestBuilder, StatusCode};

use crate::auth::{AuthError, AuthManager};
use crate::backoff::parse_retry_after;
use crate::config::Queue;

/// A failed call.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Still 401 after fetching a fresh token.
    #[error("401 unauthorized, also with a fresh token")]
    Unauthorized,
    /// 403: this actor may not use this queue or endpoint.
    #[error("403 forbidden")]
    Forbidden,
    /// 429.
    #[error("429 too many requests (Retry-After {retry_after:?})")]
    RateLimited {
        /// DataHub's `Retry-After`.
        retry_after: Option<Duration>,
    },
    /// 5xx.
    #[error("server error {0}")]
    Server(u16),
    /// The request timed out.
    #[error("timed out")]
    Timeout,
    /// Connection refused, reset, DNS, TLS, …
    #[error("transport error: {0}")]
    Transport(String),
    /// Another 4xx (400, 404, 415, …), with the start of the body.
    #[error("{status}: {body}")]
    Client {
        /// HTTP status.
        status: u16,
        /// Body excerpt.
        body: String,
    },
    /// The answer broke the protocol (a 200 peek without `MessageId`).
    #[error("protocol violation: {0}")]
    Protocol(String),
    /// No token.
    #[error(transparent)]
    Auth(#[from] AuthError),
}

impl ApiError {
    /// The `kind` label of `afregning_connect_errors_total`.
    pub fn kind(&self) -> &'static str {
        match self {
            ApiError::Unauthorized => "unauthorized",
            ApiError::Forbidden => "forbidden",
            ApiError::RateLimited { .. } => "rate_limited",
            ApiError::Server(_) => "server_error",
            ApiError::Timeout => "timeout",
            ApiError::Transport(_) => "transport",
            ApiError::Client { .. } => "client_error",
            ApiError::Protocol(_) => "protocol",
            ApiError::Auth(_) => "auth",
        }
    }
}

fn transport(error: reqwest::Error) -> ApiError {
    if error.is_timeout() {
        ApiError::Timeout
    } else {
        ApiError::Transport(error.without_url().to_string())
    }
}

async fn status_error(response: reqwest::Response) -> ApiError {
    let status = response.status();
    let retry_after = response
        .headers()
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, chrono::Utc::now()));
    match status {
        StatusCode::UNAUTHORIZED => ApiError::Unauthorized,
        StatusCode::FORBIDDEN => ApiError::Forbidden,
        StatusCode::TOO_MANY_REQUESTS => ApiError::RateLimited { retry_after },
        s if s.is_server_error() => ApiError::Server(s.as_u16()),
        s => {
            let body = response.text().await.unwrap_or_default();
            ApiError::Client {
                status: s.as_u16(),
                body: body.chars().take(500).collect(),
            }
        }
    }
}

/// A peeked message.
#[derive(Debug, Clone)]
pub struct Peeked {
    /// The `MessageId` header.
    pub message_id: String,
    /// The response's `Content-Type`.
    pub content_type: String,
    /// The bundle, as received.
    pub body: Bytes,
}

/// A dequeue's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dequeued {
    /// 200.
    Done,
    /// 400: DataHub does not know the id, i.e. it was dequeued already (by an earlier attempt
    /// whose answer was lost). The message is on the broker either way.
    Unknown,
}

/// An answer to a POST that is not a transient failure.
#[derive(Debug, Clone)]
pub struct PostAnswer {
    /// HTTP status (202 accepted; 4xx rejected).
    pub status: u16,
    /// The body (DataHub's error document on 400).
    pub body: String,
    /// DataHub's `CorrelationId` header.
    pub correlation_id: Option<String>,
}

/// The B2B API client.
pub struct DataHubClient {
    http: reqwest::Client,
    base_url: String,
    auth: Arc<AuthManager>,
    limiter: Arc<DefaultDirectRateLimiter>,
}

impl std::fmt::Debug for DataHubClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataHubClient")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

fn encode_segment(segment: &str) -> String {
    segment
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

impl DataHubClient {
    /// A client for `base_url` with `requests_per_second` for all calls together.
    pub fn new(
        http: reqwest::Client,
        base_url: &str,
        auth: Arc<AuthManager>,
        requests_per_second: u32,
    ) -> Self {
        let rate = NonZeroU32::new(requests_per_second).unwrap_or(NonZeroU32::MIN);
        Self {
            http,
            base_url: base_url.trim_end_matches('/').to_string(),
            auth,
            limiter: Arc::new(RateLimiter::direct(Quota::per_second(rate))),
        }
    }

    async fn send(
        &self,
        build: impl Fn(&str) -> RequestBuilder,
    ) -> Result<reqwest::Response, ApiError> {
        self.limiter.until_ready().await;
        let token = self.auth.token().await?;
        let response = build(&token).send().await.map_err(transport)?;
        if response.status() != StatusCode::UNAUTHORIZED {
            return Ok(response);
        }
        // One refresh per 401: the token may have been revoked or expired early.
        self.auth.invalidate(&token).await;
        let token = self.auth.token().await?;
        self.limiter.until_ready().await;
        let response = build(&token).send().await.map_err(transport)?;
        if response.status() == StatusCode::UNAUTHORIZED {
            return Err(ApiError::Unauthorized);
        }
        Ok(response)
    }

    /// `GET /v1.0/cim/{queue}`: `None` when the queue is empty (204).
    pub async fn peek(&self, queue: Queue) -> Result<Option<Peeked>, ApiError> {
        let url = format!("{}/v1.0/cim/{}", self.base_url, queue.as_str());
        let response = self
            .send(|token| {
                self.http
                    .get(&url)
                    .header(AUTHORIZATION, format!("Bearer {token}"))
                    .header(CONTENT_TYPE, "application/json")
            })
            .await?;
        match response.status() {
            StatusCode::NO_CONTENT => Ok(None),
            StatusCode::OK => {
                let headers: HeaderMap = response.headers().clone();
                let message_id = headers
                    .get("MessageId")
                    .and_then(|v| v.to_str().ok())
                    .map(|v| v.trim().to_string())
                    .filter(|v| !v.is_empty())
                    .ok_or_else(|| ApiError::Protocol("200 without a MessageId header".into()))?;
                let content_type = headers
                    .get(CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("application/json")
                    .to_string();
                let body = response.bytes().await.map_err(transport)?;
                Ok(Some(Peeked {
                    message_id,
                    content_type,
                    body,
                }))
            }
            _ => Err(status_error(response).await),
        }
    }

    /// `DELETE /v1.0/cim/dequeue/{MessageId}`.
    pub async fn dequeue(&self, message_id: &str) -> Result<Dequeued, ApiError> {
        let url = format!(
            "{}/v1.0/cim/dequeue/{}",
            self.base_url,
            encode_segment(message_id)
        );
        let response = self
            .send(|token| {
                self.http
                    .delete(&url)
                    .header(AUTHORIZATION, format!("Bearer {token}"))
            })
            .await?;
        match response.status() {
            s if s.is_success() => Ok(Dequeued::Done),
            StatusCode::BAD_REQUEST => Ok(Dequeued::Unknown),
            _ => Err(status_error(response).await),
        }
    }

    /// `POST /v1.0/cim/{documenttype}`: `Ok` for 2xx and 4xx other than 401/403/429 (the
    /// answer to record), `Err` for what is worth retrying or stops the sender.
    pub async fn post(&self, document_type: &str, body: &str) -> Result<PostAnswer, ApiError> {
        let url = format!(
            "{}/v1.0/cim/{}",
            self.base_url,
            encode_segment(document_type)
        );
        let response = self
            .send(|token| {
                self.http
                    .post(&url)
                    .header(AUTHORIZATION, format!("Bearer {token}"))
                    .header(CONTENT_TYPE, "application/json")
                    .body(body.to_string())
            })
            .await?;
        let status = response.status();
        if status.is_success()
            || (status.is_client_error()
                && ![
                    StatusCode::FORBIDDEN,
                    StatusCode::TOO_MANY_REQUESTS,
                    StatusCode::UNAUTHORIZED,
                ]
                .contains(&status))
        {
            let correlation_id = response
                .headers()
                .get("CorrelationId")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let body = response.text().await.map_err(transport)?;
            return Ok(PostAnswer {
                status: status.as_u16(),
                body,
                correlation_id,
            });
        }
        Err(status_error(response).await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_ids_are_encoded_as_one_path_segment() {
        assert_eq!(encode_segment("0a1b-2c"), "0a1b-2c");
        assert_eq!(encode_segment("a/b c"), "a%2Fb%20c");
    }
}

//! One poller per queue, each on its own task: peek, produce, dequeue, repeat.
//!
//! - 200: split, produce every part and await every acknowledgement while the bundle is
//!   written to the inbound-message log; only when both succeeded, dequeue. The next peek
//!   follows at once: a queue with messages is drained without waiting.
//! - 204: wait the queue's idle interval, doubling per consecutive 204 up to its maximum.
//! - 5xx, timeouts, transport errors, a failed produce: exponential backoff with jitter,
//!   then peek again (DataHub returns the same bundle; producing it again is harmless).
//! - 429: wait `Retry-After` when given, else back off.
//! - 401: the client refreshes the token once per call; a second 401 backs off.
//! - 403: this queue stops, with an alert-level log and `afregning_connect_queue_stopped`;
//!   the other queues go on. So does a bundle with customers' personal data that cannot be
//!   sealed (no portfolio keyring; [`crate::sealing`]): it is not published, logged or
//!   dequeued.
//!
//! A dequeue that fails is retried (it never triggers a second produce by itself); a dequeue
//! answered 400 (unknown id) means an earlier attempt succeeded and its answer was lost.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use tokio::sync::watch;

use crate::backoff::{Backoff, IdleBackoff};
use crate::client::{ApiError, DataHubClient, Dequeued, Peeked};
use crate::config::{BackoffConfig, Queue, QueueConfig};
use crate::inbound_log::{InboundLog, sha256_hex};
use crate::metrics as m;
use crate::publish::{BundleMeta, PublishError, RawPublisher, SplitKind};
use crate::{ConnectorEvent, Observer, Status};

/// What a poller shares with the others.
pub(crate) struct PollerContext {
    pub(crate) client: Arc<DataHubClient>,
    pub(crate) publisher: Arc<RawPublisher>,
    pub(crate) log: Arc<InboundLog>,
    pub(crate) retry: BackoffConfig,
    pub(crate) observer: Option<Observer>,
    pub(crate) status: Status,
    /// The portfolio keyring that seals customers' personal data before publishing.
    pub(crate) keyring: Option<Arc<afregning_portfolio::personal::Keyring>>,
    /// The key store where each sealed inbound message gets a key of its own (decision 0148).
    pub(crate) key_store: Option<sqlx::PgPool>,
}

impl PollerContext {
    fn emit(&self, event: ConnectorEvent) {
        if let Some(observer) = &self.observer {
            observer(event);
        }
    }
}

enum Failure {
    /// Back off (error kind, an explicit wait if the server gave one).
    Retry(&'static str, Option<Duration>),
    /// Stop this queue.
    Stop(String),
    /// Shutdown was asked for.
    Shutdown,
}

/// Sleeps, or returns `false` at once when shutdown is signalled.
async fn sleep_or_stop(wait: Duration, stop: &mut watch::Receiver<bool>) -> bool {
    if *stop.borrow() {
        return false;
    }
    tokio::select! {
        () = tokio::time::sleep(wait) => true,
        _ = stop.changed() => false,
    }
}

fn set_backoff(queue: Queue, wait: Duration) {
    metrics::gauge!(m::BACKOFF_SECONDS, "queue" => queue.as_str()).set(wait.as_secs_f64());
}

fn count_error(queue: Queue, kind: &'static str) {
    metrics::counter!(m::ERRORS, "queue" => queue.as_str(), "kind" => kind).increment(1);
}

/// Polls one queue until shutdown or a 403.
pub(crate) async fn run(
    ctx: Arc<PollerContext>,
    queue: Queue,
    config: QueueConfig,
    mut stop: watch::Receiver<bool>,
) {
    let mut idle = IdleBackoff::new(
        Duration::from_millis(config.idle_interval_ms),
        Duration::from_millis(config.idle_max_ms),
    );
    let mut errors = Backoff::new(ctx.retry);
    metrics::gauge!(m::QUEUE_STOPPED, "queue" => queue.as_str()).set(0.0);
    ctx.status.set_running(queue);
    tracing::info!(%queue, "poller started");
    loop {
        if *stop.borrow() {
            break;
        }
        let started = Instant::now();
        let peeked = ctx.client.peek(queue).await;
        metrics::histogram!(m::PEEK_SECONDS, "queue" => queue.as_str())
            .record(started.elapsed().as_secs_f64());
        let failure = match peeked {
            Ok(None) => {
                errors.reset();
                let wait = idle.next_wait();
                set_backoff(queue, wait);
                if !sleep_or_stop(wait, &mut stop).await {
                    break;
                }
                continue;
            }
            Ok(Some(message)) => {
                idle.reset();
                set_backoff(queue, Duration::ZERO);
                match deliver(&ctx, queue, message, started, &mut stop).await {
                    Ok(()) => {
                        errors.reset();
                        continue;
                    }
                    Err(failure) => failure,
                }
            }
            Err(ApiError::Forbidden) => Failure::Stop("403 forbidden on peek".into()),
            Err(ApiError::RateLimited { retry_after }) => {
                Failure::Retry("rate_limited", retry_after)
            }
            Err(error) => {
                tracing::warn!(%queue, %error, "peek failed");
                Failure::Retry(error.kind(), None)
            }
        };
        match failure {
            Failure::Shutdown => break,
            Failure::Stop(reason) => {
                count_error(queue, "forbidden");
                metrics::gauge!(m::QUEUE_STOPPED, "queue" => queue.as_str()).set(1.0);
                tracing::error!(alert = true, %queue, %reason, "DataHub queue stopped (403, or a bundle that cannot be delivered without loss or plaintext); the other queues go on");
                ctx.status.set_stopped(queue, &reason);
                ctx.emit(ConnectorEvent::QueueStopped {
                    queue,
                    reason,
                    at: Instant::now(),
                });
                return;
            }
            Failure::Retry(kind, explicit) => {
                count_error(queue, kind);
                let wait = explicit.unwrap_or_else(|| errors.next_wait());
                set_backoff(queue, wait);
                if !sleep_or_stop(wait, &mut stop).await {
                    break;
                }
            }
        }
    }
    ctx.status.set_idle(queue);
    tracing::info!(%queue, "poller stopped");
}

/// Produces a peeked bundle, logs it, and dequeues it once both are durable.
async fn deliver(
    ctx: &PollerContext,
    queue: Queue,
    message: Peeked,
    peek_started: Instant,
    stop: &mut watch::Receiver<bool>,
) -> Result<(), Failure> {
    let Peeked {
        message_id,
        content_type,
        body,
    } = message;
    metrics::counter!(m::MESSAGES_RECEIVED, "queue" => queue.as_str()).increment(1);
    metrics::counter!(m::BYTES_RECEIVED, "queue" => queue.as_str()).increment(body.len() as u64);
    let received_at = Utc::now();
    // Personal data is sealed before anything is published or logged (decision 0147).
    let body = match crate::sealing::seal_inbound(
        body,
        ctx.keyring.as_deref(),
        ctx.key_store.as_ref(),
    )
    .await
    {
        Ok(body) => body,
        Err(crate::sealing::SealFailure::KeyStore(error)) => {
            count_error(queue, "key_store");
            tracing::warn!(%queue, %message_id, %error, "the portfolio key store did not answer; the message stays queued");
            return Err(Failure::Retry("key_store", None));
        }
        Err(crate::sealing::SealFailure::Unsealable(error)) => {
            metrics::counter!(m::UNSEALABLE, "queue" => queue.as_str()).increment(1);
            return Err(Failure::Stop(format!(
                "message {message_id} is not published, logged or dequeued: {error}"
            )));
        }
    };
    let produce_started = Instant::now();
    let sha256 = sha256_hex(&body);
    let (parts, split) = crate::publish::split(&body);
    if let SplitKind::Whole(reason) = &split {
        count_error(queue, "unsplittable");
        tracing::warn!(%queue, %message_id, %reason, "bundle cannot be split; producing it whole for the validator to dead-letter");
    }
    let log = Arc::clone(&ctx.log);
    let (log_id, log_body) = (message_id.clone(), body.clone());
    let logged =
        tokio::task::spawn_blocking(move || log.append(queue, &log_id, received_at, &log_body));
    let meta = BundleMeta {
        queue,
        message_id: &message_id,
        content_type: &content_type,
        received_at,
        sha256: &sha256,
    };
    let produced = ctx.publisher.publish(&meta, &parts, &split).await;
    let logged = logged.await;
    metrics::histogram!(m::PRODUCE_SECONDS, "queue" => queue.as_str())
        .record(produce_started.elapsed().as_secs_f64());
    match logged {
        Ok(Ok(_)) => {}
        Ok(Err(error)) => {
            tracing::error!(%queue, %message_id, %error, "inbound log write failed; not dequeuing");
            return Err(Failure::Retry("inbound_log", None));
        }
        Err(error) => {
            tracing::error!(%queue, %message_id, %error, "inbound log task failed; not dequeuing");
            return Err(Failure::Retry("inbound_log", None));
        }
    }
    let records = match produced {
        Ok(records) => records,
        Err(error @ PublishError::TooLarge { .. }) => {
            return Err(Failure::Stop(format!(
                "{error}: cannot be delivered without loss"
            )));
        }
        Err(error) => {
            tracing::warn!(%queue, %message_id, %error, "produce not acknowledged; not dequeuing, the bundle will be peeked again");
            return Err(Failure::Retry(error.kind(), None));
        }
    };
    metrics::counter!(m::RECORDS_PRODUCED, "queue" => queue.as_str()).increment(records as u64);
    ctx.emit(ConnectorEvent::Acknowledged {
        queue,
        message_id: message_id.clone(),
        records,
        at: Instant::now(),
    });
    let mut backoff = Backoff::new(ctx.retry);
    loop {
        let started = Instant::now();
        match ctx.client.dequeue(&message_id).await {
            Ok(outcome) => {
                metrics::histogram!(m::DEQUEUE_SECONDS, "queue" => queue.as_str())
                    .record(started.elapsed().as_secs_f64());
                metrics::histogram!(m::CYCLE_SECONDS, "queue" => queue.as_str())
                    .record(peek_started.elapsed().as_secs_f64());
                metrics::counter!(m::MESSAGES_DEQUEUED, "queue" => queue.as_str()).increment(1);
                if outcome == Dequeued::Unknown {
                    tracing::warn!(%queue, %message_id, "dequeue answered 400 (unknown id): an earlier attempt succeeded");
                }
                tracing::debug!(%queue, %message_id, records, "delivered and dequeued");
                ctx.emit(ConnectorEvent::Dequeued {
                    queue,
                    message_id,
                    outcome,
                    cycle: peek_started.elapsed(),
                    at: Instant::now(),
                });
                return Ok(());
            }
            Err(ApiError::Forbidden) => {
                return Err(Failure::Stop("403 forbidden on dequeue".into()));
            }
            Err(error) => {
                count_error(queue, error.kind());
                let wait = match error {
                    ApiError::RateLimited {
                        retry_after: Some(wait),
                    } => wait,
                    _ => backoff.next_wait(),
                };
                tracing::warn!(%queue, %message_id, %error, ?wait, "dequeue failed; retrying");
                if !sleep_or_stop(wait, stop).await {
                    return Err(Failure::Shutdown);
                }
            }
        }
    }
}

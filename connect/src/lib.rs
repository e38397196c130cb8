//! The DataHub 3 connector: the only way data enters afregning.
//!
//! It keeps DataHub's at-least-once contract end to end: a message is dequeued only after the
//! broker has durably accepted every record of it (idempotent producer, `acks=all`, every
//! delivery report awaited) and its bytes are in the inbound-message log; duplicates are
//! harmless because every record carries the MessageId and consumers deduplicate by it; faults
//! never lose a message because nothing is dequeued that is not on the broker; and one slow
//! queue never blocks another because each queue has its own poller task and backoff.
//!
//! - [`config`]: [`ConnectConfig`], serde with unknown keys refused and documented defaults.
//! - [`auth`]: OAuth2 client credentials, cached and renewed before expiry.
//! - [`client`]: peek, dequeue and post, rate-limited (governor), one token refresh per 401.
//! - `poller`: one task per queue (peek → produce + log → dequeue), backoff and jitter.
//! - [`publish`]: the lossless per-series split and the raw-topic producer.
//! - [`inbound_log`]: the compressed original bundles, append-only, fsynced.
//! - [`outbound`]: outbound-requests topic → `POST /v1.0/cim/{type}` → responses topic.
//! - [`spot_prices`]: Energi Data Service day-ahead prices → the spot-price topic.
//! - [`metrics`]: Prometheus metrics; `/health` and `/metrics` on the admin port.
//!
//! Run it in-process with [`Connector::start`]; `afregning connect run` does the same. See
//! `docs/connect.md`.

pub mod auth;
pub mod backoff;
pub mod client;
pub mod config;
pub mod inbound_log;
pub mod metrics;
pub mod outbound;
mod poller;
pub mod publish;
pub mod sealing;
pub mod spot_prices;

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use afregning_topology::{Catalogue, Codec};
use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use rdkafka::producer::{FutureProducer, Producer};
use serde::Serialize;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

pub use client::Dequeued;
pub use config::{ConnectConfig, Queue, Secret};

/// Something the connector did that a test (or an operator tool) may want to see, with the
/// instant it happened in this process's monotonic clock.
#[derive(Debug, Clone)]
pub enum ConnectorEvent {
    /// Every record of a bundle was acknowledged by the broker and the bundle is in the
    /// inbound log; the dequeue request comes after this.
    Acknowledged {
        /// The queue.
        queue: Queue,
        /// MessageId.
        message_id: String,
        /// Records produced.
        records: usize,
        /// When.
        at: Instant,
    },
    /// DataHub answered the dequeue.
    Dequeued {
        /// The queue.
        queue: Queue,
        /// MessageId.
        message_id: String,
        /// 200 or 400 (already gone).
        outcome: Dequeued,
        /// From the start of the peek to the dequeue's answer.
        cycle: Duration,
        /// When.
        at: Instant,
    },
    /// A queue's poller stopped (403).
    QueueStopped {
        /// The queue.
        queue: Queue,
        /// Why.
        reason: String,
        /// When.
        at: Instant,
    },
}

/// A callback for [`ConnectorEvent`]s (called on the poller's task: keep it quick).
pub type Observer = Arc<dyn Fn(ConnectorEvent) + Send + Sync>;

/// The state of one queue's poller, as `/health` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "state")]
pub enum QueueStatus {
    /// Polling.
    Running,
    /// Stopped after a 403.
    Stopped {
        /// Why.
        reason: String,
    },
    /// Not started, disabled, or shut down.
    Idle,
}

/// The pollers' states, shared with the admin endpoint.
#[derive(Debug, Clone, Default)]
pub struct Status(Arc<Mutex<BTreeMap<Queue, QueueStatus>>>);

impl Status {
    fn set(&self, queue: Queue, status: QueueStatus) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(queue, status);
    }
    pub(crate) fn set_running(&self, queue: Queue) {
        self.set(queue, QueueStatus::Running);
    }
    pub(crate) fn set_stopped(&self, queue: Queue, reason: &str) {
        self.set(
            queue,
            QueueStatus::Stopped {
                reason: reason.to_string(),
            },
        );
    }
    pub(crate) fn set_idle(&self, queue: Queue) {
        self.set(queue, QueueStatus::Idle);
    }

    /// Every queue's state.
    pub fn snapshot(&self) -> BTreeMap<Queue, QueueStatus> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// Why the connector could not start.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The configuration is invalid.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A file or socket could not be opened.
    #[error("{what}: {source}")]
    Io {
        /// What was being opened.
        what: String,
        /// The error.
        source: std::io::Error,
    },
    /// The Kafka client could not be created.
    #[error("kafka client: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    /// The HTTP client could not be created.
    #[error("http client: {0}")]
    Http(#[from] reqwest::Error),
}

/// Serves `/health` (200 while running, with each queue's state) and `/metrics`.
pub fn admin_router(status: Status) -> Router {
    Router::new()
        .route(
            "/health",
            get(move || {
                let status = status.clone();
                async move {
                    let body = serde_json::json!({ "status": "ok", "queues": status.snapshot() });
                    (
                        [(header::CONTENT_TYPE, "application/json")],
                        body.to_string(),
                    )
                }
            }),
        )
        .route(
            "/metrics",
            get(|| async {
                (
                    StatusCode::OK,
                    [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                    metrics::render(),
                )
                    .into_response()
            }),
        )
}

/// Binds the admin port and serves [`admin_router`] until `stop` turns true.
pub async fn serve_admin(
    addr: SocketAddr,
    router: Router,
    mut stop: watch::Receiver<bool>,
) -> Result<(SocketAddr, JoinHandle<()>), ConnectError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| ConnectError::Io {
            what: format!("binding the admin port {addr}"),
            source,
        })?;
    let bound = listener.local_addr().map_err(|source| ConnectError::Io {
        what: "admin port".into(),
        source,
    })?;
    let task = tokio::spawn(async move {
        let served = axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                let _ = stop.wait_for(|s| *s).await;
            })
            .await;
        if let Err(error) = served {
            tracing::error!(%error, "admin server stopped");
        }
    });
    Ok((bound, task))
}

/// The connector, configured.
pub struct Connector {
    config: ConnectConfig,
    observer: Option<Observer>,
}

/// A started connector.
pub struct RunningConnector {
    /// Where `/health` and `/metrics` are served.
    pub admin_addr: SocketAddr,
    /// The pollers' states.
    pub status: Status,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl RunningConnector {
    /// Asks every task to stop after its current step, waits for them (at most 10 s), and
    /// flushes the producer.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let mut task = self.task;
        if tokio::time::timeout(Duration::from_secs(15), &mut task)
            .await
            .is_err()
        {
            task.abort();
        }
    }

    /// Kills every task at once, wherever it is (a crash, for tests).
    pub async fn abort(self) {
        self.task.abort();
        let _ = self.task.await;
    }

    /// Resolves when the connector's tasks have all ended.
    pub async fn join(self) {
        let _ = self.task.await;
    }
}

impl Connector {
    /// A connector with this configuration.
    pub fn new(config: ConnectConfig) -> Self {
        Self {
            config,
            observer: None,
        }
    }

    /// Calls `observer` with every [`ConnectorEvent`].
    pub fn with_observer(mut self, observer: Observer) -> Self {
        self.observer = Some(observer);
        self
    }

    /// Validates, connects and starts every task; returns once they run.
    pub async fn start(self) -> Result<RunningConnector, ConnectError> {
        let config = self.config;
        config.validate().map_err(ConnectError::Config)?;
        metrics::install();
        let log = inbound_log::InboundLog::open(&config.inbound_log).map_err(|source| {
            ConnectError::Io {
                what: format!(
                    "opening the inbound log {}",
                    config.inbound_log.dir.display()
                ),
                source,
            }
        })?;
        match log.prune(chrono::Utc::now().date_naive()) {
            Ok(deleted) if !deleted.is_empty() => {
                tracing::info!(days = deleted.len(), "pruned the inbound log")
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "cannot prune the inbound log"),
        }
        let log = Arc::new(log);
        let http = reqwest::Client::builder()
            .timeout(config.request_timeout())
            .connect_timeout(Duration::from_millis(config.datahub.connect_timeout_ms))
            .pool_max_idle_per_host(16)
            .build()?;
        let auth = Arc::new(auth::AuthManager::new(http.clone(), config.datahub.clone()));
        let client = Arc::new(client::DataHubClient::new(
            http,
            &config.datahub.base_url,
            auth,
            config.requests_per_second,
        ));
        let catalogue = Catalogue::new(config.kafka.topology.clone())
            .map_err(|e| ConnectError::Config(e.to_string()))?;
        let codec = Codec::new(catalogue, &config.kafka.schema_registry_url);
        let producer: FutureProducer = publish::producer_config(&config.kafka).create()?;
        let publisher = Arc::new(publish::RawPublisher::new(
            producer.clone(),
            codec.clone(),
            config.kafka.max_record_bytes,
        ));
        let status = Status::default();
        let (stop, stop_rx) = watch::channel(false);
        let (admin_addr, admin_task) = serve_admin(
            config.admin_listen,
            admin_router(status.clone()),
            stop_rx.clone(),
        )
        .await?;
        tracing::info!(%admin_addr, base_url = %config.datahub.base_url, "connector started");

        let mut tasks = JoinSet::new();
        let ctx = Arc::new(poller::PollerContext {
            client: Arc::clone(&client),
            publisher,
            log: Arc::clone(&log),
            retry: config.retry,
            observer: self.observer,
            status: status.clone(),
            keyring: sealing::portfolio_keyring(&config)?,
            key_store: sealing::key_store(&config)?,
        });
        for queue in Queue::ALL {
            let queue_config = config.queues.get(queue);
            if queue_config.enabled {
                tasks.spawn(poller::run(
                    Arc::clone(&ctx),
                    queue,
                    queue_config,
                    stop_rx.clone(),
                ));
            } else {
                status.set_idle(queue);
            }
        }
        if config.outbound.enabled {
            let outbound = outbound::OutboundSender::new(&config, client, codec, producer.clone())?;
            tasks.spawn(outbound.run(stop_rx.clone()));
        }
        let prune_log = Arc::clone(&log);
        let mut prune_stop = stop_rx.clone();
        tasks.spawn(async move {
            loop {
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_secs(24 * 3600)) => {}
                    _ = prune_stop.changed() => return,
                }
                let log = Arc::clone(&prune_log);
                let _ =
                    tokio::task::spawn_blocking(move || log.prune(chrono::Utc::now().date_naive()))
                        .await;
            }
        });
        let task = tokio::spawn(async move {
            let _admin = AbortOnDrop(admin_task);
            while tasks.join_next().await.is_some() {}
            let _ =
                tokio::task::spawn_blocking(move || producer.flush(Duration::from_secs(5))).await;
        });
        Ok(RunningConnector {
            admin_addr,
            status,
            stop,
            task,
        })
    }

    /// Starts, runs until `shutdown` resolves, then stops cleanly.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<(), ConnectError> {
        let running = self.start().await?;
        shutdown.await;
        tracing::info!("connector shutting down");
        running.shutdown().await;
        Ok(())
    }
}

struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

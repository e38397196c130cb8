//! A DataHub 3 B2B API simulator and scenario generator.
//!
//! The connector is the only way data enters afregning, and DataHub cannot be called from a
//! test. This crate stands in for it: an axum server with DataHub's OAuth2 client-credentials
//! token endpoint, its peek/dequeue queues (`GET /v1.0/cim/{queue}`, `DELETE
//! /v1.0/cim/dequeue/{MessageId}`), its outbound endpoint (`POST /v1.0/cim/{documenttype}`),
//! an Energi Data Service–compatible spot-price endpoint (`GET /dataset/DayAheadPrices`),
//! fault injection, and an admin API with the ground truth and an ordered event log.
//!
//! The domain is pure and deterministic from a seed ([`scenario`], [`queues`], [`faults`],
//! [`ground_truth`], [`spot_prices`]); [`server`] is a thin axum layer. Every document is
//! written with the CIM codec's writers, so everything served validates against the real
//! schemas unless a fault says otherwise.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use afregning_simulator::{FaultConfig, ScenarioConfig, Simulator, SimulatorConfig};
//! let sim = Simulator::new(SimulatorConfig {
//!     scenario: ScenarioConfig { metering_points: 500, days: 3, ..ScenarioConfig::default() },
//!     faults: FaultConfig::every_fault(0.03),
//!     ..SimulatorConfig::default()
//! })?;
//! let running = sim.serve("127.0.0.1:0".parse()?).await?;
//! let truth = running.handle().ground_truth();
//! # let _ = truth; Ok(()) }
//! ```
//! See `docs/simulator.md`.

// Scenario tables read better spelled out than behind aliases.
#![allow(clippy::type_complexity)]

pub mod auth;
pub mod events;
pub mod expected;
pub mod faults;
pub mod ground_truth;
mod lifecycle;
mod lifecycle_requests;
pub mod notifications;
pub mod queues;
mod requests;
mod result_requests;
pub mod scenario;
pub mod server;
pub mod spot_prices;
pub mod wholesale;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use afregning_cim::Gsrn;
use bytes::Bytes;
use chrono::{DateTime, Days, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use auth::AuthConfig;
pub use events::{EnqueueReason, Event, EventKind, FaultKind};
pub use faults::{FaultConfig, InjectedFault};
pub use ground_truth::GroundTruth;
pub use queues::{Queue, QueueDepth};
pub use scenario::{ScenarioConfig, ScenarioError};

use auth::TokenStore;
use events::EventLog;
use faults::FaultState;
use queues::{Message, Queues};
use scenario::rng::Rng;

/// Everything the simulator needs: the scenario, the faults, the credentials and the clock.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SimulatorConfig {
    /// What to generate.
    pub scenario: ScenarioConfig,
    /// Which faults are on.
    pub faults: FaultConfig,
    /// Accepted credentials and token lifetime.
    pub auth: AuthConfig,
    /// The scenario time when the server starts (default: noon of the day after the last
    /// scenario day). Supplier switches take effect when the scenario clock passes their
    /// start date.
    pub scenario_now: Option<DateTime<Utc>>,
    /// Scenario seconds per wall-clock second (1.0: real time).
    pub time_scale: f64,
}

impl Default for SimulatorConfig {
    fn default() -> Self {
        Self {
            scenario: ScenarioConfig::default(),
            faults: FaultConfig::default(),
            auth: AuthConfig::default(),
            scenario_now: None,
            time_scale: 1.0,
        }
    }
}

/// Shared state behind the server and the handles.
pub(crate) struct Shared {
    pub(crate) config: SimulatorConfig,
    pub(crate) start: Instant,
    pub(crate) scenario_start: DateTime<Utc>,
    pub(crate) truth: Arc<GroundTruth>,
    pub(crate) queues: Mutex<Queues>,
    pub(crate) tokens: Mutex<TokenStore>,
    pub(crate) faults: Mutex<FaultState>,
    pub(crate) events: EventLog,
    pub(crate) messages: Mutex<HashMap<String, Arc<Message>>>,
    pub(crate) received: Mutex<HashSet<String>>,
    pub(crate) supplied: Mutex<HashSet<Gsrn>>,
    /// Rejects DataHub gives the next supplier switches (RSM-001) instead of a confirm
    /// (`SimulatorHandle::reject_next_switch`): reason code and text.
    pub(crate) switch_rejects: Mutex<std::collections::VecDeque<(String, String)>>,
    /// Rejects for the next move-out, correction or customer data requests
    /// (`SimulatorHandle::reject_next_lifecycle_request`): reason code and text.
    pub(crate) lifecycle_rejects: Mutex<std::collections::VecDeque<(String, String)>>,
    pub(crate) ids: Mutex<Rng>,
    /// DataHub's side of our supplies that began after the scenario ([`lifecycle`]).
    pub(crate) lifecycle: Mutex<lifecycle::Lifecycle>,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    /// Puts a message on its queue and records it.
    pub(crate) fn enqueue(&self, message: Message, reason: EnqueueReason) {
        let message = Arc::new(message);
        self.events.record(EventKind::Enqueued {
            queue: message.queue,
            message_id: message.id.clone(),
            reason,
        });
        lock(&self.messages).insert(message.id.clone(), Arc::clone(&message));
        lock(&self.queues).push(message);
    }

    /// The wall-clock instant at which the scenario clock reaches `t` (now if it has).
    pub(crate) fn instant_of(&self, t: DateTime<Utc>) -> Instant {
        let ahead = (t - self.scenario_start).num_milliseconds();
        if ahead <= 0 {
            return self.start;
        }
        let wall = ahead as f64 / 1000.0 / self.config.time_scale.max(1e-9);
        self.start + Duration::from_secs_f64(wall.min(1e9))
    }

    /// The scenario clock now.
    pub(crate) fn scenario_now(&self) -> DateTime<Utc> {
        let wall = self.start.elapsed().as_secs_f64() * self.config.time_scale;
        self.scenario_start + chrono::Duration::milliseconds((wall * 1000.0) as i64)
    }

    /// The ground truth with what the lifecycle delivered since the start.
    pub(crate) fn truth_now(&self) -> Arc<GroundTruth> {
        let lifecycle = lock(&self.lifecycle);
        if lifecycle.is_empty() {
            Arc::clone(&self.truth)
        } else {
            Arc::new(lifecycle.extend(&self.truth))
        }
    }

    /// A fresh id for answers (DataHub's GUIDs).
    pub(crate) fn guid(&self) -> String {
        lock(&self.ids).guid()
    }
}

/// A generated scenario, ready to serve.
pub struct Simulator {
    shared: Arc<Shared>,
}

impl Simulator {
    /// Generates the scenario and fills the queues.
    pub fn new(config: SimulatorConfig) -> Result<Self, ScenarioError> {
        if config.time_scale.is_nan() || config.time_scale <= 0.0 {
            return Err(ScenarioError::Config("time_scale must be > 0".into()));
        }
        let scenario = scenario::generate(&config.scenario, &config.faults)?;
        let start = Instant::now();
        let scenario_start = config.scenario_now.unwrap_or_else(|| {
            afregning_cim::resolution::local_midnight_utc(config.scenario.last_day() + Days::new(1))
                .unwrap_or_default()
                + chrono::Duration::hours(12)
        });
        let seed = config.scenario.seed;
        let supplied = scenario
            .truth
            .metering_points
            .iter()
            .map(|m| m.gsrn)
            .collect();
        let shared = Arc::new(Shared {
            faults: Mutex::new(FaultState::new(config.faults.clone(), seed)),
            tokens: Mutex::new(TokenStore::new(seed)),
            start,
            scenario_start,
            truth: Arc::new(scenario.truth),
            queues: Mutex::new(Queues::default()),
            events: EventLog::new(start),
            messages: Mutex::new(HashMap::new()),
            received: Mutex::new(HashSet::new()),
            supplied: Mutex::new(supplied),
            switch_rejects: Mutex::new(std::collections::VecDeque::new()),
            lifecycle_rejects: Mutex::new(std::collections::VecDeque::new()),
            ids: Mutex::new(Rng::derive(seed, 10, 0, 0)),
            lifecycle: Mutex::new(lifecycle::Lifecycle::default()),
            config,
        });
        for m in scenario.messages {
            let reason = match m.fault {
                Some(f) => EnqueueReason::Fault(f),
                None => EnqueueReason::Scenario,
            };
            shared.enqueue(
                Message {
                    id: m.id,
                    queue: m.queue,
                    body: m.body,
                    kind: m.kind,
                    transactions: m.transactions,
                    visible_at: start + m.release_after,
                    fault: m.fault,
                },
                reason,
            );
        }
        Ok(Self { shared })
    }

    /// A handle for inspecting and steering the simulator.
    pub fn handle(&self) -> SimulatorHandle {
        SimulatorHandle {
            shared: Arc::clone(&self.shared),
        }
    }

    /// The axum router (to mount elsewhere or drive with `tower::ServiceExt`).
    pub fn router(&self) -> axum::Router {
        server::router(Arc::clone(&self.shared))
    }

    /// Serves on `addr` (port 0 picks a free port) until [`RunningSimulator::shutdown`].
    pub async fn serve(self, addr: SocketAddr) -> std::io::Result<RunningSimulator> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let router = self.router();
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let served = axum::serve(listener, router)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await;
            if let Err(error) = served {
                tracing::error!(%error, "simulator server stopped");
            }
        });
        tracing::info!(%addr, "DataHub simulator listening");
        Ok(RunningSimulator {
            addr,
            url: format!("http://{addr}"),
            handle: self.handle(),
            shutdown: Some(tx),
            task,
        })
    }
}

/// A simulator serving on a socket.
pub struct RunningSimulator {
    /// The bound address.
    pub addr: SocketAddr,
    /// `http://addr`: the B2B base URL.
    pub url: String,
    handle: SimulatorHandle,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl RunningSimulator {
    /// The handle.
    pub fn handle(&self) -> &SimulatorHandle {
        &self.handle
    }

    /// The OAuth2 token URL (`{url}/oauth2/v2.0/token`).
    pub fn token_url(&self) -> String {
        format!("{}/oauth2/v2.0/token", self.url)
    }

    /// The Energi Data Service day-ahead price URL.
    pub fn spot_prices_url(&self) -> String {
        format!("{}/dataset/DayAheadPrices", self.url)
    }

    /// Stops serving (open connections are cut after one second).
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if tokio::time::timeout(Duration::from_secs(1), &mut self.task)
            .await
            .is_err()
        {
            self.task.abort();
        }
    }
}

/// Inspects and steers a simulator: ground truth, event log, queues, faults.
#[derive(Clone)]
pub struct SimulatorHandle {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for SimulatorHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimulatorHandle").finish_non_exhaustive()
    }
}

impl SimulatorHandle {
    /// The scenario's ground truth, with the metering points, charge links and metered days
    /// of the supplies that began later (a confirmed move-in or change of supplier).
    pub fn ground_truth(&self) -> Arc<GroundTruth> {
        self.shared.truth_now()
    }

    /// The event log so far.
    pub fn events(&self) -> Vec<Event> {
        self.shared.events.snapshot()
    }

    /// The events from position `seq` on.
    pub fn events_since(&self, seq: u64) -> Vec<Event> {
        self.shared.events.since(seq)
    }

    /// Depth of every queue now.
    pub fn queue_depths(&self) -> BTreeMap<Queue, QueueDepth> {
        lock(&self.shared.queues).depths(Instant::now())
    }

    /// Whether every queue is empty, scheduled messages included.
    pub fn is_empty(&self) -> bool {
        lock(&self.shared.queues).is_empty()
    }

    /// The body of any message ever enqueued, by MessageId.
    pub fn message_body(&self, message_id: &str) -> Option<Bytes> {
        lock(&self.shared.messages)
            .get(message_id)
            .map(|m| m.body.clone())
    }

    /// Every message ever enqueued: (queue, MessageId, fault), in enqueue order.
    pub fn enqueued(&self) -> Vec<(Queue, String, Option<InjectedFault>)> {
        let messages = lock(&self.shared.messages);
        self.events()
            .into_iter()
            .filter_map(|e| match e.kind {
                EventKind::Enqueued {
                    queue,
                    message_id,
                    reason,
                } if reason != EnqueueReason::Redelivery => {
                    let fault = messages.get(&message_id).and_then(|m| m.fault);
                    Some((queue, message_id, fault))
                }
                _ => None,
            })
            .collect()
    }

    /// The faults in force.
    pub fn faults(&self) -> FaultConfig {
        lock(&self.shared.faults).config.clone()
    }

    /// Replaces the faults in force.
    pub fn set_faults(&self, config: FaultConfig) {
        lock(&self.shared.faults).config = config;
    }

    /// Switches a queue's outage (503 on every peek) on or off.
    pub fn set_outage(&self, queue: Queue, on: bool) {
        let mut faults = lock(&self.shared.faults);
        faults.config.outage_queues.retain(|q| *q != queue);
        if on {
            faults.config.outage_queues.push(queue);
        }
    }

    /// Switches the dequeue black hole on or off.
    pub fn set_dequeue_blackhole(&self, on: bool) {
        lock(&self.shared.faults).config.dequeue_blackhole = on;
    }

    /// When the simulator started, in this process's monotonic clock.
    pub fn started_at(&self) -> Instant {
        self.shared.start
    }
}

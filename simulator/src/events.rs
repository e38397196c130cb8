//! The simulator's ordered event log: what was enqueued, peeked, dequeued and faulted, with
//! MessageIds and times, for tests to check the connector's order of operations against.
//!
//! Times are `Instant`s of this process (and milliseconds since start for JSON), so a test
//! running connector and simulator in one process can merge this log with the connector's
//! own events on one monotonic clock.

use std::sync::Mutex;
use std::time::Instant;

use serde::Serialize;

use crate::faults::InjectedFault;
use crate::queues::Queue;

/// Why a message was enqueued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EnqueueReason {
    /// Part of the generated scenario.
    Scenario,
    /// An injected faulty message.
    Fault(InjectedFault),
    /// The redelivery of an already dequeued message (duplicate-delivery fault).
    Redelivery,
    /// DataHub's answer to an outbound request.
    Answer,
    /// Master data released on a supplier switch's effective date.
    SwitchMasterData,
    /// A notification without a request of ours (RSM-004 takeover).
    Notification,
}

/// A request-level fault the simulator answered with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FaultKind {
    /// 503 because the queue is switched to an outage.
    Outage,
    /// 403 because the queue is switched to forbidden.
    Forbidden,
    /// A random 500/503.
    ServerError,
    /// 429 with Retry-After.
    TooManyRequests,
    /// A slow answer.
    Slow,
    /// Every token was revoked mid-run (this request gets 401).
    TokensRevoked,
    /// A dequeue was swallowed (never applied) by the black-hole switch.
    DequeueSwallowed,
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum EventKind {
    /// A message was put on a queue.
    Enqueued {
        /// The queue.
        queue: Queue,
        /// MessageId.
        message_id: String,
        /// Why.
        reason: EnqueueReason,
    },
    /// A peek returned a message.
    Peeked {
        /// The queue.
        queue: Queue,
        /// MessageId.
        message_id: String,
    },
    /// A message was dequeued.
    Dequeued {
        /// The queue.
        queue: Queue,
        /// MessageId.
        message_id: String,
    },
    /// A dequeue named an unknown id (400).
    DequeueUnknown {
        /// The id asked for.
        message_id: String,
    },
    /// A request got a fault instead of an answer.
    Fault {
        /// The queue, for peeks.
        queue: Option<Queue>,
        /// Which fault.
        fault: FaultKind,
        /// The MessageId, for dequeues.
        message_id: Option<String>,
    },
    /// A token was issued.
    TokenIssued,
    /// A request carried a missing, unknown or expired token (401).
    Unauthorized,
    /// An outbound document was received.
    Received {
        /// The URL's document type.
        document_type: String,
        /// The HTTP status answered.
        status: u16,
        /// The document's `mRID`, when it had one.
        message_id: Option<String>,
    },
}

/// One entry of the log.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    /// Position in the log (0-based, no gaps).
    pub seq: u64,
    /// When, in this process's monotonic clock.
    #[serde(skip)]
    pub at: Instant,
    /// Milliseconds since the simulator started.
    pub elapsed_ms: u64,
    /// What happened.
    #[serde(flatten)]
    pub kind: EventKind,
}

/// The append-only event log.
#[derive(Debug)]
pub struct EventLog {
    start: Instant,
    events: Mutex<Vec<Event>>,
}

impl EventLog {
    /// An empty log starting now.
    pub fn new(start: Instant) -> Self {
        Self {
            start,
            events: Mutex::new(Vec::new()),
        }
    }

    /// Appends an event and returns its instant.
    pub fn record(&self, kind: EventKind) -> Instant {
        let mut events = self.events.lock().unwrap_or_else(|e| e.into_inner());
        let at = Instant::now();
        let seq = events.len() as u64;
        events.push(Event {
            seq,
            at,
            elapsed_ms: u64::try_from(at.duration_since(self.start).as_millis())
                .unwrap_or(u64::MAX),
            kind,
        });
        at
    }

    /// A copy of the log.
    pub fn snapshot(&self) -> Vec<Event> {
        self.events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The events from position `seq` on.
    pub fn since(&self, seq: u64) -> Vec<Event> {
        let events = self.events.lock().unwrap_or_else(|e| e.into_inner());
        events
            .iter()
            .skip(usize::try_from(seq).unwrap_or(usize::MAX))
            .cloned()
            .collect()
    }
}

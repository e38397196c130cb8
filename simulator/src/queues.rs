//! DataHub's four peek queues and their messages.
//!
//! Peek returns the oldest visible message of a queue and keeps returning that same message
//! until it is dequeued (DataHub stores the generated bundle and looks it up again). Dequeue
//! takes the MessageId alone, as `DELETE /v1.0/cim/dequeue/{MessageId}` does, and succeeds
//! only for a message that is queued and was peeked; anything else is an unknown id (400).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use afregning_cim::DocumentKind;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::faults::InjectedFault;

/// A peek queue (message category).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Queue {
    /// Metered data (RSM-012); DataHub's `measuredata`, alias `timeseries`.
    Timeseries,
    /// Aggregations and wholesale results (RSM-014, RSM-019).
    Aggregations,
    /// Master data (RSM-022) and answers to supplier-switch requests (RSM-001).
    MasterData,
    /// Charges (RSM-034) and charge links (RSM-031).
    Charges,
}

impl Queue {
    /// Every queue.
    pub const ALL: [Queue; 4] = [
        Queue::Timeseries,
        Queue::Aggregations,
        Queue::MasterData,
        Queue::Charges,
    ];

    /// The URL segment: `GET /v1.0/cim/{segment}`.
    pub fn path(self) -> &'static str {
        match self {
            Queue::Timeseries => "timeseries",
            Queue::Aggregations => "aggregations",
            Queue::MasterData => "masterdata",
            Queue::Charges => "charges",
        }
    }

    /// The queue for a URL segment (`measuredata` is DataHub's name for `timeseries`).
    pub fn from_path(segment: &str) -> Option<Queue> {
        match segment.to_ascii_lowercase().as_str() {
            "timeseries" | "measuredata" => Some(Queue::Timeseries),
            "aggregations" => Some(Queue::Aggregations),
            "masterdata" => Some(Queue::MasterData),
            "charges" => Some(Queue::Charges),
            _ => None,
        }
    }

    /// The queue a document type is delivered on.
    pub fn of_kind(kind: DocumentKind) -> Queue {
        match kind {
            DocumentKind::NotifyValidatedMeasureData
            | DocumentKind::RejectRequestValidatedMeasureData => Queue::Timeseries,
            DocumentKind::NotifyAggregatedMeasureData
            | DocumentKind::NotifyWholesaleServices
            | DocumentKind::RejectRequestAggregatedMeasureData
            | DocumentKind::RejectRequestWholesaleSettlement => Queue::Aggregations,
            DocumentKind::NotifyPriceList | DocumentKind::NotifyBillingMasterData => Queue::Charges,
            _ => Queue::MasterData,
        }
    }
}

impl std::fmt::Display for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.path())
    }
}

/// A queued message: a MessageId and the bundle's bytes.
#[derive(Debug, Clone)]
pub struct Message {
    /// DataHub MessageId (the document's `mRID`).
    pub id: String,
    /// The queue it is on.
    pub queue: Queue,
    /// The body, exactly as served.
    pub body: Bytes,
    /// The document type, `None` for an injected non-document.
    pub kind: Option<DocumentKind>,
    /// Top-level transactions in the body.
    pub transactions: usize,
    /// Not served before this instant (late days, effective dates).
    pub visible_at: Instant,
    /// An injected fault, if the message is one.
    pub fault: Option<InjectedFault>,
}

/// Depth of one queue.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct QueueDepth {
    /// Messages a peek can return now.
    pub visible: usize,
    /// Messages that become visible later.
    pub scheduled: usize,
}

/// Why a dequeue failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("message id {0} is not a peeked message of this actor")]
pub struct UnknownMessageId(pub String);

/// The four queues.
#[derive(Debug, Default)]
pub struct Queues {
    queues: BTreeMap<Queue, VecDeque<Arc<Message>>>,
    current: HashMap<Queue, String>,
    peeked: HashMap<String, Queue>,
}

impl Queues {
    /// Appends a message to its queue.
    pub fn push(&mut self, message: Arc<Message>) {
        self.queues
            .entry(message.queue)
            .or_default()
            .push_back(message);
    }

    /// The message a peek of `queue` returns at `now`: the one already being peeked if it is
    /// still queued, else the oldest visible one.
    pub fn peek(&mut self, queue: Queue, now: Instant) -> Option<Arc<Message>> {
        let list = self.queues.entry(queue).or_default();
        if let Some(id) = self.current.get(&queue)
            && let Some(m) = list.iter().find(|m| &m.id == id)
        {
            return Some(Arc::clone(m));
        }
        let message = list.iter().find(|m| m.visible_at <= now).cloned()?;
        self.current.insert(queue, message.id.clone());
        self.peeked.insert(message.id.clone(), queue);
        Some(message)
    }

    /// Removes a peeked message by id.
    pub fn dequeue(&mut self, id: &str) -> Result<Arc<Message>, UnknownMessageId> {
        let queue = self
            .peeked
            .remove(id)
            .ok_or_else(|| UnknownMessageId(id.to_string()))?;
        let list = self.queues.entry(queue).or_default();
        let index = list
            .iter()
            .position(|m| m.id == id)
            .ok_or_else(|| UnknownMessageId(id.to_string()))?;
        if self.current.get(&queue).is_some_and(|c| c == id) {
            self.current.remove(&queue);
        }
        list.remove(index)
            .ok_or_else(|| UnknownMessageId(id.to_string()))
    }

    /// Depth of every queue at `now`.
    pub fn depths(&self, now: Instant) -> BTreeMap<Queue, QueueDepth> {
        Queue::ALL
            .iter()
            .map(|q| {
                let mut depth = QueueDepth::default();
                for m in self.queues.get(q).into_iter().flatten() {
                    if m.visible_at <= now {
                        depth.visible += 1;
                    } else {
                        depth.scheduled += 1;
                    }
                }
                (*q, depth)
            })
            .collect()
    }

    /// Whether every queue is empty (nothing visible, nothing scheduled).
    pub fn is_empty(&self) -> bool {
        self.queues.values().all(VecDeque::is_empty)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn message(id: &str, visible_at: Instant) -> Arc<Message> {
        Arc::new(Message {
            id: id.into(),
            queue: Queue::Timeseries,
            body: Bytes::from_static(b"{}"),
            kind: None,
            transactions: 0,
            visible_at,
            fault: None,
        })
    }

    #[test]
    fn peek_is_stable_until_dequeue_and_dequeue_needs_a_peek() {
        let now = Instant::now();
        let mut q = Queues::default();
        q.push(message("late", now + Duration::from_secs(60)));
        q.push(message("a", now));
        q.push(message("b", now));
        assert!(q.dequeue("b").is_err(), "b was never peeked");
        assert_eq!(
            q.peek(Queue::Timeseries, now).map(|m| m.id.clone()),
            Some("a".into())
        );
        // Even when an older message becomes visible, the peeked one stays the answer.
        let later = now + Duration::from_secs(61);
        assert_eq!(
            q.peek(Queue::Timeseries, later).map(|m| m.id.clone()),
            Some("a".into())
        );
        assert!(q.dequeue("a").is_ok());
        assert!(q.dequeue("a").is_err(), "a second dequeue is an unknown id");
        assert_eq!(
            q.peek(Queue::Timeseries, later).map(|m| m.id.clone()),
            Some("late".into())
        );
        assert_eq!(
            q.depths(later)[&Queue::Timeseries],
            QueueDepth {
                visible: 2,
                scheduled: 0
            }
        );
        assert!(Queue::from_path("measuredata") == Some(Queue::Timeseries));
    }
}

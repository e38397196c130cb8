//! The loop's state between two events: the running consumers, where each
//! partition stands, and the batch being filled. Kept apart from the steps
//! in [`super::driver`] so that each step's signature says which of them it
//! moves.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;

use crate::events;
use crate::positions::Position;
use crate::source::{SourceRecord, TopicSource, Watermarks};

/// Positions as the database has them: (topic, partition) → next offset.
pub(super) type Stored = HashMap<(String, i32), i64>;

/// A partition of a consumed topic.
pub(super) type Partition = (Arc<str>, i32);

/// The running consumers, one per topic, and the high watermarks they see
/// (for the lag gauges).
pub(super) struct Sources {
    pub(super) by_topic: HashMap<Arc<str>, TopicSource>,
    pub(super) watermarks: Watermarks,
}

/// Where each partition stands. What the database has and what the batch
/// reaches differ while a batch is open: records below `reached` are
/// repeats, and only `written` may be reported as lag.
pub(super) struct Progress {
    /// The next offset per partition, as committed to the database.
    pub(super) written: HashMap<Partition, i64>,
    /// The next offset per partition once the open batch is written.
    pub(super) reached: HashMap<Partition, i64>,
    /// Whether each assigned partition was read to its end.
    pub(super) at_end: HashMap<Partition, bool>,
    /// Topics whose assignment arrived.
    pub(super) assigned_topics: usize,
}

/// The batch being filled, and what it stores and reports once written.
#[derive(Default)]
pub(super) struct Pending<B> {
    /// The handler's batch.
    pub(super) batch: B,
    /// The next offset per partition after the batch's last record.
    pub(super) positions: BTreeMap<Partition, i64>,
    /// Records per topic, for the committed-batch metric.
    pub(super) records: BTreeMap<String, u64>,
    /// When the first record arrived: the flush interval counts from here.
    pub(super) started: Option<Instant>,
}

impl Sources {
    /// Mirrors committed positions to each topic's consumer group
    /// (asynchronously; for lag tools only, the database has the truth).
    pub(super) fn commit(&self, positions: &[Position]) {
        let mut per_topic: HashMap<Arc<str>, Vec<(i32, i64)>> = HashMap::new();
        for position in positions {
            per_topic
                .entry(position.topic.clone())
                .or_default()
                .push((position.partition, position.next_offset));
        }
        for (topic, offsets) in per_topic {
            if let Some(source) = self.by_topic.get(&topic) {
                source.commit(&offsets);
            }
        }
    }

    /// Stops every consumer thread.
    pub(super) fn stop(&mut self) {
        for source in self.by_topic.values_mut() {
            source.stop();
        }
    }
}

impl Progress {
    /// The stored positions of the topics that have a consumer: nothing
    /// read beyond them yet, no partition known to be at its end.
    pub(super) fn from_stored(stored: &Stored, sources: &Sources) -> Self {
        let mut written: HashMap<Partition, i64> = HashMap::new();
        for ((topic, partition), offset) in stored {
            if let Some((name, _)) = sources.by_topic.get_key_value(topic.as_str()) {
                written.insert((name.clone(), *partition), *offset);
            }
        }
        Self {
            reached: written.clone(),
            written,
            at_end: HashMap::new(),
            assigned_topics: 0,
        }
    }

    /// A topic's partitions were assigned: each is not known to be at its
    /// end until its consumer says so.
    pub(super) fn assigned(&mut self, topic: &Arc<str>, partitions: Vec<i32>) {
        self.assigned_topics += 1;
        for partition in partitions {
            self.at_end
                .entry((topic.clone(), partition))
                .or_insert(false);
        }
    }

    /// Every partition was read to its end. Needs every topic's assignment,
    /// not just the first ones': before its assignment arrives a topic has
    /// no partitions here to be behind in.
    pub(super) fn everything_read(&self, topics: usize) -> bool {
        self.assigned_topics == topics && self.at_end.values().all(|&end| end)
    }

    /// A batch committed: its positions are now the database's.
    pub(super) fn committed(&mut self, positions: &[Position]) {
        for position in positions {
            self.written.insert(
                (position.topic.clone(), position.partition),
                position.next_offset,
            );
        }
    }

    /// Sets the lag gauges: each assigned partition's high watermark minus
    /// the position written for it.
    pub(super) fn report_lag(&self, sink: &'static str, watermarks: &Watermarks) {
        let Ok(marks) = watermarks.lock() else {
            return;
        };
        for (topic, partition) in self.at_end.keys() {
            if let Some(&high) = marks.get(&(topic.to_string(), *partition)) {
                let position = self
                    .written
                    .get(&(topic.clone(), *partition))
                    .copied()
                    .unwrap_or(0);
                events::lag(sink, topic, *partition, high - position);
            }
        }
    }
}

impl<B> Pending<B> {
    /// No record waits to be written.
    pub(super) fn is_empty(&self) -> bool {
        self.positions.is_empty()
    }

    /// A record went into the batch: the batch now reaches past it.
    pub(super) fn took(&mut self, key: Partition, record: &SourceRecord) {
        self.positions.insert(key, record.offset + 1);
        *self.records.entry(record.topic.to_string()).or_default() += 1;
        self.started.get_or_insert_with(Instant::now);
    }

    /// The positions to store with the batch.
    pub(super) fn positions(&self) -> Vec<Position> {
        self.positions
            .iter()
            .map(|((topic, partition), next)| Position {
                topic: topic.clone(),
                partition: *partition,
                next_offset: *next,
            })
            .collect()
    }
}

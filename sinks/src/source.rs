//! The Kafka side of a sink: one consumer per input topic and writer lane,
//! each on its own thread, assigned the lane's partitions of its topic at the
//! offsets the database holds, feeding the lane's bounded channel.
//!
//! Why this shape (docs/decisions/0061):
//! - **Positions come from the database.** Each partition starts at the
//!   `next_offset` the sink stored in `sink_offset` in the same transaction as
//!   the data; Kafka's group offsets are written afterwards for lag tools and
//!   never read. So a lost or stale group offset (the local broker has known
//!   gaps around commits and rebalances, LOCAL-BROKER.md) cannot lose or
//!   repeat a row.
//! - **Explicit assignment, no group membership.** A partition has one
//!   active writer per consumer name (advisory locks in the database make a
//!   second instance a standby; `runner` splits partitions between a sink's
//!   writer lanes), so there is nothing to rebalance.
//! - **One consumer per topic** because librdkafka reports the end of a
//!   partition (`PartitionEOF`) with the partition number only; per topic, the
//!   pair is unambiguous, which is how the sink knows it has caught up. (The
//!   broker's ListOffsets answers are not trusted for that: the local broker's
//!   memory engine gets them wrong.)
//! - **Back-pressure by not polling.** When the channel to the writer is full
//!   (the database is slow or down), the thread stops polling until there is
//!   room again; librdkafka fills its queue up to `queued.max.messages.kbytes`
//!   and then stops fetching. Memory is bounded by the channel plus that
//!   queue. An assign-only consumer has no poll deadline, so nothing is lost
//!   by not polling. It does not pause its partitions: a resume fetches again
//!   from the last delivered offset, which lies inside a record batch, and
//!   the local broker's memory engine answers such a fetch without the rest
//!   of that batch, or with nothing at all when it is the last one
//!   (docs/processors-runtime.md, local-broker gaps): records skipped, or no
//!   end of partition and a demo that never caught up. Not fetching again
//!   keeps librdkafka's own fetch position at a batch boundary.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::message::{Headers, Message};
use rdkafka::statistics::Statistics;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use tokio::sync::mpsc;

/// The header processors put the record's idempotency key in (the processor
/// runtime's `IDEMPOTENCY_KEY_HEADER`; repeated here so the sinks do not
/// depend on the processors).
pub const IDEMPOTENCY_KEY_HEADER: &str = "afregning-idempotency-key";

/// A consumed record, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceRecord {
    /// Full topic name.
    pub topic: Arc<str>,
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// Kafka timestamp.
    pub timestamp: Option<DateTime<Utc>>,
    /// Key bytes.
    pub key: Option<Vec<u8>>,
    /// Value bytes; `None` is a tombstone.
    pub payload: Option<Vec<u8>>,
    /// The producer's idempotency key header, when present.
    pub idempotency_key: Option<String>,
}

/// What a topic's consumer thread tells the writer, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceEvent {
    /// The partitions the consumer was assigned (sent first).
    Assigned {
        /// Full topic name.
        topic: Arc<str>,
        /// The partitions assigned: the writer lane's share of the topic.
        partitions: Vec<i32>,
    },
    /// A record.
    Record(SourceRecord),
    /// The consumer reached the end of a partition: every earlier record of
    /// it was sent before this event.
    EndOfPartition {
        /// Full topic name.
        topic: Arc<str>,
        /// Partition.
        partition: i32,
    },
}

/// High watermarks per (topic, partition), from the consumers' statistics
/// (fetch responses), for the lag gauges.
pub type Watermarks = Arc<Mutex<HashMap<(String, i32), i64>>>;

/// Client context that records high watermarks from librdkafka's statistics.
pub struct SourceContext {
    watermarks: Watermarks,
}

impl ClientContext for SourceContext {
    fn error(&self, error: KafkaError, reason: &str) {
        // The end of a partition arrives here too (enable.partition.eof);
        // it is how the sink knows it caught up, not a problem.
        if afregning_topology::read_to_end::is_partition_end(&error) {
            tracing::trace!(%reason, "end of partition");
        } else {
            tracing::warn!(%error, %reason, "librdkafka");
        }
    }

    fn stats(&self, statistics: Statistics) {
        let Ok(mut marks) = self.watermarks.lock() else {
            return;
        };
        for (name, topic) in statistics.topics {
            for (partition, stats) in topic.partitions {
                if partition >= 0 && stats.hi_offset >= 0 {
                    marks.insert((name.clone(), partition), stats.hi_offset);
                }
            }
        }
    }
}

impl ConsumerContext for SourceContext {}

/// Why a topic's consumer could not start.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// librdkafka refused the configuration or the broker did not answer.
    #[error("Kafka consumer for {topic}: {source}")]
    Kafka {
        /// The topic.
        topic: String,
        /// librdkafka's error.
        #[source]
        source: KafkaError,
    },
    /// The topic does not exist.
    #[error("topic {0} does not exist (run `afregning topology apply`)")]
    MissingTopic(String),
}

/// One running topic consumer.
pub struct TopicSource {
    topic: Arc<str>,
    consumer: Arc<BaseConsumer<SourceContext>>,
    thread: Option<JoinHandle<()>>,
    stop: Arc<AtomicBool>,
}

impl std::fmt::Debug for TopicSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TopicSource")
            .field("topic", &self.topic)
            .finish_non_exhaustive()
    }
}

/// The librdkafka settings of a sink's consumers: assign-only, never
/// auto-committing, reporting partition ends and statistics.
pub fn consumer_config(
    bootstrap_servers: &str,
    group: &str,
    stats_interval_ms: u64,
    extra: &std::collections::BTreeMap<String, String>,
) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap_servers)
        // Only for the group-offset mirror (lag tools) and because
        // librdkafka wants a group id to commit; the group is never joined.
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "true")
        .set("fetch.wait.max.ms", "100")
        .set("queued.max.messages.kbytes", "32768")
        .set("statistics.interval.ms", stats_interval_ms.to_string());
    for (key, value) in extra {
        config.set(key, value);
    }
    config
}

/// The partitions of `topic`, in order, from the broker's metadata: what a
/// writer lane chooses its share from before it claims them in the database.
pub fn topic_partitions(config: &ClientConfig, topic: &str) -> Result<Vec<i32>, SourceError> {
    let kafka = |source| SourceError::Kafka {
        topic: topic.to_string(),
        source,
    };
    let consumer: BaseConsumer = config.create().map_err(kafka)?;
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .map_err(kafka)?;
    let mut partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .filter(|t| t.name() == topic && t.error().is_none())
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    partitions.sort_unstable();
    if partitions.is_empty() {
        return Err(SourceError::MissingTopic(topic.to_string()));
    }
    Ok(partitions)
}

impl TopicSource {
    /// Starts a consumer for `topic`, assigned `partitions` (its writer
    /// lane's share, see [`topic_partitions`]) at the offsets in
    /// `next_offsets` (the beginning where none is stored), sending into `tx`
    /// until stopped.
    pub fn start(
        config: &ClientConfig,
        topic: &str,
        partitions: Vec<i32>,
        next_offsets: &HashMap<i32, i64>,
        tx: mpsc::Sender<SourceEvent>,
        watermarks: Watermarks,
        paused_gauge: Option<metrics::Gauge>,
    ) -> Result<Self, SourceError> {
        let kafka = |source| SourceError::Kafka {
            topic: topic.to_string(),
            source,
        };
        let consumer: BaseConsumer<SourceContext> = config
            .create_with_context(SourceContext { watermarks })
            .map_err(kafka)?;
        let mut assignment = TopicPartitionList::new();
        for &partition in &partitions {
            let offset = next_offsets
                .get(&partition)
                .map_or(Offset::Beginning, |&next| Offset::Offset(next));
            assignment
                .add_partition_offset(topic, partition, offset)
                .map_err(kafka)?;
        }
        consumer.assign(&assignment).map_err(kafka)?;
        let consumer = Arc::new(consumer);
        let stop = Arc::new(AtomicBool::new(false));
        let topic: Arc<str> = Arc::from(topic);
        let thread = {
            let consumer = consumer.clone();
            let stop = stop.clone();
            let topic = topic.clone();
            std::thread::Builder::new()
                .name(format!("sink-source-{}", short_name(&topic)))
                .spawn(move || poll_loop(&consumer, &topic, partitions, &tx, &stop, paused_gauge))
                .expect("spawning a consumer thread")
        };
        Ok(Self {
            topic,
            consumer,
            thread: Some(thread),
            stop,
        })
    }

    /// The topic.
    pub fn topic(&self) -> &Arc<str> {
        &self.topic
    }

    /// Mirrors the database's positions into the group's committed offsets
    /// (asynchronously; failures only cost lag-tool accuracy).
    pub fn commit(&self, next_offsets: &[(i32, i64)]) {
        let mut list = TopicPartitionList::new();
        for &(partition, next) in next_offsets {
            if list
                .add_partition_offset(&self.topic, partition, Offset::Offset(next))
                .is_err()
            {
                return;
            }
        }
        if let Err(error) = self.consumer.commit(&list, CommitMode::Async) {
            tracing::debug!(topic = %self.topic, %error, "group offset commit not sent");
        }
    }

    /// Stops the thread and waits for it.
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for TopicSource {
    fn drop(&mut self) {
        self.stop();
    }
}

fn short_name(topic: &str) -> String {
    topic
        .rsplit('.')
        .nth(1)
        .unwrap_or(topic)
        .chars()
        .take(10)
        .collect()
}

fn owned_record(topic: &Arc<str>, message: &rdkafka::message::BorrowedMessage<'_>) -> SourceRecord {
    let idempotency_key = message.headers().and_then(|headers| {
        headers
            .iter()
            .find(|h| h.key == IDEMPOTENCY_KEY_HEADER)
            .and_then(|h| h.value)
            .and_then(|v| std::str::from_utf8(v).ok())
            .map(str::to_string)
    });
    SourceRecord {
        topic: topic.clone(),
        partition: message.partition(),
        offset: message.offset(),
        timestamp: message
            .timestamp()
            .to_millis()
            .and_then(DateTime::<Utc>::from_timestamp_millis),
        key: message.key().map(<[u8]>::to_vec),
        payload: message.payload().map(<[u8]>::to_vec),
        idempotency_key,
    }
}

fn poll_loop(
    consumer: &BaseConsumer<SourceContext>,
    topic: &Arc<str>,
    partitions: Vec<i32>,
    tx: &mpsc::Sender<SourceEvent>,
    stop: &AtomicBool,
    paused_gauge: Option<metrics::Gauge>,
) {
    let mut pending: VecDeque<SourceEvent> = VecDeque::new();
    pending.push_back(SourceEvent::Assigned {
        topic: topic.clone(),
        partitions,
    });
    let mut held_back = false;
    while !stop.load(Ordering::Relaxed) {
        while let Some(event) = pending.pop_front() {
            match tx.try_send(event) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(event)) => {
                    pending.push_front(event);
                    break;
                }
                Err(mpsc::error::TrySendError::Closed(_)) => return,
            }
        }
        let full = !pending.is_empty();
        if full != held_back {
            held_back = full;
            if let Some(gauge) = &paused_gauge {
                gauge.set(if held_back { 1.0 } else { 0.0 });
            }
        }
        if held_back {
            std::thread::sleep(Duration::from_millis(20));
            continue;
        }
        match consumer.poll(Duration::from_millis(100)) {
            None => {}
            Some(Ok(message)) => {
                pending.push_back(SourceEvent::Record(owned_record(topic, &message)))
            }
            Some(Err(KafkaError::PartitionEOF(partition))) => {
                pending.push_back(SourceEvent::EndOfPartition {
                    topic: topic.clone(),
                    partition,
                });
            }
            Some(Err(error)) => {
                // librdkafka retries fetches itself; an error here is a
                // report (broker down, ...), not a lost record.
                tracing::warn!(topic = %topic, %error, "consumer error");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

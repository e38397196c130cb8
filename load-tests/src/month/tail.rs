//! Tailing the provisional-settlements topic from its beginning in a thread: per metering
//! point the latest version and, per count of settled days, the producer's timestamp of the
//! first version that reached it. Times come from the records' CreateTime (settle's
//! producer), not from when this consumer happened to receive them: the local broker can
//! hold a record at a partition's end until the consumer seeks again, which this tail does
//! after a second without progress.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use afregning_processors::shared::Wire;
use afregning_topology::records::ProvisionalSettlement;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

/// What the tail has seen of one metering point.
#[derive(Debug, Clone)]
pub struct Seen {
    /// The latest version.
    pub latest: ProvisionalSettlement,
    /// Settled days → CreateTime (ms since the epoch) of the first version with that many.
    pub first_with_days: BTreeMap<i32, i64>,
}

/// Everything the tail has seen.
#[derive(Debug, Default)]
pub struct TailState {
    /// Per GSRN (one month per run).
    pub by_gsrn: BTreeMap<String, Seen>,
    /// Provisional records read (versions, without duplicates).
    pub records: u64,
    /// CreateTime of the newest record read, ms since the epoch.
    pub newest_ms: i64,
    /// Records that did not decode.
    pub undecodable: u64,
}

/// The running tail.
pub struct Tail {
    state: Arc<Mutex<TailState>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<anyhow::Result<()>>>,
}

impl Tail {
    /// Starts reading `topic` (all partitions) from the beginning.
    pub fn start(bootstrap: &str, group: &str, topic: &str, wire: Wire) -> anyhow::Result<Self> {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .set("fetch.wait.max.ms", "50")
            .create()?;
        let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10))?;
        let partitions = metadata
            .topics()
            .first()
            .map_or(0, |t| t.partitions().len() as i32);
        anyhow::ensure!(partitions > 0, "{topic} has no partitions");
        let mut list = TopicPartitionList::new();
        for p in 0..partitions {
            list.add_partition_offset(topic, p, Offset::Beginning)?;
        }
        consumer.assign(&list)?;
        let state = Arc::new(Mutex::new(TailState::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (thread_state, thread_stop, topic) = (state.clone(), stop.clone(), topic.to_string());
        let thread = std::thread::Builder::new()
            .name("provisional-tail".into())
            .spawn(move || {
                let mut next: BTreeMap<i32, i64> = BTreeMap::new();
                let mut seen: HashSet<(i32, i64)> = HashSet::new();
                let mut progress = Instant::now();
                while !thread_stop.load(Ordering::Relaxed) {
                    let Some(message) = consumer.poll(Duration::from_millis(100)) else {
                        if progress.elapsed() > Duration::from_secs(1)
                            && behind(&consumer, &topic, partitions, &next)
                        {
                            // Re-seek every partition to where it is: the local broker then
                            // delivers what was appended at the end meanwhile. Only when a
                            // partition has records we have not read: re-assigning an idle
                            // consumer every second tripped librdkafka 2.12's assertion
                            // `rktp->rktp_started` (rdkafka_assignment.c:926) in the day
                            // scenario's long wait for the sink.
                            let mut list = TopicPartitionList::new();
                            for p in 0..partitions {
                                let offset = next
                                    .get(&p)
                                    .map_or(Offset::Beginning, |o| Offset::Offset(*o));
                                list.add_partition_offset(&topic, p, offset)?;
                            }
                            consumer.assign(&list)?;
                            progress = Instant::now();
                        }
                        continue;
                    };
                    let message = message?;
                    progress = Instant::now();
                    next.insert(message.partition(), message.offset() + 1);
                    if !seen.insert((message.partition(), message.offset())) {
                        continue;
                    }
                    let created = message.timestamp().to_millis().unwrap_or(0);
                    let Some(value) = message.payload() else {
                        continue;
                    };
                    let mut s = thread_state.lock().unwrap_or_else(|e| e.into_inner());
                    let p: ProvisionalSettlement = match wire.decode(value) {
                        Ok(p) => p,
                        Err(_) => {
                            s.undecodable += 1;
                            continue;
                        }
                    };
                    s.records += 1;
                    s.newest_ms = s.newest_ms.max(created);
                    let entry = s.by_gsrn.entry(p.gsrn.clone()).or_insert_with(|| Seen {
                        latest: p.clone(),
                        first_with_days: BTreeMap::new(),
                    });
                    entry
                        .first_with_days
                        .entry(p.days_settled)
                        .and_modify(|t| *t = (*t).min(created))
                        .or_insert(created);
                    if p.version >= entry.latest.version {
                        entry.latest = p;
                    }
                }
                Ok(())
            })?;
        Ok(Self {
            state,
            stop,
            thread: Some(thread),
        })
    }

    /// Metering points whose latest version has `days` settled days or more, of `expected`.
    pub fn settled(&self, days: i32) -> usize {
        let s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.by_gsrn
            .values()
            .filter(|v| v.latest.days_settled >= days)
            .count()
    }

    /// Runs `f` on the state.
    pub fn with<T>(&self, f: impl FnOnce(&TailState) -> T) -> T {
        let s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        f(&s)
    }

    /// Stops the thread.
    pub fn stop(mut self) -> anyhow::Result<()> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            thread
                .join()
                .map_err(|_| anyhow::anyhow!("the provisional tail panicked"))??;
        }
        Ok(())
    }
}

/// Whether some partition's end (asked of the broker) lies past the next offset to read.
fn behind(
    consumer: &BaseConsumer,
    topic: &str,
    partitions: i32,
    next: &BTreeMap<i32, i64>,
) -> bool {
    (0..partitions).any(|p| {
        consumer
            .fetch_watermarks(topic, p, Duration::from_secs(2))
            .map_or(true, |(_, high)| high > next.get(&p).copied().unwrap_or(0))
    })
}

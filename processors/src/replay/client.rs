//! The operator's side of a replay: write the request, then follow the tasks'
//! reports and the processor's progress until every task reported (decision
//! 0090). The CLI records what this returns; tests drive it directly.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

use super::topics::{requests_topic, requests_topic_exists, results_topic};
use super::{ReplayReport, ReplayRequest, ReportKind, TopicOffsets};

/// Why a replay could not be started or followed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The broker failed.
    #[error("broker: {0}")]
    Kafka(#[from] KafkaError),
    /// The wait ended before every task reported.
    #[error("{0}")]
    Incomplete(String),
}

/// Writes `request` to the deployment's request topic; refuses when it is
/// missing (no processor instance ever started under `prefix`, so none would
/// act on it).
pub async fn publish(
    client: &ClientConfig,
    prefix: &str,
    request: &ReplayRequest,
) -> Result<(), ClientError> {
    let exists = {
        let (client, prefix) = (client.clone(), prefix.to_string());
        tokio::task::spawn_blocking(move || requests_topic_exists(&client, &prefix))
            .await
            .map_err(|e| ClientError::Incomplete(e.to_string()))??
    };
    if !exists {
        return Err(ClientError::Incomplete(format!(
            "{} does not exist: no processor instance has started under prefix {prefix:?}",
            requests_topic(prefix)
        )));
    }
    let producer: FutureProducer = client
        .clone()
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .create()?;
    // A request is plain data; serialising it cannot fail.
    let value = serde_json::to_vec(request).unwrap_or_default();
    producer
        .send(
            FutureRecord::to(&requests_topic(prefix))
                .partition(0)
                .key(request.run_id.as_bytes())
                .payload(&value),
            Duration::from_secs(30),
        )
        .await
        .map_err(|(e, _)| e)?;
    Ok(())
}

/// Whether run `run_id`'s request is on the request topic: a `start` killed
/// between recording the run and publishing it left it out, and `resume`
/// publishes it then. Blocking.
pub fn published(
    client: &ClientConfig,
    prefix: &str,
    run_id: &str,
    timeout: Duration,
) -> Result<bool, super::offsets::OffsetError> {
    let topic = requests_topic(prefix);
    let consumer: BaseConsumer = super::offsets::reader_consumer(client).map_err(|source| {
        super::offsets::OffsetError::Kafka {
            topic: topic.clone(),
            partition: 0,
            source,
        }
    })?;
    let reader = super::offsets::PartitionReader::new(&consumer, &topic, 0, timeout);
    let bounds = reader.bounds()?;
    let mut found = false;
    if bounds.end > bounds.low {
        reader.scan(bounds.low, |m| {
            found |= m.key() == Some(run_id.as_bytes());
        })?;
    }
    Ok(found)
}

/// Where a run stands while it is followed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Progress {
    /// Records of the range re-read so far (from the processor's committed group
    /// offsets, which the runtime mirrors for lag tools).
    pub records_done: u64,
    /// Records in the range.
    pub records_total: u64,
    /// Tasks that reported `applied`.
    pub applied: usize,
    /// Tasks that reported `caught-up`.
    pub caught_up: usize,
    /// Tasks in the run.
    pub tasks: usize,
}

/// How following a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Followed {
    /// Every task reported (`applied`; and `caught-up` unless a dry run).
    Complete(BTreeMap<i32, Vec<ReplayReport>>),
    /// Stopped by the caller (Ctrl-C) with the reports so far.
    Interrupted(BTreeMap<i32, Vec<ReplayReport>>),
}

/// Follows run `request.run_id` on the result topic until every task of the
/// request reported, `stop` is set, or `timeout` passes. `progress` is called
/// about once a second. Blocking: run it on a blocking thread.
pub fn follow(
    client: &ClientConfig,
    prefix: &str,
    group: &str,
    request: &ReplayRequest,
    stop: &Arc<AtomicBool>,
    timeout: Duration,
    mut progress: impl FnMut(&Progress),
) -> Result<Followed, ClientError> {
    let consumer: BaseConsumer = client
        .clone()
        .set("group.id", format!("{group}.replay-follower"))
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .create()?;
    let mut list = TopicPartitionList::new();
    list.add_partition_offset(&results_topic(prefix), 0, Offset::Beginning)?;
    consumer.assign(&list)?;
    let monitor: BaseConsumer = client
        .clone()
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()?;
    let total: u64 = request
        .start
        .iter()
        .flat_map(|(task, starts)| {
            starts.iter().map(move |(topic, start)| {
                let end = request
                    .end
                    .get(task)
                    .and_then(|e| e.get(topic))
                    .copied()
                    .unwrap_or(*start);
                (end - start).max(0) as u64
            })
        })
        .sum();
    let tasks: Vec<i32> = request.start.keys().copied().collect();
    let mut reports: BTreeMap<i32, Vec<ReplayReport>> = BTreeMap::new();
    let deadline = Instant::now() + timeout;
    let mut last_progress = Instant::now() - Duration::from_secs(2);
    loop {
        let has = |reports: &BTreeMap<i32, Vec<ReplayReport>>, task: i32, kind: ReportKind| {
            reports
                .get(&task)
                .is_some_and(|r| r.iter().any(|x| x.kind == kind))
        };
        let applied = tasks
            .iter()
            .filter(|t| has(&reports, **t, ReportKind::Applied))
            .count();
        let caught_up = tasks
            .iter()
            .filter(|t| has(&reports, **t, ReportKind::CaughtUp))
            .count();
        let complete = if request.dry_run {
            applied == tasks.len()
        } else {
            caught_up == tasks.len()
        };
        if complete || last_progress.elapsed() >= Duration::from_secs(1) {
            let done = if complete || request.dry_run {
                if complete { total } else { 0 }
            } else {
                // Before a task rewound, its committed offsets are the old ones
                // (the range's end): only tasks that reported `applied` count.
                let rewound: Vec<i32> = tasks
                    .iter()
                    .copied()
                    .filter(|t| has(&reports, *t, ReportKind::Applied))
                    .collect();
                records_done(&monitor, request, &rewound)
            };
            progress(&Progress {
                records_done: done.min(total),
                records_total: total,
                applied,
                caught_up,
                tasks: tasks.len(),
            });
            last_progress = Instant::now();
        }
        if complete {
            return Ok(Followed::Complete(reports));
        }
        if stop.load(Ordering::SeqCst) {
            return Ok(Followed::Interrupted(reports));
        }
        if Instant::now() >= deadline {
            return Err(ClientError::Incomplete(format!(
                "run {}: {applied} of {} tasks applied, {caught_up} caught up after {timeout:?}",
                request.run_id,
                tasks.len()
            )));
        }
        match consumer.poll(Duration::from_millis(200)) {
            None => {}
            Some(Err(e)) => return Err(e.into()),
            Some(Ok(message)) => {
                let Some(report) = message
                    .payload()
                    .and_then(|p| serde_json::from_slice::<ReplayReport>(p).ok())
                else {
                    continue;
                };
                if report.run_id != request.run_id {
                    continue;
                }
                let entry = reports.entry(report.task).or_default();
                // A task re-running its batch after a crash reports the same again.
                if !entry.iter().any(|r| r.kind == report.kind) {
                    entry.push(report);
                }
            }
        }
    }
}

/// Records of the run's range the processor has committed again on `tasks`,
/// from its group's committed offsets (monitoring only: never used to decide
/// anything).
fn records_done(monitor: &BaseConsumer, request: &ReplayRequest, tasks: &[i32]) -> u64 {
    if tasks.is_empty() {
        return 0;
    }
    let mut list = TopicPartitionList::new();
    for (task, starts) in request.start.iter().filter(|(t, _)| tasks.contains(t)) {
        for topic in starts.keys() {
            let _ = list.add_partition(topic, *task);
        }
    }
    let Ok(committed) = monitor.committed_offsets(list, Duration::from_secs(5)) else {
        return 0;
    };
    let mut done = 0;
    for element in committed.elements() {
        let Offset::Offset(at) = element.offset() else {
            continue;
        };
        let task = element.partition();
        let topic = element.topic();
        let (Some(start), Some(end)) = (
            request.start.get(&task).and_then(|s| s.get(topic)),
            request.end.get(&task).and_then(|e| e.get(topic)),
        ) else {
            continue;
        };
        done += (at.min(*end) - start).max(0) as u64;
    }
    done
}

/// The end offsets of `topics` for `partitions`, read from the records (the
/// local broker's ListOffsets under-reports them, decision 0057).
pub fn ends(
    client: &ClientConfig,
    topics: &[String],
    partitions: &[i32],
    timeout: Duration,
) -> Result<BTreeMap<i32, TopicOffsets>, super::offsets::OffsetError> {
    let consumer: BaseConsumer = super::offsets::reader_consumer(client).map_err(|source| {
        super::offsets::OffsetError::Kafka {
            topic: topics.join(","),
            partition: -1,
            source,
        }
    })?;
    let mut out: BTreeMap<i32, TopicOffsets> = BTreeMap::new();
    for &partition in partitions {
        for topic in topics {
            let reader = super::offsets::PartitionReader::new(&consumer, topic, partition, timeout);
            out.entry(partition)
                .or_default()
                .insert(topic.clone(), reader.bounds()?.end);
        }
    }
    Ok(out)
}

//! Where a replay by time starts: the first offset of a partition whose record
//! timestamp is at or after a time.
//!
//! The broker's answer (ListOffsets by timestamp, librdkafka's
//! `offsets_for_times`) is taken only after reading the records around it: the
//! record at the answer must be at or after the time and the one before it
//! before. Where the answer fails that check (the local broker answers offsets
//! by timestamp wrongly: `../shared/streaming/ANCHORS.md` §5, decision 0001),
//! a binary search over the records' timestamps finds the offset. The search
//! assumes timestamps that do not decrease along the partition (producers'
//! create times of one writer, or log-append times); the verification says
//! which path answered.
//!
//! Reading "the record at offset o" reads forward from a little before o: the
//! local broker's memory engine answers a fetch that starts inside a record
//! batch without the rest of that batch (docs/processors-runtime.md), so the
//! first record returned may lie after o.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, OwnedMessage};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

/// How long a read waits without a record before it takes the silence as
/// "nothing from here" (see `PartitionReader::read`), when it must be sure.
const SILENCE: Duration = Duration::from_secs(2);

/// The first silence a probe inside the partition accepts: a fetch inside the
/// last record batch is answered with nothing at once (with the reader's
/// `fetch.wait.max.ms` of 10), so a short silence steps back early; a probe that
/// hears nothing from the partition's start waits the full [`SILENCE`] again.
const SHORT_SILENCE: Duration = Duration::from_millis(300);

/// A consumer for [`PartitionReader`]s: assign-only, no commits, end-of-partition
/// events on, and fetches answered at once (the local broker holds a fetch for
/// the whole `fetch.wait.max.ms` even when it has data).
pub fn reader_consumer(client: &ClientConfig) -> Result<BaseConsumer, KafkaError> {
    client
        .clone()
        .set("group.id", "afregning-replay-reader")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .set("fetch.wait.max.ms", "10")
        .create()
}

/// Which way the offset was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OffsetSource {
    /// The broker's offsets-for-times answer, verified.
    Broker,
    /// A search over record timestamps (the broker's answer failed the check,
    /// or the caller asked for the search).
    Search,
}

/// The start offset for a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeOffset {
    /// The first offset whose record is at or after the time (the partition's
    /// end when none is).
    pub offset: i64,
    /// How it was found.
    pub source: OffsetSource,
    /// What the broker answered (`None` when not asked or it had no answer).
    pub broker_answer: Option<i64>,
}

/// Why no offset could be found.
#[derive(Debug, thiserror::Error)]
pub enum OffsetError {
    /// The broker failed.
    #[error("{topic}[{partition}]: {source}")]
    Kafka {
        /// Topic.
        topic: String,
        /// Partition.
        partition: i32,
        /// Why.
        #[source]
        source: KafkaError,
    },
    /// A record expected in the partition did not arrive in time.
    #[error("{topic}[{partition}]: no record at offset {offset} arrived within {timeout:?}")]
    Missing {
        /// Topic.
        topic: String,
        /// Partition.
        partition: i32,
        /// Offset.
        offset: i64,
        /// How long it waited.
        timeout: Duration,
    },
}

/// A partition's readable range `[low, end)`, its end found by reading (the
/// local broker's ListOffsets under-reports the end: decision 0057).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    /// The first offset.
    pub low: i64,
    /// One past the last record.
    pub end: i64,
}

/// Reads records of one partition by offset with an assign-only consumer.
pub struct PartitionReader<'a> {
    consumer: &'a BaseConsumer,
    topic: String,
    partition: i32,
    timeout: Duration,
}

impl<'a> PartitionReader<'a> {
    /// A reader of `topic[partition]` on `consumer` (assign-only; it needs
    /// `enable.partition.eof=true` and must not be used by anything else meanwhile).
    pub fn new(consumer: &'a BaseConsumer, topic: &str, partition: i32, timeout: Duration) -> Self {
        Self {
            consumer,
            topic: topic.to_string(),
            partition,
            timeout,
        }
    }

    fn kafka(&self, source: KafkaError) -> OffsetError {
        OffsetError::Kafka {
            topic: self.topic.clone(),
            partition: self.partition,
            source,
        }
    }

    fn assign(&self, offset: i64) -> Result<(), OffsetError> {
        let mut list = TopicPartitionList::new();
        list.add_partition_offset(&self.topic, self.partition, Offset::Offset(offset))
            .map_err(|e| self.kafka(e))?;
        self.consumer.assign(&list).map_err(|e| self.kafka(e))
    }

    /// Reads from `from` until `until` says stop or the partition's end;
    /// returns the records seen as (offset, timestamp in ms).
    fn read(
        &self,
        from: i64,
        silence: Duration,
        mut until: impl FnMut(&BorrowedMessage<'_>) -> bool,
    ) -> Result<Vec<(i64, i64)>, OffsetError> {
        self.assign(from)?;
        let mut out = Vec::new();
        let deadline = Instant::now() + self.timeout;
        let mut last_heard = Instant::now();
        while Instant::now() < deadline {
            match self.consumer.poll(Duration::from_millis(200)) {
                // A fetch inside the last record batch is answered with nothing and
                // no end of partition on the local broker: silence ends the read, and
                // `timestamp_at` steps back.
                None if last_heard.elapsed() >= silence => return Ok(out),
                None => {}
                Some(Err(KafkaError::PartitionEOF(p))) if p == self.partition => return Ok(out),
                Some(Err(KafkaError::PartitionEOF(_))) => {}
                Some(Err(e)) => return Err(self.kafka(e)),
                Some(Ok(m)) if m.topic() != self.topic || m.partition() != self.partition => {}
                Some(Ok(m)) => {
                    last_heard = Instant::now();
                    let ts = m.timestamp().to_millis().unwrap_or(i64::MIN);
                    out.push((m.offset(), ts));
                    if until(&m) {
                        return Ok(out);
                    }
                }
            }
        }
        Err(OffsetError::Missing {
            topic: self.topic.clone(),
            partition: self.partition,
            offset: from,
            timeout: self.timeout,
        })
    }

    /// Hands every record from `from` to the partition's end to `visit`.
    pub fn scan(
        &self,
        from: i64,
        mut visit: impl FnMut(&BorrowedMessage<'_>),
    ) -> Result<(), OffsetError> {
        self.read(from, SILENCE, |m| {
            visit(m);
            false
        })
        .map(|_| ())
    }

    /// The partition's range, its end read from the records.
    pub fn bounds(&self) -> Result<Bounds, OffsetError> {
        let (low, listed) = self
            .consumer
            .fetch_watermarks(&self.topic, self.partition, self.timeout)
            .map_err(|e| self.kafka(e))?;
        if listed <= low {
            return Ok(Bounds { low, end: low });
        }
        // The listed end may be the last batch's first offset + 1: read on from
        // that batch's start to the end the fetch reports.
        let records = self.read((listed - 1).max(low), SILENCE, |_| false)?;
        let end = records.last().map_or(listed, |(o, _)| (*o + 1).max(listed));
        Ok(Bounds { low, end })
    }

    /// The timestamp (ms) of the record at `offset`, or of the first record
    /// after it when `offset` is gone (compaction). `None` at or after the end.
    pub fn timestamp_at(
        &self,
        offset: i64,
        bounds: Bounds,
    ) -> Result<Option<(i64, i64)>, OffsetError> {
        Ok(self
            .first_at_or_after(offset, bounds, false)?
            .map(|(o, ts, _)| (o, ts)))
    }

    /// The whole record at `offset` (key, value, headers, timestamp), `None`
    /// when it is gone (compaction, retention) or at or after the end: what a
    /// dead letter's re-submission copies its headers from.
    pub fn record_at(
        &self,
        offset: i64,
        bounds: Bounds,
    ) -> Result<Option<OwnedMessage>, OffsetError> {
        Ok(self
            .first_at_or_after(offset, bounds, true)?
            .and_then(|(o, _, m)| m.filter(|_| o == offset)))
    }

    /// The first record at or after `offset` as (offset, timestamp, the record
    /// itself when `keep`), stepping back where the fetch started after it.
    fn first_at_or_after(
        &self,
        offset: i64,
        bounds: Bounds,
        keep: bool,
    ) -> Result<Option<(i64, i64, Option<OwnedMessage>)>, OffsetError> {
        if offset >= bounds.end {
            return Ok(None);
        }
        let mut from = offset;
        let mut window = 500;
        let mut silence = SHORT_SILENCE;
        loop {
            let mut kept = None;
            let records = self.read(from, silence, |m| {
                if keep && kept.is_none() && m.offset() >= offset {
                    kept = Some(m.detach());
                }
                m.offset() >= offset
            })?;
            let first = records.first().map(|(o, _)| *o);
            if from <= bounds.low && records.is_empty() && silence < SILENCE {
                // Nothing even from the start: not a skipped batch but a slow
                // broker, or nothing there. Listen longer before saying so.
                silence = SILENCE;
                continue;
            }
            if first.is_some_and(|f| f <= offset) || from <= bounds.low {
                return Ok(records
                    .into_iter()
                    .find(|(o, _)| *o >= offset)
                    .map(|(o, ts)| (o, ts, kept)));
            }
            // The fetch started after the offset (the broker skipped the rest of
            // a batch) or said nothing (a fetch inside the last batch).
            from = (from - window).max(bounds.low);
            window = window.saturating_mul(10);
        }
    }
}

/// Whether `offset` is the first record at or after `time_ms` in `[low, end)`.
fn verify(
    reader: &PartitionReader<'_>,
    bounds: Bounds,
    offset: i64,
    time_ms: i64,
) -> Result<bool, OffsetError> {
    if offset < bounds.low || offset > bounds.end {
        return Ok(false);
    }
    if offset < bounds.end {
        match reader.timestamp_at(offset, bounds)? {
            Some((found, ts)) if found == offset && ts >= time_ms => {}
            _ => return Ok(false),
        }
    }
    if offset > bounds.low {
        match reader.timestamp_at(offset - 1, bounds)? {
            Some((found, ts)) if found == offset - 1 && ts < time_ms => {}
            _ => return Ok(false),
        }
    }
    Ok(true)
}

/// The first offset in `bounds` whose record is at or after `time_ms`, by a
/// binary search over record timestamps (non-decreasing along the partition).
pub fn search(
    reader: &PartitionReader<'_>,
    bounds: Bounds,
    time_ms: i64,
) -> Result<i64, OffsetError> {
    let (mut lo, mut hi) = (bounds.low, bounds.end);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        match reader.timestamp_at(mid, bounds)? {
            Some((found, ts)) if ts >= time_ms => hi = mid.min(found),
            Some((found, _)) => lo = found + 1,
            None => hi = mid,
        }
    }
    Ok(lo)
}

/// The broker's offsets-for-times answer for one partition (`None`: no answer;
/// the partition's end when no record is at or after the time).
fn ask_broker(
    reader: &PartitionReader<'_>,
    bounds: Bounds,
    time_ms: i64,
) -> Result<Option<i64>, OffsetError> {
    let mut list = TopicPartitionList::new();
    list.add_partition_offset(&reader.topic, reader.partition, Offset::Offset(time_ms))
        .map_err(|e| reader.kafka(e))?;
    let answer = reader
        .consumer
        .offsets_for_times(list, reader.timeout)
        .map_err(|e| reader.kafka(e))?;
    Ok(answer
        .find_partition(&reader.topic, reader.partition)
        .and_then(|e| match e.offset() {
            Offset::Offset(o) => Some(o),
            Offset::End => Some(bounds.end),
            _ => None,
        }))
}

/// The first offset of `topic[partition]` at or after `time`: the broker's
/// answer when the records confirm it, otherwise (or with `force_search`) a
/// search over the records' timestamps.
pub fn offset_for_time(
    reader: &PartitionReader<'_>,
    time: DateTime<Utc>,
    force_search: bool,
) -> Result<TimeOffset, OffsetError> {
    let time_ms = time.timestamp_millis();
    let bounds = reader.bounds()?;
    let broker_answer = if force_search {
        None
    } else {
        ask_broker(reader, bounds, time_ms)?
    };
    if let Some(answer) = broker_answer
        && verify(reader, bounds, answer, time_ms)?
    {
        return Ok(TimeOffset {
            offset: answer,
            source: OffsetSource::Broker,
            broker_answer,
        });
    }
    if let Some(answer) = broker_answer {
        tracing::warn!(topic = %reader.topic, partition = reader.partition, answer, %time, "the broker's offset for the time is not the first record at or after it; searching the records' timestamps");
    }
    Ok(TimeOffset {
        offset: search(reader, bounds, time_ms)?,
        source: OffsetSource::Search,
        broker_answer,
    })
}

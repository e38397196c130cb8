//! The processors' consumer groups' lag per group and partition, read from
//! the broker: each group's committed offsets (OffsetFetch) against each
//! input partition's end.
//!
//! Two things limit what this shows, and the answer says so:
//! - the committed offsets are the runtime's *mirror* of the positions it
//!   commits with its state in its own store (decision 0057, docs/processors.md):
//!   written after each commit round, so they may trail the true position by
//!   one round, and after a restore the store, not the group, decides;
//! - a partition's end is read from the records (to the end the fetch reports,
//!   `afregning_processors::replay::client::ends`), not taken from ListOffsets:
//!   the local broker (Tansu 0.6.0) answers ListOffsets "latest" with the last
//!   batch's first offset + 1 (decision 0057, ../shared/streaming/LOCAL-BROKER.md),
//!   which would show too little lag. Reading costs one short fetch per partition.
//!
//! Global tables (charges, prices, products, ...) are read whole by every
//! instance without a group position, so they have no lag here.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use afregning_processors::replay::client::ends;
use afregning_topology::processors::PROCESSORS;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use serde::Serialize;
use utoipa::ToSchema;

use crate::broker::Broker;

/// How long one broker request may take.
const TIMEOUT: Duration = Duration::from_secs(10);

/// One processor group's position in one input partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct GroupPartitionLag {
    /// The processor (`validate`, `enrich`, `aggregate`, `settle`, ...).
    pub processor: String,
    /// Its consumer group.
    pub group: String,
    /// The input topic.
    pub topic: String,
    /// The partition (the processor's task).
    pub partition: i32,
    /// The group's committed offset: the next record it will read; `None`
    /// when the group never committed one (the processor never ran, or has
    /// not yet read anything from this partition).
    pub committed_offset: Option<i64>,
    /// The partition's end, read from the records.
    pub end_offset: i64,
    /// end − committed; `None` without a committed offset.
    pub lag: Option<i64>,
}

/// The ends of `partitions` (topic, partition), each read from the records
/// or why not (blocking): the sinks' lag uses them.
pub fn ends_of(
    broker: &Broker,
    partitions: &[(String, i32)],
) -> BTreeMap<(String, i32), Result<i64, String>> {
    partitions
        .iter()
        .map(|(topic, partition)| {
            let end = ends(
                broker.client(),
                std::slice::from_ref(topic),
                &[*partition],
                TIMEOUT,
            )
            .map_err(|e| e.to_string())
            .and_then(|found| {
                found
                    .get(partition)
                    .and_then(|t| t.get(topic))
                    .copied()
                    .ok_or_else(|| format!("no end for {topic}[{partition}]"))
            });
            ((topic.clone(), *partition), end)
        })
        .collect()
}

/// Lag of every processor group over every input partition (blocking: run
/// it on a blocking thread).
pub fn read(broker: &Broker) -> Result<Vec<GroupPartitionLag>, String> {
    let catalogue = broker.catalogue();
    let prefix = broker.prefix();
    // Every input partition once, its end read once however many groups read it.
    let mut partitions_of: BTreeMap<String, i32> = BTreeMap::new();
    for spec in PROCESSORS {
        for id in spec.inputs {
            let topic = catalogue.spec(*id).map_err(|e| e.to_string())?;
            partitions_of.insert(topic.name.clone(), topic.partitions as i32);
        }
    }
    let mut end_of: BTreeMap<(String, i32), i64> = BTreeMap::new();
    let counts: BTreeSet<i32> = partitions_of.values().copied().collect();
    for count in counts {
        let topics: Vec<String> = partitions_of
            .iter()
            .filter(|(_, c)| **c == count)
            .map(|(t, _)| t.clone())
            .collect();
        let partitions: Vec<i32> = (0..count).collect();
        for (partition, per_topic) in
            ends(broker.client(), &topics, &partitions, TIMEOUT).map_err(|e| e.to_string())?
        {
            for (topic, end) in per_topic {
                end_of.insert((topic, partition), end);
            }
        }
    }
    let mut out = Vec::new();
    for spec in PROCESSORS {
        let processor = spec.component.name();
        let group = format!("{prefix}afregning.{processor}");
        let consumer: BaseConsumer = broker
            .client()
            .clone()
            .set("group.id", &group)
            .set("enable.auto.commit", "false")
            .create()
            .map_err(|e| e.to_string())?;
        let mut list = TopicPartitionList::new();
        for id in spec.inputs {
            let topic = &catalogue.spec(*id).map_err(|e| e.to_string())?.name;
            for partition in 0..partitions_of[topic] {
                list.add_partition(topic, partition);
            }
        }
        let committed = consumer
            .committed_offsets(list, TIMEOUT)
            .map_err(|e| format!("the committed offsets of {group}: {e}"))?;
        for element in committed.elements() {
            let committed_offset = match element.offset() {
                Offset::Offset(offset) => Some(offset),
                _ => None,
            };
            let end_offset = end_of
                .get(&(element.topic().to_string(), element.partition()))
                .copied()
                .unwrap_or_default();
            out.push(GroupPartitionLag {
                processor: processor.to_string(),
                group: group.clone(),
                topic: element.topic().to_string(),
                partition: element.partition(),
                committed_offset,
                end_offset,
                lag: committed_offset.map(|c| (end_offset - c).max(0)),
            });
        }
    }
    out.sort_by(|a, b| (&a.group, &a.topic, a.partition).cmp(&(&b.group, &b.topic, b.partition)));
    Ok(out)
}

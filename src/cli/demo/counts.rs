//! Records per topic as the demo itself reads them: every partition of every
//! catalogue topic consumed from its beginning to its end.
//!
//! Why not the listed end offsets: the local broker lists some too low
//! (ListOffsets "latest" answers the last batch's first offset + 1, decision
//! 0057; the demo once showed 190 readings where validate wrote 622). The end
//! of a partition is taken from the fetch itself (`enable.partition.eof`),
//! which carries the right high watermark on every broker.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use afregning_topology::Catalogue;
use afregning_topology::read_to_end::ReadToEndContext;
use anyhow::{Context, bail};
use indicatif::ProgressBar;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

/// Counts the records of each catalogue topic (changelogs excluded), in the
/// catalogue's order; gives up after `timeout` per topic.
pub fn observed_counts(
    bootstrap_servers: &str,
    catalogue: &Catalogue,
    timeout: Duration,
    bar: &ProgressBar,
) -> anyhow::Result<Vec<(String, u64)>> {
    let partitions = catalogue.settings().partitions as i32;
    let mut counts = Vec::new();
    for spec in catalogue.topics() {
        if spec.name.ends_with("-changelog.v1") {
            continue;
        }
        bar.set_message(format!("reading {}", spec.name));
        let n = count_topic(bootstrap_servers, &spec.name, partitions, timeout)?;
        counts.push((spec.name.clone(), n));
    }
    Ok(counts)
}

fn count_topic(
    bootstrap_servers: &str,
    topic: &str,
    partitions: i32,
    timeout: Duration,
) -> anyhow::Result<u64> {
    let consumer: BaseConsumer<ReadToEndContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap_servers)
        .set("group.id", "afregning-demo-counts")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .set("fetch.wait.max.ms", "100")
        .create_with_context(ReadToEndContext)
        .context("creating a counting consumer")?;
    let mut assignment = TopicPartitionList::new();
    for partition in 0..partitions {
        assignment.add_partition_offset(topic, partition, Offset::Beginning)?;
    }
    consumer
        .assign(&assignment)
        .with_context(|| format!("assigning {topic}"))?;
    let mut open: BTreeSet<i32> = (0..partitions).collect();
    let mut records = 0u64;
    let deadline = Instant::now() + timeout;
    while !open.is_empty() {
        if Instant::now() > deadline {
            bail!("{topic}: partitions {open:?} not read to their end within {timeout:?}");
        }
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(_)) => records += 1,
            Some(Err(KafkaError::PartitionEOF(partition))) => {
                open.remove(&partition);
            }
            Some(Err(error)) => {
                tracing::debug!(%topic, %error, "counting consumer");
            }
            None => {}
        }
    }
    Ok(records)
}

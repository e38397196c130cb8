//! librdkafka settings of the runtime's clients, in one place.
//!
//! - the **group consumer** only decides which instance owns which task: it
//!   subscribes to the primary input topic and keeps its partitions paused;
//! - the **data consumer** fetches every input partition of the running tasks
//!   by explicit assignment at the offsets stored with their state (never the
//!   group's positions, which the local broker loses with cooperative-sticky);
//! - **restore** and **global** consumers read changelogs and global tables by
//!   explicit assignment;
//! - one idempotent **producer** (`acks=all`) writes outputs, changelog
//!   records and commit markers.
//!
//! The assign-only consumers carry a group id of their own only because
//! librdkafka refuses `assign` without one; they never join or commit.

use rdkafka::ClientConfig;

use crate::runtime::config::RuntimeConfig;

fn base(config: &RuntimeConfig) -> ClientConfig {
    let mut client = ClientConfig::new();
    client.set("bootstrap.servers", &config.bootstrap_servers);
    client
}

fn with_overrides(mut client: ClientConfig, config: &RuntimeConfig) -> ClientConfig {
    for (key, value) in &config.kafka {
        client.set(key, value);
    }
    client
}

/// The consumer that joins the group (membership only).
pub(crate) fn group_consumer(config: &RuntimeConfig, group: &str) -> ClientConfig {
    let mut client = base(config);
    client
        .set("group.id", group)
        .set(
            "partition.assignment.strategy",
            config.assignment_strategy.as_librdkafka(),
        )
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("session.timeout.ms", config.session_timeout_ms.to_string())
        .set(
            "heartbeat.interval.ms",
            (config.session_timeout_ms / 4).max(250).to_string(),
        )
        // Its partitions stay paused; keep whatever it pre-fetches small.
        .set("queued.max.messages.kbytes", "1024")
        .set("fetch.max.bytes", "1048576");
    if let Some(instance) = &config.group_instance_id {
        client.set("group.instance.id", instance);
    }
    with_overrides(client, config)
}

/// How long an assign-only consumer waits before fetching again once its queue is full
/// (`fetch.queue.backoff.ms`). librdkafka's default is 1000 ms: a backlog of large records
/// (raw RSM-012 series, about 14 KB each) fills the queue in one fetch, and the processor
/// then drained it in a tenth of that second and waited out the rest. Measured on the month
/// load test's replay from a full raw topic: 17.7 s → 5.3 s for 60,000 series
/// (processors/BENCHMARKS.md). A check of the queue every 10 ms costs nothing measurable.
const FETCH_QUEUE_BACKOFF_MS: u64 = 10;

/// librdkafka's default `fetch.max.bytes` (and the most an assign-only consumer asks for).
const FETCH_MAX_BYTES: usize = 52_428_800;

/// An assign-only consumer (data, restore, global) with a queue bound. One fetch response
/// is at most the queue's size (`fetch.max.bytes`, up to librdkafka's default), so the bound
/// holds even against a broker that fills a response past the per-partition limit (the local
/// broker returned about 48 MB to a 16 MiB queue).
pub(crate) fn assign_consumer(
    config: &RuntimeConfig,
    group: &str,
    role: &str,
    queue_kbytes: usize,
) -> ClientConfig {
    let queue_kbytes = queue_kbytes.max(1024);
    let mut client = base(config);
    client
        .set("group.id", format!("{group}.{role}"))
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("queued.max.messages.kbytes", queue_kbytes.to_string())
        .set(
            "fetch.max.bytes",
            (queue_kbytes * 1024).min(FETCH_MAX_BYTES).to_string(),
        )
        .set("fetch.queue.backoff.ms", FETCH_QUEUE_BACKOFF_MS.to_string())
        .set("fetch.wait.max.ms", "100");
    with_overrides(client, config)
}

/// The data consumer: assign-only, with statistics at the lag-check
/// interval, which feed it the fetch responses' high watermarks (the local
/// broker gets those right, unlike its ListOffsets).
pub(crate) fn data_consumer(config: &RuntimeConfig, group: &str) -> ClientConfig {
    let mut client = assign_consumer(config, group, "data", config.consumer_queue_kbytes);
    client
        .set(
            "statistics.interval.ms",
            config.lag_check_interval_ms.to_string(),
        )
        .set("fetch.wait.max.ms", config.fetch_wait_max_ms.to_string());
    with_overrides(client, config)
}

/// A consumer that reads a changelog or table partition to its end: the
/// end is reported by fetches (`enable.partition.eof`), not by ListOffsets,
/// which the local broker's memory engine answers with the last batch's
/// *first* offset + 1. A position beyond the end is an error, not a reset.
pub(crate) fn to_end_consumer(
    config: &RuntimeConfig,
    group: &str,
    role: &str,
    reset: &str,
) -> ClientConfig {
    let mut client = assign_consumer(config, group, role, config.consumer_queue_kbytes);
    client
        .set("enable.partition.eof", "true")
        .set("auto.offset.reset", reset);
    with_overrides(client, config)
}

/// The idempotent producer.
pub(crate) fn producer(config: &RuntimeConfig) -> ClientConfig {
    let mut client = base(config);
    client
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", config.linger_ms.to_string())
        .set("compression.type", config.compression.as_librdkafka())
        .set(
            "queue.buffering.max.messages",
            (config.max_in_flight_records * 2).max(1000).to_string(),
        )
        .set("delivery.timeout.ms", "120000");
    with_overrides(client, config)
}

/// An admin client (topic checks and changelog creation).
pub(crate) fn admin(config: &RuntimeConfig) -> ClientConfig {
    with_overrides(base(config), config)
}

/// Context of the read-to-the-end consumers (restores, global tables): one
/// declaration with the sinks' and the demo's, in the topology crate.
pub(crate) use afregning_topology::read_to_end::ReadToEndContext as ToEndContext;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_queue_is_fetched_again_soon_and_a_response_fits_the_queue() {
        let config = RuntimeConfig {
            consumer_queue_kbytes: 8 * 1024,
            ..RuntimeConfig::default()
        };
        let data = data_consumer(&config, "g");
        assert_eq!(data.get("fetch.queue.backoff.ms"), Some("10"));
        assert_eq!(data.get("queued.max.messages.kbytes"), Some("8192"));
        assert_eq!(data.get("fetch.max.bytes"), Some("8388608"));
        // librdkafka accepts the settings together (it checks fetch.max.bytes against
        // message.max.bytes and the queue at creation).
        let consumer: rdkafka::consumer::BaseConsumer = data.create().expect("a valid config");
        drop(consumer);
        // An override still wins.
        let mut tuned = config.clone();
        tuned
            .kafka
            .insert("fetch.queue.backoff.ms".to_string(), "50".to_string());
        assert_eq!(
            data_consumer(&tuned, "g").get("fetch.queue.backoff.ms"),
            Some("50")
        );
        // A queue below 1 MiB is raised to it, the response with it.
        let small = RuntimeConfig {
            consumer_queue_kbytes: 10,
            ..RuntimeConfig::default()
        };
        let restore = to_end_consumer(&small, "g", "restore", "error");
        assert_eq!(restore.get("queued.max.messages.kbytes"), Some("1024"));
        assert_eq!(restore.get("fetch.max.bytes"), Some("1048576"));
        // A large queue asks for no more than librdkafka's default per response.
        let large = RuntimeConfig {
            consumer_queue_kbytes: 1024 * 1024,
            ..RuntimeConfig::default()
        };
        let data = data_consumer(&large, "g");
        assert_eq!(data.get("fetch.max.bytes"), Some("52428800"));
        let consumer: rdkafka::consumer::BaseConsumer = data.create().expect("a valid config");
        drop(consumer);
    }
}

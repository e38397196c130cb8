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

/// An assign-only consumer (data, restore, global) with a queue bound.
pub(crate) fn assign_consumer(
    config: &RuntimeConfig,
    group: &str,
    role: &str,
    queue_kbytes: usize,
) -> ClientConfig {
    let mut client = base(config);
    client
        .set("group.id", format!("{group}.{role}"))
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set(
            "queued.max.messages.kbytes",
            queue_kbytes.max(1024).to_string(),
        )
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
        .set("compression.type", "lz4")
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

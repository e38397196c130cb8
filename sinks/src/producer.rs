//! The Kafka producer both sinks publish with: the database sink its dead
//! letters, the ERP sink its statements and dead letters. One place for the
//! settings that make a publish safe to retry (idempotence, every replica
//! acknowledging, a long delivery timeout), so the two cannot drift apart.

use std::collections::BTreeMap;

use rdkafka::error::KafkaError;
use rdkafka::producer::FutureProducer;

/// The producer the sinks publish with: idempotent, every replica
/// acknowledging; `extra` (the deployment's Kafka settings) applied last.
pub fn create(
    bootstrap_servers: &str,
    extra: &BTreeMap<String, String>,
) -> Result<FutureProducer, KafkaError> {
    let mut config = rdkafka::ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap_servers)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("delivery.timeout.ms", "120000");
    for (key, value) in extra {
        config.set(key, value);
    }
    config.create()
}

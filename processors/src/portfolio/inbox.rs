//! Putting a command on the portfolio's commands topic: what the CLI (`afregning portfolio
//! request|cancel`), the API and tests do to ask the portfolio processor for a change.

use std::time::Duration;

use afregning_portfolio::CommandRecord;
use afregning_topology::Catalogue;
use afregning_topology::catalogue::TopicId;
use afregning_topology::partitioner::partition_for_key;
use rdkafka::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord};

/// Produces `record` to `catalogue`'s commands topic on `bootstrap_servers`, keyed and
/// partitioned by its metering point (co-partitioned with the events), and waits for the
/// broker's acknowledgement. The outcome (an event, or a dead letter with the refusal) is the
/// portfolio processor's, later.
pub async fn send_command(
    bootstrap_servers: &str,
    catalogue: &Catalogue,
    record: &CommandRecord,
) -> Result<(), String> {
    let spec = catalogue
        .spec(TopicId::PortfolioCommands)
        .map_err(|e| e.to_string())?;
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap_servers)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .create()
        .map_err(|e| format!("cannot create a producer for {bootstrap_servers}: {e}"))?;
    let key = record.metering_point.to_string();
    let value = record.to_json();
    producer
        .send(
            FutureRecord::to(&spec.name)
                .key(key.as_bytes())
                .payload(&value)
                .partition(partition_for_key(&key, spec.partitions)),
            Duration::from_secs(30),
        )
        .await
        .map_err(|(e, _)| format!("the broker did not take the command for {key}: {e}"))?;
    tracing::info!(gsrn = %key, topic = %spec.name, "portfolio command sent");
    Ok(())
}

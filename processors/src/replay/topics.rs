//! The two control topics of replay: requests (written by `afregning replay`,
//! followed by every processor instance) and results (written by the tasks,
//! followed by the CLI). Not part of the dataflow catalogue: they carry JSON
//! control records, not the pipeline's Avro records, and every processor reads
//! and writes them (decision 0090).

use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::types::RDKafkaErrorCode;

/// The request topic of the deployment under `prefix`.
pub fn requests_topic(prefix: &str) -> String {
    afregning_topology::control::replay_requests(prefix)
}

/// Whether the request topic of the deployment under `prefix` exists: it is
/// created by the first processor instance that starts, and without one
/// nobody would act on a request.
pub fn requests_topic_exists(
    client: &ClientConfig,
    prefix: &str,
) -> Result<bool, rdkafka::error::KafkaError> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let topic = requests_topic(prefix);
    let consumer: BaseConsumer = client.create()?;
    let metadata = consumer.fetch_metadata(Some(&topic), Duration::from_secs(10))?;
    Ok(metadata
        .topics()
        .iter()
        .any(|t| t.name() == topic && t.error().is_none() && !t.partitions().is_empty()))
}

/// The result topic of the deployment under `prefix`.
pub fn results_topic(prefix: &str) -> String {
    afregning_topology::control::replay_results(prefix)
}

/// Creates both control topics under `prefix` when missing (one partition each,
/// so requests and reports are totally ordered; kept, not compacted: they are
/// the log of what was asked and done), replicated `replication` times (the
/// runtime passes its changelogs' factor).
pub async fn ensure(
    client: &ClientConfig,
    prefix: &str,
    replication: i32,
) -> Result<(), rdkafka::error::KafkaError> {
    let admin: AdminClient<DefaultClientContext> = client.create()?;
    let names = [requests_topic(prefix), results_topic(prefix)];
    let new: Vec<NewTopic<'_>> = names
        .iter()
        .map(|name| {
            NewTopic::new(name, 1, TopicReplication::Fixed(replication)).set("retention.ms", "-1")
        })
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    for result in admin.create_topics(&new, &options).await? {
        match result {
            Ok(topic) => tracing::info!(%topic, "created replay control topic"),
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => {
                tracing::warn!(%topic, %code, "could not create replay control topic");
                return Err(rdkafka::error::KafkaError::AdminOp(code));
            }
        }
    }
    Ok(())
}

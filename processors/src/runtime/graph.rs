//! The runtime's start-up check of the topology it is about to run on: the
//! input topics exist and are co-partitioned (equal partition counts, so
//! task n reads partition n of every input), and every state store's
//! changelog exists with the inputs' partition count. A processor refuses to
//! start on a topology that does not match, with a message naming the
//! difference.
//!
//! Topics are created by `afregning topology apply` from the catalogue, with
//! the configs it declares; the runtime creates missing changelogs only when
//! `create_changelog_topics` is set (tests of processors the catalogue does
//! not declare), and then with the catalogue's changelog configs. A
//! changelog whose described configs differ from the catalogue's (say, no
//! `min.compaction.lag.ms`, which recovery relies on) stops the start too;
//! where the broker describes nothing for a topic (the local broker describes
//! only configs set at creation) the check is logged as not made, never
//! taken as a pass or a failure.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use afregning_topology::catalogue::changelog_configs;
use rdkafka::admin::{
    AdminClient, AdminOptions, NewTopic, OwnedResourceSpecifier, ResourceSpecifier,
    TopicReplication,
};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};

use crate::runtime::clients;
use crate::runtime::config::RuntimeConfig;
use crate::runtime::error::RuntimeError;

/// Partition counts of `topics` (None for a missing topic).
fn partition_counts(
    consumer: &BaseConsumer,
    topics: &[String],
) -> Result<Vec<Option<i32>>, RuntimeError> {
    let mut out = Vec::new();
    for topic in topics {
        let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10))?;
        let count = metadata
            .topics()
            .iter()
            .find(|t| t.name() == topic)
            .filter(|t| t.error().is_none() && !t.partitions().is_empty())
            .map(|t| t.partitions().len() as i32);
        out.push(count);
    }
    Ok(out)
}

/// Checks that the inputs exist and are co-partitioned, creates missing
/// changelogs (when allowed) and checks theirs. Returns the partition count.
pub(crate) async fn check_topology(
    config: &RuntimeConfig,
    inputs: &[String],
    changelogs: &[String],
) -> Result<i32, RuntimeError> {
    let metadata_config = clients::admin(config);
    let consumer: Arc<BaseConsumer> = Arc::new(metadata_config.create()?);
    let c = consumer.clone();
    let topics = inputs.to_vec();
    let counts = tokio::task::spawn_blocking(move || partition_counts(&c, &topics))
        .await
        .map_err(|e| RuntimeError::Internal(e.to_string()))??;
    let mut partitions = None;
    for (topic, count) in inputs.iter().zip(&counts) {
        let count = count
            .ok_or_else(|| RuntimeError::Topology(format!("input topic {topic} does not exist")))?;
        match partitions {
            None => partitions = Some(count),
            Some(first) if first != count => {
                return Err(RuntimeError::Topology(format!(
                    "input topics are not co-partitioned: {} has {first} partitions, {topic} has {count}",
                    inputs[0]
                )));
            }
            Some(_) => {}
        }
    }
    let partitions = partitions
        .ok_or_else(|| RuntimeError::Config("the processor has no input topics".to_string()))?;

    let c = consumer.clone();
    let topics = changelogs.to_vec();
    let existing = tokio::task::spawn_blocking(move || partition_counts(&c, &topics))
        .await
        .map_err(|e| RuntimeError::Internal(e.to_string()))??;
    let missing: Vec<&String> = changelogs
        .iter()
        .zip(&existing)
        .filter(|(_, count)| count.is_none())
        .map(|(topic, _)| topic)
        .collect();
    if !missing.is_empty() {
        if !config.create_changelog_topics {
            return Err(RuntimeError::Topology(format!(
                "changelog topics {missing:?} do not exist (create them with `afregning topology apply`, or set create_changelog_topics)"
            )));
        }
        let admin: AdminClient<DefaultClientContext> = metadata_config.create()?;
        let new: Vec<NewTopic<'_>> = missing
            .iter()
            .map(|topic| {
                NewTopic::new(
                    topic,
                    partitions,
                    TopicReplication::Fixed(config.changelog_replication_factor),
                )
            })
            .collect();
        // The catalogue's changelog configs (compacted; records of a crashed
        // batch kept out of compaction's reach until the next owner reverted
        // them, recovery.rs), the same `topology apply` sets.
        let configs = changelog_configs();
        let new: Vec<NewTopic<'_>> = new
            .into_iter()
            .map(|topic| {
                configs
                    .iter()
                    .fold(topic, |topic, (key, value)| topic.set(key, value))
            })
            .collect();
        for result in admin
            .create_topics(
                &new,
                &AdminOptions::new().operation_timeout(Some(Duration::from_secs(30))),
            )
            .await?
        {
            match result {
                Ok(topic) => tracing::info!(%topic, partitions, "created changelog topic"),
                Err((topic, rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists)) => {
                    tracing::debug!(%topic, "changelog topic created concurrently");
                }
                Err((topic, code)) => {
                    return Err(RuntimeError::Topology(format!(
                        "cannot create changelog topic {topic}: {code}"
                    )));
                }
            }
        }
    }
    // Metadata may lag behind a creation for a moment.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let c = consumer.clone();
        let topics = changelogs.to_vec();
        let counts = tokio::task::spawn_blocking(move || partition_counts(&c, &topics))
            .await
            .map_err(|e| RuntimeError::Internal(e.to_string()))??;
        let wrong: Vec<String> = changelogs
            .iter()
            .zip(&counts)
            .filter(|(_, c)| **c != Some(partitions))
            .map(|(t, c)| format!("{t} ({c:?})"))
            .collect();
        if wrong.is_empty() {
            check_changelog_configs(&metadata_config, changelogs).await?;
            return Ok(partitions);
        }
        if Instant::now() >= deadline {
            return Err(RuntimeError::Topology(format!(
                "changelog topics must have the inputs' {partitions} partitions: {wrong:?}"
            )));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Compares each changelog's described configs with the catalogue's
/// (`changelog_configs`; retention aside, which compaction makes inert) and
/// refuses to start on a difference.
async fn check_changelog_configs(
    admin_config: &rdkafka::ClientConfig,
    changelogs: &[String],
) -> Result<(), RuntimeError> {
    if changelogs.is_empty() {
        return Ok(());
    }
    let admin: AdminClient<DefaultClientContext> = admin_config.create()?;
    let specifiers: Vec<ResourceSpecifier<'_>> = changelogs
        .iter()
        .map(|t| ResourceSpecifier::Topic(t))
        .collect();
    let options = AdminOptions::new().request_timeout(Some(Duration::from_secs(10)));
    let described = match admin.describe_configs(&specifiers, &options).await {
        Ok(described) => described,
        Err(error) => {
            tracing::info!(%error, "changelog configs not checked: DescribeConfigs failed");
            return Ok(());
        }
    };
    let mut differences = Vec::new();
    let mut unchecked = Vec::new();
    for result in described.into_iter().flatten() {
        let OwnedResourceSpecifier::Topic(topic) = &result.specifier else {
            continue;
        };
        let entries: BTreeMap<String, String> = result
            .entries
            .iter()
            .filter_map(|e| e.value.clone().map(|v| (e.name.clone(), v)))
            .collect();
        if entries.is_empty() {
            unchecked.push(topic.clone());
        } else {
            differences.extend(changelog_config_differences(topic, &entries));
        }
    }
    if !unchecked.is_empty() {
        tracing::info!(
            ?unchecked,
            "the broker described no configs of these changelogs; not checked"
        );
    }
    if differences.is_empty() {
        Ok(())
    } else {
        Err(RuntimeError::Topology(format!(
            "changelog configs differ from the catalogue (`afregning topology verify` lists them): {}",
            differences.join("; ")
        )))
    }
}

/// What differs between a changelog's described `entries` and the
/// catalogue's changelog configs, one text per config.
fn changelog_config_differences(topic: &str, entries: &BTreeMap<String, String>) -> Vec<String> {
    changelog_configs()
        .into_iter()
        .filter(|(key, _)| *key != "retention.ms")
        .filter_map(|(key, expected)| {
            let actual = entries.get(key).map(|v| v.trim());
            (actual != Some(expected.as_str())).then(|| {
                format!(
                    "{topic}: {key} is {}, the catalogue says {expected}",
                    actual.unwrap_or("not set")
                )
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_changelog_with_the_catalogues_configs_passes() {
        let all: BTreeMap<String, String> = changelog_configs()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        assert!(changelog_config_differences("t", &all).is_empty());
        // Retention is inert under compaction: a broker default there is fine.
        let mut other_retention = all.clone();
        other_retention.insert("retention.ms".into(), "604800000".into());
        assert!(changelog_config_differences("t", &other_retention).is_empty());
    }

    #[test]
    fn a_changelog_without_the_compaction_lag_or_compaction_is_named() {
        let found = changelog_config_differences("c", &entries(&[("cleanup.policy", "compact")]));
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].contains("c: min.compaction.lag.ms is not set"),
            "{found:?}"
        );
        let found = changelog_config_differences(
            "c",
            &entries(&[
                ("cleanup.policy", "delete"),
                ("min.compaction.lag.ms", "3600000"),
            ]),
        );
        assert!(found[0].contains("cleanup.policy is delete"), "{found:?}");
    }
}

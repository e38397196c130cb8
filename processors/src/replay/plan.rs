//! Turning what an operator asks for (a processor, partitions or grid areas,
//! an offset or a time) into a [`ReplayRequest`], and starting it: recording
//! the run and writing the request the tasks act on. `afregning replay start`
//! and `POST /v1/replay-runs` share it; each follows the run its own way.

use std::collections::BTreeMap;
use std::time::Duration;

use afregning_topology::Catalogue;
use afregning_topology::catalogue::TopicId;
use afregning_topology::processors::PROCESSORS;
use chrono::{DateTime, Utc};
use rdkafka::ClientConfig;
use rdkafka::consumer::BaseConsumer;
use sqlx::PgConnection;

use super::offsets::{PartitionReader, offset_for_time, reader_consumer};
use super::runs::{self, NewRun, RunError};
use super::{ReplayRequest, TopicOffsets, client};

/// How long one broker read of a partition may take.
const BROKER_TIMEOUT: Duration = Duration::from_secs(30);

/// What to recalculate, as asked.
#[derive(Debug, Clone, Default)]
pub struct StartSpec {
    /// The processor whose inputs are re-read (validate, enrich, aggregate, settle).
    pub processor: String,
    /// Re-read every chosen partition of every input from this offset.
    pub from_offset: Option<i64>,
    /// Or from the first record at or after this time.
    pub from_time: Option<DateTime<Utc>>,
    /// End of the data period to recompute (exclusive).
    pub to_time: Option<DateTime<Utc>>,
    /// Start of the data period to recompute (default `from_time`).
    pub recompute_from: Option<DateTime<Utc>>,
    /// Only these grid areas' partitions (processors partitioned by grid area).
    pub grid_areas: Vec<String>,
    /// Only these partitions (with the grid areas'; all when both are empty).
    pub partitions: Vec<i32>,
    /// Compare only.
    pub dry_run: bool,
    /// Find time offsets by searching record timestamps, not asking the broker.
    pub search_offsets: bool,
}

/// The partitions a spec names, checked against the topology; the processor's
/// input topics by name.
pub fn partitions_and_inputs(
    catalogue: &Catalogue,
    spec: &StartSpec,
) -> Result<(Vec<i32>, Vec<String>), RunError> {
    let processor = PROCESSORS
        .iter()
        .find(|p| p.component.name() == spec.processor)
        .ok_or_else(|| {
            let names: Vec<&str> = PROCESSORS.iter().map(|p| p.component.name()).collect();
            RunError::Invalid(format!(
                "no processor {:?} (one of {names:?})",
                spec.processor
            ))
        })?;
    let inputs: Vec<String> = processor
        .inputs
        .iter()
        .map(|id| {
            catalogue
                .spec(*id)
                .map(|t| t.name.clone())
                .map_err(|e| RunError::Invalid(e.to_string()))
        })
        .collect::<Result<_, _>>()?;
    let count = catalogue.settings().partitions;
    let mut partitions = spec.partitions.clone();
    if !spec.grid_areas.is_empty() {
        if processor.primary() != TopicId::EnrichedReadings {
            return Err(RunError::Invalid(format!(
                "{}'s inputs are partitioned by metering point, not grid area: name partitions",
                spec.processor
            )));
        }
        if let Some(bad) = spec
            .grid_areas
            .iter()
            .find(|g| g.len() != 3 || !g.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(RunError::Invalid(format!("{bad:?} is not a grid area")));
        }
        partitions.extend(afregning_topology::partitioner::partitions_for_grid_areas(
            spec.grid_areas.iter().map(String::as_str),
            count,
        ));
    }
    if partitions.is_empty() {
        partitions = (0..count as i32).collect();
    }
    partitions.sort_unstable();
    partitions.dedup();
    if let Some(bad) = partitions.iter().find(|p| !(0..count as i32).contains(p)) {
        return Err(RunError::Invalid(format!(
            "partition {bad} outside 0..{count}"
        )));
    }
    if spec.from_offset.is_none() == spec.from_time.is_none() {
        return Err(RunError::Invalid(
            "give exactly one of a start offset and a start time".into(),
        ));
    }
    if spec.from_offset.is_some_and(|o| o < 0) {
        return Err(RunError::Invalid("a start offset is 0 or more".into()));
    }
    Ok((partitions, inputs))
}

/// The request for `spec`: its start offsets (and how each was found) and the
/// inputs' ends now, read from the broker.
pub async fn request(
    client: &ClientConfig,
    catalogue: &Catalogue,
    spec: &StartSpec,
) -> Result<(ReplayRequest, serde_json::Value), RunError> {
    let (partitions, inputs) = partitions_and_inputs(catalogue, spec)?;
    let (start, sources) = {
        let (client, inputs, partitions, spec) = (
            client.clone(),
            inputs.clone(),
            partitions.clone(),
            spec.clone(),
        );
        tokio::task::spawn_blocking(move || start_offsets(&client, &inputs, &partitions, &spec))
            .await??
    };
    let end = {
        let client = client.clone();
        tokio::task::spawn_blocking(move || {
            client::ends(&client, &inputs, &partitions, BROKER_TIMEOUT)
        })
        .await??
    };
    let request = ReplayRequest {
        run_id: runs::new_run_id(),
        processor: spec.processor.clone(),
        start,
        end,
        recompute_from: spec.recompute_from.or(spec.from_time),
        recompute_to: spec.to_time,
        dry_run: spec.dry_run,
        requested_at: Utc::now(),
    };
    Ok((request, sources))
}

/// The start offsets per partition and input, and how each was found (blocking).
fn start_offsets(
    client: &ClientConfig,
    inputs: &[String],
    partitions: &[i32],
    spec: &StartSpec,
) -> Result<(BTreeMap<i32, TopicOffsets>, serde_json::Value), RunError> {
    let mut start: BTreeMap<i32, TopicOffsets> = BTreeMap::new();
    let mut sources = serde_json::Map::new();
    let consumer: BaseConsumer =
        reader_consumer(client).map_err(|e| RunError::Broker(e.to_string()))?;
    for &partition in partitions {
        for topic in inputs {
            let (offset, source) = match (spec.from_offset, spec.from_time) {
                (Some(offset), _) => (offset.max(0), serde_json::json!("offset")),
                (None, Some(time)) => {
                    let reader = PartitionReader::new(&consumer, topic, partition, BROKER_TIMEOUT);
                    let found = offset_for_time(&reader, time, spec.search_offsets)?;
                    (
                        found.offset,
                        serde_json::json!({"source": found.source, "broker_answer": found.broker_answer}),
                    )
                }
                (None, None) => {
                    return Err(RunError::Invalid(
                        "give a start offset or a start time".into(),
                    ));
                }
            };
            start
                .entry(partition)
                .or_default()
                .insert(topic.clone(), offset);
            sources.insert(format!("{topic}[{partition}]"), source);
        }
    }
    Ok((start, serde_json::Value::Object(sources)))
}

/// Writes a recorded run's request to the deployment's request topic; when
/// that fails the run is recorded `failed` with the error, which is returned.
pub async fn publish_recorded(
    conn: &mut PgConnection,
    client: &ClientConfig,
    prefix: &str,
    request: &ReplayRequest,
) -> Result<(), RunError> {
    if let Err(error) = client::publish(client, prefix, request).await {
        let error = error.to_string();
        runs::finish(
            conn,
            &request.run_id,
            "failed",
            &serde_json::json!({}),
            None,
            Some(&error),
        )
        .await?;
        return Err(RunError::Broker(error));
    }
    Ok(())
}

/// Records `run` as `running` and writes its request (see [`publish_recorded`]).
pub async fn start(
    conn: &mut PgConnection,
    client: &ClientConfig,
    prefix: &str,
    run: &NewRun<'_>,
) -> Result<(), RunError> {
    runs::insert(conn, run).await?;
    publish_recorded(conn, client, prefix, run.request).await
}

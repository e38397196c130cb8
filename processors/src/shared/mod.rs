//! What the four processors share: the synchronous Avro wire format
//! ([`wire::Wire`]), the topic handles of one deployment ([`Topics`]) and
//! dead-letter records ([`dead_letter`]).
//!
//! Why a synchronous wire: `Processor::process` runs on a blocking thread and
//! must not await the schema registry. The schema ids of the catalogue's own
//! schemas are resolved once at start ([`wire::Wire::from_registry`]); other
//! writer schema ids are looked up once each, before the batch that carries
//! them is processed ([`prefetch_writer_schemas`], from each processor's
//! `prepare_batch`), after which decoding is a pure function of bytes.

pub mod dead_letter;
pub mod framed;
pub mod positions;
pub mod reference;
pub mod wire;
pub mod writer_schemas;

use afregning_topology::records::{AvroRecord, TopicKey, TopicValue};
use afregning_topology::{Catalogue, Topic, partitioner};

use crate::runtime::{OutputRecord, ProcessError};
pub use wire::{Wire, WireError};

/// Looks up the writer schemas of a batch's keys and values that this build
/// does not know (records of a producer with another schema version), so
/// `process` never waits for the registry. An unreachable registry fails the
/// batch (it is not committed and nothing is dead-lettered for it).
pub async fn prefetch_writer_schemas(
    wire: &Wire,
    records: &[&crate::runtime::InputRecord],
) -> Result<(), ProcessError> {
    let ids = wire.unknown_ids(
        records
            .iter()
            .flat_map(|r| [r.key.as_deref(), r.value.as_deref()])
            .flatten(),
    );
    if ids.is_empty() {
        return Ok(());
    }
    wire.prefetch(ids)
        .await
        .map_err(|e| ProcessError::caused_by("looking up writer schemas", e))
}

/// The catalogue and wire of one deployment: what every processor needs to
/// name its topics and encode its records.
#[derive(Debug, Clone)]
pub struct Topics {
    /// The deployment's catalogue (prefix, partition count).
    pub catalogue: std::sync::Arc<Catalogue>,
    /// Encoder/decoder with resolved schema ids.
    pub wire: Wire,
}

impl Topics {
    /// Topics of `catalogue` encoded with `wire`.
    pub fn new(catalogue: Catalogue, wire: Wire) -> Self {
        Self {
            catalogue: std::sync::Arc::new(catalogue),
            wire,
        }
    }

    /// The full name of `topic` in this deployment.
    pub fn name<K: TopicKey, V: TopicValue>(&self, topic: Topic<K, V>) -> String {
        topic.name(&self.catalogue).to_string()
    }

    /// An output record for `topic` with the catalogue's partitioning (by
    /// routing key or grid area), Avro key and value and an idempotency key.
    pub fn output<K, V>(
        &self,
        topic: Topic<K, V>,
        key: &K,
        value: &V,
        idempotency_key: String,
    ) -> Result<OutputRecord, ProcessError>
    where
        K: TopicKey,
        V: TopicValue + AvroRecord,
    {
        let spec = topic.spec(&self.catalogue);
        let partition = partitioner::partition_for_record(spec, key, value).map_err(|e| {
            ProcessError::caused_by(format!("no partition for a record of {}", spec.name), e)
        })?;
        Ok(OutputRecord {
            topic: spec.name.clone(),
            key: self
                .wire
                .encode(key)
                .map_err(|e| ProcessError::caused_by("encode key", e))?,
            value: Some(
                self.wire
                    .encode(value)
                    .map_err(|e| ProcessError::caused_by("encode value", e))?,
            ),
            partition: Some(partition),
            headers: Vec::new(),
            idempotency_key,
        })
    }
}

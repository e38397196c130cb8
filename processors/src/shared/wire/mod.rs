//! Confluent's Avro wire format (magic byte 0, 4-byte schema id, Avro datum)
//! without awaiting the registry per record.
//!
//! The ids of the catalogue's schemas are resolved once: from the registry at
//! start ([`Wire::from_registry`], which registers the exact schema texts
//! under their subjects like the `Codec` does), or assigned locally in pure
//! tests ([`Wire::local`]). Bytes written with exactly this build's schema
//! take the direct codecs (`records::direct`). Bytes with any other writer
//! schema id (a producer that upgraded a schema compatibly, or has not
//! upgraded yet) are read with the writer's schema from the registry and
//! resolved to this build's by Avro's rules, into the same typed record
//! ([`crate::shared::writer_schemas`] looks each id up once per process and
//! keeps the answer). A writer schema that cannot be resolved (an unknown id,
//! another record, a field without default) is a [`WireError`] the caller
//! dead-letters with the reason; a registry that cannot be reached is
//! retriable ([`WireError::is_retriable`]), never a dead letter. See
//! docs/topology.md, "Schema evolution".

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

use afregning_topology::codec::split_wire_format;
use afregning_topology::records::direct::{
    EnrichedTail, ReadingHead, read_reading_head, resolved_read,
};
use afregning_topology::records::{
    AvroRecord, DatumError, EnrichedReading, Reading, RecordError, examples,
};
use afregning_topology::{Codec, CodecError, SchemaFile, Topic, topics};
use apache_avro::Schema;

use crate::shared::writer_schemas::{Unavailable, WriterSchemas};

thread_local! {
    /// Where [`Wire::encode`] writes a datum before copying it out at its size.
    static ENCODE_SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// A scratch buffer grown beyond this by one large record is given back.
const MAX_KEPT_SCRATCH: usize = 1 << 20;

/// Why bytes could not be encoded or decoded.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// The Rust value and the schema disagree.
    #[error(transparent)]
    Record(#[from] RecordError),
    /// Avro could not write or read the datum.
    #[error("avro: {0}")]
    Avro(String),
    /// The bytes are not Confluent's wire format.
    #[error("not Confluent wire format: {0}")]
    Framing(String),
    /// The record was written with a schema this build does not know and
    /// has no registry to look up (pure tests).
    #[error("writer schema id {id} is not {expected} as this build knows it")]
    UnknownSchema {
        /// The id in the record.
        id: u32,
        /// The schema the reader expected.
        expected: &'static str,
    },
    /// The registry has no usable schema for the record's writer schema id.
    #[error("writer schema id {id} cannot be resolved to {expected}: {reason}")]
    UnresolvableSchema {
        /// The id in the record.
        id: u32,
        /// The schema the reader expected.
        expected: &'static str,
        /// What the registry said.
        reason: String,
    },
    /// The registry could not be reached to look a writer schema up: retry
    /// later, do not dead-letter.
    #[error(transparent)]
    RegistryUnavailable(#[from] Unavailable),
    /// The registry could not resolve an id at start.
    #[error(transparent)]
    Registry(#[from] CodecError),
}

impl WireError {
    /// Whether the same bytes may decode later (the registry was
    /// unreachable): the caller fails the batch instead of dead-lettering.
    pub fn is_retriable(&self) -> bool {
        match self {
            WireError::RegistryUnavailable(_) => true,
            WireError::Registry(e) => e.is_retriable(),
            _ => false,
        }
    }
}

/// Schema ids of the catalogue's schemas, both ways, and the writer schemas
/// of other ids looked up so far (shared by every clone).
#[derive(Debug, Clone, Default)]
pub struct Wire {
    ids: HashMap<SchemaFile, u32>,
    writers: Arc<WriterSchemas>,
}

impl Wire {
    /// Ids assigned locally (1, 2, ... in [`SchemaFile::ALL`] order): pure
    /// tests encode and decode without a registry.
    pub fn local() -> Self {
        Self {
            ids: SchemaFile::ALL
                .iter()
                .enumerate()
                .map(|(i, f)| (*f, i as u32 + 1))
                .collect(),
            writers: Arc::default(),
        }
    }

    /// [`Wire::local`] that looks other writer schema ids up at
    /// `registry_url`: for tests that produce evolved records.
    pub fn local_with_registry(registry_url: &str) -> Self {
        Self {
            writers: Arc::new(WriterSchemas::new(Some(registry_url))),
            ..Self::local()
        }
    }

    /// Registers (or finds) every schema the processors read or write under
    /// its subject and records the ids the registry gave.
    pub async fn from_registry(codec: &Codec) -> Result<Self, WireError> {
        let mut wire = Wire {
            ids: HashMap::new(),
            writers: Arc::new(WriterSchemas::new(codec.registry_url())),
        };
        async fn both<K: AvroRecord + afregning_topology::records::TopicKey, V: AvroRecord>(
            wire: &mut Wire,
            codec: &Codec,
            topic: Topic<K, V>,
            key: K,
            value: V,
        ) -> Result<(), WireError> {
            let k = codec.encode_key(topic, &key).await?;
            let v = codec.encode_value(topic, &value).await?;
            wire.ids.insert(K::SCHEMA, id_of(&k)?);
            wire.ids.insert(V::SCHEMA, id_of(&v)?);
            Ok(())
        }
        both(
            &mut wire,
            codec,
            topics::READINGS,
            examples::metering_point_key(),
            examples::reading(),
        )
        .await?;
        both(
            &mut wire,
            codec,
            topics::METERING_POINTS,
            examples::metering_point_period_key(),
            examples::metering_point(),
        )
        .await?;
        both(
            &mut wire,
            codec,
            topics::CHARGES,
            examples::charge_period_key(),
            examples::charge(),
        )
        .await?;
        both(
            &mut wire,
            codec,
            topics::CHARGE_PRICES,
            examples::charge_price_key(),
            examples::charge_price(),
        )
        .await?;
        both(
            &mut wire,
            codec,
            topics::CHARGE_LINKS,
            examples::charge_link_key(),
            examples::charge_link(),
        )
        .await?;
        both(
            &mut wire,
            codec,
            topics::WHOLESALE_RESULTS,
            examples::wholesale_result_key(),
            examples::wholesale_result(),
        )
        .await?;
        both(
            &mut wire,
            codec,
            topics::DISCREPANCIES,
            examples::reconciliation_key(),
            examples::reconciliation(),
        )
        .await?;
        both(
            &mut wire,
            codec,
            topics::ENRICHED_READINGS,
            examples::metering_point_key(),
            examples::enriched_reading(),
        )
        .await?;
        both(
            &mut wire,
            codec,
            topics::DAILY_AGGREGATES,
            examples::daily_aggregate_key(),
            examples::daily_aggregate(),
        )
        .await?;
        both(
            &mut wire,
            codec,
            topics::SPOT_PRICES,
            examples::spot_price_key(),
            examples::spot_price(),
        )
        .await?;
        both(
            &mut wire,
            codec,
            topics::DEAD_LETTERS,
            examples::dead_letter_key(),
            examples::dead_letter(),
        )
        .await?;
        both(
            &mut wire,
            codec,
            topics::PROVISIONAL_SETTLEMENTS,
            examples::settlement_month_key(),
            examples::provisional_settlement(),
        )
        .await?;
        both(
            &mut wire,
            codec,
            topics::SETTLEMENT_STATEMENTS,
            examples::settlement_month_key(),
            examples::settlement_statement(),
        )
        .await?;
        // The portfolio processor's requests to DataHub (decision 0145).
        both(
            &mut wire,
            codec,
            topics::OUTBOUND_REQUESTS,
            examples::outbound_request_key(),
            examples::outbound_request(),
        )
        .await?;
        Ok(wire)
    }

    /// The id of `file`, if resolved.
    pub fn id(&self, file: SchemaFile) -> Option<u32> {
        self.ids.get(&file).copied()
    }

    /// `record` in Confluent's wire format. The datum comes from
    /// [`AvroRecord::write_datum`]: the direct codec for the hot records,
    /// the generic `Value` tree for the others (byte-identical either way).
    ///
    /// The datum is written into this thread's scratch buffer first and copied out at its
    /// size: written straight into a small vector, a day's reading (about 700 bytes) or a
    /// provisional settlement grew it four or five times.
    pub fn encode<T: AvroRecord>(&self, record: &T) -> Result<Vec<u8>, WireError> {
        let id = self.known_id(T::SCHEMA)?;
        ENCODE_SCRATCH.with(|scratch| {
            let Ok(mut scratch) = scratch.try_borrow_mut() else {
                // Only if a record's writer encoded another record itself.
                let mut out = header(id, 64);
                record.write_datum(&mut out)?;
                return Ok(out);
            };
            scratch.clear();
            record.write_datum(&mut scratch)?;
            let mut out = header(id, scratch.len());
            out.extend_from_slice(&scratch);
            if scratch.capacity() > MAX_KEPT_SCRATCH {
                *scratch = Vec::new();
            }
            Ok(out)
        })
    }

    /// A record of type `T` from wire-format bytes: with the direct codec
    /// when written with `T`'s schema, else resolved from the writer's.
    pub fn decode<T: AvroRecord>(&self, bytes: &[u8]) -> Result<T, WireError> {
        let mut datum = match self.datum_of(T::SCHEMA, bytes)? {
            Datum::Own(datum) => datum,
            Datum::Other(writer, datum) => return self.resolve(&writer, datum),
        };
        let record = T::read_datum(&mut datum)?;
        trailing(datum)?;
        Ok(record)
    }

    /// The head of a Reading (everything but the points, which are checked
    /// but not kept) from wire-format bytes: what enrich needs to splice.
    pub fn decode_reading_head(&self, bytes: &[u8]) -> Result<ReadingHead, WireError> {
        let mut datum = match self.datum_of(Reading::SCHEMA, bytes)? {
            Datum::Own(datum) => datum,
            Datum::Other(writer, datum) => {
                return Ok(ReadingHead::from(&self.resolve::<Reading>(&writer, datum)?));
            }
        };
        let head = read_reading_head(&mut datum)?;
        trailing(datum)?;
        Ok(head)
    }

    /// The writer schema ids among `payloads` (keys and values of a batch)
    /// that this build does not know: what [`Self::prefetch`] looks up.
    /// Bytes that are not Confluent's wire format (raw JSON) are skipped.
    pub fn unknown_ids<'a>(&self, payloads: impl IntoIterator<Item = &'a [u8]>) -> Vec<u32> {
        let mut ids: Vec<u32> = payloads
            .into_iter()
            .filter_map(|bytes| id_of(bytes).ok())
            .filter(|id| self.file_of(*id).is_none() && self.writers.cached(*id).is_none())
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    /// Looks the writer schemas of `ids` up in the registry, asynchronously
    /// and with retries, so that decoding them later never waits for it.
    /// An unreachable registry is [`WireError::RegistryUnavailable`].
    pub async fn prefetch(&self, ids: Vec<u32>) -> Result<(), WireError> {
        Ok(self.writers.prefetch(ids).await?)
    }

    /// The EnrichedReading of a Reading's wire-format bytes and `tail`,
    /// without decoding the points: the enriched datum is the reading's datum
    /// followed by the added fields, so the bytes are copied and the tail
    /// appended. Equal to [`Self::encode`] of the decoded enriched reading.
    pub fn splice_enriched(
        &self,
        reading: &[u8],
        tail: &EnrichedTail,
    ) -> Result<Vec<u8>, WireError> {
        let datum = match self.datum_of(Reading::SCHEMA, reading)? {
            Datum::Own(datum) => datum,
            // Another writer's datum is not this build's Reading: resolve
            // it and encode the enriched reading (the same bytes).
            Datum::Other(writer, datum) => {
                let enriched = EnrichedReading {
                    reading: self.resolve(&writer, datum)?,
                    grid_area: tail.grid_area.clone(),
                    price_area: tail.price_area.clone(),
                    settlement_method: tail.settlement_method,
                    energy_supplier_gln: tail.energy_supplier_gln.clone(),
                    master_data_valid_from: tail.master_data_valid_from,
                };
                return self.encode(&enriched);
            }
        };
        let mut out = self.header(EnrichedReading::SCHEMA, datum.len() + 64)?;
        out.extend_from_slice(datum);
        tail.encode(&mut out)?;
        Ok(out)
    }

    /// The 5-byte header of `file`, in a buffer with room for `datum` bytes.
    fn header(&self, file: SchemaFile, datum: usize) -> Result<Vec<u8>, WireError> {
        Ok(header(self.known_id(file)?, datum))
    }

    /// The registry id of `file`, which this build's schemas must have.
    fn known_id(&self, file: SchemaFile) -> Result<u32, WireError> {
        self.id(file).ok_or(WireError::UnknownSchema {
            id: 0,
            expected: file.full_name(),
        })
    }

    /// The datum of wire-format bytes, and whether it was written with this
    /// build's `file` or with another writer schema (which one, looked up).
    fn datum_of<'b>(&self, file: SchemaFile, bytes: &'b [u8]) -> Result<Datum<'b>, WireError> {
        let (id, datum) = split(bytes)?;
        if self.id(file) == Some(id) {
            return Ok(Datum::Own(datum));
        }
        if let Some(other) = self.file_of(id) {
            return Ok(Datum::Other(Writer::Catalogue(other.schema()), datum));
        }
        match self.writers.get(id)? {
            Some(Ok(schema)) => Ok(Datum::Other(Writer::Registry(schema), datum)),
            Some(Err(reason)) => Err(WireError::UnresolvableSchema {
                id,
                expected: file.full_name(),
                reason,
            }),
            None => Err(WireError::UnknownSchema {
                id,
                expected: file.full_name(),
            }),
        }
    }

    /// The catalogue schema this build knows under `id`, if any.
    fn file_of(&self, id: u32) -> Option<SchemaFile> {
        self.ids
            .iter()
            .find_map(|(file, known)| (*known == id).then_some(*file))
    }

    /// `T` from a datum written with `writer`, resolved by Avro's rules.
    fn resolve<T: AvroRecord>(&self, writer: &Writer, mut datum: &[u8]) -> Result<T, WireError> {
        let record = resolved_read::<T>(writer.schema(), &mut datum)?;
        trailing(datum)?;
        Ok(record)
    }
}

/// A datum and the schema it was written with.
enum Datum<'b> {
    /// Written with this build's schema: the direct codecs apply.
    Own(&'b [u8]),
    /// Written with another schema: resolved.
    Other(Writer, &'b [u8]),
}

/// A writer schema: one of this build's, or one from the registry.
enum Writer {
    Catalogue(&'static Schema),
    Registry(Arc<Schema>),
}

impl Writer {
    fn schema(&self) -> &Schema {
        match self {
            Writer::Catalogue(schema) => schema,
            Writer::Registry(schema) => schema,
        }
    }
}

impl From<DatumError> for WireError {
    fn from(e: DatumError) -> Self {
        match e {
            DatumError::Record(e) => WireError::Record(e),
            DatumError::Avro(e) => WireError::Avro(e),
        }
    }
}

fn trailing(datum: &[u8]) -> Result<(), WireError> {
    if datum.is_empty() {
        Ok(())
    } else {
        Err(WireError::Framing(format!(
            "{} bytes after the datum",
            datum.len()
        )))
    }
}

fn id_of(bytes: &[u8]) -> Result<u32, WireError> {
    split(bytes).map(|(id, _)| id)
}

/// The schema id and datum, by the header parser the topology's codec uses.
fn split(bytes: &[u8]) -> Result<(u32, &[u8]), WireError> {
    split_wire_format(bytes).map_err(|e| WireError::Framing(e.to_string()))
}

/// Confluent's 5-byte header for schema `id`, in a buffer with room for `datum` bytes.
fn header(id: u32, datum: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(5 + datum);
    out.push(0);
    out.extend_from_slice(&id.to_be_bytes());
    out
}

#[cfg(test)]
mod tests;

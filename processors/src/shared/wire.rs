//! Confluent's Avro wire format (magic byte 0, 4-byte schema id, Avro datum)
//! without awaiting the registry per record.
//!
//! The ids of the catalogue's schemas are resolved once: from the registry at
//! start ([`Wire::from_registry`], which registers the exact schema texts
//! under their subjects like the `Codec` does), or assigned locally in pure
//! tests ([`Wire::local`]). A record whose writer schema id this build does
//! not know is an error the caller reports: it is written by a newer or older
//! producer and needs schema resolution through the registry (see
//! docs/processors.md, "not yet done").

use std::collections::HashMap;

use afregning_topology::records::direct::{EnrichedTail, ReadingHead, read_reading_head};
use afregning_topology::records::{
    AvroRecord, DatumError, EnrichedReading, Reading, RecordError, examples,
};
use afregning_topology::{Codec, CodecError, SchemaFile, Topic, topics};

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
    /// The record was written with a schema this build does not know.
    #[error("writer schema id {id} is not {expected} as this build knows it")]
    UnknownSchema {
        /// The id in the record.
        id: u32,
        /// The schema the reader expected.
        expected: &'static str,
    },
    /// The registry could not resolve an id at start.
    #[error(transparent)]
    Registry(#[from] CodecError),
}

/// Schema ids of the catalogue's schemas, both ways.
#[derive(Debug, Clone, Default)]
pub struct Wire {
    ids: HashMap<SchemaFile, u32>,
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
        }
    }

    /// Registers (or finds) every schema the processors read or write under
    /// its subject and records the ids the registry gave.
    pub async fn from_registry(codec: &Codec) -> Result<Self, WireError> {
        let mut wire = Wire::default();
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
        Ok(wire)
    }

    /// The id of `file`, if resolved.
    pub fn id(&self, file: SchemaFile) -> Option<u32> {
        self.ids.get(&file).copied()
    }

    /// `record` in Confluent's wire format. The datum comes from
    /// [`AvroRecord::write_datum`]: the direct codec for the hot records,
    /// the generic `Value` tree for the others (byte-identical either way).
    pub fn encode<T: AvroRecord>(&self, record: &T) -> Result<Vec<u8>, WireError> {
        let mut out = self.header(T::SCHEMA, 64)?;
        record.write_datum(&mut out)?;
        Ok(out)
    }

    /// A record of type `T` from wire-format bytes written with `T`'s schema.
    pub fn decode<T: AvroRecord>(&self, bytes: &[u8]) -> Result<T, WireError> {
        let mut datum = self.datum_of(T::SCHEMA, bytes)?;
        let record = T::read_datum(&mut datum)?;
        trailing(datum)?;
        Ok(record)
    }

    /// The head of a Reading (everything but the points, which are checked
    /// but not kept) from wire-format bytes: what enrich needs to splice.
    pub fn decode_reading_head(&self, bytes: &[u8]) -> Result<ReadingHead, WireError> {
        let mut datum = self.datum_of(Reading::SCHEMA, bytes)?;
        let head = read_reading_head(&mut datum)?;
        trailing(datum)?;
        Ok(head)
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
        let datum = self.datum_of(Reading::SCHEMA, reading)?;
        let mut out = self.header(EnrichedReading::SCHEMA, datum.len() + 64)?;
        out.extend_from_slice(datum);
        tail.encode(&mut out)?;
        Ok(out)
    }

    /// The 5-byte header of `file`, in a buffer with room for `datum` bytes.
    fn header(&self, file: SchemaFile, datum: usize) -> Result<Vec<u8>, WireError> {
        let id = self.id(file).ok_or(WireError::UnknownSchema {
            id: 0,
            expected: file.full_name(),
        })?;
        let mut out = Vec::with_capacity(5 + datum);
        out.push(0);
        out.extend_from_slice(&id.to_be_bytes());
        Ok(out)
    }

    /// The datum of bytes written with this build's `file`; another writer
    /// schema id is an error (it needs resolution through the registry).
    fn datum_of<'b>(&self, file: SchemaFile, bytes: &'b [u8]) -> Result<&'b [u8], WireError> {
        let id = id_of(bytes)?;
        if self.id(file) != Some(id) {
            return Err(WireError::UnknownSchema {
                id,
                expected: file.full_name(),
            });
        }
        Ok(&bytes[5..])
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
    match bytes {
        [0, a, b, c, d, ..] => Ok(u32::from_be_bytes([*a, *b, *c, *d])),
        [] => Err(WireError::Framing("empty".into())),
        [m, ..] if *m != 0 => Err(WireError::Framing(format!("magic byte {m}, expected 0"))),
        _ => Err(WireError::Framing(format!(
            "{} bytes, shorter than the 5-byte header",
            bytes.len()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_record_type_round_trips_through_the_local_wire() {
        let wire = Wire::local();
        let reading = examples::reading();
        let bytes = wire.encode(&reading).expect("encodes");
        assert_eq!(bytes[0], 0);
        assert_eq!(wire.decode::<Reading>(&bytes).expect("decodes"), reading);
        let enriched = examples::enriched_reading();
        assert_eq!(
            wire.decode::<EnrichedReading>(&wire.encode(&enriched).expect("e"))
                .expect("d"),
            enriched
        );
        assert_eq!(
            wire.decode::<afregning_topology::records::DailyAggregate>(
                &wire.encode(&examples::daily_aggregate()).expect("e")
            )
            .expect("d"),
            examples::daily_aggregate()
        );
    }

    #[test]
    fn a_spliced_enriched_reading_is_the_encoded_one() {
        let wire = Wire::local();
        let enriched = examples::enriched_reading();
        let reading = wire.encode(&enriched.reading).expect("encodes");
        let head = wire.decode_reading_head(&reading).expect("head");
        assert_eq!(head, ReadingHead::from(&enriched.reading));
        let tail = EnrichedTail {
            grid_area: enriched.grid_area.clone(),
            price_area: enriched.price_area.clone(),
            settlement_method: enriched.settlement_method,
            energy_supplier_gln: enriched.energy_supplier_gln.clone(),
            master_data_valid_from: enriched.master_data_valid_from,
        };
        assert_eq!(
            wire.splice_enriched(&reading, &tail).expect("splices"),
            wire.encode(&enriched).expect("encodes")
        );
        // Only a reading of this build's schema is spliced.
        let other = wire.encode(&enriched).expect("encodes");
        assert!(matches!(
            wire.splice_enriched(&other, &tail),
            Err(WireError::UnknownSchema { .. })
        ));
        assert!(matches!(
            wire.decode_reading_head(&other),
            Err(WireError::UnknownSchema { .. })
        ));
        let mut trailing = reading.clone();
        trailing.push(0);
        assert!(matches!(
            wire.decode_reading_head(&trailing),
            Err(WireError::Framing(_))
        ));
    }

    #[test]
    fn bytes_of_another_schema_or_framing_are_refused() {
        let wire = Wire::local();
        let bytes = wire.encode(&examples::reading()).expect("encodes");
        assert!(matches!(
            wire.decode::<EnrichedReading>(&bytes),
            Err(WireError::UnknownSchema { .. })
        ));
        assert!(matches!(
            wire.decode::<Reading>(&[1, 0, 0, 0, 1]),
            Err(WireError::Framing(_))
        ));
        assert!(matches!(
            wire.decode::<Reading>(&[0, 0]),
            Err(WireError::Framing(_))
        ));
        let mut trailing = bytes.clone();
        trailing.push(7);
        assert!(wire.decode::<Reading>(&trailing).is_err());
    }
}

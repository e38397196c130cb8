//! Direct Avro binary codecs for the per-series hot records, without the
//! generic `apache_avro::Value` tree.
//!
//! Why: the generic path costs about 1 µs per quarter-hour value (a `Value`
//! per field, a boxed union, an allocated decimal and enum symbol, and a
//! `ResolvedSchema` per call); readings, enriched readings, daily aggregates,
//! provisional settlements, spot prices and charge prices are written and read
//! once per series or per value, so they get hand-written codecs here.
//!
//! The contract, proven by `topology/tests/direct_codec.rs` (a proptest that
//! compares both paths on random records, out-of-range values included):
//! - encoding writes the bytes `apache_avro::to_avro_datum` writes for the
//!   generic `Value` (decimals as 8 bytes of two's complement at the schema's
//!   scale, rescaled or refused like [`crate::records::AvroField`] does), and
//!   refuses a value with the same [`RecordError`];
//! - decoding reads what the generic reader reads, into an equal record, and
//!   refuses what it refuses (minimal-length decimals accepted).
//!
//! Records opt in with `avro_record!(T => File; direct)`, which overrides
//! [`AvroRecord::write_datum`] and [`AvroRecord::read_datum`], so every caller
//! of those (the processors' `Wire`) takes the fast path unchanged. Debug
//! builds also run the generic path on every record and panic on a
//! difference, so every debug test doubles as a check.

pub mod binary;
mod market;
mod metering;
mod settlement;

pub use binary::{Discard, ReadError, Reader, Sink};
pub use metering::{EnrichedTail, ReadingHead, read_reading_head};

use crate::records::{AvroRecord, DatumError, RecordError};

/// A record with a hand-written Avro binary codec for its schema.
pub trait DirectCodec: Sized {
    /// Writes the datum into `out` (or only checks it, into [`Discard`]);
    /// the error is the one the generic writer gives.
    fn encode<S: Sink>(&self, out: &mut S) -> Result<(), RecordError>;
    /// Reads the datum from the front of the reader.
    fn decode(r: &mut Reader<'_>) -> Result<Self, ReadError>;
}

/// The closure that turns a writer's complaint about `field` of `record`
/// into the [`RecordError`] the generic writer gives.
pub(crate) fn at(record: &'static str, field: &'static str) -> impl FnOnce(String) -> RecordError {
    move |problem| RecordError {
        record: record.to_string(),
        field: Some(field.to_string()),
        problem,
    }
}

/// Writes an array of records.
pub(crate) fn array<S: Sink, T: DirectCodec>(out: &mut S, items: &[T]) -> Result<(), RecordError> {
    binary::array_start(out, items.len());
    for item in items {
        item.encode(out)?;
    }
    binary::array_end(out);
    Ok(())
}

/// The datum through the generic `Value` tree: the default of
/// [`AvroRecord::write_datum`], and the reference the direct codec is
/// checked against.
pub fn generic_write<T: AvroRecord>(record: &T, out: &mut Vec<u8>) -> Result<(), DatumError> {
    let value = record.to_avro()?;
    // The datum functions are deprecated in favour of GenericDatumWriter/Reader in
    // apache-avro 0.22, which schema_registry_converter 6 does not use yet; one API for both.
    #[allow(deprecated)]
    let datum = apache_avro::to_avro_datum(T::SCHEMA.schema(), value)
        .map_err(|e| DatumError::Avro(e.to_string()))?;
    out.extend_from_slice(&datum);
    Ok(())
}

/// The record from a datum written with another schema, `writer` (a newer or
/// older producer's version, from the registry), resolved to `T`'s schema by
/// Avro's rules: fields the writer lacks take the reader's defaults, fields
/// the reader lacks are skipped. Why here: the processors' `Wire` takes the
/// direct codecs only for this build's exact schema and this for every other
/// writer, so both hand the processor the same typed record.
pub fn resolved_read<T: AvroRecord>(
    writer: &apache_avro::Schema,
    datum: &mut &[u8],
) -> Result<T, DatumError> {
    // Avro resolves records of the same name only; apache-avro's `resolve`
    // matches fields by name and would read a key as another key.
    if let (apache_avro::Schema::Record(w), apache_avro::Schema::Record(r)) =
        (writer, T::SCHEMA.schema())
        && w.name.name() != r.name.name()
    {
        return Err(DatumError::Avro(format!(
            "written as {}, not {}",
            w.name.fullname(None),
            T::SCHEMA.full_name()
        )));
    }
    #[allow(deprecated)]
    let value = apache_avro::from_avro_datum(writer, datum, None)
        .map_err(|e| DatumError::Avro(e.to_string()))?;
    let value = crate::records::avro::widen_decimals(value)
        .resolve(T::SCHEMA.schema())
        .map_err(|e| {
            DatumError::Avro(format!(
                "a record written with another schema cannot be read as {}: {e}",
                T::SCHEMA.full_name()
            ))
        })?;
    Ok(T::from_avro(value)?)
}

/// The record through the generic `Value` tree (the default of
/// [`AvroRecord::read_datum`]).
pub fn generic_read<T: AvroRecord>(datum: &mut &[u8]) -> Result<T, DatumError> {
    #[allow(deprecated)]
    let value = apache_avro::from_avro_datum(T::SCHEMA.schema(), datum, None)
        .map_err(|e| DatumError::Avro(e.to_string()))?;
    Ok(T::from_avro(value)?)
}

/// Writes `record` with its direct codec (what `avro_record!(..; direct)`
/// makes [`AvroRecord::write_datum`]); nothing is appended on error.
pub fn write<T>(record: &T, out: &mut Vec<u8>) -> Result<(), DatumError>
where
    T: AvroRecord + DirectCodec,
{
    let start = out.len();
    let result = record.encode(out).map_err(DatumError::Record);
    if result.is_err() {
        out.truncate(start);
    }
    #[cfg(debug_assertions)]
    check_write(record, &out[start..], &result);
    result
}

/// Reads a `T` with its direct codec from the front of `datum`, advancing it.
pub fn read<T>(datum: &mut &[u8]) -> Result<T, DatumError>
where
    T: AvroRecord + DirectCodec + PartialEq + std::fmt::Debug,
{
    let mut r = Reader::new(datum);
    let result =
        T::decode(&mut r).map_err(|e| DatumError::Avro(format!("{}: {e}", T::SCHEMA.full_name())));
    #[cfg(debug_assertions)]
    check_read::<T>(datum, r.rest.len(), &result);
    if result.is_ok() {
        *datum = r.rest;
    }
    result
}

/// Debug builds: the generic writer must agree byte for byte, or refuse
/// with the same error.
#[cfg(debug_assertions)]
fn check_write<T: AvroRecord>(record: &T, direct: &[u8], result: &Result<(), DatumError>) {
    let mut generic = Vec::new();
    match (generic_write(record, &mut generic), result) {
        (Ok(()), Ok(())) => assert_eq!(
            direct,
            generic.as_slice(),
            "direct and generic encodings of {} differ",
            T::SCHEMA.full_name()
        ),
        (Err(g), Err(d)) => assert_eq!(
            g,
            *d,
            "direct and generic writers of {} refuse differently",
            T::SCHEMA.full_name()
        ),
        (g, d) => panic!(
            "direct and generic writers of {} disagree: generic {g:?}, direct {d:?}",
            T::SCHEMA.full_name()
        ),
    }
}

/// Debug builds: the generic reader must read an equal record and stop at
/// the same byte, or refuse too.
#[cfg(debug_assertions)]
fn check_read<T>(datum: &[u8], rest: usize, result: &Result<T, DatumError>)
where
    T: AvroRecord + PartialEq + std::fmt::Debug,
{
    let mut generic_rest = datum;
    match (generic_read::<T>(&mut generic_rest), result) {
        (Ok(g), Ok(d)) => {
            assert_eq!(
                &g,
                d,
                "direct and generic readers of {} differ",
                T::SCHEMA.full_name()
            );
            assert_eq!(
                generic_rest.len(),
                rest,
                "direct and generic readers stop at different bytes"
            );
        }
        (Err(_), Err(_)) => {}
        (g, d) => panic!(
            "direct and generic readers of {} disagree: generic {g:?}, direct {d:?}",
            T::SCHEMA.full_name()
        ),
    }
}

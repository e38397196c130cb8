//! Mapping Rust record types to Avro values, driven by the `.avsc` schema.
//!
//! Why schema-driven instead of hand-built `Value`s or serde: the schema file is
//! the contract, and the places where Rust and Avro can silently disagree are
//! exactly the ones serde hides. Here every write and read goes through the
//! field's schema, so:
//! - a field the Rust type writes but the schema lacks, or a schema field the
//!   Rust type never writes or reads, is an error (checked on every record);
//! - a decimal takes its precision and scale from the schema, so Rust cannot
//!   encode kWh with 6 decimals where the schema says 3;
//! - `Option` in Rust must match `["null", T]` in the schema and vice versa;
//! - an enum symbol the schema does not list is an error, not a silent index.

use std::collections::HashMap;

use apache_avro::Decimal as AvroDecimal;
use apache_avro::Schema;
use apache_avro::schema::{DecimalSchema, RecordSchema};
use apache_avro::types::Value;
use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use rust_decimal::Decimal;

use crate::schemas::{Names, SchemaFile};

/// Why a Rust record and its Avro form did not fit together.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{record}{}: {problem}", field.as_ref().map(|f| format!(".{f}")).unwrap_or_default())]
pub struct RecordError {
    /// Full name of the Avro record.
    pub record: String,
    /// The field concerned, when there is one.
    pub field: Option<String>,
    /// What went wrong.
    pub problem: String,
}

impl RecordError {
    fn new(record: &RecordSchema, field: Option<&str>, problem: impl Into<String>) -> Self {
        Self {
            record: record.name.fullname(None),
            field: field.map(str::to_string),
            problem: problem.into(),
        }
    }
}

/// A Rust enum that is an Avro enum: its symbols are the schema's symbols.
pub trait AvroEnum: Sized + Copy + 'static {
    /// Full Avro name of the enum, e.g. `afregning.common.Resolution`.
    const AVRO_NAME: &'static str;
    /// The symbols in schema order.
    const SYMBOLS: &'static [&'static str];
    /// This value's symbol.
    fn symbol(self) -> &'static str;
    /// The value for a symbol, if the Rust type knows it.
    fn from_symbol(symbol: &str) -> Option<Self>;
    /// This value's position in [`Self::SYMBOLS`]: the Avro enum index the
    /// direct codec writes without looking the symbol up.
    fn index(self) -> usize;
    /// The value at a position in [`Self::SYMBOLS`], for the direct codec.
    fn from_index(index: usize) -> Option<Self>;
}

/// Defines a Rust enum whose variants are the symbols of an Avro enum.
macro_rules! avro_enum {
    (
        $(#[$meta:meta])*
        $name:ident = $avro:literal {
            $($(#[$vmeta:meta])* $variant:ident = $symbol:literal),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $symbol)] $variant),+
        }

        impl $crate::records::avro::AvroEnum for $name {
            const AVRO_NAME: &'static str = $avro;
            const SYMBOLS: &'static [&'static str] = &[$($symbol),+];
            fn symbol(self) -> &'static str {
                match self {
                    $($name::$variant => $symbol),+
                }
            }
            fn from_symbol(symbol: &str) -> Option<Self> {
                match symbol {
                    $($symbol => Some($name::$variant),)+
                    _ => None,
                }
            }
            fn index(self) -> usize {
                self as usize
            }
            fn from_index(index: usize) -> Option<Self> {
                const VARIANTS: &[$name] = &[$($name::$variant),+];
                VARIANTS.get(index).copied()
            }
        }

        impl $name {
            /// The code as DataHub and the schema spell it.
            pub fn code(self) -> &'static str {
                <Self as $crate::records::avro::AvroEnum>::symbol(self)
            }

            /// The value for a code, if known.
            pub fn from_code(code: &str) -> Option<Self> {
                <Self as $crate::records::avro::AvroEnum>::from_symbol(code)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.code())
            }
        }
    };
}
pub(crate) use avro_enum;

/// The fields of a record type: how it writes itself into, and reads itself
/// from, the Avro record its schema defines. Nested records (a reading's
/// points) implement only this; topic records also implement [`AvroRecord`].
pub trait AvroFields: Sized {
    /// Writes every field.
    fn write(&self, w: &mut RecordWriter) -> Result<(), RecordError>;
    /// Reads every field.
    fn read(r: &mut RecordReader) -> Result<Self, RecordError>;
}

/// A record that is the key or value of a topic, bound to its schema file.
pub trait AvroRecord: AvroFields {
    /// The `.avsc` this type is written with.
    const SCHEMA: SchemaFile;

    /// The Avro value of this record, checked against the schema.
    fn to_avro(&self) -> Result<Value, RecordError> {
        let mut w = RecordWriter::top(Self::SCHEMA)?;
        self.write(&mut w)?;
        w.finish()
    }

    /// The record from an Avro value shaped by this type's schema (after
    /// schema resolution, see [`crate::codec`]); every schema field must be read.
    fn from_avro(value: Value) -> Result<Self, RecordError> {
        let mut r = RecordReader::top(Self::SCHEMA, value)?;
        let record = Self::read(&mut r)?;
        r.finish()?;
        Ok(record)
    }

    /// The grid area the record belongs to, for topics partitioned by grid
    /// area; `None` for records that do not know it.
    fn grid_area(&self) -> Option<&str> {
        None
    }

    /// Appends the record's Avro binary datum to `out`. The default goes
    /// through the generic `Value` tree; the hot records override it with
    /// the direct codec (byte-identical, see [`crate::records::direct`]).
    fn write_datum(&self, out: &mut Vec<u8>) -> Result<(), DatumError> {
        crate::records::direct::generic_write(self, out)
    }

    /// Reads the record from the front of `datum` (written with this
    /// build's schema), advancing it past the datum.
    fn read_datum(datum: &mut &[u8]) -> Result<Self, DatumError> {
        crate::records::direct::generic_read(datum)
    }

    /// Checks that the schema accepts the record (decimal precision and
    /// scale, millisecond timestamps) without keeping an encoding: the same
    /// error [`Self::to_avro`] gives.
    fn check_schema(&self) -> Result<(), RecordError> {
        self.to_avro().map(|_| ())
    }
}

/// Why a datum could not be written or read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DatumError {
    /// The Rust value and the schema disagree.
    #[error(transparent)]
    Record(#[from] RecordError),
    /// The bytes are not a datum of the schema (or apache-avro refused to
    /// write one).
    #[error("{0}")]
    Avro(String),
}

/// Follows a named reference to the type it names.
fn deref<'s>(schema: &'s Schema, names: &'s Names) -> &'s Schema {
    match schema {
        Schema::Ref { name } => names.get(&name.fullname(None)).unwrap_or(schema),
        other => other,
    }
}

fn record_schema<'s>(schema: &'s Schema, names: &'s Names) -> Option<&'s RecordSchema> {
    match deref(schema, names) {
        Schema::Record(record) => Some(record),
        _ => None,
    }
}

/// A Rust value that maps to one non-null Avro type.
pub trait AvroField: Sized {
    /// The Avro value for the field's (non-null) schema.
    fn to_value(&self, schema: &Schema, names: &Names) -> Result<Value, String>;
    /// The Rust value from an Avro value of the field's (non-null) schema.
    fn from_value(value: Value, schema: &Schema, names: &Names) -> Result<Self, String>;
}

fn mismatch(schema: &Schema, rust: &str) -> String {
    format!(
        "the schema says {:?}, the Rust type is {rust}",
        apache_avro::schema::SchemaKind::from(schema)
    )
}

impl AvroField for String {
    fn to_value(&self, schema: &Schema, _: &Names) -> Result<Value, String> {
        match schema {
            Schema::String => Ok(Value::String(self.clone())),
            other => Err(mismatch(other, "String")),
        }
    }
    fn from_value(value: Value, schema: &Schema, _: &Names) -> Result<Self, String> {
        match (schema, value) {
            (Schema::String, Value::String(s)) => Ok(s),
            (_, value) => Err(format!("expected a string, got {value:?}")),
        }
    }
}

impl AvroField for i32 {
    fn to_value(&self, schema: &Schema, _: &Names) -> Result<Value, String> {
        match schema {
            Schema::Int => Ok(Value::Int(*self)),
            other => Err(mismatch(other, "i32")),
        }
    }
    fn from_value(value: Value, schema: &Schema, _: &Names) -> Result<Self, String> {
        match (schema, value) {
            (Schema::Int, Value::Int(i)) => Ok(i),
            (_, value) => Err(format!("expected an int, got {value:?}")),
        }
    }
}

impl AvroField for i64 {
    fn to_value(&self, schema: &Schema, _: &Names) -> Result<Value, String> {
        match schema {
            Schema::Long => Ok(Value::Long(*self)),
            other => Err(mismatch(other, "i64")),
        }
    }
    fn from_value(value: Value, schema: &Schema, _: &Names) -> Result<Self, String> {
        match (schema, value) {
            (Schema::Long, Value::Long(i)) => Ok(i),
            (Schema::Long, Value::Int(i)) => Ok(i64::from(i)),
            (_, value) => Err(format!("expected a long, got {value:?}")),
        }
    }
}

impl AvroField for bool {
    fn to_value(&self, schema: &Schema, _: &Names) -> Result<Value, String> {
        match schema {
            Schema::Boolean => Ok(Value::Boolean(*self)),
            other => Err(mismatch(other, "bool")),
        }
    }
    fn from_value(value: Value, schema: &Schema, _: &Names) -> Result<Self, String> {
        match (schema, value) {
            (Schema::Boolean, Value::Boolean(b)) => Ok(b),
            (_, value) => Err(format!("expected a boolean, got {value:?}")),
        }
    }
}

impl AvroField for Vec<u8> {
    fn to_value(&self, schema: &Schema, _: &Names) -> Result<Value, String> {
        match schema {
            Schema::Bytes => Ok(Value::Bytes(self.clone())),
            other => Err(mismatch(other, "bytes")),
        }
    }
    fn from_value(value: Value, schema: &Schema, _: &Names) -> Result<Self, String> {
        match (schema, value) {
            (Schema::Bytes, Value::Bytes(b)) => Ok(b),
            (_, value) => Err(format!("expected bytes, got {value:?}")),
        }
    }
}

impl AvroField for DateTime<Utc> {
    fn to_value(&self, schema: &Schema, _: &Names) -> Result<Value, String> {
        match schema {
            Schema::TimestampMillis => {
                if !self.timestamp_subsec_nanos().is_multiple_of(1_000_000) {
                    return Err(format!(
                        "{self} has sub-millisecond precision; timestamp-millis would drop it"
                    ));
                }
                Ok(Value::TimestampMillis(self.timestamp_millis()))
            }
            other => Err(mismatch(other, "DateTime<Utc>")),
        }
    }
    fn from_value(value: Value, schema: &Schema, _: &Names) -> Result<Self, String> {
        match (schema, value) {
            (Schema::TimestampMillis, Value::TimestampMillis(ms) | Value::Long(ms)) => {
                DateTime::from_timestamp_millis(ms)
                    .ok_or_else(|| format!("timestamp {ms} ms is out of range"))
            }
            (_, value) => Err(format!("expected a timestamp-millis, got {value:?}")),
        }
    }
}

const UNIX_EPOCH_DATE: NaiveDate = NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid date");

impl AvroField for NaiveDate {
    fn to_value(&self, schema: &Schema, _: &Names) -> Result<Value, String> {
        match schema {
            Schema::Date => {
                let days = self.signed_duration_since(UNIX_EPOCH_DATE).num_days();
                i32::try_from(days)
                    .map(Value::Date)
                    .map_err(|_| format!("{self} is out of range for an Avro date"))
            }
            other => Err(mismatch(other, "NaiveDate")),
        }
    }
    fn from_value(value: Value, schema: &Schema, _: &Names) -> Result<Self, String> {
        match (schema, value) {
            (Schema::Date, Value::Date(days) | Value::Int(days)) => UNIX_EPOCH_DATE
                .checked_add_signed(TimeDelta::days(i64::from(days)))
                .ok_or_else(|| format!("date {days} days after 1970-01-01 is out of range")),
            (_, value) => Err(format!("expected a date, got {value:?}")),
        }
    }
}

/// Bytes needed for a two's-complement number of `precision` decimal digits,
/// the length apache-avro's decimal resolution requires of a value.
fn bytes_for_precision(precision: usize) -> usize {
    (1..=16)
        .find(|&len| {
            let max = 2f64.powi(8 * len as i32 - 1) - 1.0;
            max.log10().floor() as usize >= precision
        })
        .unwrap_or(16)
}

/// The schema's decimal as big-endian two's-complement bytes of the unscaled
/// value, sign-extended to the length the precision needs.
pub(crate) fn decimal_to_avro(value: Decimal, schema: &DecimalSchema) -> Result<Value, String> {
    let scale = u32::try_from(schema.scale).map_err(|_| "scale out of range".to_string())?;
    let mantissa = checked_mantissa(value, schema.precision, scale)?;
    let len = bytes_for_precision(schema.precision);
    let full = mantissa.to_be_bytes();
    Ok(Value::Decimal(AvroDecimal::from(&full[16 - len..])))
}

/// The unscaled value of `value` at `scale`, refused (not rounded) when it
/// has more decimals than the scale or more digits than the precision. Shared
/// by the generic and the direct writer so both refuse with the same words.
pub(crate) fn checked_mantissa(
    value: Decimal,
    precision: usize,
    scale: u32,
) -> Result<i128, String> {
    let mantissa = if value.scale() == scale {
        value.mantissa()
    } else if let Some(m) = widened_mantissa(value, scale) {
        m
    } else {
        let mut scaled = value;
        scaled.rescale(scale);
        if scaled != value {
            return Err(format!(
                "{value} has more than the schema's {scale} decimals; round it explicitly before writing"
            ));
        }
        scaled.mantissa()
    };
    // `digits <= precision`, where zero has one digit.
    let fits = precision > 0
        && POWERS_OF_TEN
            .get(precision)
            .is_none_or(|limit| mantissa.unsigned_abs() < *limit);
    if !fits {
        let digits = mantissa
            .unsigned_abs()
            .checked_ilog10()
            .map_or(1, |d| d as usize + 1);
        return Err(format!(
            "{value} has {digits} digits, more than the schema's precision {precision}"
        ));
    }
    Ok(mantissa)
}

/// 10^0 ..= 10^38: the precision check without a logarithm per value.
const POWERS_OF_TEN: [u128; 39] = {
    let mut out = [1u128; 39];
    let mut i = 1;
    while i < 39 {
        out[i] = out[i - 1] * 10;
        i += 1;
    }
    out
};

/// The mantissa of `value` written at the larger `scale` (a quantity sent as `1.5`
/// for a `decimal(18, 3)` field), when that is exact and within rust_decimal's 96
/// bits: what `rescale` then gives, without rescaling and comparing a Decimal.
/// `None` for a smaller scale or a product beyond 96 bits (the general path decides).
fn widened_mantissa(value: Decimal, scale: u32) -> Option<i128> {
    let extra = scale.checked_sub(value.scale())?;
    if scale > Decimal::MAX_SCALE {
        return None;
    }
    let factor = i128::try_from(*POWERS_OF_TEN.get(usize::try_from(extra).ok()?)?).ok()?;
    let widened = value.mantissa().checked_mul(factor)?;
    (widened.unsigned_abs() < 1u128 << 96).then_some(widened)
}

/// The unscaled value of Avro decimal bytes of any length up to 16.
fn mantissa_from_bytes(bytes: &[u8]) -> Result<i128, String> {
    if bytes.is_empty() {
        return Ok(0);
    }
    if bytes.len() > 16 {
        return Err(format!(
            "a decimal of {} bytes does not fit 128 bits",
            bytes.len()
        ));
    }
    let fill = if bytes[0] & 0x80 != 0 { 0xFF } else { 0x00 };
    let mut full = [fill; 16];
    full[16 - bytes.len()..].copy_from_slice(bytes);
    Ok(i128::from_be_bytes(full))
}

pub(crate) fn decimal_from_avro(value: Value, schema: &DecimalSchema) -> Result<Decimal, String> {
    let bytes = match value {
        Value::Decimal(d) => Vec::<u8>::try_from(&d).map_err(|e| e.to_string())?,
        Value::Bytes(b) => b,
        other => return Err(format!("expected a decimal, got {other:?}")),
    };
    let mantissa = mantissa_from_bytes(&bytes)?;
    let scale = u32::try_from(schema.scale).map_err(|_| "scale out of range".to_string())?;
    Decimal::try_from_i128_with_scale(mantissa, scale).map_err(|e| e.to_string())
}

impl AvroField for Decimal {
    fn to_value(&self, schema: &Schema, _: &Names) -> Result<Value, String> {
        match schema {
            Schema::Decimal(decimal) => decimal_to_avro(*self, decimal),
            other => Err(mismatch(other, "Decimal")),
        }
    }
    fn from_value(value: Value, schema: &Schema, _: &Names) -> Result<Self, String> {
        match schema {
            Schema::Decimal(decimal) => decimal_from_avro(value, decimal),
            other => Err(mismatch(other, "Decimal")),
        }
    }
}

/// Avro enums map through their symbols; the schema decides the index.
impl<E: AvroEnum> AvroField for E {
    fn to_value(&self, schema: &Schema, names: &Names) -> Result<Value, String> {
        match deref(schema, names) {
            Schema::Enum(e) => {
                let symbol = self.symbol();
                let index = e.symbols.iter().position(|s| s == symbol).ok_or_else(|| {
                    format!(
                        "symbol {symbol} is not in the schema's {}",
                        e.name.fullname(None)
                    )
                })?;
                Ok(Value::Enum(index as u32, symbol.to_string()))
            }
            other => Err(mismatch(other, E::AVRO_NAME)),
        }
    }
    fn from_value(value: Value, schema: &Schema, names: &Names) -> Result<Self, String> {
        match (deref(schema, names), value) {
            (Schema::Enum(_), Value::Enum(_, symbol)) => E::from_symbol(&symbol)
                .ok_or_else(|| format!("unknown {} symbol {symbol}", E::AVRO_NAME)),
            (_, value) => Err(format!("expected an enum, got {value:?}")),
        }
    }
}

/// Writes a record's fields in schema order, checking each against the schema.
#[derive(Debug)]
pub struct RecordWriter {
    schema: &'static RecordSchema,
    names: &'static Names,
    values: Vec<Option<Value>>,
}

impl RecordWriter {
    fn top(file: SchemaFile) -> Result<Self, RecordError> {
        let parsed = file.parsed();
        match &parsed.schema {
            Schema::Record(record) => Ok(Self::nested(record, &parsed.names)),
            _ => Err(RecordError {
                record: file.full_name().to_string(),
                field: None,
                problem: "the schema is not a record".into(),
            }),
        }
    }

    fn nested(schema: &'static RecordSchema, names: &'static Names) -> Self {
        Self {
            schema,
            names,
            values: vec![None; schema.fields.len()],
        }
    }

    fn slot(&self, name: &str) -> Result<(usize, &'static Schema), RecordError> {
        let index = self
            .schema
            .fields
            .iter()
            .position(|f| f.name == name)
            .ok_or_else(|| {
                RecordError::new(
                    self.schema,
                    Some(name),
                    "the Rust type writes a field the schema does not have",
                )
            })?;
        Ok((index, deref(&self.schema.fields[index].schema, self.names)))
    }

    fn set(&mut self, name: &str, index: usize, value: Value) -> Result<(), RecordError> {
        if self.values[index].replace(value).is_some() {
            return Err(RecordError::new(self.schema, Some(name), "written twice"));
        }
        Ok(())
    }

    /// Writes a required field.
    pub fn put<T: AvroField>(&mut self, name: &str, value: &T) -> Result<(), RecordError> {
        let (index, schema) = self.slot(name)?;
        if matches!(schema, Schema::Union(_)) {
            return Err(RecordError::new(
                self.schema,
                Some(name),
                "the schema makes the field optional but the Rust type does not (use Option)",
            ));
        }
        let value = value
            .to_value(schema, self.names)
            .map_err(|problem| RecordError::new(self.schema, Some(name), problem))?;
        self.set(name, index, value)
    }

    /// Writes an optional field (`["null", T]` in the schema).
    pub fn put_opt<T: AvroField>(
        &mut self,
        name: &str,
        value: Option<&T>,
    ) -> Result<(), RecordError> {
        let (index, schema) = self.slot(name)?;
        let Schema::Union(union) = schema else {
            return Err(RecordError::new(
                self.schema,
                Some(name),
                "the Rust type is optional but the schema field is not a union with null",
            ));
        };
        let variants = union.variants();
        let value = match value {
            None => {
                let null = variants
                    .iter()
                    .position(|v| matches!(v, Schema::Null))
                    .ok_or_else(|| {
                        RecordError::new(self.schema, Some(name), "the union has no null")
                    })?;
                Value::Union(null as u32, Box::new(Value::Null))
            }
            Some(value) => {
                let (position, variant) = variants
                    .iter()
                    .enumerate()
                    .find(|(_, v)| !matches!(v, Schema::Null))
                    .ok_or_else(|| {
                        RecordError::new(self.schema, Some(name), "the union has only null")
                    })?;
                let inner = value
                    .to_value(deref(variant, self.names), self.names)
                    .map_err(|problem| RecordError::new(self.schema, Some(name), problem))?;
                Value::Union(position as u32, Box::new(inner))
            }
        };
        self.set(name, index, value)
    }

    /// Writes a nested record field.
    pub fn put_record<T: AvroFields>(&mut self, name: &str, value: &T) -> Result<(), RecordError> {
        let (index, schema) = self.slot(name)?;
        let record = record_schema(schema, self.names).ok_or_else(|| {
            RecordError::new(self.schema, Some(name), "the schema field is not a record")
        })?;
        let mut nested = RecordWriter::nested(record, self.names);
        value.write(&mut nested)?;
        let value = nested.finish()?;
        self.set(name, index, value)
    }

    /// Writes an array-of-records field.
    pub fn put_records<T: AvroFields>(
        &mut self,
        name: &str,
        items: &[T],
    ) -> Result<(), RecordError> {
        let (index, schema) = self.slot(name)?;
        let Schema::Array(array) = schema else {
            return Err(RecordError::new(
                self.schema,
                Some(name),
                "the schema field is not an array",
            ));
        };
        let record = record_schema(&array.items, self.names).ok_or_else(|| {
            RecordError::new(self.schema, Some(name), "the array's items are not records")
        })?;
        let mut values = Vec::with_capacity(items.len());
        for item in items {
            let mut nested = RecordWriter::nested(record, self.names);
            item.write(&mut nested)?;
            values.push(nested.finish()?);
        }
        self.set(name, index, Value::Array(values))
    }

    /// The finished record; every schema field must have been written.
    pub fn finish(self) -> Result<Value, RecordError> {
        let mut fields = Vec::with_capacity(self.values.len());
        for (field, value) in self.schema.fields.iter().zip(self.values) {
            let value = value.ok_or_else(|| {
                RecordError::new(
                    self.schema,
                    Some(&field.name),
                    "the schema has a field the Rust type does not write",
                )
            })?;
            fields.push((field.name.clone(), value));
        }
        Ok(Value::Record(fields))
    }
}

/// Reads a record's fields by name, checking each against the schema; every
/// field must be read.
#[derive(Debug)]
pub struct RecordReader {
    schema: &'static RecordSchema,
    names: &'static Names,
    values: HashMap<String, Value>,
}

impl RecordReader {
    fn top(file: SchemaFile, value: Value) -> Result<Self, RecordError> {
        let parsed = file.parsed();
        match &parsed.schema {
            Schema::Record(record) => Self::nested(record, &parsed.names, value),
            _ => Err(RecordError {
                record: file.full_name().to_string(),
                field: None,
                problem: "the schema is not a record".into(),
            }),
        }
    }

    fn nested(
        schema: &'static RecordSchema,
        names: &'static Names,
        value: Value,
    ) -> Result<Self, RecordError> {
        let values = match value {
            Value::Record(fields) => fields.into_iter().collect(),
            Value::Union(_, inner) => return Self::nested(schema, names, *inner),
            other => {
                return Err(RecordError::new(
                    schema,
                    None,
                    format!("expected a record, got {other:?}"),
                ));
            }
        };
        Ok(Self {
            schema,
            names,
            values,
        })
    }

    fn take(&mut self, name: &str) -> Result<(Value, &'static Schema), RecordError> {
        let field = self
            .schema
            .fields
            .iter()
            .find(|f| f.name == name)
            .ok_or_else(|| {
                RecordError::new(
                    self.schema,
                    Some(name),
                    "the Rust type reads a field the schema does not have",
                )
            })?;
        let value = self
            .values
            .remove(name)
            .ok_or_else(|| RecordError::new(self.schema, Some(name), "missing from the value"))?;
        Ok((value, deref(&field.schema, self.names)))
    }

    /// Reads a required field.
    pub fn get<T: AvroField>(&mut self, name: &str) -> Result<T, RecordError> {
        let (value, schema) = self.take(name)?;
        if matches!(schema, Schema::Union(_)) {
            return Err(RecordError::new(
                self.schema,
                Some(name),
                "the schema makes the field optional but the Rust type does not (use Option)",
            ));
        }
        T::from_value(value, schema, self.names)
            .map_err(|problem| RecordError::new(self.schema, Some(name), problem))
    }

    /// Reads an optional field.
    pub fn get_opt<T: AvroField>(&mut self, name: &str) -> Result<Option<T>, RecordError> {
        let (value, schema) = self.take(name)?;
        let Schema::Union(union) = schema else {
            return Err(RecordError::new(
                self.schema,
                Some(name),
                "the Rust type is optional but the schema field is not a union with null",
            ));
        };
        let inner = match value {
            Value::Union(_, inner) => *inner,
            other => other,
        };
        if inner == Value::Null {
            return Ok(None);
        }
        let variant = union
            .variants()
            .iter()
            .find(|v| !matches!(v, Schema::Null))
            .ok_or_else(|| RecordError::new(self.schema, Some(name), "the union has only null"))?;
        T::from_value(inner, deref(variant, self.names), self.names)
            .map(Some)
            .map_err(|problem| RecordError::new(self.schema, Some(name), problem))
    }

    /// Reads a nested record field.
    pub fn get_record<T: AvroFields>(&mut self, name: &str) -> Result<T, RecordError> {
        let (value, schema) = self.take(name)?;
        let record = record_schema(schema, self.names).ok_or_else(|| {
            RecordError::new(self.schema, Some(name), "the schema field is not a record")
        })?;
        let mut nested = RecordReader::nested(record, self.names, value)?;
        let item = T::read(&mut nested)?;
        nested.finish()?;
        Ok(item)
    }

    /// Reads an array-of-records field.
    pub fn get_records<T: AvroFields>(&mut self, name: &str) -> Result<Vec<T>, RecordError> {
        let (value, schema) = self.take(name)?;
        let Schema::Array(array) = schema else {
            return Err(RecordError::new(
                self.schema,
                Some(name),
                "the schema field is not an array",
            ));
        };
        let record = record_schema(&array.items, self.names).ok_or_else(|| {
            RecordError::new(self.schema, Some(name), "the array's items are not records")
        })?;
        let Value::Array(items) = value else {
            return Err(RecordError::new(
                self.schema,
                Some(name),
                "expected an array",
            ));
        };
        items
            .into_iter()
            .map(|item| {
                let mut nested = RecordReader::nested(record, self.names, item)?;
                let read = T::read(&mut nested)?;
                nested.finish()?;
                Ok(read)
            })
            .collect()
    }

    /// Ends reading; a field the Rust type did not read is an error, because
    /// it would be silently dropped.
    pub fn finish(self) -> Result<(), RecordError> {
        if self.values.is_empty() {
            return Ok(());
        }
        let mut unread: Vec<&String> = self.values.keys().collect();
        unread.sort();
        Err(RecordError::new(
            self.schema,
            None,
            format!("the Rust type does not read the schema's fields {unread:?}"),
        ))
    }
}

/// Pads every decimal in a value to 16 bytes (sign-extended), so apache-avro's
/// schema resolution, which compares a decimal's byte length with the schema's
/// precision, accepts the minimal-length decimals Java and Python writers
/// produce.
pub(crate) fn widen_decimals(value: Value) -> Value {
    match value {
        Value::Decimal(d) => match Vec::<u8>::try_from(&d) {
            Ok(bytes) if bytes.len() < 16 => match mantissa_from_bytes(&bytes) {
                Ok(m) => Value::Decimal(AvroDecimal::from(m.to_be_bytes())),
                Err(_) => Value::Decimal(d),
            },
            _ => Value::Decimal(d),
        },
        Value::Record(fields) => Value::Record(
            fields
                .into_iter()
                .map(|(n, v)| (n, widen_decimals(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(widen_decimals).collect()),
        Value::Union(i, inner) => Value::Union(i, Box::new(widen_decimals(*inner))),
        Value::Map(map) => Value::Map(
            map.into_iter()
                .map(|(k, v)| (k, widen_decimals(v)))
                .collect(),
        ),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use apache_avro::schema::InnerDecimalSchema;
    use rust_decimal_macros::dec;

    use super::*;

    fn schema(precision: usize, scale: usize) -> DecimalSchema {
        DecimalSchema {
            precision,
            scale,
            inner: InnerDecimalSchema::Bytes,
        }
    }

    #[test]
    fn decimals_round_trip_with_the_schema_scale() {
        let s = schema(18, 6);
        for value in [
            dec!(0),
            dec!(1.5),
            dec!(-1.5),
            dec!(123456789012.123456),
            dec!(-0.000001),
        ] {
            let avro = decimal_to_avro(value, &s).expect("fits");
            assert_eq!(decimal_from_avro(avro, &s).expect("reads"), value);
        }
    }

    #[test]
    fn decimals_are_big_endian_twos_complement_of_the_unscaled_value() {
        // 1.5 at scale 3 is 1500 = 0x05DC; -1.5 is -1500 = 0xFA24, sign-extended to 8 bytes.
        let Value::Decimal(d) = decimal_to_avro(dec!(1.5), &schema(18, 3)).unwrap() else {
            panic!()
        };
        assert_eq!(
            Vec::<u8>::try_from(&d).unwrap(),
            vec![0, 0, 0, 0, 0, 0, 0x05, 0xDC]
        );
        let Value::Decimal(d) = decimal_to_avro(dec!(-1.5), &schema(18, 3)).unwrap() else {
            panic!()
        };
        assert_eq!(
            Vec::<u8>::try_from(&d).unwrap(),
            vec![0xFF; 6]
                .into_iter()
                .chain([0xFA, 0x24])
                .collect::<Vec<_>>()
        );
        // What a Java writer sends for 1.5 (minimal bytes) reads the same.
        assert_eq!(
            decimal_from_avro(Value::Bytes(vec![0x05, 0xDC]), &schema(18, 3)).unwrap(),
            dec!(1.5)
        );
        assert_eq!(
            decimal_from_avro(Value::Bytes(vec![0xFA, 0x24]), &schema(18, 3)).unwrap(),
            dec!(-1.5)
        );
    }

    #[test]
    fn decimals_that_do_not_fit_the_schema_are_refused_not_rounded() {
        assert!(decimal_to_avro(dec!(0.0001), &schema(18, 3)).is_err());
        assert!(decimal_to_avro(dec!(1000000000000000), &schema(18, 3)).is_err());
        assert!(
            decimal_to_avro(dec!(1.100), &schema(18, 1)).is_ok(),
            "trailing zeros are not precision"
        );
    }

    #[test]
    fn minimal_length_decimals_survive_resolution_after_widening() {
        let s = Schema::Decimal(schema(18, 3));
        let minimal = Value::Decimal(AvroDecimal::from(vec![0x05, 0xDC]));
        assert!(
            minimal.clone().resolve(&s).is_err(),
            "apache-avro refuses short decimals; widening exists for this"
        );
        let widened = widen_decimals(minimal).resolve(&s).expect("resolves");
        assert_eq!(
            decimal_from_avro(widened, &schema(18, 3)).unwrap(),
            dec!(1.5)
        );
    }

    #[test]
    fn precision_18_needs_8_bytes() {
        assert_eq!(bytes_for_precision(18), 8);
        assert_eq!(bytes_for_precision(2), 1);
        assert_eq!(bytes_for_precision(38), 16);
    }
}

//! Rust types for the key and value of every topic the pipeline writes, each
//! bound to its `.avsc` file.
//!
//! Money and energy are `rust_decimal::Decimal` (Avro `decimal`, scale from the
//! schema), instants `DateTime<Utc>` (`timestamp-millis`), local days
//! `NaiveDate` (`date`). Codes DataHub defines as closed lists are enums whose
//! variants are the schema's symbols; open lists (metering point types, units)
//! stay strings.

pub(crate) mod avro;
mod charges;
mod datahub;
pub mod direct;
pub mod examples;
mod keys;
mod market;
mod metering;
mod ops;
mod settlement;
mod wholesale;

use std::borrow::Cow;

use apache_avro::types::Value;

pub use avro::{
    AvroEnum, AvroField, AvroFields, AvroRecord, DatumError, RecordError, RecordReader,
    RecordWriter,
};
pub use charges::{Charge, ChargeLink, ChargePrice, ChargePricePoint};
pub use datahub::{CimJson, OutboundRequest, OutboundResponse};
pub use keys::{
    ChargeLinkKey, ChargePeriodKey, ChargePriceKey, DailyAggregateKey, DataHubMessageKey,
    DeadLetterKey, MeteringPointKey, MeteringPointPeriodKey, OutboundRequestKey, ReconciliationKey,
    SettlementMonthKey, SpotPriceKey, WholesaleResultKey, charge_routing_key,
};
pub use market::SpotPrice;
pub use metering::{
    DailyAggregate, EnrichedReading, HourlyEnergy, MeteringPoint, QualityCount, Reading,
    ReadingPoint, TariffPeriodEnergy,
};
pub use ops::DeadLetter;
pub use settlement::{ProvisionalSettlement, SettlementLine, SettlementStatement};
pub use wholesale::{Discrepancy, Reconciliation, WholesaleResult, WholesaleResultPoint};

use crate::schemas::SchemaFile;

/// Declares a record struct and its [`AvroFields`] mapping from one field list,
/// so a field cannot be added to the struct and forgotten in the mapping.
/// Each field says how it maps: `put` (required), `opt` (`["null", T]`),
/// `record` (nested record), `records` (array of records).
macro_rules! avro_fields {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $($(#[$fmeta:meta])* pub $field:ident : $ty:ty => $kind:ident),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
        pub struct $name {
            $($(#[$fmeta])* pub $field: $ty),+
        }

        impl $crate::records::AvroFields for $name {
            fn write(&self, w: &mut $crate::records::RecordWriter) -> Result<(), $crate::records::RecordError> {
                $($crate::records::avro_fields!(@write w, self, $field, $kind);)+
                Ok(())
            }
            fn read(r: &mut $crate::records::RecordReader) -> Result<Self, $crate::records::RecordError> {
                Ok(Self {
                    $($field: $crate::records::avro_fields!(@read r, $field, $kind)),+
                })
            }
        }
    };
    (@write $w:ident, $s:ident, $field:ident, put) => { $w.put(stringify!($field), &$s.$field)? };
    (@write $w:ident, $s:ident, $field:ident, opt) => { $w.put_opt(stringify!($field), $s.$field.as_ref())? };
    (@write $w:ident, $s:ident, $field:ident, record) => { $w.put_record(stringify!($field), &$s.$field)? };
    (@write $w:ident, $s:ident, $field:ident, records) => { $w.put_records(stringify!($field), &$s.$field)? };
    (@read $r:ident, $field:ident, put) => { $r.get(stringify!($field))? };
    (@read $r:ident, $field:ident, opt) => { $r.get_opt(stringify!($field))? };
    (@read $r:ident, $field:ident, record) => { $r.get_record(stringify!($field))? };
    (@read $r:ident, $field:ident, records) => { $r.get_records(stringify!($field))? };
}
pub(crate) use avro_fields;

/// Binds a record type to its schema file (and, for records that know it, the
/// grid area they are partitioned by). A trailing `; direct` routes the
/// datum through the type's [`direct::DirectCodec`] instead of the generic
/// `Value` tree.
macro_rules! avro_record {
    ($name:ident => $file:ident $(, grid_area: $($path:ident).+)? $(; $direct:ident)?) => {
        impl $crate::records::AvroRecord for $name {
            const SCHEMA: $crate::schemas::SchemaFile = $crate::schemas::SchemaFile::$file;
            $(
                fn grid_area(&self) -> Option<&str> {
                    Some(&self.$($path).+)
                }
            )?
            $($crate::records::avro_record!(@$direct);)?
        }
    };
    (@direct) => {
        fn write_datum(
            &self,
            out: &mut Vec<u8>,
        ) -> Result<(), $crate::records::DatumError> {
            $crate::records::direct::write(self, out)
        }
        fn read_datum(datum: &mut &[u8]) -> Result<Self, $crate::records::DatumError> {
            $crate::records::direct::read(datum)
        }
        fn check_schema(&self) -> Result<(), $crate::records::RecordError> {
            $crate::records::direct::DirectCodec::encode(self, &mut $crate::records::direct::Discard)
        }
    };
}
pub(crate) use avro_record;

avro::avro_enum! {
    /// Length of one position of a series.
    Resolution = "afregning.common.Resolution" {
        /// 15 minutes.
        Pt15m = "PT15M",
        /// One hour.
        Pt1h = "PT1H",
        /// One (local) day.
        P1d = "P1D",
        /// One (local) month.
        P1m = "P1M",
    }
}

avro::avro_enum! {
    /// Quality of a quantity, DataHub's code list.
    Quality = "afregning.common.Quality" {
        /// A01: adjusted.
        Adjusted = "A01",
        /// A02: not available.
        NotAvailable = "A02",
        /// A03: estimated.
        Estimated = "A03",
        /// A04: as provided (measured).
        AsProvided = "A04",
        /// A05: incomplete.
        Incomplete = "A05",
        /// A06: calculated.
        Calculated = "A06",
    }
}

avro::avro_enum! {
    /// Settlement method of a consumption metering point.
    SettlementMethod = "afregning.common.SettlementMethod" {
        /// E01: profiled.
        Profiled = "E01",
        /// E02: non-profiled (time series settled).
        NonProfiled = "E02",
        /// D01: flex settled.
        Flex = "D01",
    }
}

avro::avro_enum! {
    /// DataHub charge type.
    ChargeType = "afregning.common.ChargeType" {
        /// D01: subscription (per month).
        Subscription = "D01",
        /// D02: fee (per occurrence).
        Fee = "D02",
        /// D03: tariff (per kWh).
        Tariff = "D03",
    }
}

avro::avro_enum! {
    /// Whether VAT is added to a charge.
    VatClass = "afregning.common.VatClass" {
        /// D01: no VAT.
        NoVat = "D01",
        /// D02: VAT at the standard rate (25 %).
        Vat25 = "D02",
    }
}

avro::avro_enum! {
    /// Which part of the bill a settlement line is.
    SettlementComponent = "afregning.common.SettlementComponent" {
        /// Spot energy: kWh times the day-ahead price.
        SpotEnergy = "SPOT_ENERGY",
        /// The supplier's margin per kWh.
        SupplierMargin = "SUPPLIER_MARGIN",
        /// The supplier's own subscription.
        SupplierSubscription = "SUPPLIER_SUBSCRIPTION",
        /// The grid company's tariff.
        GridTariff = "GRID_TARIFF",
        /// The grid company's subscription.
        GridSubscription = "GRID_SUBSCRIPTION",
        /// A grid company fee.
        GridFee = "GRID_FEE",
        /// Energinet's tariffs (transmission, system).
        EnerginetTariff = "ENERGINET_TARIFF",
        /// Energinet's subscription.
        EnerginetSubscription = "ENERGINET_SUBSCRIPTION",
        /// Elafgift, the electricity tax.
        ElectricityTax = "ELECTRICITY_TAX",
        /// VAT on all other lines.
        Vat = "VAT",
    }
}

avro::avro_enum! {
    /// Which DataHub document a wholesale result came from.
    WholesaleResultKind = "afregning.common.WholesaleResultKind" {
        /// RSM-014 NotifyAggregatedMeasureData.
        AggregatedMeasureData = "AGGREGATED_MEASURE_DATA",
        /// RSM-019 NotifyWholesaleServices.
        WholesaleServices = "WHOLESALE_SERVICES",
    }
}

avro::avro_enum! {
    /// A statement charges the customer; a credit note reverses one.
    StatementKind = "afregning.common.StatementKind" {
        /// A statement.
        Statement = "STATEMENT",
        /// A credit note reversing an earlier statement.
        CreditNote = "CREDIT_NOTE",
    }
}

avro::avro_enum! {
    /// Machine-readable class of a dead letter.
    ErrorClass = "afregning.common.ErrorClass" {
        /// Not valid JSON or Avro.
        Undecodable = "UNDECODABLE",
        /// Decoded but breaks a rule.
        Invalid = "INVALID",
        /// No master data for the metering point after the timeout.
        UnknownMeteringPoint = "UNKNOWN_METERING_POINT",
        /// A charge, price or link is missing.
        MissingReferenceData = "MISSING_REFERENCE_DATA",
        /// Too large to process or forward.
        TooLarge = "TOO_LARGE",
        /// A bug or an unexpected failure.
        Internal = "INTERNAL",
    }
}

avro::avro_enum! {
    /// DataHub document types a supplier sends.
    OutboundDocumentType = "afregning.common.OutboundDocumentType" {
        /// RSM-015.
        RequestValidatedMeasureData = "REQUEST_VALIDATED_MEASURE_DATA",
        /// RSM-016.
        RequestAggregatedMeasureData = "REQUEST_AGGREGATED_MEASURE_DATA",
        /// RSM-017.
        RequestWholesaleSettlement = "REQUEST_WHOLESALE_SETTLEMENT",
        /// RSM-001 (change of supplier, move-in).
        RequestChangeOfSupplier = "REQUEST_CHANGE_OF_SUPPLIER",
        /// RSM-005.
        RequestEndOfSupply = "REQUEST_END_OF_SUPPLY",
        /// RSM-024 (cancellation of a pending process).
        RequestCancellation = "REQUEST_CANCELLATION",
        /// RSM-003 (BRS-003 / BRS-011 corrections).
        RequestReallocateChangeOfSupplier = "REQUEST_REALLOCATE_CHANGE_OF_SUPPLIER",
        /// RSM-027 (BRS-015 customer master data).
        RequestChangeCustomerCharacteristics = "REQUEST_CHANGE_CUSTOMER_CHARACTERISTICS",
    }
}

avro::avro_enum! {
    /// Outcome of an outbound request.
    OutboundStatus = "afregning.common.OutboundStatus" {
        /// DataHub accepted it (202).
        Accepted = "ACCEPTED",
        /// DataHub rejected it with an error document.
        Rejected = "REJECTED",
        /// No answer after retries.
        Failed = "FAILED",
    }
}

/// Every Avro enum's Rust type, as (full name, symbols), so a test can compare
/// them with every schema that uses them.
pub fn enum_symbols() -> Vec<(&'static str, &'static [&'static str])> {
    fn entry<E: AvroEnum>() -> (&'static str, &'static [&'static str]) {
        (E::AVRO_NAME, E::SYMBOLS)
    }
    vec![
        entry::<Resolution>(),
        entry::<Quality>(),
        entry::<SettlementMethod>(),
        entry::<ChargeType>(),
        entry::<VatClass>(),
        entry::<SettlementComponent>(),
        entry::<WholesaleResultKind>(),
        entry::<StatementKind>(),
        entry::<ErrorClass>(),
        entry::<OutboundDocumentType>(),
        entry::<OutboundStatus>(),
    ]
}

/// A record that is a topic's key: it says what the partitioner hashes when
/// the topic is partitioned by key.
pub trait TopicKey: AvroRecord {
    /// The string whose UTF-8 bytes are hashed with murmur2 (see
    /// [`crate::partitioner`]): the GSRN, the MessageId, and so on. Never the
    /// serialized key, whose bytes contain the registry's schema id.
    fn routing_key(&self) -> Cow<'_, str>;
}

/// A value as the codec handles it: Avro, or bytes passed through untouched.
#[derive(Debug, Clone, PartialEq)]
pub enum Payload {
    /// An Avro value shaped by the value schema.
    Avro(Value),
    /// Bytes that are not Avro (raw CIM JSON).
    Raw(Vec<u8>),
}

/// A type that can be a topic's value: an Avro record, or raw bytes on the raw
/// DataHub topics.
pub trait TopicValue: Sized {
    /// The value schema, or `None` for raw bytes.
    fn schema() -> Option<SchemaFile>;
    /// The payload to encode.
    fn to_payload(&self) -> Result<Payload, RecordError>;
    /// The value from a decoded payload.
    fn from_payload(payload: Payload) -> Result<Self, RecordError>;
    /// The grid area the value is partitioned by, when it knows one.
    fn partition_grid_area(&self) -> Option<&str>;
    /// The value from the front of an Avro datum written with exactly
    /// [`Self::schema`], advancing past it. Why: the codec's fast path reads
    /// such records with [`AvroRecord::read_datum`] (the direct codec for the
    /// hot records) instead of a generic `Value` tree; raw values have no
    /// datum and refuse.
    fn from_datum(datum: &mut &[u8]) -> Result<Self, DatumError>;
}

impl<T: AvroRecord> TopicValue for T {
    fn schema() -> Option<SchemaFile> {
        Some(T::SCHEMA)
    }
    fn to_payload(&self) -> Result<Payload, RecordError> {
        self.to_avro().map(Payload::Avro)
    }
    fn from_payload(payload: Payload) -> Result<Self, RecordError> {
        match payload {
            Payload::Avro(value) => T::from_avro(value),
            Payload::Raw(_) => Err(RecordError {
                record: T::SCHEMA.full_name().to_string(),
                field: None,
                problem: "expected an Avro value, got raw bytes".into(),
            }),
        }
    }
    fn partition_grid_area(&self) -> Option<&str> {
        self.grid_area()
    }
    fn from_datum(datum: &mut &[u8]) -> Result<Self, DatumError> {
        T::read_datum(datum)
    }
}

impl TopicValue for CimJson {
    fn schema() -> Option<SchemaFile> {
        None
    }
    fn to_payload(&self) -> Result<Payload, RecordError> {
        Ok(Payload::Raw(self.0.clone()))
    }
    fn from_payload(payload: Payload) -> Result<Self, RecordError> {
        match payload {
            Payload::Raw(bytes) => Ok(CimJson(bytes)),
            Payload::Avro(_) => Err(RecordError {
                record: "CimJson".into(),
                field: None,
                problem: "expected raw bytes, got an Avro value".into(),
            }),
        }
    }
    fn partition_grid_area(&self) -> Option<&str> {
        None
    }
    fn from_datum(_: &mut &[u8]) -> Result<Self, DatumError> {
        Err(DatumError::Avro("raw CIM JSON has no Avro datum".into()))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use apache_avro::Schema;

    use super::*;

    fn enums_in(schema: &Schema, out: &mut Vec<(String, Vec<String>)>) {
        match schema {
            Schema::Enum(e) => out.push((e.name.fullname(None), e.symbols.clone())),
            Schema::Record(r) => r.fields.iter().for_each(|f| enums_in(&f.schema, out)),
            Schema::Array(a) => enums_in(&a.items, out),
            Schema::Union(u) => u.variants().iter().for_each(|v| enums_in(v, out)),
            _ => {}
        }
    }

    #[test]
    fn every_schema_enum_has_a_rust_enum_with_the_same_symbols_in_order() {
        let rust: BTreeMap<&str, &[&str]> = enum_symbols().into_iter().collect();
        let mut seen = Vec::new();
        for file in SchemaFile::ALL {
            enums_in(file.schema(), &mut seen);
        }
        for (name, symbols) in &seen {
            let rust_symbols = rust
                .get(name.as_str())
                .unwrap_or_else(|| panic!("schema enum {name} has no Rust enum"));
            assert_eq!(
                symbols, rust_symbols,
                "symbols of {name} differ between schema and Rust"
            );
        }
        for name in rust.keys() {
            assert!(
                seen.iter().any(|(n, _)| n == name),
                "Rust enum {name} is not used by any schema"
            );
        }
    }
}

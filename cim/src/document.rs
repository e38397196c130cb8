//! Every document type the codec reads and writes, and the entry points `parse` and `write`.

use std::fmt;

use serde::de::{MapAccess, Visitor};
use serde::{Deserializer, Serialize};

use crate::de::{At, KeySeed, Path, Read, Seed};
use crate::error::{CimError, ErrorClass};
use crate::header::Header;
use crate::ser::Write;

/// Where a document type's JSON shape comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Shape {
    /// Energinet's JSON schema in `shared/cim/` (writers are validated against it in tests).
    JsonSchema,
    /// Derived from the XSD (and XML examples) with the CIM JSON conventions; no JSON schema
    /// or JSON example is public. See `docs/cim.md`.
    DerivedFromXsd,
    /// Derived from the XSD and checked against DataHub's archived JSON output (2021-22).
    ArchivedJson,
    /// Neither XSD nor example is public: the name follows DataHub's `Confirm…`/`Reject…`
    /// pattern of the request it answers (as for RSM-001 and RSM-005) and the shape is theirs
    /// ([`crate::answer`]). Inferred, so a real document may differ.
    InferredAnswer,
}

/// A document with a header and top-level transactions; implemented by every model.
pub trait CimDocument: Write + Serialize {
    /// One top-level transaction (`Series[]` or `MktActivityRecord[]` element).
    type Transaction: Serialize;
    /// The header.
    fn header(&self) -> &Header;
    /// The transactions, in document order.
    fn transactions(&self) -> &[Self::Transaction];
    /// Number of time series points over all transactions (0 for documents without points).
    fn point_count(&self) -> usize {
        0
    }
}

/// Implements [`CimDocument`] for a model with a header and a transaction vector.
macro_rules! cim_document {
    ($ty:ty, $field:ident, $tx:ty $(, points = $points:expr)?) => {
        impl $crate::document::CimDocument for $ty {
            type Transaction = $tx;
            fn header(&self) -> &$crate::header::Header {
                &self.header
            }
            fn transactions(&self) -> &[$tx] {
                &self.$field
            }
            $(
                fn point_count(&self) -> usize {
                    let f: fn(&$ty) -> usize = $points;
                    f(self)
                }
            )?
        }
    };
}

pub(crate) use cim_document;

/// Generates a module's typed `read` and `write` for one document kind.
macro_rules! typed_io {
    ($kind:ident, $ty:ty) => {
        /// Reads this document type; bytes holding another type give an unknown-document-type error.
        pub fn read(bytes: &[u8]) -> Result<$ty, $crate::error::CimError> {
            match $crate::document::parse(bytes)? {
                $crate::document::Document::$kind(doc) => Ok(doc),
                other => Err($crate::document::wrong_kind(
                    other.kind(),
                    $crate::document::DocumentKind::$kind,
                )),
            }
        }

        /// Writes the document as DataHub would (indented, DataHub's key order).
        pub fn write(doc: &$ty) -> Vec<u8> {
            $crate::ser::document($crate::document::DocumentKind::$kind.root(), doc)
        }
    };
}

pub(crate) use typed_io;

macro_rules! documents {
    ($(
        $(#[$meta:meta])*
        $variant:ident($ty:ty) = $rsm:literal, $root:literal, $tx:literal, $shape:ident;
    )*) => {
        /// The document types this codec knows.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
        pub enum DocumentKind {
            $( $(#[$meta])* $variant, )*
        }

        impl DocumentKind {
            /// Every kind.
            pub const ALL: &'static [DocumentKind] = &[$(Self::$variant),*];

            /// The document type name, e.g. `NotifyValidatedMeasureData` (used in errors and output).
            pub fn name(self) -> &'static str {
                match self { $( Self::$variant => stringify!($variant), )* }
            }

            /// The root property, e.g. `NotifyValidatedMeasureData_MarketDocument`.
            pub fn root(self) -> &'static str {
                match self { $( Self::$variant => $root, )* }
            }

            /// DataHub's RSM number, e.g. `RSM-012`.
            pub fn rsm(self) -> &'static str {
                match self { $( Self::$variant => $rsm, )* }
            }

            /// The key of the top-level transaction array: `Series` or `MktActivityRecord`.
            pub fn transactions_key(self) -> &'static str {
                match self { $( Self::$variant => $tx, )* }
            }

            /// Where the JSON shape comes from.
            pub fn shape(self) -> Shape {
                match self { $( Self::$variant => Shape::$shape, )* }
            }

            /// The kind for a root property name. Also accepts `AccountingPointcharacteristics_MarketDocument`
            /// (lower-case c), the spelling of DataHub's own RSM-022 example.
            pub fn from_root(root: &str) -> Option<Self> {
                match root {
                    $( $root => Some(Self::$variant), )*
                    "AccountingPointcharacteristics_MarketDocument" => Some(Self::AccountingPointCharacteristics),
                    _ => None,
                }
            }
        }

        /// A parsed document of any known type.
        #[derive(Debug, Clone, PartialEq, Eq, Serialize)]
        #[serde(tag = "document", content = "body")]
        pub enum Document {
            $( $(#[$meta])* $variant($ty), )*
        }

        impl Document {
            /// The document's kind.
            pub fn kind(&self) -> DocumentKind {
                match self { $( Self::$variant(_) => DocumentKind::$variant, )* }
            }

            /// The header.
            pub fn header(&self) -> &Header {
                match self { $( Self::$variant(d) => CimDocument::header(d), )* }
            }

            /// Number of top-level transactions (`Series` or `MktActivityRecord` elements).
            pub fn transaction_count(&self) -> usize {
                match self { $( Self::$variant(d) => CimDocument::transactions(d).len(), )* }
            }

            /// Number of time series points over all transactions.
            pub fn point_count(&self) -> usize {
                match self { $( Self::$variant(d) => CimDocument::point_count(d), )* }
            }

            /// Each transaction as a JSON value (the model's view, for `afregning cim convert`).
            pub fn transactions_json(&self) -> Vec<serde_json::Value> {
                match self {
                    $( Self::$variant(d) => CimDocument::transactions(d)
                        .iter()
                        .map(|t| serde_json::to_value(t).unwrap_or(serde_json::Value::Null))
                        .collect(), )*
                }
            }

            fn write_body(&self, w: &mut crate::ser::JsonWriter) {
                match self { $( Self::$variant(d) => d.write(w), )* }
            }
        }

        fn read_body<'de, A: MapAccess<'de>>(
            kind: DocumentKind,
            map: &mut A,
            here: At<'_>,
        ) -> Result<Document, A::Error> {
            Ok(match kind {
                $( DocumentKind::$variant => Document::$variant(
                    map.next_value_seed(Seed::<$ty>::new(here)).map_err(|e| here.note(e))?,
                ), )*
            })
        }
    };
}

documents! {
    /// RSM-012, validated metered data (E66).
    NotifyValidatedMeasureData(crate::rsm012::NotifyValidatedMeasureData) = "RSM-012", "NotifyValidatedMeasureData_MarketDocument", "Series", JsonSchema;
    /// RSM-014, aggregated metered data (E31).
    NotifyAggregatedMeasureData(crate::rsm014::NotifyAggregatedMeasureData) = "RSM-014", "NotifyAggregatedMeasureData_MarketDocument", "Series", JsonSchema;
    /// RSM-019, wholesale services (E31).
    NotifyWholesaleServices(crate::rsm019::NotifyWholesaleServices) = "RSM-019", "NotifyWholesaleServices_MarketDocument", "Series", JsonSchema;
    /// RSM-022, metering point master data (E07).
    AccountingPointCharacteristics(crate::rsm022::AccountingPointCharacteristics) = "RSM-022", "AccountingPointCharacteristics_MarketDocument", "MktActivityRecord", DerivedFromXsd;
    /// RSM-004, generic notification.
    GenericNotification(crate::rsm004::GenericNotification) = "RSM-004", "GenericNotification_MarketDocument", "MktActivityRecord", DerivedFromXsd;
    /// RSM-001, request change of supplier (392).
    RequestChangeOfSupplier(crate::rsm001::RequestChangeOfSupplier) = "RSM-001", "RequestChangeOfSupplier_MarketDocument", "MktActivityRecord", JsonSchema;
    /// RSM-001 confirm (414, reason A01).
    ConfirmRequestChangeOfSupplier(crate::answer::Confirmation) = "RSM-001", "ConfirmRequestChangeOfSupplier_MarketDocument", "MktActivityRecord", JsonSchema;
    /// RSM-001 reject (414, reason A02).
    RejectRequestChangeOfSupplier(crate::answer::Rejection) = "RSM-001", "RejectRequestChangeOfSupplier_MarketDocument", "MktActivityRecord", JsonSchema;
    /// RSM-005, request end of supply (432).
    RequestEndOfSupply(crate::rsm005::RequestEndOfSupply) = "RSM-005", "RequestEndOfSupply_MarketDocument", "MktActivityRecord", DerivedFromXsd;
    /// RSM-005 confirm.
    ConfirmRequestEndOfSupply(crate::answer::Confirmation) = "RSM-005", "ConfirmRequestEndOfSupply_MarketDocument", "MktActivityRecord", DerivedFromXsd;
    /// RSM-005 reject.
    RejectRequestEndOfSupply(crate::answer::Rejection) = "RSM-005", "RejectRequestEndOfSupply_MarketDocument", "MktActivityRecord", DerivedFromXsd;
    /// RSM-024, request cancellation of a pending process (E67).
    RequestCancellation(crate::rsm024::RequestCancellation) = "RSM-024", "RequestCancellation_MarketDocument", "MktActivityRecord", DerivedFromXsd;
    /// RSM-025, DataHub's notice that a process was cancelled (E78).
    NotifyCancellation(crate::rsm025::NotifyCancellation) = "RSM-025", "NotifyCancellation_MarketDocument", "MktActivityRecord", DerivedFromXsd;
    /// RSM-028, customer master data of a metering point (E21); sealed on the topics.
    CharacteristicsOfACustomerAtAnAP(crate::rsm028::CharacteristicsOfACustomerAtAnAP) = "RSM-028", "CharacteristicsOfACustomerAtAnAP_MarketDocument", "MktActivityRecord", DerivedFromXsd;
    /// RSM-003, request re-allocate change of supplier (D01): BRS-003 / BRS-011 corrections.
    RequestReallocateChangeOfSupplier(crate::rsm003::RequestReallocateChangeOfSupplier) = "RSM-003", "RequestReallocateChangeOfSupplier_MarketDocument", "MktActivityRecord", DerivedFromXsd;
    /// RSM-003 confirm (name and shape inferred).
    ConfirmRequestReallocateChangeOfSupplier(crate::answer::Confirmation) = "RSM-003", "ConfirmRequestReallocateChangeOfSupplier_MarketDocument", "MktActivityRecord", InferredAnswer;
    /// RSM-003 reject (name and shape inferred).
    RejectRequestReallocateChangeOfSupplier(crate::answer::Rejection) = "RSM-003", "RejectRequestReallocateChangeOfSupplier_MarketDocument", "MktActivityRecord", InferredAnswer;
    /// RSM-027, request change of customer characteristics (D15): BRS-015.
    RequestChangeCustomerCharacteristics(crate::rsm027::RequestChangeCustomerCharacteristics) = "RSM-027", "RequestChangeCustomerCharacteristics_MarketDocument", "MktActivityRecord", DerivedFromXsd;
    /// RSM-027 confirm (name and shape inferred).
    ConfirmRequestChangeCustomerCharacteristics(crate::answer::Confirmation) = "RSM-027", "ConfirmRequestChangeCustomerCharacteristics_MarketDocument", "MktActivityRecord", InferredAnswer;
    /// RSM-027 reject (name and shape inferred).
    RejectRequestChangeCustomerCharacteristics(crate::answer::Rejection) = "RSM-027", "RejectRequestChangeCustomerCharacteristics_MarketDocument", "MktActivityRecord", InferredAnswer;
    /// RSM-015, request validated metered data (E73).
    RequestValidatedMeasureData(crate::rsm015::RequestValidatedMeasureData) = "RSM-015", "RequestValidatedMeasureData_MarketDocument", "Series", JsonSchema;
    /// RSM-015 reject.
    RejectRequestValidatedMeasureData(crate::answer::RejectSeries) = "RSM-015", "RejectRequestValidatedMeasureData_MarketDocument", "Series", JsonSchema;
    /// RSM-016, request aggregated metered data (E74).
    RequestAggregatedMeasureData(crate::rsm016::RequestAggregatedMeasureData) = "RSM-016", "RequestAggregatedMeasureData_MarketDocument", "Series", JsonSchema;
    /// RSM-016 reject.
    RejectRequestAggregatedMeasureData(crate::answer::RejectSeries) = "RSM-016", "RejectRequestAggregatedMeasureData_MarketDocument", "Series", JsonSchema;
    /// RSM-017, request wholesale settlement (D21).
    RequestWholesaleSettlement(crate::rsm017::RequestWholesaleSettlement) = "RSM-017", "RequestWholesaleSettlement_MarketDocument", "Series", JsonSchema;
    /// RSM-017 reject.
    RejectRequestWholesaleSettlement(crate::answer::RejectSeries) = "RSM-017", "RejectRequestWholesaleSettlement_MarketDocument", "Series", JsonSchema;
    /// RSM-034, charges and prices (D12).
    NotifyPriceList(crate::rsm034::NotifyPriceList) = "RSM-034", "NotifyPriceList_MarketDocument", "MktActivityRecord", ArchivedJson;
    /// RSM-031, charge links (D07).
    NotifyBillingMasterData(crate::rsm031::NotifyBillingMasterData) = "RSM-031", "NotifyBillingMasterData_MarketDocument", "MktActivityRecord", DerivedFromXsd;
}

impl fmt::Display for DocumentKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl<'de> Read<'de> for Document {
    fn read<D: Deserializer<'de>>(de: D, at: At<'_>) -> Result<Self, D::Error> {
        struct V<'a>(At<'a>);
        impl<'de> Visitor<'de> for V<'_> {
            type Value = Document;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a CIM document object {\"<Name>_MarketDocument\": {…}}")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Document, A::Error> {
                let at = self.0;
                let Some(root) = map.next_key_seed(KeySeed)? else {
                    return Err(at.fail(
                        ErrorClass::UnknownDocumentType,
                        "empty object: no `<Name>_MarketDocument` property",
                    ));
                };
                let Some(kind) = DocumentKind::from_root(&root) else {
                    return Err(at.fail(
                        ErrorClass::UnknownDocumentType,
                        format!("`{root}` is not a document type this codec reads"),
                    ));
                };
                at.ctx.set_document(kind.name());
                let path = Path::Key(at.path, &root);
                let here = at.with(&path);
                let doc = read_body(kind, &mut map, here)?;
                if let Document::RejectRequestAggregatedMeasureData(d)
                | Document::RejectRequestWholesaleSettlement(d) = &doc
                    && let Err(finding) = crate::answer::check_no_metering_point(d)
                {
                    return Err(finding.raise(here));
                }
                if let Some(extra) = map.next_key_seed(KeySeed)? {
                    let path = Path::Key(at.path, &extra);
                    return Err(at.with(&path).schema(format!(
                        "unknown property `{extra}`: a document has one root property"
                    )));
                }
                Ok(doc)
            }
        }
        de.deserialize_map(V(at))
    }
}

/// Parses any known CIM JSON document: BOM-tolerant, strict about structure, never panics.
pub fn parse(bytes: &[u8]) -> Result<Document, CimError> {
    crate::de::read_document::<Document>(bytes)
}

/// [`parse`] on the strict serde_json reader alone, without the fast first attempt: the
/// reference the fast reader is tested against (`tests/fast_reader.rs`).
#[doc(hidden)]
pub fn parse_strict(bytes: &[u8]) -> Result<Document, CimError> {
    crate::de::read_document_strict::<Document>(bytes)
}

/// The fast first attempt alone: `None` when it gave up or the document was rejected. For the
/// tests that hold it to [`parse_strict`] and show it is the path DataHub's documents take.
#[doc(hidden)]
pub fn parse_fast(bytes: &[u8]) -> Option<Document> {
    crate::de::read_document_fast::<Document>(bytes)
}

/// Writes any document as DataHub would send it.
pub fn write(doc: &Document) -> Vec<u8> {
    let mut w = crate::ser::JsonWriter::new();
    w.begin_object();
    w.key(doc.kind().root());
    doc.write_body(&mut w);
    w.end_object();
    w.into_bytes()
}

/// The error a typed reader returns when the bytes hold another document type.
pub(crate) fn wrong_kind(found: DocumentKind, expected: DocumentKind) -> CimError {
    CimError::new(
        ErrorClass::UnknownDocumentType,
        Some(found.name()),
        "$",
        format!(
            "expected a {} ({}) document, found {} ({})",
            expected.name(),
            expected.rsm(),
            found.name(),
            found.rsm()
        ),
    )
}

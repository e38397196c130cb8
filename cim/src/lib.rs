//! Pure CIM JSON codec for DataHub 3 documents: typed models, readers and writers, no I/O.
//!
//! [`parse`] reads any document a DDQ receives or sends and returns a typed [`Document`], or a
//! [`CimError`] that names the document, the JSON path and what was expected, classified for
//! dead-lettering ([`ErrorClass`]). It is strict about structure (unknown, missing and
//! duplicate properties, types, code lists, lengths) and lenient only where DataHub is: a
//! UTF-8 BOM, key order, whitespace. It never panics.
//!
//! Each document type has a module (`rsm012`, …) with its model and `read`/`write`; the
//! writers produce what DataHub sends and are validated against the real JSON schemas in the
//! tests. [`bundle`] splits a bundle into one valid document per transaction for Kafka, and
//! joins the parts again. See `docs/cim.md`.

mod common;
mod de;
mod document;
mod error;
mod header;
mod scalar;
mod series;

pub mod answer;
pub mod bundle;
pub mod codes;
pub mod gsrn;
pub mod resolution;
pub mod rsm001;
pub mod rsm003;
pub mod rsm004;
pub mod rsm005;
pub mod rsm012;
pub mod rsm014;
pub mod rsm015;
pub mod rsm016;
pub mod rsm017;
pub mod rsm019;
pub mod rsm022;
pub mod rsm024;
pub mod rsm025;
pub mod rsm027;
pub mod rsm028;
pub mod rsm031;
pub mod rsm034;
pub mod ser;
pub mod wholesale;

pub use common::{AreaId, PartyId, Reason, TimeInterval};
pub use document::{
    CimDocument, Document, DocumentKind, Shape, parse, parse_fast, parse_strict, write,
};
pub use error::{CimError, ErrorClass};
pub use gsrn::{Gsrn, GsrnRef, gs1_check_digit};
pub use header::{Header, Participant};
pub use resolution::{IsoDuration, PeriodError, Resolution};
pub use series::{MAX_POSITION, Point};

/// DataHub's own GLN, the sender of everything a DDQ receives.
pub const DATAHUB_GLN: &str = "5790001330552";

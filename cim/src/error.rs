//! The one error type of the codec, and its classification for dead-letter records.

use std::fmt;

/// Why a document was rejected, in the four classes the pipeline dead-letters by.
///
/// The class decides what an operator does next: malformed JSON and unknown document
/// types point at the transport or at DataHub's format, schema violations at a field,
/// business-invalid documents at the data itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorClass {
    /// The bytes are not JSON (syntax error, truncated input, trailing garbage).
    MalformedJson,
    /// Well-formed JSON that breaks the document's JSON schema (or, for documents with only
    /// an XSD, the shape derived from it): unknown or missing property, wrong type, a code
    /// outside its code list, a string longer than allowed.
    SchemaViolation,
    /// The root property does not name a document type this codec knows.
    UnknownDocumentType,
    /// Schema-valid, but the content cannot be right: a position outside the period, a
    /// duplicate position, a negative quantity where none is allowed, a period that is not
    /// a whole number of resolution steps.
    BusinessInvalid,
}

impl ErrorClass {
    /// Stable kebab-case name used in dead-letter records and in `afregning cim validate`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MalformedJson => "malformed-json",
            Self::SchemaViolation => "schema-violation",
            Self::UnknownDocumentType => "unknown-document-type",
            Self::BusinessInvalid => "business-invalid",
        }
    }
}

impl fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A rejected document: what kind of problem, in which document, where, and why.
///
/// Every parse failure is one of these, so the pipeline can dead-letter the input with a
/// reason an operator can act on without reading the code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize)]
#[error("{class} {path}: {reason}")]
pub struct CimError {
    /// The classification (see [`ErrorClass`]).
    pub class: ErrorClass,
    /// The document type name (e.g. `NotifyValidatedMeasureData`) once the root was recognised.
    pub document: Option<String>,
    /// JSON path of the offending value, e.g.
    /// `$.NotifyValidatedMeasureData_MarketDocument.Series[3].Period.Point[7].position`.
    /// Keys that contain a dot are written in brackets: `$.X.Series[0]['marketEvaluationPoint.mRID']`.
    pub path: String,
    /// What was expected, in words.
    pub reason: String,
}

impl CimError {
    /// Builds an error; used by the readers and by the bundle functions.
    pub fn new(
        class: ErrorClass,
        document: Option<&str>,
        path: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        Self {
            class,
            document: document.map(str::to_owned),
            path: path.into(),
            reason: reason.into(),
        }
    }
}

//! RSM-003 RequestReallocateChangeOfSupplier: the supplier asks DataHub to undo a change of
//! supplier or a move that was wrong (BRS-003 incorrect change of supplier, process D07
//! "rollback"; BRS-011 incorrect move, process D33; lifecycle NOTES §0, §2.3, §2.8). The
//! record names the process to undo by DataHub's `businessProcessReference` and its day.
//! DataHub answers with a confirm or reject ([`crate::answer`]).
//!
//! Shape: **derived** from the XSD `rsm-003-reallocate-change-of-supplier/urn-ediel-org-structure-requestreallocatechangeofsupplier-0-1.xsd`
//! with the CIM JSON conventions (no JSON schema or example is public; see `docs/cim.md`).

use chrono::{DateTime, Utc};

use crate::codes::MessageType;
use crate::de::{Finding, cim_object};
use crate::document::{cim_document, typed_io};
use crate::gsrn::Gsrn;
use crate::header::{Header, check_header};

cim_object! {
    /// `RequestReallocateChangeOfSupplier_MarketDocument` (type D01), DDQ → DDZ. Derived shape.
    #[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
    pub struct RequestReallocateChangeOfSupplier {
        flatten header: Header;
        /// `MktActivityRecord[]`: one correction per metering point.
        "MktActivityRecord" [nonempty] => records: Vec<Reallocation>,
    }
    check = check_document;
}

cim_object! {
    /// One process to undo.
    #[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
    pub struct Reallocation {
        /// `mRID`: this transaction's id; DataHub's answer refers back to it.
        "mRID" => transaction_id: String,
        /// `businessProcessReference_MktActivityRecord.mRID`: DataHub's process to undo.
        "businessProcessReference_MktActivityRecord.mRID" => business_process_id: Option<String>,
        /// `marketEvaluationPoint.mRID`.
        "marketEvaluationPoint.mRID" => metering_point: Gsrn,
        /// `start_DateAndOrTime.dateTime`: the day of the process undone (its cut-off).
        "start_DateAndOrTime.dateTime" => start: DateTime<Utc>,
    }
}

typed_io!(
    RequestReallocateChangeOfSupplier,
    RequestReallocateChangeOfSupplier
);

cim_document!(RequestReallocateChangeOfSupplier, records, Reallocation);

fn check_document(doc: &RequestReallocateChangeOfSupplier) -> Result<(), Finding> {
    check_header(
        &doc.header,
        false,
        &[MessageType::REQUEST_REALLOCATE_CHANGE_OF_SUPPLIER],
    )
}

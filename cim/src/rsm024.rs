//! RSM-024 RequestCancellation: the supplier asks DataHub to cancel one of its pending
//! processes before the cut-off (BRS-001 change of supplier, BRS-009 move-in, BRS-002 end of
//! supply; lifecycle NOTES §0, §1). The record names the process by DataHub's
//! `businessProcessReference` and our original transaction.
//!
//! Shape: **derived** from the XSD `rsm-024-cancellation/urn-ediel-org-structure-requestcancellation-0-1.xsd`
//! with the CIM JSON conventions (no JSON schema or example is public; see `docs/cim.md`).

use crate::codes::MessageType;
use crate::de::{Finding, cim_object};
use crate::document::{cim_document, typed_io};
use crate::gsrn::Gsrn;
use crate::header::{Header, check_header};

cim_object! {
    /// `RequestCancellation_MarketDocument` (type E67), DDQ → DDZ. Derived shape.
    #[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
    pub struct RequestCancellation {
        flatten header: Header;
        /// `MktActivityRecord[]`: one cancellation per process.
        "MktActivityRecord" [nonempty] => records: Vec<Cancellation>,
    }
    check = check_document;
}

cim_object! {
    /// One process to cancel.
    #[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
    pub struct Cancellation {
        /// `mRID`: this transaction's id.
        "mRID" => transaction_id: String,
        /// `businessProcessReference_MktActivityRecord.mRID`: DataHub's process to cancel.
        "businessProcessReference_MktActivityRecord.mRID" => business_process_id: Option<String>,
        /// `marketEvaluationPoint.mRID`.
        "marketEvaluationPoint.mRID" => metering_point: Gsrn,
        /// `originalTransactionIDReference_MktActivityRecord.mRID`: our request's transaction id.
        "originalTransactionIDReference_MktActivityRecord.mRID" => original_transaction_id: Option<String>,
    }
}

typed_io!(RequestCancellation, RequestCancellation);

cim_document!(RequestCancellation, records, Cancellation);

fn check_document(doc: &RequestCancellation) -> Result<(), Finding> {
    check_header(&doc.header, false, &[MessageType::REQUEST_CANCELLATION])
}

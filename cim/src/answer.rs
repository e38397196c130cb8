//! DataHub's answers to requests: confirm and reject documents.
//!
//! One model serves RSM-001 (change of supplier; real JSON schemas), RSM-005 (end of
//! supply; shape derived from the XSDs) and RSM-003/RSM-027 (corrections, customer data;
//! names and shape inferred from those two, no XSD is public); [`RejectSeries`] serves the rejects of RSM-015,
//! RSM-016 and RSM-017 (real JSON schemas). The header carries `reason.code` A01 (confirm)
//! or A02 (reject).

use crate::common::Reason;
use crate::de::{Finding, cim_object};
use crate::document::cim_document;
use crate::gsrn::Gsrn;
use crate::header::{Header, check_header};

cim_object! {
    /// `ConfirmRequestChangeOfSupplier_MarketDocument` / `ConfirmRequestEndOfSupply_MarketDocument`.
    #[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
    pub struct Confirmation {
        flatten header: Header;
        /// `MktActivityRecord[]`: one per confirmed request.
        "MktActivityRecord" [nonempty] => records: Vec<ConfirmedRecord>,
    }
    check = check_answer_header;
}

cim_object! {
    /// One confirmed request.
    #[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
    pub struct ConfirmedRecord {
        /// `mRID`: DataHub's transaction id.
        "mRID" => transaction_id: String,
        /// `businessProcessReference_MktActivityRecord.mRID`: DataHub's process id.
        "businessProcessReference_MktActivityRecord.mRID" => business_process_id: Option<String>,
        /// `marketEvaluationPoint.mRID`.
        "marketEvaluationPoint.mRID" => metering_point: Gsrn,
        /// `originalTransactionIDReference_MktActivityRecord.mRID`: our request's transaction id.
        "originalTransactionIDReference_MktActivityRecord.mRID" => original_transaction_id: Option<String>,
    }
}

cim_object! {
    /// `RejectRequestChangeOfSupplier_MarketDocument` / `RejectRequestEndOfSupply_MarketDocument`.
    #[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
    pub struct Rejection {
        flatten header: Header;
        /// `MktActivityRecord[]`: one per rejected request.
        "MktActivityRecord" [nonempty] => records: Vec<RejectedRecord>,
    }
    check = check_rejection_header;
}

cim_object! {
    /// One rejected request and why.
    #[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
    pub struct RejectedRecord {
        /// `mRID`: DataHub's transaction id.
        "mRID" => transaction_id: String,
        /// `businessProcessReference_MktActivityRecord.mRID`.
        "businessProcessReference_MktActivityRecord.mRID" => business_process_id: Option<String>,
        /// `marketEvaluationPoint.mRID` (optional in the RSM-001 schema).
        "marketEvaluationPoint.mRID" => metering_point: Option<Gsrn>,
        /// `originalTransactionIDReference_MktActivityRecord.mRID`: our request's transaction id.
        "originalTransactionIDReference_MktActivityRecord.mRID" => original_transaction_id: Option<String>,
        /// `Reason[]`: at least one.
        "Reason" [nonempty] => reasons: Vec<Reason>,
    }
}

cim_object! {
    /// `RejectRequestValidatedMeasureData_MarketDocument` (RSM-015), `RejectRequestAggregatedMeasureData_MarketDocument`
    /// (RSM-016), `RejectRequestWholesaleSettlement_MarketDocument` (RSM-017).
    #[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
    pub struct RejectSeries {
        flatten header: Header;
        /// `Series[]`: one per rejected request series.
        "Series" [nonempty] => series: Vec<RejectedSeries>,
    }
    check = check_rejection_header;
}

cim_object! {
    /// One rejected request series and why.
    #[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
    pub struct RejectedSeries {
        /// `mRID`.
        "mRID" => transaction_id: String,
        /// `marketEvaluationPoint.mRID`: only in the RSM-015 reject.
        "marketEvaluationPoint.mRID" => metering_point: Option<Gsrn>,
        /// `originalTransactionIDReference_Series.mRID`: our request series' id.
        "originalTransactionIDReference_Series.mRID" => original_transaction_id: Option<String>,
        /// `Reason[]`: at least one.
        "Reason" [nonempty] => reasons: Vec<Reason>,
    }
}

cim_document!(Confirmation, records, ConfirmedRecord);
cim_document!(Rejection, records, RejectedRecord);
cim_document!(RejectSeries, series, RejectedSeries);

fn check_answer_header(doc: &Confirmation) -> Result<(), Finding> {
    check_header(&doc.header, true, &[])
}

fn check_rejection_header<T: crate::document::CimDocument>(doc: &T) -> Result<(), Finding> {
    check_header(doc.header(), true, &[])
}

/// The RSM-016 and RSM-017 reject schemas have no `marketEvaluationPoint.mRID` in `Series`.
pub(crate) fn check_no_metering_point(doc: &RejectSeries) -> Result<(), Finding> {
    for (i, s) in doc.series.iter().enumerate() {
        if s.metering_point.is_some() {
            return Err(Finding::schema(
                format!(".Series[{i}]['marketEvaluationPoint.mRID']"),
                "unknown property `marketEvaluationPoint.mRID` in this reject document",
            ));
        }
    }
    Ok(())
}

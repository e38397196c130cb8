//! RSM-004 GenericNotification: DataHub tells the (current) supplier about an event on a
//! metering point, e.g. end of supply because another supplier's move-in took over.
//!
//! Shape: **derived** from the XSD `rsm-004-generic-notification/urn-ediel-org-structure-genericnotification-0-1.xsd`
//! with the CIM JSON conventions (no JSON schema or example is public; see `docs/cim.md`).

use chrono::{DateTime, Utc};

use crate::de::{Finding, cim_object};
use crate::document::{cim_document, typed_io};
use crate::gsrn::Gsrn;
use crate::header::{Header, check_header};

cim_object! {
    /// `GenericNotification_MarketDocument`. Derived shape.
    #[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
    pub struct GenericNotification {
        flatten header: Header;
        /// `MktActivityRecord[]`.
        "MktActivityRecord" [nonempty] => records: Vec<Notification>,
    }
    check = check_document;
}

cim_object! {
    /// One notification.
    #[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
    pub struct Notification {
        /// `mRID`: the transaction id.
        "mRID" => transaction_id: String,
        /// `businessProcessReference_MktActivityRecord.mRID`.
        "businessProcessReference_MktActivityRecord.mRID" => business_process_id: Option<String>,
        /// `originalTransactionIDReference_MktActivityRecord.mRID`.
        "originalTransactionIDReference_MktActivityRecord.mRID" => original_transaction_id: Option<String>,
        /// `validityStart_DateAndOrTime.dateTime`: when the event takes effect.
        "validityStart_DateAndOrTime.dateTime" => validity_start: DateTime<Utc>,
        /// `marketEvaluationPoint.mRID`.
        "marketEvaluationPoint.mRID" => metering_point: Gsrn,
    }
}

typed_io!(GenericNotification, GenericNotification);

cim_document!(GenericNotification, records, Notification);

fn check_document(doc: &GenericNotification) -> Result<(), Finding> {
    check_header(&doc.header, false, &[])
}

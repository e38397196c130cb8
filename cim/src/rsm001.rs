//! RSM-001 RequestChangeOfSupplier: the supplier asks DataHub to start supply on a metering
//! point (BRS-001 change of supplier, process E03; BRS-009 move-in, process E65). DataHub answers
//! with a confirm or reject ([`crate::answer`]).
//!
//! Shape: the real JSON schema `rsm-001-change-of-supplier/Request-Change-of-Supplier-assembly-model.schema.json`.

use chrono::{DateTime, Utc};

use crate::codes::MessageType;
use crate::common::PartyId;
use crate::de::{Finding, cim_object};
use crate::document::{cim_document, typed_io};
use crate::gsrn::Gsrn;
use crate::header::{Header, check_header};

cim_object! {
    /// `RequestChangeOfSupplier_MarketDocument` (type 392), DDQ → DDZ.
    #[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
    pub struct RequestChangeOfSupplier {
        flatten header: Header;
        /// `MktActivityRecord[]`: one request per metering point.
        "MktActivityRecord" [nonempty] => records: Vec<SupplierChange>,
    }
    check = check_document;
}

cim_object! {
    /// One requested change of supplier.
    #[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
    pub struct SupplierChange {
        /// `mRID`: the transaction id; DataHub's answer refers back to it.
        "mRID" => transaction_id: String,
        /// `businessProcessReference_MktActivityRecord.mRID`.
        "businessProcessReference_MktActivityRecord.mRID" => business_process_id: Option<String>,
        /// `marketEvaluationPoint.balanceResponsibleParty_MarketParticipant.mRID`.
        "marketEvaluationPoint.balanceResponsibleParty_MarketParticipant.mRID" => balance_responsible: Option<PartyId>,
        /// `marketEvaluationPoint.customer_MarketParticipant.mRID`: CPR (ARR) or CVR (VAT).
        "marketEvaluationPoint.customer_MarketParticipant.mRID" => customer_id: Option<PartyId>,
        /// `marketEvaluationPoint.customer_MarketParticipant.name`.
        "marketEvaluationPoint.customer_MarketParticipant.name" => customer_name: Option<String>,
        /// `marketEvaluationPoint.energySupplier_MarketParticipant.mRID`: the new supplier (us).
        "marketEvaluationPoint.energySupplier_MarketParticipant.mRID" => energy_supplier: PartyId,
        /// `marketEvaluationPoint.mRID`.
        "marketEvaluationPoint.mRID" => metering_point: Gsrn,
        /// `marketEvaluationPoint.shipper_MarketParticipant.mRID`.
        "marketEvaluationPoint.shipper_MarketParticipant.mRID" => shipper: Option<PartyId>,
        /// `start_DateAndOrTime.dateTime`: the effective date of the change.
        "start_DateAndOrTime.dateTime" => start: DateTime<Utc>,
    }
}

typed_io!(RequestChangeOfSupplier, RequestChangeOfSupplier);

cim_document!(RequestChangeOfSupplier, records, SupplierChange);

fn check_document(doc: &RequestChangeOfSupplier) -> Result<(), Finding> {
    check_header(
        &doc.header,
        false,
        &[MessageType::REQUEST_CHANGE_OF_SUPPLIER],
    )
}

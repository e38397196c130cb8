//! RSM-005 RequestEndOfSupply: the supplier asks DataHub to end supply on a metering point
//! (BRS-002, process E20). DataHub answers with a confirm or reject ([`crate::answer`]).
//!
//! Shape: **derived** from the XSD `rsm-005-end-of-supply/urn-ediel-org-structure-requestendofsupply-0-1.xsd`
//! with the CIM JSON conventions (no JSON schema or example is public; see `docs/cim.md`).

use chrono::{DateTime, Utc};

use crate::codes::MessageType;
use crate::common::PartyId;
use crate::de::{Finding, cim_object};
use crate::document::{cim_document, typed_io};
use crate::gsrn::Gsrn;
use crate::header::{Header, check_header};

cim_object! {
    /// `RequestEndOfSupply_MarketDocument` (type 432), DDQ → DDZ. Derived shape.
    #[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
    pub struct RequestEndOfSupply {
        flatten header: Header;
        /// `MktActivityRecord[]`: one request per metering point.
        "MktActivityRecord" [nonempty] => records: Vec<SupplyEnd>,
    }
    check = check_document;
}

cim_object! {
    /// One requested end of supply.
    #[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
    pub struct SupplyEnd {
        /// `mRID`: the transaction id.
        "mRID" => transaction_id: String,
        /// `businessProcessReference_MktActivityRecord.mRID`.
        "businessProcessReference_MktActivityRecord.mRID" => business_process_id: Option<String>,
        /// `marketEvaluationPoint.mRID`.
        "marketEvaluationPoint.mRID" => metering_point: Gsrn,
        /// `marketEvaluationPoint.balanceResponsibleParty_MarketParticipant.mRID`.
        "marketEvaluationPoint.balanceResponsibleParty_MarketParticipant.mRID" => balance_responsible: Option<PartyId>,
        /// `marketEvaluationPoint.shipper_MarketParticipant.mRID`.
        "marketEvaluationPoint.shipper_MarketParticipant.mRID" => shipper: Option<PartyId>,
        /// `marketEvaluationPoint.energySupplier_MarketParticipant.mRID`.
        "marketEvaluationPoint.energySupplier_MarketParticipant.mRID" => energy_supplier: Option<PartyId>,
        /// `end_DateAndOrTime.dateTime`: the last instant of supply (exclusive).
        "end_DateAndOrTime.dateTime" => end: DateTime<Utc>,
    }
}

typed_io!(RequestEndOfSupply, RequestEndOfSupply);

cim_document!(RequestEndOfSupply, records, SupplyEnd);

fn check_document(doc: &RequestEndOfSupply) -> Result<(), Finding> {
    check_header(&doc.header, false, &[MessageType::CONTRACT_TERMINATION])
}

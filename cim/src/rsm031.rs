//! RSM-031 NotifyBillingMasterData: charge links, i.e. which charges apply to which metering
//! point, from when, with which factor.
//!
//! Shape: **derived** from the XSD `urn-ediel-org-structure-notifybillingmasterdata-0-1.xsd`
//! and DataHub's archived XML output with the CIM JSON conventions (no JSON schema or JSON
//! example is public; see `docs/cim.md`).

use chrono::{DateTime, Utc};

use crate::codes::{ChargeKind, MessageType};
use crate::common::PartyId;
use crate::de::{Finding, cim_object};
use crate::document::{cim_document, typed_io};
use crate::gsrn::Gsrn;
use crate::header::{Header, check_header};

cim_object! {
    /// `NotifyBillingMasterData_MarketDocument` (type D07, process D17). Derived shape.
    #[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
    pub struct NotifyBillingMasterData {
        flatten header: Header;
        /// `MktActivityRecord[]`: one per metering point.
        "MktActivityRecord" [nonempty] => records: Vec<ChargeLinkRecord>,
    }
    check = check_document;
}

cim_object! {
    /// The charge links of one metering point.
    #[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
    pub struct ChargeLinkRecord {
        /// `mRID`: the transaction id.
        "mRID" => transaction_id: String,
        /// `businessProcessReference_MktActivityRecord.mRID`.
        "businessProcessReference_MktActivityRecord.mRID" => business_process_id: Option<String>,
        /// `originalTransactionIDReference_MktActivityRecord.mRID`.
        "originalTransactionIDReference_MktActivityRecord.mRID" => original_transaction_id: Option<String>,
        /// `marketEvaluationPoint.mRID`.
        "marketEvaluationPoint.mRID" => metering_point: Gsrn,
        /// `ChargeGroup`.
        "ChargeGroup" => charge_group: ChargeLinkGroup,
    }
}

cim_object! {
    /// `ChargeGroup`: the linked charges.
    #[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
    pub struct ChargeLinkGroup {
        /// `ChargeType[]`: at least one.
        "ChargeType" [nonempty] => links: Vec<ChargeLink>,
    }
}

cim_object! {
    /// A charge linked to the metering point.
    #[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
    pub struct ChargeLink {
        /// `chargeTypeOwner_MarketParticipant.mRID`.
        "chargeTypeOwner_MarketParticipant.mRID" => owner: PartyId,
        /// `type.value`: subscription, fee or tariff.
        "type" [wrapped] => kind: ChargeKind,
        /// `mRID`: the charge code.
        "mRID" => code: String,
        /// `factor`: how many times the charge applies (text in the XSD, e.g. `1`).
        "factor" => factor: Option<String>,
        /// `effectiveDate`: link start.
        "effectiveDate" => effective: Option<DateTime<Utc>>,
        /// `terminationDate`: link end.
        "terminationDate" => termination: Option<DateTime<Utc>>,
    }
}

typed_io!(NotifyBillingMasterData, NotifyBillingMasterData);

cim_document!(NotifyBillingMasterData, records, ChargeLinkRecord);

fn check_document(doc: &NotifyBillingMasterData) -> Result<(), Finding> {
    check_header(
        &doc.header,
        false,
        &[MessageType::NOTIFY_MASTER_DATA_CHARGE],
    )
}

//! RSM-017 RequestWholesaleSettlement: the supplier asks DataHub for wholesale results,
//! answered with RSM-019 or a reject.
//!
//! Shape: the real JSON schema `rsm-017/Request-wholesale-settlement-assembly-model.schema.json`.

use chrono::{DateTime, Utc};

use crate::codes::{ChargeKind, MessageType, ProcessVariant};
use crate::common::{AreaId, PartyId};
use crate::de::{Finding, cim_object};
use crate::document::{cim_document, typed_io};
use crate::header::{Header, check_header};
use crate::resolution::IsoDuration;

cim_object! {
    /// `RequestWholesaleSettlement_MarketDocument` (type D21), DDQ → DDZ.
    #[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
    pub struct RequestWholesaleSettlement {
        flatten header: Header;
        /// `Series[]`: one request per series.
        "Series" [nonempty] => series: Vec<SettlementRequest>,
    }
    check = check_document;
}

cim_object! {
    /// One wholesale settlement request.
    #[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
    pub struct SettlementRequest {
        /// `mRID`: the transaction id.
        "mRID" => transaction_id: String,
        /// `aggregationSeries_Period.resolution`: any ISO 8601 duration the schema allows
        /// (DataHub decides what it supports; its own example asks for `PT1M`).
        "aggregationSeries_Period.resolution" => resolution: Option<IsoDuration>,
        /// `chargeTypeOwner_MarketParticipant.mRID`.
        "chargeTypeOwner_MarketParticipant.mRID" => charge_owner: Option<PartyId>,
        /// `end_DateAndOrTime.dateTime`.
        "end_DateAndOrTime.dateTime" => end: Option<DateTime<Utc>>,
        /// `energySupplier_MarketParticipant.mRID`.
        "energySupplier_MarketParticipant.mRID" => energy_supplier: Option<PartyId>,
        /// `meteringGridArea_Domain.mRID`.
        "meteringGridArea_Domain.mRID" => grid_area: Option<AreaId>,
        /// `settlement_Series.version`.
        "settlement_Series.version" [wrapped] => settlement_version: Option<ProcessVariant>,
        /// `start_DateAndOrTime.dateTime`.
        "start_DateAndOrTime.dateTime" => start: DateTime<Utc>,
        /// `version`.
        "version" => version: Option<String>,
        /// `ChargeType[]`: the charges asked for (none = all).
        "ChargeType" [default] => charges: Vec<ChargeRef>,
    }
    check = check_request;
}

cim_object! {
    /// A charge filter in a request.
    #[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
    pub struct ChargeRef {
        /// `mRID`: the charge code.
        "mRID" => code: Option<String>,
        /// `type.value`.
        "type" [wrapped] => kind: Option<ChargeKind>,
    }
}

typed_io!(RequestWholesaleSettlement, RequestWholesaleSettlement);

cim_document!(RequestWholesaleSettlement, series, SettlementRequest);

fn check_document(doc: &RequestWholesaleSettlement) -> Result<(), Finding> {
    check_header(
        &doc.header,
        false,
        &[MessageType::REQUEST_AGGREGATED_BILLING_INFORMATION],
    )
}

fn check_request(r: &SettlementRequest) -> Result<(), Finding> {
    crate::common::check_range(Some(r.start), r.end)
}

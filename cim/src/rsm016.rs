//! RSM-016 RequestAggregatedMeasureData: the supplier asks DataHub for aggregations (BRS-026),
//! answered with RSM-014 or a reject.
//!
//! Shape: the real JSON schema `rsm-016/Request-aggregated-measure-data-assembly-model.schema.json`.

use chrono::{DateTime, Utc};

use crate::codes::{MessageType, MeteringPointType, ProcessVariant, SettlementMethod};
use crate::common::{AreaId, PartyId};
use crate::de::{Finding, cim_object};
use crate::document::{cim_document, typed_io};
use crate::header::{Header, check_header};

cim_object! {
    /// `RequestAggregatedMeasureData_MarketDocument` (type E74), DDQ → DGL.
    #[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
    pub struct RequestAggregatedMeasureData {
        flatten header: Header;
        /// `Series[]`: one request per series.
        "Series" [nonempty] => series: Vec<AggregationRequest>,
    }
    check = check_document;
}

cim_object! {
    /// One aggregation request.
    #[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
    pub struct AggregationRequest {
        /// `mRID`: the transaction id.
        "mRID" => transaction_id: String,
        /// `balanceResponsibleParty_MarketParticipant.mRID`.
        "balanceResponsibleParty_MarketParticipant.mRID" => balance_responsible: Option<PartyId>,
        /// `biddingZone_Domain.mRID`.
        "biddingZone_Domain.mRID" => bidding_zone: Option<AreaId>,
        /// `end_DateAndOrTime.dateTime`.
        "end_DateAndOrTime.dateTime" => end: Option<DateTime<Utc>>,
        /// `energySupplier_MarketParticipant.mRID`.
        "energySupplier_MarketParticipant.mRID" => energy_supplier: Option<PartyId>,
        /// `marketEvaluationPoint.settlementMethod`.
        "marketEvaluationPoint.settlementMethod" [wrapped] => settlement_method: Option<SettlementMethod>,
        /// `marketEvaluationPoint.type`.
        "marketEvaluationPoint.type" [wrapped] => metering_point_type: Option<MeteringPointType>,
        /// `meteringGridArea_Domain.mRID`.
        "meteringGridArea_Domain.mRID" => grid_area: Option<AreaId>,
        /// `settlement_Series.version`.
        "settlement_Series.version" [wrapped] => settlement_version: Option<ProcessVariant>,
        /// `start_DateAndOrTime.dateTime`.
        "start_DateAndOrTime.dateTime" => start: DateTime<Utc>,
    }
    check = check_request;
}

typed_io!(RequestAggregatedMeasureData, RequestAggregatedMeasureData);

cim_document!(RequestAggregatedMeasureData, series, AggregationRequest);

fn check_document(doc: &RequestAggregatedMeasureData) -> Result<(), Finding> {
    check_header(
        &doc.header,
        false,
        &[MessageType::REQUEST_AGGREGATED_METERED_DATA],
    )
}

fn check_request(r: &AggregationRequest) -> Result<(), Finding> {
    crate::common::check_range(Some(r.start), r.end)
}

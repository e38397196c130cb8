//! RSM-014 NotifyAggregatedMeasureData: aggregated energy per grid area (BRS-023/027), used to
//! reconcile the supplier's own volumes against DataHub's balance and wholesale fixing.
//!
//! Shape: the real JSON schema `rsm-014/Notify-Aggregated-Measure-Data-assembly-model.schema.json`
//! (no instance document is public); key order follows DataHub's writer.

use chrono::{DateTime, Utc};

use crate::codes::{
    AssetType, MessageType, MeteringPointType, ProcessVariant, SettlementMethod, Unit,
};
use crate::common::{AreaId, PartyId, TimeInterval};
use crate::de::{Finding, cim_object};
use crate::document::{cim_document, typed_io};
use crate::header::{Header, check_header};
use crate::resolution::Resolution;
use crate::series::{Point, check_positions, check_sign};

cim_object! {
    /// `NotifyAggregatedMeasureData_MarketDocument` (type E31; process D03/D04/D05/D32).
    #[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
    pub struct NotifyAggregatedMeasureData {
        flatten header: Header;
        /// `Series[]`: at least one.
        "Series" [nonempty] => series: Vec<AggregatedSeries>,
    }
    check = check_document;
}

cim_object! {
    /// One aggregated series: a grid area (and optionally supplier / balance responsible),
    /// metering point type and settlement method, for one period.
    #[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
    pub struct AggregatedSeries {
        /// `mRID`: the transaction id.
        "mRID" => transaction_id: String,
        /// `version`: the calculation version.
        "version" => version: Option<String>,
        /// `meteringGridArea_Domain.mRID`: the grid area (NDK).
        "meteringGridArea_Domain.mRID" => grid_area: Option<AreaId>,
        /// `balanceResponsibleParty_MarketParticipant.mRID`.
        "balanceResponsibleParty_MarketParticipant.mRID" => balance_responsible: Option<PartyId>,
        /// `energySupplier_MarketParticipant.mRID`.
        "energySupplier_MarketParticipant.mRID" => energy_supplier: Option<PartyId>,
        /// `marketEvaluationPoint.settlementMethod`: E02 non-profiled, D01 flex.
        "marketEvaluationPoint.settlementMethod" [wrapped] => settlement_method: Option<SettlementMethod>,
        /// `originalTransactionIDReference_Series.mRID`: the RSM-016 request it answers.
        "originalTransactionIDReference_Series.mRID" => original_transaction_id: Option<String>,
        /// `marketEvaluationPoint.type`: E17, E18 or E20.
        "marketEvaluationPoint.type" [wrapped] => metering_point_type: MeteringPointType,
        /// `product`.
        "product" => product: Option<String>,
        /// `quantity_Measure_Unit.name`: KWH.
        "quantity_Measure_Unit.name" [wrapped] => unit: Unit,
        /// `settlement_Series.version`: D01/D02/D03 first/second/third correction.
        "settlement_Series.version" [wrapped] => settlement_version: Option<ProcessVariant>,
        /// `asset_MktPSRType.psrType`.
        "asset_MktPSRType.psrType" [wrapped] => asset_type: Option<AssetType>,
        /// `biddingZone_Domain.mRID`: the price area (EIC), when given.
        "biddingZone_Domain.mRID" => bidding_zone: Option<AreaId>,
        /// `in_Domain.mRID`.
        "in_Domain.mRID" => in_area: Option<AreaId>,
        /// `out_Domain.mRID`.
        "out_Domain.mRID" => out_area: Option<AreaId>,
        /// `registration_DateAndOrTime.dateTime`.
        "registration_DateAndOrTime.dateTime" => registered: Option<DateTime<Utc>>,
        /// `Period`.
        "Period" => period: AggregatedPeriod,
    }
    check = check_series;
}

cim_object! {
    /// The period of an aggregated series.
    #[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
    pub struct AggregatedPeriod {
        /// `resolution`.
        "resolution" => resolution: Resolution,
        /// `timeInterval`.
        "timeInterval" => interval: TimeInterval,
        /// `Point[]` (schema: optional, may be empty).
        "Point" [default] => points: Vec<Point>,
    }
    check = check_period;
}

impl NotifyAggregatedMeasureData {
    /// Total number of points over all series.
    pub fn point_count(&self) -> usize {
        self.series.iter().map(|s| s.period.points.len()).sum()
    }
}

typed_io!(NotifyAggregatedMeasureData, NotifyAggregatedMeasureData);

cim_document!(
    NotifyAggregatedMeasureData,
    series,
    AggregatedSeries,
    points = NotifyAggregatedMeasureData::point_count
);

fn check_document(doc: &NotifyAggregatedMeasureData) -> Result<(), Finding> {
    check_header(&doc.header, false, &[MessageType::AGGREGATED_METERED_DATA])
}

fn check_series(series: &AggregatedSeries) -> Result<(), Finding> {
    // Net exchange between grid areas can go either way; consumption and production cannot.
    let allowed = series.metering_point_type == MeteringPointType::Exchange
        || series.metering_point_type.allows_negative_quantity();
    for (i, point) in series.period.points.iter().enumerate() {
        check_sign(
            point.quantity,
            allowed,
            || format!(".Period.Point[{i}].quantity"),
            || format!("for metering point type {}", series.metering_point_type),
        )?;
    }
    Ok(())
}

fn check_period(period: &AggregatedPeriod) -> Result<(), Finding> {
    check_positions(
        period.resolution,
        &period.interval,
        ".Point",
        period
            .points
            .iter()
            .enumerate()
            .map(|(i, p)| (i, p.position)),
    )
    .map(|_| ())
}

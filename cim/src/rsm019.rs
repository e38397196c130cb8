//! RSM-019 NotifyWholesaleServices: DataHub's wholesale settlement per charge (amounts in DKK),
//! used to reconcile the supplier's own charge calculation.
//!
//! Shape: the real JSON schema `rsm-019/Notify-wholesale-services-assembly-model.schema.json`
//! (no instance document is public); key order follows DataHub's writer.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use crate::codes::{
    AssetType, ChargeKind, Currency, MessageType, MeteringPointType, ProcessVariant, Quality,
    SettlementMethod, Unit,
};
use crate::common::{AreaId, PartyId, TimeInterval};
use crate::de::{Finding, cim_object};
use crate::document::{cim_document, typed_io};
use crate::header::{Header, check_header};
use crate::resolution::Resolution;
use crate::series::check_positions;

cim_object! {
    /// `NotifyWholesaleServices_MarketDocument` (type E31; process D05/D32).
    #[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
    pub struct NotifyWholesaleServices {
        flatten header: Header;
        /// `Series[]` (schema: optional, may be empty).
        "Series" [default] => series: Vec<WholesaleSeries>,
    }
    check = check_document;
}

cim_object! {
    /// One settlement series: a charge (or a monthly sum) for a supplier in a grid area.
    #[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
    pub struct WholesaleSeries {
        /// `mRID`: the transaction id.
        "mRID" => transaction_id: String,
        /// `version`: the calculation version.
        "version" => version: Option<String>,
        /// `settlement_Series.version`: D01/D02/D03 correction.
        "settlement_Series.version" [wrapped] => settlement_version: Option<ProcessVariant>,
        /// `originalTransactionIDReference_Series.mRID`: the RSM-017 request it answers.
        "originalTransactionIDReference_Series.mRID" => original_transaction_id: Option<String>,
        /// `marketEvaluationPoint.type`.
        "marketEvaluationPoint.type" [wrapped] => metering_point_type: Option<MeteringPointType>,
        /// `marketEvaluationPoint.settlementMethod`.
        "marketEvaluationPoint.settlementMethod" [wrapped] => settlement_method: Option<SettlementMethod>,
        /// `chargeType.mRID`: the charge code.
        "chargeType.mRID" => charge_code: Option<String>,
        /// `chargeType.type`: subscription, fee or tariff.
        "chargeType.type" [wrapped] => charge_kind: Option<ChargeKind>,
        /// `chargeType.chargeTypeOwner_MarketParticipant.mRID`.
        "chargeType.chargeTypeOwner_MarketParticipant.mRID" => charge_owner: Option<PartyId>,
        /// `meteringGridArea_Domain.mRID`.
        "meteringGridArea_Domain.mRID" => grid_area: Option<AreaId>,
        /// `energySupplier_MarketParticipant.mRID`.
        "energySupplier_MarketParticipant.mRID" => energy_supplier: PartyId,
        /// `product`: 5790001330590 (tariff).
        "product" => product: Option<String>,
        /// `quantity_Measure_Unit.name`: KWH for tariffs, H87 (pieces) for subscriptions and fees.
        "quantity_Measure_Unit.name" [wrapped] => unit: Unit,
        /// `price_Measure_Unit.name`.
        "price_Measure_Unit.name" [wrapped] => price_unit: Option<Unit>,
        /// `currency_Unit.name`: DKK.
        "currency_Unit.name" [wrapped] => currency: Option<Currency>,
        /// `asset_MktPSRType.psrType`.
        "asset_MktPSRType.psrType" [wrapped] => asset_type: Option<AssetType>,
        /// `biddingZone_Domain.mRID`.
        "biddingZone_Domain.mRID" => bidding_zone: Option<AreaId>,
        /// `registration_DateAndOrTime.dateTime`.
        "registration_DateAndOrTime.dateTime" => registered: Option<DateTime<Utc>>,
        /// `Period`.
        "Period" => period: WholesalePeriod,
    }
}

cim_object! {
    /// The period of a settlement series.
    #[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
    pub struct WholesalePeriod {
        /// `resolution`: PT15M/PT1H/P1D for tariffs, P1M for monthly sums.
        "resolution" => resolution: Resolution,
        /// `timeInterval`.
        "timeInterval" => interval: TimeInterval,
        /// `Point[]` (schema: optional, may be empty).
        "Point" [default] => points: Vec<WholesalePoint>,
    }
    check = check_period;
}

cim_object! {
    /// One settlement point: amount, energy, price.
    #[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
    pub struct WholesalePoint {
        /// `energySum_Quantity.quantity`: the amount in DKK (signed: corrections can be negative).
        "energySum_Quantity.quantity" => amount: Option<Decimal>,
        /// `energy_Quantity.quantity`: kWh or pieces.
        "energy_Quantity.quantity" => quantity: Option<Decimal>,
        /// `position.value`.
        "position" [wrapped] => position: u32,
        /// `price.amount.value`: DKK per unit.
        "price.amount" [wrapped] => price: Option<Decimal>,
        /// `quality.value`, as sent (A02, A05 or A06 in wholesale results).
        "quality" [wrapped] => quality: Option<Quality>,
    }
}

impl NotifyWholesaleServices {
    /// Total number of points over all series.
    pub fn point_count(&self) -> usize {
        self.series.iter().map(|s| s.period.points.len()).sum()
    }
}

typed_io!(NotifyWholesaleServices, NotifyWholesaleServices);

cim_document!(
    NotifyWholesaleServices,
    series,
    WholesaleSeries,
    points = NotifyWholesaleServices::point_count
);

fn check_document(doc: &NotifyWholesaleServices) -> Result<(), Finding> {
    check_header(&doc.header, false, &[MessageType::AGGREGATED_METERED_DATA])
}

fn check_period(period: &WholesalePeriod) -> Result<(), Finding> {
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

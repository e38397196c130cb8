//! RSM-022 AccountingPointCharacteristics: metering point master data sent to the supplier
//! (GSRN, type, settlement method, grid area, read cycle, supply start, address, …).
//!
//! Shape: **derived** from the XSD `rsm-022-accounting-point-characteristics/urn-ediel-org-structure-accountingpointcharacteristics-0-1.xsd`
//! and DataHub's XML example with the CIM JSON conventions; no JSON schema or JSON example is
//! public (see `docs/cim.md`). The XSD has no price area: it follows from the grid area.
//! Where DataHub's example omits the coding scheme of parent/child/linked metering point ids,
//! the reader accepts that too.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use crate::codes::{
    AssetType, DisconnectionMethod, EnergyProduct, MessageType, MeteringMethod, MeteringPointType,
    MpConnectionType, PhysicalStatus, SettlementMethod, Unit,
};
use crate::common::{AreaId, PartyId};
use crate::de::{Finding, cim_object};
use crate::document::{cim_document, typed_io};
use crate::gsrn::{Gsrn, GsrnRef};
use crate::header::{Header, check_header};
use crate::resolution::Resolution;

cim_object! {
    /// `AccountingPointCharacteristics_MarketDocument` (type E07), DDZ → DDQ. Derived shape.
    #[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
    pub struct AccountingPointCharacteristics {
        flatten header: Header;
        /// `MktActivityRecord[]`: one per metering point.
        "MktActivityRecord" [nonempty] => records: Vec<AccountingPointRecord>,
    }
    check = check_document;
}

cim_object! {
    /// One metering point's master data, valid from `validity_start`.
    #[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
    pub struct AccountingPointRecord {
        /// `mRID`: the transaction id.
        "mRID" => transaction_id: String,
        /// `businessProcessReference_MktActivityRecord.mRID`.
        "businessProcessReference_MktActivityRecord.mRID" => business_process_id: Option<String>,
        /// `originalTransactionIDReference_MktActivityRecord.mRID`.
        "originalTransactionIDReference_MktActivityRecord.mRID" => original_transaction_id: Option<String>,
        /// `validityStart_DateAndOrTime.dateTime`: from when this master data applies.
        "validityStart_DateAndOrTime.dateTime" => validity_start: DateTime<Utc>,
        /// `snapshot_DateAndOrTime.dateTime`.
        "snapshot_DateAndOrTime.dateTime" => snapshot: Option<DateTime<Utc>>,
        /// `MarketEvaluationPoint`.
        "MarketEvaluationPoint" => metering_point: MeteringPoint,
    }
}

cim_object! {
    /// The metering point (`MarketEvaluationPoint`).
    #[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
    pub struct MeteringPoint {
        /// `mRID`: the GSRN.
        "mRID" => gsrn: Gsrn,
        /// `meteringPointResponsible_MarketParticipant.mRID`: the grid company.
        "meteringPointResponsible_MarketParticipant.mRID" => responsible: Option<PartyId>,
        /// `type`: E17 consumption, E18 production, child types.
        "type" [wrapped] => metering_point_type: Option<MeteringPointType>,
        /// `settlementMethod`: E02 non-profiled, D01 flex, E01 profiled.
        "settlementMethod" [wrapped] => settlement_method: Option<SettlementMethod>,
        /// `meteringMethod`: physical, virtual, calculated.
        "meteringMethod" [wrapped] => metering_method: Option<MeteringMethod>,
        /// `connectionState`: E22 connected, E23 disconnected, …
        "connectionState" [wrapped] => connection_state: Option<PhysicalStatus>,
        /// `readCycle`: the resolution metered data comes in.
        "readCycle" => read_cycle: Option<Resolution>,
        /// `netSettlementGroup`.
        "netSettlementGroup" => net_settlement_group: Option<String>,
        /// `nextReadingDate` (month-day).
        "nextReadingDate" => next_reading_date: Option<String>,
        /// `meteringGridArea_Domain.mRID`: the grid area (NDK); decides the price area.
        "meteringGridArea_Domain.mRID" => grid_area: Option<AreaId>,
        /// `inMeteringGridArea_Domain.mRID`.
        "inMeteringGridArea_Domain.mRID" => in_grid_area: Option<AreaId>,
        /// `outMeteringGridArea_Domain.mRID`.
        "outMeteringGridArea_Domain.mRID" => out_grid_area: Option<AreaId>,
        /// `linked_MarketEvaluationPoint.mRID`.
        "linked_MarketEvaluationPoint.mRID" => linked: Option<GsrnRef>,
        /// `physicalConnectionCapacity`.
        "physicalConnectionCapacity" => physical_connection_capacity: Option<Capacity>,
        /// `mPConnectionType`.
        "mPConnectionType" [wrapped] => connection_type: Option<MpConnectionType>,
        /// `disconnectionMethod`.
        "disconnectionMethod" [wrapped] => disconnection_method: Option<DisconnectionMethod>,
        /// `asset_MktPSRType.psrType`.
        "asset_MktPSRType.psrType" [wrapped] => asset_type: Option<AssetType>,
        /// `productionObligation`.
        "productionObligation" => production_obligation: Option<bool>,
        /// `contractedConnectionCapacity`.
        "contractedConnectionCapacity" => contracted_connection_capacity: Option<Capacity>,
        /// `ratedCurrent`.
        "ratedCurrent" => rated_current: Option<Current>,
        /// `meter.mRID.value`: the meter number.
        "meter.mRID" [wrapped] => meter_id: Option<String>,
        /// `Series[]`: product and unit.
        "Series" [default] => products: Vec<ProductSeries>,
        /// `energySupplier_MarketParticipant.mRID`: the supplier from `supply_start`.
        "energySupplier_MarketParticipant.mRID" => energy_supplier: Option<PartyId>,
        /// `supplyStart_DateAndOrTime.dateTime`: when that supplier's supply starts.
        "supplyStart_DateAndOrTime.dateTime" => supply_start: Option<DateTime<Utc>>,
        /// `description`.
        "description" => description: Option<String>,
        /// `usagePointLocation.geoInfoReference.value` (DAR id).
        "usagePointLocation.geoInfoReference" [wrapped] => geo_info_reference: Option<String>,
        /// `usagePointLocation.mainAddress`.
        "usagePointLocation.mainAddress" => address: Option<Address>,
        /// `usagePointLocation.actualAddressIndicator`.
        "usagePointLocation.actualAddressIndicator" => actual_address: Option<bool>,
        /// `Parent_MarketEvaluationPoint`.
        "Parent_MarketEvaluationPoint" => parent: Option<RelatedPoint>,
        /// `Child_MarketEvaluationPoint[]`.
        "Child_MarketEvaluationPoint" [default] => children: Vec<RelatedPoint>,
    }
}

cim_object! {
    /// A capacity with its unit (`DecimalQuantity`: text value, `unit` from UnitOfMeasureTypeList).
    #[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
    pub struct Capacity {
        /// `unit`, e.g. KWT.
        "unit" => unit: Unit,
        /// `value` as written (the XSD base type is a string).
        "value" => value: String,
    }
}

cim_object! {
    /// A current (`CurrentFlow`: text value, `unit` fixed to AMP).
    #[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
    pub struct Current {
        /// `unit`: AMP.
        "unit" => unit: String,
        /// `value` as written.
        "value" => value: String,
    }
    check = check_current;
}

cim_object! {
    /// Product and unit of the metering point (`Series`).
    #[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
    pub struct ProductSeries {
        /// `product.value`.
        "product" [wrapped] => product: Option<EnergyProduct>,
        /// `estimatedAnnualVolume_Quantity.quantity`.
        "estimatedAnnualVolume_Quantity.quantity" => estimated_annual_volume: Option<Decimal>,
        /// `quantity_Measure_Unit.name.value`.
        "quantity_Measure_Unit.name" [wrapped] => unit: Option<Unit>,
    }
}

cim_object! {
    /// Installation address (`StreetAddress`).
    #[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
    pub struct Address {
        /// `streetDetail`.
        "streetDetail" => street: Option<StreetDetail>,
        /// `townDetail`.
        "townDetail" => town: Option<TownDetail>,
        /// `postalCode`.
        "postalCode" => postal_code: Option<String>,
        /// `poBox`.
        "poBox" => po_box: Option<String>,
        /// `language`.
        "language" => language: Option<String>,
    }
}

cim_object! {
    /// Street part of an address.
    #[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
    pub struct StreetDetail {
        /// `code`: street code.
        "code" => code: Option<String>,
        /// `name`.
        "name" => name: Option<String>,
        /// `number`.
        "number" => number: Option<String>,
        /// `floorIdentification`.
        "floorIdentification" => floor: Option<String>,
        /// `suiteNumber`.
        "suiteNumber" => suite: Option<String>,
    }
}

cim_object! {
    /// Town part of an address.
    #[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
    pub struct TownDetail {
        /// `code`: municipality code.
        "code" => code: Option<String>,
        /// `name`.
        "name" => name: Option<String>,
        /// `section`.
        "section" => section: Option<String>,
        /// `country.value`: two capital letters.
        "country" [wrapped] => country: Option<String>,
    }
    check = check_town;
}

cim_object! {
    /// A parent or child metering point.
    #[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
    pub struct RelatedPoint {
        /// `mRID`.
        "mRID" => gsrn: GsrnRef,
        /// `description.value`: the child's metering point type.
        "description" [wrapped] => metering_point_type: Option<MeteringPointType>,
    }
}

typed_io!(
    AccountingPointCharacteristics,
    AccountingPointCharacteristics
);

cim_document!(
    AccountingPointCharacteristics,
    records,
    AccountingPointRecord
);

fn check_document(doc: &AccountingPointCharacteristics) -> Result<(), Finding> {
    check_header(
        &doc.header,
        false,
        &[MessageType::MASTER_DATA_METERING_POINT],
    )
}

fn check_current(c: &Current) -> Result<(), Finding> {
    if c.unit == "AMP" {
        Ok(())
    } else {
        Err(Finding::schema(
            ".unit",
            format!("unit `{}` must be AMP", c.unit),
        ))
    }
}

fn check_town(t: &TownDetail) -> Result<(), Finding> {
    match &t.country {
        Some(c) if c.len() != 2 || !c.bytes().all(|b| b.is_ascii_uppercase()) => {
            Err(Finding::schema(
                ".country.value",
                format!("country `{c}` is not two capital letters"),
            ))
        }
        _ => Ok(()),
    }
}

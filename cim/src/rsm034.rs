//! RSM-034 NotifyPriceList: charge master data (process D18) and charge prices (process D08)
//! from DataHub: subscriptions, fees and tariffs with their price series.
//!
//! Shape: DataHub's archived JSON output (`ExpectedOutputChargeCimJsonSerializer*.blob`, the
//! charges domain 2021-22) checked against the XSD `urn-ediel-org-structure-notifypricelist-0-1.xsd`.
//! No JSON schema is public, and whether today's production output still looks like this is
//! not verified (see `docs/cim.md`).

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use crate::codes::{ChargeKind, MessageType, VatPayer};
use crate::common::{PartyId, TimeInterval};
use crate::de::{Finding, cim_object};
use crate::document::{cim_document, typed_io};
use crate::header::{Header, check_header};
use crate::resolution::Resolution;
use crate::series::{check_position_range, check_unique};

cim_object! {
    /// `NotifyPriceList_MarketDocument` (type D12), DDZ → DDQ.
    #[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
    pub struct NotifyPriceList {
        flatten header: Header;
        /// `MktActivityRecord[]`: one per charge.
        "MktActivityRecord" [nonempty] => records: Vec<PriceListRecord>,
    }
    check = check_document;
}

cim_object! {
    /// One activity record: a group of charges.
    #[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
    pub struct PriceListRecord {
        /// `mRID`: the transaction id.
        "mRID" => transaction_id: String,
        /// `businessProcessReference_MktActivityRecord.mRID`.
        "businessProcessReference_MktActivityRecord.mRID" => business_process_id: Option<String>,
        /// `originalTransactionIDReference_MktActivityRecord.mRID`.
        "originalTransactionIDReference_MktActivityRecord.mRID" => original_transaction_id: Option<String>,
        /// `snapshot_DateAndOrTime.dateTime`.
        "snapshot_DateAndOrTime.dateTime" => snapshot: Option<DateTime<Utc>>,
        /// `ChargeGroup`.
        "ChargeGroup" => charge_group: ChargeGroup,
    }
}

cim_object! {
    /// `ChargeGroup`: the charges of a record.
    #[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
    pub struct ChargeGroup {
        /// `ChargeType[]`: at least one.
        "ChargeType" [nonempty] => charges: Vec<Charge>,
    }
}

cim_object! {
    /// A charge: master data (D18) and/or prices (D08). Keys in DataHub's (alphabetical) order.
    #[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
    pub struct Charge {
        /// `mRID`: the charge code, unique per owner and kind.
        "mRID" => code: String,
        /// `VATPayer.value`.
        "VATPayer" [wrapped] => vat_payer: Option<VatPayer>,
        /// `chargeTypeOwner_MarketParticipant.mRID`: the grid company (or Energinet).
        "chargeTypeOwner_MarketParticipant.mRID" => owner: Option<PartyId>,
        /// `chargeComponents.equation`.
        "chargeComponents.equation" => equation: Option<String>,
        /// `description`.
        "description" => description: Option<String>,
        /// `effectiveDate`: from when this applies.
        "effectiveDate" => effective: Option<DateTime<Utc>>,
        /// `name`.
        "name" => name: Option<String>,
        /// `priceTimeFrame_Period.resolution`: the resolution of the charge's prices.
        "priceTimeFrame_Period.resolution" => price_resolution: Option<Resolution>,
        /// `taxIndicator`: true for a tax (elafgift) passed through the grid company.
        "taxIndicator" => tax: Option<bool>,
        /// `terminationDate`: when the charge stops.
        "terminationDate" => termination: Option<DateTime<Utc>>,
        /// `transparentInvoicing`: whether the charge must be shown on the invoice.
        "transparentInvoicing" => transparent_invoicing: Option<bool>,
        /// `type.value`: subscription, fee or tariff.
        "type" [wrapped] => kind: Option<ChargeKind>,
        /// `Series_Period[]`: price series (process D08).
        "Series_Period" [default] => prices: Vec<PricePeriod>,
    }
}

cim_object! {
    /// A price series.
    #[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
    pub struct PricePeriod {
        /// `resolution`.
        "resolution" => resolution: Resolution,
        /// `timeInterval` (optional in the XSD).
        "timeInterval" => interval: Option<TimeInterval>,
        /// `Point[]`: at least one.
        "Point" [nonempty] => points: Vec<PricePoint>,
    }
    check = check_period;
}

cim_object! {
    /// A price at a position.
    #[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
    pub struct PricePoint {
        /// `position.value`.
        "position" [wrapped] => position: u32,
        /// `price.amount.value`: DKK per unit (at most 17 digits, `Amount_Decimal`).
        "price.amount" [wrapped] => price: Decimal,
    }
}

impl NotifyPriceList {
    /// Number of price points over all charges.
    pub fn point_count(&self) -> usize {
        self.records
            .iter()
            .flat_map(|r| &r.charge_group.charges)
            .flat_map(|c| &c.prices)
            .map(|p| p.points.len())
            .sum()
    }
}

typed_io!(NotifyPriceList, NotifyPriceList);

cim_document!(
    NotifyPriceList,
    records,
    PriceListRecord,
    points = NotifyPriceList::point_count
);

fn check_document(doc: &NotifyPriceList) -> Result<(), Finding> {
    check_header(
        &doc.header,
        false,
        &[MessageType::NOTIFY_CHARGE_INFORMATION],
    )
}

/// In RSM-034 the `timeInterval` of a price series is the validity range of the prices
/// (DataHub's own output runs to 2100 with 24 hourly prices: a daily profile), so positions are
/// checked for range and uniqueness only, not against the interval's length.
fn check_period(period: &PricePeriod) -> Result<(), Finding> {
    let positions = period
        .points
        .iter()
        .enumerate()
        .map(|(i, p)| (i, p.position));
    check_position_range(".Point", positions.clone())?;
    check_unique(".Point", positions)
}

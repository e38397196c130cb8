//! What the scenario *is*, independent of how it was delivered: the final quantities per
//! metering point and day (after corrections), master data, charges with every price
//! point, charge links, spot prices, and the messages enqueued.
//!
//! The end-to-end settlement test computes expected invoices from this with the pure
//! settlement crate, so everything here is plain data, reproducible from the seed, and
//! served as JSON on `GET /admin/ground-truth`.

use afregning_cim::codes::{ChargeKind, MeteringPointType, Quality, SettlementMethod};
use afregning_cim::{DocumentKind, Gsrn, Resolution};
use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::Serialize;

use crate::faults::InjectedFault;
use crate::queues::Queue;
use crate::scenario::profiles::Profile;
use crate::spot_prices::SpotPrice;

/// Everything the scenario contains.
#[derive(Debug, Clone, Serialize)]
pub struct GroundTruth {
    /// The seed everything was generated from.
    pub seed: u64,
    /// Our GLN (the receiver of every document).
    pub supplier_gln: String,
    /// First local day with metered data.
    pub first_day: NaiveDate,
    /// Number of local days.
    pub days: u32,
    /// The metering points we supply.
    pub metering_points: Vec<MeteringPointTruth>,
    /// Final quantities per metering point and local day, sorted by GSRN and day.
    pub readings: Vec<DayReading>,
    /// Every charge with its price points over the scenario's months.
    pub charges: Vec<ChargeTruth>,
    /// Charge links.
    pub links: Vec<LinkTruth>,
    /// Day-ahead spot prices of DK1 and DK2 over the scenario's days, real or synthetic.
    pub spot_prices: Vec<SpotPrice>,
    /// The messages enqueued when the simulator started (answers to requests and
    /// redeliveries come later; the event log has them).
    pub messages: Vec<MessageTruth>,
}

/// A metering point's master data, as sent in RSM-022.
#[derive(Debug, Clone, Serialize)]
pub struct MeteringPointTruth {
    /// GSRN (valid GS1 check digit).
    pub gsrn: Gsrn,
    /// Three-digit grid area code.
    pub grid_area: String,
    /// DK1 or DK2.
    pub price_area: String,
    /// The grid company's GLN.
    pub grid_owner_gln: String,
    /// E17 consumption.
    pub metering_point_type: MeteringPointType,
    /// E02 non-profiled or D01 flex.
    pub settlement_method: SettlementMethod,
    /// PT15M or PT1H.
    pub resolution: Resolution,
    /// Household or business.
    pub profile: Profile,
    /// Start of our supply (and of the charge links), UTC of a local midnight.
    pub supply_start: DateTime<Utc>,
}

/// One point of a day's final series.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TruthPoint {
    /// 1-based position.
    pub position: u32,
    /// kWh with 3 decimals; `None` where DataHub has no value (quality A02).
    pub quantity: Option<Decimal>,
    /// Quality of the final value.
    pub quality: Quality,
}

/// The final series of one metering point for one local day.
#[derive(Debug, Clone, Serialize)]
pub struct DayReading {
    /// The metering point.
    pub gsrn: Gsrn,
    /// The local day.
    pub day: NaiveDate,
    /// PT15M or PT1H.
    pub resolution: Resolution,
    /// UTC start (local midnight).
    pub start: DateTime<Utc>,
    /// UTC end, exclusive (next local midnight): 23, 24 or 25 hours.
    pub end: DateTime<Utc>,
    /// Every position of the day, in order.
    pub points: Vec<TruthPoint>,
    /// How many series DataHub sent for the day (2 when corrected).
    pub versions: u32,
    /// Whether the first series came late (after the other days).
    pub late: bool,
    /// Registration time of the final series.
    pub registered: DateTime<Utc>,
    /// MessageIds of the bundles that carried this day's series, oldest first.
    pub message_ids: Vec<String>,
}

impl DayReading {
    /// Sum of the known quantities (kWh).
    pub fn total_kwh(&self) -> Decimal {
        self.points.iter().filter_map(|p| p.quantity).sum()
    }
}

/// A price point of a charge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PricePointTruth {
    /// UTC start of the charge time (hour, local day or local month).
    pub time: DateTime<Utc>,
    /// DKK per kWh (tariffs) or per month (subscriptions), excluding VAT.
    pub price: Decimal,
}

/// A charge with its price points.
#[derive(Debug, Clone, Serialize)]
pub struct ChargeTruth {
    /// Owner GLN.
    pub owner_gln: String,
    /// Subscription, fee or tariff.
    pub kind: ChargeKind,
    /// Charge code.
    pub code: String,
    /// Name.
    pub name: String,
    /// PT1H, P1D or P1M.
    pub resolution: Resolution,
    /// Elafgift.
    pub tax: bool,
    /// VAT class D02 (25 %) for every charge here.
    pub vat_class: String,
    /// Start of the published price information.
    pub valid_from: DateTime<Utc>,
    /// End of the published prices (exclusive).
    pub valid_to: DateTime<Utc>,
    /// Every price point in `[valid_from, valid_to)`.
    pub prices: Vec<PricePointTruth>,
    /// Where the rates come from (primary EDS rows or secondary figures).
    pub source: String,
}

/// A charge link.
#[derive(Debug, Clone, Serialize)]
pub struct LinkTruth {
    /// The metering point.
    pub gsrn: Gsrn,
    /// Charge owner.
    pub owner_gln: String,
    /// Charge kind.
    pub kind: ChargeKind,
    /// Charge code.
    pub code: String,
    /// Factor (pieces for subscriptions), 1 here.
    pub factor: u32,
    /// Link start.
    pub valid_from: DateTime<Utc>,
    /// Link end, exclusive (open-ended here).
    pub valid_to: Option<DateTime<Utc>>,
}

/// A message the simulator enqueued at start.
#[derive(Debug, Clone, Serialize)]
pub struct MessageTruth {
    /// DataHub MessageId (also the document's `mRID`).
    pub message_id: String,
    /// The queue.
    pub queue: Queue,
    /// The document type (`None` for an injected message that is not a document).
    pub kind: Option<DocumentKind>,
    /// Number of top-level transactions (series or activity records).
    pub transactions: usize,
    /// Size of the body.
    pub bytes: usize,
    /// An injected fault, when the message is one.
    pub fault: Option<InjectedFault>,
}

impl GroundTruth {
    /// The master data of a metering point.
    pub fn metering_point(&self, gsrn: Gsrn) -> Option<&MeteringPointTruth> {
        self.metering_points.iter().find(|m| m.gsrn == gsrn)
    }

    /// The final series of a metering point on a local day.
    pub fn reading(&self, gsrn: Gsrn, day: NaiveDate) -> Option<&DayReading> {
        self.readings
            .binary_search_by(|r| (r.gsrn, r.day).cmp(&(gsrn, day)))
            .ok()
            .and_then(|i| self.readings.get(i))
    }

    /// The charges linked to a metering point.
    pub fn links_of(&self, gsrn: Gsrn) -> impl Iterator<Item = &LinkTruth> {
        self.links.iter().filter(move |l| l.gsrn == gsrn)
    }

    /// A charge by owner, kind and code.
    pub fn charge(&self, owner_gln: &str, kind: ChargeKind, code: &str) -> Option<&ChargeTruth> {
        self.charges
            .iter()
            .find(|c| c.owner_gln == owner_gln && c.kind == kind && c.code == code)
    }

    /// The spot prices of a bidding zone in `[from, to)`.
    pub fn spot_prices_in(
        &self,
        price_area: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> impl Iterator<Item = &SpotPrice> {
        let area = price_area.to_string();
        self.spot_prices
            .iter()
            .filter(move |p| p.price_area == area && p.start >= from && p.start < to)
    }
}

//! What the engine is given for one metering point and one billing period.
//!
//! Plain data with serde, so that the settle processor can keep it in its
//! state store and replay it; the engine never reads anything else.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::calendar::BillingPeriod;
use crate::charges::{Charge, ChargeKey, ChargeLink};
use crate::product::ProductTerm;
use crate::quantity::{Position, SupplyPeriod};
use crate::spot::{PriceArea, SpotPrice};

/// The metering point being settled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeteringPoint {
    /// GSRN (18 digits).
    pub id: String,
    /// Grid area code (three digits in DataHub).
    pub grid_area: String,
    /// Bidding zone whose spot prices apply.
    pub price_area: PriceArea,
}

/// Which components a statement contains.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Everything on the customer's invoice: spot, supplier margin and
    /// subscription, and every linked DataHub charge.
    #[default]
    Full,
    /// Only the linked DataHub charges; used to reproduce Energinet's wholesale
    /// calculation, which knows nothing of spot prices and supplier products.
    DataHubCharges,
}

/// Everything needed to settle one metering point for one billing period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MonthInput {
    /// The metering point.
    pub metering_point: MeteringPoint,
    /// The billing period, normally a calendar month.
    pub period: BillingPeriod,
    /// Where in the period the metering point is supplied, and at what resolution.
    pub supply: Vec<SupplyPeriod>,
    /// Every received position (all versions may be given; the latest wins).
    pub positions: Vec<Position>,
    /// The metering point's charge links.
    pub charge_links: Vec<ChargeLink>,
    /// The linked charges with their prices.
    pub charges: Vec<Charge>,
    /// Spot prices of the metering point's price area.
    pub spot_prices: Vec<SpotPrice>,
    /// Product terms within the period (from [`crate::ProductCatalogue::terms_for`]).
    pub product: Vec<ProductTerm>,
    /// Which components to compute.
    #[serde(default)]
    pub scope: Scope,
}

/// Inputs that cannot be settled because their meaning is ambiguous.
///
/// Missing data is never an error: it is carried in the statement. These are
/// contradictions the engine must not resolve by guessing.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum InputError {
    /// Two positions for the same start and version with different content.
    #[error("two different positions for {start} with the same version {version}")]
    ConflictingPositions {
        /// Position start.
        start: DateTime<Utc>,
        /// Their shared version.
        version: u64,
    },
    /// Two supply periods overlap.
    #[error("supply periods overlap at {from}")]
    OverlappingSupplyPeriods {
        /// Start of the later period.
        from: DateTime<Utc>,
    },
    /// A supply period does not start or end on its resolution's grid.
    #[error("supply period starting {from} is not aligned to its resolution")]
    MisalignedSupplyPeriod {
        /// Start of the period.
        from: DateTime<Utc>,
    },
    /// The same charge key appears twice with different data.
    #[error("charge {0} is given twice with different data")]
    DuplicateCharge(ChargeKey),
    /// Two different prices for the same charge and time.
    #[error("charge {key} has two different prices at {time}")]
    ConflictingChargePrices {
        /// The charge.
        key: ChargeKey,
        /// The time with two prices.
        time: DateTime<Utc>,
    },
    /// Two links of the same charge overlap in time.
    #[error("charge {key} is linked twice at {from}")]
    OverlappingChargeLinks {
        /// The charge.
        key: ChargeKey,
        /// Start of the later link.
        from: DateTime<Utc>,
    },
    /// A charge's type and resolution do not fit (a tariff priced per month, a subscription per hour).
    #[error("charge {key} has resolution {resolution} which its type does not allow")]
    UnsupportedResolution {
        /// The charge.
        key: ChargeKey,
        /// Its resolution.
        resolution: &'static str,
    },
    /// Two different spot prices for the same MTU.
    #[error("two different spot prices for the MTU starting {start}")]
    ConflictingSpotPrices {
        /// The MTU start.
        start: DateTime<Utc>,
    },
    /// Product terms overlap.
    #[error("product terms overlap at {from}")]
    OverlappingProductTerms {
        /// Start of the later term.
        from: DateTime<Utc>,
    },
}

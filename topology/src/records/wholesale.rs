//! DataHub's own calculation results, for reconciliation.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use super::{ChargeType, Quality, Resolution, WholesaleResultKind, avro_fields, avro_record};

avro_fields! {
    /// One position of a result series.
    pub struct WholesaleResultPoint {
        /// 1-based position.
        pub position: i32 => put,
        /// kWh or pieces, 3 decimals.
        pub quantity: Option<Decimal> => opt,
        /// DKK per unit.
        pub price: Option<Decimal> => opt,
        /// DKK.
        pub amount: Option<Decimal> => opt,
        /// Quality, when given.
        pub quality: Option<Quality> => opt,
    }
}

avro_fields! {
    /// One series of an RSM-014 or RSM-019 document.
    pub struct WholesaleResult {
        /// Which document.
        pub kind: WholesaleResultKind => put,
        /// D03, D04, D05 or D32.
        pub business_reason: String => put,
        /// DataHub's calculation version.
        pub calculation_version: Option<String> => opt,
        /// Correction round (D01-D03).
        pub settlement_version: Option<String> => opt,
        /// Grid area code: the partitioning key.
        pub grid_area: String => put,
        /// Energy supplier GLN.
        pub energy_supplier_gln: Option<String> => opt,
        /// Balance responsible GLN.
        pub balance_responsible_gln: Option<String> => opt,
        /// Metering point type aggregated.
        pub metering_point_type: Option<String> => opt,
        /// Settlement method aggregated.
        pub settlement_method: Option<String> => opt,
        /// Charge owner, per charge.
        pub charge_owner_gln: Option<String> => opt,
        /// Charge type, per charge.
        pub charge_type: Option<ChargeType> => opt,
        /// Charge code, per charge.
        pub charge_code: Option<String> => opt,
        /// KWH or H87.
        pub unit: String => put,
        /// DKK, for wholesale services.
        pub currency: Option<String> => opt,
        /// Length of one position.
        pub resolution: Resolution => put,
        /// Start of the period.
        pub period_start: DateTime<Utc> => put,
        /// End of the period, exclusive.
        pub period_end: DateTime<Utc> => put,
        /// The positions.
        pub points: Vec<WholesaleResultPoint> => records,
        /// DataHub MessageId of the source document.
        pub source_message_id: String => put,
        /// Series mRID.
        pub transaction_id: String => put,
    }
}
avro_record!(WholesaleResult => WholesaleResult, grid_area: grid_area);

//! DataHub's own calculation results, for reconciliation.

use chrono::{DateTime, NaiveDate, Utc};
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

avro_fields! {
    /// One difference between DataHub's run in force and our settlement (see
    /// `docs/reconciliation.md`): an operator resolves it from these fields alone.
    pub struct Discrepancy {
        /// 0-based number within the reconciliation (its sort order).
        pub seq: i32 => put,
        /// ENERGY, AMOUNT_PER_CHARGE, MONTHLY_AMOUNT_PER_CHARGE, TOTAL_PER_OWNER, SUPPLIER_TOTAL.
        pub level: String => put,
        /// QUANTITY, PRICE or AMOUNT.
        pub measure: String => put,
        /// Charge owner (charge levels and owner totals).
        pub charge_owner_gln: Option<String> => opt,
        /// Charge code.
        pub charge_code: Option<String> => opt,
        /// Charge type D01-D03.
        pub charge_type: Option<String> => opt,
        /// PT15M, PT1H, P1D, or P1M for monthly levels.
        pub resolution: String => put,
        /// Metering point type (position levels).
        pub metering_point_type: Option<String> => opt,
        /// Settlement method (position levels).
        pub settlement_method: Option<String> => opt,
        /// UTC start of the position (the month's start for monthly levels).
        pub time: DateTime<Utc> => put,
        /// DataHub's value.
        pub datahub: Option<Decimal> => opt,
        /// Ours.
        pub ours: Option<Decimal> => opt,
        /// DataHub's minus ours, a missing value as zero.
        pub difference: Decimal => put,
        /// Our metering points behind our value, sorted, space-separated.
        pub metering_points: String => put,
        /// The DataHub run compared with (`D05 v1`, `D32-D01 v2`).
        pub calculation: Option<String> => opt,
    }
}

avro_fields! {
    /// One part of one reconciliation of a grid area's month: its discrepancies in sort
    /// order, cut into parts so a record stays small; no discrepancy is one empty part.
    pub struct Reconciliation {
        /// Grid area code: the partitioning key.
        pub grid_area: String => put,
        /// First day of the Danish calendar month.
        pub month_start: NaiveDate => put,
        /// Our GLN.
        pub energy_supplier_gln: String => put,
        /// The grid company whose total carries the tax charges, when known.
        pub grid_area_owner_gln: Option<String> => opt,
        /// Version, +1 whenever the outcome changes.
        pub version: i64 => put,
        /// 0-based part number.
        pub part: i32 => put,
        /// Parts of this version.
        pub parts: i32 => put,
        /// Discrepancies of this version over all parts.
        pub discrepancy_count: i32 => put,
        /// The DataHub runs in force compared, comma-separated.
        pub calculations: String => put,
        /// When made.
        pub computed_at: DateTime<Utc> => put,
        /// This part's discrepancies.
        pub discrepancies: Vec<Discrepancy> => records,
    }
}
avro_record!(Reconciliation => Reconciliation, grid_area: grid_area);

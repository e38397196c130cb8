//! Market data: day-ahead spot prices.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use super::{Resolution, avro_fields, avro_record};

avro_fields! {
    /// Day-ahead spot price of one bidding zone for one market time unit.
    pub struct SpotPrice {
        /// Bidding zone, DK1 or DK2.
        pub price_area: String => put,
        /// Start of the market time unit.
        pub start: DateTime<Utc> => put,
        /// End of the market time unit, exclusive.
        pub end: DateTime<Utc> => put,
        /// PT15M since October 2025, PT1H before.
        pub resolution: Resolution => put,
        /// DKK per MWh, excluding VAT.
        pub price_dkk_per_mwh: Decimal => put,
        /// EUR per MWh, when the source gives it.
        pub price_eur_per_mwh: Option<Decimal> => opt,
        /// Where the price came from.
        pub source: String => put,
        /// When fetched or imported.
        pub fetched_at: DateTime<Utc> => put,
    }
}
avro_record!(SpotPrice => SpotPrice; direct);

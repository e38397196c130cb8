//! Charges: information, prices and links to metering points.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use super::{ChargeType, Resolution, VatClass, avro_fields, avro_record};

avro_fields! {
    /// Information about one charge for one validity period (RSM-034, D18).
    pub struct Charge {
        /// Charge owner GLN.
        pub owner_gln: String => put,
        /// Charge type.
        pub charge_type: ChargeType => put,
        /// Charge code.
        pub charge_code: String => put,
        /// Name as published.
        pub name: Option<String> => opt,
        /// Resolution of the charge's prices.
        pub resolution: Resolution => put,
        /// True for taxes (elafgift).
        pub tax_indicator: bool => put,
        /// Whether VAT is added.
        pub vat_class: VatClass => put,
        /// Whether the charge is its own line on the bill.
        pub transparent_invoicing: bool => put,
        /// Start of validity.
        pub valid_from: DateTime<Utc> => put,
        /// End of validity, exclusive.
        pub valid_to: Option<DateTime<Utc>> => opt,
        /// DataHub MessageId of the source document.
        pub source_message_id: String => put,
    }
}
avro_record!(Charge => Charge);

avro_fields! {
    /// One price of a charge price series.
    pub struct ChargePricePoint {
        /// 1-based position.
        pub position: i32 => put,
        /// DKK per unit excluding VAT, 6 decimals.
        pub price: Decimal => put,
    }
}

avro_fields! {
    /// The prices of one charge for one period (RSM-034, D08).
    pub struct ChargePrice {
        /// Charge owner GLN.
        pub owner_gln: String => put,
        /// Charge type.
        pub charge_type: ChargeType => put,
        /// Charge code.
        pub charge_code: String => put,
        /// Length of one position.
        pub resolution: Resolution => put,
        /// Start of the period.
        pub period_start: DateTime<Utc> => put,
        /// End of the period, exclusive.
        pub period_end: DateTime<Utc> => put,
        /// The prices.
        pub points: Vec<ChargePricePoint> => records,
        /// DataHub MessageId of the source document.
        pub source_message_id: String => put,
    }
}
avro_record!(ChargePrice => ChargePrice; direct);

avro_fields! {
    /// A link between a metering point and a charge (RSM-031).
    pub struct ChargeLink {
        /// GSRN of the linked metering point.
        pub gsrn: String => put,
        /// Charge owner GLN.
        pub owner_gln: String => put,
        /// Charge type.
        pub charge_type: ChargeType => put,
        /// Charge code.
        pub charge_code: String => put,
        /// Factor, normally 1.
        pub quantity: i32 => put,
        /// Start of the link.
        pub valid_from: DateTime<Utc> => put,
        /// End of the link, exclusive.
        pub valid_to: Option<DateTime<Utc>> => opt,
        /// DataHub MessageId of the source document.
        pub source_message_id: String => put,
    }
}
avro_record!(ChargeLink => ChargeLink; direct);

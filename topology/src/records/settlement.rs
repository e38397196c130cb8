//! Settlement: provisional lines and final statements.

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;

use super::{ChargeType, SettlementComponent, StatementKind, VatClass, avro_fields, avro_record};

avro_fields! {
    /// One line of a settlement.
    pub struct SettlementLine {
        /// Which part of the bill.
        pub component: SettlementComponent => put,
        /// Text for the line.
        pub description: String => put,
        /// Owner of the settled DataHub charge.
        pub charge_owner_gln: Option<String> => opt,
        /// Type of the settled DataHub charge.
        pub charge_type: Option<ChargeType> => opt,
        /// Code of the settled DataHub charge.
        pub charge_code: Option<String> => opt,
        /// Quantity, 6 decimals.
        pub quantity: Decimal => put,
        /// KWH, MONTH, PIECE or DKK.
        pub quantity_unit: String => put,
        /// DKK per unit excluding VAT, 6 decimals.
        pub unit_price: Decimal => put,
        /// DKK, 6 decimals.
        pub amount: Decimal => put,
        /// Whether VAT applies.
        pub vat_class: VatClass => put,
        /// Version of the month's settlement.
        pub version: i64 => put,
        /// Stable id of the line in this version.
        pub idempotency_key: String => put,
    }
}

avro_fields! {
    /// The provisional settlement of one metering point for one month so far.
    pub struct ProvisionalSettlement {
        /// GSRN.
        pub gsrn: String => put,
        /// First day of the Danish calendar month.
        pub month_start: NaiveDate => put,
        /// Grid area code: the partitioning key.
        pub grid_area: String => put,
        /// Energy supplier in the month.
        pub energy_supplier_gln: Option<String> => opt,
        /// Version, +1 on every input change.
        pub version: i64 => put,
        /// All lines of this version.
        pub lines: Vec<SettlementLine> => records,
        /// Sum excluding VAT, DKK.
        pub total_excl_vat: Decimal => put,
        /// VAT, DKK.
        pub vat_amount: Decimal => put,
        /// Sum including VAT, DKK.
        pub total_incl_vat: Decimal => put,
        /// Days with complete data.
        pub days_settled: i32 => put,
        /// Days in the month.
        pub days_in_month: i32 => put,
        /// Stable id of this version.
        pub idempotency_key: String => put,
        /// When computed.
        pub computed_at: DateTime<Utc> => put,
    }
}
avro_record!(ProvisionalSettlement => ProvisionalSettlement, grid_area: grid_area; direct);

avro_fields! {
    /// A final statement (or credit note) for the ERP.
    pub struct SettlementStatement {
        /// Unique id of the statement.
        pub statement_id: String => put,
        /// Statement or credit note.
        pub kind: StatementKind => put,
        /// The statement this one reverses or replaces.
        pub corrects_statement_id: Option<String> => opt,
        /// GSRN.
        pub gsrn: String => put,
        /// First day of the Danish calendar month.
        pub month_start: NaiveDate => put,
        /// Grid area code: the partitioning key.
        pub grid_area: String => put,
        /// Energy supplier in the month.
        pub energy_supplier_gln: Option<String> => opt,
        /// Version for this metering point and month.
        pub version: i64 => put,
        /// The lines.
        pub lines: Vec<SettlementLine> => records,
        /// Sum excluding VAT, DKK.
        pub total_excl_vat: Decimal => put,
        /// VAT, DKK.
        pub vat_amount: Decimal => put,
        /// Sum including VAT, DKK.
        pub total_incl_vat: Decimal => put,
        /// DKK.
        pub currency: String => put,
        /// Stable id the ERP books once.
        pub idempotency_key: String => put,
        /// When issued.
        pub issued_at: DateTime<Utc> => put,
    }
}
avro_record!(SettlementStatement => SettlementStatement, grid_area: grid_area);

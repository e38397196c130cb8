//! Metering: readings, metering point master data, enriched readings and daily aggregates.

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;

use super::{Quality, Resolution, SettlementMethod, avro_fields, avro_record};

avro_fields! {
    /// One position of a reading.
    pub struct ReadingPoint {
        /// 1-based position within the period.
        pub position: i32 => put,
        /// kWh with 3 decimals; `None` when DataHub sent no quantity.
        pub quantity: Option<Decimal> => opt,
        /// Quality; A04 when DataHub left it out.
        pub quality: Quality => put,
    }
}

avro_fields! {
    /// Validated metered data of one metering point for one series period.
    pub struct Reading {
        /// GSRN.
        pub gsrn: String => put,
        /// DataHub metering point type code (E17, E18, E20, D01-D99).
        pub metering_point_type: String => put,
        /// Length of one position.
        pub resolution: Resolution => put,
        /// Start of the period, inclusive.
        pub period_start: DateTime<Utc> => put,
        /// End of the period, exclusive.
        pub period_end: DateTime<Utc> => put,
        /// When the grid company registered the values; later replaces earlier.
        pub registered_at: DateTime<Utc> => put,
        /// Unit of the quantities, normally KWH.
        pub unit: String => put,
        /// Product code, when DataHub gives it.
        pub product: Option<String> => opt,
        /// Business reason of the document (E23, D32, ...).
        pub business_reason: Option<String> => opt,
        /// DataHub MessageId of the source document.
        pub source_message_id: String => put,
        /// Series mRID in the source document.
        pub transaction_id: String => put,
        /// The positions, in order; gaps allowed.
        pub points: Vec<ReadingPoint> => records,
    }
}
avro_record!(Reading => Reading; direct);

avro_fields! {
    /// Master data of one metering point for one validity period (RSM-022).
    pub struct MeteringPoint {
        /// GSRN.
        pub gsrn: String => put,
        /// DataHub metering point type code.
        pub metering_point_type: String => put,
        /// Settlement method, for consumption metering points.
        pub settlement_method: Option<SettlementMethod> => opt,
        /// Grid area code (3 digits).
        pub grid_area: String => put,
        /// Bidding zone, when known.
        pub price_area: Option<String> => opt,
        /// Metered data resolution.
        pub resolution: Resolution => put,
        /// Energy supplier GLN in this period.
        pub energy_supplier_gln: Option<String> => opt,
        /// Start of our supply.
        pub supply_start: Option<DateTime<Utc>> => opt,
        /// End of our supply, exclusive.
        pub supply_end: Option<DateTime<Utc>> => opt,
        /// DataHub connection state code.
        pub connection_state: Option<String> => opt,
        /// Start of validity.
        pub valid_from: DateTime<Utc> => put,
        /// End of validity, exclusive.
        pub valid_to: Option<DateTime<Utc>> => opt,
        /// DataHub MessageId of the source document.
        pub source_message_id: String => put,
    }
}
avro_record!(MeteringPoint => MeteringPoint, grid_area: grid_area);

avro_fields! {
    /// A reading joined with the master data valid for its period.
    pub struct EnrichedReading {
        /// The reading as validated.
        pub reading: Reading => record,
        /// Grid area code in the reading's period: the partitioning key.
        pub grid_area: String => put,
        /// Bidding zone, when known.
        pub price_area: Option<String> => opt,
        /// Settlement method in the reading's period.
        pub settlement_method: Option<SettlementMethod> => opt,
        /// Energy supplier in the reading's period.
        pub energy_supplier_gln: Option<String> => opt,
        /// `valid_from` of the master data version joined.
        pub master_data_valid_from: DateTime<Utc> => put,
    }
}
avro_record!(EnrichedReading => EnrichedReading, grid_area: grid_area; direct);

avro_fields! {
    /// Energy of one clock hour.
    pub struct HourlyEnergy {
        /// Start of the hour (UTC).
        pub hour_start: DateTime<Utc> => put,
        /// kWh, 3 decimals.
        pub kwh: Decimal => put,
        /// Positions received for the hour.
        pub positions: i32 => put,
        /// Spot price of the hour in DKK/kWh, when known.
        pub spot_price_dkk_per_kwh: Option<Decimal> => opt,
    }
}

avro_fields! {
    /// Energy in one tariff period (time band) of a day.
    pub struct TariffPeriodEnergy {
        /// Name of the band (low, high, peak).
        pub tariff_period: String => put,
        /// kWh, 3 decimals.
        pub kwh: Decimal => put,
    }
}

avro_fields! {
    /// How many positions of a day had one quality.
    pub struct QualityCount {
        /// The quality.
        pub quality: Quality => put,
        /// Positions with it.
        pub positions: i32 => put,
    }
}

avro_fields! {
    /// One metering point's consumption for one Danish calendar day.
    pub struct DailyAggregate {
        /// GSRN.
        pub gsrn: String => put,
        /// The Danish calendar day.
        pub local_date: NaiveDate => put,
        /// Start of the local day in UTC.
        pub day_start: DateTime<Utc> => put,
        /// End of the local day in UTC, exclusive.
        pub day_end: DateTime<Utc> => put,
        /// Grid area code: the partitioning key.
        pub grid_area: String => put,
        /// Bidding zone, when known.
        pub price_area: Option<String> => opt,
        /// Resolution of the underlying readings.
        pub resolution: Resolution => put,
        /// Energy per hour.
        pub hours: Vec<HourlyEnergy> => records,
        /// Energy per tariff period.
        pub tariff_periods: Vec<TariffPeriodEnergy> => records,
        /// Energy of the day.
        pub total_kwh: Decimal => put,
        /// Spot cost of the day in DKK, when all prices are known.
        pub spot_cost_dkk: Option<Decimal> => opt,
        /// Positions of a complete day (92/96/100 at PT15M).
        pub expected_positions: i32 => put,
        /// Positions received with a quantity.
        pub received_positions: i32 => put,
        /// Whether the day is complete.
        pub complete: bool => put,
        /// Positions per quality.
        pub quality_counts: Vec<QualityCount> => records,
        /// Version of this day's aggregate.
        pub version: i64 => put,
        /// When computed.
        pub computed_at: DateTime<Utc> => put,
    }
}
avro_record!(DailyAggregate => DailyAggregate, grid_area: grid_area; direct);

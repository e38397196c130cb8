//! Keys. Each says what its topic is routed by (see [`TopicKey`]).

use std::borrow::Cow;

use chrono::{DateTime, NaiveDate, Utc};

use super::{ChargeType, TopicKey, avro_fields, avro_record};

/// The routing key shared by a charge's information and prices, so both land
/// on the same partition: `<owner GLN>:<type code>:<charge code>`.
pub fn charge_routing_key(owner_gln: &str, charge_type: ChargeType, charge_code: &str) -> String {
    format!("{owner_gln}:{}:{charge_code}", charge_type.code())
}

avro_fields! {
    /// Key of the raw DataHub topics: the MessageId, and the series when the
    /// connector split a bundle. Routed by the MessageId.
    pub struct DataHubMessageKey {
        /// DataHub MessageId of the peeked bundle.
        pub message_id: String => put,
        /// Series (transaction) mRID when the bundle was split per series.
        pub series_id: Option<String> => opt,
    }
}
avro_record!(DataHubMessageKey => DataHubMessageKey);
impl TopicKey for DataHubMessageKey {
    fn routing_key(&self) -> Cow<'_, str> {
        Cow::Borrowed(&self.message_id)
    }
}

avro_fields! {
    /// Key of readings and enriched readings: the metering point.
    pub struct MeteringPointKey {
        /// GSRN, 18 digits.
        pub gsrn: String => put,
    }
}
avro_record!(MeteringPointKey => MeteringPointKey; direct);
impl TopicKey for MeteringPointKey {
    fn routing_key(&self) -> Cow<'_, str> {
        Cow::Borrowed(&self.gsrn)
    }
}

avro_fields! {
    /// Key of the metering point table: one validity period. Routed by GSRN so
    /// it is co-partitioned with readings.
    pub struct MeteringPointPeriodKey {
        /// GSRN, 18 digits.
        pub gsrn: String => put,
        /// Start of validity of this master data version.
        pub valid_from: DateTime<Utc> => put,
    }
}
avro_record!(MeteringPointPeriodKey => MeteringPointPeriodKey);
impl TopicKey for MeteringPointPeriodKey {
    fn routing_key(&self) -> Cow<'_, str> {
        Cow::Borrowed(&self.gsrn)
    }
}

avro_fields! {
    /// Key of the charge information table: one validity period of a charge.
    pub struct ChargePeriodKey {
        /// Charge owner GLN.
        pub owner_gln: String => put,
        /// Charge type.
        pub charge_type: ChargeType => put,
        /// Charge code.
        pub charge_code: String => put,
        /// Start of validity.
        pub valid_from: DateTime<Utc> => put,
    }
}
avro_record!(ChargePeriodKey => ChargePeriodKey);
impl TopicKey for ChargePeriodKey {
    fn routing_key(&self) -> Cow<'_, str> {
        Cow::Owned(charge_routing_key(
            &self.owner_gln,
            self.charge_type,
            &self.charge_code,
        ))
    }
}

avro_fields! {
    /// Key of the charge price table: one charge's prices for one period.
    pub struct ChargePriceKey {
        /// Charge owner GLN.
        pub owner_gln: String => put,
        /// Charge type.
        pub charge_type: ChargeType => put,
        /// Charge code.
        pub charge_code: String => put,
        /// Start of the price series period.
        pub period_start: DateTime<Utc> => put,
    }
}
avro_record!(ChargePriceKey => ChargePriceKey; direct);
impl TopicKey for ChargePriceKey {
    fn routing_key(&self) -> Cow<'_, str> {
        Cow::Owned(charge_routing_key(
            &self.owner_gln,
            self.charge_type,
            &self.charge_code,
        ))
    }
}

avro_fields! {
    /// Key of the charge link table. Routed by GSRN, co-partitioned with readings.
    pub struct ChargeLinkKey {
        /// GSRN of the linked metering point.
        pub gsrn: String => put,
        /// Charge owner GLN.
        pub owner_gln: String => put,
        /// Charge type.
        pub charge_type: ChargeType => put,
        /// Charge code.
        pub charge_code: String => put,
        /// Start of the link.
        pub valid_from: DateTime<Utc> => put,
    }
}
avro_record!(ChargeLinkKey => ChargeLinkKey; direct);
impl TopicKey for ChargeLinkKey {
    fn routing_key(&self) -> Cow<'_, str> {
        Cow::Borrowed(&self.gsrn)
    }
}

avro_fields! {
    /// Key of the spot price table.
    pub struct SpotPriceKey {
        /// Bidding zone, DK1 or DK2.
        pub price_area: String => put,
        /// Start of the market time unit.
        pub start: DateTime<Utc> => put,
    }
}
avro_record!(SpotPriceKey => SpotPriceKey; direct);
impl TopicKey for SpotPriceKey {
    fn routing_key(&self) -> Cow<'_, str> {
        Cow::Borrowed(&self.price_area)
    }
}

avro_fields! {
    /// Key of a wholesale result series.
    pub struct WholesaleResultKey {
        /// Grid area code.
        pub grid_area: String => put,
        /// Series mRID.
        pub transaction_id: String => put,
    }
}
avro_record!(WholesaleResultKey => WholesaleResultKey);
impl TopicKey for WholesaleResultKey {
    fn routing_key(&self) -> Cow<'_, str> {
        Cow::Borrowed(&self.grid_area)
    }
}

avro_fields! {
    /// Key of a reconciliation: the grid area and month reconciled, so every version of a
    /// month's reconciliation stays in order on one partition.
    pub struct ReconciliationKey {
        /// Grid area code.
        pub grid_area: String => put,
        /// First day of the Danish calendar month.
        pub month_start: NaiveDate => put,
    }
}
avro_record!(ReconciliationKey => ReconciliationKey);
impl TopicKey for ReconciliationKey {
    fn routing_key(&self) -> Cow<'_, str> {
        Cow::Borrowed(&self.grid_area)
    }
}

avro_fields! {
    /// Key of a daily aggregate: metering point and local day.
    pub struct DailyAggregateKey {
        /// GSRN.
        pub gsrn: String => put,
        /// The Danish calendar day.
        pub local_date: NaiveDate => put,
    }
}
avro_record!(DailyAggregateKey => DailyAggregateKey; direct);
impl TopicKey for DailyAggregateKey {
    fn routing_key(&self) -> Cow<'_, str> {
        Cow::Borrowed(&self.gsrn)
    }
}

avro_fields! {
    /// Key of a metering point's settlement for one local month.
    pub struct SettlementMonthKey {
        /// GSRN.
        pub gsrn: String => put,
        /// First day of the Danish calendar month.
        pub month_start: NaiveDate => put,
    }
}
avro_record!(SettlementMonthKey => SettlementMonthKey; direct);
impl TopicKey for SettlementMonthKey {
    fn routing_key(&self) -> Cow<'_, str> {
        Cow::Borrowed(&self.gsrn)
    }
}

avro_fields! {
    /// Key of a dead letter: where the failed record was.
    pub struct DeadLetterKey {
        /// Source topic.
        pub source_topic: String => put,
        /// Source partition.
        pub source_partition: i32 => put,
        /// Source offset.
        pub source_offset: i64 => put,
    }
}
avro_record!(DeadLetterKey => DeadLetterKey);
impl TopicKey for DeadLetterKey {
    /// Source topic and partition, so the dead letters of one source partition
    /// stay in order.
    fn routing_key(&self) -> Cow<'_, str> {
        Cow::Owned(format!("{}/{}", self.source_topic, self.source_partition))
    }
}

avro_fields! {
    /// Key of outbound requests and their responses.
    pub struct OutboundRequestKey {
        /// The request's id.
        pub request_id: String => put,
    }
}
avro_record!(OutboundRequestKey => OutboundRequestKey);
impl TopicKey for OutboundRequestKey {
    fn routing_key(&self) -> Cow<'_, str> {
        Cow::Borrowed(&self.request_id)
    }
}

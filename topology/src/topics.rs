//! Typed handles for the topics producers and consumers use: the only way code
//! outside this crate names a topic.
//!
//! A `Topic<K, V>` ties a catalogue entry to its key and value types, so the
//! compiler refuses to write a `Reading` to the charge links topic, and the
//! codec knows which schema and partitioner to use. Names come from the
//! [`Catalogue`] (with the deployment's prefix), never from a string literal.

use std::fmt;
use std::marker::PhantomData;

use crate::catalogue::{Catalogue, TopicId, TopicSpec};
use crate::records::*;

/// A topic with its key and value types.
pub struct Topic<K, V> {
    id: TopicId,
    types: PhantomData<fn() -> (K, V)>,
}

impl<K, V> Clone for Topic<K, V> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<K, V> Copy for Topic<K, V> {}

impl<K, V> fmt::Debug for Topic<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Topic({:?})", self.id)
    }
}

impl<K: TopicKey, V: TopicValue> Topic<K, V> {
    const fn new(id: TopicId) -> Self {
        Self {
            id,
            types: PhantomData,
        }
    }

    /// The catalogue id.
    pub fn id(self) -> TopicId {
        self.id
    }

    /// The deployed topic: name with prefix, partitions, subjects.
    pub fn spec(self, catalogue: &Catalogue) -> &TopicSpec {
        catalogue
            .spec(self.id)
            .expect("every typed topic is a fixed catalogue topic (checked by tests)")
    }

    /// The topic's full name in this deployment.
    pub fn name(self, catalogue: &Catalogue) -> &str {
        &self.spec(catalogue).name
    }
}

/// RSM-012 metered data as peeked (raw CIM JSON).
pub const TIMESERIES_RAW: Topic<DataHubMessageKey, CimJson> = Topic::new(TopicId::TimeseriesRaw);
/// RSM-014/019 as peeked (raw CIM JSON).
pub const AGGREGATIONS_RAW: Topic<DataHubMessageKey, CimJson> =
    Topic::new(TopicId::AggregationsRaw);
/// Master data documents as peeked (raw CIM JSON).
pub const MASTERDATA_RAW: Topic<DataHubMessageKey, CimJson> = Topic::new(TopicId::MasterdataRaw);
/// Charge documents as peeked (raw CIM JSON).
pub const CHARGES_RAW: Topic<DataHubMessageKey, CimJson> = Topic::new(TopicId::ChargesRaw);
/// Requests to DataHub.
pub const OUTBOUND_REQUESTS: Topic<OutboundRequestKey, OutboundRequest> =
    Topic::new(TopicId::OutboundRequests);
/// DataHub's answers.
pub const OUTBOUND_RESPONSES: Topic<OutboundRequestKey, OutboundResponse> =
    Topic::new(TopicId::OutboundResponses);
/// Day-ahead spot prices (table).
pub const SPOT_PRICES: Topic<SpotPriceKey, SpotPrice> = Topic::new(TopicId::SpotPrices);
/// Typed readings.
pub const READINGS: Topic<MeteringPointKey, Reading> = Topic::new(TopicId::Readings);
/// Metering point master data (table).
pub const METERING_POINTS: Topic<MeteringPointPeriodKey, MeteringPoint> =
    Topic::new(TopicId::MeteringPoints);
/// Charge information (table).
pub const CHARGES: Topic<ChargePeriodKey, Charge> = Topic::new(TopicId::Charges);
/// Charge prices (table).
pub const CHARGE_PRICES: Topic<ChargePriceKey, ChargePrice> = Topic::new(TopicId::ChargePrices);
/// Charge links (table).
pub const CHARGE_LINKS: Topic<ChargeLinkKey, ChargeLink> = Topic::new(TopicId::ChargeLinks);
/// DataHub's calculation results.
pub const WHOLESALE_RESULTS: Topic<WholesaleResultKey, WholesaleResult> =
    Topic::new(TopicId::WholesaleResults);
/// Readings with master data, by grid area.
pub const ENRICHED_READINGS: Topic<MeteringPointKey, EnrichedReading> =
    Topic::new(TopicId::EnrichedReadings);
/// Daily aggregates, by grid area.
pub const DAILY_AGGREGATES: Topic<DailyAggregateKey, DailyAggregate> =
    Topic::new(TopicId::DailyAggregates);
/// Provisional settlement lines, by grid area.
pub const PROVISIONAL_SETTLEMENTS: Topic<SettlementMonthKey, ProvisionalSettlement> =
    Topic::new(TopicId::ProvisionalSettlements);
/// Final statements for the ERP, by grid area.
pub const SETTLEMENT_STATEMENTS: Topic<SettlementMonthKey, SettlementStatement> =
    Topic::new(TopicId::SettlementStatements);
/// Reconciliations with DataHub's wholesale results, by grid area.
pub const DISCREPANCIES: Topic<ReconciliationKey, Reconciliation> =
    Topic::new(TopicId::Discrepancies);
/// Statements and credit notes as delivered to the ERP (written by the ERP sink only).
pub const ERP_STATEMENTS: Topic<SettlementMonthKey, SettlementStatement> =
    Topic::new(TopicId::ErpStatements);
/// Dead letters.
pub const DEAD_LETTERS: Topic<DeadLetterKey, DeadLetter> = Topic::new(TopicId::DeadLetters);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalogue::{KeyFormat, ValueFormat};

    fn check<K: TopicKey, V: TopicValue>(topic: Topic<K, V>, seen: &mut Vec<TopicId>) {
        let catalogue = Catalogue::default_settings();
        let spec = topic.spec(&catalogue);
        assert_eq!(
            spec.key,
            KeyFormat::Avro(K::SCHEMA),
            "{}: key type and catalogue differ",
            spec.name
        );
        match V::schema() {
            Some(file) => assert_eq!(
                spec.value,
                ValueFormat::Avro(file),
                "{}: value type and catalogue differ",
                spec.name
            ),
            None => assert_eq!(spec.value, ValueFormat::RawCimJson, "{}", spec.name),
        }
        seen.push(topic.id());
    }

    #[test]
    fn typed_topics_match_the_catalogue_and_cover_every_fixed_topic() {
        let mut seen = Vec::new();
        check(TIMESERIES_RAW, &mut seen);
        check(AGGREGATIONS_RAW, &mut seen);
        check(MASTERDATA_RAW, &mut seen);
        check(CHARGES_RAW, &mut seen);
        check(OUTBOUND_REQUESTS, &mut seen);
        check(OUTBOUND_RESPONSES, &mut seen);
        check(SPOT_PRICES, &mut seen);
        check(READINGS, &mut seen);
        check(METERING_POINTS, &mut seen);
        check(CHARGES, &mut seen);
        check(CHARGE_PRICES, &mut seen);
        check(CHARGE_LINKS, &mut seen);
        check(WHOLESALE_RESULTS, &mut seen);
        check(ENRICHED_READINGS, &mut seen);
        check(DAILY_AGGREGATES, &mut seen);
        check(PROVISIONAL_SETTLEMENTS, &mut seen);
        check(SETTLEMENT_STATEMENTS, &mut seen);
        check(DISCREPANCIES, &mut seen);
        check(ERP_STATEMENTS, &mut seen);
        check(DEAD_LETTERS, &mut seen);
        // Topics whose bytes are their owner's (opaque key and value, e.g. the portfolio's
        // event log) have no typed handle by design.
        let catalogue = Catalogue::default_settings();
        let fixed: Vec<TopicId> = TopicId::fixed()
            .filter(|id| {
                let spec = catalogue.spec(*id).expect("a fixed topic");
                !(spec.key == KeyFormat::Opaque && spec.value == ValueFormat::Opaque)
            })
            .collect();
        assert_eq!(
            seen, fixed,
            "every fixed topic with Avro or raw records has exactly one typed handle, in catalogue order"
        );
    }
}

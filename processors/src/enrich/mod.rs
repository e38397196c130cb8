//! enrich: readings joined with their metering point's master data.
//!
//! Reads the readings topic and the metering-points table, which validate
//! writes co-partitioned by GSRN, so task `p` holds the master data of every
//! metering point whose readings it sees. Keeps every master data period per
//! GSRN (`metering-points` store) and readings whose master data has not
//! arrived (`pending-readings`). A reading is enriched with the period valid
//! at its start (grid area, price area, settlement method, supplier) and
//! re-keyed by GSRN onto the enriched-readings topic, partitioned by grid
//! area. A pending reading is released when its master data arrives, or
//! dead-lettered as `UNKNOWN_METERING_POINT` after `pending_timeout`.
//!
//! The points are never decoded: enrich reads the reading's head (checking
//! the points as the full decoder would) and writes the enriched reading as
//! the reading's datum followed by the added fields ([`Wire::splice_enriched`]),
//! byte for byte what encoding the decoded enriched reading would give.

pub mod core;

use std::time::Duration;

use afregning_topology::records::direct::{EnrichedTail, ReadingHead};
use afregning_topology::records::{
    ErrorClass, MeteringPoint, MeteringPointKey, MeteringPointPeriodKey,
};
use afregning_topology::{partition_for_grid_area, topics};
use chrono::{DateTime, Utc};

use crate::runtime::{Context, InputRecord, OutputRecord, ProcessError, Processor, StoreSpec};
use crate::shared::Topics;
#[cfg(doc)]
use crate::shared::Wire;
use crate::shared::dead_letter::{Rejection, dead_letter_output, decode_value_with, reject};
pub use core::EnrichRules;
use core::{enrichment, master_data_for};

/// The processor's name: changelogs, group, metrics.
pub const NAME: &str = afregning_topology::catalogue::Component::Enrich.name();
/// Master data periods per GSRN.
pub const METERING_POINTS_STORE: &str = "metering-points";
/// Readings waiting for master data.
pub const PENDING_STORE: &str = "pending-readings";

const SEP: u8 = 0x1f;

/// Settings of enrich.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrichConfig {
    /// Supplier and price areas.
    pub rules: EnrichRules,
    /// How long a reading waits for its master data before it is
    /// dead-lettered. DataHub sends master data before metered data; a day
    /// covers a late RSM-022 without hiding a metering point we do not supply.
    pub pending_timeout: chrono::Duration,
    /// How often pending readings are checked for the timeout.
    pub check_interval: Duration,
}

impl Default for EnrichConfig {
    fn default() -> Self {
        Self {
            rules: EnrichRules::default(),
            pending_timeout: chrono::Duration::hours(24),
            check_interval: Duration::from_secs(60),
        }
    }
}

/// The enrich processor.
#[derive(Debug, Clone)]
pub struct Enrich {
    topics: Topics,
    config: EnrichConfig,
}

impl Enrich {
    /// enrich for a deployment's topics.
    pub fn new(topics: Topics, config: EnrichConfig) -> Self {
        Self { topics, config }
    }

    /// Emits the enriched reading of `reading` (its head) and `bytes` (its
    /// wire-format record), or its dead letter; `false` when no master data
    /// period covers it yet.
    fn emit_enriched(
        &self,
        reading: &ReadingHead,
        bytes: &[u8],
        source: &InputRecord,
        periods: &[MeteringPoint],
        ctx: &mut Context<'_>,
    ) -> Result<bool, ProcessError> {
        let Some(master) = master_data_for(periods, reading) else {
            return Ok(false);
        };
        match enrichment(reading, master, &self.config.rules) {
            Ok(tail) => ctx.emit(self.enriched_output(reading, bytes, &tail)?),
            Err(rejection) => ctx.emit(dead_letter_output(
                &self.topics,
                NAME,
                source,
                &rejection.with_message_id(Some(reading.source_message_id.clone())),
                ctx.now(),
            )?),
        }
        Ok(true)
    }

    /// The output record of an enriched reading, spliced from the reading's
    /// bytes; the same record `Topics::output` makes of the decoded one.
    fn enriched_output(
        &self,
        reading: &ReadingHead,
        bytes: &[u8],
        tail: &EnrichedTail,
    ) -> Result<OutputRecord, ProcessError> {
        let spec = topics::ENRICHED_READINGS.spec(&self.topics.catalogue);
        let key = MeteringPointKey {
            gsrn: reading.gsrn.clone(),
        };
        Ok(OutputRecord {
            topic: spec.name.clone(),
            key: self
                .topics
                .wire
                .encode(&key)
                .map_err(|e| ProcessError::caused_by("encode key", e))?,
            value: Some(
                self.topics
                    .wire
                    .splice_enriched(bytes, tail)
                    .map_err(|e| ProcessError::caused_by("encode value", e))?,
            ),
            // The enriched-readings topic is partitioned by grid area.
            partition: Some(partition_for_grid_area(&tail.grid_area, spec.partitions)),
            headers: Vec::new(),
            idempotency_key: format!(
                "enriched:{}:{}",
                reading.source_message_id, reading.transaction_id
            ),
        })
    }

    fn periods(&self, gsrn: &str, ctx: &Context<'_>) -> Result<Vec<MeteringPoint>, ProcessError> {
        let mut out = Vec::new();
        for (_, bytes) in ctx.scan_prefix(METERING_POINTS_STORE, &gsrn_prefix(gsrn))? {
            out.push(
                self.topics
                    .wire
                    .decode::<MeteringPoint>(&bytes)
                    .map_err(|e| ProcessError::caused_by("stored master data", e))?,
            );
        }
        Ok(out)
    }

    fn on_master_data(
        &self,
        record: &InputRecord,
        ctx: &mut Context<'_>,
    ) -> Result<(), ProcessError> {
        let key = match record
            .key
            .as_deref()
            .map(|k| self.topics.wire.decode::<MeteringPointPeriodKey>(k))
        {
            Some(Ok(key)) => key,
            Some(Err(e)) if e.is_retriable() => {
                return Err(ProcessError::caused_by("decoding a metering point key", e));
            }
            other => {
                let reason = match other {
                    Some(Err(e)) => format!("undecodable metering point key: {e}"),
                    _ => "metering point record without a key".to_string(),
                };
                return self.reject(record, ErrorClass::Undecodable, reason, ctx);
            }
        };
        let store_key = period_key(&key.gsrn, key.valid_from);
        let Some(value) = &record.value else {
            ctx.delete(METERING_POINTS_STORE, &store_key)?;
            return Ok(());
        };
        if let Err(e) = self.topics.wire.decode::<MeteringPoint>(value) {
            if e.is_retriable() {
                return Err(ProcessError::caused_by("decoding a metering point", e));
            }
            return self.reject(
                record,
                ErrorClass::Undecodable,
                format!("undecodable metering point: {e}"),
                ctx,
            );
        }
        ctx.put(METERING_POINTS_STORE, &store_key, value)?;
        // Release what waited for this metering point, in arrival order.
        let periods = self.periods(&key.gsrn, ctx)?;
        for (pending_key, bytes) in ctx.scan_prefix(PENDING_STORE, &gsrn_prefix(&key.gsrn))? {
            let Some(parked) = Parked::decode(&bytes) else {
                ctx.delete(PENDING_STORE, &pending_key)?;
                continue;
            };
            let bytes = parked.record.value.as_deref().unwrap_or_default();
            let reading = self
                .topics
                .wire
                .decode_reading_head(bytes)
                .map_err(|e| ProcessError::caused_by("parked reading", e))?;
            if self.emit_enriched(&reading, bytes, &parked.record, &periods, ctx)? {
                ctx.delete(PENDING_STORE, &pending_key)?;
            }
        }
        Ok(())
    }

    fn on_reading(&self, record: &InputRecord, ctx: &mut Context<'_>) -> Result<(), ProcessError> {
        let reading = match decode_value_with(record, "reading", |bytes| {
            self.topics.wire.decode_reading_head(bytes)
        })? {
            Ok(r) => r,
            Err(r) => return self.reject(record, r.class, r.reason, ctx),
        };
        let bytes = record.value.as_deref().unwrap_or_default();
        let periods = self.periods(&reading.gsrn, ctx)?;
        if !self.emit_enriched(&reading, bytes, record, &periods, ctx)? {
            let parked = Parked {
                arrived_ms: record
                    .timestamp
                    .unwrap_or_else(|| ctx.now().timestamp_millis()),
                record: record.clone(),
            };
            let mut key = gsrn_prefix(&reading.gsrn);
            key.extend_from_slice(&record.offset.to_be_bytes());
            ctx.put(PENDING_STORE, &key, &parked.encode())?;
            metrics::counter!("afregning_enrich_parked_total").increment(1);
            tracing::debug!(gsrn = %reading.gsrn, offset = record.offset, "reading waits for master data");
        }
        Ok(())
    }

    fn reject(
        &self,
        record: &InputRecord,
        class: ErrorClass,
        reason: String,
        ctx: &mut Context<'_>,
    ) -> Result<(), ProcessError> {
        reject(&self.topics, NAME, record, class, reason, ctx)
    }
}

fn gsrn_prefix(gsrn: &str) -> Vec<u8> {
    let mut key = gsrn.as_bytes().to_vec();
    key.push(SEP);
    key
}

fn period_key(gsrn: &str, valid_from: DateTime<Utc>) -> Vec<u8> {
    let mut key = gsrn_prefix(gsrn);
    key.extend_from_slice(&valid_from.timestamp_millis().to_be_bytes());
    key
}

/// A reading waiting for master data: the source record as consumed (so its
/// dead letter names the original topic, partition and offset) and when it
/// arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Parked {
    arrived_ms: i64,
    record: InputRecord,
}

impl Parked {
    fn encode(&self) -> Vec<u8> {
        let value = self.record.value.as_deref().unwrap_or_default();
        let key = self.record.key.as_deref().unwrap_or_default();
        let topic = self.record.topic.as_bytes();
        let mut out = Vec::with_capacity(40 + topic.len() + key.len() + value.len());
        out.push(1);
        out.extend_from_slice(&self.arrived_ms.to_be_bytes());
        out.extend_from_slice(&self.record.partition.to_be_bytes());
        out.extend_from_slice(&self.record.offset.to_be_bytes());
        out.extend_from_slice(&self.record.timestamp.unwrap_or(i64::MIN).to_be_bytes());
        for part in [topic, key, value] {
            out.extend_from_slice(&(part.len() as u32).to_be_bytes());
            out.extend_from_slice(part);
        }
        out
    }

    fn decode(bytes: &[u8]) -> Option<Self> {
        let (&version, mut rest) = bytes.split_first()?;
        if version != 1 {
            return None;
        }
        let mut take = |n: usize| -> Option<&[u8]> {
            let (head, tail) = rest.split_at_checked(n)?;
            rest = tail;
            Some(head)
        };
        let arrived_ms = i64::from_be_bytes(take(8)?.try_into().ok()?);
        let partition = i32::from_be_bytes(take(4)?.try_into().ok()?);
        let offset = i64::from_be_bytes(take(8)?.try_into().ok()?);
        let timestamp = i64::from_be_bytes(take(8)?.try_into().ok()?);
        let mut parts = Vec::new();
        for _ in 0..3 {
            let len = u32::from_be_bytes(take(4)?.try_into().ok()?) as usize;
            parts.push(take(len)?.to_vec());
        }
        let value = parts.pop()?;
        let key = parts.pop()?;
        let topic = String::from_utf8(parts.pop()?).ok()?;
        Some(Self {
            arrived_ms,
            record: InputRecord {
                topic,
                partition,
                offset,
                timestamp: (timestamp != i64::MIN).then_some(timestamp),
                key: Some(key),
                value: Some(value),
                headers: Vec::new(),
            },
        })
    }
}

impl Processor for Enrich {
    fn name(&self) -> &str {
        NAME
    }

    /// A fresh instance per task, so tasks are processed in parallel (decision 0153).
    /// It keeps nothing in memory between records.
    fn task_instance(&self) -> Option<Self> {
        Some(Self::new(self.topics.clone(), self.config.clone()))
    }

    fn stores(&self) -> Vec<StoreSpec> {
        vec![
            StoreSpec::new(METERING_POINTS_STORE),
            StoreSpec::new(PENDING_STORE),
        ]
    }

    fn input_topics(&self) -> Vec<String> {
        // Readings are the primary topic (the one the group balances); both
        // are co-partitioned by GSRN.
        vec![
            self.topics.name(topics::READINGS),
            self.topics.name(topics::METERING_POINTS),
        ]
    }

    fn tick_interval(&self) -> Option<Duration> {
        Some(self.config.check_interval)
    }

    /// Looks up writer schemas of the batch this build does not know (an
    /// upstream producer's newer or older version) before `process` needs them.
    async fn prepare_batch(&mut self, records: &[&InputRecord]) -> Result<(), ProcessError> {
        crate::shared::prefetch_writer_schemas(&self.topics.wire, records).await
    }

    fn process(&mut self, record: &InputRecord, ctx: &mut Context<'_>) -> Result<(), ProcessError> {
        if record.topic == self.topics.name(topics::METERING_POINTS) {
            self.on_master_data(record, ctx)
        } else {
            self.on_reading(record, ctx)
        }
    }

    fn on_tick(&mut self, now: DateTime<Utc>, ctx: &mut Context<'_>) -> Result<(), ProcessError> {
        let cutoff = (now - self.config.pending_timeout).timestamp_millis();
        for (key, bytes) in ctx.scan_prefix(PENDING_STORE, b"")? {
            let Some(parked) = Parked::decode(&bytes) else {
                ctx.delete(PENDING_STORE, &key)?;
                continue;
            };
            if parked.arrived_ms < cutoff {
                let gsrn = key.split(|b| *b == SEP).next().unwrap_or_default();
                let reason = format!(
                    "unknown metering point {}: no master data (RSM-022) arrived within {} hours",
                    String::from_utf8_lossy(gsrn),
                    self.config.pending_timeout.num_hours()
                );
                let output = dead_letter_output(
                    &self.topics,
                    NAME,
                    &parked.record,
                    &Rejection::new(ErrorClass::UnknownMeteringPoint, reason),
                    now,
                )?;
                ctx.emit(output);
                ctx.delete(PENDING_STORE, &key)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;

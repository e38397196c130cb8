//! validate: raw DataHub topics to typed topics.
//!
//! Reads the four raw topics (CIM JSON as peeked, split per series by the
//! connector), keeps a dedupe store of `(MessageId, part index)` seen within a
//! retention window, and emits RSM-012 series to the readings topic, RSM-022
//! records to the metering-points table, RSM-034 charges and price series to
//! the charges and charge-prices tables and RSM-031 links to the charge-links
//! table. DataHub's rejects of our on-demand requests (RSM-016/017) are known
//! but read from the raw topic by `afregning reconcile relay`: counted
//! (`afregning_validate_handled_elsewhere_total`) and logged, not typed and not
//! dead-lettered. Every other record it cannot turn
//! into typed records (bad JSON, schema violation, business-invalid, a
//! document type validate has no topic for) goes to the dead-letter topic
//! with its class, reason and raw payload. A duplicate is counted
//! (`afregning_processor_duplicates_total`) and logged, not re-emitted.

pub mod core;
pub mod wholesale;

use std::time::Duration;

use afregning_topology::raw_headers;
use afregning_topology::topics;
use chrono::{DateTime, TimeZone, Utc};

use crate::runtime::{Context, InputRecord, OutputRecord, ProcessError, Processor, StoreSpec};
use crate::shared::Topics;
use crate::shared::dead_letter::dead_letter_output;
use core::{RawMeta, Typed, dedupe_id, validate};

/// The processor's name: changelogs, group, metrics.
pub const NAME: &str = afregning_topology::catalogue::Component::Validate.name();
/// The dedupe store (its changelog topic is named by the catalogue from `STORES`).
pub const DEDUPE_STORE: &str = "dedupe";

/// Settings of validate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidateConfig {
    /// How long a (MessageId, part) stays in the dedupe store. DataHub
    /// re-delivers an un-dequeued message within minutes; a week is generous.
    pub dedupe_retention: chrono::Duration,
    /// How often expired dedupe entries are removed.
    pub cleanup_interval: Duration,
}

impl Default for ValidateConfig {
    fn default() -> Self {
        Self {
            dedupe_retention: chrono::Duration::days(7),
            cleanup_interval: Duration::from_secs(600),
        }
    }
}

/// The validate processor.
#[derive(Debug, Clone)]
pub struct Validate {
    topics: Topics,
    config: ValidateConfig,
}

impl Validate {
    /// validate for a deployment's topics.
    pub fn new(topics: Topics, config: ValidateConfig) -> Self {
        Self { topics, config }
    }
}

fn header_str(record: &InputRecord, name: &str) -> Option<String> {
    record
        .header(name)
        .and_then(|v| std::str::from_utf8(v).ok())
        .map(str::to_string)
}

/// The dedupe metadata from a raw record's headers.
pub fn raw_meta(record: &InputRecord) -> RawMeta {
    RawMeta {
        message_id: header_str(record, raw_headers::MESSAGE_ID).filter(|s| !s.is_empty()),
        part_index: header_str(record, raw_headers::PART_INDEX)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0),
        split_error: header_str(record, raw_headers::SPLIT_ERROR),
    }
}

fn seen_key(id: &str) -> Vec<u8> {
    id.as_bytes().to_vec()
}

/// A portfolio command on the commands topic: key and routing by GSRN (18 ASCII digits),
/// co-partitioned with the portfolio's events, value JSON (decision 0145).
fn portfolio_command_output(
    topics: &Topics,
    command: &afregning_portfolio::CommandRecord,
    idempotency_key: String,
) -> Result<OutputRecord, ProcessError> {
    let spec = topics
        .catalogue
        .spec(afregning_topology::catalogue::TopicId::PortfolioCommands)
        .map_err(|e| ProcessError::caused_by("the catalogue has no portfolio commands topic", e))?;
    let gsrn = command.metering_point.to_string();
    Ok(OutputRecord {
        topic: spec.name.clone(),
        partition: Some(afregning_topology::partitioner::partition_for_key(
            &gsrn,
            spec.partitions,
        )),
        key: gsrn.into_bytes(),
        value: Some(command.to_json()),
        headers: Vec::new(),
        idempotency_key,
    })
}

impl Processor for Validate {
    fn name(&self) -> &str {
        NAME
    }

    /// A fresh instance per task, so tasks are processed in parallel (decision 0153).
    /// It keeps nothing in memory between records.
    fn task_instance(&self) -> Option<Self> {
        Some(Self::new(self.topics.clone(), self.config.clone()))
    }

    fn stores(&self) -> Vec<StoreSpec> {
        vec![StoreSpec::new(DEDUPE_STORE)]
    }

    fn input_topics(&self) -> Vec<String> {
        vec![
            self.topics.name(topics::TIMESERIES_RAW),
            self.topics.name(topics::AGGREGATIONS_RAW),
            self.topics.name(topics::MASTERDATA_RAW),
            self.topics.name(topics::CHARGES_RAW),
        ]
    }

    fn tick_interval(&self) -> Option<Duration> {
        Some(self.config.cleanup_interval)
    }

    fn process(&mut self, record: &InputRecord, ctx: &mut Context<'_>) -> Result<(), ProcessError> {
        let meta = raw_meta(record);
        let seen_at = record
            .timestamp
            .unwrap_or_else(|| ctx.now().timestamp_millis());
        // A dead letter re-submitted by an operator (`afregning replay
        // dead-letters`) was seen before by definition: its id is not a duplicate.
        let resubmitted = record
            .header(crate::replay::dead_letters::RESUBMITTED_FROM)
            .is_some();
        if let Some(id) = meta.message_id.as_ref().filter(|_| !resubmitted) {
            let key = seen_key(&dedupe_id(id, meta.part_index));
            if ctx.get(DEDUPE_STORE, &key)?.is_some() {
                metrics::counter!("afregning_processor_duplicates_total", "processor" => NAME)
                    .increment(1);
                tracing::info!(message_id = %id, part = meta.part_index, topic = %record.topic, offset = record.offset, "duplicate raw record skipped");
                return Ok(());
            }
        }
        let outcome = validate(record.value.as_deref(), &meta);
        let message_id = match &outcome {
            Ok(v) => v.message_id.clone(),
            Err(r) => r.message_id.clone(),
        };
        match outcome {
            Ok(validated) => {
                if let Some(kind) = validated.handled_elsewhere {
                    metrics::counter!("afregning_validate_handled_elsewhere_total", "processor" => NAME, "document" => kind.name()).increment(1);
                    // Ids and the document type only: no personal data.
                    tracing::info!(
                        message_id = validated.message_id.as_deref().unwrap_or(""),
                        document = kind.name(),
                        rsm = kind.rsm(),
                        reader = self::core::handled_elsewhere(kind).unwrap_or(""),
                        topic = %record.topic,
                        offset = record.offset,
                        "not typed by validate: the reconcile relay reads this reject of our DataHub request from the raw topic"
                    );
                }
                for (idempotency_key, typed) in validated.records {
                    let output = match &typed {
                        Typed::Reading(k, v) => {
                            self.topics
                                .output(topics::READINGS, k, v, idempotency_key)?
                        }
                        Typed::MeteringPoint(k, v) => {
                            self.topics
                                .output(topics::METERING_POINTS, k, v, idempotency_key)?
                        }
                        Typed::Charge(k, v) => {
                            self.topics.output(topics::CHARGES, k, v, idempotency_key)?
                        }
                        Typed::ChargePrice(k, v) => {
                            self.topics
                                .output(topics::CHARGE_PRICES, k, v, idempotency_key)?
                        }
                        Typed::ChargeLink(k, v) => {
                            self.topics
                                .output(topics::CHARGE_LINKS, k, v, idempotency_key)?
                        }
                        Typed::WholesaleResult(k, v) => {
                            self.topics
                                .output(topics::WHOLESALE_RESULTS, k, v, idempotency_key)?
                        }
                        Typed::PortfolioCommand(command) => {
                            portfolio_command_output(&self.topics, command, idempotency_key)?
                        }
                    };
                    ctx.emit(output);
                }
            }
            Err(rejection) => ctx.emit(dead_letter_output(
                &self.topics,
                NAME,
                record,
                &rejection,
                ctx.now(),
            )?),
        }
        // A message whose id only the document knew is deduplicated from now on too.
        if let Some(id) = message_id {
            ctx.put(
                DEDUPE_STORE,
                &seen_key(&dedupe_id(&id, meta.part_index)),
                &seen_at.to_be_bytes(),
            )?;
        }
        Ok(())
    }

    fn on_tick(&mut self, now: DateTime<Utc>, ctx: &mut Context<'_>) -> Result<(), ProcessError> {
        let cutoff = (now - self.config.dedupe_retention).timestamp_millis();
        let mut expired = 0u64;
        for (key, value) in ctx.scan_prefix(DEDUPE_STORE, b"")? {
            let seen = <[u8; 8]>::try_from(value.as_slice())
                .map(i64::from_be_bytes)
                .unwrap_or(i64::MIN);
            if seen < cutoff {
                ctx.delete(DEDUPE_STORE, &key)?;
                expired += 1;
            }
        }
        if expired > 0 {
            tracing::debug!(expired, cutoff = %Utc.timestamp_millis_opt(cutoff).single().unwrap_or(now), "dedupe entries expired");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;

//! The database sink (`afregning sink run timescale`): readings, metering
//! points, daily aggregates, provisional settlements, statements, dead
//! letters, DataHub's wholesale results and our reconciliations into PostgreSQL,
//! TimescaleDB where available.
//!
//! - [`rows`]: records to rows (pure).
//! - [`batch`]: a batch, deduplicated per table, and its COPY streams.
//! - [`service`]: the connection and the transaction that merges a batch.
//! - [`wholesale`]: wholesale results and reconciliations (migration 0030).
//! - this module: the [`Handler`] that decodes records into a batch.

pub mod batch;
pub mod rows;
pub mod service;
pub mod wholesale;

use std::collections::HashMap;

use afregning_topology::records::{ErrorClass, TopicKey, TopicValue};
use afregning_topology::topics::{self, Topic};
use afregning_topology::{Codec, CodecError};
use rdkafka::producer::FutureProducer;

use self::batch::TimescaleBatch;
use self::service::TimescaleService;
use crate::dead_letters::{dead_letter_for, publish_dead_letters};
use crate::positions::{Position, SourcePos};
use crate::runner::{FlushReport, Handler, HandlerError};
use crate::source::SourceRecord;

/// The component name in the dead letters this sink writes.
pub const COMPONENT: &str = "sink-postgres";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Input {
    Readings,
    MeteringPoints,
    DailyAggregates,
    Provisional,
    Statements,
    DeadLetters,
    WholesaleResults,
    Reconciliations,
}

/// Decodes the database sink's topics into a [`TimescaleBatch`] and writes it.
pub struct TimescaleHandler {
    codec: Codec,
    inputs: HashMap<String, Input>,
    service: TimescaleService,
    producer: FutureProducer,
    dead_letters_published: bool,
}

impl std::fmt::Debug for TimescaleHandler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TimescaleHandler")
            .field("inputs", &self.inputs)
            .finish_non_exhaustive()
    }
}

impl TimescaleHandler {
    /// A handler over `codec`'s catalogue, writing through `service` and
    /// publishing its own dead letters with `producer`.
    pub fn new(codec: Codec, service: TimescaleService, producer: FutureProducer) -> Self {
        let inputs = [
            (codec.topic_name(topics::READINGS), Input::Readings),
            (
                codec.topic_name(topics::METERING_POINTS),
                Input::MeteringPoints,
            ),
            (
                codec.topic_name(topics::DAILY_AGGREGATES),
                Input::DailyAggregates,
            ),
            (
                codec.topic_name(topics::PROVISIONAL_SETTLEMENTS),
                Input::Provisional,
            ),
            (
                codec.topic_name(topics::SETTLEMENT_STATEMENTS),
                Input::Statements,
            ),
            (codec.topic_name(topics::DEAD_LETTERS), Input::DeadLetters),
            (
                codec.topic_name(topics::WHOLESALE_RESULTS),
                Input::WholesaleResults,
            ),
            (
                codec.topic_name(topics::DISCREPANCIES),
                Input::Reconciliations,
            ),
        ]
        .into_iter()
        .map(|(name, input)| (name.to_string(), input))
        .collect();
        Self {
            codec,
            inputs,
            service,
            producer,
            dead_letters_published: false,
        }
    }

    /// The storage shape, once the service connected.
    pub fn storage_mode(&self) -> Option<crate::schema::StorageMode> {
        self.service.mode()
    }

    async fn value<K: TopicKey, V: TopicValue>(
        &self,
        topic: Topic<K, V>,
        record: &SourceRecord,
    ) -> Result<Option<V>, CodecError> {
        self.codec
            .decode_value(topic, record.payload.as_deref())
            .await
    }
}

fn classify(error: CodecError) -> Result<String, HandlerError> {
    if error.is_retriable() {
        Err(HandlerError::Retriable {
            reason: "registry",
            message: error.to_string(),
        })
    } else {
        Ok(error.to_string())
    }
}

impl Handler for TimescaleHandler {
    type Batch = TimescaleBatch;

    fn sink_label(&self) -> &'static str {
        "postgres"
    }

    fn topics(&self) -> Vec<String> {
        let mut topics: Vec<String> = self.inputs.keys().cloned().collect();
        topics.sort();
        topics
    }

    async fn stored_positions(&mut self) -> Result<HashMap<(String, i32), i64>, HandlerError> {
        self.service
            .positions()
            .await
            .map_err(HandlerError::database)
    }

    async fn add(
        &mut self,
        batch: &mut TimescaleBatch,
        record: &SourceRecord,
    ) -> Result<usize, HandlerError> {
        let Some(&input) = self.inputs.get(&*record.topic) else {
            return Ok(0);
        };
        let pos = SourcePos::of(record);
        let header_key = record.idempotency_key.clone();
        let outcome: Result<Option<(usize, String)>, String> = match input {
            Input::Readings => match self.value(topics::READINGS, record).await {
                Ok(Some(reading)) => batch
                    .add_reading(&reading, &pos)
                    .map(|rows| {
                        Some((
                            rows,
                            format!(
                                "reading:{}:{}",
                                reading.source_message_id, reading.transaction_id
                            ),
                        ))
                    })
                    .map_err(|e| e.to_string()),
                Ok(None) => Ok(None),
                Err(e) => Err(classify(e)?),
            },
            Input::MeteringPoints => {
                let key = self
                    .codec
                    .decode_key(topics::METERING_POINTS, record.key.as_deref())
                    .await;
                match (key, self.value(topics::METERING_POINTS, record).await) {
                    (Ok(key), Ok(value)) => {
                        let idempotency = value.as_ref().map(|mp| {
                            format!(
                                "metering-point:{}:{}:{}",
                                mp.gsrn,
                                mp.valid_from.timestamp_millis(),
                                mp.source_message_id
                            )
                        });
                        let rows = batch.add_metering_point(key.gsrn, key.valid_from, value, &pos);
                        Ok(idempotency.map(|k| (rows, k)))
                    }
                    (Err(e), _) | (_, Err(e)) => Err(classify(e)?),
                }
            }
            Input::DailyAggregates => match self.value(topics::DAILY_AGGREGATES, record).await {
                Ok(Some(day)) => {
                    let key = format!("daily:{}:{}:v{}", day.gsrn, day.local_date, day.version);
                    Ok(Some((batch.add_daily(day, &pos), key)))
                }
                Ok(None) => Ok(None),
                Err(e) => Err(classify(e)?),
            },
            Input::Provisional => match self.value(topics::PROVISIONAL_SETTLEMENTS, record).await {
                Ok(Some(settlement)) => {
                    let key = settlement.idempotency_key.clone();
                    Ok(Some((batch.add_settlement(settlement, &pos), key)))
                }
                Ok(None) => Ok(None),
                Err(e) => Err(classify(e)?),
            },
            Input::Statements => match self.value(topics::SETTLEMENT_STATEMENTS, record).await {
                Ok(Some(statement)) => {
                    let key = statement.idempotency_key.clone();
                    Ok(Some((batch.add_statement(statement, &pos), key)))
                }
                Ok(None) => Ok(None),
                Err(e) => Err(classify(e)?),
            },
            Input::WholesaleResults => match self.value(topics::WHOLESALE_RESULTS, record).await {
                Ok(Some(result)) => {
                    let key = format!(
                        "wholesale-result:{}:{}",
                        result.source_message_id, result.transaction_id
                    );
                    Ok(Some((batch.add_wholesale_result(result, &pos), key)))
                }
                Ok(None) => Ok(None),
                Err(e) => Err(classify(e)?),
            },
            Input::Reconciliations => match self.value(topics::DISCREPANCIES, record).await {
                Ok(Some(part)) => {
                    let key = format!(
                        "reconciliation:{}:{}:v{}:p{}",
                        part.grid_area, part.month_start, part.version, part.part
                    );
                    Ok(Some((batch.add_reconciliation(part), key)))
                }
                Ok(None) => Ok(None),
                Err(e) => Err(classify(e)?),
            },
            Input::DeadLetters => match self.value(topics::DEAD_LETTERS, record).await {
                Ok(Some(letter)) => {
                    let key = format!(
                        "dead-letter:{}/{}/{}:{}",
                        letter.source_topic,
                        letter.source_partition,
                        letter.source_offset,
                        letter.failed_at.timestamp_millis()
                    );
                    Ok(Some((batch.add_dead_letter(letter, &pos), key)))
                }
                Ok(None) => Ok(None),
                Err(e) => Err(classify(e)?),
            },
        };
        match outcome {
            Ok(Some((rows, derived_key))) => {
                batch.add_processed(header_key.unwrap_or(derived_key), &pos);
                Ok(rows)
            }
            // A tombstone on a stream topic means nothing to the tables.
            Ok(None) => Ok(0),
            Err(reason) => {
                tracing::warn!(topic = %record.topic, partition = record.partition, offset = record.offset, %reason, "dead-lettering a record the sink cannot use");
                batch.outgoing_dead_letters.push(dead_letter_for(
                    record,
                    COMPONENT,
                    ErrorClass::Undecodable,
                    reason,
                ));
                Ok(0)
            }
        }
    }

    fn batch_rows(batch: &TimescaleBatch) -> usize {
        batch.rows()
    }

    async fn flush(
        &mut self,
        batch: &mut TimescaleBatch,
        positions: &[Position],
    ) -> Result<FlushReport, HandlerError> {
        // Dead letters first: once the batch commits, its records are never
        // read again, so their dead letters must already be in Kafka. A retry
        // of the batch does not publish them twice.
        if !batch.outgoing_dead_letters.is_empty() && !self.dead_letters_published {
            publish_dead_letters(&self.codec, &self.producer, &batch.outgoing_dead_letters).await?;
            self.dead_letters_published = true;
        }
        let mut report = self.service.write(batch, positions).await?;
        let published = batch.outgoing_dead_letters.len() as u64;
        crate::events::dead_letters(self.sink_label(), published);
        if published > 0 {
            report.counts.insert("dead_letters_published", published);
        }
        self.dead_letters_published = false;
        Ok(report)
    }

    fn reset(&mut self) {
        self.service.reset();
    }

    fn claim(&mut self, partitions: &[i32]) {
        self.service.claim(partitions);
    }
}

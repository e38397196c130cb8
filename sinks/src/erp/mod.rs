//! The ERP sink (`afregning sink run erp`): final statements and credit notes
//! to the ERP topic, each once, checked against what was delivered before;
//! optionally a file export per billing run ([`export`]).
//!
//! Commit protocol per batch (docs/decisions/0064):
//! 1. **Decide**: load what was delivered for the batch's metering
//!    point-months from `erp_delivery` and apply [`rules`] in order.
//! 2. **Publish** the delivered ones to the ERP topic (idempotent producer,
//!    `acks=all`, the statement's idempotency key as header) and the refused
//!    ones as dead letters; wait for every acknowledgement.
//! 3. **Record** in one transaction: `erp_delivery` (with the ERP topic
//!    offset), `processed_message`, the input positions and the ERP topic's
//!    positions. Then mirror the input positions to the Kafka group.
//!
//! A retried batch never redoes steps 1 and 2 (the batch keeps their
//! results). A crash between 2 and 3 leaves statements in the ERP topic that
//! `erp_delivery` does not know; so whenever the sink (re)connects it first
//! **reconciles**: it reads the ERP topic from its recorded positions to the
//! end and records what it finds. The re-read batch then finds them
//! delivered and skips them. One active ERP sink per consumer name (advisory
//! lock) makes this sound; the ERP still gets the idempotency key to book
//! each document once, whatever happens upstream of it.

pub mod export;
pub mod rules;

use afregning_topology::read_to_end::ReadToEndContext;
use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use afregning_topology::Codec;
use afregning_topology::records::{
    DeadLetter, DeadLetterKey, ErrorClass, SettlementMonthKey, SettlementStatement,
};
use afregning_topology::topics;
use chrono::NaiveDate;
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, Message, OwnedHeaders};
use rdkafka::producer::FutureProducer;
use rdkafka::{Offset, TopicPartitionList};
use sqlx::{Connection, PgConnection};

use self::rules::{Decision, Delivered, DeliveryState};
use crate::dead_letters::{dead_letter_for, publish_dead_letters};
use crate::positions::{Position, SourcePos, load_positions, lock_consumer, store_positions};
use crate::runner::{FlushReport, Handler, HandlerError};
use crate::source::{IDEMPOTENCY_KEY_HEADER, SourceRecord};

/// The component name in the dead letters this sink writes.
pub const COMPONENT: &str = "sink-erp";

/// A statement published to the ERP topic, and where it landed.
#[derive(Debug, Clone)]
struct Published {
    statement: SettlementStatement,
    partition: i32,
    offset: i64,
}

/// A batch of the ERP sink.
#[derive(Debug, Default)]
pub struct ErpBatch {
    statements: Vec<(SettlementStatement, SourcePos, String)>,
    undecodable: Vec<(DeadLetterKey, DeadLetter)>,
    decided: Option<Decided>,
}

#[derive(Debug, Default)]
struct Decided {
    deliver: Vec<SettlementStatement>,
    rejected: Vec<(DeadLetterKey, DeadLetter)>,
    duplicates: u64,
    published: Option<Vec<Published>>,
}

/// Publishes statements to the ERP topic and records them.
pub struct ErpHandler {
    codec: Codec,
    producer: FutureProducer,
    database_url: String,
    consumer: String,
    bootstrap_servers: String,
    kafka: std::collections::BTreeMap<String, String>,
    input_topic: String,
    erp_topic: String,
    conn: Option<PgConnection>,
}

impl std::fmt::Debug for ErpHandler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ErpHandler")
            .field("consumer", &self.consumer)
            .field("erp_topic", &self.erp_topic)
            .finish_non_exhaustive()
    }
}

impl ErpHandler {
    /// A handler for `config`'s deployment.
    pub fn new(
        codec: Codec,
        producer: FutureProducer,
        config: &crate::SinkConfig,
        consumer: &str,
    ) -> Self {
        let input_topic = codec.topic_name(topics::SETTLEMENT_STATEMENTS).to_string();
        let erp_topic = codec.topic_name(topics::ERP_STATEMENTS).to_string();
        Self {
            codec,
            producer,
            database_url: config.database_url.clone(),
            consumer: consumer.to_string(),
            bootstrap_servers: config.bootstrap_servers.clone(),
            kafka: config.kafka.clone(),
            input_topic,
            erp_topic,
            conn: None,
        }
    }

    /// The key under which the ERP topic's read positions are stored.
    fn published_consumer(&self) -> String {
        format!("{}#published", self.consumer)
    }

    async fn connection(&mut self) -> Result<&mut PgConnection, HandlerError> {
        if self.conn.is_none() {
            let mut conn = crate::schema::connect(&self.database_url, "afregning sink-erp")
                .await
                .map_err(HandlerError::database)?;
            lock_consumer(&mut conn, &self.consumer)
                .await
                .map_err(HandlerError::database)?;
            self.reconcile(&mut conn).await?;
            self.conn = Some(conn);
        }
        Ok(self.conn.as_mut().expect("connected"))
    }

    /// Records every statement in the ERP topic after the recorded positions
    /// (published just before a crash, or by a previous holder of the lock).
    async fn reconcile(&self, conn: &mut PgConnection) -> Result<u64, HandlerError> {
        let published = self.published_consumer();
        let stored = load_positions(conn, &published)
            .await
            .map_err(HandlerError::database)?;
        let start: HashMap<i32, i64> = stored
            .into_iter()
            .filter(|((topic, _), _)| *topic == self.erp_topic)
            .map(|((_, partition), offset)| (partition, offset))
            .collect();
        let mut config = crate::source::consumer_config(
            &self.bootstrap_servers,
            &published,
            60_000,
            &self.kafka,
        );
        config.set("statistics.interval.ms", "0");
        let topic = self.erp_topic.clone();
        let records = tokio::task::spawn_blocking(move || read_to_end(&config, &topic, &start))
            .await
            .map_err(|e| HandlerError::Fatal(format!("reconciliation thread: {e}")))?
            .map_err(|e| HandlerError::Retriable {
                reason: "kafka",
                message: format!("reading the ERP topic to reconcile: {e}"),
            })?;
        if records.is_empty() {
            return Ok(0);
        }
        let mut found = Vec::new();
        for (partition, offset, payload) in &records {
            match self
                .codec
                .decode_value(topics::ERP_STATEMENTS, payload.as_deref())
                .await
            {
                Ok(Some(statement)) => found.push((statement, *partition, *offset)),
                Ok(None) => {}
                Err(e) if e.is_retriable() => {
                    return Err(HandlerError::Retriable {
                        reason: "registry",
                        message: e.to_string(),
                    });
                }
                Err(e) => {
                    tracing::error!(partition, offset, error = %e, "an undecodable record in the ERP topic")
                }
            }
        }
        let mut tx = conn.begin().await.map_err(HandlerError::database)?;
        let mut recovered = 0;
        for (statement, partition, offset) in &found {
            recovered += record_delivery(
                &mut tx,
                &self.erp_topic,
                statement,
                *partition,
                *offset,
                true,
            )
            .await
            .map_err(HandlerError::database)?;
        }
        let mut ends: HashMap<i32, i64> = HashMap::new();
        for (partition, offset, _) in &records {
            let end = ends.entry(*partition).or_default();
            *end = (*end).max(offset + 1);
        }
        let positions: Vec<Position> = ends
            .into_iter()
            .map(|(partition, next_offset)| Position {
                topic: self.erp_topic.as_str().into(),
                partition,
                next_offset,
            })
            .collect();
        store_positions(&mut tx, &published, &positions)
            .await
            .map_err(HandlerError::database)?;
        tx.commit().await.map_err(HandlerError::database)?;
        if recovered > 0 {
            tracing::warn!(
                recovered,
                "recorded statements found in the ERP topic but not in erp_delivery (published before a crash)"
            );
        }
        Ok(recovered)
    }

    async fn decide(&mut self, batch: &ErpBatch) -> Result<Decided, HandlerError> {
        let months: BTreeSet<(String, NaiveDate)> = batch
            .statements
            .iter()
            .map(|(s, _, _)| (s.gsrn.clone(), s.month_start))
            .collect();
        let gsrns: Vec<String> = months.iter().map(|(g, _)| g.clone()).collect();
        let month_starts: Vec<NaiveDate> = months.iter().map(|(_, m)| *m).collect();
        let conn = self.connection().await?;
        let rows: Vec<(String, NaiveDate, serde_json::Value)> = sqlx::query_as(
            "SELECT d.gsrn::text, d.month_start, d.document FROM erp_delivery d
             JOIN unnest($1::text[], $2::date[]) AS m(gsrn, month_start)
               ON d.gsrn = m.gsrn AND d.month_start = m.month_start
             ORDER BY d.delivered_at, d.statement_id",
        )
        .bind(&gsrns)
        .bind(&month_starts)
        .fetch_all(conn)
        .await
        .map_err(HandlerError::database)?;
        let mut state = DeliveryState::default();
        for (gsrn, month, document) in rows {
            let statement: SettlementStatement = serde_json::from_value(document).map_err(|e| {
                HandlerError::Fatal(format!("erp_delivery holds an unreadable document: {e}"))
            })?;
            state.insert(&gsrn, month, Delivered::of(&statement));
        }
        let mut decided = Decided::default();
        for (statement, pos, _) in &batch.statements {
            match state.decide(statement) {
                Decision::Deliver => decided.deliver.push(statement.clone()),
                Decision::Duplicate => decided.duplicates += 1,
                Decision::Reject(reason) => {
                    tracing::warn!(statement = %statement.statement_id, %reason, "refusing a statement for the ERP");
                    crate::events::erp_rejected();
                    let record = SourceRecord {
                        topic: pos.topic.clone(),
                        partition: pos.partition,
                        offset: pos.offset,
                        timestamp: Some(pos.received_at),
                        key: None,
                        payload: serde_json::to_vec(&rules::document(statement)).ok(),
                        idempotency_key: None,
                    };
                    let (key, mut letter) =
                        dead_letter_for(&record, COMPONENT, ErrorClass::Invalid, reason);
                    // Deterministic, so a re-read batch writes the same dead letter.
                    letter.failed_at = pos.received_at;
                    decided.rejected.push((key, letter));
                }
            }
        }
        Ok(decided)
    }

    async fn publish(
        &self,
        deliver: &[SettlementStatement],
    ) -> Result<Vec<Published>, HandlerError> {
        let mut sends = Vec::new();
        for statement in deliver {
            let key = SettlementMonthKey {
                gsrn: statement.gsrn.clone(),
                month_start: statement.month_start,
            };
            let record = self
                .codec
                .encode(topics::ERP_STATEMENTS, &key, statement)
                .await
                .map_err(|e| HandlerError::encoding(e, "a statement for the ERP"))?;
            let producer = &self.producer;
            let idempotency_key = statement.idempotency_key.clone();
            sends.push(async move {
                let headers = OwnedHeaders::new().insert(Header {
                    key: IDEMPOTENCY_KEY_HEADER,
                    value: Some(idempotency_key.as_bytes()),
                });
                producer
                    .send(
                        record.as_future_record().headers(headers),
                        Duration::from_secs(30),
                    )
                    .await
                    .map_err(|(error, _)| error)
            });
        }
        let results = futures::future::join_all(sends).await;
        let mut published = Vec::new();
        for (statement, result) in deliver.iter().zip(results) {
            let delivery = result.map_err(|error| HandlerError::Retriable {
                reason: "kafka",
                message: format!("publishing to the ERP topic: {error}"),
            })?;
            published.push(Published {
                statement: statement.clone(),
                partition: delivery.partition,
                offset: delivery.offset,
            });
        }
        Ok(published)
    }
}

/// Reads `topic` from `start` (the beginning where absent) to the end of every
/// partition: (partition, offset, payload).
#[allow(clippy::type_complexity)]
fn read_to_end(
    config: &ClientConfig,
    topic: &str,
    start: &HashMap<i32, i64>,
) -> Result<Vec<(i32, i64, Option<Vec<u8>>)>, KafkaError> {
    let consumer: BaseConsumer<ReadToEndContext> = config.create_with_context(ReadToEndContext)?;
    let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10))?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .filter(|t| t.name() == topic)
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    let mut list = TopicPartitionList::new();
    for &partition in &partitions {
        let offset = start
            .get(&partition)
            .map_or(Offset::Beginning, |&o| Offset::Offset(o));
        list.add_partition_offset(topic, partition, offset)?;
    }
    consumer.assign(&list)?;
    let mut remaining: BTreeSet<i32> = partitions.into_iter().collect();
    let mut records = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !remaining.is_empty() {
        if std::time::Instant::now() > deadline {
            return Err(KafkaError::Global(
                rdkafka::types::RDKafkaErrorCode::OperationTimedOut,
            ));
        }
        match consumer.poll(Duration::from_millis(200)) {
            None => {}
            Some(Ok(message)) => records.push((
                message.partition(),
                message.offset(),
                message.payload().map(<[u8]>::to_vec),
            )),
            Some(Err(KafkaError::PartitionEOF(partition))) => {
                remaining.remove(&partition);
            }
            Some(Err(error)) => return Err(error),
        }
    }
    Ok(records)
}

/// Inserts a delivery unless the statement id is known; returns 1 if inserted.
async fn record_delivery(
    conn: &mut PgConnection,
    erp_topic: &str,
    statement: &SettlementStatement,
    partition: i32,
    offset: i64,
    recovered: bool,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "INSERT INTO erp_delivery (statement_id, idempotency_key, kind, corrects_statement_id, gsrn,
             month_start, version, total_incl_vat, document, erp_topic, erp_partition, erp_offset, recovered)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
         ON CONFLICT (statement_id) DO NOTHING",
    )
    .bind(&statement.statement_id)
    .bind(&statement.idempotency_key)
    .bind(statement.kind.code())
    .bind(&statement.corrects_statement_id)
    .bind(&statement.gsrn)
    .bind(statement.month_start)
    .bind(statement.version)
    .bind(statement.total_incl_vat)
    .bind(rules::document(statement))
    .bind(erp_topic)
    .bind(partition)
    .bind(offset)
    .bind(recovered)
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}

impl Handler for ErpHandler {
    type Batch = ErpBatch;

    fn sink_label(&self) -> &'static str {
        "erp"
    }

    fn topics(&self) -> Vec<String> {
        vec![self.input_topic.clone()]
    }

    async fn stored_positions(&mut self) -> Result<HashMap<(String, i32), i64>, HandlerError> {
        let consumer = self.consumer.clone();
        let conn = self.connection().await?;
        load_positions(conn, &consumer)
            .await
            .map_err(HandlerError::database)
    }

    async fn add(
        &mut self,
        batch: &mut ErpBatch,
        record: &SourceRecord,
    ) -> Result<usize, HandlerError> {
        let pos = SourcePos::of(record);
        match self
            .codec
            .decode_value(topics::SETTLEMENT_STATEMENTS, record.payload.as_deref())
            .await
        {
            Ok(Some(statement)) => {
                let key = record
                    .idempotency_key
                    .clone()
                    .unwrap_or_else(|| statement.idempotency_key.clone());
                batch.statements.push((statement, pos, key));
                Ok(1)
            }
            Ok(None) => Ok(0),
            Err(e) if e.is_retriable() => Err(HandlerError::Retriable {
                reason: "registry",
                message: e.to_string(),
            }),
            Err(e) => {
                batch.undecodable.push(dead_letter_for(
                    record,
                    COMPONENT,
                    ErrorClass::Undecodable,
                    e.to_string(),
                ));
                Ok(0)
            }
        }
    }

    fn batch_rows(batch: &ErpBatch) -> usize {
        batch.statements.len() + batch.undecodable.len()
    }

    async fn flush(
        &mut self,
        batch: &mut ErpBatch,
        positions: &[Position],
    ) -> Result<FlushReport, HandlerError> {
        if batch.decided.is_none() {
            batch.decided = Some(self.decide(batch).await?);
        }
        let decided = batch.decided.as_mut().expect("decided");
        if decided.published.is_none() {
            let mut letters = decided.rejected.clone();
            letters.extend(batch.undecodable.iter().cloned());
            let published = self.publish(&decided.deliver).await?;
            publish_dead_letters(&self.codec, &self.producer, &letters).await?;
            decided.published = Some(published);
        }
        let published = decided.published.clone().unwrap_or_default();
        let rejected = decided.rejected.len() as u64;
        let duplicates = decided.duplicates;
        let undecodable = batch.undecodable.len() as u64;
        let erp_topic = self.erp_topic.clone();
        let consumer = self.consumer.clone();
        let published_consumer = self.published_consumer();
        let conn = self.connection().await?;
        let result: Result<u64, sqlx::Error> = async {
            let mut tx = conn.begin().await?;
            let mut inserted = 0;
            for p in &published {
                inserted += record_delivery(&mut tx, &erp_topic, &p.statement, p.partition, p.offset, false).await?;
            }
            let keys: Vec<String> = batch.statements.iter().map(|(_, _, k)| k.clone()).collect();
            let topics: Vec<String> = batch.statements.iter().map(|(_, p, _)| p.topic.to_string()).collect();
            let partitions: Vec<i32> = batch.statements.iter().map(|(_, p, _)| p.partition).collect();
            let offsets: Vec<i64> = batch.statements.iter().map(|(_, p, _)| p.offset).collect();
            sqlx::query(
                "INSERT INTO processed_message (consumer, idempotency_key, topic, partition, \"offset\")
                 SELECT $1, k, t, p, o FROM unnest($2::text[], $3::text[], $4::integer[], $5::bigint[]) AS u(k, t, p, o)
                 ON CONFLICT DO NOTHING",
            )
            .bind(&consumer)
            .bind(&keys)
            .bind(&topics)
            .bind(&partitions)
            .bind(&offsets)
            .execute(&mut *tx)
            .await?;
            store_positions(&mut tx, &consumer, positions).await?;
            let mut ends: HashMap<i32, i64> = HashMap::new();
            for p in &published {
                let end = ends.entry(p.partition).or_default();
                *end = (*end).max(p.offset + 1);
            }
            let erp_positions: Vec<Position> = ends
                .into_iter()
                .map(|(partition, next_offset)| Position {
                    topic: erp_topic.as_str().into(),
                    partition,
                    next_offset,
                })
                .collect();
            store_positions(&mut tx, &published_consumer, &erp_positions).await?;
            tx.commit().await?;
            Ok(inserted)
        }
        .await;
        let inserted = match result {
            Ok(inserted) => inserted,
            Err(error) => {
                self.conn = None;
                return Err(HandlerError::database(error));
            }
        };
        let statements = published
            .iter()
            .filter(|p| p.statement.kind == afregning_topology::records::StatementKind::Statement)
            .count() as u64;
        let credit_notes = published.len() as u64 - statements;
        crate::events::erp_published(statements, credit_notes);
        crate::events::dead_letters(self.sink_label(), rejected + undecodable);
        let mut report = FlushReport::default();
        report
            .tables
            .insert("erp_delivery", (published.len() as u64, inserted));
        report.counts.insert("statements_published", statements);
        report.counts.insert("credit_notes_published", credit_notes);
        report.counts.insert("duplicates_skipped", duplicates);
        report.counts.insert("rejected", rejected);
        report.counts.insert("undecodable", undecodable);
        Ok(report)
    }

    fn reset(&mut self) {
        self.conn = None;
    }
}

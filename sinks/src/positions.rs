//! Where a sink has read to, kept in the database beside the data it wrote
//! (docs/decisions/0061): both sinks store a batch's positions in the same
//! transaction as its rows, read them back on start, and hold advisory
//! locks so that a second instance waits as a standby instead of writing the
//! same positions.
//!
//! - [`Position`]: what a batch stores per partition (the next offset to read).
//! - [`SourcePos`]: where one record was read, carried into its rows as
//!   provenance.
//! - [`store_positions`], [`load_positions`]: the `sink_offset` table.
//! - [`lock_consumer`]: one active writer per consumer name.
//! - [`lock_partitions`]: one active writer per consumer name and partition
//!   (the database sink's writer lanes).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use crate::source::SourceRecord;

/// A position to store: the offset after the last record of a partition.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Position {
    /// Full topic name.
    pub topic: Arc<str>,
    /// Partition.
    pub partition: i32,
    /// The next offset to read.
    pub next_offset: i64,
}

/// Where a record was read, and when Kafka received it (the `received_at`
/// provenance of its rows: deterministic for a record, so a replay of the
/// same topic writes the same values).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourcePos {
    /// Full topic name.
    pub topic: Arc<str>,
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// The record's Kafka timestamp (the sink's clock if it has none).
    pub received_at: DateTime<Utc>,
}

impl SourcePos {
    /// Where `record` was read; its Kafka timestamp, or now if it has none.
    pub fn of(record: &SourceRecord) -> Self {
        Self {
            topic: record.topic.clone(),
            partition: record.partition,
            offset: record.offset,
            received_at: record.timestamp.unwrap_or_else(Utc::now),
        }
    }
}

/// Stores positions; never moves one backwards.
pub const POSITIONS_MERGE: &str = "\
INSERT INTO sink_offset (consumer, topic, partition, next_offset)
SELECT $1, t, p, o FROM unnest($2::text[], $3::integer[], $4::bigint[]) AS u(t, p, o)
ON CONFLICT (consumer, topic, partition) DO UPDATE SET
    next_offset = GREATEST(sink_offset.next_offset, excluded.next_offset),
    updated_at = now()";

/// Writes the positions of a batch (same transaction as its data).
pub async fn store_positions(
    conn: &mut PgConnection,
    consumer: &str,
    positions: &[Position],
) -> Result<(), sqlx::Error> {
    let topics: Vec<String> = positions.iter().map(|p| p.topic.to_string()).collect();
    let partitions: Vec<i32> = positions.iter().map(|p| p.partition).collect();
    let offsets: Vec<i64> = positions.iter().map(|p| p.next_offset).collect();
    sqlx::query(POSITIONS_MERGE)
        .bind(consumer)
        .bind(topics)
        .bind(partitions)
        .bind(offsets)
        .execute(conn)
        .await?;
    Ok(())
}

/// Reads a consumer's stored positions.
pub async fn load_positions(
    conn: &mut PgConnection,
    consumer: &str,
) -> Result<HashMap<(String, i32), i64>, sqlx::Error> {
    let rows: Vec<(String, i32, i64)> =
        sqlx::query_as("SELECT topic, partition, next_offset FROM sink_offset WHERE consumer = $1")
            .bind(consumer)
            .fetch_all(conn)
            .await?;
    Ok(rows.into_iter().map(|(t, p, o)| ((t, p), o)).collect())
}

/// Takes the consumer's session-level advisory lock, waiting while another
/// instance holds it: one active writer per consumer name, the rest standby.
pub async fn lock_consumer(conn: &mut PgConnection, consumer: &str) -> Result<(), sqlx::Error> {
    let mut waited = Duration::ZERO;
    loop {
        let locked: bool = sqlx::query_scalar(
            "SELECT pg_try_advisory_lock(hashtext('afregning.sink:' || $1)::bigint)",
        )
        .bind(consumer)
        .fetch_one(&mut *conn)
        .await?;
        if locked {
            return Ok(());
        }
        if waited.as_secs().is_multiple_of(30) {
            tracing::info!(
                consumer,
                "another instance holds this sink's lock; waiting as standby"
            );
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        waited += Duration::from_secs(1);
    }
}

/// Takes the locks of a writer lane that owns `partitions` of `consumer`'s
/// topics, waiting while another instance holds any of them: a shared hold on
/// the consumer's lock (so a whole-consumer writer, [`lock_consumer`], and a
/// lane exclude each other) and an exclusive lock per partition number (so
/// two lanes, of this process or of another configured with another lane
/// count, never write the same partition). All or nothing: a lane that gets
/// only some of them releases those and waits, so two lanes cannot hold each
/// other's halves.
pub async fn lock_partitions(
    conn: &mut PgConnection,
    consumer: &str,
    partitions: &[i32],
) -> Result<(), sqlx::Error> {
    let mut waited = Duration::ZERO;
    loop {
        if try_lock_partitions(conn, consumer, partitions).await? {
            return Ok(());
        }
        if waited.as_secs().is_multiple_of(30) {
            tracing::info!(
                consumer,
                ?partitions,
                "another instance holds these partitions' locks; waiting as standby"
            );
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        waited += Duration::from_secs(1);
    }
}

/// One attempt of [`lock_partitions`]: `true` with every lock held, or
/// `false` with none of them held.
pub async fn try_lock_partitions(
    conn: &mut PgConnection,
    consumer: &str,
    partitions: &[i32],
) -> Result<bool, sqlx::Error> {
    let shared: bool = sqlx::query_scalar(
        "SELECT pg_try_advisory_lock_shared(hashtext('afregning.sink:' || $1)::bigint)",
    )
    .bind(consumer)
    .fetch_one(&mut *conn)
    .await?;
    if !shared {
        return Ok(false);
    }
    let mut held = Vec::with_capacity(partitions.len());
    for &partition in partitions {
        let locked: bool = sqlx::query_scalar(
            "SELECT pg_try_advisory_lock(hashtext('afregning.sink:' || $1), $2)",
        )
        .bind(consumer)
        .bind(partition)
        .fetch_one(&mut *conn)
        .await?;
        if !locked {
            for &partition in &held {
                sqlx::query("SELECT pg_advisory_unlock(hashtext('afregning.sink:' || $1), $2)")
                    .bind(consumer)
                    .bind(partition)
                    .execute(&mut *conn)
                    .await?;
            }
            sqlx::query(
                "SELECT pg_advisory_unlock_shared(hashtext('afregning.sink:' || $1)::bigint)",
            )
            .bind(consumer)
            .execute(&mut *conn)
            .await?;
            return Ok(false);
        }
        held.push(partition);
    }
    Ok(true)
}

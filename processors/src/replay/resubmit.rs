//! Re-submitting resolved dead letters as a recorded run (kind
//! `dead-letters`): which dead letters may go, recording the run, producing
//! each record again to its source topic and partition, and recording where
//! it landed (`replay_resubmission`). `afregning replay dead-letters` and
//! `POST /v1/dead-letters/resubmit` share it; the record itself is built by
//! [`super::dead_letters::resubmission`].
//!
//! Only resolved dead letters go: resolving is the operator's statement that
//! the cause is fixed (decision 0064's procedure). One an earlier run already
//! re-submitted is refused when named (skipped when selected by reason)
//! unless `again`.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chrono::Utc;
use rdkafka::ClientConfig;
use rdkafka::consumer::BaseConsumer;
use rdkafka::message::{Header, OwnedHeaders, OwnedMessage};
use rdkafka::producer::{FutureProducer, FutureRecord};
use sqlx::{PgConnection, Row};

use super::dead_letters::{DeadLetterId, LetterCopy, Resubmission, resubmission};
use super::offsets::{PartitionReader, reader_consumer};
use super::runs::{self, RunError};

/// How long the broker has for one read or one acknowledgement.
const BROKER_TIMEOUT: Duration = Duration::from_secs(30);

/// Which dead letters to re-submit.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// These, by id; each must exist and be resolved.
    pub ids: Vec<DeadLetterId>,
    /// And every resolved one whose reason contains this text.
    pub reason_contains: Option<String>,
    /// Also those an earlier run re-submitted.
    pub again: bool,
}

/// One dead letter as the sink stored it.
#[derive(Debug, Clone)]
pub struct Letter {
    /// Where the record was.
    pub id: DeadLetterId,
    /// The component that gave up on it.
    pub component: String,
    copy: LetterCopy,
}

const SELECT: &str = "SELECT d.source_topic, d.source_partition, d.source_offset, d.component, \
     d.resolved, d.source_key, d.payload, d.source_message_id, \
     EXISTS (SELECT 1 FROM replay_resubmission r WHERE r.source_topic = d.source_topic \
       AND r.source_partition = d.source_partition AND r.source_offset = d.source_offset) \
       AS resubmitted_before \
     FROM dead_letter d";

fn letter(row: &sqlx::postgres::PgRow) -> Result<(Letter, bool, bool), RunError> {
    Ok((
        Letter {
            id: DeadLetterId {
                topic: row.try_get("source_topic")?,
                partition: row.try_get("source_partition")?,
                offset: row.try_get("source_offset")?,
            },
            component: row.try_get("component")?,
            copy: LetterCopy {
                key: row.try_get("source_key")?,
                payload: row.try_get("payload")?,
                message_id: row.try_get("source_message_id")?,
            },
        },
        row.try_get("resolved")?,
        row.try_get("resubmitted_before")?,
    ))
}

/// The dead letters `selection` names; refuses one named that does not exist
/// (`NotFound`), is not resolved or was re-submitted before (`Refused`).
pub async fn select(
    conn: &mut PgConnection,
    selection: &Selection,
) -> Result<Vec<Letter>, RunError> {
    let mut out: Vec<Letter> = Vec::new();
    for id in &selection.ids {
        let row = sqlx::query(&format!(
            "{SELECT} WHERE d.source_topic = $1 AND d.source_partition = $2 AND d.source_offset = $3"
        ))
        .bind(&id.topic)
        .bind(id.partition)
        .bind(id.offset)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| RunError::NotFound(format!("no dead letter {id}")))?;
        let (letter, resolved, before) = letter(&row)?;
        if !resolved {
            return Err(RunError::Refused(format!(
                "dead letter {id} is not resolved: fix the cause and mark it resolved first"
            )));
        }
        if before && !selection.again {
            return Err(RunError::Refused(format!(
                "dead letter {id} was re-submitted before (see the replay runs); ask again to send it once more"
            )));
        }
        if !out.iter().any(|l| l.id == letter.id) {
            out.push(letter);
        }
    }
    if let Some(reason) = &selection.reason_contains {
        let rows = sqlx::query(&format!(
            "{SELECT} WHERE d.resolved AND strpos(d.reason, $1) > 0 \
             ORDER BY d.source_topic, d.source_partition, d.source_offset"
        ))
        .bind(reason)
        .fetch_all(&mut *conn)
        .await?;
        for row in &rows {
            let (letter, _, before) = letter(row)?;
            if (selection.again || !before) && !out.iter().any(|l| l.id == letter.id) {
                out.push(letter);
            }
        }
    }
    Ok(out)
}

/// Records a dead-letter run of `letters` as `running` (who, why, which).
pub async fn record_start(
    conn: &mut PgConnection,
    run_id: &str,
    operator: &str,
    why: &str,
    letters: &[Letter],
    dry_run: bool,
) -> Result<(), RunError> {
    let components: BTreeSet<&str> = letters.iter().map(|l| l.component.as_str()).collect();
    let partitions: BTreeSet<i32> = letters.iter().map(|l| l.id.partition).collect();
    let ids: Vec<String> = letters.iter().map(|l| l.id.to_string()).collect();
    sqlx::query(
        "INSERT INTO replay_run (run_id, kind, operator, reason, processor, partitions, \
         start_offsets, end_offsets, dry_run, state, started_at) \
         VALUES ($1, 'dead-letters', $2, $3, $4, $5, $6, '{}', $7, 'running', $8)",
    )
    .bind(run_id)
    .bind(operator)
    .bind(why)
    .bind(components.into_iter().collect::<Vec<_>>().join(","))
    .bind(partitions.into_iter().collect::<Vec<i32>>())
    .bind(serde_json::json!({ "dead_letters": ids }))
    .bind(dry_run)
    .bind(Utc::now())
    .execute(conn)
    .await?;
    Ok(())
}

/// What became of one dead letter in a run.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct Resubmitted {
    /// The dead letter (`topic/partition/offset` of its source record).
    pub dead_letter: String,
    /// The topic it went (or, in a dry run, would go) to.
    pub topic: String,
    /// Its partition (the one it came from).
    pub partition: i32,
    /// Its new offset (`None` in a dry run).
    pub offset: Option<i64>,
    /// Copied from the source topic; `false`: the source record was gone and
    /// the dead letter's own copy of key and value went.
    pub from_source: bool,
}

/// Reads each letter's source record, produces it again (not in a dry run),
/// records where each landed and ends the run `done`. When the broker fails
/// the run ends `failed` with what landed before; the error is returned.
pub async fn resubmit(
    conn: &mut PgConnection,
    client: &ClientConfig,
    run_id: &str,
    letters: &[Letter],
    dry_run: bool,
) -> Result<Vec<Resubmitted>, RunError> {
    let ids: Vec<DeadLetterId> = letters.iter().map(|l| l.id.clone()).collect();
    let found = {
        let (client, ids) = (client.clone(), ids.clone());
        tokio::task::spawn_blocking(move || originals(&client, &ids)).await?
    };
    let found = match found {
        Ok(found) => found,
        Err(error) => return fail(conn, run_id, &[], error).await,
    };
    let records: Vec<Resubmission> = letters
        .iter()
        .map(|l| resubmission(&l.id, found.get(&l.id), &l.copy, run_id))
        .collect();
    let mut out: Vec<Resubmitted> = records
        .iter()
        .zip(&ids)
        .map(|(r, id)| Resubmitted {
            dead_letter: id.to_string(),
            topic: r.topic.clone(),
            partition: r.partition,
            offset: None,
            from_source: r.from_source,
        })
        .collect();
    let (landed, error) = if dry_run {
        (Vec::new(), None)
    } else {
        produce(client, &records).await
    };
    for ((done, id), (partition, offset)) in out.iter_mut().zip(&ids).zip(&landed) {
        sqlx::query(
            "INSERT INTO replay_resubmission (run_id, source_topic, source_partition, \
             source_offset, resubmitted_partition, resubmitted_offset, from_source) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(run_id)
        .bind(&id.topic)
        .bind(id.partition)
        .bind(id.offset)
        .bind(partition)
        .bind(offset)
        .bind(done.from_source)
        .execute(&mut *conn)
        .await?;
        done.partition = *partition;
        done.offset = Some(*offset);
    }
    let landed_count = landed.len();
    if let Some(error) = error {
        return fail(conn, run_id, &out[..landed_count], error).await;
    }
    runs::finish(
        conn,
        run_id,
        "done",
        &serde_json::json!({ "resubmitted": out }),
        None,
        None,
    )
    .await?;
    Ok(out)
}

async fn fail<T>(
    conn: &mut PgConnection,
    run_id: &str,
    landed: &[Resubmitted],
    error: RunError,
) -> Result<T, RunError> {
    runs::finish(
        conn,
        run_id,
        "failed",
        &serde_json::json!({ "resubmitted": landed }),
        None,
        Some(&error.to_string()),
    )
    .await?;
    Err(error)
}

/// The source records still on their topics, by id (blocking).
fn originals(
    client: &ClientConfig,
    ids: &[DeadLetterId],
) -> Result<BTreeMap<DeadLetterId, OwnedMessage>, RunError> {
    let consumer: BaseConsumer =
        reader_consumer(client).map_err(|e| RunError::Broker(e.to_string()))?;
    let mut out = BTreeMap::new();
    let partitions: BTreeSet<(&str, i32)> = ids
        .iter()
        .map(|i| (i.topic.as_str(), i.partition))
        .collect();
    for (topic, partition) in partitions {
        let reader = PartitionReader::new(&consumer, topic, partition, BROKER_TIMEOUT);
        let bounds = reader.bounds()?;
        for id in ids
            .iter()
            .filter(|i| i.topic == topic && i.partition == partition)
        {
            if id.offset < bounds.low {
                continue;
            }
            if let Some(message) = reader.record_at(id.offset, bounds)? {
                out.insert(id.clone(), message);
            }
        }
    }
    Ok(out)
}

/// Produces `records` one at a time in order (a partition's records keep
/// their order); where each landed, and the error that stopped it, if any.
async fn produce(
    client: &ClientConfig,
    records: &[Resubmission],
) -> (Vec<(i32, i64)>, Option<RunError>) {
    let mut out = Vec::new();
    let producer: FutureProducer = match client
        .clone()
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .create()
    {
        Ok(producer) => producer,
        Err(e) => return (out, Some(RunError::Broker(e.to_string()))),
    };
    for r in records {
        let mut headers = OwnedHeaders::new();
        for (key, value) in &r.headers {
            headers = headers.insert(Header {
                key,
                value: Some(value.as_slice()),
            });
        }
        let mut record: FutureRecord<'_, Vec<u8>, Vec<u8>> = FutureRecord::to(&r.topic)
            .partition(r.partition)
            .headers(headers);
        if let Some(key) = &r.key {
            record = record.key(key);
        }
        if let Some(value) = &r.value {
            record = record.payload(value);
        }
        match producer.send(record, BROKER_TIMEOUT).await {
            Ok(delivered) => out.push((delivered.partition, delivered.offset)),
            Err((e, _)) => {
                let error =
                    RunError::Broker(format!("producing to {}[{}]: {e}", r.topic, r.partition));
                return (out, Some(error));
            }
        }
    }
    (out, None)
}

//! `afregning replay dead-letters`: re-submit resolved dead letters to the
//! topic and partition they came from, recorded as a replay run (kind
//! `dead-letters`) with one `replay_resubmission` row per record.
//!
//! Only resolved dead letters go: resolving is the operator's statement that
//! the cause is fixed (decision 0064's procedure). A dead letter an earlier run
//! already re-submitted is skipped (named with `--id`: refused) unless
//! `--again`. The record is copied from the source topic with its headers
//! where it is still there (see `afregning_processors::replay::dead_letters`).

use std::collections::{BTreeMap, BTreeSet};
use std::process::ExitCode;
use std::time::Duration;

use afregning_processors::replay::dead_letters::{
    DeadLetterId, LetterCopy, Resubmission, resubmission,
};
use afregning_processors::replay::offsets::PartitionReader;
use anyhow::Context;
use chrono::Utc;
use clap::Args as ClapArgs;
use rdkafka::ClientConfig;
use rdkafka::consumer::BaseConsumer;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use sqlx::{PgConnection, Row};

use super::runs;
use crate::cli::common::StackArgs;

/// Arguments of `afregning replay dead-letters`.
#[derive(Debug, ClapArgs)]
#[command(group(clap::ArgGroup::new("which").required(true).args(["ids", "reason"])))]
pub struct DeadLetterArgs {
    /// A dead letter by its id, `TOPIC/PARTITION/OFFSET` of the record that failed (repeatable).
    #[arg(long = "id")]
    pub ids: Vec<DeadLetterId>,
    /// Every resolved dead letter whose reason contains this text.
    #[arg(long)]
    pub reason: Option<String>,
    /// Why (recorded with the run; default: what was selected).
    #[arg(long)]
    pub why: Option<String>,
    /// Who (recorded with the run).
    #[arg(long, env = "AFREGNING_OPERATOR")]
    pub operator: Option<String>,
    /// Re-submit dead letters an earlier run already re-submitted.
    #[arg(long)]
    pub again: bool,
    /// List what would be re-submitted; produce nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Where the stack is.
    #[command(flatten)]
    pub stack: StackArgs,
}

/// One dead letter as the sink stored it.
struct Letter {
    id: DeadLetterId,
    component: String,
    resolved: bool,
    copy: LetterCopy,
    resubmitted_before: bool,
}

const SELECT: &str = "SELECT d.source_topic, d.source_partition, d.source_offset, d.component, \
     d.resolved, d.source_key, d.payload, d.source_message_id, \
     EXISTS (SELECT 1 FROM replay_resubmission r WHERE r.source_topic = d.source_topic \
       AND r.source_partition = d.source_partition AND r.source_offset = d.source_offset) \
       AS resubmitted_before \
     FROM dead_letter d";

fn letter(row: &sqlx::postgres::PgRow) -> anyhow::Result<Letter> {
    Ok(Letter {
        id: DeadLetterId {
            topic: row.try_get("source_topic")?,
            partition: row.try_get("source_partition")?,
            offset: row.try_get("source_offset")?,
        },
        component: row.try_get("component")?,
        resolved: row.try_get("resolved")?,
        copy: LetterCopy {
            key: row.try_get("source_key")?,
            payload: row.try_get("payload")?,
            message_id: row.try_get("source_message_id")?,
        },
        resubmitted_before: row.try_get("resubmitted_before")?,
    })
}

/// The dead letters the arguments select; refuses ids that cannot go.
async fn select(conn: &mut PgConnection, args: &DeadLetterArgs) -> anyhow::Result<Vec<Letter>> {
    let mut out = Vec::new();
    for id in &args.ids {
        let row = sqlx::query(&format!(
            "{SELECT} WHERE d.source_topic = $1 AND d.source_partition = $2 AND d.source_offset = $3"
        ))
        .bind(&id.topic)
        .bind(id.partition)
        .bind(id.offset)
        .fetch_optional(&mut *conn)
        .await?
        .with_context(|| format!("no dead letter {id}"))?;
        let letter = letter(&row)?;
        anyhow::ensure!(
            letter.resolved,
            "dead letter {id} is not resolved: fix the cause and mark it resolved first"
        );
        anyhow::ensure!(
            args.again || !letter.resubmitted_before,
            "dead letter {id} was re-submitted before (see `afregning replay status`); --again to send it once more"
        );
        out.push(letter);
    }
    if let Some(reason) = &args.reason {
        let rows = sqlx::query(&format!(
            "{SELECT} WHERE d.resolved AND strpos(d.reason, $1) > 0 \
             ORDER BY d.source_topic, d.source_partition, d.source_offset"
        ))
        .bind(reason)
        .fetch_all(&mut *conn)
        .await?;
        for row in &rows {
            let letter = letter(row)?;
            if (args.again || !letter.resubmitted_before)
                && !out.iter().any(|l: &Letter| l.id == letter.id)
            {
                out.push(letter);
            }
        }
    }
    Ok(out)
}

/// The source records still on their topics, by id (blocking).
fn originals(
    client: &ClientConfig,
    ids: &[DeadLetterId],
) -> anyhow::Result<BTreeMap<DeadLetterId, rdkafka::message::OwnedMessage>> {
    let consumer: BaseConsumer = afregning_processors::replay::offsets::reader_consumer(client)?;
    let mut out = BTreeMap::new();
    let partitions: BTreeSet<(&str, i32)> = ids
        .iter()
        .map(|i| (i.topic.as_str(), i.partition))
        .collect();
    for (topic, partition) in partitions {
        let reader = PartitionReader::new(&consumer, topic, partition, Duration::from_secs(30));
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

/// Produces `records`; returns where each landed (partition, offset).
async fn produce(
    client: &ClientConfig,
    records: &[Resubmission],
) -> anyhow::Result<Vec<(i32, i64)>> {
    let producer: FutureProducer = client
        .clone()
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .create()?;
    let mut out = Vec::new();
    // One at a time, in the order of the source offsets: a partition's records keep their order.
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
        let delivered = producer
            .send(record, Duration::from_secs(30))
            .await
            .map_err(|(e, _)| e)
            .with_context(|| format!("producing to {}[{}]", r.topic, r.partition))?;
        out.push((delivered.partition, delivered.offset));
    }
    Ok(out)
}

/// `afregning replay dead-letters`.
pub async fn run(args: DeadLetterArgs) -> anyhow::Result<ExitCode> {
    let operator = runs::operator(args.operator.as_deref())?;
    let mut conn = runs::connect(&args.stack).await?;
    let letters = select(&mut conn, &args).await?;
    if letters.is_empty() {
        println!("no resolved dead letter to re-submit");
        return Ok(ExitCode::SUCCESS);
    }
    let ids: Vec<DeadLetterId> = letters.iter().map(|l| l.id.clone()).collect();
    let why = args.why.clone().unwrap_or_else(|| match &args.reason {
        Some(reason) => format!("re-submit resolved dead letters whose reason contains {reason:?}"),
        None => "re-submit resolved dead letters".to_string(),
    });
    let run_id = super::start::new_run_id();
    let components: BTreeSet<&str> = letters.iter().map(|l| l.component.as_str()).collect();
    let partitions: BTreeSet<i32> = letters.iter().map(|l| l.id.partition).collect();
    sqlx::query(
        "INSERT INTO replay_run (run_id, kind, operator, reason, processor, partitions, \
         start_offsets, end_offsets, dry_run, state, started_at) \
         VALUES ($1, 'dead-letters', $2, $3, $4, $5, $6, '{}', $7, 'running', $8)",
    )
    .bind(&run_id)
    .bind(&operator)
    .bind(&why)
    .bind(components.into_iter().collect::<Vec<_>>().join(","))
    .bind(partitions.into_iter().collect::<Vec<i32>>())
    .bind(serde_json::json!({ "dead_letters": ids.iter().map(ToString::to_string).collect::<Vec<_>>() }))
    .bind(args.dry_run)
    .bind(Utc::now())
    .execute(&mut conn)
    .await
    .context("recording the run")?;

    let client = {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &args.stack.bootstrap_servers);
        c
    };
    let found = {
        let (client, ids) = (client.clone(), ids.clone());
        tokio::task::spawn_blocking(move || originals(&client, &ids)).await?
    };
    let found = match found {
        Ok(found) => found,
        Err(error) => return fail(&mut conn, &run_id, error).await,
    };
    let records: Vec<Resubmission> = letters
        .iter()
        .map(|l| resubmission(&l.id, found.get(&l.id), &l.copy, &run_id))
        .collect();
    let landed = if args.dry_run {
        Vec::new()
    } else {
        match produce(&client, &records).await {
            Ok(landed) => landed,
            Err(error) => return fail(&mut conn, &run_id, error).await,
        }
    };
    let mut lines = Vec::new();
    for (i, r) in records.iter().enumerate() {
        let id = &ids[i];
        match landed.get(i) {
            Some((partition, offset)) => {
                sqlx::query(
                    "INSERT INTO replay_resubmission (run_id, source_topic, source_partition, \
                     source_offset, resubmitted_partition, resubmitted_offset, from_source) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(&run_id)
                .bind(&id.topic)
                .bind(id.partition)
                .bind(id.offset)
                .bind(partition)
                .bind(offset)
                .bind(r.from_source)
                .execute(&mut conn)
                .await?;
                lines.push(serde_json::json!({
                    "dead_letter": id.to_string(), "partition": partition, "offset": offset,
                    "from_source": r.from_source,
                }));
                println!(
                    "{id} -> {}[{partition}] offset {offset}{}",
                    r.topic,
                    if r.from_source {
                        ""
                    } else {
                        " (from the dead letter's copy: the source record is gone)"
                    }
                );
            }
            None => {
                lines.push(serde_json::json!({ "dead_letter": id.to_string(), "from_source": r.from_source }));
                println!("{id} would go to {}[{}] (dry run)", r.topic, r.partition);
            }
        }
    }
    sqlx::query(
        "UPDATE replay_run SET state = 'done', ended_at = now(), reports = $2 WHERE run_id = $1",
    )
    .bind(&run_id)
    .bind(serde_json::json!({ "resubmitted": lines }))
    .execute(&mut conn)
    .await?;
    eprintln!(
        "replay {run_id}: {} dead letters {}",
        records.len(),
        if args.dry_run {
            "would be re-submitted"
        } else {
            "re-submitted"
        }
    );
    Ok(ExitCode::SUCCESS)
}

async fn fail(
    conn: &mut PgConnection,
    run_id: &str,
    error: anyhow::Error,
) -> anyhow::Result<ExitCode> {
    runs::finish(
        conn,
        run_id,
        "failed",
        &serde_json::json!({}),
        None,
        Some(format!("{error:#}").as_str()),
    )
    .await?;
    Err(error)
}

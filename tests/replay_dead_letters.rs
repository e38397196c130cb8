//! `afregning replay dead-letters` on the real broker and database.
//!
//! Two raw DataHub records validate cannot read are dead-lettered and land in
//! the sink's `dead_letter` table. Then:
//! - an unresolved dead letter is refused;
//! - once resolved, `--id` re-submits it to the topic and partition it came
//!   from: key, value and the original headers (the MessageId) copied from the
//!   source record, plus where it came from and the run; the run is recorded
//!   (kind `dead-letters`, who, why) with the record's new offset;
//! - the same dead letter again is refused without `--again`;
//! - `--reason` selects the resolved dead letters whose reason contains the
//!   text and that no run re-submitted yet;
//! - validate reads the re-submitted records instead of dropping them as
//!   duplicates of a MessageId it has seen: the cause is not fixed here (the
//!   bytes are still unreadable), so each is dead-lettered again at its new
//!   offset, which only happens if validate processed it.

mod replay_support;
mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use afregning_processors::pipeline;
use afregning_processors::replay::dead_letters::{RESUBMISSION_RUN, RESUBMITTED_FROM};
use afregning_processors::replay::offsets::{PartitionReader, reader_consumer};
use afregning_testkit::TestEnv;
use afregning_topology::{Codec, raw_headers, topics};
use anyhow::Context;
use rdkafka::Message;
use rdkafka::message::{Header, Headers, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use replay_support::{newest_run, replay_cli};
use sqlx::Row;

const PARTITIONS: u32 = 3;

/// The dead letters in the sink: source offset → (partition, reason, resolved).
async fn dead_letters(
    pool: &sqlx::PgPool,
    topic: &str,
) -> anyhow::Result<BTreeMap<(i32, i64), (String, bool)>> {
    let rows = sqlx::query(
        "SELECT source_partition, source_offset, reason, resolved FROM dead_letter \
         WHERE source_topic = $1",
    )
    .bind(topic)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok((
                (r.try_get("source_partition")?, r.try_get("source_offset")?),
                (r.try_get("reason")?, r.try_get("resolved")?),
            ))
        })
        .collect()
}

async fn resolve(pool: &sqlx::PgPool, topic: &str, at: (i32, i64)) -> anyhow::Result<()> {
    sqlx::query(
        "UPDATE dead_letter SET resolved = true, resolved_by = 'test', resolved_at = now(), \
         resolution_note = 'cause fixed' \
         WHERE source_topic = $1 AND source_partition = $2 AND source_offset = $3",
    )
    .bind(topic)
    .bind(at.0)
    .bind(at.1)
    .execute(pool)
    .await?;
    Ok(())
}

/// The processors, then the sinks, until both caught up.
async fn process(
    topics: &afregning_processors::shared::Topics,
    settings: &pipeline::PipelineSettings,
    sink: &afregning_sinks::config::SinkConfig,
) -> anyhow::Result<()> {
    pipeline::run_until_caught_up(
        topics.clone(),
        settings.clone(),
        Duration::from_secs(2),
        Duration::from_secs(120),
    )
    .await?;
    afregning_sinks::run_until_caught_up(sink).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn resolved_dead_letters_go_back_to_their_topic_as_a_recorded_run() -> anyhow::Result<()> {
    afregning_testkit::init_logging();
    let env = TestEnv::start("replay-dead-letters").await?;
    let catalogue = support::deployment(&env, &env.namespace, PARTITIONS).await?;
    let codec = Codec::new(catalogue.clone(), &env.registry_url);
    let topics = pipeline::topics(catalogue.clone(), &codec).await?;
    let raw = topics.name(topics::TIMESERIES_RAW);

    // Two documents validate cannot read, with DataHub's MessageId headers.
    let producer: FutureProducer = env.kafka_config().create()?;
    for (id, payload) in [
        ("m-bad-1", "this is not JSON"),
        ("m-bad-2", r#"{"no": "document"}"#),
    ] {
        let headers = OwnedHeaders::new()
            .insert(Header {
                key: raw_headers::MESSAGE_ID,
                value: Some(id),
            })
            .insert(Header {
                key: raw_headers::QUEUE,
                value: Some("timeseries"),
            });
        producer
            .send(
                FutureRecord::to(&raw)
                    .partition(1)
                    .key(id)
                    .payload(payload)
                    .headers(headers),
                Duration::from_secs(10),
            )
            .await
            .map_err(|(e, _)| e)?;
    }
    let work = tempfile::tempdir()?;
    let settings = support::pipeline_settings(
        &env,
        &env.namespace,
        &work.path().join("state"),
        "5790000000005",
    );
    let sink = replay_support::sink_config(&env, &env.namespace, PARTITIONS);
    process(&topics, &settings, &sink).await?;
    let pool = env.pg_pool().await?;
    let letters = dead_letters(&pool, &raw).await?;
    assert_eq!(letters.len(), 2, "{letters:?}");
    let mut places = letters.keys().copied();
    let (first, second) = (
        places.next().expect("first"),
        places.next().expect("second"),
    );
    let id = |at: (i32, i64)| format!("{raw}/{}/{}", at.0, at.1);
    let replay = |args: &[&str]| replay_cli(&env, &env.namespace, PARTITIONS, args);

    // Unresolved: refused, nothing recorded.
    let output = replay(&["dead-letters", "--id", &id(first)])?;
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("is not resolved"));
    let runs: i64 = sqlx::query_scalar("SELECT count(*) FROM replay_run")
        .fetch_one(&pool)
        .await?;
    assert_eq!(runs, 0);

    // Resolved: re-submitted, recorded.
    resolve(&pool, &raw, first).await?;
    let output = replay(&[
        "dead-letters",
        "--id",
        &id(first),
        "--why",
        "validate fixed",
    ])?;
    assert!(output.status.success());
    let run_id = newest_run(&pool).await?;
    let row = sqlx::query(
        "SELECT kind, state, operator, reason, partitions FROM replay_run WHERE run_id = $1",
    )
    .bind(&run_id)
    .fetch_one(&pool)
    .await?;
    assert_eq!(row.try_get::<String, _>("kind")?, "dead-letters");
    assert_eq!(row.try_get::<String, _>("state")?, "done");
    assert_eq!(row.try_get::<String, _>("operator")?, "test-operator");
    assert_eq!(row.try_get::<String, _>("reason")?, "validate fixed");
    assert_eq!(row.try_get::<Vec<i32>, _>("partitions")?, vec![first.0]);
    let resubmitted: Vec<(i32, i64, bool)> = sqlx::query(
        "SELECT resubmitted_partition, resubmitted_offset, from_source FROM replay_resubmission \
         WHERE run_id = $1 AND source_topic = $2 AND source_partition = $3 AND source_offset = $4",
    )
    .bind(&run_id)
    .bind(&raw)
    .bind(first.0)
    .bind(first.1)
    .fetch_all(&pool)
    .await?
    .iter()
    .map(|r| {
        Ok((
            r.try_get("resubmitted_partition")?,
            r.try_get("resubmitted_offset")?,
            r.try_get("from_source")?,
        ))
    })
    .collect::<anyhow::Result<_>>()?;
    assert_eq!(resubmitted.len(), 1);
    let (partition, offset, from_source) = resubmitted[0];
    assert_eq!(partition, first.0, "back to the partition it came from");
    assert!(offset > first.1 && from_source);

    // The record on the topic: the original's key, value and headers, and the marks.
    let consumer = reader_consumer(&env.kafka_config())?;
    let reader = PartitionReader::new(&consumer, &raw, first.0, Duration::from_secs(20));
    let bounds = reader.bounds()?;
    let original = reader.record_at(first.1, bounds)?.context("the original")?;
    let copy = reader.record_at(offset, bounds)?.context("the copy")?;
    assert_eq!(copy.key(), original.key());
    assert_eq!(copy.payload(), original.payload());
    let header = |m: &rdkafka::message::OwnedMessage, name: &str| {
        m.headers().and_then(|h| {
            h.iter()
                .find(|x| x.key == name)
                .map(|x| String::from_utf8_lossy(x.value.unwrap_or_default()).to_string())
        })
    };
    for name in [raw_headers::MESSAGE_ID, raw_headers::QUEUE] {
        assert!(header(&original, name).is_some(), "{name}");
        assert_eq!(header(&copy, name), header(&original, name), "{name}");
    }
    assert_eq!(header(&copy, RESUBMITTED_FROM), Some(id(first)));
    assert_eq!(header(&copy, RESUBMISSION_RUN), Some(run_id.clone()));
    // Closed before the clean-up deletes the topic: librdkafka 2.12 crashes on a
    // deleted topic in its metadata cache (a null topic name).
    drop(reader);
    drop(consumer);
    drop(producer);

    // Twice: refused without --again.
    let output = replay(&["dead-letters", "--id", &id(first)])?;
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("re-submitted before"));

    // By reason: the resolved ones not re-submitted yet.
    resolve(&pool, &raw, second).await?;
    let (first_reason, second_reason) = (&letters[&first].0, &letters[&second].0);
    assert!(
        !first_reason.contains(second_reason.as_str()),
        "the reasons must tell the two apart: {first_reason:?} / {second_reason:?}"
    );
    let output = replay(&["dead-letters", "--reason", second_reason])?;
    assert!(output.status.success());
    let by_reason = newest_run(&pool).await?;
    assert_ne!(by_reason, run_id);
    let sent: Vec<i64> = sqlx::query_scalar(
        "SELECT source_offset FROM replay_resubmission WHERE run_id = $1 ORDER BY source_offset",
    )
    .bind(&by_reason)
    .fetch_all(&pool)
    .await?;
    assert_eq!(sent, vec![second.1]);
    let output = replay(&["dead-letters", "--reason", second_reason])?;
    assert!(output.status.success());
    assert!(String::from_utf8_lossy(&output.stdout).contains("no resolved dead letter"));

    // validate read them again (not dropped as seen MessageIds): dead-lettered anew.
    process(&topics, &settings, &sink).await?;
    let letters = dead_letters(&pool, &raw).await?;
    assert_eq!(
        letters.len(),
        4,
        "each re-submission is dead-lettered again at its new offset: {letters:?}"
    );
    let output = replay(&["status", &run_id])?;
    assert!(
        String::from_utf8_lossy(&output.stdout).contains(&format!("{} -> partition", id(first)))
    );
    pool.close().await;
    env.cleanup().await?;
    Ok(())
}

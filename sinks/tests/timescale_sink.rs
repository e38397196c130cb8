//! The database sink end to end on the real broker, registry and PostgreSQL:
//! the tables match the topics exactly (row counts, per-month sums per
//! component), a replay of the same input changes nothing (neither
//! re-produced duplicates nor a re-read from the beginning), positions are
//! stored with the data, and a record the sink cannot decode becomes a dead
//! letter exactly once. The writer lanes (`writers`, default 2) are varied
//! between the runs: positions are per partition, so any lane count picks up
//! where another left off.

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;

use afregning_sinks::{RunMode, SinkConfig, SinkStatus, run_timescale, schema};
use afregning_testkit::TestEnv;
use afregning_topology::topics;
use rdkafka::producer::FutureRecord;
use support::{Figures, Scenario, Topology, sink_config};

/// A fingerprint of a table's whole content, to prove a replay changed no row.
async fn fingerprint(conn: &mut sqlx::PgConnection, table: &str) -> String {
    sqlx::query_scalar(&format!(
        "SELECT coalesce(md5(string_agg(t::text, '|' ORDER BY t::text)), '') FROM {table} t"
    ))
    .fetch_one(conn)
    .await
    .unwrap()
}

const TABLES: &[&str] = &[
    "metering_series",
    "metering_data",
    "daily_summary",
    "metering_point",
    "metering_point_history",
    "settlement_version",
    "settlement_line",
    "settlement_statement",
    "settlement_statement_line",
    "dead_letter",
];

async fn fingerprints(conn: &mut sqlx::PgConnection) -> BTreeMap<&'static str, String> {
    let mut out = BTreeMap::new();
    for table in TABLES {
        out.insert(*table, fingerprint(conn, table).await);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_tables_match_the_topics_and_a_replay_changes_nothing() {
    let env = TestEnv::start("sink_e2e").await.unwrap();
    let topology = Topology::apply(&env).await;
    let scenario = Scenario::generate(30, 5);
    scenario.produce(&topology).await;
    let config = sink_config(&env);
    let expected = scenario.expected().normalized();

    let first = run_timescale(
        &config,
        RunMode::UntilCaughtUp,
        Arc::new(SinkStatus::default()),
        std::future::pending(),
    )
    .await
    .unwrap();
    assert_eq!(
        first.report.records as usize,
        scenario.records()
            + scenario
                .metering_points
                .iter()
                .filter(|(_, v, _)| v.is_none())
                .count()
    );
    let mut conn = schema::connect(&env.database_url, "test").await.unwrap();
    let figures = Figures::read(&mut conn).await;
    assert_eq!(figures, expected);
    assert!(
        expected.counts["metering_data"] > 10_000,
        "a meaningful volume"
    );
    assert_eq!(
        expected
            .sums
            .keys()
            .filter(|k| k.starts_with("metering_data.2026-"))
            .count(),
        2,
        "the readings span two monthly partitions"
    );
    // Provenance: every metering row names its DataHub message.
    let corrected: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM metering_data WHERE source_message_id LIKE '%-corr'",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(
        corrected,
        10 * 96,
        "every third of 30 metering points had its first day corrected"
    );
    // Positions were stored with the data: the end of every partition.
    let stored: i64 = sqlx::query_scalar(
        "SELECT coalesce(sum(next_offset), 0)::bigint FROM sink_offset WHERE consumer = $1",
    )
    .bind(&first.consumer)
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(stored as u64, first.report.records);
    let processed: i64 = sqlx::query_scalar("SELECT count(*) FROM processed_message")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(processed as usize, scenario.records());
    let before = fingerprints(&mut conn).await;

    // Replay 1: the same input produced again (a processor re-emitting after a crash),
    // read by four lanes over three partitions (one lane idle).
    scenario.produce(&topology).await;
    let second = run_timescale(
        &SinkConfig {
            writers: 4,
            ..config.clone()
        },
        RunMode::UntilCaughtUp,
        Arc::new(SinkStatus::default()),
        std::future::pending(),
    )
    .await
    .unwrap();
    assert_eq!(
        second.report.records, first.report.records,
        "read only the new copies"
    );
    for (table, (staged, changed)) in &second.report.flushed.tables {
        assert!(*staged > 0, "{table} was written again");
        assert_eq!(
            *changed, 0,
            "{table}: a replayed batch changed {changed} rows"
        );
    }
    assert_eq!(
        second
            .report
            .flushed
            .counts
            .get("duplicate_records")
            .copied(),
        Some(scenario.records() as u64)
    );
    assert_eq!(Figures::read(&mut conn).await, expected);
    assert_eq!(fingerprints(&mut conn).await, before);

    // Replay 2: positions forgotten, everything read again from the beginning, by
    // one lane.
    sqlx::query("DELETE FROM sink_offset")
        .execute(&mut conn)
        .await
        .unwrap();
    let third = run_timescale(
        &SinkConfig {
            writers: 1,
            ..config.clone()
        },
        RunMode::UntilCaughtUp,
        Arc::new(SinkStatus::default()),
        std::future::pending(),
    )
    .await
    .unwrap();
    assert_eq!(third.report.records, 2 * first.report.records);
    for (table, (_, changed)) in &third.report.flushed.tables {
        assert_eq!(*changed, 0, "{table}: a re-read changed {changed} rows");
    }
    assert_eq!(Figures::read(&mut conn).await, expected);
    assert_eq!(fingerprints(&mut conn).await, before);
    drop(conn);
    drop(topology);
    env.cleanup().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_undecodable_record_becomes_one_dead_letter_and_the_rest_is_written() {
    let env = TestEnv::start("sink_deadletter").await.unwrap();
    let topology = Topology::apply(&env).await;
    let scenario = Scenario::generate(3, 1);
    topology.send(topics::READINGS, &scenario.readings).await;
    let readings = topology.topic_name(topics::READINGS);
    let garbage: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(&readings)
        .partition(1)
        .key(&b"not avro"[..])
        .payload(&b"\x00\x00\x00\x00\x63 not a reading"[..]);
    topology
        .producer
        .send(garbage, std::time::Duration::from_secs(10))
        .await
        .map_err(|(e, _)| e)
        .unwrap();
    let config = sink_config(&env);
    for _ in 0..2 {
        // The second run reads nothing new: the dead letter is not repeated.
        run_timescale(
            &config,
            RunMode::UntilCaughtUp,
            Arc::new(SinkStatus::default()),
            std::future::pending(),
        )
        .await
        .unwrap();
    }
    let mut conn = schema::connect(&env.database_url, "test").await.unwrap();
    let letters: Vec<(String, String, String, i32)> = sqlx::query_as(
        "SELECT component, error_class, source_topic, source_partition FROM dead_letter",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert_eq!(
        letters,
        vec![(
            "sink-postgres".to_string(),
            "UNDECODABLE".to_string(),
            readings.clone(),
            1
        )]
    );
    let backlog: i64 = sqlx::query_scalar(
        "SELECT unresolved FROM dead_letter_backlog WHERE component = 'sink-postgres'",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(backlog, 1);
    let expected = scenario.expected().normalized();
    let figures = Figures::read(&mut conn).await;
    assert_eq!(
        figures.counts["metering_data"],
        expected.counts["metering_data"]
    );
    assert_eq!(
        figures.sums["metering_data.quantity"],
        expected.sums["metering_data.quantity"]
    );
    drop(conn);
    drop(topology);
    env.cleanup().await.unwrap();
}

//! The ERP sink end to end on the real broker, registry and PostgreSQL
//! (docs/decisions/0064): final statements on the statements topic reach the
//! ERP topic once per metering point and month, even when the input repeats
//! them; a correction after finality reaches it as a credit note and a new,
//! higher statement naming the one it replaces, while a silent change of a
//! delivered statement is refused; and replaying the same input (produced
//! again, or re-read from the beginning) publishes nothing new.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use afregning_sinks::{RunMode, SinkConfig, SinkRun, SinkStatus, run_erp, schema};
use afregning_testkit::TestEnv;
use afregning_topology::records::{SettlementMonthKey, SettlementStatement, StatementKind};
use afregning_topology::topics;
use chrono::NaiveDate;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};
use rust_decimal::Decimal;
use support::{PARTITIONS, Topology, grid_area, gsrn, sink_config, statement};

type Input = Vec<(
    SettlementMonthKey,
    Option<SettlementStatement>,
    Option<String>,
)>;

fn record(
    s: SettlementStatement,
) -> (
    SettlementMonthKey,
    Option<SettlementStatement>,
    Option<String>,
) {
    let key = SettlementMonthKey {
        gsrn: s.gsrn.clone(),
        month_start: s.month_start,
    };
    let idempotency_key = Some(s.idempotency_key.clone());
    (key, Some(s), idempotency_key)
}

/// Everything on the ERP topic, in offset order per partition, with the
/// idempotency key header each record carries.
async fn erp_topic(env: &TestEnv, topology: &Topology) -> Vec<(SettlementStatement, String)> {
    let topic = topology.topic_name(topics::ERP_STATEMENTS);
    let mut config = env.kafka_config();
    config
        .set("group.id", env.group("erp-reader"))
        .set("enable.partition.eof", "true")
        .set("enable.auto.commit", "false");
    let payloads = tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = config.create().unwrap();
        let mut list = TopicPartitionList::new();
        for partition in 0..PARTITIONS as i32 {
            list.add_partition_offset(&topic, partition, Offset::Beginning)
                .unwrap();
        }
        consumer.assign(&list).unwrap();
        let mut remaining: BTreeSet<i32> = (0..PARTITIONS as i32).collect();
        let mut out = Vec::new();
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while !remaining.is_empty() {
            assert!(
                std::time::Instant::now() < deadline,
                "the ERP topic did not reach its end"
            );
            match consumer.poll(Duration::from_millis(200)) {
                None => {}
                Some(Ok(message)) => {
                    let header = message
                        .headers()
                        .and_then(|h| {
                            h.iter()
                                .find(|h| h.key == "afregning-idempotency-key")
                                .and_then(|h| {
                                    h.value.map(|v| String::from_utf8_lossy(v).into_owned())
                                })
                        })
                        .unwrap_or_default();
                    out.push((message.payload().map(<[u8]>::to_vec), header));
                }
                Some(Err(KafkaError::PartitionEOF(partition))) => {
                    remaining.remove(&partition);
                }
                Some(Err(error)) => panic!("reading the ERP topic: {error}"),
            }
        }
        out
    })
    .await
    .unwrap();
    let mut statements = Vec::new();
    for (payload, header) in payloads {
        let statement = topology
            .codec
            .decode_value(topics::ERP_STATEMENTS, payload.as_deref())
            .await
            .unwrap()
            .expect("no tombstones on the ERP topic");
        statements.push((statement, header));
    }
    statements
}

async fn run(config: &SinkConfig) -> SinkRun {
    run_erp(
        config,
        RunMode::UntilCaughtUp,
        Arc::new(SinkStatus::default()),
        std::future::pending(),
    )
    .await
    .unwrap()
}

fn count(run: &SinkRun, name: &str) -> u64 {
    run.report.flushed.counts.get(name).copied().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_statement_reaches_the_erp_once_and_a_correction_is_a_credit_note_and_a_new_statement()
{
    let env = TestEnv::start("sink_erp").await.unwrap();
    let topology = Topology::apply(&env).await;
    let config = sink_config(&env);
    let october = NaiveDate::from_ymd_opt(2026, 10, 1).unwrap();
    let november = NaiveDate::from_ymd_opt(2026, 11, 1).unwrap();
    let points = 6;

    // Final statements for two months, each produced twice (a processor
    // re-emitting after a crash): the ERP gets each once.
    let mut finals: Input = Vec::new();
    for i in 0..points {
        for month in [october, november] {
            let s = statement(
                &gsrn(i),
                grid_area(i),
                month,
                1,
                StatementKind::Statement,
                None,
                40_000_000 + i as i64 * 1_000,
            );
            finals.push(record(s.clone()));
            finals.push(record(s));
        }
    }
    topology.send(topics::SETTLEMENT_STATEMENTS, &finals).await;
    let first = run(&config).await;
    assert_eq!(count(&first, "statements_published"), 2 * points as u64);
    assert_eq!(count(&first, "credit_notes_published"), 0);
    assert_eq!(count(&first, "duplicates_skipped"), 2 * points as u64);
    let delivered = erp_topic(&env, &topology).await;
    let mut per_month: BTreeMap<(String, NaiveDate), usize> = BTreeMap::new();
    for (s, header) in &delivered {
        assert_eq!(s.kind, StatementKind::Statement);
        assert_eq!(s.version, 1);
        assert_eq!(
            header, &s.idempotency_key,
            "the ERP gets the idempotency key"
        );
        *per_month
            .entry((s.gsrn.clone(), s.month_start))
            .or_default() += 1;
    }
    assert_eq!(per_month.len(), 2 * points, "every metering point-month");
    assert!(
        per_month.values().all(|&n| n == 1),
        "once per metering point and month: {per_month:?}"
    );

    // A correction after finality for two metering points' October: a credit
    // note reversing v1 and a new statement v2 naming it. And a silent change
    // of a delivered statement (same id, other amounts), which is refused.
    let mut corrections: Input = Vec::new();
    for i in [1, 4] {
        let v1 = format!("{}:{october}:1", gsrn(i));
        corrections.push(record(statement(
            &gsrn(i),
            grid_area(i),
            october,
            2,
            StatementKind::CreditNote,
            Some(v1.clone()),
            40_000_000 + i as i64 * 1_000,
        )));
        corrections.push(record(statement(
            &gsrn(i),
            grid_area(i),
            october,
            2,
            StatementKind::Statement,
            Some(v1),
            41_500_000 + i as i64 * 1_000,
        )));
    }
    let mut silent = statement(
        &gsrn(2),
        grid_area(2),
        november,
        1,
        StatementKind::Statement,
        None,
        40_000_000 + 2 * 1_000,
    );
    let (silent_id, silent_original_total) = (silent.statement_id.clone(), silent.total_incl_vat);
    silent.total_incl_vat += Decimal::ONE;
    corrections.push(record(silent));
    topology
        .send(topics::SETTLEMENT_STATEMENTS, &corrections)
        .await;
    let second = run(&config).await;
    assert_eq!(
        second.report.records,
        corrections.len() as u64,
        "only the new records"
    );
    assert_eq!(count(&second, "statements_published"), 2);
    assert_eq!(count(&second, "credit_notes_published"), 2);
    assert_eq!(
        count(&second, "rejected"),
        1,
        "the silent change is refused"
    );
    let delivered = erp_topic(&env, &topology).await;
    assert_eq!(delivered.len(), 2 * points + 4);
    for i in [1, 4] {
        let month: Vec<&SettlementStatement> = delivered
            .iter()
            .map(|(s, _)| s)
            .filter(|s| s.gsrn == gsrn(i) && s.month_start == october)
            .collect();
        let v1 = format!("{}:{october}:1", gsrn(i));
        let credit = month
            .iter()
            .find(|s| s.kind == StatementKind::CreditNote)
            .expect("a credit note");
        assert_eq!(credit.corrects_statement_id.as_deref(), Some(v1.as_str()));
        assert_eq!(credit.version, 2);
        let v1_total = month
            .iter()
            .find(|s| s.statement_id == v1)
            .expect("v1 stays delivered")
            .total_incl_vat;
        assert_eq!(
            credit.total_incl_vat, -v1_total,
            "the credit note reverses v1"
        );
        let v2 = month
            .iter()
            .find(|s| s.kind == StatementKind::Statement && s.version == 2)
            .expect("a new statement");
        assert_eq!(v2.corrects_statement_id.as_deref(), Some(v1.as_str()));
        assert_eq!(month.len(), 3, "v1, its credit note and v2, nothing else");
    }
    // The ERP still has the silently changed statement only as first delivered.
    let as_delivered: Vec<&SettlementStatement> = delivered
        .iter()
        .map(|(s, _)| s)
        .filter(|s| s.statement_id == silent_id)
        .collect();
    assert_eq!(as_delivered.len(), 1);
    assert_eq!(as_delivered[0].total_incl_vat, silent_original_total);
    let mut conn = schema::connect(&env.database_url, "test").await.unwrap();
    let recorded: Vec<(String, i64)> =
        sqlx::query_as("SELECT kind, count(*) FROM erp_delivery GROUP BY kind ORDER BY kind")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    assert_eq!(
        recorded,
        vec![
            ("CREDIT_NOTE".to_string(), 2),
            ("STATEMENT".to_string(), 2 * points as i64 + 2)
        ]
    );

    // Replay 1: the same input produced again publishes nothing.
    topology.send(topics::SETTLEMENT_STATEMENTS, &finals).await;
    topology
        .send(topics::SETTLEMENT_STATEMENTS, &corrections)
        .await;
    let third = run(&config).await;
    assert_eq!(
        third.report.records,
        (finals.len() + corrections.len()) as u64
    );
    assert_eq!(count(&third, "statements_published"), 0);
    assert_eq!(count(&third, "credit_notes_published"), 0);
    // Replay 2: the sink's input positions forgotten, everything re-read from the beginning.
    let consumer = &first.consumer;
    let forgotten = sqlx::query("DELETE FROM sink_offset WHERE consumer = $1")
        .bind(consumer)
        .execute(&mut conn)
        .await
        .unwrap();
    assert!(forgotten.rows_affected() > 0);
    let fourth = run(&config).await;
    assert_eq!(
        fourth.report.records,
        2 * (finals.len() + corrections.len()) as u64
    );
    assert_eq!(count(&fourth, "statements_published"), 0);
    assert_eq!(count(&fourth, "credit_notes_published"), 0);
    assert_eq!(erp_topic(&env, &topology).await.len(), 2 * points + 4);
    let deliveries: i64 = sqlx::query_scalar("SELECT count(*) FROM erp_delivery")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(deliveries as usize, 2 * points + 4);
    drop(conn);
    drop(topology);
    env.cleanup().await.unwrap();
}

//! The runtime in-process, as the `afregning` binary runs it: start-up checks
//! of the topics (co-partitioning, missing topics, changelog creation and
//! configs), a
//! processor with two co-partitioned inputs, readiness and the admin routes.

mod support;

use std::sync::Arc;
use std::time::Duration;

use afregning_processors::runtime::{RuntimeConfig, RuntimeError, admin, run_processor};
use rdkafka::consumer::{BaseConsumer, Consumer};
use serde_json::json;
use support::*;
use tokio::sync::oneshot;

fn toy(inputs: Vec<String>, output: &str) -> toy::SumProcessor {
    toy::SumProcessor {
        name: "toy".to_string(),
        inputs,
        output: output.to_string(),
        labels: None,
        per_task: false,
        serves: None,
    }
}

fn config(env: &TestEnv, dir: &std::path::Path, extra: serde_json::Value) -> RuntimeConfig {
    serde_json::from_value(runtime_config(env, dir, "toy", extra)).expect("a valid runtime config")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inputs_that_are_not_co_partitioned_or_missing_are_refused_at_start() -> anyhow::Result<()>
{
    let env = TestEnv::start("topology_checks").await?;
    let bs = env.bootstrap_servers.clone();
    let four = env.topic("four");
    let three = env.topic("three");
    let output = env.topic("out");
    create_topic(&bs, &four, 4, false).await;
    create_topic(&bs, &three, 3, false).await;
    create_topic(&bs, &output, 4, false).await;
    let dir = tempfile::tempdir()?;

    let error = run_processor(
        toy(vec![four.clone(), three.clone()], &output),
        config(&env, dir.path(), json!({})),
        std::future::pending(),
    )
    .await
    .expect_err("unequal partition counts must be refused");
    assert!(
        matches!(&error, RuntimeError::Topology(m) if m.contains("co-partitioned")),
        "{error}"
    );

    let error = run_processor(
        toy(vec![env.topic("missing")], &output),
        config(&env, dir.path(), json!({})),
        std::future::pending(),
    )
    .await
    .expect_err("a missing input must be refused");
    assert!(
        matches!(&error, RuntimeError::Topology(m) if m.contains("does not exist")),
        "{error}"
    );

    let error = run_processor(
        toy(vec![four.clone()], &output),
        config(&env, dir.path(), json!({"create_changelog_topics": false})),
        std::future::pending(),
    )
    .await
    .expect_err("missing changelogs must be refused when the runtime may not create them");
    assert!(
        matches!(&error, RuntimeError::Topology(m) if m.contains("changelog")),
        "{error}"
    );

    // Changelogs that exist with the right partitions but without the
    // catalogue's compaction lag (created by hand, compacted only) are refused
    // too, naming the topic and the config. The local broker describes the
    // configs a topic was created with, which is enough for this check.
    for store in ["sums", "seen"] {
        let changelog = format!("{}afregning.toy.{store}-changelog.v1", env.namespace);
        create_topic(&bs, &changelog, 4, true).await;
    }
    let error = run_processor(
        toy(vec![four.clone()], &output),
        config(&env, dir.path(), json!({"create_changelog_topics": false})),
        tokio::time::sleep(Duration::from_secs(20)),
    )
    .await
    .expect_err("changelogs without the catalogue's configs must be refused");
    assert!(
        matches!(&error, RuntimeError::Topology(m)
            if m.contains("afregning.toy.sums-changelog.v1: min.compaction.lag.ms is not set")),
        "{error}"
    );
    env.cleanup().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_processor_with_two_co_partitioned_inputs_runs_in_process() -> anyhow::Result<()> {
    let env = TestEnv::start("topology_inprocess").await?;
    let bs = env.bootstrap_servers.clone();
    let first = env.topic("numbers");
    let second = env.topic("more-numbers");
    let output = env.topic("sums");
    for topic in [&first, &second, &output] {
        create_topic(&bs, topic, 3, false).await;
    }
    let producer = producer(&bs);
    produce(&producer, &first, &toy_inputs(0, 1500, 30, 3)).await;
    produce(&producer, &second, &toy_inputs(10_000, 1500, 30, 3)).await;
    let mut inputs = read_all(&bs, &first);
    inputs.extend(read_all(&bs, &second));
    // Within a task the two topics interleave in arrival order; per key the
    // toy's sums do not depend on it, so compare final sums, not versions.
    let expected = expected_outputs(&inputs);

    let dir = tempfile::tempdir()?;
    let runtime = afregning_processors::runtime::Runtime::new(
        toy(vec![first.clone(), second.clone()], &output),
        config(&env, dir.path(), json!({})),
    );
    let status = runtime.status();
    let router = admin::router(
        status.clone(),
        Arc::new(|| "afregning_processor_test 1\n".to_string()),
    );
    let (stop, stopped) = oneshot::channel::<()>();
    let running = tokio::spawn(runtime.run(async {
        let _ = stopped.await;
    }));

    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !status.is_ready() {
        assert!(std::time::Instant::now() < deadline, "never ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(status.is_healthy());
    let response = tower::ServiceExt::oneshot(
        router,
        axum::http::Request::get("/ready").body(axum::body::Body::empty())?,
    )
    .await?;
    assert_eq!(
        response.status(),
        axum::http::StatusCode::OK,
        "/ready once restored"
    );

    // Final sums per key: every record of both topics counted once.
    let final_sums = |bs: &str| {
        let mut sums = std::collections::BTreeMap::new();
        for rec in read_all(bs, &output) {
            let (Some(key), Some(value)) = (rec.key, rec.value) else {
                continue;
            };
            let Some((count, sum)) = toy::parse_sum(value.as_bytes()) else {
                continue;
            };
            let entry = sums.entry(key).or_insert((0, 0));
            if count > entry.0 {
                *entry = (count, sum);
            }
        }
        sums
    };
    let wanted: std::collections::BTreeMap<String, (u64, i64)> = expected
        .iter()
        .map(|(k, versions)| {
            (
                k.clone(),
                toy::parse_sum(versions.last().expect("a version").as_bytes()).expect("sum"),
            )
        })
        .collect();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let sums = tokio::task::block_in_place(|| final_sums(&bs));
        if sums == wanted {
            break;
        }
        if std::time::Instant::now() >= deadline {
            let outputs = read_all(&bs, &output);
            let k2: Vec<_> = outputs
                .iter()
                .filter(|r| r.key.as_deref() == Some("k2"))
                .map(|r| (r.partition, r.offset, r.value.clone()))
                .collect();
            panic!(
                "sums differ: {sums:?} vs {wanted:?}; {} outputs; k2: {k2:?}",
                outputs.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    // The changelogs were created with the inputs' partition count.
    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &bs)
        .create()?;
    for store in [toy::SUMS, toy::SEEN] {
        let topic = format!("{}afregning.toy.{store}-changelog.v1", env.namespace);
        let metadata = consumer.fetch_metadata(Some(&topic), Duration::from_secs(10))?;
        assert_eq!(metadata.topics()[0].partitions().len(), 3, "{topic}");
    }

    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(30), running).await???;
    assert!(
        !status.is_healthy() && !status.is_ready(),
        "a stopped runtime reports itself down"
    );
    env.cleanup().await?;
    Ok(())
}

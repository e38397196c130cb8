//! Restore: a deleted task store is rebuilt from its changelogs with
//! identical contents and results; a batch that crashed before its commit
//! markers is discarded on restore (and reverted in the changelog); a batch
//! whose markers went out but whose local write did not is taken from the
//! changelog. Real broker (Tansu), real RocksDB, the testbed as a process.

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use afregning_processors::runtime::{RocksStore, StateMemory, Store};
use serde_json::json;
use support::*;

const PARTITIONS: i32 = 4;

struct Topics {
    input: String,
    output: String,
}

async fn topics(env: &TestEnv) -> Topics {
    let topics = Topics {
        input: env.topic("numbers"),
        output: env.topic("sums"),
    };
    create_topic(&env.bootstrap_servers, &topics.input, PARTITIONS, false).await;
    create_topic(&env.bootstrap_servers, &topics.output, PARTITIONS, false).await;
    topics
}

/// Input offsets (of first occurrences of ids) without an output, per partition, as ranges.
fn missing_sources(bs: &str, input: &str, output: &str) -> BTreeMap<i32, Vec<(i64, i64)>> {
    let mut seen = std::collections::BTreeSet::new();
    let mut wanted: BTreeMap<i32, std::collections::BTreeSet<i64>> = BTreeMap::new();
    let mut inputs = read_all(bs, input);
    inputs.sort_by_key(|r| (r.partition, r.offset));
    for r in inputs {
        let id = r.value.clone().unwrap_or_default();
        if seen.insert((
            r.partition,
            id.split(',').next().unwrap_or_default().to_string(),
        )) {
            wanted.entry(r.partition).or_default().insert(r.offset);
        }
    }
    for r in read_all(bs, output) {
        if let Some(o) = r
            .headers
            .get("source-offset")
            .and_then(|o| o.parse::<i64>().ok())
            && let Some(set) = wanted.get_mut(&r.partition)
        {
            set.remove(&o);
        }
    }
    wanted
        .into_iter()
        .map(|(p, offsets)| {
            let mut ranges: Vec<(i64, i64)> = Vec::new();
            for o in offsets {
                match ranges.last_mut() {
                    Some(last) if last.1 + 1 >= o => last.1 = o,
                    _ => ranges.push((o, o)),
                }
            }
            (p, ranges)
        })
        .collect()
}

type Dump = (
    BTreeMap<Vec<u8>, Vec<u8>>,
    BTreeMap<Vec<u8>, Vec<u8>>,
    u64,
    BTreeMap<String, i64>,
);

/// Both stores' contents and the committed batch of a task's store.
fn dump(dir: &Path) -> Dump {
    let store = RocksStore::open(
        dir,
        &[toy::SUMS.to_string(), toy::SEEN.to_string()],
        &StateMemory::new(8),
    )
    .expect("open the task store");
    let mut sums = BTreeMap::new();
    store
        .scan_prefix(0, b"", &mut |k, v| {
            sums.insert(k.to_vec(), v.to_vec());
        })
        .expect("scan");
    let mut seen = BTreeMap::new();
    store
        .scan_prefix(1, b"", &mut |k, v| {
            seen.insert(k.to_vec(), v.to_vec());
        })
        .expect("scan");
    let metadata = store
        .metadata()
        .expect("metadata")
        .expect("the task committed");
    (
        sums,
        seen,
        metadata.committed.seq,
        metadata.committed.input_offsets,
    )
}

fn restore_of(bed: &Testbed, task: i64) -> Option<serde_json::Value> {
    bed.events_named("restore-finished")
        .into_iter()
        .rev()
        .find(|e| e["task"] == task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_task_store_is_restored_from_the_changelog_with_identical_results()
-> anyhow::Result<()> {
    let env = TestEnv::start("restore_deleted").await?;
    let topics = topics(&env).await;
    let dir = tempfile::tempdir()?;
    let state_dir = dir.path().join("state");
    let bs = env.bootstrap_servers.clone();
    let producer = producer(&bs);
    produce(
        &producer,
        &topics.input,
        &toy_inputs(0, 4000, 40, PARTITIONS),
    )
    .await;
    let config = toy_config(
        runtime_config(&env, &state_dir, "toy", json!({})),
        std::slice::from_ref(&topics.input),
        &topics.output,
        json!({}),
    );

    // 1. Process everything once.
    let expected = expected_outputs(&read_all(&bs, &topics.input));
    let mut first = Testbed::spawn(dir.path(), "first", &config);
    let check = tokio::task::block_in_place(|| {
        wait_complete(&bs, &topics.output, &expected, Duration::from_secs(60))
    });
    compare(&check, &expected).map_err(|e| anyhow::anyhow!("{e}\n{}", first.log_tail()))?;
    assert!(
        first.terminate(Duration::from_secs(30)),
        "graceful stop: {}",
        first.log_tail()
    );
    let task_dir = state_dir.join(env.group("toy")).join("1");
    let before = dump(&task_dir);
    assert!(!before.0.is_empty(), "task 1 has state");

    // 2. Delete task 1's store; the restart rebuilds it from the changelogs.
    std::fs::remove_dir_all(&task_dir)?;
    let mut second = Testbed::spawn(dir.path(), "second", &config);
    tokio::task::block_in_place(|| {
        second.wait_for(0, Duration::from_secs(60), |e| e["event"] == "ready")
    })
    .ok_or_else(|| anyhow::anyhow!("not ready: {}", second.log_tail()))?;
    let restore = restore_of(&second, 1).expect("task 1 restored");
    assert_eq!(restore["from_scratch"], true, "{restore}");
    assert!(restore["records"].as_u64().unwrap_or(0) > 0, "{restore}");
    let untouched = restore_of(&second, 0).expect("task 0 restored");
    assert_eq!(
        untouched["from_scratch"], false,
        "task 0 kept its local store: {untouched}"
    );
    assert!(second.terminate(Duration::from_secs(30)));
    let after = dump(&task_dir);
    assert_eq!(
        before, after,
        "the store rebuilt from the changelog differs from the one deleted"
    );

    // 3. New input on the restored store: results identical to an uninterrupted run.
    produce(
        &producer,
        &topics.input,
        &toy_inputs(4000, 2000, 40, PARTITIONS),
    )
    .await;
    let expected = expected_outputs(&read_all(&bs, &topics.input));
    let mut third = Testbed::spawn(dir.path(), "third", &config);
    let check = tokio::task::block_in_place(|| {
        wait_complete(&bs, &topics.output, &expected, Duration::from_secs(60))
    });
    compare(&check, &expected).map_err(|e| anyhow::anyhow!("{e}\n{}", third.log_tail()))?;
    assert!(third.terminate(Duration::from_secs(30)));
    env.cleanup().await?;
    Ok(())
}

/// Data records after the last commit marker, per partition of `changelog`.
fn trailing_records(bs: &str, changelog: &str) -> usize {
    let records = read_all(bs, changelog);
    let mut trailing: BTreeMap<i32, usize> = BTreeMap::new();
    let mut sorted = records;
    sorted.sort_by_key(|r| (r.partition, r.offset));
    for rec in sorted {
        let count = trailing.entry(rec.partition).or_default();
        match rec
            .headers
            .get("afregning-changelog-kind")
            .map(String::as_str)
        {
            Some("commit") => *count = 0,
            Some("data") => *count += 1,
            _ => {}
        }
    }
    trailing.values().sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_that_crashed_before_its_markers_is_discarded_on_restore() -> anyhow::Result<()> {
    let env = TestEnv::start("restore_partial").await?;
    let topics = topics(&env).await;
    let dir = tempfile::tempdir()?;
    let state_dir = dir.path().join("state");
    let bs = env.bootstrap_servers.clone();
    produce(
        &producer(&bs),
        &topics.input,
        &toy_inputs(0, 3000, 30, PARTITIONS),
    )
    .await;
    let expected = expected_outputs(&read_all(&bs, &topics.input));
    let runtime = runtime_config(&env, &state_dir, "toy", json!({}));

    // Outputs and changelog records of the 4th round delivered, then a kill
    // before any commit marker.
    let crashing = toy_config(
        runtime.clone(),
        std::slice::from_ref(&topics.input),
        &topics.output,
        json!({"crash": {"stage": "outputs-delivered", "probability": 1.0, "after_rounds": 3}}),
    );
    let mut crashed = Testbed::spawn(dir.path(), "crashing", &crashing);
    let status = tokio::task::block_in_place(|| crashed.wait_exit(Duration::from_secs(60)))
        .expect("the failpoint fired");
    assert!(!status.success());
    assert_eq!(
        crashed.events_named("self-kill").len(),
        1,
        "{}",
        crashed.log_tail()
    );
    let seen_changelog = format!("{}afregning.toy.seen-changelog.v1", env.namespace);
    let partial = tokio::task::block_in_place(|| trailing_records(&bs, &seen_changelog));
    assert!(
        partial > 0,
        "the crash left no partial batch in the changelog: the test would prove nothing"
    );

    // Delete the local stores, so the restore must decide from the changelog.
    std::fs::remove_dir_all(&state_dir)?;
    let config = toy_config(
        runtime,
        std::slice::from_ref(&topics.input),
        &topics.output,
        json!({}),
    );
    let mut restarted = Testbed::spawn(dir.path(), "restarted", &config);
    let check = tokio::task::block_in_place(|| {
        wait_complete(&bs, &topics.output, &expected, Duration::from_secs(60))
    });
    compare(&check, &expected).map_err(|e| anyhow::anyhow!("{e}\n{}", restarted.log_tail()))?;
    let discarded: u64 = restarted
        .events_named("restore-finished")
        .iter()
        .map(|e| e["discarded"].as_u64().unwrap_or(0))
        .sum();
    assert!(discarded > 0, "the restore reported no discarded records");
    assert!(
        check.replays > 0,
        "the crashed batch's outputs were re-emitted with the same idempotency keys"
    );
    assert!(restarted.terminate(Duration::from_secs(30)));
    // The reverts closed the partial batch: nothing after the last marker
    // except what the reverts and later batches wrote before their markers.
    assert_eq!(
        tokio::task::block_in_place(|| trailing_records(&bs, &seen_changelog)),
        0,
        "the changelog still ends in a partial batch"
    );
    env.cleanup().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_whose_markers_went_out_before_the_crash_is_taken_from_the_changelog()
-> anyhow::Result<()> {
    let env = TestEnv::start("restore_marked").await?;
    let topics = topics(&env).await;
    let dir = tempfile::tempdir()?;
    let state_dir = dir.path().join("state");
    let bs = env.bootstrap_servers.clone();
    produce(
        &producer(&bs),
        &topics.input,
        &toy_inputs(0, 3000, 30, PARTITIONS),
    )
    .await;
    let expected = expected_outputs(&read_all(&bs, &topics.input));
    let runtime = runtime_config(&env, &state_dir, "toy", json!({}));

    // Markers delivered, local store not written: the changelog is ahead.
    let crashing = toy_config(
        runtime.clone(),
        std::slice::from_ref(&topics.input),
        &topics.output,
        json!({"crash": {"stage": "markers-delivered", "probability": 1.0, "after_rounds": 3}}),
    );
    let mut crashed = Testbed::spawn(dir.path(), "crashing", &crashing);
    tokio::task::block_in_place(|| crashed.wait_exit(Duration::from_secs(60)))
        .expect("the failpoint fired");
    let local_seq: BTreeMap<i64, u64> = crashed
        .events_named("batch-committed")
        .iter()
        .map(|e| {
            (
                e["task"].as_i64().unwrap_or(-1),
                e["seq"].as_u64().unwrap_or(0),
            )
        })
        .collect();

    let config = toy_config(
        runtime,
        std::slice::from_ref(&topics.input),
        &topics.output,
        json!({}),
    );
    let mut restarted = Testbed::spawn(dir.path(), "restarted", &config);
    let check = tokio::task::block_in_place(|| {
        wait_complete(&bs, &topics.output, &expected, Duration::from_secs(60))
    });
    compare(&check, &expected).map_err(|e| {
        anyhow::anyhow!(
            "{e}\nlocal: {local_seq:?}\ncrashed: {:?}\nrestored: {:?}\nrunning: {:?}\nCHANGELOG {:?}\nOUTPUTS {:?}",
            crashed.events().iter().rev().take(12).map(|(_, e)| e.to_string()).collect::<Vec<_>>(),
            restarted.events_named("restore-finished"),
            restarted.events_named("task-running"),
            missing_sources(&bs, &topics.input, &topics.output),
            restarted.events_named("partition-stalled"),
        )
    })?;
    // Some task resumed after a batch its local store never saw.
    let ahead = restarted.events_named("restore-finished").iter().any(|e| {
        let task = e["task"].as_i64().unwrap_or(-1);
        e["committed_seq"].as_u64().unwrap_or(0) > local_seq.get(&task).copied().unwrap_or(0)
    });
    assert!(
        ahead,
        "no task restored a batch beyond its local store: {:?}",
        restarted.events_named("restore-finished")
    );
    assert!(restarted.terminate(Duration::from_secs(30)));
    env.cleanup().await?;
    Ok(())
}

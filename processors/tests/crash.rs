//! The crash test of issue 7: two instances of the toy processor in one group
//! are SIGKILLed at random points (at least 20 kills, some while a task
//! restores, some while the group rebalances, some by failpoints between the
//! commit steps), stores are sometimes deleted before a restart, and input
//! keeps arriving. The de-duplicated outputs must equal an uninterrupted run
//! of the same input exactly: nothing counted twice, nothing lost. The killed
//! instances process their tasks in parallel with an instance per task, which
//! fails if it is ever handed another task's input; the uninterrupted run uses
//! one instance for all tasks, so the two ways of processing must agree.
#![allow(clippy::needless_range_loop)] // slots are restarted by index while borrowed

mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use support::*;

const PARTITIONS: i32 = 4;
const KEYS: usize = 60;
const CHUNKS: usize = 50;
const CHUNK: usize = 400;
const MIN_KILLS: usize = 20;

#[derive(Debug, Default)]
struct Tally {
    kills: usize,
    during_restore: usize,
    during_rebalance: usize,
    random: usize,
    failpoint_kills: usize,
    stores_deleted: usize,
}

struct Slot {
    name: &'static str,
    state_dir: PathBuf,
    bed: Option<Testbed>,
    starts: usize,
}

/// Whether `events` show a restore that had started and not finished.
fn restoring(events: &[(Instant, Value)]) -> bool {
    let mut open = std::collections::BTreeSet::new();
    for (_, e) in events {
        match e["event"].as_str() {
            Some("restore-started") => {
                open.insert(e["task"].as_i64());
            }
            Some("restore-finished") | Some("restore-cancelled") => {
                open.remove(&e["task"].as_i64());
            }
            _ => {}
        }
    }
    !open.is_empty()
}

fn last_membership_change(slots: &[Slot]) -> Option<Instant> {
    slots
        .iter()
        .filter_map(|s| s.bed.as_ref())
        .flat_map(|b| b.events())
        .filter(|(_, e)| e["event"] == "assigned" || e["event"] == "revoked")
        .map(|(at, _)| at)
        .max()
}

fn start(slot: &mut Slot, dir: &Path, config: &Value) {
    slot.starts += 1;
    let name = format!("{}-{}", slot.name, slot.starts);
    slot.bed = Some(Testbed::spawn(dir, &name, config));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_at_random_points_the_results_equal_an_uninterrupted_run() -> anyhow::Result<()> {
    let started = Instant::now();
    let env = TestEnv::start("crash").await?;
    let bs = env.bootstrap_servers.clone();
    let input = env.topic("numbers");
    let output = env.topic("sums");
    let clean_output = env.topic("sums-clean");
    for topic in [&input, &output, &clean_output] {
        create_topic(&bs, topic, PARTITIONS, false).await;
    }
    let seed: u64 = std::env::var("CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(7)
        });
    eprintln!("crash test seed {seed} (CRASH_SEED={seed} to repeat)");
    let mut rng = StdRng::seed_from_u64(seed);
    let dir = tempfile::tempdir()?;

    // Input keeps arriving while the processes die.
    let producing = {
        let producer = producer(&bs);
        let input = input.clone();
        tokio::spawn(async move {
            for chunk in 0..CHUNKS {
                produce(
                    &producer,
                    &input,
                    &toy_inputs(chunk * CHUNK, CHUNK, KEYS, PARTITIONS),
                )
                .await;
                tokio::time::sleep(Duration::from_millis(600)).await;
            }
        })
    };

    // The killed instances process their tasks in parallel, an instance per task
    // (decision 0153); the uninterrupted run below processes them in turn with one.
    let config_for = |state_dir: &Path, crash: Option<Value>| -> Value {
        let runtime = runtime_config(&env, state_dir, "toy", json!({"processing_threads": 2}));
        let extra = match crash {
            Some(crash) => json!({ "crash": crash, "per_task": true }),
            None => json!({ "per_task": true }),
        };
        toy_config(runtime, std::slice::from_ref(&input), &output, extra)
    };
    let mut slots = vec![
        Slot {
            name: "a",
            state_dir: dir.path().join("a"),
            bed: None,
            starts: 0,
        },
        Slot {
            name: "b",
            state_dir: dir.path().join("b"),
            bed: None,
            starts: 0,
        },
    ];
    let normal_a = config_for(&slots[0].state_dir, None);
    start(&mut slots[0], dir.path(), &normal_a);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let normal_b = config_for(&slots[1].state_dir, None);
    start(&mut slots[1], dir.path(), &normal_b);

    let mut tally = Tally::default();
    let stages = [
        "processed",
        "outputs-delivered",
        "markers-delivered",
        "local-committed",
    ];
    while tally.kills < MIN_KILLS + 4 || !producing.is_finished() {
        assert!(
            started.elapsed() < Duration::from_secs(240),
            "the kill phase ran too long: {tally:?}"
        );
        // Instances that killed themselves at a failpoint come back.
        for i in 0..slots.len() {
            if slots[i].bed.as_ref().is_some_and(|b| !b.alive()) {
                let bed = slots[i].bed.as_ref().expect("bed");
                if bed.events_named("self-kill").is_empty() {
                    panic!("{} died on its own: {}", bed.name, bed.log_tail());
                }
                tally.failpoint_kills += 1;
                let config = config_for(&slots[i].state_dir, None);
                start(&mut slots[i], dir.path(), &config);
            }
        }
        let mode = tally.kills % 3;
        let mut victim = rng.random_range(0..slots.len());
        let marks: Vec<usize> = slots
            .iter()
            .map(|s| s.bed.as_ref().map_or(0, Testbed::event_count))
            .collect();
        match mode {
            // During a restore: kill whichever instance starts restoring next.
            0 => {
                let deadline = Instant::now() + Duration::from_secs(12);
                let mut found = false;
                while Instant::now() < deadline && !found {
                    for (i, slot) in slots.iter().enumerate() {
                        if let Some(bed) = &slot.bed
                            && bed
                                .wait_for(marks[i], Duration::ZERO, |e| {
                                    e["event"] == "restore-started"
                                })
                                .is_some()
                        {
                            victim = i;
                            found = true;
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                tokio::time::sleep(Duration::from_millis(rng.random_range(0..15))).await;
            }
            // During a rebalance: kill right after an assignment or revocation.
            1 => {
                let deadline = Instant::now() + Duration::from_secs(12);
                let mut found = false;
                while Instant::now() < deadline && !found {
                    for (i, slot) in slots.iter().enumerate() {
                        if let Some(bed) = &slot.bed
                            && bed
                                .wait_for(marks[i], Duration::ZERO, |e| {
                                    e["event"] == "assigned" || e["event"] == "revoked"
                                })
                                .is_some()
                        {
                            victim = if rng.random_bool(0.5) { i } else { 1 - i };
                            found = true;
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                tokio::time::sleep(Duration::from_millis(rng.random_range(0..80))).await;
            }
            // Anywhere.
            _ => tokio::time::sleep(Duration::from_millis(rng.random_range(200..1500))).await,
        }
        let rebalancing = last_membership_change(&slots)
            .is_some_and(|at| at.elapsed() < Duration::from_millis(500));
        let Some(mut bed) = slots[victim].bed.take() else {
            continue;
        };
        bed.kill();
        tokio::time::sleep(Duration::from_millis(50)).await;
        tally.kills += 1;
        // A kill can land in both: a rebalance starts restores.
        let in_restore = restoring(&bed.events());
        tally.during_restore += usize::from(in_restore);
        tally.during_rebalance += usize::from(rebalancing);
        tally.random += usize::from(!in_restore && !rebalancing);
        drop(bed);
        if rng.random_bool(0.2) {
            let _ = std::fs::remove_dir_all(&slots[victim].state_dir);
            tally.stores_deleted += 1;
        }
        tokio::time::sleep(Duration::from_millis(rng.random_range(0..400))).await;
        let crash = rng.random_bool(0.3).then(|| {
            json!({
                "stage": stages[rng.random_range(0..stages.len())],
                "probability": 0.15,
            })
        });
        let config = config_for(&slots[victim].state_dir, crash);
        start(&mut slots[victim], dir.path(), &config);
    }
    producing.await?;

    // Let both instances finish without failpoints.
    for slot in &mut slots {
        if let Some(mut bed) = slot.bed.take() {
            bed.kill();
        }
    }
    let config = config_for(&slots[0].state_dir, None);
    start(&mut slots[0], dir.path(), &config);
    let config = config_for(&slots[1].state_dir, None);
    start(&mut slots[1], dir.path(), &config);
    let expected = expected_outputs(&tokio::task::block_in_place(|| read_all(&bs, &input)));
    let check = tokio::task::block_in_place(|| {
        wait_complete(&bs, &output, &expected, Duration::from_secs(120))
    });
    let logs: String = slots
        .iter()
        .filter_map(|s| s.bed.as_ref())
        .map(|b| format!("--- {}\n{}", b.name, b.log_tail()))
        .collect();
    compare(&check, &expected).map_err(|e| anyhow::anyhow!("{e}\n{tally:?}\n{logs}"))?;
    for slot in &mut slots {
        if let Some(bed) = slot.bed.as_mut() {
            bed.terminate(Duration::from_secs(30));
        }
    }

    // The uninterrupted run of the same input.
    let clean_dir = dir.path().join("clean");
    let runtime = runtime_config(
        &env,
        &clean_dir,
        "toy-clean",
        json!({"topic_prefix": format!("{}clean.", env.namespace)}),
    );
    let mut clean = Testbed::spawn(
        dir.path(),
        "clean",
        &toy_config(
            runtime,
            std::slice::from_ref(&input),
            &clean_output,
            json!({}),
        ),
    );
    let clean_check = tokio::task::block_in_place(|| {
        wait_complete(&bs, &clean_output, &expected, Duration::from_secs(120))
    });
    compare(&clean_check, &expected).map_err(|e| anyhow::anyhow!("{e}\n{}", clean.log_tail()))?;
    assert!(clean.terminate(Duration::from_secs(30)));
    assert_eq!(
        check.by_idempotency_key, clean_check.by_idempotency_key,
        "the killed run differs from the uninterrupted one"
    );

    eprintln!(
        "crash test: {tally:?}; {} outputs ({} replays dropped by idempotency key), {} versions; {:.0?}",
        check.records,
        check.replays,
        check.by_idempotency_key.len(),
        started.elapsed()
    );
    assert!(tally.kills >= MIN_KILLS, "{tally:?}");
    assert!(
        tally.during_restore >= 3,
        "too few kills landed during a restore: {tally:?}"
    );
    assert!(
        tally.during_rebalance >= 3,
        "too few kills landed during a rebalance: {tally:?}"
    );
    env.cleanup().await?;
    Ok(())
}

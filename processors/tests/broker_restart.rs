//! A broker crash in the middle of processing changes nothing: the broker
//! (a private Tansu on the sqlite engine, which survives restarts) is killed
//! and restarted twice while the toy processor works; producers retry,
//! consumers reconnect, and the de-duplicated outputs are exact.

mod support;

use std::time::{Duration, Instant};

use afregning_stack::{BrokerStorage, start_private_broker};
use serde_json::json;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_restart_mid_run_changes_nothing() -> anyhow::Result<()> {
    afregning_testkit::init_logging();
    let started = Instant::now();
    let dir = tempfile::tempdir()?;
    let stack = afregning_testkit::stack_dir();
    let name = format!("broker-restart-{}", std::process::id());
    let db = dir.path().join("broker.db");
    let mut broker = tokio::task::spawn_blocking(move || {
        start_private_broker(&stack, &name, BrokerStorage::Sqlite(db))
    })
    .await??;
    let bs = broker.bootstrap_servers.clone();
    let namespace = "restart.";
    let input = format!("{namespace}numbers");
    let output = format!("{namespace}sums");
    create_topic(&bs, &input, 2, false).await;
    create_topic(&bs, &output, 2, false).await;
    produce(&producer(&bs), &input, &toy_inputs(0, 2000, 20, 2)).await;
    let expected = expected_outputs(&tokio::task::block_in_place(|| read_all(&bs, &input)));

    let config = toy_config(
        runtime_config_at(
            &bs,
            namespace,
            &dir.path().join("state"),
            "toy",
            json!({"batch_max_records": 100}),
        ),
        std::slice::from_ref(&input),
        &output,
        json!({}),
    );
    let mut bed = Testbed::spawn(dir.path(), "toy", &config);
    for round in 0..2 {
        // Let it commit a few batches, then take the broker down under it.
        let seen = bed.events_named("batch-committed").len();
        tokio::task::block_in_place(|| {
            bed.wait_for(0, Duration::from_secs(60), |e| {
                e["event"] == "batch-committed" && e["seq"].as_u64() > Some(2 + round * 3)
            })
        })
        .ok_or_else(|| {
            anyhow::anyhow!(
                "round {round}: no progress after {seen} batches: {}",
                bed.log_tail()
            )
        })?;
        let mut b = broker.clone();
        tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
            b.kill()?;
            std::thread::sleep(Duration::from_secs(2));
            b.restart()?;
            Ok(b)
        })
        .await??
        .clone_into(&mut broker);
    }
    let check = tokio::task::block_in_place(|| {
        wait_complete(&bs, &output, &expected, Duration::from_secs(120))
    });
    compare(&check, &expected).map_err(|e| anyhow::anyhow!("{e}\n{}", bed.log_tail()))?;
    assert!(
        bed.alive(),
        "the processor survived the broker restarts: {}",
        bed.log_tail()
    );
    assert!(bed.terminate(Duration::from_secs(30)), "{}", bed.log_tail());
    eprintln!(
        "broker restarts: exact results, {} outputs ({} replays), {:.0?}",
        check.records,
        check.replays,
        started.elapsed()
    );
    let b = broker.clone();
    tokio::task::spawn_blocking(move || b.stop()).await??;
    Ok(())
}

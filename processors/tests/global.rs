//! Global tables: caught up before any record is processed, changes handed
//! to running tasks, and changes that arrived while the processor was down
//! delivered when it starts.

mod support;

use std::time::Duration;

use serde_json::json;
use support::*;

const PARTITIONS: i32 = 2;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn global_tables_catch_up_first_and_deliver_every_change() -> anyhow::Result<()> {
    let env = TestEnv::start("global").await?;
    let bs = env.bootstrap_servers.clone();
    let input = env.topic("numbers");
    let output = env.topic("sums");
    let labels = env.topic("labels");
    create_topic(&bs, &input, PARTITIONS, false).await;
    create_topic(&bs, &output, PARTITIONS, false).await;
    create_topic(&bs, &labels, 3, true).await;
    let producer = producer(&bs);
    let label = |k: usize, v: &str| ((k % 3) as i32, format!("k{k}"), Some(format!("L{k}-{v}")));
    produce(
        &producer,
        &labels,
        &(0..10).map(|k| label(k, "v1")).collect::<Vec<_>>(),
    )
    .await;
    produce(&producer, &input, &toy_inputs(0, 1000, 10, PARTITIONS)).await;

    let dir = tempfile::tempdir()?;
    // Static membership: the restarted instance takes its tasks back at once.
    // With dynamic membership, Tansu 0.6.0 never hands a dead member's tasks
    // to a member that joined while the dead one's session was still open
    // (its rejoin in the formed group returns the old assignment); this
    // instance joins after catching up its tables, well within that window.
    let config = toy_config(
        runtime_config(
            &env,
            &dir.path().join("state"),
            "toy",
            // Tansu 0.6.0 pauses every static JoinGroup for 3 s or more and does
            // not refresh the member's last contact on a rejoin: with a 6 s
            // session a slow join (6.06 s seen in CI) plus the first heartbeat
            // interval expired the member and the group never assigned again
            // (docs/processors-runtime.md, local-broker gaps).
            json!({"group_instance_id": "toy-0", "session_timeout_ms": 15000}),
        ),
        std::slice::from_ref(&input),
        &output,
        json!({ "labels": labels }),
    );
    let mut bed = Testbed::spawn(dir.path(), "first", &config);
    tokio::task::block_in_place(|| {
        bed.wait_for(0, Duration::from_secs(60), |e| {
            e["event"] == "global-caught-up"
        })
    })
    .ok_or_else(|| anyhow::anyhow!("no catch-up: {}", bed.log_tail()))?;
    let outputs = tokio::task::block_in_place(|| {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let outputs = read_all(&bs, &output);
            if outputs.len() >= 950 || std::time::Instant::now() > deadline {
                return outputs;
            }
            std::thread::sleep(Duration::from_millis(300));
        }
    });
    assert!(
        outputs.len() >= 950,
        "processing stalled: {}",
        bed.log_tail()
    );
    // Every output carries the label: the table was complete before processing.
    for rec in &outputs {
        let key = rec.key.clone().unwrap_or_default();
        let value = rec.value.clone().unwrap_or_default();
        assert!(
            value.ends_with(&format!(",L{}-v1", &key[1..])),
            "{key} => {value}: processed before the table caught up"
        );
    }

    // A change while running is handed to the task that owns the key.
    produce(&producer, &labels, &[label(1, "v2")]).await;
    let relabel = |bs: &str, key: &str| {
        read_all(bs, &output)
            .into_iter()
            .filter(|r| r.key.as_deref() == Some(key))
            .map(|r| r.value.unwrap_or_default())
            .collect::<Vec<_>>()
    };
    let seen = tokio::task::block_in_place(|| {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let found = relabel(&bs, "relabel:k1");
            if !found.is_empty() || std::time::Instant::now() > deadline {
                return found;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    });
    assert_eq!(
        seen.first().map(String::as_str),
        Some("L1-v2"),
        "{}",
        bed.log_tail()
    );

    // A change while the processor is down is delivered when it starts.
    tokio::time::sleep(Duration::from_millis(500)).await;
    bed.kill();
    produce(&producer, &labels, &[label(2, "v2")]).await;
    let mut restarted = Testbed::spawn(dir.path(), "restarted", &config);
    let seen = tokio::task::block_in_place(|| {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let found = relabel(&bs, "relabel:k2");
            if !found.is_empty() || std::time::Instant::now() > deadline {
                return found;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    });
    assert_eq!(
        seen.first().map(String::as_str),
        Some("L2-v2"),
        "the change made while down was not delivered: {}",
        restarted.log_tail()
    );
    // Unchanged keys are not recomputed.
    assert!(
        relabel(&bs, "relabel:k3").is_empty(),
        "an unchanged entry was delivered as a change"
    );
    assert!(restarted.terminate(Duration::from_secs(30)));
    env.cleanup().await?;
    Ok(())
}

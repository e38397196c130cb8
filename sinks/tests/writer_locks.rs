//! The database sink's writer lanes exclude each other in PostgreSQL, not by
//! configuration: a lane locks its partitions (and shares its consumer's
//! lock), so two lanes never write one partition whatever lane counts two
//! instances were started with, and a whole-consumer writer (the ERP sink's
//! kind of lock) and a lane never run together. Against the real PostgreSQL.

use std::time::Duration;

mod database;

use afregning_sinks::positions::{lock_consumer, lock_partitions, try_lock_partitions};
use sqlx::PgConnection;

async fn connect() -> PgConnection {
    database::connect("writer locks test").await
}

/// A consumer name no other test or run uses (advisory locks are per database).
fn consumer(what: &str) -> String {
    format!("writer-locks-{what}-{}", std::process::id())
}

#[tokio::test]
async fn two_lanes_never_hold_one_partition_and_a_failed_attempt_holds_nothing() {
    let name = consumer("lanes");
    let mut first = connect().await;
    lock_partitions(&mut first, &name, &[0, 2]).await.unwrap();

    // Another instance's lane of another lane count wants 1 and 2: refused, and it
    // let go of 1, which it had taken before 2 was refused.
    let mut second = connect().await;
    assert!(
        !try_lock_partitions(&mut second, &name, &[1, 2])
            .await
            .unwrap()
    );
    let mut third = connect().await;
    assert!(
        try_lock_partitions(&mut third, &name, &[1]).await.unwrap(),
        "partition 1 was left locked by a refused attempt"
    );

    // Waiting is the standby: it gets partition 2 once the first lane's connection ends.
    let waiting = tokio::spawn(async move {
        lock_partitions(&mut second, &name, &[2]).await.unwrap();
        second
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !waiting.is_finished(),
        "took a partition another lane holds"
    );
    drop(first);
    let second = tokio::time::timeout(Duration::from_secs(10), waiting)
        .await
        .expect("the standby lane takes the partition once it is free")
        .unwrap();
    drop((second, third));
}

#[tokio::test]
async fn a_whole_consumer_writer_and_a_lane_exclude_each_other() {
    let name = consumer("whole");
    let mut lane = connect().await;
    lock_partitions(&mut lane, &name, &[0]).await.unwrap();
    let mut whole = connect().await;
    let waited = tokio::time::timeout(
        Duration::from_millis(1_500),
        lock_consumer(&mut whole, &name),
    )
    .await;
    assert!(
        waited.is_err(),
        "the consumer's lock was taken beside a lane"
    );
    drop(lane);

    let mut whole = connect().await;
    lock_consumer(&mut whole, &name).await.unwrap();
    let mut lane = connect().await;
    assert!(
        !try_lock_partitions(&mut lane, &name, &[3]).await.unwrap(),
        "a lane started beside a whole-consumer writer"
    );
    drop((whole, lane));
}

//! Replay by time on the real broker: the first offset at or after a time,
//! found by the broker's offsets-for-times answer when the records confirm
//! it, and by a search over record timestamps otherwise (forced here too).
//! Every answer is checked against the records as produced.

use std::time::Duration;

use afregning_processors::replay::offsets::{
    OffsetSource, PartitionReader, offset_for_time, reader_consumer,
};
use afregning_testkit::TestEnv;
use chrono::{DateTime, TimeZone, Utc};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::BaseConsumer;
use rdkafka::producer::{FutureProducer, FutureRecord};

/// Record `i` is stamped `BASE + 10 s × i` (three records share each stamp from
/// 30 on, so "the first at or after" is tested where times repeat).
fn stamp(i: i64) -> i64 {
    let base = Utc
        .with_ymd_and_hms(2026, 3, 1, 0, 0, 0)
        .unwrap()
        .timestamp_millis();
    let step = if i < 30 { i } else { 30 + (i - 30) / 3 };
    base + step * 10_000
}

fn at(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).expect("time")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_start_offset_for_a_time_is_the_first_record_at_or_after_it_on_both_paths()
-> anyhow::Result<()> {
    let env = TestEnv::start("replay-offsets").await?;
    let topic = env.topic("replay-offsets");
    let admin: AdminClient<DefaultClientContext> = env.kafka_config().create()?;
    admin
        .create_topics(
            &[NewTopic::new(&topic, 1, TopicReplication::Fixed(1))],
            &AdminOptions::new(),
        )
        .await?;
    let producer: FutureProducer = env.kafka_config().set("linger.ms", "50").create()?;
    let count = 90;
    // Sent concurrently so they land in a few multi-record batches (a fetch inside a
    // batch is the local broker's other gap the reader must survive).
    let sends: Vec<_> = (0..count)
        .map(|i| {
            let value = format!("record {i}");
            let producer = producer.clone();
            let topic = topic.clone();
            async move {
                producer
                    .send(
                        FutureRecord::<(), _>::to(&topic)
                            .partition(0)
                            .payload(&value)
                            .timestamp(stamp(i)),
                        Duration::from_secs(10),
                    )
                    .await
                    .map_err(|(e, _)| e)
            }
        })
        .collect();
    for result in futures::future::join_all(sends).await {
        result?;
    }
    let consumer: BaseConsumer = reader_consumer(&env.kafka_config())?;
    let reader = PartitionReader::new(&consumer, &topic, 0, Duration::from_secs(20));
    assert_eq!(reader.bounds()?.end, count, "the end read from the records");

    // Times before, at, between and after the records; the truth from the stamps.
    let mut times: Vec<i64> = vec![
        stamp(0) - 5_000,
        stamp(0),
        stamp(7),
        stamp(7) + 1,
        stamp(45),
        stamp(count - 1),
        stamp(count - 1) + 1,
    ];
    times.extend([stamp(29) + 5_000, stamp(61)]);
    let mut broker_confirmed = 0;
    let mut broker_wrong = Vec::new();
    for ms in times {
        let truth = (0..count).find(|i| stamp(*i) >= ms).unwrap_or(count);
        let searched = offset_for_time(&reader, at(ms), true)?;
        assert_eq!(searched.source, OffsetSource::Search);
        assert_eq!(searched.broker_answer, None, "the broker is not asked");
        assert_eq!(searched.offset, truth, "search for {}", at(ms));
        let asked = offset_for_time(&reader, at(ms), false)?;
        assert_eq!(
            asked.offset,
            truth,
            "broker path for {} (answer {:?})",
            at(ms),
            asked.broker_answer
        );
        match asked.source {
            OffsetSource::Broker => {
                assert_eq!(asked.broker_answer, Some(truth));
                broker_confirmed += 1;
            }
            OffsetSource::Search => {
                assert_ne!(asked.broker_answer, Some(truth), "a right answer is taken");
                broker_wrong.push((at(ms), asked.broker_answer, truth));
            }
        }
    }
    eprintln!(
        "offsets for times: {broker_confirmed} broker answers confirmed by the records, {} wrong and replaced by the search: {broker_wrong:?}",
        broker_wrong.len()
    );
    // librdkafka 2.12 crashes (a null topic name in its metadata cache) when a
    // client still holding the topic sees it deleted by the clean-up: close first.
    drop(reader);
    drop(consumer);
    drop(producer);
    env.cleanup().await?;
    Ok(())
}

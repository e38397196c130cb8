//! The processors' consumer groups' lag through the API, against the real
//! broker: validate runs over three records on partition 1 of the Timeseries
//! raw topic until its group committed them, then stops; two more records
//! arrive. Checked:
//! - 401 without a token, 403 for billing;
//! - validate's group on partition 1: committed 3, end 5, lag 2 (the end read
//!   from the records: the local broker's ListOffsets answers the last batch's
//!   first offset + 1, decision 0057, so a watermark alone could show less);
//! - a partition validate has nothing on: no commit, end 0, no lag figure;
//! - every processor of the topology is listed with its group, enrich's never
//!   committed (it never ran);
//! - the sinks' lag (`/v1/operations/lag`) reads its ends the same way;
//! - the console's pipeline page shows the same rows;
//! - without a broker the route answers 503.

mod support;

use std::time::{Duration, Instant};

use afregning_topology::catalogue::TopicId;
use serde_json::Value;
use support::{Harness, broker, problem, token};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn each_processor_group_shows_its_committed_offsets_against_the_ends() -> anyhow::Result<()> {
    afregning_testkit::init_logging();
    let (h, catalogue) = broker::harness("api-processor-lag", 3).await?;
    let raw = catalogue.spec(TopicId::TimeseriesRaw)?.name.clone();
    for i in 0..3 {
        broker::produce_raw(&h, &raw, 1, &format!("m-{i}"), "not JSON").await?;
    }
    let validate = broker::run_validate(&h, &catalogue).await?;
    let deadline = Instant::now() + Duration::from_secs(120);
    while broker::committed(&h, "validate", &raw, 1).await? < 3 {
        anyhow::ensure!(Instant::now() < deadline, "validate did not commit");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    validate.stop().await?;
    for i in 3..5 {
        broker::produce_raw(&h, &raw, 1, &format!("m-{i}"), "not JSON").await?;
    }

    let path = "/v1/operations/processor-lag";
    problem(h.get(path, None).await, 401).await;
    problem(h.get(path, Some(&token("billing"))).await, 403).await;
    let response = h.get(path, Some(&token("readonly"))).await;
    assert_eq!(response.status(), 200);
    let rows: Vec<Value> = response.json().await?;
    let row = |group: &str, topic: &str, partition: i64| {
        rows.iter()
            .find(|r| r["group"] == group && r["topic"] == topic && r["partition"] == partition)
            .cloned()
            .unwrap_or_else(|| panic!("no row {group} {topic}[{partition}] in {rows:?}"))
    };
    let validate_group = format!("{}afregning.validate", h.env.namespace);
    let p1 = row(&validate_group, &raw, 1);
    assert_eq!(p1["processor"], "validate");
    assert_eq!(p1["committed_offset"], 3);
    assert_eq!(p1["end_offset"], 5);
    assert_eq!(p1["lag"], 2);
    let p0 = row(&validate_group, &raw, 0);
    assert_eq!(p0["end_offset"], 0);
    assert!(p0["lag"].is_null() || p0["lag"] == 0, "{p0}");
    let enriched = catalogue.spec(TopicId::MeteringPoints)?.name.clone();
    let enrich = row(
        &format!("{}afregning.enrich", h.env.namespace),
        &enriched,
        0,
    );
    assert!(enrich["committed_offset"].is_null(), "{enrich}");
    assert!(enrich["lag"].is_null(), "{enrich}");
    let groups: std::collections::BTreeSet<&str> = rows
        .iter()
        .filter_map(|r| r["processor"].as_str())
        .collect();
    for processor in afregning_topology::processors::PROCESSORS {
        assert!(
            groups.contains(processor.component.name()),
            "{} missing from {groups:?}",
            processor.component.name()
        );
    }

    // The sinks' lag takes its ends from the records too: a sink at offset 2 of
    // partition 1 is 3 behind.
    sqlx::query(
        "INSERT INTO sink_offset (consumer, topic, partition, next_offset) \
         VALUES ('sink-test', $1, 1, 2)",
    )
    .bind(&raw)
    .execute(&h.pool)
    .await?;
    let sinks: Vec<Value> = h
        .get("/v1/operations/lag", Some(&token("operator")))
        .await
        .json()
        .await?;
    let sink = sinks
        .iter()
        .find(|r| r["consumer"] == "sink-test")
        .expect("the sink's row");
    assert_eq!(
        (sink["end_offset"].clone(), sink["lag"].clone()),
        (5.into(), 3.into()),
        "{sink}"
    );

    // The console's pipeline page: the same row.
    let page = h
        .http
        .get(format!("{}/console/lag", h.base))
        .header("cookie", format!("afregning_token={}", token("operator")))
        .send()
        .await?
        .text()
        .await?;
    let table = page
        .split("id=\"processor-lag\"")
        .nth(1)
        .expect("the processors' table");
    assert!(
        table.contains(&format!(
            "<td>{validate_group}</td><td>{raw}</td><td class=\"num\">1</td><td class=\"num\">3</td>\
             <td class=\"num\">5</td><td class=\"num\">2</td>"
        )),
        "{table}"
    );
    h.stop().await?;

    // Without a broker: 503.
    let h = Harness::start("api-processor-lag-none").await?;
    problem(h.get(path, Some(&token("operator"))).await, 503).await;
    h.stop().await?;
    Ok(())
}

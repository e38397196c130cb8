//! Replay through the API, against the real PostgreSQL and the real broker:
//! the topology is applied under the test's prefix and two raw DataHub
//! records are on the Timeseries raw topic, each with a dead letter as the
//! sink records it. Checked:
//! - `POST /v1/dead-letters/resubmit`: 401 without a token, 403 for
//!   backoffice, 422 without a reason or a selection, 404 for a dead letter
//!   that does not exist, 409 for one not resolved; once resolved (through the
//!   API) the record is produced again to its topic and partition with the
//!   original's key, value and headers and the two re-submission headers, the
//!   run is recorded (kind `dead-letters`, the token's subject, the reason)
//!   with where it landed, and the audit row names the run and carries the
//!   request id; the same one again is 409, with `again` a second run;
//! - `GET /v1/replay-runs` and `/{run_id}`: 401, 403 for billing, the runs
//!   newest first, one run with its re-submissions, 404 for an unknown id;
//! - `POST /v1/replay-runs`: 403 for backoffice, 422 for an unknown processor,
//!   a partition outside the topics, grid areas for validate, both an offset
//!   and a time, no reason; with no processor running under the prefix, 503
//!   and the run recorded `failed` beside its audit row; with validate running,
//!   202 and the run `running`, then the API's follower records it `done` with
//!   partition 1's `applied` and `caught-up` reports and the end offsets it
//!   started with.

mod support;

use std::time::{Duration, Instant};

use afregning_processors::replay::dead_letters::{RESUBMISSION_RUN, RESUBMITTED_FROM};
use afregning_processors::replay::offsets::{PartitionReader, reader_consumer};
use afregning_topology::catalogue::TopicId;
use afregning_topology::raw_headers;
use rdkafka::Message;
use rdkafka::message::{Headers, OwnedMessage};
use serde_json::{Value, json};
use support::{Harness, broker, problem, token};

const PARTITIONS: u32 = 3;

/// Produces two records validate cannot read to partition 1 of `raw` and
/// records a dead letter for each, as the sink would; their offsets.
async fn dead_lettered(h: &Harness, raw: &str) -> anyhow::Result<Vec<i64>> {
    let mut offsets = Vec::new();
    for (id, payload) in [("m-bad-1", "this is not JSON"), ("m-bad-2", "{\"no\": 1}")] {
        let offset = broker::produce_raw(h, raw, 1, id, payload).await?;
        sqlx::query(
            "INSERT INTO dead_letter (source_topic, source_partition, source_offset, source_key, \
             payload, source_message_id, component, error_class, reason, failed_at, attempts, \
             dead_letter_partition, dead_letter_offset) \
             VALUES ($1, 1, $2, $3, $4, $5, 'validate', 'malformed_json', $6, now(), 1, 0, $2)",
        )
        .bind(raw)
        .bind(offset)
        .bind(id.as_bytes())
        .bind(payload.as_bytes())
        .bind(id)
        .bind(format!("not a document ({id})"))
        .execute(&h.pool)
        .await?;
        offsets.push(offset);
    }
    Ok(offsets)
}

fn letter(raw: &str, offset: i64) -> Value {
    json!({"source_topic": raw, "source_partition": 1, "source_offset": offset})
}

fn header(m: &OwnedMessage, name: &str) -> Option<String> {
    m.headers().and_then(|h| {
        h.iter()
            .find(|x| x.key == name)
            .map(|x| String::from_utf8_lossy(x.value.unwrap_or_default()).to_string())
    })
}

/// The audit row of `action` on `target`: (actor, reason, request id).
async fn audit_row(
    h: &Harness,
    action: &str,
    target: &str,
) -> anyhow::Result<Option<(String, String, String)>> {
    Ok(sqlx::query_as(
        "SELECT actor, reason, request_id FROM api_audit WHERE action = $1 AND target = $2",
    )
    .bind(action)
    .bind(target)
    .fetch_optional(&h.pool)
    .await?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dead_letters_are_resubmitted_and_replay_runs_started_and_read() -> anyhow::Result<()> {
    afregning_testkit::init_logging();
    let (h, catalogue) = broker::harness("api-replay", PARTITIONS).await?;
    let raw = catalogue.spec(TopicId::TimeseriesRaw)?.name.clone();
    let offsets = dead_lettered(&h, &raw).await?;
    let (first, second) = (offsets[0], offsets[1]);
    let operator = token("operator");
    let resubmit = "/v1/dead-letters/resubmit";
    let body = |letters: Value| json!({"dead_letters": letters, "reason": "validate fixed"});

    // Refusals: who, what, and nothing recorded.
    h.refused(resubmit, None, &body(json!([letter(&raw, first)])), 401)
        .await;
    h.refused(
        resubmit,
        Some(&token("backoffice")),
        &body(json!([letter(&raw, first)])),
        403,
    )
    .await;
    h.refused(
        resubmit,
        Some(&operator),
        &json!({"dead_letters": [letter(&raw, first)]}),
        422,
    )
    .await;
    h.refused(
        resubmit,
        Some(&operator),
        &json!({"reason": "nothing named"}),
        422,
    )
    .await;
    h.refused(
        resubmit,
        Some(&operator),
        &body(json!([letter(&raw, second + 100)])),
        404,
    )
    .await;
    let unresolved = h
        .refused(
            resubmit,
            Some(&operator),
            &body(json!([letter(&raw, first)])),
            409,
        )
        .await;
    assert!(
        unresolved["detail"]
            .as_str()
            .is_some_and(|d| d.contains("is not resolved")),
        "{unresolved}"
    );
    let runs: i64 = sqlx::query_scalar("SELECT count(*) FROM replay_run")
        .fetch_one(&h.pool)
        .await?;
    assert_eq!(runs, 0, "a refusal records no run");

    // Resolved through the API, then re-submitted.
    let resolved = h
        .post(
            "/v1/dead-letters/resolve",
            Some(&operator),
            &json!({"source_topic": raw, "source_partition": 1, "source_offset": first,
                "note": "validate reads it now"}),
        )
        .await;
    assert_eq!(resolved.status(), 200);
    let response = h
        .http
        .post(format!("{}{resubmit}", h.base))
        .bearer_auth(&operator)
        .header("x-request-id", "resubmit-1")
        .json(&body(json!([letter(&raw, first)])))
        .send()
        .await?;
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await?;
    let run_id = answer["run_id"].as_str().expect("a run id").to_string();
    let went = &answer["resubmitted"];
    assert_eq!(went.as_array().map(Vec::len), Some(1), "{answer}");
    let id = format!("{raw}/1/{first}");
    assert_eq!(went[0]["dead_letter"], id);
    assert_eq!(
        went[0]["partition"], 1,
        "back to the partition it came from"
    );
    assert_eq!(went[0]["from_source"], true);
    let new_offset = went[0]["offset"].as_i64().expect("an offset");
    assert!(new_offset > second, "{answer}");

    // The record on the topic: the original's key, value and headers, and the marks.
    let consumer = reader_consumer(&h.env.kafka_config())?;
    let reader = PartitionReader::new(&consumer, &raw, 1, Duration::from_secs(20));
    let bounds = reader.bounds()?;
    let original = reader.record_at(first, bounds)?.expect("the original");
    let copy = reader.record_at(new_offset, bounds)?.expect("the copy");
    assert_eq!(copy.key(), original.key());
    assert_eq!(copy.payload(), original.payload());
    for name in [raw_headers::MESSAGE_ID, raw_headers::QUEUE] {
        assert!(header(&original, name).is_some(), "{name}");
        assert_eq!(header(&copy, name), header(&original, name), "{name}");
    }
    assert_eq!(header(&copy, RESUBMITTED_FROM), Some(id.clone()));
    assert_eq!(header(&copy, RESUBMISSION_RUN), Some(run_id.clone()));
    drop(reader);
    drop(consumer);

    // Recorded: the run, where the record went, and the audit row with the request id.
    let (kind, state, who, why): (String, String, String, String) =
        sqlx::query_as("SELECT kind, state, operator, reason FROM replay_run WHERE run_id = $1")
            .bind(&run_id)
            .fetch_one(&h.pool)
            .await?;
    assert_eq!(
        (kind.as_str(), state.as_str(), who.as_str(), why.as_str()),
        (
            "dead-letters",
            "done",
            "operator@example.test",
            "validate fixed"
        )
    );
    let landed: (i32, i64) = sqlx::query_as(
        "SELECT resubmitted_partition, resubmitted_offset FROM replay_resubmission \
         WHERE run_id = $1 AND source_offset = $2",
    )
    .bind(&run_id)
    .bind(first)
    .fetch_one(&h.pool)
    .await?;
    assert_eq!(landed, (1, new_offset));
    let audit = audit_row(&h, "dead_letter.resubmit", &format!("replay_run:{run_id}")).await?;
    assert_eq!(
        audit,
        Some((
            "operator@example.test".to_string(),
            "validate fixed".to_string(),
            "resubmit-1".to_string()
        ))
    );
    assert_eq!(
        answer["audit_id"].as_i64(),
        sqlx::query_scalar::<_, i64>(
            "SELECT audit_id FROM api_audit WHERE request_id = 'resubmit-1'"
        )
        .fetch_one(&h.pool)
        .await
        .ok()
    );

    // Again: refused, then with `again` a second run.
    h.refused(
        resubmit,
        Some(&operator),
        &body(json!([letter(&raw, first)])),
        409,
    )
    .await;
    let again = h
        .post(
            resubmit,
            Some(&operator),
            &json!({"dead_letters": [letter(&raw, first)], "again": true, "reason": "once more"}),
        )
        .await;
    assert_eq!(again.status(), 200);
    let again: Value = again.json().await?;
    assert_ne!(again["run_id"], json!(run_id));
    assert!(again["resubmitted"][0]["offset"].as_i64() > Some(new_offset));

    // Reading the runs.
    problem(h.get("/v1/replay-runs", None).await, 401).await;
    problem(h.get("/v1/replay-runs", Some(&token("billing"))).await, 403).await;
    let listed: Value = h
        .get("/v1/replay-runs", Some(&token("readonly")))
        .await
        .json()
        .await?;
    let ids: Vec<&str> = listed
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(|r| r["run_id"].as_str())
        .collect();
    assert_eq!(
        ids,
        vec![again["run_id"].as_str().expect("id"), run_id.as_str()],
        "newest first"
    );
    let shown: Value = h
        .get(&format!("/v1/replay-runs/{run_id}"), Some(&operator))
        .await
        .json()
        .await?;
    assert_eq!(shown["kind"], "dead-letters");
    assert_eq!(shown["resubmissions"][0]["resubmitted_offset"], new_offset);
    assert_eq!(shown["resubmissions"][0]["source_offset"], first);
    problem(h.get("/v1/replay-runs/r-none", Some(&operator)).await, 404).await;

    // The console's page lists them too.
    let page = h
        .http
        .get(format!("{}/console/replay-runs", h.base))
        .header("cookie", format!("afregning_token={}", token("readonly")))
        .send()
        .await?
        .text()
        .await?;
    let table = page
        .split("id=\"replay-runs\"")
        .nth(1)
        .expect("the runs' table");
    assert!(
        table.contains(&format!(
            "<tr><td>{run_id}</td><td>dead-letters</td><td>done</td>"
        )),
        "{table}"
    );

    // Starting a recalculation: refusals first.
    let runs_path = "/v1/replay-runs";
    let start = |extra: Value| {
        let mut body = json!({"processor": "validate", "partitions": [1], "from_offset": 0,
            "reason": "validate's rules changed"});
        for (k, v) in extra.as_object().expect("an object") {
            body[k] = v.clone();
        }
        body
    };
    h.refused(runs_path, None, &start(json!({})), 401).await;
    h.refused(
        runs_path,
        Some(&token("backoffice")),
        &start(json!({})),
        403,
    )
    .await;
    for bad in [
        json!({"processor": "nothing"}),
        json!({"partitions": [PARTITIONS]}),
        json!({"grid_areas": ["344"]}),
        json!({"from_time": "2026-03-01T00:00:00Z"}),
        json!({"reason": " "}),
    ] {
        h.refused(runs_path, Some(&operator), &start(bad), 422)
            .await;
    }
    h.refused(
        runs_path,
        Some(&operator),
        &json!({"reason": "no processor"}),
        422,
    )
    .await;

    // No processor instance under the prefix yet: 503, recorded as failed with its audit row.
    let refused = h
        .refused(runs_path, Some(&operator), &start(json!({})), 503)
        .await;
    assert!(
        refused["detail"]
            .as_str()
            .is_some_and(|d| d.contains("no processor instance")),
        "{refused}"
    );
    let (failed_id, failed_error): (String, Option<String>) = sqlx::query_as(
        "SELECT run_id, error FROM replay_run WHERE kind = 'recalculate' AND state = 'failed'",
    )
    .fetch_one(&h.pool)
    .await?;
    assert!(failed_error.is_some());
    assert!(
        audit_row(&h, "replay.start", &format!("replay_run:{failed_id}"))
            .await?
            .is_some()
    );

    // validate running: started, followed, recorded. The run is asked for as soon as
    // validate's instance is there (503 before), i.e. while its tasks restore for the first
    // time: a request the first restore finds in the request table is acted on too.
    let validate = broker::run_validate(&h, &catalogue).await?;
    let deadline = Instant::now() + Duration::from_secs(60);
    let started = loop {
        let response = h.post(runs_path, Some(&operator), &start(json!({}))).await;
        if response.status() != 503 || Instant::now() > deadline {
            break response;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(started.status(), 202);
    let started: Value = started.json().await?;
    let started_id = started["run"]["run_id"]
        .as_str()
        .expect("a run id")
        .to_string();
    assert_eq!(started["run"]["state"], "running");
    assert_eq!(started["run"]["operator"], "operator@example.test");
    assert_eq!(started["run"]["partitions"], json!([1]));
    assert_eq!(started["run"]["start_offsets"]["1"][&raw], 0);
    let end = started["run"]["end_offsets"]["1"][&raw]
        .as_i64()
        .expect("an end");
    assert!(
        end > again["resubmitted"][0]["offset"].as_i64().expect("offset"),
        "the end is the partition's end when the run started: {started}"
    );
    assert!(
        audit_row(&h, "replay.start", &format!("replay_run:{started_id}"))
            .await?
            .is_some()
    );
    let deadline = Instant::now() + Duration::from_secs(180);
    let done = loop {
        let shown: Value = h
            .get(&format!("/v1/replay-runs/{started_id}"), Some(&operator))
            .await
            .json()
            .await?;
        if shown["state"] != "running" || Instant::now() > deadline {
            break shown;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(done["state"], "done", "{done}");
    let kinds: Vec<&str> = done["reports"]["1"]
        .as_array()
        .expect("partition 1's reports")
        .iter()
        .filter_map(|r| r["kind"].as_str())
        .collect();
    assert!(
        kinds.contains(&"applied") && kinds.contains(&"caught-up"),
        "{done}"
    );
    assert!(done["summary"].is_object(), "{done}");
    validate.stop().await?;
    h.stop().await?;
    Ok(())
}

//! The API against a real PostgreSQL with the sinks' migrated schema, rows
//! written the way the sinks write them: every endpoint's 401 without a token
//! and 403 for a role without the right, its answers, the problem details of
//! bad input, and the audit row of each change.

mod support;

use reqwest::Method;
use serde_json::{Value, json};
use support::{GSRN, Harness, RUN_ID, hs256, problem, rs256, token};

/// Every `/v1` endpoint: (method, path, permission's holders).
fn endpoints() -> Vec<(Method, String, &'static [&'static str])> {
    const ALL: &[&str] = &["operator", "backoffice", "billing", "readonly"];
    const OPERATIONS: &[&str] = &["operator", "backoffice", "readonly"];
    let get = Method::GET;
    vec![
        (get.clone(), "/v1/metering-points?grid_area=344".into(), ALL),
        (get.clone(), format!("/v1/metering-points/{GSRN}"), ALL),
        (
            get.clone(),
            format!("/v1/metering-points/{GSRN}/metering-data?from=2026-03-01&to=2026-03-02"),
            ALL,
        ),
        (
            get.clone(),
            format!(
                "/v1/metering-points/{GSRN}/metering-data/compare?from=2026-03-01&to=2026-03-08\
                 &other_from=2026-03-08&other_to=2026-03-15"
            ),
            ALL,
        ),
        (get.clone(), "/v1/completeness/2026-03-29".into(), ALL),
        (get.clone(), format!("/v1/settlements/{GSRN}/2026-03"), ALL),
        (
            get.clone(),
            format!("/v1/settlements/{GSRN}/2026-03/versions"),
            ALL,
        ),
        (
            get.clone(),
            format!("/v1/settlements/{GSRN}/2026-03/explain"),
            ALL,
        ),
        (get.clone(), format!("/v1/statements/{GSRN}/2026-03"), ALL),
        (get.clone(), "/v1/billing-runs".into(), &["billing"]),
        (
            get.clone(),
            format!("/v1/billing-runs/{RUN_ID}?format=csv"),
            &["billing"],
        ),
        (get.clone(), "/v1/rates/344".into(), ALL),
        (get.clone(), "/v1/operations/lag".into(), OPERATIONS),
        (get.clone(), "/v1/audit".into(), OPERATIONS),
        (get.clone(), "/v1/dead-letters".into(), OPERATIONS),
        (get.clone(), "/v1/dead-letters/raw/3/42".into(), OPERATIONS),
        (
            Method::POST,
            "/v1/dead-letters/resolve".into(),
            &["operator"],
        ),
    ]
}

#[tokio::test]
async fn every_endpoint_wants_a_token_and_the_right_role() -> anyhow::Result<()> {
    let h = Harness::start("api_auth").await?;
    // A body that would be refused (no note) if it got past the guard, so
    // the allowed role's call changes nothing.
    let body = json!({"source_topic": "raw", "source_partition": 3, "source_offset": 42});
    let mut checked = 0;
    for (method, path, holders) in endpoints() {
        let send = |token: Option<String>| {
            let mut request = h.http.request(method.clone(), format!("{}{path}", h.base));
            if method == Method::POST {
                request = request.json(&body);
            }
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            request.send()
        };
        let none = problem(send(None).await?, 401).await;
        assert_eq!(none["code"], "unauthorized");
        problem(send(Some("not.a.jwt".into())).await?, 401).await;
        for role in ["operator", "backoffice", "billing", "readonly"] {
            let response = send(Some(token(role))).await?;
            if holders.contains(&role) {
                let status = response.status().as_u16();
                assert!(
                    status != 401 && status != 403,
                    "{method} {path} as {role}: {status}"
                );
            } else {
                let refused = problem(response, 403).await;
                assert_eq!(refused["code"], "forbidden", "{method} {path} as {role}");
            }
        }
        checked += 1;
    }
    println!("{checked} endpoints checked for 401 and 403 with each of 4 roles");

    // Expired, wrongly signed, and RS256 from the JWKS file.
    let expired = hs256("op@example.test", &["operator"], -120);
    problem(h.get("/v1/dead-letters", Some(&expired)).await, 401).await;
    // Another last signature character, one that differs in the bits it encodes ('A' and
    // 'E' differ in them; the original is 'A' one time in sixteen, which made this flaky).
    let mut forged = token("operator");
    let last = forged.pop();
    forged.push(if last == Some('A') { 'E' } else { 'A' });
    problem(h.get("/v1/dead-letters", Some(&forged)).await, 401).await;
    let rs = rs256("idp-user", &["readonly", "some-other-system-role"]);
    assert_eq!(h.get("/v1/dead-letters", Some(&rs)).await.status(), 200);
    problem(
        h.post(
            "/v1/dead-letters/resolve",
            Some(&rs),
            &json!({"source_topic": "raw", "source_partition": 3, "source_offset": 42, "note": "x"}),
        )
        .await,
        403,
    )
    .await;
    let no_roles = hs256("nobody", &[], 600);
    problem(h.get("/v1/rates/344", Some(&no_roles)).await, 403).await;

    // Public: health, metrics, the OpenAPI document and its page.
    for path in ["/health", "/metrics", "/openapi.json", "/docs"] {
        assert_eq!(h.get(path, None).await.status(), 200, "{path}");
    }
    h.stop().await
}

#[tokio::test]
async fn reads_answer_from_the_sink_tables() -> anyhow::Result<()> {
    let h = Harness::start("api_reads").await?;
    let reader = token("readonly");
    let get = |path: String| {
        let reader = reader.clone();
        let h = &h;
        async move {
            let response = h.get(&path, Some(&reader)).await;
            assert_eq!(response.status(), 200, "{path}");
            response.json::<Value>().await.expect("JSON")
        }
    };

    // Portfolio: pages of two in GSRN order, then the last page.
    let first = get("/v1/metering-points?grid_area=344&page_size=2".into()).await;
    let gsrns: Vec<&str> = first["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["gsrn"].as_str().unwrap())
        .collect();
    assert_eq!(gsrns, ["571313180400000001", "571313180400000002"]);
    let after = first["next_after"].as_str().unwrap();
    let second = get(format!(
        "/v1/metering-points?grid_area=344&page_size=2&after={after}"
    ))
    .await;
    assert_eq!(second["items"][0]["gsrn"], GSRN);
    assert!(second["next_after"].is_null());
    let other_area = get("/v1/metering-points?grid_area=740".into()).await;
    assert_eq!(other_area["items"].as_array().unwrap().len(), 1);

    // One metering point: both periods and both messages.
    let point = get(format!("/v1/metering-points/{GSRN}")).await;
    assert_eq!(point["periods"].as_array().unwrap().len(), 2);
    assert_eq!(point["history"].as_array().unwrap().len(), 2);
    assert_eq!(point["periods"][0]["source_message_id"], "msg-mp-1");

    // Metering data at resolution: the DST day has 92 quarter-hours of 2.9 kWh.
    let dst = get(format!(
        "/v1/metering-points/{GSRN}/metering-data?from=2026-03-29&to=2026-03-30"
    ))
    .await;
    assert_eq!(dst["resolution"], "PT15M");
    assert_eq!(dst["buckets"].as_array().unwrap().len(), 92);
    assert_eq!(dst["expected_positions"], 92);
    assert_eq!(dst["total_kwh"], "266.800");
    // Per hour on the 2nd: 24 hours, the first (local 00-01) estimated.
    let hours = get(format!(
        "/v1/metering-points/{GSRN}/metering-data?from=2026-03-02&to=2026-03-03&aggregate=hour"
    ))
    .await;
    assert_eq!(hours["buckets"].as_array().unwrap().len(), 24);
    assert_eq!(hours["buckets"][0]["qualities"]["estimated"], 4);
    assert_eq!(hours["buckets"][0]["quantity_kwh"], "0.800");
    assert_eq!(hours["buckets"][1]["qualities"]["measured"], 4);
    // Per day over March: 30 days with data (the 15th is missing).
    let days = get(format!(
        "/v1/metering-points/{GSRN}/metering-data?from=2026-03-01&to=2026-04-01&aggregate=day"
    ))
    .await;
    assert_eq!(days["buckets"].as_array().unwrap().len(), 30);
    assert_eq!(days["expected_positions"], 31 * 96 - 4);
    assert_eq!(days["received_positions"], 31 * 96 - 4 - 96);
    let month = get(format!(
        "/v1/metering-points/{GSRN}/metering-data?from=2026-03-01&to=2026-04-01&aggregate=month"
    ))
    .await;
    assert_eq!(month["buckets"].as_array().unwrap().len(), 1);
    assert_eq!(month["total_kwh"], days["total_kwh"]);
    // Compare the first week with the second: each day d has 9.6 d kWh.
    let compare = get(format!(
        "/v1/metering-points/{GSRN}/metering-data/compare?from=2026-03-01&to=2026-03-08\
         &other_from=2026-03-08&other_to=2026-03-15"
    ))
    .await;
    // Week 1: 9.6 × (1+…+7) = 268.8; week 2: 9.6 × (8+…+14) = 739.2.
    assert_eq!(compare["first"]["total_kwh"], "268.800");
    assert_eq!(compare["second"]["total_kwh"], "739.200");
    assert_eq!(compare["difference_kwh"], "470.400");

    // Settlement: latest version, versions, explanation with its inputs.
    let latest = get(format!("/v1/settlements/{GSRN}/2026-03")).await;
    assert_eq!(latest["version"], 2);
    assert_eq!(latest["lines"].as_array().unwrap().len(), 2);
    let versions = get(format!("/v1/settlements/{GSRN}/2026-03/versions")).await;
    assert_eq!(versions.as_array().unwrap().len(), 2);
    let explained = get(format!("/v1/settlements/{GSRN}/2026-03/explain?version=1")).await;
    assert_eq!(explained["totals"]["version"], 1);
    assert_eq!(
        explained["lines"][1]["charge"]["owner_gln"],
        "5790000610099"
    );
    assert_eq!(explained["lines"][1]["charge"]["code"], "NT-C");
    assert_eq!(
        explained["lines"][1]["quantity_times_unit_price"],
        "50.100000"
    );
    assert_eq!(explained["days"][0]["local_date"], "2026-03-29");
    assert_eq!(
        explained["metering_data_messages"]
            .as_array()
            .unwrap()
            .len(),
        30,
        "one metering-data message per day with data"
    );
    assert_eq!(
        explained["master_data_messages"],
        json!(["msg-mp-1", "msg-mp-2"])
    );
    let missing = h
        .get(&format!("/v1/statements/{GSRN}/2026-03"), Some(&reader))
        .await;
    problem(missing, 404).await;

    // Rates: the tariff as applied in 344 in March.
    let rates = get("/v1/rates/344".into()).await;
    assert_eq!(rates[0]["charge_code"], "NT-C");
    assert_eq!(rates[0]["min_unit_price"], "0.200000");
    assert_eq!(rates[0]["metering_points"], 1);

    // Billing run export, JSON and CSV, for the billing role.
    let billing = token("billing");
    let runs: Value = h
        .get("/v1/billing-runs", Some(&billing))
        .await
        .json()
        .await?;
    assert_eq!(runs[0]["run_id"], RUN_ID);
    let json_run: Value = h
        .get(&format!("/v1/billing-runs/{RUN_ID}"), Some(&billing))
        .await
        .json()
        .await?;
    assert_eq!(json_run["documents"][0]["gsrn"], GSRN);
    let csv = h
        .get(
            &format!("/v1/billing-runs/{RUN_ID}?format=csv"),
            Some(&billing),
        )
        .await;
    assert!(
        csv.headers()["content-type"]
            .to_str()?
            .starts_with("text/csv")
    );
    let csv = csv.text().await?;
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(rows.len(), 2, "{csv}");
    assert!(rows[0].starts_with("run_id,statement_id"));
    assert!(rows[1].contains("101.500000"), "{csv}");
    problem(h.get("/v1/billing-runs/999", Some(&billing)).await, 404).await;

    // Operations: lag per consumer and partition, a dead letter in full.
    let lag = get("/v1/operations/lag".into()).await;
    assert_eq!(lag[0]["next_offset"], 1234);
    assert!(lag[0]["lag"].is_null(), "no broker given, no lag invented");
    let letter = get("/v1/dead-letters/raw/3/42".into()).await;
    assert_eq!(letter["payload_text"], "{\"broken\"");
    assert_eq!(letter["resolved"], false);
    let completeness = get("/v1/completeness/2026-03-29".into()).await;
    assert_eq!(completeness[0]["grid_area"], "344");
    h.stop().await
}

#[tokio::test]
async fn bad_input_is_answered_with_problem_details() -> anyhow::Result<()> {
    let h = Harness::start("api_input").await?;
    let operator = token("operator");
    let t = Some(operator.as_str());
    let cases: [(&str, u16); 12] = [
        ("/v1/metering-points/57131318040001234", 400),
        ("/v1/metering-points/57131318040001234x", 400),
        ("/v1/metering-points?grid_area=34", 400),
        ("/v1/metering-points?grid_area=abc", 400),
        ("/v1/metering-points?page_size=0", 422),
        ("/v1/metering-points?page_size=5000", 422),
        ("/v1/dead-letters?limit=5000", 422),
        ("/v1/settlements/571313180400012345/2026-13", 400),
        // A quarter-hour series longer than 31 days, an aggregate longer than a year.
        (
            "/v1/metering-points/571313180400012345/metering-data?from=2026-01-01&to=2026-03-01",
            422,
        ),
        (
            "/v1/metering-points/571313180400012345/metering-data?from=2025-01-01&to=2026-03-01&aggregate=day",
            422,
        ),
        (
            "/v1/metering-points/571313180400012345/metering-data?from=2026-03-02&to=2026-03-01",
            422,
        ),
        ("/v1/no-such-route", 404),
    ];
    for (path, status) in cases {
        let body = problem(h.get(path, t).await, status).await;
        println!("{status} {path}: {}", body["detail"]);
    }
    // Bodies: not JSON, wrong shape, too large.
    let resolve = format!("{}/v1/dead-letters/resolve", h.base);
    let not_json = h
        .http
        .post(&resolve)
        .bearer_auth(&operator)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await?;
    problem(not_json, 400).await;
    let wrong_shape = h
        .post(
            "/v1/dead-letters/resolve",
            t,
            &json!({"source_topic": 3, "source_partition": "x"}),
        )
        .await;
    problem(wrong_shape, 422).await;
    let huge = "x".repeat(afregning_api::limits::MAX_BODY_BYTES + 1);
    let too_large = h
        .post(
            "/v1/dead-letters/resolve",
            t,
            &json!({"source_topic": "raw", "source_partition": 3, "source_offset": 42, "note": huge}),
        )
        .await;
    problem(too_large, 413).await;
    h.stop().await
}

#[tokio::test]
async fn resolving_a_dead_letter_writes_its_audit_row_in_the_same_transaction() -> anyhow::Result<()>
{
    let h = Harness::start("api_audit").await?;
    let operator = token("operator");
    let audit_rows = || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM api_audit")
            .fetch_one(&h.pool)
            .await
            .expect("a count")
    };
    let target = json!({"source_topic": "raw", "source_partition": 3, "source_offset": 42,
                        "note": "master data arrived; replayed"});

    // Without a note: 422, and neither the row nor the log changes.
    let no_note = h
        .post(
            "/v1/dead-letters/resolve",
            Some(&operator),
            &json!({"source_topic": "raw", "source_partition": 3, "source_offset": 42, "note": "  "}),
        )
        .await;
    problem(no_note, 422).await;
    assert_eq!(audit_rows().await, 0);

    let resolved = h
        .http
        .post(format!("{}/v1/dead-letters/resolve", h.base))
        .bearer_auth(&operator)
        .header("x-request-id", "req-audit-1")
        .json(&target)
        .send()
        .await?;
    assert_eq!(resolved.status(), 200);
    let resolved: Value = resolved.json().await?;
    assert_eq!(resolved["resolved_by"], "operator@example.test");
    let (actor, roles, action, target_name, reason, request_id): (
        String,
        Vec<String>,
        String,
        String,
        String,
        String,
    ) = sqlx::query_as(
        "SELECT actor, roles, action, target, reason, request_id FROM api_audit WHERE audit_id = $1",
    )
    .bind(resolved["audit_id"].as_i64().unwrap())
    .fetch_one(&h.pool)
    .await?;
    assert_eq!(actor, "operator@example.test");
    assert_eq!(roles, ["operator"]);
    assert_eq!(action, "dead_letter.resolve");
    assert_eq!(target_name, "dead_letter:raw[3]@42");
    assert_eq!(reason, "master data arrived; replayed");
    assert_eq!(request_id, "req-audit-1");
    let (by, note): (Option<String>, Option<String>) = sqlx::query_as(
        "SELECT resolved_by, resolution_note FROM dead_letter WHERE source_offset = 42",
    )
    .fetch_one(&h.pool)
    .await?;
    assert_eq!(by.as_deref(), Some("operator@example.test"));
    assert_eq!(note.as_deref(), Some("master data arrived; replayed"));

    // Twice: 409; elsewhere: 404; neither writes an audit row.
    problem(
        h.post("/v1/dead-letters/resolve", Some(&operator), &target)
            .await,
        409,
    )
    .await;
    problem(
        h.post(
            "/v1/dead-letters/resolve",
            Some(&operator),
            &json!({"source_topic": "raw", "source_partition": 3, "source_offset": 99, "note": "x"}),
        )
        .await,
        404,
    )
    .await;
    assert_eq!(audit_rows().await, 1);
    let left: Value = h
        .get("/v1/dead-letters", Some(&operator))
        .await
        .json()
        .await?;
    assert_eq!(left.as_array().unwrap().len(), 1, "only offset 43 is left");

    // The audit log is readable through the API and append-only in the database.
    let log: Value = h
        .get(
            "/v1/audit?target=dead_letter:raw%5B3%5D@42",
            Some(&token("readonly")),
        )
        .await
        .json()
        .await?;
    assert_eq!(log[0]["request_id"], "req-audit-1");
    for statement in [
        "UPDATE api_audit SET reason = 'rewritten'",
        "DELETE FROM api_audit",
        "TRUNCATE api_audit",
    ] {
        let refused = sqlx::query(statement).execute(&h.pool).await;
        let error = refused.expect_err(statement).to_string();
        assert!(error.contains("append-only"), "{statement}: {error}");
    }
    assert_eq!(audit_rows().await, 1);

    // Same transaction: when the audit row cannot be written, the resolution
    // is rolled back (a trigger added here makes every audit insert fail).
    sqlx::query(
        "CREATE FUNCTION test_refuse_audit() RETURNS trigger LANGUAGE plpgsql AS $$ \
         BEGIN RAISE EXCEPTION 'audit log unavailable'; END $$",
    )
    .execute(&h.pool)
    .await?;
    sqlx::query(
        "CREATE TRIGGER test_refuse_audit BEFORE INSERT ON api_audit \
         FOR EACH ROW EXECUTE FUNCTION test_refuse_audit()",
    )
    .execute(&h.pool)
    .await?;
    problem(
        h.post(
            "/v1/dead-letters/resolve",
            Some(&operator),
            &json!({"source_topic": "raw", "source_partition": 3, "source_offset": 43, "note": "x"}),
        )
        .await,
        503,
    )
    .await;
    let still_open: bool =
        sqlx::query_scalar("SELECT NOT resolved FROM dead_letter WHERE source_offset = 43")
            .fetch_one(&h.pool)
            .await?;
    assert!(still_open, "the resolution committed without its audit row");
    h.stop().await
}

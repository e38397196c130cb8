//! The reconciliation endpoints against a real PostgreSQL with the sinks' migrated schema:
//! a month's reconciliations seeded the way the sink writes them (an older version, the
//! current one, and a newer one whose parts have not all arrived), answered exactly; the
//! discrepancies flattened and filtered; 401 without a token; 400 and 404 as problem details.

mod support;

use chrono::Utc;
use serde_json::{Value, json};
use support::{Harness, problem, token};

/// Grid area 344's March: version 1 (superseded) with one discrepancy, version 2 (current)
/// with two, version 3 announced with two but holding one (incomplete, so not current);
/// grid area 740's March reconciles (version 1, none).
const SEED: &str = "
INSERT INTO reconciliation (grid_area, month_start, version, energy_supplier_gln, grid_area_owner_gln,
    parts, discrepancy_count, calculations, computed_at)
VALUES ('344', '2026-03-01', 1, '5790002000000', '5790000610976', 1, 1, 'D05 v1', '2026-04-10T06:00:00Z'),
       ('344', '2026-03-01', 2, '5790002000000', '5790000610976', 1, 2, 'D05 v1, D32-D01 v2', '2026-05-12T07:30:00Z'),
       ('344', '2026-03-01', 3, '5790002000000', '5790000610976', 1, 2, 'D32-D02 v3', '2026-06-01T07:30:00Z'),
       ('740', '2026-03-01', 1, '5790002000000', NULL, 1, 0, 'D05 v1', '2026-04-10T06:00:00Z');
INSERT INTO reconciliation_discrepancy (grid_area, month_start, version, seq, level, measure,
    charge_owner_gln, charge_code, charge_type, resolution, metering_point_type, settlement_method,
    position_start, datahub, ours, difference, metering_points, calculation)
VALUES ('344', '2026-03-01', 1, 1, 'ENERGY', 'QUANTITY', NULL, NULL, NULL, 'PT1H', 'E17', 'D01',
        '2026-03-04T23:00:00Z', 1.250, 0.750, 0.500, '{571313180400000001}', 'D05 v1'),
       ('344', '2026-03-01', 2, 1, 'AMOUNT_PER_CHARGE', 'PRICE', '5790000610976', '40000', 'D03', 'PT1H', 'E17', 'D01',
        '2026-03-10T05:00:00Z', 0.412300, 0.398100, 0.014200, '{571313180400000001,571313180400000002}', 'D32-D01 v2'),
       ('344', '2026-03-01', 2, 2, 'SUPPLIER_TOTAL', 'AMOUNT', NULL, NULL, NULL, 'P1M', NULL, NULL,
        '2026-02-28T23:00:00Z', 1234.567891, NULL, 1234.567891, '{}', 'D32-D01 v2'),
       ('344', '2026-03-01', 3, 1, 'ENERGY', 'QUANTITY', NULL, NULL, NULL, 'PT1H', 'E17', 'D01',
        '2026-03-04T23:00:00Z', 9.000, 0.750, 8.250, '{571313180400000001}', 'D32-D02 v3');
";

/// What the seed's current versions are, written out by hand (not read back through the
/// code under test): amounts as exact decimal strings, with the scale stored.
fn expected_report() -> Value {
    json!([
        {
            "grid_area": "344",
            "month_start": "2026-03-01",
            "version": 2,
            "energy_supplier_gln": "5790002000000",
            "grid_area_owner_gln": "5790000610976",
            "calculations": "D05 v1, D32-D01 v2",
            "computed_at": "2026-05-12T07:30:00Z",
            "discrepancies": [
                {
                    "seq": 1, "level": "AMOUNT_PER_CHARGE", "measure": "PRICE",
                    "charge_owner_gln": "5790000610976", "charge_code": "40000", "charge_type": "D03",
                    "resolution": "PT1H", "metering_point_type": "E17", "settlement_method": "D01",
                    "position_start": "2026-03-10T05:00:00Z",
                    "datahub": "0.412300", "ours": "0.398100", "difference": "0.014200",
                    "metering_points": ["571313180400000001", "571313180400000002"],
                    "calculation": "D32-D01 v2"
                },
                {
                    "seq": 2, "level": "SUPPLIER_TOTAL", "measure": "AMOUNT",
                    "charge_owner_gln": null, "charge_code": null, "charge_type": null,
                    "resolution": "P1M", "metering_point_type": null, "settlement_method": null,
                    "position_start": "2026-02-28T23:00:00Z",
                    "datahub": "1234.567891", "ours": null, "difference": "1234.567891",
                    "metering_points": [],
                    "calculation": "D32-D01 v2"
                }
            ]
        },
        {
            "grid_area": "740",
            "month_start": "2026-03-01",
            "version": 1,
            "energy_supplier_gln": "5790002000000",
            "grid_area_owner_gln": null,
            "calculations": "D05 v1",
            "computed_at": "2026-04-10T06:00:00Z",
            "discrepancies": []
        }
    ])
}

async fn json_ok(h: &Harness, path: &str, role: &str) -> Value {
    let response = h.get(path, Some(&token(role))).await;
    assert_eq!(response.status().as_u16(), 200, "{path}");
    response.json().await.expect("JSON")
}

#[tokio::test]
async fn a_months_reconciliation_is_answered_exactly_and_bad_input_is_refused() -> anyhow::Result<()>
{
    let h = Harness::start("api_reconciliation").await?;
    sqlx::raw_sql(SEED).execute(&h.pool).await?;

    // Every role reads it; without a token nobody does.
    for path in [
        "/v1/reconciliations/2026-03",
        "/v1/reconciliations/2026-03/discrepancies",
    ] {
        let refused = problem(h.get(path, None).await, 401).await;
        assert_eq!(refused["code"], "unauthorized");
        for role in ["operator", "backoffice", "billing", "readonly"] {
            json_ok(&h, path, role).await;
        }
    }

    // The report: the current versions, exactly.
    let report = json_ok(&h, "/v1/reconciliations/2026-03", "billing").await;
    assert_eq!(report, expected_report());
    let one = json_ok(&h, "/v1/reconciliations/2026-03?grid_area=740", "readonly").await;
    assert_eq!(one, json!([expected_report()[1].clone()]));

    // The discrepancies, flattened with their grid area and version, and filtered.
    let all = json_ok(&h, "/v1/reconciliations/2026-03/discrepancies", "readonly").await;
    let rows = all.as_array().expect("a list");
    assert_eq!(rows.len(), 2);
    for (row, expected) in rows.iter().zip(
        expected_report()[0]["discrepancies"]
            .as_array()
            .expect("list"),
    ) {
        let mut want = expected.clone();
        want["grid_area"] = json!("344");
        want["month_start"] = json!("2026-03-01");
        want["version"] = json!(2);
        assert_eq!(row, &want);
    }
    let totals = json_ok(
        &h,
        "/v1/reconciliations/2026-03/discrepancies?level=SUPPLIER_TOTAL&grid_area=344",
        "readonly",
    )
    .await;
    assert_eq!(totals.as_array().map(Vec::len), Some(1));
    assert_eq!(totals[0]["difference"], "1234.567891");
    let first = json_ok(
        &h,
        "/v1/reconciliations/2026-03/discrepancies?page_size=1",
        "readonly",
    )
    .await;
    assert_eq!(first.as_array().map(Vec::len), Some(1));
    let none = json_ok(
        &h,
        "/v1/reconciliations/2026-03/discrepancies?grid_area=740",
        "readonly",
    )
    .await;
    assert_eq!(none, json!([]));

    // Bad input: problem details with the reason.
    let reader = token("readonly");
    for (path, status, code) in [
        ("/v1/reconciliations/2026-13", 400, "bad_request"),
        ("/v1/reconciliations/march", 400, "bad_request"),
        (
            "/v1/reconciliations/2026-03?grid_area=34",
            400,
            "bad_request",
        ),
        (
            "/v1/reconciliations/2026-03/discrepancies?level=TOTAL",
            400,
            "bad_request",
        ),
        (
            "/v1/reconciliations/2026-03/discrepancies?page_size=0",
            422,
            "unprocessable",
        ),
        ("/v1/reconciliations/2026-02", 404, "not_found"),
        (
            "/v1/reconciliations/2026-03?grid_area=791",
            404,
            "not_found",
        ),
    ] {
        let body = problem(h.get(path, Some(&reader)).await, status).await;
        assert_eq!(body["code"], code, "{path}: {body}");
    }
    h.stop().await
}

/// A wholesale settlement request for grid area 344's March 2026: over when the test runs.
fn new_request() -> Value {
    json!({
        "requested_data": "wholesale_settlement",
        "business_reason": "D32",
        "settlement_version": "D01",
        "grid_area": "344",
        "month": "2026-03",
        "reason": "344's March does not reconcile; DataHub's correction run is missing"
    })
}

#[tokio::test]
async fn a_request_to_datahub_is_recorded_audited_and_followed_to_its_answer() -> anyhow::Result<()>
{
    use afregning_api::datahub_requests::answers::Answer;
    use afregning_api::datahub_requests::store;
    use afregning_topology::records::{OutboundResponse, OutboundStatus};

    let h = Harness::start("api_datahub_requests").await?;
    let path = "/v1/datahub-requests";

    // Only the operator asks DataHub; reading the requests is an operations read.
    problem(h.post(path, None, &new_request()).await, 401).await;
    for role in ["backoffice", "billing", "readonly"] {
        let refused = problem(h.post(path, Some(&token(role)), &new_request()).await, 403).await;
        assert_eq!(refused["code"], "forbidden", "{role}");
    }
    problem(h.get(path, None).await, 401).await;
    problem(h.get(path, Some(&token("billing"))).await, 403).await;

    // Bad requests change nothing.
    let operator = token("operator");
    for (change, status) in [
        (json!({"reason": null}), 422),
        (json!({"reason": "  "}), 422),
        (json!({"month": "2026-3"}), 400),
        (json!({"grid_area": "34"}), 400),
        (json!({"business_reason": "D04"}), 422),
        (json!({"settlement_version": "D07"}), 422),
        (json!({"month": "2099-01"}), 422),
        (json!({"requested_data": "everything"}), 422),
    ] {
        let mut body = new_request();
        for (k, v) in change.as_object().expect("an object") {
            body[k] = v.clone();
        }
        let refused = problem(h.post(path, Some(&operator), &body).await, status).await;
        assert!(refused["detail"].is_string(), "{body}: {refused}");
    }
    let none: Value = h.get(path, Some(&token("readonly"))).await.json().await?;
    assert_eq!(none, json!([]));

    // Recorded as pending with its document, who and why, and audited.
    let response = h.post(path, Some(&operator), &new_request()).await;
    assert_eq!(response.status().as_u16(), 202);
    let created: Value = response.json().await?;
    let id = created["request_id"].as_str().expect("an id").to_string();
    assert_eq!(created["state"], "pending");
    assert_eq!(created["requested_data"], "wholesale_settlement");
    assert_eq!(created["requested_by"], "operator@example.test");
    assert_eq!(created["period_start"], "2026-02-28T23:00:00Z");
    assert_eq!(created["period_end"], "2026-03-31T22:00:00Z");
    let document: String =
        sqlx::query_scalar("SELECT document FROM datahub_request WHERE request_id = $1")
            .bind(&id)
            .fetch_one(&h.pool)
            .await?;
    let Ok(afregning_cim::Document::RequestWholesaleSettlement(doc)) =
        afregning_cim::parse(document.as_bytes())
    else {
        panic!("not an RSM-017: {document}");
    };
    assert_eq!(doc.header.message_id, created["message_id"]);
    assert_eq!(doc.header.sender.id.value, "5790002000000");
    assert_eq!(doc.series[0].transaction_id, created["transaction_id"]);
    let audit: Value = h
        .get(
            &format!("/v1/audit?target=datahub_request:{id}"),
            Some(&operator),
        )
        .await
        .json()
        .await?;
    assert_eq!(audit.as_array().map(Vec::len), Some(1), "{audit}");
    assert_eq!(audit[0]["action"], "datahub_request.create");
    assert_eq!(audit[0]["actor"], "operator@example.test");
    assert_eq!(
        audit[0]["details"]["transaction_id"],
        created["transaction_id"]
    );

    // The relay's steps on the table: sent, DataHub accepted, then answered by two documents
    // naming the series; each read twice changes nothing the second time.
    let mut conn = h.pool.acquire().await?;
    assert!(store::mark_sent(&mut conn, &id).await?);
    assert!(!store::mark_sent(&mut conn, &id).await?);
    let accepted = OutboundResponse {
        request_id: id.clone(),
        status: OutboundStatus::Accepted,
        http_status: Some(202),
        body: None,
        correlation_id: Some("corr-1".into()),
        attempts: 1,
        responded_at: Utc::now(),
    };
    assert!(store::apply_response(&mut conn, &accepted).await?);
    assert!(!store::apply_response(&mut conn, &accepted).await?);
    let transaction_id = created["transaction_id"].as_str().expect("id").to_string();
    // Document a's two series arrive as two records (the connector splits a bundle), then
    // b's one, then a's first again.
    for (message_id, series, changes) in [
        ("rsm019-a", "w-1", true),
        ("rsm019-a", "w-2", true),
        ("rsm019-b", "w-3", true),
        ("rsm019-a", "w-1", false),
    ] {
        let answer = Answer {
            original_transaction_id: transaction_id.clone(),
            message_id: message_id.into(),
            series_ids: vec![series.into()],
            refusal: None,
        };
        assert_eq!(
            store::apply_answer(&mut conn, &answer).await?,
            changes,
            "{series}"
        );
    }
    // An outcome read after the answer records DataHub's HTTP status, not the state.
    let early = {
        let response = h.post(path, Some(&operator), &new_request()).await;
        let early: Value = response.json().await?;
        early["request_id"].as_str().expect("an id").to_string()
    };
    let early_tx: String =
        sqlx::query_scalar("SELECT transaction_id FROM datahub_request WHERE request_id = $1")
            .bind(&early)
            .fetch_one(&mut *conn)
            .await?;
    assert!(store::mark_sent(&mut conn, &early).await?);
    let answer = Answer {
        original_transaction_id: early_tx,
        message_id: "rsm019-e".into(),
        series_ids: vec!["w-e".into()],
        refusal: None,
    };
    assert!(store::apply_answer(&mut conn, &answer).await?);
    let late = OutboundResponse {
        request_id: early.clone(),
        ..accepted.clone()
    };
    assert!(store::apply_response(&mut conn, &late).await?);
    assert!(!store::apply_response(&mut conn, &late).await?);
    let row = store::get(&mut conn, &early).await?.expect("recorded");
    assert_eq!(
        (row.state.as_str(), row.http_status),
        ("answered", Some(202))
    );
    let unknown = Answer {
        original_transaction_id: "not-ours".into(),
        message_id: "rsm019-c".into(),
        series_ids: vec!["w-9".into()],
        refusal: None,
    };
    assert!(!store::apply_answer(&mut conn, &unknown).await?);
    drop(conn);
    let shown: Value = h
        .get(&format!("{path}/{id}"), Some(&token("readonly")))
        .await
        .json()
        .await?;
    assert_eq!(shown["state"], "answered");
    assert_eq!(shown["http_status"], 202);
    assert_eq!(shown["correlation_id"], "corr-1");
    assert_eq!(shown["answer_message_ids"], json!(["rsm019-a", "rsm019-b"]));
    assert_eq!(shown["answer_series_ids"], json!(["w-1", "w-2", "w-3"]));
    let answered: Value = h
        .get(&format!("{path}?state=answered"), Some(&token("operator")))
        .await
        .json()
        .await?;
    assert_eq!(answered.as_array().map(Vec::len), Some(2));
    problem(
        h.get(&format!("{path}?state=lost"), Some(&operator)).await,
        400,
    )
    .await;
    problem(h.get(&format!("{path}/nope"), Some(&operator)).await, 404).await;
    h.stop().await
}

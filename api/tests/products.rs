//! The supplier's products through the API, against the real PostgreSQL and
//! the real broker: the products topic is applied under the test's prefix, a
//! product is created and changed through the API, the topic holds exactly
//! what the API answered (the JSON settle reads), every change has its audit
//! row, and every refusal is problem details without a row or a record.

mod support;

use std::sync::Arc;

use afregning_api::AppState;
use afregning_api::product_log::ProductLog;
use afregning_settlement::{Margin, Product};
use reqwest::Method;
use rust_decimal::Decimal;
use serde_json::{Value, json};
use support::{Harness, problem, token};

/// The seeded harness, with its API replaced by one that has the products topic.
async fn harness(label: &str) -> anyhow::Result<(Harness, ProductLog)> {
    let mut h = Harness::start(label).await?;
    let catalogue = h.apply_topology(2).await?;
    let log = ProductLog::new(&h.env.bootstrap_servers, &catalogue).map_err(anyhow::Error::msg)?;
    h.respawn(AppState {
        pool: h.pool.clone(),
        render_metrics: Arc::new(String::new),
        authenticator: support::authenticator().await,
        broker: None,
        supplier_gln: None,
        connector_metrics_url: None,
        portfolio_keys: None,
        products: Some(log.clone()),
    })
    .await?;
    Ok((h, log))
}

fn spot_plus() -> Value {
    json!({
        "id": "spot-plus",
        "name": "Spot plus",
        "versions": [{
            "valid_from": "2026-01-01",
            "margin": {"kind": "flat", "per_kwh": "0.0800"},
            "subscription_per_month": "29.00"
        }],
        "reason": "the spring campaign's product"
    })
}

async fn audit_rows(h: &Harness) -> anyhow::Result<Vec<(String, String, String, String)>> {
    Ok(sqlx::query_as(
        "SELECT actor, action, target, reason FROM api_audit \
         WHERE action LIKE 'product.%' ORDER BY audit_id",
    )
    .fetch_all(&h.pool)
    .await?)
}

#[tokio::test]
async fn product_routes_want_a_token_and_the_right_role() -> anyhow::Result<()> {
    let (h, log) = harness("api_products_auth").await?;
    let routes = [
        (Method::GET, "/v1/products", false),
        (Method::GET, "/v1/products/spot-plus", false),
        (Method::POST, "/v1/products", true),
        (Method::POST, "/v1/products/spot-plus/versions", true),
    ];
    for (method, path, manage) in routes {
        let send = |token: Option<String>| {
            // A body that would be refused (no reason) if it got past the guard.
            let mut request = h
                .http
                .request(method.clone(), format!("{}{path}", h.base))
                .json(&json!({"id": "x", "name": "x", "versions": []}));
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            request.send()
        };
        problem(send(None).await?, 401).await;
        for role in ["operator", "backoffice", "billing", "readonly"] {
            let status = send(Some(token(role))).await?.status().as_u16();
            if manage && role != "backoffice" {
                let body = problem(send(Some(token(role))).await?, 403).await;
                assert_eq!(body["code"], "forbidden", "{method} {path} as {role}");
            } else {
                assert!(
                    ![401, 403].contains(&status),
                    "{method} {path} as {role}: {status}"
                );
            }
        }
    }
    assert!(audit_rows(&h).await?.is_empty(), "nothing was changed");
    assert!(log.read().await.map_err(anyhow::Error::msg)?.is_empty());

    // Without a broker the product routes say so.
    let plain = Harness::start("api_products_nobroker").await?;
    let body = problem(
        plain.get("/v1/products", Some(&token("readonly"))).await,
        503,
    )
    .await;
    assert!(
        body["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("broker")
    );
    plain.stop().await?;
    h.stop().await
}

#[tokio::test]
async fn products_are_created_and_changed_on_the_topic_with_an_audit_row() -> anyhow::Result<()> {
    let (h, log) = harness("api_products").await?;
    let backoffice = token("backoffice");

    let created = h
        .post("/v1/products", Some(&backoffice), &spot_plus())
        .await;
    assert_eq!(created.status().as_u16(), 201);
    let created: Value = created.json().await?;
    assert_eq!(created["product"]["id"], "spot-plus");
    assert!(created["audit_id"].as_i64().is_some());

    // A second create of the same id is a conflict.
    let body = problem(
        h.post("/v1/products", Some(&backoffice), &spot_plus())
            .await,
        409,
    )
    .await;
    assert_eq!(body["code"], "conflict");

    // A new margin from 15 March.
    let change = json!({
        "valid_from": "2026-03-15",
        "margin": {"kind": "flat", "per_kwh": "0.1250"},
        "subscription_per_month": "29.00",
        "vat_class": "D02",
        "reason": "margin up from mid-March"
    });
    let changed = h
        .post(
            "/v1/products/spot-plus/versions",
            Some(&backoffice),
            &change,
        )
        .await;
    assert_eq!(changed.status().as_u16(), 200);
    let changed: Value = changed.json().await?;
    let versions = changed["product"]["versions"].as_array().expect("versions");
    assert_eq!(versions.len(), 2);
    assert_eq!(versions[1]["valid_from"], "2026-03-15");

    // The topic holds the product as settle reads it.
    let on_topic = log.read().await.map_err(anyhow::Error::msg)?;
    let product: &Product = on_topic.get("spot-plus").expect("on the topic");
    assert_eq!(product.versions.len(), 2);
    assert_eq!(
        product.versions[1].margin,
        Margin::Flat {
            per_kwh: Decimal::new(1250, 4)
        }
    );

    // The reads answer from the topic.
    let reader = token("readonly");
    let listed: Value = h.get("/v1/products", Some(&reader)).await.json().await?;
    assert_eq!(listed.as_array().map(Vec::len), Some(1));
    assert_eq!(listed[0], changed["product"]);
    let one: Value = h
        .get("/v1/products/spot-plus", Some(&reader))
        .await
        .json()
        .await?;
    assert_eq!(one, changed["product"]);

    // One audit row per change, with who, what and why.
    let rows = audit_rows(&h).await?;
    assert_eq!(
        rows,
        vec![
            (
                "backoffice@example.test".to_string(),
                "product.create".to_string(),
                "product:spot-plus".to_string(),
                "the spring campaign's product".to_string()
            ),
            (
                "backoffice@example.test".to_string(),
                "product.change".to_string(),
                "product:spot-plus".to_string(),
                "margin up from mid-March".to_string()
            ),
        ]
    );

    // Refusals: problem details, no row, no record.
    let path = "/v1/products/spot-plus/versions";
    let mut no_reason = change.clone();
    no_reason["reason"] = Value::Null;
    problem(h.post(path, Some(&backoffice), &no_reason).await, 422).await;
    let mut too_big = change.clone();
    too_big["margin"] = json!({"kind": "flat", "per_kwh": "10.5"});
    problem(h.post(path, Some(&backoffice), &too_big).await, 422).await;
    let mut hours = change.clone();
    hours["margin"] = json!({"kind": "by_local_hour", "per_kwh": vec!["0.1"; 23]});
    problem(h.post(path, Some(&backoffice), &hours).await, 422).await;
    problem(
        h.post(
            "/v1/products/Not_An_Id/versions",
            Some(&backoffice),
            &change,
        )
        .await,
        400,
    )
    .await;
    problem(
        h.post("/v1/products/no-such/versions", Some(&backoffice), &change)
            .await,
        404,
    )
    .await;
    problem(h.get("/v1/products/no-such", Some(&reader)).await, 404).await;
    let mut bad_id = spot_plus();
    bad_id["id"] = json!("Spot Plus");
    problem(
        h.post("/v1/products", Some(&backoffice), &bad_id).await,
        422,
    )
    .await;
    let not_json = h
        .http
        .post(format!("{}/v1/products", h.base))
        .bearer_auth(&backoffice)
        .header("content-type", "application/json")
        .body("{\"id\": ")
        .send()
        .await?;
    problem(not_json, 400).await;
    assert_eq!(
        audit_rows(&h).await?.len(),
        2,
        "refusals write no audit row"
    );
    assert_eq!(
        log.read().await.map_err(anyhow::Error::msg)?["spot-plus"],
        *product,
        "refusals publish nothing"
    );
    h.stop().await
}

/// PUT `body` to `path` with `token`.
async fn put(h: &Harness, path: &str, token: Option<&str>, body: &Value) -> reqwest::Response {
    let mut request = h.http.put(format!("{}{path}", h.base)).json(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.expect("the API answers")
}

#[tokio::test]
async fn assignments_and_the_default_product_go_to_the_topic_with_an_audit_row()
-> anyhow::Result<()> {
    let (h, log) = harness("api_product_assignments").await?;
    let backoffice = token("backoffice");
    let created = h
        .post("/v1/products", Some(&backoffice), &spot_plus())
        .await;
    assert_eq!(created.status(), 201);
    let gsrn = support::GSRN;
    let path = format!("/v1/metering-points/{gsrn}/product-assignments");
    let periods = json!({
        "periods": [{"product_id": "spot-plus", "valid_from": "2026-03-15"}],
        "reason": "the customer chose spot-plus",
    });

    // Refusals: no token, the wrong role, bad input; nothing on the topic, no audit row.
    problem(put(&h, &path, None, &periods).await, 401).await;
    problem(
        put(&h, &path, Some(&token("operator")), &periods).await,
        403,
    )
    .await;
    problem(
        put(
            &h,
            "/v1/metering-points/123/product-assignments",
            Some(&backoffice),
            &periods,
        )
        .await,
        400,
    )
    .await;
    for bad in [
        json!({"periods": [{"product_id": "nope", "valid_from": "2026-03-15"}], "reason": "x"}),
        json!({"periods": [{"product_id": "spot-plus", "valid_from": "2026-03-15",
            "valid_to": "2026-03-15"}], "reason": "x"}),
        json!({"periods": [{"product_id": "spot-plus", "valid_from": "2026-03-01"},
            {"product_id": "spot-plus", "valid_from": "2026-03-15"}], "reason": "x"}),
        json!({"periods": [{"product_id": "spot-plus", "valid_from": "2026-03-15"}]}),
    ] {
        problem(put(&h, &path, Some(&backoffice), &bad).await, 422).await;
    }
    problem(
        put(
            &h,
            "/v1/product-default",
            Some(&backoffice),
            &json!({"product_id": "nope", "reason": "x"}),
        )
        .await,
        422,
    )
    .await;
    assert!(
        log.read_all()
            .await
            .map_err(anyhow::Error::msg)?
            .assignments
            .is_empty()
    );

    // Accepted: on the topic as settle reads it, audited, and shown.
    let answer = put(&h, &path, Some(&backoffice), &periods).await;
    assert_eq!(answer.status(), 200);
    let answer: Value = answer.json().await?;
    let on_topic = log.read_all().await.map_err(anyhow::Error::msg)?;
    let assigned = &on_topic.assignments[gsrn];
    assert_eq!(assigned.len(), 1);
    assert_eq!(assigned[0].product_id, "spot-plus");
    assert_eq!(assigned[0].metering_point_id, gsrn);
    assert_eq!(assigned[0].valid_to, None);
    let shown: Value = h.get(&path, Some(&token("readonly"))).await.json().await?;
    assert_eq!(shown["periods"], answer["value"]["periods"]);
    assert_eq!(shown["periods"][0]["valid_from"], "2026-03-15");

    let default = put(
        &h,
        "/v1/product-default",
        Some(&backoffice),
        &json!({"product_id": "spot-plus", "reason": "everyone else on spot-plus"}),
    )
    .await;
    assert_eq!(default.status(), 200);
    let shown: Value = h
        .get("/v1/product-default", Some(&token("billing")))
        .await
        .json()
        .await?;
    assert_eq!(shown["product_id"], "spot-plus");
    let rows = audit_rows(&h).await?;
    let actions: Vec<(&str, &str)> = rows
        .iter()
        .map(|(_, action, target, _)| (action.as_str(), target.as_str()))
        .collect();
    assert_eq!(
        actions,
        vec![
            ("product.create", "product:spot-plus"),
            ("product.assign", format!("metering_point:{gsrn}").as_str()),
            ("product.default", "product_default"),
        ]
    );
    h.stop().await?;
    Ok(())
}

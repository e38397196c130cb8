//! The operator API against a real PostgreSQL with the sinks' migrated schema:
//! rows are written the way the sinks write them, then read back over HTTP.

use std::sync::Arc;

use afregning_api::{AppState, spawn};
use afregning_sinks::schema::{self, StorageSettings};
use afregning_testkit::TestEnv;
use serde_json::{Value, json};

const GSRN: &str = "571313180400012345";

async fn seed(pool: &sqlx::PgPool) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO metering_point (gsrn, valid_from, metering_point_type, settlement_method, \
            grid_area, price_area, resolution, source_message_id, received_at, source_topic, \
            source_partition, source_offset) \
         VALUES ($1, '2026-01-01T00:00:00Z', 'E17', 'E02', '344', 'DK1', 'PT15M', 'msg-1', now(), \
            't', 0, 1)",
    )
    .bind(GSRN)
    .execute(pool)
    .await?;
    for (version, total) in [(1_i64, "100.125000"), (2, "101.500000")] {
        sqlx::query(
            "INSERT INTO settlement_version (gsrn, month_start, version, grid_area, \
                total_excl_vat, vat_amount, total_incl_vat, days_settled, days_in_month, \
                idempotency_key, computed_at, source_topic, source_partition, source_offset) \
             VALUES ($1, '2026-03-01', $2, '344', $3::numeric, $3::numeric / 4, \
                $3::numeric * 1.25, 31, 31, $4, now(), 't', 0, $2)",
        )
        .bind(GSRN)
        .bind(version)
        .bind(total)
        .bind(format!("{GSRN}:2026-03:{version}"))
        .execute(pool)
        .await?;
        sqlx::query(
            "INSERT INTO settlement_line (gsrn, month_start, version, line_no, component, \
                description, quantity, quantity_unit, unit_price, amount, vat_class, \
                idempotency_key) \
             VALUES ($1, '2026-03-01', $2, 1, 'spot_energy', 'Spot', 250.5, 'KWH', 0.4, \
                $3::numeric, 'standard', $4)",
        )
        .bind(GSRN)
        .bind(version)
        .bind(total)
        .bind(format!("{GSRN}:2026-03:{version}:1"))
        .execute(pool)
        .await?;
    }
    sqlx::query(
        "INSERT INTO dead_letter (source_topic, source_partition, source_offset, component, \
            error_class, reason, failed_at, attempts, payload, dead_letter_partition, \
            dead_letter_offset) \
         VALUES ('raw', 3, 42, 'validate', 'malformed_json', 'expected value at 1:1', now(), 1, \
            '\\x7b7b'::bytea, 0, 7)",
    )
    .execute(pool)
    .await?;
    Ok(())
}

#[tokio::test]
async fn operators_read_results_and_resolve_dead_letters() -> anyhow::Result<()> {
    let env = TestEnv::start("api").await?;
    let mut conn = schema::connect(&env.database_url, "api test").await?;
    schema::migrate(
        &mut conn,
        &StorageSettings::default(),
        chrono::Utc::now().date_naive(),
    )
    .await?;
    drop(conn);
    let pool = env.pg_pool().await?;
    seed(&pool).await?;
    let api = spawn(
        AppState {
            pool: pool.clone(),
            render_metrics: Arc::new(|| "# metrics\n".to_string()),
        },
        "127.0.0.1:0".parse()?,
    )
    .await?;
    let base = format!("http://{}", api.addr);
    let http = reqwest::Client::new();

    let health = http.get(format!("{base}/health")).send().await?;
    assert_eq!(health.status(), 200);
    assert!(health.headers().contains_key("x-request-id"));

    let point: Value = http
        .get(format!("{base}/v1/metering-points/{GSRN}"))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(point["periods"][0]["grid_area"], "344");
    let missing = http
        .get(format!("{base}/v1/metering-points/571313180400099999"))
        .send()
        .await?;
    assert_eq!(missing.status(), 404);
    let bad = http
        .get(format!("{base}/v1/metering-points/123"))
        .send()
        .await?;
    assert_eq!(bad.status(), 400);
    let body: Value = bad.json().await?;
    assert_eq!(body["code"], "bad_request");

    // The latest version wins; amounts stay exact strings.
    let latest: Value = http
        .get(format!("{base}/v1/settlements/{GSRN}/2026-03"))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(latest["version"], 2);
    assert_eq!(latest["total_excl_vat"], "101.500000");
    assert_eq!(latest["lines"].as_array().map(Vec::len), Some(1));
    assert_eq!(latest["lines"][0]["amount"], "101.500000");
    let versions: Value = http
        .get(format!("{base}/v1/settlements/{GSRN}/2026-03/versions"))
        .send()
        .await?
        .json()
        .await?;
    let numbers: Vec<i64> = versions
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_i64().unwrap())
        .collect();
    assert_eq!(numbers, vec![1, 2]);
    let no_month = http
        .get(format!("{base}/v1/settlements/{GSRN}/2026-04"))
        .send()
        .await?;
    assert_eq!(no_month.status(), 404);
    let no_statement = http
        .get(format!("{base}/v1/statements/{GSRN}/2026-03"))
        .send()
        .await?;
    assert_eq!(no_statement.status(), 404);

    // The dead-letter procedure: list, resolve once, refuse twice.
    let letters: Value = http
        .get(format!("{base}/v1/dead-letters?component=validate"))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(letters.as_array().map(Vec::len), Some(1));
    assert_eq!(letters[0]["payload_bytes"], 2);
    let target = json!({"source_topic": "raw", "source_partition": 3, "source_offset": 42,
                        "resolved_by": "operator@example", "note": "replayed"});
    let first = http
        .post(format!("{base}/v1/dead-letters/resolve"))
        .json(&target)
        .send()
        .await?;
    assert_eq!(first.status(), 200);
    let again = http
        .post(format!("{base}/v1/dead-letters/resolve"))
        .json(&target)
        .send()
        .await?;
    assert_eq!(again.status(), 409);
    let nowhere = http
        .post(format!("{base}/v1/dead-letters/resolve"))
        .json(
            &json!({"source_topic": "raw", "source_partition": 3, "source_offset": 43,
                      "resolved_by": "operator@example"}),
        )
        .send()
        .await?;
    assert_eq!(nowhere.status(), 404);
    let left: Value = http
        .get(format!("{base}/v1/dead-letters"))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(left.as_array().map(Vec::len), Some(0));
    let (by, note): (Option<String>, Option<String>) = sqlx::query_as(
        "SELECT resolved_by, resolution_note FROM dead_letter WHERE source_offset = 42",
    )
    .fetch_one(&pool)
    .await?;
    assert_eq!(by.as_deref(), Some("operator@example"));
    assert_eq!(note.as_deref(), Some("replayed"));
    let too_many = http
        .get(format!("{base}/v1/dead-letters?limit=5000"))
        .send()
        .await?;
    assert_eq!(too_many.status(), 400);

    let completeness = http
        .get(format!("{base}/v1/completeness/2026-03-29"))
        .send()
        .await?;
    assert_eq!(completeness.status(), 200);

    api.shutdown().await?;
    pool.close().await;
    env.cleanup().await?;
    Ok(())
}

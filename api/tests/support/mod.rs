//! What the API's tests share: a migrated schema of their own on the real
//! PostgreSQL, seeded the way the sinks write it, an API server on port 0,
//! and tokens for each role signed both ways (HS256 secret, RS256 key in a
//! JWKS file).
//!
//! `fixtures/test-rs256-private.pem` and `fixtures/test-jwks.json` are a key
//! pair made for these tests only (openssl genrsa 2048); they protect nothing.
#![allow(dead_code)]

pub mod broker;

use std::path::PathBuf;
use std::sync::Arc;

use afregning_api::auth::{AuthConfig, Authenticator, JwksSource};
use afregning_api::{AppState, RunningApi, spawn};
use afregning_sinks::schema::{self, StorageSettings};
use afregning_testkit::TestEnv;
use afregning_topology::admin::Admin;
use afregning_topology::records::{
    SettlementComponent, SettlementLine, SettlementStatement, StatementKind, VatClass,
};
use afregning_topology::{Catalogue, TopologySettings};
use chrono::{NaiveDate, TimeZone, Utc};
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use rust_decimal::Decimal;
use serde_json::json;

/// The seeded metering point with data, master-data history and settlements.
pub const GSRN: &str = "571313180400012345";
/// The HS256 secret of the tests' API.
pub const SECRET: &str = "a test secret that is long enough for HS256";
/// The billing run seeded.
pub const RUN_ID: i64 = 7;

/// Where the test fixtures are.
pub fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// A token for `subject` with `roles`, valid for `valid_secs` (negative: expired), HS256.
pub fn hs256(subject: &str, roles: &[&str], valid_secs: i64) -> String {
    let claims =
        json!({"sub": subject, "roles": roles, "exp": Utc::now().timestamp() + valid_secs});
    encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .expect("an HS256 token")
}

/// The same, RS256 with the fixture key (`kid` test-key-1).
pub fn rs256(subject: &str, roles: &[&str]) -> String {
    let pem = std::fs::read(fixtures().join("test-rs256-private.pem")).expect("the test key");
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("test-key-1".into());
    let claims = json!({"sub": subject, "roles": roles, "exp": Utc::now().timestamp() + 600});
    encode(
        &header,
        &claims,
        &EncodingKey::from_rsa_pem(&pem).expect("a PEM key"),
    )
    .expect("an RS256 token")
}

/// A token with exactly one role, HS256.
pub fn token(role: &str) -> String {
    hs256(&format!("{role}@example.test"), &[role], 600)
}

/// The authenticator of the tests' API: HS256 and RS256 from the JWKS file.
pub async fn authenticator() -> Authenticator {
    let keys = JwksSource::parse(fixtures().join("test-jwks.json").to_str().expect("a path"))
        .load()
        .await
        .expect("the test JWKS");
    Authenticator::new(AuthConfig {
        hs256_secret: Some(SECRET.into()),
        rs256_keys: Some(keys),
        issuer: None,
        audience: None,
    })
    .expect("an authenticator")
}

/// A running API on a migrated, seeded schema of its own.
pub struct Harness {
    /// The schema's environment (cleaned up by [`Harness::stop`]).
    pub env: TestEnv,
    /// A pool on the schema.
    pub pool: sqlx::PgPool,
    /// The server.
    pub api: RunningApi,
    /// `http://127.0.0.1:port`.
    pub base: String,
    /// An HTTP client.
    pub http: reqwest::Client,
}

impl Harness {
    /// Migrates, seeds and serves.
    pub async fn start(label: &str) -> anyhow::Result<Harness> {
        let env = TestEnv::start(label).await?;
        let mut conn = schema::connect(&env.database_url, "api test").await?;
        // March 2026 (the seeded month) must have its metering_series partition.
        let today = NaiveDate::from_ymd_opt(2026, 3, 15).expect("a date");
        schema::migrate(&mut conn, &StorageSettings::default(), today).await?;
        drop(conn);
        let pool = env.pg_pool().await?;
        seed(&pool).await?;
        let api = spawn(
            AppState {
                pool: pool.clone(),
                render_metrics: Arc::new(|| "# metrics\n".to_string()),
                authenticator: authenticator().await,
                broker: None,
                products: None,
                supplier_gln: Some("5790002000000".into()),
                connector_metrics_url: None,
                portfolio_keys: None,
            },
            "127.0.0.1:0".parse()?,
        )
        .await?;
        let base = format!("http://{}", api.addr);
        Ok(Harness {
            env,
            pool,
            api,
            base,
            http: reqwest::Client::new(),
        })
    }

    /// GET `path` with `token` (none when `None`).
    pub async fn get(&self, path: &str, token: Option<&str>) -> reqwest::Response {
        let mut request = self.http.get(format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("the API answers")
    }

    /// POST JSON `body` to `path` with `token`.
    pub async fn post(
        &self,
        path: &str,
        token: Option<&str>,
        body: &serde_json::Value,
    ) -> reqwest::Response {
        let mut request = self.http.post(format!("{}{path}", self.base)).json(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("the API answers")
    }

    /// POST `body` to `path` with `token`, expecting problem details with
    /// `status`; the problem's body.
    pub async fn refused(
        &self,
        path: &str,
        token: Option<&str>,
        body: &serde_json::Value,
        status: u16,
    ) -> serde_json::Value {
        problem(self.post(path, token, body).await, status).await
    }

    /// Applies the topology under the harness's prefix, `partitions` per topic,
    /// for the tests whose API uses the broker.
    pub async fn apply_topology(&self, partitions: u32) -> anyhow::Result<Catalogue> {
        let catalogue = Catalogue::new(TopologySettings {
            partitions,
            ..TopologySettings::with_prefix(self.env.namespace.clone())
        })?;
        let report = Admin::connect(
            catalogue.clone(),
            &self.env.bootstrap_servers,
            &self.env.registry_url,
        )?
        .apply()
        .await?;
        anyhow::ensure!(report.problems.is_empty(), "{}", report.render());
        Ok(catalogue)
    }

    /// Replaces the API by one serving `state` (on the same schema).
    pub async fn respawn(&mut self, state: AppState) -> anyhow::Result<()> {
        let api = spawn(state, "127.0.0.1:0".parse()?).await?;
        let old = std::mem::replace(&mut self.api, api);
        old.shutdown().await?;
        self.base = format!("http://{}", self.api.addr);
        Ok(())
    }

    /// Stops the server and drops the schema.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.api.shutdown().await?;
        self.pool.close().await;
        self.env.cleanup().await
    }
}

/// Asserts `response` is problem details with `status`, and returns the body.
pub async fn problem(response: reqwest::Response, status: u16) -> serde_json::Value {
    let url = response.url().to_string();
    assert_eq!(response.status().as_u16(), status, "{url}");
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert_eq!(content_type, "application/problem+json", "{url}");
    let body: serde_json::Value = response.json().await.expect("JSON problem details");
    assert_eq!(body["status"], status, "{url}: {body}");
    assert!(
        body["type"]
            .as_str()
            .is_some_and(|t| t.starts_with("/problems/")),
        "{body}"
    );
    assert!(
        body["title"].is_string() && body["detail"].is_string(),
        "{body}"
    );
    body
}

fn statement(run_line_micro: i64) -> SettlementStatement {
    let month = NaiveDate::from_ymd_opt(2026, 3, 1).expect("a month");
    let line = SettlementLine {
        component: SettlementComponent::SpotEnergy,
        description: "Spot energy".into(),
        charge_owner_gln: None,
        charge_type: None,
        charge_code: None,
        quantity: Decimal::new(250_500, 3),
        quantity_unit: "KWH".into(),
        unit_price: Decimal::new(400_000, 6),
        amount: Decimal::new(run_line_micro, 6),
        vat_class: VatClass::Vat25,
        version: 2,
        idempotency_key: format!("{GSRN}:2026-03:spot:v2"),
    };
    let total = line.amount;
    SettlementStatement {
        statement_id: format!("{GSRN}:2026-03-01:2"),
        kind: StatementKind::Statement,
        corrects_statement_id: None,
        gsrn: GSRN.into(),
        month_start: month,
        grid_area: "344".into(),
        energy_supplier_gln: Some("5790002000000".into()),
        version: 2,
        lines: vec![line],
        total_excl_vat: total,
        vat_amount: total / Decimal::from(4),
        total_incl_vat: total + total / Decimal::from(4),
        currency: "DKK".into(),
        idempotency_key: format!("{GSRN}:2026-03-01:2"),
        issued_at: Utc.with_ymd_and_hms(2026, 4, 2, 8, 0, 0).unwrap(),
    }
}

/// Rows as the sinks write them: four metering points in two grid areas,
/// one with two master-data periods, every quarter-hour of March 2026 but the
/// 15th for it (quantity = day of month / 10 kWh, the 2nd's first hour
/// estimated), two settlement versions with a spot and a tariff line, a
/// billing run, two dead letters and one sink position.
pub async fn seed(pool: &sqlx::PgPool) -> anyhow::Result<()> {
    let points = [
        (GSRN, "344", "2026-01-01T00:00:00Z", "msg-mp-1"),
        (GSRN, "344", "2026-03-10T23:00:00Z", "msg-mp-2"),
        (
            "571313180400000001",
            "344",
            "2026-01-01T00:00:00Z",
            "msg-mp-3",
        ),
        (
            "571313180400000002",
            "344",
            "2026-01-01T00:00:00Z",
            "msg-mp-4",
        ),
        (
            "571313180400000003",
            "740",
            "2026-01-01T00:00:00Z",
            "msg-mp-5",
        ),
    ];
    for (i, (gsrn, grid_area, from, message)) in points.iter().enumerate() {
        for table in ["metering_point", "metering_point_history"] {
            sqlx::query(&format!(
                "INSERT INTO {table} (gsrn, valid_from, metering_point_type, settlement_method, \
                    grid_area, price_area, resolution, energy_supplier_gln, source_message_id, \
                    received_at, source_topic, source_partition, source_offset) \
                 VALUES ($1, $2::timestamptz, 'E17', 'E02', $3, 'DK1', 'PT15M', '5790002000000', \
                    $4, now(), 'mp', 0, $5)"
            ))
            .bind(gsrn)
            .bind(from)
            .bind(grid_area)
            .bind(message)
            .bind(i as i64)
            .execute(pool)
            .await?;
        }
    }
    sqlx::query(
        "UPDATE metering_point SET valid_to = '2026-03-10T23:00:00Z' \
         WHERE gsrn = $1 AND source_message_id = 'msg-mp-1'",
    )
    .bind(GSRN)
    .execute(pool)
    .await?;
    sqlx::query(
        // One series per local day of March 2026 but the 15th (29 March has 92 quarter
        // hours), quantity = the day of the month / 10, local 2 March 00:00-01:00 estimated.
        "INSERT INTO metering_series (gsrn, resolution, period_start, period_end, \
            source_message_id, registered_at, received_at, quantities, qualities) \
         SELECT $1, 'PT15M', d.start, d.next, 'msg-md-' || to_char(d.day, 'YYYY-MM-DD'), \
                now(), now(), \
                array_agg(extract(day FROM d.day)::numeric / 10 ORDER BY ts), \
                array_agg(CASE WHEN ts >= '2026-03-01T23:00:00Z' AND ts < '2026-03-02T00:00:00Z' \
                               THEN 3 ELSE 4 END::smallint ORDER BY ts) \
         FROM (SELECT day::date AS day, \
                      day::timestamp AT TIME ZONE 'Europe/Copenhagen' AS start, \
                      (day::date + 1)::timestamp AT TIME ZONE 'Europe/Copenhagen' AS next \
               FROM generate_series('2026-03-01'::timestamp, '2026-03-31', interval '1 day') AS day \
               WHERE day::date <> '2026-03-15') AS d, \
              generate_series(d.start, d.next - interval '15 minutes', interval '15 minutes') AS ts \
         GROUP BY d.day, d.start, d.next",
    )
    .bind(GSRN)
    .execute(pool)
    .await?;
    sqlx::query(
        "INSERT INTO daily_summary (gsrn, local_date, tariff_period, grid_area, price_area, \
            resolution, kwh, day_total_kwh, spot_cost_dkk, expected_positions, received_positions, \
            complete, version, computed_at, source_topic, source_partition, source_offset) \
         VALUES ($1, '2026-03-29', 'total', '344', 'DK1', 'PT15M', 266.8, 266.8, 106.72, 92, 92, \
            true, 1, now(), 'agg', 0, 1)",
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
        sqlx::query(
            "INSERT INTO settlement_line (gsrn, month_start, version, line_no, component, \
                description, charge_owner_gln, charge_type, charge_code, quantity, quantity_unit, \
                unit_price, amount, vat_class, idempotency_key) \
             VALUES ($1, '2026-03-01', $2, 2, 'grid_tariff', 'Nettarif C', '5790000610099', \
                'D03', 'NT-C', 250.5, 'KWH', 0.2, 50.100000, 'standard', $3)",
        )
        .bind(GSRN)
        .bind(version)
        .bind(format!("{GSRN}:2026-03:{version}:2"))
        .execute(pool)
        .await?;
    }
    sqlx::query(
        "INSERT INTO erp_export_run (run_id, month_start, statements, csv_file, json_file) \
         VALUES ($1, '2026-03-01', 1, 'run.csv', 'run.json')",
    )
    .bind(RUN_ID)
    .execute(pool)
    .await?;
    let document = statement(101_500_000);
    sqlx::query(
        "INSERT INTO erp_delivery (statement_id, idempotency_key, kind, gsrn, month_start, \
            version, total_incl_vat, document, erp_topic, erp_partition, erp_offset, export_run_id) \
         VALUES ($1, $1, 'STATEMENT', $2, '2026-03-01', 2, $3, $4, 'erp', 0, 0, $5)",
    )
    .bind(&document.statement_id)
    .bind(GSRN)
    .bind(document.total_incl_vat)
    .bind(serde_json::to_value(&document)?)
    .bind(RUN_ID)
    .execute(pool)
    .await?;
    for offset in [42_i64, 43] {
        sqlx::query(
            "INSERT INTO dead_letter (source_topic, source_partition, source_offset, component, \
                error_class, reason, failed_at, attempts, payload, dead_letter_partition, \
                dead_letter_offset) \
             VALUES ('raw', 3, $1, 'validate', 'malformed_json', 'expected value at 1:1', now(), 1, \
                convert_to('{\"broken\"', 'UTF8'), 0, $1)",
        )
        .bind(offset)
        .execute(pool)
        .await?;
    }
    sqlx::query(
        "INSERT INTO sink_offset (consumer, topic, partition, next_offset) \
         VALUES ('sink-postgres', 'afregning.metering.readings.v1', 0, 1234)",
    )
    .execute(pool)
    .await?;
    Ok(())
}

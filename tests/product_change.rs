//! Issue 15's end-to-end test of the supplier's products on the real broker,
//! PostgreSQL and schema registry: a simulated DataHub month goes through the
//! connector and the four processors (kept running) while the API publishes
//! the supplier's product to its topic; once every metering point is settled
//! (provisional version n), the product's margin is changed through the API
//! from the 15th, and settle's next provisional version of every metering
//! point differs from version n by exactly the difference the pure engine
//! computes between the two catalogues. With no grace period the month was
//! final already: the change also credits each statement and issues a new one
//! with the engine's invoice totals (decision 0073).
//!
//! The twin test moves one metering point to a second product from the 15th
//! through `PUT /v1/metering-points/{gsrn}/product-assignments`: its next
//! version differs by exactly the engine's difference between the
//! catalogues, its statement is credited and issued again, and no other
//! metering point gets a new version.

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use afregning_api::auth::{AuthConfig, Authenticator};
use afregning_api::product_log::ProductLog;
use afregning_api::{AppState, spawn};
use afregning_processors::pipeline;
use afregning_processors::shared::Topics;
use afregning_settlement::{
    BillingMonth, Margin, MonthStatement, ProductAssignment, ProductCatalogue, ProductVersion,
    settle_month,
};
use afregning_simulator::{FaultConfig, GroundTruth, SimulatorConfig};
use afregning_sinks::schema::{self, StorageSettings};
use afregning_testkit::TestEnv;
use afregning_topology::records::{ProvisionalSettlement, SettlementStatement, StatementKind};
use afregning_topology::{Codec, topics};
use anyhow::Context;
use chrono::{NaiveDate, Utc};
use rust_decimal::Decimal;
use serde_json::json;

const MONTH: (i32, u32) = (2026, 3);
const SECRET: &str = "an end-to-end test secret of 32+ bytes";

fn first_day() -> NaiveDate {
    NaiveDate::from_ymd_opt(MONTH.0, MONTH.1, 1).expect("date")
}

/// The day the new margin applies from.
fn change_from() -> NaiveDate {
    NaiveDate::from_ymd_opt(MONTH.0, MONTH.1, 15).expect("date")
}

fn new_margin() -> Decimal {
    Decimal::new(1250, 4)
}

/// A backoffice token for the test's API.
fn backoffice_token() -> anyhow::Result<String> {
    let claims = json!({"sub": "e2e@example.test", "roles": ["backoffice"],
        "exp": Utc::now().timestamp() + 600});
    Ok(jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
    )?)
}

/// The latest provisional version per metering point, and how many records the topic has.
fn latest(
    env: &TestEnv,
    topics: &Topics,
) -> anyhow::Result<(BTreeMap<String, ProvisionalSettlement>, usize)> {
    let all: Vec<ProvisionalSettlement> = support::read_all(
        env,
        &topics.name(topics::PROVISIONAL_SETTLEMENTS),
        &topics.wire,
    )?;
    let count = all.len();
    let mut latest: BTreeMap<String, ProvisionalSettlement> = BTreeMap::new();
    for p in all {
        if latest.get(&p.gsrn).is_none_or(|l| l.version < p.version) {
            latest.insert(p.gsrn.clone(), p);
        }
    }
    Ok((latest, count))
}

/// Waits until `done` holds for the latest versions and the topic has been
/// still for three seconds.
async fn settled(
    env: &TestEnv,
    topics: &Topics,
    what: &str,
    done: impl Fn(&BTreeMap<String, ProvisionalSettlement>) -> bool,
) -> anyhow::Result<BTreeMap<String, ProvisionalSettlement>> {
    let started = Instant::now();
    let mut still_since: Option<(Instant, usize)> = None;
    loop {
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(600),
            "{what}: not within 10 minutes"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
        let (latest, count) = latest(env, topics)?;
        if !done(&latest) {
            still_since = None;
            continue;
        }
        match still_since {
            Some((since, seen)) if seen == count => {
                if since.elapsed() >= Duration::from_secs(3) {
                    return Ok(latest);
                }
            }
            _ => still_since = Some((Instant::now(), count)),
        }
    }
}

/// The month of one metering point from the ground truth, by the pure engine.
fn engine(
    truth: &GroundTruth,
    mp: &afregning_simulator::ground_truth::MeteringPointTruth,
    products: &ProductCatalogue,
) -> anyhow::Result<MonthStatement> {
    let month = BillingMonth::new(MONTH.0, MONTH.1)?;
    let terms = afregning_processors::settle::core::product_terms(
        products,
        products.products.first().map(|p| p.id.as_str()),
        &mp.gsrn.to_string(),
        month,
    );
    Ok(settle_month(&afregning_simulator::expected::month_input(
        truth, mp, month, terms,
    ))?)
}

/// A deployment for both tests: DataHub's March drained into the raw topics,
/// the API on the products topic with the file's product (the example
/// catalogue's first) published through it unchanged, and the four
/// processors running until every metering point is settled (version n).
struct Deployed {
    env: TestEnv,
    truth: Arc<GroundTruth>,
    pool: sqlx::PgPool,
    api: afregning_api::RunningApi,
    base: String,
    http: reqwest::Client,
    token: String,
    topics: Topics,
    before: ProductCatalogue,
    gsrns: Vec<String>,
    versions_n: BTreeMap<String, ProvisionalSettlement>,
    stop: tokio::sync::oneshot::Sender<()>,
    running: tokio::task::JoinHandle<Result<(), pipeline::PipelineError>>,
    _work: tempfile::TempDir,
}

impl Deployed {
    /// `method` `body` to `path` as backoffice; fails unless it succeeded.
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: &serde_json::Value,
    ) -> anyhow::Result<()> {
        let response = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .json(body)
            .send()
            .await?;
        anyhow::ensure!(
            response.status().is_success(),
            "{path}: {}",
            response.text().await?
        );
        Ok(())
    }

    /// Stops the processors and the API and drops the deployment; the
    /// statements published.
    async fn finish(self) -> anyhow::Result<Vec<SettlementStatement>> {
        let statements: Vec<SettlementStatement> = support::read_all(
            &self.env,
            &self.topics.name(topics::SETTLEMENT_STATEMENTS),
            &self.topics.wire,
        )?;
        let _ = self.stop.send(());
        self.running.await??;
        self.api.shutdown().await?;
        self.pool.close().await;
        self.env.cleanup().await?;
        Ok(statements)
    }
}

async fn deployed(label: &str) -> anyhow::Result<Deployed> {
    afregning_testkit::init_logging();
    let env = TestEnv::start(label).await?;
    let catalogue = support::deployment(&env, &env.namespace, 2).await?;

    // 1. DataHub: March 2026 for a few metering points, every day complete.
    let mut config = SimulatorConfig::default();
    config.scenario.metering_points = 6;
    config.scenario.first_day = first_day();
    config.scenario.days = 31;
    config.scenario.grid_areas = vec!["344".into()];
    config.scenario.pt1h_share = 0.3;
    config.scenario.correction_share = 0.0;
    config.scenario.estimated_share = 0.0;
    config.scenario.missing_share = 0.0;
    config.scenario.late_share = 0.0;
    config.scenario.aggregations = false;
    config.faults = FaultConfig::none();
    let work = tempfile::tempdir()?;
    let truth = support::drain_datahub(
        &env,
        &catalogue,
        config,
        work.path(),
        (first_day(), first_day() + chrono::Months::new(1)),
    )
    .await?;

    // 2. The API on the deployment's products topic, and the product the file
    //    has (the example catalogue's first) published through it unchanged.
    let mut conn = schema::connect(&env.database_url, "product e2e").await?;
    schema::migrate(&mut conn, &StorageSettings::default(), first_day()).await?;
    drop(conn);
    let pool = env.pg_pool().await?;
    let api = spawn(
        AppState {
            pool: pool.clone(),
            render_metrics: Arc::new(String::new),
            authenticator: Authenticator::new(AuthConfig {
                hs256_secret: Some(SECRET.into()),
                ..AuthConfig::default()
            })
            .map_err(anyhow::Error::msg)?,
            broker: None,
            supplier_gln: None,
            connector_metrics_url: None,
            portfolio_keys: None,
            products: Some(
                ProductLog::new(&env.bootstrap_servers, &catalogue).map_err(anyhow::Error::msg)?,
            ),
        },
        "127.0.0.1:0".parse()?,
    )
    .await?;
    let base = format!("http://{}", api.addr);
    let http = reqwest::Client::new();
    let token = backoffice_token()?;
    let before = support::products();
    let product = before.products.first().context("the example product")?;
    let mut body = serde_json::to_value(product)?;
    body["reason"] = json!("the file's product, now managed through the API");
    let created = http
        .post(format!("{base}/v1/products"))
        .bearer_auth(&token)
        .json(&body)
        .send()
        .await?;
    anyhow::ensure!(
        created.status().as_u16() == 201,
        "create: {}",
        created.text().await?
    );

    // 3. The four processors, kept running.
    let codec = Codec::new(catalogue.clone(), &env.registry_url);
    let topics = pipeline::topics(catalogue.clone(), &codec).await?;
    let settings = support::pipeline_settings(
        &env,
        &env.namespace,
        &work.path().join("state"),
        &truth.supplier_gln,
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(pipeline::run_all(topics.clone(), settings, async move {
        let _ = stopped.await;
    }));
    let gsrns: Vec<String> = truth
        .metering_points
        .iter()
        .map(|m| m.gsrn.to_string())
        .collect();
    let versions_n = settled(&env, &topics, "every month settled", |latest| {
        gsrns
            .iter()
            .all(|g| latest.get(g).is_some_and(|p| p.days_settled == 31))
    })
    .await?;
    Ok(Deployed {
        env,
        truth,
        pool,
        api,
        base,
        http,
        token,
        topics,
        before,
        gsrns,
        versions_n,
        stop,
        running,
        _work: work,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_margin_changed_through_the_api_re_settles_by_the_engines_difference()
-> anyhow::Result<()> {
    let d = deployed("product-change").await?;
    let (before, gsrns, versions_n, truth) = (
        d.before.clone(),
        d.gsrns.clone(),
        d.versions_n.clone(),
        d.truth.clone(),
    );
    let product = before
        .products
        .first()
        .context("the example product")?
        .clone();

    // 4. The margin changed through the API from the 15th.
    let change = json!({
        "valid_from": change_from(),
        "margin": {"kind": "flat", "per_kwh": new_margin()},
        "subscription_per_month": product.versions[0].subscription_per_month,
        "reason": "margin up from the 15th",
    });
    d.send(
        reqwest::Method::POST,
        &format!("/v1/products/{}/versions", product.id),
        &change,
    )
    .await?;
    let mut after = before.clone();
    after.products[0].versions.push(ProductVersion {
        valid_from: change_from(),
        margin: Margin::Flat {
            per_kwh: new_margin(),
        },
        subscription_per_month: product.versions[0].subscription_per_month,
        vat_class: product.versions[0].vat_class,
    });

    // 5. The next version of every metering point, by exactly the engine's difference.
    let versions_next = settled(&d.env, &d.topics, "every month re-settled", |latest| {
        gsrns.iter().all(|g| {
            latest
                .get(g)
                .zip(versions_n.get(g))
                .is_some_and(|(now, was)| now.version > was.version)
        })
    })
    .await?;
    let statements = d.finish().await?;
    for mp in &truth.metering_points {
        let gsrn = mp.gsrn.to_string();
        let (was, now) = (&versions_n[&gsrn], &versions_next[&gsrn]);
        check_new_version(&truth, mp, (&before, &after), (was, now), &statements)?;
    }
    eprintln!(
        "{} metering points re-settled by the engine's difference after a margin change",
        truth.metering_points.len()
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_assignment_changed_through_the_api_re_settles_its_metering_point_by_the_engines_difference()
-> anyhow::Result<()> {
    let d = deployed("product-assignment").await?;
    let (before, versions_n, truth) = (d.before.clone(), d.versions_n.clone(), d.truth.clone());
    let product = before
        .products
        .first()
        .context("the example product")?
        .clone();

    // 4. A second product with a higher margin, and one metering point moved to
    //    it from the 15th (the file's product until then); the others stay.
    let mut higher = product.clone();
    higher.id = "spot-higher".into();
    higher.name = "Spot, higher margin".into();
    for v in &mut higher.versions {
        v.margin = Margin::Flat {
            per_kwh: new_margin(),
        };
    }
    let mut body = serde_json::to_value(&higher)?;
    body["reason"] = json!("a second product");
    d.send(reqwest::Method::POST, "/v1/products", &body).await?;
    let moved = d.gsrns[0].clone();
    let periods = json!({
        "periods": [
            {"product_id": product.id, "valid_from": first_day(), "valid_to": change_from()},
            {"product_id": higher.id, "valid_from": change_from()},
        ],
        "reason": "the customer chose the other product from the 15th",
    });
    d.send(
        reqwest::Method::PUT,
        &format!("/v1/metering-points/{moved}/product-assignments"),
        &periods,
    )
    .await?;
    let mut after = before.clone();
    after.products.push(higher.clone());
    for (product_id, valid_from, valid_to) in [
        (product.id.clone(), first_day(), Some(change_from())),
        (higher.id.clone(), change_from(), None),
    ] {
        after.assignments.push(ProductAssignment {
            metering_point_id: moved.clone(),
            product_id,
            valid_from,
            valid_to,
        });
    }

    // 5. The moved metering point's next version by exactly the engine's
    //    difference; the others without a new version.
    let versions_next = settled(
        &d.env,
        &d.topics,
        "the moved metering point re-settled",
        |latest| {
            latest
                .get(&moved)
                .zip(versions_n.get(&moved))
                .is_some_and(|(now, was)| now.version > was.version)
        },
    )
    .await?;
    let statements = d.finish().await?;
    for mp in &truth.metering_points {
        let gsrn = mp.gsrn.to_string();
        let (was, now) = (&versions_n[&gsrn], &versions_next[&gsrn]);
        if gsrn != moved {
            assert_eq!(
                now.version, was.version,
                "{gsrn}: not moved, no new version"
            );
            continue;
        }
        check_new_version(&truth, mp, (&before, &after), (was, now), &statements)?;
    }
    eprintln!("{moved} re-settled by the engine's difference after an assignment change");
    Ok(())
}

/// The checks of one metering point's new version: one version more, its
/// total moved by exactly the engine's difference between `before` and
/// `after` (not zero), the engine's month; the final statement credited and
/// issued again with the engine's invoice totals.
fn check_new_version(
    truth: &GroundTruth,
    mp: &afregning_simulator::ground_truth::MeteringPointTruth,
    (before, after): (&ProductCatalogue, &ProductCatalogue),
    (was, now): (&ProvisionalSettlement, &ProvisionalSettlement),
    statements: &[SettlementStatement],
) -> anyhow::Result<()> {
    let gsrn = mp.gsrn.to_string();
    let (old, new) = (engine(truth, mp, before)?, engine(truth, mp, after)?);
    assert_eq!(now.version, was.version + 1, "{gsrn}: one new version");
    let engine_difference =
        new.known_totals.excl_vat.round_dp(6) - old.known_totals.excl_vat.round_dp(6);
    assert_ne!(
        engine_difference,
        Decimal::ZERO,
        "{gsrn}: the margin matters"
    );
    assert_eq!(
        now.total_excl_vat - was.total_excl_vat,
        engine_difference,
        "{gsrn}: version {} -> {} by the engine's difference",
        was.version,
        now.version
    );
    assert_eq!(
        now.total_excl_vat,
        new.known_totals.excl_vat.round_dp(6),
        "{gsrn}: the engine's month"
    );
    // Final before the change: credited and issued again with the new totals.
    let mut issued: Vec<&SettlementStatement> =
        statements.iter().filter(|s| s.gsrn == gsrn).collect();
    issued.sort_by_key(|s| s.version);
    let kinds: Vec<StatementKind> = issued.iter().map(|s| s.kind).collect();
    assert_eq!(
        kinds,
        vec![
            StatementKind::Statement,
            StatementKind::CreditNote,
            StatementKind::Statement
        ],
        "{gsrn}"
    );
    let invoice = new.invoice_totals.clone().context("complete")?;
    assert_eq!(issued[2].total_excl_vat, invoice.excl_vat, "{gsrn}");
    assert_eq!(issued[2].total_incl_vat, invoice.incl_vat, "{gsrn}");
    assert_eq!(
        issued[1].total_incl_vat, -issued[0].total_incl_vat,
        "{gsrn}"
    );
    Ok(())
}

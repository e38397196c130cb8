//! The Grafana dashboards (`deploy/grafana/dashboards/afregning.json` and
//! `reconciliation.json`) against the real PostgreSQL: a schema migrated from
//! scratch, a few rows seeded in the tables behind the views, then every `rawSql`
//! of every panel run with
//! Grafana's macros expanded the way Grafana expands them. A panel whose query
//! does not parse, names a column or view that does not exist, returns nothing
//! for data inside the dashboard's default range, or (as a time series) has no
//! `time` column fails with its title. Prometheus panels may only query
//! metrics the sinks emit ([`afregning_sinks::events::METRIC_NAMES`]).
//!
//! Why: the dashboard is JSON no compiler reads, and the views under it change
//! with the migrations; this is where a renamed column breaks first.

use std::path::PathBuf;

use afregning_sinks::events::METRIC_NAMES;
use afregning_sinks::schema::{self, StorageSettings};
use afregning_testkit::TestEnv;
use chrono::{DateTime, Duration, Utc};
use serde_json::Value;
use sqlx::{Column, Executor, TypeInfo};

fn dashboard_path(file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("deploy/grafana/dashboards")
        .join(file)
}

fn dashboard(file: &str) -> Value {
    let text =
        std::fs::read_to_string(dashboard_path(file)).expect("the dashboard JSON is readable");
    serde_json::from_str(&text).expect("the dashboard is valid JSON")
}

/// The dashboard's default range (`time.from` = `now-90d`, `now-1y`, ... to now).
fn default_range(dashboard: &Value) -> (DateTime<Utc>, DateTime<Utc>) {
    let from = dashboard["time"]["from"].as_str().expect("a default range");
    let back = from.strip_prefix("now-").expect("a range relative to now");
    let seconds = match back.strip_suffix('y') {
        Some(years) => years.parse::<i64>().expect("years") * 365 * 86_400,
        None => interval_seconds(back).expect("a Grafana interval"),
    };
    (Utc::now() - Duration::seconds(seconds), Utc::now())
}

/// One query of the dashboard: where it is, and what it says.
#[derive(Debug, Clone)]
struct Query {
    panel: String,
    format: String,
    text: String,
}

/// Every panel, rows' nested panels included.
fn panels(dashboard: &Value) -> Vec<&Value> {
    let mut out = Vec::new();
    let mut stack: Vec<&Value> = dashboard["panels"]
        .as_array()
        .map(|p| p.iter().collect())
        .unwrap_or_default();
    while let Some(panel) = stack.pop() {
        if let Some(nested) = panel["panels"].as_array() {
            stack.extend(nested.iter());
        }
        out.push(panel);
    }
    out
}

/// The SQL of every panel target and every query variable; an error when
/// there is none, so an emptied or renamed-away dashboard cannot pass.
fn sql_queries(dashboard: &Value) -> Result<Vec<Query>, String> {
    let mut queries = Vec::new();
    for panel in panels(dashboard) {
        let title = panel["title"].as_str().unwrap_or("(untitled)");
        for target in panel["targets"].as_array().into_iter().flatten() {
            if let Some(sql) = target["rawSql"].as_str() {
                queries.push(Query {
                    panel: title.to_string(),
                    format: target["format"].as_str().unwrap_or("time_series").into(),
                    text: sql.to_string(),
                });
            }
        }
    }
    for variable in dashboard["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let sql = variable["query"]["rawSql"].as_str().or_else(|| {
            variable["query"]
                .as_str()
                .filter(|_| variable["type"] == "query")
        });
        if let Some(sql) = sql {
            queries.push(Query {
                panel: format!("variable {}", variable["name"]),
                format: "table".into(),
                text: sql.to_string(),
            });
        }
    }
    if queries.is_empty() {
        return Err("the dashboard has no SQL query".into());
    }
    Ok(queries)
}

/// The PromQL of every panel target.
fn prometheus_queries(dashboard: &Value) -> Vec<Query> {
    let mut queries = Vec::new();
    for panel in panels(dashboard) {
        let title = panel["title"].as_str().unwrap_or("(untitled)");
        for target in panel["targets"].as_array().into_iter().flatten() {
            if let Some(expr) = target["expr"].as_str() {
                queries.push(Query {
                    panel: title.to_string(),
                    format: "prometheus".into(),
                    text: expr.to_string(),
                });
            }
        }
    }
    queries
}

/// Seconds of a Grafana interval literal (`'1d'`, `5m`, `30s`).
fn interval_seconds(literal: &str) -> Result<i64, String> {
    let literal = literal.trim().trim_matches('\'');
    let split = literal
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("interval {literal:?} has no unit"))?;
    let (number, unit) = literal.split_at(split);
    let number: i64 = number
        .parse()
        .map_err(|_| format!("interval {literal:?} has no number"))?;
    let unit = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        "w" => 604_800,
        other => return Err(format!("interval unit {other:?} is not one Grafana has")),
    };
    Ok(number * unit)
}

/// Splits macro arguments at top-level commas.
fn arguments(inner: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut depth = 0;
    let mut current = String::new();
    for c in inner.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(current.trim().to_string());
                current.clear();
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    if !current.trim().is_empty() {
        out.push(current.trim().to_string());
    }
    out
}

/// Grafana's PostgreSQL macros expanded as Grafana does for the range
/// `from..to`; an unknown macro or a leftover template variable is an error
/// (PostgreSQL would otherwise see `$x` and fail less clearly).
fn expand(sql: &str, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<String, String> {
    let rfc = |t: DateTime<Utc>| format!("'{}'", t.format("%Y-%m-%dT%H:%M:%SZ"));
    let mut out = String::new();
    let mut rest = sql;
    while let Some(at) = rest.find("$__") {
        out.push_str(&rest[..at]);
        let after = &rest[at + 3..];
        let name_len = after
            .find(|c: char| !c.is_ascii_alphanumeric() && c != '_')
            .unwrap_or(after.len());
        let name = &after[..name_len];
        let mut tail = &after[name_len..];
        let args = if tail.starts_with('(') {
            let mut depth = 0;
            let mut close = None;
            for (i, c) in tail.char_indices() {
                match c {
                    '(' => depth += 1,
                    ')' => {
                        depth -= 1;
                        if depth == 0 {
                            close = Some(i);
                            break;
                        }
                    }
                    _ => {}
                }
            }
            let close = close.ok_or_else(|| format!("$__{name}( is not closed"))?;
            let inner = &tail[1..close];
            tail = &tail[close + 1..];
            arguments(inner)
        } else {
            Vec::new()
        };
        let arg = |i: usize| {
            args.get(i)
                .cloned()
                .ok_or_else(|| format!("$__{name} needs argument {}", i + 1))
        };
        let expansion = match name {
            "timeFilter" => format!("{} BETWEEN {} AND {}", arg(0)?, rfc(from), rfc(to)),
            "timeFrom" => rfc(from),
            "timeTo" => rfc(to),
            "time" => format!("{} AS \"time\"", arg(0)?),
            "timeEpoch" => format!("extract(epoch from {}) AS \"time\"", arg(0)?),
            "timeGroup" | "timeGroupAlias" => {
                let seconds = interval_seconds(&arg(1)?)?;
                let group = format!("floor(extract(epoch from {})/{seconds})*{seconds}", arg(0)?);
                if name == "timeGroupAlias" {
                    format!("{group} AS \"time\"")
                } else {
                    group
                }
            }
            "unixEpochFilter" => format!(
                "{0} >= {1} AND {0} <= {2}",
                arg(0)?,
                from.timestamp(),
                to.timestamp()
            ),
            "unixEpochFrom" => from.timestamp().to_string(),
            "unixEpochTo" => to.timestamp().to_string(),
            other => return Err(format!("unknown Grafana macro $__{other}")),
        };
        out.push_str(&expansion);
        rest = tail;
    }
    out.push_str(rest);
    if let Some(at) = out.find('$') {
        let next = out[at + 1..].chars().next();
        if next.is_some_and(|c| c.is_ascii_alphabetic() || c == '{' || c == '_') {
            return Err(format!(
                "an unsubstituted template variable at {:?}",
                &out[at..]
            ));
        }
    }
    Ok(out)
}

/// A few rows in every table under the views, dated inside the dashboard's
/// default range (the last 90 days), so each panel has something to show.
const SEED: &str = "
INSERT INTO daily_summary (gsrn, local_date, tariff_period, grid_area, price_area, resolution, kwh,
    day_total_kwh, spot_cost_dkk, expected_positions, received_positions, complete, version, computed_at,
    source_topic, source_partition, source_offset)
VALUES ('571313180400000001', current_date - 3, 'low', '740', 'DK2', 'PT15M', 4.5, 12.5, 4.2, 96, 96, true, 1, now(), 't', 0, 0),
       ('571313180400000001', current_date - 3, 'high', '740', 'DK2', 'PT15M', 8.0, 12.5, 4.2, 96, 96, true, 1, now(), 't', 0, 0),
       ('571313180400000002', current_date - 3, 'total', '344', 'DK1', 'PT15M', 7.5, 7.5, 2.1, 96, 90, false, 1, now(), 't', 0, 1);
INSERT INTO settlement_version (gsrn, month_start, version, grid_area, energy_supplier_gln, total_excl_vat,
    vat_amount, total_incl_vat, days_settled, days_in_month, idempotency_key, computed_at,
    source_topic, source_partition, source_offset)
VALUES ('571313180400000001', date_trunc('month', now() AT TIME ZONE 'Europe/Copenhagen')::date, 1, '740', NULL,
    100, 25, 125, 3, 30, 'v1', now(), 't', 0, 2);
INSERT INTO settlement_line (gsrn, month_start, version, line_no, component, description, charge_owner_gln,
    charge_type, charge_code, quantity, quantity_unit, unit_price, amount, vat_class, idempotency_key)
VALUES ('571313180400000001', date_trunc('month', now() AT TIME ZONE 'Europe/Copenhagen')::date, 1, 1,
    'SPOT_ENERGY', 'Spot', NULL, NULL, NULL, 30, 'KWH', 3, 90, 'VAT25', 'v1:1');
INSERT INTO settlement_statement (statement_id, kind, corrects_statement_id, gsrn, month_start, grid_area,
    energy_supplier_gln, version, total_excl_vat, vat_amount, total_incl_vat, currency, idempotency_key,
    issued_at, source_topic, source_partition, source_offset)
VALUES ('s1', 'STATEMENT', NULL, '571313180400000001', date_trunc('month', now() AT TIME ZONE 'Europe/Copenhagen')::date,
    '740', NULL, 1, 100, 25, 125, 'DKK', 's1', now(), 't', 0, 3);
INSERT INTO settlement_statement_line (statement_id, line_no, component, description, charge_owner_gln,
    charge_type, charge_code, quantity, quantity_unit, unit_price, amount, vat_class, version, idempotency_key)
VALUES ('s1', 1, 'SPOT_ENERGY', 'Spot', NULL, NULL, NULL, 30, 'KWH', 3, 90, 'VAT25', 1, 's1:1');
INSERT INTO dead_letter (source_topic, source_partition, source_offset, component, error_class, reason,
    failed_at, attempts, dead_letter_partition, dead_letter_offset)
VALUES ('t', 0, 9, 'validate', 'UNDECODABLE', 'EOF while parsing', now() - interval '1 hour', 1, 0, 0);
INSERT INTO sink_offset (consumer, topic, partition, next_offset)
VALUES ('afregning.sink-postgres', 't', 0, 10), ('afregning.sink-erp#published', 'erp', 0, 1);
INSERT INTO erp_delivery (statement_id, idempotency_key, kind, gsrn, month_start, version, total_incl_vat,
    document, erp_topic, erp_partition, erp_offset)
VALUES ('s1', 's1', 'STATEMENT', '571313180400000001', date_trunc('month', now() AT TIME ZONE 'Europe/Copenhagen')::date,
    1, 125, '{}', 'erp', 0, 0);
";

/// A schema of its own, migrated from scratch, with `seed` run in it.
async fn seeded(label: &str, seed: &str) -> (TestEnv, sqlx::PgConnection) {
    let env = TestEnv::start(label).await.unwrap();
    let mut conn = schema::connect(&env.database_url, "test").await.unwrap();
    schema::migrate(
        &mut conn,
        &StorageSettings::default(),
        Utc::now().date_naive(),
    )
    .await
    .unwrap();
    conn.execute(seed).await.unwrap();
    (env, conn)
}

/// Every query of a dashboard run on `conn` over `from..to`: what fails, with its panel.
async fn failures(
    conn: &mut sqlx::PgConnection,
    queries: &[Query],
    prometheus: &[Query],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Vec<String> {
    let mut failures = Vec::new();
    for query in queries {
        let sql = match expand(&query.text, from, to) {
            Ok(sql) => sql,
            Err(e) => {
                failures.push(format!("panel {:?}: {e}", query.panel));
                continue;
            }
        };
        let rows = match sqlx::query(&sql).fetch_all(&mut *conn).await {
            Ok(rows) => rows,
            Err(e) => {
                failures.push(format!("panel {:?}: {e}\n{sql}", query.panel));
                continue;
            }
        };
        if rows.is_empty() {
            failures.push(format!(
                "panel {:?} shows nothing for the seeded rows\n{sql}",
                query.panel
            ));
        }
        if query.format == "time_series" {
            let described = (&mut *conn).describe(sql.as_str()).await.unwrap();
            let time = described.columns().iter().find(|c| c.name() == "time");
            match time.map(|c| c.type_info().name().to_string()) {
                Some(ty) if ty.starts_with("TIMESTAMP") => {}
                other => failures.push(format!(
                    "panel {:?} is a time series without a timestamp column named time ({other:?})",
                    query.panel
                )),
            }
        }
    }
    for query in prometheus {
        for metric in query
            .text
            .split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
            .filter(|w| w.starts_with("afregning_"))
        {
            let base = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| metric.strip_suffix(s))
                .filter(|b| METRIC_NAMES.contains(b))
                .unwrap_or(metric);
            if !METRIC_NAMES.contains(&base) {
                failures.push(format!(
                    "panel {:?} queries {metric}, which the sinks do not emit",
                    query.panel
                ));
            }
        }
    }
    failures
}

#[tokio::test]
async fn every_dashboard_query_runs_against_a_migrated_schema() {
    let dashboard = dashboard("afregning.json");
    let queries = sql_queries(&dashboard).unwrap();
    // The issue's panels read these views; the lag panel reads the sinks' lag metric.
    let all_sql: String = queries.iter().map(|q| q.text.as_str()).collect();
    for view in [
        "consumption_per_grid_area_day",
        "settlement_totals_month_component",
        "data_completeness_grid_area_day",
        "dead_letter_backlog",
        "sink_progress",
    ] {
        assert!(all_sql.contains(view), "no panel reads {view}");
    }
    let prometheus = prometheus_queries(&dashboard);
    assert!(
        prometheus
            .iter()
            .any(|q| q.text.contains("afregning_sink_lag_records")),
        "no panel shows the sinks' lag in records"
    );

    let (env, mut conn) = seeded("sinks_dashboard", SEED).await;

    let (from, to) = default_range(&dashboard);
    let failures = failures(&mut conn, &queries, &prometheus, from, to).await;
    assert!(
        failures.is_empty(),
        "{} of {} dashboard queries fail:\n{}",
        failures.len(),
        queries.len() + prometheus.len(),
        failures.join("\n\n")
    );
    drop(conn);
    env.cleanup().await.unwrap();
}

/// This month's reconciliations as the sink writes them: grid area 344's version 1
/// (superseded) and 2 (current, two discrepancies), and version 3 announced with two
/// discrepancies but holding one (incomplete, so not current); grid area 740 reconciles.
const RECONCILIATION_SEED: &str = "
INSERT INTO reconciliation (grid_area, month_start, version, energy_supplier_gln, grid_area_owner_gln,
    parts, discrepancy_count, calculations, computed_at)
SELECT area, date_trunc('month', now() AT TIME ZONE 'Europe/Copenhagen')::date, version, '5790002000000',
    NULL, 1, n, 'D05 v1', now()
FROM (VALUES ('344', 1, 1), ('344', 2, 2), ('344', 3, 2), ('740', 1, 0)) AS v(area, version, n);
INSERT INTO reconciliation_discrepancy (grid_area, month_start, version, seq, level, measure, resolution,
    position_start, datahub, ours, difference, metering_points, calculation)
SELECT '344', date_trunc('month', now() AT TIME ZONE 'Europe/Copenhagen')::date, version, seq, level, measure,
    'PT1H', now(), 2.5, 1.25, 1.25, mps, 'D05 v1'
FROM (VALUES (1, 1, 'ENERGY', 'QUANTITY', '{571313180400000001}'::text[]),
             (2, 1, 'ENERGY', 'QUANTITY', '{571313180400000001}'),
             (2, 2, 'AMOUNT_PER_CHARGE', 'AMOUNT', '{571313180400000001,571313180400000002}'),
             (3, 1, 'ENERGY', 'QUANTITY', '{}')) AS d(version, seq, level, measure, mps);
";

#[tokio::test]
async fn the_reconciliation_dashboard_runs_against_a_migrated_schema() {
    let dashboard = dashboard("reconciliation.json");
    let queries = sql_queries(&dashboard).unwrap();
    let per_month = queries
        .iter()
        .find(|q| q.panel == "Discrepancies per month and grid area")
        .expect("the discrepancies-per-month panel");
    assert_eq!(per_month.format, "time_series");
    let all_sql: String = queries.iter().map(|q| q.text.as_str()).collect();
    for table in ["reconciliation_current", "reconciliation_discrepancy"] {
        assert!(all_sql.contains(table), "no panel reads {table}");
    }

    let (env, mut conn) = seeded("sinks_dashboard_reconciliation", RECONCILIATION_SEED).await;

    let (from, to) = default_range(&dashboard);
    let failures = failures(
        &mut conn,
        &queries,
        &prometheus_queries(&dashboard),
        from,
        to,
    )
    .await;
    assert!(
        failures.is_empty(),
        "{} of {} dashboard queries fail:\n{}",
        failures.len(),
        queries.len(),
        failures.join("\n\n")
    );
    // The panel counts the current versions only: 344's version 2, not the superseded
    // version 1 nor the incomplete version 3.
    let sql = expand(&per_month.text, from, to).unwrap();
    let rows: Vec<(String, i32)> = sqlx::query_as(&format!(
        "SELECT metric, discrepancies FROM ({sql}) AS panel ORDER BY metric"
    ))
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert_eq!(rows, vec![("344".to_string(), 2), ("740".to_string(), 0)]);
    drop(conn);
    env.cleanup().await.unwrap();
}

#[test]
fn every_provisioned_dashboard_is_checked_here() {
    let checked = ["afregning.json", "reconciliation.json"];
    let directory = dashboard_path("");
    let mut found: Vec<String> = std::fs::read_dir(&directory)
        .expect("the dashboards directory")
        .map(|e| {
            e.expect("an entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|name| name.ends_with(".json"))
        .collect();
    found.sort();
    assert_eq!(
        found, checked,
        "a dashboard in {directory:?} whose queries no test runs"
    );
}

#[test]
fn a_dashboard_without_queries_fails() {
    assert!(sql_queries(&serde_json::json!({"panels": []})).is_err());
    assert!(sql_queries(&serde_json::json!({})).is_err());
    let nested = serde_json::json!({"panels": [{"type": "row", "title": "r", "panels": [
        {"title": "inner", "targets": [{"rawSql": "SELECT 1", "format": "table"}]}
    ]}]});
    assert_eq!(sql_queries(&nested).unwrap()[0].panel, "inner");
}

#[test]
fn grafana_macros_expand_and_unknown_ones_are_refused() {
    let from = DateTime::parse_from_rfc3339("2026-10-01T00:00:00Z")
        .unwrap()
        .with_timezone(&Utc);
    let to = from + Duration::days(1);
    assert_eq!(
        expand("WHERE $__timeFilter(coalesce(a, b)) AND x", from, to).unwrap(),
        "WHERE coalesce(a, b) BETWEEN '2026-10-01T00:00:00Z' AND '2026-10-02T00:00:00Z' AND x"
    );
    assert_eq!(
        expand(
            "SELECT $__timeGroupAlias(ts, '1h'), $__timeFrom()",
            from,
            to
        )
        .unwrap(),
        "SELECT floor(extract(epoch from ts)/3600)*3600 AS \"time\", '2026-10-01T00:00:00Z'"
    );
    assert_eq!(
        expand("$__unixEpochFilter(e)", from, to).unwrap(),
        "e >= 1790812800 AND e <= 1790899200"
    );
    assert!(expand("$__timeFilterX(ts)", from, to).is_err());
    assert!(expand("WHERE grid_area IN ($grid_area)", from, to).is_err());
    assert!(expand("$__timeFilter(ts", from, to).is_err());
}

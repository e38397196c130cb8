//! The schema against the real PostgreSQL, in the test's own schema: the
//! migrations apply once and then change nothing, `metering_series` is the
//! plain-PostgreSQL partitioned table (this server has no TimescaleDB, and the
//! test checks that instead of assuming it) with no Timescale statement
//! issued and `metering_data` its view, versioned rows are immutable, and the
//! binary COPY encoder's bytes are what PostgreSQL reads.

use afregning_sinks::copy::CopyWriter;
use afregning_sinks::schema::storage::{self, StorageMode};
use afregning_sinks::schema::{self, StorageSettings};
use afregning_testkit::TestEnv;
use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc};
use rust_decimal::Decimal;
use sqlx::Row;

#[tokio::test]
async fn migrations_apply_once_and_metering_series_is_partitioned_without_timescale_sql() {
    let env = TestEnv::start("sinks_schema").await.unwrap();
    let mut conn = schema::connect(&env.database_url, "test").await.unwrap();
    let today = Utc::now().date_naive();

    let observed = storage::observe(&mut conn).await.unwrap();
    assert!(
        !observed.timescaledb_available,
        "this test covers the plain-PostgreSQL path; the server offers TimescaleDB"
    );
    assert!(!observed.table_exists);

    let first = schema::migrate(&mut conn, &StorageSettings::default(), today)
        .await
        .unwrap();
    // Every embedded migration, in order (the list grows with the issues).
    assert_eq!(
        first.applied.iter().map(|(v, _)| *v).collect::<Vec<_>>(),
        schema::MIGRATIONS
            .iter()
            .map(|(v, _, _)| *v)
            .collect::<Vec<_>>()
    );
    assert_eq!(first.storage.mode, StorageMode::Partitioned);
    let executed = first.storage.executed.join(";\n").to_lowercase();
    for marker in [
        "timescaledb",
        "hypertable",
        "add_compression_policy",
        "add_retention_policy",
    ] {
        assert!(
            !executed.contains(marker),
            "issued Timescale SQL: {executed}"
        );
    }
    assert!(executed.contains("partition by range (period_start)"));
    assert!(executed.contains("create or replace view metering_data"));
    // One month behind, this month and three ahead.
    let expected: Vec<(i32, u32)> = storage::months_around(today, 1, 3);
    assert_eq!(
        first.storage.partitions.iter().copied().collect::<Vec<_>>(),
        expected
    );

    // In the test's schema, partitioned, with the partitions attached.
    let (schema_name, kind): (String, String) = sqlx::query_as(
        "SELECT n.nspname::text, c.relkind::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE c.oid = to_regclass('metering_series')",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(schema_name, env.db_schema);
    assert_eq!(kind, "p");
    let view_kind: String = sqlx::query_scalar(
        "SELECT c.relkind::text FROM pg_class c WHERE c.oid = to_regclass('metering_data')",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(
        view_kind, "v",
        "metering_data is the view over metering_series"
    );
    let this_month = storage::partition_name(today.year(), today.month());
    let bound: String = sqlx::query_scalar(
        "SELECT pg_get_expr(c.relpartbound, c.oid) FROM pg_class c WHERE c.oid = to_regclass($1)",
    )
    .bind(&this_month)
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert!(bound.starts_with("FOR VALUES FROM ('"), "{bound}");

    // A second run changes nothing.
    let second = schema::migrate(&mut conn, &StorageSettings::default(), today)
        .await
        .unwrap();
    assert!(second.applied.is_empty());
    assert!(
        second.storage.executed.is_empty(),
        "{:?}",
        second.storage.executed
    );
    assert!(second.render().contains("already current"));

    // Next month the planner adds exactly one partition ahead.
    let next_month = today
        .with_day(1)
        .unwrap()
        .checked_add_months(chrono::Months::new(1))
        .unwrap();
    let later = schema::migrate(&mut conn, &StorageSettings::default(), next_month)
        .await
        .unwrap();
    assert_eq!(
        later.storage.executed.len(),
        1,
        "{:?}",
        later.storage.executed
    );
    assert!(later.storage.executed[0].contains("PARTITION OF metering_series"));

    // Every view the dashboard reads exists and answers.
    for view in [
        "metering_point_current",
        "daily_summary_day",
        "consumption_per_grid_area_day",
        "consumption_per_grid_area_day_tariff",
        "settlement_version_latest",
        "settlement_line_latest",
        "settlement_totals_month_component",
        "dead_letter_backlog",
        "data_completeness_grid_area_day",
        "sink_progress",
        "erp_deliveries_month",
    ] {
        let rows: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {view}"))
            .fetch_one(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("{view}: {e}"));
        assert_eq!(rows, 0, "{view}");
    }
    drop(conn);
    env.cleanup().await.unwrap();
}

#[tokio::test]
async fn a_per_position_metering_data_table_stops_the_migration_with_the_upgrade_advice() {
    let env = TestEnv::start("sinks_schema_legacy").await.unwrap();
    let mut conn = schema::connect(&env.database_url, "test").await.unwrap();
    sqlx::query(&format!(
        "CREATE TABLE metering_data ({})",
        storage::PER_POSITION_COLUMNS
    ))
    .execute(&mut conn)
    .await
    .unwrap();
    let error = schema::migrate(
        &mut conn,
        &StorageSettings::default(),
        Utc::now().date_naive(),
    )
    .await
    .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("ALTER TABLE metering_data RENAME TO metering_data_per_position"),
        "{error}"
    );
    let series: Option<String> = sqlx::query_scalar("SELECT to_regclass('metering_series')::text")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(series, None, "nothing half-made");
    drop(conn);
    env.cleanup().await.unwrap();
}

#[tokio::test]
async fn versioned_rows_are_immutable_and_dead_letters_need_a_resolver() {
    let env = TestEnv::start("sinks_immutable").await.unwrap();
    let mut conn = schema::connect(&env.database_url, "test").await.unwrap();
    schema::migrate(
        &mut conn,
        &StorageSettings::default(),
        Utc::now().date_naive(),
    )
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO settlement_version VALUES ('571313180400000028', '2026-10-01', 1, '740', NULL,
            10, 2.5, 12.5, 15, 31, 'k1', now(), 't', 0, 0)",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    let error = sqlx::query("UPDATE settlement_version SET total_excl_vat = 11")
        .execute(&mut conn)
        .await
        .unwrap_err();
    assert!(error.to_string().contains("immutable"), "{error}");
    // A new version is a new row.
    sqlx::query(
        "INSERT INTO settlement_version VALUES ('571313180400000028', '2026-10-01', 2, '740', NULL,
            11, 2.75, 13.75, 16, 31, 'k2', now(), 't', 0, 1)",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    let latest: i64 = sqlx::query_scalar("SELECT version FROM settlement_version_latest")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(latest, 2);

    sqlx::query(
        "INSERT INTO dead_letter (source_topic, source_partition, source_offset, component, error_class,
            reason, failed_at, attempts, dead_letter_partition, dead_letter_offset)
         VALUES ('t', 0, 1, 'validate', 'INVALID', 'bad', now(), 1, 0, 0)",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    let error = sqlx::query("UPDATE dead_letter SET resolved = true")
        .execute(&mut conn)
        .await
        .unwrap_err();
    assert!(error.to_string().contains("check constraint"), "{error}");
    sqlx::query("UPDATE dead_letter SET resolved = true, resolved_by = 'kim', resolved_at = now()")
        .execute(&mut conn)
        .await
        .unwrap();
    let backlog: i64 = sqlx::query_scalar("SELECT count(*) FROM dead_letter_backlog")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(backlog, 0);
    drop(conn);
    env.cleanup().await.unwrap();
}

#[tokio::test]
async fn binary_copy_streams_are_read_back_exactly() {
    let env = TestEnv::start("sinks_copy").await.unwrap();
    let mut conn = schema::connect(&env.database_url, "test").await.unwrap();
    sqlx::query(
        "CREATE TABLE copy_check (t text, i integer, b bigint, f boolean, d date, ts timestamptz,
            n numeric(18,6), n3 numeric(18,3), raw bytea, j jsonb)",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    type Row = (
        Option<String>,
        Option<i32>,
        Option<i64>,
        Option<bool>,
        Option<NaiveDate>,
        Option<DateTime<Utc>>,
        Option<Decimal>,
        Option<Decimal>,
        Option<Vec<u8>>,
        Option<serde_json::Value>,
    );
    let rows: Vec<Row> = vec![
        (
            Some("æøå 571313180400000028".into()),
            Some(-7),
            Some(i64::MAX),
            Some(true),
            Some(NaiveDate::from_ymd_opt(1999, 12, 31).unwrap()),
            Some(Utc.with_ymd_and_hms(1970, 1, 1, 0, 0, 0).unwrap()),
            Some(Decimal::new(-203_085_000, 6)),
            Some(Decimal::new(123_456_789_012_345, 3)),
            Some(vec![0, 1, 255]),
            Some(serde_json::json!({"kwh": "1.250", "n": [1, 2]})),
        ),
        (
            Some(String::new()),
            Some(0),
            Some(0),
            Some(false),
            Some(NaiveDate::from_ymd_opt(2026, 10, 25).unwrap()),
            Some(
                Utc.with_ymd_and_hms(2026, 10, 25, 0, 59, 59).unwrap()
                    + chrono::Duration::microseconds(123_456),
            ),
            Some(Decimal::ZERO),
            Some(Decimal::new(1, 3)),
            Some(Vec::new()),
            Some(serde_json::json!(null)),
        ),
        (None, None, None, None, None, None, None, None, None, None),
        (
            Some("x".into()),
            Some(i32::MIN),
            Some(-1),
            None,
            None,
            None,
            Some(Decimal::new(999_999_999_999_999_999, 6)),
            Some(Decimal::new(-10_000, 3)),
            None,
            None,
        ),
    ];
    let mut writer = CopyWriter::new();
    for r in &rows {
        writer
            .row(10)
            .field(&r.0)
            .unwrap()
            .field(&r.1)
            .unwrap()
            .field(&r.2)
            .unwrap()
            .field(&r.3)
            .unwrap()
            .field(&r.4)
            .unwrap()
            .field(&r.5)
            .unwrap()
            .field(&r.6)
            .unwrap()
            .field(&r.7)
            .unwrap()
            .field(&r.8)
            .unwrap()
            .jsonb(r.9.as_ref());
    }
    let mut copy = conn
        .copy_in_raw("COPY copy_check FROM STDIN (FORMAT binary)")
        .await
        .unwrap();
    copy.send(writer.finish()).await.unwrap();
    assert_eq!(copy.finish().await.unwrap(), rows.len() as u64);
    let back = sqlx::query("SELECT * FROM copy_check")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    assert_eq!(back.len(), rows.len());
    for (expected, row) in rows.iter().zip(&back) {
        let got: Row = (
            row.get(0),
            row.get(1),
            row.get(2),
            row.get(3),
            row.get(4),
            row.get(5),
            row.get(6),
            row.get(7),
            row.get(8),
            row.get(9),
        );
        assert_eq!(&got, expected);
    }
    // Decimals keep their scale as text too (what dashboards show).
    let text: Vec<String> =
        sqlx::query_scalar("SELECT n::text FROM copy_check WHERE n IS NOT NULL ORDER BY n")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    assert_eq!(text, vec!["-203.085000", "0.000000", "999999999999.999999"]);
    drop(conn);
    env.cleanup().await.unwrap();
}

//! `daily_summary` keeps one version of each day: a newer version replaces every row of
//! the day (also the tariff periods it no longer has), an older one changes nothing,
//! across batches. The delete of older rows binds the batch's days as arrays
//! (`DAILY_DELETE_OLDER`); this shows it still deletes what it must and nothing else,
//! on the real PostgreSQL.

use std::sync::Arc;

use afregning_sinks::positions::{Position, SourcePos};
use afregning_sinks::schema::StorageSettings;
use afregning_sinks::timescale::batch::TimescaleBatch;
use afregning_sinks::timescale::service::TimescaleService;
use afregning_topology::records::{DailyAggregate, TariffPeriodEnergy, examples};
use chrono::{NaiveDate, Utc};
use rust_decimal::Decimal;

mod database;

use database::{drop_schema, migrated_schema};

const CONSUMER: &str = "daily-versions-test";
const TOPIC: &str = "test.daily";

/// Version `version` of metering point `gsrn`'s day `day` with `periods`.
fn day(gsrn: &str, day: u32, version: i64, periods: &[&str]) -> DailyAggregate {
    let mut aggregate = examples::daily_aggregate();
    aggregate.gsrn = gsrn.into();
    aggregate.local_date = NaiveDate::from_ymd_opt(2026, 10, day).unwrap();
    aggregate.version = version;
    aggregate.tariff_periods = periods
        .iter()
        .map(|p| TariffPeriodEnergy {
            tariff_period: (*p).into(),
            kwh: Decimal::new(version * 1_000, 3),
        })
        .collect();
    aggregate
}

async fn write(service: &mut TimescaleService, days: Vec<DailyAggregate>, offset: i64) {
    let mut batch = TimescaleBatch::default();
    for (i, aggregate) in days.into_iter().enumerate() {
        let pos = SourcePos {
            topic: Arc::from(TOPIC),
            partition: 0,
            offset: offset + i as i64,
            received_at: Utc::now(),
        };
        batch.add_daily(aggregate, &pos);
    }
    let next = offset + 10;
    let positions = vec![Position {
        topic: Arc::from(TOPIC),
        partition: 0,
        next_offset: next,
    }];
    service.write(&batch, &positions).await.unwrap();
}

/// Every row: (gsrn, day of month, tariff period, version).
async fn rows(conn: &mut sqlx::PgConnection) -> Vec<(String, i32, String, i64)> {
    sqlx::query_as(
        "SELECT gsrn, extract(day FROM local_date)::int, tariff_period, version \
         FROM daily_summary ORDER BY 1, 2, 3",
    )
    .fetch_all(conn)
    .await
    .unwrap()
}

fn row(gsrn: &str, day: i32, period: &str, version: i64) -> (String, i32, String, i64) {
    (gsrn.into(), day, period.into(), version)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_version_replaces_the_whole_day_and_an_older_one_changes_nothing() {
    let name = format!("t_daily_versions_{}", std::process::id());
    let (url, mut conn) = migrated_schema(&name).await;
    let mut service = TimescaleService::new(&url, CONSUMER, StorageSettings::default());
    let (a, b) = ("571313180000000001", "571313180000000002");

    write(
        &mut service,
        vec![
            day(a, 15, 1, &["high", "low", "peak"]),
            day(a, 16, 1, &["high", "low", "peak"]),
            day(b, 15, 1, &["high", "low", "peak"]),
        ],
        0,
    )
    .await;
    assert_eq!(rows(&mut conn).await.len(), 9);

    // Version 2 of a's 15th without the peak period: the day's rows are v2's two, and
    // a's 16th and b's 15th (same date, other metering point) keep theirs.
    write(&mut service, vec![day(a, 15, 2, &["high", "low"])], 10).await;
    let mut want = vec![
        row(a, 15, "high", 2),
        row(a, 15, "low", 2),
        row(a, 16, "high", 1),
        row(a, 16, "low", 1),
        row(a, 16, "peak", 1),
        row(b, 15, "high", 1),
        row(b, 15, "low", 1),
        row(b, 15, "peak", 1),
    ];
    want.sort();
    assert_eq!(rows(&mut conn).await, want);

    // A late version 1 of that day (a redelivery) changes nothing.
    write(
        &mut service,
        vec![day(a, 15, 1, &["high", "low", "peak"])],
        20,
    )
    .await;
    assert_eq!(rows(&mut conn).await, want);

    drop(conn);
    drop_schema(&name).await;
}

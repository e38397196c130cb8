//! The database sink's two ways into `metering_data`, against the real PostgreSQL: a COPY
//! straight into the month's partition for series with no stored row, the staging merge for
//! the rest, and the fallback when the direct COPY meets a stored row after all. Whatever
//! the way, each (gsrn, resolution, ts) must end with exactly one row holding the latest
//! registration, and the positions must commit with the rows.

use std::collections::BTreeMap;
use std::sync::Arc;

use afregning_sinks::positions::{Position, SourcePos};
use afregning_sinks::runner::FlushReport;
use afregning_sinks::schema::{self, StorageSettings};
use afregning_sinks::timescale::batch::TimescaleBatch;
use afregning_sinks::timescale::service::{MeteringPath, TimescaleService};
use afregning_topology::records::{Quality, Reading, ReadingPoint, Resolution};
use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc};
use rust_decimal::Decimal;

mod database;

use database::{drop_schema, fresh_schema};

const CONSUMER: &str = "metering-copy-test";

const TOPIC: &str = "test.readings";

/// The 15th of the current month, 00:00 UTC: its partition exists after migration.
fn day_start() -> DateTime<Utc> {
    let today = Utc::now().date_naive();
    let day = NaiveDate::from_ymd_opt(today.year(), today.month(), 15).unwrap();
    Utc.from_utc_datetime(&day.and_hms_opt(0, 0, 0).unwrap())
}

/// A PT15M day of metering point `n`, registered `registered_h` hours after the day's
/// start, each quantity `base + position` thousandths.
fn reading(n: u32, registered_h: i64, base: i64, message: &str) -> Reading {
    let start = day_start();
    Reading {
        gsrn: format!("5713131800000{n:05}"),
        metering_point_type: "E17".into(),
        resolution: Resolution::Pt15m,
        period_start: start,
        period_end: start + Duration::hours(24),
        registered_at: start + Duration::hours(registered_h),
        unit: "KWH".into(),
        product: Some("8716867000030".into()),
        business_reason: Some("E23".into()),
        source_message_id: message.into(),
        transaction_id: format!("{message}-{n}"),
        points: (1..=96)
            .map(|position| ReadingPoint {
                position,
                quantity: Some(Decimal::new(base + i64::from(position), 3)),
                quality: Quality::AsProvided,
            })
            .collect(),
    }
}

fn batch(readings: &[Reading], offset: i64) -> TimescaleBatch {
    let mut batch = TimescaleBatch::default();
    let pos = SourcePos {
        topic: Arc::from(TOPIC),
        partition: 0,
        offset,
        received_at: day_start() + Duration::hours(40),
    };
    for r in readings {
        batch.add_reading(r, &pos).unwrap();
    }
    batch
}

fn position(next_offset: i64) -> Vec<Position> {
    vec![Position {
        topic: Arc::from(TOPIC),
        partition: 0,
        next_offset,
    }]
}

fn count(report: &FlushReport, name: &str) -> u64 {
    report.counts.get(name).copied().unwrap_or(0)
}

/// Per GSRN: rows, sum of quantities, and the message ids found.
async fn table(conn: &mut sqlx::PgConnection) -> BTreeMap<String, (i64, Decimal, String)> {
    let rows: Vec<(String, i64, Decimal, String)> = sqlx::query_as(
        "SELECT gsrn, count(*), sum(quantity), string_agg(DISTINCT source_message_id, ',') \
         FROM metering_data GROUP BY gsrn",
    )
    .fetch_all(conn)
    .await
    .unwrap();
    rows.into_iter()
        .map(|(g, n, s, m)| (g, (n, s, m)))
        .collect()
}

/// What the table should hold for a reading: 96 rows, its sum, its message id.
fn expect(r: &Reading) -> (String, (i64, Decimal, String)) {
    let sum: Decimal = r.points.iter().filter_map(|p| p.quantity).sum();
    (r.gsrn.clone(), (96, sum, r.source_message_id.clone()))
}

async fn stored_offset(conn: &mut sqlx::PgConnection) -> i64 {
    let (offset,): (i64,) = sqlx::query_as(
        "SELECT next_offset FROM sink_offset WHERE consumer = $1 AND topic = $2 AND partition = 0",
    )
    .bind(CONSUMER)
    .bind(TOPIC)
    .fetch_one(conn)
    .await
    .unwrap();
    offset
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_series_are_copied_and_redeliveries_and_corrections_end_in_the_latest_rows() {
    let name = format!("t_metering_copy_{}", std::process::id());
    let url = fresh_schema(&name).await;
    let mut conn = schema::connect(&url, "metering copy test").await.unwrap();
    let today = Utc::now().date_naive();
    let settings = StorageSettings::default();
    schema::migrate(&mut conn, &settings, today).await.unwrap();
    let mut service = TimescaleService::new(&url, CONSUMER, StorageSettings::default())
        .with_metering_path(MeteringPath::Auto);

    // A day of three new metering points: all copied straight into the partition.
    let first: Vec<Reading> = (1..=3).map(|n| reading(n, 30, 100, "m1")).collect();
    let report = service
        .write(&batch(&first, 0), &position(3))
        .await
        .unwrap();
    assert_eq!(count(&report, "metering_rows_copied"), 288);
    assert_eq!(count(&report, "metering_rows_merged"), 0);
    assert_eq!(report.tables["metering_data"], (288, 288));
    let want: BTreeMap<_, _> = first.iter().map(expect).collect();
    assert_eq!(table(&mut conn).await, want);
    assert_eq!(stored_offset(&mut conn).await, 3);

    // The same batch redelivered: the probe sends it to the merge, which changes nothing.
    let report = service
        .write(&batch(&first, 0), &position(3))
        .await
        .unwrap();
    assert_eq!(count(&report, "metering_rows_copied"), 0);
    assert_eq!(count(&report, "metering_rows_merged"), 288);
    assert_eq!(report.tables["metering_data"], (288, 0));
    assert_eq!(table(&mut conn).await, want);

    // A correction of metering point 2 (a later registration) beside a new metering point 4:
    // the correction is merged, the new series copied.
    let corrected = reading(2, 36, 500, "m2");
    let fourth = reading(4, 30, 100, "m2");
    let report = service
        .write(
            &batch(&[corrected.clone(), fourth.clone()], 3),
            &position(5),
        )
        .await
        .unwrap();
    assert_eq!(count(&report, "metering_rows_copied"), 96);
    assert_eq!(count(&report, "metering_rows_merged"), 96);
    assert_eq!(report.tables["metering_data"], (192, 192));
    let mut want = want;
    want.extend([expect(&corrected), expect(&fourth)]);
    assert_eq!(table(&mut conn).await, want);
    assert_eq!(stored_offset(&mut conn).await, 5);

    // Without the probe the direct COPY meets the stored rows: it rolls back to its
    // savepoint and every row takes the merge. The older registration of metering point 2
    // (redelivered late) must not win, metering point 5 is new, and the positions commit.
    let mut blind = TimescaleService::new(&url, CONSUMER, StorageSettings::default())
        .with_metering_path(MeteringPath::Unprobed);
    drop(service);
    let fifth = reading(5, 30, 100, "m3");
    let stale = reading(2, 30, 100, "m1");
    let report = blind
        .write(&batch(&[stale, fifth.clone()], 5), &position(7))
        .await
        .unwrap();
    assert_eq!(count(&report, "metering_copy_fallbacks"), 1);
    assert_eq!(count(&report, "metering_rows_copied"), 0);
    assert_eq!(count(&report, "metering_rows_merged"), 192);
    assert_eq!(
        report.tables["metering_data"],
        (192, 96),
        "only the new series"
    );
    want.extend([expect(&fifth)]);
    assert_eq!(table(&mut conn).await, want);
    assert_eq!(stored_offset(&mut conn).await, 7);

    // And a later correction through the fallback replaces the rows.
    let again = reading(3, 48, 900, "m4");
    let report = blind
        .write(&batch(std::slice::from_ref(&again), 7), &position(8))
        .await
        .unwrap();
    assert_eq!(count(&report, "metering_copy_fallbacks"), 1);
    assert_eq!(report.tables["metering_data"], (96, 96));
    want.extend([expect(&again)]);
    assert_eq!(table(&mut conn).await, want);
    let (keys, rows): (i64, i64) = sqlx::query_as(
        "SELECT count(DISTINCT (gsrn, resolution, ts)), count(*) FROM metering_data",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!((keys, rows), (480, 480), "one row per key");
    drop(blind);
    drop(conn);
    drop_schema(&name).await;
}

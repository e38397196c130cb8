//! The database sink's metering series against the real PostgreSQL (decision 0151): a COPY
//! of one row per series straight into the month's partition, the staging path for a batch
//! that meets a stored series (a replay) and for `metering_direct_copy = false`, and the
//! `metering_data` view over them. Whatever the way, each (gsrn, resolution, ts) must show
//! exactly one value, the latest registration's (ties: the higher MessageId), also where a
//! correction covers only part of a day; the positions must commit with the rows; and the
//! view's position starts must equal the sink's Rust (`rows::metering_rows`) across DST.

use std::collections::BTreeMap;
use std::sync::Arc;

use afregning_sinks::positions::{Position, SourcePos};
use afregning_sinks::runner::FlushReport;
use afregning_sinks::schema::StorageSettings;
use afregning_sinks::timescale::batch::TimescaleBatch;
use afregning_sinks::timescale::rows::metering_rows;
use afregning_sinks::timescale::service::{MeteringPath, TimescaleService};
use afregning_topology::records::{Quality, Reading, ReadingPoint, Resolution};
use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc};
use rust_decimal::Decimal;

mod database;

use database::{drop_schema, migrated_schema};

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

/// The expected view of a metering point from its readings, in arrival order: per
/// position the latest registration (ties: the higher MessageId), as `MeteringRow::supersedes`.
fn expect_latest(readings: &[&Reading]) -> (String, (i64, Decimal, String)) {
    let mut by_ts: BTreeMap<DateTime<Utc>, (DateTime<Utc>, String, Option<Decimal>)> =
        BTreeMap::new();
    for r in readings {
        for row in metering_rows(r, day_start()).unwrap() {
            let candidate = (
                row.registered_at,
                row.source_message_id.to_string(),
                row.quantity,
            );
            let entry = by_ts.entry(row.ts).or_insert_with(|| candidate.clone());
            if (&candidate.0, &candidate.1) > (&entry.0, &entry.1) {
                *entry = candidate;
            }
        }
    }
    let sum = by_ts.values().filter_map(|(_, _, q)| *q).sum();
    let messages: std::collections::BTreeSet<&str> =
        by_ts.values().map(|(_, m, _)| m.as_str()).collect();
    (
        readings[0].gsrn.clone(),
        (
            by_ts.len() as i64,
            sum,
            messages.into_iter().collect::<Vec<_>>().join(","),
        ),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn series_are_copied_once_and_the_view_shows_the_latest_registration_per_position() {
    let name = format!("t_metering_copy_{}", std::process::id());
    let (url, mut conn) = migrated_schema(&name).await;
    let mut service = TimescaleService::new(&url, CONSUMER, StorageSettings::default())
        .with_metering_path(MeteringPath::Auto);

    // A day of three new metering points: one row each, copied straight into the partition.
    let first: Vec<Reading> = (1..=3).map(|n| reading(n, 30, 100, "m1")).collect();
    let report = service
        .write(&batch(&first, 0), &position(3))
        .await
        .unwrap();
    assert_eq!(count(&report, "metering_series_copied"), 3);
    assert_eq!(count(&report, "metering_series_merged"), 0);
    assert_eq!(count(&report, "metering_values"), 288);
    assert_eq!(report.tables["metering_series"], (3, 3));
    let mut want: BTreeMap<_, _> = first.iter().map(expect).collect();
    assert_eq!(table(&mut conn).await, want);
    assert_eq!(stored_offset(&mut conn).await, 3);

    // The same batch redelivered: the COPY meets the stored series, rolls back to its
    // savepoint, and the staging path stores nothing new; the position still commits.
    let report = service
        .write(&batch(&first, 0), &position(4))
        .await
        .unwrap();
    assert_eq!(count(&report, "metering_copy_fallbacks"), 1);
    assert_eq!(count(&report, "metering_series_copied"), 0);
    assert_eq!(count(&report, "metering_series_merged"), 3);
    assert_eq!(report.tables["metering_series"], (3, 0));
    assert_eq!(table(&mut conn).await, want);
    assert_eq!(stored_offset(&mut conn).await, 4);

    // A correction of metering point 2 (a later registration) beside a new metering point 4:
    // both are new series versions, copied; the view shows the correction.
    let corrected = reading(2, 36, 500, "m2");
    let fourth = reading(4, 30, 100, "m2");
    let report = service
        .write(
            &batch(&[corrected.clone(), fourth.clone()], 4),
            &position(6),
        )
        .await
        .unwrap();
    assert_eq!(count(&report, "metering_series_copied"), 2);
    want.extend([expect(&corrected), expect(&fourth)]);
    assert_eq!(table(&mut conn).await, want);

    // An older registration of metering point 2 arriving late (another message) is stored
    // but does not win; a correction of metering point 3 covering only the first half of
    // the day wins there and leaves the second half to the first delivery.
    let stale = reading(2, 20, 700, "m0");
    let mut half = reading(3, 40, 900, "m3");
    half.points.truncate(48);
    half.period_end = half.period_start + Duration::hours(12);
    let report = service
        .write(&batch(&[stale.clone(), half.clone()], 6), &position(8))
        .await
        .unwrap();
    assert_eq!(count(&report, "metering_series_copied"), 2);
    want.extend([
        expect_latest(&[&first[1], &corrected, &stale]),
        expect_latest(&[&first[2], &half]),
    ]);
    assert_eq!(want["571313180000000002"].1, expect(&corrected).1.1);
    assert_eq!(want["571313180000000003"].2, "m1,m3");
    assert_eq!(table(&mut conn).await, want);

    // A tie in registration time: the higher MessageId wins, whatever the arrival order,
    // also through the staging path.
    let mut staged = TimescaleService::new(&url, CONSUMER, StorageSettings::default())
        .with_metering_path(MeteringPath::MergeOnly);
    drop(service);
    let tie_high = reading(4, 30, 300, "m9");
    let fifth = reading(5, 30, 100, "m3");
    let report = staged
        .write(&batch(&[tie_high.clone(), fifth.clone()], 8), &position(9))
        .await
        .unwrap();
    assert_eq!(count(&report, "metering_series_merged"), 2);
    assert_eq!(report.tables["metering_series"], (2, 2));
    want.extend([expect(&tie_high), expect(&fifth)]);
    assert_eq!(table(&mut conn).await, want);
    assert_eq!(stored_offset(&mut conn).await, 9);

    let (keys, rows, series): (i64, i64, i64) = sqlx::query_as(
        "SELECT count(DISTINCT (gsrn, resolution, ts)), count(*), \
                (SELECT count(*) FROM metering_series) FROM metering_data",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!((keys, rows), (480, 480), "one value per position");
    assert_eq!(series, 9, "every version stored once");
    drop(staged);
    drop(conn);
    drop_schema(&name).await;
}

/// A series of `positions` at `resolution` from `start`, quantity = position thousandths,
/// position 3 without a quantity.
fn series(
    n: u32,
    resolution: Resolution,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    positions: i32,
) -> Reading {
    let mut r = reading(n, 30, 0, "dst");
    r.resolution = resolution;
    r.period_start = start;
    r.period_end = end;
    r.registered_at = end;
    r.points = (1..=positions)
        .map(|position| ReadingPoint {
            position,
            quantity: (position != 3).then(|| Decimal::new(i64::from(position), 3)),
            quality: if position == 3 {
                Quality::NotAvailable
            } else {
                Quality::AsProvided
            },
        })
        .collect();
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_view_places_positions_where_the_sink_does_across_dst() {
    let name = format!("t_metering_dst_{}", std::process::id());
    let (url, mut conn) = migrated_schema(&name).await;
    let mut service = TimescaleService::new(&url, CONSUMER, StorageSettings::default());
    let utc = |y, m, d, h| Utc.with_ymd_and_hms(y, m, d, h, 0, 0).unwrap();
    let readings = vec![
        // 25 October 2026 (local) has 100 quarter hours and 25 hours.
        series(
            1,
            Resolution::Pt15m,
            utc(2026, 10, 24, 22),
            utc(2026, 10, 25, 23),
            100,
        ),
        series(
            2,
            Resolution::Pt1h,
            utc(2026, 10, 24, 22),
            utc(2026, 10, 25, 23),
            25,
        ),
        // 29 March 2026 has 92 quarter hours.
        series(
            3,
            Resolution::Pt15m,
            utc(2026, 3, 28, 23),
            utc(2026, 3, 29, 22),
            92,
        ),
        // Days across the end of DST, and months across a year and both DST changes.
        series(
            4,
            Resolution::P1d,
            utc(2026, 10, 22, 22),
            utc(2026, 10, 27, 23),
            5,
        ),
        series(
            5,
            Resolution::P1m,
            utc(2026, 8, 31, 22),
            utc(2027, 3, 31, 22),
            7,
        ),
    ];
    service
        .write(&batch(&readings, 0), &position(1))
        .await
        .unwrap();
    type Row = (String, DateTime<Utc>, String, Option<Decimal>, String);
    let mut want: Vec<Row> = Vec::new();
    for r in &readings {
        for row in metering_rows(r, day_start()).unwrap() {
            want.push((
                row.gsrn.to_string(),
                row.ts,
                row.resolution.to_string(),
                row.quantity,
                row.quality.to_string(),
            ));
        }
    }
    want.sort();
    let got: Vec<Row> = sqlx::query_as(
        "SELECT gsrn, ts, resolution, quantity, quality FROM metering_data ORDER BY 1, 2, 3",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert_eq!(got.len(), 100 + 25 + 92 + 5 + 7);
    assert_eq!(got, want);
    // A metering point's query reads only that point's series: the filter reaches the
    // primary key through the view's DISTINCT ON. (Sequential scans are off so that the
    // index is used on these few rows if, and only if, the filter reached the scan.)
    sqlx::query("SET enable_seqscan = off")
        .execute(&mut conn)
        .await
        .unwrap();
    let plan: Vec<(String,)> =
        sqlx::query_as("EXPLAIN SELECT * FROM metering_data WHERE gsrn = '571313180000000004'")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    let plan: String = plan.into_iter().map(|(l,)| l + "\n").collect();
    assert!(
        plan.contains("Index Cond: (gsrn = '571313180000000004'"),
        "{plan}"
    );
    drop(service);
    drop(conn);
    drop_schema(&name).await;
}

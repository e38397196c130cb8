//! Values per second into PostgreSQL: the database sink's own write path (one
//! `metering_series` row per series, decision 0151) beside the per-position
//! layout it replaced, written three ways, in one run. A value is one
//! quarter-hour quantity; every figure counts values (96 per series).
//!
//! - `sink_direct_copy`: [`TimescaleService::write`] with a [`TimescaleBatch`]
//!   of readings, exactly what the sink does per batch by default: sort and
//!   encode one binary COPY row per series, COPY it straight into the month's
//!   partition inside a savepoint, the positions in `sink_offset`, one
//!   transaction.
//! - `sink_copy_merge`: the same service with `metering_direct_copy = false`:
//!   COPY into the staging table, one `INSERT … SELECT … ON CONFLICT DO
//!   NOTHING` into `metering_series`, the positions, one transaction.
//!
//! The per-position baselines write `metering_data_per_position`
//! ([`storage::PER_POSITION_COLUMNS`], monthly partitions), the sink's table
//! before decision 0151, with its conflict rule:
//! - `insert_single_row`: one prepared `INSERT … VALUES ($1..$8) ON CONFLICT`
//!   per row, the batch in one transaction (the kind baseline: no commit per row).
//! - `insert_multi_row`: multi-row `INSERT … VALUES (…), (…) ON CONFLICT` of
//!   1,000 rows per statement, the batch in one transaction.
//! - `copy_direct_no_merge`: the ceiling, not a design: binary COPY straight
//!   into `metering_data`, no staging and no conflict rule (a replay would
//!   fail on the primary key), so what the server takes at best.
//!
//! All of them write the same values (19,968 per batch, about the sink's
//! default `batch_max_rows`: 208 PT15M metering point-days), new keys in every
//! batch, each into its own throwaway schema migrated by the sink (plain
//! PostgreSQL: monthly partitions). Only the write is timed; building the rows
//! from readings is not, for any of them.
//!
//! `DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/afregning`)
//! picks the server; the schemas `afregning_bench_*` are dropped at the end.
//! Run: `cargo bench --workspace --bench metering_data_insert`; figures in
//! `sinks/BENCHMARKS.md`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use afregning_sinks::copy::CopyWriter;
use afregning_sinks::positions::{Position, SourcePos};
use afregning_sinks::schema::storage::{self, PER_POSITION_COLUMNS};
use afregning_sinks::schema::{self, StorageSettings};
use afregning_sinks::timescale::batch::TimescaleBatch;
use afregning_sinks::timescale::rows::{MeteringRow, metering_rows};
use afregning_sinks::timescale::service::{MeteringPath, TimescaleService};
use afregning_topology::records::{Quality, Reading, ReadingPoint, Resolution};
use chrono::{Datelike, NaiveDate, TimeZone, Utc};
use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput};
use rust_decimal::Decimal;
use sqlx::{Connection, PgConnection, Postgres, QueryBuilder};

/// Metering point-days per batch: 208 × 96 = 19,968 rows.
const POINTS_PER_BATCH: u64 = 208;
/// Rows per multi-row INSERT statement (8,000 bind parameters, under the 65,535 limit).
const MULTI_ROW_CHUNK: usize = 1_000;

/// The baselines' per-position table.
const PER_POSITION: &str = "metering_data_per_position";

const COLUMNS: &str =
    "gsrn, ts, resolution, quantity, quality, registered_at, source_message_id, received_at";

/// The per-position layout's conflict rule (the sink's merge before decision 0151).
const ON_CONFLICT: &str = " ON CONFLICT (gsrn, resolution, ts) DO UPDATE SET
    quantity = excluded.quantity, quality = excluded.quality,
    registered_at = excluded.registered_at, source_message_id = excluded.source_message_id,
    received_at = excluded.received_at
WHERE (excluded.registered_at, excluded.source_message_id COLLATE \"C\")
    > (t.registered_at, t.source_message_id COLLATE \"C\")";

fn base_url() -> String {
    std::env::var("DATABASE_URL")
        .ok()
        .filter(|u| !u.trim().is_empty())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/afregning".into())
}

fn with_search_path(url: &str, schema: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}options=-c%20search_path%3D{schema}")
}

/// A fresh schema migrated by the sink; returns its URL.
async fn fresh_schema(name: &str) -> String {
    let mut admin = schema::connect(&base_url(), "afregning bench")
        .await
        .expect("PostgreSQL answers at DATABASE_URL");
    sqlx::query(&format!("DROP SCHEMA IF EXISTS {name} CASCADE"))
        .execute(&mut admin)
        .await
        .unwrap();
    sqlx::query(&format!("CREATE SCHEMA {name}"))
        .execute(&mut admin)
        .await
        .unwrap();
    let url = with_search_path(&base_url(), name);
    let mut conn = schema::connect(&url, "afregning bench").await.unwrap();
    schema::migrate(
        &mut conn,
        &StorageSettings::default(),
        Utc::now().date_naive(),
    )
    .await
    .unwrap();
    // The baselines' table: the per-position layout, partitioned by UTC month like the sink's.
    let today = Utc::now().date_naive();
    let (year, month) = (today.year(), today.month());
    let (next_year, next_month) = if month == 12 {
        (year + 1, 1)
    } else {
        (year, month + 1)
    };
    for statement in [
        format!("CREATE TABLE {PER_POSITION} ({PER_POSITION_COLUMNS}) PARTITION BY RANGE (ts)"),
        format!(
            "CREATE TABLE {PER_POSITION}_current PARTITION OF {PER_POSITION} FOR VALUES FROM \
             ('{year:04}-{month:02}-01 00:00:00+00') TO ('{next_year:04}-{next_month:02}-01 00:00:00+00')"
        ),
    ] {
        sqlx::query(&statement).execute(&mut conn).await.unwrap();
    }
    url
}

async fn drop_schema(name: &str) {
    if let Ok(mut admin) = schema::connect(&base_url(), "afregning bench").await {
        let _ = sqlx::query(&format!("DROP SCHEMA IF EXISTS {name} CASCADE"))
            .execute(&mut admin)
            .await;
    }
}

/// The readings of batch `index`: new metering points, one day in the middle
/// of the current month (whose partition the migration created).
fn readings(index: u64) -> Vec<Reading> {
    let today = Utc::now().date_naive();
    let day = NaiveDate::from_ymd_opt(today.year(), today.month(), 15).unwrap();
    let start = Utc.from_utc_datetime(&day.and_hms_opt(0, 0, 0).unwrap());
    (0..POINTS_PER_BATCH)
        .map(|j| {
            let n = index * POINTS_PER_BATCH + j;
            Reading {
                gsrn: format!("57131318{n:010}"),
                metering_point_type: "E17".into(),
                resolution: Resolution::Pt15m,
                period_start: start,
                period_end: start + chrono::Duration::hours(24),
                registered_at: start + chrono::Duration::hours(30),
                unit: "KWH".into(),
                product: Some("8716867000030".into()),
                business_reason: Some("E23".into()),
                source_message_id: format!("bench-{n}"),
                transaction_id: format!("tx-{n}"),
                points: (1..=96)
                    .map(|position| ReadingPoint {
                        position,
                        quantity: Some(Decimal::new(
                            100 + i64::from(position) * 7 + (n % 13) as i64,
                            3,
                        )),
                        quality: Quality::AsProvided,
                    })
                    .collect(),
            }
        })
        .collect()
}

fn pos(offset: i64) -> SourcePos {
    SourcePos {
        topic: Arc::from("bench.readings"),
        partition: 0,
        offset,
        received_at: Utc::now(),
    }
}

/// The same rows as plain values, in the sink's order (gsrn, resolution, ts).
fn rows(readings: &[Reading]) -> Vec<MeteringRow> {
    let mut out: Vec<MeteringRow> = readings
        .iter()
        .flat_map(|r| metering_rows(r, Utc::now()).unwrap())
        .collect();
    out.sort_unstable_by(|a, b| (&a.gsrn, a.resolution, a.ts).cmp(&(&b.gsrn, b.resolution, b.ts)));
    out
}

async fn insert_single(conn: &mut PgConnection, rows: &[MeteringRow]) {
    let sql = format!(
        "INSERT INTO {PER_POSITION} AS t ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8){ON_CONFLICT}"
    );
    let mut tx = conn.begin().await.unwrap();
    for row in rows {
        sqlx::query(&sql)
            .bind(&*row.gsrn)
            .bind(row.ts)
            .bind(row.resolution)
            .bind(row.quantity)
            .bind(row.quality)
            .bind(row.registered_at)
            .bind(&*row.source_message_id)
            .bind(row.received_at)
            .execute(&mut *tx)
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
}

async fn insert_multi(conn: &mut PgConnection, rows: &[MeteringRow]) {
    let mut tx = conn.begin().await.unwrap();
    for chunk in rows.chunks(MULTI_ROW_CHUNK) {
        let mut query: QueryBuilder<'_, Postgres> =
            QueryBuilder::new(format!("INSERT INTO {PER_POSITION} AS t ({COLUMNS}) "));
        query.push_values(chunk, |mut b, row| {
            b.push_bind(&*row.gsrn)
                .push_bind(row.ts)
                .push_bind(row.resolution)
                .push_bind(row.quantity)
                .push_bind(row.quality)
                .push_bind(row.registered_at)
                .push_bind(&*row.source_message_id)
                .push_bind(row.received_at);
        });
        query.push(ON_CONFLICT);
        query.build().execute(&mut *tx).await.unwrap();
    }
    tx.commit().await.unwrap();
}

async fn copy_direct(conn: &mut PgConnection, rows: &[MeteringRow]) {
    let mut writer = CopyWriter::new();
    for row in rows {
        writer
            .row(8)
            .field(&&*row.gsrn)
            .and_then(|w| w.field(&row.ts))
            .and_then(|w| w.field(&row.resolution))
            .and_then(|w| w.field(&row.quantity))
            .and_then(|w| w.field(&row.quality))
            .and_then(|w| w.field(&row.registered_at))
            .and_then(|w| w.field(&&*row.source_message_id))
            .and_then(|w| w.field(&row.received_at))
            .unwrap();
    }
    let mut tx = conn.begin().await.unwrap();
    let mut copy = tx
        .copy_in_raw(&format!(
            "COPY {PER_POSITION} ({COLUMNS}) FROM STDIN (FORMAT binary)"
        ))
        .await
        .unwrap();
    copy.send(writer.finish()).await.unwrap();
    copy.finish().await.unwrap();
    tx.commit().await.unwrap();
}

/// Rows written and seconds timed per method, over every iteration criterion ran.
type Totals = Arc<Mutex<BTreeMap<&'static str, (u64, Duration)>>>;

fn record(totals: &Totals, method: &'static str, rows: u64, took: Duration) {
    let mut totals = totals.lock().unwrap();
    let entry = totals.entry(method).or_default();
    entry.0 += rows;
    entry.1 += took;
}

const METHODS: [&str; 5] = [
    "sink_direct_copy",
    "sink_copy_merge",
    "insert_multi_row",
    "insert_single_row",
    "copy_direct_no_merge",
];

fn schema_name(method: &str) -> String {
    format!("afregning_bench_{method}_{}", std::process::id())
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let totals: Totals = Arc::default();
    let rows_per_batch = POINTS_PER_BATCH * 96;
    let mut group = criterion.benchmark_group("metering_data_insert");
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(3))
        .measurement_time(Duration::from_secs(20))
        .throughput(Throughput::Elements(rows_per_batch));
    let mut urls = BTreeMap::new();
    for method in METHODS {
        urls.insert(method, runtime.block_on(fresh_schema(&schema_name(method))));
    }

    // The sink's paths: one service each (its connection, staging tables, lock).
    for (method, path) in [
        ("sink_direct_copy", MeteringPath::Auto),
        ("sink_copy_merge", MeteringPath::MergeOnly),
    ] {
        let mut service =
            TimescaleService::new(&urls[method], "afregning.bench", StorageSettings::default())
                .with_metering_path(path);
        let mut next = 0u64;
        group.bench_function(BenchmarkId::new(method, rows_per_batch), |b| {
            b.iter_custom(|iterations| {
                let mut took = Duration::ZERO;
                for _ in 0..iterations {
                    let mut batch = TimescaleBatch::default();
                    for (i, reading) in readings(next).iter().enumerate() {
                        batch.add_reading(reading, &pos(i as i64)).unwrap();
                    }
                    let positions = [Position {
                        topic: Arc::from("bench.readings"),
                        partition: 0,
                        next_offset: ((next + 1) * POINTS_PER_BATCH) as i64,
                    }];
                    next += 1;
                    let started = Instant::now();
                    let report = runtime
                        .block_on(service.write(&batch, &positions))
                        .expect("the sink's write succeeds");
                    let elapsed = started.elapsed();
                    assert_eq!(report.tables[storage::METERING_SERIES].1, POINTS_PER_BATCH);
                    assert_eq!(report.counts["metering_values"], rows_per_batch);
                    let copied = report.counts.get("metering_series_copied").copied();
                    match path {
                        MeteringPath::Auto => assert_eq!(copied, Some(POINTS_PER_BATCH)),
                        _ => assert_eq!(copied, Some(0)),
                    }
                    record(&totals, method, rows_per_batch, elapsed);
                    took += elapsed;
                }
                took
            })
        });
    }

    for method in [
        "insert_multi_row",
        "insert_single_row",
        "copy_direct_no_merge",
    ] {
        let mut conn = runtime
            .block_on(schema::connect(&urls[method], "afregning bench"))
            .unwrap();
        let mut next = 0u64;
        group.bench_function(BenchmarkId::new(method, rows_per_batch), |b| {
            b.iter_custom(|iterations| {
                let mut took = Duration::ZERO;
                for _ in 0..iterations {
                    let rows = rows(&readings(next));
                    next += 1;
                    let started = Instant::now();
                    runtime.block_on(async {
                        match method {
                            "insert_multi_row" => insert_multi(&mut conn, &rows).await,
                            "insert_single_row" => insert_single(&mut conn, &rows).await,
                            _ => copy_direct(&mut conn, &rows).await,
                        }
                    });
                    let elapsed = started.elapsed();
                    record(&totals, method, rows_per_batch, elapsed);
                    took += elapsed;
                }
                took
            })
        });
    }
    group.finish();

    // Every method wrote every row it was timed for, once.
    for method in METHODS {
        let count: i64 = runtime.block_on(async {
            let mut conn = schema::connect(&urls[method], "afregning bench")
                .await
                .unwrap();
            let table = if method.starts_with("sink_") {
                "metering_data"
            } else {
                PER_POSITION
            };
            sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
                .fetch_one(&mut conn)
                .await
                .unwrap()
        });
        let written = totals.lock().unwrap().get(method).map_or(0, |t| t.0);
        assert_eq!(count as u64, written, "{method}: values in the table");
    }
    println!(
        "\nvalues per second over every timed batch ({rows_per_batch} values = {POINTS_PER_BATCH} series each):"
    );
    let copy_rate = {
        let totals = totals.lock().unwrap();
        let (rows, secs) = totals.get("sink_direct_copy").copied().unwrap_or_default();
        rows as f64 / secs.as_secs_f64().max(f64::EPSILON)
    };
    for (method, (rows, took)) in totals.lock().unwrap().iter() {
        let rate = *rows as f64 / took.as_secs_f64().max(f64::EPSILON);
        println!(
            "  {method:<20} {rows:>10} values in {:>7.2} s = {rate:>10.0} values/s = {:>7.0} series/s (sink path {:.1}x)",
            took.as_secs_f64(),
            rate / 96.0,
            copy_rate / rate
        );
    }
    for method in METHODS {
        runtime.block_on(drop_schema(&schema_name(method)));
    }
    criterion.final_summary();
}

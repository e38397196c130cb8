//! The sinks' metrics, named in one place (Vector's instrumentation rule:
//! `<namespace>_<name>_<unit>[_total]`, emitted per batch, not per record).
//!
//! Every name starts with `afregning_sink_` and carries a `sink` label
//! (`postgres` or `erp`). The Grafana dashboard's pipeline-lag panel reads
//! [`LAG_RECORDS`]; `sinks/tests/dashboard.rs` checks that every metric the
//! dashboard queries is one of [`METRIC_NAMES`] or emitted elsewhere in the
//! workspace.

use std::time::Duration;

/// Records consumed and applied, per topic (counter).
pub const RECORDS: &str = "afregning_sink_records_total";
/// Rows staged per table (counter): the ingest rate.
pub const ROWS: &str = "afregning_sink_rows_total";
/// Rows inserted or changed per table (counter): a replay adds nothing here.
pub const ROWS_CHANGED: &str = "afregning_sink_rows_changed_total";
/// Batches committed (counter).
pub const BATCHES: &str = "afregning_sink_batches_total";
/// Time from starting a batch's write to its commit (histogram, seconds).
pub const BATCH_DURATION: &str = "afregning_sink_batch_duration_seconds";
/// Write attempts that failed and were retried, by reason (counter).
pub const RETRIES: &str = "afregning_sink_retries_total";
/// Records skipped because the sink had already applied them (counter).
pub const DUPLICATES: &str = "afregning_sink_duplicates_total";
/// Dead letters the sink itself produced (counter).
pub const DEAD_LETTERS: &str = "afregning_sink_dead_letters_total";
/// Records between the database's position and the partition's end (gauge).
pub const LAG_RECORDS: &str = "afregning_sink_lag_records";
/// 1 while the last database write succeeded, 0 while retrying (gauge).
pub const DATABASE_UP: &str = "afregning_sink_database_up";
/// 1 while a topic's consumer holds back for back-pressure (gauge).
pub const PAUSED: &str = "afregning_sink_paused";
/// Unix time of the last committed batch (gauge).
pub const LAST_COMMIT: &str = "afregning_sink_last_commit_timestamp_seconds";
/// Statements and credit notes the ERP sink published, by kind (counter).
pub const ERP_PUBLISHED: &str = "afregning_sink_erp_published_total";
/// Statements the ERP sink refused (silent change, missing correction) (counter).
pub const ERP_REJECTED: &str = "afregning_sink_erp_rejected_total";

/// Every metric name above, for the dashboard test and docs/sinks.md.
pub const METRIC_NAMES: &[&str] = &[
    RECORDS,
    ROWS,
    ROWS_CHANGED,
    BATCHES,
    BATCH_DURATION,
    RETRIES,
    DUPLICATES,
    DEAD_LETTERS,
    LAG_RECORDS,
    DATABASE_UP,
    PAUSED,
    LAST_COMMIT,
    ERP_PUBLISHED,
    ERP_REJECTED,
];

/// Histogram buckets for [`BATCH_DURATION`] (the exporter renders a summary
/// without them).
pub const BATCH_DURATION_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// A committed batch.
pub fn batch_committed(
    sink: &'static str,
    tables: &std::collections::BTreeMap<&'static str, (u64, u64)>,
    records: &std::collections::BTreeMap<String, u64>,
    duration: Duration,
) {
    metrics::counter!(BATCHES, "sink" => sink).increment(1);
    metrics::histogram!(BATCH_DURATION, "sink" => sink).record(duration.as_secs_f64());
    for (table, (staged, changed)) in tables {
        metrics::counter!(ROWS, "sink" => sink, "table" => *table).increment(*staged);
        metrics::counter!(ROWS_CHANGED, "sink" => sink, "table" => *table).increment(*changed);
    }
    for (topic, count) in records {
        metrics::counter!(RECORDS, "sink" => sink, "topic" => topic.clone()).increment(*count);
    }
    metrics::gauge!(DATABASE_UP, "sink" => sink).set(1.0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default();
    metrics::gauge!(LAST_COMMIT, "sink" => sink).set(now);
}

/// A failed write that will be retried.
pub fn write_retried(sink: &'static str, reason: &'static str) {
    metrics::counter!(RETRIES, "sink" => sink, "reason" => reason).increment(1);
    metrics::gauge!(DATABASE_UP, "sink" => sink).set(0.0);
}

/// Records the sink had already applied.
pub fn duplicates(sink: &'static str, topic: &str, count: u64) {
    if count > 0 {
        metrics::counter!(DUPLICATES, "sink" => sink, "topic" => topic.to_string())
            .increment(count);
    }
}

/// Dead letters produced by the sink.
pub fn dead_letters(sink: &'static str, count: u64) {
    if count > 0 {
        metrics::counter!(DEAD_LETTERS, "sink" => sink).increment(count);
    }
}

/// The lag of one partition.
pub fn lag(sink: &'static str, topic: &str, partition: i32, records: i64) {
    metrics::gauge!(LAG_RECORDS, "sink" => sink, "topic" => topic.to_string(), "partition" => partition.to_string())
        .set(records.max(0) as f64);
}

/// The gauge a topic's consumer sets while it holds back.
pub fn paused_gauge(sink: &'static str, topic: &str) -> metrics::Gauge {
    metrics::gauge!(PAUSED, "sink" => sink, "topic" => topic.to_string())
}

/// Statements and credit notes published to the ERP topic.
pub fn erp_published(statements: u64, credit_notes: u64) {
    if statements > 0 {
        metrics::counter!(ERP_PUBLISHED, "sink" => "erp", "kind" => "statement")
            .increment(statements);
    }
    if credit_notes > 0 {
        metrics::counter!(ERP_PUBLISHED, "sink" => "erp", "kind" => "credit_note")
            .increment(credit_notes);
    }
}

/// A statement the ERP sink refused.
pub fn erp_rejected() {
    metrics::counter!(ERP_REJECTED, "sink" => "erp").increment(1);
}

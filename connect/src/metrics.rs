//! The connector's Prometheus metrics, through the `metrics` facade.
//!
//! Per queue (label `queue`): messages and bytes received, records produced, peek, produce,
//! dequeue and whole-cycle latency (histograms, seconds), errors by `kind`, the current backoff
//! and whether the queue was stopped (403). Also token refreshes, outbound requests by
//! `status` and spot prices published by `price_area`.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Counter: bundles peeked.
pub const MESSAGES_RECEIVED: &str = "afregning_connect_messages_received_total";
/// Counter: bytes peeked.
pub const BYTES_RECEIVED: &str = "afregning_connect_bytes_received_total";
/// Counter: records produced to raw topics and acknowledged.
pub const RECORDS_PRODUCED: &str = "afregning_connect_records_produced_total";
/// Counter: bundles dequeued.
pub const MESSAGES_DEQUEUED: &str = "afregning_connect_messages_dequeued_total";
/// Histogram: peek latency.
pub const PEEK_SECONDS: &str = "afregning_connect_peek_duration_seconds";
/// Histogram: split, produce and all acknowledgements of one bundle (with the inbound log).
pub const PRODUCE_SECONDS: &str = "afregning_connect_produce_duration_seconds";
/// Histogram: dequeue latency.
pub const DEQUEUE_SECONDS: &str = "afregning_connect_dequeue_duration_seconds";
/// Histogram: peek start to dequeue answer.
pub const CYCLE_SECONDS: &str = "afregning_connect_cycle_duration_seconds";
/// Counter: errors by `queue` and `kind`.
pub const ERRORS: &str = "afregning_connect_errors_total";
/// Gauge: the wait before the next peek (0 while draining).
pub const BACKOFF_SECONDS: &str = "afregning_connect_backoff_seconds";
/// Gauge: 1 once a queue is stopped (403).
pub const QUEUE_STOPPED: &str = "afregning_connect_queue_stopped";
/// Counter: OAuth2 tokens fetched.
pub const TOKEN_REFRESHES: &str = "afregning_connect_token_refreshes_total";
/// Counter: outbound requests by `status` (accepted, rejected, failed).
pub const OUTBOUND_REQUESTS: &str = "afregning_connect_outbound_requests_total";
/// Counter: bundles whose customers' personal data was sealed before publishing.
pub const SEALED: &str = "afregning_connect_personal_data_sealed_total";
/// Counter: bundles with personal data that could not be sealed (not published, by `queue`).
pub const UNSEALABLE: &str = "afregning_connect_personal_data_unsealable_total";
/// Counter: spot prices published by `price_area`.
pub const SPOT_PRICES_PUBLISHED: &str = "afregning_connect_spot_prices_published_total";

const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 120.0,
];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the Prometheus recorder for this process (once) and returns its handle; `None`
/// if another recorder was installed first (then `/metrics` says so).
pub fn install() -> Option<PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("duration_seconds".into()), LATENCY_BUCKETS)
                .ok()?
                .build_recorder();
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder).ok()?;
            describe();
            Some(handle)
        })
        .clone()
}

fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(MESSAGES_RECEIVED, "DataHub bundles peeked, by queue");
    describe_counter!(
        BYTES_RECEIVED,
        Unit::Bytes,
        "bytes of DataHub bundles peeked, by queue"
    );
    describe_counter!(
        RECORDS_PRODUCED,
        "raw-topic records acknowledged by the broker, by queue"
    );
    describe_counter!(
        MESSAGES_DEQUEUED,
        "DataHub bundles dequeued after their records were acknowledged"
    );
    describe_histogram!(PEEK_SECONDS, Unit::Seconds, "peek latency, by queue");
    describe_histogram!(
        PRODUCE_SECONDS,
        Unit::Seconds,
        "split + produce + acknowledgements + inbound log, by queue"
    );
    describe_histogram!(DEQUEUE_SECONDS, Unit::Seconds, "dequeue latency, by queue");
    describe_histogram!(
        CYCLE_SECONDS,
        Unit::Seconds,
        "peek-to-dequeue cycle, by queue"
    );
    describe_counter!(ERRORS, "errors, by queue and kind");
    describe_gauge!(
        BACKOFF_SECONDS,
        Unit::Seconds,
        "current wait before the next peek, by queue"
    );
    describe_gauge!(
        QUEUE_STOPPED,
        "1 when a queue's poller stopped (403 forbidden)"
    );
    describe_counter!(TOKEN_REFRESHES, "OAuth2 access tokens fetched");
    describe_counter!(OUTBOUND_REQUESTS, "outbound requests by outcome");
    describe_counter!(
        SPOT_PRICES_PUBLISHED,
        "spot prices published, by price area"
    );
}

/// The exposition text, or a comment saying why there is none.
pub fn render() -> String {
    match HANDLE.get().cloned().flatten() {
        Some(handle) => handle.render(),
        None => "# no Prometheus recorder installed in this process\n".into(),
    }
}

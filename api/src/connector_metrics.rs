//! DataHub's queues as the connector sees them, read from the connector's own
//! Prometheus endpoint (`--connector-metrics-url`, its admin port's
//! `/metrics`).
//!
//! Why this source: the connector is the one process that talks to DataHub's
//! queues and it already publishes what it saw per queue (`connect/src/metrics.rs`);
//! it writes no table or topic of queue state, and copying its metrics into
//! one would be a second, lagging truth. DataHub's peek/dequeue API reports no
//! queue depth, so nobody here knows how many messages wait at DataHub: what
//! is shown is what the connector received, produced and dequeued since it
//! started (Prometheus counters restart at 0 with the process), its errors,
//! its current backoff and whether DataHub stopped a queue (403).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;
use utoipa::ToSchema;

/// How long a scrape may take.
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(5);

/// One DataHub queue as the connector reports it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, ToSchema)]
pub struct QueueMetrics {
    /// The queue (`timeseries`, `aggregations`, `masterdata`, `charges`).
    pub queue: String,
    /// Bundles peeked since the connector started.
    pub messages_received: u64,
    /// Their bytes.
    pub bytes_received: u64,
    /// Raw-topic records the broker acknowledged.
    pub records_produced: u64,
    /// Bundles dequeued after their records were acknowledged.
    pub messages_dequeued: u64,
    /// Errors by kind.
    pub errors: BTreeMap<String, u64>,
    /// The wait before the next peek, in seconds (0 while draining).
    pub backoff_seconds: Option<f64>,
    /// Whether DataHub stopped the queue (403).
    pub stopped: bool,
    /// Peek-to-dequeue cycles measured, and their mean duration in seconds.
    pub cycles: u64,
    /// See `cycles`.
    pub mean_cycle_seconds: Option<f64>,
}

/// One sample of the exposition text: name, labels, value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Metric name (with `_sum`/`_count`/`_bucket` for histograms).
    pub name: String,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// Its value.
    pub value: f64,
}

/// The samples of a Prometheus text exposition (comments and malformed lines skipped).
pub fn samples(text: &str) -> Vec<Sample> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(sample)
        .collect()
}

fn sample(line: &str) -> Option<Sample> {
    let (series, value) = line.rsplit_once(' ')?;
    let value: f64 = value.parse().ok()?;
    let (name, labels) = match series.split_once('{') {
        Some((name, rest)) => (name, labels(rest.strip_suffix('}')?)?),
        None => (series, BTreeMap::new()),
    };
    Some(Sample {
        name: name.to_string(),
        labels,
        value,
    })
}

/// `k="v",k2="v2"` with `\"`, `\\` and `\n` escapes in values.
fn labels(text: &str) -> Option<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    let mut rest = text;
    while !rest.is_empty() {
        let (key, after) = rest.split_once("=\"")?;
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next()? {
                (i, '"') => break i,
                (_, '\\') => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    c => value.push(c),
                },
                (_, c) => value.push(c),
            }
        };
        out.insert(key.trim().to_string(), value);
        rest = after[end + 1..].trim_start_matches(',').trim_start();
    }
    Some(out)
}

/// The connector's per-queue metrics from its exposition text.
pub fn queues(text: &str) -> Vec<QueueMetrics> {
    let mut out: BTreeMap<String, QueueMetrics> = BTreeMap::new();
    let mut cycle_sums: BTreeMap<String, f64> = BTreeMap::new();
    for s in samples(text) {
        let Some(queue) = s.labels.get("queue") else {
            continue;
        };
        let q = out.entry(queue.clone()).or_insert_with(|| QueueMetrics {
            queue: queue.clone(),
            ..QueueMetrics::default()
        });
        let count = s.value.max(0.0) as u64;
        match s.name.as_str() {
            "afregning_connect_messages_received_total" => q.messages_received = count,
            "afregning_connect_bytes_received_total" => q.bytes_received = count,
            "afregning_connect_records_produced_total" => q.records_produced = count,
            "afregning_connect_messages_dequeued_total" => q.messages_dequeued = count,
            "afregning_connect_errors_total" => {
                let kind = s.labels.get("kind").cloned().unwrap_or_default();
                *q.errors.entry(kind).or_default() += count;
            }
            "afregning_connect_backoff_seconds" => q.backoff_seconds = Some(s.value),
            "afregning_connect_queue_stopped" => q.stopped = s.value >= 1.0,
            "afregning_connect_cycle_duration_seconds_count" => q.cycles = count,
            "afregning_connect_cycle_duration_seconds_sum" => {
                cycle_sums.insert(queue.clone(), s.value);
            }
            _ => {}
        }
    }
    for (queue, sum) in cycle_sums {
        if let Some(q) = out.get_mut(&queue).filter(|q| q.cycles > 0) {
            q.mean_cycle_seconds = Some(sum / q.cycles as f64);
        }
    }
    out.into_values().collect()
}

/// Scrapes `url` (the connector's `/metrics`).
pub async fn scrape(url: &str) -> Result<String, String> {
    let response = reqwest::Client::new()
        .get(url)
        .timeout(SCRAPE_TIMEOUT)
        .send()
        .await
        .map_err(|e| format!("the connector's metrics at {url} did not answer: {e}"))?;
    if !response.status().is_success() {
        return Err(format!(
            "the connector's metrics at {url} answered {}",
            response.status()
        ));
    }
    response.text().await.map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "# HELP afregning_connect_messages_received_total DataHub bundles peeked\n\
        # TYPE afregning_connect_messages_received_total counter\n\
        afregning_connect_messages_received_total{queue=\"timeseries\"} 12\n\
        afregning_connect_messages_dequeued_total{queue=\"timeseries\"} 11\n\
        afregning_connect_errors_total{queue=\"timeseries\",kind=\"peek\"} 2\n\
        afregning_connect_errors_total{queue=\"timeseries\",kind=\"dequeue\"} 1\n\
        afregning_connect_queue_stopped{queue=\"charges\"} 1\n\
        afregning_connect_backoff_seconds{queue=\"charges\"} 0.5\n\
        afregning_connect_cycle_duration_seconds_sum{queue=\"timeseries\"} 3\n\
        afregning_connect_cycle_duration_seconds_count{queue=\"timeseries\"} 12\n\
        afregning_connect_token_refreshes_total 4\n\
        odd{label=\"a \\\"quoted\\\", value\"} 1\n";

    #[test]
    fn the_queues_are_read_from_the_exposition_text() {
        let queues = queues(TEXT);
        assert_eq!(queues.len(), 2);
        let charges = &queues[0];
        assert_eq!(charges.queue, "charges");
        assert!(charges.stopped);
        assert_eq!(charges.backoff_seconds, Some(0.5));
        let timeseries = &queues[1];
        assert_eq!(timeseries.messages_received, 12);
        assert_eq!(timeseries.messages_dequeued, 11);
        assert_eq!(timeseries.errors["peek"], 2);
        assert_eq!(timeseries.errors["dequeue"], 1);
        assert_eq!(timeseries.mean_cycle_seconds, Some(0.25));
        assert!(!timeseries.stopped);
    }

    #[test]
    fn label_values_keep_their_escaped_quotes_and_commas() {
        let odd = samples(TEXT).pop().expect("a sample");
        assert_eq!(odd.labels["label"], "a \"quoted\", value");
        assert!(samples("no_value\nname{bad 1\n").is_empty());
    }
}

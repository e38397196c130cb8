//! Latency summaries by sorting: a load test records at most a few hundred thousand cycles,
//! so an exact sort is cheap and needs no histogram crate.

use std::time::Duration;

/// p50, p99, mean and max of a set of durations, so every phase reports the same figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// Number of samples.
    pub count: usize,
    /// Median (nearest rank).
    pub p50: Duration,
    /// 99th percentile (nearest rank).
    pub p99: Duration,
    /// Arithmetic mean.
    pub mean: Duration,
    /// Largest sample.
    pub max: Duration,
}

/// The nearest-rank `p`-th percentile of sorted samples: the smallest sample with at least
/// `p` % of the samples at or below it (no interpolation, so it is always a measured value).
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Summarises `samples` (`None` when there are none, so an empty phase prints as such).
pub fn summarize(mut samples: Vec<Duration>) -> Option<Summary> {
    if samples.is_empty() {
        return None;
    }
    samples.sort_unstable();
    let total: Duration = samples.iter().sum();
    Some(Summary {
        count: samples.len(),
        p50: percentile(&samples, 50.0),
        p99: percentile(&samples, 99.0),
        mean: total / samples.len() as u32,
        max: samples[samples.len() - 1],
    })
}

/// Milliseconds with two decimals, the unit every table uses.
pub fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms_vec(values: &[u64]) -> Vec<Duration> {
        values.iter().map(|v| Duration::from_millis(*v)).collect()
    }

    #[test]
    fn nearest_rank_percentiles() {
        let sorted = ms_vec(&(1..=100).collect::<Vec<_>>());
        assert_eq!(percentile(&sorted, 50.0), Duration::from_millis(50));
        assert_eq!(percentile(&sorted, 99.0), Duration::from_millis(99));
        assert_eq!(percentile(&sorted, 100.0), Duration::from_millis(100));
        assert_eq!(percentile(&sorted, 0.0), Duration::from_millis(1));
        assert_eq!(percentile(&[], 50.0), Duration::ZERO);
    }

    #[test]
    fn summary_of_unsorted_samples() {
        let s = summarize(ms_vec(&[30, 10, 20])).expect("summary");
        assert_eq!(s.count, 3);
        assert_eq!(s.p50, Duration::from_millis(20));
        assert_eq!(s.p99, Duration::from_millis(30));
        assert_eq!(s.mean, Duration::from_millis(20));
        assert_eq!(s.max, Duration::from_millis(30));
        assert!(summarize(Vec::new()).is_none());
    }
}

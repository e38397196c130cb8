//! How long to wait: exponential backoff with jitter after errors, `Retry-After` when DataHub
//! says, and a growing idle wait after empty peeks.

use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::Rng as _;

use crate::config::BackoffConfig;

/// Exponential backoff with "equal jitter": the n-th wait is uniform in `[d/2, d]` with
/// `d = min(max, initial × multiplier^n)`, so pollers that failed together do not retry together.
#[derive(Debug, Clone)]
pub struct Backoff {
    config: BackoffConfig,
    attempt: u32,
}

impl Backoff {
    /// A backoff at its first step.
    pub fn new(config: BackoffConfig) -> Self {
        Self { config, attempt: 0 }
    }

    /// Back to the first step (after a success).
    pub fn reset(&mut self) {
        self.attempt = 0;
    }

    /// The nominal wait of the next step, without jitter.
    pub fn nominal(&self) -> Duration {
        let d = self.config.initial_ms as f64
            * self.config.multiplier.powi(self.attempt.min(64) as i32);
        Duration::from_millis(d.min(self.config.max_ms as f64) as u64)
    }

    /// The next wait (jittered), advancing a step.
    pub fn next_wait(&mut self) -> Duration {
        let d = self.nominal();
        self.attempt = self.attempt.saturating_add(1);
        let half = d / 2;
        let jitter = rand::rng().random_range(0..=half.as_millis().max(1) as u64);
        half + Duration::from_millis(jitter)
    }

    /// Failures since the last reset.
    pub fn attempts(&self) -> u32 {
        self.attempt
    }
}

/// The wait after empty peeks: `initial`, doubling per consecutive 204 up to `max`.
#[derive(Debug, Clone)]
pub struct IdleBackoff {
    initial: Duration,
    max: Duration,
    current: Duration,
}

impl IdleBackoff {
    /// An idle wait starting at `initial`.
    pub fn new(initial: Duration, max: Duration) -> Self {
        Self {
            initial,
            max: max.max(initial),
            current: initial,
        }
    }

    /// The wait for this 204, then doubled for the next.
    pub fn next_wait(&mut self) -> Duration {
        let wait = self.current;
        self.current = (self.current * 2).min(self.max);
        wait
    }

    /// Back to `initial` (after a message).
    pub fn reset(&mut self) {
        self.current = self.initial;
    }
}

/// A `Retry-After` value: delay-seconds, or an HTTP date.
pub fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = DateTime::parse_from_rfc2822(value)
        .ok()?
        .with_timezone(&Utc);
    (at - now).to_std().ok().or(Some(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_jitters_and_caps() {
        let mut b = Backoff::new(BackoffConfig {
            initial_ms: 100,
            max_ms: 1_000,
            multiplier: 2.0,
        });
        let waits: Vec<Duration> = (0..8).map(|_| b.next_wait()).collect();
        for (n, w) in waits.iter().enumerate() {
            let nominal = (100u64 << n).min(1_000);
            assert!(
                w.as_millis() as u64 >= nominal / 2 && w.as_millis() as u64 <= nominal + 1,
                "{n}: {w:?}"
            );
        }
        b.reset();
        assert_eq!(b.nominal(), Duration::from_millis(100));
    }

    #[test]
    fn idle_waits_double_up_to_the_max() {
        let mut idle = IdleBackoff::new(Duration::from_millis(10), Duration::from_millis(35));
        let waits: Vec<u128> = (0..4).map(|_| idle.next_wait().as_millis()).collect();
        assert_eq!(waits, vec![10, 20, 35, 35]);
        idle.reset();
        assert_eq!(idle.next_wait().as_millis(), 10);
    }

    #[test]
    fn retry_after_takes_seconds_or_a_date() {
        let now = DateTime::parse_from_rfc3339("2025-11-05T12:00:00Z")
            .expect("t")
            .with_timezone(&Utc);
        assert_eq!(parse_retry_after("7", now), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after("Wed, 05 Nov 2025 12:00:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }
}

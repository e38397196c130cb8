//! One answer to "is this database error worth retrying?", and the backoff
//! between retries (Vector's `RetryLogic`, one place for the sink's policy).
//!
//! Retried: the connection is gone or not yet there (I/O, TLS, pool, the
//! server shutting down or starting up, too many connections), and the
//! transient conflicts PostgreSQL asks clients to retry (serialization
//! failure, deadlock). Everything else (a constraint violated, a value out of
//! range, a missing table) would fail again identically, so it stops the sink
//! with the batch uncommitted and the position unchanged, where an operator
//! sees it (docs/decisions/0062).

use std::time::Duration;

/// Whether retrying the same statements on a new connection may succeed.
pub fn is_retriable(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Protocol(_) => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| is_retriable_sqlstate(&code)),
        _ => false,
    }
}

/// SQLSTATEs that describe a passing condition rather than a bad statement.
pub fn is_retriable_sqlstate(code: &str) -> bool {
    // Class 08: connection exception; 57P01-57P03: admin shutdown, crash
    // shutdown, cannot connect now (starting up); 53300: too many
    // connections; 40001/40P01: serialization failure, deadlock; 55P03: lock
    // not available; 57014: statement cancelled (our own timeout).
    code.starts_with("08")
        || matches!(
            code,
            "57P01" | "57P02" | "57P03" | "53300" | "40001" | "40P01" | "55P03" | "57014"
        )
}

/// Exponential backoff with a cap, reset after a success.
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    next: Duration,
    attempts: u32,
}

impl Backoff {
    /// Starts at `initial`, doubles per failure, never above `max`.
    pub fn new(initial: Duration, max: Duration) -> Self {
        Self {
            initial,
            max: max.max(initial),
            next: initial,
            attempts: 0,
        }
    }

    /// The delay before the next attempt; advances the backoff.
    pub fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * 2).min(self.max);
        self.attempts += 1;
        delay
    }

    /// Failures since the last success.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// Back to the initial delay after a success.
    pub fn reset(&mut self) {
        self.next = self.initial;
        self.attempts = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_problems_are_retried_and_bad_statements_are_not() {
        assert!(is_retriable(&sqlx::Error::Io(std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "refused"
        ))));
        assert!(is_retriable(&sqlx::Error::PoolTimedOut));
        assert!(!is_retriable(&sqlx::Error::RowNotFound));
        assert!(!is_retriable(&sqlx::Error::ColumnNotFound("x".into())));
        for code in [
            "08006", "08001", "57P01", "57P03", "40001", "40P01", "53300",
        ] {
            assert!(is_retriable_sqlstate(code), "{code}");
        }
        for code in ["23505", "22003", "42P01", "42703", "23503"] {
            assert!(!is_retriable_sqlstate(code), "{code}");
        }
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_and_resets() {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_millis(350));
        let delays: Vec<u128> = (0..4).map(|_| backoff.next_delay().as_millis()).collect();
        assert_eq!(delays, vec![100, 200, 350, 350]);
        assert_eq!(backoff.attempts(), 4);
        backoff.reset();
        assert_eq!(backoff.next_delay(), Duration::from_millis(100));
    }
}

//! Number formats shared by every scenario's tables, so a figure reads the same everywhere.

use std::time::Duration;

/// `count` per second of `d`, with thousands separators (`-` for an empty window).
pub fn rate(count: f64, d: Duration) -> String {
    if d.is_zero() {
        return "-".into();
    }
    thousands(count / d.as_secs_f64())
}

/// A whole number with thousands separators, as every table prints counts and rates.
pub fn thousands(x: f64) -> String {
    let n = x.round() as i128;
    let s = n.abs().to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 { format!("-{out}") } else { out }
}

/// Bytes in MiB with one decimal.
pub fn mib(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / (1024.0 * 1024.0))
}

/// Seconds with two decimals.
pub fn secs(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0.0), "0");
        assert_eq!(thousands(999.4), "999");
        assert_eq!(thousands(1_234_567.0), "1,234,567");
        assert_eq!(thousands(-12_345.0), "-12,345");
    }

    #[test]
    fn rates_per_second() {
        assert_eq!(rate(40.0, Duration::from_secs(2)), "20");
        assert_eq!(rate(40.0, Duration::ZERO), "-");
    }
}

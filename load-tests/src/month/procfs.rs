//! What Linux says about a process: CPU time from `/proc/<pid>/stat` (utime + stime) and the
//! peak resident set from `/proc/<pid>/status` (`VmHWM`), and the size of a directory tree.
//! The parsers are pure so that they can be tested on fixed text.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

/// CPU time and memory of one process at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProcSample {
    /// User + system CPU time of the process (all its threads) so far.
    pub cpu: Duration,
    /// Peak resident set size so far (`VmHWM`), bytes.
    pub peak_rss: u64,
    /// Current resident set size (`VmRSS`), bytes.
    pub rss: u64,
}

/// Clock ticks per second of `/proc/<pid>/stat` (`getconf CLK_TCK`; 100 on every Linux this
/// runs on, used when `getconf` is missing).
pub fn clock_ticks() -> u64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .filter(|t| *t > 0)
        .unwrap_or(100)
}

/// utime + stime, in clock ticks, from the text of `/proc/<pid>/stat`. The command name (field
/// 2) is in parentheses and may contain spaces, so fields are counted after the last `)`.
pub fn parse_stat_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state is field 3, so utime (14) and stime (15) are at 11 and 12 here.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// A `kB` field (`VmHWM:   123456 kB`) of `/proc/<pid>/status`, in bytes.
pub fn parse_status_kb(status: &str, field: &str) -> Option<u64> {
    status.lines().find_map(|line| {
        let value = line.strip_prefix(field)?.strip_prefix(':')?;
        let kb: u64 = value.trim().trim_end_matches("kB").trim().parse().ok()?;
        Some(kb * 1024)
    })
}

/// Samples a live process; `None` once it is gone.
pub fn sample(pid: u32, ticks_per_second: u64) -> Option<ProcSample> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let ticks = parse_stat_ticks(&stat)?;
    Some(ProcSample {
        cpu: ticks_to_duration(ticks, ticks_per_second),
        peak_rss: parse_status_kb(&status, "VmHWM").unwrap_or(0),
        rss: parse_status_kb(&status, "VmRSS").unwrap_or(0),
    })
}

/// CPU time so far of every live process whose command name (`/proc/<pid>/comm`) is one of
/// `names`, summed per name: the broker's and PostgreSQL's share of a run, which are not
/// children of the load test. A process that exits takes its CPU time with it, so take
/// samples while the run's connections are still open.
pub fn cpu_by_command(names: &[&str], ticks_per_second: u64) -> BTreeMap<String, Duration> {
    let mut out: BTreeMap<String, Duration> = names
        .iter()
        .map(|n| (n.to_string(), Duration::ZERO))
        .collect();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return out;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(comm) = std::fs::read_to_string(path.join("comm")) else {
            continue;
        };
        let Some(total) = out.get_mut(comm.trim()) else {
            continue;
        };
        if let Some(ticks) = std::fs::read_to_string(path.join("stat"))
            .ok()
            .and_then(|s| parse_stat_ticks(&s))
        {
            *total += ticks_to_duration(ticks, ticks_per_second);
        }
    }
    out
}

/// Clock ticks as a duration.
pub fn ticks_to_duration(ticks: u64, ticks_per_second: u64) -> Duration {
    let per = ticks_per_second.max(1);
    Duration::from_secs(ticks / per) + Duration::from_nanos((ticks % per) * 1_000_000_000 / per)
}

/// Bytes of every regular file under `dir` (0 when it does not exist).
pub fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_bytes(&e.path()),
            Ok(t) if t.is_file() => e.metadata().map_or(0, |m| m.len()),
            _ => 0,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_after_the_command_name() {
        let stat = "4242 (tokio (rt) x) S 1 4242 4242 0 -1 4194560 1234 0 0 0 250 75 0 0 20 0 9 0 123 456789 1000 18446744073709551615";
        assert_eq!(parse_stat_ticks(stat), Some(325));
        assert_eq!(parse_stat_ticks("garbage"), None);
    }

    #[test]
    fn status_kb_fields() {
        let status = "Name:\tx\nVmPeak:\t  900 kB\nVmHWM:\t  204800 kB\nVmRSS:\t  1024 kB\n";
        assert_eq!(parse_status_kb(status, "VmHWM"), Some(204_800 * 1024));
        assert_eq!(parse_status_kb(status, "VmRSS"), Some(1024 * 1024));
        assert_eq!(parse_status_kb(status, "VmSwap"), None);
    }

    #[test]
    fn ticks_convert_exactly() {
        assert_eq!(ticks_to_duration(250, 100), Duration::from_millis(2_500));
        assert_eq!(ticks_to_duration(1, 3), Duration::from_nanos(333_333_333));
    }
}

//! Starting detached service processes and stopping exactly the ones we started.

use std::fs::OpenOptions;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::state::ServiceRecord;

/// Spawns `command` in its own process group with output appended to `log`, so
/// that it outlives the caller (a test binary, `cargo xtask`) and a Ctrl-C in
/// the caller's terminal does not take it down half-way through a write.
pub fn spawn_detached(mut command: Command, log: &Path) -> anyhow::Result<u32> {
    let out = OpenOptions::new().create(true).append(true).open(log)?;
    let err = out.try_clone()?;
    command
        .stdin(Stdio::null())
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err))
        .process_group(0);
    let child = command
        .spawn()
        .map_err(|e| anyhow::anyhow!("cannot start {:?}: {e}", command.get_program()))?;
    // Dropping `Child` neither waits nor kills: the process lives on, reparented to init.
    Ok(child.id())
}

/// Whether the recorded pid is alive *and* still runs what we started.
pub fn is_ours(record: &ServiceRecord) -> bool {
    let cmdline = match std::fs::read(format!("/proc/{}/cmdline", record.pid)) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).replace('\0', " "),
        Err(_) => return false,
    };
    // A zombie has an empty command line: not a service any more.
    !cmdline.is_empty() && cmdline.contains(&record.cmdline_marker)
}

/// Whether `pid` is a process that still runs: its command line empties while it
/// exits, before it becomes a zombie, so `is_ours` turning false is not yet "gone".
pub fn is_running(pid: u32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The state follows the command name in parentheses, which may itself hold spaces.
    match stat.rsplit_once(") ") {
        Some((_, rest)) => !matches!(rest.chars().next(), Some('Z' | 'X') | None),
        None => false,
    }
}

/// Stops the recorded process with SIGTERM, then SIGKILL after a grace period.
/// Returns false when the process was already gone (or the pid is no longer ours).
pub fn stop_recorded(record: &ServiceRecord) -> anyhow::Result<bool> {
    if !is_ours(record) {
        return Ok(false);
    }
    let pid = Pid::from_raw(i32::try_from(record.pid)?);
    let _ = kill(pid, Signal::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if !is_ours(record) {
            return Ok(true);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = kill(pid, Signal::SIGKILL);
    Ok(true)
}

/// Waits until `ready` returns true, failing with `what` and the log path after `timeout`.
pub fn wait_ready(
    what: &str,
    log: &Path,
    timeout: Duration,
    mut ready: impl FnMut() -> bool,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        if ready() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            anyhow::bail!(
                "{what} did not become ready within {}s; see its log at {}",
                timeout.as_secs(),
                log.display()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

//! The state file: which services this stack directory started, under a file lock.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};

use serde::{Deserialize, Serialize};

use crate::StackDir;

/// One process we started: enough to find it again and to prove it is still ours.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ServiceRecord {
    /// Process id at start.
    pub pid: u32,
    /// The TCP port it listens on (127.0.0.1).
    pub port: u16,
    /// A string that must appear in `/proc/<pid>/cmdline` for the pid to count as ours.
    pub cmdline_marker: String,
    /// Service-specific details (storage engine, data directory, URL).
    #[serde(default)]
    pub details: BTreeMap<String, String>,
}

/// Everything the state file holds.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct StackState {
    /// Services by name: `broker`, `postgres`, `registry`.
    pub services: BTreeMap<String, ServiceRecord>,
}

/// Runs `f` with the state loaded and the lock held, then writes the state back.
/// The lock is `flock` on the state file itself, released when the file closes,
/// so a test run killed half-way never leaves a stale lock behind.
pub fn with_locked_state<T>(
    dir: &StackDir,
    f: impl FnOnce(&mut StackState) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    dir.create()?;
    let path = dir.path().join("state.json");
    let mut file: File = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| anyhow::anyhow!("cannot open {}: {e}", path.display()))?;
    file.lock()
        .map_err(|e| anyhow::anyhow!("cannot lock {}: {e}", path.display()))?;
    let mut text = String::new();
    file.read_to_string(&mut text)?;
    let mut state: StackState = if text.trim().is_empty() {
        StackState::default()
    } else {
        serde_json::from_str(&text).unwrap_or_else(|error| {
            tracing::warn!(%error, path = %path.display(), "unreadable stack state; starting afresh");
            StackState::default()
        })
    };
    let result = f(&mut state);
    file.set_len(0)?;
    file.seek(SeekFrom::Start(0))?;
    file.write_all(serde_json::to_string_pretty(&state)?.as_bytes())?;
    file.sync_all()?;
    result
}

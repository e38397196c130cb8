//! The inbound-message log: every bundle exactly as DataHub sent it, compressed, with its
//! MessageId, queue, receive time and SHA-256, so an auditor can see what DataHub sent even
//! though the raw topics hold it split per series (and only for the raw retention).
//!
//! Layout under the configured directory:
//!
//! ```text
//! 2025-11-05/index.jsonl                                   one JSON line per received bundle
//! 2025-11-05/timeseries/T101502.123Z-<MessageId>.json.gz   the bundle's bytes, gzip
//! ```
//!
//! Append-only: files are created with `create_new` and never rewritten; a bundle DataHub
//! delivers twice is logged twice (two receive times). The gzip file and then the index line
//! are written and fsynced (and the directory, when a file is new) before the connector
//! dequeues the message, so a logged dequeue always has its evidence on disk. The log is
//! written concurrently with producing to the broker: both must succeed before the dequeue.
//!
//! Retention: [`InboundLog::prune`] deletes whole receive days older than `retention_days`
//! (0 keeps everything); the connector prunes at start and once a day.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use chrono::{DateTime, NaiveDate, Utc};
use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::{InboundLogConfig, Queue};

/// One logged bundle (a line of `index.jsonl`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboundEntry {
    /// DataHub MessageId.
    pub message_id: String,
    /// The queue it was peeked from.
    pub queue: Queue,
    /// When the connector received it.
    pub received_at: DateTime<Utc>,
    /// Hex SHA-256 of the uncompressed bytes.
    pub sha256: String,
    /// Uncompressed size.
    pub bytes: usize,
    /// Compressed size.
    pub compressed_bytes: usize,
    /// The gzip file, relative to the log directory.
    pub file: String,
}

/// Hex SHA-256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// The log.
#[derive(Debug)]
pub struct InboundLog {
    dir: PathBuf,
    level: u32,
    fsync: bool,
    retention_days: u32,
    index: Mutex<()>,
}

fn sanitize(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(100)
        .collect()
}

fn sync_dir(path: &Path) -> io::Result<()> {
    File::open(path)?.sync_all()
}

impl InboundLog {
    /// Opens (creates) the log directory.
    pub fn open(config: &InboundLogConfig) -> io::Result<Self> {
        fs::create_dir_all(&config.dir)?;
        Ok(Self {
            dir: config.dir.clone(),
            level: config.compression_level.min(9),
            fsync: config.fsync,
            retention_days: config.retention_days,
            index: Mutex::new(()),
        })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn ensure_dir(&self, path: &Path) -> io::Result<()> {
        if path.is_dir() {
            return Ok(());
        }
        fs::create_dir_all(path)?;
        if self.fsync
            && let Some(parent) = path.parent()
        {
            sync_dir(parent)?;
        }
        Ok(())
    }

    /// Writes a bundle and its index line, durably (blocking: call from a blocking thread).
    pub fn append(
        &self,
        queue: Queue,
        message_id: &str,
        received_at: DateTime<Utc>,
        body: &[u8],
    ) -> io::Result<InboundEntry> {
        let day = received_at.format("%Y-%m-%d").to_string();
        let queue_dir = self.dir.join(&day).join(queue.as_str());
        self.ensure_dir(&queue_dir)?;
        let stem = format!(
            "T{}-{}",
            received_at.format("%H%M%S%.3fZ"),
            sanitize(message_id)
        );
        let mut n = 0;
        let (file, path) = loop {
            let name = if n == 0 {
                format!("{stem}.json.gz")
            } else {
                format!("{stem}.{n}.json.gz")
            };
            let path = queue_dir.join(&name);
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(file) => break (file, path),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && n < 1000 => n += 1,
                Err(e) => return Err(e),
            }
        };
        let mut encoder = GzEncoder::new(io::BufWriter::new(file), Compression::new(self.level));
        encoder.write_all(body)?;
        let writer = encoder.finish()?;
        let file = writer.into_inner().map_err(|e| e.into_error())?;
        if self.fsync {
            file.sync_all()?;
            sync_dir(&queue_dir)?;
        }
        let compressed_bytes = usize::try_from(file.metadata()?.len()).unwrap_or(usize::MAX);
        let relative = path
            .strip_prefix(&self.dir)
            .unwrap_or(&path)
            .to_string_lossy()
            .into_owned();
        let entry = InboundEntry {
            message_id: message_id.to_string(),
            queue,
            received_at,
            sha256: sha256_hex(body),
            bytes: body.len(),
            compressed_bytes,
            file: relative,
        };
        let mut line = serde_json::to_vec(&entry).map_err(io::Error::other)?;
        line.push(b'\n');
        let _guard = self.index.lock().unwrap_or_else(|e| e.into_inner());
        let mut index = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(&day).join("index.jsonl"))?;
        index.write_all(&line)?;
        if self.fsync {
            index.sync_all()?;
        }
        Ok(entry)
    }

    /// Every logged bundle, oldest day first.
    pub fn entries(&self) -> io::Result<Vec<InboundEntry>> {
        let mut days: Vec<PathBuf> = fs::read_dir(&self.dir)?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.join("index.jsonl").is_file())
            .collect();
        days.sort();
        let mut out = Vec::new();
        for day in days {
            let text = fs::read_to_string(day.join("index.jsonl"))?;
            for line in text.lines().filter(|l| !l.trim().is_empty()) {
                out.push(serde_json::from_str(line).map_err(io::Error::other)?);
            }
        }
        Ok(out)
    }

    /// The original bytes of a logged bundle, checked against its SHA-256.
    pub fn read(&self, entry: &InboundEntry) -> io::Result<Vec<u8>> {
        let mut decoder = GzDecoder::new(File::open(self.dir.join(&entry.file))?);
        let mut bytes = Vec::with_capacity(entry.bytes);
        decoder.read_to_end(&mut bytes)?;
        if sha256_hex(&bytes) != entry.sha256 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: SHA-256 does not match the index", entry.file),
            ));
        }
        Ok(bytes)
    }

    /// Deletes receive days older than the retention; returns what it deleted.
    pub fn prune(&self, today: NaiveDate) -> io::Result<Vec<PathBuf>> {
        if self.retention_days == 0 {
            return Ok(Vec::new());
        }
        let Some(oldest_kept) =
            today.checked_sub_days(chrono::Days::new(u64::from(self.retention_days)))
        else {
            return Ok(Vec::new());
        };
        let mut deleted = Vec::new();
        for entry in fs::read_dir(&self.dir)?.flatten() {
            let path = entry.path();
            let Some(day) = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| NaiveDate::parse_from_str(n, "%Y-%m-%d").ok())
            else {
                continue;
            };
            if day < oldest_kept && path.is_dir() {
                fs::remove_dir_all(&path)?;
                deleted.push(path);
            }
        }
        Ok(deleted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(dir: &Path, retention_days: u32) -> InboundLog {
        InboundLog::open(&InboundLogConfig {
            dir: dir.to_path_buf(),
            retention_days,
            compression_level: 1,
            fsync: true,
        })
        .expect("open")
    }

    #[test]
    fn bundles_are_kept_exactly_and_twice_when_delivered_twice() {
        let tmp = tempfile::tempdir().expect("tmp");
        let log = log(tmp.path(), 0);
        let body = br#"{"NotifyValidatedMeasureData_MarketDocument": {"mRID": "m/1"}}"#.repeat(100);
        let t = Utc::now();
        let a = log
            .append(Queue::Timeseries, "m/1", t, &body)
            .expect("append");
        let b = log
            .append(Queue::Timeseries, "m/1", t, &body)
            .expect("append again");
        assert_ne!(
            a.file, b.file,
            "append-only: a second delivery is a second file"
        );
        assert!(a.compressed_bytes < body.len() / 5);
        let entries = log.entries().expect("entries");
        assert_eq!(entries, vec![a.clone(), b]);
        assert_eq!(log.read(&a).expect("read"), body);
        // Tampering is detected.
        let path = tmp.path().join(&a.file);
        let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
        gz.write_all(b"something else").expect("write");
        fs::write(&path, gz.finish().expect("gz")).expect("overwrite");
        assert!(log.read(&a).is_err());
    }

    #[test]
    fn prune_deletes_only_days_past_the_retention() {
        let tmp = tempfile::tempdir().expect("tmp");
        let log = log(tmp.path(), 10);
        let day = |s: &str| {
            DateTime::parse_from_rfc3339(s)
                .expect("t")
                .with_timezone(&Utc)
        };
        log.append(Queue::Charges, "old", day("2025-01-01T10:00:00Z"), b"{}")
            .expect("append");
        log.append(Queue::Charges, "new", day("2025-01-20T10:00:00Z"), b"{}")
            .expect("append");
        let deleted = log
            .prune(NaiveDate::from_ymd_opt(2025, 1, 21).expect("date"))
            .expect("prune");
        assert_eq!(deleted.len(), 1);
        let left: Vec<String> = log
            .entries()
            .expect("entries")
            .into_iter()
            .map(|e| e.message_id)
            .collect();
        assert_eq!(left, vec!["new".to_string()]);
    }
}

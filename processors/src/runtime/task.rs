//! A task: one partition number across the processor's co-partitioned input
//! topics, with its own store, its place in each input and its uncommitted
//! batch. The driver (`runner.rs`) owns every task of the instance.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use crate::runtime::checkpoint::PendingItem;
use crate::runtime::global::GlobalOffsets;
use crate::runtime::processor::{GlobalChange, InputRecord};
use crate::runtime::store::{RocksStore, TaskMetadata};

/// Where a task is in its life on this instance.
// One Phase per task, a handful per instance: boxing the large variant saves nothing.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Phase {
    /// Its state is being restored; inputs are not fetched.
    Restoring {
        cancel: Arc<AtomicBool>,
        job: tokio::task::JoinHandle<()>,
        job_id: u64,
        /// Global changes that arrived meanwhile.
        buffered_globals: Vec<GlobalChange>,
    },
    /// It processes.
    Running(Running),
}

/// A running task.
pub(crate) struct Running {
    pub(crate) store: Arc<RocksStore>,
    /// What the store holds (the last committed batch).
    pub(crate) metadata: TaskMetadata,
    /// Per input topic: the next offset expected (after the pending records).
    pub(crate) next_offsets: BTreeMap<String, i64>,
    /// Per input topic: the fetch epoch records must carry to be accepted.
    pub(crate) epochs: BTreeMap<String, u64>,
    /// Per input topic: when a record last arrived (or the partition was (re)started).
    pub(crate) last_progress: BTreeMap<String, Instant>,
    /// Per input topic: when the lag check first saw lag that is still there
    /// (a stall is counted from here or the last progress, whichever is later).
    pub(crate) lag_since: BTreeMap<String, Instant>,
    /// The uncommitted batch.
    pub(crate) pending: Vec<PendingItem>,
    /// Input records in it.
    pub(crate) pending_records: usize,
    /// When its first item arrived.
    pub(crate) first_pending_at: Option<Instant>,
    /// Global offsets seen, including the pending items.
    pub(crate) global_seen: GlobalOffsets,
    /// Per input topic: where the data consumer was last told to fetch from,
    /// until a record proves nothing between there and the next offset was
    /// skipped (see [`Running::admit`]).
    pub(crate) unverified: BTreeMap<String, Rewind>,
    /// Replays this task rewound for and has not yet reported caught up
    /// (decision 0090).
    pub(crate) replays: Vec<crate::runtime::runner::replay::ReplayStep>,
}

/// An input position not yet proven gap-free.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Rewind {
    /// The offset the consumer fetches from.
    pub(crate) from: i64,
    /// How far to step back next time.
    pub(crate) window: i64,
}

/// First step back when a fetch started after the position asked for.
pub(crate) const REWIND_WINDOW: i64 = 500;

impl Rewind {
    /// A fetch starting at `from`.
    pub(crate) fn at(from: i64) -> Self {
        Self {
            from,
            window: REWIND_WINDOW,
        }
    }
}

/// What to do with a record fetched under some epoch.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Admit {
    /// It is the next record: take it.
    Take,
    /// Fetched before the partition's last (re)assignment or seek, already
    /// taken, or not an input of this task.
    Drop,
    /// The first record after a (re)start lies beyond the position asked for:
    /// records may have been skipped (the local broker's memory engine skips
    /// the rest of a batch when a fetch starts inside it). Fetch again from
    /// `from`; records before the next offset are dropped on the way.
    Rewind {
        /// The topic.
        topic: String,
        /// Where to fetch from.
        from: i64,
    },
}

impl Running {
    /// Decides what to do with `record`, fetched under `epoch`.
    ///
    /// After every (re)assignment or seek a position is *unverified* until a
    /// record at or before the next offset arrives (or the fetch started at
    /// 0): only then can a later offset be a legitimate gap (compaction)
    /// rather than records the broker skipped.
    pub(crate) fn admit(&mut self, epoch: u64, record: &InputRecord) -> Admit {
        if self.epochs.get(&record.topic) != Some(&epoch) {
            return Admit::Drop;
        }
        let next = self.next_offsets.get(&record.topic).copied().unwrap_or(0);
        if let Some(rewind) = self.unverified.get(&record.topic).copied() {
            if record.offset <= next || rewind.from <= 0 {
                self.unverified.remove(&record.topic);
            } else {
                let from = (rewind.from - rewind.window).max(0);
                self.unverified.insert(
                    record.topic.clone(),
                    Rewind {
                        from,
                        window: rewind.window.saturating_mul(10),
                    },
                );
                return Admit::Rewind {
                    topic: record.topic.clone(),
                    from,
                };
            }
        }
        if record.offset < next {
            return Admit::Drop;
        }
        Admit::Take
    }

    /// Adds an accepted record to the batch.
    pub(crate) fn push_record(&mut self, record: InputRecord, now: Instant) {
        self.next_offsets
            .insert(record.topic.clone(), record.offset + 1);
        self.last_progress.insert(record.topic.clone(), now);
        self.pending_records += 1;
        self.first_pending_at.get_or_insert(now);
        self.pending.push(PendingItem::Record(record));
    }

    /// Adds a global-table change to the batch (the topic is the table's).
    pub(crate) fn push_global(&mut self, topic: &str, change: GlobalChange, now: Instant) {
        let seen = self
            .global_seen
            .entry(topic.to_string())
            .or_default()
            .entry(change.partition)
            .or_insert(-1);
        *seen = (*seen).max(change.offset);
        self.first_pending_at.get_or_insert(now);
        self.pending.push(PendingItem::Global(change));
    }

    /// Takes the `lag` the lag check measured for `topic` at `now` and says
    /// whether the partition is stalled: it has had lag, and no progress, for
    /// `patience`, counted from when the lag was first seen or the last
    /// progress, whichever is later. A quiet period before the lag existed
    /// does not count: a record appended to a partition that was quiet for an
    /// hour is not a stall at the first check that sees it.
    pub(crate) fn observe_lag(
        &mut self,
        topic: &str,
        lag: i64,
        now: Instant,
        patience: Duration,
    ) -> bool {
        if lag <= 0 {
            self.lag_since.remove(topic);
            return false;
        }
        let lag_since = *self.lag_since.entry(topic.to_string()).or_insert(now);
        let quiet_since = self
            .last_progress
            .get(topic)
            .map_or(lag_since, |at| (*at).max(lag_since));
        now.saturating_duration_since(quiet_since) >= patience
    }

    /// The input offsets the batch ends at.
    pub(crate) fn offsets_after(&self) -> BTreeMap<String, i64> {
        let mut offsets = self.metadata.committed.input_offsets.clone();
        offsets.extend(self.next_offsets.iter().map(|(t, o)| (t.clone(), *o)));
        offsets
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::store::StateMemory;

    fn record(topic: &str, offset: i64) -> InputRecord {
        InputRecord {
            topic: topic.to_string(),
            partition: 0,
            offset,
            timestamp: None,
            key: None,
            value: None,
            headers: Vec::new(),
        }
    }

    fn make_running(next: &[(&str, i64)], epoch: u64) -> (tempfile::TempDir, Running) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = RocksStore::open(dir.path(), &[], &StateMemory::new(8)).expect("open");
        let running = Running {
            store: Arc::new(store),
            metadata: TaskMetadata::fresh(),
            next_offsets: next.iter().map(|(t, o)| (t.to_string(), *o)).collect(),
            epochs: next.iter().map(|(t, _)| (t.to_string(), epoch)).collect(),
            last_progress: BTreeMap::new(),
            lag_since: BTreeMap::new(),
            pending: Vec::new(),
            pending_records: 0,
            first_pending_at: None,
            global_seen: GlobalOffsets::new(),
            unverified: BTreeMap::new(),
            replays: Vec::new(),
        };
        (dir, running)
    }

    #[test]
    fn records_from_an_old_fetch_or_already_taken_are_dropped() {
        let (_dir, mut running) = make_running(&[("a", 10), ("b", 0)], 3);
        assert_eq!(
            running.admit(2, &record("a", 10)),
            Admit::Drop,
            "stale epoch"
        );
        assert_eq!(running.admit(3, &record("a", 9)), Admit::Drop, "behind");
        assert_eq!(
            running.admit(3, &record("c", 9)),
            Admit::Drop,
            "not an input"
        );
        assert_eq!(running.admit(3, &record("a", 10)), Admit::Take);
        // Once verified, gaps are legitimate (compaction): a later offset is taken.
        assert_eq!(running.admit(3, &record("a", 12)), Admit::Take);
        running.push_record(record("a", 12), Instant::now());
        assert_eq!(running.admit(3, &record("a", 12)), Admit::Drop);
        assert_eq!(
            running.offsets_after(),
            BTreeMap::from([("a".to_string(), 13), ("b".to_string(), 0)])
        );
        assert_eq!(running.pending_records, 1);
    }

    #[test]
    fn a_stall_is_lag_without_progress_for_the_patience_counted_from_when_the_lag_appeared() {
        let (_dir, mut running) = make_running(&[("a", 10)], 1);
        let patience = Duration::from_secs(5);
        let start = Instant::now();
        let at = |s: u64| start + Duration::from_secs(s);
        // Quiet for a long time before the record arrives: not a stall yet.
        running.last_progress.insert("a".to_string(), start);
        assert!(!running.observe_lag("a", 0, at(600), patience));
        assert!(
            !running.observe_lag("a", 1, at(601), patience),
            "lag just appeared"
        );
        assert!(!running.observe_lag("a", 1, at(605), patience));
        assert!(
            running.observe_lag("a", 1, at(606), patience),
            "5 s of lag, no progress"
        );
        // Progress restarts the clock; lag gone forgets it.
        running.last_progress.insert("a".to_string(), at(606));
        assert!(!running.observe_lag("a", 3, at(610), patience));
        assert!(running.observe_lag("a", 3, at(611), patience));
        assert!(!running.observe_lag("a", 0, at(612), patience));
        assert!(
            !running.observe_lag("a", 1, at(620), patience),
            "a new lag, a new clock"
        );
    }

    #[test]
    fn a_fetch_that_starts_after_the_position_is_rewound_until_proven_gap_free() {
        let (_dir, mut running) = make_running(&[("a", 1000)], 1);
        running.unverified.insert("a".to_string(), Rewind::at(1000));
        // The broker skipped the rest of a batch: the first record is 1042.
        assert_eq!(
            running.admit(1, &record("a", 1042)),
            Admit::Rewind {
                topic: "a".to_string(),
                from: 500
            }
        );
        // Still after the position: step back further, down to 0 at most.
        assert_eq!(
            running.admit(1, &record("a", 1042)),
            Admit::Rewind {
                topic: "a".to_string(),
                from: 0
            }
        );
        // A record before the position proves the fetch covers it; it is dropped.
        assert_eq!(running.admit(1, &record("a", 700)), Admit::Drop);
        assert!(running.unverified.is_empty());
        assert_eq!(running.admit(1, &record("a", 1000)), Admit::Take);

        // A fetch from 0 cannot have skipped anything before its first record.
        let (_dir, mut fresh) = make_running(&[("a", 0)], 1);
        fresh.unverified.insert("a".to_string(), Rewind::at(0));
        assert_eq!(fresh.admit(1, &record("a", 5)), Admit::Take);
    }
}

//! The restore planner on hand-written changelogs, and a randomized
//! simulation of the whole commit protocol (batches, crashes at every step,
//! restores with reverts, reuse of a crashed batch's number) checking that a
//! replay always yields exactly the committed state.
#![allow(clippy::needless_range_loop)] // store numbers index several parallel tables

use std::collections::BTreeMap;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::*;

type Log = Vec<(i64, ChangelogEntry)>;
type State = BTreeMap<Vec<u8>, Vec<u8>>;

fn data(seq: u64, key: &str, value: Option<&str>) -> ChangelogEntry {
    ChangelogEntry::Data {
        seq,
        key: key.as_bytes().to_vec(),
        value: value.map(|v| v.as_bytes().to_vec()),
    }
}

fn marker(seq: u64, offset: i64) -> ChangelogEntry {
    ChangelogEntry::Commit(Marker {
        seq,
        input_offsets: BTreeMap::from([("in".to_string(), offset)]),
        global_seen: BTreeMap::new(),
    })
}

fn log(entries: Vec<ChangelogEntry>) -> Log {
    entries
        .into_iter()
        .enumerate()
        .map(|(i, e)| (i as i64, e))
        .collect()
}

fn apply(state: &mut State, writes: &[StoreWrite]) {
    for write in writes {
        match &write.value {
            Some(value) => {
                state.insert(write.key.clone(), value.clone());
            }
            None => {
                state.remove(&write.key);
            }
        }
    }
}

fn state(pairs: &[(&str, &str)]) -> State {
    pairs
        .iter()
        .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
        .collect()
}

/// Replays `logs` (one per store) from scratch: the state per store, the
/// committed marker and what was discarded.
fn replay(logs: &[Log]) -> (Vec<State>, Marker, Vec<StoreFinish>) {
    let mut replays: Vec<StoreReplay> = (0..logs.len())
        .map(|i| StoreReplay::new(i, StoreProgress::default()))
        .collect();
    let mut states = vec![State::new(); logs.len()];
    for (i, entries) in logs.iter().enumerate() {
        for (offset, entry) in entries {
            replays[i].on_record(*offset, entry.clone());
            apply(&mut states[i], &replays[i].take_released());
        }
    }
    let committed = decide(&Marker::default(), &replays);
    let mut finishes = Vec::new();
    for (i, replay) in replays.iter_mut().enumerate() {
        let mut finish = replay.finish(committed.seq);
        apply(&mut states[i], &std::mem::take(&mut finish.writes));
        finishes.push(finish);
    }
    (states, committed, finishes)
}

#[test]
fn a_trailing_partial_batch_is_discarded() {
    let logs = vec![log(vec![
        data(1, "a", Some("1")),
        data(1, "seen:m1", Some("")),
        marker(1, 5),
        data(2, "a", Some("2")),
        data(2, "seen:m2", Some("")),
    ])];
    let (states, committed, finishes) = replay(&logs);
    assert_eq!(committed.seq, 1);
    assert_eq!(
        committed.input_offsets["in"], 5,
        "inputs resume after batch 1"
    );
    assert_eq!(
        states[0],
        state(&[("a", "1"), ("seen:m1", "")]),
        "batch 2's 'seen' must not survive: its message is re-processed"
    );
    assert_eq!(finishes[0].discarded, 2);
    assert_eq!(finishes[0].discarded_keys.len(), 2);
}

#[test]
fn one_marker_in_any_store_commits_the_batch() {
    // Batch 2 wrote both stores; only store 0's marker was delivered before
    // the crash. Markers follow all of a batch's records, so the batch is whole.
    let logs = vec![
        log(vec![
            data(1, "a", Some("1")),
            marker(1, 3),
            data(2, "a", Some("2")),
            marker(2, 7),
        ]),
        log(vec![
            data(1, "b", Some("1")),
            marker(1, 3),
            data(2, "b", Some("2")),
        ]),
    ];
    let (states, committed, finishes) = replay(&logs);
    assert_eq!(committed.seq, 2);
    assert_eq!(committed.input_offsets["in"], 7);
    assert_eq!(states[0], state(&[("a", "2")]));
    assert_eq!(states[1], state(&[("b", "2")]));
    assert!(finishes.iter().all(|f| f.discarded == 0));
}

#[test]
fn reverts_after_a_discarded_attempt_win_over_it_in_a_later_replay() {
    // Attempt 1 of batch 2 crashed after writing x and y; the restore reverted
    // both (tagged with batch 1); batch 2 was then redone, writing only x.
    let logs = vec![log(vec![
        data(1, "x", Some("committed")),
        marker(1, 1),
        data(2, "x", Some("stale")),
        data(2, "y", Some("stale")),
        data(1, "x", Some("committed")),
        data(1, "y", None),
        data(2, "x", Some("new")),
        marker(2, 2),
    ])];
    let (states, committed, finishes) = replay(&logs);
    assert_eq!(committed.seq, 2);
    assert_eq!(states[0], state(&[("x", "new")]), "y never committed");
    assert_eq!(finishes[0].discarded, 0);
}

#[test]
fn held_records_wait_for_a_marker_and_stay_in_log_order() {
    let mut replay = StoreReplay::new(0, StoreProgress::default());
    replay.on_record(0, data(1, "a", Some("1")));
    assert!(replay.take_released().is_empty(), "no marker yet");
    assert_eq!(
        replay.progress().next_offset,
        Some(0),
        "restart at the first held record"
    );
    replay.on_record(1, marker(1, 1));
    assert_eq!(replay.take_released().len(), 1);
    assert_eq!(replay.progress().next_offset, Some(2));
    replay.on_record(2, data(2, "a", Some("2")));
    replay.on_record(3, ChangelogEntry::Foreign("not ours".to_string()));
    assert_eq!(replay.foreign, 1);
    assert_eq!(replay.progress().next_offset, Some(2));
}

#[test]
fn with_no_marker_anywhere_the_local_metadata_decides() {
    let local = Marker {
        seq: 5,
        ..Marker::default()
    };
    let replays = vec![StoreReplay::new(0, StoreProgress::default())];
    assert_eq!(decide(&local, &replays).seq, 5);
    assert_eq!(decide(&Marker::default(), &replays).seq, 0);
}

/// The writer side of the protocol, simulated over in-memory logs.
struct Simulation {
    logs: Vec<Log>,
    committed: Vec<State>,
    seq: u64,
    rng: StdRng,
}

impl Simulation {
    fn append(&mut self, store: usize, entry: ChangelogEntry) {
        let offset = self.logs[store].len() as i64;
        self.logs[store].push((offset, entry));
    }

    /// One batch attempt; returns whether it crashed.
    fn batch(&mut self) -> bool {
        let seq = self.seq + 1;
        let stores = self.logs.len();
        let mut writes: Vec<(usize, String, Option<String>)> = Vec::new();
        for _ in 0..self.rng.random_range(0..6) {
            let store = self.rng.random_range(0..stores);
            let key = format!("k{}", self.rng.random_range(0..6));
            let value = if self.rng.random_bool(0.2) {
                None
            } else {
                Some(format!("{seq}-{}", self.rng.random_range(0..100)))
            };
            // The write buffer keeps the last write per key.
            writes.retain(|(s, k, _)| !(*s == store && *k == key));
            writes.push((store, key, value));
        }
        // 0: clean; 1: crash mid-data; 2: crash after data, before any
        // marker; 3: crash after some markers; 4: crash after all markers.
        let crash = self.rng.random_range(0..5);
        let written = match crash {
            1 => self.rng.random_range(0..=writes.len()),
            _ => writes.len(),
        };
        for (store, key, value) in &writes[..written] {
            self.append(*store, data(seq, key, value.as_deref()));
        }
        let markers = match crash {
            1 | 2 => 0,
            3 => self.rng.random_range(1..=stores),
            _ => stores,
        };
        let mut order: Vec<usize> = (0..stores).collect();
        order.rotate_left(self.rng.random_range(0..stores));
        for store in order.into_iter().take(markers) {
            self.append(store, marker(seq, seq as i64 * 10));
        }
        if markers > 0 {
            // Committed: a marker proves all records were delivered.
            for (store, key, value) in writes {
                let target = &mut self.committed[store];
                match value {
                    Some(v) => {
                        target.insert(key.into_bytes(), v.into_bytes());
                    }
                    None => {
                        target.remove(key.as_bytes());
                    }
                }
            }
            self.seq = seq;
        }
        crash != 0
    }

    /// A restore as the runtime does it: replay from scratch, check the
    /// state, append reverts for what was discarded.
    fn restore(&mut self) {
        let (states, committed, finishes) = replay(&self.logs);
        assert_eq!(
            committed.seq, self.seq,
            "the restore must find the last committed batch"
        );
        assert_eq!(
            states, self.committed,
            "restored state differs from the committed state"
        );
        for (store, finish) in finishes.iter().enumerate() {
            for key in &finish.discarded_keys {
                let value = states[store]
                    .get(key)
                    .map(|v| String::from_utf8_lossy(v).into_owned());
                let key = String::from_utf8_lossy(key).into_owned();
                self.append(store, data(committed.seq, &key, value.as_deref()));
            }
        }
    }
}

#[test]
fn replays_always_yield_exactly_the_committed_state() {
    for seed in 0..200u64 {
        let mut sim = Simulation {
            logs: vec![Vec::new(), Vec::new()],
            committed: vec![State::new(), State::new()],
            seq: 0,
            rng: StdRng::seed_from_u64(seed),
        };
        for _ in 0..40 {
            if sim.batch() {
                sim.restore();
            }
        }
        sim.restore();

        // A restore interrupted at any point and resumed from the stored
        // progress ends in the same state as one in a single pass.
        let (expected, _, _) = replay(&sim.logs);
        for store in 0..sim.logs.len() {
            let entries = &sim.logs[store];
            let cut = sim.rng.random_range(0..=entries.len());
            let mut first = StoreReplay::new(store, StoreProgress::default());
            let mut applied = State::new();
            for (offset, entry) in &entries[..cut] {
                first.on_record(*offset, entry.clone());
            }
            apply(&mut applied, &first.take_released());
            let progress = first.progress();
            let mut second = StoreReplay::new(store, progress.clone());
            let start = progress.next_offset.unwrap_or(0) as usize;
            for (offset, entry) in &entries[start..] {
                second.on_record(*offset, entry.clone());
            }
            apply(&mut applied, &second.take_released());
            let committed = second.max_marker().map_or(0, |m| m.seq).max(sim.seq);
            let finish = second.finish(committed);
            apply(&mut applied, &finish.writes);
            assert_eq!(
                applied, expected[store],
                "seed {seed}, store {store}, cut at {cut}"
            );
        }
    }
}

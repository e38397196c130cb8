//! The driver's replay room (decision 0090): a replay request arrives as a
//! change of the runtime-internal request table; the task that owns a listed
//! partition moves its inputs back to the request's start offsets (a seek
//! under a new epoch, the position unproven until a record proves it, as after
//! any seek) and queues the processor's recompute in its batch, so the rewound
//! positions, the rebuilt state, the new versions and the report commit
//! together. Once the task's committed positions reach the request's end
//! offsets it reports `caught-up`.

use std::collections::BTreeSet;

use chrono::Utc;

use super::*;
use crate::replay::{
    REQUESTS_TABLE, ReplayOutcome, ReplayReport, ReplayRequest, ReplayScope, ReportKind,
    TopicOffsets,
};
use crate::runtime::processor::OutputRecord;

/// How old a request may be for a restored task to wait for its end again
/// (older runs were followed to their end or given up long ago).
const REOPEN_WITHIN: chrono::Duration = chrono::Duration::days(1);

/// One task's part of a replay, carried through its batch.
#[derive(Debug, Clone)]
pub(crate) struct ReplayStep {
    /// What the processor recomputes.
    pub(crate) scope: ReplayScope,
    processor: String,
    task: i32,
    results_topic: String,
    /// The task's positions the report names.
    positions: TopicOffsets,
    /// Where the task's replay ends.
    end: TopicOffsets,
}

impl ReplayStep {
    /// The report record: `applied` with `outcome`, `caught-up` without.
    pub(crate) fn report(&self, outcome: Option<ReplayOutcome>) -> OutputRecord {
        let report = ReplayReport {
            run_id: self.scope.run_id.clone(),
            processor: self.processor.clone(),
            task: self.task,
            kind: if outcome.is_some() {
                ReportKind::Applied
            } else {
                ReportKind::CaughtUp
            },
            outcome,
            positions: self.positions.clone(),
        };
        let key = report.key();
        OutputRecord {
            topic: self.results_topic.clone(),
            key: key.clone().into_bytes(),
            // A report is plain data; serialising it cannot fail.
            value: Some(serde_json::to_vec(&report).unwrap_or_default()),
            partition: Some(0),
            headers: Vec::new(),
            idempotency_key: key,
        }
    }

    /// Whether `committed` positions reached the end.
    fn reached(&self, committed: &BTreeMap<String, i64>) -> bool {
        self.end
            .iter()
            .all(|(topic, end)| committed.get(topic).is_some_and(|c| c >= end))
    }
}

/// What the driver needs to act on replay requests.
pub(crate) struct ReplayControl {
    pub(crate) processor: String,
    pub(crate) inputs: Vec<String>,
    pub(crate) results_topic: String,
}

impl ReplayControl {
    /// Hands a global change to a running task: a replay request is acted on
    /// here; any other change goes to the processor in the task's batch.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn deliver(
        &self,
        running: &mut Running,
        task: i32,
        topic: &str,
        change: GlobalChange,
        now: Instant,
        next_epoch: &mut u64,
        data: &DataConsumer,
    ) {
        if change.table != REQUESTS_TABLE {
            running.push_global(topic, change, now);
            return;
        }
        // Seen by this task whatever it says: committed with the next batch.
        let seen = running
            .global_seen
            .entry(topic.to_string())
            .or_default()
            .entry(change.partition)
            .or_insert(-1);
        *seen = (*seen).max(change.offset);
        let Some(value) = &change.value else {
            return;
        };
        let request: ReplayRequest = match serde_json::from_slice(value) {
            Ok(request) => request,
            Err(error) => {
                tracing::warn!(%error, offset = change.offset, "ignoring an unreadable replay request");
                return;
            }
        };
        self.act(running, task, &request, now, next_epoch, data);
    }

    /// Acts on `request` if it concerns this processor's `task`: rewinds its inputs to the
    /// request's start (unless a dry run) and queues the recompute in its batch.
    fn act(
        &self,
        running: &mut Running,
        task: i32,
        request: &ReplayRequest,
        now: Instant,
        next_epoch: &mut u64,
        data: &DataConsumer,
    ) {
        if !request.concerns(&self.processor, task) {
            return;
        }
        let start = request.start.get(&task).cloned().unwrap_or_default();
        if !request.dry_run {
            // Rewind (below) and wait for the end in memory: `reopen` brings the
            // wait back after a restart.
            for input in &self.inputs {
                let Some(&from) = start.get(input) else {
                    continue;
                };
                let next = running.next_offsets.get(input).copied().unwrap_or(0);
                if from >= next {
                    continue;
                }
                *next_epoch += 1;
                running.next_offsets.insert(input.clone(), from);
                running.epochs.insert(input.clone(), *next_epoch);
                running.unverified.insert(input.clone(), Rewind::at(from));
                running.last_progress.insert(input.clone(), now);
                running.lag_since.remove(input);
                data.command(DataCommand::Seek {
                    topic: input.clone(),
                    partition: task,
                    offset: from,
                    epoch: *next_epoch,
                });
            }
        }
        let step = self.step(request, task, running.offsets_after());
        tracing::info!(run = %request.run_id, task, dry_run = request.dry_run, positions = ?step.positions, "replay: inputs rewound, recomputing");
        running.first_pending_at.get_or_insert(now);
        running.pending.push(PendingItem::Replay(step.clone()));
        if !request.dry_run {
            running.replays.push(step);
        }
    }

    fn step(&self, request: &ReplayRequest, task: i32, positions: TopicOffsets) -> ReplayStep {
        ReplayStep {
            scope: ReplayScope {
                run_id: request.run_id.clone(),
                from: request.recompute_from,
                to: request.recompute_to,
                dry_run: request.dry_run,
            },
            processor: self.processor.clone(),
            task,
            results_topic: self.results_topic.clone(),
            positions,
            end: request.end.get(&task).cloned().unwrap_or_default(),
        }
    }

    /// After a restore: which replays a task waits to report `caught-up` for
    /// lives in memory, so a task restored after a crash (or moved to another
    /// instance) waits again for every recent request of its own that it acted
    /// on, i.e. every one not handed to it again (`delivered`). One whose end it
    /// reported before reports again under the same key, which the CLI and the
    /// topic's readers take once.
    pub(crate) fn reopen(
        &self,
        running: &mut Running,
        task: i32,
        requests: &[(Vec<u8>, Vec<u8>)],
        delivered: &BTreeSet<Vec<u8>>,
    ) {
        let recent = Utc::now() - REOPEN_WITHIN;
        for (key, value) in requests {
            if delivered.contains(key) {
                continue;
            }
            let Ok(request) = serde_json::from_slice::<ReplayRequest>(value) else {
                continue;
            };
            if request.dry_run
                || !request.concerns(&self.processor, task)
                || request.requested_at < recent
                || running
                    .replays
                    .iter()
                    .any(|s| s.scope.run_id == request.run_id)
            {
                continue;
            }
            tracing::info!(run = %request.run_id, task, "replay: waiting again for the end of a run acted on before the restart");
            running
                .replays
                .push(self.step(&request, task, running.offsets_after()));
        }
    }

    /// A task's first start (no state committed yet) takes the request table as it finds it
    /// (`requests`: everything up to the offsets the restore read), so a request published
    /// before or while it restored is no change it is handed: it acts here on every recent one
    /// that concerns it, as it would have had it been running. Changes after that snapshot
    /// are delivered as usual. Acting twice is harmless (a rewind and a recompute commit with
    /// the batch), so a task that acted before its first commit and crashed acts again.
    pub(crate) fn first_start(
        &self,
        running: &mut Running,
        task: i32,
        requests: &[(Vec<u8>, Vec<u8>)],
        now: Instant,
        next_epoch: &mut u64,
        data: &DataConsumer,
    ) {
        let recent = Utc::now() - REOPEN_WITHIN;
        for (_, value) in requests {
            let Ok(request) = serde_json::from_slice::<ReplayRequest>(value) else {
                continue;
            };
            if request.requested_at < recent {
                continue;
            }
            tracing::info!(run = %request.run_id, task, "replay: acting on a request published before the task's first start");
            self.act(running, task, &request, now, next_epoch, data);
        }
    }

    /// After a commit: queues a `caught-up` report for each of the task's
    /// replays whose end its committed positions reached.
    pub(crate) fn check_caught_up(running: &mut Running, now: Instant) {
        if running.replays.is_empty() {
            return;
        }
        let committed = running.metadata.committed.input_offsets.clone();
        let (done, open): (Vec<ReplayStep>, Vec<ReplayStep>) = std::mem::take(&mut running.replays)
            .into_iter()
            .partition(|step| step.reached(&committed));
        running.replays = open;
        for mut step in done {
            step.positions = committed.clone();
            running.first_pending_at.get_or_insert(now);
            running.pending.push(PendingItem::ReplayCaughtUp(step));
        }
    }
}

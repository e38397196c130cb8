//! The driver's restore room: a task assigned to this instance restores its
//! state from its changelog on a blocking thread (at most `PARALLEL_RESTORES`
//! at once), and starts running when the restore reports back.

use std::collections::BTreeSet;

use super::*;

impl<P: Processor> Driver<P> {
    pub(super) fn start_restore(&mut self, task: i32) {
        // A task that starts (again) gets a fresh instance: its caches saw nothing.
        self.processors.forget(task);
        self.next_job += 1;
        let job_id = self.next_job;
        let cancel = Arc::new(AtomicBool::new(false));
        let setup = self.restore_setup.clone();
        let slots = self.restore_slots.clone();
        let tx = self.restore_tx.clone();
        let job_cancel = cancel.clone();
        let job = tokio::spawn(async move {
            let result = match slots.acquire_owned().await {
                Ok(_permit) if job_cancel.load(Ordering::SeqCst) => Ok(None),
                Ok(_permit) => recovery::restore_task(setup, task, job_cancel).await,
                Err(_) => Ok(None),
            };
            let _ = tx.send(RestoreOutcome {
                task,
                job_id,
                result,
            });
        });
        self.tasks.insert(
            task,
            TaskState {
                phase: Phase::Restoring {
                    cancel,
                    job,
                    job_id,
                    buffered_globals: Vec::new(),
                },
            },
        );
    }

    pub(super) async fn on_restored(
        &mut self,
        outcome: RestoreOutcome,
    ) -> Result<(), RuntimeError> {
        let RestoreOutcome {
            task,
            job_id,
            result,
        } = outcome;
        let Some(state) = self.tasks.get_mut(&task) else {
            return Ok(());
        };
        let buffered = match &mut state.phase {
            Phase::Restoring {
                job_id: current,
                buffered_globals,
                ..
            } if *current == job_id => std::mem::take(buffered_globals),
            _ => return Ok(()),
        };
        let Some(restored) = result? else {
            return Ok(());
        };

        // Where each input resumes: the offsets stored with the state.
        let committed = restored.metadata.committed.clone();
        let mut offsets: BTreeMap<String, i64> = committed.input_offsets.clone();
        let missing: Vec<String> = self
            .inputs
            .iter()
            .filter(|t| !offsets.contains_key(*t))
            .cloned()
            .collect();
        if !missing.is_empty() {
            let group = self.group.clone();
            let data = self.data.consumer().clone();
            let stateless_fallback = self.stateless && committed.seq == 0;
            let start_from = self.config.start_from;
            let resolved = tokio::task::spawn_blocking(move || {
                resolve_start(
                    &group,
                    &data,
                    &missing,
                    task,
                    stateless_fallback,
                    start_from,
                )
            })
            .await
            .map_err(|e| RuntimeError::Internal(e.to_string()))??;
            offsets.extend(resolved);
        }
        self.next_epoch += 1;
        let epoch = self.next_epoch;
        let now = Instant::now();
        let mut running = Running {
            store: restored.store,
            metadata: restored.metadata,
            next_offsets: offsets.clone(),
            epochs: self.inputs.iter().map(|t| (t.clone(), epoch)).collect(),
            last_progress: self.inputs.iter().map(|t| (t.clone(), now)).collect(),
            lag_since: BTreeMap::new(),
            pending: Vec::new(),
            pending_records: 0,
            first_pending_at: None,
            global_seen: if committed.seq == 0 {
                restored.global_offsets.clone()
            } else {
                committed.global_seen.clone()
            },
            unverified: offsets
                .iter()
                .map(|(t, o)| (t.clone(), Rewind::at(*o)))
                .collect(),
            replays: Vec::new(),
        };
        // Requests handed to the task again act anew; the others it acted on
        // before are waited for again (decision 0090).
        let again: BTreeSet<Vec<u8>> = restored
            .global_changes
            .iter()
            .chain(buffered.iter())
            .filter(|c| c.table == crate::replay::REQUESTS_TABLE)
            .map(|c| c.key.clone())
            .collect();
        if committed.seq > 0
            && let Some(globals) = &self.restore_setup.globals
        {
            let requests = globals.scan_prefix(crate::replay::REQUESTS_TABLE, b"")?;
            self.replay.reopen(&mut running, task, &requests, &again);
            // A task killed after its re-read committed but before its report
            // did stands at the end already: report now, not after a commit
            // that an idle task may not make soon.
            ReplayControl::check_caught_up(&mut running, now);
        } else if let Some(globals) = &self.restore_setup.globals {
            let requests = globals.scan_prefix(crate::replay::REQUESTS_TABLE, b"")?;
            self.replay.first_start(
                &mut running,
                task,
                &requests,
                now,
                &mut self.next_epoch,
                &self.data,
            );
        }
        for change in restored.global_changes {
            if let Some(topic) = self.table_topics.get(&change.table).cloned() {
                self.replay.deliver(
                    &mut running,
                    task,
                    &topic,
                    change,
                    now,
                    &mut self.next_epoch,
                    &self.data,
                );
            }
        }
        for change in buffered {
            let Some(topic) = self.table_topics.get(&change.table).cloned() else {
                continue;
            };
            let covered = restored
                .global_offsets
                .get(&topic)
                .and_then(|p| p.get(&change.partition))
                .is_some_and(|last| change.offset <= *last);
            if !covered {
                self.replay.deliver(
                    &mut running,
                    task,
                    &topic,
                    change,
                    now,
                    &mut self.next_epoch,
                    &self.data,
                );
            }
        }
        // A replay request among the changes may have moved positions back
        // (decision 0090): fetch from where the task now stands, one epoch.
        let offsets: BTreeMap<String, i64> = self
            .inputs
            .iter()
            .map(|t| {
                (
                    t.clone(),
                    running.next_offsets.get(t).copied().unwrap_or(offsets[t]),
                )
            })
            .collect();
        let epoch = if running.epochs.values().all(|e| *e == epoch) {
            epoch
        } else {
            self.next_epoch += 1;
            for (t, o) in &offsets {
                running.epochs.insert(t.clone(), self.next_epoch);
                running.unverified.insert(t.clone(), Rewind::at(*o));
            }
            self.next_epoch
        };
        self.data.command(DataCommand::Assign {
            partitions: self
                .inputs
                .iter()
                .map(|t| (t.clone(), task, Offset::Offset(offsets[t])))
                .collect(),
            epoch,
        });
        self.events.emit(RuntimeEvent::TaskRunning {
            task,
            input_offsets: offsets,
        });
        state.phase = Phase::Running(running);
        self.update_readiness();
        Ok(())
    }
}

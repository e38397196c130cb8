//! The driver's commit room: a checkpoint round takes the pending records of
//! every running task as one batch each, processes and commits them (state,
//! input offsets and outputs together), then mirrors the offsets to the group
//! for lag tools.

use super::*;

impl<P: Processor> Driver<P> {
    pub(super) async fn commit_round(&mut self) -> Result<(), RuntimeError> {
        let mut batches = Vec::new();
        for (task, state) in &mut self.tasks {
            let Phase::Running(running) = &mut state.phase else {
                continue;
            };
            if running.pending.is_empty() {
                continue;
            }
            batches.push(TaskBatch {
                task: *task,
                store: running.store.clone() as Arc<dyn Store>,
                metadata: running.metadata.clone(),
                items: std::mem::take(&mut running.pending),
                input_offsets_after: running.offsets_after(),
                global_seen_after: running.global_seen.clone(),
            });
            running.pending_records = 0;
            running.first_pending_at = None;
        }
        self.pending_total = 0;
        if batches.is_empty() {
            return Ok(());
        }
        let now = self.clock.now();
        let results = self
            .checkpointer
            .run(&mut self.processors, batches, now)
            .await?;
        let mut commit = TopicPartitionList::new();
        for result in results {
            let Some(TaskState {
                phase: Phase::Running(running),
            }) = self.tasks.get_mut(&result.task)
            else {
                continue;
            };
            if result.committed {
                running.metadata = result.metadata;
                ReplayControl::check_caught_up(running, Instant::now());
                for (topic, offset) in &running.metadata.committed.input_offsets {
                    commit.add_partition_offset(topic, result.task, Offset::Offset(*offset))?;
                }
            }
        }
        if self.config.commit_group_offsets && commit.count() > 0 {
            // For lag monitoring only; asynchronous, never read back.
            if let Err(error) = self.group.commit(&commit, CommitMode::Async) {
                tracing::debug!(%error, "committing group offsets for monitoring failed");
            }
        }
        Ok(())
    }
}

//! The processor instances of a process, and how a checkpoint round processes
//! its tasks' batches with them (decision 0153).
//!
//! A processor that can make an instance per task ([`Processor::task_instance`])
//! gets one for each running task, like a Kafka Streams task's own processor:
//! its caches only ever see that task's records and global changes, and the
//! tasks of a round are processed on up to `processing_threads` blocking
//! threads at once. A processor that cannot has its one instance process the
//! round's batches in turn, as before.
//!
//! Processing is per task either way: a batch reads and writes only its task's
//! store, and its outputs are a function of its records and that state, so
//! which thread ran it changes nothing that is committed.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::runtime::checkpoint::{PendingItem, TaskBatch};
use crate::runtime::error::RuntimeError;
use crate::runtime::global::GlobalStore;
use crate::runtime::processor::{InputRecord, Processor};

/// The instances a runtime holds: the one it was given, and one per task when
/// the processor makes them.
pub(crate) struct Instances<P> {
    /// The instance the runtime was given. It answers the metadata questions
    /// (tick interval) and makes the per-task instances, or processes every
    /// task when the processor makes none. `None` while a round has it.
    main: Option<P>,
    /// Whether the processor makes per-task instances (asked once, at start).
    per_task_supported: bool,
    /// Per running task, when supported. `None` while a round has it.
    per_task: BTreeMap<i32, Option<P>>,
    /// How many batches of a round are processed at once.
    threads: usize,
}

/// What a round holds while it processes: the instances it took, in batch order.
pub(crate) enum Lease<P> {
    /// The main instance, for every batch in turn.
    One(P),
    /// One instance per batch, in the batches' order.
    PerTask(Vec<P>),
}

/// A batch processed by `process`, with its instance handed back.
pub(crate) type ProcessedBy<P, T> = (Lease<P>, Result<Vec<T>, RuntimeError>);

fn lost() -> RuntimeError {
    RuntimeError::Internal("the processor was lost by an earlier failed batch".to_string())
}

impl<P: Processor> Instances<P> {
    /// The instances of `main`, processing up to `threads` batches at once.
    pub(crate) fn new(main: P, threads: usize) -> Self {
        let per_task_supported = main.task_instance().is_some();
        Self {
            main: Some(main),
            per_task_supported,
            per_task: BTreeMap::new(),
            threads: threads.max(1),
        }
    }

    /// The instance the runtime was given, unless a failed round lost it.
    pub(crate) fn main(&self) -> Option<&P> {
        self.main.as_ref()
    }

    /// How many batches are processed at once: `threads` with per-task
    /// instances, else 1.
    pub(crate) fn parallelism(&self) -> usize {
        if self.per_task_supported {
            self.threads
        } else {
            1
        }
    }

    /// Drops `task`'s instance (the task was revoked or starts again): a task
    /// that comes back starts with a fresh one, whose caches saw nothing.
    pub(crate) fn forget(&mut self, task: i32) {
        self.per_task.remove(&task);
    }

    /// Takes the instances `batches` are processed with, making a task's
    /// instance the first time it has a batch.
    pub(crate) fn lease(&mut self, tasks: &[i32]) -> Result<Lease<P>, RuntimeError> {
        if !self.per_task_supported {
            return self.main.take().map(Lease::One).ok_or_else(lost);
        }
        let main = self.main.as_ref().ok_or_else(lost)?;
        let mut leased = Vec::with_capacity(tasks.len());
        for task in tasks {
            let slot = match self.per_task.get_mut(task) {
                Some(slot) => slot.take(),
                None => main.task_instance(),
            };
            match slot {
                Some(instance) => leased.push(instance),
                None => {
                    // Put back what was taken so far before failing.
                    self.give_back(tasks, Lease::PerTask(leased));
                    return Err(lost());
                }
            }
        }
        Ok(Lease::PerTask(leased))
    }

    /// Returns what [`Instances::lease`] took for `tasks`.
    pub(crate) fn give_back(&mut self, tasks: &[i32], lease: Lease<P>) {
        match lease {
            Lease::One(main) => self.main = Some(main),
            Lease::PerTask(instances) => {
                for (task, instance) in tasks.iter().zip(instances) {
                    self.per_task.insert(*task, Some(instance));
                }
            }
        }
    }

    /// Forgets every per-task slot a round lost (a panic), so the next lease
    /// of such a task fails instead of silently starting a fresh instance
    /// mid-stream.
    pub(crate) fn mark_lost(&mut self, tasks: &[i32]) {
        if self.per_task_supported {
            for task in tasks {
                self.per_task.insert(*task, None);
            }
        }
    }
}

impl<P: Processor> Lease<P> {
    /// Runs each instance's [`Processor::prepare_batch`]: the main instance
    /// with every record of the round, a task's instance with its batch's.
    pub(crate) async fn prepare(&mut self, batches: &[TaskBatch]) -> Result<(), RuntimeError> {
        match self {
            Lease::One(main) => {
                let records: Vec<&InputRecord> = batches.iter().flat_map(records_of).collect();
                if !records.is_empty() {
                    main.prepare_batch(&records).await?;
                }
            }
            Lease::PerTask(instances) => {
                for (instance, batch) in instances.iter_mut().zip(batches) {
                    let records: Vec<&InputRecord> = records_of(batch).collect();
                    if !records.is_empty() {
                        instance.prepare_batch(&records).await?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Processes `batches` off the reactor with `process`, on up to `threads`
    /// blocking threads (per-task instances only), and returns the results in
    /// the batches' order with the instances. A panic loses the instances and
    /// is reported as an error.
    pub(crate) async fn process<T, F>(
        self,
        batches: Vec<TaskBatch>,
        threads: usize,
        globals: Option<Arc<GlobalStore>>,
        process: F,
    ) -> Result<ProcessedBy<P, T>, RuntimeError>
    where
        T: Send + 'static,
        F: Fn(&mut P, TaskBatch, Option<&GlobalStore>) -> Result<T, RuntimeError>
            + Send
            + Sync
            + Copy
            + 'static,
    {
        let panicked = |e: tokio::task::JoinError| {
            RuntimeError::Internal(format!("the processor panicked: {e}"))
        };
        match self {
            Lease::One(mut main) => {
                let (main, result) = tokio::task::spawn_blocking(move || {
                    let result = batches
                        .into_iter()
                        .map(|batch| process(&mut main, batch, globals.as_deref()))
                        .collect::<Result<Vec<T>, _>>();
                    (main, result)
                })
                .await
                .map_err(panicked)?;
                Ok((Lease::One(main), result))
            }
            Lease::PerTask(instances) => {
                let groups = threads.clamp(1, instances.len().max(1));
                let mut work: Vec<Vec<(usize, P, TaskBatch)>> =
                    (0..groups).map(|_| Vec::new()).collect();
                for (i, (instance, batch)) in instances.into_iter().zip(batches).enumerate() {
                    work[i % groups].push((i, instance, batch));
                }
                let handles: Vec<_> = work
                    .into_iter()
                    .map(|group| {
                        let globals = globals.clone();
                        tokio::task::spawn_blocking(move || {
                            group
                                .into_iter()
                                .map(|(i, mut instance, batch)| {
                                    let result = process(&mut instance, batch, globals.as_deref());
                                    (i, instance, result)
                                })
                                .collect::<Vec<_>>()
                        })
                    })
                    .collect();
                let mut done = Vec::new();
                let mut panic = None;
                for handle in handles {
                    match handle.await {
                        Ok(group) => done.extend(group),
                        Err(e) => panic = Some(panicked(e)),
                    }
                }
                if let Some(error) = panic {
                    return Err(error);
                }
                done.sort_by_key(|(i, _, _)| *i);
                let mut instances = Vec::with_capacity(done.len());
                let mut results = Vec::with_capacity(done.len());
                for (_, instance, result) in done {
                    instances.push(instance);
                    results.push(result);
                }
                let results = results.into_iter().collect::<Result<Vec<T>, _>>();
                Ok((Lease::PerTask(instances), results))
            }
        }
    }
}

fn records_of(batch: &TaskBatch) -> impl Iterator<Item = &InputRecord> {
    batch.items.iter().filter_map(|item| match item {
        PendingItem::Record(record) => Some(record),
        _ => None,
    })
}

/// The threads a round processes on when configured as `0`: the machine's cores.
pub(crate) fn resolve_threads(configured: usize) -> usize {
    if configured > 0 {
        return configured;
    }
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::processor::{Context, ProcessError, StoreSpec};
    use crate::runtime::store::{MemoryStore, Store, TaskMetadata};
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Counts the instances made; each remembers the tasks it processed and
    /// which thread it ran on.
    struct Probe {
        per_task: bool,
        made: Arc<AtomicUsize>,
        id: usize,
        seen: Vec<i32>,
    }

    impl Processor for Probe {
        fn name(&self) -> &str {
            "probe"
        }
        fn stores(&self) -> Vec<StoreSpec> {
            Vec::new()
        }
        fn input_topics(&self) -> Vec<String> {
            vec!["in".to_string()]
        }
        fn task_instance(&self) -> Option<Self> {
            self.per_task.then(|| Probe {
                per_task: true,
                made: self.made.clone(),
                id: self.made.fetch_add(1, Ordering::SeqCst) + 1,
                seen: Vec::new(),
            })
        }
        fn process(&mut self, _: &InputRecord, _: &mut Context<'_>) -> Result<(), ProcessError> {
            Ok(())
        }
    }

    fn probe(per_task: bool) -> Probe {
        Probe {
            per_task,
            made: Arc::new(AtomicUsize::new(0)),
            id: 0,
            seen: Vec::new(),
        }
    }

    fn batch(task: i32) -> TaskBatch {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new(&[]));
        TaskBatch {
            task,
            store,
            metadata: TaskMetadata::default(),
            items: vec![PendingItem::Record(InputRecord {
                topic: "in".to_string(),
                partition: task,
                offset: 0,
                timestamp: None,
                key: None,
                value: None,
                headers: Vec::new(),
            })],
            input_offsets_after: BTreeMap::new(),
            global_seen_after: BTreeMap::new(),
        }
    }

    /// One round: which instance (by id) processed each batch, in batch order.
    async fn round(instances: &mut Instances<Probe>, tasks: &[i32]) -> Vec<(usize, Vec<i32>)> {
        let batches: Vec<TaskBatch> = tasks.iter().map(|t| batch(*t)).collect();
        let mut lease = instances.lease(tasks).expect("lease");
        lease.prepare(&batches).await.expect("prepare");
        let (lease, result) = lease
            .process(
                batches,
                instances.parallelism(),
                None,
                |p: &mut Probe, b, _| {
                    p.seen.push(b.task);
                    Ok((b.task, p.id))
                },
            )
            .await
            .expect("no panic");
        let order = result.expect("processed");
        let ids: Vec<(usize, Vec<i32>)> = match &lease {
            Lease::One(main) => order
                .iter()
                .map(|(_, id)| (*id, main.seen.clone()))
                .collect(),
            Lease::PerTask(each) => each.iter().map(|p| (p.id, p.seen.clone())).collect(),
        };
        assert_eq!(
            order.iter().map(|(t, _)| *t).collect::<Vec<_>>(),
            tasks,
            "results come back in the batches' order"
        );
        instances.give_back(tasks, lease);
        ids
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn each_task_keeps_its_own_instance_until_it_goes() {
        let mut instances = Instances::new(probe(true), 2);
        assert_eq!(instances.parallelism(), 2);
        let first = round(&mut instances, &[0, 1, 2, 3]).await;
        let second = round(&mut instances, &[1, 3]).await;
        // Four instances, one per task, each having seen only its task (instance 1 was
        // made by `Instances::new`, asking whether the processor makes them).
        let ids: Vec<usize> = first.iter().map(|(id, _)| *id).collect();
        assert_eq!(ids, vec![2, 3, 4, 5]);
        assert_eq!(second[0], (3, vec![1, 1]));
        assert_eq!(second[1], (5, vec![3, 3]));
        // A task that goes and comes back starts with a fresh instance.
        instances.forget(1);
        let third = round(&mut instances, &[1]).await;
        assert_eq!(third, vec![(6, vec![1])]);
    }

    #[tokio::test]
    async fn a_processor_without_task_instances_processes_every_task_with_one() {
        let mut instances = Instances::new(probe(false), 4);
        assert_eq!(instances.parallelism(), 1);
        let first = round(&mut instances, &[0, 1]).await;
        assert_eq!(first, vec![(0, vec![0, 1]), (0, vec![0, 1])]);
        assert_eq!(instances.main().expect("given back").seen, vec![0, 1]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_panicking_batch_loses_its_tasks_instances_and_says_so() {
        let mut instances = Instances::new(probe(true), 2);
        round(&mut instances, &[0, 1]).await;
        let batches = vec![batch(0), batch(1)];
        let lease = instances.lease(&[0, 1]).expect("lease");
        let outcome = lease
            .process(batches, 2, None, |_: &mut Probe, b, _| {
                if b.task == 1 {
                    panic!("boom");
                }
                Ok(())
            })
            .await;
        let Err(error) = outcome else {
            panic!("a panic must be an error")
        };
        assert!(error.to_string().contains("panicked"), "{error}");
        instances.mark_lost(&[0, 1]);
        let again = instances.lease(&[0]);
        assert!(
            again.is_err_and(|e| e.to_string().contains("lost")),
            "a lost instance is not silently replaced"
        );
    }

    #[test]
    fn zero_threads_means_the_machines_cores() {
        assert_eq!(resolve_threads(3), 3);
        assert!(resolve_threads(0) >= 1);
    }
}

//! Running a processor without a broker or a disk: [`MemoryTask`] drives one
//! task on a [`MemoryStore`] with the same batch semantics as the runtime
//! (reads see the batch's own writes; a failed batch leaves the store
//! untouched), so processors' golden tests stay pure and fast.

use chrono::{DateTime, Utc};

use crate::runtime::changelog::Marker;
use crate::runtime::processor::{
    Context, GlobalChange, GlobalView, InputRecord, MemoryGlobals, OutputRecord, ProcessError,
    Processor, WriteBuffer,
};
use crate::runtime::store::{MemoryStore, Store, TaskMetadata};

/// One task of a processor on memory state.
#[derive(Debug)]
pub struct MemoryTask<P> {
    processor: P,
    partition: i32,
    store: MemoryStore,
    /// Global tables the processor reads (set entries before processing).
    pub globals: MemoryGlobals,
}

enum Item<'a> {
    Record(&'a InputRecord),
    Tick(DateTime<Utc>),
    Global(&'a GlobalChange),
}

impl<P: Processor> MemoryTask<P> {
    /// Task `partition` of `processor`, with empty stores and global tables.
    pub fn new(processor: P, partition: i32) -> Self {
        let names: Vec<String> = processor.stores().into_iter().map(|s| s.name).collect();
        let globals = MemoryGlobals::new(processor.global_tables().into_iter().map(|t| t.name));
        Self {
            store: MemoryStore::new(&names),
            processor,
            partition,
            globals,
        }
    }

    /// The processor.
    pub fn processor(&self) -> &P {
        &self.processor
    }

    /// The task's committed state.
    pub fn store(&self) -> &MemoryStore {
        &self.store
    }

    fn batch(
        &mut self,
        items: Vec<Item<'_>>,
        now: DateTime<Utc>,
    ) -> Result<Vec<OutputRecord>, ProcessError> {
        let mut buffer = WriteBuffer::new(self.store.store_names().len());
        let mut outputs = Vec::new();
        let mut metadata = self.store.metadata()?.unwrap_or_else(TaskMetadata::fresh);
        {
            let mut ctx = Context::new(
                self.partition,
                now,
                &self.store,
                &mut buffer,
                &mut outputs,
                Some(&self.globals as &dyn GlobalView),
            );
            for item in items {
                match item {
                    Item::Record(record) => {
                        self.processor.process(record, &mut ctx)?;
                        metadata
                            .committed
                            .input_offsets
                            .insert(record.topic.clone(), record.offset + 1);
                    }
                    Item::Tick(at) => self.processor.on_tick(at, &mut ctx)?,
                    Item::Global(change) => self.processor.on_global_change(change, &mut ctx)?,
                }
            }
        }
        metadata.committed = Marker {
            seq: metadata.committed.seq + 1,
            ..metadata.committed
        };
        self.store.commit(&buffer.into_writes(), &metadata)?;
        Ok(outputs)
    }

    /// Processes `records` as one batch at time `now`; returns its outputs.
    pub fn process(
        &mut self,
        records: &[InputRecord],
        now: DateTime<Utc>,
    ) -> Result<Vec<OutputRecord>, ProcessError> {
        self.batch(records.iter().map(Item::Record).collect(), now)
    }

    /// Runs `on_tick` at `now` as one batch.
    pub fn tick(&mut self, now: DateTime<Utc>) -> Result<Vec<OutputRecord>, ProcessError> {
        self.batch(vec![Item::Tick(now)], now)
    }

    /// Applies a global-table change (to [`MemoryTask::globals`]) and runs
    /// `on_global_change` as one batch.
    pub fn global_change(
        &mut self,
        change: GlobalChange,
        now: DateTime<Utc>,
    ) -> Result<Vec<OutputRecord>, ProcessError> {
        self.globals
            .set(&change.table, &change.key, change.value.as_deref());
        self.batch(vec![Item::Global(&change)], now)
    }
}

//! The toy processor that proves the runtime: a per-key summing processor
//! with a de-duplication store, whose double counting or loss is visible in
//! its outputs.
//!
//! Input: key `k<n>`, value `<id>,<amount>`. The `seen` store remembers ids
//! (like validate's MessageId dedupe): a repeated id is ignored. The `sums`
//! store holds `<count>,<sum>` per key. Every accepted record emits the new
//! `<count>,<sum>` for its key with idempotency key `<key>#<count>`: a replay
//! emits the same key and value again, a double count a higher sum for the
//! same idempotency key, a loss a missing version.
//!
//! With a labels table (a global table), outputs carry the key's label, and
//! a label change emits `relabel:<key>` (idempotency key `relabel:<key>@<offset>`).
//!
//! Shared by the testbed binary, the integration tests and the benchmark
//! (`#[path]` includes), so that all three run the same code.

#![allow(dead_code)]

use afregning_processors::runtime::{
    Context, GlobalChange, GlobalTableSpec, InputRecord, OutputRecord, ProcessError, Processor,
    StoreSpec,
};

/// Name of the toy's sums store.
pub const SUMS: &str = "sums";
/// Name of the toy's dedupe store.
pub const SEEN: &str = "seen";
/// Name of the labels global table.
pub const LABELS: &str = "labels";

/// The summing processor.
#[derive(Debug, Clone)]
pub struct SumProcessor {
    /// Processor name (changelog topics, default group).
    pub name: String,
    /// Input topics; the first is the primary.
    pub inputs: Vec<String>,
    /// Output topic.
    pub output: String,
    /// Optional labels table topic.
    pub labels: Option<String>,
    /// Make an instance per task (`Processor::task_instance`), so the runtime
    /// processes tasks in parallel; each instance then refuses any other task's
    /// record or change, which proves the runtime never mixes them.
    pub per_task: bool,
    /// The task a per-task instance serves, learnt from its first batch.
    pub serves: Option<i32>,
}

impl SumProcessor {
    /// Fails unless this instance may process task `task`'s input.
    fn check_task(&mut self, task: i32) -> Result<(), ProcessError> {
        if !self.per_task {
            return Ok(());
        }
        match self.serves {
            None => {
                self.serves = Some(task);
                Ok(())
            }
            Some(serves) if serves == task => Ok(()),
            Some(serves) => Err(ProcessError::failed(format!(
                "the instance of task {serves} was handed task {task}'s input"
            ))),
        }
    }
}

/// Parses `<id>,<amount>`.
pub fn parse_value(value: &[u8]) -> Option<(String, i64)> {
    let text = std::str::from_utf8(value).ok()?;
    let (id, amount) = text.split_once(',')?;
    Some((id.to_string(), amount.parse().ok()?))
}

/// Parses `<count>,<sum>` (the sums store and the outputs).
pub fn parse_sum(value: &[u8]) -> Option<(u64, i64)> {
    let text = std::str::from_utf8(value).ok()?;
    let mut parts = text.split(',');
    let count = parts.next()?.parse().ok()?;
    let sum = parts.next()?.parse().ok()?;
    Some((count, sum))
}

impl Processor for SumProcessor {
    fn name(&self) -> &str {
        &self.name
    }

    fn stores(&self) -> Vec<StoreSpec> {
        vec![StoreSpec::new(SUMS), StoreSpec::new(SEEN)]
    }

    fn input_topics(&self) -> Vec<String> {
        self.inputs.clone()
    }

    fn task_instance(&self) -> Option<Self> {
        self.per_task.then(|| Self {
            serves: None,
            ..self.clone()
        })
    }

    fn global_tables(&self) -> Vec<GlobalTableSpec> {
        self.labels
            .iter()
            .map(|topic| GlobalTableSpec::new(LABELS, topic.clone()))
            .collect()
    }

    fn process(&mut self, record: &InputRecord, ctx: &mut Context<'_>) -> Result<(), ProcessError> {
        self.check_task(record.partition)?;
        let (Some(key), Some(value)) = (&record.key, &record.value) else {
            return Ok(());
        };
        let Some((id, amount)) = parse_value(value) else {
            return Ok(());
        };
        if ctx.get(SEEN, id.as_bytes())?.is_some() {
            return Ok(());
        }
        ctx.put(SEEN, id.as_bytes(), b"")?;
        let (count, sum) = ctx
            .get(SUMS, key)?
            .and_then(|v| parse_sum(&v))
            .unwrap_or((0, 0));
        let (count, sum) = (count + 1, sum + amount);
        ctx.put(SUMS, key, format!("{count},{sum}").as_bytes())?;
        let mut out = format!("{count},{sum}");
        if self.labels.is_some() {
            let label = ctx
                .global(LABELS, key)?
                .map(|l| String::from_utf8_lossy(&l).into_owned());
            out.push(',');
            out.push_str(label.as_deref().unwrap_or("-"));
        }
        ctx.emit(OutputRecord {
            topic: self.output.clone(),
            key: key.clone(),
            value: Some(out.into_bytes()),
            partition: Some(record.partition),
            headers: vec![(
                "source-offset".to_string(),
                record.offset.to_string().into_bytes(),
            )],
            idempotency_key: format!("{}#{count}", String::from_utf8_lossy(key)),
        });
        Ok(())
    }

    fn on_global_change(
        &mut self,
        change: &GlobalChange,
        ctx: &mut Context<'_>,
    ) -> Result<(), ProcessError> {
        self.check_task(ctx.partition())?;
        // Only keys this task holds are relabelled.
        if ctx.get(SUMS, &change.key)?.is_none() {
            return Ok(());
        }
        let key = String::from_utf8_lossy(&change.key).into_owned();
        ctx.emit(OutputRecord {
            topic: self.output.clone(),
            key: format!("relabel:{key}").into_bytes(),
            value: change.value.clone(),
            partition: Some(ctx.partition()),
            headers: Vec::new(),
            idempotency_key: format!("relabel:{key}@{}", change.offset),
        });
        Ok(())
    }
}

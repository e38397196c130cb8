//! Running reconcile: until stopped (`afregning reconcile run`), or until it has caught up
//! with its inputs and its marked months are reconciled (tests, one-off runs).
//!
//! reconcile is not one of the four processors [`crate::pipeline`] runs together: it reads
//! what they write and nothing reads it but the sink, so a deployment (and every pipeline
//! test) without reconciliation is unchanged by it.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::processor::{Reconcile, ReconcileConfig};
use crate::runtime::{
    Observer, Processor, Runtime, RuntimeConfig, RuntimeError, RuntimeEvent, RuntimeStatus,
};
use crate::shared::Topics;

/// Runs reconcile until `shutdown` resolves; `observer` sees every runtime event and
/// `status` receives the handle `/health` and `/ready` are served from.
pub async fn run<F>(
    topics: Topics,
    config: ReconcileConfig,
    runtime: RuntimeConfig,
    observer: Option<Observer>,
    status: Option<tokio::sync::oneshot::Sender<RuntimeStatus>>,
    shutdown: F,
) -> Result<(), RuntimeError>
where
    F: Future<Output = ()> + Send,
{
    let mut runtime = Runtime::new(Reconcile::new(topics, config), runtime);
    if let Some(observer) = observer {
        runtime = runtime.with_observer(observer);
    }
    if let Some(status) = status {
        let _ = status.send(runtime.status());
    }
    runtime.run(shutdown).await
}

/// What a [`run_until_caught_up`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CaughtUp {
    /// Input records processed.
    pub records: u64,
    /// Records published (reconciliation parts and dead letters).
    pub outputs: u64,
    /// How long it took.
    pub elapsed: Duration,
}

#[derive(Default)]
struct Progress {
    lags: BTreeMap<(String, i32), (i64, u64)>,
    records: u64,
    outputs: u64,
    busy_batches: u64,
}

/// Runs reconcile until every input partition is read to its end, nothing was committed
/// for `quiet` (longer than the tick interval, so marked months are reconciled), then
/// stops it; fails after `timeout`. Caught up is judged from the runtime's own lag reports,
/// as [`crate::pipeline::run_until_caught_up`] does.
pub async fn run_until_caught_up(
    topics: Topics,
    config: ReconcileConfig,
    runtime: RuntimeConfig,
    quiet: Duration,
    timeout: Duration,
) -> Result<CaughtUp, RuntimeError> {
    let started = Instant::now();
    let partitions = topics.catalogue.settings().partitions as i32;
    let inputs = Reconcile::new(topics.clone(), config.clone()).input_topics();
    let progress = Arc::new(Mutex::new(Progress::default()));
    let seen = progress.clone();
    let observer: Observer = Arc::new(move |event: &RuntimeEvent| {
        let mut p = seen.lock().unwrap_or_else(|e| e.into_inner());
        match event {
            RuntimeEvent::Lag {
                topic,
                partition,
                lag,
            } => {
                let busy = p.busy_batches;
                p.lags.insert((topic.clone(), *partition), (*lag, busy));
            }
            RuntimeEvent::BatchCommitted {
                records, outputs, ..
            } => {
                p.records += *records as u64;
                p.outputs += *outputs as u64;
                if *records > 0 || *outputs > 0 {
                    p.busy_batches += 1;
                }
            }
            _ => {}
        }
    });
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let handle = tokio::spawn(async move {
        let mut stop = stop_rx;
        let shutdown = async move {
            let _ = stop.wait_for(|s| *s).await;
        };
        run(topics, config, runtime, Some(observer), None, shutdown).await
    });
    let mut since: Option<(Instant, u64)> = None;
    let outcome = loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        if handle.is_finished() {
            // Stopped on its own: its error, or that it stopped at all, is the outcome.
            let stopped = handle
                .await
                .map_err(|e| RuntimeError::Internal(format!("reconcile task failed: {e}")))?;
            stopped?;
            return Err(RuntimeError::Internal(
                "reconcile stopped before it caught up".into(),
            ));
        }
        let (behind, busy) = {
            let p = progress.lock().unwrap_or_else(|e| e.into_inner());
            let mut behind = Vec::new();
            for topic in &inputs {
                for partition in 0..partitions {
                    match p.lags.get(&(topic.clone(), partition)) {
                        Some((0, at)) if *at == p.busy_batches => {}
                        other => behind.push(format!("{topic}[{partition}] {other:?}")),
                    }
                }
            }
            (behind, p.busy_batches)
        };
        if behind.is_empty() {
            match since {
                Some((at, seen)) if seen == busy => {
                    if at.elapsed() >= quiet {
                        break Ok(());
                    }
                }
                _ => since = Some((Instant::now(), busy)),
            }
        } else {
            since = None;
        }
        if started.elapsed() > timeout {
            break Err(RuntimeError::Internal(format!(
                "reconcile not caught up after {timeout:?}: {}",
                behind.join("; ")
            )));
        }
    };
    let _ = stop_tx.send(true);
    let joined = handle
        .await
        .map_err(|e| RuntimeError::Internal(format!("reconcile task failed: {e}")))?;
    outcome?;
    joined?;
    let p = progress.lock().unwrap_or_else(|e| e.into_inner());
    Ok(CaughtUp {
        records: p.records,
        outputs: p.outputs,
        elapsed: started.elapsed(),
    })
}

//! The four processors of one deployment, built from shared settings, and a
//! batch-style driver that runs them together until they have caught up.
//!
//! `afregning process run <name>` runs one processor until it is stopped
//! ([`run_one`]); the demo, replays and the end-to-end tests run all four in
//! one process until every input partition of every processor is consumed to
//! its high watermark and stays so ([`run_until_caught_up`]). Catching up is
//! judged from the runtime's own lag reports (against the fetch-reported high
//! watermark, which the local broker gets right where ListOffsets does not),
//! never from consumer-group offsets.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use afregning_topology::{Catalogue, Codec};

use crate::aggregate::{Aggregate, AggregateConfig};
use crate::enrich::{Enrich, EnrichConfig};
use crate::runtime::{
    Observer, Processor, Runtime, RuntimeConfig, RuntimeError, RuntimeEvent, RuntimeStatus,
};
use crate::settle::{Settle, SettleConfig};
use crate::shared::{Topics, Wire, WireError};
use crate::validate::{Validate, ValidateConfig};

/// Which processor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Which {
    /// Raw to typed.
    Validate,
    /// Readings joined with master data.
    Enrich,
    /// Daily aggregates.
    Aggregate,
    /// Settlement lines and statements.
    Settle,
}

impl Which {
    /// All four, in data-flow order.
    pub const ALL: [Which; 4] = [
        Which::Validate,
        Which::Enrich,
        Which::Aggregate,
        Which::Settle,
    ];

    /// The processor's component in the topology catalogue, where its inputs,
    /// global tables, outputs and stores are declared.
    pub fn component(self) -> afregning_topology::catalogue::Component {
        use afregning_topology::catalogue::Component;
        match self {
            Which::Validate => Component::Validate,
            Which::Enrich => Component::Enrich,
            Which::Aggregate => Component::Aggregate,
            Which::Settle => Component::Settle,
        }
    }

    /// The processor's name.
    pub fn name(self) -> &'static str {
        self.component().name()
    }
}

/// Everything the four processors of a deployment need.
#[derive(Debug, Clone)]
pub struct PipelineSettings {
    /// The runtime settings shared by all four (each gets its own group and state directory).
    pub runtime: RuntimeConfig,
    /// validate's settings.
    pub validate: ValidateConfig,
    /// enrich's settings.
    pub enrich: EnrichConfig,
    /// aggregate's settings.
    pub aggregate: AggregateConfig,
    /// settle's settings.
    pub settle: SettleConfig,
}

/// Why the pipeline could not run.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// The schema registry could not give the catalogue's schema ids.
    #[error("resolving schema ids: {0}")]
    Wire(#[from] WireError),
    /// A processor's runtime failed.
    #[error("{processor}: {source}")]
    Runtime {
        /// Which processor.
        processor: &'static str,
        /// Why.
        #[source]
        source: RuntimeError,
    },
    /// The processors did not catch up in time.
    #[error("not caught up after {0:?}: {1}")]
    Timeout(Duration, String),
}

/// The topic handles of a deployment with schema ids from the registry.
pub async fn topics(catalogue: Catalogue, codec: &Codec) -> Result<Topics, PipelineError> {
    let wire = Wire::from_registry(codec).await?;
    Ok(Topics::new(catalogue, wire))
}

/// How a caller watches a running processor: its events and its status
/// handle (to serve `/health` and `/ready`).
#[derive(Default)]
pub struct Watch {
    /// Called with every runtime event.
    pub observer: Option<Observer>,
    /// Receives the runtime's status handle once it exists.
    pub status: Option<tokio::sync::oneshot::Sender<RuntimeStatus>>,
}

/// Runs any processor with the runtime until `shutdown` resolves (the four of the
/// pipeline through [`run_one`]; the portfolio processor on its own).
pub async fn run_runtime<P: Processor, F>(
    processor: P,
    config: RuntimeConfig,
    watch: Watch,
    shutdown: F,
) -> Result<(), RuntimeError>
where
    F: Future<Output = ()> + Send,
{
    let mut runtime = Runtime::new(processor, config);
    if let Some(observer) = watch.observer {
        runtime = runtime.with_observer(observer);
    }
    if let Some(status) = watch.status {
        let _ = status.send(runtime.status());
    }
    runtime.run(shutdown).await
}

/// Runs processor `which` until `shutdown` resolves.
pub async fn run_one<F>(
    which: Which,
    topics: Topics,
    settings: PipelineSettings,
    watch: Watch,
    shutdown: F,
) -> Result<(), PipelineError>
where
    F: Future<Output = ()> + Send,
{
    let config = settings.runtime.clone();
    let result = match which {
        Which::Validate => {
            run_runtime(
                Validate::new(topics, settings.validate),
                config,
                watch,
                shutdown,
            )
            .await
        }
        Which::Enrich => {
            run_runtime(
                Enrich::new(topics, settings.enrich),
                config,
                watch,
                shutdown,
            )
            .await
        }
        Which::Aggregate => {
            run_runtime(
                Aggregate::new(topics, settings.aggregate),
                config,
                watch,
                shutdown,
            )
            .await
        }
        Which::Settle => {
            run_runtime(
                Settle::new(topics, settings.settle),
                config,
                watch,
                shutdown,
            )
            .await
        }
    };
    result.map_err(|source| PipelineError::Runtime {
        processor: which.name(),
        source,
    })
}

/// What each processor did in a [`run_until_caught_up`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PipelineReport {
    /// Per processor: records processed and outputs emitted.
    pub processors: BTreeMap<&'static str, (u64, u64)>,
    /// How long until caught up.
    pub elapsed: Duration,
}

impl std::fmt::Display for PipelineReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for which in Which::ALL {
            let (records, outputs) = self
                .processors
                .get(which.name())
                .copied()
                .unwrap_or_default();
            writeln!(
                f,
                "{:<10} {records:>9} records in, {outputs:>9} records out",
                which.name()
            )?;
        }
        write!(f, "caught up in {:.1} s", self.elapsed.as_secs_f64())
    }
}

#[derive(Default)]
struct Progress {
    /// (processor, topic, partition) → the last lag reported and the
    /// activity count when it was.
    lags: BTreeMap<(&'static str, String, i32), (i64, u64)>,
    counts: BTreeMap<&'static str, (u64, u64)>,
    /// Batches that did work (records or outputs), over all processors.
    batches: u64,
}

fn observer_for(which: Which, progress: Arc<Mutex<Progress>>) -> Observer {
    Arc::new(move |event: &RuntimeEvent| {
        let mut p = match progress.lock() {
            Ok(p) => p,
            Err(poisoned) => poisoned.into_inner(),
        };
        match event {
            RuntimeEvent::Lag {
                topic,
                partition,
                lag,
            } => {
                let batches = p.batches;
                p.lags
                    .insert((which.name(), topic.clone(), *partition), (*lag, batches));
            }
            RuntimeEvent::BatchCommitted {
                records, outputs, ..
            } => {
                let c = p.counts.entry(which.name()).or_default();
                c.0 += *records as u64;
                c.1 += *outputs as u64;
                // Ticks commit (empty) batches too; only work counts as activity.
                if *records > 0 || *outputs > 0 {
                    p.batches += 1;
                }
            }
            _ => {}
        }
    })
}

/// Runs all four processors in this process until every input partition of
/// each is consumed to its high watermark, nothing was committed for
/// `quiet`, and at least one settle tick has passed since; then stops them
/// (each commits what is pending) and reports. Fails after `timeout`.
pub async fn run_until_caught_up(
    topics: Topics,
    settings: PipelineSettings,
    quiet: Duration,
    timeout: Duration,
) -> Result<PipelineReport, PipelineError> {
    run_until_caught_up_observed(topics, settings, quiet, timeout, &|_| {}).await
}

/// Where a [`run_until_caught_up_observed`] is, handed to its caller four
/// times a second so a long catch-up can show progress.
#[derive(Debug, Clone, Default)]
pub struct PipelineProgress {
    /// Per processor: records processed and outputs emitted so far.
    pub processors: BTreeMap<&'static str, (u64, u64)>,
    /// Records not yet processed, summed over every processor's inputs (the
    /// last lag each partition reported).
    pub lag: i64,
}

/// [`run_until_caught_up`] that reports its [`PipelineProgress`] to
/// `on_progress` while it runs.
pub async fn run_until_caught_up_observed(
    topics: Topics,
    settings: PipelineSettings,
    quiet: Duration,
    timeout: Duration,
    on_progress: &(dyn Fn(&PipelineProgress) + Send + Sync),
) -> Result<PipelineReport, PipelineError> {
    let started = Instant::now();
    let progress = Arc::new(Mutex::new(Progress::default()));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut handles = Vec::new();
    let mut inputs: Vec<(&'static str, Vec<String>)> = Vec::new();
    for which in Which::ALL {
        inputs.push((which.name(), input_topics(which, &topics, &settings)));
        let topics = topics.clone();
        let settings = settings.clone();
        let observer = observer_for(which, progress.clone());
        let mut stop = stop_rx.clone();
        handles.push(tokio::spawn(async move {
            let shutdown = async move {
                let _ = stop.wait_for(|s| *s).await;
            };
            let watch = Watch {
                observer: Some(observer),
                status: None,
            };
            run_one(which, topics, settings, watch, shutdown).await
        }));
    }
    let partitions = topics.catalogue.settings().partitions as i32;
    let mut caught_up_since: Option<(Instant, u64)> = None;
    let result = loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        if let Some(finished) = handles.iter().position(|h| h.is_finished()) {
            // A processor stopped on its own: that is an error (or a panic).
            let handle = handles.remove(finished);
            let _ = stop_tx.send(true);
            match handle.await {
                Ok(Err(e)) => break Err(e),
                Ok(Ok(())) => {
                    break Err(PipelineError::Timeout(
                        started.elapsed(),
                        "a processor stopped before the pipeline caught up".into(),
                    ));
                }
                Err(join) => {
                    break Err(PipelineError::Timeout(
                        started.elapsed(),
                        format!("a processor task failed: {join}"),
                    ));
                }
            }
        }
        let (behind, batches) = {
            let p = match progress.lock() {
                Ok(p) => p,
                Err(poisoned) => poisoned.into_inner(),
            };
            // Caught up: every input partition of every processor reported no
            // lag, measured after the last batch that did any work.
            let mut behind = Vec::new();
            for (name, inputs) in &inputs {
                for topic in inputs {
                    for partition in 0..partitions {
                        match p.lags.get(&(*name, topic.clone(), partition)) {
                            Some((0, at)) if *at == p.batches => {}
                            Some((lag, _)) => {
                                behind.push(format!("{name} {topic}[{partition}] lag {lag}"));
                            }
                            None => behind.push(format!("{name} {topic}[{partition}] not running")),
                        }
                    }
                }
            }
            on_progress(&PipelineProgress {
                processors: p.counts.clone(),
                lag: p.lags.values().map(|(lag, _)| (*lag).max(0)).sum(),
            });
            (behind, p.batches)
        };
        if behind.is_empty() {
            match caught_up_since {
                Some((since, seen)) if seen == batches => {
                    if since.elapsed() >= quiet {
                        let _ = stop_tx.send(true);
                        break Ok(());
                    }
                }
                _ => caught_up_since = Some((Instant::now(), batches)),
            }
        } else {
            caught_up_since = None;
        }
        if started.elapsed() > timeout {
            let _ = stop_tx.send(true);
            break Err(PipelineError::Timeout(timeout, behind.join("; ")));
        }
    };
    for handle in handles {
        if let Ok(Err(e)) = handle.await
            && result.is_ok()
        {
            return Err(e);
        }
    }
    result?;
    let counts = match progress.lock() {
        Ok(p) => p.counts.clone(),
        Err(poisoned) => poisoned.into_inner().counts.clone(),
    };
    Ok(PipelineReport {
        processors: counts,
        elapsed: started.elapsed(),
    })
}

fn input_topics(which: Which, topics: &Topics, settings: &PipelineSettings) -> Vec<String> {
    match which {
        Which::Validate => Validate::new(topics.clone(), settings.validate.clone()).input_topics(),
        Which::Enrich => Enrich::new(topics.clone(), settings.enrich.clone()).input_topics(),
        Which::Aggregate => {
            Aggregate::new(topics.clone(), settings.aggregate.clone()).input_topics()
        }
        Which::Settle => Settle::new(topics.clone(), settings.settle.clone()).input_topics(),
    }
}

/// Runs all four processors in this process until `shutdown` resolves (or
/// one fails): a single-machine deployment, and the tests that keep a
/// pipeline running while they feed it.
pub async fn run_all<F>(
    topics: Topics,
    settings: PipelineSettings,
    shutdown: F,
) -> Result<(), PipelineError>
where
    F: Future<Output = ()> + Send + 'static,
{
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut handles = Vec::new();
    for which in Which::ALL {
        let topics = topics.clone();
        let settings = settings.clone();
        let mut stop = stop_rx.clone();
        handles.push(tokio::spawn(async move {
            let shutdown = async move {
                let _ = stop.wait_for(|s| *s).await;
            };
            run_one(which, topics, settings, Watch::default(), shutdown).await
        }));
    }
    let mut shutdown = Box::pin(shutdown);
    let mut first_error = None;
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            () = tokio::time::sleep(Duration::from_millis(200)) => {
                if handles.iter().any(tokio::task::JoinHandle::is_finished) {
                    break;
                }
            }
        }
    }
    let _ = stop_tx.send(true);
    for handle in handles {
        match handle.await {
            Ok(Err(e)) if first_error.is_none() => first_error = Some(e),
            Err(join) if first_error.is_none() => {
                first_error = Some(PipelineError::Timeout(
                    Duration::ZERO,
                    format!("a processor task failed: {join}"),
                ));
            }
            _ => {}
        }
    }
    first_error.map_or(Ok(()), Err)
}

impl PipelineSettings {
    /// Settings for a run on one machine that should catch up quickly (the
    /// demo, the end-to-end tests): 100 ms commits, 1 s lag checks, 10 ms
    /// fetch waits (the local broker holds every fetch that long), 500 ms
    /// ticks, `catalogue`'s first product for every metering point it does
    /// not assign, and no grace period (such runs settle months long past).
    pub fn quick(
        bootstrap_servers: &str,
        topic_prefix: &str,
        state_dir: &std::path::Path,
        supplier_gln: &str,
        catalogue: afregning_settlement::ProductCatalogue,
    ) -> Self {
        Self {
            runtime: RuntimeConfig {
                bootstrap_servers: bootstrap_servers.to_string(),
                topic_prefix: topic_prefix.to_string(),
                state_dir: state_dir.to_path_buf(),
                commit_interval_ms: 100,
                lag_check_interval_ms: 1_000,
                stall_timeout_ms: 5_000,
                // Tansu holds every fetch for the full wait (data or not).
                fetch_wait_max_ms: 10,
                // The broker is on this machine: compressing is CPU for nothing.
                compression: crate::runtime::Compression::None,
                session_timeout_ms: 6_000,
                ..RuntimeConfig::default()
            },
            validate: ValidateConfig::default(),
            enrich: EnrichConfig {
                rules: crate::enrich::EnrichRules {
                    supplier_gln: Some(supplier_gln.to_string()),
                    ..crate::enrich::EnrichRules::default()
                },
                ..EnrichConfig::default()
            },
            aggregate: AggregateConfig {
                spot_recompute_interval: Duration::from_millis(500),
            },
            settle: SettleConfig {
                default_product: catalogue.products.first().map(|p| p.id.clone()),
                catalogue,
                grace: chrono::Duration::zero(),
                tick_interval: Duration::from_millis(500),
            },
        }
    }
}

//! `afregning-processor-testbed`: the runtime's proof as a real process, so
//! that integration tests can SIGKILL it at any moment.
//!
//! - `afregning-processor-testbed run <config.json>` runs the toy summing
//!   processor (`toy.rs`) under the runtime. Every [`RuntimeEvent`] is printed
//!   to stdout as `EVENT <json>` (the tests time their kills on them); with a
//!   `crash` section the process SIGKILLs itself right after a chosen commit
//!   step, to hit exact points of the protocol. SIGTERM stops it gracefully.
//! - `afregning-processor-testbed store-hammer <dir>` commits batches to a
//!   RocksDB store forever (every key of a batch set to the batch number, the
//!   number also in the metadata), for the test that kills it mid-write and
//!   checks data and offsets never disagree.

mod toy;

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use afregning_processors::runtime::{
    CheckpointStage, RocksStore, RuntimeConfig, RuntimeEvent, StateMemory, Store, admin,
    changelog::Marker,
    store::{StoreWrite, TaskMetadata},
};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TestbedConfig {
    runtime: RuntimeConfig,
    #[serde(default = "default_name")]
    name: String,
    inputs: Vec<String>,
    output: String,
    #[serde(default)]
    labels: Option<String>,
    /// An instance per task, processed in parallel (decision 0153).
    #[serde(default)]
    per_task: bool,
    #[serde(default)]
    crash: Option<Crash>,
    #[serde(default)]
    admin_addr: Option<String>,
}

fn default_name() -> String {
    "toy".to_string()
}

/// Kill this process right after `stage` completes, with `probability`, but
/// not in the first `after_rounds` rounds that reach it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Crash {
    stage: CheckpointStage,
    probability: f64,
    #[serde(default)]
    after_rounds: u64,
}

fn print_event(json: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "EVENT {json}");
    let _ = out.flush();
}

fn self_kill(reason: &str) -> ! {
    print_event(&format!(
        "{{\"event\":\"self-kill\",\"reason\":{reason:?}}}"
    ));
    let _ = nix::sys::signal::kill(nix::unistd::Pid::this(), nix::sys::signal::Signal::SIGKILL);
    std::process::abort()
}

/// A small xorshift generator: enough randomness for crash decisions
/// without a dependency.
fn random_unit(state: &AtomicU64) -> f64 {
    let mut x = state.load(Ordering::Relaxed);
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    state.store(x, Ordering::Relaxed);
    (x >> 11) as f64 / (1u64 << 53) as f64
}

fn run(path: &str) -> Result<(), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    let config: TestbedConfig = serde_json::from_str(&text).map_err(|e| format!("{path}: {e}"))?;
    let processor = toy::SumProcessor {
        name: config.name.clone(),
        inputs: config.inputs.clone(),
        output: config.output.clone(),
        labels: config.labels.clone(),
        per_task: config.per_task,
        serves: None,
    };
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1)
        ^ u64::from(std::process::id());
    let random = Arc::new(AtomicU64::new(seed | 1));
    let rounds = Arc::new(AtomicU64::new(0));
    let crash = config.crash;
    let observer = Arc::new(move |event: &RuntimeEvent| {
        print_event(&serde_json::to_string(event).unwrap_or_default());
        if let (Some(crash), RuntimeEvent::CheckpointStage { stage, .. }) = (&crash, event)
            && *stage == crash.stage
        {
            let round = rounds.fetch_add(1, Ordering::SeqCst);
            if round >= crash.after_rounds && random_unit(&random) < crash.probability {
                self_kill(&format!("{stage:?}"));
            }
        }
    });
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .map_err(|e| format!("metrics: {e}"))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async move {
        let processor_runtime =
            afregning_processors::runtime::Runtime::new(processor, config.runtime)
                .with_observer(observer);
        if let Some(addr) = &config.admin_addr {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| format!("{addr}: {e}"))?;
            let local = listener.local_addr().map_err(|e| e.to_string())?;
            print_event(&format!("{{\"event\":\"admin\",\"addr\":\"{local}\"}}"));
            let router = admin::router(
                processor_runtime.status(),
                Arc::new(move || recorder.render()),
            );
            tokio::spawn(async move {
                let _ = axum::serve(listener, router).await;
            });
        }
        let shutdown = async {
            let mut term =
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(term) => term,
                    Err(_) => return std::future::pending().await,
                };
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        };
        processor_runtime
            .run(shutdown)
            .await
            .map_err(|e| e.to_string())
    })
}

fn hammer(dir: &str) -> Result<(), String> {
    let memory = StateMemory::new(16);
    let store = RocksStore::open(std::path::Path::new(dir), &["a".to_string()], &memory)
        .map_err(|e| e.to_string())?;
    let mut seq = store
        .metadata()
        .map_err(|e| e.to_string())?
        .map_or(0, |m| m.committed.seq);
    print_event(&format!("{{\"event\":\"hammer-start\",\"seq\":{seq}}}"));
    loop {
        seq += 1;
        let value = seq.to_string().into_bytes();
        let writes: Vec<StoreWrite> = (0..200)
            .map(|k| StoreWrite {
                store: 0,
                key: format!("key-{k:03}").into_bytes(),
                value: Some(value.clone()),
            })
            .collect();
        let metadata = TaskMetadata {
            committed: Marker {
                seq,
                ..Marker::default()
            },
            ..TaskMetadata::fresh()
        };
        store
            .commit(&writes, &metadata)
            .map_err(|e| e.to_string())?;
    }
}

fn main() -> ExitCode {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,rdkafka=warn")),
        )
        .with_writer(std::io::stderr)
        .try_init();
    let args: Vec<String> = std::env::args().collect();
    let result = match (args.get(1).map(String::as_str), args.get(2)) {
        (Some("run"), Some(path)) => run(path),
        (Some("store-hammer"), Some(dir)) => hammer(dir),
        _ => Err(
            "usage: afregning-processor-testbed run <config.json> | store-hammer <dir>".to_string(),
        ),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::from(2)
        }
    }
}

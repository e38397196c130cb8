//! Logging setup shared by every subcommand.
//!
//! Logs are structured (`tracing`) so that correlation ids (MessageId, GSRN,
//! topic/partition/offset) travel as fields, not as text inside a message.

use clap::ValueEnum;
use tracing_subscriber::EnvFilter;

/// How log lines are written: text for a terminal, JSON for a log pipeline.
#[derive(Clone, Copy, Debug, Default, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines on stderr.
    #[default]
    Text,
    /// One JSON object per line on stderr, for Loki, Elasticsearch and friends.
    Json,
}

/// Installs the global subscriber. `RUST_LOG` overrides the default `info` level.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,rdkafka=warn,sqlx=warn,tower_http=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second init (in tests) is harmless: keep the first subscriber.
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

/// Installs the global subscriber writing to `path` (appended, no colour
/// codes) instead of stderr: for commands whose terminal belongs to people,
/// such as `afregning demo`, which shows progress and a summary there.
pub fn init_to_file(format: LogFormat, path: &std::path::Path) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,rdkafka=warn,sqlx=warn,tower_http=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(std::sync::Mutex::new(file));
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    Ok(())
}

/// Installs the process-wide Prometheus recorder once and returns a renderer
/// for `/metrics`. Every long-running subcommand calls it; a second call
/// returns the same recorder's renderer instead of failing.
pub fn prometheus() -> std::sync::Arc<dyn Fn() -> String + Send + Sync> {
    use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
    static HANDLE: std::sync::OnceLock<Option<PrometheusHandle>> = std::sync::OnceLock::new();
    let handle = HANDLE.get_or_init(|| match PrometheusBuilder::new().install_recorder() {
        Ok(handle) => Some(handle),
        Err(error) => {
            tracing::warn!(%error, "cannot install the Prometheus recorder; /metrics is empty");
            None
        }
    });
    match handle.clone() {
        Some(handle) => std::sync::Arc::new(move || handle.render()),
        None => std::sync::Arc::new(String::new),
    }
}

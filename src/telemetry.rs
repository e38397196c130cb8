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

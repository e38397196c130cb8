//! The API's one use of the broker besides publishing product changes:
//! reading partitions' ends, to turn the sinks' positions into lag. Optional:
//! without `--bootstrap-servers` the API answers from the database alone.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};

/// How long one watermark request may take before the lag is left out.
const WATERMARK_TIMEOUT: Duration = Duration::from_secs(2);

/// A metadata-only client of the broker (no group, no subscription).
#[derive(Clone)]
pub struct Broker {
    consumer: Arc<BaseConsumer>,
}

impl Broker {
    /// A client of the brokers at `bootstrap_servers`; connects lazily.
    pub fn new(bootstrap_servers: &str) -> Result<Self, String> {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", bootstrap_servers)
            .set("client.id", "afregning-api")
            .set("enable.auto.commit", "false")
            .create()
            .map_err(|e| format!("cannot create a broker client for {bootstrap_servers}: {e}"))?;
        Ok(Broker {
            consumer: Arc::new(consumer),
        })
    }

    /// The high watermark of `topic`/`partition` (librdkafka blocks, so off the runtime).
    pub async fn end_offset(&self, topic: &str, partition: i32) -> Result<i64, String> {
        let consumer = self.consumer.clone();
        let topic = topic.to_string();
        tokio::task::spawn_blocking(move || {
            consumer
                .fetch_watermarks(&topic, partition, WATERMARK_TIMEOUT)
                .map(|(_, high)| high)
                .map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| e.to_string())?
    }
}

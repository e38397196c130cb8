//! The API's use of the broker besides publishing product changes: reading
//! partitions' ends, to turn the sinks' positions into lag, and the
//! operator's replay calls (re-submitting dead letters, starting replay runs)
//! on the deployment's topics. Optional: without `--bootstrap-servers` the
//! API answers from the database alone and those calls answer 503.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use afregning_topology::Catalogue;
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};

/// How long one watermark request may take before the lag is left out.
const WATERMARK_TIMEOUT: Duration = Duration::from_secs(2);

/// A metadata-only client of the broker (no group, no subscription), and the
/// deployment's topology (prefix, partitions) the operator's calls act on.
#[derive(Clone)]
pub struct Broker {
    consumer: Arc<BaseConsumer>,
    client: ClientConfig,
    catalogue: Catalogue,
    stop_following: Arc<AtomicBool>,
}

impl Broker {
    /// A client of the brokers at `bootstrap_servers` for the deployment
    /// `catalogue` describes; connects lazily.
    pub fn new(bootstrap_servers: &str, catalogue: &Catalogue) -> Result<Self, String> {
        let mut client = ClientConfig::new();
        client.set("bootstrap.servers", bootstrap_servers);
        let consumer: BaseConsumer = client
            .clone()
            .set("client.id", "afregning-api")
            .set("enable.auto.commit", "false")
            .create()
            .map_err(|e| format!("cannot create a broker client for {bootstrap_servers}: {e}"))?;
        Ok(Broker {
            consumer: Arc::new(consumer),
            client,
            catalogue: catalogue.clone(),
            stop_following: Arc::new(AtomicBool::new(false)),
        })
    }

    /// Set when the API stops: the followers of replay runs it started record
    /// their runs `interrupted` and end, instead of holding the process up.
    pub fn stop_flag(&self) -> &Arc<AtomicBool> {
        &self.stop_following
    }

    /// Tells every follower of a replay run to stop (see [`Broker::stop_flag`]).
    pub fn stop_following(&self) {
        self.stop_following.store(true, Ordering::SeqCst);
    }

    /// The client configuration (bootstrap servers) for clients of their own.
    pub fn client(&self) -> &ClientConfig {
        &self.client
    }

    /// The deployment's topology.
    pub fn catalogue(&self) -> &Catalogue {
        &self.catalogue
    }

    /// The deployment's topic prefix.
    pub fn prefix(&self) -> &str {
        &self.catalogue.settings().prefix
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

//! The API's use of the broker besides publishing product changes: lag (the
//! ends read from the records, [`crate::processor_lag`]) and the operator's
//! replay calls (re-submitting dead letters, starting replay runs)
//! on the deployment's topics. Optional: without `--bootstrap-servers` the
//! API answers from the database alone and those calls answer 503.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use afregning_topology::Catalogue;
use rdkafka::ClientConfig;
use rdkafka::consumer::BaseConsumer;

/// How to reach the broker, and the deployment's topology (prefix,
/// partitions) the operator's calls act on.
#[derive(Clone)]
pub struct Broker {
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
        // A client made once here, so a bad setting fails at start, not at the first call.
        let _: BaseConsumer = client
            .clone()
            .set("client.id", "afregning-api")
            .set("enable.auto.commit", "false")
            .create()
            .map_err(|e| format!("cannot create a broker client for {bootstrap_servers}: {e}"))?;
        Ok(Broker {
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
}

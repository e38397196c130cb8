//! The connector's configuration: one serde struct, unknown keys refused, every default
//! documented. The CLI (`afregning connect run`) fills it from flags and environment
//! variables, or from a JSON file (`--config`).
//!
//! The client secret is a [`Secret`]: it is read from the environment (`DATAHUB_CLIENT_SECRET`)
//! or the file, never printed by `Debug`, never serialized, never logged.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use afregning_topology::TopologySettings;
use serde::{Deserialize, Serialize};

/// One of DataHub's peek queues (message categories).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Queue {
    /// Metered data (RSM-012): `GET /v1.0/cim/timeseries` (DataHub's `measuredata`).
    Timeseries,
    /// Aggregations and wholesale results (RSM-014, RSM-019).
    Aggregations,
    /// Master data and answers to requests.
    MasterData,
    /// Charges and charge links.
    Charges,
}

impl Queue {
    /// Every queue.
    pub const ALL: [Queue; 4] = [
        Queue::Timeseries,
        Queue::Aggregations,
        Queue::MasterData,
        Queue::Charges,
    ];

    /// The URL segment and the label in metrics, logs and record headers.
    pub fn as_str(self) -> &'static str {
        match self {
            Queue::Timeseries => "timeseries",
            Queue::Aggregations => "aggregations",
            Queue::MasterData => "masterdata",
            Queue::Charges => "charges",
        }
    }
}

impl fmt::Display for Queue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A secret that is never printed or serialized.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret, for the one place that sends it (the token request).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("***")
    }
}

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConnectConfig {
    /// DataHub's B2B API and OAuth2.
    pub datahub: DataHubConfig,
    /// Per-queue polling.
    pub queues: QueuesConfig,
    /// Exponential backoff for 5xx, 429, timeouts and transport errors.
    pub retry: BackoffConfig,
    /// Requests per second to DataHub, all queues and outbound together (governor).
    /// Default 20.
    pub requests_per_second: u32,
    /// Broker, registry and topology.
    pub kafka: KafkaConfig,
    /// The inbound-message log.
    pub inbound_log: InboundLogConfig,
    /// Outbound requests (the outbound-requests topic → DataHub → the responses topic).
    pub outbound: OutboundConfig,
    /// Where `/health` and `/metrics` are served. Default `0.0.0.0:9100`.
    pub admin_listen: SocketAddr,
}

impl Default for ConnectConfig {
    fn default() -> Self {
        Self {
            datahub: DataHubConfig::default(),
            queues: QueuesConfig::default(),
            retry: BackoffConfig::default(),
            requests_per_second: 20,
            kafka: KafkaConfig::default(),
            inbound_log: InboundLogConfig::default(),
            outbound: OutboundConfig::default(),
            admin_listen: SocketAddr::from(([0, 0, 0, 0], 9100)),
        }
    }
}

/// DataHub's endpoints and credentials.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DataHubConfig {
    /// B2B base URL, e.g. `https://preprod.b2b.datahub3.dk` (default `http://127.0.0.1:8090`).
    pub base_url: String,
    /// OAuth2 token URL (Entra ID `…/{tenant}/oauth2/v2.0/token`).
    pub token_url: String,
    /// OAuth2 client id (env `DATAHUB_CLIENT_ID`).
    pub client_id: String,
    /// OAuth2 client secret (env `DATAHUB_CLIENT_SECRET`); never logged.
    #[serde(skip_serializing)]
    pub client_secret: Secret,
    /// OAuth2 scope, `{backend-app-id}/.default`.
    pub scope: String,
    /// Per-request timeout in ms (a 15 MB bundle must fit). Default 120,000.
    pub request_timeout_ms: u64,
    /// Connect timeout in ms. Default 10,000.
    pub connect_timeout_ms: u64,
    /// Renew a token this long before it expires (capped at a quarter of its lifetime).
    /// Default 300,000 ms.
    pub renew_before_ms: u64,
}

impl Default for DataHubConfig {
    fn default() -> Self {
        Self {
            base_url: "http://127.0.0.1:8090".into(),
            token_url: "http://127.0.0.1:8090/oauth2/v2.0/token".into(),
            client_id: String::new(),
            client_secret: Secret::default(),
            scope: "datahub/.default".into(),
            request_timeout_ms: 120_000,
            connect_timeout_ms: 10_000,
            renew_before_ms: 300_000,
        }
    }
}

/// One queue's poller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QueueConfig {
    /// Whether to poll this queue. Default true.
    pub enabled: bool,
    /// Wait after an empty queue (204), in ms; doubles per consecutive 204 up to
    /// `idle_max_ms`. A message resets it: a non-empty queue is drained without waiting.
    pub idle_interval_ms: u64,
    /// The longest wait after 204s, in ms.
    pub idle_max_ms: u64,
}

impl QueueConfig {
    /// A poller with these idle waits.
    pub fn every(idle_interval_ms: u64, idle_max_ms: u64) -> Self {
        Self {
            enabled: true,
            idle_interval_ms,
            idle_max_ms,
        }
    }
}

impl Default for QueueConfig {
    fn default() -> Self {
        Self::every(5_000, 60_000)
    }
}

/// The four pollers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QueuesConfig {
    /// RSM-012. Default: 5 s idle, up to 60 s.
    pub timeseries: QueueConfig,
    /// RSM-014/019. Default: 5 s idle, up to 60 s.
    pub aggregations: QueueConfig,
    /// Master data. Default: 5 s idle, up to 60 s.
    pub masterdata: QueueConfig,
    /// Charges. Default: 5 s idle, up to 60 s.
    pub charges: QueueConfig,
}

impl Default for QueuesConfig {
    fn default() -> Self {
        Self::all(QueueConfig::default())
    }
}

impl QueuesConfig {
    /// The same settings for every queue.
    pub fn all(config: QueueConfig) -> Self {
        Self {
            timeseries: config,
            aggregations: config,
            masterdata: config,
            charges: config,
        }
    }

    /// The settings of one queue.
    pub fn get(&self, queue: Queue) -> QueueConfig {
        match queue {
            Queue::Timeseries => self.timeseries,
            Queue::Aggregations => self.aggregations,
            Queue::MasterData => self.masterdata,
            Queue::Charges => self.charges,
        }
    }
}

/// Exponential backoff with full jitter.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BackoffConfig {
    /// First wait, ms. Default 200.
    pub initial_ms: u64,
    /// Longest wait, ms. Default 30,000.
    pub max_ms: u64,
    /// Growth per failure. Default 2.
    pub multiplier: f64,
}

impl Default for BackoffConfig {
    fn default() -> Self {
        Self {
            initial_ms: 200,
            max_ms: 30_000,
            multiplier: 2.0,
        }
    }
}

/// Broker, registry and producer settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KafkaConfig {
    /// Bootstrap servers (env `KAFKA_BOOTSTRAP_SERVERS`). Default `127.0.0.1:9092`.
    pub bootstrap_servers: String,
    /// Schema registry (env `SCHEMA_REGISTRY_URL`); raw-topic keys are Avro.
    pub schema_registry_url: String,
    /// Topic prefix, partitions, … (must match `afregning topology apply`).
    pub topology: TopologySettings,
    /// Largest record (value + key + headers) the connector produces; a bundle part over it
    /// stops its queue rather than being dropped. Default 950,000 (the local broker does not
    /// deliver records over about 1 MB).
    pub max_record_bytes: usize,
    /// librdkafka `linger.ms`. Default 5.
    pub linger_ms: u64,
    /// librdkafka `delivery.timeout.ms`: how long a record may wait for an acknowledgement
    /// before the bundle counts as failed (and is produced again). Default 60,000.
    pub delivery_timeout_ms: u64,
    /// librdkafka `compression.type`. Default `lz4`.
    pub compression: String,
    /// Extra librdkafka producer properties (security, TLS, …).
    pub producer: std::collections::BTreeMap<String, String>,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        Self {
            bootstrap_servers: "127.0.0.1:9092".into(),
            schema_registry_url: "http://127.0.0.1:8081".into(),
            topology: TopologySettings::default(),
            max_record_bytes: 950_000,
            linger_ms: 5,
            delivery_timeout_ms: 60_000,
            compression: "lz4".into(),
            producer: Default::default(),
        }
    }
}

/// The inbound-message log (see [`crate::inbound_log`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InboundLogConfig {
    /// Directory. Default `/var/lib/afregning/inbound`.
    pub dir: PathBuf,
    /// Days of log kept (whole UTC days, by receive date); 0 keeps everything. Default 400:
    /// longer than the raw topics' 90 days, so an auditor can still see a bundle after the
    /// broker dropped it; set it to your audit obligation (bookkeeping: 5 years = 1,830).
    pub retention_days: u32,
    /// gzip level 0-9. Default 1 (fast; JSON compresses ~10× even so).
    pub compression_level: u32,
    /// fsync every file and index line before the message is dequeued. Default true.
    pub fsync: bool,
}

impl Default for InboundLogConfig {
    fn default() -> Self {
        Self {
            dir: PathBuf::from("/var/lib/afregning/inbound"),
            retention_days: 400,
            compression_level: 1,
            fsync: true,
        }
    }
}

/// Outbound requests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OutboundConfig {
    /// Whether to consume the outbound-requests topic. Default true.
    pub enabled: bool,
    /// Consumer group (the topology prefix is prepended). Default `afregning-connect-outbound`.
    pub group_id: String,
    /// POST attempts before a request is recorded as failed. Default 8.
    pub max_attempts: u32,
    /// The portfolio's key file (`afregning_portfolio::personal::Keyring`), to open the
    /// customer data our portfolio requests carry sealed. Default: none, then the keys of
    /// `AFREGNING_PORTFOLIO_KEYS` or `AFREGNING_PORTFOLIO_KEY_FILE`, if set.
    pub portfolio_key_file: Option<std::path::PathBuf>,
    /// PostgreSQL URL of the portfolio's key store, where each customer's own key lives
    /// wrapped by the keyring (decision 0148): our requests seal customer data under it.
    /// Default: none, then `AFREGNING_PORTFOLIO_KEY_STORE_URL` if set; without either, a
    /// request sealed under a customer's key is not sent, with that reason.
    pub portfolio_key_store_url: Option<String>,
}

impl Default for OutboundConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            group_id: "afregning-connect-outbound".into(),
            max_attempts: 8,
            portfolio_key_file: None,
            portfolio_key_store_url: None,
        }
    }
}

impl ConnectConfig {
    /// Checks what serde cannot: URLs, non-zero rates and sizes, a secret.
    pub fn validate(&self) -> Result<(), String> {
        for (name, url) in [
            ("datahub.base_url", &self.datahub.base_url),
            ("datahub.token_url", &self.datahub.token_url),
        ] {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(format!("{name} must be an http(s) URL, got {url:?}"));
            }
        }
        if self.datahub.client_id.is_empty() || self.datahub.client_secret.is_empty() {
            return Err(
                "datahub.client_id and the client secret (DATAHUB_CLIENT_SECRET) are required"
                    .into(),
            );
        }
        if self.requests_per_second == 0 {
            return Err("requests_per_second must be at least 1".into());
        }
        if self.kafka.max_record_bytes < 10_000 {
            return Err("kafka.max_record_bytes must be at least 10,000".into());
        }
        if self.retry.multiplier < 1.0 || self.retry.initial_ms == 0 {
            return Err("retry.multiplier must be >= 1 and retry.initial_ms > 0".into());
        }
        self.kafka.topology.validate().map_err(|e| e.to_string())
    }

    /// The per-request timeout.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.datahub.request_timeout_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_are_refused_and_defaults_fill_the_rest() {
        let config: ConnectConfig = serde_json::from_str(
            r#"{"datahub": {"client_id": "x", "client_secret": "s3cret"}, "queues": {"charges": {"enabled": false}}}"#,
        )
        .expect("parses");
        assert!(!config.queues.charges.enabled);
        assert_eq!(config.queues.timeseries.idle_interval_ms, 5_000);
        assert_eq!(config.admin_listen.port(), 9100);
        assert!(
            serde_json::from_str::<ConnectConfig>(r#"{"datahub": {"clientid": "x"}}"#).is_err()
        );
        assert!(config.validate().is_ok());
    }

    #[test]
    fn the_secret_is_never_printed_or_serialized() {
        let mut config = ConnectConfig::default();
        config.datahub.client_secret = Secret::new("hunter2");
        assert!(!format!("{config:?}").contains("hunter2"));
        assert!(
            !serde_json::to_string(&config)
                .expect("json")
                .contains("hunter2")
        );
    }
}

//! The sinks' configuration: the contract between an operator (flags,
//! environment, a config file) and the sinks. Unknown keys are rejected so a
//! typo does not silently fall back to a default; every default is documented
//! here and in docs/sinks.md.

use std::collections::BTreeMap;
use std::time::Duration;

use afregning_topology::{Catalogue, Component, TopologySettings};
use serde::{Deserialize, Serialize};

use crate::schema::StorageSettings;

/// Settings shared by the database sink and the ERP sink.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SinkConfig {
    /// Kafka bootstrap servers.
    pub bootstrap_servers: String,
    /// Confluent-compatible schema registry.
    pub schema_registry_url: String,
    /// PostgreSQL connection URL (its `search_path` decides the schema).
    pub database_url: String,
    /// Prefix of every topic name (the topology's deployment prefix).
    pub topic_prefix: String,
    /// Partitions per topic, as the topology was applied with: the sinks'
    /// own output (dead letters, ERP statements) is routed with the
    /// topology's partitioner, which needs the count. Default the topology's
    /// default (12).
    pub partitions: u32,
    /// Name of the consumer: the key of its rows in `sink_offset` and
    /// `processed_message`, its Kafka group id (for lag tools) and its
    /// advisory lock. Default `<prefix>afregning.sink-postgres` /
    /// `<prefix>afregning.sink-erp`.
    pub consumer_name: Option<String>,
    /// Flush a batch once it holds this many rows (all tables together).
    /// 20,000 rows keep a batch's transaction short (≈0.1 s) while COPY
    /// amortises its round trips.
    pub batch_max_rows: usize,
    /// Flush a non-empty batch this long after its first record arrived, so
    /// a quiet topic's records still reach the database promptly.
    pub flush_interval_ms: u64,
    /// Writer lanes of the database sink: each owns the partitions whose
    /// number modulo this count is its index, with its own consumers, batch
    /// and database connection, so the database writes that many batches at
    /// once and one lane decodes while another's transaction runs
    /// (docs/decisions/0150). More lanes than partitions leave the extra ones
    /// idle. Default 2 (the day load test's figures, BENCHMARKS.md). The ERP
    /// sink always runs one.
    pub writers: u32,
    /// Records buffered between a lane's Kafka consumers and its writer. When full
    /// (the database is slow or gone), the consumers stop polling until there
    /// is room: the back-pressure that bounds memory.
    pub channel_capacity: usize,
    /// First retry delay after a database failure.
    pub retry_initial_ms: u64,
    /// Longest retry delay.
    pub retry_max_ms: u64,
    /// A batch write taking longer than this is abandoned and retried on a
    /// new connection (a half-open TCP connection never errors by itself).
    pub write_timeout_ms: u64,
    /// How often the lag gauges are refreshed from the consumers' statistics.
    pub stats_interval_ms: u64,
    /// How `metering_series` (behind the `metering_data` view) is stored.
    pub storage: StorageSettings,
    /// Copy each batch's series straight into their month's partition
    /// (inside a savepoint that falls back to the staging table on a series
    /// stored already, a replay) instead of staging every batch
    /// (sinks/BENCHMARKS.md). Default on; off is the staging path, kept to
    /// compare and as a fallback.
    pub metering_direct_copy: bool,
    /// Extra librdkafka settings for the consumers and the producer.
    pub kafka: BTreeMap<String, String>,
}

impl Default for SinkConfig {
    fn default() -> Self {
        Self {
            bootstrap_servers: "127.0.0.1:9092".into(),
            schema_registry_url: "http://127.0.0.1:8081".into(),
            database_url: "postgres://postgres@127.0.0.1:5432/postgres".into(),
            topic_prefix: String::new(),
            partitions: afregning_topology::settings::DEFAULT_PARTITIONS,
            consumer_name: None,
            batch_max_rows: 20_000,
            flush_interval_ms: 500,
            writers: 2,
            channel_capacity: 2_048,
            retry_initial_ms: 200,
            retry_max_ms: 10_000,
            write_timeout_ms: 120_000,
            stats_interval_ms: 5_000,
            storage: StorageSettings::default(),
            metering_direct_copy: true,
            kafka: BTreeMap::new(),
        }
    }
}

/// A configuration that cannot work.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A number is out of range.
    #[error("{0}")]
    Invalid(String),
    /// The topic prefix is not a valid topology prefix.
    #[error("topic prefix: {0}")]
    Topology(#[from] afregning_topology::settings::SettingsError),
}

impl SinkConfig {
    /// Checks the numbers.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.batch_max_rows == 0 {
            return Err(ConfigError::Invalid(
                "batch_max_rows must be at least 1".into(),
            ));
        }
        if !(1..=64).contains(&self.writers) {
            return Err(ConfigError::Invalid(
                "writers must be between 1 and 64".into(),
            ));
        }
        if self.channel_capacity == 0 {
            return Err(ConfigError::Invalid(
                "channel_capacity must be at least 1".into(),
            ));
        }
        if self.flush_interval_ms == 0 {
            return Err(ConfigError::Invalid(
                "flush_interval_ms must be at least 1".into(),
            ));
        }
        if self.retry_initial_ms == 0 || self.retry_max_ms < self.retry_initial_ms {
            return Err(ConfigError::Invalid(
                "retry_initial_ms must be positive and at most retry_max_ms".into(),
            ));
        }
        Ok(())
    }

    /// The topology catalogue for the prefix and partition count: what the
    /// codec routes the sinks' own records with.
    pub fn catalogue(&self) -> Result<Catalogue, ConfigError> {
        Ok(Catalogue::new(TopologySettings {
            partitions: self.partitions,
            ..TopologySettings::with_prefix(self.topic_prefix.clone())
        })?)
    }

    /// The consumer name for a sink component.
    pub fn consumer_name_for(&self, component: Component) -> String {
        self.consumer_name
            .clone()
            .unwrap_or_else(|| format!("{}afregning.{}", self.topic_prefix, component.name()))
    }

    /// `flush_interval_ms` as a duration.
    pub fn flush_interval(&self) -> Duration {
        Duration::from_millis(self.flush_interval_ms)
    }

    /// `write_timeout_ms` as a duration.
    pub fn write_timeout(&self) -> Duration {
        Duration::from_millis(self.write_timeout_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_config_file_parses_with_defaults_and_rejects_typos() {
        let config: SinkConfig = serde_json::from_str(
            r#"{"batch_max_rows": 5000, "storage": {"timescale": "required", "retention_months": null}}"#,
        )
        .unwrap();
        assert_eq!(config.batch_max_rows, 5000);
        assert_eq!(config.flush_interval_ms, 500);
        assert_eq!(
            config.storage.timescale,
            crate::schema::TimescaleMode::Required
        );
        assert_eq!(config.storage.retention_months, None);
        assert!(serde_json::from_str::<SinkConfig>(r#"{"batch_max_row": 1}"#).is_err());
        assert!(
            serde_json::from_str::<SinkConfig>(r#"{"storage": {"timescale": "maybe"}}"#).is_err()
        );
    }

    #[test]
    fn validation_refuses_numbers_that_cannot_work() {
        assert!(SinkConfig::default().validate().is_ok());
        for bad in [
            SinkConfig {
                batch_max_rows: 0,
                ..SinkConfig::default()
            },
            SinkConfig {
                channel_capacity: 0,
                ..SinkConfig::default()
            },
            SinkConfig {
                retry_initial_ms: 100,
                retry_max_ms: 10,
                ..SinkConfig::default()
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn consumer_names_carry_the_prefix() {
        let config = SinkConfig {
            topic_prefix: "t1.".into(),
            ..SinkConfig::default()
        };
        assert_eq!(
            config.consumer_name_for(Component::PostgresSink),
            "t1.afregning.sink-postgres"
        );
        assert_eq!(
            config.consumer_name_for(Component::ErpSink),
            "t1.afregning.sink-erp"
        );
    }
}

//! The runtime's configuration: a serde contract (unknown fields are errors,
//! every default documented), shared by every processor.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::runtime::error::RuntimeError;

/// How the group spreads tasks over instances.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum AssignmentStrategy {
    /// Incremental (KIP-429): only moved tasks pause. The default, as issue 7 asks.
    #[default]
    CooperativeSticky,
    /// Eager `range`: every rebalance revokes every task (they restore from
    /// their local stores at once). The fallback where a broker's cooperative
    /// protocol misbehaves.
    Range,
}

impl AssignmentStrategy {
    /// librdkafka's `partition.assignment.strategy` value.
    pub fn as_librdkafka(self) -> &'static str {
        match self {
            AssignmentStrategy::CooperativeSticky => "cooperative-sticky",
            AssignmentStrategy::Range => "range",
        }
    }
}

/// How the producer compresses outputs, changelog records and markers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Compression {
    /// lz4: cheap, and worth it where bytes cross a network and are stored three times
    /// (the default, for Kafka).
    #[default]
    Lz4,
    /// zstd: smaller, costlier.
    Zstd,
    /// None: where the broker is on the same machine (loopback), compression is CPU spent for
    /// nothing: on the month load test the four processors spent 14-19 % less CPU without
    /// it (processors/BENCHMARKS.md). The local-broker settings use it.
    None,
}

impl Compression {
    /// librdkafka's `compression.type` value.
    pub fn as_librdkafka(self) -> &'static str {
        match self {
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
            Compression::None => "none",
        }
    }
}

/// Where a task starts reading an input topic it has no stored offset for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum StartFrom {
    /// The earliest retained record (default: a new processor processes history).
    #[default]
    Earliest,
    /// Only records written from now on.
    Latest,
}

/// Settings of the processor runtime.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RuntimeConfig {
    /// Kafka bootstrap servers. Default `127.0.0.1:9092`.
    pub bootstrap_servers: String,
    /// Prefix of the deployment's topic names (`afregning-topology`'s
    /// `TopologySettings::prefix`), used for changelog topics and the default
    /// group. Default empty.
    pub topic_prefix: String,
    /// Consumer group. Default `<topic_prefix>afregning.<processor>`.
    pub group_id: Option<String>,
    /// Static group membership (`group.instance.id`, KIP-345): an instance
    /// that restarts within the session timeout gets its tasks back at once,
    /// without a rebalance. Give each instance a stable, unique id (e.g. the
    /// pod name of a StatefulSet). Default none (dynamic membership).
    pub group_instance_id: Option<String>,
    /// Directory of the local state stores; each task's RocksDB lives at
    /// `<state_dir>/<group>/<task>/`. Default `state`.
    pub state_dir: PathBuf,
    /// Commit a task's batch at the latest this long after its first
    /// uncommitted record. A batch is committed sooner, as soon as every
    /// record fetched so far is in it (the input consumer's queue ran
    /// empty), so this is the fallback under continuous load: it bounds how
    /// long records wait while batches keep growing. Default 200 ms.
    pub commit_interval_ms: u64,
    /// Commit as soon as this many records wait, across tasks (also bounds
    /// the records held in memory between commits). Default 5000.
    pub batch_max_records: usize,
    /// Memory budget of all state stores of the process (RocksDB block cache
    /// with memtables charged to it), in MiB. Default 256.
    pub state_memory_mb: usize,
    /// Pre-fetched input kept by the consumer (`queued.max.messages.kbytes`,
    /// and the most one fetch response may carry, `fetch.max.bytes`, up to
    /// librdkafka's 50 MB). A full queue is fetched again 10 ms after the
    /// processor took from it (`runtime/clients.rs`). Default 16384 (16 MiB).
    pub consumer_queue_kbytes: usize,
    /// Produced records awaiting acknowledgement at most. Default 20000.
    pub max_in_flight_records: usize,
    /// How many tasks' batches of a checkpoint round are processed at once,
    /// each on its own blocking thread, for a processor that makes an
    /// instance per task ([`crate::runtime::Processor::task_instance`]); the
    /// others process a round's batches in turn. `0`: as many as the machine
    /// has cores. Default 0.
    pub processing_threads: usize,
    /// The input consumer's `fetch.wait.max.ms`: how long the broker may hold
    /// a fetch that has no data yet. On Kafka it only bounds an idle wait, so
    /// the default suits production. Tansu 0.6.0 holds *every* fetch this
    /// long, data or not (docs/processors-runtime.md, "Local-broker gaps"), so
    /// on the local broker each hop waits it out: use about 10 there.
    /// Default 100.
    pub fetch_wait_max_ms: u64,
    /// The producer's `linger.ms` (outputs, changelog records, markers). A
    /// commit round enqueues all its records before awaiting them, so a
    /// round batches without lingering; each round awaits two sends (outputs,
    /// then markers), so a hop pays this twice. Default 1.
    pub linger_ms: u64,
    /// The producer's compression (`none`, `lz4`, `zstd`). Default `lz4`; the
    /// local-broker settings use `none`.
    pub compression: Compression,
    /// Group assignment strategy. Default `cooperative-sticky`.
    pub assignment_strategy: AssignmentStrategy,
    /// Group session timeout: how long a silent instance keeps its tasks.
    /// Default 10000 ms.
    pub session_timeout_ms: u64,
    /// An input partition with lag that delivers nothing for this long is
    /// re-sought to its stored offset (and reported). Default 15000 ms.
    pub stall_timeout_ms: u64,
    /// How often lag is measured (and stalls detected). Default 5000 ms.
    pub lag_check_interval_ms: u64,
    /// Commit the group's offsets after each batch, for lag monitoring only
    /// (they are never read back as the truth). Default true.
    pub commit_group_offsets: bool,
    /// Create missing changelog topics (with the inputs' partition count and
    /// the catalogue's changelog configs). Production creates them with
    /// `afregning topology apply`; this is for processors the catalogue does
    /// not declare (the runtime's own tests). Default false: a missing
    /// changelog stops the start with a message saying so.
    pub create_changelog_topics: bool,
    /// Replication factor of changelog topics this runtime creates. Default 1
    /// (the local broker); use 3 in production.
    pub changelog_replication_factor: i32,
    /// Where a task without stored offsets starts. Default `earliest`.
    pub start_from: StartFrom,
    /// Changelog records applied per restore chunk (a chunk is one atomic
    /// write with the restore's progress). Default 10000.
    pub restore_chunk_records: usize,
    /// Extra librdkafka settings applied to every client (e.g. security).
    pub kafka: BTreeMap<String, String>,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            bootstrap_servers: "127.0.0.1:9092".to_string(),
            topic_prefix: String::new(),
            group_id: None,
            group_instance_id: None,
            state_dir: PathBuf::from("state"),
            commit_interval_ms: 200,
            batch_max_records: 5000,
            state_memory_mb: 256,
            consumer_queue_kbytes: 16 * 1024,
            max_in_flight_records: 20_000,
            processing_threads: 0,
            fetch_wait_max_ms: 100,
            linger_ms: 1,
            compression: Compression::default(),
            assignment_strategy: AssignmentStrategy::default(),
            session_timeout_ms: 10_000,
            stall_timeout_ms: 15_000,
            lag_check_interval_ms: 5_000,
            commit_group_offsets: true,
            create_changelog_topics: false,
            changelog_replication_factor: 1,
            start_from: StartFrom::default(),
            restore_chunk_records: 10_000,
            kafka: BTreeMap::new(),
        }
    }
}

impl RuntimeConfig {
    /// The consumer group of `processor`.
    pub fn group(&self, processor: &str) -> String {
        self.group_id
            .clone()
            .unwrap_or_else(|| format!("{}afregning.{processor}", self.topic_prefix))
    }

    /// Checks the values that would otherwise fail late or silently.
    pub fn validate(&self) -> Result<(), RuntimeError> {
        let fail = |m: &str| Err(RuntimeError::Config(m.to_string()));
        if self.bootstrap_servers.trim().is_empty() {
            return fail("bootstrap_servers is empty");
        }
        if self.batch_max_records == 0 {
            return fail("batch_max_records must be at least 1");
        }
        if self.commit_interval_ms == 0 {
            return fail("commit_interval_ms must be at least 1");
        }
        if self.state_memory_mb < 8 {
            return fail("state_memory_mb must be at least 8");
        }
        if self.max_in_flight_records == 0 || self.restore_chunk_records == 0 {
            return fail("max_in_flight_records and restore_chunk_records must be at least 1");
        }
        if self.stall_timeout_ms < self.lag_check_interval_ms {
            return fail("stall_timeout_ms must be at least lag_check_interval_ms");
        }
        if self.session_timeout_ms < 1000 {
            return fail("session_timeout_ms must be at least 1000");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_document_gives_the_documented_defaults() {
        let config: RuntimeConfig = serde_json::from_str("{}").expect("parses");
        assert_eq!(config, RuntimeConfig::default());
        assert_eq!(
            config.assignment_strategy,
            AssignmentStrategy::CooperativeSticky
        );
        assert_eq!(config.commit_interval_ms, 200);
        assert_eq!(config.state_memory_mb, 256);
        assert_eq!(config.compression, Compression::Lz4);
        config.validate().expect("defaults are valid");
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let error =
            serde_json::from_str::<RuntimeConfig>(r#"{"comit_interval_ms": 5}"#).unwrap_err();
        assert!(error.to_string().contains("unknown field"), "{error}");
    }

    #[test]
    fn strategies_use_librdkafka_names() {
        let config: RuntimeConfig =
            serde_json::from_str(r#"{"assignment_strategy": "range"}"#).expect("parses");
        assert_eq!(config.assignment_strategy.as_librdkafka(), "range");
        assert_eq!(
            AssignmentStrategy::CooperativeSticky.as_librdkafka(),
            "cooperative-sticky"
        );
    }

    #[test]
    fn the_default_group_follows_the_prefix() {
        let config = RuntimeConfig {
            topic_prefix: "dev.".to_string(),
            ..RuntimeConfig::default()
        };
        assert_eq!(config.group("enrich"), "dev.afregning.enrich");
        let explicit = RuntimeConfig {
            group_id: Some("g".to_string()),
            ..config
        };
        assert_eq!(explicit.group("enrich"), "g");
    }

    #[test]
    fn nonsense_values_are_refused() {
        for bad in [
            RuntimeConfig {
                batch_max_records: 0,
                ..RuntimeConfig::default()
            },
            RuntimeConfig {
                state_memory_mb: 1,
                ..RuntimeConfig::default()
            },
            RuntimeConfig {
                stall_timeout_ms: 10,
                ..RuntimeConfig::default()
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
    }
}

//! Deployment settings of the topology: what differs between a laptop, a test
//! and production, and nothing else.
//!
//! Everything that is part of the product (which topics exist, their cleanup
//! policy, their schemas, who writes and reads them) lives in the catalogue and
//! is not configurable. What an operator may choose per deployment is here: a
//! name prefix (tests run many pipelines on one broker), the partition count,
//! the replication factor and the retention of raw and stream topics.

use serde::{Deserialize, Serialize};

/// Partition count used when a deployment does not choose one: enough for a
/// dozen consumer instances per processor and for spreading Denmark's ~100 grid
/// areas, small enough for a local broker.
pub const DEFAULT_PARTITIONS: u32 = 12;

/// Raw DataHub topics must hold at least a settlement window, so a month can be
/// recomputed from what DataHub sent: the month itself plus the wholesale
/// fixing and correction period that follows it.
pub const DEFAULT_RAW_RETENTION_DAYS: u32 = 90;

/// Typed streams are derived from the raw topics and can be rebuilt from them,
/// so they keep a month and a few days: long enough for a consumer that was
/// down over a long weekend at month end to catch up.
pub const DEFAULT_STREAM_RETENTION_DAYS: u32 = 35;

/// Longest topic name Kafka accepts.
pub const MAX_TOPIC_NAME_LEN: usize = 249;

/// Deployment settings: a name prefix, partitions, replication and retention.
///
/// Read from a config file with serde (unknown keys rejected so a typo does not
/// silently fall back to a default) or from command-line flags.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TopologySettings {
    /// Prepended to every topic name and hence to every schema subject, e.g.
    /// `t3f9a1c2e.` in a test or `staging.` on a shared cluster. Empty in
    /// production.
    pub prefix: String,
    /// Partitions of every topic. All topics share one count so that keyed
    /// topics are co-partitioned and a changelog always matches its input.
    /// Changing it on a live cluster moves keys between partitions: see
    /// `docs/topology.md` before you do.
    pub partitions: u32,
    /// Replicas of every partition: 1 on a local broker, 3 in production.
    pub replication_factor: u16,
    /// Retention of the raw DataHub topics, in days (at least a settlement window).
    pub raw_retention_days: u32,
    /// Retention of typed and settlement streams, in days.
    pub stream_retention_days: u32,
}

impl Default for TopologySettings {
    fn default() -> Self {
        Self {
            prefix: String::new(),
            partitions: DEFAULT_PARTITIONS,
            replication_factor: 1,
            raw_retention_days: DEFAULT_RAW_RETENTION_DAYS,
            stream_retention_days: DEFAULT_STREAM_RETENTION_DAYS,
        }
    }
}

/// Why settings were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    /// The prefix contains a character Kafka does not allow in topic names.
    #[error("prefix {0:?} may only contain ASCII letters, digits, '.', '_' and '-'")]
    InvalidPrefix(String),
    /// The prefix makes some topic name longer than Kafka allows.
    #[error("prefix {prefix:?} makes topic {topic:?} longer than {MAX_TOPIC_NAME_LEN} characters")]
    PrefixTooLong {
        /// The prefix.
        prefix: String,
        /// The first topic name that became too long.
        topic: String,
    },
    /// A numeric setting is out of range.
    #[error("{setting} must be {expected}, got {actual}")]
    OutOfRange {
        /// Which setting.
        setting: &'static str,
        /// The allowed range, in words.
        expected: &'static str,
        /// The value given.
        actual: u64,
    },
}

impl TopologySettings {
    /// Default settings with a name prefix: what a test uses with its
    /// `TestEnv::namespace`.
    pub fn with_prefix(prefix: impl Into<String>) -> Self {
        Self {
            prefix: prefix.into(),
            ..Self::default()
        }
    }

    /// Checks the settings, so a bad value is refused before any topic is created.
    pub fn validate(&self) -> Result<(), SettingsError> {
        if !self
            .prefix
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        {
            return Err(SettingsError::InvalidPrefix(self.prefix.clone()));
        }
        let ranges: [(&'static str, &'static str, u64, u64, u64); 4] = [
            (
                "partitions",
                "between 1 and 10000",
                1,
                10_000,
                u64::from(self.partitions),
            ),
            (
                "replication_factor",
                "between 1 and 32",
                1,
                32,
                u64::from(self.replication_factor),
            ),
            (
                "raw_retention_days",
                "between 1 and 36500",
                1,
                36_500,
                u64::from(self.raw_retention_days),
            ),
            (
                "stream_retention_days",
                "between 1 and 36500",
                1,
                36_500,
                u64::from(self.stream_retention_days),
            ),
        ];
        for (setting, expected, min, max, actual) in ranges {
            if actual < min || actual > max {
                return Err(SettingsError::OutOfRange {
                    setting,
                    expected,
                    actual,
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_documented_ones() {
        let settings = TopologySettings::default();
        assert_eq!(settings.prefix, "");
        assert_eq!(settings.partitions, 12);
        assert_eq!(settings.replication_factor, 1);
        assert!(
            settings.raw_retention_days >= 90,
            "raw topics must hold a settlement window"
        );
        assert!(settings.validate().is_ok());
    }

    #[test]
    fn settings_parse_from_json_with_defaults_and_reject_unknown_keys() {
        let parsed: TopologySettings =
            serde_json::from_str(r#"{"prefix":"staging.","partitions":24}"#).expect("parses");
        assert_eq!(parsed.prefix, "staging.");
        assert_eq!(parsed.partitions, 24);
        assert_eq!(parsed.raw_retention_days, DEFAULT_RAW_RETENTION_DAYS);
        assert!(serde_json::from_str::<TopologySettings>(r#"{"partition":24}"#).is_err());
    }

    #[test]
    fn bad_values_are_refused() {
        assert!(matches!(
            TopologySettings::with_prefix("has space.").validate(),
            Err(SettingsError::InvalidPrefix(_))
        ));
        let zero = TopologySettings {
            partitions: 0,
            ..TopologySettings::default()
        };
        assert!(matches!(
            zero.validate(),
            Err(SettingsError::OutOfRange {
                setting: "partitions",
                ..
            })
        ));
    }
}

//! Which partition a record goes to: Kafka's murmur2, applied to a routing
//! string we choose rather than to the serialized key.
//!
//! # The function
//!
//! ```text
//! partition = toPositive(murmur2(utf8(routing_key))) % partitions
//! toPositive(h) = h & 0x7fffffff
//! ```
//!
//! `murmur2` is exactly `org.apache.kafka.common.utils.Utils.murmur2` (seed
//! `0x9747b28c`), the hash Kafka's default partitioner applies to a record's
//! key bytes. So a Java producer reproduces our placement with
//! `Utils.toPositive(Utils.murmur2(key.getBytes(UTF_8))) % n`, and a Python one
//! with kafka-python's `murmur2` and the same mask.
//!
//! # Why a routing string and not the key bytes
//!
//! Our keys are Avro in Confluent's wire format, whose first five bytes are a
//! magic byte and the *registry's* schema id. Hashing those bytes would put the
//! same GSRN on different partitions in two environments, and move every key
//! the day the key schema evolves. So producers compute the partition from the
//! routing string and pass it explicitly (`BaseRecord::partition`,
//! `FutureRecord::partition`); [`crate::codec::Codec::encode`] does it for them.
//!
//! # What is routed by what
//!
//! - Topics partitioned by key ([`Partitioning::ByKey`]) hash the key's
//!   [`TopicKey::routing_key`]: the GSRN for readings, metering points and
//!   charge links (so they are co-partitioned for the enrich join), the
//!   MessageId on raw topics (the grid area is not known yet), the charge's
//!   `owner:type:code` for charge information and prices, and so on.
//! - Topics partitioned by grid area ([`Partitioning::ByGridArea`]) hash the
//!   record's three-digit grid area code, so every metering point of a grid
//!   area lands on one partition and a settlement run of one grid area reads
//!   only that partition ([`partition_for_grid_area`]).

use crate::catalogue::{Partitioning, TopicSpec};
use crate::records::{TopicKey, TopicValue};

/// Kafka's murmur2 (`Utils.murmur2`), bit for bit, returning Java's signed `int`.
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let length = data.len();
    let mut h: u32 = SEED ^ (length as u32);
    let chunks = data.chunks_exact(4);
    let tail = chunks.remainder();
    for chunk in chunks {
        let mut k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    // Java's switch falls through from case 3 to case 1.
    if tail.len() >= 3 {
        h ^= u32::from(tail[2]) << 16;
    }
    if tail.len() >= 2 {
        h ^= u32::from(tail[1]) << 8;
    }
    if !tail.is_empty() {
        h ^= u32::from(tail[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// Kafka's `Utils.toPositive`: clears the sign bit (not `abs`, which would
/// overflow on `i32::MIN` and differ from Java).
pub fn to_positive(n: i32) -> i32 {
    n & 0x7fff_ffff
}

/// The partition Kafka's default partitioner would choose for these key bytes.
pub fn partition_for_bytes(bytes: &[u8], partitions: u32) -> i32 {
    assert!(partitions > 0, "a topic has at least one partition");
    let partitions = i32::try_from(partitions).unwrap_or(i32::MAX);
    to_positive(murmur2(bytes)) % partitions
}

/// The partition of a routing string (GSRN, MessageId, ...) on a topic with
/// `partitions` partitions.
pub fn partition_for_key(routing_key: &str, partitions: u32) -> i32 {
    partition_for_bytes(routing_key.as_bytes(), partitions)
}

/// The partition of every record of a grid area (its three-digit code, e.g.
/// `"740"`) on a topic partitioned by grid area.
pub fn partition_for_grid_area(grid_area: &str, partitions: u32) -> i32 {
    partition_for_bytes(grid_area.trim().as_bytes(), partitions)
}

/// The partitions a settlement run of these grid areas must read, sorted and
/// without duplicates.
pub fn partitions_for_grid_areas<'a>(
    grid_areas: impl IntoIterator<Item = &'a str>,
    partitions: u32,
) -> Vec<i32> {
    let mut out: Vec<i32> = grid_areas
        .into_iter()
        .map(|area| partition_for_grid_area(area, partitions))
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// Why a record could not be given a partition.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PartitionError {
    /// The topic is partitioned by grid area but the record does not know its grid area.
    #[error("{topic} is partitioned by grid area, but the record has none")]
    MissingGridArea {
        /// The topic.
        topic: String,
    },
    /// The topic is a changelog: the processor runtime chooses its partition.
    #[error("{topic} is a changelog: write to the partition of the input the state belongs to")]
    ChosenByRuntime {
        /// The topic.
        topic: String,
    },
}

/// The partition for a record on a topic, according to the topic's partitioning.
pub fn partition_for_record<K: TopicKey, V: TopicValue>(
    topic: &TopicSpec,
    key: &K,
    value: &V,
) -> Result<i32, PartitionError> {
    match topic.partitioning {
        Partitioning::ByKey => Ok(partition_for_key(&key.routing_key(), topic.partitions)),
        Partitioning::ByGridArea => value
            .partition_grid_area()
            .map(|area| partition_for_grid_area(area, topic.partitions))
            .ok_or_else(|| PartitionError::MissingGridArea {
                topic: topic.name.clone(),
            }),
        Partitioning::LikeInput => Err(PartitionError::ChosenByRuntime {
            topic: topic.name.clone(),
        }),
    }
}

/// The partition for a key alone (tombstones on compacted tables, which are
/// all partitioned by key).
pub fn partition_for_key_only<K: TopicKey>(
    topic: &TopicSpec,
    key: &K,
) -> Result<i32, PartitionError> {
    match topic.partitioning {
        Partitioning::ByKey => Ok(partition_for_key(&key.routing_key(), topic.partitions)),
        Partitioning::ByGridArea => Err(PartitionError::MissingGridArea {
            topic: topic.name.clone(),
        }),
        Partitioning::LikeInput => Err(PartitionError::ChosenByRuntime {
            topic: topic.name.clone(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalogue::{Catalogue, TopicId};
    use crate::records::examples;

    /// Apache Kafka's own vectors (`UtilsTest.testMurmur2`): signed Java ints.
    const KAFKA_VECTORS: &[(&[u8], i32)] = &[
        (b"21", -973_932_308),
        (b"foobar", -790_332_482),
        (b"a-little-bit-long-string", -985_981_536),
        (b"a-little-bit-longer-string", -1_486_304_829),
        (
            b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
            -58_897_971,
        ),
        (b"abc", 479_470_107),
    ];

    #[test]
    fn murmur2_matches_kafka_utils_test() {
        for (input, expected) in KAFKA_VECTORS {
            assert_eq!(
                murmur2(input),
                *expected,
                "murmur2({:?})",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn to_positive_masks_the_sign_bit_like_java() {
        assert_eq!(to_positive(-790_332_482), 1_357_151_166);
        assert_eq!(to_positive(i32::MIN), 0);
        assert_eq!(to_positive(5), 5);
        // The Java client's partition for "foobar" over 50 partitions.
        assert_eq!(partition_for_key("foobar", 50), 16);
    }

    /// Pinned placements over 12 partitions, computed with Java `int`
    /// arithmetic (a transcription of `Utils.murmur2`/`toPositive` run on the
    /// JVM, see `docs/topology.md`): if this fails, the function changed and
    /// every deployed topic would be read from the wrong partitions.
    #[test]
    fn the_function_is_stable() {
        let pinned: &[(&str, i32, i32)] = &[
            // (input, Java murmur2, partition of 12)
            ("740", 1_687_115_076, 0),
            ("131", -348_705_236, 0),
            ("344", -1_488_000_377, 3),
            ("791", 906_269_639, 11),
            ("571313180400000028", 1_758_619_472, 8),
        ];
        for (input, hash, partition) in pinned {
            assert_eq!(murmur2(input.as_bytes()), *hash, "murmur2({input})");
            assert_eq!(partition_for_key(input, 12), *partition, "{input}");
        }
        assert_eq!(partition_for_grid_area("740", 12), 0);
        assert_eq!(
            partition_for_grid_area(" 344 ", 12),
            3,
            "surrounding blanks are not part of the code"
        );
        assert_eq!(partition_for_key(examples::GSRN, 12), 8);
    }

    #[test]
    fn every_record_of_a_grid_area_lands_on_one_partition() {
        let catalogue = Catalogue::default_settings();
        let topic = catalogue.spec(TopicId::EnrichedReadings).unwrap();
        let mut reading = examples::enriched_reading();
        let expected = partition_for_grid_area("740", topic.partitions);
        for n in 0..500u64 {
            // 500 different metering points in grid area 740, keyed by their own GSRN.
            let gsrn = format!("5713131804{n:08}");
            reading.reading.gsrn = gsrn.clone();
            let key = crate::records::MeteringPointKey { gsrn };
            assert_eq!(
                partition_for_record(topic, &key, &reading).unwrap(),
                expected
            );
        }
        // And their readings (partitioned by GSRN) spread over many partitions.
        let readings = catalogue.spec(TopicId::Readings).unwrap();
        let spread: std::collections::BTreeSet<i32> = (0..500u64)
            .map(|n| {
                let key = crate::records::MeteringPointKey {
                    gsrn: format!("5713131804{n:08}"),
                };
                partition_for_record(readings, &key, &examples::reading()).unwrap()
            })
            .collect();
        assert_eq!(spread.len(), 12, "GSRN routing uses all partitions");
    }

    #[test]
    fn a_grid_area_run_reads_only_its_partitions() {
        assert_eq!(
            partitions_for_grid_areas(["740", "791", "740", "344"], 12),
            vec![0, 3, 11]
        );
    }

    #[test]
    fn changelogs_and_missing_grid_areas_are_refused() {
        let catalogue = Catalogue::default_settings();
        let changelog = catalogue
            .changelog(crate::catalogue::Component::Aggregate, "days")
            .unwrap();
        assert!(matches!(
            partition_for_record(
                changelog,
                &examples::metering_point_key(),
                &examples::enriched_reading()
            ),
            Err(PartitionError::ChosenByRuntime { .. })
        ));
        let by_area = catalogue.spec(TopicId::DailyAggregates).unwrap();
        assert!(matches!(
            partition_for_key_only(by_area, &examples::daily_aggregate_key()),
            Err(PartitionError::MissingGridArea { .. })
        ));
    }
}

//! Topic catalogue, grid-area partitioner, Avro schemas and the
//! apply/verify/describe commands: the only place topic names live.
//!
//! Every topic, its partitioning, retention, compaction and schema is part of
//! the product: downstream systems consume the settlement topics and operators
//! replay the raw ones, and a wrong partition count or an incompatible schema
//! change silently breaks both. This crate makes them code, and makes drift
//! visible:
//!
//! - [`catalogue`]: every topic, typed ([`TopicSpec`]), from a fixed
//!   definition plus deployment [`settings`] (prefix, partitions, replication,
//!   retention); the state-store changelogs come from [`catalogue::STORES`].
//! - [`topics`]: typed handles (`topics::READINGS: Topic<MeteringPointKey, Reading>`),
//!   the way producers and consumers elsewhere name a topic.
//! - [`records`]: the Rust key and value types, each bound to its `.avsc`
//!   ([`schemas`]) and checked against it field by field.
//! - [`processors`]: each processor declared once (inputs, global tables, outputs).
//! - [`partitioner`]: Kafka's murmur2 over a routing string (GSRN, MessageId,
//!   grid area), reproducible in Java and Python.
//! - [`codec`]: Confluent wire format through `schema_registry_converter`,
//!   plus the partition: one call from a record to an rdkafka record.
//! - [`admin`]: `apply` (create and register, idempotently) and `verify`
//!   (compare, with differences, unverifiable checks and notices kept apart).
//! - [`describe`]: the catalogue as a table and a Mermaid diagram.
//! - [`raw_headers`]: the header names on the raw DataHub topics.
//! - [`read_to_end`]: the client context of consumers that read partitions to their end.
//!
//! See `docs/topology.md` for the conventions and `docs/decisions/0030`–`0039`
//! for why they are what they are.

pub mod admin;
pub mod catalogue;
pub mod codec;
pub mod control;
pub mod describe;
pub mod partitioner;
pub mod processors;
pub mod raw_headers;
pub mod read_to_end;
pub mod records;
pub mod schemas;
pub mod settings;
pub mod topics;

pub use admin::{Admin, ApplyReport, Finding, Severity, VerifyReport};
pub use catalogue::{Catalogue, Component, STORES, StoreSpec, TopicId, TopicKind, TopicSpec};
pub use codec::{Codec, CodecError, EncodedRecord};
pub use partitioner::{murmur2, partition_for_grid_area, partition_for_key};
pub use schemas::SchemaFile;
pub use settings::TopologySettings;
pub use topics::Topic;

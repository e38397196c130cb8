//! Serializers for every topic: Avro in Confluent's wire format through
//! `schema_registry_converter`, raw bytes on the raw topics, and the partition
//! from [`crate::partitioner`].
//!
//! Producers call [`Codec::encode`] and hand the [`EncodedRecord`] to rdkafka;
//! consumers call [`Codec::decode_key`] and [`Codec::decode_value`]. Nothing
//! else in the project needs to know a topic name, a subject or a schema id.
//!
//! Encoding registers (or finds) the catalogue's exact schema under the
//! topic's subject (`TopicNameStrategyWithSchema`), so a record is always
//! written with the schema this binary was built with, never with whatever
//! happens to be "latest". Decoding reads the writer's schema by the id in the
//! record and then resolves the value to the catalogue's schema (Avro schema
//! resolution: new fields take their defaults, removed ones are dropped), so a
//! consumer reads records written by older and newer producers alike.
//!
//! Records written with exactly the catalogue's schema (the common case: this
//! project's own producers) skip that generic tree: the codec asks the
//! registry once per schema id whether the writer schema is the catalogue's,
//! and if so reads the datum with [`TopicValue::from_datum`] (the direct
//! codecs for the hot records, `records::direct`), which reads what the
//! generic path reads. Anything the fast path does not accept (another
//! writer schema, a malformed header or datum, bytes after the datum) goes
//! down the generic path unchanged, so every error is the one it always was.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use apache_avro::types::Value;
use rdkafka::producer::{BaseRecord, FutureRecord};
use schema_registry_converter::async_impl::easy_avro::{EasyAvroDecoder, EasyAvroEncoder};
use schema_registry_converter::async_impl::schema_registry::{SrSettings, get_schema_by_id};
use schema_registry_converter::schema_registry_common::{
    RegisteredSchema, SchemaType, SubjectNameStrategy, SuppliedSchema,
};

use crate::catalogue::Catalogue;
use crate::partitioner::{PartitionError, partition_for_key_only, partition_for_record};
use crate::records::avro::widen_decimals;
use crate::records::{DatumError, Payload, RecordError, TopicKey, TopicValue};
use crate::schemas::SchemaFile;
use crate::topics::Topic;

/// Why a record could not be encoded or decoded.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// The Rust value and the schema disagree.
    #[error(transparent)]
    Record(#[from] RecordError),
    /// The registry refused or could not be reached.
    #[error("schema registry, subject {subject}: {message}")]
    Registry {
        /// The subject involved, or `by id` when decoding.
        subject: String,
        /// The registry client's error.
        message: String,
        /// Whether retrying may help (network, 5xx).
        retriable: bool,
    },
    /// The writer's schema cannot be resolved to the catalogue's.
    #[error(
        "{schema}: a record written with another schema cannot be read with this one: {message}"
    )]
    Resolution {
        /// The reader schema.
        schema: &'static str,
        /// Why.
        message: String,
    },
    /// No partition for the record.
    #[error(transparent)]
    Partition(#[from] PartitionError),
    /// A record without a key on a topic whose keys are required.
    #[error("{topic}: the record has no key")]
    MissingKey {
        /// The topic.
        topic: String,
    },
}

impl CodecError {
    /// Whether retrying the same call may succeed (the registry was unreachable).
    pub fn is_retriable(&self) -> bool {
        matches!(
            self,
            CodecError::Registry {
                retriable: true,
                ..
            }
        )
    }
}

/// A record ready for rdkafka: topic, explicit partition, key and payload
/// (`None` is a tombstone).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedRecord {
    /// Full topic name.
    pub topic: String,
    /// The partition the partitioner chose.
    pub partition: i32,
    /// Key bytes (Confluent wire format).
    pub key: Vec<u8>,
    /// Value bytes, or `None` for a tombstone.
    pub payload: Option<Vec<u8>>,
}

impl EncodedRecord {
    /// A `BaseRecord` with the partition set, for `BaseProducer`/`ThreadedProducer`.
    pub fn as_base_record(&self) -> BaseRecord<'_, [u8], [u8]> {
        let record = BaseRecord::to(&self.topic)
            .key(&self.key[..])
            .partition(self.partition);
        match &self.payload {
            Some(payload) => record.payload(&payload[..]),
            None => record,
        }
    }

    /// A `FutureRecord` with the partition set, for `FutureProducer`.
    pub fn as_future_record(&self) -> FutureRecord<'_, [u8], [u8]> {
        let record = FutureRecord::to(&self.topic)
            .key(&self.key[..])
            .partition(self.partition);
        match &self.payload {
            Some(payload) => record.payload(&payload[..]),
            None => record,
        }
    }
}

/// Why bytes are not Confluent's wire format (magic byte 0, a 4-byte
/// big-endian schema id, then the Avro datum).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FramingError {
    /// No bytes at all.
    #[error("empty")]
    Empty,
    /// The first byte is not Confluent's magic byte 0.
    #[error("magic byte {0}, expected 0")]
    MagicByte(u8),
    /// Fewer bytes than the header.
    #[error("{0} bytes, shorter than the 5-byte header")]
    Short(usize),
}

/// The writer schema id and the datum of Confluent wire-format bytes. Why
/// here: the codec's fast path and the processors' `Wire` read the same
/// header, declared once.
pub fn split_wire_format(bytes: &[u8]) -> Result<(u32, &[u8]), FramingError> {
    match bytes {
        [0, a, b, c, d, datum @ ..] => Ok((u32::from_be_bytes([*a, *b, *c, *d]), datum)),
        [] => Err(FramingError::Empty),
        [m, ..] if *m != 0 => Err(FramingError::MagicByte(*m)),
        _ => Err(FramingError::Short(bytes.len())),
    }
}

/// Encodes and decodes the records of every topic against one registry.
/// Cheap to clone; share one per process (it caches schema ids).
#[derive(Clone)]
pub struct Codec {
    catalogue: Arc<Catalogue>,
    encoder: EasyAvroEncoder,
    decoder: EasyAvroDecoder,
    strategies: Arc<HashMap<String, SubjectNameStrategy>>,
    registry_url: Option<Arc<str>>,
    registry: SrSettings,
    /// Per writer schema id seen: the catalogue schema it is exactly, if any
    /// (shared by every clone, so each id is looked up once per process).
    writers: Arc<RwLock<HashMap<u32, Option<SchemaFile>>>>,
}

impl std::fmt::Debug for Codec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Codec")
            .field("prefix", &self.catalogue.settings().prefix)
            .finish_non_exhaustive()
    }
}

/// The registry payload for a schema file: its exact text, named.
pub fn supplied_schema(file: SchemaFile) -> SuppliedSchema {
    SuppliedSchema::new(
        Some(file.full_name().to_string()),
        SchemaType::Avro,
        file.registry_text().to_string(),
    )
}

/// The writer schema with registry id `id`, parsed. Why a free function on
/// a URL: the processors' wire calls it from its own runtime when a record
/// carries a schema id this build did not register (a producer's newer or
/// older version), once per id; it makes its own client (10 s timeout), so
/// it works from any runtime. A registry that cannot be reached is
/// `CodecError::Registry { retriable: true, .. }`; an unknown id or a schema
/// that does not parse is not retriable.
pub async fn fetch_writer_schema(
    registry_url: &str,
    id: u32,
) -> Result<apache_avro::Schema, CodecError> {
    let subject = format!("schema id {id}");
    let settings = SrSettings::new_builder(registry_url.to_string())
        .set_timeout(std::time::Duration::from_secs(10))
        .build()
        .map_err(|e| registry_error(&subject, e))?;
    let registered = get_schema_by_id(id, &settings)
        .await
        .map_err(|e| registry_error(&subject, e))?;
    if registered.schema_type != SchemaType::Avro {
        return Err(CodecError::Registry {
            subject,
            message: format!("a {:?} schema, not Avro", registered.schema_type),
            retriable: false,
        });
    }
    apache_avro::Schema::parse_str(&registered.schema).map_err(|e| CodecError::Registry {
        subject,
        message: format!("the registered schema does not parse: {e}"),
        retriable: false,
    })
}

/// The catalogue schema a registered schema is exactly (same parsed schema,
/// docs, defaults and logical types included), if any: then its datums are
/// read with the direct codecs. Why parsed and not the text: a registry may
/// store the text reformatted.
fn catalogue_file_of(registered: &RegisteredSchema) -> Option<SchemaFile> {
    if registered.schema_type != SchemaType::Avro || !registered.references.is_empty() {
        return None;
    }
    let parsed = apache_avro::Schema::parse_str(&registered.schema).ok()?;
    let apache_avro::Schema::Record(record) = &parsed else {
        return None;
    };
    let name = record.name.fullname(None);
    let file = SchemaFile::ALL
        .iter()
        .copied()
        .find(|f| f.full_name() == name)?;
    let writer = serde_json::to_value(&parsed).ok()?;
    let reader = serde_json::to_value(file.schema()).ok()?;
    (writer == reader).then_some(file)
}

fn registry_error(subject: &str, error: schema_registry_converter::error::SRCError) -> CodecError {
    CodecError::Registry {
        subject: subject.to_string(),
        message: error.to_string(),
        retriable: error.retriable,
    }
}

impl Codec {
    /// A codec for this catalogue and registry URL.
    pub fn new(catalogue: Catalogue, registry_url: &str) -> Self {
        let url = registry_url.trim_end_matches('/');
        Self {
            registry_url: Some(url.into()),
            ..Self::with_registry(catalogue, SrSettings::new(url.to_string()))
        }
    }

    /// A codec with explicit registry settings (authentication, timeouts).
    pub fn with_registry(catalogue: Catalogue, registry: SrSettings) -> Self {
        let strategies = catalogue
            .subjects()
            .into_iter()
            .map(|s| {
                let strategy = SubjectNameStrategy::TopicNameStrategyWithSchema(
                    s.topic.clone(),
                    s.is_key,
                    supplied_schema(s.schema),
                );
                (s.subject, strategy)
            })
            .collect();
        Self {
            catalogue: Arc::new(catalogue),
            encoder: EasyAvroEncoder::new(registry.clone()),
            decoder: EasyAvroDecoder::new(registry.clone()),
            strategies: Arc::new(strategies),
            registry_url: None,
            registry,
            writers: Arc::default(),
        }
    }

    /// The registry's base URL when the codec was made from one
    /// ([`Codec::new`]): the processors' synchronous wire looks writer
    /// schemas up there ([`fetch_writer_schema`]).
    pub fn registry_url(&self) -> Option<&str> {
        self.registry_url.as_deref()
    }

    /// The catalogue the codec names topics from.
    pub fn catalogue(&self) -> &Catalogue {
        &self.catalogue
    }

    /// The full name of a topic in this deployment.
    pub fn topic_name<K: TopicKey, V: TopicValue>(&self, topic: Topic<K, V>) -> &str {
        topic.name(&self.catalogue)
    }

    async fn encode_avro(&self, subject: &str, value: Value) -> Result<Vec<u8>, CodecError> {
        let strategy = self
            .strategies
            .get(subject)
            .ok_or_else(|| CodecError::Registry {
                subject: subject.to_string(),
                message: "the catalogue has no such subject".into(),
                retriable: false,
            })?;
        self.encoder
            .encode_value(value, strategy)
            .await
            .map_err(|e| registry_error(subject, e))
    }

    /// The key bytes of a record.
    pub async fn encode_key<K: TopicKey, V: TopicValue>(
        &self,
        topic: Topic<K, V>,
        key: &K,
    ) -> Result<Vec<u8>, CodecError> {
        let spec = topic.spec(&self.catalogue);
        let subject = spec.key_subject().unwrap_or_default();
        self.encode_avro(&subject, key.to_avro()?).await
    }

    /// The value bytes of a record.
    pub async fn encode_value<K: TopicKey, V: TopicValue>(
        &self,
        topic: Topic<K, V>,
        value: &V,
    ) -> Result<Vec<u8>, CodecError> {
        let spec = topic.spec(&self.catalogue);
        match value.to_payload()? {
            Payload::Raw(bytes) => Ok(bytes),
            Payload::Avro(avro) => {
                let subject = spec.value_subject().unwrap_or_default();
                self.encode_avro(&subject, avro).await
            }
        }
    }

    /// A complete record: topic name, partition, key and value bytes.
    pub async fn encode<K: TopicKey, V: TopicValue>(
        &self,
        topic: Topic<K, V>,
        key: &K,
        value: &V,
    ) -> Result<EncodedRecord, CodecError> {
        let spec = topic.spec(&self.catalogue);
        let partition = partition_for_record(spec, key, value)?;
        Ok(EncodedRecord {
            topic: spec.name.clone(),
            partition,
            key: self.encode_key(topic, key).await?,
            payload: Some(self.encode_value(topic, value).await?),
        })
    }

    /// A tombstone (delete) for a key of a table topic.
    pub async fn encode_tombstone<K: TopicKey, V: TopicValue>(
        &self,
        topic: Topic<K, V>,
        key: &K,
    ) -> Result<EncodedRecord, CodecError> {
        let spec = topic.spec(&self.catalogue);
        let partition = partition_for_key_only(spec, key)?;
        Ok(EncodedRecord {
            topic: spec.name.clone(),
            partition,
            key: self.encode_key(topic, key).await?,
            payload: None,
        })
    }

    /// The catalogue schema writer schema `id` is exactly, looked up in the
    /// registry the first time and remembered. A registry that cannot be
    /// reached is not remembered: `None` now (the generic path then reports
    /// it as it always did), asked again next time.
    async fn writer_file(&self, id: u32) -> Option<SchemaFile> {
        let known = self
            .writers
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&id)
            .copied();
        if let Some(known) = known {
            return known;
        }
        let file = match get_schema_by_id(id, &self.registry).await {
            Ok(registered) => catalogue_file_of(&registered),
            Err(e) if e.retriable => return None,
            Err(_) => None,
        };
        self.writers
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id, file);
        file
    }

    /// The datum of `bytes` when they were written with exactly the
    /// catalogue's `file`; `None` sends the caller down the generic path.
    async fn own_datum<'b>(&self, file: SchemaFile, bytes: &'b [u8]) -> Option<&'b [u8]> {
        let (id, datum) = split_wire_format(bytes).ok()?;
        (self.writer_file(id).await? == file).then_some(datum)
    }

    /// The record read by `read` from the datum of `bytes`, when they were
    /// written with exactly `file` and `read` consumes the whole datum;
    /// `None` for the generic path (which also gives every error).
    async fn read_own<T>(
        &self,
        file: SchemaFile,
        bytes: &[u8],
        read: impl FnOnce(&mut &[u8]) -> Result<T, DatumError>,
    ) -> Option<T> {
        let mut datum = self.own_datum(file, bytes).await?;
        let record = read(&mut datum).ok()?;
        datum.is_empty().then_some(record)
    }

    async fn decode_avro(&self, bytes: &[u8], reader: SchemaFile) -> Result<Value, CodecError> {
        let decoded = self
            .decoder
            .decode(Some(bytes))
            .await
            .map_err(|e| registry_error("by id", e))?;
        widen_decimals(decoded.value)
            .resolve(reader.schema())
            .map_err(|e| CodecError::Resolution {
                schema: reader.full_name(),
                message: e.to_string(),
            })
    }

    /// The key of a consumed record: read directly when written with the
    /// catalogue's key schema, else as [`Self::decode_key_generic`].
    pub async fn decode_key<K: TopicKey, V: TopicValue>(
        &self,
        topic: Topic<K, V>,
        bytes: Option<&[u8]>,
    ) -> Result<K, CodecError> {
        if let Some(bytes) = bytes
            && let Some(key) = self.read_own(K::SCHEMA, bytes, K::read_datum).await
        {
            return Ok(key);
        }
        self.decode_key_generic(topic, bytes).await
    }

    /// The key of a consumed record through the generic `Value` tree and
    /// schema resolution, whatever the writer schema. Why public: tests and
    /// benches compare [`Self::decode_key`] with it.
    pub async fn decode_key_generic<K: TopicKey, V: TopicValue>(
        &self,
        topic: Topic<K, V>,
        bytes: Option<&[u8]>,
    ) -> Result<K, CodecError> {
        let bytes = bytes.ok_or_else(|| CodecError::MissingKey {
            topic: topic.name(&self.catalogue).to_string(),
        })?;
        let value = self.decode_avro(bytes, K::SCHEMA).await?;
        Ok(K::from_avro(value)?)
    }

    /// The value of a consumed record; `None` for a tombstone. Read directly
    /// ([`TopicValue::from_datum`]) when written with the catalogue's value
    /// schema, else as [`Self::decode_value_generic`], which also gives every
    /// error.
    pub async fn decode_value<K: TopicKey, V: TopicValue>(
        &self,
        topic: Topic<K, V>,
        bytes: Option<&[u8]>,
    ) -> Result<Option<V>, CodecError> {
        if let (Some(file), Some(bytes)) = (V::schema(), bytes)
            && let Some(value) = self.read_own(file, bytes, V::from_datum).await
        {
            return Ok(Some(value));
        }
        self.decode_value_generic(topic, bytes).await
    }

    /// The value of a consumed record through the generic `Value` tree and
    /// schema resolution, whatever the writer schema (raw topics: the bytes).
    /// Why public: tests and benches compare [`Self::decode_value`] with it.
    pub async fn decode_value_generic<K: TopicKey, V: TopicValue>(
        &self,
        _topic: Topic<K, V>,
        bytes: Option<&[u8]>,
    ) -> Result<Option<V>, CodecError> {
        let Some(bytes) = bytes else {
            return Ok(None);
        };
        let payload = match V::schema() {
            None => Payload::Raw(bytes.to_vec()),
            Some(file) => Payload::Avro(self.decode_avro(bytes, file).await?),
        };
        Ok(Some(V::from_payload(payload)?))
    }

    /// Whether [`Self::decode_value`] reads these value bytes directly: the
    /// header names a writer schema that is exactly the catalogue's value
    /// schema of the topic. Why: tests prove the fast path is taken, not
    /// only that the result is right.
    pub async fn reads_value_directly<K: TopicKey, V: TopicValue>(
        &self,
        _topic: Topic<K, V>,
        bytes: &[u8],
    ) -> bool {
        match V::schema() {
            Some(file) => self.own_datum(file, bytes).await.is_some(),
            None => false,
        }
    }
}

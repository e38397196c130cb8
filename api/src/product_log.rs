//! The supplier's products topic as the API uses it (decision 0130): the
//! API is its one writer, settle reads it as a global table.
//!
//! The topic is compacted and keyed by product id (UTF-8 bytes); a value is
//! one [`Product`] with every version, as JSON (the shape of the
//! `--product-catalogue` file's products). Reads go to the log itself, from
//! the beginning to each partition's end as fetches report it
//! (`enable.partition.eof`, decision 0057), so what the API shows is what
//! settle reads, never a copy. Writes are serialised in this process so a
//! change reads, edits and publishes one product without losing a concurrent
//! edit of it; run one API instance that changes products.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use afregning_processors::settle::products::{
    ASSIGNMENTS_PREFIX, DEFAULT_PRODUCT_KEY, DefaultProduct, Entry, decode_entry,
};
use afregning_settlement::{Product, ProductAssignment};
use afregning_topology::Catalogue;
use afregning_topology::catalogue::TopicId;
use afregning_topology::partitioner::partition_for_key;
use afregning_topology::read_to_end::ReadToEndContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use tokio::sync::{Mutex, MutexGuard};

/// How long reading the topic to its end may take.
const READ_TIMEOUT: Duration = Duration::from_secs(15);
/// How long the broker has to acknowledge a change.
const SEND_TIMEOUT: Duration = Duration::from_secs(15);

/// Where a change landed: the broker's acknowledgement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// Partition of the products topic.
    pub partition: i32,
    /// Offset there.
    pub offset: i64,
}

/// The products topic of one deployment.
#[derive(Clone)]
pub struct ProductLog {
    inner: Arc<Inner>,
}

struct Inner {
    bootstrap_servers: String,
    topic: String,
    partitions: u32,
    producer: FutureProducer,
    changes: Mutex<()>,
}

impl ProductLog {
    /// The products topic of `catalogue` (its prefix and partitions) on the
    /// brokers at `bootstrap_servers`; connects lazily.
    pub fn new(bootstrap_servers: &str, catalogue: &Catalogue) -> Result<Self, String> {
        let spec = catalogue
            .spec(TopicId::Products)
            .map_err(|e| e.to_string())?;
        let producer: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", bootstrap_servers)
            .set("client.id", "afregning-api-products")
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .create()
            .map_err(|e| format!("cannot create a producer for {bootstrap_servers}: {e}"))?;
        Ok(ProductLog {
            inner: Arc::new(Inner {
                bootstrap_servers: bootstrap_servers.to_string(),
                topic: spec.name.clone(),
                partitions: spec.partitions,
                producer,
                changes: Mutex::new(()),
            }),
        })
    }

    /// The topic's full name.
    pub fn topic(&self) -> &str {
        &self.inner.topic
    }

    /// Held by a change from reading the product to the broker's ack.
    pub async fn lock(&self) -> MutexGuard<'_, ()> {
        self.inner.changes.lock().await
    }

    /// Every product on the topic, the latest record per id (a record that is
    /// not a product is skipped and logged; settle skips it too).
    pub async fn read(&self) -> Result<BTreeMap<String, Product>, String> {
        Ok(self.read_all().await?.products)
    }

    /// Everything on the topic: products, assignments per metering point and
    /// the default product, the latest record per key.
    pub async fn read_all(&self) -> Result<TopicState, String> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || read_to_end(&inner))
            .await
            .map_err(|e| e.to_string())?
    }

    /// Publishes `product` under its id and waits for the broker's acknowledgement.
    pub async fn publish(&self, product: &Product) -> Result<Position, String> {
        let payload = serde_json::to_vec(product).map_err(|e| e.to_string())?;
        self.publish_record(&product.id, &payload).await
    }

    /// Publishes every product assignment of metering point `gsrn` (replacing
    /// the ones before; empty: none) and waits for the acknowledgement.
    pub async fn publish_assignments(
        &self,
        gsrn: &str,
        periods: &[ProductAssignment],
    ) -> Result<Position, String> {
        let payload = serde_json::to_vec(periods).map_err(|e| e.to_string())?;
        self.publish_record(&format!("{ASSIGNMENTS_PREFIX}{gsrn}"), &payload)
            .await
    }

    /// Publishes the default product and waits for the acknowledgement.
    pub async fn publish_default(&self, product_id: &str) -> Result<Position, String> {
        let payload = serde_json::to_vec(&DefaultProduct {
            product_id: product_id.to_string(),
        })
        .map_err(|e| e.to_string())?;
        self.publish_record(DEFAULT_PRODUCT_KEY, &payload).await
    }

    async fn publish_record(&self, key: &str, payload: &[u8]) -> Result<Position, String> {
        let partition = partition_for_key(key, self.inner.partitions);
        let record = FutureRecord::to(&self.inner.topic)
            .partition(partition)
            .key(key.as_bytes())
            .payload(payload);
        let delivery = self
            .inner
            .producer
            .send(record, SEND_TIMEOUT)
            .await
            .map_err(|(e, _)| format!("the broker did not take the product change: {e}"))?;
        Ok(Position {
            partition: delivery.partition,
            offset: delivery.offset,
        })
    }
}

fn read_to_end(inner: &Inner) -> Result<TopicState, String> {
    let consumer: BaseConsumer<ReadToEndContext> = ClientConfig::new()
        .set("bootstrap.servers", &inner.bootstrap_servers)
        .set("group.id", "afregning-api-products")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .set("fetch.wait.max.ms", "100")
        .create_with_context(ReadToEndContext)
        .map_err(|e| format!("cannot create a consumer: {e}"))?;
    let partitions = inner.partitions as i32;
    let mut assignment = TopicPartitionList::new();
    for partition in 0..partitions {
        assignment
            .add_partition_offset(&inner.topic, partition, Offset::Beginning)
            .map_err(|e| e.to_string())?;
    }
    consumer.assign(&assignment).map_err(|e| e.to_string())?;
    let mut open: BTreeSet<i32> = (0..partitions).collect();
    let mut state = TopicState::default();
    let deadline = Instant::now() + READ_TIMEOUT;
    while !open.is_empty() {
        if Instant::now() > deadline {
            return Err(format!(
                "{}: partitions {open:?} not read to their end within {READ_TIMEOUT:?}",
                inner.topic
            ));
        }
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(message)) => {
                let key = message.key().unwrap_or_default();
                match message.payload() {
                    None => state.remove(&String::from_utf8_lossy(key)),
                    Some(bytes) => match decode_entry(key, bytes) {
                        Ok(entry) => state.apply(entry),
                        Err(reason) => tracing::warn!(
                            topic = %inner.topic,
                            partition = message.partition(),
                            offset = message.offset(),
                            %reason,
                            "a record on the products topic is not used"
                        ),
                    },
                }
            }
            Some(Err(KafkaError::PartitionEOF(partition))) => {
                open.remove(&partition);
            }
            Some(Err(error)) => tracing::debug!(topic = %inner.topic, %error, "products reader"),
            None => {}
        }
    }
    Ok(state)
}

/// What the products topic holds, the latest record per key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TopicState {
    /// Products by id.
    pub products: BTreeMap<String, Product>,
    /// Product assignments per metering point.
    pub assignments: BTreeMap<String, Vec<ProductAssignment>>,
    /// The default product, when the topic sets one.
    pub default_product: Option<String>,
}

impl TopicState {
    fn apply(&mut self, entry: Entry) {
        match entry {
            Entry::Product(p) => {
                self.products.insert(p.id.clone(), p);
            }
            Entry::Assignments { gsrn, periods } => {
                self.assignments.insert(gsrn, periods);
            }
            Entry::Default(id) => self.default_product = Some(id),
        }
    }

    fn remove(&mut self, key: &str) {
        if let Some(gsrn) = key.strip_prefix(ASSIGNMENTS_PREFIX) {
            self.assignments.remove(gsrn);
        } else if key == DEFAULT_PRODUCT_KEY {
            self.default_product = None;
        } else {
            self.products.remove(key);
        }
    }
}

//! What the tests whose API uses the broker share: the harness with the
//! topology applied and a broker configured, validate running in the test's
//! process, its group's committed offsets, and raw records it cannot read.

use std::sync::Arc;
use std::time::Duration;

use afregning_api::AppState;
use afregning_api::broker::Broker;
use afregning_processors::pipeline::{self, PipelineSettings, Which};
use afregning_topology::{Catalogue, Codec, raw_headers};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};

use super::Harness;

/// The seeded harness with its API replaced by one that has the broker and
/// the topology (`partitions` per topic) applied under the test's prefix.
pub async fn harness(label: &str, partitions: u32) -> anyhow::Result<(Harness, Catalogue)> {
    let mut h = Harness::start(label).await?;
    let catalogue = h.apply_topology(partitions).await?;
    let broker = Broker::new(&h.env.bootstrap_servers, &catalogue).map_err(anyhow::Error::msg)?;
    h.respawn(AppState {
        pool: h.pool.clone(),
        render_metrics: Arc::new(String::new),
        authenticator: super::authenticator().await,
        broker: Some(broker),
        supplier_gln: None,
        connector_metrics_url: None,
        portfolio_keys: None,
        products: None,
    })
    .await?;
    Ok((h, catalogue))
}

/// Produces a record validate cannot read (`payload`, DataHub MessageId
/// `id`) to `topic[partition]`; its offset.
pub async fn produce_raw(
    h: &Harness,
    topic: &str,
    partition: i32,
    id: &str,
    payload: &str,
) -> anyhow::Result<i64> {
    let producer: FutureProducer = h.env.kafka_config().create()?;
    let headers = OwnedHeaders::new()
        .insert(Header {
            key: raw_headers::MESSAGE_ID,
            value: Some(id),
        })
        .insert(Header {
            key: raw_headers::QUEUE,
            value: Some("timeseries"),
        });
    let delivered = producer
        .send(
            FutureRecord::to(topic)
                .partition(partition)
                .key(id)
                .payload(payload)
                .headers(headers),
            Duration::from_secs(10),
        )
        .await
        .map_err(|(e, _)| e)?;
    Ok(delivered.offset)
}

/// `processor`'s committed offset of `topic[partition]` in its group (-1: none).
pub async fn committed(
    h: &Harness,
    processor: &str,
    topic: &str,
    partition: i32,
) -> anyhow::Result<i64> {
    let group = format!("{}afregning.{processor}", h.env.namespace);
    let config = h.env.kafka_config();
    let topic = topic.to_string();
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = config
            .clone()
            .set("group.id", &group)
            .set("enable.auto.commit", "false")
            .create()?;
        let mut list = rdkafka::TopicPartitionList::new();
        list.add_partition(&topic, partition);
        let committed = consumer.committed_offsets(list, Duration::from_secs(10))?;
        Ok(committed
            .find_partition(&topic, partition)
            .and_then(|p| p.offset().to_raw())
            .unwrap_or(-1))
    })
    .await?
}

/// validate running in this process until [`Running::stop`].
pub struct Running {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), pipeline::PipelineError>>,
    _state: tempfile::TempDir,
}

impl Running {
    /// Stops it and waits for it to end.
    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(());
        self.task.await??;
        Ok(())
    }
}

/// Starts validate on `catalogue`'s topics (quick settings, state in a temporary directory).
pub async fn run_validate(h: &Harness, catalogue: &Catalogue) -> anyhow::Result<Running> {
    let state = tempfile::tempdir()?;
    let codec = Codec::new(catalogue.clone(), &h.env.registry_url);
    let topics = pipeline::topics(catalogue.clone(), &codec).await?;
    let settings = PipelineSettings::quick(
        &h.env.bootstrap_servers,
        &h.env.namespace,
        &state.path().join("state"),
        "5790000000005",
        serde_json::from_str(include_str!("../../../deploy/product-catalogue.json"))?,
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(pipeline::run_one(
        Which::Validate,
        topics,
        settings,
        pipeline::Watch::default(),
        async move {
            let _ = stopped.await;
        },
    ));
    Ok(Running {
        stop,
        task,
        _state: state,
    })
}

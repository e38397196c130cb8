//! The read model's projector (`afregning portfolio project`): reads the events topic from its
//! beginning, folds each metering point's state event by event, and writes the state after
//! each event into the read model ([`crate::read_model::project`]).
//!
//! No consumer offsets: the fold needs every event of a metering point, so every start reads
//! the topic from the beginning (in memory: the portfolio's states). What the tables already
//! hold is skipped without a database call (the stored versions are read once at start), and
//! [`crate::read_model::project`] ignores an event at or below the stored version anyway, so
//! a restart, a re-delivery or two projectors at once write each row once. A gap in a metering
//! point's sequence numbers is an error that stops the projector: the state would be wrong.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::time::Duration;

use futures::StreamExt;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use sqlx::PgPool;

use crate::event::Event;
use crate::ids::Gln;
use crate::read_model;
use crate::state::MeteringPoint;

/// Where the projector reads.
#[derive(Debug, Clone)]
pub struct ProjectorConfig {
    /// Kafka bootstrap servers.
    pub bootstrap_servers: String,
    /// The events topic (with the deployment's prefix).
    pub topic: String,
    /// Its partition count.
    pub partitions: u32,
    /// Our GLN (whose supply a process starts or ends, as in the processor).
    pub us: Gln,
}

/// What a projector run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Projected {
    /// Events read.
    pub events: u64,
    /// Events written to the read model.
    pub written: u64,
    /// Events the tables already held (skipped).
    pub already: u64,
}

/// Projects until `shutdown` resolves; `on_progress` sees the running totals after each
/// event (for `/metrics` and tests). `Err` on a sequence gap or an unreadable event.
pub async fn run<F>(
    pool: &PgPool,
    config: &ProjectorConfig,
    mut on_progress: impl FnMut(&Projected) + Send,
    shutdown: F,
) -> Result<Projected, String>
where
    F: Future<Output = ()> + Send,
{
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", &config.bootstrap_servers)
        .set("group.id", "afregning-portfolio-projector")
        .set("enable.auto.commit", "false")
        .create()
        .map_err(|e| format!("cannot create the consumer: {e}"))?;
    let mut partitions = TopicPartitionList::new();
    for p in 0..config.partitions {
        partitions
            .add_partition_offset(&config.topic, p as i32, Offset::Beginning)
            .map_err(|e| e.to_string())?;
    }
    consumer
        .assign(&partitions)
        .map_err(|e| format!("cannot read {}: {e}", config.topic))?;
    let stored = stored_versions(pool).await?;
    let mut states: HashMap<String, MeteringPoint> = HashMap::new();
    let mut done = Projected::default();
    let mut stream = consumer.stream();
    tokio::pin!(shutdown);
    loop {
        let message = tokio::select! {
            () = &mut shutdown => break,
            next = stream.next() => match next {
                Some(Ok(m)) => m,
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "portfolio projector: consumer error");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                }
                None => break,
            },
        };
        let event: Event =
            serde_json::from_slice(message.payload().unwrap_or_default()).map_err(|e| {
                format!(
                    "{}[{}]@{} is not a portfolio event: {e}",
                    config.topic,
                    message.partition(),
                    message.offset()
                )
            })?;
        done.events += 1;
        let gsrn = event.metering_point.to_string();
        let state = states
            .remove(&gsrn)
            .unwrap_or_else(|| MeteringPoint::new(event.metering_point, config.us.clone()));
        let state = match next_state(state, &event)? {
            Next::Applied(state) => state,
            Next::Repeated(state) => {
                states.insert(gsrn, state);
                continue;
            }
        };
        let held = stored.get(&gsrn).copied().unwrap_or(0);
        if i64::try_from(event.sequence).unwrap_or(i64::MAX) <= held {
            done.already += 1;
        } else if read_model::project(pool, &state, &event)
            .await
            .map_err(|e| format!("writing the read model of {gsrn}: {e}"))?
        {
            done.written += 1;
        } else {
            done.already += 1;
        }
        states.insert(gsrn, state);
        on_progress(&done);
    }
    Ok(done)
}

/// The state after `event`, or the state unchanged for a repeated event.
enum Next {
    Applied(MeteringPoint),
    Repeated(MeteringPoint),
}

fn next_state(state: MeteringPoint, event: &Event) -> Result<Next, String> {
    if event.sequence <= state.version {
        return Ok(Next::Repeated(state));
    }
    if event.sequence != state.version + 1 {
        return Err(format!(
            "metering point {}: event {} follows event {}; the events topic has a gap",
            event.metering_point, event.sequence, state.version
        ));
    }
    Ok(Next::Applied(state.apply(event)))
}

async fn stored_versions(pool: &PgPool) -> Result<BTreeMap<String, i64>, String> {
    let rows: Vec<(String, i64)> =
        sqlx::query_as("SELECT metering_point, version FROM portfolio_metering_points")
            .fetch_all(pool)
            .await
            .map_err(|e| format!("reading the read model (run `afregning sink migrate`?): {e}"))?;
    Ok(rows.into_iter().collect())
}

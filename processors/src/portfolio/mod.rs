//! The portfolio processor: the one writer of each metering point's portfolio events
//! (docs/portfolio.md, decision 0145).
//!
//! It reads the commands topic (`TopicId::PortfolioCommands`, key = GSRN): the
//! operator's requests and cancellations (`afregning portfolio request|cancel`) and
//! DataHub's answers and notifications, which validate maps from the raw MasterData topic
//! ([`afregning_portfolio::answers`]). Each command is decided against the state it keeps
//! ([`afregning_portfolio::decide`], pure); the event goes to the events topic, and a request
//! of ours also goes out as its CIM document (RSM-001, RSM-005, RSM-003, RSM-027; RSM-024 for
//! our cancellation) on the outbound-requests topic, which the
//! connector posts to DataHub ([`afregning_portfolio::outbound`]; personal data as sealed
//! placeholders the connector opens). A command the rules refuse is a dead letter with the
//! refusal's code and text: an operator sees why, nothing is dropped.
//!
//! At each tick, the processes whose day came take effect (`TakeEffect`, the day in
//! Europe/Copenhagen). Only metering points with a pending process are looked at.
//!
//! Effectively once, like every processor of the runtime: the state, the marks and the
//! outputs of a batch commit together; after a crash the batch is decided again from the
//! same state, giving the same events with the same sequence numbers (readers skip a
//! sequence they have), and the same outbound message id (DataHub refuses a repeated one).

pub mod inbox;
mod state;

use std::time::Duration;

use afregning_portfolio::intake::{due, has_pending};
use afregning_portfolio::outbound::{cancellation_document, request_document};
use afregning_portfolio::{
    Change, Command, CommandMeta, CommandRecord, Event, Gln, MeteringPoint, decide,
};
use afregning_settlement::calendar::local_date;
use afregning_topology::catalogue::{Component, TopicId};
use afregning_topology::partitioner::partition_for_key;
use afregning_topology::records::{
    ErrorClass, OutboundDocumentType, OutboundRequest, OutboundRequestKey,
};
use afregning_topology::topics;
use chrono::{DateTime, Utc};

pub use self::state::STATE_STORE;
use self::state::{PENDING, POINTS, PointKey, StoredPoint};
use crate::runtime::{Context, InputRecord, OutputRecord, ProcessError, Processor, StoreSpec};
use crate::shared::Topics;
use crate::shared::dead_letter::reject;

/// The processor's name: changelogs, group, metrics.
pub const NAME: &str = Component::Portfolio.name();

/// Settings of the portfolio processor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortfolioConfig {
    /// Our GLN: the sender of our requests, and whose supply a process starts or ends.
    pub us: Gln,
    /// How often due processes are looked for.
    pub tick_interval: Duration,
}

/// The portfolio processor.
#[derive(Debug, Clone)]
pub struct Portfolio {
    topics: Topics,
    config: PortfolioConfig,
}

impl Portfolio {
    /// The processor for a deployment's topics.
    pub fn new(topics: Topics, config: PortfolioConfig) -> Self {
        Self { topics, config }
    }

    fn topic(&self, id: TopicId) -> Result<(String, u32), ProcessError> {
        let spec = self
            .topics
            .catalogue
            .spec(id)
            .map_err(|e| ProcessError::caused_by("the catalogue has no such topic", e))?;
        Ok((spec.name.clone(), spec.partitions))
    }

    fn state(
        &self,
        ctx: &Context<'_>,
        gsrn: afregning_cim::Gsrn,
    ) -> Result<MeteringPoint, ProcessError> {
        Ok(POINTS
            .get(ctx, &PointKey(gsrn.to_string()))?
            .map_or_else(|| MeteringPoint::new(gsrn, self.config.us.clone()), |s| s.0))
    }

    /// Decides `command` on `state`; publishes the event (and our request's document) and
    /// keeps the new state. `Err(reason)` when the rules refuse it; nothing is changed then.
    fn decide_and_publish(
        &self,
        state: MeteringPoint,
        meta: &CommandMeta,
        command: &Command,
        ctx: &mut Context<'_>,
    ) -> Result<Result<MeteringPoint, String>, ProcessError> {
        let event = match decide(&state, meta, command) {
            Ok(event) => event,
            Err(refused) => {
                return Ok(Err(format!("{} {refused}", command_name(command))));
            }
        };
        let outbound = match (&event.change, command) {
            (Change::RequestSent { process, personal }, _) => request_document(
                state.gsrn,
                process,
                personal.as_ref(),
                process
                    .corrects
                    .as_ref()
                    .and_then(|c| state.processes.get(c)),
                &state.us,
                &process.id.0,
                meta.at,
            )
            .map(Some),
            // Our cancellation goes to DataHub too; DataHub's own cancellation does not.
            (Change::Cancelled { .. }, Command::Cancel { process }) => state
                .processes
                .get(process)
                .ok_or_else(|| format!("process {process} is not known"))
                .and_then(|p| {
                    cancellation_document(
                        state.gsrn,
                        p,
                        &state.us,
                        &afregning_portfolio::outbound::cancellation_id(&p.id),
                        meta.at,
                    )
                })
                .map(Some),
            _ => Ok(None),
        };
        let outbound = match outbound {
            Ok(doc) => doc,
            Err(reason) => return Ok(Err(reason)),
        };
        let after = state.apply(&event);
        ctx.emit(self.event_output(&event)?);
        if let Some(doc) = outbound {
            let value = OutboundRequest {
                request_id: format!("portfolio-{}", doc.transaction_id),
                document_type: document_type(doc.kind)?,
                body: doc.body,
                requested_by: meta.actor.clone(),
                requested_at: millis(meta.at),
                reason: Some(meta.why.clone()),
            };
            let key = OutboundRequestKey {
                request_id: value.request_id.clone(),
            };
            let idempotency = format!("portfolio-request:{}", key.request_id);
            ctx.emit(
                self.topics
                    .output(topics::OUTBOUND_REQUESTS, &key, &value, idempotency)?,
            );
        }
        let key = PointKey(after.gsrn.to_string());
        POINTS.put(ctx, &key, &StoredPoint(after.clone()))?;
        if has_pending(&after) {
            PENDING.mark(ctx, &key)?;
        } else {
            PENDING.unmark(ctx, &key)?;
        }
        metrics::counter!("afregning_portfolio_events_total", "change" => event.change.name())
            .increment(1);
        tracing::info!(
            gsrn = %after.gsrn,
            sequence = event.sequence,
            change = event.change.name(),
            process = event.process.as_ref().map_or("", |p| p.0.as_str()),
            message_id = meta.message_id.as_deref().unwrap_or(""),
            "portfolio event"
        );
        Ok(Ok(after))
    }

    fn event_output(&self, event: &Event) -> Result<OutputRecord, ProcessError> {
        let (topic, partitions) = self.topic(TopicId::PortfolioEvents)?;
        let gsrn = event.metering_point.to_string();
        let value = serde_json::to_vec(event)
            .map_err(|e| ProcessError::caused_by("encoding a portfolio event", e))?;
        Ok(OutputRecord {
            topic,
            partition: Some(partition_for_key(&gsrn, partitions)),
            idempotency_key: format!("portfolio:{gsrn}:{}", event.sequence),
            key: gsrn.into_bytes(),
            value: Some(value),
            headers: Vec::new(),
        })
    }
}

/// The outbound topic's name for a document we send.
fn document_type(kind: afregning_cim::DocumentKind) -> Result<OutboundDocumentType, ProcessError> {
    use afregning_cim::DocumentKind as K;
    Ok(match kind {
        K::RequestChangeOfSupplier => OutboundDocumentType::RequestChangeOfSupplier,
        K::RequestEndOfSupply => OutboundDocumentType::RequestEndOfSupply,
        K::RequestCancellation => OutboundDocumentType::RequestCancellation,
        K::RequestReallocateChangeOfSupplier => {
            OutboundDocumentType::RequestReallocateChangeOfSupplier
        }
        K::RequestChangeCustomerCharacteristics => {
            OutboundDocumentType::RequestChangeCustomerCharacteristics
        }
        other => {
            return Err(ProcessError::failed(format!(
                "the portfolio does not send {other} documents"
            )));
        }
    })
}

/// Avro keeps whole milliseconds.
fn millis(at: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(at.timestamp_millis()).unwrap_or(at)
}

/// The command's name for a refusal's text (no personal data in it).
fn command_name(command: &Command) -> String {
    match command {
        Command::Request(d) => format!("request {} {:?} for {}", d.process, d.kind, d.effective),
        Command::Notify(d) => format!(
            "notification {} {:?} for {}",
            d.process, d.kind, d.effective
        ),
        Command::Accept { process, .. } => format!("accept of {process}"),
        Command::Reject { process, .. } => format!("reject of {process}"),
        Command::Cancel { process } => format!("cancel of {process}"),
        Command::CancelledByDataHub { process, .. } => format!("DataHub's cancel of {process}"),
        Command::TakeEffect { process, .. } => format!("take effect of {process}"),
        Command::MasterData(_) => "master data".into(),
        Command::CustomerData { .. } => "customer data".into(),
        Command::ChargeLinks(_) => "charge links".into(),
    }
}

impl Processor for Portfolio {
    fn name(&self) -> &str {
        NAME
    }

    fn stores(&self) -> Vec<StoreSpec> {
        vec![StoreSpec::new(STATE_STORE)]
    }

    fn input_topics(&self) -> Vec<String> {
        self.topic(TopicId::PortfolioCommands)
            .map(|(name, _)| vec![name])
            .unwrap_or_default()
    }

    fn tick_interval(&self) -> Option<Duration> {
        Some(self.config.tick_interval)
    }

    fn process(&mut self, record: &InputRecord, ctx: &mut Context<'_>) -> Result<(), ProcessError> {
        let Some(value) = record.value.as_deref() else {
            return reject(
                &self.topics,
                NAME,
                record,
                ErrorClass::Undecodable,
                "a tombstone on the commands topic".into(),
                ctx,
            );
        };
        let command = match CommandRecord::from_json(value) {
            Ok(c) => c,
            Err(reason) => {
                return reject(
                    &self.topics,
                    NAME,
                    record,
                    ErrorClass::Undecodable,
                    reason,
                    ctx,
                );
            }
        };
        let gsrn = command.metering_point.to_string();
        if record.key.as_deref() != Some(gsrn.as_bytes()) {
            return reject(
                &self.topics,
                NAME,
                record,
                ErrorClass::Invalid,
                format!("the record key is not the command's metering point {gsrn}"),
                ctx,
            );
        }
        let state = self.state(ctx, command.metering_point)?;
        if let Err(reason) = self.decide_and_publish(state, &command.meta, &command.command, ctx)? {
            metrics::counter!("afregning_portfolio_refused_total").increment(1);
            tracing::warn!(gsrn = %gsrn, %reason, "portfolio command refused");
            return reject(&self.topics, NAME, record, ErrorClass::Invalid, reason, ctx);
        }
        Ok(())
    }

    fn on_tick(&mut self, now: DateTime<Utc>, ctx: &mut Context<'_>) -> Result<(), ProcessError> {
        let today = local_date(now);
        for key in PENDING.list(ctx, b"")? {
            let Some(StoredPoint(mut state)) = POINTS.get(ctx, &key)? else {
                PENDING.unmark(ctx, &key)?;
                continue;
            };
            for process in due(&state, today) {
                let meta = CommandMeta {
                    at: now,
                    actor: "afregning".into(),
                    why: "the process's day came".into(),
                    message_id: None,
                };
                let command = Command::TakeEffect {
                    process,
                    disconnected_on: None,
                };
                match self.decide_and_publish(state.clone(), &meta, &command, ctx)? {
                    Ok(after) => state = after,
                    // Stays pending; the refusal is logged once per tick, not dead-lettered:
                    // no record caused it.
                    Err(reason) => tracing::warn!(gsrn = %state.gsrn, %reason, "not taking effect"),
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_lifecycle;

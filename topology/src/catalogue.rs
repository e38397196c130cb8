//! The topic catalogue: every topic of the pipeline, typed.
//!
//! A topic's name, kind (and hence cleanup policy), retention class,
//! partitioning, key and value format, writers and readers are part of the
//! product and are written down here once. Deployments choose only the name
//! prefix, partition count, replication factor and retention lengths
//! ([`TopologySettings`]); [`Catalogue::new`] combines the two into concrete
//! [`TopicSpec`]s that `apply`, `verify`, `describe`, the producers and the
//! consumers all read.
//!
//! # Naming
//!
//! `<prefix>afregning.<domain>.<entity>.v<N>`: `domain` groups topics by
//! subject (`datahub`, `metering`, `charges`, `market`, `wholesale`,
//! `settlement`, `ops`), `entity` is a plural noun in kebab case (`-raw` marks
//! DataHub's bytes as peeked), and `N` is the major version, raised only for a
//! change that cannot be a compatible schema evolution (a new key, a new
//! partitioning), which means a new topic written alongside the old one.
//! Changelog topics of processor state stores are
//! `<prefix>afregning.<processor>.<store>-changelog.v<N>`.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::fmt;

use crate::schemas::SchemaFile;
use crate::settings::{MAX_TOPIC_NAME_LEN, SettingsError, TopologySettings};

/// A part of the pipeline that writes or reads topics: what the diagram shows
/// and what an operator restarts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Component {
    /// `afregning connect`: DataHub queue pollers, outbound sender, spot price poller.
    Connect,
    /// `afregning prices`: spot prices imported from a file.
    PriceImport,
    /// `afregning process validate`: raw CIM JSON to typed records.
    Validate,
    /// `afregning process enrich`: readings joined with master data.
    Enrich,
    /// `afregning process aggregate`: daily aggregates per metering point.
    Aggregate,
    /// `afregning process settle`: provisional lines and final statements.
    Settle,
    /// `afregning reconcile run`: our settlement checked against DataHub's wholesale
    /// results (BRS-027), discrepancies published.
    Reconcile,
    /// `afregning reconcile relay`: publishes the DataHub requests recorded in
    /// `datahub_request` (RSM-016/017) and records their fate: the connector's outcome
    /// and DataHub's answers and rejects, read from the Aggregations raw topic.
    ReconcileRelay,
    /// `afregning sink run timescale`: typed and settlement topics into PostgreSQL.
    PostgresSink,
    /// `afregning sink run erp`: statements to the ERP system.
    ErpSink,
    /// `afregning api`: the operator API (requests to DataHub).
    Api,
    /// `afregning process run portfolio`: the portfolio's processes (requests, answers,
    /// notifications) decided into its events, the one writer per metering point.
    Portfolio,
    /// `afregning portfolio project`: the portfolio's PostgreSQL read model, projected from
    /// its events.
    PortfolioReadModel,
    /// The supplier's ERP (billing) system, outside afregning: it books what
    /// the ERP sink delivers. Named so the diagram shows who reads the ERP topic.
    Erp,
}

impl Component {
    /// Every component, in data-flow order.
    pub const ALL: &'static [Component] = &[
        Component::Connect,
        Component::PriceImport,
        Component::Validate,
        Component::Enrich,
        Component::Aggregate,
        Component::Settle,
        Component::Reconcile,
        Component::ReconcileRelay,
        Component::PostgresSink,
        Component::ErpSink,
        Component::Api,
        Component::Portfolio,
        Component::PortfolioReadModel,
        Component::Erp,
    ];

    /// Short name used in changelog topic names, consumer groups and the diagram.
    pub const fn name(self) -> &'static str {
        match self {
            Component::Connect => "connect",
            Component::PriceImport => "prices",
            Component::Validate => "validate",
            Component::Enrich => "enrich",
            Component::Aggregate => "aggregate",
            Component::Settle => "settle",
            Component::Reconcile => "reconcile",
            Component::ReconcileRelay => "reconcile-relay",
            Component::PostgresSink => "sink-postgres",
            Component::ErpSink => "sink-erp",
            Component::Api => "api",
            Component::Portfolio => "portfolio",
            Component::PortfolioReadModel => "portfolio-read-model",
            Component::Erp => "erp",
        }
    }
}

impl fmt::Display for Component {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What kind of data a topic holds; decides the cleanup policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TopicKind {
    /// DataHub documents exactly as peeked: the replay source. Deleted after the raw retention.
    Raw,
    /// An event stream: every record matters, old ones expire.
    Stream,
    /// A table: the latest record per key is the state; compacted, kept forever.
    Table,
    /// A processor state store's changelog: compacted, owned by the processor runtime.
    Changelog,
}

impl TopicKind {
    /// The cleanup policy this kind requires.
    pub fn cleanup_policy(self) -> CleanupPolicy {
        match self {
            TopicKind::Raw | TopicKind::Stream => CleanupPolicy::Delete,
            TopicKind::Table | TopicKind::Changelog => CleanupPolicy::Compact,
        }
    }

    /// Lower-case name for tables.
    pub fn name(self) -> &'static str {
        match self {
            TopicKind::Raw => "raw",
            TopicKind::Stream => "stream",
            TopicKind::Table => "table",
            TopicKind::Changelog => "changelog",
        }
    }
}

/// Kafka's `cleanup.policy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CleanupPolicy {
    /// `delete`: segments older than `retention.ms` are removed.
    Delete,
    /// `compact`: only the latest record per key is kept.
    Compact,
}

impl CleanupPolicy {
    /// Kafka's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            CleanupPolicy::Delete => "delete",
            CleanupPolicy::Compact => "compact",
        }
    }
}

/// How long a topic keeps records: a class, turned into milliseconds by the settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Retention {
    /// The raw retention (default 90 days): long enough to replay a settlement window.
    RawWindow,
    /// The stream retention (default 35 days).
    Stream,
    /// Never deleted by time (`retention.ms=-1`): tables, changelogs, final statements.
    Forever,
}

impl Retention {
    /// `retention.ms` for these settings; -1 means forever.
    pub fn millis(self, settings: &TopologySettings) -> i64 {
        const DAY_MS: i64 = 24 * 60 * 60 * 1000;
        match self {
            Retention::RawWindow => i64::from(settings.raw_retention_days) * DAY_MS,
            Retention::Stream => i64::from(settings.stream_retention_days) * DAY_MS,
            Retention::Forever => -1,
        }
    }
}

/// Which partition a record goes to. See [`crate::partitioner`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Partitioning {
    /// murmur2 of the key's routing key (GSRN, MessageId, ...), as Kafka's
    /// default partitioner would hash that string.
    ByKey,
    /// murmur2 of the record's grid area code, so all metering points of a grid
    /// area share a partition and a settlement run of one grid area reads only it.
    ByGridArea,
    /// Partition n holds the state of partition n of the store's inputs
    /// (changelogs); the processor runtime chooses it.
    LikeInput,
}

impl Partitioning {
    /// Short name for tables.
    pub fn name(self) -> &'static str {
        match self {
            Partitioning::ByKey => "by key",
            Partitioning::ByGridArea => "by grid area",
            Partitioning::LikeInput => "like input",
        }
    }
}

/// The format of a topic's keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyFormat {
    /// Avro in Confluent's wire format, registered under `<topic>-key`.
    Avro(SchemaFile),
    /// Bytes owned by the processor runtime; no subject.
    Opaque,
}

/// The format of a topic's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ValueFormat {
    /// Avro in Confluent's wire format, registered under `<topic>-value`.
    Avro(SchemaFile),
    /// CIM JSON bytes exactly as DataHub sent them; no subject, because the
    /// bytes are the evidence and must not be re-encoded.
    RawCimJson,
    /// Bytes owned by the processor runtime; no subject.
    Opaque,
}

impl KeyFormat {
    /// The schema file, for Avro keys.
    pub fn schema(self) -> Option<SchemaFile> {
        match self {
            KeyFormat::Avro(file) => Some(file),
            KeyFormat::Opaque => None,
        }
    }
}

impl ValueFormat {
    /// The schema file, for Avro values.
    pub fn schema(self) -> Option<SchemaFile> {
        match self {
            ValueFormat::Avro(file) => Some(file),
            ValueFormat::RawCimJson | ValueFormat::Opaque => None,
        }
    }
}

/// Identifies a topic independently of the deployment's prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TopicId {
    /// RSM-012 metered data from DataHub's MeasureData (timeseries) queue, raw.
    TimeseriesRaw,
    /// RSM-014/RSM-019 from the Aggregations queue, raw.
    AggregationsRaw,
    /// Master data documents (RSM-022 and friends), raw.
    MasterdataRaw,
    /// Charge documents (RSM-031, RSM-034), raw.
    ChargesRaw,
    /// Requests to send to DataHub.
    OutboundRequests,
    /// DataHub's answers to them.
    OutboundResponses,
    /// Day-ahead spot prices (table).
    SpotPrices,
    /// Typed readings.
    Readings,
    /// Metering point master data (table).
    MeteringPoints,
    /// Charge information (table).
    Charges,
    /// Charge prices (table).
    ChargePrices,
    /// Charge links (table).
    ChargeLinks,
    /// DataHub's calculation results for reconciliation.
    WholesaleResults,
    /// Readings with master data, partitioned by grid area.
    EnrichedReadings,
    /// Daily aggregates per metering point.
    DailyAggregates,
    /// Provisional settlement lines.
    ProvisionalSettlements,
    /// Final statements for the ERP.
    SettlementStatements,
    /// Reconciliations with DataHub's wholesale results: the discrepancies.
    Discrepancies,
    /// Statements and credit notes as delivered to the ERP, once each.
    ErpStatements,
    /// Records that could not be processed.
    DeadLetters,
    /// Commands for the portfolio: our requests and DataHub's answers and notifications.
    PortfolioCommands,
    /// The portfolio's events (business processes per metering point).
    PortfolioEvents,
    /// The supplier's own products (margin, subscription), by product id (table).
    Products,
    /// The changelog of a processor's state store.
    Changelog(StoreId),
}

/// A processor's state store, by processor and store name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StoreId {
    /// The processor owning the store.
    pub processor: Component,
    /// The store's name (kebab case), unique within the processor.
    pub store: &'static str,
}

/// A planned state store: the one place to add or rename a store. Its
/// changelog topic follows automatically.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreSpec {
    /// The processor owning the store.
    pub processor: Component,
    /// The store's name (kebab case, `[a-z0-9-]`).
    pub store: &'static str,
    /// The topics whose partitions the store's partitions follow; the
    /// changelog has the same partition count.
    pub inputs: &'static [TopicId],
    /// What the store holds.
    pub doc: &'static str,
}

impl StoreSpec {
    /// The store's id.
    pub fn id(&self) -> StoreId {
        StoreId {
            processor: self.processor,
            store: self.store,
        }
    }
}

/// The state stores of the processors. To add a store, add a line; to rename
/// one, change its name here and migrate (the old changelog shows up in
/// `verify` as an unexpected topic until deleted).
pub const STORES: &[StoreSpec] = &[
    StoreSpec {
        processor: Component::Validate,
        store: "dedupe",
        inputs: &[
            TopicId::TimeseriesRaw,
            TopicId::AggregationsRaw,
            TopicId::MasterdataRaw,
            TopicId::ChargesRaw,
        ],
        doc: "MessageIds and series already validated, so a re-peeked bundle is not emitted twice.",
    },
    StoreSpec {
        processor: Component::Enrich,
        store: "metering-points",
        inputs: &[TopicId::MeteringPoints],
        doc: "Master data periods per GSRN, for the join.",
    },
    StoreSpec {
        processor: Component::Enrich,
        store: "pending-readings",
        inputs: &[TopicId::Readings],
        doc: "Readings waiting for their metering point's master data, until the timeout dead-letters them.",
    },
    StoreSpec {
        processor: Component::Aggregate,
        store: "days",
        inputs: &[TopicId::EnrichedReadings],
        doc: "Positions per metering point and local day, to recompute a day when a reading is corrected.",
    },
    StoreSpec {
        processor: Component::Settle,
        store: "months",
        inputs: &[TopicId::EnrichedReadings],
        doc: "Per billing month and metering point: the last settlement result and version, and the statement issued.",
    },
    StoreSpec {
        processor: Component::Settle,
        store: "positions",
        inputs: &[TopicId::EnrichedReadings],
        doc: "Latest positions per metering point and local day, the engine's input (charges, links and spot prices are global tables).",
    },
    StoreSpec {
        processor: Component::Reconcile,
        store: "results",
        inputs: &[TopicId::WholesaleResults],
        doc: "DataHub's result series (every run) per grid area and month, the months to reconcile again, and each month's last reconciliation (version and digest).",
    },
    StoreSpec {
        processor: Component::Reconcile,
        store: "readings",
        inputs: &[TopicId::EnrichedReadings],
        doc: "Latest positions per metering point and local day and each metering point's master data, to settle a grid area's month with the engine's details.",
    },
    StoreSpec {
        processor: Component::Portfolio,
        store: "state",
        inputs: &[TopicId::PortfolioCommands],
        doc: "Each metering point's portfolio state (the fold of its events) and which have a process waiting for its day.",
    },
];

/// The fixed part of a topic's definition.
#[derive(Debug)]
struct TopicDef {
    id: TopicId,
    name: &'static str,
    kind: TopicKind,
    retention: Retention,
    partitioning: Partitioning,
    key: KeyFormat,
    value: ValueFormat,
    writers: &'static [Component],
    readers: &'static [Component],
    doc: &'static str,
}

use Component::*;

const TOPICS: &[TopicDef] = &[
    TopicDef {
        id: TopicId::TimeseriesRaw,
        name: "afregning.datahub.timeseries-raw.v1",
        kind: TopicKind::Raw,
        retention: Retention::RawWindow,
        partitioning: Partitioning::ByKey,
        key: KeyFormat::Avro(SchemaFile::DataHubMessageKey),
        value: ValueFormat::RawCimJson,
        writers: &[Connect],
        readers: &[Validate],
        doc: "DataHub's MeasureData (timeseries) queue as peeked: RSM-012 metered data, one record per series.",
    },
    TopicDef {
        id: TopicId::AggregationsRaw,
        name: "afregning.datahub.aggregations-raw.v1",
        kind: TopicKind::Raw,
        retention: Retention::RawWindow,
        partitioning: Partitioning::ByKey,
        key: KeyFormat::Avro(SchemaFile::DataHubMessageKey),
        value: ValueFormat::RawCimJson,
        writers: &[Connect],
        readers: &[Validate, ReconcileRelay],
        doc: "DataHub's Aggregations queue as peeked: RSM-014 and RSM-019 results, request rejections.",
    },
    TopicDef {
        id: TopicId::MasterdataRaw,
        name: "afregning.datahub.masterdata-raw.v1",
        kind: TopicKind::Raw,
        retention: Retention::RawWindow,
        partitioning: Partitioning::ByKey,
        key: KeyFormat::Avro(SchemaFile::DataHubMessageKey),
        value: ValueFormat::RawCimJson,
        writers: &[Connect],
        readers: &[Validate],
        doc: "DataHub's MasterData queue as peeked: RSM-022 accounting point characteristics and related notices.",
    },
    TopicDef {
        id: TopicId::ChargesRaw,
        name: "afregning.datahub.charges-raw.v1",
        kind: TopicKind::Raw,
        retention: Retention::RawWindow,
        partitioning: Partitioning::ByKey,
        key: KeyFormat::Avro(SchemaFile::DataHubMessageKey),
        value: ValueFormat::RawCimJson,
        writers: &[Connect],
        readers: &[Validate],
        doc: "DataHub's Charges queue as peeked: RSM-034 price lists and RSM-031 charge links.",
    },
    TopicDef {
        id: TopicId::OutboundRequests,
        name: "afregning.datahub.outbound-requests.v1",
        kind: TopicKind::Stream,
        retention: Retention::Stream,
        partitioning: Partitioning::ByKey,
        key: KeyFormat::Avro(SchemaFile::OutboundRequestKey),
        value: ValueFormat::Avro(SchemaFile::OutboundRequest),
        writers: &[ReconcileRelay, Portfolio],
        readers: &[Connect],
        doc: "Requests to send to DataHub, one per request id: RSM-016/017 from the reconcile relay, RSM-001/005 from the portfolio (customer data as sealed placeholders the connector opens, decision 0145).",
    },
    TopicDef {
        id: TopicId::OutboundResponses,
        name: "afregning.datahub.outbound-responses.v1",
        kind: TopicKind::Stream,
        retention: Retention::Stream,
        partitioning: Partitioning::ByKey,
        key: KeyFormat::Avro(SchemaFile::OutboundRequestKey),
        value: ValueFormat::Avro(SchemaFile::OutboundResponse),
        writers: &[Connect],
        readers: &[ReconcileRelay, PostgresSink],
        doc: "DataHub's answers to outbound requests, keyed like the request.",
    },
    TopicDef {
        id: TopicId::SpotPrices,
        name: "afregning.market.spot-prices.v1",
        kind: TopicKind::Table,
        retention: Retention::Forever,
        partitioning: Partitioning::ByKey,
        key: KeyFormat::Avro(SchemaFile::SpotPriceKey),
        value: ValueFormat::Avro(SchemaFile::SpotPrice),
        writers: &[Connect, PriceImport],
        readers: &[Aggregate, Settle, PostgresSink],
        doc: "Day-ahead spot prices per bidding zone and market time unit; the latest per key wins.",
    },
    TopicDef {
        id: TopicId::Readings,
        name: "afregning.metering.readings.v1",
        kind: TopicKind::Stream,
        retention: Retention::Stream,
        partitioning: Partitioning::ByKey,
        key: KeyFormat::Avro(SchemaFile::MeteringPointKey),
        value: ValueFormat::Avro(SchemaFile::Reading),
        writers: &[Validate],
        readers: &[Enrich, PostgresSink],
        doc: "Validated readings, one record per metering point per series period; co-partitioned with metering points by GSRN.",
    },
    TopicDef {
        id: TopicId::MeteringPoints,
        name: "afregning.metering.metering-points.v1",
        kind: TopicKind::Table,
        retention: Retention::Forever,
        partitioning: Partitioning::ByKey,
        key: KeyFormat::Avro(SchemaFile::MeteringPointPeriodKey),
        value: ValueFormat::Avro(SchemaFile::MeteringPoint),
        writers: &[Validate],
        readers: &[Enrich, PostgresSink],
        doc: "Metering point master data per validity period (RSM-022); routed by GSRN, co-partitioned with readings.",
    },
    TopicDef {
        id: TopicId::Charges,
        name: "afregning.charges.information.v1",
        kind: TopicKind::Table,
        retention: Retention::Forever,
        partitioning: Partitioning::ByKey,
        key: KeyFormat::Avro(SchemaFile::ChargePeriodKey),
        value: ValueFormat::Avro(SchemaFile::Charge),
        writers: &[Validate],
        readers: &[Settle, Reconcile, PostgresSink],
        doc: "Charge information per validity period: type, resolution, tax indicator, VAT class.",
    },
    TopicDef {
        id: TopicId::ChargePrices,
        name: "afregning.charges.prices.v1",
        kind: TopicKind::Table,
        retention: Retention::Forever,
        partitioning: Partitioning::ByKey,
        key: KeyFormat::Avro(SchemaFile::ChargePriceKey),
        value: ValueFormat::Avro(SchemaFile::ChargePrice),
        writers: &[Validate],
        readers: &[Settle, Reconcile, PostgresSink],
        doc: "Price series per charge and period.",
    },
    TopicDef {
        id: TopicId::ChargeLinks,
        name: "afregning.charges.links.v1",
        kind: TopicKind::Table,
        retention: Retention::Forever,
        partitioning: Partitioning::ByKey,
        key: KeyFormat::Avro(SchemaFile::ChargeLinkKey),
        value: ValueFormat::Avro(SchemaFile::ChargeLink),
        writers: &[Validate],
        readers: &[Settle, Reconcile, PostgresSink],
        doc: "Links between metering points and charges per validity period; routed by GSRN.",
    },
    TopicDef {
        id: TopicId::WholesaleResults,
        name: "afregning.wholesale.results.v1",
        kind: TopicKind::Stream,
        retention: Retention::RawWindow,
        partitioning: Partitioning::ByGridArea,
        key: KeyFormat::Avro(SchemaFile::WholesaleResultKey),
        value: ValueFormat::Avro(SchemaFile::WholesaleResult),
        writers: &[Validate],
        readers: &[Reconcile, PostgresSink],
        doc: "DataHub's RSM-014/RSM-019 results per series (every run), kept as long as raw data for reconciliation.",
    },
    TopicDef {
        id: TopicId::EnrichedReadings,
        name: "afregning.metering.enriched-readings.v1",
        kind: TopicKind::Stream,
        retention: Retention::Stream,
        partitioning: Partitioning::ByGridArea,
        key: KeyFormat::Avro(SchemaFile::MeteringPointKey),
        value: ValueFormat::Avro(SchemaFile::EnrichedReading),
        writers: &[Enrich],
        readers: &[Aggregate, Settle, Reconcile],
        doc: "Readings with the master data valid for their period; keyed by GSRN, partitioned by grid area.",
    },
    TopicDef {
        id: TopicId::DailyAggregates,
        name: "afregning.metering.daily-aggregates.v1",
        kind: TopicKind::Stream,
        retention: Retention::Stream,
        partitioning: Partitioning::ByGridArea,
        key: KeyFormat::Avro(SchemaFile::DailyAggregateKey),
        value: ValueFormat::Avro(SchemaFile::DailyAggregate),
        writers: &[Aggregate],
        readers: &[PostgresSink],
        doc: "Per metering point and local day: kWh per hour and tariff period, spot cost, completeness, quality.",
    },
    TopicDef {
        id: TopicId::ProvisionalSettlements,
        name: "afregning.settlement.provisional-lines.v1",
        kind: TopicKind::Stream,
        retention: Retention::Stream,
        partitioning: Partitioning::ByGridArea,
        key: KeyFormat::Avro(SchemaFile::SettlementMonthKey),
        value: ValueFormat::Avro(SchemaFile::ProvisionalSettlement),
        writers: &[Settle],
        readers: &[PostgresSink],
        doc: "A new version of a metering point-month's settlement lines on every input change.",
    },
    TopicDef {
        id: TopicId::SettlementStatements,
        name: "afregning.settlement.statements.v1",
        kind: TopicKind::Stream,
        retention: Retention::Forever,
        partitioning: Partitioning::ByGridArea,
        key: KeyFormat::Avro(SchemaFile::SettlementMonthKey),
        value: ValueFormat::Avro(SchemaFile::SettlementStatement),
        writers: &[Settle],
        readers: &[ErpSink, PostgresSink],
        doc: "Final statements and credit notes for the ERP, kept forever: the ERP can always be rebuilt from them.",
    },
    TopicDef {
        id: TopicId::Discrepancies,
        name: "afregning.wholesale.discrepancies.v1",
        kind: TopicKind::Stream,
        retention: Retention::Forever,
        partitioning: Partitioning::ByGridArea,
        key: KeyFormat::Avro(SchemaFile::ReconciliationKey),
        value: ValueFormat::Avro(SchemaFile::Reconciliation),
        writers: &[Reconcile],
        readers: &[PostgresSink],
        doc: "Each reconciliation of a grid area's month with DataHub's run in force: a new version with every discrepancy (exact, both values, the metering points) whenever the outcome changes; kept forever as the audit trail.",
    },
    TopicDef {
        id: TopicId::ErpStatements,
        name: "afregning.erp.statements.v1",
        kind: TopicKind::Stream,
        retention: Retention::Forever,
        partitioning: Partitioning::ByKey,
        key: KeyFormat::Avro(SchemaFile::SettlementMonthKey),
        value: ValueFormat::Avro(SchemaFile::SettlementStatement),
        writers: &[ErpSink],
        readers: &[Erp],
        doc: "The ERP's inbox: each final statement and credit note once, checked (versions only increase, a correction names what it corrects), routed by GSRN so a metering point's documents stay in order; kept forever.",
    },
    TopicDef {
        id: TopicId::DeadLetters,
        name: "afregning.ops.dead-letters.v1",
        kind: TopicKind::Stream,
        retention: Retention::RawWindow,
        partitioning: Partitioning::ByKey,
        key: KeyFormat::Avro(SchemaFile::DeadLetterKey),
        value: ValueFormat::Avro(SchemaFile::DeadLetter),
        writers: &[
            Validate,
            Enrich,
            Aggregate,
            Settle,
            Reconcile,
            Portfolio,
            PostgresSink,
            ErpSink,
        ],
        readers: &[PostgresSink],
        doc: "Records a component gave up on, with the raw bytes and source position; kept as long as raw data.",
    },
    TopicDef {
        id: TopicId::PortfolioCommands,
        name: "afregning.portfolio.commands.v1",
        kind: TopicKind::Stream,
        retention: Retention::Stream,
        partitioning: Partitioning::ByKey,
        key: KeyFormat::Opaque,
        value: ValueFormat::Opaque,
        writers: &[Validate, Api],
        readers: &[Portfolio],
        doc: "What should change a metering point's portfolio (decision 0145): key = GSRN as 18 ASCII digits, value = one JSON command record (`afregning_portfolio::CommandRecord`): our requests and cancellations (CLI, API) and DataHub's answers and notifications (validate); co-partitioned with the events, decided by the portfolio processor alone.",
    },
    TopicDef {
        id: TopicId::PortfolioEvents,
        name: "afregning.portfolio.events.v1",
        kind: TopicKind::Stream,
        retention: Retention::Forever,
        partitioning: Partitioning::ByKey,
        key: KeyFormat::Opaque,
        value: ValueFormat::Opaque,
        writers: &[Portfolio],
        readers: &[Settle, PortfolioReadModel],
        doc: "The portfolio's event log (docs/portfolio.md): key = GSRN as 18 ASCII digits, value = one JSON event (personal data sealed); a metering point's events stay in order, kept forever because the state is their fold. Settle reads it whole (every record) for the supply timelines.",
    },
    TopicDef {
        id: TopicId::Products,
        name: "afregning.settlement.products.v1",
        kind: TopicKind::Table,
        retention: Retention::Forever,
        partitioning: Partitioning::ByKey,
        key: KeyFormat::Opaque,
        value: ValueFormat::Opaque,
        writers: &[Api],
        readers: &[Settle],
        doc: "The supplier's own products (decision 0130): key = product id (UTF-8), value = the product with all its versions as JSON (`afregning_settlement::Product`, the shape of the --product-catalogue file); the latest per key wins, a product change re-settles the months it touches.",
    },
];

impl TopicId {
    /// Every topic with a fixed definition (changelogs come from [`STORES`]).
    pub fn fixed() -> impl Iterator<Item = TopicId> {
        TOPICS.iter().map(|def| def.id)
    }

    /// The topic's name without a prefix.
    pub fn base_name(self) -> Cow<'static, str> {
        match self {
            TopicId::Changelog(store) => Cow::Owned(changelog_base_name(store)),
            fixed => Cow::Borrowed(def(fixed).map_or("", |d| d.name)),
        }
    }
}

fn def(id: TopicId) -> Option<&'static TopicDef> {
    TOPICS.iter().find(|d| d.id == id)
}

/// The documented changelog naming convention:
/// `afregning.<processor>.<store>-changelog.v1`.
pub fn changelog_base_name(store: StoreId) -> String {
    format!(
        "afregning.{}.{}-changelog.v1",
        store.processor.name(),
        store.store
    )
}

/// `min.compaction.lag.ms` of every changelog: one hour.
///
/// Decision 0052: after a crash, the records of a batch that never got its
/// commit markers stay the latest of their keys until the next owner restores
/// and appends reverts. Compaction must not remove the committed value under
/// them before that, so a record stays uncompacted for at least this long.
pub const CHANGELOG_MIN_COMPACTION_LAG_MS: i64 = 3_600_000;

/// How long changelogs keep records: forever (compaction alone bounds them).
pub const CHANGELOG_RETENTION: Retention = Retention::Forever;

/// The topic configs every changelog topic is created with and compared on,
/// in the order `apply` sets them: compacted, never deleted by time, and the
/// compaction lag of decision 0052. The one place that knows them:
/// [`TopicSpec::configs`] returns exactly these for changelogs, so `apply`
/// creates and `verify` checks the same list, and whoever else creates a
/// changelog (the processor runtime) should take it from here.
pub fn changelog_configs() -> Vec<(&'static str, String)> {
    vec![
        (
            "cleanup.policy",
            TopicKind::Changelog.cleanup_policy().as_str().to_string(),
        ),
        (
            "retention.ms",
            CHANGELOG_RETENTION
                .millis(&TopologySettings::default())
                .to_string(),
        ),
        (
            "min.compaction.lag.ms",
            CHANGELOG_MIN_COMPACTION_LAG_MS.to_string(),
        ),
    ]
}

/// A topic as deployed: the catalogue's definition with the settings applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicSpec {
    /// Which topic.
    pub id: TopicId,
    /// The full name, prefix included.
    pub name: String,
    /// The name without the deployment prefix (what docs and compose files use).
    pub base_name: String,
    /// What kind of data it holds.
    pub kind: TopicKind,
    /// Partitions.
    pub partitions: u32,
    /// Replicas per partition.
    pub replication_factor: u16,
    /// Retention class.
    pub retention: Retention,
    /// `retention.ms`, -1 for forever.
    pub retention_ms: i64,
    /// How records are assigned to partitions.
    pub partitioning: Partitioning,
    /// Key format.
    pub key: KeyFormat,
    /// Value format.
    pub value: ValueFormat,
    /// Components producing to it.
    pub writers: Vec<Component>,
    /// Components consuming it.
    pub readers: Vec<Component>,
    /// What the topic is for.
    pub doc: &'static str,
    /// For changelogs: the store's inputs.
    pub inputs: Vec<TopicId>,
}

impl TopicSpec {
    /// `cleanup.policy`, decided by the kind.
    pub fn cleanup_policy(&self) -> CleanupPolicy {
        self.kind.cleanup_policy()
    }

    /// The key subject (Confluent's TopicNameStrategy), for Avro keys.
    pub fn key_subject(&self) -> Option<String> {
        self.key.schema().map(|_| format!("{}-key", self.name))
    }

    /// The value subject, for Avro values.
    pub fn value_subject(&self) -> Option<String> {
        self.value.schema().map(|_| format!("{}-value", self.name))
    }

    /// The topic configs `apply` sets and `verify` compares: cleanup policy
    /// and retention for every topic, plus [`changelog_configs`] for changelogs.
    pub fn configs(&self) -> Vec<(&'static str, String)> {
        if self.kind == TopicKind::Changelog {
            return changelog_configs();
        }
        vec![
            ("cleanup.policy", self.cleanup_policy().as_str().to_string()),
            ("retention.ms", self.retention_ms.to_string()),
        ]
    }
}

/// A schema subject the catalogue requires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubjectSpec {
    /// `<topic>-key` or `<topic>-value`.
    pub subject: String,
    /// The topic.
    pub topic: String,
    /// Key or value.
    pub is_key: bool,
    /// The schema registered under it.
    pub schema: SchemaFile,
}

/// A topic the caller asked for that the catalogue does not have.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the topology has no topic {0}; declare it in topology/src/catalogue.rs")]
pub struct UnknownTopic(pub String);

/// The whole catalogue for one deployment.
#[derive(Debug, Clone)]
pub struct Catalogue {
    settings: TopologySettings,
    topics: Vec<TopicSpec>,
}

impl Catalogue {
    /// The catalogue for these settings, checked.
    pub fn new(settings: TopologySettings) -> Result<Self, SettingsError> {
        settings.validate()?;
        let mut topics = Vec::new();
        for def in TOPICS {
            topics.push(TopicSpec {
                id: def.id,
                name: format!("{}{}", settings.prefix, def.name),
                base_name: def.name.to_string(),
                kind: def.kind,
                partitions: settings.partitions,
                replication_factor: settings.replication_factor,
                retention: def.retention,
                retention_ms: def.retention.millis(&settings),
                partitioning: def.partitioning,
                key: def.key,
                value: def.value,
                writers: def.writers.to_vec(),
                readers: def.readers.to_vec(),
                doc: def.doc,
                inputs: Vec::new(),
            });
        }
        for store in STORES {
            let base = changelog_base_name(store.id());
            topics.push(TopicSpec {
                id: TopicId::Changelog(store.id()),
                name: format!("{}{base}", settings.prefix),
                base_name: base,
                kind: TopicKind::Changelog,
                partitions: settings.partitions,
                replication_factor: settings.replication_factor,
                retention: CHANGELOG_RETENTION,
                retention_ms: CHANGELOG_RETENTION.millis(&settings),
                partitioning: Partitioning::LikeInput,
                key: KeyFormat::Opaque,
                value: ValueFormat::Opaque,
                writers: vec![store.processor],
                readers: vec![store.processor],
                doc: store.doc,
                inputs: store.inputs.to_vec(),
            });
        }
        if let Some(long) = topics.iter().find(|t| t.name.len() > MAX_TOPIC_NAME_LEN) {
            return Err(SettingsError::PrefixTooLong {
                prefix: settings.prefix.clone(),
                topic: long.name.clone(),
            });
        }
        Ok(Self { settings, topics })
    }

    /// The catalogue with default settings (production names, 12 partitions).
    pub fn default_settings() -> Self {
        Self::new(TopologySettings::default()).expect("the default settings are valid")
    }

    /// The settings it was built with.
    pub fn settings(&self) -> &TopologySettings {
        &self.settings
    }

    /// Every topic: the fixed ones in data-flow order, then the changelogs.
    pub fn topics(&self) -> &[TopicSpec] {
        &self.topics
    }

    /// One topic.
    pub fn spec(&self, id: TopicId) -> Result<&TopicSpec, UnknownTopic> {
        self.topics
            .iter()
            .find(|t| t.id == id)
            .ok_or_else(|| UnknownTopic(id.base_name().into_owned()))
    }

    /// The changelog topic of a processor's store, which must be declared in [`STORES`].
    pub fn changelog(&self, processor: Component, store: &str) -> Result<&TopicSpec, UnknownTopic> {
        self.topics
            .iter()
            .find(|t| matches!(t.id, TopicId::Changelog(s) if s.processor == processor && s.store == store))
            .ok_or_else(|| UnknownTopic(format!("changelog of {processor} store {store:?}")))
    }

    /// The topic with this full name.
    pub fn by_name(&self, name: &str) -> Option<&TopicSpec> {
        self.topics.iter().find(|t| t.name == name)
    }

    /// Every schema subject the catalogue requires, keys before values per topic.
    pub fn subjects(&self) -> Vec<SubjectSpec> {
        let mut subjects = Vec::new();
        for topic in &self.topics {
            if let (Some(subject), Some(schema)) = (topic.key_subject(), topic.key.schema()) {
                subjects.push(SubjectSpec {
                    subject,
                    topic: topic.name.clone(),
                    is_key: true,
                    schema,
                });
            }
            if let (Some(subject), Some(schema)) = (topic.value_subject(), topic.value.schema()) {
                subjects.push(SubjectSpec {
                    subject,
                    topic: topic.name.clone(),
                    is_key: false,
                    schema,
                });
            }
        }
        subjects
    }

    /// Topics written or read by a component.
    pub fn topics_of(&self, component: Component) -> impl Iterator<Item = &TopicSpec> {
        self.topics
            .iter()
            .filter(move |t| t.writers.contains(&component) || t.readers.contains(&component))
    }

    /// Topic names mentioned in a text (a compose file, a README) that the
    /// catalogue does not have, compared without prefix. A mention is any
    /// `afregning.<a>.<b>.v<N>`; Avro namespaces (`afregning.metering.Reading`)
    /// do not match. Exists so that files outside this crate cannot name a topic
    /// that does not exist.
    pub fn unknown_topic_mentions(&self, text: &str) -> Vec<String> {
        let known: BTreeSet<&str> = self.topics.iter().map(|t| t.base_name.as_str()).collect();
        let mut unknown = BTreeSet::new();
        for mention in topic_mentions(text) {
            if !known.contains(mention.as_str()) {
                unknown.insert(mention);
            }
        }
        unknown.into_iter().collect()
    }
}

/// Every `afregning.<a>.<b>.v<N>` in a text.
pub fn topic_mentions(text: &str) -> Vec<String> {
    const START: &str = "afregning.";
    let is_name_char =
        |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '-' | '_');
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(offset) = text[from..].find(START) {
        let start = from + offset;
        from = start + START.len();
        let before = text[..start].chars().next_back();
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
            continue;
        }
        let end = text[start..]
            .char_indices()
            .find(|&(_, c)| !is_name_char(c))
            .map_or(text.len(), |(i, _)| start + i);
        let candidate = text[start..end].trim_end_matches('.');
        let parts: Vec<&str> = candidate.split('.').collect();
        let versioned = parts.len() == 4
            && parts[3].len() > 1
            && parts[3].starts_with('v')
            && parts[3][1..].chars().all(|c| c.is_ascii_digit())
            && parts[1..3].iter().all(|p| !p.is_empty());
        if versioned {
            found.push(candidate.to_string());
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn names_are_unique_and_follow_the_convention() {
        let catalogue = Catalogue::default_settings();
        let mut seen = HashSet::new();
        for topic in catalogue.topics() {
            assert!(
                seen.insert(topic.name.clone()),
                "duplicate topic {}",
                topic.name
            );
            assert_eq!(
                topic_mentions(&topic.name),
                vec![topic.name.clone()],
                "{} does not follow afregning.<domain>.<entity>.v<N>",
                topic.name
            );
            assert!(
                topic
                    .name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-')
            );
        }
        assert_eq!(catalogue.topics().len(), TOPICS.len() + STORES.len());
    }

    #[test]
    fn raw_topics_have_a_key_subject_only_and_keep_a_settlement_window() {
        let catalogue = Catalogue::default_settings();
        let raw: Vec<_> = catalogue
            .topics()
            .iter()
            .filter(|t| t.kind == TopicKind::Raw)
            .collect();
        assert_eq!(raw.len(), 4, "one raw topic per DataHub queue");
        for topic in raw {
            assert!(topic.key_subject().is_some());
            assert_eq!(topic.value_subject(), None, "raw CIM JSON is not Avro");
            assert_eq!(topic.value, ValueFormat::RawCimJson);
            assert!(topic.retention_ms >= 90 * 24 * 3600 * 1000);
            assert_eq!(topic.cleanup_policy(), CleanupPolicy::Delete);
        }
    }

    #[test]
    fn tables_and_changelogs_are_compacted_streams_are_not() {
        let catalogue = Catalogue::default_settings();
        for id in [
            TopicId::MeteringPoints,
            TopicId::Charges,
            TopicId::ChargePrices,
            TopicId::ChargeLinks,
            TopicId::SpotPrices,
            TopicId::Products,
        ] {
            assert_eq!(
                catalogue.spec(id).unwrap().cleanup_policy(),
                CleanupPolicy::Compact,
                "{id:?}"
            );
        }
        for id in [
            TopicId::Readings,
            TopicId::EnrichedReadings,
            TopicId::DeadLetters,
        ] {
            assert_eq!(
                catalogue.spec(id).unwrap().cleanup_policy(),
                CleanupPolicy::Delete,
                "{id:?}"
            );
        }
        for topic in catalogue
            .topics()
            .iter()
            .filter(|t| t.kind == TopicKind::Changelog)
        {
            assert_eq!(topic.cleanup_policy(), CleanupPolicy::Compact);
            assert_eq!(topic.key_subject(), None);
            assert_eq!(topic.value_subject(), None);
        }
    }

    #[test]
    fn changelogs_carry_the_compaction_lag_of_decision_0052_and_other_topics_do_not() {
        let catalogue = Catalogue::new(TopologySettings::with_prefix("t.")).unwrap();
        let mut changelogs = 0;
        for topic in catalogue.topics() {
            let configs = topic.configs();
            let lag = configs
                .iter()
                .find(|(key, _)| *key == "min.compaction.lag.ms")
                .map(|(_, value)| value.as_str());
            if topic.kind == TopicKind::Changelog {
                changelogs += 1;
                assert_eq!(configs, changelog_configs(), "{}", topic.name);
                assert_eq!(lag, Some("3600000"), "{}", topic.name);
                assert!(configs.contains(&("cleanup.policy", "compact".to_string())));
                assert!(configs.contains(&("retention.ms", topic.retention_ms.to_string())));
            } else {
                assert_eq!(lag, None, "{} is not a changelog", topic.name);
            }
        }
        assert_eq!(changelogs, STORES.len());
    }

    /// Until the processor runtime takes its changelog configs from
    /// [`changelog_configs`] (issue 18), it writes them as literals when it
    /// creates a missing changelog; every literal it sets must agree with the
    /// catalogue, so the two cannot drift apart unnoticed. Once the runtime
    /// no longer creates topics this finds nothing to compare and passes.
    #[test]
    fn the_runtime_creates_changelogs_with_the_catalogue_configs() {
        let runner = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../processors/src/runtime/runner.rs");
        let Ok(source) = std::fs::read_to_string(&runner) else {
            return;
        };
        let expected = changelog_configs();
        for (at, _) in source.match_indices(".set(\"") {
            let rest = &source[at + ".set(".len()..];
            let end = rest.find(')').expect("a closing parenthesis");
            let parts: Vec<&str> = rest[..end].split(',').map(str::trim).collect();
            // Only calls with two string literals are configs written out by hand.
            let [key, value] = parts[..] else { continue };
            let literal = |p: &str| p.len() >= 2 && p.starts_with('"') && p.ends_with('"');
            if !literal(key) || !literal(value) {
                continue;
            }
            let (key, value) = (key.trim_matches('"'), value.trim_matches('"'));
            assert!(
                expected.iter().any(|(k, v)| *k == key && v == value),
                "processors/src/runtime/runner.rs creates changelogs with {key}={value}; the catalogue says {expected:?}"
            );
        }
    }

    #[test]
    fn the_planned_changelogs_exist_with_the_documented_names() {
        let catalogue = Catalogue::default_settings();
        for (processor, store) in [
            (Component::Validate, "dedupe"),
            (Component::Enrich, "metering-points"),
            (Component::Enrich, "pending-readings"),
            (Component::Aggregate, "days"),
            (Component::Settle, "months"),
            (Component::Settle, "positions"),
            (Component::Reconcile, "results"),
            (Component::Reconcile, "readings"),
        ] {
            let topic = catalogue.changelog(processor, store).expect("declared");
            assert_eq!(
                topic.name,
                format!("afregning.{processor}.{store}-changelog.v1")
            );
        }
        assert!(catalogue.changelog(Component::Settle, "nope").is_err());
    }

    #[test]
    fn store_names_are_kebab_case_and_inputs_are_read_by_the_processor() {
        let catalogue = Catalogue::default_settings();
        for store in STORES {
            assert!(
                store
                    .store
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            );
            for input in store.inputs {
                let topic = catalogue.spec(*input).unwrap();
                assert!(
                    topic.readers.contains(&store.processor),
                    "{} store {} follows {} which it does not read",
                    store.processor,
                    store.store,
                    topic.name
                );
                let changelog = catalogue.changelog(store.processor, store.store).unwrap();
                assert_eq!(
                    changelog.partitions, topic.partitions,
                    "a changelog has its input's partitions"
                );
            }
        }
    }

    #[test]
    fn readings_and_metering_points_are_co_partitioned_by_gsrn() {
        let catalogue = Catalogue::default_settings();
        let readings = catalogue.spec(TopicId::Readings).unwrap();
        let points = catalogue.spec(TopicId::MeteringPoints).unwrap();
        assert_eq!(readings.partitioning, Partitioning::ByKey);
        assert_eq!(points.partitioning, Partitioning::ByKey);
        assert_eq!(readings.partitions, points.partitions);
        for id in [
            TopicId::EnrichedReadings,
            TopicId::DailyAggregates,
            TopicId::ProvisionalSettlements,
            TopicId::SettlementStatements,
        ] {
            assert_eq!(
                catalogue.spec(id).unwrap().partitioning,
                Partitioning::ByGridArea,
                "{id:?}"
            );
        }
    }

    #[test]
    fn the_prefix_prefixes_every_topic_and_subject() {
        let catalogue = Catalogue::new(TopologySettings::with_prefix("t3f9a1c2e.")).unwrap();
        for topic in catalogue.topics() {
            assert!(topic.name.starts_with("t3f9a1c2e.afregning."));
            assert_eq!(topic.name, format!("t3f9a1c2e.{}", topic.base_name));
        }
        for subject in catalogue.subjects() {
            assert!(subject.subject.starts_with("t3f9a1c2e.afregning."));
            assert!(
                subject
                    .subject
                    .ends_with(if subject.is_key { "-key" } else { "-value" })
            );
        }
        let long = TopologySettings::with_prefix("x".repeat(240));
        assert!(matches!(
            Catalogue::new(long),
            Err(SettingsError::PrefixTooLong { .. })
        ));
    }

    #[test]
    fn every_topic_has_a_writer_and_a_reader() {
        for topic in Catalogue::default_settings().topics() {
            assert!(!topic.writers.is_empty(), "{} has no writer", topic.name);
            assert!(!topic.readers.is_empty(), "{} has no reader", topic.name);
        }
    }

    #[test]
    fn mentions_find_topic_names_and_skip_namespaces() {
        let text = "topics: afregning.metering.readings.v1, t1.afregning.ops.dead-letters.v1.\n\
                    avro: afregning.metering.Reading; crate afregning-topology; afregning.nope.things.v2";
        assert_eq!(
            topic_mentions(text),
            vec![
                "afregning.metering.readings.v1".to_string(),
                "afregning.ops.dead-letters.v1".to_string(),
                "afregning.nope.things.v2".to_string()
            ]
        );
        assert_eq!(
            Catalogue::default_settings().unknown_topic_mentions(text),
            vec!["afregning.nope.things.v2".to_string()]
        );
    }
}

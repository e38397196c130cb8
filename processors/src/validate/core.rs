//! The pure core of validate: one raw DataHub record in, typed records or a
//! rejection out, and the dedupe decision. No I/O; tested exhaustively here.

use afregning_cim::codes::Quality as CimQuality;
use afregning_cim::codes::{ChargeKind, VatPayer};
use afregning_cim::{
    CimError, Document, DocumentKind, Resolution as CimResolution, rsm012, rsm022, rsm031, rsm034,
};
use afregning_topology::records::{
    AvroRecord, Charge, ChargeLink, ChargeLinkKey, ChargePeriodKey, ChargePrice, ChargePriceKey,
    ChargePricePoint, ChargeType, ErrorClass, MeteringPoint, MeteringPointKey,
    MeteringPointPeriodKey, Quality, Reading, ReadingPoint, Resolution, SettlementMethod, VatClass,
    WholesaleResult, WholesaleResultKey,
};

use crate::shared::dead_letter::Rejection;

/// What the raw record's headers say (all optional: a record without them is
/// still validated, and deduplicated by the document's own MessageId).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawMeta {
    /// `afregning-message-id`.
    pub message_id: Option<String>,
    /// `afregning-part-index` (0 when absent).
    pub part_index: u32,
    /// `afregning-split-error`: why the connector could not split the bundle.
    pub split_error: Option<String>,
}

/// One typed record to emit, with its idempotency key.
#[derive(Debug, Clone, PartialEq)]
pub enum Typed {
    /// A metered series for the readings topic.
    Reading(MeteringPointKey, Reading),
    /// A master data period for the metering-points table.
    MeteringPoint(MeteringPointPeriodKey, MeteringPoint),
    /// Charge information (RSM-034, process D18) for the charges table.
    Charge(ChargePeriodKey, Charge),
    /// A charge's price series (RSM-034, process D08).
    ChargePrice(ChargePriceKey, ChargePrice),
    /// A charge link (RSM-031).
    ChargeLink(ChargeLinkKey, ChargeLink),
    /// A series of DataHub's calculation results (RSM-019, RSM-014; `wholesale.rs`).
    WholesaleResult(WholesaleResultKey, WholesaleResult),
    /// DataHub's answer to a portfolio request of ours (RSM-001/005 confirm or reject), its
    /// notification (RSM-004, RSM-025) or its data about a metering point in a process of ours
    /// (RSM-022, RSM-028 sealed, RSM-031), for the portfolio processor
    /// ([`afregning_portfolio::answers`], [`afregning_portfolio::master_data`]).
    PortfolioCommand(afregning_portfolio::CommandRecord),
}

/// The outcome of validating one raw record.
#[derive(Debug, Clone, PartialEq)]
pub struct Validated {
    /// DataHub's MessageId (from the header or the document).
    pub message_id: Option<String>,
    /// The typed records, in document order, each with its idempotency key
    /// `<message id>:<part>:<transaction index>`.
    pub records: Vec<(String, Typed)>,
    /// Set when the document is one validate knows but another component
    /// reads from the raw topic ([`handled_elsewhere`]): no typed records and
    /// no dead letter, so the processor counts and logs it instead.
    pub handled_elsewhere: Option<DocumentKind>,
}

/// Who reads a document validate recognises but does not type, or `None`
/// when validate has no use for it (then it is dead-lettered as unsupported).
/// DataHub's rejects of our on-demand requests (RSM-016, RSM-017) are matched to
/// their `datahub_request` row by `afregning reconcile relay` straight from the
/// Aggregations raw topic; dead-lettering them would report a handled answer as
/// a failure.
pub fn handled_elsewhere(kind: DocumentKind) -> Option<&'static str> {
    match kind {
        DocumentKind::RejectRequestAggregatedMeasureData
        | DocumentKind::RejectRequestWholesaleSettlement => Some("afregning reconcile relay"),
        _ => None,
    }
}

/// DataHub's answers and notifications of portfolio processes as commands for the
/// portfolio processor; `Err` names what cannot be matched (dead-lettered).
fn portfolio_commands(document: &Document) -> Result<Vec<Typed>, String> {
    let commands = afregning_portfolio::answers::commands(document).unwrap_or(Ok(Vec::new()))?;
    Ok(commands.into_iter().map(Typed::PortfolioCommand).collect())
}

/// `typed` and, after it, the portfolio's commands of a master-data document sent in a
/// business process (RSM-022, RSM-031; [`afregning_portfolio::master_data`]): enrich and settle
/// keep their records, the portfolio gets its own.
fn with_portfolio(
    mut typed: Vec<Typed>,
    document: &Document,
    message_id: &str,
) -> Result<Vec<Typed>, Rejection> {
    let commands = afregning_portfolio::master_data::commands(document)
        .unwrap_or(Ok(Vec::new()))
        .map_err(|reason| {
            Rejection::new(ErrorClass::Invalid, reason).with_message_id(Some(message_id.into()))
        })?;
    typed.extend(commands.into_iter().map(Typed::PortfolioCommand));
    Ok(typed)
}

/// The dedupe identity of a raw record: MessageId and part index.
pub fn dedupe_id(message_id: &str, part_index: u32) -> String {
    format!("{message_id}\u{1f}{part_index}")
}

/// Validates one raw record. `Err` is a rejection for the dead-letter topic.
pub fn validate(payload: Option<&[u8]>, meta: &RawMeta) -> Result<Validated, Rejection> {
    let with_id = |r: Rejection| r.with_message_id(meta.message_id.clone());
    let Some(payload) = payload else {
        return Err(with_id(Rejection::new(
            ErrorClass::Undecodable,
            "the raw record has no value (tombstone on a raw topic)",
        )));
    };
    let document = afregning_cim::parse(payload).map_err(|e| with_id(cim_rejection(&e, meta)))?;
    let message_id = meta
        .message_id
        .clone()
        .unwrap_or_else(|| document.header().message_id.clone());
    let key_prefix = format!("{message_id}:{}", meta.part_index);
    let records = match &document {
        Document::NotifyValidatedMeasureData(doc) => readings(doc)?,
        Document::AccountingPointCharacteristics(doc) => {
            with_portfolio(metering_points(doc)?, &document, &message_id)?
        }
        Document::NotifyPriceList(doc) => charges(doc)?,
        Document::NotifyBillingMasterData(doc) => {
            with_portfolio(charge_links(doc)?, &document, &message_id)?
        }
        Document::NotifyWholesaleServices(doc) => super::wholesale::wholesale_services(doc)?,
        Document::NotifyAggregatedMeasureData(doc) => {
            super::wholesale::aggregated_measure_data(doc)?
        }
        other if afregning_portfolio::answers::commands(other).is_some() => {
            portfolio_commands(other).map_err(|reason| {
                Rejection::new(ErrorClass::Invalid, reason)
                    .with_message_id(Some(message_id.clone()))
            })?
        }
        other if handled_elsewhere(other.kind()).is_some() => {
            return Ok(Validated {
                message_id: Some(message_id),
                records: Vec::new(),
                handled_elsewhere: Some(other.kind()),
            });
        }
        other => {
            return Err(
                Rejection::new(ErrorClass::Invalid, unsupported_reason(other.kind()))
                    .with_message_id(Some(message_id)),
            );
        }
    };
    let records = records
        .into_iter()
        .enumerate()
        .map(|(i, typed)| (format!("{key_prefix}:{i}"), typed))
        .collect::<Vec<_>>();
    for (_, typed) in &records {
        // A value the Avro schema refuses (e.g. more decimals than kWh's scale 3)
        // is the document's fault: reject it here, not at produce time. Readings
        // and charge prices are checked by their direct codec (range checks only,
        // no Value tree); the rare master data records through the generic one.
        let checked = match typed {
            Typed::Reading(_, r) => r.check_schema(),
            Typed::MeteringPoint(_, m) => m.check_schema(),
            Typed::Charge(_, c) => c.check_schema(),
            Typed::ChargePrice(_, p) => p.check_schema(),
            Typed::ChargeLink(_, l) => l.check_schema(),
            Typed::WholesaleResult(_, w) => w.check_schema(),
            Typed::PortfolioCommand(_) => Ok(()),
        };
        checked.map_err(|e| {
            Rejection::new(
                ErrorClass::Invalid,
                format!("does not fit the typed schema: {e}"),
            )
            .with_message_id(Some(message_id.clone()))
        })?;
    }
    Ok(Validated {
        message_id: Some(message_id),
        records,
        handled_elsewhere: None,
    })
}

fn unsupported_reason(kind: DocumentKind) -> String {
    format!(
        "unsupported document type: {} ({}) has no typed topic in validate (readings take RSM-012, metering points RSM-022, charges RSM-034, charge links RSM-031, wholesale results RSM-019 and RSM-014)",
        kind.name(),
        kind.rsm()
    )
}

/// The dead-letter class of a CIM error, and a reason naming the CIM class,
/// the JSON path and (when the connector could not split) its reason too.
pub fn cim_rejection(error: &CimError, meta: &RawMeta) -> Rejection {
    use afregning_cim::ErrorClass as C;
    let class = match error.class {
        C::MalformedJson => ErrorClass::Undecodable,
        C::SchemaViolation | C::UnknownDocumentType | C::BusinessInvalid => ErrorClass::Invalid,
    };
    let mut reason = format!("{} {}: {}", error.class.as_str(), error.path, error.reason);
    if let Some(split) = &meta.split_error {
        reason.push_str(&format!(" (connector could not split the bundle: {split})"));
    }
    Rejection::new(class, reason)
}

/// The topology's resolution for a CIM resolution.
pub fn resolution(r: CimResolution) -> Resolution {
    match r {
        CimResolution::QuarterHour => Resolution::Pt15m,
        CimResolution::Hour => Resolution::Pt1h,
        CimResolution::Day => Resolution::P1d,
        CimResolution::Month => Resolution::P1m,
    }
}

fn quality(q: CimQuality) -> Result<Quality, Rejection> {
    Quality::from_code(q.as_str()).ok_or_else(|| {
        Rejection::new(
            ErrorClass::Invalid,
            format!("quality {} has no typed equivalent", q.as_str()),
        )
    })
}

fn readings(doc: &rsm012::NotifyValidatedMeasureData) -> Result<Vec<Typed>, Rejection> {
    let mut out = Vec::with_capacity(doc.series.len());
    if doc.series.is_empty() {
        return Err(Rejection::new(
            ErrorClass::Invalid,
            "RSM-012 document without series: nothing to validate",
        ));
    }
    for series in &doc.series {
        // Sized once (collecting `Result`s cannot see the count, and grew it six times a day).
        let mut points = Vec::with_capacity(series.period.points.len());
        for p in &series.period.points {
            points.push(ReadingPoint {
                position: i32::try_from(p.position).map_err(|_| {
                    Rejection::new(
                        ErrorClass::Invalid,
                        format!("position {} out of range", p.position),
                    )
                })?,
                quantity: p.quantity,
                quality: quality(p.quality)?,
            });
        }
        let gsrn = series.metering_point.to_string();
        let reading = Reading {
            gsrn: gsrn.clone(),
            metering_point_type: series.metering_point_type.as_str().to_string(),
            resolution: resolution(series.period.resolution),
            period_start: series.period.interval.start,
            period_end: series.period.interval.end,
            registered_at: series.registered,
            unit: series.unit.as_str().to_string(),
            product: series.product.clone(),
            business_reason: Some(doc.header.process_type.as_str().to_string()),
            source_message_id: doc.header.message_id.clone(),
            transaction_id: series.transaction_id.clone(),
            points,
        };
        out.push(Typed::Reading(MeteringPointKey { gsrn }, reading));
    }
    Ok(out)
}

fn metering_points(doc: &rsm022::AccountingPointCharacteristics) -> Result<Vec<Typed>, Rejection> {
    let mut out = Vec::with_capacity(doc.records.len());
    for record in &doc.records {
        let mp = &record.metering_point;
        let gsrn = mp.gsrn.to_string();
        let invalid = |what: &str| {
            Rejection::new(
                ErrorClass::Invalid,
                format!(
                    "RSM-022 record {} for {gsrn}: {what}",
                    record.transaction_id
                ),
            )
        };
        let grid_area = mp
            .grid_area
            .as_ref()
            .ok_or_else(|| invalid("no meteringGridArea_Domain.mRID"))?
            .value
            .clone();
        let metering_point_type = mp
            .metering_point_type
            .ok_or_else(|| invalid("no metering point type"))?
            .as_str()
            .to_string();
        let settlement_method = match mp.settlement_method {
            Some(m) => Some(SettlementMethod::from_code(m.as_str()).ok_or_else(|| {
                invalid(&format!(
                    "settlement method {} has no typed equivalent",
                    m.as_str()
                ))
            })?),
            None => None,
        };
        let value = MeteringPoint {
            gsrn: gsrn.clone(),
            metering_point_type,
            settlement_method,
            grid_area,
            // RSM-022 carries no price area: enrich derives it from the grid area.
            price_area: None,
            resolution: resolution(
                mp.read_cycle
                    .ok_or_else(|| invalid("no readCycle (the resolution of its time series)"))?,
            ),
            energy_supplier_gln: mp.energy_supplier.as_ref().map(|p| p.value.clone()),
            supply_start: mp.supply_start,
            supply_end: None,
            connection_state: mp.connection_state.map(|s| s.as_str().to_string()),
            valid_from: record.validity_start,
            valid_to: None,
            source_message_id: doc.header.message_id.clone(),
        };
        out.push(Typed::MeteringPoint(
            MeteringPointPeriodKey {
                gsrn,
                valid_from: record.validity_start,
            },
            value,
        ));
    }
    Ok(out)
}

/// The topology's charge type for a CIM charge kind.
pub(crate) fn charge_type(kind: ChargeKind) -> ChargeType {
    match kind {
        ChargeKind::Subscription => ChargeType::Subscription,
        ChargeKind::Fee => ChargeType::Fee,
        ChargeKind::Tariff => ChargeType::Tariff,
    }
}

/// RSM-034: a charge with master data (D18) becomes a charges-table record,
/// each price series (D08) a charge-prices record; a charge with neither is
/// refused, as is a price series without its validity interval.
fn charges(doc: &rsm034::NotifyPriceList) -> Result<Vec<Typed>, Rejection> {
    let mut out = Vec::new();
    for record in &doc.records {
        for charge in &record.charge_group.charges {
            let invalid = |what: &str| {
                Rejection::new(
                    ErrorClass::Invalid,
                    format!(
                        "RSM-034 record {} charge {}: {what}",
                        record.transaction_id, charge.code
                    ),
                )
            };
            let owner = charge
                .owner
                .as_ref()
                .ok_or_else(|| invalid("no chargeTypeOwner_MarketParticipant.mRID"))?
                .value
                .clone();
            let kind = charge_type(charge.kind.ok_or_else(|| invalid("no type"))?);
            let effective = charge
                .effective
                .ok_or_else(|| invalid("no effectiveDate"))?;
            let mut emitted = false;
            if let Some(price_resolution) = charge.price_resolution {
                let value = Charge {
                    owner_gln: owner.clone(),
                    charge_type: kind,
                    charge_code: charge.code.clone(),
                    name: charge.name.clone(),
                    resolution: resolution(price_resolution),
                    tax_indicator: charge.tax.unwrap_or(false),
                    vat_class: match charge.vat_payer {
                        Some(VatPayer::Issuer) => VatClass::NoVat,
                        Some(VatPayer::Recipient) | None => VatClass::Vat25,
                    },
                    transparent_invoicing: charge.transparent_invoicing.unwrap_or(false),
                    valid_from: effective,
                    valid_to: charge.termination,
                    source_message_id: doc.header.message_id.clone(),
                };
                out.push(Typed::Charge(
                    ChargePeriodKey {
                        owner_gln: owner.clone(),
                        charge_type: kind,
                        charge_code: charge.code.clone(),
                        valid_from: effective,
                    },
                    value,
                ));
                emitted = true;
            }
            for series in &charge.prices {
                let interval = series
                    .interval
                    .ok_or_else(|| invalid("a price series without timeInterval"))?;
                let points = series
                    .points
                    .iter()
                    .map(|p| {
                        Ok(ChargePricePoint {
                            position: i32::try_from(p.position)
                                .map_err(|_| invalid("price position out of range"))?,
                            price: p.price,
                        })
                    })
                    .collect::<Result<Vec<_>, Rejection>>()?;
                out.push(Typed::ChargePrice(
                    ChargePriceKey {
                        owner_gln: owner.clone(),
                        charge_type: kind,
                        charge_code: charge.code.clone(),
                        period_start: interval.start,
                    },
                    ChargePrice {
                        owner_gln: owner.clone(),
                        charge_type: kind,
                        charge_code: charge.code.clone(),
                        resolution: resolution(series.resolution),
                        period_start: interval.start,
                        period_end: interval.end,
                        points,
                        source_message_id: doc.header.message_id.clone(),
                    },
                ));
                emitted = true;
            }
            if !emitted {
                return Err(invalid(
                    "neither charge information (priceTimeFrame_Period.resolution) nor prices (Series_Period)",
                ));
            }
        }
    }
    Ok(out)
}

/// RSM-031: one charge-links record per linked charge of each metering point.
fn charge_links(doc: &rsm031::NotifyBillingMasterData) -> Result<Vec<Typed>, Rejection> {
    let mut out = Vec::new();
    for record in &doc.records {
        let gsrn = record.metering_point.to_string();
        for link in &record.charge_group.links {
            let invalid = |what: &str| {
                Rejection::new(
                    ErrorClass::Invalid,
                    format!(
                        "RSM-031 record {} for {gsrn}, charge {}: {what}",
                        record.transaction_id, link.code
                    ),
                )
            };
            let from = link.effective.ok_or_else(|| invalid("no effectiveDate"))?;
            let quantity = match link.factor.as_deref() {
                None => 1,
                Some(f) => f
                    .trim()
                    .parse::<i32>()
                    .map_err(|_| invalid(&format!("factor {f:?} is not a whole number")))?,
            };
            let kind = charge_type(link.kind);
            out.push(Typed::ChargeLink(
                ChargeLinkKey {
                    gsrn: gsrn.clone(),
                    owner_gln: link.owner.value.clone(),
                    charge_type: kind,
                    charge_code: link.code.clone(),
                    valid_from: from,
                },
                ChargeLink {
                    gsrn: gsrn.clone(),
                    owner_gln: link.owner.value.clone(),
                    charge_type: kind,
                    charge_code: link.code.clone(),
                    quantity,
                    valid_from: from,
                    valid_to: link.termination,
                    source_message_id: doc.header.message_id.clone(),
                },
            ));
        }
    }
    Ok(out)
}

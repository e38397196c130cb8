//! The pure core of validate: one raw DataHub record in, typed records or a
//! rejection out, and the dedupe decision. No I/O; tested exhaustively here.

use afregning_cim::codes::Quality as CimQuality;
use afregning_cim::{
    CimError, Document, DocumentKind, Resolution as CimResolution, rsm012, rsm022,
};
use afregning_topology::records::{
    AvroRecord, ErrorClass, MeteringPoint, MeteringPointKey, MeteringPointPeriodKey, Quality,
    Reading, ReadingPoint, Resolution, SettlementMethod,
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
}

/// The outcome of validating one raw record.
#[derive(Debug, Clone, PartialEq)]
pub struct Validated {
    /// DataHub's MessageId (from the header or the document).
    pub message_id: Option<String>,
    /// The typed records, in document order, each with its idempotency key
    /// `<message id>:<part>:<transaction index>`.
    pub records: Vec<(String, Typed)>,
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
        Document::AccountingPointCharacteristics(doc) => metering_points(doc)?,
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
        // is the document's fault: reject it here, not at produce time.
        let checked = match typed {
            Typed::Reading(_, r) => r.to_avro().map(|_| ()),
            Typed::MeteringPoint(_, m) => m.to_avro().map(|_| ()),
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
    })
}

fn unsupported_reason(kind: DocumentKind) -> String {
    format!(
        "unsupported document type: {} ({}) has no typed topic in validate (readings take RSM-012, metering points RSM-022)",
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
        let points = series
            .period
            .points
            .iter()
            .map(|p| {
                Ok(ReadingPoint {
                    position: i32::try_from(p.position).map_err(|_| {
                        Rejection::new(
                            ErrorClass::Invalid,
                            format!("position {} out of range", p.position),
                        )
                    })?,
                    quantity: p.quantity,
                    quality: quality(p.quality)?,
                })
            })
            .collect::<Result<Vec<_>, Rejection>>()?;
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

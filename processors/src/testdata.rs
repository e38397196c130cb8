//! CIM JSON documents and raw records for the processors' tests.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::runtime::InputRecord;

fn header(
    root: &str,
    message_id: &str,
    doc_type: &str,
    process: &str,
    sender_role: &str,
) -> serde_json::Map<String, Value> {
    let _ = root;
    let mut h = serde_json::Map::new();
    h.insert("mRID".into(), json!(message_id));
    h.insert("businessSector.type".into(), json!({"value": "23"}));
    h.insert("createdDateTime".into(), json!("2025-03-31T07:30:54Z"));
    h.insert("process.processType".into(), json!({"value": process}));
    h.insert(
        "receiver_MarketParticipant.mRID".into(),
        json!({"codingScheme": "A10", "value": "5790000432752"}),
    );
    h.insert(
        "receiver_MarketParticipant.marketRole.type".into(),
        json!({"value": "DDQ"}),
    );
    h.insert(
        "sender_MarketParticipant.mRID".into(),
        json!({"codingScheme": "A10", "value": "5790001330552"}),
    );
    h.insert(
        "sender_MarketParticipant.marketRole.type".into(),
        json!({"value": sender_role}),
    );
    h.insert("type".into(), json!({"value": doc_type}));
    h
}

/// One RSM-012 series: GSRN, registration time, period, resolution, points
/// `(position, quantity text, quality code)`.
pub struct Series<'a> {
    pub gsrn: &'a str,
    pub transaction: &'a str,
    pub registered: &'a str,
    pub start: &'a str,
    pub end: &'a str,
    pub resolution: &'a str,
    pub points: Vec<(u32, Option<&'a str>, Option<&'a str>)>,
}

/// An RSM-012 document.
pub fn rsm012(message_id: &str, series: &[Series<'_>]) -> Vec<u8> {
    let mut doc = header(
        "NotifyValidatedMeasureData_MarketDocument",
        message_id,
        "E66",
        "E23",
        "MDR",
    );
    let series: Vec<Value> = series
        .iter()
        .map(|s| {
            let points: Vec<Value> = s
                .points
                .iter()
                .map(|(pos, qty, quality)| {
                    let mut p = serde_json::Map::new();
                    p.insert("position".into(), json!({"value": pos}));
                    if let Some(q) = quality {
                        p.insert("quality".into(), json!({"value": q}));
                    }
                    if let Some(q) = qty {
                        p.insert(
                            "quantity".into(),
                            serde_json::from_str::<Value>(q).expect("number"),
                        );
                    }
                    Value::Object(p)
                })
                .collect();
            json!({
                "mRID": s.transaction,
                "marketEvaluationPoint.mRID": {"codingScheme": "A10", "value": s.gsrn},
                "marketEvaluationPoint.type": {"value": "E17"},
                "product": "8716867000030",
                "quantity_Measure_Unit.name": {"value": "KWH"},
                "registration_DateAndOrTime.dateTime": s.registered,
                "Period": {
                    "resolution": s.resolution,
                    "timeInterval": {"start": {"value": s.start}, "end": {"value": s.end}},
                    "Point": points,
                }
            })
        })
        .collect();
    doc.insert("Series".into(), Value::Array(series));
    serde_json::to_vec(&json!({"NotifyValidatedMeasureData_MarketDocument": Value::Object(doc)}))
        .expect("json")
}

/// A day of `n` points at `resolution` with the same quantity text.
pub fn flat_points(n: u32, quantity: &str) -> Vec<(u32, Option<&str>, Option<&str>)> {
    (1..=n).map(|p| (p, Some(quantity), None)).collect()
}

/// An RSM-022 document with one metering point.
pub fn rsm022(
    message_id: &str,
    gsrn: &str,
    grid_area: &str,
    validity_start: &str,
    read_cycle: &str,
    supplier: &str,
) -> Vec<u8> {
    let mut doc = header(
        "AccountingPointCharacteristics_MarketDocument",
        message_id,
        "E07",
        "D15",
        "DDZ",
    );
    doc.insert(
        "MktActivityRecord".into(),
        json!([{
            "mRID": format!("tx-{message_id}"),
            "validityStart_DateAndOrTime.dateTime": validity_start,
            "MarketEvaluationPoint": {
                "mRID": {"codingScheme": "A10", "value": gsrn},
                "type": {"value": "E17"},
                "settlementMethod": {"value": "D01"},
                "connectionState": {"value": "E22"},
                "readCycle": read_cycle,
                "meteringGridArea_Domain.mRID": {"codingScheme": "NDK", "value": grid_area},
                "energySupplier_MarketParticipant.mRID": {"codingScheme": "A10", "value": supplier},
                "supplyStart_DateAndOrTime.dateTime": validity_start,
            }
        }]),
    );
    serde_json::to_vec(
        &json!({"AccountingPointCharacteristics_MarketDocument": Value::Object(doc)}),
    )
    .expect("json")
}

/// A raw record as the connector writes it (headers, value), at `offset`.
pub fn raw_record(
    topic: &str,
    offset: i64,
    message_id: &str,
    part: u32,
    value: Vec<u8>,
    at: DateTime<Utc>,
) -> InputRecord {
    InputRecord {
        topic: topic.to_string(),
        partition: 0,
        offset,
        timestamp: Some(at.timestamp_millis()),
        key: None,
        value: Some(value),
        headers: vec![
            (
                afregning_topology::raw_headers::MESSAGE_ID.to_string(),
                message_id.as_bytes().to_vec(),
            ),
            (
                afregning_topology::raw_headers::PART_INDEX.to_string(),
                part.to_string().into_bytes(),
            ),
        ],
    }
}

/// A UTC instant from RFC 3339 text.
pub fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .expect("rfc3339")
        .with_timezone(&Utc)
}

/// A record of `topic` with Avro key and value in the local wire format.
pub fn avro_input<K, V>(
    topic: &str,
    offset: i64,
    key: &K,
    value: &V,
    at: DateTime<Utc>,
) -> InputRecord
where
    K: afregning_topology::records::AvroRecord,
    V: afregning_topology::records::AvroRecord,
{
    let wire = crate::shared::Wire::local();
    InputRecord {
        topic: topic.to_string(),
        partition: 0,
        offset,
        timestamp: Some(at.timestamp_millis()),
        key: Some(wire.encode(key).expect("key")),
        value: Some(wire.encode(value).expect("value")),
        headers: Vec::new(),
    }
}

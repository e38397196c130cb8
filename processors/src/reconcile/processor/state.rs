//! reconcile's state: the keys and values of its two stores and the handles to them.
//!
//! `results`: `area␟YYYY-MM␟MessageId␟mRID` → a result series (JSON); `~dirty␟area␟YYYY-MM`
//! marks; `~state␟area␟YYYY-MM` → the month's last outcome. `readings`: `GSRN␟YYYY-MM-DD` →
//! the day's positions (settle's format); `~point␟GSRN` → master data;
//! `~held␟area␟YYYY-MM␟GSRN` and `~month␟area␟YYYY-MM` marks. Values start with a format
//! byte (JSON after it), so a store written by another build is an error, never a misread.

use afregning_topology::records::{Resolution as WireResolution, WholesaleResult};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{READINGS_STORE, RESULTS_STORE};
use crate::runtime::typed::{
    KEY_SEP, Marks, StoreKey, StoreValue, TypedStore, join_parts, split_parts,
};
use crate::settle::core::DayKey;
use crate::shared::positions::DayPositions;

pub(super) const RESULTS: TypedStore<ResultKey, StoredResult> = TypedStore::new(RESULTS_STORE);
pub(super) const OUTCOMES: TypedStore<OutcomeKey, Outcome> = TypedStore::new(RESULTS_STORE);
pub(super) const DIRTY: Marks<AreaMonth> = Marks::new(RESULTS_STORE, "dirty");
pub(super) const DAYS: TypedStore<DayKey, DayPositions> = TypedStore::new(READINGS_STORE);
pub(super) const POINTS: TypedStore<PointKey, PointInfo> = TypedStore::new(READINGS_STORE);
pub(super) const HELD: Marks<AreaMonthPoint> = Marks::new(READINGS_STORE, "held");
pub(super) const MONTHS: Marks<AreaMonth> = Marks::new(READINGS_STORE, "month");

/// A grid area's month: what is reconciled.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct AreaMonth {
    pub(super) area: String,
    pub(super) month: String,
}

impl StoreKey for AreaMonth {
    fn encode(&self, out: &mut Vec<u8>) {
        join_parts(&[&self.area, &self.month], out);
    }
    fn decode(bytes: &[u8]) -> Option<Self> {
        match split_parts(bytes)?.as_slice() {
            [area, month] => Some(Self {
                area: (*area).to_string(),
                month: (*month).to_string(),
            }),
            _ => None,
        }
    }
}

/// A metering point with positions in a grid area's month.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct AreaMonthPoint {
    pub(super) area: String,
    pub(super) month: String,
    pub(super) gsrn: String,
}

impl StoreKey for AreaMonthPoint {
    fn encode(&self, out: &mut Vec<u8>) {
        join_parts(&[&self.area, &self.month, &self.gsrn], out);
    }
    fn decode(bytes: &[u8]) -> Option<Self> {
        match split_parts(bytes)?.as_slice() {
            [area, month, gsrn] => Some(Self {
                area: (*area).to_string(),
                month: (*month).to_string(),
                gsrn: (*gsrn).to_string(),
            }),
            _ => None,
        }
    }
}

/// One result series of one month.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ResultKey {
    pub(super) area: String,
    pub(super) month: String,
    pub(super) message_id: String,
    pub(super) transaction_id: String,
}

impl StoreKey for ResultKey {
    fn encode(&self, out: &mut Vec<u8>) {
        join_parts(
            &[
                &self.area,
                &self.month,
                &self.message_id,
                &self.transaction_id,
            ],
            out,
        );
    }
    fn decode(bytes: &[u8]) -> Option<Self> {
        match split_parts(bytes)?.as_slice() {
            [area, month, message_id, transaction_id] => Some(Self {
                area: (*area).to_string(),
                month: (*month).to_string(),
                message_id: (*message_id).to_string(),
                transaction_id: (*transaction_id).to_string(),
            }),
            _ => None,
        }
    }
}

/// Where a month's last outcome is kept (`~state␟area␟YYYY-MM`, apart from the series).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct OutcomeKey(pub(super) AreaMonth);

impl StoreKey for OutcomeKey {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"~state");
        out.push(KEY_SEP);
        self.0.encode(out);
    }
    fn decode(bytes: &[u8]) -> Option<Self> {
        let rest = bytes.strip_prefix(b"~state\x1f")?;
        AreaMonth::decode(rest).map(OutcomeKey)
    }
}

/// A metering point's master data (`~point␟GSRN`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct PointKey(pub(super) String);

impl StoreKey for PointKey {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"~point");
        out.push(KEY_SEP);
        out.extend_from_slice(self.0.as_bytes());
    }
    fn decode(bytes: &[u8]) -> Option<Self> {
        let rest = bytes.strip_prefix(b"~point\x1f")?;
        Some(PointKey(String::from_utf8(rest.to_vec()).ok()?))
    }
}

/// Values kept as a format byte and JSON: small, and readable when debugging a store.
fn json_encode<T: Serialize>(format: u8, value: &T) -> Vec<u8> {
    let mut out = vec![format];
    out.extend(serde_json::to_vec(value).unwrap_or_default());
    out
}

fn json_decode<T: for<'de> Deserialize<'de>>(format: u8, bytes: &[u8]) -> Result<T, String> {
    match bytes.split_first() {
        Some((f, rest)) if *f == format => serde_json::from_slice(rest).map_err(|e| e.to_string()),
        Some((f, _)) => Err(format!("format {f}, expected {format}")),
        None => Err("empty".into()),
    }
}

/// A result series as validate wrote it.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct StoredResult(pub(super) WholesaleResult);

impl StoreValue for StoredResult {
    const WHAT: &'static str = "stored wholesale result";
    fn encode(&self) -> Vec<u8> {
        json_encode(1, &self.0)
    }
    fn decode(bytes: &[u8]) -> Result<Self, String> {
        json_decode(1, bytes).map(StoredResult)
    }
}

/// A month's last published reconciliation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Outcome {
    pub(super) version: i64,
    pub(super) digest: u64,
}

impl StoreValue for Outcome {
    const WHAT: &'static str = "stored reconciliation outcome";
    fn encode(&self) -> Vec<u8> {
        json_encode(1, self)
    }
    fn decode(bytes: &[u8]) -> Result<Self, String> {
        json_decode(1, bytes)
    }
}

/// What DataHub groups a metering point by, and what the engine needs to settle it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct PointInfo {
    pub(super) grid_area: String,
    pub(super) price_area: Option<String>,
    pub(super) metering_point_type: String,
    pub(super) settlement_method: Option<String>,
    pub(super) resolution: WireResolution,
    pub(super) supply_from: DateTime<Utc>,
}

impl StoreValue for PointInfo {
    const WHAT: &'static str = "stored metering point";
    fn encode(&self) -> Vec<u8> {
        json_encode(1, self)
    }
    fn decode(bytes: &[u8]) -> Result<Self, String> {
        json_decode(1, bytes)
    }
}

//! What may be asked and the CIM document that asks it: RSM-016
//! `RequestAggregatedMeasureData` (BRS-026, answered with RSM-014) and RSM-017
//! `RequestWholesaleSettlement` (BRS-028, answered with RSM-019), one series per request,
//! for one grid area's Danish calendar month, as the energy supplier asking for its own data.
//!
//! Pure: the caller gives the ids and the clock, so a document can be checked against
//! Energinet's JSON schema in a test and built again byte for byte.

use afregning_cim::codes::{BusinessSector, MessageType, ProcessType, ProcessVariant, Role};
use afregning_cim::rsm016::{AggregationRequest, RequestAggregatedMeasureData};
use afregning_cim::rsm017::{RequestWholesaleSettlement, SettlementRequest};
use afregning_cim::{AreaId, DATAHUB_GLN, Header, Participant, PartyId};
use afregning_topology::records::OutboundDocumentType;
use chrono::{DateTime, Datelike, Months, NaiveDate, TimeZone, Utc};
use chrono_tz::Europe::Copenhagen;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// How far back DataHub answers a request: 3 years and 6 months (lifecycle NOTES §2.12,
/// DataHub's process manager's business validation).
pub const MAX_MONTHS_BACK: u32 = 42;

/// Which of DataHub's results a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RequestedData {
    /// RSM-016 → RSM-014: energy per grid area, metering point type and settlement method.
    AggregatedMeasureData,
    /// RSM-017 → RSM-019: amounts per charge, monthly amounts and totals.
    WholesaleSettlement,
}

impl RequestedData {
    /// Its name in the table and the API.
    pub fn name(self) -> &'static str {
        match self {
            RequestedData::AggregatedMeasureData => "aggregated_measure_data",
            RequestedData::WholesaleSettlement => "wholesale_settlement",
        }
    }

    /// The outbound document type the connector posts it as.
    pub fn document_type(self) -> OutboundDocumentType {
        match self {
            RequestedData::AggregatedMeasureData => {
                OutboundDocumentType::RequestAggregatedMeasureData
            }
            RequestedData::WholesaleSettlement => OutboundDocumentType::RequestWholesaleSettlement,
        }
    }

    /// The business reasons (calculation types) DataHub answers this request for.
    pub fn business_reasons(self) -> &'static [&'static str] {
        match self {
            // Preliminary aggregation, balance fixing, wholesale fixing, correction settlement.
            RequestedData::AggregatedMeasureData => &["D03", "D04", "D05", "D32"],
            RequestedData::WholesaleSettlement => &["D05", "D32"],
        }
    }
}

/// What to ask for: one grid area's month of one calculation type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestSpec {
    /// Which results.
    pub data: RequestedData,
    /// The calculation type: D03, D04, D05 or D32 (`process.processType`).
    pub business_reason: String,
    /// With D32 only: which correction round (D01-D03); none asks for the latest.
    pub settlement_version: Option<String>,
    /// The grid area (3 digits).
    pub grid_area: String,
    /// First day of the Danish calendar month.
    pub month: NaiveDate,
    /// Our GLN: the sender, and the energy supplier whose data is asked for (a supplier may
    /// ask only for its own).
    pub supplier_gln: String,
    /// Wholesale settlement only: one charge owner's results.
    pub charge_owner_gln: Option<String>,
}

/// The ids a request goes out under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestIds {
    /// Ours: the outbound record's key, the answer on the responses topic names it.
    pub request_id: String,
    /// The document's `mRID` (DataHub refuses a second document with the same one).
    pub message_id: String,
    /// The series' `mRID`: DataHub's answers name it in `originalTransactionIDReference_Series.mRID`.
    pub transaction_id: String,
}

impl RequestIds {
    /// Fresh random ids.
    pub fn new() -> Self {
        let id = || uuid::Uuid::new_v4().to_string();
        RequestIds {
            request_id: id(),
            message_id: id(),
            transaction_id: id(),
        }
    }
}

impl Default for RequestIds {
    fn default() -> Self {
        Self::new()
    }
}

/// The UTC instant of a local (Europe/Copenhagen) midnight.
fn local_midnight(day: NaiveDate) -> DateTime<Utc> {
    let local = day.and_hms_opt(0, 0, 0).unwrap_or_default();
    Copenhagen
        .from_local_datetime(&local)
        .earliest()
        .map_or_else(|| local.and_utc(), |t| t.with_timezone(&Utc))
}

/// The month's UTC bounds `[start, end)`: local midnights of its first day and the next month's.
pub fn month_period(month: NaiveDate) -> (DateTime<Utc>, DateTime<Utc>) {
    let first = month.with_day(1).unwrap_or(month);
    (
        local_midnight(first),
        local_midnight(first + Months::new(1)),
    )
}

fn digits(text: &str, n: usize) -> bool {
    text.len() == n && text.bytes().all(|b| b.is_ascii_digit())
}

/// Refuses what DataHub would refuse (lifecycle NOTES §2.12, §4.4), with the reason: a
/// calculation type the request does not have, a correction round without D32, a month not
/// over yet on `today` or more than [`MAX_MONTHS_BACK`] months back, malformed codes.
pub fn check(spec: &RequestSpec, today: NaiveDate) -> Result<(), String> {
    if !digits(&spec.grid_area, 3) {
        return Err(format!(
            "`{}` is not a grid area (3 digits)",
            spec.grid_area
        ));
    }
    if !digits(&spec.supplier_gln, 13) {
        return Err(format!("`{}` is not a GLN (13 digits)", spec.supplier_gln));
    }
    let reasons = spec.data.business_reasons();
    if !reasons.contains(&spec.business_reason.as_str()) {
        return Err(format!(
            "`{}` is not a calculation type DataHub answers a {} request for (one of {})",
            spec.business_reason,
            spec.data.name(),
            reasons.join(", ")
        ));
    }
    match (&spec.settlement_version, spec.business_reason.as_str()) {
        (Some(v), "D32") if ["D01", "D02", "D03"].contains(&v.as_str()) => {}
        (Some(v), "D32") => {
            return Err(format!("`{v}` is not a correction round (D01, D02 or D03)"));
        }
        (Some(_), _) => {
            return Err("a settlement version (correction round) goes only with D32".into());
        }
        (None, _) => {}
    }
    match (&spec.charge_owner_gln, spec.data) {
        (Some(owner), RequestedData::WholesaleSettlement) if !digits(owner, 13) => {
            return Err(format!("`{owner}` is not a GLN (13 digits)"));
        }
        (Some(_), RequestedData::AggregatedMeasureData) => {
            return Err("a charge owner goes only with a wholesale settlement request".into());
        }
        _ => {}
    }
    let this_month = today.with_day(1).unwrap_or(today);
    if spec.month.day() != 1 || spec.month >= this_month {
        return Err(format!(
            "{} is not a month that is over (DataHub calculates a month after it ends)",
            spec.month.format("%Y-%m")
        ));
    }
    if spec.month < this_month - Months::new(MAX_MONTHS_BACK) {
        return Err(format!(
            "{} is more than 3 years and 6 months back; DataHub answers no further",
            spec.month.format("%Y-%m")
        ));
    }
    Ok(())
}

/// The header of a request from us (DDQ) to DataHub in `receiver_role`.
fn header(
    spec: &RequestSpec,
    ids: &RequestIds,
    created: DateTime<Utc>,
    receiver_role: Role,
    document_type: MessageType,
) -> Header {
    Header {
        message_id: ids.message_id.clone(),
        business_sector: Some(BusinessSector::ELECTRICITY),
        created,
        process_type: ProcessType::parse(&spec.business_reason)
            .unwrap_or(ProcessType::WHOLESALE_FIXING),
        reason_code: None,
        sender: Participant {
            id: PartyId::gln(&spec.supplier_gln),
            role: Role::ENERGY_SUPPLIER,
        },
        receiver: Participant {
            id: PartyId::gln(DATAHUB_GLN),
            role: receiver_role,
        },
        document_type,
    }
}

/// The CIM JSON document for `spec` (checked with [`check`] first), and the document type
/// the connector posts it as.
pub fn document(
    spec: &RequestSpec,
    ids: &RequestIds,
    created: DateTime<Utc>,
) -> (OutboundDocumentType, String) {
    let (start, end) = month_period(spec.month);
    let version = spec
        .settlement_version
        .as_deref()
        .and_then(ProcessVariant::parse);
    let supplier = Some(PartyId::gln(&spec.supplier_gln));
    let grid_area = Some(AreaId::grid_area(&spec.grid_area));
    let bytes = match spec.data {
        RequestedData::AggregatedMeasureData => {
            afregning_cim::rsm016::write(&RequestAggregatedMeasureData {
                header: header(
                    spec,
                    ids,
                    created,
                    Role::METERED_DATA_ADMINISTRATOR,
                    MessageType::REQUEST_AGGREGATED_METERED_DATA,
                ),
                series: vec![AggregationRequest {
                    transaction_id: ids.transaction_id.clone(),
                    balance_responsible: None,
                    bidding_zone: None,
                    end: Some(end),
                    energy_supplier: supplier,
                    settlement_method: None,
                    metering_point_type: None,
                    grid_area,
                    settlement_version: version,
                    start,
                }],
            })
        }
        RequestedData::WholesaleSettlement => {
            afregning_cim::rsm017::write(&RequestWholesaleSettlement {
                header: header(
                    spec,
                    ids,
                    created,
                    Role::METERING_POINT_ADMINISTRATOR,
                    MessageType::REQUEST_AGGREGATED_BILLING_INFORMATION,
                ),
                series: vec![SettlementRequest {
                    transaction_id: ids.transaction_id.clone(),
                    resolution: None,
                    charge_owner: spec.charge_owner_gln.as_deref().map(PartyId::gln),
                    end: Some(end),
                    energy_supplier: supplier,
                    grid_area,
                    settlement_version: version,
                    start,
                    version: None,
                    charges: Vec::new(),
                }],
            })
        }
    };
    (
        spec.data.document_type(),
        String::from_utf8(bytes).unwrap_or_default(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use afregning_cim::Document;

    fn spec(data: RequestedData) -> RequestSpec {
        RequestSpec {
            data,
            business_reason: "D05".into(),
            settlement_version: None,
            grid_area: "344".into(),
            month: NaiveDate::from_ymd_opt(2026, 3, 1).unwrap(),
            supplier_gln: "5790002000000".into(),
            charge_owner_gln: None,
        }
    }

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 5, 12).unwrap()
    }

    #[test]
    fn a_march_request_covers_the_local_month_and_reads_back() {
        let ids = RequestIds::new();
        let created = Utc.with_ymd_and_hms(2026, 5, 12, 8, 0, 0).unwrap();
        let (kind, body) = document(&spec(RequestedData::WholesaleSettlement), &ids, created);
        assert_eq!(kind, OutboundDocumentType::RequestWholesaleSettlement);
        let Ok(Document::RequestWholesaleSettlement(doc)) = afregning_cim::parse(body.as_bytes())
        else {
            panic!("not an RSM-017: {body}");
        };
        assert_eq!(doc.header.message_id, ids.message_id);
        assert_eq!(doc.header.receiver.role, Role::METERING_POINT_ADMINISTRATOR);
        let series = &doc.series[0];
        assert_eq!(series.transaction_id, ids.transaction_id);
        // March 2026 in Denmark: CET at the start, CEST (DST from the 29th) at the end.
        assert_eq!(
            series.start,
            Utc.with_ymd_and_hms(2026, 2, 28, 23, 0, 0).unwrap()
        );
        assert_eq!(
            series.end,
            Some(Utc.with_ymd_and_hms(2026, 3, 31, 22, 0, 0).unwrap())
        );
        assert_eq!(
            series.energy_supplier.as_ref().map(|p| p.value.as_str()),
            Some("5790002000000")
        );

        let (kind, body) = document(&spec(RequestedData::AggregatedMeasureData), &ids, created);
        assert_eq!(kind, OutboundDocumentType::RequestAggregatedMeasureData);
        let Ok(Document::RequestAggregatedMeasureData(doc)) = afregning_cim::parse(body.as_bytes())
        else {
            panic!("not an RSM-016: {body}");
        };
        assert_eq!(doc.header.receiver.role, Role::METERED_DATA_ADMINISTRATOR);
        assert_eq!(
            doc.series[0].grid_area.as_ref().map(|a| a.value.as_str()),
            Some("344")
        );
    }

    #[test]
    fn what_datahub_would_refuse_is_refused_here() {
        let ok = spec(RequestedData::WholesaleSettlement);
        assert_eq!(check(&ok, today()), Ok(()));
        let refused = |change: &dyn Fn(&mut RequestSpec)| {
            let mut s = ok.clone();
            change(&mut s);
            check(&s, today()).expect_err("refused")
        };
        assert!(refused(&|s| s.business_reason = "D04".into()).contains("calculation type"));
        assert!(refused(&|s| s.settlement_version = Some("D01".into())).contains("only with D32"));
        assert!(
            refused(&|s| {
                s.business_reason = "D32".into();
                s.settlement_version = Some("D04".into());
            })
            .contains("correction round")
        );
        assert!(
            refused(&|s| s.month = NaiveDate::from_ymd_opt(2026, 5, 1).unwrap()).contains("over")
        );
        assert!(
            refused(&|s| s.month = NaiveDate::from_ymd_opt(2022, 10, 1).unwrap())
                .contains("3 years")
        );
        assert!(refused(&|s| s.grid_area = "34".into()).contains("grid area"));
        assert!(refused(&|s| s.charge_owner_gln = Some("57".into())).contains("GLN"));
        let mut aggregated = spec(RequestedData::AggregatedMeasureData);
        aggregated.business_reason = "D04".into();
        assert_eq!(check(&aggregated, today()), Ok(()));
        aggregated.charge_owner_gln = Some("5790000610976".into());
        assert!(check(&aggregated, today()).is_err());
        // The oldest month still answered: 42 months before May 2026.
        let mut oldest = ok.clone();
        oldest.month = NaiveDate::from_ymd_opt(2022, 11, 1).unwrap();
        assert_eq!(check(&oldest, today()), Ok(()));
    }
}

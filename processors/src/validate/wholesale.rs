//! validate's mapping of DataHub's calculation results: RSM-019 NotifyWholesaleServices
//! (amount per charge per hour or day, monthly amount per charge, totals per owner and in
//! all) and RSM-014 NotifyAggregatedMeasureData (energy per grid area, metering point type
//! and settlement method) become one `WholesaleResult` record per series on the
//! wholesale-results topic, keyed and routed by grid area.
//!
//! Why one record per series and nothing merged here: a correction run (D32, settlement
//! version D01-D03) is a new series with a new mRID, so every run stays on the topic (the
//! history) and the reader decides which run is in force (`reconcile::core::in_force`).
//! A series validate cannot place is refused whole, with the reason: one without a grid area
//! (it has no partition), a D32 without its correction round, an RSM-019 series whose
//! charge fields are half given.

use afregning_cim::codes::{MeteringPointType, SettlementMethod};
use afregning_cim::wholesale::CalculationType;
use afregning_cim::{Header, rsm014, rsm019};
use afregning_topology::records::{
    ErrorClass, Quality, WholesaleResult, WholesaleResultKey, WholesaleResultKind,
    WholesaleResultPoint,
};

use super::core::{Typed, charge_type, resolution};
use crate::shared::dead_letter::Rejection;

/// The typed records of an RSM-019 document, one per series.
pub fn wholesale_services(doc: &rsm019::NotifyWholesaleServices) -> Result<Vec<Typed>, Rejection> {
    doc.series
        .iter()
        .map(|s| {
            let invalid = |what: &str| invalid("RSM-019", &s.transaction_id, what);
            check_run(&doc.header, s.settlement_version.map(|v| v.as_str()))
                .map_err(|e| invalid(&e))?;
            let charged = [
                s.charge_code.is_some(),
                s.charge_kind.is_some(),
                s.charge_owner.is_some(),
            ];
            // A total for the supplier has no charge at all, a total per owner only its owner.
            if charged[0] != charged[1] || (charged[0] && !charged[2]) {
                return Err(invalid(
                    "chargeType.mRID, chargeType.type and the charge owner come together",
                ));
            }
            let points = s
                .period
                .points
                .iter()
                .map(|p| {
                    Ok(WholesaleResultPoint {
                        position: position(p.position).map_err(|e| invalid(&e))?,
                        quantity: p.quantity,
                        price: p.price,
                        amount: p.amount,
                        quality: p
                            .quality
                            .map(|q| quality(q.as_str()))
                            .transpose()
                            .map_err(|e| invalid(&e))?,
                    })
                })
                .collect::<Result<Vec<_>, Rejection>>()?;
            let value = WholesaleResult {
                kind: WholesaleResultKind::WholesaleServices,
                business_reason: doc.header.process_type.as_str().to_string(),
                calculation_version: s.version.clone(),
                settlement_version: s.settlement_version.map(|v| v.as_str().to_string()),
                grid_area: grid_area(s.grid_area.as_ref()).map_err(|e| invalid(&e))?,
                energy_supplier_gln: Some(s.energy_supplier.value.clone()),
                balance_responsible_gln: None,
                metering_point_type: s.metering_point_type.map(mp_type),
                settlement_method: s.settlement_method.map(method),
                charge_owner_gln: s.charge_owner.as_ref().map(|o| o.value.clone()),
                charge_type: s.charge_kind.map(charge_type),
                charge_code: s.charge_code.clone(),
                unit: s.unit.as_str().to_string(),
                currency: s.currency.map(|c| c.as_str().to_string()),
                resolution: resolution(s.period.resolution),
                period_start: s.period.interval.start,
                period_end: s.period.interval.end,
                points,
                source_message_id: doc.header.message_id.clone(),
                transaction_id: s.transaction_id.clone(),
            };
            Ok(typed(value))
        })
        .collect()
}

/// The typed records of an RSM-014 document, one per series.
pub fn aggregated_measure_data(
    doc: &rsm014::NotifyAggregatedMeasureData,
) -> Result<Vec<Typed>, Rejection> {
    doc.series
        .iter()
        .map(|s| {
            let invalid = |what: &str| invalid("RSM-014", &s.transaction_id, what);
            check_run(&doc.header, s.settlement_version.map(|v| v.as_str()))
                .map_err(|e| invalid(&e))?;
            let points = s
                .period
                .points
                .iter()
                .map(|p| {
                    Ok(WholesaleResultPoint {
                        position: position(p.position).map_err(|e| invalid(&e))?,
                        quantity: p.quantity,
                        price: None,
                        amount: None,
                        quality: Some(quality(p.quality.as_str()).map_err(|e| invalid(&e))?),
                    })
                })
                .collect::<Result<Vec<_>, Rejection>>()?;
            let value = WholesaleResult {
                kind: WholesaleResultKind::AggregatedMeasureData,
                business_reason: doc.header.process_type.as_str().to_string(),
                calculation_version: s.version.clone(),
                settlement_version: s.settlement_version.map(|v| v.as_str().to_string()),
                grid_area: grid_area(s.grid_area.as_ref()).map_err(|e| invalid(&e))?,
                energy_supplier_gln: s.energy_supplier.as_ref().map(|p| p.value.clone()),
                balance_responsible_gln: s.balance_responsible.as_ref().map(|p| p.value.clone()),
                metering_point_type: Some(mp_type(s.metering_point_type)),
                settlement_method: s.settlement_method.map(method),
                charge_owner_gln: None,
                charge_type: None,
                charge_code: None,
                unit: s.unit.as_str().to_string(),
                currency: None,
                resolution: resolution(s.period.resolution),
                period_start: s.period.interval.start,
                period_end: s.period.interval.end,
                points,
                source_message_id: doc.header.message_id.clone(),
                transaction_id: s.transaction_id.clone(),
            };
            Ok(typed(value))
        })
        .collect()
}

fn typed(value: WholesaleResult) -> Typed {
    Typed::WholesaleResult(
        WholesaleResultKey {
            grid_area: value.grid_area.clone(),
            transaction_id: value.transaction_id.clone(),
        },
        value,
    )
}

fn invalid(rsm: &str, transaction_id: &str, what: &str) -> Rejection {
    Rejection::new(
        ErrorClass::Invalid,
        format!("{rsm} series {transaction_id}: {what}"),
    )
}

/// The run must be one the reader can order (a correction names its round).
fn check_run(header: &Header, settlement_version: Option<&str>) -> Result<(), String> {
    CalculationType::from_document(header.process_type.as_str(), settlement_version)
        .map(|_| ())
        .map_err(|e| e.reason)
}

fn grid_area(area: Option<&afregning_cim::AreaId>) -> Result<String, String> {
    area.map(|a| a.value.clone()).ok_or_else(|| {
        "no meteringGridArea_Domain.mRID: a result is placed by its grid area".into()
    })
}

fn position(p: u32) -> Result<i32, String> {
    i32::try_from(p).map_err(|_| format!("position {p} out of range"))
}

fn quality(code: &str) -> Result<Quality, String> {
    Quality::from_code(code).ok_or_else(|| format!("quality {code} has no typed equivalent"))
}

fn mp_type(t: MeteringPointType) -> String {
    t.as_str().to_string()
}

fn method(m: SettlementMethod) -> String {
    m.as_str().to_string()
}

#[cfg(test)]
mod tests;

//! The settlement engine's input for one metering point and billing month,
//! straight from the ground truth: what the end-to-end tests and the
//! benchmarks compare the pipeline's statements with.
//!
//! Pure and independent of the pipeline's own conversions (it starts from
//! what the simulator generated, not from what validate parsed), so that a
//! mapping mistake in the pipeline shows up as a difference.

use afregning_cim::Resolution as CimResolution;
use afregning_cim::codes::{ChargeKind, Quality as CimQuality};
use afregning_settlement::{
    BillingMonth, Charge, ChargeKey, ChargeLink, ChargePeriod, ChargePricePoint, ChargeResolution,
    ChargeType, MeteringPoint, MonthInput, Position, PriceArea, ProductTerm, Quality, Resolution,
    Scope, SpotPrice, SupplyPeriod, VatClass,
};

use crate::ground_truth::{GroundTruth, MeteringPointTruth};

/// DataHub's quality code as the engine's quality (A02 missing; A03 and A05
/// estimated; A01 and A04 measured; A06 calculated).
pub fn quality(q: CimQuality) -> Quality {
    match q {
        CimQuality::NotAvailable => Quality::Missing,
        CimQuality::Estimated | CimQuality::Incomplete => Quality::Estimated,
        CimQuality::Adjusted | CimQuality::AsProvided => Quality::Measured,
        CimQuality::Calculated => Quality::Calculated,
    }
}

fn resolution(r: CimResolution) -> Resolution {
    match r {
        CimResolution::QuarterHour => Resolution::Pt15m,
        _ => Resolution::Pt1h,
    }
}

fn charge_type(kind: ChargeKind) -> ChargeType {
    match kind {
        ChargeKind::Subscription => ChargeType::Subscription,
        ChargeKind::Fee => ChargeType::Fee,
        ChargeKind::Tariff => ChargeType::Tariff,
    }
}

fn charge_kind(t: ChargeType) -> ChargeKind {
    match t {
        ChargeType::Subscription => ChargeKind::Subscription,
        ChargeType::Fee => ChargeKind::Fee,
        ChargeType::Tariff => ChargeKind::Tariff,
    }
}

/// The engine's input for `mp` in `month`: its final positions, links, the
/// linked charges with every price point, its zone's spot prices and
/// `product` (the supplier's terms, which the simulator does not know).
pub fn month_input(
    truth: &GroundTruth,
    mp: &MeteringPointTruth,
    month: BillingMonth,
    product: Vec<ProductTerm>,
) -> MonthInput {
    let period = month.period();
    let step = resolution(mp.resolution).duration();
    let mut positions = Vec::new();
    for reading in truth.readings.iter().filter(|r| r.gsrn == mp.gsrn) {
        for point in &reading.points {
            positions.push(Position {
                start: reading.start + step * (point.position as i32 - 1),
                quantity: point.quantity,
                quality: quality(point.quality),
                version: 1,
            });
        }
    }
    let links: Vec<ChargeLink> = truth
        .links_of(mp.gsrn)
        .map(|l| ChargeLink {
            key: ChargeKey::new(l.code.clone(), l.owner_gln.clone(), charge_type(l.kind)),
            quantity: l.factor,
            from: l.valid_from,
            to: l.valid_to,
        })
        .collect();
    let mut charges: Vec<Charge> = Vec::new();
    for link in &links {
        if charges.iter().any(|c| c.key == link.key) {
            continue;
        }
        let Some(c) = truth.charge(
            &link.key.owner,
            charge_kind(link.key.charge_type),
            &link.key.code,
        ) else {
            continue;
        };
        charges.push(Charge {
            key: link.key.clone(),
            resolution: match c.resolution {
                CimResolution::QuarterHour => ChargeResolution::Pt15m,
                CimResolution::Hour => ChargeResolution::Pt1h,
                CimResolution::Day => ChargeResolution::P1d,
                CimResolution::Month => ChargeResolution::P1m,
            },
            tax: c.tax,
            vat_class: if c.vat_class == "D01" {
                VatClass::NoVat
            } else {
                VatClass::Vat25
            },
            periods: vec![ChargePeriod {
                from: c.valid_from,
                to: Some(c.valid_to),
            }],
            prices: c
                .prices
                .iter()
                .map(|p| ChargePricePoint {
                    time: p.time,
                    price: p.price,
                })
                .collect(),
        });
    }
    let spot_prices = truth
        .spot_prices_in(&mp.price_area, period.start(), period.end())
        .map(|p| SpotPrice::from_dkk_per_mwh(p.start, resolution(p.resolution), p.dkk_per_mwh))
        .collect();
    MonthInput {
        metering_point: MeteringPoint {
            id: mp.gsrn.to_string(),
            grid_area: mp.grid_area.clone(),
            price_area: if mp.price_area == "DK1" {
                PriceArea::Dk1
            } else {
                PriceArea::Dk2
            },
        },
        period,
        supply: vec![SupplyPeriod {
            from: mp.supply_start.max(period.start()),
            to: None,
            resolution: resolution(mp.resolution),
        }],
        positions,
        charge_links: links,
        charges,
        spot_prices,
        product,
        scope: Scope::Full,
    }
}

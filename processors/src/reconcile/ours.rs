//! Our side of the reconciliation from our own settlement: each charge line's details (one
//! per position at the charge's resolution) and each reading position, tagged with the
//! metering point's master data so they can be grouped as DataHub groups them.
//!
//! Why from the details and not the monthly lines: DataHub prices the *group's* quantity
//! per position; only the positions let us do the same and compare to the øre.

use afregning_settlement::{ChargeResolution, LineSource, MonthStatement, Position};
use afregning_topology::records::Resolution;

use super::core::{AmountKey, OurChargePosition, OurEnergyPosition};

/// What DataHub groups a metering point by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeteringPointGroup {
    /// GSRN.
    pub gsrn: String,
    /// Grid area code.
    pub grid_area: String,
    /// E17, E18, …
    pub metering_point_type: String,
    /// D01 flex, E02 non-profiled, or none.
    pub settlement_method: Option<String>,
}

/// The resolution of RSM-019's amount per charge for a charge's price resolution:
/// subscriptions and fees are settled per day.
pub fn amount_resolution(r: ChargeResolution) -> &'static str {
    match r {
        ChargeResolution::Pt15m => "PT15M",
        ChargeResolution::Pt1h => "PT1H",
        ChargeResolution::P1d | ChargeResolution::P1m => "P1D",
    }
}

/// Every DataHub-charge position of a metering point's settled month.
pub fn charge_positions(
    statement: &MonthStatement,
    group: &MeteringPointGroup,
) -> Vec<OurChargePosition> {
    let mut out = Vec::new();
    for line in &statement.lines {
        let LineSource::Charge {
            key,
            resolution,
            tax,
        } = &line.source
        else {
            continue;
        };
        for detail in &line.details {
            out.push(OurChargePosition {
                gsrn: group.gsrn.clone(),
                grid_area: group.grid_area.clone(),
                key: AmountKey {
                    charge_owner: key.owner.clone(),
                    charge_code: key.code.clone(),
                    charge_type: key.charge_type.code().to_string(),
                    resolution: amount_resolution(*resolution).to_string(),
                    metering_point_type: group.metering_point_type.clone(),
                    settlement_method: group.settlement_method.clone(),
                    time: detail.start,
                },
                is_tax: *tax,
                quantity: detail.quantity,
                price: detail.price,
            });
        }
    }
    out
}

/// A metering point's reading positions at its own resolution.
pub fn energy_positions(
    positions: &[Position],
    resolution: Resolution,
    group: &MeteringPointGroup,
) -> Vec<OurEnergyPosition> {
    positions
        .iter()
        .map(|p| OurEnergyPosition {
            gsrn: group.gsrn.clone(),
            grid_area: group.grid_area.clone(),
            metering_point_type: group.metering_point_type.clone(),
            settlement_method: group.settlement_method.clone(),
            resolution,
            time: p.start,
            quantity: p.quantity,
        })
        .collect()
}

//! Energinet's preparation of metering point periods (opengeh-wholesale
//! `metering_point_periods.py`, `metering_point_periods_for_calculation_type.py`,
//! `grid_loss_metering_point_periods.py`): select the calculation's grid
//! areas, clamp to the period, map codes to names, give child metering points
//! their parent's energy supplier, and find the grid loss metering points.
//!
//! This is DataHub's side of the data, which a supplier receives ready-made;
//! it lives here, not in the settlement crate, because only the conformance
//! runner has to rebuild it.

use afregning_settlement::Resolution;
use anyhow::{Context, anyhow, bail};
use chrono::{DateTime, Utc};

use crate::scenario::{CalculationArgs, Row, field, required, timestamp};

/// Energinet's name of a metering point type code (`InputMeteringPointType` → `MeteringPointType`).
pub fn metering_point_type_name(code: &str) -> &'static str {
    match code {
        "E17" => "consumption",
        "E18" => "production",
        "E20" => "exchange",
        "D01" => "ve_production",
        "D05" => "net_production",
        "D06" => "supply_to_grid",
        "D07" => "consumption_from_grid",
        "D08" => "wholesale_services_information",
        "D09" => "own_production",
        "D10" => "net_from_grid",
        "D11" => "net_to_grid",
        "D12" => "total_consumption",
        "D14" => "electrical_heating",
        "D15" => "net_consumption",
        "D19" => "capacity_settlement",
        _ => "Unknown type",
    }
}

/// Energinet's name of a settlement method code (D01 flex, E02 non-profiled).
pub fn settlement_method_name(code: Option<&str>) -> Option<&'static str> {
    match code {
        Some("D01") => Some("flex"),
        Some("E02") => Some("non_profiled"),
        _ => None,
    }
}

/// One prepared metering point period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeteringPointPeriod {
    /// GSRN.
    pub id: String,
    /// Energinet type name ("consumption", "production", "exchange", child types).
    pub mp_type: &'static str,
    /// "flex", "non_profiled" or none.
    pub settlement_method: Option<&'static str>,
    /// Grid area.
    pub grid_area: String,
    /// Time series resolution.
    pub resolution: Resolution,
    /// Exchange: from grid area.
    pub from_grid_area: Option<String>,
    /// Exchange: to grid area.
    pub to_grid_area: Option<String>,
    /// Child: parent metering point.
    pub parent: Option<String>,
    /// Energy supplier (inherited from the parent for children).
    pub energy_supplier: Option<String>,
    /// Balance responsible party.
    pub balance_responsible: Option<String>,
    /// Inclusive start, clamped to the calculation period.
    pub from: DateTime<Utc>,
    /// Exclusive end, clamped to the calculation period.
    pub to: DateTime<Utc>,
}

impl MeteringPointPeriod {
    /// Consumption, production and exchange are parents; everything else is a child.
    pub fn is_parent(&self) -> bool {
        matches!(self.mp_type, "consumption" | "production" | "exchange")
    }
}

fn resolution(value: &str) -> anyhow::Result<Resolution> {
    match value {
        "PT15M" => Ok(Resolution::Pt15m),
        "PT1H" => Ok(Resolution::Pt1h),
        other => bail!("unknown metering point resolution {other}"),
    }
}

fn opt(row: &Row, column: &str) -> anyhow::Result<Option<String>> {
    Ok(field(row, column)?.map(str::to_string))
}

/// Metering point periods of the calculation, with children's energy supplier from their parent.
pub fn prepare_periods(
    args: &CalculationArgs,
    rows: &[Row],
) -> anyhow::Result<Vec<MeteringPointPeriod>> {
    let in_areas = |ga: &Option<String>| ga.as_ref().is_some_and(|g| args.grid_areas.contains(g));
    let mut periods = Vec::new();
    for (n, row) in rows.iter().enumerate() {
        let parse = || -> anyhow::Result<Option<MeteringPointPeriod>> {
            let grid_area = opt(row, "grid_area_code")?;
            let from_ga = opt(row, "from_grid_area_code")?;
            let to_ga = opt(row, "to_grid_area_code")?;
            if !(in_areas(&grid_area) || in_areas(&from_ga) || in_areas(&to_ga)) {
                return Ok(None);
            }
            let from = timestamp(required(row, "from_date")?)?;
            let to = field(row, "to_date")?.map(timestamp).transpose()?;
            if from >= args.period_end || to.is_some_and(|t| t <= args.period_start) {
                return Ok(None);
            }
            Ok(Some(MeteringPointPeriod {
                id: required(row, "metering_point_id")?.to_string(),
                mp_type: metering_point_type_name(required(row, "type")?),
                settlement_method: settlement_method_name(field(row, "settlement_method")?),
                grid_area: grid_area.ok_or_else(|| anyhow!("grid_area_code is empty"))?,
                resolution: resolution(required(row, "resolution")?)?,
                from_grid_area: from_ga,
                to_grid_area: to_ga,
                parent: opt(row, "parent_metering_point_id")?,
                energy_supplier: opt(row, "energy_supplier_id")?,
                balance_responsible: opt(row, "balance_responsible_party_id")?,
                from: from.max(args.period_start),
                to: to.map_or(args.period_end, |t| t.min(args.period_end)),
            }))
        };
        if let Some(period) =
            parse().with_context(|| format!("metering_point_periods.csv row {}", n + 2))?
        {
            periods.push(period);
        }
    }
    Ok(add_parent_data_to_children(periods))
}

/// `add_parent_data_to_child_metering_point_periods`: a child period is joined
/// with each overlapping parent period and takes its energy supplier, clipped
/// to the overlap. A child without a parent period is dropped.
fn add_parent_data_to_children(periods: Vec<MeteringPointPeriod>) -> Vec<MeteringPointPeriod> {
    let (parents, children): (Vec<_>, Vec<_>) = periods
        .into_iter()
        .partition(MeteringPointPeriod::is_parent);
    let mut result = parents.clone();
    for child in children {
        for parent in parents
            .iter()
            .filter(|p| Some(&p.id) == child.parent.as_ref())
        {
            let overlaps = (child.from >= parent.from && child.from < parent.to)
                || (child.to > parent.from && child.to <= parent.to)
                || (child.to > parent.to && child.from < parent.from);
            if overlaps {
                result.push(MeteringPointPeriod {
                    energy_supplier: parent.energy_supplier.clone(),
                    from: child.from.max(parent.from),
                    to: child.to.min(parent.to),
                    ..child.clone()
                });
            }
        }
    }
    result
}

/// The grid loss metering point ids of `grid_loss_metering_points.csv`.
pub fn grid_loss_ids(rows: &[Row]) -> anyhow::Result<Vec<String>> {
    rows.iter()
        .map(|r| required(r, "metering_point_id").map(str::to_string))
        .collect()
}

/// Grid loss metering point periods in the calculation's grid areas.
///
/// Energinet refuses a calculation in which a grid area lacks a gap-free
/// positive (consumption) or negative (production) grid loss metering point
/// over the whole period; so does the runner.
pub fn grid_loss_periods(
    args: &CalculationArgs,
    periods: &[MeteringPointPeriod],
    ids: &[String],
) -> anyhow::Result<Vec<MeteringPointPeriod>> {
    let selected: Vec<MeteringPointPeriod> = periods
        .iter()
        .filter(|p| ids.contains(&p.id) && args.grid_areas.contains(&p.grid_area))
        .filter(|p| p.from <= args.period_end && p.to >= args.period_start)
        .cloned()
        .collect();
    let mut missing = Vec::new();
    for area in &args.grid_areas {
        for kind in ["consumption", "production"] {
            let mut spans: Vec<(DateTime<Utc>, DateTime<Utc>)> = selected
                .iter()
                .filter(|p| &p.grid_area == area && p.mp_type == kind)
                .map(|p| (p.from, p.to))
                .collect();
            spans.sort();
            let gap_free = spans.windows(2).all(|w| w[1].0 <= w[0].1);
            let covers = spans.first().is_some_and(|s| s.0 <= args.period_start)
                && spans
                    .iter()
                    .map(|s| s.1)
                    .max()
                    .is_some_and(|end| end >= args.period_end);
            if !(gap_free && covers) {
                missing.push(area.clone());
                break;
            }
        }
    }
    if !missing.is_empty() {
        bail!(
            "The following grid areas are missing positive or negative grid loss metering points: {}",
            missing.join(", ")
        );
    }
    Ok(selected)
}

//! The part of Energinet's energy calculation the wholesale results depend on:
//! grid loss (opengeh-wholesale `energy/`), whose positive and negative parts
//! become the time series of the grid loss metering points and are then
//! charged like any other consumption or production.
//!
//! Steps, as in `energy_calculation.py`:
//! 1. pad every metering point's series (missing → 0), except grid loss metering points;
//! 2. change resolution to the energy result resolution (quarter after the
//!    quarterly transition: an hour becomes four quarters of q/4; before it,
//!    quarters are summed to hours);
//! 3. net exchange per neighbour, production, flex and non-profiled
//!    consumption per energy supplier, each rounded with `round_quantity`;
//! 4. grid loss = exchange + production − (non-profiled + flex) per grid area and time;
//! 5. positive grid loss to the consumption grid loss metering point, negative to the production one.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use afregning_settlement::{Position, Quality, Resolution};
use anyhow::Context;
use chrono::{DateTime, Duration, Timelike, Utc};
use rust_decimal::{Decimal, RoundingStrategy};

use crate::metering_points::MeteringPointPeriod;
use crate::scenario::{CalculationArgs, Row, decimal, required, timestamp};

/// A raw time series point.
#[derive(Debug, Clone)]
pub struct RawPoint {
    /// Quantity.
    pub quantity: Decimal,
    /// Quality.
    pub quality: Quality,
}

/// Raw points by metering point and time, restricted to the calculation period.
pub type RawPoints = HashMap<String, BTreeMap<DateTime<Utc>, Vec<RawPoint>>>;

fn quality(value: &str) -> anyhow::Result<Quality> {
    Ok(match value {
        "missing" => Quality::Missing,
        "estimated" => Quality::Estimated,
        "measured" => Quality::Measured,
        "calculated" => Quality::Calculated,
        other => anyhow::bail!("unknown quality {other}"),
    })
}

/// Reads `time_series_points.csv`, keeping points inside the calculation period.
pub fn raw_points(args: &CalculationArgs, rows: &[Row]) -> anyhow::Result<RawPoints> {
    let mut points: RawPoints = HashMap::new();
    for (n, row) in rows.iter().enumerate() {
        let parse = || -> anyhow::Result<(String, DateTime<Utc>, RawPoint)> {
            Ok((
                required(row, "metering_point_id")?.to_string(),
                timestamp(required(row, "observation_time")?)?,
                RawPoint {
                    quantity: decimal(required(row, "quantity")?)?,
                    quality: quality(required(row, "quality")?)?,
                },
            ))
        };
        let (id, time, point) =
            parse().with_context(|| format!("time_series_points.csv row {}", n + 2))?;
        if time >= args.period_start && time < args.period_end {
            points
                .entry(id)
                .or_default()
                .entry(time)
                .or_default()
                .push(point);
        }
    }
    Ok(points)
}

/// The points of a metering point as settlement positions (every raw point, version 0).
pub fn positions_of(points: &RawPoints, id: &str) -> Vec<Position> {
    points
        .get(id)
        .map(|by_time| {
            by_time
                .iter()
                .flat_map(|(time, list)| {
                    list.iter().map(|p| Position {
                        start: *time,
                        quantity: Some(p.quantity),
                        quality: p.quality,
                        version: 0,
                    })
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Spark's `round(x, 3)` on decimals: half away from zero.
fn round3(value: Decimal) -> Decimal {
    value.round_dp_with_strategy(3, RoundingStrategy::MidpointAwayFromZero)
}

/// `rounding.py::round_quantity`: the carry-over rounding that keeps an hour's
/// four quarters summing to the hourly quantity.
pub fn round_quantity(quantity: Decimal, time: DateTime<Utc>) -> Decimal {
    let index = time.minute() / 15 + 1;
    let mut row = quantity;
    for _ in 1..index {
        row = quantity - round3(row) + row;
    }
    round3(row)
}

struct EnergyRow<'p> {
    period: &'p MeteringPointPeriod,
    time: DateTime<Utc>,
    quantity: Decimal,
}

/// The resolution of energy results: quarter once the period ends after the quarterly transition.
pub fn energy_resolution(args: &CalculationArgs) -> Resolution {
    if args.period_end <= args.quarterly_resolution_transition {
        Resolution::Pt1h
    } else {
        Resolution::Pt15m
    }
}

/// A grid loss metering point's calculated series.
#[derive(Debug, Clone)]
pub struct GridLossSeries {
    /// Resolution of the series (the energy result resolution).
    pub resolution: Resolution,
    /// Calculated quantities by time.
    pub points: BTreeMap<DateTime<Utc>, Decimal>,
}

/// Computes grid loss and returns the series of each grid loss metering point.
pub fn grid_loss_series(
    args: &CalculationArgs,
    periods: &[MeteringPointPeriod],
    grid_loss_periods: &[MeteringPointPeriod],
    grid_loss_ids: &[String],
    points: &RawPoints,
) -> HashMap<String, GridLossSeries> {
    let resolution = energy_resolution(args);
    // 1. Padded series of every metering point period except grid loss.
    let mut rows: Vec<EnergyRow<'_>> = Vec::new();
    for period in periods.iter().filter(|p| !grid_loss_ids.contains(&p.id)) {
        if !matches!(period.mp_type, "consumption" | "production" | "exchange") {
            continue; // children never enter the energy sums
        }
        let step = period.resolution.duration();
        let mut t = period.from;
        while t < period.to {
            let found = points.get(&period.id).and_then(|m| m.get(&t));
            match found {
                Some(list) => rows.extend(list.iter().map(|p| EnergyRow {
                    period,
                    time: t,
                    quantity: p.quantity,
                })),
                None => rows.push(EnergyRow {
                    period,
                    time: t,
                    quantity: Decimal::ZERO,
                }),
            }
            t += step;
        }
    }
    // 2. Energy result resolution.
    let rows: Vec<EnergyRow<'_>> = match resolution {
        Resolution::Pt15m => rows
            .into_iter()
            .flat_map(|r| match r.period.resolution {
                Resolution::Pt1h => (0..4)
                    .map(|k| EnergyRow {
                        period: r.period,
                        time: r.time + Duration::minutes(15 * k),
                        quantity: r.quantity / Decimal::from(4),
                    })
                    .collect::<Vec<_>>(),
                Resolution::Pt15m => vec![r],
            })
            .collect(),
        Resolution::Pt1h => {
            let mut hourly: BTreeMap<(usize, DateTime<Utc>), Decimal> = BTreeMap::new();
            let mut by_index: Vec<&MeteringPointPeriod> = Vec::new();
            for r in &rows {
                let index = by_index
                    .iter()
                    .position(|p| std::ptr::eq(*p, r.period))
                    .unwrap_or_else(|| {
                        by_index.push(r.period);
                        by_index.len() - 1
                    });
                let hour = afregning_settlement::calendar::floor_hour(r.time);
                *hourly.entry((index, hour)).or_default() += r.quantity;
            }
            hourly
                .into_iter()
                .map(|((i, time), quantity)| EnergyRow {
                    period: by_index[i],
                    time,
                    quantity,
                })
                .collect()
        }
    };
    // 3. Exchange per neighbour and per energy supplier sums, rounded.
    let mut exchange_flows: BTreeMap<(String, String, DateTime<Utc>), Decimal> = BTreeMap::new();
    type EsKey = (String, Option<String>, Option<String>, DateTime<Utc>);
    let mut production: BTreeMap<EsKey, Decimal> = BTreeMap::new();
    let mut flex: BTreeMap<EsKey, Decimal> = BTreeMap::new();
    let mut non_profiled: BTreeMap<EsKey, Decimal> = BTreeMap::new();
    for r in &rows {
        let p = r.period;
        let key = || {
            (
                p.grid_area.clone(),
                p.balance_responsible.clone(),
                p.energy_supplier.clone(),
                r.time,
            )
        };
        match (p.mp_type, p.settlement_method) {
            ("exchange", _) => {
                if let (Some(to), Some(from)) = (&p.to_grid_area, &p.from_grid_area) {
                    *exchange_flows
                        .entry((to.clone(), from.clone(), r.time))
                        .or_default() += r.quantity;
                }
            }
            ("production", _) => *production.entry(key()).or_default() += r.quantity,
            ("consumption", Some("flex")) => *flex.entry(key()).or_default() += r.quantity,
            ("consumption", Some("non_profiled")) => {
                *non_profiled.entry(key()).or_default() += r.quantity
            }
            _ => {}
        }
    }
    // 4. Grid loss per grid area and time.
    let mut exchange: BTreeMap<(String, DateTime<Utc>), Decimal> = BTreeMap::new();
    let mut pairs: BTreeSet<(String, String, DateTime<Utc>)> = BTreeSet::new();
    for (to, from, time) in exchange_flows.keys() {
        pairs.insert((to.clone(), from.clone(), *time));
        pairs.insert((from.clone(), to.clone(), *time));
    }
    for (to, from, time) in pairs {
        if !args.grid_areas.contains(&to) {
            continue;
        }
        let incoming = exchange_flows
            .get(&(to.clone(), from.clone(), time))
            .copied()
            .unwrap_or_default();
        let outgoing = exchange_flows
            .get(&(from.clone(), to.clone(), time))
            .copied()
            .unwrap_or_default();
        *exchange.entry((to, time)).or_default() += round_quantity(incoming - outgoing, time);
    }
    let mut grid_loss: BTreeMap<(String, DateTime<Utc>), Decimal> = BTreeMap::new();
    for ((ga, time), q) in &exchange {
        *grid_loss.entry((ga.clone(), *time)).or_default() += *q;
    }
    for (sign, sums) in [
        (Decimal::ONE, &production),
        (Decimal::NEGATIVE_ONE, &flex),
        (Decimal::NEGATIVE_ONE, &non_profiled),
    ] {
        for ((ga, _, _, time), q) in sums {
            *grid_loss.entry((ga.clone(), *time)).or_default() += sign * round_quantity(*q, *time);
        }
    }
    // 5. Positive and negative grid loss to the grid loss metering points.
    let mut series: HashMap<String, GridLossSeries> = HashMap::new();
    for period in grid_loss_periods {
        let positive = match period.mp_type {
            "consumption" => true,
            "production" => false,
            _ => continue,
        };
        let entry = series
            .entry(period.id.clone())
            .or_insert_with(|| GridLossSeries {
                resolution,
                points: BTreeMap::new(),
            });
        for ((ga, time), q) in &grid_loss {
            if ga == &period.grid_area && *time >= period.from && *time < period.to {
                let value = if positive {
                    (*q).max(Decimal::ZERO)
                } else {
                    (-*q).max(Decimal::ZERO)
                };
                entry.points.insert(*time, value);
            }
        }
    }
    series
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().expect("t")
    }

    #[test]
    fn round_quantity_keeps_the_hourly_sum() {
        // rounding.py's docstring: 0.003 / 4 → 0.001, 0.001, 0.000, 0.001.
        let q: Decimal = "0.00075".parse().expect("d");
        let quarters: Vec<String> = ["00", "15", "30", "45"]
            .iter()
            .map(|m| round_quantity(q, utc(&format!("2023-02-01T02:{m}:00Z"))).to_string())
            .collect();
        assert_eq!(quarters, vec!["0.001", "0.001", "0.000", "0.001"]);
        // The minimal scenario's exchange: 3.357 / 4 → 0.839, 0.840, 0.839, 0.839.
        let q: Decimal = "0.83925".parse().expect("d");
        let sum: Decimal = ["00", "15", "30", "45"]
            .iter()
            .map(|m| round_quantity(q, utc(&format!("2023-02-01T02:{m}:00Z"))))
            .sum();
        assert_eq!(sum, "3.357".parse::<Decimal>().expect("d"));
    }
}

//! Time series points and the business rules every period shares.

use rust_decimal::Decimal;

use crate::codes::Quality;
use crate::common::TimeInterval;
use crate::de::{Finding, cim_object};
use crate::resolution::Resolution;

cim_object! {
    /// One point of a metered or aggregated series (RSM-012, RSM-014).
    #[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
    pub struct Point {
        /// `position.value`: 1-based index of the resolution step from the period start.
        "position" [wrapped] => position: u32,
        /// `quality.value`; absent on the wire means as provided (A04).
        "quality" [wrapped] => quality: Quality,
        /// `quantity`: the energy, with DataHub's exact precision; absent when not available.
        "quantity" => quantity: Option<Decimal>,
    }
}

/// The highest position the schemas allow (`Position_Integer`: 1..=999999).
pub const MAX_POSITION: u32 = 999_999;

/// Checks positions against the period: each in the schema range, inside the period, and
/// not repeated. `positions` yields `(array index, position)`; `prefix` is the relative path
/// of the point array (`.Point`). Returns the number of positions in the period.
pub(crate) fn check_positions(
    resolution: Resolution,
    interval: &TimeInterval,
    prefix: &str,
    positions: impl Iterator<Item = (usize, u32)> + Clone,
) -> Result<u32, Finding> {
    check_position_range(prefix, positions.clone())?;
    let count = resolution
        .positions(interval.start, interval.end)
        .map_err(|e| Finding::business(".timeInterval", e.0))?;
    let mut previous = 0u32;
    let mut ascending = true;
    for (i, position) in positions.clone() {
        if position > count {
            return Err(Finding::business(
                format!("{prefix}[{i}].position"),
                format!(
                    "position {position} is outside the period, which has {count} positions of {resolution}"
                ),
            ));
        }
        ascending &= position > previous;
        previous = position;
    }
    if !ascending {
        check_unique(prefix, positions)?;
    }
    Ok(count)
}

/// Positions must be in the schema's range 1..=999999.
pub(crate) fn check_position_range(
    prefix: &str,
    positions: impl Iterator<Item = (usize, u32)>,
) -> Result<(), Finding> {
    for (i, position) in positions {
        if position == 0 || position > MAX_POSITION {
            return Err(Finding::schema(
                format!("{prefix}[{i}].position.value"),
                format!("position {position} is outside 1..=999999"),
            ));
        }
    }
    Ok(())
}

/// No position may appear twice.
pub(crate) fn check_unique(
    prefix: &str,
    positions: impl Iterator<Item = (usize, u32)>,
) -> Result<(), Finding> {
    {
        let mut seen: Vec<(u32, usize)> = positions.map(|(i, p)| (p, i)).collect();
        seen.sort_unstable();
        for pair in seen.windows(2) {
            if let [(a, _), (b, i)] = pair
                && a == b
            {
                return Err(Finding::business(
                    format!("{prefix}[{i}].position"),
                    format!("duplicate position {b}"),
                ));
            }
        }
    }
    Ok(())
}

/// Rejects a negative quantity unless `allowed`; `path` is relative to the checked object.
pub(crate) fn check_sign(
    quantity: Option<Decimal>,
    allowed: bool,
    path: impl FnOnce() -> String,
    what: impl FnOnce() -> String,
) -> Result<(), Finding> {
    match quantity {
        Some(q) if q.is_sign_negative() && !q.is_zero() && !allowed => Err(Finding::business(
            path(),
            format!("negative quantity {q} is not allowed {}", what()),
        )),
        _ => Ok(()),
    }
}

//! Per local day aggregates for the aggregate processor: kWh per hour and
//! per tariff band, with completeness.
//!
//! The processor keeps these per metering point and local day so that the API
//! can show a day's consumption without settling a month. Hours are UTC hours
//! labelled with their local hour; on the 25-hour day local hour 2 appears twice.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::calendar::{local_day_bounds, local_hour};
use crate::input::InputError;
use crate::quantity::{Position, Quality, QualitySet, Resolution, latest_positions};
use crate::tariff_period::{TariffPeriod, TimeBands};

/// kWh of one UTC hour of a local day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HourAggregate {
    /// Start of the hour (UTC).
    pub start: DateTime<Utc>,
    /// Local wall-clock hour (0..=23).
    pub local_hour: u32,
    /// Tariff band of the hour.
    pub tariff_period: TariffPeriod,
    /// Σ kWh of the positions received.
    pub kwh: Decimal,
    /// Positions expected in the hour (4 at PT15M, 1 at PT1H).
    pub expected_positions: u32,
    /// Positions received with a quantity.
    pub received_positions: u32,
    /// Qualities of the received positions.
    pub qualities: QualitySet,
}

/// kWh of one tariff band of a local day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeriodAggregate {
    /// The band.
    pub tariff_period: TariffPeriod,
    /// Σ kWh.
    pub kwh: Decimal,
    /// Positions expected in the band.
    pub expected_positions: u32,
    /// Positions received with a quantity.
    pub received_positions: u32,
}

/// One metering point's local day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DailyAggregate {
    /// The local day.
    pub date: NaiveDate,
    /// Start of the day (UTC).
    pub start: DateTime<Utc>,
    /// End of the day (UTC, exclusive).
    pub end: DateTime<Utc>,
    /// Resolution of the positions.
    pub resolution: Resolution,
    /// 23, 24 or 25 hours.
    pub hours: Vec<HourAggregate>,
    /// kWh per band, in [`TariffPeriod::ALL`] order.
    pub periods: Vec<PeriodAggregate>,
    /// Σ kWh of the day.
    pub total_kwh: Decimal,
    /// Positions expected in the day (92/96/100 at PT15M, 23/24/25 at PT1H).
    pub expected_positions: u32,
    /// Positions received with a quantity.
    pub received_positions: u32,
    /// Every expected position was received with a quantity that is not `missing`.
    pub complete: bool,
    /// Qualities of the received positions.
    pub qualities: QualitySet,
}

/// Aggregates a day's positions (any versions, any order; the latest version of each wins).
///
/// Positions outside the day or off the resolution grid are ignored.
pub fn aggregate_day(
    date: NaiveDate,
    resolution: Resolution,
    positions: &[Position],
    bands: &TimeBands,
) -> Result<DailyAggregate, InputError> {
    let (start, end) = local_day_bounds(date);
    let per_hour: u32 = match resolution {
        Resolution::Pt15m => 4,
        Resolution::Pt1h => 1,
    };
    // A local day of 24 hours has no clock change, so its hour i is local hour i; only
    // the 23- and 25-hour days need the time zone per hour.
    let day_hours = (end - start).num_hours();
    let mut hours: Vec<HourAggregate> = Vec::with_capacity(usize::try_from(day_hours).unwrap_or(0));
    let mut t = start;
    while t < end {
        let hour = if day_hours == 24 {
            u32::try_from(hours.len()).unwrap_or(u32::MAX)
        } else {
            local_hour(t)
        };
        hours.push(HourAggregate {
            start: t,
            local_hour: hour,
            tariff_period: bands.period_of_local_hour(hour),
            kwh: Decimal::ZERO,
            expected_positions: per_hour,
            received_positions: 0,
            qualities: QualitySet::EMPTY,
        });
        t += Duration::hours(1);
    }
    let mut qualities = QualitySet::EMPTY;
    let mut complete_positions = 0u32;
    for position in latest_positions(positions)? {
        if position.start < start || position.start >= end {
            continue;
        }
        let offset = (position.start - start).num_seconds();
        if offset % resolution.seconds() != 0 {
            continue;
        }
        let Ok(hour_index) = usize::try_from(offset / 3600) else {
            continue;
        };
        let Some(hour) = hours.get_mut(hour_index) else {
            continue;
        };
        let Some(quantity) = position.quantity else {
            continue;
        };
        hour.kwh += quantity;
        hour.received_positions += 1;
        hour.qualities.insert(position.quality);
        qualities.insert(position.quality);
        if position.quality != Quality::Missing {
            complete_positions += 1;
        }
    }
    let periods = TariffPeriod::ALL
        .into_iter()
        .map(|p| {
            let in_band = hours.iter().filter(|h| h.tariff_period == p);
            let (kwh, expected, received) = in_band.fold((Decimal::ZERO, 0, 0), |(k, e, r), h| {
                (
                    k + h.kwh,
                    e + h.expected_positions,
                    r + h.received_positions,
                )
            });
            PeriodAggregate {
                tariff_period: p,
                kwh,
                expected_positions: expected,
                received_positions: received,
            }
        })
        .collect();
    let total_kwh = hours.iter().map(|h| h.kwh).sum();
    let expected_positions = hours.iter().map(|h| h.expected_positions).sum();
    let received_positions = hours.iter().map(|h| h.received_positions).sum();
    Ok(DailyAggregate {
        date,
        start,
        end,
        resolution,
        hours,
        periods,
        total_kwh,
        expected_positions,
        received_positions,
        complete: complete_positions == expected_positions,
        qualities,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Datelike;

    fn quarters(date: NaiveDate, kwh: &str) -> Vec<Position> {
        let (start, end) = local_day_bounds(date);
        let mut out = Vec::new();
        let mut t = start;
        while t < end {
            out.push(Position {
                start: t,
                quantity: Some(kwh.parse().expect("d")),
                quality: Quality::Measured,
                version: 0,
            });
            t += Duration::minutes(15);
        }
        out
    }

    /// Every hour's local hour and band equal the time zone's, on every day of three
    /// years (both clock changes each year).
    #[test]
    fn hours_are_labelled_as_the_time_zone_labels_them() {
        let mut date = NaiveDate::from_ymd_opt(2025, 1, 1).expect("date");
        while date.year() < 2028 {
            let day = aggregate_day(date, Resolution::Pt1h, &[], &TimeBands::C_CUSTOMER_2023)
                .expect("agg");
            for hour in &day.hours {
                assert_eq!(
                    hour.local_hour,
                    local_hour(hour.start),
                    "{date} {}",
                    hour.start
                );
                assert_eq!(
                    hour.tariff_period,
                    TimeBands::C_CUSTOMER_2023.period_at(hour.start)
                );
            }
            date = date.succ_opt().expect("date");
        }
    }

    #[test]
    fn the_25_hour_day_has_100_quarters_and_hour_two_twice() {
        let date = NaiveDate::from_ymd_opt(2025, 10, 26).expect("date");
        let day = aggregate_day(
            date,
            Resolution::Pt15m,
            &quarters(date, "0.1"),
            &TimeBands::C_CUSTOMER_2023,
        )
        .expect("agg");
        assert_eq!(day.hours.len(), 25);
        assert_eq!(day.expected_positions, 100);
        assert!(day.complete);
        assert_eq!(day.total_kwh, "10.0".parse::<Decimal>().expect("d"));
        assert_eq!(day.hours.iter().filter(|h| h.local_hour == 2).count(), 2);
        // lavlast 00-06 local has 7 hours on this day.
        assert_eq!(day.periods[0].kwh, "2.8".parse::<Decimal>().expect("d"));
    }

    #[test]
    fn the_23_hour_day_is_incomplete_with_a_gap() {
        let date = NaiveDate::from_ymd_opt(2026, 3, 29).expect("date");
        let mut positions = quarters(date, "0.1");
        assert_eq!(positions.len(), 92);
        positions.remove(10);
        let day = aggregate_day(
            date,
            Resolution::Pt15m,
            &positions,
            &TimeBands::C_CUSTOMER_2023,
        )
        .expect("agg");
        assert_eq!(day.expected_positions, 92);
        assert_eq!(day.received_positions, 91);
        assert!(!day.complete);
        assert_eq!(
            day.periods
                .iter()
                .map(|p| p.expected_positions)
                .sum::<u32>(),
            92
        );
    }
}

//! Time-of-use bands (lavlast, højlast, spidslast) and tariff seasons.
//!
//! The grid tariff itself is priced per hour from the DataHub price series, so
//! settlement never needs the bands. They exist for the aggregate processor,
//! which reports per-band kWh so that a customer can see what shifting
//! consumption would save, and for product margins that vary by band.

use chrono::{DateTime, Datelike, Utc};
use serde::{Deserialize, Serialize};

use crate::calendar::{local_date, local_hour};

/// A time-of-use band of a C-customer grid tariff.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TariffPeriod {
    /// Low load (night).
    Lavlast,
    /// High load (day and late evening).
    Hojlast,
    /// Peak load (early evening).
    Spidslast,
}

impl TariffPeriod {
    /// All bands in display order.
    pub const ALL: [TariffPeriod; 3] = [
        TariffPeriod::Lavlast,
        TariffPeriod::Hojlast,
        TariffPeriod::Spidslast,
    ];
}

/// Tariff season; the grid companies price højlast and spidslast higher in winter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Season {
    /// October to March.
    Winter,
    /// April to September.
    Summer,
}

/// Season of an instant by its local month (REFERENCE §1.3: winter is Oct–Mar).
pub fn season(instant: DateTime<Utc>) -> Season {
    match local_date(instant).month() {
        4..=9 => Season::Summer,
        _ => Season::Winter,
    }
}

/// A mapping from local wall-clock hour (0..=23) to band.
///
/// Kept as data, not code, because the bands differ between grid companies
/// and have changed over time (Radius's peak was 17–20 before 2023).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TimeBands {
    /// Band of local hour `h` at index `h` (`Price{h+1}` in a DataHub price list).
    pub by_local_hour: [TariffPeriod; 24],
}

const L: TariffPeriod = TariffPeriod::Lavlast;
const H: TariffPeriod = TariffPeriod::Hojlast;
const S: TariffPeriod = TariffPeriod::Spidslast;

impl TimeBands {
    /// Radius, Cerius and N1 C-customer bands from 2023 (REFERENCE §1.3):
    /// lavlast 00–06, højlast 06–17 and 21–24, spidslast 17–21.
    pub const C_CUSTOMER_2023: TimeBands = TimeBands {
        by_local_hour: [
            L, L, L, L, L, L, H, H, H, H, H, H, H, H, H, H, H, S, S, S, S, H, H, H,
        ],
    };

    /// Radius before 2023: spidslast 17–20 only (REFERENCE §1.3, `Price18–20`).
    pub const RADIUS_BEFORE_2023: TimeBands = TimeBands {
        by_local_hour: [
            L, L, L, L, L, L, H, H, H, H, H, H, H, H, H, H, H, S, S, S, H, H, H, H,
        ],
    };

    /// The band of an instant, by its local hour.
    pub fn period_at(&self, instant: DateTime<Utc>) -> TariffPeriod {
        self.period_of_local_hour(local_hour(instant))
    }

    /// The band of a local hour (0–23), for a caller that knows the hour already.
    pub fn period_of_local_hour(&self, hour: u32) -> TariffPeriod {
        self.by_local_hour[hour as usize % 24]
    }
}

/// The band of an instant under the Radius/Cerius/N1 2023+ scheme.
pub fn tariff_period(instant: DateTime<Utc>) -> TariffPeriod {
    TimeBands::C_CUSTOMER_2023.period_at(instant)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().expect("valid timestamp")
    }

    #[test]
    fn bands_follow_local_time_in_winter_and_summer() {
        // 2026-01-15 17:00 local = 16:00Z (CET): spidslast starts.
        assert_eq!(
            tariff_period(utc("2026-01-15T16:00:00Z")),
            TariffPeriod::Spidslast
        );
        assert_eq!(
            tariff_period(utc("2026-01-15T15:59:59Z")),
            TariffPeriod::Hojlast
        );
        // 2026-07-15 17:00 local = 15:00Z (CEST).
        assert_eq!(
            tariff_period(utc("2026-07-15T15:00:00Z")),
            TariffPeriod::Spidslast
        );
        assert_eq!(
            tariff_period(utc("2026-07-15T19:00:00Z")),
            TariffPeriod::Hojlast
        );
        // 05:59 local is still lavlast, 06:00 højlast.
        assert_eq!(
            tariff_period(utc("2026-01-15T04:59:00Z")),
            TariffPeriod::Lavlast
        );
        assert_eq!(
            tariff_period(utc("2026-01-15T05:00:00Z")),
            TariffPeriod::Hojlast
        );
    }

    #[test]
    fn repeated_autumn_hour_is_lavlast_both_times() {
        assert_eq!(
            tariff_period(utc("2025-10-26T00:00:00Z")),
            TariffPeriod::Lavlast
        );
        assert_eq!(
            tariff_period(utc("2025-10-26T01:00:00Z")),
            TariffPeriod::Lavlast
        );
    }

    #[test]
    fn radius_before_2023_ends_peak_at_20() {
        let t = utc("2022-01-10T19:00:00Z"); // 20:00 local
        assert_eq!(
            TimeBands::RADIUS_BEFORE_2023.period_at(t),
            TariffPeriod::Hojlast
        );
        assert_eq!(
            TimeBands::C_CUSTOMER_2023.period_at(t),
            TariffPeriod::Spidslast
        );
    }

    #[test]
    fn seasons_switch_on_local_month() {
        assert_eq!(season(utc("2026-03-31T21:59:00Z")), Season::Winter);
        assert_eq!(season(utc("2026-03-31T22:00:00Z")), Season::Summer);
        assert_eq!(season(utc("2026-09-30T22:00:00Z")), Season::Winter);
    }
}

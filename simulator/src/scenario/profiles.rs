//! Load profiles: how much a household or a business uses in a quarter-hour.
//!
//! Shapes, not statistics: a household has a low night, a morning bump and an evening
//! peak (17-21, when the peak tariff applies); a business uses most on weekday working
//! hours. Winter months use more than summer months. Each metering point scales the shape
//! to its annual consumption, and every quarter gets ±20 % noise from the scenario's seed.

use chrono::{DateTime, Datelike, Timelike, Utc, Weekday};
use chrono_tz::Europe::Copenhagen;

use super::rng::Rng;

/// What kind of consumer a metering point is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Profile {
    /// A household: 2,000-6,000 kWh a year.
    Household,
    /// A small business: 15,000-120,000 kWh a year.
    Business,
}

impl Profile {
    /// A random annual consumption in kWh for this profile.
    pub fn annual_kwh(self, rng: &mut Rng) -> f64 {
        match self {
            Profile::Household => rng.between(2_000.0, 6_000.0),
            Profile::Business => rng.between(15_000.0, 120_000.0),
        }
    }

    /// The relative load (mean about 1) at a local time.
    fn shape(self, local_hour: u32, weekday: Weekday) -> f64 {
        let weekend = matches!(weekday, Weekday::Sat | Weekday::Sun);
        match self {
            Profile::Household => match local_hour {
                0..=5 => 0.45,
                6..=8 => 1.2,
                9..=16 => {
                    if weekend {
                        1.0
                    } else {
                        0.7
                    }
                }
                17..=20 => 2.1,
                _ => 1.1,
            },
            Profile::Business => match (weekend, local_hour) {
                (false, 7..=16) => 2.3,
                (false, 6 | 17) => 1.2,
                _ => 0.35,
            },
        }
    }

    /// The energy of the quarter-hour starting at `t` (kWh, unrounded).
    pub fn quarter_kwh(self, annual_kwh: f64, t: DateTime<Utc>, rng: &mut Rng) -> f64 {
        let local = t.with_timezone(&Copenhagen);
        let season = match local.month() {
            11 | 12 | 1 | 2 => 1.25,
            3 | 4 | 10 => 1.05,
            _ => 0.8,
        };
        let mean_quarter = annual_kwh / 35_040.0;
        mean_quarter * self.shape(local.hour(), local.weekday()) * season * rng.between(0.8, 1.2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn households_peak_in_the_evening_and_businesses_on_weekdays() {
        let evening = Profile::Household.shape(18, Weekday::Tue);
        let night = Profile::Household.shape(3, Weekday::Tue);
        assert!(evening > 4.0 * night);
        assert!(
            Profile::Business.shape(10, Weekday::Wed)
                > 5.0 * Profile::Business.shape(10, Weekday::Sun)
        );
    }
}

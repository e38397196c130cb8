//! Day-ahead (spot) prices per bidding zone.
//!
//! Energi Data Service publishes DKK/MWh: `Elspotprices` per hour before
//! 2025-10-01 and `DayAheadPrices` per quarter-hour from then on. The engine
//! takes DKK/kWh; [`SpotPrice::from_dkk_per_mwh`] converts exactly.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::calendar::BillingPeriod;
use crate::input::InputError;
use crate::quantity::Resolution;
use crate::rounding::dkk_per_mwh_to_dkk_per_kwh;

/// A Nord Pool bidding zone in Denmark.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum PriceArea {
    /// West of the Great Belt.
    #[serde(rename = "DK1")]
    Dk1,
    /// East of the Great Belt.
    #[serde(rename = "DK2")]
    Dk2,
}

/// One day-ahead price for one market time unit (MTU).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpotPrice {
    /// Start of the MTU (UTC).
    pub start: DateTime<Utc>,
    /// MTU length: PT1H before 2025-10-01, PT15M after.
    pub resolution: Resolution,
    /// Price in DKK/kWh excluding VAT (may be negative).
    pub dkk_per_kwh: Decimal,
}

impl SpotPrice {
    /// A price from Energi Data Service's DKK/MWh, converted exactly.
    pub fn from_dkk_per_mwh(
        start: DateTime<Utc>,
        resolution: Resolution,
        dkk_per_mwh: Decimal,
    ) -> Self {
        Self {
            start,
            resolution,
            dkk_per_kwh: dkk_per_mwh_to_dkk_per_kwh(dkk_per_mwh),
        }
    }
}

/// The price that applies to one quarter-hour, and the MTU it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct QuarterPrice {
    pub price: Decimal,
    pub source_start: DateTime<Utc>,
    pub source_resolution: Resolution,
}

/// Spot prices of the billing period, indexed densely by quarter-hour.
#[derive(Debug, Clone)]
pub(crate) struct SpotIndex {
    base: i64,
    quarter: Vec<Option<Decimal>>,
    /// PT1H prices, stored at the index of the hour's first quarter.
    hour: Vec<Option<Decimal>>,
}

const QUARTER_SECONDS: i64 = 900;

impl SpotIndex {
    /// Indexes the prices inside `period`; two different prices for the same MTU are an input error.
    /// Prices outside the period, or not on their resolution's grid, are not used.
    pub fn build(prices: &[SpotPrice], period: &BillingPeriod) -> Result<Self, InputError> {
        let base = period.start().timestamp();
        let len = usize::try_from((period.end().timestamp() - base) / QUARTER_SECONDS).unwrap_or(0);
        let mut quarter = vec![None; len];
        let mut hour = vec![None; len];
        for p in prices {
            let offset = p.start.timestamp() - base;
            let aligned = match p.resolution {
                Resolution::Pt15m => offset.rem_euclid(QUARTER_SECONDS) == 0,
                Resolution::Pt1h => p.start.timestamp().rem_euclid(3600) == 0,
            };
            let Ok(index) = usize::try_from(offset / QUARTER_SECONDS) else {
                continue;
            };
            if offset < 0 || index >= len || !aligned {
                continue;
            }
            let slot = match p.resolution {
                Resolution::Pt15m => &mut quarter[index],
                Resolution::Pt1h => &mut hour[index],
            };
            match slot {
                Some(existing) if *existing != p.dkk_per_kwh => {
                    return Err(InputError::ConflictingSpotPrices { start: p.start });
                }
                _ => *slot = Some(p.dkk_per_kwh),
            }
        }
        Ok(Self {
            base,
            quarter,
            hour,
        })
    }

    /// The price of the quarter-hour starting at `start`: its PT15M price, else the
    /// PT1H price of the hour containing it ("a PT1H price applies to its four quarter-hours").
    pub fn quarter_price(&self, start: DateTime<Utc>) -> Option<QuarterPrice> {
        let t = start.timestamp();
        let index = usize::try_from((t - self.base) / QUARTER_SECONDS).ok()?;
        if let Some(price) = self.quarter.get(index).copied().flatten() {
            return Some(QuarterPrice {
                price,
                source_start: start,
                source_resolution: Resolution::Pt15m,
            });
        }
        let hour_start = t - t.rem_euclid(3600);
        let hour_index = usize::try_from((hour_start - self.base) / QUARTER_SECONDS).ok()?;
        let price = self.hour.get(hour_index).copied().flatten()?;
        Some(QuarterPrice {
            price,
            source_start: DateTime::from_timestamp(hour_start, 0).unwrap_or(start),
            source_resolution: Resolution::Pt1h,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().expect("valid timestamp")
    }

    #[test]
    fn hourly_price_covers_its_quarters_and_quarter_price_wins() {
        let prices = [
            SpotPrice::from_dkk_per_mwh(
                utc("2025-09-30T21:00:00Z"),
                Resolution::Pt1h,
                "500".parse().expect("d"),
            ),
            SpotPrice::from_dkk_per_mwh(
                utc("2025-09-30T21:15:00Z"),
                Resolution::Pt15m,
                "600".parse().expect("d"),
            ),
        ];
        let period = BillingPeriod::new(utc("2025-09-29T22:00:00Z"), utc("2025-09-30T22:00:00Z"))
            .expect("period");
        let index = SpotIndex::build(&prices, &period).expect("index");
        let q0 = index
            .quarter_price(utc("2025-09-30T21:00:00Z"))
            .expect("price");
        assert_eq!(q0.price, "0.5".parse::<Decimal>().expect("d"));
        assert_eq!(q0.source_resolution, Resolution::Pt1h);
        let q1 = index
            .quarter_price(utc("2025-09-30T21:15:00Z"))
            .expect("price");
        assert_eq!(q1.price, "0.6".parse::<Decimal>().expect("d"));
        assert!(index.quarter_price(utc("2025-09-30T22:00:00Z")).is_none());
    }

    #[test]
    fn conflicting_prices_for_one_mtu_are_rejected() {
        let t = utc("2025-10-01T00:00:00Z");
        let prices = [
            SpotPrice {
                start: t,
                resolution: Resolution::Pt15m,
                dkk_per_kwh: Decimal::ONE,
            },
            SpotPrice {
                start: t,
                resolution: Resolution::Pt15m,
                dkk_per_kwh: Decimal::TWO,
            },
        ];
        let period = BillingPeriod::new(utc("2025-09-30T22:00:00Z"), utc("2025-10-01T22:00:00Z"))
            .expect("period");
        assert!(SpotIndex::build(&prices, &period).is_err());
    }
}

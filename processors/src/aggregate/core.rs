//! The pure core of aggregate: a day's stored positions in, the daily
//! aggregate record out, with the settlement crate's arithmetic (hours,
//! tariff bands, completeness) and its spot line's amount for the day's spot cost.

use afregning_settlement::fold::MonthContext;
use afregning_settlement::{PriceArea, Quality, SpotPrice, TariffPeriod, TimeBands, aggregate_day};
use afregning_topology::records::{
    DailyAggregate, HourlyEnergy, Quality as WireQuality, QualityCount,
    Resolution as WireResolution, TariffPeriodEnergy,
};
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::shared::framed::{self, Framed};
use crate::shared::positions::DayPositions;
use crate::shared::reference::price_area;

/// What aggregate keeps per metering point and local day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayState {
    /// GSRN.
    pub gsrn: String,
    /// Grid area of the latest reading.
    pub grid_area: String,
    /// Bidding zone of the latest reading.
    pub price_area: Option<String>,
    /// The latest positions.
    pub day: DayPositions,
    /// Version of the last aggregate emitted (0: none yet).
    pub version: i64,
    /// Spot cost in the last aggregate emitted.
    pub spot_cost: Option<Decimal>,
}

/// The small fields of a [`DayState`], stored as JSON beside the compact positions.
#[derive(Serialize, Deserialize)]
struct DayHead {
    gsrn: String,
    grid_area: String,
    price_area: Option<String>,
    version: i64,
    spot_cost: Option<Decimal>,
}

/// Format byte of a day state: the small fields as JSON, then the positions' compact bytes.
const DAY_FORMAT: u8 = 2;

impl DayState {
    /// The state's bytes for the days store ([`framed`](crate::shared::framed): about
    /// 700 bytes where JSON took 7 KB).
    pub fn to_bytes(&self) -> Vec<u8> {
        let head = DayHead {
            gsrn: self.gsrn.clone(),
            grid_area: self.grid_area.clone(),
            price_area: self.price_area.clone(),
            version: self.version,
            spot_cost: self.spot_cost,
        };
        framed::encode(DAY_FORMAT, &head, &self.day.to_bytes())
    }

    /// Reads [`Self::to_bytes`], or the plain JSON of earlier builds.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, String> {
        match framed::decode::<DayHead>(DAY_FORMAT, "day state", bytes)? {
            Framed::Legacy(json) => serde_json::from_slice(json).map_err(|e| e.to_string()),
            Framed::Current(head, day) => Ok(Self {
                gsrn: head.gsrn,
                grid_area: head.grid_area,
                price_area: head.price_area,
                day: DayPositions::from_bytes(day).map_err(|e| e.to_string())?,
                version: head.version,
                spot_cost: head.spot_cost,
            }),
        }
    }
}

/// Why a day cannot be aggregated: contradictory positions (the engine's
/// input error), which the processor dead-letters.
pub type AggregateError = afregning_settlement::InputError;

fn band_name(band: TariffPeriod) -> &'static str {
    match band {
        TariffPeriod::Lavlast => "low",
        TariffPeriod::Hojlast => "high",
        TariffPeriod::Spidslast => "peak",
    }
}

fn wire_quality(q: Quality) -> WireQuality {
    match q {
        Quality::Missing => WireQuality::NotAvailable,
        Quality::Estimated => WireQuality::Estimated,
        Quality::Measured => WireQuality::AsProvided,
        Quality::Calculated => WireQuality::Calculated,
    }
}

/// The prepared one-day period of a bidding zone's spot prices at a resolution
/// ([`MonthContext::spot_day`]): what [`spot_cost_in`] prices a day's positions against.
/// The processor keeps one per zone, day and resolution, shared by every metering point,
/// until a spot price changes.
pub fn spot_day(
    date: chrono::NaiveDate,
    area: PriceArea,
    resolution: afregning_settlement::Resolution,
    prices: &[SpotPrice],
) -> Result<Option<MonthContext>, AggregateError> {
    MonthContext::spot_day(date, area, resolution, prices)
}

/// The day's spot cost in DKK (6 decimals): the amount of the engine's spot line for
/// that one day ([`MonthContext::day_spot_amount`]: the settlement's slots, per-value
/// spot routine and line rounding, without settling the day's other lines or building a
/// statement), or `None` while a price of the day is unknown.
pub fn spot_cost_in(
    state: &DayState,
    day: &MonthContext,
) -> Result<Option<Decimal>, AggregateError> {
    day.day_spot_amount(state.day.date, &state.day.to_positions())
}

/// The day's spot cost from its prices: [`spot_day`] then [`spot_cost_in`].
pub fn spot_cost(
    state: &DayState,
    prices: &[SpotPrice],
) -> Result<Option<Decimal>, AggregateError> {
    let Some(area) = state.price_area.as_deref().and_then(price_area) else {
        return Ok(None);
    };
    match spot_day(state.day.date, area, state.day.resolution, prices)? {
        Some(day) => spot_cost_in(state, &day),
        None => Ok(None),
    }
}

/// The daily aggregate record of `state` (with `state.version` and
/// `state.spot_cost` as they are to be emitted).
pub fn daily_aggregate(
    state: &DayState,
    computed_at: DateTime<Utc>,
) -> Result<DailyAggregate, AggregateError> {
    let day = &state.day;
    let aggregate = aggregate_day(
        day.date,
        day.resolution,
        &day.to_positions(),
        &TimeBands::C_CUSTOMER_2023,
    )?;
    let mut quality_counts: Vec<QualityCount> = Vec::new();
    for quality in Quality::ALL {
        let n = day
            .positions
            .values()
            .filter(|p| match p.quantity {
                Some(_) => p.quality == quality,
                None => quality == Quality::Missing,
            })
            .count();
        if n > 0 {
            quality_counts.push(QualityCount {
                quality: wire_quality(quality),
                positions: i32::try_from(n).unwrap_or(i32::MAX),
            });
        }
    }
    Ok(DailyAggregate {
        gsrn: state.gsrn.clone(),
        local_date: day.date,
        day_start: aggregate.start,
        day_end: aggregate.end,
        grid_area: state.grid_area.clone(),
        price_area: state.price_area.clone(),
        resolution: match day.resolution {
            afregning_settlement::Resolution::Pt15m => WireResolution::Pt15m,
            afregning_settlement::Resolution::Pt1h => WireResolution::Pt1h,
        },
        hours: aggregate
            .hours
            .iter()
            .map(|h| HourlyEnergy {
                hour_start: h.start,
                kwh: h.kwh,
                positions: i32::try_from(h.received_positions).unwrap_or(i32::MAX),
                spot_price_dkk_per_kwh: None,
            })
            .collect(),
        tariff_periods: aggregate
            .periods
            .iter()
            .map(|p| TariffPeriodEnergy {
                tariff_period: band_name(p.tariff_period).to_string(),
                kwh: p.kwh,
            })
            .collect(),
        total_kwh: aggregate.total_kwh,
        spot_cost_dkk: state.spot_cost,
        expected_positions: i32::try_from(aggregate.expected_positions).unwrap_or(i32::MAX),
        received_positions: i32::try_from(aggregate.received_positions).unwrap_or(i32::MAX),
        complete: aggregate.complete,
        quality_counts,
        version: state.version,
        computed_at: crate::settle::core::millis(computed_at),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use afregning_settlement::calendar::local_day_bounds;
    use afregning_settlement::{Position, Resolution};
    use chrono::{Duration, NaiveDate};
    use rust_decimal_macros::dec;

    fn state(date: NaiveDate, quarters: usize, kwh: Decimal) -> DayState {
        let (start, _) = local_day_bounds(date);
        let positions: Vec<Position> = (0..quarters)
            .map(|i| Position {
                start: start + Duration::minutes(15 * i as i64),
                quantity: Some(kwh),
                quality: Quality::Measured,
                version: 1,
            })
            .collect();
        let mut day = DayPositions::new(date, Resolution::Pt15m);
        day.merge(Resolution::Pt15m, &positions);
        DayState {
            gsrn: "571313180000000005".into(),
            grid_area: "344".into(),
            price_area: Some("DK2".into()),
            day,
            version: 1,
            spot_cost: None,
        }
    }

    #[test]
    fn the_spring_dst_day_is_complete_with_92_quarters_in_23_hours() {
        let s = state(
            NaiveDate::from_ymd_opt(2026, 3, 29).unwrap(),
            92,
            dec!(0.250),
        );
        let a = daily_aggregate(&s, Utc::now()).unwrap();
        assert_eq!(a.expected_positions, 92);
        assert_eq!(a.received_positions, 92);
        assert!(a.complete);
        assert_eq!(a.hours.len(), 23);
        assert_eq!(a.total_kwh, dec!(23.000));
        let bands: Decimal = a.tariff_periods.iter().map(|p| p.kwh).sum();
        assert_eq!(bands, a.total_kwh, "bands partition the day");
        assert_eq!(a.quality_counts.len(), 1);
    }

    #[test]
    fn a_day_state_survives_its_compact_bytes_and_reads_the_old_json() {
        let date = NaiveDate::from_ymd_opt(2026, 3, 29).unwrap();
        let mut s = state(date, 92, dec!(0.125));
        s.version = 3;
        s.spot_cost = Some(dec!(1.234567));
        let bytes = s.to_bytes();
        assert_eq!(DayState::from_bytes(&bytes).unwrap(), s);
        let json = serde_json::to_vec(&s).unwrap();
        assert_eq!(DayState::from_bytes(&json).unwrap(), s);
        assert!(
            bytes.len() * 4 < json.len(),
            "{} vs {}",
            bytes.len(),
            json.len()
        );
        assert!(DayState::from_bytes(&bytes[..bytes.len() - 1]).is_err());
    }

    #[test]
    fn spot_cost_is_known_only_when_every_price_of_the_day_is() {
        let date = NaiveDate::from_ymd_opt(2026, 3, 2).unwrap();
        let s = state(date, 96, dec!(1.000));
        let (start, _) = local_day_bounds(date);
        let mut prices: Vec<SpotPrice> = (0..96)
            .map(|i| {
                SpotPrice::from_dkk_per_mwh(
                    start + Duration::minutes(15 * i),
                    Resolution::Pt15m,
                    dec!(500),
                )
            })
            .collect();
        assert_eq!(spot_cost(&s, &prices).unwrap(), Some(dec!(48.000000)));
        prices.pop();
        assert_eq!(spot_cost(&s, &prices).unwrap(), None);
    }
}

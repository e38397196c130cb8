//! Day-ahead spot prices: the real samples in `../shared/settlement/data/` where they
//! exist, synthetic ones everywhere else, and Energi Data Service's JSON shapes.
//!
//! Real prices (copied below; a test compares them with the shared files):
//! - DK1, hourly, local days 2025-06-20 and 2025-08-19: `elspotprices/elspot_dk1_*.json`
//!   (Energi Data Service `Elspotprices`, DKK and EUR per MWh as published);
//! - quarter-hourly 2025-11-04T12:00Z to 2025-11-05T22:45Z: `openhab/DayAheadPrices20251104.csv`
//!   (DKK/kWh, multiplied by 1000 exactly). The file does not name the bidding zone; REFERENCE.md
//!   §1.4 says it is probably DK1, so it is served as DK1. It has no EUR column: EUR is derived
//!   at 7.46 DKK/EUR and marked so.
//!
//! Everything else is synthetic: a daily shape (cheap nights, morning and evening peaks) around
//! 550 (DK1) or 600 (DK2) DKK/MWh with ±15 % noise from the seed. [`SpotOrigin`] says which is
//! which, per price. MTUs are PT1H before 2025-10-01 (local) and PT15M from then on.

use std::str::FromStr;

use afregning_cim::Resolution;
use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, TimeZone, Timelike, Utc};
use chrono_tz::Europe::Copenhagen;
use rust_decimal::Decimal;
use serde::Serialize;

use crate::scenario::rng::Rng;

/// Where a price comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SpotOrigin {
    /// A real `Elspotprices` row (DKK and EUR as published).
    RealElspot,
    /// A real quarter-hour price (DKK); EUR derived at 7.46 DKK/EUR.
    RealDayAheadDkk,
    /// Made up by the simulator.
    Synthetic,
}

/// One day-ahead price of one bidding zone for one market time unit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SpotPrice {
    /// DK1 or DK2.
    pub price_area: String,
    /// Start of the MTU (UTC).
    pub start: DateTime<Utc>,
    /// End of the MTU (UTC, exclusive).
    pub end: DateTime<Utc>,
    /// PT1H before 2025-10-01, PT15M from then on.
    pub resolution: Resolution,
    /// DKK per MWh.
    pub dkk_per_mwh: Decimal,
    /// EUR per MWh.
    pub eur_per_mwh: Decimal,
    /// Real or synthetic.
    pub origin: SpotOrigin,
}

/// The first quarter-hour MTU: local midnight starting 2025-10-01.
pub fn quarter_hour_start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 9, 30, 22, 0, 0)
        .single()
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// The bidding zones.
pub const PRICE_AREAS: [&str; 2] = ["DK1", "DK2"];

const EUR_RATE: &str = "7.46";

/// Real hourly `Elspotprices` rows: (area, HourUTC, SpotPriceDKK, SpotPriceEUR).
const REAL_HOURLY: &[(&str, &str, &str, &str)] = &[
    ("DK1", "2025-06-19T22:00:00", "813.181912", "109.010002"),
    ("DK1", "2025-06-19T23:00:00", "780.060829", "104.57"),
    ("DK1", "2025-06-20T00:00:00", "750.147417", "100.559998"),
    ("DK1", "2025-06-20T01:00:00", "775.8088", "104.0"),
    ("DK1", "2025-06-20T02:00:00", "742.090978", "99.480003"),
    ("DK1", "2025-06-20T03:00:00", "813.405695", "109.040001"),
    ("DK1", "2025-06-20T04:00:00", "901.877745", "120.900002"),
    ("DK1", "2025-06-20T05:00:00", "885.168032", "118.660004"),
    ("DK1", "2025-06-20T06:00:00", "827.877528", "110.980003"),
    ("DK1", "2025-06-20T07:00:00", "609.382908", "81.690002"),
    ("DK1", "2025-06-20T08:00:00", "118.087051", "15.83"),
    ("DK1", "2025-06-20T09:00:00", "30.062591", "4.03"),
    ("DK1", "2025-06-20T10:00:00", "3.879044", "0.52"),
    ("DK1", "2025-06-20T11:00:00", "-1.49194", "-0.2"),
    ("DK1", "2025-06-20T12:00:00", "-0.596776", "-0.08"),
    ("DK1", "2025-06-20T13:00:00", "6.788327", "0.91"),
    ("DK1", "2025-06-20T14:00:00", "216.256703", "28.99"),
    ("DK1", "2025-06-20T15:00:00", "651.60478", "87.349998"),
    ("DK1", "2025-06-20T16:00:00", "828.101312", "111.010002"),
    ("DK1", "2025-06-20T17:00:00", "1011.684477", "135.619995"),
    ("DK1", "2025-06-20T18:00:00", "1471.575049", "197.270004"),
    ("DK1", "2025-06-20T19:00:00", "1332.526248", "178.630005"),
    ("DK1", "2025-06-20T20:00:00", "1022.351907", "137.050003"),
    ("DK1", "2025-06-20T21:00:00", "905.458364", "121.379997"),
    ("DK1", "2025-08-18T22:00:00", "753.928554", "101.010002"),
    ("DK1", "2025-08-18T23:00:00", "707.726998", "94.82"),
    ("DK1", "2025-08-19T00:00:00", "658.315958", "88.199997"),
    ("DK1", "2025-08-19T01:00:00", "644.657065", "86.370003"),
    ("DK1", "2025-08-19T02:00:00", "672.422721", "90.089996"),
    ("DK1", "2025-08-19T03:00:00", "754.003156", "101.019997"),
    ("DK1", "2025-08-19T04:00:00", "829.239275", "111.099998"),
    ("DK1", "2025-08-19T05:00:00", "820.655783", "109.949997"),
    ("DK1", "2025-08-19T06:00:00", "731.835417", "98.050003"),
    ("DK1", "2025-08-19T07:00:00", "661.077623", "88.57"),
    ("DK1", "2025-08-19T08:00:00", "519.785989", "69.639999"),
    ("DK1", "2025-08-19T09:00:00", "322.664397", "43.23"),
    ("DK1", "2025-08-19T10:00:00", "170.550115", "22.85"),
    ("DK1", "2025-08-19T11:00:00", "67.324378", "9.02"),
    ("DK1", "2025-08-19T12:00:00", "113.899114", "15.26"),
    ("DK1", "2025-08-19T13:00:00", "230.559864", "30.889999"),
    ("DK1", "2025-08-19T14:00:00", "452.312325", "60.599998"),
    ("DK1", "2025-08-19T15:00:00", "682.797594", "91.480003"),
    ("DK1", "2025-08-19T16:00:00", "760.646079", "101.910004"),
    ("DK1", "2025-08-19T17:00:00", "899.474604", "120.510002"),
    ("DK1", "2025-08-19T18:00:00", "960.006781", "128.619995"),
    ("DK1", "2025-08-19T19:00:00", "828.940719", "111.059998"),
    ("DK1", "2025-08-19T20:00:00", "779.305829", "104.410004"),
    ("DK1", "2025-08-19T21:00:00", "722.356235", "96.779999"),
];

/// Real quarter-hour prices (DK1, probably): (start UTC, DKK per kWh).
const REAL_QUARTERS: &[(&str, &str)] = &[
    ("2025-11-04T12:00:00Z", "0.335967339"),
    ("2025-11-04T12:15:00Z", "0.468965273"),
    ("2025-11-04T12:30:00Z", "0.518102066"),
    ("2025-11-04T12:45:00Z", "0.490770679"),
    ("2025-11-04T13:00:00Z", "0.394961357"),
    ("2025-11-04T13:15:00Z", "0.525793746"),
    ("2025-11-04T13:30:00Z", "0.497192823"),
    ("2025-11-04T13:45:00Z", "0.497118132"),
    ("2025-11-04T14:00:00Z", "0.495400554"),
    ("2025-11-04T14:15:00Z", "0.497267454"),
    ("2025-11-04T14:30:00Z", "0.5245989"),
    ("2025-11-04T14:45:00Z", "0.565894721"),
    ("2025-11-04T15:00:00Z", "0.501897389"),
    ("2025-11-04T15:15:00Z", "0.532290521"),
    ("2025-11-04T15:30:00Z", "0.575975966"),
    ("2025-11-04T15:45:00Z", "0.595093059"),
    ("2025-11-04T16:00:00Z", "0.712782398"),
    ("2025-11-04T16:15:00Z", "0.731750109"),
    ("2025-11-04T16:30:00Z", "0.814939166"),
    ("2025-11-04T16:45:00Z", "0.699714098"),
    ("2025-11-04T17:00:00Z", "0.719577943"),
    ("2025-11-04T17:15:00Z", "0.656327357"),
    ("2025-11-04T17:30:00Z", "0.656252666"),
    ("2025-11-04T17:45:00Z", "0.656103343"),
    ("2025-11-04T18:00:00Z", "0.655729941"),
    ("2025-11-04T18:15:00Z", "0.655729941"),
    ("2025-11-04T18:30:00Z", "0.566417445"),
    ("2025-11-04T18:45:00Z", "0.511754621"),
    ("2025-11-04T19:00:00Z", "0.506601954"),
    ("2025-11-04T19:15:00Z", "0.506303302"),
    ("2025-11-04T19:30:00Z", "0.506153921"),
    ("2025-11-04T19:45:00Z", "0.542969189"),
    ("2025-11-04T20:00:00Z", "0.469338645"),
    ("2025-11-04T20:15:00Z", "0.506004591"),
    ("2025-11-04T20:30:00Z", "0.506153921"),
    ("2025-11-04T20:45:00Z", "0.497566166"),
    ("2025-11-04T21:00:00Z", "0.510261123"),
    ("2025-11-04T21:15:00Z", "0.506228611"),
    ("2025-11-04T21:30:00Z", "0.506601954"),
    ("2025-11-04T21:45:00Z", "0.506377941"),
    ("2025-11-04T22:00:00Z", "0.504660423"),
    ("2025-11-04T22:15:00Z", "0.504137691"),
    ("2025-11-04T22:30:00Z", "0.542819859"),
    ("2025-11-04T22:45:00Z", "0.458286605"),
    ("2025-11-04T23:00:00Z", "0.212229192"),
    ("2025-11-04T23:15:00Z", "0.502942845"),
    ("2025-11-04T23:30:00Z", "0.516160534"),
    ("2025-11-04T23:45:00Z", "0.501150643"),
    ("2025-11-05T00:00:00Z", "0.497416843"),
    ("2025-11-05T00:15:00Z", "0.495848655"),
    ("2025-11-05T00:30:00Z", "0.500030489"),
    ("2025-11-05T00:45:00Z", "0.491741445"),
    ("2025-11-05T01:00:00Z", "0.472699073"),
    ("2025-11-05T01:15:00Z", "0.486290134"),
    ("2025-11-05T01:30:00Z", "0.493160311"),
    ("2025-11-05T01:45:00Z", "0.489351821"),
    ("2025-11-05T02:00:00Z", "0.486439457"),
    ("2025-11-05T02:15:00Z", "0.482481643"),
    ("2025-11-05T02:30:00Z", "0.481062777"),
    ("2025-11-05T02:45:00Z", "0.461647032"),
    ("2025-11-05T03:00:00Z", "0.462319116"),
    ("2025-11-05T03:15:00Z", "0.464036657"),
    ("2025-11-05T03:30:00Z", "0.469637357"),
    ("2025-11-05T03:45:00Z", "0.469114632"),
    ("2025-11-05T04:00:00Z", "0.467173063"),
    ("2025-11-05T04:15:00Z", "0.502868154"),
    ("2025-11-05T04:30:00Z", "0.504287021"),
    ("2025-11-05T04:45:00Z", "0.449325477"),
    ("2025-11-05T05:00:00Z", "0.530124909"),
    ("2025-11-05T05:15:00Z", "0.549466023"),
    ("2025-11-05T05:30:00Z", "0.511306579"),
    ("2025-11-05T05:45:00Z", "0.579859155"),
    ("2025-11-05T06:00:00Z", "0.588820245"),
    ("2025-11-05T06:15:00Z", "0.623171198"),
    ("2025-11-05T06:30:00Z", "0.615106234"),
    ("2025-11-05T06:45:00Z", "0.576498698"),
    ("2025-11-05T07:00:00Z", "0.655729941"),
    ("2025-11-05T07:15:00Z", "0.646768843"),
    ("2025-11-05T07:30:00Z", "0.61435943"),
    ("2025-11-05T07:45:00Z", "0.427370748"),
    ("2025-11-05T08:00:00Z", "0.656178034"),
    ("2025-11-05T08:15:00Z", "0.533335977"),
    ("2025-11-05T08:30:00Z", "0.505183155"),
    ("2025-11-05T08:45:00Z", "0.483079059"),
    ("2025-11-05T09:00:00Z", "0.523852155"),
    ("2025-11-05T09:15:00Z", "0.448354711"),
    ("2025-11-05T09:30:00Z", "0.460676237"),
    ("2025-11-05T09:45:00Z", "0.445442355"),
    ("2025-11-05T10:00:00Z", "0.457838563"),
    ("2025-11-05T10:15:00Z", "0.447981339"),
    ("2025-11-05T10:30:00Z", "0.455747621"),
    ("2025-11-05T10:45:00Z", "0.490621298"),
    ("2025-11-05T11:00:00Z", "0.380026157"),
    ("2025-11-05T11:15:00Z", "0.456121023"),
    ("2025-11-05T11:30:00Z", "0.488455746"),
    ("2025-11-05T11:45:00Z", "0.529452855"),
    ("2025-11-05T12:00:00Z", "0.453955411"),
    ("2025-11-05T12:15:00Z", "0.530871654"),
    ("2025-11-05T12:30:00Z", "0.562534323"),
    ("2025-11-05T12:45:00Z", "0.59539177"),
    ("2025-11-05T13:00:00Z", "0.505631189"),
    ("2025-11-05T13:15:00Z", "0.574183757"),
    ("2025-11-05T13:30:00Z", "0.628473246"),
    ("2025-11-05T13:45:00Z", "0.711886323"),
    ("2025-11-05T14:00:00Z", "0.521462523"),
    ("2025-11-05T14:15:00Z", "0.624291345"),
    ("2025-11-05T14:30:00Z", "0.683808132"),
    ("2025-11-05T14:45:00Z", "0.902534143"),
    ("2025-11-05T15:00:00Z", "0.655804632"),
    ("2025-11-05T15:15:00Z", "0.844734934"),
    ("2025-11-05T15:30:00Z", "0.932628557"),
    ("2025-11-05T15:45:00Z", "1.0547985"),
    ("2025-11-05T16:00:00Z", "0.965485952"),
    ("2025-11-05T16:15:00Z", "0.989083598"),
    ("2025-11-05T16:30:00Z", "0.981391977"),
    ("2025-11-05T16:45:00Z", "0.89409577"),
    ("2025-11-05T17:00:00Z", "0.94823587"),
    ("2025-11-05T17:15:00Z", "0.872365032"),
    ("2025-11-05T17:30:00Z", "0.802244268"),
    ("2025-11-05T17:45:00Z", "0.74676"),
    ("2025-11-05T18:00:00Z", "0.87385853"),
    ("2025-11-05T18:15:00Z", "0.797091609"),
    ("2025-11-05T18:30:00Z", "0.753182143"),
    ("2025-11-05T18:45:00Z", "0.675743109"),
    ("2025-11-05T19:00:00Z", "0.753854198"),
    ("2025-11-05T19:15:00Z", "0.698892654"),
    ("2025-11-05T19:30:00Z", "0.693441343"),
    ("2025-11-05T19:45:00Z", "0.665437843"),
    ("2025-11-05T20:00:00Z", "0.727642959"),
    ("2025-11-05T20:15:00Z", "0.682389266"),
    ("2025-11-05T20:30:00Z", "0.655953954"),
    ("2025-11-05T20:45:00Z", "0.637957068"),
    ("2025-11-05T21:00:00Z", "0.69650303"),
    ("2025-11-05T21:15:00Z", "0.656327357"),
    ("2025-11-05T21:30:00Z", "0.638405109"),
    ("2025-11-05T21:45:00Z", "0.578963021"),
    ("2025-11-05T22:00:00Z", "0.632655079"),
    ("2025-11-05T22:15:00Z", "0.634372598"),
    ("2025-11-05T22:30:00Z", "0.621304298"),
    ("2025-11-05T22:45:00Z", "0.542521155"),
];

fn naive_utc(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim_end_matches('Z');
    NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S")
        .ok()
        .map(|n| Utc.from_utc_datetime(&n))
}

fn real_price(area: &str, start: DateTime<Utc>, resolution: Resolution) -> Option<SpotPrice> {
    let end = start + step(resolution);
    if resolution == Resolution::Hour {
        let (_, _, dkk, eur) = REAL_HOURLY
            .iter()
            .find(|(a, t, _, _)| *a == area && naive_utc(t) == Some(start))?;
        return Some(SpotPrice {
            price_area: area.to_string(),
            start,
            end,
            resolution,
            dkk_per_mwh: Decimal::from_str(dkk).ok()?,
            eur_per_mwh: Decimal::from_str(eur).ok()?,
            origin: SpotOrigin::RealElspot,
        });
    }
    if area != "DK1" {
        return None;
    }
    let (_, kwh) = REAL_QUARTERS
        .iter()
        .find(|(t, _)| naive_utc(t) == Some(start))?;
    let dkk = Decimal::from_str(kwh).ok()? * Decimal::from(1000);
    let dkk = dkk.normalize();
    let eur = (dkk / Decimal::from_str(EUR_RATE).ok()?).round_dp(6);
    Some(SpotPrice {
        price_area: area.to_string(),
        start,
        end,
        resolution,
        dkk_per_mwh: dkk,
        eur_per_mwh: eur,
        origin: SpotOrigin::RealDayAheadDkk,
    })
}

fn synthetic_price(
    seed: u64,
    area: &str,
    start: DateTime<Utc>,
    resolution: Resolution,
) -> SpotPrice {
    let local_hour = start.with_timezone(&Copenhagen).hour();
    let shape = match local_hour {
        0..=5 => 0.7,
        6..=9 => 1.15,
        10..=16 => 0.9,
        17..=20 => 1.45,
        _ => 1.0,
    };
    let base = if area == "DK1" { 550.0 } else { 600.0 };
    let area_no = if area == "DK1" { 1 } else { 2 };
    let mut rng = Rng::derive(seed, 900, area_no, start.timestamp() as u64);
    let value = base * shape * rng.between(0.85, 1.15);
    let dkk = Decimal::from_f64_retain(value)
        .unwrap_or_default()
        .round_dp(2);
    let eur = Decimal::from_str(EUR_RATE)
        .map(|rate| (dkk / rate).round_dp(2))
        .unwrap_or_default();
    SpotPrice {
        price_area: area.to_string(),
        start,
        end: start + step(resolution),
        resolution,
        dkk_per_mwh: dkk,
        eur_per_mwh: eur,
        origin: SpotOrigin::Synthetic,
    }
}

fn step(resolution: Resolution) -> Duration {
    if resolution == Resolution::QuarterHour {
        Duration::minutes(15)
    } else {
        Duration::hours(1)
    }
}

/// The resolution of the MTU starting at `t`.
pub fn resolution_at(t: DateTime<Utc>) -> Resolution {
    if t >= quarter_hour_start() {
        Resolution::QuarterHour
    } else {
        Resolution::Hour
    }
}

/// Every price of `area` with an MTU starting in `[from, to)`: real where a sample exists,
/// synthetic elsewhere. `from` is rounded down to the MTU grid.
pub fn prices(seed: u64, area: &str, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<SpotPrice> {
    let mut out = Vec::new();
    let mut t = from
        - Duration::minutes(i64::from(from.minute() % 15))
        - Duration::seconds(i64::from(from.second()));
    if resolution_at(t) == Resolution::Hour {
        t -= Duration::minutes(i64::from(t.minute()));
    }
    while t < to {
        let resolution = resolution_at(t);
        let price = real_price(area, t, resolution)
            .unwrap_or_else(|| synthetic_price(seed, area, t, resolution));
        t = price.end;
        out.push(price);
    }
    out
}

/// Which Energi Data Service dataset is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dataset {
    /// `DayAheadPrices`: PT15M from 2025-10-01 (`TimeUTC`, `DayAheadPriceDKK`, …).
    DayAheadPrices,
    /// `Elspotprices`: PT1H before 2025-10-01 (`HourUTC`, `SpotPriceDKK`, …).
    Elspotprices,
}

impl Dataset {
    /// The dataset name in the URL.
    pub fn name(self) -> &'static str {
        match self {
            Dataset::DayAheadPrices => "DayAheadPrices",
            Dataset::Elspotprices => "Elspotprices",
        }
    }

    /// The dataset for a URL segment.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "DayAheadPrices" => Some(Dataset::DayAheadPrices),
            "Elspotprices" => Some(Dataset::Elspotprices),
            _ => None,
        }
    }
}

/// Query parameters Energi Data Service takes (a subset).
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct EdsQuery {
    /// Start, Danish local time: `YYYY-MM-DD` or `YYYY-MM-DDTHH:MM`.
    pub start: Option<String>,
    /// End (exclusive), same format; default one day after start.
    pub end: Option<String>,
    /// JSON filter, e.g. `{"PriceArea":["DK1"]}`.
    pub filter: Option<String>,
    /// Records to return; 0 for all. EDS's default is 100.
    pub limit: Option<usize>,
    /// Records to skip.
    pub offset: Option<usize>,
    /// `TimeUTC ASC` (default here) or `… DESC`.
    pub sort: Option<String>,
}

fn parse_local(text: &str) -> Option<DateTime<Utc>> {
    let naive = NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M")
        .ok()
        .or_else(|| {
            NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
        })?;
    Copenhagen
        .from_local_datetime(&naive)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
}

fn areas_of(filter: Option<&str>) -> Result<Vec<String>, String> {
    let Some(filter) = filter.filter(|f| !f.trim().is_empty()) else {
        return Ok(PRICE_AREAS.iter().map(|s| s.to_string()).collect());
    };
    let value: serde_json::Value =
        serde_json::from_str(filter).map_err(|e| format!("filter is not JSON: {e}"))?;
    let Some(areas) = value.get("PriceArea") else {
        return Ok(PRICE_AREAS.iter().map(|s| s.to_string()).collect());
    };
    let list: Vec<String> = match areas {
        serde_json::Value::String(s) => vec![s.clone()],
        serde_json::Value::Array(items) => items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        _ => return Err("filter PriceArea must be a string or a list".into()),
    };
    Ok(list)
}

fn fmt_naive(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S").to_string()
}

fn fmt_local(t: DateTime<Utc>) -> String {
    t.with_timezone(&Copenhagen)
        .format("%Y-%m-%dT%H:%M:%S")
        .to_string()
}

/// Energi Data Service's JSON answer for a dataset query, or a 400 message.
pub fn eds_response(seed: u64, dataset: Dataset, query: &EdsQuery) -> Result<String, String> {
    let start = query
        .start
        .as_deref()
        .ok_or("start is required")
        .map_err(str::to_string)
        .and_then(|s| parse_local(s).ok_or_else(|| format!("start `{s}` is not a date")))?;
    let end = match query.end.as_deref() {
        Some(s) => parse_local(s).ok_or_else(|| format!("end `{s}` is not a date"))?,
        None => start + Duration::days(1),
    };
    if end <= start || end - start > Duration::days(400) {
        return Err("end must be after start and at most 400 days later".into());
    }
    let (from, to) = match dataset {
        Dataset::DayAheadPrices => (start.max(quarter_hour_start()), end),
        Dataset::Elspotprices => (start, end.min(quarter_hour_start())),
    };
    let mut records = Vec::new();
    for area in areas_of(query.filter.as_deref())? {
        if !PRICE_AREAS.contains(&area.as_str()) || from >= to {
            continue;
        }
        records.extend(prices(seed, &area, from, to));
    }
    let descending = query
        .sort
        .as_deref()
        .is_some_and(|s| s.to_ascii_uppercase().contains("DESC"));
    records.sort_by(|a, b| (a.start, &a.price_area).cmp(&(b.start, &b.price_area)));
    if descending {
        records.reverse();
    }
    let total = records.len();
    let offset = query.offset.unwrap_or(0);
    let limit = match query.limit {
        None => 100,
        Some(0) => usize::MAX,
        Some(n) => n,
    };
    let rows: Vec<String> = records
        .iter()
        .skip(offset)
        .take(limit)
        .map(|p| match dataset {
            Dataset::DayAheadPrices => format!(
                r#"{{"TimeUTC":"{}","TimeDK":"{}","PriceArea":"{}","DayAheadPriceDKK":{},"DayAheadPriceEUR":{}}}"#,
                fmt_naive(p.start),
                fmt_local(p.start),
                p.price_area,
                p.dkk_per_mwh,
                p.eur_per_mwh
            ),
            Dataset::Elspotprices => format!(
                r#"{{"HourUTC":"{}","HourDK":"{}","PriceArea":"{}","SpotPriceDKK":{},"SpotPriceEUR":{}}}"#,
                fmt_naive(p.start),
                fmt_local(p.start),
                p.price_area,
                p.dkk_per_mwh,
                p.eur_per_mwh
            ),
        })
        .collect();
    let filters = serde_json::to_string(query.filter.as_deref().unwrap_or("{}"))
        .unwrap_or_else(|_| "\"{}\"".into());
    Ok(format!(
        r#"{{"total":{total},"filters":{filters},"dataset":"{}","records":[{}]}}"#,
        dataset.name(),
        rows.join(",")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared(path: &str) -> String {
        let full = format!(
            "{}/../../shared/settlement/data/{path}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{full}: {e}"))
    }

    /// The embedded real prices are exactly the shared files' values.
    #[test]
    fn embedded_prices_equal_the_shared_samples() {
        let mut n = 0;
        for file in [
            "elspotprices/elspot_dk1_2025-06-20.json",
            "elspotprices/elspot_dk1_2025-08-19.json",
        ] {
            let doc: serde_json::Value = serde_json::from_str(&shared(file)).expect("json");
            for r in doc["records"].as_array().expect("records") {
                let start = naive_utc(r["HourUTC"].as_str().expect("HourUTC")).expect("time");
                let p = real_price("DK1", start, Resolution::Hour).expect("embedded");
                assert_eq!(
                    p.dkk_per_mwh.to_string(),
                    r["SpotPriceDKK"].to_string(),
                    "{start}"
                );
                assert_eq!(
                    p.eur_per_mwh,
                    Decimal::from_str(&r["SpotPriceEUR"].to_string()).expect("eur")
                );
                n += 1;
            }
        }
        for line in shared("openhab/DayAheadPrices20251104.csv").lines().skip(1) {
            let (t, kwh) = line.split_once(',').expect("two columns");
            let start = naive_utc(t).expect("time");
            let p = real_price("DK1", start, Resolution::QuarterHour).expect("embedded");
            assert_eq!(
                p.dkk_per_mwh,
                Decimal::from_str(kwh).expect("dkk") * Decimal::from(1000)
            );
            n += 1;
        }
        assert_eq!(n, 48 + 140);
    }

    #[test]
    fn a_day_has_quarters_after_the_switch_and_hours_before_with_dst() {
        let day = |d: &str| parse_local(d).expect("date");
        let q = prices(1, "DK2", day("2025-10-26"), day("2025-10-27"));
        assert_eq!(q.len(), 100, "fall-back day: 25 hours of quarters");
        let h = prices(1, "DK1", day("2025-03-30"), day("2025-03-31"));
        assert_eq!(h.len(), 23, "spring-forward day: 23 hours");
        let real = prices(1, "DK1", day("2025-11-05"), day("2025-11-06"));
        assert!(real.iter().all(|p| p.origin == SpotOrigin::RealDayAheadDkk));
        assert_eq!(
            prices(1, "DK2", day("2025-11-05"), day("2025-11-06"))[0].origin,
            SpotOrigin::Synthetic
        );
        assert_eq!(
            q,
            prices(1, "DK2", day("2025-10-26"), day("2025-10-27")),
            "deterministic"
        );
    }

    #[test]
    fn eds_queries_filter_by_area_and_dataset() {
        let q = EdsQuery {
            start: Some("2025-11-05".into()),
            end: Some("2025-11-06".into()),
            filter: Some(r#"{"PriceArea":["DK1"]}"#.into()),
            limit: Some(0),
            ..EdsQuery::default()
        };
        let body = eds_response(1, Dataset::DayAheadPrices, &q).expect("ok");
        let v: serde_json::Value = serde_json::from_str(&body).expect("json");
        assert_eq!(v["total"], 96);
        assert_eq!(v["records"][0]["TimeDK"], "2025-11-05T00:00:00");
        assert_eq!(v["records"][0]["PriceArea"], "DK1");
        let old = eds_response(1, Dataset::Elspotprices, &q).expect("ok");
        assert!(
            old.contains(r#""total":0"#),
            "no hourly data after the switch"
        );
        assert!(eds_response(1, Dataset::DayAheadPrices, &EdsQuery::default()).is_err());
    }
}

//! DataHub charges: identity, price information, price points, links, and
//! the expansion of an Energi Data Service price-list row into price points.
//!
//! Names follow DataHub and Energinet's wholesale engine so that the
//! processors can map RSM-034 (charge prices) and RSM-031 (charge links) onto
//! them without translation tables.

use std::fmt;

use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::calendar::{BillingMonth, BillingPeriod, local_daily_steps, local_hour, local_to_utc};

/// Energinet's GLN as charge owner (transmission and system tariffs, systemabonnement, elafgift).
pub const ENERGINET_GLN: &str = "5790000432752";

/// Charge type (DataHub `ChargeType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ChargeType {
    /// D01: subscription (abonnement), a monthly price spread over the days.
    #[serde(rename = "D01")]
    Subscription,
    /// D02: fee (gebyr), a one-off price on the day the link is valid.
    #[serde(rename = "D02")]
    Fee,
    /// D03: tariff, a price per kWh.
    #[serde(rename = "D03")]
    Tariff,
}

impl ChargeType {
    /// DataHub code ("D01", "D02", "D03").
    pub fn code(self) -> &'static str {
        match self {
            ChargeType::Subscription => "D01",
            ChargeType::Fee => "D02",
            ChargeType::Tariff => "D03",
        }
    }

    /// Energinet's wholesale name ("subscription", "fee", "tariff").
    pub fn wholesale_name(self) -> &'static str {
        match self {
            ChargeType::Subscription => "subscription",
            ChargeType::Fee => "fee",
            ChargeType::Tariff => "tariff",
        }
    }
}

/// Resolution of a charge's prices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ChargeResolution {
    /// Quarter-hour tariff. Not in opengeh-wholesale (June 2025); supported for
    /// when DataHub 3 publishes PT15M tariffs, and **unverified** against Energinet.
    #[serde(rename = "PT15M")]
    Pt15m,
    /// Hourly tariff: one price per UTC hour.
    #[serde(rename = "PT1H")]
    Pt1h,
    /// Daily tariff: one price per local day.
    #[serde(rename = "P1D")]
    P1d,
    /// Monthly price (subscriptions and fees).
    #[serde(rename = "P1M")]
    P1m,
}

impl ChargeResolution {
    /// ISO 8601 name as in DataHub.
    pub fn as_str(self) -> &'static str {
        match self {
            ChargeResolution::Pt15m => "PT15M",
            ChargeResolution::Pt1h => "PT1H",
            ChargeResolution::P1d => "P1D",
            ChargeResolution::P1m => "P1M",
        }
    }
}

/// VAT classification (DataHub `VATClass`, geh-charges `VatClassificationMapper`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum VatClass {
    /// D01: no VAT.
    #[serde(rename = "D01")]
    NoVat,
    /// D02: 25 % VAT.
    #[serde(rename = "D02")]
    Vat25,
}

impl VatClass {
    /// The VAT rate as a fraction (0 or 0.25).
    pub fn rate(self) -> Decimal {
        match self {
            VatClass::NoVat => Decimal::ZERO,
            VatClass::Vat25 => Decimal::new(25, 2),
        }
    }
}

/// Identity of a charge: code + owner GLN + type (Energinet's charge key).
///
/// A code is unique only together with its owner and type.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ChargeKey {
    /// Charge code, e.g. `DT_C_01`, `40000`, `EA-001`.
    pub code: String,
    /// GLN of the charge owner.
    pub owner: String,
    /// Charge type.
    #[serde(rename = "type")]
    pub charge_type: ChargeType,
}

impl ChargeKey {
    /// A key from its three parts.
    pub fn new(code: impl Into<String>, owner: impl Into<String>, charge_type: ChargeType) -> Self {
        Self {
            code: code.into(),
            owner: owner.into(),
            charge_type,
        }
    }
}

impl fmt::Display for ChargeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}-{}-{}",
            self.code,
            self.owner,
            self.charge_type.wholesale_name()
        )
    }
}

/// A period in which a charge exists (Energinet's charge price information period).
///
/// Charge times are generated only inside these periods; a price point outside
/// every period is never used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChargePeriod {
    /// Inclusive start (UTC).
    pub from: DateTime<Utc>,
    /// Exclusive end; `None` means open-ended.
    pub to: Option<DateTime<Utc>>,
}

/// One price point: the price from `time` (DKK per kWh for tariffs, DKK per month for
/// subscriptions, DKK per piece for fees).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChargePricePoint {
    /// The charge time the price belongs to (UTC).
    pub time: DateTime<Utc>,
    /// The price.
    pub price: Decimal,
}

/// A charge with its price information and prices.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Charge {
    /// Identity.
    pub key: ChargeKey,
    /// Resolution of the prices.
    pub resolution: ChargeResolution,
    /// Tax indicator (`TaxIndicator`), e.g. elafgift.
    pub tax: bool,
    /// VAT class of the amounts.
    pub vat_class: VatClass,
    /// Periods in which the charge exists.
    pub periods: Vec<ChargePeriod>,
    /// Price points.
    pub prices: Vec<ChargePricePoint>,
}

/// A link between a metering point and a charge (RSM-031).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChargeLink {
    /// The linked charge.
    pub key: ChargeKey,
    /// Number of pieces (subscriptions and fees); tariffs ignore it, as Energinet does.
    pub quantity: u32,
    /// Inclusive start (UTC).
    pub from: DateTime<Utc>,
    /// Exclusive end; `None` means open-ended.
    pub to: Option<DateTime<Utc>>,
}

/// An Energi Data Service `DatahubPricelist` row, the form grid companies publish their prices in.
///
/// `ValidFrom`/`ValidTo` are naive local times; `prices[n]` is `Price{n+1}`,
/// the price of local wall-clock hour `n` (only `Price1` for P1D and P1M).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PriceListRow {
    /// `ValidFrom` (local).
    pub valid_from: NaiveDateTime,
    /// `ValidTo` (local, exclusive); `None` is open-ended.
    pub valid_to: Option<NaiveDateTime>,
    /// `ResolutionDuration`.
    pub resolution: ChargeResolution,
    /// `Price1..Price24`; missing entries are `None`.
    pub prices: Vec<Option<Decimal>>,
}

impl PriceListRow {
    fn price_for_local_hour(&self, hour: u32) -> Option<Decimal> {
        // A PT1H row whose later hours are empty has a flat price (openHAB and
        // MTrab clients read it so) [secondary].
        self.prices
            .get(hour as usize)
            .copied()
            .flatten()
            .or_else(|| self.prices.first().copied().flatten())
    }

    /// Expands the row into the price points DataHub would publish inside `period`.
    ///
    /// PT1H: one point per UTC hour at `Price{local hour + 1}` (the repeated
    /// autumn hour gets `Price3` twice, the missing spring hour is skipped).
    /// PT15M: as PT1H for each quarter. P1D: one point per local midnight.
    /// P1M: one point at the start of the validity within the period and at each
    /// local month start after it, because Energinet only uses subscription
    /// prices set inside the calculation period.
    pub fn price_points(&self, period: &BillingPeriod) -> Vec<ChargePricePoint> {
        let from = local_to_utc(self.valid_from).max(period.start());
        let to = self
            .valid_to
            .map(local_to_utc)
            .unwrap_or(period.end())
            .min(period.end());
        let mut points = Vec::new();
        if from >= to {
            return points;
        }
        match self.resolution {
            ChargeResolution::Pt1h | ChargeResolution::Pt15m => {
                let step = if self.resolution == ChargeResolution::Pt1h {
                    Duration::hours(1)
                } else {
                    Duration::minutes(15)
                };
                let mut t = from;
                while t < to {
                    if let Some(price) = self.price_for_local_hour(local_hour(t)) {
                        points.push(ChargePricePoint { time: t, price });
                    }
                    t += step;
                }
            }
            ChargeResolution::P1d => {
                if let Some(price) = self.prices.first().copied().flatten() {
                    for t in local_daily_steps(from, to) {
                        points.push(ChargePricePoint { time: t, price });
                    }
                }
            }
            ChargeResolution::P1m => {
                if let Some(price) = self.prices.first().copied().flatten() {
                    points.push(ChargePricePoint { time: from, price });
                    let mut month = BillingMonth::of(from).next();
                    while month.start() < to {
                        points.push(ChargePricePoint {
                            time: month.start(),
                            price,
                        });
                        month = month.next();
                    }
                }
            }
        }
        points
    }

    /// The row's validity as a charge period.
    pub fn charge_period(&self) -> ChargePeriod {
        ChargePeriod {
            from: local_to_utc(self.valid_from),
            to: self.valid_to.map(local_to_utc),
        }
    }
}

/// Builds a charge from price-list rows (all of one charge key), restricted to `period`.
///
/// Consecutive rows become one charge period when they touch, so a price change
/// does not split the forward-filling of subscription prices.
pub fn charge_from_price_list(
    key: ChargeKey,
    tax: bool,
    vat_class: VatClass,
    rows: &[PriceListRow],
    period: &BillingPeriod,
) -> Charge {
    let mut rows: Vec<&PriceListRow> = rows.iter().collect();
    rows.sort_by_key(|r| r.valid_from);
    let resolution = rows
        .first()
        .map(|r| r.resolution)
        .unwrap_or(ChargeResolution::P1d);
    let mut periods: Vec<ChargePeriod> = Vec::new();
    let mut prices = Vec::new();
    for row in rows {
        let p = row.charge_period();
        match periods.last_mut() {
            Some(last) if last.to == Some(p.from) => last.to = p.to,
            _ => periods.push(p),
        }
        prices.extend(row.price_points(period));
    }
    Charge {
        key,
        resolution,
        tax,
        vat_class,
        periods,
        prices,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().expect("valid timestamp")
    }

    fn naive(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S").expect("naive")
    }

    fn hourly_row() -> PriceListRow {
        let prices = (0..24).map(|h| Some(Decimal::from(h + 1))).collect();
        PriceListRow {
            valid_from: naive("2026-10-01T00:00:00"),
            valid_to: None,
            resolution: ChargeResolution::Pt1h,
            prices,
        }
    }

    #[test]
    fn hourly_price_list_on_the_25_hour_day_uses_price3_twice() {
        let period = BillingPeriod::days_from(
            chrono::NaiveDate::from_ymd_opt(2026, 10, 25).expect("date"),
            chrono::NaiveDate::from_ymd_opt(2026, 10, 25).expect("date"),
        )
        .expect("period");
        let points = hourly_row().price_points(&period);
        assert_eq!(points.len(), 25);
        let prices: Vec<u32> = points
            .iter()
            .map(|p| p.price.try_into().expect("int"))
            .collect();
        assert_eq!(&prices[..5], &[1, 2, 3, 3, 4]);
        assert_eq!(*prices.last().expect("last"), 24);
    }

    #[test]
    fn hourly_price_list_on_the_23_hour_day_skips_price3() {
        let day = chrono::NaiveDate::from_ymd_opt(2026, 3, 29).expect("date");
        let mut row = hourly_row();
        row.valid_from = naive("2026-01-01T00:00:00");
        let points = row.price_points(&BillingPeriod::days_from(day, day).expect("period"));
        assert_eq!(points.len(), 23);
        let prices: Vec<u32> = points
            .iter()
            .map(|p| p.price.try_into().expect("int"))
            .collect();
        assert_eq!(&prices[..4], &[1, 2, 4, 5]);
    }

    #[test]
    fn monthly_row_gets_a_point_per_month_start() {
        let row = PriceListRow {
            valid_from: naive("2024-12-01T00:00:00"),
            valid_to: Some(naive("2026-04-01T00:00:00")),
            resolution: ChargeResolution::P1m,
            prices: vec![Some("36.773011".parse().expect("decimal"))],
        };
        let period = BillingPeriod::new(utc("2026-02-28T23:00:00Z"), utc("2026-04-30T22:00:00Z"))
            .expect("period");
        let points = row.price_points(&period);
        assert_eq!(
            points,
            vec![ChargePricePoint {
                time: utc("2026-02-28T23:00:00Z"),
                price: "36.773011".parse().expect("d")
            }]
        );
    }

    #[test]
    fn charge_key_displays_like_energinets_charge_key() {
        assert_eq!(
            ChargeKey::new("fee-1", "0000000000800", ChargeType::Fee).to_string(),
            "fee-1-0000000000800-fee"
        );
    }
}

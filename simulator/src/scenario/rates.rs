//! The charges the scenario publishes and their rates, with where each rate comes from.
//!
//! Energinet's tariffs (40000, 41000), elafgift (EA-001), Energinet's subscription (41004)
//! and Radius's C tariff and subscription (DT_C_01, DA_C_F_01) are the rows of Energi Data
//! Service's `DatahubPricelist` in `../shared/settlement/data/energidataservice/` (a test
//! compares every row copied here with that file). Cerius and N1 rates are the secondary
//! figures of `../shared/settlement/REFERENCE.md` §1.3; N1's subscription code is not
//! published there and is made up (`N1-ABON`). Each [`ChargeDef`] says which.
//!
//! Time-of-use tariffs use the bands every C tariff here has had since 2023 (local hours):
//! low 00-06, high 06-17 and 21-24, peak 17-21.

use std::str::FromStr;

use afregning_cim::Resolution;
use afregning_cim::codes::ChargeKind;
use chrono::NaiveDate;
use rust_decimal::Decimal;

/// Energinet's GLN: owner of the system tariffs, the subscription and elafgift.
pub const ENERGINET_GLN: &str = "5790000432752";
/// Radius Elnet's GLN.
pub const RADIUS_GLN: &str = "5790000705689";
/// Cerius's GLN.
pub const CERIUS_GLN: &str = "5790000705184";
/// N1's GLN.
pub const N1_GLN: &str = "5790001089030";

/// A rate as published: one price, or a local-hour time-of-use profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rate {
    /// The same price all day (P1D tariffs, P1M subscriptions).
    Flat(&'static str),
    /// Low (00-06), high (06-17, 21-24), peak (17-21) local hours.
    TimeOfUse(&'static str, &'static str, &'static str),
}

/// One validity row: `[from, to)` in Danish local dates.
#[derive(Debug, Clone, Copy)]
pub struct RateRow {
    /// First local date the rate applies.
    pub from: NaiveDate,
    /// First local date it no longer applies.
    pub to: NaiveDate,
    /// The rate.
    pub rate: Rate,
}

/// A charge the simulator publishes (RSM-034) and links (RSM-031).
#[derive(Debug, Clone)]
pub struct ChargeDef {
    /// Owner GLN.
    pub owner_gln: &'static str,
    /// Subscription, fee or tariff.
    pub kind: ChargeKind,
    /// Charge code (unique per owner and kind).
    pub code: &'static str,
    /// Name as the owner publishes it.
    pub name: &'static str,
    /// Price resolution: PT1H (time-of-use), P1D (Energinet tariffs), P1M (subscriptions).
    pub resolution: Resolution,
    /// True for elafgift.
    pub tax: bool,
    /// The rate rows.
    pub rows: Vec<RateRow>,
    /// Where the rates come from.
    pub source: &'static str,
}

/// A source label: Energi Data Service's DatahubPricelist (primary).
pub const SOURCE_EDS: &str =
    "Energi Data Service DatahubPricelist (shared/settlement/data/energidataservice, primary)";
/// A source label: REFERENCE.md §1.3 secondary figures.
pub const SOURCE_SECONDARY: &str =
    "REFERENCE.md §1.3, secondary source S5 / the owner's price page; VAT basis not verified";

fn date(text: &str) -> NaiveDate {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap_or(NaiveDate::MIN)
}

fn rows(list: &[(&str, &str, Rate)]) -> Vec<RateRow> {
    list.iter()
        .map(|(from, to, rate)| RateRow {
            from: date(from),
            to: date(to),
            rate: *rate,
        })
        .collect()
}

impl ChargeDef {
    /// The row valid on a local date.
    pub fn row_on(&self, day: NaiveDate) -> Option<&RateRow> {
        self.rows.iter().find(|r| r.from <= day && day < r.to)
    }

    /// The price on a local date at a local hour (0-23); `None` where no row applies.
    pub fn price(&self, day: NaiveDate, local_hour: u32) -> Option<Decimal> {
        let text = match self.row_on(day)?.rate {
            Rate::Flat(p) => p,
            Rate::TimeOfUse(low, high, peak) => match local_hour {
                0..=5 => low,
                17..=20 => peak,
                _ => high,
            },
        };
        Decimal::from_str(text).ok()
    }

    /// The first and last local dates with a rate.
    pub fn coverage(&self) -> Option<(NaiveDate, NaiveDate)> {
        let from = self.rows.iter().map(|r| r.from).min()?;
        let to = self.rows.iter().map(|r| r.to).max()?;
        Some((from, to))
    }
}

/// Energinet's charges, linked to every consumption metering point.
pub fn energinet_charges() -> Vec<ChargeDef> {
    use Rate::Flat;
    vec![
        ChargeDef {
            owner_gln: ENERGINET_GLN,
            kind: ChargeKind::Tariff,
            code: "40000",
            name: "Transmissions nettarif",
            resolution: Resolution::Day,
            tax: false,
            rows: rows(&[
                ("2024-01-01", "2025-01-01", Flat("0.074")),
                ("2025-01-01", "2026-01-01", Flat("0.061")),
                ("2026-01-01", "2027-01-01", Flat("0.043")),
                ("2027-01-01", "2028-01-01", Flat("0.056")),
            ]),
            source: SOURCE_EDS,
        },
        ChargeDef {
            owner_gln: ENERGINET_GLN,
            kind: ChargeKind::Tariff,
            code: "41000",
            name: "Systemtarif",
            resolution: Resolution::Day,
            tax: false,
            rows: rows(&[
                ("2024-01-01", "2025-01-01", Flat("0.051")),
                ("2025-01-01", "2026-01-01", Flat("0.074")),
                ("2026-01-01", "2027-01-01", Flat("0.072")),
                ("2027-01-01", "2028-01-01", Flat("0.049")),
            ]),
            source: SOURCE_EDS,
        },
        ChargeDef {
            owner_gln: ENERGINET_GLN,
            kind: ChargeKind::Tariff,
            code: "EA-001",
            name: "Elafgift",
            resolution: Resolution::Day,
            tax: true,
            rows: rows(&[
                ("2024-01-01", "2025-01-01", Flat("0.761")),
                ("2025-01-01", "2026-01-01", Flat("0.72")),
                ("2026-01-01", "2028-01-01", Flat("0.008")),
            ]),
            source: SOURCE_EDS,
        },
        ChargeDef {
            owner_gln: ENERGINET_GLN,
            kind: ChargeKind::Subscription,
            code: "41004",
            name: "Systemabonnement",
            resolution: Resolution::Month,
            tax: false,
            rows: rows(&[
                ("2024-01-01", "2025-01-01", Flat("15.0")),
                ("2025-01-01", "2026-01-01", Flat("15.166666")),
                ("2026-01-01", "2027-01-01", Flat("15.583333")),
                ("2027-01-01", "2028-01-01", Flat("15.833333")),
            ]),
            source: SOURCE_EDS,
        },
    ]
}

/// A grid company's C tariff and subscription.
#[derive(Debug, Clone)]
pub struct GridCompany {
    /// Name.
    pub name: &'static str,
    /// GLN.
    pub gln: &'static str,
    /// The time-of-use C tariff (PT1H).
    pub tariff: ChargeDef,
    /// The monthly subscription (P1M).
    pub subscription: ChargeDef,
}

/// Radius Elnet (DK2): `DT_C_01` and `DA_C_F_01`, real rates.
pub fn radius() -> GridCompany {
    use Rate::{Flat, TimeOfUse};
    GridCompany {
        name: "Radius Elnet",
        gln: RADIUS_GLN,
        tariff: ChargeDef {
            owner_gln: RADIUS_GLN,
            kind: ChargeKind::Tariff,
            code: "DT_C_01",
            name: "Nettarif C time",
            resolution: Resolution::Hour,
            tax: false,
            rows: rows(&[
                (
                    "2024-10-01",
                    "2024-12-01",
                    TimeOfUse("0.1145", "0.3434", "1.0302"),
                ),
                (
                    "2024-12-01",
                    "2025-04-01",
                    TimeOfUse("0.0976", "0.2929", "0.8788"),
                ),
                (
                    "2025-04-01",
                    "2025-10-01",
                    TimeOfUse("0.0976", "0.1465", "0.3808"),
                ),
                (
                    "2025-10-01",
                    "2026-04-01",
                    TimeOfUse("0.0976", "0.2929", "0.8788"),
                ),
                (
                    "2026-04-01",
                    "2026-10-01",
                    TimeOfUse("0.106175", "0.159262", "0.414082"),
                ),
                (
                    "2026-10-01",
                    "2027-04-01",
                    TimeOfUse("0.106175", "0.318524", "0.955573"),
                ),
            ]),
            source: SOURCE_EDS,
        },
        subscription: ChargeDef {
            owner_gln: RADIUS_GLN,
            kind: ChargeKind::Subscription,
            code: "DA_C_F_01",
            name: "Netabonnement C flex",
            resolution: Resolution::Month,
            tax: false,
            rows: rows(&[
                ("2024-08-01", "2024-12-01", Flat("39.416667")),
                ("2024-12-01", "2026-04-01", Flat("36.773011")),
                ("2026-04-01", "2027-05-01", Flat("40.835055")),
            ]),
            source: SOURCE_EDS,
        },
    }
}

/// Cerius (DK2): `30TR_C_ET` and `30AB_CT`, secondary figures.
pub fn cerius() -> GridCompany {
    use Rate::{Flat, TimeOfUse};
    GridCompany {
        name: "Cerius",
        gln: CERIUS_GLN,
        tariff: ChargeDef {
            owner_gln: CERIUS_GLN,
            kind: ChargeKind::Tariff,
            code: "30TR_C_ET",
            name: "Nettarif C",
            resolution: Resolution::Hour,
            tax: false,
            rows: rows(&[
                (
                    "2025-10-01",
                    "2026-04-01",
                    TimeOfUse("0.1065", "0.3194", "0.9582"),
                ),
                (
                    "2026-04-01",
                    "2026-10-01",
                    TimeOfUse("0.1153", "0.1730", "0.4498"),
                ),
                (
                    "2026-10-01",
                    "2027-04-01",
                    TimeOfUse("0.1153", "0.3460", "1.0380"),
                ),
            ]),
            source: SOURCE_SECONDARY,
        },
        subscription: ChargeDef {
            owner_gln: CERIUS_GLN,
            kind: ChargeKind::Subscription,
            code: "30AB_CT",
            name: "Netabonnement C",
            resolution: Resolution::Month,
            tax: false,
            rows: rows(&[("2025-10-01", "2027-04-01", Flat("48.25"))]),
            source: SOURCE_SECONDARY,
        },
    }
}

/// N1 (DK1): `CD` and a made-up subscription code, secondary figures.
pub fn n1() -> GridCompany {
    use Rate::{Flat, TimeOfUse};
    GridCompany {
        name: "N1",
        gln: N1_GLN,
        tariff: ChargeDef {
            owner_gln: N1_GLN,
            kind: ChargeKind::Tariff,
            code: "CD",
            name: "Nettarif C",
            resolution: Resolution::Hour,
            tax: false,
            rows: rows(&[
                (
                    "2025-10-01",
                    "2025-12-01",
                    TimeOfUse("0.1083", "0.3250", "0.9751"),
                ),
                (
                    "2025-12-01",
                    "2026-01-01",
                    TimeOfUse("0.0851", "0.2552", "0.7656"),
                ),
                (
                    "2026-01-01",
                    "2026-04-01",
                    TimeOfUse("0.0879", "0.2636", "0.7907"),
                ),
                (
                    "2026-04-01",
                    "2026-10-01",
                    TimeOfUse("0.0879", "0.1318", "0.3426"),
                ),
                (
                    "2026-10-01",
                    "2027-01-01",
                    TimeOfUse("0.0879", "0.2636", "0.7907"),
                ),
            ]),
            source: SOURCE_SECONDARY,
        },
        subscription: ChargeDef {
            owner_gln: N1_GLN,
            kind: ChargeKind::Subscription,
            code: "N1-ABON",
            name: "Netabonnement (code made up; 400.30 DKK/yr in 2025, 28.12 DKK/month in 2026)",
            resolution: Resolution::Month,
            tax: false,
            rows: rows(&[
                ("2025-10-01", "2026-01-01", Flat("33.358333")),
                ("2026-01-01", "2027-01-01", Flat("28.12")),
            ]),
            source: SOURCE_SECONDARY,
        },
    }
}

/// A grid area of the scenario: its code, bidding zone and grid company.
#[derive(Debug, Clone)]
pub struct GridAreaDef {
    /// Three-digit grid area code (NDK).
    pub code: &'static str,
    /// Bidding zone: DK1 or DK2.
    pub price_area: &'static str,
    /// The grid company.
    pub company: GridCompany,
}

/// The grid areas the simulator knows: 344 (Radius rates, DK2), 740 (Cerius rates, DK2),
/// 791 (N1 rates, DK1). The codes are the issue's; which company owns which real grid area
/// is not claimed.
pub fn grid_areas() -> Vec<GridAreaDef> {
    vec![
        GridAreaDef {
            code: "344",
            price_area: "DK2",
            company: radius(),
        },
        GridAreaDef {
            code: "740",
            price_area: "DK2",
            company: cerius(),
        },
        GridAreaDef {
            code: "791",
            price_area: "DK1",
            company: n1(),
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every EDS-sourced row here equals the row in the shared DatahubPricelist extract
    /// (same owner, code, validity and the 24 hourly prices or Price1).
    #[test]
    fn eds_rows_match_the_shared_price_list() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../shared/settlement/data/energidataservice/datahubpricelist_energinet_radius.csv"
        );
        let text = std::fs::read_to_string(path).expect("shared price list");
        let mut charges = energinet_charges();
        let r = radius();
        charges.push(r.tariff);
        charges.push(r.subscription);
        let mut checked = 0;
        for charge in charges.iter().filter(|c| c.source == SOURCE_EDS) {
            for row in &charge.rows {
                let from = format!("{}T00:00:00", row.from);
                let to = format!("{}T00:00:00", row.to);
                let line = text
                    .lines()
                    .map(|l| l.split(',').collect::<Vec<_>>())
                    .find(|f| {
                        f[0] == charge.owner_gln
                            && f[2] == charge.code
                            && f[3] == from
                            && f[4] == to
                    })
                    .unwrap_or_else(|| {
                        panic!(
                            "{} {} {from}: not in the CSV",
                            charge.owner_gln, charge.code
                        )
                    });
                let listed: Vec<Decimal> = line[6..]
                    .iter()
                    .filter(|v| !v.is_empty())
                    .map(|v| Decimal::from_str(v).expect("decimal"))
                    .collect();
                let ours: Vec<Decimal> = if listed.len() == 1 {
                    vec![charge.price(row.from, 0).expect("price")]
                } else {
                    (0..24)
                        .map(|h| charge.price(row.from, h).expect("price"))
                        .collect()
                };
                assert_eq!(ours, listed, "{} {from}", charge.code);
                checked += 1;
            }
        }
        assert!(checked >= 20, "checked {checked} rows");
    }

    #[test]
    fn time_of_use_bands_follow_local_hours() {
        let r = radius().tariff;
        let day = date("2025-11-05");
        assert_eq!(r.price(day, 5), Decimal::from_str("0.0976").ok());
        assert_eq!(r.price(day, 6), Decimal::from_str("0.2929").ok());
        assert_eq!(r.price(day, 17), Decimal::from_str("0.8788").ok());
        assert_eq!(r.price(day, 21), Decimal::from_str("0.2929").ok());
        assert_eq!(r.price(date("2030-01-01"), 0), None);
    }
}

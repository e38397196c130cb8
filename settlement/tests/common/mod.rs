//! Helpers shared by the integration tests: reading the reference price list
//! and spot prices from `../shared/settlement/data/` (by path, never copied),
//! and building inputs.

#![allow(dead_code)]

use std::path::PathBuf;

use afregning_settlement::calendar::local_hour;
use afregning_settlement::charges::{PriceListRow, charge_from_price_list};
use afregning_settlement::{
    BillingPeriod, Charge, ChargeKey, ChargeLink, ChargeResolution, ChargeType, MeteringPoint,
    MonthInput, Position, PriceArea, Quality, Resolution, Scope, SpotPrice, SupplyPeriod, VatClass,
};
use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use rust_decimal::Decimal;

pub const RADIUS: &str = "5790000705689";
pub const ENERGINET: &str = "5790000432752";

pub fn d(s: &str) -> Decimal {
    s.parse().expect("decimal")
}

pub fn utc(s: &str) -> DateTime<Utc> {
    s.parse().expect("timestamp")
}

pub fn shared(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/settlement/data")
        .join(relative)
}

/// Rows of `energidataservice/datahubpricelist_energinet_radius.csv` (S3) for one charge.
pub fn price_list_rows(owner: &str, charge_type: &str, code: &str) -> Vec<PriceListRow> {
    let path = shared("energidataservice/datahubpricelist_energinet_radius.csv");
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("header").split(',').collect();
    let col = |name: &str| {
        header
            .iter()
            .position(|h| *h == name)
            .unwrap_or_else(|| panic!("column {name}"))
    };
    let (gln, ctype, ccode, from, to, res) = (
        col("GLN_Number"),
        col("ChargeType"),
        col("ChargeTypeCode"),
        col("ValidFrom"),
        col("ValidTo"),
        col("ResolutionDuration"),
    );
    let price1 = col("Price1");
    let parse_time =
        |s: &str| NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S").expect("local time");
    lines
        .map(|l| l.split(',').collect::<Vec<_>>())
        .filter(|f| f[gln] == owner && f[ctype] == charge_type && f[ccode] == code)
        .map(|f| PriceListRow {
            valid_from: parse_time(f[from]),
            valid_to: (!f[to].is_empty()).then(|| parse_time(f[to])),
            resolution: match f[res] {
                "PT1H" => ChargeResolution::Pt1h,
                "P1D" => ChargeResolution::P1d,
                "P1M" => ChargeResolution::P1m,
                other => panic!("resolution {other}"),
            },
            prices: (0..24)
                .map(|i| (!f[price1 + i].is_empty()).then(|| d(f[price1 + i])))
                .collect(),
        })
        .collect()
}

/// A charge from the reference price list plus a link valid for years.
pub fn reference_charge(
    owner: &str,
    code: &str,
    charge_type: ChargeType,
    tax: bool,
    period: &BillingPeriod,
) -> (Charge, ChargeLink) {
    let rows = price_list_rows(owner, charge_type.code(), code);
    assert!(!rows.is_empty(), "no price list rows for {owner} {code}");
    let key = ChargeKey::new(code, owner, charge_type);
    // REFERENCE §1.5: every Energinet and DSO row seen carries VATClass D02.
    let charge = charge_from_price_list(key.clone(), tax, VatClass::Vat25, &rows, period);
    (
        charge,
        ChargeLink {
            key,
            quantity: 1,
            from: utc("2020-01-01T00:00:00Z"),
            to: None,
        },
    )
}

/// The charges of a Radius C customer: DT_C_01, DA_C_F_01, 40000, 41000, EA-001 (tax), 41004.
pub fn radius_customer_charges(period: &BillingPeriod) -> (Vec<Charge>, Vec<ChargeLink>) {
    let list = vec![
        reference_charge(RADIUS, "DT_C_01", ChargeType::Tariff, false, period),
        reference_charge(RADIUS, "DA_C_F_01", ChargeType::Subscription, false, period),
        reference_charge(ENERGINET, "40000", ChargeType::Tariff, false, period),
        reference_charge(ENERGINET, "41000", ChargeType::Tariff, false, period),
        reference_charge(ENERGINET, "EA-001", ChargeType::Tariff, true, period),
        reference_charge(ENERGINET, "41004", ChargeType::Subscription, false, period),
    ];
    let links = list.iter().map(|(_, l)| l.clone()).collect();
    (list.into_iter().map(|(c, _)| c).collect(), links)
}

/// PT15M positions over the period with `kwh_per_hour(local hour) / 4` per quarter.
pub fn quarter_profile(
    period: &BillingPeriod,
    kwh_per_hour: impl Fn(u32) -> Decimal,
) -> Vec<Position> {
    let mut positions = Vec::new();
    let mut t = period.start();
    while t < period.end() {
        positions.push(Position {
            start: t,
            quantity: Some(kwh_per_hour(local_hour(t)) / Decimal::from(4)),
            quality: Quality::Measured,
            version: 1,
        });
        t += Duration::minutes(15);
    }
    positions
}

/// The real quarter-hour prices of `openhab/DayAheadPrices20251104.csv` (S4; DKK/kWh, area not stated).
pub fn openhab_day_ahead_prices() -> Vec<SpotPrice> {
    let path = shared("openhab/DayAheadPrices20251104.csv");
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    text.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let (time, price) = l.split_once(',').expect("two columns");
            SpotPrice {
                start: utc(time),
                resolution: Resolution::Pt15m,
                dkk_per_kwh: d(price.trim()),
            }
        })
        .collect()
}

/// An input with the metering point supplied over the whole period at PT15M.
pub fn input(
    period: BillingPeriod,
    positions: Vec<Position>,
    charges: Vec<Charge>,
    links: Vec<ChargeLink>,
) -> MonthInput {
    MonthInput {
        metering_point: MeteringPoint {
            id: "571313100000000001".into(),
            grid_area: "740".into(),
            price_area: PriceArea::Dk2,
        },
        period,
        supply: vec![SupplyPeriod {
            from: utc("2020-01-01T00:00:00Z"),
            to: None,
            resolution: Resolution::Pt15m,
        }],
        positions,
        charge_links: links,
        charges,
        spot_prices: Vec::new(),
        product: Vec::new(),
        scope: Scope::DataHubCharges,
    }
}

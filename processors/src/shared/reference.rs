//! Reference data from global tables (charges, prices, links, spot prices),
//! turned into the settlement engine's types.
//!
//! Global tables are keyed by the topics' Avro keys as written (Confluent
//! wire format). Avro writes a record's fields in order, so the bytes of a
//! key's leading fields are a prefix of every key that starts with them:
//! [`key_prefix`] encodes a key with zero trailing fields and cuts them off,
//! which gives "all links of a GSRN" or "all price series of a charge" as a
//! RocksDB prefix scan. Spot prices are read by exact key per market time
//! unit, because Avro's varint timestamps do not sort as bytes.

use std::collections::BTreeMap;

use afregning_settlement::calendar::{local_date, local_midnight};
use afregning_settlement::{
    BillingPeriod, Charge as EngineCharge, ChargeKey, ChargeLink as EngineLink, ChargePeriod,
    ChargePricePoint, ChargeResolution, ChargeType as EngineChargeType, PriceArea,
    Resolution as EngineResolution, SpotPrice as EngineSpotPrice, VatClass as EngineVat,
};
use afregning_topology::records::{
    AvroRecord, Charge, ChargeLink, ChargeLinkKey, ChargePeriodKey, ChargePrice, ChargePriceKey,
    ChargeType, Resolution, SpotPrice, SpotPriceKey, VatClass,
};
use chrono::{DateTime, Datelike, Duration, Months, TimeZone, Utc};

use crate::runtime::{Context, ProcessError};
use crate::shared::Wire;

/// Global table of charge information (`afregning.charges.information`).
pub const CHARGES_TABLE: &str = "charges";
/// Global table of charge price series.
pub const CHARGE_PRICES_TABLE: &str = "charge-prices";
/// Global table of charge links.
pub const CHARGE_LINKS_TABLE: &str = "charge-links";
/// Global table of spot prices.
pub const SPOT_PRICES_TABLE: &str = "spot-prices";

fn epoch() -> DateTime<Utc> {
    Utc.timestamp_millis_opt(0).single().unwrap_or_default()
}

/// The encoded bytes of `key` without its last `trailing` bytes: with the
/// trailing fields set to their one-byte zero encodings (empty string, enum
/// index 0, timestamp 0), the leading fields' prefix.
pub fn key_prefix<K: AvroRecord>(
    wire: &Wire,
    key: &K,
    trailing: usize,
) -> Result<Vec<u8>, ProcessError> {
    let mut bytes = wire
        .encode(key)
        .map_err(|e| ProcessError::caused_by("encode a table key", e))?;
    bytes.truncate(bytes.len().saturating_sub(trailing));
    Ok(bytes)
}

/// `DK1`/`DK2` as the engine's bidding zone.
pub fn price_area(code: &str) -> Option<PriceArea> {
    match code {
        "DK1" => Some(PriceArea::Dk1),
        "DK2" => Some(PriceArea::Dk2),
        _ => None,
    }
}

fn engine_charge_type(t: ChargeType) -> EngineChargeType {
    match t {
        ChargeType::Subscription => EngineChargeType::Subscription,
        ChargeType::Fee => EngineChargeType::Fee,
        ChargeType::Tariff => EngineChargeType::Tariff,
    }
}

/// The wire charge type of an engine charge type.
pub fn wire_charge_type(t: EngineChargeType) -> ChargeType {
    match t {
        EngineChargeType::Subscription => ChargeType::Subscription,
        EngineChargeType::Fee => ChargeType::Fee,
        EngineChargeType::Tariff => ChargeType::Tariff,
    }
}

fn engine_resolution(r: Resolution) -> ChargeResolution {
    match r {
        Resolution::Pt15m => ChargeResolution::Pt15m,
        Resolution::Pt1h => ChargeResolution::Pt1h,
        Resolution::P1d => ChargeResolution::P1d,
        Resolution::P1m => ChargeResolution::P1m,
    }
}

/// The charge time of price position `position` (1-based) of a series
/// starting at `start`: quarter-hours and hours in UTC, days and months by
/// the Danish calendar.
pub fn price_time(resolution: Resolution, start: DateTime<Utc>, position: i32) -> DateTime<Utc> {
    let n = i64::from(position.max(1) - 1);
    match resolution {
        Resolution::Pt15m => start + Duration::minutes(15 * n),
        Resolution::Pt1h => start + Duration::hours(n),
        Resolution::P1d => local_midnight(local_date(start) + chrono::Days::new(n as u64)),
        Resolution::P1m => {
            let first = local_date(start).with_day(1).unwrap_or(local_date(start));
            local_midnight(first + Months::new(n as u32))
        }
    }
}

/// The charge links of `gsrn`, as the engine takes them.
pub fn links_of(
    ctx: &Context<'_>,
    wire: &Wire,
    gsrn: &str,
) -> Result<Vec<EngineLink>, ProcessError> {
    // Trailing: owner "" (1), type index 0 (1), code "" (1), valid_from 0 (1).
    let prefix = key_prefix(
        wire,
        &ChargeLinkKey {
            gsrn: gsrn.to_string(),
            owner_gln: String::new(),
            charge_type: ChargeType::Subscription,
            charge_code: String::new(),
            valid_from: epoch(),
        },
        4,
    )?;
    let mut links = Vec::new();
    for (_, value) in ctx.global_scan_prefix(CHARGE_LINKS_TABLE, &prefix)? {
        let link: ChargeLink = decode(wire, &value, "charge link")?;
        if link.gsrn != gsrn {
            continue;
        }
        links.push(EngineLink {
            key: ChargeKey::new(
                link.charge_code,
                link.owner_gln,
                engine_charge_type(link.charge_type),
            ),
            quantity: u32::try_from(link.quantity).unwrap_or(0),
            from: link.valid_from,
            to: link.valid_to,
        });
    }
    Ok(links)
}

/// A charge with its information periods and the prices that fall in
/// `period`, or `None` when no information record exists (the engine then
/// reports the charge as unknown). Where price series overlap, the series
/// starting later wins: an owner publishes a price change as a new series
/// from the change.
pub fn charge(
    ctx: &Context<'_>,
    wire: &Wire,
    key: &ChargeKey,
    period: &BillingPeriod,
) -> Result<Option<EngineCharge>, ProcessError> {
    let wire_type = wire_charge_type(key.charge_type);
    // Trailing: valid_from / period_start 0 (1 byte).
    let info_prefix = key_prefix(
        wire,
        &ChargePeriodKey {
            owner_gln: key.owner.clone(),
            charge_type: wire_type,
            charge_code: key.code.clone(),
            valid_from: epoch(),
        },
        1,
    )?;
    let mut infos: Vec<Charge> = Vec::new();
    for (_, value) in ctx.global_scan_prefix(CHARGES_TABLE, &info_prefix)? {
        let info: Charge = decode(wire, &value, "charge")?;
        if info.charge_code == key.code && info.owner_gln == key.owner {
            infos.push(info);
        }
    }
    infos.sort_by_key(|c| c.valid_from);
    let Some(latest) = infos.last() else {
        return Ok(None);
    };
    let price_prefix = key_prefix(
        wire,
        &ChargePriceKey {
            owner_gln: key.owner.clone(),
            charge_type: wire_type,
            charge_code: key.code.clone(),
            period_start: epoch(),
        },
        1,
    )?;
    let mut series: Vec<ChargePrice> = Vec::new();
    for (_, value) in ctx.global_scan_prefix(CHARGE_PRICES_TABLE, &price_prefix)? {
        let s: ChargePrice = decode(wire, &value, "charge price")?;
        if s.charge_code == key.code
            && s.owner_gln == key.owner
            && s.period_start < period.end()
            && s.period_end > period.start()
        {
            series.push(s);
        }
    }
    series.sort_by_key(|s| s.period_start);
    let mut prices: BTreeMap<DateTime<Utc>, rust_decimal::Decimal> = BTreeMap::new();
    for s in &series {
        for point in &s.points {
            let time = price_time(s.resolution, s.period_start, point.position);
            if time >= s.period_start && time < s.period_end {
                prices.insert(time, point.price);
            }
        }
    }
    Ok(Some(EngineCharge {
        key: key.clone(),
        resolution: engine_resolution(latest.resolution),
        tax: latest.tax_indicator,
        vat_class: match latest.vat_class {
            VatClass::NoVat => EngineVat::NoVat,
            VatClass::Vat25 => EngineVat::Vat25,
        },
        periods: infos
            .iter()
            .map(|c| ChargePeriod {
                from: c.valid_from,
                to: c.valid_to,
            })
            .collect(),
        prices: prices
            .into_iter()
            .filter(|(t, _)| *t >= period.start() - Duration::days(31) && *t < period.end())
            .map(|(time, price)| ChargePricePoint { time, price })
            .collect(),
    }))
}

/// The spot prices of `area` for every market time unit starting in
/// `[from, to)`: one exact lookup per quarter-hour (a PT1H MTU is found at
/// its hour's first quarter).
pub fn spot_prices(
    ctx: &Context<'_>,
    wire: &Wire,
    area: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<EngineSpotPrice>, ProcessError> {
    let mut out = Vec::new();
    let mut t = from;
    while t < to {
        let key = wire
            .encode(&SpotPriceKey {
                price_area: area.to_string(),
                start: t,
            })
            .map_err(|e| ProcessError::caused_by("encode a spot price key", e))?;
        if let Some(value) = ctx.global(SPOT_PRICES_TABLE, &key)? {
            let price: SpotPrice = decode(wire, &value, "spot price")?;
            let resolution = match price.resolution {
                Resolution::Pt15m => Some(EngineResolution::Pt15m),
                Resolution::Pt1h => Some(EngineResolution::Pt1h),
                _ => None,
            };
            if let Some(resolution) = resolution {
                out.push(EngineSpotPrice::from_dkk_per_mwh(
                    price.start,
                    resolution,
                    price.price_dkk_per_mwh,
                ));
            }
        }
        t += Duration::minutes(15);
    }
    Ok(out)
}

fn decode<T: AvroRecord>(wire: &Wire, bytes: &[u8], what: &str) -> Result<T, ProcessError> {
    wire.decode(bytes)
        .map_err(|e| ProcessError::caused_by(format!("undecodable {what} in a global table"), e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn price_positions_follow_the_danish_calendar() {
        let march = utc("2026-02-28T23:00:00Z");
        assert_eq!(
            price_time(Resolution::P1d, march, 29),
            local_midnight(NaiveDate::from_ymd_opt(2026, 3, 29).unwrap())
        );
        // The day after the spring DST change starts at 22:00 UTC.
        assert_eq!(
            price_time(Resolution::P1d, march, 30),
            utc("2026-03-29T22:00:00Z")
        );
        assert_eq!(
            price_time(Resolution::P1m, march, 2),
            utc("2026-03-31T22:00:00Z")
        );
        assert_eq!(
            price_time(Resolution::Pt1h, march, 3),
            utc("2026-03-01T01:00:00Z")
        );
    }

    #[test]
    fn a_key_prefix_is_a_prefix_of_every_key_with_those_leading_fields() {
        let wire = Wire::local();
        let prefix = key_prefix(
            &wire,
            &ChargeLinkKey {
                gsrn: "571313180000000005".into(),
                owner_gln: String::new(),
                charge_type: ChargeType::Subscription,
                charge_code: String::new(),
                valid_from: epoch(),
            },
            4,
        )
        .unwrap();
        let full = wire
            .encode(&ChargeLinkKey {
                gsrn: "571313180000000005".into(),
                owner_gln: "5790000705689".into(),
                charge_type: ChargeType::Tariff,
                charge_code: "DT_C_01".into(),
                valid_from: utc("2026-01-31T23:00:00Z"),
            })
            .unwrap();
        assert!(full.starts_with(&prefix));
        let other = wire
            .encode(&ChargeLinkKey {
                gsrn: "571313180000000012".into(),
                owner_gln: "5790000705689".into(),
                charge_type: ChargeType::Tariff,
                charge_code: "DT_C_01".into(),
                valid_from: utc("2026-01-31T23:00:00Z"),
            })
            .unwrap();
        assert!(!other.starts_with(&prefix));
        assert_eq!(prefix.len(), 5 + 1 + 18);
    }
}

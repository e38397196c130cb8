//! The wholesale results: every metering point period is settled by
//! `afregning_settlement::settle_month` (the processors' code), and the
//! per-charge-time details are aggregated per charge, grid area and energy
//! supplier exactly as opengeh-wholesale's `calculate_total_quantity_and_amount`,
//! `sum_within_month` and `total_monthly_amount_calculator` do.
//!
//! Energinet computes a tariff amount on the *aggregated* quantity
//! (Σ kWh of all metering points × price, rounded once), so the aggregation
//! sums the details' quantities and applies the same
//! [`afregning_settlement::rounding::line_amount`] the engine uses per metering point.

use std::collections::{BTreeMap, HashMap};

use afregning_settlement::rounding::line_amount;
use afregning_settlement::{
    BillingPeriod, Charge, ChargeKey, ChargeLink, ChargePeriod, ChargePricePoint, ChargeResolution,
    ChargeType, LineSource, MeteringPoint, MonthInput, PriceArea, QualitySet, Scope, SupplyPeriod,
    VatClass, settle_month,
};
use anyhow::{Context, anyhow, bail};
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use crate::energy::{GridLossSeries, RawPoints, positions_of};
use crate::metering_points::MeteringPointPeriod;
use crate::scenario::{CalculationArgs, Row, decimal, field, required, timestamp};

fn charge_type(value: &str) -> anyhow::Result<ChargeType> {
    Ok(match value {
        "subscription" => ChargeType::Subscription,
        "fee" => ChargeType::Fee,
        "tariff" => ChargeType::Tariff,
        other => bail!("unknown charge type {other}"),
    })
}

fn charge_resolution(value: &str) -> anyhow::Result<ChargeResolution> {
    Ok(match value {
        "PT1H" => ChargeResolution::Pt1h,
        "P1D" => ChargeResolution::P1d,
        "P1M" => ChargeResolution::P1m,
        "PT15M" => ChargeResolution::Pt15m,
        other => bail!("unknown charge resolution {other}"),
    })
}

fn key_of(row: &Row) -> anyhow::Result<ChargeKey> {
    Ok(ChargeKey::new(
        required(row, "charge_code")?,
        required(row, "charge_owner_id")?,
        charge_type(required(row, "charge_type")?)?,
    ))
}

/// Builds the charges from the price information periods and price points, selected as
/// `charges_reader.py` does: periods overlapping the calculation (clamped), points inside it.
pub fn read_charges(
    args: &CalculationArgs,
    information: &[Row],
    points: &[Row],
) -> anyhow::Result<BTreeMap<ChargeKey, Charge>> {
    let mut charges: BTreeMap<ChargeKey, Charge> = BTreeMap::new();
    for (n, row) in information.iter().enumerate() {
        let context = || format!("charge_price_information_periods.csv row {}", n + 2);
        let key = key_of(row).with_context(context)?;
        let from = timestamp(required(row, "from_date")?).with_context(context)?;
        let to = field(row, "to_date")?
            .map(timestamp)
            .transpose()
            .with_context(context)?;
        if from >= args.period_end || to.is_some_and(|t| t <= args.period_start) {
            continue;
        }
        let resolution = charge_resolution(required(row, "resolution")?).with_context(context)?;
        let tax = required(row, "is_tax")?.eq_ignore_ascii_case("true");
        let period = ChargePeriod {
            from: from.max(args.period_start),
            to: Some(to.map_or(args.period_end, |t| t.min(args.period_end))),
        };
        let charge = charges.entry(key.clone()).or_insert_with(|| Charge {
            key: key.clone(),
            resolution,
            tax,
            // The scenarios carry no VAT class; it does not enter Energinet's amounts.
            vat_class: VatClass::Vat25,
            periods: Vec::new(),
            prices: Vec::new(),
        });
        if charge.resolution != resolution || charge.tax != tax {
            bail!(
                "charge {key} changes resolution or tax indicator between price information periods; not supported"
            );
        }
        charge.periods.push(period);
    }
    for (n, row) in points.iter().enumerate() {
        let context = || format!("charge_price_points.csv row {}", n + 2);
        let key = key_of(row).with_context(context)?;
        let time = timestamp(required(row, "charge_time")?).with_context(context)?;
        if time < args.period_start || time >= args.period_end {
            continue;
        }
        let price = decimal(required(row, "charge_price")?).with_context(context)?;
        if let Some(charge) = charges.get_mut(&key) {
            charge.prices.push(ChargePricePoint { time, price });
        }
    }
    Ok(charges)
}

/// Reads the charge links overlapping the calculation, clamped to it, per metering point.
pub fn read_links(
    args: &CalculationArgs,
    rows: &[Row],
) -> anyhow::Result<HashMap<String, Vec<ChargeLink>>> {
    let mut links: HashMap<String, Vec<ChargeLink>> = HashMap::new();
    for (n, row) in rows.iter().enumerate() {
        let context = || format!("charge_link_periods.csv row {}", n + 2);
        let key = key_of(row).with_context(context)?;
        let from = timestamp(required(row, "from_date")?).with_context(context)?;
        let to = field(row, "to_date")?
            .map(timestamp)
            .transpose()
            .with_context(context)?;
        if from >= args.period_end || to.is_some_and(|t| t <= args.period_start) {
            continue;
        }
        let quantity: u32 = required(row, "quantity")?
            .parse()
            .map_err(|_| anyhow!("link quantity is not a whole number"))
            .with_context(context)?;
        links
            .entry(required(row, "metering_point_id")?.to_string())
            .or_default()
            .push(ChargeLink {
                key,
                quantity,
                from: from.max(args.period_start),
                to: Some(to.map_or(args.period_end, |t| t.min(args.period_end))),
            });
    }
    Ok(links)
}

/// One row of an amounts-per-charge result (`hourly_tariff_per_co_es` etc.).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AmountRow {
    /// Grid area.
    pub grid_area: String,
    /// Energy supplier.
    pub energy_supplier: Option<String>,
    /// Σ quantity.
    pub quantity: Decimal,
    /// "kWh" or "pcs".
    pub unit: &'static str,
    /// Qualities (tariffs only).
    pub qualities: Option<QualitySet>,
    /// Charge time.
    pub time: DateTime<Utc>,
    /// "PT1H" or "P1D".
    pub resolution: &'static str,
    /// Metering point type name.
    pub metering_point_type: &'static str,
    /// Settlement method name.
    pub settlement_method: Option<&'static str>,
    /// Price.
    pub price: Option<Decimal>,
    /// Amount.
    pub amount: Option<Decimal>,
    /// Tax indicator.
    pub is_tax: bool,
    /// The charge.
    pub key: ChargeKey,
}

/// One row of a monthly or total result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonthlyRow {
    /// Grid area.
    pub grid_area: String,
    /// Energy supplier.
    pub energy_supplier: Option<String>,
    /// "kWh" or "pcs" (per-charge rows only).
    pub unit: Option<&'static str>,
    /// Period start.
    pub time: DateTime<Utc>,
    /// Σ amount; `None` when every summed amount is `None`.
    pub amount: Option<Decimal>,
    /// Tax indicator (per-charge rows only).
    pub is_tax: Option<bool>,
    /// The charge (per-charge rows only).
    pub key: Option<ChargeKey>,
    /// Charge owner (total per charge owner rows).
    pub charge_owner: Option<String>,
}

/// Energinet's wholesale result tables.
#[derive(Debug, Clone, Default)]
pub struct WholesaleResults {
    /// Tables of amounts per charge time, by file name.
    pub amounts: BTreeMap<&'static str, Vec<AmountRow>>,
    /// Monthly and total tables, by file name.
    pub monthly: BTreeMap<&'static str, Vec<MonthlyRow>>,
}

/// File names of the amounts tables.
pub const AMOUNT_TABLES: [&str; 4] = [
    "hourly_tariff_per_co_es",
    "daily_tariff_per_co_es",
    "subscription_per_co_es",
    "fee_per_co_es",
];

fn monthly_table(amount_table: &str) -> &'static str {
    match amount_table {
        "hourly_tariff_per_co_es" => "monthly_tariff_from_hourly_per_co_es",
        "daily_tariff_per_co_es" => "monthly_tariff_from_daily_per_co_es",
        "subscription_per_co_es" => "monthly_subscription_per_co_es",
        _ => "monthly_fee_per_co_es",
    }
}

fn sum_nullable(values: impl Iterator<Item = Option<Decimal>>) -> Option<Decimal> {
    values.fold(None, |acc, v| match (acc, v) {
        (None, v) => v,
        (Some(a), Some(v)) => Some(a + v),
        (a, None) => a,
    })
}

/// A detail of one metering point, before aggregation.
struct PerPoint<'a> {
    table: &'static str,
    period: &'a MeteringPointPeriod,
    key: ChargeKey,
    tax: bool,
    time: DateTime<Utc>,
    quantity: Decimal,
    qualities: Option<QualitySet>,
    price: Option<Decimal>,
}

/// Settles every metering point period and aggregates into Energinet's result tables.
#[allow(clippy::too_many_arguments)]
pub fn calculate(
    args: &CalculationArgs,
    periods: &[MeteringPointPeriod],
    grid_loss_ids: &[String],
    grid_loss: &HashMap<String, GridLossSeries>,
    points: &RawPoints,
    charges: &BTreeMap<ChargeKey, Charge>,
    links: &HashMap<String, Vec<ChargeLink>>,
) -> anyhow::Result<WholesaleResults> {
    let period =
        BillingPeriod::new(args.period_start, args.period_end).context("calculation period")?;
    let mut details: Vec<PerPoint<'_>> = Vec::new();
    for mp in periods.iter().filter(|p| p.mp_type != "exchange") {
        let Some(mp_links) = links.get(&mp.id) else {
            continue;
        };
        let (supply, positions) = if grid_loss_ids.contains(&mp.id) {
            // A grid loss metering point's series is the calculated grid loss, which
            // exists only where grid loss was calculated: supply is those runs.
            let series = grid_loss.get(&mp.id);
            let mut supply: Vec<SupplyPeriod> = Vec::new();
            let mut positions = Vec::new();
            if let Some(series) = series {
                let step = series.resolution.duration();
                for (time, quantity) in series.points.range(mp.from..mp.to) {
                    match supply.last_mut() {
                        Some(last) if last.to == Some(*time) => last.to = Some(*time + step),
                        _ => supply.push(SupplyPeriod {
                            from: *time,
                            to: Some(*time + step),
                            resolution: series.resolution,
                        }),
                    }
                    positions.push(afregning_settlement::Position {
                        start: *time,
                        quantity: Some(*quantity),
                        quality: afregning_settlement::Quality::Calculated,
                        version: 0,
                    });
                }
            }
            (supply, positions)
        } else {
            (
                vec![SupplyPeriod {
                    from: mp.from,
                    to: Some(mp.to),
                    resolution: mp.resolution,
                }],
                positions_of(points, &mp.id),
            )
        };
        let linked: Vec<Charge> = mp_links
            .iter()
            .filter_map(|l| charges.get(&l.key).cloned())
            .collect();
        let input = MonthInput {
            metering_point: MeteringPoint {
                id: mp.id.clone(),
                grid_area: mp.grid_area.clone(),
                price_area: PriceArea::Dk1,
            },
            period,
            supply,
            positions,
            charge_links: mp_links.clone(),
            charges: linked,
            spot_prices: Vec::new(),
            product: Vec::new(),
            scope: Scope::DataHubCharges,
        };
        let statement =
            settle_month(&input).with_context(|| format!("settling metering point {}", mp.id))?;
        for line in &statement.lines {
            let LineSource::Charge {
                key,
                resolution,
                tax,
            } = &line.source
            else {
                continue;
            };
            let table = match (key.charge_type, resolution) {
                (ChargeType::Tariff, ChargeResolution::Pt1h) => "hourly_tariff_per_co_es",
                (ChargeType::Tariff, ChargeResolution::P1d) => "daily_tariff_per_co_es",
                (ChargeType::Tariff, _) => bail!(
                    "charge {key}: Energinet has no result table for {} tariffs",
                    resolution.as_str()
                ),
                (ChargeType::Subscription, _) => "subscription_per_co_es",
                (ChargeType::Fee, _) => "fee_per_co_es",
            };
            for detail in &line.details {
                details.push(PerPoint {
                    table,
                    period: mp,
                    key: key.clone(),
                    tax: *tax,
                    time: detail.start,
                    quantity: detail.quantity,
                    qualities: (key.charge_type == ChargeType::Tariff).then_some(detail.qualities),
                    price: detail.price,
                });
            }
        }
    }
    Ok(aggregate(args, details))
}

type GroupKey = (
    &'static str,
    ChargeKey,
    String,
    Option<String>,
    DateTime<Utc>,
    &'static str,
    Option<&'static str>,
    bool,
    Option<Decimal>,
);

/// Grid area, energy supplier and charge of a monthly sum.
type MonthlyKey = (String, Option<String>, ChargeKey);
/// Amount, tax indicator and unit of a monthly sum.
type MonthlySum = (Option<Decimal>, bool, &'static str);

fn aggregate(args: &CalculationArgs, details: Vec<PerPoint<'_>>) -> WholesaleResults {
    // calculate_total_quantity_and_amount: group, Σ quantity, union of qualities, amount on the sum.
    let mut groups: BTreeMap<GroupKey, (Decimal, Option<QualitySet>)> = BTreeMap::new();
    for d in details {
        let key = (
            d.table,
            d.key,
            d.period.grid_area.clone(),
            d.period.energy_supplier.clone(),
            d.time,
            d.period.mp_type,
            d.period.settlement_method,
            d.tax,
            d.price,
        );
        let entry = groups.entry(key).or_insert((Decimal::ZERO, None));
        entry.0 += d.quantity;
        if let Some(q) = d.qualities {
            entry.1.get_or_insert(QualitySet::EMPTY).extend(q);
        }
    }
    let mut results = WholesaleResults::default();
    for table in AMOUNT_TABLES {
        results.amounts.insert(table, Vec::new());
        results.monthly.insert(monthly_table(table), Vec::new());
    }
    for (
        (table, key, grid_area, energy_supplier, time, mp_type, settlement, is_tax, price),
        (quantity, qualities),
    ) in groups
    {
        let resolution = if table == "hourly_tariff_per_co_es" {
            "PT1H"
        } else {
            "P1D"
        };
        let unit = if key.charge_type == ChargeType::Tariff {
            "kWh"
        } else {
            "pcs"
        };
        results.amounts.entry(table).or_default().push(AmountRow {
            grid_area,
            energy_supplier,
            quantity,
            unit,
            qualities,
            time,
            resolution,
            metering_point_type: mp_type,
            settlement_method: settlement,
            price,
            amount: price.map(|p| line_amount(quantity, p)),
            is_tax,
            key,
        });
    }
    // sum_within_month per charge, grid area and energy supplier.
    let mut all_monthly: Vec<MonthlyRow> = Vec::new();
    for (table, rows) in &results.amounts {
        let mut sums: BTreeMap<MonthlyKey, MonthlySum> = BTreeMap::new();
        for row in rows {
            let entry = sums
                .entry((
                    row.grid_area.clone(),
                    row.energy_supplier.clone(),
                    row.key.clone(),
                ))
                .or_insert((None, row.is_tax, row.unit));
            entry.0 = sum_nullable([entry.0, row.amount].into_iter());
        }
        let monthly: Vec<MonthlyRow> = sums
            .into_iter()
            .map(
                |((grid_area, energy_supplier, key), (amount, is_tax, unit))| MonthlyRow {
                    grid_area,
                    energy_supplier,
                    unit: Some(unit),
                    time: args.period_start,
                    amount,
                    is_tax: Some(is_tax),
                    charge_owner: Some(key.owner.clone()),
                    key: Some(key),
                },
            )
            .collect();
        all_monthly.extend(monthly.iter().cloned());
        results.monthly.insert(monthly_table(table), monthly);
    }
    results.monthly.insert(
        "total_monthly_amounts_per_co_es",
        totals_per_charge_owner(args, &all_monthly),
    );
    results.monthly.insert(
        "total_monthly_amounts_per_es",
        totals_per_energy_supplier(args, &all_monthly),
    );
    results
}

/// `calculate_per_co_es`: non-tax amounts per charge owner, plus the tax amounts of the same
/// grid area and energy supplier unless the owner is the tax owner itself.
fn totals_per_charge_owner(args: &CalculationArgs, monthly: &[MonthlyRow]) -> Vec<MonthlyRow> {
    type Key = (String, String, Option<String>);
    let sum_by = |tax: bool| -> BTreeMap<Key, Option<Decimal>> {
        let mut sums: BTreeMap<Key, Option<Decimal>> = BTreeMap::new();
        for row in monthly.iter().filter(|r| r.is_tax == Some(tax)) {
            let owner = row.charge_owner.clone().unwrap_or_default();
            let entry = sums
                .entry((row.grid_area.clone(), owner, row.energy_supplier.clone()))
                .or_insert(None);
            *entry = sum_nullable([*entry, row.amount].into_iter());
        }
        sums
    };
    let without_tax = sum_by(false);
    let with_tax = sum_by(true);
    let mut rows = Vec::new();
    for ((grid_area, owner, energy_supplier), amount_without) in without_tax {
        let taxes: Vec<(&String, Option<Decimal>)> = with_tax
            .iter()
            .filter(|((ga, _, es), _)| ga == &grid_area && es == &energy_supplier)
            .map(|((_, tax_owner, _), amount)| (tax_owner, *amount))
            .collect();
        let combine = |tax_owner: Option<&String>, amount_with: Option<Decimal>| {
            if tax_owner == Some(&owner) {
                amount_without
            } else if amount_with.is_none() && amount_without.is_none() {
                None
            } else {
                Some(amount_with.unwrap_or_default() + amount_without.unwrap_or_default())
            }
        };
        let amounts: Vec<Option<Decimal>> = if taxes.is_empty() {
            vec![combine(None, None)]
        } else {
            taxes.iter().map(|(o, a)| combine(Some(o), *a)).collect()
        };
        for amount in amounts {
            rows.push(MonthlyRow {
                grid_area: grid_area.clone(),
                energy_supplier: energy_supplier.clone(),
                unit: None,
                time: args.period_start,
                amount,
                is_tax: None,
                key: None,
                charge_owner: Some(owner.clone()),
            });
        }
    }
    rows
}

/// `calculate_per_es`: Σ of every monthly amount per grid area and energy supplier.
fn totals_per_energy_supplier(args: &CalculationArgs, monthly: &[MonthlyRow]) -> Vec<MonthlyRow> {
    let mut sums: BTreeMap<(String, Option<String>), Option<Decimal>> = BTreeMap::new();
    for row in monthly {
        let entry = sums
            .entry((row.grid_area.clone(), row.energy_supplier.clone()))
            .or_insert(None);
        *entry = sum_nullable([*entry, row.amount].into_iter());
    }
    sums.into_iter()
        .map(|((grid_area, energy_supplier), amount)| MonthlyRow {
            grid_area,
            energy_supplier,
            unit: None,
            time: args.period_start,
            amount,
            is_tax: None,
            key: None,
            charge_owner: None,
        })
        .collect()
}

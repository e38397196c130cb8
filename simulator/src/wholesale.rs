//! DataHub's wholesale settlement (BRS-027) of a month, computed from the ground truth as
//! Energinet computes it, and written as the RSM-019 and RSM-014 documents DataHub sends;
//! with perturbations, so a reconciliation can be shown to find exactly what was changed.
//!
//! The arithmetic follows opengeh-wholesale (settlement REFERENCE §3) and is written here
//! directly from the truth, not through the settlement crate's per-metering-point engine, so
//! a mistake in either shows up as a difference: per group (grid area × supplier × charge ×
//! metering point type × settlement method) and position, the quantities of every linked
//! metering point are summed (quarter-hours into UTC hours for hourly tariffs, into local
//! days for daily tariffs) and the sum is priced once, rounded half-up to 6 decimals;
//! subscriptions are `pieces × round(monthly price / days in month, 6)` per local day.
//! Monthly amounts and totals come from `afregning_cim::wholesale`.

use std::collections::BTreeMap;

use afregning_cim::codes::{
    ChargeKind, Currency, MessageType, MeteringPointType, Quality, Role, SettlementMethod, Unit,
};
use afregning_cim::resolution::local_midnight_utc;
use afregning_cim::rsm014::{AggregatedPeriod, AggregatedSeries, NotifyAggregatedMeasureData};
use afregning_cim::rsm019::{
    NotifyWholesaleServices, WholesalePeriod, WholesalePoint, WholesaleSeries,
};
use afregning_cim::wholesale::{
    AmountPerCharge, CalculationType, ChargeId, MonthlyAmountPerCharge, ResultScope,
    TotalMonthlyAmount, monthly_amounts, total_monthly_amounts,
};
use afregning_cim::{AreaId, Gsrn, PartyId, Point, Resolution, TimeInterval};
use afregning_settlement::calendar::{floor_hour, local_date};
use afregning_settlement::rounding::{line_amount, round_half_up};
use chrono::{DateTime, Months, NaiveDate, Utc};
use rust_decimal::Decimal;

use crate::ground_truth::{GroundTruth, MeteringPointTruth};
use crate::scenario::documents::header;

/// What DataHub does differently from the truth in a run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Perturbations {
    /// DataHub settles one more metering point for us: a copy of this one (readings, links,
    /// grid area, settlement method) under the given GSRN.
    pub extra_metering_point: Option<(Gsrn, Gsrn)>,
    /// DataHub prices one charge differently on one local day.
    pub price_change: Option<PriceChange>,
}

/// One charge's price on one local day, as DataHub has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriceChange {
    /// Charge owner.
    pub owner: String,
    /// Charge code.
    pub code: String,
    /// The local day.
    pub day: NaiveDate,
    /// DataHub's price that day (per kWh, or per month for a subscription).
    pub price: Decimal,
}

/// One RSM-014 energy sum: grid area × metering point type × settlement method × hour.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnergySum {
    /// Calculation, grid area, supplier.
    pub scope: ResultScope,
    /// E17.
    pub metering_point_type: MeteringPointType,
    /// Flex or non-profiled.
    pub settlement_method: SettlementMethod,
    /// UTC hour.
    pub time: DateTime<Utc>,
    /// kWh.
    pub quantity: Decimal,
}

/// A run of DataHub's calculation for one month: every result kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WholesaleRun {
    /// UTC start of the month.
    pub month_start: DateTime<Utc>,
    /// UTC end of the month.
    pub month_end: DateTime<Utc>,
    /// Amounts per charge per position.
    pub amounts: Vec<AmountPerCharge>,
    /// Monthly amounts per charge.
    pub monthly: Vec<MonthlyAmountPerCharge>,
    /// Totals per owner and for the supplier.
    pub totals: Vec<TotalMonthlyAmount>,
    /// Energy per hour.
    pub energy: Vec<EnergySum>,
}

type GroupKey = (
    String,
    ChargeId,
    bool,
    Resolution,
    SettlementMethod,
    DateTime<Utc>,
);

/// DataHub's run `calculation` (version `version`) of the month starting on local day
/// `first_day`, from the truth with `perturbations`.
pub fn wholesale_run(
    truth: &GroundTruth,
    first_day: NaiveDate,
    calculation: CalculationType,
    version: u64,
    perturbations: &Perturbations,
) -> Option<WholesaleRun> {
    let month_start = local_midnight_utc(first_day)?;
    let month_end = local_midnight_utc(first_day.checked_add_months(Months::new(1))?)?;
    let days_in_month =
        u32::try_from((first_day.checked_add_months(Months::new(1))? - first_day).num_days())
            .ok()?;
    let scope = |grid_area: &str| ResultScope {
        calculation,
        version,
        grid_area: grid_area.to_string(),
        energy_supplier: truth.supplier_gln.clone(),
    };

    // Who DataHub settles: our points, plus the extra one.
    let mut settled: Vec<(Gsrn, &MeteringPointTruth)> =
        truth.metering_points.iter().map(|m| (m.gsrn, m)).collect();
    if let Some((copy_of, gsrn)) = perturbations.extra_metering_point
        && let Some(mp) = truth.metering_point(copy_of)
    {
        settled.push((gsrn, mp));
    }

    let mut groups: BTreeMap<GroupKey, Decimal> = BTreeMap::new();
    let mut energy: BTreeMap<(String, SettlementMethod, DateTime<Utc>), Decimal> = BTreeMap::new();
    for (_, mp) in &settled {
        let (hourly, daily) = quantities(truth, mp, month_start, month_end);
        for (hour, q) in &hourly {
            *energy
                .entry((mp.grid_area.clone(), mp.settlement_method, *hour))
                .or_default() += *q;
        }
        for link in truth.links_of(mp.gsrn) {
            let Some(charge) = truth.charge(&link.owner_gln, link.kind, &link.code) else {
                continue;
            };
            let id = ChargeId {
                owner: charge.owner_gln.clone(),
                code: charge.code.clone(),
                kind: charge.kind,
            };
            let linked = |t: DateTime<Utc>| {
                t >= link.valid_from
                    && link.valid_to.is_none_or(|end| t < end)
                    && t >= mp.supply_start
            };
            let mut add = |resolution: Resolution, time: DateTime<Utc>, q: Decimal| {
                *groups
                    .entry((
                        mp.grid_area.clone(),
                        id.clone(),
                        charge.tax,
                        resolution,
                        mp.settlement_method,
                        time,
                    ))
                    .or_default() += q;
            };
            match (charge.kind, charge.resolution) {
                (ChargeKind::Tariff, Resolution::Hour) => {
                    for (hour, q) in hourly.iter().filter(|(h, _)| linked(**h)) {
                        add(Resolution::Hour, *hour, *q);
                    }
                }
                (ChargeKind::Tariff, _) => {
                    for (day, q) in daily.iter().filter(|(d, _)| linked(**d)) {
                        add(Resolution::Day, *day, *q);
                    }
                }
                _ => {
                    for day in local_days(month_start, month_end).filter(|d| linked(*d)) {
                        add(Resolution::Day, day, Decimal::from(link.factor));
                    }
                }
            }
        }
    }

    let mut amounts = Vec::with_capacity(groups.len());
    for ((grid_area, charge, is_tax, resolution, method, time), quantity) in groups {
        let Some(truth_charge) = truth.charge(&charge.owner, charge.kind, &charge.code) else {
            continue;
        };
        let changed = perturbations.price_change.as_ref().filter(|c| {
            c.owner == charge.owner && c.code == charge.code && local_date(time) == c.day
        });
        let price = changed.map(|c| c.price).or_else(|| {
            truth_charge
                .prices
                .iter()
                .filter(|p| p.time <= time)
                .max_by_key(|p| p.time)
                .map(|p| p.price)
        });
        let price = match charge.kind {
            ChargeKind::Tariff => price,
            // Subscriptions and fees per day: the month's price spread evenly, 6 decimals.
            _ => price.map(|p| round_half_up(p / Decimal::from(days_in_month), 6)),
        };
        amounts.push(AmountPerCharge {
            scope: scope(&grid_area),
            charge,
            is_tax,
            resolution,
            metering_point_type: MeteringPointType::Consumption,
            settlement_method: Some(method),
            time,
            quantity: Some(quantity),
            price,
            amount: price.map(|p| line_amount(quantity, p)),
        });
    }
    let monthly = monthly_amounts(&amounts, month_start);
    let mut totals = Vec::new();
    let mut owners: BTreeMap<String, String> = BTreeMap::new();
    for mp in &truth.metering_points {
        owners.insert(mp.grid_area.clone(), mp.grid_owner_gln.clone());
    }
    for (area, owner) in &owners {
        let in_area: Vec<_> = monthly
            .iter()
            .filter(|m| &m.scope.grid_area == area)
            .cloned()
            .collect();
        totals.extend(total_monthly_amounts(&in_area, owner));
    }
    let energy = energy
        .into_iter()
        .map(|((area, method, time), quantity)| EnergySum {
            scope: scope(&area),
            metering_point_type: MeteringPointType::Consumption,
            settlement_method: method,
            time,
            quantity,
        })
        .collect();
    Some(WholesaleRun {
        month_start,
        month_end,
        amounts,
        monthly,
        totals,
        energy,
    })
}

/// A metering point's known quantities in the month per UTC hour and per local day (UTC of
/// its midnight); a missing value adds nothing, as DataHub counts it 0.
fn quantities(
    truth: &GroundTruth,
    mp: &MeteringPointTruth,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> (
    BTreeMap<DateTime<Utc>, Decimal>,
    BTreeMap<DateTime<Utc>, Decimal>,
) {
    let mut hourly = BTreeMap::new();
    let mut daily = BTreeMap::new();
    let step = match mp.resolution {
        Resolution::QuarterHour => chrono::Duration::minutes(15),
        _ => chrono::Duration::hours(1),
    };
    for reading in truth.readings.iter().filter(|r| r.gsrn == mp.gsrn) {
        if reading.start < from || reading.start >= to {
            continue;
        }
        for point in &reading.points {
            let start = reading.start + step * (point.position as i32 - 1);
            let q = point.quantity.unwrap_or_default();
            *hourly.entry(floor_hour(start)).or_insert(Decimal::ZERO) += q;
            *daily.entry(reading.start).or_insert(Decimal::ZERO) += q;
        }
    }
    (hourly, daily)
}

fn local_days(from: DateTime<Utc>, to: DateTime<Utc>) -> impl Iterator<Item = DateTime<Utc>> {
    let first = local_date(from);
    (0..)
        .map_while(move |i| local_midnight_utc(first + chrono::Days::new(i)))
        .take_while(move |t| *t < to)
}

/// The run as one RSM-019 document: a series per amount-per-charge group (PT1H or P1D over
/// the month), per monthly amount per charge and per total (P1M).
pub fn rsm019(run: &WholesaleRun, message_id: &str, created: DateTime<Utc>) -> Vec<u8> {
    let calculation = run
        .monthly
        .first()
        .map(|m| m.scope.clone())
        .or_else(|| run.totals.first().map(|t| t.scope.clone()));
    let Some(any) = calculation else {
        return Vec::new();
    };
    let interval = TimeInterval {
        start: run.month_start,
        end: run.month_end,
    };
    let mut series = Vec::new();
    let mut grouped: BTreeMap<_, Vec<&AmountPerCharge>> = BTreeMap::new();
    for a in &run.amounts {
        grouped
            .entry((
                a.scope.clone(),
                a.charge.clone(),
                a.resolution.as_str(),
                a.settlement_method.map(|m| m.as_str()),
            ))
            .or_default()
            .push(a);
    }
    for ((scope, charge, _, _), points) in grouped {
        let first = points[0];
        let resolution = first.resolution;
        let mut wholesale_points: Vec<WholesalePoint> = points
            .iter()
            .filter_map(|a| {
                Some(WholesalePoint {
                    amount: a.amount,
                    quantity: a.quantity,
                    position: position_of(resolution, run.month_start, a.time)?,
                    price: a.price,
                    quality: Some(Quality::Calculated),
                })
            })
            .collect();
        wholesale_points.sort_by_key(|p| p.position);
        series.push(wholesale_series(
            &scope,
            series.len(),
            Some(&charge),
            Some(first.metering_point_type),
            first.settlement_method,
            unit(charge.kind),
            WholesalePeriod {
                resolution,
                interval,
                points: wholesale_points,
            },
        ));
    }
    for m in &run.monthly {
        series.push(wholesale_series(
            &m.scope,
            series.len(),
            Some(&m.charge),
            None,
            None,
            unit(m.charge.kind),
            monthly_period(interval, m.amount),
        ));
    }
    for t in &run.totals {
        let mut s = wholesale_series(
            &t.scope,
            series.len(),
            None,
            None,
            None,
            Unit::KWH,
            monthly_period(interval, Some(t.amount)),
        );
        s.charge_owner = t.charge_owner.clone().map(PartyId::gln);
        series.push(s);
    }
    let doc = NotifyWholesaleServices {
        header: header(
            message_id,
            MessageType::AGGREGATED_METERED_DATA,
            any.calculation.business_reason(),
            Role::METERING_POINT_ADMINISTRATOR,
            &any.energy_supplier,
            created,
            None,
        ),
        series,
    };
    afregning_cim::rsm019::write(&doc)
}

/// The run's energy as one RSM-014 document: a PT1H series per grid area and settlement
/// method over the month.
pub fn rsm014(run: &WholesaleRun, message_id: &str, created: DateTime<Utc>) -> Vec<u8> {
    let Some(any) = run.energy.first() else {
        return Vec::new();
    };
    let mut grouped: BTreeMap<(ResultScope, &'static str), Vec<&EnergySum>> = BTreeMap::new();
    for e in &run.energy {
        grouped
            .entry((e.scope.clone(), e.settlement_method.as_str()))
            .or_default()
            .push(e);
    }
    let series = grouped
        .into_iter()
        .enumerate()
        .map(|(i, ((scope, _), sums))| AggregatedSeries {
            transaction_id: transaction_id("A", &scope, i),
            version: Some(scope.version.to_string()),
            grid_area: Some(AreaId::grid_area(scope.grid_area.clone())),
            balance_responsible: None,
            energy_supplier: Some(PartyId::gln(scope.energy_supplier.clone())),
            settlement_method: Some(sums[0].settlement_method),
            original_transaction_id: None,
            metering_point_type: MeteringPointType::Consumption,
            product: Some("8716867000030".into()),
            unit: Unit::KWH,
            settlement_version: scope.calculation.settlement_version(),
            asset_type: None,
            bidding_zone: None,
            in_area: None,
            out_area: None,
            registered: None,
            period: AggregatedPeriod {
                resolution: Resolution::Hour,
                interval: TimeInterval {
                    start: run.month_start,
                    end: run.month_end,
                },
                points: sums
                    .iter()
                    .filter_map(|e| {
                        Some(Point {
                            position: position_of(Resolution::Hour, run.month_start, e.time)?,
                            quality: Quality::Calculated,
                            quantity: Some(e.quantity),
                        })
                    })
                    .collect(),
            },
        })
        .collect();
    let doc = NotifyAggregatedMeasureData {
        header: header(
            message_id,
            MessageType::AGGREGATED_METERED_DATA,
            any.scope.calculation.business_reason(),
            Role::METERED_DATA_ADMINISTRATOR,
            &any.scope.energy_supplier,
            created,
            None,
        ),
        series,
    };
    afregning_cim::rsm014::write(&doc)
}

fn position_of(resolution: Resolution, start: DateTime<Utc>, time: DateTime<Utc>) -> Option<u32> {
    let steps = match resolution {
        Resolution::QuarterHour => (time - start).num_minutes() / 15,
        Resolution::Hour => (time - start).num_minutes() / 60,
        Resolution::Day => (local_date(time) - local_date(start)).num_days(),
        Resolution::Month => 0,
    };
    u32::try_from(steps + 1).ok()
}

fn unit(kind: ChargeKind) -> Unit {
    match kind {
        ChargeKind::Tariff => Unit::KWH,
        _ => Unit::PIECES,
    }
}

fn monthly_period(interval: TimeInterval, amount: Option<Decimal>) -> WholesalePeriod {
    WholesalePeriod {
        resolution: Resolution::Month,
        interval,
        points: vec![WholesalePoint {
            amount: Some(amount.unwrap_or_default()),
            quantity: None,
            position: 1,
            price: None,
            quality: None,
        }],
    }
}

fn transaction_id(document: &str, scope: &ResultScope, index: usize) -> String {
    format!(
        "{document}-{}-{}-{}-v{}-{index}",
        scope.grid_area,
        scope.calculation.business_reason().as_str(),
        scope
            .calculation
            .settlement_version()
            .map(|v| v.as_str())
            .unwrap_or("00"),
        scope.version
    )
}

fn wholesale_series(
    scope: &ResultScope,
    index: usize,
    charge: Option<&ChargeId>,
    metering_point_type: Option<MeteringPointType>,
    settlement_method: Option<SettlementMethod>,
    unit: Unit,
    period: WholesalePeriod,
) -> WholesaleSeries {
    WholesaleSeries {
        transaction_id: transaction_id("W", scope, index),
        version: Some(scope.version.to_string()),
        settlement_version: scope.calculation.settlement_version(),
        original_transaction_id: None,
        metering_point_type,
        settlement_method,
        charge_code: charge.map(|c| c.code.clone()),
        charge_kind: charge.map(|c| c.kind),
        charge_owner: charge.map(|c| PartyId::gln(c.owner.clone())),
        grid_area: Some(AreaId::grid_area(scope.grid_area.clone())),
        energy_supplier: PartyId::gln(scope.energy_supplier.clone()),
        product: Some("5790001330590".into()),
        unit,
        price_unit: None,
        currency: Some(Currency::DKK),
        asset_type: None,
        bidding_zone: None,
        registered: None,
        period,
    }
}

//! The pure core of reconcile: DataHub's results for one grid area, supplier and month
//! against our own, aggregated to DataHub's granularity, compared exactly. No I/O.
//!
//! Granularity (lifecycle NOTES §4.1, Energinet's `calculate_total_quantity_and_amount`):
//! - amount per charge: grid area × charge owner × code × type × resolution (PT1H, P1D) ×
//!   metering point type × settlement method × position. Our side sums the quantities of
//!   every metering point in the group and prices the sum once, `line_amount(Σq, price)`,
//!   as DataHub does; summing per-point rounded amounts would differ in the 6th decimal.
//! - monthly amount per charge: grid area × owner × code × type, the month's sum.
//! - totals: per charge owner (tax charges under the grid-area owner) and for the supplier,
//!   with the rule in `afregning_cim::wholesale::total_monthly_amounts`.
//! - energy (RSM-014): grid area × metering point type × settlement method × position at
//!   DataHub's resolution; our finer positions are summed into DataHub's.
//!
//! Every level is compared, so one cause shows where it starts (a position) and what it
//! costs (the month, the owner's total). Only the run in force counts ([`in_force`]).

use std::collections::{BTreeMap, BTreeSet};

use afregning_cim::Resolution as CimResolution;
use afregning_cim::wholesale::{
    CalculationType, ChargeId, MonthlyAmountPerCharge, ResultScope, total_monthly_amounts,
};
use afregning_settlement::rounding::line_amount;
use afregning_topology::records::{Resolution, WholesaleResult, WholesaleResultKind};
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

/// Which month, grid area and supplier are reconciled, and who owns the grid area (tax
/// charges count under its total).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    /// Grid area code.
    pub grid_area: String,
    /// Our GLN.
    pub energy_supplier: String,
    /// UTC start of the month (local midnight of the first).
    pub month_start: DateTime<Utc>,
    /// UTC end of the month, exclusive.
    pub month_end: DateTime<Utc>,
    /// The grid company's GLN.
    pub grid_area_owner: String,
}

/// Where one amount per charge sits: DataHub's series key and the position's start.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AmountKey {
    /// Charge owner GLN.
    pub charge_owner: String,
    /// Charge code.
    pub charge_code: String,
    /// D01 subscription, D02 fee, D03 tariff.
    pub charge_type: String,
    /// PT1H or P1D.
    pub resolution: String,
    /// E17, E18, …
    pub metering_point_type: String,
    /// D01, E02, or none.
    pub settlement_method: Option<String>,
    /// UTC start of the position.
    pub time: DateTime<Utc>,
}

/// Where one energy sum sits: RSM-014's series key and the position's start.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EnergyKey {
    /// E17, E18, …
    pub metering_point_type: String,
    /// D01, E02, or none.
    pub settlement_method: Option<String>,
    /// PT15M or PT1H (DataHub's).
    pub resolution: String,
    /// UTC start of the position.
    pub time: DateTime<Utc>,
}

/// One metering point's settled amount of one charge at one position: a detail of our
/// settlement (`afregning_settlement::Detail`) with the point's master data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OurChargePosition {
    /// The metering point.
    pub gsrn: String,
    /// Its grid area.
    pub grid_area: String,
    /// Where it belongs.
    pub key: AmountKey,
    /// Whether the charge is a tax.
    pub is_tax: bool,
    /// kWh or pieces.
    pub quantity: Decimal,
    /// Our price; none where we have no price.
    pub price: Option<Decimal>,
}

/// One metering point's reading at one position, with its master data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OurEnergyPosition {
    /// The metering point.
    pub gsrn: String,
    /// Its grid area.
    pub grid_area: String,
    /// E17, E18, …
    pub metering_point_type: String,
    /// D01, E02, or none.
    pub settlement_method: Option<String>,
    /// PT15M or PT1H.
    pub resolution: Resolution,
    /// UTC start.
    pub time: DateTime<Utc>,
    /// kWh; none where the value is missing.
    pub quantity: Option<Decimal>,
}

/// Our side of a month.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OurSide {
    /// Settled charge positions, every metering point.
    pub charges: Vec<OurChargePosition>,
    /// Readings, every metering point.
    pub energy: Vec<OurEnergyPosition>,
}

/// The level a discrepancy was found at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub enum Level {
    /// RSM-014 energy at one position.
    Energy,
    /// RSM-019 amount per charge at one position.
    AmountPerCharge,
    /// RSM-019 monthly amount per charge.
    MonthlyAmountPerCharge,
    /// RSM-019 total per charge owner.
    TotalPerOwner,
    /// RSM-019 total for the supplier.
    SupplierTotal,
}

impl Level {
    /// The name stored and printed.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Energy => "ENERGY",
            Self::AmountPerCharge => "AMOUNT_PER_CHARGE",
            Self::MonthlyAmountPerCharge => "MONTHLY_AMOUNT_PER_CHARGE",
            Self::TotalPerOwner => "TOTAL_PER_OWNER",
            Self::SupplierTotal => "SUPPLIER_TOTAL",
        }
    }
}

/// What differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub enum Measure {
    /// kWh or pieces.
    Quantity,
    /// DKK per unit.
    Price,
    /// DKK.
    Amount,
}

impl Measure {
    /// The name stored and printed.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Quantity => "QUANTITY",
            Self::Price => "PRICE",
            Self::Amount => "AMOUNT",
        }
    }
}

/// One difference between DataHub and us: what, where, both values, the difference and the
/// metering points behind our value.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Discrepancy {
    /// The level.
    pub level: Level,
    /// What differs.
    pub measure: Measure,
    /// Charge owner (charge levels and owner totals).
    pub charge_owner: Option<String>,
    /// Charge code.
    pub charge_code: Option<String>,
    /// Charge type (D01-D03).
    pub charge_type: Option<String>,
    /// Resolution of the position (PT15M, PT1H, P1D; P1M for monthly levels).
    pub resolution: String,
    /// Metering point type (position levels).
    pub metering_point_type: Option<String>,
    /// Settlement method (position levels).
    pub settlement_method: Option<String>,
    /// UTC start of the position (the month's start for monthly levels).
    pub time: DateTime<Utc>,
    /// DataHub's value; none when DataHub has none.
    pub datahub: Option<Decimal>,
    /// Ours; none when we have none.
    pub ours: Option<Decimal>,
    /// DataHub's minus ours, a missing value counted as zero.
    pub difference: Decimal,
    /// The metering points behind our value, sorted.
    pub metering_points: Vec<String>,
    /// The DataHub run compared with (e.g. `D05` or `D32-D01`) and its version; none when
    /// DataHub sent nothing for the key.
    pub calculation: Option<String>,
}

/// The runs of DataHub's results in force: per series key and period, the latest run
/// (wholesale fixing < first < second < third correction; then the calculation version).
/// Earlier runs stay where they are (topic, sink); they are only not compared.
pub fn in_force(results: &[WholesaleResult]) -> Vec<&WholesaleResult> {
    let mut best: BTreeMap<SeriesKey, (&WholesaleResult, (u8, u64))> = BTreeMap::new();
    for r in results {
        let Some(rank) = run_rank(r) else { continue };
        let key = series_key(r);
        match best.get(&key) {
            Some((_, existing)) if *existing >= rank => {}
            _ => {
                best.insert(key, (r, rank));
            }
        }
    }
    best.into_values().map(|(r, _)| r).collect()
}

type SeriesKey = (
    bool,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    String,
    DateTime<Utc>,
    DateTime<Utc>,
);

fn series_key(r: &WholesaleResult) -> SeriesKey {
    (
        r.kind == WholesaleResultKind::AggregatedMeasureData,
        r.grid_area.clone(),
        r.energy_supplier_gln.clone(),
        r.metering_point_type.clone(),
        r.settlement_method.clone(),
        r.charge_owner_gln.clone(),
        r.charge_type.map(|t| t.code().to_string()),
        r.charge_code.clone(),
        resolution_code(r.resolution).to_string(),
        r.period_start,
        r.period_end,
    )
}

/// The run's precedence, or none when the run is not one (validate refuses those).
fn run_rank(r: &WholesaleResult) -> Option<(u8, u64)> {
    let run =
        CalculationType::from_document(&r.business_reason, r.settlement_version.as_deref()).ok()?;
    let version = r
        .calculation_version
        .as_deref()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    Some((run.rank(), version))
}

/// How a run is named in discrepancies and reports: `D05 v1`, `D32-D01 v2`.
pub fn run_label(r: &WholesaleResult) -> String {
    let version = r.calculation_version.as_deref().unwrap_or("-");
    match &r.settlement_version {
        Some(v) => format!("{}-{v} v{version}", r.business_reason),
        None => format!("{} v{version}", r.business_reason),
    }
}

fn resolution_code(r: Resolution) -> &'static str {
    cim_resolution(r).as_str()
}

fn cim_resolution(r: Resolution) -> CimResolution {
    match r {
        Resolution::Pt15m => CimResolution::QuarterHour,
        Resolution::Pt1h => CimResolution::Hour,
        Resolution::P1d => CimResolution::Day,
        Resolution::P1m => CimResolution::Month,
    }
}

#[derive(Debug, Clone, Default)]
struct DataHubValue {
    quantity: Option<Decimal>,
    price: Option<Decimal>,
    amount: Option<Decimal>,
    run: String,
}

#[derive(Debug, Default)]
struct DataHubSide {
    amounts: BTreeMap<AmountKey, DataHubValue>,
    monthly: BTreeMap<(String, String, String), DataHubValue>,
    totals: BTreeMap<Option<String>, DataHubValue>,
    energy: BTreeMap<EnergyKey, DataHubValue>,
}

fn datahub_side(results: &[WholesaleResult], scope: &Scope) -> DataHubSide {
    let mut side = DataHubSide::default();
    let ours = |r: &&WholesaleResult| {
        r.grid_area == scope.grid_area
            && r.energy_supplier_gln
                .as_deref()
                .is_none_or(|s| s == scope.energy_supplier)
            && r.period_start < scope.month_end
            && r.period_end > scope.month_start
    };
    for r in in_force(results).into_iter().filter(ours) {
        let run = run_label(r);
        let resolution = cim_resolution(r.resolution);
        for p in &r.points {
            let Some(time) = u32::try_from(p.position)
                .ok()
                .and_then(|pos| resolution.position_start(r.period_start, pos))
            else {
                continue;
            };
            if time < scope.month_start || time >= scope.month_end {
                continue;
            }
            let value = DataHubValue {
                quantity: p.quantity,
                price: p.price,
                amount: p.amount,
                run: run.clone(),
            };
            match (r.kind, &r.charge_code, r.resolution) {
                (WholesaleResultKind::AggregatedMeasureData, _, _) => {
                    side.energy.insert(
                        EnergyKey {
                            metering_point_type: r.metering_point_type.clone().unwrap_or_default(),
                            settlement_method: r.settlement_method.clone(),
                            resolution: resolution.as_str().to_string(),
                            time,
                        },
                        value,
                    );
                }
                (_, Some(code), Resolution::P1m) => {
                    side.monthly.insert(charge_triple(r, code), value);
                }
                (_, Some(code), _) => {
                    side.amounts.insert(
                        AmountKey {
                            charge_owner: r.charge_owner_gln.clone().unwrap_or_default(),
                            charge_code: code.clone(),
                            charge_type: r
                                .charge_type
                                .map(|t| t.code().to_string())
                                .unwrap_or_default(),
                            resolution: resolution.as_str().to_string(),
                            metering_point_type: r.metering_point_type.clone().unwrap_or_default(),
                            settlement_method: r.settlement_method.clone(),
                            time,
                        },
                        value,
                    );
                }
                (_, None, _) => {
                    side.totals.insert(r.charge_owner_gln.clone(), value);
                }
            }
        }
    }
    side
}

fn charge_triple(r: &WholesaleResult, code: &str) -> (String, String, String) {
    (
        r.charge_owner_gln.clone().unwrap_or_default(),
        code.to_string(),
        r.charge_type
            .map(|t| t.code().to_string())
            .unwrap_or_default(),
    )
}

#[derive(Debug, Clone, Default)]
struct OurValue {
    quantity: Decimal,
    price: Option<Decimal>,
    is_tax: bool,
    metering_points: BTreeSet<String>,
}

impl OurValue {
    fn amount(&self) -> Option<Decimal> {
        self.price.map(|p| line_amount(self.quantity, p))
    }
}

/// Our monthly amount of one charge: the sum of our priced positions.
#[derive(Debug, Clone, Default)]
struct OurMonthly {
    amount: Option<Decimal>,
    is_tax: bool,
    metering_points: BTreeSet<String>,
}

fn our_amounts(ours: &OurSide, scope: &Scope) -> BTreeMap<AmountKey, OurValue> {
    let mut out: BTreeMap<AmountKey, OurValue> = BTreeMap::new();
    for c in &ours.charges {
        if c.grid_area != scope.grid_area
            || c.key.time < scope.month_start
            || c.key.time >= scope.month_end
        {
            continue;
        }
        let v = out.entry(c.key.clone()).or_default();
        v.quantity += c.quantity;
        v.price = v.price.or(c.price);
        v.is_tax = c.is_tax;
        v.metering_points.insert(c.gsrn.clone());
    }
    out
}

fn our_energy(
    ours: &OurSide,
    scope: &Scope,
    resolutions: &BTreeSet<String>,
) -> BTreeMap<EnergyKey, OurValue> {
    let mut out: BTreeMap<EnergyKey, OurValue> = BTreeMap::new();
    for e in &ours.energy {
        if e.grid_area != scope.grid_area || e.time < scope.month_start || e.time >= scope.month_end
        {
            continue;
        }
        for target in resolutions {
            let Some(time) = floor_to(e.time, target, e.resolution) else {
                continue;
            };
            let v = out
                .entry(EnergyKey {
                    metering_point_type: e.metering_point_type.clone(),
                    settlement_method: e.settlement_method.clone(),
                    resolution: target.clone(),
                    time,
                })
                .or_default();
            v.quantity += e.quantity.unwrap_or_default();
            v.metering_points.insert(e.gsrn.clone());
        }
    }
    out
}

/// The start of DataHub's `target` position that our position at `time` falls in, when ours
/// is not coarser than DataHub's (an hourly value cannot be placed in one quarter-hour).
fn floor_to(time: DateTime<Utc>, target: &str, ours: Resolution) -> Option<DateTime<Utc>> {
    match (target, ours) {
        ("PT15M", Resolution::Pt15m) | ("PT1H", Resolution::Pt1h) => Some(time),
        ("PT1H", Resolution::Pt15m) => Some(afregning_settlement::calendar::floor_hour(time)),
        _ => None,
    }
}

fn difference(datahub: Option<Decimal>, ours: Option<Decimal>) -> Decimal {
    datahub.unwrap_or_default() - ours.unwrap_or_default()
}

/// Compares DataHub's results for `scope` with ours; every difference, sorted.
pub fn reconcile(results: &[WholesaleResult], ours: &OurSide, scope: &Scope) -> Vec<Discrepancy> {
    let dh = datahub_side(results, scope);
    let mine = our_amounts(ours, scope);
    let mut out = Vec::new();
    let base =
        |level: Level, measure: Measure, time: DateTime<Utc>, resolution: &str| Discrepancy {
            level,
            measure,
            charge_owner: None,
            charge_code: None,
            charge_type: None,
            resolution: resolution.to_string(),
            metering_point_type: None,
            settlement_method: None,
            time,
            datahub: None,
            ours: None,
            difference: Decimal::ZERO,
            metering_points: Vec::new(),
            calculation: None,
        };

    // Amount per charge, per position.
    let keys: BTreeSet<&AmountKey> = dh.amounts.keys().chain(mine.keys()).collect();
    for key in keys {
        let theirs = dh.amounts.get(key);
        let our = mine.get(key);
        let pairs = [
            (
                Measure::Quantity,
                theirs.and_then(|t| t.quantity),
                our.map(|o| o.quantity),
            ),
            (
                Measure::Price,
                theirs.and_then(|t| t.price),
                our.and_then(|o| o.price),
            ),
            (
                Measure::Amount,
                theirs.and_then(|t| t.amount),
                our.and_then(OurValue::amount),
            ),
        ];
        for (measure, d, o) in pairs {
            // A price missing on one side shows in the amount; only two prices can differ.
            let unpriced = measure == Measure::Price && (d.is_none() || o.is_none());
            if unpriced || same(d, o) {
                continue;
            }
            out.push(Discrepancy {
                charge_owner: Some(key.charge_owner.clone()),
                charge_code: Some(key.charge_code.clone()),
                charge_type: Some(key.charge_type.clone()),
                metering_point_type: Some(key.metering_point_type.clone()),
                settlement_method: key.settlement_method.clone(),
                datahub: d,
                ours: o,
                difference: difference(d, o),
                metering_points: our
                    .map(|o| o.metering_points.iter().cloned().collect())
                    .unwrap_or_default(),
                calculation: theirs.map(|t| t.run.clone()),
                ..base(Level::AmountPerCharge, measure, key.time, &key.resolution)
            });
        }
    }

    // Monthly amount per charge.
    let mut monthly_ours: BTreeMap<(String, String, String), OurMonthly> = BTreeMap::new();
    for (key, v) in &mine {
        let m = monthly_ours
            .entry((
                key.charge_owner.clone(),
                key.charge_code.clone(),
                key.charge_type.clone(),
            ))
            .or_default();
        if let Some(a) = v.amount() {
            m.amount = Some(m.amount.unwrap_or_default() + a);
        }
        m.is_tax = v.is_tax;
        m.metering_points.extend(v.metering_points.iter().cloned());
    }
    let keys: BTreeSet<&(String, String, String)> =
        dh.monthly.keys().chain(monthly_ours.keys()).collect();
    for key in keys {
        let theirs = dh.monthly.get(key);
        let our = monthly_ours.get(key);
        let (d, o) = (theirs.and_then(|t| t.amount), our.and_then(|o| o.amount));
        if same(d, o) {
            continue;
        }
        out.push(Discrepancy {
            charge_owner: Some(key.0.clone()),
            charge_code: Some(key.1.clone()),
            charge_type: Some(key.2.clone()),
            datahub: d,
            ours: o,
            difference: difference(d, o),
            metering_points: our
                .map(|o| o.metering_points.iter().cloned().collect())
                .unwrap_or_default(),
            calculation: theirs.map(|t| t.run.clone()),
            ..base(
                Level::MonthlyAmountPerCharge,
                Measure::Amount,
                scope.month_start,
                "P1M",
            )
        });
    }

    // Totals per owner and for the supplier, by DataHub's rule.
    let monthly_rows: Vec<MonthlyAmountPerCharge> = monthly_ours
        .iter()
        .map(|((owner, code, _), v)| MonthlyAmountPerCharge {
            scope: ResultScope {
                calculation: CalculationType::WholesaleFixing,
                version: 0,
                grid_area: scope.grid_area.clone(),
                energy_supplier: scope.energy_supplier.clone(),
            },
            charge: ChargeId {
                owner: owner.clone(),
                code: code.clone(),
                // The totals do not look at the kind.
                kind: afregning_cim::codes::ChargeKind::Tariff,
            },
            is_tax: v.is_tax,
            month_start: scope.month_start,
            amount: v.amount,
        })
        .collect();
    let our_totals: BTreeMap<Option<String>, Decimal> =
        total_monthly_amounts(&monthly_rows, &scope.grid_area_owner)
            .into_iter()
            .map(|t| (t.charge_owner, t.amount))
            .collect();
    let contributors = |owner: &Option<String>| -> Vec<String> {
        let mut set = BTreeSet::new();
        for ((o, _, _), v) in &monthly_ours {
            let counted_under = if v.is_tax { &scope.grid_area_owner } else { o };
            if owner.as_ref().is_none_or(|w| w == counted_under) {
                set.extend(v.metering_points.iter().cloned());
            }
        }
        set.into_iter().collect()
    };
    let keys: BTreeSet<&Option<String>> = dh.totals.keys().chain(our_totals.keys()).collect();
    for owner in keys {
        let theirs = dh.totals.get(owner);
        let (d, o) = (
            theirs.and_then(|t| t.amount),
            our_totals.get(owner).copied(),
        );
        if same(d, o) {
            continue;
        }
        let level = if owner.is_some() {
            Level::TotalPerOwner
        } else {
            Level::SupplierTotal
        };
        out.push(Discrepancy {
            charge_owner: owner.clone(),
            datahub: d,
            ours: o,
            difference: difference(d, o),
            metering_points: contributors(owner),
            calculation: theirs.map(|t| t.run.clone()),
            ..base(level, Measure::Amount, scope.month_start, "P1M")
        });
    }

    // Energy per position, at DataHub's resolutions (nothing to compare without RSM-014).
    let resolutions: BTreeSet<String> = dh.energy.keys().map(|k| k.resolution.clone()).collect();
    let energy = our_energy(ours, scope, &resolutions);
    let keys: BTreeSet<&EnergyKey> = dh.energy.keys().chain(energy.keys()).collect();
    for key in keys {
        let theirs = dh.energy.get(key);
        let our = energy.get(key);
        let (d, o) = (theirs.and_then(|t| t.quantity), our.map(|o| o.quantity));
        if same(d, o) {
            continue;
        }
        out.push(Discrepancy {
            metering_point_type: Some(key.metering_point_type.clone()),
            settlement_method: key.settlement_method.clone(),
            datahub: d,
            ours: o,
            difference: difference(d, o),
            metering_points: our
                .map(|o| o.metering_points.iter().cloned().collect())
                .unwrap_or_default(),
            calculation: theirs.map(|t| t.run.clone()),
            ..base(Level::Energy, Measure::Quantity, key.time, &key.resolution)
        });
    }
    out.sort();
    out
}

/// Equal values compare equal whatever their scale (1.50 = 1.5); a zero on one side and
/// nothing on the other are equal too (DataHub writes 0 for a missing amount).
fn same(a: Option<Decimal>, b: Option<Decimal>) -> bool {
    a.unwrap_or_default() == b.unwrap_or_default()
}

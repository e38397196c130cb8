//! DataHub's wholesale results as rows: the three kinds of result RSM-019 is written from
//! (amount per charge, monthly amount per charge, total monthly amount), in Energinet's own
//! vocabulary, and the arithmetic that ties them together.
//!
//! Why here: the RSM-019 document ([`crate::rsm019`]) says *how* a result travels; the
//! reconciliation needs *what* it says, keyed as Energinet keys it (opengeh-wholesale's
//! `amounts_per_charge_v1`, `monthly_amounts_per_charge_v1`, `total_monthly_amounts_v1`).
//! The same rows are what Energinet publishes as test data, so the identities below are
//! checked on Energinet's own numbers (`cim/tests/wholesale_results.rs`), and the simulator
//! writes its RSM-019 from the same functions.
//!
//! Identities (lifecycle NOTES §4.2): a monthly amount per charge is the sum of that charge's
//! amounts over the month (a missing amount counts as nothing); the total per charge owner
//! is the sum of the owner's non-tax monthly amounts, with every tax charge counted under
//! the grid-area owner whoever owns it; the supplier's total is the sum over owners.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDateTime, Utc};
use rust_decimal::Decimal;

use crate::codes::{ChargeKind, MeteringPointType, ProcessType, ProcessVariant, SettlementMethod};
use crate::resolution::Resolution;

/// Why a result row could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("wholesale result column `{column}`: {reason}")]
pub struct RowError {
    /// The column.
    pub column: String,
    /// What is wrong with it.
    pub reason: String,
}

fn row_error(column: &str, reason: impl Into<String>) -> RowError {
    RowError {
        column: column.to_string(),
        reason: reason.into(),
    }
}

/// Which run of DataHub's calculation a result comes from. A later run for the same month
/// replaces an earlier one ([`CalculationType::rank`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub enum CalculationType {
    /// Preliminary aggregation (D03), RSM-014 only.
    Aggregation,
    /// Balance fixing (D04), RSM-014 only.
    BalanceFixing,
    /// Wholesale fixing (D05).
    WholesaleFixing,
    /// First correction settlement (D32 + D01).
    FirstCorrection,
    /// Second correction settlement (D32 + D02).
    SecondCorrection,
    /// Third correction settlement (D32 + D03).
    ThirdCorrection,
}

impl CalculationType {
    /// Energinet's name (`calculation_type` column).
    pub fn parse(value: &str) -> Result<Self, RowError> {
        Ok(match value {
            "aggregation" => Self::Aggregation,
            "balance_fixing" => Self::BalanceFixing,
            "wholesale_fixing" => Self::WholesaleFixing,
            "first_correction_settlement" => Self::FirstCorrection,
            "second_correction_settlement" => Self::SecondCorrection,
            "third_correction_settlement" => Self::ThirdCorrection,
            other => return Err(row_error("calculation_type", format!("unknown `{other}`"))),
        })
    }

    /// From a document's `process.processType` and the series' `settlement_Series.version`.
    pub fn from_document(
        business_reason: &str,
        settlement_version: Option<&str>,
    ) -> Result<Self, RowError> {
        Ok(match (business_reason, settlement_version) {
            ("D03", _) => Self::Aggregation,
            ("D04", _) => Self::BalanceFixing,
            ("D05", _) => Self::WholesaleFixing,
            ("D32", Some("D01")) => Self::FirstCorrection,
            ("D32", Some("D02")) => Self::SecondCorrection,
            ("D32", Some("D03")) => Self::ThirdCorrection,
            (reason, version) => {
                return Err(row_error(
                    "process.processType",
                    format!("{reason} with settlement version {version:?} is no calculation"),
                ));
            }
        })
    }

    /// The document's `process.processType`.
    pub fn business_reason(self) -> ProcessType {
        match self {
            Self::Aggregation => ProcessType::parse("D03"),
            Self::BalanceFixing => ProcessType::parse("D04"),
            Self::WholesaleFixing => ProcessType::parse("D05"),
            _ => ProcessType::parse("D32"),
        }
        .expect("D03, D04, D05 and D32 are in the process type list")
    }

    /// The series' `settlement_Series.version`, for correction runs.
    pub fn settlement_version(self) -> Option<ProcessVariant> {
        match self {
            Self::FirstCorrection => Some(ProcessVariant::FIRST_CORRECTION),
            Self::SecondCorrection => Some(ProcessVariant::SECOND_CORRECTION),
            Self::ThirdCorrection => Some(ProcessVariant::THIRD_CORRECTION),
            _ => None,
        }
    }

    /// Order of precedence: a result of a higher rank supersedes one of a lower rank for the
    /// same key and month; within a rank the higher calculation version wins.
    pub fn rank(self) -> u8 {
        self as u8
    }
}

/// A charge as DataHub identifies it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct ChargeId {
    /// The charge owner's GLN.
    pub owner: String,
    /// The charge code.
    pub code: String,
    /// Subscription, fee or tariff.
    pub kind: ChargeKind,
}

/// Energinet's `charge_type` name.
pub fn parse_charge_kind(value: &str) -> Result<ChargeKind, RowError> {
    match value {
        "subscription" => Ok(ChargeKind::Subscription),
        "fee" => Ok(ChargeKind::Fee),
        "tariff" => Ok(ChargeKind::Tariff),
        other => Err(row_error("charge_type", format!("unknown `{other}`"))),
    }
}

/// Energinet's `metering_point_type` name (the ones wholesale results carry).
pub fn parse_metering_point_type(value: &str) -> Result<MeteringPointType, RowError> {
    Ok(match value {
        "consumption" => MeteringPointType::Consumption,
        "production" => MeteringPointType::Production,
        "exchange" => MeteringPointType::Exchange,
        "ve_production" => MeteringPointType::VeProduction,
        "net_production" => MeteringPointType::NetProduction,
        "supply_to_grid" => MeteringPointType::SupplyToGrid,
        "consumption_from_grid" => MeteringPointType::ConsumptionFromGrid,
        "wholesale_services_information" => MeteringPointType::WholesaleServicesInformation,
        "own_production" => MeteringPointType::OwnProduction,
        "net_from_grid" => MeteringPointType::NetFromGrid,
        "net_to_grid" => MeteringPointType::NetToGrid,
        "total_consumption" => MeteringPointType::TotalConsumption,
        "electrical_heating" => MeteringPointType::ElectricalHeating,
        "net_consumption" => MeteringPointType::NetConsumption,
        "capacity_settlement" => MeteringPointType::CapacitySettlement,
        other => {
            return Err(row_error(
                "metering_point_type",
                format!("unknown `{other}`"),
            ));
        }
    })
}

/// Energinet's `settlement_method` name; empty for metering points without one.
pub fn parse_settlement_method(value: &str) -> Result<Option<SettlementMethod>, RowError> {
    match value {
        "" => Ok(None),
        "flex" => Ok(Some(SettlementMethod::Flex)),
        "non_profiled" => Ok(Some(SettlementMethod::NonProfiled)),
        other => Err(row_error("settlement_method", format!("unknown `{other}`"))),
    }
}

/// A result time: RFC 3339 (`2023-01-31T23:00:00Z`) or Databricks' UTC text
/// (`2023-01-31 23:00:00.000000`).
pub fn parse_time(column: &str, value: &str) -> Result<DateTime<Utc>, RowError> {
    if let Ok(t) = DateTime::parse_from_rfc3339(value) {
        return Ok(t.with_timezone(&Utc));
    }
    NaiveDateTime::parse_from_str(value, "%Y-%m-%d %H:%M:%S%.f")
        .map(|t| t.and_utc())
        .map_err(|e| row_error(column, format!("`{value}` is no time: {e}")))
}

fn parse_decimal(column: &str, value: &str) -> Result<Option<Decimal>, RowError> {
    if value.is_empty() {
        return Ok(None);
    }
    value
        .parse::<Decimal>()
        .map(Some)
        .map_err(|e| row_error(column, format!("`{value}` is no decimal: {e}")))
}

fn parse_bool(column: &str, value: &str) -> Result<bool, RowError> {
    match value.to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        other => Err(row_error(column, format!("`{other}` is no boolean"))),
    }
}

/// A row by column name, as Energinet's CSV files give it (the reader splits the lines; this
/// module only reads fields).
pub type Fields<'a> = BTreeMap<&'a str, &'a str>;

fn field<'a>(fields: &Fields<'a>, column: &str) -> Result<&'a str, RowError> {
    fields
        .get(column)
        .copied()
        .ok_or_else(|| row_error(column, "missing"))
}

/// Which calculation, for which grid area and supplier: common to every result kind.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct ResultScope {
    /// Which run.
    pub calculation: CalculationType,
    /// DataHub's calculation version.
    pub version: u64,
    /// Grid area code.
    pub grid_area: String,
    /// Energy supplier GLN.
    pub energy_supplier: String,
}

impl ResultScope {
    fn from_fields(fields: &Fields<'_>) -> Result<Self, RowError> {
        let version = field(fields, "calculation_version")?;
        Ok(Self {
            // The data products name the run; the internal tables leave it to the calculation.
            calculation: match fields.get("calculation_type") {
                Some(name) => CalculationType::parse(name)?,
                None => CalculationType::WholesaleFixing,
            },
            version: version.parse().map_err(|_| {
                row_error("calculation_version", format!("`{version}` is no version"))
            })?,
            grid_area: field(fields, "grid_area_code")?.to_string(),
            energy_supplier: field(fields, "energy_supplier_id")?.to_string(),
        })
    }
}

/// One point of an amount-per-charge series (`amounts_per_charge_v1`): one hour (PT1H
/// tariffs) or one day (P1D tariffs, subscriptions, fees).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AmountPerCharge {
    /// Calculation, grid area, supplier.
    pub scope: ResultScope,
    /// The charge.
    pub charge: ChargeId,
    /// Whether the charge is a tax (elafgift).
    pub is_tax: bool,
    /// PT1H or P1D.
    pub resolution: Resolution,
    /// The metering point type aggregated.
    pub metering_point_type: MeteringPointType,
    /// The settlement method aggregated; none for production and child types.
    pub settlement_method: Option<SettlementMethod>,
    /// UTC start of the position.
    pub time: DateTime<Utc>,
    /// kWh or pieces (3 decimals).
    pub quantity: Option<Decimal>,
    /// DKK per unit (6 decimals); none where no price exists.
    pub price: Option<Decimal>,
    /// DKK (6 decimals); none where no price exists.
    pub amount: Option<Decimal>,
}

impl AmountPerCharge {
    /// From an `amounts_per_charge` row.
    pub fn from_fields(fields: &Fields<'_>) -> Result<Self, RowError> {
        Ok(Self {
            scope: ResultScope::from_fields(fields)?,
            charge: charge_from_fields(fields)?,
            is_tax: parse_bool("is_tax", field(fields, "is_tax")?)?,
            resolution: Resolution::parse(field(fields, "resolution")?)
                .ok_or_else(|| row_error("resolution", "unknown"))?,
            metering_point_type: parse_metering_point_type(field(fields, "metering_point_type")?)?,
            settlement_method: parse_settlement_method(field(fields, "settlement_method")?)?,
            time: parse_time("time", field(fields, "time")?)?,
            quantity: parse_decimal("quantity", field(fields, "quantity")?)?,
            price: parse_decimal("price", field(fields, "price")?)?,
            amount: parse_decimal("amount", field(fields, "amount")?)?,
        })
    }
}

fn charge_from_fields(fields: &Fields<'_>) -> Result<ChargeId, RowError> {
    Ok(ChargeId {
        owner: field(fields, "charge_owner_id")?.to_string(),
        code: field(fields, "charge_code")?.to_string(),
        kind: parse_charge_kind(field(fields, "charge_type")?)?,
    })
}

/// A charge's amount for the month (`monthly_amounts_per_charge_v1`, RSM-019 at P1M).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MonthlyAmountPerCharge {
    /// Calculation, grid area, supplier.
    pub scope: ResultScope,
    /// The charge.
    pub charge: ChargeId,
    /// Whether the charge is a tax.
    pub is_tax: bool,
    /// UTC start of the month (local midnight of its first day).
    pub month_start: DateTime<Utc>,
    /// DKK; none when every amount of the month was missing.
    pub amount: Option<Decimal>,
}

impl MonthlyAmountPerCharge {
    /// From a `monthly_amounts_per_charge` row.
    pub fn from_fields(fields: &Fields<'_>) -> Result<Self, RowError> {
        Ok(Self {
            scope: ResultScope::from_fields(fields)?,
            charge: charge_from_fields(fields)?,
            is_tax: parse_bool("is_tax", field(fields, "is_tax")?)?,
            month_start: parse_time("time", field(fields, "time")?)?,
            amount: parse_decimal("amount", field(fields, "amount")?)?,
        })
    }
}

/// A total for the month (`total_monthly_amounts_v1`, RSM-019 at P1M without a charge):
/// per charge owner, or the supplier's total when `charge_owner` is none.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct TotalMonthlyAmount {
    /// Calculation, grid area, supplier.
    pub scope: ResultScope,
    /// The owner the total is for; none for the supplier's total over all owners.
    pub charge_owner: Option<String>,
    /// UTC start of the month.
    pub month_start: DateTime<Utc>,
    /// DKK.
    pub amount: Decimal,
}

impl TotalMonthlyAmount {
    /// From a `total_monthly_amounts` row (an empty owner is the supplier's total).
    pub fn from_fields(fields: &Fields<'_>) -> Result<Self, RowError> {
        let owner = field(fields, "charge_owner_id")?;
        Ok(Self {
            scope: ResultScope::from_fields(fields)?,
            charge_owner: (!owner.is_empty()).then(|| owner.to_string()),
            month_start: parse_time("time", field(fields, "time")?)?,
            amount: parse_decimal("amount", field(fields, "amount")?)?
                .ok_or_else(|| row_error("amount", "missing"))?,
        })
    }
}

/// The monthly amounts per charge from the amounts per charge: per scope and charge, the
/// sum of the amounts (a missing amount adds nothing; a charge with no amount at all has
/// none). `month_start` is the start of the month the points belong to.
pub fn monthly_amounts(
    amounts: &[AmountPerCharge],
    month_start: DateTime<Utc>,
) -> Vec<MonthlyAmountPerCharge> {
    let mut sums: BTreeMap<(ResultScope, ChargeId), (bool, Option<Decimal>)> = BTreeMap::new();
    for a in amounts {
        let entry = sums
            .entry((a.scope.clone(), a.charge.clone()))
            .or_insert((a.is_tax, None));
        if let Some(amount) = a.amount {
            entry.1 = Some(entry.1.unwrap_or_default() + amount);
        }
    }
    sums.into_iter()
        .map(
            |((scope, charge), (is_tax, amount))| MonthlyAmountPerCharge {
                scope,
                charge,
                is_tax,
                month_start,
                amount,
            },
        )
        .collect()
}

/// The totals DataHub sends from the monthly amounts: one per scope and charge owner (tax
/// charges counted under `grid_area_owner`), and the supplier's total per scope. Sorted.
pub fn total_monthly_amounts(
    monthly: &[MonthlyAmountPerCharge],
    grid_area_owner: &str,
) -> Vec<TotalMonthlyAmount> {
    let mut totals: BTreeMap<(ResultScope, Option<String>, DateTime<Utc>), Decimal> =
        BTreeMap::new();
    for m in monthly {
        let owner = if m.is_tax {
            grid_area_owner
        } else {
            &m.charge.owner
        };
        let amount = m.amount.unwrap_or_default();
        for who in [Some(owner.to_string()), None] {
            *totals
                .entry((m.scope.clone(), who, m.month_start))
                .or_default() += amount;
        }
    }
    totals
        .into_iter()
        .map(
            |((scope, charge_owner, month_start), amount)| TotalMonthlyAmount {
                scope,
                charge_owner,
                month_start,
                amount,
            },
        )
        .collect()
}

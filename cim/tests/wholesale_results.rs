//! Energinet's own wholesale results, read with `afregning_cim::wholesale`: the amounts per
//! charge sum to the monthly amounts per charge, and the monthly amounts per charge sum, by
//! DataHub's owner rule (tax charges under the grid-area owner), to the per-owner and
//! supplier totals Energinet gives. Files are read from `../shared/` at test time:
//! `lifecycle/examples/rsm019-source-*.csv` (EDI's RSM-019 source rows, grid area 804,
//! February 2023) and the opengeh-wholesale scenario tests' `then/wholesale_results/`.

use std::collections::BTreeSet;
use std::path::PathBuf;

use afregning_cim::wholesale::{
    AmountPerCharge, Fields, MonthlyAmountPerCharge, TotalMonthlyAmount, monthly_amounts,
    parse_time, total_monthly_amounts,
};
use rust_decimal::Decimal;

fn shared(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared")
        .join(path)
}

/// The rows of one of Energinet's CSV files (`;` in the scenario tests, `,` in EDI's), each
/// as owned (column, value) pairs. `extra` adds columns the file leaves to its calculation.
fn rows(path: &str, extra: &[(&str, &str)]) -> Vec<Vec<(String, String)>> {
    let full = shared(path);
    let text = std::fs::read_to_string(&full)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", full.display()));
    let text = text.trim_start_matches('\u{feff}');
    let delimiter = if text.lines().next().unwrap_or("").contains(';') {
        b';'
    } else {
        b','
    };
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .from_reader(text.as_bytes());
    let headers = reader.headers().expect("header").clone();
    reader
        .records()
        .map(|r| {
            let r = r.expect("row");
            let mut row: Vec<(String, String)> = headers
                .iter()
                .zip(r.iter())
                .map(|(h, v)| (h.to_string(), v.to_string()))
                .collect();
            row.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
            row
        })
        .collect()
}

fn parsed<T>(
    path: &str,
    extra: &[(&str, &str)],
    read: impl Fn(&Fields<'_>) -> Result<T, afregning_cim::wholesale::RowError>,
) -> Vec<T> {
    rows(path, extra)
        .iter()
        .map(|row| {
            let fields: Fields<'_> = row.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            read(&fields).unwrap_or_else(|e| panic!("{path}: {e}"))
        })
        .collect()
}

fn dec(s: &str) -> Decimal {
    s.parse().expect("decimal")
}

/// (owner or "" for the supplier's total, amount) per supplier, for comparing sets.
fn by_owner(totals: &[TotalMonthlyAmount]) -> BTreeSet<(String, String, Decimal)> {
    totals
        .iter()
        .map(|t| {
            (
                t.scope.energy_supplier.clone(),
                t.charge_owner.clone().unwrap_or_default(),
                t.amount.normalize(),
            )
        })
        .collect()
}

#[test]
fn edi_grid_area_804_monthly_amounts_sum_to_the_owner_and_supplier_totals() {
    let monthly = parsed(
        "lifecycle/examples/rsm019-source-monthly_amount_per_charge_ga804.csv",
        &[],
        MonthlyAmountPerCharge::from_fields,
    );
    let given = parsed(
        "lifecycle/examples/rsm019-source-total_amount_ga804.csv",
        &[],
        TotalMonthlyAmount::from_fields,
    );
    assert_eq!(monthly.len(), 7);
    assert_eq!(given.len(), 3);
    // The grid company of 804 owns Tariff-804, Sub-804 and Fee-804.
    let computed = total_monthly_amounts(&monthly, "8500000000502");
    assert_eq!(by_owner(&computed), by_owner(&given));
    // Named figures, so a change in the rule shows where it bites: Energinet's own total
    // excludes its tax charge EA-001 (99797.528613), which counts under the grid owner.
    let energinet = computed
        .iter()
        .find(|t| t.charge_owner.as_deref() == Some("5790000432752"))
        .expect("Energinet total");
    assert_eq!(energinet.amount, dec("128533.784163"));
    let supplier = computed
        .iter()
        .find(|t| t.charge_owner.is_none())
        .expect("supplier total");
    assert_eq!(supplier.amount, dec("349419.943412"));
    assert_eq!(
        supplier.month_start,
        parse_time("time", "2023-01-31T23:00:00Z").expect("time")
    );
    assert!(given.iter().all(|t| t.scope.version == 65));
}

const STANDARD: &str = "settlement/data/opengeh-wholesale/scenario_tests/wholesale_calculation/given_minimal_standard_wholesale_scenario/then/wholesale_results";
const MULTIPLE_GA: &str = "settlement/data/opengeh-wholesale/scenario_tests/wholesale_calculation/given_calculation_covers_multiple_ga/then/wholesale_results";
/// The scenario tests' `then` files are one calculation's output and leave its version out.
const ONE_CALCULATION: &[(&str, &str)] = &[("calculation_version", "1")];

fn scenario_amounts(dir: &str) -> Vec<AmountPerCharge> {
    [
        "hourly_tariff_per_co_es.csv",
        "daily_tariff_per_co_es.csv",
        "subscription_per_co_es.csv",
        "fee_per_co_es.csv",
    ]
    .iter()
    .flat_map(|f| {
        parsed(
            &format!("{dir}/{f}"),
            ONE_CALCULATION,
            AmountPerCharge::from_fields,
        )
    })
    .collect()
}

fn scenario_monthly(dir: &str) -> Vec<MonthlyAmountPerCharge> {
    [
        "monthly_tariff_from_hourly_per_co_es.csv",
        "monthly_tariff_from_daily_per_co_es.csv",
        "monthly_subscription_per_co_es.csv",
        "monthly_fee_per_co_es.csv",
    ]
    .iter()
    .flat_map(|f| {
        parsed(
            &format!("{dir}/{f}"),
            ONE_CALCULATION,
            MonthlyAmountPerCharge::from_fields,
        )
    })
    .collect()
}

fn scenario_totals(dir: &str) -> Vec<TotalMonthlyAmount> {
    [
        "total_monthly_amounts_per_co_es.csv",
        "total_monthly_amounts_per_es.csv",
    ]
    .iter()
    .flat_map(|f| {
        parsed(
            &format!("{dir}/{f}"),
            ONE_CALCULATION,
            TotalMonthlyAmount::from_fields,
        )
    })
    .collect()
}

fn normalized(
    monthly: &[MonthlyAmountPerCharge],
) -> BTreeSet<(String, String, String, Option<Decimal>)> {
    monthly
        .iter()
        .map(|m| {
            (
                m.scope.energy_supplier.clone(),
                m.charge.owner.clone(),
                m.charge.code.clone(),
                m.amount.map(|a| a.normalize()),
            )
        })
        .collect()
}

#[test]
fn standard_scenario_amounts_sum_to_monthly_amounts_and_monthly_amounts_to_totals() {
    let month = parse_time("time", "2023-01-31T23:00:00Z").expect("time");
    let amounts = scenario_amounts(STANDARD);
    let monthly = scenario_monthly(STANDARD);
    assert!(amounts.len() > 400, "{} amount rows", amounts.len());
    assert_eq!(
        normalized(&monthly_amounts(&amounts, month)),
        normalized(&monthly)
    );

    // Grid area 800 is owned by 0000000000800; 6660000000666 owns a tax and a non-tax tariff.
    let computed = total_monthly_amounts(&monthly, "0000000000800");
    assert_eq!(by_owner(&computed), by_owner(&scenario_totals(STANDARD)));
    let supplier_2 = computed
        .iter()
        .find(|t| t.scope.energy_supplier == "2000000000000" && t.charge_owner.is_none())
        .expect("supplier 2 total");
    assert_eq!(supplier_2.amount, dec("768.644334"));
}

#[test]
fn multiple_grid_areas_each_total_under_its_own_grid_owner() {
    let monthly = scenario_monthly(MULTIPLE_GA);
    let given = scenario_totals(MULTIPLE_GA);
    for area in ["888", "999"] {
        let in_area: Vec<_> = monthly
            .iter()
            .filter(|m| m.scope.grid_area == area)
            .cloned()
            .collect();
        let computed = total_monthly_amounts(&in_area, &format!("0000000000{area}"));
        let expected: Vec<_> = given
            .iter()
            .filter(|t| t.scope.grid_area == area)
            .cloned()
            .collect();
        assert!(!expected.is_empty());
        assert_eq!(by_owner(&computed), by_owner(&expected), "grid area {area}");
    }
}

#[test]
fn a_row_with_an_unknown_charge_type_is_refused_naming_the_column() {
    let fields: Fields<'_> = [
        ("calculation_type", "wholesale_fixing"),
        ("calculation_version", "3"),
        ("grid_area_code", "804"),
        ("energy_supplier_id", "5790001662233"),
        ("charge_code", "40000"),
        ("charge_type", "levy"),
        ("charge_owner_id", "5790000432752"),
        ("is_tax", "false"),
        ("time", "2023-01-31 23:00:00.000000"),
        ("amount", "1.5"),
    ]
    .into_iter()
    .collect();
    let err = MonthlyAmountPerCharge::from_fields(&fields).expect_err("levy is no charge type");
    assert_eq!(err.column, "charge_type");
}

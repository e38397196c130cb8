//! Comparing computed tables with the expected `then/wholesale_results/*.csv`,
//! the way geh_common's `assert_dataframes_and_schemas` does: rows as a
//! multiset, actual columns not in the expected file ignored, columns whose
//! every value is `[IGNORED]` skipped, decimals compared by value.
//!
//! One deliberate difference: `quantity_qualities` is compared as a set.
//! Spark's `collect_set` gives no defined order, so the order in Energinet's
//! files is an accident of its execution plan, not a rule.

use std::collections::BTreeMap;

use afregning_settlement::QualitySet;
use chrono::{DateTime, SecondsFormat, Utc};
use rust_decimal::Decimal;
use uuid::Uuid;

use crate::scenario::{Row, decimal, timestamp};
use crate::wholesale::{AmountRow, MonthlyRow};

/// Energinet's namespace for `result_id` (uuid5 over concatenated grouping columns and the table name).
const RESULT_ID_NAMESPACE: Uuid = Uuid::from_u128(0x681fd884_0a2e_4dc2_96ea_c61c3683449c);

fn result_id(parts: &[Option<&str>], table: &str) -> String {
    // `concat_ws("", ...)` skips nulls.
    let mut joined: String = parts.iter().flatten().copied().collect();
    joined.push_str(table);
    Uuid::new_v5(&RESULT_ID_NAMESPACE, joined.as_bytes()).to_string()
}

fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn scaled(value: Decimal, scale: u32) -> String {
    let mut v = value;
    v.rescale(scale);
    v.to_string()
}

fn qualities(set: QualitySet) -> String {
    let names: Vec<String> = set.iter().map(|q| format!("'{}'", q.as_str())).collect();
    format!("[{}]", names.join(", "))
}

/// A computed row as column → value (`None` = null), in Energinet's output format.
pub type OutRow = BTreeMap<&'static str, Option<String>>;

/// Renders an amounts-per-charge row.
pub fn amount_row(calculation_id: &str, row: &AmountRow) -> OutRow {
    let charge_type = row.key.charge_type.wholesale_name();
    let id = result_id(
        &[
            Some(calculation_id),
            Some(row.resolution),
            Some(charge_type),
            Some(&row.key.owner),
            Some(&row.key.code),
            Some(&row.grid_area),
            row.energy_supplier.as_deref(),
            Some(row.metering_point_type),
            row.settlement_method,
        ],
        "amounts_per_charge",
    );
    BTreeMap::from([
        ("calculation_id", Some(calculation_id.to_string())),
        ("result_id", Some(id)),
        ("grid_area_code", Some(row.grid_area.clone())),
        ("energy_supplier_id", row.energy_supplier.clone()),
        ("quantity", Some(scaled(row.quantity, 3))),
        ("quantity_unit", Some(row.unit.to_string())),
        ("quantity_qualities", row.qualities.map(qualities)),
        ("time", Some(time(row.time))),
        ("resolution", Some(row.resolution.to_string())),
        (
            "metering_point_type",
            Some(row.metering_point_type.to_string()),
        ),
        (
            "settlement_method",
            row.settlement_method.map(str::to_string),
        ),
        ("price", row.price.map(|p| scaled(p, 6))),
        ("amount", row.amount.map(|a| scaled(a, 6))),
        (
            "is_tax",
            Some(if row.is_tax { "True" } else { "False" }.to_string()),
        ),
        ("charge_code", Some(row.key.code.clone())),
        ("charge_type", Some(charge_type.to_string())),
        ("charge_owner_id", Some(row.key.owner.clone())),
    ])
}

/// Renders a monthly per-charge row or a total row.
pub fn monthly_row(calculation_id: &str, row: &MonthlyRow) -> OutRow {
    let mut out: OutRow = BTreeMap::from([
        ("calculation_id", Some(calculation_id.to_string())),
        ("grid_area_code", Some(row.grid_area.clone())),
        ("energy_supplier_id", row.energy_supplier.clone()),
        ("time", Some(time(row.time))),
        ("amount", row.amount.map(|a| scaled(a, 6))),
        ("charge_owner_id", row.charge_owner.clone()),
    ]);
    match &row.key {
        Some(key) => {
            let charge_type = key.charge_type.wholesale_name();
            out.insert(
                "result_id",
                Some(result_id(
                    &[
                        Some(calculation_id),
                        Some(charge_type),
                        Some(&key.code),
                        Some(&key.owner),
                        Some(&row.grid_area),
                        row.energy_supplier.as_deref(),
                    ],
                    "monthly_amounts_per_charge",
                )),
            );
            out.insert("quantity_unit", row.unit.map(str::to_string));
            out.insert(
                "is_tax",
                row.is_tax
                    .map(|t| if t { "True" } else { "False" }.to_string()),
            );
            out.insert("charge_code", Some(key.code.clone()));
            out.insert("charge_type", Some(charge_type.to_string()));
        }
        None => {
            out.insert(
                "result_id",
                Some(result_id(
                    &[
                        Some(calculation_id),
                        row.charge_owner.as_deref(),
                        Some(&row.grid_area),
                        row.energy_supplier.as_deref(),
                    ],
                    "total_monthly_amounts",
                )),
            );
        }
    }
    out
}

/// How a column's values are compared.
fn normalize(column: &str, value: Option<&str>) -> Option<String> {
    let value = value.filter(|v| !v.is_empty())?;
    Some(match column {
        "quantity" | "price" | "amount" => decimal(value)
            .map(|d| d.normalize().to_string())
            .unwrap_or_else(|_| value.to_string()),
        "time" => timestamp(value)
            .map(time)
            .unwrap_or_else(|_| value.to_string()),
        "is_tax" => value.to_ascii_lowercase(),
        "quantity_qualities" => {
            let mut items: Vec<String> = value
                .trim_matches(|c| c == '[' || c == ']')
                .split(',')
                .map(|s| s.trim().trim_matches(|c| c == '\'' || c == '"').to_string())
                .filter(|s| !s.is_empty())
                .collect();
            items.sort();
            items.dedup();
            format!("{{{}}}", items.join(","))
        }
        _ => value.to_string(),
    })
}

/// The outcome for one expected file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileComparison {
    /// Expected rows.
    pub expected_rows: usize,
    /// Computed rows.
    pub actual_rows: usize,
    /// Columns compared.
    pub columns: Vec<String>,
    /// Expected rows not computed, as `;`-joined values in the file's column order.
    pub missing: Vec<String>,
    /// Computed rows not expected.
    pub unexpected: Vec<String>,
}

impl FileComparison {
    /// Whether the file matched.
    pub fn matches(&self) -> bool {
        self.missing.is_empty() && self.unexpected.is_empty()
    }
}

/// Compares expected rows (with their header) against computed rows.
pub fn compare(
    header: &[String],
    expected: &[Row],
    actual: &[OutRow],
) -> Result<FileComparison, String> {
    let columns: Vec<String> = header
        .iter()
        .filter(|c| !c.starts_with('#'))
        .filter(|c| {
            expected.is_empty()
                || !expected
                    .iter()
                    .all(|r| r.get(*c).map(String::as_str) == Some("[IGNORED]"))
        })
        .cloned()
        .collect();
    if let Some(unknown) = columns
        .iter()
        .find(|c| actual.first().is_some_and(|r| !r.contains_key(c.as_str())))
    {
        return Err(format!("column {unknown} is not computed by afregning"));
    }
    let key = |values: Vec<Option<String>>| {
        values
            .iter()
            .map(|v| v.clone().unwrap_or_default())
            .collect::<Vec<_>>()
            .join(";")
    };
    let mut counts: BTreeMap<Vec<Option<String>>, (usize, usize, String, String)> = BTreeMap::new();
    for row in expected {
        let normalized: Vec<Option<String>> = columns
            .iter()
            .map(|c| normalize(c, row.get(c).map(String::as_str)))
            .collect();
        let display = columns
            .iter()
            .map(|c| row.get(c).cloned().unwrap_or_default())
            .collect::<Vec<_>>()
            .join(";");
        let entry = counts
            .entry(normalized)
            .or_insert((0, 0, String::new(), String::new()));
        entry.0 += 1;
        entry.2 = display;
    }
    for row in actual {
        let normalized: Vec<Option<String>> = columns
            .iter()
            .map(|c| normalize(c, row.get(c.as_str()).cloned().flatten().as_deref()))
            .collect();
        let display = key(columns
            .iter()
            .map(|c| row.get(c.as_str()).cloned().flatten())
            .collect());
        let entry = counts
            .entry(normalized)
            .or_insert((0, 0, String::new(), String::new()));
        entry.1 += 1;
        entry.3 = display;
    }
    let mut missing = Vec::new();
    let mut unexpected = Vec::new();
    for (expected_count, actual_count, expected_display, actual_display) in counts.into_values() {
        for _ in actual_count..expected_count {
            missing.push(expected_display.clone());
        }
        for _ in expected_count..actual_count {
            unexpected.push(actual_display.clone());
        }
    }
    Ok(FileComparison {
        expected_rows: expected.len(),
        actual_rows: actual.len(),
        columns,
        missing,
        unexpected,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn result_id_reproduces_energinets_uuid5() {
        // given_minimal_standard_wholesale_scenario, hourly_tariff_per_co_es.csv, first row.
        let id = result_id(
            &[
                Some("0b15a420-9fc8-409a-a169-fbd49479d718"),
                Some("PT1H"),
                Some("tariff"),
                Some("0000000000800"),
                Some("tariff-hourly-1"),
                Some("800"),
                Some("1000000000000"),
                Some("consumption"),
                Some("flex"),
            ],
            "amounts_per_charge",
        );
        assert_eq!(id, "4f85eaf4-bed5-5d69-985c-cf0a1ee675c7");
    }

    #[test]
    fn qualities_compare_as_sets_and_decimals_by_value() {
        assert_eq!(
            normalize("quantity_qualities", Some("['missing', 'measured']")),
            normalize("quantity_qualities", Some("['measured', 'missing']"))
        );
        assert_eq!(
            normalize("amount", Some("20")),
            normalize("amount", Some("20.000000"))
        );
        assert_ne!(
            normalize("amount", Some("20.000001")),
            normalize("amount", Some("20.000000"))
        );
        assert_eq!(normalize("price", Some("")), None);
    }

    #[test]
    fn a_changed_amount_is_reported_both_ways() {
        let header = vec!["a".to_string(), "amount".to_string()];
        let expected: Vec<Row> = vec![Row::from([
            ("a".into(), "x".into()),
            ("amount".into(), "1.000000".into()),
        ])];
        let actual: Vec<OutRow> = vec![BTreeMap::from([
            ("a", Some("x".into())),
            ("amount", Some("1.000001".into())),
        ])];
        let result = compare(&header, &expected, &actual).expect("compares");
        assert!(!result.matches());
        assert_eq!(result.missing, vec!["x;1.000000"]);
        assert_eq!(result.unexpected, vec!["x;1.000001"]);
    }
}

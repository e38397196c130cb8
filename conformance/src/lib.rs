//! Runs Energinet's wholesale scenario tests against the settlement crate.
//!
//! A scenario folder (opengeh-wholesale's
//! `tests/scenario_tests/wholesale_calculation/<scenario>/`) holds `when/`
//! inputs and `then/wholesale_results/*.csv` expected outputs. The runner
//! rebuilds DataHub's side of the data (metering point periods, padded time
//! series, grid loss), settles every metering point with
//! `afregning_settlement::settle_month` (the code the processors use),
//! aggregates per charge owner, energy supplier, grid area and charge as
//! Energinet does, and diffs each expected file.
//!
//! All I/O (CSV reading, printing) is here; the settlement crate stays pure.

pub mod compare;
pub mod energy;
pub mod metering_points;
pub mod scenario;
pub mod wholesale;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::compare::{FileComparison, OutRow, amount_row, compare, monthly_row};
use crate::scenario::{Scenario, read_csv};

/// The outcome for one expected file.
#[derive(Debug, Clone)]
pub struct FileReport {
    /// File name without extension (`hourly_tariff_per_co_es`).
    pub name: String,
    /// The comparison, or why the file could not be compared.
    pub outcome: Result<FileComparison, String>,
}

impl FileReport {
    /// Whether the file matched exactly.
    pub fn matches(&self) -> bool {
        matches!(&self.outcome, Ok(c) if c.matches())
    }
}

/// The outcome for one scenario folder.
#[derive(Debug, Clone)]
pub struct ScenarioReport {
    /// The folder.
    pub dir: PathBuf,
    /// One report per expected file, in file name order.
    pub files: Vec<FileReport>,
}

impl ScenarioReport {
    /// Whether every expected file matched.
    pub fn matches(&self) -> bool {
        self.files.iter().all(FileReport::matches)
    }
}

/// Scenario folders under `dir`: `dir` itself when it has `when/`, else its
/// immediate subfolders that have `when/` and `then/`, sorted by name.
pub fn find_scenarios(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    if dir.join("when").is_dir() {
        return Ok(vec![dir.to_path_buf()]);
    }
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
        let path = entry?.path();
        if path.join("when").is_dir() && path.join("then").is_dir() {
            found.push(path);
        }
    }
    found.sort();
    if found.is_empty() {
        anyhow::bail!(
            "{} is not a scenario folder (no when/) and contains none",
            dir.display()
        );
    }
    Ok(found)
}

/// Runs one scenario folder and compares every `then/wholesale_results/*.csv`.
pub fn run_scenario(dir: &Path) -> anyhow::Result<ScenarioReport> {
    let scenario = Scenario::load(dir)?;
    let args = &scenario.args;
    if !args.is_wholesale() {
        anyhow::bail!(
            "{}: calculation type {} has no wholesale results",
            dir.display(),
            args.calculation_type
        );
    }
    let when = &scenario.when;
    let periods = metering_points::prepare_periods(args, &when.metering_point_periods)?;
    let grid_loss_ids = metering_points::grid_loss_ids(&when.grid_loss_metering_points)?;
    let grid_loss_periods = metering_points::grid_loss_periods(args, &periods, &grid_loss_ids)?;
    let points = energy::raw_points(args, &when.time_series_points)?;
    let grid_loss =
        energy::grid_loss_series(args, &periods, &grid_loss_periods, &grid_loss_ids, &points);
    let charges = wholesale::read_charges(
        args,
        &when.charge_price_information_periods,
        &when.charge_price_points,
    )?;
    let links = wholesale::read_links(args, &when.charge_link_periods)?;
    let results = wholesale::calculate(
        args,
        &periods,
        &grid_loss_ids,
        &grid_loss,
        &points,
        &charges,
        &links,
    )?;

    let then = dir.join("then").join("wholesale_results");
    let mut expected_files: Vec<PathBuf> = std::fs::read_dir(&then)
        .with_context(|| format!("cannot read {}", then.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "csv"))
        .collect();
    expected_files.sort();
    let mut files = Vec::new();
    for path in expected_files {
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let actual: Option<Vec<OutRow>> = if let Some(rows) = results.amounts.get(name.as_str()) {
            Some(
                rows.iter()
                    .map(|r| amount_row(&args.calculation_id, r))
                    .collect(),
            )
        } else {
            results.monthly.get(name.as_str()).map(|rows| {
                rows.iter()
                    .map(|r| monthly_row(&args.calculation_id, r))
                    .collect()
            })
        };
        let outcome = match actual {
            None => Err("this result is not computed by afregning".to_string()),
            Some(actual) => {
                let (header, expected) = read_csv(&path)?;
                compare(&header, &expected, &actual)
            }
        };
        files.push(FileReport { name, outcome });
    }
    Ok(ScenarioReport {
        dir: dir.to_path_buf(),
        files,
    })
}

/// A human-readable diff of a scenario report.
pub fn render(report: &ScenarioReport) -> String {
    let mut out = String::new();
    let verdict = if report.matches() { "PASS" } else { "FAIL" };
    let _ = writeln!(out, "{verdict} {}", report.dir.display());
    for file in &report.files {
        match &file.outcome {
            Ok(c) if c.matches() => {
                let _ = writeln!(out, "  ok   {}.csv ({} rows)", file.name, c.expected_rows);
            }
            Ok(c) => {
                let _ = writeln!(
                    out,
                    "  DIFF {}.csv: expected {} rows, computed {}; {} missing, {} unexpected",
                    file.name,
                    c.expected_rows,
                    c.actual_rows,
                    c.missing.len(),
                    c.unexpected.len()
                );
                let _ = writeln!(out, "       columns: {}", c.columns.join(";"));
                for row in &c.missing {
                    let _ = writeln!(out, "       - {row}");
                }
                for row in &c.unexpected {
                    let _ = writeln!(out, "       + {row}");
                }
            }
            Err(reason) => {
                let _ = writeln!(out, "  DIFF {}.csv: {reason}", file.name);
            }
        }
    }
    out
}

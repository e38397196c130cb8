//! Reading one scenario folder: `when/calculation_arguments.{json,yml}` and the
//! `when/*.csv` inputs, in the layout of opengeh-wholesale's
//! `tests/scenario_tests/wholesale_calculation/<scenario>/`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow, bail};
use chrono::{DateTime, NaiveDateTime, Utc};
use rust_decimal::Decimal;

/// One CSV row by column name.
pub type Row = HashMap<String, String>;

/// Reads a `;`-separated CSV (with or without a UTF-8 BOM) into rows by column name.
pub fn read_csv(path: &Path) -> anyhow::Result<(Vec<String>, Vec<Row>)> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(b';')
        .flexible(false)
        .from_reader(text.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .with_context(|| format!("header of {}", path.display()))?
        .iter()
        .map(str::to_string)
        .collect();
    let mut rows = Vec::new();
    for (n, record) in reader.records().enumerate() {
        let record = record.with_context(|| format!("{} row {}", path.display(), n + 2))?;
        rows.push(
            header
                .iter()
                .cloned()
                .zip(record.iter().map(str::to_string))
                .collect(),
        );
    }
    Ok((header, rows))
}

/// A column value; a missing column is an error, an empty cell is `None`.
pub fn field<'r>(row: &'r Row, column: &str) -> anyhow::Result<Option<&'r str>> {
    let value = row
        .get(column)
        .ok_or_else(|| anyhow!("column {column} is missing"))?;
    Ok((!value.is_empty()).then_some(value.as_str()))
}

/// A required column value.
pub fn required<'r>(row: &'r Row, column: &str) -> anyhow::Result<&'r str> {
    field(row, column)?.ok_or_else(|| anyhow!("column {column} is empty"))
}

/// A UTC timestamp as in the scenario CSVs (`2023-01-31T23:00:00Z`).
pub fn timestamp(value: &str) -> anyhow::Result<DateTime<Utc>> {
    if let Ok(t) = value.parse::<DateTime<Utc>>() {
        return Ok(t);
    }
    for format in ["%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S"] {
        if let Ok(naive) = NaiveDateTime::parse_from_str(value, format) {
            return Ok(naive.and_utc());
        }
    }
    bail!("not a timestamp: {value}")
}

/// A decimal.
pub fn decimal(value: &str) -> anyhow::Result<Decimal> {
    value
        .parse::<Decimal>()
        .or_else(|_| Decimal::from_scientific(value))
        .map_err(|_| anyhow!("not a decimal: {value}"))
}

/// The calculation arguments of a scenario.
#[derive(Debug, Clone)]
pub struct CalculationArgs {
    /// `calculation-id`.
    pub calculation_id: String,
    /// `grid-areas`.
    pub grid_areas: Vec<String>,
    /// `period-start-datetime` (UTC).
    pub period_start: DateTime<Utc>,
    /// `period-end-datetime` (UTC).
    pub period_end: DateTime<Utc>,
    /// `calculation-type`.
    pub calculation_type: String,
    /// `quarterly-resolution-transition-datetime`; opengeh's scenario default is 2023-01-31T23:00Z.
    pub quarterly_resolution_transition: DateTime<Utc>,
}

/// The scenario tests' default quarterly resolution transition (`DEFAULT_QUARTERLY_RESOLUTION` in conftest.py).
pub const DEFAULT_QUARTERLY_RESOLUTION_TRANSITION: &str = "2023-01-31T23:00:00Z";

impl CalculationArgs {
    /// Reads `when/calculation_arguments.json` (the form in `../shared/`) or
    /// `when/calculation_arguments.yml` (Energinet's own form).
    pub fn load(when: &Path) -> anyhow::Result<Self> {
        let json = when.join("calculation_arguments.json");
        let yml = when.join("calculation_arguments.yml");
        let map = if json.exists() {
            let value: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(&json)?)
                    .with_context(|| format!("cannot parse {}", json.display()))?;
            let args = value
                .get("args")
                .and_then(|a| a.get(0))
                .or_else(|| value.get(0))
                .unwrap_or(&value);
            let object = args
                .as_object()
                .ok_or_else(|| anyhow!("{}: arguments are not an object", json.display()))?;
            object
                .iter()
                .map(|(k, v)| {
                    let value = match v {
                        serde_json::Value::Array(items) => {
                            ArgValue::List(items.iter().map(json_scalar).collect())
                        }
                        other => ArgValue::Scalar(json_scalar(other)),
                    };
                    (k.clone(), value)
                })
                .collect()
        } else if yml.exists() {
            parse_flat_yaml(&std::fs::read_to_string(&yml)?)
                .with_context(|| format!("cannot parse {}", yml.display()))?
        } else {
            bail!(
                "{} has neither calculation_arguments.json nor calculation_arguments.yml",
                when.display()
            );
        };
        Self::from_map(&map)
    }

    fn from_map(map: &HashMap<String, ArgValue>) -> anyhow::Result<Self> {
        let scalar = |key: &str| -> anyhow::Result<String> {
            match map.get(key) {
                Some(ArgValue::Scalar(s)) => Ok(s.clone()),
                Some(ArgValue::List(_)) => bail!("argument {key} is a list"),
                None => bail!("argument {key} is missing"),
            }
        };
        let grid_areas = match map.get("grid-areas") {
            Some(ArgValue::List(items)) => items.clone(),
            Some(ArgValue::Scalar(s)) => vec![s.clone()],
            None => bail!("argument grid-areas is missing"),
        };
        if let Some(ArgValue::Scalar(tz)) = map.get("time_zone")
            && tz != "Europe/Copenhagen"
        {
            bail!("time zone {tz} is not supported; settlement is defined in Europe/Copenhagen");
        }
        let transition = match map.get("quarterly-resolution-transition-datetime") {
            Some(ArgValue::Scalar(s)) => timestamp(s)?,
            _ => timestamp(DEFAULT_QUARTERLY_RESOLUTION_TRANSITION)?,
        };
        Ok(Self {
            calculation_id: scalar("calculation-id")?,
            grid_areas,
            period_start: timestamp(&scalar("period-start-datetime")?)?,
            period_end: timestamp(&scalar("period-end-datetime")?)?,
            calculation_type: scalar("calculation-type")?,
            quarterly_resolution_transition: transition,
        })
    }

    /// Whether this is a wholesale calculation (the only kind with wholesale results).
    pub fn is_wholesale(&self) -> bool {
        matches!(
            self.calculation_type.as_str(),
            "wholesale_fixing"
                | "first_correction_settlement"
                | "second_correction_settlement"
                | "third_correction_settlement"
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum ArgValue {
    Scalar(String),
    List(Vec<String>),
}

fn json_scalar(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn unquote(s: &str) -> String {
    let s = s.trim();
    s.strip_prefix('"')
        .and_then(|r| r.strip_suffix('"'))
        .or_else(|| s.strip_prefix('\'').and_then(|r| r.strip_suffix('\'')))
        .unwrap_or(s)
        .to_string()
}

/// Parses the one-mapping YAML list of Energinet's `calculation_arguments.yml`:
/// `key: value`, `key: ["a", "b"]` or a `key:` followed by `- item` lines.
/// Anything richer is rejected rather than misread.
fn parse_flat_yaml(text: &str) -> anyhow::Result<HashMap<String, ArgValue>> {
    let mut map = HashMap::new();
    let mut open_list: Option<String> = None;
    for raw in text.lines() {
        let line = raw.split(" #").next().unwrap_or(raw).trim_end();
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let indent = line.len() - trimmed.len();
        let body = if indent == 0 {
            trimmed.strip_prefix("- ").unwrap_or(trimmed)
        } else {
            trimmed
        };
        if indent > 0
            && let Some(item) = body.strip_prefix("- ")
        {
            let key = open_list
                .clone()
                .ok_or_else(|| anyhow!("list item without a key: {raw}"))?;
            if let Some(ArgValue::List(items)) = map.get_mut(&key) {
                items.push(unquote(item));
            }
            continue;
        }
        let (key, value) = body
            .split_once(':')
            .ok_or_else(|| anyhow!("not a key: value line: {raw}"))?;
        let key = key.trim().to_string();
        let value = value.trim();
        if value.is_empty() {
            map.insert(key.clone(), ArgValue::List(Vec::new()));
            open_list = Some(key);
        } else if let Some(inner) = value.strip_prefix('[').and_then(|v| v.strip_suffix(']')) {
            map.insert(
                key,
                ArgValue::List(
                    inner
                        .split(',')
                        .map(unquote)
                        .filter(|s| !s.is_empty())
                        .collect(),
                ),
            );
            open_list = None;
        } else {
            map.insert(key, ArgValue::Scalar(unquote(value)));
            open_list = None;
        }
    }
    Ok(map)
}

/// The `when/` inputs of a scenario.
#[derive(Debug, Clone)]
pub struct WhenInputs {
    /// `metering_point_periods.csv`.
    pub metering_point_periods: Vec<Row>,
    /// `time_series_points.csv`.
    pub time_series_points: Vec<Row>,
    /// `grid_loss_metering_points.csv`.
    pub grid_loss_metering_points: Vec<Row>,
    /// `charge_link_periods.csv`.
    pub charge_link_periods: Vec<Row>,
    /// `charge_price_information_periods.csv`.
    pub charge_price_information_periods: Vec<Row>,
    /// `charge_price_points.csv`.
    pub charge_price_points: Vec<Row>,
}

/// A scenario folder.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// The folder.
    pub dir: PathBuf,
    /// Its arguments.
    pub args: CalculationArgs,
    /// Its inputs.
    pub when: WhenInputs,
}

impl Scenario {
    /// Loads a scenario folder.
    pub fn load(dir: &Path) -> anyhow::Result<Self> {
        let when = dir.join("when");
        let args = CalculationArgs::load(&when)?;
        let read = |name: &str| -> anyhow::Result<Vec<Row>> { Ok(read_csv(&when.join(name))?.1) };
        Ok(Self {
            dir: dir.to_path_buf(),
            args,
            when: WhenInputs {
                metering_point_periods: read("metering_point_periods.csv")?,
                time_series_points: read("time_series_points.csv")?,
                grid_loss_metering_points: read("grid_loss_metering_points.csv")?,
                charge_link_periods: read("charge_link_periods.csv")?,
                charge_price_information_periods: read("charge_price_information_periods.csv")?,
                charge_price_points: read("charge_price_points.csv")?,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_yaml_arguments_parse_like_energinets_files() {
        let text = "- grid-areas: [\"800\", \"801\"]\n  calculation-id: \"abc\"\n  period-start-datetime: \"2023-01-31 23:00:00\"\n";
        let map = parse_flat_yaml(text).expect("parses");
        assert_eq!(
            map["grid-areas"],
            ArgValue::List(vec!["800".into(), "801".into()])
        );
        assert_eq!(map["calculation-id"], ArgValue::Scalar("abc".into()));
        let block = "- grid-areas:\n    - \"800\"\n  calculation-id: x\n";
        let map = parse_flat_yaml(block).expect("parses");
        assert_eq!(map["grid-areas"], ArgValue::List(vec!["800".into()]));
    }

    #[test]
    fn timestamps_in_both_forms() {
        assert_eq!(
            timestamp("2023-01-31 23:00:00").expect("t"),
            timestamp("2023-01-31T23:00:00Z").expect("t")
        );
        assert!(timestamp("yesterday").is_err());
    }
}

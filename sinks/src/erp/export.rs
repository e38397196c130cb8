//! File export per billing run, for ERPs that take files instead of a topic:
//! `afregning sink export erp --dir DIR [--month YYYY-MM]`.
//!
//! A billing run takes every delivered statement and credit note not yet in
//! an earlier run (optionally of one month), writes them as JSON (the
//! documents as published) and CSV (one row per line), and marks them with
//! the run's id, in one transaction that commits only after both files are
//! complete on disk. So each document is in exactly one run; a correction
//! delivered later goes into a later run as a credit note and a new statement.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use afregning_topology::records::SettlementStatement;
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use sqlx::{Connection, PgConnection};

/// What a billing run exported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExportReport {
    /// The run's id (`erp_export_run.run_id`); `None` when there was nothing to export.
    pub run_id: Option<i64>,
    /// Statements and credit notes exported.
    pub documents: usize,
    /// Lines in the CSV.
    pub lines: usize,
    /// The JSON file.
    pub json_file: Option<PathBuf>,
    /// The CSV file.
    pub csv_file: Option<PathBuf>,
}

/// Why an export failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The database.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// Writing a file.
    #[error("writing {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// A stored document that is not a statement.
    #[error("erp_delivery holds an unreadable document: {0}")]
    Document(#[from] serde_json::Error),
}

#[derive(Serialize)]
struct JsonRun<'a> {
    run_id: i64,
    month: Option<NaiveDate>,
    created_at: DateTime<Utc>,
    documents: &'a [serde_json::Value],
}

/// The columns of a billing run's CSV.
pub const CSV_HEADER: &[&str] = &[
    "run_id",
    "statement_id",
    "kind",
    "corrects_statement_id",
    "gsrn",
    "month_start",
    "grid_area",
    "version",
    "issued_at",
    "currency",
    "idempotency_key",
    "line_no",
    "component",
    "description",
    "charge_owner_gln",
    "charge_type",
    "charge_code",
    "quantity",
    "quantity_unit",
    "unit_price",
    "amount",
    "vat_class",
    "total_excl_vat",
    "vat_amount",
    "total_incl_vat",
];

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), ExportError> {
    let io = |source| ExportError::Io {
        path: path.to_path_buf(),
        source,
    };
    let partial = path.with_extension("partial");
    let mut file = std::fs::File::create(&partial).map_err(io)?;
    file.write_all(bytes).map_err(io)?;
    file.sync_all().map_err(io)?;
    std::fs::rename(&partial, path).map_err(io)
}

/// The CSV of a billing run (one row per line, [`CSV_HEADER`] first) and its
/// line count; public so that the API renders a run exactly as the files have it.
pub fn csv_bytes(
    run_id: i64,
    statements: &[SettlementStatement],
) -> Result<(Vec<u8>, usize), ExportError> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    let csv_error = |e: csv::Error| ExportError::Io {
        path: PathBuf::from("<csv>"),
        source: std::io::Error::other(e.to_string()),
    };
    writer.write_record(CSV_HEADER).map_err(csv_error)?;
    let mut lines = 0;
    for s in statements {
        for (index, line) in s.lines.iter().enumerate() {
            writer
                .write_record([
                    run_id.to_string(),
                    s.statement_id.clone(),
                    s.kind.code().to_string(),
                    s.corrects_statement_id.clone().unwrap_or_default(),
                    s.gsrn.clone(),
                    s.month_start.to_string(),
                    s.grid_area.clone(),
                    s.version.to_string(),
                    s.issued_at.to_rfc3339(),
                    s.currency.clone(),
                    s.idempotency_key.clone(),
                    (index + 1).to_string(),
                    line.component.code().to_string(),
                    line.description.clone(),
                    line.charge_owner_gln.clone().unwrap_or_default(),
                    line.charge_type
                        .map(|t| t.code().to_string())
                        .unwrap_or_default(),
                    line.charge_code.clone().unwrap_or_default(),
                    line.quantity.to_string(),
                    line.quantity_unit.clone(),
                    line.unit_price.to_string(),
                    line.amount.to_string(),
                    line.vat_class.code().to_string(),
                    s.total_excl_vat.to_string(),
                    s.vat_amount.to_string(),
                    s.total_incl_vat.to_string(),
                ])
                .map_err(csv_error)?;
            lines += 1;
        }
    }
    let bytes = writer.into_inner().map_err(|e| ExportError::Io {
        path: PathBuf::from("<csv>"),
        source: std::io::Error::other(e.to_string()),
    })?;
    Ok((bytes, lines))
}

/// Runs one billing run into `dir`.
pub async fn export_billing_run(
    conn: &mut PgConnection,
    dir: &Path,
    month: Option<NaiveDate>,
) -> Result<ExportReport, ExportError> {
    std::fs::create_dir_all(dir).map_err(|source| ExportError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut tx = conn.begin().await?;
    let rows: Vec<(String, serde_json::Value)> = sqlx::query_as(
        "SELECT statement_id, document FROM erp_delivery
         WHERE export_run_id IS NULL AND ($1::date IS NULL OR month_start = $1)
         ORDER BY month_start, gsrn, version, kind, statement_id
         FOR UPDATE",
    )
    .bind(month)
    .fetch_all(&mut *tx)
    .await?;
    if rows.is_empty() {
        return Ok(ExportReport {
            run_id: None,
            documents: 0,
            lines: 0,
            json_file: None,
            csv_file: None,
        });
    }
    let run_id: i64 =
        sqlx::query_scalar("SELECT nextval(pg_get_serial_sequence('erp_export_run', 'run_id'))")
            .fetch_one(&mut *tx)
            .await?;
    let label = month.map_or_else(|| "all".to_string(), |m| m.format("%Y-%m").to_string());
    let stem = format!("erp-billing-run-{run_id:06}-{label}");
    let json_file = dir.join(format!("{stem}.json"));
    let csv_file = dir.join(format!("{stem}.csv"));
    let documents: Vec<serde_json::Value> = rows.iter().map(|(_, d)| d.clone()).collect();
    let statements: Vec<SettlementStatement> = documents
        .iter()
        .map(|d| serde_json::from_value(d.clone()))
        .collect::<Result<_, _>>()?;
    let json = serde_json::to_vec_pretty(&JsonRun {
        run_id,
        month,
        created_at: Utc::now(),
        documents: &documents,
    })?;
    let (csv, lines) = csv_bytes(run_id, &statements)?;
    write_file(&json_file, &json)?;
    write_file(&csv_file, &csv)?;
    let ids: Vec<String> = rows.into_iter().map(|(id, _)| id).collect();
    let committed: Result<(), sqlx::Error> = async {
        sqlx::query(
            "INSERT INTO erp_export_run (run_id, month_start, statements, csv_file, json_file)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(run_id)
        .bind(month)
        .bind(ids.len() as i32)
        .bind(csv_file.display().to_string())
        .bind(json_file.display().to_string())
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE erp_delivery SET export_run_id = $1 WHERE statement_id = ANY($2)")
            .bind(run_id)
            .bind(&ids)
            .execute(&mut *tx)
            .await?;
        tx.commit().await
    }
    .await;
    if let Err(error) = committed {
        // The run does not exist: its files must not either.
        let _ = std::fs::remove_file(&json_file);
        let _ = std::fs::remove_file(&csv_file);
        return Err(error.into());
    }
    Ok(ExportReport {
        run_id: Some(run_id),
        documents: ids.len(),
        lines,
        json_file: Some(json_file),
        csv_file: Some(csv_file),
    })
}

#[cfg(test)]
mod tests {
    use afregning_topology::records::examples;

    use super::*;

    #[test]
    fn the_csv_has_a_header_and_one_row_per_line() {
        let statement = examples::settlement_statement();
        let (bytes, lines) = csv_bytes(7, std::slice::from_ref(&statement)).unwrap();
        let text = String::from_utf8(bytes).unwrap();
        let rows: Vec<&str> = text.lines().collect();
        assert_eq!(lines, 3);
        assert_eq!(rows.len(), 4);
        assert!(rows[0].starts_with("run_id,statement_id,kind,"));
        assert!(rows[1].starts_with(&format!("7,{},CREDIT_NOTE,", statement.statement_id)));
        assert!(rows[1].contains(",SPOT_ENERGY,"));
        assert!(rows[1].contains(",-203.085000,"), "{}", rows[1]);
    }
}

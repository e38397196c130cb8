//! Billing runs for the ERP: the statements and credit notes a run exported,
//! as JSON (the documents as published on the ERP topic) or CSV (one row per
//! line, the same columns as the run's file). A run is made by
//! `afregning sink export erp` (docs/sinks.md), which marks each document
//! with exactly one run; the API only reads runs, so exporting twice over
//! HTTP gives the same bytes and never moves a document between runs.

use afregning_topology::records::SettlementStatement;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::{ApiError, AppState, limits};

/// One billing run.
#[derive(Debug, Serialize, sqlx::FromRow, ToSchema)]
pub struct BillingRun {
    /// The run's id.
    pub run_id: i64,
    /// The month it was limited to, if any.
    pub month_start: Option<NaiveDate>,
    /// When it ran.
    pub created_at: DateTime<Utc>,
    /// Statements and credit notes in it.
    pub statements: i32,
}

/// Query of `GET /v1/billing-runs`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RunsQuery {
    /// Page size (default 100, at most 1000), newest first.
    pub page_size: Option<i64>,
}

/// `GET /v1/billing-runs`: the runs, newest first.
#[utoipa::path(get, path = "/v1/billing-runs", tag = "settlement", params(RunsQuery),
    responses((status = 200, body = Vec<BillingRun>), (status = 422, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    Query(query): Query<RunsQuery>,
) -> Result<Json<Vec<BillingRun>>, ApiError> {
    let size = limits::page_size(query.page_size)?;
    Ok(Json(
        sqlx::query_as(
            "SELECT run_id, month_start, created_at, statements FROM erp_export_run \
             ORDER BY run_id DESC LIMIT $1",
        )
        .bind(size)
        .fetch_all(&state.pool)
        .await?,
    ))
}

/// The format of an export.
#[derive(Debug, Clone, Copy, Default, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// The documents as published (default).
    #[default]
    Json,
    /// One row per line.
    Csv,
}

/// Query of `GET /v1/billing-runs/{run_id}`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportQuery {
    /// `json` (default) or `csv`.
    pub format: Option<Format>,
}

/// `GET /v1/billing-runs/{run_id}`: one run's documents as JSON or CSV.
#[utoipa::path(get, path = "/v1/billing-runs/{run_id}", tag = "settlement",
    params(("run_id" = i64, Path, description = "the run's id"), ExportQuery),
    responses((status = 200, description = "JSON documents or CSV lines"),
        (status = 400, body = crate::error::Problem), (status = 404, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn export(
    State(state): State<AppState>,
    Path(run_id): Path<String>,
    Query(query): Query<ExportQuery>,
) -> Result<Response, ApiError> {
    let run_id: i64 = run_id
        .parse()
        .map_err(|_| ApiError::BadRequest(format!("`{run_id}` is not a run id")))?;
    let run: Option<BillingRun> = sqlx::query_as(
        "SELECT run_id, month_start, created_at, statements FROM erp_export_run WHERE run_id = $1",
    )
    .bind(run_id)
    .fetch_optional(&state.pool)
    .await?;
    let Some(run) = run else {
        return Err(ApiError::NotFound(format!("no billing run {run_id}")));
    };
    let documents: Vec<serde_json::Value> = sqlx::query_scalar(
        "SELECT document FROM erp_delivery WHERE export_run_id = $1 \
         ORDER BY month_start, gsrn, version, kind, statement_id",
    )
    .bind(run_id)
    .fetch_all(&state.pool)
    .await?;
    match query.format.unwrap_or_default() {
        Format::Json => Ok(Json(serde_json::json!({
            "run_id": run.run_id,
            "month": run.month_start,
            "created_at": run.created_at,
            "documents": documents,
        }))
        .into_response()),
        Format::Csv => {
            let statements: Vec<SettlementStatement> = documents
                .into_iter()
                .map(serde_json::from_value)
                .collect::<Result<_, _>>()
                .map_err(|e| {
                    ApiError::Unavailable(format!("erp_delivery holds an unreadable document: {e}"))
                })?;
            let (csv, _) = afregning_sinks::erp::export::csv_bytes(run_id, &statements)
                .map_err(|e| ApiError::Unavailable(e.to_string()))?;
            Ok((
                [
                    (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
                    (
                        header::CONTENT_DISPOSITION,
                        format!("attachment; filename=\"billing-run-{run_id:06}.csv\""),
                    ),
                ],
                csv,
            )
                .into_response())
        }
    }
}

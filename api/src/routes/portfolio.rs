//! A metering point's portfolio as the read model holds it (`afregning portfolio project`,
//! docs/portfolio.md): our supply periods (rolled-back ones marked), its business processes
//! (status, DataHub's reasons of a rejection) and their timeline, so customer service sees
//! when and why we supply it and where a request stands. No personal data:
//! customers are our customer numbers.

use axum::Json;
use axum::extract::{Path, State};
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::parse_gsrn;
use crate::{ApiError, AppState};

/// One of our supply periods, in Danish calendar days.
#[derive(Debug, Serialize, ToSchema)]
pub struct SupplyPeriod {
    /// First day supplied.
    pub valid_from: NaiveDate,
    /// First day no longer supplied; absent while open.
    pub valid_to: Option<NaiveDate>,
    /// Our customer number.
    pub customer_key: Option<String>,
    /// The process that started it.
    pub started_by: String,
    /// The correcting process (BRS-003/011), when the period was rolled back and credited.
    pub retired_by: Option<String>,
}

/// One event in the timeline of the metering point's processes.
#[derive(Debug, Serialize, ToSchema)]
pub struct TimelineEntry {
    /// The event's sequence number on the metering point.
    pub sequence: i64,
    /// The process it belongs to, if any.
    pub process_id: Option<String>,
    /// What changed: `request_sent`, `accepted`, `rejected`, `cancelled`, `notified`,
    /// `took_effect`, `master_data_received`, ...
    pub change: String,
    /// When it was recorded.
    pub recorded_at: DateTime<Utc>,
    /// Who: an operator, `afregning`, or DataHub's GLN.
    pub actor: String,
    /// Why, in words.
    pub why: String,
    /// The process's status after it.
    pub status_after: Option<String>,
}

/// One business process on the metering point and where it stands.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProcessState {
    /// Our process id (DataHub's for one it told us of).
    pub process_id: String,
    /// `move_in`, `change_of_supplier`, `end_of_supply`, `move_out`, ...
    pub kind: String,
    /// Its official BRS number, where it has one.
    pub brs: Option<String>,
    /// The requested effective day.
    pub effective: NaiveDate,
    /// The day it took effect, once it did.
    pub took_effect_on: Option<NaiveDate>,
    /// `sent`, `accepted`, `rejected`, `cancelled`, `effective`, `completed`.
    pub status: String,
    /// DataHub's reasons of a rejection (`code`, `text`), verbatim, or a cancellation's.
    #[schema(value_type = Object)]
    pub reasons: serde_json::Value,
    /// Our customer number.
    pub customer_key: Option<String>,
    /// The process a correction (BRS-003/011) undoes.
    pub corrects: Option<String>,
    /// DataHub's process reference.
    pub datahub_ref: Option<String>,
    /// Whether we asked for it (or DataHub told us of it).
    pub requested_by_us: bool,
}

/// The answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Portfolio {
    /// The metering point.
    pub gsrn: String,
    /// Our supply periods, oldest first.
    pub periods: Vec<SupplyPeriod>,
    /// Its processes, by effective day: status and, when rejected, DataHub's reasons.
    pub processes: Vec<ProcessState>,
    /// Its processes' events, oldest first.
    pub timeline: Vec<TimelineEntry>,
}

/// `GET /v1/metering-points/{gsrn}/portfolio`.
#[utoipa::path(get, path = "/v1/metering-points/{gsrn}/portfolio", tag = "portfolio",
    params(("gsrn" = String, Path, description = "18-digit GSRN")),
    responses((status = 200, body = Portfolio), (status = 400, body = crate::error::Problem),
        (status = 404, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn get_portfolio(
    State(state): State<AppState>,
    Path(gsrn): Path<String>,
) -> Result<Json<Portfolio>, ApiError> {
    let gsrn = parse_gsrn(&gsrn)?;
    let periods = afregning_portfolio::read_model::periods(&state.pool, &gsrn).await?;
    let history = afregning_portfolio::read_model::history(&state.pool, &gsrn).await?;
    let processes = afregning_portfolio::read_model::processes(&state.pool, &gsrn).await?;
    if periods.is_empty() && history.is_empty() {
        return Err(ApiError::NotFound(format!(
            "the portfolio has nothing for metering point {gsrn}"
        )));
    }
    Ok(Json(Portfolio {
        gsrn,
        periods: periods
            .into_iter()
            .map(|p| SupplyPeriod {
                valid_from: p.valid_from,
                valid_to: p.valid_to,
                customer_key: p.customer_key,
                started_by: p.started_by,
                retired_by: p.retired_by,
            })
            .collect(),
        processes: processes
            .into_iter()
            .map(|p| ProcessState {
                process_id: p.process_id,
                kind: p.kind,
                brs: p.brs,
                effective: p.effective,
                took_effect_on: p.took_effect_on,
                status: p.status,
                reasons: p.reasons,
                customer_key: p.customer_key,
                corrects: p.corrects,
                datahub_ref: p.datahub_ref,
                requested_by_us: p.requested_by_us,
            })
            .collect(),
        timeline: history
            .into_iter()
            .map(|h| TimelineEntry {
                sequence: h.sequence,
                process_id: h.process_id,
                change: h.change,
                recorded_at: h.recorded_at,
                actor: h.actor,
                why: h.why,
                status_after: h.status_after,
            })
            .collect(),
    }))
}

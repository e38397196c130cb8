//! Our requests to DataHub's business processes from the API, as `afregning portfolio
//! request|cancel` makes them (docs/portfolio.md): the command goes on the portfolio's
//! commands topic; the portfolio processor decides it by the rules, publishes the event and
//! sends the CIM request through the connector. The answer is 202: the outcome (an event in
//! the metering point's timeline, or a dead letter with the rule's code) comes later.
//!
//! The customer's CPR or CVR and name arrive in the body and are sealed at once under the
//! customer's own key (decision 0148); they are in no log line, no audit row and no error
//! message (a body that does not parse is answered without quoting it).

use afregning_portfolio::personal::{Cpr, CustomerIdentity, Cvr, PersonName, PersonalData};
use afregning_portfolio::{
    Command, CommandMeta, CommandRecord, CustomerKey, CustomerRef, Gln, ProcessDetails, ProcessId,
    ProcessKind,
};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::parse_gsrn;
use crate::audit::{self, Change, RequestId};
use crate::auth::Caller;
use crate::{ApiError, AppState};

/// The customer's identity and name, in plaintext on the wire only (TLS in production).
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct CustomerIn {
    /// CPR number, 10 digits (a person).
    pub cpr: Option<String>,
    /// CVR number, 8 digits (a company).
    pub cvr: Option<String>,
    /// Name as DataHub should know it.
    pub name: Option<String>,
}

/// Body of `POST /v1/metering-points/{gsrn}/portfolio/requests`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ProcessRequest {
    /// Which process: `move_in`, `change_of_supplier`, `end_of_supply`, `move_out`,
    /// `incorrect_change_of_supplier`, `incorrect_move`, `customer_master_data`.
    pub kind: String,
    /// The day it takes effect (Danish calendar day).
    pub effective: NaiveDate,
    /// Our customer number (move-in, change of supplier, customer master data).
    pub customer_key: Option<String>,
    /// The customer's CPR/CVR and name (with `customer_key`).
    pub customer: Option<CustomerIn>,
    /// The process a correction (BRS-003/011) undoes.
    pub corrects: Option<String>,
    /// Our process id (also the request's transaction id at DataHub); a fresh UUID if absent.
    pub process_id: Option<String>,
    /// Why (required; the audit row's reason and the event's `why`).
    pub reason: Option<String>,
}

/// Body of `POST /v1/metering-points/{gsrn}/portfolio/processes/{process_id}/cancel`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CancelRequest {
    /// Why (required).
    pub reason: Option<String>,
}

/// The answer: the command is on the commands topic; follow the process in the timeline.
#[derive(Debug, Serialize, ToSchema)]
pub struct Submitted {
    /// The process.
    pub process_id: String,
    /// Where its outcome appears.
    pub timeline: String,
    /// The audit row.
    pub audit_id: i64,
}

/// Process kinds by the names the API and the read model use.
fn kind_named(name: &str) -> Result<ProcessKind, ApiError> {
    let kind = ProcessKind::ALL
        .into_iter()
        .find(|k| k.as_str() == name)
        .ok_or_else(|| ApiError::Unprocessable(format!("`{name}` is not a process kind")))?;
    if kind == ProcessKind::ForcedChangeOfSupplier {
        return Err(ApiError::Unprocessable(
            "a forced change of supplier (BRS-044) is DataHub's, never requested by a supplier"
                .into(),
        ));
    }
    Ok(kind)
}

/// The personal data in `customer`; the errors never repeat what was sent.
fn personal_data(customer: &CustomerIn) -> Result<PersonalData, ApiError> {
    let identity = match (&customer.cpr, &customer.cvr) {
        (Some(cpr), None) => CustomerIdentity::Cpr(Cpr::parse(cpr.trim()).ok_or_else(|| {
            ApiError::Unprocessable("customer.cpr is not a CPR number (10 digits)".into())
        })?),
        (None, Some(cvr)) => CustomerIdentity::Cvr(Cvr::parse(cvr.trim()).ok_or_else(|| {
            ApiError::Unprocessable("customer.cvr is not a CVR number (8 digits)".into())
        })?),
        _ => {
            return Err(ApiError::Unprocessable(
                "customer needs exactly one of cpr and cvr".into(),
            ));
        }
    };
    Ok(PersonalData {
        identity,
        name: customer.name.as_deref().and_then(PersonName::new),
    })
}

/// A JSON body parsed without echoing it: serde's messages can quote a value, and a value here
/// may be a CPR number.
pub(crate) fn parse_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        ApiError::BadRequest(format!(
            "the body is not a valid request ({:?} error at line {}, column {}; see /openapi.json)",
            e.classify(),
            e.line(),
            e.column()
        ))
    })
}

fn supplier(state: &AppState) -> Result<Gln, ApiError> {
    let text = state.supplier_gln.as_deref().ok_or_else(|| {
        ApiError::Unavailable("the API has no supplier GLN (AFREGNING_SUPPLIER_GLN)".into())
    })?;
    Gln::parse(text)
        .ok_or_else(|| ApiError::Unavailable(format!("the supplier GLN {text:?} is not 13 digits")))
}

/// `POST /v1/metering-points/{gsrn}/portfolio/requests`: asks the portfolio for a move-in,
/// change of supplier, end of supply, move-out, correction or customer-data update.
#[utoipa::path(post, path = "/v1/metering-points/{gsrn}/portfolio/requests", tag = "portfolio",
    params(("gsrn" = String, Path, description = "18-digit GSRN")),
    request_body = ProcessRequest,
    responses((status = 202, body = Submitted), (status = 400, body = crate::error::Problem),
        (status = 422, body = crate::error::Problem), (status = 503, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn request(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Extension(request_id): Extension<RequestId>,
    Path(gsrn): Path<String>,
    body: Bytes,
) -> Result<(StatusCode, Json<Submitted>), ApiError> {
    let gsrn = parse_gsrn(&gsrn)?;
    let body: ProcessRequest = parse_body(&body)?;
    let reason = audit::reason(body.reason.as_deref())?;
    let kind = kind_named(&body.kind)?;
    let supplier = supplier(&state)?;
    let process = body
        .process_id
        .clone()
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let customer = match (&body.customer_key, &body.customer) {
        (None, None) => None,
        (None, Some(_)) => {
            return Err(ApiError::Unprocessable(
                "customer needs customer_key (our customer number)".into(),
            ));
        }
        (Some(key), customer) => {
            let key = CustomerKey(key.trim().to_string());
            if key.0.is_empty() {
                return Err(ApiError::Unprocessable("customer_key is empty".into()));
            }
            let personal = match customer {
                Some(customer) => Some(seal(&state, &key, &personal_data(customer)?).await?),
                None => None,
            };
            Some(CustomerRef { key, personal })
        }
    };
    let details = serde_json::json!({
        "kind": kind.as_str(),
        "effective": body.effective,
        "customer_key": customer.as_ref().map(|c| c.key.0.clone()),
        "personal_data": customer.as_ref().and_then(|c| c.personal.as_ref()).map(|_| "sealed"),
        "corrects": body.corrects,
        "process_id": process,
    });
    let command = Command::Request(ProcessDetails {
        process: ProcessId(process.clone()),
        kind,
        supplier,
        effective: body.effective,
        customer,
        corrects: body.corrects.clone().map(ProcessId),
        balance_responsible: None,
        notified_reason: None,
    });
    let audit_id = submit(
        &state,
        (&caller, &request_id, &reason),
        "portfolio.request",
        &gsrn,
        details,
        command,
    )
    .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(Submitted {
            process_id: process,
            timeline: format!("/v1/metering-points/{gsrn}/portfolio"),
            audit_id,
        }),
    ))
}

/// `POST /v1/metering-points/{gsrn}/portfolio/processes/{process_id}/cancel`: cancels one of
/// our pending requests (before its cut-off; the processor refuses a late one).
#[utoipa::path(post, path = "/v1/metering-points/{gsrn}/portfolio/processes/{process_id}/cancel",
    tag = "portfolio",
    params(("gsrn" = String, Path, description = "18-digit GSRN"),
        ("process_id" = String, Path, description = "our process id")),
    request_body = CancelRequest,
    responses((status = 202, body = Submitted), (status = 400, body = crate::error::Problem),
        (status = 422, body = crate::error::Problem), (status = 503, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn cancel(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Extension(request_id): Extension<RequestId>,
    Path((gsrn, process_id)): Path<(String, String)>,
    Json(body): Json<CancelRequest>,
) -> Result<(StatusCode, Json<Submitted>), ApiError> {
    let gsrn = parse_gsrn(&gsrn)?;
    let reason = audit::reason(body.reason.as_deref())?;
    let audit_id = submit(
        &state,
        (&caller, &request_id, &reason),
        "portfolio.cancel",
        &gsrn,
        serde_json::json!({ "process_id": process_id }),
        Command::Cancel {
            process: ProcessId(process_id.clone()),
        },
    )
    .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(Submitted {
            process_id,
            timeline: format!("/v1/metering-points/{gsrn}/portfolio"),
            audit_id,
        }),
    ))
}

/// Seals under the customer's own key (decision 0148); 503 without a keyring.
async fn seal(
    state: &AppState,
    customer: &CustomerKey,
    data: &PersonalData,
) -> Result<afregning_portfolio::personal::Sealed, ApiError> {
    let keyring = state.portfolio_keys.as_deref().ok_or_else(|| {
        ApiError::Unavailable(
            "the API has no portfolio keyring (AFREGNING_PORTFOLIO_KEYS / _KEY_FILE), so it cannot seal customer data".into(),
        )
    })?;
    afregning_portfolio::customer_keys::seal_for(&state.pool, keyring, customer, data)
        .await
        .map_err(|e| ApiError::Unavailable(e.to_string()))
}

/// The audit row in a transaction, the command and the broker's acknowledgement, then the
/// commit: a command the broker refused leaves no row.
async fn submit(
    state: &AppState,
    (caller, request_id, reason): (&Caller, &RequestId, &str),
    action: &'static str,
    gsrn: &str,
    details: serde_json::Value,
    command: Command,
) -> Result<i64, ApiError> {
    let broker = state.broker.as_ref().ok_or_else(|| {
        ApiError::Unavailable("the API has no broker configured (--bootstrap-servers)".into())
    })?;
    let metering_point = afregning_cim::Gsrn::parse(gsrn)
        .ok_or_else(|| ApiError::BadRequest(format!("`{gsrn}` is not a GSRN (18 digits)")))?;
    let record = CommandRecord {
        metering_point,
        meta: CommandMeta {
            at: chrono::Utc::now(),
            actor: caller.subject.clone(),
            why: reason.to_string(),
            message_id: None,
        },
        command,
    };
    let bootstrap = broker
        .client()
        .get("bootstrap.servers")
        .unwrap_or_default()
        .to_string();
    let mut tx = state.pool.begin().await?;
    let audit_id = audit::record(
        &mut tx,
        &Change {
            caller,
            request_id,
            action,
            target: format!("metering_point:{gsrn}"),
            reason,
            details,
        },
    )
    .await?;
    afregning_processors::portfolio::inbox::send_command(&bootstrap, broker.catalogue(), &record)
        .await
        .map_err(ApiError::Unavailable)?;
    tx.commit().await?;
    Ok(audit_id)
}

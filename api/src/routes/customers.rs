//! Customers' personal data, for the roles that need it (`read_personal_data`: backoffice).
//!
//! The read model holds only ciphertext (`portfolio_customers`); these routes open it with the
//! deployment keyring and the customers' own keys (decision 0148), and every read writes an
//! audit row with the caller's reason, as the data protection rules ask. An erased customer's
//! data answers `erased`, never an error. A search takes the CPR/CVR in a POST body, so it is
//! in no URL and no access log.

use afregning_portfolio::customer_keys;
use afregning_portfolio::personal::{CustomerIdentity, Keyring, SealError, Sealed};
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::parse_gsrn;
use crate::audit::{self, Change, RequestId};
use crate::auth::Caller;
use crate::{ApiError, AppState};

/// Why the caller reads personal data.
#[derive(Debug, Deserialize, IntoParams)]
pub struct Purpose {
    /// Required: goes into the audit log.
    pub reason: Option<String>,
}

/// One customer as DataHub and we know them.
#[derive(Debug, Serialize, ToSchema)]
pub struct Customer {
    /// Our customer number.
    pub customer_key: String,
    /// `readable`, or `erased` once the retention ran out and the key was deleted.
    pub status: String,
    /// CPR number (a person).
    pub cpr: Option<String>,
    /// CVR number (a company).
    pub cvr: Option<String>,
    /// Name.
    pub name: Option<String>,
}

/// The customers of a metering point.
#[derive(Debug, Serialize, ToSchema)]
pub struct Customers {
    /// The metering point.
    pub gsrn: String,
    /// Its customers, by customer number.
    pub customers: Vec<Customer>,
    /// The audit row of this read.
    pub audit_id: i64,
}

/// Body of `POST /v1/customers/search`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct Search {
    /// CPR number to look for.
    pub cpr: Option<String>,
    /// CVR number to look for.
    pub cvr: Option<String>,
    /// Required: goes into the audit log.
    pub reason: Option<String>,
}

/// Where a searched customer is.
#[derive(Debug, Serialize, ToSchema)]
pub struct Found {
    /// The metering point.
    pub gsrn: String,
    /// Our customer number there.
    pub customer_key: String,
}

/// The answer to a search.
#[derive(Debug, Serialize, ToSchema)]
pub struct SearchResult {
    /// Every metering point and customer number whose data matches.
    pub matches: Vec<Found>,
    /// The audit row of this search.
    pub audit_id: i64,
}

fn keyring(state: &AppState) -> Result<&Keyring, ApiError> {
    state.portfolio_keys.as_deref().ok_or_else(|| {
        ApiError::Unavailable(
            "the API has no portfolio keyring (AFREGNING_PORTFOLIO_KEYS / _KEY_FILE)".into(),
        )
    })
}

/// `(metering point, customer key, sealed)` rows of the read model, opened: `None` for an
/// erased customer.
async fn opened(
    state: &AppState,
    rows: Vec<(String, String, String)>,
) -> Result<
    Vec<(
        String,
        String,
        Option<afregning_portfolio::personal::PersonalData>,
    )>,
    ApiError,
> {
    let sealed: Vec<Sealed> = rows
        .iter()
        .map(|(_, _, s)| Sealed::decode(s))
        .collect::<Result<_, _>>()
        .map_err(|e| ApiError::Unavailable(format!("a stored seal does not read: {e}")))?;
    let ring = customer_keys::opener(
        &state.pool,
        keyring(state)?,
        sealed.iter().map(Sealed::key_id),
    )
    .await
    .map_err(|e| ApiError::Unavailable(e.to_string()))?;
    rows.into_iter()
        .zip(&sealed)
        .map(|((gsrn, key, _), sealed)| match ring.open(sealed) {
            Ok(data) => Ok((gsrn, key, Some(data))),
            Err(SealError::UnknownKey(_)) => Ok((gsrn, key, None)),
            Err(e) => Err(ApiError::Unavailable(format!(
                "customer {key}'s data does not open: {e}"
            ))),
        })
        .collect()
}

/// An audit row for a read of personal data, written before the data is answered.
async fn audit_read(state: &AppState, change: &Change<'_>) -> Result<i64, ApiError> {
    audit::record(&mut *state.pool.acquire().await?, change).await
}

/// `GET /v1/metering-points/{gsrn}/portfolio/customers?reason=…`: the CPR/CVR and names of the
/// metering point's customers, opened; audited.
#[utoipa::path(get, path = "/v1/metering-points/{gsrn}/portfolio/customers", tag = "portfolio",
    params(("gsrn" = String, Path, description = "18-digit GSRN"), Purpose),
    responses((status = 200, body = Customers), (status = 404, body = crate::error::Problem),
        (status = 422, body = crate::error::Problem), (status = 503, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn of_metering_point(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Extension(request_id): Extension<RequestId>,
    Path(gsrn): Path<String>,
    Query(purpose): Query<Purpose>,
) -> Result<Json<Customers>, ApiError> {
    let gsrn = parse_gsrn(&gsrn)?;
    let reason = audit::reason(purpose.reason.as_deref())?;
    keyring(&state)?;
    let rows: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT metering_point, customer_key, sealed FROM portfolio_customers \
         WHERE metering_point = $1 ORDER BY customer_key",
    )
    .bind(&gsrn)
    .fetch_all(&state.pool)
    .await?;
    if rows.is_empty() {
        return Err(ApiError::NotFound(format!(
            "the portfolio has no customer data for metering point {gsrn}"
        )));
    }
    let keys: Vec<&str> = rows.iter().map(|(_, k, _)| k.as_str()).collect();
    let audit_id = audit_read(
        &state,
        &Change {
            caller: &caller,
            request_id: &request_id,
            action: "personal_data.read",
            target: format!("metering_point:{gsrn}"),
            reason: &reason,
            details: serde_json::json!({ "customer_keys": keys }),
        },
    )
    .await?;
    let customers = opened(&state, rows)
        .await?
        .into_iter()
        .map(|(_, customer_key, data)| customer(customer_key, data))
        .collect();
    Ok(Json(Customers {
        gsrn,
        customers,
        audit_id,
    }))
}

fn customer(
    customer_key: String,
    data: Option<afregning_portfolio::personal::PersonalData>,
) -> Customer {
    match data {
        None => Customer {
            customer_key,
            status: "erased".into(),
            cpr: None,
            cvr: None,
            name: None,
        },
        Some(data) => {
            let (cpr, cvr) = match &data.identity {
                CustomerIdentity::Cpr(c) => (Some(c.expose().to_string()), None),
                CustomerIdentity::Cvr(c) => (None, Some(c.expose().to_string())),
            };
            Customer {
                customer_key,
                status: "readable".into(),
                cpr,
                cvr,
                name: data.name.map(|n| n.expose().to_string()),
            }
        }
    }
}

/// `POST /v1/customers/search`: the metering points and customer numbers whose customer has
/// this CPR or CVR. Every customer's data is opened in memory and compared (no index of CPR
/// numbers exists anywhere); audited without the number.
#[utoipa::path(post, path = "/v1/customers/search", tag = "portfolio", request_body = Search,
    responses((status = 200, body = SearchResult), (status = 400, body = crate::error::Problem),
        (status = 422, body = crate::error::Problem), (status = 503, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn search(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Extension(request_id): Extension<RequestId>,
    body: Bytes,
) -> Result<Json<SearchResult>, ApiError> {
    let body: Search = super::portfolio_requests::parse_body(&body)?;
    let reason = audit::reason(body.reason.as_deref())?;
    let wanted = match (body.cpr.as_deref(), body.cvr.as_deref()) {
        (Some(cpr), None) => cpr.trim().to_string(),
        (None, Some(cvr)) => cvr.trim().to_string(),
        _ => {
            return Err(ApiError::Unprocessable(
                "search needs exactly one of cpr and cvr".into(),
            ));
        }
    };
    keyring(&state)?;
    let rows: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT metering_point, customer_key, sealed FROM portfolio_customers \
         ORDER BY metering_point, customer_key",
    )
    .fetch_all(&state.pool)
    .await?;
    let audit_id = audit_read(
        &state,
        &Change {
            caller: &caller,
            request_id: &request_id,
            action: "personal_data.search",
            target: "customers".into(),
            reason: &reason,
            details: serde_json::json!({ "by": if body.cpr.is_some() { "cpr" } else { "cvr" } }),
        },
    )
    .await?;
    let matches = opened(&state, rows)
        .await?
        .into_iter()
        .filter(|(_, _, data)| {
            data.as_ref().is_some_and(|d| match &d.identity {
                CustomerIdentity::Cpr(c) => body.cpr.is_some() && c.expose() == wanted,
                CustomerIdentity::Cvr(c) => body.cvr.is_some() && c.expose() == wanted,
            })
        })
        .map(|(gsrn, customer_key, _)| Found { gsrn, customer_key })
        .collect();
    Ok(Json(SearchResult { matches, audit_id }))
}

//! Which metering point is on which product, and the default product, on the
//! products topic beside the products (decision 0130; keys
//! `assignments:{gsrn}` and `default-product:`, see
//! `afregning_processors::settle::products`). settle reads them over its
//! `--product-catalogue` file: the topic's assignments of a metering point
//! replace the file's for it, the topic's default product replaces
//! `--default-product`; a change re-settles the metering point's (for the
//! default: every) open month from the earliest day it touches.
//!
//! The API sees the topic only, not settle's file: an assignment must name a
//! product on the topic, and `GET` shows the topic's assignments (none: the
//! file's, or the default product, apply).

use afregning_settlement::ProductAssignment;
use axum::extract::{Path, State};
use axum::{Extension, Json};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::parse_gsrn;
use super::products::{MAX_VERSIONS, log, parse_id};
use crate::audit::{self, Change, RequestId};
use crate::auth::Caller;
use crate::product_log::Position;
use crate::{ApiError, AppState};

/// One period of a metering point on a product.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Period {
    /// The product (on the products topic).
    pub product_id: String,
    /// First local day on it.
    pub valid_from: NaiveDate,
    /// First local day no longer on it; absent: open-ended.
    pub valid_to: Option<NaiveDate>,
}

/// A metering point's assignments on the topic.
#[derive(Debug, Serialize, ToSchema)]
pub struct Assignments {
    /// The metering point.
    pub gsrn: String,
    /// Its periods, by start; empty when the topic has none (settle's file or
    /// the default product apply).
    pub periods: Vec<Period>,
}

/// Body of `PUT /v1/metering-points/{gsrn}/product-assignments`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct SetAssignments {
    /// Every period of the metering point (they replace those before; empty: none).
    pub periods: Vec<Period>,
    /// Why (required; the audit row's reason).
    pub reason: Option<String>,
}

/// The answer to a change: what is in force and where the broker put it.
#[derive(Debug, Serialize, ToSchema)]
pub struct Published<T> {
    /// The new state.
    pub value: T,
    /// Partition of the products topic.
    pub partition: i32,
    /// Offset there.
    pub offset: i64,
    /// The audit row.
    pub audit_id: i64,
}

/// The default product.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DefaultProduct {
    /// The product of a metering point no assignment covers (`None`: the
    /// topic sets none, settle's `--default-product` applies).
    pub product_id: Option<String>,
}

/// Body of `PUT /v1/product-default`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct SetDefault {
    /// The product (on the products topic).
    pub product_id: String,
    /// Why (required).
    pub reason: Option<String>,
}

fn periods_of(gsrn: &str, assignments: &[ProductAssignment]) -> Vec<Period> {
    assignments
        .iter()
        .filter(|a| a.metering_point_id == gsrn)
        .map(|a| Period {
            product_id: a.product_id.clone(),
            valid_from: a.valid_from,
            valid_to: a.valid_to,
        })
        .collect()
}

/// `GET /v1/metering-points/{gsrn}/product-assignments`: the topic's periods.
#[utoipa::path(get, path = "/v1/metering-points/{gsrn}/product-assignments", tag = "rates",
    params(("gsrn" = String, Path, description = "the metering point")),
    responses((status = 200, body = Assignments), (status = 400, body = crate::error::Problem),
        (status = 503, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn get_assignments(
    State(state): State<AppState>,
    Path(gsrn): Path<String>,
) -> Result<Json<Assignments>, ApiError> {
    let gsrn = parse_gsrn(&gsrn)?;
    let topic = log(&state)?
        .read_all()
        .await
        .map_err(ApiError::Unavailable)?;
    let periods = topic
        .assignments
        .get(&gsrn)
        .map(|p| periods_of(&gsrn, p))
        .unwrap_or_default();
    Ok(Json(Assignments { gsrn, periods }))
}

/// `PUT /v1/metering-points/{gsrn}/product-assignments`: replaces the metering
/// point's periods on the topic. 422 for a product not on the topic, a
/// period that ends before it starts or overlaps another, a day outside
/// 2000–2100, more than 240 periods or no reason.
#[utoipa::path(put, path = "/v1/metering-points/{gsrn}/product-assignments", tag = "rates",
    params(("gsrn" = String, Path, description = "the metering point")),
    request_body = SetAssignments,
    responses((status = 200, body = Published<Assignments>), (status = 400, body = crate::error::Problem),
        (status = 422, body = crate::error::Problem), (status = 503, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn set_assignments(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Extension(request_id): Extension<RequestId>,
    Path(gsrn): Path<String>,
    Json(body): Json<SetAssignments>,
) -> Result<Json<Published<Assignments>>, ApiError> {
    let gsrn = parse_gsrn(&gsrn)?;
    let reason = audit::reason(body.reason.as_deref())?;
    if body.periods.len() > MAX_VERSIONS {
        return Err(ApiError::Unprocessable(format!(
            "at most {MAX_VERSIONS} periods"
        )));
    }
    let mut periods = body.periods.clone();
    periods.sort_by_key(|p| p.valid_from);
    let in_range = |d: NaiveDate| (2000..=2100).contains(&chrono::Datelike::year(&d));
    if periods.iter().any(|p| {
        !in_range(p.valid_from)
            || p.valid_to
                .is_some_and(|to| !in_range(to) || to <= p.valid_from)
    }) || periods
        .windows(2)
        .any(|w| w[0].valid_to.is_none_or(|to| to > w[1].valid_from))
    {
        return Err(ApiError::Unprocessable(
            "periods must start before they end, within 2000-2100, and not overlap".into(),
        ));
    }
    let log = log(&state)?;
    let _change = log.lock().await;
    let topic = log.read_all().await.map_err(ApiError::Unavailable)?;
    for p in &periods {
        let id = parse_id(&p.product_id).map_err(|e| ApiError::Unprocessable(e.to_string()))?;
        if !topic.products.contains_key(&id) {
            return Err(ApiError::Unprocessable(format!(
                "no product {id} on the products topic"
            )));
        }
    }
    let assignments: Vec<ProductAssignment> = periods
        .iter()
        .map(|p| ProductAssignment {
            metering_point_id: gsrn.clone(),
            product_id: p.product_id.clone(),
            valid_from: p.valid_from,
            valid_to: p.valid_to,
        })
        .collect();
    let value = Assignments {
        gsrn: gsrn.clone(),
        periods,
    };
    let details = serde_json::to_value(&value).unwrap_or_default();
    let (position, audit_id) = audited(
        &state,
        &caller,
        &request_id,
        ("product.assign", format!("metering_point:{gsrn}")),
        &reason,
        details,
        log.publish_assignments(&gsrn, &assignments),
    )
    .await?;
    Ok(Json(Published {
        value,
        partition: position.partition,
        offset: position.offset,
        audit_id,
    }))
}

/// `GET /v1/product-default`: the default product the topic sets.
#[utoipa::path(get, path = "/v1/product-default", tag = "rates",
    responses((status = 200, body = DefaultProduct), (status = 503, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn get_default(State(state): State<AppState>) -> Result<Json<DefaultProduct>, ApiError> {
    let topic = log(&state)?
        .read_all()
        .await
        .map_err(ApiError::Unavailable)?;
    Ok(Json(DefaultProduct {
        product_id: topic.default_product,
    }))
}

/// `PUT /v1/product-default`: sets the default product (a product on the
/// topic; 422 otherwise); settle re-settles every open month.
#[utoipa::path(put, path = "/v1/product-default", tag = "rates", request_body = SetDefault,
    responses((status = 200, body = Published<DefaultProduct>), (status = 422, body = crate::error::Problem),
        (status = 503, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn set_default(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Extension(request_id): Extension<RequestId>,
    Json(body): Json<SetDefault>,
) -> Result<Json<Published<DefaultProduct>>, ApiError> {
    let reason = audit::reason(body.reason.as_deref())?;
    let id = parse_id(&body.product_id).map_err(|e| ApiError::Unprocessable(e.to_string()))?;
    let log = log(&state)?;
    let _change = log.lock().await;
    let topic = log.read_all().await.map_err(ApiError::Unavailable)?;
    if !topic.products.contains_key(&id) {
        return Err(ApiError::Unprocessable(format!(
            "no product {id} on the products topic"
        )));
    }
    let (position, audit_id) = audited(
        &state,
        &caller,
        &request_id,
        ("product.default", "product_default".to_string()),
        &reason,
        serde_json::json!({ "product_id": id }),
        log.publish_default(&id),
    )
    .await?;
    Ok(Json(Published {
        value: DefaultProduct {
            product_id: Some(id),
        },
        partition: position.partition,
        offset: position.offset,
        audit_id,
    }))
}

/// The audit row in a transaction, the publish and its ack, then the commit
/// (a publish that fails leaves no row; decision 0130).
async fn audited(
    state: &AppState,
    caller: &Caller,
    request_id: &RequestId,
    (action, target): (&'static str, String),
    reason: &str,
    details: serde_json::Value,
    publish: impl std::future::Future<Output = Result<Position, String>>,
) -> Result<(Position, i64), ApiError> {
    let mut tx = state.pool.begin().await?;
    let audit_id = audit::record(
        &mut tx,
        &Change {
            caller,
            request_id,
            action,
            target,
            reason,
            details,
        },
    )
    .await?;
    let position = publish.await.map_err(ApiError::Unavailable)?;
    tx.commit().await?;
    Ok((position, audit_id))
}

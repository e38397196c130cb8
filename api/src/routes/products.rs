//! The supplier's own products (margin per kWh, subscription): listed, shown,
//! created and changed through the API, kept on the products topic that
//! settle reads (decision 0130). A change is a new version from a local day;
//! settle re-settles the months it touches at its next tick (new provisional
//! versions; a credit note and a new statement for a month already final).
//!
//! Order of a change: the audit row is written in a transaction, the product
//! is published and the broker's acknowledgement awaited, and only then is
//! the transaction committed. A refused or unacknowledged publish rolls the
//! audit row back, so no audit row claims a change the log does not have;
//! the one gap left (the commit fails after the ack) is logged with the
//! request id, and repeating the same request publishes the same product
//! again (settle sees no difference) and audits it.

use afregning_settlement::{Margin, Product, ProductCatalogue, ProductVersion, VatClass};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::audit::{self, Change, RequestId};
use crate::auth::Caller;
use crate::product_log::ProductLog;
use crate::{ApiError, AppState};

/// Longest product id (lower-case letters, digits and `-`).
pub const MAX_ID_CHARS: usize = 64;
/// Longest product name.
pub const MAX_NAME_CHARS: usize = 200;
/// Most versions one product keeps.
pub const MAX_VERSIONS: usize = 240;
/// Largest margin per kWh, either sign (DKK excl. VAT).
pub const MAX_MARGIN_PER_KWH: Decimal = Decimal::from_parts(10, 0, 0, false, 0);
/// Largest subscription per month (DKK excl. VAT).
pub const MAX_SUBSCRIPTION: Decimal = Decimal::from_parts(10_000, 0, 0, false, 0);
/// Most decimals of an amount (the topics' money scale).
pub const MAX_SCALE: u32 = 6;

/// The margin per kWh, DKK excluding VAT (decimals as JSON strings or numbers).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum MarginTerms {
    /// The same margin every hour.
    Flat {
        /// DKK/kWh.
        per_kwh: Decimal,
    },
    /// One margin per local wall-clock hour, 24 of them (00:00–01:00 first).
    ByLocalHour {
        /// DKK/kWh per hour.
        per_kwh: Vec<Decimal>,
    },
    /// One margin per C-customer tariff band.
    ByTariffPeriod {
        /// DKK/kWh in lavlast.
        lavlast: Decimal,
        /// DKK/kWh in højlast.
        hojlast: Decimal,
        /// DKK/kWh in spidslast.
        spidslast: Decimal,
    },
}

/// VAT on the supplier's lines: DataHub's codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
pub enum VatCode {
    /// No VAT.
    D01,
    /// 25 % VAT (the default).
    #[default]
    D02,
}

/// One version of a product's terms, valid from a local day until the next version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Version {
    /// First local day (Europe/Copenhagen) the version applies.
    pub valid_from: NaiveDate,
    /// Margin per kWh.
    pub margin: MarginTerms,
    /// Supplier subscription, DKK per month excluding VAT.
    pub subscription_per_month: Decimal,
    /// VAT class of the supplier's lines (default D02).
    #[serde(default)]
    pub vat_class: VatCode,
}

/// A product with every version, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ProductView {
    /// Stable id (the topic's key).
    pub id: String,
    /// Name shown on the invoice.
    pub name: String,
    /// Versions by `valid_from`.
    pub versions: Vec<Version>,
}

/// Body of `POST /v1/products`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateProduct {
    /// Id: 1–64 of `a-z`, `0-9`, `-`, starting with a letter or digit.
    pub id: String,
    /// Name shown on the invoice (1–200 characters).
    pub name: String,
    /// At least one version.
    pub versions: Vec<Version>,
    /// Why (required; the audit row's reason).
    pub reason: Option<String>,
}

/// Body of `POST /v1/products/{product_id}/versions`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ChangeProduct {
    /// The new version; it replaces a version with the same `valid_from`.
    #[serde(flatten)]
    pub version: Version,
    /// Why (required; the audit row's reason).
    pub reason: Option<String>,
}

/// The answer to a change: the product as published and where.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ProductChanged {
    /// The product as now on the topic.
    pub product: ProductView,
    /// Partition of the products topic the broker acknowledged.
    pub partition: i32,
    /// Offset there.
    pub offset: i64,
    /// The audit row written with it.
    pub audit_id: i64,
}

pub(crate) fn log(state: &AppState) -> Result<&ProductLog, ApiError> {
    state.products.as_ref().ok_or_else(|| {
        ApiError::Unavailable(
            "products live on the products topic; this API was started without a broker \
             (--bootstrap-servers)"
                .into(),
        )
    })
}

/// An id from a path: the id rule, else 400.
pub(crate) fn parse_id(text: &str) -> Result<String, ApiError> {
    let ok = !text.is_empty()
        && text.len() <= MAX_ID_CHARS
        && text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !text.starts_with('-');
    if ok {
        Ok(text.to_string())
    } else {
        Err(ApiError::BadRequest(format!(
            "`{text}` is not a product id (1-{MAX_ID_CHARS} of a-z, 0-9 and -)"
        )))
    }
}

fn amount(what: &str, value: Decimal, max: Decimal, signed: bool) -> Result<(), ApiError> {
    if value.scale() > MAX_SCALE {
        return Err(ApiError::Unprocessable(format!(
            "{what} has more than {MAX_SCALE} decimals"
        )));
    }
    if value.abs() > max || (!signed && value.is_sign_negative() && !value.is_zero()) {
        let range = if signed {
            format!("-{max}..{max}")
        } else {
            format!("0..{max}")
        };
        return Err(ApiError::Unprocessable(format!(
            "{what} {value} is outside {range} DKK"
        )));
    }
    Ok(())
}

/// A version in the engine's terms, or 422 for values outside the limits.
fn engine_version(v: &Version) -> Result<ProductVersion, ApiError> {
    let first = NaiveDate::from_ymd_opt(2000, 1, 1).unwrap_or_default();
    let last = NaiveDate::from_ymd_opt(2100, 12, 31).unwrap_or_default();
    if !(first..=last).contains(&v.valid_from) {
        return Err(ApiError::Unprocessable(format!(
            "valid_from {} is outside {first}..{last}",
            v.valid_from
        )));
    }
    let per_kwh = |what: &str, d: Decimal| amount(what, d, MAX_MARGIN_PER_KWH, true);
    let margin = match &v.margin {
        MarginTerms::Flat { per_kwh: m } => {
            per_kwh("the margin per kWh", *m)?;
            Margin::Flat { per_kwh: *m }
        }
        MarginTerms::ByLocalHour { per_kwh: hours } => {
            let hours: [Decimal; 24] = hours.as_slice().try_into().map_err(|_| {
                ApiError::Unprocessable(format!(
                    "a margin by local hour has 24 values, not {}",
                    hours.len()
                ))
            })?;
            for m in hours {
                per_kwh("an hour's margin per kWh", m)?;
            }
            Margin::ByLocalHour {
                per_kwh: Box::new(hours),
            }
        }
        MarginTerms::ByTariffPeriod {
            lavlast,
            hojlast,
            spidslast,
        } => {
            for m in [lavlast, hojlast, spidslast] {
                per_kwh("a tariff band's margin per kWh", *m)?;
            }
            Margin::ByTariffPeriod {
                lavlast: *lavlast,
                hojlast: *hojlast,
                spidslast: *spidslast,
            }
        }
    };
    amount(
        "the subscription per month",
        v.subscription_per_month,
        MAX_SUBSCRIPTION,
        false,
    )?;
    Ok(ProductVersion {
        valid_from: v.valid_from,
        margin,
        subscription_per_month: v.subscription_per_month,
        vat_class: match v.vat_class {
            VatCode::D01 => VatClass::NoVat,
            VatCode::D02 => VatClass::Vat25,
        },
    })
}

/// A product as the API shows it, versions oldest first.
pub fn view(product: &Product) -> ProductView {
    let mut versions: Vec<Version> = product
        .versions
        .iter()
        .map(|v| Version {
            valid_from: v.valid_from,
            margin: match &v.margin {
                Margin::Flat { per_kwh } => MarginTerms::Flat { per_kwh: *per_kwh },
                Margin::ByLocalHour { per_kwh } => MarginTerms::ByLocalHour {
                    per_kwh: per_kwh.to_vec(),
                },
                Margin::ByTariffPeriod {
                    lavlast,
                    hojlast,
                    spidslast,
                } => MarginTerms::ByTariffPeriod {
                    lavlast: *lavlast,
                    hojlast: *hojlast,
                    spidslast: *spidslast,
                },
            },
            subscription_per_month: v.subscription_per_month,
            vat_class: match v.vat_class {
                VatClass::NoVat => VatCode::D01,
                VatClass::Vat25 => VatCode::D02,
            },
        })
        .collect();
    versions.sort_by_key(|v| v.valid_from);
    ProductView {
        id: product.id.clone(),
        name: product.name.clone(),
        versions,
    }
}

/// `GET /v1/products`: every product on the products topic, by id.
#[utoipa::path(get, path = "/v1/products", tag = "rates",
    responses((status = 200, body = Vec<ProductView>), (status = 503, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn list(State(state): State<AppState>) -> Result<Json<Vec<ProductView>>, ApiError> {
    let products = log(&state)?.read().await.map_err(ApiError::Unavailable)?;
    Ok(Json(products.values().map(view).collect()))
}

/// `GET /v1/products/{product_id}`: one product with its versions.
#[utoipa::path(get, path = "/v1/products/{product_id}", tag = "rates",
    params(("product_id" = String, Path, description = "product id")),
    responses((status = 200, body = ProductView), (status = 400, body = crate::error::Problem),
        (status = 404, body = crate::error::Problem), (status = 503, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn get_product(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<ProductView>, ApiError> {
    let id = parse_id(&id)?;
    let products = log(&state)?.read().await.map_err(ApiError::Unavailable)?;
    products
        .get(&id)
        .map(|p| Json(view(p)))
        .ok_or_else(|| ApiError::NotFound(format!("no product {id}")))
}

/// `POST /v1/products`: a new product; 409 if the id exists, 422 for values
/// outside the limits or without a reason.
#[utoipa::path(post, path = "/v1/products", tag = "rates", request_body = CreateProduct,
    responses((status = 201, body = ProductChanged), (status = 409, body = crate::error::Problem),
        (status = 422, body = crate::error::Problem), (status = 503, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Extension(request_id): Extension<RequestId>,
    Json(body): Json<CreateProduct>,
) -> Result<(StatusCode, Json<ProductChanged>), ApiError> {
    let reason = audit::reason(body.reason.as_deref())?;
    let id = parse_id(&body.id).map_err(|e| ApiError::Unprocessable(e.to_string()))?;
    let name = body.name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
        return Err(ApiError::Unprocessable(format!(
            "the name must have 1-{MAX_NAME_CHARS} characters"
        )));
    }
    if body.versions.is_empty() || body.versions.len() > MAX_VERSIONS {
        return Err(ApiError::Unprocessable(format!(
            "a product has 1-{MAX_VERSIONS} versions"
        )));
    }
    let product = Product {
        id: id.clone(),
        name: name.to_string(),
        versions: body
            .versions
            .iter()
            .map(engine_version)
            .collect::<Result<_, _>>()?,
    };
    let log = log(&state)?;
    let _change = log.lock().await;
    if log
        .read()
        .await
        .map_err(ApiError::Unavailable)?
        .contains_key(&id)
    {
        return Err(ApiError::Conflict(format!(
            "product {id} exists; change it with POST /v1/products/{id}/versions"
        )));
    }
    let changed = publish(
        &state,
        log,
        &caller,
        &request_id,
        "product.create",
        product,
        &reason,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(changed)))
}

/// `POST /v1/products/{product_id}/versions`: a new version of a product from
/// a local day (replacing a version from the same day); settle re-settles the
/// months from that day on. 404 if there is no such product.
#[utoipa::path(post, path = "/v1/products/{product_id}/versions", tag = "rates",
    params(("product_id" = String, Path, description = "product id")),
    request_body = ChangeProduct,
    responses((status = 200, body = ProductChanged), (status = 400, body = crate::error::Problem),
        (status = 404, body = crate::error::Problem), (status = 422, body = crate::error::Problem),
        (status = 503, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn change(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Extension(request_id): Extension<RequestId>,
    Path(id): Path<String>,
    Json(body): Json<ChangeProduct>,
) -> Result<Json<ProductChanged>, ApiError> {
    let id = parse_id(&id)?;
    let reason = audit::reason(body.reason.as_deref())?;
    let version = engine_version(&body.version)?;
    let log = log(&state)?;
    let _change = log.lock().await;
    let mut product = log
        .read()
        .await
        .map_err(ApiError::Unavailable)?
        .remove(&id)
        .ok_or_else(|| ApiError::NotFound(format!("no product {id}")))?;
    product
        .versions
        .retain(|v| v.valid_from != version.valid_from);
    product.versions.push(version);
    product.versions.sort_by_key(|v| v.valid_from);
    if product.versions.len() > MAX_VERSIONS {
        return Err(ApiError::Unprocessable(format!(
            "product {id} has {MAX_VERSIONS} versions already"
        )));
    }
    let changed = publish(
        &state,
        log,
        &caller,
        &request_id,
        "product.change",
        product,
        &reason,
    )
    .await?;
    Ok(Json(changed))
}

/// Audits and publishes `product`: audit row in a transaction, publish, ack, commit.
async fn publish(
    state: &AppState,
    log: &ProductLog,
    caller: &Caller,
    request_id: &RequestId,
    action: &'static str,
    product: Product,
    reason: &str,
) -> Result<ProductChanged, ApiError> {
    ProductCatalogue {
        products: vec![product.clone()],
        assignments: Vec::new(),
    }
    .validate()
    .map_err(|e| ApiError::Unprocessable(e.to_string()))?;
    let shown = view(&product);
    let mut tx = state.pool.begin().await?;
    let audit_id = audit::record(
        &mut tx,
        &Change {
            caller,
            request_id,
            action,
            target: format!("product:{}", product.id),
            reason,
            details: serde_json::to_value(&shown).unwrap_or_default(),
        },
    )
    .await?;
    // The transaction rolls back when it is dropped: an unacknowledged change leaves no row.
    let position = log.publish(&product).await.map_err(ApiError::Unavailable)?;
    if let Err(error) = tx.commit().await {
        tracing::error!(
            request_id = %request_id.0,
            product = %product.id,
            partition = position.partition,
            offset = position.offset,
            %error,
            "a product change is on the topic but its audit row did not commit; repeat the request"
        );
        return Err(ApiError::Database(error));
    }
    Ok(ProductChanged {
        product: shown,
        partition: position.partition,
        offset: position.offset,
        audit_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(margin: MarginTerms) -> Version {
        Version {
            valid_from: NaiveDate::from_ymd_opt(2026, 3, 15).unwrap(),
            margin,
            subscription_per_month: Decimal::new(2900, 2),
            vat_class: VatCode::D02,
        }
    }

    #[test]
    fn ids_are_lower_case_words() {
        assert!(parse_id("spot-plus-2").is_ok());
        assert!(parse_id("Spot").is_err());
        assert!(parse_id("-spot").is_err());
        assert!(parse_id("").is_err());
        assert!(parse_id(&"a".repeat(MAX_ID_CHARS + 1)).is_err());
    }

    #[test]
    fn versions_within_the_limits_round_trip_through_the_engines_terms() {
        for margin in [
            MarginTerms::Flat {
                per_kwh: Decimal::new(-5, 2),
            },
            MarginTerms::ByLocalHour {
                per_kwh: (0..24).map(|h| Decimal::new(h, 3)).collect(),
            },
            MarginTerms::ByTariffPeriod {
                lavlast: Decimal::new(1, 2),
                hojlast: Decimal::new(2, 2),
                spidslast: Decimal::new(3, 2),
            },
        ] {
            let v = version(margin);
            let product = Product {
                id: "p".into(),
                name: "P".into(),
                versions: vec![engine_version(&v).expect("within the limits")],
            };
            assert_eq!(view(&product).versions, vec![v]);
        }
    }

    #[test]
    fn values_outside_the_limits_are_refused() {
        let refused = |v: Version| matches!(engine_version(&v), Err(ApiError::Unprocessable(_)));
        assert!(refused(version(MarginTerms::Flat {
            per_kwh: Decimal::new(11, 0)
        })));
        assert!(refused(version(MarginTerms::Flat {
            per_kwh: Decimal::new(1, 7)
        })));
        assert!(refused(version(MarginTerms::ByLocalHour {
            per_kwh: vec![Decimal::ONE; 23]
        })));
        let mut negative = version(MarginTerms::Flat {
            per_kwh: Decimal::ONE,
        });
        negative.subscription_per_month = Decimal::new(-1, 0);
        assert!(refused(negative));
        let mut early = version(MarginTerms::Flat {
            per_kwh: Decimal::ONE,
        });
        early.valid_from = NaiveDate::from_ymd_opt(1999, 12, 31).unwrap();
        assert!(refused(early));
    }
}

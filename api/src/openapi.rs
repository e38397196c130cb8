//! The OpenAPI 3 document, generated from the handlers' `#[utoipa::path]`
//! annotations and the response types' schemas, so it cannot drift from the
//! code; served at `/openapi.json`, with a reference page at `/docs` that
//! renders it in the browser without loading anything from elsewhere.

use axum::Json;
use axum::response::Html;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::routes::*;

/// The document's definition: every route and the schemas they name.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "afregning API",
        description = "Settlement results, metering data, rates, products and operations of afregning. \
            Every /v1 route needs a bearer JWT whose roles allow it (docs/api.md); every error is \
            RFC 7807 problem details."
    ),
    paths(
        health::health,
        health::metrics,
        metering_points::list,
        metering_points::get_metering_point,
        portfolio::get_portfolio,
        portfolio_requests::request,
        portfolio_requests::cancel,
        customers::of_metering_point,
        customers::search,
        metering_data::series,
        metering_data::compare,
        completeness::per_grid_area,
        settlements::latest,
        settlements::versions,
        settlements::statements,
        explain::explain,
        billing::list,
        billing::export,
        rates::charges_seen,
        reconciliation::report,
        reconciliation::discrepancies,
        reconciliation::request,
        reconciliation::requests,
        reconciliation::show_request,
        operations::lag,
        operations::processor_lag,
        operations::datahub_queues,
        operations::audit_log,
        dead_letters::list,
        dead_letters::show,
        dead_letters::resolve,
        replay::resubmit,
        replay::start,
        replay::list,
        replay::show,
        products::list,
        products::get_product,
        products::create,
        products::change,
        assignments::get_assignments,
        assignments::set_assignments,
        assignments::get_default,
        assignments::set_default,
    ),
    components(schemas(crate::error::Problem, crate::auth::Role)),
    modifiers(&BearerScheme),
    tags(
        (name = "portfolio", description = "metering points, their master data, our supply and customers, requests to DataHub's business processes"),
        (name = "metering data", description = "quantities, quality, completeness"),
        (name = "settlement", description = "provisional settlements, statements, explanations, billing runs"),
        (name = "rates", description = "charges applied per grid area, the supplier's products"),
        (name = "reconciliation", description = "our settlement against DataHub's wholesale settlement (BRS-027), requests for DataHub's results"),
        (name = "operations", description = "health, lag, dead letters, replay runs, audit log"),
    )
)]
pub struct ApiDoc;

struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// `GET /openapi.json`.
pub async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

/// `GET /docs`: the reference page (static HTML and a small script that reads `/openapi.json`).
pub async fn reference_page() -> Html<&'static str> {
    Html(include_str!("../assets/reference.html"))
}

//! The backoffice console: server-rendered HTML pages in the API's own
//! binary, for people who would rather look than read JSON. It answers from
//! the same functions as the API and checks the same tokens and permissions;
//! the token is pasted once on `/console` and kept in a `SameSite=Strict`
//! cookie, which only the console's pages accept (the `/v1` routes want the
//! header), so another site can neither read it nor make the browser use it.
//!
//! Pages: search metering points; one metering point with its consumption
//! chart (inline SVG: daily bars for a month, quarter-hours for a day), its
//! latest statement lines with their charges and its versions; the
//! dead-letter queue with a resolve form; the pipeline's lag.

use axum::extract::{Path, Query, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{MethodRouter, get, post};
use axum::{Extension, Form, Router};
use chrono::{Datelike, NaiveDate, Utc};
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde::Deserialize;

use crate::audit::RequestId;
use crate::auth::{self, Caller, Guard, Permission};
use crate::routes::metering_data::{Aggregate, Series};
use crate::routes::{dead_letters, metering_data, metering_points, operations, settlements};
use crate::{ApiError, AppState};

/// The console's routes; merged into the API's router.
pub fn router(state: &AppState) -> Router<AppState> {
    let page = |permission: Permission, method_router: MethodRouter<AppState>| {
        let guard = Guard {
            authenticator: state.authenticator.clone(),
            permission,
            cookie_allowed: true,
        };
        method_router
            .route_layer(axum::middleware::from_fn_with_state(guard, auth::require))
            .route_layer(axum::middleware::from_fn(login_when_unauthorized))
    };
    Router::new()
        .route("/console", get(login))
        .route(
            "/console/metering-points",
            page(Permission::Read, get(search)),
        )
        .route(
            "/console/metering-points/{gsrn}",
            page(Permission::Read, get(metering_point)),
        )
        .route(
            "/console/dead-letters",
            page(Permission::ReadOperations, get(dead_letter_queue)),
        )
        .route(
            "/console/dead-letters/resolve",
            page(Permission::ResolveDeadLetters, post(resolve)),
        )
        .route("/console/lag", page(Permission::ReadOperations, get(lag)))
        .route(
            "/console/replay-runs",
            page(Permission::ReadOperations, get(replay_runs)),
        )
}

/// A page without a valid token goes to the login page instead of showing JSON.
async fn login_when_unauthorized(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    if response.status() == StatusCode::UNAUTHORIZED {
        return Redirect::to("/console").into_response();
    }
    response
}

/// HTML-escapes text for element content and quoted attributes.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:0;color:#222}\
nav{background:#123;padding:.6rem 1rem}nav a{color:#fff;margin-right:1.2rem;text-decoration:none}\
main{padding:1rem 1.5rem;max-width:72rem}table{border-collapse:collapse;margin:.5rem 0}\
td,th{border:1px solid #ddd;padding:.25rem .5rem;text-align:left}td.num{text-align:right;font-variant-numeric:tabular-nums}\
.bar{fill:#2a7ab0}.bar:hover{fill:#e08a00}.error{color:#a00}.muted{color:#777}";

fn layout(title: &str, body: &str) -> Html<String> {
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{} · afregning</title>\
         <style>{STYLE}</style></head><body><nav><a href=\"/console/metering-points\">Metering points</a>\
         <a href=\"/console/dead-letters\">Dead letters</a><a href=\"/console/lag\">Pipeline lag</a>\
         <a href=\"/console/replay-runs\">Replay runs</a>\
         <a href=\"/docs\">API reference</a><a href=\"/console\" id=\"logout\">Token</a></nav>\
         <main><h1>{}</h1>{body}</main></body></html>",
        esc(title),
        esc(title)
    ))
}

/// An error on a page: the problem's detail in the page, with its status.
fn page_error(error: ApiError) -> Response {
    let problem = error.problem();
    let status = StatusCode::from_u16(problem.status).unwrap_or(StatusCode::BAD_REQUEST);
    (
        status,
        layout(
            problem.title.as_str(),
            &format!(
                "<p class=\"error\" id=\"problem\">{}</p>",
                esc(&problem.detail)
            ),
        ),
    )
        .into_response()
}

async fn login() -> Html<String> {
    layout(
        "Sign in",
        "<p>Paste a bearer token (JWT) issued for you. It is kept in a cookie for this site only.</p>\
         <form id=\"login\"><textarea id=\"token\" rows=\"6\" cols=\"80\" required></textarea><br>\
         <button type=\"submit\">Use this token</button></form>\
         <script>document.getElementById('login').addEventListener('submit',function(e){\
         e.preventDefault();var t=document.getElementById('token').value.trim();\
         document.cookie='afregning_token='+encodeURIComponent(t)+'; path=/console; SameSite=Strict';\
         location.href='/console/metering-points';});</script>",
    )
}

#[derive(Debug, Deserialize)]
struct SearchQuery {
    q: Option<String>,
    grid_area: Option<String>,
    after: Option<String>,
}

async fn search(State(state): State<AppState>, Query(query): Query<SearchQuery>) -> Response {
    let listing = metering_points::ListQuery {
        grid_area: query.grid_area.clone().filter(|g| !g.trim().is_empty()),
        gsrn_prefix: query.q.clone(),
        after: query.after.clone(),
        page_size: Some(50),
    };
    let page = match metering_points::page(&state.pool, &listing).await {
        Ok(page) => page,
        Err(error) => return page_error(error),
    };
    let mut body = format!(
        "<form method=\"get\"><input name=\"q\" placeholder=\"GSRN or its start\" value=\"{}\">\
         <input name=\"grid_area\" placeholder=\"grid area\" size=\"5\" value=\"{}\">\
         <button type=\"submit\">Search</button></form>\
         <table id=\"metering-points\"><tr><th>GSRN</th><th>Grid area</th><th>Type</th>\
         <th>Resolution</th><th>Settlement method</th><th>Since</th></tr>",
        esc(query.q.as_deref().unwrap_or_default()),
        esc(query.grid_area.as_deref().unwrap_or_default())
    );
    for m in &page.items {
        body.push_str(&format!(
            "<tr><td><a href=\"/console/metering-points/{0}\">{0}</a></td><td>{1}</td><td>{2}</td>\
             <td>{3}</td><td>{4}</td><td>{5}</td></tr>",
            esc(&m.gsrn),
            esc(&m.grid_area),
            esc(&m.metering_point_type),
            esc(&m.resolution),
            esc(m.settlement_method.as_deref().unwrap_or("")),
            m.valid_from.format("%Y-%m-%d %H:%M UTC")
        ));
    }
    body.push_str("</table>");
    if page.items.is_empty() {
        body.push_str("<p class=\"muted\">No metering points match.</p>");
    }
    if let Some(next) = &page.next_after {
        body.push_str(&format!(
            "<p><a href=\"?q={}&grid_area={}&after={}\">Next page</a></p>",
            esc(query.q.as_deref().unwrap_or_default()),
            esc(query.grid_area.as_deref().unwrap_or_default()),
            esc(next)
        ));
    }
    layout("Metering points", &body).into_response()
}

#[derive(Debug, Deserialize)]
struct PointQuery {
    /// A month to chart per day (YYYY-MM).
    month: Option<String>,
    /// A day to chart per position (YYYY-MM-DD).
    day: Option<String>,
}

/// The month to show when none is asked: the latest with metering data, else this one.
async fn default_month(pool: &sqlx::PgPool, gsrn: &str) -> Result<NaiveDate, ApiError> {
    let latest: Option<NaiveDate> =
        sqlx::query_scalar("SELECT max(local_date) FROM daily_summary WHERE gsrn = $1")
            .bind(gsrn)
            .fetch_one(pool)
            .await?;
    let day = latest.unwrap_or_else(|| Utc::now().date_naive());
    Ok(day.with_day(1).expect("first of month"))
}

/// An inline SVG bar chart of a series' buckets.
pub fn chart(series: &Series, label: impl Fn(&metering_data::Bucket) -> String) -> String {
    const WIDTH: f64 = 860.0;
    const HEIGHT: f64 = 220.0;
    const AXIS: f64 = 20.0;
    let max = series
        .buckets
        .iter()
        .map(|b| b.quantity_kwh)
        .max()
        .unwrap_or_default()
        .max(Decimal::ONE)
        .to_f64()
        .unwrap_or(1.0);
    // One slot per day of the period, or per position of a day; bars sit at
    // their time, so a missing day or quarter-hour is a visible gap.
    let slots = match series.aggregate {
        Aggregate::Day => (series.to - series.from).num_days(),
        Aggregate::None => series.expected_positions,
        _ => series.buckets.len() as i64,
    }
    .max(1) as f64;
    let slot = WIDTH / slots;
    let mut svg = format!(
        "<svg id=\"consumption-chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{}\" \
         role=\"img\" aria-label=\"consumption, kWh\" data-total-kwh=\"{}\">\
         <line x1=\"0\" y1=\"{HEIGHT}\" x2=\"{WIDTH}\" y2=\"{HEIGHT}\" stroke=\"#999\"/>\
         <text x=\"2\" y=\"12\" font-size=\"11\">max {} kWh</text>",
        HEIGHT + AXIS,
        series.total_kwh,
        series
            .buckets
            .iter()
            .map(|b| b.quantity_kwh)
            .max()
            .unwrap_or_default()
    );
    let first = crate::routes::metering_data::local_midnight(series.from);
    for bucket in &series.buckets {
        let index = match series.aggregate {
            Aggregate::Day => (bucket.start - first).num_hours().div_euclid(24) as f64,
            _ => {
                let step = (bucket.end - bucket.start).num_seconds().max(1);
                ((bucket.start - first).num_seconds() / step) as f64
            }
        };
        let value = bucket.quantity_kwh.to_f64().unwrap_or(0.0);
        let height = (value / max * (HEIGHT - 16.0)).max(0.0);
        svg.push_str(&format!(
            "<rect class=\"bar\" x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" data-kwh=\"{}\">\
             <title>{}: {} kWh ({} of {} positions)</title></rect>",
            index * slot + 1.0,
            HEIGHT - height,
            (slot - 2.0).max(1.0),
            height,
            bucket.quantity_kwh,
            esc(&label(bucket)),
            bucket.quantity_kwh,
            bucket.received_positions,
            bucket.expected_positions
        ));
    }
    svg.push_str("</svg>");
    svg
}

async fn metering_point(
    State(state): State<AppState>,
    Path(gsrn): Path<String>,
    Query(query): Query<PointQuery>,
) -> Response {
    match metering_point_page(&state, &gsrn, &query).await {
        Ok(html) => html.into_response(),
        Err(error) => page_error(error),
    }
}

async fn metering_point_page(
    state: &AppState,
    gsrn: &str,
    query: &PointQuery,
) -> Result<Html<String>, ApiError> {
    let gsrn = crate::routes::parse_gsrn(gsrn)?;
    let pool = &state.pool;
    let point = metering_points::find(pool, &gsrn)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no master data for metering point {gsrn}")))?;
    let mut body = String::from(
        "<h2>Master data</h2><table id=\"master-data\"><tr><th>Valid from</th><th>Valid to</th>\
         <th>Grid area</th><th>Type</th><th>Resolution</th><th>Settlement</th><th>Supplier</th>\
         <th>DataHub message</th></tr>",
    );
    for p in &point.periods {
        body.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            p.valid_from.format("%Y-%m-%d %H:%M"),
            p.valid_to.map(|t| t.format("%Y-%m-%d %H:%M").to_string()).unwrap_or_default(),
            esc(&p.grid_area),
            esc(&p.metering_point_type),
            esc(&p.resolution),
            esc(p.settlement_method.as_deref().unwrap_or("")),
            esc(p.energy_supplier_gln.as_deref().unwrap_or("")),
            esc(&p.source_message_id)
        ));
    }
    body.push_str("</table>");
    body.push_str(&portfolio_section(pool, &gsrn).await?);

    let (series, heading, month) = match query.day.as_deref() {
        Some(day) => {
            let day = crate::routes::parse_date(day)?;
            let next = day.succ_opt().expect("a next day");
            let series = metering_data::load(pool, &gsrn, day, next, Aggregate::None).await?;
            (
                series,
                format!("Consumption on {day} per position"),
                day.with_day(1).expect("first"),
            )
        }
        None => {
            let month = match query.month.as_deref() {
                Some(m) => crate::routes::parse_month(m)?,
                None => default_month(pool, &gsrn).await?,
            };
            let next = month + chrono::Months::new(1);
            let series = metering_data::load(pool, &gsrn, month, next, Aggregate::Day).await?;
            (
                series,
                format!("Consumption in {} per day", month.format("%Y-%m")),
                month,
            )
        }
    };
    body.push_str(&format!(
        "<h2 id=\"chart-heading\">{}</h2><p>Total {} kWh; {} of {} positions received. \
         <a href=\"?month={}\">Month</a></p>",
        esc(&heading),
        series.total_kwh,
        series.received_positions,
        series.expected_positions,
        month.format("%Y-%m")
    ));
    let day_links = series.aggregate == Aggregate::Day;
    body.push_str(&chart(&series, |b| {
        b.start
            .with_timezone(&chrono_tz::Europe::Copenhagen)
            .format(if day_links { "%Y-%m-%d" } else { "%H:%M" })
            .to_string()
    }));
    if day_links && !series.buckets.is_empty() {
        body.push_str("<p>Days: ");
        for b in &series.buckets {
            let day = b
                .start
                .with_timezone(&chrono_tz::Europe::Copenhagen)
                .date_naive();
            body.push_str(&format!("<a href=\"?day={day}\">{}</a> ", day.day()));
        }
        body.push_str("</p>");
    }

    body.push_str(&format!("<h2>Settlement {}</h2>", month.format("%Y-%m")));
    match settlements::load_latest(pool, &gsrn, month).await? {
        None => body.push_str(
            "<p class=\"muted\" id=\"no-settlement\">No provisional settlement for this month.</p>",
        ),
        Some(settlement) => {
            body.push_str(&format!(
                "<p>Version {}: {} DKK excl. VAT, {} DKK incl. VAT ({} of {} days settled).</p>\
                 <table id=\"statement-lines\"><tr><th>#</th><th>Line</th><th>Charge (owner/type/code)</th>\
                 <th>Quantity</th><th>Unit price</th><th>Amount</th></tr>",
                settlement.totals.version,
                settlement.totals.total_excl_vat,
                settlement.totals.total_incl_vat,
                settlement.totals.days_settled,
                settlement.totals.days_in_month
            ));
            for l in &settlement.lines {
                let charge = match (&l.charge_owner_gln, &l.charge_type, &l.charge_code) {
                    (None, None, None) => String::new(),
                    (o, t, c) => format!(
                        "{} / {} / {}",
                        o.as_deref().unwrap_or("-"),
                        t.as_deref().unwrap_or("-"),
                        c.as_deref().unwrap_or("-")
                    ),
                };
                body.push_str(&format!(
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{} {}</td><td class=\"num\">{}</td>\
                     <td class=\"num\">{}</td></tr>",
                    l.line_no,
                    esc(&l.description),
                    esc(&charge),
                    l.quantity,
                    esc(&l.quantity_unit),
                    l.unit_price,
                    l.amount
                ));
            }
            body.push_str(
                "</table><h3>Versions</h3><table id=\"versions\"><tr><th>Version</th>\
                <th>Excl. VAT</th><th>Incl. VAT</th><th>Days</th><th>Computed</th></tr>",
            );
            for v in settlements::load_versions(pool, &gsrn, month).await? {
                body.push_str(&format!(
                    "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}/{}</td><td>{}</td></tr>",
                    v.version,
                    v.total_excl_vat,
                    v.total_incl_vat,
                    v.days_settled,
                    v.days_in_month,
                    v.computed_at.format("%Y-%m-%d %H:%M:%S UTC")
                ));
            }
            body.push_str(&format!(
                "</table><p><a href=\"/v1/settlements/{0}/{1}/explain\">Inputs of each line (JSON, needs the header token)</a></p>",
                esc(&gsrn),
                month.format("%Y-%m")
            ));
        }
    }
    Ok(layout(&format!("Metering point {gsrn}"), &body))
}

/// Our supply periods and the metering point's business processes (status, DataHub's reasons
/// of a rejection) from the portfolio's read model: customer numbers only, no personal data.
async fn portfolio_section(pool: &sqlx::PgPool, gsrn: &str) -> Result<String, ApiError> {
    use afregning_portfolio::read_model;
    let periods = read_model::periods(pool, gsrn).await?;
    let processes = read_model::processes(pool, gsrn).await?;
    if periods.is_empty() && processes.is_empty() {
        return Ok(
            "<h2>Portfolio</h2><p class=\"muted\" id=\"no-portfolio\">No business \
                   process of ours on this metering point.</p>"
                .into(),
        );
    }
    let mut html = String::from(
        "<h2>Portfolio</h2><table id=\"supply-periods\"><tr><th>Supplied from</th><th>To</th>\
         <th>Customer</th><th>Started by</th><th>Rolled back by</th></tr>",
    );
    for p in &periods {
        html.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            p.valid_from,
            p.valid_to.map(|d| d.to_string()).unwrap_or_default(),
            esc(p.customer_key.as_deref().unwrap_or("")),
            esc(&p.started_by),
            esc(p.retired_by.as_deref().unwrap_or(""))
        ));
    }
    html.push_str(
        "</table><table id=\"processes\"><tr><th>Process</th><th>Kind</th><th>Effective</th>\
         <th>Status</th><th>Took effect</th><th>Reasons</th></tr>",
    );
    for p in &processes {
        let reasons: Vec<String> = p
            .reasons
            .as_array()
            .map(|list| {
                list.iter()
                    .map(|r| {
                        format!(
                            "{} {}",
                            r["code"].as_str().unwrap_or(""),
                            r["text"].as_str().unwrap_or("")
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        html.push_str(&format!(
            "<tr><td>{}</td><td>{} {}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&p.process_id),
            esc(p.brs.as_deref().unwrap_or("")),
            esc(&p.kind),
            p.effective,
            esc(&p.status),
            p.took_effect_on.map(|d| d.to_string()).unwrap_or_default(),
            esc(&reasons.join("; "))
        ));
    }
    html.push_str("</table>");
    Ok(html)
}

async fn dead_letter_queue(State(state): State<AppState>) -> Response {
    let letters =
        match dead_letters::unresolved(&state.pool, &dead_letters::ListQuery::default()).await {
            Ok(letters) => letters,
            Err(error) => return page_error(error),
        };
    let mut body = String::from(
        "<table id=\"dead-letters\"><tr><th>Failed</th><th>Component</th><th>Class</th><th>Reason</th>\
         <th>Source</th><th>Message</th><th>Resolve</th></tr>",
    );
    for d in &letters {
        body.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}[{}]@{}</td><td>{}</td><td>\
             <form method=\"post\" action=\"/console/dead-letters/resolve\" class=\"resolve\">\
             <input type=\"hidden\" name=\"source_topic\" value=\"{}\">\
             <input type=\"hidden\" name=\"source_partition\" value=\"{}\">\
             <input type=\"hidden\" name=\"source_offset\" value=\"{}\">\
             <input name=\"note\" placeholder=\"what was done\" required>\
             <button type=\"submit\">Resolve</button></form></td></tr>",
            d.failed_at.format("%Y-%m-%d %H:%M:%S"),
            esc(&d.component),
            esc(&d.error_class),
            esc(&d.reason),
            esc(&d.source_topic),
            d.source_partition,
            d.source_offset,
            esc(d.source_message_id.as_deref().unwrap_or("")),
            esc(&d.source_topic),
            d.source_partition,
            d.source_offset
        ));
    }
    body.push_str("</table>");
    if letters.is_empty() {
        body.push_str("<p id=\"queue-empty\">No unresolved dead letters.</p>");
    }
    layout("Dead letters", &body).into_response()
}

#[derive(Debug, Deserialize)]
struct ResolveForm {
    source_topic: String,
    source_partition: i32,
    source_offset: i64,
    note: String,
}

async fn resolve(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Extension(request_id): Extension<RequestId>,
    Form(form): Form<ResolveForm>,
) -> Response {
    let body = dead_letters::Resolve {
        source_topic: form.source_topic,
        source_partition: form.source_partition,
        source_offset: form.source_offset,
        note: Some(form.note),
    };
    match dead_letters::resolve_one(&state.pool, &caller, &request_id, &body).await {
        Ok(_) => Redirect::to("/console/dead-letters").into_response(),
        Err(error) => page_error(error),
    }
}

async fn lag(State(state): State<AppState>) -> Response {
    let rows = match operations::load_lag(&state).await {
        Ok(rows) => rows,
        Err(error) => return page_error(error),
    };
    let mut body = String::from(
        "<table id=\"lag\"><tr><th>Consumer</th><th>Topic</th><th>Partition</th><th>Next offset</th>\
         <th>End</th><th>Lag</th><th>Last move</th></tr>",
    );
    for r in &rows {
        body.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td><td>{} s ago</td></tr>",
            esc(&r.consumer),
            esc(&r.topic),
            r.partition,
            r.next_offset,
            r.end_offset
                .map(|v| v.to_string())
                .unwrap_or_else(|| "?".into()),
            r.lag.map(|v| v.to_string()).unwrap_or_else(|| "?".into()),
            r.seconds_since_update
        ));
    }
    body.push_str("</table>");
    body.push_str(&processor_lag_table(&state).await);
    layout("Pipeline lag", &body).into_response()
}

/// The replay runs, newest first (the API starts them: `POST /v1/replay-runs`,
/// `POST /v1/dead-letters/resubmit`).
async fn replay_runs(State(state): State<AppState>) -> Response {
    let runs = match state.pool.acquire().await {
        Ok(mut conn) => afregning_processors::replay::runs::list(&mut conn, 100)
            .await
            .map_err(ApiError::from),
        Err(error) => Err(ApiError::from(error)),
    };
    let runs = match runs {
        Ok(runs) => runs,
        Err(error) => return page_error(error),
    };
    let mut body = String::from(
        "<table id=\"replay-runs\"><tr><th>Run</th><th>Kind</th><th>State</th><th>Processor</th>\
         <th>Partitions</th><th>By</th><th>Why</th><th>Started</th><th>Ended</th></tr>",
    );
    for r in &runs {
        body.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:?}</td><td>{}</td><td>{}</td>\
             <td>{}</td><td>{}</td></tr>",
            esc(&r.run_id),
            esc(&r.kind),
            esc(&r.state),
            esc(&r.processor),
            r.partitions,
            esc(&r.operator),
            esc(&r.reason),
            r.started_at.format("%Y-%m-%d %H:%M:%S UTC"),
            r.ended_at
                .map(|e| e.format("%Y-%m-%d %H:%M:%S UTC").to_string())
                .unwrap_or_default(),
        ));
    }
    body.push_str("</table>");
    layout("Replay runs", &body).into_response()
}

/// The processors' groups' lag, or why it is not shown.
async fn processor_lag_table(state: &AppState) -> String {
    let rows = match operations::load_processor_lag(state).await {
        Ok(rows) => rows,
        Err(error) => {
            return format!(
                "<h2>Processors</h2><p id=\"processor-lag-missing\">{}</p>",
                esc(&error.to_string())
            );
        }
    };
    let mut out = String::from(
        "<h2>Processors</h2><p>Committed offsets of each processor's group (the runtime's mirror \
         of the positions it commits with its state) against each input partition's end, read \
         from the records.</p><table id=\"processor-lag\"><tr><th>Group</th><th>Topic</th>\
         <th>Partition</th><th>Committed</th><th>End</th><th>Lag</th></tr>",
    );
    let shown = |v: Option<i64>| v.map_or_else(|| "none".to_string(), |v| v.to_string());
    for r in &rows {
        out.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            esc(&r.group),
            esc(&r.topic),
            r.partition,
            shown(r.committed_offset),
            r.end_offset,
            shown(r.lag),
        ));
    }
    out.push_str("</table>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_covers_markup_and_quotes() {
        assert_eq!(
            esc("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }
}

//! The OpenAPI document: served at `/openapi.json`, read by an OpenAPI 3.1
//! parser (`oas3`; utoipa writes 3.1, which `openapiv3` cannot read), and in step with the router both ways: every route
//! the router declares (read from `api/src/lib.rs`, where they are) is in the
//! document with its method, and every path in the document is served (not
//! 404 or 405 on the router).

use std::collections::BTreeSet;
use std::sync::Arc;

use afregning_api::auth::{AuthConfig, Authenticator};
use afregning_api::{AppState, router};

/// (method, path) of every route in `lib.rs`'s router, from its `.route(` calls.
fn declared_routes() -> BTreeSet<(String, String)> {
    let source = include_str!("../src/lib.rs");
    let body = &source[source.find("pub fn router(").expect("the router function")..];
    let body = &body[..body.find("\n}\n").expect("its end")];
    let mut out = BTreeSet::new();
    for chunk in body.split(".route(").skip(1) {
        let path = chunk
            .split('"')
            .nth(1)
            .expect("a route's path literal")
            .to_string();
        for method in ["get", "post", "put", "delete", "patch"] {
            if chunk.contains(&format!("{method}(")) {
                out.insert((method.to_string(), path.clone()));
            }
        }
    }
    out
}

/// Routes that are not the API: the document itself and its page.
const META: &[&str] = &["/openapi.json", "/docs"];

#[tokio::test]
async fn the_document_parses_and_lists_every_route() {
    let pool = sqlx::postgres::PgPoolOptions::new()
        .acquire_timeout(std::time::Duration::from_millis(200))
        .connect_lazy("postgres://nobody@127.0.0.1:1/nothing")
        .expect("a lazy pool");
    let authenticator = Authenticator::new(AuthConfig {
        hs256_secret: Some("an openapi test secret of 32 bytes".into()),
        ..AuthConfig::default()
    })
    .expect("an authenticator");
    let app = router(AppState {
        pool,
        render_metrics: Arc::new(String::new),
        authenticator,
        broker: None,
        products: None,
        supplier_gln: None,
        connector_metrics_url: None,
        portfolio_keys: None,
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port");
    let addr = listener.local_addr().expect("an address");
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let http = reqwest::Client::new();
    let text = http
        .get(format!("http://{addr}/openapi.json"))
        .send()
        .await
        .expect("served")
        .text()
        .await
        .expect("a body");
    let doc = oas3::from_json(&text).expect("an OpenAPI 3.1 document");
    assert!(doc.openapi.starts_with("3."), "{}", doc.openapi);

    let mut documented = BTreeSet::new();
    for (path, item) in doc.paths.as_ref().expect("paths") {
        for (method, operation) in item.methods() {
            let method = method.as_str().to_lowercase();
            if path.starts_with("/v1/") {
                assert!(
                    !operation.security.is_empty(),
                    "{method} {path} does not say it needs a bearer token"
                );
            }
            documented.insert((method, path.clone()));
        }
    }
    let declared = declared_routes();
    let api_routes: BTreeSet<_> = declared
        .iter()
        .filter(|(_, p)| !META.contains(&p.as_str()) && !p.starts_with("/console"))
        .cloned()
        .collect();
    assert!(api_routes.len() >= 15, "{api_routes:?}");
    let missing: Vec<_> = api_routes.difference(&documented).collect();
    assert!(
        missing.is_empty(),
        "routes not in the OpenAPI document: {missing:?}"
    );
    let extra: Vec<_> = documented.difference(&api_routes).collect();
    assert!(extra.is_empty(), "documented but not routed: {extra:?}");

    // Every documented path is served: its method is routed (401, not 404/405).
    for (method, path) in &documented {
        let concrete = path
            .replace("{gsrn}", "571313180400012345")
            .replace("{month}", "2026-03")
            .replace("{date}", "2026-03-01")
            .replace("{grid_area}", "344")
            .replace("{run_id}", "1")
            .replace("{topic}", "raw")
            .replace("{partition}", "0")
            .replace("{offset}", "1");
        let request = http.request(
            method.to_uppercase().parse().expect("a method"),
            format!("http://{addr}{concrete}"),
        );
        let status = request.send().await.expect("an answer").status().as_u16();
        assert!(status != 404 && status != 405, "{method} {path}: {status}");
    }
    println!(
        "{} operations documented and routed; document {} bytes",
        documented.len(),
        text.len()
    );
    server.abort();
}

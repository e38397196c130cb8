//! The REST endpoints, shaped like Confluent Schema Registry's.

use std::collections::HashMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::RegistryError;
use crate::compatibility::CompatibilityLevel;
use crate::store::{Store, SubjectVersion};

const CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";

type ApiResult = Result<Response, RegistryError>;

fn reply(value: Value) -> Response {
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], value.to_string()).into_response()
}

/// The registry's routes over a [`Store`].
pub fn router(store: Store) -> Router {
    Router::new()
        .route("/", get(|| async { reply(json!({})) }))
        .route("/subjects", get(list_subjects))
        .route(
            "/subjects/{subject}",
            post(lookup_schema).delete(delete_subject),
        )
        .route(
            "/subjects/{subject}/versions",
            get(list_versions).post(register),
        )
        .route("/subjects/{subject}/versions/{version}", get(get_version))
        .route(
            "/subjects/{subject}/versions/{version}/schema",
            get(get_version_schema),
        )
        .route("/schemas/ids/{id}", get(get_schema_by_id))
        .route("/schemas/ids/{id}/schema", get(get_raw_schema_by_id))
        .route(
            "/compatibility/subjects/{subject}/versions",
            post(check_all),
        )
        .route(
            "/compatibility/subjects/{subject}/versions/{version}",
            post(check_version),
        )
        .route("/config", get(get_global_config).put(put_global_config))
        .route(
            "/config/{subject}",
            get(get_subject_config)
                .put(put_subject_config)
                .delete(delete_subject_config),
        )
        .with_state(store)
}

/// The body of register, lookup and compatibility requests.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SchemaRequest {
    schema: String,
    #[serde(default)]
    schema_type: Option<String>,
    #[serde(default)]
    references: Vec<Value>,
}

/// Parses the body leniently about Content-Type (curl users forget it) and
/// strictly about content: only Avro without references is supported.
fn schema_request(body: &Bytes) -> Result<SchemaRequest, RegistryError> {
    let request: SchemaRequest =
        serde_json::from_slice(body).map_err(|e| RegistryError::BadRequestBody(e.to_string()))?;
    match request.schema_type.as_deref() {
        None | Some("AVRO") => {}
        Some(other) => {
            return Err(RegistryError::InvalidSchema(format!(
                "schema type {other} is not supported by this registry (Avro only)"
            )));
        }
    }
    if !request.references.is_empty() {
        return Err(RegistryError::InvalidSchema(
            "schema references are not supported by this registry".to_string(),
        ));
    }
    Ok(request)
}

fn version_json(v: &SubjectVersion) -> Value {
    json!({ "subject": v.subject, "version": v.version, "id": v.id, "schema": v.schema })
}

async fn list_subjects(State(store): State<Store>) -> ApiResult {
    Ok(reply(json!(store.subjects().await?)))
}

async fn list_versions(State(store): State<Store>, Path(subject): Path<String>) -> ApiResult {
    let versions: Vec<i32> = store
        .versions(&subject)
        .await?
        .iter()
        .map(|v| v.version)
        .collect();
    Ok(reply(json!(versions)))
}

async fn register(
    State(store): State<Store>,
    Path(subject): Path<String>,
    body: Bytes,
) -> ApiResult {
    let request = schema_request(&body)?;
    let id = store.register(&subject, &request.schema).await?;
    Ok(reply(json!({ "id": id })))
}

async fn lookup_schema(
    State(store): State<Store>,
    Path(subject): Path<String>,
    body: Bytes,
) -> ApiResult {
    let request = schema_request(&body)?;
    Ok(reply(version_json(
        &store.lookup(&subject, &request.schema).await?,
    )))
}

async fn delete_subject(
    State(store): State<Store>,
    Path(subject): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> ApiResult {
    let permanent = query.get("permanent").is_some_and(|v| v == "true");
    Ok(reply(json!(
        store.delete_subject(&subject, permanent).await?
    )))
}

async fn get_version(
    State(store): State<Store>,
    Path((subject, version)): Path<(String, String)>,
) -> ApiResult {
    Ok(reply(version_json(
        &store.version(&subject, &version).await?,
    )))
}

async fn get_version_schema(
    State(store): State<Store>,
    Path((subject, version)): Path<(String, String)>,
) -> ApiResult {
    let found = store.version(&subject, &version).await?;
    Ok(([(header::CONTENT_TYPE, CONTENT_TYPE)], found.schema).into_response())
}

fn parse_id(id: &str) -> Result<i32, RegistryError> {
    id.parse()
        .map_err(|_| RegistryError::SchemaNotFound(id.to_string()))
}

async fn get_schema_by_id(State(store): State<Store>, Path(id): Path<String>) -> ApiResult {
    let schema = store.schema_by_id(parse_id(&id)?).await?;
    Ok(reply(json!({ "schema": schema })))
}

async fn get_raw_schema_by_id(State(store): State<Store>, Path(id): Path<String>) -> ApiResult {
    let schema = store.schema_by_id(parse_id(&id)?).await?;
    Ok(([(header::CONTENT_TYPE, CONTENT_TYPE)], schema).into_response())
}

fn compatibility_reply(reasons: Vec<String>, query: &HashMap<String, String>) -> Response {
    let mut body = json!({ "is_compatible": reasons.is_empty() });
    if query.get("verbose").is_some_and(|v| v == "true") {
        body["messages"] = json!(reasons);
    }
    reply(body)
}

async fn check_all(
    State(store): State<Store>,
    Path(subject): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    body: Bytes,
) -> ApiResult {
    let request = schema_request(&body)?;
    let reasons = store.check(&subject, None, &request.schema).await?;
    Ok(compatibility_reply(reasons, &query))
}

async fn check_version(
    State(store): State<Store>,
    Path((subject, version)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    body: Bytes,
) -> ApiResult {
    let request = schema_request(&body)?;
    let reasons = store
        .check(&subject, Some(&version), &request.schema)
        .await?;
    Ok(compatibility_reply(reasons, &query))
}

#[derive(Debug, Deserialize)]
struct ConfigRequest {
    compatibility: String,
}

fn config_request(body: &Bytes) -> Result<CompatibilityLevel, RegistryError> {
    let request: ConfigRequest =
        serde_json::from_slice(body).map_err(|e| RegistryError::BadRequestBody(e.to_string()))?;
    CompatibilityLevel::parse(&request.compatibility)
}

async fn get_global_config(State(store): State<Store>) -> ApiResult {
    Ok(reply(
        json!({ "compatibilityLevel": store.global_level().await?.as_str() }),
    ))
}

async fn put_global_config(State(store): State<Store>, body: Bytes) -> ApiResult {
    let level = config_request(&body)?;
    store.set_level(None, level).await?;
    Ok(reply(json!({ "compatibility": level.as_str() })))
}

async fn get_subject_config(
    State(store): State<Store>,
    Path(subject): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> ApiResult {
    let level = match store.subject_level(&subject).await? {
        Some(level) => level,
        None if query.get("defaultToGlobal").is_some_and(|v| v == "true") => {
            store.global_level().await?
        }
        None => return Err(RegistryError::SubjectConfigNotFound(subject)),
    };
    Ok(reply(json!({ "compatibilityLevel": level.as_str() })))
}

async fn put_subject_config(
    State(store): State<Store>,
    Path(subject): Path<String>,
    body: Bytes,
) -> ApiResult {
    let level = config_request(&body)?;
    store.set_level(Some(&subject), level).await?;
    Ok(reply(json!({ "compatibility": level.as_str() })))
}

async fn delete_subject_config(
    State(store): State<Store>,
    Path(subject): Path<String>,
) -> ApiResult {
    match store.delete_subject_level(&subject).await? {
        Some(level) => Ok(reply(json!({ "compatibilityLevel": level.as_str() }))),
        None => Err(RegistryError::SubjectConfigNotFound(subject)),
    }
}

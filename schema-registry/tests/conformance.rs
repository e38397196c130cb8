//! Conformance of `afregning schema-registry` with the Confluent REST subset the
//! pipeline uses, against a real PostgreSQL. Each test gets its own database
//! schema, so tests run in parallel and leave nothing behind.

use std::path::Path;

use afregning_schema_registry::{RegistryConfig, RunningRegistry, spawn};
use apache_avro::types::Value as AvroValue;
use schema_registry_converter::async_impl::easy_avro::{EasyAvroDecoder, EasyAvroEncoder};
use schema_registry_converter::async_impl::schema_registry::{
    SrSettings, get_all_subjects, get_all_versions, get_schema_by_id, post_schema,
};
use schema_registry_converter::schema_registry_common::{
    SchemaType, SubjectNameStrategy, SuppliedSchema,
};
use serde_json::{Value, json};

const V1: &str = r#"{"type":"record","name":"Reading","namespace":"afregning.test","fields":[{"name":"gsrn","type":"string"},{"name":"kwh","type":"long"}]}"#;
const V2_COMPATIBLE: &str = r#"{"type":"record","name":"Reading","namespace":"afregning.test","fields":[{"name":"gsrn","type":"string"},{"name":"kwh","type":"long"},{"name":"quality","type":"string","default":"A04"}]}"#;
const V2_INCOMPATIBLE: &str = r#"{"type":"record","name":"Reading","namespace":"afregning.test","fields":[{"name":"gsrn","type":"string"},{"name":"kwh","type":"long"},{"name":"quality","type":"string"}]}"#;

struct Harness {
    registry: Option<RunningRegistry>,
    config: RegistryConfig,
    http: reqwest::Client,
}

impl Harness {
    async fn new() -> Self {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let dir = afregning_stack::StackDir::for_workspace(&root);
        let database_url =
            tokio::task::spawn_blocking(move || afregning_stack::ensure_postgres(&dir))
                .await
                .expect("join")
                .expect("PostgreSQL for the registry tests")
                .url()
                .to_string();
        let config = RegistryConfig {
            database_url,
            db_schema: format!("sr_test_{}", uuid::Uuid::new_v4().simple()),
        };
        let registry = spawn(config.clone(), "127.0.0.1:0".parse().expect("addr"))
            .await
            .expect("registry starts");
        Self {
            registry: Some(registry),
            config,
            http: reqwest::Client::new(),
        }
    }

    fn url(&self) -> String {
        self.registry.as_ref().expect("running").url.clone()
    }

    fn settings(&self) -> SrSettings {
        SrSettings::new(self.url())
    }

    async fn restart(&mut self) {
        if let Some(registry) = self.registry.take() {
            registry.shutdown().await;
        }
        self.registry = Some(
            spawn(self.config.clone(), "127.0.0.1:0".parse().expect("addr"))
                .await
                .expect("registry restarts"),
        );
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.url()))
            .header("Content-Type", "application/vnd.schemaregistry.v1+json");
        if let Some(body) = body {
            request = request.body(body.to_string());
        }
        let response = request.send().await.expect("http");
        let status = response.status().as_u16();
        let text = response.text().await.expect("body");
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn register(&self, subject: &str, schema: &str) -> (u16, Value) {
        self.call(
            reqwest::Method::POST,
            &format!("/subjects/{subject}/versions"),
            Some(json!({ "schema": schema })),
        )
        .await
    }

    async fn cleanup(mut self) {
        if let Some(registry) = self.registry.take() {
            registry.shutdown().await;
        }
        let pool = sqlx::PgPool::connect(&self.config.database_url)
            .await
            .expect("pool");
        sqlx::query(&format!(
            "DROP SCHEMA \"{}\" CASCADE",
            self.config.db_schema
        ))
        .execute(&pool)
        .await
        .expect("drop test schema");
    }
}

fn avro(schema: &str) -> SuppliedSchema {
    SuppliedSchema::new(None, SchemaType::Avro, schema.to_string())
}

#[tokio::test]
async fn register_and_read_back_through_the_standard_client() {
    let h = Harness::new().await;
    let sr = h.settings();
    let registered = post_schema(&sr, "readings-value".to_string(), avro(V1))
        .await
        .expect("register");
    let by_id = get_schema_by_id(registered.id, &sr).await.expect("by id");
    assert_eq!(
        serde_json::from_str::<Value>(&by_id.schema).expect("json"),
        serde_json::from_str::<Value>(V1).expect("json")
    );
    // Registering the same schema again (even reformatted) returns the same id.
    let pretty = serde_json::to_string_pretty(&serde_json::from_str::<Value>(V1).expect("json"))
        .expect("pretty");
    let again = post_schema(&sr, "readings-value".to_string(), avro(&pretty))
        .await
        .expect("again");
    assert_eq!(again.id, registered.id);
    // The same schema under another subject gets the same global id, as in Confluent's registry.
    let other = post_schema(&sr, "other-value".to_string(), avro(V1))
        .await
        .expect("other subject");
    assert_eq!(other.id, registered.id);
    let v2 = post_schema(&sr, "readings-value".to_string(), avro(V2_COMPATIBLE))
        .await
        .expect("v2");
    assert!(v2.id > registered.id);
    assert_eq!(
        get_all_versions(&sr, "readings-value".to_string())
            .await
            .expect("versions"),
        vec![1, 2]
    );
    let mut subjects = get_all_subjects(&sr).await.expect("subjects");
    subjects.sort();
    assert_eq!(
        subjects,
        vec!["other-value".to_string(), "readings-value".to_string()]
    );
    let (status, latest) = h
        .call(
            reqwest::Method::GET,
            "/subjects/readings-value/versions/latest",
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(latest["version"], 2);
    assert_eq!(latest["id"], v2.id);
    let (status, first) = h
        .call(
            reqwest::Method::GET,
            "/subjects/readings-value/versions/1",
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(first["id"], registered.id);
    h.cleanup().await;
}

#[tokio::test]
async fn confluent_wire_format_round_trip_through_the_registry() {
    let h = Harness::new().await;
    let encoder = EasyAvroEncoder::new(h.settings());
    let decoder = EasyAvroDecoder::new(h.settings());
    let strategy = SubjectNameStrategy::TopicNameStrategyWithSchema(
        "afregning.test.readings.v1".to_string(),
        false,
        avro(V1),
    );
    let bytes = encoder
        .encode(
            vec![
                ("gsrn", AvroValue::String("571313000000002000".into())),
                ("kwh", AvroValue::Long(42)),
            ],
            strategy,
        )
        .await
        .expect("encode");
    assert_eq!(bytes[0], 0, "Confluent magic byte");
    let decoded = decoder.decode(Some(&bytes)).await.expect("decode");
    assert_eq!(
        decoded.value,
        AvroValue::Record(vec![
            (
                "gsrn".to_string(),
                AvroValue::String("571313000000002000".into())
            ),
            ("kwh".to_string(), AvroValue::Long(42)),
        ])
    );
    h.cleanup().await;
}

#[tokio::test]
async fn a_backward_incompatible_change_is_rejected_with_409() {
    let h = Harness::new().await;
    assert_eq!(h.register("s-value", V1).await.0, 200);
    let (status, body) = h.register("s-value", V2_INCOMPATIBLE).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error_code"], 409);
    // The compatibility endpoint says the same, without registering.
    let (status, body) = h
        .call(
            reqwest::Method::POST,
            "/compatibility/subjects/s-value/versions/latest?verbose=true",
            Some(json!({ "schema": V2_INCOMPATIBLE })),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["is_compatible"], false);
    assert!(!body["messages"].as_array().expect("messages").is_empty());
    let (_, body) = h
        .call(
            reqwest::Method::POST,
            "/compatibility/subjects/s-value/versions",
            Some(json!({ "schema": V2_COMPATIBLE })),
        )
        .await;
    assert_eq!(body["is_compatible"], true);
    // With the subject set to NONE the same change is accepted.
    let (status, body) = h
        .call(
            reqwest::Method::PUT,
            "/config/s-value",
            Some(json!({ "compatibility": "NONE" })),
        )
        .await;
    assert_eq!(
        (status, body["compatibility"].clone()),
        (200, json!("NONE"))
    );
    assert_eq!(h.register("s-value", V2_INCOMPATIBLE).await.0, 200);
    h.cleanup().await;
}

#[tokio::test]
async fn errors_carry_confluent_codes() {
    let h = Harness::new().await;
    let get = |path: &'static str| h.call(reqwest::Method::GET, path, None);
    let (status, body) = get("/subjects/missing-value/versions").await;
    assert_eq!((status, body["error_code"].clone()), (404, json!(40401)));
    let (status, body) = get("/schemas/ids/987654").await;
    assert_eq!((status, body["error_code"].clone()), (404, json!(40403)));
    assert_eq!(h.register("e-value", V1).await.0, 200);
    let (status, body) = get("/subjects/e-value/versions/7").await;
    assert_eq!((status, body["error_code"].clone()), (404, json!(40402)));
    let (status, body) = get("/subjects/e-value/versions/abc").await;
    assert_eq!((status, body["error_code"].clone()), (422, json!(42202)));
    let (status, body) = h
        .register(
            "e-value",
            r#"{"type":"record","name":"X","fields":[{"name":"a"}]}"#,
        )
        .await;
    assert_eq!((status, body["error_code"].clone()), (422, json!(42201)));
    let (status, body) = h.register("e-value", "not json").await;
    assert_eq!((status, body["error_code"].clone()), (422, json!(42201)));
    let (status, body) = h
        .call(
            reqwest::Method::PUT,
            "/config",
            Some(json!({ "compatibility": "SIDEWAYS" })),
        )
        .await;
    assert_eq!((status, body["error_code"].clone()), (422, json!(42203)));
    let (status, body) = h
        .call(
            reqwest::Method::POST,
            "/subjects/e-value",
            Some(json!({ "schema": V2_COMPATIBLE })),
        )
        .await;
    assert_eq!((status, body["error_code"].clone()), (404, json!(40403)));
    let (status, body) = get("/config/e-value").await;
    assert_eq!((status, body["error_code"].clone()), (404, json!(40408)));
    h.cleanup().await;
}

#[tokio::test]
async fn compatibility_defaults_to_backward_and_is_configurable() {
    let h = Harness::new().await;
    let (_, body) = h.call(reqwest::Method::GET, "/config", None).await;
    assert_eq!(body["compatibilityLevel"], "BACKWARD");
    let (_, body) = h
        .call(
            reqwest::Method::GET,
            "/config/x-value?defaultToGlobal=true",
            None,
        )
        .await;
    assert_eq!(body["compatibilityLevel"], "BACKWARD");
    h.call(
        reqwest::Method::PUT,
        "/config",
        Some(json!({ "compatibility": "full_transitive" })),
    )
    .await;
    let (_, body) = h.call(reqwest::Method::GET, "/config", None).await;
    assert_eq!(body["compatibilityLevel"], "FULL_TRANSITIVE");
    h.call(
        reqwest::Method::PUT,
        "/config/x-value",
        Some(json!({ "compatibility": "FORWARD" })),
    )
    .await;
    let (_, body) = h.call(reqwest::Method::GET, "/config/x-value", None).await;
    assert_eq!(body["compatibilityLevel"], "FORWARD");
    let (status, _) = h
        .call(reqwest::Method::DELETE, "/config/x-value", None)
        .await;
    assert_eq!(status, 200);
    let (status, _) = h.call(reqwest::Method::GET, "/config/x-value", None).await;
    assert_eq!(status, 404);
    h.cleanup().await;
}

#[tokio::test]
async fn ids_survive_a_restart_and_are_never_reused() {
    let mut h = Harness::new().await;
    let (_, first) = h.register("keep-value", V1).await;
    let first_id = first["id"].as_i64().expect("id");
    h.restart().await;
    let (status, body) = h
        .call(
            reqwest::Method::GET,
            &format!("/schemas/ids/{first_id}"),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert!(body["schema"].as_str().expect("schema").contains("Reading"));
    // Permanently deleting the subject keeps the id resolvable and never hands it out again.
    let (status, _) = h
        .call(
            reqwest::Method::DELETE,
            "/subjects/keep-value?permanent=true",
            None,
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = h
        .call(
            reqwest::Method::GET,
            &format!("/schemas/ids/{first_id}"),
            None,
        )
        .await;
    assert_eq!(status, 200);
    let (_, second) = h.register("keep-value", V2_COMPATIBLE).await;
    assert!(second["id"].as_i64().expect("id") > first_id);
    h.cleanup().await;
}

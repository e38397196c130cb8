//! Errors with Confluent Schema Registry's HTTP statuses and error codes, so
//! that any Confluent client (ours is `schema_registry_converter`) understands them.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// Everything the registry can answer with besides success.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// 404 / 40401.
    #[error("Subject '{0}' not found.")]
    SubjectNotFound(String),
    /// 404 / 40402.
    #[error("Version {0} not found.")]
    VersionNotFound(String),
    /// 404 / 40403.
    #[error("Schema {0} not found")]
    SchemaNotFound(String),
    /// 404 / 40408: the subject has no subject-level compatibility configured.
    #[error("Subject '{0}' does not have subject-level compatibility configured")]
    SubjectConfigNotFound(String),
    /// 409: the schema breaks the subject's compatibility rule.
    #[error(
        "Schema being registered is incompatible with an earlier schema for subject \"{subject}\": {details}"
    )]
    Incompatible {
        /// The subject.
        subject: String,
        /// Why, in terms of the Avro resolution rules.
        details: String,
    },
    /// 422 / 42201.
    #[error("Invalid schema: {0}")]
    InvalidSchema(String),
    /// 422 / 42202.
    #[error(
        "The specified version '{0}' is not a valid version id. Allowed values are between [1, 2^31-1] and the string \"latest\""
    )]
    InvalidVersion(String),
    /// 422 / 42203.
    #[error(
        "Invalid compatibility level. Valid values are none, backward, forward, full, backward_transitive, forward_transitive, and full_transitive: {0}"
    )]
    InvalidCompatibilityLevel(String),
    /// 422 / 42201 for a body that is not the JSON the endpoint expects.
    #[error("Unprocessable request body: {0}")]
    BadRequestBody(String),
    /// 500 / 50001.
    #[error("Error in the backend data store: {0}")]
    Store(#[from] sqlx::Error),
    /// Cannot start (not an HTTP answer).
    #[error("cannot start the schema registry: {0}")]
    Startup(String),
}

impl RegistryError {
    /// Confluent's `(HTTP status, error_code)` for this error.
    pub fn codes(&self) -> (StatusCode, u32) {
        match self {
            RegistryError::SubjectNotFound(_) => (StatusCode::NOT_FOUND, 40401),
            RegistryError::VersionNotFound(_) => (StatusCode::NOT_FOUND, 40402),
            RegistryError::SchemaNotFound(_) => (StatusCode::NOT_FOUND, 40403),
            RegistryError::SubjectConfigNotFound(_) => (StatusCode::NOT_FOUND, 40408),
            RegistryError::Incompatible { .. } => (StatusCode::CONFLICT, 409),
            RegistryError::InvalidSchema(_) | RegistryError::BadRequestBody(_) => {
                (StatusCode::UNPROCESSABLE_ENTITY, 42201)
            }
            RegistryError::InvalidVersion(_) => (StatusCode::UNPROCESSABLE_ENTITY, 42202),
            RegistryError::InvalidCompatibilityLevel(_) => {
                (StatusCode::UNPROCESSABLE_ENTITY, 42203)
            }
            RegistryError::Store(_) | RegistryError::Startup(_) => {
                (StatusCode::INTERNAL_SERVER_ERROR, 50001)
            }
        }
    }
}

impl IntoResponse for RegistryError {
    fn into_response(self) -> Response {
        let (status, code) = self.codes();
        if status.is_server_error() {
            tracing::error!(error = %self, "schema registry store error");
        }
        let body = serde_json::json!({ "error_code": code, "message": self.to_string() });
        (
            status,
            [(
                axum::http::header::CONTENT_TYPE,
                "application/vnd.schemaregistry.v1+json",
            )],
            Json(body),
        )
            .into_response()
    }
}

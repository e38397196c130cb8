//! Who may do what: bearer JWTs (HS256 with a shared secret, RS256 with keys
//! from a JWKS file or URL) carrying roles, and one permission per route.
//!
//! The API issues no tokens: the supplier's identity provider does (RS256 and
//! a JWKS URL), or, for a small installation, an operator signs them with the
//! shared secret. A token's `roles` claim lists afregning roles; unknown
//! names are ignored, so one identity provider can serve several systems.
//!
//! | Permission | operator | backoffice | billing | readonly |
//! |---|---|---|---|---|
//! | `read` (metering points, metering data, settlements, statements, rates, products) | ✓ | ✓ | ✓ | ✓ |
//! | `read_operations` (lag, dead letters, audit log) | ✓ | ✓ | | ✓ |
//! | `export_billing` (billing run export) | | | ✓ | |
//! | `manage_products` (create/change the supplier's products, assignments, the default product) | | ✓ | | |
//! | `resolve_dead_letters` (resolve) | ✓ | | | |
//! | `request_datahub_data` (ask DataHub for its results again) | ✓ | | | |
//! | `replay` (re-submit dead letters, start replay runs) | ✓ | | | |
//! | `request_processes` (move-in, change of supplier, end of supply, cancel … at DataHub) | | ✓ | | |
//! | `read_personal_data` (customers' CPR/CVR and names; every read audited) | | ✓ | | |

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::ApiError;

/// The cookie the console keeps the pasted token in (`SameSite=Strict`, so
/// another site cannot make the browser send it).
pub const TOKEN_COOKIE: &str = "afregning_token";

/// A role a token may carry; what each allows is [`Permission::allows`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Runs the pipeline: dead letters, lag, replay.
    Operator,
    /// Customer service and product management: reads everything about a customer, changes products.
    Backoffice,
    /// The billing/ERP integration: reads settlements and exports billing runs.
    Billing,
    /// Looks, changes nothing (auditors, dashboards).
    Readonly,
}

impl Role {
    /// Every role, in the order of the documented matrix.
    pub const ALL: [Role; 4] = [
        Role::Operator,
        Role::Backoffice,
        Role::Billing,
        Role::Readonly,
    ];

    /// The role's name in tokens.
    pub fn name(self) -> &'static str {
        match self {
            Role::Operator => "operator",
            Role::Backoffice => "backoffice",
            Role::Billing => "billing",
            Role::Readonly => "readonly",
        }
    }

    fn from_name(name: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.name() == name)
    }
}

/// What a route needs; the one place that says which role may do what.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Permission {
    /// Read results and reference data.
    Read,
    /// Read the pipeline's state: lag, dead letters, the audit log.
    ReadOperations,
    /// Export a billing run.
    ExportBilling,
    /// Create and change the supplier's own products.
    ManageProducts,
    /// Mark dead letters resolved.
    ResolveDeadLetters,
    /// Ask DataHub for its calculation results (RSM-016, RSM-017): a message to the market
    /// under the supplier's name, so the operators who run the pipeline's DataHub side.
    RequestDataHubData,
    /// Re-submit dead letters and start replay runs: both put records into the
    /// pipeline again, so the operators who run it.
    Replay,
    /// Start and cancel DataHub business processes for a customer: customer service's work.
    RequestProcesses,
    /// Read customers' CPR/CVR and names: only those who serve customers.
    ReadPersonalData,
}

impl Permission {
    /// Every permission, in the order of the documented matrix.
    pub const ALL: [Permission; 9] = [
        Permission::Read,
        Permission::ReadOperations,
        Permission::ExportBilling,
        Permission::ManageProducts,
        Permission::ResolveDeadLetters,
        Permission::RequestDataHubData,
        Permission::Replay,
        Permission::RequestProcesses,
        Permission::ReadPersonalData,
    ];

    /// The role matrix (documented in this module and docs/api.md).
    pub fn allows(self, role: Role) -> bool {
        use Role::*;
        match self {
            Permission::Read => true,
            Permission::ReadOperations => matches!(role, Operator | Backoffice | Readonly),
            Permission::ExportBilling => role == Billing,
            Permission::ManageProducts => role == Backoffice,
            Permission::ResolveDeadLetters => role == Operator,
            Permission::RequestDataHubData => role == Operator,
            Permission::Replay => role == Operator,
            Permission::RequestProcesses => role == Backoffice,
            Permission::ReadPersonalData => role == Backoffice,
        }
    }

    /// Its name, as in error messages and the OpenAPI document.
    pub fn name(self) -> &'static str {
        match self {
            Permission::Read => "read",
            Permission::ReadOperations => "read_operations",
            Permission::ExportBilling => "export_billing",
            Permission::ManageProducts => "manage_products",
            Permission::ResolveDeadLetters => "resolve_dead_letters",
            Permission::RequestDataHubData => "request_datahub_data",
            Permission::Replay => "replay",
            Permission::RequestProcesses => "request_processes",
            Permission::ReadPersonalData => "read_personal_data",
        }
    }
}

/// The authenticated caller of a request, put in its extensions by the
/// permission layer; state-changing handlers write it into the audit row.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The token's subject (`sub`): who, in the identity provider's words.
    pub subject: String,
    /// The afregning roles the token carries.
    pub roles: Vec<Role>,
}

impl Caller {
    /// Whether any of the caller's roles allows `permission`.
    pub fn may(&self, permission: Permission) -> bool {
        self.roles.iter().any(|r| permission.allows(*r))
    }
}

#[derive(Debug, Deserialize)]
struct Claims {
    sub: String,
    #[serde(default)]
    roles: Vec<String>,
}

/// Where RS256 public keys come from.
#[derive(Debug, Clone)]
pub enum JwksSource {
    /// A JWKS document on disk.
    File(std::path::PathBuf),
    /// A JWKS document over HTTP(S), fetched at start.
    Url(String),
}

impl JwksSource {
    /// `http://...`/`https://...` is a URL, anything else a path.
    pub fn parse(text: &str) -> JwksSource {
        if text.starts_with("http://") || text.starts_with("https://") {
            JwksSource::Url(text.to_string())
        } else {
            JwksSource::File(text.into())
        }
    }

    /// Reads the key set; the error is a sentence for the operator.
    pub async fn load(&self) -> Result<JwkSet, String> {
        let text = match self {
            JwksSource::File(path) => std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read JWKS {}: {e}", path.display()))?,
            JwksSource::Url(url) => reqwest::get(url)
                .await
                .and_then(|r| r.error_for_status())
                .map_err(|e| format!("cannot fetch JWKS {url}: {e}"))?
                .text()
                .await
                .map_err(|e| format!("cannot read JWKS {url}: {e}"))?,
        };
        serde_json::from_str(&text).map_err(|e| format!("JWKS is not a key set: {e}"))
    }
}

/// How tokens are checked: which keys and which claims.
#[derive(Clone, Default)]
pub struct AuthConfig {
    /// The HS256 shared secret, if HS256 tokens are accepted.
    pub hs256_secret: Option<String>,
    /// RS256 public keys by key id, if RS256 tokens are accepted.
    pub rs256_keys: Option<JwkSet>,
    /// Required `iss`, if any.
    pub issuer: Option<String>,
    /// Required `aud`, if any.
    pub audience: Option<String>,
}

/// Checks bearer tokens; cheap to clone into every request.
#[derive(Clone)]
pub struct Authenticator {
    config: Arc<AuthConfig>,
    rs256: Arc<HashMap<Option<String>, DecodingKey>>,
}

/// Least length of an HS256 secret: shorter ones can be guessed offline from one token.
pub const MIN_SECRET_BYTES: usize = 32;

impl Authenticator {
    /// An authenticator over `config`; refuses a configuration that would accept nothing or a weak secret.
    pub fn new(config: AuthConfig) -> Result<Self, String> {
        if config.hs256_secret.is_none() && config.rs256_keys.is_none() {
            return Err(
                "no token keys configured: set AFREGNING_API_JWT_SECRET (HS256) or AFREGNING_API_JWKS (RS256)"
                    .into(),
            );
        }
        if let Some(secret) = &config.hs256_secret
            && secret.len() < MIN_SECRET_BYTES
        {
            return Err(format!(
                "the HS256 secret must have at least {MIN_SECRET_BYTES} bytes"
            ));
        }
        let mut rs256 = HashMap::new();
        if let Some(set) = &config.rs256_keys {
            for jwk in &set.keys {
                let key = DecodingKey::from_jwk(jwk)
                    .map_err(|e| format!("JWKS key {:?}: {e}", jwk.common.key_id))?;
                rs256.insert(jwk.common.key_id.clone(), key);
            }
        }
        Ok(Authenticator {
            config: Arc::new(config),
            rs256: Arc::new(rs256),
        })
    }

    /// The caller a token proves, or why not (always a 401).
    pub fn verify(&self, token: &str) -> Result<Caller, ApiError> {
        let unauthorized = ApiError::Unauthorized;
        let header = decode_header(token)
            .map_err(|e| unauthorized(format!("the bearer token is not a JWT: {e}")))?;
        let key = match header.alg {
            Algorithm::HS256 => self
                .config
                .hs256_secret
                .as_ref()
                .map(|s| DecodingKey::from_secret(s.as_bytes()))
                .ok_or_else(|| unauthorized("HS256 tokens are not accepted here".into()))?,
            Algorithm::RS256 => self
                .rs256
                .get(&header.kid)
                .or_else(|| {
                    (self.rs256.len() == 1)
                        .then(|| self.rs256.values().next())
                        .flatten()
                })
                .cloned()
                .ok_or_else(|| {
                    unauthorized(format!("no RS256 key {:?} in the key set", header.kid))
                })?,
            other => {
                return Err(unauthorized(format!(
                    "tokens signed with {other:?} are not accepted (HS256 or RS256)"
                )));
            }
        };
        let mut validation = Validation::new(header.alg);
        validation.set_required_spec_claims(&["exp", "sub"]);
        if let Some(issuer) = &self.config.issuer {
            validation.set_issuer(&[issuer]);
        }
        match &self.config.audience {
            Some(audience) => validation.set_audience(&[audience]),
            None => validation.validate_aud = false,
        }
        let claims = decode::<Claims>(token, &key, &validation)
            .map_err(|e| unauthorized(format!("the bearer token was refused: {e}")))?
            .claims;
        Ok(Caller {
            subject: claims.sub,
            roles: claims
                .roles
                .iter()
                .filter_map(|r| Role::from_name(r))
                .collect(),
        })
    }
}

/// The token of a request: `Authorization: Bearer ...`, or for the console's
/// pages the [`TOKEN_COOKIE`] cookie.
fn token_of(request: &Request, cookie_allowed: bool) -> Option<String> {
    if let Some(value) = request.headers().get(header::AUTHORIZATION) {
        let text = value.to_str().ok()?;
        let (scheme, token) = text.split_once(' ')?;
        return scheme
            .eq_ignore_ascii_case("bearer")
            .then(|| token.trim().to_string());
    }
    if !cookie_allowed {
        return None;
    }
    request
        .headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == TOKEN_COOKIE)
        .map(|(_, value)| value.to_string())
}

/// What one route's permission layer holds.
#[derive(Clone)]
pub struct Guard {
    /// The token checker.
    pub authenticator: Authenticator,
    /// What the route needs.
    pub permission: Permission,
    /// Whether the console's cookie counts (its pages) or only the header (the API).
    pub cookie_allowed: bool,
}

/// Middleware: 401 without a valid token, 403 without the permission,
/// otherwise the request goes on with its [`Caller`] in the extensions.
pub async fn require(State(guard): State<Guard>, mut request: Request, next: Next) -> Response {
    let Some(token) = token_of(&request, guard.cookie_allowed) else {
        return ApiError::Unauthorized(
            "a bearer token is required (Authorization: Bearer ...)".into(),
        )
        .into_response();
    };
    let caller = match guard.authenticator.verify(&token) {
        Ok(caller) => caller,
        Err(error) => return error.into_response(),
    };
    if !caller.may(guard.permission) {
        let roles: Vec<&str> = caller.roles.iter().map(|r| r.name()).collect();
        return ApiError::Forbidden(format!(
            "{} needs the permission {}, which the roles {roles:?} do not have",
            request.uri().path(),
            guard.permission.name()
        ))
        .into_response();
    }
    request.extensions_mut().insert(caller);
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_matrix_gives_each_write_to_one_role_and_reads_to_all() {
        for role in Role::ALL {
            assert!(Permission::Read.allows(role));
        }
        let holders = |p: Permission| -> Vec<Role> {
            Role::ALL.into_iter().filter(|r| p.allows(*r)).collect()
        };
        assert_eq!(
            holders(Permission::ResolveDeadLetters),
            vec![Role::Operator]
        );
        assert_eq!(
            holders(Permission::RequestDataHubData),
            vec![Role::Operator]
        );
        assert_eq!(holders(Permission::Replay), vec![Role::Operator]);
        assert_eq!(holders(Permission::ManageProducts), vec![Role::Backoffice]);
        assert_eq!(holders(Permission::ExportBilling), vec![Role::Billing]);
        assert!(!Permission::ReadOperations.allows(Role::Billing));
    }

    #[test]
    fn a_short_secret_or_no_key_is_refused_at_start() {
        assert!(Authenticator::new(AuthConfig::default()).is_err());
        assert!(
            Authenticator::new(AuthConfig {
                hs256_secret: Some("short".into()),
                ..AuthConfig::default()
            })
            .is_err()
        );
    }
}

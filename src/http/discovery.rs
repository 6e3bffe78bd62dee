//! Discovery: RFC 8414 metadata and the JWKS.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::AppState;
use crate::clients::AuthMethod;
use crate::error::OAuthError;
use crate::oauth::grant_type::GrantType;

/// How long clients may cache the metadata document.
const METADATA_MAX_AGE: &str = "public, max-age=3600";

/// `GET /.well-known/oauth-authorization-server` (RFC 8414 §3).
pub async fn metadata(State(state): State<AppState>) -> Result<Response, OAuthError> {
    let config = &state.config;
    let scopes = state.store.scopes_in_use().await?;
    let scopes: Vec<&str> = scopes.tokens().collect();
    let body = json!({
        "issuer": config.issuer,
        "authorization_endpoint": config.endpoint("/authorize"),
        "token_endpoint": config.endpoint("/token"),
        "revocation_endpoint": config.endpoint("/revoke"),
        "revocation_endpoint_auth_methods_supported": AuthMethod::ALL,
        "introspection_endpoint": config.endpoint("/introspect"),
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "jwks_uri": config.endpoint("/.well-known/jwks.json"),
        "registration_endpoint": config.endpoint("/register"),
        "grant_types_supported": GrantType::ALL,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "token_endpoint_auth_methods_supported": AuthMethod::ALL,
        "code_challenge_methods_supported": ["S256"],
        "scopes_supported": scopes,
        "authorization_response_iss_parameter_supported": true,
    });
    let mut response = Json(body).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(METADATA_MAX_AGE),
    );
    Ok(response)
}

/// `GET /.well-known/jwks.json`: the public part of every published signing key.
pub async fn jwks(State(state): State<AppState>) -> Response {
    let mut response = Json(state.keys.jwks()).into_response();
    let cache = format!("public, max-age={}", state.config.jwks_max_age_secs);
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_str(&cache).expect("a number makes a valid header value"),
    );
    response
}

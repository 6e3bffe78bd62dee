//! Discovery: RFC 8414 metadata and the JWKS.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use super::AppState;
use crate::error::OAuthError;
use crate::oauth::discovery;

/// How long clients may cache the metadata document.
const METADATA_MAX_AGE: &str = "public, max-age=3600";

/// `GET /.well-known/oauth-authorization-server` (RFC 8414 §3).
pub async fn metadata(State(state): State<AppState>) -> Result<Response, OAuthError> {
    let body = discovery::metadata(&state).await?;
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
    let cache = format!("public, max-age={}", state.config.keys.jwks_max_age_secs);
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_str(&cache).expect("a number makes a valid header value"),
    );
    response
}

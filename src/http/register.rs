//! `POST /register`: RFC 7591 dynamic client registration, authorized by an initial access
//! token that is an admin API key, or a registrar key (registration only, and no first-party
//! flags: a partner registering its apps cannot skip consent or become a resource server).

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use serde_json::Value;

use super::AppState;
use super::extract::{AdminAuthFailure, authenticate_key_of};
use crate::api_keys::ApiKeyKind;
use crate::clients::{ClientMetadata, MetadataError};
use crate::clock::unix_now;
use crate::error::OAuthError;
use crate::oauth::scope::Scope;

/// Its answers are never cached (`Cache-Control` is set by the router).
pub async fn register(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), OAuthError> {
    let key = authenticate_key_of(
        &state,
        &headers,
        &[ApiKeyKind::Admin, ApiKeyKind::Registrar],
    )
    .await
    .map_err(|e| match e {
        AdminAuthFailure::Missing => {
            OAuthError::invalid_token("an initial access token is required")
        }
        AdminAuthFailure::Invalid => {
            OAuthError::invalid_token("invalid, expired or revoked initial access token")
        }
        AdminAuthFailure::NotAdmin => {
            OAuthError::insufficient_scope("this key may not register clients")
        }
        AdminAuthFailure::Store(e) => e.into(),
    })?;

    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    // RFC 9110 §15.5.16: a body of another type is 415, as on the admin API.
    if !is_json {
        return Err(OAuthError {
            status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ..OAuthError::invalid_request("the body must be application/json")
        });
    }
    let metadata: ClientMetadata = serde_json::from_slice(&body).map_err(|e| {
        OAuthError::invalid_client_metadata(format!("malformed client metadata: {e}"))
    })?;
    let valid = metadata.validate().map_err(|e| match e {
        MetadataError::InvalidRedirectUri(m) => OAuthError::invalid_redirect_uri(m),
        MetadataError::InvalidClientMetadata(m) => OAuthError::invalid_client_metadata(m),
    })?;
    // A registrar's clients get no more than the registrar was given: no first-party flags,
    // scopes within the key's, and no resources (their tokens are for the default audience).
    if key.kind == ApiKeyKind::Registrar {
        if valid.skip_consent || valid.resource_server {
            return Err(OAuthError::invalid_client_metadata(
                "a registrar key cannot register first-party clients (skip_consent) or resource servers",
            ));
        }
        let allowed = Scope::parse(&key.scope).unwrap_or_default();
        if !valid.scope.is_subset_of(&allowed) {
            return Err(OAuthError::invalid_client_metadata(format!(
                "this registrar key may register clients with scopes within {:?} only",
                allowed.to_string()
            )));
        }
        if !valid.resources.is_empty() {
            return Err(OAuthError::invalid_client_metadata(
                "a registrar key cannot register clients for resources",
            ));
        }
    }

    let (client, secret) = valid.into_new_client(unix_now());
    state.store.insert_client(&client).await?;
    tracing::info!(client_id = %client.id, "registered a client");

    // RFC 7591 §3.2.1: the metadata, plus the secret this once.
    let mut body = client.metadata();
    if let Some(secret) = secret {
        body["client_secret"] = secret.expose().into();
        body["client_secret_expires_at"] = 0.into();
    }
    Ok((StatusCode::CREATED, Json(body)))
}

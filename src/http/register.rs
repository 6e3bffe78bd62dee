//! `POST /register`: RFC 7591 dynamic client registration, authorized by an initial access
//! token that is an admin API key, or a registrar key (registration only, and no first-party
//! flags: a partner registering its apps cannot skip consent or become a resource server).

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::extract::Origin;
use super::extract::{authenticate_key_of, has_media_type};
use crate::admin::{self, clients::Registrant, clients::register_client};
use crate::api_keys::ApiKeyKind;
use crate::audit::Actor;
use crate::clients::{ClientMetadata, MetadataError};
use crate::error::{OAuthError, oauth_error_with_status};

/// Its answers are never cached (`Cache-Control` is set by the router).
pub async fn register(
    State(state): State<AppState>,
    headers: HeaderMap,
    origin: Origin,
    body: Bytes,
) -> Result<Response, OAuthError> {
    let key = authenticate_key_of(
        &state,
        &headers,
        &[ApiKeyKind::Admin, ApiKeyKind::Registrar],
    )
    .await?;

    // RFC 9110 §15.5.16: a body of another type is 415, as on the admin API.
    if !has_media_type(&headers, "application/json") {
        return Ok(oauth_error_with_status(
            OAuthError::invalid_request("the body must be application/json"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ));
    }
    let metadata: ClientMetadata = serde_json::from_slice(&body).map_err(|e| {
        OAuthError::invalid_client_metadata(format!("malformed client metadata: {e}"))
    })?;
    let registrant = match key.kind {
        ApiKeyKind::Registrar => Registrant::Registrar { scope: key.scope },
        _ => Registrant::Operator,
    };
    let (client, secret) = register_client(
        &state.store,
        metadata,
        &registrant,
        Some(state.rate_limiter.plans()),
        &origin.by(Actor::AdminKey(key.id.clone())),
    )
    .await
    .map_err(|e| match e {
        admin::Error::InvalidMetadata(MetadataError::InvalidRedirectUri(m)) => {
            OAuthError::invalid_redirect_uri(m)
        }
        admin::Error::Store(e) => e.into(),
        refused => OAuthError::invalid_client_metadata(refused.to_string()),
    })?;

    // RFC 7591 §3.2.1: the metadata, plus the secret this once.
    let mut body = client.metadata();
    if let Some(secret) = secret {
        body["client_secret"] = secret.expose().into();
        body["client_secret_expires_at"] = 0.into();
    }
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

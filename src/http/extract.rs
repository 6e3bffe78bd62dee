//! Cross-cutting request input: bearer credentials, admin keys, JSON bodies.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{HeaderMap, header, request::Parts};
use serde::de::DeserializeOwned;

use super::AppState;
use crate::api_keys::{self, ApiKey, ApiKeyKind};
use crate::clock::unix_now;
use crate::error::AdminError;
use crate::secrets::hash_secret;
use crate::store::StoreError;

/// The value of an `Authorization: Bearer …` header (RFC 6750 §2.1).
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// Why a request's admin credential was refused.
pub enum AdminAuthFailure {
    Missing,
    Invalid,
    NotAdmin,
    Store(StoreError),
}

/// Finds the usable admin API key a request presents as its bearer token.
pub async fn authenticate_admin(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<ApiKey, AdminAuthFailure> {
    authenticate_key_of(state, headers, &[ApiKeyKind::Admin]).await
}

/// Finds the usable API key a request presents as its bearer token, if it is of one of
/// `kinds` (`NotAdmin` otherwise).
pub async fn authenticate_key_of(
    state: &AppState,
    headers: &HeaderMap,
    kinds: &[ApiKeyKind],
) -> Result<ApiKey, AdminAuthFailure> {
    let token = bearer_token(headers).ok_or(AdminAuthFailure::Missing)?;
    if !api_keys::is_well_formed(token) {
        return Err(AdminAuthFailure::Invalid);
    }
    let now = unix_now();
    let cached = state
        .credentials
        .usable_api_key(&hash_secret(token), now)
        .await
        .map_err(AdminAuthFailure::Store)?
        .ok_or(AdminAuthFailure::Invalid)?;
    if !kinds.contains(&cached.key.kind) {
        return Err(AdminAuthFailure::NotAdmin);
    }
    state.credentials.record_use(&cached, now).await;
    Ok(cached.key.clone())
}

/// Extractor: the request carries a valid admin API key, or is refused with the admin error.
pub struct AdminKey(pub ApiKey);

impl FromRequestParts<AppState> for AdminKey {
    type Rejection = AdminError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AdminError> {
        match authenticate_admin(state, &parts.headers).await {
            Ok(key) => Ok(Self(key)),
            Err(AdminAuthFailure::Missing) => Err(AdminError::unauthorized(
                "an admin API key is required: Authorization: Bearer <key>",
            )),
            Err(AdminAuthFailure::Invalid) => Err(AdminError::unauthorized(
                "invalid, expired or revoked API key",
            )),
            Err(AdminAuthFailure::NotAdmin) => {
                Err(AdminError::forbidden("this API key is not an admin key"))
            }
            Err(AdminAuthFailure::Store(e)) => Err(e.into()),
        }
    }
}

/// Extractor: a JSON body, refused with the admin error shape instead of axum's plain text.
pub struct AdminJson<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for AdminJson<T> {
    type Rejection = AdminError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, AdminError> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(Self(value)),
            Err(rejection) => {
                let status = rejection.status();
                let message = rejection.body_text();
                Err(match status.as_u16() {
                    413 => AdminError::new(status, "PAYLOAD_TOO_LARGE", message),
                    415 => AdminError::new(status, "UNSUPPORTED_MEDIA_TYPE", message),
                    422 => AdminError::invalid_input(message),
                    _ => AdminError::malformed(message),
                })
            }
        }
    }
}

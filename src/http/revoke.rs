//! `POST /revoke` (RFC 7009): authenticate the client, then `oauth::revocation`.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};

use super::AppState;
use super::token::{authenticate_client, require_form};
use crate::error::OAuthError;
use crate::oauth::form::OAuthForm;
use crate::oauth::revocation;

/// Its answers are never cached (`Cache-Control` is set by the router).
pub async fn revoke(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode, OAuthError> {
    require_form(&headers)?;
    let form = OAuthForm::parse(&body).map_err(OAuthError::invalid_request)?;
    let client = authenticate_client(&state, &headers, &form).await?;
    let token = form
        .get("token")
        .ok_or_else(|| OAuthError::invalid_request("token is required"))?;
    revocation::revoke(&state, &client, token).await?;
    Ok(StatusCode::OK)
}

//! `POST /revoke` (RFC 7009): `oauth::revocation` for an authenticated client.

use axum::extract::State;
use axum::http::StatusCode;

use super::AppState;
use super::client_auth::ClientRequest;
use crate::error::OAuthError;
use crate::oauth::revocation;

/// Its answers are never cached (`Cache-Control` is set by the router).
pub async fn revoke(
    State(state): State<AppState>,
    ClientRequest { client, form }: ClientRequest,
) -> Result<StatusCode, OAuthError> {
    let token = form
        .get("token")
        .ok_or_else(|| OAuthError::invalid_request("token is required"))?;
    revocation::revoke(&state, &client, token).await?;
    Ok(StatusCode::OK)
}

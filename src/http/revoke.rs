//! `POST /revoke` (RFC 7009): a client revokes a refresh token (and with it the whole family)
//! or an access token (recorded by `jti`, honoured by introspection).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::token::{authenticate_client, require_form};
use crate::clock::unix_now;
use crate::error::OAuthError;
use crate::oauth::form::OAuthForm;
use crate::secrets::hash_secret;

pub async fn revoke(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    match handle(&state, &headers, &body).await {
        Ok(()) => {
            let mut response = StatusCode::OK.into_response();
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(e) => e.into_response(),
    }
}

async fn handle(state: &AppState, headers: &HeaderMap, body: &[u8]) -> Result<(), OAuthError> {
    require_form(headers)?;
    let form = OAuthForm::parse(body).map_err(OAuthError::invalid_request)?;
    let client = authenticate_client(state, headers, &form).await?;
    let token = form
        .get("token")
        .ok_or_else(|| OAuthError::invalid_request("token is required"))?;
    let now = unix_now();

    // The hint only orders the look-ups (RFC 7009 §2.1); both kinds are tried.
    if let Some(refresh) = state.store.find_refresh_token(&hash_secret(token)).await? {
        // RFC 7009 §2.1: a client may revoke only its own tokens; others are ignored (200).
        if refresh.client_id == client.id
            && state.store.revoke_grant(&refresh.grant_id, now).await?
        {
            tracing::info!(client_id = %client.id, "refresh token family revoked");
        }
        return Ok(());
    }
    if let Some(claims) = state.keys.verify_access_token(token, &state.config.issuer) {
        let is_own = claims["client_id"].as_str() == Some(client.id.as_str());
        if let (true, Some(jti), Some(exp)) =
            (is_own, claims["jti"].as_str(), claims["exp"].as_i64())
        {
            state
                .store
                .revoke_access_token(jti, &client.id, exp, now)
                .await?;
            tracing::info!(client_id = %client.id, "access token revoked");
        }
    }
    // RFC 7009 §2.2: unknown and invalid tokens get 200 too.
    Ok(())
}

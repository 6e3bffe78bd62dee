//! `POST /revoke` (RFC 7009): authenticate the client, then `oauth::revocation`.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::token::{authenticate_client, require_form};
use crate::error::OAuthError;
use crate::oauth::form::OAuthForm;
use crate::oauth::revocation;

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
    revocation::revoke(state, &client, token).await?;
    Ok(())
}

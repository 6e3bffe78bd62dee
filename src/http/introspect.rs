//! `POST /introspect` (RFC 7662): authenticate the caller, a confidential client (a resource
//! server) or an admin API key, then `oauth::introspection`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use serde_json::Value;

use super::AppState;
use super::extract::{authenticate_admin, bearer_token};
use super::token::{authenticate_client, require_form};
use crate::error::OAuthError;
use crate::oauth::form::OAuthForm;
use crate::oauth::introspection::{self, Caller};

/// Its answers are never cached (`Cache-Control` is set by the router).
pub async fn introspect(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, OAuthError> {
    require_form(&headers)?;
    let form = OAuthForm::parse(&body).map_err(OAuthError::invalid_request)?;
    let caller = if bearer_token(&headers).is_some() {
        authenticate_admin(&state, &headers).await?;
        Caller::Admin
    } else {
        let client = authenticate_client(&state, &headers, &form).await?;
        if client.is_public() {
            // RFC 7662 §2.1: the caller must authenticate; a public client cannot.
            return Err(OAuthError::invalid_client_because(
                false,
                "a public client cannot introspect: the caller must authenticate (RFC 7662 §2.1)",
            ));
        }
        Caller::Client {
            is_resource_server: client.resource_server,
            id: client.id,
        }
    };
    let token = form
        .get("token")
        .ok_or_else(|| OAuthError::invalid_request("token is required"))?;
    Ok(Json(
        introspection::introspect(&state, &caller, token).await?,
    ))
}

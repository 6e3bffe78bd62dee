//! `POST /introspect` (RFC 7662): is this token active, and what is it?
//!
//! Callers authenticate as a confidential client (a resource server) or with an admin API key.
//! A client may introspect any access token, but only its own refresh tokens. Anything
//! inactive, unknown, expired or revoked is exactly `{"active": false}`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::AppState;
use super::extract::{AdminAuthFailure, authenticate_admin, bearer_token};
use super::token::{authenticate_client, require_form};
use crate::api_keys::{self, API_KEY_ID_PREFIX, KeyOwner};
use crate::clock::unix_now;
use crate::error::OAuthError;
use crate::oauth::form::OAuthForm;
use crate::secrets::hash_secret;

/// Who asked.
enum Caller {
    Admin,
    Client(String),
}

pub async fn introspect(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match handle(&state, &headers, &body).await {
        Ok(answer) => {
            let mut response = Json(answer).into_response();
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(e) => e.into_response(),
    }
}

async fn handle(state: &AppState, headers: &HeaderMap, body: &[u8]) -> Result<Value, OAuthError> {
    require_form(headers)?;
    let form = OAuthForm::parse(body).map_err(OAuthError::invalid_request)?;
    let caller = if bearer_token(headers).is_some() {
        authenticate_admin(state, headers)
            .await
            .map_err(|e| match e {
                AdminAuthFailure::Store(e) => e.into(),
                AdminAuthFailure::NotAdmin => {
                    OAuthError::insufficient_scope("this key may not introspect tokens")
                }
                _ => OAuthError::invalid_token("invalid, expired or revoked API key"),
            })?;
        Caller::Admin
    } else {
        let client = authenticate_client(state, headers, &form).await?;
        if client.is_public() {
            // RFC 7662 §2.1: the caller must authenticate; a public client cannot.
            return Err(OAuthError::invalid_client(false));
        }
        Caller::Client(client.id)
    };
    let token = form
        .get("token")
        .ok_or_else(|| OAuthError::invalid_request("token is required"))?;
    let now = unix_now();
    let inactive = json!({ "active": false });

    if api_keys::is_well_formed(token) {
        return Ok(api_key_answer(state, token).await?.unwrap_or(inactive));
    }
    if let Some(claims) = state.keys.verify_access_token(token, &state.config.issuer) {
        return Ok(access_token_answer(state, claims)
            .await?
            .unwrap_or(inactive));
    }
    if let Some(refresh) = state.store.find_refresh_token(&hash_secret(token)).await? {
        let may_see = match &caller {
            Caller::Admin => true,
            Caller::Client(id) => *id == refresh.client_id,
        };
        let active = may_see
            && !refresh.rotated
            && !refresh.grant_revoked
            && !refresh.user_disabled
            && now < refresh.idle_expires_at
            && now < refresh.grant_expires_at;
        if active {
            return Ok(json!({
                "active": true,
                "token_type": "refresh_token",
                "scope": refresh.scope,
                "client_id": refresh.client_id,
                "sub": refresh.user_id,
                "iat": refresh.created_at,
                "exp": refresh.idle_expires_at.min(refresh.grant_expires_at),
                "iss": state.config.issuer,
            }));
        }
    }
    Ok(inactive)
}

/// A verified, unexpired access token's answer, unless it was revoked (by itself, through its
/// grant, or by deleting its client).
async fn access_token_answer(state: &AppState, claims: Value) -> Result<Option<Value>, OAuthError> {
    let (Some(jti), Some(client_id), Some(sub)) = (
        claims["jti"].as_str(),
        claims["client_id"].as_str(),
        claims["sub"].as_str(),
    ) else {
        return Ok(None);
    };
    // A token exchanged from an API key lives and dies with the key; any other token with a
    // user as subject was issued for a grant, which must still stand.
    let from_api_key = client_id.starts_with(API_KEY_ID_PREFIX);
    let for_user = sub != client_id && !from_api_key;
    if state.store.is_access_token_revoked(jti, for_user).await? {
        return Ok(None);
    }
    let issuer_still_valid = if from_api_key {
        state
            .store
            .find_usable_api_key_by_id(client_id, unix_now())
            .await?
            .is_some()
    } else {
        state.credentials.client(client_id).await?.is_some()
    };
    if !issuer_still_valid {
        return Ok(None);
    }
    let mut answer = json!({
        "active": true,
        "token_type": "Bearer",
        "client_id": client_id,
        "sub": sub,
        "exp": claims["exp"],
        "iat": claims["iat"],
        "iss": claims["iss"],
        "aud": claims["aud"],
        "jti": jti,
    });
    if let Some(scope) = claims.get("scope") {
        answer["scope"] = scope.clone();
    }
    for extra in ["org_id", "tenant"] {
        if let Some(value) = claims.get(extra) {
            answer[extra] = value.clone();
        }
    }
    if sub != client_id
        && let Some(user) = state.store.find_user(sub).await?
    {
        answer["username"] = user.username.into();
    }
    Ok(Some(answer))
}

/// An API key's answer (RFC 7662 plus `metadata` and its owner), if it may be used now.
async fn api_key_answer(state: &AppState, key: &str) -> Result<Option<Value>, OAuthError> {
    if !api_keys::is_well_formed(key) {
        return Ok(None);
    }
    let now = unix_now();
    let Some(cached) = state
        .credentials
        .usable_api_key(&hash_secret(key), now)
        .await?
    else {
        return Ok(None);
    };
    state.credentials.record_use(&cached, now).await;
    let key = &cached.key;
    let owner = match &key.owner {
        KeyOwner::User { user_id } => json!({ "user_id": user_id, "username": cached.owner_name }),
        KeyOwner::Org { org_id } => json!({ "org_id": org_id, "name": cached.owner_name }),
        KeyOwner::Nobody => Value::Null,
    };
    let mut answer = json!({
        "active": true,
        "token_type": "api_key",
        "key_kind": key.kind,
        "scope": key.scope,
        "client_id": key.id,
        "sub": key.subject(),
        "iat": key.created_at,
        "metadata": key.metadata,
        "owner": owner,
        "iss": state.config.issuer,
    });
    if let Some(exp) = key.expires_at {
        answer["exp"] = exp.into();
    }
    Ok(Some(answer))
}

//! `grant_type=refresh_token` (RFC 6749 §6) with rotation and reuse detection (RFC 9700 §4.14.2).

use super::{TokenResponse, audience, granted_scope, issue_access_token};
use crate::clients::Client;
use crate::clock::unix_now;
use crate::error::OAuthError;
use crate::http::AppState;
use crate::oauth::form::OAuthForm;
use crate::oauth::scope::Scope;
use crate::secrets::{SECRET_CHARS, Secret, hash_secret, random_base62};

pub async fn refresh(
    state: &AppState,
    client: &Client,
    form: &OAuthForm,
) -> Result<TokenResponse, OAuthError> {
    if !client.allows_grant("refresh_token") {
        return Err(OAuthError::unauthorized_client(
            "this client may not use refresh tokens",
        ));
    }
    let token = form
        .get("refresh_token")
        .ok_or_else(|| OAuthError::invalid_request("refresh_token is required"))?;
    let token_hash = hash_secret(token);
    let now = unix_now();
    let store = &state.store;

    let record = store
        .find_refresh_token(&token_hash)
        .await?
        .filter(|r| r.client_id == client.id)
        .ok_or_else(|| OAuthError::invalid_grant("unknown refresh token"))?;
    // A rotated token presented again means two parties hold the family: end it.
    if record.rotated {
        reuse_detected(state, &record.grant_id, client, now).await?;
        return Err(OAuthError::invalid_grant(
            "the refresh token was already used",
        ));
    }
    if record.grant_revoked || record.user_disabled {
        return Err(OAuthError::invalid_grant(
            "the refresh token has been revoked",
        ));
    }
    if now >= record.idle_expires_at || now >= record.grant_expires_at {
        return Err(OAuthError::invalid_grant("the refresh token has expired"));
    }
    // RFC 6749 §6: narrower scope is allowed, wider is not.
    let granted = Scope::parse(&record.scope).unwrap_or_default();
    let scope = granted_scope(&granted, form.get("scope"))?;
    let audience = audience(state, client, form.resources())?;
    // Of concurrent refreshes with one token exactly one gets here; the others are reuse.
    if !store.rotate_refresh_token(&token_hash, now).await? {
        reuse_detected(state, &record.grant_id, client, now).await?;
        return Err(OAuthError::invalid_grant(
            "the refresh token was already used",
        ));
    }

    let mut response = issue_access_token(
        state,
        &record.user_id,
        &client.id,
        audience,
        &scope,
        Some(&record.grant_id),
        None,
    )
    .await?;
    let next =
        new_refresh_token(state, &record.grant_id, now, Some(record.grant_expires_at)).await?;
    response.refresh_token = Some(next);
    Ok(response)
}

async fn reuse_detected(
    state: &AppState,
    grant_id: &str,
    client: &Client,
    now: i64,
) -> Result<(), OAuthError> {
    if state.store.revoke_grant(grant_id, now).await? {
        tracing::warn!(client_id = %client.id, grant_id, "refresh token reused; its family is revoked");
    }
    Ok(())
}

/// A new refresh token in the grant's family. It expires when idle too long, and never after
/// the family's absolute end.
pub async fn new_refresh_token(
    state: &AppState,
    grant_id: &str,
    now: i64,
    family_ends_at: Option<i64>,
) -> Result<String, OAuthError> {
    let token = Secret::new(random_base62(SECRET_CHARS));
    let mut idle_expires_at = now + state.config.refresh_token_idle_secs;
    if let Some(end) = family_ends_at {
        idle_expires_at = idle_expires_at.min(end);
    }
    state
        .store
        .insert_refresh_token(&token.hash(), grant_id, now, idle_expires_at)
        .await?;
    Ok(token.expose().to_owned())
}

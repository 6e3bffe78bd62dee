//! `grant_type=authorization_code` (RFC 6749 §4.1.3) with PKCE (RFC 7636 §4.5).

use super::{TokenResponse, audience, issue_access_token};
use crate::clients::Client;
use crate::clock::unix_now;
use crate::error::OAuthError;
use crate::http::AppState;
use crate::oauth::form::OAuthForm;
use crate::oauth::pkce;
use crate::oauth::scope::Scope;
use crate::secrets::hash_secret;

pub async fn exchange(
    state: &AppState,
    client: &Client,
    form: &OAuthForm,
) -> Result<TokenResponse, OAuthError> {
    if !client.allows_grant("authorization_code") {
        return Err(OAuthError::unauthorized_client(
            "this client may not use the authorization code grant",
        ));
    }
    let code = form
        .get("code")
        .ok_or_else(|| OAuthError::invalid_request("code is required"))?;
    let verifier = form
        .get("code_verifier")
        .ok_or_else(|| OAuthError::invalid_request("code_verifier is required (PKCE)"))?;
    let code_hash = hash_secret(code);
    let now = unix_now();
    let store = &state.store;

    let record = store
        .find_code(&code_hash)
        .await?
        .filter(|r| r.client_id == client.id)
        .ok_or_else(|| OAuthError::invalid_grant("unknown authorization code"))?;
    // RFC 6749 §4.1.2: a code used twice is refused and what it gave is revoked.
    if record.redeemed {
        store.revoke_grant(&record.grant_id, now).await?;
        tracing::warn!(client_id = %client.id, "authorization code reused; its grant is revoked");
        return Err(OAuthError::invalid_grant(
            "the authorization code was already used",
        ));
    }
    if now >= record.expires_at {
        return Err(OAuthError::invalid_grant(
            "the authorization code has expired",
        ));
    }
    match form.get("redirect_uri") {
        Some(uri) if uri == record.redirect_uri => {}
        Some(_) => {
            return Err(OAuthError::invalid_grant(
                "redirect_uri does not match the authorization request",
            ));
        }
        None if record.redirect_uri_in_request => {
            return Err(OAuthError::invalid_request(
                "redirect_uri is required: the authorization request had one",
            ));
        }
        None => {}
    }
    if !pkce::verifier_matches(verifier, &record.code_challenge) {
        return Err(OAuthError::invalid_grant(
            "code_verifier does not match the code_challenge",
        ));
    }
    if record.user_disabled {
        return Err(OAuthError::invalid_grant("the user can no longer sign in"));
    }
    // Of concurrent redemptions exactly one gets here; the others are reuse.
    if !store.redeem_code(&code_hash, now).await? {
        store.revoke_grant(&record.grant_id, now).await?;
        return Err(OAuthError::invalid_grant(
            "the authorization code was already used",
        ));
    }

    let scope = Scope::parse(&record.scope).unwrap_or_default();
    let audience = audience(state, client, form.resources())?;
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
    if client.allows_grant("refresh_token") {
        let token =
            super::refresh_token::new_refresh_token(state, &record.grant_id, now, None).await?;
        response.refresh_token = Some(token);
    }
    Ok(response)
}

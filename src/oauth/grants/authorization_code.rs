//! `grant_type=authorization_code` (RFC 6749 §4.1.3) with PKCE (RFC 7636 §4.5), in one
//! transaction: the code is consumed, the access token recorded and the first refresh token
//! stored together, or not at all.

use super::refresh_token::new_refresh_token;
use super::{GrantHolder, Stop, TokenResponse, audience, finish, issue_for_grant};
use crate::app::AppContext;
use crate::clients::Client;
use crate::clock::unix_now;
use crate::oauth::access_token::Audience;
use crate::oauth::error::OAuthError;
use crate::oauth::grant_type::GrantType;
use crate::oauth::pkce;
use crate::oauth::token_request::CodeRequest;
use crate::secrets::hash_secret;
use crate::store::WriteTx;

const ALREADY_USED: &str = "the authorization code was already used";

pub async fn exchange(
    ctx: &AppContext,
    client: &Client,
    request: CodeRequest,
) -> Result<TokenResponse, OAuthError> {
    if !client.allows_grant(GrantType::AuthorizationCode) {
        return Err(OAuthError::unauthorized_client(
            "this client may not use the authorization code grant",
        ));
    }
    // Before the code is even read: a bad `resource` must not burn it.
    let audience = audience(ctx, client, &request.resources)?;
    let now = unix_now();
    let mut tx = ctx.store.begin_write().await?;
    let outcome = redeem(ctx, &mut tx, client, &request, audience, now).await;
    finish(tx, outcome, client.id.as_str(), now).await
}

async fn redeem(
    ctx: &AppContext,
    tx: &mut WriteTx,
    client: &Client,
    request: &CodeRequest,
    audience: Audience,
    now: i64,
) -> Result<TokenResponse, Stop> {
    let code_hash = hash_secret(&request.code);
    let record = tx
        .find_code(&code_hash)
        .await?
        .filter(|r| r.client_id == client.id)
        .ok_or_else(|| OAuthError::invalid_grant("unknown authorization code"))?;
    match &request.redirect_uri {
        Some(uri) if *uri == record.redirect_uri => {}
        Some(_) => {
            return Err(OAuthError::invalid_grant(
                "redirect_uri does not match the authorization request",
            )
            .into());
        }
        None if record.redirect_uri_in_request => {
            return Err(OAuthError::invalid_request(
                "redirect_uri is required: the authorization request had one",
            )
            .into());
        }
        None => {}
    }
    if !pkce::verifier_matches(&request.code_verifier, &record.code_challenge) {
        return Err(
            OAuthError::invalid_grant("code_verifier does not match the code_challenge").into(),
        );
    }
    // RFC 6749 §4.1.2: a code used twice is refused and what it gave is revoked. Only a
    // replay that proves possession (the verifier just matched) may revoke: anyone who merely
    // saw a used code, in a log or a browser history, cannot end the user's grant with it.
    let reused = || Stop::Reused {
        grant_id: record.grant_id.clone(),
        message: ALREADY_USED,
        credential: "authorization_code",
    };
    if record.redeemed {
        return Err(reused());
    }
    if now >= record.expires_at {
        return Err(OAuthError::invalid_grant("the authorization code has expired").into());
    }
    if record.user_disabled {
        return Err(OAuthError::invalid_grant("the user can no longer sign in").into());
    }
    // Of concurrent redemptions exactly one gets past this; the others are reuse.
    if !tx.redeem_code(&code_hash, now).await? {
        return Err(reused());
    }

    // What the client may ask for today: narrowing a client narrows its codes too.
    let scope = record.scope.intersection(&client.scope);
    let holder = GrantHolder {
        grant_id: &record.grant_id,
        user_id: record.user_id.as_str(),
        client_id: client.id.as_str(),
    };
    let mut response = issue_for_grant(ctx, tx, holder, audience, &scope, now).await?;
    if client.allows_grant(GrantType::RefreshToken) {
        let token = new_refresh_token(ctx, tx, &record.grant_id, now).await?;
        response.refresh_token = Some(token.expose().to_owned());
    }
    Ok(response)
}

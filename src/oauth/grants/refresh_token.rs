//! `grant_type=refresh_token` (RFC 6749 §6) with rotation, reuse detection (RFC 9700
//! §4.14.2), and a retry window: an honest client that lost a response, or two tabs that
//! refreshed at once, get the same successor again instead of losing the family.
//!
//! Within `refresh_retry_window_secs` of a rotation, presenting the rotated token again (by
//! the same client) returns the successor it was rotated to, with a fresh access token, as long
//! as that successor has not been used itself. Any other presentation of a rotated token is
//! reuse: the family is revoked. So a family always has exactly one live refresh token.

use super::{GrantHolder, Stop, TokenResponse, audience, finish, granted_scope, issue_for_grant};
use crate::app::AppContext;
use crate::clients::Client;
use crate::clock::unix_now;
use crate::oauth::error::OAuthError;
use crate::oauth::grant_type::GrantType;
use crate::oauth::scope::Scope;
use crate::oauth::token_request::RefreshRequest;
use crate::secrets::{SECRET_CHARS, Secret, hash_secret, open_sealed, random_base62, seal_for};
use crate::store::WriteTx;
use crate::store::grants::{RefreshRecord, Successor};

const ALREADY_USED: &str = "the refresh token was already used";

/// Why a refresh token cannot be exchanged now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unusable {
    /// Exchanged already for its successor.
    Rotated,
    /// Its family was revoked, or its user disabled.
    Revoked,
    /// Idle too long, or past its family's absolute end.
    Expired,
}

/// The one rule for "this refresh token is still usable", for the grant and introspection.
pub fn check_usable(record: &RefreshRecord, now: i64) -> Result<(), Unusable> {
    if record.rotated_at.is_some() {
        return Err(Unusable::Rotated);
    }
    if record.grant_revoked || record.user_disabled {
        return Err(Unusable::Revoked);
    }
    if now >= record.idle_expires_at || now >= record.grant_expires_at {
        return Err(Unusable::Expired);
    }
    Ok(())
}

pub async fn refresh(
    ctx: &AppContext,
    client: &Client,
    request: RefreshRequest,
) -> Result<TokenResponse, OAuthError> {
    if !client.allows_grant(GrantType::RefreshToken) {
        return Err(OAuthError::unauthorized_client(
            "this client may not use refresh tokens",
        ));
    }
    let now = unix_now();
    let mut tx = ctx.store.begin_write().await?;
    let outcome = rotate(ctx, &mut tx, client, &request, now).await;
    finish(tx, outcome, client.id.as_str(), now).await
}

async fn rotate(
    ctx: &AppContext,
    tx: &mut WriteTx,
    client: &Client,
    request: &RefreshRequest,
    now: i64,
) -> Result<TokenResponse, Stop> {
    let token_hash = hash_secret(&request.refresh_token);
    let record = tx
        .find_refresh_token(&token_hash)
        .await?
        .filter(|r| r.client_id == client.id)
        .ok_or_else(|| OAuthError::invalid_grant("unknown refresh token"))?;
    match check_usable(&record, now) {
        Ok(()) => {}
        Err(Unusable::Rotated) => return retry(ctx, tx, client, request, &record, now).await,
        Err(Unusable::Revoked) => {
            return Err(OAuthError::invalid_grant("the refresh token has been revoked").into());
        }
        Err(Unusable::Expired) => {
            return Err(OAuthError::invalid_grant("the refresh token has expired").into());
        }
    }
    let scope = narrowed_scope(&record, client, request)?;
    let audience = audience(ctx, client, &request.resources)?;

    let successor = Secret::new(random_base62(SECRET_CHARS));
    let recorded = Successor {
        token_hash: successor.hash(),
        sealed: seal_for(&request.refresh_token, successor.expose()),
    };
    if !tx.rotate_refresh_token(&token_hash, now, &recorded).await? {
        // PostgreSQL: a concurrent refresh rotated it first, and has committed, since this
        // UPDATE waited for it. Read what it recorded, as a retry would.
        let rotated = tx
            .find_refresh_token(&token_hash)
            .await?
            .ok_or_else(|| OAuthError::invalid_grant("unknown refresh token"))?;
        return retry(ctx, tx, client, request, &rotated, now).await;
    }
    // Only the winner gets here: the token it rotated now holds the family's one seal, and
    // the predecessor's successor (this token) has been used.
    if let Some(predecessor_hash) = &record.predecessor_hash {
        tx.forget_sealed_successor(predecessor_hash).await?;
    }
    let family = Family {
        grant_id: &record.grant_id,
        predecessor_hash: Some(&token_hash),
        ends_at: Some(record.grant_expires_at),
    };
    store_refresh_token(ctx, tx, &successor, family, now).await?;
    let mut response = issue_for_grant(ctx, tx, holder(&record), audience, &scope, now).await?;
    response.refresh_token = Some(successor.expose().to_owned());
    Ok(response)
}

/// A rotated token presented again: the same successor within the window while that
/// successor is unused, reuse otherwise.
async fn retry(
    ctx: &AppContext,
    tx: &mut WriteTx,
    client: &Client,
    request: &RefreshRequest,
    rotated: &RefreshRecord,
    now: i64,
) -> Result<TokenResponse, Stop> {
    let reused = || Stop::Reused {
        grant_id: rotated.grant_id.clone(),
        message: ALREADY_USED,
        credential: "refresh_token",
    };
    let window = ctx.config.tokens.refresh_retry_window_secs;
    let (Some(rotated_at), Some(successor)) = (rotated.rotated_at, &rotated.successor) else {
        return Err(reused());
    };
    if now >= rotated_at.saturating_add(window) {
        return Err(reused());
    }
    let next = tx.find_refresh_token(&successor.token_hash).await?;
    let Some(next) = next.filter(|next| check_usable(next, now).is_ok()) else {
        return Err(reused());
    };
    let Some(token) = open_sealed(&request.refresh_token, &successor.sealed)
        .filter(|token| hash_secret(token) == successor.token_hash)
    else {
        return Err(reused());
    };
    let scope = narrowed_scope(&next, client, request)?;
    let audience = audience(ctx, client, &request.resources)?;
    let mut response = issue_for_grant(ctx, tx, holder(&next), audience, &scope, now).await?;
    response.refresh_token = Some(token);
    tracing::info!(client_id = %client.id, "refresh retried within the window; same successor");
    Ok(response)
}

/// RFC 6749 §6: narrower scope than granted is allowed, wider is not. What was granted is
/// also cut to what the client may ask for today: narrowing a client's scope narrows the
/// refresh tokens it already holds.
fn narrowed_scope(
    record: &RefreshRecord,
    client: &Client,
    request: &RefreshRequest,
) -> Result<Scope, OAuthError> {
    granted_scope(
        &record.scope.intersection(&client.scope),
        request.scope.as_deref(),
    )
}

fn holder(record: &RefreshRecord) -> GrantHolder<'_> {
    GrantHolder {
        grant_id: &record.grant_id,
        user_id: record.user_id.as_str(),
        client_id: record.client_id.as_str(),
    }
}

/// A new refresh token in the grant's family, stored in `tx`.
pub(super) async fn new_refresh_token(
    ctx: &AppContext,
    tx: &mut WriteTx,
    grant_id: &str,
    now: i64,
) -> Result<Secret, Stop> {
    let token = Secret::new(random_base62(SECRET_CHARS));
    let family = Family {
        grant_id,
        predecessor_hash: None,
        ends_at: None,
    };
    store_refresh_token(ctx, tx, &token, family, now).await?;
    Ok(token)
}

/// Where a new refresh token belongs.
struct Family<'a> {
    grant_id: &'a str,
    /// The token it succeeds, if any.
    predecessor_hash: Option<&'a str>,
    /// The family's absolute end, if it is known here.
    ends_at: Option<i64>,
}

/// Stores `token` in its family. It expires when idle too long, and never after the family's
/// absolute end.
async fn store_refresh_token(
    ctx: &AppContext,
    tx: &mut WriteTx,
    token: &Secret,
    family: Family<'_>,
    now: i64,
) -> Result<(), Stop> {
    let mut idle_expires_at = now + ctx.config.tokens.refresh_token_idle_secs;
    if let Some(end) = family.ends_at {
        idle_expires_at = idle_expires_at.min(end);
    }
    tx.insert_refresh_token(
        &token.hash(),
        family.grant_id,
        family.predecessor_hash,
        now,
        idle_expires_at,
    )
    .await?;
    Ok(())
}

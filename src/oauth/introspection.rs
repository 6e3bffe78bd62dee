//! Token introspection (RFC 7662): is this token active, and what is it?
//!
//! Who may see what (RFC 7662 §4 leaves it to the server): a client sees the tokens issued to
//! itself; a client registered as a resource server also sees other clients' access tokens
//! and API keys (it must check what it is handed); an admin key sees everything. Refresh
//! tokens are only ever their own client's (or an admin's) to see. Anything else, like anything
//! inactive, unknown, expired or revoked, is exactly `{"active": false}`.

use serde_json::{Value, json};

use super::grants::refresh_token::check_usable;
use crate::api_keys::{self, API_KEY_ID_PREFIX, KeyOwner};
use crate::app::AppContext;
use crate::clock::unix_now;
use crate::metrics;
use crate::rate_limit::Subject;
use crate::secrets::hash_secret;
use crate::store::StoreError;
use crate::usage::KeyUse;

/// Who asked.
pub enum Caller {
    /// An admin API key.
    Admin,
    /// An authenticated confidential client.
    Client {
        id: String,
        is_resource_server: bool,
    },
}

impl Caller {
    /// May this caller see an access token issued to `client_id`?
    fn may_see_access_tokens_of(&self, client_id: &str) -> bool {
        match self {
            Self::Admin => true,
            Self::Client {
                id,
                is_resource_server,
            } => *is_resource_server || id == client_id,
        }
    }

    /// May this caller see API keys (which belong to no client)?
    fn may_see_api_keys(&self) -> bool {
        match self {
            Self::Admin => true,
            Self::Client {
                is_resource_server, ..
            } => *is_resource_server,
        }
    }

    /// May this caller see a refresh token issued to `client_id`? Only its own client (or an
    /// admin): no resource server is ever handed one.
    fn may_see_refresh_tokens_of(&self, client_id: &str) -> bool {
        match self {
            Self::Admin => true,
            Self::Client { id, .. } => id == client_id,
        }
    }
}

/// The RFC 7662 §2.2 answer for `token`.
pub async fn introspect(
    ctx: &AppContext,
    caller: &Caller,
    token: &str,
) -> Result<Value, StoreError> {
    let (token_type, answer) = answer(ctx, caller, token).await?;
    metrics::introspection(answer.is_some(), token_type);
    Ok(answer.unwrap_or_else(|| json!({ "active": false })))
}

/// What `token` looks like (the metrics' `token_type`), and its answer if it is active and
/// the caller may see it.
async fn answer(
    ctx: &AppContext,
    caller: &Caller,
    token: &str,
) -> Result<(&'static str, Option<Value>), StoreError> {
    if api_keys::is_well_formed(token) {
        if !caller.may_see_api_keys() {
            return Ok(("api_key", None));
        }
        return Ok(("api_key", api_key_answer(ctx, token).await?));
    }
    if let Some(claims) = ctx.keys.verify_access_token(token, &ctx.config.issuer) {
        let issued_to = claims["client_id"].as_str().unwrap_or_default();
        if !caller.may_see_access_tokens_of(issued_to) {
            if let Caller::Client { id, .. } = caller {
                // A hint for an operator upgrading: this client probably is a resource server.
                tracing::info!(client_id = %id, "introspection of another client's token by a client not registered as a resource server: answered inactive");
            }
            return Ok(("access_token", None));
        }
        return Ok(("access_token", access_token_answer(ctx, claims).await?));
    }
    // Only an active refresh token is known to be one; anything else is just not ours.
    Ok(match refresh_token_answer(ctx, caller, token).await? {
        Some(answer) => ("refresh_token", Some(answer)),
        None => ("other", None),
    })
}

/// A refresh token's answer, if the caller may see it and it could be exchanged now.
async fn refresh_token_answer(
    ctx: &AppContext,
    caller: &Caller,
    token: &str,
) -> Result<Option<Value>, StoreError> {
    let Some(refresh) = ctx.store.find_refresh_token(&hash_secret(token)).await? else {
        return Ok(None);
    };
    if !caller.may_see_refresh_tokens_of(refresh.client_id.as_str())
        || check_usable(&refresh, unix_now()).is_err()
    {
        return Ok(None);
    }
    // What a refresh would give now: the grant cut to the client's current scope.
    let Some(client) = ctx.credentials.client(refresh.client_id.as_str()).await? else {
        return Ok(None);
    };
    let scope = refresh.scope.intersection(&client.scope);
    Ok(Some(json!({
        "active": true,
        "token_type": "refresh_token",
        "scope": scope.to_string(),
        "client_id": refresh.client_id,
        "sub": refresh.user_id,
        "iat": refresh.created_at,
        "exp": refresh.idle_expires_at.min(refresh.grant_expires_at),
        "iss": ctx.config.issuer,
    })))
}

/// A verified, unexpired access token's answer, unless it was revoked (by itself, through its
/// grant, or by deleting its client).
async fn access_token_answer(ctx: &AppContext, claims: Value) -> Result<Option<Value>, StoreError> {
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
    if ctx.store.is_access_token_revoked(jti, for_user).await? {
        return Ok(None);
    }
    let issuer_still_valid = if from_api_key {
        ctx.store
            .find_usable_api_key_by_id(client_id, unix_now())
            .await?
            .is_some()
    } else {
        ctx.credentials.client(client_id).await?.is_some()
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
    for extra in ["org_id", "tenant", "env"] {
        if let Some(value) = claims.get(extra) {
            answer[extra] = value.clone();
        }
    }
    if sub != client_id
        && let Some(user) = ctx.store.find_user(&sub.into()).await?
    {
        answer["username"] = user.username.as_str().into();
    }
    Ok(Some(answer))
}

/// An API key's answer (RFC 7662 plus `metadata` and its owner), if it may be used now.
async fn api_key_answer(ctx: &AppContext, key: &str) -> Result<Option<Value>, StoreError> {
    let now = unix_now();
    let Some(cached) = ctx
        .credentials
        .usable_api_key(&hash_secret(key), now)
        .await?
    else {
        return Ok(None);
    };
    ctx.credentials.record_use(&cached, now).await;
    let key = &cached.key;
    ctx.usage.record(&key.id, KeyUse::Introspection, now);
    // A product's API introspects each request's key: that is where the key's own limit is
    // counted (the resource server asking never is). Over the limit, the key is still valid.
    let rate_limit = ctx
        .rate_limiter
        .take(
            Subject::ApiKey(key.id.as_str()),
            key.rate_limit_plan.as_ref(),
        )
        .await;
    let owner = match &key.owner {
        KeyOwner::User { user_id } => json!({ "user_id": user_id, "username": cached.owner_name }),
        KeyOwner::Org { org_id } => json!({ "org_id": org_id, "name": cached.owner_name }),
        KeyOwner::Nobody => Value::Null,
    };
    let mut answer = json!({
        "active": true,
        "token_type": "api_key",
        "key_kind": key.kind,
        "env": key.env.as_str(),
        "scope": key.scope,
        "client_id": key.id,
        "sub": key.subject(),
        "iat": key.created_at,
        "metadata": key.metadata,
        "owner": owner,
        "iss": ctx.config.issuer,
    });
    if let Some(exp) = key.expires_at {
        answer["exp"] = exp.into();
    }
    if let Some(rate_limit) = rate_limit {
        if !rate_limit.is_allowed() {
            metrics::rate_limited("introspected_api_key");
        }
        answer["rate_limit"] = rate_limit.to_json();
    }
    Ok(Some(answer))
}

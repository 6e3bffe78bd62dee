//! An API key at the token endpoint: a degenerate client-credentials grant, where one string
//! is both client id and secret. The JWT's `sub` is the key's owner and `client_id` the key.

use std::net::IpAddr;

use super::{TokenResponse, claims, granted_scope, sign};
use crate::api_keys::{self, ApiKeyKind, KeyOwner};
use crate::app::AppContext;
use crate::clock::unix_now;
use crate::oauth::access_token::{Audience, is_valid_tenant};
use crate::oauth::error::OAuthError;
use crate::oauth::form::OAuthForm;
use crate::oauth::grant_type::GrantType;
use crate::oauth::token_request::TokenRequest;
use crate::rate_limit::Subject;
use crate::secrets::hash_secret;
use crate::usage::KeyUse;

/// Exchanges `key` for a token, for a caller at `from` (counted in the key's usage).
pub async fn exchange(
    ctx: &AppContext,
    key: &str,
    used_basic: bool,
    form: &OAuthForm,
    from: Option<IpAddr>,
) -> Result<TokenResponse, OAuthError> {
    // The checksum refuses typos and other strings without a database look-up.
    if !api_keys::is_well_formed(key) {
        return Err(OAuthError::invalid_client(used_basic));
    }
    let now = unix_now();
    let cached = ctx
        .credentials
        .usable_api_key(&hash_secret(key), now)
        .await?
        .ok_or_else(|| OAuthError::invalid_client(used_basic))?;
    let key = &cached.key;
    // Counted once the key is known to be good, before any work is done for it.
    ctx.rate_limiter
        .admit(
            Subject::ApiKey(key.id.as_str()),
            key.rate_limit_plan.as_ref(),
        )
        .await?;
    let only_client_credentials =
        || OAuthError::unauthorized_client("an API key can only use the client_credentials grant");
    // Checked before the rest of the form, whose parameters depend on the grant type.
    if TokenRequest::grant_type(form)? != GrantType::ClientCredentials {
        return Err(only_client_credentials());
    }
    let TokenRequest::ClientCredentials(request) = TokenRequest::parse(form)? else {
        return Err(only_client_credentials());
    };
    if matches!(key.kind, ApiKeyKind::Admin | ApiKeyKind::Registrar) {
        return Err(OAuthError::unauthorized_client(
            "admin and registrar keys manage Portcullis; use a service key for tokens",
        ));
    }
    if !request.resources.is_empty() {
        return Err(OAuthError::invalid_target(
            "API keys are not bound to resources",
        ));
    }
    let scope = granted_scope(&key.scope, request.scope.as_deref())?;
    // A scoped tenant token: a service key mints a short-lived token for one of its tenants,
    // to hand to that tenant's browser.
    if let Some(tenant) = &request.tenant {
        if key.kind != ApiKeyKind::Service {
            return Err(OAuthError::unauthorized_client(
                "only service keys mint tenant tokens",
            ));
        }
        if !is_valid_tenant(tenant) {
            return Err(OAuthError::invalid_request(
                "tenant must be 1 to 128 letters, digits, '.', '_', '-' or ':'",
            ));
        }
    }
    let ttl_secs = match request.tenant {
        Some(_) => ctx.config.tokens.tenant_token_ttl_secs,
        None => ctx.config.keys.access_token_ttl_secs,
    };
    ctx.credentials.record_use(&cached, now).await;
    ctx.usage.record(&key.id, KeyUse::Exchange { from }, now);
    let audience = Audience::One(ctx.config.default_audience().to_owned());
    let mut claims = claims(
        ctx,
        key.subject(),
        key.id.as_str(),
        audience,
        &scope,
        ttl_secs,
        now,
    );
    claims.env = Some(key.env.as_str());
    // A tenant token acts for the tenant, not for the key's organization.
    match (request.tenant, &key.owner) {
        (Some(tenant), _) => claims.tenant = Some(tenant),
        (None, KeyOwner::Org { org_id }) => claims.org_id = Some(org_id.to_string()),
        (None, _) => {}
    }
    sign(ctx, &claims)
}

//! An API key at the token endpoint: a degenerate client-credentials grant, where one string
//! is both client id and secret. The JWT's `sub` is the key's owner and `client_id` the key.

use super::{TokenExtras, TokenResponse, granted_scope, issue_access_token, issue_token};
use crate::api_keys::{self, ApiKeyKind, KeyOwner};
use crate::clock::unix_now;
use crate::error::OAuthError;
use crate::http::AppState;
use crate::oauth::access_token::{Audience, is_valid_tenant};
use crate::oauth::form::OAuthForm;
use crate::oauth::scope::Scope;
use crate::secrets::hash_secret;

pub async fn exchange(
    state: &AppState,
    key: &str,
    used_basic: bool,
    grant_type: &str,
    form: &OAuthForm,
) -> Result<TokenResponse, OAuthError> {
    // The checksum refuses typos and other strings without a database look-up.
    if !api_keys::is_well_formed(key) {
        return Err(OAuthError::invalid_client(used_basic));
    }
    let now = unix_now();
    let cached = state
        .credentials
        .usable_api_key(&hash_secret(key), now)
        .await?
        .ok_or_else(|| OAuthError::invalid_client(used_basic))?;
    let key = &cached.key;
    if grant_type != "client_credentials" {
        return Err(OAuthError::unauthorized_client(
            "an API key can only use the client_credentials grant",
        ));
    }
    if key.kind == ApiKeyKind::Admin {
        return Err(OAuthError::unauthorized_client(
            "admin keys manage Portcullis; use a service key for tokens",
        ));
    }
    if !form.resources().is_empty() {
        return Err(OAuthError::invalid_target(
            "API keys are not bound to resources",
        ));
    }
    let allowed = Scope::parse(&key.scope).unwrap_or_default();
    let scope = granted_scope(&allowed, form.get("scope"))?;
    state.credentials.record_use(&cached, now).await;
    let org_id = match &key.owner {
        KeyOwner::Org { org_id } => Some(org_id.as_str()),
        _ => None,
    };
    let audience = Audience::One(state.config.default_audience.clone());
    // A scoped tenant token: a service key mints a short-lived token for one of its tenants,
    // to hand to that tenant's browser.
    if let Some(tenant) = form.get("tenant") {
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
        let ttl_secs = state.config.tenant_token_ttl_secs;
        let extras = TokenExtras {
            org_id: None,
            tenant: Some(tenant),
            ttl_secs,
        };
        return issue_token(
            state,
            key.subject(),
            &key.id,
            audience,
            &scope,
            None,
            extras,
        )
        .await;
    }
    issue_access_token(
        state,
        key.subject(),
        &key.id,
        audience,
        &scope,
        None,
        org_id,
    )
    .await
}

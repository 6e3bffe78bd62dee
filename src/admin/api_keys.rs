//! Making, changing and revoking API keys, and reading how much they are used: the admin API,
//! the CLI and the account page all make keys through [`create_api_key`].

use std::collections::HashMap;

use serde_json::Value;

use super::{Actor, Error, Initiator, check_plan};
use crate::api_keys::{
    ApiKey, ApiKeyKind, DayUsage, KeyEnv, KeyOwner, check_metadata, display_prefix, generate_key,
};
use crate::audit::{Action, AuditEvent};
use crate::clock::{UtcDay, unix_now};
use crate::config::MAX_USAGE_DAYS;
use crate::ids::{ApiKeyId, UserId};
use crate::names::DisplayName;
use crate::oauth::scope::Scope;
use crate::rate_limit::plan::{PlanName, Plans};
use crate::secrets::Secret;
use crate::store::Store;

/// Longest lifetime a key may be given relative to now: ten years.
pub const MAX_EXPIRES_IN_SECS: i64 = 10 * 365 * 86_400;

/// When a new key stops working.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    Never,
    /// This many seconds from now: 1 second to [`MAX_EXPIRES_IN_SECS`].
    InSecs(i64),
    /// At this Unix time, which must be in the future.
    At(i64),
}

/// A key to make.
#[derive(Debug, Clone)]
pub struct KeyRequest {
    /// None: the kind that follows from the owner (personal, organization, or service).
    pub kind: Option<ApiKeyKind>,
    pub name: String,
    /// Space-delimited scopes the key may use.
    pub scope: String,
    pub env: KeyEnv,
    /// A JSON object, returned by introspection.
    pub metadata: Value,
    pub owner: KeyOwner,
    pub expiry: Expiry,
    /// For organization keys only: the member the key is made for, who may take it with them
    /// (`revoke_when_creator_leaves`). Otherwise the actor is recorded as the creator.
    pub created_by: Option<UserId>,
    pub revoke_when_creator_leaves: bool,
    /// None: the servers' default plan.
    pub rate_limit_plan: Option<PlanName>,
}

/// What to change about a key; `None` leaves a field as it is.
#[derive(Debug, Default)]
pub struct KeyChange {
    pub name: Option<String>,
    pub scope: Option<String>,
    pub metadata: Option<Value>,
    /// Some(None) returns the key to the servers' default plan.
    pub rate_limit_plan: Option<Option<PlanName>>,
}

/// Checks `request` and stores the key; returns it with its secret, which is shown only now.
/// `plans`: the rate-limit plans a key may name (None from the CLI: see `check_plan`).
pub async fn create_api_key(
    store: &Store,
    prefix: &str,
    request: KeyRequest,
    by: &Initiator,
    plans: Option<&Plans>,
) -> Result<(ApiKey, Secret), Error> {
    let actor = &by.actor;
    check_plan(plans, request.rate_limit_plan.as_ref()).map_err(Error::Invalid)?;
    let name = DisplayName::parse(&request.name).map_err(Error::Invalid)?;
    let scope = Scope::parse(&request.scope).map_err(|e| Error::Invalid(e.0))?;
    check_metadata(&request.metadata).map_err(Error::Invalid)?;
    let now = unix_now();
    let expires_at = match request.expiry {
        Expiry::Never => None,
        Expiry::InSecs(secs) if (1..=MAX_EXPIRES_IN_SECS).contains(&secs) => Some(now + secs),
        Expiry::InSecs(_) => return Err(Error::invalid("expires_in must be 1 second to 10 years")),
        Expiry::At(at) if at <= now => {
            return Err(Error::invalid("the expiry must be in the future"));
        }
        Expiry::At(at) => Some(at),
    };
    let kind = request.kind.unwrap_or_else(|| request.owner.kind());
    if !kind.fits(&request.owner) {
        return Err(Error::invalid(
            "a personal key is owned by a user, an organization key by an organization, others by no one",
        ));
    }
    match &request.owner {
        KeyOwner::User { user_id } if store.find_user(user_id).await?.is_none() => {
            return Err(Error::invalid(format!("no user \"{user_id}\"")));
        }
        KeyOwner::Org { org_id } if store.find_organization(org_id).await?.is_none() => {
            return Err(Error::invalid(format!("no organization \"{org_id}\"")));
        }
        _ => {}
    }
    let created_by = match (&request.owner, request.created_by) {
        (KeyOwner::Org { .. }, Some(member)) => Some(member.to_string()),
        (_, Some(_)) => {
            return Err(Error::invalid("created_by applies to organization keys"));
        }
        (_, None) => actor.id().map(str::to_owned),
    };
    // The creator who may take the key with them must be a member: only a member can leave.
    if request.revoke_when_creator_leaves {
        let KeyOwner::Org { org_id } = &request.owner else {
            return Err(Error::invalid(
                "revoke_when_creator_leaves applies to organization keys",
            ));
        };
        let is_member = match &created_by {
            Some(user_id) => store
                .list_members(org_id)
                .await?
                .iter()
                .any(|member| member.user_id == *user_id.as_str()),
            None => false,
        };
        if !is_member {
            return Err(Error::invalid(
                "revoke_when_creator_leaves needs created_by: a member of the organization",
            ));
        }
    }
    let secret = generate_key(prefix, request.env);
    let key = ApiKey {
        id: ApiKeyId::generate(),
        kind,
        name,
        display_prefix: display_prefix(secret.expose()),
        scope,
        env: request.env,
        metadata: request.metadata,
        owner: request.owner,
        created_by,
        revoke_when_creator_leaves: request.revoke_when_creator_leaves,
        created_at: now,
        expires_at,
        revoked_at: None,
        last_used_at: None,
        rate_limit_plan: request.rate_limit_plan,
    };
    let event = AuditEvent::new(
        Action::ApiKeyCreated,
        by,
        Some(key.id.as_str()),
        serde_json::json!({
            "kind": key.kind,
            "name": key.name,
            "display_prefix": key.display_prefix,
            "scope": key.scope,
            "env": key.env.as_str(),
            "owner": key.owner,
            "expires_at": key.expires_at,
            "rate_limit_plan": key.rate_limit_plan,
        }),
    );
    store.insert_api_key(&key, &secret.hash(), &event).await?;
    tracing::info!(key_id = %key.id, kind = key.kind.as_str(), "created an API key");
    Ok((key, secret))
}

/// A key a person makes for themselves on their account page.
#[derive(Debug, Clone)]
pub struct PersonalKey {
    pub name: String,
    pub scope: Scope,
    pub expiry: Expiry,
}

/// Makes a personal key for `user_id`, who may hold at most `limit`: revoked and expired
/// keys count until they are pruned (two days on), so that making and revoking keys in a
/// loop is bounded too, and a stolen session cannot mint keys without end.
pub async fn create_personal_key(
    store: &Store,
    prefix: &str,
    user_id: &UserId,
    key: PersonalKey,
    limit: usize,
    by: &Initiator,
) -> Result<(ApiKey, Secret), Error> {
    let held = store.list_user_api_keys(user_id).await?.len();
    if held >= limit {
        return Err(Error::Invalid(format!(
            "You have {held} keys, the most allowed (revoked and expired ones count for two \
             days). Revoke one, or wait, before making another."
        )));
    }
    let request = KeyRequest {
        kind: Some(ApiKeyKind::Personal),
        name: key.name,
        scope: key.scope.to_string(),
        env: KeyEnv::Live,
        metadata: serde_json::json!({}),
        owner: KeyOwner::User {
            user_id: user_id.clone(),
        },
        expiry: key.expiry,
        created_by: None,
        revoke_when_creator_leaves: false,
        rate_limit_plan: None,
    };
    // A person gets the servers' default plan; only an operator chooses another.
    create_api_key(
        store,
        prefix,
        request,
        &by.as_actor(Actor::User(user_id.clone())),
        None,
    )
    .await
}

/// The keys a person owns, newest first.
pub async fn list_personal_keys(store: &Store, user_id: &UserId) -> Result<Vec<ApiKey>, Error> {
    Ok(store.list_user_api_keys(user_id).await?)
}

/// Revokes one of `user_id`'s own keys; another's is not found.
pub async fn revoke_personal_key(
    store: &Store,
    user_id: &UserId,
    id: &ApiKeyId,
    by: &Initiator,
) -> Result<(), Error> {
    let by = by.as_actor(Actor::User(user_id.clone()));
    let event = AuditEvent::new(
        Action::ApiKeyRevoked,
        &by,
        Some(id.as_str()),
        serde_json::json!({}),
    );
    if !store
        .revoke_user_api_key(id, user_id, unix_now(), &event)
        .await?
    {
        return Err(no_key(id));
    }
    tracing::info!(key_id = %id, %user_id, "revoked a personal API key");
    Ok(())
}

/// Up to `limit` keys after the one with id `after`, in id order; never their secrets.
pub async fn list_api_keys(
    store: &Store,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<ApiKey>, Error> {
    Ok(store.list_api_keys(after, limit).await?)
}

pub async fn find_api_key(store: &Store, id: &ApiKeyId) -> Result<ApiKey, Error> {
    store.find_api_key(id).await?.ok_or_else(|| no_key(id))
}

/// Renames a key, or changes its scope or metadata; takes effect from the next request on.
pub async fn update_api_key(
    store: &Store,
    id: &ApiKeyId,
    change: KeyChange,
    plans: Option<&Plans>,
    by: &Initiator,
) -> Result<ApiKey, Error> {
    let mut key = find_api_key(store, id).await?;
    let mut changed = Vec::new();
    if let Some(name) = change.name {
        key.name = DisplayName::parse(&name).map_err(Error::Invalid)?;
        changed.push("name");
    }
    if let Some(scope) = change.scope {
        key.scope = Scope::parse(&scope).map_err(|e| Error::Invalid(e.0))?;
        changed.push("scope");
    }
    if let Some(metadata) = change.metadata {
        check_metadata(&metadata).map_err(Error::Invalid)?;
        key.metadata = metadata;
        changed.push("metadata");
    }
    if let Some(plan) = change.rate_limit_plan {
        check_plan(plans, plan.as_ref()).map_err(Error::Invalid)?;
        key.rate_limit_plan = plan;
        changed.push("rate_limit_plan");
    }
    let event = AuditEvent::new(
        Action::ApiKeyUpdated,
        by,
        Some(id.as_str()),
        serde_json::json!({
            "changed": changed,
            "name": key.name,
            "scope": key.scope,
            "rate_limit_plan": key.rate_limit_plan,
        }),
    );
    if !store.update_api_key(&key, &event).await? {
        return Err(no_key(id));
    }
    tracing::info!(key_id = %id, "updated an API key");
    Ok(key)
}

/// Revokes the key: refused by the very next request, on every replica.
pub async fn revoke_api_key(store: &Store, id: &ApiKeyId, by: &Initiator) -> Result<(), Error> {
    let event = AuditEvent::new(
        Action::ApiKeyRevoked,
        by,
        Some(id.as_str()),
        serde_json::json!({}),
    );
    if !store.revoke_api_key(id, unix_now(), &event).await? {
        return Err(no_key(id));
    }
    tracing::info!(key_id = %id, "revoked an API key");
    Ok(())
}

/// How much the key was used today (UTC), added up over every server as of their last writes
/// (a few seconds behind); zero when it was not used.
pub async fn api_key_usage_today(store: &Store, id: &ApiKeyId) -> Result<DayUsage, Error> {
    let today = UtcDay::today();
    let mut found = store.api_key_usage(id, today, today).await?;
    Ok(found.pop().unwrap_or_else(|| DayUsage::none(today)))
}

/// The key's usage on each of the last `days` days (today included) that saw any, newest
/// first; `days` is 1 to [`MAX_USAGE_DAYS`].
pub async fn api_key_usage(store: &Store, id: &ApiKeyId, days: i64) -> Result<UsageSpan, Error> {
    if !(1..=MAX_USAGE_DAYS).contains(&days) {
        return Err(Error::Invalid(format!(
            "days must be 1 to {MAX_USAGE_DAYS}"
        )));
    }
    find_api_key(store, id).await?;
    let last = UtcDay::today();
    let first = last.minus(days - 1);
    let days = store.api_key_usage(id, first, last).await?;
    Ok(UsageSpan { first, last, days })
}

/// Usage over a span of days.
#[derive(Debug, Clone, serde::Serialize)]
pub struct UsageSpan {
    pub first: UtcDay,
    pub last: UtcDay,
    /// The days that saw use, newest first.
    pub days: Vec<DayUsage>,
}

/// Today's usage of each of the person's keys that was used today.
pub async fn personal_keys_usage_today(
    store: &Store,
    user_id: &UserId,
) -> Result<HashMap<ApiKeyId, DayUsage>, Error> {
    let today = UtcDay::today();
    Ok(store
        .personal_keys_usage_on(user_id, today)
        .await?
        .into_iter()
        .collect())
}

fn no_key(id: &ApiKeyId) -> Error {
    Error::NotFound(format!("no API key \"{id}\""))
}

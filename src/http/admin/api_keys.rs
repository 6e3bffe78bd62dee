//! `/admin/api-keys`: create (the secret shown once), list, show (with today's usage), change
//! and revoke API keys, and their usage day by day.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::paging::Page;
use crate::admin::api_keys::{self, Expiry, KeyChange, KeyRequest};
use crate::api_keys::{ApiKey, ApiKeyKind, KeyEnv, KeyOwner};
use crate::clients::present_even_if_null;
use crate::config::DEFAULT_USAGE_DAYS;
use crate::error::AdminError;
use crate::http::AppState;
use crate::http::extract::{AdminActor, AdminJson, AdminKey};
use crate::ids::{ApiKeyId, OrgId, UserId};
use crate::rate_limit::plan::PlanName;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OwnerInput {
    user_id: Option<UserId>,
    org_id: Option<OrgId>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    name: String,
    scope: Option<String>,
    expires_in: Option<i64>,
    expires_at: Option<i64>,
    metadata: Option<Value>,
    owner: Option<OwnerInput>,
    env: Option<String>,
    /// `"admin"` for an admin key; otherwise the kind follows from the owner.
    kind: Option<String>,
    /// For organization keys, the member it is made for (who may take it with them, below).
    /// Otherwise the admin key that made it is recorded.
    created_by: Option<UserId>,
    #[serde(default)]
    revoke_when_creator_leaves: bool,
    /// None: the servers' default plan.
    rate_limit_plan: Option<PlanName>,
}

pub async fn create(
    AdminActor(by): AdminActor,
    State(state): State<AppState>,
    AdminJson(input): AdminJson<CreateKey>,
) -> Result<(StatusCode, Json<Value>), AdminError> {
    let owner = match input.owner {
        None => KeyOwner::Nobody,
        Some(OwnerInput {
            user_id: Some(user_id),
            org_id: None,
        }) => KeyOwner::User { user_id },
        Some(OwnerInput {
            user_id: None,
            org_id: Some(org_id),
        }) => KeyOwner::Org { org_id },
        Some(_) => {
            return Err(AdminError::invalid_input(
                "owner is {\"user_id\": …} or {\"org_id\": …}",
            ));
        }
    };
    let kind = match input.kind.as_deref() {
        None => None,
        Some(text) => Some(ApiKeyKind::parse(text).ok_or_else(|| {
            AdminError::invalid_input(
                "kind must be admin, registrar, service, personal or organization",
            )
        })?),
    };
    let env = match input.env.as_deref() {
        None => KeyEnv::Live,
        Some(text) => KeyEnv::parse(text)
            .ok_or_else(|| AdminError::invalid_input("env must be live or test"))?,
    };
    let expiry = match (input.expires_in, input.expires_at) {
        (Some(_), Some(_)) => {
            return Err(AdminError::invalid_input(
                "give expires_in or expires_at, not both",
            ));
        }
        (Some(secs), None) => Expiry::InSecs(secs),
        (None, Some(at)) => Expiry::At(at),
        (None, None) => Expiry::Never,
    };
    let request = KeyRequest {
        kind,
        name: input.name,
        scope: input.scope.unwrap_or_default(),
        env,
        metadata: input.metadata.unwrap_or_else(|| json!({})),
        owner,
        expiry,
        created_by: input.created_by,
        revoke_when_creator_leaves: input.revoke_when_creator_leaves,
        rate_limit_plan: input.rate_limit_plan,
    };
    let (key, secret) = api_keys::create_api_key(
        &state.store,
        &state.config.api_keys.api_key_prefix,
        request,
        &by,
        Some(state.rate_limiter.plans()),
    )
    .await?;
    let mut body = json!(key);
    body["key"] = secret.expose().into();
    Ok((StatusCode::CREATED, Json(body)))
}

pub async fn list(
    _: AdminKey,
    State(state): State<AppState>,
    page: Page,
) -> Result<Json<Value>, AdminError> {
    let keys = api_keys::list_api_keys(&state.store, page.after.as_deref(), page.limit).await?;
    Ok(page.respond(
        "api_keys",
        &keys,
        |item| item.id.as_str(),
        |item| json!(item),
    ))
}

/// The key, with `usage`: today's (UTC), as of every server's last write.
pub async fn show(
    _: AdminKey,
    State(state): State<AppState>,
    Path(id): Path<ApiKeyId>,
) -> Result<Json<Value>, AdminError> {
    let key = api_keys::find_api_key(&state.store, &id).await?;
    let usage = api_keys::api_key_usage_today(&state.store, &id).await?;
    let mut body = json!(key);
    body["usage"] = json!(usage);
    Ok(Json(body))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsageQuery {
    /// How many days back, today included.
    days: Option<i64>,
}

/// `GET /admin/api-keys/{id}/usage?days=30`: the days that saw use, newest first.
pub async fn usage(
    _: AdminKey,
    State(state): State<AppState>,
    Path(id): Path<ApiKeyId>,
    query: Result<Query<UsageQuery>, QueryRejection>,
) -> Result<Json<Value>, AdminError> {
    let Query(query) = query.map_err(|e| AdminError::invalid_input(e.body_text()))?;
    let days = query.days.unwrap_or(DEFAULT_USAGE_DAYS);
    let span = api_keys::api_key_usage(&state.store, &id, days).await?;
    Ok(Json(json!({
        "api_key_id": id,
        "from": span.first,
        "to": span.last,
        "days": span.days,
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyPatch {
    name: Option<String>,
    scope: Option<String>,
    metadata: Option<Value>,
    /// `null` returns the key to the servers' default plan.
    #[serde(default, deserialize_with = "present_even_if_null")]
    rate_limit_plan: Option<Option<PlanName>>,
}

pub async fn update(
    AdminActor(by): AdminActor,
    State(state): State<AppState>,
    Path(id): Path<ApiKeyId>,
    AdminJson(patch): AdminJson<KeyPatch>,
) -> Result<Json<ApiKey>, AdminError> {
    let change = KeyChange {
        name: patch.name,
        scope: patch.scope,
        metadata: patch.metadata,
        rate_limit_plan: patch.rate_limit_plan,
    };
    let plans = Some(state.rate_limiter.plans());
    Ok(Json(
        api_keys::update_api_key(&state.store, &id, change, plans, &by).await?,
    ))
}

/// Revokes the key: refused by the very next request, on every replica.
pub async fn revoke(
    AdminActor(by): AdminActor,
    State(state): State<AppState>,
    Path(id): Path<ApiKeyId>,
) -> Result<StatusCode, AdminError> {
    api_keys::revoke_api_key(&state.store, &id, &by).await?;
    Ok(StatusCode::NO_CONTENT)
}

//! `/admin/api-keys`: create (the secret shown once), list, show, change and revoke API keys.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::paging::Page;
use crate::api_keys::{self, ApiKey, ApiKeyError, ApiKeyKind, KeyEnv, KeyOwner, NewApiKey};
use crate::clock::unix_now;
use crate::error::AdminError;
use crate::http::AppState;
use crate::http::extract::{AdminJson, AdminKey};
use crate::oauth::scope::Scope;

/// Longest lifetime `expires_in` may ask for: ten years.
const MAX_EXPIRES_IN_SECS: i64 = 10 * 365 * 86_400;

impl From<ApiKeyError> for AdminError {
    fn from(e: ApiKeyError) -> Self {
        match e {
            ApiKeyError::Invalid(message) => AdminError::invalid_input(message),
            ApiKeyError::Store(e) => e.into(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OwnerInput {
    user_id: Option<String>,
    org_id: Option<String>,
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
    created_by: Option<String>,
    #[serde(default)]
    revoke_when_creator_leaves: bool,
}

pub async fn create(
    AdminKey(admin): AdminKey,
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
        None => owner.kind(),
        Some(text) => ApiKeyKind::parse(text).ok_or_else(|| {
            AdminError::invalid_input(
                "kind must be admin, registrar, service, personal or organization",
            )
        })?,
    };
    let env = match input.env.as_deref() {
        None => KeyEnv::Live,
        Some(text) => KeyEnv::parse(text)
            .ok_or_else(|| AdminError::invalid_input("env must be live or test"))?,
    };
    let now = unix_now();
    let expires_at = match (input.expires_in, input.expires_at) {
        (Some(_), Some(_)) => {
            return Err(AdminError::invalid_input(
                "give expires_in or expires_at, not both",
            ));
        }
        (Some(secs), None) if (1..=MAX_EXPIRES_IN_SECS).contains(&secs) => Some(now + secs),
        (Some(_), None) => {
            return Err(AdminError::invalid_input(
                "expires_in must be 1 second to 10 years",
            ));
        }
        (None, at) => at,
    };
    if input.created_by.is_some() && !matches!(owner, KeyOwner::Org { .. }) {
        return Err(AdminError::invalid_input(
            "created_by applies to organization keys",
        ));
    }
    let new = NewApiKey {
        kind,
        name: input.name,
        scope: input.scope.unwrap_or_default(),
        env,
        metadata: input.metadata.unwrap_or_else(|| json!({})),
        owner,
        created_by: input.created_by.or(Some(admin.id)),
        revoke_when_creator_leaves: input.revoke_when_creator_leaves,
        expires_at,
    };
    let (key, secret) =
        api_keys::create_api_key(&state.store, &state.config.api_key_prefix, new).await?;
    tracing::info!(key_id = %key.id, kind = key.kind.as_str(), "created an API key");
    let mut body = json!(key);
    body["key"] = secret.expose().into();
    Ok((StatusCode::CREATED, Json(body)))
}

pub async fn list(
    _: AdminKey,
    State(state): State<AppState>,
    page: Page,
) -> Result<Json<Value>, AdminError> {
    let keys = state
        .store
        .list_api_keys(page.after.as_deref(), page.limit)
        .await?;
    Ok(page.respond("api_keys", &keys, |item| &item.id, |item| json!(item)))
}

pub async fn show(
    _: AdminKey,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<ApiKey>, AdminError> {
    Ok(Json(
        state
            .store
            .find_api_key(&id)
            .await?
            .ok_or_else(|| no_key(&id))?,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyPatch {
    name: Option<String>,
    scope: Option<String>,
    metadata: Option<Value>,
}

pub async fn update(
    _: AdminKey,
    State(state): State<AppState>,
    Path(id): Path<String>,
    AdminJson(patch): AdminJson<KeyPatch>,
) -> Result<Json<ApiKey>, AdminError> {
    let mut key = state
        .store
        .find_api_key(&id)
        .await?
        .ok_or_else(|| no_key(&id))?;
    if let Some(name) = patch.name {
        crate::names::check_display_name(&name).map_err(AdminError::invalid_input)?;
        key.name = name.trim().to_owned();
    }
    if let Some(scope) = patch.scope {
        key.scope = Scope::parse(&scope)
            .map_err(|e| AdminError::invalid_input(e.0))?
            .to_string();
    }
    if let Some(metadata) = patch.metadata {
        api_keys::check_metadata(&metadata).map_err(AdminError::invalid_input)?;
        key.metadata = metadata;
    }
    if !state.store.update_api_key(&key).await? {
        return Err(no_key(&id));
    }
    Ok(Json(key))
}

/// Revokes the key: refused by the very next request, on every replica.
pub async fn revoke(
    _: AdminKey,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, AdminError> {
    if !state.store.revoke_api_key(&id, unix_now()).await? {
        return Err(no_key(&id));
    }
    tracing::info!(key_id = %id, "revoked an API key");
    Ok(StatusCode::NO_CONTENT)
}

fn no_key(id: &str) -> AdminError {
    AdminError::not_found(format!("no API key {id:?}"))
}

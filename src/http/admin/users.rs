//! `/admin/users`: create, list, show, update (email, password, disabled) and delete users.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::paging::Page;
use crate::admin::users::{self, NewUser, UserChange};
use crate::clients::present_even_if_null;
use crate::error::AdminError;
use crate::http::AppState;
use crate::http::extract::{AdminActor, AdminJson, AdminKey};
use crate::ids::{ClientId, UserId};
use crate::users::User;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewUserInput {
    username: String,
    email: Option<String>,
    password: String,
}

pub async fn create(
    AdminActor(by): AdminActor,
    State(state): State<AppState>,
    AdminJson(input): AdminJson<NewUserInput>,
) -> Result<(StatusCode, Json<User>), AdminError> {
    let new = NewUser {
        username: input.username,
        email: input.email,
        password: input.password,
    };
    let user = users::create_user(&state.store, new, &by).await?;
    Ok((StatusCode::CREATED, Json(user)))
}

pub async fn list(
    _: AdminKey,
    State(state): State<AppState>,
    page: Page,
) -> Result<Json<Value>, AdminError> {
    let users = users::list_users(&state.store, page.after.as_deref(), page.limit).await?;
    Ok(page.respond("users", &users, |item| item.id.as_str(), |item| json!(item)))
}

pub async fn show(
    _: AdminKey,
    State(state): State<AppState>,
    Path(id): Path<UserId>,
) -> Result<Json<User>, AdminError> {
    Ok(Json(users::find_user(&state.store, &id).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    /// `null` removes the email; absent leaves it.
    #[serde(default, deserialize_with = "present_even_if_null")]
    email: Option<Option<String>>,
    password: Option<String>,
    disabled: Option<bool>,
}

/// Changes the given fields. Disabling a user ends their sessions and revokes their grants.
pub async fn update(
    AdminActor(by): AdminActor,
    State(state): State<AppState>,
    Path(id): Path<UserId>,
    AdminJson(patch): AdminJson<UserPatch>,
) -> Result<Json<User>, AdminError> {
    let change = UserChange {
        email: patch.email,
        password: patch.password,
        disabled: patch.disabled,
    };
    Ok(Json(
        users::update_user(&state.store, &id, change, &by).await?,
    ))
}

pub async fn delete(
    AdminActor(by): AdminActor,
    State(state): State<AppState>,
    Path(id): Path<UserId>,
) -> Result<StatusCode, AdminError> {
    users::delete_user(&state.store, &id, &by).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /admin/users/{id}/consents`: the clients the user has allowed, and what.
pub async fn consents(
    _: AdminKey,
    State(state): State<AppState>,
    Path(id): Path<UserId>,
) -> Result<Json<Value>, AdminError> {
    let consents = users::list_consents(&state.store, &id).await?;
    let consents: Vec<Value> = consents
        .into_iter()
        .map(|(client_id, scope, updated_at)| {
            json!({ "client_id": client_id, "scope": scope, "updated_at": updated_at })
        })
        .collect();
    Ok(Json(json!({ "consents": consents })))
}

/// `DELETE /admin/users/{id}/consents/{client_id}`: the user is asked again next time, and
/// every grant they gave the client is revoked.
pub async fn withdraw_consent(
    AdminActor(by): AdminActor,
    State(state): State<AppState>,
    Path((id, client_id)): Path<(UserId, ClientId)>,
) -> Result<StatusCode, AdminError> {
    users::withdraw_consent(&state.store, &id, &client_id, &by).await?;
    Ok(StatusCode::NO_CONTENT)
}
